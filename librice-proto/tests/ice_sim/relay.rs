//! ICE over TURN relays on the simulator: the NAT pairs that cannot connect directly
//! connect through the in-process TURN server, with data both ways.

use std::net::SocketAddr;
use std::time::Duration;

use librice_proto::agent::{AgentConfig, ComponentState, StunServer, TurnServer};
use librice_proto::candidate::CandidateType;

use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, Signal, add_agent, connect, give_credentials, selected,
    send_data, signal,
};
use crate::harness::turn_server::{TurnServerConfig, TurnServerNode};
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, Sim, StunServerNode};

const STEPS: usize = 500_000;

/// Two agents behind `nat_a` and `nat_b`, a STUN server and a TURN server in public;
/// `relay_only` makes both use only relayed candidates.
fn world(
    nat_a: NatType,
    nat_b: NatType,
    relay_only: bool,
    seed: u64,
) -> (Sim, NodeId, NodeId, NodeId) {
    world_with(nat_a, nat_b, relay_only, seed, None)
}

/// [`world`] with the TURN server's longest lifetime capped at `max_lifetime`.
pub(crate) fn world_with(
    nat_a: NatType,
    nat_b: NatType,
    relay_only: bool,
    seed: u64,
    max_lifetime: Option<Duration>,
) -> (Sim, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
    let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
    let turn_listen: SocketAddr = "198.51.100.2:3478".parse().unwrap();
    let relay_ip = "198.51.100.3".parse().unwrap();
    let mut turn_config = TurnServerConfig::new(turn_listen, relay_ip);
    if let Some(max) = max_lifetime {
        turn_config.max_lifetime = max;
    }
    let (user, pass) = (turn_config.username.clone(), turn_config.password.clone());
    let turn = sim.add_node(
        PUBLIC_REALM,
        &[turn_listen.ip(), relay_ip],
        Box::new(TurnServerNode::new(turn_config)),
    );
    let ra = sim.add_nat(nat_a, "203.0.113.1".parse().unwrap());
    let rb = sim.add_nat(nat_b, "203.0.113.2".parse().unwrap());
    let cfg = |controlling, s| {
        AgentConfig::default()
            .controlling(controlling)
            .rng_seed(s)
            .stun_server(StunServer::udp(stun))
            .turn_server(TurnServer::udp(turn_listen, &user, &pass))
            .relay_only(relay_only)
    };
    let a = add_agent(&mut sim, AgentSpec::new(cfg(true, seed), ra, "10.0.1.1"));
    let b = add_agent(
        &mut sim,
        AgentSpec::new(cfg(false, seed + 1), rb, "10.0.2.1"),
    );
    (sim, a, b, turn)
}

fn assert_data(sim: &mut Sim, a: NodeId, b: NodeId) {
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "{from}->{to}");
    }
}

#[test]
fn symmetric_with_symmetric_connects_through_the_relay() {
    let (mut sim, a, b, turn) = world(NatType::Symmetric, NatType::Symmetric, false, 41);
    assert!(connect(&mut sim, a, b, STEPS), "connects through the relay");
    let pa = selected(&sim, a, S0, RTP);
    let pb = selected(&sim, b, S0, RTP);
    assert!(
        pa.local.candidate_type() == CandidateType::Relayed
            || pa.remote.candidate_type() == CandidateType::Relayed,
        "{pa:?}"
    );
    assert!(
        pb.local.candidate_type() == CandidateType::Relayed
            || pb.remote.candidate_type() == CandidateType::Relayed,
        "{pb:?}"
    );
    assert_data(&mut sim, a, b);
    assert!(sim.node::<TurnServerNode>(turn).stats().relayed_to_peer > 0);
}

#[test]
fn relay_only_uses_relayed_candidates_and_releases_them() {
    let (mut sim, a, b, turn) = world(NatType::FullCone, NatType::FullCone, true, 43);
    assert!(connect(&mut sim, a, b, STEPS));
    for n in [a, b] {
        let signalled: Vec<_> = sim
            .node::<AgentNode>(n)
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                librice_proto::agent::AgentEvent::LocalCandidate { candidate, .. } => {
                    Some(candidate.candidate_type())
                }
                _ => None,
            })
            .collect();
        assert!(!signalled.is_empty());
        assert!(
            signalled.iter().all(|t| *t == CandidateType::Relayed),
            "{signalled:?}"
        );
        let p = selected(&sim, n, S0, RTP);
        assert_eq!(p.local.candidate_type(), CandidateType::Relayed);
    }
    assert_data(&mut sim, a, b);
    assert_eq!(sim.node::<TurnServerNode>(turn).allocation_count(), 2);
    for n in [a, b] {
        sim.with_node::<AgentNode, _>(n, |node, now| node.agent.close(now));
    }
    sim.drive_for(Duration::from_secs(2), STEPS);
    assert_eq!(
        sim.node::<TurnServerNode>(turn).allocation_count(),
        0,
        "allocations released"
    );
    assert_eq!(
        sim.node::<AgentNode>(a).agent.component_state(S0, RTP),
        Some(ComponentState::Connected)
    );
}

/// Relay-only agents behind port-restricted NATs, connected, with data every 10 s both ways
/// for one virtual hour; the server grants 120 s allocations, so allocation, permission
/// and channel refreshes all happen many times, and no datagram is lost.
#[test]
fn one_virtual_hour_through_the_relay() {
    let (mut sim, a, b, turn) = world_with(
        NatType::PortRestricted,
        NatType::PortRestricted,
        true,
        47,
        Some(Duration::from_secs(120)),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    for minute in 0..60 {
        for _ in 0..6 {
            for (from, to) in [(a, b), (b, a)] {
                let got = send_data(&mut sim, from, to, 1, Duration::from_secs(5));
                assert_eq!(
                    got.get(&(S0, RTP)),
                    Some(&1),
                    "minute {minute}: {from}->{to}"
                );
            }
        }
    }
    let stats = sim.node::<TurnServerNode>(turn).stats();
    assert!(stats.refreshes >= 2 * 25, "allocation refreshes: {stats:?}");
    assert!(
        stats.permissions >= 2 * 10,
        "permission refreshes: {stats:?}"
    );
    assert!(stats.channel_binds >= 2 * 5, "channel refreshes: {stats:?}");
    assert_eq!(stats.expired_allocations, 0, "{stats:?}");
    assert_eq!(stats.expired_permissions, 0, "{stats:?}");
    assert!(
        stats.channel_data_from_client > 0,
        "data went in ChannelData: {stats:?}"
    );
}

/// The server changes its nonce mid-session: the next refreshes get 438 and are retried
/// with the new nonce; the session goes on.
#[test]
fn stale_nonce_mid_session() {
    let (mut sim, a, b, turn) = world_with(
        NatType::FullCone,
        NatType::FullCone,
        true,
        53,
        Some(Duration::from_secs(120)),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    sim.node_mut::<TurnServerNode>(turn).rotate_nonce();
    for _ in 0..30 {
        for (from, to) in [(a, b), (b, a)] {
            let got = send_data(&mut sim, from, to, 1, Duration::from_secs(10));
            assert_eq!(got.get(&(S0, RTP)), Some(&1));
        }
    }
    let stats = sim.node::<TurnServerNode>(turn).stats();
    assert!(stats.stale_nonces >= 2, "{stats:?}");
    assert_eq!(stats.expired_allocations, 0, "{stats:?}");
}

/// The server forgets every allocation: the next refresh gets 437 Allocation Mismatch and
/// each agent allocates again, announcing the new relayed candidate.
#[test]
fn forgotten_allocation_is_replaced() {
    let (mut sim, a, b, turn) = world_with(
        NatType::FullCone,
        NatType::FullCone,
        true,
        59,
        Some(Duration::from_secs(120)),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    let relays_before: Vec<usize> = [a, b].iter().map(|&n| relay_candidates(&sim, n)).collect();
    sim.node_mut::<TurnServerNode>(turn).forget_allocations();
    assert_eq!(sim.node::<TurnServerNode>(turn).allocation_count(), 0);
    sim.drive_for(Duration::from_secs(180), STEPS);
    let stats = sim.node::<TurnServerNode>(turn).stats();
    assert!(stats.mismatches >= 2, "437 answered: {stats:?}");
    assert_eq!(
        sim.node::<TurnServerNode>(turn).allocation_count(),
        2,
        "reallocated"
    );
    for (i, &n) in [a, b].iter().enumerate() {
        assert_eq!(
            relay_candidates(&sim, n),
            relays_before[i] + 1,
            "a new relayed candidate is announced"
        );
    }
}

/// How many relayed candidates node `n` announced.
fn relay_candidates(sim: &Sim, n: NodeId) -> usize {
    sim.node::<AgentNode>(n)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(e, librice_proto::agent::AgentEvent::LocalCandidate { candidate, .. }
                if candidate.candidate_type() == CandidateType::Relayed)
        })
        .count()
}

/// The order of signalling that loses the first check through a relay: A (relay-only)
/// announces its relayed candidate before it learns B's address, so B's first check
/// reaches the TURN server before A's permission for B exists and is dropped. A then
/// learns B's candidates, installs the permission and checks B through the relay; B must
/// re-check the pair it has in progress at once (RFC 8445 §7.3.1.4) instead of waiting
/// for its check's retransmission (500 ms), in either role.
#[test]
fn first_check_dropped_before_the_permission_is_recovered_at_once() {
    for (a_controls, seed) in [(true, 61), (false, 62)] {
        let mut sim = Sim::new(seed);
        sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
        let turn_listen: SocketAddr = "198.51.100.2:3478".parse().unwrap();
        let turn_config = TurnServerConfig::new(turn_listen, "198.51.100.3".parse().unwrap());
        let (user, pass) = (turn_config.username.clone(), turn_config.password.clone());
        let turn = sim.add_node(
            PUBLIC_REALM,
            &[turn_listen.ip(), "198.51.100.3".parse().unwrap()],
            Box::new(TurnServerNode::new(turn_config)),
        );
        let a_config = AgentConfig::default()
            .controlling(a_controls)
            .rng_seed(seed)
            .turn_server(TurnServer::udp(turn_listen, &user, &pass))
            .relay_only(true);
        let b_config = AgentConfig::default()
            .controlling(!a_controls)
            .rng_seed(seed + 100);
        let a = add_agent(
            &mut sim,
            AgentSpec::new(a_config, PUBLIC_REALM, "192.0.2.10"),
        );
        let b = add_agent(
            &mut sim,
            AgentSpec::new(b_config, PUBLIC_REALM, "192.0.2.20"),
        );

        // A gathers its relayed candidate; B gets it (and A's credentials) first.
        let gathered = sim.drive_until(STEPS, |sim| {
            sim.node::<AgentNode>(a)
                .outbox
                .iter()
                .any(|s| matches!(s, Signal::EndOfCandidates(_)))
        });
        assert!(gathered, "A gathered");
        give_credentials(&mut sim, a, b);
        signal(&mut sim, a, b);
        // B checks A's relayed address at once; the server drops it (no permission yet).
        sim.drive_for(Duration::from_millis(40), STEPS);
        let dropped = sim.node::<TurnServerNode>(turn).stats().dropped;
        assert!(dropped >= 1, "B's first check was dropped at the relay");
        assert!(sim.node::<AgentNode>(b).connected_at.is_empty());

        // Only now does A learn B's candidates.
        let told = sim.now();
        give_credentials(&mut sim, b, a);
        assert!(
            connect(&mut sim, a, b, STEPS),
            "connects (A controlling: {a_controls})"
        );
        for n in [a, b] {
            let at = sim.node::<AgentNode>(n).connected_at[&(S0, RTP)];
            let took = at - told;
            assert!(
                took < Duration::from_millis(200),
                "node {n} connected {took:?} after A learnt B's candidates (a retransmission \
                 would take 500 ms); A controlling: {a_controls}"
            );
        }
        assert_eq!(
            selected(&sim, a, S0, RTP).local.candidate_type(),
            CandidateType::Relayed
        );
        assert_data(&mut sim, a, b);
    }
}
