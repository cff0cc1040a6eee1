//! Inbound: one datagram's messages dispatched to what they ask for (pings, acks,
//! ping-reqs, nacks, updates, syncs, broadcasts), and the answers they call for.

use super::{Delta, MAX_INCARNATION, Node, Outgoing, PeerKnows, Primary};
use crate::id::MAX_NAME_LEN;
use crate::members::Descriptor;
use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::budget::{MAX_ANSWERS_PER_SOURCE, Work};
use crate::event::{Cause, Event, MemberState};
use crate::id::NodeId;
use crate::members::Update;
use crate::wire::{self, AliveRef, Body, BodyRef};

/// What handling one datagram has already done (each reply kind goes out once).
pub(super) struct Inbound {
    pub(super) from: SocketAddr,
    pub(super) sender: NodeId,
    pub(super) acked: bool,
    pub(super) relayed: bool,
    pub(super) synced: bool,
    pub(super) wanted: bool,
    /// The sender was already told our current incarnation in reply to this datagram.
    pub(super) corrected: bool,
}

pub(super) fn cause_from_wire(c: i32) -> Cause {
    match wire::Cause::try_from(c) {
        Ok(wire::Cause::Refused) => Cause::Refused,
        Ok(wire::Cause::Left) => Cause::Left,
        _ => Cause::Silence,
    }
}

impl Node {
    /// `sync`: the message is a state-sync delta, not gossip (see `process_update`).
    pub(super) fn handle_message(&mut self, inb: &mut Inbound, body: BodyRef<'_>, sync: bool) {
        let (from, sender) = (inb.from, inb.sender);
        let update = |id: u64, incarnation: u64, state, cause, accuser: u64| Update {
            id: NodeId(id),
            incarnation,
            state,
            cause,
            accuser: NodeId(accuser),
            descriptor: None,
        };
        let body = match body {
            BodyRef::Alive(a) => {
                match self.alive_update(a) {
                    Some(u) => {
                        let conflict = self.is_other_life(&u, inb);
                        self.process_update(u, sync);
                        if conflict {
                            self.answer_other_life(inb);
                        }
                    }
                    None => self.stats.messages_rejected += 1,
                }
                return;
            }
            BodyRef::Owned(body) => body,
        };
        match body {
            Body::Ping(p) => {
                // One ack per datagram however many pings it carries: a packet of pings
                // must not turn into a burst of datagrams.
                if p.target != self.id().0 || inb.acked {
                    // A ping for another id was meant for whoever lived at this address
                    // before us.
                    self.stats.messages_rejected += 1;
                    return;
                }
                inb.acked = true;
                self.outbox.push_back(Outgoing {
                    to: from,
                    to_id: Some(sender),
                    primary: Primary::Ack { seq: p.seq },
                });
            }
            Body::Ack(a) => self.on_ack(a.seq, from),
            Body::PingReq(r) => {
                if inb.relayed {
                    self.stats.messages_rejected += 1;
                    return;
                }
                inb.relayed = true;
                self.on_ping_req(from, sender, r);
            }
            Body::Nack(n) => self.on_nack(n.seq, n.refused),
            // The reader hands every Alive over borrowed (above), never as an owned body.
            Body::Alive(_) => self.stats.messages_rejected += 1,
            Body::Suspect(m) => {
                let cause = cause_from_wire(m.cause);
                self.checked_update(
                    update(m.member, m.incarnation, MemberState::Suspect, cause, m.from),
                    sync,
                );
                self.answer_accusation(inb, m.member, m.incarnation);
            }
            Body::Dead(m) => {
                let cause = cause_from_wire(m.cause);
                self.checked_update(
                    update(m.member, m.incarnation, MemberState::Dead, cause, m.from),
                    sync,
                );
                self.answer_accusation(inb, m.member, m.incarnation);
            }
            Body::Leave(m) => {
                self.checked_update(
                    update(
                        m.member,
                        m.incarnation,
                        MemberState::Left,
                        Cause::Left,
                        m.member,
                    ),
                    sync,
                );
            }
            Body::Broadcast(b) => self.on_broadcast(b),
            Body::SyncDigest(d) => {
                // Sync is answered only to a known member at its own address, and one
                // chunk per datagram: a small forged digest must not make us send our
                // whole table to an address of the forger's choosing.
                if inb.synced || !self.is_member_at(sender, from) {
                    self.stats.messages_rejected += 1;
                    return;
                }
                let limit = self.cfg.max_syncs_per_source as u32;
                if !self.spend(from, Work::Sync, limit) {
                    self.stats.syncs_refused += 1;
                    return;
                }
                inb.synced = true;
                self.on_sync_digest(from, sender, d);
            }
            Body::SyncWant(w) => {
                // A want also comes from a seed answering our join, maybe before the
                // entries that would introduce the seed.
                if inb.wanted || !(self.is_member_at(sender, from) || self.is_seed(from)) {
                    self.stats.messages_rejected += 1;
                    return;
                }
                inb.wanted = true;
                self.on_sync_want(from, sender, w);
            }
        }
    }

    /// Whether `id` is a member we know at `addr`, in any state: a restarted member we
    /// hold dead must still get answers, or it would never learn to refute.
    pub(super) fn is_member_at(&self, id: NodeId, addr: SocketAddr) -> bool {
        self.members.get(id).is_some_and(|e| e.addr == addr)
    }

    /// Suspect/Dead/Leave from the wire: incarnations beyond what a member can ever
    /// refute are rejected, so a forged huge incarnation cannot pin a member dead.
    pub(super) fn checked_update(&mut self, u: Update<'_>, sync: bool) {
        if u.incarnation > MAX_INCARNATION {
            self.stats.messages_rejected += 1;
            return;
        }
        self.process_update(u, sync);
    }

    pub(super) fn alive_update<'a>(&self, a: AliveRef<'a>) -> Option<Update<'a>> {
        if a.name.is_empty()
            || a.name.len() > MAX_NAME_LEN
            || a.metadata.len() > self.cfg.max_metadata_size
            || a.incarnation > MAX_INCARNATION
        {
            return None;
        }
        // Validated once: a join storm decodes every member's Alive λ log n times per
        // node, and the validation was about 5 % of its instructions when done twice.
        let name = std::str::from_utf8(a.name).ok()?;
        if NodeId::from_name(name) != NodeId(a.member) {
            return None;
        }
        // The decoder already checked the address.
        let addr = wire::decode_addr(a.addr).ok()?;
        Some(Update {
            id: NodeId(a.member),
            incarnation: a.incarnation,
            state: MemberState::Alive,
            cause: Cause::Silence,
            accuser: NodeId(a.member),
            descriptor: Some(Descriptor {
                name: a.name,
                addr,
                addr_wire: a.addr,
                metadata: a.metadata,
            }),
        })
    }

    pub(super) fn on_broadcast(&mut self, b: wire::UserBroadcast) {
        let key = (NodeId(b.origin), b.seq);
        if key.0 == self.id() || b.payload.len() > self.max_broadcast_size() {
            return;
        }
        if self.remember_broadcast(key) {
            // Own the payload: as decoded it is a slice of the whole datagram.
            let payload = Bytes::copy_from_slice(&b.payload);
            self.stats.broadcasts_delivered += 1;
            self.events.push_back(Event::Broadcast {
                origin: key.0,
                payload: payload.clone(),
            });
            self.queue_broadcast(key, payload);
        }
    }

    /// Whether `u` is a member's own Alive, sent from its own address, at the
    /// incarnation we hold for it but from another address than we hold: a process
    /// recreated elsewhere within the same second as its previous life (the runtime's
    /// default incarnation is the wall clock in seconds), so both lives claim one
    /// incarnation. Our entry wins ties and the digests match, so neither gossip nor
    /// state sync would ever tell the new process; `answer_other_life` does.
    fn is_other_life(&self, u: &Update<'_>, inb: &Inbound) -> bool {
        u.id == inb.sender
            && u.id != self.id()
            && u.descriptor.as_ref().is_some_and(|d| d.addr == inb.from)
            && self
                .members
                .get(u.id)
                .is_some_and(|e| e.incarnation == u.incarnation && e.addr != inb.from)
    }

    /// Tells the sender what we hold for it (its previous life), once per datagram and
    /// within the per-source answer budget; it refutes above that incarnation
    /// (`news_about_self`), and its Alive then replaces the old address everywhere.
    fn answer_other_life(&mut self, inb: &mut Inbound) {
        if inb.corrected || self.leaving {
            return;
        }
        inb.corrected = true;
        if !self.spend(inb.from, Work::Answer, MAX_ANSWERS_PER_SOURCE) {
            self.stats.answers_refused += 1;
            return;
        }
        self.stats.other_lives_answered += 1;
        self.outbox.push_back(Outgoing {
            to: inb.from,
            to_id: Some(inb.sender),
            primary: Primary::Entries(VecDeque::from([Delta {
                id: inb.sender,
                peer: PeerKnows::Older,
            }])),
        });
    }

    /// A member that tells us we are suspect or dead, at an incarnation we have just
    /// refuted or had refuted before, holds an outdated view of us. Gossip carries only
    /// its current state, so it would keep repeating the accusation, and our refutation
    /// may not reach it before its suspicion timer runs out (push-pull comes only every
    /// minute or two). After a partition heals, the refutation would travel back only by
    /// gossip to the dead, by chance. We answer it directly with our Alive, once per
    /// datagram, only to a known member at its own address, so a forged accusation
    /// cannot aim our answers elsewhere, and at most `MAX_ANSWERS_PER_SOURCE` per
    /// source per probe interval, so a stream of spoofed ones cannot aim many at it.
    /// Called after the accusation was applied, so a current one has already been
    /// refuted.
    pub(super) fn answer_accusation(&mut self, inb: &mut Inbound, member: u64, incarnation: u64) {
        if member != self.id().0
            || incarnation >= self.incarnation()
            || inb.corrected
            || self.leaving
            || !self.is_member_at(inb.sender, inb.from)
        {
            return;
        }
        inb.corrected = true;
        if !self.spend(inb.from, Work::Answer, MAX_ANSWERS_PER_SOURCE) {
            self.stats.answers_refused += 1;
            return;
        }
        self.stats.accusations_answered += 1;
        let me = self.id();
        self.outbox.push_back(Outgoing {
            to: inb.from,
            to_id: Some(inb.sender),
            primary: Primary::Entries(VecDeque::from([Delta {
                id: me,
                peer: PeerKnows::Older,
            }])),
        });
    }
}
