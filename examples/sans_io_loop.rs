//! The sans-IO core driven by hand over a blocking `std::net::UdpSocket`: no tokio, no
//! async, one thread per node. This is the whole contract the tokio runtime implements:
//! feed datagrams and time in, drain datagrams, events and the next deadline out.
//!
//! ```text
//! cargo run --example sans_io_loop
//! ```
//!
//! Two nodes (`a`, and `b` joining through it) run for four seconds; `b` leaves after
//! three, and `a` sees it go.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use rumor::{Config, Identity, Node, NodeId, Time};

/// The node's clock: time since this loop started. `Instant::now` is banned in the
/// core (it takes `now` from its caller); the caller is exactly where it belongs.
struct Clock(Instant);

impl Clock {
    fn start() -> Clock {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Clock(now)
    }

    fn now(&self) -> Time {
        Time::from_nanos(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Sends every queued datagram and prints every event: after *every* input.
fn drain(name: &str, node: &mut Node, socket: &UdpSocket, out: &mut [u8], clock: &Clock) {
    while let Some(t) = node.poll_transmit(clock.now(), out) {
        if let Err(e) = socket.send_to(&out[..t.len], t.destination) {
            eprintln!("{name}: send to {}: {e}", t.destination);
        }
    }
    while let Some(event) = node.poll_event() {
        println!("[{name} {}] {event:?}", clock.now());
    }
}

fn run(
    name: &str,
    socket: UdpSocket,
    seeds: &[SocketAddr],
    leave_after: Duration,
    stop_after: Duration,
) -> std::io::Result<()> {
    let clock = Clock::start();
    let mut cfg = Config::local();
    cfg.probe_interval = Duration::from_millis(300);
    cfg.probe_timeout = Duration::from_millis(100);
    let addr = socket.local_addr()?;
    // Any seed works; a fixed one per name makes runs repeatable up to network timing.
    let seed = NodeId::from_name(name).0;
    let mut node = Node::new(Identity::new(name, addr), cfg, seed, clock.now())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    let mut inbuf = vec![0u8; 65_536];
    let mut out = vec![0u8; node.config().max_packet_size];

    node.join(clock.now(), seeds);
    drain(name, &mut node, &socket, &mut out, &clock);
    let leave_at = clock.now() + leave_after;
    let stop_at = clock.now() + stop_after;
    loop {
        let now = clock.now();
        if now >= stop_at || (node.is_leaving() && node.pending_updates() == 0) {
            break;
        }
        if now >= leave_at && !node.is_leaving() {
            println!("[{name} {now}] leaving");
            node.leave(now);
            drain(name, &mut node, &socket, &mut out, &clock);
            continue;
        }
        // Block on the socket until the next deadline (the node's, ours, or the end).
        let deadline =
            node.poll_timeout()
                .unwrap_or(Time::MAX)
                .min(stop_at)
                .min(if node.is_leaving() {
                    Time::MAX
                } else {
                    leave_at
                });
        let wait = (deadline - now).max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait))?;
        match socket.recv_from(&mut inbuf) {
            Ok((len, from)) => node.handle_packet(clock.now(), from, &inbuf[..len]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // ICMP errors of earlier sends can surface here on some systems.
            Err(e) => eprintln!("{name}: recv: {e}"),
        }
        if node.poll_timeout().is_some_and(|t| t <= clock.now()) {
            node.handle_timeout(clock.now());
        }
        drain(name, &mut node, &socket, &mut out, &clock);
    }
    let s = node.stats();
    println!(
        "[{name}] done: {} members known, {} packets in, {} out",
        node.members().count(),
        s.packets_in,
        s.packets_out
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    let seed = a.local_addr()?;
    let never = Duration::from_secs(3600);
    let ta = thread::spawn(move || run("a", a, &[], never, Duration::from_secs(4)));
    let tb = thread::spawn(move || {
        run(
            "b",
            b,
            &[seed],
            Duration::from_secs(3),
            Duration::from_secs(4),
        )
    });
    for t in [ta, tb] {
        t.join()
            .map_err(|_| std::io::Error::other("node thread panicked"))??;
    }
    Ok(())
}
