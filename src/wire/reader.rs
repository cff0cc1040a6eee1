//! Reading a datagram in place: the envelope's fields and each `Alive` as slices of the
//! datagram, no copy, no `Bytes`, no message list.
//!
//! This is the node's decoder, and so the boundary every byte from the network crosses.
//! It accepts exactly what prost's generated code accepts for a whole `Packet` (the
//! tests hold the two to each other on valid packets, on malformed ones and on random
//! field soup) and enforces the same `DecodeLimits` and invariants as
//! [`decode_packet`](super::decode_packet), in the same order, so it reports the same
//! errors. Varints, keys and the bodies made of scalars (ping, ack, nack, suspect, dead,
//! leave) and `Alive` are read here; the rare bodies that carry bytes or lists (ping-req,
//! broadcasts, sync digests and wants) are merged by prost's generated code from a slice
//! of the datagram, as are groups in unknown fields (which nothing in the schema uses).
//!
//! One difference is deliberate and harmless: prost counts its recursion limit (100)
//! from the envelope, this reader afresh for each group it skips, so groups nested in an
//! unknown field up to 100 deep are accepted here where prost stopped at 98 or 99
//! (depending on the level). Either way the recursion is at most 100 frames and the
//! work is bounded by the datagram's length.

use prost::Message as _;
use prost::encoding::{DecodeContext, WireType, skip_field};

use super::writer::AliveRef;
use super::{
    Ack, Body, Dead, DecodeError, DecodeLimits, Leave, Nack, PROTOCOL_VERSION, Ping, Suspect,
    validate_body,
};

/// A message body as read from a datagram: an `Alive` borrowed from it, anything else
/// owned (and allocation-free unless it carries bytes or lists).
#[derive(Clone, Debug)]
pub(crate) enum BodyRef<'a> {
    Alive(AliveRef<'a>),
    Owned(Body),
}

/// A datagram that passed every check of [`read_packet`].
#[derive(Clone, Debug)]
pub(crate) struct PacketRef<'a> {
    pub version: u32,
    pub cluster: &'a [u8],
    pub sender: u64,
    pub incarnation: u64,
    pub key_id: u32,
    pub sync_entries: u32,
    /// The sender's refusal token (nothing reads it but the tests: it is for the
    /// sender, in an ICMP quote).
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    pub token: u32,
    /// How many messages it holds.
    pub messages: usize,
    /// The first message, kept from the checking pass: most datagrams (pings, acks)
    /// hold one, which then is not read twice.
    first: Option<BodyRef<'a>>,
    /// What follows the first message, walked again by `bodies()`.
    after_first: &'a [u8],
}

/// Structure that is not well-formed protobuf, or not the schema's.
struct Malformed;

impl From<prost::DecodeError> for Malformed {
    fn from(_: prost::DecodeError) -> Self {
        Malformed
    }
}

// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Reads a varint off the front of `buf`, exactly as prost does: at most ten bytes, the
/// tenth below 2 (no overflow past 64 bits), overlong encodings accepted.
#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<u64, Malformed> {
    let (&first, rest) = buf.split_first().ok_or(Malformed)?;
    if first < 0x80 {
        *buf = rest;
        return Ok(u64::from(first));
    }
    let mut value = 0u64;
    for (i, &byte) in buf.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            if i == 9 && byte >= 0x02 {
                return Err(Malformed);
            }
            *buf = buf.get(i + 1..).unwrap_or_default();
            return Ok(value);
        }
    }
    Err(Malformed)
}

/// A field's value, as its wire type lays it out.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
    /// A group: prost skips it in an unknown field; nothing in the schema is one.
    Group,
}

/// A field's key: its number and wire type. `Err` for what no protobuf parser accepts
/// (a key past 32 bits, field number 0, wire types 6 and 7).
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, u8), Malformed> {
    let key = varint(buf)?;
    let key = u32::try_from(key).map_err(|_| Malformed)?;
    let (tag, wire) = (key >> 3, (key & 7) as u8);
    if tag == 0 || wire > 5 {
        return Err(Malformed);
    }
    Ok((tag, wire))
}

/// Reads the value of a field of wire type `wire`; a group (wire type 3) is skipped
/// whole with prost's `skip_field`, and a stray end-group (4) is an error, as in prost.
#[inline(always)]
fn value<'a>(buf: &mut &'a [u8], tag: u32, wire: u8) -> Result<Value<'a>, Malformed> {
    Ok(match wire {
        VARINT => Value::Varint(varint(buf)?),
        FIXED64 => {
            let (head, tail) = buf.split_first_chunk::<8>().ok_or(Malformed)?;
            *buf = tail;
            Value::Fixed64(u64::from_le_bytes(*head))
        }
        LEN => {
            let len = usize::try_from(varint(buf)?).map_err(|_| Malformed)?;
            if len > buf.len() {
                return Err(Malformed);
            }
            let (head, tail) = buf.split_at(len);
            *buf = tail;
            Value::Len(head)
        }
        FIXED32 => {
            let (head, tail) = buf.split_first_chunk::<4>().ok_or(Malformed)?;
            *buf = tail;
            Value::Fixed32(u32::from_le_bytes(*head))
        }
        3 => {
            skip_field(WireType::StartGroup, tag, buf, DecodeContext::default())?;
            Value::Group
        }
        _ => return Err(Malformed),
    })
}

/// Merges the fields in `buf` into a message made of scalars, as prost merges: field
/// `n` (from 1) of the message is `values[n - 1]`, a fixed64 where `fixed[n - 1]`, a
/// varint otherwise; the last value seen wins; unknown fields are skipped; a known
/// field of another wire type is malformed.
fn merge_scalars(mut buf: &[u8], fixed: &[bool], values: &mut [u64]) -> Result<(), Malformed> {
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        let v = value(&mut buf, tag, wire)?;
        let Some(slot) = (tag as usize)
            .checked_sub(1)
            .and_then(|i| values.get_mut(i))
        else {
            continue;
        };
        *slot = match (v, fixed[tag as usize - 1]) {
            (Value::Varint(x), false) | (Value::Fixed64(x), true) => x,
            _ => return Err(Malformed),
        };
    }
    Ok(())
}

/// Merges the fields in `buf` into `alive`, as prost merges a message: scalars and
/// byte strings take the last value seen, unknown fields are skipped.
fn merge_alive<'a>(alive: &mut AliveRef<'a>, mut buf: &'a [u8]) -> Result<(), Malformed> {
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        match (tag, value(&mut buf, tag, wire)?) {
            (1, Value::Fixed64(v)) => alive.member = v,
            (2, Value::Varint(v)) => alive.incarnation = v,
            (3, Value::Len(v)) => alive.name = v,
            (4, Value::Len(v)) => alive.addr = v,
            (5, Value::Len(v)) => alive.metadata = v,
            (1..=5, _) => return Err(Malformed),
            _ => {}
        }
    }
    Ok(())
}

/// An empty body of the oneof's variant `tag` (1 to 11, `Alive` aside).
fn empty_body(tag: u32) -> Option<Body> {
    Some(match tag {
        1 => Body::Ping(Default::default()),
        2 => Body::Ack(Default::default()),
        3 => Body::PingReq(Default::default()),
        4 => Body::Nack(Default::default()),
        6 => Body::Suspect(Default::default()),
        7 => Body::Dead(Default::default()),
        8 => Body::Leave(Default::default()),
        9 => Body::Broadcast(Default::default()),
        10 => Body::SyncDigest(Default::default()),
        11 => Body::SyncWant(Default::default()),
        _ => return None,
    })
}

/// Merges `buf` into `body`: by hand for the bodies made of scalars (the values cast
/// as prost casts them: `as u32`, `as i32`, `!= 0`), with prost's generated code for
/// the rest.
fn merge_owned(body: &mut Body, buf: &[u8]) -> Result<(), Malformed> {
    const V: bool = false;
    const F: bool = true;
    match body {
        Body::Ping(m) => {
            let mut v = [u64::from(m.seq), m.target];
            merge_scalars(buf, &[V, F], &mut v)?;
            *m = Ping {
                seq: v[0] as u32,
                target: v[1],
            };
        }
        Body::Ack(m) => {
            let mut v = [u64::from(m.seq)];
            merge_scalars(buf, &[V], &mut v)?;
            *m = Ack { seq: v[0] as u32 };
        }
        Body::Nack(m) => {
            let mut v = [u64::from(m.seq), u64::from(m.refused)];
            merge_scalars(buf, &[V, V], &mut v)?;
            *m = Nack {
                seq: v[0] as u32,
                refused: v[1] != 0,
            };
        }
        Body::Suspect(m) => {
            let mut v = [m.member, m.incarnation, m.from, i64::from(m.cause) as u64];
            merge_scalars(buf, &[F, V, F, V], &mut v)?;
            *m = Suspect {
                member: v[0],
                incarnation: v[1],
                from: v[2],
                cause: v[3] as i32,
            };
        }
        Body::Dead(m) => {
            let mut v = [m.member, m.incarnation, m.from, i64::from(m.cause) as u64];
            merge_scalars(buf, &[F, V, F, V], &mut v)?;
            *m = Dead {
                member: v[0],
                incarnation: v[1],
                from: v[2],
                cause: v[3] as i32,
            };
        }
        Body::Leave(m) => {
            let mut v = [m.member, m.incarnation];
            merge_scalars(buf, &[F, V], &mut v)?;
            *m = Leave {
                member: v[0],
                incarnation: v[1],
            };
        }
        Body::PingReq(m) => m.merge(buf)?,
        Body::Alive(m) => m.merge(buf)?,
        Body::Broadcast(m) => m.merge(buf)?,
        Body::SyncDigest(m) => m.merge(buf)?,
        Body::SyncWant(m) => m.merge(buf)?,
    }
    Ok(())
}

/// The oneof field number of `body`.
fn body_tag(body: &Body) -> u32 {
    match body {
        Body::Ping(_) => 1,
        Body::Ack(_) => 2,
        Body::PingReq(_) => 3,
        Body::Nack(_) => 4,
        Body::Alive(_) => 5,
        Body::Suspect(_) => 6,
        Body::Dead(_) => 7,
        Body::Leave(_) => 8,
        Body::Broadcast(_) => 9,
        Body::SyncDigest(_) => 10,
        Body::SyncWant(_) => 11,
    }
}

/// Reads one `Message`: its oneof body, `None` if it has none. As in prost, a variant
/// seen again merges into the one held, and another variant replaces it.
fn read_message(mut buf: &[u8]) -> Result<Option<BodyRef<'_>>, Malformed> {
    let mut body: Option<BodyRef<'_>> = None;
    while !buf.is_empty() {
        let (tag, wire) = key(&mut buf)?;
        let v = value(&mut buf, tag, wire)?;
        if !(1..=11).contains(&tag) {
            continue;
        }
        let Value::Len(v) = v else {
            return Err(Malformed);
        };
        if tag == 5 {
            let mut alive = match body {
                Some(BodyRef::Alive(a)) => a,
                _ => AliveRef::default(),
            };
            merge_alive(&mut alive, v)?;
            body = Some(BodyRef::Alive(alive));
        } else {
            let same = matches!(&body, Some(BodyRef::Owned(b)) if body_tag(b) == tag);
            if !same {
                body = empty_body(tag).map(BodyRef::Owned);
            }
            if let Some(BodyRef::Owned(b)) = &mut body {
                merge_owned(b, v)?;
            }
        }
    }
    Ok(body)
}

/// Reads and checks a datagram, in one pass over it: the checks and errors of
/// `decode_packet`'s prost version, with its precedence (empty; size; a top level that
/// is not even a sequence of fields; more than `max_messages` messages; any other
/// malformation; version; sealed; then the first message breaking an invariant). Never
/// panics; allocates only for the rare bodies that carry bytes or lists.
pub(crate) fn read_packet<'a>(
    buf: &'a [u8],
    limits: &DecodeLimits,
) -> Result<PacketRef<'a>, DecodeError> {
    if buf.is_empty() {
        return Err(DecodeError::Empty);
    }
    if buf.len() > limits.max_packet_size {
        return Err(DecodeError::TooLarge {
            len: buf.len(),
            max: limits.max_packet_size,
        });
    }
    let mut p = PacketRef {
        version: 0,
        cluster: &[],
        sender: 0,
        incarnation: 0,
        key_id: 0,
        sync_entries: 0,
        token: 0,
        messages: 0,
        first: None,
        after_first: &[],
    };
    let mut sealed = false;
    // Malformations found inside fields: they lose to too many messages, which the
    // prost version counted before parsing anything.
    let mut malformed = false;
    // The first message breaking an invariant, reported last.
    let mut invalid: Option<DecodeError> = None;
    let mut rest = buf;
    while !rest.is_empty() {
        // The top level must be a sequence of fields of wire types 0, 1, 2 and 5 (what
        // the prost version's count of messages walked); anything else ends here.
        let raw = varint(&mut rest).map_err(|_| DecodeError::Malformed)?;
        let wire = (raw & 7) as u8;
        if !matches!(wire, VARINT | FIXED64 | LEN | FIXED32) {
            return Err(DecodeError::Malformed);
        }
        let tag = raw >> 3;
        let v = value(&mut rest, 0, wire).map_err(|_| DecodeError::Malformed)?;
        if raw > u64::from(u32::MAX) || tag == 0 {
            malformed = true;
            continue;
        }
        match (tag, v) {
            (1, Value::Varint(x)) => p.version = x as u32,
            (2, Value::Len(x)) => p.cluster = x,
            (3, Value::Fixed64(x)) => p.sender = x,
            (4, Value::Varint(x)) => p.incarnation = x,
            (5, Value::Len(x)) => {
                p.messages += 1;
                if p.messages > limits.max_messages {
                    // Refused whatever the rest holds (too many messages is reported
                    // before any other malformation): read no more bodies.
                    continue;
                }
                match read_message(x) {
                    Ok(body) => {
                        if invalid.is_none()
                            && let Err(e) = check_body_ref(body.as_ref(), limits)
                        {
                            invalid = Some(e);
                        }
                        if p.messages == 1 {
                            p.first = body;
                            p.after_first = rest;
                        }
                    }
                    Err(Malformed) => malformed = true,
                }
            }
            (6, Value::Len(x)) => sealed = !x.is_empty(),
            (7, Value::Varint(x)) => p.key_id = x as u32,
            (8, Value::Varint(x)) => p.sync_entries = x as u32,
            // The sender's refusal token: only the sender reads it, from an ICMP quote.
            (9, Value::Fixed32(x)) => p.token = x,
            (1..=9, _) => malformed = true,
            _ => {}
        }
    }
    if p.messages > limits.max_messages {
        return Err(DecodeError::TooManyMessages {
            count: p.messages,
            max: limits.max_messages,
        });
    }
    if malformed {
        return Err(DecodeError::Malformed);
    }
    if p.version != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(p.version));
    }
    if sealed {
        return Err(DecodeError::Sealed);
    }
    match invalid {
        Some(e) => Err(e),
        None => Ok(p),
    }
}

/// `validate_body` for a body as read here.
fn check_body_ref(body: Option<&BodyRef<'_>>, limits: &DecodeLimits) -> Result<(), DecodeError> {
    match body {
        Some(BodyRef::Alive(a)) => super::decode_addr(a.addr).map(|_| ()),
        Some(BodyRef::Owned(b)) => validate_body(Some(b), limits),
        None => validate_body(None, limits),
    }
}

impl<'a> PacketRef<'a> {
    /// The messages, in order. Every one was read and checked by `read_packet`, so
    /// none is skipped here; the first comes from that pass, the rest are read again.
    pub fn bodies(self) -> impl Iterator<Item = BodyRef<'a>> {
        let mut rest = self.after_first;
        let mut first = self.first;
        std::iter::from_fn(move || {
            if let Some(body) = first.take() {
                return Some(body);
            }
            while !rest.is_empty() {
                let (tag, wire) = key(&mut rest).ok()?;
                if let (5, Value::Len(x)) = (tag, value(&mut rest, tag, wire).ok()?)
                    && let Ok(Some(body)) = read_message(x)
                {
                    return Some(body);
                }
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeLimits, decode_packet, decode_packet_prost, encode_addr};
    use std::net::SocketAddr;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_packet_size: 1400,
        max_messages: 16,
        max_digest_entries: 16,
    };

    fn field(out: &mut Vec<u8>, key: u8, value: &[u8]) {
        out.push(key);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }

    /// A packet of version 1 whose one message is `message`.
    fn packet(message: &[u8]) -> Vec<u8> {
        let mut p = vec![0x08, 0x01];
        field(&mut p, 0x2a, message);
        p
    }

    fn addr() -> Vec<u8> {
        encode_addr(SocketAddr::from(([10, 0, 0, 1], 7946))).to_vec()
    }

    /// The reader and prost agree on `buf`, and it decodes.
    fn agree(buf: &[u8]) -> super::super::Packet {
        let ours = decode_packet(buf, &LIMITS);
        assert_eq!(ours, decode_packet_prost(buf, &LIMITS));
        ours.expect("decodes")
    }

    /// `varint` and prost's `decode_varint` agree on value, length consumed and failure.
    fn same_varint(bytes: &[u8]) {
        let (mut ours, mut theirs) = (bytes, bytes);
        let a = super::varint(&mut ours).ok();
        let b = prost::encoding::decode_varint(&mut theirs).ok();
        assert_eq!(a, b, "{bytes:02x?}");
        if a.is_some() {
            assert_eq!(ours.len(), theirs.len(), "{bytes:02x?}");
        }
    }

    #[test]
    fn varints_read_as_prost_reads_them() {
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0x00], vec![0x7f], vec![0x80]];
        for last in [0x00, 0x01, 0x02, 0x7f, 0x80] {
            for len in 1..=11 {
                let mut v = vec![0xff; len];
                v.push(last);
                cases.push(v.clone());
                v.push(0x05);
                cases.push(v);
            }
        }
        cases.push([vec![0x80; 9], vec![0x00]].concat());
        cases.push([vec![0x80; 10], vec![0x00]].concat());
        for c in &cases {
            same_varint(c);
        }
    }

    proptest::proptest! {
        #[test]
        fn varints_agree_with_prost_on_any_bytes(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![3 => 0x80u8..=0xff, 1 => 0u8..0x80], 0..13)
        ) {
            same_varint(&bytes);
        }
    }

    #[test]
    fn a_field_given_twice_takes_the_last_value() {
        let mut alive = Vec::new();
        field(&mut alive, 0x1a, b"first");
        field(&mut alive, 0x22, &addr());
        field(&mut alive, 0x1a, b"second");
        let mut message = Vec::new();
        field(&mut message, 0x2a, &alive);
        let p = agree(&packet(&message));
        let Some(super::Body::Alive(a)) = &p.messages[0].body else {
            panic!("an Alive");
        };
        assert_eq!(&a.name[..], b"second");
    }

    #[test]
    fn a_variant_given_twice_merges_and_another_replaces() {
        // Alive { name } then Alive { addr, metadata }: one Alive with all three.
        let (mut a1, mut a2) = (Vec::new(), Vec::new());
        field(&mut a1, 0x1a, b"node-1");
        field(&mut a2, 0x22, &addr());
        field(&mut a2, 0x2a, b"zone=a");
        let mut message = Vec::new();
        field(&mut message, 0x2a, &a1);
        field(&mut message, 0x2a, &a2);
        let p = agree(&packet(&message));
        let Some(super::Body::Alive(a)) = &p.messages[0].body else {
            panic!("an Alive");
        };
        assert_eq!(
            (&a.name[..], &a.metadata[..]),
            (&b"node-1"[..], &b"zone=a"[..])
        );
        // Alive, then an Ack, then an Alive: the last Alive alone, from its defaults.
        let mut message = Vec::new();
        field(&mut message, 0x2a, &a1);
        field(&mut message, 0x12, &[0x08, 0x07]);
        field(&mut message, 0x2a, &a2);
        let p = agree(&packet(&message));
        let Some(super::Body::Alive(a)) = &p.messages[0].body else {
            panic!("an Alive");
        };
        assert!(a.name.is_empty());
        // Two acks merge; the later seq wins.
        let mut message = Vec::new();
        field(&mut message, 0x12, &[0x08, 0x07]);
        field(&mut message, 0x12, &[0x08, 0x09]);
        agree(&packet(&message));
    }

    #[test]
    fn a_known_field_of_the_wrong_wire_type_is_malformed() {
        // Alive.member as a varint instead of a fixed64.
        let mut alive = vec![0x08, 0x05];
        field(&mut alive, 0x22, &addr());
        let mut message = Vec::new();
        field(&mut message, 0x2a, &alive);
        let buf = packet(&message);
        assert_eq!(
            decode_packet(&buf, &LIMITS),
            decode_packet_prost(&buf, &LIMITS)
        );
        assert!(decode_packet(&buf, &LIMITS).is_err());
    }
}
