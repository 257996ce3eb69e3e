//! The datagram handle of a component ([`Component::datagram`]): the transport a DTLS,
//! QUIC or SRTP stack sits on.
//!
//! [`Component::datagram`]: crate::Component::datagram

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use librice_proto::TransportType;
use librice_proto::agent::{ComponentId, PairId, StreamId};

use crate::agent::Handle;
use crate::error::Error;
use crate::ingest::{Incoming, RECV_BUF, Read, Reader};
use crate::send::{SendLink, SendState, poll_send, poll_send_segments};

/// Where a datagram received on a [`Datagram`] came from and went to.
///
/// `pair` names the candidate pair it arrived on, and `local` and `remote` give its
/// addresses: `local` is the local socket's address (the base of the local candidate; for
/// a relayed pair, the socket that talks to the TURN server) and `remote` the peer's
/// address (for relayed data, as the TURN server reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvMeta {
    /// How many bytes of the caller's buffer hold the datagram.
    pub len: usize,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The candidate pair it arrived on, one whose addresses a connectivity check has
    /// verified: usually the selected pair, or another valid pair while the peer has not
    /// switched yet. Its statistics are the [`crate::PairStats`] with this
    /// [`id`](crate::PairStats::id) in [`crate::Stream::stats`].
    pub pair: PairId,
    /// The local socket's address.
    pub local: SocketAddr,
    /// The transport it came over to this agent: UDP, or TCP for data relayed by a TURN
    /// server reached over TCP or TLS.
    pub transport: TransportType,
}

impl RecvMeta {
    /// The meta of `len` bytes of the data `incoming` describes, received on `local`.
    pub(crate) fn new(
        len: usize,
        incoming: &Incoming,
        local: SocketAddr,
        transport: TransportType,
    ) -> Self {
        Self {
            len,
            remote: incoming.from,
            pair: incoming.pair,
            local,
            transport,
        }
    }
}

/// A component's datagrams, for a protocol stack that reads into its own buffers and
/// sends on the selected pair: DTLS, QUIC, SRTP. Made by [`crate::Component::datagram`].
///
/// - [`Self::poll_recv`] / [`Self::recv`] receive into the caller's buffer, with the
///   [`RecvMeta`]. The handle's task reads the component's sockets itself, a batch at a
///   time (one `recvmmsg` on Linux) into a 66 KiB ring the handle allocates on first use,
///   and copies each datagram into the caller's buffer: in steady state no allocation per
///   datagram (STUN that arrives on them goes to the agent as usual). Data the agent's
///   driver read first (while nobody was receiving) is copied out of its queue.
/// - [`Self::poll_send`] / [`Self::send`] send on the selected pair, following selection
///   changes, and fail with [`Error::Agent`] (`NotConnected`) before a pair is selected,
///   [`Error::Failed`] once the component has failed, [`Error::Closed`] once the agent
///   is closed (in an [`io::Error`] for the `poll_` methods: see
///   [`Error::from_io`]).
/// - [`Self::sender`] makes a [`DatagramSender`] for another task: each sender waits for
///   a full socket with its own waker, so that several tasks sending at once never lose a
///   wake-up (a runtime's socket keeps only one send waker).
/// - As a [`futures::Stream`] of `(Vec<u8>, RecvMeta)` and a [`futures::Sink`] of
///   `Vec<u8>`, for owned buffers.
///
/// One receiving task per component: a `Datagram` or [`crate::Recv`] receiving takes the
/// component's receive waker, and two at once would take turns losing it. Receivers may
/// follow one another: what a dropped one read but did not hand out goes to the next, in
/// order. Like a [`crate::Component`], it keeps the agent alive.
///
/// ```no_run
/// # async fn run(component: librice::Component) -> std::io::Result<()> {
/// component.connected().await?;
/// let mut datagram = component.datagram();
/// let sender = datagram.sender();
/// let echo = async move {
///     let mut buf = vec![0u8; 2048];
///     loop {
///         let meta = datagram.recv(&mut buf).await?;
///         println!("{} bytes from {} on pair {}", meta.len, meta.remote, meta.pair);
///         datagram.send(&buf[..meta.len]).await?;
///     }
///     # #[allow(unreachable_code)]
///     Ok::<(), librice::Error>(())
/// };
/// # let _ = (echo, sender);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Datagram {
    reader: Reader,
    sender: DatagramSender,
    /// The receive buffer of the [`futures::Stream`] implementation, made on first use.
    buf: Vec<u8>,
}

impl Datagram {
    pub(crate) fn new(handle: Arc<Handle>, link: SendLink, reader: Reader) -> Self {
        Self {
            reader,
            sender: DatagramSender::new(handle, link),
            buf: Vec::new(),
        }
    }

    /// The component's id.
    pub fn component_id(&self) -> ComponentId {
        self.sender.link.component
    }

    /// The stream's id.
    pub fn stream_id(&self) -> StreamId {
        self.sender.link.stream
    }

    /// Receives the next datagram into `buf` and says where it came from ([`RecvMeta`]):
    /// the remote address and the candidate pair it came on. A datagram longer than `buf`
    /// is truncated to it, as UDP does: give room for the largest datagram the peer sends.
    /// The handle reads the sockets into its own ring with room for the TURN framing of
    /// relayed data and for the agent's STUN, so a short `buf` cuts only the data.
    ///
    /// `Pending` until a datagram arrives (the task is woken then); fails with
    /// [`Error::Closed`] (in the [`io::Error`]) once the agent is closed.
    pub fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<RecvMeta>> {
        Poll::Ready(match ready!(self.reader.poll_read(cx, buf)) {
            Read::InBuf(meta) => Ok(meta),
            Read::Queued(data, mut meta) => {
                let len = data.len().min(buf.len());
                buf[..len].copy_from_slice(&data[..len]);
                meta.len = len;
                Ok(meta)
            }
            Read::Closed => Err(Error::Closed.into()),
        })
    }

    /// Receives the next datagram into `buf` ([`Self::poll_recv`]).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the agent is closed.
    pub async fn recv(&mut self, buf: &mut [u8]) -> Result<RecvMeta, Error> {
        futures::future::poll_fn(|cx| self.poll_recv(cx, buf))
            .await
            .map_err(Error::from)
    }

    /// Sends one datagram on the selected pair ([`DatagramSender::poll_send`]).
    pub fn poll_send(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<()>> {
        self.sender.poll_send(cx, data)
    }

    /// Sends one datagram on the selected pair ([`DatagramSender::send`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Component::send`].
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.sender.send(data).await
    }

    /// Sends datagrams of `segment_size` bytes from `data`
    /// ([`DatagramSender::poll_send_segments`]).
    pub fn poll_send_segments(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        segment_size: usize,
    ) -> Poll<io::Result<usize>> {
        self.sender.poll_send_segments(cx, data, segment_size)
    }

    /// Sends all of `data` as datagrams of `segment_size` bytes
    /// ([`DatagramSender::send_segments`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Component::send`].
    pub async fn send_segments(&mut self, data: &[u8], segment_size: usize) -> Result<(), Error> {
        self.sender.send_segments(data, segment_size).await
    }

    /// A sender for another task, with its own waker.
    pub fn sender(&self) -> DatagramSender {
        self.sender.clone()
    }
}

impl futures::Stream for Datagram {
    type Item = (Vec<u8>, RecvMeta);

    /// The next datagram, in a buffer of its own; ends when the agent closes.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_owned(&mut this.reader, &mut this.buf, cx)
    }
}

impl futures::Sink<Vec<u8>> for Datagram {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().sender).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), Error> {
        Pin::new(&mut self.get_mut().sender).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().sender).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().sender).poll_close(cx)
    }
}

/// The next datagram for `reader` in a buffer of its own: the queued one as it is, one
/// read from a socket (into `buf`, made on first use) copied out.
pub(crate) fn poll_owned(
    reader: &mut Reader,
    buf: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<Option<(Vec<u8>, RecvMeta)>> {
    if buf.is_empty() {
        buf.resize(RECV_BUF, 0);
    }
    reader.poll_owned(cx, buf)
}

/// The sending half of a component's [`Datagram`] ([`Datagram::sender`]): cheap to clone,
/// and each clone has its own send state and waker, so give one to each task that sends.
/// It keeps the agent alive, like a [`crate::Component`].
#[derive(Debug)]
pub struct DatagramSender {
    handle: Arc<Handle>,
    link: SendLink,
    state: SendState,
    /// The datagram given to the [`futures::Sink`] and not sent yet.
    queued: Option<Vec<u8>>,
}

impl Clone for DatagramSender {
    /// Another sender on the same component, with a send state of its own.
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.handle), self.link.clone())
    }
}

impl DatagramSender {
    pub(crate) fn new(handle: Arc<Handle>, link: SendLink) -> Self {
        Self {
            handle,
            link,
            state: SendState::new(),
            queued: None,
        }
    }

    /// Sends one datagram on the selected pair: `Ready(Ok)` once the socket took it.
    /// `Pending` while the socket's send buffer is full (this task is woken when it can
    /// take more: call again with the same data). A relayed pair's datagram is wrapped for
    /// the TURN server by the agent; once that happened, a call after `Pending` sends the
    /// wrapped datagram whatever data it is given.
    ///
    /// Fails with [`Error::Agent`] (`NotConnected`) before a pair is selected,
    /// [`Error::Failed`] once the component has failed (consent lost, for example) and
    /// [`Error::Closed`] once the agent is closed, each inside the [`io::Error`]
    /// ([`Error::from_io`] takes it out); or with the socket's own error.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<()>> {
        self.poll_send_typed(cx, data).map_err(io::Error::from)
    }

    /// Sends one datagram on the selected pair.
    ///
    /// # Errors
    ///
    /// As [`crate::Component::send`].
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        futures::future::poll_fn(|cx| self.poll_send_typed(cx, data)).await
    }

    fn poll_send_typed(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Result<(), Error>> {
        poll_send(&self.handle.shared, &self.link, &mut self.state, cx, data)
    }

    /// Sends `data` as consecutive datagrams of `segment_size` bytes each (the last may be
    /// shorter) on the selected pair, as many as the socket takes at once: `Ready(Ok(n))`
    /// once `n >= 1` of them went (call again with the rest, `&data[n * segment_size..]`),
    /// `Pending` while none could. On a direct pair they go in one system call where the
    /// OS can (UDP GSO on Linux, through `quinn-udp`: what QUIC stacks do with a burst of
    /// packets of one size); otherwise one by one, as [`Self::poll_send`] sends them.
    /// Errors as [`Self::poll_send`]; a `segment_size` of 0 is taken as 1.
    pub fn poll_send_segments(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        segment_size: usize,
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        poll_send_segments(
            &self.handle.shared,
            &self.link,
            &mut self.state,
            cx,
            data,
            segment_size.max(1),
        )
        .map_err(io::Error::from)
    }

    /// Sends all of `data` as datagrams of `segment_size` bytes each (the last may be
    /// shorter), in as few system calls as the OS allows ([`Self::poll_send_segments`]).
    ///
    /// ```no_run
    /// # async fn run(mut sender: librice::DatagramSender) -> Result<(), librice::Error> {
    /// // Ten 1,200-byte packets of a burst, laid end to end.
    /// let burst = vec![0u8; 10 * 1200];
    /// sender.send_segments(&burst, 1200).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`crate::Component::send`]; the datagrams before the failing one went.
    pub async fn send_segments(&mut self, data: &[u8], segment_size: usize) -> Result<(), Error> {
        let segment_size = segment_size.max(1);
        let mut rest = data;
        while !rest.is_empty() {
            let n = futures::future::poll_fn(|cx| self.poll_send_segments(cx, rest, segment_size))
                .await
                .map_err(Error::from)?;
            rest = &rest[(n * segment_size).min(rest.len())..];
        }
        Ok(())
    }

    fn poll_queued(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(data) = self.queued.take() {
            let sent = poll_send(&self.handle.shared, &self.link, &mut self.state, cx, &data);
            if sent.is_pending() {
                self.queued = Some(data);
            }
            return sent;
        }
        Poll::Ready(Ok(()))
    }
}

impl futures::Sink<Vec<u8>> for DatagramSender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_queued(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), Error> {
        self.get_mut().queued = Some(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_queued(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_queued(cx)
    }
}
