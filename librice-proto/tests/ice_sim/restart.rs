//! ICE restart on the simulator (RFC 8445 §9, RFC 8839 §4.4): restarts by either side in
//! both roles while data flows both ways, a NAT rebinding that kills the selected pair,
//! and a TURN server that forgot its allocations. Every run is deterministic; each test
//! prints what it measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use librice_proto::agent::{AgentConfig, AgentEvent, DEFAULT_TA, RestartOrigin};

use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, connect, give_credentials, signal,
};
use crate::harness::{LinkConfig, NodeId, PUBLIC_REALM, Sim};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);
/// Application data: one datagram each way every 10 ms (100 datagrams/s).
const TICK: Duration = Duration::from_millis(10);

fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// Two agents, A controlling and B controlled, 10 ms apart on the public network, connected.
fn connected(seed: u64) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, seed), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, seed + 100), PUBLIC_REALM, "192.0.2.2"),
    );
    assert!(connect(&mut sim, a, b, STEPS), "both sides connect");
    (sim, a, b)
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

/// Numbered datagrams both ways, one each way per tick, and what arrived.
struct Flow {
    a: NodeId,
    b: NodeId,
    sent: BTreeMap<NodeId, u32>,
    /// Datagrams `send` refused (no usable pair) per sender.
    refused: BTreeMap<NodeId, u32>,
}

impl Flow {
    fn new(a: NodeId, b: NodeId) -> Self {
        Self {
            a,
            b,
            sent: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    /// Sends one datagram each way, delivers the signalling, and drives the network one tick.
    fn tick(&mut self, sim: &mut Sim) {
        for n in [self.a, self.b] {
            let seq = *self.sent.get(&n).unwrap_or(&0);
            let payload = format!("seq {seq}");
            let sent = sim.with_node::<AgentNode, _>(n, |node, now| {
                let t = node
                    .agent
                    .stream_mut(S0)
                    .and_then(|mut s| {
                        s.component_mut(RTP)
                            .map(|mut c| c.send(now, payload.as_bytes()))
                    })
                    .expect("component exists");
                match t {
                    Ok(t) => {
                        node.queue(t);
                        true
                    }
                    Err(_) => false,
                }
            });
            if sent {
                *self.sent.entry(n).or_default() += 1;
            } else {
                *self.refused.entry(n).or_default() += 1;
            }
        }
        signal(sim, self.a, self.b);
        signal(sim, self.b, self.a);
        sim.drive_for(TICK, STEPS);
    }

    /// The sequence numbers `n` received from its peer, in arrival order.
    fn received(sim: &Sim, n: NodeId) -> Vec<u32> {
        node(sim, n)
            .received
            .iter()
            .filter_map(|(_, _, _, d)| {
                std::str::from_utf8(d)
                    .ok()?
                    .strip_prefix("seq ")?
                    .parse()
                    .ok()
            })
            .collect()
    }
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

/// One restart by `by_a ? A : B` with data flowing both ways at 100 datagrams/s: no
/// datagram is lost and none is reordered, and both sides select a new pair within
/// 5 Ta + 2 RTT of both having the new credentials.
fn restart_under_load(seed: u64, by_a: bool) {
    let (mut sim, a, b) = connected(seed);
    let mut flow = Flow::new(a, b);
    for _ in 0..20 {
        flow.tick(&mut sim);
    }
    let (by, peer) = if by_a { (a, b) } else { (b, a) };
    let t0 = sim.now();
    // Signalling is instant here: both sides have the new credentials at t0.
    restart_and_signal(&mut sim, by, peer);
    assert_eq!(restart_events(&sim, by), [RestartOrigin::Local]);
    assert_eq!(restart_events(&sim, peer), [RestartOrigin::Remote]);
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
        let restarting = sim
            .node_mut::<AgentNode>(n)
            .agent
            .stream_mut(S0)
            .expect("stream")
            .restarting();
        assert!(!restarting, "node {n}: the old pair was released");
        // The data came on the old pair first, then on the new one (a new pair id).
        let pairs: Vec<_> = node(&sim, n).received.iter().map(|r| r.2).collect();
        let (first, last) = (pairs[0], pairs[pairs.len() - 1]);
        assert_ne!(first, last, "node {n}: data moved to the new pair");
    }
    let (got_a, got_b) = (Flow::received(&sim, a), Flow::received(&sim, b));
    let (sent_a, sent_b) = (flow.sent[&a], flow.sent[&b]);
    println!(
        "restart by {} ({}): new pair selected {:?} after both had the new credentials \
         (A {:?}, B {:?}; bound 5 Ta + 2 RTT = {:?}); datagrams A->B {}/{} B->A {}/{}, \
         refused {:?}",
        if by_a { "A" } else { "B" },
        if by_a { "controlling" } else { "controlled" },
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
    restart_under_load(31, true);
}

#[test]
fn restart_by_controlled_side_loses_no_data() {
    restart_under_load(32, false);
}
