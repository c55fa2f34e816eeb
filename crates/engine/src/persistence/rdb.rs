//! The bridge between keyspace values and the RDB format: values handed to the writer
//! without copying, values read back built in the encodings the configuration calls for.

use super::format::SnapshotFormat;
use super::{Purpose, SnapshotSink};
use crate::engine::Engine;
use ferrokv_config::{pid, Pid};
use ferrokv_keyspace::types::hash::{Hash, Limits};
use ferrokv_keyspace::types::list::List;
use ferrokv_keyspace::types::set::Set;
use ferrokv_keyspace::types::zset::{Limits as ZLimits, ZSet};
use ferrokv_keyspace::{Obj, SmallBytes, Value};
use ferrokv_persist::rdb::{Elem, Elems, Pairs, RdbError, RdbValue, RdbWriter, Scored, ValueRef, WriteOptions};
use std::io;

struct SetElems<'a>(&'a Set);

impl Elems for SetElems<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>)) {
        self.0.for_each(|m| f(Elem::Bytes(m)))
    }
}

struct ZSetEntries<'a>(&'a ZSet);

impl Scored for ZSetEntries<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>, f64)) {
        for (m, s) in self.0.iter() {
            f(Elem::Bytes(m), s)
        }
    }
}

struct HashPairs<'a>(&'a Hash);

impl Pairs for HashPairs<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>, Elem<'_>)) {
        self.0.for_each(|k, v| f(Elem::Bytes(k), Elem::Bytes(v)))
    }
}

/// Calls `f` with the writer's view of `value`.
pub fn with_value_ref<R>(value: &Value, f: impl FnOnce(ValueRef<'_>) -> R) -> R {
    match value {
        Value::Str(s) => f(ValueRef::Str(s)),
        Value::Int(n) => f(ValueRef::Int(*n)),
        Value::List(l) => f(ValueRef::List(&l.items)),
        Value::Set(s) => f(ValueRef::Set(&SetElems(s))),
        Value::Hash(h) => f(ValueRef::Hash(&HashPairs(h))),
        Value::ZSet(z) => f(ValueRef::ZSet(&ZSetEntries(z))),
        Value::Stream(s) => f(ValueRef::Stream(s)),
    }
}

/// Encoding thresholds from the configuration (so a value written here loads into
/// Redis with the encoding Redis itself would pick under the same settings).
pub fn write_options(e: &Engine) -> WriteOptions {
    // Found at compile time: `pid` searches the table, and every DUMP and MIGRATE reads these.
    const COMPRESS: Pid = pid("rdbcompression");
    const LIST_SIZE: Pid = pid("list-max-listpack-size");
    const INTSET: Pid = pid("set-max-intset-entries");
    const HASH_ENTRIES: Pid = pid("hash-max-listpack-entries");
    const HASH_VALUE: Pid = pid("hash-max-listpack-value");
    const ZSET_ENTRIES: Pid = pid("zset-max-listpack-entries");
    const ZSET_VALUE: Pid = pid("zset-max-listpack-value");
    let cfg = &e.cfg;
    let n = |p: Pid| cfg.int(p).max(0) as usize;
    WriteOptions {
        compress: cfg.bool(COMPRESS),
        list_max_listpack_size: cfg.int(LIST_SIZE),
        set_max_intset_entries: n(INTSET),
        hash_max_listpack_entries: n(HASH_ENTRIES),
        hash_max_listpack_value: n(HASH_VALUE),
        zset_max_listpack_entries: n(ZSET_ENTRIES),
        zset_max_listpack_value: n(ZSET_VALUE),
        list_packed_threshold: e.persist.list_packed_threshold,
    }
}

/// The encoding thresholds a loaded value is built under (copied from the configuration,
/// so loading can run away from the engine, e.g. a replica building a new dataset).
#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    pub set_max_intset: usize,
    pub hash: Limits,
    pub zset: ZLimits,
    /// `sanitize-dump-payload yes`: loading sanitizes values deeply too (`clients` and
    /// `no` do not, as in Redis).
    pub deep_sanitize: bool,
    /// DEBUG SET-SKIP-CHECKSUM-VALIDATION 1: a file's CRC-64 is not checked.
    pub skip_checksum: bool,
}

impl Default for LoadLimits {
    /// Redis 7.0's defaults.
    fn default() -> Self {
        LoadLimits {
            set_max_intset: 512,
            hash: Limits { max_entries: 128, max_value: 64 },
            zset: ZLimits { max_entries: 128, max_value: 64 },
            deep_sanitize: false,
            skip_checksum: false,
        }
    }
}

impl LoadLimits {
    pub fn from_config(cfg: &ferrokv_config::Config) -> LoadLimits {
        let n = |name: &str| cfg.int(pid(name)).max(0) as usize;
        LoadLimits {
            set_max_intset: n("set-max-intset-entries"),
            hash: Limits { max_entries: n("hash-max-listpack-entries"), max_value: n("hash-max-listpack-value") },
            zset: ZLimits { max_entries: n("zset-max-listpack-entries"), max_value: n("zset-max-listpack-value") },
            deep_sanitize: cfg.int(pid("sanitize-dump-payload")) == 1,
            skip_checksum: false,
        }
    }
}

impl Engine {
    /// The limits and checks a file loaded now is read with (the configuration, and
    /// DEBUG SET-SKIP-CHECKSUM-VALIDATION).
    pub fn load_limits(&self) -> LoadLimits {
        LoadLimits { skip_checksum: self.persist.skip_checksum_validation, ..LoadLimits::from_config(&self.cfg) }
    }
}

/// The in-memory value for a value read from a file or a RESTORE payload.
pub fn value_from_rdb(e: &Engine, v: RdbValue) -> Result<Value, String> {
    // The limits kept with the hot configuration: building them here searched the
    // configuration table six times per RESTORE (a third of a small key's RESTORE).
    value_from_rdb_with(&e.hot.encoding_limits, v)
}

pub fn value_from_rdb_with(limits: &LoadLimits, v: RdbValue) -> Result<Value, String> {
    Ok(match v {
        RdbValue::String(s) => Value::string(&s),
        RdbValue::List(items) => Value::List(Box::new(List { items: items.into() })),
        RdbValue::Set(members) => {
            let mut set = members.first().map(|m| Set::for_member(m)).unwrap_or_default();
            for m in &members {
                set.insert(m, limits.set_max_intset);
            }
            Value::Set(Box::new(set))
        }
        RdbValue::Hash(pairs) => {
            let mut h = Hash::new();
            for (k, v) in &pairs {
                h.set(k, v, limits.hash);
            }
            Value::Hash(Box::new(h))
        }
        RdbValue::ZSet(mut entries) => {
            // A member twice in one value is corruption (Redis refuses such a file).
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err("Duplicate zset fields detected".into());
            }
            let entries = entries.into_iter().map(|(m, s)| (m.to_vec(), s)).collect();
            Value::ZSet(Box::new(ZSet::from_entries(entries, limits.zset)))
        }
        RdbValue::Stream(s) => Value::Stream(s),
    })
}

/// The checks Redis makes on a value it loads from a file (see
/// [`ferrokv_persist::rdb::sanitize`]); the error is Redis's reason.
pub fn check_loaded(limits: &LoadLimits, rec: &ferrokv_persist::rdb::KeyRecord) -> Result<(), String> {
    let checks = ferrokv_persist::rdb::RestoreChecks {
        checksum: true,
        deep: limits.deep_sanitize,
        hash_max_listpack_entries: limits.hash.max_entries,
    };
    ferrokv_persist::rdb::sanitize(rec.type_byte, &rec.value, &checks).map_err(|reason| {
        format!("Internal error in RDB reading key '{}' -> {reason}", String::from_utf8_lossy(&rec.key))
    })
}

/// Adds a loaded key to a database under construction (a replica's new dataset).
pub fn load_into(
    db: &mut ferrokv_keyspace::Db,
    limits: &LoadLimits,
    rec: ferrokv_persist::rdb::KeyRecord,
    now_ms: i64,
) -> Result<(), String> {
    check_loaded(limits, &rec)?;
    let value = value_from_rdb_with(limits, rec.value)?;
    db.set(&rec.key, Obj::new(value, now_ms), false);
    if let Some(t) = rec.expire_ms {
        db.set_expire(&rec.key, t);
    }
    Ok(())
}

fn io_err(e: RdbError) -> io::Error {
    io::Error::other(e.to_string())
}

/// A snapshot as an RDB file (or AOF base with an RDB preamble).
pub struct RdbFormat {
    w: RdbWriter<Box<dyn SnapshotSink>>,
    db: Option<usize>,
    sized: Vec<bool>,
    sizes: Vec<(u64, u64)>,
    checksum: bool,
}

impl RdbFormat {
    /// Starts the file: header and auxiliary fields.
    pub fn start(e: &Engine, sink: Box<dyn SnapshotSink>, purpose: Purpose, now_ms: i64) -> io::Result<RdbFormat> {
        let aof_base = matches!(purpose, Purpose::AofRewrite | Purpose::AofBase);
        let mut w = RdbWriter::with_options(sink, write_options(e)).map_err(io_err)?;
        let used = e.host.used_memory().to_string();
        let ctime = (now_ms / 1000).to_string();
        let mut aux: Vec<(&str, String)> = vec![
            ("redis-ver", ferrokv_config::REDIS_VERSION.to_string()),
            ("redis-bits", "64".into()),
            ("ctime", ctime),
            ("used-mem", used),
        ];
        // Where this dataset stands in the replication history, so a restart can continue
        // with a partial resync (Redis's rdbSaveInfo).
        if e.repl.backlog.is_some() || !e.is_master_role() {
            aux.push(("repl-stream-db", e.replication_stream_db().to_string()));
            aux.push(("repl-id", e.repl.replid.clone()));
            aux.push(("repl-offset", e.repl.offset.to_string()));
        }
        aux.push(("aof-base", if aof_base { "1" } else { "0" }.into()));
        // For the replicas' empty-master guard; only in full syncs (Redis replicas skip
        // unknown fields, as the format asks).
        if purpose == Purpose::Replication && e.is_master_role() && e.repl.started_empty {
            aux.push(("ferrokv-started-empty", "1".into()));
        }
        for (k, v) in &aux {
            w.aux(k.as_bytes(), v.as_bytes()).map_err(io_err)?;
        }
        // Functions come before the databases, as Redis writes them.
        for lib in e.scripts.functions().libraries() {
            w.function(&lib.code).map_err(io_err)?;
        }
        let sizes = e.dbs.iter().map(|d| (d.len() as u64, d.expires_len() as u64)).collect();
        Ok(RdbFormat { w, db: None, sized: vec![false; e.dbs.len()], sizes, checksum: e.cfg.bool(pid("rdbchecksum")) })
    }
}

impl SnapshotFormat for RdbFormat {
    fn key(&mut self, db: usize, key: &SmallBytes, obj: &Obj, expire_ms: Option<i64>) -> io::Result<()> {
        if self.db != Some(db) {
            self.w.select_db(db as u64).map_err(io_err)?;
            self.db = Some(db);
            if let Some(sized) = self.sized.get_mut(db).filter(|s| !**s) {
                *sized = true;
                let (keys, expires) = self.sizes.get(db).copied().unwrap_or_default();
                self.w.resize_db(keys, expires).map_err(io_err)?;
            }
        }
        with_value_ref(&obj.value, |v| self.w.key(key, expire_ms, v)).map_err(io_err)
    }

    fn finish(self: Box<Self>) -> io::Result<Box<dyn SnapshotSink>> {
        let mut sink = self.w.finish(self.checksum).map_err(io_err)?;
        io::Write::flush(&mut sink)?;
        Ok(sink)
    }

    fn abort(self: Box<Self>) {
        self.w.into_inner_abandoned().abort();
    }

    fn backlog(&self) -> usize {
        self.w.get_ref().backlog()
    }
}

/// A snapshot kept in memory (DEBUG RELOAD, tests).
#[derive(Clone, Default)]
pub struct MemSink(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl io::Write for MemSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for MemSink {
    fn commit(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
    fn abort(self: Box<Self>) {}
}

impl Engine {
    /// The whole dataset as an RDB file in memory.
    pub fn rdb_bytes(&self, now_ms: i64) -> io::Result<Vec<u8>> {
        let sink = MemSink::default();
        let mut f: Box<dyn SnapshotFormat> =
            Box::new(RdbFormat::start(self, Box::new(sink.clone()), Purpose::Save, now_ms)?);
        for db in &self.dbs {
            for (k, o) in db.iter(i64::MIN) {
                f.key(db.id, k, o, db.expire_at(k))?;
            }
        }
        f.finish()?.commit()?;
        let bytes = std::mem::take(&mut *sink.0.lock().map_err(|_| io::Error::other("poisoned"))?);
        Ok(bytes)
    }

    /// A library from an RDB file or an AOF preamble: replaces one of the same name (the
    /// file is the truth), without the load time limit.
    pub fn load_rdb_function(&mut self, code: &[u8]) -> Result<(), String> {
        self.scripts
            .functions_mut()
            .load(code, true, None)
            .map(drop)
            .map_err(|e| format!("Failed loading library: {e}"))
    }

    /// DEBUG RELOAD: save (unless NOSAVE), empty the dataset and load it back through the
    /// RDB format.
    pub fn debug_reload(&mut self, save: bool, now_ms: i64) -> Result<(), String> {
        if save && self.save_sync(now_ms).is_err() {
            return Err("ERR Error trying to save the DB".into());
        }
        let bytes = self.rdb_bytes(now_ms).map_err(|e| format!("ERR {e}"))?;
        if self.tracking.active() {
            self.tracking_flush(None);
        }
        for db in self.dbs.iter_mut() {
            db.flush();
        }
        let mut reader = ferrokv_persist::rdb::RdbReader::new(&bytes[..])
            .map_err(|_| "ERR Error trying to load the RDB dump, check server logs.".to_string())?;
        let mut db = 0usize;
        let limits = LoadLimits::from_config(&self.cfg);
        self.begin_rdb_load();
        loop {
            match reader.next() {
                Ok(Some(ferrokv_persist::rdb::Item::SelectDb(n))) => db = n as usize,
                Ok(Some(ferrokv_persist::rdb::Item::ResizeDb { keys, expires })) => self.reserve_db(db, keys, expires),
                Ok(Some(ferrokv_persist::rdb::Item::Key(rec))) => {
                    self.load_rdb_key(db, rec, &limits, now_ms, true).map_err(|e| format!("ERR {e}"))?;
                }
                Ok(Some(ferrokv_persist::rdb::Item::Function(code))) => {
                    self.load_rdb_function(&code).map_err(|e| format!("ERR {e}"))?;
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    log::warn!("DEBUG RELOAD: {e}");
                    return Err("ERR Error trying to load the RDB dump, check server logs.".into());
                }
            }
        }
        log::info!("DB reloaded by DEBUG RELOAD");
        Ok(())
    }
}
