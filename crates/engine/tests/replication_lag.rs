//! `min-replicas-max-lag` and INFO's `lag=` with time moved by hand: a replica's lag is the
//! time since its last ACK truncated to whole seconds, and it is good while that is at most
//! the setting. (Redis subtracts two unix-second stamps, which reads one second more when
//! the ACK and now straddle a second boundary; see `Replica::lag_secs`.)

mod common;
use common::*;
use ferrokv_config::Config;
use ferrokv_resp::Frame;

/// A second boundary (unix ms), so each case names its offsets from it.
const SECOND: i64 = 1_700_000_000_000;

fn info_replication(h: &mut Harness, id: ferrokv_engine::ClientId) -> String {
    match h.cmd(id, &["INFO", "replication"]) {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("INFO: {other:?}"),
    }
}

fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name}: {info}"))
        .to_string()
}

/// A master with `min-replicas-to-write 1`, `min-replicas-max-lag 1` and one online
/// replica (a partial resync, so no snapshot is involved) whose last ACK came at `ack_at`.
fn master_with_replica(ack_at: i64) -> (Harness, ferrokv_engine::ClientId, ferrokv_engine::ClientId) {
    let mut cfg = Config::defaults();
    cfg.set(&[("min-replicas-to-write", "1"), ("min-replicas-max-lag", "1")], true, true).unwrap();
    let mut h = Harness::with_config(cfg);
    h.now = ack_at;
    // A first replica asks for a full sync: that creates the backlog the second continues.
    let first = h.client();
    h.raw(first, &["PSYNC", "?", "-1"]);
    let writer = h.client();
    let info = info_replication(&mut h, writer);
    let (replid, offset) = (field(&info, "master_replid"), field(&info, "master_repl_offset"));
    let next = (offset.parse::<i64>().unwrap() + 1).to_string();
    let replica = h.client();
    assert_eq!(h.cmd(replica, &["REPLCONF", "listening-port", "7000"]), simple("OK"));
    let reply = h.raw(replica, &["PSYNC", &replid, &next]);
    assert!(reply.starts_with(b"+CONTINUE"), "{}", String::from_utf8_lossy(&reply));
    h.raw(replica, &["REPLCONF", "ACK", &offset]);
    (h, writer, replica)
}

fn online_replica_lag(info: &str) -> String {
    let line = info.lines().find(|l| l.contains("state=online")).unwrap_or_else(|| panic!("no online replica: {info}"));
    line.rsplit(',').find_map(|kv| kv.strip_prefix("lag=")).expect("lag=").to_string()
}

#[test]
fn a_replica_is_good_while_its_lag_in_whole_seconds_is_at_most_max_lag() {
    // ACK at the start of a second: 1999 ms later the lag is 1 s, still good (a check in
    // milliseconds refused writes here); at 2000 ms it is 2 s, not good.
    let (mut h, writer, _) = master_with_replica(SECOND);
    h.now = SECOND + 1_999;
    assert_eq!(h.cmd(writer, &["SET", "k", "v"]), simple("OK"));
    let info = info_replication(&mut h, writer);
    assert_eq!((field(&info, "min_slaves_good_slaves"), online_replica_lag(&info)), ("1".into(), "1".into()));
    h.now = SECOND + 2_000;
    assert_eq!(h.cmd(writer, &["SET", "k", "v"]), err("NOREPLICAS Not enough good replicas to write."));
    let info = info_replication(&mut h, writer);
    assert_eq!((field(&info, "min_slaves_good_slaves"), online_replica_lag(&info)), ("0".into(), "2".into()));

    // ACK at the end of a second: the turn of the second does not age it (Redis would
    // read lag 1 two milliseconds later, and 2 a second after that).
    let (mut h, writer, _) = master_with_replica(SECOND + 999);
    h.now = SECOND + 1_001;
    let info = info_replication(&mut h, writer);
    assert_eq!((field(&info, "min_slaves_good_slaves"), online_replica_lag(&info)), ("1".into(), "0".into()));
    // The next ACK is a few ms late: 1001 ms after the last one the replica is still good
    // (Redis: 2 - 0 = 2 > 1, NOREPLICAS — what CI once caught on a loaded machine).
    h.now = SECOND + 2_000;
    assert_eq!(h.cmd(writer, &["SET", "k", "v"]), simple("OK"));
    let info = info_replication(&mut h, writer);
    assert_eq!((field(&info, "min_slaves_good_slaves"), online_replica_lag(&info)), ("1".into(), "1".into()));
    h.now = SECOND + 2_999;
    assert_eq!(h.cmd(writer, &["SET", "k", "v"]), err("NOREPLICAS Not enough good replicas to write."));
    let info = info_replication(&mut h, writer);
    assert_eq!((field(&info, "min_slaves_good_slaves"), online_replica_lag(&info)), ("0".into(), "2".into()));
}

#[test]
fn replicas_acknowledging_once_a_second_never_stop_the_writes() {
    // A replica's ACK timer fires every second, each ACK up to 300 ms late (scheduling
    // jitter on a loaded machine), starting just before a second boundary so the gaps
    // straddle boundaries; writes come every millisecond for 20 s. A check in
    // milliseconds (gap > 1000) and Redis's unix-second subtraction both refuse here.
    let start = SECOND + 990;
    let (mut h, writer, replica) = master_with_replica(start);
    let mut acks = (1..).map(|k: i64| start + k * 1_000 + (k * 37) % 300);
    let mut next_ack = acks.next().unwrap();
    let mut refused = Vec::new();
    for ms in 0..20_000 {
        h.now = start + ms;
        if h.now >= next_ack {
            h.raw(replica, &["REPLCONF", "ACK", "0"]);
            next_ack = acks.next().unwrap();
        }
        if h.cmd(writer, &["SET", "k", "v"]) != simple("OK") {
            refused.push(h.now - SECOND);
        }
    }
    assert!(refused.is_empty(), "{} writes refused, at ms {:?}", refused.len(), &refused[..refused.len().min(10)]);
}
