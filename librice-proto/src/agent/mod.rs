//! The ICE agent (RFC 8445), sans-IO: check lists, connectivity checks, nomination,
//! gathering through STUN and TURN servers, liveness (consent freshness, keepalives) and
//! the data path's demultiplexing.
//!
//! # Shape
//! An [`Agent`] holds data streams ([`StreamMut`]), each with components
//! ([`ComponentMut`]). The caller owns the sockets and the clock:
//!
//! 1. Register the local sockets of each component with [`StreamMut::add_local_socket`]
//!    and call [`StreamMut::gather_candidates`]: host candidates come out at once as
//!    [`AgentEvent::LocalCandidate`], server-reflexive and relayed ones as the STUN and TURN
//!    servers answer, then [`AgentEvent::GatheringComplete`].
//! 2. Give the peer's credentials and candidates with [`StreamMut::set_remote_credentials`]
//!    and [`StreamMut::add_remote_candidate`] (all at once or trickled, RFC 8838), then
//!    [`StreamMut::end_of_remote_candidates`].
//! 3. After every input, drain [`Agent::poll_transmit`] (send each [`Transmit`]),
//!    [`Agent::poll_event`], and arm a timer for [`Agent::poll_timeout`]; once its deadline
//!    has passed, call [`Agent::handle_timeout`] (a deadline already due is handled at
//!    once, without waiting). Give every received datagram to [`Agent::handle_incoming`]:
//!    STUN is consumed, anything else comes back as [`ReceivedData`] for its component,
//!    with the [`PairId`] of the candidate pair it came on. A datagram the system refuses
//!    to send goes to [`Agent::handle_unreachable`].
//! 4. Once [`AgentEvent::SelectedPair`] arrives, [`ComponentMut::send`] gives the
//!    [`Transmit`] for application data.
//!
//! A TURN server over TCP or TLS (RFC 8656 §3.1) is reached through a connection the
//! caller opens when asked by [`IoRequest::TcpConnect`] (from [`Agent::poll_io_request`]) (adding TLS when it says so), and
//! reports with [`Agent::handle_tcp_connected`] or [`Agent::handle_tcp_connect_failed`];
//! what it reads is cut into messages with a
//! [`StreamFramer`](crate::stun::StreamFramer) and given to [`Agent::handle_incoming`]
//! with [`TransportType::Tcp`]. [`IoRequest::TcpClose`] asks to close it.
//!
//! Mutations never fail because output was not drained: they queue work. The first check
//! goes out at once (the next `poll_transmit`), later ones every Ta across all check
//! lists and gathering transactions (RFC 8445 §14.2).
//!
//! A blocking loop for one agent on one socket (the signalling is left out: a real
//! application also wakes the loop when the peer's candidates arrive, or uses the async
//! facade, `librice`):
//!
//! ```no_run
//! use std::io::ErrorKind;
//! use std::net::UdpSocket;
//! use std::time::Instant;
//! use librice_proto::agent::{Agent, AgentConfig, AgentEvent};
//! use librice_proto::{Transmit, TransportType};
//!
//! # fn main() -> std::io::Result<()> {
//! let socket = UdpSocket::bind("127.0.0.1:0")?;
//! let local = socket.local_addr()?;
//! let mut agent = Agent::new(AgentConfig::default().controlling(true).rng_seed(7));
//! let stream = agent.add_stream();
//! {
//!     let mut s = agent.stream_mut(stream).expect("just added");
//!     let component = s.add_component().expect("the first component");
//!     s.add_local_socket(component, TransportType::Udp, local).expect("a new socket");
//!     s.gather_candidates(Instant::now()).expect("gathering starts");
//!     // ... signal s.local_credentials() and the LocalCandidate events; then apply the
//!     // peer's with s.set_remote_credentials(..) and s.add_remote_candidate(..).
//! }
//! let mut buf = vec![0u8; 2048];
//! loop {
//!     // Time first: a deadline that has passed is handled now.
//!     let now = Instant::now();
//!     if agent.poll_timeout().is_some_and(|deadline| deadline <= now) {
//!         agent.handle_timeout(now);
//!     }
//!     // Then the output.
//!     while let Some(t) = agent.poll_transmit(now) {
//!         if socket.send_to(&t.data, t.to).is_err() {
//!             agent.handle_unreachable(now, t.from, t.to);
//!         }
//!     }
//!     while let Some(event) = agent.poll_event() {
//!         if let AgentEvent::SelectedPair { pair, .. } = event {
//!             println!("selected {} -> {}", pair.local, pair.remote);
//!         }
//!     }
//!     // Wait for a datagram until the next deadline. One that is already due is handled
//!     // first, without blocking (a zero read timeout is an error, and `None` would block
//!     // until a datagram comes); with no deadline, only a datagram can bring work.
//!     let wait = match agent.poll_timeout() {
//!         Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
//!             Some(wait) if !wait.is_zero() => Some(wait),
//!             _ => continue,
//!         },
//!         None => None,
//!     };
//!     socket.set_read_timeout(wait)?;
//!     match socket.recv_from(&mut buf) {
//!         Ok((len, from)) => {
//!             let t = Transmit { transport: TransportType::Udp, from, to: local, data: &buf[..len] };
//!             if let Some(data) = agent.handle_incoming(Instant::now(), t) {
//!                 println!("{} bytes for component {}", data.data.len(), data.component);
//!             }
//!         }
//!         // The deadline passed: the next turn handles it.
//!         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!         Err(e) => return Err(e),
//!     }
//! }
//! # }
//! ```
//!
//! Two agents on two loopback sockets, driven by one thread until they have connected and
//! sent a datagram each way (the same loop as `examples/src/bin/sansio_pair.rs`, which
//! prints what happens): each turn handles a due timer, feeds every waiting datagram, then
//! drains the output; between turns the thread sleeps until the next deadline, at most
//! 1 ms, since it polls two non-blocking sockets.
//!
//! ```
//! use std::io::ErrorKind;
//! use std::net::{SocketAddr, UdpSocket};
//! use std::time::{Duration, Instant};
//! use librice_proto::agent::{Agent, AgentConfig, AgentEvent, ComponentId, StreamId};
//! use librice_proto::candidate::Candidate;
//! use librice_proto::{Transmit, TransportType};
//!
//! struct Peer {
//!     agent: Agent,
//!     socket: UdpSocket,
//!     local: SocketAddr,
//!     ids: (StreamId, ComponentId),
//!     connected: bool,
//!     received: Vec<Vec<u8>>,
//! }
//!
//! /// An agent with one stream of one component on a non-blocking socket on 127.0.0.1.
//! fn peer(controlling: bool, seed: u64) -> Result<Peer, Box<dyn std::error::Error>> {
//!     let socket = UdpSocket::bind("127.0.0.1:0")?;
//!     socket.set_nonblocking(true)?;
//!     let local = socket.local_addr()?;
//!     let config = AgentConfig::default().controlling(controlling).rng_seed(seed);
//!     let mut agent = Agent::new(config);
//!     let stream = agent.add_stream();
//!     let mut s = agent.stream_mut(stream).ok_or("no stream")?;
//!     let component = s.add_component()?;
//!     s.add_local_socket(component, TransportType::Udp, local)?;
//!     let ids = (stream, component);
//!     Ok(Peer { agent, socket, local, ids, connected: false, received: Vec::new() })
//! }
//!
//! /// One turn: the due timer, the waiting datagrams, then the output. Candidates to
//! /// signal go to `signals` (`None`: end of candidates).
//! fn turn(p: &mut Peer, now: Instant, signals: &mut Vec<Option<Candidate>>) -> std::io::Result<()> {
//!     if p.agent.poll_timeout().is_some_and(|deadline| deadline <= now) {
//!         p.agent.handle_timeout(now);
//!     }
//!     let mut buf = [0u8; 1500];
//!     loop {
//!         match p.socket.recv_from(&mut buf) {
//!             Ok((len, from)) => {
//!                 let t = Transmit { transport: TransportType::Udp, from, to: p.local, data: &buf[..len] };
//!                 if let Some(data) = p.agent.handle_incoming(now, t) {
//!                     p.received.push(data.data.to_vec());
//!                 }
//!             }
//!             Err(e) if e.kind() == ErrorKind::WouldBlock => break,
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     while let Some(t) = p.agent.poll_transmit(now) {
//!         p.socket.send_to(&t.data, t.to)?;
//!     }
//!     while let Some(event) = p.agent.poll_event() {
//!         match event {
//!             AgentEvent::LocalCandidate { candidate, .. } => signals.push(Some(candidate)),
//!             AgentEvent::GatheringComplete { .. } => signals.push(None),
//!             AgentEvent::SelectedPair { .. } => p.connected = true,
//!             _ => {}
//!         }
//!     }
//!     Ok(())
//! }
//!
//! /// Applies what the other agent signalled.
//! fn apply(p: &mut Peer, signals: &mut Vec<Option<Candidate>>) -> Result<(), Box<dyn std::error::Error>> {
//!     let mut s = p.agent.stream_mut(p.ids.0).ok_or("no stream")?;
//!     for signal in signals.drain(..) {
//!         match signal {
//!             Some(candidate) => s.add_remote_candidate(candidate)?,
//!             None => s.end_of_remote_candidates(),
//!         }
//!     }
//!     Ok(())
//! }
//!
//! /// Sends `data` on the selected pair.
//! fn send(p: &mut Peer, now: Instant, data: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//!     let mut s = p.agent.stream_mut(p.ids.0).ok_or("no stream")?;
//!     let t = s.component_mut(p.ids.1).ok_or("no component")?.send(now, data)?;
//!     p.socket.send_to(&t.data, t.to)?;
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let start = Instant::now();
//!     let (mut a, mut b) = (peer(true, 1)?, peer(false, 2)?);
//!     let creds_a = a.agent.stream_mut(a.ids.0).ok_or("no stream")?.local_credentials().clone();
//!     let creds_b = b.agent.stream_mut(b.ids.0).ok_or("no stream")?.local_credentials().clone();
//!     for (p, remote) in [(&mut a, creds_b), (&mut b, creds_a)] {
//!         let mut s = p.agent.stream_mut(p.ids.0).ok_or("no stream")?;
//!         s.set_remote_credentials(remote);
//!         s.gather_candidates(start)?;
//!     }
//!     let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
//!     let mut sent = false;
//!     while a.received.is_empty() || b.received.is_empty() {
//!         assert!(start.elapsed() < Duration::from_secs(10), "connected within 10 s");
//!         let now = Instant::now();
//!         turn(&mut a, now, &mut to_b)?;
//!         turn(&mut b, now, &mut to_a)?;
//!         apply(&mut a, &mut to_a)?;
//!         apply(&mut b, &mut to_b)?;
//!         if a.connected && b.connected && !sent {
//!             send(&mut a, now, b"ping from a")?;
//!             send(&mut b, now, b"ping from b")?;
//!             sent = true;
//!         }
//!         let next = [a.agent.poll_timeout(), b.agent.poll_timeout()].into_iter().flatten().min();
//!         let wait = next.map_or(Duration::MAX, |t| t.saturating_duration_since(Instant::now()));
//!         std::thread::sleep(wait.min(Duration::from_millis(1)));
//!     }
//!     assert_eq!(a.received, [b"ping from b".to_vec()]);
//!     assert_eq!(b.received, [b"ping from a".to_vec()]);
//!     Ok(())
//! }
//! ```
//!
//! # What is implemented
//! Full ICE over UDP, and ICE-lite (below): roles with a 64-bit tie-breaker and 487 role-conflict
//! repair both ways (§7.2.5.1, §7.3.1.1); host, server-reflexive and relayed candidates
//! (TURN over UDP, TCP or TLS, RFC 8656, through [`crate::turn`]); pair formation, priorities (§6.1.2.3), pruning (§6.1.2.4) and a pair limit
//! (§6.1.2.5); the Frozen / Waiting / In-Progress / Succeeded / Failed states with the
//! initial states and unfreezing across check lists (§6.1.2.6, §6.1.4.2, §7.2.5.3.3); Ta
//! pacing shared by all check lists (§14.2) and the check RTO of §14.3; triggered checks
//! (§7.3.1.4); peer-reflexive candidates both ways (§7.2.5.3.1, §7.3.1.3); regular
//! nomination, and accepting USE-CANDIDATE from regular and from RFC 5245 aggressive peers
//! (§7.3.1.5, §8.1.1); trickle (RFC 8838); ICE restarts (§9, RFC 8839 §4.4); renomination, below; liveness, below; and ice-lite both ways, below.
//!
//! # ICE-lite
//! [`AgentConfig::lite`] makes the agent a lite agent (RFC 8445 §2.5), the usual choice of
//! a server on a public address. It:
//!
//! - gathers host candidates only (RFC 8445 §5.2): configured STUN and TURN servers are
//!   ignored (and so are relay-only and renomination); [`Agent::config`] shows the
//!   configuration it runs with;
//! - is always controlled (RFC 8445 §6.1.1: "the lite agent MUST take the controlled
//!   role"), whatever [`AgentConfig::controlling`] says. A full peer whose check claims the
//!   controlled role gets 487 Role Conflict whatever the tie-breakers (§7.3.1.1 would let
//!   the agent with the larger tie-breaker take the controlling role, which a lite agent
//!   cannot hold), and the full peer switches to controlling on it (§7.2.5.1);
//! - sends no requests at all: no connectivity check, no triggered check, no consent
//!   check (§2.5; consent checks are Binding requests, RFC 7675 §5.1, so only the full
//!   peer sends them). It answers the peer's checks as a full agent does (success with
//!   XOR-MAPPED-ADDRESS, §7.3.1.2), learning peer-reflexive candidates (§7.3.1.3);
//! - runs no check-list schedule: its pairs start Waiting (their statistics show it) and
//!   are grouped by no foundation, since nothing of a lite agent is ever unfrozen (the
//!   Frozen state and §6.1.2.6's initial states are the checking agent's);
//! - selects a pair when a check with USE-CANDIDATE arrives on it (§7.3.2: the pair of
//!   the local address the check arrived on and its source goes to the valid list with its
//!   nominated flag set; §8.2): the lite agent has no check of its own to wait for, and
//!   the component becomes `Connected` ([`AgentEvent::SelectedPair`]). A later
//!   USE-CANDIDATE on another pair is followed ([`AgentEvent::SelectedPairChanged`]) if
//!   that pair has a higher priority, else answered and ignored (§8.1.1: with several
//!   nominated pairs, the agents use the one of highest priority);
//! - keeps consent from the peer's side: each authenticated check from the peer on the
//!   selected pair (the full peer's consent checks) refreshes it, and with none for the
//!   consent timeout ([`AgentConfig::consent_timeout`], 30 s by default) the component
//!   fails with [`FailureReason::ConsentLost`], after [`AgentEvent::ConsentLost`], as a
//!   full agent's does when its consent checks go unanswered. Disconnected works as for a
//!   full agent;
//! - restarts as a full agent does (new remote credentials from the peer restart the
//!   stream, [`StreamMut::restart`] restarts it locally): the old pair carries the data
//!   until the peer nominates a new one, its consent kept by the peer's checks on it.
//!
//! A full agent facing a lite peer is told with [`StreamMut::set_remote_lite`] (from
//! `a=ice-lite`, [`IceSdp::is_lite`](crate::candidate::IceSdp::is_lite)): it takes the
//! controlling role (§6.1.1) and nominates with regular nomination (§8.1.1; RFC 8445 has no
//! aggressive nomination). Nothing in it waits for a check from the peer: pacing,
//! nomination and consent run on its own checks, and a check the peer refuses with an
//! unsigned 401 is retransmitted on its schedule (RFC 8489 §9.1.4 discards the 401), so it
//! succeeds once the peer has the credentials. Two lite agents cannot connect (neither
//! checks); [`StreamMut::set_remote_lite`] on a lite agent leaves it as it is.
//!
//! # Renomination
//! Renomination as libwebrtc and libnice speak it (draft-thatcher-ice-renomination-01):
//! offered with [`AgentConfig::renomination`] (off by default) and used on a stream once
//! the peer announced the `renomination` ice-option
//! ([`StreamMut::set_remote_ice_options`]; announce yours with
//! [`IceOption::Renomination`](crate::candidate::IceOption::Renomination)). Then:
//!
//! - the controlling agent nominates with the NOMINATION attribute (0xC001,
//!   [`crate::stun::attr::Nomination`]), its value one above any sent before for the
//!   component (values stay within the draft's 24 bits), instead of USE-CANDIDATE (draft §4;
//!   libwebrtc sends one or the other); a nominating check is retransmitted until answered
//!   (draft §3);
//! - after the selection it keeps checking the pairs that would beat the selected one
//!   (failed ones again every [`AgentConfig::renomination_recheck`],
//!   [`DEFAULT_RENOMINATION_RECHECK`]); a valid pair of strictly higher priority is
//!   renominated, one at a time, and selected once its nominating check succeeds, with
//!   [`AgentEvent::SelectedPairChanged`]. The selected priority only rises, so a pair is
//!   renominated once per improvement and the selection never flaps back;
//! - the controlled agent follows the highest value received for the component (draft §4),
//!   as it follows USE-CANDIDATE (selected once the pair is valid, RFC 8445 §7.3.1.5), even
//!   to a pair of lower priority; a lower or equal value is answered and ignored, and so is
//!   USE-CANDIDATE without a value once a value has come (§4); a NOMINATION of the wrong
//!   length is refused with 400;
//! - consent (RFC 7675) moves to the new pair; the old pair stays valid, so what the peer
//!   still sends on it is delivered, and [`ComponentMut::send`] uses the new pair at once.
//!
//! Without it (either side), nomination is regular nomination as above, and a NOMINATION
//! attribute from the peer is ignored.
//!
//! # Liveness
//! Once a component has a selected pair (see [`ComponentState`]):
//!
//! | timer | default | what happens | where |
//! |---|---|---|---|
//! | consent check | every 4-6 s ([`DEFAULT_CONSENT_INTERVAL`] x 0.8-1.2) | an authenticated Binding request on the selected pair, a new transaction each time | RFC 7675 §5.1 |
//! | consent expiry | [`DEFAULT_CONSENT_TIMEOUT`] (30 s) after the last authenticated success response from the pair's remote address | [`AgentEvent::ConsentLost`], then [`FailureReason::ConsentLost`]; no more data is sent | RFC 7675 §5.1 |
//! | Disconnected | [`DEFAULT_DISCONNECTED_TIMEOUT`] (8 s) without anything authenticated from the peer on the selected pair (a response, a check of theirs, data) | [`ComponentState::Disconnected`], back to `Connected` when the peer is heard | this crate's choice, justified at the constant |
//! | nomination | [`DEFAULT_NOMINATION_TIMEOUT`] (30 s) after the first valid pair, controlled side only | [`FailureReason::NominationTimeout`] | RFC 8445 leaves it to the implementation |
//! | keepalive | [`DEFAULT_KEEPALIVE_INTERVAL`] (15 s), only with consent freshness off | a Binding indication | RFC 8445 §11 |
//! | old pair's consent | as consent check and consent expiry, during an ICE restart, on the pair selected before it, with the old credentials | expiry releases the old pair: [`ComponentState::Disconnected`] until the restart selects a pair | RFC 7675 §5.1, RFC 8445 §9 |
//!
//! All are set in [`AgentConfig`]. A component fails with a [`FailureReason`]: every pair
//! failed ([`FailureReason::ChecksFailed`] with what the checks got, or
//! [`FailureReason::AuthenticationFailed`] when the peer refused them with 401), no
//! nomination, or consent lost; [`AgentEvent::ComponentFailed`] carries it and
//! [`Agent::failure_reason`] keeps it. A failed component sends nothing more and no longer
//! answers checks.
//!
//! Application data is delivered only from remote addresses a check has verified over the
//! local socket (or relay) it arrived on: a valid pair's remote address, or the source of
//! an authenticated check from the peer. Anything else is dropped and counted
//! ([`Agent::dropped_unverified`]).
//!
//! # Restarts
//! [`StreamMut::restart`] restarts ICE on a stream (RFC 8445 §9): new local credentials,
//! new check lists, and gathering again from the same sockets (TURN allocations still in
//! place are confirmed with a refresh and reused; one the server forgot is allocated
//! again). Credentials given to [`StreamMut::set_remote_credentials`] that differ from the
//! ones set before are the peer's restart, and the stream restarts too (RFC 8839
//! §4.4.1.1.1). Either way [`AgentEvent::Restarted`] asks the application to signal the
//! new credentials and candidates as at the start. Until the restart selects a pair for a
//! component, the pair selected before carries its data both ways and keeps its consent
//! with the old credentials; then [`AgentEvent::SelectedPairChanged`] moves the data over
//! and the old generation is released. A check with the new local credentials that comes
//! before the peer's new credentials is answered, as before any remote credentials
//! (RFC 8445 §7.3). A role conflict during a restart is repaired as at the start. A
//! failed component (consent lost, say after a NAT rebinding) becomes `Connecting` again
//! and can connect anew.
//!
//! # Network change
//! Sockets may come and go after gathering started: [`StreamMut::add_local_socket`] then
//! gathers on the new socket at once (continual gathering, with
//! [`AgentConfig::continual_gathering`] so that gathering never ends), and
//! [`StreamMut::remove_local_socket`] drops a socket whose address went away with its
//! candidates and pairs. A component whose selected pair went with it reports
//! [`AgentEvent::SelectedPairLost`]; the controlling agent under renomination moves it to
//! the best pair left, otherwise [`AgentEvent::RestartNeeded`] asks for an ICE restart.
//!
//! # ICE-TCP
//! A TCP socket given to [`StreamMut::add_local_socket`] is a listening socket: it makes a
//! passive and an active host candidate (RFC 6544 §4), which pair by their TCP types
//! (§6.2); an active candidate's check asks the I/O layer for a connection first
//! ([`IoRequest::IceTcpConnect`]), a passive one is checked over the connections the peer
//! opens. With [`AgentConfig::tcp_simultaneous_open`] (off by default), a bound socket
//! given to [`StreamMut::add_local_so_socket`] makes a simultaneous-open (`so`) host
//! candidate, which pairs with the peer's `so` candidates; its checks ask the I/O layer
//! for a simultaneous open from its port. [`Agent::handle_tcp_closed`] reports a
//! connection that ended. See the `icetcp` module (`src/agent/icetcp.rs`).
//!
//! # Left out for now
//! The resolution of host names other than `.local` ones (see
//! [`crate::candidate::NamedCandidate`]).
//!
//! # mDNS candidates
//! The peer's `.local` candidates (draft-ietf-mmusic-mdns-ice-candidates) are resolved
//! through the I/O layer and paired as host candidates; with
//! [`AgentConfig::hide_host_addresses`] the agent hides its own host addresses behind
//! random `<uuid>.local` names. See [`Agent::handle_mdns_resolved`] and the `mdns` module
//! (`src/agent/mdns.rs`) for the requests, answers, limits and timeouts.

mod checklist;
mod checks;
mod config;
mod events;
mod gather;
mod icetcp;
mod ids;
mod lite;
mod liveness;
mod mdns;
mod netchange;
mod pairs;
mod relay;
mod renomination;
mod requests;
mod restart;
mod rng;
mod stats;
mod stream;
mod timers;

#[cfg(test)]
mod icetcp_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand_core::Rng;

use crate::candidate::{Candidate, FoundationSet, IceCredentials};
use crate::compact::{Queue, RareQueue, VecMap, VecSet};
use crate::stun::{IntegrityKey, Sha1Key, TransactionId};
use crate::{Transmit, TransportType};

pub use checklist::PairInfo;
pub use config::{
    AgentConfig, AgentError, AgentEvent, CheckFailures, ComponentState, ConsentStats,
    DEFAULT_CONSENT_INTERVAL, DEFAULT_CONSENT_TIMEOUT, DEFAULT_DISCONNECTED_TIMEOUT,
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_PAIRS, DEFAULT_MAX_PENDING_MDNS_NAMES,
    DEFAULT_MDNS_TIMEOUT, DEFAULT_NOMINATION_TIMEOUT, DEFAULT_RENOMINATION_RECHECK, DEFAULT_TA,
    FailureReason, IoRequest, MIN_TA, ReceivedData, RestartOrigin, SelectedPair, StunServer,
    TurnServer, UsageError,
};
pub use ids::{ComponentId, PairId, StreamId};
pub use mdns::{MAX_CANDIDATES_PER_NAME, MAX_PUBLISH_ATTEMPTS};
pub use pairs::PairState;
pub use stats::{CandidateStats, ComponentStats, PairStats, StreamStats};
pub use stream::{ComponentMut, StreamMut};

use ids::IdVec;
use pairs::CheckList;

/// An ICE agent: the sans-IO state machine for all the data streams of one ICE session.
/// See the [module docs](self) for the call order.
#[derive(Debug)]
pub struct Agent {
    /// Immutable once built; shared by the agents made with [`Agent::with_shared_config`].
    config: Arc<AgentConfig>,
    rng: rng::CompactRng,
    controlling: bool,
    tie_breaker: u64,
    streams: IdVec<StreamId, StreamState>,
    /// Local socket -> its component: the per-packet demultiplexing look-up.
    sockets: VecMap<(u8, SocketAddr), (StreamId, ComponentId)>,
    /// Transactions, pacing and queued server queries (`requests.rs`); `None` until the
    /// first request (never, for a lite agent).
    requests: Option<Box<requests::Requests>>,
    /// Datagrams to send. Gives its memory back once drained (96 B an idle agent): an
    /// answer to a check costs the queue's slot and the answer, two allocations.
    out: Queue<Transmit<Vec<u8>>>,
    /// Events, small while idle (`events.rs`).
    events: events::EventQueue,
    io_requests: RareQueue<IoRequest>,
    foundations: FoundationSet,
    /// The TCP connections of ICE-TCP checks (`icetcp.rs`).
    tcp_checks: icetcp::TcpChecks,
    last_now: Option<Instant>,
    /// The TURN allocations.
    relays: relay::RelaySet,
    /// The peer's `.local` names and this agent's own (`mdns.rs`).
    mdns: mdns::MdnsNames,
}

/// What a STUN transaction in flight is for.
#[derive(Debug, Clone, Copy)]
enum Txn {
    /// A connectivity check on a pair.
    Check {
        stream: StreamId,
        pair: PairId,
        /// The role claimed in the request (RFC 8445 §7.2.5.1).
        controlling: bool,
        use_candidate: bool,
        /// The PRIORITY sent, for a local peer-reflexive candidate (RFC 8445 §7.2.5.3.1).
        priority: u32,
        /// When the check was first sent, for the round-trip time.
        sent_at: Instant,
    },
    /// A Binding request to a STUN server.
    Gather(gather::GatherJob),
    /// A consent check on a component's selected pair (RFC 7675).
    Consent {
        stream: StreamId,
        component: ComponentId,
        /// The selected pair checked.
        pair: PairId,
        /// When the check was first sent, for the round-trip time.
        sent_at: Instant,
    },
    /// A consent check on a component's old path during an ICE restart (`restart.rs`).
    OldPathConsent {
        stream: StreamId,
        component: ComponentId,
    },
}

impl Txn {
    /// The pair a check or consent check went on, and when it was first sent.
    fn checked_pair(&self) -> Option<(StreamId, PairId, Instant)> {
        match *self {
            Txn::Check {
                stream,
                pair,
                sent_at,
                ..
            }
            | Txn::Consent {
                stream,
                pair,
                sent_at,
                ..
            } => Some((stream, pair, sent_at)),
            Txn::Gather(_) | Txn::OldPathConsent { .. } => None,
        }
    }
}

#[derive(Debug)]
struct StreamState {
    local_creds: IceCredentials,
    /// The key of `local_creds`' password: the peer's checks and this agent's answers
    /// carry MESSAGE-INTEGRITY (SHA-1, RFC 8445 §7.2.2, §7.3.1.5); a check with
    /// MESSAGE-INTEGRITY-SHA256 is verified with a key derived from the password then.
    local_key: Sha1Key,
    remote_creds: Option<IceCredentials>,
    /// The key of the peer's password, which signs this agent's requests: set with
    /// `remote_creds` by a full agent, never by a lite one (RFC 8445 §2.5: a lite agent
    /// sends no check; its answers are signed with `local_key`, RFC 8445 §7.3.1.5).
    /// Boxed: a lite agent keeps a null pointer instead of 104 B.
    remote_key: Option<Box<IntegrityKey>>,
    components: IdVec<ComponentId, CompState>,
    local: Vec<LocalCand>,
    remote: Vec<RemoteCand>,
    /// (component, address) -> the index of its remote candidate, in 32 bits (8 B less an
    /// entry): a stream holds fewer than 2^32 remote candidates (`add_remote`).
    remote_by_addr: VecMap<(ComponentId, SocketAddr), u32>,
    /// The candidate pairs and the check list.
    checklist: CheckList,
    remote_eoc: bool,
    gathering: GatherPhase,
    pending_gathers: usize,
    /// The peer announced the `renomination` ice-option.
    remote_renomination: bool,
    /// The selected pairs of the generation before an ICE restart, until the new one
    /// selects its own.
    previous: restart::Previous,
    /// The bases of local candidates whose socket went away (`netchange.rs`): nothing is
    /// paired with them any more. Cleared by an ICE restart, which drops the candidates.
    gone_bases: VecSet<SocketAddr>,
    /// The peer is a lite agent ([`StreamMut::set_remote_lite`]).
    remote_lite: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GatherPhase {
    NotStarted,
    Running,
    Complete,
}

#[derive(Debug)]
struct CompState {
    state: ComponentState,
    selected: Option<PairId>,
    sockets: Vec<(TransportType, SocketAddr)>,
    first_valid_at: Option<Instant>,
    /// The pair whose USE-CANDIDATE check is in flight (controlling).
    nominating: Option<PairId>,
    last_sent: Option<Instant>,
    /// Set once, when the component fails. Boxed: most components never do.
    failure: Option<Box<FailureReason>>,
    /// What the checks of this component got (for the failure reason).
    check_failures: CheckFailures,
    /// Data from unverified sources dropped.
    dropped_unverified: u64,
    consent_stats: ConsentStats,
    /// Consent and Disconnected timers, while a pair is selected.
    live: Option<liveness::Liveness>,
    /// NOMINATION values sent or received, and the rechecks of better pairs.
    renom: renomination::Renomination,
    /// The (local, remote) tuple and id of the old path released at the last ICE restart:
    /// its data still in flight is accepted. Boxed: only restarted components have one.
    retired: Option<Box<((SocketAddr, SocketAddr), PairId)>>,
    /// The selected pair went with its socket, and no other is selected yet.
    lost: Option<netchange::Lost>,
    /// How many local sockets were ever registered: the rank of the next one added after
    /// gathering started (its local preference).
    sockets_added: u16,
}

#[derive(Debug, Clone)]
struct LocalCand {
    candidate: Candidate,
    base: SocketAddr,
    transport: TransportType,
}

#[derive(Debug, Clone)]
struct RemoteCand {
    candidate: Candidate,
}

impl CompState {
    /// True once the component has a selected pair in the current generation (so its
    /// checks are over, RFC 8445 §8.1.2), or has failed. During an ICE restart a component
    /// stays Connected on its old path while its new checks run.
    fn done(&self) -> bool {
        self.selected.is_some() || self.state == ComponentState::Failed
    }
}

impl StreamState {
    /// A pair's (local base, remote address): the key its packets arrive and leave with.
    fn pair_key(&self, pid: PairId) -> (SocketAddr, SocketAddr) {
        let pair = &self.checklist[pid];
        (
            self.local[pair.local].base,
            self.remote[pair.remote].candidate.address(),
        )
    }
}

fn transport_key(transport: TransportType) -> u8 {
    match transport {
        TransportType::Udp => 0,
        TransportType::Tcp => 1,
    }
}

impl Agent {
    /// A new agent with no streams.
    pub fn new(config: AgentConfig) -> Agent {
        let seed = config.rng_seed;
        Agent::with_shared_config(Arc::new(config), seed)
    }

    /// A new agent with no streams, running with `config` (which may be shared by many
    /// agents) and its generator seeded with `rng_seed` instead of
    /// [`AgentConfig::rng_seed`]'s value.
    ///
    /// A server making many agents of one configuration builds it once and hands each
    /// agent a clone of the `Arc` and a seed of its own: the agents then share one copy
    /// of the configuration (about 300 B each otherwise). [`Agent::config`] returns the
    /// shared configuration, whose seed is not the agent's. Agents built this way behave
    /// as [`Agent::new`] of the configuration with [`AgentConfig::rng_seed`] set to
    /// `rng_seed`.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use librice_proto::agent::{Agent, AgentConfig};
    ///
    /// let config = Arc::new(AgentConfig::default().lite(true));
    /// let agents: Vec<Agent> = (0..3)
    ///     .map(|seed| Agent::with_shared_config(Arc::clone(&config), seed))
    ///     .collect();
    /// assert!(agents.iter().all(|a| a.config().is_lite()));
    /// ```
    pub fn with_shared_config(config: Arc<AgentConfig>, rng_seed: u64) -> Agent {
        let config = lite::effective_config(config);
        let mut rng = rng::CompactRng::seed_from_u64(rng_seed);
        let tie_breaker = rng.next_u64();
        Agent {
            controlling: config.controlling,
            tie_breaker,
            config,
            rng,
            streams: IdVec::default(),
            sockets: VecMap::new(),
            requests: None,
            out: Queue::new(),
            events: events::EventQueue::default(),
            io_requests: RareQueue::default(),
            foundations: FoundationSet::new(),
            tcp_checks: icetcp::TcpChecks::default(),
            last_now: None,
            relays: relay::RelaySet::default(),
            mdns: mdns::MdnsNames::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// True while the agent is controlling. Changes on role conflicts
    /// ([`AgentEvent::RoleChange`]).
    pub fn controlling(&self) -> bool {
        self.controlling
    }

    /// The 64-bit tie-breaker sent in ICE-CONTROLLING / ICE-CONTROLLED (RFC 8445 §7.1.3).
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// Adds a data stream with fresh local credentials and no components.
    pub fn add_stream(&mut self) -> StreamId {
        let local_creds = IceCredentials::generate(&mut self.rng);
        let local_key = Sha1Key::short_term(local_creds.pwd());
        let stream = StreamState {
            local_creds,
            local_key,
            remote_creds: None,
            remote_key: None,
            components: IdVec::default(),
            local: Vec::new(),
            remote: Vec::new(),
            remote_by_addr: VecMap::new(),
            checklist: CheckList::default(),
            remote_eoc: false,
            gathering: GatherPhase::NotStarted,
            pending_gathers: 0,
            remote_renomination: false,
            previous: restart::Previous::default(),
            gone_bases: VecSet::new(),
            remote_lite: false,
        };
        self.streams
            .push(stream)
            .expect("every position has a stream id")
    }

    /// The number of streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// A view of stream `id` to configure and query it.
    pub fn stream_mut(&mut self, id: StreamId) -> Option<StreamMut<'_>> {
        self.streams.get(id)?;
        Some(StreamMut::new(self, id))
    }

    /// The state of a component, if it exists.
    pub fn component_state(
        &self,
        stream: StreamId,
        component: ComponentId,
    ) -> Option<ComponentState> {
        self.comp(stream, component).map(|c| c.state)
    }

    /// Why a component failed, once it has ([`ComponentState::Failed`]).
    pub fn failure_reason(
        &self,
        stream: StreamId,
        component: ComponentId,
    ) -> Option<FailureReason> {
        self.comp(stream, component)?.failure.as_deref().copied()
    }

    /// How many datagrams of application data a component dropped because they came from a
    /// remote address no check has verified (or over the wrong local socket or relay).
    pub fn dropped_unverified(&self, stream: StreamId, component: ComponentId) -> Option<u64> {
        self.comp(stream, component).map(|c| c.dropped_unverified)
    }

    /// The consent freshness counters of a component (RFC 7675).
    pub fn consent_stats(&self, stream: StreamId, component: ComponentId) -> Option<ConsentStats> {
        self.comp(stream, component).map(|c| c.consent_stats)
    }

    /// When the consent of a component's selected pair expires unless refreshed
    /// (RFC 7675 §5.1): from that instant no application data may be sent. `None` without
    /// a selected pair, with consent freshness off, or once the component has failed.
    /// During an ICE restart, until the restart selects a pair, the consent of the pair
    /// selected before it.
    pub fn consent_expiry(&self, stream: StreamId, component: ComponentId) -> Option<Instant> {
        let c = self.comp(stream, component)?;
        if !self.config.consent_freshness || c.state == ComponentState::Failed {
            return None;
        }
        let timeout = self.config.consent_timeout;
        c.live.as_ref().map(|l| l.expiry(timeout)).or_else(|| {
            self.streams[stream]
                .previous
                .get(component)
                .map(|p| p.expiry(timeout))
        })
    }

    /// The selected pair of a component, if it has one. During an ICE restart, until the
    /// restart selects a pair, the pair selected before it, which still carries the data.
    pub fn selected_pair(&self, stream: StreamId, component: ComponentId) -> Option<SelectedPair> {
        let s = self.streams.get(stream)?;
        match self.comp(stream, component)?.selected {
            Some(pid) => Some(self.describe_pair(s, pid)),
            None => s.previous.get(component).map(|p| p.described.clone()),
        }
    }

    /// Handles a received datagram (or, over TCP, one framed message): `from` is the sender,
    /// `to` the local socket it arrived on.
    ///
    /// STUN messages for the agent are consumed (checks answered, responses matched) and
    /// `None` is returned; so is anything that arrives on a socket the agent does not know,
    /// or malformed STUN, which is dropped with a trace. Other data on a component's socket
    /// is returned as [`ReceivedData`], with the candidate pair it arrived on, if it comes
    /// from a remote address that a check has verified over that socket (a valid pair's,
    /// or the source of an authenticated check from the peer); from anywhere else it is
    /// dropped and counted ([`Self::dropped_unverified`]). Data on the selected pair also
    /// tells the agent that the peer is alive (see [`ComponentState::Disconnected`]).
    pub fn handle_incoming<'a>(
        &mut self,
        now: Instant,
        transmit: Transmit<&'a [u8]>,
    ) -> Option<ReceivedData<'a>> {
        self.last_now = Some(now);
        let data = transmit.data;
        let key = (transport_key(transmit.transport), transmit.to);
        if let Some(relayed) = self.relay_incoming(now, &transmit) {
            // From a TURN server: a response the client consumed, or relayed data.
            let (idx, peer, inner) = relayed?;
            // Relayed through TURN: as if it arrived on the relayed address from the peer.
            let relayed = self.relayed_for(idx, peer)?;
            let (stream, component) = (self.relays[idx].stream, self.relays[idx].component);
            let inner_t = Transmit {
                transport: TransportType::Udp,
                from: peer,
                to: relayed,
                data: inner,
            };
            if crate::stun::looks_like_stun(inner) {
                self.handle_stun(now, &inner_t, Some((stream, component)));
                return None;
            }
            let pair = self.accept_data(now, stream, component, relayed, peer, inner.len())?;
            return Some(ReceivedData {
                stream,
                component,
                from: peer,
                pair,
                data: inner,
            });
        }
        let Some(&(stream, component)) = self.sockets.get(&key) else {
            if crate::stun::looks_like_stun(data) {
                // A response on a TCP connection to a STUN server.
                self.handle_stun(now, &transmit, None);
            } else {
                tracing::trace!(to = %transmit.to, "datagram for an unknown local socket dropped");
            }
            return None;
        };
        if crate::stun::looks_like_stun(data) {
            self.handle_stun(now, &transmit, Some((stream, component)));
            return None;
        }
        let pair = self.accept_data(
            now,
            stream,
            component,
            transmit.to,
            transmit.from,
            data.len(),
        )?;
        Some(ReceivedData {
            stream,
            component,
            from: transmit.from,
            pair,
            data,
        })
    }

    /// Answers [`IoRequest::TcpConnect`] `id`: the connection is open from `local` to the
    /// requested remote address.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownTcpConnect`] if no request with this id is outstanding.
    pub fn handle_tcp_connected(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
    ) -> Result<(), AgentError> {
        self.last_now = Some(now);
        if self.on_check_connection(now, id, Some(local)) {
            return Ok(());
        }
        let job = self
            .requests
            .as_mut()
            .and_then(|r| r.tcp_connects.remove(&id))
            .ok_or(UsageError::UnknownTcpConnect(id))?;
        self.start_tcp_gather(now, job, local);
        Ok(())
    }

    /// Answers [`IoRequest::TcpConnect`] `id`: the connection could not be opened.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownTcpConnect`] if no request with this id is outstanding.
    pub fn handle_tcp_connect_failed(&mut self, now: Instant, id: u64) -> Result<(), AgentError> {
        self.last_now = Some(now);
        if self.on_check_connection(now, id, None) {
            return Ok(());
        }
        let job = self
            .requests
            .as_mut()
            .and_then(|r| r.tcp_connects.remove(&id))
            .ok_or(UsageError::UnknownTcpConnect(id))?;
        tracing::debug!(server = %job.server, "TCP connection to STUN server failed");
        self.gather_done(job.stream);
        Ok(())
    }

    /// The TCP connection between `local` and `remote` that carried ICE-TCP checks or data
    /// ended: closed or reset by the peer, or failed. The pairs over it fail; a selected one
    /// among them is lost ([`AgentEvent::SelectedPairLost`]: the controlling agent under
    /// renomination moves to another valid pair, otherwise [`AgentEvent::RestartNeeded`]).
    /// A connection the agent does not know is ignored.
    pub fn handle_tcp_closed(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.last_now = Some(now);
        self.on_tcp_closed(now, local, remote);
    }

    /// Advances timers: retransmissions, failed transactions, paced checks, nominations,
    /// consent checks and expiry, Disconnected, and keepalives. Calling it early or more
    /// often than needed is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        for timer in timers::TIMERS {
            self.run_timer(timer, now);
        }
    }

    /// Releases the TURN allocations (Refresh with LIFETIME 0, RFC 8656 §7.2) and asks to
    /// withdraw the agent's mDNS names ([`IoRequest::MdnsUnpublish`]); drain
    /// [`Self::poll_transmit`] and [`Self::poll_io_request`] afterwards so that the
    /// requests go out.
    pub fn close(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.close_relays(now);
        self.unpublish_all();
    }

    /// The number of the peer's `.local` names being resolved (at most
    /// [`AgentConfig::max_pending_mdns_names`]).
    pub fn pending_mdns_names(&self) -> usize {
        self.mdns.pending_count()
    }

    /// The next datagram to send. Also starts the next paced check or gathering request
    /// when its Ta slot has come.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.last_now = Some(now);
        let mut slot_run = false;
        loop {
            if let Some(t) = self.out.pop_front() {
                return Some(t);
            }
            if let Some(r) = self.requests.as_deref_mut() {
                if let Some(t) = r.txns.poll_transmit(now) {
                    // Checks from relayed candidates go through their TURN server.
                    match self.route(t) {
                        Some(t) => return Some(t),
                        None => continue,
                    }
                }
                if let Some(t) = r.gather_txns.poll_transmit(now) {
                    return Some(t);
                }
            }
            if let Some(t) = self.poll_relay_transmit(now) {
                return Some(t);
            }
            if slot_run {
                return None;
            }
            self.run_slot(now);
            slot_run = true;
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }

    /// The next request to the I/O layer (open or close a TCP connection, resolve or
    /// publish an mDNS name). Drain it after every input, like [`Self::poll_transmit`].
    pub fn poll_io_request(&mut self) -> Option<IoRequest> {
        self.io_requests.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called, or `None` when nothing is
    /// scheduled. Has no side effects; changes after any other call on the agent. An
    /// instant at or before the last `now` given means "at once".
    pub fn poll_timeout(&self) -> Option<Instant> {
        timers::TIMERS
            .into_iter()
            .filter_map(|timer| self.deadline(timer))
            .min()
    }

    /// Abandons check or consent transaction `id`, if in flight (see
    /// [`requests::Requests::cancel`]).
    fn cancel_txn(&mut self, id: &TransactionId) {
        if let Some(r) = self.requests.as_deref_mut() {
            r.cancel(id);
        }
    }

    fn comp(&self, stream: StreamId, component: ComponentId) -> Option<&CompState> {
        self.streams.get(stream)?.components.get(component)
    }

    fn describe_pair(&self, s: &StreamState, pid: PairId) -> SelectedPair {
        let pair = &s.checklist[pid];
        let local = &s.local[pair.local];
        SelectedPair {
            local: local.candidate.clone(),
            remote: s.remote[pair.remote].candidate.clone(),
            local_base: local.base,
            transport: local.transport,
        }
    }

    /// True when a paced slot would do something: a gathering request is queued, or a
    /// check list with remote credentials has a triggered, Waiting or Frozen pair.
    fn has_slot_work(&self) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|r| !r.gather_queue.is_empty())
            || self.streams.iter().any(|s| {
                // A lite agent sends no checks (RFC 8445 §2.5).
                !self.lite()
                    && s.remote_key.is_some()
                    && (s.checklist.has_triggered()
                        || s.checklist.count(PairState::Waiting) > 0
                        || s.checklist.count(PairState::Frozen) > 0)
            })
    }

    /// Starts at most one paced transaction if the Ta slot has come (RFC 8445 §14.2):
    /// check lists and gathering take turns.
    fn run_slot(&mut self, now: Instant) {
        let next_slot = self.requests.as_ref().and_then(|r| r.next_slot);
        if next_slot.is_some_and(|t| t > now) {
            return;
        }
        let entries = self.streams.len() + 1;
        let turn = self.requests.as_ref().map_or(0, |r| r.turn);
        for i in 0..entries {
            let entry = (turn + i) % entries;
            let started = if entry == self.streams.len() {
                self.start_next_gather(now)
            } else {
                self.start_next_check(now, StreamId::from_index(entry))
            };
            if started {
                let r = requests::Requests::of(&mut self.requests, &self.config);
                r.turn = (entry + 1) % entries;
                r.next_slot = Some(now + self.config.ta);
                return;
            }
        }
    }

    fn run_keepalives(&mut self, now: Instant) {
        let interval = self.config.keepalive_interval;
        for sid in self.streams.ids() {
            for ci in self.streams[sid].components.ids() {
                let c = &self.streams[sid].components[ci];
                let (Some(pid), Some(last)) = (c.selected, c.last_sent) else {
                    continue;
                };
                if c.state != ComponentState::Connected || last + interval > now {
                    continue;
                }
                // RFC 8445 §11: a Binding indication keeps the NAT bindings open.
                let s = &self.streams[sid];
                let pair = &s.checklist[pid];
                let from = s.local[pair.local].base;
                let to = s.remote[pair.remote].candidate.address();
                let id = TransactionId::generate(&mut self.rng);
                let data = checks::binding_indication(id);
                self.send_out(Transmit {
                    transport: TransportType::Udp,
                    from,
                    to,
                    data,
                });
                self.streams[sid].components[ci].last_sent = Some(now);
            }
        }
    }
}

/// The key a stream keeps of the peer's credentials `creds`: a full agent's, to sign its
/// checks (RFC 8445 §7.2.2); none for a lite agent, which sends none (§2.5).
fn remote_key(config: &AgentConfig, creds: &IceCredentials) -> Option<Box<IntegrityKey>> {
    (!config.lite).then(|| Box::new(short_term_key(creds)))
}

fn short_term_key(creds: &IceCredentials) -> IntegrityKey {
    // ice-pwd is ice-chars only, which OpaqueString leaves as they are; fall back to the raw
    // bytes should preparation ever refuse.
    IntegrityKey::short_term(creds.pwd())
        .unwrap_or_else(|_| IntegrityKey::from_bytes(creds.pwd().as_bytes()))
}
