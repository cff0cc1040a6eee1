//! Prints rumor beside foca and kinship-core: CPU, CPU encrypted, bytes, heap and
//! detection per member per period, with ratios. See README.md.
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- --n 100,1000,4000 --seeds 3
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use rumor_peers::scenario::{self, Options, Run};
use rumor_peers::table::{self, Row, median};
use rumor_peers::{DELAY, Library, meter};

struct Args {
    ns: Vec<usize>,
    seeds: u64,
    markdown: bool,
    encrypted: bool,
    libs: Vec<Library>,
    interleave: bool,
    window: Option<u64>,
    opts: Options,
}

/// The measured window when `--window` is not given: at least 60 periods and at least
/// 60,000 member-periods, so that a small cluster's window is not over in a few
/// milliseconds of wall time that one burst of the machine's other work can swamp.
fn auto_window(n: usize) -> u64 {
    (60_000 / n as u64).max(60)
}

/// Runs `libs` at `n` members: their windows in lockstep (`interleave`, see
/// [`scenario::window`]) or each library whole before the next (less memory at once).
fn measure(
    libs: &[(usize, Library)],
    n: usize,
    seed: u64,
    encrypted: bool,
    opts: &Options,
    overhead: f64,
    interleave: bool,
) -> Vec<Run> {
    if !interleave {
        return libs
            .iter()
            .map(|&(_, lib)| scenario::run(lib, n, seed, encrypted, opts, overhead))
            .collect();
    }
    let mut group: Vec<_> = libs
        .iter()
        .map(|&(_, lib)| scenario::prepare(lib, n, seed, encrypted, opts))
        .collect();
    scenario::window(&mut group, opts);
    group
        .into_iter()
        .map(|p| scenario::finish(p, opts, overhead))
        .collect()
}

fn usage() -> ! {
    eprintln!(
        "usage: rumor-peers [--n 100,1000] [--seeds 3] [--markdown] [--no-encrypted] \
         [--no-detect] [--no-interleave] [--window PERIODS] [--settle SECS] [--libs foca,kinship,phi,swim]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut a = Args {
        ns: vec![100, 1000],
        seeds: 3,
        markdown: false,
        encrypted: true,
        libs: Library::ALL.to_vec(),
        interleave: true,
        window: None,
        opts: Options::default(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--n" => {
                a.ns = value()
                    .split(',')
                    .map(|s| s.trim().parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--seeds" => a.seeds = value().parse().unwrap_or_else(|_| usage()),
            "--window" => a.window = Some(value().parse().unwrap_or_else(|_| usage())),
            "--no-interleave" => a.interleave = false,
            "--settle" => {
                a.opts.settle = value().parse::<u64>().unwrap_or_else(|_| usage()) * 1_000_000_000
            }
            "--libs" => {
                a.libs = value()
                    .split(',')
                    .map(|s| match s.trim() {
                        "foca" => Library::Foca,
                        "kinship" => Library::Kinship,
                        "phi" => Library::RumorPhi,
                        "swim" => Library::RumorSwim,
                        _ => usage(),
                    })
                    .collect()
            }
            "--markdown" => a.markdown = true,
            "--no-encrypted" => a.encrypted = false,
            "--no-detect" => a.opts.detect_cap = 0,
            _ => usage(),
        }
    }
    if a.ns.iter().any(|&n| n < 3) || a.seeds == 0 {
        usage();
    }
    a
}

#[allow(
    clippy::disallowed_methods,
    reason = "wall time of each run, for the progress lines only"
)]
fn main() {
    let args = parse();
    let overhead = meter::timer_overhead_ns();
    eprintln!("# clock overhead per timed call: {overhead:.1} ns (subtracted)");
    let mut plain: BTreeMap<(usize, usize), Vec<Run>> = BTreeMap::new();
    let mut sealed: BTreeMap<(usize, usize), Vec<Run>> = BTreeMap::new();
    for &n in &args.ns {
        let window_periods = args.window.unwrap_or_else(|| auto_window(n));
        let opts = Options {
            window_periods,
            ..args.opts
        };
        let enc_opts = Options {
            detect_cap: 0,
            weigh: false,
            ..opts
        };
        for seed in 1..=args.seeds {
            let libs: Vec<(usize, Library)> = Library::ALL
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, l)| args.libs.contains(l))
                .collect();
            let sealed_libs: Vec<(usize, Library)> = libs
                .iter()
                .copied()
                .filter(|(_, l)| args.encrypted && l.encrypts())
                .collect();
            for (encrypted, libs, o) in [(false, &libs, &opts), (true, &sealed_libs, &enc_opts)] {
                if libs.is_empty() {
                    continue;
                }
                let started = Instant::now();
                let runs = measure(libs, n, seed, encrypted, o, overhead, args.interleave);
                for ((li, lib), r) in libs.iter().zip(runs) {
                    eprintln!(
                        "# n={n} seed={seed} {:<10}{} converged {:?} s (missing pairs {}), cpu {:.2} µs (wall {:.2} µs, ran {:.0} %), {:.0} B, heap {:?} B/member, detection {:?} s",
                        lib.label(),
                        if encrypted { " sealed" } else { "" },
                        r.join.converged_s,
                        r.join.missing_pairs,
                        r.cpu_us,
                        r.cpu_us_wall,
                        r.running_share * 100.0,
                        r.bytes,
                        r.heap_per_member.map(|h| h.round()),
                        r.detection_s,
                    );
                    let map = if encrypted { &mut sealed } else { &mut plain };
                    map.entry((n, *li)).or_default().push(r);
                }
                eprintln!("# ({:.1} s wall)", started.elapsed().as_secs_f64());
            }
        }
    }

    let pick =
        |map: &BTreeMap<(usize, usize), Vec<Run>>, n: usize, f: &dyn Fn(&Run) -> Option<f64>| {
            let mut values = [None; 4];
            for (li, v) in values.iter_mut().enumerate() {
                // A run that did not (nearly) converge measured no steady state: no value.
                let xs: Vec<f64> = map
                    .get(&(n, li))
                    .map(|runs| {
                        runs.iter()
                            .filter(|r| r.join.usable(n))
                            .filter_map(f)
                            .collect()
                    })
                    .unwrap_or_default();
                *v = median(xs);
            }
            values
        };
    let mut rows = Vec::new();
    for &n in &args.ns {
        rows.push(Row {
            label: format!("CPU µs, N={n}"),
            values: pick(&plain, n, &|r| Some(r.cpu_us)),
            decimals: 2,
        });
    }
    if args.encrypted {
        for &n in &args.ns {
            rows.push(Row {
                label: format!("CPU µs encrypted, N={n}"),
                values: pick(&sealed, n, &|r| Some(r.cpu_us)),
                decimals: 2,
            });
        }
    }
    for &n in &args.ns {
        rows.push(Row {
            label: format!("bytes idle, N={n}"),
            values: pick(&plain, n, &|r| Some(r.bytes)),
            decimals: 0,
        });
    }
    for &n in &args.ns {
        rows.push(Row {
            label: format!("  of which TCP, N={n}"),
            values: pick(&plain, n, &|r| Some(r.stream_bytes)),
            decimals: 0,
        });
    }
    for &n in &args.ns {
        rows.push(Row {
            label: format!("datagrams, N={n}"),
            values: pick(&plain, n, &|r| Some(r.datagrams)),
            decimals: 2,
        });
    }
    for &n in &args.ns {
        rows.push(Row {
            label: format!("heap B per known member, N={n}"),
            values: pick(&plain, n, &|r| r.heap_per_member),
            decimals: 0,
        });
    }
    for &n in &args.ns {
        rows.push(Row {
            label: format!("heap B fresh member, N={n}"),
            values: pick(&plain, n, &|r| r.heap_fresh),
            decimals: 0,
        });
    }
    if args.opts.detect_cap > 0 {
        for &n in &args.ns {
            rows.push(Row {
                label: format!("crash detected by all, s, N={n}"),
                values: pick(&plain, n, &|r| r.detection_s),
                decimals: 1,
            });
        }
        for &n in &args.ns {
            rows.push(Row {
                label: format!("crash detected by first, s, N={n}"),
                values: pick(&plain, n, &|r| r.first_detection_s),
                decimals: 1,
            });
        }
    }
    for &n in &args.ns {
        rows.push(Row {
            label: format!("join converged, s, N={n}"),
            values: pick(&plain, n, &|r| r.join.converged_s),
            decimals: 1,
        });
    }

    let o = &args.opts;
    let share = 100.0
        * median(
            plain
                .values()
                .chain(sealed.values())
                .flatten()
                .map(|r| r.running_share)
                .collect(),
        )
        .unwrap_or(1.0);
    let mut notes = vec![format!(
        "median of {} seeds; {} window opening {} s after convergence{}; one-way delay {:?}; \
         CPU = monotonic time inside the library's calls, clock overhead {overhead:.1} ns per call removed, \
         times the share of the window the thread ran (thread CPU clock over wall clock; median {share:.0} %); \
         bytes = datagram payloads plus kinship's TCP stream writes; ratios are rumor over the peer",
        args.seeds,
        args.window.map_or_else(
            || "a max(60, 60000/N)-period".to_string(),
            |w| format!("a {w}-period")
        ),
        o.settle / 1_000_000_000,
        if args.interleave {
            ", the libraries' windows interleaved period by period"
        } else {
            ""
        },
        DELAY
    )];
    let n = args.ns[0];
    for (li, lib) in Library::ALL.iter().enumerate() {
        if let Some(r) = plain.get(&(n, li)).and_then(|v| v.first()) {
            notes.push(format!(
                "{} detection (N={n}): {}",
                lib.label(),
                r.detection_config
            ));
        }
    }
    for (&(n, li), runs) in plain.iter().chain(sealed.iter()) {
        for r in runs.iter().filter(|r| r.join.converged_s.is_none()) {
            let verdict = if r.join.usable(n) {
                "measured anyway (at most 1 pair in 1,000 missing)"
            } else {
                "left out"
            };
            notes.push(format!(
                "{} at N={n}: not converged after {} s, {} of {} pairs missing: {verdict}",
                Library::ALL[li].label(),
                args.opts.converge_cap / 1_000_000_000,
                r.join.missing_pairs,
                n * (n - 1)
            ));
        }
    }
    if args.markdown {
        print!("{}", table::markdown(&rows));
        println!();
        for note in notes {
            println!("- {note}");
        }
    } else {
        print!("{}", table::plain(&rows));
        for note in notes {
            println!("# {note}");
        }
    }
}
