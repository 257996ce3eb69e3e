//! Deterministic candidate foundations (RFC 8445 §5.1.1.3).
//!
//! RFC 8445 §5.1.1.3 requires the same foundation for two candidates that have the same type,
//! base IP address, transport protocol and STUN or TURN server IP address, and different
//! foundations otherwise. [`FoundationSet`] hands out `"1"`, `"2"`, ... in the order distinct
//! [`FoundationKey`]s are first seen: no randomness, no hashing, and the same gathering order
//! gives the same foundations. Foundations are compared across data streams, so an agent keeps
//! one set for all of its streams.

use std::cmp::Ordering;
use std::net::IpAddr;

use super::CandidateType;
use crate::TransportType;
use crate::compact::VecMap;

/// What decides a local candidate's foundation (RFC 8445 §5.1.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FoundationKey {
    /// The candidate's type.
    pub candidate_type: CandidateType,
    /// The transport protocol (the ICE-TCP direction does not count).
    pub transport: TransportType,
    /// The IP address of the candidate's base: the host address it was obtained from.
    pub base: IpAddr,
    /// The IP address of the STUN or TURN server it was obtained from, if any.
    pub server: Option<IpAddr>,
}

impl FoundationKey {
    /// The key of a candidate of `candidate_type` over `transport`, obtained from the base
    /// address `base` through the STUN or TURN server at `server` (`None` for host and
    /// peer-reflexive candidates).
    pub const fn new(
        candidate_type: CandidateType,
        transport: TransportType,
        base: IpAddr,
        server: Option<IpAddr>,
    ) -> Self {
        Self {
            candidate_type,
            transport,
            base,
            server,
        }
    }

    /// A totally ordered view of the key (`TransportType` is not `Ord`).
    fn sort_key(&self) -> (CandidateType, u8, IpAddr, Option<IpAddr>) {
        let transport = match self.transport {
            TransportType::Udp => 0,
            TransportType::Tcp => 1,
        };
        (self.candidate_type, transport, self.base, self.server)
    }
}

impl PartialOrd for FoundationKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FoundationKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// Hands out foundations: the same one for equal [`FoundationKey`]s, a new one for each new
/// key (RFC 8445 §5.1.1.3). Foundations are decimal numbers from `"1"`, in order of first
/// use, so they are short, valid ice-chars and deterministic.
///
/// ```
/// use librice_proto::candidate::{CandidateType, FoundationKey, FoundationSet};
/// use librice_proto::TransportType;
///
/// let mut set = FoundationSet::new();
/// let ip = "192.0.2.1".parse().unwrap();
/// let stun_a = Some("203.0.113.1".parse().unwrap());
/// let stun_b = Some("203.0.113.2".parse().unwrap());
/// let key = |server| FoundationKey::new(CandidateType::ServerReflexive, TransportType::Udp, ip, server);
/// assert_eq!(set.foundation(key(stun_a)), "1");
/// assert_eq!(set.foundation(key(stun_b)), "2");
/// assert_eq!(set.foundation(key(stun_a)), "1");
/// ```
#[derive(Debug, Clone, Default)]
pub struct FoundationSet {
    assigned: VecMap<FoundationKey, u64>,
    next: u64,
}

impl FoundationSet {
    /// An empty set: the first foundation handed out is `"1"`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The foundation for `key`: the one already given to an equal key, or a new one.
    pub fn foundation(&mut self, key: FoundationKey) -> String {
        let number = match self.assigned.get(&key) {
            Some(&number) => number,
            None => {
                let number = self.take_next();
                self.assigned.insert(key, number);
                number
            }
        };
        number.to_string()
    }

    /// A foundation no key has or will have: for a remote peer-reflexive candidate, whose
    /// foundation need only differ from all others (RFC 8445 §7.3.1.3).
    pub fn unique(&mut self) -> String {
        self.take_next().to_string()
    }

    /// The foundation already given to `key`, without handing out a new one.
    pub fn get(&self, key: &FoundationKey) -> Option<String> {
        self.assigned.get(key).map(u64::to_string)
    }

    /// The number of distinct keys seen.
    pub fn len(&self) -> usize {
        self.assigned.len()
    }

    /// True when no key has been seen.
    pub fn is_empty(&self) -> bool {
        self.assigned.is_empty()
    }

    fn take_next(&mut self) -> u64 {
        // A u64 counter cannot wrap in practice; saturating keeps it panic-free regardless.
        self.next = self.next.saturating_add(1);
        self.next
    }
}
