//! The pub/sub registry: which clients listen to which channels and patterns. Message
//! delivery (formatting into each receiver's output) lives in the engine, which owns the
//! clients.

use crate::client::ClientId;
use ahash::AHashMap as HashMap;
use ferrokv_keyspace::glob::glob_match;

#[derive(Default)]
pub struct PubSub {
    channels: HashMap<Vec<u8>, Vec<ClientId>>,
    patterns: HashMap<Vec<u8>, Vec<ClientId>>,
    /// Shard channels (SSUBSCRIBE / SPUBLISH): a namespace of their own, no patterns. Outside
    /// cluster mode a node holds every shard, as Redis 7.0 allows.
    shard: HashMap<Vec<u8>, Vec<ClientId>>,
}

fn add(map: &mut HashMap<Vec<u8>, Vec<ClientId>>, key: &[u8], id: ClientId) {
    let v = map.entry(key.to_vec()).or_default();
    if !v.contains(&id) {
        v.push(id);
    }
}

fn remove(map: &mut HashMap<Vec<u8>, Vec<ClientId>>, key: &[u8], id: ClientId) {
    if let Some(v) = map.get_mut(key) {
        v.retain(|&c| c != id);
        if v.is_empty() {
            map.remove(key);
        }
    }
}

impl PubSub {
    pub fn subscribe(&mut self, channel: &[u8], id: ClientId) {
        add(&mut self.channels, channel, id);
    }

    pub fn unsubscribe(&mut self, channel: &[u8], id: ClientId) {
        remove(&mut self.channels, channel, id);
    }

    pub fn ssubscribe(&mut self, channel: &[u8], id: ClientId) {
        add(&mut self.shard, channel, id);
    }

    pub fn sunsubscribe(&mut self, channel: &[u8], id: ClientId) {
        remove(&mut self.shard, channel, id);
    }

    /// Subscribers of a shard channel.
    pub fn shard_receivers(&self, channel: &[u8]) -> Vec<ClientId> {
        self.shard.get(channel).cloned().unwrap_or_default()
    }

    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.shard.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.shard.get(channel).map_or(0, Vec::len)
    }

    pub fn shard_channel_count(&self) -> usize {
        self.shard.len()
    }

    pub fn psubscribe(&mut self, pattern: &[u8], id: ClientId) {
        add(&mut self.patterns, pattern, id);
    }

    pub fn punsubscribe(&mut self, pattern: &[u8], id: ClientId) {
        remove(&mut self.patterns, pattern, id);
    }

    /// Who receives a message on `channel`: direct subscribers, then pattern subscribers
    /// with the pattern that matched.
    pub fn receivers(&self, channel: &[u8]) -> (Vec<ClientId>, Vec<(Vec<u8>, ClientId)>) {
        let direct = self.channels.get(channel).cloned().unwrap_or_default();
        let mut by_pattern = Vec::new();
        for (pat, ids) in &self.patterns {
            if glob_match(pat, channel, false) {
                by_pattern.extend(ids.iter().map(|&id| (pat.clone(), id)));
            }
        }
        (direct, by_pattern)
    }

    pub fn has_receivers(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    /// Active channels (with at least one subscriber), optionally filtered by a pattern.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).cloned().collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
    }

    /// Number of distinct patterns subscribed to.
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}
