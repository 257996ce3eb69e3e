//! Candidate priorities: the RFC 8445 §5.1.2.1 formula, local preferences that intermingle
//! interfaces and address families (RFC 8421), and the ICE-TCP local preference
//! (RFC 6544 §4.2).
//!
//! # The local preference scheme
//!
//! [`preference_order`] ranks a host's addresses, given as `(interface, address)` pairs in
//! the caller's order of interface preference (most preferred interface first; the order the
//! operating system lists them in is a fair default):
//!
//! 1. Addresses known to be poor paths go last, after all others, ordered among themselves by
//!    the same rules (RFC 8421 §5: "Candidates with IP addresses from an unreliable interface
//!    should be ordered at the end of the checklist"): loopback, link-local (169.254.0.0/16,
//!    fe80::/10), and the IPv6 ranges RFC 6724 §2.1 ranks below native IPv4 for being
//!    transition or deprecated mechanisms: Teredo (2001::/32), 6to4 (2002::/16), site-local
//!    (fec0::/10), 6bone (3ffe::/16), IPv4-compatible (::/96) and IPv4-mapped
//!    (::ffff:0:0/96). Unique local addresses (fc00::/7) count as ordinary: they are usually
//!    the local network's own.
//! 2. Within one address family, interfaces take turns: the first address of each interface
//!    (in the caller's order), then the second of each, and so on, so that no interface waits
//!    behind all of another's addresses (RFC 8421 §3: "all interfaces get a fair chance").
//! 3. The two families are intermingled, IPv6 first (RFC 8421 §4): with N6 IPv6 and N4 IPv4
//!    addresses, the first IPv4 address comes after a head start of `(N4 + N6) / N4` IPv6
//!    addresses (RFC 8421 §4's formula), and every further IPv4 address after a run of
//!    `max(1, N6 / N4)` IPv6 ones; what remains of either family comes last. Two IPv4 and
//!    six IPv6 addresses give 6 6 6 6 4 6 6 4, RFC 8421 §4's own example.
//!
//! Every entry gets its own rank, even a repeated one, so the preferences derived from it are
//! distinct as RFC 8445 §5.1.2.1 requires of same-type candidates of a component.
//! [`local_preferences`] turns rank `r` into the UDP local preference `65535 - r`, and
//! [`tcp_other_preferences`] into RFC 6544's other-pref `8191 - r`; both saturate at 0, so
//! they stay distinct for up to 65536 and 8192 addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{CandidateError, MAX_COMPONENT, MIN_COMPONENT};

/// The highest priority a candidate may have: 2^31 - 1 (RFC 8445 §5.1.2.1).
pub const MAX_PRIORITY: u32 = (1 << 31) - 1;

/// The highest type preference: 126 (RFC 8445 §5.1.2.1).
pub const MAX_TYPE_PREFERENCE: u8 = 126;

/// The highest ICE-TCP other preference: 8191 (RFC 6544 §4.2).
pub const MAX_TCP_OTHER_PREFERENCE: u16 = 8191;

/// The highest ICE-TCP direction preference (RFC 6544 §4.2).
const MAX_DIRECTION_PREFERENCE: u8 = 7;

/// The priority of a candidate (RFC 8445 §5.1.2.1):
/// `2^24 * type_preference + 2^8 * local_preference + (256 - component)`.
///
/// `type_preference` must be at most 126 (see [`super::CandidateType::preference`] for the
/// recommended values) and `component` in 1..=256. A host UDP candidate of component 1 with
/// local preference 65535 has priority 2130706431.
pub fn priority(
    type_preference: u8,
    local_preference: u16,
    component: u16,
) -> Result<u32, CandidateError> {
    // RFC 8445 §5.1.2.1: the type preference MUST be an integer from 0 to 126.
    if type_preference > MAX_TYPE_PREFERENCE {
        return Err(CandidateError::InvalidTypePreference(type_preference));
    }
    // RFC 8445 §5.1.2.1: the component ID MUST be between 1 and 256.
    if !(MIN_COMPONENT..=MAX_COMPONENT).contains(&component) {
        return Err(CandidateError::InvalidComponent(component));
    }
    Ok((u32::from(type_preference) << 24)
        + (u32::from(local_preference) << 8)
        + (256 - u32::from(component)))
}

/// The local preference of an ICE-TCP candidate (RFC 6544 §4.2):
/// `2^13 * direction_preference + other_preference`.
///
/// `direction_preference` (0..=7) comes from [`super::TcpType::direction_preference`];
/// `other_preference` (0..=8191) tells apart candidates of the same type and direction,
/// usually by address: [`tcp_other_preferences`] gives one per address, and a host with a
/// single address uses 8191.
pub fn tcp_local_preference(
    direction_preference: u8,
    other_preference: u16,
) -> Result<u16, CandidateError> {
    // RFC 6544 §4.2: the direction-pref MUST be between 0 and 7.
    if direction_preference > MAX_DIRECTION_PREFERENCE {
        return Err(CandidateError::InvalidDirectionPreference(
            direction_preference,
        ));
    }
    // RFC 6544 §4.2: the other-pref MUST be between 0 and 8191.
    if other_preference > MAX_TCP_OTHER_PREFERENCE {
        return Err(CandidateError::InvalidOtherPreference(other_preference));
    }
    Ok((u16::from(direction_preference) << 13) + other_preference)
}

/// Ranks `(interface, address)` pairs by the scheme in this module's docs: the result holds,
/// for each entry in input order, its rank (0 for the most preferred). The ranks are a
/// permutation of `0..addresses.len()`.
pub fn preference_order<I: Ord>(addresses: &[(I, IpAddr)]) -> Vec<usize> {
    if addresses.len() <= 1 {
        // One address (a server's usual case) or none: nothing to order.
        return vec![0; addresses.len()];
    }
    let mut interfaces: BTreeMap<&I, usize> = BTreeMap::new();
    let interface_of: Vec<usize> = addresses
        .iter()
        .map(|(interface, _)| {
            let next = interfaces.len();
            *interfaces.entry(interface).or_insert(next)
        })
        .collect();

    let mut order = Vec::with_capacity(addresses.len());
    for demoted in [false, true] {
        let select = |v6: bool| {
            let indices = (0..addresses.len()).filter(|&i| {
                let ip = addresses[i].1;
                ip.is_ipv6() == v6 && is_demoted(ip) == demoted
            });
            interfaces_take_turns(indices, &interface_of)
        };
        order.extend(intermingle(select(true), select(false)));
    }

    let mut ranks = vec![0; addresses.len()];
    for (rank, index) in order.into_iter().enumerate() {
        ranks[index] = rank;
    }
    ranks
}

/// Distinct UDP local preferences for `(interface, address)` pairs, in input order:
/// `65535 - rank` with the rank of [`preference_order`] (saturating at 0).
///
/// ```
/// use librice_proto::candidate::local_preferences;
///
/// let addresses = [
///     ("eth0", "192.0.2.1".parse().unwrap()),
///     ("eth0", "2001:db8::1".parse().unwrap()),
///     ("wlan0", "198.51.100.7".parse().unwrap()),
/// ];
/// // 1 IPv6 and 2 IPv4 addresses: the IPv6 one first, then the IPv4 ones in turn.
/// assert_eq!(local_preferences(&addresses), [65534, 65535, 65533]);
/// ```
pub fn local_preferences<I: Ord>(addresses: &[(I, IpAddr)]) -> Vec<u16> {
    preference_order(addresses)
        .into_iter()
        .map(|rank| u16::MAX.saturating_sub(u16::try_from(rank).unwrap_or(u16::MAX)))
        .collect()
}

/// Distinct ICE-TCP other preferences for `(interface, address)` pairs, in input order:
/// `8191 - rank` with the rank of [`preference_order`] (saturating at 0). Combine with a
/// direction preference in [`tcp_local_preference`].
pub fn tcp_other_preferences<I: Ord>(addresses: &[(I, IpAddr)]) -> Vec<u16> {
    preference_order(addresses)
        .into_iter()
        .map(|rank| {
            MAX_TCP_OTHER_PREFERENCE
                .saturating_sub(u16::try_from(rank).unwrap_or(MAX_TCP_OTHER_PREFERENCE))
        })
        .collect()
}

/// Orders `indices` (ascending entry indices) so that interfaces take turns: the first entry
/// of each interface by interface position, then the second of each, and so on.
fn interfaces_take_turns(
    indices: impl Iterator<Item = usize>,
    interface_of: &[usize],
) -> Vec<usize> {
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut keyed: Vec<(usize, usize, usize)> = indices
        .map(|index| {
            let interface = interface_of[index];
            let turn = seen.entry(interface).or_insert(0);
            let key = (*turn, interface, index);
            *turn += 1;
            key
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, index)| index).collect()
}

/// Intermingles the IPv6 and IPv4 entries, IPv6 first, by RFC 8421 §4's head start.
fn intermingle(v6: Vec<usize>, v4: Vec<usize>) -> Vec<usize> {
    if v4.is_empty() || v6.is_empty() {
        return v6.into_iter().chain(v4).collect();
    }
    let head_start = (v4.len() + v6.len()) / v4.len();
    let run = (v6.len() / v4.len()).max(1);
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let mut v6 = v6.into_iter();
    out.extend(v6.by_ref().take(head_start));
    for index in v4 {
        out.push(index);
        out.extend(v6.by_ref().take(run));
    }
    out.extend(v6);
    out
}

/// True for addresses ranked after all others: loopback, link-local, and the IPv6
/// transition and deprecated ranges of RFC 6724 §2.1.
fn is_demoted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32
                || s[0] == 0x2002 // 6to4 2002::/16
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || s[0] == 0x3ffe // 6bone 3ffe::/16
                || s[..5] == [0; 5] && (s[5] == 0 || s[5] == 0xffff) // ::/96, ::ffff:0:0/96
        }
    }
}
