//! Multi-process: real `rumor-node` processes on 127.0.0.1, signalled with `kill`.
//! SIGKILL → dead at every peer within the bound the config implies; SIGSTOP for half
//! of `acceptable_pause` → never dead; SIGSTOP for twice → the verdict is reported and
//! the node comes back; SIGTERM → `/readyz` 503 before exit, peers see Left.
//!
//! Cargo builds the binary before this test (Unix only: it signals processes).
#![cfg(unix)]
// Real processes run on the wall clock: the core's clock bans do not apply here.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rumor::detector::{PhiDetector, PhiParams};
use rumor::{Config, Time};
use serde_json::Value;

type Lines = Arc<Mutex<Vec<(Instant, Value)>>>;

/// One `node` process; killed when dropped.
struct Proc {
    name: String,
    child: Child,
    lines: Lines,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", self.name);
    }

    /// The first line at or after `since` matching `pred`, waiting up to `limit`.
    fn wait_line(
        &self,
        since: Instant,
        limit: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<(Instant, Value)> {
        let end = Instant::now() + limit;
        loop {
            if let Some(hit) = self.find(since, &pred) {
                return Some(hit);
            }
            if Instant::now() >= end {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn find(&self, since: Instant, pred: &impl Fn(&Value) -> bool) -> Option<(Instant, Value)> {
        let lines = self.lines.lock().ok()?;
        lines.iter().find(|(t, v)| *t >= since && pred(v)).cloned()
    }

    /// Every line since `since`, for a failure message.
    fn dump(&self, since: Instant) -> String {
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        lines
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(t, v)| format!("\n  +{:?} {v}", t.duration_since(since)))
            .collect()
    }

    fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.lines
            .lock()
            .map(|l| l.iter().filter(|(_, v)| pred(v)).count())
            .unwrap_or(0)
    }

    fn addr(&self) -> String {
        let (_, v) = self
            .wait_line(
                Instant::now() - Duration::from_secs(60),
                Duration::from_secs(10),
                |v| v["event"] == "started",
            )
            .unwrap_or_else(|| panic!("{} never started", self.name));
        v["addr"].as_str().expect("addr").to_string()
    }
}

/// The `rumor-node` binary cargo built for this test.
fn node_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rumor-node"))
}

fn ev(event: &'static str, member: &str) -> impl Fn(&Value) -> bool {
    let member = member.to_string();
    move |v: &Value| v["event"] == event && v["member"] == member.as_str()
}

/// The protocol settings every process of one test runs with.
struct Setup {
    label: String,
    cfg: Config,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let mut cfg = Config::local();
        cfg.probe_interval = Duration::from_millis(300);
        cfg.probe_timeout = Duration::from_millis(100);
        cfg.acceptable_pause = Duration::from_millis(1500);
        cfg.gossip_interval = Duration::from_millis(50);
        cfg.join_retry_interval = Duration::from_millis(200);
        Setup {
            label: label.to_string(),
            cfg,
        }
    }

    fn args(&self) -> Vec<String> {
        let c = &self.cfg;
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        [
            "--preset=local".to_string(),
            format!("--set=cluster_label={}", self.label),
            format!("--set=probe_interval={}", ms(c.probe_interval)),
            format!("--set=probe_timeout={}", ms(c.probe_timeout)),
            format!("--set=acceptable_pause={}", ms(c.acceptable_pause)),
            format!("--set=gossip_interval={}", ms(c.gossip_interval)),
            format!("--set=join_retry_interval={}", ms(c.join_retry_interval)),
        ]
        .into()
    }

    /// Silence to convict at a steady probe rhythm, as the config implies.
    fn convict_silence(&self) -> Duration {
        let c = &self.cfg;
        let mut d = PhiDetector::new(&PhiParams {
            window: c.phi_window,
            min_std_dev: c.min_std_dev,
            acceptable_pause: c.acceptable_pause,
            first_interval: c.probe_interval,
        });
        for i in 0..=c.phi_window as u32 {
            d.heartbeat(Time::ZERO + c.probe_interval * i);
        }
        d.silence_for(c.phi_convict, true)
    }

    fn spawn(&self, bin: &PathBuf, name: &str, seeds: &[String], extra: &[String]) -> Proc {
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--name={name}"))
            .arg("--bind=127.0.0.1:0")
            .args(self.args())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if !seeds.is_empty() {
            cmd.arg(format!("--seeds={}", seeds.join(",")));
        }
        let mut child = cmd.spawn().expect("spawn node");
        let lines: Lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Ok(mut l) = sink.lock()
                {
                    l.push((Instant::now(), v));
                }
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// `n` processes, all joined through the first, each seeing the others joined.
    fn cluster(&self, bin: &PathBuf, n: usize, extra: impl Fn(usize) -> Vec<String>) -> Vec<Proc> {
        let first = self.spawn(bin, &format!("{}-0", self.label), &[], &extra(0));
        let seed = first.addr();
        let mut procs = vec![first];
        for i in 1..n {
            let name = format!("{}-{i}", self.label);
            procs.push(self.spawn(bin, &name, std::slice::from_ref(&seed), &extra(i)));
        }
        let t0 = Instant::now() - Duration::from_secs(60);
        for p in &procs {
            for q in &procs {
                if p.name != q.name {
                    p.wait_line(t0, Duration::from_secs(10), ev("joined", &q.name))
                        .unwrap_or_else(|| panic!("{} never saw {} join", p.name, q.name));
                }
            }
        }
        procs
    }
}

#[test]
fn sigkill_is_dead_at_every_peer_within_the_configured_bound() {
    let bin = node_binary();
    let setup = Setup::new("pkill");
    // Silence alone: the refusal path has a test of its own below.
    let procs = setup.cluster(&bin, 4, |_| vec!["--refusals=off".to_string()]);
    // Let the detectors learn the rhythm.
    thread::sleep(Duration::from_secs(2));
    let victim = &procs[2];
    let t_kill = Instant::now();
    victim.signal("-KILL");
    // The last ack came up to one period before the kill; then the monitor's
    // ping, its timeout and the indirect round; then gossip.
    let c = &setup.cfg;
    let bound = setup.convict_silence()
        + c.probe_interval * 2
        + c.probe_timeout * 2
        + Duration::from_secs(2);
    let mut times = Vec::new();
    for p in procs.iter().filter(|p| p.name != victim.name) {
        let (t, v) = p
            .wait_line(
                t_kill,
                bound + Duration::from_secs(5),
                ev("dead", &victim.name),
            )
            .unwrap_or_else(|| panic!("{} never declared {} dead", p.name, victim.name));
        assert_eq!(v["cause"], "silence");
        times.push(t - t_kill);
    }
    let worst = times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "SIGKILL -> dead at every peer: {:?} (per peer {:?}); config implies {:.2} s of silence, bound {:?}",
        worst,
        times,
        setup.convict_silence().as_secs_f64(),
        bound
    );
    assert!(worst <= bound, "{worst:?} > {bound:?}");
}

#[test]
fn sigstop_below_acceptable_pause_is_never_dead_and_above_is_reported() {
    let bin = node_binary();
    let setup = Setup::new("pstop");
    let procs = setup.cluster(&bin, 4, |_| Vec::new());
    thread::sleep(Duration::from_secs(2));
    let paused = &procs[1];
    let others: Vec<&Proc> = procs.iter().filter(|p| p.name != paused.name).collect();
    let pause = setup.cfg.acceptable_pause;

    // Half the acceptable pause: suspected maybe, never dead.
    let t0 = Instant::now();
    paused.signal("-STOP");
    thread::sleep(pause / 2);
    paused.signal("-CONT");
    thread::sleep(Duration::from_secs(4));
    let dead_half: usize = others
        .iter()
        .filter(|o| o.find(t0, &ev("dead", &paused.name)).is_some())
        .count();
    let suspected_half: usize = others
        .iter()
        .filter(|o| o.find(t0, &ev("suspected", &paused.name)).is_some())
        .count();
    eprintln!(
        "SIGSTOP {:?} (0.5 x acceptable_pause): suspected by {suspected_half}/3, dead at {dead_half}/3",
        pause / 2
    );
    assert_eq!(dead_half, 0, "a pause below acceptable_pause was convicted");

    // Twice the acceptable pause: whatever the verdict, the node comes back alive at a
    // higher incarnation everywhere once it resumes.
    let t1 = Instant::now();
    paused.signal("-STOP");
    thread::sleep(pause * 2);
    // Taken before the signal: the resumed process answers (and its peers print) while
    // `kill` is still returning, and an event stamped before `resumed` would be missed.
    let resumed = Instant::now();
    paused.signal("-CONT");
    let dead_twice: usize = others
        .iter()
        .filter(|o| o.find(t1, &ev("dead", &paused.name)).is_some())
        .count();
    for o in &others {
        let back = o.wait_line(resumed, Duration::from_secs(10), |v| {
            (v["event"] == "alive" || v["event"] == "joined") && v["member"] == paused.name.as_str()
        });
        if dead_twice > 0 || o.find(t1, &ev("suspected", &paused.name)).is_some() {
            assert!(
                back.is_some(),
                "{} never saw {} again\n{}: {}\n{}: {}",
                o.name,
                paused.name,
                o.name,
                o.dump(t1),
                paused.name,
                paused.dump(t1)
            );
        }
    }
    eprintln!(
        "SIGSTOP {:?} (2 x acceptable_pause): dead at {dead_twice}/3, then back alive everywhere",
        pause * 2
    );
    assert!(paused.count(|v| v["event"] == "refuted") >= 1);
}

#[test]
fn sigterm_answers_503_before_exit_and_peers_see_left() {
    use std::io::{Read, Write};
    let bin = node_binary();
    let setup = Setup::new("pterm");
    // A free TCP port for the leaver's HTTP server.
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let procs = setup.cluster(&bin, 3, |i| {
        if i == 2 {
            vec![format!("--http={http}"), "--drain=1500ms".to_string()]
        } else {
            Vec::new()
        }
    });
    let get = |path: &str| -> Option<u16> {
        let mut s = std::net::TcpStream::connect_timeout(&http, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.split_whitespace().nth(1)?.parse().ok()
    };
    let ready = (0..250).any(|_| {
        thread::sleep(Duration::from_millis(20));
        get("/readyz") == Some(200)
    });
    assert!(ready, "/readyz never answered 200");
    let leaver = &procs[2];
    let t_term = Instant::now();
    leaver.signal("-TERM");
    let mut saw_503 = None;
    for _ in 0..100 {
        match get("/readyz") {
            Some(503) => {
                saw_503 = Some(t_term.elapsed());
                break;
            }
            Some(_) => thread::sleep(Duration::from_millis(10)),
            None => break, // gone already: the 503 was missed
        }
    }
    let saw_503 = saw_503.expect("/readyz answered 503 before the process exited");
    assert_eq!(get("/livez"), Some(200), "liveness stays up while draining");
    let stopped = leaver
        .wait_line(t_term, Duration::from_secs(10), |v| v["event"] == "stopped")
        .expect("the leaver exits after the drain");
    assert_eq!(stopped.1["reason"], "left");
    for p in procs.iter().take(2) {
        p.wait_line(t_term, Duration::from_secs(10), ev("left", &leaver.name))
            .unwrap_or_else(|| panic!("{} never saw {} leave", p.name, leaver.name));
        assert!(p.find(t_term, &ev("dead", &leaver.name)).is_none());
    }
    eprintln!(
        "SIGTERM: /readyz 503 after {saw_503:?}, stopped after {:?}, peers saw Left",
        stopped.0 - t_term
    );
}

/// Issue 7's headline on real processes: with `acceptable_pause` = 8 s, a SIGKILLed
/// process (its port closed, so the kernel refuses what peers send it) is dead at every
/// peer within 3 s, while a process SIGSTOPped for 6 s is convicted by nobody.
#[test]
fn sigkill_is_dead_within_3s_and_a_6s_sigstop_never_at_acceptable_pause_8s() {
    let bin = node_binary();
    let mut setup = Setup::new("pcrash");
    setup.cfg = Config::local();
    setup.cfg.acceptable_pause = Duration::from_secs(8);
    setup.cfg.join_retry_interval = Duration::from_millis(200);
    let procs = setup.cluster(&bin, 5, |_| Vec::new());
    thread::sleep(Duration::from_secs(3));

    let stopped = &procs[1];
    let t_stop = Instant::now();
    stopped.signal("-STOP");
    thread::sleep(Duration::from_secs(1));

    let victim = &procs[3];
    let t_kill = Instant::now();
    victim.signal("-KILL");
    let mut times = Vec::new();
    for p in procs
        .iter()
        .filter(|p| p.name != victim.name && p.name != stopped.name)
    {
        let (t, v) = p
            .wait_line(t_kill, Duration::from_secs(6), ev("dead", &victim.name))
            .unwrap_or_else(|| panic!("{} never declared {} dead", p.name, victim.name));
        assert_eq!(v["cause"], "refused", "{}: {v}", p.name);
        times.push(t - t_kill);
    }
    let worst = times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "SIGKILL at acceptable_pause 8 s -> dead at every running peer: {worst:?} (per peer {times:?})"
    );
    assert!(worst <= Duration::from_secs(3), "{worst:?} > 3 s");

    // Hold the stop to 6 s, then let it catch up.
    let held = t_stop.elapsed();
    if held < Duration::from_secs(6) {
        thread::sleep(Duration::from_secs(6) - held);
    }
    stopped.signal("-CONT");
    thread::sleep(Duration::from_secs(3));
    let convicted: Vec<&str> = procs
        .iter()
        .filter(|p| p.name != victim.name && p.name != stopped.name)
        .filter(|p| p.find(t_stop, &ev("dead", &stopped.name)).is_some())
        .map(|p| p.name.as_str())
        .collect();
    eprintln!("SIGSTOP 6 s at acceptable_pause 8 s -> dead at {convicted:?}");
    assert!(
        convicted.is_empty(),
        "a 6 s stop was convicted by {convicted:?}"
    );
}

/// The lateness histogram on `/metrics` is a Prometheus histogram with rumor's fixed
/// buckets: a real 1.5 s SIGSTOP lands in the (1 s, 2 s] bucket, where the exporter's
/// default summary showed only quantile="1" = 0.005 with the stall hidden in `_sum`.
#[test]
fn a_sigstop_shows_in_the_right_lateness_bucket() {
    use std::io::{Read, Write};
    let bin = node_binary();
    let setup = Setup::new("pbucket");
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let procs = setup.cluster(&bin, 1, |_| vec![format!("--http={http}")]);
    let metrics = || -> Option<String> {
        let mut s = std::net::TcpStream::connect_timeout(&http, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        Some(text)
    };
    // `rumor_timer_lateness_seconds_bucket{...,le="B"} N`: N for bound B.
    let bucket = |text: &str, le: &str| -> Option<u64> {
        text.lines()
            .find(|l| {
                l.starts_with("rumor_timer_lateness_seconds_bucket")
                    && l.contains(&format!("le=\"{le}\""))
            })
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
    };
    let before = (0..250)
        .find_map(|_| {
            thread::sleep(Duration::from_millis(20));
            metrics().filter(|t| bucket(t, "2").is_some())
        })
        .expect("/metrics never showed the lateness histogram");
    let in_1_to_2 = |t: &str| bucket(t, "2").unwrap_or(0) - bucket(t, "1").unwrap_or(0);
    let base = in_1_to_2(&before);
    assert!(before.contains("rumor_observed_seconds_total"), "{before}");
    procs[0].signal("-STOP");
    thread::sleep(Duration::from_millis(1500));
    procs[0].signal("-CONT");
    let after = (0..100)
        .find_map(|_| {
            thread::sleep(Duration::from_millis(50));
            metrics().filter(|t| in_1_to_2(t) > base)
        })
        .expect("the 1.5 s stop never reached the (1 s, 2 s] bucket");
    // Nothing that long before the stop, and nothing in the buckets above it.
    assert_eq!(base, 0);
    assert_eq!(
        bucket(&after, "5"),
        bucket(&after, "2"),
        "a longer stall than the stop"
    );
    eprintln!(
        "SIGSTOP 1.5 s: (1 s, 2 s] bucket {base} -> {}",
        in_1_to_2(&after)
    );
}
