//! Loading the dataset at startup, while clients already connected get `-LOADING`.
//!
//! Which source wins follows Redis: with `appendonly yes` the append-only file (its
//! manifest, base and incremental files), otherwise `dbfilename`. One deliberate
//! difference: when `appendonly yes` finds no AOF at all but an RDB file exists, ferrokv
//! loads the RDB instead of starting empty — switching AOF on in the config file and
//! restarting must not throw a dataset away (the new AOF's base then holds it).

use crate::Shared;
use ferrokv_engine::persistence::load::ReplayError;
use ferrokv_engine::persistence::rdb::LoadLimits;
use ferrokv_persist::aof::manifest::manifest_name;
use ferrokv_persist::aof::{next_record, Manifest, Record};
use ferrokv_persist::rdb::{Item, KeyRecord, RdbReader};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Commands replayed per hold of the engine lock: small enough that `-LOADING` replies
/// are prompt, large enough that locking costs nothing.
const REPLAY_BATCH: usize = 1024;
const READ_CHUNK: usize = 4 << 20;

/// What loading found, for opening the AOF afterwards.
pub struct Loaded {
    /// The manifest read (empty when there was no AOF).
    pub manifest: Manifest,
    /// True if no AOF existed and it must be created from the loaded dataset.
    pub aof_missing: bool,
}

#[derive(Debug)]
pub enum FileOutcome {
    Ok,
    /// The last command was cut short; the file was truncated at this offset.
    Truncated(u64),
}

fn now_ms() -> i64 {
    crate::conn::now_ms()
}

/// Reads the AOF directory's manifest, if any.
pub fn read_manifest(dir: &Path, prefix: &str) -> Result<Option<Manifest>, String> {
    let path = dir.join(manifest_name(prefix));
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Fatal error: can't open the AOF manifest {} for reading: {e}", path.display())),
    };
    Manifest::parse(&text).map(Some).map_err(|e| {
        let mut msg = String::from("*** FATAL AOF MANIFEST FILE ERROR ***\n");
        if let Some((n, line)) = &e.line {
            msg.push_str(&format!("Reading the manifest file {}, at line {n}\n>>> '{line}'\n", path.display()));
        }
        msg.push_str(e.message);
        msg
    })
}

/// Loads the append-only file described by `manifest`.
pub fn load_aof(shared: &Shared, dir: &Path, manifest: &Manifest, truncated_ok: bool) -> Result<(), String> {
    let files: Vec<PathBuf> = manifest.load_order().map(|f| dir.join(&f.name)).collect();
    let mut total = 0u64;
    for (f, path) in manifest.load_order().zip(&files) {
        match std::fs::metadata(path) {
            Ok(m) => total += m.len(),
            Err(e) => return Err(format!("The AOF file {} doesn't exist: {e}", f.name)),
        }
    }
    if total == 0 {
        return Ok(());
    }
    shared.engine.lock().begin_loading(total, now_ms());
    let mut loaded = 0u64;
    let n = files.len();
    for (i, (info, path)) in manifest.load_order().zip(&files).enumerate() {
        let last = i + 1 == n;
        let started = std::time::Instant::now();
        match load_aof_file(shared, path, &info.name, truncated_ok, &mut loaded)? {
            FileOutcome::Ok => {}
            FileOutcome::Truncated(_) if !last => {
                return Err("Fatal error: the truncated file is not the last file".into());
            }
            FileOutcome::Truncated(_) => {}
        }
        let kind = if info.kind == ferrokv_persist::aof::FileKind::Base { "base" } else { "incr" };
        log::info!("DB loaded from {kind} file {}: {:.3} seconds", info.name, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Replays one AOF file (commands, optionally after an RDB preamble).
fn load_aof_file(
    shared: &Shared,
    path: &Path,
    name: &str,
    truncated_ok: bool,
    loaded: &mut u64,
) -> Result<FileOutcome, String> {
    let mut file =
        File::open(path).map_err(|e| format!("Fatal error: can't open the append log file {name} for reading: {e}"))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0usize;
    let mut consumed: u64 = 0;
    let mut eof = false;
    let mut need_more = true;
    let mut first_read = true;
    let mut replayer = shared.engine.lock().replayer(now_ms());
    // Offsets for truncation: after the last whole command, and before an open MULTI.
    let mut valid_up_to: u64 = 0;
    let mut before_multi: u64 = 0;
    loop {
        if need_more && !eof {
            buf.drain(..start);
            start = 0;
            let old = buf.len();
            buf.resize(old + READ_CHUNK, 0);
            let n = read_full(&mut file, &mut buf[old..])
                .map_err(|e| format!("Unrecoverable error reading the append only file {name}: {e}"))?;
            buf.truncate(old + n);
            eof = n < READ_CHUNK;
            need_more = false;
            if std::mem::take(&mut first_read) && buf.starts_with(b"REDIS") {
                // An RDB base (or an old-style RDB preamble): load it, then go on with
                // whatever commands follow it.
                let reader = RdbReader::new(std::io::Cursor::new(std::mem::take(&mut buf)).chain(file))
                    .map_err(|e| format!("Error reading the RDB base file {name}, AOF loading aborted: {e}"))?;
                let (rest, ahead) = load_rdb_stream(shared, reader, name, true)
                    .map_err(|e| format!("Error reading the RDB base file {name}, AOF loading aborted: {e}"))?;
                let (cursor, f) = rest.into_inner();
                let pos = cursor.position() as usize;
                let mut left = cursor.into_inner();
                left.drain(..pos.min(left.len()));
                let mut tail = ahead;
                tail.extend_from_slice(&left);
                file = f;
                let preamble_len = file_position(&mut file)? - tail.len() as u64;
                consumed = preamble_len;
                valid_up_to = consumed;
                before_multi = consumed;
                buf = tail;
                start = 0;
                need_more = true;
                eof = false;
                continue;
            }
        }
        let mut e = shared.engine.lock();
        let now = now_ms();
        let mut ran = 0;
        let mut stalled = false;
        while ran < REPLAY_BATCH {
            match next_record(&buf[start..]) {
                Record::Annotation { len } => {
                    start += len;
                    consumed += len as u64;
                }
                Record::Command { args, len } => {
                    if args[0].eq_ignore_ascii_case(b"multi") {
                        before_multi = valid_up_to;
                    }
                    if let Err(ReplayError::UnknownCommand(c)) = e.replay(&mut replayer, &args, now) {
                        return Err(format!("Unknown command '{c}' reading the append only file {name}"));
                    }
                    start += len;
                    consumed += len as u64;
                    valid_up_to = consumed;
                    ran += 1;
                }
                Record::Incomplete => {
                    stalled = true;
                    break;
                }
                Record::Bad { what } => {
                    return Err(format!(
                        "Bad file format reading the append only file {name} at offset {consumed} ({what}): make a backup of your AOF file, then use ferrokv check-aof --fix <filename.manifest>"
                    ));
                }
            }
        }
        e.loading_progress(*loaded + consumed);
        let in_multi = ferrokv_engine::Engine::replayer_in_multi(&replayer);
        drop(e);
        if !stalled {
            continue;
        }
        if !eof {
            need_more = true;
            continue;
        }
        // End of file.
        let tail_torn = start < buf.len();
        *loaded += consumed;
        if !tail_torn && !in_multi {
            return Ok(FileOutcome::Ok);
        }
        if in_multi && !tail_torn {
            log::warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
        }
        // An open MULTI's commands were only queued, never run: cutting them loses nothing
        // that was applied.
        let cut = if in_multi { before_multi } else { valid_up_to };
        if !truncated_ok {
            return Err(format!("Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ferrokv check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."));
        }
        log::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
        log::warn!("!!! Truncating the AOF {name} at offset {cut} !!!");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| format!("Error truncating the AOF file {name}: {e}"))?;
        f.set_len(cut).map_err(|e| format!("Error truncating the AOF file {name}: {e}"))?;
        log::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
        return Ok(FileOutcome::Truncated(cut));
    }
}

fn file_position(f: &mut File) -> Result<u64, String> {
    use std::io::Seek;
    f.stream_position().map_err(|e| e.to_string())
}

/// Records read per engine-lock hold while loading an RDB file: parsing happens outside
/// the lock, insertion inside.
const LOAD_BATCH: usize = 1024;

/// An RDB's replication aux fields, restored once.
#[derive(Default)]
struct ReplInfo {
    id: Option<String>,
    offset: Option<u64>,
    stream_db: Option<i64>,
    restored: bool,
}

impl ReplInfo {
    fn restore(&mut self, shared: &Shared) {
        if std::mem::replace(&mut self.restored, true) {
            return;
        }
        // Old versions could save a repl-stream-db of -1: such info is not used (as Redis).
        if let (Some(id), Some(offset), Some(db)) = (&self.id, self.offset, self.stream_db.filter(|&d| d >= 0)) {
            shared.engine.lock().restore_replication_info(id, offset, db as usize, now_ms());
        }
    }
}

/// Loads the keys of an RDB stream, returning the reader's input (and bytes it read
/// ahead) for whatever follows the file (an AOF tail).
pub fn load_rdb_stream<R: Read>(
    shared: &Shared,
    mut reader: RdbReader<R>,
    name: &str,
    keep_expired: bool,
) -> Result<(R, Vec<u8>), String> {
    let delay = {
        let mut e = shared.engine.lock();
        e.begin_rdb_load();
        // A debugging aid Redis has too: slow loading down to observe it.
        e.cfg.int(ferrokv_config::pid("key-load-delay"))
    };
    let mut db = 0usize;
    // The replication info comes in aux fields before the first database; it is restored
    // (for an RDB proper, not an AOF's preamble) before any key loads, so that keys found
    // expired are fed to the new backlog as DELs for the replicas that will continue.
    let mut repl = ReplInfo::default();
    let mut batch: Vec<(usize, KeyRecord)> = Vec::with_capacity(LOAD_BATCH);
    let flush = |batch: &mut Vec<(usize, KeyRecord)>, offset: u64| -> Result<(), String> {
        let mut e = shared.engine.lock();
        let now = now_ms();
        let limits = LoadLimits::from_config(&e.cfg);
        for (db, rec) in batch.drain(..) {
            e.load_rdb_key(db, rec, &limits, now, keep_expired)?;
        }
        e.flush_feed();
        e.loading_progress(offset);
        Ok(())
    };
    loop {
        let item = reader.next();
        if !keep_expired && !matches!(item, Ok(Some(Item::Aux { .. }))) {
            repl.restore(shared);
        }
        match item {
            Ok(Some(Item::SelectDb(n))) => db = usize::try_from(n).unwrap_or(usize::MAX),
            Ok(Some(Item::ResizeDb { keys, expires })) => {
                flush(&mut batch, reader.offset())?;
                shared.engine.lock().reserve_db(db, keys, expires);
            }
            Ok(Some(Item::Key(rec))) => {
                if delay > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(delay as u64));
                }
                batch.push((db, rec));
                if batch.len() == LOAD_BATCH {
                    flush(&mut batch, reader.offset())?;
                }
            }
            Ok(Some(Item::Function(code))) => shared.engine.lock().load_rdb_function(&code)?,
            Ok(Some(Item::Aux { key, value })) => match &key[..] {
                b"redis-ver" => log::info!("Loading RDB produced by version {}", String::from_utf8_lossy(&value)),
                b"repl-id" => repl.id = Some(String::from_utf8_lossy(&value).into_owned()),
                b"repl-offset" => repl.offset = ferrokv_resp::parse_i64(&value).map(|o| o.max(0) as u64),
                b"repl-stream-db" => repl.stream_db = ferrokv_resp::parse_i64(&value),
                _ => {}
            },
            Ok(None) => break,
            Err(e) => return Err(format!("{name}: {e}")),
        }
    }
    flush(&mut batch, reader.offset())?;
    let skipped = reader.skipped_empty_keys();
    if skipped > 0 {
        log::info!("Done loading RDB, keys loaded: {}, keys expired: 0, empty keys skipped: {skipped}.", 0);
    }
    Ok(reader.into_inner())
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
