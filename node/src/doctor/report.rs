//! Findings and how they print: like a compiler (`file:line: error[rule]: message`,
//! then `  fix: ...`), or as one JSON object with `--json`.

use serde_json::{Value, json};

/// How bad a finding is. Only errors make the exit status non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something a reader should know; the manifest works as intended.
    Warning,
    /// The manifest will misbehave (restarts, dropped traffic, false convictions).
    Error,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing wrong, with the manifest line to look at and what to write instead.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule's stable id (`liveness-checks-dependencies`).
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// 1-based manifest line.
    pub line: usize,
    /// What is wrong and what it causes.
    pub message: String,
    /// The change that fixes it.
    pub fix: String,
}

/// The container a set of findings is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// `StatefulSet/rumor`.
    pub workload: String,
    /// The container's name.
    pub container: String,
    /// The line of the container's name.
    pub line: usize,
    /// What was found, by line.
    pub findings: Vec<Finding>,
    /// Rules that could not run, and why (no pauses file, flags not parsed).
    pub skipped: Vec<String>,
}

/// Everything the doctor found in one manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The manifest's path as given.
    pub manifest: String,
    /// One entry per container checked.
    pub checked: Vec<Checked>,
    /// Workloads skipped (no container to check), with the reason.
    pub skipped: Vec<String>,
}

impl Report {
    /// How many findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.checked
            .iter()
            .flat_map(|c| &c.findings)
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The compiler-like text.
    pub fn human(&self) -> String {
        let mut out = String::new();
        for c in &self.checked {
            for f in &c.findings {
                out += &format!(
                    "{}:{}: {}[{}]: {} (container {}): {}\n  fix: {}\n",
                    self.manifest,
                    f.line,
                    f.severity.as_str(),
                    f.rule,
                    c.workload,
                    c.container,
                    f.message,
                    f.fix
                );
            }
        }
        for c in &self.checked {
            let (e, w) = (
                c.findings
                    .iter()
                    .filter(|f| f.severity == Severity::Error)
                    .count(),
                c.findings
                    .iter()
                    .filter(|f| f.severity == Severity::Warning)
                    .count(),
            );
            let verdict = if e + w == 0 {
                "ok".to_string()
            } else {
                format!("{e} error{}, {w} warning{}", plural(e), plural(w))
            };
            out += &format!(
                "{}:{}: {} container {}: {verdict}\n",
                self.manifest, c.line, c.workload, c.container
            );
            for s in &c.skipped {
                out += &format!("  not checked: {s}\n");
            }
        }
        for s in &self.skipped {
            out += &format!("{}: skipped {s}\n", self.manifest);
        }
        out
    }

    /// The machine-readable form: `findings` flat, each with `file`, `line`,
    /// `severity`, `rule`, `workload`, `container`, `message` and `fix`.
    pub fn json(&self) -> Value {
        let findings: Vec<Value> = self
            .checked
            .iter()
            .flat_map(|c| {
                c.findings.iter().map(move |f| {
                    json!({
                        "file": self.manifest,
                        "line": f.line,
                        "severity": f.severity.as_str(),
                        "rule": f.rule,
                        "workload": c.workload,
                        "container": c.container,
                        "message": f.message,
                        "fix": f.fix,
                    })
                })
            })
            .collect();
        let checked: Vec<Value> = self
            .checked
            .iter()
            .map(|c| {
                json!({
                    "workload": c.workload,
                    "container": c.container,
                    "line": c.line,
                    "not_checked": c.skipped,
                })
            })
            .collect();
        json!({
            "manifest": self.manifest,
            "errors": self.count(Severity::Error),
            "warnings": self.count(Severity::Warning),
            "findings": findings,
            "checked": checked,
            "skipped": self.skipped,
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            manifest: "m.yaml".into(),
            checked: vec![Checked {
                workload: "StatefulSet/r".into(),
                container: "rumor".into(),
                line: 9,
                findings: vec![Finding {
                    rule: "cpu-limit",
                    severity: Severity::Error,
                    line: 42,
                    message: "a CPU limit".into(),
                    fix: "remove it".into(),
                }],
                skipped: vec!["convict-below-pause (no --pauses FILE)".into()],
            }],
            skipped: vec![],
        }
    }

    #[test]
    fn prints_like_a_compiler() {
        let text = report().human();
        assert!(
            text.starts_with(
                "m.yaml:42: error[cpu-limit]: StatefulSet/r (container rumor): a CPU limit\n  fix: remove it\n"
            ),
            "{text}"
        );
        assert!(text.contains("m.yaml:9: StatefulSet/r container rumor: 1 error, 0 warnings"));
        assert!(text.contains("  not checked: convict-below-pause"));
    }

    #[test]
    fn json_carries_every_field() {
        let j = report().json();
        assert_eq!(j["errors"], 1);
        let f = &j["findings"][0];
        for (k, v) in [
            ("rule", "cpu-limit"),
            ("file", "m.yaml"),
            ("fix", "remove it"),
        ] {
            assert_eq!(f[k], v);
        }
        assert_eq!(f["line"], 42);
    }
}
