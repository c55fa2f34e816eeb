//! The replies of ACL GETUSER and ACL LOG, which the server and the sentinel give alike.

use crate::{LogEntry, SelectorInfo, UserInfo};
use ferrokv_resp::ReplyBuf;

/// ACL GETUSER's reply for a user that exists (a map of six fields, as Redis 7.0).
pub fn write_user_info(out: &mut ReplyBuf, info: &UserInfo) {
    out.map(6);
    out.bulk(b"flags");
    out.set(info.flags.len());
    info.flags.iter().for_each(|f| out.bulk(f.as_bytes()));
    out.bulk(b"passwords");
    out.array(info.passwords.len());
    info.passwords.iter().for_each(|p| out.bulk(p.as_bytes()));
    selector_fields(out, &info.root);
    out.bulk(b"selectors");
    out.array(info.selectors.len());
    for s in &info.selectors {
        out.map(3);
        selector_fields(out, s);
    }
}

fn selector_fields(out: &mut ReplyBuf, s: &SelectorInfo) {
    out.bulk(b"commands");
    out.bulk(s.commands.as_bytes());
    out.bulk(b"keys");
    out.bulk(s.keys.as_bytes());
    out.bulk(b"channels");
    out.bulk(s.channels.as_bytes());
}

/// ACL LOG's reply: one map of seven fields per entry, ages counted up to `now_ms`.
pub fn write_log_entries(out: &mut ReplyBuf, entries: &[LogEntry], now_ms: i64) {
    out.array(entries.len());
    for e in entries {
        out.map(7);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(e.reason.name().as_bytes());
        out.bulk(b"context");
        out.bulk(e.context.name().as_bytes());
        out.bulk(b"object");
        out.bulk(e.object.as_bytes());
        out.bulk(b"username");
        out.bulk(e.username.as_bytes());
        out.bulk(b"age-seconds");
        out.double((now_ms - e.ctime_ms) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.client_info.as_bytes());
    }
}
