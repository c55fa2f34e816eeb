//! `ferrokv docker-entrypoint` outside Docker: the data and config directories are pointed
//! at a temporary directory (REDIS_DATA_DIR, FERROKV_CONF_DIR) and the processes it starts
//! are real servers and sentinels on loopback, configured only by REDIS_* variables.

mod common;
mod tls_support;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A process started through the entrypoint, killed on drop.
struct Proc {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Proc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The entrypoint with exactly these variables (inherited REDIS_* ones are removed).
fn entrypoint(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrokv"));
    cmd.arg("docker-entrypoint").args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("REDIS_") || k == "ALLOW_EMPTY_PASSWORD" {
            cmd.env_remove(k);
        }
    }
    cmd.env("REDIS_DATA_DIR", dir.join("data")).env("FERROKV_CONF_DIR", dir.join("conf"));
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::null());
    cmd
}

fn start(dir: &Path, name: &str, port: u16, env: &[(&str, &str)], args: &[&str]) -> Proc {
    std::fs::create_dir_all(dir.join("data")).expect("data dir");
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = entrypoint(dir, env, args).stdout(out).stderr(err).spawn().expect("spawn entrypoint");
    let mut p = Proc { child, log, port };
    let ready = wait_until(Duration::from_secs(30), || {
        matches!(p.child.try_wait(), Ok(Some(_))) || p.log_text().contains("Ready to accept connections")
    });
    if let Ok(Some(status)) = p.child.try_wait() {
        panic!("{name} exited with {status}:\n{}", p.log_text());
    }
    assert!(ready, "{name} did not become ready:\n{}", p.log_text());
    p
}

fn connect(port: u16, password: Option<&str>) -> redis::Connection {
    let url = match password {
        Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}/"),
        None => format!("redis://127.0.0.1:{port}/"),
    };
    redis::Client::open(url).expect("client").get_connection_with_timeout(Duration::from_secs(5)).expect("connect")
}

fn info_field(c: &mut redis::Connection, section: &str, name: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(c).expect("INFO");
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default().to_string()
}

fn config(c: &mut redis::Connection, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(c).expect("CONFIG GET");
    v.get(1).cloned().unwrap_or_default()
}

fn healthcheck(dir: &Path) -> Output {
    entrypoint(dir, &[], &["healthcheck"]).output().expect("healthcheck")
}

#[test]
fn master_sentinel_and_replica_from_variables_only() {
    let tmp = TempDir::new("entry");
    let (mdir, sdir, rdir) = (tmp.path().join("master"), tmp.path().join("sentinel"), tmp.path().join("replica"));
    let secret = tmp.path().join("password");
    std::fs::write(&secret, "s3cret\n").expect("secret");
    let secret = secret.to_str().expect("utf8");

    let mport = free_port().to_string();
    let master_env = [
        ("REDIS_REPLICATION_MODE", "master"),
        ("REDIS_PASSWORD_FILE", secret),
        ("REDIS_PORT_NUMBER", mport.as_str()),
        ("REDIS_ALLOW_REMOTE_CONNECTIONS", "no"),
        ("REDIS_RDB_POLICY", "900#1 60#100"),
        ("REDIS_DISABLE_COMMANDS", "FLUSHALL"),
    ];
    // Flags after the variables' configuration, as bitnami's run.sh passes them.
    let master = start(&mdir, "master", mport.parse().unwrap(), &master_env, &["--repl-diskless-sync-delay", "0"]);
    let mut m = connect(master.port, Some("s3cret"));
    assert_eq!(config(&mut m, "appendonly"), "yes", "AOF is on by default");
    assert_eq!(config(&mut m, "save"), "900 1 60 100");
    assert_eq!(config(&mut m, "masterauth"), "s3cret", "a master can rejoin as a replica");
    assert_eq!(config(&mut m, "bind"), "127.0.0.1 -::1");
    assert_eq!(config(&mut m, "dir"), mdir.join("data").to_str().unwrap());
    assert_eq!(config(&mut m, "repl-diskless-sync-delay"), "0");
    let flush: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut m);
    assert!(flush.is_err(), "REDIS_DISABLE_COMMANDS renames FLUSHALL away");
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut m).unwrap();
    let h = healthcheck(&mdir);
    assert!(h.status.success(), "healthcheck: {}", String::from_utf8_lossy(&h.stdout));
    assert!(mdir.join("conf/redis.conf").exists());

    let sport = free_port().to_string();
    let sentinel_env = [
        ("REDIS_MASTER_HOST", "localhost"),
        ("REDIS_MASTER_PORT_NUMBER", mport.as_str()),
        ("REDIS_MASTER_PASSWORD_FILE", secret),
        ("REDIS_SENTINEL_PORT_NUMBER", sport.as_str()),
        ("REDIS_SENTINEL_QUORUM", "1"),
    ];
    let sentinel =
        start(&sdir, "sentinel", sport.parse().unwrap(), &sentinel_env, &["sentinel", "--bind", "127.0.0.1"]);
    let mut s = connect(sentinel.port, None);
    let addr: Vec<String> =
        redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg("mymaster").query(&mut s).expect("sentinel");
    assert_eq!(addr, ["127.0.0.1".to_string(), mport.clone()], "resolve-hostnames: localhost became an IP");
    let conf = std::fs::read_to_string(sdir.join("data/sentinel.conf")).expect("sentinel.conf in the data dir");
    assert!(conf.contains("sentinel down-after-milliseconds mymaster 60000"), "{conf}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(sdir.join("data/sentinel.conf")).is_ok_and(|c| c.contains("sentinel myid"))
    }));
    assert!(healthcheck(&sdir).status.success());

    // The replica knows only the sentinel: it asks where the master is.
    let rport = free_port().to_string();
    let replica_env = [
        ("REDIS_REPLICATION_MODE", "replica"),
        ("REDIS_SENTINEL_HOST", "127.0.0.1"),
        ("REDIS_SENTINEL_PORT_NUMBER", sport.as_str()),
        ("REDIS_SENTINEL_MASTER_NAME", "mymaster"),
        ("REDIS_MASTER_PASSWORD_FILE", secret),
        ("REDIS_PASSWORD", "replica-pw"),
        ("REDIS_PORT_NUMBER", rport.as_str()),
        ("REDIS_ALLOW_REMOTE_CONNECTIONS", "no"),
    ];
    let replica = start(&rdir, "replica", rport.parse().unwrap(), &replica_env, &[]);
    assert!(replica.log_text().contains(&format!("the master is 127.0.0.1:{mport}")), "{}", replica.log_text());
    let mut r = connect(replica.port, Some("replica-pw"));
    assert!(
        wait_until(Duration::from_secs(20), || info_field(&mut r, "replication", "master_link_status") == "up"),
        "{}",
        replica.log_text()
    );
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut r).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let w: redis::RedisResult<()> = redis::cmd("SET").arg("x").arg("1").query(&mut r);
    assert!(w.is_err_and(|e| e.to_string().contains("read only replica")));
    assert!(healthcheck(&rdir).status.success());
    drop(master);
    let h = healthcheck(&mdir);
    assert!(!h.status.success(), "a stopped server is unhealthy");
}

#[test]
fn tls_from_variables_with_a_health_check_over_tls() {
    let tmp = TempDir::new("entry-tls");
    let pki = tls_support::Pki::new();
    let (plain, tls) = (free_port().to_string(), free_port());
    let (cert, key, ca) = (pki.path("server.crt"), pki.path("server.key"), pki.path("ca.crt"));
    let env = [
        ("ALLOW_EMPTY_PASSWORD", "yes"),
        ("REDIS_PORT_NUMBER", plain.as_str()),
        ("REDIS_TLS_ENABLED", "yes"),
        ("REDIS_TLS_PORT_NUMBER", &tls.to_string()),
        ("REDIS_TLS_CERT_FILE", cert.as_str()),
        ("REDIS_TLS_KEY_FILE", key.as_str()),
        ("REDIS_TLS_CA_FILE", ca.as_str()),
    ];
    // TLS only (bitnami's default when both ports are 6379; here through a flag, since
    // the test cannot have port 6379): the health check must speak TLS, with a certificate.
    let server = start(tmp.path(), "tls", tls, &env, &["--port", "0"]);
    let h = healthcheck(tmp.path());
    assert!(h.status.success(), "healthcheck over TLS: {}", String::from_utf8_lossy(&h.stdout));
    let mut args = pki.cli_args(tls);
    args.extend(["CONFIG", "GET", "tls-auth-clients"].map(String::from));
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv")).arg("cli").args(&args).output().expect("cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tls-auth-clients\nyes\n");
    drop(server);
    assert!(!healthcheck(tmp.path()).status.success(), "a stopped server is unhealthy");
}

#[test]
fn invalid_variables_stop_the_start_naming_the_variable() {
    let tmp = TempDir::new("entry-bad");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("REDIS_REPLICATION_MODE", "master")], "REDIS_PASSWORD: empty or not set"),
        (&[("REDIS_REPLICATION_MODE", "replica"), ("ALLOW_EMPTY_PASSWORD", "yes")], "REDIS_MASTER_HOST: required"),
        (&[("REDIS_REPLICATION_MODE", "leader"), ("ALLOW_EMPTY_PASSWORD", "yes")], "REDIS_REPLICATION_MODE:"),
        (&[("REDIS_PASSWORD_FILE", "/nonexistent/pw")], "REDIS_PASSWORD_FILE: cannot read"),
        (&[("REDIS_TLS_ENABLED", "yes"), ("ALLOW_EMPTY_PASSWORD", "yes")], "REDIS_TLS_CERT_FILE: required"),
    ];
    for (env, want) in cases {
        let out = entrypoint(tmp.path(), env, &[]).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {err}");
        assert!(err.contains(want), "{env:?}: {err}");
    }
    let out = entrypoint(tmp.path(), &[("REDIS_SENTINEL_QUORUM", "0")], &["sentinel"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_SENTINEL_QUORUM:"));
}

#[test]
fn plain_arguments_follow_the_official_image() {
    let tmp = TempDir::new("entry-plain");
    let port = free_port();
    // `-flags` run the server, with the image's protected-mode default (off).
    let dir = tmp.path().to_str().expect("utf8");
    let p = start(tmp.path(), "plain", port, &[], &["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", dir]);
    let mut c = connect(p.port, None);
    assert_eq!(config(&mut c, "protected-mode"), "no");
    assert!(healthcheck(tmp.path()).status.success());
    drop(p);
    // A program name runs that program.
    let out = entrypoint(tmp.path(), &[], &["ferrokv-cli", "--version"]).output().expect("cli");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("redis-cli "), "{out:?}");
    // A sentinel config found in the data directory from an earlier run wins over the given one.
    let sport = free_port();
    std::fs::write(tmp.path().join("data/sentinel.conf"), format!("port {sport}\nbind 127.0.0.1\n")).unwrap();
    let given = tmp.path().join("given.conf");
    std::fs::write(&given, "port 1\n").unwrap();
    let s = start(tmp.path(), "sentinel", sport, &[], &["ferrokv-sentinel", given.to_str().unwrap()]);
    assert!(s.log_text().contains("saved by an earlier run"), "{}", s.log_text());
    let mut c = connect(s.port, None);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

/// `docker run <image> --help` / `--version` (and `redis-server --version` or
/// `ferrokv-server --help`) answer as the server binary does, with or without REDIS_*
/// variables: the image's defaults and generated configs must not be put in front of them.
#[test]
fn help_and_version_pass_through_to_the_server() {
    let tmp = TempDir::new("entry-help");
    let server_version = Command::new(env!("CARGO_BIN_EXE_ferrokv")).args(["server", "--version"]).output().unwrap();
    let server_help = Command::new(env!("CARGO_BIN_EXE_ferrokv")).args(["server", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&server_version.stdout).starts_with("Redis server v="), "{server_version:?}");
    let env_configured: &[(&str, &str)] = &[("REDIS_REPLICATION_MODE", "master"), ("ALLOW_EMPTY_PASSWORD", "yes")];
    for env in [&[][..], env_configured] {
        for (args, want) in [
            (&["--version"][..], &server_version),
            (&["-v"][..], &server_version),
            (&["redis-server", "--version"][..], &server_version),
            (&["ferrokv-server", "-v"][..], &server_version),
            (&["--help"][..], &server_help),
            (&["-h"][..], &server_help),
            (&["ferrokv-server", "--help"][..], &server_help),
            (&["redis-server", "-h"][..], &server_help),
        ] {
            let out = entrypoint(tmp.path(), env, args).output().expect("entrypoint");
            let text = |o: &Output| {
                (
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            };
            assert_eq!(text(&out), text(want), "docker-entrypoint {args:?} (env {env:?})");
        }
    }
    // Nothing was generated for them.
    assert!(!tmp.path().join("conf/redis.conf").exists());
}
