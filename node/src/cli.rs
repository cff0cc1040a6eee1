//! The command line: every flag, its default and what it is for (`rumor-node --help`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use rumor::duration::parse_duration;
use rumor::{Config, Seed};

/// A rumor member as a process: prints each membership event as one JSON line on
/// stdout (logs and errors go to stderr), serves /livez, /readyz, /startupz and
/// /metrics with --http, and leaves gracefully on SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "rumor-node", version, about, long_about = None)]
pub struct Args {
    /// UDP address to bind (0.0.0.0:7946 in a container; then set --advertise).
    #[arg(long, default_value = "127.0.0.1:7946", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Address peers send to (default: the bound address; required when binding
    /// 0.0.0.0). On Kubernetes: the pod IP, `--advertise=$(POD_IP):7946`.
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<SocketAddr>,

    /// Members to join through: IP:PORT or HOST:PORT, comma-separated or repeated. A
    /// name (a headless Service) is resolved again while this node is alone and every
    /// --seed-refresh after, so a DNS miss at start delays the join instead of
    /// splitting the cluster.
    #[arg(long, value_delimiter = ',', value_name = "SEEDS", value_parser = parse_seed)]
    pub seeds: Vec<Seed>,

    /// Whether this node may form a new cluster alone when its seeds resolve to
    /// nothing but itself: `no`, `yes`, or `ordinal-0` (yes when the name ends in
    /// `-0`, a StatefulSet's first pod).
    #[arg(long, value_enum, default_value = "no", value_name = "WHEN")]
    pub bootstrap: Bootstrap,

    /// How often seed names are resolved again once this node has peers, to merge
    /// with any seed address that no live member holds.
    #[arg(long, default_value = "60s", value_parser = duration, value_name = "DURATION")]
    pub seed_refresh: Duration,

    /// How soon seed names are resolved again while this node has no peer (doubling
    /// up to 8 times this while it stays alone).
    #[arg(long, default_value = "2s", value_parser = duration, value_name = "DURATION")]
    pub seed_retry: Duration,

    /// Member name, unique in the cluster: two processes with one name are one member
    /// to their peers, and drop each other's datagrams as their own (default:
    /// $HOSTNAME, the pod name on Kubernetes, else node-PORT, else node-PID for port
    /// 0; give --name to run several on one host). Keep it stable across restarts (a
    /// StatefulSet pod name): same member, new incarnation.
    #[arg(long)]
    pub name: Option<String>,

    /// Protocol preset the --set flags then adjust.
    #[arg(long, value_enum, default_value = "lan")]
    pub preset: Preset,

    /// Any field of rumor::Config, repeatable: `--set acceptable_pause=3s`.
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,

    /// This member's metadata, as text.
    #[arg(long, default_value = "")]
    pub metadata: String,

    /// Serve /livez, /readyz, /startupz (add ?verbose) and /metrics (Prometheus text)
    /// on this TCP address.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// On SIGTERM or Ctrl-C: readiness false at once, then after this delay the node
    /// gossips Leave and exits. On Kubernetes: the readiness probe's periodSeconds ×
    /// failureThreshold, inside terminationGracePeriodSeconds.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION")]
    pub drain: Duration,

    /// On exit, write the timer-lateness samples (this process's stalls) for
    /// `rumor-sim tune --pauses FILE`.
    #[arg(long, value_name = "FILE")]
    pub pauses: Option<String>,

    /// Convict a member whose port the network reports closed (ICMP port
    /// unreachable, Linux) in refusal_window; `off` detects by silence alone.
    #[arg(long, value_enum, default_value = "on")]
    pub refusals: OnOff,

    /// The library's tracing lines on stderr at this level (`debug` shows each
    /// refusal read and each failed send).
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<tracing::Level>,
}

/// `--bootstrap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Bootstrap {
    /// Never form a cluster alone when seeds were given.
    No,
    /// Always may.
    Yes,
    /// When the member name ends in `-0`.
    #[value(name = "ordinal-0")]
    Ordinal0,
}

impl Bootstrap {
    /// Whether the member called `name` may form a cluster alone.
    pub fn applies_to(self, name: &str) -> bool {
        match self {
            Bootstrap::No => false,
            Bootstrap::Yes => true,
            Bootstrap::Ordinal0 => name.ends_with("-0"),
        }
    }
}

/// `--preset`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// `Config::lan()`.
    Lan,
    /// `Config::wan()`.
    Wan,
    /// `Config::local()`.
    Local,
}

/// `--refusals`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?}: expected a duration like 500ms, 5s or 1m"))
}

fn parse_seed(s: &str) -> Result<Seed, String> {
    s.parse::<Seed>().map_err(|e| format!("{s:?}: {e}"))
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected field=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

impl Args {
    /// The preset with every `--set` applied, validated.
    pub fn config(&self) -> Result<Config, String> {
        let mut cfg = match self.preset {
            Preset::Lan => Config::lan(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        };
        for (k, v) in &self.sets {
            cfg.set(k, v).map_err(|e| format!("--set {k}={v}: {e}"))?;
        }
        cfg.validate().map_err(|e| format!("invalid config: {e}"))?;
        Ok(cfg)
    }

    /// `--name`, else `$HOSTNAME`, else `node-PORT`.
    pub fn member_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME").unwrap_or_else(|_| match self.bind.port() {
                0 => format!("node-{}", std::process::id()),
                port => format!("node-{port}"),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_parse_and_bad_ones_name_themselves() {
        let a = Args::try_parse_from([
            "rumor-node",
            "--seeds=rumor.ns.svc.cluster.local:7946,10.0.0.2:7946",
            "--bootstrap=ordinal-0",
            "--set",
            "acceptable_pause=3s",
            "--drain=10s",
        ])
        .expect("parses");
        assert_eq!(a.seeds.len(), 2);
        assert!(a.bootstrap.applies_to("rumor-0"));
        assert!(!a.bootstrap.applies_to("rumor-10"));
        assert_eq!(a.drain, Duration::from_secs(10));
        assert!(a.config().is_ok());
        let e = Args::try_parse_from(["rumor-node", "--seeds=rumor"]).expect_err("no port");
        assert!(e.to_string().contains("--seeds"), "{e}");
        let a =
            Args::try_parse_from(["rumor-node", "--set=acceptable_pause=soon"]).expect("parses");
        let e = a.config().expect_err("bad value");
        assert!(e.contains("acceptable_pause"), "{e}");
    }
}
