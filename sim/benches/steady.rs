//! Simulator throughput on a steady cluster: member-periods (one member running one
//! protocol period) per second, the figure issue 3's speed target is stated in.
//!
//! `cargo bench -p rumor-sim --bench steady`
//!
//! - `steady_state`: the target's own measure. A cluster runs through its join and some
//!   settling (untimed), then each sample times the next 10 simulated seconds alone.
//! - `member_periods`: whole runs of 60 s, join included, which dominates at larger
//!   sizes (see sim/README.md).

use rumor::Time;
use rumor_sim::scenario::Scenario;
use rumor_sim::world::World;

fn main() {
    // Huge pages, as the `rumor-sim` binary uses (see `rumor_sim::hugepages`).
    rumor_sim::hugepages::enable();
    divan::main();
}

fn scenario(nodes: usize, secs: u64, join_spread: u64) -> Scenario {
    let text = format!(
        "name = \"bench\"\nnodes = {nodes}\nduration = \"{secs}s\"\nwarmup = \"5s\"\njoin_spread = \"{join_spread}s\"\n"
    );
    Scenario::parse(&text, &[]).expect("valid scenario")
}

/// Simulated seconds given to the join before timing starts: the joins spread over
/// 10 s, then push-pull rounds settle the views.
const JOIN_SECS: u64 = 60;
/// Simulated seconds timed per sample.
const WINDOW_SECS: u64 = 10;
/// Samples, all from one world: the join runs once per size, and the fastest window is
/// the figure least disturbed by the machine (wall times of identical runs differ by
/// tens of percent here).
const WINDOWS: u32 = 12;

#[divan::bench(args = [100, 1000], sample_count = WINDOWS, sample_size = 1)]
fn steady_state(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    // Room for every window divan may run, and more.
    let sc = scenario(nodes, JOIN_SECS + 4 * WINDOWS as u64 * WINDOW_SECS, 10);
    let mut w = World::new(&sc, 1).expect("valid world");
    w.advance_to(Time::from_secs(JOIN_SECS), |_| {});
    let mut until = JOIN_SECS;
    bencher
        .counter(divan::counter::ItemsCount::new(
            nodes * WINDOW_SECS as usize,
        ))
        .bench_local(|| {
            until += WINDOW_SECS;
            w.advance_to(Time::from_secs(until), |_| {});
        });
}

#[divan::bench(args = [100, 300], sample_count = 3, sample_size = 1)]
fn member_periods(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    let secs = 60;
    let sc = scenario(nodes, secs, 2);
    bencher
        .counter(divan::counter::ItemsCount::new(nodes * secs as usize))
        .bench(|| rumor_sim::run(&sc, 1, "bench", |_| {}).expect("runs"));
}
