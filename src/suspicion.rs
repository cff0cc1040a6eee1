//! Suspicion timers (Lifeguard §4.2): a suspected member is declared dead when its timer
//! runs out; the timeout starts at `max` and shrinks toward `min` as independent members
//! confirm the suspicion, so a real failure is confirmed quickly while one node's bad
//! link alone waits the longest.

use std::time::Duration;

use crate::id::NodeId;
use crate::time::Time;

/// Lifeguard's dynamic timeout: `max(min, max − (max − min)·log(c + 1)/log(k + 1))` for
/// `c` confirmations of `k` expected.
pub(crate) fn timeout(min: Duration, max: Duration, confirmations: u32, expected: u32) -> Duration {
    if expected == 0 || max <= min {
        return min;
    }
    // libm for results that are the same on every platform.
    let frac = libm::log(f64::from(confirmations) + 1.0) / libm::log(f64::from(expected) + 1.0);
    let span = (max - min).as_secs_f64();
    let t = max.as_secs_f64() - span * frac.min(1.0);
    Duration::from_secs_f64(t.max(min.as_secs_f64()))
}

/// Confirmations kept per suspicion: enough for any `expected` the config allows.
const MAX_CONFIRMERS: usize = 32;

/// One member under suspicion at one incarnation.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    pub incarnation: u64,
    pub started: Time,
    min: Duration,
    max: Duration,
    expected: u32,
    /// Distinct members that suspected it (the first included), bounded.
    confirmers: Vec<NodeId>,
    pub deadline: Time,
    /// How far our own stalls, stall guards and last chances have moved it later, in
    /// all: at most `max`, so a suspicion ends within twice its longest timeout.
    postponed: Duration,
    /// When this node last sent the member a last-chance ping, if it did.
    pub last_chance: Option<Time>,
    /// No earlier than this (set by deferrals): a confirmation shortens the timeout but
    /// does not undo a deferral.
    floor: Time,
}

impl Suspicion {
    pub fn new(
        incarnation: u64,
        started: Time,
        from: NodeId,
        min: Duration,
        max: Duration,
        expected: u32,
    ) -> Suspicion {
        let mut s = Suspicion {
            incarnation,
            started,
            min,
            max,
            expected,
            confirmers: vec![from],
            deadline: started,
            postponed: Duration::ZERO,
            last_chance: None,
            floor: started,
        };
        s.deadline = started + s.current_timeout();
        s
    }

    /// Independent confirmations beyond the first suspicion.
    pub fn confirmations(&self) -> u32 {
        self.confirmers.len().saturating_sub(1) as u32
    }

    fn current_timeout(&self) -> Duration {
        timeout(self.min, self.max, self.confirmations(), self.expected)
    }

    /// Records `from` as confirming; true if it is a new, independent confirmation (the
    /// deadline may then move earlier, never before `started + min`).
    pub fn confirm(&mut self, from: NodeId) -> bool {
        if self.confirmers.contains(&from) || self.confirmers.len() >= MAX_CONFIRMERS {
            return false;
        }
        self.confirmers.push(from);
        self.deadline = (self.started + self.current_timeout()).max(self.floor);
        true
    }

    /// Moves the suspicion later by `d` (this node was stalled for `d`: the time it
    /// spent frozen is not time the suspect had to refute), as far as the budget allows.
    pub fn postpone(&mut self, d: Duration) {
        let d = d.min(self.budget());
        self.postponed += d;
        self.started += d;
        self.deadline += d;
    }

    /// Moves the deadline to `at` (the end of our stall guard) if the budget allows;
    /// false if it does not, and the suspicion must be decided now.
    pub fn defer_to(&mut self, at: Time) -> bool {
        let d = at.saturating_since(self.deadline);
        if d > self.budget() {
            return false;
        }
        self.postponed += d;
        self.hold_until(at);
        true
    }

    /// Moves the deadline to `at` at least, outside the budget (the stall guard: it
    /// follows a stall that `postpone` already charged, and lasts `stall_guard`).
    pub fn hold_until(&mut self, at: Time) {
        self.deadline = self.deadline.max(at);
        self.floor = self.floor.max(at);
    }

    /// What is left of the postponement budget (`max`).
    fn budget(&self) -> Duration {
        self.max.saturating_sub(self.postponed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn memberlist_numbers() {
        // n = 1000, T = 1 s, SuspicionMult 4: min 12 s, max 72 s, K = 2.
        let min = Duration::from_secs(12);
        let max = Duration::from_secs(72);
        assert_eq!(timeout(min, max, 0, 2), max);
        let one = timeout(min, max, 1, 2).as_secs_f64();
        assert!(
            (one - (72.0 - 60.0 * 2f64.ln() / 3f64.ln())).abs() < 1e-9,
            "{one}"
        );
        assert_eq!(timeout(min, max, 2, 2), min);
        assert_eq!(timeout(min, max, 5, 2), min);
        assert_eq!(timeout(min, max, 3, 0), min);
    }

    #[test]
    fn confirmations_shrink_the_deadline_once_each() {
        let min = Duration::from_secs(4);
        let max = Duration::from_secs(24);
        let mut s = Suspicion::new(3, Time::from_secs(10), NodeId(1), min, max, 2);
        assert_eq!(s.deadline, Time::from_secs(34));
        assert!(!s.confirm(NodeId(1)));
        assert!(s.confirm(NodeId(2)));
        let after_one = s.deadline;
        assert!(after_one < Time::from_secs(34));
        assert!(s.confirm(NodeId(3)));
        assert_eq!(s.deadline, Time::from_secs(14));
        s.postpone(Duration::from_secs(5));
        assert_eq!(s.deadline, Time::from_secs(19));
    }

    #[test]
    fn stalls_postpone_a_suspicion_by_at_most_its_longest_timeout() {
        let min = Duration::from_secs(4);
        let max = Duration::from_secs(10);
        let mut s = Suspicion::new(0, Time::from_secs(0), NodeId(1), min, max, 0);
        assert_eq!(s.deadline, Time::from_secs(4));
        // A driver late by 300 ms at every call, forever: the deadline stops moving.
        for _ in 0..1_000 {
            s.postpone(Duration::from_millis(300));
        }
        assert_eq!(s.deadline, Time::from_secs(14));
        assert!(!s.defer_to(Time::from_secs(15)), "the budget is spent");
        assert_eq!(s.deadline, Time::from_secs(14));
    }

    #[test]
    fn the_guard_defers_within_the_budget() {
        let min = Duration::from_secs(4);
        let mut s = Suspicion::new(0, Time::from_secs(0), NodeId(1), min, min, 0);
        s.postpone(Duration::from_secs(1));
        assert!(s.defer_to(Time::from_secs(7)));
        assert_eq!(s.deadline, Time::from_secs(7));
        // 1 s + 2 s used of 4 s: another 2 s is too much.
        assert!(!s.defer_to(Time::from_secs(9)));
        assert!(s.defer_to(Time::from_secs(8)));
    }

    proptest! {
        #[test]
        fn timeout_is_monotone_and_bounded(min_ms in 1u64..100_000, extra in 0u64..100_000, c in 0u32..20, k in 0u32..20) {
            let min = Duration::from_millis(min_ms);
            let max = min + Duration::from_millis(extra);
            let a = timeout(min, max, c, k);
            let b = timeout(min, max, c + 1, k);
            prop_assert!(b <= a);
            prop_assert!(a >= min && a <= max);
        }
    }
}
