//! What the node would run with: the container's flags and environment through the
//! node's own parser and config loader (`crate::cli::Args`), so the doctor reads
//! exactly what `rumor-node` would. This file is the doctor's only use of `cli`: when
//! its API moves, only [`node_settings`] and [`own_environment`] change.
//!
//! The node takes its settings from defaults, the `--config` file's `[node]` table, the
//! environment (`RUMOR_<FLAG>`, `RUMOR_SET_<FIELD>`) and the command line, in that order
//! of precedence. The environment here is the container's, from the manifest, built
//! as the kubelet builds it ([`ContainerEnv`]: `$(VAR)` expanded from earlier entries,
//! the last of a repeated name winning): a `RUMOR_<FLAG>` becomes that flag (unless
//! the command line gives it, which wins), `RUMOR_SET_<FIELD>` goes to the config
//! loader. A downward-API field (the pod IP, its name) has a stand-in of its shape;
//! one set from elsewhere (a ConfigMap, a Secret) cannot be known and is reported.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::Args;

use super::manifest::{EnvSource, EnvVar};

/// The settings of a `rumor-node` the rules need.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// The validated protocol config (preset, `--config`, environment, `--set`).
    pub config: rumor::Config,
    /// `--drain`.
    pub drain: Duration,
    /// `--http`.
    pub http: Option<SocketAddr>,
    /// How many `--seeds` were given.
    pub seeds: usize,
    /// `--seed-retry`.
    pub seed_retry: Duration,
    /// The `--config` path the container names when the doctor was not given that
    /// file: the settings were then loaded without it.
    pub config_unread: Option<PathBuf>,
    /// `RUMOR_*` variables of the container set from `valueFrom`, whose values the
    /// manifest does not hold: the settings were loaded without them.
    pub env_unread: Vec<String>,
}

/// Why the flags give no settings.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeArgsError {
    /// The parser refuses them (the node would exit at start): its first line.
    Refused(String),
    /// They parse, but the config they give does not load or validate.
    Config(String),
}

/// The `RUMOR_<FLAG>` variables set in the doctor's own environment. The node's parser
/// reads them from the process it runs in, so they would leak into the container's
/// settings: the doctor refuses to run with any set.
pub fn own_environment() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .filter(|name| std::env::var_os(name).is_some())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
}

/// The long name of a `--flag` or `--flag=value` token.
fn long_of(token: &str) -> Option<&str> {
    token
        .strip_prefix("--")
        .map(|t| t.split('=').next().unwrap_or(t))
}

/// Parses `flags` (the container's args, `$(VAR)` already expanded) with the
/// container's `env` as `rumor-node` would. `config_file` is the file to use for
/// `--config`: the path in the manifest is inside the container, so the doctor is
/// given the same file locally.
pub fn node_settings(
    flags: &[String],
    env: &[(String, Option<String>)],
    config_file: Option<&Path>,
) -> Result<NodeSettings, NodeArgsError> {
    let cmd = Args::command();
    let on_command_line: Vec<&str> = flags.iter().filter_map(|f| long_of(f)).collect();
    // The container's RUMOR_<FLAG> as flags, before the command line's.
    let mut argv: Vec<String> = vec!["rumor-node".to_string()];
    let mut env_unread = Vec::new();
    // One value a name, the last (a name listed twice is legal; the last wins).
    let env: Vec<&(String, Option<String>)> = env
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| !env[i + 1..].iter().any(|(later, _)| later == k))
        .map(|(_, e)| e)
        .collect();
    for (name, value) in env.iter().copied() {
        let Some(long) = cmd
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == name.as_str()))
            .and_then(|a| a.get_long())
        else {
            continue;
        };
        if on_command_line.contains(&long) {
            continue;
        }
        match value {
            Some(v) => argv.push(format!("--{long}={v}")),
            None => env_unread.push(name.clone()),
        }
    }
    argv.extend(flags.iter().cloned());
    // `--config`: the doctor's copy of the file, or none at all.
    let mut config_unread = None;
    let mut out = Vec::with_capacity(argv.len() + 1);
    let mut tokens = argv.into_iter();
    while let Some(t) = tokens.next() {
        let path = if t == "--config" {
            tokens.next()
        } else if let Some(p) = t.strip_prefix("--config=") {
            Some(p.to_string())
        } else {
            out.push(t);
            continue;
        };
        if config_file.is_none() {
            config_unread = path.map(PathBuf::from);
        }
    }
    if let Some(p) = config_file {
        out.push(format!("--config={}", p.display()));
    }
    let args = Args::load_from(out).map_err(|e| {
        // clap's first line is the error; the rest is usage and a hint about --help.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        NodeArgsError::Refused(first.trim_start_matches("error: ").to_string())
    })?;
    let literal_env = env
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (OsString::from(k), OsString::from(v))));
    let config = args
        .config_with_env(literal_env)
        .map_err(NodeArgsError::Config)?;
    env_unread.extend(
        env.iter()
            .filter(|(k, v)| v.is_none() && k.starts_with("RUMOR_SET_"))
            .map(|(k, _)| k.clone()),
    );
    Ok(NodeSettings {
        config,
        drain: args.drain,
        http: args.http,
        seeds: args.seeds.len(),
        seed_retry: args.seed_retry,
        config_unread,
        env_unread,
    })
}

/// A container's environment as the kubelet builds it from `env`, entry by entry: a
/// `value` has its `$(VAR)` expanded from the entries before it (see [`expand_with`]);
/// a name listed again replaces the earlier value (the last wins).
#[derive(Clone, Debug, Default)]
pub struct ContainerEnv {
    /// One per name, in the order the names first appear.
    vars: Vec<Var>,
}

#[derive(Clone, Debug)]
struct Var {
    name: String,
    line: usize,
    value: VarValue,
}

#[derive(Clone, Debug)]
enum VarValue {
    /// Known text, with the variables from elsewhere it holds a stand-in for.
    Text { text: String, guessed: Vec<String> },
    /// The downward API's field (`status.podIP`, `metadata.name`).
    Field(String),
    /// A ConfigMap, a Secret, a resource: unknown.
    Elsewhere(&'static str),
}

/// A variable the doctor could not know and replaced by a stand-in of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guess {
    /// The variable.
    pub name: String,
    /// The line of its `env` entry.
    pub line: usize,
    /// Where its value comes from (`a ConfigMap`).
    pub from: &'static str,
}

/// A downward-API field whose value is an address.
fn is_ip_field(path: &str) -> bool {
    matches!(
        path,
        "status.podIP" | "status.podIPs" | "status.hostIP" | "status.hostIPs"
    )
}

/// A stand-in of the right shape for a value the manifest does not hold: an address
/// (`fd00::1` inside brackets) when it is one, else the variable's name in lower case
/// (a valid DNS label for the usual names: `POD_NAMESPACE` is `pod-namespace`).
fn stand_in(name: &str, ip: bool, in_brackets: bool) -> String {
    match (ip, in_brackets) {
        (true, true) => "fd00::1".to_string(),
        (true, false) => "10.0.0.1".to_string(),
        _ => name.to_ascii_lowercase().replace('_', "-"),
    }
}

impl ContainerEnv {
    /// Builds the environment of `env` in order, as the kubelet does.
    pub fn new(env: &[EnvVar]) -> ContainerEnv {
        let mut out = ContainerEnv::default();
        for e in env {
            let value = match &e.source {
                EnvSource::Value(v) => {
                    let (text, guessed) = out.expand(v);
                    VarValue::Text {
                        text,
                        guessed: guessed.into_iter().map(|g| g.name).collect(),
                    }
                }
                EnvSource::Field(path) => VarValue::Field(path.clone()),
                EnvSource::Elsewhere(from) => VarValue::Elsewhere(from),
            };
            let var = Var {
                name: e.name.clone(),
                line: e.line,
                value,
            };
            match out.vars.iter_mut().find(|v| v.name == e.name) {
                Some(old) => *old = var,
                None => out.vars.push(var),
            }
        }
        out
    }

    /// Expands `$(VAR)` in `text` from this environment (see [`expand_with`]): a
    /// known value as it is; a downward-API field or a value from elsewhere as a
    /// stand-in of the right shape (`10.0.0.1` for the pod IP, `fd00::1` inside
    /// brackets, else the name in lower case); an undefined one stays as written.
    /// Also returns the variables from elsewhere that a stand-in replaced (with
    /// those the values used hold), which the rules then only guess at.
    pub fn expand(&self, text: &str) -> (String, Vec<Guess>) {
        let mut guessed: Vec<Guess> = Vec::new();
        let mut guess = |name: &str| {
            if let Some(v) = self.vars.iter().find(|v| v.name == name)
                && let VarValue::Elsewhere(from) = v.value
                && !guessed.iter().any(|g| g.name == name)
            {
                guessed.push(Guess {
                    name: name.to_string(),
                    line: v.line,
                    from,
                });
            }
        };
        let out = expand_with(text, |name, in_brackets| {
            let v = self.vars.iter().find(|v| v.name == name)?;
            Some(match &v.value {
                VarValue::Text { text, guessed } => {
                    for g in guessed {
                        guess(g);
                    }
                    text.clone()
                }
                VarValue::Field(path) => stand_in(name, is_ip_field(path), in_brackets),
                VarValue::Elsewhere(_) => {
                    guess(name);
                    stand_in(name, name.to_ascii_uppercase().contains("IP"), in_brackets)
                }
            })
        });
        (out, guessed)
    }

    /// The line of the `env` entry that gives `name` its value (the last of a repeated
    /// name).
    pub fn line_of(&self, name: &str) -> Option<usize> {
        self.vars.iter().find(|v| v.name == name).map(|v| v.line)
    }

    /// The variables as the node's loader reads them, one per name: text as it is, a
    /// downward-API field as a stand-in, a value from elsewhere unknown (`None`).
    pub fn for_node(&self) -> Vec<(String, Option<String>)> {
        self.vars
            .iter()
            .map(|v| {
                let value = match &v.value {
                    VarValue::Text { text, .. } => Some(text.clone()),
                    VarValue::Field(path) => Some(stand_in(&v.name, is_ip_field(path), false)),
                    VarValue::Elsewhere(_) => None,
                };
                (v.name.clone(), value)
            })
            .collect()
    }

    /// The variables from elsewhere that the values of the `RUMOR_*` variables (the
    /// ones the node reads) hold stand-ins for.
    pub fn guessed_for_node(&self) -> Vec<Guess> {
        let mut out: Vec<Guess> = Vec::new();
        for v in self.vars.iter().filter(|v| v.name.starts_with("RUMOR_")) {
            let VarValue::Text { guessed, .. } = &v.value else {
                continue;
            };
            for name in guessed {
                let Some(g) = self.vars.iter().find(|g| &g.name == name) else {
                    continue;
                };
                if let VarValue::Elsewhere(from) = g.value
                    && !out.iter().any(|o| &o.name == name)
                {
                    out.push(Guess {
                        name: name.clone(),
                        line: g.line,
                        from,
                    });
                }
            }
        }
        out
    }
}

/// Expands `$(VAR)` in `input` by the kubelet's rules (its `expansion.Expand`): `$$`
/// is a literal `$`; `$(NAME)` is `lookup(NAME, in_brackets)` where it gives a value
/// and stays as written where it does not; the name runs to the first `)`, and a `$(`
/// without one stays as written; `$` before anything else stays, with that
/// character. `in_brackets` says whether the reference follows a `[` (an IPv6
/// address's place).
pub fn expand_with(input: &str, mut lookup: impl FnMut(&str, bool) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    // Each pass consumes at least the `$`: bounded by the length.
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.chars().next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after[1..].find(')') {
                Some(j) => {
                    let name = &after[1..1 + j];
                    match lookup(name, out.ends_with('[')) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[j + 2..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, source: EnvSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            line: 1,
            source,
        }
    }

    fn value(name: &str, v: &str) -> EnvVar {
        var(name, EnvSource::Value(v.into()))
    }

    fn field(name: &str, path: &str) -> EnvVar {
        var(name, EnvSource::Field(path.into()))
    }

    fn env() -> ContainerEnv {
        ContainerEnv::new(&[
            field("POD_IP", "status.podIP"),
            field("POD_NAMESPACE", "metadata.namespace"),
            value("PORT", "7946"),
        ])
    }

    fn expand(text: &str, env: &ContainerEnv) -> String {
        env.expand(text).0
    }

    #[test]
    fn expands_as_the_kubelet_does() {
        let e = env();
        assert_eq!(
            expand("--advertise=$(POD_IP):$(PORT)", &e),
            "--advertise=10.0.0.1:7946"
        );
        assert_eq!(
            expand("--advertise=[$(POD_IP)]:7946", &e),
            "--advertise=[fd00::1]:7946"
        );
        assert_eq!(
            expand("--seeds=r.$(POD_NAMESPACE).svc:7946", &e),
            "--seeds=r.pod-namespace.svc:7946"
        );
        assert_eq!(
            expand("$(MISSING) $$(PORT) $ $(", &e),
            "$(MISSING) $(PORT) $ $("
        );
        assert_eq!(expand("ünï$(PORT)çødé", &e), "ünï7946çødé");
        // The kubelet's corner cases: a name runs to the first `)`; `$$$` is `$$`;
        // `$x` stays; `$()` names nothing.
        assert_eq!(expand("$(a$(PORT))", &e), "$(a$(PORT))");
        assert_eq!(expand("$$$", &e), "$$");
        assert_eq!(expand("$x$é$", &e), "$x$é$");
        assert_eq!(expand("$()", &e), "$()");
    }

    #[test]
    fn env_values_expand_from_earlier_entries_and_the_last_one_wins() {
        let e = ContainerEnv::new(&[
            value("EARLY", "$(PORT)"),
            field("POD_IP", "status.podIP"),
            value("PORT", "7946"),
            value("RUMOR_ADVERTISE", "$(POD_IP):$(PORT)"),
            value("RUMOR_DRAIN", "1s"),
            value("ESCAPED", "$$(PORT)"),
            value("RUMOR_DRAIN", "$(PORT)ms"),
            var("SECRET", EnvSource::Elsewhere("a Secret")),
            var("RUMOR_SEED_RETRY", EnvSource::Elsewhere("a ConfigMap")),
        ]);
        let node = e.for_node();
        let get = |k: &str| node.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        // Defined later: left as written, as the kubelet leaves it.
        assert_eq!(get("EARLY"), Some(Some("$(PORT)".into())));
        assert_eq!(get("RUMOR_ADVERTISE"), Some(Some("10.0.0.1:7946".into())));
        assert_eq!(get("ESCAPED"), Some(Some("$(PORT)".into())));
        // Listed twice: one entry, the last value.
        assert_eq!(node.iter().filter(|(n, _)| n == "RUMOR_DRAIN").count(), 1);
        assert_eq!(get("RUMOR_DRAIN"), Some(Some("7946ms".into())));
        assert_eq!(get("RUMOR_SEED_RETRY"), Some(None));
        // A downward-API field: a stand-in of its shape, so RUMOR_NAME from
        // metadata.name is read, not reported.
        assert_eq!(get("POD_IP"), Some(Some("10.0.0.1".into())));
        // A value from elsewhere: a stand-in, named as a guess.
        let (text, guessed) = e.expand("--seeds=$(SECRET):1");
        assert_eq!(text, "--seeds=secret:1");
        assert_eq!(guessed[0].name, "SECRET");
        assert_eq!(guessed[0].from, "a Secret");
        let e = ContainerEnv::new(&[
            var("SVC", EnvSource::Elsewhere("a ConfigMap")),
            value("RUMOR_SEEDS", "$(SVC):7946"),
        ]);
        assert_eq!(e.for_node()[1].1.as_deref(), Some("svc:7946"));
        assert_eq!(e.guessed_for_node()[0].name, "SVC");
    }

    #[test]
    fn a_variable_listed_twice_is_one_flag() {
        let env = vec![
            ("RUMOR_DRAIN".to_string(), Some("1s".to_string())),
            ("RUMOR_SET_ACCEPTABLE_PAUSE".to_string(), None),
            ("RUMOR_DRAIN".to_string(), Some("12s".to_string())),
            (
                "RUMOR_SET_ACCEPTABLE_PAUSE".to_string(),
                Some("6s".to_string()),
            ),
        ];
        let s = node_settings(&[], &env, None).unwrap();
        assert_eq!(s.drain, Duration::from_secs(12));
        assert_eq!(s.config.acceptable_pause, Duration::from_secs(6));
        assert!(s.env_unread.is_empty(), "{:?}", s.env_unread);
    }

    #[test]
    fn the_nodes_parser_reads_the_flags() {
        let flags: Vec<String> = ["--drain=10s", "--http=0.0.0.0:8080", "--seeds=a:1,b:2"]
            .map(String::from)
            .to_vec();
        let s = node_settings(&flags, &[], None).unwrap();
        assert_eq!(s.drain, Duration::from_secs(10));
        assert_eq!(s.http.map(|a| a.port()), Some(8080));
        assert_eq!(s.seeds, 2);
        let e = node_settings(&["--drian=1s".to_string()], &[], None).unwrap_err();
        assert!(
            matches!(&e, NodeArgsError::Refused(m) if m.contains("--drian")),
            "{e:?}"
        );
        let e = node_settings(&["--set=acceptable_pause=soon".to_string()], &[], None).unwrap_err();
        assert!(
            matches!(&e, NodeArgsError::Config(m) if m.contains("acceptable_pause")),
            "{e:?}"
        );
        // A --config inside the container is not read unless the doctor has the file.
        for flags in [
            vec!["--config=/etc/r.toml"],
            vec!["--config", "/etc/r.toml"],
        ] {
            let flags: Vec<String> = flags.into_iter().map(String::from).collect();
            let s = node_settings(&flags, &[], None).unwrap();
            assert_eq!(s.config_unread, Some(PathBuf::from("/etc/r.toml")));
        }
    }

    #[test]
    fn the_containers_environment_counts_below_its_flags() {
        let env = vec![
            ("RUMOR_DRAIN".to_string(), Some("20s".to_string())),
            ("RUMOR_HTTP".to_string(), Some("0.0.0.0:9000".to_string())),
            (
                "RUMOR_SET_ACCEPTABLE_PAUSE".to_string(),
                Some("6s".to_string()),
            ),
            ("RUMOR_SEED_RETRY".to_string(), None),
            ("OTHER".to_string(), Some("x".to_string())),
        ];
        let s = node_settings(&["--http=0.0.0.0:8080".to_string()], &env, None).unwrap();
        assert_eq!(s.drain, Duration::from_secs(20), "from the environment");
        assert_eq!(s.http.map(|a| a.port()), Some(8080), "the flag wins");
        assert_eq!(s.config.acceptable_pause, Duration::from_secs(6));
        assert_eq!(s.env_unread, ["RUMOR_SEED_RETRY"]);
    }

    #[test]
    fn the_doctors_config_file_gives_its_node_table() {
        let dir = std::env::temp_dir().join(format!("rumor-doctor-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.toml");
        std::fs::write(
            &path,
            "preset = \"lan\"\n[config]\nacceptable_pause = \"7s\"\n[node]\ndrain = \"12s\"\n",
        )
        .unwrap();
        let flags = vec!["--config=/etc/rumor/node.toml".to_string()];
        let s = node_settings(&flags, &[], Some(&path)).unwrap();
        assert_eq!(s.drain, Duration::from_secs(12));
        assert_eq!(s.config.acceptable_pause, Duration::from_secs(7));
        assert_eq!(s.config_unread, None);
        std::fs::remove_dir_all(&dir).ok();
    }
}
