//! `tune`'s report: the table, and the chosen setting as TOML and as Rust.

use super::{Plan, TuneResult, fastest};
use std::time::Duration;

use rumor::duration::fmt_dur;

pub(super) fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.0}"))
}

/// A rate of false convictions: two decimals, three significant digits below 0.01
/// (so a small risk does not print as 0.00), `0` for none.
pub(super) fn fmt_risk(x: f64) -> String {
    if x == 0.0 {
        "0".to_string()
    } else if x.abs() < 0.01 {
        format!("{x:.2e}")
    } else {
        format!("{x:.2}")
    }
}

pub(super) fn toml_of(plan: &Plan, ap: Duration, phi: f64) -> String {
    let mut s = String::new();
    if plan.preset != "lan" {
        s.push_str(&format!("preset = \"{}\"\n", plan.preset));
    }
    s.push_str("[config]\n");
    for (k, v) in &plan.base_fields {
        s.push_str(&format!("{k} = \"{v}\"\n"));
    }
    s.push_str(&format!(
        "acceptable_pause = \"{}\"\nphi_convict = {phi:?}\n",
        fmt_dur(ap)
    ));
    s
}

pub(super) fn rust_of(plan: &Plan, ap: Duration, phi: f64) -> String {
    let mut s = format!(
        "use std::time::Duration;\n\nlet mut cfg = rumor::Config::{}();\n",
        plan.preset
    );
    for (k, v) in &plan.base_fields {
        s.push_str(&format!("cfg.set(\"{k}\", \"{v}\")?;\n"));
    }
    s.push_str(&format!(
        "cfg.acceptable_pause = Duration::from_millis({});\ncfg.phi_convict = {phi:?};\ncfg.validate()?;\n",
        ap.as_millis()
    ));
    s
}

/// The tail fit and the risk of the current and the chosen config, if measured
/// pauses were given (nothing otherwise).
fn render_tail(r: &TuneResult) -> String {
    let Some(f) = &r.tail else {
        return String::new();
    };
    let mut out = format!(
        "tail (generalized Pareto over the largest {} pauses, above {:.3}s: {:.1}% of all): \
         shape {:.2} (90% interval {:.2} to {:.2}), scale {:.3}s; pauses capped at {:.2}s \
         (--pause-max) in the runs and the risk\n",
        f.exceedances,
        f.threshold_s,
        f.exceed_fraction * 100.0,
        f.shape,
        f.shape_interval.0,
        f.shape_interval.1,
        f.scale_s,
        f.max_s.unwrap_or(f64::INFINITY)
    );
    if f.uncertain() {
        out.push_str(&format!(
            "WARNING: the tail rests on {} pauses (fewer than {}): the tail, and so the risk, is \
             uncertain. The verdict uses the upper end of the shape's interval ({:.2}). Record for \
             longer, or on more nodes, before trusting the risk.\n",
            f.exceedances,
            super::tail::FEW_EXCEEDANCES,
            f.verdict_shape()
        ));
    }
    for (what, risk) in [("current", &r.risk_current), ("chosen", &r.risk_chosen)] {
        if let Some(k) = risk {
            out.push_str(&format!(
                "risk, {what} config: silence to convict {:.2}s, so a pause convicts from {:.2}s \
                 (median over its start; {:.2}s at the unluckiest 1%) -> {} false convictions \
                 per member-year ({} to {} over the shape's interval), {} per year for {} \
                 members ({} to {}{}); margin {:+.2}s of that shortest convicting pause over the \
                 pause that comes once a cluster-year\n",
                k.silence_to_convict_s,
                k.pause_to_convict_s,
                k.pause_to_convict_p01_s,
                fmt_risk(k.per_member_year),
                fmt_risk(k.per_member_year_interval.0),
                fmt_risk(k.per_member_year_interval.1),
                fmt_risk(k.per_cluster_year),
                r.nodes,
                fmt_risk(k.per_cluster_year_interval.0),
                fmt_risk(k.per_cluster_year_interval.1),
                if k.verdict_per_cluster_year != k.per_cluster_year {
                    format!("; the verdict's {}", fmt_risk(k.verdict_per_cluster_year))
                } else {
                    String::new()
                },
                k.margin_s
            ));
        }
    }
    if r.risk_current.is_some() || r.risk_chosen.is_some() {
        out.push_str(
            "  (a pause shorter than the silence to convict can still convict: it starts up to a \
             probe interval after each monitor's last ack, and the monitors' detectors have \
             learned the pauses' jitter; see `rumor-sim` README, \"The risk model\")\n",
        );
    }
    out.push('\n');
    out
}

/// Under the table: what decides is the silence to convict, not `acceptable_pause`.
pub(super) const LEGEND: &str = "\
SILENCE TO CONVICT is what decides: the silence after a member's last ack at which a monitor
convicts, = probe_interval + acceptable_pause + y(phi_convict) x min_std_dev. A pause convicts
when it outlasts that silence less the time since the monitors' last ack (up to one
probe_interval), so the margin column compares the longest pause with it. acceptable_pause
is only the part added to the mean inter-arrival, not the longest pause that is tolerated.
";

/// The human report of a tune session.
pub fn render(r: &TuneResult) -> String {
    let mut out = String::new();
    let q = &r.pause_quantiles;
    out.push_str(&format!(
        "pause model: {} at {:.2}/min per node (p50 {:.2}s, p99 {:.2}s, p99.9 {:.2}s)\n",
        r.pause_model, r.pause_rate_per_min, q.p50, q.p99, q.p999
    ));
    out.push_str(&format!(
        "cluster: {} nodes, {:.1}% loss, {:.0} s simulated per run ({:.0} member-hours), seeds {:?}{}\n\n",
        r.nodes,
        r.loss * 100.0,
        r.sim_seconds,
        r.sim_seconds * r.nodes as f64 / 3600.0,
        r.seeds,
        if r.capped {
            format!(" (capped; target {} member-hours)", r.target_hours)
        } else {
            String::new()
        }
    ));
    out.push_str(&render_tail(r));
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "SILENCE TO CONVICT",
        "acceptable_pause (added to the mean)",
        "phi_convict",
        "false conv (paused)",
        "member-h",
        "detected",
        "det p50 ms",
        "det p99 ms",
        "longest pause",
        "margin",
        "risk /cluster-yr",
        "",
    ]);
    for (i, c) in r.candidates.iter().enumerate() {
        t.add_row(vec![
            format!("{:.2}s", c.silence_to_convict_s),
            fmt_dur(Duration::from_millis(c.acceptable_pause_ms)),
            format!("{}", c.phi_convict),
            format!("{} ({})", c.false_convictions, c.paused_convictions),
            format!("{:.0}", c.member_hours),
            format!("{}/{}", c.detected, c.crashes),
            fmt_ms(c.detection_ms.p50),
            fmt_ms(c.detection_ms.p99),
            format!("{:.2}s", c.longest_pause_ms / 1e3),
            format!("{:+.2}s", c.margin_s),
            c.risk_per_cluster_year.map_or("-".to_string(), fmt_risk),
            if r.chosen == Some(i) {
                "chosen".to_string()
            } else if c.passed {
                "pass".to_string()
            } else if c.false_convictions > 0 {
                "fail".to_string()
            } else if c.detected < c.crashes {
                "fail (missed)".to_string()
            } else {
                "fail (margin)".to_string()
            },
        ]);
    }
    out.push_str(&t.to_string());
    out.push('\n');
    out.push_str(LEGEND);
    if r.budget_exhausted {
        out.push_str("(search stopped: --budget-runs spent)\n");
    }
    match r.chosen {
        Some(i) => {
            let c = &r.candidates[i];
            out.push_str(&format!(
                "\nchosen: acceptable_pause = {}, phi_convict = {}\n  detection p50 {} ms, p99 {} ms ({}/{} crashes detected), 0 false convictions over {:.0} member-hours\n",
                fmt_dur(Duration::from_millis(c.acceptable_pause_ms)),
                c.phi_convict,
                fmt_ms(c.detection_ms.p50),
                fmt_ms(c.detection_ms.p99),
                c.detected,
                c.crashes,
                c.member_hours
            ));
            if let Some(f) = fastest(&r.candidates) {
                out.push_str(&format!(
                    "  (of the passing settings whose detection p99 is within {:.0} % of the fastest, {} ms, the one with the most margin)\n",
                    r.latency_tolerance * 100.0,
                    fmt_ms(r.candidates[f].detection_ms.p99)
                ));
            }
            if let (Some(k), Some(max)) = (&r.risk_chosen, r.max_risk) {
                out.push_str(&format!(
                    "  risk: {} false convictions per cluster-year predicted ({} to {} over the shape's interval{}), at most --max-risk {max}\n",
                    fmt_risk(k.per_cluster_year),
                    fmt_risk(k.per_cluster_year_interval.0),
                    fmt_risk(k.per_cluster_year_interval.1),
                    if k.verdict_per_cluster_year != k.per_cluster_year {
                        format!("; the verdict's, at the interval's upper end: {}", fmt_risk(k.verdict_per_cluster_year))
                    } else {
                        String::new()
                    }
                ));
            } else if let Some(m) = r.margin_s {
                out.push_str(&format!(
                    "  margin: {:.2}s of silence to convict − {:.2}s longest stall sampled = {m:.2}s (required: {:.2}s; a pause that starts just before a probe is due adds up to one probe interval of silence)\n",
                    c.silence_to_convict_s,
                    c.longest_pause_ms / 1e3,
                    r.min_margin_s
                ));
            }
            if let Some(s) = &r.toml {
                out.push_str(&format!("\nTOML:\n{s}"));
            }
            if let Some(s) = &r.rust {
                out.push_str(&format!("\nRust:\n{s}"));
            }
        }
        None => {
            match r.max_risk {
                Some(max) => out.push_str(&format!(
                    "\nno setting met the target (zero false convictions and every crash detected in \
                     the runs, and at most {max} predicted false convictions per cluster-year).\n"
                )),
                None => out.push_str(
                    "\nno setting met the target (zero false convictions, every crash detected and a \
                     margin of at least --min-margin).\n",
                ),
            }
            if let Some(c) = &r.closest {
                out.push_str(&format!("closest: {c}\n"));
            }
            out.push_str(
                "Try more --steps, a larger --budget-runs, a --max-risk you can accept, or check the \
                 pause model (pauses longer than a few seconds may need a longer probe_interval: \
                 --set probe_interval=2s).\n",
            );
        }
    }
    if !r.strategies.is_empty() {
        out.push_str("\nstrategies on the same seeds and pause model:\n");
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "strategy",
            "silence to convict (s)",
            "false conv (paused)",
            "detected",
            "det p50 ms",
            "det p99 ms",
            "msgs/node/s",
        ]);
        for s in &r.strategies {
            let silence = match s.strategy.as_str() {
                "swim" => format!("{:.1} after suspicion", s.silence_to_convict_s[0]),
                "lifeguard" => format!(
                    "{:.1}–{:.1} after suspicion",
                    s.silence_to_convict_s[0], s.silence_to_convict_s[1]
                ),
                _ => format!("{:.2} after last ack", s.silence_to_convict_s[0]),
            };
            t.add_row(vec![
                s.strategy.clone(),
                silence,
                format!("{} ({})", s.false_convictions, s.paused_convictions),
                format!("{}/{}", s.detected, s.crashes),
                fmt_ms(s.detection_ms.p50),
                fmt_ms(s.detection_ms.p99),
                format!("{:.2}", s.msgs_per_node_per_sec),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
        for s in &r.strategies {
            out.push_str(&format!("  {}: {}\n", s.strategy, s.rule));
        }
    }
    out
}
