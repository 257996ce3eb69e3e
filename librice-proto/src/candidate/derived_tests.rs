//! Tests of the values an agent derives for its candidates: priorities, local preferences
//! (RFC 8421, RFC 6544), foundations and ICE credentials.

use std::net::{IpAddr, SocketAddr};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::TransportType;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("valid socket address")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("valid IP address")
}

// ---------------------------------------------------------------------------------------
// Priorities and preferences
// ---------------------------------------------------------------------------------------

#[test]
fn priority_formula_values() {
    // RFC 8445 §5.1.2.1 with the §5.1.2.2 recommended type preferences.
    assert_eq!(priority(126, 65535, 1), Ok(2130706431));
    assert_eq!(priority(126, 65535, 2), Ok(2130706430));
    assert_eq!(priority(126, 65535, 256), Ok(2130706176));
    assert_eq!(priority(110, 65535, 1), Ok(1862270975));
    assert_eq!(priority(100, 65535, 1), Ok(1694498815));
    assert_eq!(priority(0, 65535, 1), Ok(16777215));
    assert_eq!(priority(0, 0, 256), Ok(0));
    // RFC 8421 §5's example table: host candidates (1) and (2), relayed (17).
    assert_eq!(priority(126, 60000, 1), Ok(2129289471));
    assert_eq!(priority(126, 60000, 2), Ok(2129289470));
    assert_eq!(priority(0, 60000, 1), Ok(15360255));
    assert_eq!(
        CandidateType::Host.preference(),
        126,
        "RFC 8445 §5.1.2.2 host type preference"
    );
    assert_eq!(CandidateType::PeerReflexive.preference(), 110);
    assert_eq!(CandidateType::ServerReflexive.preference(), 100);
    assert_eq!(CandidateType::Relayed.preference(), 0);
}

#[test]
fn priority_formula_rejects_out_of_range_inputs() {
    assert_eq!(
        priority(127, 0, 1),
        Err(CandidateError::InvalidTypePreference(127))
    );
    assert_eq!(
        priority(126, 0, 0),
        Err(CandidateError::InvalidComponent(0))
    );
    assert_eq!(
        priority(126, 0, 257),
        Err(CandidateError::InvalidComponent(257))
    );
}

#[test]
fn highest_priority_fits_the_limit() {
    assert!(priority(MAX_TYPE_PREFERENCE, u16::MAX, 1).unwrap() <= MAX_PRIORITY);
}

#[test]
fn tcp_local_preference_formula() {
    // RFC 6544 §4.2: 2^13 * direction-pref + other-pref.
    assert_eq!(tcp_local_preference(6, 8191), Ok(57343));
    assert_eq!(tcp_local_preference(7, 8191), Ok(65535));
    assert_eq!(tcp_local_preference(0, 0), Ok(0));
    assert_eq!(tcp_local_preference(4, 100), Ok(4 * 8192 + 100));
    assert_eq!(
        tcp_local_preference(8, 0),
        Err(CandidateError::InvalidDirectionPreference(8))
    );
    assert_eq!(
        tcp_local_preference(0, 8192),
        Err(CandidateError::InvalidOtherPreference(8192))
    );
}

#[test]
fn tcp_direction_preferences_follow_rfc6544() {
    use CandidateType::*;
    for kind in [Host, Relayed] {
        assert_eq!(TcpType::Active.direction_preference(kind), 6);
        assert_eq!(TcpType::Passive.direction_preference(kind), 4);
        assert_eq!(TcpType::So.direction_preference(kind), 2);
    }
    for kind in [ServerReflexive, PeerReflexive] {
        assert_eq!(TcpType::So.direction_preference(kind), 6);
        assert_eq!(TcpType::Active.direction_preference(kind), 4);
        assert_eq!(TcpType::Passive.direction_preference(kind), 2);
    }
}

/// The families of `addresses` in rank order, as a string of '6' and '4'.
fn family_pattern(addresses: &[(&str, IpAddr)]) -> String {
    let ranks = preference_order(addresses);
    let mut by_rank = vec![' '; addresses.len()];
    for (i, &rank) in ranks.iter().enumerate() {
        by_rank[rank] = if addresses[i].1.is_ipv6() { '6' } else { '4' };
    }
    by_rank.into_iter().collect()
}

fn v4(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

fn v6(n: u16) -> IpAddr {
    IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, n])
}

#[test]
fn local_preferences_follow_rfc8421_head_start() {
    // RFC 8421 §4: two IPv4 and six IPv6 addresses: an IPv4 address after four IPv6 ones.
    let mut addresses: Vec<(&str, IpAddr)> = (1..=6).map(|n| ("eth0", v6(n))).collect();
    addresses.push(("eth0", v4(1)));
    addresses.push(("eth0", v4(2)));
    assert_eq!(family_pattern(&addresses), "66664664");
    // Equal numbers: IPv6 first with a head start of 2.
    assert_eq!(
        family_pattern(&[("a", v4(1)), ("a", v4(2)), ("a", v6(1)), ("a", v6(2))]),
        "6644"
    );
    assert_eq!(family_pattern(&[("a", v4(1)), ("a", v6(1))]), "64");
    // Many IPv4 addresses: one IPv6, then the IPv4 ones.
    assert_eq!(
        family_pattern(&[("a", v4(1)), ("a", v4(2)), ("a", v4(3)), ("a", v6(1))]),
        "6444"
    );
    // Nine IPv6, three IPv4: head start 4, then runs of 3.
    let mut addresses: Vec<(&str, IpAddr)> = (1..=9).map(|n| ("a", v6(n))).collect();
    addresses.extend((1..=3).map(|n| ("a", v4(n))));
    assert_eq!(family_pattern(&addresses), "666646664664");
}

#[test]
fn local_preferences_single_family_keep_caller_order() {
    let addresses = [("a", v4(1)), ("a", v4(2)), ("a", v4(3))];
    assert_eq!(local_preferences(&addresses), [65535, 65534, 65533]);
    let addresses = [("a", v6(3)), ("a", v6(1))];
    assert_eq!(local_preferences(&addresses), [65535, 65534]);
    assert!(local_preferences::<&str>(&[]).is_empty());
}

#[test]
fn interfaces_take_turns_within_a_family() {
    // eth0 has three IPv4 addresses, wlan0 one: wlan0's comes second, not fourth.
    let addresses = [
        ("eth0", v4(1)),
        ("eth0", v4(2)),
        ("eth0", v4(3)),
        ("wlan0", v4(4)),
    ];
    assert_eq!(preference_order(&addresses), [0, 2, 3, 1]);
    // Interfaces are ordered by first appearance, whatever their names sort as.
    let addresses = [("zz", v4(1)), ("aa", v4(2)), ("zz", v4(3)), ("aa", v4(4))];
    assert_eq!(preference_order(&addresses), [0, 1, 2, 3]);
    // Interfaces may be keyed by index as well as by name.
    let addresses = [(3u32, v4(1)), (3, v4(2)), (2, v4(3))];
    assert_eq!(preference_order(&addresses), [0, 2, 1]);
}

#[test]
fn poor_addresses_go_last() {
    let addresses = [
        ("lo", ip("127.0.0.1")),
        ("lo", ip("::1")),
        ("eth0", ip("fe80::1")),
        ("eth0", ip("169.254.1.1")),
        ("tun", ip("2001:0:53aa:64c::1")), // Teredo
        ("sit", ip("2002:c000:201::1")),   // 6to4
        ("eth0", ip("fec0::1")),           // site-local
        ("eth0", ip("::ffff:192.0.2.9")),  // IPv4-mapped
        ("eth0", v4(1)),
        ("eth0", ip("fd00::2")), // ULA: ordinary
    ];
    let ranks = preference_order(&addresses);
    assert_eq!(ranks[9], 0, "the ULA is the only ordinary IPv6 address");
    assert_eq!(ranks[8], 1, "then the ordinary IPv4 address");
    assert!(ranks[..8].iter().all(|&r| r >= 2));
    // The demoted ones are intermingled among themselves too: IPv6 first.
    let first_demoted = ranks.iter().position(|&r| r == 2).unwrap();
    assert!(addresses[first_demoted].1.is_ipv6());
}

#[test]
fn every_entry_gets_a_distinct_preference() {
    let mut addresses: Vec<(u32, IpAddr)> = Vec::new();
    for n in 0..300u16 {
        let interface = u32::from(n % 7);
        let address = if n % 3 == 0 {
            v6(n)
        } else {
            IpAddr::from([10, 0, (n >> 8) as u8, n as u8])
        };
        addresses.push((interface, address));
    }
    // A repeated entry still gets its own preference.
    addresses.push((0, v6(0)));
    let mut ranks = preference_order(&addresses);
    ranks.sort_unstable();
    assert_eq!(ranks, (0..addresses.len()).collect::<Vec<_>>());
    let mut udp = local_preferences(&addresses);
    udp.sort_unstable();
    udp.dedup();
    assert_eq!(udp.len(), addresses.len());
    assert_eq!(udp.last(), Some(&65535));
    let mut tcp = tcp_other_preferences(&addresses);
    tcp.sort_unstable();
    tcp.dedup();
    assert_eq!(tcp.len(), addresses.len());
    assert_eq!(tcp.last(), Some(&MAX_TCP_OTHER_PREFERENCE));
}

#[test]
fn preferences_saturate_beyond_their_range() {
    let addresses: Vec<(u8, IpAddr)> = (0..9000u32)
        .map(|n| (0, IpAddr::from((0x0a00_0000 + n).to_be_bytes())))
        .collect();
    let tcp = tcp_other_preferences(&addresses);
    assert_eq!(tcp[0], 8191);
    assert_eq!(tcp[8191], 0);
    assert_eq!(tcp[8999], 0);
    assert_eq!(local_preferences(&addresses)[8999], 65535 - 8999);
}

// ---------------------------------------------------------------------------------------
// Foundations
// ---------------------------------------------------------------------------------------

fn key(
    kind: CandidateType,
    transport: TransportType,
    base: &str,
    server: Option<&str>,
) -> FoundationKey {
    FoundationKey::new(kind, transport, ip(base), server.map(ip))
}

#[test]
fn equal_keys_share_a_foundation() {
    use CandidateType::*;
    let mut set = FoundationSet::new();
    assert!(set.is_empty());
    let host = key(Host, TransportType::Udp, "192.0.2.1", None);
    let f = set.foundation(host);
    assert_eq!(f, "1");
    assert_eq!(set.foundation(host), f);
    assert_eq!(set.get(&host), Some(f));
    assert_eq!(set.len(), 1);
    // Two srflx candidates from the same base and STUN server (e.g. two components).
    let srflx = key(
        ServerReflexive,
        TransportType::Udp,
        "192.0.2.1",
        Some("203.0.113.1"),
    );
    assert_eq!(set.foundation(srflx), set.foundation(srflx));
}

#[test]
fn keys_differing_in_any_part_get_different_foundations() {
    use CandidateType::*;
    let keys = [
        key(Host, TransportType::Udp, "192.0.2.1", None),
        key(Host, TransportType::Tcp, "192.0.2.1", None),
        key(Host, TransportType::Udp, "192.0.2.2", None),
        key(Host, TransportType::Udp, "2001:db8::1", None),
        key(
            ServerReflexive,
            TransportType::Udp,
            "192.0.2.1",
            Some("203.0.113.1"),
        ),
        key(
            ServerReflexive,
            TransportType::Udp,
            "192.0.2.1",
            Some("203.0.113.2"),
        ),
        key(
            Relayed,
            TransportType::Udp,
            "192.0.2.1",
            Some("203.0.113.1"),
        ),
        key(PeerReflexive, TransportType::Udp, "192.0.2.1", None),
    ];
    let mut set = FoundationSet::new();
    let foundations: Vec<String> = keys.iter().map(|&k| set.foundation(k)).collect();
    assert_eq!(foundations, ["1", "2", "3", "4", "5", "6", "7", "8"]);
    assert_eq!(set.len(), keys.len());
    // And asking again, in another order, gives the same answers.
    for (k, f) in keys.iter().zip(&foundations).rev() {
        assert_eq!(&set.foundation(*k), f);
    }
}

#[test]
fn unique_foundations_collide_with_nothing() {
    let mut set = FoundationSet::new();
    let host = key(CandidateType::Host, TransportType::Udp, "192.0.2.1", None);
    let a = set.foundation(host);
    let u = set.unique();
    let b = set.foundation(key(
        CandidateType::Host,
        TransportType::Udp,
        "192.0.2.2",
        None,
    ));
    assert_ne!(u, a);
    assert_ne!(u, b);
    assert_ne!(set.unique(), u);
    assert_eq!(set.len(), 2, "unique() records no key");
    assert_eq!(
        set.get(&key(
            CandidateType::Relayed,
            TransportType::Udp,
            "192.0.2.1",
            None
        )),
        None
    );
}

#[test]
fn foundations_are_valid_and_deterministic() {
    let run = || {
        let mut set = FoundationSet::new();
        (0..50u16)
            .map(|n| {
                set.foundation(key(
                    CandidateType::Host,
                    TransportType::Udp,
                    &format!("10.0.0.{n}"),
                    None,
                ))
            })
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    for f in &first {
        Candidate::builder(
            f.as_str(),
            CandidateType::Host,
            CandidateTransport::Udp,
            addr("192.0.2.1:1"),
        )
        .build()
        .expect("foundations are valid");
    }
}

// ---------------------------------------------------------------------------------------
// ICE credentials
// ---------------------------------------------------------------------------------------

#[test]
fn generated_credentials_are_deterministic_and_valid() {
    let mut a = ChaCha8Rng::seed_from_u64(42);
    let mut b = ChaCha8Rng::seed_from_u64(42);
    let ufrag = generate_ufrag(&mut a);
    let pwd = generate_pwd(&mut a);
    assert_eq!(ufrag, generate_ufrag(&mut b));
    assert_eq!(pwd, generate_pwd(&mut b));
    assert_eq!(ufrag.len(), DEFAULT_UFRAG_LEN);
    assert_eq!(pwd.len(), DEFAULT_PWD_LEN);
    assert_eq!(validate_ufrag(&ufrag), Ok(()));
    assert_eq!(validate_pwd(&pwd), Ok(()));
    // Pinned, so that a change to the generator (and so to every seeded transcript) shows.
    assert_eq!(ufrag, PINNED_UFRAG);
    assert_eq!(pwd, PINNED_PWD);

    let mut c = ChaCha8Rng::seed_from_u64(43);
    assert_ne!(generate_ufrag(&mut c), ufrag);
}

const PINNED_UFRAG: &str = "hbd51/Qu";
const PINNED_PWD: &str = "IR5lG/FzMT2FI3xtSnWY5yag";

#[test]
fn generated_credentials_use_all_ice_chars() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let text = generate_ice_chars(&mut rng, 4096);
    assert_eq!(text.len(), 4096);
    assert!(text.chars().all(is_ice_char));
    let mut seen: Vec<char> = text.chars().collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 64, "all 64 ice-chars appear in 4096 draws");
    assert_eq!(generate_ice_chars(&mut rng, 0), "");
}

#[test]
fn ice_credentials_generate_and_hide_the_password() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let creds = IceCredentials::generate(&mut rng);
    assert_eq!(creds.ufrag().len(), DEFAULT_UFRAG_LEN);
    assert_eq!(creds.pwd().len(), DEFAULT_PWD_LEN);
    assert_eq!(
        IceCredentials::generate(&mut ChaCha8Rng::seed_from_u64(1)),
        creds
    );
    let debug = format!("{creds:?}");
    assert!(debug.contains(creds.ufrag()), "{debug}");
    assert!(!debug.contains(creds.pwd()), "{debug}");
    let given = IceCredentials::new("abcd", "a".repeat(22)).unwrap();
    assert_eq!(
        (given.ufrag(), given.pwd()),
        ("abcd", "a".repeat(22).as_str())
    );
}

#[test]
fn ufrag_and_pwd_validation() {
    assert_eq!(validate_ufrag("abcd"), Ok(()));
    assert_eq!(validate_ufrag("a+/9"), Ok(()));
    assert_eq!(validate_ufrag(&"a".repeat(256)), Ok(()));
    assert_eq!(
        validate_ufrag("abc"),
        Err(IceCredentialError::TooShort {
            field: "ice-ufrag",
            len: 3,
            min: 4
        })
    );
    assert_eq!(
        validate_ufrag(&"a".repeat(257)),
        Err(IceCredentialError::TooLong {
            field: "ice-ufrag",
            len: 257,
            max: 256
        })
    );
    assert_eq!(
        validate_ufrag("ab:cd"),
        Err(IceCredentialError::InvalidChar {
            field: "ice-ufrag",
            index: 2,
            found: ':'
        })
    );
    assert_eq!(validate_pwd(&"p".repeat(22)), Ok(()));
    assert_eq!(
        validate_pwd(&"p".repeat(21)),
        Err(IceCredentialError::TooShort {
            field: "ice-pwd",
            len: 21,
            min: 22
        })
    );
    assert_eq!(
        validate_pwd(&"p".repeat(257)),
        Err(IceCredentialError::TooLong {
            field: "ice-pwd",
            len: 257,
            max: 256
        })
    );
    assert_eq!(
        validate_pwd(&format!("{}é", "p".repeat(22))),
        Err(IceCredentialError::InvalidChar {
            field: "ice-pwd",
            index: 22,
            found: 'é'
        })
    );
    assert_eq!(
        IceCredentials::new("abcd", "short"),
        Err(IceCredentialError::TooShort {
            field: "ice-pwd",
            len: 5,
            min: 22
        })
    );
    assert!(IceCredentials::new("a b", "p".repeat(22)).is_err());
}

#[test]
fn credential_errors_display() {
    let short = IceCredentialError::TooShort {
        field: "ice-pwd",
        len: 5,
        min: 22,
    };
    assert!(short.to_string().contains("ice-pwd") && short.to_string().contains("22"));
    let long = IceCredentialError::TooLong {
        field: "ice-ufrag",
        len: 300,
        max: 256,
    };
    assert!(long.to_string().contains("300"));
    let bad = IceCredentialError::InvalidChar {
        field: "ice-ufrag",
        index: 2,
        found: ':',
    };
    assert!(bad.to_string().contains("':'"));
    let _: &dyn std::error::Error = &bad;
}
