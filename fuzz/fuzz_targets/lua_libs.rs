//! The Lua libraries and the Lua -> RESP conversion on arbitrary bytes: `cjson.decode`,
//! `cmsgpack.unpack`/`unpack_limit`, `struct.unpack`/`size`/`pack` with the input as
//! data and as format, each result converted to a reply. No panic, no crash, and every
//! reply is one complete RESP frame. One interpreter serves every input (as one serves
//! the server), so library settings and the collector carry over between inputs.
#![no_main]
use ferrokv_resp::{Argv, Frame, ReplyBuf};
use ferrokv_scripting::{CallHandler, CallOptions, Scripting};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

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

const SCRIPT: &[u8] = b"
local out = {}
for _, f in ipairs({
    function() return cjson.decode(ARGV[1]) end,
    function() return {cmsgpack.unpack(ARGV[1])} end,
    function() return {cmsgpack.unpack_limit(ARGV[1], 4, #ARGV[1] % 5)} end,
    function() return {struct.unpack(ARGV[2], ARGV[1])} end,
    function() return struct.size(ARGV[1]) end,
    function() return struct.pack(ARGV[1], 1, -2, 'x', 3.5, 'yz') end,
    function() return cjson.encode(cmsgpack.unpack(ARGV[1])) end,
    function() return cmsgpack.pack(cjson.decode(ARGV[1])) end,
}) do
    local ok, v = pcall(f)
    out[#out + 1] = v
end
return out
";

fuzz_target!(|data: &[u8]| {
    static LUA: OnceLock<Mutex<Scripting>> = OnceLock::new();
    let mut s = LUA.get_or_init(|| Mutex::new(Scripting::new("7.0.15"))).lock().unwrap_or_else(|e| e.into_inner());
    let sha = s.load(SCRIPT).expect("the script compiles");
    // The first bytes double as a struct format for the input's rest.
    let split = data.iter().position(|&b| b == b'|').unwrap_or(0);
    let (fmt, rest) = data.split_at(split);
    let mut out = ReplyBuf::new(false);
    // No deadline: the script runs to its end in one call.
    let finished = s.run_eval(&sha, &[], &[rest, fmt], &mut NoCalls, &mut out, None);
    assert!(finished);
    assert_eq!(frame_len(&out.buf), Some(out.buf.len()), "{:?}", out.buf);
    // Deeper replies are valid (scripts nest up to the Lua stack limit, as Redis's do) but
    // past the decoder's recursion limit.
    if let Ok(f) = Frame::decode(&out.buf) {
        assert!(matches!(f, Some((_, n)) if n == out.buf.len()), "{:?}", out.buf);
    }
});

/// The length of the one RESP2 reply at the start of `buf`, scanned without recursion.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    let mut owed = 1u64;
    while owed > 0 {
        owed -= 1;
        let kind = *buf.get(pos)?;
        let eol = pos + 1 + buf.get(pos + 1..)?.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&buf[pos + 1..eol]).ok();
        pos = eol + 2;
        match kind {
            b'+' | b'-' | b':' => {}
            b'$' => match line?.parse::<i64>().ok()? {
                -1 => {}
                n => {
                    pos += usize::try_from(n).ok()?;
                    if buf.get(pos..pos + 2)? != b"\r\n" {
                        return None;
                    }
                    pos += 2;
                }
            },
            b'*' => match line?.parse::<i64>().ok()? {
                -1 => {}
                n => owed += u64::try_from(n).ok()?,
            },
            _ => return None,
        }
    }
    Some(pos)
}
