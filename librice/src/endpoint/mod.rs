//! Server mode: an [`Endpoint`] serves any number of agents on one UDP port per address,
//! with one driver task for all of them.
//!
//! Media servers and gateways run an agent per client, thousands per process, usually
//! ICE-lite ([`AgentBuilder::lite`](crate::AgentBuilder::lite)), behind one public port. An endpoint binds that port
//! (one socket per address given to [`EndpointBuilder::bind`]); each agent built with
//! [`AgentBuilder::endpoint`](crate::AgentBuilder::endpoint) gathers its host candidates on the endpoint's sockets, and is
//! used through the same [`Agent`](crate::Agent), [`crate::Stream`] and [`crate::Component`] handles as
//! any other agent.
//!
//! # How packets find their agent
//! The endpoint's task reads the sockets in batches (`recvmmsg` where the OS has it, see
//! [`crate::runtime::recv_batch`]) and routes every datagram with the sans-IO core's
//! [`MuxRouter`], by the rules of
//! [`librice_proto::mux`]: a check by the local ufrag in its USERNAME (the first contact of
//! a client), a response by its transaction id, anything else by its 5-tuple once the
//! agent has talked on it. What no agent claims is dropped and counted
//! ([`Endpoint::stats`]); the tables are bounded ([`EndpointBuilder::mux_config`]), so a
//! flood of checks for unknown ufrags or of data from unknown sources costs no memory.
//!
//! Each agent keeps its own lock, as a standalone agent does: the application's calls on
//! one agent never wait for another's. The endpoint's task runs an agent only when it has
//! input, a due timer or something to flush (a timer queue over all agents), so that an
//! idle agent costs no CPU.
//!
//! # What an endpoint agent is
//! - Its host candidates are the endpoint's addresses, for one component: two components
//!   of one agent cannot share an address, so give the agent one stream of one component,
//!   as with BUNDLE and `rtcp-mux` (a second component gets no candidates, traced).
//! - It may be full or lite, controlling or controlled, and use STUN and TURN servers (a
//!   server's responses reach the agent that asked by their transaction id).
//! - UDP by default. With [`EndpointBuilder::ice_tcp`] the endpoint also listens on TCP
//!   at each address, and agents built with [`AgentBuilder::transports`](crate::AgentBuilder::transports) including TCP
//!   get a passive candidate there (RFC 6544): a connection goes to the agent whose local
//!   ufrag its first check names, and is that agent's from then on (see `tcp.rs`).
//!   Without listeners such an agent is refused ([`EndpointError::TcpUnsupported`]).
//! - It does not watch the machine's interfaces ([`crate::NetworkChange`] does not apply:
//!   the endpoint's addresses are fixed).
//! - Data sent on a component goes out on the endpoint's socket, from the caller's task,
//!   as for a standalone agent; data received is queued for the component by the
//!   endpoint's task.
//!
//! ```no_run
//! # async fn run(runtime: std::sync::Arc<dyn librice::Runtime>) -> Result<(), librice::Error> {
//! use librice::{Agent, Endpoint};
//! let endpoint = Endpoint::builder()
//!     .runtime(runtime)
//!     .bind("192.0.2.1:3478".parse().unwrap())
//!     .build()?;
//! // One agent per client, as many as needed:
//! let agent = Agent::builder().endpoint(&endpoint).lite(true).build()?;
//! let stream = agent.add_stream();
//! let component = stream.add_component()?;
//! // Signal `stream.local_credentials()` and the candidates of
//! // `stream.gather_candidates()?` to the client, add the client's, then use `component`.
//! # let _ = component; Ok(()) }
//! ```

mod driver;
mod tcp;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Wake, Waker};

use librice_proto::TransportType;
use librice_proto::agent::{AgentConfig, StreamId};
use librice_proto::mux::{
    MAX_LOCAL_ADDRESSES, MuxAgentId, MuxConfig, MuxRouter, MuxRouterError, MuxStats,
};

use crate::error::Error;
use crate::runtime::Runtime;
use crate::send::{Socket, relock};
use crate::shared::{Shared, State, component_ids};
use crate::socket::{BufferSizes, SocketBuffers, bind_tcp_listener, bind_udp};

/// How many connections an endpoint's ICE-TCP listener queues before they are accepted
/// (a server's clients may come by the hundred at once).
const TCP_BACKLOG: i32 = 1024;

/// The default [`EndpointBuilder::max_datagram_size`]: 4,096 bytes.
pub const DEFAULT_MAX_DATAGRAM_SIZE: usize = 4096;

/// Why an endpoint refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// [`EndpointBuilder::build`] without any address to bind.
    NoAddress,
    /// An address to bind with an unspecified IP (`0.0.0.0`, `::`): a host candidate needs
    /// the address peers reach, so bind each address of the machine to use.
    UnspecifiedAddress(SocketAddr),
    /// An endpoint agent was asked for TCP candidates, and the endpoint has no ICE-TCP
    /// listeners ([`EndpointBuilder::ice_tcp`]).
    TcpUnsupported,
    /// The endpoint's router refused the agent (it numbers `u32::MAX - 1` agents).
    Router(MuxRouterError),
    /// More addresses than the router keeps 5-tuples for: each address is one local
    /// address, two with [`EndpointBuilder::ice_tcp`] (its listener), and the router keeps
    /// at most [`MAX_LOCAL_ADDRESSES`].
    TooManyAddresses {
        /// The addresses asked for.
        asked: usize,
        /// The most this endpoint can serve on.
        max: usize,
    },
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAddress => f.write_str("an endpoint needs at least one address to bind"),
            Self::UnspecifiedAddress(a) => write!(
                f,
                "cannot serve ICE on the unspecified address {a}: bind each address peers reach"
            ),
            Self::TcpUnsupported => {
                f.write_str("the endpoint has no ICE-TCP listener for an agent's TCP candidates")
            }
            Self::Router(e) => write!(f, "{e}"),
            Self::TooManyAddresses { asked, max } => write!(
                f,
                "an endpoint serves on at most {max} addresses here, {asked} were asked for"
            ),
        }
    }
}

impl std::error::Error for EndpointError {}

/// Configures and starts an [`Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointBuilder {
    runtime: Option<Arc<dyn Runtime>>,
    addrs: Vec<SocketAddr>,
    buffers: BufferSizes,
    mux: MuxConfig,
    max_datagram: usize,
    ice_tcp: bool,
}

impl EndpointBuilder {
    /// Also listens on TCP at each address, for ICE-TCP (RFC 6544) passive candidates
    /// (default off): on the UDP socket's port where it is free, else on any. Agents built
    /// with [`AgentBuilder::transports`](crate::AgentBuilder::transports) including TCP get the listener's address as their
    /// passive candidate; clients connect to it with active candidates. See the [module
    /// docs](self) for how a connection finds its agent.
    pub fn ice_tcp(mut self, on: bool) -> Self {
        self.ice_tcp = on;
        self
    }

    /// The runtime the endpoint's task and its agents run on (required).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// An address to serve on (at least one; port 0 picks a free port). Its IP must be one
    /// of the machine's: it is the host candidate every agent signals.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addrs.push(addr);
        self
    }

    /// The receive buffer size to ask for on each socket (default
    /// [`crate::DEFAULT_RECV_BUFFER_SIZE`]; a server may want more).
    pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
        self.buffers.recv = bytes;
        self
    }

    /// The send buffer size to ask for on each socket (default
    /// [`crate::DEFAULT_SEND_BUFFER_SIZE`]).
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.buffers.send = bytes;
        self
    }

    /// The bounds of the routing tables (default [`MuxConfig::default`]).
    pub fn mux_config(mut self, config: MuxConfig) -> Self {
        self.mux = config;
        self
    }

    /// The largest datagram received (default [`DEFAULT_MAX_DATAGRAM_SIZE`], at least
    /// 576): a longer one is dropped (traced), never cut.
    pub fn max_datagram_size(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes.max(576);
        self
    }

    /// Binds the sockets and starts the endpoint's task.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`]; [`Error::Endpoint`] with [`EndpointError::NoAddress`] or
    /// [`EndpointError::UnspecifiedAddress`]; [`Error::Io`] if a socket cannot be bound.
    pub fn build(self) -> Result<Endpoint, Error> {
        let runtime = self.runtime.ok_or(Error::NoRuntime)?;
        if self.addrs.is_empty() {
            return Err(EndpointError::NoAddress.into());
        }
        // Each address is a local address of the router's 5-tuples, its listener another.
        let max = MAX_LOCAL_ADDRESSES / if self.ice_tcp { 2 } else { 1 };
        if self.addrs.len() > max {
            let asked = self.addrs.len();
            return Err(EndpointError::TooManyAddresses { asked, max }.into());
        }
        let mut sockets = Vec::with_capacity(self.addrs.len());
        for addr in self.addrs {
            if addr.ip().is_unspecified() {
                return Err(EndpointError::UnspecifiedAddress(addr).into());
            }
            let (socket, granted) = bind_udp(addr, self.buffers)?;
            let socket = runtime.wrap_udp_socket(socket)?;
            let local = socket.local_addr()?;
            tracing::debug!(%local, "endpoint socket");
            sockets.push((Arc::new(Socket::new(socket, local)), granted));
        }
        let mut listeners = Vec::new();
        if self.ice_tcp {
            for (socket, _) in &sockets {
                let local = socket.local();
                let bound = bind_tcp_listener(&*runtime, local, TCP_BACKLOG).or_else(|_| {
                    bind_tcp_listener(&*runtime, SocketAddr::new(local.ip(), 0), TCP_BACKLOG)
                })?;
                tracing::debug!(local = %bound.1, "endpoint ICE-TCP listener");
                listeners.push(bound);
            }
        }
        let shared = Arc::new(EndpointShared {
            runtime: Arc::clone(&runtime),
            sockets,
            router: Mutex::new(MuxRouter::new(self.mux)),
            agents: Mutex::new(Vec::new()),
            ready: Mutex::new(Ready::default()),
            waker: futures::task::AtomicWaker::new(),
            handle_alive: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            tcp_locals: listeners.iter().map(|(_, local)| *local).collect(),
            tcp_wakers: Mutex::new(Vec::new()),
            last_config: Mutex::new(None),
        });
        for (i, (listener, local)) in listeners.into_iter().enumerate() {
            runtime.spawn(Box::pin(tcp::serve(
                Arc::downgrade(&shared),
                i,
                listener,
                local,
            )));
        }
        runtime.spawn(Box::pin(driver::EndpointDriver::new(
            Arc::clone(&shared),
            self.max_datagram,
        )));
        Ok(Endpoint {
            handle: Arc::new(EndpointHandle { shared }),
        })
    }
}

/// Many agents on one UDP port per address, driven by one task. See the [module
/// docs](self).
///
/// Cheap to clone. The endpoint's task and sockets live while a clone or one of its
/// agents does; [`Endpoint::close`] closes every agent at once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub(crate) handle: Arc<EndpointHandle>,
}

impl Endpoint {
    /// A builder: no runtime, no address yet, the default buffer sizes and table bounds.
    pub fn builder() -> EndpointBuilder {
        EndpointBuilder {
            runtime: None,
            addrs: Vec::new(),
            buffers: BufferSizes::default(),
            mux: MuxConfig::default(),
            max_datagram: DEFAULT_MAX_DATAGRAM_SIZE,
            ice_tcp: false,
        }
    }

    /// The addresses served (with the ports the system picked for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared()
            .sockets
            .iter()
            .map(|(s, _)| s.local())
            .collect()
    }

    /// The addresses of the ICE-TCP listeners ([`EndpointBuilder::ice_tcp`]; none without).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.shared().tcp_locals.clone()
    }

    /// The buffer sizes the system granted each socket.
    pub fn socket_buffers(&self) -> Vec<SocketBuffers> {
        self.shared().sockets.iter().map(|(_, b)| *b).collect()
    }

    /// The number of agents served (closed ones go once the endpoint's task has released
    /// them).
    pub fn agent_count(&self) -> usize {
        relock(&self.shared().router).len()
    }

    /// The routing counters: packets routed by ufrag, 5-tuple or transaction, and those
    /// dropped, by reason.
    pub fn stats(&self) -> MuxStats {
        relock(&self.shared().router).stats()
    }

    /// Closes every agent of the endpoint, and refuses new ones ([`Error::Closed`]).
    pub fn close(&self) {
        let shared = self.shared();
        shared.closed.store(true, Ordering::Release);
        let agents: Vec<Arc<Shared>> = relock(&shared.agents)
            .iter()
            .flatten()
            .map(|(_, a)| Arc::clone(a))
            .collect();
        for agent in agents {
            agent.lock().close();
        }
        shared.waker.wake();
        shared.wake_listeners();
    }

    pub(crate) fn shared(&self) -> &Arc<EndpointShared> {
        &self.handle.shared
    }

    /// Takes a newly built agent in: numbers it in the router and links it to the
    /// endpoint's task.
    pub(crate) fn attach(&self, agent: &Arc<Shared>) -> Result<(), Error> {
        let shared = self.shared();
        if shared.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut st = agent.lock();
        let id = relock(&shared.router)
            .add(&mut st.proto)
            .map_err(EndpointError::Router)?;
        let waker = Waker::from(Arc::new(AgentWake {
            endpoint: Arc::downgrade(shared),
            index: id.index() as u32,
        }));
        st.driver_waker = Some(waker.clone());
        st.endpoint = Some(EndpointLink {
            endpoint: Arc::downgrade(shared),
            id,
            waker,
        });
        drop(st);
        let mut agents = relock(&shared.agents);
        if agents.len() <= id.index() {
            agents.resize_with(id.index() + 1, || None);
        }
        agents[id.index()] = Some((id, Arc::clone(agent)));
        Ok(())
    }
}

/// What the [`Endpoint`] handles share: when the last goes, the endpoint's task ends once
/// its agents have.
#[derive(Debug)]
pub(crate) struct EndpointHandle {
    shared: Arc<EndpointShared>,
}

impl Drop for EndpointHandle {
    fn drop(&mut self) {
        self.shared.handle_alive.store(false, Ordering::Release);
        self.shared.waker.wake();
        self.shared.wake_listeners();
    }
}

/// The agents due a turn of the endpoint's task, each listed once.
#[derive(Debug, Default)]
struct Ready {
    list: Vec<u32>,
    queued: Vec<bool>,
}

impl Ready {
    fn push(&mut self, index: u32) {
        let i = index as usize;
        if self.queued.len() <= i {
            self.queued.resize(i + 1, false);
        }
        if !std::mem::replace(&mut self.queued[i], true) {
            self.list.push(index);
        }
    }

    /// Moves the list into `out` (emptied first) and forgets it.
    fn take(&mut self, out: &mut Vec<u32>) {
        out.clear();
        std::mem::swap(&mut self.list, out);
        for &i in out.iter() {
            self.queued[i as usize] = false;
        }
    }
}

/// What the endpoint's task, its handles and its agents share.
pub(crate) struct EndpointShared {
    pub runtime: Arc<dyn Runtime>,
    /// The sockets, with the buffer sizes granted: fixed for the endpoint's life.
    pub sockets: Vec<(Arc<Socket>, SocketBuffers)>,
    pub router: Mutex<MuxRouter>,
    /// The agents by slot (the router's index); a closed one stays until the endpoint's
    /// task has closed it down.
    #[allow(clippy::type_complexity)]
    pub agents: Mutex<Vec<Option<(MuxAgentId, Arc<Shared>)>>>,
    ready: Mutex<Ready>,
    /// The endpoint's task.
    pub waker: futures::task::AtomicWaker,
    /// An [`Endpoint`] handle exists.
    pub handle_alive: AtomicBool,
    /// [`Endpoint::close`] was called.
    pub closed: AtomicBool,
    /// The ICE-TCP listeners' addresses, one per socket, or none.
    pub tcp_locals: Vec<SocketAddr>,
    /// The listeners' tasks, by listener, while they wait.
    tcp_wakers: Mutex<Vec<Option<Waker>>>,
    /// The configuration of the agent built last, shared by the next ones built the same
    /// (a server's agents usually all are): one copy instead of one per agent.
    last_config: Mutex<Option<Arc<AgentConfig>>>,
}

impl fmt::Debug for EndpointShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointShared")
            .field("sockets", &self.sockets)
            .finish()
    }
}

impl EndpointShared {
    /// No handle is left and every agent has been closed down, or the endpoint was closed:
    /// its listeners stop (its task also waits for the agents to be closed down).
    pub fn stopping(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.finished()
    }

    /// `config` (whose seed does not matter: see [`librice_proto::agent::Agent::with_shared_config`]) as
    /// an `Arc`, the same one as the last agent's when they are equal.
    pub fn shared_config(&self, config: AgentConfig) -> Arc<AgentConfig> {
        let mut last = relock(&self.last_config);
        match &*last {
            Some(shared) if **shared == config => Arc::clone(shared),
            _ => {
                let shared = Arc::new(config);
                *last = Some(Arc::clone(&shared));
                shared
            }
        }
    }

    /// No handle is left and every agent has been closed down: the task stops.
    pub fn finished(&self) -> bool {
        !self.handle_alive.load(Ordering::Acquire)
            && relock(&self.agents).iter().all(Option::is_none)
    }

    /// Keeps listener `index`'s waker, woken when the endpoint stops.
    pub fn listener_waiting(&self, index: usize, waker: &Waker) {
        let mut wakers = relock(&self.tcp_wakers);
        if wakers.len() <= index {
            wakers.resize(index + 1, None);
        }
        wakers[index] = Some(waker.clone());
    }

    /// Wakes the listeners, to see whether the endpoint stops.
    pub fn wake_listeners(&self) {
        let wakers: Vec<Waker> = relock(&self.tcp_wakers)
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    /// The agent with id `id`, if it is still the one in its slot.
    pub fn agent(&self, id: MuxAgentId) -> Option<Arc<Shared>> {
        match relock(&self.agents).get(id.index()) {
            Some(Some((current, agent))) if *current == id => Some(Arc::clone(agent)),
            _ => None,
        }
    }

    /// Lists agent `index` for the task's next turn, and wakes the task.
    pub fn wake_agent(&self, index: u32) {
        relock(&self.ready).push(index);
        self.waker.wake();
    }

    /// The agents listed since the last call, into `out`.
    pub fn take_ready(&self, out: &mut Vec<u32>) {
        relock(&self.ready).take(out);
    }
}

/// An endpoint agent's driver waker: lists the agent and wakes the endpoint's task.
struct AgentWake {
    endpoint: Weak<EndpointShared>,
    index: u32,
}

impl Wake for AgentWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(endpoint) = self.endpoint.upgrade() {
            endpoint.wake_agent(self.index);
        }
    }
}

/// An agent's link to its endpoint (`State::endpoint`).
#[derive(Debug)]
pub(crate) struct EndpointLink {
    pub endpoint: Weak<EndpointShared>,
    pub id: MuxAgentId,
    /// The agent's driver waker, put back each time the endpoint's task runs it.
    pub waker: Waker,
}

impl State {
    /// For an endpoint agent: lets the router see the agent's current local ufrags (after
    /// a new stream or an ICE restart), so that its peer's checks find it. Nothing for a
    /// standalone agent.
    pub fn sync_endpoint(&mut self) {
        let Some(link) = &self.endpoint else {
            return;
        };
        if let Some(endpoint) = link.endpoint.upgrade() {
            relock(&endpoint.router).refresh_ufrags(link.id, &mut self.proto);
        }
    }

    /// For an endpoint agent's stream starting to gather: registers the endpoint's sockets
    /// for each of its components (one component per address: see the [module
    /// docs](self)).
    pub fn register_endpoint_sockets(
        &mut self,
        sid: StreamId,
        components: usize,
        transports: crate::Transports,
    ) {
        let Some(endpoint) = self
            .endpoint
            .as_ref()
            .and_then(|link| link.endpoint.upgrade())
        else {
            return;
        };
        for component in component_ids().take(components) {
            if transports.tcp() {
                for &local in &endpoint.tcp_locals {
                    let Some(mut stream) = self.proto.stream_mut(sid) else {
                        return;
                    };
                    if let Err(e) = stream.add_local_socket(component, TransportType::Tcp, local) {
                        tracing::warn!(%local, error = %e, "endpoint listener not registered");
                    }
                }
            }
            if !transports.udp() {
                continue;
            }
            for (socket, granted) in &endpoint.sockets {
                let local = socket.local();
                if self.registry.udp(local).is_some() {
                    tracing::warn!(%local, %component, "an endpoint agent has one component per address: skipped");
                    continue;
                }
                let Some(mut stream) = self.proto.stream_mut(sid) else {
                    return;
                };
                if let Err(e) = stream.add_local_socket(component, TransportType::Udp, local) {
                    tracing::warn!(%local, error = %e, "endpoint socket not registered");
                    continue;
                }
                self.registry
                    .add_udp(Arc::clone(socket), sid, component, *granted);
            }
        }
    }
}
