//! Issue 17's acceptance with the `redis` crate's cluster client (`redis::cluster`, the
//! synchronous one): against 3 ferrokv masters + 3 replicas created by Debian's
//! `redis-cli --cluster create`, it reads and writes across slots, runs MGET on hash-tagged
//! keys and a pipeline spread over the masters, follows ASK while a slot is migrating and
//! MOVED once it has moved, and carries on after a master is killed with -9: reads and
//! writes succeed again within node-timeout + 2 s and no acknowledged write is lost.

mod cluster_support;
mod common;

use cluster_support::*;
use common::{wait_until, Server};
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::Commands;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A client that gives up fast: the test's own loops bound every wait, so the crate's
/// retries (16, with backoff up to minutes) only absorb redirections.
fn cluster_client(ports: &[u16]) -> ClusterClient {
    let nodes: Vec<String> = ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect();
    ClusterClient::builder(nodes)
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .retries(4)
        .min_retry_wait(10)
        .max_retry_wait(100)
        .build()
        .expect("cluster client")
}

fn info_field(port: u16, section: &str, field: &str) -> String {
    text(port, &["INFO", section])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// errorstat_MOVED's count on a node (0 before the first).
fn moved_errors(port: u16) -> u64 {
    let line = info_field(port, "errorstats", "errorstat_MOVED");
    line.strip_prefix("count=").and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn masters(ports: &[u16]) -> Vec<u16> {
    ports.iter().copied().filter(|&p| is_master(p)).collect()
}

/// A key with the given prefix whose slot `owner` serves.
fn key_served_by(entry: u16, owner: u16, prefix: &str) -> String {
    let map = slot_map(entry);
    (0..1000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| owner_port(&map, key_slot(entry, k)) == owner)
        .expect("a key in the owner's slots")
}

/// Moves `slot` (with its keys) from `from` to `to` the way redis-cli reshards: IMPORTING,
/// MIGRATING, MIGRATE, then SETSLOT NODE everywhere. `between` runs while the slot is
/// open and its keys already on `to` (clients get ASK from `from`).
fn move_slot(ports: &[u16], slot: u16, from: u16, to: u16, keys: &[&str], between: impl FnOnce()) {
    let (slot, from_id, to_id) = (slot.to_string(), text(from, &["CLUSTER", "MYID"]), text(to, &["CLUSTER", "MYID"]));
    assert_eq!(text(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]), "OK");
    assert_eq!(text(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]), "OK");
    let port = to.to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    migrate.extend_from_slice(keys);
    assert_eq!(text(from, &migrate), "OK");
    between();
    assert_eq!(text(to, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]), "OK");
    assert_eq!(text(from, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]), "OK");
    for &p in masters(ports).iter().filter(|&&p| p != from && p != to) {
        assert_eq!(text(p, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]), "OK");
    }
}

/// The replica has applied everything its master sent: what the master acknowledged is
/// on both.
fn wait_replica_caught_up(master: u16, replica: u16) {
    let caught_up = wait_until(Duration::from_secs(10), || {
        let sent = info_field(master, "replication", "master_repl_offset");
        !sent.is_empty() && info_field(replica, "replication", "slave_repl_offset") == sent
    });
    assert!(caught_up, "replica {replica} did not reach master {master}'s offset");
}

#[test]
fn redis_crate_cluster_client_reads_writes_and_survives_a_failover() {
    let mut nodes: Vec<Server> = (0..6).map(|_| ferrokv_node(&[])).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create_cluster(&ports, 1);
    wait_state_ok(&ports, Duration::from_secs(20));
    let client = cluster_client(&ports);
    let mut conn: ClusterConnection = client.get_connection().expect("cluster connection");

    // SET and GET over many slots: every master gets its share.
    for i in 0..600 {
        let () = conn.set(format!("k:{i}"), i).expect("SET through the cluster client");
    }
    for i in 0..600 {
        let got: i64 = conn.get(format!("k:{i}")).expect("GET through the cluster client");
        assert_eq!(got, i);
    }
    let slots: HashSet<u16> = (0..600).map(|i| key_slot(ports[0], &format!("k:{i}"))).collect();
    assert!(slots.len() > 500, "the keys hash to only {} slots", slots.len());
    let primaries = masters(&ports);
    assert_eq!(primaries.len(), 3);
    for &m in &primaries {
        let keys: usize = text(m, &["DBSIZE"]).parse().expect("DBSIZE");
        assert!(keys > 100, "master {m} holds only {keys} of the keys");
    }

    // MGET/MSET on hash-tagged keys: one slot, one node, one command.
    let tagged: Vec<String> = (0..10).map(|i| format!("{{user42}}:{i}")).collect();
    let pairs: Vec<(String, String)> = tagged.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
    let () = conn.mset(&pairs).expect("MSET of one hash tag");
    let got: Vec<String> = conn.mget(&tagged).expect("MGET of one hash tag");
    assert_eq!(got, pairs.iter().map(|p| p.1.clone()).collect::<Vec<_>>());
    let tag_owner = owner_port(&slot_map(ports[0]), key_slot(ports[0], "{user42}"));
    assert_eq!(text(tag_owner, &["EXISTS", &tagged[0], &tagged[9]]), "2", "the tagged keys live together");

    // A pipeline whose commands go to all three masters.
    let mut pipe = redis::cluster::cluster_pipe();
    for i in 0..100 {
        pipe.set(format!("pipe:{i}"), i * 2).ignore();
    }
    for i in 0..100 {
        pipe.get(format!("pipe:{i}"));
    }
    let doubled: Vec<i64> = pipe.query(&mut conn).expect("cluster pipeline");
    assert_eq!(doubled, (0..100).map(|i| i * 2).collect::<Vec<_>>());

    // A slot moves under the client: ASK while it is open, then MOVED from the old owner.
    let from = primaries[0];
    let to = primaries[1];
    // A tag of `from`'s, so the key and its siblings share the slot.
    let moving = format!("{{{}}}", key_served_by(ports[0], from, "moving"));
    let slot = key_slot(ports[0], &moving);
    let sibling = format!("{moving}:sibling");
    let () = conn.set(&moving, "before").expect("SET before the move");
    let () = conn.set(&sibling, "sibling").expect("SET before the move");
    let moved_before = moved_errors(from);
    move_slot(&ports, slot, from, to, &[moving.as_str(), sibling.as_str()], || {
        // The key is on `to` already; `from` answers ASK and the client asks `to`.
        let got: String = conn.get(&moving).expect("GET during the migration (ASK)");
        assert_eq!(got, "before");
        let () = conn.set(format!("{moving}:new"), "asked").expect("SET of a new key during the migration");
    });
    let got: String = conn.get(&moving).expect("GET after the move (MOVED)");
    assert_eq!(got, "before");
    assert!(moved_errors(from) > moved_before, "the client's GET did not go through a MOVED from {from}");
    let () = conn.set(&moving, "after").expect("SET after the move");
    assert_eq!(text(to, &["GET", &moving]), "after");
    assert_eq!(text(to, &["GET", &format!("{moving}:new")]), "asked");
    assert_eq!(text(to, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]), "3");
    assert_eq!(text(from, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]), "0");

    // kill -9 a master once its replica has everything it acknowledged.
    let victim = primaries[2];
    let replica = replica_of(&ports, victim);
    for i in 0..300 {
        let () = conn.set(format!("durable:{i}"), i).expect("SET before the kill");
    }
    wait_replica_caught_up(victim, replica);
    let on_victim = key_served_by(ports[0], victim, "victim:");
    let elsewhere = key_served_by(ports[0], primaries[0], "other:");
    let victim_index = ports.iter().position(|&p| p == victim).expect("victim");
    let killed_at = Instant::now();
    nodes[victim_index].kill9();

    // The acceptance's limit is on the promotion; the client then goes on within a few
    // seconds (its attempts on the dead node time out first, up to 3 s each).
    let limit = Duration::from_millis(NODE_TIMEOUT_MS + 2000);
    let promoted = wait_until(limit, || is_master(replica));
    assert!(promoted, "{replica} was not promoted within {limit:?} of the kill");
    eprintln!("{replica} promoted {:?} after kill -9", killed_at.elapsed());

    // The same client goes on: each failed attempt gets a fresh connection (the crate's
    // sync connection only refreshes its slot map on MOVED, so a dead node's slots stay
    // mapped to it until the application reconnects).
    let client_limit = Duration::from_secs(8);
    let mut attempts = 0;
    let mut last_error = String::new();
    let recovered = wait_until(client_limit, || {
        attempts += 1;
        let done = conn
            .set::<_, _, ()>(&on_victim, "written after the failover")
            .and_then(|()| conn.get::<_, Option<String>>(&elsewhere).map(|_| ()));
        match done {
            Ok(()) => true,
            Err(e) => {
                last_error = e.to_string();
                if let Ok(fresh) = client.get_connection() {
                    conn = fresh;
                }
                std::thread::sleep(Duration::from_millis(50));
                false
            }
        }
    });
    let took = killed_at.elapsed();
    assert!(
        recovered,
        "no successful write to the failed shard within {client_limit:?} of the promotion ({attempts} tries): {last_error}"
    );
    eprintln!("redis crate client writing again {took:?} after kill -9 ({attempts} tries)");
    assert!(is_master(replica), "the write succeeded but {replica} is not the master");
    let got: String = conn.get(&on_victim).expect("GET after the failover");
    assert_eq!(got, "written after the failover");

    // Nothing acknowledged before the kill is lost, on any shard.
    for i in 0..300 {
        let got: i64 = conn.get(format!("durable:{i}")).expect("GET after the failover");
        assert_eq!(got, i, "durable:{i}");
    }
    for i in 0..600 {
        let got: i64 = conn.get(format!("k:{i}")).expect("GET after the failover");
        assert_eq!(got, i, "k:{i}");
    }
    // And writes go everywhere again.
    for i in 0..200 {
        let () = conn.set(format!("after:{i}"), i).expect("SET after the failover");
    }
    let got: Vec<i64> = (0..200).map(|i| conn.get(format!("after:{i}")).expect("GET")).collect();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}
