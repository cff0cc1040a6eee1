//! Member identity: a compact 64-bit id on the wire, a human name in events.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// A member's compact identity: 64 bits on every hot-path message instead of a string.
///
/// Derived from the member's name by [`NodeId::from_name`], so a process that restarts
/// under the same name has the same id and its new incarnation replaces its old self
/// instead of leaving a ghost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    /// The id for `name`: FNV-1a (64-bit) of its UTF-8 bytes, a fixed function so every
    /// build and platform agrees. Two names colliding is a 2^-64 event per pair; a
    /// collision shows up as a member whose name flips and is counted, not hidden.
    pub fn from_name(name: &str) -> NodeId {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        for b in name.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
        NodeId(h)
    }

    /// Where this id sits on the monitoring ring. A second mix (splitmix64's finalizer)
    /// spreads ids that were chosen by hand (1, 2, 3, …) evenly around the ring.
    pub(crate) fn ring_position(self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Who a node is: given to [`Node::new`](crate::Node::new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Human-readable, unique within the cluster; the id is derived from it. At most
    /// [`MAX_NAME_LEN`] bytes.
    pub name: String,
    /// The address peers send to (the advertise address, not necessarily the bind one).
    pub addr: SocketAddr,
    /// The incarnation to start at. A process that restarts should start above every
    /// incarnation its previous life used (the runtime uses the wall clock in seconds);
    /// if it does not, it still recovers: hearing its old self alive or dead at a higher
    /// incarnation, it refutes above it.
    pub incarnation: u64,
    /// Initial metadata, at most `Config::max_metadata_size` bytes.
    pub metadata: Bytes,
}

/// The longest member name accepted, in bytes, from the caller and from the wire.
pub const MAX_NAME_LEN: usize = 128;

impl Identity {
    /// An identity with incarnation 0 and no metadata.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Identity {
        Identity {
            name: name.into(),
            addr,
            incarnation: 0,
            metadata: Bytes::new(),
        }
    }

    /// The compact id derived from the name.
    pub fn id(&self) -> NodeId {
        NodeId::from_name(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_a_fixed_function_of_the_name() {
        // FNV-1a test vectors.
        assert_eq!(NodeId::from_name("").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(NodeId::from_name("a").0, 0xaf63_dc4c_8601_ec8c);
        assert_ne!(NodeId::from_name("node-1"), NodeId::from_name("node-2"));
    }

    #[test]
    fn ring_positions_spread_small_ids() {
        let a = NodeId(1).ring_position();
        let b = NodeId(2).ring_position();
        assert!(a.abs_diff(b) > 1 << 32);
    }
}
