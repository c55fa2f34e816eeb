//! `maxmemory`: before a command runs, if the allocator holds more than `maxmemory`
//! bytes, keys are evicted according to `maxmemory-policy` until it does not (or nothing
//! is left to evict, and commands that would add data get `-OOM`).
//!
//! Victims are chosen as Redis does, by approximation: `maxmemory-samples` keys are sampled
//! from each database (all keys, or only keys with a TTL for `volatile-*`), scored (idle
//! time for LRU, inverse access frequency for LFU, nearness of expiry for TTL) and kept in a
//! 16-entry pool of the best candidates seen so far; the best one is evicted. Random
//! policies pick uniformly. Evictions are propagated as DELs and fire `evicted` events.

use crate::engine::Engine;
use ferrokv_config::notify;
use ferrokv_keyspace::SmallBytes;

/// `maxmemory-policy`, by its value in the config table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    #[default]
    NoEviction,
}

impl Policy {
    pub fn from_config(v: i64) -> Policy {
        match v {
            0 => Policy::VolatileLru,
            1 => Policy::VolatileLfu,
            2 => Policy::VolatileRandom,
            3 => Policy::VolatileTtl,
            4 => Policy::AllkeysLru,
            5 => Policy::AllkeysLfu,
            6 => Policy::AllkeysRandom,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }

    fn volatile(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    fn random(self) -> bool {
        matches!(self, Policy::VolatileRandom | Policy::AllkeysRandom)
    }
}

const POOL_SIZE: usize = 16;

/// The best eviction candidates seen so far: (score, db, key), ascending by score; the
/// last entry is the next victim.
#[derive(Default)]
pub struct EvictionPool {
    entries: Vec<(u64, usize, SmallBytes)>,
}

impl EvictionPool {
    fn offer(&mut self, score: u64, db: usize, key: &SmallBytes) {
        if self.entries.iter().any(|(_, d, k)| *d == db && k == key) {
            return;
        }
        if self.entries.len() == POOL_SIZE && score <= self.entries[0].0 {
            return;
        }
        let pos = self.entries.partition_point(|(s, _, _)| *s < score);
        self.entries.insert(pos, (score, db, key.clone()));
        if self.entries.len() > POOL_SIZE {
            self.entries.remove(0);
        }
    }

    fn pop_best(&mut self) -> Option<(usize, SmallBytes)> {
        self.entries.pop().map(|(_, db, k)| (db, k))
    }
}

impl Engine {
    /// Scores a sampled key: higher means a better victim.
    fn eviction_score(&self, db: usize, key: &[u8], now_ms: i64) -> Option<u64> {
        let d = &self.dbs[db];
        let obj = d.peek(key, i64::MIN)?;
        Some(match self.hot.policy {
            Policy::VolatileTtl => u64::MAX - d.expire_at(key)?.max(0) as u64,
            p if p.is_lfu() => 255 - obj.lfu_count(now_ms, self.hot.lfu_decay_time) as u64,
            _ => obj.idle_ms(now_ms).max(0) as u64,
        })
    }

    /// Picks the next key to evict, or None if there is nothing evictable.
    fn eviction_victim(&mut self, now_ms: i64) -> Option<(usize, SmallBytes)> {
        let policy = self.hot.policy;
        let volatile = policy.volatile();
        let ndb = self.dbs.len();
        if policy.random() {
            for _ in 0..ndb {
                let db = self.evict_db_cursor % ndb;
                self.evict_db_cursor = self.evict_db_cursor.wrapping_add(1);
                // A sample may come back empty on a sparse table; a random entry cannot.
                if let Some(k) = self.dbs[db].any_random_key(volatile, &mut self.rng) {
                    return Some((db, k));
                }
            }
            return None;
        }
        loop {
            let samples = self.hot.maxmemory_samples;
            let mut rng = self.rng.fork();
            let mut sampled = Vec::new();
            for db in 0..ndb {
                self.dbs[db].sample_keys(samples, volatile, &mut rng, |k| sampled.push((db, k.clone())));
            }
            if sampled.is_empty() {
                // Sampling a sparse table can come back empty: fall back to one random key
                // per database before concluding there is nothing to evict.
                for db in 0..ndb {
                    if let Some(k) = self.dbs[db].any_random_key(volatile, &mut rng) {
                        sampled.push((db, k));
                    }
                }
                if sampled.is_empty() {
                    return None;
                }
            }
            for (db, k) in sampled {
                if let Some(score) = self.eviction_score(db, &k, now_ms) {
                    self.eviction_pool.offer(score, db, &k);
                }
            }
            // Pool entries may be stale (deleted or expired since): skip those.
            while let Some((db, k)) = self.eviction_pool.pop_best() {
                let live =
                    self.dbs[db].peek(&k, i64::MIN).is_some() && (!volatile || self.dbs[db].expire_at(&k).is_some());
                if live {
                    return Some((db, k));
                }
            }
        }
    }

    /// Evicts keys while memory is over `maxmemory`. Returns false when memory stays over
    /// the limit (noeviction, or nothing left to evict): the caller refuses write commands.
    pub(crate) fn perform_evictions(&mut self, now_ms: i64) -> bool {
        let max = self.hot.maxmemory;
        if max == 0 || self.host.used_memory() <= max {
            return true;
        }
        if self.hot.policy == Policy::NoEviction {
            return false;
        }
        // Bounded per call so one command never stalls for long; the next command goes on.
        for _ in 0..10_000 {
            let Some((db, key)) = self.eviction_victim(now_ms) else {
                return self.host.used_memory() <= max;
            };
            if let Some(obj) = self.dbs[db].remove(&key) {
                if obj.value.heap_size() > 64 * 1024 {
                    self.host.free_later(Box::new(obj));
                }
                self.stats.evicted_keys += 1;
                self.feed.push(db, [&b"DEL"[..], &key]);
                self.touch_watched(None, db, &key);
                if self.tracking.active() {
                    self.tracking_invalidate(None, &key, 0, true);
                }
                self.notify(None, notify::EVICTED, "evicted", &key, db);
            }
            if self.host.used_memory() <= max {
                break;
            }
        }
        self.feed.end_unit(false);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_keeps_the_best_sixteen() {
        let mut p = EvictionPool::default();
        for i in 0..40u64 {
            p.offer(i, 0, &SmallBytes::from(format!("k{i}").as_str()));
        }
        assert_eq!(p.entries.len(), POOL_SIZE);
        assert_eq!(p.pop_best().unwrap().1, SmallBytes::from("k39"));
        // With room left, even a poor candidate gets in; once full, it does not.
        p.offer(1, 0, &SmallBytes::from("low"));
        assert_eq!(p.entries.len(), POOL_SIZE);
        p.offer(0, 0, &SmallBytes::from("lower"));
        assert!(p.entries.iter().all(|(_, _, k)| k.as_slice() != b"lower"));
    }
}
