//! Many agents on one socket, sans-IO: a [`Mux`] owns agents and routes every datagram
//! (or framed TCP message) that arrives on a shared local address to one of them.
//!
//! This is the core of a server ("server mode"): thousands of ICE sessions, full or lite
//! ([`AgentConfig::lite`](crate::agent::AgentConfig::lite)), all on one `address:port`.
//! The mux has the shape of one agent: [`Mux::handle_incoming`], [`Mux::handle_timeout`],
//! [`Mux::poll_transmit`], [`Mux::poll_event`], [`Mux::poll_io_request`] and
//! [`Mux::poll_timeout`], over all its agents, plus [`Mux::add_agent`],
//! [`Mux::remove_agent`] and [`Mux::agent_mut`] to reach one agent.
//!
//! # Setting up an agent
//! Build the [`Agent`] as usual, with the shared address registered as a local socket of
//! its component ([`StreamMut::add_local_socket`](crate::agent::StreamMut::add_local_socket);
//! each agent checks only its own sockets for duplicates, so every agent of the mux may
//! register the same address), then give it to [`Mux::add_agent`] **before** signalling
//! its credentials. Everything done to it later goes through [`Mux::agent_mut`], whose
//! guard brings the mux's tables up to date when it is dropped (new streams, an ICE
//! restart's credentials, new deadlines and output).
//!
//! # Routing
//! Per packet, in this order (every look-up is a hash-map probe, no scan; nothing is
//! allocated, [`Mux::route`] says where a packet would go without side effects):
//!
//! | packet | routed by | else |
//! |---|---|---|
//! | STUN Binding request with USERNAME (a connectivity or consent check) | the local ufrag: the part of USERNAME before the first `:` (RFC 8445 §7.2.2: "local:remote" from the receiver's view) | its 5-tuple; else dropped ([`MuxDrop::UnknownUfrag`]) |
//! | STUN Binding request whose USERNAME has no `:`, an empty or non-UTF-8 local part | nothing: no agent could authenticate it (RFC 8445 §7.3) | dropped ([`MuxDrop::MalformedUsername`]) |
//! | STUN success or error response | the transaction id of the request an agent sent (RFC 8489 §6.3.1) | its 5-tuple; else dropped ([`MuxDrop::UnknownSource`]) |
//! | anything else (application data, indications, other STUN) | its 5-tuple | dropped ([`MuxDrop::UnknownSource`]) |
//!
//! A packet that looks like STUN but does not parse goes by its 5-tuple (the agent drops
//! it with its own trace), or is dropped as [`MuxDrop::Malformed`]. Every drop is counted
//! in [`MuxStats`] and traced at `trace` level; a routed packet is the agent's to judge
//! (a check whose integrity fails is refused by the agent, RFC 8445 §7.3).
//!
//! The ufrag comes first for checks because it is what the agent authenticates, so a
//! check for agent B on a tuple agent A used still reaches B; the 5-tuple fallback is
//! what carries the consent checks of a selected pair kept during an ICE restart, which
//! still use the old ufrag.
//!
//! # What the mux learns, and its bounds
//! - **Ufrags**: the local ufrag of every stream of every agent, read from the agent when
//!   it is added and each time an [`Mux::agent_mut`] guard is dropped; an ICE restart's
//!   new ufrag replaces the old one. A ufrag already used by another agent is not taken
//!   ([`Mux::add_agent`] refuses the agent, a later change is counted in
//!   [`MuxStats::ufrag_conflicts`] and the agent is then reached by 5-tuple only).
//! - **5-tuples** are learned from what an agent *sends*, never from what arrives: a
//!   Binding success response (the agent answers only a check it authenticated, RFC 8445
//!   §7.3, so a flood learns nothing), and a request carrying USERNAME (a check or
//!   consent check towards a candidate the agent was given, or a TURN request to the
//!   agent's server with its long-term credentials, so that the server's Data
//!   indications and ChannelData come back). A Binding request to a STUN server carries
//!   no USERNAME and teaches no tuple: several agents may query one server from the
//!   shared address, and its responses go by transaction id. Each agent keeps at most
//!   [`MuxConfig::max_tuples_per_agent`], its least recently used going first (consent
//!   traffic keeps the selected pair's tuple fresh); the whole table at most
//!   [`MuxConfig::max_tuples`], new tuples being refused beyond (and beyond 64 local
//!   addresses: the table numbers the mux's own addresses). A tuple another agent
//!   had moves to the agent that sent on it last (its peer's NAT reused the mapping).
//!   Note: a peer that holds valid credentials of its own agent and can spoof source
//!   addresses may thereby pull another peer's tuple to its agent; ICE has the same
//!   exposure (RFC 8445 §19.1).
//! - **Transactions**: the id of every request an agent sends (checks, consent checks,
//!   STUN and TURN requests to servers) is remembered for
//!   [`MuxConfig::transaction_lifetime`] or until its first response, at most
//!   [`MuxConfig::max_transactions`] at once (the oldest go first). So responses from a
//!   STUN server that several agents query from the shared socket reach the right agent.
//!
//! An agent removed with [`Mux::remove_agent`] takes its ufrags and tuples with it: its
//! peers' later packets are dropped and counted. Memory is bounded by the number of
//! agents times the per-agent caps, plus the transaction cap, whatever arrives.
//!
//! A TURN allocation is identified by its 5-tuple (RFC 8656 §2.2): at most one agent of a
//! mux may allocate on a given TURN server from the shared address. A full agent's checks
//! towards its peer's unreachable candidates (private host addresses) teach tuples too;
//! they cost room in its list until they are the least recently used, and a private
//! address two agents' peers share moves to whichever agent checked it last.
//!
//! # Driving
//! [`Mux::handle_timeout`] runs only the agents whose deadline has come, each once per
//! call, from a timer queue (an indexed binary heap: O(log n) per change,
//! [`Mux::poll_timeout`] is O(1)). Inputs and timeouts put the agent touched on ready
//! queues that [`Mux::poll_transmit`], [`Mux::poll_event`] and
//! [`Mux::poll_io_request`] drain in order, so one call of `handle_timeout` followed by
//! draining `poll_transmit` runs the agents in batch order, as one driver for thousands
//! of agents does. Data for a peer is sent as for a single agent, with
//! [`ComponentMut::send`](crate::agent::ComponentMut::send) through [`Mux::agent_mut`].
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use librice_proto::agent::{Agent, AgentConfig};
//! use librice_proto::mux::{Mux, MuxConfig, MuxIncoming};
//! use librice_proto::{Transmit, TransportType};
//!
//! let shared: SocketAddr = "192.0.2.1:3478".parse().unwrap();
//! let mut mux = Mux::new(MuxConfig::default());
//! let mut agent = Agent::new(AgentConfig::default().lite(true).rng_seed(1));
//! let stream = agent.add_stream();
//! let mut s = agent.stream_mut(stream).unwrap();
//! let component = s.add_component().unwrap();
//! s.add_local_socket(component, TransportType::Udp, shared).unwrap();
//! let id = mux.add_agent(agent).unwrap();
//! // Signal the agent's credentials and candidates to its peer, through the guard.
//! let ufrag = mux.agent_mut(id).unwrap().stream_mut(stream).unwrap()
//!     .local_credentials().ufrag().to_owned();
//! assert!(mux.has_ufrag(&ufrag));
//! // Data from a source no agent talks to is dropped and counted.
//! let now = Instant::now();
//! let from: SocketAddr = "198.51.100.7:5000".parse().unwrap();
//! let t = Transmit { transport: TransportType::Udp, from, to: shared, data: &b"hello"[..] };
//! assert!(matches!(mux.handle_incoming(now, t), MuxIncoming::Dropped(_)));
//! assert_eq!(mux.stats().dropped_unknown_source, 1);
//! ```

mod router;
mod slab;
mod tables;
mod timers;
mod tuples;
mod ufrags;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::agent::{Agent, AgentEvent, IoRequest, ReceivedData};
use crate::{Transmit, TransportType};

pub use router::{MuxRouter, MuxRouterError};
use timers::TimerHeap;
pub use tuples::MAX_LOCAL_ADDRESSES;

/// The default [`MuxConfig::max_tuples_per_agent`]: 8 (a selected pair, a few checked
/// pairs, the pair kept during an ICE restart).
pub const DEFAULT_MAX_TUPLES_PER_AGENT: usize = 8;

/// The default [`MuxConfig::max_tuples`]: 2^20.
pub const DEFAULT_MAX_TUPLES: usize = 1 << 20;

/// The default [`MuxConfig::max_transactions`]: 2^16.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 1 << 16;

/// The default [`MuxConfig::transaction_lifetime`]: 40 s, longer than a STUN transaction
/// with the default retransmissions of RFC 8489 §6.2.1 (39.5 s).
pub const DEFAULT_TRANSACTION_LIFETIME: Duration = Duration::from_secs(40);

/// The bounds of a [`Mux`]'s tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxConfig {
    max_tuples_per_agent: usize,
    max_tuples: usize,
    max_transactions: usize,
    transaction_lifetime: Duration,
}

impl Default for MuxConfig {
    fn default() -> Self {
        Self {
            max_tuples_per_agent: DEFAULT_MAX_TUPLES_PER_AGENT,
            max_tuples: DEFAULT_MAX_TUPLES,
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            transaction_lifetime: DEFAULT_TRANSACTION_LIFETIME,
        }
    }
}

impl MuxConfig {
    /// The most 5-tuples remembered per agent (at least 1); beyond, the agent's least
    /// recently used goes.
    pub fn max_tuples_per_agent(mut self, max: usize) -> Self {
        self.max_tuples_per_agent = max.max(1);
        self
    }

    /// The most 5-tuples remembered in all; beyond, new ones are not learned.
    pub fn max_tuples(mut self, max: usize) -> Self {
        self.max_tuples = max;
        self
    }

    /// The most transactions in flight remembered for routing responses; beyond, the
    /// oldest go (their responses are then routed by 5-tuple).
    pub fn max_transactions(mut self, max: usize) -> Self {
        self.max_transactions = max;
        self
    }

    /// How long a transaction is remembered without a response.
    pub fn transaction_lifetime(mut self, lifetime: Duration) -> Self {
        self.transaction_lifetime = lifetime;
        self
    }
}

/// An agent's id in its [`Mux`]. Ids of removed agents are never confused with later
/// ones (a slot's generation changes when it is reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MuxAgentId {
    index: u32,
    generation: u32,
}

impl MuxAgentId {
    /// The agent's slot: ids of agents present at once have distinct indices, below the
    /// largest number of agents the mux held at once.
    pub const fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Display for MuxAgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

/// Why a packet went to no agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MuxDrop {
    /// A check whose local ufrag no agent has, from a 5-tuple no agent uses.
    UnknownUfrag,
    /// Anything else from a 5-tuple no agent uses.
    UnknownSource,
    /// A Binding request whose USERNAME is not "local:remote" with a UTF-8 local part.
    MalformedUsername,
    /// Looked like STUN but did not parse, from a 5-tuple no agent uses.
    Malformed,
}

impl fmt::Display for MuxDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownUfrag => "check for an unknown ufrag from an unknown source",
            Self::UnknownSource => "packet from an unknown source",
            Self::MalformedUsername => "Binding request with a malformed USERNAME",
            Self::Malformed => "malformed STUN message from an unknown source",
        })
    }
}

/// What became of a packet given to [`Mux::handle_incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum MuxIncoming<'a> {
    /// Application data for a component of an agent.
    Data(MuxAgentId, ReceivedData<'a>),
    /// Given to an agent, which consumed it (STUN) or dropped it (counted by the agent).
    Handled(MuxAgentId),
    /// Given to no agent, and counted in [`MuxStats`].
    Dropped(MuxDrop),
}

/// Counters of a [`Mux`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Packets routed by their 5-tuple.
    pub routed_by_tuple: u64,
    /// Checks routed by the local ufrag in USERNAME.
    pub routed_by_ufrag: u64,
    /// Responses routed by transaction id.
    pub routed_by_transaction: u64,
    /// Checks dropped: unknown ufrag, unknown 5-tuple ([`MuxDrop::UnknownUfrag`]).
    pub dropped_unknown_ufrag: u64,
    /// Packets dropped: unknown 5-tuple ([`MuxDrop::UnknownSource`]).
    pub dropped_unknown_source: u64,
    /// Checks dropped for a malformed USERNAME ([`MuxDrop::MalformedUsername`]).
    pub dropped_malformed_username: u64,
    /// Unparsable STUN dropped ([`MuxDrop::Malformed`]).
    pub dropped_malformed: u64,
    /// 5-tuples learned (new, or moved from another agent).
    pub tuples_learned: u64,
    /// 5-tuples forgotten to keep an agent under [`MuxConfig::max_tuples_per_agent`].
    pub tuples_evicted: u64,
    /// 5-tuples not learned because the table was full ([`MuxConfig::max_tuples`]), or
    /// because their local address would have been one more than the 64 the table keys
    /// tuples by.
    pub tuples_refused: u64,
    /// Transactions forgotten before their time to stay under
    /// [`MuxConfig::max_transactions`].
    pub transactions_evicted: u64,
    /// Ufrags not registered because another agent had them.
    pub ufrag_conflicts: u64,
    /// Agents run by [`Mux::handle_timeout`] (only those whose deadline had come).
    pub agent_timeouts: u64,
}

/// Why a [`Mux`] refused a call.
#[derive(Debug)]
#[non_exhaustive]
pub enum MuxError {
    /// [`Mux::add_agent`]: another agent of the mux already has this local ufrag; the
    /// agent is handed back.
    UfragInUse {
        /// The ufrag.
        ufrag: String,
        /// The agent refused.
        agent: Box<Agent>,
    },
    /// The mux holds `u32::MAX - 1` agents already.
    Full,
}

impl fmt::Display for MuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UfragInUse { ufrag, .. } => {
                fmt::Display::fmt(&MuxRouterError::UfragInUse(ufrag.clone()), f)
            }
            Self::Full => fmt::Display::fmt(&MuxRouterError::Full, f),
        }
    }
}

impl std::error::Error for MuxError {}

/// Ready-queue flags of an agent.
const READY_TRANSMIT: u8 = 1;
const READY_EVENT: u8 = 2;
const READY_IO: u8 = 4;

/// One agent of the mux and which ready queues it is on.
#[derive(Debug)]
struct Entry {
    /// Boxed: an `Agent` is large inline, and the slot vector grows by doubling.
    agent: Box<Agent>,
    ready: u8,
}

/// Many ICE agents behind one shared local address. See the [module docs](self).
#[derive(Debug)]
pub struct Mux {
    /// The routing tables and the slots' numbering.
    router: MuxRouter,
    /// The agents, by slot index (the router's).
    entries: Vec<Option<Entry>>,
    timers: TimerHeap,
    ready_transmit: VecDeque<u32>,
    ready_event: VecDeque<u32>,
    ready_io: VecDeque<u32>,
    /// Scratch list of the agents due in [`Mux::handle_timeout`] (kept for its capacity).
    due: Vec<u32>,
}

impl Default for Mux {
    fn default() -> Self {
        Self::new(MuxConfig::default())
    }
}

impl Mux {
    /// An empty mux.
    pub fn new(config: MuxConfig) -> Mux {
        Mux {
            router: MuxRouter::new(config),
            entries: Vec::new(),
            timers: TimerHeap::default(),
            ready_transmit: VecDeque::new(),
            ready_event: VecDeque::new(),
            ready_io: VecDeque::new(),
            due: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MuxConfig {
        self.router.config()
    }

    /// Adds an agent, registering the local ufrags of its streams. Add it before its
    /// credentials are signalled. Its output and events are collected by the next
    /// `poll_*` calls.
    ///
    /// # Errors
    ///
    /// [`MuxError::UfragInUse`] (with the agent) if one of its ufrags is another agent's;
    /// [`MuxError::Full`] with `u32::MAX - 1` agents already.
    pub fn add_agent(&mut self, mut agent: Agent) -> Result<MuxAgentId, MuxError> {
        let id = match self.router.add(&mut agent) {
            Ok(id) => id,
            Err(MuxRouterError::UfragInUse(ufrag)) => {
                return Err(MuxError::UfragInUse {
                    ufrag,
                    agent: Box::new(agent),
                });
            }
            Err(_) => return Err(MuxError::Full),
        };
        let index = id.index;
        if self.entries.len() <= index as usize {
            self.entries.resize_with(index as usize + 1, || None);
        }
        // Room for every agent on every queue, so that routing never allocates.
        let slots = self.entries.len();
        for q in [
            &mut self.ready_transmit,
            &mut self.ready_event,
            &mut self.ready_io,
        ] {
            q.reserve(slots.saturating_sub(q.len()));
        }
        self.due.reserve(slots.saturating_sub(self.due.len()));
        self.timers.reserve_slot(index);
        self.entries[index as usize] = Some(Entry {
            agent: Box::new(agent),
            ready: 0,
        });
        self.touched(index);
        tracing::debug!(agent = %id, "mux: agent added");
        Ok(id)
    }

    /// Removes an agent and gives it back: its ufrags and 5-tuples are forgotten, so its
    /// peers' later packets are dropped and counted. Call [`Agent::close`] on it first to
    /// release TURN allocations, and send what it then asks. `None` for an unknown id.
    pub fn remove_agent(&mut self, id: MuxAgentId) -> Option<Agent> {
        let forgotten = self.router.remove(id)?;
        let entry = self.entries[id.index as usize]
            .take()
            .expect("the router's live slots have agents");
        self.timers.set(id.index, None);
        for q in [
            &mut self.ready_transmit,
            &mut self.ready_event,
            &mut self.ready_io,
        ] {
            q.retain(|&i| i != id.index);
        }
        tracing::debug!(agent = %id, tuples = forgotten, "mux: agent removed");
        Some(*entry.agent)
    }

    /// The number of agents.
    pub fn len(&self) -> usize {
        self.router.len()
    }

    /// True without agents.
    pub fn is_empty(&self) -> bool {
        self.router.is_empty()
    }

    /// The ids of the agents, in slot order.
    pub fn agent_ids(&self) -> impl Iterator<Item = MuxAgentId> + '_ {
        self.router.ids()
    }

    /// An agent, to read.
    pub fn agent(&self, id: MuxAgentId) -> Option<&Agent> {
        self.entry(id).map(|e| &*e.agent)
    }

    /// An agent, to change: the guard dereferences to the [`Agent`], and when dropped
    /// brings the mux up to date (the agent's ufrags, deadline and output).
    pub fn agent_mut(&mut self, id: MuxAgentId) -> Option<MuxAgentMut<'_>> {
        self.entry(id)?;
        Some(MuxAgentMut { mux: self, id })
    }

    /// True if an agent has `ufrag` as the local ufrag of one of its streams.
    pub fn has_ufrag(&self, ufrag: &str) -> bool {
        self.router.has_ufrag(ufrag)
    }

    /// The number of ufrags registered.
    pub fn ufrag_count(&self) -> usize {
        self.router.ufrag_count()
    }

    /// The number of 5-tuples learned.
    pub fn tuple_count(&self) -> usize {
        self.router.tuple_count()
    }

    /// The number of 5-tuples learned for agent `id`.
    pub fn tuples_of(&self, id: MuxAgentId) -> usize {
        self.router.tuples_of(id)
    }

    /// Forgets a learned 5-tuple, e.g. when the TCP connection it names has closed, so
    /// that a later connection from the same address and port starts anew (first
    /// contact by ufrag). Returns the agent it led to.
    pub fn forget_tuple(
        &mut self,
        transport: TransportType,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<MuxAgentId> {
        self.router.forget_tuple(transport, local, remote)
    }

    /// The number of transactions remembered for routing responses.
    pub fn transaction_count(&self) -> usize {
        self.router.transaction_count()
    }

    /// The counters.
    pub fn stats(&self) -> MuxStats {
        self.router.stats()
    }

    /// The agent a packet would be routed to, or why none, without side effects (see the
    /// [module docs](self) for the rules). Allocates nothing.
    pub fn route(&self, transmit: &Transmit<&[u8]>) -> Result<MuxAgentId, MuxDrop> {
        self.router.peek(transmit)
    }

    /// Routes a received datagram (or, over TCP, one framed message) to its agent and
    /// hands it over ([`Agent::handle_incoming`]): application data comes back with the
    /// agent's id. Allocates nothing beyond what the agent does.
    pub fn handle_incoming<'a>(
        &mut self,
        now: Instant,
        transmit: Transmit<&'a [u8]>,
    ) -> MuxIncoming<'a> {
        let id = match self.router.route(&transmit) {
            Ok(id) => id,
            Err(drop) => return MuxIncoming::Dropped(drop),
        };
        let entry = self.entries[id.index as usize]
            .as_mut()
            .expect("routing finds live agents only");
        let received = entry.agent.handle_incoming(now, transmit);
        self.touched(id.index);
        match received {
            Some(data) => MuxIncoming::Data(id, data),
            None => MuxIncoming::Handled(id),
        }
    }

    /// Runs the agents whose deadline has come ([`Agent::handle_timeout`]), each once,
    /// and forgets expired transactions. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.router.expire(now);
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        while let Some((t, index)) = self.timers.peek() {
            if t > now {
                break;
            }
            // Out of the queue while it runs: each agent runs once per call.
            self.timers.set(index, None);
            due.push(index);
        }
        for &index in &due {
            if let Some(entry) = self.entries[index as usize].as_mut() {
                entry.agent.handle_timeout(now);
                self.router.count_timeout();
                self.touched(index);
            }
        }
        self.due = due;
    }

    /// The next datagram to send, from any agent, with the agent's id; agents take turns
    /// in the order inputs and timeouts touched them. Learns the 5-tuples and
    /// transactions it carries (see the [module docs](self)).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(MuxAgentId, Transmit<Vec<u8>>)> {
        while let Some(&index) = self.ready_transmit.front() {
            let Some(entry) = self.entries[index as usize].as_mut() else {
                self.ready_transmit.pop_front();
                continue;
            };
            let transmit = entry.agent.poll_transmit(now);
            let deadline = entry.agent.poll_timeout();
            self.timers.set(index, deadline);
            // What a transmit triggered (a started check's events) is collected.
            self.mark(index, READY_EVENT | READY_IO);
            match transmit {
                Some(t) => {
                    let id = self.router.id_of(index);
                    self.router.learn(now, id, &t.borrowed());
                    return Some((id, t));
                }
                None => {
                    if let Some(entry) = self.entries[index as usize].as_mut() {
                        entry.ready &= !READY_TRANSMIT;
                    }
                    self.ready_transmit.pop_front();
                }
            }
        }
        None
    }

    /// The next event of any agent, with the agent's id.
    pub fn poll_event(&mut self) -> Option<(MuxAgentId, AgentEvent)> {
        while let Some(&index) = self.ready_event.front() {
            let Some(entry) = self.entries[index as usize].as_mut() else {
                self.ready_event.pop_front();
                continue;
            };
            if let Some(event) = entry.agent.poll_event() {
                return Some((self.router.id_of(index), event));
            }
            entry.ready &= !READY_EVENT;
            self.ready_event.pop_front();
        }
        None
    }

    /// The next request of any agent to the I/O layer, with the agent's id; answer it
    /// through [`Self::agent_mut`].
    pub fn poll_io_request(&mut self) -> Option<(MuxAgentId, IoRequest)> {
        while let Some(&index) = self.ready_io.front() {
            let Some(entry) = self.entries[index as usize].as_mut() else {
                self.ready_io.pop_front();
                continue;
            };
            if let Some(request) = entry.agent.poll_io_request() {
                return Some((self.router.id_of(index), request));
            }
            entry.ready &= !READY_IO;
            self.ready_io.pop_front();
        }
        None
    }

    /// The earliest deadline of all agents: O(1). Has no side effects; changes after any
    /// call that reaches an agent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|(t, _)| t)
    }

    /// The deadline of one agent as the timer queue has it.
    pub fn agent_timeout(&self, id: MuxAgentId) -> Option<Instant> {
        self.entry(id)?;
        self.timers.get(id.index)
    }

    fn entry(&self, id: MuxAgentId) -> Option<&Entry> {
        if !self.router.contains(id) {
            return None;
        }
        self.entries.get(id.index as usize)?.as_ref()
    }

    /// Puts agent `index` on the ready queues in `flags` it is not on yet.
    fn mark(&mut self, index: u32, flags: u8) {
        let Some(entry) = self.entries[index as usize].as_mut() else {
            return;
        };
        let new = flags & !entry.ready;
        entry.ready |= new;
        if new & READY_TRANSMIT != 0 {
            self.ready_transmit.push_back(index);
        }
        if new & READY_EVENT != 0 {
            self.ready_event.push_back(index);
        }
        if new & READY_IO != 0 {
            self.ready_io.push_back(index);
        }
    }

    /// After an input reached agent `index`: its output is collected and its deadline
    /// re-read.
    fn touched(&mut self, index: u32) {
        self.mark(index, READY_TRANSMIT | READY_EVENT | READY_IO);
        if let Some(entry) = self.entries[index as usize].as_ref() {
            self.timers.set(index, entry.agent.poll_timeout());
        }
    }

    /// Re-reads the local ufrags of agent `index` (after the caller changed it).
    fn refresh_ufrags(&mut self, index: u32) {
        let id = self.router.id_of(index);
        if let Some(entry) = self.entries[index as usize].as_mut() {
            self.router.refresh_ufrags(id, &mut entry.agent);
        }
    }
}

/// An agent of a [`Mux`], borrowed through [`Mux::agent_mut`]. Dereferences to the
/// [`Agent`]; when dropped, the mux re-reads the agent's ufrags (an ICE restart gives new
/// ones, RFC 8445 §9) and deadline, and collects its output on the next `poll_*` calls.
#[derive(Debug)]
pub struct MuxAgentMut<'a> {
    mux: &'a mut Mux,
    id: MuxAgentId,
}

impl MuxAgentMut<'_> {
    /// The agent's id.
    pub fn id(&self) -> MuxAgentId {
        self.id
    }
}

impl Deref for MuxAgentMut<'_> {
    type Target = Agent;

    fn deref(&self) -> &Agent {
        &self.mux.entries[self.id.index as usize]
            .as_ref()
            .expect("the guard is made for a live agent")
            .agent
    }
}

impl DerefMut for MuxAgentMut<'_> {
    fn deref_mut(&mut self) -> &mut Agent {
        &mut self.mux.entries[self.id.index as usize]
            .as_mut()
            .expect("the guard is made for a live agent")
            .agent
    }
}

impl Drop for MuxAgentMut<'_> {
    fn drop(&mut self) {
        self.mux.refresh_ufrags(self.id.index);
        self.mux.touched(self.id.index);
    }
}
