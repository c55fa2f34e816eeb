//! Yielding runs on their own: a run past its deadline is suspended at its count hook
//! wherever the script is (inside C calls Lua 5.1 cannot yield across), resumes where it
//! stopped, and stops with Redis's error once killed.

use ferrokv_resp::{Argv, ReplyBuf};
use ferrokv_scripting::{CallHandler, CallOptions, Scripting};
use std::time::Instant;

/// Counts the commands a script runs; every command answers +OK.
struct Counter {
    calls: usize,
}

impl CallHandler for Counter {
    fn call(&mut self, _argv: &Argv, opts: CallOptions, reply: &mut Vec<u8>) -> Result<(), String> {
        self.calls += 1;
        let mut out = ReplyBuf::new(opts.resp3);
        out.simple("OK");
        reply.extend_from_slice(&out.buf);
        Ok(())
    }

    fn acl_check(&mut self, _argv: &Argv) -> Option<bool> {
        Some(true)
    }

    fn log(&mut self, _level: i32, _msg: &[u8]) {}
}

/// Starts `body` with its deadline already passed: it is suspended at its first hook
/// unless it ends before. Returns whether it finished.
fn start(s: &mut Scripting, body: &str, out: &mut ReplyBuf) -> bool {
    let sha = s.load(body.as_bytes()).expect("compiles");
    let mut h = Counter { calls: 0 };
    s.run_eval(&sha, &[], &[], &mut h, out, Some(Instant::now()))
}

fn text(out: &ReplyBuf) -> String {
    String::from_utf8_lossy(&out.buf).into_owned()
}

/// Loops that Lua 5.1 cannot yield out of: each is suspended, stays suspended across
/// slices, and is killed. (A `pcall` catches the kill once, as on Redis; the kill is
/// raised again at the next line, which each test script has.)
const STUCK_INSIDE_C_CALLS: &[(&str, &str)] = &[
    ("sort comparator", "local t = {3, 2, 1} table.sort(t, function(a, b) while true do end end)"),
    ("gsub callback", "string.gsub('abc', '%w', function(c) while true do end end)"),
    ("__index metamethod", "local t = setmetatable({}, {__index = function() while true do end end}) local _ = t.x"),
    (
        "__tostring metamethod",
        "local t = setmetatable({}, {__tostring = function() while true do end end}) local _ = tostring(t)",
    ),
    ("pcall", "pcall(function() while true do end end)"),
    ("xpcall handler", "xpcall(function() error('x') end, function(e) while true do end end)"),
    (
        "pcall inside the script's coroutine",
        "local co = coroutine.create(function() pcall(function() while true do end end) end) coroutine.resume(co)",
    ),
    ("a loop swallowing errors", "while true do pcall(function() for i = 1, 10 do end end) end"),
];

#[test]
fn loops_inside_c_calls_are_suspended_and_killed() {
    for (what, body) in STUCK_INSIDE_C_CALLS {
        let mut s = Scripting::new("7.0.15");
        let mut out = ReplyBuf::new(false);
        let body = format!("{body}\nreturn 'not killed'");
        assert!(!start(&mut s, &body, &mut out), "{what}: not suspended");
        let mut h = Counter { calls: 0 };
        for _ in 0..3 {
            assert!(!s.resume(&mut h, &mut out), "{what}: ended on its own");
        }
        assert!(out.buf.is_empty(), "{what}: replied while suspended: {}", text(&out));
        s.kill();
        assert!(s.resume(&mut h, &mut out), "{what}: not stopped by the kill");
        let reply = text(&out);
        assert!(reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{what}: {reply}");
        // The state is sound afterwards.
        let mut out = ReplyBuf::new(false);
        assert!(start(&mut s, "return 1 + 1", &mut out), "{what}");
        assert_eq!(text(&out), ":2\r\n", "{what}");
    }
}

#[test]
fn a_run_suspended_in_a_comparator_finishes_with_the_right_result() {
    let mut s = Scripting::new("7.0.15");
    let mut out = ReplyBuf::new(false);
    // Enough comparator work to be suspended many times, and a command on the way.
    let body = "local t = {} for i = 1, 300 do t[i] = (i * 7919) % 300 end
        table.sort(t, function(a, b) local x = 0 for j = 1, 200 do x = x + j end return a < b end)
        redis.call('SET', 'k', 'v')
        return {t[1], t[150], t[300], #t}";
    let mut slices = 1;
    let mut done = start(&mut s, body, &mut out);
    let mut h = Counter { calls: 0 };
    while !done {
        slices += 1;
        assert!(slices < 10_000, "never ends");
        done = s.resume(&mut h, &mut out);
    }
    assert!(slices > 5, "only {slices} slices");
    assert_eq!(h.calls, 1);
    assert_eq!(text(&out), "*4\r\n:0\r\n:149\r\n:299\r\n:300\r\n");
}

#[test]
fn errors_after_a_suspension_are_reported_at_the_script_line() {
    let mut s = Scripting::new("7.0.15");
    let mut out = ReplyBuf::new(false);
    let body =
        "local t = {3, 2, 1}\ntable.sort(t, function(a, b) for i = 1, 50000 do end return a < b end)\nerror('late')";
    let mut done = start(&mut s, body, &mut out);
    let mut h = Counter { calls: 0 };
    while !done {
        done = s.resume(&mut h, &mut out);
    }
    let reply = text(&out);
    assert!(reply.starts_with("-ERR user_script:3: late script: "), "{reply}");
    assert!(reply.ends_with(", on @user_script:3.\r\n"), "{reply}");
}

#[test]
fn a_suspended_run_goes_with_its_state() {
    // SCRIPT FLUSH cannot run while a script is suspended (BUSY), but a reset or a drop
    // of the interpreter must not crash either.
    let mut s = Scripting::new("7.0.15");
    let mut out = ReplyBuf::new(false);
    assert!(!start(&mut s, "table.sort({2, 1}, function() while true do end end)", &mut out));
    s.flush();
    let mut out = ReplyBuf::new(false);
    assert!(start(&mut s, "return 'after'", &mut out));
    assert_eq!(text(&out), "$5\r\nafter\r\n");
    assert!(!start(&mut s, "while true do end", &mut out));
    drop(s);
}
