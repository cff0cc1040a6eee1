//! Probing: who this node pings each period, indirect probes through helpers, relaying
//! for others, and what silence turns into (suspicion, conviction).
//!
//! Two probers share this code. Under SWIM and Lifeguard one member per period is
//! pinged, round-robin over a shuffled list; a missed ack leads to ping-req and then to
//! Suspect. Under phi monitors this node pings each member it monitors (its `k` ring
//! predecessors) every period; every ack is a heartbeat for that member's phi-accrual
//! detector, whose thresholds decide when to probe indirectly, suspect and convict.

use std::net::SocketAddr;
use std::time::Duration;

use rand::{Rng, RngCore};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::budget::Work;
use crate::config::Strategy;
use crate::detector::{PhiDetector, PhiParams};
use crate::event::{Cause, MemberState};
use crate::hashing::{Keyed, KeyedMap};
use crate::id::NodeId;
use crate::node::{Node, Outgoing, Primary};
use crate::time::Time;
use crate::timers::OneShot;
use crate::wire;

/// Most ping-reqs served at once: a flood of ping-reqs cannot make this node send
/// without bound.
const MAX_RELAYS: usize = 256;

/// What a pending probe is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    /// SWIM's one probe per period (its indirect round reuses the seq).
    Swim { indirect_sent: bool },
    /// A monitor's periodic ping.
    Monitor,
    /// A monitor's indirect round for a silent member.
    Indirect,
    /// A ping this node sends on behalf of `requester`, to `to`.
    Relay {
        requester: SocketAddr,
        requester_id: NodeId,
        seq: u32,
        to: SocketAddr,
    },
    /// A round (ping-req to helpers and a direct ping) corroborating a refusal.
    Corroborate,
    /// The direct ping, carrying the suspicion, that a suspicion no one else confirmed
    /// sends its subject before it convicts (see `Node::on_suspicion_timeout`).
    LastChance,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub kind: ProbeKind,
    pub target: NodeId,
    pub started: Time,
    pub expected_nacks: u32,
    pub nacks: u32,
}

impl Pending {
    pub(crate) fn new(kind: ProbeKind, target: NodeId, started: Time) -> Pending {
        Pending {
            kind,
            target,
            started,
            expected_nacks: 0,
            nacks: 0,
        }
    }
}

/// Under phi monitors, what this node keeps about the members it monitors.
#[derive(Debug)]
pub(crate) struct Monitoring {
    /// The members it monitors, each with its detector.
    pub set: KeyedMap<NodeId, MonitorState>,
    /// The detectors' parameters.
    pub params: PhiParams,
    /// `y` for `phi_suspect` and `phi_convict`, solved once.
    pub y_suspect: f64,
    pub y_convict: f64,
    /// The round trip of monitor pings, smoothed: what "an answer is late" means.
    pub rtt: RoundTrip,
}

/// A smoothed round trip and its mean deviation (RFC 6298's estimator, in whole
/// nanoseconds so every platform computes the same deadlines).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RoundTrip {
    srtt_ns: u64,
    rttvar_ns: u64,
}

/// The soonest a monitor ping is sent again: below a few milliseconds a healthy but
/// busy process (a scheduler tick, a short collection) answers late often enough that
/// the second ping would be routine traffic rather than a look at a silence.
pub(crate) const RECHECK_MIN: Duration = Duration::from_millis(5);

impl RoundTrip {
    /// One round-trip sample.
    pub fn sample(&mut self, rtt: Duration) {
        let r = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        if self.srtt_ns == 0 {
            self.srtt_ns = r.max(1);
            self.rttvar_ns = r / 2;
        } else {
            // rttvar = 3/4 rttvar + 1/4 |srtt - r|; srtt = 7/8 srtt + 1/8 r.
            let dev = self.srtt_ns.abs_diff(r);
            self.rttvar_ns = (self.rttvar_ns / 4) * 3 + dev / 4;
            self.srtt_ns = ((self.srtt_ns / 8) * 7 + r / 8).max(1);
        }
    }

    /// How long after a ping its silence is beyond the normal round trip: srtt + 4 ×
    /// rttvar, at least [`RECHECK_MIN`], at most `cap`. Before any sample: `cap`.
    pub fn late_after(&self, cap: Duration) -> Duration {
        if self.srtt_ns == 0 {
            return cap.max(RECHECK_MIN);
        }
        let ns = self
            .srtt_ns
            .saturating_add(self.rttvar_ns.saturating_mul(4));
        Duration::from_nanos(ns).clamp(RECHECK_MIN, cap.max(RECHECK_MIN))
    }
}

/// Probes in flight and SWIM's round-robin order.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    pending: KeyedMap<u32, Pending>,
    relays: usize,
    /// SWIM's probe order: a shuffled list of members walked in turn, so each member is
    /// probed within `2n − 1` periods at worst.
    order: Vec<NodeId>,
    cursor: usize,
}

impl Probes {
    /// No probes yet; the index of probes in flight hashes under `hasher`.
    pub(crate) fn new(hasher: Keyed) -> Probes {
        Probes {
            pending: KeyedMap::with_hasher(hasher),
            ..Probes::default()
        }
    }

    /// Records a probe under a fresh random seq: unpredictable, so a host off the path
    /// cannot forge the ack that would keep a dead member alive.
    pub(crate) fn insert(&mut self, rng: &mut Xoshiro256PlusPlus, p: Pending) -> u32 {
        let mut seq = rng.next_u32();
        // Bounded: with at most a few hundred probes in flight a clash is rare.
        for _ in 0..4 {
            if !self.pending.contains_key(&seq) {
                break;
            }
            seq = rng.next_u32();
        }
        if let Some(old) = self.pending.insert(seq, p)
            && matches!(old.kind, ProbeKind::Relay { .. })
        {
            self.relays -= 1;
        }
        if matches!(p.kind, ProbeKind::Relay { .. }) {
            self.relays += 1;
        }
        seq
    }

    /// The probe in flight under `seq`.
    pub(crate) fn get(&self, seq: u32) -> Option<&Pending> {
        self.pending.get(&seq)
    }

    fn remove(&mut self, seq: u32) -> Option<Pending> {
        let p = self.pending.swap_remove(&seq)?;
        if matches!(p.kind, ProbeKind::Relay { .. }) {
            self.relays -= 1;
        }
        Some(p)
    }

    /// Drops every probe in flight (their outcome spans our own stall).
    pub fn forget_in_flight(&mut self) {
        self.pending.clear();
        self.relays = 0;
    }

    /// Forgets probes older than `horizon` that no timer will end (a monitor's ping
    /// whose ack never came; a relay under SWIM, which sends no nacks). Probes whose
    /// round a timer ends (SWIM probes, indirect rounds) are left to that timer.
    fn purge(&mut self, horizon: Time) {
        let before = self.pending.len();
        self.pending.retain(|_, p| {
            p.started >= horizon || matches!(p.kind, ProbeKind::Swim { .. } | ProbeKind::Indirect)
        });
        if self.pending.len() != before {
            self.relays = self
                .pending
                .values()
                .filter(|p| matches!(p.kind, ProbeKind::Relay { .. }))
                .count();
        }
    }

    /// Under SWIM, a new member joins the rest of this pass at a random place, so it is
    /// probed within one pass (memberlist does the same). Bounded: a list already twice
    /// the live membership (members flapping) waits for the next reshuffle instead.
    pub fn member_joined(&mut self, id: NodeId, live: usize, rng: &mut Xoshiro256PlusPlus) {
        if self.order.len() >= 2 * live + 16 {
            return;
        }
        let at = rng.random_range(self.cursor.min(self.order.len())..=self.order.len());
        self.order.insert(at, id);
    }
}

/// What a monitor keeps about one monitored member.
#[derive(Clone, Debug)]
pub(crate) struct MonitorState {
    /// Where the target lives, kept here so the per-period ping does not touch the
    /// member table (a cache miss per target per period in large clusters).
    pub addr: SocketAddr,
    pub detector: PhiDetector,
    /// The indirect round in flight, if any.
    pub indirect: Option<u32>,
    /// This period's ping while it may still be sent once more (see `on_recheck`).
    pub last_ping: Option<u32>,
    /// When a peer's refusal report last made this monitor probe at once (at most once
    /// per probe interval per member).
    pub early_at: Option<Time>,
}

/// What a monitor's detector says about a member right now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorView {
    /// Ack inter-arrival samples recorded.
    pub samples: usize,
    /// Mean inter-arrival.
    pub mean: Duration,
    /// Standard deviation of inter-arrivals (before the `min_std_dev` floor).
    pub std_dev: Duration,
    /// Phi now (with `acceptable_pause`, as conviction uses it).
    pub phi: f64,
    /// Silence since the last ack.
    pub silence: Duration,
    /// Silence after which this monitor probes indirectly and may suspect.
    pub silence_to_suspect: Duration,
    /// Silence after which this monitor convicts.
    pub silence_to_convict: Duration,
}

impl Node {
    /// One protocol period's probes.
    pub(crate) fn probe_round(&mut self) {
        let now = self.now;
        let horizon = now - self.local_health.scale(self.cfg.probe_interval) * 2;
        self.probes.purge(horizon);
        match self.cfg.strategy {
            Strategy::PhiMonitors => {
                // By index: sending does not change the monitor set, and collecting the
                // keys would allocate every period.
                for i in 0..self.monitoring.set.len() {
                    if let Some((&target, _)) = self.monitoring.set.get_index(i) {
                        let seq = self.send_ping(target, ProbeKind::Monitor);
                        if let Some((_, m)) = self.monitoring.set.get_index_mut(i) {
                            m.last_ping = seq;
                        }
                    }
                }
                if !self.monitoring.set.is_empty() {
                    let cap = self.local_health.scale(self.cfg.probe_timeout) / 2;
                    let after = self.monitoring.rtt.late_after(cap);
                    self.timers.schedule(now + after, OneShot::Recheck);
                }
            }
            Strategy::Swim | Strategy::Lifeguard => {
                if let Some(target) = self.next_swim_target() {
                    self.send_ping(
                        target,
                        ProbeKind::Swim {
                            indirect_sent: false,
                        },
                    );
                }
            }
        }
    }

    fn next_swim_target(&mut self) -> Option<NodeId> {
        // Bounded: one pass over the list, then one reshuffle and one more pass.
        for _ in 0..2 {
            while self.probes.cursor < self.probes.order.len() {
                let id = self.probes.order[self.probes.cursor];
                self.probes.cursor += 1;
                if self.members.get(id).is_some_and(|e| e.state.is_live()) && id != self.id() {
                    return Some(id);
                }
            }
            let order = &mut self.probes.order;
            order.clear();
            order.extend(self.members.live_peers().iter().copied());
            // Fisher-Yates with the node's seeded RNG.
            for i in (1..order.len()).rev() {
                let j = self.rng.random_range(0..=i);
                order.swap(i, j);
            }
            self.probes.cursor = 0;
        }
        None
    }

    /// Pings `target` under a fresh seq with its timeout; returns the seq.
    pub(crate) fn send_ping(&mut self, target: NodeId, kind: ProbeKind) -> Option<u32> {
        let cached = match kind {
            ProbeKind::Monitor => self.monitoring.set.get(&target).map(|m| m.addr),
            _ => None,
        };
        let to = cached.or_else(|| self.members.get(target).map(|e| e.addr))?;
        let now = self.now;
        let seq = self
            .probes
            .insert(&mut self.rng, Pending::new(kind, target, now));
        self.stats.probes_sent += 1;
        self.outbox.push_back(Outgoing {
            to,
            to_id: Some(target),
            primary: Primary::Ping { seq, target },
        });
        let timeout = self.local_health.scale(self.cfg.probe_timeout);
        self.timers
            .schedule(now + timeout, OneShot::ProbeTimeout(seq));
        Some(seq)
    }

    /// A round trip (and four deviations) after a probe round, each monitor ping still
    /// unanswered goes out once more, rather than waiting a whole period: a lost ping,
    /// or a lost refusal of it, costs a few milliseconds instead of a period, which is
    /// what makes a crashed member's first refusal arrive early under loss. At most one
    /// extra ping per monitored member per period, and only for pings gone unanswered
    /// beyond the usual round trip, so steady-state traffic grows by the loss rate.
    pub(crate) fn on_recheck(&mut self) {
        for i in 0..self.monitoring.set.len() {
            let Some((&target, m)) = self.monitoring.set.get_index_mut(i) else {
                continue;
            };
            let Some(seq) = m.last_ping.take() else {
                continue;
            };
            let to = m.addr;
            if !self.probes.pending.contains_key(&seq) {
                continue;
            }
            self.stats.probes_rechecked += 1;
            self.outbox.push_back(Outgoing {
                to,
                to_id: Some(target),
                primary: Primary::Ping { seq, target },
            });
        }
    }

    /// A peer suspects `target` because the network refused its probe. Where this
    /// node monitors `target` (phi monitors), it pings it at once rather than at its
    /// next period: its own refusal, if one comes, is the second observer's evidence
    /// (see `refusal`), and an ack proves the report wrong. At most once per probe
    /// interval per member, and only by its `monitors` monitors, so a report costs the
    /// crashed host a handful of datagrams, not one per member.
    pub(crate) fn probe_on_report(&mut self, target: NodeId) {
        let now = self.now;
        let interval = self.cfg.probe_interval;
        let Some(m) = self.monitoring.set.get_mut(&target) else {
            return;
        };
        if m.early_at
            .is_some_and(|t| now.saturating_since(t) < interval)
        {
            return;
        }
        m.early_at = Some(now);
        self.stats.probes_on_report += 1;
        self.send_ping(target, ProbeKind::Monitor);
    }

    /// Sends ping-req for `target` to up to `indirect_checks` random helpers under `seq`.
    /// Returns the number of helpers asked.
    pub(crate) fn send_ping_reqs(&mut self, seq: u32, target: NodeId) -> u32 {
        let Some(e) = self.members.get(target) else {
            return 0;
        };
        // Shared by the helpers' copies of the ping-req.
        let addr = bytes::Bytes::copy_from_slice(e.packed.addr_wire());
        let mut helpers = std::mem::take(&mut self.scratch.helpers);
        self.random_peers(self.cfg.indirect_checks, Some(target), &mut helpers);
        for &h in &helpers {
            if let Some(he) = self.members.get(h) {
                self.outbox.push_back(Outgoing {
                    to: he.addr,
                    to_id: Some(h),
                    primary: Primary::PingReq {
                        seq,
                        target,
                        addr: addr.clone(),
                    },
                });
            }
        }
        let n = helpers.len() as u32;
        self.scratch.helpers = helpers;
        n
    }

    pub(crate) fn on_ack(&mut self, seq: u32, _from: SocketAddr) {
        let Some(p) = self.probes.pending.get(&seq).copied() else {
            return;
        };
        match p.kind {
            ProbeKind::Relay {
                requester,
                requester_id,
                seq: rseq,
                ..
            } => {
                self.finish_probe(seq);
                self.outbox.push_back(Outgoing {
                    to: requester,
                    to_id: Some(requester_id),
                    primary: Primary::Ack { seq: rseq },
                });
            }
            ProbeKind::LastChance => {
                self.finish_probe(seq);
                self.stats.acks_received += 1;
                self.last_answer = Some(self.now);
            }
            ProbeKind::Swim { .. } | ProbeKind::Indirect => {
                if p.kind
                    == (ProbeKind::Swim {
                        indirect_sent: false,
                    })
                {
                    // A direct ping answered directly: a round-trip sample.
                    self.monitoring
                        .rtt
                        .sample(self.now.saturating_since(p.started));
                }
                self.finish_probe(seq);
                self.stats.acks_received += 1;
                self.last_answer = Some(self.now);
                self.local_health.apply(-1);
                if p.kind == ProbeKind::Indirect {
                    self.heartbeat(p.target);
                }
            }
            ProbeKind::Monitor => {
                self.finish_probe(seq);
                self.stats.acks_received += 1;
                self.last_answer = Some(self.now);
                self.local_health.apply(-1);
                // Sampled from the first send even when the ping went out twice: that
                // over-estimates only when the first copy was lost, which errs toward
                // fewer rechecks and a longer grace. Karn's rule (no sample from a
                // resent ping) would freeze the estimate once the round trip rose past
                // the threshold: every ping resent, none sampled, for good.
                if let Some(m) = self.monitoring.set.get_mut(&p.target)
                    && m.last_ping == Some(seq)
                {
                    m.last_ping = None;
                }
                self.monitoring
                    .rtt
                    .sample(self.now.saturating_since(p.started));
                self.heartbeat(p.target);
            }
            ProbeKind::Corroborate => {
                // It answered: whatever was refused, it was not this member's process.
                self.stats.acks_received += 1;
                self.withdraw_refusal(p.target);
                self.heartbeat(p.target);
            }
        }
    }

    /// An ack from `target` (directly or through a helper) at a monitor.
    fn heartbeat(&mut self, target: NodeId) {
        let now = self.now;
        let Some(m) = self.monitoring.set.get_mut(&target) else {
            return;
        };
        m.detector.heartbeat(now);
        if let Some(seq) = m.indirect.take() {
            self.finish_probe(seq);
        }
        self.schedule_convict(target);
    }

    /// When this monitor may convict `target` by silence: where phi (with
    /// `acceptable_pause`) reaches `phi_convict`, pushed later by one probe interval per
    /// point of local health, so a struggling observer is slower to accuse, never faster.
    pub(crate) fn convict_deadline(&self, m: &MonitorState) -> Option<Time> {
        let at = m.detector.deadline(self.monitoring.y_convict, true)?;
        Some(at + self.cfg.probe_interval * self.local_health.score())
    }

    pub(crate) fn schedule_convict(&mut self, target: NodeId) {
        let Some(at) = self
            .monitoring
            .set
            .get(&target)
            .and_then(|m| self.convict_deadline(m))
        else {
            return;
        };
        // Moved on every ack. Leaving an earlier timer to fire and re-arm saved 1.5 %
        // of the node's instructions per period but cost the simulator 1 % more (a
        // wake-up per re-arm is an event), so the timer simply moves.
        self.timers.schedule(at, OneShot::Convict(target));
    }

    /// Forgets probe `seq` and cancels its timers (nothing left for them to decide).
    pub(crate) fn finish_probe(&mut self, seq: u32) -> Option<Pending> {
        let p = self.probes.remove(seq)?;
        // Only the timers this kind of probe arms: each cancel is an ordered-set lookup.
        match p.kind {
            ProbeKind::Swim { .. } => {
                self.timers.cancel(OneShot::ProbeTimeout(seq));
                self.timers.cancel(OneShot::IndirectEnd(seq));
            }
            ProbeKind::Monitor | ProbeKind::LastChance => {
                self.timers.cancel(OneShot::ProbeTimeout(seq))
            }
            ProbeKind::Indirect => self.timers.cancel(OneShot::IndirectEnd(seq)),
            ProbeKind::Relay { .. } => self.timers.cancel(OneShot::RelayNack(seq)),
            ProbeKind::Corroborate => {}
        }
        Some(p)
    }

    pub(crate) fn on_probe_timeout(&mut self, seq: u32) {
        let Some(p) = self.probes.pending.get(&seq).copied() else {
            return;
        };
        match p.kind {
            ProbeKind::Swim {
                indirect_sent: false,
            } => {
                let helpers = self.send_ping_reqs(seq, p.target);
                if let Some(pp) = self.probes.pending.get_mut(&seq) {
                    pp.kind = ProbeKind::Swim {
                        indirect_sent: true,
                    };
                    pp.expected_nacks = if self.cfg.strategy.lifeguard() {
                        helpers
                    } else {
                        0
                    };
                }
                if helpers > 0 {
                    self.stats.indirect_probes += 1;
                }
                let wait = self.local_health.scale(self.cfg.probe_timeout);
                self.timers
                    .schedule(self.now + wait, OneShot::IndirectEnd(seq));
            }
            ProbeKind::Monitor => {
                // The ping stays pending: a late ack is still a heartbeat. Look closer
                // only if the silence is already suspicious for this member's rhythm.
                self.maybe_probe_indirectly(p.target);
            }
            ProbeKind::LastChance => {
                // Unanswered: the suspicion's next timer decides.
                self.finish_probe(seq);
            }
            _ => {}
        }
    }

    /// A monitor starts an indirect round for `target` if its silence crossed
    /// `phi_suspect` and no round is in flight.
    fn maybe_probe_indirectly(&mut self, target: NodeId) {
        let now = self.now;
        let Some(m) = self.monitoring.set.get(&target) else {
            return;
        };
        if m.indirect.is_some() {
            return;
        }
        let due = m
            .detector
            .deadline(self.monitoring.y_suspect, false)
            .is_some_and(|at| at <= now);
        if !due {
            return;
        }
        let seq = self.probes.insert(
            &mut self.rng,
            Pending::new(ProbeKind::Indirect, target, now),
        );
        let helpers = self.send_ping_reqs(seq, target);
        // Also ping it directly once more under the round's seq: with no helpers (tiny
        // clusters) this is the only second chance.
        if let Some(e) = self.members.get(target) {
            self.outbox.push_back(Outgoing {
                to: e.addr,
                to_id: Some(target),
                primary: Primary::Ping { seq, target },
            });
        }
        if let Some(pp) = self.probes.pending.get_mut(&seq) {
            pp.expected_nacks = helpers;
        }
        if let Some(m) = self.monitoring.set.get_mut(&target) {
            m.indirect = Some(seq);
        }
        self.stats.indirect_probes += 1;
        let wait = self.local_health.scale(self.cfg.probe_timeout);
        self.timers.schedule(now + wait, OneShot::IndirectEnd(seq));
    }

    pub(crate) fn on_indirect_end(&mut self, seq: u32) {
        let Some(p) = self.finish_probe(seq) else {
            return;
        };
        self.stats.probes_failed += 1;
        let missing = p.expected_nacks.saturating_sub(p.nacks);
        if self.cfg.strategy.lifeguard() {
            // Lifeguard, as memberlist applies it: helpers that nacked answered us, so
            // our own links work and the failure is the target's; each helper that did
            // not even nack hints that the problem may be ours. With no helper to ask,
            // the failure itself counts. Counting every failure (the paper's table)
            // raised each monitor's health when its target really died, and under phi
            // monitors health delays the conviction deadline by a period per point:
            // a 4.5 s SIGSTOP (1.5 x acceptable_pause) escaped conviction in the chaos
            // run that way.
            let delta = if p.expected_nacks > 0 { missing } else { 1 };
            self.local_health.apply(delta as i32);
        }
        match p.kind {
            ProbeKind::Swim { .. } => self.suspect(p.target, Cause::Silence),
            ProbeKind::Indirect => {
                if let Some(m) = self.monitoring.set.get_mut(&p.target)
                    && m.indirect == Some(seq)
                {
                    m.indirect = None;
                }
                if p.expected_nacks > 0 && p.nacks == 0 {
                    // Not one helper answered, not even with a nack: we are the one cut
                    // off. Accusing anyone now would be accusing on our own behalf.
                    self.stats.suspicions_withheld += 1;
                    return;
                }
                self.suspect(p.target, Cause::Silence);
                self.maybe_convict_by_phi(p.target);
            }
            _ => {}
        }
    }

    /// A monitor's conviction deadline passed.
    pub(crate) fn on_convict_deadline(&mut self, target: NodeId) {
        let Some(m) = self.monitoring.set.get(&target) else {
            return;
        };
        match self.convict_deadline(m) {
            None => return,
            Some(at) if at > self.now => {
                // Local health rose since the timer was armed (each point pushes the
                // deadline a period later) and no ack re-armed it: look again then.
                self.timers.schedule(at, OneShot::Convict(target));
                return;
            }
            Some(_) => {}
        }
        if !self.maybe_convict_by_phi(target) {
            // Not yet suspected by us (an indirect round is still out, or it refuted
            // while staying silent to us): probe indirectly; that round's end decides.
            self.maybe_probe_indirectly(target);
        }
    }

    /// Convicts `target` if this node has suspected it for at least a refutation window
    /// and phi has crossed `phi_convict`. The window (`probe_interval + probe_timeout`)
    /// guarantees a live member one buddy-system ping and its answer between our
    /// Suspect and our Dead; a conviction due earlier is re-checked when it ends.
    fn maybe_convict_by_phi(&mut self, target: NodeId) -> bool {
        let now = self.now;
        let Some(m) = self.monitoring.set.get(&target) else {
            return false;
        };
        if self.convict_deadline(m).is_none_or(|at| at > now) {
            return false;
        }
        let Some(e) = self.members.get(target) else {
            return false;
        };
        if e.state != MemberState::Suspect {
            return false;
        }
        let window_end = e.since + self.cfg.probe_interval + self.cfg.probe_timeout;
        if now < window_end {
            self.timers.schedule(window_end, OneShot::Convict(target));
            return true;
        }
        if self.convict(target, Cause::Silence) {
            return true;
        }
        if now < self.stall.until {
            // Our own stall just ended: look again once the guard has passed.
            self.timers
                .schedule(self.stall.until, OneShot::Convict(target));
        }
        false
    }

    pub(crate) fn on_ping_req(&mut self, from: SocketAddr, sender: NodeId, r: wire::PingReq) {
        let target = NodeId(r.target);
        if target == self.id() {
            // We are the one they cannot reach: answer them directly.
            self.outbox.push_back(Outgoing {
                to: from,
                to_id: Some(sender),
                primary: Primary::Ack { seq: r.seq },
            });
            return;
        }
        let limit = self.cfg.max_relays_per_source as u32;
        if self.probes.relays >= MAX_RELAYS || !self.spend(from, Work::Relay, limit) {
            self.stats.relays_refused += 1;
            return;
        }
        let Ok(addr) = wire::decode_addr(&r.target_addr) else {
            return;
        };
        self.stats.relays_served += 1;
        let now = self.now;
        let kind = ProbeKind::Relay {
            requester: from,
            requester_id: sender,
            seq: r.seq,
            to: addr,
        };
        let seq = self
            .probes
            .insert(&mut self.rng, Pending::new(kind, target, now));
        self.outbox.push_back(Outgoing {
            to: addr,
            to_id: Some(target),
            primary: Primary::Ping { seq, target },
        });
        if self.cfg.strategy.lifeguard() {
            // Lifeguard: nack at 80 % of the probe timeout so the requester hears from
            // us before its own deadline and can tell a silent target from a bad link.
            let wait = self.cfg.probe_timeout.mul_f64(0.8);
            self.timers.schedule(now + wait, OneShot::RelayNack(seq));
        }
    }

    pub(crate) fn on_relay_nack(&mut self, seq: u32) {
        let Some(p) = self.probes.pending.get(&seq).copied() else {
            return;
        };
        let ProbeKind::Relay {
            requester,
            requester_id,
            seq: rseq,
            ..
        } = p.kind
        else {
            return;
        };
        self.finish_probe(seq);
        self.send_nack(requester, requester_id, rseq, false);
    }

    /// A helper's nack to the requester of relay `rseq`; `refused`: the target's port
    /// was reported closed, rather than the target merely silent.
    pub(crate) fn send_nack(
        &mut self,
        requester: SocketAddr,
        requester_id: NodeId,
        rseq: u32,
        refused: bool,
    ) {
        self.stats.nacks_sent += 1;
        self.outbox.push_back(Outgoing {
            to: requester,
            to_id: Some(requester_id),
            primary: Primary::Nack { seq: rseq, refused },
        });
    }

    /// `refused`: the helper's own ping to the target was refused by the network.
    pub(crate) fn on_nack(&mut self, seq: u32, refused: bool) {
        let Some(p) = self.probes.pending.get_mut(&seq) else {
            return;
        };
        p.nacks += 1;
        self.stats.nacks_received += 1;
        // A helper heard our ping-req: what this node sends gets out.
        self.last_answer = Some(self.now);
        if refused && p.kind == ProbeKind::Corroborate {
            let target = p.target;
            self.refusal_corroborated(target);
        }
    }

    /// Under phi monitors, follows ring changes: new targets get a fresh detector whose
    /// silence counts from now, targets no longer ours are dropped.
    pub(crate) fn refresh_monitors(&mut self) {
        if self.cfg.strategy != Strategy::PhiMonitors {
            return;
        }
        let mut targets = std::mem::take(&mut self.scratch.targets);
        self.members
            .monitored_by_local(self.cfg.monitors, &mut targets);
        self.monitoring.set.retain(|id, _| targets.contains(id));
        let now = self.now;
        for &t in &targets {
            let Some(addr) = self.members.get(t).map(|e| e.addr) else {
                continue;
            };
            match self.monitoring.set.get_mut(&t) {
                Some(m) => m.addr = addr,
                None => {
                    let mut detector = PhiDetector::new(&self.monitoring.params);
                    detector.restart_silence(now);
                    self.monitoring.set.insert(
                        t,
                        MonitorState {
                            addr,
                            detector,
                            indirect: None,
                            last_ping: None,
                            early_at: None,
                        },
                    );
                    self.schedule_convict(t);
                }
            }
        }
        self.scratch.targets = targets;
    }

    pub(crate) fn detector_view(&self, m: &MonitorState) -> DetectorView {
        let d = &m.detector;
        DetectorView {
            samples: d.samples(),
            mean: d.mean(),
            std_dev: d.std_dev(),
            phi: d.phi(self.now, true),
            silence: d.last_arrival().map_or(Duration::ZERO, |t| self.now - t),
            silence_to_suspect: d.silence_for(self.cfg.phi_suspect, false),
            silence_to_convict: d.silence_for(self.cfg.phi_convict, true),
        }
    }
}
