//! `icepeer` (librice, on tokio and on async-std) paired with real ICE agents on loopback:
//! aioice, libnice and headless Chromium, each in both roles, with data both ways. A failure
//! names the peer, the scenario, icepeer's role and runtime, and keeps the run's logs.
//!
//! - aioice and libnice: host UDP on 127.0.0.1 and on ::1, 2 components, trickle, and
//!   gathering through a coturn STUN server (on loopback the mapped address equals the host
//!   address, so no server-reflexive candidate results: the scenario shows the STUN exchange
//!   with coturn does not get in the way); libnice also with aggressive nomination on its
//!   side (it is then controlling).
//! - Chromium: host UDP on 127.0.0.1, trickle, and through coturn; its DTLS ClientHello
//!   must reach icepeer (which echoes it) and its selected pair must count bytes both ways.
//!   Chromium runs only inside a private network namespace, so the `chromium_suite` test re-runs
//!   this binary's ignored `chromium_inner_*` tests inside one (`tests/interop/peers/netns.sh`).
//! - Each peer is also paired with itself, as the baseline for INTEROP.md.
//!
//! ICE restarts and renomination with these peers are in `interop_restart.rs`.
//!
//! Set `LIBRICE_INTEROP_RESULTS=FILE` to append one JSON line per pairing (what
//! `tests/interop/run_suite.sh` does to write INTEROP.md).

use std::process::Command;
use std::time::Duration;

use librice_tests::pairing::{PairOptions, PairOutcome, Side, pair_with};
use librice_tests::peers::{Runtime, aioice, exclusive, icepeer, in_netns, libnice, record};
use librice_tests::{Coturn, TestDir, require_ipv6_loopback, require_tool};

const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Aioice,
    Libnice,
    LibniceAggressive,
    Chromium,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::Aioice => "aioice",
            Self::Libnice => "libnice",
            Self::LibniceAggressive => "libnice-aggressive",
            Self::Chromium => "chromium",
        }
    }

    fn command(self, controlling: bool, args: &[String]) -> Option<Command> {
        match self {
            Self::Aioice => aioice(controlling, args),
            Self::Libnice => libnice(controlling, args),
            Self::LibniceAggressive => {
                let mut args = args.to_vec();
                args.extend(["--nomination".into(), "aggressive".into()]);
                libnice(controlling, &args)
            }
            Self::Chromium => librice_tests::peers::chromium(controlling, args),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    HostV4,
    HostV6,
    TwoComponents,
    Trickle,
    Stun,
    /// icepeer relay-only through coturn (TURN over UDP); the peer uses its host candidates.
    RelayOnly,
    /// The same with TURN over TCP.
    RelayOnlyTcp,
    /// The same with TURN over TLS (coturn's self-signed certificate, `--turn-insecure`).
    RelayOnlyTls,
    /// icepeer is an ICE-lite agent (`--lite`, controlled); the full peer controls.
    IcepeerLite,
    /// The peer is an ICE-lite agent (libnice `--lite`, controlled); icepeer controls.
    PeerLite,
    /// ICE-TCP only (`--transport tcp` both sides, RFC 6544).
    Tcp,
    /// UDP and TCP candidates on both sides (`--transport all`).
    AllTransports,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::HostV4 => "host-v4",
            Self::HostV6 => "host-v6",
            Self::TwoComponents => "2-components",
            Self::Trickle => "trickle",
            Self::Stun => "stun-coturn",
            Self::RelayOnly => "icepeer-relay-only",
            Self::RelayOnlyTcp => "icepeer-relay-only-tcp",
            Self::RelayOnlyTls => "icepeer-relay-only-tls",
            Self::IcepeerLite => "icepeer-lite",
            Self::PeerLite => "peer-lite",
            Self::Tcp => "tcp",
            Self::AllTransports => "all-transports",
        }
    }

    /// The options both sides get; `stun` is the coturn address for `Stun`.
    fn args(self, stun: Option<String>) -> Vec<String> {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect();
        match self {
            Self::HostV4 => Vec::new(),
            Self::HostV6 => v(&["--ip", "::1"]),
            Self::TwoComponents => v(&["--components", "2"]),
            Self::Trickle => v(&["--trickle"]),
            Self::Stun => vec!["--stun".into(), stun.expect("coturn address")],
            Self::RelayOnly | Self::RelayOnlyTcp | Self::RelayOnlyTls => Vec::new(),
            Self::IcepeerLite | Self::PeerLite => Vec::new(),
            Self::Tcp => v(&["--transport", "tcp"]),
            Self::AllTransports => v(&["--transport", "all"]),
        }
    }

    /// The options only the peer gets.
    fn peer_args(self) -> Vec<String> {
        match self {
            Self::PeerLite => vec!["--lite".into()],
            _ => Vec::new(),
        }
    }

    /// The options only icepeer gets: `server` is coturn's address for the transport.
    fn icepeer_args(self, server: Option<String>) -> Vec<String> {
        let relay = |server: Option<String>| -> Vec<String> {
            vec![
                "--turn".into(),
                server.expect("coturn address"),
                "--turn-user".into(),
                librice_tests::COTURN_USER.into(),
                "--turn-pass".into(),
                librice_tests::COTURN_PASSWORD.into(),
                "--relay-only".into(),
            ]
        };
        let with = |mut args: Vec<String>, extra: &[&str]| {
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        };
        match self {
            Self::RelayOnly => relay(server),
            Self::RelayOnlyTcp => with(relay(server), &["--turn-transport", "tcp"]),
            Self::RelayOnlyTls => with(
                relay(server),
                &["--turn-transport", "tls", "--turn-insecure"],
            ),
            Self::IcepeerLite => vec!["--lite".into()],
            _ => Vec::new(),
        }
    }
}

/// Pairs `a_cmd` (side A) with `b_cmd` (side B) and checks the data test; returns the
/// outcome and whether it passed.
fn run(a_cmd: Command, b_cmd: Command, browsers: Vec<Side>, dir: &TestDir) -> (PairOutcome, bool) {
    let outcome = pair_with(
        a_cmd,
        b_cmd,
        dir,
        LIMIT,
        PairOptions {
            browsers: browsers.clone(),
            ..PairOptions::default()
        },
    );
    let side_ok = |side: Side| {
        let s = outcome.side(side);
        let other_is_browser = browsers.contains(&side.other());
        if browsers.contains(&side) {
            s.connected && s.done
        } else if other_is_browser {
            s.connected && s.recv > 0
        } else {
            s.connected && s.recv > 0 && s.echo_ok
        }
    };
    let pass = side_ok(Side::A) && side_ok(Side::B);
    (outcome, pass)
}

/// Starts coturn for the scenarios that use it (with a TLS listener for `RelayOnlyTls`).
fn coturn(scenario: Scenario, dir: &TestDir) -> Option<Option<Coturn>> {
    match scenario {
        Scenario::Stun | Scenario::RelayOnly | Scenario::RelayOnlyTcp => {
            let turnserver = require_tool("turnserver", "coturn")?;
            Some(Some(Coturn::start(&turnserver, dir, false)))
        }
        Scenario::RelayOnlyTls => {
            let turnserver = require_tool("turnserver", "coturn")?;
            let openssl = require_tool("openssl", "openssl")?;
            Some(Some(Coturn::start_tls(&turnserver, &openssl, dir)))
        }
        _ => Some(None),
    }
}

/// One pairing of icepeer with `peer`.
fn pairing(peer: Peer, scenario: Scenario, icepeer_controlling: bool, runtime: Runtime) {
    if scenario == Scenario::HostV6 && !require_ipv6_loopback() {
        return;
    }
    let _serial = exclusive();
    let dir = TestDir::new();
    let Some(server) = coturn(scenario, &dir) else {
        return;
    };
    let args = scenario.args(server.as_ref().map(|c| c.addr_v4().to_string()));
    let mut peer_args = args.clone();
    peer_args.extend(scenario.peer_args());
    let Some(other) = peer.command(!icepeer_controlling, &peer_args) else {
        return;
    };
    let mut ice_args = args.clone();
    let turn_addr = server.as_ref().map(|c| match scenario {
        Scenario::RelayOnlyTls => c.tls_addr().expect("a TLS listener").to_string(),
        _ => c.addr_v4().to_string(),
    });
    ice_args.extend(scenario.icepeer_args(turn_addr));
    ice_args.extend(["--name".into(), "librice".into()]);
    let ice = icepeer(runtime, icepeer_controlling, &ice_args);
    let browsers = if peer == Peer::Chromium {
        vec![Side::B]
    } else {
        Vec::new()
    };
    let (outcome, pass) = run(ice, other, browsers, &dir);
    let role = if icepeer_controlling {
        "icepeer-controlling"
    } else {
        "icepeer-controlled"
    };
    record(
        peer.name(),
        scenario.name(),
        role,
        runtime.name(),
        &outcome,
        pass,
    );
    println!("{}", outcome.report());
    assert!(
        pass,
        "interop FAILED: peer {}, scenario {}, {role}, runtime {}\n{}",
        peer.name(),
        scenario.name(),
        runtime.name(),
        outcome.report()
    );
    if matches!(scenario, Scenario::Tcp | Scenario::AllTransports) {
        // Over TCP only a TCP pair can connect; with both transports, the UDP pair wins
        // (RFC 6544 §4.2: a TCP host candidate's priority is below a UDP one's).
        let local = outcome
            .a
            .connected_event
            .as_ref()
            .and_then(|e| e["local"].as_str())
            .unwrap_or_default();
        let want = if scenario == Scenario::Tcp {
            " TCP "
        } else {
            " UDP "
        };
        assert!(
            local.contains(want),
            "icepeer's pair: {local}\n{}",
            outcome.report()
        );
    }
    if scenario == Scenario::IcepeerLite {
        // The lite icepeer only answered: it sent no check of its own (RFC 8445 §2.5).
        let sent = outcome
            .a
            .connected_event
            .as_ref()
            .and_then(|e| e["stats"]["1"]["requests_sent"].as_u64());
        assert_eq!(
            sent,
            Some(0),
            "the lite icepeer sent no checks: {}",
            outcome.report()
        );
    }
    if scenario == Scenario::PeerLite {
        // icepeer read the peer's "ice_lite" and controls (it started controlling).
        let description = outcome.b.description.as_ref();
        assert_eq!(
            description.map(|d| d["ice_lite"].clone()),
            Some(serde_json::json!(true)),
            "the peer announced ice-lite: {}",
            outcome.report()
        );
    }
    if matches!(
        scenario,
        Scenario::RelayOnly | Scenario::RelayOnlyTcp | Scenario::RelayOnlyTls
    ) {
        // icepeer (side A) sent and received its data through its relayed candidate.
        let local = outcome
            .a
            .connected_event
            .as_ref()
            .and_then(|e| e["local"].as_str())
            .unwrap_or_default();
        assert!(
            local.contains("typ relay"),
            "icepeer's pair is relayed: {local}"
        );
    }
    if scenario == Scenario::TwoComponents {
        for s in [&outcome.a, &outcome.b] {
            let pairs = s.connected_event.as_ref().and_then(|e| e.get("pairs"));
            assert_eq!(
                pairs.and_then(|p| p.as_object()).map(|p| p.len()),
                Some(2),
                "both components selected a pair: {}",
                outcome.report()
            );
        }
    }
    if peer == Peer::Chromium {
        // Chromium's DTLS ClientHello (a handshake record: 0x16, version 0xfefd) reached
        // icepeer as application data.
        let hello = outcome.a.events.iter().any(|e| {
            e["event"] == "recv" && e["hex"].as_str().is_some_and(|h| h.starts_with("16fe"))
        });
        assert!(
            hello,
            "no DTLS ClientHello from Chromium reached icepeer: {}",
            outcome.report()
        );
    }
    let expected_local = match scenario {
        Scenario::RelayOnly => Some("typ relay"),
        Scenario::HostV6 => Some("::1"),
        _ => None,
    };
    if let Some(expected) = expected_local {
        assert!(
            icepeer_local(&outcome).is_some_and(|l| l.contains(expected)),
            "icepeer's selected local candidate has `{expected}`: {}",
            outcome.report()
        );
    }
}

/// icepeer's selected local candidate (component 1), from its `connected` event.
fn icepeer_local(outcome: &PairOutcome) -> Option<String> {
    let event = outcome.a.connected_event.as_ref()?;
    event["local"].as_str().map(String::from)
}

/// A peer paired with itself: the baseline for INTEROP.md.
fn baseline(peer: Peer, scenario: Scenario) {
    // libnice's aggressive nomination is the controlling side's.
    let b_peer = if peer == Peer::LibniceAggressive {
        Peer::Libnice
    } else {
        peer
    };
    baseline_between(peer, b_peer, scenario, peer.name());
}

/// Peer `peer` (controlling, side A) paired with `b_peer` (controlled, side B) in
/// `scenario`, recorded as `label` with the role `self`: the baselines INTEROP.md puts
/// beside icepeer's pairings.
fn baseline_between(peer: Peer, b_peer: Peer, scenario: Scenario, label: &str) {
    if scenario == Scenario::HostV6 && !require_ipv6_loopback() {
        return;
    }
    let _serial = exclusive();
    let dir = TestDir::new();
    let Some(server) = coturn(scenario, &dir) else {
        return;
    };
    let args = scenario.args(server.as_ref().map(|c| c.addr_v4().to_string()));
    let name = |p: Peer, n: &str| {
        let mut a = args.clone();
        if p != Peer::Chromium {
            a.extend(["--name".into(), n.into()]);
        }
        a
    };
    let (Some(a), Some(b)) = (
        peer.command(true, &name(peer, "peerA")),
        b_peer.command(false, &name(b_peer, "peerB")),
    ) else {
        return;
    };
    let browsers: Vec<Side> = [(peer, Side::A), (b_peer, Side::B)]
        .into_iter()
        .filter(|(p, _)| *p == Peer::Chromium)
        .map(|(_, side)| side)
        .collect();
    let (outcome, pass) = run(a, b, browsers, &dir);
    record(label, scenario.name(), "self", "-", &outcome, pass);
    println!("{}", outcome.report());
    assert!(
        pass,
        "baseline FAILED: {label}, scenario {}\n{}",
        scenario.name(),
        outcome.report()
    );
}

macro_rules! pairings {
    ($($name:ident: $peer:expr, $scenario:expr, $controlling:expr;)*) => {
        $(
            mod $name {
                use super::*;
                #[test]
                fn tokio() {
                    pairing($peer, $scenario, $controlling, Runtime::Tokio);
                }
                #[test]
                fn async_std() {
                    pairing($peer, $scenario, $controlling, Runtime::AsyncStd);
                }
            }
        )*
    };
}

pairings! {
    aioice_host_v4_controlling: Peer::Aioice, Scenario::HostV4, true;
    aioice_host_v4_controlled: Peer::Aioice, Scenario::HostV4, false;
    aioice_host_v6_controlling: Peer::Aioice, Scenario::HostV6, true;
    aioice_host_v6_controlled: Peer::Aioice, Scenario::HostV6, false;
    aioice_two_components_controlling: Peer::Aioice, Scenario::TwoComponents, true;
    aioice_two_components_controlled: Peer::Aioice, Scenario::TwoComponents, false;
    aioice_trickle_controlling: Peer::Aioice, Scenario::Trickle, true;
    aioice_trickle_controlled: Peer::Aioice, Scenario::Trickle, false;
    aioice_stun_controlling: Peer::Aioice, Scenario::Stun, true;
    aioice_stun_controlled: Peer::Aioice, Scenario::Stun, false;
    libnice_host_v4_controlling: Peer::Libnice, Scenario::HostV4, true;
    libnice_host_v4_controlled: Peer::Libnice, Scenario::HostV4, false;
    libnice_host_v6_controlling: Peer::Libnice, Scenario::HostV6, true;
    libnice_host_v6_controlled: Peer::Libnice, Scenario::HostV6, false;
    libnice_two_components_controlling: Peer::Libnice, Scenario::TwoComponents, true;
    libnice_two_components_controlled: Peer::Libnice, Scenario::TwoComponents, false;
    libnice_trickle_controlling: Peer::Libnice, Scenario::Trickle, true;
    libnice_trickle_controlled: Peer::Libnice, Scenario::Trickle, false;
    libnice_stun_controlling: Peer::Libnice, Scenario::Stun, true;
    libnice_stun_controlled: Peer::Libnice, Scenario::Stun, false;
    libnice_aggressive_host_v4_controlled: Peer::LibniceAggressive, Scenario::HostV4, false;
    libnice_aggressive_two_components_controlled: Peer::LibniceAggressive, Scenario::TwoComponents, false;
    libnice_aggressive_trickle_controlled: Peer::LibniceAggressive, Scenario::Trickle, false;
    libnice_aggressive_host_v6_controlled: Peer::LibniceAggressive, Scenario::HostV6, false;
    aioice_relay_only_controlling: Peer::Aioice, Scenario::RelayOnly, true;
    aioice_relay_only_controlled: Peer::Aioice, Scenario::RelayOnly, false;
    libnice_relay_only_controlling: Peer::Libnice, Scenario::RelayOnly, true;
    libnice_relay_only_controlled: Peer::Libnice, Scenario::RelayOnly, false;
    aioice_relay_only_tcp_controlling: Peer::Aioice, Scenario::RelayOnlyTcp, true;
    aioice_relay_only_tcp_controlled: Peer::Aioice, Scenario::RelayOnlyTcp, false;
    libnice_relay_only_tcp_controlling: Peer::Libnice, Scenario::RelayOnlyTcp, true;
    libnice_relay_only_tcp_controlled: Peer::Libnice, Scenario::RelayOnlyTcp, false;
    aioice_relay_only_tls_controlling: Peer::Aioice, Scenario::RelayOnlyTls, true;
    aioice_relay_only_tls_controlled: Peer::Aioice, Scenario::RelayOnlyTls, false;
    libnice_relay_only_tls_controlling: Peer::Libnice, Scenario::RelayOnlyTls, true;
    libnice_relay_only_tls_controlled: Peer::Libnice, Scenario::RelayOnlyTls, false;
    aioice_icepeer_lite: Peer::Aioice, Scenario::IcepeerLite, false;
    libnice_icepeer_lite: Peer::Libnice, Scenario::IcepeerLite, false;
    libnice_peer_lite: Peer::Libnice, Scenario::PeerLite, true;
    libnice_tcp_controlling: Peer::Libnice, Scenario::Tcp, true;
    libnice_tcp_controlled: Peer::Libnice, Scenario::Tcp, false;
    libnice_all_transports_controlling: Peer::Libnice, Scenario::AllTransports, true;
    libnice_all_transports_controlled: Peer::Libnice, Scenario::AllTransports, false;
    libnice_aggressive_stun_controlled: Peer::LibniceAggressive, Scenario::Stun, false;
}

macro_rules! baselines {
    ($($name:ident: $peer:expr, $scenario:expr;)*) => {
        $(
            #[test]
            fn $name() {
                baseline($peer, $scenario);
            }
        )*
    };
}

baselines! {
    baseline_aioice_host_v4: Peer::Aioice, Scenario::HostV4;
    baseline_aioice_host_v6: Peer::Aioice, Scenario::HostV6;
    baseline_aioice_two_components: Peer::Aioice, Scenario::TwoComponents;
    baseline_aioice_trickle: Peer::Aioice, Scenario::Trickle;
    baseline_aioice_stun: Peer::Aioice, Scenario::Stun;
    baseline_libnice_host_v4: Peer::Libnice, Scenario::HostV4;
    baseline_libnice_host_v6: Peer::Libnice, Scenario::HostV6;
    baseline_libnice_two_components: Peer::Libnice, Scenario::TwoComponents;
    baseline_libnice_trickle: Peer::Libnice, Scenario::Trickle;
    baseline_libnice_stun: Peer::Libnice, Scenario::Stun;
    baseline_libnice_tcp: Peer::Libnice, Scenario::Tcp;
    baseline_libnice_aggressive_host_v4: Peer::LibniceAggressive, Scenario::HostV4;
    baseline_libnice_aggressive_two_components: Peer::LibniceAggressive, Scenario::TwoComponents;
    baseline_libnice_aggressive_trickle: Peer::LibniceAggressive, Scenario::Trickle;
    baseline_libnice_aggressive_host_v6: Peer::LibniceAggressive, Scenario::HostV6;
    baseline_libnice_aggressive_stun: Peer::LibniceAggressive, Scenario::Stun;
}

/// Chromium (controlling) with libnice (controlled) over TCP: the baseline INTEROP.md puts
/// beside icepeer's TCP pairings with Chromium.
#[test]
#[ignore = "run inside a network namespace by the `chromium_suite` test"]
fn chromium_inner_baseline_chromium_libnice_tcp() {
    assert!(in_netns(), "run through the `chromium_suite` test");
    baseline_between(
        Peer::Chromium,
        Peer::Libnice,
        Scenario::Tcp,
        "chromium+libnice",
    );
}

/// Runs the Chromium pairings inside a private network namespace.
#[test]
fn chromium_suite() {
    librice_tests::peers::chromium_suite("chromium_inner_", "Chromium pairings");
}

macro_rules! chromium_pairings {
    ($($name:ident: $scenario:expr, $controlling:expr;)*) => {
        $(
            mod $name {
                use super::*;
                #[test]
                #[ignore = "run inside a network namespace by the `chromium_suite` test"]
                fn tokio() {
                    assert!(in_netns(), "run through the `chromium_suite` test");
                    pairing(Peer::Chromium, $scenario, $controlling, Runtime::Tokio);
                }
                #[test]
                #[ignore = "run inside a network namespace by the `chromium_suite` test"]
                fn async_std() {
                    assert!(in_netns(), "run through the `chromium_suite` test");
                    pairing(Peer::Chromium, $scenario, $controlling, Runtime::AsyncStd);
                }
            }
        )*
    };
}

chromium_pairings! {
    chromium_inner_host_v4_controlling: Scenario::HostV4, true;
    chromium_inner_host_v4_controlled: Scenario::HostV4, false;
    chromium_inner_trickle_controlling: Scenario::Trickle, true;
    chromium_inner_trickle_controlled: Scenario::Trickle, false;
    chromium_inner_stun_controlling: Scenario::Stun, true;
    chromium_inner_stun_controlled: Scenario::Stun, false;
    chromium_inner_icepeer_lite: Scenario::IcepeerLite, false;
    chromium_inner_tcp_controlling: Scenario::Tcp, true;
    chromium_inner_tcp_controlled: Scenario::Tcp, false;
}

macro_rules! chromium_baselines {
    ($($name:ident: $scenario:expr;)*) => {
        $(
            #[test]
            #[ignore = "run inside a network namespace by the `chromium_suite` test"]
            fn $name() {
                assert!(in_netns(), "run through the `chromium_suite` test");
                baseline(Peer::Chromium, $scenario);
            }
        )*
    };
}

chromium_baselines! {
    chromium_inner_baseline_host_v4: Scenario::HostV4;
    chromium_inner_baseline_trickle: Scenario::Trickle;
    chromium_inner_baseline_stun: Scenario::Stun;
}
