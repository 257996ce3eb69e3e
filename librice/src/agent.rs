//! The [`Agent`] handle and its builder.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use librice_proto::agent::{self as proto, AgentConfig, StreamId, StunServer, TurnServer};

use crate::driver::Driver;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::interfaces::{AddressFamilies, AddressFilter, InterfaceAddress};
use crate::mdns::MdnsClient;
use crate::netwatch::{NetworkChange, OnPathLost};
use crate::runtime::Runtime;
use crate::shared::{AgentEvent, Shared, State, StreamExtra, Subscriber};
use crate::socket::{BufferSizes, HostSockets, Transports};
use crate::stream::Stream;

/// Configures and starts an [`Agent`].
#[derive(Clone)]
pub struct AgentBuilder {
    runtime: Option<Arc<dyn Runtime>>,
    config: AgentConfig,
    seed: Option<u64>,
    filter: AddressFilter,
    tls_insecure: bool,
    /// A TURN server over TLS was added through this builder's own setters (those of a
    /// whole [`AgentConfig`] cannot be seen).
    tls_server: bool,
    buffers: BufferSizes,
    network: NetworkChange,
    transports: Transports,
    endpoint: Option<Endpoint>,
}

impl fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("runtime", &self.runtime)
            .field("config", &self.config)
            .field("filter", &self.filter)
            .field("buffers", &self.buffers)
            .field("network", &self.network)
            .field("transports", &self.transports)
            .field(
                "endpoint",
                &self.endpoint.as_ref().map(Endpoint::local_addrs),
            )
            .finish()
    }
}

impl AgentBuilder {
    /// What the agent does when the machine's interface addresses change (default:
    /// [`NetworkChange::default`]: watch them, drop the sockets of addresses that go away,
    /// no continual gathering, tell the application when a restart is needed). See
    /// [`NetworkChange`].
    ///
    /// ```no_run
    /// # fn build(runtime: std::sync::Arc<dyn librice::runtime::Runtime>) -> Result<(), librice::Error> {
    /// use librice::{NetworkChange, OnPathLost};
    /// let agent = librice::Agent::builder()
    ///     .runtime(runtime)
    ///     .controlling(true)
    ///     .renomination(true)
    ///     .network_change(
    ///         NetworkChange::default()
    ///             .continual_gathering(true)
    ///             .on_path_lost(OnPathLost::Restart),
    ///     )
    ///     .build()?;
    /// # let _ = agent; Ok(()) }
    /// ```
    pub fn network_change(mut self, policy: NetworkChange) -> Self {
        self.network = policy;
        self
    }

    /// The runtime that runs the agent's driver task, sockets and timers (required).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Starts controlling (default: controlled).
    pub fn controlling(mut self, controlling: bool) -> Self {
        self.config = self.config.controlling(controlling);
        self
    }

    /// Adds a STUN server (over UDP) for server-reflexive candidates.
    pub fn stun_server(mut self, server: SocketAddr) -> Self {
        self.config = self.config.stun_server(StunServer::udp(server));
        self
    }

    /// Adds a STUN server over TCP (RFC 8489 §6.2.2): a Binding request on a connection
    /// from each address gives a server-reflexive TCP candidate (`tcptype so`, RFC 6544
    /// §4.1), for networks where only TCP goes out. Such candidates are gathered and
    /// signalled, not paired (simultaneous-open is not done yet).
    pub fn stun_server_tcp(mut self, server: SocketAddr) -> Self {
        self.config = self.config.stun_server(StunServer::tcp(server));
        self
    }

    /// Adds a TURN server (over UDP) for relayed candidates, with its long-term
    /// credentials.
    pub fn turn_server(mut self, server: SocketAddr, username: &str, password: &str) -> Self {
        self.config = self
            .config
            .turn_server(TurnServer::udp(server, username, password));
        self
    }

    /// Adds a TURN server reached over TCP (RFC 8656 §3.1), with its long-term
    /// credentials.
    pub fn turn_server_tcp(mut self, server: SocketAddr, username: &str, password: &str) -> Self {
        self.config = self
            .config
            .turn_server(TurnServer::udp(server, username, password).over_tcp());
        self
    }

    /// Adds a TURN server described in full (transport, credentials, lifetimes). One over
    /// TLS needs the `tls` feature, as [`Self::turn_server_tls`] says.
    pub fn turn(mut self, server: TurnServer) -> Self {
        self.tls_server |= server.tls;
        self.config = self.config.turn_server(server);
        self
    }

    /// Adds a TURN server reached over TLS over TCP (RFC 8656 §3.1). Its certificate is
    /// checked against the web's root certificates (webpki-roots), with the server's IP
    /// address as its name, unless [`Self::tls_insecure`].
    ///
    /// Needs this crate's `tls` feature (on by default): without it, [`Self::build`] fails
    /// with [`Error::TlsUnavailable`]. (A TURN server over TLS inside a whole
    /// [`Self::config`] is skipped with a warning traced instead, as the builder cannot see
    /// it.)
    pub fn turn_server_tls(mut self, server: SocketAddr, username: &str, password: &str) -> Self {
        self.tls_server = true;
        self.config = self
            .config
            .turn_server(TurnServer::udp(server, username, password).over_tls());
        self
    }

    /// Accepts any TLS certificate from TURN servers (default false). Only for tests
    /// against servers with self-signed certificates: the server is then not
    /// authenticated.
    ///
    /// The TLS client configurations (one verifying, one not) are built once per process,
    /// when first needed, and shared by all agents.
    pub fn tls_insecure(mut self, insecure: bool) -> Self {
        self.tls_insecure = insecure;
        self
    }

    /// Uses only relayed candidates (default false).
    pub fn relay_only(mut self, relay_only: bool) -> Self {
        self.config = self.config.relay_only(relay_only);
        self
    }

    /// Sets Ta, the check pacing interval (default 50 ms, never under 5 ms).
    pub fn ta(mut self, ta: Duration) -> Self {
        self.config = self.config.ta(ta);
        self
    }

    /// Turns consent freshness (RFC 7675) on or off (default on). With it on, each
    /// selected pair gets a consent check every [`Self::consent_interval`] and the
    /// component fails with [`crate::FailureReason::ConsentLost`] when none is answered for
    /// [`Self::consent_timeout`]. With it off, selected pairs are kept alive with the
    /// keepalives of RFC 8445 §11 (every 15 s) and never expire. WebRTC endpoints must keep
    /// it on (RFC 8827 §4.2).
    pub fn consent_freshness(mut self, on: bool) -> Self {
        self.config = self.config.consent_freshness(on);
        self
    }

    /// The mean interval between consent checks on a selected pair (default 5 s, RFC 7675
    /// §5.1); each interval is drawn from 0.8x to 1.2x of it. Never under 100 ms.
    pub fn consent_interval(mut self, interval: Duration) -> Self {
        self.config = self.config.consent_interval(interval);
        self
    }

    /// How long after its last refresh consent expires (default 30 s, RFC 7675 §5.1): the
    /// component then fails with [`crate::FailureReason::ConsentLost`]. Never under 1 s.
    pub fn consent_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.consent_timeout(timeout);
        self
    }

    /// How long a connected component may hear nothing authenticated from its peer before
    /// it goes [`crate::ComponentState::Disconnected`] (default 8 s: longer than the
    /// largest gap between consent responses on a healthy pair, see the crate docs'
    /// Liveness section). Never under 100 ms.
    pub fn disconnected_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.disconnected_timeout(timeout);
        self
    }

    /// How long a controlled agent waits, after a component's first valid pair, for the
    /// controlling peer to nominate one (default 30 s; RFC 8445 leaves it to the
    /// implementation): the component then fails with
    /// [`crate::FailureReason::NominationTimeout`].
    pub fn nomination_timeout(mut self, timeout: Duration) -> Self {
        self.config = self.config.nomination_timeout(timeout);
        self
    }

    /// Offers renomination (draft-thatcher-ice-renomination-01; default off, as in
    /// libwebrtc): announce it with the `renomination` ice-option, and give the peer's
    /// options with [`crate::Stream::set_remote_ice_options`]; a stream uses it once both
    /// sides did. The controlling side then moves a component to a better pair when one
    /// succeeds after the selection, and [`crate::AgentEvent::SelectedPairChanged`] tells
    /// it; see [`AgentConfig::renomination`].
    pub fn renomination(mut self, on: bool) -> Self {
        self.config = self.config.renomination(on);
        self
    }

    /// Makes the agent an ICE-lite agent (RFC 8445 §2.5; default off), for a server on a
    /// public address: it gathers host candidates only (STUN and TURN servers given to
    /// this builder are ignored, and so are [`Self::relay_only`] and
    /// [`Self::renomination`]), is always controlled whatever [`Self::controlling`] says,
    /// sends no checks of its own, and selects the pair its full peer nominates. Signal
    /// `a=ice-lite` to the peer. See [`AgentConfig::lite`].
    pub fn lite(mut self, lite: bool) -> Self {
        self.config = self.config.lite(lite);
        self
    }

    /// The transports of the host candidates (default [`Transports::Udp`]): UDP sockets,
    /// ICE-TCP listeners (RFC 6544: a passive and an active candidate per address), or
    /// both. UDP is the default because it is what real-time media wants and what every
    /// peer speaks; add TCP for networks that block UDP (a TURN server over TCP or TLS is
    /// the other way through those).
    pub fn transports(mut self, transports: Transports) -> Self {
        self.transports = transports;
        self
    }

    /// Adds simultaneous-open ICE-TCP candidates (`tcptype so`, RFC 6544; default off)
    /// beside the passive and active ones of [`Transports::Tcp`] (or
    /// [`Transports::Both`]): per address, a TCP socket bound (with `SO_REUSEADDR`, and
    /// `SO_REUSEPORT` on Unix) but not listening gives an `so` host candidate, and a STUN
    /// server over TCP ([`Self::stun_server_tcp`]) is
    /// asked from its port for the server-reflexive `so` candidate. Checks of `so` pairs
    /// connect from that port ([`crate::Runtime::tcp_connect`] with a non-zero local
    /// port) while the peer connects to it: the SYNs cross and make one connection, where
    /// the OS supports a TCP simultaneous open (Linux, the BSDs and macOS do) and the
    /// NATs between keep an unsolicited SYN rather than reset it (RFC 5382 REQ-4). Useful
    /// only with a peer that does the same (libnice and browsers do not offer `so`
    /// candidates); see [`AgentConfig::tcp_simultaneous_open`] for the reasons it is off.
    /// A lite agent ([`Self::lite`]) sends no checks and makes no `so` candidates.
    pub fn tcp_simultaneous_open(mut self, on: bool) -> Self {
        self.config = self.config.tcp_simultaneous_open(on);
        self
    }

    /// Hides the host addresses behind random `<uuid>.local` mDNS names (default off), as
    /// browsers do (draft-ietf-mmusic-mdns-ice-candidates): [`crate::GatherStream`] yields
    /// the host candidates as [`crate::IceCandidate::Named`], and the process's mDNS
    /// service publishes the names on the agent's interfaces (see the crate docs' mDNS
    /// section). The agent still uses the real addresses; server-reflexive candidates are
    /// signalled with the related address 0.0.0.0 (or ::) port 9. A peer on the same link
    /// resolves the names; one that cannot reaches the host candidates only as
    /// peer-reflexive ones.
    ///
    /// ```no_run
    /// # async fn run(runtime: std::sync::Arc<dyn librice::Runtime>) -> Result<(), librice::Error> {
    /// use futures::StreamExt;
    /// let agent = librice::Agent::builder()
    ///     .runtime(runtime)
    ///     .hide_host_addresses(true)
    ///     .build()?;
    /// let stream = agent.add_stream();
    /// stream.add_component()?;
    /// let mut candidates = stream.gather_candidates()?;
    /// while let Some(candidate) = candidates.next().await {
    ///     // candidate:... 1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local 54400 typ host
    ///     println!("a={candidate}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn hide_host_addresses(mut self, on: bool) -> Self {
        self.config = self.config.hide_host_addresses(on);
        self
    }

    /// Seeds the agent's RNG (credentials, tie-breaker, transaction ids). Without it, the
    /// seed comes from the operating system.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Replaces the sans-IO configuration (pair limit, keepalive interval, retransmission,
    /// ...) with `config`, including the role, servers and Ta: call it before the other
    /// setters, which then change the configuration given here.
    pub fn config(mut self, config: AgentConfig) -> Self {
        self.tls_server = false;
        self.config = config;
        self
    }

    /// Also gathers on loopback addresses (default: no).
    pub fn loopback(mut self, loopback: bool) -> Self {
        self.filter.loopback = loopback;
        self
    }

    /// Also gathers on link-local addresses (default: no).
    pub fn link_local(mut self, link_local: bool) -> Self {
        self.filter.link_local = link_local;
        self
    }

    /// Restricts gathering to one address family.
    pub fn families(mut self, families: AddressFamilies) -> Self {
        self.filter.families = families;
        self
    }

    /// Gathers on exactly these addresses (loopback included). Repeatable.
    pub fn address(mut self, ip: IpAddr) -> Self {
        self.filter.only.push(ip);
        self
    }

    /// Replaces the whole address filter.
    pub fn filter(mut self, filter: AddressFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Gathers only on addresses for which `predicate` holds (after the other filters).
    pub fn address_filter(
        mut self,
        predicate: impl Fn(&InterfaceAddress) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter.predicate = Some(Arc::new(predicate));
        self
    }

    /// The receive buffer size to ask for on each of the agent's UDP sockets, in bytes
    /// (default [`crate::DEFAULT_RECV_BUFFER_SIZE`], 2 MiB, which explains the choice; 0
    /// leaves the operating system's default). The buffer holds the datagrams that arrive
    /// while the agent and the application are busy: a burst larger than it loses the
    /// rest. What the system granted is in [`crate::Component::socket_buffers`] (and
    /// traced at debug level).
    ///
    /// Linux doubles the size asked for and caps it at twice `net.core.rmem_max`, which is
    /// 212,992 bytes on most distributions: there a socket gets 425,984 bytes, room for
    /// about 185 to 510 datagrams of 1,200 to 100 bytes, however much is asked for. An
    /// application that receives larger bursts than that must have the system allow
    /// more (`sysctl -w net.core.rmem_max=4194304`, or more, as root), or have its peer
    /// pace its sends. Other systems have their own caps (`kern.ipc.maxsockbuf` on macOS
    /// and the BSDs); a size the system refuses leaves its default.
    pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
        self.buffers.recv = bytes;
        self
    }

    /// The send buffer size to ask for on each of the agent's UDP sockets, in bytes
    /// (default [`crate::DEFAULT_SEND_BUFFER_SIZE`], 1 MiB; 0 leaves the operating
    /// system's default). A full send buffer loses nothing, a send then waits until the
    /// socket can take the datagram; a larger one lets a burst leave without waiting for
    /// the network interface. Linux doubles the size and caps it at twice
    /// `net.core.wmem_max` (usually 212,992 bytes). An application sending at high rates
    /// must pace its sends to what the path carries: no buffer makes up for a link that
    /// is slower than the sender. What the system granted is in
    /// [`crate::Component::socket_buffers`].
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.buffers.send = bytes;
        self
    }

    /// Serves the agent from `endpoint`: its host candidates are the endpoint's addresses,
    /// and the endpoint's task drives it, with its other agents (see [`crate::endpoint`]).
    /// The agent runs on the endpoint's runtime ([`Self::runtime`] is then not needed),
    /// uses the endpoint's UDP sockets (and its ICE-TCP listeners, with
    /// [`Self::transports`] including TCP), and does not watch the interfaces ([`Self::network_change`] and the
    /// address filters do not apply).
    pub fn endpoint(mut self, endpoint: &Endpoint) -> Self {
        self.endpoint = Some(endpoint.clone());
        self
    }

    /// Starts the agent: its driver task is spawned on the runtime.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] without [`Self::runtime`]; [`Error::TlsUnavailable`] for a
    /// TURN server over TLS when this crate was built without its `tls` feature (unless the
    /// agent is lite, [`Self::lite`], which uses no TURN server);
    /// [`Error::Io`] when the operating system gives no random seed. For an endpoint agent
    /// ([`Self::endpoint`]): [`Error::Endpoint`] with [`EndpointError::TcpUnsupported`] when
    /// TCP candidates were asked for, [`Error::Closed`] once the endpoint is closed.
    ///
    /// [`EndpointError::TcpUnsupported`]: crate::endpoint::EndpointError::TcpUnsupported
    pub fn build(self) -> Result<Agent, Error> {
        if self.tls_server && !self.config.is_lite() && cfg!(not(feature = "tls")) {
            return Err(Error::TlsUnavailable);
        }
        if let Some(endpoint) = &self.endpoint
            && self.transports.tcp()
            && endpoint.tcp_addrs().is_empty()
        {
            return Err(crate::endpoint::EndpointError::TcpUnsupported.into());
        }
        let runtime = match &self.endpoint {
            Some(endpoint) => Arc::clone(&endpoint.shared().runtime),
            None => self.runtime.ok_or(Error::NoRuntime)?,
        };
        let seed = match self.seed {
            Some(seed) => seed,
            None => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes)
                    .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
                u64::from_le_bytes(bytes)
            }
        };
        let config = self
            .config
            .rng_seed(seed)
            .continual_gathering(self.network.continual_gathering);
        // An endpoint's agents share one copy of a configuration they have in common, the
        // seed apart (`Agent::with_shared_config`); a standalone agent keeps its own.
        let proto = match &self.endpoint {
            Some(endpoint) => proto::Agent::with_shared_config(
                endpoint.shared().shared_config(config.rng_seed(0)),
                seed,
            ),
            None => proto::Agent::new(config),
        };
        let shared = Arc::new_cyclic(|me| Shared {
            runtime: Arc::clone(&runtime),
            tls_insecure: self.tls_insecure,
            state: Mutex::new(State {
                proto,
                registry: Default::default(),
                streams: Vec::new(),
                subscribers: Vec::new(),
                driver_waker: None,
                closed: false,
                tcp_requests: Vec::new(),
                watcher_waker: None,
                on_path_lost: self.network.on_path_lost,
                restarts_wanted: Vec::new(),
                relist: false,
                mdns: MdnsClient::new(Arc::clone(&runtime), me.clone()),
                endpoint: None,
            }),
        });
        if let Some(endpoint) = &self.endpoint {
            endpoint.attach(&shared)?;
        } else {
            runtime.spawn(Box::pin(Driver::new(Arc::clone(&shared))));
        }
        if self.endpoint.is_none()
            && (self.network.watch || self.network.on_path_lost == OnPathLost::Restart)
        {
            runtime.spawn(Box::pin(crate::netwatch::run(
                Arc::downgrade(&shared),
                Arc::clone(&runtime),
                self.filter.clone(),
                HostSockets {
                    transports: self.transports,
                    buffers: self.buffers,
                },
                self.network.clone(),
            )));
        }
        Ok(Agent {
            handle: Arc::new(Handle {
                shared,
                filter: self.filter,
                buffers: self.buffers,
                transports: self.transports,
                endpoint: self.endpoint,
            }),
        })
    }
}

/// What every handle of one agent shares; dropping the last one closes the agent.
pub(crate) struct Handle {
    pub shared: Arc<Shared>,
    pub filter: AddressFilter,
    /// The socket buffer sizes to ask for.
    pub buffers: BufferSizes,
    /// The transports of the host candidates.
    pub transports: Transports,
    /// The endpoint serving the agent, if any: kept alive while the agent is.
    pub endpoint: Option<Endpoint>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().close();
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("filter", &self.filter)
            .finish()
    }
}

/// An ICE agent: data streams with components, driven by a background task.
///
/// Cheap to clone; the agent, its sockets and its task live until the last clone of it
/// and of its [`Stream`]s and [`crate::Component`]s is dropped, or [`Agent::close`].
/// Readers and waiters ([`Events`], [`crate::GatherStream`], [`crate::Connected`],
/// [`crate::Recv`]) do not count: they end when the agent closes.
#[derive(Debug, Clone)]
pub struct Agent {
    pub(crate) handle: Arc<Handle>,
}

impl Agent {
    /// A builder with the defaults: controlled, Ta 50 ms, no STUN server, the
    /// machine's non-loopback, non-link-local addresses, socket buffers of
    /// [`crate::DEFAULT_RECV_BUFFER_SIZE`] and [`crate::DEFAULT_SEND_BUFFER_SIZE`].
    pub fn builder() -> AgentBuilder {
        AgentBuilder {
            runtime: None,
            config: AgentConfig::default(),
            seed: None,
            filter: AddressFilter::default(),
            tls_insecure: false,
            tls_server: false,
            buffers: BufferSizes::default(),
            network: NetworkChange::default(),
            transports: Transports::default(),
            endpoint: None,
        }
    }

    /// Adds a data stream.
    pub fn add_stream(&self) -> Stream {
        let mut st = self.handle.shared.lock();
        let id = st.proto.add_stream();
        st.streams.push(StreamExtra::default());
        // Its ufrag, for the peer's checks to find an endpoint agent.
        st.sync_endpoint();
        Stream::new(Arc::clone(&self.handle), id)
    }

    /// The stream with this id, if it exists.
    pub fn stream(&self, id: StreamId) -> Option<Stream> {
        let st = self.handle.shared.lock();
        (id.index() < st.streams.len()).then(|| Stream::new(Arc::clone(&self.handle), id))
    }

    /// True while the agent is controlling.
    pub fn controlling(&self) -> bool {
        self.handle.shared.lock().proto.controlling()
    }

    /// True for an ICE-lite agent ([`AgentBuilder::lite`]).
    pub fn lite(&self) -> bool {
        self.handle.shared.lock().proto.config().is_lite()
    }

    /// The agent's events, from now on. The agent keeps running whether or not this stream
    /// is polled; a reader that falls more than 1,024 events behind loses the oldest.
    pub fn events(&self) -> Events {
        let sub = Arc::new(Mutex::new(Subscriber::default()));
        let mut st = self.handle.shared.lock();
        if st.closed {
            sub.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        }
        st.subscribers.push(Arc::downgrade(&sub));
        Events { sub }
    }

    /// Stops the agent now: its task ends and its sockets close, even while handles remain.
    /// From the moment this returns, [`crate::Component::send`] fails with
    /// [`Error::Closed`]; readers and waiters end when the driver task has closed.
    pub fn close(&self) {
        self.handle.shared.lock().close();
    }

    /// The runtime.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::clone(&self.handle.shared.runtime)
    }
}

/// The stream of an agent's events ([`Agent::events`]).
#[derive(Debug)]
pub struct Events {
    sub: Arc<Mutex<Subscriber>>,
}

impl futures::Stream for Events {
    type Item = AgentEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AgentEvent>> {
        let mut sub = self.sub.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = sub.queue.pop_front() {
            return Poll::Ready(Some(e));
        }
        if sub.closed {
            return Poll::Ready(None);
        }
        sub.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TURN server over TLS is refused at build time exactly when the `tls` feature is
    /// off (the runtime is checked after it, so none is needed here).
    #[test]
    fn tls_server_needs_the_tls_feature() {
        let server: SocketAddr = "127.0.0.1:5349".parse().unwrap();
        let via_setter = Agent::builder().turn_server_tls(server, "u", "p").build();
        let via_turn = Agent::builder()
            .turn(TurnServer::udp(server, "u", "p").over_tls())
            .build();
        for result in [via_setter, via_turn] {
            if cfg!(feature = "tls") {
                assert!(matches!(result, Err(Error::NoRuntime)), "{result:?}");
            } else {
                assert!(matches!(result, Err(Error::TlsUnavailable)), "{result:?}");
            }
        }
        // Without TLS servers (or after a whole config replaced them), no TLS is needed.
        let replaced = Agent::builder()
            .turn_server_tls(server, "u", "p")
            .config(AgentConfig::default())
            .turn_server_tcp(server, "u", "p")
            .build();
        assert!(matches!(replaced, Err(Error::NoRuntime)), "{replaced:?}");
    }
}
