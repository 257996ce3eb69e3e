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
//!   [`MuxConfig::max_tuples`], new tuples being refused beyond. A tuple another agent
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

mod tables;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::agent::{Agent, AgentEvent, IoRequest, ReceivedData, StreamId};
use crate::stun::attr::AttributeType;
use crate::stun::{Message, MessageClass, MessageHeader, Method, looks_like_stun};
use crate::{Transmit, TransportType};

use tables::{FixedState, Learned, Tuple, TupleTable, TxnTable};
use timers::TimerHeap;

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
    /// 5-tuples not learned because the table was full ([`MuxConfig::max_tuples`]).
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
                write!(
                    f,
                    "local ufrag {ufrag:?} is used by another agent of the mux"
                )
            }
            Self::Full => f.write_str("the mux holds as many agents as it can number"),
        }
    }
}

impl std::error::Error for MuxError {}

/// Ready-queue flags of an agent.
const READY_TRANSMIT: u8 = 1;
const READY_EVENT: u8 = 2;
const READY_IO: u8 = 4;

/// One agent of the mux and what the mux keeps about it.
#[derive(Debug)]
struct Entry {
    /// Boxed: an `Agent` is large inline, and the slot vector grows by doubling.
    agent: Box<Agent>,
    /// The local ufrags registered for it, one per stream (`None`: not registered, as
    /// taken by another agent).
    ufrags: Vec<Option<Box<str>>>,
    /// Which ready queues it is on.
    ready: u8,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// Many ICE agents behind one shared local address. See the [module docs](self).
#[derive(Debug)]
pub struct Mux {
    config: MuxConfig,
    slots: Vec<Slot>,
    /// Free slot indices, reused last-freed first.
    free: Vec<u32>,
    len: usize,
    by_ufrag: HashMap<Box<str>, u32, FixedState>,
    tuples: TupleTable,
    txns: TxnTable,
    timers: TimerHeap,
    ready_transmit: VecDeque<u32>,
    ready_event: VecDeque<u32>,
    ready_io: VecDeque<u32>,
    /// Scratch list of the agents due in [`Mux::handle_timeout`] (kept for its capacity).
    due: Vec<u32>,
    stats: MuxStats,
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
            config,
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            by_ufrag: HashMap::default(),
            tuples: TupleTable::default(),
            txns: TxnTable::default(),
            timers: TimerHeap::default(),
            ready_transmit: VecDeque::new(),
            ready_event: VecDeque::new(),
            ready_io: VecDeque::new(),
            due: Vec::new(),
            stats: MuxStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MuxConfig {
        &self.config
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
        let ufrags = current_ufrags(&mut agent);
        if let Some(ufrag) = ufrags
            .iter()
            .find(|u| self.by_ufrag.contains_key(u.as_str()))
        {
            return Err(MuxError::UfragInUse {
                ufrag: ufrag.clone(),
                agent: Box::new(agent),
            });
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i < u32::MAX - 1)
                    .ok_or(MuxError::Full)?;
                self.slots.push(Slot::default());
                index
            }
        };
        // Room for every agent on every queue, so that routing never allocates.
        let slots = self.slots.len();
        for q in [
            &mut self.ready_transmit,
            &mut self.ready_event,
            &mut self.ready_io,
        ] {
            q.reserve(slots.saturating_sub(q.len()));
        }
        self.due.reserve(slots.saturating_sub(self.due.len()));
        self.timers.reserve_slot(index);
        self.tuples.reserve_slot(index);
        let mut registered = Vec::with_capacity(ufrags.len());
        for ufrag in ufrags {
            let key: Box<str> = ufrag.into();
            self.by_ufrag.insert(key.clone(), index);
            registered.push(Some(key));
        }
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(Entry {
            agent: Box::new(agent),
            ufrags: registered,
            ready: 0,
        });
        let id = MuxAgentId {
            index,
            generation: slot.generation,
        };
        self.len += 1;
        self.touched(index);
        tracing::debug!(agent = %id, "mux: agent added");
        Ok(id)
    }

    /// Removes an agent and gives it back: its ufrags and 5-tuples are forgotten, so its
    /// peers' later packets are dropped and counted. Call [`Agent::close`] on it first to
    /// release TURN allocations, and send what it then asks. `None` for an unknown id.
    pub fn remove_agent(&mut self, id: MuxAgentId) -> Option<Agent> {
        self.entry(id)?;
        let slot = &mut self.slots[id.index as usize];
        let entry = slot.entry.take().expect("checked above");
        slot.generation = slot.generation.wrapping_add(1);
        for ufrag in entry.ufrags.iter().flatten() {
            if self.by_ufrag.get(ufrag) == Some(&id.index) {
                self.by_ufrag.remove(ufrag);
            }
        }
        let forgotten = self.tuples.forget_slot(id.index);
        self.timers.set(id.index, None);
        for q in [
            &mut self.ready_transmit,
            &mut self.ready_event,
            &mut self.ready_io,
        ] {
            q.retain(|&i| i != id.index);
        }
        self.free.push(id.index);
        self.len -= 1;
        tracing::debug!(agent = %id, tuples = forgotten, "mux: agent removed");
        Some(*entry.agent)
    }

    /// The number of agents.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without agents.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids of the agents, in slot order.
    pub fn agent_ids(&self) -> impl Iterator<Item = MuxAgentId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| MuxAgentId {
                index: i as u32,
                generation: s.generation,
            })
        })
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
        self.by_ufrag.contains_key(ufrag)
    }

    /// The number of ufrags registered.
    pub fn ufrag_count(&self) -> usize {
        self.by_ufrag.len()
    }

    /// The number of 5-tuples learned.
    pub fn tuple_count(&self) -> usize {
        self.tuples.len()
    }

    /// The number of 5-tuples learned for agent `id`.
    pub fn tuples_of(&self, id: MuxAgentId) -> usize {
        self.entry(id)
            .map_or(0, |_| self.tuples.of_slot(id.index).len())
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
        let tuple = Tuple {
            transport,
            local,
            remote,
        };
        self.tuples.forget(&tuple).map(|index| self.id_of(index))
    }

    /// The number of transactions remembered for routing responses.
    pub fn transaction_count(&self) -> usize {
        self.txns.len()
    }

    /// The counters.
    pub fn stats(&self) -> MuxStats {
        self.stats
    }

    /// The agent a packet would be routed to, or why none, without side effects (see the
    /// [module docs](self) for the rules). Allocates nothing.
    pub fn route(&self, transmit: &Transmit<&[u8]>) -> Result<MuxAgentId, MuxDrop> {
        self.route_inner(transmit)
            .map(|(index, _)| self.id_of(index))
    }

    /// Routes a received datagram (or, over TCP, one framed message) to its agent and
    /// hands it over ([`Agent::handle_incoming`]): application data comes back with the
    /// agent's id. Allocates nothing beyond what the agent does.
    pub fn handle_incoming<'a>(
        &mut self,
        now: Instant,
        transmit: Transmit<&'a [u8]>,
    ) -> MuxIncoming<'a> {
        let (index, via) = match self.route_inner(&transmit) {
            Ok(routed) => routed,
            Err(drop) => {
                let counter = match drop {
                    MuxDrop::UnknownUfrag => &mut self.stats.dropped_unknown_ufrag,
                    MuxDrop::UnknownSource => &mut self.stats.dropped_unknown_source,
                    MuxDrop::MalformedUsername => &mut self.stats.dropped_malformed_username,
                    MuxDrop::Malformed => &mut self.stats.dropped_malformed,
                };
                *counter += 1;
                tracing::trace!(from = %transmit.from, to = %transmit.to, reason = %drop, "mux: dropped");
                return MuxIncoming::Dropped(drop);
            }
        };
        match via {
            Via::Tuple => self.stats.routed_by_tuple += 1,
            Via::Ufrag => self.stats.routed_by_ufrag += 1,
            Via::Transaction(txid) => {
                self.stats.routed_by_transaction += 1;
                self.txns.take(&txid);
            }
        }
        let id = self.id_of(index);
        let entry = self.slots[index as usize]
            .entry
            .as_mut()
            .expect("routing finds live agents only");
        let received = entry.agent.handle_incoming(now, transmit);
        self.touched(index);
        match received {
            Some(data) => MuxIncoming::Data(id, data),
            None => MuxIncoming::Handled(id),
        }
    }

    /// Runs the agents whose deadline has come ([`Agent::handle_timeout`]), each once,
    /// and forgets expired transactions. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.txns.expire(now);
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
            if let Some(entry) = self.slots[index as usize].entry.as_mut() {
                entry.agent.handle_timeout(now);
                self.stats.agent_timeouts += 1;
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
            let Some(entry) = self.slots[index as usize].entry.as_mut() else {
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
                    let id = self.id_of(index);
                    self.learn_from(now, index, id, &t);
                    return Some((id, t));
                }
                None => {
                    if let Some(entry) = self.slots[index as usize].entry.as_mut() {
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
            let generation = self.slots[index as usize].generation;
            let Some(entry) = self.slots[index as usize].entry.as_mut() else {
                self.ready_event.pop_front();
                continue;
            };
            if let Some(event) = entry.agent.poll_event() {
                return Some((MuxAgentId { index, generation }, event));
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
            let generation = self.slots[index as usize].generation;
            let Some(entry) = self.slots[index as usize].entry.as_mut() else {
                self.ready_io.pop_front();
                continue;
            };
            if let Some(request) = entry.agent.poll_io_request() {
                return Some((MuxAgentId { index, generation }, request));
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
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    fn id_of(&self, index: u32) -> MuxAgentId {
        MuxAgentId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// The agent slot for a packet, and how it was found.
    fn route_inner(&self, t: &Transmit<&[u8]>) -> Result<(u32, Via), MuxDrop> {
        let tuple = Tuple {
            transport: t.transport,
            local: t.to,
            remote: t.from,
        };
        let by_tuple = || self.tuples.get(&tuple).map(|i| (i, Via::Tuple));
        if !looks_like_stun(t.data) {
            return by_tuple().ok_or(MuxDrop::UnknownSource);
        }
        let Ok(header) = MessageHeader::parse(t.data) else {
            return by_tuple().ok_or(MuxDrop::Malformed);
        };
        let class = header.message_type.class;
        if class.is_response() {
            let id = header.transaction_id;
            if let Some(agent) = self.txns.get(&id)
                && self.entry(agent).is_some()
            {
                return Ok((agent.index, Via::Transaction(id)));
            }
            return by_tuple().ok_or(MuxDrop::UnknownSource);
        }
        if class != MessageClass::Request || header.message_type.method != Method::BINDING {
            return by_tuple().ok_or(MuxDrop::UnknownSource);
        }
        let Ok(msg) = Message::parse(t.data) else {
            return by_tuple().ok_or(MuxDrop::Malformed);
        };
        let Some(username) = msg.raw_attribute(AttributeType::USERNAME) else {
            return by_tuple().ok_or(MuxDrop::UnknownSource);
        };
        // RFC 8445 §7.2.2: USERNAME is "local ufrag:remote ufrag" seen from the receiver
        // (the sender writes the receiver's ufrag first). Only the local part is needed.
        let Some(local) = local_ufrag(username.value()) else {
            return Err(MuxDrop::MalformedUsername);
        };
        if let Some(&index) = self.by_ufrag.get(local) {
            return Ok((index, Via::Ufrag));
        }
        by_tuple().ok_or(MuxDrop::UnknownUfrag)
    }

    /// Puts agent `index` on the ready queues in `flags` it is not on yet.
    fn mark(&mut self, index: u32, flags: u8) {
        let Some(entry) = self.slots[index as usize].entry.as_mut() else {
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
        if let Some(entry) = self.slots[index as usize].entry.as_ref() {
            self.timers.set(index, entry.agent.poll_timeout());
        }
    }

    /// Learns what an agent's outgoing packet tells: a transaction to route the response
    /// of, a 5-tuple its peer uses.
    fn learn_from(&mut self, now: Instant, index: u32, id: MuxAgentId, t: &Transmit<Vec<u8>>) {
        if !looks_like_stun(&t.data) {
            return;
        }
        let Ok(msg) = Message::parse(&t.data) else {
            return;
        };
        let class = msg.class();
        if class == MessageClass::Request {
            self.stats.transactions_evicted += self.txns.record(
                now,
                id,
                msg.transaction_id(),
                self.config.transaction_lifetime,
                self.config.max_transactions,
            ) as u64;
        }
        // A Binding success response answers an authenticated check (RFC 8445 §7.3); a
        // request with USERNAME is a check towards a candidate the agent was given, or a
        // TURN request with the long-term credentials of the agent's server (RFC 8656
        // §7.2). A Binding request without USERNAME (to a STUN server, which several
        // agents may share) teaches nothing: its response goes by transaction id.
        let learn = (class == MessageClass::Success && msg.method() == Method::BINDING)
            || (class == MessageClass::Request && msg.has_attribute(AttributeType::USERNAME));
        if !learn {
            return;
        }
        let tuple = Tuple {
            transport: t.transport,
            local: t.from,
            remote: t.to,
        };
        match self.tuples.learn(
            index,
            tuple,
            self.config.max_tuples_per_agent,
            self.config.max_tuples,
        ) {
            Learned::Known => {}
            Learned::New { evicted } | Learned::Moved { evicted } => {
                self.stats.tuples_learned += 1;
                self.stats.tuples_evicted += u64::from(evicted);
                tracing::trace!(agent = %id, remote = %t.to, "mux: 5-tuple learned");
            }
            Learned::Refused => {
                self.stats.tuples_refused += 1;
                tracing::debug!(agent = %id, remote = %t.to, "mux: 5-tuple table full");
            }
        }
    }

    /// True when the ufrags registered for agent `index` are still its streams' (or,
    /// for one not registered, still another agent's). Allocates nothing.
    fn ufrags_unchanged(&mut self, index: u32) -> bool {
        let Mux {
            slots, by_ufrag, ..
        } = self;
        let Some(entry) = slots[index as usize].entry.as_mut() else {
            return true;
        };
        let count = entry.agent.stream_count();
        if entry.ufrags.len() != count {
            return false;
        }
        (0..count).all(|i| {
            let registered = &entry.ufrags[i];
            entry
                .agent
                .stream_mut(StreamId::from_index(i))
                .is_some_and(|s| {
                    let current = s.local_credentials().ufrag();
                    match registered {
                        Some(u) => current == &**u,
                        None => by_ufrag.get(current).is_some_and(|&o| o != index),
                    }
                })
        })
    }

    /// Re-reads the local ufrags of agent `index` (after the caller changed it).
    fn refresh_ufrags(&mut self, index: u32) {
        if self.ufrags_unchanged(index) {
            return;
        }
        let Some(entry) = self.slots[index as usize].entry.as_mut() else {
            return;
        };
        let old = std::mem::take(&mut entry.ufrags);
        for ufrag in old.into_iter().flatten() {
            if self.by_ufrag.get(&ufrag) == Some(&index) {
                self.by_ufrag.remove(&ufrag);
            }
        }
        let entry = self.slots[index as usize]
            .entry
            .as_mut()
            .expect("checked above");
        let current = current_ufrags(&mut entry.agent);
        let mut registered = Vec::with_capacity(current.len());
        for ufrag in current {
            let key: Box<str> = ufrag.into();
            match self.by_ufrag.get(&key) {
                Some(&other) if other != index => {
                    self.stats.ufrag_conflicts += 1;
                    tracing::warn!(ufrag = %key, "mux: ufrag already used by another agent; reached by 5-tuple only");
                    registered.push(None);
                }
                _ => {
                    self.by_ufrag.insert(key.clone(), index);
                    registered.push(Some(key));
                }
            }
        }
        entry.ufrags = registered;
    }
}

/// How a packet found its agent.
#[derive(Debug, Clone, Copy)]
enum Via {
    Tuple,
    Ufrag,
    Transaction(crate::stun::TransactionId),
}

/// The local ufrag of a USERNAME value "local:remote": the bytes before the first `:`,
/// non-empty UTF-8. Borrows, never allocates.
fn local_ufrag(username: &[u8]) -> Option<&str> {
    let colon = username.iter().position(|&b| b == b':')?;
    let local = std::str::from_utf8(&username[..colon]).ok()?;
    (!local.is_empty()).then_some(local)
}

/// The local ufrags of every stream of `agent`, in stream order.
fn current_ufrags(agent: &mut Agent) -> Vec<String> {
    (0..agent.stream_count())
        .filter_map(|i| {
            agent
                .stream_mut(StreamId::from_index(i))
                .map(|s| s.local_credentials().ufrag().to_owned())
        })
        .collect()
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
        &self.mux.slots[self.id.index as usize]
            .entry
            .as_ref()
            .expect("the guard is made for a live agent")
            .agent
    }
}

impl DerefMut for MuxAgentMut<'_> {
    fn deref_mut(&mut self) -> &mut Agent {
        &mut self.mux.slots[self.id.index as usize]
            .entry
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
