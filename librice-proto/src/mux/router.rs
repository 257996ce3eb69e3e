//! The routing half of a [`Mux`](super::Mux): which agent a packet on the shared address
//! is for, and what the agents' own packets teach about that. It owns the agent slots'
//! numbering (an id is never confused with a removed agent's), the ufrag registry, the
//! learned 5-tuples and the transactions in flight, with their bounds and counters.
//!
//! [`Mux`](super::Mux) is this router plus the agents it owns, their timers and their
//! output queues. An I/O layer that keeps each agent behind a lock of its own (so that the
//! application's handles on different agents never wait for one another, as the
//! `librice` endpoint does) uses the router alone: [`MuxRouter::add`] an agent,
//! [`MuxRouter::route`] every packet that arrives, give it to the agent found,
//! [`MuxRouter::learn`] from every packet an agent sends, and
//! [`MuxRouter::refresh_ufrags`] after anything that may change an agent's local ufrags
//! (a new stream, an ICE restart). The rules are those of the [module docs](super).

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use super::tables::TxnTable;
use super::tuples::{Learned, MAX_LOCAL_ADDRESSES, Tuple, TupleTable};
use super::ufrags::UfragTable;
use super::{MuxAgentId, MuxConfig, MuxDrop, MuxStats};
use crate::agent::{Agent, StreamId};
use crate::stun::attr::AttributeType;
use crate::stun::{Message, MessageClass, MessageHeader, Method, looks_like_stun};
use crate::{Transmit, TransportType};

/// Why [`MuxRouter::add`] refused an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MuxRouterError {
    /// Another agent already has this local ufrag.
    UfragInUse(String),
    /// The router numbers `u32::MAX - 1` agents already.
    Full,
}

impl fmt::Display for MuxRouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UfragInUse(ufrag) => {
                write!(
                    f,
                    "local ufrag {ufrag:?} is used by another agent of the mux"
                )
            }
            Self::Full => f.write_str("the mux holds as many agents as it can number"),
        }
    }
}

impl std::error::Error for MuxRouterError {}

/// How a packet found its agent.
#[derive(Debug, Clone, Copy)]
enum Via {
    Tuple,
    Ufrag,
    Transaction(crate::stun::TransactionId),
}

/// One slot: its generation (which changes when its agent is removed), and whether it
/// has an agent. Its ufrags and tuples are in their tables, by slot index.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    generation: u32,
    live: bool,
}

/// The routing tables of many agents on one shared address. See the [mux module
/// docs](super).
#[derive(Debug)]
pub struct MuxRouter {
    config: MuxConfig,
    slots: Vec<Slot>,
    /// Free slot indices, reused last-freed first.
    free: Vec<u32>,
    len: usize,
    ufrags: UfragTable,
    tuples: TupleTable,
    txns: TxnTable,
    stats: MuxStats,
}

impl Default for MuxRouter {
    fn default() -> Self {
        Self::new(MuxConfig::default())
    }
}

impl MuxRouter {
    /// An empty router.
    pub fn new(config: MuxConfig) -> Self {
        Self {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            ufrags: UfragTable::default(),
            tuples: TupleTable::default(),
            txns: TxnTable::default(),
            stats: MuxStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MuxConfig {
        &self.config
    }

    /// Numbers a new agent and registers the local ufrags of its streams (an agent
    /// without streams yet registers them later, with [`Self::refresh_ufrags`]).
    ///
    /// # Errors
    ///
    /// [`MuxRouterError::UfragInUse`] if one of its ufrags is another agent's;
    /// [`MuxRouterError::Full`] with `u32::MAX - 1` agents already.
    pub fn add(&mut self, agent: &mut Agent) -> Result<MuxAgentId, MuxRouterError> {
        let ufrags = current_ufrags(agent);
        if let Some(ufrag) = ufrags.iter().find(|u| self.ufrags.get(u).is_some()) {
            return Err(MuxRouterError::UfragInUse(ufrag.clone()));
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i < u32::MAX - 1)
                    .ok_or(MuxRouterError::Full)?;
                self.slots.push(Slot::default());
                index
            }
        };
        self.tuples.reserve_slot(index);
        self.ufrags.reserve_slot(index);
        let conflicts = self.ufrags.set(index, &ufrags);
        debug_assert_eq!(conflicts, 0, "checked above");
        let slot = &mut self.slots[index as usize];
        slot.live = true;
        self.len += 1;
        Ok(MuxAgentId {
            index,
            generation: slot.generation,
        })
    }

    /// Forgets an agent: its ufrags and 5-tuples go (its peers' later packets are dropped
    /// and counted), and its id is never valid again. Returns how many 5-tuples went;
    /// `None` for an unknown id.
    pub fn remove(&mut self, id: MuxAgentId) -> Option<usize> {
        if !self.contains(id) {
            return None;
        }
        let slot = &mut self.slots[id.index as usize];
        slot.live = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.ufrags.forget_slot(id.index);
        self.free.push(id.index);
        self.len -= 1;
        Some(self.tuples.forget_slot(id.index))
    }

    /// True if `id` is an agent of this router.
    pub fn contains(&self, id: MuxAgentId) -> bool {
        self.slots
            .get(id.index as usize)
            .is_some_and(|s| s.live && s.generation == id.generation)
    }

    /// The number of agents.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without agents.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of slots ever used (the largest number of agents held at once): every
    /// live id's index is below it.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The ids of the agents, in slot order.
    pub fn ids(&self) -> impl Iterator<Item = MuxAgentId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.live.then_some(MuxAgentId {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    /// The id of the live agent in slot `index`.
    pub(super) fn id_of(&self, index: u32) -> MuxAgentId {
        MuxAgentId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    /// True if an agent has `ufrag` as the local ufrag of one of its streams.
    pub fn has_ufrag(&self, ufrag: &str) -> bool {
        self.ufrags.get(ufrag).is_some()
    }

    /// The number of ufrags registered.
    pub fn ufrag_count(&self) -> usize {
        self.ufrags.len()
    }

    /// The number of 5-tuples learned.
    pub fn tuple_count(&self) -> usize {
        self.tuples.len()
    }

    /// The number of 5-tuples learned for agent `id`.
    pub fn tuples_of(&self, id: MuxAgentId) -> usize {
        if self.contains(id) {
            self.tuples.slot_len(id.index)
        } else {
            0
        }
    }

    /// Forgets a learned 5-tuple (a TCP connection that closed, say), so that a later
    /// packet on it starts anew (first contact by ufrag). Returns the agent it led to.
    pub fn forget_tuple(
        &mut self,
        transport: TransportType,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Option<MuxAgentId> {
        let tuple = Tuple::new(transport, local, remote);
        self.tuples.forget(&tuple)
    }

    /// The number of transactions remembered for routing responses.
    pub fn transaction_count(&self) -> usize {
        self.txns.len()
    }

    /// The counters.
    pub fn stats(&self) -> MuxStats {
        self.stats
    }

    /// Counts an agent run for its timer ([`MuxStats::agent_timeouts`]).
    pub fn count_timeout(&mut self) {
        self.stats.agent_timeouts += 1;
    }

    /// The agent a packet would be routed to, or why none, without side effects.
    /// Allocates nothing.
    pub fn peek(&self, transmit: &Transmit<&[u8]>) -> Result<MuxAgentId, MuxDrop> {
        self.route_inner(transmit).map(|(id, _)| id)
    }

    /// Routes a packet that arrived on the shared address: the agent to give it to, or
    /// why none. Counts it in [`Self::stats`] (a drop is traced too), and forgets the
    /// transaction a response answers. Allocates nothing.
    pub fn route(&mut self, transmit: &Transmit<&[u8]>) -> Result<MuxAgentId, MuxDrop> {
        let (id, via) = match self.route_inner(transmit) {
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
                return Err(drop);
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
        Ok(id)
    }

    /// Forgets the transactions whose time has come.
    pub fn expire(&mut self, now: Instant) {
        self.txns.expire(now);
    }

    /// The agent for a packet, and how it was found. By 5-tuple, it reads the tuple
    /// table alone (its entries hold the full id).
    fn route_inner(&self, t: &Transmit<&[u8]>) -> Result<(MuxAgentId, Via), MuxDrop> {
        let by_tuple = || {
            self.tuples
                .get_by(t.transport, &t.to, &t.from)
                .map(|i| (i, Via::Tuple))
        };
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
                && self.contains(agent)
            {
                return Ok((agent, Via::Transaction(id)));
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
        if let Some(index) = self.ufrags.get(local) {
            return Ok((self.id_of(index), Via::Ufrag));
        }
        by_tuple().ok_or(MuxDrop::UnknownUfrag)
    }

    /// Learns what a packet agent `id` sends tells: a transaction to route the response
    /// of, a 5-tuple its peer uses (see the [module docs](super)). Call it for every
    /// packet the agent sends from the shared address; data teaches nothing and costs one
    /// byte comparison.
    pub fn learn(&mut self, now: Instant, id: MuxAgentId, t: &Transmit<&[u8]>) {
        if !looks_like_stun(t.data) || !self.contains(id) {
            return;
        }
        let Ok(msg) = Message::parse(t.data) else {
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
        let tuple = Tuple::new(t.transport, t.from, t.to);
        match self.tuples.learn(
            id,
            &tuple,
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
            Learned::NoLocalRoom => {
                self.stats.tuples_refused += 1;
                tracing::debug!(
                    agent = %id,
                    local = %t.from,
                    max = MAX_LOCAL_ADDRESSES,
                    "mux: 5-tuple not learned, too many local addresses"
                );
            }
        }
    }

    /// Re-reads the local ufrags of agent `id` (after something that may have changed
    /// them: a new stream, an ICE restart of either side, RFC 8445 §9). Allocates nothing
    /// when they are unchanged. A ufrag another agent has is not registered (counted in
    /// [`MuxStats::ufrag_conflicts`]): the agent is then reached by 5-tuple only.
    pub fn refresh_ufrags(&mut self, id: MuxAgentId, agent: &mut Agent) {
        if !self.contains(id) || self.ufrags_unchanged(id.index, agent) {
            return;
        }
        let conflicts = self.ufrags.set(id.index, &current_ufrags(agent));
        if conflicts > 0 {
            self.stats.ufrag_conflicts += conflicts as u64;
            tracing::warn!(agent = %id, conflicts, "mux: ufrag already used by another agent; reached by 5-tuple only");
        }
    }

    /// True when the ufrags registered for slot `index` are still `agent`'s streams' (or,
    /// for one not registered, still another agent's). Allocates nothing.
    fn ufrags_unchanged(&self, index: u32, agent: &mut Agent) -> bool {
        let count = agent.stream_count();
        if self.ufrags.stream_count(index) != count {
            return false;
        }
        (0..count).all(|i| {
            agent.stream_mut(StreamId::from_index(i)).is_some_and(|s| {
                self.ufrags
                    .unchanged(index, i, s.local_credentials().ufrag())
            })
        })
    }
}

/// The local ufrag of a USERNAME value "local:remote": the bytes before the first `:`,
/// non-empty UTF-8. Borrows, never allocates.
pub(super) fn local_ufrag(username: &[u8]) -> Option<&str> {
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
