//! The member table's lookup index: row positions in an open-addressing hash table
//! (linear probing), at 5 to 6.5 bytes a member.
//!
//! Hand-written rather than a `hashbrown::HashTable<u32>` for its size: hashbrown's
//! bucket count is a power of two at most 7/8 full, 5 bytes a bucket, so 5.7 to 11.4
//! bytes a member (10.2 at both 1,000 and 4,096 members), where issue 26 allows 100
//! bytes for everything a member costs. Here the slot count is any number (a slot is
//! chosen by multiplying the hash by it, so no power of two is needed) and stays
//! between 64 % and 80 % full. A slot holds the position (24 bits: `max_members` is at
//! most 10,000,000) and 8 bits of the hash, so a probe rarely reads a row that does
//! not match. Entries are only added, or all renumbered at once when the table forgets
//! members (`rebuild`), so no deletion is needed.

/// A free slot.
const EMPTY: u32 = u32::MAX;
const POS_BITS: u32 = 24;
const POS_MASK: u32 = (1 << POS_BITS) - 1;

#[derive(Debug, Default)]
pub(super) struct PositionTable {
    slots: Vec<u32>,
    len: usize,
}

#[inline]
fn tag(hash: u64) -> u32 {
    (hash as u32) >> POS_BITS
}

/// The first slot to probe for `hash` among `n`.
#[inline]
fn home(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

impl PositionTable {
    /// The position whose hash is `hash` and for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl Fn(u32) -> bool) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let t = tag(hash);
        let mut i = home(hash, n);
        // Ends: at most 80 % of the slots are taken.
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s >> POS_BITS == t && eq(s & POS_MASK) {
                return Some(s & POS_MASK);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Adds `pos` (not filed yet) under `hash`; `hash_of` gives any filed position's
    /// hash, for growing.
    pub fn insert(&mut self, pos: u32, hash: u64, hash_of: impl Fn(u32) -> u64) {
        debug_assert!(pos < POS_MASK);
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            // From 80 % full to 64 %: geometric, so inserts stay amortized O(1).
            let n = ((self.len + 1) * 5 / 4 * 5 / 4).max(16);
            self.resize(n, &hash_of);
        }
        Self::place(&mut self.slots, pos, hash);
        self.len += 1;
    }

    fn place(slots: &mut [u32], pos: u32, hash: u64) {
        let n = slots.len();
        let mut i = home(hash, n);
        while slots[i] != EMPTY {
            i += 1;
            if i == n {
                i = 0;
            }
        }
        slots[i] = pos | (tag(hash) << POS_BITS);
    }

    fn resize(&mut self, n: usize, hash_of: &impl Fn(u32) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; n]);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let pos = s & POS_MASK;
            Self::place(&mut self.slots, pos, hash_of(pos));
        }
    }

    /// Refiles positions `0..len` (after the table forgot members and renumbered the
    /// rest), sized for them.
    pub fn rebuild(&mut self, len: usize, hash_of: impl Fn(u32) -> u64) {
        let n = (len * 5 / 4 * 5 / 4).max(16);
        self.slots.clear();
        self.slots.shrink_to(n);
        self.slots.resize(n, EMPTY);
        for pos in 0..len as u32 {
            Self::place(&mut self.slots, pos, hash_of(pos));
        }
        self.len = len;
    }

    /// Positions filed (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Finds every filed key and no other, whatever the hashes (colliding ones too),
        /// before and after a rebuild.
        #[test]
        fn finds_what_was_filed(keys in prop::collection::btree_set(any::<u64>(), 0..400), crowd in any::<bool>(), probes in prop::collection::vec(any::<u64>(), 0..30)) {
            let keys: Vec<u64> = keys.into_iter().collect();
            // Crowded: hashes from a few values, so probing runs long.
            let hash = |k: u64| if crowd { k % 7 } else { k.wrapping_mul(0x9e37_79b9_7f4a_7c15) };
            let mut t = PositionTable::default();
            for (p, &k) in keys.iter().enumerate() {
                t.insert(p as u32, hash(k), |q| hash(keys[q as usize]));
            }
            for round in 0..2 {
                for (p, &k) in keys.iter().enumerate() {
                    prop_assert_eq!(t.find(hash(k), |q| keys[q as usize] == k), Some(p as u32));
                }
                for &k in &probes {
                    let expected = keys.iter().position(|&x| x == k).map(|p| p as u32);
                    prop_assert_eq!(t.find(hash(k), |q| keys[q as usize] == k), expected);
                }
                prop_assert_eq!(t.len(), keys.len());
                if round == 0 {
                    t.rebuild(keys.len(), |q| hash(keys[q as usize]));
                }
            }
        }
    }
}
