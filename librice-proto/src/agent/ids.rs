//! The public ids of the agent: streams, components and candidate pairs. The 1-based
//! component numbering of RFC 8445 meets the 0-based storage here and nowhere else.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU16;
use std::ops::{Index, IndexMut};

/// A stream's id: its index in the order streams were added to their agent, from 0
/// ([`Agent::add_stream`](super::Agent::add_stream)).
///
/// ```
/// use librice_proto::agent::{Agent, AgentConfig, StreamId};
///
/// let mut agent = Agent::new(AgentConfig::default());
/// assert_eq!(agent.add_stream(), StreamId::from_index(0));
/// assert_eq!(agent.add_stream().index(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(usize);

impl StreamId {
    /// The id of the stream added at position `index` (from 0). It names a stream only in
    /// an agent that has that many; look-ups with any other id find nothing.
    pub const fn from_index(index: usize) -> Self {
        Self(index)
    }

    /// The stream's position in the order streams were added, from 0.
    pub const fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for StreamId {
    /// The index, as a number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A component's id within its stream: the component ID of RFC 8445 §5.1.2.1 and of the
/// SDP `candidate` attribute (RFC 8839 §5.1), a number from 1: 1 for the first component
/// (RTP), 2 for the next (RTCP), and so on. A stream has at most 256 components
/// ([`MAX_COMPONENT`](crate::candidate::MAX_COMPONENT)).
///
/// [`Self::index`] and [`Self::from_index`] convert to and from the 0-based position of
/// the component in its stream.
///
/// ```
/// use librice_proto::agent::ComponentId;
///
/// assert_eq!(ComponentId::new(1), Some(ComponentId::RTP));
/// assert_eq!(ComponentId::new(0), None);
/// assert_eq!(ComponentId::RTCP.get(), 2);
/// assert_eq!(ComponentId::RTCP.index(), 1);
/// assert_eq!(ComponentId::from_index(1), Some(ComponentId::RTCP));
/// assert_eq!(ComponentId::RTP.to_string(), "1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(NonZeroU16);

impl ComponentId {
    /// Component 1: RTP, or the only component of a stream (RFC 8445 §5.1.2.1).
    pub const RTP: Self = Self(NonZeroU16::MIN);

    /// Component 2: RTCP, when it is not multiplexed with RTP (RFC 8445 §5.1.2.1).
    pub const RTCP: Self = match NonZeroU16::new(2) {
        Some(id) => Self(id),
        None => unreachable!(),
    };

    /// The component with id `id`; `None` for 0, which names no component (ids start at 1,
    /// RFC 8445 §5.1.2.1). Ids above 256 make a value, but no agent has such a component
    /// and no candidate carries one.
    pub const fn new(id: u16) -> Option<Self> {
        match NonZeroU16::new(id) {
            Some(id) => Some(Self(id)),
            None => None,
        }
    }

    /// The id as a number, from 1.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The component's position in its stream, from 0: its id minus 1.
    pub const fn index(self) -> usize {
        self.0.get() as usize - 1
    }

    /// The component at position `index` in its stream (from 0): id `index + 1`; `None`
    /// if that does not fit in a `u16`.
    pub fn from_index(index: usize) -> Option<Self> {
        let id = index.checked_add(1)?;
        Self::new(u16::try_from(id).ok()?)
    }
}

impl fmt::Display for ComponentId {
    /// The id, as a number from 1.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A candidate pair's id within its stream ([`PairStats::id`](super::PairStats::id),
/// [`ReceivedData::pair`](super::ReceivedData::pair)). Opaque: the agent numbers a
/// stream's pairs in the order it forms them (RFC 8445 §6.1.2) and never reuses an id
/// within the stream, a pruned pair's included; pairs of different streams may share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairId(u32);

impl PairId {
    /// The id of the `index`-th pair formed in its stream (from 0). Held in 32 bits (an
    /// `Option<PairId>` takes 8 bytes): a stream forms at most
    /// [`AgentConfig::max_pairs`](super::AgentConfig::max_pairs) pairs a generation, far
    /// fewer than 2^32 in any lifetime.
    pub(super) fn from_index(index: usize) -> Self {
        Self(u32::try_from(index).expect("a stream forms fewer than 2^32 pairs"))
    }

    /// The pair's position in the order its stream formed pairs, from 0.
    pub(super) const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PairId {
    /// The id, as a number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An id that numbers the items of an [`IdVec`] by their position.
pub(super) trait Id: Copy {
    /// The id of the item at `index`, if there can be one.
    fn at(index: usize) -> Option<Self>;
    /// The position of the item with this id.
    fn position(self) -> usize;
}

impl Id for StreamId {
    fn at(index: usize) -> Option<Self> {
        Some(Self::from_index(index))
    }

    fn position(self) -> usize {
        self.index()
    }
}

impl Id for ComponentId {
    fn at(index: usize) -> Option<Self> {
        Self::from_index(index)
    }

    fn position(self) -> usize {
        self.index()
    }
}

/// Items looked up by their id (the agent's streams, a stream's components): a `Vec`
/// indexed by id rather than by position. Items are only ever added, so an id keeps
/// naming the same item.
#[derive(Debug)]
pub(super) struct IdVec<I, T> {
    items: Vec<T>,
    id: PhantomData<fn(I) -> I>,
}

impl<I, T> Default for IdVec<I, T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            id: PhantomData,
        }
    }
}

impl<I: Id, T> IdVec<I, T> {
    /// Adds `item` and returns its id; `None` (and nothing added) if the next position has
    /// no id.
    pub fn push(&mut self, item: T) -> Option<I> {
        let id = I::at(self.items.len())?;
        // Streams and components are few and large: grow one at a time (a `Vec`'s first
        // growth makes room for four, which idles in every agent of a server).
        self.items.reserve_exact(1);
        self.items.push(item);
        Some(id)
    }

    pub fn get(&self, id: I) -> Option<&T> {
        self.items.get(id.position())
    }

    pub fn get_mut(&mut self, id: I) -> Option<&mut T> {
        self.items.get_mut(id.position())
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Every id, in order.
    pub fn ids(&self) -> impl Iterator<Item = I> + use<I, T> {
        (0..self.items.len()).map_while(I::at)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }
}

impl<'a, I, T> IntoIterator for &'a IdVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a, I, T> IntoIterator for &'a mut IdVec<I, T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter_mut()
    }
}

impl<I: Id, T> Index<I> for IdVec<I, T> {
    type Output = T;

    fn index(&self, id: I) -> &T {
        &self.items[id.position()]
    }
}

impl<I: Id, T> IndexMut<I> for IdVec<I, T> {
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.items[id.position()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_start_at_1_and_indices_at_0() {
        assert_eq!(ComponentId::new(0), None);
        assert_eq!(ComponentId::RTP.get(), 1);
        assert_eq!(ComponentId::RTCP.get(), 2);
        assert_eq!(ComponentId::RTP.index(), 0);
        assert_eq!(ComponentId::from_index(0), Some(ComponentId::RTP));
        let max = ComponentId::new(u16::MAX).unwrap();
        assert_eq!(max.index(), usize::from(u16::MAX) - 1);
        assert_eq!(ComponentId::from_index(max.index()), Some(max));
        assert_eq!(ComponentId::from_index(usize::from(u16::MAX)), None);
        assert_eq!(ComponentId::from_index(usize::MAX), None);
        for id in 1..=300 {
            let c = ComponentId::new(id).unwrap();
            assert_eq!(ComponentId::from_index(c.index()), Some(c));
        }
    }

    #[test]
    fn ids_display_their_number() {
        assert_eq!(StreamId::from_index(3).to_string(), "3");
        assert_eq!(ComponentId::new(256).unwrap().to_string(), "256");
        assert_eq!(PairId::from_index(7).to_string(), "7");
    }
}
