//! Refusals: the network's word that a member's port is closed (ICMP port unreachable,
//! or a refused connection, after a datagram this node sent it).
//!
//! Silence cannot tell a crashed process from a paused one, so the silence path must wait
//! out `acceptable_pause`. But a process that crashed on a live host leaves evidence: its
//! host's kernel answers every datagram sent to the closed port with a refusal. A paused
//! process keeps its socket open, queues what it is sent, and produces none. So a
//! refusal, corroborated, convicts in `refusal_window` instead of `acceptable_pause`.
//!
//! A refusal is evidence, not a verdict:
//! - it is ignored while the member keeps talking to us (a datagram from it within
//!   `probe_timeout`) or has only just turned Alive here (within `probe_timeout`: the
//!   refused datagram may predate it), and any datagram from it afterwards withdraws it;
//! - the member is suspected at once (cause [`Cause::Refused`]) and told so (buddy
//!   system), so a live member wrongly reported refutes within the window;
//! - helpers are asked to probe it (ping-req). A helper whose own ping is refused says so
//!   at once with a refused nack: the independent evidence that corroborates ours, since
//!   a forger who fools this node does not also fool the helpers' kernels. With no
//!   helper to ask (a tiny cluster), a second refusal corroborates;
//! - when the window ends, a corroborated member still suspect at the same incarnation
//!   is convicted with cause Refused. An uncorroborated one is left to the silence path,
//!   which waits out `acceptable_pause` as before.

use std::net::SocketAddr;

use tracing::debug;

use crate::event::{Cause, MemberState};
use crate::id::NodeId;
use crate::node::{Node, Outgoing, Primary};
use crate::probe::{Kind, Pending};
use crate::time::Time;
use crate::timers::OneShot;

/// Most refusals under corroboration at once. Each costs a few probes; a burst of
/// reports beyond this (a whole rack gone, or a forger) waits for the silence path.
pub(crate) const MAX_REFUSALS: usize = 64;

/// One member this node saw refused and is corroborating.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refusal {
    /// When the first refusal arrived: the window runs from here.
    pub at: Time,
    /// The member's incarnation then: a refutation ends the matter.
    pub incarnation: u64,
    /// The corroboration round (ping-req to helpers and a direct ping).
    pub seq: u32,
    /// Helpers asked; with none, a second refusal corroborates.
    pub helpers: u32,
    pub corroborated: bool,
}

impl Node {
    /// The network reported `addr` unreachable: a datagram this node sent there was
    /// refused (on Linux, ICMP port unreachable read from the socket's error queue; the
    /// runtime does this). Evidence, not a verdict: see the module docs. Reports for
    /// addresses no live member has are counted and ignored.
    pub fn handle_unreachable(&mut self, now: Time, addr: SocketAddr) {
        self.observe_time(now);
        self.stats.refusals += 1;
        self.relays_refused(addr);
        self.own_refusal(addr);
        self.after_input();
    }

    /// A helper's relayed ping went to a closed port: tell each requester now, rather
    /// than let it wait for a plain nack that says only "silent".
    fn relays_refused(&mut self, addr: SocketAddr) {
        let hits: Vec<u32> = self
            .probes
            .pending_iter()
            .filter(|(_, p)| matches!(p.kind, Kind::Relay { to, .. } if to == addr))
            .map(|(seq, _)| seq)
            .collect();
        for seq in hits {
            let Some(p) = self.finish_probe(seq) else {
                continue;
            };
            if let Kind::Relay {
                requester,
                requester_id,
                seq: rseq,
                ..
            } = p.kind
            {
                self.send_nack(requester, requester_id, rseq, true);
            }
        }
    }

    fn own_refusal(&mut self, addr: SocketAddr) {
        let now = self.now;
        let Some(id) = self.members.live_at(addr) else {
            return;
        };
        let Some(e) = self.members.get(id) else {
            return;
        };
        let recent = |t: Time| now.saturating_since(t) < self.cfg.probe_timeout;
        // A refusal answers a datagram sent a round trip earlier. Within `probe_timeout`
        // of the member turning Alive here, that datagram may have gone to the address
        // before this member was at it: a join to a seed whose process had not bound
        // its port yet (processes started together), or to an earlier life.
        let just_appeared = e.state == MemberState::Alive && recent(e.since);
        if self.leaving || e.heard.is_some_and(recent) || just_appeared {
            debug!(%addr, just_appeared, leaving = self.leaving, "refusal ignored: the member spoke or appeared within probe_timeout");
            return;
        }
        let incarnation = e.incarnation;
        let target_addr = e.addr;
        if let Some(r) = self.refusals.get_mut(&id) {
            if r.helpers == 0 && now > r.at {
                r.corroborated = true;
            }
            return;
        }
        if self.refusals.len() >= MAX_REFUSALS {
            debug!(%addr, "refusal ignored: too many under corroboration");
            return;
        }
        debug!(%addr, "refusal: suspecting, corroborating");
        self.suspect(id, Cause::Refused);
        // One round under one seq: helpers probe it, and we ping it ourselves (under
        // Lifeguard and phi monitors the ping carries the Suspect, so a live member
        // refutes in its ack; under plain SWIM it hears the Suspect by gossip).
        let seq = self
            .probes
            .insert(&mut self.rng, Pending::new(Kind::Corroborate, id, now));
        let helpers = self.send_ping_reqs(seq, id);
        self.outbox.push_back(Outgoing {
            to: target_addr,
            to_id: Some(id),
            primary: Primary::Ping { seq, target: id },
        });
        self.refusals.insert(
            id,
            Refusal {
                at: now,
                incarnation,
                seq,
                helpers,
                corroborated: false,
            },
        );
        self.timers
            .schedule(now + self.cfg.refusal_window, OneShot::RefusalEnd(id));
    }

    /// A helper answered a corroboration round with a refused nack.
    pub(crate) fn refusal_corroborated(&mut self, target: NodeId) {
        if let Some(r) = self.refusals.get_mut(&target) {
            r.corroborated = true;
        }
    }

    /// The member spoke (an ack, or any datagram from its address): the refusal was
    /// stale, transient or forged.
    pub(crate) fn withdraw_refusal(&mut self, id: NodeId) {
        if let Some(r) = self.refusals.swap_remove(&id) {
            self.timers.cancel(OneShot::RefusalEnd(id));
            self.finish_probe(r.seq);
            self.stats.refusals_withdrawn += 1;
        }
    }

    pub(crate) fn on_refusal_end(&mut self, id: NodeId) {
        let Some(r) = self.refusals.get(&id).copied() else {
            return;
        };
        let current = self.members.get(id).map(|e| (e.state, e.incarnation));
        if !r.corroborated || current != Some((MemberState::Suspect, r.incarnation)) {
            // Refuted, convicted meanwhile, or never corroborated: silence decides.
            self.withdraw_refusal(id);
            return;
        }
        if self.convict(id, Cause::Refused) {
            self.refusals.swap_remove(&id);
            self.finish_probe(r.seq);
            self.stats.refusal_convictions += 1;
        } else if self.now < self.guard_until && !self.leaving {
            // Our own stall just ended: look again once the guard has passed.
            self.timers
                .schedule(self.guard_until, OneShot::RefusalEnd(id));
        } else {
            self.withdraw_refusal(id);
        }
    }
}
