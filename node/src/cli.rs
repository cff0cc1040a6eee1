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

    /// Protocol preset the --config file and the --set flags then adjust [default:
    /// the file's `preset`, else lan].
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,

    /// A TOML config file, as `rumor-sim tune` prints it: an optional top-level
    /// `preset = "lan"`, then a `[config]` table of rumor::Config fields
    /// (`acceptable_pause = "3s"`, `phi_convict = 12.0`). --set flags apply after it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Print the config the flags and --config give, validated, and exit.
    #[arg(long)]
    pub check_config: bool,

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

/// A `--config` file: the preset and the `[config]` fields as text, each set through
/// `Config::set` (the config's own text form, as `--set` uses it), in file order.
#[derive(Debug, PartialEq)]
pub struct ConfigFile {
    /// Top-level `preset`.
    pub preset: Option<Preset>,
    /// `[config]` fields.
    pub fields: Vec<(String, String)>,
}

impl ConfigFile {
    /// Parses the TOML; an unknown top-level key or a value that is a table or array
    /// is refused with its name (a field's own value is checked by `Config::set`).
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut out = ConfigFile {
            preset: None,
            fields: Vec::new(),
        };
        for (k, v) in &doc {
            match (k.as_str(), v) {
                ("preset", toml::Value::String(p)) => {
                    out.preset = Some(
                        <Preset as ValueEnum>::from_str(p, true)
                            .map_err(|_| format!("preset = {p:?}: expected lan, wan or local"))?,
                    );
                }
                ("config", toml::Value::Table(t)) => {
                    for (field, value) in t {
                        let text = match value {
                            toml::Value::String(s) => s.clone(),
                            toml::Value::Integer(i) => i.to_string(),
                            toml::Value::Float(f) => f.to_string(),
                            toml::Value::Boolean(b) => b.to_string(),
                            _ => {
                                return Err(format!(
                                    "[config] {field}: expected a string, number or boolean"
                                ));
                            }
                        };
                        out.fields.push((field.clone(), text));
                    }
                }
                (other, _) => {
                    return Err(format!(
                        "{other}: unknown; expected `preset = \"...\"` and a [config] table"
                    ));
                }
            }
        }
        Ok(out)
    }
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

fn parse_set(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected field=value"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

impl Args {
    /// The preset, then the --config file, then every `--set`, validated.
    pub fn config(&self) -> Result<Config, String> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--config {}: {e}", path.display()))?;
                Some(
                    ConfigFile::parse(&text)
                        .map_err(|e| format!("--config {}: {e}", path.display()))?,
                )
            }
            None => None,
        };
        let preset = self
            .preset
            .or(file.as_ref().and_then(|f| f.preset))
            .unwrap_or(Preset::Lan);
        let mut cfg = match preset {
            Preset::Lan => Config::lan(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        };
        if let (Some(f), Some(path)) = (&file, &self.config) {
            for (k, v) in &f.fields {
                cfg.set(k, v)
                    .map_err(|e| format!("--config {}: [config] {k}: {e}", path.display()))?;
            }
        }
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
        let a = Args::try_parse_from(["rumor-node", "--config", path.to_str().unwrap()]).unwrap();
        let cfg = a.config().expect("loads");
        assert_eq!(cfg.acceptable_pause, Duration::from_millis(1400));
        assert_eq!(cfg.probe_interval, Duration::from_millis(500));
        assert_eq!(cfg.phi_convict, 12.0);
        // --set after the file; --preset over the file's.
        let a = Args::try_parse_from([
            "rumor-node",
            "--config",
            path.to_str().unwrap(),
            "--set=acceptable_pause=2s",
        ])
        .unwrap();
        assert_eq!(a.config().unwrap().acceptable_pause, Duration::from_secs(2));
        // A wrong field is named with the file.
        std::fs::write(&path, "[config]\nacceptable_pawse = \"1s\"\n").unwrap();
        let a = Args::try_parse_from(["rumor-node", "--config", path.to_str().unwrap()]).unwrap();
        let e = a.config().unwrap_err();
        assert!(
            e.contains("acceptable_pawse") && e.contains("tuned.toml"),
            "{e}"
        );
        std::fs::write(&path, "[confg]\n").unwrap();
        let a = Args::try_parse_from(["rumor-node", "--config", path.to_str().unwrap()]).unwrap();
        assert!(a.config().unwrap_err().contains("confg"));
        std::fs::remove_dir_all(&dir).ok();
    }

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
