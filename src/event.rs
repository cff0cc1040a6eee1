//! What a node tells its caller: membership changes and delivered broadcasts.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::id::NodeId;

/// A member's state as this node sees it. Ordered as SWIM's precedence at one
/// incarnation: a later state supersedes an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// Answering probes, or not yet found silent.
    Alive,
    /// Suspected of having failed; it can still refute.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left gracefully.
    Left,
}

impl MemberState {
    /// Precedence rank at one incarnation (alive 0 < suspect 1 < dead 2 < left 3).
    pub(crate) fn rank(self) -> u8 {
        match self {
            MemberState::Alive => 0,
            MemberState::Suspect => 1,
            MemberState::Dead => 2,
            MemberState::Left => 3,
        }
    }

    /// Alive or suspect: still counted as a member, still probed.
    pub fn is_live(self) -> bool {
        matches!(self, MemberState::Alive | MemberState::Suspect)
    }

    /// Lower-case name, for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Suspect => "suspect",
            MemberState::Dead => "dead",
            MemberState::Left => "left",
        }
    }
}

/// Why a member was suspected or declared dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// It stopped answering probes (direct and indirect).
    Silence,
    /// The network reported its port closed.
    Refused,
    /// It announced its departure.
    Left,
}

impl Cause {
    /// Lower-case name, for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Silence => "silence",
            Cause::Refused => "refused",
            Cause::Left => "left",
        }
    }
}

/// A snapshot of one member, as carried by events and [`Node::members`](crate::Node::members).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Compact id.
    pub id: NodeId,
    /// Name (UTF-8, validated on receipt).
    pub name: Bytes,
    /// Address peers send to.
    pub addr: SocketAddr,
    /// Incarnation of the state below.
    pub incarnation: u64,
    /// State as this node sees it.
    pub state: MemberState,
    /// Application metadata.
    pub metadata: Bytes,
}

impl Member {
    /// The name as text.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name).unwrap_or("<invalid utf-8>")
    }
}

/// Something the caller should know. Drained with [`Node::poll_event`](crate::Node::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// This node reached the cluster: a seed answered (or it has no seeds).
    JoinedCluster,
    /// This node finished its first full state sync with a peer.
    Synced,
    /// A member appeared, or came back at a higher incarnation after dying or leaving.
    MemberJoined(Member),
    /// A live member's metadata or address changed.
    MemberUpdated(Member),
    /// A member is suspected.
    MemberSuspected {
        /// The member, in state `Suspect`.
        member: Member,
        /// Why.
        cause: Cause,
    },
    /// A suspected member refuted the suspicion.
    MemberAlive(Member),
    /// A member was declared dead.
    MemberDead {
        /// The member, in state `Dead`.
        member: Member,
        /// Why.
        cause: Cause,
    },
    /// A member left gracefully.
    MemberLeft(Member),
    /// A peer suspects this node (or declared it dead); it is refuting.
    SelfSuspected {
        /// Who said so.
        by: NodeId,
        /// The incarnation the suspicion named.
        incarnation: u64,
    },
    /// This node refuted a suspicion by moving to a higher incarnation.
    SelfRefuted {
        /// The new incarnation.
        incarnation: u64,
    },
    /// A user broadcast from another member, delivered once.
    Broadcast {
        /// The member that broadcast it.
        origin: NodeId,
        /// The payload.
        payload: Bytes,
    },
}
