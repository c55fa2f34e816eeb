//! REPLICAOF/SLAVEOF, REPLCONF, PSYNC, SYNC, ROLE, WAIT, WAITAOF, FAILOVER: the
//! replication commands (the protocol decisions live in `crate::replication`).

use crate::blocking::{BlockRequest, TimeoutReply};
use crate::client::ReplRole;
use crate::commands::client_cmd::info_line;
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use crate::replication::master::Psync;
use crate::replication::ReplConf;
use ferrokv_keyspace::ValueType;

pub fn replicaof(c: &mut Ctx) -> CmdResult {
    // In cluster mode the cluster decides who replicates whom (CLUSTER REPLICATE).
    if c.eng.cluster.is_some() {
        return fail("ERR REPLICAOF not allowed in cluster mode.");
    }
    if c.eng.repl.failover.is_some() {
        return fail("ERR REPLICAOF not allowed while failing over.");
    }
    if is(c.arg(1), "NO") && is(c.arg(2), "ONE") {
        if !c.eng.is_master_role() {
            c.eng.promote();
            let who = info_line(c.client, false, c.now);
            log::info!("MASTER MODE enabled (user request from '{who}')");
        }
        c.out().ok();
        return Ok(());
    }
    if c.client.repl_role == Some(ReplRole::Replica) {
        return fail("ERR Command is not valid when client is a replica.");
    }
    let port = match ferrokv_resp::parse_i64(c.arg(2)) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        Some(_) => return fail("ERR Invalid master port"),
        None => return Err(CmdError::NotInteger),
    };
    let host = String::from_utf8_lossy(c.arg(1)).into_owned();
    if let Some(m) = &c.eng.repl.master {
        if m.host.eq_ignore_ascii_case(&host) && m.port == port {
            log::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            c.out().raw(b"+OK Already connected to specified master\r\n");
            return Ok(());
        }
    }
    c.eng.follow_master(&host, port, c.now);
    let who = info_line(c.client, false, c.now);
    log::info!("REPLICAOF {host}:{port} enabled (user request from '{who}')");
    c.out().ok();
    Ok(())
}

/// REPLFREEZE milliseconds (ferrokv's own; `crate::replication::guards`): answers the
/// replication ID this replica follows and its offset, final while frozen.
pub fn replfreeze(c: &mut Ctx) -> CmdResult {
    let ms = int_arg(c.arg(1))?;
    if ms < 0 {
        return fail("ERR invalid milliseconds");
    }
    if c.eng.is_master_role() {
        return fail("ERR REPLFREEZE is only valid on a replica");
    }
    let (replid, offset) = c.eng.freeze_replication(ms, c.now);
    let out = c.out();
    out.array(2);
    out.bulk(replid.as_bytes());
    out.int(offset as i64);
    Ok(())
}

pub fn replconf(c: &mut Ctx) -> CmdResult {
    if c.argc().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    let mut i = 1;
    while i < c.argc() {
        let (opt, val) = (c.arg(i), c.arg(i + 1));
        if is(opt, "listening-port") {
            let port = int_arg(val)?;
            c.client.replconf.get_or_insert_with(ReplConf::default).listening_port = port.clamp(0, 65535) as u16;
        } else if is(opt, "ip-address") {
            let ip = String::from_utf8_lossy(val).into_owned();
            c.client.replconf.get_or_insert_with(ReplConf::default).ip = Some(ip);
        } else if is(opt, "capa") {
            let conf = c.client.replconf.get_or_insert_with(ReplConf::default);
            if is(val, "eof") {
                conf.capa_eof = true;
            } else if is(val, "psync2") {
                conf.capa_psync2 = true;
            }
        } else if is(opt, "ack") {
            // Replicas only, and never answered. `FACK <offset>` (Redis 7.2) follows when
            // the replica's AOF is on: what it has fsynced, for WAITAOF.
            if c.client.repl_role == Some(ReplRole::Replica) {
                let offset = int_arg(val)?.max(0) as u64;
                let fack =
                    if c.argc() > i + 3 && is(c.arg(i + 2), "fack") { Some(int_arg(c.arg(i + 3))?) } else { None };
                let id = c.client.id;
                c.eng.replica_ack(id, offset, fack, c.now);
            }
            return Ok(());
        } else if is(opt, "getack") {
            // Answered by the link driver when it comes from our master.
            return Ok(());
        } else if is(opt, "rdb-only") || is(opt, "rdb-filter-only") {
            // Accepted for redis-cli --rdb; they change nothing here.
        } else {
            return Err(CmdError::msg(format!("ERR Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt))));
        }
        i += 2;
    }
    c.out().ok();
    Ok(())
}

fn sync_generic(c: &mut Ctx, replid: &str, from: i64) -> CmdResult {
    if c.client.repl_role == Some(ReplRole::Replica) {
        return Ok(());
    }
    if let Some(m) = &c.eng.repl.master {
        if m.state != crate::replication::LinkState::Connected {
            return fail("NOMASTERLINK Can't SYNC while not connected with my master");
        }
    }
    let name = c.client.conn.addr.clone();
    log::info!("Replica {name} asks for synchronization");
    let now = c.now;
    let (eng, client) = (&mut *c.eng, &mut *c.client);
    match eng.psync(client, replid, from, now) {
        Psync::Continue | Psync::FullResync => Ok(()),
    }
}

pub fn psync(c: &mut Ctx) -> CmdResult {
    let replid = String::from_utf8_lossy(c.arg(1)).into_owned();
    let from = int_arg(c.arg(2))?;
    // Our master hands over to us (its FAILOVER): take over, then answer it as a master.
    if c.argc() > 3 && is(c.arg(3), "FAILOVER") {
        if replid != c.eng.repl.replid {
            return fail("ERR PSYNC FAILOVER replid must match my replid.");
        }
        if !c.eng.is_master_role() {
            c.eng.promote();
            log::info!("Failover request received for replid {replid}.");
        }
    }
    sync_generic(c, &replid, from)
}

pub fn failover(c: &mut Ctx) -> CmdResult {
    if c.eng.cluster.is_some() {
        return fail("ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.");
    }
    if c.argc() == 2 && is(c.arg(1), "ABORT") {
        if c.eng.repl.failover.is_none() {
            return fail("ERR No failover in progress.");
        }
        c.eng.abort_failover("Failover manually aborted");
        c.out().ok();
        return Ok(());
    }
    let (mut timeout, mut force, mut target): (i64, bool, Option<(String, u16)>) = (0, false, None);
    let mut j = 1;
    while j < c.argc() {
        let a = c.arg(j);
        if is(a, "TIMEOUT") && j + 1 < c.argc() && timeout == 0 {
            timeout = int_arg(c.arg(j + 1))?;
            if timeout <= 0 {
                return fail("ERR FAILOVER timeout must be greater than 0");
            }
            j += 2;
        } else if is(a, "TO") && j + 2 < c.argc() && target.is_none() {
            let port = int_arg(c.arg(j + 2))?;
            target = Some((String::from_utf8_lossy(c.arg(j + 1)).into_owned(), port.clamp(0, 65535) as u16));
            j += 3;
        } else if is(a, "FORCE") && !force {
            force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let now = c.now;
    c.eng.start_failover(target, timeout, force, now).map_err(CmdError::err)?;
    c.out().ok();
    Ok(())
}

pub fn sync(c: &mut Ctx) -> CmdResult {
    c.client.replconf.get_or_insert_with(ReplConf::default).legacy = true;
    sync_generic(c, "?", -1)
}

pub fn role(c: &mut Ctx) -> CmdResult {
    let eng = &*c.eng;
    match &eng.repl.master {
        None => {
            let offset = eng.repl.offset as i64;
            let replicas: Vec<(String, String, String)> = eng
                .repl
                .replicas
                .iter()
                .filter(|r| r.state == crate::replication::ReplicaState::Online)
                .map(|r| (r.ip.clone(), r.listening_port.to_string(), r.ack_offset.to_string()))
                .collect();
            let out = c.out();
            out.array(3);
            out.bulk(b"master");
            out.int(offset);
            out.array(replicas.len());
            for (ip, port, off) in replicas {
                out.array(3);
                out.bulk(ip.as_bytes());
                out.bulk(port.as_bytes());
                out.bulk(off.as_bytes());
            }
        }
        Some(m) => {
            let (host, port, state) = (m.host.clone(), m.port, m.state.role_name());
            let offset = if m.state == crate::replication::LinkState::Connected { eng.repl.offset as i64 } else { -1 };
            let out = c.out();
            out.array(5);
            out.bulk(b"slave");
            out.bulk(host.as_bytes());
            out.int(port as i64);
            out.bulk(state.as_bytes());
            out.int(offset);
        }
    }
    Ok(())
}

/// WAITAOF numlocal numreplicas timeout (Redis 7.2): waits until the writes so far are
/// fsynced to the local AOF and/or the AOFs of `numreplicas` replicas; replies
/// `[local, replicas]` either way.
pub fn waitaof(c: &mut Ctx) -> CmdResult {
    let numlocal = int_arg(c.arg(1))?;
    if !(0..=1).contains(&numlocal) {
        return fail("ERR value is out of range, value must between 0 and 1");
    }
    let needed = match ferrokv_resp::parse_i64(c.arg(2)) {
        Some(n) if n >= 0 => n as usize,
        _ => return fail("ERR value is out of range, must be positive"),
    };
    let timeout = timeout_ms(c.arg(3))?;
    if !c.eng.is_master_role() {
        return fail("ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.");
    }
    let numlocal = numlocal == 1;
    if numlocal && !c.eng.persist.aof.enabled {
        return fail(crate::replication::master::WAITAOF_NO_AOF);
    }
    // Everything this client wrote is in the AOF queue and the stream once flushed.
    let ticket = c.eng.flush_feed().unwrap_or_else(|| c.eng.aof_end());
    let offset = c.eng.repl.offset;
    let local = c.eng.aof_fsynced(ticket);
    if ((local || !numlocal) && c.eng.replicas_fsynced(offset) >= needed) || !c.can_block() {
        c.eng.reply_aof_count(c.client, ticket, offset);
        return Ok(());
    }
    let deadline = if timeout == 0 { None } else { Some(c.now + timeout) };
    c.block(BlockRequest {
        keys: Vec::new(),
        deadline_ms: deadline,
        wants: ValueType::String,
        timeout_reply: TimeoutReply::AofCount { ticket, offset, numlocal, needed },
        argv: None,
    });
    c.eng.repl.want_acks = true;
    c.eng.repl.aof_waiters = true;
    Ok(())
}

/// WAIT's and WAITAOF's timeout in milliseconds.
fn timeout_ms(a: &[u8]) -> Result<i64, CmdError> {
    match ferrokv_resp::parse_i64(a) {
        Some(t) if t < 0 => fail("ERR timeout is negative"),
        Some(t) => Ok(t),
        None => fail("ERR timeout is not an integer or out of range"),
    }
}

pub fn wait(c: &mut Ctx) -> CmdResult {
    if !c.eng.is_master_role() {
        return fail("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let needed = int_arg(c.arg(1))?;
    let timeout = timeout_ms(c.arg(2))?;
    // Everything this client wrote is in the stream once the feed is flushed.
    c.eng.flush_feed();
    let offset = c.eng.repl.offset;
    let acked = c.eng.replicas_acked(offset);
    if acked as i64 >= needed || !c.can_block() {
        c.out().int(acked as i64);
        return Ok(());
    }
    let deadline = if timeout == 0 { None } else { Some(c.now + timeout) };
    c.block(BlockRequest {
        keys: Vec::new(),
        deadline_ms: deadline,
        wants: ValueType::String,
        timeout_reply: TimeoutReply::ReplicaCount { offset, needed: needed.max(0) as usize },
        argv: None,
    });
    c.eng.repl.want_acks = true;
    Ok(())
}
