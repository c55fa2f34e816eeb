//! Output that reaches clients other than the one running a command: keyspace
//! notifications, pub/sub messages and MONITOR lines. Each receiver's output limits are
//! checked as its buffer grows, so a subscriber that never reads is closed at its limit
//! instead of growing the server.

use crate::client::Client;
use crate::engine::Engine;
use ferrokv_config::{notify, pid};
use ferrokv_resp::Argv;

impl Engine {
    /// Publishes a keyspace notification if the class is enabled.
    pub(crate) fn notify(&mut self, current: Option<&mut Client>, class: u32, event: &str, key: &[u8], db: usize) {
        let flags = self.hot.notify;
        if flags & class == 0 {
            return;
        }
        let mut current = current;
        if flags & notify::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.publish(current.as_deref_mut(), &ch, event.as_bytes());
        }
        if flags & notify::KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.publish(current, ch.as_bytes(), key);
        }
    }

    /// Delivers a message to every subscriber of `channel`; returns how many got it.
    pub(crate) fn publish(&mut self, mut current: Option<&mut Client>, channel: &[u8], msg: &[u8]) -> usize {
        if !self.pubsub.has_receivers() {
            return 0;
        }
        let (direct, by_pattern) = self.pubsub.receivers(channel);
        let n = direct.len() + by_pattern.len();
        let deliver = |c: &mut Client, pattern: Option<&[u8]>| {
            match pattern {
                None => {
                    c.out.push(3);
                    c.out.bulk(b"message");
                }
                Some(p) => {
                    c.out.push(4);
                    c.out.bulk(b"pmessage");
                    c.out.bulk(p);
                }
            }
            c.out.bulk(channel);
            c.out.bulk(msg);
        };
        let cur_id = current.as_ref().map(|c| c.id);
        let targets =
            direct.into_iter().map(|id| (id, None)).chain(by_pattern.into_iter().map(|(p, id)| (id, Some(p))));
        for (id, pat) in targets {
            if Some(id) == cur_id {
                if let Some(c) = current.as_deref_mut() {
                    deliver(c, pat.as_deref());
                }
            } else if let Some(c) = self.clients.get_mut(id) {
                deliver(c, pat.as_deref());
                c.waker.wake();
                self.check_receiver(id);
            }
        }
        n
    }

    /// SPUBLISH: delivers an `smessage` to the shard channel's subscribers.
    pub(crate) fn publish_shard(&mut self, mut current: Option<&mut Client>, channel: &[u8], msg: &[u8]) -> usize {
        let receivers = self.pubsub.shard_receivers(channel);
        let deliver = |c: &mut Client| {
            c.out.push(3);
            c.out.bulk(b"smessage");
            c.out.bulk(channel);
            c.out.bulk(msg);
        };
        let cur_id = current.as_ref().map(|c| c.id);
        for &id in &receivers {
            if Some(id) == cur_id {
                if let Some(c) = current.as_deref_mut() {
                    deliver(c);
                }
            } else if let Some(c) = self.clients.get_mut(id) {
                deliver(c);
                c.waker.wake();
                self.check_receiver(id);
            }
        }
        receivers.len()
    }

    pub(crate) fn feed_monitors(&mut self, client: &Client, argv: &Argv, now_ms: i64) {
        let secs = now_ms.div_euclid(1000);
        let micros = now_ms.rem_euclid(1000) * 1000;
        let origin = match client.conn.transport {
            crate::client::Transport::Unix => format!("unix:{}", self.cfg.str(pid("unixsocket"))),
            crate::client::Transport::Tcp => client.conn.addr.clone(),
        };
        let mut line = format!("{secs}.{micros:06} [{} {origin}]", client.db);
        let redact = matches!(client.last_cmd, "auth" | "hello" | "acl|setuser" | "config|set");
        // MIGRATE: only AUTH's password and AUTH2's user and password, as Redis redacts them.
        let migrate_secrets =
            if client.last_cmd == "migrate" { crate::commands::migrate::secret_args(argv) } else { Vec::new() };
        for (i, a) in argv.iter().enumerate() {
            line.push(' ');
            if (redact && i > 0 && !(client.last_cmd == "hello" && i == 1)) || migrate_secrets.contains(&i) {
                line.push_str("\"(redacted)\"");
            } else {
                line.push_str(&ferrokv_resp::args::quoted(a));
            }
        }
        for id in self.monitors.clone() {
            if id == client.id {
                continue;
            }
            if let Some(m) = self.clients.get_mut(id) {
                m.out.simple(&line);
                m.waker.wake();
                self.check_receiver(id);
            }
        }
    }
}
