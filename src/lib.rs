//! # rumor
//!
//! Cluster membership and failure detection: a SWIM-style gossip protocol whose
//! suspect → dead decisions come from phi-accrual detectors run by a few monitors per
//! member, with Lifeguard's defences against slow observers.
//!
//! ## In a tokio service
//!
//! With the `tokio` feature (on by default), [`RuntimeBuilder`] starts a node on a UDP
//! socket and returns a [`Handle`]: members, events, metadata, broadcasts, a graceful
//! [`leave_and_drain`](Handle::leave_and_drain), stats and the measured stall
//! histogram, and a [`Health`] for Kubernetes probes (`axum` feature: `/livez`,
//! `/readyz`, `/startupz`). Metrics go through the `metrics` facade; the library never
//! installs a recorder or a signal handler.
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let members = rumor::RuntimeBuilder::new("svc-1")
//!     .bind("0.0.0.0:7946".parse()?)
//!     .advertise("10.0.0.1:7946".parse()?)
//!     .seeds(["10.0.0.2:7946"]) // or a name: "rumor.ns.svc.cluster.local:7946"
//!     .config(rumor::Config::lan())
//!     .start()
//!     .await?;
//! let mut events = members.events(); // reports lag instead of dropping silently
//! while let Some(event) = events.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! ## The sans-IO core
//!
//! The core, [`Node`], is a state machine: it owns no socket, no clock and no thread.
//! The caller feeds it datagrams ([`Node::handle_packet`]) and time
//! ([`Node::handle_timeout`]) and drains what it wants sent ([`Node::poll_transmit`]),
//! when to wake it ([`Node::poll_timeout`]) and what happened ([`Node::poll_event`]).
//! Same config, seed and inputs give the same outputs, bit for bit, which is what lets
//! the `rumor-sim` simulator run the very same code for thousands of nodes.
//!
//! ```
//! use std::net::SocketAddr;
//! use rumor::{Config, Identity, Node, Time};
//!
//! let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
//! let mut node = Node::new(Identity::new("a", addr), Config::lan(), 42, Time::ZERO).unwrap();
//! node.join(Time::ZERO, &[]); // no seeds: a cluster of one
//! let mut buf = [0u8; 1400];
//! while let Some(t) = node.poll_transmit(Time::ZERO, &mut buf) {
//!     let _datagram = &buf[..t.len]; // send it to t.destination
//! }
//! while let Some(event) = node.poll_event() {
//!     println!("{event:?}");
//! }
//! let _wake_at = node.poll_timeout();
//! ```

// docs.rs builds with `--cfg docsrs` (Cargo.toml's metadata): each feature-gated item
// then says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// README.md's Rust blocks, compiled as doctests so the embedding snippet stays true.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

mod budget;
mod config;
pub mod detector;
mod dissemination;
pub mod duration;
mod error;
mod event;
mod hashing;
mod id;
mod keyring;
mod local_health;
mod members;
mod node;
mod probe_tokens;
#[cfg(feature = "tokio")]
mod runtime;
mod stats;
mod suspicion;
mod time;
mod timers;
mod wire;

#[cfg(feature = "serde")]
pub use config::ConfigOverlay;
pub use config::{Config, Strategy};
pub use error::{CommandError, ConfigError};
pub use event::{Cause, Event, Member, MemberState};
pub use id::{Identity, MAX_NAME_LEN, NodeId};
pub use keyring::{KEY_LEN, Key, Keyring, MAX_KEYS, SEAL_OVERHEAD};
pub use node::DetectorView;
pub use node::{Node, Transmit};
pub use probe_tokens::QUOTE_PREFIX;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use runtime::{
    CancellationToken, DEFAULT_PORT, DEFAULT_RESOLVE_TIMEOUT, EventStream, Handle, HandleError,
    Lagged, MAX_PAUSE_SAMPLES, PAUSE_SAMPLE_MIN, Resolve, ResolveFuture, RuntimeBuilder,
    RuntimeStats, STALL_BUCKETS, STALL_BUCKETS_SECONDS, Seed, SeedError, StallHistogram,
    StartError, SystemResolver,
};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use runtime::{
    Check, CheckOptions, CheckPart, Health, HealthConfig, HealthReport, Probe, StartupGate,
    Watchdog,
};
pub use stats::{DECODE_ERROR_KINDS, NodeStats};
pub use time::Time;
pub use wire::{DecodeError, DecodeErrorKind};

/// Internals exposed for the benches and fuzzers (feature `internals`): the wire codec
/// and the generated message types.
///
/// Not a stable API: names and signatures follow the crate's implementation and may
/// change in any release. Applications use [`Node`] and the runtime instead.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::keyring::{PAYLOAD_OFFSET, Sealer, is_sealed, open, seal};
    pub use crate::wire::generated as proto;
    pub use crate::wire::{
        DecodeLimits, decode_packet, encode_addr, encode_packet, pack_version, read_datagram,
        write_packet,
    };
}
