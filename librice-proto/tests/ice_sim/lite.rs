//! ICE-lite on the simulator (RFC 8445 §2.5): a full agent and a lite agent connect and
//! exchange data, the lite side stays controlled whatever it was configured with and
//! whatever the tie-breakers, sends no request of any kind, gathers nothing from a STUN
//! server, loses its component when the full peer stops checking, and follows the full
//! peer's restart; a full agent told that its peer is lite takes the controlling role and
//! nominates.

use std::net::SocketAddr;
use std::time::Duration;

use librice_proto::agent::{
    AgentConfig, AgentEvent, ComponentState, DEFAULT_CONSENT_TIMEOUT, FailureReason, RestartOrigin,
    StunServer,
};
use librice_proto::candidate::CandidateType;
use librice_proto::stun::attr::{AttributeType, ErrorCode};
use librice_proto::stun::{Message, MessageClass};

use crate::harness::flow::Flow;
use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, assert_pairs_match, connect, give_credentials,
    selected, send_data,
};
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, Sim, StunServerNode};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);

fn full(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

fn lite(seed: u64) -> AgentConfig {
    AgentConfig::default().lite(true).rng_seed(seed)
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// Tells node `n` that its peer is (or is not) a lite agent.
fn set_remote_lite(sim: &mut Sim, n: NodeId, lite: bool) {
    sim.with_node::<AgentNode, _>(n, |node, now| {
        node.agent
            .stream_mut(S0)
            .expect("stream")
            .set_remote_lite(lite);
        node.drain_events(now);
    });
}

/// The STUN messages node `n` sent, parsed, with where they went.
fn stun_sent(sim: &Sim, n: NodeId) -> Vec<(SocketAddr, MessageClass, Vec<u8>)> {
    sim.packets()
        .into_iter()
        .filter(|p| p.node == n)
        .filter_map(|p| {
            let class = Message::parse(&p.data).ok()?.class();
            Some((p.to, class, p.data))
        })
        .collect()
}

/// How many Binding requests node `n` sent.
fn requests_sent(sim: &Sim, n: NodeId) -> usize {
    stun_sent(sim, n)
        .iter()
        .filter(|(_, class, _)| *class == MessageClass::Request)
        .count()
}

/// Sends 10 datagrams each way and asserts all arrive, with the bytes intact.
fn assert_data_both_ways(sim: &mut Sim, a: NodeId, b: NodeId) {
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "{from}->{to}");
    }
}

/// A full agent (`full_cfg`, optionally behind a port-restricted NAT) and a lite agent on
/// the public network, 10 ms apart, connected; the full agent is told its peer is lite
/// when `tell`.
fn connected(
    seed: u64,
    full_cfg: AgentConfig,
    behind_nat: bool,
    tell: bool,
) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let realm = if behind_nat {
        sim.add_nat(
            NatType::PortRestricted,
            "203.0.113.1".parse().expect("an IP"),
        )
    } else {
        PUBLIC_REALM
    };
    let f = add_agent(&mut sim, AgentSpec::new(full_cfg, realm, "10.0.0.1"));
    let l = add_agent(
        &mut sim,
        AgentSpec::new(lite(seed + 100), PUBLIC_REALM, "192.0.2.2"),
    );
    if tell {
        set_remote_lite(&mut sim, f, true);
    }
    assert!(connect(&mut sim, f, l, STEPS), "full and lite connect");
    (sim, f, l)
}

#[test]
fn full_controlling_and_lite_connect_with_data_both_ways() {
    let (mut sim, f, l) = connected(1, full(true, 1), false, true);
    assert!(node(&sim, f).agent.controlling());
    assert!(!node(&sim, l).agent.controlling());
    assert_pairs_match(&sim, f, l);
    let pl = selected(&sim, l, S0, RTP);
    assert_eq!(pl.local.candidate_type(), CandidateType::Host);
    assert_eq!(pl.remote.address(), "10.0.0.1:5001".parse().unwrap());
    assert_data_both_ways(&mut sim, f, l);
    assert_eq!(requests_sent(&sim, l), 0, "the lite agent sent a request");
    // Connected in one round trip of checks plus the nomination: no Ta wait for a check
    // of the lite side's, which never comes.
    let at = node(&sim, l).connected_at[&(S0, RTP)] - sim.start();
    println!("lite connected after {at:?}");
    assert!(at < Duration::from_millis(300), "{at:?}");
}

#[test]
fn full_behind_a_nat_and_lite_on_a_public_address_connect() {
    let (mut sim, f, l) = connected(2, full(true, 2), true, true);
    // The lite side only knows the full side by the NAT's mapping: a peer-reflexive
    // candidate learnt from the nominating check.
    let pl = selected(&sim, l, S0, RTP);
    assert_eq!(pl.remote.candidate_type(), CandidateType::PeerReflexive);
    assert_eq!(pl.remote.address().ip().to_string(), "203.0.113.1");
    assert_data_both_ways(&mut sim, f, l);
    assert_eq!(requests_sent(&sim, l), 0);
}

#[test]
fn lite_is_controlled_even_if_configured_controlling() {
    let mut sim = Sim::new(3);
    let l = add_agent(
        &mut sim,
        AgentSpec::new(lite(3).controlling(true), PUBLIC_REALM, "192.0.2.2"),
    );
    let agent = &node(&sim, l).agent;
    assert!(agent.config().is_lite());
    assert!(!agent.controlling());
    assert!(!agent.config().is_controlling());
}

/// A full agent configured controlled, not told its peer is lite: its checks claim the
/// controlled role, the lite agent answers 487 whatever the tie-breakers (RFC 8445
/// §6.1.1: the lite agent is always controlled), and the full agent switches
/// (RFC 8445 §7.2.5.1). Over several seeds, so that the lite agent's tie-breaker is the
/// larger one at least once (a full agent would have switched itself then).
#[test]
fn a_role_conflict_with_a_lite_agent_ends_with_the_full_side_controlling() {
    let mut lite_larger = 0;
    for seed in 10..16 {
        let (mut sim, f, l) = connected(seed, full(false, seed), false, false);
        let (tf, tl) = (
            node(&sim, f).agent.tie_breaker(),
            node(&sim, l).agent.tie_breaker(),
        );
        if tl >= tf {
            lite_larger += 1;
        }
        assert!(node(&sim, f).agent.controlling(), "seed {seed}");
        assert!(!node(&sim, l).agent.controlling(), "seed {seed}");
        let switched = node(&sim, f)
            .events
            .iter()
            .any(|(_, e)| matches!(e, AgentEvent::RoleChange { controlling: true }));
        assert!(
            switched,
            "seed {seed}: the full agent took the controlling role"
        );
        assert!(
            !node(&sim, l)
                .events
                .iter()
                .any(|(_, e)| matches!(e, AgentEvent::RoleChange { .. })),
            "seed {seed}: the lite agent never changes role"
        );
        let conflicts = stun_sent(&sim, l)
            .iter()
            .filter(|(_, class, data)| {
                *class == MessageClass::Error
                    && Message::parse(data).ok().and_then(|m| {
                        m.attribute::<ErrorCode<'_>>()
                            .ok()
                            .flatten()
                            .map(|c| c.code)
                    }) == Some(ErrorCode::ROLE_CONFLICT)
            })
            .count();
        assert!(conflicts >= 1, "seed {seed}: the lite agent answered 487");
        assert_eq!(requests_sent(&sim, l), 0, "seed {seed}");
        assert_data_both_ways(&mut sim, f, l);
    }
    assert!(
        lite_larger > 0,
        "no seed gave the lite agent the larger tie-breaker"
    );
}

/// Connected for a minute: the full side's consent checks keep the lite side alive, and
/// the lite side sends only responses (and data).
#[test]
fn lite_agent_never_sends_a_binding_request() {
    let (mut sim, f, l) = connected(4, full(true, 4), false, true);
    sim.drive_for(Duration::from_secs(60), STEPS);
    for n in [f, l] {
        assert_eq!(
            sim.node_mut::<AgentNode>(n).agent.component_state(S0, RTP),
            Some(ComponentState::Connected),
            "node {n}"
        );
    }
    let sent = stun_sent(&sim, l);
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|(_, class, _)| *class != MessageClass::Request),
        "the lite agent sent a request"
    );
    let responses = sent
        .iter()
        .filter(|(_, class, _)| *class == MessageClass::Success)
        .count();
    // Checks, the nomination, then a consent check every 4-6 s for a minute.
    assert!(responses >= 11, "{responses} responses");
    assert!(requests_sent(&sim, f) >= 11);
}

#[test]
fn lite_agent_with_a_stun_server_configured_does_no_gathering_query() {
    let mut sim = Sim::new(5);
    let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    let server = sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
    let l = add_agent(
        &mut sim,
        AgentSpec::new(
            lite(5).stun_server(StunServer::udp(stun)),
            PUBLIC_REALM,
            "192.0.2.2",
        ),
    );
    sim.drive_for(Duration::from_secs(5), STEPS);
    assert_eq!(sim.stats().sent, 0, "the lite agent sent something");
    assert_eq!(sim.node::<StunServerNode>(server).answered(), 0);
    assert!(node(&sim, l).agent.config().stun_servers().is_empty());
    let events: Vec<_> = node(&sim, l)
        .events
        .iter()
        .map(|(_, e)| e.clone())
        .collect();
    let candidates: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::LocalCandidate { candidate, .. } => Some(candidate.candidate_type()),
            _ => None,
        })
        .collect();
    assert_eq!(candidates, [CandidateType::Host]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::GatheringComplete { .. })),
        "gathering completes at once"
    );
    // A full agent with the same server does query it, so the check above can fail.
    let f = add_agent(
        &mut sim,
        AgentSpec::new(
            full(true, 6).stun_server(StunServer::udp(stun)),
            PUBLIC_REALM,
            "192.0.2.3",
        ),
    );
    sim.drive_for(Duration::from_secs(1), STEPS);
    assert!(sim.node::<StunServerNode>(server).answered() >= 1);
    assert_eq!(requests_sent(&sim, l), 0);
    let _ = f;
}

/// The full peer stops checking (its packets to the lite agent are lost): the lite
/// agent's consent expires the consent timeout after the last check it got, and the
/// component fails with ConsentLost, as a full agent's does.
#[test]
fn lite_consent_is_lost_when_the_peer_stops_checking() {
    let (mut sim, f, l) = connected(7, full(true, 7), false, true);
    sim.drive_for(Duration::from_secs(10), STEPS);
    let cut = sim.now();
    let expiry = sim
        .node::<AgentNode>(l)
        .agent
        .consent_expiry(S0, RTP)
        .expect("consent runs on the lite side");
    assert!(expiry > cut && expiry <= cut + DEFAULT_CONSENT_TIMEOUT);
    assert!(expiry >= cut + DEFAULT_CONSENT_TIMEOUT - Duration::from_secs(7));
    sim.set_link(
        f,
        l,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::with_latency(LATENCY)
        },
    );
    // Still connected just before the expiry (Disconnected, since the peer is silent).
    let before = expiry - Duration::from_millis(1) - sim.now();
    sim.drive_for(before, STEPS);
    assert!(
        node(&sim, l).failed_at.is_empty(),
        "failed before the expiry"
    );
    assert_eq!(
        sim.node::<AgentNode>(l).agent.component_state(S0, RTP),
        Some(ComponentState::Disconnected)
    );
    sim.drive_for(Duration::from_secs(2), STEPS);
    let failed = node(&sim, l).failed_at.get(&(S0, RTP)).copied();
    assert_eq!(failed, Some(expiry), "failed at the consent expiry");
    assert_eq!(
        node(&sim, l).agent.failure_reason(S0, RTP),
        Some(FailureReason::ConsentLost)
    );
    let events = &node(&sim, l).events;
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, AgentEvent::ConsentLost { .. }))
    );
    assert!(events.iter().any(|(_, e)| matches!(
        e,
        AgentEvent::ComponentFailed {
            reason: FailureReason::ConsentLost,
            ..
        }
    )));
    assert_eq!(requests_sent(&sim, l), 0);
}

/// The full peer restarts ICE while data flows both ways: the lite agent restarts on its
/// new credentials, the data goes on over the old pair and then the new one, and no
/// datagram is lost.
#[test]
fn restart_by_the_full_peer_while_data_flows() {
    restart_while_data_flows(8, false);
}

/// The same, restarted by the lite agent: the full peer follows (its new credentials
/// restart it), checks and nominates a pair of the new generation.
#[test]
fn restart_by_the_lite_agent_while_data_flows() {
    restart_while_data_flows(12, true);
}

fn restart_while_data_flows(seed: u64, by_lite: bool) {
    let (mut sim, f, l) = connected(seed, full(true, seed), false, true);
    let mut flow = Flow::new(f, l);
    for _ in 0..10 {
        flow.tick(&mut sim);
    }
    let t0 = sim.now();
    let (by, peer) = if by_lite { (l, f) } else { (f, l) };
    sim.with_node::<AgentNode, _>(by, |node, now| {
        node.agent.stream_mut(S0).expect("stream").restart(now);
        node.drain_events(now);
    });
    give_credentials(&mut sim, by, peer);
    give_credentials(&mut sim, peer, by);
    for _ in 0..100 {
        flow.tick(&mut sim);
    }
    sim.drive_for(Duration::from_millis(100), STEPS);
    let restarts = |n: NodeId| -> Vec<RestartOrigin> {
        node(&sim, n)
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                AgentEvent::Restarted { origin, .. } => Some(*origin),
                _ => None,
            })
            .collect()
    };
    assert_eq!(restarts(by), [RestartOrigin::Local]);
    assert_eq!(restarts(peer), [RestartOrigin::Remote]);
    for n in [f, l] {
        let switched = node(&sim, n)
            .events
            .iter()
            .find(|(t, e)| *t >= t0 && matches!(e, AgentEvent::SelectedPairChanged { .. }))
            .map(|(t, _)| *t - t0);
        let took = switched.unwrap_or_else(|| panic!("node {n} moved to the new pair"));
        println!("node {n} switched {took:?} after the restart");
        assert!(took < Duration::from_millis(500), "node {n}: {took:?}");
        let pairs: Vec<_> = node(&sim, n).received.iter().map(|r| r.2).collect();
        assert_ne!(
            pairs[0],
            pairs[pairs.len() - 1],
            "node {n}: data moved to the new pair"
        );
    }
    assert!(
        flow.refused.is_empty(),
        "a pair to send on, old or new: {:?}",
        flow.refused
    );
    for (to, from) in [(l, f), (f, l)] {
        let got = Flow::received(&sim, to).len() as u32;
        assert_eq!(got, flow.sent[&from], "node {to}: every datagram arrived");
    }
    assert_eq!(requests_sent(&sim, l), 0);
}

/// A full agent configured controlled and told its peer is lite takes the controlling
/// role at once (no role conflict on the wire) and nominates with USE-CANDIDATE.
#[test]
fn full_agent_with_a_remote_lite_peer_controls_and_nominates() {
    let (mut sim, f, l) = connected(9, full(false, 9), false, true);
    assert!(node(&sim, f).agent.controlling());
    let conflicts = stun_sent(&sim, l)
        .iter()
        .filter(|(_, class, _)| *class == MessageClass::Error)
        .count();
    assert_eq!(conflicts, 0, "no role conflict was needed");
    let nominating = stun_sent(&sim, f)
        .iter()
        .filter(|(_, class, data)| {
            *class == MessageClass::Request
                && Message::parse(data).is_ok_and(|m| m.has_attribute(AttributeType::USE_CANDIDATE))
        })
        .count();
    assert!(nominating >= 1, "the full agent nominated");
    assert!(
        sim.node_mut::<AgentNode>(f)
            .agent
            .stream_mut(S0)
            .expect("stream")
            .remote_lite()
    );
    assert_data_both_ways(&mut sim, f, l);
}

/// Two full agents behind NATs, with a STUN server, connect as before: nothing of the
/// lite support changes a full pair.
#[test]
fn two_full_agents_behind_nats_still_connect() {
    let mut sim = Sim::new(11);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
    let na = sim.add_nat(NatType::PortRestricted, "203.0.113.1".parse().unwrap());
    let nb = sim.add_nat(NatType::AddressRestricted, "203.0.113.2".parse().unwrap());
    let cfg = |c, s| full(c, s).stun_server(StunServer::udp(stun));
    let a = add_agent(&mut sim, AgentSpec::new(cfg(true, 11), na, "10.0.0.1"));
    let b = add_agent(&mut sim, AgentSpec::new(cfg(false, 12), nb, "10.1.0.1"));
    assert!(connect(&mut sim, a, b, STEPS));
    assert_pairs_match(&sim, a, b);
    assert_data_both_ways(&mut sim, a, b);
    assert!(requests_sent(&sim, a) > 0 && requests_sent(&sim, b) > 0);
}

/// Two streams of two components each, the full side behind a NAT: every component of the
/// lite agent is selected by its own nomination, and data flows on each.
#[test]
fn lite_with_two_streams_of_two_components() {
    let mut sim = Sim::new(13);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let lan = sim.add_nat(NatType::PortRestricted, "203.0.113.1".parse().unwrap());
    let f = add_agent(
        &mut sim,
        AgentSpec::new(full(true, 13), lan, "10.0.0.1").streams(&[2, 2]),
    );
    let l = add_agent(
        &mut sim,
        AgentSpec::new(lite(113), PUBLIC_REALM, "192.0.2.2").streams(&[2, 2]),
    );
    for sid in [S0, crate::harness::ice::S1] {
        sim.with_node::<AgentNode, _>(f, |node, _| {
            node.agent
                .stream_mut(sid)
                .expect("stream")
                .set_remote_lite(true);
        });
    }
    assert!(connect(&mut sim, f, l, STEPS));
    assert_eq!(node(&sim, l).connected_at.len(), 4);
    assert_eq!(node(&sim, f).connected_at.len(), 4);
    assert_pairs_match(&sim, f, l);
    for (from, to) in [(f, l), (l, f)] {
        let got = send_data(&mut sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.len(), 4, "{from}->{to}: {got:?}");
        assert!(got.values().all(|&n| n == 10), "{from}->{to}: {got:?}");
    }
    assert_eq!(requests_sent(&sim, l), 0);
}
