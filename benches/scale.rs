//! The real-socket scale bench (issue 26): N runtime nodes in one process, each on its
//! own UDP socket on 127.0.0.1, joined through one seed as the demo joins them.
//!
//! ```sh
//! cargo bench --bench scale -- --nodes 20,100,1000,2000            # 2 tokio workers
//! cargo bench --bench scale -- --nodes 2000 --workers 0            # current-thread
//! cargo bench --bench scale -- --nodes 100 --strategy swim         # another strategy
//! ```
//!
//! For each N it prints one line with:
//! - `join_s`: from the first start until every node sees all N members alive (the
//!   starts are part of it: they are what a join storm costs);
//! - `cpu_us_per_node_s`: CPU time of the whole process (every thread, from
//!   `/proc/self/task/*/schedstat`, nanosecond-exact) over a steady window after
//!   convergence, per node per second;
//! - `idle_us_per_node_s`: the same for N nodes that know nobody (no seeds), measured in
//!   a child process: what a node costs with no traffic at all;
//! - `fixed_kb_per_node`: resident memory of N idle nodes (the child), per node;
//! - `rss_b_per_member`: resident memory after convergence, less the idle nodes'
//!   fixed cost, per known member (N × (N − 1) of them);
//!   It overstates the cost a little: heap freed after the join storm that the
//!   allocator has not returned to the system still counts.
//! - `rcvbuf_errors`: UDP receive-buffer overflows (`/proc/net/snmp`) during the
//!   steady window: counted for the whole network namespace, so run it on a quiet one.
//!
//! Not a timed test: nothing here asserts a number. BENCHMARKS.md records the runs.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use rumor::{Config, Handle, MemberState, RuntimeBuilder};

/// How long the steady window is, unless `--steady` says otherwise.
const STEADY: Duration = Duration::from_secs(10);

/// The longest a join may take before the run is reported as not converged.
const JOIN_LIMIT: Duration = Duration::from_secs(300);

/// Pause after convergence before the steady window: the early push-pulls of the
/// last joiners finish.
const SETTLE: Duration = Duration::from_secs(5);

struct Args {
    nodes: Vec<usize>,
    workers: usize,
    steady: Duration,
    /// `--strategy swim|lifeguard|phi-monitors` (default: the default config's).
    strategy: Option<String>,
    /// Internal: this process is the idle child for N nodes.
    idle_child: Option<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        nodes: vec![20, 100],
        workers: 2,
        steady: STEADY,
        strategy: None,
        idle_child: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--nodes" => {
                args.nodes = value("--nodes")
                    .split(',')
                    .map(|n| n.trim().parse().expect("--nodes: a list of counts"))
                    .collect();
            }
            "--workers" => args.workers = value("--workers").parse().expect("--workers: a count"),
            "--steady" => {
                args.steady =
                    Duration::from_secs(value("--steady").parse().expect("--steady: seconds"));
            }
            "--strategy" => args.strategy = Some(value("--strategy")),
            "--idle-child" => {
                args.idle_child = Some(value("--idle-child").parse().expect("a count"));
            }
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    let mut b = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    b.enable_all().build().expect("a tokio runtime")
}

/// CPU time of every live thread of this process so far. A thread that exits in a
/// window takes its CPU with it: none does here (no blocking pool, no DNS), and the
/// windows subtract with saturation.
fn cpu_time() -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("a task").path().join("schedstat");
        // A thread may exit between the listing and the read.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Resident set size in bytes (`VmRSS`, in kB whatever the page size).
fn rss() -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("status's VmRSS field");
    kb * 1024
}

/// `Udp: ... RcvbufErrors` from /proc/net/snmp.
fn rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// `--strategy`, for `config()`.
static STRATEGY: OnceLock<Option<String>> = OnceLock::new();

fn config() -> Config {
    let mut cfg = Config::lan();
    cfg.cluster_label = "scale-bench".into();
    if let Some(strategy) = STRATEGY.get().and_then(Option::as_ref) {
        cfg.set("strategy", strategy)
            .unwrap_or_else(|e| panic!("--strategy: {e}"));
    }
    cfg
}

async fn start(i: usize, seeds: &[SocketAddr]) -> Handle {
    let localhost: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    RuntimeBuilder::new(format!("n{i}"))
        .bind(localhost)
        .seeds(seeds.iter().copied())
        .config(config())
        .rng_seed(i as u64)
        .start()
        .await
        .unwrap_or_else(|e| panic!("node {i} did not start: {e}"))
}

/// Every node sees the `n - 1` others alive (its member list leaves itself out).
fn converged(nodes: &[Handle], n: usize) -> bool {
    nodes.iter().all(|h| {
        let members = h.watch_members();
        let list = members.borrow();
        list.len() >= n - 1
            && list
                .iter()
                .filter(|m| m.state == MemberState::Alive)
                .count()
                == n - 1
    })
}

/// The idle child: `n` nodes with no seeds; prints fixed memory and idle CPU.
fn idle_child(n: usize, workers: usize, steady: Duration) {
    let rt = runtime(workers);
    // Handles are dropped (and aborted) in the runtime's context.
    let _guard = rt.enter();
    let before = rss();
    let nodes: Vec<Handle> = rt.block_on(async {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            v.push(start(i, &[]).await);
        }
        v
    });
    rt.block_on(tokio::time::sleep(Duration::from_secs(2)));
    let after = rss();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    rt.block_on(tokio::time::sleep(steady));
    let cpu = cpu_time().saturating_sub(cpu0);
    let wall = t0.elapsed();
    let per_node_s = cpu.as_secs_f64() * 1e6 / (n as f64 * wall.as_secs_f64());
    println!(
        "IDLE fixed_bytes_per_node={} idle_us_per_node_s={per_node_s:.1}",
        after.saturating_sub(before) / n as u64
    );
    for h in &nodes {
        h.abort();
    }
}

/// Runs the idle child for `n` and parses its answer: (fixed bytes per node, idle µs).
fn idle_figures(n: usize, workers: usize, steady: Duration) -> (u64, f64) {
    let exe = std::env::current_exe().expect("this bench's path");
    let strategy = STRATEGY.get().cloned().flatten();
    let out = Command::new(exe)
        .args(strategy.iter().flat_map(|s| ["--strategy", s.as_str()]))
        .args([
            "--idle-child",
            &n.to_string(),
            "--workers",
            &workers.to_string(),
            "--steady",
            &steady.as_secs().to_string(),
        ])
        .output()
        .expect("the idle child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("IDLE "))
        .unwrap_or_else(|| {
            panic!(
                "the idle child printed no figures: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let field = |name: &str| -> &str {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .expect("a field of the idle line")
    };
    (
        field("fixed_bytes_per_node").parse().expect("a number"),
        field("idle_us_per_node_s").parse().expect("a number"),
    )
}

fn run(n: usize, workers: usize, steady: Duration) {
    let (fixed, idle_us) = idle_figures(n, workers, steady);
    let rt = runtime(workers);
    // Handles are dropped (and aborted) in the runtime's context.
    let _guard = rt.enter();
    let before = rss();
    // The seed's port is taken first, so the others can be given it up front.
    let t0 = Instant::now();
    let nodes: Vec<Handle> = rt.block_on(async {
        let first = start(0, &[]).await;
        let seed = first.advertise_addr();
        let mut v = vec![first];
        for i in 1..n {
            v.push(start(i, &[seed]).await);
        }
        v
    });
    let poll = Duration::from_millis(20).max(Duration::from_micros((n * n / 20) as u64));
    let join = rt.block_on(async {
        while t0.elapsed() < JOIN_LIMIT {
            if converged(&nodes, n) {
                return Some(t0.elapsed());
            }
            tokio::time::sleep(poll).await;
        }
        None
    });
    let Some(join) = join else {
        println!("nodes={n} workers={workers} join_s=NOT-CONVERGED-IN-{JOIN_LIMIT:?}");
        return;
    };
    rt.block_on(tokio::time::sleep(SETTLE));
    let resident = rss().saturating_sub(before);
    let errors0 = rcvbuf_errors();
    let cpu0 = cpu_time();
    let w0 = Instant::now();
    rt.block_on(tokio::time::sleep(steady));
    let cpu = cpu_time().saturating_sub(cpu0);
    let wall = w0.elapsed();
    let errors = rcvbuf_errors() - errors0;
    let still = converged(&nodes, n);
    let per_node_s = cpu.as_secs_f64() * 1e6 / (n as f64 * wall.as_secs_f64());
    let per_member = resident.saturating_sub(fixed * n as u64) as f64 / (n * (n - 1)) as f64;
    println!(
        "nodes={n} workers={workers} join_s={:.2} cpu_us_per_node_s={per_node_s:.1} idle_us_per_node_s={idle_us:.1} fixed_kb_per_node={:.1} rss_b_per_member={per_member:.0} rss_mb={:.1} rcvbuf_errors={errors} still_converged={still}",
        join.as_secs_f64(),
        fixed as f64 / 1024.0,
        resident as f64 / 1e6,
    );
    for h in &nodes {
        h.abort();
    }
}

fn main() {
    let args = parse_args();
    STRATEGY.get_or_init(|| args.strategy.clone());
    if let Some(n) = args.idle_child {
        idle_child(n, args.workers, args.steady);
        return;
    }
    for &n in &args.nodes {
        run(n.max(2), args.workers, args.steady);
    }
}
