//! Agent configuration, events, errors and the public value types of the agent.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::TransportType;
use crate::candidate::{Candidate, CandidateError, CandidateParseError, IceCredentialError};
use crate::stun::transaction::RetransmitConfig;

/// The least Ta the agent accepts (RFC 8445 §14.2: "Ta SHOULD NOT be configured to be
/// less than 5 milliseconds").
pub const MIN_TA: Duration = Duration::from_millis(5);

/// The default Ta: 50 ms (RFC 8445 §14.2).
pub const DEFAULT_TA: Duration = Duration::from_millis(50);

/// The default limit on candidate pairs per check list: 100 (RFC 8445 §6.1.2.5).
pub const DEFAULT_MAX_PAIRS: usize = 100;

/// The default keepalive interval Tr: 15 s (RFC 8445 §11).
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// A STUN server used for server-reflexive candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunServer {
    /// How to reach it. Over TCP the agent asks its caller to open a connection
    /// ([`AgentEvent::TcpConnect`]).
    pub transport: TransportType,
    /// Its address.
    pub address: SocketAddr,
}

impl StunServer {
    /// A STUN server reached over UDP.
    pub const fn udp(address: SocketAddr) -> Self {
        Self {
            transport: TransportType::Udp,
            address,
        }
    }

    /// A STUN server reached over TCP.
    pub const fn tcp(address: SocketAddr) -> Self {
        Self {
            transport: TransportType::Tcp,
            address,
        }
    }
}

/// A TURN server for relayed candidates (RFC 8656), with its long-term credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// How to reach it. Only UDP is used by the agent for now; TCP and TLS servers are
    /// skipped with a trace until the agent carries TURN over streams.
    pub transport: TransportType,
    /// Its address.
    pub address: SocketAddr,
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// Over TCP: wrap the connection in TLS (the caller does, told by
    /// [`AgentEvent::TcpConnect`]'s `tls`).
    pub tls: bool,
    /// How long the server keeps permissions (RFC 8656 §9: 300 s); lower only for a
    /// server configured so.
    pub permission_lifetime: Duration,
    /// How long the server keeps channel bindings (RFC 8656 §12: 600 s).
    pub channel_lifetime: Duration,
}

impl TurnServer {
    /// A TURN server reached over UDP.
    pub fn udp(address: SocketAddr, username: &str, password: &str) -> Self {
        Self {
            transport: TransportType::Udp,
            address,
            username: username.to_owned(),
            password: password.to_owned(),
            tls: false,
            permission_lifetime: crate::turn::PERMISSION_LIFETIME,
            channel_lifetime: crate::turn::CHANNEL_LIFETIME,
        }
    }

    /// The same server reached over TLS over TCP (RFC 8656 §3.1).
    pub fn over_tls(mut self) -> Self {
        self.transport = TransportType::Tcp;
        self.tls = true;
        self
    }

    /// The same server reached over TCP (or TLS, which the caller adds).
    pub fn over_tcp(mut self) -> Self {
        self.transport = TransportType::Tcp;
        self
    }
}

impl fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnServer")
            .field("transport", &self.transport)
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How an [`Agent`](super::Agent) behaves. Start from [`AgentConfig::default`] and change
/// what you need with the builder methods.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub(crate) controlling: bool,
    pub(crate) rng_seed: u64,
    pub(crate) ta: Duration,
    pub(crate) max_pairs: usize,
    pub(crate) max_remote_candidates: usize,
    pub(crate) keepalive_interval: Duration,
    pub(crate) nomination_delay: Duration,
    pub(crate) stun_servers: Vec<StunServer>,
    pub(crate) turn_servers: Vec<TurnServer>,
    pub(crate) relay_only: bool,
    pub(crate) gather_retransmit: RetransmitConfig,
    pub(crate) check_retransmit: RetransmitConfig,
}

impl Default for AgentConfig {
    /// Controlled, seed 0, Ta 50 ms, 100 pairs per check list, 1,000 remote candidates per
    /// stream, keepalives every 15 s, nomination 200 ms after the first valid pair at the
    /// latest, no STUN server, the RFC 8489 retransmission defaults for gathering and
    /// RFC 8445 §14.3's for checks.
    fn default() -> Self {
        Self {
            controlling: false,
            rng_seed: 0,
            ta: DEFAULT_TA,
            max_pairs: DEFAULT_MAX_PAIRS,
            max_remote_candidates: 1000,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            nomination_delay: Duration::from_millis(200),
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            relay_only: false,
            gather_retransmit: RetransmitConfig::default(),
            check_retransmit: RetransmitConfig::default(),
        }
    }
}

impl AgentConfig {
    /// Starts controlling (true) or controlled (false). The role may change on a role
    /// conflict (RFC 8445 §7.3.1.1).
    pub fn controlling(mut self, controlling: bool) -> Self {
        self.controlling = controlling;
        self
    }

    /// Seeds the agent's one RNG, from which the tie-breaker, the credentials and every
    /// transaction id are drawn. The same seed and the same inputs give the same outputs.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = seed;
        self
    }

    /// Sets Ta, the pacing interval shared by all check lists and gathering
    /// (RFC 8445 §14.2). Values under 5 ms are raised to 5 ms.
    pub fn ta(mut self, ta: Duration) -> Self {
        self.ta = ta.max(MIN_TA);
        self
    }

    /// Limits the candidate pairs of each check list (RFC 8445 §6.1.2.5). At least 1.
    pub fn max_pairs(mut self, max_pairs: usize) -> Self {
        self.max_pairs = max_pairs.max(1);
        self
    }

    /// Limits the remote candidates of each stream, signalled and peer-reflexive together;
    /// further ones are dropped with a trace. At least 1.
    pub fn max_remote_candidates(mut self, max: usize) -> Self {
        self.max_remote_candidates = max.max(1);
        self
    }

    /// Sets Tr, how long a selected pair may stay silent before a keepalive is sent
    /// (RFC 8445 §11). At least 1 s.
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// How long the controlling agent waits, after a component's first valid pair, for
    /// better pairs to succeed before it nominates the best valid one. It nominates sooner
    /// when no better pair is left to check.
    pub fn nomination_delay(mut self, delay: Duration) -> Self {
        self.nomination_delay = delay;
        self
    }

    /// Adds a STUN server for server-reflexive candidates.
    pub fn stun_server(mut self, server: StunServer) -> Self {
        self.stun_servers.push(server);
        self
    }

    /// Adds a TURN server for relayed candidates: one allocation per UDP socket of the
    /// same address family.
    pub fn turn_server(mut self, server: TurnServer) -> Self {
        self.turn_servers.push(server);
        self
    }

    /// Uses only relayed candidates: host and server-reflexive candidates are neither
    /// signalled nor paired (their sockets still carry the traffic to the TURN servers).
    pub fn relay_only(mut self, relay_only: bool) -> Self {
        self.relay_only = relay_only;
        self
    }

    /// Retransmission of gathering requests to STUN servers (RFC 8489 §6.2.1 defaults).
    pub fn gather_retransmit(mut self, config: RetransmitConfig) -> Self {
        self.gather_retransmit = config;
        self
    }

    /// Retransmission of connectivity checks. The RTO given here is a floor: each check
    /// uses RTO = max(this, Ta x pairs waiting or in progress) (RFC 8445 §14.3).
    pub fn check_retransmit(mut self, config: RetransmitConfig) -> Self {
        self.check_retransmit = config;
        self
    }

    /// True if the agent starts controlling.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// Ta.
    pub fn ta_interval(&self) -> Duration {
        self.ta
    }
}

/// A stream's id: its index in the order streams were added, from 0.
pub type StreamId = usize;

/// A component's id within its stream: 1 for the first (RTP), 2 for the next, ...
pub type ComponentId = u16;

/// The state of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComponentState {
    /// Checks have not produced a selected pair yet.
    Connecting,
    /// A pair is selected: data can be sent.
    Connected,
    /// Every pair failed after both sides ended their candidates: the component cannot
    /// connect (RFC 8445 §6.1.2.1's Failed check-list state, per component).
    Failed,
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Failed => "failed",
        })
    }
}

/// A selected candidate pair: where the component's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// The local candidate (host, server- or peer-reflexive).
    pub local: Candidate,
    /// The remote candidate.
    pub remote: Candidate,
    /// The local socket data is sent from: the local candidate's base.
    pub local_base: SocketAddr,
    /// The transport.
    pub transport: TransportType,
}

/// What the agent tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// A new local candidate to signal to the peer (host and server-reflexive ones; the
    /// peer-reflexive candidates the agent learns are not signalled, RFC 8445 §7.2.5.3.1).
    LocalCandidate {
        /// The stream.
        stream: StreamId,
        /// The candidate.
        candidate: Candidate,
    },
    /// Gathering for a stream is over: signal end-of-candidates (RFC 8838 §13).
    GatheringComplete {
        /// The stream.
        stream: StreamId,
    },
    /// A component changed state.
    ComponentStateChange {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
        /// Its new state.
        state: ComponentState,
    },
    /// A component selected a pair, or changed to a better nominated one.
    SelectedPair {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
        /// The pair.
        pair: Box<SelectedPair>,
    },
    /// The agent changed role after a role conflict (RFC 8445 §7.3.1.1, §7.2.5.1).
    RoleChange {
        /// The new role.
        controlling: bool,
    },
    /// The caller should open a TCP connection from `local_ip` (any port) to `remote`, and
    /// answer with [`Agent::handle_tcp_connected`](super::Agent::handle_tcp_connected) or
    /// [`Agent::handle_tcp_connect_failed`](super::Agent::handle_tcp_connect_failed).
    TcpConnect {
        /// Names this request in the answer.
        id: u64,
        /// The local address to connect from (port 0: any).
        local: SocketAddr,
        /// The address to connect to.
        remote: SocketAddr,
        /// Wrap the connection in TLS (a TURN server configured with
        /// [`TurnServer::over_tls`]) before answering.
        tls: bool,
    },
    /// The caller should close the TCP connection between these addresses.
    TcpClose {
        /// The local end.
        local: SocketAddr,
        /// The remote end.
        remote: SocketAddr,
    },
}

/// Application data that arrived for a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedData<'a> {
    /// The stream.
    pub stream: StreamId,
    /// The component.
    pub component: ComponentId,
    /// Who sent it.
    pub from: SocketAddr,
    /// The bytes, borrowed from the datagram given to
    /// [`Agent::handle_incoming`](super::Agent::handle_incoming).
    pub data: &'a [u8],
}

/// A caller's request the agent cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// No stream has this id.
    UnknownStream(StreamId),
    /// The stream has no component with this id.
    UnknownComponent(ComponentId),
    /// A stream may have at most 256 components (RFC 8445 §5.1.2.1).
    TooManyComponents,
    /// This local socket is already registered.
    DuplicateSocket(SocketAddr),
    /// Local sockets must be registered before gathering starts.
    GatheringStarted,
    /// The component has no selected pair to send on.
    NotConnected,
    /// No TURN relay carries this pair.
    Relay(crate::turn::TurnError),
    /// Remote candidates cannot be added after end-of-candidates.
    AfterEndOfCandidates,
    /// The remote candidate's component does not exist in the stream.
    CandidateComponent(ComponentId),
    /// Bad credentials.
    Credentials(IceCredentialError),
    /// A candidate could not be made.
    Candidate(CandidateError),
    /// A candidate line did not parse.
    CandidateParse(CandidateParseError),
    /// No outstanding TCP connect request has this id.
    UnknownTcpConnect(u64),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownStream(id) => write!(f, "no stream with id {id}"),
            Self::UnknownComponent(id) => write!(f, "no component with id {id}"),
            Self::TooManyComponents => write!(f, "a stream has at most 256 components"),
            Self::DuplicateSocket(addr) => write!(f, "local socket {addr} is already registered"),
            Self::GatheringStarted => {
                write!(f, "local sockets must be added before gathering starts")
            }
            Self::NotConnected => write!(f, "the component has no selected pair"),
            Self::Relay(e) => write!(f, "relay: {e}"),
            Self::AfterEndOfCandidates => {
                write!(f, "remote candidate after end-of-candidates")
            }
            Self::CandidateComponent(id) => {
                write!(
                    f,
                    "remote candidate for component {id}, which the stream lacks"
                )
            }
            Self::Credentials(e) => write!(f, "bad ICE credentials: {e}"),
            Self::Candidate(e) => write!(f, "cannot make candidate: {e}"),
            Self::CandidateParse(e) => write!(f, "bad candidate line: {e}"),
            Self::UnknownTcpConnect(id) => write!(f, "no TCP connect request with id {id}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Credentials(e) => Some(e),
            Self::Candidate(e) => Some(e),
            Self::CandidateParse(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IceCredentialError> for AgentError {
    fn from(e: IceCredentialError) -> Self {
        Self::Credentials(e)
    }
}

impl From<CandidateError> for AgentError {
    fn from(e: CandidateError) -> Self {
        Self::Candidate(e)
    }
}

impl From<CandidateParseError> for AgentError {
    fn from(e: CandidateParseError) -> Self {
        Self::CandidateParse(e)
    }
}
