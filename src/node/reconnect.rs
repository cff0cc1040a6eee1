//! Members convicted by silence, and how the cluster finds them again if they were only
//! cut off.
//!
//! Silence cannot tell a death from a partition. After a symmetric cut each side holds
//! the other dead, and once the cut heals neither side sends the other anything: probes,
//! gossip and push-pull go to live members only, and gossip queues drained during the
//! cut. Two things bridge the gap, both about members convicted by silence (a refused
//! port is a death, not a cut, and is left out):
//! - **gossip to the dead** (memberlist's GossipToTheDeadTime): for `gossip_to_the_dead`
//!   after a conviction, gossip rounds include the dead member as if it were live, so a
//!   member that was only cut off one way hears its own death and refutes while the news
//!   is still flowing;
//! - **reconnect** (Serf's reconnect, inside the protocol): every `reconnect_interval`,
//!   while such members are remembered (`reconnect_timeout`, 24 h by default: their
//!   addresses outlive `dead_retention`, which forgets the members themselves, so a
//!   partition longer than that still heals), this node push-pulls with one of them, with
//!   probability `dead / live` (capped at 1) so that the cluster as a whole makes about
//!   one attempt per interval after a single death, whatever its size, and every member
//!   makes one per interval when half the cluster is cut off. The exchange shows each
//!   side the other's verdicts: the "dead" refute, and the refutations spread by gossip.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::event::{Cause, MemberState};
use crate::id::NodeId;
use crate::node::{Node, Outgoing, Primary};
use crate::time::Time;
use crate::timers::Periodic;

/// Most members convicted by silence remembered at once; the oldest are forgotten
/// first. Reconnecting needs only one of a cut-off side to answer.
pub(crate) const MAX_SILENCED: usize = 256;

/// Quick reconnects owed at most, one per revival seen (see `note_revival`).
const MAX_QUICK: u8 = 8;

/// One member convicted by silence: when, and where it was, kept for after the member
/// table has forgotten it.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    at: Time,
    id: NodeId,
    addr: SocketAddr,
}

/// Members convicted by silence, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ReconnectCandidates {
    list: VecDeque<Candidate>,
    /// Reconnects to run one `gossip_interval` apart, without the `dead / live` coin.
    quick: u8,
}

impl ReconnectCandidates {
    fn push(&mut self, c: Candidate) {
        self.list.push_back(c);
        if self.list.len() > MAX_SILENCED {
            self.list.pop_front();
        }
    }

    fn contains(&self, id: NodeId) -> bool {
        self.list.iter().any(|c| c.id == id)
    }

    /// Entries convicted at or after `since` (the list is in conviction order).
    fn since(&self, since: Time) -> std::collections::vec_deque::Iter<'_, Candidate> {
        let start = self.list.partition_point(|c| c.at < since);
        self.list.range(start..)
    }
}

impl Node {
    /// Remembers a member just convicted with `cause`, if silence convicted it.
    pub(crate) fn note_conviction(&mut self, id: NodeId, cause: Cause) {
        if cause == Cause::Refused {
            return;
        }
        let now = self.now;
        let Some(addr) = self.members.get(id).map(|e| e.addr) else {
            return;
        };
        self.reconnect_candidates
            .push(Candidate { at: now, id, addr });
        if !self.cfg.reconnect_interval.is_zero() && self.timers.get(Periodic::Reconnect).is_none()
        {
            let first = self.reconnect_interval_jittered();
            self.timers.set(Periodic::Reconnect, now + first);
        }
    }

    /// `reconnect_interval` times a random factor in [0.5, 1.5): the members that
    /// convicted a cut-off side did so within a second of each other, and timers re-armed
    /// at a fixed interval would keep them in a clump that tries all at once, leaving
    /// the rest of the interval without an attempt.
    pub(crate) fn reconnect_interval_jittered(&mut self) -> std::time::Duration {
        let f: f64 = rand::Rng::random_range(&mut self.rng, 0.5..1.5);
        self.cfg.reconnect_interval.mul_f64(f)
    }

    /// Whether `id` is among the members convicted by silence this node remembers.
    pub(crate) fn is_reconnect_candidate(&self, id: NodeId) -> bool {
        self.reconnect_candidates.contains(id)
    }

    /// A member this node held dead by silence is alive after all (it refuted): the cut
    /// that silenced it has healed, and the others it silenced are likely back too. Each
    /// such news owes one quick reconnect, a `gossip_interval` later, so that after a
    /// heal this node reaches the rest of the far side in a few hundred milliseconds
    /// rather than one `reconnect_interval` at a time.
    pub(crate) fn note_revival(&mut self, id: NodeId) {
        if self.cfg.reconnect_interval.is_zero() || !self.reconnect_candidates.contains(id) {
            return;
        }
        self.reconnect_candidates.quick = (self.reconnect_candidates.quick + 1).min(MAX_QUICK);
        let soon = self.now + self.cfg.gossip_interval;
        if self
            .timers
            .get(Periodic::Reconnect)
            .is_none_or(|t| t > soon)
        {
            self.timers.set(Periodic::Reconnect, soon);
        }
    }

    /// Whether `id` is held dead by silence (not refuted, reaped, or since refused).
    fn held_dead_by_silence(&self, id: NodeId) -> bool {
        self.members
            .get(id)
            .is_some_and(|e| e.state == MemberState::Dead && e.cause != Cause::Refused)
    }

    /// Whether `c` is still a reconnect candidate: held dead by silence, or forgotten
    /// since (`dead_retention`) without having been heard of again and with no live
    /// member at its address (one there now means it is gone for good: a knock would
    /// only fetch that member's whole state, again and again).
    fn still_silenced(&self, c: &Candidate) -> bool {
        match self.members.get(c.id) {
            Some(_) => self.held_dead_by_silence(c.id),
            None => self.members.live_at(c.addr).is_none(),
        }
    }

    /// Drops entries older than `reconnect_timeout` or no longer candidates from the
    /// front, and returns how many remain.
    fn prune_silenced(&mut self) -> usize {
        let horizon = self.now.saturating_sub(self.cfg.reconnect_timeout);
        while let Some(&c) = self.reconnect_candidates.list.front() {
            if c.at >= horizon && self.still_silenced(&c) {
                break;
            }
            self.reconnect_candidates.list.pop_front();
        }
        self.reconnect_candidates.list.len()
    }

    /// One member convicted by silence within `gossip_to_the_dead`, picked as often as
    /// a live member would be (memberlist's GossipToTheDeadTime): a member on the far
    /// side of a partition, or cut off one way, that is alive after all hears the
    /// news, including its own death, and refutes; its own queued news (a refutation it
    /// could not send during the cut) reaches us the same way.
    pub(crate) fn recently_dead_pick(&mut self) -> Option<NodeId> {
        if self.cfg.gossip_to_the_dead.is_zero() || self.prune_silenced() == 0 {
            return None;
        }
        let horizon = self.now.saturating_sub(self.cfg.gossip_to_the_dead);
        let n = self.reconnect_candidates.since(horizon).len();
        if n == 0 {
            return None;
        }
        // As if the dead were in the pool the `gossip_fanout` picks come from: one of
        // them lands on a dead member with probability about fanout × n / pool.
        let pool = self.members.live_count() - 1 + n;
        let hits = (self.cfg.gossip_fanout * n).min(pool);
        if rand::Rng::random_range(&mut self.rng, 0..pool) >= hits {
            return None;
        }
        let k = rand::Rng::random_range(&mut self.rng, 0..n);
        let id = self.reconnect_candidates.since(horizon).nth(k)?.id;
        // Gossip needs the member's entry: one forgotten already is left to reconnect.
        self.held_dead_by_silence(id).then_some(id)
    }

    /// The reconnect timer fired: maybe push-pull with one member dead by silence, and
    /// re-arm (at `next`, or sooner while quick reconnects are owed) while any is
    /// remembered.
    pub(crate) fn on_reconnect(&mut self, next: Time) {
        let n = self.prune_silenced();
        if n == 0 || self.cfg.reconnect_interval.is_zero() {
            self.reconnect_candidates.quick = 0;
            return; // off until the next conviction by silence
        }
        let quick = self.reconnect_candidates.quick > 0;
        if quick {
            self.reconnect_candidates.quick -= 1;
        }
        let next = if self.reconnect_candidates.quick > 0 {
            next.min(self.now + self.cfg.gossip_interval)
        } else {
            next
        };
        self.timers.set(Periodic::Reconnect, next);
        if self.leaving {
            return;
        }
        let live = self.members.live_count().saturating_sub(1);
        // With probability min(1, n / live), so the cluster-wide rate stays about one
        // attempt per interval per death (Serf's rule); a quick one always goes.
        if !quick && live > 0 && rand::Rng::random_range(&mut self.rng, 0..live) >= n {
            return;
        }
        let k = rand::Rng::random_range(&mut self.rng, 0..n);
        let c = self.reconnect_candidates.list[k];
        if !self.still_silenced(&c) {
            return;
        }
        let Candidate { id, addr, .. } = c;
        self.stats.reconnects += 1;
        if self.members.get(id).is_some() {
            self.send_digest(addr, Some(id));
        } else {
            // Forgotten since (`dead_retention`): knock as a joiner does, one datagram
            // (our Alive and a digest of us alone). A member alive there answers with
            // everything it knows, its side of the partition included.
            self.outbox.push_back(Outgoing {
                to: addr,
                to_id: None,
                primary: Primary::Join,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_finds_a_time_range() {
        let mut s = ReconnectCandidates::default();
        let addr = "127.0.0.1:7946".parse().unwrap();
        for i in 0..(MAX_SILENCED as u64 + 10) {
            s.push(Candidate {
                at: Time::from_millis(i),
                id: NodeId(i),
                addr,
            });
        }
        assert_eq!(s.list.len(), MAX_SILENCED);
        assert_eq!(s.list.front().map(|e| e.id), Some(NodeId(10)));
        let recent: Vec<u64> = s
            .since(Time::from_millis(MAX_SILENCED as u64 + 7))
            .map(|e| e.id.0)
            .collect();
        assert_eq!(
            recent,
            vec![
                MAX_SILENCED as u64 + 7,
                MAX_SILENCED as u64 + 8,
                MAX_SILENCED as u64 + 9
            ]
        );
        assert_eq!(s.since(Time::from_millis(u64::MAX)).len(), 0);
    }
}
