//! # librice-tokio
//!
//! The [tokio] adapter for [`librice`]: [`TokioRuntime`] implements librice's
//! [`Runtime`] trait on tokio's task spawning, clock, timers and sockets.
//!
//! The tokio runtime must have both its I/O and its time drivers enabled
//! (`#[tokio::main]` and `Builder::enable_all()` do so).
//!
//! Three ways to name the tokio runtime:
//! - [`runtime_from_handle`] (or [`TokioRuntime::new`]) with a [`Handle`]: works anywhere,
//!   inside or outside the runtime, and never fails;
//! - [`try_runtime`] (or [`TokioRuntime::try_current`]): the runtime the caller runs in, or
//!   [`Error::NoRuntime`] outside any tokio runtime;
//! - [`runtime`] (or [`TokioRuntime::current`]): the same, but outside a tokio runtime it
//!   panics, at the caller's line, with a message that says what to do.
//!
//! ```
//! use std::sync::Arc;
//! use librice_tokio::librice::Runtime;
//!
//! let tokio_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! // Outside the runtime: name it by its handle (`try_runtime()` would be an error here).
//! assert!(librice_tokio::try_runtime().is_err());
//! let runtime: Arc<dyn Runtime> = librice_tokio::runtime_from_handle(tokio_rt.handle().clone());
//! # let _ = runtime;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use librice_tokio::librice::Runtime;
//!
//! // Inside a tokio runtime (in `#[tokio::main]`, say):
//! let runtime: Arc<dyn Runtime> = librice_tokio::try_runtime()?;
//!
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//! let socket = runtime.wrap_udp_socket(socket)?;
//! let mut buf = [0; 1500];
//! let (len, from) = librice_tokio::librice::runtime::recv_from(&*socket, &mut buf).await?;
//! # let _ = (len, from);
//! # Ok(())
//! # }
//! ```
//!
//! [tokio]: https://tokio.rs

// One `unsafe` call: registering a socket the adapter owns with the reactor (`udp.rs`).
#![deny(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::StreamExt;
use librice::runtime::{
    AsyncTcpListener, AsyncTcpStream, AsyncTimer, AsyncUdpSocket, BoxFuture, InterfaceChanges,
    Runtime,
};
use tokio::io::ReadBuf;
use tokio::runtime::{Handle, TryCurrentError};

mod udp;

pub use librice;

/// librice's [`Runtime`] on a tokio runtime, named by its [`Handle`].
///
/// Tasks are spawned on that runtime; sockets are registered with its I/O driver and
/// timers with its time driver, so the runtime must have both enabled. [`Runtime::now`]
/// reads tokio's clock, so that it follows a paused clock in tests
/// (`tokio::time::pause`).
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// A runtime adapter for the tokio runtime that `handle` refers to. Works from any
    /// thread, inside or outside that runtime.
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }

    /// A runtime adapter for the tokio runtime the caller runs in.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime's context, at the caller's line (this is the contract of
    /// this constructor; [`TokioRuntime::try_current`] returns the error instead, and
    /// [`TokioRuntime::new`] takes the runtime's [`Handle`]).
    #[track_caller]
    pub fn current() -> Self {
        match Self::try_current() {
            Ok(runtime) => runtime,
            Err(e) => panic!("TokioRuntime::current(): {e}"),
        }
    }

    /// A runtime adapter for the tokio runtime the caller runs in, or
    /// [`Error::NoRuntime`] outside a tokio runtime's context.
    pub fn try_current() -> Result<Self, Error> {
        Handle::try_current()
            .map(Self::new)
            .map_err(Error::NoRuntime)
    }

    /// The handle of the tokio runtime in use.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl From<Handle> for TokioRuntime {
    fn from(handle: Handle) -> Self {
        Self::new(handle)
    }
}

/// The tokio runtime the caller runs in, as a librice [`Runtime`]:
/// `Arc::new(TokioRuntime::current())`.
///
/// # Panics
///
/// Outside a tokio runtime's context, at the caller's line, with a message naming the
/// alternatives: [`try_runtime`] returns the error instead, and [`runtime_from_handle`]
/// works anywhere.
#[track_caller]
pub fn runtime() -> Arc<dyn Runtime> {
    match try_runtime() {
        Ok(runtime) => runtime,
        Err(e) => panic!("librice_tokio::runtime(): {e}"),
    }
}

/// The tokio runtime the caller runs in, as a librice [`Runtime`], or
/// [`Error::NoRuntime`] outside a tokio runtime's context (instead of a panic).
pub fn try_runtime() -> Result<Arc<dyn Runtime>, Error> {
    Ok(Arc::new(TokioRuntime::try_current()?))
}

/// The tokio runtime that `handle` refers to, as a librice [`Runtime`]:
/// `Arc::new(TokioRuntime::new(handle))`. Works from any thread, inside or outside that
/// runtime (e.g. `runtime_from_handle(tokio_rt.handle().clone())` before
/// `tokio_rt.block_on(..)`). Mind that a current-thread tokio runtime runs its tasks,
/// sockets and timers only while some thread is in its `block_on`; a multi-threaded one
/// runs them in its worker threads.
pub fn runtime_from_handle(handle: Handle) -> Arc<dyn Runtime> {
    Arc::new(TokioRuntime::new(handle))
}

/// Why no tokio runtime could be named.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Called outside a tokio runtime's context (not on a runtime's thread, not in
    /// `Runtime::block_on`, not after `Runtime::enter`), or while the thread is being torn
    /// down. Call it inside the runtime, or pass the runtime's [`Handle`] to
    /// [`runtime_from_handle`] or [`TokioRuntime::new`]. Wraps tokio's own error.
    NoRuntime(TryCurrentError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntime(_) => write!(
                f,
                "called outside a tokio runtime: call it inside one (in #[tokio::main], \
                 Runtime::block_on or after Runtime::enter), or pass the runtime's Handle to \
                 librice_tokio::runtime_from_handle"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NoRuntime(e) => Some(e),
        }
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        // Dropping the JoinHandle detaches the task.
        drop(self.handle.spawn(future));
    }

    fn now(&self) -> Instant {
        // tokio's clock is per runtime (it can be paused): read it in this runtime's context.
        let _guard = self.handle.enter();
        tokio::time::Instant::now().into_std()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        let _guard = self.handle.enter();
        Box::pin(TokioTimer {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
        })
    }

    /// On Unix the socket is registered for reads only, and for writability only while a
    /// send waits (see `udp.rs`: it saves the reactor a wake-up for every few datagrams
    /// sent); elsewhere it is a [`tokio::net::UdpSocket`].
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(udp::TokioUdpSocket::new(
            socket,
            self.handle.clone(),
        )?))
    }

    fn tcp_connect(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> BoxFuture<io::Result<Box<dyn AsyncTcpStream>>> {
        let connect = Box::pin(async move {
            let socket = match remote {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            if local.port() != 0 {
                // Let several connections (to different peers) share a fixed local port,
                // with the simultaneous-open socket that holds it (`Runtime::tcp_connect`'s
                // contract).
                socket.set_reuseaddr(true)?;
                #[cfg(unix)]
                socket.set_reuseport(true)?;
            }
            socket.bind(local)?;
            let stream = socket.connect(remote).await?;
            Ok(Box::new(TokioTcpStream { stream }) as Box<dyn AsyncTcpStream>)
        });
        // The connect registers the socket with the reactor of the current context: run it
        // in this runtime's context, whatever executor polls the returned future.
        Box::pin(InRuntime {
            handle: self.handle.clone(),
            future: connect,
        })
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Box<dyn AsyncTcpListener>> {
        let _guard = self.handle.enter();
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        Ok(Box::new(TokioTcpListener {
            listener,
            handle: self.handle.clone(),
        }))
    }

    /// `if-watch`'s notifications (netlink on Linux), started in this runtime's context;
    /// `None` if the system refuses them (agents then poll).
    fn interface_changes(&self) -> Option<InterfaceChanges> {
        let _guard = self.handle.enter();
        match if_watch::tokio::IfWatcher::new() {
            Ok(watcher) => Some(Box::pin(watcher.map(|_| ()))),
            Err(_) => None,
        }
    }
}

/// Polls `future` inside `handle`'s runtime context.
struct InRuntime<F> {
    handle: Handle,
    future: F,
}

impl<F: Future + Unpin> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _guard = this.handle.enter();
        Pin::new(&mut this.future).poll(cx)
    }
}

/// A re-armable [`tokio::time::Sleep`].
#[derive(Debug)]
struct TokioTimer {
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncTimer for TokioTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.sleep.as_mut().reset(deadline.into());
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sleep.as_mut().poll(cx)
    }
}

/// A [`tokio::net::TcpStream`], with the `futures` I/O traits.
/// A tokio listener, with its runtime's handle: an accepted stream registers with that
/// runtime's reactor whatever executor polls the accept.
#[derive(Debug)]
struct TokioTcpListener {
    listener: tokio::net::TcpListener,
    handle: Handle,
}

impl AsyncTcpListener for TokioTcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn AsyncTcpStream>, SocketAddr)>> {
        let _guard = self.handle.enter();
        self.listener.poll_accept(cx).map_ok(|(stream, peer)| {
            (
                Box::new(TokioTcpStream { stream }) as Box<dyn AsyncTcpStream>,
                peer,
            )
        })
    }
}

struct TokioTcpStream {
    stream: tokio::net::TcpStream,
}

impl fmt::Debug for TokioTcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioTcpStream")
            .field("local_addr", &self.stream.local_addr().ok())
            .field("peer_addr", &self.stream.peer_addr().ok())
            .finish()
    }
}

impl futures::io::AsyncRead for TokioTcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        tokio::io::AsyncRead::poll_read(Pin::new(&mut self.stream), cx, &mut buf)
            .map_ok(|()| buf.filled().len())
    }
}

impl futures::io::AsyncWrite for TokioTcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.stream), cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write_vectored(Pin::new(&mut self.stream), cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.stream), cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.stream), cx)
    }
}

impl AsyncTcpStream for TokioTcpStream {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }
}
