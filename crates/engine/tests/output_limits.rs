//! Output-buffer limits and client eviction, driven through the engine with time passed in.

mod common;

use common::Harness;
use ferrokv_resp::{Argv, Frame};
use std::collections::VecDeque;

fn set(h: &mut Harness, c: u64, args: &[&str]) {
    assert_eq!(h.cmd(c, args), Frame::Simple("OK".into()), "{args:?}");
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(s.as_bytes().to_vec().into())
}

fn is_closing(h: &Harness, id: u64) -> bool {
    h.eng.must_close(id)
}

#[test]
fn a_reply_stops_growing_at_the_hard_limit_and_dooms_its_client() {
    let mut h = Harness::new();
    let c = h.client();
    set(&mut h, c, &["config", "set", "client-output-buffer-limit", "normal 100kb 0 0"]);
    h.cmd(c, &["hset", "h", "f1", "v1", "f2", "v2"]);
    let started = std::time::Instant::now();
    let mut q = VecDeque::from([Argv::from_slices(&["hrandfield", "h", "-999999999", "withvalues"])]);
    let outcome = h.eng.execute(c, &mut q, h.now, usize::MAX);
    assert_eq!(outcome, ferrokv_engine::Outcome::Close);
    assert!(is_closing(&h, c));
    assert!(started.elapsed().as_secs() < 5, "the loop ends at the limit, not after 10^9 draws");
    assert!(h.take(c).is_empty(), "a doomed client's output is dropped");
    assert_eq!(h.eng.stats.client_output_buffer_limit_disconnections, 1);

    // The same for SRANDMEMBER, and the limit is per client: another one is served.
    let d = h.client();
    h.cmd(d, &["sadd", "s", "a", "b"]);
    let mut q = VecDeque::from([Argv::from_slices(&["srandmember", "s", "-999999999"])]);
    assert_eq!(h.eng.execute(d, &mut q, h.now, usize::MAX), ferrokv_engine::Outcome::Close);
    let e = h.client();
    assert!(matches!(h.cmd(e, &["srandmember", "s", "-3"]), Frame::Array(a) if a.len() == 3));
}

#[test]
fn a_doomed_client_runs_nothing_after_the_command_that_doomed_it() {
    let mut h = Harness::new();
    let c = h.client();
    set(&mut h, c, &["config", "set", "client-output-buffer-limit", "normal 10kb 0 0"]);
    h.cmd(c, &["sadd", "s", "a"]);
    let mut q = VecDeque::from([
        Argv::from_slices(&["srandmember", "s", "-100000"]),
        Argv::from_slices(&["set", "after", "1"]),
    ]);
    h.eng.execute(c, &mut q, h.now, usize::MAX);
    let other = h.client();
    assert_eq!(h.cmd(other, &["exists", "after"]), Frame::Integer(0));
}

#[test]
fn a_subscriber_that_never_reads_is_closed_at_its_pubsub_limit() {
    let mut h = Harness::new();
    let publisher = h.client();
    set(&mut h, publisher, &["config", "set", "client-output-buffer-limit", "pubsub 1mb 0 0"]);
    let sub = h.client();
    h.raw(sub, &["subscribe", "news"]);
    let payload = "x".repeat(10_000);
    let mut delivered = 0;
    for _ in 0..200 {
        match h.cmd(publisher, &["publish", "news", &payload]) {
            Frame::Integer(1) => delivered += 1,
            Frame::Integer(0) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!((90..=110).contains(&delivered), "closed after ~1 MB, got {delivered} messages");
    assert!(is_closing(&h, sub));
    assert_eq!(h.cmd(publisher, &["pubsub", "numsub", "news"]), Frame::Array(vec![bulk("news"), Frame::Integer(0)]));
}

#[test]
fn the_soft_limit_closes_a_client_over_it_for_longer_than_its_seconds() {
    let mut h = Harness::new();
    let publisher = h.client();
    set(&mut h, publisher, &["config", "set", "client-output-buffer-limit", "pubsub 0 100kb 2"]);
    let sub = h.client();
    h.raw(sub, &["subscribe", "news"]);
    let payload = "x".repeat(20_000);
    for _ in 0..10 {
        h.cmd(publisher, &["publish", "news", &payload]);
    }
    assert!(!is_closing(&h, sub), "over the soft limit, but not for 2 s yet");
    h.now += 1_500;
    h.eng.cron(h.now);
    assert!(!is_closing(&h, sub));
    // Reading its output in time resets the clock.
    h.take(sub);
    h.eng.cron(h.now);
    for _ in 0..10 {
        h.cmd(publisher, &["publish", "news", &payload]);
    }
    h.now += 1_500;
    h.eng.cron(h.now);
    assert!(!is_closing(&h, sub), "the soft clock restarted when it drained");
    h.now += 1_000;
    h.eng.cron(h.now);
    assert!(is_closing(&h, sub), "over the soft limit for 2.5 s");
}

#[test]
fn output_in_flight_counts_against_the_limit() {
    let mut h = Harness::new();
    let c = h.client();
    set(&mut h, c, &["config", "set", "client-output-buffer-limit", "normal 50kb 0 0"]);
    h.cmd(c, &["set", "k", &"v".repeat(30_000)]);
    // The connection takes the first reply but cannot write it (the peer does not read).
    let mut q = VecDeque::from([Argv::from_slices(&["get", "k"])]);
    h.eng.execute(c, &mut q, h.now, usize::MAX);
    let mut stuck = Vec::new();
    h.eng.take_output(c, &mut stuck);
    assert!(!is_closing(&h, c));
    let mut q = VecDeque::from([Argv::from_slices(&["get", "k"])]);
    h.eng.execute(c, &mut q, h.now, usize::MAX);
    assert!(is_closing(&h, c), "30 KB in flight + 30 KB queued > 50 KB");
}

#[test]
fn maxmemory_clients_evicts_the_biggest_clients_first_and_spares_no_evict_ones() {
    let mut h = Harness::new();
    let admin = h.client();
    h.cmd(admin, &["config", "set", "maxmemory-clients", "1mb"]);
    h.cmd(admin, &["set", "k", &"v".repeat(100_000)]);
    let small = h.client();
    let protected = h.client();
    h.cmd(protected, &["client", "no-evict", "on"]);
    let big = h.client();
    let medium = h.client();
    // Replies nobody reads pile up: `big` holds 600 KB, `medium` 300 KB, `protected` 500 KB.
    let run = |h: &mut Harness, id: u64, n: usize| {
        let mut q: VecDeque<Argv> = (0..n).map(|_| Argv::from_slices(&["get", "k"])).collect();
        h.eng.execute(id, &mut q, h.now, usize::MAX);
    };
    run(&mut h, small, 1);
    run(&mut h, medium, 3);
    run(&mut h, protected, 5);
    assert_eq!(h.eng.stats.evicted_clients, 0, "{} bytes", h.eng.clients_memory);
    run(&mut h, big, 6);
    assert!(is_closing(&h, big), "the biggest evictable client goes first");
    assert!(!is_closing(&h, protected), "CLIENT NO-EVICT on");
    assert!(!is_closing(&h, small));
    assert!(!is_closing(&h, medium), "evicting `big` was enough");
    assert_eq!(h.eng.stats.evicted_clients, 1);
    assert!(h.eng.clients_memory < 1 << 20);
}
