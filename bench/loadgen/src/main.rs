//! A load generator for the bench/ scripts, for what redis-benchmark cannot do: a `WAIT`
//! after every write (how Redis users get acknowledged writes today), with per-operation
//! latency percentiles. Not part of the product.
//!
//!     ferrokv-loadgen --port 6379 --mode set|get|setwait|xreadgroup [--clients 50]
//!                     [--pipeline 1] [--requests 200000] [--keyspace 100000]
//!                     [--wait-replicas 1]
//!
//! Each client sends `pipeline` operations, reads their replies, and repeats until the
//! requests are used up. An operation is one command, or SET + WAIT n 0 in `setwait` mode,
//! or in `xreadgroup` mode a consumer's XREADGROUP GROUP g c<n> COUNT 1 STREAMS
//! bench:stream > and the XACK of what it read (sent with the next batch's reads: a
//! worker acknowledging as it goes). The stream and its group `g` must exist with at
//! least `requests` entries.
//! Prints one line: `ops=<n> secs=<s> ops_per_sec=<x> p50_ms=<y> p99_ms=<z> errors=<e>`
//! (latency of an operation = its batch's round trip).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone)]
struct Opts {
    port: u16,
    mode: String,
    clients: usize,
    pipeline: usize,
    requests: u64,
    keyspace: u64,
    wait_replicas: u64,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        port: 6379,
        mode: "set".into(),
        clients: 50,
        pipeline: 1,
        requests: 200_000,
        keyspace: 100_000,
        wait_replicas: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).ok_or_else(|| format!("{} needs a value", args[i]))?;
        let num = || v.parse::<u64>().map_err(|e| format!("{}: {e}", args[i]));
        match args[i].as_str() {
            "--port" => o.port = num()? as u16,
            "--mode" => o.mode = v.clone(),
            "--clients" => o.clients = num()? as usize,
            "--pipeline" => o.pipeline = num()?.max(1) as usize,
            "--requests" => o.requests = num()?,
            "--keyspace" => o.keyspace = num()?.max(1),
            "--wait-replicas" => o.wait_replicas = num()?,
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    if !matches!(o.mode.as_str(), "set" | "get" | "setwait" | "xreadgroup") {
        return Err(format!("unknown mode {}", o.mode));
    }
    Ok(o)
}

fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Length of the complete reply at the start of `buf` (None: incomplete), and whether
/// it is an error. Replies here are flat: status, error, integer, bulk, or an array of
/// bulks (none expected).
fn reply_len(buf: &[u8]) -> Option<(usize, bool)> {
    let nl = buf.windows(2).position(|w| w == b"\r\n")?;
    match buf.first()? {
        b'+' | b':' => Some((nl + 2, false)),
        b'-' => Some((nl + 2, true)),
        b'$' => {
            let n: i64 = std::str::from_utf8(&buf[1..nl]).ok()?.parse().ok()?;
            if n < 0 {
                return Some((nl + 2, false));
            }
            let total = nl + 2 + n as usize + 2;
            (buf.len() >= total).then_some((total, false))
        }
        _ => Some((nl + 2, true)),
    }
}

/// A parsed reply, as far as `xreadgroup` mode needs one.
enum Reply {
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
    Other { error: bool },
}

/// Parses the complete reply at the start of `buf` (None: incomplete).
fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let nl = buf.windows(2).position(|w| w == b"\r\n")?;
    let num = || -> Option<i64> { std::str::from_utf8(&buf[1..nl]).ok()?.parse().ok() };
    match buf.first()? {
        b'$' => {
            let n = num()?;
            if n < 0 {
                return Some((Reply::Other { error: false }, nl + 2));
            }
            let end = nl + 2 + n as usize;
            (buf.len() >= end + 2).then(|| (Reply::Bulk(buf[nl + 2..end].to_vec()), end + 2))
        }
        b'*' => {
            let n = num()?;
            let mut at = nl + 2;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                let (item, used) = parse_reply(&buf[at..])?;
                items.push(item);
                at += used;
            }
            Some((Reply::Array(items), at))
        }
        b'-' => Some((Reply::Other { error: true }, nl + 2)),
        _ => Some((Reply::Other { error: false }, nl + 2)),
    }
}

/// The first entry ID of an XREADGROUP reply (None: nothing was read).
fn first_entry_id(r: &Reply) -> Option<Vec<u8>> {
    let Reply::Array(streams) = r else { return None };
    let Reply::Array(stream) = streams.first()? else { return None };
    let Reply::Array(entries) = stream.get(1)? else { return None };
    let Reply::Array(entry) = entries.first()? else { return None };
    match entry.first()? {
        Reply::Bulk(id) => Some(id.clone()),
        _ => None,
    }
}

/// `xreadgroup` mode: reads one entry per operation and acknowledges it with the next batch.
async fn stream_consumer(o: Opts, left: Arc<AtomicU64>, seed: u64) -> Result<(Vec<u32>, u64), String> {
    let mut s = TcpStream::connect(("127.0.0.1", o.port)).await.map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let consumer = format!("c{seed}");
    let mut latencies_us = Vec::new();
    let mut errors = 0u64;
    let mut to_ack: Vec<Vec<u8>> = Vec::new();
    let mut out = Vec::with_capacity(128 * o.pipeline);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let want = o.pipeline as u64;
        let prev = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| Some(l - want.min(l))).unwrap_or(0);
        let batch = want.min(prev) as usize;
        out.clear();
        let acks = to_ack.len();
        for id in to_ack.drain(..) {
            push_command(&mut out, &[b"XACK", b"bench:stream", b"g", &id]);
        }
        for _ in 0..batch {
            let read: [&[u8]; 9] =
                [b"XREADGROUP", b"GROUP", b"g", consumer.as_bytes(), b"COUNT", b"1", b"STREAMS", b"bench:stream", b">"];
            push_command(&mut out, &read);
        }
        if out.is_empty() {
            return Ok((latencies_us, errors));
        }
        let started = Instant::now();
        s.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut replies = 0;
        while replies < acks + batch {
            while let Some((reply, n)) = parse_reply(&buf) {
                buf.drain(..n);
                if let Reply::Other { error: true } = reply {
                    errors += 1;
                } else if replies >= acks {
                    match first_entry_id(&reply) {
                        Some(id) => to_ack.push(id),
                        None => errors += 1,
                    }
                }
                replies += 1;
            }
            if replies == acks + batch {
                break;
            }
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        latencies_us.extend(std::iter::repeat_n(us, batch));
    }
}

async fn client(o: Opts, left: Arc<AtomicU64>, seed: u64) -> Result<(Vec<u32>, u64), String> {
    if o.mode == "xreadgroup" {
        return stream_consumer(o, left, seed).await;
    }
    let mut s = TcpStream::connect(("127.0.0.1", o.port)).await.map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let wait_n = o.wait_replicas.to_string();
    let per_op = if o.mode == "setwait" { 2 } else { 1 };
    let mut latencies_us = Vec::new();
    let mut errors = 0u64;
    let mut out = Vec::with_capacity(64 * o.pipeline);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let want = o.pipeline as u64;
        let prev = left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| Some(l - want.min(l))).unwrap_or(0);
        let batch = want.min(prev) as usize;
        if batch == 0 {
            return Ok((latencies_us, errors));
        }
        out.clear();
        for _ in 0..batch {
            let key = format!("key:{:012}", next() % o.keyspace);
            match o.mode.as_str() {
                "get" => push_command(&mut out, &[b"GET", key.as_bytes()]),
                "set" => push_command(&mut out, &[b"SET", key.as_bytes(), b"xxx"]),
                _ => {
                    push_command(&mut out, &[b"SET", key.as_bytes(), b"xxx"]);
                    push_command(&mut out, &[b"WAIT", wait_n.as_bytes(), b"0"]);
                }
            }
        }
        let started = Instant::now();
        s.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut replies = 0;
        while replies < batch * per_op {
            while let Some((n, err)) = reply_len(&buf) {
                buf.drain(..n);
                errors += err as u64;
                replies += 1;
            }
            if replies == batch * per_op {
                break;
            }
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("server closed the connection".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        latencies_us.extend(std::iter::repeat_n(us, batch));
    }
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ferrokv-loadgen: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result = rt.block_on(async {
        let left = Arc::new(AtomicU64::new(o.requests));
        let started = Instant::now();
        let tasks: Vec<_> =
            (0..o.clients).map(|i| tokio::spawn(client(o.clone(), left.clone(), i as u64 + 1))).collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            match t.await {
                Ok(Ok((l, e))) => {
                    all.extend(l);
                    errors += e;
                }
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok((all, errors, started.elapsed().as_secs_f64()))
    });
    let (mut lat, errors, secs) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrokv-loadgen: {e}");
            std::process::exit(1);
        }
    };
    lat.sort_unstable();
    let pct =
        |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "ops={} secs={secs:.3} ops_per_sec={:.0} p50_ms={:.3} p99_ms={:.3} errors={errors}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0
    );
}
