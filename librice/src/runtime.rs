//! The runtime abstraction: what librice needs from an async runtime (tasks, a clock,
//! timers, UDP sockets and TCP connections), as object-safe traits so that an agent holds
//! an `Arc<dyn Runtime>` and librice itself depends on no runtime.
//!
//! `librice-tokio` and `librice-async-std` implement these traits; any other runtime can.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An async runtime, as librice uses it.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture<()>);

    /// The current time on the runtime's clock (the one its timers use).
    fn now(&self) -> Instant;

    /// A timer that completes at `deadline`, and can be re-armed.
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// Wraps a bound UDP socket (librice sets it non-blocking first).
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>>;

    /// Opens a TCP connection to `remote` from the local IP of `local` (its port, when
    /// not 0, too).
    ///
    /// With a non-zero port, bind the socket with `SO_REUSEADDR` (and `SO_REUSEPORT` on
    /// Unix) before connecting: the port is that of a simultaneous-open ICE-TCP candidate
    /// (RFC 6544 `so`), held by a socket librice bound the same way and never listens on,
    /// and several connections (to different peers, and to a STUN server) share it. The
    /// connect is a plain `connect()`: when the peer connects to this address at the same
    /// time, the two SYNs cross and the OS completes the one connection (a TCP
    /// simultaneous open, RFC 9293 §3.5); when the peer's host answers the SYN with a
    /// reset, fail with the error. [`check_runtime`](crate::conformance::check_runtime)
    /// checks the port sharing.
    fn tcp_connect(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> BoxFuture<io::Result<Box<dyn AsyncTcpStream>>>;

    /// Wraps a bound, listening TCP socket (librice sets it non-blocking first), for the
    /// passive candidates of ICE-TCP (RFC 6544). The default refuses with
    /// [`io::ErrorKind::Unsupported`]: such a runtime gathers no TCP candidates.
    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Box<dyn AsyncTcpListener>> {
        drop(listener);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this runtime does not listen on TCP",
        ))
    }

    /// The machine's interface addresses, which agents gather on and watch
    /// ([`crate::NetworkChange`]). The default lists them with `if-addrs`
    /// ([`crate::interfaces::interface_addresses`]); a runtime may give its own view (a
    /// test runtime can make addresses come and go).
    fn interface_addresses(&self) -> io::Result<Vec<crate::interfaces::InterfaceAddress>> {
        crate::interfaces::interface_addresses()
    }

    /// Notifications that the interface addresses may have changed (an address added or
    /// removed; spurious ones are harmless), for the agents that watch them. `None` (the
    /// default) when the runtime has none: agents then only poll
    /// [`Self::interface_addresses`] every [`crate::NetworkChange::poll_interval`]. The
    /// adapters of `librice-tokio` and `librice-async-std` give `if-watch`'s.
    fn interface_changes(&self) -> Option<InterfaceChanges> {
        None
    }
}

/// A stream of interface change notifications ([`Runtime::interface_changes`]); it ends
/// when the runtime can give no more.
pub type InterfaceChanges = Pin<Box<dyn futures::Stream<Item = ()> + Send>>;

/// A re-armable timer.
pub trait AsyncTimer: Send + Sync + fmt::Debug {
    /// Moves the deadline.
    fn reset(self: Pin<&mut Self>, deadline: Instant);

    /// Ready once the deadline has passed.
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A non-blocking UDP socket registered with a runtime's reactor.
pub trait AsyncUdpSocket: Send + Sync + fmt::Debug {
    /// Receives one datagram into `buf`: its length and sender.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;

    /// Sends one datagram to `target`.
    ///
    /// Try the send first and wait for writability only if the socket says it would
    /// block. Do not gate the first send on readiness the reactor has not reported yet:
    /// a freshly registered socket is writable, and the agent's first request on a new
    /// socket (an Allocate, a STUN Binding) must leave at once rather than wait for a
    /// retransmission. [`check_runtime`](crate::conformance::check_runtime) checks this.
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>>;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Sends `data` to `target` as consecutive datagrams of `segment_size` bytes each (the
    /// last may be shorter), as many as the socket takes: returns how many datagrams went,
    /// at least 1 when `Ready(Ok)` and `data` is not empty; `Pending` only when none did.
    ///
    /// Adapters should send them in one system call where the OS can ([`send_segments`]
    /// does, with UDP GSO on Linux). The default sends them one by one with
    /// [`Self::poll_send_to`], under the same rule: try first, wait only when the first
    /// would block.
    fn poll_send_segments(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        segment_size: usize,
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut sent = 0;
        for segment in data.chunks(segment_size.max(1)) {
            match self.poll_send_to(cx, segment, target) {
                Poll::Ready(Ok(_)) => sent += 1,
                Poll::Ready(Err(e)) if sent == 0 => return Poll::Ready(Err(e)),
                Poll::Pending if sent == 0 => return Poll::Pending,
                Poll::Ready(Err(_)) | Poll::Pending => break,
            }
        }
        Poll::Ready(Ok(sent))
    }

    /// Receives up to `bufs.len()` datagrams (at most [`RECV_BATCH_MAX`]), the `i`-th into
    /// `bufs[i]` (truncated to it, as UDP does), and records each one's length and sender
    /// in `info[i]`; returns how many, at least 1 when `Ready(Ok)` and `bufs` is not empty.
    /// `info` must be at least as long as `bufs`.
    ///
    /// Adapters should read the whole batch in one system call where the OS has one
    /// ([`recv_batch`] does, with `recvmmsg` on Linux). The default reads one datagram
    /// with [`Self::poll_recv_from`].
    fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        info: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(slot)) = (bufs.first_mut(), info.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let (len, from) = std::task::ready!(self.poll_recv_from(cx, buf))?;
        *slot = RecvInfo { len, from };
        Poll::Ready(Ok(1))
    }
}

/// The most datagrams one [`AsyncUdpSocket::poll_recv_batch`] call is asked for.
pub const RECV_BATCH_MAX: usize = 32;

/// One datagram received by [`AsyncUdpSocket::poll_recv_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvInfo {
    /// How many bytes of its buffer hold the datagram.
    pub len: usize,
    /// Its sender.
    pub from: SocketAddr,
}

impl Default for RecvInfo {
    fn default() -> Self {
        Self {
            len: 0,
            from: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        }
    }
}

/// Receives a batch of datagrams from a non-blocking UDP socket in one system call where
/// the OS has one (`recvmmsg` on Linux and Android, through `quinn-udp`): the building block
/// of [`AsyncUdpSocket::poll_recv_batch`] for adapters. `recv_one` is the socket's own
/// non-blocking `recv_from`, used where no batch call is available. Fails with
/// [`io::ErrorKind::WouldBlock`] when no datagram is waiting, as the socket's own calls
/// do. See [`AsyncUdpSocket::poll_recv_batch`] for `bufs` and `info`.
///
/// The socket is used as it is: unlike `quinn_udp::UdpSocketState::new`, this does not
/// turn on UDP GRO (which coalesces datagrams into one buffer, and would need every
/// buffer to hold 64 of them), the don't-fragment bit, or receive timestamps. Each
/// buffer receives exactly one datagram.
pub fn recv_batch(
    socket: socket2::SockRef<'_>,
    bufs: &mut [IoSliceMut<'_>],
    info: &mut [RecvInfo],
    recv_one: impl FnOnce(&mut [u8]) -> io::Result<(usize, SocketAddr)>,
) -> io::Result<usize> {
    let n = bufs.len().min(info.len()).min(RECV_BATCH_MAX);
    if n == 0 {
        return Ok(0);
    }
    let Some(state) = batch_state().filter(|_| n > 1) else {
        let (len, from) = recv_one(&mut bufs[0])?;
        info[0] = RecvInfo { len, from };
        return Ok(1);
    };
    let mut meta = [quinn_udp::RecvMeta::default(); RECV_BATCH_MAX];
    let got = state.recv((&*socket).into(), &mut bufs[..n], &mut meta[..n])?;
    for (slot, m) in info.iter_mut().zip(&meta[..got]) {
        *slot = RecvInfo {
            len: m.len,
            from: m.addr,
        };
    }
    Ok(got)
}

/// Sends `data` to `target` as datagrams of `segment_size` bytes (the last may be
/// shorter) from a non-blocking UDP socket, in one system call where the OS can (UDP GSO on
/// Linux, through `quinn-udp`: up to its `max_gso_segments` datagrams a call), else one
/// at a time with `send_one` (the socket's own non-blocking `send_to`): the building block
/// of [`AsyncUdpSocket::poll_send_segments`] for adapters. Returns how many datagrams went
/// (at least 1); fails with [`io::ErrorKind::WouldBlock`] when none could.
pub fn send_segments(
    socket: socket2::SockRef<'_>,
    data: &[u8],
    segment_size: usize,
    target: SocketAddr,
    mut send_one: impl FnMut(&[u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    let segment_size = segment_size.max(1);
    let count = data.len().div_ceil(segment_size);
    let gso = batch_state()
        .map(|s| s.max_gso_segments())
        .filter(|&max| max > 1 && count > 1);
    if let (Some(max), Some(state)) = (gso, batch_state()) {
        let n = count.min(max);
        let end = (n * segment_size).min(data.len());
        let transmit = quinn_udp::Transmit {
            destination: target,
            ecn: None,
            contents: &data[..end],
            segment_size: Some(segment_size),
            src_ip: None,
        };
        state.try_send((&*socket).into(), &transmit)?;
        return Ok(n);
    }
    let mut sent = 0;
    for segment in data.chunks(segment_size) {
        match send_one(segment) {
            Ok(_) => sent += 1,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// `quinn-udp`'s per-process capabilities (what `recvmmsg` needs of it is none of the
/// socket options it sets): probed once, on a socket of its own, so that the agent's
/// sockets keep their options. `None` if no UDP socket could be made for the probe.
fn batch_state() -> Option<&'static quinn_udp::UdpSocketState> {
    static STATE: OnceLock<Option<quinn_udp::UdpSocketState>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).ok()?;
            let state = quinn_udp::UdpSocketState::new((&probe).into());
            if let Err(e) = &state {
                tracing::debug!(error = %e, "no batched UDP receive: one datagram a call");
            }
            state.ok()
        })
        .as_ref()
}

/// A connected TCP stream.
pub trait AsyncTcpStream: AsyncRead + AsyncWrite + Send + Unpin + fmt::Debug {
    /// The local end's address.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The remote end's address.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
}

/// A listening TCP socket ([`Runtime::wrap_tcp_listener`]).
pub trait AsyncTcpListener: Send + Sync + fmt::Debug {
    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Accepts the next connection: the stream and the peer's address.
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn AsyncTcpStream>, SocketAddr)>>;
}

/// Async helpers over [`AsyncUdpSocket`].
pub trait AsyncUdpSocketExt: AsyncUdpSocket {
    /// Receives one datagram.
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send + 'a
    where
        Self: Sized,
    {
        futures::future::poll_fn(move |cx| self.poll_recv_from(cx, buf))
    }

    /// Sends one datagram.
    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a
    where
        Self: Sized,
    {
        futures::future::poll_fn(move |cx| self.poll_send_to(cx, buf, target))
    }
}

impl<T: AsyncUdpSocket + ?Sized> AsyncUdpSocketExt for T {}

/// Receives one datagram on a shared socket.
pub async fn recv_from(
    socket: &dyn AsyncUdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr)> {
    futures::future::poll_fn(|cx| socket.poll_recv_from(cx, buf)).await
}

/// Sends one datagram on a shared socket.
pub async fn send_to(
    socket: &dyn AsyncUdpSocket,
    buf: &[u8],
    target: SocketAddr,
) -> io::Result<usize> {
    futures::future::poll_fn(|cx| socket.poll_send_to(cx, buf, target)).await
}

/// Waits until `deadline` on `runtime`'s clock.
pub async fn sleep_until(runtime: &dyn Runtime, deadline: Instant) {
    let mut timer = runtime.new_timer(deadline);
    futures::future::poll_fn(|cx| timer.as_mut().poll_elapsed(cx)).await
}

/// Awaits `fut` for at most `limit` on `runtime`'s clock: `None` if the time ran out first.
pub(crate) async fn timeout<T>(
    runtime: &dyn Runtime,
    limit: std::time::Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    use futures::FutureExt;
    let sleep = sleep_until(runtime, runtime.now() + limit).fuse();
    let fut = fut.fuse();
    futures::pin_mut!(sleep, fut);
    futures::select! {
        v = fut => Some(v),
        _ = sleep => None,
    }
}

/// A task's one timer, re-armed only when its deadline moves (quinn's `drive_timer`): the
/// driver's and the mDNS service's.
#[derive(Default)]
pub(crate) struct DeadlineTimer {
    timer: Option<Pin<Box<dyn AsyncTimer>>>,
    armed: Option<Instant>,
}

impl fmt::Debug for DeadlineTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineTimer")
            .field("armed", &self.armed)
            .finish()
    }
}

impl DeadlineTimer {
    /// Arms the timer for `deadline` (none: disarms it) and polls it: true if the deadline
    /// has passed (go round again).
    pub fn poll(
        &mut self,
        runtime: &dyn Runtime,
        cx: &mut Context<'_>,
        deadline: Option<Instant>,
    ) -> bool {
        let Some(t) = deadline else {
            self.armed = None;
            return false;
        };
        if t <= runtime.now() {
            return true;
        }
        if self.armed != Some(t) {
            match self.timer.as_mut() {
                Some(timer) => timer.as_mut().reset(t),
                None => self.timer = Some(runtime.new_timer(t)),
            }
            self.armed = Some(t);
        }
        if let Some(timer) = self.timer.as_mut()
            && timer.as_mut().poll_elapsed(cx).is_ready()
        {
            self.armed = None;
            return true;
        }
        false
    }
}
