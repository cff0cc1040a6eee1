//! Refusals: the network's word that a member's port is closed (ICMP port unreachable,
//! or a refused connection, after a datagram this node sent it).
//!
//! Silence cannot tell a crashed process from a paused one, so the silence path must wait
//! out `acceptable_pause`. But a process that crashed on a live host leaves evidence: its
//! host's kernel answers every datagram sent to the closed port with a refusal. A paused
//! process keeps its socket open, queues what it is sent, and produces none. So a
//! refusal, corroborated, convicts within round trips instead of `acceptable_pause`.
//!
//! A refusal counts only if it proves itself: the bytes it quotes must match a probe
//! this node sent to that address lately (see `probe_tokens`, RFC 5927's check of ICMP
//! errors against TCP's sequence numbers). Others are counted
//! ([`NodeStats::refusals_unverified`](crate::NodeStats::refusals_unverified)) and change
//! nothing. A proven refusal is evidence, not a verdict:
//! - it is ignored while the member keeps talking to us (a datagram from it within
//!   `probe_timeout`) or has only just turned Alive here (within `probe_timeout`: the
//!   refused datagram may predate it), and any datagram from it afterwards withdraws it;
//! - the member is suspected at once (cause [`Cause::Refused`]) and pinged directly
//!   with the suspicion, so a live member wrongly reported answers and refutes;
//! - helpers are asked to probe it (ping-req). A helper whose own relayed ping is refused,
//!   by a refusal that proves itself against that very ping, says so at once with a
//!   refused nack: a second host's kernel found the port closed. A peer's suspicion of
//!   the same life with cause Refused is the same evidence (that peer proved its own
//!   refusal before raising it), and where this node monitors a member a peer reports
//!   refused, it pings it at once instead of at its next period (`probe_on_report`);
//! - **the rule**: our own proven refusal plus one independent observer's (a helper's
//!   nack, or a peer's Refused suspicion of the same incarnation) convicts, as soon as
//!   the member has had `refutation_grace` (two late-answer thresholds of the measured
//!   round trip, at least `probe_timeout / 5`, at most `refusal_window`) to answer our
//!   ping. A peer's suspicion counts only with cause Refused, which a confirmation by
//!   silence never carries (accuser and cause travel together). Nothing
//!   here can convict a paused member: it refuses nothing, and the only refusals that
//!   count quote a probe we sent, which an off-path forger cannot see. A forger on the
//!   path can copy probes for every observer, so the grace is what saves a live member
//!   from it (its answer withdraws the refusal), as `refusal_window` did before;
//! - with no helper to ask (a tiny cluster), a second proven refusal of another probe
//!   corroborates, but it is the same observer: that case still waits `refusal_window`
//!   for a refutation. An uncorroborated refusal is left to the silence path, which
//!   waits out `acceptable_pause` as before;
//! - a process restarted on the same address answers from its new life (a higher
//!   incarnation, or an ack), which withdraws the refusal; a conviction already made
//!   applies to the old incarnation only, and the new life's Alive supersedes it (the
//!   application sees the old life Dead, then the member Joined again).

use std::net::SocketAddr;
use std::time::Duration;

use tracing::debug;

use super::probe::{Pending, ProbeKind};
use crate::event::{Cause, MemberState};
use crate::id::NodeId;
use crate::node::{Node, Outgoing, Primary};
use crate::probe_tokens::HORIZON_PERIODS;
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
    /// The soonest a corroborated refusal convicts: our own ping, sent with the
    /// suspicion when the refusal came, has had a few round trips to be answered.
    pub decide_after: Time,
}

impl Node {
    /// The network reported that a datagram this node sent to `addr` was refused (on
    /// Linux, ICMP port unreachable read from the socket's error queue; the runtime does
    /// this). `quoted` is the start of the refused datagram as the error quotes it (the
    /// payload the error queue returns; at least [`QUOTE_PREFIX`](crate::QUOTE_PREFIX)
    /// bytes of it are needed).
    ///
    /// Evidence, not a verdict, and only if it proves itself: the quote must match a
    /// probe this node sent to `addr` within the last two protocol periods; anything
    /// else is counted in [`NodeStats::refusals_unverified`](crate::NodeStats) and
    /// ignored. See the module docs for what a proven refusal does. Reports for
    /// addresses no live member has are counted and ignored too.
    pub fn handle_unreachable(&mut self, now: Time, addr: SocketAddr, quoted: &[u8]) {
        self.observe_time(now);
        self.stats.refusals += 1;
        let horizon = self.cfg.probe_interval * HORIZON_PERIODS;
        let Some(sent) = self.tokens.take(addr, quoted, self.now, horizon) else {
            self.stats.refusals_unverified += 1;
            debug!(%addr, quoted = quoted.len(), "refusal ignored: it quotes no probe we sent there lately");
            return;
        };
        self.relay_refused(sent.seq, addr);
        self.own_refusal(addr);
        self.after_input();
    }

    /// The refused probe was a ping this node relayed for a requester: tell it now,
    /// rather than let it wait for a plain nack that says only "silent". This is the one
    /// way a helper says `refused`, so the requester's corroboration rests on the
    /// helper's own proven refusal.
    fn relay_refused(&mut self, seq: u32, addr: SocketAddr) {
        let relayed = self
            .probes
            .get(seq)
            .is_some_and(|p| matches!(p.kind, ProbeKind::Relay { to, .. } if to == addr));
        if !relayed {
            return;
        }
        if let Some(Pending {
            kind:
                ProbeKind::Relay {
                    requester,
                    requester_id,
                    seq: rseq,
                    ..
                },
            ..
        }) = self.finish_probe(seq)
        {
            self.send_nack(requester, requester_id, rseq, true);
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
        // A peer already suspects this life of the member because its own probe was
        // refused: with ours, two observers' refusals.
        let reported =
            e.state == MemberState::Suspect && e.cause == Cause::Refused && e.accuser != self.id();
        if self
            .refusals
            .get(&id)
            .is_some_and(|r| r.incarnation != incarnation)
        {
            // About an earlier life: it proves nothing about this one.
            self.withdraw_refusal(id);
        }
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
            .insert(&mut self.rng, Pending::new(ProbeKind::Corroborate, id, now));
        let helpers = self.send_ping_reqs(seq, id);
        self.outbox.push_back(Outgoing {
            to: target_addr,
            to_id: Some(id),
            primary: Primary::Ping { seq, target: id },
        });
        // A live member answers that ping (it carries the suspicion) within a round
        // trip. Against a forger on the path, who can make every observer's and every
        // helper's refusal prove itself, that answer is what saves a live member, so no
        // evidence convicts before it has had time to come.
        let grace = self.refutation_grace();
        self.refusals.insert(
            id,
            Refusal {
                at: now,
                incarnation,
                seq,
                helpers,
                corroborated: false,
                decide_after: now + grace,
            },
        );
        self.timers
            .schedule(now + self.cfg.refusal_window, OneShot::RefusalEnd(id));
        if reported {
            self.refusal_corroborated(id);
        }
    }

    /// How long a member under a refusal has to answer this node's ping before
    /// corroborated evidence convicts it: two late-answer thresholds (srtt + 4 rttvar
    /// each) but at least a fifth of `probe_timeout` (100 ms on LAN: room for a
    /// scheduler hiccup or a short collection of a live member, whose answer withdraws
    /// the refusal), stretched by local health like every timeout of a struggling
    /// observer, at most `refusal_window`.
    pub(crate) fn refutation_grace(&self) -> Duration {
        let late = self.monitoring.rtt.late_after(self.cfg.probe_timeout);
        let grace = (late * 2).max(self.cfg.probe_timeout / 5);
        self.local_health.scale(grace).min(self.cfg.refusal_window)
    }

    /// Independent evidence for our own proven refusal of `target`: a helper's nack
    /// saying its own relayed ping was refused (proven against that ping), or a peer's
    /// suspicion of the same life with cause Refused. Two hosts' kernels found the port
    /// closed, so the process is gone: convict now rather than at the window's end
    /// (see the module docs for why this cannot convict a paused member).
    pub(crate) fn refusal_corroborated(&mut self, target: NodeId) {
        let Some(r) = self.refusals.get_mut(&target) else {
            return;
        };
        r.corroborated = true;
        self.decide_refusal(target);
    }

    /// A peer's Suspect or Dead (taken as Suspect) of `target` at `incarnation` says
    /// the network refused its probe. Corroborates our own refusal of that life if we
    /// hold one; otherwise a monitor of `target` looks at once (`probe_on_report`).
    pub(crate) fn peer_reported_refusal(&mut self, target: NodeId, incarnation: u64) {
        if self
            .refusals
            .get(&target)
            .is_some_and(|r| r.incarnation != incarnation)
        {
            self.withdraw_refusal(target);
        }
        match self.refusals.get(&target) {
            Some(_) => self.refusal_corroborated(target),
            None => {
                if self
                    .members
                    .get(target)
                    .is_some_and(|e| e.state.is_live() && e.incarnation == incarnation)
                {
                    self.probe_on_report(target);
                }
            }
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

    /// The window ended. Only a refusal corroborated by this node's own second refusal
    /// (no helper to ask) is still waiting here; independent evidence convicted at once.
    pub(crate) fn on_refusal_end(&mut self, id: NodeId) {
        match self.refusals.get(&id) {
            None => {}
            // Never corroborated: silence decides.
            Some(r) if !r.corroborated => self.withdraw_refusal(id),
            Some(_) => self.decide_refusal(id),
        }
    }

    /// Convicts a corroborated refused member if it is still suspect at the refused
    /// incarnation; a refutation meanwhile (a restart, or a wrong report) withdraws the
    /// refusal, and this node's own stall defers the verdict past its guard.
    fn decide_refusal(&mut self, id: NodeId) {
        let Some(r) = self.refusals.get(&id).copied() else {
            return;
        };
        let current = self.members.get(id).map(|e| (e.state, e.incarnation));
        if current != Some((MemberState::Suspect, r.incarnation)) {
            // Refuted, or convicted meanwhile: nothing left to decide.
            self.withdraw_refusal(id);
            return;
        }
        if self.now < r.decide_after {
            // Corroborated before the member could answer our own ping: decide then.
            self.timers
                .schedule(r.decide_after, OneShot::RefusalEnd(id));
            return;
        }
        if self.convict(id, Cause::Refused) {
            self.refusals.swap_remove(&id);
            self.timers.cancel(OneShot::RefusalEnd(id));
            self.finish_probe(r.seq);
            self.stats.refusal_convictions += 1;
        } else if self.now < self.stall.until && !self.leaving {
            // Our own stall just ended: look again once the guard has passed.
            self.timers
                .schedule(self.stall.until, OneShot::RefusalEnd(id));
        } else {
            self.withdraw_refusal(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::id::Identity;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    /// Two nodes that know each other, exchanging datagrams instantly, until `until`.
    /// Returns the last probe `a` sent to `b` (the datagram, as sent).
    fn pair(until: u64) -> (Node, Node, Vec<u8>) {
        let cfg = Config::lan();
        let mut a = Node::new(Identity::new("a", addr(1)), cfg.clone(), 1, at(0)).unwrap();
        let mut b = Node::new(Identity::new("b", addr(2)), cfg, 2, at(0)).unwrap();
        a.join(at(0), &[]);
        b.join(at(0), &[addr(1)]);
        let mut probe = Vec::new();
        let mut buf = vec![0u8; 2048];
        let mut now = 0;
        while now <= until {
            for _ in 0..64 {
                let mut quiet = true;
                while let Some(t) = a.poll_transmit(at(now), &mut buf) {
                    quiet = false;
                    if buf[0] == (9 << 3) | 5 {
                        probe = buf[..t.len].to_vec();
                    }
                    b.handle_packet(at(now), addr(1), &buf[..t.len]);
                }
                while let Some(t) = b.poll_transmit(at(now), &mut buf) {
                    quiet = false;
                    a.handle_packet(at(now), addr(2), &buf[..t.len]);
                }
                if quiet {
                    break;
                }
            }
            now += 10;
            a.handle_timeout(at(now));
            b.handle_timeout(at(now));
        }
        (a, b, probe)
    }

    /// What a refusal can change: the member's state, the refusals under
    /// corroboration, anything to send.
    fn observable(n: &mut Node) -> (Option<MemberState>, usize, usize) {
        let b = NodeId::from_name("b");
        let mut buf = vec![0u8; 2048];
        let mut sent = 0;
        while n.poll_transmit(n.now, &mut buf).is_some() {
            sent += 1;
        }
        (n.member_state(b), n.refusals.len(), sent)
    }

    #[test]
    fn a_refusal_that_quotes_no_sent_probe_changes_nothing() {
        let (mut a, _b, probe) = pair(5_000);
        assert!(!probe.is_empty(), "a never probed b");
        // Past probe_timeout since b last spoke, so a proven refusal would count.
        let now = a.now + Duration::from_millis(600);
        a.handle_timeout(now);
        let before = observable(&mut a);
        assert_eq!(before, (Some(MemberState::Alive), 0, before.2));
        let stats = a.stats();
        let mut wrong_token = probe.clone();
        wrong_token[1] ^= 1;
        for quote in [
            &wrong_token[..],
            &probe[..crate::probe_tokens::QUOTE_PREFIX - 1],
            &[][..],
        ] {
            a.handle_unreachable(now, addr(2), quote);
            assert_eq!(observable(&mut a), (Some(MemberState::Alive), 0, 0));
        }
        // The right quote, but reported about another address.
        a.handle_unreachable(now, addr(3), &probe);
        assert_eq!(observable(&mut a), (Some(MemberState::Alive), 0, 0));
        assert_eq!(a.stats().refusals_unverified, stats.refusals_unverified + 4);
        assert_eq!(a.stats().refusal_convictions, 0);
    }

    #[test]
    fn a_refusal_that_quotes_a_sent_probe_is_evidence_once() {
        let (mut a, _b, probe) = pair(5_000);
        let now = a.now + Duration::from_millis(600);
        a.handle_timeout(now);
        observable(&mut a);
        let stats = a.stats();
        a.handle_unreachable(now, addr(2), &probe);
        let (state, refusals, sent) = observable(&mut a);
        assert_eq!((state, refusals), (Some(MemberState::Suspect), 1));
        assert!(sent > 0, "no corroboration round went out");
        assert_eq!(a.stats().refusals_unverified, stats.refusals_unverified);
        // The same quote again proves nothing more.
        a.handle_unreachable(now, addr(2), &probe);
        assert_eq!(a.stats().refusals_unverified, stats.refusals_unverified + 1);
    }

    /// A monitor ping left unanswered beyond the usual round trip goes out once more,
    /// at once, rather than at the next period; an answered one never does.
    #[test]
    fn an_unanswered_monitor_ping_goes_out_once_more() {
        let (mut a, _b, _) = pair(5_000);
        assert_eq!(
            a.stats().probes_rechecked,
            0,
            "answered pings were sent twice"
        );
        // From now on b answers nothing.
        let mut buf = vec![0u8; 2048];
        let start = a.now;
        let mut pings = Vec::new();
        for step in 1..=500u64 {
            let now = start + Duration::from_millis(step * 2);
            a.handle_timeout(now);
            while let Some(t) = a.poll_transmit(now, &mut buf) {
                if t.destination == addr(2) && buf[0] == (9 << 3) | 5 {
                    pings.push(now);
                }
            }
        }
        // One period (1 s, in steps of 2 ms): the round's ping, then one more within a
        // few round trips (5 ms at least), and nothing else.
        assert_eq!(
            pings.len(),
            2,
            "pings at {:?}",
            pings
                .iter()
                .map(|t| t.saturating_since(start))
                .collect::<Vec<_>>()
        );
        let gap = pings[1].saturating_since(pings[0]);
        assert!(
            gap >= crate::node::probe::RECHECK_MIN && gap <= Duration::from_millis(12),
            "resent after {gap:?}"
        );
        assert_eq!(a.stats().probes_rechecked, 1);
    }

    #[test]
    fn round_trip_estimate_follows_samples_within_its_bounds() {
        use crate::node::probe::{RECHECK_MIN, RoundTrip};
        let cap = Duration::from_millis(250);
        let mut r = RoundTrip::default();
        assert_eq!(r.late_after(cap), cap, "no sample yet: the cap");
        for _ in 0..50 {
            r.sample(Duration::from_micros(200));
        }
        assert_eq!(
            r.late_after(cap),
            RECHECK_MIN,
            "a fast, steady LAN: the floor"
        );
        for _ in 0..50 {
            r.sample(Duration::from_millis(40));
        }
        let late = r.late_after(cap);
        assert!(late >= Duration::from_millis(40) && late < cap, "{late:?}");
        r.sample(Duration::from_secs(3_600));
        assert_eq!(r.late_after(cap), cap, "an outlier is capped");
    }
}
