//! Packet encryption and authentication: a keyring of 256-bit keys and the sealed frame
//! every datagram travels in when keys are configured.
//!
//! Frame: `0x00 0x01 | nonce (24 B) | ciphertext | tag (16 B)`, XChaCha20-Poly1305 over
//! the encoded `Packet`, with the frame's first two bytes and the cluster label as
//! associated data (a packet sealed for another cluster fails authentication even under
//! the same key). A plaintext `Packet` can never start with `0x00` (field number 0 does
//! not exist in protobuf), so the two kinds of datagram cannot be confused.
//!
//! The nonce is a 16-byte per-process prefix and an 8-byte counter. The prefix comes from
//! the caller ([`Node::set_nonce_prefix`](crate::Node::set_nonce_prefix); the runtime
//! draws it from the OS), so a restarted process never reuses a nonce under the same key
//! even though the core's own randomness is seeded. 2^64 packets per prefix is beyond
//! any process's lifetime.
//!
//! Rotation: add the new key everywhere (every key decrypts), make it primary everywhere
//! (the primary encrypts), then remove the old one.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use crate::error::CommandError;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// Most keys a keyring holds: every datagram may be tried against each.
pub const MAX_KEYS: usize = 8;

/// The frame's first two bytes: a marker no plaintext packet starts with, and the frame
/// version.
const MAGIC: [u8; 2] = [0x00, 0x01];
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER: usize = MAGIC.len() + NONCE_LEN;

/// Bytes a sealed frame adds to a packet.
pub const SEAL_OVERHEAD: usize = HEADER + TAG_LEN;

/// A secret key. Its `Debug` output shows only a short fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// A key from 64 hexadecimal digits; `None` if the text is anything else.
    pub fn from_hex(text: &str) -> Option<Key> {
        let t = text.trim().as_bytes();
        if t.len() != 2 * KEY_LEN {
            return None;
        }
        let mut out = [0u8; KEY_LEN];
        for (i, pair) in t.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Key(out))
    }

    /// The key's bytes (for storing it; treat them as the secret they are).
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    /// A short, non-secret name for the key (FNV-1a of its bytes), for logs and errors.
    pub fn fingerprint(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.0 {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:08x})", self.fingerprint())
    }
}

/// The keys a node accepts. The first is the primary: it seals every packet sent. Every
/// key opens packets received. Empty means no encryption.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring whose only (and primary) key is `primary`.
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
        }
    }

    /// No keys: packets travel in plaintext.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that seals outgoing packets.
    pub fn primary(&self) -> Option<&Key> {
        self.keys.first()
    }

    /// Every key, the primary first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Adds `key` as a secondary key (it opens packets; it seals nothing until
    /// [`Keyring::use_key`]). Adding a key already present does nothing. The first key
    /// added to an empty keyring becomes the primary.
    pub fn add(&mut self, key: Key) -> Result<(), CommandError> {
        if self.keys.contains(&key) {
            return Ok(());
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(CommandError::Keyring(format!(
                "the keyring is full ({MAX_KEYS} keys); remove one first"
            )));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Makes `key`, already in the keyring, the primary.
    pub fn use_key(&mut self, key: &Key) -> Result<(), CommandError> {
        let i = self.position(key)?;
        let k = self.keys.remove(i);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Removes `key`; the primary cannot be removed (make another key primary first).
    pub fn remove(&mut self, key: &Key) -> Result<(), CommandError> {
        let i = self.position(key)?;
        if i == 0 {
            return Err(CommandError::Keyring(format!(
                "{key:?} is the primary key; make another key primary first"
            )));
        }
        self.keys.remove(i);
        Ok(())
    }

    fn position(&self, key: &Key) -> Result<usize, CommandError> {
        self.keys
            .iter()
            .position(|k| k == key)
            .ok_or_else(|| CommandError::Keyring(format!("{key:?} is not in the keyring")))
    }
}

/// Whether `data` is a sealed frame (rather than a plaintext packet).
pub(crate) fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Seals the packet in `buf[HEADER .. HEADER + len]` in place under `key`; returns the
/// frame's length, or `None` if `buf` has no room for the tag.
pub(crate) fn seal(
    key: &Key,
    nonce: [u8; NONCE_LEN],
    label: &[u8],
    buf: &mut [u8],
    len: usize,
) -> Option<usize> {
    let total = HEADER + len + TAG_LEN;
    if buf.len() < total {
        return None;
    }
    buf[..2].copy_from_slice(&MAGIC);
    buf[2..HEADER].copy_from_slice(&nonce);
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let aad = aad(label);
    let tag = cipher
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &aad[..aad_len(label)],
            &mut buf[HEADER..HEADER + len],
        )
        .ok()?;
    buf[HEADER + len..total].copy_from_slice(&tag);
    Some(total)
}

/// Opens a sealed frame with the first key of `ring` that authenticates it, writing the
/// packet into `out` (cleared first). `false` if no key does or the frame is malformed.
pub(crate) fn open(ring: &Keyring, label: &[u8], frame: &[u8], out: &mut Vec<u8>) -> bool {
    if frame.len() < SEAL_OVERHEAD || !is_sealed(frame) {
        return false;
    }
    let nonce = XNonce::from_slice(&frame[2..HEADER]);
    let body = &frame[HEADER..frame.len() - TAG_LEN];
    let tag = Tag::from_slice(&frame[frame.len() - TAG_LEN..]);
    let aad = aad(label);
    for key in ring.keys() {
        out.clear();
        out.extend_from_slice(body);
        let cipher = XChaCha20Poly1305::new((&key.0).into());
        if cipher
            .decrypt_in_place_detached(nonce, &aad[..aad_len(label)], out, tag)
            .is_ok()
        {
            return true;
        }
    }
    out.clear();
    false
}

/// The associated data, `MAGIC || label`, on the stack (labels are at most 64 bytes).
fn aad(label: &[u8]) -> [u8; 2 + 64] {
    let mut a = [0u8; 2 + 64];
    a[..2].copy_from_slice(&MAGIC);
    let n = label.len().min(64);
    a[2..2 + n].copy_from_slice(&label[..n]);
    a
}

fn aad_len(label: &[u8]) -> usize {
    2 + label.len().min(64)
}

/// Where the packet goes in a buffer that will be sealed.
pub(crate) const PAYLOAD_OFFSET: usize = HEADER;

/// One node's sealing: its keyring, the nonce state, and the buffer an opened packet is
/// decrypted into (reused across datagrams).
#[derive(Debug)]
pub(crate) struct Sealer {
    /// Keys sealing and opening packets (from the config; rotated by commands).
    pub keyring: Keyring,
    /// Nonces are this per-process prefix and a counter.
    nonce_prefix: [u8; 16],
    nonce_counter: u64,
    /// Where an opened packet is decrypted.
    pub opened: Vec<u8>,
}

impl Sealer {
    /// Sealing with `keyring`, nonces under `nonce_prefix`.
    pub fn new(keyring: Keyring, nonce_prefix: [u8; 16]) -> Sealer {
        Sealer {
            keyring,
            nonce_prefix,
            nonce_counter: 0,
            opened: Vec::new(),
        }
    }

    /// A new per-process prefix; the counter starts over under it.
    pub fn set_nonce_prefix(&mut self, prefix: [u8; 16]) {
        self.nonce_prefix = prefix;
        self.nonce_counter = 0;
    }

    /// The next datagram's nonce: the prefix, then the counter.
    pub fn next_nonce(&mut self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&self.nonce_counter.to_le_bytes());
        self.nonce_counter = self.nonce_counter.wrapping_add(1);
        nonce
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; KEY_LEN])
    }

    fn sealed(k: &Key, label: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; msg.len() + SEAL_OVERHEAD];
        buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + msg.len()].copy_from_slice(msg);
        let n = seal(k, [7; NONCE_LEN], label, &mut buf, msg.len()).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn any_key_of_the_ring_opens_and_others_do_not() {
        let frame = sealed(&key(2), b"rumor", b"hello");
        assert!(is_sealed(&frame));
        let mut ring = Keyring::new(key(1));
        let mut out = Vec::new();
        assert!(!open(&ring, b"rumor", &frame, &mut out));
        ring.add(key(2)).unwrap();
        assert!(open(&ring, b"rumor", &frame, &mut out));
        assert_eq!(out, b"hello");
        // Bound to the cluster label.
        assert!(!open(&ring, b"other", &frame, &mut out));
    }

    #[test]
    fn rotation_rules() {
        let mut ring = Keyring::new(key(1));
        assert!(ring.remove(&key(1)).is_err(), "removed the primary");
        assert!(ring.use_key(&key(2)).is_err(), "used an absent key");
        ring.add(key(2)).unwrap();
        ring.use_key(&key(2)).unwrap();
        assert_eq!(ring.primary(), Some(&key(2)));
        ring.remove(&key(1)).unwrap();
        assert_eq!(ring.keys(), &[key(2)]);
        for b in 3..3 + MAX_KEYS as u8 {
            let _ = ring.add(key(b));
        }
        assert_eq!(ring.keys().len(), MAX_KEYS);
        assert!(ring.add(key(200)).is_err());
    }

    #[test]
    fn hex_keys_and_redacted_debug() {
        let k = Key::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(k, Key::from_bytes([0xab; 32]));
        assert!(Key::from_hex("abc").is_none());
        assert!(Key::from_hex(&"zz".repeat(32)).is_none());
        let shown = format!("{k:?}");
        assert!(!shown.contains("ab,") && !shown.contains("171"), "{shown}");
    }

    proptest! {
        #[test]
        fn tampering_anywhere_fails_authentication(
            msg in prop::collection::vec(any::<u8>(), 0..300),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let k = key(9);
            let mut frame = sealed(&k, b"rumor", &msg);
            let mut out = Vec::new();
            prop_assert!(open(&Keyring::new(k.clone()), b"rumor", &frame, &mut out));
            prop_assert_eq!(&out, &msg);
            let i = at.index(frame.len());
            frame[i] ^= flip;
            prop_assert!(!open(&Keyring::new(k), b"rumor", &frame, &mut out));
        }

        #[test]
        fn arbitrary_frames_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = open(&Keyring::new(key(1)), b"rumor", &data, &mut out);
        }
    }
}
