//! Writing a packet straight into the datagram buffer, one message at a time.
//!
//! The output is byte for byte what prost writes for the same `Packet` (fields in tag
//! order, defaults left out), so peers decode it with the generated code; the tests
//! below hold the two encoders to each other. What the writer adds is the way in: an
//! `Alive` is written from borrowed slices of the member table ([`AliveRef`]). Building
//! a prost `Alive` instead clones three `Bytes` handles of the member's descriptor and
//! drops them after encoding: six reference-count writes to a cache line of a member
//! that, in a large table, nothing else touched lately. A join storm gossips thousands
//! of such Alives per node, and those writes were a fifth of a 1,000-node join's time.

use bytes::BufMut;
use prost::Message as _;
use prost::encoding::{encode_varint, encoded_len_varint};

use super::{Message, Packet};

/// Key of `Packet.messages` and of `Message.alive` alike: field 5, length-delimited.
const KEY_5_LEN: u8 = (5 << 3) | 2;
/// Key of `Packet.sync_entries`: field 8, varint.
const KEY_SYNC_ENTRIES: u8 = 8 << 3;
/// Keys of `Alive`'s fields: member (1, fixed64), incarnation (2, varint), name (3),
/// addr (4) and metadata (5), the last three length-delimited.
const KEY_MEMBER: u8 = (1 << 3) | 1;
const KEY_INCARNATION: u8 = 2 << 3;
const KEY_NAME: u8 = (3 << 3) | 2;
const KEY_ADDR: u8 = (4 << 3) | 2;
const KEY_METADATA: u8 = (5 << 3) | 2;

/// An `Alive` whose byte fields are borrowed from wherever they live.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AliveRef<'a> {
    pub member: u64,
    pub incarnation: u64,
    pub name: &'a [u8],
    /// In wire form (`encode_addr`).
    pub addr: &'a [u8],
    pub metadata: &'a [u8],
}

impl AliveRef<'_> {
    /// The size of the `Alive` itself, without the keys and lengths that wrap it.
    fn body_len(&self) -> usize {
        let bytes_field = |b: &[u8]| {
            if b.is_empty() {
                0
            } else {
                1 + encoded_len_varint(b.len() as u64) + b.len()
            }
        };
        let member = if self.member == 0 { 0 } else { 1 + 8 };
        let incarnation = if self.incarnation == 0 {
            0
        } else {
            1 + encoded_len_varint(self.incarnation)
        };
        member
            + incarnation
            + bytes_field(self.name)
            + bytes_field(self.addr)
            + bytes_field(self.metadata)
    }

    /// The size of `Message { alive }`: the oneof's key and length, then the body.
    fn message_body_len(&self) -> usize {
        let body = self.body_len();
        1 + encoded_len_varint(body as u64) + body
    }

    /// What the message adds to a packet, as [`super::message_len`] counts it.
    pub fn len(&self) -> usize {
        let inner = self.message_body_len();
        1 + encoded_len_varint(inner as u64) + inner
    }
}

/// A packet being written into a buffer: the envelope first, then messages while they
/// fit, then [`finish`](PacketWriter::finish) adds the trailing fields.
///
/// Every `push` checks both limits a receiver enforces, the buffer's length (the byte
/// budget) and `max_messages`, and writes nothing when the message does not fit, so a
/// caller may try smaller messages after a refusal.
#[derive(Debug)]
pub(crate) struct PacketWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    /// Bytes held back for trailing fields (`sync_entries`).
    reserved: usize,
    messages: usize,
    max_messages: usize,
    sync_entries: u32,
}

impl<'a> PacketWriter<'a> {
    /// Starts a packet with `envelope`'s fields other than `messages`, `sealed`,
    /// `key_id` and `sync_entries` (the writer never writes the middle two, which only
    /// a sealed frame would use). `None` if `buf` cannot hold even the envelope.
    pub fn new(buf: &'a mut [u8], envelope: &Packet, max_messages: usize) -> Option<Self> {
        debug_assert!(envelope.messages.is_empty() && envelope.sync_entries == 0);
        let capacity = buf.len();
        let mut out = &mut buf[..];
        envelope.encode(&mut out).ok()?;
        let len = capacity - out.len();
        Some(PacketWriter {
            buf,
            len,
            reserved: 0,
            messages: 0,
            max_messages,
            sync_entries: 0,
        })
    }

    /// Messages written so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Bytes still free for messages.
    pub fn room(&self) -> usize {
        self.buf.len() - self.len - self.reserved
    }

    /// Whether `count` more messages of `len` bytes in all would fit.
    pub fn fits(&self, len: usize, count: usize) -> bool {
        len <= self.room() && self.messages + count <= self.max_messages
    }

    /// Holds `n` bytes back from the messages, for a trailing field.
    pub fn reserve(&mut self, n: usize) {
        self.reserved = (self.reserved + n).min(self.buf.len() - self.len);
    }

    /// Sets `Packet.sync_entries`, written by `finish`: room for it must have been
    /// reserved (3 bytes cover any count below 16,384).
    pub fn set_sync_entries(&mut self, n: u32) {
        self.sync_entries = n;
    }

    /// The rest of the buffer, for writing `len` bytes that fit.
    fn tail(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Appends `msg`; false (nothing written) if it does not fit.
    pub fn push(&mut self, msg: &Message) -> bool {
        let len = super::message_len(msg);
        if !self.fits(len, 1) {
            return false;
        }
        let mut out = self.tail();
        out.put_u8(KEY_5_LEN);
        // Cannot fail: `len` counts the key, the length prefix and the body.
        let written = msg.encode_length_delimited(&mut out).is_ok();
        debug_assert!(written);
        self.len += len;
        self.messages += 1;
        true
    }

    /// Appends `Message { alive }`; false (nothing written) if it does not fit.
    pub fn push_alive(&mut self, alive: &AliveRef<'_>) -> bool {
        let len = alive.len();
        if !self.fits(len, 1) {
            return false;
        }
        let mut out = self.tail();
        out.put_u8(KEY_5_LEN);
        encode_varint(alive.message_body_len() as u64, &mut out);
        out.put_u8(KEY_5_LEN);
        encode_varint(alive.body_len() as u64, &mut out);
        if alive.member != 0 {
            out.put_u8(KEY_MEMBER);
            out.put_u64_le(alive.member);
        }
        if alive.incarnation != 0 {
            out.put_u8(KEY_INCARNATION);
            encode_varint(alive.incarnation, &mut out);
        }
        for (key, field) in [
            (KEY_NAME, alive.name),
            (KEY_ADDR, alive.addr),
            (KEY_METADATA, alive.metadata),
        ] {
            if !field.is_empty() {
                out.put_u8(key);
                encode_varint(field.len() as u64, &mut out);
                out.put_slice(field);
            }
        }
        self.len += len;
        self.messages += 1;
        true
    }

    /// Writes the trailing fields and returns the packet's length.
    pub fn finish(self) -> usize {
        let PacketWriter {
            buf,
            mut len,
            sync_entries,
            ..
        } = self;
        if sync_entries != 0 {
            let need = 1 + encoded_len_varint(u64::from(sync_entries));
            // The caller reserved this room; should it not have, the field is dropped
            // rather than written past the buffer (the receiver then re-gossips the
            // entries, which costs load, not correctness).
            if let Some(mut out) = buf.get_mut(len..len + need) {
                out.put_u8(KEY_SYNC_ENTRIES);
                encode_varint(u64::from(sync_entries), &mut out);
                len += need;
            }
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::super::props::valid_packet;
    use super::super::{Alive, Body, encode_packet, message_len};
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Writes `p` with the writer, Alives through `push_alive`.
    fn write(p: &Packet, buf: &mut [u8]) -> Option<usize> {
        let envelope = Packet {
            messages: Vec::new(),
            sync_entries: 0,
            ..p.clone()
        };
        let mut w = PacketWriter::new(buf, &envelope, usize::MAX)?;
        if p.sync_entries != 0 {
            // Exactly the field's size, so that the writer fits what prost fits.
            let need = 1 + encoded_len_varint(u64::from(p.sync_entries));
            if w.room() < need {
                return None;
            }
            w.reserve(need);
        }
        for m in &p.messages {
            let ok = match &m.body {
                Some(Body::Alive(a)) => w.push_alive(&AliveRef {
                    member: a.member,
                    incarnation: a.incarnation,
                    name: &a.name,
                    addr: &a.addr,
                    metadata: &a.metadata,
                }),
                _ => w.push(m),
            };
            if !ok {
                return None;
            }
        }
        w.set_sync_entries(p.sync_entries);
        Some(w.finish())
    }

    fn alive(member: u64, incarnation: u64, name: &'static [u8]) -> Alive {
        Alive {
            member,
            incarnation,
            name: Bytes::from_static(name),
            addr: Bytes::from_static(&[127, 0, 0, 1, 0x1f, 0x0a]),
            metadata: Bytes::new(),
        }
    }

    #[test]
    fn alive_len_matches_prost() {
        for a in [
            alive(0, 0, b""),
            alive(1, 0, b"n"),
            alive(u64::MAX, u64::MAX, &[b'x'; 200]),
        ] {
            let r = AliveRef {
                member: a.member,
                incarnation: a.incarnation,
                name: &a.name,
                addr: &a.addr,
                metadata: &a.metadata,
            };
            let msg = Message {
                body: Some(Body::Alive(a.clone())),
            };
            assert_eq!(r.len(), message_len(&msg));
        }
    }

    #[test]
    fn a_refused_message_writes_nothing() {
        let envelope = Packet {
            version: 1,
            ..Packet::default()
        };
        let mut buf = [0u8; 80];
        let mut w = PacketWriter::new(&mut buf, &envelope, 2).unwrap();
        let a = alive(7, 1, b"node-7");
        let r = AliveRef {
            member: a.member,
            incarnation: a.incarnation,
            name: &a.name,
            addr: &a.addr,
            metadata: &a.metadata,
        };
        assert!(w.push_alive(&r));
        let used = 80 - w.room();
        // Too big for what is left: refused, and the room is unchanged.
        assert!(!w.push_alive(&AliveRef {
            name: &[b'y'; 64],
            ..r
        }));
        assert_eq!(80 - w.room(), used);
        assert!(w.push_alive(&r));
        // Room enough, but the message limit is reached.
        assert!(!w.fits(1, 1));
        assert_eq!(w.finish(), used + r.len());
    }

    proptest! {
        /// The writer and prost agree byte for byte on every packet the node could send,
        /// and on which packets do not fit a buffer.
        #[test]
        fn the_writer_writes_what_prost_writes(
            p in valid_packet(),
            cut in 0usize..4096,
        ) {
            let p = Packet { key_id: 0, ..p };
            let want = p.encode_to_vec();
            let mut buf = vec![0u8; want.len()];
            let len = write(&p, &mut buf);
            prop_assert_eq!(len, Some(want.len()));
            prop_assert_eq!(&buf, &want);
            // A shorter buffer: prost refuses the packet, and so does the writer.
            let short = cut % (want.len() + 1);
            if short < want.len() {
                let mut a = vec![0u8; short];
                prop_assert_eq!(encode_packet(&p, &mut a), None);
                let mut b = vec![0u8; short];
                prop_assert_eq!(write(&p, &mut b), None);
            }
        }
    }
}
