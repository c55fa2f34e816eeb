//! `Ctx`: what a command handler works with — the engine, the calling client, the
//! arguments and the command's fixed time — plus the keyspace helpers every command
//! family shares (lookups with expiry and hit/miss accounting, modification signals,
//! keyspace notifications, argument parsing).

use crate::client::Client;
use crate::commands::CmdId;
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};
use ferrokv_keyspace::{Obj, SmallBytes, Value, ValueType};
use ferrokv_resp::{Argv, ReplyBuf};

pub struct Ctx<'a> {
    pub eng: &'a mut Engine,
    pub client: &'a mut Client,
    pub argv: &'a Argv,
    pub cmd: CmdId,
    /// Unix milliseconds, fixed for the whole command (and for a whole EXEC).
    pub now: i64,
    /// Replacements for the command in the write feed (e.g. relative TTLs made absolute,
    /// SPOP as the SREMs it performed).
    rewrite: Option<Vec<Vec<Vec<u8>>>>,
    /// Arguments to replace in the command as received when it is propagated (XADD's
    /// generated ID), so the others need not be copied into a [`Ctx::rewrite_as`].
    replaced_args: Vec<(usize, Vec<u8>)>,
    /// Set by a blocking command that found nothing to serve.
    /// Boxed: taking it after every command moved the whole request, a memcpy call.
    block: Option<Box<crate::blocking::BlockRequest>>,
    /// Set when a blocked command is re-run to serve it: the key that became ready.
    ready_key: Option<SmallBytes>,
    /// Propagate the command even if it changed nothing (Redis's forceCommandPropagation).
    forced: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(eng: &'a mut Engine, client: &'a mut Client, argv: &'a Argv, cmd: CmdId, now: i64) -> Self {
        Ctx {
            eng,
            client,
            argv,
            cmd,
            now,
            rewrite: None,
            replaced_args: Vec::new(),
            block: None,
            ready_key: None,
            forced: false,
        }
    }

    /// Marks this run as serving a blocked client from `key` (see [`crate::blocking`]).
    pub(crate) fn serving(mut self, key: Option<SmallBytes>) -> Self {
        self.ready_key = key;
        self
    }

    pub fn arg(&self, i: usize) -> &'a [u8] {
        self.argv.get(i)
    }

    pub fn argc(&self) -> usize {
        self.argv.len()
    }

    pub fn out(&mut self) -> &mut ReplyBuf {
        &mut self.client.out
    }

    pub fn db(&self) -> usize {
        self.client.db
    }

    /// True when writes reach something (the AOF, a backlog): a command whose propagated
    /// form must be built (XREADGROUP's XCLAIMs, XADD's generated ID) skips building it
    /// otherwise, since the feed would drop it.
    pub fn propagating(&self) -> bool {
        self.eng.feed.enabled
    }

    /// Propagate `args` instead of the command as received.
    pub fn rewrite_as(&mut self, args: Vec<Vec<u8>>) {
        self.rewrite = Some(vec![args]);
    }

    /// Propagate the command with argument `index` replaced by `value` (on top of earlier
    /// replacements; a [`Ctx::rewrite_as`] wins over them).
    pub fn replace_arg(&mut self, index: usize, value: Vec<u8>) {
        self.replaced_args.push((index, value));
    }

    pub(crate) fn take_replaced_args(&mut self) -> Vec<(usize, Vec<u8>)> {
        std::mem::take(&mut self.replaced_args)
    }

    /// Propagate these commands (applied atomically) instead of the command as received.
    pub fn rewrite_as_many(&mut self, cmds: Vec<Vec<Vec<u8>>>) {
        self.rewrite = Some(cmds);
    }

    /// Sends this write to the AOF and replicas even though it changed nothing (FLUSHDB of
    /// an empty database), without counting a change.
    pub fn force_propagation(&mut self) {
        self.forced = true;
    }

    pub(crate) fn propagation_forced(&self) -> bool {
        self.forced
    }

    pub(crate) fn take_rewrite(&mut self) -> Option<Vec<Vec<Vec<u8>>>> {
        self.rewrite.take()
    }

    /// True if this command may block (not inside MULTI/EXEC, where blocking commands
    /// answer at once as if they had timed out).
    pub fn can_block(&self) -> bool {
        !self.eng.in_exec
    }

    /// Blocks the client on `keys` until one holds a non-empty `wants` value or the
    /// deadline passes; the command must not have replied.
    pub fn block(&mut self, req: crate::blocking::BlockRequest) {
        self.block = Some(Box::new(req));
    }

    pub(crate) fn take_block(&mut self) -> Option<Box<crate::blocking::BlockRequest>> {
        self.block.take()
    }

    /// The key a blocked client is being served from, when this run serves one (None on a
    /// client's own call). A blocking command must then take data from this key only.
    pub fn ready_key(&self) -> Option<&[u8]> {
        self.ready_key.as_ref().map(SmallBytes::as_slice)
    }

    /// The argument positions in `keys` a blocking command may take data from, in order:
    /// all of them on the client's own call; when serving it, only the first position that
    /// names the ready key. Redis 7.0 serves a waiter from the key that became ready, so
    /// another of its keys that now holds the wrong type or also has data is not looked at.
    pub fn blocking_candidates(&self, keys: std::ops::Range<usize>) -> impl Iterator<Item = usize> + 'a {
        let argv = self.argv;
        let ready = self.ready_key.clone();
        let mut found = false;
        keys.filter(move |&i| match &ready {
            None => true,
            Some(k) if !found && argv.get(i) == k.as_slice() => {
                found = true;
                true
            }
            Some(_) => false,
        })
    }

    /// Tells clients blocked on `key` (in the current db) that it may now serve them.
    /// Every command that adds data to a list (or sorted set) key, or puts a value under a
    /// key name (RENAME, COPY, MOVE…), calls this, as Redis's `dbAdd` signals new keys.
    pub fn signal_ready(&mut self, key: &[u8]) {
        self.eng.blocking.signal(self.client.db, key);
    }

    /// [`Ctx::signal_ready`] for a key in another db.
    pub fn signal_ready_in(&mut self, db: usize, key: &[u8]) {
        self.eng.blocking.signal(db, key);
    }

    /// Records a change to `key` in the current db: counts towards save points and the
    /// write feed, and fails the transactions watching it.
    pub fn modified(&mut self, key: &[u8]) {
        self.modified_in(self.client.db, key, 1);
    }

    /// Like [`Ctx::modified`] for another db and a number of changes.
    pub fn modified_in(&mut self, db: usize, key: &[u8], changes: u64) {
        self.eng.dirty += changes;
        self.eng.touch_watched(Some(self.client), db, key);
        if self.eng.tracking.active() {
            let writer = self.client.id;
            self.eng.tracking_invalidate(Some(self.client), key, writer, true);
        }
    }

    /// Publishes a keyspace event for `key` in the current db.
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        self.notify_in(self.client.db, class, event, key);
    }

    pub fn notify_in(&mut self, db: usize, class: u32, event: &str, key: &[u8]) {
        if self.eng.hot.notify & class != 0 {
            self.eng.notify(Some(self.client), class, event, key, db);
        }
    }

    /// Publishes on a channel, delivering to this client too if it is subscribed.
    pub fn publish(&mut self, channel: &[u8], msg: &[u8]) -> usize {
        self.eng.publish(Some(self.client), channel, msg)
    }

    /// The type of a live key, without touching its LRU clock or the hit counters.
    pub fn key_type(&mut self, key: &[u8]) -> Option<ValueType> {
        let clock = self.eng.clock(self.now);
        self.eng.dbs[self.client.db].lookup(key, clock).map(|o| o.value.value_type())
    }
}

impl Engine {
    /// Looks up a key for reading: lazy expiry, LRU touch, keyspace hit/miss counters.
    pub fn lookup_read(&mut self, db: usize, key: &[u8], now_ms: i64) -> Option<&Obj> {
        let clock = self.clock(now_ms);
        let lfu = self.access_recorder();
        match self.dbs[db].lookup(key, clock) {
            Some(o) => {
                self.stats.keyspace_hits += 1;
                lfu.record(o, now_ms);
                Some(&*o)
            }
            None => {
                self.stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Looks up a key for writing: lazy expiry, LRU touch.
    pub fn lookup_write(&mut self, db: usize, key: &[u8], now_ms: i64) -> Option<&mut Obj> {
        let clock = self.clock(now_ms);
        let rec = self.access_recorder();
        let o = self.dbs[db].lookup_mut(key, clock)?;
        rec.record(o, now_ms);
        Some(o)
    }

    /// What an access does to a key's metadata under the current maxmemory policy.
    fn access_recorder(&mut self) -> AccessRecorder {
        if self.hot.policy.is_lfu() {
            AccessRecorder::Lfu {
                log_factor: self.hot.lfu_log_factor,
                decay: self.hot.lfu_decay_time,
                r: self.rng.f64(),
            }
        } else {
            AccessRecorder::Lru
        }
    }
}

/// Updates a key's LRU clock or LFU counter on access.
enum AccessRecorder {
    Lru,
    Lfu { log_factor: i64, decay: i64, r: f64 },
}

impl AccessRecorder {
    fn record(&self, o: &mut Obj, now_ms: i64) {
        match *self {
            AccessRecorder::Lru => o.touch(now_ms),
            AccessRecorder::Lfu { log_factor, decay, r } => o.touch_lfu(now_ms, log_factor, decay, r),
        }
    }
}

/// Parses a blocking command's timeout in seconds (fractions allowed; 0 = forever) into
/// an absolute deadline in unix ms.
///
/// Redis 7.0 computes the milliseconds in C `long double` and rounds them *up*: `0.0001`
/// waits 1 ms rather than forever, `-0.0001` rounds to 0 (forever) instead of being
/// negative, `0.253` waits 254 ms, and `1e309` is a valid number whose milliseconds do not
/// fit a `long long` — x86 makes that LLONG_MIN, reported as negative. See
/// [`crate::longdouble::timeout_ms`]. A deadline past the end of time saturates (waits
/// forever).
pub fn timeout_arg(a: &[u8], now_ms: i64) -> Result<Option<i64>, CmdError> {
    use crate::longdouble::{timeout_ms, TimeoutError};
    match timeout_ms(a) {
        Ok(0) => Ok(None),
        Ok(ms) => Ok(Some(now_ms.saturating_add(ms))),
        Err(TimeoutError::NotAFloat) => Err(CmdError::err("ERR timeout is not a float or out of range")),
        Err(TimeoutError::Negative) => Err(CmdError::err("ERR timeout is negative")),
    }
}

/// Parses an integer argument (`ERR value is not an integer or out of range`).
/// The count of HRANDFIELD, SRANDMEMBER and ZRANDMEMBER: any integer but i64::MIN, whose
/// absolute value (the number of draws) does not exist; Redis's range error for it.
pub fn random_count_arg(a: &[u8]) -> Result<i64, CmdError> {
    let n = int_arg(a)?;
    if n == i64::MIN {
        return Err(CmdError::msg(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    Ok(n)
}

pub fn int_arg(a: &[u8]) -> Result<i64, CmdError> {
    ferrokv_resp::parse_i64(a).ok_or(CmdError::NotInteger)
}

/// Parses a float argument (`ERR value is not a valid float`).
pub fn float_arg(a: &[u8]) -> Result<f64, CmdError> {
    ferrokv_resp::num::parse_f64(a).ok_or(CmdError::NotFloat)
}

/// True if `a` equals the ASCII `word`, ignoring case.
pub fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// The bytes of a string value, or WRONGTYPE.
pub fn string_of(v: &Value) -> Result<std::borrow::Cow<'_, [u8]>, CmdError> {
    v.as_string().ok_or(CmdError::WrongType)
}

/// Replies with the standard HELP layout: a title line naming the command as the client
/// typed it, the given lines, then the HELP entry.
pub fn reply_help(c: &mut Ctx, lines: &[&str]) -> CmdResult {
    let name = String::from_utf8_lossy(c.arg(0)).to_ascii_uppercase();
    let out = c.out();
    out.array(lines.len() + 3);
    out.simple(&format!("{name} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
    Ok(())
}

/// Redis's error for a subcommand given the wrong arguments.
pub fn subcommand_syntax_error(c: &Ctx) -> CmdError {
    CmdError::msg(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        crate::engine::sanitize(c.arg(1), 128),
        String::from_utf8_lossy(c.arg(0)).to_ascii_uppercase()
    ))
}
