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
