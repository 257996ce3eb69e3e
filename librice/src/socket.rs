//! Binding the agent's UDP sockets, with receive and send buffers sized for bursts.

use std::net::SocketAddr;
use std::sync::Arc;

use librice_proto::TransportType;
use librice_proto::agent::{ComponentId, StreamId};

use crate::interfaces::InterfaceAddress;
use crate::runtime::{AsyncUdpSocket, Runtime};
use crate::send::Socket;
use crate::shared::State;

/// The receive buffer size an agent asks for on each UDP socket by default (2 MiB), set
/// with [`crate::AgentBuilder::recv_buffer_size`].
///
/// Why this much: a socket's receive buffer is what holds a burst while the reader is
/// busy, and the kernel charges each datagram at its "truesize" (the payload rounded up
/// to an allocation size, plus its bookkeeping). Measured on Linux 6.18 over loopback:
/// 832 bytes for a 100-byte datagram, 1,280 for 600 bytes, 2,304 for 1,200 bytes. A
/// burst of 1,000 datagrams of 100 to 1,200 bytes thus needs about 1.5 MiB, 2.2 MiB when
/// they are all 1,200 bytes. Linux doubles the value asked for (to make room for that
/// bookkeeping), so 2 MiB gives 4 MiB where `net.core.rmem_max` allows it: room for the
/// burst twice over. Linux's own default (`net.core.rmem_default`, usually 212,992 bytes)
/// holds about 130 such datagrams: with it, librice's burst test (`tests/tests/burst.rs`)
/// loses datagrams in most runs, up to about 700 of its 1,000. The size is only a limit:
/// the kernel takes the memory while datagrams wait.
pub const DEFAULT_RECV_BUFFER_SIZE: usize = 2 * 1024 * 1024;

/// The send buffer size an agent asks for on each UDP socket by default (1 MiB), set with
/// [`crate::AgentBuilder::send_buffer_size`].
///
/// A full send buffer does not lose data (a send waits until the socket can take it), but
/// it makes the sender wait for the network interface's queue. 1 MiB (2 MiB once Linux
/// doubles it) lets about 900 datagrams of 1,200 bytes (1,300 of 100 to 1,200 bytes)
/// wait for the interface, against about 90 with Linux's default of 212,992 bytes.
pub const DEFAULT_SEND_BUFFER_SIZE: usize = 1024 * 1024;

/// The buffer sizes the operating system granted one of a component's UDP sockets
/// ([`crate::Component::socket_buffers`]).
///
/// The sizes are what the socket reports (`SO_RCVBUF`, `SO_SNDBUF`): on Linux, twice
/// what was asked for, at most twice `net.core.rmem_max` (`wmem_max` for sending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketBuffers {
    /// The socket's local address.
    pub local: SocketAddr,
    /// The receive buffer size granted, in bytes.
    pub recv: usize,
    /// The send buffer size granted, in bytes.
    pub send: usize,
}

/// The buffer sizes to ask for (0: leave the operating system's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BufferSizes {
    pub recv: usize,
    pub send: usize,
}

impl Default for BufferSizes {
    fn default() -> Self {
        Self {
            recv: DEFAULT_RECV_BUFFER_SIZE,
            send: DEFAULT_SEND_BUFFER_SIZE,
        }
    }
}

/// Binds a non-blocking UDP socket (IPv6 sockets are IPv6-only) with the buffer sizes
/// asked for, and returns it with the sizes granted. A size the system refuses is traced
/// and the socket keeps its default: a smaller buffer is no reason to go without the
/// address.
pub(crate) fn bind_udp(
    addr: SocketAddr,
    sizes: BufferSizes,
) -> std::io::Result<(std::net::UdpSocket, SocketBuffers)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // The option is a C int: larger values are asked for as the largest int.
    let clamp = |size: usize| size.min(i32::MAX as usize);
    if sizes.recv > 0
        && let Err(e) = socket.set_recv_buffer_size(clamp(sizes.recv))
    {
        tracing::debug!(%addr, size = sizes.recv, error = %e, "receive buffer size refused");
    }
    if sizes.send > 0
        && let Err(e) = socket.set_send_buffer_size(clamp(sizes.send))
    {
        tracing::debug!(%addr, size = sizes.send, error = %e, "send buffer size refused");
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?.as_socket().unwrap_or(addr);
    let granted = SocketBuffers {
        local,
        recv: socket.recv_buffer_size()?,
        send: socket.send_buffer_size()?,
    };
    if granted.recv < sizes.recv || granted.send < sizes.send {
        // Linux grants twice the size asked for, up to twice net.core.rmem_max / wmem_max.
        tracing::debug!(
            %local,
            recv = granted.recv,
            send = granted.send,
            asked_recv = sizes.recv,
            asked_send = sizes.send,
            "socket buffers capped by the system (net.core.rmem_max / wmem_max on Linux)"
        );
    } else {
        tracing::debug!(%local, recv = granted.recv, send = granted.send, "UDP socket bound");
    }
    Ok((socket.into(), granted))
}

/// What host sockets an agent binds on an address: for which transports, and the UDP
/// sockets' buffer sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostSockets {
    pub transports: Transports,
    pub buffers: BufferSizes,
}

/// The transports of an agent's host candidates ([`crate::AgentBuilder::transports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transports {
    /// UDP sockets only (the default).
    #[default]
    Udp,
    /// ICE-TCP listeners only (RFC 6544).
    Tcp,
    /// Both.
    Both,
}

impl Transports {
    /// True when UDP sockets are bound.
    pub fn udp(self) -> bool {
        matches!(self, Self::Udp | Self::Both)
    }

    /// True when ICE-TCP listeners are bound.
    pub fn tcp(self) -> bool {
        matches!(self, Self::Tcp | Self::Both)
    }
}

/// How many connections an ICE-TCP listener's queue holds before they are accepted.
const TCP_BACKLOG: i32 = 64;

/// Binds and registers an ICE-TCP listener for each (component, address) of `wanted`, for
/// stream `sid`, and starts accepting on each. An address that cannot be listened on is
/// skipped (traced).
pub(crate) fn listen_tcp<'a>(
    shared: &Arc<crate::shared::Shared>,
    sid: StreamId,
    wanted: impl IntoIterator<Item = (ComponentId, &'a InterfaceAddress)>,
) {
    for (component, addr) in wanted {
        let bind = || bind_tcp_listener(&*shared.runtime, addr.socket_addr(0), TCP_BACKLOG);
        let (listener, local) = match bind() {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(ip = %addr.ip, error = %e, "cannot listen on TCP: address skipped");
                continue;
            }
        };
        let mut st = shared.lock();
        let Some(mut stream) = st.proto.stream_mut(sid) else {
            return;
        };
        if let Err(e) = stream.add_local_socket(component, TransportType::Tcp, local) {
            tracing::warn!(%local, error = %e, "TCP listener not registered");
            continue;
        }
        st.registry.add_listener(local, sid, component);
        drop(st);
        tracing::debug!(%local, "ICE-TCP listener");
        shared.runtime.spawn(Box::pin(crate::tcp::serve(
            Arc::downgrade(shared),
            listener,
            local,
        )));
        let so = {
            let st = shared.lock();
            let config = st.proto.config();
            config.uses_tcp_simultaneous_open() && !config.is_lite()
        };
        if so {
            add_so_socket(shared, sid, component, addr);
        }
    }
}

/// Binds a non-blocking TCP listener at `at` (IPv6 listeners are IPv6-only) with room for
/// `backlog` connections not yet accepted, and wraps it for `runtime`; returns it with its
/// address.
pub(crate) fn bind_tcp_listener(
    runtime: &dyn Runtime,
    at: SocketAddr,
    backlog: i32,
) -> std::io::Result<(Box<dyn crate::runtime::AsyncTcpListener>, SocketAddr)> {
    use socket2::{Domain, Protocol, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    if at.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&at.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    let listener = runtime.wrap_tcp_listener(socket.into())?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Binds the socket of a simultaneous-open candidate (RFC 6544 `so`) at `at` (port 0:
/// any): a TCP socket with `SO_REUSEADDR` (and `SO_REUSEPORT` on Unix, which the BSDs need
/// to share a port) that never listens, so that the connections of the candidate's checks
/// (bound the same way by [`crate::Runtime::tcp_connect`]) can share its port, and nothing
/// accepts a SYN on it: the only connections made from it are the crossing SYNs of
/// simultaneous opens.
pub(crate) fn bind_so(at: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket as RawSocket, Type};
    let socket = RawSocket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))?;
    if at.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.bind(&at.into())?;
    Ok(socket)
}

/// Binds and registers the simultaneous-open socket of (component, address) for stream
/// `sid`; skipped (traced) if it cannot be bound.
fn add_so_socket(
    shared: &Arc<crate::shared::Shared>,
    sid: StreamId,
    component: ComponentId,
    addr: &InterfaceAddress,
) {
    let bound = bind_so(addr.socket_addr(0)).and_then(|s| {
        let local = s
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("not an IP socket"))?;
        Ok((s, local))
    });
    let (socket, local) = match bound {
        Ok(ok) => ok,
        Err(e) => {
            tracing::warn!(ip = %addr.ip, error = %e, "cannot bind a simultaneous-open socket: skipped");
            return;
        }
    };
    let mut st = shared.lock();
    let Some(mut stream) = st.proto.stream_mut(sid) else {
        return;
    };
    if let Err(e) = stream.add_local_so_socket(component, local) {
        tracing::warn!(%local, error = %e, "simultaneous-open socket not registered");
        return;
    }
    tracing::debug!(%local, "ICE-TCP simultaneous-open socket");
    st.registry.add_so_socket(local, sid, component, socket);
}

/// A UDP socket bound for a component of a stream, not yet registered.
pub(crate) struct BoundSocket {
    pub component: ComponentId,
    pub local: SocketAddr,
    pub socket: Arc<dyn AsyncUdpSocket>,
    pub granted: SocketBuffers,
}

/// Binds one UDP socket (any port) per (component, address) of `wanted`, with the buffer
/// sizes asked for, and wraps it for `runtime`. An address whose socket cannot be bound is
/// skipped (traced): gathering goes on with the others.
pub(crate) fn bind_sockets<'a>(
    runtime: &dyn Runtime,
    sizes: BufferSizes,
    wanted: impl IntoIterator<Item = (ComponentId, &'a InterfaceAddress)>,
) -> Vec<BoundSocket> {
    let mut bound = Vec::new();
    for (component, addr) in wanted {
        let made = bind_udp(addr.socket_addr(0), sizes).and_then(|(s, granted)| {
            let s = runtime.wrap_udp_socket(s)?;
            Ok((s.local_addr()?, s, granted))
        });
        match made {
            Ok((local, socket, granted)) => bound.push(BoundSocket {
                component,
                local,
                socket,
                granted,
            }),
            Err(e) => {
                tracing::warn!(ip = %addr.ip, error = %e, "cannot bind a UDP socket: address skipped")
            }
        }
    }
    bound
}

/// Registers sockets bound for stream `sid` with the core (which gathers on them at once if
/// its gathering has started) and with the agent's registry. A socket either refuses is
/// dropped (traced).
pub(crate) fn register_sockets(st: &mut State, sid: StreamId, bound: Vec<BoundSocket>) {
    for b in bound {
        let Some(mut stream) = st.proto.stream_mut(sid) else {
            return;
        };
        if let Err(e) = stream.add_local_socket(b.component, TransportType::Udp, b.local) {
            tracing::warn!(local = %b.local, error = %e, "socket not registered");
            continue;
        }
        let socket = Arc::new(Socket::new(b.socket, b.local));
        if !st.registry.add_udp(socket, sid, b.component, b.granted) {
            tracing::warn!(local = %b.local, "a socket is already registered on this address");
        }
    }
}
