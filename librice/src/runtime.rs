//! The runtime abstraction: what librice needs from an async runtime (tasks, a clock,
//! timers, UDP sockets and TCP connections), as object-safe traits so that an agent holds
//! an `Arc<dyn Runtime>` and librice itself depends on no runtime.
//!
//! `librice-tokio` and `librice-async-std` implement these traits; any other runtime can.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
    fn tcp_connect(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> BoxFuture<io::Result<Box<dyn AsyncTcpStream>>>;
}

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
}

/// A connected TCP stream.
pub trait AsyncTcpStream: AsyncRead + AsyncWrite + Send + Unpin + fmt::Debug {
    /// The local end's address.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// The remote end's address.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
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
