//! Statistics against the wire: the counters an agent reports for its selected pair are
//! compared with the packets the simulator carried between the two agents.

use std::collections::BTreeSet;
use std::time::Duration;

use librice_proto::agent::{AgentConfig, PairStats, StreamStats};
use librice_proto::stun::{Message, MessageClass, Method, TransactionId};

use crate::harness::ice::{AgentNode, AgentSpec, RTP, S0, add_agent, connect, selected, send_data};
use crate::harness::{LinkConfig, NodeId, PUBLIC_REALM, Packet, Sim};

const STEPS: usize = 1_000_000;
const LATENCY: Duration = Duration::from_millis(10);

/// What the wire shows for one direction of a pair's tuple.
#[derive(Debug, Default)]
struct Wire {
    /// Distinct transaction ids of Binding requests (retransmissions once).
    request_ids: BTreeSet<TransactionId>,
    /// Binding requests, retransmissions included.
    requests: u64,
    /// Binding responses, by transaction id.
    response_ids: BTreeSet<TransactionId>,
    /// Binding responses, duplicates included.
    responses: u64,
    /// Application datagrams and their bytes.
    data: u64,
    data_bytes: u64,
}

fn wire(
    packets: &[Packet],
    node: NodeId,
    from: std::net::SocketAddr,
    to: std::net::SocketAddr,
) -> Wire {
    let mut w = Wire::default();
    for p in packets
        .iter()
        .filter(|p| p.node == node && p.from == from && p.to == to)
    {
        match Message::parse(&p.data) {
            Ok(m) if m.method() == Method::BINDING => match m.class() {
                MessageClass::Request => {
                    w.requests += 1;
                    w.request_ids.insert(m.transaction_id());
                }
                MessageClass::Success | MessageClass::Error => {
                    w.responses += 1;
                    w.response_ids.insert(m.transaction_id());
                }
                MessageClass::Indication => {}
            },
            Ok(_) => {}
            Err(_) => {
                w.data += 1;
                w.data_bytes += p.data.len() as u64;
            }
        }
    }
    w
}

fn stats(sim: &Sim, n: NodeId) -> StreamStats {
    sim.node::<AgentNode>(n).agent.stats(S0).expect("stream 0")
}

/// Checks one side's selected-pair counters against what the two nodes put on the wire.
fn check_side(sim: &Sim, me: NodeId, peer: NodeId) -> PairStats {
    let pair = selected(sim, me, S0, RTP);
    let (local, remote) = (pair.local_base, pair.remote.address());
    let packets = sim.packets();
    let out = wire(&packets, me, local, remote);
    let back = wire(&packets, peer, remote, local);
    let st = stats(sim, me);
    assert_eq!(st.pairs.len(), 1, "one host pair: {:#?}", st.pairs);
    let p = st.selected_pair(RTP).expect("a selected pair").clone();
    assert!(p.selected && p.nominated && p.valid);
    // Our requests: each transaction once, checks and consent checks together.
    assert_eq!(
        p.requests_sent + p.consent_requests_sent,
        out.request_ids.len() as u64,
        "node {me}: {p:#?}"
    );
    assert!(p.consent_requests_sent > 0);
    // Our transactions the peer answered (each once, though it answers every copy).
    let answered = out.request_ids.intersection(&back.response_ids).count() as u64;
    assert_eq!(p.responses_received, answered, "node {me}");
    // The peer's requests, every copy of which we answered.
    assert_eq!(p.requests_received, back.requests, "node {me}");
    assert_eq!(p.responses_sent, back.requests, "node {me}");
    assert_eq!(
        out.responses, back.requests,
        "node {me}: answers on the wire"
    );
    // Application data both ways.
    assert_eq!(
        (p.packets_sent, p.bytes_sent),
        (out.data, out.data_bytes),
        "node {me}"
    );
    assert_eq!(
        (p.packets_received, p.bytes_received),
        (back.data, back.data_bytes),
        "node {me}"
    );
    // No loss and 10 ms each way: every round trip is 20 ms.
    assert_eq!(p.current_round_trip_time, Some(2 * LATENCY));
    assert_eq!(
        p.total_round_trip_time,
        2 * LATENCY * u32::try_from(p.responses_received).unwrap()
    );
    let c = &st.components[0];
    assert_eq!(c.consent.requests_sent, p.consent_requests_sent);
    assert_eq!(
        (c.packets_sent, c.bytes_sent),
        (p.packets_sent, p.bytes_sent)
    );
    assert_eq!(st.local_candidates[p.local].base, Some(local));
    assert_eq!(st.remote_candidates[p.remote].candidate.address(), remote);
    // The data came on the selected pair, and says so.
    assert_eq!(st.components[0].selected_pair, Some(p.id));
    let received = &sim.node::<AgentNode>(me).received;
    assert_eq!(received.len() as u64, p.packets_received, "node {me}");
    assert!(
        received.iter().all(|&(_, _, pair, _)| pair == p.id),
        "node {me}: data on pair {}",
        p.id
    );
    p
}

#[test]
fn counters_match_the_packets_on_the_wire() {
    let mut sim = Sim::new(41);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let config = |controlling, seed| {
        AgentConfig::default()
            .controlling(controlling)
            .rng_seed(seed)
    };
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, 41), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, 42), PUBLIC_REALM, "192.0.2.2"),
    );
    assert!(connect(&mut sim, a, b, STEPS));
    let got = send_data(&mut sim, a, b, 7, Duration::from_millis(100));
    assert_eq!(got.get(&(S0, RTP)), Some(&7));
    let got = send_data(&mut sim, b, a, 3, Duration::from_millis(100));
    assert_eq!(got.get(&(S0, RTP)), Some(&3));
    // A minute of consent checks both ways.
    sim.drive_for(Duration::from_secs(60), STEPS);
    let pa = check_side(&sim, a, b);
    let pb = check_side(&sim, b, a);
    assert_eq!((pa.packets_sent, pb.packets_received), (7, 7));
    assert_eq!((pb.packets_sent, pa.packets_received), (3, 3));
    assert!(pa.last_packet_sent.is_some() && pa.last_packet_received.is_some());
}
