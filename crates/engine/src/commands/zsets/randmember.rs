//! ZRANDMEMBER.

use super::{read_zset, reply_entries, Entries};
use crate::ctx::{is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_keyspace::types::zset::ZSet;
use std::collections::HashSet;

fn zrandmember_count_arg(c: &Ctx) -> Result<Option<(i64, bool)>, CmdError> {
    if c.argc() < 3 {
        return Ok(None);
    }
    let n = crate::ctx::random_count_arg(c.arg(2))?;
    if c.argc() > 4 || (c.argc() == 4 && !is(c.arg(3), "withscores")) {
        return Err(CmdError::Syntax);
    }
    let withscores = c.argc() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return fail("ERR value is out of range");
    }
    Ok(Some((n, withscores)))
}

/// Up to `count` distinct random entries, or the whole set (highest first) when it is not
/// bigger than `count`. (Negative counts, with repeats, are streamed by the caller.)
fn random_entries(z: &ZSet, count: u64, rng: &mut fastrand::Rng) -> Entries {
    let len = z.len();
    if count == 1 {
        return z.random(rng).map(|(m, s)| (m.to_vec(), s)).into_iter().collect();
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
    if n < 0 {
        // That many draws, repeats allowed, written as they are drawn (the count may be up
        // to 2^63: nothing is collected first, and the loop ends once the reply has doomed
        // the client at its output limit).
        let db = c.client.db;
        let out = &mut c.client.out;
        let Some(o) = c.eng.lookup_read(db, c.argv.get(1), c.now) else {
            out.array(0);
            return Ok(());
        };
        let z = super::zset_of(&o.value)?;
        let draws = n.unsigned_abs() as usize;
        let flat = withscores && !out.resp3();
        out.array(if flat { draws * 2 } else { draws });
        for _ in 0..draws {
            if out.doomed() {
                break;
            }
            let Some((m, score)) = z.random(&mut rng) else { break };
            if withscores && !flat {
                out.array(2);
            }
            out.bulk(m);
            if withscores {
                out.double(score);
            }
        }
        return Ok(());
    }
    let picked = match read_zset(c, c.arg(1))? {
        None => Vec::new(),
        Some(_) if n == 0 => Vec::new(),
        Some(z) => random_entries(z, n.unsigned_abs(), &mut rng),
    };
    reply_entries(c.out(), &picked, withscores);
    Ok(())
}
