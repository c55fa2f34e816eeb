//! ZRANDMEMBER.

use super::{read_zset, reply_entries, Entries};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_keyspace::types::zset::ZSet;
use std::collections::HashSet;

fn zrandmember_count_arg(c: &Ctx) -> Result<Option<(i64, bool)>, CmdError> {
    if c.argc() < 3 {
        return Ok(None);
    }
    let n = int_arg(c.arg(2))?;
    if n == i64::MIN {
        return Err(CmdError::msg(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    if c.argc() > 4 || (c.argc() == 4 && !is(c.arg(3), "withscores")) {
        return Err(CmdError::Syntax);
    }
    let withscores = c.argc() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return fail("ERR value is out of range");
    }
    Ok(Some((n, withscores)))
}

/// Up to `count` random entries: repeats allowed when `distinct` is false; otherwise
/// distinct ones, or the whole set (highest first) when it is not bigger than `count`.
fn random_entries(z: &ZSet, count: u64, distinct: bool, rng: &mut fastrand::Rng) -> Entries {
    let len = z.len();
    let pick = |rng: &mut fastrand::Rng| z.random(rng).map(|(m, s)| (m.to_vec(), s));
    if !distinct || count == 1 {
        return (0..count).filter_map(|_| pick(rng)).collect();
    }
    if count >= len as u64 {
        // Redis walks sorted sets from the highest entry down here.
        return z.iter_from(len - 1, true).map(|(m, s)| (m.to_vec(), s)).collect();
    }
    let mut ranks = HashSet::new();
    let mut out = Vec::with_capacity(count as usize);
    while out.len() < count as usize {
        let r = rng.usize(0..len);
        if ranks.insert(r) {
            if let Some((m, s)) = z.get(r) {
                out.push((m.to_vec(), s));
            }
        }
    }
    out
}

pub fn zrandmember(c: &mut Ctx) -> CmdResult {
    let arg = zrandmember_count_arg(c)?;
    let mut rng = c.eng.rng.fork();
    let Some((n, withscores)) = arg else {
        let member = read_zset(c, c.arg(1))?.and_then(|z| z.random(&mut rng).map(|e| e.0.to_vec()));
        match member {
            Some(m) => c.out().bulk(&m),
            None => c.out().null(),
        }
        return Ok(());
    };
    let picked = match read_zset(c, c.arg(1))? {
        None => Vec::new(),
        Some(_) if n == 0 => Vec::new(),
        Some(z) => random_entries(z, n.unsigned_abs(), n > 0, &mut rng),
    };
    reply_entries(c.out(), &picked, withscores);
    Ok(())
}
