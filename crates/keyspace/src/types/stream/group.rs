//! Consumer groups: a group's last-delivered ID and read counter, its pending entries
//! list (PEL: IDs delivered and not acknowledged, with their consumer, last delivery time
//! and delivery count) and its consumers, each with its own PEL (the IDs it holds).
//!
//! The group PEL is the one source of truth for a pending entry's data; a consumer's PEL
//! is the set of IDs whose `Nack::consumer` names it. Every change keeps the two in step.

use super::StreamId;
use crate::SmallBytes;
use std::collections::{BTreeMap, BTreeSet};

/// `entries_read` when the group's position in the stream's history is unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A pending entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    pub consumer: SmallBytes,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms of the consumer's last interaction (XINFO CONSUMERS' idle).
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries of the stream's history read by the group, or [`INVALID_ENTRIES_READ`].
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    /// Consumers by name (name order, as Redis lists them).
    pub consumers: BTreeMap<SmallBytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// Creates a consumer if missing: true if created.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(SmallBytes::from(name), Consumer { seen_time: now, pel: BTreeSet::new() });
        true
    }

    /// Deletes a consumer and its pending entries: the number of entries it had pending,
    /// or None if there was no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Acknowledges `id`: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else { return false };
        if let Some(c) = self.consumers.get_mut(nack.consumer.as_slice()) {
            c.pel.remove(&id);
        }
        true
    }

    /// Makes `id` pending for `consumer` (which must exist), with the given delivery time
    /// and count, moving it from another consumer if it was pending there.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], delivery_time: i64, delivery_count: u64) {
        match self.pel.get_mut(&id) {
            Some(nack) => {
                if nack.consumer.as_slice() != consumer {
                    if let Some(old) = self.consumers.get_mut(nack.consumer.as_slice()) {
                        old.pel.remove(&id);
                    }
                    nack.consumer = SmallBytes::from(consumer);
                }
                nack.delivery_time = delivery_time;
                nack.delivery_count = delivery_count;
            }
            None => {
                self.pel.insert(id, Nack { consumer: SmallBytes::from(consumer), delivery_time, delivery_count });
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    pub fn heap_size(&self) -> usize {
        // B-tree entries: key + value, twice over: IDs arrive in order, which leaves the
        // B-tree's nodes about half full (measured against used_memory in tests/streams.rs).
        let pel = self.pel.len() * (std::mem::size_of::<StreamId>() + std::mem::size_of::<Nack>()) * 2;
        let consumers: usize = self
            .consumers
            .iter()
            .map(|(name, c)| {
                name.heap_size()
                    + std::mem::size_of::<Consumer>()
                    + std::mem::size_of::<SmallBytes>()
                    + c.pel.len() * std::mem::size_of::<StreamId>() * 2
            })
            .sum();
        pel + consumers
    }
}
