//! Writing a packet straight into the datagram buffer, one message at a time.
//!
//! The output is byte for byte what prost writes for the same `Packet` (fields in tag
//! order, defaults left out), with one difference: a nonzero `token` (field 9) is
//! written first rather than last, so that the first bytes an ICMP error quotes hold it
//! (see `refusal`). Field order does not matter to a protobuf reader, so peers decode
//! it with the generated code; the tests below hold the two encoders to each other. What the writer adds is the way in: an
//! `Alive` is written from borrowed slices of the member table ([`AliveRef`]). Building
//! a prost `Alive` instead clones three `Bytes` handles of the member's descriptor and
//! drops them after encoding: six reference-count writes to a cache line of a member
//! that, in a large table, nothing else touched lately. A join storm gossips thousands
//! of such Alives per node, and those writes were a fifth of a 1,000-node join's time.

use bytes::BufMut;
use prost::Message as _;
use prost::encoding::encoded_len_varint;

use super::{Body, Message};

/// Key of `Packet.messages` and of `Message.alive` alike: field 5, length-delimited.
const KEY_5_LEN: u8 = (5 << 3) | 2;
/// Key of `Packet.sync_entries`: field 8, varint.
const KEY_SYNC_ENTRIES: u8 = 8 << 3;
/// Key of `Packet.token`: field 9, fixed32.
const KEY_TOKEN: u8 = (9 << 3) | 5;
/// Bytes of the token field: its key and four bytes.
pub(crate) const TOKEN_LEN: usize = 5;
/// Keys of `Alive`'s fields: member (1, fixed64), incarnation (2, varint), name (3),
/// addr (4) and metadata (5), the last three length-delimited.
const KEY_MEMBER: u8 = (1 << 3) | 1;
const KEY_INCARNATION: u8 = 2 << 3;
const KEY_NAME: u8 = (3 << 3) | 2;
const KEY_ADDR: u8 = (4 << 3) | 2;
const KEY_METADATA: u8 = (5 << 3) | 2;

/// An `Alive` whose byte fields are borrowed from wherever they live.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AliveRef<'a> {
    pub member: u64,
    pub incarnation: u64,
    pub name: &'a [u8],
    /// In wire form (`encode_addr`).
    pub addr: &'a [u8],
    pub metadata: &'a [u8],
}

#[cfg(any(test, feature = "internals"))]
impl<'a> From<&'a super::Alive> for AliveRef<'a> {
    fn from(a: &'a super::Alive) -> Self {
        AliveRef {
            member: a.member,
            incarnation: a.incarnation,
            name: &a.name,
            addr: &a.addr,
            metadata: &a.metadata,
        }
    }
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

/// A write position in a buffer whose room the caller has checked. It cannot panic:
/// a write past the end (which the length checks before every write rule out) would
/// be dropped, and the packet's length would then be wrong, never the memory.
struct Out<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Out<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Out { buf, pos: 0 }
    }

    #[inline]
    fn byte(&mut self, v: u8) {
        if let Some(b) = self.buf.get_mut(self.pos) {
            *b = v;
        }
        self.pos += 1;
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    #[inline]
    fn slice(&mut self, src: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + src.len()) {
            dst.copy_from_slice(src);
        }
        self.pos += src.len();
    }

    /// A length-delimited field: key, length, bytes.
    #[inline]
    fn bytes_field(&mut self, key: u8, src: &[u8]) {
        self.byte(key);
        self.varint(src.len() as u64);
        self.slice(src);
    }
}

/// A packet's envelope: the fields before its messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Envelope<'a> {
    pub version: u32,
    pub cluster: &'a [u8],
    pub sender: u64,
    pub incarnation: u64,
    /// `Packet.token`; 0 writes none.
    pub token: u32,
}

impl Envelope<'_> {
    fn len(&self) -> usize {
        let token = if self.token == 0 { 0 } else { TOKEN_LEN };
        let cluster = if self.cluster.is_empty() {
            0
        } else {
            1 + encoded_len_varint(self.cluster.len() as u64) + self.cluster.len()
        };
        token
            + Scalar::Varint(varint_key(1), u64::from(self.version)).len()
            + cluster
            + Scalar::Fixed64(fixed64_key(3), self.sender).len()
            + Scalar::Varint(varint_key(4), self.incarnation).len()
    }
}

/// A field of a message made of scalars only: its key, and its value as a varint or
/// as 8 little-endian bytes. A value of 0 is proto3's default and is not written.
#[derive(Clone, Copy)]
enum Scalar {
    Varint(u8, u64),
    Fixed64(u8, u64),
}

impl Scalar {
    #[inline]
    fn len(self) -> usize {
        match self {
            Scalar::Varint(_, 0) | Scalar::Fixed64(_, 0) => 0,
            Scalar::Varint(_, v) => 1 + encoded_len_varint(v),
            Scalar::Fixed64(..) => 9,
        }
    }

    #[inline]
    fn write(self, out: &mut Out<'_>) {
        match self {
            Scalar::Varint(_, 0) | Scalar::Fixed64(_, 0) => {}
            Scalar::Varint(key, v) => {
                out.byte(key);
                out.varint(v);
            }
            Scalar::Fixed64(key, v) => {
                out.byte(key);
                out.slice(&v.to_le_bytes());
            }
        }
    }
}

/// Keys of a message's fields 1 to 4 by wire type.
const fn varint_key(field: u8) -> u8 {
    field << 3
}
const fn fixed64_key(field: u8) -> u8 {
    (field << 3) | 1
}

/// The `Message.body` key and the fields of the bodies made of scalars only, which are
/// most of what a node sends (pings, acks, nacks, and the verdicts it gossips); `None`
/// for the others (prost writes those). prost's generic path costs about 300
/// instructions for a ping, most of it measuring the message twice.
fn scalar_body(body: &Body) -> Option<(u8, [Scalar; 4])> {
    let none = Scalar::Varint(0, 0);
    // An enum is an int32, written as its sign-extended 64-bit varint.
    let cause = |c: i32| Scalar::Varint(varint_key(4), c as i64 as u64);
    let (field, fields) = match body {
        Body::Ping(p) => (
            1,
            [
                Scalar::Varint(varint_key(1), u64::from(p.seq)),
                Scalar::Fixed64(fixed64_key(2), p.target),
                none,
                none,
            ],
        ),
        Body::Ack(a) => (
            2,
            [
                Scalar::Varint(varint_key(1), u64::from(a.seq)),
                none,
                none,
                none,
            ],
        ),
        Body::Nack(n) => (
            4,
            [
                Scalar::Varint(varint_key(1), u64::from(n.seq)),
                Scalar::Varint(varint_key(2), u64::from(n.refused)),
                none,
                none,
            ],
        ),
        Body::Suspect(v) => (
            6,
            [
                Scalar::Fixed64(fixed64_key(1), v.member),
                Scalar::Varint(varint_key(2), v.incarnation),
                Scalar::Fixed64(fixed64_key(3), v.from),
                cause(v.cause),
            ],
        ),
        Body::Dead(v) => (
            7,
            [
                Scalar::Fixed64(fixed64_key(1), v.member),
                Scalar::Varint(varint_key(2), v.incarnation),
                Scalar::Fixed64(fixed64_key(3), v.from),
                cause(v.cause),
            ],
        ),
        Body::Leave(l) => (
            8,
            [
                Scalar::Fixed64(fixed64_key(1), l.member),
                Scalar::Varint(varint_key(2), l.incarnation),
                none,
                none,
            ],
        ),
        _ => return None,
    };
    Some(((field << 3) | 2, fields))
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
    /// Starts a packet with the envelope's fields (`Packet.token` first, then fields 1
    /// to 4; the writer never writes `sealed` or `key_id`, which only a sealed frame
    /// would use). `None` if `buf` cannot hold even the envelope.
    pub fn new(buf: &'a mut [u8], envelope: &Envelope<'_>, max_messages: usize) -> Option<Self> {
        let len = envelope.len();
        let mut out = Out::new(buf.get_mut(..len)?);
        if envelope.token != 0 {
            out.byte(KEY_TOKEN);
            out.slice(&envelope.token.to_le_bytes());
        }
        Scalar::Varint(varint_key(1), u64::from(envelope.version)).write(&mut out);
        if !envelope.cluster.is_empty() {
            out.bytes_field((2 << 3) | 2, envelope.cluster);
        }
        Scalar::Fixed64(fixed64_key(3), envelope.sender).write(&mut out);
        Scalar::Varint(varint_key(4), envelope.incarnation).write(&mut out);
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

    /// The rest of the buffer, for writing bytes that fit.
    fn out(&mut self) -> Out<'_> {
        Out::new(self.buf.get_mut(self.len..).unwrap_or_default())
    }

    /// Appends `msg`; false (nothing written) if it does not fit.
    pub fn push(&mut self, msg: &Message) -> bool {
        if let Some((key, fields)) = msg.body.as_ref().and_then(scalar_body) {
            return self.push_scalars(key, &fields);
        }
        let len = super::message_len(msg);
        if !self.fits(len, 1) {
            return false;
        }
        let mut out = self.buf.get_mut(self.len..).unwrap_or_default();
        out.put_u8(KEY_5_LEN);
        // Cannot fail: `len` counts the key, the length prefix and the body.
        let room = out.len();
        let written = msg.encode_length_delimited(&mut out).is_ok();
        debug_assert!(
            written && room - out.len() + 1 == len,
            "message_len is exact"
        );
        self.len += len;
        self.messages += 1;
        true
    }

    /// Appends a `Message` whose body (under `key`) is made of `fields`.
    fn push_scalars(&mut self, key: u8, fields: &[Scalar]) -> bool {
        let body: usize = fields.iter().map(|f| f.len()).sum();
        let inner = 1 + encoded_len_varint(body as u64) + body;
        let len = 1 + encoded_len_varint(inner as u64) + inner;
        if !self.fits(len, 1) {
            return false;
        }
        let mut out = self.out();
        out.byte(KEY_5_LEN);
        out.varint(inner as u64);
        out.byte(key);
        out.varint(body as u64);
        for f in fields {
            f.write(&mut out);
        }
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
        let mut out = self.out();
        out.byte(KEY_5_LEN);
        out.varint(alive.message_body_len() as u64);
        out.byte(KEY_5_LEN);
        out.varint(alive.body_len() as u64);
        Scalar::Fixed64(KEY_MEMBER, alive.member).write(&mut out);
        Scalar::Varint(KEY_INCARNATION, alive.incarnation).write(&mut out);
        for (key, field) in [
            (KEY_NAME, alive.name),
            (KEY_ADDR, alive.addr),
            (KEY_METADATA, alive.metadata),
        ] {
            if !field.is_empty() {
                out.bytes_field(key, field);
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
            reserved: self_reserved,
            ..
        } = self;
        if sync_entries != 0 {
            let need = 1 + encoded_len_varint(u64::from(sync_entries));
            debug_assert!(self_reserved >= need, "room for sync_entries was reserved");
            // The caller reserved this room; should it not have, the field is dropped
            // rather than written past the buffer (the receiver then re-gossips the
            // entries, which costs load, not correctness).
            if let Some(dst) = buf.get_mut(len..len + need) {
                let mut out = Out::new(dst);
                Scalar::Varint(KEY_SYNC_ENTRIES, u64::from(sync_entries)).write(&mut out);
                len += need;
            }
        }
        len
    }
}

/// Writes a whole `Packet` the way the node writes its datagrams (an `Alive` through
/// `PacketWriter::push_alive`, everything else through `PacketWriter::push`), for
/// the codec bench and the tests; `None` if it does not fit `buf`, or if it sets
/// `sealed` or `key_id`, which a node never sets and the writer cannot write.
#[cfg(any(test, feature = "internals"))]
pub fn write_packet(p: &super::Packet, buf: &mut [u8]) -> Option<usize> {
    if !p.sealed.is_empty() || p.key_id != 0 {
        // Fields the writer has no way to write: refuse rather than drop them.
        return None;
    }
    let envelope = Envelope {
        version: p.version,
        cluster: &p.cluster,
        sender: p.sender,
        incarnation: p.incarnation,
        token: p.token,
    };
    let mut w = PacketWriter::new(buf, &envelope, usize::MAX)?;
    if p.sync_entries != 0 {
        // Exactly the field's size (the node reserves 3 bytes), so that the writer
        // fits what prost fits.
        let need = 1 + encoded_len_varint(u64::from(p.sync_entries));
        if w.room() < need {
            return None;
        }
        w.reserve(need);
    }
    for m in &p.messages {
        let ok = match &m.body {
            Some(Body::Alive(a)) => w.push_alive(&AliveRef::from(a)),
            _ => w.push(m),
        };
        if !ok {
            return None;
        }
    }
    w.set_sync_entries(p.sync_entries);
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use super::super::props::valid_packet;
    use super::super::{Alive, Body, Packet, encode_packet, message_len};
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

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
            let r = AliveRef::from(&a);
            let msg = Message {
                body: Some(Body::Alive(a.clone())),
            };
            assert_eq!(r.len(), message_len(&msg));
        }
    }

    #[test]
    fn a_refused_message_writes_nothing() {
        let envelope = Envelope {
            version: 1,
            cluster: b"",
            sender: 0,
            incarnation: 0,
            token: 0,
        };
        let mut buf = [0u8; 80];
        let mut w = PacketWriter::new(&mut buf, &envelope, 2).unwrap();
        let a = alive(7, 1, b"node-7");
        let r = AliveRef::from(&a);
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
            version in prop_oneof![Just(1u32), any::<u32>()],
            cluster in proptest::collection::vec(any::<u8>(), 0..300),
            sync_entries in prop_oneof![0u32..8, any::<u32>()],
            token in prop_oneof![Just(0u32), any::<u32>()],
            cut in 0usize..4096,
        ) {
            // Wider envelopes than a decodable packet has: any version, labels with
            // two-byte length prefixes, `sync_entries` of up to five bytes.
            let p = Packet {
                key_id: 0,
                version,
                cluster: Bytes::from(cluster),
                sync_entries,
                token,
                ..p
            };
            // prost writes the token last; the writer writes it first.
            let mut want = Vec::new();
            if token != 0 {
                want.push(KEY_TOKEN);
                want.extend_from_slice(&token.to_le_bytes());
            }
            want.extend(Packet { token: 0, ..p.clone() }.encode_to_vec());
            prop_assert_eq!(want.len(), p.encoded_len());
            let mut buf = vec![0u8; want.len()];
            let len = write_packet(&p, &mut buf);
            prop_assert_eq!(len, Some(want.len()));
            prop_assert_eq!(&buf, &want);
            // Out of tag order, it still reads back as the same packet.
            prop_assert_eq!(Packet::decode(&buf[..]).ok(), Some(p.clone()));
            // A shorter buffer: prost refuses the packet, and so does the writer.
            let short = cut % (want.len() + 1);
            if short < want.len() {
                let mut a = vec![0u8; short];
                prop_assert_eq!(encode_packet(&p, &mut a), None);
                let mut b = vec![0u8; short];
                prop_assert_eq!(write_packet(&p, &mut b), None);
            }
        }
    }
}
