//! mDNS candidates on the simulated LAN (draft-ietf-mmusic-mdns-ice-candidates): agents
//! that hide their host addresses behind `<uuid>.local` names, each served by a real
//! `librice_proto::mdns` responder and client exchanging multicast on the segment.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use librice_proto::TransportType;
use librice_proto::agent::{
    Agent, AgentConfig, AgentEvent, DEFAULT_MDNS_TIMEOUT, IoRequest, TurnServer,
};
use librice_proto::candidate::{CandidateType, HostName, NamedCandidate};
use librice_proto::mdns::{MdnsConfig, MdnsEvent};

use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, connect, send_data, signal, socket_port,
};
use crate::harness::mdns::{MdnsNode, add_mdns_node, enable_mdns, enable_mdns_with};
use crate::harness::turn_server::{TurnServerConfig, TurnServerNode};
use crate::harness::{LinkConfig, NatType, PUBLIC_REALM, Sim};

const IP_A: &str = "192.168.1.10";
const IP_B: &str = "192.168.1.20";

fn hiding(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
        .hide_host_addresses(true)
}

fn lan(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(2)));
    sim
}

fn socket(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("an IP"), socket_port(S0, RTP))
}

/// The live selected pair's remote candidate of node `id` (the agent's current view,
/// which reflects a peer-reflexive candidate replaced by a resolved one).
fn selected_remote(sim: &Sim, id: usize) -> librice_proto::candidate::Candidate {
    sim.node::<AgentNode>(id)
        .agent
        .selected_pair(S0, RTP)
        .expect("a selected pair")
        .remote
}

fn requests(sim: &Sim, id: usize) -> Vec<IoRequest> {
    sim.node::<AgentNode>(id)
        .mdns
        .as_ref()
        .expect("mDNS enabled")
        .requests
        .clone()
}

fn published_names(requests: &[IoRequest]) -> Vec<HostName> {
    requests
        .iter()
        .filter_map(|r| match r {
            IoRequest::MdnsPublish { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn resolved_names(requests: &[IoRequest]) -> Vec<HostName> {
    requests
        .iter()
        .filter_map(|r| match r {
            IoRequest::MdnsResolve { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn named_announcements(sim: &Sim, id: usize) -> Vec<NamedCandidate> {
    sim.node::<AgentNode>(id)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            AgentEvent::LocalNamedCandidate { candidate, .. } => Some(candidate.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts that `id` announced no host address, only names.
fn assert_hidden(sim: &Sim, id: usize) {
    for (_, e) in &sim.node::<AgentNode>(id).events {
        if let AgentEvent::LocalCandidate { candidate, .. } = e {
            assert_ne!(
                candidate.candidate_type(),
                CandidateType::Host,
                "{candidate}"
            );
        }
    }
    assert!(!named_announcements(sim, id).is_empty());
}

/// Two hiding agents on one segment, each with its mDNS endpoint.
fn two_hiding_agents(sim: &mut Sim) -> (usize, usize) {
    let a = add_agent(sim, AgentSpec::new(hiding(true, 1), PUBLIC_REALM, IP_A));
    let b = add_agent(sim, AgentSpec::new(hiding(false, 2), PUBLIC_REALM, IP_B));
    enable_mdns(sim, a, 11);
    enable_mdns(sim, b, 12);
    (a, b)
}

/// Connects `a` and `b`, then lets both finish publishing and resolving their names (the
/// first check can beat the second name: the peer is peer-reflexive until it resolves).
fn connect_and_settle(sim: &mut Sim, a: usize, b: usize) {
    assert!(connect(sim, a, b, 100_000), "connected");
    // Signalling goes on: a name published after the connection is trickled too.
    let until = sim.now() + Duration::from_secs(3);
    sim.drive_until(100_000, |sim| {
        signal(sim, a, b);
        signal(sim, b, a);
        sim.next_event_time().is_none_or(|t| t > until)
    });
    for id in [a, b] {
        let host = sim
            .node::<AgentNode>(id)
            .mdns
            .as_ref()
            .expect("mDNS enabled");
        assert!(!host.published().is_empty(), "node {id} published its name");
    }
}

/// Both connected on host pairs through the resolved names: the remote candidate of each
/// selected pair is the other's host candidate at its real socket, not a peer-reflexive
/// one; and data flows both ways.
fn assert_host_pairs_and_data(sim: &mut Sim, a: usize, b: usize) {
    for (me, peer_ip) in [(a, IP_B), (b, IP_A)] {
        let remote = selected_remote(sim, me);
        assert_eq!(
            remote.candidate_type(),
            CandidateType::Host,
            "node {me}: {remote}"
        );
        assert_eq!(remote.address(), socket(peer_ip), "node {me}");
    }
    let ab = send_data(sim, a, b, 5, Duration::from_millis(200));
    let ba = send_data(sim, b, a, 5, Duration::from_millis(200));
    assert_eq!(ab.get(&(S0, RTP)), Some(&5));
    assert_eq!(ba.get(&(S0, RTP)), Some(&5));
}

#[test]
fn hidden_agents_connect_on_host_pairs_through_mdns() {
    let mut sim = lan(1);
    let (a, b) = two_hiding_agents(&mut sim);
    connect_and_settle(&mut sim, a, b);
    assert_hidden(&sim, a);
    assert_hidden(&sim, b);
    // Each published one name and resolved the other's, through the real responders.
    let (req_a, req_b) = (requests(&sim, a), requests(&sim, b));
    assert_eq!(published_names(&req_a).len(), 1);
    assert_eq!(published_names(&req_b).len(), 1);
    assert_eq!(resolved_names(&req_a), published_names(&req_b));
    assert_eq!(resolved_names(&req_b), published_names(&req_a));
    assert_eq!(
        named_announcements(&sim, a)[0].name(),
        &published_names(&req_a)[0]
    );
    assert_host_pairs_and_data(&mut sim, a, b);
    // Closing withdraws the name from the responder.
    sim.with_node::<AgentNode, _>(a, |n, now| {
        n.agent.close(now);
        n.drain_events(now);
    });
    assert!(requests(&sim, a).iter().any(
        |r| matches!(r, IoRequest::MdnsUnpublish { name } if *name == published_names(&req_a)[0])
    ));
}

#[test]
fn a_name_conflict_while_probing_is_resolved_with_a_new_name() {
    // The name agent A will draw first, learnt from a twin with the same seed and calls.
    let first: HostName = {
        let mut twin = Agent::new(hiding(true, 1));
        let sid = twin.add_stream();
        let mut s = twin.stream_mut(sid).unwrap();
        let c = s.add_component().unwrap();
        s.add_local_socket(c, TransportType::Udp, socket(IP_A))
            .unwrap();
        s.gather_candidates(Sim::new(0).now()).unwrap();
        match twin.poll_io_request() {
            Some(IoRequest::MdnsPublish { name, .. }) => name,
            other => panic!("expected a publish request, got {other:?}"),
        }
    };
    let mut sim = lan(2);
    // Another machine on the LAN already holds that name.
    let squatter = add_mdns_node(&mut sim, PUBLIC_REALM, "192.168.1.99", 7);
    sim.with_node::<MdnsNode, _>(squatter, |n, now| {
        let ip: IpAddr = "192.168.1.99".parse().unwrap();
        n.host.mdns.publish(now, first.as_str(), &[ip]).unwrap();
    });
    sim.drive_for(Duration::from_secs(3), 10_000);
    assert_eq!(
        sim.node::<MdnsNode>(squatter).host.published(),
        [first.as_str()]
    );

    let (a, b) = two_hiding_agents(&mut sim);
    connect_and_settle(&mut sim, a, b);
    let names_a = published_names(&requests(&sim, a));
    assert_eq!(names_a.len(), 2, "{names_a:?}");
    assert_eq!(names_a[0], first, "the twin drew the same name");
    assert_ne!(names_a[1], first);
    let host_a = sim.node::<AgentNode>(a).mdns.as_ref().unwrap();
    assert_eq!(host_a.conflicts(), [first.as_str()]);
    assert_eq!(host_a.published(), [names_a[1].as_str()]);
    // Both names were announced (the first at once, draft §3.1.2.1; the second after the
    // conflict, before end-of-candidates), and the peer resolved both: the first to the
    // squatter, whose address never answers a check, the second to A, which it selected.
    let announced: Vec<HostName> = named_announcements(&sim, a)
        .iter()
        .map(|c| c.name().clone())
        .collect();
    assert_eq!(announced, names_a);
    assert_eq!(resolved_names(&requests(&sim, b)), names_a);
    let squatter_ip: IpAddr = "192.168.1.99".parse().unwrap();
    let remote_b = sim
        .node_mut::<AgentNode>(b)
        .agent
        .stream_mut(S0)
        .unwrap()
        .remote_candidates();
    assert!(remote_b.iter().any(|c| c.address().ip() == squatter_ip));
    let end_of_candidates = sim
        .node::<AgentNode>(a)
        .events
        .iter()
        .position(|(_, e)| matches!(e, AgentEvent::GatheringComplete { .. }))
        .expect("gathering completed");
    let second_announced = sim
        .node::<AgentNode>(a)
        .events
        .iter()
        .position(|(_, e)| matches!(e, AgentEvent::LocalNamedCandidate { candidate, .. } if candidate.name() == &names_a[1]))
        .expect("the new name announced");
    assert!(second_announced < end_of_candidates);
    assert_host_pairs_and_data(&mut sim, a, b);
}

#[test]
fn a_peer_name_that_never_resolves_is_dropped_and_the_rest_connect() {
    let mut sim = lan(3);
    let a = add_agent(
        &mut sim,
        AgentSpec::new(hiding(true, 1), PUBLIC_REALM, IP_A),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(hiding(false, 2), PUBLIC_REALM, IP_B),
    );
    // A's responder waits longer than the agent, so that the agent's own timeout drops the
    // name.
    enable_mdns_with(
        &mut sim,
        a,
        MdnsConfig::default()
            .rng_seed(11)
            .ipv6(false)
            .resolve_timeout(Duration::from_secs(30)),
    );
    enable_mdns(&mut sim, b, 12);
    // A candidate of a host nobody answers for, signalled first.
    let ghost = NamedCandidate::parse(
        "candidate:9 1 UDP 2130706431 6b3a1e8c-2f4d-4c1b-9a7e-5d0c3b2a1f00.local 7000 typ host",
    )
    .unwrap();
    sim.with_node::<AgentNode, _>(a, |n, now| {
        n.agent
            .stream_mut(S0)
            .unwrap()
            .add_remote_named_candidate(now, ghost.clone())
            .unwrap();
        n.drain_events(now);
    });
    let t0 = sim.now();
    connect_and_settle(&mut sim, a, b);
    let connected_at = sim.node::<AgentNode>(a).connected_at[&(S0, RTP)];
    assert!(
        connected_at < t0 + DEFAULT_MDNS_TIMEOUT,
        "connected while the ghost name was pending"
    );
    assert_eq!(sim.node::<AgentNode>(a).agent.pending_mdns_names(), 1);
    sim.drive_for(Duration::from_secs(11), 100_000);
    assert_eq!(
        sim.node::<AgentNode>(a).agent.pending_mdns_names(),
        0,
        "dropped after 10 s"
    );
    // The responder's own failure, 30 s in, finds nothing to change.
    sim.drive_for(Duration::from_secs(20), 100_000);
    let host_a = sim.node::<AgentNode>(a).mdns.as_ref().unwrap();
    assert!(host_a.events.iter().any(
        |(_, e)| matches!(e, MdnsEvent::ResolveFailed { name } if name == ghost.name().as_str())
    ));
    assert_eq!(host_a.refused, 1);
    let remote = sim
        .node_mut::<AgentNode>(a)
        .agent
        .stream_mut(S0)
        .unwrap()
        .remote_candidates();
    assert!(
        remote.iter().all(|c| c.address().port() != 7000),
        "{remote:?}"
    );
    assert_host_pairs_and_data(&mut sim, a, b);
}

#[test]
fn unsolicited_mdns_answers_change_no_candidate() {
    let mut sim = lan(4);
    // A hostile host announces names nobody asked for, pointing at itself.
    let hostile_ip: IpAddr = "192.168.1.66".parse().unwrap();
    let hostile = add_mdns_node(&mut sim, PUBLIC_REALM, "192.168.1.66", 9);
    let (a, b) = two_hiding_agents(&mut sim);
    sim.with_node::<MdnsNode, _>(hostile, |n, now| {
        for i in 0..5 {
            let name = format!("evil-{i}.local");
            n.host.mdns.publish(now, &name, &[hostile_ip]).unwrap();
        }
    });
    connect_and_settle(&mut sim, a, b);
    sim.drive_for(Duration::from_secs(5), 100_000);
    // The announcements (unsolicited answers) reached the agents' responders...
    assert_eq!(sim.node::<MdnsNode>(hostile).host.published().len(), 5);
    for id in [a, b] {
        let host = sim.node::<AgentNode>(id).mdns.as_ref().unwrap();
        // ...which report no resolution for them, so the agents change nothing.
        assert!(
            host.events.iter().all(
                |(_, e)| !matches!(e, MdnsEvent::Resolved { name, .. } if name.starts_with("evil"))
            ),
            "{:?}",
            host.events
        );
        assert_eq!(host.refused, 0);
        let remote = sim
            .node_mut::<AgentNode>(id)
            .agent
            .stream_mut(S0)
            .unwrap()
            .remote_candidates();
        assert!(
            remote.iter().all(|c| c.address().ip() != hostile_ip),
            "{remote:?}"
        );
    }
    assert_host_pairs_and_data(&mut sim, a, b);
}

#[test]
fn relayed_candidates_are_never_paired_with_mdns_candidates() {
    let mut sim = lan(5);
    let listen: SocketAddr = "198.51.100.2:3478".parse().unwrap();
    let relay_ip: IpAddr = "198.51.100.3".parse().unwrap();
    let turn_config = TurnServerConfig::new(listen, relay_ip);
    let (user, pass) = (turn_config.username.clone(), turn_config.password.clone());
    sim.add_node(
        PUBLIC_REALM,
        &[listen.ip(), relay_ip],
        Box::new(TurnServerNode::new(turn_config)),
    );
    // One LAN behind a NAT: the mDNS segment.
    let lan = sim.add_nat(NatType::FullCone, "203.0.113.1".parse().unwrap());
    let config = |controlling, seed| {
        hiding(controlling, seed).turn_server(TurnServer::udp(listen, &user, &pass))
    };
    let a = add_agent(&mut sim, AgentSpec::new(config(true, 1), lan, IP_A));
    let b = add_agent(&mut sim, AgentSpec::new(config(false, 2), lan, IP_B));
    enable_mdns(&mut sim, a, 11);
    enable_mdns(&mut sim, b, 12);
    connect_and_settle(&mut sim, a, b);
    for (me, peer_ip) in [(a, IP_B), (b, IP_A)] {
        let pairs = sim
            .node_mut::<AgentNode>(me)
            .agent
            .stream_mut(S0)
            .unwrap()
            .pairs();
        assert!(
            pairs
                .iter()
                .any(|p| p.local.candidate_type() == CandidateType::Relayed),
            "node {me} pairs its relayed candidate: {pairs:?}"
        );
        assert!(
            pairs.iter().any(|p| p.remote.address() == socket(peer_ip)),
            "node {me} pairs the resolved name"
        );
        // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.3.2: the TURN server never learns
        // the hidden address.
        for p in &pairs {
            if p.local.candidate_type() == CandidateType::Relayed {
                assert_ne!(p.remote.address(), socket(peer_ip), "node {me}: {p:?}");
            }
        }
    }
    let turn_peers: Vec<SocketAddr> = sim
        .packets()
        .iter()
        .filter(|p| p.to == listen)
        .map(|p| p.from)
        .collect();
    assert!(!turn_peers.is_empty(), "the agents used the TURN server");
    // Connected (on whichever pair was nominated first: the relays answer before the
    // names are claimed), with data both ways.
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(&mut sim, from, to, 5, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&5), "{from}->{to}");
    }
}

#[test]
fn mdns_runs_are_reproducible() {
    let run = || {
        let mut sim = lan(6);
        let (a, b) = two_hiding_agents(&mut sim);
        connect_and_settle(&mut sim, a, b);
        sim.transcript().to_vec()
    };
    let first = run();
    assert!(first.len() > 1000);
    assert_eq!(first, run(), "same seed, same bytes on the wire");
}
