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
    opts: Options,
}

fn usage() -> ! {
    eprintln!(
        "usage: rumor-peers [--n 100,1000] [--seeds 3] [--markdown] [--no-encrypted] \
         [--no-detect] [--window PERIODS] [--settle SECS] [--libs foca,kinship,phi,swim]"
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
            "--window" => a.opts.window_periods = value().parse().unwrap_or_else(|_| usage()),
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
    let enc_opts = Options {
        detect_cap: 0,
        weigh: false,
        ..args.opts
    };
    for &n in &args.ns {
        for seed in 1..=args.seeds {
            // Libraries back to back in one process, so machine noise hits them alike.
            for (li, &lib) in Library::ALL.iter().enumerate() {
                if !args.libs.contains(&lib) {
                    continue;
                }
                let started = Instant::now();
                let r = scenario::run(lib, n, seed, false, &args.opts, overhead);
                eprintln!(
                    "# n={n} seed={seed} {:<10} converged {:?} s (missing pairs {}), cpu {:.2} µs, {:.0} B, heap {:?} B/member, detection {:?} s ({:.1} s wall)",
                    lib.label(),
                    r.join.converged_s,
                    r.join.missing_pairs,
                    r.cpu_us,
                    r.bytes,
                    r.heap_per_member.map(|h| h.round()),
                    r.detection_s,
                    started.elapsed().as_secs_f64()
                );
                plain.entry((n, li)).or_default().push(r);
                if args.encrypted && lib.encrypts() {
                    let started = Instant::now();
                    let r = scenario::run(lib, n, seed, true, &enc_opts, overhead);
                    eprintln!(
                        "# n={n} seed={seed} {:<10} encrypted: converged {:?} s, cpu {:.2} µs ({:.1} s wall)",
                        lib.label(),
                        r.join.converged_s,
                        r.cpu_us,
                        started.elapsed().as_secs_f64()
                    );
                    sealed.entry((n, li)).or_default().push(r);
                }
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
    println!(
        "# median of {} seeds; {}-period window after convergence + {} s; one-way delay {:?}; \
         CPU = time inside the library's calls (clock overhead {overhead:.1} ns/call removed)",
        args.seeds,
        o.window_periods,
        o.settle / 1_000_000_000,
        DELAY
    );
    if args.markdown {
        print!("{}", table::markdown(&rows));
    } else {
        print!("{}", table::plain(&rows));
    }
    let n = args.ns[0];
    for (li, lib) in Library::ALL.iter().enumerate() {
        if let Some(r) = plain.get(&(n, li)).and_then(|v| v.first()) {
            println!(
                "# {} detection (N={n}): {}",
                lib.label(),
                r.detection_config
            );
        }
    }
    for (&(n, li), runs) in plain.iter().chain(sealed.iter()) {
        for r in runs.iter().filter(|r| r.join.converged_s.is_none()) {
            let verdict = if r.join.usable(n) {
                "measured anyway (at most 1 pair in 1,000 missing)"
            } else {
                "left out"
            };
            println!(
                "# {} at N={n}: not converged after {} s, {} of {} pairs missing: {verdict}",
                Library::ALL[li].label(),
                args.opts.converge_cap / 1_000_000_000,
                r.join.missing_pairs,
                n * (n - 1)
            );
        }
    }
}
