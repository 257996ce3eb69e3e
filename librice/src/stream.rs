//! The [`Stream`] and [`Component`] handles.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use librice_proto::TransportType;
use librice_proto::agent::{
    CheckFailures, ComponentId, ComponentState, ConsentStats, FailureReason, SelectedPair, StreamId,
};
use librice_proto::candidate::{Candidate, IceCredentials};

use crate::agent::Handle;
use crate::error::Error;
use crate::interfaces::select_addresses;
use crate::runtime::{AsyncUdpSocket, send_to};
use crate::shared::{ComponentExtra, READER_LEASE, Shared, SharedTarget, State};
use crate::socket::{SocketBuffers, bind_udp};

/// A data stream of an agent. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Stream {
    handle: Arc<Handle>,
    id: StreamId,
}

impl Stream {
    pub(crate) fn new(handle: Arc<Handle>, id: StreamId) -> Self {
        Self { handle, id }
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Adds a component (ids 1, 2, ..., at most 256). Add them all before gathering: the
    /// sockets of a stream's components are bound when [`Self::gather_candidates`] is
    /// first called, so a component added later would have no candidates.
    ///
    /// # Errors
    ///
    /// - [`Error::GatheringStarted`] once [`Self::gather_candidates`] has been called on
    ///   this stream;
    /// - [`Error::Closed`] once the agent is closed;
    /// - [`Error::Agent`] with [`AgentError::TooManyComponents`] beyond 256 components.
    ///
    /// [`AgentError::TooManyComponents`]: librice_proto::agent::AgentError::TooManyComponents
    pub fn add_component(&self) -> Result<Component, Error> {
        let mut st = self.handle.shared.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        if st.streams[self.id].gather.started {
            return Err(Error::GatheringStarted);
        }
        let id = st
            .proto
            .stream_mut(self.id)
            .ok_or(Error::Closed)?
            .add_component()?;
        let target = SharedTarget::default();
        st.streams[self.id].components.push(ComponentExtra {
            target: Arc::clone(&target),
            sockets: Vec::new(),
            buffers: Vec::new(),
            lease_until: None,
            recv: Default::default(),
            recv_waker: None,
            state_wakers: Vec::new(),
            driver_reading: false,
            reader_parked: false,
            consent_until: None,
        });
        Ok(Component {
            handle: Arc::clone(&self.handle),
            stream: self.id,
            id,
            target,
        })
    }

    /// The component with this id, if it exists.
    pub fn component(&self, id: ComponentId) -> Option<Component> {
        let st = self.handle.shared.lock();
        let extra = st
            .streams
            .get(self.id)?
            .components
            .get(usize::from(id).checked_sub(1)?)?;
        Some(Component {
            handle: Arc::clone(&self.handle),
            stream: self.id,
            id,
            target: Arc::clone(&extra.target),
        })
    }

    /// Starts gathering: binds one UDP socket per selected local address per component,
    /// and returns the candidates as they are found; the stream ends when gathering is
    /// complete. An address whose socket cannot be bound is skipped (traced). A second call
    /// returns the candidates not yet taken, then ends with gathering.
    pub fn gather_candidates(&self) -> Result<GatherStream, Error> {
        let start = {
            let mut st = self.handle.shared.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            let g = &mut st.streams[self.id].gather;
            !std::mem::replace(&mut g.started, true)
        };
        if start {
            let addresses = select_addresses(&self.handle.filter)?;
            let components = self.handle.shared.lock().streams[self.id].components.len();
            let runtime = Arc::clone(&self.handle.shared.runtime);
            let mut bound: Vec<(
                ComponentId,
                SocketAddr,
                Arc<dyn AsyncUdpSocket>,
                SocketBuffers,
            )> = Vec::new();
            for c in 1..=components {
                let component = ComponentId::try_from(c).unwrap_or(ComponentId::MAX);
                for addr in &addresses {
                    match bind_udp(addr.socket_addr(0), self.handle.buffers).and_then(
                        |(s, granted)| {
                            let s = runtime.wrap_udp_socket(s)?;
                            Ok((s.local_addr()?, s, granted))
                        },
                    ) {
                        Ok((local, socket, granted)) => {
                            bound.push((component, local, socket, granted))
                        }
                        Err(e) => {
                            tracing::warn!(ip = %addr.ip, error = %e, "cannot bind a UDP socket: address skipped")
                        }
                    }
                }
            }
            let now = runtime.now();
            let mut st = self.handle.shared.lock();
            for (component, local, socket, granted) in bound {
                let added = st
                    .proto
                    .stream_mut(self.id)
                    .ok_or(Error::Closed)?
                    .add_local_socket(component, TransportType::Udp, local);
                if let Err(e) = added {
                    tracing::warn!(%local, error = %e, "socket not registered");
                    continue;
                }
                st.sockets.insert(local, Arc::clone(&socket));
                st.socket_list
                    .push((local, Arc::clone(&socket), self.id, component));
                let extra = &mut st.streams[self.id].components[usize::from(component) - 1];
                extra.sockets.push((local, socket));
                extra.buffers.push(granted);
            }
            st.proto
                .stream_mut(self.id)
                .ok_or(Error::Closed)?
                .gather_candidates(now)?;
            st.dispatch_events();
            st.wake_driver();
        }
        Ok(GatherStream {
            shared: Arc::downgrade(&self.handle.shared),
            id: self.id,
        })
    }

    /// The local credentials to signal to the peer.
    pub fn local_credentials(&self) -> IceCredentials {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .map(|s| s.local_credentials().clone())
            .expect("the stream exists while a handle does")
    }

    /// Sets the peer's credentials.
    pub fn set_remote_credentials(&self, credentials: IceCredentials) {
        let mut st = self.handle.shared.lock();
        if let Some(mut s) = st.proto.stream_mut(self.id) {
            s.set_remote_credentials(credentials);
        }
        st.wake_driver();
    }

    /// Adds a remote candidate (trickled or not).
    pub fn add_remote_candidate(&self, candidate: Candidate) -> Result<(), Error> {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .ok_or(Error::Closed)?
            .add_remote_candidate(candidate)?;
        st.wake_driver();
        Ok(())
    }

    /// The peer has no more candidates.
    pub fn end_of_remote_candidates(&self) {
        let mut st = self.handle.shared.lock();
        if let Some(mut s) = st.proto.stream_mut(self.id) {
            s.end_of_remote_candidates();
        }
        st.dispatch_events();
        st.wake_driver();
    }

    /// The local candidates found so far.
    pub fn local_candidates(&self) -> Vec<Candidate> {
        let mut st = self.handle.shared.lock();
        st.proto
            .stream_mut(self.id)
            .map(|s| s.local_candidates())
            .unwrap_or_default()
    }
}

/// The candidates of a stream as gathering finds them ([`Stream::gather_candidates`]).
///
/// It does not keep the agent alive: once every [`crate::Agent`], [`Stream`] and
/// [`Component`] handle is dropped, the agent closes and this stream ends.
#[derive(Debug)]
pub struct GatherStream {
    /// Not a handle: see [`ComponentRef`].
    shared: Weak<Shared>,
    id: StreamId,
}

impl futures::Stream for GatherStream {
    type Item = Candidate;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Candidate>> {
        let Some(shared) = self.shared.upgrade() else {
            return Poll::Ready(None);
        };
        let mut st = shared.lock();
        let g = &mut st.streams[self.id].gather;
        if let Some(c) = g.queue.pop_front() {
            return Poll::Ready(Some(c));
        }
        if g.complete {
            return Poll::Ready(None);
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A component of a stream: once connected, it sends and receives datagrams. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Component {
    handle: Arc<Handle>,
    stream: StreamId,
    id: ComponentId,
    target: SharedTarget,
}

impl Component {
    /// The component's id.
    pub fn id(&self) -> ComponentId {
        self.id
    }

    /// The stream's id.
    pub fn stream_id(&self) -> StreamId {
        self.stream
    }

    /// The state.
    pub fn state(&self) -> ComponentState {
        self.handle
            .shared
            .lock()
            .proto
            .component_state(self.stream, self.id)
            .unwrap_or(ComponentState::Failed)
    }

    /// The selected pair, once connected.
    pub fn selected_pair(&self) -> Option<SelectedPair> {
        self.handle
            .shared
            .lock()
            .proto
            .selected_pair(self.stream, self.id)
    }

    /// Why the component failed, once it has ([`ComponentState::Failed`]).
    pub fn failure_reason(&self) -> Option<FailureReason> {
        self.handle
            .shared
            .lock()
            .proto
            .failure_reason(self.stream, self.id)
    }

    /// The component's consent freshness counters (RFC 7675): consent checks sent on its
    /// selected pair and the answers that refreshed consent.
    pub fn consent_stats(&self) -> ConsentStats {
        self.handle
            .shared
            .lock()
            .proto
            .consent_stats(self.stream, self.id)
            .unwrap_or_default()
    }

    /// How many datagrams of application data the component dropped because they came
    /// from a remote address no connectivity check has verified.
    pub fn dropped_unverified(&self) -> u64 {
        self.handle
            .shared
            .lock()
            .proto
            .dropped_unverified(self.stream, self.id)
            .unwrap_or_default()
    }

    /// Resolves to the selected pair once the component connects (a `Disconnected`
    /// component has one and counts as connected), or to [`Error::Failed`] with the
    /// component's [`FailureReason`] when it fails ([`Error::Closed`] if the agent closes).
    pub fn connected(&self) -> Connected {
        Connected {
            component: self.downgrade(),
        }
    }

    /// Sends one datagram on the selected pair. Fails with
    /// [`librice_proto::agent::AgentError::NotConnected`] before a pair is selected, with
    /// [`Error::Failed`] once the component has failed (consent lost, for example) and with
    /// [`Error::Closed`] once the agent is closed.
    ///
    /// The fast path takes only the component's own small lock, not the agent's. Sends do
    /// not postpone consent checks (RFC 7675 requires them whatever the data does), nor,
    /// with consent freshness off, the keepalives (one Binding indication per 15 s by
    /// default, which is harmless).
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        let target = self
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let now = || self.handle.shared.runtime.now();
        let (socket, to, owned) = match target {
            Some(t) if t.valid_until.is_none_or(|v| now() < v) => (t.socket, t.to, None),
            _ => {
                // No direct socket target: not connected, a relayed pair whose data the
                // agent wraps for its TURN server, or consent due to expire (RFC 7675
                // §5.1), which the core decides.
                let mut st = self.handle.shared.lock();
                if st.closed {
                    return Err(Error::Closed);
                }
                let now = self.handle.shared.runtime.now();
                let t = st
                    .proto
                    .stream_mut(self.stream)
                    .and_then(|mut s| s.component_mut(self.id).map(|mut c| c.send(now, data)))
                    .ok_or(Error::Closed)??;
                let socket = st.sockets.get(&t.from).cloned().ok_or(Error::Closed)?;
                (socket, t.to, Some(t.data))
            }
        };
        let bytes = owned.as_deref().unwrap_or(data);
        send_to(socket.as_ref(), bytes, to).await?;
        Ok(())
    }

    /// The datagrams received on this component, in order. The component queues up to
    /// 4,096 datagrams for its reader and drops the oldest beyond that. A [`Recv`] takes
    /// what is queued in batches, so use one reader per component (datagrams it has taken
    /// are lost if it is dropped). Ends when the agent closes.
    pub fn recv(&self) -> Recv {
        Recv {
            component: self.downgrade(),
            taken: Default::default(),
            buf: None,
        }
    }

    /// The component's UDP sockets (one per local address, once gathering started) with
    /// the receive and send buffer sizes the operating system granted them: see
    /// [`crate::AgentBuilder::recv_buffer_size`] for what was asked and why it can be
    /// less.
    pub fn socket_buffers(&self) -> Vec<SocketBuffers> {
        let mut st = self.handle.shared.lock();
        self.extra(&mut st).buffers.clone()
    }

    fn extra<'a>(&self, st: &'a mut crate::shared::State) -> &'a mut ComponentExtra {
        &mut st.streams[self.stream].components[usize::from(self.id) - 1]
    }

    /// The component as its readers and waiters see it.
    fn downgrade(&self) -> ComponentRef {
        ComponentRef {
            shared: Arc::downgrade(&self.handle.shared),
            stream: self.stream,
            id: self.id,
        }
    }
}

/// A component as a reader or waiter ([`Recv`], [`Connected`]) refers to it: not a handle,
/// so that it does not keep the agent alive. When the last handle is dropped the agent
/// closes (which wakes the waiters, who then see it closed), and once its driver task has
/// ended the shared state goes too.
#[derive(Debug, Clone)]
struct ComponentRef {
    shared: Weak<Shared>,
    stream: StreamId,
    id: ComponentId,
}

impl ComponentRef {
    fn extra<'a>(&self, st: &'a mut State) -> &'a mut ComponentExtra {
        &mut st.streams[self.stream].components[usize::from(self.id) - 1]
    }
}

/// The future of [`Component::connected`].
///
/// It does not keep the agent alive: once every [`crate::Agent`], [`Stream`] and
/// [`Component`] handle is dropped, the agent closes and this resolves to
/// [`Error::Closed`].
#[derive(Debug)]
pub struct Connected {
    component: ComponentRef,
}

impl Future for Connected {
    type Output = Result<SelectedPair, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let c = &self.component;
        let Some(shared) = c.shared.upgrade() else {
            return Poll::Ready(Err(Error::Closed));
        };
        let mut st = shared.lock();
        if st.closed {
            return Poll::Ready(Err(Error::Closed));
        }
        match st.proto.component_state(c.stream, c.id) {
            Some(ComponentState::Connected | ComponentState::Disconnected) => {
                if let Some(pair) = st.proto.selected_pair(c.stream, c.id) {
                    return Poll::Ready(Ok(pair));
                }
            }
            Some(ComponentState::Failed) => {
                // Every failure carries its reason; a core that gave none can only have
                // failed its checks.
                let reason = st
                    .proto
                    .failure_reason(c.stream, c.id)
                    .unwrap_or(FailureReason::ChecksFailed(CheckFailures::default()));
                return Poll::Ready(Err(Error::Failed(reason)));
            }
            None => return Poll::Ready(Err(Error::Closed)),
            Some(_) => {}
        }
        let wakers = &mut c.extra(&mut st).state_wakers;
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The stream of received datagrams ([`Component::recv`]).
///
/// It does not keep the agent alive: once every [`crate::Agent`], [`Stream`] and
/// [`Component`] handle is dropped, the agent closes, its sockets close and this stream
/// ends.
#[derive(Debug)]
pub struct Recv {
    component: ComponentRef,
    /// Datagrams taken from the shared queue in one go, so that the lock is taken once per
    /// batch rather than once per datagram.
    taken: std::collections::VecDeque<Vec<u8>>,
    /// The receive buffer for reading the sockets in this task, made on first use.
    buf: Option<Vec<u8>>,
}

impl futures::Stream for Recv {
    type Item = Vec<u8>;

    /// Takes what the driver queued; otherwise reads the component's sockets in this task
    /// (STUN goes to the agent as usual), so that data does not wait for a hop through the
    /// driver task. While a reader polls, it holds a short lease on the sockets and the
    /// driver leaves them alone; when the reader stops polling, the driver takes them back
    /// within 50 ms.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        let this = &mut *self;
        if let Some(d) = this.taken.pop_front() {
            return Poll::Ready(Some(d));
        }
        let c = &this.component;
        let Some(shared) = c.shared.upgrade() else {
            return Poll::Ready(None);
        };
        let shared = &*shared;
        let sockets = {
            let mut st = shared.lock();
            if st.closed {
                return Poll::Ready(None);
            }
            let now = shared.runtime.now();
            let extra = c.extra(&mut st);
            if !extra.recv.is_empty() {
                std::mem::swap(&mut this.taken, &mut extra.recv);
                return Poll::Ready(this.taken.pop_front());
            }
            extra.recv_waker = Some(cx.waker().clone());
            let had_lease = extra.lease_until.is_some_and(|t| t > now);
            extra.lease_until = Some(now + READER_LEASE);
            let parked = extra.driver_reading;
            extra.reader_parked |= parked;
            let sockets = extra.sockets.clone();
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
            sockets
        };
        if sockets.is_empty() {
            return Poll::Pending;
        }
        let mut received = Vec::new();
        let buf = this.buf.get_or_insert_with(|| vec![0u8; 65_536]);
        for (local, socket) in &sockets {
            for _ in 0..64 {
                match socket.poll_recv_from(cx, buf) {
                    Poll::Ready(Ok((len, from))) => {
                        received.push((*local, from, buf[..len].to_vec()));
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::trace!(%local, error = %e, "receive error");
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        if received.is_empty() {
            return Poll::Pending;
        }
        let mut st = shared.lock();
        let now = shared.runtime.now();
        let mut stun = false;
        for (local, from, data) in received {
            let t = librice_proto::Transmit {
                transport: TransportType::Udp,
                from,
                to: local,
                data: data.as_slice(),
            };
            match st.proto.handle_incoming(now, t) {
                Some(rx) => {
                    let (stream, component) = (rx.stream, rx.component);
                    let payload = crate::shared::payload(&data, rx.data).unwrap_or(data);
                    if stream == c.stream && component == c.id {
                        this.taken.push_back(payload);
                    } else {
                        st.deliver(stream, component, payload);
                    }
                }
                None => stun = true,
            }
        }
        if stun {
            // Answers, state changes and events are the driver's to send and dispatch.
            st.wake_driver();
        }
        match this.taken.pop_front() {
            Some(d) => Poll::Ready(Some(d)),
            None => {
                // Only STUN came: poll again so the sockets stay watched by this task.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}
