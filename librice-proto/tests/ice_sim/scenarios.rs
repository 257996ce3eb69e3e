//! ICE scenarios on the simulator: each asserts the selected pairs and application data
//! delivered both ways.

use std::net::SocketAddr;
use std::time::Duration;

use librice_proto::agent::{AgentConfig, ComponentState, StunServer};
use librice_proto::candidate::CandidateType;

use crate::harness::ice::{
    AgentNode, AgentSpec, RTCP, RTP, S0, S1, add_agent, assert_pairs_match, connect,
    give_credentials, selected, send_data, signal,
};
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, Sim, StunServerNode};

const STEPS: usize = 500_000;
const DATA_WINDOW: Duration = Duration::from_millis(200);

fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

/// Sends 10 datagrams each way on every component and asserts all arrive.
fn assert_data_both_ways(sim: &mut Sim, a: NodeId, b: NodeId) {
    for (from, to) in [(a, b), (b, a)] {
        let comps = sim.node_mut::<AgentNode>(from).components();
        let got = send_data(sim, from, to, 10, DATA_WINDOW);
        for k in comps {
            assert_eq!(
                got.get(&k),
                Some(&10),
                "{from}->{to} stream/component {k:?}"
            );
        }
    }
}

#[test]
fn one_lan() {
    let mut sim = Sim::new(1);
    let lan = sim.add_nat(NatType::PortRestricted, "203.0.113.1".parse().unwrap());
    let a = add_agent(&mut sim, AgentSpec::new(config(true, 1), lan, "10.0.0.1"));
    let b = add_agent(&mut sim, AgentSpec::new(config(false, 2), lan, "10.0.0.2"));
    assert!(connect(&mut sim, a, b, STEPS), "both sides connect");
    assert_pairs_match(&sim, a, b);
    let pa = selected(&sim, a, S0, RTP);
    assert_eq!(pa.local_base, "10.0.0.1:5001".parse().unwrap());
    assert_eq!(pa.remote.address(), "10.0.0.2:5001".parse().unwrap());
    assert_eq!(pa.local.candidate_type(), CandidateType::Host);
    assert_data_both_ways(&mut sim, a, b);
}

#[test]
fn two_streams_two_components() {
    let mut sim = Sim::new(2);
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, 3), PUBLIC_REALM, "192.0.2.1").streams(&[2, 2]),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, 4), PUBLIC_REALM, "192.0.2.2").streams(&[2, 2]),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    assert_eq!(sim.node::<AgentNode>(a).connected_at.len(), 4);
    assert_eq!(sim.node::<AgentNode>(b).connected_at.len(), 4);
    assert_pairs_match(&sim, a, b);
    for (sid, c) in [(S0, RTP), (S0, RTCP), (S1, RTP), (S1, RTCP)] {
        let pa = selected(&sim, a, sid, c);
        let port = crate::harness::ice::socket_port(sid, c);
        assert_eq!(
            pa.local_base,
            SocketAddr::new("192.0.2.1".parse().unwrap(), port)
        );
        assert_eq!(
            pa.remote.address(),
            SocketAddr::new("192.0.2.2".parse().unwrap(), port)
        );
    }
    assert_data_both_ways(&mut sim, a, b);
}

#[test]
fn trickle_late_candidates_before_credentials() {
    let mut sim = Sim::new(3);
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, 5), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, 6), PUBLIC_REALM, "192.0.2.2"),
    );
    // B gets A's candidates before A's credentials; nothing can be checked yet.
    assert!(signal(&mut sim, a, b) >= 2);
    sim.drive_for(Duration::from_millis(300), STEPS);
    assert_eq!(
        sim.stats().sent,
        0,
        "no check without the peer's credentials"
    );
    give_credentials(&mut sim, a, b);
    give_credentials(&mut sim, b, a);
    // B's checks reach A, which learns B as peer-reflexive before B's candidates arrive
    // 300 ms later.
    sim.drive_for(Duration::from_millis(300), STEPS);
    assert!(signal(&mut sim, b, a) >= 2);
    let done = sim.drive_until(STEPS, |sim| {
        sim.node_mut::<AgentNode>(a).all_connected() && sim.node_mut::<AgentNode>(b).all_connected()
    });
    assert!(done);
    assert_pairs_match(&sim, a, b);
    assert_data_both_ways(&mut sim, a, b);
}

fn role_conflict(both_controlling: bool, seed: u64) {
    let mut sim = Sim::new(seed);
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(both_controlling, seed), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(
            config(both_controlling, seed + 100),
            PUBLIC_REALM,
            "192.0.2.2",
        ),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    let ca = sim.node::<AgentNode>(a).agent.controlling();
    let cb = sim.node::<AgentNode>(b).agent.controlling();
    assert!(
        ca != cb,
        "exactly one agent ends controlling (a: {ca}, b: {cb})"
    );
    assert_pairs_match(&sim, a, b);
    assert_data_both_ways(&mut sim, a, b);
}

#[test]
fn both_controlling() {
    for seed in 10..14 {
        role_conflict(true, seed);
    }
}

#[test]
fn both_controlled() {
    for seed in 20..24 {
        role_conflict(false, seed);
    }
}

#[test]
fn thirty_percent_loss_each_way() {
    let mut sim = Sim::new(4);
    sim.set_default_link(LinkConfig {
        loss: 0.3,
        ..LinkConfig::with_latency(Duration::from_millis(20))
    });
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, 7), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, 8), PUBLIC_REALM, "192.0.2.2"),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    assert_pairs_match(&sim, a, b);
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(&mut sim, from, to, 200, DATA_WINDOW);
        let n = got.get(&(S0, RTP)).copied().unwrap_or(0);
        // 70% of 200 expected; a binomial draw stays well inside these bounds.
        assert!(
            (110..=170).contains(&n),
            "{n} of 200 delivered {from}->{to}"
        );
    }
}

#[test]
fn remote_prflx_learnt_before_signalling() {
    let mut sim = Sim::new(5);
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, 9), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, 10), PUBLIC_REALM, "192.0.2.2"),
    );
    give_credentials(&mut sim, a, b);
    give_credentials(&mut sim, b, a);
    // Only A learns B's candidates: B knows A only from A's checks.
    signal(&mut sim, b, a);
    let done = sim.drive_until(STEPS, |sim| {
        sim.node_mut::<AgentNode>(a).all_connected() && sim.node_mut::<AgentNode>(b).all_connected()
    });
    assert!(done, "connects on the peer-reflexive candidate alone");
    let pb = selected(&sim, b, S0, RTP);
    assert_eq!(pb.remote.candidate_type(), CandidateType::PeerReflexive);
    assert_eq!(pb.remote.address(), "192.0.2.1:5001".parse().unwrap());
    // The signalling catches up: the peer-reflexive candidate takes the signalled form,
    // without a duplicate.
    signal(&mut sim, a, b);
    let remotes = sim.with_node::<AgentNode, _>(b, |n, _| {
        n.agent.stream_mut(S0).unwrap().remote_candidates()
    });
    assert_eq!(remotes.len(), 1, "{remotes:?}");
    assert_eq!(remotes[0].candidate_type(), CandidateType::Host);
    assert_data_both_ways(&mut sim, a, b);
}

/// Where a host sits for the NAT matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Public,
    Behind(NatType),
}

const PLACES: [Place; 5] = [
    Place::Public,
    Place::Behind(NatType::FullCone),
    Place::Behind(NatType::AddressRestricted),
    Place::Behind(NatType::PortRestricted),
    Place::Behind(NatType::Symmetric),
];

/// Runs one NAT combination with a STUN server; returns (a, b, connected).
fn nat_case(pa: Place, pb: Place, seed: u64) -> (Sim, NodeId, NodeId, bool) {
    let mut sim = Sim::new(seed);
    let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
    let mut place = |p: Place, i: u8| match p {
        Place::Public => (PUBLIC_REALM, format!("192.0.2.{i}")),
        Place::Behind(nat) => (
            sim.add_nat(nat, format!("203.0.113.{i}").parse().unwrap()),
            format!("10.0.{i}.1"),
        ),
    };
    let (ra, ia) = place(pa, 1);
    let (rb, ib) = place(pb, 2);
    let cfg = |controlling, s| config(controlling, s).stun_server(StunServer::udp(stun));
    let a = add_agent(&mut sim, AgentSpec::new(cfg(true, seed), ra, &ia));
    let b = add_agent(&mut sim, AgentSpec::new(cfg(false, seed + 1), rb, &ib));
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
    let ok = connect(&mut sim, a, b, STEPS);
    (sim, a, b, ok)
}

#[test]
fn nat_matrix() {
    let mut report = String::new();
    for (i, &pa) in PLACES.iter().enumerate() {
        for (j, &pb) in PLACES.iter().enumerate() {
            let seed = 1000 + (i * 10 + j) as u64;
            let (mut sim, a, b, ok) = nat_case(pa, pb, seed);
            let sym = Place::Behind(NatType::Symmetric);
            let port = Place::Behind(NatType::PortRestricted);
            let expect_fail = (pa == sym && (pb == sym || pb == port)) || (pb == sym && pa == port);
            let elapsed = sim.elapsed();
            report.push_str(&format!("{pa:?} x {pb:?}: connected={ok} at {elapsed:?}\n"));
            if expect_fail {
                assert!(!ok, "{pa:?} x {pb:?} must not connect");
                // Failure is reported cleanly on both sides, after end-of-candidates.
                for n in [a, b] {
                    let node = sim.node::<AgentNode>(n);
                    assert!(
                        node.failed_at.contains_key(&(S0, RTP)),
                        "{pa:?} x {pb:?}: node {n} reports failure"
                    );
                    assert_eq!(
                        node.agent.component_state(S0, RTP),
                        Some(ComponentState::Failed)
                    );
                }
            } else {
                assert!(ok, "{pa:?} x {pb:?} must connect");
                assert_pairs_match(&sim, a, b);
                assert_data_both_ways(&mut sim, a, b);
            }
        }
    }
    println!("{report}");
}

/// One lossy, jittery, NATed session; returns the transcript.
fn transcript_of(seed: u64) -> Vec<u8> {
    let (mut sim, a, b, ok) = {
        let mut sim = Sim::new(seed);
        sim.set_default_link(LinkConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(30),
        });
        let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
        let ra = sim.add_nat(NatType::FullCone, "203.0.113.1".parse().unwrap());
        let rb = sim.add_nat(NatType::Symmetric, "203.0.113.2".parse().unwrap());
        let cfg = |c, s| config(c, s).stun_server(StunServer::udp(stun));
        let a = add_agent(&mut sim, AgentSpec::new(cfg(true, seed), ra, "10.0.1.1"));
        let b = add_agent(
            &mut sim,
            AgentSpec::new(cfg(false, seed + 1), rb, "10.0.2.1"),
        );
        let ok = connect(&mut sim, a, b, STEPS);
        (sim, a, b, ok)
    };
    assert!(ok);
    send_data(&mut sim, a, b, 20, DATA_WINDOW);
    send_data(&mut sim, b, a, 20, DATA_WINDOW);
    sim.transcript().to_vec()
}

#[test]
fn same_seed_same_transcript() {
    let first = transcript_of(77);
    let second = transcript_of(77);
    assert!(!first.is_empty());
    assert!(first == second, "same seed, byte-identical transcripts");
    let other = transcript_of(78);
    assert!(first != other, "another seed gives another transcript");
}

/// Time from both sides having each other's candidates to both connected, for one host
/// pair with `one_way` latency.
fn setup_time(one_way: Duration) -> Duration {
    let mut sim = Sim::new(6);
    sim.set_default_link(LinkConfig::with_latency(one_way));
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, 11), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, 12), PUBLIC_REALM, "192.0.2.2"),
    );
    let start = sim.now();
    assert!(connect(&mut sim, a, b, STEPS));
    let end_a = sim.node::<AgentNode>(a).connected_at[&(S0, RTP)];
    let end_b = sim.node::<AgentNode>(b).connected_at[&(S0, RTP)];
    end_a.max(end_b) - start
}

#[test]
fn setup_speed() {
    let ta = AgentConfig::default().ta_interval();
    let zero = setup_time(Duration::ZERO);
    println!(
        "setup, zero latency: {zero:?} (bound Ta + 1 ms = {:?})",
        ta + Duration::from_millis(1)
    );
    assert!(zero <= ta + Duration::from_millis(1), "{zero:?}");
    let one_way = Duration::from_millis(10);
    let rtt = 2 * one_way;
    let ten = setup_time(one_way);
    let bound = ta + 2 * rtt + Duration::from_millis(1);
    println!("setup, 10 ms one-way: {ten:?} (bound Ta + 2 RTT + 1 ms = {bound:?})");
    assert!(ten <= bound, "{ten:?}");
}
