//! Packet encryption and authentication: a keyring of 256-bit keys and the sealed frame
//! every datagram travels in when keys are configured.
//!
//! Frame: `0x00 0x01 | nonce (24 B) | ciphertext | tag (16 B)`, XChaCha20-Poly1305 over
//! the encoded `Packet`, with the frame's first two bytes and the cluster label as
//! associated data (a packet sealed for another cluster fails authentication even under
//! the same key). A plaintext `Packet` can never start with `0x00` (field number 0 does
//! not exist in protobuf), so the two kinds of datagram cannot be confused.
//!
//! The nonce is a 12-byte per-process prefix, the sealing key's 4-byte id and an 8-byte
//! counter. The prefix comes from the caller
//! ([`Node::set_nonce_prefix`](crate::Node::set_nonce_prefix); the runtime draws it from
//! the OS), so a restarted process never reuses a nonce under the same key even though
//! the core's own randomness is seeded. 2^64 packets per prefix is beyond any process's
//! lifetime. The key id ([`Key`]'s, derived from the key by HChaCha20, so it tells
//! nothing about the key) lets a reader try the right key of its ring first instead of
//! each in turn; to a reader it is part of an opaque nonce, so frames from releases that
//! drew all 16 bytes at random (before 2026-12) open as before, by trying every key, and
//! those releases open today's frames unchanged.
//!
//! The AEAD is computed by `ring` (assembly with AVX2 where the CPU has it): XChaCha20 is
//! HChaCha20 of the key and the nonce's first 16 bytes (a subkey, constant per sending
//! process and key, so a sender derives it once) and then IETF ChaCha20-Poly1305 under
//! the subkey with the nonce's last 8 bytes. The `chacha20poly1305` crate computed the
//! same bytes about 4x slower on short packets (`benches/seal.rs`).
//!
//! Rotation: add the new key everywhere (every key decrypts), make it primary everywhere
//! (the primary encrypts), then remove the old one.

use std::fmt;

use chacha20::cipher::consts::U10;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::error::CommandError;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

/// Most keys a keyring holds: a datagram whose key id matches none of them is tried
/// against each.
pub const MAX_KEYS: usize = 8;

/// The frame's first two bytes: a marker no plaintext packet starts with, and the frame
/// version.
const MAGIC: [u8; 2] = [0x00, 0x01];
const NONCE_LEN: usize = 24;
/// Where the nonce's per-process prefix ends and the sealing key's id starts.
const PREFIX_LEN: usize = 12;
const KEY_ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
const HEADER: usize = MAGIC.len() + NONCE_LEN;

/// Bytes a sealed frame adds to a packet.
pub const SEAL_OVERHEAD: usize = HEADER + TAG_LEN;

/// HChaCha20's input for a key's id: no sender's nonce prefix is meant to equal it (12
/// random bytes would have to), and the id is 4 of HChaCha20's 32 output bytes.
const KEY_ID_INPUT: [u8; 16] = *b"rumor key id v1\0";

/// A secret key. Its `Debug` output shows only a short fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    /// What frames sealed with this key carry in their nonce (see the module docs).
    id: [u8; KEY_ID_LEN],
}

impl Key {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        let out = hchacha20(&bytes, &KEY_ID_INPUT);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&out[..KEY_ID_LEN]);
        Key { bytes, id }
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
        Some(Key::from_bytes(out))
    }

    /// The key's bytes (for storing it; treat them as the secret they are).
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.bytes
    }

    /// A short, non-secret name for the key (FNV-1a of its bytes), for logs and errors.
    pub fn fingerprint(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.bytes {
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
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// HChaCha20 (20 rounds) of `key` and a 16-byte `input`.
fn hchacha20(key: &[u8; KEY_LEN], input: &[u8; 16]) -> [u8; 32] {
    chacha20::hchacha::<U10>(key.into(), input.into()).into()
}

/// The IETF ChaCha20-Poly1305 key that XChaCha20-Poly1305 under `key` uses for every
/// nonce starting with `nonce_start` (the nonce's first 16 bytes).
fn subkey_cipher(key: &Key, nonce_start: &[u8; 16]) -> Option<LessSafeKey> {
    let subkey = hchacha20(&key.bytes, nonce_start);
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, &subkey).ok()?;
    Some(LessSafeKey::new(unbound))
}

/// The nonce's first 16 bytes (the subkey's input) and the IETF nonce of the rest.
fn split_nonce(nonce: &[u8; NONCE_LEN]) -> ([u8; 16], Nonce) {
    let mut start = [0u8; 16];
    start.copy_from_slice(&nonce[..16]);
    let mut ietf = [0u8; 12];
    ietf[4..].copy_from_slice(&nonce[16..]);
    (start, Nonce::assume_unique_for_key(ietf))
}

/// Seals the packet in `buf[HEADER .. HEADER + len]` in place with `cipher`, the subkey
/// of the key and `nonce`'s first 16 bytes; returns the frame's length, or `None` if
/// `buf` has no room for the tag.
fn seal_with(
    cipher: &LessSafeKey,
    nonce: &[u8; NONCE_LEN],
    label: &[u8],
    buf: &mut [u8],
    len: usize,
) -> Option<usize> {
    let total = HEADER + len + TAG_LEN;
    if buf.len() < total {
        return None;
    }
    buf[..2].copy_from_slice(&MAGIC);
    buf[2..HEADER].copy_from_slice(nonce);
    let (_, ietf) = split_nonce(nonce);
    let aad = aad(label);
    let tag = cipher
        .seal_in_place_separate_tag(
            ietf,
            Aad::from(&aad[..aad_len(label)]),
            &mut buf[HEADER..HEADER + len],
        )
        .ok()?;
    buf[HEADER + len..total].copy_from_slice(tag.as_ref());
    Some(total)
}

/// Seals the packet in `buf[PAYLOAD_OFFSET .. PAYLOAD_OFFSET + len]` in place under the
/// primary key of `ring` with `nonce` as given; returns the frame's length, or `None` if
/// the ring is empty or `buf` has no room for the tag. The node seals through
/// [`Sealer::seal`], which builds the nonce and keeps the subkey; this derives it anew.
/// For tests and benches only (`internals`).
#[cfg(any(test, feature = "internals"))]
pub fn seal(
    ring: &Keyring,
    nonce: [u8; NONCE_LEN],
    label: &[u8],
    buf: &mut [u8],
    len: usize,
) -> Option<usize> {
    let key = ring.primary()?;
    let (start, _) = split_nonce(&nonce);
    seal_with(&subkey_cipher(key, &start)?, &nonce, label, buf, len)
}

/// Opens a sealed frame with the key of `ring` that authenticates it, writing the packet
/// into `out` (cleared first). The key whose id the nonce carries is tried first, then
/// the others in ring order, so a frame costs one attempt when its key is known and at
/// most one per key otherwise (as a frame from before key ids does). `false` if no key
/// opens it or the frame is malformed. The node opens through [`Sealer::open`], which
/// also keeps the subkeys of the senders it hears from. For tests and benches only
/// (`internals`).
#[cfg(any(test, feature = "internals"))]
pub fn open(ring: &Keyring, label: &[u8], frame: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some((nonce, body, tag)) = parse(frame) else {
        return false;
    };
    let (start, _) = split_nonce(&nonce);
    for key in try_order(ring, &nonce) {
        if subkey_cipher(key, &start)
            .is_some_and(|cipher| open_with(&cipher, &nonce, label, body, tag, out))
        {
            return true;
        }
    }
    out.clear();
    false
}

/// A sealed frame's nonce, ciphertext and tag; `None` if it is not one.
fn parse(frame: &[u8]) -> Option<([u8; NONCE_LEN], &[u8], Tag)> {
    if frame.len() < SEAL_OVERHEAD || !is_sealed(frame) {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&frame[2..HEADER]);
    let tag = Tag::try_from(&frame[frame.len() - TAG_LEN..]).ok()?;
    Some((nonce, &frame[HEADER..frame.len() - TAG_LEN], tag))
}

/// The keys of `ring` to try on a frame with `nonce`: the one it names first, then the
/// others in ring order. Each key once, so a frame costs at most one attempt per key.
fn try_order<'a>(ring: &'a Keyring, nonce: &[u8; NONCE_LEN]) -> impl Iterator<Item = &'a Key> {
    let id = &nonce[PREFIX_LEN..PREFIX_LEN + KEY_ID_LEN];
    let keys = ring.keys();
    let named = keys.iter().position(|k| k.id == id);
    named
        .into_iter()
        .chain((0..keys.len()).filter(move |&i| Some(i) != named))
        .map(move |i| &keys[i])
}

/// One attempt at opening `body` with `cipher` (the subkey of a key and the nonce's
/// first 16 bytes), into `out`.
fn open_with(
    cipher: &LessSafeKey,
    nonce: &[u8; NONCE_LEN],
    label: &[u8],
    body: &[u8],
    tag: Tag,
    out: &mut Vec<u8>,
) -> bool {
    let (_, ietf) = split_nonce(nonce);
    out.clear();
    out.extend_from_slice(body);
    let aad = aad(label);
    cipher
        .open_in_place_separate_tag(ietf, Aad::from(&aad[..aad_len(label)]), tag, out, 0..)
        .is_ok()
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
pub const PAYLOAD_OFFSET: usize = HEADER;

/// Sets of [`Sealer`]'s cache of opening subkeys, two entries each: 16 entries of about
/// 600 bytes (ring's key type has room for AES's key schedule), allocated at a keyed
/// node's first opened frame. Under `phi-monitors` a node hears steadily from about 6
/// senders (its monitors' pings, its monitored members' acks).
const OPEN_CACHE_SETS: usize = 8;

/// A subkey that opened a frame: a sender process's nonce start under a key. Kept as
/// ring's key rather than the 32-byte subkey: building that key costs about 30 ns per
/// datagram (`benches/seal.rs`), an eighth of what opening a 150-byte packet costs.
#[derive(Debug)]
struct OpenEntry {
    /// The key it belongs to, checked to be in the ring at every use (so a removed key's
    /// subkeys open nothing).
    key: Key,
    /// The nonce's first 16 bytes: the sender's prefix and the key's id.
    start: [u8; 16],
    cipher: LessSafeKey,
}

/// One node's sealing: its keyring, the nonce state, the subkeys it seals and opens
/// with, and the buffer an opened packet is decrypted into (reused across datagrams).
#[derive(Debug)]
pub struct Sealer {
    /// Keys sealing and opening packets (from the config; rotated by commands).
    pub keyring: Keyring,
    /// Nonces are this per-process prefix, the sealing key's id and a counter.
    nonce_prefix: [u8; PREFIX_LEN],
    nonce_counter: u64,
    /// The key that sealed last and its cipher under this prefix: the nonce's first 16
    /// bytes stay the same until the primary key or the prefix changes, so its subkey
    /// does too. Checked against the primary at every seal, whatever changed the ring.
    /// Boxed: a plaintext node keeps a pointer, not ring's 544-byte key.
    cached: Option<Box<(Key, LessSafeKey)>>,
    /// The subkeys of the senders heard from lately (each sender's nonce start is fixed
    /// per process and key, so its subkey is too): a two-way set-associative cache,
    /// indexed by the start's first random bytes, filled only by frames that opened
    /// (a forger cannot evict anything). Empty until the first frame opens.
    open_cache: Vec<Option<OpenEntry>>,
    /// Per set, the way used last (the other is replaced).
    open_recent: u32,
    /// Where an opened packet is decrypted.
    pub opened: Vec<u8>,
}

impl Sealer {
    /// Sealing with `keyring`, nonces under the first 12 bytes of `nonce_prefix`.
    pub fn new(keyring: Keyring, nonce_prefix: [u8; 16]) -> Sealer {
        let mut s = Sealer {
            keyring,
            nonce_prefix: [0; PREFIX_LEN],
            nonce_counter: 0,
            cached: None,
            open_cache: Vec::new(),
            open_recent: 0,
            opened: Vec::new(),
        };
        s.set_nonce_prefix(nonce_prefix);
        s
    }

    /// A new per-process prefix (its first 12 bytes; the nonce's next 4 name the key);
    /// the counter starts over under it.
    pub fn set_nonce_prefix(&mut self, prefix: [u8; 16]) {
        self.nonce_prefix.copy_from_slice(&prefix[..PREFIX_LEN]);
        self.nonce_counter = 0;
        self.cached = None;
    }

    /// Seals the packet in `buf[PAYLOAD_OFFSET .. PAYLOAD_OFFSET + len]` in place under
    /// the primary key; returns the frame's length. `None` (and no nonce spent) if the
    /// ring is empty or `buf` has no room for the tag.
    pub fn seal(&mut self, label: &[u8], buf: &mut [u8], len: usize) -> Option<usize> {
        let key = self.keyring.primary()?;
        if buf.len() < HEADER + len + TAG_LEN {
            return None;
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        nonce[PREFIX_LEN..PREFIX_LEN + KEY_ID_LEN].copy_from_slice(&key.id);
        nonce[16..].copy_from_slice(&self.nonce_counter.to_le_bytes());
        if self.cached.as_deref().is_none_or(|(k, _)| k != key) {
            let (start, _) = split_nonce(&nonce);
            self.cached = Some(Box::new((key.clone(), subkey_cipher(key, &start)?)));
        }
        let (_, cipher) = self.cached.as_deref()?;
        self.nonce_counter = self.nonce_counter.wrapping_add(1);
        seal_with(cipher, &nonce, label, buf, len)
    }

    /// [`open`] with this node's keyring, through the cache of subkeys: a frame from a
    /// sender heard from lately under a key still in the ring skips HChaCha20.
    pub fn open(&mut self, label: &[u8], frame: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let Some((nonce, body, tag)) = parse(frame) else {
            return false;
        };
        let (start, _) = split_nonce(&nonce);
        let set =
            u32::from_le_bytes([start[0], start[1], start[2], start[3]]) as usize % OPEN_CACHE_SETS;
        for way in 0..2 {
            let hit = self
                .open_cache
                .get(2 * set + way)
                .and_then(Option::as_ref)
                .filter(|e| e.start == start && self.keyring.keys().contains(&e.key));
            if let Some(e) = hit
                && open_with(&e.cipher, &nonce, label, body, tag, out)
            {
                self.mark_recent(set, way);
                return true;
            }
        }
        let opened = try_order(&self.keyring, &nonce).find_map(|key| {
            let cipher = subkey_cipher(key, &start)?;
            open_with(&cipher, &nonce, label, body, tag, out).then(|| OpenEntry {
                key: key.clone(),
                start,
                cipher,
            })
        });
        match opened {
            Some(entry) => {
                self.remember(set, entry);
                true
            }
            None => {
                out.clear();
                false
            }
        }
    }

    /// Caches `entry` in `set`, in place of the entry used less lately.
    fn remember(&mut self, set: usize, entry: OpenEntry) {
        if self.open_cache.is_empty() {
            self.open_cache.resize_with(2 * OPEN_CACHE_SETS, || None);
        }
        let way = 1 - ((self.open_recent >> set) & 1) as usize;
        self.open_cache[2 * set + way] = Some(entry);
        self.mark_recent(set, way);
    }

    fn mark_recent(&mut self, set: usize, way: usize) {
        self.open_recent = (self.open_recent & !(1 << set)) | ((way as u32) << set);
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
        let mut sealer = Sealer::new(Keyring::new(k.clone()), [7; 16]);
        sealed_by(&mut sealer, label, msg)
    }

    fn sealed_by(sealer: &mut Sealer, label: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; msg.len() + SEAL_OVERHEAD];
        buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + msg.len()].copy_from_slice(msg);
        let n = sealer.seal(label, &mut buf, msg.len()).unwrap();
        buf.truncate(n);
        buf
    }

    /// A frame as releases before key ids sealed it: all 16 bytes before the counter
    /// drawn at random, none of them naming the key.
    fn sealed_without_id(ring: &Keyring, nonce: [u8; NONCE_LEN], msg: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; msg.len() + SEAL_OVERHEAD];
        buf[PAYLOAD_OFFSET..PAYLOAD_OFFSET + msg.len()].copy_from_slice(msg);
        let n = seal(ring, nonce, b"rumor", &mut buf, msg.len()).unwrap();
        buf.truncate(n);
        buf
    }

    /// The previous implementation (RustCrypto's XChaCha20-Poly1305) opening a frame.
    fn reference_open(k: &Key, label: &[u8], frame: &[u8]) -> Option<Vec<u8>> {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&k.to_bytes()).into());
        let mut out = frame[HEADER..frame.len() - TAG_LEN].to_vec();
        let tag = chacha20poly1305::Tag::from_slice(&frame[frame.len() - TAG_LEN..]);
        let a = aad(label);
        cipher
            .decrypt_in_place_detached(
                chacha20poly1305::XNonce::from_slice(&frame[2..HEADER]),
                &a[..aad_len(label)],
                &mut out,
                tag,
            )
            .ok()?;
        Some(out)
    }

    /// The previous implementation sealing a frame.
    fn reference_seal(k: &Key, nonce: [u8; NONCE_LEN], label: &[u8], msg: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&k.to_bytes()).into());
        let mut body = msg.to_vec();
        let a = aad(label);
        let tag = cipher
            .encrypt_in_place_detached(
                chacha20poly1305::XNonce::from_slice(&nonce),
                &a[..aad_len(label)],
                &mut body,
            )
            .unwrap();
        [&MAGIC[..], &nonce, &body, &tag].concat()
    }

    #[test]
    fn the_nonce_names_the_sealing_key_and_counts() {
        let mut ring = Keyring::new(key(1));
        ring.add(key(2)).unwrap();
        let mut sealer = Sealer::new(ring, [0xee; 16]);
        let a = sealed_by(&mut sealer, b"rumor", b"x");
        let b = sealed_by(&mut sealer, b"rumor", b"x");
        assert_eq!(&a[2..2 + PREFIX_LEN], &[0xee; PREFIX_LEN]);
        assert_eq!(&a[14..18], &key(1).id);
        assert_eq!(&a[18..26], &0u64.to_le_bytes());
        assert_eq!(&b[18..26], &1u64.to_le_bytes());
        assert_ne!(a, b, "a nonce was reused");
        // A new primary is named (and its subkey derived) at the next seal.
        sealer.keyring.use_key(&key(2)).unwrap();
        let c = sealed_by(&mut sealer, b"rumor", b"x");
        assert_eq!(&c[14..18], &key(2).id);
        assert_eq!(
            reference_open(&key(2), b"rumor", &c).as_deref(),
            Some(&b"x"[..])
        );
        // What the sealer keeps derived from its keys stays out of its Debug output
        // (ring's key shows only its algorithm).
        let shown = format!("{sealer:?}");
        assert!(
            shown.contains("LessSafeKey { algorithm: CHACHA20_POLY1305 }"),
            "{shown}"
        );
        // Key ids differ between keys and tell nothing obvious about them.
        assert_ne!(key(1).id, key(2).id);
        assert_ne!(key(1).id, [1; 4]);
    }

    #[test]
    fn a_removed_keys_cached_subkey_opens_nothing() {
        let mut writer = Sealer::new(Keyring::new(key(2)), [1; 16]);
        let mut ring = Keyring::new(key(1));
        ring.add(key(2)).unwrap();
        let mut reader = Sealer::new(ring, [2; 16]);
        let mut out = Vec::new();
        for msg in [&b"one"[..], b"two"] {
            let f = sealed_by(&mut writer, b"rumor", msg);
            assert!(reader.open(b"rumor", &f, &mut out));
            assert_eq!(out, msg);
        }
        reader.keyring.remove(&key(2)).unwrap();
        let f = sealed_by(&mut writer, b"rumor", b"three");
        assert!(!reader.open(b"rumor", &f, &mut out));
        assert!(out.is_empty());
        // Added back, it opens again.
        reader.keyring.add(key(2)).unwrap();
        assert!(reader.open(b"rumor", &f, &mut out));
    }

    #[test]
    fn more_senders_than_the_cache_holds_all_open() {
        let ring = Keyring::new(key(1));
        let mut reader = Sealer::new(ring.clone(), [0; 16]);
        let mut writers: Vec<Sealer> = (0..3 * OPEN_CACHE_SETS as u8)
            .map(|i| Sealer::new(ring.clone(), [i.wrapping_mul(37); 16]))
            .collect();
        let mut out = Vec::new();
        for round in 0..3u8 {
            for w in writers.iter_mut() {
                let f = sealed_by(w, b"rumor", &[round]);
                assert!(reader.open(b"rumor", &f, &mut out));
                assert_eq!(out, [round]);
            }
        }
        // A forged frame reusing a cached sender's nonce start opens nothing.
        let mut forger = Sealer::new(Keyring::new(key(5)), [0; 16]);
        let mut f = sealed_by(&mut writers[0], b"rumor", b"x");
        let forged = sealed_by(&mut forger, b"rumor", b"x");
        f[HEADER..].copy_from_slice(&forged[HEADER..]);
        assert!(!reader.open(b"rumor", &f, &mut out));
    }

    #[test]
    fn frames_without_a_key_id_open_with_any_key_of_the_ring() {
        let mut ring = Keyring::new(key(1));
        ring.add(key(2)).unwrap();
        ring.add(key(3)).unwrap();
        let mut writer = ring.clone();
        writer.use_key(&key(3)).unwrap();
        let mut out = Vec::new();
        for start in [[0u8; 16], [0xff; 16], [0x5a; 16]] {
            let mut nonce = [9u8; NONCE_LEN];
            nonce[..16].copy_from_slice(&start);
            let frame = sealed_without_id(&writer, nonce, b"old");
            assert!(open(&ring, b"rumor", &frame, &mut out));
            assert_eq!(out, b"old");
        }
        // A nonce that names another key of the ring costs a failed try, not the frame.
        let mut nonce = [9u8; NONCE_LEN];
        nonce[PREFIX_LEN..16].copy_from_slice(&key(1).id);
        let frame = sealed_without_id(&writer, nonce, b"misnamed");
        assert!(open(&ring, b"rumor", &frame, &mut out));
        assert_eq!(out, b"misnamed");
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
            // A reader that has opened this sender's frames (its subkey cached) too.
            let mut reader = Sealer::new(Keyring::new(k.clone()), [3; 16]);
            prop_assert!(reader.open(b"rumor", &frame, &mut out));
            let i = at.index(frame.len());
            frame[i] ^= flip;
            prop_assert!(!open(&Keyring::new(k), b"rumor", &frame, &mut out));
            prop_assert!(!reader.open(b"rumor", &frame, &mut out));
            prop_assert!(out.is_empty());
        }

        #[test]
        fn the_previous_implementation_reads_and_writes_the_same_frames(
            msg in prop::collection::vec(any::<u8>(), 0..1500),
            k in any::<[u8; KEY_LEN]>(),
            prefix in any::<[u8; 16]>(),
            nonce in any::<[u8; NONCE_LEN]>(),
            label in prop::collection::vec(any::<u8>(), 0..70),
        ) {
            let k = Key::from_bytes(k);
            let mut sealer = Sealer::new(Keyring::new(k.clone()), prefix);
            let ours = sealed_by(&mut sealer, &label, &msg);
            prop_assert_eq!(reference_open(&k, &label, &ours), Some(msg.clone()));
            let theirs = reference_seal(&k, nonce, &label, &msg);
            let mut out = Vec::new();
            prop_assert!(open(&Keyring::new(k), &label, &theirs, &mut out));
            prop_assert_eq!(out, msg);
        }

        #[test]
        fn arbitrary_frames_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            let _ = open(&Keyring::new(key(1)), b"rumor", &data, &mut out);
        }
    }
}
