//! The transactions the mux's agents have in flight ([`TxnTable`]), the owner of its
//! bounds. (The learned 5-tuples are in [`super::tuples`], the ufrags in
//! [`super::ufrags`].)
//!
//! Each transaction is stored once, in a slab entry whose links make a list in expiry
//! order, so an answered transaction leaves at once and the table holds only live ones;
//! the hash index holds slab positions. Its hasher is SipHash with fixed keys: the
//! mux stays deterministic (no OS randomness, DESIGN.md), and flooding is no concern,
//! since only what an agent sends, never what arrives, adds entries; a look-up of an id
//! chosen by a peer costs one probe sequence whatever the id.

use std::hash::{DefaultHasher, Hasher};
use std::time::{Duration, Instant};

use hashbrown::HashTable;

use super::MuxAgentId;
use super::slab::{Link, NIL, Slab};
use crate::stun::TransactionId;

/// A transaction in flight: its id, who sent it, and until when it is remembered. (Its
/// neighbours in expiry order are its slab links.)
#[derive(Debug, Clone, Copy)]
struct TxnEntry {
    id: [u8; 12],
    agent: MuxAgentId,
    expiry: Instant,
}

/// Transaction id -> the agent that sent the request, for routing the response
/// (RFC 8489 §6.3.1: a response carries its request's transaction id). Entries go at the
/// first response, at their expiry, or, when the table is full, oldest first.
#[derive(Debug)]
pub(super) struct TxnTable {
    /// The transactions, linked in expiry order.
    entries: Slab<TxnEntry, NIL>,
    /// Positions, hashed by their entry's id.
    index: HashTable<u32>,
    /// The entry that expires first, or [`NIL`].
    head: u32,
    /// The entry that expires last, or [`NIL`].
    tail: u32,
}

impl Default for TxnTable {
    fn default() -> Self {
        Self {
            entries: Slab::default(),
            index: HashTable::new(),
            head: NIL,
            tail: NIL,
        }
    }
}

impl TxnTable {
    /// The number of transactions remembered.
    pub(super) fn len(&self) -> usize {
        self.index.len()
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
        let id = *id.as_bytes();
        if cap == 0 || self.find(&id).is_some() {
            return 0;
        }
        self.expire(now);
        let mut evicted = 0;
        while self.len() >= cap {
            self.remove(self.head);
            evicted += 1;
        }
        let at = self.entries.alloc(TxnEntry {
            id,
            agent,
            expiry: now + lifetime,
        });
        self.link_in_order(at);
        let entries = &self.entries;
        self.index
            .insert_unique(hash(&id), at, |&p| hash(&entries.entry(p).id));
        evicted
    }

    /// The agent that sent request `id`, if remembered: the entry goes (later responses
    /// to the same request are routed by their 5-tuple).
    pub(super) fn take(&mut self, id: &TransactionId) -> Option<MuxAgentId> {
        let at = self.find(id.as_bytes())?;
        let agent = self.entries.entry(at).agent;
        self.remove(at);
        Some(agent)
    }

    /// The agent that sent request `id`, if remembered, without forgetting it.
    pub(super) fn get(&self, id: &TransactionId) -> Option<MuxAgentId> {
        self.find(id.as_bytes())
            .map(|at| self.entries.entry(at).agent)
    }

    /// Forgets the entries whose expiry has come.
    pub(super) fn expire(&mut self, now: Instant) {
        while self.head != NIL && self.entries.entry(self.head).expiry <= now {
            self.remove(self.head);
        }
    }

    /// The position of transaction `id`.
    fn find(&self, id: &[u8; 12]) -> Option<u32> {
        self.index
            .find(hash(id), |&p| self.entries.entry(p).id == *id)
            .copied()
    }

    /// Puts `at` in expiry order: last, unless `now` went back (then walking back from
    /// the last to its place).
    fn link_in_order(&mut self, at: u32) {
        let expiry = self.entries.entry(at).expiry;
        let mut prev = self.tail;
        while prev != NIL && self.entries.entry(prev).expiry > expiry {
            prev = self.entries.link(prev).prev;
        }
        let next = match prev {
            NIL => self.head,
            p => self.entries.link(p).next,
        };
        *self.entries.link_mut(at) = Link { prev, next };
        match prev {
            NIL => self.head = at,
            p => self.entries.link_mut(p).next = at,
        }
        match next {
            NIL => self.tail = at,
            n => self.entries.link_mut(n).prev = at,
        }
    }

    /// Removes the entry at `at` from the index and the expiry order, and frees its
    /// position.
    fn remove(&mut self, at: u32) {
        let id = self.entries.entry(at).id;
        if let Ok(found) = self.index.find_entry(hash(&id), |&p| p == at) {
            found.remove();
        } else {
            debug_assert!(false, "every live entry is indexed");
        }
        let Link { prev, next } = self.entries.link(at);
        match prev {
            NIL => self.head = next,
            p => self.entries.link_mut(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.entries.link_mut(n).prev = prev,
        }
        self.entries.release(at);
    }

    /// The ids in expiry order, first to expire first.
    #[cfg(test)]
    fn order(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = self.head;
        while at != NIL {
            out.push(self.entries.entry(at).id[0]);
            at = self.entries.link(at).next;
        }
        out
    }
}

fn hash(id: &[u8; 12]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(id);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(index: u32) -> MuxAgentId {
        MuxAgentId {
            index,
            generation: 0,
        }
    }

    fn id(n: u8) -> TransactionId {
        TransactionId([n; 12])
    }

    fn t0() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    #[test]
    fn an_entry_and_its_links_are_small() {
        // The id, the agent, the expiry (16 bytes on a 64-bit target) and the two links.
        assert!(std::mem::size_of::<TxnEntry>() + std::mem::size_of::<Link>() <= 48);
    }

    #[test]
    fn transactions_expire_and_are_capped_oldest_first() {
        let t0 = t0();
        let life = Duration::from_secs(10);
        let mut t = TxnTable::default();
        assert_eq!(t.record(t0, agent(0), id(1), life, 2), 0);
        assert_eq!(
            t.record(t0, agent(0), id(1), life, 2),
            0,
            "a retransmission"
        );
        assert_eq!(
            t.record(t0 + Duration::from_secs(1), agent(0), id(2), life, 2),
            0
        );
        assert_eq!(
            t.record(t0 + Duration::from_secs(2), agent(0), id(3), life, 2),
            1
        );
        assert_eq!(t.get(&id(1)), None, "the oldest went");
        assert_eq!(t.take(&id(2)), Some(agent(0)));
        assert_eq!(t.take(&id(2)), None, "taken once");
        t.expire(t0 + Duration::from_secs(12));
        assert_eq!(t.len(), 0);
        assert_eq!(t.order(), Vec::<u8>::new());
    }

    #[test]
    fn an_answered_transaction_leaves_at_once() {
        let t0 = t0();
        let life = Duration::from_secs(10);
        let mut t = TxnTable::default();
        for n in 1..=4 {
            t.record(
                t0 + Duration::from_secs(n.into()),
                agent(n.into()),
                id(n),
                life,
                3,
            );
        }
        assert_eq!(t.order(), [2, 3, 4]);
        assert_eq!(t.take(&id(3)), Some(agent(3)));
        assert_eq!(t.order(), [2, 4]);
        // Room for one more without evicting: the answered one no longer counts.
        assert_eq!(
            t.record(t0 + Duration::from_secs(5), agent(5), id(5), life, 3),
            0
        );
        assert_eq!(t.order(), [2, 4, 5]);
        assert_eq!(t.entries.len(), 3, "positions are reused");
        t.expire(t0 + Duration::from_secs(14));
        assert_eq!(t.order(), [5]);
        assert_eq!(t.get(&id(5)), Some(agent(5)));
        assert_eq!(t.get(&id(4)), None);
    }

    #[test]
    fn an_earlier_expiry_is_put_in_its_place() {
        let t0 = t0();
        let life = Duration::from_secs(10);
        let mut t = TxnTable::default();
        t.record(t0 + Duration::from_secs(5), agent(0), id(1), life, 10);
        t.record(t0 + Duration::from_secs(7), agent(0), id(2), life, 10);
        // A caller's clock that went back.
        t.record(t0 + Duration::from_secs(6), agent(0), id(3), life, 10);
        t.record(t0, agent(0), id(4), life, 10);
        assert_eq!(t.order(), [4, 1, 3, 2]);
        t.expire(t0 + Duration::from_secs(16));
        assert_eq!(t.order(), [2]);
        assert_eq!(t.len(), 1);
    }
}
