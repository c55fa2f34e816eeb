//! A consumer-group worker pool, as users run one: worker processes with redis-py and with
//! the `redis` crate's streams API share the group `workers` of the stream `jobs`
//! (XREADGROUP BLOCK, process, XACK) while a producer adds entries. One worker of each kind
//! dies mid-message (killed by PID, holding entries it read and did not acknowledge); a
//! reaper recovers them with XPENDING + XCLAIM and XAUTOCLAIM. At the end every entry was
//! processed at least once, all are acknowledged, the pending list is empty and XINFO GROUPS
//! / CONSUMERS agree. The same pool runs against redis-server, which shows the test's
//! expectations are Redis's.
//!
//! The `redis`-crate workers are this test binary started again on the ignored test
//! [`worker_process`], so that they too are processes the test can kill.

mod common;
use common::*;
use redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamPendingCountReply, StreamReadOptions};
use redis::streams::{StreamClaimReply, StreamReadReply};
use redis::{Commands, Connection, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const STREAM: &str = "jobs";
const GROUP: &str = "workers";
/// Entries idle this long belong to a dead worker as far as the reaper is concerned.
const RECLAIM_IDLE_MS: usize = 500;
/// Bounds every phase of the test.
const PHASE: Duration = Duration::from_secs(30);
/// Bounds a worker's life if the test never says stop.
const WORKER_LIFETIME: Duration = Duration::from_secs(90);
const WORKER_ENV: &str = "FERROKV_STREAM_WORKER";
const PY_WORKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stream_clients/redis_py_worker.py");

fn has_redis_py() -> bool {
    let found = Command::new("python3").args(["-c", "import redis"]).output().is_ok_and(|o| o.status.success());
    if !found {
        if interop_required() {
            panic!("python3 with redis-py is required (FERROKV_REQUIRE_INTEROP=1): pip install redis");
        }
        eprintln!("SKIPPED: python3 with redis-py is not installed (pip install redis)");
    }
    found
}

/// A worker process; its stdout lines arrive on `lines`.
struct Worker {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Worker {
    fn spawn(mut cmd: Command, name: &str) -> Worker {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn worker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Worker { name: name.to_string(), child, lines }
    }

    fn python(port: u16, name: &str, crash_after: usize) -> Worker {
        let mut cmd = Command::new("python3");
        cmd.args([PY_WORKER, &port.to_string(), name, &crash_after.to_string()]);
        Worker::spawn(cmd, name)
    }

    fn rust(port: u16, name: &str, crash_after: usize) -> Worker {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args(["worker_process", "--exact", "--ignored", "--nocapture", "--test-threads=1", "--quiet"]);
        cmd.env(WORKER_ENV, format!("{port} {name} {crash_after}"));
        Worker::spawn(cmd, name)
    }

    /// The IDs the worker announced it holds, if it did by now.
    fn holding(&self) -> Option<Vec<String>> {
        self.lines
            .try_iter()
            .find_map(|l| l.strip_prefix("HOLDING ").map(|ids| ids.split(' ').map(String::from).collect()))
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a worker does with an entry; the reaper does the same with the ones it recovers.
fn process(c: &mut Connection, fields: &HashMap<String, Value>) {
    let n: String = fields.get("n").and_then(|v| redis::from_redis_value(v).ok()).expect("field n");
    let _: () = c.sadd("processed", n).expect("SADD");
    let _: () = c.incr("processings", 1).expect("INCR");
}

/// The `redis`-crate worker, run as its own process by [`Worker::rust`]; the same loop as
/// stream_clients/redis_py_worker.py.
#[test]
#[ignore = "a worker process of worker_pool_survives_crashes, started by it"]
fn worker_process() {
    let spec = std::env::var(WORKER_ENV).expect("started by worker_pool_survives_crashes");
    let mut parts = spec.split(' ');
    let port = parts.next().expect("port");
    let consumer = parts.next().expect("consumer").to_string();
    let crash_after: usize = parts.next().and_then(|s| s.parse().ok()).expect("crash_after");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut c = client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let options = StreamReadOptions::default().group(GROUP, &consumer).count(5).block(100);
    let deadline = Instant::now() + WORKER_LIFETIME;
    let mut batches = 0;
    while Instant::now() < deadline {
        if c.exists("stop").expect("EXISTS") {
            return;
        }
        let reply: Option<StreamReadReply> = c.xread_options(&[STREAM], &[">"], &options).expect("XREADGROUP");
        let Some(entries) = reply.and_then(|r| r.keys.into_iter().next()).map(|k| k.ids).filter(|ids| !ids.is_empty())
        else {
            continue;
        };
        batches += 1;
        if crash_after > 0 && batches > crash_after {
            process(&mut c, &entries[0].map);
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            println!("HOLDING {}", ids.join(" "));
            std::thread::sleep(WORKER_LIFETIME);
            std::process::exit(3);
        }
        for entry in &entries {
            process(&mut c, &entry.map);
            let _: () = c.xack(STREAM, GROUP, &[&entry.id]).expect("XACK");
        }
    }
    panic!("worker {consumer} was never told to stop");
}

/// What the reaper recovered, by the command that claimed it.
#[derive(Default)]
struct Recovered {
    by_xclaim: BTreeSet<String>,
    by_xautoclaim: BTreeSet<String>,
}

/// One reaper round: entries idle for RECLAIM_IDLE_MS are claimed (XPENDING + XCLAIM, then
/// XAUTOCLAIM), processed and acknowledged.
fn reap(c: &mut Connection, recovered: &mut Recovered) {
    let stale: Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg("IDLE")
        .arg(RECLAIM_IDLE_MS)
        .arg("-")
        .arg("+")
        // Fewer than a worker's batch: XAUTOCLAIM finds the rest.
        .arg(2)
        .query(c)
        .expect("XPENDING IDLE");
    let stale: StreamPendingCountReply = redis::from_redis_value(&stale).expect("XPENDING reply");
    let ids: Vec<String> = stale.ids.into_iter().map(|p| p.id).collect();
    if !ids.is_empty() {
        let claimed: StreamClaimReply = c.xclaim(STREAM, GROUP, "reaper", RECLAIM_IDLE_MS, &ids).expect("XCLAIM");
        for entry in claimed.ids {
            process(c, &entry.map);
            let _: () = c.xack(STREAM, GROUP, &[&entry.id]).expect("XACK");
            recovered.by_xclaim.insert(entry.id);
        }
    }
    let options = StreamAutoClaimOptions::default().count(5);
    let auto: StreamAutoClaimReply =
        c.xautoclaim_options(STREAM, GROUP, "reaper", RECLAIM_IDLE_MS, "0-0", options).expect("XAUTOCLAIM");
    assert!(auto.deleted_ids.is_empty(), "nothing was deleted: {:?}", auto.deleted_ids);
    for entry in auto.claimed {
        process(c, &entry.map);
        let _: () = c.xack(STREAM, GROUP, &[&entry.id]).expect("XACK");
        recovered.by_xautoclaim.insert(entry.id);
    }
}

/// Adds `count` entries numbered from `*next` in one MULTI (so that a waiting worker gets
/// a whole batch); returns the last ID.
fn produce(c: &mut Connection, next: &mut usize, count: usize) -> String {
    let mut batch = redis::pipe();
    batch.atomic();
    for _ in 0..count {
        batch.xadd(STREAM, "*", &[("n", next.to_string()), ("payload", "x".repeat(40))]);
        *next += 1;
    }
    let ids: Vec<String> = batch.query(c).expect("XADD batch");
    ids.last().cloned().expect("ids")
}

fn field<'a>(reply: &'a [Value], name: &str) -> &'a Value {
    reply
        .chunks(2)
        .find(|kv| matches!(&kv[0], Value::BulkString(b) if b == name.as_bytes()))
        .map(|kv| &kv[1])
        .unwrap_or_else(|| panic!("no {name} in {reply:?}"))
}

fn int(v: &Value) -> i64 {
    redis::from_redis_value(v).unwrap_or_else(|e| panic!("{v:?}: {e}"))
}

fn run_pool(server: &Server) {
    let mut c = server.conn();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _: () =
        redis::cmd("XGROUP").arg("CREATE").arg(STREAM).arg(GROUP).arg("$").arg("MKSTREAM").query(&mut c).unwrap();
    let port = server.port;
    let mut workers = [
        Worker::python(port, "py-1", 0),
        Worker::python(port, "py-2", 0),
        Worker::python(port, "py-crash", 1),
        Worker::rust(port, "rs-1", 0),
        Worker::rust(port, "rs-2", 0),
        Worker::rust(port, "rs-crash", 1),
    ];
    let crashers = [2, 5];
    // Every worker waits in XREADGROUP before work arrives, so each gets its share (a
    // consumer exists once it was served).
    let blocked = || info_field(&mut server.conn(), "clients", "blocked_clients");
    let all_waiting = wait_until(PHASE, || blocked() == workers.len().to_string());
    assert!(all_waiting, "{} of {} workers waiting", blocked(), workers.len());

    // Produce until both crashers hold entries, then kill them by PID.
    let mut produced = 0;
    let mut held: Vec<Option<Vec<String>>> = vec![None; workers.len()];
    let started = Instant::now();
    while crashers.iter().any(|&i| held[i].is_none()) {
        assert!(
            started.elapsed() < PHASE && produced < 5_000,
            "crashers never got a second batch ({produced} produced)"
        );
        produce(&mut c, &mut produced, 10);
        for &i in &crashers {
            if held[i].is_none() {
                held[i] = workers[i].holding();
            }
        }
        // Paces the producer so that all workers take turns.
        std::thread::sleep(Duration::from_millis(20));
    }
    for &i in &crashers {
        workers[i].child.kill().expect("kill worker");
        workers[i].child.wait().expect("reap worker");
    }
    let last_id = produce(&mut c, &mut produced, 200);

    // The reaper recovers what the dead held while the others carry on.
    let mut recovered = Recovered::default();
    let everything_done = wait_until(PHASE, || {
        reap(&mut c, &mut recovered);
        let processed: usize = c.scard("processed").unwrap();
        processed == produced && pending_count(&mut c) == 0
    });
    let processed: usize = c.scard("processed").unwrap();
    assert!(everything_done, "{processed} of {produced} processed, {} pending", pending_count(&mut c));
    for &i in &crashers {
        let ids = held[i].as_ref().expect("held");
        for id in ids {
            let found = recovered.by_xclaim.contains(id) || recovered.by_xautoclaim.contains(id);
            assert!(found, "{}'s {id} was not recovered by the reaper", workers[i].name);
        }
    }
    assert!(!recovered.by_xclaim.is_empty() && !recovered.by_xautoclaim.is_empty(), "both ways recover");

    let _: () = c.set("stop", 1).unwrap();
    for (i, w) in workers.iter_mut().enumerate() {
        if crashers.contains(&i) {
            continue;
        }
        let status = w.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("{} did not stop", w.name));
        assert!(status.success(), "{} exited with {status}", w.name);
    }

    // At least once: each crasher processed one entry it never acknowledged.
    let processings: usize = c.get("processings").unwrap();
    assert!(processings >= produced + crashers.len(), "{processings} processings of {produced}");
    let members: BTreeSet<usize> = c.smembers("processed").unwrap();
    assert_eq!(members, (0..produced).collect::<BTreeSet<_>>());
    assert_eq!(c.xlen::<_, usize>(STREAM).unwrap(), produced);

    let groups: Vec<Vec<Value>> = redis::cmd("XINFO").arg("GROUPS").arg(STREAM).query(&mut c).unwrap();
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(int(field(group, "pending")), 0, "{group:?}");
    assert_eq!(int(field(group, "entries-read")), produced as i64, "{group:?}");
    assert_eq!(int(field(group, "lag")), 0, "{group:?}");
    assert_eq!(redis::from_redis_value::<String>(field(group, "last-delivered-id")).unwrap(), last_id);
    let consumers = xinfo_consumers(&mut c);
    assert_eq!(int(field(group, "consumers")), consumers.len() as i64);
    for consumer in &consumers {
        assert_eq!(int(field(consumer, "pending")), 0, "{consumer:?}");
    }
    let expected: BTreeSet<String> = workers.iter().map(|w| w.name.clone()).chain(["reaper".to_string()]).collect();
    assert_eq!(consumer_names(&mut c), expected);
    eprintln!(
        "{produced} entries, {processings} processings, recovered {} with XCLAIM and {} with XAUTOCLAIM",
        recovered.by_xclaim.len(),
        recovered.by_xautoclaim.len()
    );
}

fn xinfo_consumers(c: &mut Connection) -> Vec<Vec<Value>> {
    redis::cmd("XINFO").arg("CONSUMERS").arg(STREAM).arg(GROUP).query(c).expect("XINFO CONSUMERS")
}

fn consumer_names(c: &mut Connection) -> BTreeSet<String> {
    xinfo_consumers(c).iter().map(|consumer| redis::from_redis_value(field(consumer, "name")).expect("name")).collect()
}

/// XPENDING's summary count.
fn pending_count(c: &mut Connection) -> usize {
    let summary: Vec<Value> = redis::cmd("XPENDING").arg(STREAM).arg(GROUP).query(c).expect("XPENDING");
    int(&summary[0]) as usize
}

#[test]
fn worker_pool_survives_crashes() {
    if !has_redis_py() {
        return;
    }
    run_pool(&Server::start(&[]));
}

#[test]
fn worker_pool_survives_crashes_on_redis() {
    if !has_redis_py() {
        return;
    }
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    run_pool(&redis);
}
