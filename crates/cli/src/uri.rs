//! `-u redis[s]://[[user:]password@][host][:port][/db]`: fills the fields it names and
//! leaves the others as the options before it set them. User and password are
//! percent-decoded, so they may contain `@`, `:` or `/`.

use crate::options::{atoi, ConnInfo};

pub fn apply(uri: &[u8], conn: &mut ConnInfo) -> Result<(), String> {
    let rest = if let Some(rest) = strip_prefix_ignore_case(uri, b"redis://") {
        rest
    } else if let Some(rest) = strip_prefix_ignore_case(uri, b"rediss://") {
        conn.tls.get_or_insert_with(Default::default);
        rest
    } else {
        return Err("Invalid URI scheme".into());
    };
    let mut rest = rest;
    if let Some(at) = rest.iter().position(|&b| b == b'@') {
        let userinfo = &rest[..at];
        let password = match userinfo.iter().position(|&b| b == b':') {
            Some(colon) => {
                // redis://:password@host means the default user: redis-cli 7.0 sent an empty
                // user name there (and failed to authenticate), later versions do not.
                let user = percent_decode(&userinfo[..colon])?;
                conn.user = (!user.is_empty()).then_some(user);
                &userinfo[colon + 1..]
            }
            None => userinfo,
        };
        conn.auth = Some(percent_decode(password)?);
        rest = &rest[at + 1..];
    }
    let (authority, path) = match rest.iter().position(|&b| b == b'/') {
        Some(slash) => (&rest[..slash], Some(&rest[slash + 1..])),
        None => (rest, None),
    };
    if !authority.is_empty() {
        let host = match authority.iter().rposition(|&b| b == b':') {
            Some(colon) => {
                conn.port = atoi(&authority[colon + 1..]);
                &authority[..colon]
            }
            None => authority,
        };
        // An IPv6 address is written in brackets so its colons are not taken for the port's.
        let host = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]")).unwrap_or(host);
        if !host.is_empty() {
            conn.host = String::from_utf8_lossy(host).into_owned();
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        conn.dbnum = atoi(db);
    }
    Ok(())
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

fn percent_decode(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let (Some(&h), Some(&l)) = (s.get(i + 1), s.get(i + 2)) else {
                return Err("Incomplete URI encoding".into());
            };
            let hex = |c: u8| (c as char).to_digit(16);
            let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                return Err("Illegal character in URI encoding".into());
            };
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(uri: &str) -> Result<ConnInfo, String> {
        let mut c = ConnInfo::default();
        apply(uri.as_bytes(), &mut c).map(|_| c)
    }

    #[test]
    fn full_uri() {
        let c = parsed("redis://alice:p%40ss@example.org:7000/3").unwrap();
        assert_eq!(c.user.as_deref(), Some(&b"alice"[..]));
        assert_eq!(c.auth.as_deref(), Some(&b"p@ss"[..]));
        assert_eq!((c.host.as_str(), c.port, c.dbnum), ("example.org", 7000, 3));
    }

    #[test]
    fn partial_uris_keep_defaults() {
        let c = parsed("redis://:secret@localhost").unwrap();
        assert_eq!((c.user, c.auth.as_deref()), (None, Some(&b"secret"[..])));
        assert_eq!((c.host.as_str(), c.port, c.dbnum), ("localhost", 6379, 0));
        let c = parsed("REDIS://h:1/").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.dbnum), ("h", 1, 0));
        let c = parsed("redis://[::1]:6380").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 6380));
        let c = parsed("redis:///5").unwrap();
        assert_eq!((c.host.as_str(), c.dbnum), ("127.0.0.1", 5));
    }

    #[test]
    fn bad_uris() {
        assert_eq!(parsed("http://x").unwrap_err(), "Invalid URI scheme");
        assert_eq!(parsed("redis://:%zz@h").unwrap_err(), "Illegal character in URI encoding");
        assert_eq!(parsed("redis://:%4@h").unwrap_err(), "Incomplete URI encoding");
    }
}
