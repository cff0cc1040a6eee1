//! Metrics through the `metrics` facade; the table is in [`RuntimeBuilder`]'s docs.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label, Unit};

use crate::event::MemberState;
use crate::runtime::shared::RuntimeStats;
use crate::stats::{DECODE_ERROR_KINDS, NodeStats};
use crate::wire::DecodeErrorKind;

const STATES: [MemberState; 4] = [
    MemberState::Alive,
    MemberState::Suspect,
    MemberState::Dead,
    MemberState::Left,
];

/// Describes every metric (idempotent; recorders keep the last description).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "rumor_members",
        Unit::Count,
        "Members known to this node (itself excluded), by state."
    );
    describe_counter!(
        "rumor_probes_total",
        Unit::Count,
        "Direct probes (pings) sent."
    );
    describe_counter!(
        "rumor_indirect_probes_total",
        Unit::Count,
        "Indirect probe rounds started (ping-req through helpers)."
    );
    describe_counter!(
        "rumor_suspicions_total",
        Unit::Count,
        "Suspicions this node raised."
    );
    describe_counter!(
        "rumor_convictions_total",
        Unit::Count,
        "Members this node declared dead."
    );
    describe_counter!(
        "rumor_refutations_total",
        Unit::Count,
        "Suspicions of this node that it refuted."
    );
    describe_counter!(
        "rumor_stalls_total",
        Unit::Count,
        "Stalls of this process detected by the core (timers late by more than stall_threshold)."
    );
    describe_counter!(
        "rumor_stalls_repeated_total",
        Unit::Count,
        "Short stalls right after another: timers running late again and again (a starved CPU, a late driver)."
    );
    describe_counter!("rumor_packets_in_total", Unit::Count, "Datagrams received.");
    describe_counter!(
        "rumor_packets_out_total",
        Unit::Count,
        "Datagrams produced for sending."
    );
    // Units in the names (`_bytes_total`), so that the Prometheus exporter's
    // recommended naming, which appends a unit it does not find, leaves them as they are.
    describe_counter!("rumor_received_bytes_total", Unit::Bytes, "Bytes received.");
    describe_counter!(
        "rumor_sent_bytes_total",
        Unit::Bytes,
        "Bytes produced for sending."
    );
    describe_counter!(
        "rumor_observed_seconds_total",
        Unit::Seconds,
        "Seconds the driver has run: the window of rumor_timer_lateness_seconds, so that stalls per second can be computed."
    );
    describe_gauge!(
        "rumor_local_health",
        Unit::Count,
        "Lifeguard's local health score (0 = healthy): how many of its own probes this node saw fail lately."
    );
    describe_gauge!(
        "rumor_health_check",
        Unit::Count,
        "1 while the check passes, else 0, by check (readiness, startup); set by the driver at most once a second and when the node's own state changes. Liveness has no gauge: a wedged driver could not lower it; probe /livez."
    );
    describe_gauge!(
        "rumor_health_part",
        Unit::Count,
        "1 while the part of the health registry passes, else 0, by probe and part (watchdogs, dependency checks, gates, rumor's own); set by the registry's monitor when told of a change, else once a second."
    );
    describe_counter!(
        "rumor_health_transitions_total",
        Unit::Count,
        "Flips of a health part between passing and failing, by probe and part."
    );
    describe_histogram!(
        "rumor_health_check_seconds",
        Unit::Seconds,
        "How long each run of a readiness dependency check took, by check (a timed-out run counts its timeout)."
    );
    describe_counter!(
        "rumor_health_check_runs_total",
        Unit::Count,
        "Runs of a readiness dependency check, by check and outcome (ok, failed, timeout, panic)."
    );
    describe_counter!(
        "rumor_decode_errors_total",
        Unit::Count,
        "Datagrams dropped as undecodable, by kind."
    );
    describe_counter!(
        "rumor_send_errors_total",
        Unit::Count,
        "Datagrams the socket refused to send."
    );
    describe_counter!(
        "rumor_send_retries_total",
        Unit::Count,
        "Sends retried because the socket failed them with an earlier datagram's ICMP error."
    );
    describe_counter!(
        "rumor_recv_errors_total",
        Unit::Count,
        "Socket receive errors."
    );
    describe_counter!(
        "rumor_refusals_total",
        Unit::Count,
        "Refusals (ICMP port unreachable) the network reported for members' addresses."
    );
    describe_counter!(
        "rumor_refusals_unverified_total",
        Unit::Count,
        "Refusals ignored because their quote matched no probe sent there lately (forged, or stale); a steady rise with no crash means someone forges them."
    );
    describe_counter!(
        "rumor_refusal_convictions_total",
        Unit::Count,
        "Members convicted by a corroborated refusal rather than by silence."
    );
    describe_counter!(
        "rumor_probes_rechecked_total",
        Unit::Count,
        "Monitor pings sent a second time because no answer came within the usual round trip: about the loss rate times the monitors per period; a rise means loss or members answering late."
    );
    describe_counter!(
        "rumor_reconnects_total",
        Unit::Count,
        "Push-pull rounds started with a member convicted by silence, in case it was only cut off."
    );
    describe_histogram!(
        "rumor_timer_lateness_seconds",
        Unit::Seconds,
        "How late the process's stall clock woke (every 100 ms), plus the driver's own timers when it alone was late: this process's own stalls (GC, throttling, SIGSTOP, a starved executor)."
    );
}

/// The driver's metric handles, registered once at start.
pub(crate) struct Metrics {
    members: [Gauge; 4],
    probes: Counter,
    indirect: Counter,
    suspicions: Counter,
    convictions: Counter,
    refutations: Counter,
    stalls: Counter,
    stalls_repeated: Counter,
    packets_in: Counter,
    packets_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    decode_errors: [Counter; DECODE_ERROR_KINDS],
    send_errors: Counter,
    send_retries: Counter,
    recv_errors: Counter,
    refusals: Counter,
    refusals_unverified: Counter,
    refusal_convictions: Counter,
    probes_rechecked: Counter,
    reconnects: Counter,
    lateness: Histogram,
    exported: NodeStats,
    exported_rt: RuntimeStats,
    local_health: Gauge,
    observed: Counter,
    /// readiness, startup.
    checks: [Gauge; 2],
    /// The labels every metric carries (`RuntimeBuilder::metrics_label`).
    labels: Vec<Label>,
}

impl Metrics {
    /// Registers every handle again with whatever recorder is installed now, and
    /// forgets what was exported, so the next export writes every counter's total.
    /// The driver calls it every `METRICS_REFRESH`: a recorder installed after
    /// `start()` then sees every metric within that time, counters from the start of
    /// the node (they are exported as absolute totals), gauges from their next change,
    /// timer lateness from then on.
    pub fn refresh(&mut self) {
        *self = Metrics::new(&self.labels);
    }

    /// Describes and registers every metric with `labels` added.
    pub fn new(labels: &[Label]) -> Metrics {
        describe();
        let with =
            |extra: Option<Label>| -> Vec<Label> { labels.iter().cloned().chain(extra).collect() };
        let counter = |name: &'static str| metrics::counter!(name, with(None));
        Metrics {
            members: STATES.map(|s| {
                metrics::gauge!("rumor_members", with(Some(Label::new("state", s.as_str()))))
            }),
            probes: counter("rumor_probes_total"),
            indirect: counter("rumor_indirect_probes_total"),
            suspicions: counter("rumor_suspicions_total"),
            convictions: counter("rumor_convictions_total"),
            refutations: counter("rumor_refutations_total"),
            stalls: counter("rumor_stalls_total"),
            stalls_repeated: counter("rumor_stalls_repeated_total"),
            packets_in: counter("rumor_packets_in_total"),
            packets_out: counter("rumor_packets_out_total"),
            bytes_in: counter("rumor_received_bytes_total"),
            bytes_out: counter("rumor_sent_bytes_total"),
            local_health: metrics::gauge!("rumor_local_health", with(None)),
            observed: counter("rumor_observed_seconds_total"),
            checks: ["readiness", "startup"]
                .map(|c| metrics::gauge!("rumor_health_check", with(Some(Label::new("check", c))))),
            decode_errors: DecodeErrorKind::ALL.map(|k| {
                metrics::counter!(
                    "rumor_decode_errors_total",
                    with(Some(Label::new("kind", k.as_str())))
                )
            }),
            send_errors: counter("rumor_send_errors_total"),
            send_retries: counter("rumor_send_retries_total"),
            recv_errors: counter("rumor_recv_errors_total"),
            refusals: counter("rumor_refusals_total"),
            refusals_unverified: counter("rumor_refusals_unverified_total"),
            refusal_convictions: counter("rumor_refusal_convictions_total"),
            probes_rechecked: counter("rumor_probes_rechecked_total"),
            reconnects: counter("rumor_reconnects_total"),
            lateness: metrics::histogram!("rumor_timer_lateness_seconds", with(None)),
            exported: NodeStats::default(),
            exported_rt: RuntimeStats::default(),
            labels: labels.to_vec(),
        }
    }

    /// Writes the counters that changed since the last export, as absolute totals
    /// (so that handles registered late, by `refresh`, start from the right value).
    pub fn export(&mut self, s: &NodeStats, rt: &RuntimeStats) {
        let old = &self.exported;
        let pairs = [
            (&self.probes, s.probes_sent, old.probes_sent),
            (&self.indirect, s.indirect_probes, old.indirect_probes),
            (&self.suspicions, s.suspicions_raised, old.suspicions_raised),
            (&self.convictions, s.convictions, old.convictions),
            (&self.refutations, s.refutations, old.refutations),
            (&self.stalls, s.stalls_detected, old.stalls_detected),
            (
                &self.stalls_repeated,
                s.stalls_repeated,
                old.stalls_repeated,
            ),
            (&self.packets_in, s.packets_in, old.packets_in),
            (&self.packets_out, s.packets_out, old.packets_out),
            (&self.bytes_in, s.bytes_in, old.bytes_in),
            (&self.bytes_out, s.bytes_out, old.bytes_out),
            (
                &self.send_errors,
                rt.send_errors,
                self.exported_rt.send_errors,
            ),
            (
                &self.send_retries,
                rt.send_retries,
                self.exported_rt.send_retries,
            ),
            (
                &self.recv_errors,
                rt.recv_errors,
                self.exported_rt.recv_errors,
            ),
            (&self.refusals, s.refusals, old.refusals),
            (
                &self.refusals_unverified,
                s.refusals_unverified,
                old.refusals_unverified,
            ),
            (
                &self.refusal_convictions,
                s.refusal_convictions,
                old.refusal_convictions,
            ),
            (&self.reconnects, s.reconnects, old.reconnects),
            (
                &self.probes_rechecked,
                s.probes_rechecked,
                old.probes_rechecked,
            ),
        ];
        for (counter, new, old) in pairs {
            if new != old {
                counter.absolute(new);
            }
        }
        for (i, counter) in self.decode_errors.iter().enumerate() {
            let (new, old) = (s.decode_errors[i], old.decode_errors[i]);
            if new != old {
                counter.absolute(new);
            }
        }
        self.exported = *s;
        self.exported_rt = *rt;
    }

    /// Sets the member gauges from counts indexed like [`MemberState`]'s rank.
    pub fn set_members(&self, counts: [usize; 4]) {
        for (gauge, n) in self.members.iter().zip(counts) {
            gauge.set(n as f64);
        }
    }

    /// Sets the health gauges: the local health score, readiness and startup.
    pub fn set_health(&self, local_health: u32, ready: bool, started: bool) {
        self.local_health.set(f64::from(local_health));
        for (gauge, ok) in self.checks.iter().zip([ready, started]) {
            gauge.set(if ok { 1.0 } else { 0.0 });
        }
    }

    /// Sets the observed-seconds counter to the driver's age.
    pub fn observed(&self, age: Duration) {
        self.observed.absolute(age.as_secs());
    }

    /// Records one timer's lateness.
    pub fn timer_lateness(&self, late: Duration) {
        self.lateness.record(late.as_secs_f64());
    }
}

/// Counts members by state, indexed alive, suspect, dead, left.
pub(crate) fn count_states<'a>(members: impl Iterator<Item = &'a crate::Member>) -> [usize; 4] {
    let mut counts = [0; 4];
    for m in members {
        if let Some(i) = STATES.iter().position(|s| *s == m.state) {
            counts[i] += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    /// The names `/metrics` shows with a given exporter setting.
    fn names(recommended: bool) -> Vec<String> {
        let recorder = PrometheusBuilder::new()
            .with_recommended_naming(recommended)
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut m = Metrics::new(&[]);
            let stats = NodeStats {
                bytes_in: 10,
                bytes_out: 20,
                ..NodeStats::default()
            };
            m.export(&stats, &RuntimeStats::default());
            m.set_members([1, 0, 0, 0]);
            m.set_health(0, true, true);
            m.timer_lateness(Duration::from_millis(3));
            m.observed(Duration::from_secs(2));
        });
        let mut out: Vec<String> = handle
            .render()
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
            .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn names_do_not_depend_on_the_exporters_naming() {
        let plain = names(false);
        assert!(
            plain.contains(&"rumor_received_bytes_total".to_string()),
            "{plain:?}"
        );
        assert!(
            plain.contains(&"rumor_health_check".to_string()),
            "{plain:?}"
        );
        assert_eq!(plain, names(true));
    }
}
