//! Refusals from the network: which destinations answered our datagrams with ICMP port
//! unreachable (their process is gone; see the core's `refusal` module).
//!
//! On Linux, `IP_RECVERR` / `IPV6_RECVERR` make the kernel queue each ICMP error on the
//! socket's error queue together with the destination of the datagram it answered, so a
//! refusal is attributed to a member's address. Elsewhere there is no portable way to
//! attribute an ICMP error on an unconnected UDP socket, so refusals are not reported and
//! detection falls back to silence alone (`acceptable_pause` and the phi detector).

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// Whether this platform reports refusals.
pub(crate) const SUPPORTED: bool = cfg!(target_os = "linux");

/// Asks the kernel to queue ICMP errors with their destinations. Best effort: without it
/// the node still works, by silence alone.
#[cfg(target_os = "linux")]
pub(crate) fn enable(socket: &UdpSocket) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    let v6 = socket.local_addr()?.is_ipv6();
    let r = if v6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true)
    };
    r.map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn enable(_socket: &UdpSocket) -> io::Result<()> {
    Ok(())
}

/// Bytes of a refused datagram kept from its error-queue entry: what the core checks
/// the quote against (`QUOTE_PREFIX`), with room to spare.
pub(crate) const QUOTE_KEPT: usize = 64;

/// What one entry of the error queue said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueuedError {
    /// The datagram to this address was refused: its port is closed. With the start of
    /// the refused datagram as the ICMP error quoted it (`.2` bytes of `.1`).
    Refused(SocketAddr, [u8; QUOTE_KEPT], usize),
    /// Another error (host unreachable, message too long, ...): not evidence of a
    /// crashed process, so it is only counted.
    Other,
}

/// Reads one entry of the socket's error queue without blocking: `WouldBlock` when it
/// is empty.
#[cfg(target_os = "linux")]
pub(crate) fn read_one(socket: &UdpSocket) -> io::Result<QueuedError> {
    use std::io::IoSliceMut;
    use std::net::{SocketAddrV4, SocketAddrV6};

    use nix::libc;
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd;

    // The queued entry carries (a prefix of) the datagram that failed: the quote that
    // proves the refusal answers a probe we sent. A longer one is truncated (MSG_TRUNC),
    // which is fine: only its start is checked.
    let mut payload = [0u8; QUOTE_KEPT];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let dest = msg.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| SocketAddr::V4(SocketAddrV4::from(*v4)))
            .or_else(|| {
                a.as_sockaddr_in6()
                    .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
            })
    });
    let mut refused = false;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4RecvErr(ee, _) | ControlMessageOwned::Ipv6RecvErr(ee, _) => {
                refused |= ee.ee_errno == libc::ECONNREFUSED as u32;
            }
            _ => {}
        }
    }
    let quoted = msg.bytes.min(QUOTE_KEPT);
    Ok(match (refused, dest) {
        (true, Some(d)) => QueuedError::Refused(canonical(d), payload, quoted),
        _ => QueuedError::Other,
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn read_one(_socket: &UdpSocket) -> io::Result<QueuedError> {
    Err(io::ErrorKind::WouldBlock.into())
}

/// An IPv4 peer reached through a dual-stack IPv6 socket is reported as an IPv4-mapped
/// address; members are known by their plain IPv4 address.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_plain_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:7946".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:7946".parse().unwrap());
        let v6: SocketAddr = "[::1]:7946".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
