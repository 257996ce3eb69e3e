//! Tests of candidates and their text form: SDP round trips of lines real agents write,
//! every parse and build error, and a deterministic mutation search for panics and round-trip
//! failures. Priorities, foundations and credentials are tested in `derived_tests.rs`.

use std::net::SocketAddr;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::TransportType;
use crate::agent::ComponentId;

fn parse(text: &str) -> Candidate {
    Candidate::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("valid socket address")
}

fn parse_err(text: &str) -> CandidateParseError {
    match Candidate::parse(text) {
        Ok(c) => panic!("{text:?} should not parse, got {c:?}"),
        Err(e) => e,
    }
}

/// Parses `text`, checks it writes `canonical`, and that `canonical` parses back equal.
fn round_trip(text: &str, canonical: &str) -> Candidate {
    let candidate = parse(text);
    assert_eq!(candidate.to_string(), canonical, "written form of {text:?}");
    assert_eq!(parse(canonical), candidate, "re-parse of {canonical:?}");
    candidate
}

// ---------------------------------------------------------------------------------------
// Round trips of lines as real agents write them
// ---------------------------------------------------------------------------------------

#[test]
fn libnice_host_round_trips_unchanged() {
    let line = "candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host";
    let c = round_trip(line, line);
    assert_eq!(c.foundation(), "1");
    assert_eq!(c.component().get(), 1);
    assert_eq!(c.transport(), CandidateTransport::Udp);
    assert_eq!(c.transport_type(), TransportType::Udp);
    assert_eq!(c.tcp_type(), None);
    assert_eq!(c.priority(), 2015363327);
    assert_eq!(c.address(), addr("127.0.0.1:39749"));
    assert_eq!(c.candidate_type(), CandidateType::Host);
    assert_eq!(c.related_address(), None);
    assert_eq!(c.extensions().len(), 0);
}

#[test]
fn aioice_host_with_hex_foundation_and_lowercase_udp() {
    let c = round_trip(
        "candidate:4f1a5a9e1c3b2d7e8f90a1b2c3d4e5f6 1 udp 2130706431 127.0.0.1 52324 typ host",
        "candidate:4f1a5a9e1c3b2d7e8f90a1b2c3d4e5f6 1 UDP 2130706431 127.0.0.1 52324 typ host",
    );
    assert_eq!(c.foundation().len(), 32);
    assert_eq!(c.priority(), 2130706431);
}

#[test]
fn chromium_srflx_keeps_extensions_in_order() {
    let c = round_trip(
        "candidate:842163049 1 udp 1677729535 1.2.3.4 54321 typ srflx raddr 10.0.0.1 rport 54321 generation 0 ufrag abcd network-id 1 network-cost 50",
        "candidate:842163049 1 UDP 1677729535 1.2.3.4 54321 typ srflx raddr 10.0.0.1 rport 54321 generation 0 ufrag abcd network-id 1 network-cost 50",
    );
    assert_eq!(c.candidate_type(), CandidateType::ServerReflexive);
    assert_eq!(c.related_address(), Some(addr("10.0.0.1:54321")));
    let extensions: Vec<_> = c.extensions().collect();
    assert_eq!(
        extensions,
        [
            ("generation", "0"),
            ("ufrag", "abcd"),
            ("network-id", "1"),
            ("network-cost", "50")
        ]
    );
    assert_eq!(c.extension("ufrag"), Some("abcd"));
    assert_eq!(c.extension("network-cost"), Some("50"));
    assert_eq!(c.extension("missing"), None);
}

#[test]
fn chromium_privacy_srflx_with_zero_related_address() {
    let line = "candidate:1 1 UDP 1685987071 203.0.113.9 61000 typ srflx raddr 0.0.0.0 rport 0";
    let c = round_trip(line, line);
    assert_eq!(c.related_address(), Some(addr("0.0.0.0:0")));
}

#[test]
fn tcp_active_on_discard_port() {
    let line = "candidate:2 1 TCP 1019216383 127.0.0.1 9 typ host tcptype active";
    let c = round_trip(line, line);
    assert_eq!(c.transport(), CandidateTransport::Tcp(TcpType::Active));
    assert_eq!(c.transport_type(), TransportType::Tcp);
    assert_eq!(c.tcp_type(), Some(TcpType::Active));
    assert_eq!(c.address().port(), DISCARD_PORT);
}

#[test]
fn tcp_passive_and_so() {
    let passive = round_trip(
        "candidate:3 1 tcp 1518280447 192.0.2.1 50000 typ host tcptype passive generation 0",
        "candidate:3 1 TCP 1518280447 192.0.2.1 50000 typ host tcptype passive generation 0",
    );
    assert_eq!(passive.tcp_type(), Some(TcpType::Passive));
    let so = round_trip(
        "candidate:4 1 TCP 1694498815 203.0.113.4 50001 typ srflx raddr 192.0.2.1 rport 50001 tcptype so",
        "candidate:4 1 TCP 1694498815 203.0.113.4 50001 typ srflx raddr 192.0.2.1 rport 50001 tcptype so",
    );
    assert_eq!(so.tcp_type(), Some(TcpType::So));
}

#[test]
fn tcptype_after_extensions_is_written_in_canonical_place() {
    round_trip(
        "candidate:3 1 TCP 1518280447 192.0.2.1 9 typ host generation 0 tcptype active network-id 2",
        "candidate:3 1 TCP 1518280447 192.0.2.1 9 typ host tcptype active generation 0 network-id 2",
    );
}

#[test]
fn ipv6_host_loopback_and_global() {
    let c = round_trip(
        "candidate:5 1 UDP 2122262783 ::1 40000 typ host",
        "candidate:5 1 UDP 2122262783 ::1 40000 typ host",
    );
    assert_eq!(c.address(), addr("[::1]:40000"));
    // Written in the RFC 5952 form, so a long form is shortened.
    let c = round_trip(
        "candidate:6 2 UDP 2122262782 2001:DB8:0:0:0:0:0:1 40001 typ host",
        "candidate:6 2 UDP 2122262782 2001:db8::1 40001 typ host",
    );
    assert_eq!(c.component().get(), 2);
}

#[test]
fn relay_with_related_address() {
    let line = "candidate:7 1 UDP 41885439 203.0.113.5 3478 typ relay raddr 198.51.100.7 rport 60000 generation 0";
    let c = round_trip(line, line);
    assert_eq!(c.candidate_type(), CandidateType::Relayed);
    assert_eq!(c.related_address(), Some(addr("198.51.100.7:60000")));
    // An IPv6 relay allocated for an IPv4 client (RFC 8656 §7.2).
    let line =
        "candidate:8 1 UDP 16776959 2001:db8::5 3478 typ relay raddr 198.51.100.7 rport 60000";
    assert_eq!(
        round_trip(line, line).related_address(),
        Some(addr("198.51.100.7:60000"))
    );
}

#[test]
fn prflx_round_trips() {
    let line =
        "candidate:9 1 UDP 1845501695 198.51.100.1 40002 typ prflx raddr 192.0.2.1 rport 40002";
    assert_eq!(
        round_trip(line, line).candidate_type(),
        CandidateType::PeerReflexive
    );
}

#[test]
fn firefox_host() {
    let line = "candidate:0 1 UDP 2122252543 192.168.1.2 54321 typ host";
    round_trip(line, line);
}

#[test]
fn a_line_prefix_and_trailing_crlf() {
    let c = parse("a=candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host\r\n");
    assert_eq!(
        c.to_string(),
        "candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host"
    );
    assert_eq!(
        c,
        parse("candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host")
    );
}

#[test]
fn without_candidate_prefix() {
    let bare = parse("1 1 UDP 2015363327 127.0.0.1 39749 typ host");
    assert_eq!(
        bare,
        parse("candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host")
    );
    // "a=" alone, as some signalling layers pass it, is accepted too.
    assert_eq!(bare, parse("a=1 1 UDP 2015363327 127.0.0.1 39749 typ host"));
}

#[test]
fn keywords_are_case_insensitive() {
    round_trip(
        "A=CANDIDATE:1 1 tcp 1 192.0.2.1 5 TYP HOST TCPTYPE PASSIVE",
        "candidate:1 1 TCP 1 192.0.2.1 5 typ host tcptype passive",
    );
    round_trip(
        "candidate:1 1 Udp 1 192.0.2.1 5 Typ SrFlx RADDR 10.0.0.1 RPort 6",
        "candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr 10.0.0.1 rport 6",
    );
}

#[test]
fn extension_names_and_values_keep_their_case() {
    let line = "candidate:1 1 UDP 1 192.0.2.1 5 typ host X-Vendor Some/Value+1";
    assert_eq!(
        round_trip(line, line).extension("X-Vendor"),
        Some("Some/Value+1")
    );
}

#[test]
fn whitespace_runs_and_tabs_are_separators() {
    round_trip(
        "  candidate:1  1\tUDP   2015363327 127.0.0.1 39749 typ   host  generation\t0 ",
        "candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host generation 0",
    );
}

#[test]
fn leading_zeros_in_numbers() {
    round_trip(
        "candidate:1 001 UDP 0000000001 192.0.2.1 00080 typ host",
        "candidate:1 1 UDP 1 192.0.2.1 80 typ host",
    );
}

#[test]
fn numeric_limits() {
    let c =
        parse("candidate:1 256 UDP 2147483647 192.0.2.1 65535 typ relay raddr 192.0.2.2 rport 0");
    assert_eq!(c.component().get(), 256);
    assert_eq!(c.priority(), MAX_PRIORITY);
    assert_eq!(c.address().port(), 65535);
    // Priority 0 is what the formula gives a relayed candidate of component 256 with local
    // preference 0; it is accepted.
    assert_eq!(
        parse("candidate:1 1 UDP 0 192.0.2.1 1 typ relay").priority(),
        0
    );
}

#[test]
fn host_with_related_address_is_kept() {
    // RFC 8839 §5.1 says to omit it; some agents send it anyway.
    let line = "candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host raddr 0.0.0.0 rport 0";
    assert_eq!(
        round_trip(line, line).related_address(),
        Some(addr("0.0.0.0:0"))
    );
}

#[test]
fn reflexive_without_related_address_is_accepted() {
    let line = "candidate:1 1 UDP 1694498815 203.0.113.4 50001 typ srflx";
    assert_eq!(round_trip(line, line).related_address(), None);
}

#[test]
fn from_str_matches_parse() {
    let line = "candidate:1 1 UDP 2015363327 127.0.0.1 39749 typ host";
    let parsed: Candidate = line.parse().unwrap();
    assert_eq!(parsed, parse(line));
}

// ---------------------------------------------------------------------------------------
// Parse errors, one test per variant
// ---------------------------------------------------------------------------------------

const HOST: &str = "candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host";

#[test]
fn error_too_long() {
    let long = format!("{HOST}{}", " x y".repeat(300));
    assert!(long.len() > MAX_CANDIDATE_LEN);
    assert_eq!(
        parse_err(&long),
        CandidateParseError::TooLong { len: long.len() }
    );
}

#[test]
fn error_too_long_once_written() {
    // Within the limit as given, but not once the "candidate:" prefix is written back.
    let body = "1 1 UDP 2130706431 192.0.2.1 5000 typ host";
    let mut line = body.to_owned();
    while line.len() + " ext v".len() <= MAX_CANDIDATE_LEN {
        line.push_str(" ext v");
    }
    assert!(line.len() <= MAX_CANDIDATE_LEN);
    assert!(line.len() + "candidate:".len() > MAX_CANDIDATE_LEN);
    assert!(matches!(
        parse_err(&line),
        CandidateParseError::TooLong { len } if len == line.len() + "candidate:".len()
    ));
}

#[test]
fn error_missing_field_for_each_field() {
    let cases = [
        ("", "foundation"),
        ("a=candidate:", "foundation"),
        ("candidate:1", "component"),
        ("candidate:1 1", "transport"),
        ("candidate:1 1 UDP", "priority"),
        ("candidate:1 1 UDP 1", "address"),
        ("candidate:1 1 UDP 1 192.0.2.1", "port"),
        ("candidate:1 1 UDP 1 192.0.2.1 5", "typ"),
        ("candidate:1 1 UDP 1 192.0.2.1 5 typ", "type"),
    ];
    for (text, field) in cases {
        assert_eq!(
            parse_err(text),
            CandidateParseError::MissingField { field },
            "{text:?}"
        );
    }
}

#[test]
fn error_bad_foundation() {
    for foundation in ["a-b", "x_y", "é", &"a".repeat(33)] {
        let text = format!("candidate:{foundation} 1 UDP 1 192.0.2.1 5 typ host");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::BadFoundation(foundation.to_owned())
        );
    }
    // 32 ice-chars is the maximum, and "+" and "/" are ice-chars.
    let foundation = format!("{}+/", "a".repeat(30));
    parse(&format!(
        "candidate:{foundation} 1 UDP 1 192.0.2.1 5 typ host"
    ));
}

#[test]
fn error_bad_component() {
    // Component 0 names no component (RFC 8445 §5.1.2.1), however it is written.
    for component in ["0", "00", "000", "257", "1000", "+1", "-1", "x", "1.0"] {
        let text = format!("candidate:1 {component} UDP 1 192.0.2.1 5 typ host");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::BadComponent(component.to_owned())
        );
    }
}

#[test]
fn error_unknown_transport() {
    for transport in ["SCTP", "ssltcp", "TLS", "udp6"] {
        let text = format!("candidate:1 1 {transport} 1 192.0.2.1 5 typ host");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::UnknownTransport(transport.to_owned())
        );
    }
}

#[test]
fn error_bad_priority() {
    for priority in ["2147483648", "4294967295", "99999999999", "-1", "+5", "1e3"] {
        let text = format!("candidate:1 1 UDP {priority} 192.0.2.1 5 typ host");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::BadPriority(priority.to_owned())
        );
    }
}

#[test]
fn error_bad_address() {
    for address in [
        "1.2.3.256",
        "1.2.3",
        "::g",
        "[::1]",
        "fe80::1%eth0",
        "192.0.2.1:5",
    ] {
        let text = format!("candidate:1 1 UDP 1 {address} 5 typ host");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::BadAddress {
                field: "address",
                value: address.to_owned()
            },
            "{address}"
        );
    }
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr 300.1.1.1 rport 5"),
        CandidateParseError::BadAddress {
            field: "raddr",
            value: "300.1.1.1".into()
        }
    );
}

#[test]
fn error_hostname_not_supported() {
    let mdns = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";
    let e = parse_err(&format!(
        "candidate:1 1 udp 2122260223 {mdns} 54321 typ host generation 0"
    ));
    assert_eq!(
        e,
        CandidateParseError::HostnameNotSupported {
            field: "address",
            name: mdns.into()
        }
    );
    assert!(e.to_string().contains("mDNS"), "{e}");
    let e = parse_err("candidate:1 1 UDP 1 turn.example.com 3478 typ relay");
    assert_eq!(
        e,
        CandidateParseError::HostnameNotSupported {
            field: "address",
            name: "turn.example.com".into()
        }
    );
    assert!(!e.to_string().contains("mDNS"), "{e}");
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr host.local rport 5"),
        CandidateParseError::HostnameNotSupported {
            field: "raddr",
            name: "host.local".into()
        }
    );
}

#[test]
fn error_bad_port() {
    for port in ["65536", "-1", "+1", "x", "99999999999999999999"] {
        let text = format!("candidate:1 1 UDP 1 192.0.2.1 {port} typ host");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::BadPort {
                field: "port",
                value: port.to_owned()
            }
        );
    }
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr 10.0.0.1 rport 70000"),
        CandidateParseError::BadPort {
            field: "rport",
            value: "70000".into()
        }
    );
}

#[test]
fn error_expected_typ() {
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 type host"),
        CandidateParseError::ExpectedTyp("type".into())
    );
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 host"),
        CandidateParseError::ExpectedTyp("host".into())
    );
}

#[test]
fn error_unknown_type() {
    for kind in ["local", "relayed", "stun", "srflx2"] {
        let text = format!("candidate:1 1 UDP 1 192.0.2.1 5 typ {kind}");
        assert_eq!(
            parse_err(&text),
            CandidateParseError::UnknownType(kind.to_owned())
        );
    }
}

#[test]
fn error_raddr_without_rport_and_rport_without_raddr() {
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr 10.0.0.1 generation 0"),
        CandidateParseError::RaddrWithoutRport
    );
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ srflx rport 5"),
        CandidateParseError::RportWithoutRaddr
    );
}

#[test]
fn error_bad_tcp_type() {
    assert_eq!(
        parse_err("candidate:1 1 TCP 1 192.0.2.1 9 typ host tcptype listen"),
        CandidateParseError::BadTcpType("listen".into())
    );
}

#[test]
fn error_tcp_type_on_udp() {
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 9 typ host tcptype active"),
        CandidateParseError::TcpTypeOnUdp
    );
}

#[test]
fn error_missing_tcp_type() {
    assert_eq!(
        parse_err("candidate:1 1 TCP 1 192.0.2.1 9 typ host generation 0"),
        CandidateParseError::MissingTcpType
    );
}

#[test]
fn error_duplicate_field() {
    let cases = [
        ("candidate:1 1 UDP 1 192.0.2.1 5 typ host typ srflx", "typ"),
        (
            "candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr 10.0.0.1 raddr 10.0.0.2 rport 1",
            "raddr",
        ),
        (
            "candidate:1 1 UDP 1 192.0.2.1 5 typ srflx raddr 10.0.0.1 rport 1 rport 2",
            "rport",
        ),
        (
            "candidate:1 1 TCP 1 192.0.2.1 9 typ host tcptype active tcptype passive",
            "tcptype",
        ),
    ];
    for (text, field) in cases {
        assert_eq!(
            parse_err(text),
            CandidateParseError::DuplicateField(field),
            "{text}"
        );
    }
}

#[test]
fn error_missing_value() {
    for field in ["raddr", "rport"] {
        let text = format!("candidate:1 1 UDP 1 192.0.2.1 5 typ srflx {field}");
        assert_eq!(parse_err(&text), CandidateParseError::MissingValue(field));
    }
    assert_eq!(
        parse_err("candidate:1 1 TCP 1 192.0.2.1 9 typ host tcptype"),
        CandidateParseError::MissingValue("tcptype")
    );
}

#[test]
fn error_extension_without_value() {
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ host generation 0 network-id"),
        CandidateParseError::ExtensionWithoutValue("network-id".into())
    );
}

#[test]
fn error_bad_extension() {
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ host na(me) 1"),
        CandidateParseError::BadExtension {
            name: "na(me)".into(),
            value: "1".into()
        }
    );
    assert_eq!(
        parse_err("candidate:1 1 UDP 1 192.0.2.1 5 typ host name vä"),
        CandidateParseError::BadExtension {
            name: "name".into(),
            value: "vä".into()
        }
    );
}

#[test]
fn parse_errors_display_the_offending_field() {
    let errors = [
        CandidateParseError::TooLong { len: 2000 },
        CandidateParseError::MissingField { field: "port" },
        CandidateParseError::BadFoundation("a-b".into()),
        CandidateParseError::BadComponent("0".into()),
        CandidateParseError::UnknownTransport("SCTP".into()),
        CandidateParseError::BadPriority("-1".into()),
        CandidateParseError::BadAddress {
            field: "raddr",
            value: "1.2.3".into(),
        },
        CandidateParseError::HostnameNotSupported {
            field: "address",
            name: "x.local".into(),
        },
        CandidateParseError::BadPort {
            field: "rport",
            value: "70000".into(),
        },
        CandidateParseError::ExpectedTyp("type".into()),
        CandidateParseError::UnknownType("local".into()),
        CandidateParseError::RaddrWithoutRport,
        CandidateParseError::RportWithoutRaddr,
        CandidateParseError::BadTcpType("listen".into()),
        CandidateParseError::TcpTypeOnUdp,
        CandidateParseError::MissingTcpType,
        CandidateParseError::DuplicateField("typ"),
        CandidateParseError::MissingValue("rport"),
        CandidateParseError::ExtensionWithoutValue("network-id".into()),
        CandidateParseError::BadExtension {
            name: "n".into(),
            value: "vä".into(),
        },
    ];
    let needles = [
        "2000",
        "port",
        "a-b",
        "0",
        "SCTP",
        "-1",
        "1.2.3",
        "x.local",
        "70000",
        "type",
        "local",
        "rport",
        "raddr",
        "listen",
        "UDP",
        "TCP",
        "typ",
        "rport",
        "network-id",
        "vä",
    ];
    for (error, needle) in errors.iter().zip(needles) {
        let text = error.to_string();
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        let _: &dyn std::error::Error = error;
    }
}

// ---------------------------------------------------------------------------------------
// Never panics, always round-trips: a deterministic mutation search
// ---------------------------------------------------------------------------------------

/// Checks the parser's contract on `text`: no panic, and what parses writes a line that
/// parses back equal and writes identically.
fn check_contract(text: &str) {
    if let Ok(candidate) = Candidate::parse(text) {
        let written = candidate.to_string();
        assert!(written.len() <= MAX_CANDIDATE_LEN, "{written:?}");
        let again = Candidate::parse(&written)
            .unwrap_or_else(|e| panic!("{written:?} (from {text:?}) does not re-parse: {e}"));
        assert_eq!(again, candidate, "{text:?}");
        assert_eq!(again.to_string(), written);
        // The builder, fed the parsed fields, agrees, except where RFC 8839 §5.1 forbids
        // building what may be read: a host candidate with a related address.
        let mut builder = Candidate::builder(
            candidate.foundation(),
            candidate.candidate_type(),
            candidate.transport(),
            candidate.address(),
        )
        .component(candidate.component())
        .priority(candidate.priority());
        if let Some(related) = candidate.related_address() {
            builder = builder.related_address(related);
        }
        for (name, value) in candidate.extensions() {
            builder = builder.extension(name, value);
        }
        match builder.build() {
            Ok(rebuilt) => assert_eq!(rebuilt, candidate, "{text:?}"),
            Err(e) => {
                assert_eq!(e, CandidateError::RelatedAddressOnHost, "{text:?}");
                assert_eq!(candidate.candidate_type(), CandidateType::Host);
            }
        }
    }
}

#[test]
fn mutated_lines_never_panic_and_round_trip() {
    let seeds = [
        HOST,
        "candidate:842163049 1 udp 1677729535 1.2.3.4 54321 typ srflx raddr 10.0.0.1 rport 54321 generation 0 ufrag abcd network-id 1 network-cost 50",
        "candidate:2 1 TCP 1019216383 127.0.0.1 9 typ host tcptype active",
        "a=candidate:5 1 UDP 2122262783 ::ffff:a:a 40000 typ relay raddr ::1 rport 1",
    ];
    let vocabulary = [
        " ",
        "\t",
        "typ",
        "host",
        "srflx",
        "raddr",
        "rport",
        "tcptype",
        "so",
        "TCP",
        "udp",
        "::",
        "1",
        "0",
        "65535",
        "256",
        ".local",
        "a=",
        "candidate:",
        "é",
        "\u{a0}",
        "%",
        ":",
        ".",
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(0x1ce);
    let mut parsed = 0;
    for i in 0..20_000 {
        let mut text = seeds[i % seeds.len()].to_owned();
        for _ in 0..=(rng.next_u32() % 4) {
            let len = text.len();
            let at = (rng.next_u32() as usize) % (len + 1);
            let at = (0..=at)
                .rev()
                .find(|&p| text.is_char_boundary(p))
                .unwrap_or(0);
            match rng.next_u32() % 4 {
                0 => text.insert_str(at, vocabulary[rng.next_u32() as usize % vocabulary.len()]),
                1 => {
                    let end = (at + 1 + rng.next_u32() as usize % 8).min(len);
                    let end = (end..=len)
                        .find(|&p| text.is_char_boundary(p))
                        .unwrap_or(len);
                    text.replace_range(at..end, "");
                }
                2 => text.insert(at, char::from(b' ' + (rng.next_u32() % 95) as u8)),
                _ => {
                    let word = vocabulary[rng.next_u32() as usize % vocabulary.len()];
                    text.push(' ');
                    text.push_str(word);
                }
            }
        }
        check_contract(&text);
        parsed += usize::from(Candidate::parse(&text).is_ok());
    }
    // The search must exercise both outcomes to mean anything.
    assert!(parsed > 1_000, "only {parsed} mutated lines parsed");
    assert!(parsed < 19_000, "{parsed} mutated lines parsed");
}

#[test]
fn odd_inputs_do_not_panic() {
    let long_port = format!("candidate:1 1 UDP 1 192.0.2.1 {} typ host", "0".repeat(900));
    for text in [
        "",
        " ",
        "a=",
        "candidate:",
        "a=candidate",
        "é",
        "candidate:é",
        "\u{2028}",
        &"x".repeat(MAX_CANDIDATE_LEN),
        &"x".repeat(MAX_CANDIDATE_LEN + 1),
        &long_port,
        "candidate:1 1 UDP 1 ::ffff:1.2.3.4 1 typ host",
    ] {
        check_contract(text);
    }
    // Leading zeros are not counted against the port.
    assert_eq!(parse(&long_port).address().port(), 0);
}

// ---------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------

#[test]
fn builder_defaults_to_recommended_priority_and_component_1() {
    let c = Candidate::builder(
        "1",
        CandidateType::Host,
        CandidateTransport::Udp,
        addr("192.0.2.1:5000"),
    )
    .build()
    .unwrap();
    assert_eq!(c.component().get(), 1);
    assert_eq!(c.priority(), 2130706431);
    assert_eq!(
        c.to_string(),
        "candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host"
    );
}

#[test]
fn builder_local_preference_and_exact_priority() {
    let base = || {
        Candidate::builder(
            "2",
            CandidateType::ServerReflexive,
            CandidateTransport::Udp,
            addr("203.0.113.1:6000"),
        )
        .related_address(addr("192.0.2.1:5000"))
    };
    let c = base()
        .component(ComponentId::RTCP)
        .local_preference(65534)
        .build()
        .unwrap();
    assert_eq!(c.priority(), (100 << 24) + (65534 << 8) + 254);
    // The last of priority and local_preference wins.
    let c = base().local_preference(1).priority(12345).build().unwrap();
    assert_eq!(c.priority(), 12345);
    let c = base().priority(12345).local_preference(1).build().unwrap();
    assert_eq!(c.priority(), (100 << 24) + (1 << 8) + 255);
    assert_eq!(
        c.to_string(),
        format!(
            "candidate:2 1 UDP {} 203.0.113.1 6000 typ srflx raddr 192.0.2.1 rport 5000",
            (100 << 24) + (1 << 8) + 255
        )
    );
}

#[test]
fn builder_tcp_default_priority_uses_rfc6544_local_preference() {
    let c = Candidate::builder(
        "3",
        CandidateType::Host,
        TcpType::Active.into(),
        addr("192.0.2.1:9"),
    )
    .build()
    .unwrap();
    // Direction preference 6 (host, active), other preference 8191.
    assert_eq!(c.priority(), (126 << 24) + ((6 << 13) + 8191) * 256 + 255);
    assert_eq!(c.tcp_type(), Some(TcpType::Active));
    let srflx_so = Candidate::builder(
        "4",
        CandidateType::ServerReflexive,
        CandidateTransport::Tcp(TcpType::So),
        addr("203.0.113.1:9"),
    )
    .related_address(addr("192.0.2.1:9"))
    .build()
    .unwrap();
    assert_eq!(
        srflx_so.priority(),
        (100 << 24) + ((6 << 13) + 8191) * 256 + 255
    );
}

#[test]
fn builder_output_round_trips_with_extensions() {
    let c = Candidate::builder(
        "abc+/",
        CandidateType::Relayed,
        CandidateTransport::Udp,
        addr("[2001:db8::9]:3478"),
    )
    .component(ComponentId::new(256).unwrap())
    .priority(0)
    .related_address(addr("198.51.100.7:60000"))
    .extension("generation", "0")
    .extension("network-cost", "50")
    .extension("generation", "1")
    .build()
    .unwrap();
    let written = c.to_string();
    assert_eq!(
        written,
        "candidate:abc+/ 256 UDP 0 2001:db8::9 3478 typ relay raddr 198.51.100.7 rport 60000 generation 0 network-cost 50 generation 1"
    );
    assert_eq!(parse(&written), c);
    assert_eq!(c.extension("generation"), Some("0"));
}

#[test]
fn builder_clears_ipv6_scope_and_flow_label() {
    let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
        "fe80::1".parse().unwrap(),
        5000,
        7,
        3,
    ));
    let c = Candidate::builder("1", CandidateType::Host, CandidateTransport::Udp, scoped)
        .build()
        .unwrap();
    assert_eq!(c.address(), addr("[fe80::1]:5000"));
    assert_eq!(parse(&c.to_string()), c);
}

#[test]
fn builder_errors() {
    let host = |foundation: &str| {
        Candidate::builder(
            foundation,
            CandidateType::Host,
            CandidateTransport::Udp,
            addr("192.0.2.1:1"),
        )
    };
    assert_eq!(
        host("").build(),
        Err(CandidateError::InvalidFoundation(String::new()))
    );
    assert_eq!(
        host("a b").build(),
        Err(CandidateError::InvalidFoundation("a b".into()))
    );
    assert_eq!(
        host(&"1".repeat(33)).build(),
        Err(CandidateError::InvalidFoundation("1".repeat(33)))
    );
    assert_eq!(
        host("1").component(ComponentId::new(257).unwrap()).build(),
        Err(CandidateError::InvalidComponent(257))
    );
    assert_eq!(
        host("1").priority(MAX_PRIORITY + 1).build(),
        Err(CandidateError::InvalidPriority(MAX_PRIORITY + 1))
    );
    assert_eq!(
        host("1").related_address(addr("0.0.0.0:0")).build(),
        Err(CandidateError::RelatedAddressOnHost)
    );
    for reserved in ["typ", "raddr", "RPORT", "tcptype"] {
        assert_eq!(
            host("1").extension(reserved, "x").build(),
            Err(CandidateError::ReservedExtensionName(reserved.into()))
        );
    }
    assert_eq!(
        host("1").extension("a b", "x").build(),
        Err(CandidateError::InvalidExtensionName("a b".into()))
    );
    assert_eq!(
        host("1").extension("", "x").build(),
        Err(CandidateError::InvalidExtensionName(String::new()))
    );
    for value in ["", "a b", "\u{7f}", "é"] {
        assert_eq!(
            host("1").extension("n", value).build(),
            Err(CandidateError::InvalidExtensionValue {
                name: "n".into(),
                value: value.into()
            })
        );
    }
    let mut long = host("1");
    for _ in 0..200 {
        long = long.extension("name", "value");
    }
    assert!(
        matches!(long.build(), Err(CandidateError::TooLong { len }) if len > MAX_CANDIDATE_LEN)
    );
}

#[test]
fn candidate_errors_display() {
    let errors = [
        (CandidateError::InvalidFoundation("a b".into()), "a b"),
        (CandidateError::InvalidComponent(0), "0"),
        (
            CandidateError::InvalidPriority(MAX_PRIORITY + 1),
            "2147483648",
        ),
        (CandidateError::InvalidTypePreference(127), "127"),
        (CandidateError::InvalidDirectionPreference(8), "8"),
        (CandidateError::InvalidOtherPreference(8192), "8192"),
        (CandidateError::RelatedAddressOnHost, "host"),
        (CandidateError::ReservedExtensionName("typ".into()), "typ"),
        (CandidateError::InvalidExtensionName("a b".into()), "a b"),
        (
            CandidateError::InvalidExtensionValue {
                name: "n".into(),
                value: "v v".into(),
            },
            "v v",
        ),
        (CandidateError::TooLong { len: 1500 }, "1500"),
    ];
    for (error, needle) in errors {
        let text = error.to_string();
        assert!(text.contains(needle), "{text:?} should mention {needle:?}");
        let _: &dyn std::error::Error = &error;
    }
}
