//! How a node starts and stops where it is deployed, over real UDP on 127.0.0.1: seeds
//! by name that resolve late or never, a bootstrap node, clusters that formed apart
//! merging, and the usual tokio shutdown wiring (cancel the token, then leave) seen as
//! Left by every peer. Startup over real HTTP when the `axum` feature is on.
#![cfg(feature = "tokio")]

mod support;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumor::{
    CancellationToken, Event, Handle, HandleError, MemberState, ResolveFuture, RuntimeBuilder,
    Seed, StartError,
};
use support::*;
use tokio::time::{Instant, sleep, timeout};

/// A resolver whose answer the test sets: the name `rumor.test` resolves to the
/// addresses held, ports included (none: "no such host"); every other name fails.
/// Counts lookups.
#[derive(Clone, Default)]
struct FakeDns {
    addrs: Arc<Mutex<Vec<SocketAddr>>>,
    lookups: Arc<AtomicU32>,
}

impl FakeDns {
    fn set(&self, addrs: &[SocketAddr]) {
        *self.addrs.lock().expect("lock") = addrs.to_vec();
    }

    fn resolver(&self) -> impl Fn(&str, u16) -> ResolveFuture + Send + Sync + 'static {
        let dns = self.clone();
        move |host: &str, _port: u16| -> ResolveFuture {
            dns.lookups.fetch_add(1, Ordering::Relaxed);
            let found: Vec<SocketAddr> = if host == "rumor.test" {
                dns.addrs.lock().expect("lock").clone()
            } else {
                Vec::new()
            };
            Box::pin(async move {
                if found.is_empty() {
                    Err(io::Error::other("no such host"))
                } else {
                    Ok(found)
                }
            })
        }
    }
}

/// A node seeded by the name `rumor.test` (and `more` seeds), resolved through `dns`.
fn named(name: &str, label: &str, dns: &FakeDns, more: &[SocketAddr]) -> RuntimeBuilder {
    let mut seeds: Vec<Seed> = more.iter().copied().map(Seed::from).collect();
    seeds.push(Seed::from("rumor.test:7946"));
    RuntimeBuilder::new(name)
        .bind(localhost())
        .seeds(seeds)
        .resolver(dns.resolver())
        .seed_retry(Duration::from_millis(200))
        .config(fast_config(label))
        .rng_seed(rumor::NodeId::from_name(name).0)
}

/// A free UDP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port()
}

fn started(h: &Handle) -> Result<(), String> {
    let s = h.health().startup();
    if s.ok { Ok(()) } else { Err(s.reason) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_name_that_resolves_late_keeps_startup_failing_then_joins() {
    let dns = FakeDns::default();
    let first = start("late-0", &fast_config("late"), &[]).await;
    // The name resolves to nothing yet: the node must not call itself a cluster.
    let joiner = named("late-1", "late", &dns, &[])
        .start()
        .await
        .expect("start");
    sleep(Duration::from_millis(1500)).await;
    let startup = joiner.health().startup();
    assert!(!startup.ok, "startup passed with no seed resolved");
    assert!(
        startup
            .reason
            .contains("rumor.test:7946 → lookup failed: no such host")
            && startup.reason.contains("attempt"),
        "{}",
        startup.reason
    );
    assert!(!joiner.health().readiness().ok);
    let tries = dns.lookups.load(Ordering::Relaxed);
    assert!(
        tries >= 3,
        "resolved {tries} times in 1.5 s at a 200 ms retry"
    );
    assert!(joiner.members().is_empty());
    // DNS starts answering: the node joins within a few retries.
    dns.set(&[first.advertise_addr()]);
    let took = wait_for("startup after DNS answers", JOIN_LIMIT, || started(&joiner)).await;
    eprintln!("joined {took:?} after the name resolved");
    wait_for("both alive", JOIN_LIMIT, || all_alive(&[&first, &joiner])).await;
    first.abort();
    joiner.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_that_are_only_this_node_do_not_make_a_cluster_unless_bootstrap() {
    let cfg = fast_config("self");
    let port = free_port();
    let own = SocketAddr::from(([127, 0, 0, 1], port));
    let alone = RuntimeBuilder::new("self-0")
        .bind(own)
        .seeds([own])
        .config(cfg.clone())
        .start()
        .await
        .expect("start");
    sleep(Duration::from_millis(600)).await;
    let s = alone.health().startup();
    assert!(!s.ok, "a node seeded only with itself reported started");
    assert!(
        s.reason.contains("no seed resolved to another node"),
        "{}",
        s.reason
    );
    alone.abort();
    alone.stopped().await;

    let port = free_port();
    let own = SocketAddr::from(([127, 0, 0, 1], port));
    let first = RuntimeBuilder::new("self-1")
        .bind(own)
        .seeds([own])
        .bootstrap(true)
        .config(cfg.clone())
        .start()
        .await
        .expect("start");
    wait_for("a bootstrap node to start alone", JOIN_LIMIT, || {
        started(&first)
    })
    .await;
    first.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_bootstrap_nodes_merge_once_the_name_resolves() {
    // Two bootstrap nodes behind one name that answers nothing at first: each forms a
    // cluster of one (a parallel StatefulSet start). Alone, each keeps resolving; once
    // DNS answers with both, they sync and merge.
    let dns = FakeDns::default();
    let a = named("apart-a", "apart", &dns, &[])
        .bootstrap(true)
        .start()
        .await
        .expect("a");
    let b = named("apart-b", "apart", &dns, &[])
        .bootstrap(true)
        .start()
        .await
        .expect("b");
    wait_for("both to start alone", JOIN_LIMIT, || {
        started(&a).and(started(&b))
    })
    .await;
    sleep(Duration::from_millis(500)).await;
    assert!(a.members().is_empty() && b.members().is_empty());
    dns.set(&[a.advertise_addr(), b.advertise_addr()]);
    let took = wait_for("the two to merge", JOIN_LIMIT, || all_alive(&[&a, &b])).await;
    eprintln!("merged {took:?} after DNS answered");
    // Handle::join: what is a live member already is not contacted again; a name that
    // resolves nowhere is an error that names it.
    assert_eq!(b.join([a.advertise_addr()]).await.expect("join"), 0);
    assert!(matches!(
        b.join(["nowhere.test:1"]).await,
        Err(HandleError::NoSeedResolved(why)) if why.contains("nowhere.test:1")
    ));
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_merges_two_clusters_that_formed_apart() {
    // {a, b} and {c, d} form through literal seeds while the shared name resolves to
    // nothing; neither side is alone, so only the periodic refresh can merge them.
    let dns = FakeDns::default();
    let refresh = Duration::from_millis(500);
    let a = named("two-a", "two", &dns, &[])
        .bootstrap(true)
        .seed_refresh(refresh);
    let a = a.start().await.expect("a");
    let b = named("two-b", "two", &dns, &[a.advertise_addr()]).seed_refresh(refresh);
    let b = b.start().await.expect("b");
    let c = named("two-c", "two", &dns, &[])
        .bootstrap(true)
        .seed_refresh(refresh);
    let c = c.start().await.expect("c");
    let d = named("two-d", "two", &dns, &[c.advertise_addr()]).seed_refresh(refresh);
    let d = d.start().await.expect("d");
    wait_for("two clusters of two", JOIN_LIMIT, || {
        all_alive(&[&a, &b]).and(all_alive(&[&c, &d]))
    })
    .await;
    assert!(
        state_of(&a, "two-c").is_none(),
        "merged before DNS answered"
    );
    dns.set(&[c.advertise_addr()]);
    let took = wait_for("one cluster of four", JOIN_LIMIT, || {
        all_alive(&[&a, &b, &c, &d])
    })
    .await;
    eprintln!("merged {took:?} after DNS answered (refresh {refresh:?})");
    for n in [a, b, c, d] {
        n.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_seeds_never_resolve_is_started_by_a_peer_joining_it() {
    let dns = FakeDns::default();
    let lonely = named("back-0", "back", &dns, &[])
        .start()
        .await
        .expect("start");
    let other = start("back-1", &fast_config("back"), &[lonely.advertise_addr()]).await;
    wait_for("the node joined through to be started", JOIN_LIMIT, || {
        started(&lonely)
    })
    .await;
    wait_for("both alive", JOIN_LIMIT, || all_alive(&[&lonely, &other])).await;
    lonely.abort();
    other.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_name_resolves_through_the_system() {
    let first = start("sys-0", &fast_config("sys"), &[]).await;
    let port = first.advertise_addr().port();
    // `localhost` resolves through /etc/hosts; keep the IPv4 answer only (the node
    // binds 127.0.0.1, and an IPv6 ::1 seed would go unanswered, harmlessly).
    let second = RuntimeBuilder::new("sys-1")
        .bind(localhost())
        .seeds([format!("localhost:{port}")])
        .config(fast_config("sys"))
        .start()
        .await
        .expect("start");
    wait_for("a join through `localhost`", JOIN_LIMIT, || {
        all_alive(&[&first, &second])
    })
    .await;
    first.abort();
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_is_not_host_and_port_is_refused_at_start() {
    let err = RuntimeBuilder::new("bad")
        .bind(localhost())
        .seeds(["rumor-headless"])
        .start()
        .await
        .expect_err("a seed without a port");
    assert!(
        matches!(&err, StartError::Seed { seed, .. } if seed == "rumor-headless"),
        "{err}"
    );
    assert!(err.to_string().contains("port"), "{err}");
    let ok: Result<Seed, _> = "rumor-headless.ns.svc.cluster.local:7946".parse();
    assert!(ok.is_ok());
}

/// The wiring README shows: the service's own token, cancelled on SIGTERM, then
/// `leave_and_drain`. Every peer must see Left, never Dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_leave_is_seen_as_left_by_every_peer() {
    let cfg = fast_config("cancel");
    let first = start("cancel-0", &cfg, &[]).await;
    let seed = first.advertise_addr();
    let mut nodes = vec![first];
    for i in 1..4 {
        nodes.push(start(&format!("cancel-{i}"), &cfg, &[seed]).await);
    }
    let shutdown = CancellationToken::new();
    let leaver = builder("cancel-4", &cfg, &[seed])
        .cancel_token(shutdown.child_token())
        .drain(Duration::from_millis(300))
        .start()
        .await
        .expect("start");
    nodes.push(leaver.clone());
    wait_for("5 nodes to converge", JOIN_LIMIT, || {
        all_alive(&refs(&nodes))
    })
    .await;
    let mut streams: Vec<_> = nodes[..4].iter().map(Handle::events).collect();
    let t0 = Instant::now();
    shutdown.cancel();
    // Readiness false at once, the node still alive to peers during the drain.
    wait_for("readiness to go false", Duration::from_secs(2), || {
        if leaver.health().readiness().ok {
            Err("still ready".into())
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(state_of(&nodes[0], "cancel-4"), Some(MemberState::Alive));
    // Then the service leaves as it always did: not an error after cancellation.
    timeout(
        Duration::from_secs(10),
        leaver.leave_and_drain(Duration::from_millis(100)),
    )
    .await
    .expect("leave_and_drain returns")
    .expect("leave_and_drain after cancel is not an error");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "left {:?} after the cancel, before the drain",
        t0.elapsed()
    );
    assert!(leaver.is_stopped());
    // Once stopped after leaving, calling it again is still fine.
    leaver
        .leave_and_drain(Duration::ZERO)
        .await
        .expect("again after the leave");
    wait_for("every peer to see Left", JOIN_LIMIT, || {
        for o in &nodes[..4] {
            let st = state_of(o, "cancel-4");
            if st != Some(MemberState::Left) {
                return Err(format!("{} sees {st:?}", o.name()));
            }
        }
        Ok(())
    })
    .await;
    sleep(Duration::from_millis(1000)).await;
    for (i, s) in streams.iter_mut().enumerate() {
        let mut saw_left = false;
        while let Some(item) = s.try_next() {
            match item {
                Ok(Event::MemberDead { member, cause }) => {
                    panic!("node {i} declared {} dead ({cause:?})", member.name())
                }
                Ok(Event::MemberLeft(m)) => saw_left |= m.name() == "cancel-4",
                _ => {}
            }
        }
        assert!(saw_left, "node {i} never got MemberLeft");
    }
    // An abort is the crash path: no Leave, and leave_and_drain says so.
    let crash = nodes[3].clone();
    crash.abort();
    assert!(matches!(
        crash.leave_and_drain(Duration::ZERO).await,
        Err(HandleError::Stopped)
    ));
    for n in &nodes {
        n.abort();
    }
}

/// Startup over real HTTP while the seed name does not resolve: 503 with the seed
/// and its error, retried, then 200 once it resolves.
#[cfg(feature = "axum")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startupz_fails_with_the_seed_error_until_the_name_resolves() {
    let dns = FakeDns::default();
    let first = start("http-dns-0", &fast_config("http-dns"), &[]).await;
    let node = named("http-dns-1", "http-dns", &dns, &[])
        .start()
        .await
        .expect("start");
    let http = serve(&node).await;
    sleep(Duration::from_millis(700)).await;
    let (code, body) = get(http, "/startupz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("rumor.test:7946 → lookup failed"), "{body}");
    let (code, body) = get(http, "/readyz?verbose").await;
    assert_eq!(code, 503);
    assert!(body.contains("[-]joined failed"), "{body}");
    // Retried, backing off to 8 × the 200 ms retry at most.
    let before = dns.lookups.load(Ordering::Relaxed);
    wait_for("another lookup", Duration::from_secs(3), || {
        if dns.lookups.load(Ordering::Relaxed) > before {
            Ok(())
        } else {
            Err("no lookup since".into())
        }
    })
    .await;
    dns.set(&[first.advertise_addr()]);
    wait_status(http, "/startupz", 200).await;
    wait_status(http, "/readyz", 200).await;
    first.abort();
    node.abort();
}

/// The member `observer` holds for `name`: its state and address.
fn view_of(observer: &Handle, name: &str) -> Option<(MemberState, SocketAddr)> {
    observer
        .members()
        .into_iter()
        .find(|m| m.name() == name)
        .map(|m| (m.state, m.addr))
}

/// No observer holds two live members at one address.
fn no_shared_live_address(nodes: &[&Handle]) -> Result<(), String> {
    for o in nodes {
        let mut live: Vec<(SocketAddr, String)> = o
            .members()
            .into_iter()
            .filter(|m| m.state.is_live())
            .map(|m| (m.addr, m.name().to_string()))
            .collect();
        live.sort();
        for w in live.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(format!(
                    "{} holds {} and {} live at {}",
                    o.name(),
                    w[0].1,
                    w[1].1,
                    w[0].0
                ));
            }
        }
    }
    Ok(())
}

/// A pod recreated with the same name and a new IP (here: a new port), at once (the
/// same wall-clock second, so the same default incarnation) and after peers declared
/// the old process dead: both times the one member ends alive at the new address
/// everywhere, with no trace of the old one live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_recreated_at_a_new_address_replaces_its_old_self() {
    let cfg = fast_config("recreate");
    let first = start("recreate-0", &cfg, &[]).await;
    let seed = first.advertise_addr();
    let mut peers = vec![first];
    for i in 1..3 {
        peers.push(start(&format!("recreate-{i}"), &cfg, &[seed]).await);
    }
    let mut pod = start("recreate-pod", &cfg, &[seed]).await;
    let mut all: Vec<Handle> = peers.iter().cloned().chain([pod.clone()]).collect();
    wait_for("4 nodes to converge", JOIN_LIMIT, || all_alive(&refs(&all))).await;
    for wait_dead in [false, true] {
        let old = pod.advertise_addr();
        pod.abort();
        pod.stopped().await;
        if wait_dead {
            wait_for("the old process dead everywhere", JOIN_LIMIT, || {
                for p in &peers {
                    match view_of(p, "recreate-pod") {
                        Some((MemberState::Dead, _)) => {}
                        v => return Err(format!("{} holds {v:?}", p.name())),
                    }
                }
                Ok(())
            })
            .await;
        }
        let t0 = Instant::now();
        pod = start("recreate-pod", &cfg, &[seed]).await;
        let new = pod.advertise_addr();
        assert_ne!(old, new);
        let took = wait_for(
            "the recreated member alive at its new address",
            JOIN_LIMIT,
            || {
                for p in &peers {
                    match view_of(p, "recreate-pod") {
                        Some((MemberState::Alive, a)) if a == new => {}
                        v => {
                            return Err(format!("{} holds {v:?} (new {new}, old {old})", p.name()));
                        }
                    }
                }
                Ok(())
            },
        )
        .await;
        eprintln!("recreated (old process dead first: {wait_dead}): converged in {took:?}");
        all = peers.iter().cloned().chain([pod.clone()]).collect();
        wait_for("everyone alive", JOIN_LIMIT, || all_alive(&refs(&all))).await;
        // And it stays so: the old address is not revived by a late datagram.
        sleep(Duration::from_millis(800)).await;
        all_alive(&refs(&all)).expect("still converged");
        no_shared_live_address(&refs(&all)).expect("no duplicates");
        assert!(t0.elapsed() < JOIN_LIMIT * 2);
    }
    for n in &all {
        n.abort();
    }
}

/// A new pod given the IP (here: the address) a dead member used: a different member.
/// Peers hold the new one alive there and never revive the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_on_a_dead_members_address_is_a_different_member() {
    let cfg = fast_config("reuse");
    let first = start("reuse-0", &cfg, &[]).await;
    let seed = first.advertise_addr();
    let mut peers = vec![first];
    for i in 1..3 {
        peers.push(start(&format!("reuse-{i}"), &cfg, &[seed]).await);
    }
    let gone = start("reuse-gone", &cfg, &[seed]).await;
    let addr = gone.advertise_addr();
    let mut all: Vec<Handle> = peers.iter().cloned().chain([gone.clone()]).collect();
    wait_for("4 nodes to converge", JOIN_LIMIT, || all_alive(&refs(&all))).await;
    gone.abort();
    gone.stopped().await;
    wait_for("the old member dead everywhere", JOIN_LIMIT, || {
        for p in &peers {
            if !matches!(view_of(p, "reuse-gone"), Some((MemberState::Dead, _))) {
                return Err(format!("{} holds {:?}", p.name(), view_of(p, "reuse-gone")));
            }
        }
        Ok(())
    })
    .await;
    let newcomer = RuntimeBuilder::new("reuse-new")
        .bind(addr)
        .seeds([seed])
        .config(cfg.clone())
        .start()
        .await
        .expect("bind the dead member's address");
    all = peers.iter().cloned().chain([newcomer.clone()]).collect();
    let took = wait_for("the newcomer alive everywhere", JOIN_LIMIT, || {
        all_alive(&refs(&all))
    })
    .await;
    eprintln!("the newcomer on a reused address converged in {took:?}");
    // Reconnect knocks and refusals about the old member now reach the newcomer; the
    // old member must stay dead and the newcomer alive, for several reconnect rounds.
    for _ in 0..10 {
        sleep(Duration::from_millis(300)).await;
        for p in &peers {
            let old = view_of(p, "reuse-gone");
            assert!(
                !old.is_some_and(|(s, _)| s.is_live()),
                "{} revived the old member: {old:?}",
                p.name()
            );
        }
        all_alive(&refs(&all)).expect("the newcomer stays alive");
        no_shared_live_address(&refs(&all)).expect("one live member per address");
    }
    for n in &all {
        n.abort();
    }
}

/// A silent UDP socket standing for a seed that does not answer; counts what reaches it.
struct Silent {
    socket: std::net::UdpSocket,
}

impl Silent {
    fn new() -> Silent {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        Silent { socket }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("addr")
    }

    /// Datagrams queued for it so far (read and dropped).
    fn received(&self) -> usize {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while self.socket.recv_from(&mut buf).is_ok() && n < 10_000 {
            n += 1;
        }
        n
    }
}

/// A DNS answer of many pods: the joiner knocks at a few at a time, not at all of
/// them (each answers with its whole member table), and rotates to the rest, so
/// dead ones ahead of the live one do not keep it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_knocks_at_a_few_seeds_at_a_time_and_rotates_to_the_live_one() {
    let dns = FakeDns::default();
    let first = start("fan-0", &fast_config("fan"), &[]).await;
    let silent: Vec<Silent> = (0..8).map(|_| Silent::new()).collect();
    let mut answer: Vec<SocketAddr> = silent.iter().map(Silent::addr).collect();
    answer.push(first.advertise_addr());
    dns.set(&answer);
    let joiner = named("fan-1", "fan", &dns, &[])
        .start()
        .await
        .expect("start");
    sleep(Duration::from_millis(120)).await;
    let knocked = silent.iter().filter(|s| s.received() > 0).count();
    assert!(knocked <= 3, "knocked at {knocked} of 8 dead seeds at once");
    let took = wait_for("a join past 8 dead seeds", JOIN_LIMIT, || started(&joiner)).await;
    eprintln!("joined past 8 dead seeds in {took:?}");
    first.abort();
    joiner.abort();
}

/// Cancelled before it started, a node joins nobody (who would only see it die) and
/// stops as having left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cancelled_before_start_joins_nobody() {
    let seed = Silent::new();
    let token = CancellationToken::new();
    token.cancel();
    let node = builder("early-0", &fast_config("early"), &[seed.addr()])
        .cancel_token(token)
        .start()
        .await
        .expect("start");
    timeout(JOIN_LIMIT, node.stopped()).await.expect("stops");
    node.leave_and_drain(Duration::ZERO)
        .await
        .expect("stopped by leaving");
    sleep(Duration::from_millis(100)).await;
    assert_eq!(seed.received(), 0, "a cancelled node knocked at its seed");
}

/// Seeds that resolve but are dead: a node that others joined through still starts,
/// by joining back through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_seeds_are_dead_is_started_by_a_peer_joining_it() {
    let dead = Silent::new();
    let cfg = fast_config("deadseed");
    let lonely = start("deadseed-0", &cfg, &[dead.addr()]).await;
    sleep(Duration::from_millis(300)).await;
    assert!(!lonely.health().startup().ok);
    let other = start("deadseed-1", &cfg, &[lonely.advertise_addr()]).await;
    wait_for("the node joined through to be started", JOIN_LIMIT, || {
        started(&lonely)
    })
    .await;
    wait_for("both alive", JOIN_LIMIT, || all_alive(&[&lonely, &other])).await;
    lonely.abort();
    other.abort();
}
