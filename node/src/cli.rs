//! The command line: every flag, its default and what it is for (`rumor-node --help`).

use std::net::SocketAddr;
use std::time::Duration;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use rumor::duration::{fmt_dur, parse_duration};
use rumor::{Config, Seed};

use crate::config_file::{ConfigFile, ENV_SET_PREFIX, env_sets};

/// A rumor member as a process: prints each membership event as one JSON line on
/// stdout (logs and errors go to stderr), serves /livez, /readyz, /startupz and
/// /metrics with --http, and leaves gracefully on SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(
    name = "rumor-node",
    version,
    about,
    long_about = None,
    after_help = "`rumor-node doctor --help`: check a Kubernetes manifest against what this node would run with."
)]
pub struct Args {
    /// UDP address to bind (0.0.0.0:7946 in a container; then set --advertise).
    #[arg(
        long,
        default_value = "127.0.0.1:7946",
        value_name = "ADDR",
        env = "RUMOR_BIND"
    )]
    pub bind: SocketAddr,

    /// Address peers send to (default: the bound address; required when binding
    /// 0.0.0.0). On Kubernetes: the pod IP, `--advertise=$(POD_IP):7946`.
    #[arg(long, value_name = "ADDR", env = "RUMOR_ADVERTISE")]
    pub advertise: Option<SocketAddr>,

    /// Members to join through: IP:PORT or HOST:PORT, comma-separated or repeated. A
    /// name (a headless Service) is resolved again while this node is alone and every
    /// --seed-refresh after, so a DNS miss at start delays the join instead of
    /// splitting the cluster.
    #[arg(long, value_delimiter = ',', value_name = "SEEDS", value_parser = parse_seed, env = "RUMOR_SEEDS")]
    pub seeds: Vec<Seed>,

    /// Whether this node may form a new cluster alone when its seeds resolve to
    /// nothing but itself: `no`, `yes`, or `ordinal-0` (yes when the name ends in
    /// `-0`, a StatefulSet's first pod).
    #[arg(
        long,
        value_enum,
        default_value = "no",
        value_name = "WHEN",
        env = "RUMOR_BOOTSTRAP"
    )]
    pub bootstrap: Bootstrap,

    /// How often seed names are resolved again once this node has peers, to merge
    /// with any seed address that no live member holds.
    #[arg(long, default_value = "60s", value_parser = duration, value_name = "DURATION", env = "RUMOR_SEED_REFRESH")]
    pub seed_refresh: Duration,

    /// How soon seed names are resolved again while this node has no peer (doubling
    /// up to 8 times this while it stays alone).
    #[arg(long, default_value = "2s", value_parser = duration, value_name = "DURATION", env = "RUMOR_SEED_RETRY")]
    pub seed_retry: Duration,

    /// Member name, unique in the cluster: two processes with one name are one member
    /// to their peers, and drop each other's datagrams as their own (default:
    /// $HOSTNAME, the pod name on Kubernetes, else node-PORT, else node-PID for port
    /// 0; give --name to run several on one host). Keep it stable across restarts (a
    /// StatefulSet pod name): same member, new incarnation.
    #[arg(long, env = "RUMOR_NAME")]
    pub name: Option<String>,

    /// Protocol preset the --config file and the --set flags then adjust [default:
    /// the file's `preset`, else lan].
    #[arg(long, value_enum, env = "RUMOR_PRESET")]
    pub preset: Option<Preset>,

    /// A TOML config file, as `rumor-sim tune` prints it: an optional top-level
    /// `preset = "lan"`, a `[config]` table of rumor::Config fields
    /// (`acceptable_pause = "3s"`, `phi_convict = 12.0`) and a `[node]` table of this
    /// binary's flags by long name in snake_case (`drain = "10s"`, `seeds = [...]`).
    /// Precedence, last wins: defaults, this file, the environment (`RUMOR_<FLAG>`, and
    /// `RUMOR_SET_<FIELD>` for a config field), the command line.
    #[arg(long, value_name = "FILE", env = "RUMOR_CONFIG_FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Print the config the flags, the environment and --config give, validated, as a
    /// `[config]` table that --config loads as is, and exit.
    #[arg(long)]
    pub check_config: bool,

    /// Any field of rumor::Config, repeatable: `--set acceptable_pause=3s`.
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,

    /// This member's metadata, as text.
    #[arg(long, default_value = "", env = "RUMOR_METADATA")]
    pub metadata: String,

    /// Serve /livez, /readyz, /startupz (add ?verbose) and /metrics (Prometheus text)
    /// on this TCP address.
    #[arg(long, value_name = "ADDR", env = "RUMOR_HTTP")]
    pub http: Option<SocketAddr>,

    /// On SIGTERM or Ctrl-C: readiness false at once, then after this delay the node
    /// gossips Leave and exits. On Kubernetes: the readiness probe's periodSeconds ×
    /// failureThreshold, inside terminationGracePeriodSeconds.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION", env = "RUMOR_DRAIN")]
    pub drain: Duration,

    /// On exit, write the timer-lateness samples (this process's stalls) for
    /// `rumor-sim tune --pauses FILE`.
    #[arg(long, value_name = "FILE", env = "RUMOR_PAUSES")]
    pub pauses: Option<String>,

    /// Convict a member whose port the network reports closed (ICMP port
    /// unreachable, Linux) in refusal_window; `off` detects by silence alone.
    #[arg(long, value_enum, default_value = "on", env = "RUMOR_REFUSALS")]
    pub refusals: OnOff,

    /// The library's tracing lines on stderr at this level (`debug` shows each
    /// refusal read and each failed send).
    #[arg(long, value_name = "LEVEL", env = "RUMOR_LOG")]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
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

/// A `ValueEnum`'s name as the command line spells it.
trait ValueEnumName {
    fn value_name(&self) -> String;
}

impl<T: ValueEnum> ValueEnumName for T {
    fn value_name(&self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// Flags a `[node]` table cannot hold: the file itself, and what has a table of its own.
const NOT_IN_NODE_TABLE: &[&str] = &[
    "config",
    "check_config",
    "sets",
    "preset",
    "help",
    "version",
];

fn node_table_keys() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter(|a| a.get_long().is_some() && !NOT_IN_NODE_TABLE.contains(&a.get_id().as_str()))
        .map(|a| a.get_id().to_string())
        .collect()
}

fn invalid(msg: String) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{msg}\n"))
}

/// clap's message without its `error: ` prefix and usage lines.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_string()
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected field=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

impl Args {
    /// The flags of `argv` (its first item is the program name), over the environment
    /// (`RUMOR_<FLAG>`), over the `[node]` table of the `--config` file, over the
    /// defaults. A bad `[node]` entry is an error naming the file and the key.
    pub fn load_from<I, T>(argv: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let matches = Args::command().try_get_matches_from(&argv)?;
        let Some(path) = matches.get_one::<PathBuf>("config") else {
            return Args::from_arg_matches(&matches);
        };
        let file = ConfigFile::read(path).map_err(invalid)?;
        // The file's flags go first, so any flag given again on the command line is
        // simply not taken from the file; a flag the environment sets is skipped, so
        // the environment keeps its precedence over the file.
        let mut merged: Vec<OsString> = argv.iter().take(1).cloned().collect();
        let cmd = Args::command();
        for (key, values) in &file.node {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == key.as_str() && !NOT_IN_NODE_TABLE.contains(&key.as_str()))
                .and_then(|a| a.get_long().map(|l| format!("--{l}")))
                .ok_or_else(|| {
                    invalid(format!(
                        "--config {}: [node] {key}: unknown; expected one of: {}",
                        path.display(),
                        node_table_keys().join(", ")
                    ))
                })?;
            if matches!(
                matches.value_source(key),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            for v in values {
                // Checked alone first, so that an error names the file's key rather
                // than a flag the user never typed.
                let pair = [OsString::from("rumor-node"), arg.clone().into(), v.into()];
                if let Err(e) = Args::command().try_get_matches_from(pair) {
                    return Err(invalid(format!(
                        "--config {}: [node] {key} = {v:?}: {}",
                        path.display(),
                        clap_reason(&e)
                    )));
                }
                merged.push(arg.clone().into());
                merged.push(v.into());
            }
        }
        merged.extend(argv.into_iter().skip(1));
        Args::try_parse_from(merged)
    }

    /// The preset (`--preset`, else the file's, else lan), then the `--config` file's
    /// `[config]`, then `RUMOR_SET_<FIELD>` variables, then every `--set`, validated.
    pub fn config(&self) -> Result<Config, String> {
        self.config_with_env(std::env::vars_os())
    }

    /// [`Args::config`] with the environment given, for tests.
    pub fn config_with_env(
        &self,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Config, String> {
        let file = match &self.config {
            Some(path) => Some(ConfigFile::read(path)?),
            None => None,
        };
        let mut cfg = match self.preset {
            Some(Preset::Lan) => Config::lan(),
            Some(Preset::Wan) => Config::wan(),
            Some(Preset::Local) => Config::local(),
            None => file
                .as_ref()
                .and_then(|f| f.preset.as_deref())
                .and_then(Config::preset)
                .unwrap_or_else(Config::lan),
        };
        if let (Some(f), Some(path)) = (&file, &self.config) {
            cfg = f
                .apply(cfg)
                .map_err(|e| format!("--config {}: {e}", path.display()))?;
        }
        for (k, v) in env_sets(env)? {
            cfg.set(&k, &v)
                .map_err(|e| format!("{ENV_SET_PREFIX}{}={v}: {e}", k.to_ascii_uppercase()))?;
        }
        for (k, v) in &self.sets {
            cfg.set(k, v).map_err(|e| format!("--set {k}={v}: {e}"))?;
        }
        cfg.validate().map_err(|e| format!("invalid config: {e}"))?;
        Ok(cfg)
    }

    /// The effective flags as a `[node]` table that `--config` reads back, for
    /// `--check-config`: what this node would run with, whichever source set it. The
    /// member name only when given (flag, environment or file), never the default
    /// taken from the machine that runs this.
    pub fn node_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        let mut put = |k: &str, v: toml::Value| {
            t.insert(k.to_string(), v);
        };
        let text = |s: String| toml::Value::String(s);
        let value_name = |v: &dyn ValueEnumName| text(v.value_name());
        put("bind", text(self.bind.to_string()));
        if let Some(a) = self.advertise {
            put("advertise", text(a.to_string()));
        }
        put(
            "seeds",
            toml::Value::Array(self.seeds.iter().map(|s| text(s.to_string())).collect()),
        );
        put("bootstrap", value_name(&self.bootstrap));
        put("seed_refresh", text(fmt_dur(self.seed_refresh)));
        put("seed_retry", text(fmt_dur(self.seed_retry)));
        // Only a name that was given: the default is this machine's ($HOSTNAME or
        // node-PORT), and a printed one shipped as a ConfigMap names every pod alike.
        if let Some(n) = &self.name {
            put("name", text(n.clone()));
        }
        put("metadata", text(self.metadata.clone()));
        if let Some(h) = self.http {
            put("http", text(h.to_string()));
        }
        put("drain", text(fmt_dur(self.drain)));
        if let Some(p) = &self.pauses {
            put("pauses", text(p.clone()));
        }
        put("refusals", value_name(&self.refusals));
        if let Some(l) = self.log {
            put("log", text(l.to_string()));
        }
        t
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

    /// `argv` parsed as the binary would, but blind to this process's `RUMOR_<FLAG>`
    /// variables (a developer's shell may set some).
    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        let m = Args::command()
            .mut_args(|a| a.env(None::<&str>))
            .try_get_matches_from(argv)?;
        Args::from_arg_matches(&m)
    }

    /// [`Args::config`] with an empty environment: `RUMOR_SET_*` in the shell that
    /// runs the tests changes nothing.
    fn config(a: &Args) -> Result<Config, String> {
        a.config_with_env(std::iter::empty())
    }

    #[test]
    fn the_tests_own_their_environment() {
        let a = parse(&["rumor-node"]).unwrap();
        assert_eq!(a.drain, Duration::from_secs(5));
        assert!(a.seeds.is_empty() && a.name.is_none() && a.preset.is_none());
        assert_eq!(config(&a).unwrap(), Config::lan());
        // The environment given is the one read.
        let env = [(
            OsString::from("RUMOR_SET_ACCEPTABLE_PAUSE"),
            OsString::from("4s"),
        )];
        let cfg = a.config_with_env(env).unwrap();
        assert_eq!(cfg.acceptable_pause, Duration::from_secs(4));
    }

    /// What `rumor-sim tune` prints (sim/src/tune/render.rs, `toml_of`) loads.
    #[test]
    fn the_config_tune_prints_loads_and_validates() {
        let dir = std::env::temp_dir().join(format!("rumor-node-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tuned.toml");
        std::fs::write(
            &path,
            "preset = \"local\"\n[config]\nprobe_interval = \"500ms\"\nacceptable_pause = \"1.4s\"\nphi_convict = 12.0\n",
        )
        .unwrap();
        let a = parse(&["rumor-node", "--config", path.to_str().unwrap()]).unwrap();
        let cfg = config(&a).expect("loads");
        assert_eq!(cfg.acceptable_pause, Duration::from_millis(1400));
        assert_eq!(cfg.probe_interval, Duration::from_millis(500));
        assert_eq!(cfg.phi_convict, 12.0);
        // --set after the file; --preset over the file's.
        let a = parse(&[
            "rumor-node",
            "--config",
            path.to_str().unwrap(),
            "--set=acceptable_pause=2s",
        ])
        .unwrap();
        assert_eq!(config(&a).unwrap().acceptable_pause, Duration::from_secs(2));
        // A wrong field is named with the file.
        std::fs::write(&path, "[config]\nacceptable_pawse = \"1s\"\n").unwrap();
        let a = parse(&["rumor-node", "--config", path.to_str().unwrap()]).unwrap();
        let e = config(&a).unwrap_err();
        assert!(
            e.contains("acceptable_pawse") && e.contains("tuned.toml"),
            "{e}"
        );
        std::fs::write(&path, "[confg]\n").unwrap();
        let a = parse(&["rumor-node", "--config", path.to_str().unwrap()]).unwrap();
        assert!(config(&a).unwrap_err().contains("confg"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_parse_and_bad_ones_name_themselves() {
        let a = parse(&[
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
        assert!(config(&a).is_ok());
        let e = parse(&["rumor-node", "--seeds=rumor"]).expect_err("no port");
        assert!(e.to_string().contains("--seeds"), "{e}");
        let a = parse(&["rumor-node", "--set=acceptable_pause=soon"]).expect("parses");
        let e = config(&a).expect_err("bad value");
        assert!(e.contains("acceptable_pause"), "{e}");
    }
}
