//! Network change on the simulator: a host whose address goes away mid-session while data
//! flows both ways at 100 datagrams/s. A new address appears first (continual gathering:
//! its candidate is trickled), then the old one goes (its socket is removed). The
//! controlling agent under renomination moves the selection itself; otherwise the agent
//! asks for an ICE restart and the test restarts as an application would. Every run is
//! deterministic; each test prints what it measured.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::TransportType;
use librice_proto::agent::{AgentConfig, AgentEvent, ComponentState, StreamId, TurnServer};
use librice_proto::candidate::CandidateType;
use librice_proto::candidate::IceOption;

use crate::harness::flow::Flow;
use crate::harness::ice::{AgentNode, RTP, S0, connect, give_credentials, socket_port};
use crate::harness::turn_server::{TurnServerConfig, TurnServerNode};
use crate::harness::{self, LinkConfig, NodeId, PUBLIC_REALM, Sim};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);

/// The address the moving host starts on, and the one it moves to.
const OLD_IP: &str = "192.0.2.1";
const NEW_IP: &str = "192.0.2.11";
const PEER_IP: &str = "192.0.2.2";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// An agent with one stream of one component, with a UDP socket on `socket_ips` only, on a
/// host that owns `host_ips` (so an address can be added later); gathering started.
fn add_host(sim: &mut Sim, config: AgentConfig, host_ips: &[&str], socket_ips: &[&str]) -> NodeId {
    let host_ips: Vec<IpAddr> = host_ips.iter().map(|a| ip(a)).collect();
    let sockets: Vec<_> = socket_ips
        .iter()
        .map(|a| {
            (
                TransportType::Udp,
                SocketAddr::new(ip(a), socket_port(S0, RTP)),
            )
        })
        .collect();
    harness::ice::add_host(sim, config, PUBLIC_REALM, &host_ips, &sockets)
}

/// The moving host (at `OLD_IP`, owning `NEW_IP` too) and its peer (at `PEER_IP`),
/// connected; the mover controls when `mover_controls`; both offer and announce
/// renomination when `renomination`.
fn world(seed: u64, mover_controls: bool, renomination: bool) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let cfg = |controlling, s| {
        AgentConfig::default()
            .controlling(controlling)
            .rng_seed(s)
            .renomination(renomination)
    };
    // The mover gathers continually: it signals no end-of-candidates, so that the peer
    // takes the candidate of its new address (RFC 8838 §13).
    let mover = add_host(
        &mut sim,
        cfg(mover_controls, seed).continual_gathering(true),
        &[OLD_IP, NEW_IP],
        &[OLD_IP],
    );
    let peer = add_host(
        &mut sim,
        cfg(!mover_controls, seed + 100),
        &[PEER_IP],
        &[PEER_IP],
    );
    if renomination {
        for n in [mover, peer] {
            sim.with_node::<AgentNode, _>(n, |node, _| {
                let mut s = node.agent.stream_mut(S0).expect("stream");
                s.set_remote_ice_options(&[IceOption::Renomination]);
                assert!(s.renomination());
            });
        }
    }
    assert!(connect(&mut sim, mover, peer, STEPS), "both sides connect");
    (sim, mover, peer)
}

fn socket(a: &str) -> SocketAddr {
    SocketAddr::new(ip(a), socket_port(S0, RTP))
}

/// The moving host's new address appears (a socket on it, gathered on at once: its
/// candidate goes out with the next signalling), then its old one goes.
fn move_host(sim: &mut Sim, mover: NodeId) {
    sim.with_node::<AgentNode, _>(mover, |n, now| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        s.add_local_socket(RTP, TransportType::Udp, socket(NEW_IP))
            .expect("a new socket");
        s.remove_local_socket(now, RTP, TransportType::Udp, socket(OLD_IP))
            .expect("the old socket");
        n.drain_events(now);
    });
}

fn events_since(sim: &Sim, n: NodeId, since: Instant) -> Vec<AgentEvent> {
    node(sim, n)
        .events
        .iter()
        .filter(|(t, _)| *t >= since)
        .map(|(_, e)| e.clone())
        .collect()
}

/// When node `n` got its first event matching `what` at or after `since`.
fn first_at(
    sim: &Sim,
    n: NodeId,
    since: Instant,
    what: impl Fn(&AgentEvent) -> bool,
) -> Option<Instant> {
    node(sim, n)
        .events
        .iter()
        .find(|(t, e)| *t >= since && what(e))
        .map(|(t, _)| *t)
}

fn changed(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::SelectedPairChanged { .. })
}

/// The longest time between two datagrams `n` received from its peer over the run: the
/// data gap the move caused (the flow sends every 10 ms).
fn longest_gap(sim: &Sim, n: NodeId) -> Duration {
    let times = &node(sim, n).received_at;
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

/// Each of `nodes` received (nearly) every datagram of the flow's last second: from 1 s
/// after `moved_at` to the end of the run, 2 s at 100 datagrams/s.
fn assert_last_second_arrived(sim: &Sim, seed: u64, nodes: [NodeId; 2], moved_at: Instant) {
    let tail_from = moved_at + Duration::from_secs(1);
    for to in nodes {
        let late = node(sim, to)
            .received_at
            .iter()
            .filter(|t| **t >= tail_from)
            .count();
        assert!(
            late >= 99,
            "seed {seed}: node {to} got {late} in the last second"
        );
    }
}

/// Runs the flow for `ticks` ticks.
fn run(sim: &mut Sim, flow: &mut Flow, ticks: usize) {
    for _ in 0..ticks {
        flow.tick(sim);
    }
}

/// The mover's and its peer's selected pairs after the move use the new address.
fn assert_moved(sim: &Sim, mover: NodeId, peer: NodeId) {
    let m = &node(sim, mover).selected[&(S0, RTP)];
    let p = &node(sim, peer).selected[&(S0, RTP)];
    assert_eq!(
        m.local_base,
        socket(NEW_IP),
        "the mover sends from its new address"
    );
    assert_eq!(
        p.remote.address(),
        socket(NEW_IP),
        "the peer sends to the new address"
    );
    assert_eq!(m.remote.address(), socket(PEER_IP));
}

/// The controlling agent under renomination moves to its new address by itself: its
/// selection is lost with the socket, the new pair is checked and renominated, and the
/// controlled peer follows the higher NOMINATION. No restart, no new credentials.
#[test]
fn controlling_mover_renominates_onto_its_new_address() {
    for seed in [1, 2, 3] {
        let (mut sim, mover, peer) = world(seed, true, true);
        let mut flow = Flow::new(mover, peer);
        run(&mut sim, &mut flow, 100);
        let moved_at = sim.now();
        move_host(&mut sim, mover);
        run(&mut sim, &mut flow, 200);

        let lost = first_at(&sim, mover, moved_at, |e| {
            matches!(e, AgentEvent::SelectedPairLost { pair, .. } if pair.local_base == socket(OLD_IP))
        })
        .expect("the mover lost its selected pair");
        let mover_switch = first_at(&sim, mover, moved_at, changed).expect("the mover reselected");
        let peer_switch = first_at(&sim, peer, moved_at, changed).expect("the peer followed");
        assert!(
            !events_since(&sim, mover, moved_at)
                .iter()
                .chain(events_since(&sim, peer, moved_at).iter())
                .any(|e| matches!(
                    e,
                    AgentEvent::RestartNeeded { .. } | AgentEvent::Restarted { .. }
                )),
            "no restart"
        );
        assert_moved(&sim, mover, peer);
        for n in [mover, peer] {
            assert_eq!(
                node(&sim, n).agent.component_state(S0, RTP),
                Some(ComponentState::Connected)
            );
        }
        // Data resumed both ways: the last second's datagrams all arrived.
        assert_last_second_arrived(&sim, seed, [mover, peer], moved_at);
        let gap_mover = longest_gap(&sim, mover);
        let gap_peer = longest_gap(&sim, peer);
        println!(
            "seed {seed}: lost at +{:?}, mover reselected at +{:?}, peer followed at +{:?}; \
             longest data gap: {:?} at the mover, {:?} at the peer; refused sends: {:?}",
            lost - moved_at,
            mover_switch - moved_at,
            peer_switch - moved_at,
            gap_mover,
            gap_peer,
            flow.refused
        );
        // One paced check (Ta = 50 ms) and its answer, then the nomination's round trip.
        assert!(
            gap_peer <= Duration::from_millis(250),
            "seed {seed}: gap {gap_peer:?}"
        );
        assert!(
            gap_mover <= Duration::from_millis(250),
            "seed {seed}: gap {gap_mover:?}"
        );
    }
}

/// The restart an application does when told [`AgentEvent::RestartNeeded`]: `by` restarts,
/// the credentials go both ways, and the candidates follow with the flow's signalling.
fn restart_and_signal(sim: &mut Sim, by: NodeId, peer: NodeId) {
    sim.with_node::<AgentNode, _>(by, |n, now| {
        n.agent.stream_mut(S0).expect("stream").restart(now);
        n.drain_events(now);
    });
    give_credentials(sim, by, peer);
    give_credentials(sim, peer, by);
}

/// Without renomination, or as the controlled agent, the mover cannot move the selection:
/// it says a restart is needed at once, and the restart it then does (new credentials,
/// gathering on the sockets it has now) reconnects on the new address.
#[test]
fn mover_without_renomination_or_control_asks_for_a_restart_and_reconnects() {
    for (seed, mover_controls, renomination) in
        [(11, true, false), (12, false, true), (13, false, false)]
    {
        let (mut sim, mover, peer) = world(seed, mover_controls, renomination);
        let mut flow = Flow::new(mover, peer);
        run(&mut sim, &mut flow, 50);
        let moved_at = sim.now();
        move_host(&mut sim, mover);
        let asked = first_at(&sim, mover, moved_at, |e| matches!(e, AgentEvent::RestartNeeded { stream, .. } if *stream == StreamId::from_index(0)))
            .expect("a restart is asked for at once");
        assert_eq!(asked, moved_at);
        assert_eq!(
            node(&sim, mover).agent.component_state(S0, RTP),
            Some(ComponentState::Disconnected)
        );
        restart_and_signal(&mut sim, mover, peer);
        run(&mut sim, &mut flow, 200);
        let switched =
            first_at(&sim, mover, moved_at, changed).expect("the restart selected a pair");
        assert_moved(&sim, mover, peer);
        assert_last_second_arrived(&sim, seed, [mover, peer], moved_at);
        println!(
            "seed {seed} (mover controls: {mover_controls}, renomination: {renomination}): \
             restart selected the new pair at +{:?}; longest data gap {:?} / {:?}",
            switched - moved_at,
            longest_gap(&sim, mover),
            longest_gap(&sim, peer)
        );
    }
}

/// Removing a socket the selection does not use changes nothing for the data: its
/// candidate and pairs go quietly. Removing the last one leaves the controlling agent,
/// even under renomination, with nothing to move to: it asks for a restart.
#[test]
fn removing_other_sockets_is_quiet_and_removing_the_last_asks_for_a_restart() {
    let (mut sim, mover, peer) = world(21, true, true);
    let mut flow = Flow::new(mover, peer);
    run(&mut sim, &mut flow, 20);
    // A second address, trickled, then removed again: the selected pair does not move.
    let t = sim.now();
    sim.with_node::<AgentNode, _>(mover, |n, _| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        s.add_local_socket(RTP, TransportType::Udp, socket(NEW_IP))
            .expect("a new socket");
        assert!(
            s.local_candidates()
                .iter()
                .any(|c| c.address() == socket(NEW_IP))
        );
    });
    run(&mut sim, &mut flow, 20);
    sim.with_node::<AgentNode, _>(mover, |n, now| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        s.remove_local_socket(now, RTP, TransportType::Udp, socket(NEW_IP))
            .expect("removed");
        assert!(
            s.local_candidates()
                .iter()
                .all(|c| c.address() != socket(NEW_IP))
        );
        n.drain_events(now);
    });
    run(&mut sim, &mut flow, 20);
    assert!(
        !events_since(&sim, mover, t).iter().any(|e| matches!(
            e,
            AgentEvent::SelectedPairLost { .. }
                | AgentEvent::SelectedPairChanged { .. }
                | AgentEvent::RestartNeeded { .. }
        )),
        "the selection did not move"
    );
    assert_eq!(
        node(&sim, mover).selected[&(S0, RTP)].local_base,
        socket(OLD_IP)
    );
    // The last socket goes: nothing left to check.
    let t = sim.now();
    sim.with_node::<AgentNode, _>(mover, |n, now| {
        n.agent
            .stream_mut(S0)
            .expect("stream")
            .remove_local_socket(now, RTP, TransportType::Udp, socket(OLD_IP))
            .expect("removed");
        n.drain_events(now);
    });
    let events = events_since(&sim, mover, t);
    assert!(
        matches!(events.first(), Some(AgentEvent::SelectedPairLost { .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::RestartNeeded { .. })),
        "{events:?}"
    );
    let refused = sim.with_node::<AgentNode, _>(mover, |n, now| {
        n.agent
            .stream_mut(S0)
            .and_then(|mut s| s.component_mut(RTP).map(|mut c| c.send(now, b"x")))
            .expect("component")
    });
    assert!(refused.is_err(), "no pair to send on");
    // It does not fail by itself: the application restarts.
    run(&mut sim, &mut flow, 100);
    assert_ne!(
        node(&sim, mover).agent.component_state(S0, RTP),
        Some(ComponentState::Failed)
    );
}

/// A socket that goes takes its TURN allocation with it: the allocation is released at the
/// server (Refresh with lifetime 0, RFC 8656 §7.2), its relayed candidate is no longer
/// listed, and the socket that stays keeps its own allocation.
#[test]
fn removing_a_socket_releases_its_turn_allocation() {
    let mut sim = Sim::new(31);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let listen: SocketAddr = "198.51.100.2:3478".parse().expect("address");
    let config = TurnServerConfig::new(listen, ip("198.51.100.3"));
    let (user, pass) = (config.username.clone(), config.password.clone());
    let server = sim.add_node(
        PUBLIC_REALM,
        &[listen.ip(), ip("198.51.100.3")],
        Box::new(TurnServerNode::new(config)),
    );
    let agent = add_host(
        &mut sim,
        AgentConfig::default()
            .rng_seed(31)
            .turn_server(TurnServer::udp(listen, &user, &pass)),
        &[OLD_IP, NEW_IP],
        &[OLD_IP, NEW_IP],
    );
    sim.drive_for(Duration::from_secs(1), STEPS);
    let relayed = |sim: &mut Sim| -> Vec<SocketAddr> {
        sim.with_node::<AgentNode, _>(agent, |n, _| {
            n.agent
                .stream_mut(S0)
                .expect("stream")
                .local_candidates()
                .iter()
                .filter(|c| c.candidate_type() == CandidateType::Relayed)
                .map(|c| c.address())
                .collect()
        })
    };
    assert_eq!(relayed(&mut sim).len(), 2, "one relay per socket");
    assert_eq!(sim.node::<TurnServerNode>(server).allocation_count(), 2);
    let old_relay = sim
        .node::<TurnServerNode>(server)
        .allocation(socket(OLD_IP))
        .map(|a| a.relayed)
        .expect("the old socket's allocation");
    sim.with_node::<AgentNode, _>(agent, |n, now| {
        n.agent
            .stream_mut(S0)
            .expect("stream")
            .remove_local_socket(now, RTP, TransportType::Udp, socket(OLD_IP))
            .expect("removed");
        n.drain_events(now);
    });
    sim.drive_for(Duration::from_secs(1), STEPS);
    let left = relayed(&mut sim);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left.contains(&old_relay));
    let server = sim.node::<TurnServerNode>(server);
    assert_eq!(
        server.allocation_count(),
        1,
        "the old allocation was released"
    );
    assert!(server.allocation(socket(NEW_IP)).is_some());
}
