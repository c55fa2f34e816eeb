//! Conversions between RESP and Lua values, exactly as Redis 7.0 makes them.
//!
//! Command reply → Lua (`redis.call`'s result):
//!
//! | RESP                | Lua                                              |
//! |---------------------|--------------------------------------------------|
//! | integer             | number                                           |
//! | bulk / null bulk    | string / `false`                                 |
//! | array / null array  | table (1-based) / `false`                        |
//! | status              | `{ok = text}`                                    |
//! | error               | `{err = "CODE message"}` (raised by redis.call)  |
//! | RESP3 map / set     | `{map = {k = v}}` / `{set = {member = true}}`    |
//! | RESP3 null, boolean | `nil`, boolean                                   |
//! | RESP3 double        | `{double = number}`                              |
//! | RESP3 big number    | `{big_number = digits}`                          |
//! | RESP3 verbatim      | `{verbatim_string = {string = s, format = fmt}}` |
//!
//! Lua → script reply: the reverse, with numbers truncated to integers, `false` a null
//! (RESP2 scripts) or a boolean (RESP3 scripts), arrays cut at the first `nil`, and any
//! other value a null. Nesting is limited as Redis's Lua stack limits it: past it the
//! element is the error `reached lua stack limit`.

use crate::api::push_error_table;
use crate::lua::{c_double_to_i64, push_bytes, rawget_str, to_bytes, State};
use ferrokv_resp::ReplyBuf;
use mlua_sys as ffi;
use std::ffi::c_int;

/// Pushes the Lua value of the RESP reply in `reply` (one complete reply written by the
/// engine; anything malformed becomes `nil` rather than a crash).
///
/// # Safety
/// `l` valid.
pub unsafe fn push_reply(l: State, reply: &[u8]) {
    let mut pos = 0;
    if parse(l, reply, &mut pos, true).is_none() {
        ffi::lua_settop(l, 0);
        ffi::lua_pushnil(l);
    }
}

/// The line at `pos` (without CRLF); advances past it.
fn line<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = b.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn int_of(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses one reply at `pos`, pushing its value when `push` (attributes are parsed and
/// dropped). Returns None on malformed input.
unsafe fn parse(l: State, b: &[u8], pos: &mut usize, push: bool) -> Option<()> {
    if ffi::lua_checkstack(l, 5) == 0 {
        ffi::luaL_checkstack(l, 5, c"reply too deeply nested".as_ptr());
    }
    let kind = *b.get(*pos)?;
    *pos += 1;
    let head = line(b, pos)?;
    match kind {
        b':' => {
            let n = int_of(head)?;
            if push {
                ffi::lua_pushnumber(l, n as f64);
            }
        }
        b'$' | b'=' => {
            let n = int_of(head)?;
            if n < 0 {
                if push {
                    ffi::lua_pushboolean(l, 0);
                }
                return Some(());
            }
            let body = b.get(*pos..*pos + n as usize)?;
            *pos += n as usize + 2;
            if !push {
                return Some(());
            }
            if kind == b'$' {
                push_bytes(l, body);
            } else {
                let (format, text) = (body.get(..3)?, body.get(4..)?);
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, 2);
                push_bytes(l, text);
                ffi::lua_setfield(l, -2, c"string".as_ptr());
                push_bytes(l, format);
                ffi::lua_setfield(l, -2, c"format".as_ptr());
                ffi::lua_setfield(l, -2, c"verbatim_string".as_ptr());
            }
        }
        b'+' => {
            if push {
                ffi::lua_createtable(l, 0, 1);
                push_bytes(l, head);
                ffi::lua_setfield(l, -2, c"ok".as_ptr());
            }
        }
        b'-' => {
            if push {
                let mut text = Vec::with_capacity(head.len() + 1);
                text.push(b'-');
                text.extend_from_slice(head);
                push_error_table(l, &text);
                drop(text);
                ffi::lua_pushboolean(l, 1);
                ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
            }
        }
        b'*' | b'~' | b'%' | b'|' | b'>' => {
            let n = int_of(head)?;
            if n < 0 {
                if push {
                    ffi::lua_pushboolean(l, 0);
                }
                return Some(());
            }
            return aggregate(l, b, pos, push, kind, n as usize);
        }
        b'_' => {
            if push {
                ffi::lua_pushnil(l);
            }
        }
        b'#' => {
            if push {
                ffi::lua_pushboolean(l, (head == b"t") as c_int);
            }
        }
        b',' => {
            let d: f64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            if push {
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_pushnumber(l, d);
                ffi::lua_setfield(l, -2, c"double".as_ptr());
            }
        }
        b'(' => {
            if push {
                ffi::lua_createtable(l, 0, 1);
                push_bytes(l, head);
                ffi::lua_setfield(l, -2, c"big_number".as_ptr());
            }
        }
        _ => return None,
    }
    Some(())
}

unsafe fn aggregate(l: State, b: &[u8], pos: &mut usize, push: bool, kind: u8, n: usize) -> Option<()> {
    match kind {
        b'|' => {
            // Attributes are not shown to scripts: skip them, then read the reply.
            for _ in 0..2 * n {
                parse(l, b, pos, false)?;
            }
            parse(l, b, pos, push)
        }
        b'%' | b'~' => {
            if push {
                ffi::lua_createtable(l, 0, 1);
                ffi::lua_createtable(l, 0, 0);
            }
            for _ in 0..n {
                parse(l, b, pos, push)?;
                if kind == b'%' {
                    parse(l, b, pos, push)?;
                } else if push {
                    ffi::lua_pushboolean(l, 1);
                }
                if push {
                    // A nil key (a RESP3 null) cannot index a table: drop the pair.
                    if ffi::lua_isnil(l, -2) != 0 {
                        ffi::lua_pop(l, 2);
                    } else {
                        ffi::lua_rawset(l, -3);
                    }
                }
            }
            if push {
                let field = if kind == b'%' { c"map" } else { c"set" };
                ffi::lua_setfield(l, -2, field.as_ptr());
            }
            Some(())
        }
        _ => {
            if push {
                ffi::lua_createtable(l, n.min(1 << 16) as c_int, 0);
            }
            for j in 0..n {
                parse(l, b, pos, push)?;
                if push {
                    ffi::lua_rawseti(l, -2, (j + 1) as _);
                }
            }
            Some(())
        }
    }
}

/// Writes the Lua value on top of the stack as the script's reply, and pops it.
/// `resp3_script`: the script called `redis.setresp(3)` (booleans stay booleans).
///
/// # Safety
/// `l` valid with the value on top.
pub unsafe fn reply_from_lua(l: State, out: &mut ReplyBuf, resp3_script: bool) {
    // Redis needs 4 free slots for the worst case (a map entry) before converting.
    if ffi::lua_checkstack(l, 4) == 0 {
        out.error("ERR reached lua stack limit");
        ffi::lua_pop(l, 1);
        return;
    }
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => out.bulk(to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => {
            let b = ffi::lua_toboolean(l, -1) != 0;
            if resp3_script {
                out.boolean(b);
            } else if b {
                out.int(1);
            } else {
                out.null();
            }
        }
        ffi::LUA_TNUMBER => out.int(c_double_to_i64(ffi::lua_tonumber(l, -1))),
        ffi::LUA_TTABLE => {
            table_reply(l, out, resp3_script);
            return; // table_reply pops
        }
        _ => out.null(),
    }
    ffi::lua_pop(l, 1);
}

/// Replaces CR and LF by spaces (status texts and error messages must stay one line).
fn one_line(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect()
}

unsafe fn table_reply(l: State, out: &mut ReplyBuf, resp3_script: bool) {
    let t = ffi::lua_gettop(l);
    if rawget_str(l, t, "err") == ffi::LUA_TSTRING {
        ffi::lua_pop(l, 1);
        error_from_table(l, out, t);
        ffi::lua_pop(l, 1);
        return;
    }
    ffi::lua_pop(l, 1);
    if rawget_str(l, t, "ok") == ffi::LUA_TSTRING {
        let mut line = b"+".to_vec();
        line.extend(one_line(to_bytes(l, -1).unwrap_or_default()));
        line.extend_from_slice(b"\r\n");
        out.raw(&line);
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if rawget_str(l, t, "double") == ffi::LUA_TNUMBER {
        out.double(ffi::lua_tonumber(l, -1));
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if rawget_str(l, t, "big_number") == ffi::LUA_TSTRING {
        let digits = one_line(to_bytes(l, -1).unwrap_or_default());
        out.big_number(&String::from_utf8_lossy(&digits));
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if rawget_str(l, t, "verbatim_string") == ffi::LUA_TTABLE {
        let v = ffi::lua_gettop(l);
        if rawget_str(l, v, "format") == ffi::LUA_TSTRING {
            if rawget_str(l, v, "string") == ffi::LUA_TSTRING {
                let mut format = to_bytes(l, -2).unwrap_or_default().to_vec();
                format.resize(3, 0);
                out.verbatim(to_bytes(l, -1).unwrap_or_default(), &String::from_utf8_lossy(&format));
                ffi::lua_pop(l, 4);
                return;
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_pop(l, 1);
    }
    ffi::lua_pop(l, 1);
    if rawget_str(l, t, "map") == ffi::LUA_TTABLE {
        let m = ffi::lua_gettop(l);
        out.map(count_pairs(l, m));
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, m) != 0 {
            ffi::lua_pushvalue(l, -2);
            reply_from_lua(l, out, resp3_script); // the key
            reply_from_lua(l, out, resp3_script); // the value
        }
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    if rawget_str(l, t, "set") == ffi::LUA_TTABLE {
        let s = ffi::lua_gettop(l);
        out.set(count_pairs(l, s));
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, s) != 0 {
            ffi::lua_pop(l, 1);
            ffi::lua_pushvalue(l, -1);
            reply_from_lua(l, out, resp3_script);
        }
        ffi::lua_pop(l, 2);
        return;
    }
    ffi::lua_pop(l, 1);
    let mut n = 0;
    while {
        ffi::lua_rawgeti(l, t, (n + 1) as _);
        let more = ffi::lua_isnil(l, -1) == 0;
        ffi::lua_pop(l, 1);
        more
    } {
        n += 1;
    }
    out.array(n);
    for j in 1..=n {
        ffi::lua_rawgeti(l, t, j as _);
        reply_from_lua(l, out, resp3_script);
    }
    ffi::lua_pop(l, 1);
}

unsafe fn count_pairs(l: State, t: c_int) -> usize {
    let mut n = 0;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, t) != 0 {
        ffi::lua_pop(l, 1);
        n += 1;
    }
    n
}

/// `{err = …}` returned by a script: `-<err>` (its own code, trailing CR/LF trimmed,
/// inner ones made spaces), not counted again when a command's error was passed on.
unsafe fn error_from_table(l: State, out: &mut ReplyBuf, t: c_int) {
    ffi::lua_getfield(l, t, c"err".as_ptr());
    let msg = if ffi::lua_isstring(l, -1) != 0 { to_bytes(l, -1).unwrap_or_default() } else { b"" };
    let mut end = msg.len();
    while end > 0 && matches!(msg[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    let mut start = 0;
    while start < end && matches!(msg[start], b'\r' | b'\n') {
        start += 1;
    }
    let text = one_line(&msg[start..end]);
    ffi::lua_pop(l, 1);
    ffi::lua_getfield(l, t, c"ignore_error_stats_update".as_ptr());
    let counted = ffi::lua_type(l, -1) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(l, -1) != 0;
    ffi::lua_pop(l, 1);
    out.error_verbatim(&text, !counted);
}
