//! The UDP socket: configured with socket2, then handed to tokio.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::warn;

/// Binds a non-blocking UDP socket at `bind` and, if asked, a receive buffer of `recv_buffer` bytes
/// (a deep buffer holds the datagrams that queue up while the process is stalled;
/// the kernel caps it at `net.core.rmem_max`). IPv4 and IPv6 addresses both work; an
/// IPv6 socket keeps the system's dual-stack default.
///
/// Must be called within a tokio runtime.
pub(crate) fn bind(bind: SocketAddr, recv_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    // No SO_REUSEADDR: UDP has no TIME_WAIT, so a restarted process rebinds its port at
    // once without it, and with it Linux hands a port-0 bind a port another such socket
    // holds (3-6 of 500 nodes on 127.0.0.1:0 shared a port, and the join never
    // converged) and lets a second bind to a taken port succeed, the socket bound last
    // then receiving everything sent there.
    if let Some(size) = recv_buffer {
        // Best effort: a smaller buffer than asked is not a reason to refuse to start.
        if let Err(e) = socket.set_recv_buffer_size(size) {
            warn!(size, error = %e, "could not set the UDP receive buffer size");
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&bind.into())?;
    UdpSocket::from_std(socket.into())
}
