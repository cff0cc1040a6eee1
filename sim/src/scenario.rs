//! Scenario files (TOML, unknown fields rejected) and `--set path=value` overrides.

use std::path::Path;
use std::time::Duration;

use rumor::Config;
use rumor::duration::parse_duration;
use serde::{Deserialize, Deserializer};

/// A duration written as text (`"250ms"`, `"1.5s"`, `"2m"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid duration {s:?} (use e.g. 500ms, 1.5s, 2m)"))
        })
    }
}

/// A whole scenario: the cluster, its network, its faults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in reports.
    pub name: String,
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Cluster size.
    pub nodes: usize,
    /// Simulated time.
    pub duration: Dur,
    /// Master seed (overridden by `--seed`).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Load metrics count from here; nodes join during the warm-up.
    #[serde(default = "default_warmup")]
    pub warmup: Dur,
    /// Nodes join at uniform random times in `[0, join_spread]`, each through a random
    /// node that joined before it.
    #[serde(default = "default_join_spread")]
    pub join_spread: Dur,
    /// How the cluster forms: `join` (the default) as above, or `converged`: every node
    /// starts at time 0 and the cluster is built through each node's own join and state
    /// sync before any timer runs (`join_spread` is then unused).
    #[serde(default)]
    pub start: Start,
    /// Config preset the `[config]` table modifies: `lan`, `wan` or `local`.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Any `rumor::Config` field by name, as text or number.
    #[serde(default)]
    pub config: toml::Table,
    /// The network model.
    #[serde(default)]
    pub network: Network,
    /// Partitions that start and heal.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// Faults injected.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

fn default_seed() -> u64 {
    1
}
fn default_warmup() -> Dur {
    Dur(Duration::from_secs(20))
}
fn default_join_spread() -> Dur {
    Dur(Duration::from_secs(2))
}
fn default_preset() -> String {
    "lan".to_string()
}

/// One-way latency distribution of a datagram.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    /// Always `value`.
    Constant {
        /// The latency.
        value: Dur,
    },
    /// Uniform in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Dur,
        /// Upper bound.
        max: Dur,
    },
    /// Normal, truncated at zero.
    Normal {
        /// Mean.
        mean: Dur,
        /// Standard deviation.
        std_dev: Dur,
    },
    /// Lognormal with the given median and shape σ (heavy right tail).
    Lognormal {
        /// Median.
        median: Dur,
        /// Shape (σ of the underlying normal).
        sigma: f64,
    },
}

impl Default for Latency {
    fn default() -> Latency {
        Latency::Lognormal {
            median: Dur(Duration::from_micros(500)),
            sigma: 0.3,
        }
    }
}

/// Gilbert–Elliott bursty loss, stepped per datagram arriving at each node.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// Probability per datagram of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Probability per datagram of moving from the bad to the good state.
    pub p_bad_to_good: f64,
    /// Loss probability in the bad state (the good state uses `network.loss`).
    pub loss_bad: f64,
}

/// The network between nodes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Per-datagram latency.
    pub latency: Latency,
    /// Each directed link gets a fixed extra latency uniform in `[0, link_jitter]`.
    pub link_jitter: Dur,
    /// Uniform loss probability per datagram.
    pub loss: f64,
    /// Optional bursty loss on top.
    pub burst: Option<Burst>,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram is held back by up to `reorder_delay` (reordering it).
    pub reorder: f64,
    /// Largest extra delay of a reordered datagram.
    pub reorder_delay: Dur,
    /// Bytes a node's socket buffer holds while the node is paused; the rest is dropped.
    pub recv_buffer: usize,
    /// A crashed process's host answers each datagram to its closed port with an ICMP
    /// port unreachable, rate-limited per destination as Linux does (a token bucket of
    /// `icmp_burst` tokens refilled at `icmp_per_second`; net.ipv4.icmp_ratelimit's
    /// default is one per second with a burst of 6).
    pub icmp_per_second: f64,
    /// Tokens of the ICMP rate limiter's bucket (see `icmp_per_second`).
    pub icmp_burst: f64,
}

impl Default for Network {
    fn default() -> Network {
        Network {
            latency: Latency::default(),
            link_jitter: Dur(Duration::from_micros(200)),
            loss: 0.0,
            burst: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Dur(Duration::from_millis(5)),
            // Linux's default net.core.rmem_default.
            recv_buffer: 212_992,
            icmp_per_second: 1.0,
            icmp_burst: 6.0,
        }
    }
}

/// Which nodes a fault or partition applies to. With none given: one random node.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// These node indices.
    #[serde(default)]
    pub nodes: Vec<usize>,
    /// This many random nodes.
    pub count: Option<usize>,
    /// This fraction of the nodes, chosen at random.
    pub fraction: Option<f64>,
    /// Every node.
    #[serde(default)]
    pub all: bool,
}

/// A network partition: `side` is cut from the rest between `start` and `end`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// When the cut starts.
    pub start: Dur,
    /// When it heals.
    pub end: Dur,
    /// The nodes on one side.
    #[serde(default)]
    pub side: Targets,
    /// Drop only datagrams from `side` to the rest (a one-way partition).
    #[serde(default)]
    pub one_way: bool,
    /// Fraction of the datagrams across the cut that are dropped: 1 (the default) cuts
    /// them all; less is a loss burst on the side's links, drawn per datagram on top of
    /// `network.loss` (what the chaos harness's per-port nftables rule does). In (0, 1].
    #[serde(default = "full_cut")]
    pub loss: f64,
    /// Cut only the link between these two nodes (`side` is then ignored); with
    /// `one_way`, only what the first sends the second. A bad cable, a firewall rule,
    /// a NIC queue stuck for one peer: everyone else still reaches both.
    pub link: Option<[usize; 2]>,
    /// Flap instead of staying cut: between `start` and `end` the cut is in force for
    /// `down`, then lifted for `up`, and so on (starting cut).
    pub flap: Option<Flap>,
}

/// A flapping cut's rhythm.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flap {
    /// How long each cut lasts.
    pub down: Dur,
    /// How long the link works between cuts.
    pub up: Dur,
}

fn full_cut() -> f64 {
    1.0
}

/// A pause length distribution.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum PauseDist {
    /// Always `value`.
    Fixed {
        /// The pause.
        value: Dur,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: Dur,
    },
    /// Pareto: `scale` is the minimum, `shape` the tail index (smaller = heavier).
    Pareto {
        /// Minimum pause.
        scale: Dur,
        /// Tail index.
        shape: f64,
    },
    /// Lognormal with the given median and σ.
    Lognormal {
        /// Median.
        median: Dur,
        /// Shape.
        sigma: f64,
    },
    /// Drawn uniformly from measured pauses (`rumor-sim tune --pauses FILE`); with a
    /// fitted tail, a drawn pause above the tail's threshold is replaced by a draw from
    /// the tail, so the runs can see pauses longer than any measured.
    Samples {
        /// Pause lengths.
        #[serde(skip)]
        values: Vec<Duration>,
        /// The fitted tail, if any (set by `tune`).
        #[serde(skip)]
        tail: Option<SampleTail>,
    },
}

/// A generalized Pareto tail over `threshold_s`: pauses above it are
/// `threshold_s + excess`, the excess generalized Pareto with `shape` and `scale_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleTail {
    /// Threshold, seconds.
    pub threshold_s: f64,
    /// Shape ξ.
    pub shape: f64,
    /// Scale σ, seconds.
    pub scale_s: f64,
}

impl SampleTail {
    /// The pause (seconds) at uniform draw `u` in [0, 1): the inverse of the tail's
    /// distribution function.
    pub fn at(&self, u: f64) -> f64 {
        let excess = if self.shape.abs() < 1e-9 {
            -self.scale_s * (1.0 - u).ln()
        } else {
            self.scale_s / self.shape * ((1.0 - u).powf(-self.shape) - 1.0)
        };
        self.threshold_s + excess
    }
}

/// What a fault does.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// The process dies silently.
    Crash,
    /// The process leaves gracefully, then exits after `drain`.
    Leave,
    /// The process dies, then starts again `down` later under the same name.
    Restart,
    /// The process stops running for `pause` (GC, SIGSTOP, throttling).
    Pause,
    /// Every event at the node takes `delay` to process, for `length`.
    Slow,
    /// A hostile source tells other nodes (a fraction `observers` of them) that the
    /// target's port is closed, whatever the truth.
    #[serde(rename = "forged-refusal")]
    ForgedRefusal,
    /// The target's monotonic clock leaps ahead by `jump` (a VM suspended or migrated):
    /// its timers are suddenly overdue and its peers' silences look `jump` longer,
    /// though nothing stopped. (A monotonic clock never steps back; a wall clock that
    /// does shows in the incarnation a restart picks: `incarnation = "zero"`.)
    #[serde(rename = "clock-jump")]
    ClockJump,
    /// Key rotation step 1: the target adds `key` to its keyring.
    #[serde(rename = "add-key")]
    AddKey,
    /// Key rotation step 2: the target seals with `key` from now on.
    #[serde(rename = "use-key")]
    UseKey,
    /// Key rotation step 3: the target drops `key`.
    #[serde(rename = "remove-key")]
    RemoveKey,
}

/// How the cluster forms at the start of a run.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Node i > 0 joins at a random time in `[0, join_spread]` through a random node
    /// already in: a live join, with its gossip storm (each join is news that every
    /// member re-gossips, O(n² λ log n) decoded updates for n joins).
    #[default]
    Join,
    /// The run starts from a converged cluster, built at time 0 through the nodes' own
    /// join and state-sync code on real datagrams (lossless, delivered at once, none of
    /// the nodes' timers running meanwhile): each node learns every other member once,
    /// from a sync, which nodes do not re-gossip. O(n²) decoded entries. See
    /// `World::build` for the stages.
    Converged,
}

/// How a crashed node's absence shows on the network.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CrashMode {
    /// The host is gone too (or cut off): datagrams to it vanish. Silence.
    #[default]
    Host,
    /// Only the process died: its host answers each datagram with a refusal (ICMP port
    /// unreachable) one network delay later, subject to loss and ICMP rate limiting.
    Process,
}

/// The incarnation a restarted process starts from.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RestartIncarnation {
    /// Whole seconds of the simulated clock, as the runtime derives it from the wall
    /// clock: above any earlier life's, unless that life refuted often.
    #[default]
    Clock,
    /// 0: a wall clock stepped back (or a driver that always starts at 0), so the new
    /// life may begin below its previous life's incarnations.
    Zero,
}

/// Where a forger of refusals sits.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Forger {
    /// Off the path: it knows the protocol, the members and their addresses, but sees
    /// no traffic, so it must guess each probe's token (or a sealed frame's nonce).
    #[default]
    OffPath,
    /// On the path: it sees the traffic and copies the last probe the observer sent to
    /// the member into its forged refusal (an observer that sent none is not fooled).
    OnPath,
}

/// A fault injected at given or random times.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens.
    pub kind: FaultKind,
    /// At this time (for every target), or:
    pub at: Option<Dur>,
    /// `count` times uniform in `[from, to]` (each picking its own targets), or:
    pub random: Option<RandomTimes>,
    /// Poisson arrivals at `rate_per_min` per target node over `[from, to]`.
    pub poisson: Option<Poisson>,
    /// Who.
    #[serde(default)]
    pub targets: Targets,
    /// `pause`: how long each pause lasts.
    pub pause: Option<PauseDist>,
    /// `pause`: all targets pause together (fleet-wide) instead of independently.
    #[serde(default)]
    pub together: bool,
    /// `pause`: no pause lasts longer than this (drawn lengths are capped). A heavy
    /// tail (pareto, lognormal) otherwise draws stalls beyond anything the modelled
    /// process really does.
    pub pause_max: Option<Dur>,
    /// `pause`: whether a pause that begins while the node is still paused extends the
    /// stall (true, the default: two GC pauses back to back are one longer stall to
    /// the peers) or is skipped (false: Poisson arrivals then model pauses of exactly
    /// the drawn lengths; skipped ones are counted in `pauses_skipped`).
    pub merge: Option<bool>,
    /// `restart`: time between the crash and the new process.
    pub down: Option<Dur>,
    /// `restart`: the incarnation the new process starts from: `clock` (the default)
    /// or `zero`.
    pub incarnation: Option<RestartIncarnation>,
    /// `clock-jump`: how far the clock leaps ahead.
    pub jump: Option<Dur>,
    /// `restart`: the nodes whose addresses the new process joins through, whatever
    /// they are doing then (crashed: a dead seed; restarted: a stale one). Default: one
    /// random running member.
    pub seeds: Option<Vec<usize>>,
    /// `restart`: the new process is a different member (another name, so another id)
    /// at the same address: an address reused, as a rescheduled pod's IP is.
    #[serde(default)]
    pub new_member: bool,
    /// `leave`: time between the leave and the process exit.
    pub drain: Option<Dur>,
    /// `slow`: processing time per event.
    pub delay: Option<Dur>,
    /// `slow`: how long the node stays slow.
    pub length: Option<Dur>,
    /// `crash`, `restart`: whether the host answers for the dead process (`process`) or
    /// stays silent (`host`, the default).
    pub crash: Option<CrashMode>,
    /// `forged-refusal`: the fraction of the other nodes told (default 1).
    pub observers: Option<f64>,
    /// `forged-refusal`: `off-path` (the default) or `on-path`.
    pub forger: Option<Forger>,
    /// `add-key`, `use-key`, `remove-key`: the key, 64 hex digits.
    pub key: Option<String>,
    /// Each target acts at a uniform random delay in `[0, spread]` after the fault's
    /// time, as a rolling change reaches members one by one. Default 0.
    pub spread: Option<Dur>,
}

/// Uniform random fault times.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomTimes {
    /// How many.
    pub count: usize,
    /// Earliest.
    pub from: Dur,
    /// Latest.
    pub to: Dur,
}

/// Poisson arrivals per node.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Poisson {
    /// Mean arrivals per minute per node.
    pub rate_per_min: f64,
    /// Start of the window.
    pub from: Dur,
    /// End of the window.
    pub to: Dur,
}

/// The scenario fields `--set` accepts besides config fields (`faults.N.*` and
/// `partitions.N.*` paths are accepted too).
pub const SCENARIO_PATHS: &[&str] = &[
    "name",
    "description",
    "nodes",
    "duration",
    "seed",
    "warmup",
    "join_spread",
    "start",
    "preset",
    "network.latency.dist",
    "network.latency.value",
    "network.latency.min",
    "network.latency.max",
    "network.latency.mean",
    "network.latency.std_dev",
    "network.latency.median",
    "network.latency.sigma",
    "network.link_jitter",
    "network.loss",
    "network.burst.p_good_to_bad",
    "network.burst.p_bad_to_good",
    "network.burst.loss_bad",
    "network.duplicate",
    "network.reorder",
    "network.reorder_delay",
    "network.recv_buffer",
    "network.icmp_per_second",
    "network.icmp_burst",
];

impl Scenario {
    /// Reads a scenario file and applies `--set` overrides.
    pub fn load(path: &Path, sets: &[(String, String)]) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Scenario::parse(&text, sets).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses scenario text and applies `--set` overrides.
    pub fn parse(text: &str, sets: &[(String, String)]) -> Result<Scenario, String> {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        for (path, v) in sets {
            apply_set(&mut value, path, v)?;
        }
        let sc: Scenario = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        sc.validate()?;
        Ok(sc)
    }

    fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 100_000 {
            return Err(format!(
                "nodes = {}: must be between 1 and 100000",
                self.nodes
            ));
        }
        if self.duration.0.is_zero() {
            return Err("duration must be positive".into());
        }
        let n = &self.network;
        if !(n.icmp_per_second >= 0.0 && n.icmp_burst >= 1.0) {
            return Err(format!(
                "network.icmp_per_second = {}, network.icmp_burst = {}: need a rate >= 0 and a burst >= 1",
                n.icmp_per_second, n.icmp_burst
            ));
        }
        for (name, p) in [
            ("network.loss", n.loss),
            ("network.duplicate", n.duplicate),
            ("network.reorder", n.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} = {p}: must be between 0 and 1"));
            }
        }
        if let Some(b) = &n.burst {
            for (name, p) in [
                ("p_good_to_bad", b.p_good_to_bad),
                ("p_bad_to_good", b.p_bad_to_good),
                ("loss_bad", b.loss_bad),
            ] {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!(
                        "network.burst.{name} = {p}: must be between 0 and 1"
                    ));
                }
            }
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if let Some([a, b]) = p.link
                && (a == b || a >= self.nodes || b >= self.nodes)
            {
                return Err(format!(
                    "partitions.{i}.link = [{a}, {b}]: two different node indices below nodes ({})",
                    self.nodes
                ));
            }
            if let Some(f) = p.flap
                && (f.down.0.is_zero() || f.up.0.is_zero())
            {
                return Err(format!(
                    "partitions.{i}.flap: `down` and `up` must both be positive"
                ));
            }
            if !(p.loss > 0.0 && p.loss <= 1.0) {
                return Err(format!(
                    "partitions.{i}.loss = {}: must be above 0 and at most 1",
                    p.loss
                ));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let whens = [f.at.is_some(), f.random.is_some(), f.poisson.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if whens != 1 {
                return Err(format!(
                    "faults.{i}: give exactly one of at, random, poisson"
                ));
            }
            if f.kind == FaultKind::Pause && f.pause.is_none() {
                return Err(format!(
                    "faults.{i}: a pause needs `pause = {{ dist = ... }}`"
                ));
            }
            if f.kind == FaultKind::Slow && (f.delay.is_none() || f.length.is_none()) {
                return Err(format!("faults.{i}: slow needs delay and length"));
            }
            let key_op = matches!(
                f.kind,
                FaultKind::AddKey | FaultKind::UseKey | FaultKind::RemoveKey
            );
            match (&f.key, key_op) {
                (Some(k), true) if rumor::Key::from_hex(k).is_some() => {}
                (_, true) => {
                    return Err(format!("faults.{i}: needs `key`, 64 hex digits"));
                }
                (Some(_), false) => {
                    return Err(format!("faults.{i}: `key` applies to key faults only"));
                }
                (None, false) => {}
            }
            if f.crash.is_some() && !matches!(f.kind, FaultKind::Crash | FaultKind::Restart) {
                return Err(format!(
                    "faults.{i}: `crash` applies to crash and restart only"
                ));
            }
            if let Some(o) = f.observers
                && (f.kind != FaultKind::ForgedRefusal || !(0.0..=1.0).contains(&o))
            {
                return Err(format!(
                    "faults.{i}.observers = {o}: a fraction between 0 and 1, for forged-refusal only"
                ));
            }
            if (f.pause_max.is_some() || f.merge.is_some()) && f.kind != FaultKind::Pause {
                return Err(format!(
                    "faults.{i}: `pause_max` and `merge` apply to pause only"
                ));
            }
            if f.incarnation.is_some() && f.kind != FaultKind::Restart {
                return Err(format!("faults.{i}: `incarnation` applies to restart only"));
            }
            if f.new_member && f.kind != FaultKind::Restart {
                return Err(format!("faults.{i}: `new_member` applies to restart only"));
            }
            if let Some(seeds) = &f.seeds {
                if f.kind != FaultKind::Restart {
                    return Err(format!("faults.{i}: `seeds` applies to restart only"));
                }
                if let Some(bad) = seeds.iter().find(|&&j| j >= self.nodes) {
                    return Err(format!(
                        "faults.{i}.seeds: node {bad} does not exist (nodes = {})",
                        self.nodes
                    ));
                }
            }
            if (f.jump.is_some() != (f.kind == FaultKind::ClockJump))
                || f.jump.is_some_and(|j| j.0.is_zero())
            {
                return Err(format!(
                    "faults.{i}: clock-jump needs `jump` (a positive duration), and only it takes one"
                ));
            }
            if f.forger.is_some() && f.kind != FaultKind::ForgedRefusal {
                return Err(format!(
                    "faults.{i}: `forger` applies to forged-refusal only"
                ));
            }
            if let Some(fr) = f.targets.fraction
                && !(0.0..=1.0).contains(&fr)
            {
                return Err(format!(
                    "faults.{i}.targets.fraction = {fr}: must be between 0 and 1"
                ));
            }
        }
        self.node_config().map(|_| ())
    }

    /// The node configuration: the preset with the `[config]` table applied.
    pub fn node_config(&self) -> Result<Config, String> {
        let mut cfg = match self.preset.as_str() {
            "lan" => Config::lan(),
            "wan" => Config::wan(),
            "local" => Config::local(),
            other => return Err(format!("preset = {other:?}: must be lan, wan or local")),
        };
        for (k, v) in &self.config {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            cfg.set(k, &text).map_err(|e| format!("config.{k}: {e}"))?;
        }
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }
}

/// Applies one `--set path=value`. A bare config field name (`acceptable_pause`) or
/// `config.FIELD` sets a node config field; other paths set scenario fields.
pub fn apply_set(root: &mut toml::Table, path: &str, value: &str) -> Result<(), String> {
    let field = path.strip_prefix("config.").unwrap_or(path);
    if Config::FIELDS.contains(&field) {
        let cfg = root
            .entry("config")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or("config must be a table")?;
        cfg.insert(field.to_string(), toml::Value::String(value.to_string()));
        return Ok(());
    }
    let known = SCENARIO_PATHS.contains(&path) || is_indexed_path(path);
    if !known {
        return Err(format!(
            "unknown --set path {path:?}; valid paths: {}, faults.N.FIELD, partitions.N.FIELD, and config fields: {}",
            SCENARIO_PATHS.join(", "),
            Config::FIELDS.join(", ")
        ));
    }
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = root;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if last {
            cur.insert(part.to_string(), typed(value));
            return Ok(());
        }
        let next = parts[i + 1];
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            toml::Value::Array(a) => {
                let idx: usize = next
                    .parse()
                    .map_err(|_| format!("{path}: {part} is a list, expected an index"))?;
                let len = a.len();
                let item = a
                    .get_mut(idx)
                    .ok_or_else(|| format!("{path}: {part} has {len} entries"))?;
                if i + 2 == parts.len() {
                    return Err(format!("{path}: cannot replace a whole list entry"));
                }
                // Skip the index component.
                let rest = parts[i + 2..].join(".");
                let t = item
                    .as_table_mut()
                    .ok_or_else(|| format!("{path}: not a table"))?;
                return set_plain(t, &rest, value);
            }
            _ => return Err(format!("{path}: {part} is not a table")),
        };
    }
    Ok(())
}

fn set_plain(t: &mut toml::Table, path: &str, value: &str) -> Result<(), String> {
    let mut cur = t;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(part.to_string(), typed(value));
            return Ok(());
        }
        cur = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{path}: {part} is not a table"))?;
    }
    Ok(())
}

fn is_indexed_path(path: &str) -> bool {
    let mut parts = path.split('.');
    matches!(parts.next(), Some("faults" | "partitions"))
        && parts.next().is_some_and(|i| i.parse::<usize>().is_ok())
        && parts.next().is_some()
}

/// Integers, floats and booleans keep their type; everything else is a string
/// (durations are strings such as `3s`).
fn typed(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = v.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(v.to_string())
    }
}

/// Parses `path=value`.
pub fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("--set {s:?}: expected path=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
name = "t"
nodes = 10
duration = "1m"
"#;

    #[test]
    fn sets_config_and_scenario_fields() {
        let sets = vec![
            ("acceptable_pause".to_string(), "5s".to_string()),
            ("network.loss".to_string(), "0.05".to_string()),
            ("nodes".to_string(), "20".to_string()),
        ];
        let sc = Scenario::parse(MIN, &sets).unwrap();
        assert_eq!(sc.nodes, 20);
        assert_eq!(sc.network.loss, 0.05);
        assert_eq!(
            sc.node_config().unwrap().acceptable_pause,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn unknown_path_lists_valid_ones() {
        let e = Scenario::parse(MIN, &[("network.los".into(), "1".into())]).unwrap_err();
        assert!(
            e.contains("network.loss") && e.contains("acceptable_pause"),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = Scenario::parse(&format!("{MIN}\nnodez = 3\n"), &[]).unwrap_err();
        assert!(e.contains("nodez"), "{e}");
        let e = Scenario::parse(&format!("{MIN}\n[config]\nprobe_intervall = \"1s\"\n"), &[])
            .unwrap_err();
        assert!(e.contains("probe_intervall"), "{e}");
    }

    #[test]
    fn indexed_fault_paths() {
        let text = format!("{MIN}\n[[faults]]\nkind = \"crash\"\nat = \"30s\"\n");
        let sc = Scenario::parse(&text, &[("faults.0.at".into(), "40s".into())]).unwrap();
        assert_eq!(sc.faults[0].at, Some(Dur(Duration::from_secs(40))));
        assert!(Scenario::parse(&text, &[("faults.3.at".into(), "40s".into())]).is_err());
    }
}
