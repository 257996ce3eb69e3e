//! The transactions the mux's agents have in flight ([`TxnTable`]), the owner of its
//! bounds. (The learned 5-tuples are in [`super::tuples`], the ufrags in
//! [`super::ufrags`].)
//!
//! A hash map with a fixed-key hasher: the mux stays deterministic (no OS randomness,
//! DESIGN.md), and flooding is no concern for it, since only what an agent sends, never
//! what arrives, adds entries; look-ups of keys chosen by a peer cost one probe sequence
//! whatever the key.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::time::{Duration, Instant};

use super::MuxAgentId;
use crate::stun::TransactionId;

/// The hasher of the routing tables: SipHash with fixed keys (see the module docs).
pub(super) type FixedState = BuildHasherDefault<DefaultHasher>;

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
