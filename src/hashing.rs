//! The hasher behind the core's hash-indexed tables: fast, keyed and deterministic.
//!
//! Every lookup of a member, a monitor or a queued update hashes a 64-bit id, and in a
//! large cluster those lookups are a good part of the cost of each datagram. std's
//! SipHash-1-3 spends about as long on one `u64` as a cache miss. foldhash is a few
//! multiplies, and with a key drawn from the node's seed it stays unpredictable to a peer
//! choosing ids to collide (a peer picks its id, since it picks its name); `max_members`
//! bounds how long a chain could grow anyway.
//!
//! The key is derived from the caller's seed, never from OS randomness, so a run is
//! reproducible all the way down to each table's layout. No output depends on that
//! layout: the tables that are iterated are `IndexMap`s, which iterate in insertion order,
//! and the member table's `HashTable` indexes are iterated only to renumber each position in
//! place, which no order can change.

use foldhash::fast::FixedState;
use indexmap::IndexMap;

/// The keyed hasher of one node's tables.
pub(crate) type Keyed = FixedState;

/// A hash map in insertion order under the node's keyed hasher.
pub(crate) type KeyedMap<K, V> = IndexMap<K, V, Keyed>;

/// The hasher for a node started with `seed`. Mixed apart from the node's RNG, so keying
/// the tables does not change any of the protocol's random choices.
pub(crate) fn keyed(seed: u64) -> Keyed {
    FixedState::with_seed(seed ^ 0x6861_7368_6b65_7921)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn the_key_changes_the_hash_and_the_seed_fixes_the_key() {
        let id = 0x1234_5678_9abc_def0_u64;
        assert_eq!(keyed(1).hash_one(id), keyed(1).hash_one(id));
        assert_ne!(keyed(1).hash_one(id), keyed(2).hash_one(id));
    }
}
