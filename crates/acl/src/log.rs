//! The ACL LOG: denied commands, keys, channels and logins, recent first, repeats folded.

/// Why a check failed: Redis's ACL_DENIED_* (its order picks the error reported when no
/// selector allows a command).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Denied {
    /// The `reason` ACL LOG shows.
    pub fn name(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key => "key",
            Denied::Channel => "channel",
            Denied::Auth => "auth",
        }
    }
}

/// Where the denied command came from (ACL LOG's `context`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Toplevel,
    Multi,
    Lua,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// One ACL LOG entry.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: Denied,
    pub context: Context,
    pub object: String,
    pub username: String,
    pub ctime_ms: i64,
    pub client_info: String,
}

/// Entries grouped into one when they repeat within this time.
const LOG_GROUPING_MS: i64 = 60_000;

#[derive(Default)]
pub struct AclLog {
    pub entries: Vec<LogEntry>,
}

impl AclLog {
    /// Records a denial, folding it into a recent identical entry (Redis scans the ten
    /// newest); `max_len` is `acllog-max-len`.
    pub fn add(&mut self, entry: LogEntry, max_len: usize) {
        let same = |e: &LogEntry| {
            e.reason == entry.reason
                && e.context == entry.context
                && (e.ctime_ms - entry.ctime_ms).abs() <= LOG_GROUPING_MS
                && e.object == entry.object
                && e.username == entry.username
        };
        if let Some(i) = self.entries.iter().take(10).position(same) {
            let mut e = self.entries.remove(i);
            e.count += 1;
            e.ctime_ms = entry.ctime_ms;
            e.client_info = entry.client_info;
            self.entries.insert(0, e);
            return;
        }
        self.entries.insert(0, entry);
        self.entries.truncate(max_len);
    }
}
