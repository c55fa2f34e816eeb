//! `bit`: LuaBitOp 1.0's operations on 32-bit integers. Arguments are normalized like
//! LuaBitOp normalizes them: the number is rounded to an integer (ties to even) and
//! taken modulo 2^32, results are signed 32-bit numbers.

use crate::lua::State;
use mlua_sys as ffi;
use std::ffi::{c_int, CStr};

pub const FUNCS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"tobit", tobit),
    (c"bnot", bnot),
    (c"band", band),
    (c"bor", bor),
    (c"bxor", bxor),
    (c"lshift", lshift),
    (c"rshift", rshift),
    (c"arshift", arshift),
    (c"rol", rol),
    (c"ror", ror),
    (c"bswap", bswap),
    (c"tohex", tohex),
];

/// The 32-bit value of a number: adding 2^52 + 2^51 leaves the integer part, rounded to
/// nearest even, in the low bits of the double's representation.
pub fn normalize(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

/// Argument `idx` as 32 bits; a non-number is LuaBitOp's type error.
unsafe fn arg(l: State, idx: c_int) -> u32 {
    let b = normalize(ffi::lua_tonumber(l, idx));
    if b == 0 && ffi::lua_isnumber(l, idx) == 0 {
        // luaL_typerror: "number expected, got <type>".
        ffi::lua_pushfstring(l, c"%s expected, got %s".as_ptr(), c"number".as_ptr(), ffi::luaL_typename(l, idx));
        crate::lua::arg_error_top(l, idx);
    }
    b
}

unsafe fn ret(l: State, b: u32) -> c_int {
    ffi::lua_pushnumber(l, b as i32 as f64);
    1
}

unsafe extern "C-unwind" fn tobit(l: State) -> c_int {
    ret(l, arg(l, 1))
}

unsafe extern "C-unwind" fn bnot(l: State) -> c_int {
    ret(l, !arg(l, 1))
}

unsafe fn fold(l: State, op: fn(u32, u32) -> u32) -> c_int {
    let mut b = arg(l, 1);
    let mut i = ffi::lua_gettop(l);
    while i > 1 {
        b = op(b, arg(l, i));
        i -= 1;
    }
    ret(l, b)
}

unsafe extern "C-unwind" fn band(l: State) -> c_int {
    fold(l, |a, b| a & b)
}

unsafe extern "C-unwind" fn bor(l: State) -> c_int {
    fold(l, |a, b| a | b)
}

unsafe extern "C-unwind" fn bxor(l: State) -> c_int {
    fold(l, |a, b| a ^ b)
}

unsafe fn shift(l: State, op: fn(u32, u32) -> u32) -> c_int {
    let b = arg(l, 1);
    let n = arg(l, 2) & 31;
    ret(l, op(b, n))
}

unsafe extern "C-unwind" fn lshift(l: State) -> c_int {
    shift(l, |b, n| b << n)
}

unsafe extern "C-unwind" fn rshift(l: State) -> c_int {
    shift(l, |b, n| b >> n)
}

unsafe extern "C-unwind" fn arshift(l: State) -> c_int {
    shift(l, |b, n| ((b as i32) >> n) as u32)
}

unsafe extern "C-unwind" fn rol(l: State) -> c_int {
    shift(l, |b, n| b.rotate_left(n))
}

unsafe extern "C-unwind" fn ror(l: State) -> c_int {
    shift(l, |b, n| b.rotate_right(n))
}

unsafe extern "C-unwind" fn bswap(l: State) -> c_int {
    ret(l, arg(l, 1).swap_bytes())
}

unsafe extern "C-unwind" fn tohex(l: State) -> c_int {
    let mut b = arg(l, 1);
    let mut n: i32 = if ffi::lua_type(l, 2) == ffi::LUA_TNONE { 8 } else { arg(l, 2) as i32 };
    let digits: &[u8; 16] = if n < 0 {
        n = n.wrapping_neg();
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // LuaBitOp clamps only from above: -2^31 negated stays negative and prints nothing.
    let n = n.clamp(i32::MIN, 8).max(0) as usize;
    let mut buf = [0u8; 8];
    for i in (0..n).rev() {
        buf[i] = digits[(b & 15) as usize];
        b >>= 4;
    }
    crate::lua::push_bytes(l, &buf[..n]);
    1
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalization_rounds_and_wraps() {
        assert_eq!(normalize(1.0), 1);
        assert_eq!(normalize(-1.0), u32::MAX);
        assert_eq!(normalize(2.5), 2);
        assert_eq!(normalize(3.5), 4);
        assert_eq!(normalize(4294967296.0 + 5.0), 5);
        assert_eq!(normalize(2147483648.0) as i32, i32::MIN);
    }
}
