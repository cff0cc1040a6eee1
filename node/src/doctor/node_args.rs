//! What the node would run with: the container's flags and environment through the
//! node's own parser and config loader (`crate::cli::Args`), so the doctor reads
//! exactly what `rumor-node` would. This file is the doctor's only use of `cli`: when
//! its API moves, only [`node_settings`] and [`own_environment`] change.
//!
//! The node takes its settings from defaults, the `--config` file's `[node]` table, the
//! environment (`RUMOR_<FLAG>`, `RUMOR_SET_<FIELD>`) and the command line, in that order
//! of precedence. The environment here is the container's, from the manifest: a
//! `RUMOR_<FLAG>` with a literal value becomes that flag (unless the command line
//! gives it, which wins), `RUMOR_SET_<FIELD>` goes to the config loader; one set from
//! `valueFrom` (a ConfigMap, a Secret) cannot be known and is reported.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::Args;

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
    for (name, value) in env {
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

/// Expands `$(VAR)` as the kubelet does in `args` and `command`: a variable the
/// container's `env` defines with a literal `value` becomes that value; one it defines
/// from elsewhere (`valueFrom`: the pod IP, its name) becomes a stand-in of the right
/// shape (an address for names with `IP`, `fd00::1` inside brackets, else the name in
/// lower case); an undefined one stays as written, as the kubelet leaves it, so the
/// node's parser sees what the node would. `$$` is a literal `$`.
pub fn expand(arg: &str, env: &[(String, Option<String>)]) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    // Each pass consumes at least one character: bounded by the length.
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        }
        let name = tail
            .strip_prefix("$(")
            .and_then(|t| t.split_once(')'))
            .map(|(n, _)| n)
            .filter(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            });
        match name.and_then(|n| env.iter().find(|(k, _)| k == n).map(|(_, v)| (n, v))) {
            Some((n, value)) => {
                let v = match value {
                    Some(v) => v.clone(),
                    None if out.ends_with('[') => "fd00::1".to_string(),
                    None if n.to_ascii_uppercase().contains("IP") => "10.0.0.1".to_string(),
                    None => n.to_ascii_lowercase().replace('_', "-"),
                };
                out.push_str(&v);
                rest = &tail[n.len() + 3..];
            }
            None => {
                out.push('$');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, Option<String>)> {
        vec![
            ("POD_IP".into(), None),
            ("POD_NAMESPACE".into(), None),
            ("PORT".into(), Some("7946".into())),
        ]
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
