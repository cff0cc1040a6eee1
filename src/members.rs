//! The member table: one entry per known member (self included), SWIM precedence, the
//! monitoring ring and an index of live peers for random choice.
//!
//! Precedence is a total order on `(incarnation, rank)` with rank alive < suspect <
//! dead < left, which is exactly SWIM's rules (Alive(i) beats Suspect(j) iff i > j,
//! Suspect(i) beats Alive(j) iff i ≥ j, Dead/Left beat both at the same incarnation)
//! extended so that only a higher incarnation revives a dead or departed member: the
//! member itself raising its incarnation is how a restarted or wrongly convicted node
//! rejoins. A total order makes convergence independent of delivery order.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::net::SocketAddr;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::event::{Cause, Member, MemberState};
use crate::hashing::Keyed;
use crate::id::NodeId;
use crate::time::Time;

/// A member's address in wire form, name and metadata, in one buffer: one allocation
/// per member instead of three. A plain box, not a reference-counted `Bytes`: gossiping
/// the member borrows the slices (`wire::AliveRef`), so nothing ever shares the buffer,
/// and a `Bytes` would add a 32-byte shared header per member the first time it was
/// cloned, and a reference-count write to a cold cache line per clone and per drop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Packed {
    /// `addr_wire`, then `name`, then `metadata`.
    bytes: Box<[u8]>,
    addr_len: u16,
    name_len: u16,
}

impl Packed {
    /// Packs the three fields; `None` if the address or the name is longer than the
    /// wire allows (18 and `MAX_NAME_LEN` bytes, far below `u16::MAX`).
    pub fn new(addr_wire: &[u8], name: &[u8], metadata: &[u8]) -> Option<Packed> {
        let addr_len = u16::try_from(addr_wire.len()).ok()?;
        let name_len = u16::try_from(name.len()).ok()?;
        // Exactly sized, so `into_boxed_slice` keeps the allocation.
        let mut v = Vec::with_capacity(addr_wire.len() + name.len() + metadata.len());
        v.extend_from_slice(addr_wire);
        v.extend_from_slice(name);
        v.extend_from_slice(metadata);
        Some(Packed {
            bytes: v.into_boxed_slice(),
            addr_len,
            name_len,
        })
    }

    fn name_range(&self) -> std::ops::Range<usize> {
        let start = usize::from(self.addr_len);
        start..start + usize::from(self.name_len)
    }

    pub fn addr_wire(&self) -> &[u8] {
        &self.bytes[..usize::from(self.addr_len)]
    }

    pub fn name(&self) -> &[u8] {
        &self.bytes[self.name_range()]
    }

    pub fn metadata(&self) -> &[u8] {
        &self.bytes[self.name_range().end..]
    }

    /// Whether these are the fields packed here, compared without cloning.
    fn holds(&self, addr_wire: &[u8], name: &[u8], metadata: &[u8]) -> bool {
        let b = &self.bytes[..];
        let (a, n) = (usize::from(self.addr_len), self.name_range());
        b[..a] == *addr_wire && b[n.clone()] == *name && b[n.end..] == *metadata
    }
}

/// One member as this node knows it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: NodeId,
    pub addr: SocketAddr,
    /// `addr` in wire form (cached so gossiping Alive does not re-encode it), the name
    /// and the metadata.
    pub packed: Packed,
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
    /// Its index in `Members::live_peers`, or `NOT_A_PEER`. Kept by `Members` alone:
    /// whatever an entry is built with is overwritten when it is filed.
    pub peer_slot: u32,
}

/// `Entry::peer_slot` of a member that is not a live peer (dead, departed, or self).
pub(crate) const NOT_A_PEER: u32 = u32::MAX;

impl Entry {
    pub fn version(&self) -> (u64, u8) {
        (self.incarnation, self.state.rank())
    }

    /// The version as push-pull digests carry it.
    pub fn digest_version(&self) -> u64 {
        crate::wire::pack_version(self.incarnation, self.state.rank())
    }

    pub fn snapshot(&self) -> Member {
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
/// datagram; `Members::apply` copies what it keeps.
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

/// Entries the entry `Vec` grows by at least, and the fraction of its length it grows
/// by otherwise (1/4): geometric, so inserts stay amortized O(1), with at most a quarter
/// of it spare instead of the doubling's half. Every node of a simulated cluster holds a
/// table of every member, so the spare capacity is paid n² times. (The indexes, of
/// 4-byte positions, grow by hashbrown's own doubling: their slack is small.)
const GROW_MIN: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct Members {
    /// Self first: the local entry is inserted at construction and never removed, and
    /// removal (`reap`) keeps order, so it stays at index 0 and is read without a lookup.
    entries: Vec<Entry>,
    /// Positions in `entries`, hashed by id.
    by_id: HashTable<u32>,
    hasher: Keyed,
    /// Live members (self included) by ring position: monitors of a member are its
    /// successors on this ring.
    ring: BTreeSet<(u64, NodeId)>,
    /// Live members other than self, for uniform random choice in O(1). Each one's
    /// index here is kept in its entry (`peer_slot`), so removal is a swap with the
    /// last: 8 bytes a member, where an `IndexSet` took about 35 (a hash, the key again
    /// and an index table), in a table every node holds for every member.
    live_peers: Vec<NodeId>,
    /// Every known id, sorted, with its digest version (`wire::pack_version`): push-pull
    /// digests walk id ranges here, sequentially, instead of looking up each member in
    /// `entries` (a table of a thousand members is a thousand scattered cache lines,
    /// and every node walks its whole table each push-pull round).
    sorted: BTreeMap<NodeId, u64>,
    /// Live members other than self, as positions in `entries` hashed by address, to
    /// attribute a refusal the network reports for an address (ICMP port unreachable)
    /// to the member living there. At most one per address: the latest to come alive
    /// there or, live, to move there. Every position here is of an entry whose `addr`
    /// is the one it is hashed under (`apply` unfiles a member before its address
    /// changes and files it again after).
    live_by_addr: HashTable<u32>,
}

impl Members {
    /// A table holding only `local`, hashed under `hasher` (see `hashing`).
    pub fn new(local: Entry, hasher: Keyed) -> Members {
        let mut m = Members {
            hasher,
            ..Members::default()
        };
        m.ring.insert((local.id.ring_position(), local.id));
        m.sorted.insert(local.id, local.digest_version());
        m.push(local);
        m
    }

    fn id_hash(&self, id: NodeId) -> u64 {
        self.hasher.hash_one(id)
    }

    fn addr_hash(&self, addr: SocketAddr) -> u64 {
        self.hasher.hash_one(addr)
    }

    /// The position of `id` in `entries`.
    fn position(&self, id: NodeId) -> Option<usize> {
        let entries = &self.entries;
        self.by_id
            .find(self.id_hash(id), |&i| entries[i as usize].id == id)
            .map(|&i| i as usize)
    }

    /// Appends a member not in the table.
    fn push(&mut self, mut e: Entry) {
        e.peer_slot = NOT_A_PEER;
        if self.entries.len() == self.entries.capacity() {
            self.entries
                .reserve_exact((self.entries.len() / 4).max(GROW_MIN));
        }
        let i = u32::try_from(self.entries.len()).expect("max_members is far below u32::MAX");
        let hash = self.id_hash(e.id);
        self.entries.push(e);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.by_id
            .insert_unique(hash, i, |&j| hasher.hash_one(entries[j as usize].id));
    }

    /// Files entry `i` as the live member at its address, replacing whoever was.
    fn file_addr(&mut self, i: usize) {
        let addr = self.entries[i].addr;
        let hash = self.addr_hash(addr);
        let (entries, hasher) = (&self.entries, &self.hasher);
        match self
            .live_by_addr
            .find_mut(hash, |&j| entries[j as usize].addr == addr)
        {
            Some(slot) => *slot = i as u32,
            None => {
                self.live_by_addr.insert_unique(hash, i as u32, |&j| {
                    hasher.hash_one(entries[j as usize].addr)
                });
            }
        }
    }

    /// Unfiles entry `i` from its address, if it is the member filed there.
    fn unfile_addr(&mut self, i: usize) {
        let hash = self.addr_hash(self.entries[i].addr);
        if let Ok(slot) = self.live_by_addr.find_entry(hash, |&j| j as usize == i) {
            slot.remove();
        }
    }

    pub fn get(&self, id: NodeId) -> Option<&Entry> {
        self.position(id).map(|i| &self.entries[i])
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
        let e = &mut self.entries[i];
        if e.state != MemberState::Suspect || e.incarnation != incarnation {
            return false;
        }
        e.accuser = accuser;
        e.cause = cause;
        true
    }

    pub fn get_mut_local(&mut self) -> &mut Entry {
        self.entries
            .first_mut()
            .expect("local member is always present")
    }

    pub fn local(&self) -> &Entry {
        self.entries
            .first()
            .expect("local member is always present")
    }

    pub fn local_id(&self) -> NodeId {
        self.local().id
    }

    /// Every known member, self and tombstones included, in a deterministic order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Known members, self and tombstones included.
    pub fn len(&self) -> usize {
        self.entries.len()
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
            .is_some_and(|i| self.entries[i].peer_slot != NOT_A_PEER)
    }

    /// Applies `u` under the precedence order. `max_members` bounds new entries.
    pub fn apply(&mut self, u: &Update<'_>, now: Time, max_members: usize) -> Applied {
        let local = self.local_id();
        match self.position(u.id) {
            Some(i) => {
                let e = &mut self.entries[i];
                if (u.incarnation, u.state.rank()) <= e.version() {
                    return Applied::Stale;
                }
                let previous = Some((e.state, e.incarnation));
                let was_live = e.state.is_live();
                e.incarnation = u.incarnation;
                if e.state != u.state {
                    e.since = now;
                }
                e.state = u.state;
                e.cause = u.cause;
                e.accuser = u.accuser;
                if let Some(d) = &u.descriptor {
                    // Descriptor fields are slices of the received datagram: copy
                    // them if they changed, so the entry does not pin the datagram.
                    if !e.packed.holds(d.addr_wire, d.name, d.metadata)
                        && let Some(p) = Packed::new(d.addr_wire, d.name, d.metadata)
                    {
                        e.packed = p;
                    }
                    if e.addr != d.addr {
                        if was_live && u.id != local {
                            // Moved while live: re-file it under the new address.
                            self.unfile_addr(i);
                            self.entries[i].addr = d.addr;
                            self.file_addr(i);
                        } else {
                            self.entries[i].addr = d.addr;
                        }
                    }
                }
                let e = &self.entries[i];
                let is_live = e.state.is_live();
                let version = e.digest_version();
                if let Some(v) = self.sorted.get_mut(&u.id) {
                    *v = version;
                }
                if was_live != is_live && u.id != local {
                    self.set_live(i, is_live);
                }
                Applied::Changed { previous }
            }
            None => {
                let Some(d) = &u.descriptor else {
                    return Applied::Unknown;
                };
                if self.entries.len() >= max_members {
                    return Applied::Full;
                }
                let Some(packed) = Packed::new(d.addr_wire, d.name, d.metadata) else {
                    return Applied::Unknown;
                };
                let e = Entry {
                    id: u.id,
                    addr: d.addr,
                    packed,
                    incarnation: u.incarnation,
                    state: u.state,
                    cause: u.cause,
                    accuser: u.accuser,
                    since: now,
                    heard: None,
                    peer_slot: NOT_A_PEER,
                };
                let live = e.state.is_live();
                self.sorted.insert(u.id, e.digest_version());
                self.push(e);
                if live {
                    self.set_live(self.entries.len() - 1, true);
                }
                Applied::Changed { previous: None }
            }
        }
    }

    /// Moves entry `i` (not self) into or out of the live indexes.
    fn set_live(&mut self, i: usize, live: bool) {
        let id = self.entries[i].id;
        if live {
            self.ring.insert((id.ring_position(), id));
            if self.entries[i].peer_slot == NOT_A_PEER {
                self.entries[i].peer_slot = u32::try_from(self.live_peers.len())
                    .expect("max_members is far below u32::MAX");
                self.live_peers.push(id);
            }
            self.file_addr(i);
        } else {
            self.ring.remove(&(id.ring_position(), id));
            let slot = std::mem::replace(&mut self.entries[i].peer_slot, NOT_A_PEER);
            // `peer_slot` always indexes `live_peers` (`check_indexes`); the bound is
            // checked anyway, since `swap_remove` would panic past it.
            if slot != NOT_A_PEER && (slot as usize) < self.live_peers.len() {
                let slot = slot as usize;
                self.live_peers.swap_remove(slot);
                // The last peer moved into the hole: tell its entry.
                if let Some(&moved) = self.live_peers.get(slot)
                    && let Some(j) = self.position(moved)
                {
                    self.entries[j].peer_slot = slot as u32;
                }
            }
            self.unfile_addr(i);
        }
    }

    /// The live member (other than self) at `addr`, if any.
    pub fn live_at(&self, addr: SocketAddr) -> Option<NodeId> {
        let entries = &self.entries;
        self.live_by_addr
            .find(self.addr_hash(addr), |&j| entries[j as usize].addr == addr)
            .map(|&j| entries[j as usize].id)
    }

    /// Notes that a datagram from member `id` arrived from `from` at `now` (ignored
    /// unless `from` is the member's own address).
    pub fn heard_from(&mut self, id: NodeId, from: SocketAddr, now: Time) {
        if let Some(i) = self.position(id)
            && self.entries[i].addr == from
        {
            self.entries[i].heard = Some(now);
        }
    }

    /// Changes the local member's incarnation/state/metadata in place (only the member
    /// itself does this).
    pub fn update_local(&mut self, incarnation: u64, state: MemberState, now: Time) {
        let e = self.get_mut_local();
        e.incarnation = incarnation;
        if e.state != state {
            e.since = now;
        }
        e.state = state;
        let (id, version) = (e.id, e.digest_version());
        self.sorted.insert(id, version);
    }

    /// Forgets dead and departed members older than `retention`; returns their ids.
    pub fn reap(&mut self, now: Time, retention: std::time::Duration, out: &mut Vec<NodeId>) {
        let local = self.local_id();
        let before = out.len();
        let reaped = |e: &Entry| {
            e.id != local && !e.state.is_live() && now.saturating_since(e.since) >= retention
        };
        out.extend(self.entries.iter().filter(|e| reaped(e)).map(|e| e.id));
        if out.len() == before {
            return;
        }
        // Removal keeps order, so every later entry moves down: renumber the indexes.
        // The reaped are not live, so none of them is filed by address.
        let mut moved_to = vec![u32::MAX; self.entries.len()];
        let mut next = 0u32;
        for (slot, e) in moved_to.iter_mut().zip(&self.entries) {
            if !reaped(e) {
                *slot = next;
                next += 1;
            }
        }
        for id in &out[before..] {
            let hash = self.id_hash(*id);
            let entries = &self.entries;
            if let Ok(slot) = self
                .by_id
                .find_entry(hash, |&j| entries[j as usize].id == *id)
            {
                slot.remove();
            }
        }
        self.entries.retain(|e| !reaped(e));
        // Ids and addresses do not change, so neither do the hashes: renumber in place.
        for j in self.by_id.iter_mut() {
            *j = moved_to[*j as usize];
        }
        for j in self.live_by_addr.iter_mut() {
            *j = moved_to[*j as usize];
        }
        for id in &out[before..] {
            self.sorted.remove(id);
        }
    }

    /// Known members in `lo..=hi` with their digest versions, ascending by id.
    pub fn versions_in_range(
        &self,
        lo: NodeId,
        hi: NodeId,
    ) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        let range = if lo <= hi {
            Some(self.sorted.range(lo..=hi))
        } else {
            None
        };
        range.into_iter().flatten().map(|(id, v)| (*id, *v))
    }

    /// The members this node monitors: the `k` live members preceding it on the ring
    /// (each member is monitored by its `k` successors). Fewer when the cluster is small.
    pub fn monitored_by_local(&self, k: usize, out: &mut Vec<NodeId>) {
        out.clear();
        let local = self.local_id();
        let key = (local.ring_position(), local);
        let others = self.ring.len().saturating_sub(1);
        let before = self.ring.range(..key).rev();
        let wrapped = self.ring.range(key..).rev();
        for &(_, id) in before
            .chain(wrapped)
            .filter(|(_, id)| *id != local)
            .take(k.min(others))
        {
            out.push(id);
        }
    }

    /// Whether `target` is among the `k` members this node monitors (cheap enough to
    /// call per message: k ≤ 16 ring steps).
    #[cfg(test)]
    pub fn monitors_of(&self, target: NodeId, k: usize) -> Vec<NodeId> {
        let key = (target.ring_position(), target);
        let after = self
            .ring
            .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded));
        let wrapped = self.ring.range(..key);
        after
            .chain(wrapped)
            .map(|(_, id)| *id)
            .filter(|id| *id != target)
            .take(k)
            .collect()
    }
}

#[cfg(test)]
impl Members {
    /// Panics unless every index agrees with `entries`.
    fn check_indexes(&self) {
        let local = self.local_id();
        assert_eq!(self.entries[0].id, local, "self first");
        assert_eq!(self.by_id.len(), self.entries.len());
        let mut live = BTreeSet::new();
        for (i, e) in self.entries.iter().enumerate() {
            assert_eq!(
                self.position(e.id),
                Some(i),
                "{} filed at its position",
                e.id
            );
            assert_eq!(self.sorted.get(&e.id), Some(&e.digest_version()));
            if e.state.is_live() || e.id == local {
                live.insert((e.id.ring_position(), e.id));
            }
            let is_peer = e.state.is_live() && e.id != local;
            assert_eq!(self.live_peers.contains(&e.id), is_peer);
            if is_peer {
                assert_eq!(self.live_peers[e.peer_slot as usize], e.id, "peer slot");
            } else {
                assert_eq!(e.peer_slot, NOT_A_PEER);
            }
        }
        assert_eq!(self.sorted.len(), self.entries.len());
        assert_eq!(self.ring, live);
        assert_eq!(self.live_peers.len() + 1, live.len());
        for &j in &self.live_by_addr {
            let e = &self.entries[j as usize];
            assert!(e.state.is_live() && e.id != local);
            assert_eq!(self.live_at(e.addr), Some(e.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn entry(id: u64) -> Entry {
        Entry {
            id: NodeId(id),
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7000 + id as u16),
            packed: Packed::new(&[], format!("n{id}").as_bytes(), &[]).unwrap(),
            incarnation: 0,
            state: MemberState::Alive,
            cause: Cause::Silence,
            accuser: NodeId(0),
            since: Time::ZERO,
            heard: None,
            peer_slot: NOT_A_PEER,
        }
    }

    fn update(id: u64, incarnation: u64, state: MemberState) -> Update<'static> {
        let e = entry(id);
        // Leaked: tests only, and an update borrows its descriptor from a datagram.
        let name: &'static [u8] = Box::leak(e.packed.name().to_vec().into_boxed_slice());
        Update {
            id: NodeId(id),
            incarnation,
            state,
            cause: Cause::Silence,
            accuser: NodeId(99),
            descriptor: (state == MemberState::Alive).then_some(Descriptor {
                name,
                addr: e.addr,
                addr_wire: &[],
                metadata: &[],
            }),
        }
    }

    use MemberState::*;

    #[test]
    fn an_entry_fits_112_bytes() {
        // Every node holds one per member; sim/README.md's memory figures count on it.
        assert!(std::mem::size_of::<Entry>() <= 112);
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
            let mut m = Members::new(entry(100), Keyed::default());
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
        let mut m = Members::new(entry(100), Keyed::default());
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
        let mut m = Members::new(entry(100), Keyed::default());
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
        let mut m = Members::new(entry(100), Keyed::default());
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
    fn packed_fields_come_back_apart() {
        let p = Packed::new(&[1, 2, 3, 4, 0, 80], b"node-7", b"zone=a").unwrap();
        assert_eq!(p.addr_wire(), &[1, 2, 3, 4, 0, 80]);
        assert_eq!(p.name(), b"node-7");
        assert_eq!(p.metadata(), b"zone=a");
        assert!(p.holds(&[1, 2, 3, 4, 0, 80], b"node-7", b"zone=a"));
        // Moving a byte from one field to the next is a different descriptor.
        assert!(!p.holds(&[1, 2, 3, 4, 0, 80], b"node-", b"7zone=a"));
        assert!(!p.holds(&[1, 2, 3, 4, 0], b"0node-7", b"zone=a"));
        let empty = Packed::new(&[], &[], &[]).unwrap();
        assert!(empty.name().is_empty() && empty.metadata().is_empty());
        assert!(Packed::new(&[], &vec![b'n'; usize::from(u16::MAX) + 1], &[]).is_none());
    }

    #[test]
    fn a_changed_descriptor_is_repacked() {
        let mut m = Members::new(entry(100), Keyed::default());
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
        let mut m = Members::new(entry(100), Keyed::default());
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
                let mut m = Members::new(entry(me), Keyed::default());
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
        let mut m = Members::new(entry(1), Keyed::default());
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
                let mut m = Members::new(entry(100), Keyed::default());
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
            let mut m = Members::new(entry(100), Keyed::default());
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
