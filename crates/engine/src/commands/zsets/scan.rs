//! ZSCAN.

use super::read_zset;
use crate::commands::keys::{parse_cursor, parse_scan_opts, reply_scan};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use ferrokv_keyspace::types::zset::packed_score_text;

pub fn zscan(c: &mut Ctx) -> CmdResult {
    let cursor = parse_cursor(c.arg(2))?;
    // Redis validates the options only once the key exists.
    if read_zset(c, c.arg(1))?.is_none() {
        reply_scan(c.out(), 0, &[]);
        return Ok(());
    }
    let opts = parse_scan_opts(c, 3, false)?;
    let mut elems = Vec::new();
    let z = read_zset(c, c.arg(1))?.expect("checked above");
    // A listpack holds scores as text (integral ones as integers), shown as stored.
    let fmt: fn(f64) -> String = if z.is_packed() { packed_score_text } else { ferrokv_resp::num::fmt_double };
    let mut cur = cursor;
    let mut iterations = opts.count.saturating_mul(10);
    loop {
        cur = z.scan(cur, |m, s| {
            if opts.matches(m) {
                elems.push(m.to_vec());
                elems.push(fmt(s).into_bytes());
            }
        });
        iterations -= 1;
        if cur == 0 || iterations <= 0 || elems.len() as i64 >= opts.count.saturating_mul(2) {
            break;
        }
    }
    reply_scan(c.out(), cur, &elems);
    Ok(())
}
