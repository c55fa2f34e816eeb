//! Loading at startup: the state clients see meanwhile (`-LOADING`, INFO `loading:1`), and
//! replaying append-only-file commands the way Redis does — straight into the command
//! implementations through a client nobody is connected to: no replies, no propagation,
//! no expiry (a key expired on disk is still loaded; the first access after loading
//! deletes it and propagates the DEL).

use super::Loading;
use crate::client::{Client, ConnInfo, Transport, Waker};
use crate::commands::spec::flags;
use crate::ctx::Ctx;
use crate::engine::Engine;
use ferrokv_keyspace::Obj;
use ferrokv_persist::rdb::KeyRecord;
use ferrokv_resp::Argv;
use std::sync::Arc;

struct NoWaker;

impl Waker for NoWaker {
    fn wake(&self) {}
}

/// The pseudo-client AOF commands run as (Redis's `CLIENT_ID_AOF` client).
pub struct Replayer {
    client: Client,
}

/// Why a command in an AOF could not be replayed.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayError {
    UnknownCommand(String),
}

impl Engine {
    /// Enters the loading state: commands without the `loading` flag get `-LOADING`.
    pub fn begin_loading(&mut self, total_bytes: u64, now_ms: i64) {
        self.persist.loading = Some(Loading { start_s: now_ms / 1000, total_bytes, loaded_bytes: 0 });
    }

    pub fn loading_progress(&mut self, loaded_bytes: u64) {
        if let Some(l) = self.persist.loading.as_mut() {
            l.loaded_bytes = loaded_bytes;
        }
    }

    pub fn end_loading(&mut self) {
        self.persist.loading = None;
    }

    pub fn is_loading(&self) -> bool {
        self.persist.loading.is_some()
    }

    pub fn replayer(&self, now_ms: i64) -> Replayer {
        let conn =
            ConnInfo { addr: String::new(), laddr: String::new(), fd: -1, transport: Transport::Unix, local: true };
        let mut client = Client::new(u64::MAX, conn, now_ms, Arc::new(NoWaker));
        client.authenticated = true;
        client.superuser = true;
        Replayer { client }
    }

    /// Runs one AOF command. Errors the command itself replies (a wrong type, say) are
    /// ignored, as Redis ignores its fake client's replies.
    pub fn replay(&mut self, r: &mut Replayer, args: &[&[u8]], now_ms: i64) -> Result<(), ReplayError> {
        let argv = Argv::from_slices(args);
        let Some(cmd) = self.commands.find(argv.get(0)) else {
            return Err(ReplayError::UnknownCommand(String::from_utf8_lossy(argv.get(0)).into_owned()));
        };
        let cmd = match self.commands.lookup(&argv) {
            crate::commands::Lookup::Found(id) => id,
            _ => cmd,
        };
        let c = self.commands.get(cmd);
        let name = c.name;
        let Some(handler) = c.handler else {
            return Err(ReplayError::UnknownCommand(String::from_utf8_lossy(argv.get(0)).into_owned()));
        };
        let cflags = c.flags();
        let client = &mut r.client;
        if let Some(m) = client.multi.as_mut().filter(|_| name != "exec") {
            m.flags |= cflags & !flags::LOADING;
            m.queue.push((cmd, argv));
        } else {
            let mut ctx = Ctx::new(self, client, &argv, cmd, now_ms);
            let _ = handler(&mut ctx);
        }
        client.out.clear();
        let _ = client.out.take_errors();
        Ok(())
    }

    /// Adds a key read from an RDB file. Keys already expired are dropped on a master
    /// (counted in `rdb_last_load_keys_expired`) and kept on a replica, whose master will
    /// delete them; a key seen twice keeps its last value.
    pub fn load_rdb_key(
        &mut self,
        db: usize,
        rec: KeyRecord,
        limits: &super::rdb::LoadLimits,
        now_ms: i64,
        keep_expired: bool,
    ) -> Result<(), String> {
        if db >= self.dbs.len() {
            return Err(format!(
                "FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting",
                self.dbs.len()
            ));
        }
        super::rdb::check_loaded(limits, &rec)?;
        if let Some(t) = rec.expire_ms {
            if t < now_ms && !keep_expired && !self.is_replica() {
                self.persist.rdb_last_load_keys_expired += 1;
                // Replicas continuing the history restored from this file hold the key:
                // they get its DEL, as from Redis (lazyfree-lazy-expire makes it UNLINK).
                if self.repl.backlog.is_some() {
                    let del: &[u8] =
                        if self.cfg.bool(ferrokv_config::pid("lazyfree-lazy-expire")) { b"UNLINK" } else { b"DEL" };
                    self.feed.push(db, [del, &rec.key[..]]);
                    self.feed.end_unit(false);
                }
                return Ok(());
            }
        }
        let value = super::rdb::value_from_rdb_with(limits, rec.value)?;
        let mut obj = Obj::new(value, now_ms);
        let lfu = ferrokv_keyspace::value::LFU_MODE.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(idle) = rec.idle_secs.filter(|_| !lfu) {
            obj.set_lru(ferrokv_keyspace::value::lru_clock(now_ms - (idle as i64) * 1000));
        }
        let d = &mut self.dbs[db];
        if d.set(&rec.key, obj, false).is_some() {
            log::warn!("RDB has duplicated key '{}' in DB {db}", String::from_utf8_lossy(&rec.key));
        }
        if let Some(t) = rec.expire_ms {
            d.set_expire(&rec.key, t);
        }
        self.persist.rdb_last_load_keys_loaded += 1;
        Ok(())
    }

    /// RESIZEDB: the file says how many keys the database will hold.
    pub fn reserve_db(&mut self, db: usize, keys: u64, expires: u64) {
        if let Some(d) = self.dbs.get_mut(db) {
            d.reserve(keys, expires);
        }
    }

    /// Resets the load counters before a new file.
    pub fn begin_rdb_load(&mut self) {
        self.persist.rdb_last_load_keys_loaded = 0;
        self.persist.rdb_last_load_keys_expired = 0;
    }

    /// Whether the replayer is inside MULTI (an AOF ending there has a torn transaction).
    pub fn replayer_in_multi(r: &Replayer) -> bool {
        r.client.multi.is_some()
    }
}
