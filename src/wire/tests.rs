//! Unit tests of the codec: limits, invariants, addresses, versions.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

const LIMITS: DecodeLimits = DecodeLimits {
    max_packet_size: 1400,
    max_messages: 4,
    max_digest_entries: 3,
};

fn packet(messages: Vec<Body>) -> Packet {
    Packet {
        version: PROTOCOL_VERSION,
        cluster: Bytes::from_static(b"prod-a"),
        sender: 0x1234_5678_9abc_def0,
        incarnation: 7,
        messages: messages
            .into_iter()
            .map(|body| Message { body: Some(body) })
            .collect(),
        sealed: Bytes::new(),
        key_id: 0,
        sync_entries: 0,
        token: 0,
    }
}

fn alive(addr: Bytes) -> Body {
    Body::Alive(Alive {
        member: 9,
        incarnation: 3,
        name: Bytes::from_static(b"node-9"),
        addr,
        metadata: Bytes::from_static(b"zone=a"),
    })
}

fn digest(lo: u64, hi: u64, members: Vec<u64>, versions: Vec<u64>) -> Body {
    Body::SyncDigest(SyncDigest {
        lo,
        hi,
        members,
        versions,
        last: true,
    })
}

fn v4() -> Bytes {
    encode_addr(SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 7946)))
}

/// Encodes without any limit checks, so tests can craft packets the decoder refuses.
fn encode(p: &Packet) -> Vec<u8> {
    p.encode_to_vec()
}

fn decode(p: &Packet) -> Result<Packet, DecodeError> {
    decode_packet(&encode(p), &LIMITS)
}

#[test]
fn valid_packet_round_trips() {
    let p = packet(vec![
        Body::Ping(Ping { seq: 1, target: 2 }),
        alive(v4()),
        digest(
            1,
            10,
            vec![1, 5],
            vec![pack_version(1, 0), pack_version(2, 3)],
        ),
        Body::SyncWant(SyncWant {
            members: vec![5],
            last: true,
        }),
    ]);
    assert_eq!(decode(&p), Ok(p));
}

#[test]
fn empty() {
    assert_eq!(decode_packet(&[], &LIMITS), Err(DecodeError::Empty));
}

#[test]
fn too_large_is_checked_before_parsing() {
    // Garbage that would be Malformed if it were parsed.
    let buf = vec![0xff; LIMITS.max_packet_size + 1];
    assert_eq!(
        decode_packet(&buf, &LIMITS),
        Err(DecodeError::TooLarge {
            len: 1401,
            max: 1400
        })
    );
    // Exactly at the limit is fine as far as size goes.
    let at_limit = vec![0xff; LIMITS.max_packet_size];
    assert_eq!(
        decode_packet(&at_limit, &LIMITS),
        Err(DecodeError::Malformed)
    );
}

#[test]
fn malformed() {
    // A truncated varint, a length prefix past the end, and a reserved wire type.
    for buf in [&[0x08][..], &[0x12, 0x05, b'a'], &[0x0f]] {
        assert_eq!(decode_packet(buf, &LIMITS), Err(DecodeError::Malformed));
    }
}

#[test]
fn unsupported_version() {
    let mut p = packet(vec![]);
    p.version = 2;
    assert_eq!(decode(&p), Err(DecodeError::UnsupportedVersion(2)));
    // An absent version field decodes as 0.
    assert_eq!(
        decode_packet(&[0x19, 1, 0, 0, 0, 0, 0, 0, 0], &LIMITS),
        Err(DecodeError::UnsupportedVersion(0))
    );
}

#[test]
fn sealed() {
    let mut p = packet(vec![]);
    p.sealed = Bytes::from_static(b"ciphertext");
    p.key_id = 1;
    assert_eq!(decode(&p), Err(DecodeError::Sealed));
}

#[test]
fn too_many_messages() {
    let p = packet(vec![Body::Ack(Ack { seq: 1 }); LIMITS.max_messages + 1]);
    assert_eq!(
        decode(&p),
        Err(DecodeError::TooManyMessages { count: 5, max: 4 })
    );
    let p = packet(vec![Body::Ack(Ack { seq: 1 }); LIMITS.max_messages]);
    assert!(decode(&p).is_ok());
}

#[test]
fn empty_message() {
    let mut p = packet(vec![Body::Nack(Nack {
        seq: 1,
        refused: false,
    })]);
    p.messages.push(Message { body: None });
    assert_eq!(decode(&p), Err(DecodeError::EmptyMessage));
    // A message kind from the future (oneof tag 15) looks the same to this build.
    let mut buf = encode(&packet(vec![]));
    buf.extend_from_slice(&[0x2a, 0x02, 0x7a, 0x00]);
    assert_eq!(decode_packet(&buf, &LIMITS), Err(DecodeError::EmptyMessage));
}

#[test]
fn bad_address() {
    for addr in [
        &b""[..],
        b"\x0a\x00\x00\x01\x1f",
        b"\x0a\x00\x00\x01\x1f\x0a\x00",
    ] {
        let bad = Bytes::copy_from_slice(addr);
        assert_eq!(
            decode(&packet(vec![alive(bad.clone())])),
            Err(DecodeError::BadAddress)
        );
        let req = Body::PingReq(PingReq {
            seq: 1,
            target: 2,
            target_addr: bad,
        });
        assert_eq!(decode(&packet(vec![req])), Err(DecodeError::BadAddress));
    }
}

#[test]
fn digest_mismatch() {
    let lengths = digest(0, 10, vec![1, 2], vec![4]);
    assert_eq!(
        decode(&packet(vec![lengths])),
        Err(DecodeError::DigestMismatch)
    );
    let inverted = digest(10, 9, vec![], vec![]);
    assert_eq!(
        decode(&packet(vec![inverted])),
        Err(DecodeError::DigestMismatch)
    );
    // A single-id range is fine.
    assert!(decode(&packet(vec![digest(9, 9, vec![9], vec![4])])).is_ok());
}

#[test]
fn too_many_digest_entries() {
    let n = LIMITS.max_digest_entries + 1;
    let members: Vec<u64> = (0..4).collect();
    let big = digest(0, 10, members.clone(), vec![0; n]);
    let expected = Err(DecodeError::TooManyDigestEntries { count: 4, max: 3 });
    assert_eq!(decode(&packet(vec![big])), expected);
    let want = Body::SyncWant(SyncWant {
        members,
        last: false,
    });
    assert_eq!(decode(&packet(vec![want])), expected);
}

#[test]
fn first_offending_message_decides() {
    let p = packet(vec![alive(Bytes::new()), digest(1, 0, vec![], vec![])]);
    assert_eq!(decode(&p), Err(DecodeError::BadAddress));
}

#[test]
fn kinds_are_densely_indexed_and_named() {
    for (i, kind) in DecodeErrorKind::ALL.iter().enumerate() {
        assert_eq!(kind.index(), i);
        let name = kind.as_str();
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{name}"
        );
    }
    let errors = [
        DecodeError::Empty,
        DecodeError::TooLarge { len: 2, max: 1 },
        DecodeError::Malformed,
        DecodeError::UnsupportedVersion(0),
        DecodeError::TooManyMessages { count: 2, max: 1 },
        DecodeError::EmptyMessage,
        DecodeError::BadAddress,
        DecodeError::DigestMismatch,
        DecodeError::TooManyDigestEntries { count: 2, max: 1 },
        DecodeError::Sealed,
    ];
    let kinds: Vec<_> = errors.iter().map(DecodeError::kind).collect();
    assert_eq!(kinds, DecodeErrorKind::ALL);
    for e in &errors {
        let msg = e.to_string();
        assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
    }
}

#[test]
fn address_round_trip() {
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 168, 1, 20), 7946));
    let b = encode_addr(v4);
    assert_eq!(&b[..], &[192, 168, 1, 20, 0x1f, 0x0a]);
    assert_eq!(decode_addr(&b), Ok(v4));

    let ip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let v6 = SocketAddr::from((ip6, 65535));
    let b = encode_addr(v6);
    assert_eq!(b.len(), 18);
    assert_eq!(&b[16..], &[0xff, 0xff]);
    assert_eq!(decode_addr(&b), Ok(v6));

    // Scope id and flow info stay behind.
    let scoped = SocketAddr::V6(SocketAddrV6::new(ip6, 1, 7, 3));
    assert_eq!(
        decode_addr(&encode_addr(scoped)),
        Ok(SocketAddr::from((ip6, 1)))
    );
}

#[test]
fn address_lengths_other_than_6_or_18_are_bad() {
    let bytes = [0u8; 32];
    for len in 0..=bytes.len() {
        let got = decode_addr(bytes.get(..len).unwrap_or_default());
        assert_eq!(got.is_ok(), len == 6 || len == 18, "len {len}");
    }
}

#[test]
fn message_len_is_exact() {
    let bodies = vec![
        Body::Ping(Ping {
            seq: u32::MAX,
            target: u64::MAX,
        }),
        Body::Ack(Ack { seq: 0 }),
        Body::Nack(Nack {
            seq: 300,
            refused: true,
        }),
        alive(encode_addr(SocketAddr::from((Ipv6Addr::LOCALHOST, 1)))),
        Body::Suspect(Suspect {
            member: 1,
            incarnation: 1 << 40,
            from: 2,
            cause: Cause::Refused as i32,
        }),
        Body::Dead(Dead {
            member: 1,
            incarnation: 0,
            from: 2,
            cause: -1,
        }),
        Body::Leave(Leave {
            member: 3,
            incarnation: 4,
        }),
        Body::Broadcast(UserBroadcast {
            origin: 1,
            seq: 2,
            // Long enough for a two-byte length prefix.
            payload: Bytes::from(vec![7u8; 300]),
        }),
        digest(0, u64::MAX, (0..40).collect(), vec![u64::MAX; 40]),
        Body::SyncWant(SyncWant {
            members: vec![],
            last: false,
        }),
    ];
    let p = packet(bodies);
    let envelope = Packet {
        messages: vec![],
        ..p.clone()
    };
    let sum: usize = p.messages.iter().map(message_len).sum();
    assert_eq!(envelope.encoded_len() + sum, p.encoded_len());
    // And the same for each message on its own.
    for m in &p.messages {
        let single = Packet {
            messages: vec![m.clone()],
            ..envelope.clone()
        };
        assert_eq!(
            envelope.encoded_len() + message_len(m),
            single.encoded_len()
        );
    }
}

#[test]
fn encode_packet_reports_size_and_refuses_short_buffers() {
    let p = packet(vec![alive(v4())]);
    let len = p.encoded_len();
    let mut buf = [0u8; 1400];
    assert_eq!(encode_packet(&p, &mut buf), Some(len));
    assert_eq!(buf.get(..len), Some(&encode(&p)[..]));
    let mut exact = vec![0u8; len];
    assert_eq!(encode_packet(&p, &mut exact), Some(len));
    let mut short = vec![0u8; len - 1];
    assert_eq!(encode_packet(&p, &mut short), None);
}

#[test]
fn ping_packet_size() {
    // The hot-path datagram: a ping with a 6-byte cluster label, small seq and
    // incarnation. Pinned so a schema change that bloats it is noticed.
    let p = packet(vec![Body::Ping(Ping {
        seq: 1,
        target: u64::MAX,
    })]);
    assert_eq!(p.cluster.len(), 6);
    assert_eq!(p.encoded_len(), 36);
}

#[test]
fn version_packing() {
    assert_eq!(pack_version(0, 0), 0);
    assert_eq!(pack_version(5, 1), 21);
    assert_eq!(unpack_version(21), (5, 1));
    for inc in [0, 1, 1000, MAX_VERSION_INCARNATION] {
        for rank in 0..=3 {
            assert_eq!(unpack_version(pack_version(inc, rank)), (inc, rank));
        }
    }
    // Saturation keeps the order: a larger incarnation never packs smaller.
    assert_eq!(
        pack_version(u64::MAX, 2),
        pack_version(MAX_VERSION_INCARNATION, 2)
    );
    assert!(pack_version(u64::MAX, 0) > pack_version(MAX_VERSION_INCARNATION - 1, 3));
    // States supersede in rank order at equal incarnation, and any higher
    // incarnation supersedes them all.
    assert!(pack_version(4, 0) < pack_version(4, 1));
    assert!(pack_version(4, 3) < pack_version(5, 0));
    assert_eq!(unpack_version(u64::MAX), (MAX_VERSION_INCARNATION, 3));
}
