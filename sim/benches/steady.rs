//! Simulator throughput on a steady cluster: member-periods (one member running one
//! protocol period) per second, the figure issue 3's speed target is stated in.
//!
//! `cargo bench -p rumor-sim --bench steady`
//!
//! The scenario joins the cluster during the first simulated seconds; the reported
//! throughput therefore includes the join, which dominates short runs at large sizes
//! (see sim/README.md for steady-state-only numbers).

use rumor_sim::scenario::Scenario;

fn main() {
    divan::main();
}

fn scenario(nodes: usize, secs: u64) -> Scenario {
    let text = format!(
        "name = \"bench\"\nnodes = {nodes}\nduration = \"{secs}s\"\nwarmup = \"5s\"\njoin_spread = \"2s\"\n"
    );
    Scenario::parse(&text, &[]).expect("valid scenario")
}

#[divan::bench(args = [100, 300], sample_count = 3, sample_size = 1)]
fn member_periods(bencher: divan::Bencher<'_, '_>, nodes: usize) {
    let secs = 60;
    let sc = scenario(nodes, secs);
    bencher
        .counter(divan::counter::ItemsCount::new(nodes * secs as usize))
        .bench(|| rumor_sim::run(&sc, 1, "bench", |_| {}).expect("runs"));
}
