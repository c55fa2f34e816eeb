//! `--stat`: one line of server figures per second (or `-i`) from INFO — keys, memory,
//! clients, requests with the increase since the previous line, connections, and
//! whether a child process (save, AOF rewrite) or loading is running.

use crate::session::{emit, Exit, Session};
use ferrokv_resp::Frame;
use std::time::Duration;

const HEADER: &str = "------- data ------ --------------------- load -------------------- - child -\n\
                      keys       mem      clients blocked requests            connections          \n";
/// The header is repeated so it stays in view.
const HEADER_EVERY: u64 = 20;

pub fn run(s: &mut Session) -> Result<(), Exit> {
    let mut previous_requests = None;
    for line in 0u64.. {
        let info = match super::call_reconnecting(s, &[b"INFO"])? {
            Frame::Error(e) => return super::fail(&format!("ERROR: {}", String::from_utf8_lossy(&e))),
            reply => String::from_utf8_lossy(reply.as_bytes().unwrap_or_default()).into_owned(),
        };
        if line % HEADER_EVERY == 0 {
            emit(HEADER.as_bytes())?;
        }
        let (text, requests) = stat_line(&info, previous_requests);
        previous_requests = Some(requests);
        emit(text.as_bytes())?;
        s.pause(Duration::from_secs(1));
    }
    Ok(())
}

/// A field of INFO as redis-cli finds it: the first occurrence of the name, the value
/// up to the end of the line or the next comma (`db0:keys=1,expires=0`).
pub fn info_field(info: &str, field: &str) -> Option<i64> {
    let at = info.find(field)? + field.len() + 1;
    let rest = info.get(at..)?;
    let end = rest.find(['\r', ',']).unwrap_or(rest.len());
    Some(crate::options::atoi(&rest.as_bytes()[..end]))
}

/// One line of the table, and the request count it showed.
pub fn stat_line(info: &str, previous_requests: Option<i64>) -> (String, i64) {
    let field = |name: &str| info_field(info, name).unwrap_or(0);
    let keys: i64 = (0..20).filter_map(|db| info_field(info, &format!("db{db}:keys"))).sum();
    let requests = field("total_commands_processed");
    let delta = previous_requests.map_or(0, |p| requests - p);
    let mut line = format!("{:<11}", keys);
    line.push_str(&format!("{:<8}", human_bytes(field("used_memory"))));
    line.push_str(&format!(" {:<8}", field("connected_clients")));
    line.push_str(&format!("{:<8}", field("blocked_clients")));
    line.push_str(&format!("{:<19}", format!("{requests} (+{delta})")));
    line.push_str(&format!(" {:<12}", field("total_connections_received")));
    let children = field("bgsave_in_progress") | field("aof_rewrite_in_progress") << 1 | field("loading") << 2;
    line.push_str(match children {
        1 => "SAVE",
        2 => "AOF",
        3 => "SAVE+AOF",
        4 => "LOAD",
        _ => "",
    });
    line.push('\n');
    (line, requests)
}

/// 100B, 4.00K, 2.50M, 1.00G.
pub fn human_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let n = n.unsigned_abs() as f64;
    const K: f64 = 1024.0;
    if n < K {
        format!("{sign}{n}B")
    } else if n < K * K {
        format!("{sign}{:.2}K", n / K)
    } else if n < K * K * K {
        format!("{sign}{:.2}M", n / (K * K))
    } else if n < K * K * K * K {
        format!("{sign}{:.2}G", n / (K * K * K))
    } else {
        format!("{sign}{:.2}T", n / (K * K * K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Memory\r\nused_memory:2097152\r\nused_memory_human:2.00M\r\n# Clients\r\nconnected_clients:3\r\nblocked_clients:1\r\n# Stats\r\ntotal_connections_received:12\r\ntotal_commands_processed:150\r\n# Persistence\r\nloading:0\r\nbgsave_in_progress:1\r\naof_rewrite_in_progress:0\r\n# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb3:keys=2,expires=1,avg_ttl=9\r\n";

    #[test]
    fn fields() {
        assert_eq!(info_field(INFO, "used_memory"), Some(2097152));
        assert_eq!(info_field(INFO, "db3:keys"), Some(2));
        assert_eq!(info_field(INFO, "db1:keys"), None);
    }

    #[test]
    fn line_layout() {
        let (first, req) = stat_line(INFO, None);
        assert_eq!(first, "7          2.00M    3       1       150 (+0)            12          SAVE\n");
        let (second, _) = stat_line(INFO, Some(req - 10));
        assert!(second.contains("150 (+10)"), "{second}");
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(100), "100B");
        assert_eq!(human_bytes(4096), "4.00K");
        assert_eq!(human_bytes(-1536), "-1.50K");
    }
}
