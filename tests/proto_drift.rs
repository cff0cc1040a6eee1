//! The generated wire types are checked in (so building `rumor` needs neither `protoc`
//! nor a build script); this test regenerates them from the `.proto` and fails if the
//! checked-in copy has drifted.
//!
//! To update the checked-in file after editing the schema or bumping prost-build:
//!
//! ```text
//! RUMOR_UPDATE_GENERATED=1 cargo test --test proto_drift
//! ```

use std::path::{Path, PathBuf};

/// Schema path, relative to the include root `proto/`; the include-relative name is what
/// ends up in the descriptor, so it must not depend on where the repository is checked out.
const PROTO: &str = "rumor/v1/rumor.proto";
/// prost-build names its output after the protobuf package.
const GENERATED: &str = "rumor.v1.rs";
/// Set to `1` to rewrite the checked-in file instead of comparing against it.
const UPDATE_ENV: &str = "RUMOR_UPDATE_GENERATED";

/// Removes the scratch directory even when the test fails half way.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Regenerates the Rust for the schema into a fresh directory and returns its text.
///
/// The prost-build configuration here is the single source of truth for how the
/// checked-in file is produced.
fn regenerate(manifest: &Path) -> String {
    let include = manifest.join("proto");
    // protox parses the schema in-process: no system `protoc` needed, same output everywhere.
    let fds = protox::compile([PROTO], [&include])
        .unwrap_or_else(|e| panic!("protox failed to compile {PROTO}: {e}"));

    // Unique per process so concurrent `cargo test` runs (several checkouts, CI shards)
    // cannot read each other's half-written output.
    let dir =
        TempDir(std::env::temp_dir().join(format!("rumor-proto-drift-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.0.display()));

    prost_build::Config::new()
        .out_dir(&dir.0)
        // `bytes::Bytes` fields: a member's name, address and metadata are gossiped in
        // many packets, and cloning a `Bytes` into each is a reference count, not a copy.
        .bytes(["."])
        // The schema has no map fields today; should one appear it must not be a
        // `HashMap`, whose iteration order would break the core's determinism.
        .btree_map(["."])
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("prost-build failed: {e}"));

    let out = dir.0.join(GENERATED);
    std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("cannot read {}: {e}", out.display()))
}

#[test]
fn generated_code_matches_schema() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checked_in = manifest.join("src/wire/generated").join(GENERATED);
    let fresh = regenerate(manifest);

    let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
    if current == fresh {
        return;
    }
    if std::env::var_os(UPDATE_ENV).is_some_and(|v| v == "1") {
        // Written only on a real change, so an update run does not needlessly touch the
        // file's mtime and rebuild the crate.
        std::fs::write(&checked_in, &fresh)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", checked_in.display()));
        return;
    }

    // Point at the first differing line so the failure is readable without a diff tool.
    let first_diff = current
        .lines()
        .zip(fresh.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()));
    panic!(
        "{} is out of date with proto/{PROTO} (first difference at line {}).\n\
         Regenerate it with:\n\n    {UPDATE_ENV}=1 cargo test --test proto_drift\n",
        checked_in.display(),
        first_diff + 1,
    );
}
