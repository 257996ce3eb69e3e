//! The mux's timer queue: an indexed binary min-heap of (deadline, agent slot), one entry
//! per agent with a deadline. Setting, moving or clearing an agent's deadline is
//! O(log n), the earliest deadline is O(1), and nothing is ever stale: the heap never
//! holds more entries than there are agents, so it never grows past the capacity reserved
//! when agents are added.

use std::time::Instant;

/// No heap position: the slot has no deadline.
const ABSENT: u32 = u32::MAX;

/// Deadlines of agent slots, earliest first.
#[derive(Debug, Default)]
pub(super) struct TimerHeap {
    /// (deadline, slot), a binary min-heap on the deadline (ties: the lower slot first).
    heap: Vec<(Instant, u32)>,
    /// Slot -> its position in `heap`, or [`ABSENT`].
    pos: Vec<u32>,
}

impl TimerHeap {
    /// Makes room for slot `slot` (and all below it) without allocating later.
    pub(super) fn reserve_slot(&mut self, slot: u32) {
        let needed = slot as usize + 1;
        if self.pos.len() < needed {
            self.pos.resize(needed, ABSENT);
        }
        self.heap.reserve(needed.saturating_sub(self.heap.len()));
    }

    /// The earliest deadline and its slot.
    pub(super) fn peek(&self) -> Option<(Instant, u32)> {
        self.heap.first().copied()
    }

    /// The number of slots with a deadline.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The deadline of `slot`, if it has one.
    pub(super) fn get(&self, slot: u32) -> Option<Instant> {
        let p = *self.pos.get(slot as usize)?;
        (p != ABSENT).then(|| self.heap[p as usize].0)
    }

    /// Sets (or clears, with `None`) the deadline of `slot`. The slot must have been
    /// reserved with [`Self::reserve_slot`].
    pub(super) fn set(&mut self, slot: u32, deadline: Option<Instant>) {
        let Some(&p) = self.pos.get(slot as usize) else {
            debug_assert!(false, "slot {slot} was never reserved");
            return;
        };
        match (p, deadline) {
            (ABSENT, None) => {}
            (ABSENT, Some(t)) => {
                let at = self.heap.len();
                self.heap.push((t, slot));
                self.pos[slot as usize] = at as u32;
                self.sift_up(at);
            }
            (p, None) => self.remove_at(p as usize),
            (p, Some(t)) => {
                let p = p as usize;
                let old = self.heap[p].0;
                self.heap[p].0 = t;
                if t < old {
                    self.sift_up(p);
                } else {
                    self.sift_down(p);
                }
            }
        }
    }

    fn remove_at(&mut self, p: usize) {
        let last = self.heap.len() - 1;
        self.swap(p, last);
        let (_, slot) = self.heap.pop().expect("the heap holds position p");
        self.pos[slot as usize] = ABSENT;
        if p < self.heap.len() {
            self.sift_up(p);
            self.sift_down(p);
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].1 as usize] = a as u32;
        self.pos[self.heap[b].1 as usize] = b as u32;
    }

    fn sift_up(&mut self, mut p: usize) {
        while p > 0 {
            let parent = (p - 1) / 2;
            if self.heap[p] >= self.heap[parent] {
                break;
            }
            self.swap(p, parent);
            p = parent;
        }
    }

    fn sift_down(&mut self, mut p: usize) {
        loop {
            let (l, r) = (2 * p + 1, 2 * p + 2);
            let mut least = p;
            if l < self.heap.len() && self.heap[l] < self.heap[least] {
                least = l;
            }
            if r < self.heap.len() && self.heap[r] < self.heap[least] {
                least = r;
            }
            if least == p {
                return;
            }
            self.swap(p, least);
            p = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keeps_the_earliest_deadline_on_top_through_moves_and_removals() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut h = TimerHeap::default();
        h.reserve_slot(9);
        // A pseudo-random walk of sets, checked against a plain scan.
        let mut model: Vec<Option<Instant>> = vec![None; 10];
        let mut x: u64 = 12345;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let slot = ((x >> 33) % 10) as u32;
            let deadline = (!(x >> 20).is_multiple_of(4)).then(|| at((x >> 40) % 1000));
            h.set(slot, deadline);
            model[slot as usize] = deadline;
            let expect = model
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.map(|d| (d, i as u32)))
                .min();
            assert_eq!(h.peek(), expect);
            assert_eq!(h.len(), model.iter().flatten().count());
            assert_eq!(h.get(slot), deadline);
        }
    }
}
