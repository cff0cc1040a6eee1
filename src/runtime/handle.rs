//! The application's side of a running node: queries, commands, events, shutdown.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::health::Health;
use crate::error::CommandError;
use crate::event::{Event, Member};
use crate::id::NodeId;
use crate::keyring::Key;
use crate::runtime::seeds::{Seed, SeedReport, resolve_all};
use crate::runtime::shared::{RuntimeStats, Shared, lock};
use crate::runtime::stall::StallHistogram;
use crate::stats::NodeStats;

/// What a [`Handle`] asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    SetMetadata(Bytes, oneshot::Sender<Result<(), CommandError>>),
    Broadcast(Bytes, oneshot::Sender<Result<(), CommandError>>),
    /// Readiness false now; after this drain, gossip Leave, then stop once it has gone
    /// out (or `leave_timeout` passed).
    Leave(Duration),
    /// Seed addresses to join through or, once joined, to sync with if unknown
    /// (`replace`: the seed task's latest answer, else added to what is held);
    /// answered with how many were contacted.
    Seeds {
        addrs: Vec<SocketAddr>,
        replace: bool,
        reply: oneshot::Sender<usize>,
    },
    /// Stop processing for this long (demos and tests); acknowledged when it begins.
    Freeze(Duration, oneshot::Sender<()>),
    /// A keyring change (add, use, remove).
    Keyring(KeyringOp, oneshot::Sender<Result<(), CommandError>>),
}

/// One step of a key rotation.
#[derive(Debug)]
pub(crate) enum KeyringOp {
    Add(Key),
    Use(Key),
    Remove(Key),
}

/// A [`Handle`] request failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The core refused the command; nothing changed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The driver has stopped (aborted, left, or panicked); nothing changed.
    #[error("the rumor driver has stopped")]
    Stopped,
    /// No seed given to [`Handle::join`] resolved to an address; each one's error is
    /// listed.
    #[error("no seed resolved: {0}")]
    NoSeedResolved(String),
}

/// The event stream fell behind: this many events were dropped (oldest first) because
/// the stream's buffer (`RuntimeBuilder::event_capacity`) was full. Membership is still
/// right in [`Handle::members`]; only the notifications were lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("event stream lagged: {0} events dropped")]
pub struct Lagged(pub u64);

/// Events of one node, in order, from the moment [`Handle::events`] was called. Each
/// stream has its own buffer; a stream that is not read keeps nothing waiting in the
/// driver (the driver never blocks on a slow reader), and a reader that falls behind is
/// told how many events it missed instead of missing them silently.
#[derive(Debug)]
pub struct EventStream {
    rx: Option<broadcast::Receiver<Arc<Event>>>,
}

impl EventStream {
    /// The next event; `Some(Err(Lagged(n)))` once after `n` events were dropped
    /// because this stream fell behind; `None` when the driver has stopped and every
    /// event before that was read.
    pub async fn next(&mut self) -> Option<Result<Event, Lagged>> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(e) => Some(Ok(unshare(e))),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Err(Lagged(n))),
            Err(broadcast::error::RecvError::Closed) => {
                self.rx = None;
                None
            }
        }
    }

    /// Like [`next`](EventStream::next) without waiting: `None` when no event is
    /// buffered right now or the driver has stopped.
    pub fn try_next(&mut self) -> Option<Result<Event, Lagged>> {
        let rx = self.rx.as_mut()?;
        match rx.try_recv() {
            Ok(e) => Some(Ok(unshare(e))),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(Lagged(n))),
            Err(broadcast::error::TryRecvError::Closed) => {
                self.rx = None;
                None
            }
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }
}

/// The event out of the channel's shared pointer: moved out when this stream was its
/// last reader, cloned otherwise.
fn unshare(e: Arc<Event>) -> Event {
    Arc::try_unwrap(e).unwrap_or_else(|shared| (*shared).clone())
}

/// A running node, as the application sees it. Cheap to clone; every clone talks to
/// the same driver task. Queries read what the driver last published and never wait on
/// it; commands are sent to it and answered.
///
/// The driver runs until it has left the cluster (its [`CancellationToken`] was
/// cancelled, or [`leave_and_drain`](Handle::leave_and_drain) was called: peers see it
/// Left) or [`abort`](Handle::abort) stops it at once (peers find it failed). Dropping
/// every handle does *not* stop it.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cmds: mpsc::Sender<Command>,
    pub(crate) members: watch::Receiver<Arc<Vec<Member>>>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.shared.name)
            .field("local_addr", &self.shared.local_addr)
            .field("advertise", &self.shared.advertise)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// This node's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// This node's compact id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// The address the socket is bound to (with the actual port if bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The address peers send to.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.shared.advertise
    }

    /// Every known member other than this node (dead and departed ones included until
    /// they are reaped), as of the driver's last change.
    pub fn members(&self) -> Vec<Member> {
        self.members.borrow().as_ref().clone()
    }

    /// A watch on the member list: `changed().await` wakes on each change. The value is
    /// the same list [`members`](Handle::members) returns.
    pub fn watch_members(&self) -> watch::Receiver<Arc<Vec<Member>>> {
        self.members.clone()
    }

    /// This node as its peers see it (incarnation, metadata, state).
    pub fn local_member(&self) -> Member {
        self.shared.status().local.clone()
    }

    /// A stream of this node's events. The first call (on any clone) gets every event
    /// since [`start`](crate::RuntimeBuilder::start), the join's included; later calls
    /// get the events from the moment of the call. Ends when the driver stops.
    pub fn events(&self) -> EventStream {
        if let Some(rx) = lock(&self.shared.first_events).take() {
            return EventStream { rx: Some(rx) };
        }
        EventStream {
            rx: lock(&self.shared.events).as_ref().map(|tx| tx.subscribe()),
        }
    }

    /// The core's counters as of the driver's last input.
    pub fn stats(&self) -> NodeStats {
        self.shared.status().stats
    }

    /// The runtime's own counters (socket errors, timers).
    pub fn runtime_stats(&self) -> RuntimeStats {
        self.shared.status().runtime
    }

    /// Lifeguard's local health score (0 = healthy).
    pub fn local_health(&self) -> u32 {
        self.shared.status().local_health
    }

    /// The health registry this node is plugged into (liveness, readiness, startup):
    /// the one given to [`RuntimeBuilder::health_registry`](crate::RuntimeBuilder::health_registry),
    /// or the node's own.
    pub fn health(&self) -> Health {
        self.shared.registry.clone()
    }

    /// How late the driver's timers fired so far: this process's own stalls.
    pub fn stall_histogram(&self) -> StallHistogram {
        lock(&self.shared.stalls).clone()
    }

    /// Writes the timer lateness samples above
    /// [`PAUSE_SAMPLE_MIN`](crate::PAUSE_SAMPLE_MIN) (5 ms) to `path` as the pauses file
    /// `rumor-sim tune --pauses FILE` reads (one pause in ms per line). Returns the
    /// number of pauses written. Blocking file I/O: call it from a blocking context or
    /// accept a short stall of the calling thread.
    pub fn write_pauses(&self, path: impl AsRef<Path>) -> io::Result<usize> {
        let hist = self.stall_histogram();
        let file = std::fs::File::create(path)?;
        hist.write_pauses(io::BufWriter::new(file))
    }

    /// Replaces this node's metadata and gossips it (at a new incarnation).
    pub async fn set_metadata(&self, metadata: impl Into<Bytes>) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::SetMetadata(metadata.into(), tx)).await?;
        rx.await
            .map_err(|_| HandleError::Stopped)?
            .map_err(Into::into)
    }

    /// Sends `payload` to every other member once, by gossip (best effort). Members
    /// receive it as [`Event::Broadcast`].
    pub async fn broadcast(&self, payload: impl Into<Bytes>) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Broadcast(payload.into(), tx)).await?;
        rx.await
            .map_err(|_| HandleError::Stopped)?
            .map_err(Into::into)
    }

    /// Adds `key` to the keyring (it opens packets at once). Rotation step 1, on every
    /// member before step 2.
    pub async fn keyring_add(&self, key: Key) -> Result<(), HandleError> {
        self.keyring(KeyringOp::Add(key)).await
    }

    /// Makes `key` (already added) the key that seals outgoing packets. Rotation step 2,
    /// once every member has the key.
    pub async fn keyring_use(&self, key: Key) -> Result<(), HandleError> {
        self.keyring(KeyringOp::Use(key)).await
    }

    /// Removes `key` (not the primary). Rotation step 3, once every member seals with
    /// the new key.
    pub async fn keyring_remove(&self, key: Key) -> Result<(), HandleError> {
        self.keyring(KeyringOp::Remove(key)).await
    }

    async fn keyring(&self, op: KeyringOp) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Keyring(op, tx)).await?;
        rx.await
            .map_err(|_| HandleError::Stopped)?
            .map_err(Into::into)
    }

    /// Leaves the cluster gracefully, in the order load balancers and peers need:
    /// readiness goes false at once; after `drain` (for load balancers to notice) the
    /// node gossips Leave; it keeps running until the Leave has gone out (no update
    /// left to send) or `RuntimeBuilder::leave_timeout` passed; then the driver stops.
    /// Peers see this node Left, never Dead.
    ///
    /// Returns `Ok` once the driver has stopped after leaving, also when the leave had
    /// begun already (the cancellation token was cancelled first: the later of the two
    /// drains wins, unless the Leave has gone out already) or had ended before the call.
    /// `Err(Stopped)` only if the driver stopped without leaving
    /// ([`abort`](Handle::abort), a panic).
    pub async fn leave_and_drain(&self, drain: Duration) -> Result<(), HandleError> {
        // Readiness false now, not when the driver reads the command.
        self.shared.draining.store(true, Ordering::Relaxed);
        // Failing to send means the driver stopped; whether it left tells the rest.
        let _ = self.send(Command::Leave(drain)).await;
        self.shared.stopped.cancelled().await;
        if self.shared.left.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(HandleError::Stopped)
        }
    }

    /// Stops the driver at once, without a Leave: peers will find this node failed
    /// (for tests that simulate a crash, and for a process that must stop now). Does
    /// not wait for the driver to stop ([`stopped`](Handle::stopped) does).
    pub fn abort(&self) {
        self.shared.abort.cancel();
    }

    /// Joins through more seeds, learned after start (names are resolved once, off the
    /// driver). Before this node has joined, they join its seeds, and it knocks at the
    /// next few of them; once it has, it syncs with each address that no live member
    /// holds, which merges two clusters that formed apart. Returns how many addresses
    /// were contacted now (0 once joined: each is this node or a live member already;
    /// 0 too while draining or leaving); `Err(NoSeedResolved)` if none resolved.
    pub async fn join<S: Into<Seed>>(
        &self,
        seeds: impl IntoIterator<Item = S>,
    ) -> Result<usize, HandleError> {
        let seeds: Vec<Seed> = seeds.into_iter().map(Into::into).collect();
        let mut reports = Vec::new();
        let addrs = resolve_all(
            &seeds,
            &self.shared.resolver,
            self.shared.resolve_timeout,
            &mut reports,
        )
        .await;
        if addrs.is_empty() {
            let why: Vec<String> = reports.iter().map(SeedReport::describe).collect();
            return Err(HandleError::NoSeedResolved(why.join("; ")));
        }
        let (tx, rx) = oneshot::channel();
        self.send(Command::Seeds {
            addrs,
            replace: false,
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// **For demos and tests.** Makes the driver stop processing for `duration`: it
    /// sleeps without reading its socket or firing its timers, which is what a GC pause
    /// or `SIGSTOP` looks like to peers (datagrams queue in the socket's receive
    /// buffer). [`abort`](Handle::abort) still stops it; a cancellation waits for it to
    /// end, as a SIGTERM waits for a stopped process. Returns once the freeze has begun.
    pub async fn freeze(&self, duration: Duration) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Freeze(duration, tx)).await?;
        rx.await.map_err(|_| HandleError::Stopped)
    }

    /// The token that makes the node leave when cancelled (readiness false, the
    /// builder's [`drain`](crate::RuntimeBuilder::drain), Leave, stop): the one given to
    /// [`RuntimeBuilder::cancel_token`](crate::RuntimeBuilder::cancel_token), or the
    /// builder's own.
    pub fn cancel_token(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// Whether the driver has stopped.
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.is_cancelled()
    }

    /// Waits until the driver has stopped.
    pub async fn stopped(&self) {
        self.shared.stopped.cancelled().await;
    }

    async fn send(&self, cmd: Command) -> Result<(), HandleError> {
        if self.shared.stopped.is_cancelled() {
            return Err(HandleError::Stopped);
        }
        tokio::select! {
            r = self.cmds.send(cmd) => r.map_err(|_| HandleError::Stopped),
            () = self.shared.stopped.cancelled() => Err(HandleError::Stopped),
        }
    }
}
