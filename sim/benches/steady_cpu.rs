//! The steady-state figure of `steady.rs` in CPU time instead of wall time: on a shared
//! machine wall time counts other processes' turns, CPU time only this thread's.
//!
//! `cargo bench -p rumor-sim --bench steady_cpu [-- NODES]`
//!
//! The same world as `steady.rs`'s `steady_state` (joins spread over 10 s, 60 s of join
//! and settling untimed), then twelve windows of 10 simulated seconds, each timed by the
//! thread's CPU clock (`/proc/thread-self/schedstat`, nanoseconds, Linux only). Prints
//! member-periods per CPU-second for each window and their median.

use std::time::Duration;

use rumor::Time;
use rumor_sim::scenario::Scenario;
use rumor_sim::world::World;

/// Simulated seconds given to the join before timing starts, as in `steady.rs`.
const JOIN_SECS: u64 = 60;
/// Simulated seconds per timed window.
const WINDOW_SECS: u64 = 10;
/// Timed windows.
const WINDOWS: u64 = 12;

/// This thread's CPU time so far, or `None` where the kernel does not say.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn main() {
    rumor_sim::hugepages::enable();
    // `cargo bench` passes `--bench`; the node count is the first number given.
    let nodes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let text = format!(
        "name = \"bench\"\nnodes = {nodes}\nduration = \"{}s\"\nwarmup = \"5s\"\njoin_spread = \"10s\"\n",
        JOIN_SECS + WINDOWS * WINDOW_SECS
    );
    let sc = Scenario::parse(&text, &[]).expect("valid scenario");
    let mut w = World::new(&sc, 1).expect("valid world");
    w.advance_to(Time::from_secs(JOIN_SECS), |_| {});
    let mut rates = Vec::new();
    for k in 1..=WINDOWS {
        let Some(before) = thread_cpu() else {
            eprintln!("no /proc/thread-self/schedstat: CPU time unavailable");
            return;
        };
        w.advance_to(Time::from_secs(JOIN_SECS + k * WINDOW_SECS), |_| {});
        let cpu = thread_cpu().map_or(Duration::ZERO, |t| t - before);
        let rate = (nodes as u64 * WINDOW_SECS) as f64 / cpu.as_secs_f64().max(1e-9);
        println!(
            "window {k:2}: {:8.2} ms CPU, {rate:9.0} member-periods per CPU-second",
            cpu.as_secs_f64() * 1e3
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = (rates[rates.len() / 2 - 1] + rates[rates.len() / 2]) / 2.0;
    println!(
        "nodes {nodes}: median {median:.0} member-periods per CPU-second (fastest {:.0})",
        rates[rates.len() - 1]
    );
}
