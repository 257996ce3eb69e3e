//! ICE-TCP (RFC 6544) on the simulator: agents with listening TCP sockets (passive
//! candidates, and active ones at port 9) and no UDP. The simulated network carries each
//! TCP message as one packet, through NATs with TCP mappings; the harness opens the
//! connections the agents ask for at once (`AgentNode::serve_io_requests`). Every run is
//! deterministic.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use librice_proto::TransportType;
use librice_proto::agent::{AgentConfig, AgentEvent, ComponentState, FailureReason};
use librice_proto::candidate::{CandidateTransport, IceOption, TcpType};
use librice_proto::stun::transaction::RetransmitConfig;

use crate::harness::flow::Flow;
use crate::harness::ice::{
    AgentNode, RTP, S0, Signal, add_host, connect, give_credentials, send_data, signal,
};
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, RealmId, Sim};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);
/// The port of every listening socket.
const LISTEN: u16 = 7000;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// Checks over TCP give up after 5 s (RFC 8489's Ti is 39.5 s) so that failures come soon.
fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
        .check_retransmit(RetransmitConfig {
            reliable_timeout: Duration::from_secs(5),
            ..RetransmitConfig::default()
        })
}

/// An agent with one stream of one component and a listening TCP socket on each of `ips`
/// (port [`LISTEN`]), in `realm`; gathering started.
fn tcp_host(sim: &mut Sim, config: AgentConfig, realm: RealmId, ips: &[&str]) -> NodeId {
    let ips: Vec<IpAddr> = ips.iter().map(|a| ip(a)).collect();
    let sockets: Vec<_> = ips
        .iter()
        .map(|&a| (TransportType::Tcp, SocketAddr::new(a, LISTEN)))
        .collect();
    add_host(sim, config, realm, &ips, &sockets)
}

fn tcp_type(t: CandidateTransport) -> Option<TcpType> {
    match t {
        CandidateTransport::Tcp(t) => Some(t),
        _ => None,
    }
}

/// Both sides' selected pairs are TCP, one side's local candidate active and the other's
/// passive, and data goes both ways over it.
fn assert_tcp_connected(sim: &mut Sim, a: NodeId, b: NodeId) {
    for n in [a, b] {
        let p = &node(sim, n).selected[&(S0, RTP)];
        assert_eq!(p.transport, TransportType::Tcp, "node {n}: {p:?}");
    }
    let (pa, pb) = (
        &node(sim, a).selected[&(S0, RTP)],
        &node(sim, b).selected[&(S0, RTP)],
    );
    let types = [
        tcp_type(pa.local.transport()),
        tcp_type(pb.local.transport()),
    ];
    assert!(
        types.contains(&Some(TcpType::Active)) && types.contains(&Some(TcpType::Passive)),
        "one active, one passive: {types:?}"
    );
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "node {from} -> node {to}");
    }
}

/// RFC 6544 §4: a listening socket gives a passive candidate at its address and an active
/// one at port 9, the active one preferred (§4.2: direction preference 6 against 4).
#[test]
fn a_listening_socket_gives_a_passive_and_an_active_candidate() {
    let mut sim = Sim::new(1);
    let a = tcp_host(&mut sim, config(true, 1), PUBLIC_REALM, &["192.0.2.1"]);
    let local = sim.with_node::<AgentNode, _>(a, |n, _| {
        n.agent.stream_mut(S0).expect("stream").local_candidates()
    });
    let passive = local
        .iter()
        .find(|c| c.transport() == CandidateTransport::Tcp(TcpType::Passive))
        .expect("a passive candidate");
    let active = local
        .iter()
        .find(|c| c.transport() == CandidateTransport::Tcp(TcpType::Active))
        .expect("an active candidate");
    assert_eq!(passive.address(), SocketAddr::new(ip("192.0.2.1"), LISTEN));
    assert_eq!(active.address(), SocketAddr::new(ip("192.0.2.1"), 9));
    assert!(active.priority() > passive.priority());
    assert_eq!(local.len(), 2, "{local:?}");
}

/// Two public hosts, TCP only: the controlling side's active candidate connects to the
/// other's passive one (and the other way round), and data flows over TCP.
#[test]
fn public_hosts_connect_over_tcp() {
    for seed in [2, 3] {
        let mut sim = Sim::new(seed);
        sim.set_default_link(LinkConfig::with_latency(LATENCY));
        let a = tcp_host(&mut sim, config(true, seed), PUBLIC_REALM, &["192.0.2.1"]);
        let b = tcp_host(
            &mut sim,
            config(false, seed + 1),
            PUBLIC_REALM,
            &["192.0.2.2"],
        );
        let start = sim.now();
        assert!(connect(&mut sim, a, b, STEPS), "connected over TCP");
        let took = node(&sim, a).connected_at[&(S0, RTP)] - start;
        println!("seed {seed}: connected over TCP in {took:?}");
        assert_tcp_connected(&mut sim, a, b);
        // Every connection came from an active candidate (port 9's IP) to a passive one.
        for n in [a, b] {
            for (local, remote) in &node(&sim, n).tcp_connections {
                assert_ne!(local.port(), 9);
                assert_eq!(remote.port(), LISTEN);
            }
        }
    }
}

/// The active side behind a NAT connects to the public passive side; the public side's
/// own connections to the NAT's private address go nowhere, and do not get in the way.
#[test]
fn active_side_behind_a_nat_connects() {
    for nat in NatType::ALL {
        let mut sim = Sim::new(4);
        sim.set_default_link(LinkConfig::with_latency(LATENCY));
        let realm = sim.add_nat(nat, ip("203.0.113.1"));
        let a = tcp_host(&mut sim, config(true, 4), realm, &["10.0.0.1"]);
        let b = tcp_host(&mut sim, config(false, 5), PUBLIC_REALM, &["192.0.2.2"]);
        assert!(connect(&mut sim, a, b, STEPS), "{nat:?}: connected");
        let pa = &node(&sim, a).selected[&(S0, RTP)];
        assert_eq!(
            tcp_type(pa.local.transport()),
            Some(TcpType::Active),
            "{nat:?}: the NATed side connected out"
        );
        assert_eq!(
            pa.remote.address(),
            SocketAddr::new(ip("192.0.2.2"), LISTEN)
        );
        assert_tcp_connected(&mut sim, a, b);
    }
}

/// Both sides behind NATs, TCP only: no connection can reach a passive candidate, and
/// both components fail with the checks' reasons: their own checks time out (Ti, 5 s
/// here), then they wait as long again for the peer's connections, which never come.
#[test]
fn both_behind_nats_fail_cleanly() {
    let mut sim = Sim::new(6);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let ra = sim.add_nat(NatType::PortRestricted, ip("203.0.113.1"));
    let rb = sim.add_nat(NatType::PortRestricted, ip("203.0.113.2"));
    let a = tcp_host(&mut sim, config(true, 6), ra, &["10.0.0.1"]);
    let b = tcp_host(&mut sim, config(false, 7), rb, &["10.0.1.1"]);
    let start = sim.now();
    assert!(
        !connect(&mut sim, a, b, STEPS),
        "no TCP path between two NATs"
    );
    for n in [a, b] {
        let failed = node(&sim, n).failed_at[&(S0, RTP)];
        println!("node {n} failed after {:?}", failed - start);
        let took = failed - start;
        assert!(
            took >= Duration::from_secs(10) && took <= Duration::from_secs(11),
            "{took:?}"
        );
        let reason = node(&sim, n).events.iter().find_map(|(_, e)| match e {
            AgentEvent::ComponentFailed { reason, .. } => Some(*reason),
            _ => None,
        });
        assert!(
            matches!(reason, Some(FailureReason::ChecksFailed(_))),
            "node {n}: {reason:?}"
        );
    }
}

/// Two TCP paths between the hosts (two addresses on one side), renomination in use: when
/// the selected pair's connection is reset, that pair fails, and the controlling agent
/// moves to the other valid pair; data goes on.
#[test]
fn a_reset_connection_fails_its_pair_and_the_agent_moves_on() {
    let mut sim = Sim::new(8);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let a = tcp_host(
        &mut sim,
        config(true, 8).renomination(true),
        PUBLIC_REALM,
        &["192.0.2.1", "192.0.2.11"],
    );
    let b = tcp_host(
        &mut sim,
        config(false, 9).renomination(true),
        PUBLIC_REALM,
        &["192.0.2.2"],
    );
    for n in [a, b] {
        sim.with_node::<AgentNode, _>(n, |node, _| {
            node.agent
                .stream_mut(S0)
                .expect("stream")
                .set_remote_ice_options(&[IceOption::Renomination]);
        });
    }
    assert!(connect(&mut sim, a, b, STEPS), "connected");
    // Let every pair be checked.
    sim.drive_for(Duration::from_secs(2), STEPS);
    let mut flow = Flow::new(a, b);
    for _ in 0..20 {
        flow.tick(&mut sim);
    }
    let before = node(&sim, a).selected[&(S0, RTP)].clone();
    let (pa, pb) = (before.local_base, before.remote.address());
    // The connection of the selected pair is reset: both ends are told.
    let reset_at = sim.now();
    for (n, local, remote) in [(a, pa, pb), (b, pb, pa)] {
        sim.with_node::<AgentNode, _>(n, |node, now| {
            node.agent.handle_tcp_closed(now, local, remote);
            node.drain_events(now);
        });
    }
    for _ in 0..100 {
        flow.tick(&mut sim);
    }
    let after = node(&sim, a).selected[&(S0, RTP)].clone();
    println!(
        "selected {} -> {} before the reset, {} -> {} after",
        before.local_base,
        before.remote.address(),
        after.local_base,
        after.remote.address()
    );
    assert_ne!(
        (after.local_base, after.remote.address()),
        (pa, pb),
        "moved to another pair"
    );
    assert!(
        node(&sim, a)
            .events
            .iter()
            .any(|(t, e)| *t >= reset_at && matches!(e, AgentEvent::SelectedPairLost { .. })),
        "the lost pair was reported"
    );
    for n in [a, b] {
        assert_eq!(
            node(&sim, n).agent.component_state(S0, RTP),
            Some(ComponentState::Connected),
            "node {n}"
        );
    }
    // The last half second of the flow arrived both ways.
    let last = |to: NodeId| {
        let times = &node(&sim, to).received_at;
        let end = *times.last().expect("data");
        times
            .iter()
            .filter(|t| end - **t < Duration::from_millis(500))
            .count()
    };
    assert!(
        last(a) >= 45 && last(b) >= 45,
        "data goes on: {} {}",
        last(a),
        last(b)
    );
}

/// A peer that offers active candidates only (as browsers do): this side has no pair of
/// its own to check, so it waits for the peer's connection to its passive candidate rather
/// than failing, and connects over it.
#[test]
fn a_peer_with_active_candidates_only_connects_to_the_passive_one() {
    let mut sim = Sim::new(10);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let a = tcp_host(&mut sim, config(false, 10), PUBLIC_REALM, &["192.0.2.1"]);
    let b = tcp_host(&mut sim, config(true, 11), PUBLIC_REALM, &["192.0.2.2"]);
    give_credentials(&mut sim, a, b);
    give_credentials(&mut sim, b, a);
    // b's signalling carries its active candidate only; a's carries everything.
    let deliver = |sim: &mut Sim| {
        let from_b: Vec<Signal> =
            sim.with_node::<AgentNode, _>(b, |n, _| n.outbox.drain(..).collect());
        sim.with_node::<AgentNode, _>(a, |n, now| {
            for signal in from_b {
                match signal {
                    Signal::Candidate(sid, c)
                        if c.transport() == CandidateTransport::Tcp(TcpType::Active) =>
                    {
                        n.agent
                            .stream_mut(sid)
                            .expect("stream")
                            .add_remote_candidate(c)
                            .expect("a candidate");
                    }
                    Signal::EndOfCandidates(sid) => n
                        .agent
                        .stream_mut(sid)
                        .expect("stream")
                        .end_of_remote_candidates(),
                    _ => {}
                }
            }
            n.drain_events(now);
        });
        signal(sim, a, b);
    };
    sim.drive_until(STEPS, |sim| {
        deliver(sim);
        sim.node_mut::<AgentNode>(a).all_settled() && sim.node_mut::<AgentNode>(b).all_settled()
    });
    assert!(
        node(&sim, a).failed_at.is_empty(),
        "a waited for b's connection"
    );
    let pa = &node(&sim, a).selected[&(S0, RTP)];
    assert_eq!(
        tcp_type(pa.local.transport()),
        Some(TcpType::Passive),
        "{pa:?}"
    );
    assert_tcp_connected(&mut sim, a, b);
}
