//! Simultaneous-open ICE-TCP (RFC 6544 `tcptype so`) on the simulator: agents with `so`
//! sockets (bound, not listening), STUN over TCP for their server-reflexive `so`
//! candidates, and the SYN model of `harness::syn`: SYNs cross through NATs that drop an
//! unsolicited one (RFC 5382 REQ-4), and a SYN that finds no connect of its own is refused
//! with an RST. Every run is deterministic.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use librice_proto::TransportType;
use librice_proto::agent::{
    AgentConfig, AgentError, AgentEvent, ComponentState, FailureReason, PairState, StunServer,
    UsageError,
};
use librice_proto::candidate::{CandidateTransport, CandidateType, TcpType};
use librice_proto::stun::transaction::RetransmitConfig;

use crate::harness::ice::{
    AgentNode, RTP, S0, add_host, add_host_with_so, connect, give_credentials, send_data, signal,
};
use crate::harness::syn::SoOutcome;
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, RealmId, Sim, StunServerNode};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);
/// The port of every listening socket.
const LISTEN: u16 = 7000;
/// The port of every `so` socket.
const SO: u16 = 7001;
const STUN: &str = "192.0.2.100:3478";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// Simultaneous open on; checks over TCP give up after 5 s.
fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
        .tcp_simultaneous_open(true)
        .check_retransmit(RetransmitConfig {
            reliable_timeout: Duration::from_secs(5),
            ..RetransmitConfig::default()
        })
}

/// A public STUN server answering over TCP at [`STUN`].
fn stun_server(sim: &mut Sim) {
    let stun: SocketAddr = STUN.parse().expect("an address");
    sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
}

/// An agent at `addr` in `realm` with an `so` socket at port [`SO`] and, with `listen`,
/// a listening socket at port [`LISTEN`] (passive and active candidates); gathering
/// started.
fn so_host(sim: &mut Sim, config: AgentConfig, realm: RealmId, addr: &str, listen: bool) -> NodeId {
    let a = ip(addr);
    let sockets: Vec<_> = if listen {
        vec![(TransportType::Tcp, SocketAddr::new(a, LISTEN))]
    } else {
        Vec::new()
    };
    add_host_with_so(
        sim,
        config,
        realm,
        &[a],
        &sockets,
        &[SocketAddr::new(a, SO)],
    )
}

fn tcp_type(t: CandidateTransport) -> Option<TcpType> {
    t.tcp_type()
}

/// Both sides selected an `so`/`so` pair, and data goes both ways over it.
fn assert_so_connected(sim: &mut Sim, a: NodeId, b: NodeId) {
    for n in [a, b] {
        let p = &node(sim, n).selected[&(S0, RTP)];
        assert_eq!(p.transport, TransportType::Tcp, "node {n}: {p:?}");
        assert_eq!(
            tcp_type(p.local.transport()),
            Some(TcpType::So),
            "node {n}: {p:?}"
        );
        assert_eq!(
            tcp_type(p.remote.transport()),
            Some(TcpType::So),
            "node {n}: {p:?}"
        );
        assert_eq!(p.local_base.port(), SO, "node {n}: from the so port");
    }
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "node {from} -> node {to}");
    }
}

/// RFC 6544 §4.1, §4.2: an `so` socket gives an `so` host candidate at its own address,
/// ranked below the active and passive candidates of a listening socket (direction
/// preferences 2, 6 and 4); without the option the socket is refused.
#[test]
fn an_so_socket_gives_an_so_host_candidate_below_active_and_passive() {
    let mut sim = Sim::new(21);
    let a = so_host(&mut sim, config(true, 21), PUBLIC_REALM, "192.0.2.1", true);
    let local = sim.with_node::<AgentNode, _>(a, |n, _| {
        n.agent.stream_mut(S0).expect("stream").local_candidates()
    });
    let of = |t: TcpType| {
        local
            .iter()
            .find(|c| c.transport() == CandidateTransport::Tcp(t))
            .unwrap_or_else(|| panic!("a {t} candidate in {local:?}"))
    };
    let (active, passive, so) = (of(TcpType::Active), of(TcpType::Passive), of(TcpType::So));
    assert_eq!(so.address(), SocketAddr::new(ip("192.0.2.1"), SO));
    assert_eq!(so.candidate_type(), CandidateType::Host);
    assert!(active.priority() > passive.priority() && passive.priority() > so.priority());
    // RFC 6544 §4.2: local preference = 2^13 * direction-pref + other-pref.
    assert_eq!(so.priority() >> 24, 126, "host type preference");
    assert_eq!(
        ((so.priority() >> 8) & 0xFFFF) >> 13,
        2,
        "so direction preference"
    );
    assert_eq!(local.len(), 3, "{local:?}");

    // Off (the default): refused.
    let mut sim = Sim::new(22);
    let b = add_host(
        &mut sim,
        AgentConfig::default(),
        PUBLIC_REALM,
        &[ip("192.0.2.2")],
        &[],
    );
    let refused = sim.with_node::<AgentNode, _>(b, |n, _| {
        n.agent
            .stream_mut(S0)
            .expect("stream")
            .add_local_so_socket(RTP, SocketAddr::new(ip("192.0.2.2"), SO))
    });
    assert!(
        matches!(
            refused,
            Err(AgentError::Usage(UsageError::SimultaneousOpenSocket(_)))
        ),
        "{refused:?}"
    );
}

/// Two hosts behind NATs that filter (address- or port-restricted), with only `so`
/// sockets and a STUN server over TCP: each side's server-reflexive `so` candidate is the
/// mapping of its `so` port, both check their pair at the same time, the SYNs cross in
/// the NATs and the connection is made; data flows over it. No active/passive pair could
/// work here (see `icetcp.rs`'s `both_behind_nats_fail_cleanly`).
#[test]
fn hosts_behind_nats_connect_by_simultaneous_open() {
    for nat in [NatType::AddressRestricted, NatType::PortRestricted] {
        let mut sim = Sim::new(23);
        sim.set_default_link(LinkConfig::with_latency(LATENCY));
        stun_server(&mut sim);
        let ra = sim.add_nat(nat, ip("203.0.113.1"));
        let rb = sim.add_nat(nat, ip("203.0.113.2"));
        let stun = StunServer::tcp(STUN.parse().expect("an address"));
        let a = so_host(
            &mut sim,
            config(true, 23).stun_server(stun),
            ra,
            "10.0.0.1",
            false,
        );
        let b = so_host(
            &mut sim,
            config(false, 24).stun_server(stun),
            rb,
            "10.0.1.1",
            false,
        );
        let start = sim.now();
        assert!(connect(&mut sim, a, b, STEPS), "{nat:?}: connected");
        println!(
            "{nat:?}: connected by simultaneous open in {:?}",
            node(&sim, a).connected_at[&(S0, RTP)] - start
        );
        // The selected pair's remote is the peer's server-reflexive `so` candidate.
        for (n, peer_nat) in [(a, "203.0.113.2"), (b, "203.0.113.1")] {
            let p = &node(&sim, n).selected[&(S0, RTP)];
            assert_eq!(p.remote.address().ip(), ip(peer_nat), "{nat:?} node {n}");
            assert!(
                node(&sim, n)
                    .so
                    .outcomes
                    .iter()
                    .any(|o| o.2 == p.remote.address() && o.3 == SoOutcome::Connected),
                "{nat:?} node {n}: its own connect was the one made"
            );
        }
        assert_so_connected(&mut sim, a, b);
    }
}

/// The SYNs need not leave at the same moment behind NATs that drop unsolicited SYNs
/// silently (RFC 5382 REQ-4): the first side's SYN is dropped, its retransmission (1 s
/// later) meets the mapping the late side's own SYN made.
#[test]
fn a_late_side_still_connects_through_nats() {
    let mut sim = Sim::new(25);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    stun_server(&mut sim);
    let ra = sim.add_nat(NatType::PortRestricted, ip("203.0.113.1"));
    let rb = sim.add_nat(NatType::PortRestricted, ip("203.0.113.2"));
    let stun = StunServer::tcp(STUN.parse().expect("an address"));
    let a = so_host(
        &mut sim,
        config(true, 25).stun_server(stun),
        ra,
        "10.0.0.1",
        false,
    );
    let b = so_host(
        &mut sim,
        config(false, 26).stun_server(stun),
        rb,
        "10.0.1.1",
        false,
    );
    let late = Duration::from_millis(1500);
    let connected = exchange_late(&mut sim, a, b, late);
    assert!(connected, "connected");
    let dropped = sim.stats().dropped_nat_filter;
    assert!(dropped > 0, "the early SYN was dropped by the NAT");
    assert!(
        node(&sim, a).so.syns_sent > node(&sim, b).so.syns_sent,
        "the early side sent its SYN again"
    );
    assert_so_connected(&mut sim, a, b);
}

/// Exchanges credentials at once, `b`'s signalling with `a` at once and `a`'s with `b`
/// only `late` after; drives until both settle. Whether both connected.
fn exchange_late(sim: &mut Sim, a: NodeId, b: NodeId, late: Duration) -> bool {
    give_credentials(sim, a, b);
    give_credentials(sim, b, a);
    let until = sim.now() + late;
    let tick = Duration::from_millis(10);
    while sim.now() < until {
        signal(sim, b, a);
        sim.drive_for(tick, STEPS);
    }
    connect(sim, a, b, STEPS)
}

/// Public hosts, `so` only, one side's candidates reaching the other late: the early
/// side's SYN arrives alone and is refused (RST: nothing listens on an `so` port), which
/// fails that pair at once; the late side's SYN is refused in turn, and both components
/// fail cleanly with the checks' reason, long before any check timeout.
#[test]
fn a_lone_syn_is_refused_and_both_fail_cleanly() {
    let mut sim = Sim::new(27);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let a = so_host(&mut sim, config(true, 27), PUBLIC_REALM, "192.0.2.1", false);
    let b = so_host(
        &mut sim,
        config(false, 28),
        PUBLIC_REALM,
        "192.0.2.2",
        false,
    );
    let start = sim.now();
    let connected = exchange_late(&mut sim, a, b, Duration::from_secs(1));
    assert!(!connected, "no connection");
    for n in [a, b] {
        let so = &node(&sim, n).so;
        assert!(
            so.outcomes.iter().all(|o| o.3 == SoOutcome::Refused) && !so.outcomes.is_empty(),
            "node {n}: {:?}",
            so.outcomes
        );
        let failed = node(&sim, n).failed_at[&(S0, RTP)] - start;
        println!("node {n} failed after {failed:?}");
        assert!(failed < Duration::from_secs(3), "node {n}: {failed:?}");
        let reason = node(&sim, n).events.iter().find_map(|(_, e)| match e {
            AgentEvent::ComponentFailed { reason, .. } => Some(*reason),
            _ => None,
        });
        assert!(
            matches!(reason, Some(FailureReason::ChecksFailed(_))),
            "node {n}: {reason:?}"
        );
        assert!(node(&sim, n).tcp_connections.is_empty(), "node {n}");
    }
}

/// Public hosts with a listening socket and an `so` socket each: the `so` pair is checked
/// beside the active/passive ones and succeeds too (simultaneous open between hosts that
/// check it at once); the active/passive pair ranks higher and is selected (RFC 6544
/// §4.2). Resetting the `so` connection then fails only the `so` pair: the component
/// stays connected on its selected pair, the other pairs keep their state, and data goes
/// on.
#[test]
fn an_so_pair_coexists_with_active_passive_and_its_reset_fails_only_it() {
    let mut sim = Sim::new(29);
    // The active/passive checks (and the triggered ones they cause) go first and shift the
    // two sides' `so` checks apart by a Ta or so: 100 ms of latency keeps both SYNs in
    // flight at once, as on a path across the internet.
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(100)));
    let a = so_host(&mut sim, config(true, 29), PUBLIC_REALM, "192.0.2.1", true);
    let b = so_host(&mut sim, config(false, 30), PUBLIC_REALM, "192.0.2.2", true);
    assert!(connect(&mut sim, a, b, STEPS), "connected");
    // Let every pair be checked.
    sim.drive_for(Duration::from_secs(2), STEPS);
    let pairs = |sim: &mut Sim, n: NodeId| {
        sim.with_node::<AgentNode, _>(n, |node, _| {
            node.agent.stream_mut(S0).expect("stream").pairs()
        })
    };
    let so_pair =
        |p: &librice_proto::agent::PairInfo| tcp_type(p.local.transport()) == Some(TcpType::So);
    for n in [a, b] {
        let all = pairs(&mut sim, n);
        let so: Vec<_> = all.iter().filter(|p| so_pair(p)).collect();
        assert_eq!(so.len(), 1, "node {n}: one so pair: {all:#?}");
        assert_eq!(so[0].state, PairState::Succeeded, "node {n}: {:?}", so[0]);
        assert_eq!(tcp_type(so[0].remote.transport()), Some(TcpType::So));
        assert!(
            all.iter()
                .any(|p| !so_pair(p) && p.state == PairState::Succeeded),
            "node {n}: an active/passive pair succeeded too"
        );
        let selected = &node(&sim, n).selected[&(S0, RTP)];
        assert_ne!(
            tcp_type(selected.local.transport()),
            Some(TcpType::So),
            "node {n}"
        );
    }
    let before: Vec<_> = [a, b]
        .iter()
        .map(|&n| node(&sim, n).selected[&(S0, RTP)].clone())
        .collect();
    let (sa, sb) = (
        SocketAddr::new(ip("192.0.2.1"), SO),
        SocketAddr::new(ip("192.0.2.2"), SO),
    );
    // The `so` connection is reset: both ends are told.
    for (n, local, remote) in [(a, sa, sb), (b, sb, sa)] {
        sim.with_node::<AgentNode, _>(n, |node, now| {
            node.agent.handle_tcp_closed(now, local, remote);
            node.drain_events(now);
        });
    }
    sim.drive_for(Duration::from_secs(1), STEPS);
    for (i, n) in [a, b].into_iter().enumerate() {
        let all = pairs(&mut sim, n);
        assert!(
            all.iter()
                .all(|p| !so_pair(p) || p.state == PairState::Failed),
            "node {n}: the so pair failed or went: {all:#?}"
        );
        assert!(
            all.iter()
                .any(|p| !so_pair(p) && p.state == PairState::Succeeded),
            "node {n}: the other pairs stand"
        );
        assert_eq!(
            node(&sim, n).agent.component_state(S0, RTP),
            Some(ComponentState::Connected),
            "node {n}"
        );
        assert_eq!(node(&sim, n).selected[&(S0, RTP)], before[i], "node {n}");
        assert!(
            !node(&sim, n)
                .events
                .iter()
                .any(|(_, e)| matches!(e, AgentEvent::SelectedPairLost { .. })),
            "node {n}"
        );
    }
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(&mut sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "node {from} -> node {to}");
    }
}

/// Two public hosts with `so` sockets only, checking at once: the simultaneous open
/// succeeds without NATs too, and the selected pair is `so` on both sides.
#[test]
fn public_hosts_connect_by_simultaneous_open() {
    let mut sim = Sim::new(31);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let a = so_host(&mut sim, config(true, 31), PUBLIC_REALM, "192.0.2.1", false);
    let b = so_host(
        &mut sim,
        config(false, 32),
        PUBLIC_REALM,
        "192.0.2.2",
        false,
    );
    assert!(connect(&mut sim, a, b, STEPS), "connected");
    assert_so_connected(&mut sim, a, b);
}
