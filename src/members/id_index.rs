//! The member table's index by id: row positions sorted by id, which push-pull digests
//! walk range by range (`range`), at 4 bytes a member, where the sorted `BTreeMap` of
//! versions it replaces took about 30. New positions wait in a small sorted `pending` list that is
//! merged into `main` once it holds a thirty-second of it: an insert moves
//! O(n / 32) positions, not O(n), and a join storm's thousands of inserts stay cheap.
//! Nothing here allocates unless a member is added or forgotten.

/// `pending` is merged once it holds more than this, or more than `main.len() / 32`.
const PENDING_MIN: usize = 16;

#[derive(Debug, Default)]
pub(super) struct IdIndex {
    /// Positions sorted by id.
    main: Vec<u32>,
    /// Positions added since the last merge, sorted by id; none of them is in `main`.
    pending: Vec<u32>,
}

/// Bisects `list` for `id`: `Ok(index)` or `Err(insertion point)`.
fn bisect(list: &[u32], id: u64, key: &impl Fn(u32) -> u64) -> Result<usize, usize> {
    list.binary_search_by(|&p| key(p).cmp(&id))
}

impl IdIndex {
    /// Files position `pos`, whose id (`key(pos)`) is not filed yet.
    pub fn insert(&mut self, pos: u32, key: impl Fn(u32) -> u64) {
        let id = key(pos);
        let at = bisect(&self.pending, id, &key).unwrap_or_else(|at| at);
        self.pending.insert(at, pos);
        if self.pending.len() > PENDING_MIN.max(self.main.len() / 32) {
            self.merge(&key);
        }
    }

    /// Moves `pending` into `main` now.
    pub fn flush(&mut self, key: impl Fn(u32) -> u64) {
        if !self.pending.is_empty() {
            self.merge(&key);
        }
    }

    /// Moves `pending` into `main`, merging from the back in place.
    fn merge(&mut self, key: &impl Fn(u32) -> u64) {
        let (old, add) = (self.main.len(), self.pending.len());
        self.main.reserve_exact(add);
        self.main.resize(old + add, 0);
        let (mut i, mut j) = (old, add);
        for k in (0..old + add).rev() {
            let take_main = j == 0 || (i > 0 && key(self.main[i - 1]) > key(self.pending[j - 1]));
            if take_main {
                i -= 1;
                self.main[k] = self.main[i];
            } else {
                j -= 1;
                self.main[k] = self.pending[j];
            }
            if j == 0 {
                // The rest of `main` is in place already.
                break;
            }
        }
        self.pending.clear();
    }

    /// Drops positions mapped to `u32::MAX` by `moved_to` and renumbers the others.
    /// Ids do not change, so the order holds.
    pub fn renumber(&mut self, moved_to: &[u32]) {
        for list in [&mut self.main, &mut self.pending] {
            list.retain_mut(|p| {
                *p = moved_to[*p as usize];
                *p != u32::MAX
            });
        }
    }

    /// Positions with ids in `lo..=hi`, ascending by id.
    pub fn range<K: Fn(u32) -> u64>(&self, lo: u64, hi: u64, key: K) -> Range<'_, K> {
        let (main, pending) = if lo <= hi {
            let from = |list: &[u32]| bisect(list, lo, &key).unwrap_or_else(|at| at);
            (
                &self.main[from(&self.main)..],
                &self.pending[from(&self.pending)..],
            )
        } else {
            (&self.main[..0], &self.pending[..0])
        };
        Range {
            main,
            pending,
            hi,
            key,
        }
    }

    /// Positions filed (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.main.len() + self.pending.len()
    }
}

/// The positions of an id range, merged from `main` and `pending`.
pub(super) struct Range<'a, K> {
    main: &'a [u32],
    pending: &'a [u32],
    hi: u64,
    key: K,
}

impl<K: Fn(u32) -> u64> Iterator for Range<'_, K> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let m = self.main.first().map(|&p| (p, (self.key)(p)));
        let q = self.pending.first().map(|&p| (p, (self.key)(p)));
        let (p, id, from_main) = match (m, q) {
            (Some((p, a)), Some((_, b))) if a < b => (p, a, true),
            (_, Some((p, b))) => (p, b, false),
            (Some((p, a)), None) => (p, a, true),
            (None, None) => return None,
        };
        if id > self.hi {
            self.main = &[];
            self.pending = &[];
            return None;
        }
        if from_main {
            self.main = &self.main[1..];
        } else {
            self.pending = &self.pending[1..];
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the ids (crowded ones included), the index holds every filed one,
        /// none other, and walks any range in id order.
        #[test]
        fn agrees_with_a_sorted_list(
            ids in prop::collection::btree_set(prop_oneof![any::<u64>(), 0u64..64, (u64::MAX - 64)..=u64::MAX], 0..300),
            probes in prop::collection::vec(any::<u64>(), 0..20),
            reap_every in 2usize..9,
            lo in any::<u64>(),
            hi in any::<u64>(),
        ) {
            // Rows in an order unrelated to the ids.
            let mut rows: Vec<u64> = ids.iter().copied().collect();
            rows.sort_by_key(|id| id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut index = IdIndex::default();
            for p in 0..rows.len() {
                index.insert(p as u32, |q| rows[q as usize]);
            }
            // Forget every `reap_every`-th row, keeping order, as `Members::reap` does.
            let mut moved_to = vec![u32::MAX; rows.len()];
            let mut kept = Vec::new();
            for (p, &id) in rows.iter().enumerate() {
                if p % reap_every != 0 {
                    moved_to[p] = kept.len() as u32;
                    kept.push(id);
                }
            }
            index.renumber(&moved_to);
            let rows = kept;
            let key = |q: u32| rows[q as usize];
            prop_assert_eq!(index.len(), rows.len());
            for (p, &id) in rows.iter().enumerate() {
                prop_assert_eq!(index.range(id, id, key).collect::<Vec<_>>(), vec![p as u32]);
            }
            for id in probes {
                prop_assert_eq!(index.range(id, id, key).next(), rows.iter().position(|&r| r == id).map(|p| p as u32));
            }
            let walked: Vec<u64> = index.range(lo, hi, key).map(key).collect();
            let mut expected: Vec<u64> = rows.iter().copied().filter(|id| lo <= *id && *id <= hi).collect();
            expected.sort_unstable();
            prop_assert_eq!(walked, expected);
        }
    }
}
