//! `tune`'s comparison: the three strategies on the same seeds and pause model, at the
//! chosen setting (or the base config's when nothing passed), each with the rule it
//! convicts by and its seconds of silence to convict.

use std::time::Duration;

use rumor::Strategy;
use rumor::duration::fmt_dur;

use super::{
    Candidate, Plan, StrategyResult, TuneOptions, candidate_sets, evaluate, phi_silence_to_convict,
};

/// One `StrategyResult` per strategy. `chosen` (an index into `candidates`) is reused
/// for the base strategy under phi monitors instead of running it again.
pub(super) fn strategies(
    plan: &Plan,
    o: &TuneOptions,
    candidates: &[Candidate],
    chosen: Option<usize>,
    cfg_chosen: Option<(Duration, f64)>,
    command: &str,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<StrategyResult>, String> {
    let mut strategies = Vec::new();
    let (ap, phi) = cfg_chosen.unwrap_or((
        plan.base_config.acceptable_pause,
        plan.base_config.phi_convict,
    ));
    for strat in [Strategy::Swim, Strategy::Lifeguard, Strategy::PhiMonitors] {
        let mut sets = candidate_sets(ap, phi);
        let mut cfg = plan.base_config.clone();
        cfg.acceptable_pause = ap;
        cfg.phi_convict = phi;
        cfg.strategy = strat;
        let reuse = (strat == Strategy::PhiMonitors && plan.base_config.strategy == strat)
            .then_some(chosen)
            .flatten();
        let s = match reuse {
            Some(i) => {
                let c = &candidates[i];
                StrategyResult {
                    strategy: strat.to_string(),
                    rule: String::new(),
                    silence_to_convict_s: [0.0; 2],
                    false_convictions: c.false_convictions,
                    paused_convictions: c.paused_convictions,
                    false_suspicions: c.false_suspicions,
                    detected: c.detected,
                    crashes: c.crashes,
                    detection_ms: c.detection_ms,
                    msgs_per_node_per_sec: c.msgs_per_node_per_sec,
                }
            }
            None => {
                sets.push(("strategy".to_string(), strat.to_string()));
                let (s, _) = evaluate(plan, o, &sets, command, tick)?;
                StrategyResult {
                    strategy: strat.to_string(),
                    rule: String::new(),
                    silence_to_convict_s: [0.0; 2],
                    false_convictions: s.false_convictions,
                    paused_convictions: s.paused_convictions,
                    false_suspicions: s.false_suspicions,
                    detected: s.detected,
                    crashes: s.crashes,
                    detection_ms: s.detection_ms,
                    msgs_per_node_per_sec: s.msgs_per_node_per_sec,
                }
            }
        };
        let floor = cfg.suspicion_min_timeout(plan.nodes).as_secs_f64();
        let (rule, silence) = match strat {
            Strategy::Swim => (
                format!(
                    "suspect after a failed probe, dead after a fixed {floor:.1}s suspicion timeout (suspicion_mult × max(1, log10 n) × probe_interval)"
                ),
                [floor, floor],
            ),
            Strategy::Lifeguard => {
                let max = floor * f64::from(cfg.suspicion_max_mult);
                (
                    format!(
                        "suspect after a failed probe, dead after a suspicion timeout shrinking from {max:.1}s to {floor:.1}s with independent confirmations"
                    ),
                    [floor, max],
                )
            }
            _ => {
                let s = phi_silence_to_convict(&cfg).as_secs_f64();
                (
                    format!(
                        "a monitor convicts at phi >= {phi} (with acceptable_pause {}) = {s:.2}s of silence after the last ack",
                        fmt_dur(ap)
                    ),
                    [s, s],
                )
            }
        };
        strategies.push(StrategyResult {
            rule,
            silence_to_convict_s: silence,
            ..s
        });
    }
    Ok(strategies)
}
