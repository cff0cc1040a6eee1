//! The physical floor: one UDP datagram sent and received on 127.0.0.1 with std's
//! blocking `UdpSocket` (`send_to` on one socket, `recv_from` on another), at a ping's
//! size and at the full 1,400 bytes. This is the cost of the two syscalls and the
//! kernel's loopback path that every datagram rumor sends pays on top of the node's
//! own work (the probe-loop bench measures the node without sockets). A steady period
//! under `phi-monitors` sends 6 datagrams and receives 6, so its syscall floor is about
//! 6 × this.
//!
//! `cargo bench --bench floor`

use std::hint::black_box;
use std::net::UdpSocket;

fn main() {
    divan::main();
}

#[divan::bench(args = [37, 1400])]
fn loopback_send_recv(bencher: divan::Bencher<'_, '_>, bytes: usize) {
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback socket");
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback socket");
    let to = rx.local_addr().expect("bound");
    let payload = vec![0xa5u8; bytes];
    let mut buf = [0u8; 2048];
    bencher
        .counter(divan::counter::BytesCount::new(bytes))
        .bench_local(|| {
            tx.send_to(black_box(&payload), to).expect("loopback send");
            let (n, _) = rx.recv_from(&mut buf).expect("loopback receive");
            n
        });
}
