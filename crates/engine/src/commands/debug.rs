//! DEBUG: SLEEP, SET-ACTIVE-EXPIRE, OBJECT, POPULATE, DIGEST, DIGEST-VALUE, LOG, RELOAD, LOADAOF, HELP,
//! and (in `debug_tools`) PROTOCOL, HTSTATS, QUICKLIST-PACKED-THRESHOLD,
//! SET-SKIP-CHECKSUM-VALIDATION. Only available when `enable-debug-command` allows it.

use crate::ctx::{float_arg, int_arg, is, reply_help, subcommand_syntax_error, Ctx};
use crate::digest;
use crate::error::{CmdError, CmdResult};
use ferrokv_config::pid;
use ferrokv_keyspace::{Obj, Value};
use std::time::Duration;

pub fn debug(c: &mut Ctx) -> CmdResult {
    let sub = c.arg(1);
    let argc = c.argc();
    if is(sub, "HELP") {
        return reply_help(
            c,
            &[
                "DIGEST",
                "    A hex digest of the whole dataset, equal on nodes holding equal data.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    The digest of each key's value.",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message (client test suites use it).",
                "HTSTATS <dbid>",
                "    Statistics about the main and expires hash tables of the database.",
                "LOADAOF",
                "    Flush the AOF buffers on disk and reload the AOF in memory.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "OBJECT <key>",
                "    Low-level details of the value at <key>.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> keys <prefix>:N (default 'key') with values value:N.",
                "PROTOCOL <type>",
                "    Reply with a sample of a RESP type: string|integer|double|bignum|null|array|set|map|",
                "    attrib|push|verbatim|true|false.",
                "QUICKLIST-PACKED-THRESHOLD <size>",
                "    List elements of at least <size> bytes get a plain node of their own (0: 1gb).",
                "RELOAD [NOSAVE]",
                "    Save the RDB on disk (unless NOSAVE), empty the dataset and load it back.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Turn active expiry off or on (lazy expiry still applies).",
                "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
                "    Skip the CRC-64 check of RESTORE payloads and of RDB files received from a master.",
                "SLEEP <seconds>",
                "    Block the server for <seconds> (fractions allowed).",
            ],
        );
    }
    if is(sub, "ERROR") && argc == 3 {
        // The whole argument is the error line, as in Redis: no ERR prefix is added, and
        // line breaks become spaces so the reply stays one line.
        let line = c.arg(2);
        c.out().error_verbatim(line, true);
        return Ok(());
    }
    if is(sub, "RELOAD") {
        let mut save = true;
        for i in 2..argc {
            if is(c.arg(i), "NOSAVE") {
                save = false;
            } else if !is(c.arg(i), "NOFLUSH") && !is(c.arg(i), "MERGE") {
                return Err(CmdError::msg(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into(),
                ));
            }
        }
        c.eng.debug_reload(save, c.now).map_err(CmdError::msg)?;
        c.out().ok();
        return Ok(());
    }
    if is(sub, "LOADAOF") {
        // Redis exits when the files cannot be loaded; here the client gets the reason.
        c.eng.debug_load_aof(c.now).map_err(|e| {
            log::warn!("DEBUG LOADAOF failed: {e}");
            CmdError::msg(format!("ERR Error loading the append only file: {e}"))
        })?;
        c.out().ok();
        return Ok(());
    }
    if is(sub, "SLEEP") && argc == 3 {
        let secs = float_arg(c.arg(2))?;
        c.eng.host.sleep(Duration::from_secs_f64(secs.max(0.0)));
        c.out().ok();
    } else if is(sub, "SET-ACTIVE-EXPIRE") && argc == 3 {
        c.eng.active_expire_enabled = int_arg(c.arg(2))? != 0;
        c.out().ok();
    } else if is(sub, "LOG") && argc == 3 {
        log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(c.arg(2)));
        c.out().ok();
    } else if is(sub, "DIGEST") && argc == 2 {
        let d = digest::dataset_digest(&c.eng.dbs);
        c.out().simple(&digest::hex(&d));
    } else if is(sub, "DIGEST-VALUE") {
        let db = c.client.db;
        let mut lines = Vec::new();
        for i in 2..argc {
            let key = c.arg(i);
            let mut d = [0u8; 20];
            let dbr = &c.eng.dbs[db];
            if let Some(o) = dbr.peek(key, i64::MIN) {
                digest::object_digest(&mut d, o, dbr.expire_at(key).is_some());
            }
            lines.push(digest::hex(&d));
        }
        let out = c.out();
        out.array(lines.len());
        for l in lines {
            out.simple(&l);
        }
    } else if is(sub, "OBJECT") && argc == 3 {
        let now = c.now;
        let db = c.client.db;
        let opts = crate::persistence::rdb::write_options(c.eng);
        let line = match c.eng.dbs[db].peek(c.arg(2), i64::MIN) {
            None => return Err(CmdError::NoSuchKey),
            Some(o) => format!(
                "Value at:{:p} refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}{}",
                o as *const Obj,
                o.encoding(),
                serialized_length(&o.value, &opts),
                o.lru(),
                o.idle_ms(now) / 1000,
                quicklist_fields(&o.value, &opts, c.eng.cfg.int(pid("list-compress-depth")) != 0)
            ),
        };
        c.out().simple(&line);
    } else if is(sub, "POPULATE") && (3..=5).contains(&argc) {
        let count = int_arg(c.arg(2))?;
        if count < 0 {
            return Err(CmdError::err("ERR count must be greater than or equal to 0"));
        }
        let prefix = if argc >= 4 { c.arg(3).to_vec() } else { b"key".to_vec() };
        let size = if argc == 5 { Some(int_arg(c.arg(4))?.max(0) as usize) } else { None };
        let db = c.client.db;
        for i in 0..count {
            let mut key = prefix.clone();
            key.push(b':');
            key.extend_from_slice(i.to_string().as_bytes());
            if c.eng.dbs[db].peek(&key, c.now).is_some() {
                continue;
            }
            let mut val = format!("value:{i}").into_bytes();
            if let Some(n) = size {
                val.resize(n, 0);
            }
            c.eng.dbs[db].add(&key, Obj::new(Value::string(&val), c.now));
        }
        c.out().ok();
    } else if let Some(result) = super::debug_tools::run(c, sub) {
        return result;
    } else {
        return Err(subcommand_syntax_error(c));
    }
    Ok(())
}

/// The `ql_*` fields Redis 7.0 appends for lists: the quicklist Redis would hold for
/// these elements appended under the current settings (ferrokv keeps a ring buffer; Redis
/// keeps each list's fill and compression from its creation).
fn quicklist_fields(value: &Value, opts: &ferrokv_persist::rdb::WriteOptions, compressed: bool) -> String {
    let Value::List(l) = value else {
        return String::new();
    };
    let (nodes, bytes) = ferrokv_persist::rdb::quicklist_shape(&l.items, opts).unwrap_or((0, 0));
    let avg = if nodes == 0 { 0.0 } else { l.len() as f64 / nodes as f64 };
    format!(
        " ql_nodes:{nodes} ql_avg_node:{avg:.2} ql_listpack_max:{} ql_compressed:{} ql_uncompressed_size:{bytes}",
        opts.list_max_listpack_size.clamp(-5, 1 << 15),
        u8::from(compressed)
    )
}

/// The bytes the value takes in an RDB file, as Redis reports it.
fn serialized_length(value: &Value, opts: &ferrokv_persist::rdb::WriteOptions) -> u64 {
    crate::persistence::rdb::with_value_ref(value, |v| ferrokv_persist::rdb::serialized_len(v, opts)).unwrap_or(0)
}
