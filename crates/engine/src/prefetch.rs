//! Pipelined requests prefetch what they will read before the batch runs.

use crate::commands::spec::GetKeys;
use crate::engine::Engine;
use ferrokv_resp::Argv;
use std::collections::VecDeque;

/// How many requests of a batch [`Engine::prefetch_keys`] looks at.
pub(crate) const PREFETCH_MAX: usize = 32;
/// A batch position whose command was not looked up (or not found) before it runs.
pub(crate) const NOT_LOOKED_UP: u16 = u16::MAX;

impl Engine {
    /// Prefetches the first key of each pipelined request, in two passes (buckets, then
    /// nodes), so the memory latency of a batch's lookups overlaps. Worth it only when
    /// several requests arrived together. Returns the commands it found by name, by
    /// position in the batch, so that running them does not look them up again.
    pub(crate) fn prefetch_keys(&self, db: usize, reqs: &VecDeque<Argv>, limit: usize) -> [u16; PREFETCH_MAX] {
        let mut found = [NOT_LOOKED_UP; PREFETCH_MAX];
        if reqs.len() < 2 {
            return found;
        }
        let db = &self.dbs[db];
        let mut hashes = [0u64; PREFETCH_MAX];
        let mut n = 0;
        for (i, argv) in reqs.iter().take(limit.min(PREFETCH_MAX)).enumerate() {
            let Some(id) = self.commands.find(argv.get(0)) else {
                continue;
            };
            found[i] = u16::try_from(id).unwrap_or(NOT_LOOKED_UP);
            let cmd = self.commands.get(id);
            let first = match cmd.getkeys {
                // EVAL, EVALSHA, FCALL and their _RO forms: `numkeys key ...` (the
                // dataset read of a script's first command is then prefetched too).
                Some(GetKeys::Numkeys { store: 0, count, first }) if argv.try_get(count).is_some_and(|n| n != b"0") => {
                    first
                }
                _ => cmd.spec.keys.0 as usize,
            };
            if first >= 1 && first < argv.len() {
                let h = ferrokv_keyspace::dict::hash_key(argv.get(first));
                db.prefetch(h, 0);
                hashes[n] = h;
                n += 1;
            }
        }
        for &h in &hashes[..n] {
            db.prefetch(h, 1);
        }
        found
    }
}
