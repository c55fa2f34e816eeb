//! `ferrokv cli` against Debian's redis-cli: both clients run with the same arguments
//! and stdin against the same server (reset to the same data before each run), and
//! their stdout, stderr and exit status must be identical, byte for byte. Covers
//! formatted and raw output, RESP2 and RESP3, errors, nil, nested arrays, the options
//! that shape a command (-x, -X, -n, -u, -r, -i, -d, -D, -e, --quoted-input), the
//! special modes (--scan, --pipe, --bigkeys) and the interactive mode fed from a pipe.
//! Where output depends on timing (--latency, --stat) or on the line editor (a real
//! terminal, through `script`), the tests check its shape instead.

mod common;

use common::{free_port, optional_binary, redis_tool, wait_until, Server, TempDir};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// No single client run may take longer than this.
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq)]
struct Outcome {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Keeps both clients away from the developer's history, preferences and password.
fn isolate(cmd: &mut Command) {
    cmd.env("HOME", "/nonexistent-ferrokv-cli-test-home");
    for var in ["REDISCLI_AUTH", "REDISCLI_HISTFILE", "REDISCLI_RCFILE", "FAKETTY"] {
        cmd.env_remove(var);
    }
}

fn ferrokv_cli(args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrokv"));
    cmd.arg("cli").args(args);
    isolate(&mut cmd);
    cmd
}

fn redis_cli(bin: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    isolate(&mut cmd);
    cmd
}

fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs a command to completion with `input` on stdin, then end of input.
fn run(cmd: Command, input: &[u8]) -> Outcome {
    run_with(cmd, input, false)
}

/// With `hold_stdin`, stdin stays open until the process exits: a terminal session
/// ends with `quit`, not with the end of its input.
fn run_with(mut cmd: Command, input: &[u8], hold_stdin: bool) -> Outcome {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn client");
    let stdin = child.stdin.take().expect("stdin");
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let data = input.to_vec();
    let writer = thread::spawn(move || {
        let mut stdin = stdin;
        let _ = stdin.write_all(&data);
        if hold_stdin {
            let _ = done_rx.recv_timeout(DEADLINE);
        }
        drop(stdin);
    });
    let out = collect(child.stdout.take().expect("stdout"));
    let err = collect(child.stderr.take().expect("stderr"));
    let exited = wait_until(DEADLINE, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().ok().and_then(|s| s.code());
    let _ = done_tx.send(());
    let _ = writer.join();
    let outcome = Outcome { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() };
    assert!(exited, "{cmd:?} did not finish within {DEADLINE:?}: {}", text(&outcome.stdout));
    outcome
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Runs both clients on the same server, from the same data.
struct Twins<'a> {
    server: &'a Server,
    redis_cli: PathBuf,
    fixture: Vec<Vec<Vec<u8>>>,
}

impl Twins<'_> {
    fn new(server: &Server) -> Option<Twins<'_>> {
        let redis_cli = redis_tool("redis-cli")?;
        Some(Twins { server, redis_cli, fixture: fixture() })
    }

    fn port(&self) -> String {
        self.server.port.to_string()
    }

    fn reset(&self) {
        let mut raw = self.server.raw();
        raw.cmd(&[b"FLUSHALL"]);
        for c in &self.fixture {
            let parts: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            raw.cmd(&parts);
        }
    }

    fn both(&self, argv: &[String], input: &[u8]) -> (Outcome, Outcome) {
        self.reset();
        let ours = run(ferrokv_cli(argv), input);
        self.reset();
        let theirs = run(redis_cli(&self.redis_cli, argv), input);
        (ours, theirs)
    }

    /// stdout, stderr and exit status must all match.
    fn same(&self, argv: &[String], input: &[u8]) {
        let (ours, theirs) = self.both(argv, input);
        assert_eq!(
            ours,
            theirs,
            "ferrokv cli {argv:?} differs from redis-cli\n--- ours (status {:?}):\n{}\n{}\n--- redis-cli (status {:?}):\n{}\n{}",
            ours.status,
            text(&ours.stdout),
            text(&ours.stderr),
            theirs.status,
            text(&theirs.stdout),
            text(&theirs.stderr)
        );
    }

    /// With `-p <port>` first.
    fn same_on_port(&self, rest: &[&str], input: &[u8]) {
        let mut argv = args(&["-p", &self.port()]);
        argv.extend(args(rest));
        self.same(&argv, input);
    }
}

/// The data every run starts from.
fn fixture() -> Vec<Vec<Vec<u8>>> {
    let lines: &[&[&[u8]]] = &[
        &[b"SET", b"k", b"v"],
        &[b"SET", b"n", b"10"],
        &[b"SET", b"bin", b"\x00\xff \"q\" \\ \n"],
        &[b"RPUSH", b"l", b"a", b"b", b"c"],
        &[b"RPUSH", b"big", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"10", b"11", b"12"],
        &[b"HSET", b"h", b"f1", b"v1", b"f2", b"v2"],
        &[b"SADD", b"st", b"1", b"2", b"3"],
        &[b"SADD", b"words", b"x", b"y", b"z"],
        &[b"SELECT", b"3"],
        &[b"SET", b"in3", b"three"],
        &[b"SELECT", b"0"],
    ];
    lines.iter().map(|c| c.iter().map(|a| a.to_vec()).collect()).collect()
}

/// Commands whose replies cover every shape: status, integer, bulk (binary too), nil,
/// errors, empty and nested arrays, two-digit indices, maps and sets in RESP3, and the
/// text replies printed verbatim (INFO).
const COMMANDS: &[&[&str]] = &[
    &["ping"],
    &["ping", "hello world"],
    &["get", "k"],
    &["get", "nosuch"],
    &["get", "bin"],
    &["incr", "n"],
    &["incrbyfloat", "n", "1.5"],
    &["mget", "k", "nosuch", "n"],
    &["lrange", "l", "0", "-1"],
    &["lrange", "big", "0", "-1"],
    &["lrange", "nosuch", "0", "-1"],
    &["hgetall", "h"],
    &["hgetall", "nosuch"],
    &["smembers", "st"],
    &["smembers", "nosuch"],
    &["scan", "0", "count", "100"],
    &["keys", "nosuch*"],
    &["exists", "k", "nosuch", "l"],
    &["set", "k", "v2", "nx"],
    &["set", "k", "v2", "get"],
    &["echo", "two\nlines"],
    &["config", "get", "maxmemory-policy"],
    &["command", "info", "get", "set"],
    &["command", "docs", "get"],
    &["info", "keyspace"],
    &["object", "encoding", "l"],
    &["lpop", "l", "2"],
    &["client", "getname"],
    &["foo", "bar"],
    &["get"],
    &["lpush", "k", "x"],
    &["select", "3"],
];

#[test]
fn replies_match_redis_cli_in_every_output_mode_and_protocol() {
    let server = Server::start(&[]);
    let Some(twins) = Twins::new(&server) else { return };
    for mode in [&["--no-raw"][..], &["--raw"], &[]] {
        for protocol in [&[][..], &["-3"], &["-2"]] {
            for command in COMMANDS {
                let mut argv: Vec<&str> = vec![];
                argv.extend_from_slice(mode);
                argv.extend_from_slice(protocol);
                argv.extend_from_slice(command);
                twins.same_on_port(&argv, b"");
            }
        }
    }
}

#[test]
fn deeply_nested_script_replies_print_as_in_redis_cli() {
    let server = Server::start(&[]);
    let Some(twins) = Twins::new(&server) else { return };
    // 2,000 levels: far past what the server's own decoder accepts from peers, within what
    // a script may return (Lua's stack stops it near 8,000).
    let script = "local t = {} local c = t for i = 1, 2000 do c[1] = {} c = c[1] end c[1] = 7 return t";
    for mode in ["--no-raw", "--raw"] {
        twins.same_on_port(&[mode, "EVAL", script, "0"], b"");
    }
}

#[test]
fn command_line_options_match_redis_cli() {
    let server = Server::start(&[]);
    let Some(twins) = Twins::new(&server) else { return };
    let port = twins.port();
    let cases: &[(&[&str], &[u8])] = &[
        (&["-x", "echo"], b"from stdin\n\x00\xff"),
        (&["-x", "--no-raw", "echo"], b"from stdin\n\x00\xff"),
        (&["-x", "set", "k"], b"new value"),
        (&["-X", "TAG", "--no-raw", "echo", "TAG"], b"tagged"),
        (&["-X", "TAG", "echo", "other"], b"tagged"),
        (&["-x", "-X", "T", "echo"], b""),
        (&["-n", "3", "get", "in3"], b""),
        (&["-n", "3", "--no-raw", "dbsize"], b""),
        (&["-n", "99", "ping"], b""),
        (&["-r", "3", "incr", "n"], b""),
        (&["-r", "2", "-i", "0.01", "--no-raw", "lrange", "l", "0", "-1"], b""),
        (&["-r", "0", "ping"], b""),
        (&["-d", ",", "-D", ";", "lrange", "l", "0", "-1"], b""),
        (&["-d", "|", "mget", "k", "n"], b""),
        (&["--quoted-input", "echo", "\"a\\x00b\""], b""),
        (&["--quoted-input", "--no-raw", "set", "'q k'", "\"\\xff\""], b""),
        (&["--quoted-input", "echo", "\"open"], b""),
        (&["-e", "foo"], b""),
        (&["-e", "--no-raw", "incr", "k"], b""),
        (&["-e", "ping"], b""),
        (&["-a", "wrong", "ping"], b""),
        (&["-a", "wrong", "--no-auth-warning", "ping"], b""),
        (&["--user", "bob", "-a", "wrong", "ping"], b""),
        (&["-2", "-3", "ping"], b""),
        (&["--no-such-option"], b""),
        (&["-n"], b""),
    ];
    for (argv, input) in cases {
        twins.same_on_port(argv, input);
    }
    // -u carries host, port and database (and overrides the -p before it).
    twins.same(&args(&["-p", "1", "-u", &format!("redis://127.0.0.1:{port}/3"), "get", "in3"]), b"");
    twins.same(&args(&["-u", &format!("redis://default:secret@127.0.0.1:{port}/3"), "--no-raw", "get", "in3"]), b"");
    twins.same(&args(&["-u", "http://127.0.0.1/", "ping"]), b"");
    // Nothing listens there.
    let closed = free_port().to_string();
    twins.same(&args(&["-p", &closed, "ping"]), b"");
    twins.same(&args(&["-p", &closed, "--scan"]), b"");
}

#[test]
fn interactive_mode_fed_by_a_pipe_matches_redis_cli() {
    let server = Server::start(&[]);
    let Some(twins) = Twins::new(&server) else { return };
    let script: &[u8] = b"set a 1\nget a\n\nselect 3\nget in3\nmulti\nincr c\nincr c\nexec\n3 incr c\n0 ping\n\
        \"unbalanced\n:set hints\n:set colors\n:nope\nrestart\nhelp get\nhelp @list\nlpush a x\n  \n\
        discard\nreset\nget a\nquit\nping\n";
    for mode in [&["--no-raw"][..], &[]] {
        for protocol in [&[][..], &["-3"]] {
            let mut argv: Vec<&str> = mode.to_vec();
            argv.extend_from_slice(protocol);
            twins.same_on_port(&argv, script);
        }
    }
    // A dropped connection is reported and the next command reconnects, to db 3 again.
    // (redis-cli 7.0 reconnects to db 0 there, a bug this client does not copy.)
    twins.reset();
    let argv = args(&["-p", &twins.port(), "-n", "3"]);
    let ours = run(ferrokv_cli(&argv), b"client kill type normal skipme no\nget in3\nget in3\n");
    assert_eq!(text(&ours.stdout), "1\nthree\n");
    // End of file or a reset, depending on how the close reached the socket.
    let err = text(&ours.stderr);
    assert!(err.starts_with("Error: ") && err.lines().count() == 1, "{err}");
}

#[test]
fn scan_pipe_and_bigkeys_match_redis_cli() {
    let server = Server::start(&[]);
    let Some(twins) = Twins::new(&server) else { return };
    twins.same_on_port(&["--scan"], b"");
    twins.same_on_port(&["--scan", "--pattern", "*i*"], b"");
    twins.same_on_port(&["--no-raw", "--scan", "--pattern", "b*"], b"");
    twins.same_on_port(&["--scan", "--quoted-pattern", "\"w*\"", "-i", "0.001"], b"");
    twins.same_on_port(&["--bigkeys"], b"");
    twins.same_on_port(&["--bigkeys", "--pattern", "[bl]*"], b"");

    let mut mass = Vec::new();
    for i in 0..2000 {
        let (key, value) = (format!("key:{i}"), format!("value {i}"));
        ferrokv_resp::encode_command(&mut mass, [&b"SET"[..], key.as_bytes(), value.as_bytes()]);
    }
    ferrokv_resp::encode_command(&mut mass, [&b"NOSUCHCOMMAND"[..]]);
    ferrokv_resp::encode_command(&mut mass, [&b"INCR"[..], b"key:1"]);
    ferrokv_resp::encode_command(&mut mass, [&b"RPUSH"[..], b"l", b"d"]);
    twins.same_on_port(&["--pipe"], &mass);
    twins.same_on_port(&["--pipe"], b"");
    twins.same_on_port(&["--pipe"], b"*1\r\n$4\r\nPING\r\nSET inline value\r\n");
    // The data arrived.
    let mut raw = server.raw();
    twins.reset();
    let _ = run(ferrokv_cli(&args(&["-p", &twins.port(), "--pipe"])), &mass);
    assert_eq!(raw.cmd(&[b"GET", b"key:1999"]), b"$10\r\nvalue 1999\r\n");
    assert_eq!(raw.cmd(&[b"LLEN", b"l"]), b":4\r\n");
}

#[test]
fn unix_socket_connection_matches_redis_cli() {
    let sock_dir = TempDir::new("cli-sock");
    let sock = sock_dir.path().join("s.sock");
    let sock_text = sock.to_str().expect("utf8 path");
    let server = Server::start(&["--unixsocket", sock_text]);
    let Some(twins) = Twins::new(&server) else { return };
    twins.same(&args(&["-s", sock_text, "ping"]), b"");
    twins.same(&args(&["-s", sock_text, "--no-raw", "lrange", "l", "0", "-1"]), b"");
    twins.same(&args(&["-s", sock_text, "--no-raw"]), b"select 2\nset a b\nget a\n");
}

/// RESP3 types ferrokv's commands do not produce (doubles, booleans, verbatim strings),
/// taken from redis-server's DEBUG PROTOCOL: the client works against Redis as well.
#[test]
fn resp3_types_from_redis_server_match_redis_cli() {
    let Some(server) = Server::start_redis(&[]) else { return };
    let Some(twins) = Twins::new(&server) else { return };
    for kind in ["map", "set", "double", "true", "false", "null", "verbatim", "string", "integer"] {
        for mode in ["--no-raw", "--raw"] {
            twins.same_on_port(&["-3", mode, "debug", "protocol", kind], b"");
        }
        twins.same_on_port(&["--no-raw", "debug", "protocol", kind], b"");
    }
    // redis-cli 7.0 dies on big numbers ("Unknown reply type"); this client prints them.
    let out = run(ferrokv_cli(&args(&["-p", &twins.port(), "-3", "--no-raw", "debug", "protocol", "bignum"])), b"");
    assert_eq!(text(&out.stdout), "(big number) 1234567999999999999999999999999999999\n");
    let out = run(ferrokv_cli(&args(&["-p", &twins.port(), "-3", "--no-raw", "debug", "protocol", "attrib"])), b"");
    assert_eq!((out.status, text(&out.stdout)), (Some(0), "\"Some real reply following the attribute\"\n".into()));
}

#[test]
fn subscribe_streams_messages_like_redis_cli() {
    let server = Server::start(&[]);
    let Some(redis_bin) = redis_tool("redis-cli") else { return };
    for mode in [&["--no-raw"][..], &[], &["-3", "--no-raw"]] {
        let mut argv = args(&["-p", &server.port.to_string()]);
        argv.extend(args(mode));
        argv.extend(args(&["subscribe", "news"]));
        let clients = [ferrokv_cli(&argv), redis_cli(&redis_bin, &argv)];
        let mut running: Vec<(Child, Arc<Mutex<Vec<u8>>>)> = clients.into_iter().map(spawn_streaming).collect();
        let mut raw = server.raw();
        assert!(
            wait_until(DEADLINE, || raw.cmd(&[b"PUBSUB", b"NUMSUB", b"news"]).ends_with(b":2\r\n")),
            "both clients subscribed"
        );
        raw.cmd(&[b"PUBLISH", b"news", b"first"]);
        raw.cmd(&[b"PUBLISH", b"news", b"second\nline"]);
        let got = |out: &Arc<Mutex<Vec<u8>>>| out.lock().map(|o| text(o.as_slice()).contains("line")).unwrap_or(false);
        assert!(wait_until(DEADLINE, || running.iter().all(|(_, out)| got(out))), "messages arrived");
        let outputs: Vec<String> = running
            .iter_mut()
            .map(|(child, out)| {
                let _ = child.kill();
                let _ = child.wait();
                out.lock().map(|o| text(o.as_slice())).unwrap_or_default()
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "mode {mode:?}");
    }
}

fn spawn_streaming(mut cmd: Command) -> (Child, Arc<Mutex<Vec<u8>>>) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn client");
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&out);
    let mut pipe = child.stdout.take().expect("stdout");
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let Ok(mut o) = sink.lock() {
                o.extend_from_slice(&chunk[..n]);
            }
        }
    });
    (child, out)
}

#[test]
fn latency_with_raw_output_prints_one_summary_line() {
    let server = Server::start(&[]);
    let out = run(ferrokv_cli(&args(&["-p", &server.port.to_string(), "--latency", "--raw", "-i", "0.2"])), b"");
    assert_eq!(out.status, Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let fields: Vec<&str> = line.trim_end_matches('\n').split(' ').collect();
    assert!(line.ends_with('\n') && fields.len() == 4, "{line:?}");
    assert!(fields[0].parse::<u64>().is_ok() && fields[1].parse::<u64>().is_ok(), "{line:?}");
    assert!(fields[2].split_once('.').is_some_and(|(_, d)| d.len() == 2), "{line:?}");
    assert!(fields[3].parse::<u64>().is_ok_and(|n| n > 1), "{line:?}");
}

#[test]
fn stat_prints_a_header_and_rolling_lines() {
    let server = Server::start(&[]);
    let mut raw = server.raw();
    raw.cmd(&[b"SET", b"a", b"1"]);
    raw.cmd(&[b"SET", b"b", b"2"]);
    let (mut child, out) =
        spawn_streaming(ferrokv_cli(&args(&["-p", &server.port.to_string(), "--stat", "-i", "0.05"])));
    let lines = || out.lock().map(|o| text(o.as_slice()).lines().count()).unwrap_or(0);
    let enough = wait_until(DEADLINE, || lines() >= 4);
    let _ = child.kill();
    let _ = child.wait();
    assert!(enough, "four lines of --stat");
    let all = out.lock().map(|o| text(o.as_slice())).unwrap_or_default();
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("------- data ------ --------------------- load"), "{all}");
    assert!(lines[1].starts_with("keys       mem      clients blocked requests"), "{all}");
    assert!(lines[2].starts_with("2          "), "{all}");
    assert!(lines[2].contains(" (+0) "), "{all}");
    assert!(lines[3].contains(" (+1) "), "each line is one INFO later: {all}");
}

#[test]
fn version_help_and_redis_cli_link() {
    let out = run(ferrokv_cli(&args(&["--version"])), b"");
    assert_eq!(out.status, Some(0));
    assert!(text(&out.stdout).starts_with("redis-cli 7.0.15 (ferrokv "), "{}", text(&out.stdout));
    let out = run(ferrokv_cli(&args(&["--help"])), b"");
    assert_eq!(out.status, Some(0));
    assert!(text(&out.stdout).contains("Usage: ferrokv cli [OPTIONS]"));

    // Scripts that call redis-cli get this client through a link of that name.
    let server = Server::start(&[]);
    let dir = TempDir::new("cli-link");
    let link = dir.path().join("redis-cli");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferrokv"), &link).expect("symlink");
    let mut cmd = Command::new(&link);
    cmd.args(["-p", &server.port.to_string(), "--no-raw", "ping"]);
    isolate(&mut cmd);
    let out = run(cmd, b"");
    assert_eq!((out.status, text(&out.stdout)), (Some(0), "PONG\n".to_string()));
}

/// A real terminal, through util-linux's `script`: the prompt follows SELECT and
/// reconnection, hints are drawn, and the history file gets every line but the password.
#[test]
fn terminal_session_shows_prompts_hints_and_keeps_history() {
    let Some(script) = optional_binary("script") else { return };
    let server = Server::start(&[]);
    let home = TempDir::new("cli-home");
    let histfile = home.path().join("hist");
    let port = server.port;
    let command = format!("'{}' cli -p {port}", env!("CARGO_BIN_EXE_ferrokv"));
    let mut cmd = Command::new(script);
    cmd.args(["-qfec", &command, "/dev/null"]);
    isolate(&mut cmd);
    cmd.env("HOME", home.path()).env("REDISCLI_HISTFILE", &histfile).env("TERM", "xterm");
    let input = b"select 2\nset k v\nauth not-in-history\nclient kill type normal skipme no\nping\nping\nquit\n";
    let out = run_with(cmd, input, true);
    let screen = text(&out.stdout);
    assert_eq!(out.status, Some(0), "{screen}");
    assert!(screen.contains(&format!("127.0.0.1:{port}> ")), "{screen}");
    assert!(screen.contains(&format!("127.0.0.1:{port}[2]> ")), "{screen}");
    assert!(screen.contains("\x1b[90m"), "a gray hint: {screen}");
    assert!(screen.contains("key value"), "SET's syntax hint: {screen}");
    assert!(screen.contains("Error: "), "the dropped connection is reported: {screen}");
    assert!(screen.contains("not connected> "), "{screen}");
    assert!(screen.contains("PONG"), "{screen}");
    let history = std::fs::read_to_string(&histfile).unwrap_or_default();
    assert_eq!(history, "select 2\nset k v\nclient kill type normal skipme no\nping\nquit\n");
}
