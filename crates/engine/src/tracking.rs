//! Client-side caching (Redis 7.0's `tracking.c`) as state, without I/O: which clients may
//! hold which keys, the broadcast prefixes, and what must be sent when a key changes.
//!
//! Two modes, as in Redis:
//! - *Default*: the keys a tracking client reads with read-only commands are remembered in
//!   one table, key name → client ids (one table for all databases: Redis's is keyed by
//!   name alone, so a write to `k` in db 1 invalidates a reader of `k` in db 0). A change
//!   to the key sends each of them one invalidation and forgets the entry: a client must
//!   read the key again to hear about it again.
//! - *BCAST*: clients subscribe to key prefixes; every change to a matching key is noted
//!   under each prefix and the notes are flushed as one message per prefix once the
//!   current batch of work is done (Redis flushes them before its event loop sleeps).
//!
//! Delivery (who receives what, the RESP3 push or the RESP2 `__redis__:invalidate`
//! message through a redirect) lives in `tracking_delivery.rs`, which needs the clients.

use crate::client::ClientId;
use ahash::AHashMap as HashMap;
use ferrokv_keyspace::SmallBytes;
use smallvec::SmallVec;
use std::collections::{BTreeMap, BTreeSet};

/// A client's tracking settings (Redis's `CLIENT_TRACKING*` flags, the redirect and the
/// BCAST prefixes).
#[derive(Clone, Debug, Default)]
pub struct ClientTracking {
    pub on: bool,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    /// CLIENT CACHING yes|no was given for the next command.
    pub caching: bool,
    pub noloop: bool,
    /// The redirect client went away (CLIENT LIST flag `R`).
    pub broken_redirect: bool,
    /// Client that receives this one's invalidations (0: none).
    pub redirect: ClientId,
    pub prefixes: BTreeSet<Vec<u8>>,
}

impl ClientTracking {
    /// Whether the keys of the command that just ran are to be remembered (default mode,
    /// OPTIN with CACHING yes, OPTOUT without CACHING no).
    pub fn remembers_reads(&self) -> bool {
        self.on && !self.bcast && !((self.optin && !self.caching) || (self.optout && self.caching))
    }
}

/// The options of `CLIENT TRACKING on …`, parsed.
#[derive(Clone, Debug, Default)]
pub struct TrackingOptions {
    pub redirect: ClientId,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Vec<u8>>,
}

/// Keys changed under one prefix since the last flush, with the client that changed each
/// last (so a NOLOOP subscriber is not told about its own writes).
#[derive(Debug, Default)]
struct Bcast {
    clients: BTreeSet<ClientId>,
    keys: BTreeMap<Vec<u8>, ClientId>,
}

/// One message a BCAST flush sends: to `client`, the `keys` changed under one prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct BcastMessage {
    pub client: ClientId,
    pub keys: Vec<Vec<u8>>,
}

/// The tracking table: key → readers, with O(1) removal and random picks (for
/// `tracking-table-max-keys`, which evicts random keys as Redis's random walk does).
#[derive(Default)]
struct KeyTable {
    entries: Vec<(SmallBytes, SmallVec<[ClientId; 2]>)>,
    index: HashMap<SmallBytes, usize>,
}

impl KeyTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds `id` as a reader of `key`; true if it was not one already.
    fn insert(&mut self, key: &[u8], id: ClientId) -> bool {
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => {
                let key = SmallBytes::from(key);
                self.entries.push((key.clone(), SmallVec::new()));
                self.index.insert(key, self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        let readers = &mut self.entries[at].1;
        if readers.contains(&id) {
            return false;
        }
        readers.push(id);
        true
    }

    fn remove(&mut self, key: &[u8]) -> Option<SmallVec<[ClientId; 2]>> {
        let at = self.index.remove(key)?;
        let (_, readers) = self.entries.swap_remove(at);
        if let Some((moved, _)) = self.entries.get(at) {
            if let Some(slot) = self.index.get_mut(moved.as_slice()) {
                *slot = at;
            }
        }
        Some(readers)
    }

    fn key_at(&self, at: usize) -> Option<&[u8]> {
        self.entries.get(at).map(|(k, _)| k.as_slice())
    }

    fn clear(&mut self) {
        self.entries = Vec::new();
        self.index = HashMap::default();
    }
}

/// Engine-wide tracking state.
#[derive(Default)]
pub struct Tracking {
    /// Anything to do at all: a client tracks, or the table or the prefixes hold entries.
    /// The one branch the hot paths pay when nobody tracks.
    active: bool,
    /// Clients with tracking on (INFO `tracking_clients`).
    clients: usize,
    table: KeyTable,
    /// Sum of the readers of every key (INFO `tracking_total_items`).
    items: usize,
    prefixes: BTreeMap<Vec<u8>, Bcast>,
    /// Prefix notes not yet flushed.
    bcast_dirty: bool,
    /// The top-level client whose command runs (Redis's `current_client` while
    /// `CLIENT_EXECUTING_COMMAND`); 0 when none. Its own invalidations wait for its reply.
    pub(crate) current: ClientId,
    /// The client whose request is being processed (taken out of the client table while
    /// it is): what cannot reach it now waits for its reply.
    pub(crate) processing: ClientId,
    /// Invalidations held until the current command has replied: (tracking client, key),
    /// `None` for the null invalidation of a flush.
    pending: Vec<(ClientId, Option<SmallBytes>)>,
    /// While a script runs for a tracking client: its id, the script client's id and the
    /// keys of the caller's EVAL/FCALL. Redis 7.0 remembers the *caller's* keys whenever a
    /// read-only command runs inside the script (`trackingRememberKeys(caller)` reads the
    /// caller's argv), not the keys the script reads.
    pub(crate) script_caller: Option<ScriptTracking>,
    /// An invalidation was written for a client other than the running one since the I/O
    /// layer last asked (it lets their connections write before the running one replies).
    others_told: bool,
    /// How many times in a row the size limit could not be reached (more effort each time).
    limit_misses: u32,
}

#[derive(Clone, Debug)]
pub struct ScriptTracking {
    pub script_client: ClientId,
    pub caller: ClientId,
    pub keys: Vec<Vec<u8>>,
}

impl Tracking {
    /// True when anything may need tracking work (the hot-path guard).
    #[inline]
    pub fn active(&self) -> bool {
        self.active
    }

    /// Recomputes the hot-path guard.
    pub(crate) fn refresh(&mut self) {
        self.active = self.clients > 0
            || self.table.len() > 0
            || !self.prefixes.is_empty()
            || !self.pending.is_empty()
            || self.current != 0
            || self.processing != 0;
    }

    pub fn clients(&self) -> usize {
        self.clients
    }

    /// INFO `tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`.
    pub fn totals(&self) -> (usize, usize, usize) {
        (self.table.len(), self.items, self.prefixes.len())
    }

    /// CLIENT TRACKING on (Redis's enableTracking): flags are replaced, BCAST prefixes are
    /// added to those the client has (no prefix at all means every key).
    pub fn enable(&mut self, c: &mut ClientTracking, id: ClientId, opts: &TrackingOptions) {
        if !c.on {
            self.clients += 1;
        }
        c.on = true;
        c.broken_redirect = false;
        c.bcast = false;
        c.optin = false;
        c.optout = false;
        c.noloop = false;
        c.redirect = opts.redirect;
        if opts.bcast {
            c.bcast = true;
            let all = [Vec::new()];
            let prefixes = if opts.prefixes.is_empty() { &all[..] } else { &opts.prefixes[..] };
            for p in prefixes {
                self.prefixes.entry(p.clone()).or_default().clients.insert(id);
                c.prefixes.insert(p.clone());
            }
        }
        c.optin = opts.optin;
        c.optout = opts.optout;
        c.noloop = opts.noloop;
        self.refresh();
    }

    /// CLIENT TRACKING off, RESET, a client going away (Redis's disableTracking). The keys
    /// it read stay in the table until written (they are skipped then), as in Redis.
    pub fn disable(&mut self, c: &mut ClientTracking, id: ClientId) {
        if c.bcast {
            for p in std::mem::take(&mut c.prefixes) {
                if let Some(b) = self.prefixes.get_mut(&p) {
                    b.clients.remove(&id);
                    if b.clients.is_empty() {
                        self.prefixes.remove(&p);
                    }
                }
            }
        }
        if c.on {
            self.clients -= 1;
            *c = ClientTracking::default();
        }
        self.refresh();
    }

    /// Remembers that `id` may cache `key`.
    pub fn remember(&mut self, key: &[u8], id: ClientId) {
        if self.table.insert(key, id) {
            self.items += 1;
        }
        self.active = true;
    }

    /// The clients that may cache `key`, forgetting them (the first half of Redis's
    /// trackingInvalidateKey).
    pub fn take_readers(&mut self, key: &[u8]) -> Option<SmallVec<[ClientId; 2]>> {
        let readers = self.table.remove(key)?;
        self.items -= readers.len();
        if self.table.len() == 0 {
            self.refresh();
        }
        Some(readers)
    }

    /// Notes a change of `key` by `writer` under every prefix that matches it.
    pub fn note_for_broadcast(&mut self, key: &[u8], writer: ClientId) {
        for (prefix, b) in self.prefixes.iter_mut() {
            if key.starts_with(prefix) {
                b.keys.insert(key.to_vec(), writer);
                self.bcast_dirty = true;
            }
        }
    }

    pub fn has_prefixes(&self) -> bool {
        !self.prefixes.is_empty()
    }

    pub fn bcast_pending(&self) -> bool {
        self.bcast_dirty
    }

    /// The messages of a BCAST flush, prefix by prefix (in prefix order, keys sorted, as
    /// Redis's radix trees give them); `noloop(id)` says whether a subscriber skips keys it
    /// changed itself. A subscriber left with no key gets no message.
    pub fn take_broadcasts(&mut self, noloop: impl Fn(ClientId) -> bool) -> Vec<BcastMessage> {
        let mut out = Vec::new();
        if !std::mem::take(&mut self.bcast_dirty) {
            return out;
        }
        for b in self.prefixes.values_mut() {
            let keys = std::mem::take(&mut b.keys);
            if keys.is_empty() {
                continue;
            }
            for &client in &b.clients {
                let keys: Vec<Vec<u8>> = if noloop(client) {
                    keys.iter().filter(|(_, &w)| w != client).map(|(k, _)| k.clone()).collect()
                } else {
                    keys.keys().cloned().collect()
                };
                if !keys.is_empty() {
                    out.push(BcastMessage { client, keys });
                }
            }
        }
        out
    }

    /// FLUSHALL/FLUSHDB: the whole table goes (Redis frees it whatever the database).
    pub fn clear_table(&mut self) {
        self.table.clear();
        self.items = 0;
        self.refresh();
    }

    /// A random key of the table, for the size limit.
    pub fn random_key(&self, rng: &mut fastrand::Rng) -> Option<Vec<u8>> {
        if self.table.len() == 0 {
            return None;
        }
        self.table.key_at(rng.usize(0..self.table.len())).map(<[u8]>::to_vec)
    }

    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// How many random keys the size limit may invalidate this time (Redis's effort:
    /// 100 × the number of consecutive runs that ended still over the limit, plus one).
    pub fn limit_effort(&self) -> usize {
        100 * (self.limit_misses as usize + 1)
    }

    pub fn limit_result(&mut self, reached: bool) {
        if reached {
            self.limit_misses = 0;
        } else {
            self.limit_misses = self.limit_misses.saturating_add(1);
        }
    }

    pub(crate) fn told_another(&mut self) {
        self.others_told = true;
    }

    /// Whether other clients were sent invalidations since the last call.
    pub fn take_others_told(&mut self) -> bool {
        std::mem::take(&mut self.others_told)
    }

    /// Holds an invalidation for the current client until its reply is out.
    pub fn defer(&mut self, client: ClientId, key: Option<&[u8]>) {
        self.pending.push((client, key.map(SmallBytes::from)));
        self.active = true;
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn take_pending(&mut self) -> Vec<(ClientId, Option<SmallBytes>)> {
        let p = std::mem::take(&mut self.pending);
        self.refresh();
        p
    }

    /// The prefixes of `new` that collide with each other or with the client's own: the
    /// error Redis gives and whether it still goes on (Redis's check returns the index of
    /// the offending prefix as its verdict, so an overlap among the new prefixes found
    /// after the first one is reported *and* tracking is enabled anyway).
    pub fn prefix_collision(existing: &BTreeSet<Vec<u8>>, new: &[Vec<u8>]) -> Option<(String, bool)> {
        let overlap = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for (i, p) in new.iter().enumerate() {
            if let Some(old) = existing.iter().find(|old| overlap(old, p)) {
                return Some((
                    format!(
                        "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                        text(p),
                        text(old)
                    ),
                    false,
                ));
            }
            if let Some(other) = new[i + 1..].iter().find(|q| overlap(p, q)) {
                return Some((
                    format!(
                        "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        text(p),
                        text(other)
                    ),
                    i > 0,
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(t: &mut Tracking, id: ClientId, opts: TrackingOptions) -> ClientTracking {
        let mut c = ClientTracking::default();
        t.enable(&mut c, id, &opts);
        c
    }

    #[test]
    fn readers_are_forgotten_once_invalidated() {
        let mut t = Tracking::default();
        assert!(!t.active());
        let _c = on(&mut t, 7, TrackingOptions::default());
        assert!(t.active());
        t.remember(b"k", 7);
        t.remember(b"k", 7);
        t.remember(b"k", 8);
        t.remember(b"j", 7);
        assert_eq!(t.totals(), (2, 3, 0));
        assert_eq!(t.take_readers(b"k").unwrap().as_slice(), &[7, 8]);
        assert!(t.take_readers(b"k").is_none());
        assert_eq!(t.totals(), (1, 1, 0));
        assert_eq!(t.random_key(&mut fastrand::Rng::with_seed(1)).as_deref(), Some(&b"j"[..]));
    }

    #[test]
    fn swap_remove_keeps_the_index_right() {
        let mut t = Tracking::default();
        for i in 0..100u32 {
            t.remember(format!("key:{i}").as_bytes(), 1);
        }
        for i in (0..100u32).step_by(3) {
            assert!(t.take_readers(format!("key:{i}").as_bytes()).is_some());
        }
        for i in 0..100u32 {
            let present = t.take_readers(format!("key:{i}").as_bytes()).is_some();
            assert_eq!(present, i % 3 != 0, "key:{i}");
        }
        assert_eq!(t.totals(), (0, 0, 0));
    }

    #[test]
    fn disabling_keeps_the_table_and_clears_flags() {
        let mut t = Tracking::default();
        let mut c = on(&mut t, 3, TrackingOptions { optin: true, noloop: true, ..Default::default() });
        t.remember(b"k", 3);
        t.disable(&mut c, 3);
        assert!(!c.on && !c.optin && !c.noloop);
        assert_eq!(t.clients(), 0);
        assert!(t.active(), "the stale entry is still to be cleaned by a write");
        t.take_readers(b"k");
        assert!(!t.active());
    }

    #[test]
    fn broadcasts_group_keys_per_prefix_and_honour_noloop() {
        let mut t = Tracking::default();
        let _a = on(
            &mut t,
            1,
            TrackingOptions { bcast: true, prefixes: vec![b"a".to_vec(), b"b".to_vec()], ..Default::default() },
        );
        let _b = on(&mut t, 2, TrackingOptions { bcast: true, noloop: true, ..Default::default() });
        assert_eq!(t.totals().2, 3);
        t.note_for_broadcast(b"b2", 5);
        t.note_for_broadcast(b"a1", 2);
        t.note_for_broadcast(b"b1", 2);
        t.note_for_broadcast(b"c", 2);
        let msgs = t.take_broadcasts(|id| id == 2);
        assert_eq!(
            msgs,
            vec![
                BcastMessage { client: 2, keys: vec![b"b2".to_vec()] },
                BcastMessage { client: 1, keys: vec![b"a1".to_vec()] },
                BcastMessage { client: 1, keys: vec![b"b1".to_vec(), b"b2".to_vec()] },
            ]
        );
        assert!(t.take_broadcasts(|_| false).is_empty());
    }

    #[test]
    fn remembering_depends_on_optin_optout_and_caching() {
        let mut c = ClientTracking { on: true, ..Default::default() };
        assert!(c.remembers_reads());
        c.optin = true;
        assert!(!c.remembers_reads());
        c.caching = true;
        assert!(c.remembers_reads());
        c.optin = false;
        c.optout = true;
        assert!(!c.remembers_reads());
        c.caching = false;
        assert!(c.remembers_reads());
        c.bcast = true;
        assert!(!c.remembers_reads());
    }

    #[test]
    fn prefix_collisions_as_redis_reports_them() {
        let existing: BTreeSet<Vec<u8>> = [b"b".to_vec()].into();
        let (msg, goes_on) = Tracking::prefix_collision(&existing, &[b"bc".to_vec()]).unwrap();
        assert_eq!(
            msg,
            "ERR Prefix 'bc' overlaps with an existing prefix 'b'. Prefixes for a single client must not overlap."
        );
        assert!(!goes_on);
        let none = BTreeSet::new();
        let (_, goes_on) = Tracking::prefix_collision(&none, &[b"a".to_vec(), b"ab".to_vec()]).unwrap();
        assert!(!goes_on);
        let (msg, goes_on) =
            Tracking::prefix_collision(&none, &[b"b".to_vec(), b"a".to_vec(), b"ab".to_vec()]).unwrap();
        assert!(msg.starts_with("ERR Prefix 'a' overlaps with another provided prefix 'ab'"));
        assert!(goes_on);
        assert!(Tracking::prefix_collision(&none, &[b"a".to_vec(), b"b".to_vec()]).is_none());
        assert!(Tracking::prefix_collision(&none, &[Vec::new(), b"b".to_vec()]).is_some());
    }
}
