//! Timers: a fixed table for the periodic ones and an ordered set for the per-probe and
//! per-member ones. One-shots are keyed by what they are for and keep one entry each:
//! re-scheduling replaces the old one (a flapping member cannot pile up timers), and a
//! timer whose purpose is gone (an acked probe) is cancelled so it does not wake the
//! node. Handlers still check that what a timer was set for holds (the probe is still
//! pending, the suspicion still has the same incarnation and deadline), so a timer that
//! outlived its purpose without being cancelled is harmless.

use std::collections::{BTreeMap, BTreeSet};

use crate::id::NodeId;
use crate::time::Time;

/// Periodic timers, one slot each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Periodic {
    /// Start a protocol period: send this period's probes.
    Probe = 0,
    /// Gossip pending updates to `gossip_fanout` random members.
    Gossip = 1,
    /// Push-pull state sync with one random member.
    PushPull = 2,
    /// Re-send join to the seeds.
    JoinRetry = 3,
    /// Forget old tombstones.
    Reap = 4,
    /// Push-pull with a member convicted by silence, in case it was only cut off.
    Reconnect = 5,
}

const PERIODIC: [Periodic; 6] = [
    Periodic::Probe,
    Periodic::Gossip,
    Periodic::PushPull,
    Periodic::JoinRetry,
    Periodic::Reap,
    Periodic::Reconnect,
];

/// One-shot timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OneShot {
    /// A direct probe's timeout.
    ProbeTimeout(u32),
    /// An indirect probe round's deadline (the requester's side).
    IndirectEnd(u32),
    /// A relayed ping's nack deadline (the helper's side).
    RelayNack(u32),
    /// A member's suspicion timeout.
    Suspicion(NodeId),
    /// A monitor's conviction deadline for a member.
    Convict(NodeId),
    /// The end of a refused member's window (see `refusal`).
    RefusalEnd(NodeId),
    /// A round trip and its variance after a probe round: each monitor ping still
    /// unanswered goes out once more (see `Node::on_recheck`).
    Recheck,
}

/// A timer that is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Periodic(Periodic),
    OneShot(OneShot),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    periodic: [Option<Time>; 6],
    oneshot: BTreeSet<(Time, u64, OneShot)>,
    /// Where each one-shot sits in `oneshot` (one entry per key).
    keyed: BTreeMap<OneShot, (Time, u64)>,
    seq: u64,
    /// The node's clock as last observed: nothing is armed earlier than this. A deadline
    /// computed in the past (a conviction whose silence already elapsed) fires at the
    /// next `handle_timeout` either way, but left in the past it would look like a timer
    /// the process overslept, and the node would take it for its own stall.
    floor: Time,
}

impl Timers {
    /// Moves the floor to `now`: later deadlines earlier than `now` are armed at `now`.
    pub fn advance(&mut self, now: Time) {
        self.floor = self.floor.max(now);
    }

    pub fn set(&mut self, t: Periodic, at: Time) {
        self.periodic[t as usize] = Some(at.max(self.floor));
    }

    pub fn get(&self, t: Periodic) -> Option<Time> {
        self.periodic[t as usize]
    }

    pub fn clear(&mut self, t: Periodic) {
        self.periodic[t as usize] = None;
    }

    /// Schedules `t` at `at`, replacing its earlier entry.
    pub fn schedule(&mut self, at: Time, t: OneShot) {
        let at = at.max(self.floor);
        self.seq += 1;
        if let Some((old_at, old_seq)) = self.keyed.insert(t, (at, self.seq)) {
            self.oneshot.remove(&(old_at, old_seq, t));
        }
        self.oneshot.insert((at, self.seq, t));
    }

    /// Cancels a one-shot.
    pub fn cancel(&mut self, t: OneShot) {
        if let Some((at, seq)) = self.keyed.remove(&t) {
            self.oneshot.remove(&(at, seq, t));
        }
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Time> {
        let p = self.periodic.iter().flatten().min().copied();
        let o = self.oneshot.first().map(|(t, _, _)| *t);
        match (p, o) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the earliest timer due at or before `now`, periodic timers
    /// first at equal times (a fixed order keeps runs reproducible).
    pub fn pop_due(&mut self, now: Time) -> Option<(Time, Due)> {
        let p = PERIODIC
            .iter()
            .filter_map(|&t| self.periodic[t as usize].map(|at| (at, t)))
            .min();
        let o = self.oneshot.first().copied();
        match (p, o) {
            (Some((pa, pt)), Some((oa, _, _))) if pa <= oa && pa <= now => {
                self.periodic[pt as usize] = None;
                Some((pa, Due::Periodic(pt)))
            }
            (Some((pa, pt)), None) if pa <= now => {
                self.periodic[pt as usize] = None;
                Some((pa, Due::Periodic(pt)))
            }
            (_, Some((oa, s, ot))) if oa <= now => {
                self.oneshot.remove(&(oa, s, ot));
                self.keyed.remove(&ot);
                Some((oa, Due::OneShot(ot)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_periodic_first_on_ties() {
        let mut t = Timers::default();
        t.schedule(Time::from_millis(5), OneShot::ProbeTimeout(1));
        t.set(Periodic::Gossip, Time::from_millis(5));
        t.set(Periodic::Probe, Time::from_millis(9));
        assert_eq!(t.next(), Some(Time::from_millis(5)));
        assert_eq!(t.pop_due(Time::from_millis(4)), None);
        let now = Time::from_millis(10);
        assert_eq!(t.pop_due(now).unwrap().1, Due::Periodic(Periodic::Gossip));
        assert_eq!(
            t.pop_due(now).unwrap().1,
            Due::OneShot(OneShot::ProbeTimeout(1))
        );
        assert_eq!(t.pop_due(now).unwrap().1, Due::Periodic(Periodic::Probe));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn keyed_timers_keep_one_entry() {
        let mut t = Timers::default();
        let k = OneShot::Suspicion(NodeId(7));
        for i in 1..=100 {
            t.schedule(Time::from_millis(i), k);
        }
        assert_eq!(t.oneshot.len(), 1);
        assert_eq!(t.next(), Some(Time::from_millis(100)));
        t.cancel(k);
        assert_eq!(t.next(), None);
        t.schedule(Time::from_millis(1), OneShot::ProbeTimeout(1));
        t.schedule(Time::from_millis(2), OneShot::ProbeTimeout(2));
        assert_eq!(t.oneshot.len(), 2);
        t.cancel(OneShot::ProbeTimeout(1));
        assert_eq!(t.next(), Some(Time::from_millis(2)));
    }

    #[test]
    fn nothing_is_armed_before_the_floor() {
        let mut t = Timers::default();
        t.advance(Time::from_millis(50));
        t.schedule(Time::from_millis(10), OneShot::Convict(NodeId(1)));
        t.set(Periodic::Gossip, Time::from_millis(20));
        assert_eq!(t.next(), Some(Time::from_millis(50)));
        // The floor never moves back.
        t.advance(Time::from_millis(5));
        t.schedule(Time::from_millis(30), OneShot::ProbeTimeout(3));
        assert_eq!(t.get(Periodic::Gossip), Some(Time::from_millis(50)));
        assert_eq!(t.keyed[&OneShot::ProbeTimeout(3)].0, Time::from_millis(50));
    }
}
