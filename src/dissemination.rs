//! The dissemination queue: what to piggyback next.
//!
//! One entry per member (its latest state supersedes any older one, so a member never
//! occupies two slots) plus one per user broadcast. Entries are sent least-sent first,
//! newest first among equals (memberlist's lesson at scale: new news matters most), and
//! dropped after `retransmit_mult × ceil(log2(n + 1))` sends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::hashing::{Keyed, KeyedMap};
use crate::id::NodeId;

/// What an entry disseminates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum UpdateKey {
    /// The member's current state, read from the member table when packed.
    Member(NodeId),
    /// A user broadcast `(origin, seq)`.
    Broadcast(NodeId, u64),
}

/// 16 bytes: during a join storm every node queues news of almost every member at
/// once, so a slot's size is paid once per member per node. The payload of a user
/// broadcast lives in `Queue::broadcasts` instead.
#[derive(Clone, Copy, Debug)]
struct Slot {
    transmits: u32,
    /// Insertion stamp: higher is newer.
    stamp: u64,
}

/// The capacity, in slots, an emptied queue keeps: past it, the queue gives the rest of
/// its memory back, since the table a join storm grew would otherwise stay allocated for
/// the node's lifetime. Keeping some avoids reallocating on every small fill and drain.
const KEPT_WHEN_EMPTY: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    slots: KeyedMap<UpdateKey, Slot>,
    /// Keys by `priority`: iteration order is send priority.
    order: BTreeMap<u128, UpdateKey>,
    next_stamp: u64,
    /// Queued user broadcasts with their payloads by stamp, oldest first (for dropping
    /// the oldest in O(log n)).
    broadcasts: BTreeMap<u64, (UpdateKey, Option<Bytes>)>,
}

/// Send priority as one integer: fewest transmits first, then newest first. Stamps are
/// unique within a queue, so no two slots share a priority. Every datagram's piggyback
/// moves each update it carries within `order` (about 17 % of a join storm's
/// instructions), and one `u128` compares in two instructions where the tuple it encodes,
/// `(transmits, Reverse(stamp), key)`, compared field by field. The saving measured
/// small (0.5 % of a join): most of a move is the B-tree's node work.
fn priority(s: Slot) -> u128 {
    (u128::from(s.transmits) << 64) | u128::from(u64::MAX - s.stamp)
}

/// The stamp a `priority` was made from.
fn stamp_of(priority: u128) -> u64 {
    u64::MAX - priority as u64
}

impl Queue {
    /// An empty queue whose index hashes under `hasher` (see `hashing`).
    pub fn new(hasher: Keyed) -> Queue {
        Queue {
            slots: KeyedMap::with_hasher(hasher),
            ..Queue::default()
        }
    }

    /// Queues `key` afresh (transmit count back to zero), superseding its older entry.
    pub fn push(&mut self, key: UpdateKey, payload: Option<Bytes>) {
        self.remove(key);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if matches!(key, UpdateKey::Broadcast(..)) {
            self.broadcasts.insert(stamp, (key, payload));
        }
        let slot = Slot {
            transmits: 0,
            stamp,
        };
        self.order.insert(priority(slot), key);
        self.slots.insert(key, slot);
    }

    pub fn remove(&mut self, key: UpdateKey) {
        if let Some(s) = self.slots.swap_remove(&key) {
            self.order.remove(&priority(s));
            if matches!(key, UpdateKey::Broadcast(..)) {
                self.broadcasts.remove(&s.stamp);
            }
            if self.slots.is_empty() && self.slots.capacity() > KEPT_WHEN_EMPTY {
                self.slots.shrink_to(KEPT_WHEN_EMPTY);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn broadcasts(&self) -> usize {
        self.broadcasts.len()
    }

    /// Drops the oldest queued user broadcast (to respect `max_pending_broadcasts`).
    pub fn drop_oldest_broadcast(&mut self) -> bool {
        match self.broadcasts.first_key_value().map(|(_, (k, _))| *k) {
            Some(k) => {
                self.remove(k);
                true
            }
            None => false,
        }
    }

    /// Entries in send priority, at most `limit` of them (bounds the CPU spent looking
    /// for something that fits a nearly full packet).
    pub fn candidates(
        &self,
        limit: usize,
    ) -> impl Iterator<Item = (UpdateKey, Option<&Bytes>)> + '_ {
        self.order.iter().take(limit).map(|(&rank, k)| {
            // Only broadcasts carry a payload: spare member entries the lookup.
            let payload = match k {
                UpdateKey::Broadcast(..) => self
                    .broadcasts
                    .get(&stamp_of(rank))
                    .and_then(|(_, p)| p.as_ref()),
                UpdateKey::Member(_) => None,
            };
            (*k, payload)
        })
    }

    /// Records that `key` was sent once more; drops it once sent `limit` times.
    pub fn sent(&mut self, key: UpdateKey, limit: u32) {
        let Some(s) = self.slots.get_mut(&key) else {
            return;
        };
        self.order.remove(&priority(*s));
        s.transmits += 1;
        if s.transmits >= limit {
            self.remove(key);
        } else {
            self.order.insert(priority(*s), key);
        }
    }
}

/// User broadcasts already delivered, so each is delivered once: their ids, and the same
/// in delivery order for forgetting the oldest past a cap.
#[derive(Debug, Default)]
pub(crate) struct SeenBroadcasts {
    ids: BTreeSet<(NodeId, u64)>,
    order: VecDeque<(NodeId, u64)>,
}

impl SeenBroadcasts {
    /// Records `key` as delivered, forgetting the oldest beyond `cap`; false if it
    /// already was.
    pub fn remember(&mut self, key: (NodeId, u64), cap: usize) -> bool {
        if self.ids.contains(&key) {
            return false;
        }
        while self.order.len() >= cap {
            match self.order.pop_front() {
                Some(old) => self.ids.remove(&old),
                None => break,
            };
        }
        self.ids.insert(key);
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(q: &Queue) -> Vec<UpdateKey> {
        q.candidates(100).map(|(k, _)| k).collect()
    }

    #[test]
    fn least_sent_first_then_newest() {
        let mut q = Queue::default();
        q.push(UpdateKey::Member(NodeId(1)), None);
        q.push(UpdateKey::Member(NodeId(2)), None);
        q.push(UpdateKey::Member(NodeId(3)), None);
        assert_eq!(keys(&q), [3, 2, 1].map(|i| UpdateKey::Member(NodeId(i))));
        q.sent(UpdateKey::Member(NodeId(3)), 10);
        assert_eq!(keys(&q), [2, 1, 3].map(|i| UpdateKey::Member(NodeId(i))));
    }

    #[test]
    fn superseding_resets_and_keeps_one_slot() {
        let mut q = Queue::default();
        q.push(UpdateKey::Member(NodeId(1)), None);
        q.sent(UpdateKey::Member(NodeId(1)), 10);
        q.push(UpdateKey::Member(NodeId(2)), None);
        q.push(UpdateKey::Member(NodeId(1)), None);
        assert_eq!(q.len(), 2);
        assert_eq!(keys(&q)[0], UpdateKey::Member(NodeId(1)));
    }

    #[test]
    fn dropped_after_limit() {
        let mut q = Queue::default();
        q.push(
            UpdateKey::Broadcast(NodeId(1), 7),
            Some(Bytes::from_static(b"x")),
        );
        assert_eq!(q.broadcasts(), 1);
        for _ in 0..3 {
            q.sent(UpdateKey::Broadcast(NodeId(1), 7), 3);
        }
        assert!(q.is_empty());
        assert_eq!(q.broadcasts(), 0);
    }

    #[test]
    fn oldest_broadcast_is_dropped_first() {
        let mut q = Queue::default();
        q.push(UpdateKey::Broadcast(NodeId(1), 1), None);
        q.push(UpdateKey::Member(NodeId(5)), None);
        q.push(UpdateKey::Broadcast(NodeId(1), 2), None);
        assert!(q.drop_oldest_broadcast());
        assert_eq!(
            keys(&q),
            vec![
                UpdateKey::Broadcast(NodeId(1), 2),
                UpdateKey::Member(NodeId(5))
            ]
        );
    }

    #[test]
    fn broadcasts_keep_their_payloads_and_members_have_none() {
        let mut q = Queue::default();
        q.push(
            UpdateKey::Broadcast(NodeId(1), 7),
            Some(Bytes::from_static(b"x")),
        );
        q.push(UpdateKey::Member(NodeId(2)), None);
        q.push(
            UpdateKey::Broadcast(NodeId(1), 8),
            Some(Bytes::from_static(b"y")),
        );
        let got: Vec<_> = q
            .candidates(10)
            .map(|(k, p)| (k, p.map(|b| b.to_vec())))
            .collect();
        assert_eq!(
            got,
            vec![
                (UpdateKey::Broadcast(NodeId(1), 8), Some(b"y".to_vec())),
                (UpdateKey::Member(NodeId(2)), None),
                (UpdateKey::Broadcast(NodeId(1), 7), Some(b"x".to_vec())),
            ]
        );
    }

    #[test]
    fn a_slot_is_16_bytes() {
        // Paid once per member per node during a join storm (see `Slot`).
        assert_eq!(std::mem::size_of::<Slot>(), 16);
    }

    #[test]
    fn an_emptied_queue_gives_its_table_back() {
        let mut q = Queue::default();
        for i in 0..1000 {
            q.push(UpdateKey::Member(NodeId(i)), None);
        }
        assert!(q.slots.capacity() >= 1000);
        for i in 0..999 {
            q.sent(UpdateKey::Member(NodeId(i)), 1);
        }
        assert!(q.slots.capacity() >= 1000, "not empty yet: no shrinking");
        q.remove(UpdateKey::Member(NodeId(999)));
        assert!(q.is_empty());
        assert!(q.slots.capacity() <= KEPT_WHEN_EMPTY);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(UpdateKey),
        Sent(UpdateKey, u32),
        Remove(UpdateKey),
        DropOldest,
    }

    fn arb_key() -> impl Strategy<Value = UpdateKey> {
        prop_oneof![
            (0u64..6).prop_map(|i| UpdateKey::Member(NodeId(i))),
            (0u64..3, 0u64..3).prop_map(|(o, n)| UpdateKey::Broadcast(NodeId(o), n)),
        ]
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => arb_key().prop_map(Op::Push),
            4 => (arb_key(), 1u32..4).prop_map(|(k, l)| Op::Sent(k, l)),
            1 => arb_key().prop_map(Op::Remove),
            1 => Just(Op::DropOldest),
        ]
    }

    /// One queued update in the model: (key, transmits, stamp, payload).
    type Modelled = (UpdateKey, u32, u64, Option<Vec<u8>>);

    proptest! {
        /// The queue sends in the order its contract states (fewest transmits, then
        /// newest), keeps each broadcast's own payload, and drops exactly what a plain
        /// list of (key, transmits, stamp) says it drops.
        #[test]
        fn the_queue_follows_a_plain_model(ops in prop::collection::vec(arb_op(), 1..80)) {
            let mut q = Queue::default();
            let mut model: Vec<Modelled> = Vec::new();
            let mut stamp = 0u64;
            for op in ops {
                match op {
                    Op::Push(k) => {
                        model.retain(|m| m.0 != k);
                        let payload = matches!(k, UpdateKey::Broadcast(..)).then(|| stamp.to_le_bytes().to_vec());
                        q.push(k, payload.clone().map(Bytes::from));
                        model.push((k, 0, stamp, payload));
                        stamp += 1;
                    }
                    Op::Sent(k, limit) => {
                        q.sent(k, limit);
                        if let Some(m) = model.iter_mut().find(|m| m.0 == k) {
                            m.1 += 1;
                        }
                        model.retain(|m| m.0 != k || m.1 < limit);
                    }
                    Op::Remove(k) => {
                        q.remove(k);
                        model.retain(|m| m.0 != k);
                    }
                    Op::DropOldest => {
                        let oldest = model
                            .iter()
                            .filter(|m| matches!(m.0, UpdateKey::Broadcast(..)))
                            .min_by_key(|m| m.2)
                            .map(|m| m.0);
                        prop_assert_eq!(q.drop_oldest_broadcast(), oldest.is_some());
                        model.retain(|m| Some(m.0) != oldest);
                    }
                }
                let mut want = model.clone();
                want.sort_by_key(|m| (m.1, std::cmp::Reverse(m.2)));
                let want: Vec<_> = want.into_iter().map(|m| (m.0, m.3)).collect();
                let got: Vec<_> = q
                    .candidates(usize::MAX)
                    .map(|(k, p)| (k, p.map(|b| b.to_vec())))
                    .collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(q.len(), model.len());
                let broadcasts = model.iter().filter(|m| matches!(m.0, UpdateKey::Broadcast(..))).count();
                prop_assert_eq!(q.broadcasts(), broadcasts);
            }
        }
    }
}
