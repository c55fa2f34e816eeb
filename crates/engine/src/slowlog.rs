//! The slow log: commands that took longer than `slowlog-log-slower-than` microseconds,
//! newest first, at most `slowlog-max-len` entries, arguments trimmed as Redis trims them.

use crate::client::Client;
use ferrokv_resp::Argv;
use std::collections::VecDeque;

const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

pub struct Entry {
    pub id: u64,
    pub time_s: i64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub peer: String,
    pub name: Vec<u8>,
}

#[derive(Default)]
pub struct Slowlog {
    pub entries: VecDeque<Entry>,
    next_id: u64,
}

impl Slowlog {
    pub fn add(&mut self, client: &Client, argv: &Argv, duration_us: u64, now_ms: i64, max_len: usize) {
        let argc = argv.len().min(MAX_ARGC);
        let mut args = Vec::with_capacity(argc);
        // MIGRATE's credentials are shown as Redis shows them (it redacts them in place).
        let secrets =
            if client.last_cmd == "migrate" { crate::commands::migrate::secret_args(argv) } else { Vec::new() };
        for (i, a) in argv.iter().enumerate().take(argc) {
            if secrets.contains(&i) {
                args.push(b"(redacted)".to_vec());
            } else if i == argc - 1 && argv.len() > argc {
                args.push(format!("... ({} more arguments)", argv.len() - argc + 1).into_bytes());
            } else if a.len() > MAX_STRING {
                let mut v = a[..MAX_STRING].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
                args.push(v);
            } else {
                args.push(a.to_vec());
            }
        }
        self.entries.push_front(Entry {
            id: self.next_id,
            time_s: now_ms / 1000,
            duration_us,
            args,
            peer: client.conn.addr.clone(),
            name: client.name.clone().unwrap_or_default(),
        });
        self.next_id += 1;
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }
}
