//! The canned scenarios (`sim/scenarios/*.toml`), embedded in the binary so that
//! `rumor-sim run --scenario crash` works wherever it was installed.
//!
//! A `--scenario` argument is a file if one exists at that path; otherwise its file
//! stem names a canned scenario (`crash`, `crash.toml` and `sim/scenarios/crash.toml`
//! all name `crash`), so the README's commands work inside and outside the repository.

use std::path::Path;

/// Every canned scenario: its name and its TOML.
pub const CANNED: &[(&str, &str)] = &[
    ("crash", include_str!("../scenarios/crash.toml")),
    ("crash-host", include_str!("../scenarios/crash-host.toml")),
    (
        "crash-process",
        include_str!("../scenarios/crash-process.toml"),
    ),
    (
        "forged-refusal-pauses",
        include_str!("../scenarios/forged-refusal-pauses.toml"),
    ),
    (
        "forged-refusal-storm",
        include_str!("../scenarios/forged-refusal-storm.toml"),
    ),
    (
        "forged-refusals",
        include_str!("../scenarios/forged-refusals.toml"),
    ),
    ("gc-pauses", include_str!("../scenarios/gc-pauses.toml")),
    (
        "key-rotation",
        include_str!("../scenarios/key-rotation.toml"),
    ),
    ("large", include_str!("../scenarios/large.toml")),
    ("lossy", include_str!("../scenarios/lossy.toml")),
    ("one-way-cut", include_str!("../scenarios/one-way-cut.toml")),
    (
        "partition-heal",
        include_str!("../scenarios/partition-heal.toml"),
    ),
    (
        "rolling-restart",
        include_str!("../scenarios/rolling-restart.toml"),
    ),
    ("steady", include_str!("../scenarios/steady.toml")),
    (
        "uniform-loss",
        include_str!("../scenarios/uniform-loss.toml"),
    ),
];

/// A scenario's text, and how to name it in a reproducing command: the path when it
/// was read from a file, else the canned name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The path or the canned name.
    pub name: String,
    /// The TOML.
    pub text: String,
}

/// Reads `arg` as a file if it exists, else as the name of a canned scenario.
pub fn load(arg: &Path) -> Result<Source, String> {
    if arg.is_file() {
        let text = std::fs::read_to_string(arg).map_err(|e| format!("{}: {e}", arg.display()))?;
        return Ok(Source {
            name: arg.display().to_string(),
            text,
        });
    }
    let stem = arg.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    match CANNED.iter().find(|(name, _)| *name == stem) {
        Some((name, text)) => Ok(Source {
            name: (*name).to_string(),
            text: (*text).to_string(),
        }),
        None => {
            let names: Vec<&str> = CANNED.iter().map(|(n, _)| *n).collect();
            Err(format!(
                "{}: no such file, and not a canned scenario ({})",
                arg.display(),
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn every_scenario_file_is_canned_and_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "toml").then(|| p.file_stem()?.to_str().map(String::from))?
            })
            .collect();
        files.sort();
        let mut canned: Vec<String> = CANNED.iter().map(|(n, _)| n.to_string()).collect();
        canned.sort();
        assert_eq!(files, canned, "sim/scenarios/ and CANNED differ");
        for (name, text) in CANNED {
            assert!(Scenario::parse(text, &[]).is_ok(), "{name} does not parse");
        }
    }

    #[test]
    fn names_paths_and_missing_ones() {
        let by_name = load(Path::new("crash")).unwrap();
        assert_eq!(by_name.name, "crash");
        // A repository path that does not exist from here still names the canned one.
        let by_path = load(Path::new("/nowhere/sim/scenarios/crash.toml")).unwrap();
        assert_eq!(by_path.text, by_name.text);
        let e = load(Path::new("cras")).unwrap_err();
        assert!(
            e.contains("not a canned scenario") && e.contains("steady"),
            "{e}"
        );
        // A real file wins over a canned name.
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady.toml");
        assert_eq!(load(&file).unwrap().name, file.display().to_string());
    }
}
