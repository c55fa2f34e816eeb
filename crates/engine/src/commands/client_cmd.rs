//! CLIENT subcommands: ID, SETNAME, GETNAME, LIST, INFO, KILL, UNBLOCK, PAUSE, UNPAUSE, REPLY,
//! NO-EVICT, SETINFO, HELP.

use crate::client::{Client, ClientClass, ClientId, ReplRole, ReplyMode, Transport};
use crate::commands::connection::valid_client_name;
use crate::ctx::{is, reply_help, subcommand_syntax_error, Ctx};
use crate::engine::Pause;
use crate::error::{fail, CmdError, CmdResult};

pub fn id(c: &mut Ctx) -> CmdResult {
    let id = c.client.id as i64;
    c.out().int(id);
    Ok(())
}

pub fn setname(c: &mut Ctx) -> CmdResult {
    let name = c.arg(2);
    if !valid_client_name(name) {
        return fail("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    c.client.name = (!name.is_empty()).then(|| name.to_vec());
    c.out().ok();
    Ok(())
}

pub fn getname(c: &mut Ctx) -> CmdResult {
    let name = c.client.name.clone();
    c.out().bulk_opt(name.as_deref());
    Ok(())
}

/// One CLIENT LIST line, in Redis 7's field order (plus 7.2's lib-name/lib-ver).
/// `postponed`: the client's next request waits for CLIENT PAUSE to end, which Redis
/// implements by blocking the client (so it shows `b` too).
pub fn info_line(client: &Client, postponed: bool, now_ms: i64) -> String {
    let mut flags = String::new();
    if client.monitor {
        flags.push('O');
    }
    match client.repl_role {
        Some(ReplRole::Replica) => flags.push('S'),
        Some(ReplRole::Master) => flags.push('M'),
        None => {}
    }
    if client.is_pubsub() {
        flags.push('P');
    }
    if client.multi.is_some() {
        flags.push('x');
    }
    if client.blocked.is_some() || postponed {
        flags.push('b');
    }
    if client.tracking.on {
        flags.push('t');
    }
    if client.tracking.broken_redirect {
        flags.push('R');
    }
    if client.tracking.bcast {
        flags.push('B');
    }
    if client.dirty_cas {
        flags.push('d');
    }
    if client.close_after_reply {
        flags.push('c');
    }
    if client.close_asap {
        flags.push('A');
    }
    if client.conn.transport == Transport::Unix {
        flags.push('U');
    }
    if client.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let lossy = |v: &Option<Vec<u8>>| v.as_deref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
    let multi = client.multi.as_ref().map_or(-1, |m| m.queue.len() as i64);
    let multi_mem: usize = client.multi.as_ref().map_or(0, |m| m.queue.iter().map(|(_, a)| a.byte_len()).sum());
    // Redis keeps the first 16 KB of output in a static buffer (`obl`) and the rest in a
    // list of 16 KB blocks (`oll` blocks, `omem` bytes); ferrokv's one buffer is shown
    // the same way.
    const STATIC_BUF: usize = 16 * 1024;
    let pending = client.output_memory();
    let obl = pending.min(STATIC_BUF);
    let omem = pending - obl;
    let oll = omem.div_ceil(STATIC_BUF);
    let events = if pending > 0 { "rw" } else { "r" };
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem={} rbs={} rbp=0 obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
        client.id,
        client.conn.addr,
        client.conn.laddr,
        client.conn.fd,
        lossy(&client.name),
        (now_ms - client.created_ms) / 1000,
        (now_ms - client.last_interaction_ms) / 1000,
        flags,
        client.db,
        client.channels.len(),
        client.patterns.len(),
        client.shard_channels.len(),
        multi,
        client.qbuf,
        client.qbuf_capacity.saturating_sub(client.qbuf),
        multi_mem,
        STATIC_BUF,
        obl,
        oll,
        omem,
        client.memory_usage(),
        events,
        client.last_cmd,
        client.user,
        if client.tracking.on { client.tracking.redirect as i64 } else { -1 },
        if client.resp3() { 3 } else { 2 },
        lossy(&client.lib_name),
        lossy(&client.lib_ver),
    )
}

pub fn list(c: &mut Ctx) -> CmdResult {
    let mut class = None;
    let mut ids: Option<Vec<ClientId>> = None;
    if c.argc() >= 4 && is(c.arg(2), "TYPE") && c.argc() == 4 {
        class = Some(ClientClass::parse(c.arg(3)).ok_or_else(|| {
            CmdError::msg(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(c.arg(3))))
        })?);
    } else if c.argc() >= 4 && is(c.arg(2), "ID") {
        let mut v = Vec::new();
        for i in 3..c.argc() {
            match ferrokv_resp::parse_i64(c.arg(i)) {
                Some(n) if n > 0 => v.push(n as ClientId),
                _ => return fail("ERR Invalid client ID"),
            }
        }
        ids = Some(v);
    } else if c.argc() != 2 {
        return Err(CmdError::Syntax);
    }
    let mut all: Vec<&Client> = c.eng.clients.iter().collect();
    all.push(c.client);
    all.sort_by_key(|cl| cl.id);
    let mut text = String::new();
    for cl in all {
        if class.is_some_and(|k| cl.class() != k) {
            continue;
        }
        if ids.as_ref().is_some_and(|v| !v.contains(&cl.id)) {
            continue;
        }
        text.push_str(&info_line(cl, c.eng.is_postponed(cl.id), c.now));
        text.push('\n');
    }
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}

pub fn info(c: &mut Ctx) -> CmdResult {
    // The caller is running a command, so it is neither blocked nor postponed.
    let mut line = info_line(c.client, false, c.now);
    line.push('\n');
    c.out().verbatim(line.as_bytes(), "txt");
    Ok(())
}

#[derive(Default)]
struct KillFilter {
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    class: Option<ClientClass>,
    id: Option<ClientId>,
    user: Option<Vec<u8>>,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, cl: &Client, me: ClientId) -> bool {
        self.addr.as_ref().is_none_or(|a| a.as_slice() == cl.conn.addr.as_bytes())
            && self.laddr.as_ref().is_none_or(|a| a.as_slice() == cl.conn.laddr.as_bytes())
            && self.class.is_none_or(|k| cl.class() == k)
            && self.id.is_none_or(|id| cl.id == id)
            && self.user.as_ref().is_none_or(|u| u.as_slice() == cl.user.as_bytes())
            && !(self.skipme && cl.id == me)
    }
}

pub fn kill(c: &mut Ctx) -> CmdResult {
    let old_form = c.argc() == 3;
    let mut f = KillFilter { skipme: true, ..KillFilter::default() };
    if old_form {
        f.addr = Some(c.arg(2).to_vec());
        f.skipme = false;
    } else {
        let mut i = 2;
        while i < c.argc() {
            if i + 1 >= c.argc() {
                return Err(CmdError::Syntax);
            }
            let (opt, val) = (c.arg(i), c.arg(i + 1));
            if is(opt, "ID") {
                match ferrokv_resp::parse_i64(val) {
                    Some(n) if n >= 1 => f.id = Some(n as ClientId),
                    _ => return fail("ERR client-id should be greater than 0"),
                }
            } else if is(opt, "TYPE") {
                f.class = Some(ClientClass::parse(val).ok_or_else(|| {
                    CmdError::msg(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(val)))
                })?);
            } else if is(opt, "ADDR") {
                f.addr = Some(val.to_vec());
            } else if is(opt, "LADDR") {
                f.laddr = Some(val.to_vec());
            } else if is(opt, "USER") {
                if val != b"default" {
                    return Err(CmdError::msg(format!("ERR No such user '{}'", String::from_utf8_lossy(val))));
                }
                f.user = Some(val.to_vec());
            } else if is(opt, "SKIPME") {
                f.skipme = if is(val, "yes") {
                    true
                } else if is(val, "no") {
                    false
                } else {
                    return Err(CmdError::Syntax);
                };
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
    }
    let me = c.client.id;
    let victims: Vec<ClientId> = c.eng.clients.iter().filter(|cl| f.matches(cl, me)).map(|cl| cl.id).collect();
    let mut killed = victims.len() as i64;
    for id in victims {
        c.eng.detach_id(id);
    }
    let kill_self = f.matches(c.client, me);
    if kill_self {
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return fail("ERR No such client");
        }
        c.out().ok();
    } else {
        c.out().int(killed);
    }
    if kill_self {
        c.client.close_after_reply = true;
    }
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT | ERROR]: the reason is checked before the ID, as in Redis.
pub fn unblock(c: &mut Ctx) -> CmdResult {
    let as_error = match c.argc() {
        3 => false,
        4 if is(c.arg(3), "TIMEOUT") => false,
        4 if is(c.arg(3), "ERROR") => true,
        4 => return fail("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
        _ => return Err(subcommand_syntax_error(c)),
    };
    let id = ferrokv_resp::parse_i64(c.arg(2)).ok_or(CmdError::err("ERR value is not an integer or out of range"))?;
    let unblocked = id > 0 && c.eng.unblock_on_request(id as ClientId, as_error);
    c.out().int(unblocked as i64);
    Ok(())
}

pub fn pause(c: &mut Ctx) -> CmdResult {
    let ms = ferrokv_resp::parse_i64(c.arg(2)).ok_or(CmdError::err("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return fail("ERR timeout is negative");
    }
    let all = match c.argc() {
        3 => true,
        4 if is(c.arg(3), "WRITE") => false,
        4 if is(c.arg(3), "ALL") => true,
        _ => return fail("ERR CLIENT PAUSE mode must be WRITE or ALL"),
    };
    let until = c.now.checked_add(ms).ok_or(CmdError::err("ERR timeout is out of range"))?;
    // A new pause extends an existing one and ALL wins over WRITE, as in Redis.
    let p = match c.eng.pause {
        Some(old) => Pause { until_ms: old.until_ms.max(until), all: old.all || all },
        None => Pause { until_ms: until, all },
    };
    c.eng.pause = Some(p);
    c.out().ok();
    Ok(())
}

pub fn unpause(c: &mut Ctx) -> CmdResult {
    c.eng.end_pause();
    c.out().ok();
    Ok(())
}

pub fn reply(c: &mut Ctx) -> CmdResult {
    let a = c.arg(2);
    if is(a, "ON") {
        c.client.reply_mode = ReplyMode::On;
        c.out().ok();
    } else if is(a, "OFF") {
        c.client.reply_mode = ReplyMode::Off;
    } else if is(a, "SKIP") {
        if c.client.reply_mode != ReplyMode::Off {
            c.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

pub fn no_evict(c: &mut Ctx) -> CmdResult {
    let a = c.arg(2);
    if is(a, "ON") {
        c.client.no_evict = true;
    } else if is(a, "OFF") {
        c.client.no_evict = false;
    } else {
        return Err(CmdError::Syntax);
    }
    c.out().ok();
    Ok(())
}

pub fn setinfo(c: &mut Ctx) -> CmdResult {
    let (attr, val) = (c.arg(2), c.arg(3));
    let lib_name = is(attr, "LIB-NAME");
    if !lib_name && !is(attr, "LIB-VER") {
        return Err(CmdError::msg(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(attr))));
    }
    if !valid_client_name(val) {
        let what = if lib_name { "lib-name" } else { "lib-ver" };
        return Err(CmdError::msg(format!("ERR {what} cannot contain spaces, newlines or special characters.")));
    }
    let v = (!val.is_empty()).then(|| val.to_vec());
    if lib_name {
        c.client.lib_name = v;
    } else {
        c.client.lib_ver = v;
    }
    c.out().ok();
    Ok(())
}

pub fn help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "GETNAME",
            "    The name of this connection.",
            "ID",
            "    The id of this connection.",
            "INFO",
            "    Information about this connection.",
            "KILL <ip:port> | <option> <value> [<option> <value> ...]",
            "    Close connections by address or by ID, TYPE, USER, ADDR, LADDR, SKIPME.",
            "LIST [TYPE normal|master|replica|pubsub] [ID <id> ...]",
            "    One line per connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect this connection from client eviction.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend clients (only writes with WRITE) for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control replies to this connection's commands.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Record the client library's name or version.",
            "SETNAME <name>",
            "    Name this connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "UNPAUSE",
            "    End a CLIENT PAUSE.",
        ],
    )
}
