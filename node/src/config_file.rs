//! `--config FILE` and the environment: where settings come from besides the flags.
//!
//! ```toml
//! preset = "lan"              # optional: lan, wan or local (a --preset flag wins)
//!
//! [config]                    # rumor::Config fields, through its serde form
//! acceptable_pause = "1.4s"   # durations as "500ms", "1.5s", "1m 30s"
//! phi_convict = 12.0
//!
//! [node]                      # any flag of this binary, by its long name in snake_case
//! seeds = ["rumor-headless.default.svc.cluster.local:7946"]
//! drain = "10s"
//! ```
//!
//! Precedence, last wins: defaults, the file, the environment (`RUMOR_<FLAG>` for a
//! flag, `RUMOR_SET_<FIELD>` for a config field), the command line. Every error names
//! the file and the field, or the variable.

use std::ffi::OsString;
use std::path::Path;

use rumor::Config;
use serde::Deserialize;
use serde::de::DeserializeSeed;

/// Prefix of the environment variables that set one `rumor::Config` field each, as
/// `--set` does: `RUMOR_SET_ACCEPTABLE_PAUSE=3s`.
pub const ENV_SET_PREFIX: &str = "RUMOR_SET_";

/// A parsed `--config` file.
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// Top-level `preset`.
    pub preset: Option<String>,
    /// The `[config]` table, applied through `rumor::Config`'s serde form.
    config: Option<toml::Table>,
    /// The `[node]` table as (snake_case key, values), sorted by key; an array gives
    /// several values (a repeated flag).
    pub node: Vec<(String, Vec<String>)>,
}

/// The file's layout; anything else is refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    preset: Option<String>,
    config: Option<toml::Table>,
    node: Option<toml::Table>,
}

impl ConfigFile {
    /// Reads and parses `path`; errors start with `--config PATH:`.
    pub fn read(path: &Path) -> Result<ConfigFile, String> {
        let at = |e: String| format!("--config {}: {e}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
        ConfigFile::parse(&text).map_err(at)
    }

    /// Parses the TOML text. Field values of `[config]` are checked when applied
    /// ([`ConfigFile::apply`]), `[node]` values by the flag parser.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(p) = &doc.preset
            && Config::preset(p).is_none()
        {
            return Err(format!("preset = {p:?}: expected lan, wan or local"));
        }
        let mut node = Vec::new();
        for (key, value) in doc.node.unwrap_or_default() {
            let values = match value {
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| scalar_text(&v))
                    .collect::<Option<Vec<String>>>(),
                v => scalar_text(&v).map(|s| vec![s]),
            }
            .ok_or_else(|| {
                format!("[node] {key}: expected a string, number, boolean or an array of them")
            })?;
            node.push((key, values));
        }
        Ok(ConfigFile {
            preset: doc.preset,
            config: doc.config,
            node,
        })
    }

    /// `base` with the `[config]` fields applied (a `preset` inside the table
    /// replaces `base`), validated: the file must hold a valid config on its own.
    pub fn apply(&self, base: Config) -> Result<Config, String> {
        match &self.config {
            None => Ok(base),
            Some(table) => base
                .overlay()
                .deserialize(toml::Value::Table(table.clone()))
                .map_err(|e| format!("[config] {e}")),
        }
    }
}

fn scalar_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `RUMOR_SET_<FIELD>` variables of `vars` as (field, value), sorted by field so
/// the result does not depend on the environment's order. An unknown field or a value
/// that is not UTF-8 is an error naming the variable.
pub fn env_sets(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (k, v) in vars {
        let Some(key) = k.to_str() else { continue };
        let Some(field) = key.strip_prefix(ENV_SET_PREFIX) else {
            continue;
        };
        let field = field.to_ascii_lowercase();
        if !Config::FIELDS.contains(&field.as_str()) {
            return Err(format!(
                "{key}: unknown config field `{field}`; expected {ENV_SET_PREFIX} and one of: {}",
                Config::FIELDS.join(", ").to_uppercase()
            ));
        }
        let value = v
            .into_string()
            .map_err(|_| format!("{key}: the value is not UTF-8"))?;
        out.push((field, value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sections_and_values() {
        let f = ConfigFile::parse(
            "preset = \"wan\"\n[config]\nacceptable_pause = \"1m 30s\"\nphi_convict = 9\n\
             [node]\nseeds = [\"a:1\", \"b:2\"]\ndrain = \"10s\"\n",
        )
        .unwrap();
        assert_eq!(f.preset.as_deref(), Some("wan"));
        assert_eq!(f.node[0], ("drain".into(), vec!["10s".into()]));
        assert_eq!(
            f.node[1],
            ("seeds".into(), vec!["a:1".into(), "b:2".into()])
        );
        let c = f.apply(Config::wan()).unwrap();
        assert_eq!(c.acceptable_pause, Duration::from_secs(90));
        assert_eq!(c.phi_convict, 9.0);
    }

    #[test]
    fn errors_name_the_part() {
        let err = |s: &str| ConfigFile::parse(s).unwrap_err();
        assert!(err("[confg]\n").contains("confg"));
        assert!(err("preset = \"mars\"\n").contains("preset"));
        assert!(err("[node]\ndrain = { s = 1 }\n").contains("[node] drain"));
        let f = ConfigFile::parse("[config]\nacceptable_pawse = \"1s\"\n").unwrap();
        let e = f.apply(Config::lan()).unwrap_err();
        assert!(
            e.contains("[config]") && e.contains("acceptable_pawse"),
            "{e}"
        );
        let f = ConfigFile::parse("[config]\nprobe_interval = \"soon\"\n").unwrap();
        assert!(
            f.apply(Config::lan())
                .unwrap_err()
                .contains("probe_interval")
        );
    }

    #[test]
    fn environment_sets_are_checked_and_sorted() {
        let vars = |v: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            v.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        let got = env_sets(vars(&[
            ("RUMOR_SET_PHI_CONVICT", "9"),
            ("PATH", "/bin"),
            ("RUMOR_SET_ACCEPTABLE_PAUSE", "3s"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            [
                ("acceptable_pause".to_string(), "3s".to_string()),
                ("phi_convict".to_string(), "9".to_string())
            ]
        );
        let e = env_sets(vars(&[("RUMOR_SET_ACCEPTABLE_PAWSE", "3s")])).unwrap_err();
        assert!(e.contains("RUMOR_SET_ACCEPTABLE_PAWSE"), "{e}");
    }
}
