//! Probe tokens: the proof that a refusal answers a datagram this node really sent.
//!
//! An ICMP error is unauthenticated: anyone who can send this node a datagram can claim
//! that a member's port refused it. TCP meets the same problem by accepting an ICMP
//! error only if the segment it quotes carries a sequence number in the window
//! (RFC 5927, section 4.1); this module does the same for rumor's probes.
//!
//! - Every datagram that carries a `Ping` gets a fresh 32-bit token (`Packet.token`),
//!   written first in the packet, drawn from a ChaCha20 keystream under a secret
//!   ([`Node::set_token_secret`](crate::Node::set_token_secret); the runtime draws it
//!   from the OS). A peer that receives tokens learns nothing about the next ones.
//! - The node keeps a fingerprint of each such datagram's first [`QUOTE_PREFIX`] bytes as
//!   sent, with its destination, for [`HORIZON_PERIODS`] protocol periods, at most
//!   [`MAX_SENT`] of its own probes and as many pings it relays for others (kept apart,
//!   so that a flood of ping-reqs cannot push its own probes out). Plaintext, those
//!   bytes hold the token (bytes 1 to 4). Sealed, they hold the frame's nonce (bytes 2
//!   to 25), which is a per-process prefix and a counter, so predictable to anyone who
//!   saw one of our frames, and bytes 26 to 31, the ciphertext of the token's key and
//!   value: unpredictable without both the cluster key and our token stream.
//! - A refusal is evidence only if the bytes it quotes match one of those fingerprints
//!   for the address it names; the match is then used up, so one datagram proves one
//!   refusal at most.
//!
//! So a forger who does not see the traffic (off-path) must guess a 32-bit value per
//! report; a forger who sees it (on-path) can copy a datagram it saw, but could as well
//! drop the member's traffic and have it convicted by silence (docs/security.md).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::time::Duration;

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

use crate::hashing::{self, Keyed};
use crate::time::Time;

/// Bytes of a datagram's start that a refusal's quote must reproduce. They hold the
/// token (bytes 1 to 4 of a plaintext packet) or the nonce (bytes 2 to 25 of a sealed
/// frame). ICMP errors from Linux hosts quote far more of a UDP payload (up to 548 bytes
/// over IPv4, 1,184 over IPv6); a host that quotes less makes its refusals unverifiable,
/// and crashes there are found by silence.
pub const QUOTE_PREFIX: usize = 32;

// A sealed frame's quoted prefix must reach past its header into the encrypted token
// (magic 2 + nonce 24, then the token's key and 4 bytes).
const _: () = assert!(QUOTE_PREFIX >= 2 + 24 + 5);

/// Most probes remembered. A node sends a few probes a period (its monitors' pings, one
/// SWIM probe, relays and corroborations for others), and a refusal answers one within
/// a round trip, so 64 cover several periods at any cluster size.
pub(crate) const MAX_SENT: usize = 64;

/// How long a probe is remembered, in protocol periods: a refusal arrives within a
/// round trip, far below one period, unless this node was stalled meanwhile, and
/// refusals read after our own stall are stale evidence anyway.
pub(crate) const HORIZON_PERIODS: u32 = 2;

/// One probe datagram sent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sent {
    /// Keyed hash of the destination and the datagram's first `QUOTE_PREFIX` bytes.
    fingerprint: u64,
    /// When it was sent.
    pub at: Time,
    /// The probe it carried (its `Ping.seq`, this node's pending-probe key).
    pub seq: u32,
}

/// The token stream and the probes sent lately.
pub(crate) struct ProbeTokens {
    stream: ChaCha20,
    /// Keystream bytes not yet used, from `next`.
    block: [u8; 64],
    next: usize,
    /// This node's own probes.
    sent: VecDeque<Sent>,
    /// Pings it relays for others.
    relayed: VecDeque<Sent>,
    hasher: Keyed,
}

impl std::fmt::Debug for ProbeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keystream.
        f.debug_struct("ProbeTokens")
            .field("sent", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl ProbeTokens {
    /// Tokens from `secret`; fingerprints keyed from `seed` (the node's seed, mixed apart
    /// from its other uses).
    pub(crate) fn new(secret: [u8; 32], seed: u64) -> ProbeTokens {
        ProbeTokens {
            stream: ChaCha20::new(&secret.into(), &[0u8; 12].into()),
            block: [0; 64],
            next: 64,
            sent: VecDeque::new(),
            relayed: VecDeque::new(),
            hasher: hashing::keyed(seed ^ 0x746f_6b65_6e73_2121),
        }
    }

    /// Draws tokens from `secret` from now on (the probes already sent stay valid).
    pub(crate) fn rekey(&mut self, secret: [u8; 32]) {
        self.stream = ChaCha20::new(&secret.into(), &[0u8; 12].into());
        self.next = self.block.len();
    }

    /// A secret derived from the node's seed, for callers that give none (the
    /// simulator, tests): deterministic, so as guessable as the seed is.
    pub(crate) fn secret_from_seed(seed: u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut x = seed ^ 0x5265_6675_7361_6c73;
        for chunk in out.chunks_exact_mut(8) {
            x = splitmix64(x);
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        out
    }

    /// A fresh token, never 0 (which would leave the field out).
    pub(crate) fn token(&mut self) -> u32 {
        // Bounded: a zero word has probability 2^-32; a second in a row is not worth a
        // loop, so it becomes 1.
        let t = self.word();
        if t != 0 { t } else { self.word().max(1) }
    }

    fn word(&mut self) -> u32 {
        if self.next + 4 > self.block.len() {
            self.block = [0; 64];
            self.stream.apply_keystream(&mut self.block);
            self.next = 0;
        }
        let mut w = [0u8; 4];
        w.copy_from_slice(&self.block[self.next..self.next + 4]);
        self.next += 4;
        u32::from_le_bytes(w)
    }

    fn fingerprint(&self, to: SocketAddr, bytes: &[u8]) -> u64 {
        let prefix = &bytes[..bytes.len().min(QUOTE_PREFIX)];
        self.hasher.hash_one((to, prefix))
    }

    /// Remembers a probe datagram as sent (sealed, if it was); `relayed`: a ping sent
    /// for another member's ping-req.
    pub(crate) fn record(
        &mut self,
        to: SocketAddr,
        datagram: &[u8],
        at: Time,
        seq: u32,
        relayed: bool,
    ) {
        let fingerprint = self.fingerprint(to, datagram);
        let ring = if relayed {
            &mut self.relayed
        } else {
            &mut self.sent
        };
        if ring.len() >= MAX_SENT {
            ring.pop_front();
        }
        ring.push_back(Sent {
            fingerprint,
            at,
            seq,
        });
    }

    /// The probe that a refusal from `to` quoting `quoted` answers, if this node sent it
    /// within `horizon` of `now`; it is forgotten, so it proves nothing twice.
    pub(crate) fn take(
        &mut self,
        to: SocketAddr,
        quoted: &[u8],
        now: Time,
        horizon: Duration,
    ) -> Option<Sent> {
        for ring in [&mut self.sent, &mut self.relayed] {
            // Forget what is too old to be answered now.
            while ring
                .front()
                .is_some_and(|s| now.saturating_since(s.at) > horizon)
            {
                ring.pop_front();
            }
        }
        if quoted.is_empty() {
            return None;
        }
        let fingerprint = self.fingerprint(to, quoted);
        for ring in [&mut self.sent, &mut self.relayed] {
            if let Some(i) = ring.iter().position(|s| s.fingerprint == fingerprint) {
                return ring.remove(i);
            }
        }
        None
    }

    /// Probes remembered now, own and relayed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sent.len() + self.relayed.len()
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn datagram(token: u32) -> Vec<u8> {
        let mut d = vec![0x4d];
        d.extend_from_slice(&token.to_le_bytes());
        d.extend_from_slice(&[8, 1, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x2a, 9, 0x0a, 7, 8, 9]);
        d.extend_from_slice(&[0xee; 40]);
        d
    }

    fn t(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    const H: Duration = Duration::from_secs(2);

    #[test]
    fn tokens_are_nonzero_and_follow_the_secret() {
        let mut a = ProbeTokens::new(ProbeTokens::secret_from_seed(1), 1);
        let mut b = ProbeTokens::new(ProbeTokens::secret_from_seed(1), 1);
        let mut c = ProbeTokens::new(ProbeTokens::secret_from_seed(2), 1);
        let xs: Vec<u32> = (0..100).map(|_| a.token()).collect();
        let ys: Vec<u32> = (0..100).map(|_| b.token()).collect();
        let zs: Vec<u32> = (0..100).map(|_| c.token()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        assert!(xs.iter().all(|&x| x != 0));
        let mut sorted = xs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert!(sorted.len() > 95, "tokens barely repeat");
    }

    #[test]
    fn a_quote_of_a_sent_probe_proves_one_refusal() {
        let mut p = ProbeTokens::new([7; 32], 3);
        let d = datagram(0xdead_beef);
        p.record(addr(1), &d, t(0), 42, false);
        // Linux quotes the whole datagram, or a prefix of it.
        let sent = p.take(addr(1), &d[..QUOTE_PREFIX + 3], t(10), H).unwrap();
        assert_eq!((sent.seq, sent.at), (42, t(0)));
        // Used up.
        assert!(p.take(addr(1), &d, t(11), H).is_none());
    }

    #[test]
    fn a_quote_that_matches_nothing_sent_proves_nothing() {
        let mut p = ProbeTokens::new([7; 32], 3);
        let d = datagram(0xdead_beef);
        p.record(addr(1), &d, t(0), 42, false);
        // Another token (an off-path guess), another address, too short a quote, an
        // empty one, or too late.
        assert!(p.take(addr(1), &datagram(0xdead_beee), t(1), H).is_none());
        assert!(p.take(addr(2), &d, t(1), H).is_none());
        assert!(p.take(addr(1), &d[..QUOTE_PREFIX - 1], t(1), H).is_none());
        assert!(p.take(addr(1), &[], t(1), H).is_none());
        assert_eq!(p.len(), 1);
        assert!(p.take(addr(1), &d, t(2_001), H).is_none());
        assert_eq!(p.len(), 0, "expired records are dropped");
    }

    #[test]
    fn the_record_is_bounded() {
        let mut p = ProbeTokens::new([7; 32], 3);
        for i in 0..(MAX_SENT as u32 + 10) {
            p.record(addr(1), &datagram(i + 1), t(0), i, false);
        }
        assert_eq!(p.len(), MAX_SENT);
        // The oldest went first.
        assert!(p.take(addr(1), &datagram(1), t(0), H).is_none());
        let last = MAX_SENT as u32 + 10;
        assert_eq!(
            p.take(addr(1), &datagram(last), t(0), H).unwrap().seq,
            last - 1
        );
    }

    #[test]
    fn relayed_pings_cannot_push_own_probes_out() {
        let mut p = ProbeTokens::new([7; 32], 3);
        p.record(addr(1), &datagram(7), t(0), 1, false);
        // A flood of ping-reqs: many relayed pings, all kept apart.
        for i in 0..1_000u32 {
            p.record(addr(2), &datagram(1_000 + i), t(0), i, true);
        }
        assert_eq!(p.take(addr(1), &datagram(7), t(0), H).unwrap().seq, 1);
        // The newest relays are still there too.
        assert_eq!(p.take(addr(2), &datagram(1_999), t(0), H).unwrap().seq, 999);
    }
}
