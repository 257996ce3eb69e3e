//! The mux's learned 5-tuples ([`TupleTable`]): 5-tuple -> agent, each agent's tuples in
//! least-recently-used order, under a per-agent and a total bound.
//!
//! The table is laid out for a look-up per packet at 10,000 agents to cost about what it
//! costs at 10: its working set must stay in a core's cache. So each tuple is stored once,
//! in a slab entry holding its key and its agent's full id (so that routing reads nothing
//! else), and the hash index holds only slab positions (4 bytes and a control byte a
//! bucket). The local side of a tuple, one of the few addresses the mux listens on, is
//! interned in a short list (at most [`MAX_LOCAL_ADDRESSES`]), so that a key is the local
//! address's number, the transport and the remote address: 8 bytes for an IPv4 remote
//! (16-byte entries, in a slab of their own), 24 for an IPv6 one (32-byte entries). Each
//! agent's LRU order is a circular doubly linked list through the slabs (links kept apart
//! from the entries, as routing never reads them), so an agent costs 8 bytes of list head
//! whatever it holds.
//!
//! The hasher is SipHash with fixed keys: the mux stays deterministic (no OS randomness,
//! DESIGN.md), and flooding is no concern, since only what an agent sends, never what
//! arrives, adds entries; a look-up of a key chosen by a peer costs one probe sequence.

use std::hash::{DefaultHasher, Hasher};
use std::net::SocketAddr;

use hashbrown::HashTable;

use super::MuxAgentId;
use super::slab::{Link, NIL, Slab};
use crate::TransportType;

/// The most local addresses (a UDP socket's, a TCP listener's) the 5-tuples of a mux may
/// have at once. A mux serves on a handful; a tuple on one more is not learned, counted in
/// [`MuxStats::tuples_refused`](super::MuxStats::tuples_refused) and traced, and its
/// agent is then reached by checks only.
pub const MAX_LOCAL_ADDRESSES: usize = 64;

/// The bit of a position that says it is in the IPv6 slab.
const V6: u32 = 1 << 31;

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

/// A tuple packed into words: the remote address, its port, the local address's number
/// and the transport. An IPv4 remote (or an IPv4-mapped IPv6 one without scope, the same
/// address seen on a dual-stack socket) takes one word; an IPv6 remote three: its IP in
/// two, then its scope with the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    V4(u64),
    V6([u64; 3]),
}

impl Key {
    #[inline]
    /// Reads `remote` field by field (not copied whole: a packet's addresses were just
    /// written, and a wide load over narrower stores stalls).
    fn new(local: u8, transport: TransportType, remote: &SocketAddr) -> Self {
        let transport = match transport {
            TransportType::Udp => 0u64,
            TransportType::Tcp => 1,
        };
        let low = (u64::from(remote.port()) << 16) | (u64::from(local) << 8) | transport;
        let (ip, scope) = match remote {
            SocketAddr::V4(a) => return Self::V4((u64::from(a.ip().to_bits()) << 32) | low),
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(v4) if a.scope_id() == 0 => {
                    return Self::V4((u64::from(v4.to_bits()) << 32) | low);
                }
                _ => (a.ip().to_bits(), a.scope_id()),
            },
        };
        Self::V6([(ip >> 64) as u64, ip as u64, (u64::from(scope) << 32) | low])
    }

    fn hash(&self) -> u64 {
        match self {
            Self::V4(k) => hash4(*k),
            Self::V6(k) => hash6(k),
        }
    }
}

// Not inlined: inlined into a look-up, SipHash's write stays an outlined call.
#[inline(never)]
fn hash4(key: u64) -> u64 {
    let mut h = DefaultHasher::new();
    h.write_u64(key);
    h.finish()
}

// Not inlined: inlined into a look-up, SipHash's write stays an outlined call.
#[inline(never)]
fn hash6(key: &[u64; 3]) -> u64 {
    let mut h = DefaultHasher::new();
    for word in key {
        h.write_u64(*word);
    }
    h.finish()
}

/// The local address's number in a key's last word.
fn local_of(low: u64) -> u8 {
    (low >> 8) as u8
}

/// A tuple with an IPv4 remote in the slab, and the agent it leads to: 16 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry4 {
    key: u64,
    agent: MuxAgentId,
}

/// A tuple with an IPv6 remote in the slab, and the agent it leads to: 32 bytes, aligned
/// so that one never straddles two cache lines.
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
struct Entry6 {
    key: [u64; 3],
    agent: MuxAgentId,
}

/// What the table needs of a slab entry.
trait SlabEntry: Copy {
    fn agent(&self) -> MuxAgentId;
    fn set_agent(&mut self, agent: MuxAgentId);
    fn hash(&self) -> u64;
    fn local(&self) -> u8;
}

impl SlabEntry for Entry4 {
    fn agent(&self) -> MuxAgentId {
        self.agent
    }
    fn set_agent(&mut self, agent: MuxAgentId) {
        self.agent = agent;
    }
    fn hash(&self) -> u64 {
        hash4(self.key)
    }
    fn local(&self) -> u8 {
        local_of(self.key)
    }
}

impl SlabEntry for Entry6 {
    fn agent(&self) -> MuxAgentId {
        self.agent
    }
    fn set_agent(&mut self, agent: MuxAgentId) {
        self.agent = agent;
    }
    fn hash(&self) -> u64 {
        hash6(&self.key)
    }
    fn local(&self) -> u8 {
        local_of(self.key[2])
    }
}

/// One agent slot's tuples: a circular list through the slabs, least recently used at
/// `head` (the most recently used is its `prev`).
#[derive(Debug, Clone, Copy)]
struct SlotList {
    head: u32,
    len: u32,
}

impl SlotList {
    const EMPTY: Self = Self { head: NIL, len: 0 };
}

/// A local address and how many tuples have it (0: its number is free for another).
#[derive(Debug, Clone, Copy)]
struct Local {
    addr: SocketAddr,
    tuples: u32,
}

/// Learned 5-tuple -> agent, with each agent slot's tuples in least-recently-used order.
/// See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct TupleTable {
    /// The local addresses, by number (at most [`MAX_LOCAL_ADDRESSES`]).
    locals: Vec<Local>,
    /// The tuples with an IPv4 remote; their links (with `v6`'s) make the slots' lists.
    v4: Slab<Entry4, V6>,
    /// The tuples with an IPv6 remote.
    v6: Slab<Entry6, V6>,
    /// Positions: in the IPv4 slab, or with [`V6`] set, in the IPv6 one; hashed by their
    /// entry's key.
    index: HashTable<u32>,
    /// Slot -> its tuples.
    slots: Vec<SlotList>,
}

impl TupleTable {
    /// Makes room for slot `slot`.
    pub(super) fn reserve_slot(&mut self, slot: u32) {
        let needed = slot as usize + 1;
        if self.slots.len() < needed {
            self.slots.resize(needed, SlotList::EMPTY);
        }
    }

    /// The agent `tuple` leads to (the tests' form of [`Self::get_by`]).
    #[cfg(test)]
    fn get(&self, tuple: &Tuple) -> Option<MuxAgentId> {
        self.get_by(tuple.transport, &tuple.local, &tuple.remote)
    }

    /// The agent the tuple (`transport`, `local`, `remote`) leads to. Reads the local
    /// addresses, the index and one entry. Takes the parts where they are (a packet's
    /// addresses, just written) rather than a copy.
    #[inline]
    pub(super) fn get_by(
        &self,
        transport: TransportType,
        local: &SocketAddr,
        remote: &SocketAddr,
    ) -> Option<MuxAgentId> {
        let key = self.key_by(transport, local, remote)?;
        let at = self.find(&key)?;
        Some(self.agent(at))
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
            let previous = self.agent(at).index;
            self.unlink(previous, at);
            let evicted = previous != slot && self.make_room(slot, per_slot_cap);
            self.set_agent(at, agent);
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
        // Counted after the eviction, which may have taken the number's last tuple.
        self.locals[local as usize].tuples += 1;
        let key = Key::new(local, tuple.transport, &tuple.remote);
        let at = match key {
            Key::V4(key) => self.v4.alloc(Entry4 { key, agent }),
            Key::V6(key) => self.v6.alloc(Entry6 { key, agent }) | V6,
        };
        let (v4, v6) = (&self.v4, &self.v6);
        self.index
            .insert_unique(key.hash(), at, |&p| hash_at(v4, v6, p));
        self.push_back(slot, at);
        Learned::New { evicted }
    }

    /// Forgets one tuple; returns the agent it led to.
    pub(super) fn forget(&mut self, tuple: &Tuple) -> Option<MuxAgentId> {
        let key = self.key(tuple)?;
        let at = self.find(&key)?;
        let agent = self.agent(at);
        self.remove(at);
        Some(agent)
    }

    /// Forgets every tuple of `slot`; returns how many.
    pub(super) fn forget_slot(&mut self, slot: u32) -> usize {
        let Some(list) = self.slots.get(slot as usize).copied() else {
            return 0;
        };
        let mut at = list.head;
        for _ in 0..list.len {
            let next = self.link(at).next;
            self.remove(at);
            at = next;
        }
        list.len as usize
    }

    /// The key of `tuple`, if its local address has a number.
    #[inline]
    fn key(&self, tuple: &Tuple) -> Option<Key> {
        self.key_by(tuple.transport, &tuple.local, &tuple.remote)
    }

    // Always inlined: returned through memory, the key is written in pieces and read back
    // whole, and the load stalls (12 ns a look-up).
    #[inline(always)]
    fn key_by(
        &self,
        transport: TransportType,
        local: &SocketAddr,
        remote: &SocketAddr,
    ) -> Option<Key> {
        let local = self.locals.iter().position(|l| l.addr == *local)?;
        // At most MAX_LOCAL_ADDRESSES (64) numbers: fits a u8.
        Some(Key::new(local as u8, transport, remote))
    }

    /// The position of `key`.
    #[inline]
    fn find(&self, key: &Key) -> Option<u32> {
        let found = match key {
            Key::V4(key) => self.index.find(hash4(*key), |&p| {
                p & V6 == 0 && self.v4.entry(p).key == *key
            }),
            Key::V6(key) => self.index.find(hash6(key), |&p| {
                p & V6 != 0 && self.v6.entry(p & !V6).key == *key
            }),
        };
        found.copied()
    }

    #[inline]
    fn agent(&self, at: u32) -> MuxAgentId {
        match at & V6 {
            0 => self.v4.entry(at).agent(),
            _ => self.v6.entry(at & !V6).agent(),
        }
    }

    fn set_agent(&mut self, at: u32, agent: MuxAgentId) {
        match at & V6 {
            0 => self.v4.entry_mut(at).set_agent(agent),
            _ => self.v6.entry_mut(at & !V6).set_agent(agent),
        }
    }

    fn link(&self, at: u32) -> Link {
        match at & V6 {
            0 => self.v4.link(at),
            _ => self.v6.link(at & !V6),
        }
    }

    fn link_mut(&mut self, at: u32) -> &mut Link {
        match at & V6 {
            0 => self.v4.link_mut(at),
            _ => self.v6.link_mut(at & !V6),
        }
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

    /// Removes the tuple at `at` from the index, its slot's list and its local address's
    /// count, and frees its position.
    fn remove(&mut self, at: u32) {
        let (hash, agent, local) = match at & V6 {
            0 => {
                let e = *self.v4.entry(at);
                (e.hash(), e.agent(), e.local())
            }
            _ => {
                let e = *self.v6.entry(at & !V6);
                (e.hash(), e.agent(), e.local())
            }
        };
        if let Ok(found) = self.index.find_entry(hash, |&p| p == at) {
            found.remove();
        } else {
            debug_assert!(false, "every live slab entry is indexed");
        }
        self.unlink(agent.index, at);
        self.locals[local as usize].tuples -= 1;
        match at & V6 {
            0 => self.v4.release(at),
            _ => self.v6.release(at & !V6),
        }
    }

    /// Takes `at` out of `slot`'s list.
    fn unlink(&mut self, slot: u32, at: u32) {
        let Link { prev, next } = self.link(at);
        let list = &mut self.slots[slot as usize];
        list.len -= 1;
        if next == at {
            list.head = NIL;
            return;
        }
        if list.head == at {
            list.head = next;
        }
        self.link_mut(prev).next = next;
        self.link_mut(next).prev = prev;
    }

    /// Puts `at` at the most recently used end of `slot`'s list.
    fn push_back(&mut self, slot: u32, at: u32) {
        let list = &mut self.slots[slot as usize];
        list.len += 1;
        let head = list.head;
        if head == NIL {
            list.head = at;
            *self.link_mut(at) = Link { prev: at, next: at };
            return;
        }
        let tail = self.link(head).prev;
        *self.link_mut(at) = Link {
            prev: tail,
            next: head,
        };
        self.link_mut(tail).next = at;
        self.link_mut(head).prev = at;
    }

    /// The remote addresses of `slot`'s tuples, least recently used first.
    #[cfg(test)]
    fn remotes_of(&self, slot: u32) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        let list = self.slots[slot as usize];
        let mut at = list.head;
        for _ in 0..list.len {
            let addr = match at & V6 {
                0 => {
                    let key = self.v4.entry(at).key;
                    let ip = std::net::Ipv4Addr::from_bits((key >> 32) as u32);
                    SocketAddr::new(ip.into(), (key >> 16) as u16)
                }
                _ => {
                    let [hi, lo, low] = self.v6.entry(at & !V6).key;
                    let ip = std::net::Ipv6Addr::from_bits((u128::from(hi) << 64) | u128::from(lo));
                    SocketAddr::V6(std::net::SocketAddrV6::new(
                        ip,
                        (low >> 16) as u16,
                        0,
                        (low >> 32) as u32,
                    ))
                }
            };
            out.push(addr);
            at = self.link(at).next;
        }
        out
    }
}

/// The hash of the key at position `at`.
fn hash_at(v4: &Slab<Entry4, V6>, v6: &Slab<Entry6, V6>, at: u32) -> u64 {
    match at & V6 {
        0 => v4.entry(at).hash(),
        _ => v6.entry(at & !V6).hash(),
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
    fn entries_are_small() {
        assert_eq!(std::mem::size_of::<Entry4>(), 16);
        assert_eq!(std::mem::size_of::<Entry6>(), 32);
        assert_eq!(std::mem::align_of::<Entry6>(), 32);
        assert_eq!(std::mem::size_of::<SlotList>(), 8);
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
    fn transports_scopes_and_addresses_are_apart() {
        let mut t = table(2);
        let udp = Tuple::new(TransportType::Udp, local(), remote(1));
        let tcp = Tuple::new(TransportType::Tcp, local(), remote(1));
        let other = Tuple::new(
            TransportType::Udp,
            local(),
            "[::ffff:198.51.100.2]:1".parse().expect("an address"),
        );
        // An IPv4 remote as a dual-stack socket reports it is the same remote.
        let mapped = Tuple::new(
            TransportType::Udp,
            local(),
            "[::ffff:198.51.100.1]:1".parse().expect("an address"),
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
        assert_eq!(t.get(&other), None);
        assert_eq!(t.get(&mapped), Some(agent(0)));
        assert_eq!(t.get(&scoped(2)), Some(agent(1)));
        assert_eq!(t.get(&scoped(3)), None);
    }

    #[test]
    fn ipv4_and_ipv6_tuples_share_a_slots_lru_order() {
        let mut t = table(2);
        let v6 = |port: u16| {
            Tuple::new(
                TransportType::Udp,
                local(),
                SocketAddr::new("2001:db8::1".parse().expect("an IP"), port),
            )
        };
        let v6_remote = |port: u16| SocketAddr::new("2001:db8::1".parse().expect("an IP"), port);
        t.learn(agent(0), &tuple(1), 3, 10);
        t.learn(agent(0), &v6(2), 3, 10);
        t.learn(agent(0), &tuple(3), 3, 10);
        assert_eq!(t.learn(agent(0), &tuple(1), 3, 10), Learned::Known);
        assert_eq!(t.remotes_of(0), [v6_remote(2), remote(3), remote(1)]);
        assert_eq!(
            t.learn(agent(0), &v6(4), 3, 10),
            Learned::New { evicted: true }
        );
        assert_eq!(t.get(&v6(2)), None);
        assert_eq!(t.v6.len(), 1, "the evicted tuple's position is reused");
        assert_eq!(t.remotes_of(0), [remote(3), remote(1), v6_remote(4)]);
        assert_eq!(
            t.learn(agent(1), &v6(4), 3, 10),
            Learned::Moved { evicted: false }
        );
        assert_eq!(t.get(&v6(4)), Some(agent(1)));
        assert_eq!(t.forget_slot(0), 2);
        assert_eq!(t.len(), 1);
        t.learn(agent(0), &v6(5), 3, 10);
        assert_eq!(t.v6.len(), 2);
        assert_eq!(t.remotes_of(1), [v6_remote(4)]);
        assert_eq!(t.remotes_of(0), [v6_remote(5)]);
    }

    #[test]
    fn freed_slab_entries_are_reused() {
        let mut t = table(4);
        for slot in 0..4 {
            t.learn(agent(slot), &tuple(slot as u16), 8, 100);
        }
        assert_eq!(t.v4.len(), 4);
        t.forget_slot(1);
        t.forget(&tuple(3));
        t.learn(agent(1), &tuple(10), 8, 100);
        t.learn(agent(1), &tuple(11), 8, 100);
        assert_eq!(t.v4.len(), 4, "no growth while positions are free");
        t.learn(agent(1), &tuple(12), 8, 100);
        assert_eq!(t.v4.len(), 5);
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
