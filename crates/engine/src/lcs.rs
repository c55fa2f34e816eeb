//! Longest common subsequence for the LCS command, by the classic dynamic-programming
//! table. The walk back through the table breaks ties the way Redis does (prefer moving
//! in the first string when both directions keep the same length), so IDX reports the
//! same match ranges as Redis, last match first.

pub struct Match {
    pub a: (usize, usize),
    pub b: (usize, usize),
    pub len: usize,
}

pub struct Lcs {
    pub len: usize,
    pub common: Vec<u8>,
    pub ranges: Vec<Match>,
}

pub fn lcs(a: &[u8], b: &[u8], walk: bool) -> Lcs {
    let (al, bl) = (a.len(), b.len());
    let w = bl + 1;
    let mut t = vec![0u32; (al + 1) * w];
    for i in 1..=al {
        for j in 1..=bl {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    let len = t[al * w + bl] as usize;
    let mut out = Lcs { len, common: Vec::new(), ranges: Vec::new() };
    if !walk {
        return out;
    }
    let mut common = vec![0u8; len];
    let mut idx = len;
    let (mut i, mut j) = (al, bl);
    // `None` while no range is open; otherwise (a_start, a_end, b_start, b_end).
    let mut range: Option<(usize, usize, usize, usize)> = None;
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            common[idx - 1] = a[i - 1];
            match &mut range {
                None => range = Some((i - 1, i - 1, j - 1, j - 1)),
                Some(r) if r.0 == i && r.2 == j => {
                    r.0 -= 1;
                    r.2 -= 1;
                }
                Some(_) => emit = true,
            }
            if let Some(r) = range {
                if r.0 == 0 || r.2 == 0 {
                    emit = true;
                }
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if t[(i - 1) * w + j] > t[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = range.is_some();
        }
        if emit {
            if let Some((as_, ae, bs, be)) = range.take() {
                out.ranges.push(Match { a: (as_, ae), b: (bs, be), len: ae - as_ + 1 });
            }
        }
    }
    out.common = common;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_documentation_example() {
        let r = lcs(b"ohmytext", b"mynewtext", true);
        assert_eq!(r.common, b"mytext");
        assert_eq!(r.len, 6);
        let ranges: Vec<_> = r.ranges.iter().map(|m| (m.a, m.b, m.len)).collect();
        assert_eq!(ranges, vec![((4, 7), (5, 8), 4), ((2, 3), (0, 1), 2)]);
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(lcs(b"", b"abc", true).len, 0);
        assert!(lcs(b"abc", b"", true).ranges.is_empty());
    }
}
