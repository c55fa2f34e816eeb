//! The process: startup log lines, configuration files and errors, the command line,
//! invocation as `*-server`, pidfile, unix socket, signals and SHUTDOWN.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn startup_log_names_version_pid_and_port() {
    let s = Server::start(&[]);
    let log = s.log_text();
    assert!(log.contains(&format!("PID: {}", s.pid())), "{log}");
    assert!(log.contains(&format!("Port: {}", s.port)), "{log}");
    assert!(log.contains("redis_version=7.0.15"), "{log}");
    assert!(log.contains("Ready to accept connections"), "{log}");
    // Redis's line layout: pid:role date level message.
    let first = log.lines().next().unwrap();
    assert!(first.starts_with(&format!("{}:M ", s.pid())), "{first}");
}

#[test]
fn port_in_use_is_reported_and_fails() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = TempDir::new("inuse");
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["server", "--port", &port.to_string(), "--bind", "127.0.0.1", "--dir", dir.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("Failed listening on port {port} (tcp)")), "{text}");
    assert!(text.contains("Address already in use"), "{text}");
}

#[test]
fn bad_config_names_file_line_and_directive() {
    let dir = TempDir::new("badconf");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "# comment\nport 7000\nmaxmemmory 10mb\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv")).args(["server", conf.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FATAL CONFIG FILE ERROR"), "{err}");
    assert!(err.contains(&format!("{}, at line 3", conf.display())), "{err}");
    assert!(err.contains(">>> 'maxmemmory 10mb'"), "{err}");
    assert!(err.contains("Bad directive or wrong number of arguments"), "{err}");

    std::fs::write(&conf, "port 99999\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokv")).args(["server", conf.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("argument must be between 0 and 65535 inclusive"), "{err}");
}

#[test]
fn config_file_then_command_line_overrides() {
    let dir = TempDir::new("conf");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "maxmemory 10mb\nslave-read-only no\nhz 20\n").unwrap();
    let s = Server::start_with_config(&conf, &["--hz", "15"]);
    let mut c = s.conn();
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut c).unwrap();
    assert_eq!(v, vec!["maxmemory", "10485760"]);
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("replica-read-only").query(&mut c).unwrap();
    assert_eq!(v, vec!["replica-read-only", "no"]);
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("hz").query(&mut c).unwrap();
    assert_eq!(v, vec!["hz", "15"]);
}

#[test]
fn runs_as_server_through_a_link_named_redis_server() {
    let dir = TempDir::new("link");
    let link = dir.path().join("redis-server");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferrokv"), &link).unwrap();
    let out = Command::new(&link).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Redis server v=7.0.15"), "{text}");

    let port = free_port();
    let mut child = Command::new(&link)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir", dir.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "server started through the link did not listen");
}

#[test]
fn sigterm_shuts_down_cleanly_and_removes_pidfile() {
    let dir = TempDir::new("pid");
    let pidfile = dir.path().join("ferrokv.pid");
    let mut s = Server::start(&["--pidfile", pidfile.to_str().unwrap()]);
    let written = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(written.trim(), s.pid().to_string());
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!pidfile.exists());
    let log = s.log_text();
    assert!(log.contains("Received SIGTERM scheduling shutdown"), "{log}");
    assert!(log.contains("ready to exit, bye bye"), "{log}");
}

#[test]
fn shutdown_command_exits_without_reply() {
    let mut s = Server::start(&[]);
    let mut raw = s.raw();
    raw.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(raw.closed());
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn unix_socket_serves_commands() {
    let dir = TempDir::new("unix");
    let sock = dir.path().join("ferrokv.sock");
    let s = Server::start(&["--unixsocket", sock.to_str().unwrap(), "--unixsocketperm", "700"]);
    let client = redis::Client::open(format!("unix://{}", sock.display())).unwrap();
    let mut c = client.get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    assert!(list.contains("flags=U"), "{list}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o700);
    // Redis 7.0's line for the unix socket.
    let log = s.log_text();
    assert!(log.contains(&format!("The server is now ready to accept connections at {}", sock.display())), "{log}");
    drop(s);
}

#[test]
fn logfile_is_appended_not_truncated() {
    let dir = TempDir::new("logfile");
    let log = dir.path().join("my.log");
    std::fs::write(&log, "previous line\n").unwrap();
    let s = Server::start(&["--logfile", log.to_str().unwrap()]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("previous line\n"), "{text}");
    assert!(text.contains("Ready to accept connections"));
    drop(s);
}

/// The startup lines every server prints, in the order they appear in `log`.
fn startup_sequence(log: &str) -> Vec<&'static str> {
    const MARKS: [&str; 6] = [
        "Running mode=standalone",
        "Server initialized",
        "Loading RDB produced by version",
        "Done loading RDB",
        "DB loaded from disk",
        "Ready to accept connections",
    ];
    let mut seen: Vec<(usize, &'static str)> = MARKS.iter().filter_map(|m| log.find(m).map(|at| (at, *m))).collect();
    seen.sort();
    seen.into_iter().map(|(_, m)| m).collect()
}

/// Starts a server by hand (the harness waits for the end of loading) on `dir`'s RDB,
/// loading slowly; while it loads, its log already says it started and is loading, and
/// it answers -LOADING. Returns the whole log once it is ready.
fn watch_slow_startup(program: &std::path::Path, server_arg: Option<&str>, dir: &TempDir) -> String {
    let port = free_port();
    let log = dir.path().join(format!("{port}.log"));
    let mut cmd = std::process::Command::new(program);
    cmd.args(server_arg);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    cmd.args(["--dir", dir.path().to_str().unwrap(), "--logfile", log.to_str().unwrap()]);
    cmd.args(["--key-load-delay", "1000"]);
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let loading = wait_until(Duration::from_secs(10), || text().contains("Loading RDB produced by version"));
    let during = text();
    let mut raw = Raw::connect(&format!("127.0.0.1:{port}"));
    let reply = raw.cmd(&[b"PING"]);
    let ready = wait_until(Duration::from_secs(30), || text().contains("Ready to accept connections"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(loading && ready, "{}", text());
    assert!(!during.contains("DB loaded from disk"), "the load was over before it could be watched: {during}");
    assert!(during.contains("Server initialized"), "{during}");
    assert_eq!(reply, b"-LOADING Redis is loading the dataset in memory\r\n");
    text()
}

/// Redis logs its banner and "Server initialized" before it loads the data (tools that
/// watch the log see a server that is loading, or failing to), then "Ready to accept
/// connections" once loaded; ferrokv's lines come in the same order, its banner (with
/// the PID) among the first.
#[test]
fn startup_lines_come_in_redis_order_around_a_slow_load() {
    let dir = TempDir::new("startup-order");
    {
        let s = Server::start(&["--dir", dir.path().to_str().unwrap(), "--rdbcompression", "no"]);
        let mut c = s.conn();
        // Over 2 MB: redis-server serves clients during a load only every 2 MB loaded.
        let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(2000).arg("key").arg(2000).query(&mut c).unwrap();
        let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    }
    let ours = watch_slow_startup(Path::new(env!("CARGO_BIN_EXE_ferrokv")), Some("server"), &dir);
    let banner = ours.find("PID: ").expect("banner");
    assert!(banner < ours.find("Loading RDB").unwrap(), "{ours}");
    let Some(redis) = optional_binary("redis-server") else { return };
    let theirs = watch_slow_startup(&redis, None, &dir);
    assert_eq!(startup_sequence(&ours), startup_sequence(&theirs), "ours:\n{ours}\nredis-server's:\n{theirs}");
}

/// Redis's layout, `pid:role dd Mon yyyy hh:mm:ss.mmm level message`, and the role letter.
fn role_of_line(line: &str, pid: u32) -> char {
    let rest = line.strip_prefix(&format!("{pid}:")).unwrap_or_else(|| panic!("no '{pid}:' prefix: {line}"));
    let mut chars = rest.chars();
    let role = chars.next().unwrap_or_else(|| panic!("no role: {line}"));
    let words: Vec<&str> = chars.as_str().splitn(6, ' ').collect();
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = words.get(4).is_some_and(|t| {
        let b = t.as_bytes();
        t.len() == 12 && b[2] == b':' && b[5] == b':' && b[8] == b'.' && digits(&t[..2], 2) && digits(&t[9..], 3)
    });
    assert!(
        words.len() == 6
            && words[0].is_empty()
            && digits(words[1], 2)
            && months.contains(&words[2])
            && digits(words[3], 4)
            && time_ok
            && words[5].len() >= 2
            && ".-*#".contains(&words[5][..1])
            && &words[5][1..2] == " ",
        "not Redis's log layout: {line}"
    );
    role
}

fn roles_after(log: &str, pid: u32, marker: &str) -> Vec<char> {
    let from = log.find(marker).unwrap_or_else(|| panic!("no '{marker}' in:\n{log}"));
    let start = log[..from].rfind('\n').map_or(0, |i| i + 1);
    log[start..].lines().map(|l| role_of_line(l, pid)).collect()
}

#[test]
fn replica_log_lines_say_s_and_switch_with_the_role() {
    let master = Server::start(&[]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut m = master.conn();
    let mut r = replica.conn();
    let linked =
        wait_until(Duration::from_secs(20), || info_field(&mut r, "replication", "master_link_status") == "up");
    assert!(linked, "replica never linked:\n{}", replica.log_text());
    let _: String = redis::cmd("PING").query(&mut m).unwrap();
    // Every line the replica wrote says S (Redis writes M only while it has no master).
    let log = replica.log_text();
    assert!(log.lines().all(|l| role_of_line(l, replica.pid()) == 'S'), "{log}");
    let log = master.log_text();
    assert!(log.lines().all(|l| role_of_line(l, master.pid()) == 'M'), "{log}");
    // Promoted: M from the line that says so on; demoted again: S.
    let _: String = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    let promoted = wait_until(Duration::from_secs(5), || replica.log_text().contains("MASTER MODE enabled"));
    assert!(promoted, "{}", replica.log_text());
    let roles = roles_after(&replica.log_text(), replica.pid(), "MASTER MODE enabled");
    assert!(roles.iter().all(|r| *r == 'M'), "{roles:?}\n{}", replica.log_text());
    let _: String = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port).query(&mut r).unwrap();
    let marker = format!("REPLICAOF 127.0.0.1:{} enabled", master.port);
    let demoted = wait_until(Duration::from_secs(5), || replica.log_text().contains(&marker));
    assert!(demoted, "{}", replica.log_text());
    let roles = roles_after(&replica.log_text(), replica.pid(), &marker);
    assert!(roles.iter().all(|r| *r == 'S'), "{roles:?}\n{}", replica.log_text());
}

/// "DB loaded from disk" only when a file was loaded ("from append only file" for an AOF).
#[test]
fn db_loaded_line_only_when_something_was_loaded() {
    let fresh = Server::start(&[]);
    let log = fresh.log_text();
    assert!(!log.contains("DB loaded"), "nothing was loaded:\n{log}");

    let mut saved = Server::start(&[]);
    let mut c = saved.conn();
    let _: String = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    saved.kill9();
    let dir = saved.dir.path().to_str().unwrap().to_string();
    let reloaded = Server::start(&["--dir", &dir, "--logfile", &format!("{dir}/second.log")]);
    let log = reloaded.log_text();
    assert!(log.contains("DB loaded from disk: "), "{log}");

    let aof = Server::start(&["--appendonly", "yes"]);
    let log = aof.log_text();
    assert!(!log.contains("DB loaded"), "a new AOF is not a loaded one:\n{log}");
    let mut c = aof.conn();
    let _: String = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let dir = aof.dir.path().to_str().unwrap().to_string();
    drop(c);
    let mut aof = aof;
    aof.kill9();
    let again = Server::start(&["--appendonly", "yes", "--dir", &dir, "--logfile", &format!("{dir}/second.log")]);
    let log = again.log_text();
    assert!(log.contains("DB loaded from append only file: "), "{log}");
    assert!(!log.contains("DB loaded from disk"), "{log}");
}

/// An empty or cut dump.rdb stops the start, and the message says what to run next.
#[test]
fn damaged_dump_rdb_error_names_check_rdb() {
    let dir = TempDir::new("badrdb");
    let d = dir.path().to_str().unwrap();
    let mut good = Server::start(&["--dir", d]);
    let mut c = good.conn();
    for i in 0..100 {
        let _: String = redis::cmd("SET").arg(format!("key:{i}")).arg("x".repeat(100)).query(&mut c).unwrap();
    }
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    good.kill9();
    let rdb = dir.path().join("dump.rdb");
    let full = std::fs::read(&rdb).unwrap();
    for (what, bytes) in [("empty", &full[..0]), ("truncated", &full[..full.len() / 2])] {
        std::fs::write(&rdb, bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
            .args(["server", "--port", &free_port().to_string(), "--bind", "127.0.0.1", "--save", "", "--dir", d])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {text}");
        let line = text.lines().find(|l| l.contains("Fatal error loading the DB")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(&format!("ferrokv check-rdb {}", rdb.display())), "{what}: {line}");
        assert!(!text.contains("DB loaded"), "{what}: {text}");
        if what == "empty" {
            assert!(line.contains("empty"), "{line}");
        }
    }
}

/// A replica times its master out after repl-timeout seconds without a byte; the master
/// pings every repl-ping-replica-period seconds. A timeout that is not longer than the
/// period drops every quiet link: the server says so when it starts.
#[test]
fn repl_timeout_not_above_ping_period_warns_at_startup() {
    const WARNING: &str = "repl-timeout (5) is not greater than repl-ping-replica-period (10)";
    let s = Server::start(&["--repl-timeout", "5"]);
    let log = s.log_text();
    let line = log.lines().find(|l| l.contains(WARNING)).unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(line.contains(" # "), "a warning-level line: {line}");
    let s = Server::start(&["--repl-timeout", "10", "--repl-ping-replica-period", "10"]);
    assert!(s.log_text().contains("repl-timeout (10) is not greater than repl-ping-replica-period (10)"));
    for ok in [&[][..], &["--repl-timeout", "5", "--repl-ping-replica-period", "1"][..]] {
        let s = Server::start(ok);
        assert!(!s.log_text().contains("is not greater than repl-ping-replica-period"), "{ok:?}: {}", s.log_text());
    }
}

/// CPU time of the server's command thread (its main thread), in nanoseconds.
fn command_thread_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/schedstat")).unwrap();
    stat.split(' ').next().unwrap().parse().unwrap()
}

/// The command thread's CPU time per request for one client sending a PING every 2 ms.
fn cpu_per_slow_request(s: &Server) -> Duration {
    let mut c = s.conn();
    let _: String = redis::cmd("PING").query(&mut c).unwrap();
    let before = command_thread_cpu_ns(s.pid());
    const REQUESTS: u32 = 150;
    for _ in 0..REQUESTS {
        std::thread::sleep(Duration::from_millis(2));
        let _: String = redis::cmd("PING").query(&mut c).unwrap();
    }
    Duration::from_nanos(command_thread_cpu_ns(s.pid()) - before) / REQUESTS
}

#[test]
fn busy_polling_does_not_spin_for_a_slow_client() {
    let s = Server::start(&["--loglevel", "debug", "--busy-poll-us", "200"]);
    assert!(s.log_text().contains("busy-poll-us: watching the runtime's epoll instance"), "{}", s.log_text());
    // Idle gaps of 2 ms are longer than any spin may last, so the window shrinks to
    // nothing: a request costs what it costs without spinning, not 200 µs more.
    let with_spin = cpu_per_slow_request(&s);
    let mut c = s.conn();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("busy-poll-us").arg("0").query(&mut c).unwrap();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("busy-poll-us").query(&mut c).unwrap();
    assert_eq!(got, ["busy-poll-us", "0"]);
    let without = cpu_per_slow_request(&s);
    assert!(
        with_spin < without + Duration::from_micros(60),
        "CPU per request {with_spin:?} with busy-poll-us 200, {without:?} without"
    );
}
