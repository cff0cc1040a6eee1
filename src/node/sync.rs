//! Push-pull anti-entropy over datagrams (Scuttlebutt-style): the initiator sends a
//! digest of `(member, version)` in id-ordered chunks, each naming the id range it
//! covers; the receiver answers each chunk with the full entries it knows newer or the
//! chunk lacks, then a `SyncWant` for the entries the chunk knows newer; the initiator
//! answers the want with those entries. Without loss one round reconciles both sides;
//! lost datagrams are made up by later rounds. Joining is the same exchange with a
//! digest that names only the joiner.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::id::NodeId;
use crate::keyring::SEAL_OVERHEAD;
use crate::node::{Delta, Node, Outgoing, PeerKnows, Primary, member_len};
use crate::time::Time;
use crate::wire;

/// Worst-case bytes a digest entry adds: a packed fixed64 id and a varint version.
const DIGEST_ENTRY_BYTES: usize = 8 + 10;

/// Room kept for the envelope and the digest's own framing.
const DIGEST_OVERHEAD: usize = 64;

/// How far joining has got.
#[derive(Debug, Default)]
pub(crate) struct Joining {
    /// Where `join` was told to knock (retried until one answers).
    pub seeds: Vec<SocketAddr>,
    /// A seed answered (or anyone did: see `handle_packet`).
    pub joined: bool,
    /// The first full state sync is done.
    pub synced: bool,
    /// Push-pull rounds still to run soon after joining (see `mark_synced`).
    pub early_push_pulls: u8,
}

impl Node {
    /// Starts a state sync with whoever listens at `addr`, a member or not: the whole
    /// digest goes there, and a member of another cluster answers as to any push-pull,
    /// so each side ends with the other's view and the two clusters merge. For
    /// clusters that formed apart (a seed name that resolved late, two bootstrap
    /// nodes); the runtime calls it for seed addresses no live member holds. Nothing
    /// happens for this node's own address or once it is leaving.
    pub fn sync_with(&mut self, now: Time, addr: SocketAddr) {
        self.observe_time(now);
        if self.leaving || addr == self.members.local().addr {
            return;
        }
        let id = self.members.live_at(addr);
        self.send_digest(addr, id);
        self.after_input();
    }

    /// Starts a push-pull round with one random live member (members held dead are
    /// reached by `reconnect`).
    pub(crate) fn start_push_pull(&mut self) {
        let mut pick = std::mem::take(&mut self.scratch.ids);
        self.random_peers(1, None, &mut pick);
        let peer = pick
            .first()
            .and_then(|id| self.members.get(*id))
            .map(|e| (e.addr, e.id));
        self.scratch.ids = pick;
        if let Some((to, id)) = peer {
            self.send_digest(to, Some(id));
        }
    }

    /// Queues this node's whole digest to `to`, in chunks that each fit one datagram.
    pub(crate) fn send_digest(&mut self, to: SocketAddr, to_id: Option<NodeId>) {
        // Every chunk also carries our own Alive (see `write_primary`): a peer that does
        // not know us yet (our join's gossip was lost) would otherwise refuse the digest,
        // and we could never make ourselves known again.
        let room = self
            .cfg
            .max_packet_size
            .saturating_sub(self.cfg.cluster_label.len() + DIGEST_OVERHEAD + SEAL_OVERHEAD)
            .saturating_sub(member_len(self.members.local()));
        let per_chunk = (room / DIGEST_ENTRY_BYTES).max(1);
        let mut chunk = wire::SyncDigest {
            lo: 0,
            ..Default::default()
        };
        let n = self.members.len();
        for (i, (id, version)) in self
            .members
            .versions_in_range(NodeId(0), NodeId(u64::MAX))
            .enumerate()
        {
            chunk.members.push(id.0);
            chunk.versions.push(version);
            let last = i + 1 == n;
            if chunk.members.len() == per_chunk || last {
                chunk.hi = if last { u64::MAX } else { id.0 };
                chunk.last = last;
                let next_lo = id.0.saturating_add(1);
                let full = std::mem::replace(
                    &mut chunk,
                    wire::SyncDigest {
                        lo: next_lo,
                        ..Default::default()
                    },
                );
                self.stats.sync_digests_sent += 1;
                self.outbox.push_back(Outgoing {
                    to,
                    to_id,
                    primary: Primary::Digest(full),
                });
            }
        }
    }

    pub(crate) fn on_sync_digest(&mut self, from: SocketAddr, sender: NodeId, d: wire::SyncDigest) {
        self.stats.sync_digests_received += 1;
        let (lo, hi) = (NodeId(d.lo), NodeId(d.hi));
        let mut theirs: Vec<(NodeId, u64)> = d
            .members
            .iter()
            .zip(d.versions.iter())
            .map(|(m, v)| (NodeId(*m), *v))
            .filter(|(m, _)| lo <= *m && *m <= hi)
            .collect();
        theirs.sort_unstable();
        theirs.dedup_by_key(|(m, _)| *m);
        // One merge of two id-sorted lists: no lookup per member. What the peer knows
        // older goes first, then what it lacks, each in id order.
        let mut give = VecDeque::new();
        let mut lacks = Vec::new();
        let mut want = Vec::new();
        let mut ours = self.members.versions_in_range(lo, hi).peekable();
        for &(id, v) in &theirs {
            while let Some((mine_id, _)) = ours.next_if(|&(m, _)| m < id) {
                lacks.push(mine_id);
            }
            match ours.next_if(|&(m, _)| m == id) {
                None => want.push(id.0),
                Some((_, mine)) if mine < v => want.push(id.0),
                Some((_, mine)) if mine > v => give.push_back(Delta {
                    id,
                    peer: PeerKnows::Older,
                }),
                Some(_) => {}
            }
        }
        lacks.extend(ours.map(|(id, _)| id));
        give.extend(lacks.into_iter().map(|id| Delta {
            id,
            peer: PeerKnows::Nothing,
        }));
        if !give.is_empty() {
            self.outbox.push_back(Outgoing {
                to: from,
                to_id: Some(sender),
                primary: Primary::Entries(give),
            });
        }
        let want = wire::SyncWant {
            members: want,
            last: d.last,
        };
        self.outbox.push_back(Outgoing {
            to: from,
            to_id: Some(sender),
            primary: Primary::Want(want),
        });
    }

    pub(crate) fn on_sync_want(&mut self, from: SocketAddr, sender: NodeId, w: wire::SyncWant) {
        let mut ids: Vec<NodeId> = w
            .members
            .iter()
            .map(|m| NodeId(*m))
            .filter(|id| self.members.get(*id).is_some())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let give: VecDeque<Delta> = ids
            .into_iter()
            .map(|id| Delta {
                id,
                peer: PeerKnows::Unsure,
            })
            .collect();
        if !give.is_empty() {
            self.outbox.push_back(Outgoing {
                to: from,
                to_id: Some(sender),
                primary: Primary::Entries(give),
            });
        }
        // Only the end of a seed's answer to our join counts: a stray want from anyone
        // else does not. Entries of the answer may still be in flight or lost; join
        // retries continue while this node knows no one else.
        if w.last && self.is_seed(from) {
            self.mark_synced();
        }
    }
}
