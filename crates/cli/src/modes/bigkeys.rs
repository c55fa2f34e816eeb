//! `--bigkeys`: SCANs the keyspace, asks each key's type and size (pipelined, a page at
//! a time) and reports the biggest key of each type and per-type totals.

use crate::format::repr;
use crate::interrupt;
use crate::session::{emit, Exit, Session};
use ferrokv_resp::Frame;

/// A type's size command and unit.
struct TypeSpec {
    name: &'static str,
    size_command: &'static [u8],
    unit: &'static str,
}

/// In the order redis-cli's summary lists them (the iteration order of its table).
const KNOWN: &[TypeSpec] = &[
    TypeSpec { name: "list", size_command: b"LLEN", unit: "items" },
    TypeSpec { name: "hash", size_command: b"HLEN", unit: "fields" },
    TypeSpec { name: "string", size_command: b"STRLEN", unit: "bytes" },
    TypeSpec { name: "stream", size_command: b"XLEN", unit: "entries" },
    TypeSpec { name: "set", size_command: b"SCARD", unit: "members" },
    TypeSpec { name: "zset", size_command: b"ZCARD", unit: "members" },
];

#[derive(Debug, Default)]
pub struct TypeStats {
    pub name: String,
    size_command: Option<&'static [u8]>,
    pub unit: &'static str,
    pub count: u64,
    pub total: u64,
    pub biggest: u64,
    /// Quoted, as printed.
    pub biggest_key: Option<String>,
}

/// The per-type tallies, known types first.
#[derive(Debug)]
pub struct Tally {
    pub types: Vec<TypeStats>,
    pub sampled: u64,
    pub key_bytes: u64,
}

impl Default for Tally {
    fn default() -> Self {
        let types = KNOWN
            .iter()
            .map(|t| TypeStats {
                name: t.name.into(),
                size_command: Some(t.size_command),
                unit: t.unit,
                ..TypeStats::default()
            })
            .collect();
        Tally { types, sampled: 0, key_bytes: 0 }
    }
}

impl Tally {
    /// The index of a type's stats; types of modules get a row of their own, without size.
    fn type_index(&mut self, name: &str) -> usize {
        if let Some(i) = self.types.iter().position(|t| t.name == name) {
            return i;
        }
        self.types.push(TypeStats { name: name.into(), unit: "?", ..TypeStats::default() });
        self.types.len() - 1
    }

    /// Counts one key; returns the progress line if it is the biggest of its type so far.
    pub fn add(&mut self, type_index: usize, key: &[u8], size: u64, percent: f64) -> Option<String> {
        self.sampled += 1;
        self.key_bytes += key.len() as u64;
        let t = &mut self.types[type_index];
        t.count += 1;
        t.total += size;
        if size <= t.biggest {
            return None;
        }
        t.biggest = size;
        let quoted = String::from_utf8_lossy(&repr(key)).into_owned();
        let line = format!(
            "[{}%] Biggest {:<6} found so far '{quoted}' with {size} {}\n",
            percent_text(percent),
            t.name,
            t.unit
        );
        t.biggest_key = Some(quoted);
        Some(line)
    }

    pub fn summary(&self, interrupted_at: Option<f64>) -> String {
        let mut out = String::from("\n-------- summary -------\n\n");
        if let Some(pct) = interrupted_at {
            out.push_str(&format!("[{}%] ", percent_text(pct)));
        }
        let avg = |total: u64, n: u64| if n == 0 { 0.0 } else { total as f64 / n as f64 };
        out.push_str(&format!("Sampled {} keys in the keyspace!\n", self.sampled));
        out.push_str(&format!(
            "Total key length in bytes is {} (avg len {:.2})\n\n",
            self.key_bytes,
            avg(self.key_bytes, self.sampled)
        ));
        for t in &self.types {
            if let Some(key) = &t.biggest_key {
                out.push_str(&format!("Biggest {:>6} found '{key}' has {} {}\n", t.name, t.biggest, t.unit));
            }
        }
        out.push('\n');
        for t in &self.types {
            let share = if self.sampled == 0 { 0.0 } else { 100.0 * t.count as f64 / self.sampled as f64 };
            out.push_str(&format!(
                "{} {}s with {} {} ({share:05.2}% of keys, avg size {:.2})\n",
                t.count,
                t.name,
                t.total,
                t.unit,
                avg(t.total, t.count)
            ));
        }
        out
    }
}

/// `%05.2f`, including C's spelling of what a keyspace that was empty at the start gives.
fn percent_text(p: f64) -> String {
    if p.is_nan() {
        "  nan".into()
    } else if p.is_infinite() {
        "  inf".into()
    } else {
        format!("{p:05.2}")
    }
}

pub fn run(s: &mut Session) -> Result<(), Exit> {
    interrupt::catch();
    let total_keys = match s.call(&[b"DBSIZE"]).map_err(|_| super::io_error())? {
        Frame::Integer(n) => n,
        Frame::Error(e) => return super::fail(&format!("Couldn't determine DBSIZE: {}", String::from_utf8_lossy(&e))),
        _ => return super::fail("Non INTEGER response from DBSIZE!"),
    };
    emit(
        b"\n# Scanning the entire keyspace to find biggest keys as well as\n\
          # average sizes per key type.  You can use -i 0.1 to sleep 0.1 sec\n\
          # per 100 SCAN commands (not usually needed).\n\n",
    )?;
    let mut tally = Tally::default();
    let (mut cursor, mut pages) = (0u64, 0u64);
    let mut percent;
    loop {
        percent = 100.0 * tally.sampled as f64 / total_keys as f64;
        let (next, keys) = super::scan_page(s, cursor)?;
        pages += 1;
        let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes().unwrap_or_default()).collect();
        let types = key_types(s, &keys, &mut tally)?;
        let sizes = key_sizes(s, &keys, &types, &tally)?;
        let mut out = String::new();
        for ((key, t), size) in keys.iter().zip(&types).zip(&sizes) {
            // None: the key vanished between SCAN and TYPE.
            let Some(t) = *t else { continue };
            if let Some(line) = tally.add(t, key, *size, percent) {
                out.push_str(&line);
            }
            if tally.sampled % 1_000_000 == 0 {
                out.push_str(&format!("[{}%] Sampled {} keys so far\n", percent_text(percent), tally.sampled));
            }
        }
        emit(out.as_bytes())?;
        if !s.opts.interval.is_zero() && pages % 100 == 0 {
            std::thread::sleep(s.opts.interval);
        }
        cursor = next;
        if cursor == 0 || interrupt::interrupted() {
            break;
        }
    }
    emit(tally.summary(interrupt::interrupted().then_some(percent)).as_bytes())?;
    Ok(())
}

/// Sends one command per key in a single write, then reads the replies in order.
fn pipelined(s: &mut Session, commands: &[Vec<&[u8]>]) -> Result<Vec<Frame>, Exit> {
    let mut out = Vec::new();
    for c in commands {
        ferrokv_resp::encode_command(&mut out, c.iter().copied());
    }
    let conn = s.conn_mut().ok_or_else(super::io_error)?;
    let mut replies = Vec::with_capacity(commands.len());
    if !commands.is_empty() {
        conn.send_raw(&out).map_err(|_| super::io_error())?;
        for _ in commands {
            replies.push(conn.read_reply().map_err(|e| {
                eprintln!("Error reading replies: {e}");
                Exit(1)
            })?);
        }
    }
    Ok(replies)
}

fn key_types(s: &mut Session, keys: &[&[u8]], tally: &mut Tally) -> Result<Vec<Option<usize>>, Exit> {
    let commands: Vec<Vec<&[u8]>> = keys.iter().map(|k| vec![&b"TYPE"[..], k]).collect();
    let mut types = Vec::with_capacity(keys.len());
    for (key, reply) in keys.iter().zip(pipelined(s, &commands)?) {
        match reply {
            Frame::Simple(t) if t.as_ref() == b"none" => types.push(None),
            Frame::Simple(t) => types.push(Some(tally.type_index(&String::from_utf8_lossy(&t)))),
            Frame::Error(e) => return super::fail(&format!("TYPE returned an error: {}", String::from_utf8_lossy(&e))),
            _ => {
                return super::fail(&format!("Invalid reply type for TYPE on key '{}'!", String::from_utf8_lossy(key)))
            }
        }
    }
    Ok(types)
}

fn key_sizes(s: &mut Session, keys: &[&[u8]], types: &[Option<usize>], tally: &Tally) -> Result<Vec<u64>, Exit> {
    let size_command = |t: &Option<usize>| t.and_then(|i| tally.types[i].size_command);
    let commands: Vec<Vec<&[u8]>> =
        keys.iter().zip(types).filter_map(|(k, t)| size_command(t).map(|c| vec![c, *k])).collect();
    let mut replies = pipelined(s, &commands)?.into_iter();
    let mut sizes = Vec::with_capacity(keys.len());
    for (key, t) in keys.iter().zip(types) {
        let Some(command) = size_command(t) else {
            sizes.push(0);
            continue;
        };
        match replies.next() {
            Some(Frame::Integer(n)) => sizes.push(n.max(0) as u64),
            _ => {
                // The key may have been replaced by one of another type meanwhile.
                eprintln!(
                    "Warning:  {} on '{}' failed (may have changed type)",
                    String::from_utf8_lossy(command),
                    String::from_utf8_lossy(key)
                );
                sizes.push(0);
            }
        }
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_summary() {
        let mut t = Tally::default();
        let list = t.type_index("list");
        let string = t.type_index("string");
        assert_eq!(
            t.add(list, b"l", 3, 0.0).as_deref(),
            Some("[00.00%] Biggest list   found so far '\"l\"' with 3 items\n")
        );
        assert_eq!(t.add(list, b"l2", 2, 50.0), None);
        assert!(t.add(string, b"s", 5, 66.666).is_some_and(|l| l.starts_with("[66.67%] Biggest string")));
        let summary = t.summary(None);
        assert!(summary.contains("Sampled 3 keys in the keyspace!\nTotal key length in bytes is 4 (avg len 1.33)\n\n"));
        assert!(
            summary.contains("Biggest   list found '\"l\"' has 3 items\nBiggest string found '\"s\"' has 5 bytes\n\n")
        );
        assert!(summary.contains("2 lists with 5 items (66.67% of keys, avg size 2.50)\n0 hashs with 0 fields"));
        assert!(summary.ends_with("0 zsets with 0 members (00.00% of keys, avg size 0.00)\n"));
    }

    #[test]
    fn module_types_get_their_own_row() {
        let mut t = Tally::default();
        let i = t.type_index("MBbloom--");
        assert_eq!(t.add(i, b"b", 0, 0.0), None);
        assert!(t.summary(None).ends_with("1 MBbloom--s with 0 ? (100.00% of keys, avg size 0.00)\n"));
    }
}
