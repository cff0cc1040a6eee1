//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and every crash the
//! fuzzers ever found (`fuzz/artifacts/<target>/`) through the fuzz targets' own
//! checks, on the stable toolchain and without libFuzzer, so a regression that one of
//! them would catch fails CI. The target bodies are compiled from `fuzz/src/lib.rs`,
//! the same file the libFuzzer binaries use; see `fuzz/README.md` to run the fuzzers.

use std::cell::RefCell;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

/// Every file directly under `fuzz/<kind>/<target>/`, sorted so failures read the same
/// on every machine.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

thread_local! {
    /// Set while replaying: panics are recorded here instead of printed.
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, on a replaying thread, keeps the panic's message
/// and location for the report instead of printing a backtrace per failing input; other
/// threads (the findings below) get the default hook.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let replaying = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                if let Some(slot) = c.as_mut() {
                    *slot = Some(info.to_string());
                    true
                } else {
                    false
                }
            });
            if !replaying {
                default(info);
            }
        }));
    });
}

/// Runs `run` on every corpus file and artifact of `target`; fails listing every input
/// that panicked, with its panic. At least `min_corpus` corpus files must exist, so a
/// moved directory cannot make the test pass by replaying nothing.
fn replay(target: &str, min_corpus: usize, run: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(
        corpus.len() >= min_corpus,
        "fuzz/corpus/{target} holds {} files, expected at least {min_corpus}",
        corpus.len()
    );
    quiet_panics();
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&inputs("artifacts", target)) {
        let data = fs::read(path).expect("readable corpus file");
        CAUGHT.with(|c| *c.borrow_mut() = Some(None));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(&data)));
        let message = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
        if outcome.is_err() {
            let message = message.unwrap_or_default();
            failed.push(format!("{}: {message}", path.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} inputs fail {target}:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn decode_packet_corpus() {
    replay("decode_packet", 1, targets::decode_packet);
}

#[test]
fn node_inputs_corpus() {
    replay("node_inputs", 1, targets::node_inputs);
}

// ----- findings --------------------------------------------------------------------------
//
// Minimized reproductions of what the fuzzers found in `src/`, kept as regression tests
// once fixed.

mod findings {
    use std::net::SocketAddr;

    use rumor::internals::{DecodeLimits, decode_packet};
    use rumor::{Config, Identity, Node, Time};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// What a node with `cfg` accepts (as `Node::new` derives it).
    fn limits(cfg: &Config) -> DecodeLimits {
        DecodeLimits {
            max_packet_size: cfg.max_packet_size,
            max_messages: cfg.max_messages_per_packet,
            max_digest_entries: cfg.max_packet_size / 2,
        }
    }

    /// Every datagram `node` wants to send now, with its destination.
    fn drain(node: &mut Node, now: Time) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut buf = vec![0u8; 65_536];
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit(now, &mut buf) {
            out.push((t.destination, buf[..t.len].to_vec()));
        }
        out
    }

    /// Finding 1 (fixed): `max_messages_per_packet = 1` passed `Config::validate`, but a
    /// join is two messages (the joiner's Alive and a digest), so every peer with the
    /// same config dropped it as `TooManyMessages`: the node could never join. Found by
    /// `node_inputs` (artifact `crash-43d63e7e41142f4b6132a93809df5cb6b7887215`). Now
    /// the floor is 3 and the smallest valid config joins.
    #[test]
    fn finding_1_join_exceeds_max_messages_per_packet() {
        let mut cfg = Config::lan();
        cfg.max_messages_per_packet = 2;
        assert!(
            cfg.validate().is_err(),
            "a config that cannot join is refused"
        );
        cfg.max_messages_per_packet = 3;
        cfg.validate().expect("the config is valid");
        let mut seed = Node::new(Identity::new("seed", addr(1)), cfg.clone(), 1, Time::ZERO)
            .expect("valid node");
        let mut joiner = Node::new(Identity::new("joiner", addr(2)), cfg.clone(), 2, Time::ZERO)
            .expect("valid node");
        seed.join(Time::ZERO, &[]);
        joiner.join(Time::ZERO, &[addr(1)]);
        for (to, data) in drain(&mut joiner, Time::ZERO) {
            assert_eq!(to, addr(1));
            assert_eq!(
                decode_packet(&data, &limits(&cfg)).map(|p| p.messages.len() <= 3),
                Ok(true),
                "the join datagram is over the peers' message limit"
            );
            seed.handle_packet(Time::ZERO, addr(2), &data);
        }
        assert!(
            seed.member(joiner.id()).is_some(),
            "the seed never heard the join"
        );
    }

    /// Finding 1, the same fault with the default `max_messages_per_packet` (128): a
    /// sync answer is packed by bytes alone (`Primary::Entries` in `write_primary`), so
    /// with jumbo-frame packets (9000 bytes) a seed that knows 200 members answers a
    /// joiner with a datagram of about 200 entries, and the joiner drops it whole.
    #[test]
    fn finding_1_sync_answer_exceeds_max_messages_per_packet() {
        let mut cfg = Config::lan();
        cfg.max_packet_size = 9000;
        cfg.validate().expect("the config is valid");
        let limits = limits(&cfg);
        let seed_addr = addr(1);
        let mut seed = Node::new(Identity::new("seed", seed_addr), cfg.clone(), 1, Time::ZERO)
            .expect("valid node");
        seed.join(Time::ZERO, &[]);
        for i in 0..200u16 {
            let at = addr(1000 + i);
            let name = format!("member-{i}");
            let mut m = Node::new(
                Identity::new(name, at),
                cfg.clone(),
                u64::from(i),
                Time::ZERO,
            )
            .expect("valid node");
            m.join(Time::ZERO, &[seed_addr]);
            for (_, data) in drain(&mut m, Time::ZERO) {
                seed.handle_packet(Time::ZERO, at, &data);
            }
            drain(&mut seed, Time::ZERO);
        }
        assert_eq!(seed.live_count(), 201);
        let mut joiner = Node::new(Identity::new("joiner", addr(2)), cfg.clone(), 2, Time::ZERO)
            .expect("valid node");
        joiner.join(Time::ZERO, &[seed_addr]);
        for (_, data) in drain(&mut joiner, Time::ZERO) {
            seed.handle_packet(Time::ZERO, addr(2), &data);
        }
        for (to, data) in drain(&mut seed, Time::ZERO) {
            if to != addr(2) {
                continue;
            }
            let decoded = decode_packet(&data, &limits);
            assert!(
                decoded.is_ok(),
                "the seed's answer is rejected by the joiner: {decoded:?}"
            );
        }
    }
}
