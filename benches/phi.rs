//! The phi-accrual detector on a full sample window (the default 100 samples): record
//! an arrival, and evaluate it. A monitor does both on every ack from a member it
//! monitors: `heartbeat` records the interval (and itself evaluates phi once, to skip
//! an outage), then the node asks for the conviction `deadline` to re-arm its timer.
//! `phi` is the plain evaluation (`DetectorView`, metrics).
//!
//! `cargo bench --bench phi`

use std::hint::black_box;
use std::time::Duration;

use rumor::Time;
use rumor::detector::{PhiDetector, PhiParams, y_for_phi};

fn main() {
    divan::main();
}

/// Intervals around 1 s with a few milliseconds of deterministic jitter.
fn interval(i: u64) -> Duration {
    Duration::from_millis(1000 + (i * 7919) % 23) - Duration::from_millis(11)
}

/// A detector whose window is full of real samples, and the time of its last arrival.
fn full_detector() -> (PhiDetector, Time, u64) {
    let params = PhiParams::default();
    let mut d = PhiDetector::new(&params);
    let mut t = Time::from_secs(1);
    let mut i = 0;
    d.heartbeat(t);
    while d.samples() < params.window || i < 2 * params.window as u64 {
        i += 1;
        t += interval(i);
        d.heartbeat(t);
    }
    (d, t, i)
}

#[divan::bench]
fn heartbeat(bencher: divan::Bencher<'_, '_>) {
    let (mut d, mut t, mut i) = full_detector();
    bencher.bench_local(|| {
        i += 1;
        t += interval(i);
        d.heartbeat(black_box(t));
    });
}

#[divan::bench]
fn phi(bencher: divan::Bencher<'_, '_>) {
    let (d, t, _) = full_detector();
    let now = t + Duration::from_millis(1500);
    bencher.bench_local(|| black_box(&d).phi(black_box(now), true));
}

/// What the node computes per ack: when phi (with the acceptable pause) will reach
/// `phi_convict` = 8.
#[divan::bench]
fn convict_deadline(bencher: divan::Bencher<'_, '_>) {
    let (d, _, _) = full_detector();
    let y = y_for_phi(8.0);
    bencher.bench_local(|| black_box(&d).deadline(black_box(y), true));
}
