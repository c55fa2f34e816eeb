//! Issue 12's acceptance tests: with `sync-replicas 1` and ferrokv's sentinels, a failover
//! never loses a write answered OK and no read returns a value a failover takes away.
//!
//! Each scenario runs real processes: one master, two replicas (all `ferrokv server` with
//! `sync-replicas 1`), three `ferrokv sentinel` (quorum 2, down-after 1000 ms), under the
//! load of two writers and a reader that find the master through the sentinels, as
//! Sentinel-aware clients do, and reconnect on errors. Writer `w` sets `k:<w>:<i>` to `i`
//! for i = 0, 1, 2…, a new key for every attempt, and records `i` only when the reply is
//! OK; the reader GETs the keys being written at that moment (the ones a dirty read would
//! show) and records every value it got. After the fault, once the old master rejoined as
//! a replica and the group converged, every OK'd key and every value read must be on
//! every instance. Each scenario prints its figures (acknowledged writes, lost, time from
//! the fault to the first write answered OK).
//!
//! The partition scenarios put the master in a network namespace the test creates, with
//! two paths into it: the one replicas and sentinels use, which the test cuts, and one the
//! clients keep (clients on the master's side of the partition, the case where Redis loses
//! the most). They need root and `ip`: skipped with a reason otherwise, failed in CI.

mod common;
mod sentinel_support;

use common::wait_until;
use ferrokv_resp::Frame;
use sentinel_support::netns::Netns;
use sentinel_support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SYNC: &str = "sync-replicas 1\n";
const WAIT: Duration = Duration::from_secs(30);
const WRITERS: usize = 2;
/// Writer 0's reply timeout: longer than `sync-replicas-timeout` (2000 ms by default), so
/// a held write is seen failing with -UNACKED rather than cut off by the client.
const REPLY_TIMEOUT: Duration = Duration::from_millis(3000);
/// Writer 1 and the reader wait longer than any fault lasts, as clients without a socket
/// timeout do (redis-py's default): they stay with a paused master and get the replies to
/// what they queued when it continues, the writes Redis acknowledges and then loses.
const PATIENT_TIMEOUT: Duration = Duration::from_secs(25);
/// Bounds of every client loop.
const LOAD_MAX: Duration = Duration::from_secs(150);
const MAX_OPS: u64 = 1_000_000;
/// Pause between a client's commands: a steady load that leaves the 2-core machine to the
/// servers and sentinels, whose timers (1 s down-after, 500 ms lease) the test is about.
const PACE: Duration = Duration::from_micros(500);

/// A client connection with short timeouts, speaking RESP directly.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(host: &str, port: u16, timeout: Duration) -> Option<Conn> {
        let addr = SocketAddr::new(host.parse().ok()?, port);
        let s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        s.set_write_timeout(Some(timeout)).ok()?;
        s.set_nodelay(true).ok()?;
        Some(Conn { s, buf: Vec::new() })
    }

    /// One command, one reply; None when none came (the outcome is unknown).
    fn call(&mut self, args: &[&str]) -> Option<Frame> {
        let mut out = Vec::new();
        ferrokv_resp::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
        self.s.write_all(&out).ok()?;
        let mut chunk = [0u8; 16384];
        loop {
            if let Some((f, used)) = Frame::decode(&self.buf).ok()? {
                self.buf.drain(..used);
                return Some(f);
            }
            let n = self.s.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn is_ok(f: &Frame) -> bool {
    matches!(f, Frame::Simple(s) if &s[..] == b"OK")
}

/// The first word of an error reply (`UNACKED`, `READONLY`…).
fn error_code(e: &[u8]) -> String {
    String::from_utf8_lossy(e).split(' ').next().unwrap_or("").to_string()
}

/// Where clients reach the address a sentinel gives (another path into a namespace).
type Route = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The group under test. Fields drop in order: the processes, then the namespace.
struct Group {
    master: Proc,
    replicas: Vec<Proc>,
    sentinels: Vec<Proc>,
    events: Vec<Events>,
    route: Route,
    ns: Option<Netns>,
}

impl Group {
    /// Everything on loopback; `extra` config lines for every server, `master_extra` more
    /// for the master.
    fn loopback(extra: &str, master_extra: &str) -> Group {
        let (master, replicas) = group_of(&ServerKind::Ferrokv, 2, &format!("{extra}{master_extra}"), extra, &[]);
        let sentinels: Vec<Proc> = (0..3).map(|_| sentinel(&SentinelKind::Ferrokv, master.port, "")).collect();
        Group::watched(master, replicas, sentinels, Arc::new(|h: &str| h.to_string()), None)
    }

    /// The master in a namespace, replicas and sentinels outside; clients reach the master
    /// by a second path that [`Netns::cut`] leaves up. None: skipped.
    fn partitioned(extra: &str, master_extra: &str) -> Option<Group> {
        let ns = Netns::with_paths(2)?;
        let inside = Placement { host: Some(ns.inner_addr()), prefix: ns.prefix(), also: vec![ns.inner_addr_of(1)] };
        let outside = Placement { host: Some(ns.root_addr()), ..Default::default() };
        let master = server_node_at(&ServerKind::Ferrokv, &inside, None, &format!("{extra}{master_extra}"));
        let (mhost, mport) = (ns.inner_addr(), master.port);
        let replicas: Vec<Proc> =
            (0..2).map(|_| server_node_at(&ServerKind::Ferrokv, &outside, Some((&mhost, mport)), extra)).collect();
        wait_links_up(&replicas, &[]);
        let sentinels: Vec<Proc> =
            (0..3).map(|_| sentinel_at(&SentinelKind::Ferrokv, &outside, (&mhost, mport), "")).collect();
        let (cut_path, client_path) = (ns.inner_addr(), ns.inner_addr_of(1));
        let route: Route = Arc::new(move |h: &str| if h == cut_path { client_path.clone() } else { h.to_string() });
        Some(Group::watched(master, replicas, sentinels, route, Some(ns)))
    }

    fn watched(master: Proc, replicas: Vec<Proc>, sentinels: Vec<Proc>, route: Route, ns: Option<Netns>) -> Group {
        wait_discovery(&sentinels.iter().collect::<Vec<_>>(), 2);
        let events = sentinels.iter().map(|s| Events::listen(s.port)).collect();
        Group { master, replicas, sentinels, events, route, ns }
    }

    fn members(&self) -> Vec<&Proc> {
        std::iter::once(&self.master).chain(&self.replicas).collect()
    }

    fn member(&self, port: u16) -> &Proc {
        self.members().into_iter().find(|p| p.port == port).unwrap_or_else(|| panic!("no instance on port {port}"))
    }

    fn logs(&self) -> String {
        let procs = self.sentinels.iter().chain(&self.replicas).chain([&self.master]);
        procs.map(|p| format!("== {}:{}\n{}", p.host, p.port, p.log_text())).collect::<Vec<_>>().join("\n")
    }

    /// Waits for the failover away from the master: the promoted replica's port once every
    /// sentinel names it and it says it is master.
    fn wait_switch(&self) -> u16 {
        let switch = self.events[0].wait_for("+switch-master", WAIT);
        let switch = switch.unwrap_or_else(|| panic!("no failover\n{}", self.logs()));
        let new_port: u16 = switch.split(' ').nth(4).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{switch}"));
        assert!(self.replicas.iter().any(|r| r.port == new_port), "{switch}");
        let agreed = wait_until(WAIT, || {
            self.sentinels.iter().all(|s| master_port_from(s.port) == Some(new_port))
                && role_at(&self.member(new_port).host, new_port).is_some_and(|r| r.0 == "master")
        });
        assert!(agreed, "the sentinels did not agree on {new_port}\n{}", self.logs());
        new_port
    }

    /// Waits until `port` replicates `new_port` (the old master demoted by the sentinels).
    fn wait_replica_of(&self, port: u16, new_port: u16) {
        let host = self.member(port).host.clone();
        let ok = wait_until(Duration::from_secs(40), || role_at(&host, port) == Some(("slave".into(), Some(new_port))));
        assert!(ok, "{host}:{port} did not become a replica of {new_port}\n{}", self.logs());
    }

    fn switches(&self) -> usize {
        self.events.iter().map(|e| e.count("+switch-master")).max().unwrap_or(0)
    }
}

/// What the clients share: the fault's time, progress counters, the keys in flight.
struct Shared {
    stop: AtomicBool,
    fault: Mutex<Option<Instant>>,
    oks: AtomicU64,
    oks_after_fault: AtomicU64,
    errors_after_fault: Mutex<BTreeMap<String, usize>>,
    /// Per writer, the index of the write in flight: what the reader reads.
    current: [AtomicU64; WRITERS],
    sentinels: Vec<u16>,
    route: Route,
}

impl Shared {
    fn fault(&self) -> Option<Instant> {
        *self.fault.lock().expect("lock")
    }

    /// A connection to the master the first sentinel that answers names.
    fn connect_master(&self, timeout: Duration) -> Option<Conn> {
        self.sentinels.iter().find_map(|&s| {
            let reply = query(s, &["SENTINEL", "get-master-addr-by-name", MASTER])?;
            let Frame::Array(v) = reply else { return None };
            let (host, port) = (text(v.first()?), text(v.get(1)?).parse().ok()?);
            Conn::open(&(self.route)(&host), port, timeout)
        })
    }

    fn note_error(&self, issued: Instant, code: &str) {
        if self.fault().is_some_and(|f| issued > f) {
            *self.errors_after_fault.lock().expect("lock").entry(code.to_string()).or_default() += 1;
        }
    }
}

#[derive(Default)]
struct WriterLog {
    /// Indexes answered OK.
    acked: Vec<u64>,
    errors: BTreeMap<String, usize>,
    /// From the fault to the first OK of a write sent after it.
    first_after_fault: Option<Duration>,
    /// The longest time between two OKs after the fault.
    longest_gap: Duration,
}

#[derive(Default)]
struct ReaderLog {
    /// (writer, index) of every GET that returned a value.
    seen: Vec<(usize, u64)>,
    errors: BTreeMap<String, usize>,
}

/// Two writers and a reader, until [`Load::finish`].
struct Load {
    shared: Arc<Shared>,
    writers: Vec<JoinHandle<WriterLog>>,
    reader: Option<JoinHandle<ReaderLog>>,
}

impl Load {
    fn start(g: &Group) -> Load {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            fault: Mutex::new(None),
            oks: AtomicU64::new(0),
            oks_after_fault: AtomicU64::new(0),
            errors_after_fault: Mutex::new(BTreeMap::new()),
            current: Default::default(),
            sentinels: g.sentinels.iter().map(|s| s.port).collect(),
            route: g.route.clone(),
        });
        let writers = (0..WRITERS)
            .map(|w| {
                let sh = shared.clone();
                std::thread::spawn(move || write_loop(w, &sh))
            })
            .collect();
        let sh = shared.clone();
        let reader = Some(std::thread::spawn(move || read_loop(&sh)));
        let load = Load { shared, writers, reader };
        let going = wait_until(Duration::from_secs(20), || load.shared.oks.load(Ordering::Relaxed) >= 500);
        assert!(going, "the writers made no progress");
        load
    }

    /// The fault happens now (the counters of what followed the previous one restart).
    fn mark_fault(&self) -> Instant {
        let now = Instant::now();
        *self.shared.fault.lock().expect("lock") = Some(now);
        self.shared.oks_after_fault.store(0, Ordering::Relaxed);
        self.shared.errors_after_fault.lock().expect("lock").clear();
        now
    }

    fn wait_oks_after_fault(&self, n: u64, timeout: Duration) -> bool {
        wait_until(timeout, || self.shared.oks_after_fault.load(Ordering::Relaxed) >= n)
    }

    fn errors_after_fault(&self) -> BTreeMap<String, usize> {
        self.shared.errors_after_fault.lock().expect("lock").clone()
    }

    fn finish(mut self) -> Outcome {
        self.shared.stop.store(true, Ordering::Relaxed);
        let writers = self.writers.drain(..).map(|t| t.join().expect("writer")).collect();
        let reader = self.reader.take().map(|t| t.join().expect("reader")).unwrap_or_default();
        Outcome { writers, reader }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn write_loop(w: usize, sh: &Shared) -> WriterLog {
    let timeout = if w == 0 { REPLY_TIMEOUT } else { PATIENT_TIMEOUT };
    let mut log = WriterLog::default();
    let deadline = Instant::now() + LOAD_MAX;
    let mut conn: Option<Conn> = None;
    let mut last_ok: Option<Instant> = None;
    for i in 0..MAX_OPS {
        if sh.stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(PACE);
        let Some(c) = conn.as_mut() else {
            conn = sh.connect_master(timeout);
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        sh.current[w].store(i, Ordering::Relaxed);
        let issued = Instant::now();
        let reply = c.call(&["SET", &format!("k:{w}:{i}"), &i.to_string()]);
        let code = match &reply {
            Some(f) if is_ok(f) => {
                log.acked.push(i);
                sh.oks.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if let Some(fault) = sh.fault().filter(|f| issued > *f) {
                    sh.oks_after_fault.fetch_add(1, Ordering::Relaxed);
                    log.first_after_fault.get_or_insert(now - fault);
                    let gap = now - last_ok.unwrap_or(fault).max(fault);
                    log.longest_gap = log.longest_gap.max(gap);
                }
                last_ok = Some(now);
                continue;
            }
            Some(Frame::Error(e)) => error_code(e),
            Some(other) => format!("unexpected {other:?}"),
            None => "no reply".to_string(),
        };
        *log.errors.entry(code.clone()).or_default() += 1;
        sh.note_error(issued, &code);
        // A write not acknowledged in time leaves the connection usable; anything else
        // (fenced, demoted, dead) sends the client back to the sentinels.
        if code != "UNACKED" {
            conn = None;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    log
}

fn read_loop(sh: &Shared) -> ReaderLog {
    let mut log = ReaderLog::default();
    let deadline = Instant::now() + LOAD_MAX;
    let mut conn: Option<Conn> = None;
    for n in 0..MAX_OPS {
        if sh.stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(PACE);
        let Some(c) = conn.as_mut() else {
            conn = sh.connect_master(PATIENT_TIMEOUT);
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            continue;
        };
        // The write in flight, and the one before: a dirty read would return them.
        let w = n as usize % WRITERS;
        let i = sh.current[w].load(Ordering::Relaxed).saturating_sub(n / WRITERS as u64 % 2);
        let code = match c.call(&["GET", &format!("k:{w}:{i}")]) {
            Some(Frame::Bulk(v)) => {
                assert_eq!(&v[..], i.to_string().as_bytes(), "k:{w}:{i} holds another value");
                log.seen.push((w, i));
                continue;
            }
            Some(Frame::Null) => continue,
            Some(Frame::Error(e)) => error_code(&e),
            Some(other) => format!("unexpected {other:?}"),
            None => "no reply".to_string(),
        };
        *log.errors.entry(code).or_default() += 1;
        conn = None;
        std::thread::sleep(Duration::from_millis(20));
    }
    log
}

struct Outcome {
    writers: Vec<WriterLog>,
    reader: ReaderLog,
}

impl Outcome {
    fn acked(&self) -> Vec<(usize, u64)> {
        self.writers.iter().enumerate().flat_map(|(w, l)| l.acked.iter().map(move |&i| (w, i))).collect()
    }

    fn first_after_fault(&self) -> Option<Duration> {
        self.writers.iter().filter_map(|l| l.first_after_fault).min()
    }

    fn errors(&self) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for (k, n) in self.writers.iter().flat_map(|l| &l.errors) {
            *all.entry(format!("write {k}")).or_default() += n;
        }
        for (k, n) in &self.reader.errors {
            *all.entry(format!("read {k}")).or_default() += n;
        }
        all
    }
}

/// How many of the keys `host:port` lacks (or holds with another value).
fn missing_on(host: &str, port: u16, keys: &[(usize, u64)]) -> usize {
    let mut c = Conn::open(host, port, REPLY_TIMEOUT).unwrap_or_else(|| panic!("connect to {host}:{port}"));
    keys.chunks(1000)
        .map(|chunk| {
            let names: Vec<String> = chunk.iter().map(|(w, i)| format!("k:{w}:{i}")).collect();
            let mut args = vec!["MGET"];
            args.extend(names.iter().map(String::as_str));
            let Some(Frame::Array(vals)) = c.call(&args) else { panic!("MGET on {host}:{port} failed") };
            chunk
                .iter()
                .zip(vals)
                .filter(|((_, i), v)| !matches!(v, Frame::Bulk(b) if b[..] == *i.to_string().as_bytes()))
                .count()
        })
        .sum()
}

/// Once every other instance replicates `new_port` and converged with it: every write
/// answered OK, and every value a read returned, is on each of them. Prints the figures.
fn verify(name: &str, g: &Group, new_port: u16, out: &Outcome, fault_to_switch: Option<Duration>) {
    let new = g.member(new_port);
    for p in g.members().into_iter().filter(|p| p.port != new_port) {
        assert_converged(new, p);
    }
    let (acked, seen) = (out.acked(), &out.reader.seen);
    let mut lost = BTreeSet::new();
    let mut gone = BTreeSet::new();
    for p in g.members() {
        let n = missing_on(&p.host, p.port, &acked);
        if n > 0 {
            lost.insert((p.port, n));
        }
        let n = missing_on(&p.host, p.port, seen);
        if n > 0 {
            gone.insert((p.port, n));
        }
    }
    let gone_on_new = gone.iter().find(|(p, _)| *p == new_port).map_or(0, |(_, n)| *n);
    let lost_on_new = lost.iter().find(|(p, _)| *p == new_port).map_or(0, |(_, n)| *n);
    eprintln!(
        "zero-loss [{name}]: {} writes acknowledged, {lost_on_new} lost; {} reads returned a value, {gone_on_new} gone; first write OK {:?} after the fault; +switch-master after {:?}; errors {:?}",
        acked.len(),
        seen.len(),
        out.first_after_fault(),
        fault_to_switch,
        out.errors()
    );
    assert!(lost.is_empty(), "[{name}] acknowledged writes lost (port, count): {lost:?}\n{}", g.logs());
    assert!(gone.is_empty(), "[{name}] reads returned values that are gone (port, count): {gone:?}\n{}", g.logs());
}

/// Waits out the rest of a fault that lasts `length` from `since` (the scenario's own
/// duration, not a wait for a condition).
fn hold_until(since: Instant, length: Duration) {
    if let Some(rest) = length.checked_sub(since.elapsed()) {
        std::thread::sleep(rest);
    }
}

#[test]
fn sync_kill9_of_the_master_loses_no_acknowledged_write() {
    let mut g = Group::loopback(SYNC, "appendonly yes\n");
    let load = Load::start(&g);
    let old = g.master.port;
    g.master.kill9();
    let fault = load.mark_fault();
    let new_port = g.wait_switch();
    let switched = fault.elapsed();
    assert!(load.wait_oks_after_fault(200, WAIT), "writes did not resume\n{}", g.logs());
    // It comes back from its AOF, possibly with writes no replica acknowledged, and
    // believes it is master: the sentinels demote it and it takes the new master's data.
    g.master.start();
    g.wait_replica_of(old, new_port);
    let out = load.finish();
    verify("kill -9", &g, new_port, &out, Some(switched));
    assert_eq!(g.switches(), 1);
}

#[test]
fn sync_master_stopped_for_10s_loses_no_acknowledged_write() {
    let g = Group::loopback(SYNC, "");
    let load = Load::start(&g);
    let old = g.master.port;
    g.master.signal("STOP");
    let fault = load.mark_fault();
    let new_port = g.wait_switch();
    let switched = fault.elapsed();
    assert!(load.wait_oks_after_fault(200, WAIT), "writes did not resume\n{}", g.logs());
    hold_until(fault, Duration::from_secs(10));
    // It wakes up with the writes clients queued meanwhile: fenced, it answers none OK.
    g.master.signal("CONT");
    g.wait_replica_of(old, new_port);
    let out = load.finish();
    verify("SIGSTOP 10 s", &g, new_port, &out, Some(switched));
    assert_eq!(g.switches(), 1);
}

#[test]
fn sync_master_partitioned_for_20s_loses_no_acknowledged_write() {
    let Some(g) = Group::partitioned(SYNC, "") else { return };
    let Some(ns) = g.ns.as_ref() else { return };
    let load = Load::start(&g);
    let old = g.master.port;
    // Replicas and sentinels lose the master; the clients keep their path to it.
    ns.cut();
    let fault = load.mark_fault();
    let new_port = g.wait_switch();
    let switched = fault.elapsed();
    assert!(load.wait_oks_after_fault(200, WAIT), "writes did not resume\n{}", g.logs());
    hold_until(fault, Duration::from_secs(20));
    ns.heal();
    g.wait_replica_of(old, new_port);
    let out = load.finish();
    verify("partition 20 s", &g, new_port, &out, Some(switched));
    assert_eq!(g.switches(), 1);
}

#[test]
fn sync_master_killed_200ms_after_its_replication_link_was_cut_loses_no_acknowledged_write() {
    let Some(mut g) = Group::partitioned(SYNC, "appendonly yes\n") else { return };
    let load = Load::start(&g);
    let old = g.master.port;
    let Some(ns) = g.ns.as_ref() else { return };
    ns.cut();
    let fault = load.mark_fault();
    // Clients still reach it: whatever it takes in these 200 ms no replica has.
    hold_until(fault, Duration::from_millis(200));
    g.master.kill9();
    // The link stays cut until the failover, as when the machine died: healed at once, the
    // kernel would still deliver what the dead process left in its sockets' buffers.
    let new_port = g.wait_switch();
    let switched = fault.elapsed();
    ns.heal();
    assert!(load.wait_oks_after_fault(200, WAIT), "writes did not resume\n{}", g.logs());
    g.master.start();
    g.wait_replica_of(old, new_port);
    let out = load.finish();
    verify("link cut, kill -9 200 ms later", &g, new_port, &out, Some(switched));
    assert_eq!(g.switches(), 1);
}

#[test]
fn sync_one_replica_down_writes_keep_succeeding_with_the_other() {
    let mut g = Group::loopback(SYNC, "");
    let load = Load::start(&g);
    g.replicas[0].kill9();
    let fault = load.mark_fault();
    hold_until(fault, Duration::from_secs(3));
    assert!(load.wait_oks_after_fault(1000, WAIT), "writes stopped\n{}", g.logs());
    let errors = load.errors_after_fault();
    assert!(errors.is_empty(), "writes failed with one replica left: {errors:?}\n{}", g.logs());
    // It comes back empty (no persistence) and copies the dataset again.
    g.replicas[0].start();
    let out = load.finish();
    let gap = out.writers.iter().map(|l| l.longest_gap).max();
    eprintln!(
        "zero-loss [one replica down]: longest time without an OK after the kill {gap:?}, {:?} since",
        fault.elapsed()
    );
    verify("one replica down", &g, g.master.port, &out, None);
    assert_eq!(g.switches(), 0);
}

#[test]
fn sync_both_replicas_down_no_write_is_answered_ok() {
    let mut g = Group::loopback(SYNC, "");
    let load = Load::start(&g);
    for r in g.replicas.iter_mut() {
        r.kill9();
    }
    let fault = load.mark_fault();
    // With fewer than N replicas connected the master is fenced at once (-READONLY); the
    // writes held when the replicas died fail with -UNACKED after sync-replicas-timeout.
    // Past that timeout every write sent since the kill has had its answer.
    hold_until(fault, Duration::from_millis(3000));
    let errors = load.errors_after_fault();
    let oks = load.shared.oks_after_fault.load(Ordering::Relaxed);
    assert_eq!(oks, 0, "a write sent with both replicas down was answered OK ({errors:?})");
    assert!(errors.get("READONLY").is_some_and(|&n| n >= 10), "{errors:?}\n{}", g.logs());
    assert!(errors.keys().all(|k| k == "READONLY" || k == "UNACKED" || k == "no reply"), "{errors:?}");
    let down_for = fault.elapsed();
    let restarted = Instant::now();
    for r in g.replicas.iter_mut() {
        r.start();
    }
    assert!(load.wait_oks_after_fault(200, WAIT), "writes did not resume\n{}", g.logs());
    let out = load.finish();
    eprintln!(
        "zero-loss [both replicas down]: no write answered OK in {down_for:?} (errors {:?}); first OK {:?} after the replicas' restart began",
        out.errors(),
        out.first_after_fault().map(|d| d.saturating_sub(restarted - fault))
    );
    verify("both replicas down", &g, g.master.port, &out, None);
    assert_eq!(g.switches(), 0);
}

/// Every key of an instance (KEYS *).
fn keys_of(p: &Proc) -> BTreeSet<String> {
    match query_at(&p.host, p.port, &[], &["KEYS", "*"]) {
        Some(Frame::Array(v)) => v.iter().map(text).collect(),
        other => panic!("KEYS on {}: {other:?}", p.port),
    }
}

#[test]
fn master_restarted_without_its_data_wipes_no_replica_and_is_failed_over() {
    // The default configuration: no sync-replicas, no persistence, empty-master-guard yes.
    let mut g = Group::loopback("", "");
    let load = Load::start(&g);
    let old = g.master.port;
    g.master.kill9();
    // The replicas' datasets stand still until the master is back: each key they hold now
    // must survive.
    let held: Vec<BTreeSet<String>> = g.replicas.iter().map(keys_of).collect();
    g.master.start();
    let fault = load.mark_fault();
    let new_port = g.wait_switch();
    let switched = fault.elapsed();
    assert!(g.events.iter().any(|e| e.find("+empty-master").is_some()), "{}", g.logs());
    g.wait_replica_of(old, new_port);
    // Clients that stayed with the old master (it took writes until its demotion) follow.
    load.mark_fault();
    assert!(load.wait_oks_after_fault(200, WAIT), "writes did not resume on the new master\n{}", g.logs());
    let out = load.finish();
    let new = g.member(new_port);
    for p in g.members().into_iter().filter(|p| p.port != new_port) {
        assert_converged(new, p);
    }
    let now: Vec<BTreeSet<String>> = g.members().into_iter().map(keys_of).collect();
    for (r, before) in held.iter().enumerate() {
        for (m, after) in now.iter().enumerate() {
            let lost = before.difference(after).count();
            assert_eq!(
                lost,
                0,
                "instance {m} lacks {lost} of the {} keys replica {r} held\n{}",
                before.len(),
                g.logs()
            );
        }
    }
    // Asynchronous replication: writes acknowledged by the master just before its crash,
    // and those the restarted empty master took until its demotion, are lost.
    let acked = out.acked();
    eprintln!(
        "zero-loss [master restarted empty]: replicas held {:?} keys, none lost; {} writes acknowledged, {} lost (async mode, and the restarted master takes writes until its failover); +switch-master {switched:?} after the restart",
        held.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        acked.len(),
        missing_on(&new.host, new.port, &acked),
    );
    assert_eq!(g.switches(), 1);
}
