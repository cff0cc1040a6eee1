//! Datagrams recorded from an earlier release (`tests/data/*/datagrams.txt`, one per
//! line: `nanoseconds from to hex`), read by `wire_compat` and `encryption`.

use std::net::SocketAddr;

use rumor::Time;

/// One recorded datagram.
pub struct Datagram {
    pub at: Time,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Parses a recording (the text of a `datagrams.txt`).
pub fn parse(text: &str) -> Vec<Datagram> {
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 4, "a recorded line: {line}");
            let hex = f[3];
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            Datagram {
                at: Time::from_nanos(f[0].parse().expect("time")),
                from: f[1].parse().expect("from"),
                to: f[2].parse().expect("to"),
                bytes,
            }
        })
        .collect()
}
