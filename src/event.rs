//! What a node tells its caller: membership changes and delivered broadcasts.

use std::fmt;
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

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of one member, as carried by events and [`Node::members`](crate::Node::members).
///
/// Displayed as `name (addr, incarnation N, state)`; its `Debug` shows the name as
/// text too, and the metadata's length rather than its bytes.
#[derive(Clone, PartialEq, Eq)]
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

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, incarnation {}, {})",
            self.name(),
            self.addr,
            self.incarnation,
            self.state
        )
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name())
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("incarnation", &self.incarnation)
            .field("state", &self.state)
            .field("metadata_len", &self.metadata.len())
            .finish()
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

/// One line in words: `member dead (refused): b (10.0.0.2:7946, incarnation 17, dead)`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::JoinedCluster => f.write_str("joined the cluster"),
            Event::Synced => f.write_str("first state sync done"),
            Event::MemberJoined(m) => write!(f, "member joined: {m}"),
            Event::MemberUpdated(m) => write!(
                f,
                "member updated: {m}, {} bytes of metadata",
                m.metadata.len()
            ),
            Event::MemberSuspected { member, cause } => {
                write!(f, "member suspected ({cause}): {member}")
            }
            Event::MemberAlive(m) => write!(f, "member refuted its suspicion: {m}"),
            Event::MemberDead { member, cause } => write!(f, "member dead ({cause}): {member}"),
            Event::MemberLeft(m) => write!(f, "member left: {m}"),
            Event::SelfSuspected { by, incarnation } => write!(
                f,
                "suspected by {by} at incarnation {incarnation}, refuting"
            ),
            Event::SelfRefuted { incarnation } => {
                write!(f, "refuted at incarnation {incarnation}")
            }
            Event::Broadcast { origin, payload } => {
                write!(f, "broadcast from {origin}, {} bytes", payload.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(state: MemberState) -> Member {
        Member {
            id: NodeId::from_name("b"),
            name: Bytes::from_static(b"b"),
            addr: "10.0.0.2:7946".parse().unwrap(),
            incarnation: 17,
            state,
            metadata: Bytes::from_static(b"zone=a"),
        }
    }

    #[test]
    fn events_and_members_read_as_words() {
        let dead = Event::MemberDead {
            member: member(MemberState::Dead),
            cause: Cause::Refused,
        };
        assert_eq!(
            dead.to_string(),
            "member dead (refused): b (10.0.0.2:7946, incarnation 17, dead)"
        );
        let updated = Event::MemberUpdated(member(MemberState::Alive));
        assert_eq!(
            updated.to_string(),
            "member updated: b (10.0.0.2:7946, incarnation 17, alive), 6 bytes of metadata"
        );
        // Debug shows the name as text, not as bytes.
        let debug = format!("{dead:?}");
        assert!(debug.contains("name: \"b\""), "{debug}");
        assert!(!debug.contains("b\"b\""), "{debug}");
        assert_eq!(
            Event::SelfRefuted { incarnation: 3 }.to_string(),
            "refuted at incarnation 3"
        );
    }
}
