//! UDP sockets on tokio's reactor, watched for writability only while a send waits.
//!
//! A `tokio::net::UdpSocket` is registered for reads and writes at once, edge-triggered.
//! On Linux every datagram a socket sends frees send-buffer space when it leaves, and each
//! time that happens while a worker sleeps in `epoll_wait`, the kernel wakes the worker to
//! report the socket writable again: on loopback, one wake-up for every few datagrams sent,
//! a fifth of all the CPU time a busy sender spends (`perf` of the `datapath` bench,
//! BENCHMARKS.md). A send almost never waits, so this socket registers for reads only; a
//! send that would block registers a second descriptor of the same socket (`dup`) for
//! writability, and drops it once a send goes through.

#[cfg(not(unix))]
pub(crate) use portable::TokioUdpSocket;
#[cfg(unix)]
pub(crate) use unix::TokioUdpSocket;

#[cfg(unix)]
mod unix {
    use std::io::{self, IoSliceMut};
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::task::{Context, Poll, ready};

    use librice::runtime::{AsyncUdpSocket, RecvInfo, recv_batch, send_segments};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    use tokio::runtime::Handle;

    /// A UDP socket registered with a tokio reactor for reads, and for writes only while a
    /// send waits for room.
    #[derive(Debug)]
    pub(crate) struct TokioUdpSocket {
        /// The socket, watched for readability.
        reader: AsyncFd<std::net::UdpSocket>,
        /// A second descriptor of the socket, watched for writability: there only while a send
        /// waits (made when one would block, dropped when one goes through).
        writer: Mutex<Option<AsyncFd<std::net::UdpSocket>>>,
        /// The runtime to register `writer` with, whatever executor polls the send.
        handle: Handle,
    }

    impl TokioUdpSocket {
        /// Registers `socket` (non-blocking) with `handle`'s reactor, for reads.
        pub fn new(socket: std::net::UdpSocket, handle: Handle) -> io::Result<Self> {
            socket.set_nonblocking(true)?;
            let _guard = handle.enter();
            Ok(Self {
                reader: register(socket, Interest::READABLE)?,
                writer: Mutex::new(None),
                handle,
            })
        }

        /// Runs `recv` (a non-blocking receive on the socket) once the reactor has reported
        /// the socket readable, and again after each report while it would block.
        fn poll_recv_with<T>(
            &self,
            cx: &mut Context<'_>,
            mut recv: impl FnMut(&std::net::UdpSocket) -> io::Result<T>,
        ) -> Poll<io::Result<T>> {
            loop {
                let mut ready = ready!(self.reader.poll_read_ready(cx))?;
                // `try_io` clears the readiness when the call would block, so that the next
                // `poll_read_ready` waits for the reactor.
                if let Ok(result) = ready.try_io(|fd| recv(fd.get_ref())) {
                    return Poll::Ready(result);
                }
            }
        }

        /// Runs `send` (a non-blocking send on the socket): at once, and when it would block,
        /// again each time the reactor reports the socket writable, until it does not block.
        fn poll_send_with<T>(
            &self,
            cx: &mut Context<'_>,
            mut send: impl FnMut(&std::net::UdpSocket) -> io::Result<T>,
        ) -> Poll<io::Result<T>> {
            match send(self.reader.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
            let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let fd = match &mut *writer {
                Some(fd) => fd,
                none => {
                    let dup = self.reader.get_ref().try_clone()?;
                    let _guard = self.handle.enter();
                    // Registering reports the socket writable at once if it became so since
                    // the attempt above: no wake-up is lost in between.
                    none.insert(register(dup, Interest::WRITABLE)?)
                }
            };
            let result = loop {
                let mut ready = ready!(fd.poll_write_ready(cx))?;
                // `try_io` clears the readiness when the call would block, so that the next
                // `poll_write_ready` waits for the reactor.
                if let Ok(result) = ready.try_io(|fd| send(fd.get_ref())) {
                    break result;
                }
            };
            // The send went through (or failed for good): stop watching for writability.
            *writer = None;
            Poll::Ready(result)
        }
    }

    /// Registers `socket` with the current context's reactor for `interest`.
    #[allow(unsafe_code)]
    fn register(
        socket: std::net::UdpSocket,
        interest: Interest,
    ) -> io::Result<AsyncFd<std::net::UdpSocket>> {
        // SAFETY: the `AsyncFd` owns the `UdpSocket`, which owns its descriptor: it stays open
        // and the same until the `AsyncFd` drops it, and `as_raw_fd` always returns it.
        unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(io::Error::from)
    }

    impl AsyncUdpSocket for TokioUdpSocket {
        fn poll_recv_from(
            &self,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<(usize, SocketAddr)>> {
            self.poll_recv_with(cx, |socket| socket.recv_from(buf))
        }

        fn poll_recv_batch(
            &self,
            cx: &mut Context<'_>,
            bufs: &mut [IoSliceMut<'_>],
            info: &mut [RecvInfo],
        ) -> Poll<io::Result<usize>> {
            self.poll_recv_with(cx, |socket| {
                recv_batch(socket.into(), bufs, info, |buf| socket.recv_from(buf))
            })
        }

        fn poll_send_to(
            &self,
            cx: &mut Context<'_>,
            buf: &[u8],
            target: SocketAddr,
        ) -> Poll<io::Result<usize>> {
            self.poll_send_with(cx, |socket| socket.send_to(buf, target))
        }

        fn local_addr(&self) -> io::Result<SocketAddr> {
            self.reader.get_ref().local_addr()
        }

        fn poll_send_segments(
            &self,
            cx: &mut Context<'_>,
            data: &[u8],
            segment_size: usize,
            target: SocketAddr,
        ) -> Poll<io::Result<usize>> {
            self.poll_send_with(cx, |socket| {
                send_segments(socket.into(), data, segment_size, target, |segment| {
                    socket.send_to(segment, target)
                })
            })
        }
    }
}

/// Elsewhere: a [`tokio::net::UdpSocket`], watched for reads and writes.
#[cfg(not(unix))]
mod portable {
    use std::io::{self, IoSliceMut};
    use std::net::SocketAddr;
    use std::task::{Context, Poll};

    use librice::runtime::{AsyncUdpSocket, RecvInfo, recv_batch, send_segments};
    use tokio::io::ReadBuf;
    use tokio::runtime::Handle;

    /// A [`tokio::net::UdpSocket`].
    #[derive(Debug)]
    pub(crate) struct TokioUdpSocket {
        socket: tokio::net::UdpSocket,
    }

    impl AsyncUdpSocket for TokioUdpSocket {
        fn poll_recv_from(
            &self,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<(usize, SocketAddr)>> {
            let mut buf = ReadBuf::new(buf);
            self.socket
                .poll_recv_from(cx, &mut buf)
                .map_ok(|from| (buf.filled().len(), from))
        }

        fn poll_recv_batch(
            &self,
            cx: &mut Context<'_>,
            bufs: &mut [IoSliceMut<'_>],
            info: &mut [RecvInfo],
        ) -> Poll<io::Result<usize>> {
            let socket = &self.socket;
            loop {
                std::task::ready!(socket.poll_recv_ready(cx))?;
                // `try_io` clears tokio's readiness when the call would block, so that the
                // next `poll_recv_ready` waits for the reactor.
                match socket.try_io(tokio::io::Interest::READABLE, || {
                    recv_batch(socket.into(), bufs, info, |buf| socket.try_recv_from(buf))
                }) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    result => return Poll::Ready(result),
                }
            }
        }

        fn poll_send_to(
            &self,
            cx: &mut Context<'_>,
            buf: &[u8],
            target: SocketAddr,
        ) -> Poll<io::Result<usize>> {
            // tokio gates `poll_send_to` on readiness its reactor has reported, and a socket
            // registered a moment ago has none yet: its first send would wait a reactor turn
            // (or be given up by a caller that cannot wait). Try the system call first; only
            // when the kernel says it would block does tokio wait for writability.
            match socket2::SockRef::from(&self.socket).send_to(buf, &target.into()) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    self.socket.poll_send_to(cx, buf, target)
                }
                result => Poll::Ready(result),
            }
        }

        fn local_addr(&self) -> io::Result<SocketAddr> {
            self.socket.local_addr()
        }

        fn poll_send_segments(
            &self,
            cx: &mut Context<'_>,
            data: &[u8],
            segment_size: usize,
            target: SocketAddr,
        ) -> Poll<io::Result<usize>> {
            let socket = &self.socket;
            let send = || {
                send_segments(socket.into(), data, segment_size, target, |segment| {
                    socket2::SockRef::from(socket).send_to(segment, &target.into())
                })
            };
            // As `poll_send_to`: the system call first, the reactor only when it would block.
            match send() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
            loop {
                std::task::ready!(socket.poll_send_ready(cx))?;
                match socket.try_io(tokio::io::Interest::WRITABLE, send) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    result => return Poll::Ready(result),
                }
            }
        }
    }

    impl TokioUdpSocket {
        pub fn new(socket: std::net::UdpSocket, handle: Handle) -> io::Result<Self> {
            socket.set_nonblocking(true)?;
            let _guard = handle.enter();
            Ok(Self {
                socket: tokio::net::UdpSocket::from_std(socket)?,
            })
        }
    }
}
