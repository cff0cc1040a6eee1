//! The self-stall guard: the node's clock moves with every input, and a timer found
//! long overdue means this process itself did not run (GC, throttling, SIGSTOP).

use super::Node;
use std::time::Duration;

use tracing::debug;

use crate::id::NodeId;
use crate::time::Time;
use crate::timers::OneShot;

/// What the self-stall guard keeps.
#[derive(Debug, Default)]
pub(crate) struct StallGuard {
    /// No conviction before this time: set after this node's own stall.
    pub until: Time,
    /// When the last stall this node detected ended.
    pub last_end: Option<Time>,
}

impl Node {
    /// Moves the node's clock to `now` (never backwards) and detects this node's own
    /// stall: a timer overdue by more than `stall_threshold` means the process did not
    /// run (GC pause, CPU throttling, SIGSTOP) while it should have.
    ///
    /// The stall is measured from the later of the overdue timer and the last input:
    /// a process that handled a datagram was running then, and the backlog read after a
    /// stall (every datagram at the same `now`) is one stall, not one per datagram. A
    /// node with no peers has no evidence to discard, so it detects none (a driver that
    /// calls `join` a while after `Node::new` is not stalled).
    pub(crate) fn observe_time(&mut self, now: Time) {
        let now = now.max(self.now);
        if let Some(due) = self.timers.next() {
            let since = due.max(self.now);
            if now > since + self.cfg.stall_threshold && self.members.live_count() > 1 {
                self.on_own_stall(now, now - since);
            }
        }
        self.now = now;
        self.timers.advance(now);
    }

    /// This node was frozen for `stalled`. Evidence gathered across the stall says more
    /// about us than about our peers: silence is measured afresh from now, probes in
    /// flight are forgotten (their acks are sitting in our receive queue), suspicion
    /// timers are moved later by the stall (each by at most its longest timeout over its
    /// life, so a node stalled again and again still decides), and nobody is convicted
    /// until `stall_guard` has passed, so the refutations that queued up are read first.
    ///
    /// A short stall (under `probe_interval`) that begins within `probe_interval` of the
    /// end of the previous one is the same trouble going on (a driver that always calls
    /// late, a process thrashing in GC): it is counted apart (`stalls_repeated`) and
    /// discards nothing again. Discarding on every one would forget every probe in
    /// flight at every late call and keep the guard armed for good, and such a node
    /// would never convict a crashed member; the backlog is read before the timers that
    /// follow, so the evidence it gathers between such stalls is sound. A long stall is
    /// always a stall, whatever came before it.
    pub(super) fn on_own_stall(&mut self, now: Time, stalled: Duration) {
        let began = now - stalled;
        let repeated = stalled < self.cfg.probe_interval
            && self
                .stall
                .last_end
                .is_some_and(|end| began.saturating_since(end) < self.cfg.probe_interval);
        self.stall.last_end = Some(now);
        debug!(
            stalled_ms = stalled.as_millis() as u64,
            repeated, "own stall detected"
        );
        if repeated {
            self.stats.stalls_repeated += 1;
            return;
        }
        self.stats.stalls_detected += 1;
        self.stall.until = self.stall.until.max(now + self.cfg.stall_guard);
        self.probes.forget_in_flight();
        for m in self.monitoring.set.values_mut() {
            m.detector.restart_silence(now);
            m.indirect = None;
        }
        let ids: Vec<NodeId> = self.monitoring.set.keys().copied().collect();
        for id in ids {
            self.schedule_convict(id);
        }
        for (id, s) in self.suspicions.iter_mut() {
            s.postpone(stalled);
            self.timers.schedule(s.deadline, OneShot::Suspicion(*id));
        }
    }
}
