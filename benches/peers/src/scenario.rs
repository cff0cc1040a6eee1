//! The script every library runs: join through member 0, converge, settle, measure a
//! steady window, crash a member and time its detection, then weigh one member.

use crate::meter::Running;
use crate::{Cluster, Library, Nanos, heap};

const SEC: Nanos = 1_000_000_000;

/// How long each phase lasts, in virtual time.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Time between one member's join and the next one's.
    pub join_spacing: Nanos,
    /// Longest wait for every member to know every other one.
    pub converge_cap: Nanos,
    /// Time after convergence before the window opens, for the join's gossip to drain.
    pub settle: Nanos,
    /// The measured window, in whole protocol periods (1 s each).
    pub window_periods: u64,
    /// Longest wait for every survivor to declare the crashed member dead; 0 skips it.
    pub detect_cap: Nanos,
    /// Whether to weigh a member's heap at the end.
    pub weigh: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            join_spacing: SEC / 1000,
            converge_cap: 120 * SEC,
            settle: 30 * SEC,
            window_periods: 60,
            detect_cap: 120 * SEC,
            weigh: true,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// How the join ended.
    pub join: Join,
    /// µs inside the library's calls per member per period, clock overhead removed, scaled
    /// by `running_share`.
    pub cpu_us: f64,
    /// The same before scaling: wall time, preemptions by other processes included.
    pub cpu_us_wall: f64,
    /// The share of the window's wall time this thread ran (see [`Running::share`]).
    pub running_share: f64,
    /// Bytes sent per member per period, datagrams and stream writes together.
    pub bytes: f64,
    /// Of `bytes`, those written to streams.
    pub stream_bytes: f64,
    /// Datagrams per member per period.
    pub datagrams: f64,
    /// Heap one member holds beyond a fresh one's, per member it knows.
    pub heap_per_member: Option<f64>,
    /// Heap a fresh member holds before it knows anyone.
    pub heap_fresh: Option<f64>,
    /// Seconds from the crash until the last survivor declared it dead.
    pub detection_s: Option<f64>,
    /// Seconds from the crash until the first survivor declared it dead.
    pub first_detection_s: Option<f64>,
    /// The library's configured detection timing.
    pub detection_config: String,
}

/// Pairs (member, other member) that a running member does not yet hold as live.
pub fn missing_pairs(c: &dyn Cluster) -> u64 {
    let n = c.len();
    (0..n)
        .filter(|&i| c.is_up(i))
        .map(|i| (n - 1).saturating_sub(c.known(i)) as u64)
        .sum()
}

/// How a join ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Join {
    /// Seconds from the first join until every member knew every other, if they did.
    pub converged_s: Option<f64>,
    /// Pairs still missing when the wait ended (0 if converged).
    pub missing_pairs: u64,
}

impl Join {
    /// Converged, or so nearly (at most one pair in [`NEARLY`]) that the steady state is
    /// the converged one: the measurements stand, and the report names the run.
    pub fn usable(&self, n: usize) -> bool {
        self.converged_s.is_some() || self.missing_pairs * NEARLY <= (n * (n - 1)) as u64
    }
}

/// One missing pair in this many is still a steady state worth measuring.
pub const NEARLY: u64 = 1000;

/// Joins `n` members of `lib` through member 0 and runs until they converge or the cap
/// passes.
pub fn join_and_converge(
    lib: Library,
    n: usize,
    seed: u64,
    encrypted: bool,
    opts: &Options,
) -> (Box<dyn Cluster>, Join) {
    let mut c = lib.cluster(n, seed, encrypted);
    for i in 1..n {
        c.run_until(i as Nanos * opts.join_spacing);
        c.join(i);
    }
    let mut t = c.now();
    loop {
        let missing = missing_pairs(c.as_ref());
        if missing == 0 {
            let converged_s = Some(t as f64 / SEC as f64);
            return (
                c,
                Join {
                    converged_s,
                    missing_pairs: 0,
                },
            );
        }
        if t >= opts.converge_cap {
            return (
                c,
                Join {
                    converged_s: None,
                    missing_pairs: missing,
                },
            );
        }
        t += SEC / 4;
        c.run_until(t);
    }
}

/// A loop joined, converged and settled, its meter zeroed: ready for its window.
pub struct Prepared {
    /// Which library.
    pub lib: Library,
    /// Whether it seals its packets.
    pub encrypted: bool,
    /// The loop.
    pub cluster: Box<dyn Cluster>,
    /// How the join ended.
    pub join: Join,
    /// How much of the window's wall time the thread ran.
    pub running: Running,
}

/// Joins, converges and settles `n` members of `lib`, then zeroes the meter.
pub fn prepare(lib: Library, n: usize, seed: u64, encrypted: bool, opts: &Options) -> Prepared {
    let (mut cluster, join) = join_and_converge(lib, n, seed, encrypted, opts);
    let t = cluster.now() + opts.settle;
    cluster.run_until(t);
    *cluster.meter() = Default::default();
    Prepared {
        lib,
        encrypted,
        cluster,
        join,
        running: Running::default(),
    }
}

/// Runs the measured window of every loop in `group` in lockstep, one protocol period of
/// each in turn, so that whatever else the machine does in the meantime falls on every
/// library alike and the ratios hold even when the absolute times are noisy.
pub fn window(group: &mut [Prepared], opts: &Options) {
    for _ in 0..opts.window_periods {
        for p in group.iter_mut() {
            let t = p.cluster.now() + SEC;
            let c = &mut p.cluster;
            p.running.slice(|| c.run_until(t));
        }
    }
}

/// One full run of `lib` at `n` members, on its own. `overhead_ns` is the timer overhead
/// per call.
pub fn run(
    lib: Library,
    n: usize,
    seed: u64,
    encrypted: bool,
    opts: &Options,
    overhead_ns: f64,
) -> Run {
    let mut p = [prepare(lib, n, seed, encrypted, opts)];
    window(&mut p, opts);
    let [p] = p;
    finish(p, opts, overhead_ns)
}

/// Reads the window's meter, then (as `opts` asks) crashes a member and times its
/// detection, and weighs member 1.
pub fn finish(p: Prepared, opts: &Options, overhead_ns: f64) -> Run {
    let Prepared {
        lib,
        encrypted,
        cluster: mut c,
        join,
        running,
    } = p;
    let n = c.len();
    let mut r = Run {
        join,
        detection_config: c.detection_config(),
        ..Run::default()
    };
    let m = *c.meter();
    let member_periods = (n as u64 * opts.window_periods) as f64;
    r.cpu_us_wall = m.cpu_ns_net(overhead_ns) / 1000.0 / member_periods;
    r.running_share = running.share();
    r.cpu_us = r.cpu_us_wall * r.running_share;
    r.bytes = (m.datagram_bytes + m.stream_bytes) as f64 / member_periods;
    r.stream_bytes = m.stream_bytes as f64 / member_periods;
    r.datagrams = m.datagrams as f64 / member_periods;

    if opts.detect_cap > 0 && n >= 3 {
        let victim = n / 2;
        let crashed_at = c.now();
        c.crash(victim);
        let survivors: Vec<usize> = (0..n).filter(|&i| c.is_up(i)).collect();
        let deadline = crashed_at + opts.detect_cap;
        let mut t = crashed_at;
        while t < deadline && survivors.iter().any(|&i| c.dead_at(i).is_none()) {
            t += SEC / 10;
            c.run_until(t);
        }
        let times: Vec<Nanos> = survivors.iter().filter_map(|&i| c.dead_at(i)).collect();
        if times.len() == survivors.len() {
            let secs = |x: Nanos| (x - crashed_at) as f64 / SEC as f64;
            r.detection_s = times.iter().copied().max().map(secs);
            r.first_detection_s = times.iter().copied().min().map(secs);
        }
    }

    if opts.weigh && n >= 2 {
        let fresh = lib.fresh_heap(n, encrypted) as f64;
        let held = heap::freed_by(|| c.drop_member(1)) as f64;
        r.heap_fresh = Some(fresh);
        r.heap_per_member = Some((held - fresh) / (n - 1) as f64);
    }
    r
}
