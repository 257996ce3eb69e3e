//! The one ingest path: reading the agent's sockets, feeding what arrives into the sans-IO
//! core, delivering the application data to its component, and flushing what the core
//! wants sent and told. Three kinds of task run it:
//!
//! - the driver ([`crate::driver`]) reads a batch from every socket no reader holds, feeds
//!   it in and flushes ([`State::flush`]);
//! - a component's reader ([`Reader`], behind [`crate::Recv`] and [`crate::Datagram`])
//!   reads its own component's sockets in its own task, under a lease the driver respects,
//!   straight into the caller's buffer; STUN that arrives there goes to the core as well,
//!   and the driver is woken to flush;
//! - a TCP connection's task ([`crate::tcp`]) feeds the frames it reads, and wakes the
//!   driver to flush.
//!
//! Ordering: a reader never reads its sockets while the driver holds datagrams it read
//! from them and has not delivered yet (`ComponentExtra::driver_reading`), so that newer
//! datagrams never overtake older ones.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use librice_proto::agent::{ComponentId, PairId, StreamId};
use librice_proto::{Transmit, TransportType};

use crate::datagram::RecvMeta;
use crate::recv_ring::RecvRing;
use crate::send::Socket;
use crate::shared::{ComponentRef, RECV_QUEUE_LIMIT, Shared, State};

/// Datagrams read from one socket per turn before moving on, so that a busy socket
/// cannot starve the others.
pub(crate) const RECV_BATCH: usize = 64;

/// The largest datagram read by the driver.
pub(crate) const RECV_BUF: usize = 65_536;

/// How long a reader that polled its component's sockets keeps them: the driver leaves
/// those sockets alone until then.
pub(crate) const READER_LEASE: Duration = Duration::from_millis(50);

/// A datagram the driver read outside the lock, to feed in under it.
#[derive(Debug)]
pub(crate) struct Received {
    pub local: SocketAddr,
    pub from: SocketAddr,
    pub data: Vec<u8>,
}

/// A datagram to send, from one of the agent's sockets.
pub(crate) type Outgoing = (Arc<Socket>, Transmit<Vec<u8>>);

/// A connection the core asked for: (request id, local, remote, over TLS).
pub(crate) use crate::tcp::TcpRequest;

/// Application data the core let through: for which component, from whom, on which
/// candidate pair, and where it lies in the datagram (data relayed through TURN arrives
/// inside a Data indication or ChannelData message).
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub stream: StreamId,
    pub component: ComponentId,
    pub from: SocketAddr,
    pub pair: PairId,
    pub range: Range<usize>,
}

/// Reads up to [`RECV_BATCH`] datagrams from each of `sockets`, starting with the one at
/// `first`, into `out`. Returns true if a socket reported an error (which may have changed
/// nothing, but is worth another turn).
pub(crate) fn read_batch(
    cx: &mut Context<'_>,
    sockets: &[Arc<Socket>],
    first: usize,
    buf: &mut [u8],
    out: &mut Vec<Received>,
) -> bool {
    let n = sockets.len();
    let mut error = false;
    for k in 0..n {
        let socket = &sockets[(first + k) % n];
        for _ in 0..RECV_BATCH {
            match socket.poll_recv_from(cx, buf) {
                Poll::Ready(Ok((len, from))) => out.push(Received {
                    local: socket.local(),
                    from,
                    data: buf[..len].to_vec(),
                }),
                Poll::Ready(Err(e)) => {
                    // E.g. ICMP port unreachable surfacing on Linux: not fatal.
                    tracing::trace!(local = %socket.local(), error = %e, "receive error");
                    error = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
    }
    error
}

/// A datagram that arrived on UDP socket `local` from `from`.
fn udp(local: SocketAddr, from: SocketAddr, data: &[u8]) -> Transmit<&[u8]> {
    Transmit {
        transport: TransportType::Udp,
        from,
        to: local,
        data,
    }
}

impl State {
    /// Feeds one received datagram (or, over TCP, one frame) into the core: the one place
    /// that does. `t` is what arrived: `t.from` the sender, `t.to` the local socket.
    /// Returns where the application data lies, if it is some.
    pub fn ingest(&mut self, now: Instant, t: Transmit<&[u8]>) -> Option<Incoming> {
        let data = t.data;
        if librice_proto::stun::looks_like_stun(data) {
            // A check may change the selected pair: what the fast path sent so far went
            // on the current one.
            self.fold_sent();
        }
        let rx = self.proto.handle_incoming(now, t)?;
        let start = (rx.data.as_ptr() as usize).wrapping_sub(data.as_ptr() as usize);
        let range = match start.checked_add(rx.data.len()) {
            Some(end) if end <= data.len() => start..end,
            // Data that is not inside the datagram (an empty slice from elsewhere).
            _ => 0..0,
        };
        Some(Incoming {
            stream: rx.stream,
            component: rx.component,
            from: rx.from,
            pair: rx.pair,
            range,
        })
    }

    /// [`Self::ingest`] and queue the data, copied, for its component. Returns true if the
    /// core kept the datagram (STUN, or dropped), which the driver should flush.
    pub fn ingest_copy(&mut self, now: Instant, t: Transmit<&[u8]>) -> bool {
        let (data, local, transport) = (t.data, t.to, t.transport);
        let Some(inc) = self.ingest(now, t) else {
            return true;
        };
        let payload = data.get(inc.range.clone()).unwrap_or_default().to_vec();
        self.deliver(&inc, payload, local, transport);
        false
    }

    /// [`Self::ingest`] a datagram the driver read, and queue its data (in the same
    /// buffer) for its component.
    pub fn ingest_owned(&mut self, now: Instant, received: Received) {
        let Received {
            local,
            from,
            mut data,
        } = received;
        if let Some(inc) = self.ingest(now, udp(local, from, &data)) {
            data.truncate(inc.range.end);
            data.drain(..inc.range.start);
            self.deliver(&inc, data, local, TransportType::Udp);
        }
    }

    /// Queues data received for a component and wakes its reader.
    fn deliver(
        &mut self,
        inc: &Incoming,
        data: Vec<u8>,
        local: SocketAddr,
        transport: TransportType,
    ) {
        let (stream, component) = (inc.stream, inc.component);
        let Some(c) = self.component_extra(stream, component) else {
            return;
        };
        if c.recv.len() >= RECV_QUEUE_LIMIT {
            c.recv.pop_front();
            tracing::debug!(
                %stream,
                %component,
                "receive queue full: oldest datagram dropped"
            );
        }
        let meta = RecvMeta::new(data.len(), inc, local, transport);
        c.recv.push_back((data, meta));
        if let Some(w) = c.recv_waker.take() {
            w.wake();
        }
    }

    /// After input: runs a due timer, routes what the core wants sent (UDP datagrams into
    /// `out`, TCP frames to their connection's writer), hands the events out, copies the
    /// consent expiries to the send paths, lets the readers read again, and returns the
    /// TCP connections the core asked for.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Outgoing>) -> Vec<TcpRequest> {
        self.fold_sent();
        if self.proto.poll_timeout().is_some_and(|t| t <= now) {
            self.proto.handle_timeout(now);
        }
        while let Some(t) = self.proto.poll_transmit(now) {
            if t.transport == TransportType::Tcp {
                match self.registry.tcp(t.from, t.to) {
                    Some(writer) => {
                        if let Err(e) = writer.send(t.data) {
                            tracing::debug!(to = %t.to, reason = ?e, "TCP packet not queued: dropped");
                        }
                    }
                    None => tracing::debug!(to = %t.to, "no TCP connection: dropped"),
                }
                continue;
            }
            match self.registry.udp(t.from) {
                Some(socket) => out.push((Arc::clone(socket), t)),
                None => tracing::debug!(from = %t.from, "transmit from an unknown socket dropped"),
            }
        }
        self.dispatch_events();
        self.sync_consent();
        self.driver_read_done();
        std::mem::take(&mut self.tcp_requests)
    }

    /// The sockets the driver reads now (those no reader holds a lease on) into `out`, and
    /// the earliest lease expiry. Marks the components of the sockets taken as being read
    /// by the driver until [`Self::driver_read_done`].
    pub fn driver_sockets(&mut self, now: Instant, out: &mut Vec<Arc<Socket>>) -> Option<Instant> {
        let mut leases: Option<Instant> = None;
        for e in self.registry.udp_entries() {
            let Some(c) = self
                .streams
                .get_mut(e.stream.index())
                .and_then(|s| s.components.get_mut(e.component.index()))
            else {
                continue;
            };
            match c.lease_until.filter(|t| *t > now) {
                Some(t) => leases = Some(leases.map_or(t, |l| l.min(t))),
                None => {
                    c.driver_reading = true;
                    out.push(Arc::clone(&e.socket));
                }
            }
        }
        leases
    }

    /// The driver delivered what it read: readers may read their sockets again.
    fn driver_read_done(&mut self) {
        for c in self
            .streams
            .iter_mut()
            .flat_map(|s| s.components.iter_mut())
        {
            c.driver_reading = false;
            if std::mem::take(&mut c.reader_parked)
                && let Some(w) = c.recv_waker.take()
            {
                w.wake();
            }
        }
    }
}

/// What a [`Reader`] got.
#[derive(Debug)]
pub(crate) enum Read {
    /// Data the driver (or a TCP task) queued.
    Queued(Vec<u8>, RecvMeta),
    /// Data read into the caller's buffer, at its start.
    InBuf(RecvMeta),
    /// The agent is closed.
    Closed,
}

/// A component's reader: takes what was queued for the component, else reads the
/// component's sockets in its own task under a lease (the reader fast path), so that data
/// does not wait for a hop through the driver task. While a reader polls, it holds a short
/// lease on the sockets and the driver leaves them alone; when the reader stops polling,
/// the driver takes them back within [`READER_LEASE`]. One reader per component: a
/// second one would take the first one's receive waker.
#[derive(Debug)]
pub(crate) struct Reader {
    component: ComponentRef,
    /// The component's sockets, as of registry generation `generation`: not owned, so that
    /// an idle reader does not keep them open after the agent closes.
    sockets: Vec<Weak<Socket>>,
    generation: Option<u64>,
    /// The socket to read first.
    next: usize,
    /// Until then this reader's lease surely still holds (it was renewed less than half a
    /// lease ago), so the driver is not reading the sockets: see [`Self::poll_fast`].
    lease_fresh_until: Option<Instant>,
    /// Datagrams read in one batch for [`Self::poll_owned`], or queued for the component
    /// before a batch of the ring, oldest first: handed out before the ring's.
    batch: std::collections::VecDeque<(Vec<u8>, RecvMeta)>,
    /// Datagrams read in one batch for [`Self::poll_read`] into the caller's buffer, made
    /// on first use.
    ring: Option<RecvRing>,
}

impl Drop for Reader {
    /// Hands what the reader read but did not hand out back to the component, oldest
    /// first, ahead of what was queued since, so that the next reader (a new handle, or
    /// the next `Component::recv`) gets it rather than it being lost with this one. The
    /// lease is left to run out: a reader that comes within it reads the sockets at once,
    /// and otherwise the driver takes them back then (answering STUN that waited in them
    /// at most [`READER_LEASE`] late).
    fn drop(&mut self) {
        let mut unread = std::mem::take(&mut self.batch);
        if let Some(ring) = self.ring.as_mut() {
            while let Some(d) = ring.pop_owned() {
                unread.push_back(d);
            }
        }
        if unread.is_empty() {
            return;
        }
        let Some(shared) = self.component.shared.upgrade() else {
            return;
        };
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let (stream, id) = (self.component.stream, self.component.id);
        let Some(c) = st.component_extra(stream, id) else {
            return;
        };
        unread.extend(c.recv.drain(..));
        let excess = unread.len().saturating_sub(RECV_QUEUE_LIMIT);
        if excess > 0 {
            tracing::debug!(%stream, %id, excess, "receive queue full: oldest datagrams dropped");
        }
        c.recv = unread.split_off(excess);
        if let Some(w) = c.recv_waker.take() {
            w.wake();
        }
    }
}

/// What the reader's fast path found.
enum Fast {
    Read(Read),
    /// Every socket would block, and each will wake this task when a datagram arrives.
    Empty,
    /// The fast path cannot tell: take the full path.
    Unsure,
}

impl Reader {
    pub fn new(component: ComponentRef) -> Self {
        Self {
            component,
            sockets: Vec::new(),
            generation: None,
            next: 0,
            lease_fresh_until: None,
            batch: Default::default(),
            ring: None,
        }
    }

    /// The next datagram for the component. `buf` receives datagrams read from the
    /// sockets; one that does not fit is truncated, as UDP does.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Read> {
        if let Some((data, meta)) = self.batch.pop_front() {
            return Poll::Ready(Read::Queued(data, meta));
        }
        if let Some(meta) = self.ring.as_mut().and_then(|r| r.pop_into(buf)) {
            return Poll::Ready(Read::InBuf(meta));
        }
        let (stream, id) = (self.component.stream, self.component.id);
        let Some(shared) = self.component.shared.upgrade() else {
            self.sockets.clear();
            return Poll::Ready(Read::Closed);
        };
        let mut sockets_empty = false;
        if self
            .lease_fresh_until
            .is_some_and(|t| shared.runtime.now() < t)
        {
            match self.poll_fast(cx, buf, &shared) {
                Fast::Read(read) => return Poll::Ready(read),
                Fast::Empty => sockets_empty = true,
                Fast::Unsure => {}
            }
        }
        self.lease_fresh_until = None;
        {
            let mut st = shared.lock();
            if st.closed {
                self.sockets.clear();
                return Poll::Ready(Read::Closed);
            }
            let now = shared.runtime.now();
            let on_endpoint = st.endpoint.is_some();
            let generation = st.registry.generation();
            if self.generation != Some(generation) {
                sockets_empty = false;
                self.sockets = st
                    .registry
                    .component_udp(stream, id)
                    .map(|e| Arc::downgrade(&e.socket))
                    .collect();
                self.generation = Some(generation);
            }
            let Some(c) = st.component_extra(stream, id) else {
                return Poll::Ready(Read::Closed);
            };
            if let Some((data, meta)) = c.recv.pop_front() {
                return Poll::Ready(Read::Queued(data, meta));
            }
            if !c
                .recv_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                c.recv_waker = Some(cx.waker().clone());
            }
            if on_endpoint {
                // The endpoint's task reads its shared sockets and queues the data.
                return Poll::Pending;
            }
            let had_lease = c.lease_until.is_some_and(|t| t > now);
            c.lease_until = Some(now + READER_LEASE);
            let parked = c.driver_reading;
            c.reader_parked |= parked;
            if !had_lease {
                // Let the driver learn of the lease, so that it takes the sockets back when
                // it runs out.
                st.wake_driver();
            }
            if parked {
                // The driver holds datagrams it read before the lease: they go first. It
                // wakes this reader once they are queued.
                return Poll::Pending;
            }
            self.lease_fresh_until = Some(now + READER_LEASE / 2);
            if sockets_empty && had_lease {
                // The fast path just found every socket empty, and each will wake this
                // task: reading them again would only fail again.
                return Poll::Pending;
            }
        }
        // The lease is fresh now: read as the fast path does.
        match self.poll_fast(cx, buf, &shared) {
            Fast::Read(read) => Poll::Ready(read),
            Fast::Empty => Poll::Pending,
            Fast::Unsure => {
                // Only STUN came, or an error: come back, so that the sockets stay watched
                // by this task.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl Reader {
    /// The reader's fast path, while its lease is fresh (it was renewed less than half a
    /// lease ago), so that the driver leaves the sockets alone and what they hold is the
    /// component's next data: a batch is read from the first socket that has one
    /// ([`RecvRing::fill`]), fed to the core under one lock (which also renews the lease,
    /// keeps the receive waker and hands over anything queued before it, older data going
    /// first), and the component's data is handed out of the ring, the first one now.
    fn poll_fast(&mut self, cx: &mut Context<'_>, buf: &mut [u8], shared: &Shared) -> Fast {
        let (stream, id) = (self.component.stream, self.component.id);
        let n = self.sockets.len();
        let mut empty = true;
        for k in 0..n {
            let i = (self.next + k) % n;
            let Some(socket) = self.sockets[i].upgrade() else {
                // Closed: the registry's next generation drops it from the list.
                continue;
            };
            let ring = self.ring.get_or_insert_with(RecvRing::new);
            let got = match ring.fill(cx, &socket, buf.len()) {
                Poll::Ready(Ok(got)) => got,
                Poll::Ready(Err(e)) => {
                    tracing::trace!(local = %socket.local(), error = %e, "receive error");
                    empty = false;
                    continue;
                }
                Poll::Pending => continue,
            };
            empty = false;
            let local = socket.local();
            let mut st = shared.lock();
            if st.closed {
                self.sockets.clear();
                return Fast::Read(Read::Closed);
            }
            let now = shared.runtime.now();
            if !self.renew_lease(&mut st, now, cx) {
                return Fast::Unsure;
            }
            if let Some(c) = st.component_extra(stream, id) {
                self.batch.extend(c.recv.drain(..));
            }
            let Some(ring) = self.ring.as_mut() else {
                return Fast::Unsure;
            };
            let mut stun = false;
            for j in 0..got {
                let (data, from) = ring.datagram(j);
                match st.ingest(now, udp(local, from, data)) {
                    Some(inc) if inc.stream == stream && inc.component == id => {
                        let meta = RecvMeta::new(inc.range.len(), &inc, local, TransportType::Udp);
                        ring.keep(j, inc.range, meta);
                    }
                    Some(inc) => {
                        let payload = data.get(inc.range.clone()).unwrap_or_default().to_vec();
                        st.deliver(&inc, payload, local, TransportType::Udp);
                    }
                    None => stun = true,
                }
            }
            if stun {
                // Answers, state changes and events are the driver's to flush.
                st.wake_driver();
            }
            drop(st);
            self.next = i;
            if let Some((data, meta)) = self.batch.pop_front() {
                return Fast::Read(Read::Queued(data, meta));
            }
            if let Some(meta) = ring.pop_into(buf) {
                return Fast::Read(Read::InBuf(meta));
            }
        }
        if empty { Fast::Empty } else { Fast::Unsure }
    }
}

impl Reader {
    /// The next datagram in a buffer of its own (`None` once the agent is closed), for
    /// readers that want owned buffers anyway. While the lease is fresh it reads up to a
    /// batch from the sockets first and feeds them all to the core under one lock, so the
    /// lock is taken once per batch rather than once per datagram. `buf` is scratch space.
    pub fn poll_owned(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Option<(Vec<u8>, RecvMeta)>> {
        if let Some(d) = self.batch.pop_front() {
            return Poll::Ready(Some(d));
        }
        if let Some(d) = self.ring.as_mut().and_then(RecvRing::pop_owned) {
            // Left by `poll_read`: older than anything still in the sockets.
            return Poll::Ready(Some(d));
        }
        if let Some(shared) = self.component.shared.upgrade()
            && self
                .lease_fresh_until
                .is_some_and(|t| shared.runtime.now() < t)
        {
            self.fill_batch(cx, buf, &shared);
            if let Some(d) = self.batch.pop_front() {
                return Poll::Ready(Some(d));
            }
        }
        Poll::Ready(match std::task::ready!(self.poll_read(cx, buf)) {
            Read::InBuf(meta) => Some((buf[..meta.len].to_vec(), meta)),
            Read::Queued(data, meta) => Some((data, meta)),
            Read::Closed => None,
        })
    }

    /// Reads up to [`RECV_BATCH`] datagrams from the sockets, then under one lock feeds them
    /// to the core, renews the lease, and queues the component's data in `self.batch`
    /// after anything queued for it before (older data first). Only while the lease is
    /// fresh (see [`Self::poll_fast`]).
    fn fill_batch(&mut self, cx: &mut Context<'_>, buf: &mut [u8], shared: &Shared) {
        let (stream, id) = (self.component.stream, self.component.id);
        let mut read: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
        let n = self.sockets.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let Some(socket) = self.sockets[i].upgrade() else {
                continue;
            };
            while read.len() < RECV_BATCH {
                match socket.poll_recv_from(cx, buf) {
                    Poll::Ready(Ok((len, from))) => {
                        read.push((socket.local(), from, buf[..len].to_vec()));
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::trace!(local = %socket.local(), error = %e, "receive error");
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        if read.is_empty() {
            return;
        }
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let now = shared.runtime.now();
        if !self.renew_lease(&mut st, now, cx) {
            return;
        }
        if let Some(c) = st.component_extra(stream, id) {
            self.batch.extend(c.recv.drain(..));
        }
        let mut stun = false;
        for (local, from, mut data) in read {
            match st.ingest(now, udp(local, from, &data)) {
                Some(inc) if inc.stream == stream && inc.component == id => {
                    let meta = RecvMeta::new(inc.range.len(), &inc, local, TransportType::Udp);
                    data.truncate(inc.range.end);
                    data.drain(..inc.range.start);
                    self.batch.push_back((data, meta));
                }
                Some(inc) => {
                    let payload = data[inc.range.clone()].to_vec();
                    st.deliver(&inc, payload, local, TransportType::Udp);
                }
                None => stun = true,
            }
        }
        if stun {
            // Answers, state changes and events are the driver's to flush.
            st.wake_driver();
        }
    }
}

impl Reader {
    /// Under the agent's lock, after reading on the fast path: renews the lease (fresh for
    /// half of it, unless the sockets changed, when the next turn takes the full path and
    /// the new list) and keeps the receive waker. False if the component is gone.
    fn renew_lease(&mut self, st: &mut State, now: Instant, cx: &Context<'_>) -> bool {
        let (stream, id) = (self.component.stream, self.component.id);
        self.lease_fresh_until =
            (self.generation == Some(st.registry.generation())).then_some(now + READER_LEASE / 2);
        let Some(c) = st.component_extra(stream, id) else {
            return false;
        };
        c.lease_until = Some(now + READER_LEASE);
        if !c
            .recv_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            c.recv_waker = Some(cx.waker().clone());
        }
        true
    }
}
