//! Every library's loop must converge at small N, or its rows would measure a cluster
//! that is still joining; and a run must repeat itself for the same seed.

use rumor_peers::Library;
use rumor_peers::scenario::{Options, join_and_converge};

const N: usize = 12;

fn opts() -> Options {
    Options {
        converge_cap: 60_000_000_000,
        ..Options::default()
    }
}

#[test]
fn every_library_converges_plaintext_and_encrypted() {
    for lib in Library::ALL {
        for encrypted in [false, true] {
            if encrypted && !lib.encrypts() {
                continue;
            }
            let (c, join) = join_and_converge(lib, N, 1, encrypted, &opts());
            assert!(
                join.converged_s.is_some(),
                "{} (encrypted {encrypted}) did not converge: {} pairs missing",
                lib.label(),
                join.missing_pairs
            );
            for i in 0..N {
                assert_eq!(c.known(i), N - 1, "{} member {i}", lib.label());
            }
        }
    }
}

#[test]
fn a_run_repeats_for_the_same_seed() {
    for lib in Library::ALL {
        let bytes = || {
            let (mut c, _) = join_and_converge(lib, N, 7, false, &opts());
            c.run_until(c.now() + 20_000_000_000);
            let m = *c.meter();
            (m.datagrams, m.datagram_bytes, m.stream_bytes)
        };
        assert_eq!(bytes(), bytes(), "{}", lib.label());
    }
}

#[test]
fn a_crash_is_detected_by_every_survivor() {
    for lib in Library::ALL {
        let (mut c, _) = join_and_converge(lib, N, 3, false, &opts());
        c.crash(5);
        c.run_until(c.now() + 60_000_000_000);
        for i in (0..N).filter(|&i| i != 5) {
            assert!(
                c.dead_at(i).is_some(),
                "{}: member {i} never declared 5 dead",
                lib.label()
            );
        }
    }
}
