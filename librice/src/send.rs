//! Sending: the agent's UDP sockets with one waker per sender, a component's send path
//! (the selected pair's socket and remote address, for the fast path that never takes the
//! agent's lock) and the counters of what left on that fast path.
//!
//! A runtime's socket keeps one send waker: when two tasks wait for one socket to become
//! writable, the second one's waker replaces the first one's, and the first task would
//! never be woken. So nothing here hands a caller's waker to a socket. Each [`Socket`]
//! registers its own waker with the runtime, which wakes every sender that was waiting on
//! it; each sender ([`SenderId`]) waits in its own slot (quinn's `UdpSender` has the same
//! shape: one send state per sending task).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use librice_proto::TransportType;
use librice_proto::agent::{ComponentId, StreamId};

use crate::error::Error;
use crate::runtime::AsyncUdpSocket;
use crate::shared::Shared;
use crate::tcp::QueueRefused;

/// Locks `m`, taking over a poisoned lock: what it guards is plain data.
pub(crate) fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One sender's identity: the slot it waits in on a socket that would block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SenderId(u64);

impl SenderId {
    /// A new identity, never handed out before.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The senders waiting for one socket to become writable, each with its own waker. It is
/// the waker the socket itself holds: waking it wakes them all.
#[derive(Debug, Default)]
struct SendWaiters {
    waiting: Mutex<Vec<(SenderId, Waker)>>,
}

impl SendWaiters {
    fn register(&self, id: SenderId, waker: &Waker) {
        let mut waiting = relock(&self.waiting);
        match waiting.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => *w = waker.clone(),
            None => waiting.push((id, waker.clone())),
        }
    }
}

impl Wake for SendWaiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock: a waker may do anything, even send on this socket.
        let waiting = std::mem::take(&mut *relock(&self.waiting));
        for (_, w) in waiting {
            w.wake();
        }
    }
}

/// One of the agent's UDP sockets, bound to `local`.
pub(crate) struct Socket {
    io: Arc<dyn AsyncUdpSocket>,
    local: SocketAddr,
    waiters: Arc<SendWaiters>,
    /// The waker the runtime's socket gets for sends: it wakes `waiters`.
    send_waker: Waker,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("local", &self.local)
            .finish()
    }
}

impl Socket {
    pub fn new(io: Arc<dyn AsyncUdpSocket>, local: SocketAddr) -> Self {
        let waiters = Arc::new(SendWaiters::default());
        Self {
            io,
            local,
            send_waker: Waker::from(Arc::clone(&waiters)),
            waiters,
        }
    }

    /// The address the socket is bound to.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Receives one datagram into `buf`. A socket has one reader at a time (the driver, or
    /// the reader holding its component's lease), so the runtime's one receive waker is
    /// enough.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io.poll_recv_from(cx, buf)
    }

    /// Receives a batch of datagrams ([`AsyncUdpSocket::poll_recv_batch`]), under the same
    /// one-reader rule as [`Self::poll_recv_from`].
    pub fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [std::io::IoSliceMut<'_>],
        info: &mut [crate::runtime::RecvInfo],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_recv_batch(cx, bufs, info)
    }

    /// Sends one datagram for sender `id`: when the socket would block, `cx`'s waker waits
    /// in `id`'s own slot, so that no other sender's wait replaces it.
    pub fn poll_send_to(
        &self,
        id: SenderId,
        cx: &mut Context<'_>,
        buf: &[u8],
        to: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut socket_cx = Context::from_waker(&self.send_waker);
        if let Poll::Ready(r) = self.io.poll_send_to(&mut socket_cx, buf, to) {
            return Poll::Ready(r);
        }
        self.waiters.register(id, cx.waker());
        // The socket may have become writable (and woken the waiters) between the attempt
        // and the registration: try once more, so that such a wake-up is not lost.
        self.io.poll_send_to(&mut socket_cx, buf, to)
    }
}

impl Socket {
    /// Sends `data` as datagrams of `segment_size` bytes for sender `id`
    /// ([`AsyncUdpSocket::poll_send_segments`]: how many went), waiting in `id`'s own slot
    /// as [`Self::poll_send_to`] does.
    pub fn poll_send_segments(
        &self,
        id: SenderId,
        cx: &mut Context<'_>,
        data: &[u8],
        segment_size: usize,
        to: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut socket_cx = Context::from_waker(&self.send_waker);
        if let Poll::Ready(r) = self
            .io
            .poll_send_segments(&mut socket_cx, data, segment_size, to)
        {
            return Poll::Ready(r);
        }
        self.waiters.register(id, cx.waker());
        self.io
            .poll_send_segments(&mut socket_cx, data, segment_size, to)
    }
}

/// Where a component's data goes on the fast path.
#[derive(Debug, Clone)]
pub(crate) struct SendTarget {
    pub socket: Arc<Socket>,
    pub to: SocketAddr,
    /// When consent expires (RFC 7675 §5.1), unless the core refreshed it since: from then
    /// on a send goes to the core, which fails it if consent has really expired. `None`
    /// with consent freshness off.
    pub valid_until: Option<Instant>,
}

/// What the fast path sent since the counts were last folded into the core
/// ([`librice_proto::agent::Agent::record_sent`]).
#[derive(Debug, Default)]
struct SentCounts {
    packets: u64,
    bytes: u64,
    /// When the last of them was sent.
    last: Option<Instant>,
}

/// What [`SendPath`]'s lock guards: the target, and the counts of what went to it.
#[derive(Debug, Default)]
struct PathState {
    target: Option<SendTarget>,
    sent: SentCounts,
}

/// A component's send path, shared by its handles and the agent: kept apart from the
/// agent's lock, so that a send takes only this small lock, which the driver touches only
/// when the selected pair changes, its consent is refreshed or the counts are folded into
/// the core. A send holds it across the (non-blocking) system call, so that the target
/// and its counts need no copy and no atomics.
#[derive(Debug, Default)]
pub(crate) struct SendPath {
    state: Mutex<PathState>,
}

impl SendPath {
    /// Where data goes from now on (`None`: through the core, or nowhere).
    pub fn set(&self, target: Option<SendTarget>) {
        relock(&self.state).target = target;
    }

    /// Moves the consent expiry of the current target, if there is one.
    pub fn set_valid_until(&self, valid_until: Option<Instant>) {
        if let Some(t) = relock(&self.state).target.as_mut() {
            t.valid_until = valid_until;
        }
    }

    /// Takes the counts: (packets, bytes, when the last was sent), `None` if nothing was
    /// sent since the last call.
    pub fn take_sent(&self) -> Option<(u64, u64, Instant)> {
        let sent = std::mem::take(&mut relock(&self.state).sent);
        Some((sent.packets, sent.bytes, sent.last?))
    }

    /// Sends `data` to the target, if there is one whose consent holds at `now`, and
    /// counts it: `None` when there is none (the core decides then).
    fn try_send(
        &self,
        now: Instant,
        id: SenderId,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Option<Poll<Result<(), Error>>> {
        let mut state = relock(&self.state);
        let t = state
            .target
            .as_ref()
            .filter(|t| t.valid_until.is_none_or(|v| now < v))?;
        let sent = t.socket.poll_send_to(id, cx, data, t.to);
        Some(match sent {
            Poll::Ready(Ok(_)) => {
                let counts = &mut state.sent;
                counts.packets += 1;
                counts.bytes += data.len() as u64;
                counts.last = Some(now);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Io(e))),
            Poll::Pending => Poll::Pending,
        })
    }
}

impl SendPath {
    /// [`Self::try_send`] for datagrams of `segment_size` bytes in `data`: how many went.
    fn try_send_segments(
        &self,
        now: Instant,
        id: SenderId,
        cx: &mut Context<'_>,
        data: &[u8],
        segment_size: usize,
    ) -> Option<Poll<Result<usize, Error>>> {
        let mut state = relock(&self.state);
        let t = state
            .target
            .as_ref()
            .filter(|t| t.valid_until.is_none_or(|v| now < v))?;
        let sent = t
            .socket
            .poll_send_segments(id, cx, data, segment_size, t.to);
        Some(match sent {
            Poll::Ready(Ok(n)) => {
                let counts = &mut state.sent;
                counts.packets += n as u64;
                counts.bytes += (n * segment_size).min(data.len()) as u64;
                counts.last = Some(now);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::Io(e))),
            Poll::Pending => Poll::Pending,
        })
    }
}

/// A component as a sender sees it.
#[derive(Debug, Clone)]
pub(crate) struct SendLink {
    pub stream: StreamId,
    pub component: ComponentId,
    pub path: Arc<SendPath>,
}

/// One sender's state: its waker slot, and a datagram the core made that waits for its
/// socket.
#[derive(Debug)]
pub(crate) struct SendState {
    id: SenderId,
    pending: Option<(Arc<Socket>, SocketAddr, Vec<u8>)>,
}

impl SendState {
    pub fn new() -> Self {
        Self {
            id: SenderId::new(),
            pending: None,
        }
    }
}

/// Sends `data` on the link's selected pair. The fast path takes only the component's
/// send path lock; without a direct target (not connected, a relayed pair whose data the
/// core wraps for its TURN server, consent about to expire) the core makes the datagram,
/// and decides (RFC 7675 §5.1). Once this returned `Pending` with a datagram the core
/// made, the next call sends that datagram, whatever `data` it is given.
pub(crate) fn poll_send(
    shared: &Shared,
    link: &SendLink,
    state: &mut SendState,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<Result<(), Error>> {
    if state.pending.is_none() {
        let now = shared.runtime.now();
        if let Some(sent) = link.path.try_send(now, state.id, cx, data) {
            if let Poll::Ready(Err(Error::Io(e))) = &sent {
                crate::netwatch::on_send_error(shared, e);
            }
            return sent;
        }
        let mut st = shared.lock();
        if st.closed {
            return Poll::Ready(Err(Error::Closed));
        }
        let t = match st.proto.stream_mut(link.stream).and_then(|mut s| {
            s.component_mut(link.component)
                .map(|mut c| c.send(now, data))
        }) {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Poll::Ready(Err(e.into())),
            None => return Poll::Ready(Err(Error::Closed)),
        };
        if t.transport == TransportType::Tcp {
            // TURN over TCP: the connection's task writes it.
            return Poll::Ready(
                match st.registry.tcp(t.from, t.to).map(|w| w.send(t.data)) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(QueueRefused::Full)) => {
                        // As a congested UDP path would: the datagram is lost, not the path.
                        tracing::debug!(to = %t.to, "TCP connection's queue full: datagram dropped");
                        Ok(())
                    }
                    Some(Err(QueueRefused::Closed)) | None => Err(Error::Closed),
                },
            );
        }
        let Some(socket) = st.registry.udp(t.from).cloned() else {
            return Poll::Ready(Err(Error::Closed));
        };
        state.pending = Some((socket, t.to, t.data));
    }
    let Some((socket, to, bytes)) = &state.pending else {
        return Poll::Ready(Ok(()));
    };
    let sent = std::task::ready!(socket.poll_send_to(state.id, cx, bytes, *to));
    state.pending = None;
    Poll::Ready(sent.map(|_| ()).map_err(Error::Io))
}

/// Sends some of the datagrams of `segment_size` bytes in `data` on the link's selected
/// pair: how many went (at least 1 when `Ready(Ok)`). On the fast path they go in one
/// system call where the OS can (UDP GSO); otherwise (a datagram the core made waiting for
/// its socket, a relayed pair, consent about to expire) one, as [`poll_send`] sends it.
pub(crate) fn poll_send_segments(
    shared: &Shared,
    link: &SendLink,
    state: &mut SendState,
    cx: &mut Context<'_>,
    data: &[u8],
    segment_size: usize,
) -> Poll<Result<usize, Error>> {
    if state.pending.is_none() {
        let now = shared.runtime.now();
        if let Some(sent) = link
            .path
            .try_send_segments(now, state.id, cx, data, segment_size)
        {
            if let Poll::Ready(Err(Error::Io(e))) = &sent {
                crate::netwatch::on_send_error(shared, e);
            }
            return sent;
        }
    }
    let first = &data[..segment_size.min(data.len())];
    poll_send(shared, link, state, cx, first).map_ok(|()| 1)
}
