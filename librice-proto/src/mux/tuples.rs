//! The mux's learned 5-tuples ([`TupleTable`]): 5-tuple -> agent, each agent's tuples in
//! least-recently-used order, under a per-agent and a total bound.
//!
//! The table is laid out for a look-up per packet at 10,000 agents to cost about what it
//! costs at 10: its working set must stay in a core's cache. So each tuple is stored once,
//! in a slab of 32-byte entries (its key and its agent's full id, so that routing reads
//! nothing else), and the hash index holds only slab positions (4 bytes and a control byte
//! a bucket). The local side of a tuple, one of the few addresses the mux listens on, is
//! interned in a short list (at most [`MAX_LOCAL_ADDRESSES`]), so that a key is 24 bytes:
//! the local address's number, the transport and the remote address. Each agent's LRU
//! order is a doubly linked list through the slab (links kept apart from the entries, as
//! routing never reads them), so an agent costs 12 bytes of list head whatever it holds.
//!
//! The hasher is SipHash with fixed keys: the mux stays deterministic (no OS randomness,
//! DESIGN.md), and flooding is no concern, since only what an agent sends, never what
//! arrives, adds entries; a look-up of a key chosen by a peer costs one probe sequence.

use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;

use hashbrown::HashTable;

use super::MuxAgentId;
use crate::TransportType;

/// The most local addresses the tuples of a [`TupleTable`] may have at once. A mux
/// listens on a handful; a tuple on one more is not learned (see [`Learned::NoLocalRoom`]).
pub(super) const MAX_LOCAL_ADDRESSES: usize = 64;

/// The end of a list (no slab position).
const NIL: u32 = u32::MAX;

/// A 5-tuple as the mux sees it: the transport, the local socket (one of the mux's shared
/// addresses) and the remote address. A value to pass around; the table stores it packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tuple {
    transport: TransportType,
    local: SocketAddr,
    remote: SocketAddr,
}

impl Tuple {
    /// The 5-tuple of a packet between `local` (the mux's side) and `remote`.
    pub(super) fn new(transport: TransportType, local: SocketAddr, remote: SocketAddr) -> Self {
        Self {
            transport,
            local,
            remote,
        }
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
    /// The tuple's local address would be one more than [`MAX_LOCAL_ADDRESSES`]: not
    /// learned.
    NoLocalRoom,
}

/// A tuple packed into three words: the remote IP (IPv4 as IPv4-mapped IPv6) in two, then
/// its IPv6 scope, its port, the local address's number and the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key([u64; 3]);

impl Key {
    fn new(local: u8, transport: TransportType, remote: SocketAddr) -> Self {
        let (ip, scope) = match remote {
            SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), 0),
            SocketAddr::V6(a) => (*a.ip(), a.scope_id()),
        };
        let ip = u128::from_be_bytes(ip.octets());
        let transport = match transport {
            TransportType::Udp => 0u64,
            TransportType::Tcp => 1,
        };
        let tail = (u64::from(scope) << 32)
            | (u64::from(remote.port()) << 16)
            | (u64::from(local) << 8)
            | transport;
        Self([(ip >> 64) as u64, ip as u64, tail])
    }

    /// The number of the local address.
    fn local(&self) -> u8 {
        (self.0[2] >> 8) as u8
    }

    fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for word in self.0 {
            h.write_u64(word);
        }
        h.finish()
    }
}

/// A tuple in the slab: its key and the agent it leads to. 32 bytes, aligned so that one
/// never straddles two cache lines.
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Entry {
    key: Key,
    agent: MuxAgentId,
}

/// A slab entry's neighbours in its agent's LRU list (for a free entry, `next` is the
/// next free one).
#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

/// One agent slot's tuples: a list through the slab, least recently used at `head`.
#[derive(Debug, Clone, Copy)]
struct SlotList {
    head: u32,
    tail: u32,
    len: u32,
}

impl SlotList {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// A local address and how many tuples have it (0: its number is free for another).
#[derive(Debug, Clone, Copy)]
struct Local {
    addr: SocketAddr,
    tuples: u32,
}

/// Learned 5-tuple -> agent, with each agent slot's tuples in least-recently-used order.
/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct TupleTable {
    /// The local addresses, by number (at most [`MAX_LOCAL_ADDRESSES`]).
    locals: Vec<Local>,
    /// The tuples; positions on the free list have stale contents.
    entries: Vec<Entry>,
    /// The LRU (or free-list) links of `entries`, position for position.
    links: Vec<Link>,
    /// The first free slab position, or [`NIL`].
    free: u32,
    /// Slab positions, hashed by their entry's key.
    index: HashTable<u32>,
    /// Slot -> its tuples.
    slots: Vec<SlotList>,
}

impl Default for TupleTable {
    fn default() -> Self {
        Self {
            locals: Vec::new(),
            entries: Vec::new(),
            links: Vec::new(),
            free: NIL,
            index: HashTable::new(),
            slots: Vec::new(),
        }
    }
}

impl TupleTable {
    /// Makes room for slot `slot`.
    pub(super) fn reserve_slot(&mut self, slot: u32) {
        let needed = slot as usize + 1;
        if self.slots.len() < needed {
            self.slots.resize(needed, SlotList::EMPTY);
        }
    }

    /// The agent a tuple leads to. Reads the local addresses, the index and one entry.
    pub(super) fn get(&self, tuple: &Tuple) -> Option<MuxAgentId> {
        let key = self.key(tuple)?;
        let at = self.find(&key)?;
        Some(self.entries[at as usize].agent)
    }

    /// The number of tuples learned.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// The number of tuples of `slot`.
    pub(super) fn slot_len(&self, slot: u32) -> usize {
        self.slots.get(slot as usize).map_or(0, |l| l.len as usize)
    }

    /// Gives `tuple` to agent `agent`, keeping at most `per_slot_cap` tuples for its slot
    /// (its least recently used one goes) and at most `total_cap` in all (a new tuple is
    /// refused when full). A tuple another slot had moves to this one: the agent that sent
    /// on it last is the one its peer now talks to. The slot must have been reserved.
    pub(super) fn learn(
        &mut self,
        agent: MuxAgentId,
        tuple: &Tuple,
        per_slot_cap: usize,
        total_cap: usize,
    ) -> Learned {
        let per_slot_cap = per_slot_cap.max(1);
        let slot = agent.index;
        if let Some(key) = self.key(tuple)
            && let Some(at) = self.find(&key)
        {
            let previous = self.entries[at as usize].agent.index;
            self.unlink(previous, at);
            let evicted = previous != slot && self.make_room(slot, per_slot_cap);
            self.entries[at as usize].agent = agent;
            self.push_back(slot, at);
            return if previous == slot {
                Learned::Known
            } else {
                Learned::Moved { evicted }
            };
        }
        if self.len() >= total_cap {
            return Learned::Refused;
        }
        let Some(local) = self.intern(tuple.local) else {
            return Learned::NoLocalRoom;
        };
        let evicted = self.make_room(slot, per_slot_cap);
        // Counted before the entry exists: the eviction above may have freed the number.
        self.locals[local as usize].tuples += 1;
        let key = Key::new(local, tuple.transport, tuple.remote);
        let at = self.alloc(Entry { key, agent });
        let entries = &self.entries;
        self.index
            .insert_unique(key.hash(), at, |&i| entries[i as usize].key.hash());
        self.push_back(slot, at);
        Learned::New { evicted }
    }

    /// Forgets one tuple; returns the agent it led to.
    pub(super) fn forget(&mut self, tuple: &Tuple) -> Option<MuxAgentId> {
        let key = self.key(tuple)?;
        let at = self.find(&key)?;
        let agent = self.entries[at as usize].agent;
        self.remove(at);
        Some(agent)
    }

    /// Forgets every tuple of `slot`; returns how many.
    pub(super) fn forget_slot(&mut self, slot: u32) -> usize {
        let Some(list) = self.slots.get(slot as usize).copied() else {
            return 0;
        };
        let mut at = list.head;
        while at != NIL {
            let next = self.links[at as usize].next;
            self.remove(at);
            at = next;
        }
        list.len as usize
    }

    /// The key of `tuple`, if its local address has a number.
    fn key(&self, tuple: &Tuple) -> Option<Key> {
        let local = self.locals.iter().position(|l| l.addr == tuple.local)?;
        // At most MAX_LOCAL_ADDRESSES (64) numbers: fits a u8.
        Some(Key::new(local as u8, tuple.transport, tuple.remote))
    }

    /// The slab position of `key`.
    fn find(&self, key: &Key) -> Option<u32> {
        self.index
            .find(key.hash(), |&i| self.entries[i as usize].key == *key)
            .copied()
    }

    /// The number of local address `addr`, given one if it has none and there is room.
    fn intern(&mut self, addr: SocketAddr) -> Option<u8> {
        let found = self
            .locals
            .iter()
            .position(|l| l.addr == addr)
            .or_else(|| self.locals.iter().position(|l| l.tuples == 0));
        let number = match found {
            Some(n) => n,
            None if self.locals.len() < MAX_LOCAL_ADDRESSES => {
                self.locals.push(Local { addr, tuples: 0 });
                self.locals.len() - 1
            }
            None => return None,
        };
        // A free number is taken over: no key has it.
        self.locals[number].addr = addr;
        Some(number as u8)
    }

    /// Evicts the least recently used tuple of `slot` if it has `cap` already.
    fn make_room(&mut self, slot: u32, cap: usize) -> bool {
        let list = self.slots[slot as usize];
        if (list.len as usize) < cap {
            return false;
        }
        self.remove(list.head);
        true
    }

    /// A slab position holding `entry`, reusing a free one first.
    fn alloc(&mut self, entry: Entry) -> u32 {
        if self.free != NIL {
            let at = self.free;
            self.free = self.links[at as usize].next;
            self.entries[at as usize] = entry;
            return at;
        }
        let at = u32::try_from(self.entries.len())
            .ok()
            .filter(|&at| at != NIL)
            .expect("fewer tuples than u32::MAX: each agent holds a bounded number");
        self.entries.push(entry);
        self.links.push(Link {
            prev: NIL,
            next: NIL,
        });
        at
    }

    /// Removes the tuple at `at` from the index, its slot's list and its local address's
    /// count, and frees its position.
    fn remove(&mut self, at: u32) {
        let entry = self.entries[at as usize];
        if let Ok(found) = self.index.find_entry(entry.key.hash(), |&i| i == at) {
            found.remove();
        } else {
            debug_assert!(false, "every live slab entry is indexed");
        }
        self.unlink(entry.agent.index, at);
        self.locals[entry.key.local() as usize].tuples -= 1;
        self.links[at as usize] = Link {
            prev: NIL,
            next: self.free,
        };
        self.free = at;
    }

    /// Takes `at` out of `slot`'s list.
    fn unlink(&mut self, slot: u32, at: u32) {
        let Link { prev, next } = self.links[at as usize];
        let list = &mut self.slots[slot as usize];
        match prev {
            NIL => list.head = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => list.tail = prev,
            n => self.links[n as usize].prev = prev,
        }
        list.len -= 1;
    }

    /// Puts `at` at the most recently used end of `slot`'s list.
    fn push_back(&mut self, slot: u32, at: u32) {
        let list = &mut self.slots[slot as usize];
        self.links[at as usize] = Link {
            prev: list.tail,
            next: NIL,
        };
        match list.tail {
            NIL => list.head = at,
            t => self.links[t as usize].next = at,
        }
        list.tail = at;
        list.len += 1;
    }

    /// The remote addresses of `slot`'s tuples, least recently used first.
    #[cfg(test)]
    fn remotes_of(&self, slot: u32) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        let mut at = self.slots[slot as usize].head;
        while at != NIL {
            let [hi, lo, tail] = self.entries[at as usize].key.0;
            let ip = std::net::Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
            let port = (tail >> 16) as u16;
            let addr = match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::new(v4.into(), port),
                None => SocketAddr::new(ip.into(), port),
            };
            out.push(addr);
            at = self.links[at as usize].next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "192.0.2.1:3478".parse().expect("an address")
    }

    fn remote(port: u16) -> SocketAddr {
        SocketAddr::new("198.51.100.1".parse().expect("an IP"), port)
    }

    fn tuple(port: u16) -> Tuple {
        Tuple::new(TransportType::Udp, local(), remote(port))
    }

    fn agent(index: u32) -> MuxAgentId {
        MuxAgentId {
            index,
            generation: 7 + index,
        }
    }

    fn table(slots: u32) -> TupleTable {
        let mut t = TupleTable::default();
        t.reserve_slot(slots - 1);
        t
    }

    #[test]
    fn entries_are_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<SlotList>(), 12);
    }

    #[test]
    fn a_slot_keeps_its_most_recently_used_tuples() {
        let mut t = table(1);
        assert_eq!(
            t.learn(agent(0), &tuple(1), 3, 10),
            Learned::New { evicted: false }
        );
        assert_eq!(
            t.learn(agent(0), &tuple(2), 3, 10),
            Learned::New { evicted: false }
        );
        assert_eq!(
            t.learn(agent(0), &tuple(3), 3, 10),
            Learned::New { evicted: false }
        );
        // Using 1 again makes 2 the least recently used, then 3.
        assert_eq!(t.learn(agent(0), &tuple(1), 3, 10), Learned::Known);
        assert_eq!(t.remotes_of(0), [remote(2), remote(3), remote(1)]);
        assert_eq!(
            t.learn(agent(0), &tuple(4), 3, 10),
            Learned::New { evicted: true }
        );
        assert_eq!(t.get(&tuple(2)), None);
        assert_eq!(
            t.learn(agent(0), &tuple(5), 3, 10),
            Learned::New { evicted: true }
        );
        assert_eq!(t.get(&tuple(3)), None);
        assert_eq!(t.remotes_of(0), [remote(1), remote(4), remote(5)]);
        assert_eq!(t.get(&tuple(1)), Some(agent(0)));
        assert_eq!(t.len(), 3);
        assert_eq!(t.slot_len(0), 3);
    }

    #[test]
    fn a_tuple_moves_to_the_agent_that_sent_on_it_last() {
        let mut t = table(2);
        t.learn(agent(0), &tuple(1), 2, 10);
        t.learn(agent(0), &tuple(2), 2, 10);
        t.learn(agent(1), &tuple(3), 2, 10);
        t.learn(agent(1), &tuple(4), 2, 10);
        // Slot 1 is full: its least recently used (3) goes for the tuple it takes over.
        assert_eq!(
            t.learn(agent(1), &tuple(1), 2, 10),
            Learned::Moved { evicted: true }
        );
        assert_eq!(t.get(&tuple(1)), Some(agent(1)));
        assert_eq!(t.get(&tuple(3)), None);
        assert_eq!(t.remotes_of(0), [remote(2)]);
        assert_eq!(t.remotes_of(1), [remote(4), remote(1)]);
        assert_eq!(
            t.learn(agent(0), &tuple(4), 2, 10),
            Learned::Moved { evicted: false }
        );
        assert_eq!(t.remotes_of(0), [remote(2), remote(4)]);
        assert_eq!(t.remotes_of(1), [remote(1)]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn the_id_comes_from_the_learning_agent() {
        let mut t = table(1);
        let old = MuxAgentId {
            index: 0,
            generation: 1,
        };
        let new = MuxAgentId {
            index: 0,
            generation: 2,
        };
        t.learn(old, &tuple(1), 2, 10);
        assert_eq!(t.forget_slot(0), 1);
        t.learn(new, &tuple(1), 2, 10);
        assert_eq!(t.get(&tuple(1)), Some(new));
    }

    #[test]
    fn forgetting_a_tuple_and_a_slot() {
        let mut t = table(2);
        for port in 1..=3 {
            t.learn(agent(0), &tuple(port), 8, 10);
        }
        t.learn(agent(1), &tuple(9), 8, 10);
        assert_eq!(t.forget(&tuple(2)), Some(agent(0)));
        assert_eq!(t.forget(&tuple(2)), None);
        assert_eq!(t.remotes_of(0), [remote(1), remote(3)]);
        assert_eq!(t.forget_slot(0), 2);
        assert_eq!(t.forget_slot(0), 0);
        assert_eq!(t.get(&tuple(1)), None);
        assert_eq!(t.get(&tuple(3)), None);
        assert_eq!(t.get(&tuple(9)), Some(agent(1)));
        assert_eq!(t.len(), 1);
        assert_eq!(t.slot_len(0), 0);
        assert_eq!(t.forget_slot(5), 0, "a slot never reserved");
    }

    #[test]
    fn new_tuples_are_refused_when_the_table_is_full() {
        let mut t = table(2);
        t.learn(agent(0), &tuple(1), 8, 2);
        t.learn(agent(1), &tuple(2), 8, 2);
        assert_eq!(t.learn(agent(1), &tuple(3), 8, 2), Learned::Refused);
        assert_eq!(t.get(&tuple(3)), None);
        // Known and moved tuples are not new.
        assert_eq!(t.learn(agent(1), &tuple(2), 8, 2), Learned::Known);
        assert_eq!(
            t.learn(agent(1), &tuple(1), 8, 2),
            Learned::Moved { evicted: false }
        );
        t.forget(&tuple(2));
        assert_eq!(
            t.learn(agent(1), &tuple(3), 8, 2),
            Learned::New { evicted: false }
        );
    }

    #[test]
    fn local_addresses_are_bounded_and_their_numbers_reused() {
        let mut t = table(1);
        let on = |i: u16, port: u16| {
            Tuple::new(
                TransportType::Udp,
                SocketAddr::new("192.0.2.1".parse().expect("an IP"), 1000 + i),
                remote(port),
            )
        };
        let max = MAX_LOCAL_ADDRESSES as u16;
        for i in 0..max {
            assert_eq!(
                t.learn(agent(0), &on(i, 1), 1000, 1000),
                Learned::New { evicted: false }
            );
        }
        assert_eq!(
            t.learn(agent(0), &on(max, 1), 1000, 1000),
            Learned::NoLocalRoom
        );
        assert_eq!(t.get(&on(max, 1)), None);
        // Another tuple on a known local address is fine.
        assert_eq!(
            t.learn(agent(0), &on(3, 2), 1000, 1000),
            Learned::New { evicted: false }
        );
        // The same remote on two local addresses: two tuples.
        assert_eq!(t.get(&on(3, 1)), Some(agent(0)));
        assert_eq!(t.get(&on(4, 2)), None);
        // Address 5 loses its only tuple: its number goes to the next new address.
        t.forget(&on(5, 1));
        assert_eq!(
            t.learn(agent(0), &on(max, 1), 1000, 1000),
            Learned::New { evicted: false }
        );
        assert_eq!(t.locals.len(), MAX_LOCAL_ADDRESSES);
        assert_eq!(t.get(&on(max, 1)), Some(agent(0)));
        assert_eq!(t.get(&on(5, 1)), None);
        // A number freed by an eviction goes to the next new address.
        let mut small = table(1);
        small.learn(agent(0), &on(0, 1), 1, 10);
        assert_eq!(
            small.learn(agent(0), &on(1, 1), 1, 10),
            Learned::New { evicted: true }
        );
        assert_eq!(small.get(&on(1, 1)), Some(agent(0)));
        assert_eq!(small.get(&on(0, 1)), None);
        assert_eq!(
            small.learn(agent(0), &on(2, 1), 1, 10),
            Learned::New { evicted: true }
        );
        assert_eq!(small.locals.len(), 2, "number 0 was free again");
        assert_eq!(small.get(&on(2, 1)), Some(agent(0)));
        assert_eq!(small.get(&on(1, 1)), None);
    }

    #[test]
    fn transports_and_address_families_are_apart() {
        let mut t = table(2);
        let udp = Tuple::new(TransportType::Udp, local(), remote(1));
        let tcp = Tuple::new(TransportType::Tcp, local(), remote(1));
        let v6 = Tuple::new(
            TransportType::Udp,
            local(),
            "[::ffff:198.51.100.2]:1".parse().expect("an address"),
        );
        let scoped = |scope| {
            Tuple::new(
                TransportType::Udp,
                local(),
                SocketAddr::V6(std::net::SocketAddrV6::new(
                    "fe80::1".parse().expect("an IP"),
                    1,
                    0,
                    scope,
                )),
            )
        };
        t.learn(agent(0), &udp, 8, 10);
        t.learn(agent(1), &tcp, 8, 10);
        t.learn(agent(1), &scoped(2), 8, 10);
        assert_eq!(t.get(&udp), Some(agent(0)));
        assert_eq!(t.get(&tcp), Some(agent(1)));
        assert_eq!(t.get(&v6), None);
        assert_eq!(t.get(&scoped(2)), Some(agent(1)));
        assert_eq!(t.get(&scoped(3)), None);
    }

    #[test]
    fn freed_slab_entries_are_reused() {
        let mut t = table(4);
        for slot in 0..4 {
            t.learn(agent(slot), &tuple(slot as u16), 8, 100);
        }
        assert_eq!(t.entries.len(), 4);
        t.forget_slot(1);
        t.forget(&tuple(3));
        t.learn(agent(1), &tuple(10), 8, 100);
        t.learn(agent(1), &tuple(11), 8, 100);
        assert_eq!(t.entries.len(), 4, "no growth while positions are free");
        t.learn(agent(1), &tuple(12), 8, 100);
        assert_eq!(t.entries.len(), 5);
        assert_eq!(t.remotes_of(1), [remote(10), remote(11), remote(12)]);
        assert_eq!(t.get(&tuple(0)), Some(agent(0)));
        assert_eq!(t.get(&tuple(2)), Some(agent(2)));
        assert_eq!(t.get(&tuple(11)), Some(agent(1)));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn many_slots_churning_stay_consistent() {
        let mut t = table(50);
        let mut model: std::collections::HashMap<u16, u32> = Default::default();
        let mut x = 12345u32;
        for _ in 0..5000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let slot = (x >> 8) % 50;
            let port = ((x >> 16) % 300) as u16;
            if x.is_multiple_of(7) {
                t.forget_slot(slot);
                model.retain(|_, s| *s != slot);
            } else {
                t.learn(agent(slot), &tuple(port), 3, 10_000);
                model.insert(port, slot);
                // The model's per-slot cap: drop the ones the table evicted.
                let kept: Vec<_> = t.remotes_of(slot).iter().map(|a| a.port()).collect();
                model.retain(|p, s| *s != slot || kept.contains(p));
            }
        }
        assert_eq!(t.len(), model.len());
        for port in 0..300 {
            assert_eq!(t.get(&tuple(port)), model.get(&port).map(|&s| agent(s)));
        }
        let total: usize = (0..50).map(|s| t.slot_len(s)).sum();
        assert_eq!(total, model.len());
    }
}
