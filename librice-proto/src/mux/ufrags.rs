//! The mux's registry of its agents' local ufrags ([`UfragTable`]): ufrag -> agent slot,
//! for routing a first check by the local ufrag in its USERNAME (RFC 8445 §7.2.2).
//!
//! Each ufrag is stored once: an agent slot's ufrags, in stream order, are one string,
//! each followed by `:` (which no ufrag holds: a ufrag is made of ice-chars, ALPHA /
//! DIGIT / "+" / "/", RFC 8839 §5.4), and the hash index holds (slot, offset) pairs
//! pointing into those strings. An empty ufrag in the string is a stream whose ufrag is
//! not registered (another agent has it). An agent of one stream costs its slot's string
//! pointer, one allocation of its ufrag and a colon, and 8 bytes and a control byte of
//! index.
//!
//! The hasher is SipHash with fixed keys, as for the other tables (DESIGN.md: no OS
//! randomness); entries come from the agents, never from what arrives.

use std::hash::{DefaultHasher, Hasher};

use hashbrown::HashTable;

/// Local ufrag -> agent slot, and each slot's ufrags by stream. See the [module
/// docs](self).
#[derive(Debug, Default)]
pub(super) struct UfragTable {
    /// Slot -> its streams' ufrags, each followed by `:` (empty: not registered).
    per_slot: Vec<Box<str>>,
    /// (slot, byte offset of a registered ufrag in the slot's string), hashed by the
    /// ufrag.
    index: HashTable<(u32, u32)>,
}

impl UfragTable {
    /// Makes room for slot `slot`.
    pub(super) fn reserve_slot(&mut self, slot: u32) {
        let needed = slot as usize + 1;
        if self.per_slot.len() < needed {
            self.per_slot.resize_with(needed, Box::default);
        }
    }

    /// The slot that has `ufrag` registered.
    /// (One with `:`, or empty, matches none: no indexed ufrag is.)
    pub(super) fn get(&self, ufrag: &str) -> Option<u32> {
        self.index
            .find(hash(ufrag), |&(slot, at)| {
                is_at(&self.per_slot, slot, at, ufrag)
            })
            .map(|&(slot, _)| slot)
    }

    /// The number of ufrags registered.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Replaces the ufrags of `slot` with `ufrags` (its streams', in stream order),
    /// registering those no other slot has; returns how many another slot had (those
    /// are not registered). The slot must have been reserved.
    pub(super) fn set(&mut self, slot: u32, ufrags: &[String]) -> usize {
        self.forget_slot(slot);
        let mut joined = String::with_capacity(ufrags.iter().map(|u| u.len() + 1).sum());
        let mut conflicts = 0;
        for ufrag in ufrags {
            if registrable(ufrag) {
                if self.get(ufrag).is_none() {
                    joined.push_str(ufrag);
                } else {
                    conflicts += 1;
                }
            }
            joined.push(':');
        }
        self.per_slot[slot as usize] = joined.into_boxed_str();
        let mut at = 0;
        for _ in ufrags {
            let ufrag = segment(&self.per_slot, slot, at);
            let len = ufrag.len() as u32;
            // A ufrag twice in one agent (two streams) is indexed once.
            if !ufrag.is_empty() && self.get(ufrag).is_none() {
                let per_slot = &self.per_slot;
                self.index
                    .insert_unique(hash(ufrag), (slot, at), |&(s, a)| {
                        hash(segment(per_slot, s, a))
                    });
            }
            at += len + 1;
        }
        conflicts
    }

    /// Forgets the ufrags of `slot`.
    pub(super) fn forget_slot(&mut self, slot: u32) {
        let Some(joined) = self.per_slot.get_mut(slot as usize).map(std::mem::take) else {
            return;
        };
        let mut at = 0;
        for ufrag in joined.split_terminator(':') {
            if !ufrag.is_empty()
                && let Ok(entry) = self
                    .index
                    .find_entry(hash(ufrag), |&(s, a)| s == slot && a == at)
            {
                entry.remove();
            }
            at += ufrag.len() as u32 + 1;
        }
    }

    /// The number of streams whose ufrags `slot` has (registered or not).
    pub(super) fn stream_count(&self, slot: u32) -> usize {
        self.per_slot
            .get(slot as usize)
            .map_or(0, |j| j.bytes().filter(|&b| b == b':').count())
    }

    /// True if stream `stream` of `slot` still has what was registered for it: the same
    /// ufrag, or, for one not registered, one still another slot's (or never
    /// registrable).
    pub(super) fn unchanged(&self, slot: u32, stream: usize, current: &str) -> bool {
        let Some(registered) = self
            .per_slot
            .get(slot as usize)
            .and_then(|j| j.split_terminator(':').nth(stream))
        else {
            return false;
        };
        if registered.is_empty() {
            !registrable(current) || self.get(current).is_some_and(|other| other != slot)
        } else {
            registered == current
        }
    }
}

/// True for a ufrag the table can hold: non-empty, without `:`.
fn registrable(ufrag: &str) -> bool {
    !ufrag.is_empty() && !ufrag.contains(':')
}

/// The ufrag at byte `at` of `slot`'s string.
fn segment(per_slot: &[Box<str>], slot: u32, at: u32) -> &str {
    let rest = &per_slot[slot as usize][at as usize..];
    match rest.find(':') {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// True if the ufrag at byte `at` of `slot`'s string is `ufrag`, without looking for
/// its end.
fn is_at(per_slot: &[Box<str>], slot: u32, at: u32, ufrag: &str) -> bool {
    let rest = per_slot[slot as usize].as_bytes().get(at as usize..);
    rest.is_some_and(|rest| {
        rest.starts_with(ufrag.as_bytes()) && rest.get(ufrag.len()) == Some(&b':')
    })
}

fn hash(ufrag: &str) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(ufrag.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(ufrags: &[&str]) -> Vec<String> {
        ufrags.iter().map(|u| (*u).to_owned()).collect()
    }

    #[test]
    fn ufrags_are_registered_once_and_found() {
        let mut t = UfragTable::default();
        t.reserve_slot(2);
        assert_eq!(t.set(0, &strings(&["abcd", "efgh"])), 0);
        assert_eq!(t.set(1, &strings(&["ijkl"])), 0);
        assert_eq!(t.get("abcd"), Some(0));
        assert_eq!(t.get("efgh"), Some(0));
        assert_eq!(t.get("ijkl"), Some(1));
        assert_eq!(t.get("abc"), None);
        assert_eq!(t.get("abcd:efgh"), None);
        assert_eq!(t.get(""), None);
        assert_eq!(t.len(), 3);
        assert_eq!(t.stream_count(0), 2);
        assert_eq!(&*t.per_slot[0], "abcd:efgh:", "stored once, in the slot");
    }

    #[test]
    fn another_slots_ufrag_is_not_registered() {
        let mut t = UfragTable::default();
        t.reserve_slot(1);
        t.set(0, &strings(&["abcd"]));
        assert_eq!(t.set(1, &strings(&["abcd", "wxyz"])), 1);
        assert_eq!(t.get("abcd"), Some(0));
        assert_eq!(t.get("wxyz"), Some(1));
        assert_eq!(t.stream_count(1), 2);
        assert!(t.unchanged(1, 0, "abcd"), "still another slot's");
        assert!(t.unchanged(1, 1, "wxyz"));
        assert!(!t.unchanged(1, 1, "wxy"));
        assert!(!t.unchanged(1, 2, "wxyz"), "no such stream");
        // Once slot 0 lets it go, slot 1's unregistered stream has changed.
        t.forget_slot(0);
        assert!(!t.unchanged(1, 0, "abcd"));
        assert_eq!(t.set(1, &strings(&["abcd", "wxyz"])), 0);
        assert_eq!(t.get("abcd"), Some(1));
    }

    #[test]
    fn replacing_and_forgetting_a_slots_ufrags() {
        let mut t = UfragTable::default();
        t.reserve_slot(1);
        t.set(0, &strings(&["abcd", "efgh"]));
        t.set(1, &strings(&["ijkl"]));
        // An ICE restart of the second stream.
        t.set(0, &strings(&["abcd", "mnop"]));
        assert_eq!(t.get("efgh"), None);
        assert_eq!(t.get("mnop"), Some(0));
        assert_eq!(t.len(), 3);
        t.forget_slot(0);
        assert_eq!(t.get("abcd"), None);
        assert_eq!(t.get("mnop"), None);
        assert_eq!(t.get("ijkl"), Some(1));
        assert_eq!(t.len(), 1);
        assert_eq!(t.stream_count(0), 0);
        t.forget_slot(7);
        // The same ufrag twice in a slot is indexed once and forgotten cleanly.
        t.set(0, &strings(&["qrst", "qrst"]));
        assert_eq!(t.len(), 2);
        assert!(t.unchanged(0, 1, "qrst"));
        t.forget_slot(0);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get("qrst"), None);
    }

    #[test]
    fn many_slots_stay_consistent() {
        let mut t = UfragTable::default();
        t.reserve_slot(199);
        for slot in 0..200u32 {
            t.set(
                slot,
                &strings(&[&format!("u{slot}a"), &format!("u{slot}b")]),
            );
        }
        for slot in (0..200u32).step_by(3) {
            t.forget_slot(slot);
        }
        for slot in 0..200u32 {
            let expect = (!slot.is_multiple_of(3)).then_some(slot);
            assert_eq!(t.get(&format!("u{slot}a")), expect);
            assert_eq!(t.get(&format!("u{slot}b")), expect);
        }
        assert_eq!(t.len(), 2 * (200 - 67));
    }
}
