//! The tokio runtime over real UDP on 127.0.0.1: several nodes in one process with
//! short periods. Every wait is bounded and polls for its condition, so the tests hold
//! on a loaded 2-core machine; each finishes well under 20 s.
#![cfg(feature = "tokio")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use rumor::{Config, Event, Handle, HandleError, Lagged, MemberState, RuntimeBuilder};
use support::*;
use tokio::time::{Instant, sleep, timeout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_metadata_and_broadcasts_spread() {
    let nodes = cluster("join", 10).await;
    let took = wait_for("all 10 nodes to see each other alive", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    eprintln!("10 nodes converged in {took:?}");
    wait_for("startup and readiness everywhere", JOIN_LIMIT, || {
        for n in &nodes {
            let h = n.health();
            for c in [h.liveness(), h.readiness(), h.startup()] {
                if !c.ok {
                    return Err(format!("{}: {}", n.name(), c.reason));
                }
            }
        }
        Ok(())
    })
    .await;

    // Metadata: a new incarnation gossiped to everyone.
    let mut streams: Vec<_> = nodes.iter().map(Handle::events).collect();
    let before = nodes[3].local_member().incarnation;
    nodes[3]
        .set_metadata(&b"zone=b"[..])
        .await
        .expect("metadata");
    assert!(nodes[3].local_member().incarnation > before);
    assert_eq!(&nodes[3].local_member().metadata[..], b"zone=b");
    let took = wait_for("metadata to reach every node", JOIN_LIMIT, || {
        for n in &nodes {
            if n.name() == nodes[3].name() {
                continue;
            }
            let m = n
                .members()
                .into_iter()
                .find(|m| m.name() == nodes[3].name());
            match m {
                Some(m) if &m.metadata[..] == b"zone=b" => {}
                other => return Err(format!("{} sees {other:?}", n.name())),
            }
        }
        Ok(())
    })
    .await;
    eprintln!("metadata spread in {took:?}");
    let too_big = vec![0u8; 10_000];
    assert!(matches!(
        nodes[3].set_metadata(too_big).await,
        Err(HandleError::Command(_))
    ));

    // A user broadcast reaches every other node exactly once.
    nodes[5].broadcast(&b"hello"[..]).await.expect("broadcast");
    let deadline = Instant::now() + JOIN_LIMIT;
    for (i, s) in streams.iter_mut().enumerate() {
        if i == 5 {
            continue;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = timeout(left, s.next())
                .await
                .unwrap_or_else(|_| panic!("node {i} never got the broadcast"));
            match ev {
                Some(Ok(Event::Broadcast { origin, payload })) => {
                    assert_eq!(origin, nodes[5].id());
                    assert_eq!(&payload[..], b"hello");
                    break;
                }
                Some(_) => continue,
                None => panic!("node {i}'s stream ended"),
            }
        }
    }
    for n in &nodes {
        assert_eq!(n.runtime_stats().send_errors, 0, "{}", n.name());
        assert!(n.stats().packets_in > 0);
        n.abort();
    }
}

/// A crash: the victim's driver stops without a word and its socket closes, so the
/// kernel answers the survivors' datagrams with ICMP port unreachable. With refusals on
/// (Linux), that convicts in `refusal_window`, far inside `acceptable_pause`; with them
/// off, silence convicts after `acceptable_pause`.
async fn crash_case(label: &str, refusals: bool) {
    let mut cfg = fast_config(label);
    if refusals {
        cfg.acceptable_pause = Duration::from_secs(6);
        cfg.refusal_window = Duration::from_millis(300);
    }
    let first = builder(&format!("{label}-0"), &cfg, &[])
        .refusals(refusals)
        .start()
        .await
        .expect("start");
    let seed = first.advertise_addr();
    let mut nodes = vec![first];
    for i in 1..6 {
        let b = builder(&format!("{label}-{i}"), &cfg, &[seed]).refusals(refusals);
        nodes.push(b.start().await.expect("start"));
    }
    wait_for("6 nodes to converge", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    let mut streams: Vec<_> = nodes.iter().map(Handle::events).collect();
    let victim = &nodes[4];
    victim.abort();
    timeout(Duration::from_secs(5), victim.stopped())
        .await
        .expect("driver stops on cancel");
    assert!(!victim.health().liveness().ok);
    let survivors: Vec<&Handle> = nodes.iter().filter(|n| n.name() != victim.name()).collect();
    let took = wait_for(
        "every survivor to declare the victim dead",
        JOIN_LIMIT,
        || {
            for s in &survivors {
                let st = state_of(s, victim.name());
                if st != Some(MemberState::Dead) {
                    return Err(format!("{} sees {:?}", s.name(), st));
                }
            }
            Ok(())
        },
    )
    .await;
    eprintln!("crash (refusals {refusals}) detected by all 5 survivors in {took:?}");
    let linux_refusals = refusals && cfg!(target_os = "linux");
    if linux_refusals {
        assert!(
            took < cfg.acceptable_pause,
            "refusals did not beat the silence path: {took:?}"
        );
    }
    // The survivors' streams saw it die, and nobody else was convicted.
    for (i, s) in streams.iter_mut().enumerate() {
        if i == 4 {
            continue;
        }
        let mut causes = Vec::new();
        while let Some(item) = s.try_next() {
            if let Ok(Event::MemberDead { member, cause }) = item {
                assert_eq!(member.name(), victim.name(), "a live node was convicted");
                causes.push(cause);
            }
        }
        assert_eq!(causes.len(), 1, "node {i}'s stream: {causes:?}");
        if !refusals {
            assert_eq!(causes[0], rumor::Cause::Silence);
        }
    }
    if linux_refusals {
        let by_refusal: u64 = survivors
            .iter()
            .map(|s| s.stats().refusal_convictions)
            .sum();
        let reported: u64 = survivors.iter().map(|s| s.runtime_stats().refusals).sum();
        assert!(reported > 0, "no refusal was read from the error queue");
        let proven: u64 = survivors
            .iter()
            .map(|s| s.stats().refusals - s.stats().refusals_unverified)
            .sum();
        assert!(proven > 0, "no refusal's quote matched a probe sent");
        assert!(by_refusal > 0, "no survivor convicted by refusal");
    }
    all_alive(&survivors).expect("survivors still see each other alive");
    for n in &nodes {
        n.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_process_is_convicted_by_refusal_within_the_window() {
    crash_case("crash-refused", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_refusals_a_crash_is_convicted_by_silence() {
    crash_case("crash-silent", false).await;
}

/// Two nodes, one crashes: every datagram the survivor sends it is refused, and no
/// datagram arrives from anywhere to wake the survivor's socket. The refusal must still
/// be read at once (the driver drains the error queue when the socket reports the
/// pending error on its next call, rather than only on error readiness, which tokio
/// does not always report beside a pending `recv_from`): suspected within one period of
/// the crash, convicted a `refusal_window` later, far inside `acceptable_pause`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_read_with_no_other_traffic() {
    let mut cfg = fast_config("refusal-alone");
    cfg.acceptable_pause = Duration::from_secs(6);
    cfg.refusal_window = Duration::from_millis(300);
    let a = builder("refusal-alone-a", &cfg, &[])
        .refusals(true)
        .start()
        .await
        .expect("start");
    let b = builder("refusal-alone-b", &cfg, &[a.advertise_addr()])
        .refusals(true)
        .start()
        .await
        .expect("start");
    wait_for("two nodes to converge", JOIN_LIMIT, || all_alive(&[&a, &b])).await;
    // A few periods of history for the detectors.
    sleep(Duration::from_secs(1)).await;
    b.abort();
    timeout(Duration::from_secs(5), b.stopped())
        .await
        .expect("driver stops on cancel");
    let took = wait_for(
        "the survivor to convict",
        Duration::from_secs(5),
        || match state_of(&a, b.name()) {
            Some(MemberState::Dead) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    eprintln!("alone: convicted by refusal after {took:?}");
    if cfg!(target_os = "linux") {
        assert!(
            a.stats().refusal_convictions >= 1,
            "not by refusal: {:?}",
            a.stats()
        );
        // The kernel's quote of the refused probe proved it (refusals of other
        // datagrams, which carry no token, may go unverified).
        let s = a.stats();
        assert!(
            s.refusals > s.refusals_unverified,
            "no refusal proved itself: {s:?}"
        );
        // One period to the first refused ping, the window, and slack for a loaded
        // machine: still well under the silence path's 6 s.
        let bound = cfg.probe_interval + cfg.refusal_window + Duration::from_secs(1);
        assert!(took < bound, "convicted after {took:?}, bound {bound:?}");
    }
    a.abort();
}

/// Linux fails the send after a refused datagram with that refusal (the socket's
/// pending error, set for every destination once `IP_RECVERR` is on), and does not send
/// it. The driver must send it anyway: here the join to a live seed follows the join to
/// a closed port, and must arrive long before the join is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_datagram_does_not_cost_the_next_one() {
    let mut cfg = fast_config("refused-next");
    cfg.join_retry_interval = Duration::from_secs(10);
    let closed = std::net::UdpSocket::bind(localhost()).expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let seed = tokio::net::UdpSocket::bind(localhost())
        .await
        .expect("bind");
    let seed_addr = seed.local_addr().expect("addr");
    let node = builder("refused-next-a", &cfg, &[closed_addr, seed_addr])
        .refusals(true)
        .start()
        .await
        .expect("start");
    let mut buf = [0u8; 2048];
    let got = timeout(Duration::from_secs(2), seed.recv_from(&mut buf)).await;
    let (_, from) = got
        .expect("the join to the live seed was lost behind the refused one")
        .expect("recv");
    assert_eq!(from, node.advertise_addr());
    // The driver publishes its counters after the whole flush, which may be after the
    // seed read the datagram: wait (bounded) for the publication.
    let deadline = Instant::now() + Duration::from_secs(2);
    while node.runtime_stats().send_retries == 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let rt = node.runtime_stats();
    assert_eq!(rt.send_errors, 0, "{rt:?}");
    if cfg!(target_os = "linux") {
        assert!(rt.send_retries >= 1, "no send was retried: {rt:?}");
    }
    node.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_and_drain_is_seen_as_left_never_dead() {
    let nodes = cluster("leave", 6).await;
    wait_for("6 nodes to converge", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    wait_for("the leaver to be ready", JOIN_LIMIT, || {
        let r = nodes[2].health().readiness();
        if r.ok { Ok(()) } else { Err(r.reason) }
    })
    .await;
    let mut streams: Vec<_> = nodes.iter().map(Handle::events).collect();
    let leaver = nodes[2].clone();
    let drain = Duration::from_millis(600);
    let t0 = Instant::now();
    let task = tokio::spawn({
        let leaver = leaver.clone();
        async move { leaver.leave_and_drain(drain).await }
    });
    // Readiness goes false at once, while the node is still running and alive to peers.
    wait_for("readiness to go false", Duration::from_secs(2), || {
        let r = leaver.health().readiness();
        if r.ok {
            Err("still ready".into())
        } else {
            Ok(())
        }
    })
    .await;
    let r = leaver.health().readiness();
    assert!(r.reason.starts_with("not_leaving"), "{}", r.reason);
    assert!(
        leaver.health().liveness().ok,
        "liveness must not follow readiness"
    );
    assert!(
        t0.elapsed() < drain,
        "readiness went false only after the drain"
    );
    assert_eq!(
        state_of(&nodes[0], leaver.name()),
        Some(MemberState::Alive),
        "peers must not hear Leave before the drain delay"
    );
    timeout(Duration::from_secs(10), task)
        .await
        .expect("leave_and_drain returns within drain + leave_timeout")
        .expect("task")
        .expect("leave_and_drain");
    assert!(t0.elapsed() >= drain);
    assert!(leaver.is_stopped());
    assert!(matches!(
        leaver.set_metadata(&b"x"[..]).await,
        Err(HandleError::Stopped)
    ));
    let others: Vec<&Handle> = nodes.iter().filter(|n| n.name() != leaver.name()).collect();
    let took = wait_for("every other node to see Left", JOIN_LIMIT, || {
        for o in &others {
            let st = state_of(o, leaver.name());
            if st != Some(MemberState::Left) {
                return Err(format!("{} sees {:?}", o.name(), st));
            }
        }
        Ok(())
    })
    .await;
    eprintln!("leave seen by all 5 in {took:?} after leave_and_drain returned");
    // Keep running a while: Left must stay Left (no conviction of a departed member).
    sleep(Duration::from_millis(1500)).await;
    for (i, s) in streams.iter_mut().enumerate() {
        if i == 2 {
            continue;
        }
        let mut saw_left = false;
        while let Some(item) = s.try_next() {
            match item {
                Ok(Event::MemberDead { member, .. }) => {
                    panic!("node {i} declared {} dead", member.name())
                }
                Ok(Event::MemberLeft(m)) => {
                    assert_eq!(m.name(), leaver.name());
                    saw_left = true;
                }
                _ => {}
            }
        }
        assert!(saw_left, "node {i} never got MemberLeft");
        assert_eq!(state_of(&nodes[i], leaver.name()), Some(MemberState::Left));
    }
    for n in &nodes {
        n.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reports_lag() {
    let cfg = fast_config("lag");
    let slow = builder("lag-0", &cfg, &[])
        .event_capacity(2)
        .start()
        .await
        .expect("start");
    let mut unread = slow.events();
    let seed = slow.advertise_addr();
    let mut nodes = vec![slow.clone()];
    for i in 1..6 {
        nodes.push(start(&format!("lag-{i}"), &cfg, &[seed]).await);
    }
    wait_for("5 joins seen", JOIN_LIMIT, || {
        let n = slow.members().len();
        if n == 5 {
            Ok(())
        } else {
            Err(format!("{n} members"))
        }
    })
    .await;
    // Five joins (at least) went into a buffer of two: the stream says so first.
    let first = timeout(Duration::from_secs(5), unread.next())
        .await
        .expect("an item is buffered");
    match first {
        Some(Err(Lagged(n))) => assert!(n >= 3, "lagged by {n}"),
        other => panic!("expected Lagged first, got {other:?}"),
    }
    // Then the newest events, still in order.
    let next = timeout(Duration::from_secs(5), unread.next())
        .await
        .expect("an item is buffered");
    assert!(matches!(next, Some(Ok(_))), "{next:?}");
    // A stream opened now starts empty and ends when the driver stops.
    let mut fresh = slow.events();
    assert!(fresh.try_next().is_none());
    slow.abort();
    let end = timeout(Duration::from_secs(5), async {
        while fresh.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the stream ends when the driver stops");
    for n in &nodes {
        n.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_before_join_and_after_stop() {
    let cfg = fast_config("boot");
    // A seed that never answers: a bound socket nobody reads.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let seed = silent.local_addr().expect("addr");
    let n = start("boot-0", &cfg, &[seed]).await;
    sleep(Duration::from_millis(500)).await;
    let h = n.health();
    assert!(h.liveness().ok, "{}", h.liveness().reason);
    let startup = h.startup();
    assert!(!startup.ok);
    assert!(startup.reason.starts_with("joined"), "{}", startup.reason);
    let ready = h.readiness();
    assert!(!ready.ok);
    assert!(ready.reason.starts_with("joined"), "{}", ready.reason);
    assert!(h.readiness().verbose("readyz").contains("[-]joined failed"));
    assert!(n.members().is_empty());
    // Join retries went to the silent seed.
    assert!(n.stats().packets_out >= 2, "{:?}", n.stats());
    n.abort();
    timeout(Duration::from_secs(5), n.stopped())
        .await
        .expect("stops");
    let live = n.health().liveness();
    assert!(
        !live.ok && live.reason.contains("stopped"),
        "{}",
        live.reason
    );
    assert!(matches!(
        n.leave_and_drain(Duration::ZERO).await,
        Err(HandleError::Stopped)
    ));
    assert!(n.stall_histogram().count() > 0, "timers were measured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_is_suspected_and_refutes_but_never_dies() {
    let nodes = cluster("freeze", 5).await;
    wait_for("5 nodes to converge", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    // Let the detectors learn the rhythm.
    sleep(Duration::from_secs(1)).await;
    let mut streams: Vec<_> = nodes.iter().map(Handle::events).collect();
    let frozen = &nodes[1];
    let inc = frozen.local_member().incarnation;
    // Well under acceptable_pause (1 s) + the convict margin, above the suspect point.
    frozen
        .freeze(Duration::from_millis(700))
        .await
        .expect("freeze");
    sleep(Duration::from_millis(700)).await;
    wait_for("the frozen node to be alive everywhere", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    sleep(Duration::from_secs(2)).await;
    let mut suspicions = 0;
    for (i, s) in streams.iter_mut().enumerate() {
        while let Some(item) = s.try_next() {
            match item {
                Ok(Event::MemberDead { member, .. }) => {
                    panic!(
                        "node {i} declared {} dead after a 700 ms pause",
                        member.name()
                    )
                }
                Ok(Event::MemberSuspected { member, .. }) if member.name() == frozen.name() => {
                    suspicions += 1;
                }
                _ => {}
            }
        }
    }
    assert!(
        suspicions > 0,
        "a 700 ms silence at a 200 ms period is suspected"
    );
    assert!(frozen.stats().refutations > 0, "and refuted");
    assert!(frozen.local_member().incarnation > inc);
    let hist = frozen.stall_histogram();
    // A freeze stops the driver, not the process, so the process's stall clock does
    // not see it: the driver measures it itself, as the lateness of the first node
    // timer due in it, within one probe interval (200 ms) of its length.
    assert!(
        hist.max() >= Duration::from_millis(450),
        "the freeze shows as timer lateness: {:?}",
        hist.max()
    );
    assert!(frozen.stats().stalls_detected >= 1);
    eprintln!(
        "frozen node: incarnation {inc} -> {}, refutations {}, max lateness {:?}",
        frozen.local_member().incarnation,
        frozen.stats().refutations,
        hist.max()
    );
    for n in &nodes {
        n.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_works_when_available() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    }
    let cfg = fast_config("v6");
    let any: SocketAddr = "[::1]:0".parse().expect("addr");
    let a = RuntimeBuilder::new("v6-a")
        .bind(any)
        .config(cfg.clone())
        .start()
        .await
        .expect("start a");
    let b = RuntimeBuilder::new("v6-b")
        .bind(any)
        .seeds([a.advertise_addr()])
        .config(cfg)
        .start()
        .await
        .expect("start b");
    assert!(a.advertise_addr().is_ipv6());
    wait_for("two IPv6 nodes to meet", JOIN_LIMIT, || {
        all_alive(&[&a, &b])
    })
    .await;
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unspecified_advertise_address_is_refused() {
    let e = RuntimeBuilder::new("x")
        .bind("0.0.0.0:0".parse().expect("addr"))
        .start()
        .await
        .expect_err("0.0.0.0 cannot be advertised");
    assert!(
        matches!(e, rumor::StartError::UnspecifiedAdvertise(_)),
        "{e}"
    );
    let mut bad = Config::local();
    bad.probe_timeout = Duration::from_secs(5);
    let e = RuntimeBuilder::new("x")
        .bind(localhost())
        .config(bad)
        .start()
        .await
        .expect_err("invalid config");
    assert!(e.to_string().contains("probe_timeout"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_packets_over_udp_and_a_wrong_key_stays_out() {
    let mut cfg = fast_config("sealed");
    cfg.keyring = rumor::Keyring::new(rumor::Key::from_bytes([3; 32]));
    let a = start("sealed-0", &cfg, &[]).await;
    let b = start("sealed-1", &cfg, &[a.advertise_addr()]).await;
    wait_for("the keyed pair to converge", JOIN_LIMIT, || {
        all_alive(&[&a, &b])
    })
    .await;
    let mut wrong = cfg.clone();
    wrong.keyring = rumor::Keyring::new(rumor::Key::from_bytes([4; 32]));
    let c = start("sealed-2", &wrong, &[a.advertise_addr()]).await;
    wait_for("the wrong key to be refused", JOIN_LIMIT, || {
        if a.stats().auth_failures > 0 {
            Ok(())
        } else {
            Err("no authentication failure yet".into())
        }
    })
    .await;
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        state_of(&a, "sealed-2"),
        None,
        "a member with the wrong key got in"
    );
    assert!(c.members().iter().all(|m| m.name() != "sealed-0"));
    // Rotation through the handle: add and use a new key on both.
    let k = rumor::Key::from_bytes([5; 32]);
    for h in [&a, &b] {
        h.keyring_add(k.clone()).await.expect("add");
    }
    for h in [&a, &b] {
        h.keyring_use(k.clone()).await.expect("use");
    }
    let old = rumor::Key::from_bytes([3; 32]);
    for h in [&a, &b] {
        h.keyring_remove(old.clone()).await.expect("remove");
    }
    sleep(Duration::from_secs(1)).await;
    all_alive(&[&a, &b]).expect("the pair survives the rotation");
    for h in [&a, &b, &c] {
        h.abort();
    }
}

/// Two nodes never share a port: a second bind to a taken address fails, and many
/// binds to port 0 get distinct ports. With `SO_REUSEADDR` Linux allowed both, and the
/// socket bound last received everything sent to the shared port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_an_error_and_port_zero_never_repeats() {
    let cfg = fast_config("port");
    let first = start("port-0", &cfg, &[]).await;
    let taken = first.local_addr();
    let second = RuntimeBuilder::new("port-1")
        .bind(taken)
        .config(cfg.clone())
        .start()
        .await;
    assert!(
        matches!(second, Err(rumor::StartError::Bind { addr, .. }) if addr == taken),
        "a second node bound {taken}: {second:?}"
    );
    first.abort();
    let mut nodes = Vec::new();
    for i in 0..200 {
        nodes.push(start(&format!("port-n{i}"), &cfg, &[]).await);
    }
    let mut ports: Vec<u16> = nodes.iter().map(|n| n.local_addr().port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(
        ports.len(),
        nodes.len(),
        "two of 200 nodes on 127.0.0.1:0 share a port"
    );
    for n in &nodes {
        n.abort();
    }
}

/// The driver has no tick of its own (issue 26): an idle node wakes for its node's
/// timers only, about once per probe interval, and the process's stall clock measures
/// stalls for every node at once. With a 100 ms tick per driver an idle node woke ten
/// times a second, which made 2,000 idle nodes in one process 20,000 wake-ups a
/// second. Stalls are still measured: the clock's samples reach the histogram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_wakes_only_for_its_own_timers() {
    let mut cfg = Config::lan();
    cfg.cluster_label = "idle-wakeups".into();
    let n = start("idle-0", &cfg, &[]).await;
    sleep(Duration::from_secs(1)).await;
    let (w0, h0) = (n.runtime_stats().wakeups, n.stall_histogram().count());
    let window = Duration::from_secs(3);
    sleep(window).await;
    let (w1, h1) = (n.runtime_stats().wakeups, n.stall_histogram().count());
    let wakeups = w1 - w0;
    eprintln!(
        "idle node: {wakeups} wake-ups in {window:?}, {} stall samples",
        h1 - h0
    );
    // 1 s probe interval: about 3, plus the odd reap or push-pull.
    assert!(wakeups <= 8, "{wakeups} wake-ups in {window:?} of idleness");
    assert!(
        h1 - h0 >= 10,
        "the stall clock's samples reach the histogram"
    );
    n.abort();
}
