//! Where `rumor-node`'s settings come from, through the real binary: the `--config`
//! file (`[config]` and `[node]`), the environment (`RUMOR_<FLAG>`,
//! `RUMOR_SET_<FIELD>`) and the flags, in that order of precedence; what
//! `--check-config` prints loads back as is; every error names its source.

use std::path::PathBuf;
use std::process::{Command, Output};

fn node() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rumor-node"));
    // The tests own every RUMOR_ variable the binary reads.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RUMOR_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("rumor-node runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file in a directory of this test's own, removed with it.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("rumor-node-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value of `key` in the printed `--check-config` table.
fn value(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} not printed:\n{out}"))
        .to_string()
}

#[test]
fn file_then_environment_then_flags() {
    let dir = Dir::new("sources");
    let cfg = dir.file(
        "rumor.toml",
        "preset = \"wan\"\n\
         [config]\nacceptable_pause = \"1m 30s\"\nphi_convict = 12\nprobe_timeout = \"2s\"\n\
         [node]\ndrain = \"10s\"\nseed_retry = \"3s\"\nbootstrap = \"ordinal-0\"\n\
         seeds = [\"rumor-headless.default.svc.cluster.local:7946\", \"10.0.0.1:7946\"]\n",
    );
    let out = run(node()
        .args(["--check-config", "--name", "rumor-1", "--config"])
        .arg(&cfg)
        .args(["--seed-retry", "4s", "--set", "probe_timeout=2500ms"])
        .env("RUMOR_DRAIN", "7s")
        .env("RUMOR_SEED_RETRY", "9s")
        .env("RUMOR_SET_PHI_CONVICT", "13")
        .env("RUMOR_SET_PROBE_TIMEOUT", "1s"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    // The preset, then the file.
    assert_eq!(value(&o, "probe_interval"), "\"5s\"", "wan's");
    assert_eq!(
        value(&o, "acceptable_pause"),
        "\"90s\"",
        "the file's, humantime"
    );
    assert_eq!(value(&o, "bootstrap"), "\"ordinal-0\"", "the file's [node]");
    assert!(value(&o, "seeds").contains("rumor-headless"), "{o}");
    // The environment over the file, the flags over both.
    assert_eq!(value(&o, "phi_convict"), "13.0");
    assert_eq!(value(&o, "drain"), "\"7s\"");
    assert_eq!(value(&o, "seed_retry"), "\"4s\"");
    assert_eq!(value(&o, "probe_timeout"), "\"2500ms\"");

    // What it printed is a config file that gives the same again.
    let printed = dir.file("printed.toml", &o);
    let again = run(node().arg("--check-config").arg("--config").arg(&printed));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), o);
}

#[test]
fn errors_name_the_file_and_the_field() {
    let dir = Dir::new("errors");
    let cases = [
        ("[config]\nacceptable_pawse = \"1s\"\n", "acceptable_pawse"),
        ("[config]\nprobe_interval = \"soon\"\n", "probe_interval"),
        ("[config]\nmonitors = 99\n", "monitors"),
        ("[node]\ndrian = \"1s\"\n", "[node] drian"),
        ("[node]\ndrain = \"1x\"\n", "[node] drain"),
        ("[confg]\n", "confg"),
        ("preset = \"mars\"\n", "preset"),
        ("[config\n", "rumor.toml"),
    ];
    for (body, names) in cases {
        let f = dir.file("rumor.toml", body);
        let out = run(node().arg("--check-config").arg("--config").arg(&f));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body:?}: {err}");
        assert!(err.contains(names), "{body:?} should name {names:?}: {err}");
        assert!(
            err.contains("rumor.toml"),
            "{body:?} should name the file: {err}"
        );
        assert!(out.stdout.is_empty(), "{body:?}");
    }
    let out = run(node()
        .arg("--check-config")
        .env("RUMOR_SET_ACCEPTABLE_PAWSE", "1s"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("RUMOR_SET_ACCEPTABLE_PAWSE"));
    let out = run(node().arg("--check-config").env("RUMOR_DRAIN", "later"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--drain"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_config_prints_the_name_only_when_it_was_given() {
    // A printed `name = $HOSTNAME` shipped as a ConfigMap would give every pod the
    // name of the machine that ran --check-config.
    let out = run(node().arg("--check-config").env("HOSTNAME", "laptop-7"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    assert!(!o.lines().any(|l| l.starts_with("name =")), "{o}");
    assert!(!o.contains("laptop-7"), "{o}");
    let out = run(node()
        .args(["--check-config", "--bind", "127.0.0.1:7999"])
        .env_remove("HOSTNAME"));
    let o = text(&out.stdout);
    assert!(!o.contains("node-7999"), "{o}");
    // Given by flag, environment or file, it is printed.
    let dir = Dir::new("name");
    let f = dir.file("rumor.toml", "[node]\nname = \"from-file\"\n");
    for (cmd, want) in [
        (
            node().args(["--check-config", "--name", "rumor-1"]),
            "rumor-1",
        ),
        (
            node().arg("--check-config").env("RUMOR_NAME", "from-env"),
            "from-env",
        ),
        (
            node().arg("--check-config").arg("--config").arg(&f),
            "from-file",
        ),
    ] {
        let out = run(cmd.env("HOSTNAME", "laptop-7"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(value(&text(&out.stdout), "name"), format!("\"{want}\""));
    }
}
