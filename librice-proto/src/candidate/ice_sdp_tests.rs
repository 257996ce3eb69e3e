//! Tests of the ICE attributes of SDP: the real descriptions captured from Chromium and
//! libnice (`librice-proto/tests/fixtures/sdp/`), session-level merging, every error, the
//! bounds, and write-then-parse round trips of generated values and of mutated fixtures.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::agent::ComponentId;
use crate::candidate::{CandidateTransport, CandidateType, TcpType, generate_ice_chars};

const CHROMIUM_MDNS: &str = include_str!("../../tests/fixtures/sdp/chromium-156-mdns.sdp");
const CHROMIUM_HOST: &str = include_str!("../../tests/fixtures/sdp/chromium-156-host-ips.sdp");
const NICE_LOOPBACK: &str = include_str!("../../tests/fixtures/sdp/libnice-0.1.21-loopback.sdp");
const NICE_TWO: &str = include_str!("../../tests/fixtures/sdp/libnice-0.1.21-two-components.sdp");

const FIXTURES: [(&str, &str); 4] = [
    ("chromium-156-mdns", CHROMIUM_MDNS),
    ("chromium-156-host-ips", CHROMIUM_HOST),
    ("libnice-0.1.21-loopback", NICE_LOOPBACK),
    ("libnice-0.1.21-two-components", NICE_TWO),
];

const CREDS: &str = "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n";

fn media(text: &str) -> IceSdp {
    IceSdp::parse_media_section(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn media_err(text: &str) -> IceSdpError {
    match IceSdp::parse_media_section(text) {
        Ok(ice) => panic!("{text:?} should not parse, got {ice:?}"),
        Err(e) => e,
    }
}

fn description(text: &str) -> Vec<IceSdp> {
    IceSdp::parse_description(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// `ice` writes text that parses back equal and writes identically.
fn assert_round_trip(ice: &IceSdp) {
    let written = ice.write();
    assert!(written.ends_with("\r\n"), "{written:?}");
    assert!(
        !written.replace("\r\n", "").contains(['\r', '\n']),
        "{written:?}"
    );
    let again = IceSdp::parse_media_section(&written)
        .unwrap_or_else(|e| panic!("{written:?} does not parse back: {e}"));
    assert_eq!(&again, ice, "round trip through {written:?}");
    assert_eq!(again.write(), written, "writing is not canonical");
}

// ---------------------------------------------------------------------------------------
// Real descriptions
// ---------------------------------------------------------------------------------------

#[test]
fn chromium_mdns_offer_keeps_local_names_as_unresolved_candidates() {
    let sections = description(CHROMIUM_MDNS);
    assert_eq!(sections.len(), 2, "audio and data channel");
    for ice in &sections {
        assert_eq!(ice.credentials().ufrag(), "UdIt");
        assert_eq!(ice.credentials().pwd(), "tExgjXL+nKALZ/JeYZ1cywdR");
        assert_eq!(ice.options(), &[IceOption::Trickle]);
        assert!(!ice.is_lite());
        assert_eq!(ice.pacing_ms(), None);
        assert!(!ice.end_of_candidates());
        assert!(ice.candidates().is_empty());
        assert_eq!(ice.unresolved_candidates().len(), 2);
        for unresolved in ice.unresolved_candidates() {
            assert!(unresolved.hostname().ends_with(".local"), "{unresolved:?}");
            assert_eq!(unresolved.component(), ComponentId::RTP);
            assert!(unresolved.attribute().contains(unresolved.hostname()));
            let c = unresolved.resolve("192.0.2.2".parse().unwrap()).unwrap();
            assert_eq!(c.candidate_type(), CandidateType::Host);
            assert_eq!(c.extension("network-cost"), Some("999"));
        }
        assert_round_trip(ice);
    }
    assert_eq!(
        sections[0].unresolved_candidates()[0].attribute(),
        "candidate:3899341712 1 udp 2113937151 0df9e7e0-7cba-402d-bad5-fd71defabba6.local 47373 typ host generation 0 network-cost 999"
    );
}

#[test]
fn chromium_host_ip_offer_has_ipv4_and_ipv6_host_candidates() {
    let sections = description(CHROMIUM_HOST);
    assert_eq!(sections.len(), 2);
    for ice in &sections {
        assert_eq!(ice.credentials().ufrag(), "mRiu");
        assert_eq!(ice.credentials().pwd(), "ZYk+A4tU1+SIn/Noew86iRzG");
        assert!(ice.has_option(&IceOption::Trickle));
        assert!(ice.unresolved_candidates().is_empty());
        let candidates = ice.candidates();
        assert_eq!(candidates.len(), 2);
        assert!(
            candidates
                .iter()
                .all(|c| c.candidate_type() == CandidateType::Host
                    && c.transport() == CandidateTransport::Udp
                    && c.extension("generation") == Some("0"))
        );
        assert_eq!(candidates[0].address().ip().to_string(), "192.0.2.2");
        assert_eq!(candidates[1].address().ip().to_string(), "fd00::2");
        assert_round_trip(ice);
    }
    assert_eq!(sections[0].candidates()[0].address().port(), 46869);
    assert_eq!(sections[1].candidates()[1].address().port(), 45363);
}

#[test]
fn libnice_loopback_section_has_udp_and_tcp_host_candidates() {
    // libnice writes one m= section and no session part: both readers take it.
    let ice = media(NICE_LOOPBACK);
    assert_eq!(description(NICE_LOOPBACK), vec![ice.clone()]);
    assert_eq!(ice.credentials().ufrag(), "O1Km");
    assert_eq!(ice.credentials().pwd(), "iQYM6C8e6ygk87JwQeueA7");
    assert!(ice.options().is_empty());
    assert!(!ice.end_of_candidates());
    let transports: Vec<_> = ice.candidates().iter().map(|c| c.transport()).collect();
    assert_eq!(
        transports,
        [
            CandidateTransport::Udp,
            CandidateTransport::Tcp(TcpType::Active),
            CandidateTransport::Tcp(TcpType::Passive),
        ]
    );
    assert!(
        ice.candidates()
            .iter()
            .all(|c| c.candidate_type() == CandidateType::Host && c.address().ip().is_loopback())
    );
    assert_eq!(
        ice.candidates()[1].address().port(),
        9,
        "active TCP: discard port"
    );
    assert_round_trip(&ice);
}

#[test]
fn libnice_two_components_has_six_candidates_each() {
    let ice = media(NICE_TWO);
    assert_eq!(ice.credentials().ufrag(), "hS2P");
    assert_eq!(ice.candidates().len(), 12);
    for component in [ComponentId::RTP, ComponentId::RTCP] {
        let of: Vec<_> = ice
            .candidates()
            .iter()
            .filter(|c| c.component() == component)
            .collect();
        assert_eq!(of.len(), 6);
        assert_eq!(of.iter().filter(|c| c.tcp_type().is_none()).count(), 2);
        assert_eq!(of.iter().filter(|c| c.address().is_ipv6()).count(), 3);
    }
    assert_round_trip(&ice);
}

#[test]
fn whole_description_is_not_one_media_section() {
    assert_eq!(
        media_err(CHROMIUM_HOST),
        IceSdpError::NotOneMediaSection { line: 41 }
    );
}

#[test]
fn written_sections_rebuild_a_description() {
    for (name, text) in FIXTURES {
        let sections = description(text);
        let mut rebuilt = sections[0].write_session();
        for section in &sections {
            rebuilt.push_str("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
            rebuilt.push_str(&section.write_media());
        }
        assert_eq!(description(&rebuilt), sections, "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Session level (RFC 8839 §5.3-§5.6, RFC 8840)
// ---------------------------------------------------------------------------------------

#[test]
fn session_credentials_and_options_apply_to_sections_that_lack_them() {
    let sdp = "v=0\r\n\
               a=ice-ufrag:sess\r\na=ice-pwd:sessionpassword0123456\r\na=ice-options:trickle\r\n\
               m=audio 9 RTP/AVP 0\r\n\
               m=video 9 RTP/AVP 96\r\na=ice-ufrag:vide\r\na=ice-options:renomination\r\n\
               m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
               a=ice-ufrag:data\r\na=ice-pwd:datapassword0123456789\r\n";
    let s = description(sdp);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].credentials().ufrag(), "sess");
    assert_eq!(s[0].credentials().pwd(), "sessionpassword0123456");
    assert_eq!(s[0].options(), &[IceOption::Trickle]);
    assert_eq!(s[1].credentials().ufrag(), "vide");
    assert_eq!(s[1].credentials().pwd(), "sessionpassword0123456");
    assert_eq!(s[1].options(), &[IceOption::Renomination]);
    assert_eq!(s[2].credentials().ufrag(), "data");
    assert_eq!(s[2].credentials().pwd(), "datapassword0123456789");
    assert_eq!(s[2].options(), &[IceOption::Trickle]);
}

#[test]
fn session_lite_pacing_and_end_of_candidates_apply_to_every_section() {
    let sdp = format!(
        "a=ice-lite\na=ice-pacing:20\na=end-of-candidates\nm=audio 9 RTP/AVP 0\n{CREDS}\
         m=video 9 RTP/AVP 0\n{CREDS}a=ice-pacing:30\n"
    );
    let s = description(&sdp);
    assert!(s.iter().all(|s| s.is_lite() && s.end_of_candidates()));
    assert_eq!(s[0].pacing_ms(), Some(20));
    assert_eq!(s[1].pacing_ms(), Some(30));
}

#[test]
fn description_without_media_sections_is_empty() {
    assert_eq!(description("v=0\r\na=ice-lite\r\n"), vec![]);
    assert_eq!(description(""), vec![]);
}

#[test]
fn missing_credentials_name_the_section() {
    let sdp = format!("a=ice-ufrag:abcd\nm=audio 9 RTP/AVP 0\n{CREDS}m=video 9 RTP/AVP 0\n");
    assert_eq!(
        IceSdp::parse_description(&sdp).unwrap_err(),
        IceSdpError::MissingPwd {
            section_line: Some(5)
        }
    );
    let sdp = "m=audio 9 RTP/AVP 0\na=ice-pwd:abcdefghijklmnopqrstuv\n";
    let err = IceSdp::parse_description(sdp).unwrap_err();
    assert_eq!(
        err,
        IceSdpError::MissingUfrag {
            section_line: Some(1)
        }
    );
    assert_eq!(
        err.to_string(),
        "no a=ice-ufrag in the media section of line 1, nor at session level"
    );
    assert_eq!(
        media_err("a=ice-pwd:abcdefghijklmnopqrstuv"),
        IceSdpError::MissingUfrag { section_line: None }
    );
}

#[test]
fn candidate_at_session_level_is_an_error() {
    let sdp = format!("{CREDS}a=candidate:1 1 UDP 5 192.0.2.1 9 typ host\nm=audio 9 RTP/AVP 0\n");
    assert_eq!(
        IceSdp::parse_description(&sdp).unwrap_err(),
        IceSdpError::CandidateAtSessionLevel { line: 3 }
    );
}

#[test]
fn duplicates_at_session_and_media_level_are_not_duplicates() {
    let sdp = format!("{CREDS}m=audio 9 RTP/AVP 0\n{CREDS}");
    assert_eq!(description(&sdp).len(), 1);
}

// ---------------------------------------------------------------------------------------
// Reading one section
// ---------------------------------------------------------------------------------------

#[test]
fn lines_end_in_crlf_or_lf_and_surrounding_whitespace_is_ignored() {
    let crlf = media("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n");
    let lf = media("a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv");
    let messy = media("  a=ice-ufrag: abcd \t\r\n\r\n\ta=ICE-PWD:abcdefghijklmnopqrstuv\r\r\n");
    assert_eq!(crlf, lf);
    assert_eq!(crlf, messy);
}

#[test]
fn non_ice_lines_are_skipped() {
    let ice = media(&format!(
        "m=audio 9 RTP/AVP 0\nc=IN IP4 0.0.0.0\na=rtpmap:0 PCMU/8000\na=sendrecv\n\
         a=ice-mismatch\na=remote-candidates:1 192.0.2.1 9\nb=AS:64\n{CREDS}garbage\n\u{1F600}\n"
    ));
    assert_eq!(ice, media(CREDS));
}

#[test]
fn flags_and_pacing_are_read() {
    let ice = media(&format!(
        "{CREDS}a=ice-lite\na=end-of-candidates\na=ice-pacing:0000000050\n"
    ));
    assert!(ice.is_lite());
    assert!(ice.end_of_candidates());
    assert_eq!(ice.pacing_ms(), Some(50));
    assert_round_trip(&ice);
    let max = media(&format!("{CREDS}a=ice-pacing:9999999999\n"));
    assert_eq!(max.pacing_ms(), Some(MAX_ICE_PACING_MS));
    assert_round_trip(&max);
}

#[test]
fn options_accumulate_over_lines_once_each_and_keep_unknown_tags() {
    let ice = media(&format!(
        "{CREDS}a=ice-options:ice2 trickle\na=ice-options:trickle  renomination rtp+ecn\n"
    ));
    assert_eq!(
        ice.options(),
        &[
            IceOption::Other("ice2".into()),
            IceOption::Trickle,
            IceOption::Renomination,
            IceOption::Other("rtp+ecn".into()),
        ]
    );
    assert!(
        ice.write()
            .contains("a=ice-options:ice2 trickle renomination rtp+ecn\r\n")
    );
    assert_round_trip(&ice);
    // Tags are compared as written.
    assert_eq!(
        IceOption::parse("Trickle").unwrap(),
        IceOption::Other("Trickle".into())
    );
}

#[test]
fn candidate_types_and_tcp_are_read() {
    let ice = media(&format!(
        "{CREDS}\
         a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host\n\
         a=candidate:2 1 UDP 1694498815 203.0.113.4 5001 typ srflx raddr 192.0.2.1 rport 5000\n\
         a=candidate:3 1 UDP 16777215 198.51.100.7 5002 typ relay raddr 203.0.113.4 rport 5001\n\
         a=candidate:4 1 TCP 1518280447 2001:db8::1 9 typ host tcptype active\n\
         a=candidate:5 2 udp 1845501695 203.0.113.4 5003 typ prflx raddr 0.0.0.0 rport 9\n"
    ));
    let types: Vec<_> = ice
        .candidates()
        .iter()
        .map(|c| c.candidate_type())
        .collect();
    assert_eq!(
        types,
        [
            CandidateType::Host,
            CandidateType::ServerReflexive,
            CandidateType::Relayed,
            CandidateType::Host,
            CandidateType::PeerReflexive,
        ]
    );
    assert_round_trip(&ice);
}

#[test]
fn hostname_in_raddr_or_both_is_unresolved() {
    let ice = media(&format!(
        "{CREDS}\
         a=candidate:1 1 udp 5 203.0.113.4 5000 typ srflx raddr me.local rport 9\n\
         a=candidate:2 1 udp 5 peer.local 5000 typ srflx raddr me.local rport 9\n\
         a=candidate:3 1 tcp 5 peer.local 9 typ host tcptype active\n"
    ));
    let u = ice.unresolved_candidates();
    assert_eq!(u.len(), 3);
    assert_eq!(u[0].hostname(), "me.local");
    assert_eq!(u[1].hostname(), "peer.local");
    let c = u[0].resolve("fd00::1".parse().unwrap()).unwrap();
    assert_eq!(
        c.to_string(),
        "candidate:1 1 UDP 5 203.0.113.4 5000 typ srflx raddr :: rport 9"
    );
    let c = u[1].resolve("192.0.2.9".parse().unwrap()).unwrap();
    assert_eq!(
        c.to_string(),
        "candidate:2 1 UDP 5 192.0.2.9 5000 typ srflx raddr 0.0.0.0 rport 9"
    );
    let c = u[2].resolve("192.0.2.9".parse().unwrap()).unwrap();
    assert_eq!(c.tcp_type(), Some(TcpType::Active));
    assert_round_trip(&ice);
}

#[test]
fn unresolved_candidate_with_another_fault_is_a_bad_candidate() {
    for (line, inner) in [
        (
            "a=candidate:1 1 udp 5 peer.local 9 typ nonsense",
            CandidateParseError::UnknownType("nonsense".into()),
        ),
        (
            "a=candidate:1 1 tcp 5 peer.local 9 typ host",
            CandidateParseError::MissingTcpType,
        ),
        (
            "a=candidate:1 1 udp 5 peer.local 9 typ srflx raddr me.local",
            CandidateParseError::RaddrWithoutRport,
        ),
        (
            "a=candidate:1 1 udp 5 peer.local 9 typ srflx raddr 1.2.3.256 rport 9",
            CandidateParseError::BadAddress {
                field: "raddr",
                value: "1.2.3.256".into(),
            },
        ),
    ] {
        assert_eq!(
            media_err(&format!("{CREDS}{line}\n")),
            IceSdpError::BadCandidate {
                line: 3,
                error: inner
            },
            "{line}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn duplicate_value_attributes_are_errors() {
    for (text, attribute, line) in [
        (format!("{CREDS}a=ice-ufrag:abcd\n"), "ice-ufrag", 3),
        (
            format!("{CREDS}a=ice-pwd:abcdefghijklmnopqrstuv\n"),
            "ice-pwd",
            3,
        ),
        (
            format!("a=ice-pacing:5\n{CREDS}a=ice-pacing:5\n"),
            "ice-pacing",
            4,
        ),
    ] {
        assert_eq!(
            media_err(&text),
            IceSdpError::Duplicate { attribute, line },
            "{text:?}"
        );
    }
    // Flags may repeat.
    let ice = media(&format!(
        "{CREDS}a=ice-lite\na=ice-lite\na=end-of-candidates\na=end-of-candidates\n"
    ));
    assert!(ice.is_lite() && ice.end_of_candidates());
}

#[test]
fn invalid_credentials_name_the_line_and_keep_the_cause_in_source() {
    use std::error::Error;

    for (text, error) in [
        (
            "a=ice-ufrag:abc",
            IceCredentialError::TooShort {
                field: "ice-ufrag",
                len: 3,
                min: 4,
            },
        ),
        (
            "a=ice-ufrag",
            IceCredentialError::TooShort {
                field: "ice-ufrag",
                len: 0,
                min: 4,
            },
        ),
        (
            "a=ice-pwd:short",
            IceCredentialError::TooShort {
                field: "ice-pwd",
                len: 5,
                min: 22,
            },
        ),
        (
            "a=ice-ufrag:ab-cd",
            IceCredentialError::InvalidChar {
                field: "ice-ufrag",
                index: 2,
                found: '-',
            },
        ),
    ] {
        let err = media_err(&format!("m=audio 9 RTP/AVP 0\n{text}\n"));
        assert_eq!(err, IceSdpError::InvalidCredential { line: 2, error });
        let source = err.source().expect("the credential error is the source");
        assert_eq!(source.to_string(), error.to_string());
        assert!(
            !err.to_string().contains(&error.to_string()),
            "inner error in Display and source: {err}"
        );
    }
    let long = "x".repeat(257);
    let err = media_err(&format!("a=ice-pwd:{long}\n"));
    assert_eq!(
        err,
        IceSdpError::InvalidCredential {
            line: 1,
            error: IceCredentialError::TooLong {
                field: "ice-pwd",
                len: 257,
                max: 256
            }
        }
    );
    assert_eq!(err.to_string(), "line 1: invalid a=ice-pwd");
    // 256 characters are accepted on receipt (RFC 8839 §5.4).
    let ice = media(&format!(
        "a=ice-ufrag:{}\na=ice-pwd:{}\n",
        "u".repeat(256),
        "p".repeat(256)
    ));
    assert_round_trip(&ice);
}

#[test]
fn bad_candidate_names_the_line_and_keeps_the_cause_in_source() {
    use std::error::Error;

    let err = media_err(&format!(
        "m=audio 9 RTP/AVP 0\n{CREDS}\na=candidate:1 1 sctp 5 192.0.2.1 9 typ host\n"
    ));
    let inner = CandidateParseError::UnknownTransport("sctp".into());
    assert_eq!(
        err,
        IceSdpError::BadCandidate {
            line: 5,
            error: inner.clone()
        }
    );
    assert_eq!(err.to_string(), "line 5: bad a=candidate");
    assert_eq!(err.source().unwrap().to_string(), inner.to_string());
    assert!(matches!(
        media_err(&format!("{CREDS}a=candidate\n")),
        IceSdpError::BadCandidate { line: 3, .. }
    ));
}

#[test]
fn bad_options_are_errors() {
    for (value, option) in [
        ("", ""),
        ("   ", ""),
        ("trickle no-dashes", "no-dashes"),
        ("caf\u{e9}", "caf\u{e9}"),
    ] {
        assert_eq!(
            media_err(&format!("{CREDS}a=ice-options:{value}\n")),
            IceSdpError::InvalidIceOption {
                line: Some(3),
                option: option.into()
            },
            "{value:?}"
        );
    }
    let long = "a".repeat(MAX_ICE_OPTION_LEN + 1);
    assert_eq!(
        media_err(&format!("{CREDS}a=ice-options:{long}\n")),
        IceSdpError::InvalidIceOption {
            line: Some(3),
            option: "a".repeat(MAX_ICE_OPTION_LEN)
        }
    );
    let many: Vec<String> = (0..=MAX_ICE_OPTIONS).map(|i| format!("t{i}")).collect();
    assert_eq!(
        media_err(&format!("{CREDS}a=ice-options:{}\n", many.join(" "))),
        IceSdpError::TooManyIceOptions { line: Some(3) }
    );
    // Repeats do not count towards the limit.
    let repeated = vec!["trickle"; 10 * MAX_ICE_OPTIONS].join(" ");
    assert_eq!(
        media(&format!("{CREDS}a=ice-options:{repeated}\n")).options(),
        &[IceOption::Trickle]
    );
}

#[test]
fn bad_pacing_is_an_error() {
    for value in ["", "-1", "+5", "5ms", "12345678901", "1 2", "\u{661}"] {
        let err = media_err(&format!("{CREDS}a=ice-pacing:{value}\n"));
        assert!(
            matches!(&err, IceSdpError::InvalidPacing { line: Some(3), .. }),
            "{value:?}: {err:?}"
        );
    }
    let err = media_err(&format!("{CREDS}a=ice-pacing:{}\n", "9".repeat(1000)));
    assert_eq!(
        err,
        IceSdpError::InvalidPacing {
            line: Some(3),
            value: "9".repeat(16)
        }
    );
}

#[test]
fn bounds_are_enforced() {
    let too_long = format!("{CREDS}{}", " ".repeat(MAX_SDP_LEN));
    assert_eq!(
        media_err(&too_long),
        IceSdpError::TooLong {
            len: too_long.len()
        }
    );
    assert_eq!(
        IceSdp::parse_description(&too_long).unwrap_err(),
        IceSdpError::TooLong {
            len: too_long.len()
        }
    );

    let line = "a=candidate:1 1 UDP 5 192.0.2.1 9 typ host\n";
    let name = "a=candidate:1 1 UDP 5 x.local 9 typ host\n";
    let mut text = CREDS.to_owned();
    for i in 0..MAX_SDP_CANDIDATES {
        text.push_str(if i % 2 == 0 { line } else { name });
    }
    let ice = media(&text);
    assert_eq!(ice.candidates().len(), MAX_SDP_CANDIDATES / 2);
    assert_eq!(ice.unresolved_candidates().len(), MAX_SDP_CANDIDATES / 2);
    assert_round_trip(&ice);
    text.push_str(name);
    assert_eq!(
        media_err(&text),
        IceSdpError::TooManyCandidates {
            line: Some(MAX_SDP_CANDIDATES + 3)
        }
    );

    let mut sdp = CREDS.to_owned();
    sdp.push_str(&"m=audio 9 RTP/AVP 0\n".repeat(MAX_MEDIA_SECTIONS));
    assert_eq!(description(&sdp).len(), MAX_MEDIA_SECTIONS);
    sdp.push_str("m=audio 9 RTP/AVP 0\n");
    assert_eq!(
        IceSdp::parse_description(&sdp).unwrap_err(),
        IceSdpError::TooManyMediaSections {
            line: MAX_MEDIA_SECTIONS + 3
        }
    );
}

#[test]
fn setters_check_their_bounds() {
    let mut ice = media(CREDS);
    assert_eq!(
        ice.set_pacing_ms(Some(MAX_ICE_PACING_MS + 1)),
        Err(IceSdpError::InvalidPacing {
            line: None,
            value: "10000000000".into()
        })
    );
    ice.set_pacing_ms(Some(MAX_ICE_PACING_MS)).unwrap();
    ice.set_pacing_ms(None).unwrap();
    assert_eq!(ice.pacing_ms(), None);
    assert_eq!(
        ice.add_option(IceOption::Other(String::new())),
        Err(IceSdpError::InvalidIceOption {
            line: None,
            option: String::new()
        })
    );
    ice.add_option(IceOption::Other("renomination".into()))
        .unwrap();
    assert_eq!(ice.options(), &[IceOption::Renomination]);
    let err = IceSdpError::TooManyCandidates { line: None };
    assert_eq!(
        err.to_string(),
        format!("more than {MAX_SDP_CANDIDATES} candidates in one media section")
    );
}

#[test]
fn every_error_displays_without_the_password() {
    let pwd = "secretsecretsecretsecret!";
    let err = media_err(&format!("a=ice-ufrag:abcd\na=ice-pwd:{pwd}\n"));
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    let ice = media(CREDS);
    assert!(!format!("{ice:?}").contains("abcdefghijklmnopqrstuv"));
}

// ---------------------------------------------------------------------------------------
// Generated round trips and mutation search
// ---------------------------------------------------------------------------------------

const CANDIDATE_POOL: &[&str] = &[
    "candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host",
    "candidate:2 2 udp 1694498815 203.0.113.4 5001 typ srflx raddr 192.0.2.1 rport 5000",
    "candidate:3 1 UDP 16777215 2001:db8::7 5002 typ relay raddr 203.0.113.4 rport 5001",
    "candidate:4 1 TCP 1518280447 192.0.2.1 9 typ host tcptype active",
    "candidate:5 1 tcp 1518214911 192.0.2.1 5003 typ host tcptype passive generation 0",
    "candidate:6 256 UDP 0 0.0.0.0 0 typ prflx raddr :: rport 9 network-id 1 network-cost 10",
];

const UNRESOLVED_POOL: &[&str] = &[
    "a=candidate:7 1 udp 2113937151 0df9e7e0-7cba-402d-bad5-fd71defabba6.local 47373 typ host generation 0",
    "a=candidate:8 1 udp 5 203.0.113.4 5000 typ srflx raddr me.local rport 9",
    "a=candidate:9 2 TCP 5 peer.example 9 typ host tcptype so",
];

fn random_ice(rng: &mut ChaCha8Rng) -> IceSdp {
    let ufrag_len = [4, 8, 32, 256][rng.next_u32() as usize % 4];
    let pwd_len = [22, 24, 256][rng.next_u32() as usize % 3];
    let credentials = IceCredentials::new(
        generate_ice_chars(rng, ufrag_len),
        generate_ice_chars(rng, pwd_len),
    )
    .unwrap();
    let mut ice = IceSdp::new(credentials);
    for _ in 0..rng.next_u32() % 5 {
        let option = match rng.next_u32() % 4 {
            0 => IceOption::Trickle,
            1 => IceOption::Renomination,
            _ => {
                let len = 1 + rng.next_u32() as usize % MAX_ICE_OPTION_LEN;
                IceOption::Other(generate_ice_chars(rng, len))
            }
        };
        ice.add_option(option).unwrap();
    }
    ice.set_lite(rng.next_u32().is_multiple_of(2));
    let pacing = match rng.next_u32() % 3 {
        0 => None,
        1 => Some(u64::from(rng.next_u32() % 1000)),
        _ => Some(rng.next_u64() % (MAX_ICE_PACING_MS + 1)),
    };
    ice.set_pacing_ms(pacing).unwrap();
    for _ in 0..rng.next_u32() % 8 {
        let line = CANDIDATE_POOL[rng.next_u32() as usize % CANDIDATE_POOL.len()];
        ice.add_candidate(Candidate::parse(line).unwrap()).unwrap();
    }
    let mut text = String::new();
    for _ in 0..rng.next_u32() % 3 {
        text.push_str(UNRESOLVED_POOL[rng.next_u32() as usize % UNRESOLVED_POOL.len()]);
        text.push('\n');
    }
    ice.unresolved = media(&format!("{CREDS}{text}")).unresolved;
    ice.set_end_of_candidates(rng.next_u32().is_multiple_of(2));
    ice
}

#[test]
fn generated_values_write_then_parse_back_equal() {
    let mut rng = ChaCha8Rng::seed_from_u64(8839);
    for _ in 0..500 {
        let ice = random_ice(&mut rng);
        assert_round_trip(&ice);
        // Split over the two levels of a description, it reads back equal too.
        let sdp = format!(
            "v=0\r\n{}m=audio 9 RTP/AVP 0\r\n{}",
            ice.write_session(),
            ice.write_media()
        );
        assert_eq!(description(&sdp), vec![ice]);
    }
}

/// Random byte edits of the fixtures never panic, and whatever still parses round-trips.
#[test]
fn mutated_fixtures_never_panic_and_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(8840);
    let alphabet: &[u8] = b"a=:\r\n .-+/0123456789ufragpwdicelitecandidatetypUDPTCP\x00\xff";
    let mut parsed = 0;
    for round in 0..3000 {
        let (_, fixture) = FIXTURES[round % FIXTURES.len()];
        let mut bytes = fixture.as_bytes().to_vec();
        for _ in 0..1 + rng.next_u32() % 6 {
            let at = rng.next_u32() as usize % bytes.len();
            let byte = alphabet[rng.next_u32() as usize % alphabet.len()];
            match rng.next_u32() % 3 {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(sections) = IceSdp::parse_description(&text) {
            sections.iter().for_each(assert_round_trip);
        }
        if let Ok(ice) = IceSdp::parse_media_section(&text) {
            assert_round_trip(&ice);
            parsed += 1;
        }
        // Errors display without panicking.
        if let Err(e) = IceSdp::parse_media_section(&text) {
            assert!(!e.to_string().is_empty());
        }
    }
    assert!(
        parsed > 100,
        "too few mutants parse ({parsed}) to test round trips"
    );
}
