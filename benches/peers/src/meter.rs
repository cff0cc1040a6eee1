//! CPU time inside the library's calls and bytes on the wire.

use std::time::Instant;

/// What one loop spent: the sum of monotonic-clock time inside every call into the
/// library, how many calls, and the payload bytes the library asked to send.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meter {
    /// Nanoseconds inside the library's calls, timer overhead included.
    pub cpu_ns: u64,
    /// Timed calls (each adds one clock-read pair of overhead to `cpu_ns`).
    pub calls: u64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Bytes of datagram payload (no UDP/IP headers).
    pub datagram_bytes: u64,
    /// Bytes written to TCP-like streams (kinship's push-pull), length prefixes included.
    pub stream_bytes: u64,
}

impl Meter {
    /// Runs `f` (one call into the library) on the clock.
    #[inline]
    #[allow(
        clippy::disallowed_methods,
        reason = "the harness, not the core: timing the library's calls is its job"
    )]
    pub fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let r = f();
        self.cpu_ns += start.elapsed().as_nanos() as u64;
        self.calls += 1;
        r
    }

    /// `cpu_ns` less the calls' own clock overhead (`overhead_ns` per call, from
    /// [`timer_overhead_ns`]).
    pub fn cpu_ns_net(&self, overhead_ns: f64) -> f64 {
        (self.cpu_ns as f64 - self.calls as f64 * overhead_ns).max(0.0)
    }
}

/// Mean nanoseconds that [`Meter::time`] adds around an empty call on this machine: two
/// reads of the monotonic clock. Subtracted from every call so that a library that is
/// called often is not charged for the harness's clock.
pub fn timer_overhead_ns() -> f64 {
    let mut m = Meter::default();
    let reps = 200_000u64;
    // The smallest of a few rounds: the machine is shared, noise only adds.
    (0..5)
        .map(|_| {
            m = Meter::default();
            for i in 0..reps {
                m.time(|| std::hint::black_box(i));
            }
            m.cpu_ns as f64 / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// This thread's CPU time in nanoseconds: what it ran, not what the wall clock saw pass
/// while other processes had the core.
pub fn thread_cpu_ns() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Wall and thread-CPU time over a loop's window slices: their ratio is the share of the
/// time the thread ran rather than waited for a core.
#[derive(Clone, Copy, Debug, Default)]
pub struct Running {
    /// Wall-clock nanoseconds of the slices.
    pub wall_ns: u64,
    /// Thread-CPU nanoseconds of the same slices.
    pub cpu_ns: u64,
}

impl Running {
    /// Runs `f` (one slice of the window) on both clocks.
    #[allow(
        clippy::disallowed_methods,
        reason = "the harness, not the core: timing the library's calls is its job"
    )]
    pub fn slice(&mut self, f: impl FnOnce()) {
        let wall = Instant::now();
        let cpu = thread_cpu_ns();
        f();
        self.cpu_ns += thread_cpu_ns().saturating_sub(cpu);
        self.wall_ns += wall.elapsed().as_nanos() as u64;
    }

    /// The share of the slices' wall time the thread ran, at most 1 (1 if nothing ran).
    /// A timed call is on average preempted as often as its slice: multiplying the
    /// calls' wall time by this share takes out the time other processes had the core.
    pub fn share(&self) -> f64 {
        if self.wall_ns == 0 {
            return 1.0;
        }
        (self.cpu_ns as f64 / self.wall_ns as f64).min(1.0)
    }
}
