//! The mux's routing tables, each the owner of its bounds: learned 5-tuples
//! ([`TupleTable`]) and the transactions the agents have in flight ([`TxnTable`]).
//!
//! Both are hash maps with a fixed-key hasher: the mux stays deterministic (no OS
//! randomness, DESIGN.md), and flooding is no concern for them, since only what an agent
//! sends, never what arrives, adds entries; look-ups of keys chosen by a peer cost one
//! probe sequence whatever the key.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::MuxAgentId;
use crate::TransportType;
use crate::stun::TransactionId;

/// The hasher of the routing tables: SipHash with fixed keys (see the module docs).
pub(super) type FixedState = BuildHasherDefault<DefaultHasher>;

/// A 5-tuple as the mux sees it: the transport, the local socket (the mux's shared
/// address) and the remote address, packed into 45 bytes (an address as its IPv6 form, its
/// port and its IPv6 scope; IPv4 as IPv4-mapped IPv6) and hashed with one write: a table
/// entry is 52 bytes rather than the 72 of two `SocketAddr`s, so that 10,000 agents'
/// tuples stay in a core's cache and a look-up costs about the same at 10 and at 10,000.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Tuple {
    bytes: [u8; 45],
}

impl Tuple {
    pub(super) fn new(transport: TransportType, local: SocketAddr, remote: SocketAddr) -> Self {
        let mut bytes = [0u8; 45];
        bytes[0] = match transport {
            TransportType::Udp => 0,
            TransportType::Tcp => 1,
        };
        pack(&mut bytes[1..23], local);
        pack(&mut bytes[23..45], remote);
        Self { bytes }
    }
}

/// Writes `addr` into 22 bytes: IPv6 (or IPv4-mapped) address, port, scope id.
fn pack(out: &mut [u8], addr: SocketAddr) {
    let (ip, scope) = match addr {
        SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), 0),
        SocketAddr::V6(a) => (*a.ip(), a.scope_id()),
    };
    out[..16].copy_from_slice(&ip.octets());
    out[16..18].copy_from_slice(&addr.port().to_be_bytes());
    out[18..22].copy_from_slice(&scope.to_be_bytes());
}

impl std::hash::Hash for Tuple {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.bytes);
    }
}

impl std::fmt::Debug for Tuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuple").field("bytes", &self.bytes).finish()
    }
}

/// What [`TupleTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Learned {
    /// The tuple was already the agent's (now its most recently used).
    Known,
    /// A new tuple; `evicted` says whether the agent's least recently used one went to
    /// make room.
    New { evicted: bool },
    /// The tuple was another agent's and is now this one's.
    Moved { evicted: bool },
    /// The table is full: not learned.
    Refused,
}

/// Learned 5-tuple -> agent slot, with each slot's tuples in least-recently-used order.
#[derive(Debug, Default)]
pub(super) struct TupleTable {
    map: HashMap<Tuple, u32, FixedState>,
    /// Slot -> its tuples, least recently used first (at most the per-agent cap).
    per_slot: Vec<Vec<Tuple>>,
}

impl TupleTable {
    /// Makes room for slot `slot`.
    pub(super) fn reserve_slot(&mut self, slot: u32) {
        let needed = slot as usize + 1;
        if self.per_slot.len() < needed {
            self.per_slot.resize_with(needed, Vec::new);
        }
    }

    /// The slot a tuple belongs to.
    pub(super) fn get(&self, tuple: &Tuple) -> Option<u32> {
        self.map.get(tuple).copied()
    }

    /// The number of tuples learned.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The tuples of `slot`, least recently used first.
    pub(super) fn of_slot(&self, slot: u32) -> &[Tuple] {
        self.per_slot.get(slot as usize).map_or(&[], Vec::as_slice)
    }

    /// Gives `tuple` to `slot`, keeping at most `per_slot_cap` tuples for the slot (its
    /// least recently used one goes) and at most `total_cap` in all (a new tuple is
    /// refused when full). A tuple another slot had moves to this one: the agent that sent
    /// on it last is the one its peer now talks to.
    pub(super) fn learn(
        &mut self,
        slot: u32,
        tuple: Tuple,
        per_slot_cap: usize,
        total_cap: usize,
    ) -> Learned {
        let per_slot_cap = per_slot_cap.max(1);
        let previous = self.map.get(&tuple).copied();
        if previous == Some(slot) {
            let list = &mut self.per_slot[slot as usize];
            if let Some(i) = list.iter().position(|t| *t == tuple) {
                let t = list.remove(i);
                list.push(t);
            }
            return Learned::Known;
        }
        if previous.is_none() && self.map.len() >= total_cap {
            return Learned::Refused;
        }
        if let Some(other) = previous {
            self.per_slot[other as usize].retain(|t| *t != tuple);
        }
        let list = &mut self.per_slot[slot as usize];
        let evicted = list.len() >= per_slot_cap;
        if evicted {
            let old = list.remove(0);
            self.map.remove(&old);
        }
        // Most agents have one tuple: grow one at a time, not to the default of 4.
        list.reserve_exact(1);
        list.push(tuple);
        self.map.insert(tuple, slot);
        match previous {
            Some(_) => Learned::Moved { evicted },
            None => Learned::New { evicted },
        }
    }

    /// Forgets one tuple; returns the slot it belonged to.
    pub(super) fn forget(&mut self, tuple: &Tuple) -> Option<u32> {
        let slot = self.map.remove(tuple)?;
        self.per_slot[slot as usize].retain(|t| t != tuple);
        Some(slot)
    }

    /// Forgets every tuple of `slot`; returns how many.
    pub(super) fn forget_slot(&mut self, slot: u32) -> usize {
        let Some(list) = self.per_slot.get_mut(slot as usize) else {
            return 0;
        };
        let n = list.len();
        for t in list.drain(..) {
            self.map.remove(&t);
        }
        // Give the memory back: the slot may stay empty for long.
        list.shrink_to_fit();
        n
    }
}

/// A transaction in flight: who sent it and until when it is remembered.
#[derive(Debug, Clone, Copy)]
struct TxnEntry {
    agent: MuxAgentId,
    expiry: Instant,
}

/// Transaction id -> the agent that sent the request, for routing the response
/// (RFC 8489 §6.3.1: a response carries its request's transaction id). Entries go at the
/// first response, at their expiry, or, when the table is full, oldest first.
#[derive(Debug, Default)]
pub(super) struct TxnTable {
    map: HashMap<[u8; 12], TxnEntry, FixedState>,
    /// Expiry order: (expiry, id). An id whose entry went (answered, or replaced after
    /// it) is skipped when it comes out.
    order: VecDeque<(Instant, [u8; 12])>,
}

impl TxnTable {
    /// The number of transactions remembered.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Remembers that `agent` sent request `id` at `now`, for `lifetime`, keeping at
    /// most `cap` entries; returns how many live entries were evicted to make room. A
    /// retransmission (an id already known) changes nothing.
    pub(super) fn record(
        &mut self,
        now: Instant,
        agent: MuxAgentId,
        id: TransactionId,
        lifetime: Duration,
        cap: usize,
    ) -> usize {
        if cap == 0 || self.map.contains_key(id.as_bytes()) {
            return 0;
        }
        self.expire(now);
        let mut evicted = 0;
        while self.order.len() >= cap {
            if self.pop_oldest() {
                evicted += 1;
            }
        }
        let expiry = now + lifetime;
        self.map.insert(*id.as_bytes(), TxnEntry { agent, expiry });
        self.order.push_back((expiry, *id.as_bytes()));
        evicted
    }

    /// The agent that sent request `id`, if remembered: the entry goes (later responses
    /// to the same request are routed by their 5-tuple).
    pub(super) fn take(&mut self, id: &TransactionId) -> Option<MuxAgentId> {
        self.map.remove(id.as_bytes()).map(|e| e.agent)
    }

    /// The agent that sent request `id`, if remembered, without forgetting it.
    pub(super) fn get(&self, id: &TransactionId) -> Option<MuxAgentId> {
        self.map.get(id.as_bytes()).map(|e| e.agent)
    }

    /// Forgets the entries whose expiry has come.
    pub(super) fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|&(t, _)| t <= now) {
            self.pop_oldest();
        }
    }

    /// Pops the oldest queued id; true if it still had its entry (which goes too).
    fn pop_oldest(&mut self) -> bool {
        let Some((expiry, id)) = self.order.pop_front() else {
            return false;
        };
        match self.map.get(&id) {
            Some(e) if e.expiry == expiry => {
                self.map.remove(&id);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(port: u16) -> Tuple {
        Tuple::new(
            TransportType::Udp,
            "192.0.2.1:3478".parse().expect("an address"),
            SocketAddr::new("198.51.100.1".parse().expect("an IP"), port),
        )
    }

    #[test]
    fn tuples_are_capped_per_slot_least_recently_used_first_and_in_all() {
        let mut t = TupleTable::default();
        t.reserve_slot(2);
        assert_eq!(t.learn(0, tuple(1), 2, 4), Learned::New { evicted: false });
        assert_eq!(t.learn(0, tuple(2), 2, 4), Learned::New { evicted: false });
        // Using tuple 1 again makes tuple 2 the least recently used.
        assert_eq!(t.learn(0, tuple(1), 2, 4), Learned::Known);
        assert_eq!(t.learn(0, tuple(3), 2, 4), Learned::New { evicted: true });
        assert_eq!(t.get(&tuple(2)), None);
        assert_eq!(t.of_slot(0), &[tuple(1), tuple(3)]);
        // Another slot takes tuple 3 over.
        assert_eq!(
            t.learn(1, tuple(3), 2, 4),
            Learned::Moved { evicted: false }
        );
        assert_eq!(t.of_slot(0), &[tuple(1)]);
        assert_eq!(t.learn(1, tuple(4), 2, 4), Learned::New { evicted: false });
        assert_eq!(t.learn(2, tuple(5), 2, 4), Learned::New { evicted: false });
        assert_eq!(t.len(), 4);
        assert_eq!(t.learn(2, tuple(6), 2, 4), Learned::Refused);
        assert_eq!(t.forget_slot(1), 2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&tuple(3)), None);
        assert_eq!(t.get(&tuple(1)), Some(0));
    }

    #[test]
    fn transactions_expire_and_are_capped_oldest_first() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let life = Duration::from_secs(10);
        let agent = MuxAgentId {
            index: 0,
            generation: 0,
        };
        let id = |n: u8| TransactionId([n; 12]);
        let mut t = TxnTable::default();
        assert_eq!(t.record(t0, agent, id(1), life, 2), 0);
        assert_eq!(t.record(t0, agent, id(1), life, 2), 0, "a retransmission");
        assert_eq!(
            t.record(t0 + Duration::from_secs(1), agent, id(2), life, 2),
            0
        );
        assert_eq!(
            t.record(t0 + Duration::from_secs(2), agent, id(3), life, 2),
            1
        );
        assert_eq!(t.get(&id(1)), None, "the oldest went");
        assert_eq!(t.take(&id(2)), Some(agent));
        assert_eq!(t.take(&id(2)), None, "taken once");
        t.expire(t0 + Duration::from_secs(12));
        assert_eq!(t.len(), 0);
        assert!(t.order.is_empty());
    }
}
