//! Collections sized for the one or two entries an agent usually holds.
//!
//! A server keeps thousands of agents, each with one stream, one component, one socket
//! and a pair or two. A `BTreeMap`'s first leaf has room for 11 entries and a `Vec`'s
//! first growth for 4; across 10,000 agents that idle room is most of the heap. These
//! grow one entry at a time while small, then by half, so that pushes stay amortised
//! O(1), and give their memory back once emptied.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::VecDeque;

/// Below this many entries a full collection grows by one; from it on, by half.
const EXACT_UP_TO: usize = 4;

/// An emptied collection keeps room for one entry of at most this many bytes: a
/// transaction timer or a queued id comes and goes with every check, and freeing its slot
/// each time would cost an allocation per check for a few bytes.
const SMALL_ENTRY: usize = 64;

/// The capacity an emptied collection of `T` keeps, at least `keep`.
const fn kept<T>(keep: usize) -> usize {
    if keep == 0 && std::mem::size_of::<T>() <= SMALL_ENTRY {
        1
    } else {
        keep
    }
}

/// Makes room for one more entry of `v`: exactly one while `v` is small, then half its
/// length, instead of `Vec`'s doubling from four.
pub(crate) fn reserve_compact<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        let len = v.len();
        v.reserve_exact(if len < EXACT_UP_TO { 1 } else { len / 2 });
    }
}

/// Pushes `item` onto `v`, growing it as [`reserve_compact`] does.
pub(crate) fn push_compact<T>(v: &mut Vec<T>, item: T) {
    reserve_compact(v);
    v.push(item);
}

/// A map kept as a `Vec` of entries sorted by key: look-ups are binary searches (O(log n),
/// like a B-tree's, over one contiguous block), inserts and removes shift the entries
/// after them. Meant for maps of a few entries, or of tens that change rarely. It grows as
/// [`reserve_compact`] does and, when its last entry goes, frees its memory (or keeps
/// room for one entry of at most [`SMALL_ENTRY`] bytes).
#[derive(Debug, Clone)]
pub(crate) struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The position of `key`, or where it would go.
    fn search<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The position of the entry `cmp` finds equal, or where it would go (`cmp` orders an
    /// entry's key against the one sought, consistently with `K`'s order).
    pub fn search_by(&self, mut cmp: impl FnMut(&K) -> Ordering) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| cmp(k))
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.search(key).is_ok()
    }

    /// Inserts `value` at `key`; returns the value it replaces.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.search(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.insert_at(i, key, value);
                None
            }
        }
    }

    /// Inserts an entry at position `i`, which must be where [`Self::search_by`] said
    /// its key goes.
    pub fn insert_at(&mut self, i: usize, key: K, value: V) -> &mut V {
        debug_assert!(i == 0 || self.entries[i - 1].0 < key);
        debug_assert!(i == self.entries.len() || key < self.entries[i].0);
        reserve_compact(&mut self.entries);
        self.entries.insert(i, (key, value));
        &mut self.entries[i].1
    }

    /// The value at position `i`.
    pub fn value_at_mut(&mut self, i: usize) -> &mut V {
        &mut self.entries[i].1
    }

    /// The value at `key`, inserted with `make` if absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        match self.search(&key) {
            Ok(i) => &mut self.entries[i].1,
            Err(i) => self.insert_at(i, key, make()),
        }
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let i = self.search(key).ok()?;
        let (_, value) = self.entries.remove(i);
        self.release_if_empty();
        Some(value)
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
        self.release_if_empty();
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.release_if_empty();
    }

    /// The entry with the smallest key.
    pub fn first(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        if self.entries.is_empty() {
            return None;
        }
        let entry = self.entries.remove(0);
        self.release_if_empty();
        Some(entry)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    fn release_if_empty(&mut self) {
        let keep = kept::<(K, V)>(0);
        if self.entries.is_empty() && self.entries.capacity() > keep {
            self.entries.shrink_to(keep);
        }
    }
}

/// A set kept as a sorted `Vec`, as [`VecMap`] keeps its entries.
#[derive(Debug, Clone)]
pub(crate) struct VecSet<K> {
    map: VecMap<K, ()>,
}

impl<K> Default for VecSet<K> {
    fn default() -> Self {
        Self {
            map: VecMap::default(),
        }
    }
}

impl<K: Ord> VecSet<K> {
    /// An empty set (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// Adds `key`; false if it was there already.
    pub fn insert(&mut self, key: K) -> bool {
        self.map.insert(key, ()).is_none()
    }

    /// Removes `key`; false if it was not there.
    pub fn remove<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.remove(key).is_some()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The smallest key.
    pub fn first(&self) -> Option<&K> {
        self.map.first().map(|(k, _)| k)
    }

    /// Removes and returns the smallest key.
    pub fn pop_first(&mut self) -> Option<K> {
        self.map.pop_first().map(|(k, ())| k)
    }
}

/// A FIFO queue of rare work (an agent's I/O requests: TCP connections, mDNS): a null
/// pointer until something is queued, and again once drained (8 B instead of 32 in every
/// agent; two allocations a burst instead of one, on a path that is no hot one).
#[derive(Debug)]
pub(crate) struct RareQueue<T> {
    // Boxed on purpose: 8 B in every agent instead of a `VecDeque`'s 32.
    #[allow(clippy::box_collection)]
    items: Option<Box<VecDeque<T>>>,
}

impl<T> Default for RareQueue<T> {
    fn default() -> Self {
        Self { items: None }
    }
}

impl<T> RareQueue<T> {
    pub fn push_back(&mut self, item: T) {
        self.items.get_or_insert_with(Box::default).push_back(item);
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let items = self.items.as_mut()?;
        let item = items.pop_front();
        if items.is_empty() {
            self.items = None;
        }
        item
    }
}

/// A FIFO queue that, once drained, gives back its
/// memory beyond room for `KEEP` entries (one if its entries are small, see
/// [`SMALL_ENTRY`]): a burst (the events of a connect, the answers
/// to a flood of checks) leaves no idle buffer behind, while a queue that carries one
/// entry at a time in its steady state (an answer per check) keeps the room for it and
/// allocates nothing more.
#[derive(Debug, Clone)]
pub(crate) struct Queue<T, const KEEP: usize = 0> {
    items: VecDeque<T>,
}

impl<T, const KEEP: usize> Default for Queue<T, KEEP> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
        }
    }
}

impl<T, const KEEP: usize> Queue<T, KEEP> {
    /// An empty queue (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.items.iter()
    }

    pub fn push_back(&mut self, item: T) {
        // A queue fills in bursts and is drained at once: it grows as `VecDeque` does
        // (room for 4, then doubling), which takes one allocation for most bursts.
        self.items.push_back(item);
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.items.pop_front()?;
        let keep = kept::<T>(KEEP);
        if self.items.is_empty() && self.items.capacity() > keep {
            self.items.shrink_to(keep);
        }
        Some(item)
    }
}

impl<K: Ord> Extend<K> for VecSet<K> {
    fn extend<I: IntoIterator<Item = K>>(&mut self, keys: I) {
        for key in keys {
            self.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn grows_one_at_a_time_while_small_then_by_half() {
        let mut v = Vec::new();
        let mut caps = Vec::new();
        for i in 0..10 {
            push_compact(&mut v, i);
            caps.push(v.capacity());
        }
        assert_eq!(caps, [1, 2, 3, 4, 6, 6, 9, 9, 9, 13]);
    }

    #[test]
    fn a_map_agrees_with_a_btree_map_and_frees_its_memory_once_empty() {
        let mut map = VecMap::new();
        let mut model = BTreeMap::new();
        // A fixed pseudo-random walk of inserts and removes over a small key space.
        let mut x: u32 = 12345;
        for step in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let key = (x >> 16) % 37;
            if (x >> 8).is_multiple_of(3) {
                assert_eq!(map.remove(&key), model.remove(&key));
            } else {
                assert_eq!(map.insert(key, step), model.insert(key, step));
            }
            assert_eq!(map.len(), model.len());
            assert!(
                map.iter()
                    .map(|(k, v)| (*k, *v))
                    .eq(model.iter().map(|(k, v)| (*k, *v)))
            );
            assert_eq!(map.get(&key), model.get(&key));
        }
        map.retain(|k, _| k % 2 == 0);
        model.retain(|k, _| k % 2 == 0);
        assert!(map.iter().map(|(k, _)| k).eq(model.keys()));
        while let Some((k, v)) = map.pop_first() {
            assert_eq!(model.pop_first(), Some((k, v)));
        }
        assert_eq!(
            map.entries.capacity(),
            1,
            "an emptied map of small entries keeps one"
        );
        let mut big = VecMap::new();
        big.insert(1, [0u8; 100]);
        big.insert(2, [0u8; 100]);
        big.remove(&1);
        assert_eq!(big.entries.capacity(), 2);
        big.remove(&2);
        assert_eq!(
            big.entries.capacity(),
            0,
            "an emptied map of large entries frees"
        );
    }

    #[test]
    fn a_drained_queue_keeps_room_for_keep_entries_only() {
        let mut q: Queue<u32, 1> = Queue::new();
        q.push_back(1);
        assert_eq!(q.pop_front(), Some(1));
        assert_eq!(q.items.capacity(), 1, "drained: room for one kept");
        q.push_back(2);
        assert_eq!(
            q.items.capacity(),
            1,
            "one entry at a time: no reallocation"
        );
        assert_eq!(q.pop_front(), Some(2));
        for i in 0..10 {
            q.push_back(i);
        }
        assert!(q.iter().copied().eq(0..10));
        while q.pop_front().is_some() {}
        assert_eq!(q.items.capacity(), 1);
        let mut q: Queue<u32> = Queue::new();
        q.push_back(1);
        q.push_back(2);
        assert_eq!(q.pop_front(), Some(1));
        assert!(q.items.capacity() >= 2, "not drained yet");
        assert_eq!(q.pop_front(), Some(2));
        assert_eq!(q.items.capacity(), 1, "small entries: room for one kept");
        let mut q: Queue<[u8; 100]> = Queue::new();
        q.push_back([1; 100]);
        q.push_back([2; 100]);
        while q.pop_front().is_some() {}
        assert_eq!(q.items.capacity(), 0, "large entries: all freed");
        assert!(q.is_empty());
    }

    #[test]
    fn a_set_keeps_its_keys_sorted_and_unique() {
        let mut set = VecSet::new();
        assert!(set.insert(3));
        assert!(set.insert(1));
        assert!(!set.insert(3));
        assert!(set.contains(&1) && set.contains(&3) && !set.contains(&2));
        assert_eq!(set.first(), Some(&1));
        assert!(set.remove(&1));
        assert!(!set.remove(&1));
        assert_eq!(set.pop_first(), Some(3));
        assert_eq!(set.first(), None);
    }
}
