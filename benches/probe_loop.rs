//! The probe loop in steady state: CPU one member spends per protocol period, in
//! clusters of 16, 256, 1,000 and 4,096 members (the node itself plus `n - 1` peers it
//! already knows, all alive, nothing left to gossip).
//!
//! One iteration is one protocol period of one `Node`, driven in-process with no
//! syscalls: its probe tick, the pings it sends and the acks that answer them, the
//! pings its own monitors send it and its acks to those, and any other timer that falls
//! due (the reap sweep every 37.5 s). Under the default `phi-monitors` strategy that is
//! 3 pings out, 3 acks in, 3 pings in and 3 acks out per period; under `swim`, 1 and 1
//! and 1 and 1 (its one inbound ping stands for the average member probing it once per
//! period). The peers are emulated by hand-written datagrams (`common/mod.rs`), a few
//! nanoseconds each, so the time is the node's.
//!
//! This is the figure behind the budget "non-syscall CPU per probe round ≤ 1 µs at
//! 1,000 members"; the sockets' own cost is the loopback floor (`benches/floor.rs`).
//! `scripts/callgrind.sh` counts the same loop in instructions.
//!
//! `cargo bench --bench probe_loop`

mod common;

use common::Steady;

fn main() {
    divan::main();
}

const SIZES: [usize; 4] = [16, 256, 1000, 4096];

// 5,000 periods per size: the reap sweep (every 37.5 periods) lands in about a quarter
// of the 10-period samples, so the median is a period without it and the mean carries
// it amortized.

/// Periods run before measuring: the detectors hold samples, buffers have grown.
const WARMUP: usize = 50;

/// Default strategy (`phi-monitors`, 3 monitors per member).
#[divan::bench(args = SIZES, sample_count = 500, sample_size = 10)]
fn phi_monitors(bencher: divan::Bencher<'_, '_>, members: usize) {
    let mut s = Steady::new(members, common::probe_config(), WARMUP);
    bencher.bench_local(|| s.period());
}

/// SWIM: one probe per period, round-robin.
#[divan::bench(args = SIZES, sample_count = 500, sample_size = 10)]
fn swim(bencher: divan::Bencher<'_, '_>, members: usize) {
    let mut s = Steady::new(members, common::swim_config(), WARMUP);
    bencher.bench_local(|| s.period());
}
