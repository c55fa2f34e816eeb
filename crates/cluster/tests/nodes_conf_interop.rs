//! nodes.conf files written by real redis-server 7.0 cluster nodes parse and render back
//! byte for byte: masters, a replica, open slots, a hostname, epochs.

mod support;

use ferrokv_cluster::nodes_conf::{self, flags, OpenSlot};
use std::time::Duration;
use support::{redis_server, wait_for, ClusterRedis, Reply};

fn ok(reply: Reply) {
    assert_eq!(reply, Reply::Status("OK".into()));
}

#[test]
fn redis_written_nodes_conf_round_trips() {
    let Some(program) = redis_server() else { return };
    let a = ClusterRedis::start(&program, &["--cluster-announce-hostname", "node-a.example"]);
    let b = ClusterRedis::start(&program, &[]);
    let r = ClusterRedis::start(&program, &[]);
    let (mut ca, mut cb, mut cr) = (a.client(), b.client(), r.client());
    ok(ca.call(&["CLUSTER", "ADDSLOTSRANGE", "0", "5000", "5002", "5002", "7000", "8000"]).expect("addslots"));
    ok(ca.call(&["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string()]).expect("meet"));
    ok(ca.call(&["CLUSTER", "MEET", "127.0.0.1", &r.port.to_string()]).expect("meet"));
    let id = |c: &mut support::Client| c.call(&["CLUSTER", "MYID"]).expect("myid").text();
    let (id_a, id_b) = (id(&mut ca), id(&mut cb));
    // Everyone knows everyone, no handshakes left.
    for c in [&mut ca, &mut cb, &mut cr] {
        wait_for(Duration::from_secs(20), "the three nodes to know each other", || {
            let nodes = c.call(&["CLUSTER", "NODES"]).expect("nodes").text();
            (nodes.lines().count() == 3 && !nodes.contains("handshake") && !nodes.contains("noaddr")).then_some(())
        });
    }
    ok(cr.call(&["CLUSTER", "REPLICATE", &id_a]).expect("replicate"));
    ok(ca.call(&["CLUSTER", "SETSLOT", "100", "MIGRATING", &id_b]).expect("migrating"));
    ok(ca.call(&["CLUSTER", "SETSLOT", "9000", "IMPORTING", &id_b]).expect("importing"));
    for c in [&mut ca, &mut cb] {
        wait_for(Duration::from_secs(20), "a and b to see r as a replica of a", || {
            let nodes = c.call(&["CLUSTER", "NODES"]).expect("nodes").text();
            nodes.lines().any(|l| l.contains(&format!("slave {id_a}"))).then_some(())
        });
    }
    for (server, client) in [(&a, &mut ca), (&b, &mut cb), (&r, &mut cr)] {
        ok(client.call(&["CLUSTER", "SAVECONFIG"]).expect("saveconfig"));
        let path = server.dir.join("nodes.conf");
        let text = std::fs::read_to_string(&path).expect("read nodes.conf");
        let conf =
            nodes_conf::parse(&path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}\n--- file:\n{text}"));
        assert_eq!(nodes_conf::render(&conf), text, "render differs from redis-server's file");
        assert_eq!(conf.nodes.len(), 3, "{text}");
        // Each line also matches CLUSTER NODES (ping/pong times may move between the two calls).
        let listed = client.call(&["CLUSTER", "NODES"]).expect("nodes").text();
        let me = conf.myself().expect("myself");
        let mut mine = String::new();
        nodes_conf::render_node(me, &mut mine);
        assert!(listed.lines().any(|l| l == mine), "{mine:?} not in CLUSTER NODES:\n{listed}");
    }
    let conf_a = nodes_conf::parse("a", &std::fs::read_to_string(a.dir.join("nodes.conf")).expect("read")).expect("a");
    let me = conf_a.myself().expect("myself");
    assert_eq!(me.id, id_a);
    assert_eq!(me.hostname.as_deref(), Some("node-a.example"));
    assert_eq!(me.slots, vec![(0, 5000), (5002, 5002), (7000, 8000)]);
    assert_eq!(me.open_slots, vec![OpenSlot::Migrating(100, id_b.clone()), OpenSlot::Importing(9000, id_b.clone())]);
    let replica = conf_a.nodes.iter().find(|n| n.flags & flags::REPLICA != 0).expect("a knows the replica");
    assert_eq!(replica.master.as_deref(), Some(id_a.as_str()));
}
