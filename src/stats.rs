//! Counters a node keeps about itself: a plain `Copy` struct, no metrics dependency.
//! The runtime exports them as metrics; the simulator sums them into its report.

use crate::wire::DecodeErrorKind;

/// Number of [`DecodeErrorKind`]s, the length of [`NodeStats::decode_errors`].
pub const DECODE_ERROR_KINDS: usize = DecodeErrorKind::ALL.len();

/// Monotonic counters since the node was created. Read with
/// [`Node::stats`](crate::Node::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Datagrams handed to `handle_packet`.
    pub packets_in: u64,
    /// Bytes handed to `handle_packet`.
    pub bytes_in: u64,
    /// Datagrams produced by `poll_transmit`.
    pub packets_out: u64,
    /// Bytes produced by `poll_transmit`.
    pub bytes_out: u64,
    /// Messages decoded from accepted packets.
    pub messages_in: u64,
    /// Messages written into produced packets (primaries and piggybacked updates).
    pub messages_out: u64,
    /// Dropped datagrams by decode error, indexed by [`DecodeErrorKind::index`].
    pub decode_errors: [u64; DECODE_ERROR_KINDS],
    /// Datagrams dropped because they carried another cluster's label.
    pub cluster_mismatch: u64,
    /// Messages dropped as nonsensical from a well-formed packet (a ping for another
    /// id, news about an unknown member without its address, a name that is not UTF-8,
    /// oversized metadata, …).
    pub messages_rejected: u64,
    /// Direct probes (pings) sent, by monitors and by the SWIM prober.
    pub probes_sent: u64,
    /// Acks received for this node's own probes (direct or through a helper).
    pub acks_received: u64,
    /// Indirect probe rounds started (each sends up to `indirect_checks` ping-reqs).
    pub indirect_probes: u64,
    /// Ping-reqs this node served as a helper.
    pub relays_served: u64,
    /// Ping-reqs refused: too many relays in flight, or the source spent its
    /// `max_relays_per_source` for this probe interval.
    pub relays_refused: u64,
    /// Push-pull digest chunks refused: the source spent its `max_syncs_per_source`.
    pub syncs_refused: u64,
    /// Nacks sent as a helper.
    pub nacks_sent: u64,
    /// Nacks received for this node's indirect probes.
    pub nacks_received: u64,
    /// Probes (direct and indirect) that ended without any ack.
    pub probes_failed: u64,
    /// Suspicions this node raised.
    pub suspicions_raised: u64,
    /// Indirect probe rounds that failed without a single helper answering (not even a
    /// nack): this node was cut off, so it withheld its suspicion.
    pub suspicions_withheld: u64,
    /// Times another member's suspicion of this node was refuted by this node.
    pub refutations: u64,
    /// Datagrams accusing this node (suspect or dead) at an incarnation it had already
    /// refuted, or refuted on reading them, answered directly with its current Alive.
    pub accusations_answered: u64,
    /// A member's own Alive at the incarnation held for it but from another address (a
    /// process recreated elsewhere within the same second), answered with what this
    /// node holds so that it refutes above its previous life.
    pub other_lives_answered: u64,
    /// Accusations left unanswered because their source had used its answers for this
    /// probe interval (`MAX_ANSWERS_PER_SOURCE`, 4): a forged stream of them cannot aim
    /// a stream of our Alives at a member.
    pub answers_refused: u64,
    /// Members this node declared dead.
    pub convictions: u64,
    /// Sealed packets no key of the keyring opened (wrong key, tampered, forged, or
    /// sealed for another cluster), dropped.
    pub auth_failures: u64,
    /// Plaintext packets refused because keys are configured and `accept_plaintext` is
    /// off, dropped.
    pub plaintext_refused: u64,
    /// Refusals the network reported (`Node::handle_unreachable`), counted or not.
    pub refusals: u64,
    /// Convictions, within `convictions`, that this node kept to itself: it reached
    /// them while nothing it sent was answered (cut off one way), so it did not gossip
    /// them. A rise here means this node's own network is in trouble.
    pub convictions_kept_local: u64,
    /// Refusals ignored, within `refusals`, because their quote matched no probe this
    /// node sent to that address lately: forged, about an old datagram, or from a host
    /// whose ICMP errors quote too little. Steadily rising with no crash to explain it
    /// means someone is forging refusals.
    pub refusals_unverified: u64,
    /// Convictions by corroborated refusal (cause `Refused`), within `convictions`.
    pub refusal_convictions: u64,
    /// Refusals dropped: the member spoke, refuted, or no helper corroborated.
    pub refusals_withdrawn: u64,
    /// Monitor pings sent a second time because no answer came within the usual round
    /// trip (a lost ping, a lost refusal, or a member that stalled): about the loss
    /// rate times `monitors` per period in steady state.
    pub probes_rechecked: u64,
    /// Pings sent at once, off-period, because a peer reported a member it monitors
    /// refused.
    pub probes_on_report: u64,
    /// Push-pull rounds started with a member convicted by silence, in case it was
    /// only cut off (`reconnect_interval`).
    pub reconnects: u64,
    /// Stalls of this node detected (timers fired late by more than `stall_threshold`).
    pub stalls_detected: u64,
    /// Short stalls that began within `probe_interval` of the previous one's end: the
    /// same trouble going on (a driver that always calls late, GC thrashing), counted
    /// apart from `stalls_detected` since they arm no guard and discard nothing. A
    /// steady rise means this node's timers run late: look at its CPU and its driver.
    pub stalls_repeated: u64,
    /// Convictions deferred because this node had just been stalled.
    pub convictions_deferred: u64,
    /// User broadcasts delivered to the caller.
    pub broadcasts_delivered: u64,
    /// Queued user broadcasts dropped because `max_pending_broadcasts` was reached.
    pub broadcasts_dropped: u64,
    /// Members not added because `max_members` was reached.
    pub members_refused: u64,
    /// Dead and departed members forgotten after `dead_retention`.
    pub members_reaped: u64,
    /// Push-pull digest chunks sent.
    pub sync_digests_sent: u64,
    /// Push-pull digest chunks received.
    pub sync_digests_received: u64,
}

impl NodeStats {
    /// All decode errors together.
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }
}
