//! Verdicts: applying news about members under SWIM precedence, suspecting, convicting
//! and refuting, and the suspicion timer with its checks before a conviction.

use super::{Node, Outgoing, Primary};
use crate::suspicion::Suspicion;
use std::time::Duration;

use tracing::debug;

use super::probe::ProbeKind;

use crate::config::Strategy;
use crate::dissemination::UpdateKey;
use crate::event::{Cause, Event, MemberState};
use crate::id::NodeId;
use crate::members::{Applied, Update};
use crate::timers::OneShot;

/// What a suspicion only its first accuser raised does when its timer fires.
pub(super) enum Private {
    /// It waits (its timer is set again).
    Waits,
    /// This node seems cut off: it convicts for itself, without telling anyone.
    Isolated,
    /// It is decided as any suspicion is.
    Decide,
}

impl Node {
    /// Applies news about a member under SWIM precedence, then does what the change
    /// implies: events, re-gossip, suspicion timers, ring changes.
    ///
    /// A state-sync delta (`via_sync`) about a member we did not know is not re-gossiped:
    /// it is old news to the cluster (a joiner learning everyone would otherwise start
    /// `n` broadcasts). One that changes what we knew is news — after a partition heals
    /// it is how one side's changes reach the other — and is re-gossiped.
    pub(crate) fn process_update(&mut self, mut u: Update<'_>, via_sync: bool) {
        if u.id == self.id() {
            self.news_about_self(&u);
            return;
        }
        if via_sync
            && u.state == MemberState::Dead
            && self.members.get(u.id).is_some_and(|e| e.state.is_live())
        {
            // memberlist's rule for state syncs: a peer's Dead about a member we hold
            // live is taken as a suspicion. After a partition heals, each side's syncs
            // carry its verdicts about the other; taken as verdicts they would convict
            // here members this node reached all along, which then refute. As a
            // suspicion the member refutes before anyone here acts on it.
            u.state = MemberState::Suspect;
        }
        let now = self.now;
        let applied = self.members.apply(&u, now, self.cfg.max_members);
        let previous = match applied {
            Applied::Changed { previous } => previous,
            Applied::Stale => {
                self.maybe_confirm(&u);
                self.on_peer_suspicion(&u);
                return;
            }
            Applied::Unknown => return,
            Applied::Full => {
                self.stats.members_refused += 1;
                return;
            }
        };
        let Some(entry) = self.members.get(u.id) else {
            return;
        };
        let member = entry.snapshot();
        let was = previous.map(|(s, _)| s);
        // A join's state sync brings every member at once: gossiping each would be a
        // storm, and everyone knows them already. A member this node had convicted by
        // silence and since forgotten is news, though: the far side of a long partition.
        if !(via_sync && was.is_none()) || self.is_reconnect_candidate(u.id) {
            self.queue.push(UpdateKey::Member(u.id), None);
        }
        if let Some(m) = self.monitoring.set.get_mut(&u.id) {
            m.addr = member.addr; // a member that restarted elsewhere
        }
        if was.is_none_or(|s| s.is_live()) != member.state.is_live() || was.is_none() {
            self.ring_dirty = true;
        }
        debug!(member = %member.name(), state = member.state.as_str(), incarnation = member.incarnation, "member state");
        if member.state != MemberState::Suspect && self.suspicions.swap_remove(&u.id).is_some() {
            self.timers.cancel(OneShot::Suspicion(u.id));
        }
        if was == Some(MemberState::Suspect) && member.state == MemberState::Alive {
            // A refutation is the member speaking: as a monitor, count its silence from
            // now rather than convicting on silence it has just disproved.
            if let Some(m) = self.monitoring.set.get_mut(&u.id) {
                m.detector.restart_silence(now);
            }
        }
        match (was, member.state) {
            (None | Some(MemberState::Dead | MemberState::Left), MemberState::Alive) => {
                if was != Some(MemberState::Left) {
                    // Back from the dead, or back after `dead_retention` forgot it.
                    self.note_revival(u.id);
                }
                if was == Some(MemberState::Dead) {
                    // A correction of a verdict travels as fast as the verdict did.
                    self.urgent_gossip();
                }
                if self.cfg.strategy != Strategy::PhiMonitors {
                    self.probes
                        .member_joined(u.id, self.members.live_count(), &mut self.rng);
                }
                self.events.push_back(Event::MemberJoined(member));
            }
            (Some(MemberState::Alive), MemberState::Alive) => {
                self.events.push_back(Event::MemberUpdated(member));
            }
            (Some(MemberState::Suspect), MemberState::Alive) => {
                self.events.push_back(Event::MemberAlive(member));
            }
            (_, MemberState::Suspect) => {
                self.start_suspicion(u.id, u.incarnation, u.accuser);
                if was != Some(MemberState::Suspect) {
                    self.events.push_back(Event::MemberSuspected {
                        member,
                        cause: u.cause,
                    });
                }
                self.on_peer_suspicion(&u);
            }
            (Some(w), MemberState::Dead) if w.is_live() => {
                // Silence can be a partition rather than a death (see `reconnect`).
                self.note_conviction(u.id, u.cause);
                self.urgent_gossip();
                self.events.push_back(Event::MemberDead {
                    member,
                    cause: u.cause,
                });
            }
            (Some(w), MemberState::Left) if w != MemberState::Left => {
                self.events.push_back(Event::MemberLeft(member));
            }
            _ => {}
        }
    }

    /// A peer's suspicion with cause Refused is a second observer's refusal (see
    /// `refusal`); ours and anything else are not.
    fn on_peer_suspicion(&mut self, u: &Update<'_>) {
        if u.state == MemberState::Suspect && u.cause == Cause::Refused && u.accuser != self.id() {
            self.peer_reported_refusal(u.id, u.incarnation);
        }
    }

    /// A repeat of a suspicion we already hold, from another accuser, is an independent
    /// confirmation (Lifeguard): the timeout shrinks and the news is re-gossiped.
    pub(super) fn maybe_confirm(&mut self, u: &Update<'_>) {
        if u.state != MemberState::Suspect || !self.cfg.strategy.lifeguard() {
            return;
        }
        let Some(s) = self.suspicions.get_mut(&u.id) else {
            return;
        };
        if s.incarnation != u.incarnation || !s.confirm(u.accuser) {
            return;
        }
        let deadline = s.deadline;
        self.timers.schedule(deadline, OneShot::Suspicion(u.id));
        // Re-gossip naming the newest confirmer, so that others count it too.
        if self
            .members
            .rename_accuser(u.id, u.incarnation, u.accuser, u.cause)
        {
            self.queue.push(UpdateKey::Member(u.id), None);
        }
    }

    /// Someone says we are suspect, dead or gone, or speaks for an older or newer life
    /// of ours: move above their incarnation and gossip Alive. Only a member raises its
    /// own incarnation, so this is the one way out of a suspicion or a wrong conviction.
    pub(super) fn news_about_self(&mut self, u: &Update<'_>) {
        if self.leaving {
            return;
        }
        let mine = self.incarnation();
        let refute = match u.state {
            // At our own incarnation, an Alive with another address or metadata is
            // another life of ours (restarted within the same second), which peers
            // would otherwise keep: its entry ties with ours.
            MemberState::Alive => {
                u.incarnation > mine
                    || (u.incarnation == mine
                        && u.descriptor.as_ref().is_some_and(|d| {
                            let local = self.members.local();
                            // Wire bytes, as gossip carries them unchanged: no
                            // re-encoding can make our own echo look like another life.
                            d.addr_wire != local.packed.addr_wire()
                                || d.metadata != local.packed.metadata()
                        }))
            }
            _ => u.incarnation >= mine,
        };
        if !refute {
            return;
        }
        if u.state != MemberState::Alive {
            self.events.push_back(Event::SelfSuspected {
                by: u.accuser,
                incarnation: u.incarnation,
            });
        }
        let inc = u.incarnation.saturating_add(1);
        self.members.update_local(inc, MemberState::Alive, self.now);
        self.queue.push(UpdateKey::Member(self.id()), None);
        self.stats.refutations += 1;
        self.local_health.apply(1);
        self.events
            .push_back(Event::SelfRefuted { incarnation: inc });
        debug!(incarnation = inc, "refuted");
    }

    /// Raises a suspicion of our own about `id` (at the incarnation we know). If it is
    /// already suspected, our failed probe is an independent confirmation (Lifeguard):
    /// the timeout shrinks and our own Suspect is gossiped.
    pub(crate) fn suspect(&mut self, id: NodeId, cause: Cause) {
        let Some(e) = self.members.get(id) else {
            return;
        };
        if self.leaving || !e.state.is_live() {
            return;
        }
        let already = e.state == MemberState::Suspect;
        let update = Update {
            id,
            incarnation: e.incarnation,
            state: MemberState::Suspect,
            cause,
            accuser: self.id(),
            descriptor: None,
        };
        if already {
            self.maybe_confirm(&update);
            return;
        }
        self.stats.suspicions_raised += 1;
        self.process_update(update, false);
    }

    /// Declares `id` dead, unless this node was just stalled (then the verdict waits for
    /// the guard to pass and is checked again).
    pub(crate) fn convict(&mut self, id: NodeId, cause: Cause) -> bool {
        let Some(e) = self.members.get(id) else {
            return false;
        };
        if !e.state.is_live() || self.leaving {
            return false;
        }
        if self.now < self.stall.until {
            self.stats.convictions_deferred += 1;
            return false;
        }
        self.stats.convictions += 1;
        let addr = e.addr;
        let update = Update {
            id,
            incarnation: e.incarnation,
            state: MemberState::Dead,
            cause,
            accuser: self.id(),
            descriptor: None,
        };
        self.process_update(update, false);
        // Tell the convicted member itself. It is silent to us, but a member cut off
        // one way (or paused) may still hear it, and then refutes at once instead of
        // living on unaware that the cluster holds it dead until its next push-pull.
        self.outbox.push_back(Outgoing {
            to: addr,
            to_id: Some(id),
            primary: Primary::Gossip,
        });
        true
    }

    pub(super) fn start_suspicion(&mut self, id: NodeId, incarnation: u64, accuser: NodeId) {
        let n = self.members.live_count();
        let floor = self.cfg.suspicion_min_timeout(n);
        let (min, max, expected) = match self.cfg.strategy {
            Strategy::Swim => (floor, floor, 0),
            Strategy::Lifeguard => {
                let k = self.cfg.suspicion_mult.saturating_sub(2);
                let k = if n.saturating_sub(2) < k as usize {
                    0
                } else {
                    k
                };
                (floor, floor * self.cfg.suspicion_max_mult, k)
            }
            Strategy::PhiMonitors => {
                // A fallback behind the monitors: never earlier than a monitor could
                // convict by phi, so the fallback cannot undercut acceptable_pause.
                let min = floor.max(self.steady_convict_silence());
                let k = (self.cfg.monitors as u32).saturating_sub(1);
                let k = k.min(n.saturating_sub(2) as u32);
                (min, min * self.cfg.suspicion_max_mult, k)
            }
        };
        let s = Suspicion::new(incarnation, self.now, accuser, min, max, expected);
        self.timers.schedule(s.deadline, OneShot::Suspicion(id));
        self.suspicions.insert(id, s);
    }

    /// Silence a monitor needs to convict under a steady rhythm at `probe_interval`:
    /// `probe_interval + acceptable_pause + y(phi_convict) × min_std_dev`.
    pub(crate) fn steady_convict_silence(&self) -> Duration {
        let y = self.monitoring.y_convict.max(0.0);
        self.cfg.probe_interval + self.cfg.acceptable_pause + self.cfg.min_std_dev.mul_f64(y)
    }

    pub(super) fn on_suspicion_timeout(&mut self, id: NodeId) {
        let Some(s) = self.suspicions.get(&id) else {
            return;
        };
        if s.deadline > self.now {
            return; // rescheduled (confirmations or our own stall): a later timer holds
        }
        let inc = s.incarnation;
        let current = self.members.get(id).map(|e| (e.state, e.incarnation));
        if current != Some((MemberState::Suspect, inc)) {
            // Refuted or superseded: the timer must not act on old news.
            self.suspicions.swap_remove(&id);
            return;
        }
        if self.now < self.stall.until && !self.leaving {
            // Our own stall just ended: the refutations it queued are read first.
            let at = self.stall.until;
            if let Some(s) = self.suspicions.get_mut(&id) {
                s.hold_until(at);
            }
            self.stats.convictions_deferred += 1;
            self.timers.schedule(at, OneShot::Suspicion(id));
            return;
        }
        // The timer's verdict is silence's, whatever raised the suspicion: a refusal
        // convicts only through the refusal path, and a Dead(Refused) from here would
        // count elsewhere as a refusal this node never proved (and skip reconnects).
        let cause = Cause::Silence;
        if !self.leaving {
            match self.private_suspicion(id) {
                Private::Waits => return,
                Private::Isolated => {
                    // Our own view, not the cluster's: nothing we sent got out while we
                    // suspected, so the member never heard the suspicion to refute it.
                    if self.convict(id, cause) {
                        self.queue.remove(UpdateKey::Member(id));
                        self.stats.convictions_kept_local += 1;
                    }
                    return;
                }
                Private::Decide => {}
            }
        }
        self.convict(id, cause);
    }

    /// A suspicion that no one but its first accuser raised (or whose member has spoken
    /// to us since it began) is about to convict: the accuser's view alone, or a view
    /// the member contradicted. Before it becomes the cluster's verdict, this node makes
    /// sure it is not the one cut off, and gives the member a last chance.
    ///
    /// - No probe of ours answered since the suspicion began (and there are members
    ///   other than the suspect to answer): what this node sends is not getting out (a
    ///   one-way cut, a flapping link), so its suspicion never reached the member to be
    ///   refuted. It waits a period at a time, within the suspicion's budget, pinging a
    ///   random other member each time to learn whether it gets through; past that it
    ///   decides for itself only ([`Private::Isolated`]: the verdict is not gossiped, so
    ///   a cut node's timer firing as the cut heals does not spread it as a verdict; a
    ///   state sync may carry it later, and a peer takes a synced Dead about a member it
    ///   holds live as a suspicion, which the member refutes).
    /// - Then one direct ping carrying the suspicion (the buddy system, under every
    ///   strategy here), so a live member refutes in its answer (or, having refuted
    ///   already, answers with its newer Alive); the verdict waits a probe timeout for
    ///   it. If the member has spoken to us while suspected, more of them, a probe
    ///   timeout apart, within the budget: under heavy loss one round trip often fails.
    ///
    /// memberlist convicts on a lone suspicion at its longest timeout, with no such
    /// check: a cut node's timer firing just after the heal makes a healthy member dead
    /// everywhere until it refutes (issue 20, finding 2).
    pub(super) fn private_suspicion(&mut self, id: NodeId) -> Private {
        let now = self.now;
        let live_others = self.members.live_count() > 2;
        let heard = self.members.get(id).and_then(|e| e.heard);
        let Some(s) = self.suspicions.get_mut(&id) else {
            return Private::Decide;
        };
        // A member that spoke to us since the suspicion began is alive, whatever others
        // confirmed: it refuted and we missed the refutation (30 % loss made lifeguard
        // and swim convict such members, each by one observer), or it never heard the
        // suspicion. It gets the last chance too.
        let spoke_while_suspected = heard.is_some_and(|h| h >= s.started);
        if s.confirmations() > 0 && !spoke_while_suspected {
            return Private::Decide;
        }
        let answered = self.last_answer.is_some_and(|t| t >= s.started);
        if s.confirmations() == 0 && live_others && !answered {
            let at = now + self.cfg.probe_interval;
            if s.defer_to(at) {
                self.stats.convictions_deferred += 1;
                self.timers.schedule(at, OneShot::Suspicion(id));
                // Ask someone else whether we get through at all: a node whose own
                // probes all go to the suspect (one monitor, say) would otherwise have
                // no answer to go by. Its ack is the answer.
                let mut peer = std::mem::take(&mut self.scratch.helpers);
                self.random_peers(1, Some(id), &mut peer);
                if let Some(&p) = peer.first() {
                    self.send_ping(p, ProbeKind::LastChance);
                }
                self.scratch.helpers = peer;
                return Private::Waits;
            }
            return Private::Isolated;
        }
        // Another last chance (out of the budget) if the member spoke since the last
        // one, or at all while suspected: its answer may simply have been lost.
        let spoke_since = match s.last_chance {
            None => true,
            Some(sent) => spoke_while_suspected || heard.is_some_and(|h| h >= sent),
        };
        if !spoke_since {
            return Private::Decide;
        }
        // The first last chance is given whatever the budget (one probe timeout): a cut
        // that used the budget up may have healed just now, and this is the one time
        // the member hears of the suspicion. Later ones come out of the budget.
        let at = now + self.local_health.scale(self.cfg.probe_timeout);
        if s.last_chance.is_none() {
            s.deadline = at;
        } else if !s.defer_to(at) {
            return Private::Decide;
        }
        s.last_chance = Some(now);
        self.timers.schedule(at, OneShot::Suspicion(id));
        self.send_ping(id, ProbeKind::LastChance);
        Private::Waits
    }
}
