//! # librice
//!
//! An ICE (RFC 8445) library for async Rust: gather candidates, exchange them with a peer
//! over your own signalling, and get connected components to send and receive datagrams
//! on. This crate is the async facade over the sans-IO core [`librice_proto`]: it owns the
//! sockets, timers and the one driver task per agent, through the [`Runtime`] trait, so
//! that it depends on no particular async runtime (`librice-tokio` and
//! `librice-async-std` provide one each).
//!
//! ```no_run
//! # async fn run(runtime: std::sync::Arc<dyn librice::Runtime>) -> Result<(), librice::Error> {
//! use futures::StreamExt;
//!
//! let agent = librice::Agent::builder().runtime(runtime).controlling(true).build()?;
//! let stream = agent.add_stream();
//! let component = stream.add_component()?;
//! let mut candidates = stream.gather_candidates()?;
//! while let Some(candidate) = candidates.next().await {
//!     println!("a={candidate}"); // signal it to the peer
//! }
//! // ... stream.set_remote_credentials(..), stream.add_remote_candidate(..) from the peer ...
//! let pair = component.connected().await?;
//! println!("connected: {} -> {}", pair.local, pair.remote);
//! component.send(b"hello").await?;
//! let mut incoming = component.recv();
//! let reply = incoming.next().await;
//! # Ok(()) }
//! ```
//!
//! ## Shape
//! - [`Agent`] (built with [`Agent::builder`]): streams, events ([`Agent::events`]).
//! - [`Stream`]: components, [`Stream::gather_candidates`] (each an [`IceCandidate`]: an
//!   address, or a `.local` name, see [mDNS candidates](#mdns-candidates)), credentials,
//!   remote candidates, end-of-candidates.
//! - [`Component`]: [`Component::connected`], [`Component::send`], [`Component::recv`],
//!   [`Component::failure_reason`], [`Component::consent_stats`], [`Component::stats`].
//! - [`Datagram`] ([`Component::datagram`]): the transport for DTLS, QUIC or SRTP stacks:
//!   [`Datagram::poll_recv`] into the caller's buffer with a [`RecvMeta`] (no allocation
//!   per datagram), [`Datagram::poll_send`] on the selected pair, a [`DatagramSender`] per
//!   sending task (each waits for a full socket with its own waker), and a
//!   `futures::Stream`/`Sink` of owned buffers.
//! - Statistics: [`Stream::stats`] ([`StreamStats`]: every pair's checks, answers,
//!   round-trip times and data each way, the data sent on the components' fast path
//!   included), [`Component::stats`], [`Component::selected_pair_stats`].
//!
//! Handles are cheap clones that lock briefly and wake the driver. Dropping the last handle
//! of an agent (or [`Agent::close`]) ends its driver task and closes its sockets.
//!
//! Every fallible call returns the one [`Error`] type: a misuse (a programming error, such
//! as a component added after gathering started) is [`Error::Usage`] with a
//! [`UsageError`], whether this crate or the core found it; a failed component is
//! [`Error::Failed`], a closed agent [`Error::Closed`], the core's other refusals
//! [`Error::Agent`], and the operating system's errors [`Error::Io`].
//!
//! ## Liveness
//!
//! Once a component has a selected pair, the sans-IO core watches it and this crate
//! reports what it finds. The timers, all set on [`AgentBuilder`]:
//!
//! | timer | default | source |
//! |---|---|---|
//! | consent check interval ([`AgentBuilder::consent_interval`]) | 5 s, each drawn from 4 to 6 s | RFC 7675 §5.1 |
//! | consent expiry ([`AgentBuilder::consent_timeout`]) | 30 s after the last refresh | RFC 7675 §5.1 |
//! | Disconnected ([`AgentBuilder::disconnected_timeout`]) | 8 s without hearing the peer | this library, see below |
//! | nomination wait of a controlled agent ([`AgentBuilder::nomination_timeout`]) | 30 s after the first valid pair | RFC 8445 leaves it to the implementation |
//! | keepalives, only with [`AgentBuilder::consent_freshness`] off | 15 s | RFC 8445 §11 |
//!
//! Why 8 s for Disconnected: on a healthy pair whose only traffic is consent checks, an
//! answer to one of ours comes at least every 6 s (1.2 x 5 s), plus a round trip; a lost
//! request or response is made up by the check's retransmissions within 1.5 s more. So a
//! healthy pair never goes Disconnected, while a dead path shows within 8 s, long before
//! consent expires.
//!
//! What the application sees, on [`Agent::events`] and on the [`Component`]:
//! - [`AgentEvent::ComponentStateChange`] with [`ComponentState::Disconnected`] when the peer has
//!   been silent for the Disconnected timeout (data can still be sent), and back to
//!   [`ComponentState::Connected`] when it is heard again. [`Component::connected`] counts
//!   a Disconnected component as connected.
//! - [`AgentEvent::ConsentLost`] when consent expires, then [`AgentEvent::ComponentFailed`]
//!   with the [`FailureReason`], then the state change to [`ComponentState::Failed`]. A
//!   failed component sends nothing: [`Component::send`] and [`Component::connected`]
//!   return [`Error::Failed`] with the reason, and [`Component::failure_reason`] tells it
//!   too.
//! - [`Component::consent_stats`] counts consent checks sent and answered
//!   ([`ConsentStats`]); [`Component::dropped_unverified`] counts datagrams of data
//!   dropped because they came from an address no check verified.
//!
//! The failure reasons ([`FailureReason`]): `ChecksFailed` (every candidate pair failed
//! once both sides ended their candidates, RFC 8445 §6.1.2.1, with [`CheckFailures`]
//! counting what the checks got), `AuthenticationFailed` (the same, with the peer refusing
//! our checks with 401: the remote credentials are wrong), `NominationTimeout` (a
//! controlled agent was never nominated a pair) and `ConsentLost` (RFC 7675 §5.1). A send
//! that the operating system refuses with an error is reported to the core
//! ([`proto::agent::Agent::handle_unreachable`]), which fails a check in flight on that
//! pair at once.
//!
//! ## Trickle ICE
//!
//! The agent always works the trickle way (RFC 8838), which serves both kinds of peer, so
//! there is no trickle switch: [`Stream::gather_candidates`] yields each local candidate as
//! it is found, remote candidates are taken whenever they come, checks start as soon as a
//! pair can be formed, and a check list is not failed before
//! [`Stream::end_of_remote_candidates`]. An application that signals all at once (no
//! trickle) collects the candidates first, `stream.gather_candidates()?.collect::<Vec<_>>()
//! .await` (the stream ends when gathering completes), and on receiving the peer's
//! description adds all its candidates, then calls [`Stream::end_of_remote_candidates`].
//!
//! ## Cargo features
//!
//! - `tls` (default): TURN servers over TLS ([`AgentBuilder::turn_server_tls`]), with rustls
//!   on its aws-lc-rs crypto provider (or the process-default provider, if the application
//!   installed one) and the webpki root certificates. The TLS client configurations are
//!   built once per process and shared by all agents. Without the feature this crate does
//!   not depend on rustls, and [`AgentBuilder::build`] refuses a TURN server over TLS with
//!   [`Error::TlsUnavailable`]. The runtime adapters forward it as their own `tls` feature
//!   (default on too).
//!
//! ## Network change
//!
//! Each agent watches the machine's interface addresses ([`NetworkChange`], on the builder
//! with [`AgentBuilder::network_change`]): the sockets of an address that goes away are
//! closed, and a component whose selected pair used one moves to another pair
//! (renomination, when controlling) or asks for an ICE restart
//! ([`AgentEvent::RestartNeeded`]; [`OnPathLost::Restart`] restarts by itself). With
//! continual gathering, new addresses are gathered on and their candidates come out of
//! [`Stream::gather_candidates`], which then never ends.
//!
//! ## mDNS candidates
//!
//! Host addresses can hide behind random `<uuid>.local` names, as browsers do
//! (draft-ietf-mmusic-mdns-ice-candidates): with [`AgentBuilder::hide_host_addresses`],
//! [`Stream::gather_candidates`] yields host candidates as [`IceCandidate::Named`], whose
//! `Display` is the SDP line to signal, and the process's mDNS responder publishes each
//! name (RFC 6762: probed, announced, answered, withdrawn with a goodbye when the agent
//! closes). Any agent resolves the `.local` candidates a peer signals: give them to
//! [`Stream::add_remote_candidate`] like any other ([`IceCandidate::parse`] reads both
//! kinds).
//!
//! ```no_run
//! # async fn run(
//! #     runtime: std::sync::Arc<dyn librice::Runtime>,
//! #     from_peer: Vec<String>,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use librice::IceCandidate;
//!
//! let agent = librice::Agent::builder()
//!     .runtime(runtime)
//!     .hide_host_addresses(true)
//!     .build()?;
//! let stream = agent.add_stream();
//! stream.add_component()?;
//! let mut candidates = stream.gather_candidates()?;
//! while let Some(candidate) = candidates.next().await {
//!     if let IceCandidate::Named(named) = &candidate {
//!         println!("hidden behind {}", named.name());
//!     }
//!     println!("a={candidate}"); // signal it
//! }
//! for line in from_peer {
//!     // ".local" names or addresses alike
//!     stream.add_remote_candidate(IceCandidate::parse(&line)?)?;
//! }
//! # Ok(()) }
//! ```
//!
//! One mDNS responder and resolver serves the whole process (RFC 6762 §15), whatever
//! runtime its agents run on: it binds port 5353 with `SO_REUSEADDR` (and `SO_REUSEPORT`
//! on Unix), so that it shares the port with the system's responder (avahi,
//! mDNSResponder) and other processes; joins 224.0.0.251 (and ff02::fb) on the interfaces
//! its agents gather on; sends with a TTL of 255 (RFC 6762 §11) and loops multicast back,
//! so that agents of one machine find each other. Its task runs on the runtime of the
//! first agent that needs it and moves to another agent's runtime if that one shuts down;
//! it ends with the last agent. Queries ask for multicast answers (a unicast one would
//! reach only one of the processes on port 5353, RFC 6762 §15.1), so a name is resolved
//! in a few milliseconds, or up to a second when it was announced less than a second
//! before (RFC 6762 §6); a name another agent of the process publishes resolves at once.
//! When port 5353 cannot be used, the agent's names fail (with a warning traced): remote
//! `.local` candidates are dropped, local names stay announced but unpublished, and the
//! rest of ICE goes on. mDNS needs multicast on the interfaces: Linux's `lo` has no
//! `MULTICAST` flag by default, which this crate's tests set inside a network namespace.
//!
//! ## ICE-TCP
//!
//! [`AgentBuilder::transports`] adds ICE-TCP host candidates (RFC 6544): a listener per
//! address per component gives a passive candidate and an active one; checks and data go
//! over one connection per pair, framed with RFC 4571's length. STUN servers over TCP
//! ([`AgentBuilder::stun_server_tcp`]) give server-reflexive TCP candidates.
//!
//! [`AgentBuilder::tcp_simultaneous_open`] (off by default) adds a simultaneous-open (`so`)
//! candidate per listener address, on a port of its own that a socket bound with address
//! reuse holds without listening; STUN servers over TCP are then asked from that port, so
//! the server-reflexive TCP candidates are `so` ones the NAT maps to it. The check of an
//! `so` pair connects from that port with [`Runtime::tcp_connect`] while the peer connects
//! to it, and the crossing SYNs make one connection (a TCP simultaneous open); a connect
//! that is refused or times out fails that pair only. Without the option, server-reflexive
//! TCP candidates are gathered and signalled as `so` but pair with nothing.
//!
//! ## Server mode
//! An [`Endpoint`] serves any number of agents on one UDP port per address (and, with
//! [`EndpointBuilder::ice_tcp`], one ICE-TCP listener), with one task for all of them:
//! build each agent with [`AgentBuilder::endpoint`], usually lite, and use it as any other.
//! See [`endpoint`].
//!
//! ## ICE-lite
//! [`AgentBuilder::lite`] makes an ICE-lite agent (RFC 8445 §2.5: host candidates only,
//! always controlled, no checks of its own; see
//! [`AgentConfig::lite`](librice_proto::agent::AgentConfig::lite)), and
//! [`Stream::set_remote_lite`] tells a full agent that its peer is one, so that it takes
//! the controlling role and nominates.

mod agent;
mod candidate;
pub mod conformance;
mod datagram;
mod driver;
pub mod endpoint;
mod error;
mod ifchanges;
mod ingest;
pub mod interfaces;
mod mdns;
mod netwatch;
mod recv_ring;
mod registry;
pub mod runtime;
mod send;
mod shared;
mod socket;
mod stream;
mod tcp;
#[cfg(feature = "tls")]
mod tls;

pub use agent::{Agent, AgentBuilder, Events};
pub use candidate::IceCandidate;
pub use datagram::{Datagram, DatagramSender, RecvMeta};
pub use endpoint::{Endpoint, EndpointBuilder};
pub use error::Error;
pub use librice_proto as proto;
/// What an agent reports ([`Agent::events`]): the sans-IO core's own event type.
pub use librice_proto::agent::AgentEvent;
pub use librice_proto::agent::{
    CandidateStats, CheckFailures, ComponentId, ComponentState, ComponentStats, ConsentStats,
    FailureReason, PairId, PairStats, SelectedPair, StreamId, StreamStats, UsageError,
};
pub use librice_proto::candidate::{Candidate, IceCredentials, IceOption, NamedCandidate};
pub use netwatch::{DEFAULT_INTERFACE_POLL, NetworkChange, OnPathLost};
pub use runtime::{
    AsyncTcpListener, AsyncTcpStream, AsyncTimer, AsyncUdpSocket, AsyncUdpSocketExt, BoxFuture,
    Runtime,
};
pub use socket::{DEFAULT_RECV_BUFFER_SIZE, DEFAULT_SEND_BUFFER_SIZE, SocketBuffers, Transports};
pub use stream::{Component, Connected, GatherStream, Recv, Stream};
