//! # librice-async-std
//!
//! The async-std and smol adapter for [`librice`]: [`AsyncStdRuntime`] implements
//! librice's [`Runtime`] trait on the [`async-io`](async_io) primitives (reactor and
//! timers) that async-std and smol share, so that it runs under either. Only spawning
//! differs between the two: by default tasks go to `async_std::task::spawn`; smol users
//! pass their own spawner to [`AsyncStdRuntime::with_spawner`].
//!
//! **async-std is deprecated upstream** (its 1.13 release recommends smol instead): new code
//! should prefer smol, as below. Such users can turn off this crate's default `async-std`
//! feature so as not to depend on async-std at all (which leaves out
//! `AsyncStdRuntime::new`, its `Default` implementation and [`runtime`]).
//!
//! Under smol:
//!
//! ```no_run
//! use std::sync::Arc;
//! use librice_async_std::AsyncStdRuntime;
//! use librice_async_std::librice::Runtime;
//!
//! smol::block_on(async {
//!     let runtime: Arc<dyn Runtime> =
//!         Arc::new(AsyncStdRuntime::with_spawner(|task| smol::spawn(task).detach()));
//!
//!     let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
//!     let socket = runtime.wrap_udp_socket(socket)?;
//!     let mut buf = [0; 1500];
//!     let (len, from) = librice_async_std::librice::runtime::recv_from(&*socket, &mut buf).await?;
//! #   let _ = (len, from);
//!     std::io::Result::Ok(())
//! })
//! # .unwrap();
//! ```
//!
//! Under async-std (with the default `async-std` feature):
//!
//! ```no_run
//! # #[cfg(feature = "async-std")]
//! # fn example() {
//! let runtime = librice_async_std::runtime();
//! # let _ = runtime;
//! # }
//! ```

#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};
use futures::io::{AsyncRead, AsyncWrite};
use librice::runtime::{
    AsyncTcpListener, AsyncTcpStream, AsyncTimer, AsyncUdpSocket, BoxFuture, InterfaceChanges,
    RecvInfo, Runtime, recv_batch, send_segments,
};

pub use librice;

type Spawner = dyn Fn(BoxFuture<()>) + Send + Sync + 'static;

/// librice's [`Runtime`] on async-io's reactor and timers, with a pluggable task
/// spawner: async-std's by default, or smol's (or any other) through
/// [`AsyncStdRuntime::with_spawner`].
///
/// Its constructors need no executor context: they work from any thread, inside or outside
/// an executor.
///
/// [`Runtime::now`] is [`Instant::now`], the clock async-io's timers use.
#[derive(Clone)]
pub struct AsyncStdRuntime {
    spawner: Arc<Spawner>,
}

impl fmt::Debug for AsyncStdRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStdRuntime").finish_non_exhaustive()
    }
}

impl AsyncStdRuntime {
    /// A runtime that spawns its tasks with `async_std::task::spawn` (detached).
    #[cfg(feature = "async-std")]
    pub fn new() -> Self {
        Self::with_spawner(|future| {
            // Dropping an async-std JoinHandle detaches the task.
            drop(async_std::task::spawn(future));
        })
    }

    /// A runtime that spawns its tasks with `spawner`, which must run the future to
    /// completion in the background (detached). For smol:
    /// `AsyncStdRuntime::with_spawner(|f| smol::spawn(f).detach())`.
    pub fn with_spawner(spawner: impl Fn(BoxFuture<()>) + Send + Sync + 'static) -> Self {
        Self {
            spawner: Arc::new(spawner),
        }
    }
}

#[cfg(feature = "async-std")]
impl Default for AsyncStdRuntime {
    /// [`AsyncStdRuntime::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// The async-std runtime as a librice [`Runtime`]: `Arc::new(AsyncStdRuntime::new())`.
///
/// Never fails and never panics: it needs no executor context, so it can be called from any
/// thread, inside or outside async-std (async-std's executor and async-io's reactor start on
/// first use). Hence no `try_runtime`, unlike `librice-tokio`.
#[cfg(feature = "async-std")]
pub fn runtime() -> Arc<dyn Runtime> {
    Arc::new(AsyncStdRuntime::new())
}

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        (self.spawner)(future)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(AsyncIoTimer {
            timer: Timer::at(deadline),
            deadline,
        })
    }

    fn wrap_udp_socket(&self, socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // `Async::new` makes the socket non-blocking.
        Ok(Arc::new(AsyncIoUdpSocket {
            socket: Async::new(socket)?,
        }))
    }

    fn tcp_connect(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> BoxFuture<io::Result<Box<dyn AsyncTcpStream>>> {
        Box::pin(async move {
            let stream = connect(local, remote).await?;
            Ok(Box::new(AsyncIoTcpStream { stream }) as Box<dyn AsyncTcpStream>)
        })
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Box<dyn AsyncTcpListener>> {
        // `Async::new` makes the socket non-blocking.
        Ok(Box::new(AsyncIoTcpListener {
            listener: Async::new(listener)?,
        }))
    }

    /// `if-watch`'s notifications (netlink on Linux, on async-io's reactor); `None` if the
    /// system refuses them (agents then poll).
    fn interface_changes(&self) -> Option<InterfaceChanges> {
        use futures::StreamExt;
        match if_watch::smol::IfWatcher::new() {
            Ok(watcher) => Some(Box::pin(watcher.map(|_| ()))),
            Err(_) => None,
        }
    }
}

/// A non-blocking connect to `remote` from a socket bound to `local`.
async fn connect(local: SocketAddr, remote: SocketAddr) -> io::Result<Async<TcpStream>> {
    use socket2::{Domain, Protocol, Socket, Type};

    let socket = Socket::new(
        Domain::for_address(remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if local.port() != 0 {
        // Let several connections (to different peers) share a fixed local port, with the
        // simultaneous-open socket that holds it (`Runtime::tcp_connect`'s contract).
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
    }
    socket.bind(&local.into())?;
    socket.set_nonblocking(true)?;
    let started = socket.connect(&remote.into());
    let stream = Async::new_nonblocking(TcpStream::from(socket))?;
    let started_error = match started {
        Ok(()) => return Ok(stream),
        Err(e) => e,
    };
    // Normally EINPROGRESS (WouldBlock on Windows), which std cannot name on stable Rust
    // yet; an immediate failure leaves the socket unconnected, which also polls writable.
    // Either way, the socket's state after it becomes writable tells.
    stream.writable().await?;
    if let Some(error) = stream.get_ref().take_error()? {
        return Err(error);
    }
    match stream.get_ref().peer_addr() {
        Ok(_) => Ok(stream),
        Err(_) => Err(started_error),
    }
}

/// An [`async_io::Timer`] that stays elapsed once its deadline has passed (until reset).
#[derive(Debug)]
struct AsyncIoTimer {
    timer: Timer,
    deadline: Instant,
}

impl AsyncTimer for AsyncIoTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.deadline = deadline;
        self.timer.set_at(deadline);
    }

    fn poll_elapsed(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A fired async-io timer never fires again: answer from the deadline.
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
    }
}

/// An `Async<UdpSocket>`.
#[derive(Debug)]
struct AsyncIoUdpSocket {
    socket: Async<UdpSocket>,
}

/// Runs `op` until it does not block, waiting for readiness with `poll_ready` between tries.
fn poll_io<T>(
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<T>,
    mut poll_ready: impl FnMut(&mut Context<'_>) -> Poll<io::Result<()>>,
) -> Poll<io::Result<T>> {
    loop {
        match op() {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            result => return Poll::Ready(result),
        }
        ready!(poll_ready(cx))?;
    }
}

impl AsyncUdpSocket for AsyncIoUdpSocket {
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        poll_io(
            cx,
            || self.socket.get_ref().recv_from(buf),
            |cx| self.socket.poll_readable(cx),
        )
    }

    fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        info: &mut [RecvInfo],
    ) -> Poll<io::Result<usize>> {
        let socket = self.socket.get_ref();
        poll_io(
            cx,
            || recv_batch(socket.into(), bufs, info, |buf| socket.recv_from(buf)),
            |cx| self.socket.poll_readable(cx),
        )
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        poll_io(
            cx,
            || self.socket.get_ref().send_to(buf, target),
            |cx| self.socket.poll_writable(cx),
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    fn poll_send_segments(
        &self,
        cx: &mut Context<'_>,
        data: &[u8],
        segment_size: usize,
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let socket = self.socket.get_ref();
        poll_io(
            cx,
            || {
                send_segments(socket.into(), data, segment_size, target, |segment| {
                    socket.send_to(segment, target)
                })
            },
            |cx| self.socket.poll_writable(cx),
        )
    }
}

/// An `Async<TcpListener>`: a connection is accepted once the reactor says the socket is
/// readable.
#[derive(Debug)]
struct AsyncIoTcpListener {
    listener: Async<std::net::TcpListener>,
}

impl AsyncTcpListener for AsyncIoTcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn AsyncTcpStream>, SocketAddr)>> {
        loop {
            match self.listener.get_ref().accept() {
                Ok((stream, peer)) => {
                    let stream = Async::new(stream)?;
                    return Poll::Ready(Ok((
                        Box::new(AsyncIoTcpStream { stream }) as Box<dyn AsyncTcpStream>,
                        peer,
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.listener.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// An `Async<TcpStream>` (which has the `futures` I/O traits already).
#[derive(Debug)]
struct AsyncIoTcpStream {
    stream: Async<TcpStream>,
}

impl AsyncRead for AsyncIoTcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for AsyncIoTcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

impl AsyncTcpStream for AsyncIoTcpStream {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().local_addr()
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.get_ref().peer_addr()
    }
}
