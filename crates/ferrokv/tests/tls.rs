//! TLS (issue 16): the `tls-port` listener with Debian's redis-cli and redis-benchmark,
//! mutual TLS, handshakes that stall or send garbage, certificate reload on CONFIG SET,
//! bad certificates at startup, and replication over TLS in both directions with
//! Debian's redis-server. Certificates are generated here (rcgen), one set per test.

mod common;
mod tls_support;

use common::redis_tool;
use common::{free_port, wait_until, Server, TempDir};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tls_support::Pki;

fn start(pki: &Pki, tls_port: u16, auth_clients: &str, extra: &[&str]) -> Server {
    let mut args = pki.server_args(tls_port, auth_clients);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs)
}

fn run(program: &Path, args: &[String]) -> Output {
    Command::new(program).args(args).output().expect("run program")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn redis_cli_and_redis_benchmark_over_tls_only() {
    let (Some(cli), Some(bench)) = (redis_tool("redis-cli"), redis_tool("redis-benchmark")) else { return };
    let pki = Pki::new();
    let tls_port = free_port();
    // `port 0`: TLS only, as Redis.
    let srv = start(&pki, tls_port, "no", &["--port", "0"]);
    let mut args = pki.cli_args_without_cert(tls_port);
    args.extend(["SET", "greeting", "over tls"].map(String::from));
    assert_eq!(text(&run(&cli, &args)).trim(), "OK");
    let mut args = pki.cli_args_without_cert(tls_port);
    args.extend(["GET", "greeting"].map(String::from));
    assert_eq!(text(&run(&cli, &args)).trim(), "over tls");
    // A plaintext client on the TLS port gets no RESP reply.
    let mut plain = TcpStream::connect(("127.0.0.1", tls_port)).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    plain.write_all(b"PING\r\n").expect("write");
    let mut reply = [0u8; 64];
    let n = plain.read(&mut reply).unwrap_or(0);
    assert!(!reply[..n].starts_with(b"+PONG"), "plain PING answered on the TLS port");

    let mut args = pki.cli_args_without_cert(tls_port);
    args.extend(["-n", "2000", "-c", "4", "-P", "4", "-t", "set,get", "-q", "-r", "100"].map(String::from));
    let out = Command::new(&bench).args(&args).output().expect("redis-benchmark");
    let report = text(&out);
    assert!(out.status.success() && report.contains("SET:") && report.contains("GET:"), "{report}");
    let mut args = pki.cli_args_without_cert(tls_port);
    args.push("DBSIZE".into());
    let keys: i64 = text(&run(&cli, &args)).trim().parse().expect("dbsize");
    assert!(keys > 1, "redis-benchmark's SETs did not land: {keys}");
    drop(srv);
}

#[test]
fn mutual_tls_refuses_clients_without_a_good_certificate() {
    let Some(cli) = redis_tool("redis-cli") else { return };
    let pki = Pki::new();
    pki.authority("rogue-", "rogue CA");
    let tls_port = free_port();
    let _srv = start(&pki, tls_port, "yes", &[]);
    let ping = |mut args: Vec<String>| {
        args.push("PING".into());
        text(&run(&cli, &args))
    };
    assert_eq!(ping(pki.cli_args(tls_port)).trim(), "PONG");
    let refused = ping(pki.cli_args_without_cert(tls_port));
    assert!(!refused.contains("PONG"), "no client certificate, yet: {refused}");
    let mut rogue = pki.cli_args_without_cert(tls_port);
    rogue.extend(["--cert".into(), pki.path("rogue-client.crt"), "--key".into(), pki.path("rogue-client.key")]);
    let refused = ping(rogue);
    assert!(!refused.contains("PONG"), "a certificate from another CA, yet: {refused}");
}

#[test]
fn optional_client_certificates() {
    let Some(cli) = redis_tool("redis-cli") else { return };
    let pki = Pki::new();
    let tls_port = free_port();
    let _srv = start(&pki, tls_port, "optional", &[]);
    for args in [pki.cli_args(tls_port), pki.cli_args_without_cert(tls_port)] {
        let mut args = args;
        args.push("PING".into());
        assert_eq!(text(&run(&cli, &args)).trim(), "PONG");
    }
}

/// True once the server has closed `s` (EOF or reset), waiting up to `timeout`.
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn stalled_and_garbage_handshakes_do_not_hold_other_clients() {
    let pki = Pki::new();
    let tls_port = free_port();
    let srv = start(&pki, tls_port, "no", &[]);
    // A peer that connects and says nothing, one that sends half a ClientHello, one that
    // sends garbage.
    let mut stalled = TcpStream::connect(("127.0.0.1", tls_port)).expect("connect");
    let mut partial = TcpStream::connect(("127.0.0.1", tls_port)).expect("connect");
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]).expect("write");
    let mut garbage = TcpStream::connect(("127.0.0.1", tls_port)).expect("connect");
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    // Everyone else is served meanwhile.
    let mut plain = srv.raw();
    assert_eq!(plain.cmd(&[b"PING"]), b"+PONG\r\n");
    if let Some(cli) = redis_tool("redis-cli") {
        let mut args = pki.cli_args_without_cert(tls_port);
        args.push("PING".into());
        assert_eq!(text(&run(&cli, &args)).trim(), "PONG");
    }
    assert!(closed_within(&mut garbage, Duration::from_secs(5)), "garbage handshake not closed");
    // The handshake timeout (10 s) closes the stalled ones.
    assert!(closed_within(&mut stalled, Duration::from_secs(20)), "stalled handshake never closed");
    assert!(closed_within(&mut partial, Duration::from_secs(5)), "partial handshake never closed");
    assert_eq!(plain.cmd(&[b"PING"]), b"+PONG\r\n");
}

#[test]
fn bad_certificate_or_key_at_startup_names_the_file() {
    let pki = Pki::new();
    pki.write("not-a-cert.crt", "hello\n");
    let dir = TempDir::new("tls-bad");
    let cases = [
        ("--tls-cert-file", pki.path("missing.crt")),
        ("--tls-cert-file", pki.path("not-a-cert.crt")),
        ("--tls-key-file", pki.path("client.key")),
    ];
    for (directive, file) in cases {
        let mut args = pki.server_args(free_port(), "no");
        let at = args.iter().position(|a| a == directive).expect("directive") + 1;
        args[at] = file.clone();
        let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
            .arg("server")
            .args(["--port", "0", "--save", "", "--dir", dir.path().to_str().expect("utf8")])
            .args(&args)
            .output()
            .expect("run ferrokv");
        let said = text(&out);
        assert!(!out.status.success(), "started with {directive} {file}");
        assert!(said.contains(&file), "the error does not name {file}: {said}");
    }
}

#[test]
fn config_set_reloads_the_certificate() {
    let Some(cli) = redis_tool("redis-cli") else { return };
    let pki = Pki::new();
    pki.authority("next-", "next CA");
    let tls_port = free_port();
    let srv = start(&pki, tls_port, "no", &[]);
    let ping_with_ca = |ca: &str| {
        let mut args = pki.cli_args_without_cert(tls_port);
        let at = args.iter().position(|a| a == "--cacert").expect("cacert") + 1;
        args[at] = pki.path(ca);
        args.push("PING".into());
        text(&run(&cli, &args)).trim().to_string()
    };
    assert_eq!(ping_with_ca("ca.crt"), "PONG");
    let mut c = srv.conn();
    // A file that does not load leaves the old context in place.
    let err = redis::cmd("CONFIG").arg("SET").arg("tls-cert-file").arg(pki.path("gone.crt")).query::<()>(&mut c);
    let err = err.expect_err("CONFIG SET of a missing certificate");
    assert!(err.to_string().contains("Unable to update TLS configuration"), "{err}");
    assert!(srv.log_text().contains("gone.crt"), "the log does not name the file");
    assert_eq!(ping_with_ca("ca.crt"), "PONG");
    // Certificate and key together, as an operator rotates them.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("tls-cert-file")
        .arg(pki.path("next-server.crt"))
        .arg("tls-key-file")
        .arg(pki.path("next-server.key"))
        .query(&mut c)
        .expect("rotate");
    assert_eq!(ping_with_ca("next-ca.crt"), "PONG");
    assert_ne!(ping_with_ca("ca.crt"), "PONG");
    // tls-port moves the TLS listener.
    let moved = free_port();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("tls-port").arg(moved).query(&mut c).expect("tls-port");
    let mut args = pki.cli_args_without_cert(moved);
    let at = args.iter().position(|a| a == "--cacert").expect("cacert") + 1;
    args[at] = pki.path("next-ca.crt");
    args.push("PING".into());
    assert_eq!(text(&run(&cli, &args)).trim(), "PONG");
    assert_ne!(ping_with_ca("next-ca.crt"), "PONG", "the old TLS port still listens");
}

fn wait_for_key(c: &mut redis::Connection, key: &str, want: &str) -> bool {
    wait_until(Duration::from_secs(20), || {
        redis::cmd("GET").arg(key).query::<Option<String>>(c).ok().flatten().as_deref() == Some(want)
    })
}

/// The replica directives: TLS to the master with the client certificate.
fn replica_args(pki: &Pki, master_tls_port: u16) -> Vec<String> {
    let mut args = pki.server_args(free_port(), "yes");
    args.extend(["--tls-replication", "yes", "--replicaof", "127.0.0.1"].map(String::from));
    args.push(master_tls_port.to_string());
    args.extend([
        "--tls-client-cert-file".into(),
        pki.path("client.crt"),
        "--tls-client-key-file".into(),
        pki.path("client.key"),
    ]);
    args
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn ferrokv_replica_of_a_ferrokv_master_over_tls() {
    let pki = Pki::new();
    let master_tls = free_port();
    let master = start(&pki, master_tls, "yes", &[]);
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("before").arg("sync").query(&mut m).expect("set");
    let replica = Server::start(&refs(&replica_args(&pki, master_tls)));
    let mut r = replica.conn();
    assert!(wait_for_key(&mut r, "before", "sync"), "no full sync over TLS");
    let _: () = redis::cmd("SET").arg("after").arg("stream").query(&mut m).expect("set");
    assert!(wait_for_key(&mut r, "after", "stream"), "no stream over TLS");
    // The master sees its replica at the replica's TLS port.
    let info: String = redis::cmd("INFO").arg("replication").query(&mut m).expect("info");
    assert!(info.contains("connected_slaves:1"), "{info}");
}

#[test]
fn redis_replica_of_a_ferrokv_master_over_tls() {
    let pki = Pki::new();
    let master_tls = free_port();
    let master = start(&pki, master_tls, "yes", &[]);
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("before").arg("sync").query(&mut m).expect("set");
    let Some(replica) = Server::start_redis(&refs(&replica_args(&pki, master_tls))) else { return };
    let mut r = replica.conn();
    assert!(wait_for_key(&mut r, "before", "sync"), "redis-server did not sync over TLS:\n{}", replica.log_text());
    let _: () = redis::cmd("SET").arg("after").arg("stream").query(&mut m).expect("set");
    assert!(wait_for_key(&mut r, "after", "stream"), "redis-server got no stream over TLS");
}

#[test]
fn ferrokv_replica_of_a_redis_master_over_tls() {
    let pki = Pki::new();
    let master_tls = free_port();
    let mut args = pki.server_args(master_tls, "yes");
    args.extend(["--save", ""].map(String::from));
    let Some(master) = Server::start_redis(&refs(&args)) else { return };
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("before").arg("sync").query(&mut m).expect("set");
    let replica = Server::start(&refs(&replica_args(&pki, master_tls)));
    let mut r = replica.conn();
    assert!(wait_for_key(&mut r, "before", "sync"), "no full sync from redis-server over TLS:\n{}", replica.log_text());
    let _: () = redis::cmd("SET").arg("after").arg("stream").query(&mut m).expect("set");
    assert!(wait_for_key(&mut r, "after", "stream"), "no stream from redis-server over TLS");
}

#[test]
fn a_replica_without_tls_replication_cannot_sync_from_a_tls_only_master() {
    let pki = Pki::new();
    let master_tls = free_port();
    let master = start(&pki, master_tls, "yes", &[]);
    let mut m = master.conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut m).expect("set");
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master_tls.to_string()]);
    let mut r = replica.conn();
    // The master's TLS layer refuses the plaintext PING: every attempt fails.
    assert!(
        wait_until(Duration::from_secs(30), || replica.log_text().matches("Master closed the connection").count() >= 2),
        "the replica never gave up its first attempt:\n{}",
        replica.log_text()
    );
    let got: Option<String> = redis::cmd("GET").arg("k").query(&mut r).expect("get");
    assert_eq!(got, None);
}

fn ferrokv_cli(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrokv")).arg("cli").args(args).output().expect("ferrokv cli")
}

#[test]
fn ferrokv_cli_over_tls_with_redis_cli_options() {
    let pki = Pki::new();
    pki.authority("rogue-", "rogue CA");
    let tls_port = free_port();
    let _srv = start(&pki, tls_port, "yes", &["--port", "0"]);
    let with = |base: Vec<String>, extra: &[&str]| {
        let mut args = base;
        args.extend(extra.iter().map(|s| s.to_string()));
        text(&ferrokv_cli(&args)).trim().to_string()
    };
    assert_eq!(with(pki.cli_args(tls_port), &["SET", "k", "v"]), "OK");
    assert_eq!(with(pki.cli_args(tls_port), &["--sni", "localhost", "GET", "k"]), "v");
    // No client certificate: the server refuses the handshake.
    let refused = with(pki.cli_args_without_cert(tls_port), &["PING"]);
    assert!(!refused.contains("PONG"), "{refused}");
    // A server certificate from a CA we do not trust: refused, unless --insecure.
    let mut wrong_ca = pki.cli_args(tls_port);
    let at = wrong_ca.iter().position(|a| a == "--cacert").expect("cacert") + 1;
    wrong_ca[at] = pki.path("rogue-ca.crt");
    let refused = with(wrong_ca.clone(), &["PING"]);
    assert!(refused.contains("Could not connect") || refused.contains("SSL_connect failed"), "{refused}");
    assert_eq!(with(wrong_ca, &["--insecure", "PING"]), "PONG");
    // rediss:// turns TLS on.
    let mut uri = vec!["-u".to_string(), format!("rediss://127.0.0.1:{tls_port}")];
    uri.extend([
        "--cacert".into(),
        pki.path("ca.crt"),
        "--cert".into(),
        pki.path("client.crt"),
        "--key".into(),
        pki.path("client.key"),
    ]);
    assert_eq!(with(uri, &["GET", "k"]), "v");
}

/// A sentinel configured as Redis's over TLS: its own `tls-port` and `tls-replication yes`
/// (TLS to the servers it monitors), quorum 1.
fn tls_sentinel(program: &[String], pki: &Pki, master_tls: u16) -> (std::process::Child, TempDir, u16, u16) {
    let dir = TempDir::new("tls-sentinel");
    let (port, tls_port) = (free_port(), free_port());
    let conf = dir.path().join("sentinel.conf");
    let text = format!(
        "port {port}\nbind 127.0.0.1\ntls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-replication yes\ndir {}\nlogfile {}\nsentinel monitor mymaster 127.0.0.1 {master_tls} 1\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 6000\n",
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
        dir.path().display(),
        dir.path().join("sentinel.log").display()
    );
    std::fs::write(&conf, text).expect("sentinel.conf");
    let child = Command::new(&program[0])
        .args(&program[1..])
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sentinel");
    (child, dir, port, tls_port)
}

/// `SENTINEL get-master-addr-by-name mymaster`'s port, asked over TLS.
fn master_port_over_tls(cli: &[String], pki: &Pki, sentinel_tls: u16) -> Option<u16> {
    let mut args = pki.cli_args(sentinel_tls);
    args.extend(["SENTINEL", "get-master-addr-by-name", "mymaster"].map(String::from));
    let out = Command::new(&cli[0]).args(&cli[1..]).args(&args).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()
}

#[test]
fn sentinel_over_tls_fails_over_a_tls_only_group() {
    let pki = Pki::new();
    let (master_tls, replica_tls) = (free_port(), free_port());
    let mut master = start(&pki, master_tls, "yes", &["--port", "0"]);
    let mut replica_args = replica_args(&pki, master_tls);
    let at = replica_args.iter().position(|a| a == "--tls-port").expect("tls-port") + 1;
    replica_args[at] = replica_tls.to_string();
    replica_args.extend(["--port", "0"].map(String::from));
    let _replica = Server::start(&refs(&replica_args));
    let ferrokv = env!("CARGO_BIN_EXE_ferrokv").to_string();
    let mut sentinels = vec![vec![ferrokv.clone(), "sentinel".into()]];
    if let Some(bin) = redis_tool("redis-sentinel") {
        sentinels.push(vec![bin.display().to_string()]);
    }
    let cli = vec![ferrokv, "cli".into()];
    let mut running = Vec::new();
    for program in &sentinels {
        let (child, dir, _port, tls_port) = tls_sentinel(program, &pki, master_tls);
        running.push((child, dir, tls_port));
    }
    for (_, dir, tls_port) in &running {
        // The sentinel reaches the master over TLS and finds its replica (at its TLS port)
        // in the master's INFO; clients ask the sentinel over TLS.
        let found = wait_until(Duration::from_secs(20), || {
            let mut args = pki.cli_args(*tls_port);
            args.extend(["SENTINEL", "replicas", "mymaster"].map(String::from));
            let out = Command::new(&cli[0]).args(&cli[1..]).args(&args).output().expect("cli");
            String::from_utf8_lossy(&out.stdout).contains(&replica_tls.to_string())
        });
        let log = std::fs::read_to_string(dir.path().join("sentinel.log")).unwrap_or_default();
        assert!(found, "the sentinel did not discover the replica over TLS:\n{log}");
        assert_eq!(master_port_over_tls(&cli, &pki, *tls_port), Some(master_tls));
    }
    // kill -9 of the master: the replica is promoted, the sentinels say so over TLS.
    master.kill9();
    for (_, dir, tls_port) in &running {
        let promoted =
            wait_until(Duration::from_secs(40), || master_port_over_tls(&cli, &pki, *tls_port) == Some(replica_tls));
        let log = std::fs::read_to_string(dir.path().join("sentinel.log")).unwrap_or_default();
        assert!(promoted, "no failover to the replica over TLS:\n{log}");
    }
    for (mut child, _, _) in running {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `args` with `directive`'s value replaced.
fn with_value(mut args: Vec<String>, directive: &str, value: String) -> Vec<String> {
    let at = args.iter().position(|a| a == directive).expect("directive") + 1;
    args[at] = value;
    args
}

/// Private keys encrypted by OpenSSL (`openssl pkcs8 -topk8 -v2 aes-256-cbc`): with the
/// password in `tls-key-file-pass` the server starts and redis-cli talks to it over TLS;
/// `tls-client-key-file-pass` opens the replica's client key for a mutual-TLS master; a
/// wrong or missing password stops startup with an error that says which.
#[test]
fn encrypted_private_keys_with_their_passwords() {
    let Some(cli) = redis_tool("redis-cli") else { return };
    let openssl = Path::new("/usr/bin/openssl");
    if !openssl.is_file() {
        assert!(std::env::var("FERROKV_REQUIRE_INTEROP").map_or(true, |v| v != "1"), "openssl is required");
        return;
    }
    let pki = Pki::new();
    for name in ["server", "client"] {
        let out = Command::new(openssl)
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:s3cret", "-in"])
            .arg(pki.path(&format!("{name}.key")))
            .arg("-out")
            .arg(pki.path(&format!("{name}.enc.key")))
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", text(&out));
    }
    let encrypted = std::fs::read_to_string(pki.path("server.enc.key")).expect("read key");
    assert!(encrypted.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{encrypted}");

    let master_tls = free_port();
    let mut args = with_value(pki.server_args(master_tls, "yes"), "--tls-key-file", pki.path("server.enc.key"));
    args.extend(["--tls-key-file-pass".into(), "s3cret".into()]);
    let master = Server::start(&refs(&args));
    let mut cli_args = pki.cli_args(master_tls);
    cli_args.extend(["SET", "sealed", "opened"].map(String::from));
    assert_eq!(text(&run(&cli, &cli_args)).trim(), "OK");

    let mut args = with_value(replica_args(&pki, master_tls), "--tls-client-key-file", pki.path("client.enc.key"));
    args.extend(["--tls-client-key-file-pass".into(), "s3cret".into()]);
    let replica = Server::start(&refs(&args));
    let mut r = replica.conn();
    assert!(wait_for_key(&mut r, "sealed", "opened"), "no sync with an encrypted client key");
    drop(replica);
    drop(master);

    let dir = TempDir::new("tls-enc");
    for (pass, expect) in [(Some("wrong"), "wrong password"), (None, "encrypted")] {
        let mut args = with_value(pki.server_args(free_port(), "no"), "--tls-key-file", pki.path("server.enc.key"));
        if let Some(p) = pass {
            args.extend(["--tls-key-file-pass".into(), p.into()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
            .arg("server")
            .args(["--port", "0", "--save", "", "--dir", dir.path().to_str().expect("utf8")])
            .args(&args)
            .output()
            .expect("run ferrokv");
        let said = text(&out);
        assert!(!out.status.success(), "started with password {pass:?}");
        assert!(said.contains("server.enc.key") && said.contains(expect), "{pass:?}: {said}");
    }
}
