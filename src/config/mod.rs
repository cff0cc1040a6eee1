//! Node configuration: every knob with its unit, default, valid range and how to tune it.

use std::fmt;
use std::time::Duration;

use crate::duration::{fmt_dur, parse_duration};
use crate::error::ConfigError;
use crate::keyring::{Key, Keyring};

#[cfg(feature = "serde")]
mod serde_form;
#[cfg(feature = "serde")]
pub use serde_form::ConfigOverlay;

/// Which failure-detection strategy the core runs. All three share the same code for
/// membership, dissemination and refutation, so the simulator can compare them on one
/// seed; they differ only in who probes whom and what turns silence into a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// SWIM as published: one random probe per period (round-robin over a shuffled
    /// list), ping-req through `indirect_checks` helpers, then Suspect; Dead after a
    /// fixed suspicion timeout. No local health, no nacks, no shrinking timeout.
    Swim,
    /// SWIM with Lifeguard (what HashiCorp memberlist runs): local health multiplier,
    /// nacks, suspicion timeout shrinking with independent confirmations, buddy system.
    Lifeguard,
    /// rumor's default: every member is probed each period by `monitors` peers chosen on
    /// a hash ring; each monitor runs a phi-accrual detector over that member's acks and
    /// convicts at `phi_convict` (which includes `acceptable_pause`). Lifeguard's local
    /// health, nacks, buddy system and suspicion timer remain, the timer as a fallback.
    #[default]
    PhiMonitors,
}

impl Strategy {
    /// The strategy's name as the simulator and CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Swim => "swim",
            Strategy::Lifeguard => "lifeguard",
            Strategy::PhiMonitors => "phi-monitors",
        }
    }

    /// Whether Lifeguard's mechanisms (local health, nacks, shrinking timeout) are on.
    pub fn lifeguard(self) -> bool {
        !matches!(self, Strategy::Swim)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Strategy, String> {
        match s {
            "swim" => Ok(Strategy::Swim),
            "lifeguard" => Ok(Strategy::Lifeguard),
            "phi-monitors" | "phi_monitors" | "default" => Ok(Strategy::PhiMonitors),
            _ => Err("one of swim, lifeguard, phi-monitors".to_string()),
        }
    }
}

/// Configuration of a [`Node`](crate::Node). Start from a preset ([`Config::lan`],
/// [`Config::wan`], [`Config::local`]) and call [`Config::validate`] after changing
/// fields; [`Node::new`](crate::Node::new) validates too.
///
/// Durations are wall-clock spans as the caller's clock measures them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Cluster label carried in every packet; packets with another label are dropped and
    /// counted, so two clusters sharing a network never merge. With keys, it is also
    /// bound into every packet's authentication. Default `"rumor"`; 0 to 64 bytes.
    pub cluster_label: String,
    /// Keys that seal (encrypt and authenticate, XChaCha20-Poly1305) every packet: the
    /// first seals, every key opens. Default empty: packets travel in plaintext. At most
    /// 8 keys; as text (`Config::set`), comma-separated 64-digit hex keys. Rotate with
    /// `Node::keyring_add` / `keyring_use` / `keyring_remove` (see `docs/security.md`).
    pub keyring: Keyring,
    /// With keys: also accept plaintext packets (a migration step while the cluster
    /// moves to encryption). Default false: plaintext is refused and counted.
    pub accept_plaintext: bool,
    /// With keys: still send plaintext (the first migration step, while some members
    /// have no keys yet). Default false.
    pub send_plaintext: bool,
    /// Failure-detection strategy. Default [`Strategy::PhiMonitors`].
    pub strategy: Strategy,

    /// Protocol period `T`: how often each member is probed (by each of its monitors, or
    /// by one random prober under SWIM). Shorter detects faster and costs proportionally
    /// more packets. Default 1 s (LAN); range 10 ms ..= 60 s.
    pub probe_interval: Duration,
    /// How long a direct probe waits for its ack before asking helpers (ping-req).
    /// Set above the network's p99 round trip. Default 500 ms; range 1 ms ..
    /// `probe_interval` (exclusive).
    pub probe_timeout: Duration,
    /// Helpers asked to probe a silent member indirectly (`k` in SWIM). More helpers cut
    /// false suspicions under loss, at 4 messages each per failed probe.
    /// Default 3; range 0 ..= 16.
    pub indirect_checks: usize,

    /// Monitors per member under [`Strategy::PhiMonitors`]: each member is probed every
    /// period by this many peers, its successors on a hash ring of member ids. Each node
    /// thus sends about `monitors` probes per period. Default 3; range 1 ..= 16.
    pub monitors: usize,
    /// Phi at which a monitor starts indirect probes and, if they fail, raises Suspect.
    /// Measured *without* `acceptable_pause`, so a missed ack is looked into at once;
    /// suspicion is cheap and refutable. Default 2.0 (≈ 1.2 s of silence at a steady
    /// 1 s rhythm); range 0.1 ..= 20.
    pub phi_suspect: f64,
    /// Phi at which a monitor declares a suspected member dead. Measured *with*
    /// `acceptable_pause` added to the mean (as Akka does). Use
    /// [`PhiDetector::silence_for`](crate::detector::PhiDetector::silence_for) to translate it
    /// into seconds. Default 8.0 (≈ 4.5 s of silence at a steady 1 s rhythm with the
    /// default pause); range `phi_suspect` ..= 30.
    pub phi_convict: f64,
    /// Slack for stalls (GC pause, CPU throttling, SIGSTOP), added to the detector's
    /// mean inter-arrival before `phi_convict` is applied (the name is Akka's). It is
    /// *not* the longest pause tolerated: what a pause must outlast to convict is the
    /// **silence to convict**, about `probe_interval + acceptable_pause + y(phi_convict)
    /// × min_std_dev` ([`PhiDetector::silence_for`](crate::detector::PhiDetector::silence_for)
    /// gives it exactly), less up to one probe interval for a pause that starts just
    /// before a probe is due. So `rumor-sim tune` may choose 1.4 s here for pauses of
    /// 1.9 s: read its "silence to convict" column and its risk line, not this value,
    /// against your pauses. Default 3 s; range 0 ..= 10 min. Tuning: measure pauses
    /// (`rumor-node --pauses`, the `rumor_timer_lateness_seconds` histogram) and let
    /// `rumor-sim tune` choose it with `phi_convict`.
    pub acceptable_pause: Duration,
    /// Ack inter-arrival samples each monitor keeps per member. Default 100;
    /// range 2 ..= 10 000.
    pub phi_window: usize,
    /// Floor of the detector's standard deviation, so a very regular rhythm does not
    /// turn one late ack into a conviction. Default 100 ms; range 1 ms ..= 60 s.
    pub min_std_dev: Duration,
    /// How long a member the network reported unreachable (its port closed, see
    /// [`Node::handle_unreachable`](crate::Node::handle_unreachable)) waits for
    /// corroboration before the refusal is dropped and silence decides. Evidence from
    /// a second observer (a helper's own refused probe, or a peer's refused suspicion
    /// of the same life) convicts without waiting for the window to end, as soon as the
    /// member has had the refutation grace to answer (two late-answer thresholds of
    /// the measured round trip, at least `probe_timeout / 5`, at most this long). With
    /// no second observer (a two-member cluster), a second refusal corroborates and
    /// the conviction waits the whole window, for a refutation. Default 1 s (LAN,
    /// local), 5 s (WAN); range 10 ms ..= 10 min. Tuning: keep it above a few round
    /// trips plus `probe_timeout`; it no longer sets how fast crashes are found.
    pub refusal_window: Duration,

    /// Suspicion timeout multiplier (memberlist's SuspicionMult): the timeout's floor is
    /// `suspicion_mult × max(1, log10 n) × probe_interval`. Under
    /// [`Strategy::Swim`] that floor is the fixed timeout. Default 4; range 1 ..= 100.
    pub suspicion_mult: u32,
    /// The suspicion timeout starts at `suspicion_max_mult ×` its floor and shrinks
    /// toward the floor as independent confirmations arrive (Lifeguard).
    /// Default 6; range 1 ..= 100.
    pub suspicion_max_mult: u32,
    /// Local health multiplier ceiling (Lifeguard's S): probe interval and timeout scale
    /// by `1 + health` when this node sees signs that it, not its peers, is slow.
    /// Default 8; range 0 ..= 32 (0 turns it off).
    pub max_local_health: u32,

    /// How often a node gossips pending updates to `gossip_fanout` random members, on top
    /// of piggybacking them on probes. Default 200 ms; range 1 ms ..= 60 s.
    pub gossip_interval: Duration,
    /// Members gossiped to each `gossip_interval` while updates are pending.
    /// Default 3; range 0 ..= 32.
    pub gossip_fanout: usize,
    /// Each update is sent `retransmit_mult × ceil(log2(n + 1))` times before it is
    /// dropped from the queue (SWIM's λ). Default 2; range 1 ..= 32.
    pub retransmit_mult: u32,
    /// How long gossip still goes to a member convicted by silence (memberlist's
    /// GossipToTheDeadTime): a member that was only cut off (a partition, a one-way
    /// cut) hears of its death and refutes, and its own news reaches us, without
    /// waiting for push-pull. Members convicted by refusal are not included.
    /// Default 30 s (LAN, local), 60 s (WAN); range 0 (off) ..= 10 min.
    pub gossip_to_the_dead: Duration,
    /// How often, while members convicted by silence are remembered (`reconnect_timeout`),
    /// this node push-pulls with one of them, with probability `dead / live` (at most 1),
    /// in case it was only cut off (Serf's reconnect): after a symmetric partition heals
    /// nothing else flows between the sides. The cluster makes about one attempt per
    /// interval per death, whatever its size. Default 5 s (LAN), 30 s (WAN), 2 s
    /// (local); range 0 (off) or 100 ms ..= 1 h.
    pub reconnect_interval: Duration,
    /// How long a member convicted by silence stays a reconnect candidate (Serf's
    /// reconnect_timeout), its address kept even after `dead_retention` forgets the
    /// member itself: a partition longer than `dead_retention` still heals, where
    /// otherwise each side would have forgotten the other and never speak to it again.
    /// At most 256 candidates are kept, the oldest dropped first. Default 24 h; range
    /// 1 s ..= 30 days.
    pub reconnect_timeout: Duration,
    /// Mean period of the push-pull full state sync with one random member (heals
    /// partitions); each round comes at a random 0.5–1.5 × the period. Scaled up by `log2(n / 32)` above 32 members, as memberlist does, to
    /// keep the cluster-wide sync load flat. Default 30 s; range 1 s ..= 1 h.
    pub push_pull_interval: Duration,
    /// How often join is retried while no seed has answered. Default 1 s;
    /// range 10 ms ..= 10 min.
    pub join_retry_interval: Duration,
    /// How long a dead or departed member is remembered (so stale gossip cannot revive
    /// it) before it is forgotten. Default 5 min; range 1 s ..= 24 h.
    pub dead_retention: Duration,

    /// Largest datagram sent or accepted, in bytes. Default 1400 (fits a 1500 B MTU);
    /// range 512 ..= 65 507.
    pub max_packet_size: usize,
    /// Largest metadata a member may carry, in bytes. Default 512;
    /// range 0 ..= `max_packet_size / 2`.
    pub max_metadata_size: usize,
    /// Most members a node tracks, dead ones included; news of more is dropped and
    /// counted. Default 100 000; range 1 ..= 10 000 000.
    pub max_members: usize,
    /// Most user broadcasts waiting in the dissemination queue; the oldest is dropped
    /// (and counted) beyond it. Default 1024; range 1 ..= 1 000 000.
    pub max_pending_broadcasts: usize,
    /// Most messages in one packet, sent or received (a packet with more is dropped
    /// whole). Default 128; range 3 ..= 4096.
    pub max_messages_per_packet: usize,
    /// Ping-req relays served per source address per `probe_interval`; more are refused
    /// and counted (`NodeStats::relays_refused`). A requester asks a helper once per
    /// failed probe, so honest members stay far below it. Default 16; range 1 ..= 4096.
    pub max_relays_per_source: usize,
    /// Push-pull digest chunks answered per source address per `probe_interval`; more
    /// are refused and counted (`NodeStats::syncs_refused`). One chunk covers up to
    /// ~75 members at the default packet size. Default 64; range 1 ..= 4096.
    pub max_syncs_per_source: usize,

    /// A timer that fires this much later than it was due means this node itself was
    /// stalled. Default 250 ms; range 1 ms ..= 60 s (keep it under `probe_timeout`).
    pub stall_threshold: Duration,
    /// After a detected stall, no member is convicted for this long, so the backlog of
    /// refutations that queued during the stall is read first. Default 1 s;
    /// range 0 ..= 10 min.
    pub stall_guard: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config::lan()
    }
}

impl Config {
    /// The preset called `name`: `lan`, `wan` or `local`.
    pub fn preset(name: &str) -> Option<Config> {
        match name.trim() {
            "lan" => Some(Config::lan()),
            "wan" => Some(Config::wan()),
            "local" => Some(Config::local()),
            _ => None,
        }
    }

    /// Defaults for a data-centre network (memberlist's LAN profile plus phi monitors).
    pub fn lan() -> Config {
        Config {
            cluster_label: "rumor".to_string(),
            keyring: Keyring::default(),
            accept_plaintext: false,
            send_plaintext: false,
            strategy: Strategy::PhiMonitors,
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            monitors: 3,
            phi_suspect: 2.0,
            phi_convict: 8.0,
            acceptable_pause: Duration::from_secs(3),
            phi_window: 100,
            min_std_dev: Duration::from_millis(100),
            refusal_window: Duration::from_secs(1),
            suspicion_mult: 4,
            suspicion_max_mult: 6,
            max_local_health: 8,
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            retransmit_mult: 2,
            gossip_to_the_dead: Duration::from_secs(30),
            reconnect_interval: Duration::from_secs(5),
            reconnect_timeout: Duration::from_secs(86_400),
            push_pull_interval: Duration::from_secs(30),
            join_retry_interval: Duration::from_secs(1),
            dead_retention: Duration::from_secs(300),
            max_packet_size: 1400,
            max_metadata_size: 512,
            max_members: 100_000,
            max_pending_broadcasts: 1024,
            max_messages_per_packet: 128,
            max_relays_per_source: 16,
            max_syncs_per_source: 64,
            stall_threshold: Duration::from_millis(250),
            stall_guard: Duration::from_secs(1),
        }
    }

    /// Defaults for members spread over a WAN (memberlist's WAN profile: 5 s period,
    /// 3 s probe timeout, suspicion multiplier 6).
    pub fn wan() -> Config {
        Config {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            acceptable_pause: Duration::from_secs(10),
            min_std_dev: Duration::from_millis(500),
            refusal_window: Duration::from_secs(5),
            gossip_interval: Duration::from_millis(500),
            gossip_fanout: 4,
            push_pull_interval: Duration::from_secs(60),
            gossip_to_the_dead: Duration::from_secs(60),
            reconnect_interval: Duration::from_secs(30),
            join_retry_interval: Duration::from_secs(5),
            stall_threshold: Duration::from_secs(1),
            stall_guard: Duration::from_secs(5),
            ..Config::lan()
        }
    }

    /// Defaults for members on one host (memberlist's Local profile: 1 s period, 200 ms
    /// probe timeout, suspicion multiplier 3).
    pub fn local() -> Config {
        Config {
            probe_timeout: Duration::from_millis(200),
            suspicion_mult: 3,
            acceptable_pause: Duration::from_secs(2),
            min_std_dev: Duration::from_millis(50),
            gossip_interval: Duration::from_millis(100),
            push_pull_interval: Duration::from_secs(15),
            reconnect_interval: Duration::from_secs(2),
            stall_threshold: Duration::from_millis(100),
            ..Config::lan()
        }
    }

    /// Checks every field against its documented range and the fields against each
    /// other. The error names the field, its value and what is valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        check_len("cluster_label", self.cluster_label.len(), 0, 64)?;
        check_dur("probe_interval", self.probe_interval, ms(10), s(60))?;
        check_dur("probe_timeout", self.probe_timeout, ms(1), s(60))?;
        if self.probe_timeout >= self.probe_interval {
            return Err(ConfigError::new(
                "probe_timeout",
                fmt_dur(self.probe_timeout),
                format!(
                    "less than probe_interval ({})",
                    fmt_dur(self.probe_interval)
                ),
            ));
        }
        check_int("indirect_checks", self.indirect_checks, 0, 16)?;
        check_int("monitors", self.monitors, 1, 16)?;
        check_float("phi_suspect", self.phi_suspect, 0.1, 20.0)?;
        check_float("phi_convict", self.phi_convict, self.phi_suspect, 30.0)?;
        check_dur(
            "acceptable_pause",
            self.acceptable_pause,
            Duration::ZERO,
            s(600),
        )?;
        check_int("phi_window", self.phi_window, 2, 10_000)?;
        check_dur("min_std_dev", self.min_std_dev, ms(1), s(60))?;
        check_dur("refusal_window", self.refusal_window, ms(10), s(600))?;
        check_int("suspicion_mult", self.suspicion_mult as usize, 1, 100)?;
        check_int(
            "suspicion_max_mult",
            self.suspicion_max_mult as usize,
            1,
            100,
        )?;
        check_int("max_local_health", self.max_local_health as usize, 0, 32)?;
        check_dur("gossip_interval", self.gossip_interval, ms(1), s(60))?;
        check_int("gossip_fanout", self.gossip_fanout, 0, 32)?;
        check_int("retransmit_mult", self.retransmit_mult as usize, 1, 32)?;
        check_dur("push_pull_interval", self.push_pull_interval, s(1), s(3600))?;
        check_dur(
            "gossip_to_the_dead",
            self.gossip_to_the_dead,
            Duration::ZERO,
            s(600),
        )?;
        let r = self.reconnect_interval;
        if !r.is_zero() && (r < ms(100) || r > s(3600)) {
            return Err(ConfigError::new(
                "reconnect_interval",
                fmt_dur(r),
                format!(
                    "0 (off) or between {} and {}",
                    fmt_dur(ms(100)),
                    fmt_dur(s(3600))
                ),
            ));
        }
        check_dur(
            "reconnect_timeout",
            self.reconnect_timeout,
            s(1),
            s(30 * 86_400),
        )?;
        check_dur(
            "join_retry_interval",
            self.join_retry_interval,
            ms(10),
            s(600),
        )?;
        check_dur("dead_retention", self.dead_retention, s(1), s(86_400))?;
        check_int("max_packet_size", self.max_packet_size, 512, 65_507)?;
        check_int(
            "max_metadata_size",
            self.max_metadata_size,
            0,
            self.max_packet_size / 2,
        )?;
        check_int("max_members", self.max_members, 1, 10_000_000)?;
        check_int(
            "max_pending_broadcasts",
            self.max_pending_broadcasts,
            1,
            1_000_000,
        )?;
        // A join and each push-pull chunk are two messages (Alive + digest), a suspect's
        // sync entry two more; below 3 a node could neither join nor sync.
        check_int(
            "max_messages_per_packet",
            self.max_messages_per_packet,
            3,
            4096,
        )?;
        check_int("max_relays_per_source", self.max_relays_per_source, 1, 4096)?;
        check_int("max_syncs_per_source", self.max_syncs_per_source, 1, 4096)?;
        check_dur("stall_threshold", self.stall_threshold, ms(1), s(60))?;
        check_dur("stall_guard", self.stall_guard, Duration::ZERO, s(600))?;
        Ok(())
    }

    /// The names [`Config::set`] accepts, in declaration order.
    pub const FIELDS: &'static [&'static str] = &[
        "cluster_label",
        "keyring",
        "accept_plaintext",
        "send_plaintext",
        "strategy",
        "probe_interval",
        "probe_timeout",
        "indirect_checks",
        "monitors",
        "phi_suspect",
        "phi_convict",
        "acceptable_pause",
        "phi_window",
        "min_std_dev",
        "refusal_window",
        "suspicion_mult",
        "suspicion_max_mult",
        "max_local_health",
        "gossip_interval",
        "gossip_fanout",
        "retransmit_mult",
        "gossip_to_the_dead",
        "reconnect_interval",
        "reconnect_timeout",
        "push_pull_interval",
        "join_retry_interval",
        "dead_retention",
        "max_packet_size",
        "max_metadata_size",
        "max_members",
        "max_pending_broadcasts",
        "max_messages_per_packet",
        "max_relays_per_source",
        "max_syncs_per_source",
        "stall_threshold",
        "stall_guard",
    ];

    /// Sets one field from text, as command lines and scenario files give it:
    /// durations as `500ms`, `1.5s`, `2m`; numbers as decimals; the strategy by name.
    /// Does not validate the whole config (call [`Config::validate`] after the last set).
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), ConfigError> {
        let v = value.trim();
        let bad = |expected: &str| ConfigError::new_owned(field, v, expected);
        let dur = || parse_duration(v).ok_or_else(|| bad("a duration such as 500ms, 1.5s or 2m"));
        let int = || {
            v.parse::<usize>()
                .map_err(|_| bad("a non-negative integer"))
        };
        let uint32 = || v.parse::<u32>().map_err(|_| bad("a non-negative integer"));
        let boolean = || v.parse::<bool>().map_err(|_| bad("true or false"));
        let float = || {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("a finite number"))
        };
        match field {
            "cluster_label" => self.cluster_label = v.to_string(),
            "keyring" => {
                // Errors never echo the text: it is a secret.
                let secret = |expected: &str| ConfigError::new_owned(field, "(redacted)", expected);
                let mut ring = Keyring::default();
                for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let key = Key::from_hex(part)
                        .ok_or_else(|| secret("comma-separated keys of 64 hex digits each"))?;
                    ring.add(key).map_err(|e| secret(&e.to_string()))?;
                }
                self.keyring = ring;
            }
            "accept_plaintext" => self.accept_plaintext = boolean()?,
            "send_plaintext" => self.send_plaintext = boolean()?,
            "strategy" => self.strategy = v.parse().map_err(|e: String| bad(&e))?,
            "probe_interval" => self.probe_interval = dur()?,
            "probe_timeout" => self.probe_timeout = dur()?,
            "indirect_checks" => self.indirect_checks = int()?,
            "monitors" => self.monitors = int()?,
            "phi_suspect" => self.phi_suspect = float()?,
            "phi_convict" => self.phi_convict = float()?,
            "acceptable_pause" => self.acceptable_pause = dur()?,
            "phi_window" => self.phi_window = int()?,
            "min_std_dev" => self.min_std_dev = dur()?,
            "refusal_window" => self.refusal_window = dur()?,
            "suspicion_mult" => self.suspicion_mult = uint32()?,
            "suspicion_max_mult" => self.suspicion_max_mult = uint32()?,
            "max_local_health" => self.max_local_health = uint32()?,
            "gossip_interval" => self.gossip_interval = dur()?,
            "gossip_fanout" => self.gossip_fanout = int()?,
            "retransmit_mult" => self.retransmit_mult = uint32()?,
            "gossip_to_the_dead" => self.gossip_to_the_dead = dur()?,
            "reconnect_interval" => self.reconnect_interval = dur()?,
            "reconnect_timeout" => self.reconnect_timeout = dur()?,
            "push_pull_interval" => self.push_pull_interval = dur()?,
            "join_retry_interval" => self.join_retry_interval = dur()?,
            "dead_retention" => self.dead_retention = dur()?,
            "max_packet_size" => self.max_packet_size = int()?,
            "max_metadata_size" => self.max_metadata_size = int()?,
            "max_members" => self.max_members = int()?,
            "max_pending_broadcasts" => self.max_pending_broadcasts = int()?,
            "max_messages_per_packet" => self.max_messages_per_packet = int()?,
            "max_relays_per_source" => self.max_relays_per_source = int()?,
            "max_syncs_per_source" => self.max_syncs_per_source = int()?,
            "stall_threshold" => self.stall_threshold = dur()?,
            "stall_guard" => self.stall_guard = dur()?,
            _ => {
                return Err(ConfigError::new(
                    "field",
                    field.to_string(),
                    format!("one of: {}", Config::FIELDS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Number of retransmissions of each update at cluster size `n`:
    /// `retransmit_mult × ceil(log2(n + 1))`.
    pub fn retransmit_limit(&self, n: usize) -> u32 {
        let log = usize::BITS - n.leading_zeros(); // ceil(log2(n + 1)) for n >= 0
        self.retransmit_mult.saturating_mul(log.max(1))
    }

    /// The Lifeguard suspicion timeout's floor at cluster size `n`:
    /// `suspicion_mult × max(1, log10 n) × probe_interval`.
    pub fn suspicion_min_timeout(&self, n: usize) -> Duration {
        let scale = libm::log10(n.max(1) as f64).max(1.0);
        self.probe_interval
            .mul_f64(f64::from(self.suspicion_mult) * scale)
    }
}

fn check_dur(
    field: &'static str,
    v: Duration,
    lo: Duration,
    hi: Duration,
) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::new(
            field,
            fmt_dur(v),
            format!("between {} and {}", fmt_dur(lo), fmt_dur(hi)),
        ));
    }
    Ok(())
}

fn check_int(field: &'static str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::new(
            field,
            v.to_string(),
            format!("between {lo} and {hi}"),
        ));
    }
    Ok(())
}

fn check_len(field: &'static str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::new(
            field,
            format!("{v} bytes"),
            format!("between {lo} and {hi} bytes"),
        ));
    }
    Ok(())
}

fn check_float(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if !(v.is_finite() && v >= lo && v <= hi) {
        return Err(ConfigError::new(
            field,
            v.to_string(),
            format!("between {lo} and {hi}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for c in [Config::lan(), Config::wan(), Config::local()] {
            c.validate().unwrap();
        }
    }

    #[test]
    fn reconnect_interval_is_off_or_in_range() {
        let mut c = Config::lan();
        for (v, ok) in [
            (0, true),
            (50, false),
            (100, true),
            (3_600_000, true),
            (3_600_001, false),
        ] {
            c.reconnect_interval = Duration::from_millis(v);
            assert_eq!(c.validate().is_ok(), ok, "{v} ms");
        }
        c.reconnect_interval = Duration::from_millis(50);
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid reconnect_interval = 50ms: must be 0 (off) or between 100ms and 3600s"
        );
    }

    #[test]
    fn errors_name_the_field_and_range() {
        let mut c = Config::lan();
        c.probe_timeout = Duration::from_secs(2);
        let e = c.validate().unwrap_err();
        assert_eq!(e.field(), "probe_timeout");
        assert_eq!(
            e.to_string(),
            "invalid probe_timeout = 2s: must be less than probe_interval (1s)"
        );
        let mut c = Config::lan();
        c.monitors = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid monitors = 0: must be between 1 and 16"
        );
        let mut c = Config::lan();
        c.phi_convict = f64::NAN;
        assert_eq!(c.validate().unwrap_err().field(), "phi_convict");
    }

    #[test]
    fn every_field_can_be_set_by_name() {
        let mut c = Config::lan();
        for f in Config::FIELDS {
            let v = match *f {
                "cluster_label" => "x",
                "strategy" => "swim",
                "phi_suspect" | "phi_convict" => "3.5",
                "keyring" => "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
                "accept_plaintext" | "send_plaintext" => "true",
                _ if c.set(f, "7").is_ok() => continue,
                _ => "750ms",
            };
            c.set(f, v).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        assert_eq!(c.strategy, Strategy::Swim);
        assert_eq!(c.monitors, 7);
        assert_eq!(c.keyring.keys().len(), 1);
        assert!(c.accept_plaintext && c.send_plaintext);
        // A bad key is refused without echoing the secret.
        let e = c.set("keyring", "00ff-not-hex").unwrap_err();
        assert!(!e.to_string().contains("00ff"), "{e}");
        let e = c.set("nope", "1").unwrap_err();
        assert!(e.to_string().contains("acceptable_pause"), "{e}");
        assert!(c.set("probe_interval", "fast").is_err());
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1e400s"), None);
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(fmt_dur(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn retransmit_limit_is_lambda_log2() {
        let c = Config::lan();
        assert_eq!(c.retransmit_limit(0), 2);
        assert_eq!(c.retransmit_limit(1), 2);
        assert_eq!(c.retransmit_limit(3), 4);
        assert_eq!(c.retransmit_limit(50), 12);
        assert_eq!(c.retransmit_limit(1000), 20);
    }

    #[test]
    fn suspicion_floor_matches_memberlist() {
        let c = Config::lan();
        assert_eq!(c.suspicion_min_timeout(5), Duration::from_secs(4));
        let t = c.suspicion_min_timeout(1000);
        assert!((t.as_secs_f64() - 12.0).abs() < 1e-9);
    }
}
