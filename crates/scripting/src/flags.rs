//! Script flags: the `#!lua flags=…` shebang of EVAL scripts (and, later, the flags of
//! registered functions), with Redis 7.0's parsing and error texts.

/// Flags a script declares. A script without a shebang runs in *compatibility mode*:
/// its flags are not known in advance and the command's own flags apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags(pub u8);

impl ScriptFlags {
    pub const NO_WRITES: u8 = 1 << 0;
    pub const ALLOW_OOM: u8 = 1 << 1;
    pub const ALLOW_STALE: u8 = 1 << 2;
    pub const NO_CLUSTER: u8 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u8 = 1 << 4;
    /// No shebang: the pre-7.0 behaviour (Redis's SCRIPT_FLAG_EVAL_COMPAT_MODE).
    pub const EVAL_COMPAT: u8 = 1 << 5;

    /// Names as they appear in shebangs and FUNCTION LIST, in Redis's order.
    pub const NAMES: [(u8, &'static str); 5] = [
        (Self::NO_WRITES, "no-writes"),
        (Self::ALLOW_OOM, "allow-oom"),
        (Self::ALLOW_STALE, "allow-stale"),
        (Self::NO_CLUSTER, "no-cluster"),
        (Self::ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    pub fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }

    pub fn compat(self) -> bool {
        self.has(Self::EVAL_COMPAT)
    }
}

/// Parses the shebang line of an EVAL script, if any. Returns the flags and the length
/// of the shebang (the bytes before its newline, which is kept so line numbers stay the
/// user's), or Redis's error text.
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags(ScriptFlags::EVAL_COMPAT), 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match ferrokv_resp::args::split_args(&body[..end]) {
        Ok(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", String::from_utf8_lossy(&parts[0])));
    }
    let mut flags = 0u8;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!("Unknown lua shebang option: {}", String::from_utf8_lossy(part)));
        };
        flags |= parse_flag_list(list)?;
    }
    Ok((ScriptFlags(flags), end))
}

/// A comma-separated flag list (`no-writes,allow-oom`); an empty list has no flags, an
/// empty item between commas is unknown (as Redis's split yields it).
fn parse_flag_list(list: &[u8]) -> Result<u8, String> {
    let mut flags = 0;
    if list.is_empty() {
        return Ok(0);
    }
    for name in list.split(|&b| b == b',') {
        match ScriptFlags::NAMES.iter().find(|(_, n)| n.as_bytes() == name) {
            Some((f, _)) => flags |= f,
            None => return Err(format!("Unexpected flag in script shebang: {}", String::from_utf8_lossy(name))),
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(parse_shebang(b"return 1").unwrap(), (ScriptFlags(ScriptFlags::EVAL_COMPAT), 0));
        assert_eq!(parse_shebang(b"#!lua\nreturn 1").unwrap(), (ScriptFlags(0), 5));
        let (f, n) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert_eq!((f.0, n), (ScriptFlags::NO_WRITES | ScriptFlags::ALLOW_OOM, 31));
        assert_eq!(parse_shebang(b"#!lua").unwrap_err(), "Invalid script shebang");
        assert_eq!(parse_shebang(b"#!js\n").unwrap_err(), "Unexpected engine in script shebang: #!js");
        assert_eq!(parse_shebang(b"#!lua x=1\n").unwrap_err(), "Unknown lua shebang option: x=1");
        assert_eq!(parse_shebang(b"#!lua flags=bad\n").unwrap_err(), "Unexpected flag in script shebang: bad");
    }
}
