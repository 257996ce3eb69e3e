//! # librice-proto
//!
//! The sans-IO protocol core of librice: STUN, TURN, candidates and the ICE agent
//! (RFC 8445). Nothing here opens a socket, reads a clock or draws
//! OS randomness: bytes, addresses and `now: Instant` come in through `handle_*` calls,
//! and what to send comes out of `poll_*` calls.
//!
//! ## Implemented
//! - STUN (RFC 8489, interoperating with RFC 5389): message parsing and writing, every
//!   attribute of RFC 8489, the ICE attributes of RFC 8445 §16.1 and the TURN attributes of
//!   RFC 8656 §18; short-term and long-term credentials (MD5 and SHA-256 keys, PRECIS
//!   OpaqueString preparation per RFC 8265), MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256
//!   (truncated too), FINGERPRINT; client transactions with RFC 8489 §6.2 retransmission and
//!   the §9.2 long-term credential exchange; a Binding server; stream framing for TCP.
//! - Candidates (RFC 8445 §5.1): types, the §5.1.2 priority formula with local preferences
//!   that intermingle interfaces and address families (RFC 8421) and ICE-TCP's (RFC 6544),
//!   §5.1.1.3 foundations, the SDP `candidate` attribute (RFC 8839 §5.1),
//!   `ice-ufrag`/`ice-pwd` generation and checks (RFC 8839 §5.4), and the ICE attributes of
//!   an SDP media section or description (RFC 8839 §5, RFC 8840 `end-of-candidates`) in
//!   [`candidate::IceSdp`], in [`candidate`].
//! - The ICE agent (RFC 8445, with trickle per RFC 8838), in [`agent`]: roles and role
//!   conflicts; host, server-reflexive and relayed gathering (TURN over UDP, TCP or TLS,
//!   the TCP connection and the TLS around it being the caller's); check lists with pair
//!   states, pruning, limits and unfreezing, Ta pacing, triggered checks, peer-reflexive
//!   candidates, regular nomination (and accepting aggressive nomination), renomination
//!   (draft-thatcher-ice-renomination-01, the NOMINATION attribute); liveness:
//!   consent freshness (RFC 7675), a Disconnected state, typed failure reasons, keepalives
//!   when consent freshness is off, data accepted only from verified addresses; ICE
//!   restarts (RFC 8445 §9, RFC 8839 §4.4), local and remote, the old selected pair
//!   carrying data until the new one is selected; ICE-lite (RFC 8445 §2.5), as a lite agent
//!   and facing a lite peer; mDNS candidates
//!   (draft-ietf-rtcweb-mdns-ice-candidates-04): the peer's `.local` names resolved
//!   through the I/O layer, and optionally its own host addresses hidden behind published
//!   `<uuid>.local` names; ICE-TCP (RFC 6544): passive and active host candidates, and
//!   simultaneous-open (`so`) ones when asked for, their pairs and connections (opened by
//!   the I/O layer on request); statistics; and demultiplexing of application data. Its module docs show the call
//!   order, a blocking loop for one agent, and two agents connecting over loopback in one
//!   thread (run as a doc-test).
//! - A TURN client (RFC 8656, RFC 6156), in [`turn`]: Allocate with long-term credentials,
//!   stale nonces and one redirection, IPv6 and dual allocations, refreshes, permissions,
//!   channels, Send/Data indications and ChannelData, over UDP or a stream.
//! - Server mode, in [`mux`]: a [`mux::Mux`] owns many agents (full or lite) on one shared
//!   local address and routes every packet to one of them, by 5-tuple, by the local ufrag
//!   of a check's USERNAME (RFC 8445 §7.2.2) or by a response's transaction id, with
//!   bounded tables and a timer queue.
//! - Multicast DNS (RFC 6762) for the `.local` host names of ICE candidates
//!   (draft-ietf-mmusic-mdns-ice-candidates), in [`mdns`]: one-shot A/AAAA resolution, and
//!   publication with probing, announcements, answers, conflicts and goodbyes.
//!
//! ## Deliberately left out
//! - RFC 3489 "classic STUN" messages (no magic cookie) are rejected.
//! - The NAT behaviour discovery of RFC 5780 (CHANGE-REQUEST is recognised, not acted on).
//! - DNS: servers are given as socket addresses, and host-name candidates other than
//!   `.local` ones are parsed ([`candidate::NamedCandidate`]) but not resolved.
#![forbid(unsafe_code)]

pub mod agent;
pub mod candidate;
mod compact;
pub mod mdns;
pub mod mux;
pub mod stun;
pub mod transmit;
pub mod turn;

pub use transmit::{Transmit, TransportType};
