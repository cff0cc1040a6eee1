//! Property tests of the codec, and the strategies (`valid_packet`) the reader and
//! writer tests share.

use super::*;
use proptest::prelude::*;
use proptest::sample::Index;

/// Generous enough that every generated valid packet passes.
const LIMITS: DecodeLimits = DecodeLimits {
    max_packet_size: 65_507,
    max_messages: 64,
    max_digest_entries: 64,
};

/// A byte string of fewer than `max` bytes.
fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// An encoded IPv4 or IPv6 socket address.
fn addr() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        any::<([u8; 4], u16)>().prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        any::<([u8; 16], u16)>().prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
    .prop_map(encode_addr)
}

/// A `Cause` as stored in a message: an open enum, any `i32`.
fn cause() -> impl Strategy<Value = i32> {
    // Mostly known causes, sometimes values from a future schema (kept as-is).
    prop_oneof![4 => 0..4i32, 1 => any::<i32>()]
}

/// A digest the decoder accepts: parallel lists within the limit, `lo <= hi`.
fn digest() -> impl Strategy<Value = SyncDigest> {
    (
        any::<(u64, u64)>(),
        proptest::collection::vec(any::<(u64, u64)>(), 0..LIMITS.max_digest_entries),
        any::<bool>(),
    )
        .prop_map(|((a, b), entries, last)| {
            let (members, versions) = entries.into_iter().unzip();
            SyncDigest {
                lo: a.min(b),
                hi: a.max(b),
                members,
                versions,
                last,
            }
        })
}

/// A valid body of every kind, with arbitrary field values.
fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        any::<(u32, u64)>().prop_map(|(seq, target)| Body::Ping(Ping { seq, target })),
        any::<u32>().prop_map(|seq| Body::Ack(Ack { seq })),
        (any::<(u32, u64)>(), addr()).prop_map(|((seq, target), target_addr)| {
            Body::PingReq(PingReq {
                seq,
                target,
                target_addr,
            })
        }),
        (any::<u32>(), any::<bool>()).prop_map(|(seq, refused)| Body::Nack(Nack { seq, refused })),
        (any::<(u64, u64)>(), bytes(24), addr(), bytes(64)).prop_map(
            |((member, incarnation), name, addr, metadata)| {
                Body::Alive(Alive {
                    member,
                    incarnation,
                    name,
                    addr,
                    metadata,
                })
            }
        ),
        (any::<(u64, u64, u64)>(), cause()).prop_map(|((member, incarnation, from), cause)| {
            Body::Suspect(Suspect {
                member,
                incarnation,
                from,
                cause,
            })
        }),
        (any::<(u64, u64, u64)>(), cause()).prop_map(|((member, incarnation, from), cause)| {
            Body::Dead(Dead {
                member,
                incarnation,
                from,
                cause,
            })
        }),
        any::<(u64, u64)>().prop_map(|(member, incarnation)| Body::Leave(Leave {
            member,
            incarnation
        })),
        (any::<(u64, u64)>(), bytes(256)).prop_map(|((origin, seq), payload)| {
            Body::Broadcast(UserBroadcast {
                origin,
                seq,
                payload,
            })
        }),
        digest().prop_map(Body::SyncDigest),
        (
            proptest::collection::vec(any::<u64>(), 0..LIMITS.max_digest_entries),
            any::<bool>()
        )
            .prop_map(|(members, last)| Body::SyncWant(SyncWant { members, last })),
    ]
}

/// A packet `decode_packet` accepts under `LIMITS`.
pub(super) fn valid_packet() -> impl Strategy<Value = Packet> {
    (
        bytes(16),
        any::<(u64, u64, u32)>(),
        proptest::collection::vec(body(), 0..16),
    )
        .prop_map(|(cluster, (sender, incarnation, key_id), bodies)| Packet {
            version: PROTOCOL_VERSION,
            cluster,
            sender,
            incarnation,
            messages: bodies
                .into_iter()
                .map(|body| Message { body: Some(body) })
                .collect(),
            sealed: Bytes::new(),
            key_id,
            sync_entries: key_id % 8,
            // Half the packets carry a token, as probes do.
            token: if sender % 2 == 0 {
                0
            } else {
                incarnation as u32 | 1
            },
        })
}

/// Arbitrary bytes, half of them behind a valid version field so that the fuzzing
/// gets past the version check.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..2000),
    )
        .prop_map(|(versioned, mut tail)| {
            if versioned {
                tail.splice(0..0, [0x08, 0x01]);
                tail.truncate(2000);
            }
            tail
        })
}

/// Appends `v` as a varint, padded with up to `pad` redundant continuation bytes:
/// overlong but legal encodings (at most 10 bytes in all), which a decoder must
/// accept and an encoder never writes.
fn put_varint(out: &mut Vec<u8>, mut v: u64, pad: usize) {
    let natural = (64 - v.leading_zeros() as usize).div_ceil(7).max(1);
    let mut pad = pad.min(10 - natural);
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 && pad == 0 {
            out.push(low);
            return;
        }
        if v == 0 {
            pad -= 1;
        }
        out.push(low | 0x80);
    }
}

/// Wire types of the envelope's fields, by tag - 1 (0 varint, 1 fixed64, 2
/// length-delimited).
const PACKET_SHAPE: &[u64] = &[0, 2, 1, 0, 2, 2, 0];

/// Wire types of each body's fields, by oneof tag - 1, then field tag - 1; repeated
/// fields as packed (the soup also writes them unpacked, by drawing a wire type at
/// random).
const BODY_SHAPES: [&[u64]; 11] = [
    &[0, 1],          // Ping
    &[0],             // Ack
    &[0, 1, 2],       // PingReq
    &[0],             // Nack
    &[1, 0, 2, 2, 2], // Alive
    &[1, 0, 1, 0],    // Suspect
    &[1, 0, 1, 0],    // Dead
    &[1, 0],          // Leave
    &[1, 0, 2],       // UserBroadcast
    &[1, 1, 2, 2, 0], // SyncDigest
    &[2, 0],          // SyncWant
];

/// Appends one field: its key, then `value` or `payload` as `wire_type` requires.
fn put_field(out: &mut Vec<u8>, tag: u64, wire_type: u64, value: u64, pad: usize, payload: &[u8]) {
    put_varint(out, tag << 3 | wire_type, 0);
    match wire_type {
        0 => put_varint(out, value, pad),
        1 => out.extend_from_slice(&value.to_le_bytes()),
        2 => {
            put_varint(out, payload.len() as u64, pad);
            out.extend_from_slice(payload);
        }
        _ => out.extend_from_slice(&(value as u32).to_le_bytes()),
    }
}

/// Up to `max` fields of a message whose fields have the wire types in `shape`: each
/// has a known tag or the first unknown one, and usually the schema's wire type but
/// sometimes any of the four live ones (which for a repeated field is the other
/// legal encoding, and otherwise makes the soup malformed).
fn shaped_fields(
    shape: &'static [u64],
    payload: impl Strategy<Value = Vec<u8>>,
    max: usize,
) -> impl Strategy<Value = Vec<u8>> {
    let small_or_any = prop_oneof![3 => 0..4u64, 1 => any::<u64>()];
    let any_wire_type = prop_oneof![Just(0u64), Just(1), Just(2), Just(5)];
    let one = (
        0..=shape.len(),
        proptest::bool::weighted(0.97),
        any_wire_type,
        small_or_any,
        0..3usize,
        payload,
    );
    proptest::collection::vec(one, 0..=max).prop_map(move |fields| {
        let mut out = Vec::new();
        for (i, schema_type, other_type, value, pad, payload) in fields {
            let wire_type = match shape.get(i) {
                Some(&t) if schema_type => t,
                _ => other_type,
            };
            put_field(&mut out, i as u64 + 1, wire_type, value, pad, &payload);
        }
        out
    })
}

/// Nearly well-formed packets: the schema's shape (envelope, messages, bodies) with
/// random fields, values and occasionally wrong wire types at every level. Unlike
/// uniform noise this often decodes, and it brings the non-canonical encodings that
/// re-encoding normalises: duplicate scalars, repeated fields split or unpacked,
/// overlong varints, unknown fields, two alternatives of one oneof.
/// What the soup never draws: a group (nested, unterminated), a stray end-group,
/// or a key of wire type 6 or 7, at the top level, at the `Message` level, or inside
/// a ping or an `Alive`, under a field number that is known there or not.
fn odd_wire() -> impl Strategy<Value = Vec<u8>> {
    (
        0..4u8,
        1..14u64,
        0..4u64,
        0..4u8,
        proptest::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(kind, field, depth, level, filler)| {
            let mut g = Vec::new();
            match kind {
                0 => {
                    for d in 0..=depth {
                        put_varint(&mut g, (field + d) << 3 | 3, 0);
                    }
                    put_field(&mut g, 1, 0, 5, 0, &[]);
                    for d in (0..=depth).rev() {
                        put_varint(&mut g, (field + d) << 3 | 4, 0);
                    }
                }
                1 => {
                    put_varint(&mut g, field << 3 | 3, 0);
                    g.extend_from_slice(&filler);
                }
                2 => put_varint(&mut g, field << 3 | 4, 0),
                _ => {
                    put_varint(&mut g, field << 3 | (6 + (depth & 1)), 0);
                    g.extend_from_slice(&filler);
                }
            }
            let mut out = Vec::new();
            put_field(&mut out, 1, 0, 1, 0, &[]);
            match level {
                0 => out.extend_from_slice(&g),
                _ => {
                    let message = if level == 1 {
                        g
                    } else {
                        // Inside a ping (oneof 1) or an Alive (oneof 5).
                        let mut m = Vec::new();
                        put_field(&mut m, if level == 2 { 1 } else { 5 }, 2, 0, 0, &g);
                        m
                    };
                    put_field(&mut out, 5, 2, 0, 0, &message);
                }
            }
            out
        })
}

fn soup() -> impl Strategy<Value = Vec<u8>> {
    // Mostly empty payloads: empty is a valid message, byte string or packed list
    // wherever it lands; 6 and 18 bytes make addresses, 8 and 16 packed fixed64s.
    let leaf = prop_oneof![
        4 => Just(Vec::new()),
        1 => proptest::collection::vec(any::<u8>(), 6..=6),
        1 => proptest::collection::vec(any::<u8>(), 8..=8),
        1 => proptest::collection::vec(any::<u8>(), 16..=16),
        1 => proptest::collection::vec(any::<u8>(), 18..=18),
        2 => proptest::collection::vec(any::<u8>(), 1..24),
    ];
    // A body is a length-delimited field of `Message` under its oneof tag; tag 12
    // is unknown. One or two of them: two make a oneof set twice.
    let body = (0..BODY_SHAPES.len() + 1).prop_flat_map({
        let leaf = leaf.clone();
        move |i| {
            let shape = BODY_SHAPES.get(i).copied().unwrap_or(&[]);
            shaped_fields(shape, leaf.clone(), 4).prop_map(move |fields| {
                let mut out = Vec::new();
                put_field(&mut out, i as u64 + 1, 2, 0, 0, &fields);
                out
            })
        }
    });
    let message = proptest::collection::vec(body, 1..=2).prop_map(|b| b.concat());
    let messages_field = message.prop_map(|m| {
        let mut out = Vec::new();
        put_field(&mut out, 5, 2, 0, 0, &m);
        out
    });
    let other_field = shaped_fields(PACKET_SHAPE, leaf, 1);
    let top = prop_oneof![6 => messages_field, 1 => other_field];
    proptest::collection::vec(top, 0..8).prop_map(|fields| {
        let mut out = Vec::new();
        put_field(&mut out, 1, 0, 1, 0, &[]);
        out.extend(fields.concat());
        out
    })
}

/// `encode_packet` into a datagram-sized buffer, trimmed to what was written.
fn encode_vec(p: &Packet) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; LIMITS.max_packet_size];
    let len = encode_packet(p, &mut buf)?;
    buf.truncate(len);
    Some(buf)
}

/// Property (d): whatever decoded re-encodes to bytes that decode to the same packet.
fn assert_idempotent(decoded: &Packet) -> Result<(), TestCaseError> {
    let again = encode_vec(decoded);
    prop_assert!(again.is_some(), "a decoded packet must re-encode");
    let again = again.unwrap_or_default();
    let redecoded = decode_packet(&again, &LIMITS);
    prop_assert_eq!(redecoded.as_ref(), Ok(decoded));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) Every valid packet survives encode then decode unchanged.
    #[test]
    fn round_trip(p in valid_packet()) {
        let buf = encode_vec(&p);
        prop_assert!(buf.is_some());
        let buf = buf.unwrap_or_default();
        prop_assert_eq!(buf.len(), p.encoded_len());
        let envelope = Packet { messages: Vec::new(), ..p.clone() };
        let sum: usize = p.messages.iter().map(message_len).sum();
        prop_assert_eq!(envelope.encoded_len() + sum, buf.len());
        prop_assert_eq!(decode_packet(&buf, &LIMITS), Ok(p));
    }

    /// (b) and (d): arbitrary bytes never panic, and whatever decodes is stable.
    #[test]
    fn arbitrary_bytes(buf in prop_oneof![1 => noise(), 2 => soup()]) {
        if let Ok(p) = decode_packet(&buf, &LIMITS) {
            assert_idempotent(&p)?;
        }
    }

    /// (c) and (d): corrupting a valid packet never panics, and whatever still
    /// decodes is stable.
    #[test]
    fn corrupted_packets(
        p in valid_packet(),
        flips in proptest::collection::vec((any::<Index>(), 0..8u8), 0..4),
        cut in proptest::option::of(any::<Index>()),
    ) {
        let mut buf = encode_vec(&p).unwrap_or_default();
        // Never 0 (the version field alone takes 2 bytes), as `Index::index` needs.
        let len = p.encoded_len();
        for (at, bit) in flips {
            if let Some(byte) = buf.get_mut(at.index(len)) {
                *byte ^= 1 << bit;
            }
        }
        if let Some(cut) = cut {
            buf.truncate(cut.index(len));
        }
        if let Ok(decoded) = decode_packet(&buf, &LIMITS) {
            assert_idempotent(&decoded)?;
        }
    }

    /// The node's reader (behind `decode_packet`) agrees with prost's decode of the
    /// whole packet: the same packet, or the same error, on arbitrary bytes, field
    /// soup, valid packets and corrupted ones, under the generous limits and under
    /// tight ones (so the limit errors are compared too).
    #[test]
    fn the_reader_agrees_with_prost(
        buf in prop_oneof![
            1 => noise(),
            3 => soup(),
            1 => odd_wire(),
            2 => valid_packet().prop_map(|p| encode_vec(&p).unwrap_or_default()),
            2 => (valid_packet(), any::<Index>(), 0..8u8).prop_map(|(p, at, bit)| {
                let mut buf = encode_vec(&p).unwrap_or_default();
                let len = buf.len().max(1);
                if let Some(byte) = buf.get_mut(at.index(len)) {
                    *byte ^= 1 << bit;
                }
                buf
            }),
        ],
        tight in any::<bool>(),
    ) {
        let limits = if tight {
            DecodeLimits { max_packet_size: 600, max_messages: 4, max_digest_entries: 3 }
        } else {
            LIMITS
        };
        prop_assert_eq!(decode_packet(&buf, &limits), decode_packet_prost(&buf, &limits));
    }
}
