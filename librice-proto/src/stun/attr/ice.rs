//! ICE attributes: PRIORITY, USE-CANDIDATE, ICE-CONTROLLED, ICE-CONTROLLING (RFC 8445 §16.1)
//! and NOMINATION (draft-thatcher-ice-renomination-01 §4).

use super::{flag_attribute, int_attribute};

/// PRIORITY: the priority the sender would give a peer-reflexive candidate learnt from this
/// check (RFC 8445 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority(pub u32);
int_attribute!(Priority, u32, PRIORITY);

/// USE-CANDIDATE: the controlling agent nominates the pair this check is sent on
/// (RFC 8445 §7.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UseCandidate;
flag_attribute!(UseCandidate, USE_CANDIDATE);

/// ICE-CONTROLLED: the sender believes it is controlled; the value is its tie-breaker
/// (RFC 8445 §7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IceControlled(pub u64);
int_attribute!(IceControlled, u64, ICE_CONTROLLED);

/// ICE-CONTROLLING: the sender believes it is controlling; the value is its tie-breaker
/// (RFC 8445 §7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IceControlling(pub u64);
int_attribute!(IceControlling, u64, ICE_CONTROLLING);

/// NOMINATION: the controlling agent nominates the pair this check is sent on, with a value
/// higher than any it nominated with before, so that the controlled agent follows the
/// largest (draft-thatcher-ice-renomination-01 §4). Type 0xC001, a 4-byte value: the draft
/// puts a 24-bit integer in its 3 least significant bytes; libwebrtc and libnice read and
/// write it as a 32-bit unsigned integer, and so does this type. Comprehension-optional: a
/// peer that does not know it ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nomination(pub u32);
int_attribute!(Nomination, u32, NOMINATION);
