//! rumor-sim: a deterministic discrete-event simulator that drives the real
//! `rumor::Node` for thousands of nodes over a modelled network, injects crashes,
//! leaves, restarts, GC-like pauses, CPU starvation and partitions, and checks every
//! verdict against ground truth.
//!
//! Same scenario + seed ⇒ same report (wall time aside) and the same `trace_hash`.

pub mod agenda;
pub mod canned;
pub mod faults;
pub mod hugepages;
pub mod network;
pub mod oracle;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod sweep;
pub mod tune;
pub mod world;

use std::time::Instant;

use report::Report;
use scenario::Scenario;
use world::World;

/// Runs `sc` with `seed`; `command` is echoed in the report so it can be reproduced.
pub fn run(
    sc: &Scenario,
    seed: u64,
    command: &str,
    progress: impl FnMut(f64),
) -> Result<Report, String> {
    // Wall time is reported (`wall_ms`), never fed to the simulation.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let mut w = World::new(sc, seed)?;
    w.run(progress);
    let v = w.oracle.verdicts();
    let stats = w.total_stats();
    let cfg = sc.node_config()?;
    let measured = (sc.duration.0.saturating_sub(sc.warmup.0))
        .as_secs_f64()
        .max(1e-9);
    let per_node_sec = |x: u64| x as f64 / (sc.nodes as f64 * measured);
    let probes_after_warmup =
        stats.probes_sent as f64 * measured / sc.duration.0.as_secs_f64().max(1e-9);
    Ok(Report {
        scenario: sc.name.clone(),
        seed,
        nodes: sc.nodes,
        sim_seconds: sc.duration.0.as_secs_f64(),
        strategy: cfg.strategy.to_string(),
        false_convictions: v.false_convictions,
        paused_convictions: v.paused_convictions,
        false_suspicions: v.false_suspicions,
        false_dead_verdicts: v.false_dead_verdicts,
        previous_life_verdicts: v.previous_life_verdicts,
        crashes: v.crashes,
        superseded: v.superseded,
        detected: v.detected,
        pauses: w.counters.pauses,
        pauses_skipped: w.counters.pauses_skipped,
        max_pause_ms: (w.counters.pauses > 0)
            .then_some(w.counters.longest_pause.as_secs_f64() * 1e3),
        detection_ms: oracle::Percentiles::of(&v.detection_ms),
        detection_paused_ms: oracle::Percentiles::of(&v.detection_paused_ms),
        first_suspicion_ms: oracle::Percentiles::of(&v.first_suspicion_ms),
        dissemination_ms: oracle::Percentiles::of(&v.dissemination_ms),
        msgs_per_node_per_sec: per_node_sec(w.counters.msgs),
        bytes_per_node_per_sec: per_node_sec(w.counters.bytes),
        max_packet_bytes: w.counters.max_packet,
        events: w.counters.events,
        wall_ms: started.elapsed().as_millis() as u64,
        trace_hash: format!("{:016x}", w.trace_hash),
        member_hours: w.counters.node_seconds / 3600.0,
        refutations: stats.refutations,
        stalls_detected: stats.stalls_detected,
        stalls_repeated: stats.stalls_repeated,
        refusals: stats.refusals,
        refusals_unverified: stats.refusals_unverified,
        forged_refusals: w.forged,
        refusal_convictions: stats.refusal_convictions,
        auth_failures: stats.auth_failures + stats.plaintext_refused,
        recv_overflow_drops: w.counters.recv_overflow,
        probes_per_node_per_sec: probes_after_warmup / (sc.nodes as f64 * measured),
        stale_views_at_end: w.stale_views(),
        heal_ms: oracle::Percentiles::of(&v.heal_ms),
        unhealed_partitions: v.unhealed_partitions,
        command: command.to_string(),
        verdicts: None,
        wrong: v.wrong,
    })
}
