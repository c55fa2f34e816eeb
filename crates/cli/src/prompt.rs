//! The interactive prompt: `127.0.0.1:6379> `, `[db]` once another database is selected,
//! `(TX)` inside MULTI, `redis /path/to.sock> ` on a unix socket.

use crate::conn::Target;

/// Shown while there is no connection; the next command tries to reconnect.
pub const NOT_CONNECTED: &str = "not connected> ";

pub fn prompt(target: &Target, dbnum: i64, in_multi: bool) -> String {
    let mut p = match target {
        Target::Unix(path) => format!("redis {}", path.display()),
        // IPv6 addresses are bracketed so the port stays readable.
        Target::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
        Target::Tcp { host, port } => format!("{host}:{port}"),
    };
    if dbnum != 0 {
        p.push_str(&format!("[{dbnum}]"));
    }
    if in_multi {
        p.push_str("(TX)");
    }
    p.push_str("> ");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: i64) -> Target {
        Target::Tcp { host: host.into(), port }
    }

    #[test]
    fn prompts() {
        assert_eq!(prompt(&tcp("127.0.0.1", 6379), 0, false), "127.0.0.1:6379> ");
        assert_eq!(prompt(&tcp("127.0.0.1", 6379), 2, false), "127.0.0.1:6379[2]> ");
        assert_eq!(prompt(&tcp("127.0.0.1", 6379), 2, true), "127.0.0.1:6379[2](TX)> ");
        assert_eq!(prompt(&tcp("::1", 7000), 0, false), "[::1]:7000> ");
        assert_eq!(prompt(&Target::Unix("/tmp/r.sock".into()), 1, false), "redis /tmp/r.sock[1]> ");
    }
}
