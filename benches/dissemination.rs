//! Dissemination: select and pack a datagram's piggyback from a full queue.
//!
//! A node has learned every member of its cluster as news (each one queued for
//! gossip), and answers a ping: `poll_transmit` writes the ack, then fills the rest of
//! the 1,400 bytes with the least-sent, newest updates (about 40 `Alive`s), reading
//! each member's current state from the table and encoding the packet. Under the
//! default strategy an ack does not spend an update's retransmissions, so the queue
//! stays full however long the bench runs. `empty_queue` is the same ack with nothing
//! queued: the difference is the cost of selecting and packing.
//!
//! Only `poll_transmit` is timed: the inbound ping that queues each ack is handled
//! before the timed loop (divan generates a sample's inputs first).
//!
//! `cargo bench --bench dissemination`

mod common;

use std::cell::RefCell;

use rumor::{Node, NodeId, Time};

fn main() {
    divan::main();
}

fn bench_acks(bencher: divan::Bencher<'_, '_>, node: Node) {
    let (name, from) = common::peer(2);
    let ping = common::ping_datagram(b"rumor", NodeId::from_name(&name), 1, node.id());
    let node = RefCell::new(node);
    let mut buf = [0u8; common::MTU];
    bencher
        .with_inputs(|| node.borrow_mut().handle_packet(Time::ZERO, from, &ping))
        .bench_local_values(|()| {
            let tx = node.borrow_mut().poll_transmit(Time::ZERO, &mut buf);
            tx.map(|t| t.len)
        });
}

/// `members` updates queued (one per member the node learned as news).
#[divan::bench(args = [256, 1000, 4096])]
fn full_queue(bencher: divan::Bencher<'_, '_>, members: usize) {
    let node = common::node_knowing(members, common::probe_config(), false);
    assert!(node.pending_updates() >= members - 1);
    bench_acks(bencher, node);
}

/// The same ack from a converged node: nothing to piggyback.
#[divan::bench(args = [1000])]
fn empty_queue(bencher: divan::Bencher<'_, '_>, members: usize) {
    let node = common::node_knowing(members, common::probe_config(), true);
    assert_eq!(node.pending_updates(), 0);
    bench_acks(bencher, node);
}
