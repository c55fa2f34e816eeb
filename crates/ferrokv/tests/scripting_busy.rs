//! Long scripts with real processes: a looping script or function past
//! `busy-reply-threshold`, and a second client that gets Redis's BUSY replies, kills it
//! (or cannot: UNKILLABLE once it wrote), reads FUNCTION STATS, and shuts the server down
//! with NOSAVE. Each scenario runs against redis-server too and the second client's
//! replies must be the same.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn text(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).into_owned()
}

/// The looping client's reply, within a bounded time.
fn reply_of(looping: &mut Raw) -> String {
    text(&looping.read_reply().expect("the looping client got no reply"))
}

/// SCRIPT KILL / FUNCTION KILL against the kind of script running, FUNCTION STATS, BUSY
/// for other commands and a transaction, and the server serving again after the kill.
fn kill_scenario(s: &Server) -> Vec<String> {
    let mut t = Vec::new();
    let mut other = s.raw();
    assert_eq!(other.cmd(&[b"CONFIG", b"SET", b"busy-reply-threshold", b"100"]), b"+OK\r\n");
    let load = b"#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert!(other.cmd(&[b"FUNCTION", b"LOAD", load]).starts_with(b"$"));
    // An EVAL script.
    let mut looping = s.raw();
    s.start_long_script(&mut looping, &[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    for cmd in [
        &[&b"GET"[..], b"k"][..],
        &[b"PING"],
        &[b"FUNCTION", b"STATS"],
        &[b"FUNCTION", b"KILL"],
        &[b"SHUTDOWN"],
        &[b"MULTI"],
        &[b"SET", b"k", b"v"],
        &[b"EXEC"],
        &[b"SCRIPT", b"KILL"],
    ] {
        t.push(text(&other.cmd(cmd)));
    }
    t.push(reply_of(&mut looping));
    t.push(text(&other.cmd(&[b"SET", b"k", b"after"])));
    t.push(text(&looping.cmd(&[b"GET", b"k"])));
    // A function.
    s.start_long_script(&mut looping, &[b"FCALL", b"spin", b"0"]);
    let stats = text(&other.cmd(&[b"FUNCTION", b"STATS"]));
    // The duration differs from run to run; the rest must match.
    let shape = stats.find("duration_ms").map(|i| &stats[..i]).unwrap_or(&stats);
    t.push(shape.to_string());
    for cmd in [&[&b"SCRIPT"[..], b"KILL"][..], &[b"DBSIZE"], &[b"FUNCTION", b"KILL"]] {
        t.push(text(&other.cmd(cmd)));
    }
    t.push(reply_of(&mut looping));
    t.push(text(&other.cmd(&[b"SCRIPT", b"KILL"])));
    t.push(text(&other.cmd(&[b"FUNCTION", b"KILL"])));
    t
}

#[test]
fn script_kill_and_function_kill_from_a_second_client() {
    let fk = Server::start(&[]);
    let ours = kill_scenario(&fk);
    let Some(rs) = Server::start_redis(&[]) else { return };
    let theirs = kill_scenario(&rs);
    assert_eq!(ours, theirs);
}

/// A script that wrote cannot be killed; it ends by itself and its writes reach the
/// replica; meanwhile the second client only gets BUSY.
fn unkillable_scenario(s: &Server) -> Vec<String> {
    let mut t = Vec::new();
    let mut other = s.raw();
    assert_eq!(other.cmd(&[b"CONFIG", b"SET", b"busy-reply-threshold", b"100"]), b"+OK\r\n");
    let mut looping = s.raw();
    let script = b"redis.call('set', 'a', 1)
local start = redis.call('time')
while true do
  local now = redis.call('time')
  if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 1200000 then break end
end
redis.call('incr', 'a')
return redis.call('get', 'a')";
    s.start_long_script(&mut looping, &[b"EVAL", script, b"0"]);
    t.push(text(&other.cmd(&[b"SCRIPT", b"KILL"])));
    t.push(text(&other.cmd(&[b"GET", b"a"])));
    t.push(reply_of(&mut looping));
    t.push(text(&other.cmd(&[b"GET", b"a"])));
    t.push(text(&other.cmd(&[b"SCRIPT", b"KILL"])));
    t
}

#[test]
fn a_script_that_wrote_is_unkillable_and_its_writes_reach_the_replica() {
    let fk = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let port = fk.port.to_string();
    let replica = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    let ours = unkillable_scenario(&fk);
    if let Some(replica) = replica {
        let (mut m, mut r) = (fk.conn(), replica.conn());
        let ok = wait_until(Duration::from_secs(10), || {
            redis::cmd("GET").arg("a").query::<Option<String>>(&mut r).ok().flatten().as_deref() == Some("2")
        });
        assert!(ok, "the replica did not get the script's writes");
        assert_eq!(digest(&mut m), digest(&mut r));
    }
    let Some(rs) = Server::start_redis(&[]) else { return };
    assert_eq!(ours, unkillable_scenario(&rs));
}

/// A read-only script looping on a replica: the replica's clients get BUSY and SCRIPT
/// KILL stops it; a master's write meanwhile waits for the script (which sees no change it
/// did not make), then arrives.
fn replica_loop_scenario(master: &Server, replica: &Server) -> Vec<String> {
    let mut t = Vec::new();
    let (mut m, mut other) = (master.raw(), replica.raw());
    assert_eq!(m.cmd(&[b"SET", b"k", b"1"]), b"+OK\r\n");
    let synced = wait_until(Duration::from_secs(10), || other.cmd(&[b"GET", b"k"]) == b"$1\r\n1\r\n");
    assert!(synced, "the replica never got k");
    assert_eq!(other.cmd(&[b"CONFIG", b"SET", b"busy-reply-threshold", b"100"]), b"+OK\r\n");
    // The loop on one line: the kill's error names the line it was raised at.
    let script = b"local before = redis.call('GET', KEYS[1])
local n = 0
while true do n = n + 1 if n % 100000 == 0 and redis.call('GET', KEYS[1]) ~= before then return 'changed' end end";
    let mut looping = replica.raw();
    replica.start_long_script(&mut looping, &[b"EVAL_RO", script, b"1", b"k"]);
    assert_eq!(m.cmd(&[b"SET", b"k", b"2"]), b"+OK\r\n");
    // Time for the write to reach the replica, had it not waited.
    std::thread::sleep(Duration::from_millis(300));
    for cmd in [&[&b"GET"[..], b"k"][..], &[b"SCRIPT", b"KILL"]] {
        t.push(text(&other.cmd(cmd)));
    }
    t.push(reply_of(&mut looping));
    let arrived = wait_until(Duration::from_secs(10), || other.cmd(&[b"GET", b"k"]) == b"$1\r\n2\r\n");
    t.push(format!("the master's write arrived: {arrived}"));
    t
}

#[test]
fn a_loop_on_a_replica_is_killed_and_the_master_stream_waits_for_it() {
    let fk = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let fk_replica = Server::start(&["--replicaof", "127.0.0.1", &fk.port.to_string()]);
    let ours = replica_loop_scenario(&fk, &fk_replica);
    let Some(rs) = Server::start_redis(&["--repl-diskless-sync-delay", "0"]) else { return };
    let Some(rs_replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &rs.port.to_string()]) else { return };
    assert_eq!(ours, replica_loop_scenario(&rs, &rs_replica));
}

#[test]
fn shutdown_nosave_stops_a_server_running_a_long_script() {
    let dir = TempDir::new("busy-shutdown");
    let d = dir.path().to_str().unwrap();
    let mut fk = Server::start(&["--dir", d, "--save", "3600 1", "--busy-reply-threshold", "100"]);
    let mut other = fk.raw();
    assert_eq!(other.cmd(&[b"SET", b"k", b"v"]), b"+OK\r\n");
    let mut looping = fk.raw();
    fk.start_long_script(&mut looping, &[b"EVAL", b"while true do end", b"0"]);
    let refused = text(&other.cmd(&[b"SHUTDOWN"]));
    assert!(refused.starts_with("-BUSY"), "{refused}");
    let started = Instant::now();
    let mut wire = Vec::new();
    ferrokv_resp::encode_command(&mut wire, [&b"SHUTDOWN"[..], b"NOSAVE"]);
    other.send(&wire);
    assert!(fk.wait_exit(Duration::from_secs(10)).is_some(), "the server did not exit");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dir.path().join("dump.rdb").exists(), "NOSAVE saved");
}

/// A loop inside MULTI/EXEC: other clients get BUSY, SCRIPT KILL stops the script, and
/// the transaction goes on with the commands queued after it.
fn multi_loop_scenario(s: &Server) -> Vec<String> {
    let mut t = Vec::new();
    let mut other = s.raw();
    assert_eq!(other.cmd(&[b"CONFIG", b"SET", b"busy-reply-threshold", b"100"]), b"+OK\r\n");
    let mut looping = s.raw();
    for cmd in [
        &[&b"MULTI"[..]][..],
        &[b"SET", b"a", b"1"],
        &[b"EVAL", b"local n = 0\nwhile true do n = n + 1 end", b"0"],
        &[b"INCR", b"a"],
        &[b"EVAL", b"return redis.call('INCR', 'a')", b"0"],
    ] {
        t.push(text(&looping.cmd(cmd)));
    }
    s.start_long_script(&mut looping, &[b"EXEC"]);
    for cmd in [&[&b"GET"[..], b"a"][..], &[b"EXEC"], &[b"SCRIPT", b"KILL"]] {
        t.push(text(&other.cmd(cmd)));
    }
    t.push(reply_of(&mut looping));
    t.push(text(&other.cmd(&[b"GET", b"a"])));
    t.push(text(&looping.cmd(&[b"PING"])));
    t
}

#[test]
fn a_loop_inside_multi_is_killed_and_the_transaction_goes_on() {
    let fk = Server::start(&[]);
    let ours = multi_loop_scenario(&fk);
    let Some(rs) = Server::start_redis(&[]) else { return };
    let theirs = multi_loop_scenario(&rs);
    assert_eq!(ours, theirs);
}

#[test]
fn short_scripts_and_scripts_inside_multi_answer_as_in_one_go() {
    let fk = Server::start(&["--busy-reply-threshold", "0"]);
    let mut c = fk.raw();
    // With a zero threshold every yielding run is suspended at its first hook (inside
    // MULTI too); it still answers exactly as a run in one go.
    let busy_loop = b"local x = 0 for i = 1, 300000 do x = x + i end return x";
    assert_eq!(text(&c.cmd(&[b"EVAL", busy_loop, b"0"])), ":45000150000\r\n");
    assert_eq!(text(&c.cmd(&[b"MULTI"])), "+OK\r\n");
    assert_eq!(text(&c.cmd(&[b"EVAL", busy_loop, b"0"])), "+QUEUED\r\n");
    assert_eq!(text(&c.cmd(&[b"EXEC"])), "*1\r\n:45000150000\r\n");
    for cmd in [&[&b"MULTI"[..]][..], &[b"EVAL", busy_loop, b"0"], &[b"SET", b"k", b"v"], &[b"EVAL", busy_loop, b"0"]] {
        assert_eq!(text(&c.cmd(cmd)), if cmd[0] == b"MULTI" { "+OK\r\n" } else { "+QUEUED\r\n" });
    }
    assert_eq!(text(&c.cmd(&[b"EXEC"])), "*3\r\n:45000150000\r\n+OK\r\n:45000150000\r\n");
    // Errors raised after a suspension keep Redis's location.
    let err = text(&c.cmd(&[b"EVAL", b"for i = 1, 300000 do end\nerror('late')", b"0"]));
    assert!(err.starts_with("-ERR user_script:2: late script: ") && err.ends_with(", on @user_script:2.\r\n"), "{err}");
    let err = text(&c.cmd(&[b"EVAL", b"for i = 1, 300000 do end\nreturn redis.call('nosuch')", b"0"]));
    assert!(err.starts_with("-ERR Unknown Redis command called from script script: "), "{err}");
    assert!(err.ends_with(", on @user_script:2.\r\n"), "{err}");
    // pcall inside a long run still works, and pauses inside the protected call too.
    let r = text(&c.cmd(&[
        b"EVAL",
        b"for i = 1, 300000 do end\nreturn {pcall(function() for i = 1, 300000 do end error('x') end)}",
        b"0",
    ]));
    assert!(r.starts_with("*2\r\n$-1\r\n$") && r.ends_with("user_script:2: x\r\n"), "{r}");
    assert_eq!(text(&c.cmd(&[b"PING"])), "+PONG\r\n");
}

#[test]
fn coroutines_inside_a_suspended_script_keep_their_meaning() {
    let fk = Server::start(&["--busy-reply-threshold", "0"]);
    let mut c = fk.raw();
    // The script's own coroutines inherit its hook; they must never be suspended by it.
    let script = b"local co = coroutine.create(function() local x = 0 for i = 1, 500000 do x = x + 1 end return x end)
local ok, v = coroutine.resume(co)
return {tostring(ok), v, coroutine.status(co)}";
    assert_eq!(text(&c.cmd(&[b"EVAL", script, b"0"])), "*3\r\n$4\r\ntrue\r\n:500000\r\n$4\r\ndead\r\n");
}

/// A loop inside `pcall` (Lua 5.1 cannot yield across the C call of a plain `pcall`):
/// other clients get BUSY, SCRIPT KILL stops it, and the server serves again.
fn pcall_loop_scenario(s: &Server) -> Vec<String> {
    let mut t = Vec::new();
    let mut other = s.raw();
    assert_eq!(other.cmd(&[b"CONFIG", b"SET", b"busy-reply-threshold", b"100"]), b"+OK\r\n");
    let mut looping = s.raw();
    for script in [
        &b"pcall(function() while true do end end)"[..],
        b"local ok, e = pcall(function() return pcall(function() while true do end end) end)\nreturn {tostring(ok), e}",
        b"for i = 1, 3 do pcall(error, 'x') end\nlocal ok, e = pcall(function() while true do end end)\nreturn 'after: ' .. tostring(e)",
    ] {
        s.start_long_script(&mut looping, &[b"EVAL", script, b"0"]);
        t.push(text(&other.cmd(&[b"GET", b"k"])));
        t.push(text(&other.cmd(&[b"SCRIPT", b"KILL"])));
        t.push(reply_of(&mut looping));
        t.push(text(&other.cmd(&[b"SET", b"k", b"after"])));
        t.push(text(&looping.cmd(&[b"GET", b"k"])));
    }
    t
}

/// Loops inside `xpcall`, in its function and in its handler: BUSY for others, SCRIPT KILL
/// stops them (a handler that swallows the kill error does not keep the script alive),
/// as on Redis.
fn xpcall_loop_scenario(s: &Server) -> Vec<String> {
    let mut t = Vec::new();
    let mut other = s.raw();
    assert_eq!(other.cmd(&[b"CONFIG", b"SET", b"busy-reply-threshold", b"100"]), b"+OK\r\n");
    let mut looping = s.raw();
    for script in [
        &b"xpcall(function() while true do end end, function(e) return e end)"[..],
        b"local ok, e = xpcall(function() while true do end end, function(e) return 'handled' end)\nreturn {tostring(ok), e}",
        b"return xpcall(function() return xpcall(function() while true do end end, tostring) end, tostring)",
    ] {
        s.start_long_script(&mut looping, &[b"EVAL", script, b"0"]);
        t.push(text(&other.cmd(&[b"GET", b"k"])));
        t.push(text(&other.cmd(&[b"SCRIPT", b"KILL"])));
        t.push(reply_of(&mut looping));
        t.push(text(&other.cmd(&[b"SET", b"k", b"after"])));
        t.push(text(&looping.cmd(&[b"GET", b"k"])));
    }
    t
}

#[test]
fn a_loop_inside_xpcall_is_killed_by_script_kill() {
    let fk = Server::start(&[]);
    let ours = xpcall_loop_scenario(&fk);
    let Some(rs) = Server::start_redis(&[]) else { return };
    let theirs = xpcall_loop_scenario(&rs);
    assert_eq!(ours, theirs);
}

/// A handler that loops is killed too: each time it runs again on the kill error it
/// stops at its first line, then the script at its next line. (Redis 7.0.15 cannot kill
/// this one: its kill error re-enters the handler until Lua gives up, and the server
/// stays stuck, so there is nothing to compare with.)
#[test]
fn a_loop_inside_an_xpcall_handler_is_killed_by_script_kill() {
    let fk = Server::start(&["--busy-reply-threshold", "100"]);
    let mut other = fk.raw();
    let mut looping = fk.raw();
    let script = b"xpcall(function() error('x') end, function(e) while true do end end)\nreturn 'after'";
    fk.start_long_script(&mut looping, &[b"EVAL", script, b"0"]);
    assert!(other.cmd(&[b"GET", b"k"]).starts_with(b"-BUSY"));
    assert_eq!(other.cmd(&[b"SCRIPT", b"KILL"]), b"+OK\r\n");
    let reply = reply_of(&mut looping);
    assert!(reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{reply}");
    assert!(reply.ends_with("on @user_script:2.\r\n"), "{reply}");
    assert_eq!(other.cmd(&[b"SET", b"k", b"after"]), b"+OK\r\n");
}

#[test]
fn a_loop_inside_pcall_is_killed_by_script_kill() {
    let fk = Server::start(&[]);
    let ours = pcall_loop_scenario(&fk);
    let Some(rs) = Server::start_redis(&[]) else { return };
    let theirs = pcall_loop_scenario(&rs);
    assert_eq!(ours, theirs);
}

/// `pcall` and `xpcall` in a yielding run keep Lua's meaning: results, errors (and
/// Redis's error tables, which `xpcall` handlers get as raised), nesting, handlers that
/// fail, yields refused as on Redis, and a script's own coroutines.
#[test]
fn pcall_across_slices_keeps_its_meaning() {
    let fk = Server::start(&["--busy-reply-threshold", "0"]);
    let mut c = fk.raw();
    let Some(rs) = Server::start_redis(&[]) else { return };
    let mut r = rs.raw();
    let scripts: &[&[u8]] = &[
        b"return {pcall(function(a, b) return a + b, 'x' end, 1, 2)}",
        b"return {pcall(error, 'plain')}",
        b"local ok, e = pcall(function() error('where') end) return {tostring(ok), e}",
        b"local ok, e = pcall(function() error({err = 'tbl'}) end) return {tostring(ok), e}",
        b"local ok, e = pcall(redis.call, 'NOPE') return {tostring(ok), e}",
        b"return {pcall(pcall, error, 'inner')}",
        b"local ok, e = pcall(coroutine.yield) return {tostring(ok), e}",
        b"local ok, e = pcall() return {tostring(ok), e}",
        b"local ok, e = pcall(42) return {tostring(ok), e}",
        b"return coroutine.running() == nil",
        b"return pcall(function() return coroutine.running() == nil end)",
        b"coroutine.yield() return 1",
        b"local n = 0 for i = 1, 300000 do local ok = pcall(function() n = n + 1 end) end return n",
        b"local x = 0 local ok, v = pcall(function() for i = 1, 2000000 do x = x + 1 end return x end) return {tostring(ok), v}",
        b"local co = coroutine.wrap(function() local ok, v = pcall(coroutine.yield, 5) return v end) return {co(), co(7)}",
        b"local t = {3, 1, 2} table.sort(t, function(a, b) local ok = pcall(function() for i = 1, 100000 do end end) return a < b end) return t",
        b"local depth = 0 local function f() depth = depth + 1 if depth < 50 then return pcall(f) end return true end f() return depth",
        b"return {xpcall(function() return 1, 'two' end, tostring)}",
        b"return {xpcall(function() error('where') end, function(e) return 'handled: ' .. e end)}",
        b"return {xpcall(function() error({err = 'tbl'}) end, function(e) return type(e) .. ' ' .. e.err end)}",
        b"return {xpcall(function() redis.call('NOPE') end, function(e) return e.err end)}",
        b"return {xpcall(function() error('a') end, function(e) return end)}",
        b"return {xpcall(function() error('a') end, function(e) error('b') end)}",
        b"local n = 0 return {xpcall(function() error('a') end, function(e) n = n + 1 if n < 3 then error('again') end return n .. ' ' .. e end)}",
        b"return {xpcall(42, function(e) return e end)}",
        b"return {xpcall(function() local x = 0 for i = 1, 2000000 do x = x + 1 end return x end, tostring)}",
        b"return {xpcall(function() error('x') end, function(e) local x = 0 for i = 1, 2000000 do x = x + 1 end return x end)}",
        b"return {xpcall(function() return pcall(error, 'in') end, tostring)}",
        b"return {pcall(xpcall, function() error('in') end, function(e) return 'h' end)}",
        b"local r = {xpcall(function() return 1 end)} return r",
        b"return {xpcall()}",
        b"return {xpcall(coroutine.yield, function(e) return e end)}",
    ];
    for script in scripts {
        let ours = text(&c.cmd(&[b"EVAL", script, b"0"]));
        let theirs = text(&r.cmd(&[b"EVAL", script, b"0"]));
        // The script's SHA is in error replies, alike on both sides.
        assert_eq!(ours, theirs, "{}", text(script));
    }
}
