//! `cjson.decode`: Lua CJSON 2.1.0's parser. JSON `null` becomes `cjson.null` (a NULL
//! light userdata), numbers are read by C's `strtod` (so with the default
//! `decode_invalid_numbers` on, `Infinity`, `NaN`, hex and leading `+`/zeros are taken),
//! `\uXXXX` escapes (surrogate pairs included) become UTF-8, other bytes are copied as
//! they are. The text ends at its first NUL byte, as a C string would. Errors name the
//! expected and the found token and the 1-based character, in the original's words.

use super::cjson::{config, Config};
use crate::lua::State;
use mlua_sys as ffi;
use std::ffi::{c_char, c_int, CStr};

extern "C" {
    // The C library's reader, exactly as the original uses it (hex floats, inf/nan,
    // correctly rounded decimals); ferrokv never changes the locale, so '.' it is.
    fn strtod(s: *const c_char, end: *mut *mut c_char) -> f64;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    String,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Kind {
    fn name(self) -> &'static CStr {
        match self {
            Kind::ObjBegin => c"T_OBJ_BEGIN",
            Kind::ObjEnd => c"T_OBJ_END",
            Kind::ArrBegin => c"T_ARR_BEGIN",
            Kind::ArrEnd => c"T_ARR_END",
            Kind::String => c"T_STRING",
            Kind::Number => c"T_NUMBER",
            Kind::Boolean => c"T_BOOLEAN",
            Kind::Null => c"T_NULL",
            Kind::Colon => c"T_COLON",
            Kind::Comma => c"T_COMMA",
            Kind::End => c"T_END",
            Kind::Error => c"T_ERROR",
        }
    }
}

#[derive(Clone, Copy)]
struct Token {
    kind: Kind,
    /// 0-based position of the token (of the fault, for errors).
    index: usize,
    number: f64,
    boolean: bool,
    error: &'static CStr,
}

/// The parse position over the argument's bytes (no owned data: errors `longjmp`).
struct Parser {
    data: *const u8,
    len: usize,
    ptr: usize,
    depth: c_int,
    cfg: *mut Config,
}

impl Parser {
    /// The byte at `i`; past the end, the C string's terminator.
    fn at(&self, i: usize) -> u8 {
        if i < self.len {
            // SAFETY: in bounds of the Lua string the parser was made from.
            unsafe { *self.data.add(i) }
        } else {
            0
        }
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        s.iter().enumerate().all(|(i, &b)| self.at(self.ptr + i) == b)
    }

    fn error(&mut self, tok: &mut Token, msg: &'static CStr) {
        tok.kind = Kind::Error;
        tok.index = self.ptr;
        tok.error = msg;
    }

    fn next_token(&mut self) -> Token {
        let mut tok = Token { kind: Kind::End, index: 0, number: 0.0, boolean: false, error: c"" };
        while matches!(self.at(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        tok.index = self.ptr;
        let ch = self.at(self.ptr);
        let single = match ch {
            b'{' => Some(Kind::ObjBegin),
            b'}' => Some(Kind::ObjEnd),
            b'[' => Some(Kind::ArrBegin),
            b']' => Some(Kind::ArrEnd),
            b',' => Some(Kind::Comma),
            b':' => Some(Kind::Colon),
            0 => return tok,
            _ => None,
        };
        if let Some(kind) = single {
            tok.kind = kind;
            self.ptr += 1;
            return tok;
        }
        let invalid_numbers = unsafe { (*self.cfg).decode_invalid_numbers } != 0;
        match ch {
            b'"' => self.string_token(&mut tok),
            b'-' | b'0'..=b'9' => {
                if !invalid_numbers && self.is_invalid_number() {
                    self.error(&mut tok, c"invalid number");
                } else {
                    self.number_token(&mut tok);
                }
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                if self.starts_with(b"true") {
                    tok.kind = Kind::Boolean;
                    tok.boolean = true;
                    self.ptr += 4;
                } else if self.starts_with(b"false") {
                    tok.kind = Kind::Boolean;
                    self.ptr += 5;
                } else if self.starts_with(b"null") {
                    tok.kind = Kind::Null;
                    self.ptr += 4;
                } else if invalid_numbers && self.is_invalid_number() {
                    // Only what strtod takes but JSON does not (inf, nan, +1) goes to
                    // strtod here: anything else is a plain invalid token.
                    self.number_token(&mut tok);
                } else {
                    self.error(&mut tok, c"invalid token");
                }
            }
            _ => self.error(&mut tok, c"invalid token"),
        }
        tok
    }

    /// Numbers strict JSON refuses but strtod reads: a leading `+`, hex, leading zeros,
    /// inf and nan.
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        match self.at(p) {
            b'+' => return true,
            b'-' => p += 1,
            _ => {}
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = [self.at(p) | 0x20, self.at(p + 1) | 0x20, self.at(p + 2) | 0x20];
        &word == b"inf" || &word == b"nan"
    }

    fn number_token(&mut self, tok: &mut Token) {
        let mut end: *mut c_char = std::ptr::null_mut();
        // SAFETY: Lua strings are NUL-terminated, so strtod stops inside the buffer
        // (at the latest on the terminator at `len`); `ptr <= len`.
        let (value, used) = unsafe {
            let start = self.data.add(self.ptr).cast::<c_char>();
            let v = strtod(start, &mut end);
            (v, end.offset_from(start) as usize)
        };
        tok.kind = Kind::Number;
        tok.number = value;
        if used == 0 {
            self.error(tok, c"invalid number");
        } else {
            self.ptr += used;
        }
    }

    fn string_token(&mut self, tok: &mut Token) {
        // SAFETY: the config outlives the call; nothing else uses `tmp` meanwhile.
        let tmp = unsafe { &mut (*self.cfg).tmp };
        tmp.clear();
        self.ptr += 1;
        loop {
            let ch = self.at(self.ptr);
            match ch {
                b'"' => break,
                0 => return self.error(tok, c"unexpected end of string"),
                b'\\' => {
                    let esc = match self.at(self.ptr + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 12,
                        b'r' => b'\r',
                        b'u' => {
                            if !self.unicode_escape(tmp) {
                                return self.error(tok, c"invalid unicode escape code");
                            }
                            continue;
                        }
                        _ => return self.error(tok, c"invalid escape code"),
                    };
                    tmp.push(esc);
                    self.ptr += 2;
                }
                _ => {
                    tmp.push(ch);
                    self.ptr += 1;
                }
            }
        }
        self.ptr += 1;
        tok.kind = Kind::String;
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            v = v << 4 | (self.at(at + i) as char).to_digit(16)?;
        }
        Some(v)
    }

    /// `\uXXXX` (or a surrogate pair of them) at `ptr`, appended as UTF-8.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.ptr + 2) else { return false };
        let mut escape_len = 6;
        if cp & 0xf800 == 0xd800 {
            // A low surrogate first, or a high one not followed by a low one, is invalid.
            if cp & 0x400 != 0 || self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.ptr + 8) else { return false };
            if low & 0xfc00 != 0xdc00 {
                return false;
            }
            cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
            escape_len = 12;
        }
        let mut utf8 = [0u8; 4];
        let n = match cp {
            0..=0x7f => {
                utf8[0] = cp as u8;
                1
            }
            0x80..=0x7ff => {
                utf8[0] = 0xc0 | (cp >> 6) as u8;
                utf8[1] = 0x80 | (cp & 0x3f) as u8;
                2
            }
            0x800..=0xffff => {
                utf8[0] = 0xe0 | (cp >> 12) as u8;
                utf8[1] = 0x80 | ((cp >> 6) & 0x3f) as u8;
                utf8[2] = 0x80 | (cp & 0x3f) as u8;
                3
            }
            _ => {
                utf8[0] = 0xf0 | (cp >> 18) as u8;
                utf8[1] = 0x80 | ((cp >> 12) & 0x3f) as u8;
                utf8[2] = 0x80 | ((cp >> 6) & 0x3f) as u8;
                utf8[3] = 0x80 | (cp & 0x3f) as u8;
                4
            }
        };
        out.extend_from_slice(&utf8[..n]);
        self.ptr += escape_len;
        true
    }
}

/// `Expected <what> but found <token> at character <n>`.
unsafe fn parse_error(l: State, expected: &CStr, tok: &Token) -> ! {
    let found = if tok.kind == Kind::Error { tok.error } else { tok.kind.name() };
    ffi::luaL_error(
        l,
        c"Expected %s but found %s at character %d".as_ptr(),
        expected.as_ptr(),
        found.as_ptr(),
        (tok.index + 1) as c_int,
    );
    unreachable!("luaL_error raises")
}

/// One level deeper, with `slots` free stack slots for it.
unsafe fn descend(l: State, p: &mut Parser, slots: c_int) {
    p.depth += 1;
    if p.depth <= (*p.cfg).decode_max_depth && ffi::lua_checkstack(l, slots) != 0 {
        return;
    }
    super::make_room(l);
    ffi::luaL_error(l, c"Found too many nested data structures (%d) at character %d".as_ptr(), p.depth, p.ptr as c_int);
}

unsafe fn push_tmp(l: State, p: &Parser) {
    let tmp = &mut (*p.cfg).tmp;
    ffi::lua_pushlstring(l, tmp.as_ptr().cast(), tmp.len());
    super::cjson::release_if_large(tmp);
}

unsafe fn parse_object(l: State, p: &mut Parser) {
    descend(l, p, 3);
    ffi::lua_createtable(l, 0, 0);
    let mut tok = p.next_token();
    if tok.kind == Kind::ObjEnd {
        p.depth -= 1;
        return;
    }
    loop {
        if tok.kind != Kind::String {
            parse_error(l, c"object key string", &tok);
        }
        push_tmp(l, p);
        tok = p.next_token();
        if tok.kind != Kind::Colon {
            parse_error(l, c"colon", &tok);
        }
        tok = p.next_token();
        process_value(l, p, &tok);
        ffi::lua_rawset(l, -3);
        tok = p.next_token();
        if tok.kind == Kind::ObjEnd {
            p.depth -= 1;
            return;
        }
        if tok.kind != Kind::Comma {
            parse_error(l, c"comma or object end", &tok);
        }
        tok = p.next_token();
    }
}

unsafe fn parse_array(l: State, p: &mut Parser) {
    descend(l, p, 2);
    ffi::lua_createtable(l, 0, 0);
    let mut tok = p.next_token();
    if tok.kind == Kind::ArrEnd {
        p.depth -= 1;
        return;
    }
    let mut i: c_int = 1;
    loop {
        process_value(l, p, &tok);
        ffi::lua_rawseti_(l, -2, i);
        i = i.wrapping_add(1);
        tok = p.next_token();
        if tok.kind == Kind::ArrEnd {
            p.depth -= 1;
            return;
        }
        if tok.kind != Kind::Comma {
            parse_error(l, c"comma or array end", &tok);
        }
        tok = p.next_token();
    }
}

unsafe fn process_value(l: State, p: &mut Parser, tok: &Token) {
    match tok.kind {
        Kind::String => push_tmp(l, p),
        Kind::Number => ffi::lua_pushnumber(l, tok.number),
        Kind::Boolean => ffi::lua_pushboolean(l, tok.boolean as c_int),
        Kind::ObjBegin => parse_object(l, p),
        Kind::ArrBegin => parse_array(l, p),
        Kind::Null => ffi::lua_pushlightuserdata(l, std::ptr::null_mut()),
        _ => parse_error(l, c"value", tok),
    }
}

pub(super) unsafe extern "C-unwind" fn decode(l: State) -> c_int {
    if ffi::lua_gettop(l) != 1 {
        ffi::luaL_argerror(l, 1, c"expected 1 argument".as_ptr());
    }
    let cfg: *mut Config = config(l);
    // A decode that failed in a long string left it behind.
    super::cjson::release_if_large(&mut (*cfg).tmp);
    let mut len = 0usize;
    let data = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
    let mut p = Parser { data, len, ptr: 0, depth: 0, cfg };
    // Only the first character of a JSON text is sure to be ASCII: a NUL in the first
    // two bytes means UTF-16 or UTF-32.
    if len >= 2 && (p.at(0) == 0 || p.at(1) == 0) {
        ffi::luaL_error(l, c"JSON parser does not support UTF-16 or UTF-32".as_ptr());
    }
    let tok = p.next_token();
    process_value(l, &mut p, &tok);
    let tok = p.next_token();
    if tok.kind != Kind::End {
        parse_error(l, c"the end", &tok);
    }
    1
}
