//! Drives the steady probe loop for a fixed number of periods and prints what it did,
//! for `scripts/callgrind.sh`: run under `valgrind --tool=callgrind` twice with
//! different period counts, the difference in instructions divided by the difference
//! in periods is the instructions one protocol period costs, with the setup (building
//! the node) cancelled out. Instruction counts do not depend on the machine's load,
//! so they catch regressions that timing noise hides.
//!
//! `cargo bench --bench probe_count -- [--members N] [--periods P] [--strategy phi|swim]`
//!
//! Under `cargo bench` with no arguments it runs 1,000 members for 20,000 periods and
//! prints the wall time per period, as a smoke test.
//!
//! `-- --rss N` instead builds a node knowing N members and prints how much the
//! process's resident set grew, per member: the allocator's own overhead included,
//! which the counting allocator of `tests/alloc_budget.rs` does not see.

mod common;

use std::time::Instant;

use common::Steady;

fn main() {
    let mut members = 1000;
    let mut periods = 20_000;
    let mut strategy = String::from("phi");
    let mut rss = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--members" => members = value().parse().expect("a number"),
            "--periods" => periods = value().parse().expect("a number"),
            "--strategy" => strategy = value(),
            "--rss" => rss = Some(value().parse::<usize>().expect("a number")),
            // Passed by `cargo bench`.
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    if let Some(n) = rss {
        let before = resident_bytes();
        let node = common::node_knowing(n, common::probe_config(), true);
        let after = resident_bytes();
        println!(
            "members={n} rss_growth_bytes={} rss_bytes_per_member={:.0}",
            after - before,
            (after - before) as f64 / (n - 1) as f64
        );
        drop(node);
        return;
    }
    let cfg = match strategy.as_str() {
        "phi" => common::probe_config(),
        "swim" => common::swim_config(),
        other => panic!("unknown strategy {other:?} (phi or swim)"),
    };
    let mut s = Steady::new(members, cfg, 50);
    let (pings, others) = (s.pings_out, s.others_out);
    // Wall time of the smoke run only; the node itself never reads a clock.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    for _ in 0..periods {
        s.period();
    }
    let elapsed = started.elapsed();
    let stats = s.node.stats();
    println!(
        "members={members} strategy={strategy} periods={periods} pings_out={} other_datagrams_out={} acks_received={} suspicions={} wall_per_period_ns={:.0}",
        s.pings_out - pings,
        s.others_out - others,
        stats.acks_received,
        stats.suspicions_raised,
        elapsed.as_nanos() as f64 / periods.max(1) as f64,
    );
}

/// The process's resident set size, from /proc/self/statm (pages of 4 KiB).
fn resident_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm's second field");
    pages * 4096
}
