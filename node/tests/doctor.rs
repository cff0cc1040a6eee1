//! `rumor-node doctor` as operators run it: the real binary on manifests in
//! tests/fixtures/doctor/. Each rule's fixture marks the line the doctor must report
//! with a comment `trips: RULE`; the broken manifest of the probe guidance and the
//! project's own example (examples/k8s/statefulset.yaml) are checked whole.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/doctor")
        .join(name)
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/k8s/statefulset.yaml")
}

fn doctor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rumor-node"))
        .arg("doctor")
        .args(args)
        // The doctor reads the container's args, never this process's environment.
        .env_remove("HOSTNAME")
        .output()
        .expect("runs rumor-node")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `--json` output, parsed.
fn json(args: &[&str]) -> (Option<i32>, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let out = doctor(&a);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json is not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// The 1-based line of `path` that carries `trips: RULE`.
fn marked_line(path: &Path, rule: &str) -> usize {
    let marker = format!("trips: {rule}");
    let body = std::fs::read_to_string(path).unwrap();
    let hits: Vec<usize> = body
        .lines()
        .enumerate()
        .filter(|(_, l)| l.ends_with(&marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "{} marks {rule} once", path.display());
    hits[0]
}

/// Every rule id, from `--list-rules`.
fn rule_ids() -> Vec<String> {
    let out = doctor(&["--list-rules"]);
    assert!(out.status.success());
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Extra flags a rule's fixture needs to trip.
fn extra(rule: &str) -> Vec<String> {
    match rule {
        "convict-below-pause" => vec![
            "--pauses".into(),
            fixture("pauses-6s.txt").display().to_string(),
        ],
        "config-overridden" => vec![
            "--config".into(),
            fixture("tuned.toml").display().to_string(),
        ],
        _ => Vec::new(),
    }
}

/// Rules whose fixture trips a warning (exit status 0), not an error.
const WARNING_RULES: [&str; 1] = ["config-overridden"];

#[test]
fn every_rule_has_a_fixture_that_trips_it_on_its_line() {
    let ids = rule_ids();
    assert!(ids.len() >= 12, "{ids:?}");
    for rule in &ids {
        let path = fixture(&format!("{rule}.yaml"));
        assert!(path.exists(), "no fixture for {rule}: {}", path.display());
        let line = marked_line(&path, rule);
        let p = path.display().to_string();
        let mut args = vec!["--manifest".to_string(), p.clone()];
        args.extend(extra(rule));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();

        let (severity, code) = if WARNING_RULES.contains(&rule.as_str()) {
            ("warning", 0)
        } else {
            ("error", 1)
        };
        // Compiler-like text: FILE:LINE: error[RULE]: ..., then the fix.
        let out = doctor(&a);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{rule}: {stdout}{}",
            text(&out.stderr)
        );
        let head = format!("{p}:{line}: {severity}[{rule}]: ");
        let at = stdout
            .find(&head)
            .unwrap_or_else(|| panic!("{rule}: no `{head}` in\n{stdout}"));
        let next = stdout[at..].lines().nth(1).unwrap_or_default();
        assert!(next.starts_with("  fix: "), "{rule}: {next:?}");

        // The same finding in --json.
        let (json_code, v) = json(&a);
        assert_eq!(json_code, Some(code));
        let findings = v["findings"].as_array().unwrap();
        assert!(
            findings.iter().any(|f| f["rule"] == rule.as_str()
                && f["line"] == line
                && f["severity"] == severity),
            "{rule} at line {line} in {v:#}"
        );
        // One change, one finding: nothing else in the fixture is wrong.
        let others: Vec<&Value> = findings
            .iter()
            .filter(|f| f["rule"] != rule.as_str())
            .collect();
        assert!(others.is_empty(), "{rule}: also {others:#?}");
    }
}

/// The example manifest pins `--set=acceptable_pause=3s`, which beats a tuned file's
/// value: the doctor says so, naming both values and the line, for a flag and for a
/// `RUMOR_SET_` variable; a file the manifest does not override gets no warning.
#[test]
fn an_override_of_the_config_file_is_named_with_both_values() {
    let m = fixture("config-overridden.yaml").display().to_string();
    let t = fixture("tuned.toml").display().to_string();
    let out = doctor(&["--manifest", &m, "--config", &t]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("{m}:36: warning[config-overridden]: "))
            && stdout.contains("--set=acceptable_pause=3s overrides")
            && stdout.contains("acceptable_pause = \"8s\"")
            && stdout.contains("the rules checked 3s, not the file's 8s"),
        "{stdout}"
    );
    // The same through the environment.
    let dir = std::env::temp_dir().join(format!("doctor-override-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = std::fs::read_to_string(fixture("config-file.yaml")).unwrap();
    let body = body.replace(
        "          env:\n",
        "          env:\n            - {name: RUMOR_SET_ACCEPTABLE_PAUSE, value: 5s}\n",
    );
    let envy = dir.join("env.yaml");
    std::fs::write(&envy, &body).unwrap();
    let line = body
        .lines()
        .position(|l| l.contains("RUMOR_SET_ACCEPTABLE_PAUSE"))
        .unwrap()
        + 1;
    let e = envy.display().to_string();
    let out = doctor(&["--manifest", &e, "--config", &t]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("{e}:{line}: warning[config-overridden]: "))
            && stdout.contains("env RUMOR_SET_ACCEPTABLE_PAUSE=5s overrides"),
        "{stdout}"
    );
    // Without the override: no warning.
    let c = fixture("config-file.yaml").display().to_string();
    let out = doctor(&["--manifest", &c, "--config", &t]);
    assert!(!text(&out.stdout).contains("config-overridden"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_example_statefulset_and_the_good_fixture_are_clean() {
    for path in [example(), fixture("good.yaml")] {
        let p = path.display().to_string();
        let out = doctor(&["--manifest", &p]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains("StatefulSet/rumor container rumor: ok"),
            "{stdout}"
        );
        assert!(
            !stdout.contains("error[") && !stdout.contains("warning["),
            "{stdout}"
        );
        // Measured pauses the lan preset's 4.53 s of silence covers: at most 2.4 s.
        let pauses = fixture("pauses-2s.txt").display().to_string();
        let (code, v) = json(&["--manifest", &p, "--pauses", &pauses]);
        assert_eq!((code, v["errors"].as_u64()), (Some(0), Some(0)), "{v:#}");
    }
}

#[test]
fn the_broken_manifest_of_the_guidance_is_reported_line_by_line() {
    let path = fixture("broken.yaml");
    let p = path.display().to_string();
    let out = doctor(&["--manifest", &p]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // Liveness on /readyz, the line of its path.
    assert!(
        stdout.contains(&format!("{p}:35: error[liveness-checks-dependencies]: ")),
        "{stdout}"
    );
    for (line, rule) in [
        (19, "startup-probe-missing"),
        (21, "drain-short"),
        (33, "probe-timeout"),
        (37, "liveness-initial-delay"),
        (38, "probe-timeout"),
        (44, "cpu-limit"),
    ] {
        assert!(
            stdout.contains(&format!("{p}:{line}: error[{rule}]: ")),
            "{rule} at {line}:\n{stdout}"
        );
    }
    assert!(stdout.contains("7 errors, 0 warnings"), "{stdout}");
}

#[test]
fn json_carries_rule_line_message_and_fix() {
    let p = fixture("broken.yaml").display().to_string();
    let (code, v) = json(&["--manifest", &p]);
    assert_eq!(code, Some(1));
    assert_eq!(v["errors"], 7);
    for f in v["findings"].as_array().unwrap() {
        for key in [
            "rule",
            "message",
            "fix",
            "severity",
            "file",
            "workload",
            "container",
        ] {
            assert!(
                f[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} in {f:#}"
            );
        }
        assert!(f["line"].as_u64().is_some_and(|l| l > 0), "{f:#}");
        assert_eq!(f["workload"], "StatefulSet/rumor");
    }
}

#[test]
fn the_config_file_the_container_loads_is_read_from_doctor_config() {
    let m = fixture("config-file.yaml").display().to_string();
    let pauses = fixture("pauses-6s.txt").display().to_string();
    // Without the file: a warning naming the path in the container, exit 0.
    let (code, v) = json(&["--manifest", &m]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["findings"][0]["rule"], "node-config");
    assert_eq!(v["findings"][0]["severity"], "warning");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/etc/rumor/tuned.toml")
    );
    // The lan preset alone cannot cover a 6 s pause ...
    let (code, v) = json(&["--manifest", &m, "--pauses", &pauses]);
    assert_eq!(code, Some(1), "{v:#}");
    // ... the tuned file's acceptable_pause of 8 s does.
    let t = fixture("tuned.toml").display().to_string();
    let (code, v) = json(&["--manifest", &m, "--config", &t, "--pauses", &pauses]);
    assert_eq!(
        (code, v["errors"].as_u64(), v["warnings"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{v:#}"
    );
}

#[test]
fn the_handler_worst_case_moves_the_timeout_rule() {
    let p = example().display().to_string();
    // The example's 2 s timeouts do not exceed a 2 s worst case.
    let (code, v) = json(&["--manifest", &p, "--handler-worst-case", "2s"]);
    assert_eq!(code, Some(1));
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(rules, ["probe-timeout"; 3], "{v:#}");
}

#[test]
fn bad_input_exits_2_naming_the_field_and_line() {
    let dir = std::env::temp_dir().join(format!("rumor-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let cases = [
        (
            write("syntax.yaml", "kind: StatefulSet\nspec: [1\n"),
            "syntax.yaml:3: not YAML",
        ),
        (
            write(
                "type.yaml",
                "kind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          livenessProbe: {periodSeconds: \"5\"}\n",
            ),
            "type.yaml:8: Deployment/x: spec.template.spec.containers[a].livenessProbe.periodSeconds: expected an integer",
        ),
        (
            // Past the API's int32: refused by name, where it once overflowed a product.
            write(
                "huge.yaml",
                "kind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          readinessProbe: {periodSeconds: 5, failureThreshold: 9223372036854775807}\n",
            ),
            "huge.yaml:8: Deployment/x: spec.template.spec.containers[a].readinessProbe.failureThreshold: 9223372036854775807 is above the API's maximum of 2147483647",
        ),
        (
            write(
                "missing.yaml",
                "kind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: 1}\n",
            ),
            "missing.yaml:3: StatefulSet/x: spec.template: missing",
        ),
        (
            write("none.yaml", "kind: Service\nmetadata: {name: x}\n"),
            "no Deployment or StatefulSet",
        ),
        (write("empty.yaml", ""), "no Deployment or StatefulSet"),
        (dir.join("absent.yaml").display().to_string(), "absent.yaml"),
    ];
    for (path, want) in cases {
        let out = doctor(&["--manifest", &path]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {stderr}");
        assert!(stderr.contains(want), "{path}: want {want:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let good = fixture("good.yaml").display().to_string();
    for args in [
        vec!["--manifest", good.as_str(), "--container", "nope"],
        vec![
            "--manifest",
            good.as_str(),
            "--pauses",
            "/nonexistent/pauses",
        ],
        vec!["--manifest", good.as_str(), "--handler-worst-case", "soon"],
        vec!["--manifest"],
        vec![],
    ] {
        let out = doctor(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Seconds without `# unit:` would be read as milliseconds and pass any config.
    let seconds = write("seconds.txt", "0.8\n6.5e-1\n0.12\n");
    let out = doctor(&["--manifest", &good, "--pauses", &seconds]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("look like seconds") && text(&out.stderr).contains("# unit: s"),
        "{}",
        text(&out.stderr)
    );
    let bad_pauses = write("pauses.txt", "# unit: ms\n12\nsoon\n");
    let out = doctor(&["--manifest", &good, "--pauses", &bad_pauses]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 3"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn several_workloads_and_the_container_to_check() {
    let good = std::fs::read_to_string(fixture("good.yaml")).unwrap();
    let broken = std::fs::read_to_string(fixture("broken.yaml")).unwrap();
    let dir = std::env::temp_dir().join(format!("rumor-doctor-multi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Two documents: the findings come from the second only, at its own lines.
    let both = dir.join("both.yaml");
    let broken_dep = broken
        .replace("kind: StatefulSet", "kind: Deployment")
        .replace("  name: rumor\n", "  name: web\n");
    std::fs::write(&both, format!("{good}---\n{broken_dep}")).unwrap();
    let (code, v) = json(&["--manifest", both.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert_eq!(v["checked"].as_array().unwrap().len(), 2);
    let offset = good.lines().count() + 1;
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["workload"] == "Deployment/web"
                && f["line"].as_u64().unwrap() as usize > offset),
        "{v:#}"
    );
    // A sidecar beside rumor-node: picked by image, or named with --container.
    let sidecar = good.replace(
        "        - name: rumor\n",
        "        - name: proxy\n          image: envoy:1.30\n          resources: {limits: {cpu: 200m}}\n        - name: rumor\n",
    );
    let two = dir.join("two.yaml");
    std::fs::write(&two, sidecar).unwrap();
    let (code, v) = json(&["--manifest", two.to_str().unwrap()]);
    assert_eq!(code, Some(0), "the proxy's CPU limit is not rumor's: {v:#}");
    assert_eq!(v["checked"][0]["container"], "rumor");
    let (code, v) = json(&["--manifest", two.to_str().unwrap(), "--container", "proxy"]);
    assert_eq!(code, Some(1), "{v:#}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_doctors_own_rumor_environment_is_refused() {
    // The node's parser reads RUMOR_<FLAG> from the process: in the doctor's shell it
    // would pass for the container's setting.
    let p = example().display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_rumor-node"))
        .args(["doctor", "--manifest", &p])
        .env("RUMOR_DRAIN", "1s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("RUMOR_DRAIN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn env_values_expand_earlier_variables_as_the_kubelet_does() {
    let good = std::fs::read_to_string(fixture("good.yaml")).unwrap();
    let dir = std::env::temp_dir().join(format!("rumor-doctor-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    // --advertise from RUMOR_ADVERTISE, built from the pod IP of an earlier entry; a
    // variable listed twice (the last wins, as in the pod) is not a repeated flag.
    let via_env = good
        .replace("            - --advertise=$(POD_IP):7946\n", "")
        .replace("            - --drain=10s\n", "")
        .replace(
            "          ports:\n",
            "            - {name: RUMOR_ADVERTISE, value: \"$(POD_IP):7946\"}\n\
             \x20           - {name: RUMOR_DRAIN, value: 1s}\n\
             \x20           - {name: RUMOR_DRAIN, value: \"$$(x)\"}\n\
             \x20           - {name: RUMOR_DRAIN, value: 10s}\n\
             \x20         ports:\n",
        );
    assert!(via_env.contains("RUMOR_ADVERTISE"), "{via_env}");
    let p = write("via-env.yaml", via_env.clone());
    let (code, v) = json(&["--manifest", &p]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v:#}");
    // The value that wins counts: a 1 s drain is short for the readiness probe.
    let short = via_env.replace(
        "{name: RUMOR_DRAIN, value: 10s}",
        "{name: RUMOR_DRAIN, value: 1s}",
    );
    let (code, v) = json(&["--manifest", &write("short.yaml", short)]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["findings"][0]["rule"], "drain-short", "{v:#}");
    // A variable defined only later is left as written, as the kubelet leaves it: the
    // node refuses that address.
    let later = via_env
        .replace(
            "            - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n",
            "",
        )
        .replace(
            "            - {name: RUMOR_DRAIN, value: 10s}\n",
            "            - {name: RUMOR_DRAIN, value: 10s}\n\
             \x20           - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n",
        );
    let (code, v) = json(&["--manifest", &write("later.yaml", later)]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["findings"][0]["rule"], "node-args", "{v:#}");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("$(POD_IP):7946"),
        "{v:#}"
    );
    // A value from a ConfigMap: a stand-in of the right shape, and a warning naming it.
    let from_map = via_env.replace(
        "{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}",
        "{name: POD_IP, valueFrom: {configMapKeyRef: {name: net, key: ip}}}",
    );
    let (code, v) = json(&["--manifest", &write("from-map.yaml", from_map)]);
    assert_eq!(code, Some(0), "{v:#}");
    let f = &v["findings"][0];
    assert_eq!(
        (&f["rule"], &f["severity"]),
        (&"node-config".into(), &"warning".into()),
        "{v:#}"
    );
    assert!(f["message"].as_str().unwrap().contains("POD_IP"), "{v:#}");
    std::fs::remove_dir_all(&dir).ok();
}
