//! The candidate pairs of one stream and their check list (RFC 8445 §6.1.2): one owner for
//! the pairs, the check list's priority order, the (local base, remote address) look-up,
//! the triggered-check queue and the count of check-list pairs in each state, so that
//! none of them can drift from the others.

use std::net::SocketAddr;
use std::ops::{Index, IndexMut};

use super::{ComponentId, PairId};
use crate::compact::{Queue, VecMap, push_compact, reserve_compact};
use crate::stun::TransactionId;

/// How many times a pair whose check was refused with 401 before the peer had shown it
/// knows our credentials is checked again when an authenticated check of the peer's
/// arrives on it. Such a 401 may be a race: a peer that applies new credentials of its own
/// only once it has our answer (as browsers do during an ICE restart) refuses checks
/// signed with them until then. A 401 after the peer's own authenticated check is final:
/// our credentials for it are wrong.
pub(super) const MAX_UNAUTHORIZED_RETRIGGERS: u8 = 3;

/// The state of a candidate pair (RFC 8445 §6.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairState {
    /// Not checked yet, and not to be until another pair of its foundation succeeds or
    /// the check list runs out of Waiting pairs.
    Frozen = 0,
    /// To be checked when its turn comes.
    Waiting = 1,
    /// A check is in flight.
    InProgress = 2,
    /// A check succeeded.
    Succeeded = 3,
    /// The check failed, or the pair is no longer needed.
    Failed = 4,
}

/// Where a pair stands with respect to the check list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Membership {
    /// In the check list: checked, counted, in the priority order and the tuple look-up.
    Checked,
    /// A valid pair made from a mapped address that matches no checked pair
    /// (RFC 8445 §7.2.5.3.2): never checked itself, not counted.
    ValidOnly,
    /// Pruned from the check list (RFC 8445 §6.1.2.5): kept only so that its id stays.
    Removed,
}

/// Where a pair stands with respect to nomination (RFC 8445 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Nomination {
    /// Nothing pending.
    #[default]
    None,
    /// Controlling: the next check on this pair carries USE-CANDIDATE (§8.1.1).
    Requested,
    /// Controlled: USE-CANDIDATE came before the pair was valid; it is nominated when its
    /// triggered check succeeds (§7.3.1.5).
    OnSuccess,
}

/// One candidate pair. Its state, membership, blocking and place in the triggered queue
/// belong to the [`CheckList`], which keeps its counts in step with them.
#[derive(Debug, Clone)]
pub(super) struct Pair {
    pub component: ComponentId,
    /// Index of the local candidate in the stream.
    pub local: usize,
    /// Index of the remote candidate in the stream.
    pub remote: usize,
    pub priority: u64,
    pub valid: bool,
    pub nominated: bool,
    pub nomination: Nomination,
    /// The valid pair a successful check of this pair produced.
    pub valid_pair: Option<PairId>,
    /// The check in flight.
    pub txn: Option<TransactionId>,
    pub foundation: u32,
    /// The check in flight was refused with an (unsigned, so untrusted) 401.
    pub unauthorized: bool,
    /// A 401 came after the peer had shown it knows our credentials (an authenticated
    /// check of its own): the refusal stands, no check of the peer's triggers this pair.
    pub unauthorized_final: bool,
    /// How many times an authenticated check from the peer re-triggered this pair after
    /// a 401 that was not final (bounded by [`MAX_UNAUTHORIZED_RETRIGGERS`]).
    pub unauthorized_retriggers: u8,
    /// A check verified this pair's (local base, remote address): an authenticated check
    /// came from the peer on it, or our check on it succeeded. Application data is taken
    /// only on verified pairs.
    pub verified: bool,
    /// Statistics.
    pub stats: super::stats::PairCounters,
    state: PairState,
    membership: Membership,
    /// A relay pair waiting for its TURN permission: not checked, and not counted as work
    /// to do, until the permission is installed.
    blocked: bool,
    in_triggered: bool,
}

impl Pair {
    /// The foundation of a lite agent's pairs, which intern none (`add_pair`).
    pub const NO_FOUNDATION: u32 = u32::MAX;

    /// A new check-list pair.
    pub fn new(
        component: ComponentId,
        local: usize,
        remote: usize,
        priority: u64,
        state: PairState,
        foundation: u32,
    ) -> Self {
        Self {
            component,
            local,
            remote,
            priority,
            valid: false,
            nominated: false,
            nomination: Nomination::None,
            valid_pair: None,
            txn: None,
            foundation,
            unauthorized: false,
            unauthorized_final: false,
            unauthorized_retriggers: 0,
            verified: false,
            stats: Default::default(),
            state,
            membership: Membership::Checked,
            blocked: false,
            in_triggered: false,
        }
    }

    /// The valid pair a check of `self` produced whose mapped address is local candidate
    /// `local` (RFC 8445 §7.2.5.3.2): outside the check list, Succeeded and valid.
    pub fn valid_from(&self, local: usize, priority: u64) -> Self {
        Self {
            local,
            priority,
            valid: true,
            nominated: false,
            nomination: Nomination::None,
            valid_pair: None,
            txn: None,
            unauthorized: false,
            unauthorized_final: false,
            unauthorized_retriggers: 0,
            verified: true,
            stats: Default::default(),
            state: PairState::Succeeded,
            membership: Membership::ValidOnly,
            blocked: false,
            in_triggered: false,
            ..*self
        }
    }

    pub fn state(&self) -> PairState {
        self.state
    }

    /// True for a pair in the check list (pruned ones included), false for a valid pair
    /// outside it.
    pub fn in_checklist(&self) -> bool {
        self.membership != Membership::ValidOnly
    }

    pub fn removed(&self) -> bool {
        self.membership == Membership::Removed
    }

    pub fn blocked(&self) -> bool {
        self.blocked
    }

    pub fn in_triggered(&self) -> bool {
        self.in_triggered
    }

    /// Counted in the check list's state counts.
    fn counted(&self) -> bool {
        self.membership == Membership::Checked && !self.blocked
    }
}

/// The pairs of one stream.
///
/// Invariants: `counts[s]` is the number of pairs in the check list (not pruned, not
/// blocked) in state `s`; `order` holds exactly the check-list pairs, highest priority
/// first (ties by id); `by_tuple` maps each check-list pair's (local base, remote address);
/// a pair is in `triggered` once at most, exactly when its `in_triggered` is set; pair
/// ids run from `first` (a restarted stream's new check list numbers on after the old
/// one's, so that ids are never reused within a stream), `pairs[i]` having id `first + i`.
#[derive(Debug, Default)]
pub(super) struct CheckList {
    first: usize,
    pairs: Vec<Pair>,
    order: Vec<PairId>,
    by_tuple: VecMap<(SocketAddr, SocketAddr), PairId>,
    triggered: Queue<PairId>,
    /// In 32 bits: a stream forms fewer than 2^32 pairs ([`PairId`]).
    counts: [u32; 5],
    /// An authenticated check from the peer arrived on this check list: the peer knows
    /// our credentials of this generation.
    peer_checked: bool,
}

impl CheckList {
    /// Notes an authenticated check from the peer on this check list.
    pub fn note_peer_check(&mut self) {
        self.peer_checked = true;
    }

    /// Notes that the check of pair `pid` in flight was refused with an unsigned 401: a
    /// final refusal if the peer already showed it knows our credentials, else one that
    /// may be a race (see [`MAX_UNAUTHORIZED_RETRIGGERS`]).
    pub fn note_unauthorized(&mut self, pid: PairId) {
        let peer_checked = self.peer_checked;
        let pair = &mut self[pid];
        pair.unauthorized = true;
        pair.unauthorized_final |= peer_checked;
    }

    /// An empty check list whose first pair gets the id after every id of `previous`
    /// (an ICE restart's new check list, RFC 8445 §9).
    pub fn after(previous: &CheckList) -> Self {
        Self {
            first: previous.first + previous.pairs.len(),
            ..Self::default()
        }
    }

    /// Every pair id, in the order the pairs were made.
    pub fn ids(&self) -> impl Iterator<Item = PairId> + use<> {
        (self.first..self.first + self.pairs.len()).map(PairId::from_index)
    }

    /// True if `pid` is a pair of this check list (not of an earlier generation's).
    pub fn contains(&self, pid: PairId) -> bool {
        pid.index()
            .checked_sub(self.first)
            .is_some_and(|i| i < self.pairs.len())
    }

    /// The position in `pairs` of pair `pid`, which must belong to this list.
    fn slot(&self, pid: PairId) -> usize {
        debug_assert!(self.contains(pid), "pair {pid} of another generation");
        pid.index() - self.first
    }

    /// The check-list pairs, highest priority first.
    pub fn order(&self) -> &[PairId] {
        &self.order
    }

    /// The check-list pair of (local base, remote address).
    pub fn find(&self, base: SocketAddr, remote: SocketAddr) -> Option<PairId> {
        self.by_tuple.get(&(base, remote)).copied()
    }

    /// How many check-list pairs are in `state`.
    pub fn count(&self, state: PairState) -> usize {
        self.counts[state as usize] as usize
    }

    /// True while a triggered check is queued.
    pub fn has_triggered(&self) -> bool {
        !self.triggered.is_empty()
    }

    /// Adds `pair` to the check list under (local base, remote address) `key`.
    pub fn add(&mut self, pair: Pair, key: (SocketAddr, SocketAddr)) -> PairId {
        debug_assert_eq!(pair.membership, Membership::Checked);
        let pid = PairId::from_index(self.first + self.pairs.len());
        if pair.counted() {
            self.counts[pair.state as usize] += 1;
        }
        let priority = pair.priority;
        push_compact(&mut self.pairs, pair);
        self.by_tuple.insert(key, pid);
        let at = self
            .order
            .partition_point(|&other| self[other].priority >= priority);
        reserve_compact(&mut self.order);
        self.order.insert(at, pid);
        pid
    }

    /// Adds a valid pair outside the check list (see [`Pair::valid_from`]).
    pub fn add_valid(&mut self, pair: Pair) -> PairId {
        debug_assert_eq!(pair.membership, Membership::ValidOnly);
        let pid = PairId::from_index(self.first + self.pairs.len());
        push_compact(&mut self.pairs, pair);
        pid
    }

    /// Prunes a pair from the check list; `key` is its (local base, remote address).
    pub fn remove(&mut self, pid: PairId, key: (SocketAddr, SocketAddr)) {
        let pair = &self[pid];
        if pair.membership != Membership::Checked {
            return;
        }
        if pair.counted() {
            self.counts[pair.state as usize] -= 1;
        }
        if self.by_tuple.get(&key) == Some(&pid) {
            self.by_tuple.remove(&key);
        }
        self.order.retain(|&p| p != pid);
        let slot = self.slot(pid);
        self.pairs[slot].membership = Membership::Removed;
    }

    pub fn set_state(&mut self, pid: PairId, state: PairState) {
        let slot = self.slot(pid);
        let pair = &mut self.pairs[slot];
        if pair.counted() {
            self.counts[pair.state as usize] -= 1;
            self.counts[state as usize] += 1;
        }
        pair.state = state;
    }

    /// Blocks or unblocks a relay pair (see [`Pair::blocked`]).
    pub fn set_blocked(&mut self, pid: PairId, blocked: bool) {
        let slot = self.slot(pid);
        let pair = &mut self.pairs[slot];
        if pair.blocked == blocked {
            return;
        }
        if pair.membership == Membership::Checked {
            if blocked {
                self.counts[pair.state as usize] -= 1;
            } else {
                self.counts[pair.state as usize] += 1;
            }
        }
        pair.blocked = blocked;
    }

    /// Queues a check of `pid` ahead of the ordinary ones (RFC 8445 §7.3.1.4); false if it
    /// was queued already.
    pub fn queue_triggered(&mut self, pid: PairId) -> bool {
        let slot = self.slot(pid);
        let pair = &mut self.pairs[slot];
        if pair.in_triggered {
            return false;
        }
        pair.in_triggered = true;
        self.triggered.push_back(pid);
        true
    }

    /// The next queued triggered check.
    pub fn pop_triggered(&mut self) -> Option<PairId> {
        let pid = self.triggered.pop_front()?;
        let slot = self.slot(pid);
        self.pairs[slot].in_triggered = false;
        Some(pid)
    }

    /// Sorts the check list again after priorities changed.
    pub fn resort(&mut self) {
        let (pairs, first) = (&self.pairs, self.first);
        self.order.sort_by(|&a, &b| {
            pairs[b.index() - first]
                .priority
                .cmp(&pairs[a.index() - first].priority)
                .then(a.cmp(&b))
        });
    }
}

impl Index<PairId> for CheckList {
    type Output = Pair;

    fn index(&self, pid: PairId) -> &Pair {
        &self.pairs[self.slot(pid)]
    }
}

impl IndexMut<PairId> for CheckList {
    fn index_mut(&mut self, pid: PairId) -> &mut Pair {
        let slot = self.slot(pid);
        &mut self.pairs[slot]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::from(([192, 0, 2, 1], 5000)),
            SocketAddr::from(([192, 0, 2, 2], port)),
        )
    }

    fn recount(list: &CheckList) -> [u32; 5] {
        let mut counts = [0; 5];
        for pid in list.ids() {
            if list[pid].counted() {
                counts[list[pid].state() as usize] += 1;
            }
        }
        counts
    }

    #[test]
    fn counts_follow_every_change() {
        let mut list = CheckList::default();
        let a = list.add(
            Pair::new(ComponentId::RTP, 0, 0, 30, PairState::Waiting, 0),
            key(1),
        );
        let b = list.add(
            Pair::new(ComponentId::RTP, 0, 1, 20, PairState::Frozen, 0),
            key(2),
        );
        let c = list.add(
            Pair::new(ComponentId::RTP, 0, 2, 10, PairState::Frozen, 1),
            key(3),
        );
        assert_eq!(list.order(), &[a, b, c]);
        list.set_state(a, PairState::InProgress);
        list.set_blocked(b, true);
        list.set_state(b, PairState::Waiting);
        list.remove(c, key(3));
        assert_eq!(list.find(key(3).0, key(3).1), None);
        let v = list.add_valid(list[a].valid_from(3, 40));
        list.set_state(v, PairState::Failed);
        assert_eq!(list.counts, recount(&list));
        assert_eq!(list.count(PairState::InProgress), 1);
        assert_eq!(
            list.count(PairState::Waiting),
            0,
            "blocked pairs are not counted"
        );
        list.set_blocked(b, false);
        assert_eq!(list.count(PairState::Waiting), 1);
        assert_eq!(list.counts, recount(&list));
        assert_eq!(list.order(), &[a, b]);
    }

    #[test]
    fn a_list_after_another_numbers_on() {
        let mut old = CheckList::default();
        let a = old.add(
            Pair::new(ComponentId::RTP, 0, 0, 30, PairState::Waiting, 0),
            key(1),
        );
        let mut new = CheckList::after(&old);
        let b = new.add(
            Pair::new(ComponentId::RTP, 0, 0, 30, PairState::Waiting, 0),
            key(1),
        );
        assert_ne!(a, b);
        assert!(!new.contains(a));
        assert!(new.contains(b));
        assert_eq!(new.ids().collect::<Vec<_>>(), [b]);
        assert_eq!(new[b].priority, 30);
    }

    #[test]
    fn a_pair_is_queued_once() {
        let mut list = CheckList::default();
        let a = list.add(
            Pair::new(ComponentId::RTP, 0, 0, 30, PairState::Waiting, 0),
            key(1),
        );
        assert!(list.queue_triggered(a));
        assert!(!list.queue_triggered(a));
        assert_eq!(list.pop_triggered(), Some(a));
        assert_eq!(list.pop_triggered(), None);
        assert!(list.queue_triggered(a));
    }
}
