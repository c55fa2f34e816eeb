//! Synchronous replication (`sync-replicas`) driven through the engine, with the monotonic
//! clock and the replicas' acknowledgements moved by hand.

mod common;
use common::*;
use ferrokv_config::Config;
use ferrokv_engine::ClientId;
use ferrokv_resp::{Argv, Frame};
use std::collections::VecDeque;

fn field(h: &mut Harness, id: ClientId, name: &str) -> String {
    let Frame::Bulk(b) = h.cmd(id, &["INFO", "replication"]) else { panic!("INFO") };
    let info = String::from_utf8_lossy(&b).into_owned();
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_else(|| panic!("no {name}: {info}")).into()
}

struct Group {
    h: Harness,
    writer: ClientId,
    replicas: Vec<ClientId>,
}

/// A master with `sync-replicas n` and `count` replicas online (partial resyncs), the
/// monotonic clock at 1000 ms.
fn group(n: usize, count: usize) -> Group {
    let mut cfg = Config::defaults();
    cfg.set(&[("sync-replicas", &n.to_string()), ("sync-replicas-lease", "500")], true, true).unwrap();
    let mut h = Harness::with_config(cfg);
    h.eng.set_monotonic_now(1000);
    let first = h.client();
    h.raw(first, &["PSYNC", "?", "-1"]);
    let writer = h.client();
    let replid = field(&mut h, writer, "master_replid");
    let mut replicas = Vec::new();
    for i in 0..count {
        let offset: u64 = field(&mut h, writer, "master_repl_offset").parse().unwrap();
        let r = h.client();
        h.cmd(r, &["REPLCONF", "listening-port", &(7000 + i).to_string()]);
        let reply = h.raw(r, &["PSYNC", &replid, &(offset + 1).to_string()]);
        assert!(reply.starts_with(b"+CONTINUE"), "{}", String::from_utf8_lossy(&reply));
        replicas.push(r);
    }
    let mut g = Group { h, writer, replicas };
    g.all_ack();
    g
}

impl Group {
    fn offset(&mut self) -> u64 {
        self.h.eng.repl.offset
    }

    /// A replica acknowledges `offset`.
    fn ack(&mut self, replica: ClientId, offset: u64) {
        self.h.raw(replica, &["REPLCONF", "ACK", &offset.to_string()]);
        self.h.eng.flush_feed();
    }

    /// Renews the lease: a GETACK goes out and every replica answers it.
    fn all_ack(&mut self) {
        self.h.eng.sync_tick();
        self.h.eng.flush_feed();
        let offset = self.offset();
        for r in self.replicas.clone() {
            self.ack(r, offset);
        }
    }

    /// Runs one command as a connection does: execute, flush, then its reply only if
    /// nothing it contains waits for acknowledgements (else None).
    fn run(&mut self, id: ClientId, args: &[&str]) -> Option<Vec<u8>> {
        let mut q = VecDeque::from([Argv::from_slices(args)]);
        self.h.eng.execute(id, &mut q, self.h.now, usize::MAX);
        self.h.eng.flush_feed();
        self.reply(id)
    }

    fn reply(&mut self, id: ClientId) -> Option<Vec<u8>> {
        match self.h.eng.sync_requirement(id) {
            Some(_) => None,
            None => Some(self.h.take(id)),
        }
    }
}

#[test]
fn a_write_is_answered_once_n_replicas_acknowledged_it() {
    let mut g = group(1, 2);
    let w = g.writer;
    assert_eq!(g.run(w, &["SET", "k", "v"]), None, "held until a replica acknowledges");
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    let (r0, r1) = (g.replicas[0], g.replicas[1]);
    g.ack(r0, need - 1);
    assert_eq!(g.reply(w), None, "not far enough");
    g.ack(r1, need);
    assert_eq!(g.reply(w).unwrap(), b"+OK\r\n");
    assert_eq!(field(&mut g.h, w, "sync_committed_offset"), need.to_string());
}

#[test]
fn with_two_required_one_acknowledgement_is_not_enough() {
    let mut g = group(2, 2);
    let w = g.writer;
    assert_eq!(g.run(w, &["INCR", "n"]), None);
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(g.replicas[0], need);
    assert_eq!(g.reply(w), None);
    g.ack(g.replicas[1], need);
    assert_eq!(g.reply(w).unwrap(), b":1\r\n");
}

#[test]
fn a_timed_out_write_is_answered_unacked_never_ok() {
    let mut g = group(1, 1);
    let w = g.writer;
    assert_eq!(g.run(w, &["SET", "k", "v"]), None);
    let (_need, epoch, timeout) = g.h.eng.sync_requirement(w).unwrap();
    assert_eq!(timeout, 2000, "sync-replicas-timeout's default");
    let committed = g.h.eng.repl.sync.committed;
    g.h.eng.sync_finish(w, epoch, committed);
    let out = String::from_utf8(g.h.take(w)).unwrap();
    assert!(out.starts_with("-UNACKED Not acknowledged by 1 replica(s)"), "{out}");
}

#[test]
fn a_pipeline_mixes_held_and_free_replies_and_only_the_held_ones_fail() {
    let mut g = group(1, 1);
    let w = g.writer;
    let mut q: VecDeque<Argv> = [&["PING"][..], &["SET", "k", "1"], &["GET", "clean"], &["GET", "k"]]
        .iter()
        .map(|a| Argv::from_slices(a))
        .collect();
    g.h.eng.execute(w, &mut q, g.h.now, usize::MAX);
    g.h.eng.flush_feed();
    let (_, epoch, _) = g.h.eng.sync_requirement(w).unwrap();
    let committed = g.h.eng.repl.sync.committed;
    g.h.eng.sync_finish(w, epoch, committed);
    let out = String::from_utf8(g.h.take(w)).unwrap();
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(lines[0], "+PONG");
    assert!(lines[1].starts_with("-UNACKED"), "{out}");
    assert_eq!(lines[2], "$-1");
    assert!(lines[3].starts_with("-UNACKED"), "reading the unacknowledged write: {out}");
}

#[test]
fn a_read_of_a_dirty_key_waits_and_a_clean_key_does_not() {
    let mut g = group(1, 1);
    let (w, reader) = (g.writer, g.h.client());
    g.run(w, &["SET", "clean", "1"]);
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(g.replicas[0], need);
    g.reply(w).unwrap();
    assert_eq!(g.run(w, &["SET", "dirty", "2"]), None);
    assert_eq!(g.run(reader, &["GET", "clean"]).unwrap(), b"$1\r\n1\r\n", "clean keys are not delayed");
    assert_eq!(g.run(reader, &["GET", "dirty"]), None, "would show a write a failover can lose");
    assert_eq!(g.run(reader, &["MGET", "clean", "dirty"]), None);
    assert_eq!(g.run(reader, &["DBSIZE"]), None, "a keyless read sees every dirty key");
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(g.replicas[0], need);
    assert_eq!(g.reply(w).unwrap(), b"+OK\r\n");
    let out = g.reply(reader).unwrap();
    assert_eq!(out, b"$1\r\n2\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n:2\r\n");
    assert_eq!(g.run(reader, &["GET", "dirty"]).unwrap(), b"$1\r\n2\r\n", "committed: no wait");
}

#[test]
fn flushall_makes_every_key_dirty_until_acknowledged() {
    let mut g = group(1, 1);
    let (w, reader) = (g.writer, g.h.client());
    assert_eq!(g.run(w, &["FLUSHALL"]), None);
    assert_eq!(g.run(reader, &["GET", "anything"]), None);
}

#[test]
fn a_transaction_is_held_whole() {
    let mut g = group(1, 1);
    let w = g.writer;
    g.run(w, &["MULTI"]).unwrap();
    g.run(w, &["SET", "a", "1"]).unwrap();
    g.run(w, &["GET", "a"]).unwrap();
    assert_eq!(g.run(w, &["EXEC"]), None);
    let (need, epoch, _) = g.h.eng.sync_requirement(w).unwrap();
    g.h.eng.sync_finish(w, epoch, need - 1);
    let out = String::from_utf8(g.h.take(w)).unwrap();
    assert!(out.starts_with("-UNACKED") && out.matches("\r\n").count() == 1, "one error for the EXEC: {out}");
}

#[test]
fn the_lease_fences_a_master_whose_replicas_stopped_acknowledging() {
    let mut g = group(1, 1);
    let w = g.writer;
    assert_eq!(field(&mut g.h, w, "sync_fenced"), "0");
    // The last proof is the GETACK sent at 1000 ms: fenced after 1500 ms.
    g.h.eng.set_monotonic_now(1499);
    assert_eq!(g.run(w, &["GET", "k"]).unwrap(), b"$-1\r\n");
    g.h.eng.set_monotonic_now(1501);
    let out = String::from_utf8(g.run(w, &["GET", "k"]).unwrap()).unwrap();
    assert!(out.starts_with("-READONLY Fenced master: fewer than 1 replica(s)"), "{out}");
    let out = String::from_utf8(g.run(w, &["SET", "k", "v"]).unwrap()).unwrap();
    assert!(out.starts_with("-READONLY Fenced master"), "{out}");
    assert_eq!(g.run(w, &["PING"]).unwrap(), b"+PONG\r\n", "sentinels still see it");
    assert_eq!(field(&mut g.h, w, "sync_fenced"), "1");
    // An acknowledgement of an old request does not renew the lease; one of a new does.
    let before = g.offset();
    g.ack(g.replicas[0], before);
    assert_eq!(field(&mut g.h, w, "sync_fenced"), "1");
    g.all_ack();
    assert_eq!(field(&mut g.h, w, "sync_fenced"), "0");
}

#[test]
fn no_replicas_means_fenced_and_async_mode_is_untouched() {
    let mut cfg = Config::defaults();
    cfg.set(&[("sync-replicas", "1")], true, true).unwrap();
    let mut h = Harness::with_config(cfg);
    let c = h.client();
    assert!(matches!(h.cmd(c, &["SET", "k", "v"]), Frame::Error(e) if e.starts_with(b"READONLY Fenced")));
    h.cmd(c, &["CONFIG", "SET", "sync-replicas", "0"]);
    assert_eq!(h.cmd(c, &["SET", "k", "v"]), simple("OK"));
    assert!(h.eng.sync_requirement(c).is_none());
}

#[test]
fn a_promotion_or_demotion_fails_the_replies_still_waiting() {
    let mut g = group(1, 1);
    let w = g.writer;
    assert_eq!(g.run(w, &["SET", "k", "v"]), None);
    // The new history starts committed at the current offset, past `need`: the old reply
    // must still fail, its epoch is gone.
    let out = String::from_utf8(g.run(w, &["REPLICAOF", "127.0.0.1", "1"]).unwrap()).unwrap();
    assert!(out.starts_with("-UNACKED") && out.ends_with("\r\n+OK\r\n"), "{out}");
}

#[test]
fn getack_requests_reach_replicas_but_never_the_aof() {
    let mut g = group(1, 1);
    let before = g.offset();
    g.h.eng.set_monotonic_now(2000);
    g.h.eng.sync_tick();
    g.h.eng.flush_feed();
    assert_eq!(g.offset() - before, 37, "one REPLCONF GETACK * in the stream");
}

#[test]
fn a_script_that_writes_is_held_and_a_fenced_master_runs_no_data_command_from_scripts() {
    let mut g = group(1, 1);
    let w = g.writer;
    // The key written is not declared in KEYS: the wait comes from the inner write.
    assert_eq!(g.run(w, &["EVAL", "return redis.call('SET', 'undeclared', 'v')", "0"]), None);
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(g.replicas[0], need);
    assert_eq!(g.reply(w).unwrap(), b"+OK\r\n");
    g.h.eng.set_monotonic_now(10_000);
    let out = String::from_utf8(g.run(w, &["EVAL", "return redis.call('GET', 'undeclared')", "0"]).unwrap()).unwrap();
    assert!(out.starts_with("-READONLY Fenced master"), "{out}");
}

/// Long scripts under sync-replicas: with a zero `busy-reply-threshold` a yielding run is
/// suspended at every count hook (each 100,000 Lua instructions), so a counted loop spans
/// many slices whatever the machine's speed.
fn long_script_group() -> Group {
    let mut g = group(1, 1);
    let w = g.writer;
    assert_eq!(g.run(w, &["CONFIG", "SET", "busy-reply-threshold", "0"]).unwrap(), b"+OK\r\n");
    g
}

/// Writes KEYS[1], loops over many slices, then increments KEYS[2].
const WRITE_THEN_LOOP: &str =
    "redis.call('SET', KEYS[1], 'v') for i = 1, 1000000 do end return redis.call('INCR', KEYS[2])";

/// Runs the suspended script of `id` slice by slice, as its connection does, to its end.
fn finish_script(g: &mut Group, id: ClientId) -> usize {
    for slices in 1..=100_000 {
        if g.h.eng.resume_script(id, g.h.now) {
            return slices;
        }
    }
    panic!("the script never ended");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_long_script_lets_others_in_and_its_reply_waits_for_its_writes() {
    let mut g = long_script_group();
    let (w, other, reader, r) = (g.writer, g.h.client(), g.h.client(), g.replicas[0]);
    assert_eq!(g.run(w, &["EVAL", WRITE_THEN_LOOP, "2", "k", "n"]).unwrap(), b"", "nothing yet");
    assert!(g.h.eng.script_suspended(w), "the run paused past the threshold");
    let busy = text(&g.run(other, &["GET", "unrelated"]).unwrap());
    assert!(busy.starts_with("-BUSY Redis is busy running a script."), "{busy}");
    // The lease is renewed meanwhile (the GETACK goes before the script's unflushed
    // writes), so the master is not fenced when the script ends after it.
    g.h.eng.set_monotonic_now(1400);
    g.all_ack();
    g.h.eng.set_monotonic_now(1600);
    let before_end = g.offset();
    assert!(finish_script(&mut g, w) > 1);
    g.h.eng.flush_feed();
    assert_eq!(g.reply(w), None, "held until a replica has the script's writes");
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    assert!(need > before_end, "the need covers the writes flushed at the end");
    // The key the script wrote is dirty up to the same offset, not to a flush that
    // happened while the script was suspended.
    assert_eq!(g.run(reader, &["GET", "k"]), None);
    g.ack(r, need - 1);
    assert_eq!(g.reply(w), None);
    assert_eq!(g.reply(reader), None, "a read of the script's write waits for all of it");
    g.ack(r, need);
    assert_eq!(g.reply(w).unwrap(), b":1\r\n");
    assert_eq!(g.reply(reader).unwrap(), b"$1\r\nv\r\n");
    assert_eq!(field(&mut g.h, other, "sync_fenced"), "0");
}

#[test]
fn a_long_script_inside_exec_holds_the_whole_transaction_reply() {
    let mut g = long_script_group();
    let (w, other, r) = (g.writer, g.h.client(), g.replicas[0]);
    // One batch: a write before the transaction, then the transaction.
    let pipeline: [&[&str]; 6] = [
        &["SET", "pre", "1"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["EVAL", WRITE_THEN_LOOP, "2", "b", "a"],
        &["INCR", "a"],
        &["EXEC"],
    ];
    let mut q: VecDeque<Argv> = pipeline.iter().map(|a| Argv::from_slices(a)).collect();
    g.h.eng.execute(w, &mut q, g.h.now, usize::MAX);
    g.h.eng.flush_feed();
    assert!(g.h.eng.script_suspended(w));
    // The connection settles what waits before the script goes on: the SET's reply here
    // times out, which rewrites bytes before the transaction's half-written reply.
    let (_, epoch, _) = g.h.eng.sync_requirement(w).unwrap();
    let committed = g.h.eng.repl.sync.committed;
    g.h.eng.sync_finish(w, epoch, committed);
    assert_eq!(g.h.take(w), b"", "half a transaction reply must not leave");
    assert!(text(&g.run(other, &["INCR", "a"]).unwrap()).starts_with("-BUSY"));
    finish_script(&mut g, w);
    g.h.eng.flush_feed();
    let (need, epoch, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(r, need - 1);
    assert_eq!(g.reply(w), None);
    g.h.eng.sync_finish(w, epoch, need - 1);
    let out = text(&g.h.take(w));
    let lines: Vec<&str> = out.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].starts_with("-UNACKED"), "{out}");
    assert_eq!(&lines[1..5], ["+OK", "+QUEUED", "+QUEUED", "+QUEUED"], "{out}");
    assert!(lines[5].starts_with("-UNACKED"), "one error for the whole EXEC: {out}");
    // Acknowledged, the same transaction answers whole.
    for cmd in [&["MULTI"][..], &["SET", "a", "1"], &["EVAL", WRITE_THEN_LOOP, "2", "b", "a"], &["INCR", "a"]] {
        g.run(w, cmd).unwrap();
    }
    assert_eq!(g.run(w, &["EXEC"]).unwrap(), b"", "suspended");
    finish_script(&mut g, w);
    g.h.eng.flush_feed();
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(r, need);
    assert_eq!(text(&g.reply(w).unwrap()), "*3\r\n+OK\r\n:2\r\n:3\r\n");
}

#[test]
fn a_looping_read_only_script_is_killed_and_the_server_serves_again() {
    let mut g = long_script_group();
    let (w, other, r) = (g.writer, g.h.client(), g.replicas[0]);
    // Long but finite: without pauses it would end in one go (a test that fails, not one
    // that hangs); paused, it is killed at its next hook.
    let read_only_loop = "for i = 1, 50000000 do end return redis.call('GET', 'k')";
    assert_eq!(g.run(w, &["EVAL", read_only_loop, "0"]).unwrap(), b"");
    assert!(g.h.eng.script_suspended(w));
    assert!(text(&g.run(other, &["SET", "k", "v"]).unwrap()).starts_with("-BUSY"));
    assert_eq!(g.run(other, &["SCRIPT", "KILL"]).unwrap(), b"+OK\r\n");
    finish_script(&mut g, w);
    g.h.eng.flush_feed();
    let killed = text(&g.reply(w).expect("a read-only script's error waits for nothing"));
    assert!(killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{killed}");
    assert_eq!(g.run(other, &["SET", "k", "v"]), None, "served, and held as any write");
    let (need, _, _) = g.h.eng.sync_requirement(other).unwrap();
    g.ack(r, need);
    assert_eq!(g.reply(other).unwrap(), b"+OK\r\n");
    assert_eq!(g.run(w, &["GET", "k"]).unwrap(), b"$1\r\nv\r\n");
}

#[test]
fn two_long_scripts_in_one_transaction_hold_one_reply_from_its_start() {
    let mut g = long_script_group();
    let (w, r) = (g.writer, g.replicas[0]);
    for cmd in [
        &["MULTI"][..],
        &["EVAL", WRITE_THEN_LOOP, "2", "b", "n"],
        &["SET", "c", "1"],
        &["EVAL", WRITE_THEN_LOOP, "2", "d", "n"],
    ] {
        g.run(w, cmd).unwrap();
    }
    assert_eq!(g.run(w, &["EXEC"]).unwrap(), b"");
    // The first script ends, the transaction goes on and suspends again in the second;
    // nothing of the reply leaves meanwhile.
    for _ in 0..100_000 {
        if g.h.eng.resume_script(w, g.h.now) {
            break;
        }
        assert_eq!(g.h.take(w), b"");
    }
    assert!(!g.h.eng.script_suspended(w), "the transaction never ended");
    g.h.eng.flush_feed();
    let (need, epoch, _) = g.h.eng.sync_requirement(w).unwrap();
    g.h.eng.sync_finish(w, epoch, need - 1);
    let out = text(&g.h.take(w));
    assert!(out.starts_with("-UNACKED") && out.matches("\r\n").count() == 1, "one error for the EXEC: {out}");
    for cmd in [&["MULTI"][..], &["EVAL", WRITE_THEN_LOOP, "2", "b", "n"], &["SET", "c", "1"]] {
        g.run(w, cmd).unwrap();
    }
    g.run(w, &["EVAL", WRITE_THEN_LOOP, "2", "d", "n"]).unwrap();
    assert_eq!(g.run(w, &["EXEC"]).unwrap(), b"");
    finish_script(&mut g, w);
    g.h.eng.flush_feed();
    let (need, _, _) = g.h.eng.sync_requirement(w).unwrap();
    g.ack(r, need);
    assert_eq!(text(&g.reply(w).unwrap()), "*3\r\n:3\r\n+OK\r\n:4\r\n");
}
