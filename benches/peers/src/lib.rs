//! rumor beside foca 2.0.0 and kinship-core 0.5.0 on one seeded, deterministic in-memory
//! event loop: a virtual clock, a network with a fixed one-way delay, no sockets.
//!
//! Each library gets a loop of its own ([`rumor_loop`], [`foca_loop`], [`kinship_loop`])
//! behind the [`Cluster`] trait; [`scenario`] runs the same script over each (join through
//! node 0, converge, settle, measure a steady window, crash a member, weigh one node) and
//! [`table`] prints the rows and the ratios. See README.md for what each row means.

pub mod heap;
pub mod meter;
pub mod queue;
pub mod scenario;
pub mod table;

pub mod foca_loop;
pub mod kinship_loop;
pub mod rumor_loop;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use meter::Meter;

/// Virtual time in nanoseconds since the start of a run.
pub type Nanos = u64;

/// One-way delay of every datagram and stream write: a quiet LAN (round trip 1 ms).
pub const DELAY: Duration = Duration::from_micros(500);

/// [`DELAY`] in nanoseconds.
pub const DELAY_NS: Nanos = DELAY.as_nanos() as Nanos;

/// The address of member `i`: 10.x.y.z, one port, never bound.
pub fn addr(i: usize) -> SocketAddr {
    let [_, a, b, c] = (i as u32).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, a, b, c)), 7946)
}

/// The name of member `i`.
pub fn name(i: usize) -> String {
    format!("node-{i}")
}

/// The index of the member at `a`, the inverse of [`addr`].
pub fn index_of(a: SocketAddr) -> Option<usize> {
    match a.ip() {
        IpAddr::V4(ip) => {
            let [_, x, y, z] = ip.octets();
            Some(u32::from_be_bytes([0, x, y, z]) as usize)
        }
        IpAddr::V6(_) => None,
    }
}

/// Which library a loop drives, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Library {
    /// foca 2.0.0, `Config::new_lan(n)`, postcard codec, `SocketAddr` identities.
    Foca,
    /// kinship-core 0.5.0, `Config::lan`.
    Kinship,
    /// rumor, `Config::lan()` (the default strategy: phi monitors).
    RumorPhi,
    /// rumor, `Config::lan()` with `Strategy::Swim`.
    RumorSwim,
}

impl Library {
    /// Every column, in table order.
    pub const ALL: [Library; 4] = [
        Library::Foca,
        Library::Kinship,
        Library::RumorPhi,
        Library::RumorSwim,
    ];

    /// Column heading.
    pub fn label(self) -> &'static str {
        match self {
            Library::Foca => "foca",
            Library::Kinship => "kinship",
            Library::RumorPhi => "rumor phi",
            Library::RumorSwim => "rumor swim",
        }
    }

    /// Whether the library can seal its packets.
    pub fn encrypts(self) -> bool {
        !matches!(self, Library::Foca)
    }

    /// A loop of `n` members of this library, none joined yet.
    pub fn cluster(self, n: usize, seed: u64, encrypted: bool) -> Box<dyn Cluster> {
        match self {
            Library::Foca => Box::new(foca_loop::FocaCluster::new(n, seed)),
            Library::Kinship => Box::new(kinship_loop::KinshipCluster::new(n, seed, encrypted)),
            Library::RumorPhi => Box::new(rumor_loop::RumorCluster::new(
                n,
                seed,
                encrypted,
                rumor::Strategy::PhiMonitors,
            )),
            Library::RumorSwim => Box::new(rumor_loop::RumorCluster::new(
                n,
                seed,
                encrypted,
                rumor::Strategy::Swim,
            )),
        }
    }

    /// Heap bytes one fresh member holds before it knows anyone (see [`heap::fresh`]).
    pub fn fresh_heap(self, n: usize, encrypted: bool) -> i64 {
        match self {
            Library::Foca => heap::fresh(|| foca_loop::fresh(n)),
            Library::Kinship => heap::fresh(|| kinship_loop::fresh(encrypted)),
            Library::RumorPhi => {
                heap::fresh(|| rumor_loop::fresh(encrypted, rumor::Strategy::PhiMonitors))
            }
            Library::RumorSwim => {
                heap::fresh(|| rumor_loop::fresh(encrypted, rumor::Strategy::Swim))
            }
        }
    }
}

/// One library's members on the shared loop design: every call into the library is timed
/// into the [`Meter`]; the driver's own work (queueing, copying datagrams) is not.
pub trait Cluster {
    /// How many members the loop was built with, crashed ones included.
    fn len(&self) -> usize;
    /// Whether the loop holds no members.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Member `i` joins through member 0, with the library's own join.
    fn join(&mut self, i: usize);
    /// Runs every event due up to and including `t`, then sets the clock to `t`.
    fn run_until(&mut self, t: Nanos);
    /// The virtual time now.
    fn now(&self) -> Nanos;
    /// Live members other than itself that member `i` holds (0 if it is down).
    fn known(&self, i: usize) -> usize;
    /// Member `i` stops: it sends and answers nothing from now on (its host is silent).
    /// Its declarations of death by the others are recorded from now on.
    fn crash(&mut self, i: usize);
    /// When member `observer` declared the crashed member dead, if it has.
    fn dead_at(&self, observer: usize) -> Option<Nanos>;
    /// Whether member `i` is running.
    fn is_up(&self, i: usize) -> bool;
    /// Drops member `i` (after a crash too): what [`heap::freed_by`] weighs.
    fn drop_member(&mut self, i: usize);
    /// The CPU and byte counters.
    fn meter(&mut self) -> &mut Meter;
    /// The detection timing the library is configured with, as a short sentence.
    fn detection_config(&self) -> String;
}
