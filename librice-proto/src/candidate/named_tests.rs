use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::*;
use crate::candidate::{IceSdp, MAX_CANDIDATE_LEN};

const UUID_NAME: &str = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";

#[test]
fn named_candidates_round_trip() {
    for line in [
        "candidate:1 1 UDP 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54321 typ host",
        "candidate:1 1 UDP 2122260223 1F4712DB-ea17-4bcf-a596-105139dfd8bf.LOCAL. 9 typ host generation 0 network-id 1",
        "candidate:2 2 UDP 1686052607 peer.local 6000 typ srflx raddr 0.0.0.0 rport 0",
        "candidate:3 1 TCP 1518280447 turn.example.com 443 typ relay raddr 192.0.2.1 rport 5000 tcptype passive",
    ] {
        let named = NamedCandidate::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(named.to_string(), line);
        assert_eq!(NamedCandidate::parse(&named.to_string()), Ok(named));
    }
    let named =
        NamedCandidate::parse(&format!("a=candidate:7  2 udp 5 {UUID_NAME} 9 typ host")).unwrap();
    assert_eq!(named.name().as_str(), UUID_NAME);
    assert!(named.name().is_mdns());
    assert_eq!(named.port(), 9);
    assert_eq!(named.component().get(), 2);
    assert_eq!(named.foundation(), "7");
    assert_eq!(named.priority(), 5);
    assert_eq!(named.candidate_type(), CandidateType::Host);
    assert_eq!(named.transport(), CandidateTransport::Udp);
    assert_eq!(
        named.to_string(),
        format!("candidate:7 2 UDP 5 {UUID_NAME} 9 typ host")
    );
}

#[test]
fn a_related_address_name_is_read_as_unspecified() {
    let named = NamedCandidate::parse(
        "candidate:2 1 UDP 5 peer.local 6000 typ srflx raddr x.local rport 7",
    )
    .unwrap();
    assert_eq!(named.related_address(), Some("0.0.0.0:7".parse().unwrap()));
}

#[test]
fn resolve_makes_a_candidate_with_every_other_field() {
    let named = NamedCandidate::parse(&format!(
        "candidate:7 1 UDP 99 {UUID_NAME} 9 typ host generation 0"
    ))
    .unwrap();
    let c = named.resolve("fd00::7".parse().unwrap()).unwrap();
    assert_eq!(
        c.to_string(),
        "candidate:7 1 UDP 99 fd00::7 9 typ host generation 0"
    );
    assert_eq!(c.extension("generation"), Some("0"));
}

#[test]
fn candidate_parse_still_refuses_names_and_names_refuse_ips() {
    assert_eq!(
        Candidate::parse(&format!("candidate:1 1 UDP 1 {UUID_NAME} 5 typ host")),
        Err(CandidateParseError::HostnameNotSupported {
            field: "address",
            name: UUID_NAME.into()
        })
    );
    assert_eq!(
        NamedCandidate::parse("candidate:1 1 UDP 1 192.0.2.1 5 typ host"),
        Err(CandidateParseError::NotAHostName {
            address: "192.0.2.1".parse().unwrap()
        })
    );
}

#[test]
fn bad_names_are_typed_errors() {
    let long_label = "a".repeat(64);
    let long_name = format!("{}.local", ["abcdefgh"; 28].join("."));
    for (name, error) in [
        ("a..local", HostNameError::EmptyLabel),
        (".local", HostNameError::EmptyLabel),
        (long_label.as_str(), HostNameError::LabelTooLong { len: 64 }),
        (
            long_name.as_str(),
            HostNameError::TooLong {
                len: long_name.len(),
            },
        ),
        (
            "under_score.local",
            HostNameError::InvalidCharacter { character: '_' },
        ),
        (
            "-x.local",
            HostNameError::HyphenAtLabelEdge { label: "-x".into() },
        ),
    ] {
        assert_eq!(HostName::parse(name), Err(error.clone()), "{name}");
        let line = format!("candidate:1 1 UDP 1 {name} 5 typ host");
        if line.len() <= MAX_CANDIDATE_LEN {
            let expected = CandidateParseError::BadHostName {
                field: "address",
                error,
            };
            assert_eq!(
                NamedCandidate::parse(&line),
                Err(expected.clone()),
                "{name}"
            );
            assert_eq!(Candidate::parse(&line), Err(expected.clone()), "{name}");
            assert!(!expected.to_string().is_empty());
            assert!(std::error::Error::source(&expected).is_some());
        }
    }
    assert_eq!(HostName::parse(""), Err(HostNameError::Empty));
    assert_eq!(HostName::parse("."), Err(HostNameError::Empty));
    assert_eq!(
        HostName::parse("1.2.3.4"),
        Err(HostNameError::NumericTopLabel)
    );
    // A label of 63 and a name of 253 bytes are fine.
    assert!(HostName::parse(&format!("{}.local", "a".repeat(63))).is_ok());
    let max = format!("{}.local", "a".repeat(MAX_HOST_NAME_LEN - ".local".len()));
    assert!(
        HostName::parse(&max).is_err(),
        "a 247-byte label is too long"
    );
    let over = format!("{}.abcdefgh.local", vec!["a".repeat(60); 4].join("."));
    assert_eq!(
        HostName::parse(&over),
        Err(HostNameError::TooLong { len: over.len() })
    );
    let fits = format!("{}.local", vec!["a".repeat(61); 4].join("."));
    assert_eq!(fits.len(), 253);
    assert!(HostName::parse(&fits).is_ok());
    // Text that cannot be a name stays a bad address.
    assert!(matches!(
        NamedCandidate::parse("candidate:1 1 UDP 1 1.2.3.256 5 typ host"),
        Err(CandidateParseError::BadAddress { .. })
    ));
}

#[test]
fn only_local_names_are_mdns_and_case_is_ignored() {
    let a = HostName::parse("Peer.LOCAL.").unwrap();
    let b = HostName::parse("peer.local").unwrap();
    assert!(a.is_mdns());
    assert!(a.eq_ignore_case(&b));
    assert_eq!(a.key(), "peer.local");
    assert!(!HostName::parse("local").unwrap().is_mdns());
    assert!(!HostName::parse("example.com").unwrap().is_mdns());
    assert!(!HostName::parse("local.example").unwrap().is_mdns());
    // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.2.1 step 1: one label, then "local".
    assert!(!HostName::parse("host.sub.local").unwrap().is_mdns());
}

#[test]
fn random_names_are_uuid_v4_local_and_seeded() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = HostName::random_mdns(&mut rng);
    let b = HostName::random_mdns(&mut rng);
    assert_ne!(a, b);
    assert_eq!(a, HostName::random_mdns(&mut ChaCha8Rng::seed_from_u64(3)));
    let text = a.as_str();
    assert!(a.is_mdns());
    assert_eq!(text.len(), 36 + ".local".len());
    assert_eq!(&text[14..15], "4", "version 4: {text}");
    assert!(HostName::parse(text).is_ok());
}

#[test]
fn ice_sdp_unresolved_lines_read_as_named_candidates() {
    let ice = IceSdp::parse_media_section(&format!(
        "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
         a=candidate:1 1 udp 5 {UUID_NAME} 9 typ host\n\
         a=candidate:2 1 udp 5 192.0.2.1 9 typ srflx raddr x.local rport 9\n"
    ))
    .unwrap();
    let named = ice.unresolved_candidates()[0].named().unwrap();
    assert_eq!(named.name().as_str(), UUID_NAME);
    assert_eq!(ice.unresolved_candidates()[1].named(), None);
}

#[test]
fn ice_sdp_writes_named_candidates_that_read_back() {
    let mut ice = IceSdp::new(
        crate::candidate::IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap(),
    );
    let named = NamedCandidate::parse(&format!(
        "candidate:1 1 UDP 2122260223 {UUID_NAME} 54321 typ host generation 0"
    ))
    .unwrap();
    ice.add_named_candidate(named.clone()).unwrap();
    let text = ice.write();
    assert!(text.contains(&format!("a={named}\r\n")), "{text}");
    let back = IceSdp::parse_media_section(&text).unwrap();
    assert!(back.candidates().is_empty());
    assert_eq!(back.unresolved_candidates().len(), 1);
    assert_eq!(back.unresolved_candidates()[0].named(), Some(named));
    assert_eq!(back.write(), text);
}
