//! The driver task: the one owner of the [`Node`], its socket and its timer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, trace};

use crate::event::{Event, Member};
use crate::node::Node;
use crate::runtime::error_queue::{self, QueuedError};
use crate::runtime::handle::{Command, KeyringOp};
use crate::runtime::health::{StallSpan, SuspicionLog};
use crate::runtime::metrics::{Metrics, count_states};
use crate::runtime::shared::{RuntimeStats, Shared, lock};
use crate::runtime::stall_clock;
use crate::time::Time;

/// How often the driver does its housekeeping (health gauges, the metrics' window,
/// a last look at the socket's error queue), at the first wake-up for its own work
/// after this much time: never a wake-up of its own. The node's probe timer wakes the
/// driver at least once per probe interval.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The longest the loop sleeps, as a fraction of `HealthConfig::liveness_timeout`:
/// the loop's own run is the liveness watchdog's beat, and a node's next timer can be
/// further away than the timeout (under SWIM or Lifeguard a degraded node's probe
/// period stretches up to 9 × `probe_interval`: 45 s on WAN against a 15 s timeout).
/// With the defaults the probe timer comes first and this never wakes anyone.
const BEATS_PER_LIVENESS_TIMEOUT: u32 = 3;

/// Seed addresses kept at most: a DNS answer larger than this (a Service of
/// thousands of pods) needs only a few to join through.
const MAX_SEEDS: usize = 64;

/// Seeds a joining node knocks at, at a time (see `on_seeds`).
const JOIN_FANOUT: usize = 3;

/// Unknown seed addresses a refresh syncs with at most, per resolution.
const MAX_SEED_SYNCS: usize = 8;

/// Live members a node that was joined through (its own seeds never resolved) joins
/// back through, to get their full state.
const JOIN_BACK: usize = 3;

/// How often the driver registers its metrics again (see `Metrics::refresh`), so a
/// recorder installed after `start()` sees them within this time.
const METRICS_REFRESH: Duration = Duration::from_secs(5);

/// Datagrams read per wake-up before outputs are drained and timers checked.
const RECV_BATCH: usize = 64;

/// The largest UDP payload: datagrams are read whole, so an oversized one reaches the
/// core (which drops and counts it) instead of arriving truncated.
const RECV_BUF: usize = 65_536;

/// The first seed window's offset: this node's id, so that nodes resolving the same
/// sorted answer start at different seeds.
fn shared_knock(shared: &Shared) -> usize {
    shared.id.0 as usize
}

/// What the builder decided about joining and stopping.
pub(crate) struct DriverPlan {
    /// The seeds given as addresses (names come from the seed task).
    pub literal_seeds: Vec<SocketAddr>,
    /// Any seed was given, by address or by name.
    pub seeds_given: bool,
    /// May form a cluster alone although seeds were given (`RuntimeBuilder::bootstrap`).
    pub bootstrap: bool,
    /// `RuntimeBuilder::drain`.
    pub drain: Duration,
}

/// The node's state the health parts read: joined, synced, leaving or draining,
/// degraded, the suspicions of this node and its incarnation (a refutation).
type HealthKey = (bool, bool, bool, bool, SuspicionLog, u64);

/// What woke the loop.
enum Input {
    /// The cancellation token: drain, then leave.
    Cancelled,
    Command(Option<Command>),
    Datagram(io::Result<(usize, SocketAddr)>),
    NetError(io::Result<QueuedError>),
    /// The node's next timer, the drain's end or the leave's deadline.
    Timer,
}

/// Owns the node; spawned once by [`RuntimeBuilder::start`](crate::RuntimeBuilder::start).
pub(crate) struct Driver {
    pub node: Node,
    pub socket: UdpSocket,
    pub shared: Arc<Shared>,
    pub cmds: mpsc::Receiver<Command>,
    pub events: broadcast::Sender<Arc<Event>>,
    pub members: watch::Sender<Arc<Vec<Member>>>,
    pub metrics: Metrics,
    pub leave_timeout: Duration,
    /// The seeds' addresses known so far (literal ones at first, then what the seed
    /// task resolved and what `Handle::join` added), at most `MAX_SEEDS`.
    seeds: Vec<SocketAddr>,
    /// Where the next window of seeds to knock at starts (see `next_window`).
    knock: usize,
    /// Seeds were given but none has resolved to another node's address yet, and this
    /// node may not form a cluster alone: `Node::join` waits (see `on_seeds`).
    join_pending: bool,
    /// How long a cancellation keeps the node serving with readiness false before it
    /// leaves (`RuntimeBuilder::drain`).
    drain: Duration,
    /// When the drain ends and Leave goes out (cancelled, or `leave_and_drain`).
    drain_until: Option<Time>,
    /// Read the socket's error queue for refusals (see `refusals`).
    refusals: bool,
    recv_buf: Vec<u8>,
    send_buf: Vec<u8>,
    rt: RuntimeStats,
    leave_deadline: Option<Time>,
    /// The last sample of the process's stall clock this driver has recorded.
    stall_cursor: u64,
    /// When the next housekeeping is due (`HOUSEKEEPING`).
    housekeeping_at: Time,
    /// `health_key` when the health gauges were last set.
    health_exported: Option<HealthKey>,
    /// When the metrics are next registered again (`METRICS_REFRESH`).
    metrics_refresh_at: Time,
    members_dirty: bool,
    reaped: u64,
    /// The last stall of this process the driver measured (timers late by more
    /// than `stall_threshold`): what may explain a suspicion of this node.
    last_stall: Option<StallSpan>,
    /// Suspicions of this node, sorted by whether `last_stall` explains them.
    suspicion: SuspicionLog,
}

/// Marks the driver stopped however it ends (return or panic): event streams end,
/// [`Handle::stopped`](crate::Handle::stopped) wakes, health reports it.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        lock(&self.0.events).take();
        self.0.stopped.cancel();
    }
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: Node,
        socket: UdpSocket,
        shared: Arc<Shared>,
        cmds: mpsc::Receiver<Command>,
        events: broadcast::Sender<Arc<Event>>,
        members: watch::Sender<Arc<Vec<Member>>>,
        metrics: Metrics,
        leave_timeout: Duration,
        join: DriverPlan,
        refusals: bool,
    ) -> Driver {
        let packet = node.config().max_packet_size;
        let knock = shared_knock(&shared);
        Driver {
            node,
            socket,
            shared,
            cmds,
            events,
            members,
            metrics,
            leave_timeout,
            seeds: join.literal_seeds,
            knock,
            join_pending: join.seeds_given && !join.bootstrap,
            drain: join.drain,
            drain_until: None,
            refusals,
            recv_buf: vec![0; RECV_BUF],
            send_buf: vec![0; packet],
            rt: RuntimeStats::default(),
            leave_deadline: None,
            stall_cursor: stall_clock::clock().cursor(),
            housekeeping_at: Time::ZERO,
            health_exported: None,
            metrics_refresh_at: Time::ZERO + METRICS_REFRESH,
            members_dirty: true,
            reaped: 0,
            last_stall: None,
            suspicion: SuspicionLog::default(),
        }
    }

    /// Joins, then runs until aborted or, after a Leave, until the Leave has gone out.
    pub async fn run(mut self) {
        let guard = StopGuard(self.shared.clone());
        let now = self.shared.now();
        self.shared.beat(now);
        info!(addr = %self.shared.advertise, seeds = self.seeds.len(), "starting");
        if self.shared.cancel.is_cancelled() {
            // Cancelled before it started: join nobody, who would only see it die.
            debug!("cancelled before start: not joining");
        } else if self.join_pending {
            let literal = std::mem::take(&mut self.seeds);
            self.on_seeds(now, &literal, true);
        } else {
            // No seeds (the first member), or a bootstrap node: a cluster of one at
            // once, which the seed task merges with whatever the seeds turn out to be.
            self.node.join(now, &[]);
        }
        self.flush().await;
        let left = self.run_loop().await;
        // Stopped: not ready and not started, whatever was exported last.
        self.metrics
            .set_health(self.node.local_health(), false, false);
        if left {
            self.shared.left.store(true, Ordering::Relaxed);
        }
        info!(left, "stopped");
        // Close the socket and the event channel before reporting the stop.
        drop(self);
        drop(guard);
    }

    /// Returns true when it stopped after leaving, false when aborted.
    async fn run_loop(&mut self) -> bool {
        let cancel = self.shared.cancel.clone();
        let abort = self.shared.abort.clone();
        let mut cmds_open = true;
        loop {
            let now = self.shared.now();
            self.shared.beat(now);
            if let Some(until) = self.drain_until
                && now >= until
            {
                self.drain_until = None;
                self.start_leave(now);
                self.flush().await;
            }
            if let Some(deadline) = self.leave_deadline
                && (self.node.pending_updates() == 0 || now >= deadline)
            {
                debug!(
                    pending = self.node.pending_updates(),
                    "leave disseminated, stopping"
                );
                return true;
            }
            let mut wake = now + self.shared.health.liveness_timeout / BEATS_PER_LIVENESS_TIMEOUT;
            for t in [
                self.node.poll_timeout(),
                self.leave_deadline,
                self.drain_until,
            ]
            .into_iter()
            .flatten()
            {
                wake = wake.min(t);
            }
            let wake = self.shared.instant(wake);
            let shutting_down = self.drain_until.is_some() || self.leave_deadline.is_some();
            let input = tokio::select! {
                biased;
                () = abort.cancelled() => return false,
                () = cancel.cancelled(), if !shutting_down => Input::Cancelled,
                cmd = self.cmds.recv(), if cmds_open => Input::Command(cmd),
                r = self.socket.recv_from(&mut self.recv_buf) => Input::Datagram(r),
                r = self.socket.async_io(Interest::ERROR, || error_queue::read_one(&self.socket)),
                    if self.refusals => Input::NetError(r),
                () = tokio::time::sleep_until(wake) => Input::Timer,
            };
            self.rt.wakeups += 1;
            match input {
                Input::Cancelled => {
                    info!(
                        drain_ms = self.drain.as_millis() as u64,
                        "cancelled: draining, then leaving"
                    );
                    // `now` was read before the wait: the drain starts at the cancel.
                    self.begin_drain(self.shared.now(), self.drain);
                }
                Input::Command(Some(cmd)) => {
                    if self.on_command(cmd).await {
                        return false;
                    }
                }
                // Every handle is gone: keep running until cancelled.
                Input::Command(None) => cmds_open = false,
                Input::Datagram(r) => self.on_datagrams(r),
                Input::NetError(r) => self.on_net_errors(Some(r)),
                Input::Timer => {}
            }
            self.join_back(now);
            self.fire_due_timers();
            self.flush().await;
        }
    }

    /// Returns true if the driver must stop (aborted during a freeze).
    async fn on_command(&mut self, cmd: Command) -> bool {
        let now = self.shared.now();
        match cmd {
            Command::SetMetadata(bytes, reply) => {
                let r = self.node.set_metadata(now, bytes);
                self.members_dirty |= r.is_ok();
                // Publish before answering: the caller then reads its new local member.
                self.flush().await;
                let _ = reply.send(r);
            }
            Command::Broadcast(bytes, reply) => {
                let _ = reply.send(self.node.broadcast(now, bytes));
            }
            Command::Keyring(op, reply) => {
                let r = match &op {
                    KeyringOp::Add(k) => self.node.keyring_add(k.clone()),
                    KeyringOp::Use(k) => self.node.keyring_use(k),
                    KeyringOp::Remove(k) => self.node.keyring_remove(k),
                };
                info!(?op, ok = r.is_ok(), "keyring");
                let _ = reply.send(r);
            }
            Command::Leave(drain) => self.begin_drain(now, drain),
            Command::Seeds {
                addrs,
                replace,
                reply,
            } => {
                let contacted = self.on_seeds(now, &addrs, replace);
                let _ = reply.send(contacted);
            }
            Command::Freeze(d, ack) => {
                debug!(ms = d.as_millis() as u64, "freezing (test hook)");
                let _ = ack.send(());
                // A cancellation waits for the freeze to end, as a SIGTERM waits for a
                // stopped process to resume; an abort does not.
                tokio::select! {
                    biased;
                    () = self.shared.abort.cancelled() => return true,
                    () = tokio::time::sleep(d) => {}
                }
            }
        }
        false
    }

    /// Readiness false at once; Leave once `drain` has passed (the later of two
    /// requests wins). Nothing if the Leave has gone out already.
    fn begin_drain(&mut self, now: Time, drain: Duration) {
        self.shared.draining.store(true, Ordering::Relaxed);
        self.shared.registry.poke();
        if self.leave_deadline.is_some() {
            return;
        }
        let until = now + drain;
        self.drain_until = Some(self.drain_until.map_or(until, |t| t.max(until)));
    }

    fn start_leave(&mut self, now: Time) {
        if self.leave_deadline.is_some() {
            return;
        }
        info!("leaving");
        self.node.leave(now);
        self.members_dirty = true;
        // With nobody to tell, there is nothing to wait for.
        let anyone = self.node.live_count() > 1;
        self.leave_deadline = Some(if anyone {
            now + self.leave_timeout
        } else {
            now
        });
    }

    /// Seed addresses, from the seed task (`replace`: the latest answer is what DNS
    /// says now) or from `Handle::join` and `join_back` (added to what is held).
    /// Returns how many addresses were contacted.
    ///
    /// - Not synced yet (the join not started, or no full answer): knock at the next
    ///   `JOIN_FANOUT` of them, a window that rotates on every round, so a dead
    ///   address cannot hold the join up and every joiner does not knock at the same
    ///   few (each answers with its whole member table).
    /// - Synced: sync with each that no live member holds, so two clusters that formed
    ///   apart (a name that resolved late, a bootstrap node) merge.
    ///
    /// Nothing once the node drains or leaves: it must not join what it is leaving.
    fn on_seeds(&mut self, now: Time, addrs: &[SocketAddr], replace: bool) -> usize {
        if self.leave_deadline.is_some() || self.drain_until.is_some() || self.shared.is_draining()
        {
            return 0;
        }
        let own = [self.shared.advertise, self.shared.local_addr];
        let mut fresh: Vec<SocketAddr> = Vec::new();
        for a in addrs {
            if !own.contains(a) && !fresh.contains(a) && fresh.len() < MAX_SEEDS {
                fresh.push(*a);
            }
        }
        if fresh.is_empty() {
            return 0;
        }
        if self.join_pending || !self.node.is_synced() {
            if replace {
                self.seeds = fresh;
            } else {
                for a in fresh {
                    if !self.seeds.contains(&a) {
                        if self.seeds.len() == MAX_SEEDS {
                            self.seeds.remove(0);
                        }
                        self.seeds.push(a);
                    }
                }
            }
            let window = self.next_window();
            debug!(
                seeds = self.seeds.len(),
                knocking = window.len(),
                "joining through seeds"
            );
            self.join_pending = false;
            self.node.join(now, &window);
            return window.len();
        }
        let mut contacted = 0;
        for a in fresh {
            if contacted == MAX_SEED_SYNCS {
                break;
            }
            if self.node.live_member_at(a).is_none() {
                debug!(addr = %a, "seed not a live member: syncing");
                self.node.sync_with(now, a);
                contacted += 1;
            }
        }
        contacted
    }

    /// The next `JOIN_FANOUT` seeds to knock at, rotating through all of them. With
    /// more seeds than that, the first window starts at an offset of this node's own
    /// (its id), so nodes that resolved the same sorted answer knock at different
    /// members.
    fn next_window(&mut self) -> Vec<SocketAddr> {
        let n = self.seeds.len();
        let k = JOIN_FANOUT.min(n);
        // A few seeds are all knocked at, in the order given (the first seed first).
        let start = if n <= JOIN_FANOUT { 0 } else { self.knock % n };
        self.knock = self.knock.wrapping_add(k);
        (0..k).map(|i| self.seeds[(start + i) % n]).collect()
    }

    /// A node that others reached before any of its seeds answered (its seeds did not
    /// resolve, or are dead) joins through them, for their full state and a finished
    /// startup. Once per new peer, not per input.
    fn join_back(&mut self, now: Time) {
        // Only while no seed has answered: a node whose seed answered is receiving its
        // state sync, and the members it learns from it are no reason to knock again
        // (nor to walk the member table on every datagram of a large join).
        if self.node.is_joined() || self.node.is_synced() || self.node.live_count() < 2 {
            return;
        }
        let peers: Vec<SocketAddr> = self
            .node
            .members()
            .filter(|m| m.state.is_live() && !self.seeds.contains(&m.addr))
            .map(|m| m.addr)
            .take(JOIN_BACK)
            .collect();
        if peers.is_empty() || self.drain_until.is_some() || self.leave_deadline.is_some() {
            return;
        }
        debug!(
            peers = peers.len(),
            "reached by peers before any seed answered: joining through them"
        );
        for a in &peers {
            if self.seeds.len() == MAX_SEEDS {
                self.seeds.remove(0);
            }
            self.seeds.push(*a);
        }
        self.join_pending = false;
        self.node.join(now, &peers);
    }

    /// One datagram from `recv_from`, then whatever else is already queued (up to a
    /// batch), all at one `now`: after a stall that is the backlog, read at resume time.
    fn on_datagrams(&mut self, first: io::Result<(usize, SocketAddr)>) {
        let now = self.shared.now();
        match first {
            Ok((len, from)) => self.node.handle_packet(now, from, &self.recv_buf[..len]),
            Err(e) => {
                self.recv_error(&e);
                return;
            }
        }
        for _ in 1..RECV_BATCH {
            match self.socket.try_recv_from(&mut self.recv_buf) {
                Ok((len, from)) => self.node.handle_packet(now, from, &self.recv_buf[..len]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.recv_error(&e);
                    break;
                }
            }
        }
    }

    /// Entries of the error queue, `first` (read already) then whatever else is queued,
    /// up to a batch.
    ///
    /// Error readiness alone is not enough to find them: tokio's `recv_from` waits for
    /// `READABLE | ERROR` (tokio-rs/tokio#8001), so it wakes on a refusal first (the
    /// `select!` is biased), fails with the pending error, and its next WouldBlock
    /// clears the error readiness our error-queue future was waiting on. With no other
    /// datagram arriving, a refusal was never read (`tests/runtime_udp.rs`). So the
    /// queue is drained whenever a send or receive fails with the pending error a
    /// refusal leaves on the socket, which is the very next socket call after it
    /// arrives, and at every housekeeping as a last resort.
    fn on_net_errors(&mut self, first: Option<io::Result<QueuedError>>) {
        if !self.refusals {
            return;
        }
        let now = self.shared.now();
        let mut next = first;
        for _ in 0..RECV_BATCH {
            match next
                .take()
                .unwrap_or_else(|| error_queue::read_one(&self.socket))
            {
                Ok(QueuedError::Refused(addr, quote, len)) => {
                    self.rt.refusals += 1;
                    debug!(%addr, "refused");
                    self.node
                        .handle_unreachable(now, addr, quote.get(..len).unwrap_or_default());
                }
                Ok(QueuedError::Other) => self.rt.other_net_errors += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.recv_error(&e);
                    break;
                }
            }
        }
    }

    fn recv_error(&mut self, e: &io::Error) {
        if is_earlier_datagrams_error(e) {
            // An ICMP error for an earlier send, pending on the socket: read its entry.
            debug!(error = %e, "recv_from reported an earlier datagram's error");
            self.on_net_errors(None);
            return;
        }
        self.rt.recv_errors += 1;
        debug!(error = %e, "recv_from failed");
    }

    /// Records the process's stalls (the stall clock's new samples), does the
    /// housekeeping if due, and fires the node's timers if due, measuring how late
    /// they fired. Also runs after datagrams, so a flood cannot starve the timers
    /// behind the biased `select!`, and so the backlog read first after a stall meets
    /// the stall behind it.
    fn fire_due_timers(&mut self) {
        let now = self.shared.now();
        let clock_saw = self.read_stall_clock(now);
        if now >= self.housekeeping_at {
            self.housekeeping_at = now + HOUSEKEEPING;
            self.on_net_errors(None);
            if now >= self.metrics_refresh_at {
                self.metrics.refresh();
                self.metrics_refresh_at = now + METRICS_REFRESH;
                // The member gauges are set only on a change: set them again.
                self.members_dirty = true;
            }
            self.metrics.observed(now.saturating_since(Time::ZERO));
            self.export_health();
        }
        let Some(due) = self.node.poll_timeout().filter(|t| *t <= now) else {
            return;
        };
        let late = now - due;
        self.rt.timers_fired += 1;
        if late > self.node.config().stall_threshold {
            self.rt.late_timers += 1;
            // Recorded before this input's events are read (in `flush`), so a
            // suspicion in the backlog read at resume meets the stall behind it.
            self.last_stall = Some(StallSpan {
                end: now,
                len: late,
            });
            debug!(late_ms = late.as_millis() as u64, "timer fired late");
            // The driver alone was late (an executor that did not poll it, a test's
            // freeze), unless the clock saw the process stalled: then the clock's
            // sample is this stall (the driver's lateness adds the executor's backlog
            // at resume to it), and one sample of it is enough.
            if clock_saw <= self.node.config().stall_threshold {
                self.record_stall(now, late);
            }
        }
        self.node.handle_timeout(now);
    }

    /// Records the stall clock's samples since the last read in this node's histogram
    /// and metrics; a stall among them (or one in progress that the clock has not
    /// recorded yet) becomes `last_stall`. Returns the longest lateness it saw.
    fn read_stall_clock(&mut self, now: Time) -> Duration {
        let clock = stall_clock::clock();
        let threshold = self.node.config().stall_threshold;
        // Before the samples: the clock stores its next due time after recording a
        // sample, so a due time that moved on means the sample is there to read. The
        // driver may resume and read its backlog before the clock's thread runs.
        let overdue = clock.overdue(self.shared.instant(now).into_std());
        let mut longest = Duration::ZERO;
        let mut stall = None;
        if clock.has_news(self.stall_cursor) {
            let mut hist = lock(&self.shared.stalls);
            let (shared, metrics) = (&self.shared, &self.metrics);
            clock.read_since(&mut self.stall_cursor, |s| {
                hist.record(s.late);
                metrics.timer_lateness(s.late);
                longest = longest.max(s.late);
                if s.late > threshold {
                    stall = Some(StallSpan {
                        end: shared.time_at(s.at.into()),
                        len: s.late,
                    });
                }
            });
            hist.set_observed(now.saturating_since(Time::ZERO));
        }
        if overdue > threshold {
            stall = Some(StallSpan {
                end: now,
                len: overdue,
            });
        }
        if let Some(s) = stall {
            debug!(late_ms = s.len.as_millis() as u64, "the process stalled");
            self.last_stall = Some(s);
        }
        longest.max(overdue)
    }

    /// The health gauges. Once a second and when the node's own state changes (see
    /// `publish`), not per input: a check builds its reason strings. The whole
    /// registry's: the service's readiness, dependencies included (cached).
    fn export_health(&mut self) {
        let health = &self.shared.registry;
        let (ready, started) = (health.readiness().ok, health.startup().ok);
        self.metrics
            .set_health(self.node.local_health(), ready, started);
        self.health_exported = Some(self.health_key());
    }

    /// What the health gauges and parts depend on in the node's own state (the
    /// suspicion log: a suspicion of this node, its refutation).
    fn health_key(&self) -> HealthKey {
        (
            self.node.is_joined(),
            self.node.is_synced(),
            self.node.is_leaving() || self.shared.is_draining(),
            self.node.local_health() > self.shared.health.max_local_health,
            self.suspicion,
            self.node.incarnation(),
        )
    }

    /// One lateness sample of this driver's own, in the histogram and the metrics.
    fn record_stall(&mut self, now: Time, late: Duration) {
        let mut stalls = lock(&self.shared.stalls);
        stalls.record(late);
        stalls.set_observed(now.saturating_since(Time::ZERO));
        self.metrics.timer_lateness(late);
    }

    /// Sends every queued datagram, delivers every event, publishes the new state.
    async fn flush(&mut self) {
        let now = self.shared.now();
        while let Some(t) = self.node.poll_transmit(now, &mut self.send_buf) {
            trace!(to = %t.destination, len = t.len, "send");
            let datagram = &self.send_buf[..t.len];
            let mut sent = self.socket.send_to(datagram, t.destination).await;
            let earlier = sent.as_ref().is_err_and(is_earlier_datagrams_error);
            if earlier {
                // The error was about an earlier datagram and this one never left:
                // the failed call consumed the pending error, so one retry sends it.
                self.rt.send_retries += 1;
                sent = self.socket.send_to(datagram, t.destination).await;
            }
            if let Err(e) = sent {
                self.rt.send_errors += 1;
                debug!(to = %t.destination, error = %e, "send_to failed");
            }
            if earlier {
                self.on_net_errors(None);
            }
        }
        while let Some(event) = self.node.poll_event() {
            self.on_event(now, &event);
            // No receiver is not an error: nobody is listening.
            let _ = self.events.send(Arc::new(event));
        }
        self.publish();
    }

    fn on_event(&mut self, now: Time, event: &Event) {
        match event {
            Event::JoinedCluster => info!("joined the cluster"),
            Event::Synced => debug!("first state sync done"),
            Event::MemberJoined(m) => {
                debug!(member = m.name(), incarnation = m.incarnation, addr = %m.addr, "member joined");
            }
            Event::MemberUpdated(m) => {
                debug!(
                    member = m.name(),
                    incarnation = m.incarnation,
                    "member updated"
                );
            }
            Event::MemberSuspected { member, cause } => {
                debug!(
                    member = member.name(),
                    incarnation = member.incarnation,
                    cause = cause.as_str(),
                    "member suspected"
                );
            }
            Event::MemberAlive(m) => {
                debug!(
                    member = m.name(),
                    incarnation = m.incarnation,
                    "member refuted suspicion"
                );
            }
            Event::MemberDead { member, cause } => {
                debug!(
                    member = member.name(),
                    incarnation = member.incarnation,
                    cause = cause.as_str(),
                    "member dead"
                );
            }
            Event::MemberLeft(m) => {
                debug!(
                    member = m.name(),
                    incarnation = m.incarnation,
                    "member left"
                );
            }
            Event::SelfSuspected { by, incarnation } => {
                let explained = self.suspicion.record(
                    now,
                    *incarnation,
                    self.last_stall,
                    self.shared.health.stall_grace,
                );
                debug!(%by, incarnation, explained_by_stall = explained, "suspected by a peer, refuting");
            }
            Event::SelfRefuted { incarnation } => {
                debug!(incarnation, "refuted");
            }
            Event::Broadcast { origin, payload } => {
                trace!(%origin, len = payload.len(), "broadcast delivered");
                return;
            }
        }
        self.members_dirty = true;
    }

    /// Publishes status, stats and (if changed) the member list; exports metrics.
    fn publish(&mut self) {
        let stats = self.node.stats();
        self.metrics.export(&stats, &self.rt);
        if stats.members_reaped != self.reaped {
            self.reaped = stats.members_reaped;
            self.members_dirty = true;
        }
        {
            let mut st = self.shared.status();
            st.joined = self.node.is_joined();
            st.join_pending = self.join_pending;
            st.live_peers = self.node.live_count().saturating_sub(1);
            st.synced = self.node.is_synced();
            st.leaving = self.node.is_leaving();
            st.local_health = self.node.local_health();
            st.suspicion = self.suspicion;
            st.stats = stats;
            st.runtime = self.rt;
            if self.members_dirty {
                st.local = self.node.local_member();
            }
        }
        if Some(self.health_key()) != self.health_exported {
            self.export_health();
            // The registry's monitor logs and publishes the flip now, not at its
            // next idle look.
            self.shared.registry.poke();
        }
        if self.members_dirty {
            self.members_dirty = false;
            let list: Vec<Member> = self.node.members().collect();
            self.metrics.set_members(count_states(list.iter()));
            self.members.send_replace(Arc::new(list));
        }
    }
}

/// Whether a failed send or receive reports an ICMP error that arrived for an earlier
/// datagram rather than anything about this call. Linux keeps such an error pending on the socket
/// (with `IP_RECVERR`, for every destination of an unconnected socket) and fails the
/// next send or receive with it, whoever that datagram is for, without sending it. A
/// node that probes a crashed member would otherwise lose its next datagram (an ack, a
/// ping-req) to the refusal it is about to act on.
fn is_earlier_datagrams_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}
