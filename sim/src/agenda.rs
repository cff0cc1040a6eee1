//! The simulator's event queue: earliest first, ties in push order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rumor::Time;

/// The events waiting to happen, earliest first; events due at the same instant come
/// out in the order they were pushed, so a run is a function of its seed alone.
///
/// The heap orders 24-byte keys, `(at, seq, slot)`, and the events themselves wait in
/// a slab: a datagram event is 56 bytes, and moving it at every level of every sift was
/// most of the heap's cost.
pub struct Agenda<T> {
    heap: BinaryHeap<Reverse<(Time, u64, u32)>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    seq: u64,
}

impl<T> Default for Agenda<T> {
    fn default() -> Self {
        Agenda {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            seq: 0,
        }
    }
}

impl<T> Agenda<T> {
    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Time, event: T) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                // Fewer than 2^32 events are ever pending at once: each is a datagram
                // in flight, a node's timer or a scheduled fault.
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Reverse((at, self.seq, slot)));
    }

    /// When the earliest event is due, if any is pending.
    pub fn next_at(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the earliest event and the time it is due.
    pub fn pop(&mut self) -> Option<(Time, T)> {
        // Every key names a filled slot (push fills it, only pop empties it), so the
        // `?` on the slot never ends a run early.
        let Reverse((at, _, slot)) = self.heap.pop()?;
        let event = self.slab.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some((at, event))
    }

    /// How many events are pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn ties_come_out_in_push_order() {
        let mut a = Agenda::default();
        a.push(at(5), "b1");
        a.push(at(1), "a");
        a.push(at(5), "b2");
        a.push(at(5), "b3");
        assert_eq!(a.next_at(), Some(at(1)));
        let order: Vec<_> = std::iter::from_fn(|| a.pop()).collect();
        assert_eq!(
            order,
            vec![(at(1), "a"), (at(5), "b1"), (at(5), "b2"), (at(5), "b3")]
        );
        assert!(a.is_empty());
        assert_eq!(a.pop(), None);
    }

    #[test]
    fn freed_slots_are_reused() {
        let mut a = Agenda::default();
        for round in 0..100u64 {
            a.push(at(round), round);
            a.push(at(round), round + 1000);
            assert_eq!(a.pop(), Some((at(round), round)));
            assert_eq!(a.pop(), Some((at(round), round + 1000)));
        }
        assert_eq!(a.slab.len(), 2, "two events were never pending at once");
    }

    proptest! {
        /// Whatever is pushed and popped, interleaved, comes out as a stable sort by
        /// time of what was pushed.
        #[test]
        fn pops_are_a_stable_sort_by_time(
            ops in proptest::collection::vec(proptest::option::of(0u64..20), 0..200)
        ) {
            let mut a = Agenda::default();
            let mut model: Vec<(u64, usize)> = Vec::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Some(ms) => {
                        a.push(at(ms), i);
                        model.push((ms, i));
                    }
                    None => {
                        // The model's earliest: least time, then least push index.
                        let best = model.iter().copied().enumerate().min_by_key(|&(_, e)| e);
                        let want = best.map(|(k, (ms, i))| {
                            model.remove(k);
                            (at(ms), i)
                        });
                        prop_assert_eq!(a.pop(), want);
                    }
                }
                prop_assert_eq!(a.len(), model.len());
            }
        }
    }
}
