//! The run report: the JSON contract (sim/README.md, "The JSON contract"), a table and
//! CSV.

use serde::Serialize;

use crate::oracle::Percentiles;

/// One run's results. Field names and meanings are a contract other tools rely on.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: usize,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Failure-detection strategy.
    pub strategy: String,
    /// Distinct (member, life) pairs declared dead by a live member while that life was
    /// running (up or paused). A life is one process under the member's name; a verdict
    /// about an earlier life of a restarted member (an incarnation only that life held)
    /// is not one: see `previous_life_verdicts`.
    pub false_convictions: u64,
    /// Of those, members convicted while paused.
    pub paused_convictions: u64,
    /// Distinct (member, life) pairs suspected while that life was running.
    pub false_suspicions: u64,
    /// Dead verdicts about an earlier life of a member that runs again: right about
    /// that life, and not counted as false.
    pub previous_life_verdicts: u64,
    /// Dead verdicts (one per observer) about members alive or paused: the `MemberDead`
    /// events applications saw in error, where `false_convictions` counts members.
    pub false_dead_verdicts: u64,
    /// Crashes injected (including restarts' crashes).
    pub crashes: u64,
    /// Crashes that a restart superseded before every observer saw them dead: not
    /// misses (`crashes` = `detected` + `superseded` + misses).
    pub superseded: u64,
    /// Crashes seen dead by every observer that was up (running, not paused) at the
    /// crash and still running when it saw it, before any restart took the name over.
    pub detected: u64,
    /// Pauses injected.
    pub pauses: u64,
    /// Pauses not injected because their node was still paused and the fault says
    /// `merge = false`.
    pub pauses_skipped: u64,
    /// The longest stall a node went through, overlapping pauses merged; `null` when
    /// there were none. Compare with the config's silence to convict.
    pub max_pause_ms: Option<f64>,
    /// Crash → dead at every observer up at the crash, ms (one sample per detected
    /// crash: the last of them).
    pub detection_ms: Percentiles,
    /// Crash → dead at each observer that was itself paused at the crash (one sample per
    /// such observer), ms: left out of `detection_ms`, since a frozen process detects
    /// nothing until it resumes.
    pub detection_paused_ms: Percentiles,
    /// Crash → first suspicion by any member, ms.
    pub first_suspicion_ms: Percentiles,
    /// A membership change (dead verdict, leave, rejoin) → known at every live member, ms.
    pub dissemination_ms: Percentiles,
    /// Datagrams sent per node per second after the warm-up.
    pub msgs_per_node_per_sec: f64,
    /// Bytes sent per node per second after the warm-up.
    pub bytes_per_node_per_sec: f64,
    /// Largest datagram sent.
    pub max_packet_bytes: usize,
    /// Simulator events processed.
    pub events: u64,
    /// Wall-clock milliseconds the run took (the only field that varies between runs).
    pub wall_ms: u64,
    /// Rolling hash of every processed event, hex.
    pub trace_hash: String,
    /// Member-hours simulated (running processes × time).
    pub member_hours: f64,
    /// Refutations by members of suspicions about themselves.
    pub refutations: u64,
    /// Short stalls right after another, counted apart by members (timers running late
    /// again and again: a starved CPU, a late driver).
    pub stalls_repeated: u64,
    /// Own stalls detected by members.
    pub stalls_detected: u64,
    /// Refusals (ICMP port unreachable, real or forged) reported to members.
    pub refusals: u64,
    /// Of those, refusals whose quote matched no probe the member had sent there lately
    /// (forgeries from off the path, mostly), ignored.
    pub refusals_unverified: u64,
    /// Forged refusals the scenario's forgers delivered.
    pub forged_refusals: u64,
    /// Convictions by corroborated refusal rather than by silence.
    pub refusal_convictions: u64,
    /// Sealed packets no key opened, plus plaintext refused (keyed clusters).
    pub auth_failures: u64,
    /// Datagrams dropped because a paused node's receive buffer was full.
    pub recv_overflow_drops: u64,
    /// Probes sent per node per second after the warm-up.
    pub probes_per_node_per_sec: f64,
    /// (observer, subject) pairs whose view contradicts the truth at the end (a running
    /// member held dead or unknown, a crashed one held alive); 0 once views converged.
    pub stale_views_at_end: u64,
    /// Partition heal → every member running through the heal's window holds every
    /// other one live (alive or suspect) for good, ms; one sample per partition that
    /// healed before the end of the run and converged before its window closed (the
    /// next crash, leave, restart, pause or partition start, or the end of the run).
    pub heal_ms: Percentiles,
    /// Partitions healed before the end of the run whose views had not all converged
    /// when their window closed (no `heal_ms` sample).
    pub unhealed_partitions: u64,
    /// The command that reproduces this run.
    pub command: String,
    /// With `--verdicts`: each false conviction named (who, which life, by how many
    /// observers, when, with what cause, after how long a stall). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Vec<crate::oracle::WrongVerdict>>,
    /// The false convictions, named, whatever the flags (for tests and tools).
    #[serde(skip)]
    pub wrong: Vec<crate::oracle::WrongVerdict>,
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.0}"))
}

impl Report {
    /// Rows of (field, value) for the human table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let p =
            |x: &Percentiles| format!("{} / {} / {}", fmt_ms(x.p50), fmt_ms(x.p99), fmt_ms(x.max));
        vec![
            ("scenario", self.scenario.clone()),
            ("seed", self.seed.to_string()),
            ("nodes", self.nodes.to_string()),
            ("strategy", self.strategy.clone()),
            (
                "simulated",
                format!(
                    "{:.0} s ({:.1} member-hours)",
                    self.sim_seconds, self.member_hours
                ),
            ),
            (
                "false convictions",
                format!(
                    "{} ({} while paused)",
                    self.false_convictions, self.paused_convictions
                ),
            ),
            ("false suspicions", self.false_suspicions.to_string()),
            ("false dead verdicts", self.false_dead_verdicts.to_string()),
            (
                "crashes detected",
                format!("{} / {}", self.detected, self.crashes),
            ),
            ("pauses", self.pauses.to_string()),
            ("detection ms p50/p99/max", p(&self.detection_ms)),
            (
                "first suspicion ms p50/p99/max",
                p(&self.first_suspicion_ms),
            ),
            ("dissemination ms p50/p99/max", p(&self.dissemination_ms)),
            ("heal ms p50/p99/max", p(&self.heal_ms)),
            ("unhealed partitions", self.unhealed_partitions.to_string()),
            (
                "msgs / node / s",
                format!("{:.2}", self.msgs_per_node_per_sec),
            ),
            (
                "bytes / node / s",
                format!("{:.0}", self.bytes_per_node_per_sec),
            ),
            ("max packet bytes", self.max_packet_bytes.to_string()),
            ("refutations", self.refutations.to_string()),
            ("stalls detected", self.stalls_detected.to_string()),
            (
                "refusals / convictions by",
                format!("{} / {}", self.refusals, self.refusal_convictions),
            ),
            (
                "refusals unverified / forged",
                format!("{} / {}", self.refusals_unverified, self.forged_refusals),
            ),
            ("auth failures", self.auth_failures.to_string()),
            ("stale views at end", self.stale_views_at_end.to_string()),
            ("events", self.events.to_string()),
            ("wall ms", self.wall_ms.to_string()),
            ("trace hash", self.trace_hash.clone()),
        ]
    }

    /// A human table.
    pub fn table(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
        for (k, v) in self.rows() {
            t.add_row(vec![k.to_string(), v]);
        }
        t.to_string()
    }

    /// The CSV columns, in the order of [`Report::csv_fields`].
    pub const CSV_COLUMNS: [&'static str; 28] = [
        "scenario",
        "seed",
        "nodes",
        "strategy",
        "sim_seconds",
        "false_convictions",
        "paused_convictions",
        "false_suspicions",
        "crashes",
        "detected",
        "pauses",
        "detection_p50_ms",
        "detection_p99_ms",
        "detection_max_ms",
        "first_suspicion_p50_ms",
        "dissemination_p50_ms",
        "dissemination_p99_ms",
        "heal_p50_ms",
        "heal_p99_ms",
        "heal_max_ms",
        "unhealed_partitions",
        "false_dead_verdicts",
        "msgs_per_node_per_sec",
        "bytes_per_node_per_sec",
        "max_packet_bytes",
        "events",
        "wall_ms",
        "trace_hash",
    ];

    /// One CSV record's fields (quoting is the writer's job: a scenario name may hold
    /// a comma).
    pub fn csv_fields(&self) -> [String; 28] {
        let o = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.1}"));
        [
            self.scenario.clone(),
            self.seed.to_string(),
            self.nodes.to_string(),
            self.strategy.clone(),
            self.sim_seconds.to_string(),
            self.false_convictions.to_string(),
            self.paused_convictions.to_string(),
            self.false_suspicions.to_string(),
            self.crashes.to_string(),
            self.detected.to_string(),
            self.pauses.to_string(),
            o(self.detection_ms.p50),
            o(self.detection_ms.p99),
            o(self.detection_ms.max),
            o(self.first_suspicion_ms.p50),
            o(self.dissemination_ms.p50),
            o(self.dissemination_ms.p99),
            o(self.heal_ms.p50),
            o(self.heal_ms.p99),
            o(self.heal_ms.max),
            self.unhealed_partitions.to_string(),
            self.false_dead_verdicts.to_string(),
            format!("{:.3}", self.msgs_per_node_per_sec),
            format!("{:.1}", self.bytes_per_node_per_sec),
            self.max_packet_bytes.to_string(),
            self.events.to_string(),
            self.wall_ms.to_string(),
            self.trace_hash.clone(),
        ]
    }
}

/// `reports` as CSV through the `csv` crate: a header, then one record each.
pub fn csv(reports: &[Report]) -> Result<String, String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let err = |e: ::csv::Error| e.to_string();
    w.write_record(Report::CSV_COLUMNS).map_err(err)?;
    for r in reports {
        w.write_record(r.csv_fields()).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
