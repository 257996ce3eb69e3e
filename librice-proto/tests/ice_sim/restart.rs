//! ICE restart on the simulator (RFC 8445 §9, RFC 8839 §4.4): restarts by either side in
//! both roles while data flows both ways, a NAT rebinding that kills the selected pair,
//! and a TURN server that forgot its allocations. Every run is deterministic; each test
//! prints what it measured.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use librice_proto::agent::{
    AgentConfig, AgentEvent, ComponentState, DEFAULT_TA, RestartOrigin, StunServer,
};
use librice_proto::candidate::{CandidateType, IceCredentials, IceOption};

use crate::harness::flow::Flow;
use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, connect, credentials, give_credentials, signal,
};
use crate::harness::turn_server::TurnServerNode;
use crate::harness::{LinkConfig, NatType, NodeId, PUBLIC_REALM, Sim, StunServerNode};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);

fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

/// True while node `n`'s stream still sends on the pair selected before its restart.
fn restarting(sim: &mut Sim, n: NodeId) -> bool {
    sim.node_mut::<AgentNode>(n)
        .agent
        .stream_mut(S0)
        .expect("stream")
        .restarting()
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// Two agents 10 ms apart on the public network, connected: A controlling, B controlled,
/// or B controlling too when `conflict` (a role conflict at the start, repaired with 487,
/// RFC 8445 §7.3.1.1).
fn connected_with(seed: u64, conflict: bool) -> (Sim, NodeId, NodeId) {
    connected_opts(seed, conflict, false)
}

/// [`connected_with`], with renomination (draft-thatcher-ice-renomination) offered and
/// announced by both sides when `renomination`.
fn connected_opts(seed: u64, conflict: bool, renomination: bool) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let a = add_agent(
        &mut sim,
        AgentSpec::new(
            config(true, seed).renomination(renomination),
            PUBLIC_REALM,
            "192.0.2.1",
        ),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(
            config(conflict, seed + 100).renomination(renomination),
            PUBLIC_REALM,
            "192.0.2.2",
        ),
    );
    if renomination {
        for n in [a, b] {
            sim.with_node::<AgentNode, _>(n, |node, _| {
                let mut s = node.agent.stream_mut(S0).expect("stream");
                s.set_remote_ice_options(&[IceOption::Renomination]);
                assert!(s.renomination());
            });
        }
    }
    assert!(connect(&mut sim, a, b, STEPS), "both sides connect");
    (sim, a, b)
}

/// Who restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    A,
    B,
    /// Both at once (glare): each one's new credentials reach the other after its own
    /// restart, so they are its peer's answer, not a second restart.
    Both,
}

/// `n` restarts ICE on its stream.
fn restart(sim: &mut Sim, n: NodeId) {
    sim.with_node::<AgentNode, _>(n, |node, now| {
        node.agent.stream_mut(S0).expect("stream").restart(now);
        node.drain_events(now);
    });
}

/// The application's side of a restart by `by`: its new credentials go to `peer` (which
/// restarts too), the peer's new ones come back, then the candidates follow both ways
/// (delivered at every tick by [`Flow::tick`]).
fn restart_and_signal(sim: &mut Sim, by: NodeId, peer: NodeId) {
    restart(sim, by);
    give_credentials(sim, by, peer);
    give_credentials(sim, peer, by);
}

/// When node `n` got its first `SelectedPairChanged` after `since`.
fn switched_at(sim: &Sim, n: NodeId, since: Instant) -> Option<Instant> {
    node(sim, n)
        .events
        .iter()
        .find(|(t, e)| *t >= since && matches!(e, AgentEvent::SelectedPairChanged { .. }))
        .map(|(t, _)| *t)
}

fn restart_events(sim: &Sim, n: NodeId) -> Vec<RestartOrigin> {
    node(sim, n)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            AgentEvent::Restarted { origin, .. } => Some(*origin),
            _ => None,
        })
        .collect()
}

/// One restart by `by` with data flowing both ways at 100 datagrams/s: no datagram is lost
/// and none is reordered, and both sides select a new pair within 5 Ta + 2 RTT of both
/// having the new credentials. With `conflict`, both agents were configured controlling.
fn restart_under_load(seed: u64, by: By, conflict: bool) {
    restart_under_load_opts(seed, by, conflict, false);
}

/// [`restart_under_load`], with renomination on both sides when `renomination`: the new
/// generation's nominations count from 1 again, and the peer follows them.
fn restart_under_load_opts(seed: u64, by: By, conflict: bool, renomination: bool) {
    let (mut sim, a, b) = connected_opts(seed, conflict, renomination);
    let mut flow = Flow::new(a, b);
    for _ in 0..20 {
        flow.tick(&mut sim);
    }
    let t0 = sim.now();
    // Signalling is instant here: both sides have the new credentials at t0.
    match by {
        By::A | By::B => {
            let (by, peer) = if by == By::A { (a, b) } else { (b, a) };
            restart_and_signal(&mut sim, by, peer);
            assert_eq!(restart_events(&sim, by), [RestartOrigin::Local]);
            assert_eq!(restart_events(&sim, peer), [RestartOrigin::Remote]);
        }
        By::Both => {
            restart(&mut sim, a);
            restart(&mut sim, b);
            give_credentials(&mut sim, a, b);
            give_credentials(&mut sim, b, a);
            for n in [a, b] {
                assert_eq!(restart_events(&sim, n), [RestartOrigin::Local]);
            }
        }
    }
    for _ in 0..100 {
        flow.tick(&mut sim);
    }
    // Let the last datagrams arrive.
    sim.drive_for(Duration::from_millis(100), STEPS);

    let rtt = 2 * LATENCY;
    let bound = 5 * DEFAULT_TA + 2 * rtt;
    let at_a = switched_at(&sim, a, t0).expect("A switched to the new pair");
    let at_b = switched_at(&sim, b, t0).expect("B switched to the new pair");
    let took = at_a.max(at_b) - t0;
    for n in [a, b] {
        let restarting = restarting(&mut sim, n);
        assert!(!restarting, "node {n}: the old pair was released");
        // The data came on the old pair first, then on the new one (a new pair id).
        let pairs: Vec<_> = node(&sim, n).received.iter().map(|r| r.2).collect();
        let (first, last) = (pairs[0], pairs[pairs.len() - 1]);
        assert_ne!(first, last, "node {n}: data moved to the new pair");
    }
    let (got_a, got_b) = (Flow::received(&sim, a), Flow::received(&sim, b));
    let (sent_a, sent_b) = (flow.sent[&a], flow.sent[&b]);
    let role = |n: NodeId| {
        if node(&sim, n).agent.controlling() {
            "controlling"
        } else {
            "controlled"
        }
    };
    println!(
        "restart by {by:?} (A {}, B {}{}): new pair selected {:?} after both had the new \
         credentials (A {:?}, B {:?}; bound 5 Ta + 2 RTT = {:?}); datagrams A->B {}/{} \
         B->A {}/{}, refused {:?}",
        role(a),
        role(b),
        if conflict {
            ", after a role conflict at the start"
        } else {
            ""
        },
        took,
        at_a - t0,
        at_b - t0,
        bound,
        got_b.len(),
        sent_a,
        got_a.len(),
        sent_b,
        flow.refused,
    );
    assert!(
        flow.refused.is_empty(),
        "send never refused: {:?}",
        flow.refused
    );
    assert_eq!(
        got_b,
        (0..sent_a).collect::<Vec<_>>(),
        "A->B: all, in order"
    );
    assert_eq!(
        got_a,
        (0..sent_b).collect::<Vec<_>>(),
        "B->A: all, in order"
    );
    assert!(took <= bound, "new pair after {took:?}, bound {bound:?}");
}

#[test]
fn restart_by_controlling_side_loses_no_data() {
    restart_under_load(31, By::A, false);
}

#[test]
fn restart_by_controlled_side_loses_no_data() {
    restart_under_load(32, By::B, false);
}

#[test]
fn restart_with_renomination_loses_no_data() {
    restart_under_load_opts(36, By::A, false, true);
    restart_under_load_opts(37, By::B, false, true);
}

#[test]
fn restart_by_both_sides_at_once_loses_no_data() {
    restart_under_load(33, By::Both, false);
}

/// Both configured controlling: the role conflict is repaired at the start (487), and a
/// restart from either side keeps the repaired roles.
#[test]
fn restart_after_a_role_conflict_loses_no_data() {
    restart_under_load(34, By::A, true);
    restart_under_load(35, By::B, true);
}

/// When node `n` first selected a pair (first selection or change) at or after `since`.
fn selected_at(sim: &Sim, n: NodeId, since: Instant) -> Option<Instant> {
    node(sim, n)
        .events
        .iter()
        .find(|(t, e)| {
            *t >= since
                && matches!(
                    e,
                    AgentEvent::SelectedPair { .. } | AgentEvent::SelectedPairChanged { .. }
                )
        })
        .map(|(t, _)| *t)
}

/// Checks that every datagram sent from `from` from sequence number `first` on reached
/// `to`, in order.
fn assert_resumed(sim: &Sim, flow: &Flow, from: NodeId, to: NodeId, first: u32) {
    let got: Vec<u32> = Flow::received(sim, to)
        .into_iter()
        .filter(|&s| s >= first)
        .collect();
    assert_eq!(
        got,
        (first..flow.sent[&from]).collect::<Vec<_>>(),
        "{from}->{to} from #{first}: all, in order"
    );
}

/// The NAT in front of A forgets its mappings while data flows (a rebinding): A's packets
/// now come from a new public port, which B has never verified, and B's go to the old one,
/// which the NAT drops. B's consent on the selected pair fails (RFC 7675 §5.1); the
/// application restarts ICE from B, and data resumes both ways on the new pair.
#[test]
fn nat_rebinding_fails_consent_and_a_restart_reconnects() {
    let seed = 41;
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let stun: SocketAddr = "198.51.100.1:3478".parse().unwrap();
    sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
    let lan = sim.add_nat(NatType::PortRestricted, "203.0.113.1".parse().unwrap());
    let cfg = |controlling, s| config(controlling, s).stun_server(StunServer::udp(stun));
    let a = add_agent(&mut sim, AgentSpec::new(cfg(true, seed), lan, "10.0.1.1"));
    let b = add_agent(
        &mut sim,
        AgentSpec::new(cfg(false, seed + 1), PUBLIC_REALM, "192.0.2.2"),
    );
    assert!(connect(&mut sim, a, b, STEPS), "both sides connect");
    let mut flow = Flow::new(a, b);
    for _ in 0..20 {
        flow.tick(&mut sim);
    }
    let t_rebind = sim.now();
    sim.nat_mut(lan)
        .expect("A is behind a NAT")
        .forget_mappings();
    let lost_at = loop {
        flow.tick(&mut sim);
        let lost = node(&sim, b)
            .events
            .iter()
            .find(|(_, e)| matches!(e, AgentEvent::ConsentLost { .. }))
            .map(|(t, _)| *t);
        if let Some(t) = lost {
            break t;
        }
        assert!(
            sim.now() - t_rebind < Duration::from_secs(40),
            "B loses consent"
        );
    };
    // The application's policy: restart once consent is lost.
    let t0 = sim.now();
    restart_and_signal(&mut sim, b, a);
    let resumed = loop {
        flow.tick(&mut sim);
        if let (Some(ta), Some(tb)) = (selected_at(&sim, a, t0), selected_at(&sim, b, t0)) {
            break ta.max(tb);
        }
        assert!(
            sim.now() - t0 < Duration::from_secs(5),
            "the restart reconnects"
        );
    };
    let (first_a, first_b) = (flow.sent[&a], flow.sent[&b]);
    for _ in 0..100 {
        flow.tick(&mut sim);
    }
    sim.drive_for(Duration::from_millis(100), STEPS);
    let dropped = node(&sim, b).agent.dropped_unverified(S0, RTP);
    println!(
        "NAT rebinding: B lost consent {:?} after the rebinding; the restart from B selected \
         a new pair on both sides {:?} after it (bound 5 Ta + 2 RTT = {:?}); B dropped {:?} \
         datagrams from A's new, unverified port; refused sends {:?}",
        lost_at - t_rebind,
        resumed - t0,
        5 * DEFAULT_TA + 4 * LATENCY,
        dropped,
        flow.refused,
    );
    assert!(
        dropped.is_some_and(|d| d > 0),
        "data from the new port was filtered"
    );
    assert!(resumed - t0 <= 5 * DEFAULT_TA + 4 * LATENCY);
    assert_resumed(&sim, &flow, a, b, first_a);
    assert_resumed(&sim, &flow, b, a, first_b);
}

/// The relayed candidates node `n` announced at or after `since`.
fn relayed_announced(sim: &Sim, n: NodeId, since: Instant) -> Vec<SocketAddr> {
    node(sim, n)
        .events
        .iter()
        .filter(|(t, _)| *t >= since)
        .filter_map(|(_, e)| match e {
            AgentEvent::LocalCandidate { candidate, .. }
                if candidate.candidate_type() == CandidateType::Relayed =>
            {
                Some(candidate.address())
            }
            _ => None,
        })
        .collect()
}

/// Two relay-only agents behind full-cone NATs, connected through the TURN server, with
/// data flowing; the TURN server forgets its allocations (`forget`) or not, then A
/// restarts. Returns the world, the flow, the restart's time and the relayed candidates
/// of each side before it.
fn relayed_restart(seed: u64, forget: bool) -> (Sim, Flow, NodeId, NodeId, NodeId, Instant) {
    let (mut sim, a, b, turn) =
        crate::relay::world_with(NatType::FullCone, NatType::FullCone, true, seed, None);
    assert!(connect(&mut sim, a, b, STEPS), "connects through the relay");
    let mut flow = Flow::new(a, b);
    for _ in 0..20 {
        flow.tick(&mut sim);
    }
    if forget {
        sim.node_mut::<TurnServerNode>(turn).forget_allocations();
    }
    let t0 = sim.now();
    restart_and_signal(&mut sim, a, b);
    loop {
        flow.tick(&mut sim);
        if selected_at(&sim, a, t0).is_some() && selected_at(&sim, b, t0).is_some() {
            break;
        }
        assert!(
            sim.now() - t0 < Duration::from_secs(10),
            "the restart reconnects"
        );
    }
    (sim, flow, a, b, turn, t0)
}

/// A restart over relays reuses the allocations: the relayed candidates are announced
/// again, no Allocate goes out on the same 5-tuple (no 437), and no datagram is lost.
#[test]
fn restart_reuses_turn_allocations() {
    let (mut sim, mut flow, a, b, turn, t0) = relayed_restart(71, false);
    let before: Vec<Vec<SocketAddr>> = [a, b]
        .iter()
        .map(|&n| relayed_announced(&sim, n, sim.start()))
        .collect();
    for _ in 0..50 {
        flow.tick(&mut sim);
    }
    sim.drive_for(Duration::from_millis(100), STEPS);
    let stats = sim.node::<TurnServerNode>(turn).stats();
    let took = selected_at(&sim, a, t0)
        .max(selected_at(&sim, b, t0))
        .expect("selected")
        - t0;
    println!(
        "restart over TURN: new pair after {took:?}; allocations made {}, 437 answers {}, \
         refreshes {}; relayed candidates re-announced A {:?} B {:?}",
        stats.allocations,
        stats.mismatches,
        stats.refreshes,
        relayed_announced(&sim, a, t0),
        relayed_announced(&sim, b, t0),
    );
    assert_eq!(stats.allocations, 2, "one allocation per agent, reused");
    assert_eq!(stats.mismatches, 0);
    assert!(
        stats.refreshes >= 2,
        "the reused allocations were refreshed"
    );
    for (i, &n) in [a, b].iter().enumerate() {
        let again = relayed_announced(&sim, n, t0);
        assert!(
            !again.is_empty(),
            "node {n} announced its relayed candidate again"
        );
        assert!(
            again.iter().all(|r| before[i].contains(r)),
            "the same relayed address"
        );
    }
    assert!(flow.refused.is_empty(), "{:?}", flow.refused);
    assert_resumed(&sim, &flow, a, b, 0);
    assert_resumed(&sim, &flow, b, a, 0);
}

/// The TURN server forgets its allocations just before a restart: the refresh of the
/// reused allocation gets 437, the relay is allocated again, its new relayed candidate is
/// announced, and the restart connects through it; data resumes.
#[test]
fn restart_reallocates_a_forgotten_turn_allocation() {
    let (mut sim, mut flow, a, b, turn, t0) = relayed_restart(73, true);
    let resumed = selected_at(&sim, a, t0)
        .max(selected_at(&sim, b, t0))
        .expect("selected");
    let (first_a, first_b) = (flow.sent[&a], flow.sent[&b]);
    for _ in 0..50 {
        flow.tick(&mut sim);
    }
    sim.drive_for(Duration::from_millis(100), STEPS);
    let stats = sim.node::<TurnServerNode>(turn).stats();
    let new_a = relayed_announced(&sim, a, t0);
    let all_a = relayed_announced(&sim, a, sim.start());
    let before_a = &all_a[..all_a.len() - new_a.len()];
    println!(
        "restart over a TURN server that forgot: new pair after {:?}; allocations made {}, \
         437 answers {}; A's relayed candidates since the restart {:?}",
        resumed - t0,
        stats.allocations,
        stats.mismatches,
        new_a,
    );
    assert!(stats.mismatches >= 2, "the refreshes got 437: {stats:?}");
    assert_eq!(stats.allocations, 4, "each agent allocated again");
    assert_eq!(sim.node::<TurnServerNode>(turn).allocation_count(), 2);
    assert!(
        !new_a.is_empty() && new_a.iter().all(|r| !before_a.contains(r)),
        "a new relayed address: {new_a:?}, before {before_a:?}"
    );
    let pa = node(&sim, a)
        .agent
        .selected_pair(S0, RTP)
        .expect("selected");
    assert_eq!(pa.local.candidate_type(), CandidateType::Relayed);
    // The old pairs went through the forgotten allocations: they stopped carrying data
    // (Disconnected) until the restart connected again.
    for n in [a, b] {
        let states: Vec<ComponentState> = node(&sim, n)
            .events
            .iter()
            .filter(|(t, _)| *t >= t0)
            .filter_map(|(_, e)| match e {
                AgentEvent::ComponentStateChange { state, .. } => Some(*state),
                _ => None,
            })
            .collect();
        println!(
            "  node {n}: states since the restart {states:?}, refused sends {:?}",
            flow.refused.get(&n)
        );
        assert_eq!(states.first(), Some(&ComponentState::Disconnected));
        assert_eq!(states.last(), Some(&ComponentState::Connected));
    }
    assert_resumed(&sim, &flow, a, b, first_a);
    assert_resumed(&sim, &flow, b, a, first_b);
}

/// A restart under load twice from the same seed: the same bytes on the wire, in the same
/// order at the same times (the new credentials come from the agents' seeded RNGs).
#[test]
fn restart_is_deterministic() {
    let run = || {
        let (mut sim, a, b) = connected_with(36, false);
        let mut flow = Flow::new(a, b);
        for _ in 0..10 {
            flow.tick(&mut sim);
        }
        restart_and_signal(&mut sim, b, a);
        for _ in 0..30 {
            flow.tick(&mut sim);
        }
        sim.transcript().to_vec()
    };
    let first = run();
    assert!(!first.is_empty());
    assert_eq!(first, run());
}

/// A peer that applies its restart's credentials only once it has our answer (as
/// Chromium's wrapper does) refuses our first check of the new generation with an unsigned
/// 401: that pair fails. Once the peer's own authenticated checks arrive (it knows our
/// credentials now), its nomination triggers a new check of ours, which succeeds, and the
/// restart completes; without that, this side stays on the old pair until its consent
/// runs out.
#[test]
fn a_401_before_the_peer_applied_its_restart_is_checked_again() {
    let (mut sim, a, b) = connected_with(38, false);
    let new_a = IceCredentials::new("rsrtufrg", "restartpasswordrestartpw").expect("valid");
    let a_candidates = sim.with_node::<AgentNode, _>(a, |n, _| {
        n.agent.stream_mut(S0).expect("stream").local_candidates()
    });
    // B learns A's new credentials and candidates first; A has not applied them yet.
    sim.with_node::<AgentNode, _>(b, |n, now| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        s.set_remote_credentials(new_a.clone());
        for c in &a_candidates {
            s.add_remote_candidate(c.clone()).expect("candidate");
        }
        n.drain_events(now);
    });
    // B's checks signed with them reach A, which refuses them (401, unsigned).
    sim.drive_for(Duration::from_millis(300), STEPS);
    // A applies them with B's answer, and gets B's new candidates.
    let b_credentials = credentials(&mut sim, b).remove(0);
    sim.with_node::<AgentNode, _>(a, |n, now| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        s.restart(now);
        s.set_local_credentials(new_a.clone());
        s.set_remote_credentials(b_credentials);
        n.drain_events(now);
        // Its new candidates are the ones B already has.
        n.outbox.clear();
    });
    let t0 = sim.now();
    signal(&mut sim, b, a);
    sim.drive_for(Duration::from_secs(3), STEPS);
    for n in [a, b] {
        let restarting = restarting(&mut sim, n);
        assert!(!restarting, "node {n} left the old pair");
    }
    let at_b = switched_at(&sim, b, t0).expect("B switched to the new pair");
    println!(
        "restart with a refused first check: B on the new pair {:?} after A applied its \
         credentials",
        at_b - t0
    );
}
