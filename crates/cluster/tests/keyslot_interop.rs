//! Our key → slot against a real cluster-enabled redis-server's CLUSTER KEYSLOT.

mod support;

use ferrokv_cluster::slot::key_slot;
use support::{redis_server, ClusterRedis, Reply};

#[test]
fn keyslot_matches_redis() {
    let Some(program) = redis_server() else { return };
    let server = ClusterRedis::start(&program, &[]);
    let mut c = server.client();
    let mut rng = fastrand::Rng::with_seed(17);
    let mut keys: Vec<String> =
        ["", "{", "}", "{}", "{}{a}", "a{b}c", "{{a}}", "a{}", "{a", "}{a}", "foo{bar}{zap}", "user:{1000}:x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for _ in 0..300 {
        let len = rng.usize(0..12);
        keys.push((0..len).map(|_| *rng.choice(b"ab{}xyz019".iter()).expect("non-empty") as char).collect());
    }
    for key in &keys {
        let reply = c.call(&["CLUSTER", "KEYSLOT", key]).expect("KEYSLOT");
        assert_eq!(reply, Reply::Int(i64::from(key_slot(key.as_bytes()))), "key {key:?}");
    }
}
