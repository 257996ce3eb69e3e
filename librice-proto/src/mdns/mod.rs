//! A sans-IO Multicast DNS (RFC 6762) client and responder for the host names of ICE
//! candidates (draft-ietf-mmusic-mdns-ice-candidates): one-shot resolution of the A and
//! AAAA records of `.local` names, and publication of `<uuid>.local` names for this host's
//! addresses.
//!
//! # Shape
//! [`Mdns`] is one state machine for both jobs, in the shape of the agent: the caller owns
//! the sockets and the clock.
//!
//! 1. [`Mdns::publish`] a name (make one with [`Mdns::random_name`]) for host addresses;
//!    [`MdnsEvent::Published`] says when it is claimed, [`MdnsEvent::Conflict`] that
//!    another host holds it (the name is then dropped: publish a new one).
//!    [`Mdns::unpublish`] withdraws it.
//! 2. [`Mdns::resolve`] a peer's name; [`MdnsEvent::Resolved`] or
//!    [`MdnsEvent::ResolveFailed`] ends it.
//! 3. After every call, drain [`Mdns::poll_transmit`] (send each [`MdnsTransmit`]: a
//!    multicast one on every multicast socket of its family, one per interface; a unicast
//!    one on a socket of its family, preferably the one the query came in on) and
//!    [`Mdns::poll_event`], then arm a timer for [`Mdns::poll_timeout`] and call
//!    [`Mdns::handle_timeout`] when it passes. Every datagram received on the mDNS sockets
//!    (port 5353, joined to 224.0.0.251 and ff02::fb) goes to [`Mdns::handle_incoming`]
//!    with its source address.
//!
//! Mutations never fail because output was not drained: they queue work. One `Mdns` per
//! process is meant to serve every agent (one responder per host, RFC 6762 §15).
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use std::time::{Duration, Instant};
//! use librice_proto::mdns::{Mdns, MdnsConfig, MdnsEvent};
//!
//! /// One turn of `me` on a one-link network where everything it sends reaches `other`:
//! /// the due timer, then the output.
//! fn turn(me: &mut Mdns, at: SocketAddr, other: &mut Mdns, now: Instant) -> Vec<MdnsEvent> {
//!     if me.poll_timeout().is_some_and(|deadline| deadline <= now) {
//!         me.handle_timeout(now);
//!     }
//!     while let Some(t) = me.poll_transmit(now) {
//!         other.handle_incoming(now, at, &t.data);
//!     }
//!     std::iter::from_fn(|| me.poll_event()).collect()
//! }
//!
//! let start = Instant::now();
//! let mut alice = Mdns::new(MdnsConfig::default().rng_seed(1));
//! let mut bob = Mdns::new(MdnsConfig::default().rng_seed(2));
//! let alice_at: SocketAddr = "192.0.2.1:5353".parse().unwrap();
//! let bob_at: SocketAddr = "192.0.2.2:5353".parse().unwrap();
//!
//! // Alice hides her address behind a random name, and signals the name to Bob.
//! let name = alice.random_name();
//! let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
//! alice.publish(start, &name, &[addr]).unwrap();
//!
//! let mut now = start;
//! let mut resolved = None;
//! while now < start + Duration::from_secs(10) && resolved.is_none() {
//!     for event in turn(&mut alice, alice_at, &mut bob, now) {
//!         if let MdnsEvent::Published { name } = event {
//!             // Claimed (about a second after `publish`): Bob resolves it.
//!             bob.resolve(now, &name).unwrap();
//!         }
//!     }
//!     for event in turn(&mut bob, bob_at, &mut alice, now) {
//!         if let MdnsEvent::Resolved { addrs, .. } = event {
//!             resolved = Some(addrs);
//!         }
//!     }
//!     now += Duration::from_millis(10);
//! }
//! assert_eq!(resolved, Some(vec![addr]));
//! ```
//!
//! A blocking loop on one IPv4 socket, resolving one name (a real responder shares port
//! 5353 with the system's, which needs `SO_REUSEADDR`/`SO_REUSEPORT` from `socket2`, and
//! joins the group on every interface). Queries go out from port 5353: one from another
//! port is a legacy query (§6.7), answered only by unicast.
//!
//! ```no_run
//! use std::io::ErrorKind;
//! use std::net::{Ipv4Addr, UdpSocket};
//! use std::time::Instant;
//! use librice_proto::mdns::{Mdns, MdnsConfig, MdnsEvent};
//!
//! # fn main() -> std::io::Result<()> {
//! let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 5353))?;
//! socket.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 251), &Ipv4Addr::UNSPECIFIED)?;
//! let mut mdns = Mdns::new(MdnsConfig::default().ipv6(false).rng_seed(7));
//! mdns.resolve(Instant::now(), "1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local")
//!     .expect("a .local name");
//! let mut buf = vec![0u8; 9000];
//! loop {
//!     let now = Instant::now();
//!     if mdns.poll_timeout().is_some_and(|deadline| deadline <= now) {
//!         mdns.handle_timeout(now);
//!     }
//!     while let Some(t) = mdns.poll_transmit(now) {
//!         socket.send_to(&t.data, t.to)?;
//!     }
//!     while let Some(event) = mdns.poll_event() {
//!         match event {
//!             MdnsEvent::Resolved { name, addrs, .. } => println!("{name}: {addrs:?}"),
//!             MdnsEvent::ResolveFailed { name } => println!("{name}: no answer"),
//!             _ => {}
//!         }
//!         return Ok(());
//!     }
//!     // Wait for a datagram until the next deadline (one already due: handle it first).
//!     let wait = match mdns.poll_timeout() {
//!         Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
//!             Some(wait) if !wait.is_zero() => Some(wait),
//!             _ => continue,
//!         },
//!         None => None,
//!     };
//!     socket.set_read_timeout(wait)?;
//!     match socket.recv_from(&mut buf) {
//!         Ok((len, from)) => mdns.handle_incoming(Instant::now(), from, &buf[..len]),
//!         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!         Err(e) => return Err(e),
//!     }
//! }
//! # }
//! ```
//!
//! # RFC 6762 as implemented
//! - §3, §5.1: only names ending in `.local` are resolved ([`MdnsError::NotLocal`]);
//!   queries go to 224.0.0.251:5353 and/or \[ff02::fb\]:5353 as configured
//!   ([`MdnsConfig::ipv4`], [`MdnsConfig::ipv6`]).
//! - §5.2: one-shot queries are repeated at most [`MAX_QUERIES`] times,
//!   [`QUERY_INTERVAL`] (1 s) apart (the MUST: at least one second between the first two),
//!   until [`MdnsConfig::resolve_timeout`] (default 3 s, the wait of Chromium's
//!   `MDnsClient` transactions before they report no result).
//! - §5.4: the first query of a resolution sets the unicast-response (QU) bit, the others
//!   do not; a query whose questions for our names all set it is answered by unicast to
//!   the querier's address and port. (The SHOULD to multicast instead when the record was
//!   not multicast within a quarter of its TTL is not followed.)
//! - §6: responses from a source port other than 5353 are ignored (MUST); we answer only
//!   for names we own and have claimed; answers for our unique records go out at once;
//!   a record is not multicast again within one second (250 ms when defending against a
//!   probe) (MUST); responses carry no questions (MUST) except legacy replies.
//! - §6.1: a query for a type our name has no record of (AAAA of an IPv4-only name) is
//!   answered with an NSEC record listing the types it has (MUST).
//! - §6.2: the other address type goes in the additional section (or an NSEC for it).
//! - §6.7: legacy queries (source port not 5353) get a unicast reply with the query's
//!   identifier and questions (MUST), a TTL of [`LEGACY_TTL`] and no cache-flush bit.
//! - §7.1: a record the query lists as a known answer with at least half our TTL left is
//!   not given (MUST).
//! - §8.1: a name is probed [`PROBES`] times, [`PROBE_INTERVAL`] apart, the first after a
//!   random 0-250 ms from the seeded RNG; probes are QU queries of type ANY. A response
//!   with a record of the name, of any type, while probing is a conflict (MUST), except
//!   before the first probe is out (stale, ignored: MUST), e.g. while deferring after a
//!   lost tie-break.
//! - §8.2: probes carry the proposed records in the authority section; a simultaneous
//!   probe is settled by the §8.2.1 lexicographic comparison (class, type, rdata); the
//!   loser waits [`TIE_BREAK_BACKOFF`] and probes again (MUST), and then meets the
//!   winner's defence, a conflict. Identical records are no conflict in the tie-break, but
//!   once one host has claimed the name, its answer is one for the slower prober (§8.1). Only the rdata of A and AAAA records is compared; other
//!   types compare by class and type (we only publish A and AAAA).
//! - §8.3: a claimed name is announced [`ANNOUNCEMENTS`] times, [`ANNOUNCE_INTERVAL`]
//!   apart, with the cache-flush bit (§10.2). [`MdnsEvent::Published`] comes with the first
//!   announcement, from when the name is answered for.
//! - §9: a response with an address record of our claimed name and an address that is not
//!   ours is a conflict. Unlike §9 (reset to probing), the name is dropped and reported:
//!   ICE names are random, the caller makes a new one.
//! - §10: host records have a TTL of [`HOST_TTL`] (120 s); §10.1: [`Mdns::unpublish`]
//!   sends a goodbye (TTL 0) for an announced name; goodbyes resolve nothing and conflict
//!   with nothing.
//! - §16: names compare case-insensitively (ASCII), byte for byte otherwise.
//! - §18.1: queries and multicast responses have identifier 0; §18.3, §18.11: messages
//!   with a non-zero OPCODE or RCODE are ignored (MUST).
//!
//! Left out: caching (answers only end resolutions), continuous querying, duplicate
//! question and answer suppression (§7.3, §7.4), the 20-120 ms delay for shared records
//! (we have none), multi-packet known-answer lists (§7.2, the TC bit is ignored), the
//! source-address check of §11 (the caller reads only link-local multicast sockets),
//! service discovery (RFC 6763).
//!
//! # Hostile input
//! Every datagram goes through size checks, then the codec: anything malformed, too
//! long ([`MAX_MESSAGE`]: 9000 bytes, §17) or with header counts the message cannot
//! hold is dropped with a trace event, never a panic. Answers resolve only a name a
//! `resolve` call asked for, only with A/AAAA records (class IN) of exactly that name
//! (CNAME is not followed), and nothing is cached, so answers for other names cost
//! nothing. Bounds: [`MAX_RESOLUTIONS`] names in flight, [`MAX_PUBLISHED`] published
//! names of at most [`MAX_PUBLISHED_ADDRS`] addresses, [`MAX_RESOLVED_ADDRS`] addresses
//! per event, [`MAX_QUEUED_TRANSMITS`] datagrams waiting to be sent (further answers are
//! dropped, traced). Events come only from the caller's own calls (at most one end per
//! `resolve`, two per `publish`), not from what the network sends. The TTL reported in
//! [`MdnsEvent::Resolved`] is capped at [`MdnsConfig::ttl_cap`] (default 120 s): ICE
//! needs the address while it pairs, not for as long as a peer claims.
//!
//! # The codec: `simple-dns`
//! Messages are read and written with `simple-dns` 0.13 rather than `hickory-proto`:
//! - size: about 9,000 lines and one dependency (`bitflags`), against hickory-proto's
//!   tens of thousands of lines and a dozen dependencies (`thiserror`, `idna`, `url`,
//!   `tinyvec`, `rand`, `data-encoding`, `futures-*`, `async-trait`, ...) that a sans-IO
//!   core does not want;
//! - it exposes the two mDNS bits this module needs: the unicast-response bit of questions
//!   and the cache-flush bit of records (hickory has them too, under its `mdns` feature);
//! - maintenance and MSRV: both are maintained; simple-dns is edition 2021 and builds with
//!   this workspace's Rust 1.88;
//! - robustness: its parser bounds every read by the buffer, and compression pointers must
//!   point backwards, so pointer loops end. One weakness, covered here: it reserves room
//!   for as many entries as the header claims (up to 65,535 per section) before reading
//!   them, so a check that the counts fit in the message runs first. An unknown
//!   CLASS makes it refuse the whole message; such a message is dropped.

mod name;
mod resolver;
mod responder;
mod wire;

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use self::name::LocalName;
use self::resolver::Resolutions;
use self::responder::Publications;

pub use self::resolver::{MAX_QUERIES, MAX_RESOLUTIONS, MAX_RESOLVED_ADDRS, QUERY_INTERVAL};
pub use self::responder::{
    ANNOUNCE_INTERVAL, ANNOUNCEMENTS, HOST_TTL, LEGACY_TTL, MAX_PROBE_DELAY_MS, MAX_PUBLISHED,
    MAX_PUBLISHED_ADDRS, PROBE_INTERVAL, PROBES, TIE_BREAK_BACKOFF,
};
pub use self::wire::MAX_MESSAGE;

/// The mDNS port (RFC 6762 §3).
pub const MDNS_PORT: u16 = 5353;

/// A fresh `<uuid v4>.local` name from `rng` (see [`Mdns::random_name`]), for the agent's
/// hidden host candidates.
pub(crate) fn random_uuid_name<R: rand_core::Rng + ?Sized>(rng: &mut R) -> String {
    name::random_name(rng)
}
/// The IPv4 mDNS group and port (RFC 6762 §3).
pub const MDNS_V4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)), 5353);
/// The IPv6 link-local mDNS group and port (RFC 6762 §3).
pub const MDNS_V6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb)),
    5353,
);
/// The most datagrams waiting in [`Mdns::poll_transmit`]; answers beyond it are dropped.
pub const MAX_QUEUED_TRANSMITS: usize = 256;

/// The configuration of an [`Mdns`].
#[derive(Debug, Clone)]
pub struct MdnsConfig {
    rng_seed: u64,
    ipv4: bool,
    ipv6: bool,
    resolve_timeout: Duration,
    ttl_cap: Duration,
    unicast_responses: bool,
}

impl Default for MdnsConfig {
    /// Seed 0, both families, a 3 s resolve timeout, TTLs capped at 120 s, unicast
    /// responses asked for.
    fn default() -> Self {
        Self {
            rng_seed: 0,
            ipv4: true,
            ipv6: true,
            resolve_timeout: Duration::from_secs(3),
            ttl_cap: Duration::from_secs(u64::from(HOST_TTL)),
            unicast_responses: true,
        }
    }
}

impl MdnsConfig {
    /// The seed of the RNG behind probe delays and [`Mdns::random_name`] (default 0). Same
    /// seed and same inputs, same output.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = seed;
        self
    }

    /// Whether multicasts go to 224.0.0.251:5353 (default true).
    pub fn ipv4(mut self, on: bool) -> Self {
        self.ipv4 = on;
        self
    }

    /// Whether multicasts go to \[ff02::fb\]:5353 (default true). With neither family,
    /// nothing is multicast: no query, probe or announcement goes out.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// How long a resolution waits for an answer before [`MdnsEvent::ResolveFailed`]
    /// (default 3 s, as Chromium's mDNS client).
    pub fn resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = timeout;
        self
    }

    /// Whether the first query of a resolution and the probes ask for unicast responses
    /// (the QU bit, RFC 6762 §5.4 and §8.1; default true). Turn it off where other mDNS
    /// implementations may share port 5353 on this host: a unicast response reaches only
    /// one of the sockets bound to the port, perhaps another process's (§15.1), while
    /// multicast ones reach all.
    pub fn unicast_responses(mut self, on: bool) -> Self {
        self.unicast_responses = on;
        self
    }

    /// The largest TTL reported in [`MdnsEvent::Resolved`] (default 120 s).
    pub fn ttl_cap(mut self, cap: Duration) -> Self {
        self.ttl_cap = cap;
        self
    }
}

/// What an [`Mdns`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsEvent {
    /// A name given to [`Mdns::resolve`] has these addresses (at most
    /// [`MAX_RESOLVED_ADDRS`]), valid for `ttl` (capped by [`MdnsConfig::ttl_cap`]).
    Resolved {
        /// The name, as given to `resolve`.
        name: String,
        /// Its addresses, in the order of the answer.
        addrs: Vec<IpAddr>,
        /// The smallest TTL of the records, capped.
        ttl: Duration,
    },
    /// No answer came for a name given to [`Mdns::resolve`] within the resolve timeout.
    ResolveFailed {
        /// The name, as given to `resolve`.
        name: String,
    },
    /// A name given to [`Mdns::publish`] has been probed without conflict and is announced
    /// and answered for.
    Published {
        /// The name, as given to `publish`.
        name: String,
    },
    /// Another host holds a name given to [`Mdns::publish`]; the name is no longer
    /// published (pick another one).
    Conflict {
        /// The name, as given to `publish`.
        name: String,
    },
}

/// The errors of the caller's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnsError {
    /// The name does not end in `.local` (RFC 6762 §3).
    NotLocal {
        /// The name given.
        name: String,
    },
    /// The name is not a valid host name (an empty or over-long label, a backslash, over
    /// 253 bytes).
    InvalidName {
        /// The name given.
        name: String,
    },
    /// [`MAX_RESOLUTIONS`] names are being resolved already.
    TooManyResolutions,
    /// [`MAX_PUBLISHED`] names are published already.
    TooManyNames,
    /// The name is published already.
    AlreadyPublished {
        /// The name given.
        name: String,
    },
    /// The name is not published.
    NotPublished {
        /// The name given.
        name: String,
    },
    /// A name needs 1 to [`MAX_PUBLISHED_ADDRS`] distinct addresses.
    Addresses {
        /// The number of distinct addresses given.
        count: usize,
    },
}

impl fmt::Display for MdnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLocal { name } => write!(f, "{name:?} is not a .local name"),
            Self::InvalidName { name } => write!(f, "{name:?} is not a valid host name"),
            Self::TooManyResolutions => {
                write!(f, "already resolving {MAX_RESOLUTIONS} names")
            }
            Self::TooManyNames => write!(f, "already publishing {MAX_PUBLISHED} names"),
            Self::AlreadyPublished { name } => write!(f, "{name:?} is already published"),
            Self::NotPublished { name } => write!(f, "{name:?} is not published"),
            Self::Addresses { count } => write!(
                f,
                "{count} addresses: a name needs 1 to {MAX_PUBLISHED_ADDRS}"
            ),
        }
    }
}

impl std::error::Error for MdnsError {}

/// A datagram to send.
///
/// `Debug` prints the length of the data, not the bytes.
#[must_use = "an MdnsTransmit must be sent for the protocol to make progress"]
#[derive(Clone, PartialEq, Eq)]
pub struct MdnsTransmit {
    /// Where to: [`MDNS_V4`] or [`MDNS_V6`] for a multicast (send it on every multicast
    /// socket of that family, one per interface), or a querier's address for a unicast
    /// reply. `to.is_ipv4()` says the family.
    pub to: SocketAddr,
    /// The DNS message.
    pub data: Vec<u8>,
}

impl MdnsTransmit {
    /// True when `to` is one of the mDNS groups.
    pub fn is_multicast(&self) -> bool {
        self.to.ip().is_multicast()
    }
}

impl fmt::Debug for MdnsTransmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdnsTransmit")
            .field("to", &self.to)
            .field("len", &self.data.len())
            .finish()
    }
}

/// What the sub-machines produce, waiting for the caller.
///
/// Invariant: at most [`MAX_QUEUED_TRANSMITS`] datagrams.
#[derive(Debug)]
struct Output {
    ipv4: bool,
    ipv6: bool,
    /// Queries and probes ask for unicast responses ([`MdnsConfig::unicast_responses`]).
    unicast_responses: bool,
    transmits: VecDeque<MdnsTransmit>,
    events: VecDeque<MdnsEvent>,
}

impl Output {
    /// Queues `data` for the group of every configured family.
    fn multicast(&mut self, data: Vec<u8>) {
        match (self.ipv4, self.ipv6) {
            (true, true) => {
                self.push(MDNS_V4, data.clone());
                self.push(MDNS_V6, data);
            }
            (true, false) => self.push(MDNS_V4, data),
            (false, true) => self.push(MDNS_V6, data),
            (false, false) => {}
        }
    }

    /// Queues `data` for the group of one family (the one a query came in on).
    fn multicast_to_family(&mut self, v6: bool, data: Vec<u8>) {
        self.push(if v6 { MDNS_V6 } else { MDNS_V4 }, data);
    }

    /// Queues `data` for `to`.
    fn unicast(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.push(to, data);
    }

    fn push(&mut self, to: SocketAddr, data: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            tracing::debug!(%to, "mDNS transmit queue full, datagram dropped");
            return;
        }
        self.transmits.push_back(MdnsTransmit { to, data });
    }

    fn event(&mut self, event: MdnsEvent) {
        self.events.push_back(event);
    }
}

/// A Multicast DNS client and responder for ICE host names: see the [module docs](self).
#[derive(Debug)]
pub struct Mdns {
    config: MdnsConfig,
    rng: ChaCha8Rng,
    resolutions: Resolutions,
    publications: Publications,
    out: Output,
}

impl Mdns {
    /// A new client and responder with nothing published or in flight.
    pub fn new(config: MdnsConfig) -> Self {
        let out = Output {
            ipv4: config.ipv4,
            ipv6: config.ipv6,
            unicast_responses: config.unicast_responses,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        };
        Self {
            rng: ChaCha8Rng::seed_from_u64(config.rng_seed),
            config,
            resolutions: Resolutions::default(),
            publications: Publications::default(),
            out,
        }
    }

    /// A fresh random name, `<uuid v4>.local` in lowercase 8-4-4-4-12 form as browsers
    /// make them, from the seeded RNG.
    pub fn random_name(&mut self) -> String {
        name::random_name(&mut self.rng)
    }

    /// Starts a one-shot resolution of the A and AAAA records of `name` (a `.local` name):
    /// the first query is queued at once, with the unicast-response bit. A name already
    /// being resolved is left as it is. Ends with [`MdnsEvent::Resolved`] or
    /// [`MdnsEvent::ResolveFailed`].
    pub fn resolve(&mut self, now: Instant, name: &str) -> Result<(), MdnsError> {
        let name = LocalName::parse(name)?;
        self.resolutions
            .start(now, name, self.config.resolve_timeout, &mut self.out)
    }

    /// Stops resolving `name` without an event; false if it was not being resolved.
    pub fn cancel_resolve(&mut self, name: &str) -> Result<bool, MdnsError> {
        let name = LocalName::parse(name)?;
        Ok(self.resolutions.cancel(name.key()))
    }

    /// Publishes `name` (a `.local` name this process owns) for `addrs`: probes it, the
    /// first probe after a random 0-250 ms, then announces and answers for it. Ends in
    /// [`MdnsEvent::Published`], or [`MdnsEvent::Conflict`] if another host holds it.
    pub fn publish(&mut self, now: Instant, name: &str, addrs: &[IpAddr]) -> Result<(), MdnsError> {
        let name = LocalName::parse(name)?;
        let delay =
            Duration::from_millis(u64::from(self.rng.next_u32() % (MAX_PROBE_DELAY_MS + 1)));
        self.publications.publish(now, name, addrs, delay)
    }

    /// Stops publishing `name`; if it was announced, queues a goodbye (its records with
    /// TTL 0, RFC 6762 §10.1).
    pub fn unpublish(&mut self, now: Instant, name: &str) -> Result<(), MdnsError> {
        let _ = now;
        let parsed = LocalName::parse(name)?;
        if self.publications.unpublish(parsed.key(), &mut self.out) {
            Ok(())
        } else {
            Err(MdnsError::NotPublished {
                name: name.to_owned(),
            })
        }
    }

    /// Takes a datagram received from `from` on an mDNS socket. Malformed or unwanted
    /// messages are dropped with a trace event.
    pub fn handle_incoming(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let msg = match wire::parse(data) {
            Ok(msg) => msg,
            Err(reason) => {
                tracing::debug!(%from, %reason, "mDNS message dropped");
                return;
            }
        };
        if msg.response {
            // RFC 6762 §6: responses from another source port are silently ignored.
            if from.port() != MDNS_PORT {
                tracing::debug!(%from, "mDNS response not from port 5353 dropped");
                return;
            }
            self.resolutions
                .on_response(&msg, self.config.ttl_cap, &mut self.out);
            self.publications.on_response(&msg, &mut self.out);
        } else {
            self.publications.on_query(now, from, &msg, &mut self.out);
        }
    }

    /// Sends the queries, probes and announcements due, and fails the resolutions that
    /// timed out, at `now`. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.resolutions
            .handle_timeout(now, self.config.resolve_timeout, &mut self.out);
        self.publications.handle_timeout(now, &mut self.out);
    }

    /// The next datagram to send. Every call and [`Mdns::handle_timeout`] may queue more.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<MdnsTransmit> {
        let _ = now;
        self.out.transmits.pop_front()
    }

    /// The next event. Calls, incoming answers and timeouts may queue more.
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        self.out.events.pop_front()
    }

    /// When [`Mdns::handle_timeout`] next has work: a query, a failure, a probe or an
    /// announcement. Calls and incoming messages can change it; no side effects.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (
            self.resolutions.next_deadline(),
            self.publications.next_deadline(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
impl Mdns {
    /// (resolutions in flight, published names, queued datagrams, queued events).
    fn state_sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.resolutions.len(),
            self.publications.len(),
            self.out.transmits.len(),
            self.out.events.len(),
        )
    }
}

#[cfg(test)]
mod tests;
