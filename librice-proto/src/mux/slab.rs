//! The slab the mux's tables store their entries in ([`Slab`]): entries addressed by
//! `u32` positions, each with a pair of list links, freed positions reused first.
//!
//! The lists themselves are the tables' own (the transactions' expiry order in
//! [`super::tables`], each agent's least-recently-used tuples in [`super::tuples`]): the
//! slab only holds their links and threads its free list through them.

/// The end of a list, or no position.
pub(super) const NIL: u32 = u32::MAX;

/// A position's neighbours in the list it is on (for a free position, in the free list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) prev: u32,
    pub(super) next: u32,
}

impl Link {
    /// Not on any list.
    pub(super) const NONE: Self = Self {
        prev: NIL,
        next: NIL,
    };
}

/// Entries with their links, addressed by positions below `LIMIT` (at most [`NIL`], which
/// is never a position).
///
/// Invariants:
/// - `entries` and `links` have the same length: the links of position `p` are
///   `links[p]`.
/// - A free position is on the free list, which starts at `free` ([`NIL`] when empty) and
///   goes on through `links[..].next`; a free position's `prev` is [`NIL`], and its entry
///   holds stale contents, never read until the position is given out again.
/// - A live position's links are its table's to use; a position just given out has
///   [`Link::NONE`].
#[derive(Debug)]
pub(super) struct Slab<E, const LIMIT: u32> {
    entries: Vec<E>,
    links: Vec<Link>,
    /// The first free position, or [`NIL`].
    free: u32,
}

impl<E, const LIMIT: u32> Default for Slab<E, LIMIT> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            links: Vec::new(),
            free: NIL,
        }
    }
}

impl<E, const LIMIT: u32> Slab<E, LIMIT> {
    /// A position holding `entry`, reusing a free one first. Panics if that would take a
    /// position at `LIMIT` or above: the tables using a slab bound what they hold well
    /// below.
    pub(super) fn alloc(&mut self, entry: E) -> u32 {
        if self.free != NIL {
            let at = self.free;
            self.free = self.links[at as usize].next;
            self.entries[at as usize] = entry;
            self.links[at as usize] = Link::NONE;
            return at;
        }
        let Some(at) = u32::try_from(self.entries.len())
            .ok()
            .filter(|&at| at < LIMIT)
        else {
            panic!("fewer than {LIMIT} entries in a slab: the table using it is bounded");
        };
        self.entries.push(entry);
        self.links.push(Link::NONE);
        at
    }

    /// Frees position `at`, which must be live and on no list: its entry is left as it
    /// is, stale.
    pub(super) fn release(&mut self, at: u32) {
        self.links[at as usize] = Link {
            prev: NIL,
            next: self.free,
        };
        self.free = at;
    }

    /// The entry at position `at`.
    #[inline]
    pub(super) fn entry(&self, at: u32) -> &E {
        &self.entries[at as usize]
    }

    /// The entry at position `at`, to change.
    #[inline]
    pub(super) fn entry_mut(&mut self, at: u32) -> &mut E {
        &mut self.entries[at as usize]
    }

    /// The links of position `at`.
    #[inline]
    pub(super) fn link(&self, at: u32) -> Link {
        self.links[at as usize]
    }

    /// The links of position `at`, to change.
    #[inline]
    pub(super) fn link_mut(&mut self, at: u32) -> &mut Link {
        &mut self.links[at as usize]
    }

    /// The number of positions, free ones included: the slab never shrinks.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_positions_are_reused_last_freed_first() {
        let mut s = Slab::<u8, 4>::default();
        assert_eq!([s.alloc(10), s.alloc(11), s.alloc(12)], [0, 1, 2]);
        s.link_mut(1).next = 2;
        s.release(1);
        s.release(0);
        assert_eq!(
            s.link(0),
            Link { prev: NIL, next: 1 },
            "the free list goes on through next"
        );
        assert_eq!(s.alloc(20), 0);
        assert_eq!(s.link(0), Link::NONE, "given out unlinked");
        assert_eq!(s.alloc(21), 1);
        assert_eq!(*s.entry(1), 21);
        assert_eq!(s.alloc(23), 3);
        *s.entry_mut(2) = 22;
        assert_eq!([*s.entry(0), *s.entry(2), *s.entry(3)], [20, 22, 23]);
        assert_eq!(s.len(), 4);
    }

    #[test]
    #[should_panic(expected = "fewer than 2 entries in a slab")]
    fn positions_stay_below_the_limit() {
        let mut s = Slab::<u8, 2>::default();
        s.alloc(0);
        s.alloc(1);
        s.alloc(2);
    }
}
