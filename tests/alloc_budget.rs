//! Allocation and memory budgets (issue 6), measured with a per-thread counting global
//! allocator (`allocation-counter`): other test threads never pollute a count.
//!
//! - The steady-state probe / ack / piggyback path allocates nothing after warm-up: a
//!   node of a converged cluster runs 100 protocol periods (its probe ticks, its pings
//!   and their acks, its monitors' pings and its acks to them, a reap sweep or two) and
//!   every heap allocation in them is counted, per API call.
//! - So does an encrypted node's (a keyring as in `tests/encryption.rs`): sealing what
//!   it sends and opening what it receives allocates nothing either.
//! - Memory per known member is at most 100 bytes (issue 26): bytes held by a node that
//!   knows `n` members, divided by `n - 1`, at 1,000 and 4,096 members.
//!
//! The node is driven by the same harness as the benches (`benches/common/mod.rs`).
//! `cargo test --test alloc_budget -- --nocapture` prints the measured figures;
//! `scripts/benchmarks.sh` copies them into BENCHMARKS.md.

#[path = "../benches/common/mod.rs"]
mod harness;

use std::collections::BTreeMap;

use allocation_counter::{AllocationInfo, measure};
use harness::{Meter, Steady, Step};
use rumor::{Config, Key, Keyring};

/// Counts allocations per kind of API call.
#[derive(Default)]
struct AllocMeter {
    per_step: BTreeMap<Step, (u64, u64)>,
}

impl Meter for AllocMeter {
    fn step<R>(&mut self, step: Step, f: impl FnOnce() -> R) -> R {
        let mut out = None;
        let info = measure(|| out = Some(f()));
        let slot = self.per_step.entry(step).or_default();
        slot.0 += 1;
        slot.1 += info.count_total;
        out.expect("the call ran")
    }
}

const WARMUP_PERIODS: usize = 50;
const MEASURED_PERIODS: u64 = 100;

/// Allocations in `MEASURED_PERIODS` steady periods of a node in a cluster of `n`:
/// (total, per-step table as text).
fn steady_allocations(n: usize, cfg: Config) -> (u64, String) {
    let mut s = Steady::new(n, cfg, WARMUP_PERIODS);
    let stats_before = s.node.stats();
    let mut meter = AllocMeter::default();
    for _ in 0..MEASURED_PERIODS {
        s.period_metered(&mut meter);
    }
    let stats = s.node.stats();
    // The loop really is the steady probe loop: every ping acked, nobody suspected.
    assert!(stats.acks_received - stats_before.acks_received >= MEASURED_PERIODS);
    assert_eq!(
        stats.suspicions_raised, 0,
        "a steady cluster suspects nobody"
    );
    let total = meter.per_step.values().map(|(_, a)| a).sum();
    let table = meter
        .per_step
        .iter()
        .map(|(step, (calls, allocs))| format!("{step:?}: {calls} calls, {allocs} allocations"))
        .collect::<Vec<_>>()
        .join("; ");
    (total, table)
}

#[test]
fn steady_state_allocates_nothing() {
    let mut failures = Vec::new();
    for (name, cfg) in [
        ("phi-monitors", harness::probe_config()),
        ("swim", harness::swim_config()),
    ] {
        for n in [16, 1000, 4096] {
            let (total, table) = steady_allocations(n, cfg.clone());
            println!(
                "ALLOC steady strategy={name} members={n} periods={MEASURED_PERIODS} allocations={total} per_period={:.2} [{table}]",
                total as f64 / MEASURED_PERIODS as f64
            );
            if total != 0 {
                failures.push(format!(
                    "{name}, {n} members: {total} allocations ({table})"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the steady state allocated:\n{}",
        failures.join("\n")
    );
}

/// The steady probe loop of a node with keys, as `tests/encryption.rs` configures one:
/// the emulated peers seal what they send and open what the node sends (outside the
/// counted calls), so every datagram the node handles is opened and every one it sends
/// sealed.
#[test]
fn an_encrypted_node_allocates_nothing_in_the_steady_state() {
    let mut failures = Vec::new();
    for (name, mut cfg) in [
        ("phi-monitors", harness::probe_config()),
        ("swim", harness::swim_config()),
    ] {
        cfg.keyring = Keyring::new(Key::from_bytes([1; 32]));
        for n in [16, 1000] {
            let (total, table) = steady_allocations(n, cfg.clone());
            println!(
                "ALLOC steady encrypted strategy={name} members={n} periods={MEASURED_PERIODS} allocations={total} per_period={:.2} [{table}]",
                total as f64 / MEASURED_PERIODS as f64
            );
            if total != 0 {
                failures.push(format!(
                    "{name}, {n} members, encrypted: {total} allocations ({table})"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "the encrypted steady state allocated:\n{}",
        failures.join("\n")
    );
}

/// Heap held by a node that knows `n - 1` peers (bytes, allocations).
fn node_heap(n: usize) -> AllocationInfo {
    let mut kept = None;
    let info = measure(|| kept = Some(harness::node_knowing(n, harness::probe_config(), true)));
    drop(kept);
    info
}

/// Issue 26's budget: at most 100 bytes of heap per known member, the node's fixed
/// part included. Measured 96 B at 1,000 members and 92 B at 4,096 (247 B and 226 B
/// before issue 26's changes: 112-byte entries with a boxed descriptor each, a B-tree
/// ring and a B-tree of versions, a hashbrown index by id). What it takes, per member
/// (see `src/members.rs`): a 40-byte row, the descriptor's bytes in one shared buffer,
/// 5 to 6.5 bytes of lookup table, 4 of positions sorted by id, 5 to 11 of address
/// index, 8 in the live-peer list; and a fixed part kept small (an emptied event queue
/// keeps 8 slots). Every node of a simulated cluster pays it for every member.
#[test]
fn memory_per_known_member() {
    let node_struct = std::mem::size_of::<rumor::Node>() as i64;
    let small = node_heap(1000);
    let large = node_heap(4096);
    for (n, info) in [(1000, small), (4096, large)] {
        let bytes = info.bytes_current + node_struct;
        println!(
            "ALLOC memory members={n} bytes={bytes} allocations={} bytes_per_member={:.0} allocations_per_member={:.2}",
            info.count_current,
            bytes as f64 / (n - 1) as f64,
            info.count_current as f64 / (n - 1) as f64,
        );
        assert!(
            bytes / (n as i64 - 1) <= 100,
            "{n} members: {} bytes held per known member, over 100",
            bytes / (n as i64 - 1)
        );
    }
    // The marginal cost, without the fixed part (config, timers, own entry).
    let marginal = (large.bytes_current - small.bytes_current) as f64 / 3096.0;
    println!("ALLOC memory marginal_bytes_per_member={marginal:.0}");
    assert!(marginal <= 100.0);
}
