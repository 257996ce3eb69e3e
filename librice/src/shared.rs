//! The state the handles and the driver share, behind one mutex that is held only briefly
//! and never across an `.await`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

pub(crate) use librice_proto::agent::AgentEvent;
use librice_proto::agent::{self as proto, ComponentId, SelectedPair, StreamId};

use crate::candidate::IceCandidate;

use crate::datagram::RecvMeta;
use crate::mdns::{Answer, MdnsClient};
use crate::netwatch::{OnPathLost, restart_needed};
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::send::{SendPath, SendTarget, Socket};
use crate::tcp::{Framing, TcpRequest};
use librice_proto::Transmit;

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
    pub queue: VecDeque<IceCandidate>,
    pub complete: bool,
    pub waker: Option<Waker>,
}

#[derive(Debug)]
pub(crate) struct ComponentExtra {
    pub send: Arc<SendPath>,
    /// While in the future, a reader reads the sockets itself (see `crate::ingest`).
    pub lease_until: Option<std::time::Instant>,
    /// Data queued for the reader by the driver or a TCP task.
    pub recv: VecDeque<(Vec<u8>, RecvMeta)>,
    pub recv_waker: Option<Waker>,
    pub state_wakers: Vec<Waker>,
    /// The driver has read (or is reading) this component's sockets outside the lock and
    /// has not delivered what it read yet: a reader must not read the sockets itself
    /// meanwhile, or it could deliver newer datagrams before older ones.
    pub driver_reading: bool,
    /// A reader is waiting for the driver to deliver (see `driver_reading`).
    pub reader_parked: bool,
    /// The consent expiry last copied into the send target.
    pub consent_until: Option<std::time::Instant>,
}

impl ComponentExtra {
    pub fn new(send: Arc<SendPath>) -> Self {
        Self {
            send,
            lease_until: None,
            recv: VecDeque::new(),
            recv_waker: None,
            state_wakers: Vec::new(),
            driver_reading: false,
            reader_parked: false,
            consent_until: None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct StreamExtra {
    pub gather: GatherState,
    pub components: Vec<ComponentExtra>,
}

pub(crate) struct State {
    pub proto: proto::Agent,
    /// The agent's sockets.
    pub registry: Registry,
    pub streams: Vec<StreamExtra>,
    pub subscribers: Vec<Weak<Mutex<Subscriber>>>,
    pub driver_waker: Option<Waker>,
    pub closed: bool,
    /// Connections the agent asked for, not yet started.
    pub tcp_requests: Vec<TcpRequest>,
    /// The network watcher's task, while it waits (`crate::netwatch`).
    pub watcher_waker: Option<Waker>,
    /// What to do on [`AgentEvent::RestartNeeded`].
    pub on_path_lost: OnPathLost,
    /// Streams the network watcher is to restart ([`OnPathLost::Restart`]).
    pub restarts_wanted: Vec<StreamId>,
    /// A send failed as if an address went away: the watcher lists the addresses now.
    pub relist: bool,
    /// The link to the process's mDNS service (`crate::mdns`).
    pub mdns: MdnsClient,
    /// The endpoint serving this agent, if it is an endpoint agent
    /// ([`crate::AgentBuilder::endpoint`]): its task drives the agent, its sockets are
    /// shared, and no reader reads them itself.
    pub endpoint: Option<crate::endpoint::EndpointLink>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("registry", &self.registry)
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
            c.send.set(None);
        }
        if let Some(w) = self.watcher_waker.take() {
            w.wake();
        }
        self.registry.wake_listeners();
        self.wake_driver();
    }

    /// The driver's last turn for a closed agent: releases the TURN allocations (RFC 8656
    /// §7.2: one try, no waiting), hands the mDNS names the core withdraws to the service
    /// (which sends the goodbyes) before the agent leaves it, sends what the core then
    /// wants sent (with `send`, which must not wait), and wakes every reader and waiter.
    pub fn finish_close(
        &mut self,
        now: std::time::Instant,
        mut send: impl FnMut(&Socket, &Transmit<Vec<u8>>),
    ) {
        self.proto.close(now);
        self.dispatch_events();
        self.mdns.leave();
        while let Some(t) = self.proto.poll_transmit(now) {
            if let Some(socket) = self.registry.udp(t.from) {
                send(socket, &t);
            }
        }
        self.close_subscribers();
        tracing::debug!("agent closed: driver stops");
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
        self.registry.clear();
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
                c.send.set(None);
                if let Some(w) = c.recv_waker.take() {
                    w.wake();
                }
                for w in c.state_wakers.drain(..) {
                    w.wake();
                }
            }
        }
    }

    /// Hands the core's events to the handles waiting for them and to the subscribers. A
    /// stream that needs an ICE restart, under [`OnPathLost::Restart`], goes to the network
    /// watcher, which restarts it (`crate::netwatch`).
    pub fn dispatch_events(&mut self) {
        // An mDNS request that fails at once is answered at once, which may make more
        // events and requests (a new name for a failed one): until there are none.
        while self.forward_events() | self.forward_io_requests() {}
    }

    /// Forwards the core's events; true if there were any.
    fn forward_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.proto.poll_event() {
            any = true;
            if let Some(sid) = restart_needed(&event)
                && self.on_path_lost == OnPathLost::Restart
                && !self.restarts_wanted.contains(&sid)
            {
                self.restarts_wanted.push(sid);
                if let Some(w) = self.watcher_waker.take() {
                    w.wake();
                }
            }
            match &event {
                AgentEvent::LocalCandidate { stream, candidate } => {
                    self.gathered(*stream, IceCandidate::Address(candidate.clone()));
                }
                AgentEvent::LocalNamedCandidate { stream, candidate } => {
                    self.gathered(*stream, IceCandidate::Named(candidate.clone()));
                }
                AgentEvent::Restarted { stream, .. } => {
                    // A new round of gathering: the old round's candidates not taken yet
                    // are stale.
                    if let Some(s) = self.streams.get_mut(stream.index()) {
                        s.gather.queue.clear();
                        s.gather.complete = false;
                    }
                    // An ICE restart (either side's) changes the local ufrag: an endpoint
                    // agent's router must know the new one (the only other change is a
                    // new stream, `Agent::add_stream`).
                    self.sync_endpoint();
                }
                AgentEvent::GatheringComplete { stream } => {
                    if let Some(s) = self.streams.get_mut(stream.index()) {
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
                }
                | AgentEvent::SelectedPairChanged {
                    stream,
                    component,
                    new: pair,
                    ..
                } => {
                    self.set_target(*stream, *component, pair);
                    self.wake_component(*stream, *component);
                }
                AgentEvent::SelectedPairLost {
                    stream, component, ..
                }
                | AgentEvent::ComponentFailed {
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
        any
    }

    /// Takes the core's I/O requests; true if there were any.
    fn forward_io_requests(&mut self) -> bool {
        let mut any = false;
        while let Some(request) = self.proto.poll_io_request() {
            any = true;
            match request {
                proto::IoRequest::TcpConnect {
                    id,
                    local,
                    remote,
                    tls,
                } => self.tcp_requests.push(TcpRequest {
                    id,
                    local,
                    remote,
                    tls,
                    framing: Framing::Server,
                }),
                proto::IoRequest::IceTcpConnect {
                    id, local, remote, ..
                } => self.tcp_requests.push(TcpRequest {
                    id,
                    local,
                    remote,
                    tls: false,
                    framing: Framing::Ice,
                }),
                proto::IoRequest::TcpClose { local, remote } => {
                    // Dropping the writer ends the connection's task.
                    self.registry.remove_tcp(local, remote);
                }
                request @ (proto::IoRequest::MdnsResolve { .. }
                | proto::IoRequest::MdnsPublish { .. }
                | proto::IoRequest::MdnsUnpublish { .. }) => self.forward_mdns(request),
                other => tracing::trace!(?other, "I/O request not handled"),
            }
        }
        any
    }

    /// Hands an mDNS request to the process's service (`crate::mdns`); one it cannot take
    /// fails the name in the core at once.
    fn forward_mdns(&mut self, request: proto::IoRequest) {
        let mut ips: Vec<_> = self
            .registry
            .udp_entries()
            .iter()
            .map(|e| e.socket.local().ip())
            .collect();
        ips.sort();
        ips.dedup();
        let now = self.mdns.now();
        let why = match self.mdns.request(&request, &ips) {
            Ok(Answer::Pending) => return,
            Ok(Answer::Resolved(ip)) => {
                if let proto::IoRequest::MdnsResolve { name } = &request
                    && let Err(e) = self.proto.handle_mdns_resolved(now, name.as_str(), &[ip])
                {
                    tracing::debug!(error = %e, "mDNS answer refused");
                }
                return;
            }
            Err(why) => why,
        };
        self.mdns.warn(&request, &why);
        let failed = match &request {
            proto::IoRequest::MdnsResolve { name } => {
                self.proto.handle_mdns_resolve_failed(now, name.as_str())
            }
            proto::IoRequest::MdnsPublish { name, .. } => {
                self.proto.handle_mdns_publish_failed(now, name.as_str())
            }
            _ => Ok(()),
        };
        if let Err(e) = failed {
            tracing::debug!(error = %e, "mDNS failure not taken");
        }
    }

    /// A local candidate for the stream's [`crate::GatherStream`].
    fn gathered(&mut self, stream: StreamId, candidate: IceCandidate) {
        if let Some(s) = self.streams.get_mut(stream.index()) {
            s.gather.queue.push_back(candidate);
            if let Some(w) = s.gather.waker.take() {
                w.wake();
            }
        }
    }

    pub fn component_extra(
        &mut self,
        stream: StreamId,
        component: ComponentId,
    ) -> Option<&mut ComponentExtra> {
        self.streams
            .get_mut(stream.index())?
            .components
            .get_mut(component.index())
    }

    fn set_target(&mut self, stream: StreamId, component: ComponentId, pair: &SelectedPair) {
        // A closed agent sends nothing, even if the driver's last round selects a pair.
        let socket = if self.closed {
            None
        } else {
            self.registry.udp(pair.local_base).cloned()
        };
        // What the fast path sent so far went on the pair selected before.
        self.fold_sent();
        let valid_until = self.proto.consent_expiry(stream, component);
        let Some(c) = self.component_extra(stream, component) else {
            return;
        };
        c.consent_until = valid_until;
        c.send.set(socket.map(|socket| SendTarget {
            socket,
            to: pair.remote.address(),
            valid_until,
        }));
    }

    /// Copies each component's consent expiry from the core into its send target when it
    /// moved (a refresh, every few seconds), so that the send fast path stops at the
    /// expiry without asking the core (RFC 7675 §5.1).
    pub fn sync_consent(&mut self) {
        for (sid, s) in self.streams.iter_mut().enumerate() {
            let sid = StreamId::from_index(sid);
            for (component, c) in component_ids().zip(s.components.iter_mut()) {
                let expiry = self.proto.consent_expiry(sid, component);
                if expiry == c.consent_until {
                    continue;
                }
                c.consent_until = expiry;
                c.send.set_valid_until(expiry);
            }
        }
    }

    fn clear_target(&mut self, stream: StreamId, component: ComponentId) {
        if let Some(c) = self.component_extra(stream, component) {
            c.send.set(None);
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

    /// Counts what each component's fast path sent since the last call on its selected
    /// pair in the core ([`proto::Agent::record_sent`]). Called before anything that may
    /// change a selected pair (a STUN message, a timer, a new target), so that the counts
    /// land on the pair they went out on, and before a statistics snapshot.
    pub fn fold_sent(&mut self) {
        for (sid, s) in self.streams.iter().enumerate() {
            let sid = StreamId::from_index(sid);
            for (component, c) in component_ids().zip(&s.components) {
                if let Some((packets, bytes, last)) = c.send.take_sent() {
                    self.proto.record_sent(last, sid, component, packets, bytes);
                }
            }
        }
    }
}

/// A component as a reader or waiter ([`crate::Recv`], [`crate::Datagram`],
/// [`crate::Connected`]) refers to it: not a handle, so that it does not keep the agent
/// alive. When the last handle is dropped the agent closes (which wakes the waiters, who
/// then see it closed), and once its driver task has ended the shared state goes too.
#[derive(Debug, Clone)]
pub(crate) struct ComponentRef {
    pub shared: Weak<Shared>,
    pub stream: StreamId,
    pub id: ComponentId,
}

/// The component ids in the order of a stream's `components` list, which follows the
/// core's: zip it with the list.
pub(crate) fn component_ids() -> impl Iterator<Item = ComponentId> {
    (0..).map_while(ComponentId::from_index)
}
