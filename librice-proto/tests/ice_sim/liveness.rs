//! Liveness on the simulator: consent freshness (RFC 7675), the Disconnected state, failure
//! with reasons, and the filter that keeps data from unverified sources out. Two agents on
//! the public network, 10 ms apart, one component each; every run is deterministic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use librice_proto::agent::{
    AgentConfig, AgentError, AgentEvent, ComponentState, ConsentStats, FailureReason,
};
use librice_proto::candidate::IceCredentials;
use librice_proto::{Transmit, TransportType};

use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, connect, credentials, selected, send_data, signal,
};
use crate::harness::{LinkConfig, NodeId, PUBLIC_REALM, Sim};
use crate::hostile::RogueNode;

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);
const DATA_WINDOW: Duration = Duration::from_millis(200);

fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

fn link(loss: f64) -> LinkConfig {
    LinkConfig {
        loss,
        ..LinkConfig::with_latency(LATENCY)
    }
}

/// Two agents, A controlling and B controlled, on one network; not yet told of each other.
fn world(seed: u64, a: AgentConfig, b: AgentConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(link(0.0));
    let a = add_agent(&mut sim, AgentSpec::new(a, PUBLIC_REALM, "192.0.2.1"));
    let b = add_agent(&mut sim, AgentSpec::new(b, PUBLIC_REALM, "192.0.2.2"));
    (sim, a, b)
}

/// Two connected agents.
fn connected(seed: u64) -> (Sim, NodeId, NodeId) {
    let (mut sim, a, b) = world(seed, config(true, seed), config(false, seed + 100));
    assert!(connect(&mut sim, a, b, STEPS), "both sides connect");
    (sim, a, b)
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

fn consent(sim: &Sim, n: NodeId) -> ConsentStats {
    node(sim, n)
        .agent
        .consent_stats(S0, RTP)
        .expect("component 1")
}

/// The component state changes of node `n` from `since` on, with their times.
fn states_since(sim: &Sim, n: NodeId, since: Instant) -> Vec<(Instant, ComponentState)> {
    node(sim, n)
        .events
        .iter()
        .filter(|(t, _)| *t > since)
        .filter_map(|(t, e)| match e {
            AgentEvent::ComponentStateChange { state, .. } => Some((*t, *state)),
            _ => None,
        })
        .collect()
}

/// The failure events of node `n` (consent lost and component failed), in order.
fn failures(sim: &Sim, n: NodeId) -> Vec<(Instant, AgentEvent)> {
    node(sim, n)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                AgentEvent::ConsentLost { .. } | AgentEvent::ComponentFailed { .. }
            ) || matches!(
                e,
                AgentEvent::ComponentStateChange {
                    state: ComponentState::Failed,
                    ..
                }
            )
        })
        .cloned()
        .collect()
}

fn try_send(sim: &mut Sim, n: NodeId) -> Result<Transmit<Vec<u8>>, AgentError> {
    sim.with_node::<AgentNode, _>(n, |node, now| {
        node.agent
            .stream_mut(S0)
            .and_then(|mut s| s.component_mut(RTP).map(|mut c| c.send(now, b"after")))
            .expect("component exists")
    })
}

fn assert_data_both_ways(sim: &mut Sim, a: NodeId, b: NodeId) {
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(sim, from, to, 10, DATA_WINDOW);
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "{from}->{to}");
    }
}

/// The peer stops answering right after a consent refresh: consent is lost 30 s after that
/// refresh (RFC 7675 §5.1), `send` fails from then on, and nothing more goes to the peer.
#[test]
fn silent_peer_loses_consent_after_30_s() {
    let (mut sim, a, b) = connected(11);
    // Wait for a consent refresh, then cut everything from B to A.
    let before = consent(&sim, a).responses_received;
    assert!(sim.drive_until(STEPS, |sim| consent(sim, a).responses_received > before));
    let refreshed_at = sim.now();
    sim.set_link(b, a, link(1.0));
    let sent_before = consent(&sim, a).requests_sent;

    let limit = refreshed_at + Duration::from_secs(40);
    assert!(sim.drive_until(STEPS, |sim| {
        sim.now() > limit || node(sim, a).failed_at.contains_key(&(S0, RTP))
    }));
    let failed_at = *node(&sim, a)
        .failed_at
        .get(&(S0, RTP))
        .expect("A failed within 40 s of the last refresh");
    let after = failed_at - refreshed_at;
    println!("consent lost {after:?} after the last refresh");
    assert!(
        after >= Duration::from_secs(30) && after <= Duration::from_millis(31_500),
        "consent lost {after:?} after the last refresh"
    );
    // The events, in order: consent lost, failed with that reason, the Failed state.
    let events: Vec<AgentEvent> = failures(&sim, a).into_iter().map(|(_, e)| e).collect();
    assert_eq!(
        events,
        vec![
            AgentEvent::ConsentLost {
                stream: S0,
                component: RTP
            },
            AgentEvent::ComponentFailed {
                stream: S0,
                component: RTP,
                reason: FailureReason::ConsentLost
            },
            AgentEvent::ComponentStateChange {
                stream: S0,
                component: RTP,
                state: ComponentState::Failed
            },
        ]
    );
    assert_eq!(
        node(&sim, a).agent.failure_reason(S0, RTP),
        Some(FailureReason::ConsentLost)
    );
    // A kept checking during the silence, at the RFC 7675 rate (every 4-6 s).
    let checks = consent(&sim, a).requests_sent - sent_before;
    assert!((5..=8).contains(&checks), "{checks} consent checks in 30 s");
    // It went Disconnected on the way, 8 s after the peer was last heard.
    let states = states_since(&sim, a, refreshed_at);
    assert_eq!(states[0].1, ComponentState::Disconnected, "{states:?}");
    assert!(states[0].0 - refreshed_at <= Duration::from_secs(8));

    // From then on: `send` fails, and nothing more reaches B.
    let reached_b = node(&sim, b).incoming;
    assert_eq!(
        try_send(&mut sim, a).unwrap_err(),
        AgentError::Failed(FailureReason::ConsentLost)
    );
    sim.drive_for(Duration::from_secs(120), STEPS);
    assert_eq!(
        try_send(&mut sim, a).unwrap_err(),
        AgentError::Failed(FailureReason::ConsentLost)
    );
    assert_eq!(
        node(&sim, b).incoming,
        reached_b,
        "A sent nothing to B after consent was lost"
    );
}

/// Sending on a component whose consent has expired fails even before the agent's timer
/// has run (RFC 7675 §5.1: stop sending at once).
#[test]
fn send_fails_at_the_instant_consent_expires() {
    let (mut sim, a, b) = connected(12);
    sim.set_link(b, a, link(1.0));
    let last_heard = sim.now();
    // Step to just before the expiry: sending still works.
    sim.drive_until(STEPS, |sim| {
        sim.next_event_time()
            .is_none_or(|t| t >= last_heard + Duration::from_secs(29))
    });
    assert!(try_send(&mut sim, a).is_ok());
    // Call send directly at a time past the expiry, without the timer.
    let late = last_heard + Duration::from_secs(31);
    let got = sim.with_node::<AgentNode, _>(a, |n, _| {
        n.agent
            .stream_mut(S0)
            .and_then(|mut s| s.component_mut(RTP).map(|mut c| c.send(late, b"x")))
            .expect("component exists")
    });
    assert_eq!(
        got.unwrap_err(),
        AgentError::Failed(FailureReason::ConsentLost)
    );
}

/// A 10 s blackout: Disconnected within the Disconnected timeout (+1 s), Connected again
/// within one consent interval of the end, consent kept, data flowing again.
#[test]
fn ten_second_blackout_disconnects_and_recovers() {
    let (mut sim, a, b) = connected(13);
    sim.drive_for(Duration::from_secs(20), STEPS);
    let start = sim.now();
    sim.set_link_both(a, b, link(1.0));
    sim.drive_for(Duration::from_secs(10), STEPS);
    let end = sim.now();
    sim.set_link_both(a, b, link(0.0));
    sim.drive_for(Duration::from_secs(20), STEPS);

    for n in [a, b] {
        let states = states_since(&sim, n, start);
        assert_eq!(states.len(), 2, "node {n}: {states:?}");
        let (down, up) = (states[0], states[1]);
        println!(
            "node {n}: disconnected {:?} into the blackout, connected {:?} after it",
            down.0 - start,
            up.0.saturating_duration_since(end)
        );
        assert_eq!(down.1, ComponentState::Disconnected);
        assert!(
            down.0 - start <= Duration::from_secs(8 + 1),
            "node {n} disconnected {:?} into the blackout",
            down.0 - start
        );
        assert_eq!(up.1, ComponentState::Connected);
        // One consent interval is at most 1.2 x 5 s; plus a round trip.
        assert!(
            up.0 >= end && up.0 - end <= Duration::from_secs(6) + 2 * LATENCY,
            "node {n} reconnected {:?} after the blackout",
            up.0.saturating_duration_since(end)
        );
        assert!(failures(&sim, n).is_empty(), "node {n} kept consent");
    }
    assert_data_both_ways(&mut sim, a, b);
}

/// An idle healthy pair for 10 minutes never flaps: consent checks alone keep it Connected.
#[test]
fn idle_healthy_pair_never_disconnects_in_10_minutes() {
    let (mut sim, a, b) = connected(14);
    let start = sim.now();
    let stats_before = [consent(&sim, a), consent(&sim, b)];
    sim.drive_for(Duration::from_secs(600), STEPS);
    for (i, n) in [a, b].into_iter().enumerate() {
        assert!(
            states_since(&sim, n, start).is_empty(),
            "node {n}: {:?}",
            states_since(&sim, n, start)
        );
        let stats = consent(&sim, n);
        let sent = stats.requests_sent - stats_before[i].requests_sent;
        let answered = stats.responses_received - stats_before[i].responses_received;
        // 600 s at one check per 4-6 s.
        assert!((100..=150).contains(&sent), "node {n}: {sent} checks");
        assert!(
            answered + 1 >= sent,
            "node {n}: {answered} of {sent} answered"
        );
    }
    assert_data_both_ways(&mut sim, a, b);
}

/// 30% loss each way for 10 minutes: consent is never lost (each check is retransmitted
/// until the next one, and six checks fit in the 30 s expiry).
#[test]
fn thirty_percent_loss_for_10_minutes_keeps_consent() {
    let (mut sim, a, b) = connected(15);
    sim.set_link_both(a, b, link(0.3));
    sim.drive_for(Duration::from_secs(600), STEPS);
    sim.set_link_both(a, b, link(0.0));
    sim.drive_for(Duration::from_secs(10), STEPS);
    for n in [a, b] {
        assert!(
            failures(&sim, n).is_empty(),
            "node {n}: {:?}",
            failures(&sim, n)
        );
        assert_eq!(
            node(&sim, n).agent.component_state(S0, RTP),
            Some(ComponentState::Connected)
        );
    }
    assert_data_both_ways(&mut sim, a, b);
}

/// Gives `to` the credentials of `from` with a password that is not `from`'s.
fn give_wrong_password(sim: &mut Sim, from: NodeId, to: NodeId) {
    let creds = credentials(sim, from);
    let wrong = IceCredentials::new(creds[0].ufrag(), "notthepeerspasswordatall")
        .expect("valid credentials");
    sim.with_node::<AgentNode, _>(to, |n, _| {
        n.agent
            .stream_mut(S0)
            .expect("stream")
            .set_remote_credentials(wrong);
    });
}

/// Signals candidates and end-of-candidates both ways until both nodes failed (or `limit`).
fn run_until_both_failed(sim: &mut Sim, a: NodeId, b: NodeId, limit: Duration) {
    let start = sim.now();
    sim.drive_until(STEPS, |sim| {
        signal(sim, a, b);
        signal(sim, b, a);
        sim.now() > start + limit
            || [a, b]
                .iter()
                .all(|&n| node(sim, n).failed_at.contains_key(&(S0, RTP)))
    });
}

fn reason(sim: &Sim, n: NodeId) -> Option<FailureReason> {
    node(sim, n).agent.failure_reason(S0, RTP)
}

/// The controlling side has a wrong password for the controlled side: its checks are
/// refused with 401 and it fails saying authentication failed; the controlled side, whose
/// checks succeed, waits for a nomination that never comes and fails after the nomination
/// timeout.
#[test]
fn wrong_password_on_the_controlling_side_fails_both() {
    let (mut sim, a, b) = world(16, config(true, 16), config(false, 116));
    let start = sim.now();
    give_wrong_password(&mut sim, b, a);
    crate::harness::ice::give_credentials(&mut sim, a, b);
    run_until_both_failed(&mut sim, a, b, Duration::from_secs(120));

    let Some(FailureReason::AuthenticationFailed(got)) = reason(&sim, a) else {
        panic!("A: {:?}", reason(&sim, a));
    };
    assert!(got.unauthorized >= 1, "{got:?}");
    assert_eq!(reason(&sim, b), Some(FailureReason::NominationTimeout));
    assert!(node(&sim, a).connected_at.is_empty() && node(&sim, b).connected_at.is_empty());
    // Within the configured timeouts: a check's 39.5 s (RFC 8489 §6.2.1 defaults), and the
    // 30 s nomination timeout after B's first valid pair (within a second of the start).
    let a_after = node(&sim, a).failed_at[&(S0, RTP)] - start;
    let b_after = node(&sim, b).failed_at[&(S0, RTP)] - start;
    println!("A failed ({got}) after {a_after:?}, B (no nomination) after {b_after:?}");
    assert!(
        a_after <= Duration::from_millis(39_500 + 1_500),
        "A failed after {a_after:?}"
    );
    assert!(
        b_after >= Duration::from_secs(30) && b_after <= Duration::from_secs(31),
        "B failed after {b_after:?}"
    );
}

/// The controlled side has the wrong password: the controlling side connects (its checks
/// are fine) but the controlled side's checks are refused with 401, so it fails with
/// authentication failed and stops answering; the controlling side then loses consent.
#[test]
fn wrong_password_on_the_controlled_side_fails_both() {
    let (mut sim, a, b) = world(17, config(true, 17), config(false, 117));
    let start = sim.now();
    crate::harness::ice::give_credentials(&mut sim, b, a);
    give_wrong_password(&mut sim, a, b);
    run_until_both_failed(&mut sim, a, b, Duration::from_secs(120));

    let Some(FailureReason::AuthenticationFailed(got)) = reason(&sim, b) else {
        panic!("B: {:?}", reason(&sim, b));
    };
    assert!(got.unauthorized >= 1, "{got:?}");
    assert!(node(&sim, b).connected_at.is_empty());
    assert!(
        node(&sim, a).connected_at.contains_key(&(S0, RTP)),
        "A connected first"
    );
    assert_eq!(reason(&sim, a), Some(FailureReason::ConsentLost));
    let b_failed = node(&sim, b).failed_at[&(S0, RTP)];
    let a_failed = node(&sim, a).failed_at[&(S0, RTP)];
    println!(
        "B failed ({got}) after {:?}, A lost consent after {:?}",
        b_failed - start,
        a_failed - start
    );
    assert!(
        b_failed - start <= Duration::from_millis(39_500 + 1_500),
        "B failed after {:?}",
        b_failed - start
    );
    // A's last refresh came at most one consent interval before B stopped answering.
    assert!(
        a_failed > b_failed && a_failed - b_failed <= Duration::from_secs(30),
        "A lost consent {:?} after B failed",
        a_failed.saturating_duration_since(b_failed)
    );
}

/// A rogue host sends data to a connected component: it is dropped and counted, while the
/// peer's data still arrives.
#[test]
fn data_from_an_unverified_source_is_dropped_and_counted() {
    let (mut sim, a, b) = connected(18);
    let rogue_ip = "198.51.100.66".parse().unwrap();
    let rogue = sim.add_node(PUBLIC_REALM, &[rogue_ip], Box::new(RogueNode::default()));
    let target = selected(&sim, a, S0, RTP).local_base;
    let received_before = node(&sim, a).received.len();
    let spoofed: Vec<Transmit<Vec<u8>>> = (0..5u16)
        .map(|i| Transmit {
            transport: TransportType::Udp,
            from: SocketAddr::new(rogue_ip, 40_000 + i),
            to: target,
            data: format!("spoofed #{i}").into_bytes(),
        })
        .collect();
    sim.with_node::<RogueNode, _>(rogue, |r, _| r.queue(spoofed));
    sim.drive_for(Duration::from_millis(100), STEPS);
    assert_eq!(
        node(&sim, a).received.len(),
        received_before,
        "nothing delivered"
    );
    assert_eq!(node(&sim, a).agent.dropped_unverified(S0, RTP), Some(5));
    // The peer's data is still welcome, and was not counted.
    assert_data_both_ways(&mut sim, a, b);
    assert_eq!(node(&sim, a).agent.dropped_unverified(S0, RTP), Some(5));
    assert_eq!(node(&sim, b).agent.dropped_unverified(S0, RTP), Some(0));
}
