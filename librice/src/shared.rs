//! The state the handles and the driver share, behind one mutex that is held only briefly
//! and never across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

pub(crate) use librice_proto::agent::AgentEvent;
use librice_proto::agent::{self as proto, ComponentId, SelectedPair, StreamId};
use librice_proto::candidate::Candidate;

use crate::runtime::{AsyncUdpSocket, Runtime};

/// The application data of a received datagram: `None` when it is the whole datagram (the
/// buffer can be handed over as it is), else a copy of the part the agent unwrapped (data
/// relayed through TURN arrives inside a Data indication or ChannelData message).
pub(crate) fn payload(datagram: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    (data.len() != datagram.len()).then(|| data.to_vec())
}

/// How many received datagrams a component queues for its reader before dropping the
/// oldest.
pub(crate) const RECV_QUEUE_LIMIT: usize = 4096;

/// How many events a subscriber queues before dropping the oldest.
pub(crate) const EVENT_QUEUE_LIMIT: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Subscriber {
    pub queue: VecDeque<AgentEvent>,
    pub waker: Option<Waker>,
    pub closed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct GatherState {
    pub started: bool,
    pub queue: VecDeque<Candidate>,
    pub complete: bool,
    pub waker: Option<Waker>,
}

/// Where a component's data goes: kept apart from the main lock so that sending takes only
/// this small lock, which the driver touches only when the selected pair changes or its
/// consent is refreshed.
#[derive(Debug, Clone)]
pub(crate) struct SendTarget {
    pub socket: Arc<dyn AsyncUdpSocket>,
    pub to: SocketAddr,
    /// When consent expires (RFC 7675 §5.1), unless the core refreshed it since: from then
    /// on a send goes to the core, which fails it if consent has really expired. `None`
    /// with consent freshness off.
    pub valid_until: Option<std::time::Instant>,
}

pub(crate) type SharedTarget = Arc<Mutex<Option<SendTarget>>>;

/// A local socket and its address.
pub(crate) type SocketRef = (SocketAddr, Arc<dyn AsyncUdpSocket>);

/// How long a reader that polled its component's sockets keeps them: the driver leaves
/// those sockets alone until then (see `Recv`).
pub(crate) const READER_LEASE: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug)]
pub(crate) struct ComponentExtra {
    pub target: SharedTarget,
    /// The component's sockets (also in `State::socket_list`).
    pub sockets: Vec<SocketRef>,
    /// The buffer sizes the system granted each of them.
    pub buffers: Vec<crate::socket::SocketBuffers>,
    /// While in the future, a `Recv` reads the sockets itself.
    pub lease_until: Option<std::time::Instant>,
    pub recv: VecDeque<Vec<u8>>,
    pub recv_waker: Option<Waker>,
    pub state_wakers: Vec<Waker>,
    /// The driver has read (or is reading) this component's sockets outside the lock and
    /// has not delivered what it read yet: a reader must not read the sockets itself
    /// meanwhile, or it could deliver newer datagrams before older ones.
    pub driver_reading: bool,
    /// A reader is waiting for the driver to deliver (see `driver_reading`).
    pub reader_parked: bool,
    /// The consent expiry last copied into `target`.
    pub consent_until: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct StreamExtra {
    pub gather: GatherState,
    pub components: Vec<ComponentExtra>,
}

pub(crate) struct State {
    pub proto: proto::Agent,
    /// Local sockets by bound address.
    pub sockets: BTreeMap<SocketAddr, Arc<dyn AsyncUdpSocket>>,
    /// The same with their stream and component, in a list the driver polls round-robin.
    pub socket_list: Vec<(SocketAddr, Arc<dyn AsyncUdpSocket>, StreamId, ComponentId)>,
    pub streams: Vec<StreamExtra>,
    pub subscribers: Vec<Weak<Mutex<Subscriber>>>,
    pub driver_waker: Option<Waker>,
    pub closed: bool,
    /// Open TCP connections (local, remote) -> their writer.
    pub tcp: BTreeMap<(SocketAddr, SocketAddr), futures::channel::mpsc::UnboundedSender<Vec<u8>>>,
    /// Connections the agent asked for, not yet started: (id, local, remote, tls).
    pub tcp_requests: Vec<(u64, SocketAddr, SocketAddr, bool)>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("sockets", &self.sockets.len())
            .field("streams", &self.streams.len())
            .field("closed", &self.closed)
            .finish()
    }
}

/// What the driver and every handle hold.
#[derive(Debug)]
pub(crate) struct Shared {
    pub runtime: Arc<dyn Runtime>,
    /// Accept any certificate from TURN servers over TLS (`AgentBuilder::tls_insecure`).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub tls_insecure: bool,
    pub state: Mutex<State>,
}

impl Shared {
    /// Locks the state. A poisoned lock (a panic while it was held) is taken over: the
    /// state is plain data and stays usable.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    pub fn wake_driver(&mut self) {
        if let Some(w) = self.driver_waker.take() {
            w.wake();
        }
    }

    /// Closes the agent ([`crate::Agent::close`], or the last handle dropped): sends fail
    /// with [`crate::Error::Closed`] from now on, because the targets of their fast path
    /// are cleared here rather than when the driver next runs; the driver then closes the
    /// sockets and wakes every reader and waiter.
    pub fn close(&mut self) {
        self.closed = true;
        for c in self
            .streams
            .iter_mut()
            .flat_map(|s| s.components.iter_mut())
        {
            *c.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.wake_driver();
    }

    fn publish(&mut self, event: AgentEvent) {
        self.subscribers.retain(|weak| {
            let Some(sub) = weak.upgrade() else {
                return false;
            };
            let mut sub = sub.lock().unwrap_or_else(|e| e.into_inner());
            if sub.queue.len() >= EVENT_QUEUE_LIMIT {
                sub.queue.pop_front();
                tracing::debug!("event subscriber lagging: oldest event dropped");
            }
            sub.queue.push_back(event.clone());
            if let Some(w) = sub.waker.take() {
                w.wake();
            }
            true
        });
    }

    pub fn close_subscribers(&mut self) {
        self.tcp.clear();
        self.tcp_requests.clear();
        for weak in self.subscribers.drain(..) {
            if let Some(sub) = weak.upgrade() {
                let mut sub = sub.lock().unwrap_or_else(|e| e.into_inner());
                sub.closed = true;
                if let Some(w) = sub.waker.take() {
                    w.wake();
                }
            }
        }
        for s in &mut self.streams {
            s.gather.complete = true;
            if let Some(w) = s.gather.waker.take() {
                w.wake();
            }
            for c in &mut s.components {
                *c.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
                // The handles keep this state, not the sockets: they close now.
                c.sockets.clear();
                c.buffers.clear();
                if let Some(w) = c.recv_waker.take() {
                    w.wake();
                }
                for w in c.state_wakers.drain(..) {
                    w.wake();
                }
            }
        }
    }

    /// Hands the core's events to the handles waiting for them and to the subscribers.
    pub fn dispatch_events(&mut self) {
        while let Some(event) = self.proto.poll_event() {
            match &event {
                AgentEvent::LocalCandidate { stream, candidate } => {
                    if let Some(s) = self.streams.get_mut(*stream) {
                        s.gather.queue.push_back(candidate.clone());
                        if let Some(w) = s.gather.waker.take() {
                            w.wake();
                        }
                    }
                }
                AgentEvent::GatheringComplete { stream } => {
                    if let Some(s) = self.streams.get_mut(*stream) {
                        s.gather.complete = true;
                        if let Some(w) = s.gather.waker.take() {
                            w.wake();
                        }
                    }
                }
                AgentEvent::ComponentStateChange {
                    stream, component, ..
                } => self.wake_component(*stream, *component),
                AgentEvent::SelectedPair {
                    stream,
                    component,
                    pair,
                } => {
                    self.set_target(*stream, *component, pair);
                    self.wake_component(*stream, *component);
                }
                AgentEvent::ComponentFailed {
                    stream, component, ..
                } => {
                    // Sends take the slow path from now on, where the core refuses them
                    // with the reason.
                    self.clear_target(*stream, *component);
                    self.wake_component(*stream, *component);
                }
                _ => {}
            }
            self.publish(event);
        }
        while let Some(request) = self.proto.poll_io_request() {
            match request {
                proto::IoRequest::TcpConnect {
                    id,
                    local,
                    remote,
                    tls,
                } => self.tcp_requests.push((id, local, remote, tls)),
                proto::IoRequest::TcpClose { local, remote } => {
                    // Dropping the writer ends the connection's task.
                    self.tcp.remove(&(local, remote));
                }
                other => tracing::trace!(?other, "I/O request not handled"),
            }
        }
    }

    fn component_extra(
        &mut self,
        stream: StreamId,
        component: ComponentId,
    ) -> Option<&mut ComponentExtra> {
        self.streams
            .get_mut(stream)?
            .components
            .get_mut(usize::from(component).checked_sub(1)?)
    }

    fn set_target(&mut self, stream: StreamId, component: ComponentId, pair: &SelectedPair) {
        // A closed agent sends nothing, even if the driver's last round selects a pair.
        let socket = if self.closed {
            None
        } else {
            self.sockets.get(&pair.local_base).cloned()
        };
        let valid_until = self.proto.consent_expiry(stream, component);
        let Some(c) = self.component_extra(stream, component) else {
            return;
        };
        c.consent_until = valid_until;
        *c.target.lock().unwrap_or_else(|e| e.into_inner()) = socket.map(|socket| SendTarget {
            socket,
            to: pair.remote.address(),
            valid_until,
        });
    }

    /// Copies each component's consent expiry from the core into its send target when it
    /// moved (a refresh, every few seconds), so that the send fast path stops at the
    /// expiry without asking the core (RFC 7675 §5.1).
    pub fn sync_consent(&mut self) {
        for (sid, s) in self.streams.iter_mut().enumerate() {
            for (ci, c) in s.components.iter_mut().enumerate() {
                let component = ComponentId::try_from(ci + 1).unwrap_or(ComponentId::MAX);
                let expiry = self.proto.consent_expiry(sid, component);
                if expiry == c.consent_until {
                    continue;
                }
                c.consent_until = expiry;
                if let Some(t) = c.target.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    t.valid_until = expiry;
                }
            }
        }
    }

    /// The driver delivered what it read: readers may read their sockets again.
    pub fn driver_read_done(&mut self) {
        for s in &mut self.streams {
            for c in &mut s.components {
                c.driver_reading = false;
                if std::mem::take(&mut c.reader_parked)
                    && let Some(w) = c.recv_waker.take()
                {
                    w.wake();
                }
            }
        }
    }

    fn clear_target(&mut self, stream: StreamId, component: ComponentId) {
        if let Some(c) = self.component_extra(stream, component) {
            *c.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    fn wake_component(&mut self, stream: StreamId, component: ComponentId) {
        let Some(c) = self.component_extra(stream, component) else {
            return;
        };
        for w in c.state_wakers.drain(..) {
            w.wake();
        }
    }

    /// The sockets the driver reads now (those no reader holds a lease on), and the
    /// earliest lease expiry.
    /// Marks the components of the sockets returned as being read by the driver (see
    /// `ComponentExtra::driver_reading`) until [`Self::driver_read_done`].
    pub fn driver_sockets(
        &mut self,
        now: std::time::Instant,
    ) -> (Vec<SocketRef>, Option<std::time::Instant>) {
        let mut leases: Option<std::time::Instant> = None;
        let mut out = Vec::with_capacity(self.socket_list.len());
        for (addr, socket, stream, component) in &self.socket_list {
            let Some(c) = self.streams.get_mut(*stream).and_then(|s| {
                s.components
                    .get_mut(usize::from(*component).wrapping_sub(1))
            }) else {
                continue;
            };
            match c.lease_until.filter(|t| *t > now) {
                Some(t) => leases = Some(leases.map_or(t, |l| l.min(t))),
                None => {
                    c.driver_reading = true;
                    out.push((*addr, Arc::clone(socket)));
                }
            }
        }
        (out, leases)
    }

    /// Queues data received for a component.
    pub fn deliver(&mut self, stream: StreamId, component: ComponentId, data: Vec<u8>) {
        let Some(c) = self.component_extra(stream, component) else {
            return;
        };
        if c.recv.len() >= RECV_QUEUE_LIMIT {
            c.recv.pop_front();
            tracing::debug!(
                stream,
                component,
                "receive queue full: oldest datagram dropped"
            );
        }
        c.recv.push_back(data);
        if let Some(w) = c.recv_waker.take() {
            w.wake();
        }
    }
}
