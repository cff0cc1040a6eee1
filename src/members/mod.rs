//! The member table: one entry per known member (self included), SWIM precedence, the
//! monitoring ring and an index of live peers for random choice.
//!
//! Precedence is a total order on `(incarnation, rank)` with rank alive < suspect <
//! dead < left, which is exactly SWIM's rules (Alive(i) beats Suspect(j) iff i > j,
//! Suspect(i) beats Alive(j) iff i ≥ j, Dead/Left beat both at the same incarnation)
//! extended so that only a higher incarnation revives a dead or departed member: the
//! member itself raising its incarnation is how a restarted or wrongly convicted node
//! rejoins. A total order makes convergence independent of delivery order.
//!
//! Every node of a cluster holds a row for every member, so the table's size per member
//! is paid n² times across a cluster (issue 26: at most 100 bytes per known member, heap
//! included; `tests/alloc_budget.rs`). What a member costs here, and why:
//! - a 40-byte `Row`: id, version (incarnation and state packed as digests carry them),
//!   when its state changed, when we last heard from it, and one word holding its
//!   descriptor's offset and its live-peer slot. Its address is not stored apart: a
//!   peer's address is its descriptor's wire form decoded (the decoder built it from
//!   those bytes); only the local member's, which may carry an IPv6 scope, is kept whole.
//!   Who accused it and why are kept in `verdicts` only when they are not the defaults
//!   an Alive carries (silence, accused by itself): suspects and the dead.
//! - its descriptor's bytes in one shared buffer (`descriptors`);
//! - 5 to 6.5 bytes in the lookup table of positions by id (`position_table`), and 4
//!   in the positions sorted by id that digests walk (`id_index`);
//! - 5 to 11 bytes in the address index (a hash table of positions), 8 in `live_peers`.
//!
//! The monitoring ring is not stored: only the `monitors` live members preceding this
//! node on it are ever asked for, and they are kept as they change (`preds`).

mod descriptors;
mod id_index;
mod position_table;

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use hashbrown::{HashMap, HashTable};

use crate::event::{Cause, Member, MemberState};
use crate::hashing::Keyed;
use crate::id::NodeId;
use crate::time::Time;
use crate::wire;

pub(crate) use descriptors::Record as Packed;
use descriptors::{Descriptors, Fields};
use id_index::IdIndex;
use position_table::PositionTable;

/// One member as this node knows it: a view assembled from its row, its descriptor and
/// its accuser, if any. Cheap to build (no allocation), and `Copy`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    pub id: NodeId,
    pub addr: SocketAddr,
    /// `addr` in wire form (gossiped as is), the name and the metadata.
    pub packed: Packed<'a>,
    pub incarnation: u64,
    pub state: MemberState,
    /// Why it is suspect or dead.
    pub cause: Cause,
    /// Who suspected or convicted it (gossiped with Suspect/Dead).
    pub accuser: NodeId,
    /// When the state last changed (for reaping).
    pub since: Time,
    /// When a datagram from it (sender id and address both its own) last arrived: a
    /// refusal reported while it keeps talking to us is not evidence of a crash.
    pub heard: Option<Time>,
}

impl Entry<'_> {
    /// The version as push-pull digests carry it.
    #[cfg(test)]
    pub fn digest_version(&self) -> u64 {
        wire::pack_version(self.incarnation, self.state.rank())
    }

    pub fn snapshot(self) -> Member {
        Member {
            id: self.id,
            name: copy(self.packed.name()),
            addr: self.addr,
            incarnation: self.incarnation,
            state: self.state,
            metadata: copy(self.packed.metadata()),
        }
    }
}

/// An owned copy for an event or a snapshot; empty fields (most metadata) allocate
/// nothing.
fn copy(b: &[u8]) -> Bytes {
    if b.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(b)
    }
}

/// The local member, as the table starts with it.
pub(crate) struct Local<'a> {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub name: &'a [u8],
    pub metadata: &'a [u8],
    pub incarnation: u64,
    pub now: Time,
}

/// An incoming claim about a member.
#[derive(Clone, Debug)]
pub(crate) struct Update<'a> {
    pub id: NodeId,
    pub incarnation: u64,
    pub state: MemberState,
    pub cause: Cause,
    pub accuser: NodeId,
    /// Present only with Alive: the member's descriptor.
    pub descriptor: Option<Descriptor<'a>>,
}

/// What an Alive message carries besides the version, borrowed from the received
/// datagram; `Members::apply` copies what it keeps. `addr` is `addr_wire` decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Descriptor<'a> {
    pub name: &'a [u8],
    pub addr: SocketAddr,
    pub addr_wire: &'a [u8],
    pub metadata: &'a [u8],
}

/// What applying an update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Older than or equal to what we know.
    Stale,
    /// A member we do not know, without an address (Suspect/Dead about a stranger):
    /// nothing to record.
    Unknown,
    /// Would exceed `max_members`.
    Full,
    /// Accepted: the previous state, if the member was known.
    Changed {
        previous: Option<(MemberState, u64)>,
    },
}

/// Rows the row `Vec` grows by at least, and the fraction of its length it grows by
/// otherwise (1/16): geometric, so inserts stay amortized O(1), with at most a
/// sixteenth of it spare instead of the doubling's half. Every node of a simulated
/// cluster holds a table of every member, so the spare capacity is paid n² times.
const GROW_MIN: usize = 16;

/// `Row::refs` bits: the live-peer slot, the verdict flag, the descriptor's offset.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// A slot value meaning "not a live peer" (dead, departed, or self). `max_members` is
/// at most 10,000,000, below it.
const NOT_A_PEER: u32 = SLOT_MASK as u32;
/// Set when the member's accuser and cause are in `Members::verdicts`.
const VERDICT_BIT: u64 = 1 << SLOT_BITS;
const OFFSET_SHIFT: u32 = SLOT_BITS + 1;

/// `Row::heard` of a member never heard from. `Time::MAX` is 584 years after the
/// caller's origin: no datagram arrives then.
const NEVER: Time = Time::MAX;

/// 40 bytes: what the table stores per member.
#[derive(Clone, Copy, Debug)]
struct Row {
    id: NodeId,
    /// `wire::pack_version(incarnation, rank)`: incarnations are at most
    /// `MAX_INCARNATION + 1` (< 2^62), so the packing loses nothing, and comparing two
    /// packed versions is SWIM precedence.
    version: u64,
    since: Time,
    heard: Time,
    /// Descriptor offset << `OFFSET_SHIFT` | verdict flag | live-peer slot.
    refs: u64,
}

impl Row {
    #[inline]
    fn state(&self) -> MemberState {
        match self.version & 3 {
            0 => MemberState::Alive,
            1 => MemberState::Suspect,
            2 => MemberState::Dead,
            _ => MemberState::Left,
        }
    }

    #[inline]
    fn incarnation(&self) -> u64 {
        self.version >> 2
    }

    fn peer_slot(&self) -> u32 {
        (self.refs & SLOT_MASK) as u32
    }

    fn set_peer_slot(&mut self, slot: u32) {
        self.refs = (self.refs & !SLOT_MASK) | (u64::from(slot) & SLOT_MASK);
    }

    #[inline]
    fn offset(&self) -> u64 {
        self.refs >> OFFSET_SHIFT
    }

    fn set_offset(&mut self, at: u64) {
        self.refs = (self.refs & (SLOT_MASK | VERDICT_BIT)) | (at << OFFSET_SHIFT);
    }

    #[inline]
    fn has_verdict(&self) -> bool {
        self.refs & VERDICT_BIT != 0
    }
}

/// The address of row `i` of `rows`: the local member's as given, a peer's decoded
/// from its descriptor.
#[inline]
fn row_addr(rows: &[Row], descriptors: &Descriptors, local: SocketAddr, i: usize) -> SocketAddr {
    if i == 0 {
        return local;
    }
    // Every peer's descriptor was validated on receipt (`alive_update`).
    wire::decode_addr(descriptors.addr_wire(rows[i].offset()))
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
}

/// `id` mixed under `key` (odd): a bijection, so distinct ids stay distinct, whose high
/// bits depend on every bit of the id. Two multiplies, cheaper than a general-purpose
/// hasher on the lookup every datagram makes.
#[inline]
fn mix(key: u64, id: NodeId) -> u64 {
    let h = (id.0 ^ (id.0 >> 32)).wrapping_mul(key);
    (h ^ (h >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The distance from `from` back to `to` on the ring: members monitored by `from` are
/// its nearest predecessors.
fn ring_distance(from: u64, to: NodeId) -> u64 {
    from.wrapping_sub(to.ring_position())
}

#[derive(Debug)]
pub(crate) struct Members {
    /// Self first: the local row is inserted at construction and never removed, and
    /// removal (`reap`) keeps order, so it stays at index 0 and is read without a lookup.
    rows: Vec<Row>,
    descriptors: Descriptors,
    /// Positions in `rows`, hashed by id (`mix` under `mix_key`, from the node's seed,
    /// so a peer cannot choose ids that collide): lookups.
    lookup: PositionTable,
    mix_key: u64,
    /// Positions in `rows`, by id: digests walk id ranges.
    by_id: IdIndex,
    /// Accuser and cause of members whose pair is not (itself, silence).
    verdicts: HashMap<NodeId, (NodeId, Cause), Keyed>,
    /// The local member's address as given (a peer's is its descriptor's, decoded).
    local_addr: SocketAddr,
    hasher: Keyed,
    /// How many predecessors `preds` keeps: the node's `monitors`.
    monitors: usize,
    /// The `monitors` live members nearest before this node on the ring (fewer if fewer
    /// are live), nearest first: whom this node monitors.
    preds: Vec<NodeId>,
    /// Live members other than self, for uniform random choice in O(1). Each one's
    /// index here is kept in its row (the slot), so removal is a swap with the last.
    live_peers: Vec<NodeId>,
    /// Live members other than self, as positions in `rows` hashed by address, to
    /// attribute a refusal the network reports for an address (ICMP port unreachable)
    /// to the member living there. At most one per address: the latest to come alive
    /// there or, live, to move there. Every position here is of a row whose address is
    /// the one it is hashed under (`apply` unfiles a member before its address changes
    /// and files it again after).
    live_by_addr: HashTable<u32>,
}

impl Members {
    /// A table holding only `local`, hashed under `hasher` (see `hashing`), keeping the
    /// `monitors` members the local one monitors.
    pub fn new(local: Local<'_>, hasher: Keyed, monitors: usize) -> Members {
        let mut m = Members {
            rows: Vec::new(),
            descriptors: Descriptors::default(),
            lookup: PositionTable::default(),
            mix_key: hasher.hash_one(0x006d_6978_5f6b_6579_u64) | 1,
            by_id: IdIndex::default(),
            verdicts: HashMap::with_hasher(hasher.clone()),
            local_addr: local.addr,
            hasher,
            monitors,
            preds: Vec::with_capacity(monitors),
            live_peers: Vec::new(),
            live_by_addr: HashTable::new(),
        };
        let at = m.descriptors.push(Fields {
            addr_wire: &wire::encode_addr(local.addr),
            name: local.name,
            metadata: local.metadata,
        });
        m.push(Row {
            id: local.id,
            version: wire::pack_version(local.incarnation, MemberState::Alive.rank()),
            since: local.now,
            heard: NEVER,
            refs: at << OFFSET_SHIFT,
        });
        m
    }

    /// The position of `id` in `rows`.
    #[inline]
    fn position(&self, id: NodeId) -> Option<usize> {
        let rows = &self.rows;
        self.lookup
            .find(mix(self.mix_key, id), |p| rows[p as usize].id == id)
            .map(|p| p as usize)
    }

    /// The address of row `i`.
    #[inline]
    fn addr_at(&self, i: usize) -> SocketAddr {
        row_addr(&self.rows, &self.descriptors, self.local_addr, i)
    }

    /// The view of row `i`.
    #[inline]
    fn entry(&self, i: usize) -> Entry<'_> {
        let r = &self.rows[i];
        let (accuser, cause) = if r.has_verdict() {
            self.verdicts
                .get(&r.id)
                .copied()
                .unwrap_or((r.id, Cause::Silence))
        } else {
            (r.id, Cause::Silence)
        };
        Entry {
            id: r.id,
            addr: self.addr_at(i),
            packed: self.descriptors.view(r.offset()),
            incarnation: r.incarnation(),
            state: r.state(),
            cause,
            accuser,
            since: r.since,
            heard: (r.heard != NEVER).then_some(r.heard),
        }
    }

    /// Records row `i`'s accuser and cause.
    fn set_verdict(&mut self, i: usize, accuser: NodeId, cause: Cause) {
        let r = &mut self.rows[i];
        if accuser == r.id && cause == Cause::Silence {
            if r.has_verdict() {
                r.refs &= !VERDICT_BIT;
                self.verdicts.remove(&r.id);
            }
        } else {
            r.refs |= VERDICT_BIT;
            self.verdicts.insert(r.id, (accuser, cause));
        }
    }

    /// Appends a member not in the table.
    fn push(&mut self, mut r: Row) {
        r.set_peer_slot(NOT_A_PEER);
        if self.rows.len() == self.rows.capacity() {
            self.rows
                .reserve_exact((self.rows.len() / 16).max(GROW_MIN));
        }
        let i = u32::try_from(self.rows.len()).expect("max_members is far below u32::MAX");
        self.rows.push(r);
        let (rows, key) = (&self.rows, self.mix_key);
        let hash = mix(key, rows[i as usize].id);
        self.lookup
            .insert(i, hash, |p| mix(key, rows[p as usize].id));
        self.by_id.insert(i, |p| rows[p as usize].id.0);
    }

    /// Files row `i` as the live member at its address, replacing whoever was.
    fn file_addr(&mut self, i: usize) {
        let addr = self.addr_at(i);
        let hash = self.hasher.hash_one(addr);
        let (rows, descriptors, local) = (&self.rows, &self.descriptors, self.local_addr);
        let at = |j: u32| row_addr(rows, descriptors, local, j as usize);
        match self.live_by_addr.find_mut(hash, |&j| at(j) == addr) {
            Some(slot) => *slot = i as u32,
            None => {
                let hasher = &self.hasher;
                self.live_by_addr
                    .insert_unique(hash, i as u32, |&j| hasher.hash_one(at(j)));
            }
        }
    }

    /// Unfiles row `i` from its address, if it is the member filed there.
    fn unfile_addr(&mut self, i: usize) {
        let hash = self.hasher.hash_one(self.addr_at(i));
        if let Ok(slot) = self.live_by_addr.find_entry(hash, |&j| j as usize == i) {
            slot.remove();
        }
    }

    #[inline]
    pub fn get(&self, id: NodeId) -> Option<Entry<'_>> {
        self.position(id).map(|i| self.entry(i))
    }

    /// Names a new confirmer of a member suspected at `incarnation`, with the cause of
    /// *its* suspicion: the pair gossiped must describe one accuser's own evidence, or a
    /// silence confirmation of a refused member would travel as a second refusal.
    /// Whether the entry was there to rename.
    pub fn rename_accuser(
        &mut self,
        id: NodeId,
        incarnation: u64,
        accuser: NodeId,
        cause: Cause,
    ) -> bool {
        let Some(i) = self.position(id) else {
            return false;
        };
        let r = &self.rows[i];
        if r.state() != MemberState::Suspect || r.incarnation() != incarnation {
            return false;
        }
        self.set_verdict(i, accuser, cause);
        true
    }

    /// Replaces the local member's metadata (its address and name stay).
    pub fn set_local_metadata(&mut self, metadata: &[u8]) {
        let old = self.rows[0].offset();
        let f = self.descriptors.get(old);
        let (addr_wire, name) = (f.addr_wire.to_vec(), f.name.to_vec());
        let at = self.descriptors.push(Fields {
            addr_wire: &addr_wire,
            name: &name,
            metadata,
        });
        self.descriptors.release(old);
        self.rows[0].set_offset(at);
        self.maybe_compact();
    }

    #[inline]
    pub fn local(&self) -> Entry<'_> {
        self.entry(0)
    }

    pub fn local_id(&self) -> NodeId {
        self.rows[0].id
    }

    /// Every known member, self and tombstones included, in a deterministic order.
    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> {
        (0..self.rows.len()).map(|i| self.entry(i))
    }

    /// Known members, self and tombstones included.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Live members, self included: the `n` in the protocol's formulas.
    pub fn live_count(&self) -> usize {
        self.live_peers.len() + 1
    }

    /// Live members other than self, in an order that depends only on the sequence of
    /// changes (a seeded choice of index is a deterministic choice of member).
    pub fn live_peers(&self) -> &[NodeId] {
        &self.live_peers
    }

    /// Whether `id` is a live member other than self.
    pub fn is_live_peer(&self, id: NodeId) -> bool {
        self.position(id)
            .is_some_and(|i| self.rows[i].peer_slot() != NOT_A_PEER)
    }

    /// Applies `u` under the precedence order. `max_members` bounds new entries.
    pub fn apply(&mut self, u: &Update<'_>, now: Time, max_members: usize) -> Applied {
        let local = self.local_id();
        let version = wire::pack_version(u.incarnation, u.state.rank());
        match self.position(u.id) {
            Some(i) => {
                let r = &mut self.rows[i];
                if version <= r.version {
                    return Applied::Stale;
                }
                let previous = Some((r.state(), r.incarnation()));
                let was_live = r.state().is_live();
                if r.state() != u.state {
                    r.since = now;
                }
                r.version = version;
                self.set_verdict(i, u.accuser, u.cause);
                if let Some(d) = &u.descriptor {
                    let old_addr = self.addr_at(i);
                    let old = self.rows[i].offset();
                    let f = self.descriptors.get(old);
                    let moved = old_addr != d.addr;
                    let changed =
                        f.addr_wire != d.addr_wire || f.name != d.name || f.metadata != d.metadata;
                    // Descriptor fields are slices of the received datagram: copy them
                    // if they changed, so the entry does not pin the datagram.
                    if changed
                        && d.addr_wire.len() <= usize::from(u16::MAX)
                        && d.name.len() <= usize::from(u16::MAX)
                    {
                        if moved && was_live && u.id != local {
                            // Moved while live: re-file it under the new address.
                            self.unfile_addr(i);
                        }
                        let at = self.descriptors.push(Fields {
                            addr_wire: d.addr_wire,
                            name: d.name,
                            metadata: d.metadata,
                        });
                        self.descriptors.release(old);
                        self.rows[i].set_offset(at);
                        if i == 0 {
                            self.local_addr = d.addr;
                        }
                        if moved && was_live && u.id != local {
                            self.file_addr(i);
                        }
                        self.maybe_compact();
                    } else if moved && i == 0 {
                        self.local_addr = d.addr;
                    }
                }
                let is_live = self.rows[i].state().is_live();
                if was_live != is_live && u.id != local {
                    self.set_live(i, is_live);
                }
                Applied::Changed { previous }
            }
            None => {
                let Some(d) = &u.descriptor else {
                    return Applied::Unknown;
                };
                if self.rows.len() >= max_members {
                    return Applied::Full;
                }
                if d.addr_wire.len() > usize::from(u16::MAX) || d.name.len() > usize::from(u16::MAX)
                {
                    return Applied::Unknown;
                }
                let at = self.descriptors.push(Fields {
                    addr_wire: d.addr_wire,
                    name: d.name,
                    metadata: d.metadata,
                });
                self.push(Row {
                    id: u.id,
                    version,
                    since: now,
                    heard: NEVER,
                    refs: at << OFFSET_SHIFT,
                });
                let i = self.rows.len() - 1;
                self.set_verdict(i, u.accuser, u.cause);
                if u.state.is_live() {
                    self.set_live(i, true);
                }
                Applied::Changed { previous: None }
            }
        }
    }

    /// Merges the id index's pending positions.
    fn flush_indexes(&mut self) {
        let rows = &self.rows;
        self.by_id.flush(|p| rows[p as usize].id.0);
    }

    /// Compacts the descriptor buffer once garbage is most of it.
    fn maybe_compact(&mut self) {
        if !self.descriptors.wants_compaction() {
            return;
        }
        let mut offsets: Vec<u64> = self.rows.iter().map(Row::offset).collect();
        self.descriptors.compact(offsets.iter_mut());
        for (r, at) in self.rows.iter_mut().zip(offsets) {
            r.set_offset(at);
        }
    }

    /// Moves row `i` (not self) into or out of the live indexes.
    fn set_live(&mut self, i: usize, live: bool) {
        let id = self.rows[i].id;
        if live {
            self.add_pred(id);
            if self.rows[i].peer_slot() == NOT_A_PEER {
                let slot = u32::try_from(self.live_peers.len())
                    .expect("max_members is far below u32::MAX");
                self.rows[i].set_peer_slot(slot);
                self.live_peers.push(id);
            }
            self.file_addr(i);
        } else {
            let slot = self.rows[i].peer_slot();
            self.rows[i].set_peer_slot(NOT_A_PEER);
            // The slot always indexes `live_peers` (`check_indexes`); the bound is
            // checked anyway, since `swap_remove` would panic past it.
            if slot != NOT_A_PEER && (slot as usize) < self.live_peers.len() {
                let slot = slot as usize;
                self.live_peers.swap_remove(slot);
                // The last peer moved into the hole: tell its row.
                if let Some(&moved) = self.live_peers.get(slot)
                    && let Some(j) = self.position(moved)
                {
                    self.rows[j].set_peer_slot(slot as u32);
                }
            }
            self.remove_pred(id);
            self.unfile_addr(i);
        }
    }

    /// `id` came alive: one of the nearest predecessors now?
    fn add_pred(&mut self, id: NodeId) {
        if self.monitors == 0 || self.preds.contains(&id) {
            return;
        }
        let from = self.local_id().ring_position();
        let d = ring_distance(from, id);
        let at = self.preds.partition_point(|&p| ring_distance(from, p) < d);
        if at < self.monitors {
            if self.preds.len() == self.monitors {
                self.preds.pop();
            }
            self.preds.insert(at, id);
        }
    }

    /// `id` is no longer live (and no longer in `live_peers`): if it was a nearest
    /// predecessor, the next one takes its place.
    fn remove_pred(&mut self, id: NodeId) {
        let Some(at) = self.preds.iter().position(|&p| p == id) else {
            return;
        };
        let from = self.local_id().ring_position();
        let was_full = self.preds.len() == self.monitors;
        let farthest = self.preds.last().map_or(0, |&p| ring_distance(from, p));
        self.preds.remove(at);
        if !was_full {
            // Every live member was kept already.
            return;
        }
        // Everyone nearer than the farthest kept is kept: the next is the nearest
        // beyond it. Rare (a monitored member died or left) and O(n).
        if let Some(next) = self
            .live_peers
            .iter()
            .copied()
            .filter(|&p| ring_distance(from, p) > farthest)
            .min_by_key(|&p| ring_distance(from, p))
        {
            self.preds.push(next);
        }
    }

    /// The live member (other than self) at `addr`, if any.
    pub fn live_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.live_by_addr
            .find(self.hasher.hash_one(addr), |&j| {
                self.addr_at(j as usize) == addr
            })
            .map(|&j| self.rows[j as usize].id)
    }

    /// Notes that a datagram from member `id` arrived from `from` at `now` (ignored
    /// unless `from` is the member's own address).
    pub fn heard_from(&mut self, id: NodeId, from: SocketAddr, now: Time) {
        if let Some(i) = self.position(id)
            && self.addr_at(i) == from
        {
            self.rows[i].heard = now;
        }
    }

    /// Changes the local member's incarnation/state in place (only the member itself
    /// does this).
    pub fn update_local(&mut self, incarnation: u64, state: MemberState, now: Time) {
        let r = &mut self.rows[0];
        if r.state() != state {
            r.since = now;
        }
        r.version = wire::pack_version(incarnation, state.rank());
    }

    /// Forgets dead and departed members older than `retention`; returns their ids.
    pub fn reap(&mut self, now: Time, retention: std::time::Duration, out: &mut Vec<NodeId>) {
        // The periodic sweep is where pending index entries join the sorted ones, so a
        // lookup in a settled table searches one list.
        self.flush_indexes();
        let local = self.local_id();
        let before = out.len();
        let reaped = |r: &Row| {
            r.id != local && !r.state().is_live() && now.saturating_since(r.since) >= retention
        };
        out.extend(self.rows.iter().filter(|r| reaped(r)).map(|r| r.id));
        if out.len() == before {
            return;
        }
        // Removal keeps order, so every later row moves down: renumber the indexes.
        // The reaped are not live, so none of them is filed by address.
        let mut moved_to = vec![u32::MAX; self.rows.len()];
        let mut next = 0u32;
        for (slot, r) in moved_to.iter_mut().zip(&self.rows) {
            if reaped(r) {
                self.descriptors.release(r.offset());
                if r.has_verdict() {
                    self.verdicts.remove(&r.id);
                }
            } else {
                *slot = next;
                next += 1;
            }
        }
        self.rows.retain(|r| !reaped(r));
        let (rows, key) = (&self.rows, self.mix_key);
        self.lookup
            .rebuild(rows.len(), |p| mix(key, rows[p as usize].id));
        self.by_id.renumber(&moved_to);
        // Addresses do not change, so neither do the hashes: renumber in place.
        for j in self.live_by_addr.iter_mut() {
            *j = moved_to[*j as usize];
        }
        self.maybe_compact();
    }

    /// Known members in `lo..=hi` with their digest versions, ascending by id.
    pub fn versions_in_range(
        &self,
        lo: NodeId,
        hi: NodeId,
    ) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        let rows = &self.rows;
        self.by_id
            .range(lo.0, hi.0, move |p| rows[p as usize].id.0)
            .map(move |p| {
                let r = &rows[p as usize];
                (r.id, r.version)
            })
    }

    /// The members this node monitors: the `k` live members preceding it on the ring
    /// (each member is monitored by its `k` successors). Fewer when the cluster is small.
    pub fn monitored_by_local(&self, k: usize, out: &mut Vec<NodeId>) {
        out.clear();
        if k == self.monitors {
            out.extend_from_slice(&self.preds);
            return;
        }
        // Not the `k` kept: rank every live peer (tests).
        let from = self.local_id().ring_position();
        out.extend_from_slice(&self.live_peers);
        out.sort_unstable_by_key(|&p| ring_distance(from, p));
        out.truncate(k);
    }

    /// Whether `target` is among the `k` members this node monitors (cheap enough to
    /// call per message: k ≤ 16 ring steps).
    #[cfg(test)]
    pub fn monitors_of(&self, target: NodeId, k: usize) -> Vec<NodeId> {
        // The members whose nearest predecessors include `target`: its nearest
        // successors, self included.
        let to = target.ring_position();
        let mut live: Vec<NodeId> = self.live_peers.clone();
        live.push(self.local_id());
        live.retain(|&p| p != target);
        live.sort_unstable_by_key(|&p| p.ring_position().wrapping_sub(to));
        live.truncate(k);
        live
    }
}

#[cfg(test)]
impl Members {
    /// Panics unless every index agrees with `rows`.
    fn check_indexes(&self) {
        let local = self.local_id();
        assert_eq!(self.rows[0].id, local, "self first");
        assert_eq!(self.by_id.len(), self.rows.len());
        assert_eq!(self.lookup.len(), self.rows.len());
        let mut live = Vec::new();
        for (i, e) in self.iter().enumerate() {
            assert_eq!(
                self.position(e.id),
                Some(i),
                "{} filed at its position",
                e.id
            );
            let is_peer = e.state.is_live() && e.id != local;
            if is_peer {
                live.push(e.id);
            }
            assert_eq!(self.live_peers.contains(&e.id), is_peer);
            let slot = self.rows[i].peer_slot();
            if is_peer {
                assert_eq!(self.live_peers[slot as usize], e.id, "peer slot");
            } else {
                assert_eq!(slot, NOT_A_PEER);
            }
            let default = (e.accuser, e.cause) == (e.id, Cause::Silence);
            assert_eq!(self.rows[i].has_verdict(), !default);
            assert_eq!(self.verdicts.contains_key(&e.id), !default);
        }
        assert_eq!(
            self.verdicts.len(),
            self.rows.iter().filter(|r| r.has_verdict()).count()
        );
        let mut versions: Vec<(NodeId, u64)> =
            self.iter().map(|e| (e.id, e.digest_version())).collect();
        versions.sort_unstable();
        assert_eq!(
            self.versions_in_range(NodeId(0), NodeId(u64::MAX))
                .collect::<Vec<_>>(),
            versions
        );
        assert_eq!(self.live_peers.len(), live.len());
        // The kept predecessors are the nearest `monitors` live members.
        let from = local.ring_position();
        live.sort_unstable_by_key(|&p| ring_distance(from, p));
        live.truncate(self.monitors);
        assert_eq!(self.preds, live);
        for &j in &self.live_by_addr {
            let e = self.entry(j as usize);
            assert!(e.state.is_live() && e.id != local);
            assert_eq!(self.live_at(e.addr), Some(e.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn addr(id: u64) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7000 + id as u16)
    }

    /// A table whose local member is `id`, keeping 3 monitored members.
    fn table(id: u64) -> Members {
        let name = format!("n{id}");
        Members::new(
            Local {
                id: NodeId(id),
                addr: addr(id),
                name: name.as_bytes(),
                metadata: &[],
                incarnation: 0,
                now: Time::ZERO,
            },
            Keyed::default(),
            3,
        )
    }

    fn update(id: u64, incarnation: u64, state: MemberState) -> Update<'static> {
        // Leaked: tests only, and an update borrows its descriptor from a datagram.
        let name: &'static [u8] = Box::leak(format!("n{id}").into_bytes().into_boxed_slice());
        let addr_wire: &'static [u8] =
            Box::leak(wire::encode_addr(addr(id)).to_vec().into_boxed_slice());
        Update {
            id: NodeId(id),
            incarnation,
            state,
            cause: Cause::Silence,
            accuser: NodeId(99),
            descriptor: (state == MemberState::Alive).then_some(Descriptor {
                name,
                addr: addr(id),
                addr_wire,
                metadata: &[],
            }),
        }
    }

    use MemberState::*;

    #[test]
    fn a_row_fits_40_bytes() {
        // Every node holds one per member; tests/alloc_budget.rs's budget counts on it.
        assert!(std::mem::size_of::<Row>() <= 40);
    }

    #[test]
    fn swim_precedence() {
        let cases = [
            // (known, incoming, accepted)
            ((1, Alive), (2, Alive), true),
            ((1, Alive), (1, Alive), false),
            ((1, Alive), (1, Suspect), true),
            ((1, Alive), (0, Suspect), false),
            ((1, Suspect), (1, Alive), false),
            ((1, Suspect), (2, Alive), true),
            ((1, Suspect), (1, Suspect), false),
            ((1, Suspect), (2, Suspect), true),
            ((1, Suspect), (1, Dead), true),
            ((1, Alive), (1, Dead), true),
            ((5, Alive), (4, Dead), false),
            ((1, Dead), (1, Alive), false),
            ((1, Dead), (2, Alive), true),
            ((1, Dead), (1, Left), true),
            ((1, Left), (1, Dead), false),
            ((1, Left), (2, Alive), true),
        ];
        for ((ki, ks), (ii, is), accepted) in cases {
            let mut m = table(100);
            m.apply(&update(1, ki, Alive), Time::ZERO, 10);
            if ks != Alive {
                m.apply(&update(1, ki, ks), Time::ZERO, 10);
            }
            let r = m.apply(&update(1, ii, is), Time::ZERO, 10);
            assert_eq!(
                matches!(r, Applied::Changed { .. }),
                accepted,
                "known {ks:?}({ki}) incoming {is:?}({ii})"
            );
        }
    }

    #[test]
    fn dead_member_leaves_ring_and_live_set() {
        let mut m = table(100);
        m.apply(&update(1, 0, Alive), Time::ZERO, 10);
        assert_eq!(m.live_count(), 2);
        m.apply(&update(1, 0, Dead), Time::ZERO, 10);
        assert_eq!(m.live_count(), 1);
        assert!(m.live_peers().is_empty());
        m.apply(&update(1, 1, Alive), Time::ZERO, 10);
        assert_eq!(m.live_count(), 2);
    }

    #[test]
    fn max_members_bounds_new_entries() {
        let mut m = table(100);
        assert!(matches!(
            m.apply(&update(1, 0, Alive), Time::ZERO, 2),
            Applied::Changed { .. }
        ));
        assert_eq!(m.apply(&update(2, 0, Alive), Time::ZERO, 2), Applied::Full);
        assert_eq!(
            m.apply(&update(3, 0, Dead), Time::ZERO, 2),
            Applied::Unknown
        );
    }

    #[test]
    fn reap_forgets_old_tombstones_only() {
        let mut m = table(100);
        m.apply(&update(1, 0, Alive), Time::ZERO, 10);
        m.apply(&update(2, 0, Alive), Time::ZERO, 10);
        m.apply(&update(1, 0, Dead), Time::from_secs(1), 10);
        let mut out = Vec::new();
        m.reap(
            Time::from_secs(5),
            std::time::Duration::from_secs(10),
            &mut out,
        );
        assert!(out.is_empty());
        m.reap(
            Time::from_secs(11),
            std::time::Duration::from_secs(10),
            &mut out,
        );
        assert_eq!(out, vec![NodeId(1)]);
        assert_eq!(m.len(), 2);
        // Reaping keeps the local entry first, where `local` reads it.
        assert_eq!(m.local().id, NodeId(100));
        let ids: Vec<_> = m.versions_in_range(NodeId(0), NodeId(u64::MAX)).collect();
        assert_eq!(ids, vec![(NodeId(2), 0), (NodeId(100), 0)]);
    }

    #[test]
    fn a_changed_descriptor_is_repacked() {
        let mut m = table(100);
        m.apply(&update(1, 0, Alive), Time::ZERO, 10);
        let mut u = update(1, 1, Alive);
        if let Some(d) = u.descriptor.as_mut() {
            d.metadata = b"v2";
        }
        m.apply(&u, Time::ZERO, 10);
        let e = m.get(NodeId(1)).unwrap();
        assert_eq!(e.packed.metadata(), b"v2");
        assert_eq!(e.packed.name(), b"n1");
    }

    #[test]
    fn digest_versions_follow_every_change() {
        let mut m = table(100);
        m.apply(&update(1, 0, Alive), Time::ZERO, 10);
        m.apply(&update(1, 3, Suspect), Time::ZERO, 10);
        m.update_local(7, Alive, Time::ZERO);
        let versions: Vec<_> = m.versions_in_range(NodeId(0), NodeId(u64::MAX)).collect();
        let expected: Vec<_> = [NodeId(1), NodeId(100)]
            .iter()
            .map(|id| (*id, m.get(*id).unwrap().digest_version()))
            .collect();
        assert_eq!(versions, expected);
        assert_eq!(versions[0].1, crate::wire::pack_version(3, Suspect.rank()));
        assert_eq!(versions[1].1, crate::wire::pack_version(7, Alive.rank()));
        // A stale update changes nothing, the range bounds are inclusive.
        m.apply(&update(1, 2, Dead), Time::ZERO, 10);
        assert_eq!(
            m.versions_in_range(NodeId(1), NodeId(1))
                .collect::<Vec<_>>(),
            vec![versions[0]]
        );
        assert_eq!(m.versions_in_range(NodeId(2), NodeId(1)).count(), 0);
    }

    #[test]
    fn every_member_has_k_monitors_and_monitoring_is_consistent() {
        // Build the same ring at every member and check that "x monitors y" computed
        // from x's side agrees with "y's monitors" computed from y's side.
        let ids: Vec<u64> = (1..=20).collect();
        let tables: Vec<Members> = ids
            .iter()
            .map(|&me| {
                let mut m = table(me);
                for &o in &ids {
                    if o != me {
                        m.apply(&update(o, 0, Alive), Time::ZERO, 100);
                    }
                }
                m
            })
            .collect();
        let k = 3;
        for (i, t) in tables.iter().enumerate() {
            let mut targets = Vec::new();
            t.monitored_by_local(k, &mut targets);
            assert_eq!(targets.len(), k);
            for target in targets {
                let monitors = tables[0].monitors_of(target, k);
                assert!(monitors.contains(&NodeId(ids[i])), "{i} monitors {target}");
            }
        }
        // Tiny clusters: monitor whoever exists.
        let mut m = table(1);
        let mut out = Vec::new();
        m.monitored_by_local(3, &mut out);
        assert!(out.is_empty());
        m.apply(&update(2, 0, Alive), Time::ZERO, 10);
        m.monitored_by_local(3, &mut out);
        assert_eq!(out, vec![NodeId(2)]);
    }

    fn arb_state() -> impl Strategy<Value = MemberState> {
        prop_oneof![Just(Alive), Just(Suspect), Just(Dead), Just(Left)]
    }

    proptest! {
        /// Any delivery order of the same updates converges to the same states.
        #[test]
        fn order_independent(updates in prop::collection::vec((1u64..5, 0u64..4, arb_state()), 1..40), seed in any::<u64>()) {
            let apply_all = |order: &[(u64, u64, MemberState)]| {
                let mut m = table(100);
                // Every member is first introduced by an Alive(0) so Suspect/Dead about
                // it are not about a stranger.
                for id in 1..5 {
                    m.apply(&update(id, 0, Alive), Time::ZERO, 100);
                }
                for &(id, inc, st) in order {
                    m.apply(&update(id, inc, st), Time::ZERO, 100);
                }
                let mut v: Vec<_> = m.iter().map(|e| (e.id, e.incarnation, e.state)).collect();
                v.sort();
                (v, m.live_count())
            };
            let mut shuffled = updates.clone();
            // A deterministic shuffle from the seed.
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            prop_assert_eq!(apply_all(&updates), apply_all(&shuffled));
        }
    }

    fn at(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    /// `update`, with the descriptor's address at `port` (Alive only).
    fn update_at(id: u64, incarnation: u64, state: MemberState, port: u16) -> Update<'static> {
        let mut u = update(id, incarnation, state);
        if let Some(d) = u.descriptor.as_mut() {
            d.addr = at(port);
            d.addr_wire = Box::leak(wire::encode_addr(at(port)).to_vec().into_boxed_slice());
        }
        u
    }

    #[derive(Clone, Debug)]
    enum Op {
        Apply(u64, u64, MemberState, u16),
        Reap(u64),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u64..7, 0u64..4, arb_state(), 1u16..4).prop_map(|(i, n, s, p)| Op::Apply(i, n, s, p)),
            1 => (0u64..20).prop_map(Op::Reap),
        ]
    }

    proptest! {
        /// The indexes agree with the entries after any sequence of updates and reaps,
        /// and the address index follows the rules of a map from address to the latest
        /// member to come alive (or move) there, which is what refusal attribution reads.
        #[test]
        fn indexes_follow_the_entries(ops in prop::collection::vec(arb_op(), 1..60)) {
            let mut m = table(100);
            let mut by_addr: BTreeMap<SocketAddr, NodeId> = BTreeMap::new();
            let mut now = Time::ZERO;
            for op in ops {
                match op {
                    Op::Apply(id, inc, state, port) => {
                        let before = m.get(NodeId(id)).map(|e| (e.addr, e.state.is_live()));
                        let u = update_at(id, inc, state, port);
                        if let Applied::Changed { .. } = m.apply(&u, now, 100) {
                            let (old_addr, was_live) = before.unwrap_or((at(port), false));
                            let new_addr = u.descriptor.as_ref().map_or(old_addr, |d| d.addr);
                            let is_live = state.is_live();
                            if was_live && is_live && old_addr != new_addr {
                                if by_addr.get(&old_addr) == Some(&NodeId(id)) {
                                    by_addr.remove(&old_addr);
                                }
                                by_addr.insert(new_addr, NodeId(id));
                            }
                            if !was_live && is_live {
                                by_addr.insert(new_addr, NodeId(id));
                            }
                            if was_live && !is_live && by_addr.get(&new_addr) == Some(&NodeId(id)) {
                                by_addr.remove(&new_addr);
                            }
                        }
                    }
                    Op::Reap(secs) => {
                        now += std::time::Duration::from_secs(secs);
                        let mut out = Vec::new();
                        m.reap(now, std::time::Duration::from_secs(10), &mut out);
                        for id in out {
                            prop_assert!(m.get(id).is_none());
                        }
                    }
                }
                m.check_indexes();
                for port in 1u16..4 {
                    prop_assert_eq!(m.live_at(at(port)), by_addr.get(&at(port)).copied());
                }
            }
        }
    }
}
