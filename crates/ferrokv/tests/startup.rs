//! The process: startup log lines, configuration files and errors, the command line,
//! invocation as `*-server`, pidfile, unix socket, signals and SHUTDOWN.

mod common;
use common::*;
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
