//! The interpreter on its own: replies, errors and the sandbox, with texts taken from
//! redis-server 7.0 (the differential tests compare the whole server against it).

use ferrokv_resp::{Argv, ReplyBuf};
use ferrokv_scripting::{CallHandler, CallOptions, Scripting};

/// A few fake commands: enough to exercise conversions both ways.
struct Fake {
    log: Vec<(i32, Vec<u8>)>,
}

impl CallHandler for Fake {
    fn call(&mut self, argv: &Argv, opts: CallOptions, reply: &mut Vec<u8>) -> Result<(), String> {
        let name = String::from_utf8_lossy(argv.get(0)).to_ascii_lowercase();
        let mut out = ReplyBuf::new(opts.resp3);
        match name.as_str() {
            "ping" => out.simple("PONG"),
            "echo" => out.bulk(argv.get(1)),
            "get" => out.null(),
            "incr" => out.int(1),
            "fail" => out.error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            "hgetall" => {
                out.map(1);
                out.bulk(b"f");
                out.bulk(b"v");
            }
            "args" => {
                out.array(argv.len());
                for a in argv.iter() {
                    out.bulk(a);
                }
            }
            _ if name == "nosuch" => return Err("Unknown Redis command called from script".into()),
            _ => return Err("-READONLY You can't write against a read only replica.".into()),
        }
        reply.extend_from_slice(&out.buf);
        Ok(())
    }

    fn acl_check(&mut self, argv: &Argv) -> Option<bool> {
        (argv.get(0) != b"nosuch").then_some(true)
    }

    fn log(&mut self, level: i32, msg: &[u8]) {
        self.log.push((level, msg.to_vec()));
    }
}

fn eval_with(s: &mut Scripting, body: &str, keys: &[&str], args: &[&str], resp3: bool) -> String {
    let mut out = ReplyBuf::new(resp3);
    match s.load(body.as_bytes()) {
        Ok(sha) => {
            let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
            let args: Vec<&[u8]> = args.iter().map(|k| k.as_bytes()).collect();
            let mut fake = Fake { log: Vec::new() };
            s.run_eval(&sha, &keys, &args, &mut fake, &mut out, None);
            let text = String::from_utf8_lossy(&out.buf).into_owned();
            // Replace the script's SHA so expectations stay readable.
            text.replace(std::str::from_utf8(&sha).unwrap(), "<sha>")
        }
        Err(e) => format!("-ERR {e}\r\n"),
    }
}

fn eval(body: &str) -> String {
    eval_with(&mut Scripting::new("7.0.15"), body, &[], &[], false)
}

#[test]
fn plain_values() {
    assert_eq!(eval("return 1"), ":1\r\n");
    assert_eq!(eval("return 3.99"), ":3\r\n");
    assert_eq!(eval("return -3.99"), ":-3\r\n");
    assert_eq!(eval("return 'x'"), "$1\r\nx\r\n");
    assert_eq!(eval("return true"), ":1\r\n");
    assert_eq!(eval("return false"), "$-1\r\n");
    assert_eq!(eval("return nil"), "$-1\r\n");
    assert_eq!(eval("return {1,2,3.7,'x',nil,4}"), "*4\r\n:1\r\n:2\r\n:3\r\n$1\r\nx\r\n");
    assert_eq!(eval("return 1/0"), ":-9223372036854775808\r\n");
    assert_eq!(eval("return {ok='a\\r\\nb'}"), "+a  b\r\n");
    assert_eq!(eval("return redis.error_reply('my err')"), "-my err\r\n");
    assert_eq!(eval("return redis.status_reply('FINE')"), "+FINE\r\n");
    assert_eq!(eval("return {err=5}"), "*0\r\n");
    assert_eq!(eval("return {double=1.5}"), "$3\r\n1.5\r\n");
    assert_eq!(eval("local t = {1,2,{3,{4}}} return {t}"), "*1\r\n*3\r\n:1\r\n:2\r\n*2\r\n:3\r\n*1\r\n:4\r\n");
}

#[test]
fn keys_and_argv() {
    let mut s = Scripting::new("7.0.15");
    assert_eq!(
        eval_with(&mut s, "return {KEYS[1], ARGV[2], #KEYS}", &["k"], &["a", "b"], false),
        "*3\r\n$1\r\nk\r\n$1\r\nb\r\n:1\r\n"
    );
}

#[test]
fn cyclic_tables_stop_at_the_stack_limit() {
    // Run on a thread with the smallest stack the server's runtimes use.
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| eval("local t = {} t[1] = t return t"))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(r.matches("*1\r\n").count(), 7995);
    assert!(r.ends_with("-ERR reached lua stack limit\r\n"));
}

#[test]
fn errors_name_the_script_and_line() {
    assert_eq!(
        eval("x = 1 return 1"),
        "-ERR user_script:1: Attempt to modify a readonly table script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("return x"),
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("string.foo = 1"),
        "-ERR user_script:1: Attempt to modify a readonly table script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("rawset(_G, 'x', 1)"),
        "-ERR Attempt to modify a readonly table script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(eval("error('x')"), "-ERR user_script:1: x script: <sha>, on @user_script:1.\r\n");
    assert_eq!(eval("error({err='MY thing'})"), "-MY thing script: <sha>, on @user_script:1.\r\n");
    assert_eq!(eval("error({err=5})"), "-5 script: <sha>, on @user_script:1.\r\n");
    assert_eq!(
        eval("return os.clock()"),
        "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("\n\nreturn redis.call('nosuch')"),
        "-ERR Unknown Redis command called from script script: <sha>, on @user_script:3.\r\n"
    );
    assert_eq!(eval("return redis.pcall('nosuch')"), "-ERR Unknown Redis command called from script\r\n");
    assert_eq!(
        eval("return redis.call('get', {})"),
        "-ERR Lua redis lib command arguments must be strings or integers script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("return redis.call()"),
        "-ERR Please specify at least one argument for this redis lib call script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("return redis.call('fail')"),
        "-WRONGTYPE Operation against a key holding the wrong kind of value script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("return redis.call('set')"),
        "-READONLY You can't write against a read only replica. script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(
        eval("return x +"),
        "-ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'\r\n"
    );
    assert_eq!(
        eval("\x1bLua"),
        "-ERR Error compiling script (new function): user_script:1: unexpected symbol near 'char(27)'\r\n"
    );
}

#[test]
fn pcall_returns_error_messages() {
    assert_eq!(
        eval("local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), e}"),
        "*2\r\n$5\r\nfalse\r\n$44\r\nERR Unknown Redis command called from script\r\n"
    );
    assert_eq!(eval("local ok, e = pcall(error, 'x') return e"), "$1\r\nx\r\n");
}

#[test]
fn libraries_are_read_only_but_visible() {
    assert_eq!(
        eval("local t = {} for k,v in pairs(string) do t[#t+1]=k end table.sort(t) return table.concat(t, ' ')"),
        "$82\r\nbyte char dump find format gfind gmatch gsub len lower match rep reverse sub upper\r\n"
    );
    assert_eq!(eval("return ('abc'):upper()"), "$3\r\nABC\r\n");
    assert_eq!(eval("return rawget(string, 'len') == string.len"), ":1\r\n");
    assert_eq!(eval("return type(__redis__err__handler)"), "$8\r\nfunction\r\n");
    assert_eq!(eval("return _VERSION"), "$7\r\nLua 5.1\r\n");
    assert_eq!(
        eval("table.insert(string, 1)"),
        "-ERR Attempt to modify a readonly table script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(eval("local t = {3,1,2} table.sort(t) return t"), "*3\r\n:1\r\n:2\r\n:3\r\n");
    assert_eq!(
        eval("return pairs(nil)"),
        "-ERR user_script:1: bad argument #1 to 'pairs' (table expected, got nil) script: <sha>, on @user_script:1.\r\n"
    );
    assert_eq!(eval("return loadstring('return 1+1')()"), ":2\r\n");
    assert_eq!(
        eval("local f, e = loadstring('\\27Lua') return e"),
        "$52\r\n[string \"\x1bLua\"]:1: unexpected symbol near 'char(27)'\r\n"
    );
}

#[test]
fn redis_table() {
    assert_eq!(eval("return redis.REDIS_VERSION"), "$6\r\n7.0.15\r\n");
    assert_eq!(eval("return redis.REDIS_VERSION_NUM"), ":458767\r\n");
    assert_eq!(eval("return redis.sha1hex('')"), "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n");
    assert_eq!(eval("return redis.call('ping')"), "+PONG\r\n");
    assert_eq!(eval("return redis.call('echo', 1.5)"), "$3\r\n1.5\r\n");
    assert_eq!(eval("return redis.call('echo', 0.1)"), "$19\r\n0.10000000000000001\r\n");
    assert_eq!(eval("return redis.call('get', 'x')"), "$-1\r\n");
    assert_eq!(eval("return type(redis.call('get', 'x'))"), "$7\r\nboolean\r\n");
    assert_eq!(eval("return redis.call('hgetall', 'h')"), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    // Under RESP3 the map comes back as {map=…}, returned as a map (flat in RESP2).
    assert_eq!(eval("redis.setresp(3) return redis.call('hgetall', 'h')"), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(eval("redis.setresp(3) return redis.call('hgetall', 'h').map.f"), "$1\r\nv\r\n");
    assert_eq!(eval("redis.setresp(4)"), "-ERR RESP version must be 2 or 3. script: <sha>, on @user_script:1.\r\n");
    assert_eq!(eval("redis.setresp(3) return false"), ":0\r\n");
    assert_eq!(eval_with(&mut Scripting::new("7.0.15"), "redis.setresp(3) return false", &[], &[], true), "#f\r\n");
    assert_eq!(eval_with(&mut Scripting::new("7.0.15"), "return nil", &[], &[], true), "_\r\n");
    assert_eq!(eval("return redis.replicate_commands()"), ":1\r\n");
    assert_eq!(eval("return redis.breakpoint()"), "$-1\r\n");
    assert_eq!(eval("return redis.acl_check_cmd('get', 'x')"), ":1\r\n");
}

#[test]
fn bit_and_random() {
    assert_eq!(eval("return bit.band(0xff, 0x0f, 0x3)"), ":3\r\n");
    assert_eq!(eval("return bit.tohex(-1)"), "$8\r\nffffffff\r\n");
    assert_eq!(eval("return bit.tohex(255, -4)"), "$4\r\n00FF\r\n");
    assert_eq!(eval("return bit.lshift(1, 31)"), ":-2147483648\r\n");
    assert_eq!(eval("return bit.tobit(2^32 + 7)"), ":7\r\n");
    assert_eq!(
        eval("return bit.band('x')"),
        "-ERR user_script:1: bad argument #1 to 'band' (number expected, got string) script: <sha>, on @user_script:1.\r\n"
    );
    // The first draw of Redis 7.0's generator, as `redis-cli eval "return math.random(1000000)" 0`.
    assert_eq!(eval("return math.random(1000000)"), ":396465\r\n");
    assert_eq!(
        eval("return math.random(0)"),
        "-ERR user_script:1: bad argument #1 to 'random' (interval is empty) script: <sha>, on @user_script:1.\r\n"
    );
}

#[test]
fn flush_starts_over() {
    let mut s = Scripting::new("7.0.15");
    let sha = s.load(b"return 1").unwrap();
    assert!(s.get(&sha).is_some());
    s.flush();
    assert!(s.get(&sha).is_none());
    assert_eq!(eval_with(&mut s, "return 2", &[], &[], false), ":2\r\n");
}

#[test]
fn an_error_table_whose_metamethods_raise_is_an_error_reply() {
    // Reading `err` from this table runs the script's code, which raises: the reply says
    // so instead of taking the server down.
    let reply = eval("error(setmetatable({}, {__index = function() error('boom') end}))");
    assert!(reply.starts_with("-ERR Error running script <sha>, user_script:1: boom"), "{reply}");
    assert_eq!(eval("return 1"), ":1\r\n");
}

#[test]
fn scripts_are_found_by_their_hex_name_in_either_case() {
    let mut s = Scripting::new("7.0.15");
    let sha = s.load(b"return 1").unwrap();
    assert!(s.contains(&sha));
    assert!(s.contains(sha.to_ascii_uppercase().as_slice()));
    let mut bad = sha;
    bad[39] = b'g';
    assert!(!s.contains(&bad));
    assert!(!s.contains(&sha[..39]));
    assert!(!s.contains(b""));
}
