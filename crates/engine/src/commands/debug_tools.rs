//! The DEBUG subcommands that client libraries' test suites and Redis tooling use:
//! PROTOCOL (one reply of each RESP type), HTSTATS (hash table statistics),
//! QUICKLIST-PACKED-THRESHOLD and SET-SKIP-CHECKSUM-VALIDATION. Reply texts are Redis
//! 7.0's.

use crate::ctx::{is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_keyspace::dict::TableStats;
use std::fmt::Write;

/// Runs `sub` if it is one of these subcommands; `None` if it is not.
pub fn run(c: &mut Ctx, sub: &[u8]) -> Option<CmdResult> {
    let argc = c.argc();
    if is(sub, "PROTOCOL") && argc == 3 {
        Some(protocol(c))
    } else if is(sub, "HTSTATS") && argc == 3 {
        Some(htstats(c))
    } else if is(sub, "QUICKLIST-PACKED-THRESHOLD") && argc == 3 {
        Some(packed_threshold(c))
    } else if is(sub, "SET-SKIP-CHECKSUM-VALIDATION") && argc == 3 {
        // atoi: anything not a number is 0.
        c.eng.persist.skip_checksum_validation = atoi(c.arg(2)) != 0;
        c.out().ok();
        Some(Ok(()))
    } else {
        None
    }
}

/// C's `atoi`: optional spaces and sign, then the leading digits; 0 if none.
fn atoi(s: &[u8]) -> i64 {
    let s = std::str::from_utf8(s).unwrap_or("").trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    let v = digits[..end].bytes().fold(0i64, |acc, d| acc.wrapping_mul(10).wrapping_add(i64::from(d - b'0')));
    if neg {
        -v
    } else {
        v
    }
}

/// DEBUG PROTOCOL <type>: a sample of each reply type, downgraded for RESP2 clients.
fn protocol(c: &mut Ctx) -> CmdResult {
    let name = c.arg(2);
    let resp3 = c.client.resp3();
    let out = c.out();
    if is(name, "string") {
        out.bulk(b"Hello World");
    } else if is(name, "integer") {
        out.int(12345);
    } else if is(name, "double") {
        // Redis's sample value (three decimals), not an approximation of pi.
        #[allow(clippy::approx_constant)]
        const SAMPLE: f64 = 3.141;
        out.double(SAMPLE);
    } else if is(name, "bignum") {
        out.big_number("1234567999999999999999999999999999999");
    } else if is(name, "null") {
        out.null();
    } else if is(name, "array") || is(name, "set") {
        if is(name, "set") {
            out.set(3);
        } else {
            out.array(3);
        }
        for j in 0..3 {
            out.int(j);
        }
    } else if is(name, "map") {
        out.map(3);
        for j in 0..3 {
            out.int(j);
            out.boolean(j == 1);
        }
    } else if is(name, "attrib") {
        // An attribute is not a reply of its own: a real reply follows it. RESP2 clients
        // get only that reply.
        if resp3 {
            out.raw(b"|1\r\n");
            out.bulk(b"key-popularity");
            out.array(2);
            out.bulk(b"key:123");
            out.int(90);
        }
        out.bulk(b"Some real reply following the attribute");
    } else if is(name, "push") {
        if !resp3 {
            return Err(CmdError::err("ERR RESP2 is not supported by this command"));
        }
        out.push(2);
        out.bulk(b"server-cpu-usage");
        out.int(42);
        // A push is out of band: a normal reply follows for clients that skip pushes.
        out.bulk(b"Some real reply following the push reply");
    } else if is(name, "true") {
        out.boolean(true);
    } else if is(name, "false") {
        out.boolean(false);
    } else if is(name, "verbatim") {
        out.verbatim(b"This is a verbatim\nstring", "txt");
    } else {
        return Err(CmdError::err(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ));
    }
    Ok(())
}

/// DEBUG HTSTATS <dbid>: the key and expires tables' bucket statistics, in Redis's text.
fn htstats(c: &mut Ctx) -> CmdResult {
    let db = ferrokv_resp::parse_i64(c.arg(2)).ok_or(CmdError::NotInteger)?;
    if db < 0 || db >= c.eng.dbs.len() as i64 {
        return Err(CmdError::err("ERR Out of range database"));
    }
    let (keys, expires) = c.eng.dbs[db as usize].table_stats();
    let mut text = String::from("[Dictionary HT]\n");
    write_dict_stats(&mut text, &keys);
    text.push_str("[Expires HT]\n");
    write_dict_stats(&mut text, &expires);
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}

/// Redis's `dictGetStats` text for one dictionary (its tables in order). Averages and
/// percentages are computed in single precision, as Redis does.
fn write_dict_stats(out: &mut String, tables: &[TableStats]) {
    const CHAIN_SLOTS: usize = 50;
    for (i, t) in tables.iter().enumerate() {
        let role = if i == 0 { "main hash table" } else { "rehashing target" };
        let _ = writeln!(out, "Hash table {i} stats ({role}):");
        if t.used == 0 {
            out.push_str("No stats available for empty dictionaries\n");
            continue;
        }
        // Chains of 49 entries or more share the last slot.
        let mut slots_by_len = [0usize; CHAIN_SLOTS];
        let (mut slots, mut max_chain, mut total_chain) = (0usize, 0usize, 0usize);
        for (len, &n) in t.chain_lengths.iter().enumerate() {
            slots_by_len[len.min(CHAIN_SLOTS - 1)] += n;
            if len > 0 && n > 0 {
                slots += n;
                max_chain = max_chain.max(len);
                total_chain += len * n;
            }
        }
        let _ = write!(
            out,
            " table size: {}\n number of elements: {}\n different slots: {slots}\n max chain length: {max_chain}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n Chain length distribution:\n",
            t.size,
            t.used,
            total_chain as f32 / slots as f32,
            t.used as f32 / slots as f32
        );
        for (len, &n) in slots_by_len.iter().enumerate().take(CHAIN_SLOTS - 1) {
            if n != 0 {
                let _ = writeln!(out, "   {len}: {n} ({:.2}%)", (n as f32 / t.size as f32) * 100.0);
            }
        }
    }
}

/// DEBUG QUICKLIST-PACKED-THRESHOLD <size>: elements of at least this many bytes get a
/// plain quicklist node of their own (0 restores the default, 1 GiB; at most 4 GiB - 1 MiB).
fn packed_threshold(c: &mut Ctx) -> CmdResult {
    const REFUSED: &str = "ERR argument must be a memory value bigger than 1 and smaller than 4gb";
    let size = std::str::from_utf8(c.arg(2)).ok().and_then(ferrokv_config::value::parse_memory);
    let size = match size {
        Some(s) if s > (1u64 << 32) - (1 << 20) => return Err(CmdError::err(REFUSED)),
        Some(0) => 1 << 30,
        Some(s) => s,
        None => return Err(CmdError::err(REFUSED)),
    };
    c.eng.persist.list_packed_threshold = size as usize;
    c.out().ok();
    Ok(())
}
