//! Outbound: packing a datagram (its primary message, then piggybacked updates) and
//! picking gossip targets.

use super::{Node, Outgoing, PeerKnows, Primary};
use crate::dissemination::UpdateKey;
use crate::event::{Cause, MemberState};
use crate::id::NodeId;
use crate::members::Entry;
use crate::wire::{self, AliveRef, Body, Message, PacketWriter};

/// Candidates examined when filling a packet with piggybacked updates.
pub(super) const PIGGYBACK_SCAN: usize = 128;

/// Updates that did not fit before packing gives up on the packet.
pub(super) const MAX_PIGGYBACK_MISSES: usize = 4;

/// Bytes below which no update fits (a Leave with small ids is about 12).
pub(super) const MIN_UPDATE_LEN: usize = 12;

/// A member's Alive as its entry holds it, borrowed: writing it touches no reference
/// count of the member's descriptor (see `wire::PacketWriter`).
pub(super) fn alive_ref<'a>(e: &Entry<'a>) -> AliveRef<'a> {
    AliveRef {
        member: e.id.0,
        incarnation: e.incarnation,
        name: e.packed.name(),
        addr: e.packed.addr_wire(),
        metadata: e.packed.metadata(),
    }
}

/// Writes the message that states `e`'s current state; false if it does not fit.
pub(super) fn push_member(w: &mut PacketWriter<'_>, e: Entry<'_>) -> bool {
    match verdict(e) {
        None => w.push_alive(&alive_ref(&e)),
        Some(body) => w.push(&Message { body: Some(body) }),
    }
}

/// What [`push_member`] adds to a packet.
pub(crate) fn member_len(e: Entry<'_>) -> usize {
    match verdict(e) {
        None => alive_ref(&e).len(),
        Some(body) => wire::message_len(&Message { body: Some(body) }),
    }
}

/// The message that states a suspect, dead or departed member's state; `None` for a
/// live one, whose Alive is written from its entry (`alive_ref`).
pub(super) fn verdict(e: Entry<'_>) -> Option<Body> {
    let (member, incarnation) = (e.id.0, e.incarnation);
    match e.state {
        MemberState::Alive => None,
        MemberState::Suspect => Some(Body::Suspect(wire::Suspect {
            member,
            incarnation,
            from: e.accuser.0,
            cause: cause_to_wire(e.cause),
        })),
        MemberState::Dead => Some(Body::Dead(wire::Dead {
            member,
            incarnation,
            from: e.accuser.0,
            cause: cause_to_wire(e.cause),
        })),
        MemberState::Left => Some(Body::Leave(wire::Leave {
            member,
            incarnation,
        })),
    }
}

pub(super) fn cause_to_wire(c: Cause) -> i32 {
    let w = match c {
        Cause::Silence => wire::Cause::Silence,
        Cause::Refused => wire::Cause::Refused,
        Cause::Left => wire::Cause::Left,
    };
    w as i32
}

impl Node {
    /// Gossips pending updates to `gossip_fanout` random live members now.
    pub(super) fn gossip_now(&mut self) {
        let mut picks = std::mem::take(&mut self.scratch.ids);
        self.random_peers(self.cfg.gossip_fanout, None, &mut picks);
        if let Some(id) = self.recently_dead_pick() {
            picks.push(id);
        }
        for &id in &picks {
            if let Some(e) = self.members.get(id) {
                self.outbox.push_back(Outgoing {
                    to: e.addr,
                    to_id: Some(id),
                    primary: Primary::Gossip,
                });
            }
        }
        self.scratch.ids = picks;
    }

    /// Up to `k` distinct random live peers, never `exclude`.
    pub(crate) fn random_peers(
        &mut self,
        k: usize,
        exclude: Option<NodeId>,
        out: &mut Vec<NodeId>,
    ) {
        out.clear();
        let peers = self.members.live_peers();
        let n = peers.len();
        let available = n - usize::from(exclude.is_some_and(|x| self.members.is_live_peer(x)));
        let k = k.min(available);
        if k == 0 {
            return;
        }
        if k * 2 >= n {
            // Dense pick: a partial Fisher-Yates over indices would allocate; a scan
            // with a random start is cheap at these sizes and still uniform enough for
            // gossip, and every choice stays a function of the seed.
            let start = rand::Rng::random_range(&mut self.rng, 0..n);
            for i in 0..n {
                let id = peers[(start + i) % n];
                if Some(id) != exclude {
                    out.push(id);
                    if out.len() == k {
                        break;
                    }
                }
            }
            return;
        }
        // Sparse pick: rejection sampling, bounded in tries.
        for _ in 0..k * 8 {
            let id = peers[rand::Rng::random_range(&mut self.rng, 0..n)];
            if Some(id) != exclude && !out.contains(&id) {
                out.push(id);
                if out.len() == k {
                    break;
                }
            }
        }
    }

    pub(super) fn write_primary(&mut self, out: Outgoing, w: &mut PacketWriter<'_>) {
        // Peers drop a packet with more than `max_messages_per_packet` messages whole,
        // so the writer counts every message against it as well as the byte budget.
        let push = |w: &mut PacketWriter<'_>, body: Body| w.push(&Message { body: Some(body) });
        match out.primary {
            Primary::Ping { seq, target } => {
                push(
                    w,
                    Body::Ping(wire::Ping {
                        seq,
                        target: target.0,
                    }),
                );
            }
            Primary::Ack { seq } => {
                push(w, Body::Ack(wire::Ack { seq }));
            }
            Primary::PingReq { seq, target, addr } => {
                push(
                    w,
                    Body::PingReq(wire::PingReq {
                        seq,
                        target: target.0,
                        target_addr: addr,
                    }),
                );
            }
            Primary::Nack { seq, refused } => {
                push(w, Body::Nack(wire::Nack { seq, refused }));
            }
            Primary::Gossip => {}
            Primary::Join => {
                let me = self.members.local();
                let version = wire::pack_version(me.incarnation, me.state.rank());
                let digest = wire::SyncDigest {
                    lo: 0,
                    hi: u64::MAX,
                    members: vec![me.id.0],
                    versions: vec![version],
                    last: true,
                };
                push_member(w, me);
                push(w, Body::SyncDigest(digest));
            }
            Primary::Digest(d) => {
                // Our Alive first, so a peer that does not know us can place the digest.
                push_member(w, self.members.local());
                push(w, Body::SyncDigest(d));
            }
            Primary::Want(want) => {
                push(w, Body::SyncWant(want));
            }
            Primary::Entries(mut deltas) => {
                // Room for the `sync_entries` field itself (a key and a varint of at
                // most 2 bytes).
                w.reserve(3);
                let before = w.messages();
                let mut progressed = false;
                while let Some(d) = deltas.front().copied() {
                    let Some(e) = self.members.get(d.id) else {
                        deltas.pop_front();
                        continue;
                    };
                    let fits = match (d.peer, e.state) {
                        (PeerKnows::Nothing, MemberState::Dead | MemberState::Left) => true,
                        (PeerKnows::Nothing | PeerKnows::Unsure, MemberState::Suspect) => {
                            let alive = alive_ref(&e);
                            let suspect = Message { body: verdict(e) };
                            let len = alive.len() + wire::message_len(&suspect);
                            w.fits(len, 2) && w.push_alive(&alive) && w.push(&suspect)
                        }
                        _ => push_member(w, e),
                    };
                    if !fits && progressed {
                        break;
                    }
                    // An entry that cannot fit even an empty packet (a tiny
                    // max_packet_size) is skipped rather than retried forever.
                    deltas.pop_front();
                    progressed = true;
                }
                w.set_sync_entries((w.messages() - before) as u32);
                if !deltas.is_empty() {
                    self.outbox.push_front(Outgoing {
                        to: out.to,
                        to_id: out.to_id,
                        primary: Primary::Entries(deltas),
                    });
                }
            }
        }
        // Buddy system (Lifeguard): a suspected member hears of it in every packet we
        // send it, so it can refute at once.
        // `suspicions` holds exactly the members we hold suspect, and is nearly always
        // empty: checking it first spares every datagram a member-table lookup.
        if let Some(id) = out.to_id
            && self
                .suspicions
                .get(&id)
                .is_some_and(|s| self.cfg.strategy.lifeguard() || s.last_chance.is_some())
            && let Some(e) = self.members.get(id)
            && e.state == MemberState::Suspect
        {
            push_member(w, e);
        }
    }

    /// Fills the rest of the packet with queued updates, least-sent first.
    /// `counts`: the sends count toward each update's retransmission limit.
    /// `to`: the destination member. Its own Alive or Leave is not sent to it (wasted on
    /// the one member that needs it least: a node whose view is still tiny would spend
    /// a joiner's whole retransmission budget gossiping the joiner to itself); news that
    /// it is suspected or dead is, so it can refute.
    pub(super) fn piggyback(&mut self, w: &mut PacketWriter<'_>, counts: bool, to: Option<NodeId>) {
        if self.queue.is_empty() {
            return;
        }
        let limit = self.cfg.retransmit_limit(self.members.live_count());
        let mut sent = std::mem::take(&mut self.scratch.sent);
        sent.clear();
        let max_messages = self.cfg.max_messages_per_packet;
        let mut misses = 0;
        for (key, payload) in self.queue.candidates(PIGGYBACK_SCAN) {
            // Stop when the packet is all but full: the smallest update (a Leave) takes
            // about 12 bytes, and a few misses in a row mean little else will fit.
            if w.messages() >= max_messages
                || w.room() < MIN_UPDATE_LEN
                || misses >= MAX_PIGGYBACK_MISSES
            {
                break;
            }
            // With the message count checked above, a refusal means too few bytes left.
            let written = match key {
                UpdateKey::Member(id)
                    if Some(id) == to
                        && self.members.get(id).is_none_or(|e| {
                            matches!(e.state, MemberState::Alive | MemberState::Left)
                        }) =>
                {
                    continue;
                }
                UpdateKey::Member(id) => match self.members.get(id) {
                    Some(e) => push_member(w, e),
                    None => continue,
                },
                UpdateKey::Broadcast(origin, seq) => w.push(&Message {
                    body: Some(Body::Broadcast(wire::UserBroadcast {
                        origin: origin.0,
                        seq,
                        payload: payload.cloned().unwrap_or_default(),
                    })),
                }),
            };
            if written {
                sent.push(key);
            } else {
                misses += 1;
            }
        }
        for key in sent.iter().filter(|_| counts) {
            self.queue.sent(*key, limit);
        }
        self.scratch.sent = sent;
    }
}
