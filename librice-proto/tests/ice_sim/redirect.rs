//! Redirections during gathering, followed by the agent: a TURN server's 300 Try Alternate
//! moves the allocation to the alternate server (RFC 8656 §7.1), a STUN server's moves the
//! Binding query (RFC 8489 §10); each is followed once.

use std::net::SocketAddr;
use std::time::Duration;

use librice_proto::agent::{AgentConfig, AgentEvent, StunServer, TurnServer};
use librice_proto::candidate::CandidateType;

use crate::harness::ice::{AgentNode, AgentSpec, RTP, S0, add_agent, connect, selected, send_data};
use crate::harness::turn_server::{Misbehave, TurnServerConfig, TurnServerNode};
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, Sim, StunServerNode};

const STEPS: usize = 500_000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A TURN server node listening on `listen`, relaying from `relay_ip`.
fn turn_node(sim: &mut Sim, listen: SocketAddr, relay_ip: &str) -> NodeId {
    let relay_ip = relay_ip.parse().unwrap();
    let config = TurnServerConfig::new(listen, relay_ip);
    sim.add_node(
        PUBLIC_REALM,
        &[listen.ip(), relay_ip],
        Box::new(TurnServerNode::new(config)),
    )
}

/// The candidates of type `kind` that node `n` signalled.
fn signalled(sim: &Sim, n: NodeId, kind: CandidateType) -> Vec<SocketAddr> {
    sim.node::<AgentNode>(n)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            AgentEvent::LocalCandidate { candidate, .. } if candidate.candidate_type() == kind => {
                Some(candidate.address())
            }
            _ => None,
        })
        .collect()
}

/// Two relay-only agents behind full-cone NATs whose TURN server redirects every
/// allocation to an alternate: both allocate there, connect through its relays with data
/// both ways, and after the alternate forgets the allocations the agents allocate again
/// (through the configured server's redirection again).
#[test]
fn turn_try_alternate_is_followed_by_the_agent() {
    let mut sim = Sim::new(71);
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
    let (listen, alt_listen) = (addr("198.51.100.2:3478"), addr("198.51.100.4:3478"));
    let turn = turn_node(&mut sim, listen, "198.51.100.3");
    let alt = turn_node(&mut sim, alt_listen, "198.51.100.5");
    sim.node_mut::<TurnServerNode>(turn)
        .set_misbehave(Misbehave::TryAlternate(alt_listen));
    let (user, pass) = {
        let c = sim.node::<TurnServerNode>(turn).config();
        (c.username.clone(), c.password.clone())
    };
    let ra = sim.add_nat(NatType::FullCone, "203.0.113.1".parse().unwrap());
    let rb = sim.add_nat(NatType::FullCone, "203.0.113.2".parse().unwrap());
    let cfg = |controlling, seed| {
        AgentConfig::default()
            .controlling(controlling)
            .rng_seed(seed)
            .turn_server(TurnServer::udp(listen, &user, &pass))
            .relay_only(true)
    };
    let a = add_agent(&mut sim, AgentSpec::new(cfg(true, 71), ra, "10.0.1.1"));
    let b = add_agent(&mut sim, AgentSpec::new(cfg(false, 72), rb, "10.0.2.1"));
    assert!(
        connect(&mut sim, a, b, STEPS),
        "connected through the alternate"
    );
    for n in [a, b] {
        let relayed = signalled(&sim, n, CandidateType::Relayed);
        assert_eq!(relayed.len(), 1, "{relayed:?}");
        assert_eq!(
            relayed[0].ip(),
            "198.51.100.5".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            selected(&sim, n, S0, RTP).local.candidate_type(),
            CandidateType::Relayed
        );
    }
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(&mut sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "{from}->{to}");
    }
    assert_eq!(sim.node::<TurnServerNode>(turn).allocation_count(), 0);
    assert_eq!(sim.node::<TurnServerNode>(alt).allocation_count(), 2);

    // The alternate forgets the allocations: each agent allocates again, at the configured
    // server (which redirects again), and announces the new relayed candidate.
    sim.node_mut::<TurnServerNode>(alt).forget_allocations();
    sim.drive_for(Duration::from_secs(700), STEPS);
    assert_eq!(
        sim.node::<TurnServerNode>(alt).allocation_count(),
        2,
        "reallocated on the alternate"
    );
    for n in [a, b] {
        assert_eq!(signalled(&sim, n, CandidateType::Relayed).len(), 2);
    }
}

/// An agent behind a NAT whose STUN server redirects the Binding query: the query goes to
/// the alternate, which gives the server-reflexive candidate; a second redirection (the
/// alternate redirecting too) is not followed, and gathering still completes.
#[test]
fn stun_try_alternate_is_followed_once() {
    for (alternate_redirects, srflx_expected) in [(false, 1), (true, 0)] {
        let mut sim = Sim::new(73);
        sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
        let (stun, alt, third) = (
            addr("198.51.100.1:3478"),
            addr("198.51.100.6:3478"),
            addr("198.51.100.7:3478"),
        );
        sim.add_node(
            PUBLIC_REALM,
            &[stun.ip()],
            Box::new(StunServerNode::redirecting(alt)),
        );
        let alt_node = if alternate_redirects {
            StunServerNode::redirecting(third)
        } else {
            StunServerNode::new()
        };
        let alt_id = sim.add_node(PUBLIC_REALM, &[alt.ip()], Box::new(alt_node));
        let third_id = sim.add_node(PUBLIC_REALM, &[third.ip()], Box::new(StunServerNode::new()));
        let ra = sim.add_nat(NatType::PortRestricted, "203.0.113.1".parse().unwrap());
        let config = AgentConfig::default()
            .controlling(true)
            .rng_seed(73)
            .stun_server(StunServer::udp(stun));
        let a = add_agent(&mut sim, AgentSpec::new(config, ra, "10.0.1.1"));
        sim.drive_for(Duration::from_secs(10), STEPS);
        let srflx = signalled(&sim, a, CandidateType::ServerReflexive);
        assert_eq!(srflx.len(), srflx_expected, "{srflx:?}");
        if let Some(mapped) = srflx.first() {
            assert_eq!(
                mapped.ip(),
                "203.0.113.1".parse::<std::net::IpAddr>().unwrap()
            );
        }
        assert_eq!(sim.node::<StunServerNode>(alt_id).answered(), 1);
        assert_eq!(
            sim.node::<StunServerNode>(third_id).answered(),
            0,
            "a second redirection is not followed"
        );
        let complete = sim
            .node::<AgentNode>(a)
            .events
            .iter()
            .any(|(_, e)| matches!(e, AgentEvent::GatheringComplete { .. }));
        assert!(complete, "gathering completes");
    }
}
