//! cjson, cmsgpack and struct on the interpreter alone: replies taken from redis-server
//! 7.0 (the differential corpus `tests/diff/scripting_libs.txt` compares far more, whole
//! server against whole server), the stack limits on the smallest thread stack the
//! server runs scripts on, and random bytes and values fed to every decoder: no panic,
//! no crash, a well-formed reply every time.

use ferrokv_resp::{Argv, Frame, ReplyBuf};
use ferrokv_scripting::{CallHandler, CallOptions, Scripting};
use proptest::prelude::*;

struct NoCalls;

impl CallHandler for NoCalls {
    fn call(&mut self, _: &Argv, _: CallOptions, _: &mut Vec<u8>) -> Result<(), String> {
        Err("no commands here".into())
    }
    fn acl_check(&mut self, _: &Argv) -> Option<bool> {
        Some(true)
    }
    fn log(&mut self, _: i32, _: &[u8]) {}
}

fn run(s: &mut Scripting, body: &str, args: &[&[u8]]) -> Vec<u8> {
    let mut out = ReplyBuf::new(false);
    match s.load(body.as_bytes()) {
        Ok(sha) => {
            s.run_eval(&sha, &[], args, &mut NoCalls, &mut out, None);
            // The SHA only appears in error lines: replace it there, bytes untouched.
            match out.buf.windows(40).position(|w| w == sha) {
                Some(at) => [&out.buf[..at], b"<sha>", &out.buf[at + 40..]].concat(),
                None => out.buf,
            }
        }
        Err(e) => format!("-ERR {e}\r\n").into_bytes(),
    }
}

fn eval(body: &str) -> String {
    String::from_utf8(run(&mut Scripting::new("7.0.15"), body, &[])).unwrap()
}

/// Runs `f` on a thread with the smallest stack the server's runtimes give scripts.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap()
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn err(msg: &str) -> String {
    format!("-ERR user_script:1: {msg} script: <sha>, on @user_script:1.\r\n")
}

#[test]
fn cjson_encodes_as_redis() {
    assert_eq!(eval("return cjson.encode({})"), bulk("{}"));
    assert_eq!(
        eval("return cjson.encode({0.1, 1e300, -0, 1/3, 123456789012345, 1e14, 2^53, -1.5e-7})"),
        bulk("[0.1,1e+300,-0,0.33333333333333,1.2345678901234e+14,1e+14,9.007199254741e+15,-1.5e-07]")
    );
    assert_eq!(eval("return cjson.encode('a/b\"\\1\\127')"), bulk("\"a\\/b\\\"\\u0001\\u007f\""));
    assert_eq!(eval("return cjson.encode({[1]=1,[2]=2,[10]=3})"), bulk("[1,2,null,null,null,null,null,null,null,3]"));
    assert_eq!(
        eval("return cjson.encode({[1]=1,[2]=2,[11]=3})"),
        err("Cannot serialise table: excessively sparse array")
    );
    assert_eq!(eval("return cjson.encode(1/0)"), err("Cannot serialise number: must not be NaN or Inf"));
    assert_eq!(
        eval("return cjson.encode({[true]=1})"),
        err("Cannot serialise boolean: table key must be a number or string")
    );
    assert_eq!(eval("local t={} t[1]=t return cjson.encode(t)"), err("Cannot serialise, excessive nesting (1001)"));
    assert_eq!(eval("return cjson.encode()"), err("bad argument #1 to 'encode' (expected 1 argument)"));
}

#[test]
fn cjson_decodes_as_redis() {
    assert_eq!(eval("return cjson.decode('\"\\\\u00e9\\\\ud83d\\\\ude00\"')"), bulk("é😀"));
    assert_eq!(eval("return cjson.decode('[1,2')"), err("Expected comma or array end but found T_END at character 5"));
    assert_eq!(eval("return cjson.decode('')"), err("Expected value but found T_END at character 1"));
    assert_eq!(
        eval("return cjson.decode('\"\\\\ude00\"')"),
        err("Expected value but found invalid unicode escape code at character 2")
    );
    assert_eq!(eval("return cjson.decode('0x10')"), ":16\r\n");
    assert_eq!(eval("return cjson.decode('[1]\\0junk')"), "*1\r\n:1\r\n");
    assert_eq!(eval("return cjson.decode('\\0\\0')"), err("JSON parser does not support UTF-16 or UTF-32"));
    assert_eq!(eval("return cjson.decode('{\"a\":null}').a == cjson.null"), ":1\r\n");
    assert_eq!(
        eval(&format!("return cjson.decode('{}{}')", "[".repeat(1001), "]".repeat(1001))),
        err("Found too many nested data structures (1001) at character 1001")
    );
}

#[test]
fn cjson_settings_persist_and_new_copies_have_their_own() {
    let mut s = Scripting::new("7.0.15");
    assert_eq!(run(&mut s, "return cjson.encode_number_precision(3)", &[]), b":3\r\n");
    assert_eq!(
        run(&mut s, "return {cjson.encode(1/3), cjson.new().encode(1/3)}", &[]),
        b"*2\r\n$5\r\n0.333\r\n$16\r\n0.33333333333333\r\n"
    );
    assert_eq!(run(&mut s, "return cjson.encode_invalid_numbers('null')", &[]), b"$4\r\nnull\r\n");
    assert_eq!(run(&mut s, "return cjson.encode({0/0})", &[]), b"$6\r\n[null]\r\n");
    // SCRIPT FLUSH starts a fresh interpreter: defaults again.
    s.flush();
    assert_eq!(run(&mut s, "return cjson.encode(1/3)", &[]), b"$16\r\n0.33333333333333\r\n");
}

#[test]
fn cmsgpack_as_redis() {
    assert_eq!(
        eval("return {cmsgpack.unpack(cmsgpack.pack(1, -300, 'x', {1, {2}}))}"),
        "*4\r\n:1\r\n:-300\r\n$1\r\nx\r\n*2\r\n:1\r\n*1\r\n:2\r\n"
    );
    assert_eq!(eval("return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 1)}"), "*2\r\n:2\r\n:2\r\n");
    assert_eq!(eval("return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0)}"), "*3\r\n:1\r\n:2\r\n:3\r\n");
    assert_eq!(eval("return cmsgpack.unpack('\\193')"), err("Bad data format in input."));
    assert_eq!(eval("return cmsgpack.unpack('\\205\\1')"), err("Missing bytes in input."));
    assert_eq!(eval("return cmsgpack.pack()"), err("bad argument #0 to 'pack' (MessagePack pack needs input.)"));
    assert_eq!(
        eval("return {cmsgpack.unpack_one('\\1', -1)}"),
        err("Invalid request to unpack with offset of -1 and limit of 1.")
    );
}

#[test]
fn cmsgpack_exact_bytes() {
    let got =
        run(&mut Scripting::new("7.0.15"), "return cmsgpack.pack(1, 'a', {1,2}, true, 0.5, 2^40, -2^63, 1/0)", &[]);
    let mut want = b"$35\r\n".to_vec();
    want.extend_from_slice(
        b"\x01\xa1a\x92\x01\x02\xc3\xca\x3f\0\0\0\xcf\0\0\x01\0\0\0\0\0\xd3\x80\0\0\0\0\0\0\0\xca\x7f\x80\0\0\r\n",
    );
    assert_eq!(got, want);
}

#[test]
fn struct_as_redis() {
    let got =
        run(&mut Scripting::new("7.0.15"), "return struct.pack('>i2<i2!4bi4xc3s', 1, 2, -1, 7, 'abcdef', 'z')", &[]);
    assert_eq!(got, b"$18\r\n\x00\x01\x02\x00\xff\x00\x00\x00\x07\x00\x00\x00\x00abcz\x00\r\n");
    assert_eq!(eval("return {struct.unpack('>I2bc0', '\\1\\2\\3xyz')}"), "*3\r\n:258\r\n$3\r\nxyz\r\n:7\r\n");
    assert_eq!(eval("return {struct.size('>i2bdT!4i')}"), "*1\r\n:24\r\n");
    assert_eq!(eval("return struct.pack('i')"), err("bad argument #2 to 'pack' (number expected, got nil)"));
    assert_eq!(eval("return struct.pack('q', 1)"), err("bad argument #1 to 'pack' (invalid format option 'q')"));
    assert_eq!(eval("return struct.pack('i33', 1)"), err("integral size 33 is larger than limit of 32"));
    assert_eq!(eval("return struct.pack('i99999999999', 1)"), err("integral size overflow"));
    assert_eq!(eval("return struct.unpack('i4', 'abc')"), err("bad argument #2 to 'unpack' (data string too short)"));
    assert_eq!(eval("return struct.size('s')"), err("bad argument #1 to 'size' (option 's' has no fixed size)"));
}

#[test]
fn libraries_are_read_only() {
    for lib in ["cjson", "cmsgpack", "struct"] {
        assert_eq!(eval(&format!("{lib}.x = 1")), err("Attempt to modify a readonly table"));
    }
}

#[test]
fn stack_limits_raise_errors_on_a_small_stack() {
    let r = on_small_stack(|| {
        let mut s = Scripting::new("7.0.15");
        let deep_json =
            "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('[', 10000)) return e";
        let deep_object =
            "cjson.decode_max_depth(100000) local ok, e = pcall(cjson.decode, string.rep('{\"a\":', 10000)) return e";
        let deep_encode = "cjson.encode_max_depth(100000) local t = {} local c = t for i=1,10000 do c.a = {} c = c.a end local ok, e = pcall(cjson.encode, t) return e";
        let deep_msgpack = "local ok, e = pcall(cmsgpack.unpack, string.rep('\\145', 10000)) return e";
        let deep_map = "return cmsgpack.unpack(string.rep('\\129\\1', 10000))";
        let many = "local ok, e = pcall(struct.unpack, string.rep('b', 9000), string.rep('\\1', 9000)) return e";
        [deep_json, deep_object, deep_encode, deep_msgpack, deep_map, many]
            .map(|b| String::from_utf8(run(&mut s, b, &[])).unwrap())
    });
    assert_eq!(r[0], bulk("Found too many nested data structures (7999) at character 7999"));
    assert_eq!(r[1], bulk("Found too many nested data structures (4000) at character 19996"));
    assert_eq!(r[2], bulk("Cannot serialise, excessive nesting (4000)"));
    assert_eq!(r[3], bulk("stack overflow (in function mp_decode_to_lua_array)"));
    assert_eq!(r[4], err("stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"));
    assert_eq!(r[5], bulk("stack overflow (too many results)"));
}

/// Found by the lua_libs fuzz target: 130 nested one-element msgpack arrays (`\x91`) made
/// a reply nested past `Frame::decode`'s 128 levels. That reply is right: Redis converts
/// nested tables down to its Lua stack limit too (about 8,000 levels), so the nesting must
/// come out whole, not cut or turned into an error.
#[test]
fn deeply_nested_msgpack_replies_keep_their_depth() {
    let mut s = Scripting::new("7.0.15");
    let mut data = vec![0x91u8; 130];
    data.push(0);
    let reply = run(&mut s, "return {cmsgpack.unpack(ARGV[1])}", &[&data]);
    assert_eq!(reply, [b"*1\r\n".repeat(131), b":0\r\n".to_vec()].concat());
}

/// Every decoder, and the reply conversion of whatever they produce, on `data`.
const DECODERS: &str = "
local out = {}
for _, f in ipairs({
    function() return cjson.decode(ARGV[1]) end,
    function() return {cmsgpack.unpack(ARGV[1])} end,
    function() return {cmsgpack.unpack_limit(ARGV[1], 3, #ARGV[2] % 4)} end,
    function() return {struct.unpack(ARGV[2], ARGV[1])} end,
    function() return struct.size(ARGV[2]) end,
    function() return struct.pack(ARGV[2], 1, 2, 'x', 3, 4) end,
}) do
    local ok, v = pcall(f)
    out[#out + 1] = v
end
return out
";

/// Round trips, compared as values (key order follows table layout, not the text):
/// cmsgpack is exact; cjson is stable once numbers went through its 14 digits.
const ROUND_TRIPS: &str = "
local function same(a, b)
    if type(a) ~= 'table' or type(b) ~= 'table' then return a == b end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
end
local v = cjson.decode(ARGV[1])
assert(same(cmsgpack.unpack(cmsgpack.pack(v)), v), 'cmsgpack round trip')
local once = cjson.decode(cjson.encode(v))
assert(same(cjson.decode(cjson.encode(once)), once), 'cjson round trip')
return {cjson.encode(v), cmsgpack.pack(v)}
";

fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        "[a-z\\\\\"/é\\x01]{0,8}".prop_map(|s| format!("{:?}", s).replace("\\u{1}", "\\u0001")),
        Just("true".to_string()),
        Just("false".to_string()),
    ];
    leaf.prop_recursive(5, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..6).prop_map(|v| format!(
                "{{{}}}",
                v.iter().map(|(k, x)| format!("\"{k}\":{x}")).collect::<Vec<_>>().join(",")
            )),
        ]
    })
}

/// 300 cases per `cargo test`; `FERROKV_FUZZ_CASES=n` for a long fuzzing run.
fn cases() -> u32 {
    std::env::var("FERROKV_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn decoders_take_any_bytes(data in prop::collection::vec(any::<u8>(), 0..200), fmt in "[<>!0-9 xbBhHlLTiIfdcs]{0,12}") {
        let mut s = Scripting::new("7.0.15");
        let reply = run(&mut s, DECODERS, &[&data, fmt.as_bytes()]);
        prop_assert!(matches!(Frame::decode(&reply), Ok(Some(_))), "{:?}", String::from_utf8_lossy(&reply));
    }

    #[test]
    fn encodings_round_trip(json in json_value()) {
        let mut s = Scripting::new("7.0.15");
        let reply = run(&mut s, ROUND_TRIPS, &[json.as_bytes()]);
        prop_assert!(reply.starts_with(b"*2\r\n"), "{}: {:?}", json, String::from_utf8_lossy(&reply));
    }
}
