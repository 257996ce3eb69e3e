//! Agent configuration, events, errors and the public value types of the agent.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::ids::{ComponentId, PairId, StreamId};
use crate::TransportType;
use crate::candidate::{
    Candidate, CandidateError, CandidateParseError, HostName, IceCredentialError, NamedCandidate,
};
use crate::stun::transaction::RetransmitConfig;

/// The least Ta the agent accepts (RFC 8445 §14.2: "Ta SHOULD NOT be configured to be
/// less than 5 milliseconds").
pub const MIN_TA: Duration = Duration::from_millis(5);

/// The default Ta: 50 ms (RFC 8445 §14.2).
pub const DEFAULT_TA: Duration = Duration::from_millis(50);

/// The default limit on candidate pairs per check list: 100 (RFC 8445 §6.1.2.5).
pub const DEFAULT_MAX_PAIRS: usize = 100;

/// The default keepalive interval Tr: 15 s (RFC 8445 §11). Used only when consent
/// freshness is off: consent checks replace keepalives.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The default mean interval between consent checks: 5 s (RFC 7675 §5.1). Each interval
/// is drawn uniformly from 0.8x to 1.2x of it.
pub const DEFAULT_CONSENT_INTERVAL: Duration = Duration::from_secs(5);

/// The default time the agent waits for the peer's `.local` name to be resolved, and for
/// its own name to be claimed before it completes gathering without waiting: 10 s. mDNS queries go out about once a second (RFC 6762 §5.2;
/// [`crate::mdns::MAX_QUERIES`] of them by default) and probing takes about 1 s (RFC 6762
/// §8.1), so 10 s leaves room for loss without holding a candidate for long.
pub const DEFAULT_MDNS_TIMEOUT: Duration = Duration::from_secs(10);

/// The default limit on the peer's `.local` names being resolved at once: 32, half of
/// what one [`crate::mdns::Mdns`] resolves at once ([`crate::mdns::MAX_RESOLUTIONS`]),
/// which several agents may share. A browser sends one name per local address.
pub const DEFAULT_MAX_PENDING_MDNS_NAMES: usize = 32;

/// The default consent expiry: 30 s after the last refresh (RFC 7675 §5.1).
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default time a connected component may hear nothing authenticated from its peer
/// before it goes [`ComponentState::Disconnected`]: 8 s.
///
/// Why 8 s: on a healthy pair whose only traffic is consent checks, a response to ours
/// comes at least once per consent interval, at most 6 s apart (1.2 x 5 s), plus a round
/// trip; if one request or response is lost, the check's retransmissions (500 ms, then
/// 1 s later) still get an answer within 1.5 s more. 6 s + 1.5 s + a round trip stays
/// under 8 s, so a healthy pair never flaps, while a dead path shows within 8 s, well
/// before consent expires at 30 s.
pub const DEFAULT_DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(8);

/// The default time a controlled agent waits for the controlling peer to nominate once a
/// component has a valid pair: 30 s. RFC 8445 leaves this to the implementation.
pub const DEFAULT_NOMINATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The default interval at which a controlling agent using renomination checks again the
/// failed pairs that would beat its selected pair: 2.5 s. This crate's choice: often enough
/// that a direct path that starts working after a relayed pair was selected is taken within
/// a few seconds, rarely enough that a path that stays blocked costs one check per pair
/// every 2.5 s (libwebrtc pings a stable connection at the same cadence,
/// `STABLE_WRITABLE_CONNECTION_PING_INTERVAL`).
pub const DEFAULT_RENOMINATION_RECHECK: Duration = Duration::from_millis(2500);

/// A STUN server used for server-reflexive candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunServer {
    /// How to reach it. Over TCP the agent asks its caller to open a connection
    /// ([`IoRequest::TcpConnect`]).
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
    /// [`IoRequest::TcpConnect`]'s `tls`).
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub(crate) consent_freshness: bool,
    pub(crate) consent_interval: Duration,
    pub(crate) consent_timeout: Duration,
    pub(crate) disconnected_timeout: Duration,
    pub(crate) nomination_timeout: Duration,
    pub(crate) renomination: bool,
    pub(crate) renomination_recheck: Duration,
    pub(crate) continual_gathering: bool,
    pub(crate) hide_host_addresses: bool,
    pub(crate) tcp_simultaneous_open: bool,
    pub(crate) mdns_timeout: Duration,
    pub(crate) max_pending_mdns_names: usize,
    pub(crate) lite: bool,
}

impl Default for AgentConfig {
    /// Controlled, seed 0, Ta 50 ms, 100 pairs per check list, 1,000 remote candidates per
    /// stream, keepalives every 15 s, nomination 200 ms after the first valid pair at the
    /// latest, no STUN server, the RFC 8489 retransmission defaults for gathering and
    /// RFC 8445 §14.3's for checks; consent freshness on (a check every 5 s on average,
    /// expiry after 30 s), Disconnected after 8 s of silence, and a 30 s wait for the
    /// controlling peer's nomination; no renomination; no continual gathering; no
    /// simultaneous-open ICE-TCP candidates; a full agent (not lite).
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
            consent_freshness: true,
            consent_interval: DEFAULT_CONSENT_INTERVAL,
            consent_timeout: DEFAULT_CONSENT_TIMEOUT,
            disconnected_timeout: DEFAULT_DISCONNECTED_TIMEOUT,
            nomination_timeout: DEFAULT_NOMINATION_TIMEOUT,
            renomination: false,
            renomination_recheck: DEFAULT_RENOMINATION_RECHECK,
            continual_gathering: false,
            hide_host_addresses: false,
            tcp_simultaneous_open: false,
            mdns_timeout: DEFAULT_MDNS_TIMEOUT,
            max_pending_mdns_names: DEFAULT_MAX_PENDING_MDNS_NAMES,
            lite: false,
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

    /// Hides the local host addresses behind random `<uuid>.local` names, as browsers do by
    /// default (draft-ietf-mmusic-mdns-ice-candidates): a privacy knob, off by default.
    ///
    /// With it on, each local address of a host candidate gets a fresh name from the
    /// agent's RNG, which the agent asks the I/O layer to publish
    /// ([`IoRequest::MdnsPublish`]); host candidates are announced at once as
    /// [`AgentEvent::LocalNamedCandidate`], never as [`AgentEvent::LocalCandidate`], and
    /// server-reflexive candidates with the related address 0.0.0.0 (or ::) port 9
    /// (draft-ietf-rtcweb-mdns-ice-candidates-04 §3.1.2.2). The agent still uses the real
    /// addresses for its sockets, pairs and checks. A peer that cannot resolve the names
    /// reaches the host candidates only through its own checks' peer-reflexive candidates;
    /// a peer off the local link does not reach them at all, which is the point. See the
    /// agent's mDNS docs for conflicts and [`Agent::close`](super::Agent::close).
    pub fn hide_host_addresses(mut self, on: bool) -> Self {
        self.hide_host_addresses = on;
        self
    }

    /// Uses simultaneous-open ICE-TCP candidates (`tcptype so`, RFC 6544): off by default.
    ///
    /// With it on, [`StreamMut::add_local_so_socket`](super::StreamMut::add_local_so_socket)
    /// takes a bound, not listening, TCP socket per address and makes an `so` host
    /// candidate of it; STUN servers over TCP are asked from that socket's port, so that
    /// the server-reflexive `so` candidate is the NAT's mapping of it. `so` candidates pair
    /// with the peer's `so` candidates (RFC 6544 §6.2), and the check of such a pair asks
    /// the I/O layer for a simultaneous open from the candidate's port
    /// ([`IoRequest::IceTcpConnect`] with `simultaneous_open`).
    ///
    /// Why off: RFC 6544 §4.1 lets an agent that cannot act in one of the modes leave its
    /// candidates out, and a simultaneous open needs what many stacks and middleboxes do
    /// not give: both SYNs crossing within the window a NAT keeps an unsolicited SYN (RFC
    /// 5382 REQ-4) or a peer that drops it rather than resetting. libnice and Chromium
    /// neither offer nor check `so` candidates, and host `so` pairs rank below active and
    /// passive ones (RFC 6544 §4.2), so with the peers met most they cost a port and
    /// checks for nothing. Turn it on between agents that both do simultaneous open (both
    /// behind NATs with TCP only, where no active/passive pair can work). The peer's `so`
    /// candidates are accepted either way; without local `so` candidates they pair with
    /// nothing.
    pub fn tcp_simultaneous_open(mut self, on: bool) -> Self {
        self.tcp_simultaneous_open = on;
        self
    }

    /// Whether simultaneous-open ICE-TCP candidates are used
    /// ([`Self::tcp_simultaneous_open`]).
    pub fn uses_tcp_simultaneous_open(&self) -> bool {
        self.tcp_simultaneous_open
    }

    /// How long the peer's `.local` name may take to resolve before the candidates waiting
    /// for it are dropped, and how long gathering waits for this agent's own name to be
    /// claimed
    /// ([`DEFAULT_MDNS_TIMEOUT`], 10 s). At least 100 ms.
    pub fn mdns_timeout(mut self, timeout: Duration) -> Self {
        self.mdns_timeout = timeout.max(Duration::from_millis(100));
        self
    }

    /// Limits the peer's `.local` names being resolved at once
    /// ([`DEFAULT_MAX_PENDING_MDNS_NAMES`]); candidates with further names are dropped with
    /// a trace. At least 1.
    pub fn max_pending_mdns_names(mut self, max: usize) -> Self {
        self.max_pending_mdns_names = max.max(1);
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

    /// Turns consent freshness (RFC 7675) on or off (default on). With it off, a selected
    /// pair is kept alive with the keepalives of RFC 8445 §11 instead and never expires.
    /// WebRTC endpoints must keep it on (RFC 8827 §4.2).
    pub fn consent_freshness(mut self, on: bool) -> Self {
        self.consent_freshness = on;
        self
    }

    /// The mean interval between consent checks on a selected pair (default 5 s, RFC 7675
    /// §5.1); each interval is drawn from 0.8x to 1.2x of it. At least 100 ms.
    pub fn consent_interval(mut self, interval: Duration) -> Self {
        self.consent_interval = interval.max(Duration::from_millis(100));
        self
    }

    /// How long after its last refresh consent expires (default 30 s, RFC 7675 §5.1).
    /// The component then fails with [`FailureReason::ConsentLost`] and sends no more data.
    /// At least 1 s.
    pub fn consent_timeout(mut self, timeout: Duration) -> Self {
        self.consent_timeout = timeout.max(Duration::from_secs(1));
        self
    }

    /// How long a connected component may hear nothing authenticated from its peer on the
    /// selected pair before it goes [`ComponentState::Disconnected`] (default 8 s, see
    /// [`DEFAULT_DISCONNECTED_TIMEOUT`]). At least 100 ms.
    pub fn disconnected_timeout(mut self, timeout: Duration) -> Self {
        self.disconnected_timeout = timeout.max(Duration::from_millis(100));
        self
    }

    /// How long a controlled agent waits, after a component's first valid pair, for the
    /// controlling peer to nominate one (default 30 s; RFC 8445 leaves it to the
    /// implementation). The component then fails with [`FailureReason::NominationTimeout`].
    pub fn nomination_timeout(mut self, timeout: Duration) -> Self {
        self.nomination_timeout = timeout;
        self
    }

    /// Offers renomination (draft-thatcher-ice-renomination-01); off by default, as in
    /// libwebrtc, which offers it only when asked. When on, announce it to the peer with
    /// the `renomination` ice-option
    /// ([`IceOption::Renomination`](crate::candidate::IceOption::Renomination)); it is used
    /// on a stream only once the peer announced it too
    /// ([`StreamMut::set_remote_ice_options`](super::StreamMut::set_remote_ice_options)).
    ///
    /// Then the controlling agent nominates with NOMINATION values instead of USE-CANDIDATE,
    /// and after a pair is selected keeps checking the pairs that would beat it: when one
    /// succeeds, it nominates it with a higher value and selects it once that check
    /// succeeds ([`AgentEvent::SelectedPairChanged`]). A controlled agent follows the
    /// highest value it has received. Without it, or if the peer did not announce it,
    /// nomination is regular nomination (RFC 8445 §8.1.1), once per component.
    pub fn renomination(mut self, on: bool) -> Self {
        self.renomination = on;
        self
    }

    /// How often a controlling agent using renomination checks again the failed pairs
    /// that would beat the selected pair (default [`DEFAULT_RENOMINATION_RECHECK`]; at
    /// least 100 ms).
    pub fn renomination_recheck(mut self, interval: Duration) -> Self {
        self.renomination_recheck = interval.max(Duration::from_millis(100));
        self
    }

    /// Continual gathering: local sockets come and go for the whole session (the caller
    /// adds them with [`StreamMut::add_local_socket`](super::StreamMut::add_local_socket)
    /// as interface addresses appear), so gathering never ends: no
    /// [`AgentEvent::GatheringComplete`] is sent, and the caller must not signal
    /// end-of-candidates, after which the peer would refuse the candidates of a new
    /// address (RFC 8838 §13). Off by default: gathering ends once the sockets given before
    /// it started are gathered on. Sockets may be added and removed late either way.
    pub fn continual_gathering(mut self, on: bool) -> Self {
        self.continual_gathering = on;
        self
    }

    /// True if gathering never ends ([`Self::continual_gathering`]).
    pub fn is_continual_gathering(&self) -> bool {
        self.continual_gathering
    }

    /// Makes the agent an ICE-lite agent (RFC 8445 §2.5), for a server on a public
    /// address; off (a full agent) by default. Signal `a=ice-lite` (RFC 8839 §5.3) so the
    /// peer knows. A lite agent:
    ///
    /// - gathers host candidates only (RFC 8445 §5.2): the STUN and TURN servers of this
    ///   configuration are ignored, and so are [`Self::relay_only`] and
    ///   [`Self::renomination`];
    /// - is always controlled (RFC 8445 §6.1.1), whatever [`Self::controlling`] says: a
    ///   full peer that claims the controlled role gets 487 Role Conflict, so that it takes
    ///   the controlling role (RFC 8445 §7.2.5.1), and the lite agent never switches;
    /// - sends no connectivity checks (RFC 8445 §2.5), hence no consent checks either (they
    ///   are Binding requests on the selected pair, RFC 7675 §5.1: only the full peer
    ///   sends them); it answers the peer's checks, and selects
    ///   a pair when a check with USE-CANDIDATE arrives on it (RFC 8445 §7.3.2, §8.2); a
    ///   later nomination of another pair is followed if that pair has a higher priority
    ///   (RFC 8445 §8.1.1: with several nominated pairs the highest-priority one is used);
    /// - treats an authenticated check from the peer on the selected pair as its consent:
    ///   with none for the consent timeout ([`Self::consent_timeout`]) the component fails
    ///   with [`FailureReason::ConsentLost`], as a full agent does when its consent checks go
    ///   unanswered.
    ///
    /// See the [module docs](super#ice-lite) for the rest, and
    /// [`StreamMut::set_remote_lite`](super::StreamMut::set_remote_lite) for a full agent
    /// facing a lite peer. Two lite agents cannot connect: neither checks.
    pub fn lite(mut self, lite: bool) -> Self {
        self.lite = lite;
        self
    }

    /// True if the agent is an ICE-lite agent ([`Self::lite`]).
    pub fn is_lite(&self) -> bool {
        self.lite
    }

    /// True if the agent offers renomination ([`Self::renomination`]).
    pub fn is_renomination(&self) -> bool {
        self.renomination
    }

    /// The STUN servers, in the order given.
    pub fn stun_servers(&self) -> &[StunServer] {
        &self.stun_servers
    }

    /// The TURN servers, in the order given.
    pub fn turn_servers(&self) -> &[TurnServer] {
        &self.turn_servers
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

/// The state of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ComponentState {
    /// Checks have not produced a selected pair yet.
    Connecting,
    /// A pair is selected: data can be sent.
    Connected,
    /// A pair is selected but nothing authenticated has come from the peer on it for the
    /// Disconnected timeout ([`AgentConfig::disconnected_timeout`]). Data can still be
    /// sent; the component goes back to `Connected` as soon as the peer is heard again,
    /// or fails once consent expires.
    Disconnected,
    /// The component cannot carry data: its checks failed, the controlling peer never
    /// nominated, or consent was lost. [`Agent::failure_reason`](super::Agent::failure_reason)
    /// tells which.
    Failed,
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
        })
    }
}

/// What the connectivity checks of a component got, for [`FailureReason`]: each count is
/// of checks (transactions), not of packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CheckFailures {
    /// Checks that got no answer at all.
    pub timeouts: u32,
    /// Checks the peer refused with 401 Unauthenticated: it did not accept our credentials.
    pub unauthorized: u32,
    /// 487 Role Conflict answers (RFC 8445 §7.2.5.1).
    pub role_conflicts: u32,
    /// Other error responses, and success responses that could not be used.
    pub other_errors: u32,
    /// Checks the network refused (ICMP unreachable, a socket error), as reported by the
    /// caller through [`Agent::handle_unreachable`](super::Agent::handle_unreachable).
    pub unreachable: u32,
}

impl CheckFailures {
    /// The sum of the counts.
    pub fn total(&self) -> u32 {
        self.timeouts
            .saturating_add(self.unauthorized)
            .saturating_add(self.role_conflicts)
            .saturating_add(self.other_errors)
            .saturating_add(self.unreachable)
    }
}

impl fmt::Display for CheckFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} timed out, {} unauthorized (401), {} role conflicts (487), {} other errors, {} unreachable",
            self.timeouts,
            self.unauthorized,
            self.role_conflicts,
            self.other_errors,
            self.unreachable
        )
    }
}

/// Why a component failed ([`ComponentState::Failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// Every candidate pair failed once both sides had ended their candidates
    /// (RFC 8445 §6.1.2.1, per component), with what the checks got.
    ChecksFailed(CheckFailures),
    /// Every candidate pair failed and the peer refused checks with 401 Unauthenticated:
    /// the remote password (or ufrag) given to this agent is not the peer's.
    AuthenticationFailed(CheckFailures),
    /// The component had a valid pair but the controlling peer nominated none within
    /// [`AgentConfig::nomination_timeout`].
    NominationTimeout,
    /// No consent refresh came within [`AgentConfig::consent_timeout`] (RFC 7675 §5.1):
    /// the peer is gone or stopped answering.
    ConsentLost,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChecksFailed(c) => write!(f, "every candidate pair failed ({c})"),
            Self::AuthenticationFailed(c) => write!(
                f,
                "authentication failed: the peer refused our checks with 401 ({c})"
            ),
            Self::NominationTimeout => {
                write!(f, "the controlling peer nominated no pair in time")
            }
            Self::ConsentLost => write!(f, "consent lost: the peer stopped answering"),
        }
    }
}

/// Consent freshness counters of a component (RFC 7675).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentStats {
    /// Consent checks (transactions) sent, retransmissions not counted.
    pub requests_sent: u64,
    /// Authenticated success responses that refreshed consent.
    pub responses_received: u64,
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
    /// A new local host candidate to signal, its address hidden behind a `.local` name
    /// ([`AgentConfig::hide_host_addresses`]). A name replaced after a conflict announces
    /// the candidates again under the new name.
    LocalNamedCandidate {
        /// The stream.
        stream: StreamId,
        /// The candidate.
        candidate: NamedCandidate,
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
    /// A component selected its first pair: data can be sent on it.
    SelectedPair {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
        /// The pair.
        pair: Box<SelectedPair>,
    },
    /// A component's selected pair moved to another one: a better pair the peer nominated
    /// (RFC 8445 §8.1.1), a renomination, or the end of an ICE restart. Data goes on `new`
    /// from now on; what was sent on `old` still arrives.
    SelectedPairChanged {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
        /// The pair selected until now.
        old: Box<SelectedPair>,
        /// The pair selected from now on.
        new: Box<SelectedPair>,
    },
    /// Consent expired on a component's selected pair (RFC 7675 §5.1): it sends no more
    /// data. [`AgentEvent::ComponentFailed`] and the `Failed` state follow.
    ConsentLost {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
    },
    /// A component failed, and why; the [`ComponentState::Failed`] state change follows.
    ComponentFailed {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
        /// Why.
        reason: FailureReason,
    },
    /// The agent changed role after a role conflict (RFC 8445 §7.3.1.1, §7.2.5.1).
    RoleChange {
        /// The new role.
        controlling: bool,
    },
    /// The local socket of a component's selected pair went away
    /// ([`StreamMut::remove_local_socket`](super::StreamMut::remove_local_socket): its
    /// address left the machine, or the socket failed), or its ICE-TCP connection ended
    /// ([`Agent::handle_tcp_closed`](super::Agent::handle_tcp_closed)). The component has no selected pair
    /// and is [`ComponentState::Disconnected`] until another is selected
    /// ([`AgentEvent::SelectedPairChanged`] with this pair as `old`); sending fails with
    /// [`AgentError::NotConnected`] meanwhile. The controlling agent under renomination
    /// checks the component's remaining pairs (and those of sockets added since) and
    /// renominates the best valid one; otherwise [`AgentEvent::RestartNeeded`] follows.
    SelectedPairLost {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
        /// The pair that was selected.
        pair: Box<SelectedPair>,
    },
    /// A component lost its selected pair ([`AgentEvent::SelectedPairLost`]) and cannot
    /// get another without an ICE restart: this agent is controlled, or renomination is not
    /// in use (RFC 8445 §8.1.1 lets the controlling agent nominate once per component), or
    /// no pair is left to try. Restart the stream
    /// ([`StreamMut::restart`](super::StreamMut::restart)) and signal the new credentials,
    /// or wait for the peer to. Sent once per loss.
    RestartNeeded {
        /// The stream.
        stream: StreamId,
        /// The component.
        component: ComponentId,
    },
    /// An ICE restart of the stream began (RFC 8445 §9): it has new local credentials
    /// and new check lists, and gathers again if it had gathered. Signal the new
    /// [`StreamMut::local_credentials`](super::StreamMut::local_credentials) and the
    /// [`AgentEvent::LocalCandidate`]s and [`AgentEvent::GatheringComplete`] that follow,
    /// as at the start; after a [`RestartOrigin::Local`] restart, apply the peer's new
    /// credentials and candidates when they come. Each component's selected pair keeps
    /// carrying data until the restart selects a new one
    /// ([`AgentEvent::SelectedPairChanged`], or [`AgentEvent::SelectedPair`] for a
    /// component that had none).
    Restarted {
        /// The stream.
        stream: StreamId,
        /// Which side restarted.
        origin: RestartOrigin,
    },
}

/// Which side began an ICE restart ([`AgentEvent::Restarted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestartOrigin {
    /// This agent, through [`StreamMut::restart`](super::StreamMut::restart).
    Local,
    /// The peer: it signalled new credentials
    /// ([`StreamMut::set_remote_credentials`](super::StreamMut::set_remote_credentials)),
    /// and this agent restarted too (RFC 8839 §4.4.1.1.1).
    Remote,
}

/// What the agent asks of the I/O layer that runs it, apart from sending datagrams
/// ([`Agent::poll_io_request`](super::Agent::poll_io_request)). These are not
/// [`AgentEvent`]s: an application built on an I/O layer never sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoRequest {
    /// Open a TCP connection from `local`'s IP (any port, unless `local` names one) to
    /// `remote`, and answer with
    /// [`Agent::handle_tcp_connected`](super::Agent::handle_tcp_connected) or
    /// [`Agent::handle_tcp_connect_failed`](super::Agent::handle_tcp_connect_failed).
    TcpConnect {
        /// Names this request in the answer.
        id: u64,
        /// The local address to connect from (port 0: any). A non-zero port is that of a
        /// simultaneous-open socket (a STUN query for its server-reflexive candidate):
        /// bind it with `SO_REUSEADDR`, as for [`IoRequest::IceTcpConnect`]'s simultaneous
        /// opens.
        local: SocketAddr,
        /// The address to connect to.
        remote: SocketAddr,
        /// Wrap the connection in TLS (a TURN server configured with
        /// [`TurnServer::over_tls`]) before answering.
        tls: bool,
    },
    /// Open a TCP connection for an ICE-TCP check (RFC 6544 §7.1) from `local` to
    /// `remote`, and answer as for [`IoRequest::TcpConnect`]. Frame what goes over it with
    /// RFC 4571's 16-bit length, both ways; when it ends, tell
    /// [`Agent::handle_tcp_closed`](super::Agent::handle_tcp_closed).
    ///
    /// For an active candidate `local` has port 0 (connect from any port of its IP). For a
    /// simultaneous-open candidate (`simultaneous_open`, RFC 6544 §7.1) `local` is the
    /// candidate's own address and port: connect from exactly there (binding with
    /// `SO_REUSEADDR`, as the socket given to
    /// [`StreamMut::add_local_so_socket`](super::StreamMut::add_local_so_socket) must be,
    /// so that several connections share the port); the peer connects to this side at the
    /// same time, and the two SYNs crossing make one connection. A connection refused (a
    /// reset, the peer not connecting yet) or timed out is answered with
    /// [`Agent::handle_tcp_connect_failed`](super::Agent::handle_tcp_connect_failed): the
    /// pair fails. Answer with the connection's real local address: for a simultaneous open
    /// it must be `local`.
    IceTcpConnect {
        /// Names this request in the answer.
        id: u64,
        /// The local address to connect from (port 0: any).
        local: SocketAddr,
        /// The peer's candidate: passive, or `so` for a simultaneous open.
        remote: SocketAddr,
        /// A simultaneous open from `local`'s port (an `so` pair), not an active connect.
        simultaneous_open: bool,
    },
    /// Close the TCP connection between these addresses.
    TcpClose {
        /// The local end.
        local: SocketAddr,
        /// The remote end.
        remote: SocketAddr,
    },
    /// Resolve the peer's `.local` name through mDNS (RFC 6762, e.g. with
    /// [`Mdns::resolve`](crate::mdns::Mdns::resolve)), and answer with
    /// [`Agent::handle_mdns_resolved`](super::Agent::handle_mdns_resolved) or
    /// [`Agent::handle_mdns_resolve_failed`](super::Agent::handle_mdns_resolve_failed).
    /// Asked once per name.
    MdnsResolve {
        /// The name.
        name: HostName,
    },
    /// Publish `name` for `address` through mDNS (e.g. with
    /// [`Mdns::publish`](crate::mdns::Mdns::publish)), and answer with
    /// [`Agent::handle_mdns_published`](super::Agent::handle_mdns_published) once it is
    /// claimed or [`Agent::handle_mdns_publish_failed`](super::Agent::handle_mdns_publish_failed)
    /// on a conflict (also one after it was claimed).
    MdnsPublish {
        /// A fresh `<uuid>.local` name.
        name: HostName,
        /// The local address it hides.
        address: std::net::IpAddr,
    },
    /// Withdraw a name asked for by [`IoRequest::MdnsPublish`] (e.g. with
    /// [`Mdns::unpublish`](crate::mdns::Mdns::unpublish)); no answer is expected.
    MdnsUnpublish {
        /// The name.
        name: HostName,
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
    /// The candidate pair it arrived on: a pair whose (local base, remote address) a check
    /// has verified (see [`Agent::handle_incoming`](super::Agent::handle_incoming)).
    pub pair: PairId,
    /// The bytes, borrowed from the datagram given to
    /// [`Agent::handle_incoming`](super::Agent::handle_incoming).
    pub data: &'a [u8],
}

/// A request the caller should not have made: a programming error of the code that drives
/// the agent, not a condition of the network or of the peer. Retrying the same call cannot
/// succeed. [`AgentError::Usage`] carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// No stream has this id.
    UnknownStream(StreamId),
    /// The stream has no component with this id.
    UnknownComponent(ComponentId),
    /// A stream may have at most 256 components (RFC 8445 §5.1.2.1).
    TooManyComponents,
    /// This local socket is already registered.
    DuplicateSocket(SocketAddr),
    /// Components must be added before gathering starts.
    GatheringStarted,
    /// No local socket is registered at this address (for this component).
    UnknownSocket(SocketAddr),
    /// A remote candidate for a component the stream lacks. The caller gives the agent
    /// the components the session has; a candidate beyond them means the caller and its
    /// signalling disagree on the session.
    CandidateComponent(ComponentId),
    /// No outstanding TCP connect request has this id: an answer to
    /// [`IoRequest::TcpConnect`] given twice, or for a request never made.
    UnknownTcpConnect(u64),
    /// [`StreamMut::add_local_so_socket`](super::StreamMut::add_local_so_socket) without
    /// [`AgentConfig::tcp_simultaneous_open`], on a lite agent (it sends no checks, and an
    /// `so` pair needs both sides to connect), or with port 0.
    SimultaneousOpenSocket(SocketAddr),
    /// An mDNS answer for a name the agent is not waiting for: never asked, answered
    /// already, or given up after [`AgentConfig::mdns_timeout`]. Nothing changed.
    UnknownMdnsName(String),
    /// A remote candidate's host name is not a `.local` one. The agent resolves only mDNS
    /// names; resolve others with the system resolver and add
    /// [`NamedCandidate::resolve`]'s result.
    UnsupportedHostName(HostName),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownStream(id) => write!(f, "no stream with id {id}"),
            Self::UnknownComponent(id) => write!(f, "no component with id {id}"),
            Self::TooManyComponents => write!(f, "a stream has at most 256 components"),
            Self::DuplicateSocket(addr) => write!(f, "local socket {addr} is already registered"),
            Self::GatheringStarted => {
                write!(f, "components must be added before gathering starts")
            }
            Self::UnknownSocket(addr) => {
                write!(f, "no local socket {addr} is registered for this component")
            }
            Self::CandidateComponent(id) => {
                write!(
                    f,
                    "remote candidate for component {id}, which the stream lacks"
                )
            }
            Self::UnknownTcpConnect(id) => write!(f, "no TCP connect request with id {id}"),
            Self::SimultaneousOpenSocket(addr) => write!(
                f,
                "simultaneous-open socket {addr} refused: AgentConfig::tcp_simultaneous_open is off, the agent is lite, or the port is 0"
            ),
            Self::UnknownMdnsName(name) => {
                write!(f, "no mDNS request is waiting for name {name:?}")
            }
            Self::UnsupportedHostName(name) => write!(
                f,
                "remote candidate name {name} is not a .local name; only mDNS names are resolved"
            ),
        }
    }
}

impl std::error::Error for UsageError {}

/// A request the agent cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// The caller misused the API (see [`UsageError`]). Transparent: its `Display` is the
    /// inner error's.
    Usage(UsageError),
    /// The component has no selected pair to send on. Not a [`UsageError`]: whether a pair
    /// is selected yet depends on the network and the peer, and a send racing with the
    /// selection may meet it.
    NotConnected,
    /// The component failed (consent lost, checks failed, no nomination): it sends nothing.
    Failed(FailureReason),
    /// No TURN relay carries this pair.
    Relay(crate::turn::TurnError),
    /// Remote candidates cannot be added after end-of-candidates (RFC 8838 §13).
    ///
    /// Not a [`UsageError`]: the caller passes on what the peer signals, in the order it
    /// arrives, and a candidate after the peer's end-of-candidates is the peer's (or its
    /// signalling channel's) fault far more often than the caller's. The caller may log it
    /// and carry on; the agent is unchanged.
    AfterEndOfCandidates,
    /// Bad credentials.
    Credentials(IceCredentialError),
    /// A candidate could not be made.
    Candidate(CandidateError),
    /// A candidate line did not parse.
    CandidateParse(CandidateParseError),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Transparent: the inner error's text; its source (none) below.
            Self::Usage(e) => write!(f, "{e}"),
            Self::NotConnected => write!(f, "the component has no selected pair"),
            Self::Failed(reason) => write!(f, "the component failed: {reason}"),
            Self::Relay(e) => write!(f, "relay: {e}"),
            Self::AfterEndOfCandidates => {
                write!(f, "remote candidate after end-of-candidates")
            }
            // The inner errors are the `source()`, not repeated here.
            Self::Credentials(_) => write!(f, "bad ICE credentials"),
            Self::Candidate(_) => write!(f, "cannot make the candidate"),
            Self::CandidateParse(_) => write!(f, "bad candidate line"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Usage(e) => e.source(),
            Self::Credentials(e) => Some(e),
            Self::Candidate(e) => Some(e),
            Self::CandidateParse(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UsageError> for AgentError {
    fn from(e: UsageError) -> Self {
        Self::Usage(e)
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
