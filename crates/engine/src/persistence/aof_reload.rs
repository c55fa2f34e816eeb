//! DEBUG LOADAOF: the append-only file, written out, becomes the dataset again — the
//! files come from the host (which flushes its writer first), the replay is the one
//! startup uses (an RDB base, then commands run by the AOF pseudo-client): nothing is
//! propagated and no change is counted.

use crate::engine::Engine;
use ferrokv_persist::aof::{next_record, Record};
use ferrokv_persist::rdb::{Item, RdbReader};

impl Engine {
    /// Empties the dataset and loads the AOF files back, as Redis's DEBUG LOADAOF.
    pub fn debug_load_aof(&mut self, now_ms: i64) -> Result<(), String> {
        // What the feed holds now must be in the files read back.
        self.flush_feed();
        let files = self.host.read_aof_files(&self.cfg)?;
        self.touch_all_watched();
        if self.tracking.active() {
            self.tracking_flush(None);
        }
        for db in self.dbs.iter_mut() {
            db.flush();
        }
        // The files hold the libraries too (a preamble's or FUNCTION LOADs).
        self.scripts.functions_mut().flush();
        self.begin_rdb_load();
        // Replayed transactions run their commands through `call`: nothing of the reload
        // may reach the AOF or the replicas.
        let feeding = std::mem::replace(&mut self.feed.enabled, false);
        let result = self.replay_aof_files(&files, now_ms);
        self.feed.enabled = feeding;
        result?;
        self.dirty = 0;
        log::warn!("Append Only File loaded by DEBUG LOADAOF");
        Ok(())
    }

    fn replay_aof_files(&mut self, files: &[(String, Vec<u8>)], now_ms: i64) -> Result<(), String> {
        let limits = super::rdb::LoadLimits::from_config(&self.cfg);
        for (name, bytes) in files {
            let mut commands: &[u8] = bytes;
            if bytes.starts_with(b"REDIS") {
                let mut reader = RdbReader::new(&bytes[..]).map_err(|e| format!("{name}: {e}"))?;
                let mut db = 0usize;
                while let Some(item) = reader.next().map_err(|e| format!("{name}: {e}"))? {
                    match item {
                        Item::SelectDb(n) => db = n as usize,
                        Item::ResizeDb { keys, expires } => self.reserve_db(db, keys, expires),
                        // Keys expired in a base are loaded, as Redis loads an AOF preamble.
                        Item::Key(rec) => self.load_rdb_key(db, rec, &limits, now_ms, true)?,
                        Item::Function(code) => self.load_rdb_function(&code).map_err(|e| format!("{name}: {e}"))?,
                        _ => {}
                    }
                }
                commands = &bytes[(reader.offset() as usize).min(bytes.len())..];
            }
            let mut replayer = self.replayer(now_ms);
            loop {
                match next_record(commands) {
                    Record::Command { args, len } => {
                        self.replay(&mut replayer, &args, now_ms)
                            .map_err(|e| format!("{name}: cannot replay a command: {e:?}"))?;
                        commands = &commands[len..];
                    }
                    Record::Annotation { len } => commands = &commands[len..],
                    Record::Incomplete if commands.is_empty() => break,
                    Record::Incomplete => return Err(format!("{name}: the file ends inside a command")),
                    Record::Bad { what } => return Err(format!("{name}: bad file format ({what})")),
                }
            }
            // A transaction the file leaves open was only queued: dropping it loses nothing.
        }
        Ok(())
    }
}
