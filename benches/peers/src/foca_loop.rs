//! foca's members on the shared loop: `handle_data` and `handle_timer` on the meter, with
//! the [`Runtime`] callbacks foca makes from inside them (copying datagrams and timers into
//! reused buffers) counted as part of those calls.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use foca::{Config, Foca, NoCustomBroadcast, Notification, PostcardCodec, Runtime, Timer};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::queue::Queue;
use crate::{Cluster, DELAY_NS, Meter, Nanos, addr, index_of};

type Member = Foca<SocketAddr, PostcardCodec, SmallRng, NoCustomBroadcast>;

/// The config every member runs: `Config::new_lan(n)` (memberlist's LAN values, with the
/// suspicion timeout and retransmissions scaled to `n`).
pub fn config(n: usize) -> Config {
    Config::new_lan(NonZeroU32::new(n.max(1) as u32).expect("n >= 1"))
}

/// A member that knows no one yet.
pub fn fresh(n: usize) -> Member {
    Foca::new(
        addr(1),
        config(n),
        SmallRng::seed_from_u64(1),
        PostcardCodec,
    )
}

/// What foca hands its runtime during one call, in buffers kept between calls.
#[derive(Default)]
struct Outbox {
    data: Vec<u8>,
    sends: Vec<(SocketAddr, usize, usize)>,
    timers: Vec<(Duration, Timer<SocketAddr>)>,
    down: Vec<SocketAddr>,
}

impl Runtime<SocketAddr> for Outbox {
    fn notify(&mut self, notification: Notification<'_, SocketAddr>) {
        if let Notification::MemberDown(id) = notification {
            self.down.push(*id);
        }
    }

    fn send_to(&mut self, to: SocketAddr, data: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(data);
        self.sends.push((to, start, self.data.len()));
    }

    fn submit_after(&mut self, event: Timer<SocketAddr>, after: Duration) {
        self.timers.push((after, event));
    }
}

enum Ev {
    Deliver {
        to: usize,
        data: Vec<u8>,
    },
    Timer {
        node: usize,
        timer: Timer<SocketAddr>,
    },
}

/// `n` foca members.
pub struct FocaCluster {
    nodes: Vec<Option<Member>>,
    queue: Queue<Ev>,
    now: Nanos,
    meter: Meter,
    out: Outbox,
    victim: Option<SocketAddr>,
    dead_at: Vec<Option<Nanos>>,
    cfg: Config,
}

impl FocaCluster {
    /// `n` members, seeded from `seed`, not joined.
    pub fn new(n: usize, seed: u64) -> FocaCluster {
        let cfg = config(n);
        let nodes = (0..n)
            .map(|i| {
                let rng =
                    SmallRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
                Some(Foca::new(addr(i), cfg.clone(), rng, PostcardCodec))
            })
            .collect();
        FocaCluster {
            nodes,
            queue: Queue::default(),
            now: 0,
            meter: Meter::default(),
            out: Outbox::default(),
            victim: None,
            dead_at: vec![None; n],
            cfg,
        }
    }

    /// Queues what member `i` handed its runtime during the last call.
    fn after(&mut self, i: usize) {
        for &(to, start, end) in &self.out.sends {
            self.meter.datagrams += 1;
            self.meter.datagram_bytes += (end - start) as u64;
            if let Some(j) = index_of(to).filter(|&j| j < self.nodes.len()) {
                let data = self.out.data[start..end].to_vec();
                self.queue
                    .push(self.now + DELAY_NS, Ev::Deliver { to: j, data });
            }
        }
        self.out.data.clear();
        self.out.sends.clear();
        for (after, timer) in self.out.timers.drain(..) {
            let at = self.now + after.as_nanos() as Nanos;
            self.queue.push(at, Ev::Timer { node: i, timer });
        }
        for id in self.out.down.drain(..) {
            if Some(id) == self.victim && self.dead_at[i].is_none() {
                self.dead_at[i] = Some(self.now);
            }
        }
    }
}

impl Cluster for FocaCluster {
    fn len(&self) -> usize {
        self.nodes.len()
    }

    fn join(&mut self, i: usize) {
        let out = &mut self.out;
        if let Some(node) = self.nodes[i].as_mut() {
            // An announce that fails (it cannot: the codec writes to memory) is a join that
            // never converges, which the convergence check reports.
            let _ = self.meter.time(|| node.announce(addr(0), &mut *out));
        }
        self.after(i);
    }

    fn run_until(&mut self, t: Nanos) {
        while let Some((at, ev)) = self.queue.pop_until(t) {
            self.now = at;
            let out = &mut self.out;
            let i = match ev {
                Ev::Deliver { to, data } => {
                    let Some(node) = self.nodes[to].as_mut() else {
                        continue;
                    };
                    // Errors are refused packets: counted by nobody, as a driver would log them.
                    let _ = self.meter.time(|| node.handle_data(&data, &mut *out));
                    to
                }
                Ev::Timer { node: i, timer } => {
                    let Some(node) = self.nodes[i].as_mut() else {
                        continue;
                    };
                    let _ = self.meter.time(|| node.handle_timer(timer, &mut *out));
                    i
                }
            };
            self.after(i);
        }
        self.now = self.now.max(t);
    }

    fn now(&self) -> Nanos {
        self.now
    }

    fn known(&self, i: usize) -> usize {
        self.nodes[i].as_ref().map_or(0, |n| n.num_members())
    }

    fn crash(&mut self, i: usize) {
        self.victim = Some(addr(i));
        self.nodes[i] = None;
    }

    fn dead_at(&self, observer: usize) -> Option<Nanos> {
        self.dead_at[observer]
    }

    fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    fn drop_member(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    fn meter(&mut self) -> &mut Meter {
        &mut self.meter
    }

    fn detection_config(&self) -> String {
        let c = &self.cfg;
        format!(
            "SWIM: period {:?}, rtt {:?}, {} indirect, suspect to down after {:?}",
            c.probe_period, c.probe_rtt, c.num_indirect_probes, c.suspect_to_down_after
        )
    }
}
