//! Server mode on the simulator: one [`Mux`] of many agents on one `address:port`, and
//! full clients behind NATs of every type, each its own host in its own private network.
//!
//! What is checked: every client connects to its own agent and data reaches only that
//! agent (a client-specific payload each way); a client that restarts from a new NAT
//! mapping keeps its agent, which the mux finds by the agent's new ufrag; floods of checks for unknown ufrags,
//! malformed USERNAMEs and data from unknown sources change nothing (tables the same
//! size, every flood packet counted); a removed agent's tuples are forgotten and its
//! client's later packets dropped and counted; full agents in a mux, their STUN server
//! responses routed by transaction id; and a mux driving agents in batch order connects
//! them in one Ta.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::agent::{
    Agent, AgentConfig, AgentEvent, ComponentState, DEFAULT_TA, StunServer,
};
use librice_proto::candidate::{Candidate, IceCredentials};
use librice_proto::mux::{Mux, MuxAgentId, MuxConfig, MuxIncoming};
use librice_proto::stun::attr::Username;
use librice_proto::stun::{MessageClass, MessageType, MessageWriter, Method, TransactionId};
use librice_proto::{Transmit, TransportType};

use crate::harness::ice::{AgentNode, AgentSpec, RTP, S0, Signal, add_agent};
use crate::harness::{LinkConfig, NatType, Node, NodeId, PUBLIC_REALM, Sim, StunServerNode};

/// The one address and port of the server.
fn server_addr() -> SocketAddr {
    "192.0.2.1:3478".parse().expect("an address")
}

/// The server: a mux on one shared address.
struct MuxNode {
    mux: Mux,
    /// Application data received, per agent.
    received: Vec<(MuxAgentId, Vec<u8>)>,
    /// When each agent's component first connected.
    connected_at: BTreeMap<MuxAgentId, Instant>,
    /// Every event, per agent.
    events: Vec<(MuxAgentId, AgentEvent)>,
    outgoing: VecDeque<Transmit<Vec<u8>>>,
}

impl MuxNode {
    fn new(config: MuxConfig) -> Self {
        Self {
            mux: Mux::new(config),
            received: Vec::new(),
            connected_at: BTreeMap::new(),
            events: Vec::new(),
            outgoing: VecDeque::new(),
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some((id, event)) = self.mux.poll_event() {
            if let AgentEvent::ComponentStateChange {
                state: ComponentState::Connected,
                ..
            } = event
            {
                self.connected_at.entry(id).or_insert(now);
            }
            self.events.push((id, event));
        }
        assert!(self.mux.poll_io_request().is_none(), "no I/O request here");
    }

    /// Queues application data from agent `id`'s component.
    fn send(&mut self, now: Instant, id: MuxAgentId, data: &[u8]) {
        let t = self
            .mux
            .agent_mut(id)
            .expect("present")
            .stream_mut(S0)
            .and_then(|mut s| s.component_mut(RTP).map(|mut c| c.send(now, data)))
            .expect("a component")
            .expect("connected");
        self.outgoing.push_back(t);
    }
}

impl Node for MuxNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        let t = Transmit {
            transport: transmit.transport,
            from: transmit.from,
            to: transmit.to,
            data: transmit.data.as_slice(),
        };
        if let MuxIncoming::Data(id, data) = self.mux.handle_incoming(now, t) {
            self.received.push((id, data.data.to_vec()));
        }
        self.drain_events(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        let t = self
            .outgoing
            .pop_front()
            .or_else(|| self.mux.poll_transmit(now).map(|(_, t)| t));
        self.drain_events(now);
        t
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.mux.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.mux.handle_timeout(now);
        self.drain_events(now);
    }
}

/// A host on the public internet that floods the server: checks for ufrags no agent
/// has, checks with a malformed USERNAME, and non-STUN data, `per_tick` of each every
/// 10 ms until `until`.
struct FloodNode {
    addr: SocketAddr,
    per_tick: usize,
    next: Instant,
    until: Instant,
    sent: usize,
    queue: VecDeque<Transmit<Vec<u8>>>,
}

impl FloodNode {
    fn tick(&mut self) {
        for _ in 0..self.per_tick {
            let n = self.sent;
            self.sent += 1;
            let mut push = |data: Vec<u8>| {
                self.queue.push_back(Transmit {
                    transport: TransportType::Udp,
                    from: self.addr,
                    to: server_addr(),
                    data,
                });
            };
            push(binding_request(format!("flood{n}:x").as_bytes(), n as u64));
            push(binding_request(format!("nocolon{n}").as_bytes(), n as u64));
            push(format!("not STUN {n}").into_bytes());
        }
    }
}

impl Node for FloodNode {
    fn handle_incoming(&mut self, _now: Instant, _transmit: Transmit<Vec<u8>>) {}

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.queue.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        (self.next <= self.until).then_some(self.next)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next && self.next <= self.until {
            self.tick();
            self.next += Duration::from_millis(10);
        }
    }
}

/// A Binding request carrying `username` as its USERNAME, unauthenticated.
fn binding_request(username: &[u8], n: u64) -> Vec<u8> {
    let mut id = [0u8; 12];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(MessageClass::Request, Method::BINDING),
        TransactionId(id),
    );
    match std::str::from_utf8(username) {
        Ok(text) => w.add(&Username(text)).expect("fits"),
        Err(_) => unreachable!("the flood's usernames are text"),
    }
    let _ = w.finish();
    buf
}

/// One client and its agent in the mux.
struct Client {
    node: NodeId,
    agent: MuxAgentId,
}

/// The public IP of client `i`'s NAT (100.64.0.0/10, shared address space).
fn nat_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(100, 64 + (i / 250) as u8, (i % 250) as u8, 1))
}

/// A lite (or full) agent with one stream of one component on the server's address.
fn server_agent(now: Instant, config: AgentConfig) -> Agent {
    let mut agent = Agent::new(config);
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).expect("just added");
    let c = s.add_component().expect("the first component");
    s.add_local_socket(c, TransportType::Udp, server_addr())
        .expect("a new socket");
    s.gather_candidates(now).expect("gathering starts");
    agent
}

/// The local credentials and candidates of the server's agent `id`.
fn server_signals(
    sim: &mut Sim,
    server: NodeId,
    id: MuxAgentId,
) -> (IceCredentials, Vec<Candidate>) {
    sim.with_node::<MuxNode, _>(server, |n, _| {
        let mut a = n.mux.agent_mut(id).expect("present");
        let s = a.stream_mut(S0).expect("stream");
        (s.local_credentials().clone(), s.local_candidates())
    })
}

/// Exchanges credentials and candidates between client `node` and the server's agent
/// `id` (the client is told when its peer is lite).
fn signal_pair(sim: &mut Sim, server: NodeId, id: MuxAgentId, node: NodeId, lite: bool) {
    let (creds, cands) = server_signals(sim, server, id);
    sim.with_node::<AgentNode, _>(node, |n, _| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        if lite {
            s.set_remote_lite(true);
        }
        s.set_remote_credentials(creds);
        for c in cands {
            s.add_remote_candidate(c).expect("a candidate");
        }
        s.end_of_remote_candidates();
    });
    client_to_server(sim, server, id, node);
}

/// What client `node` would signal now (its credentials, then the candidates and
/// end-of-candidates in its outbox) goes to the server's agent `id`.
fn client_to_server(sim: &mut Sim, server: NodeId, id: MuxAgentId, node: NodeId) {
    let (client_creds, cands, eoc) = sim.with_node::<AgentNode, _>(node, |n, now| {
        n.drain_events(now);
        let creds = n
            .agent
            .stream_mut(S0)
            .expect("stream")
            .local_credentials()
            .clone();
        let mut cands = Vec::new();
        let mut eoc = false;
        for signal in n.outbox.drain(..) {
            match signal {
                Signal::Candidate(_, c) => cands.push(c),
                Signal::EndOfCandidates(_) => eoc = true,
                Signal::NamedCandidate(..) => unreachable!("no mDNS here"),
            }
        }
        (creds, cands, eoc)
    });
    sim.with_node::<MuxNode, _>(server, |n, now| {
        let mut a = n.mux.agent_mut(id).expect("present");
        let mut s = a.stream_mut(S0).expect("stream");
        s.set_remote_credentials(client_creds);
        for c in cands {
            s.add_remote_candidate(c).expect("a candidate");
        }
        if eoc {
            s.end_of_remote_candidates();
        }
        drop(a);
        n.drain_events(now);
    });
}

/// A server with `count` lite agents and as many full clients, client `i` behind its own
/// NAT of type `NatType::ALL[i % 4]`, all signalled; nothing driven yet.
fn lite_server(seed: u64, count: usize, config: MuxConfig) -> (Sim, NodeId, Vec<Client>) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
    let server = sim.add_node(
        PUBLIC_REALM,
        &[server_addr().ip()],
        Box::new(MuxNode::new(config)),
    );
    let mut clients = Vec::new();
    for i in 0..count {
        let realm = sim.add_nat(NatType::ALL[i % 4], nat_ip(i));
        let node = add_agent(
            &mut sim,
            AgentSpec::new(
                AgentConfig::default()
                    .controlling(true)
                    .rng_seed(seed * 100_000 + i as u64),
                realm,
                "10.0.0.1",
            ),
        );
        let config = AgentConfig::default()
            .lite(true)
            .rng_seed(seed * 100_000 + 50_000 + i as u64);
        let agent = sim.with_node::<MuxNode, _>(server, |n, now| {
            n.mux
                .add_agent(server_agent(now, config))
                .expect("distinct ufrags")
        });
        signal_pair(&mut sim, server, agent, node, true);
        clients.push(Client { node, agent });
    }
    (sim, server, clients)
}

/// [`lite_server`] with the default configuration, every client connected within 5 s.
fn connected_lite_server(seed: u64, count: usize) -> (Sim, NodeId, Vec<Client>) {
    let (mut sim, server, clients) = lite_server(seed, count, MuxConfig::default());
    assert!(drive_until_connected(
        &mut sim,
        server,
        &clients,
        Duration::from_secs(5)
    ));
    (sim, server, clients)
}

fn mux(sim: &Sim, server: NodeId) -> &Mux {
    &sim.node::<MuxNode>(server).mux
}

/// Drives in 100 ms chunks until every client and its agent is connected (at most
/// `limit`); returns whether they are.
fn drive_until_connected(
    sim: &mut Sim,
    server: NodeId,
    clients: &[Client],
    limit: Duration,
) -> bool {
    let all = |sim: &Sim| {
        let m = sim.node::<MuxNode>(server);
        clients.iter().all(|c| {
            m.connected_at.contains_key(&c.agent)
                && sim
                    .node::<AgentNode>(c.node)
                    .connected_at
                    .contains_key(&(S0, RTP))
        })
    };
    let end = sim.now() + limit;
    while sim.now() < end {
        if all(sim) {
            return true;
        }
        sim.drive_for(Duration::from_millis(100), 10_000_000);
    }
    all(sim)
}

/// Client `i`'s payload to its agent, and the agent's to the client.
fn payloads(i: usize, round: u32) -> (String, String) {
    (
        format!("client {i} to its agent, round {round}"),
        format!("agent of client {i} to it, round {round}"),
    )
}

/// Sends a client-specific payload each way on every pair and checks that each arrives
/// exactly once, only where it should.
fn exchange_data(sim: &mut Sim, server: NodeId, clients: &[Client], round: u32) {
    let before_server = sim.node::<MuxNode>(server).received.len();
    let before: Vec<usize> = clients
        .iter()
        .map(|c| sim.node::<AgentNode>(c.node).received.len())
        .collect();
    for (i, c) in clients.iter().enumerate() {
        let (up, down) = payloads(i, round);
        sim.with_node::<AgentNode, _>(c.node, |n, now| n.send(now, S0, RTP, up.as_bytes()));
        sim.with_node::<MuxNode, _>(server, |n, now| n.send(now, c.agent, down.as_bytes()));
    }
    sim.drive_for(Duration::from_millis(200), 10_000_000);
    let got: BTreeMap<MuxAgentId, Vec<Vec<u8>>> = sim.node::<MuxNode>(server).received
        [before_server..]
        .iter()
        .fold(BTreeMap::new(), |mut m, (id, d)| {
            m.entry(*id).or_insert_with(Vec::new).push(d.clone());
            m
        });
    assert_eq!(got.len(), clients.len(), "every agent got data");
    for (i, c) in clients.iter().enumerate() {
        let (up, down) = payloads(i, round);
        assert_eq!(got[&c.agent], vec![up.into_bytes()], "agent of client {i}");
        let received = &sim.node::<AgentNode>(c.node).received[before[i]..];
        assert_eq!(received.len(), 1, "client {i}");
        assert_eq!(received[0].3, down.into_bytes(), "client {i}");
    }
}

/// The sizes of the mux's tables: (agents, ufrags, tuples, transactions).
fn table_sizes(sim: &Sim, server: NodeId) -> (usize, usize, usize, usize) {
    let m = mux(sim, server);
    (
        m.len(),
        m.ufrag_count(),
        m.tuple_count(),
        m.transaction_count(),
    )
}

/// The local ufrag of the server's agent `id`.
fn agent_ufrag(sim: &mut Sim, server: NodeId, id: MuxAgentId) -> String {
    server_signals(sim, server, id).0.ufrag().to_owned()
}

/// Client `c` restarts ICE; the new credentials and candidates are signalled both ways.
fn restart_client(sim: &mut Sim, server: NodeId, c: &Client) {
    sim.with_node::<AgentNode, _>(c.node, |n, now| {
        n.agent.stream_mut(S0).expect("stream").restart(now);
        n.drain_events(now);
    });
    // The client's new credentials make the lite agent restart too (RFC 8839 §4.4.1.1.1);
    // its own new ones go back to the client.
    client_to_server(sim, server, c.agent, c.node);
    let (creds, cands) = server_signals(sim, server, c.agent);
    sim.with_node::<AgentNode, _>(c.node, |n, now| {
        let mut s = n.agent.stream_mut(S0).expect("stream");
        s.set_remote_credentials(creds);
        for cand in cands {
            s.add_remote_candidate(cand).expect("a candidate");
        }
        s.end_of_remote_candidates();
        n.drain_events(now);
    });
}

/// True once client `node`'s restart has selected a pair (its old path released).
fn restart_done(sim: &mut Sim, node: NodeId) -> bool {
    sim.with_node::<AgentNode, _>(node, |n, _| {
        !n.agent.stream_mut(S0).expect("stream").restarting()
    })
}

/// The whole scenario: `count` clients behind NATs of all four types connect to one lite
/// server on one address:port while a flood runs; data both ways reaches only each
/// client's own agent; every 97th client's NAT forgets its mappings and the client
/// restarts: it keeps its agent, reached through the agent's new ufrag from a new 5-tuple;
/// the flood changes no table and every flood packet is counted.
fn many_clients_one_lite_server(count: usize) {
    let (mut sim, server, clients) = lite_server(1, count, MuxConfig::default());
    let start = sim.now();
    let flood_addr: SocketAddr = "203.0.113.66:9999".parse().expect("an address");
    let flood = sim.add_node(
        PUBLIC_REALM,
        &[flood_addr.ip()],
        Box::new(FloodNode {
            addr: flood_addr,
            per_tick: 5,
            next: start,
            until: start + Duration::from_secs(1),
            sent: 0,
            queue: VecDeque::new(),
        }),
    );
    // Connect while the flood runs.
    assert!(
        drive_until_connected(&mut sim, server, &clients, Duration::from_secs(10)),
        "every client connects"
    );
    println!("{count} clients connected after {:?}", sim.now() - start);
    for (i, c) in clients.iter().enumerate() {
        let sel = sim.node::<AgentNode>(c.node).selected[&(S0, RTP)].clone();
        assert_eq!(sel.remote.address(), server_addr(), "client {i}");
    }
    // Each client's agent learned one tuple (its NAT mapping towards the server).
    let m = mux(&sim, server);
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(m.tuples_of(c.agent), 1, "agent of client {i}");
    }
    exchange_data(&mut sim, server, &clients, 0);
    // Let the flood end, then take the tables' sizes.
    sim.drive_for(Duration::from_secs(1), 10_000_000);
    let settled = table_sizes(&sim, server);
    assert_eq!(settled.0, count);
    assert_eq!(settled.1, count, "one ufrag per agent");
    assert_eq!(settled.2, count, "one tuple per agent");
    let stats_before = mux(&sim, server).stats();
    // A second flood, alone: the tables must not move, every packet is counted.
    let sent_before = sim.node::<FloodNode>(flood).sent;
    sim.with_node::<FloodNode, _>(flood, |f, now| {
        f.next = now;
        f.until = now + Duration::from_millis(500);
    });
    sim.drive_for(Duration::from_millis(600), 10_000_000);
    let flooded = sim.node::<FloodNode>(flood).sent - sent_before;
    assert!(flooded >= 250, "{flooded} flood rounds");
    assert_eq!(
        table_sizes(&sim, server),
        settled,
        "the flood changed no table"
    );
    let stats = mux(&sim, server).stats();
    assert_eq!(
        stats.dropped_unknown_ufrag - stats_before.dropped_unknown_ufrag,
        flooded as u64
    );
    assert_eq!(
        stats.dropped_malformed_username - stats_before.dropped_malformed_username,
        flooded as u64
    );
    assert_eq!(
        stats.dropped_unknown_source - stats_before.dropped_unknown_source,
        flooded as u64
    );
    assert_eq!(
        stats.tuples_learned, count as u64,
        "nothing learned from the flood"
    );
    // Every 97th client's NAT forgets its mappings (the client's next packets come from a
    // new public port, an unknown 5-tuple) and the client restarts: only the agent's new
    // ufrag can lead its checks to its agent, which it keeps.
    let restarting: Vec<&Client> = clients.iter().step_by(97).collect();
    let mut old_ufrags = Vec::new();
    for c in &restarting {
        old_ufrags.push(agent_ufrag(&mut sim, server, c.agent));
        let realm = sim.realm_of(c.node);
        sim.nat_mut(realm).expect("a NAT").forget_mappings();
        restart_client(&mut sim, server, c);
    }
    let end = sim.now() + Duration::from_secs(5);
    while sim.now() < end && !restarting.iter().all(|c| restart_done(&mut sim, c.node)) {
        sim.drive_for(Duration::from_millis(100), 10_000_000);
    }
    for (c, old) in restarting.iter().zip(&old_ufrags) {
        assert!(restart_done(&mut sim, c.node), "client restart completes");
        let new = agent_ufrag(&mut sim, server, c.agent);
        assert_ne!(&new, old);
        let m = mux(&sim, server);
        assert!(m.has_ufrag(&new), "the mux learned the new ufrag");
        assert!(!m.has_ufrag(old), "the old ufrag is forgotten");
    }
    for c in &restarting {
        assert_eq!(
            mux(&sim, server).tuples_of(c.agent),
            2,
            "the old and the new mapping"
        );
    }
    assert_eq!(mux(&sim, server).ufrag_count(), count);
    assert_eq!(mux(&sim, server).len(), count, "no agent added or lost");
    exchange_data(&mut sim, server, &clients, 1);
}

/// 200 clients (50 behind each NAT type): the CI-sized run of the scenario, about 2 s in
/// a debug build. The simulator's scheduler scans every node for its timeout at each
/// step, so the cost grows with clients x packets: the 1,000-client run below, the same
/// scenario, takes about 17 s in a debug build on one core, too close to the 20 s
/// budget of a CI test on a shared machine.
#[test]
fn two_hundred_clients_behind_nats_share_one_lite_server() {
    many_clients_one_lite_server(200);
}

/// The figure: 1,000 clients on one lite server. About 17 s in a debug build;
/// run with `cargo test --release -p librice-proto --test ice_sim -- --ignored mux`.
#[test]
#[ignore = "slow in debug builds; the 200-client run is the same scenario"]
fn a_thousand_clients_behind_nats_share_one_lite_server() {
    many_clients_one_lite_server(1000);
}

#[test]
fn a_removed_agent_is_forgotten_and_its_clients_packets_are_dropped_and_counted() {
    let (mut sim, server, clients) = connected_lite_server(2, 8);
    let gone = &clients[3];
    let (agents, ufrags, tuples, _) = table_sizes(&sim, server);
    let agent = sim.with_node::<MuxNode, _>(server, |n, _| n.mux.remove_agent(gone.agent));
    assert!(agent.is_some());
    let (a, u, t, _) = table_sizes(&sim, server);
    assert_eq!((a, u, t), (agents - 1, ufrags - 1, tuples - 1));
    let before = mux(&sim, server).stats();
    // The client still sends data and consent checks: all dropped.
    for _ in 0..5 {
        sim.with_node::<AgentNode, _>(gone.node, |n, now| n.send(now, S0, RTP, b"anyone?"));
    }
    sim.drive_for(Duration::from_secs(12), 10_000_000);
    let after = mux(&sim, server).stats();
    assert_eq!(
        after.dropped_unknown_source - before.dropped_unknown_source,
        5
    );
    assert!(
        after.dropped_unknown_ufrag > before.dropped_unknown_ufrag,
        "its consent checks are dropped"
    );
    assert!(
        sim.node::<MuxNode>(server)
            .received
            .iter()
            .all(|(_, d)| d.as_slice() != b"anyone?"),
        "no agent got the removed agent's data"
    );
    // The others still talk.
    let rest: Vec<Client> = clients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, c)| c)
        .collect();
    exchange_data(&mut sim, server, &rest, 0);
}

/// Full agents in the mux, all gathering from one STUN server over the shared socket:
/// the server's responses, all from the same address to the same address, reach the
/// agent that asked (routed by transaction id); then each connects with its client.
#[test]
fn full_agents_in_a_mux_connect_and_share_a_stun_server() {
    let mut sim = Sim::new(3);
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(5)));
    let stun: SocketAddr = "198.51.100.1:3478".parse().expect("an address");
    let stun_node = sim.add_node(PUBLIC_REALM, &[stun.ip()], Box::new(StunServerNode::new()));
    let server = sim.add_node(
        PUBLIC_REALM,
        &[server_addr().ip()],
        Box::new(MuxNode::new(MuxConfig::default())),
    );
    let mut clients = Vec::new();
    for i in 0..4 {
        let realm = sim.add_nat(NatType::ALL[i], nat_ip(i));
        let node = add_agent(
            &mut sim,
            AgentSpec::new(
                AgentConfig::default()
                    .controlling(true)
                    .rng_seed(300 + i as u64),
                realm,
                "10.0.0.1",
            ),
        );
        let config = AgentConfig::default()
            .controlling(false)
            .stun_server(StunServer::udp(stun))
            .rng_seed(400 + i as u64);
        let agent = sim.with_node::<MuxNode, _>(server, |n, now| {
            n.mux
                .add_agent(server_agent(now, config))
                .expect("distinct ufrags")
        });
        clients.push(Client { node, agent });
    }
    // Gathering: every agent asks the STUN server from the shared socket.
    sim.drive_for(Duration::from_millis(500), 1_000_000);
    assert_eq!(sim.node::<StunServerNode>(stun_node).answered(), 4);
    assert_eq!(mux(&sim, server).stats().routed_by_transaction, 4);
    let complete = |sim: &Sim, id| {
        sim.node::<MuxNode>(server)
            .events
            .iter()
            .any(|(i, e)| *i == id && matches!(e, AgentEvent::GatheringComplete { .. }))
    };
    for c in &clients {
        assert!(complete(&sim, c.agent), "agent {} gathered", c.agent);
    }
    for c in &clients {
        signal_pair(&mut sim, server, c.agent, c.node, false);
    }
    assert!(drive_until_connected(
        &mut sim,
        server,
        &clients,
        Duration::from_secs(5)
    ));
    exchange_data(&mut sim, server, &clients, 0);
}

/// A mux drives its agents in batch order (every due agent's timeout, then every
/// agent's transmits): on a network that delivers at once, each of 8 full agents and
/// its client connect within one Ta, as a pair of lone agents does
/// (`batch.rs`).
#[test]
fn a_mux_in_batch_order_connects_every_agent_in_one_ta() {
    let mut sim = Sim::new(4);
    let start = sim.now();
    let server = sim.add_node(
        PUBLIC_REALM,
        &[server_addr().ip()],
        Box::new(MuxNode::new(MuxConfig::default())),
    );
    let mut clients = Vec::new();
    for i in 0..8 {
        let ip = format!("198.51.100.{}", i + 10);
        let node = add_agent(
            &mut sim,
            AgentSpec::new(
                AgentConfig::default()
                    .controlling(true)
                    .rng_seed(500 + i as u64),
                PUBLIC_REALM,
                &ip,
            ),
        );
        let config = AgentConfig::default()
            .controlling(false)
            .rng_seed(600 + i as u64);
        let agent = sim.with_node::<MuxNode, _>(server, |n, now| {
            n.mux
                .add_agent(server_agent(now, config))
                .expect("distinct ufrags")
        });
        clients.push(Client { node, agent });
    }
    for c in &clients {
        signal_pair(&mut sim, server, c.agent, c.node, false);
    }
    assert!(drive_until_connected(
        &mut sim,
        server,
        &clients,
        Duration::from_secs(1)
    ));
    for (i, c) in clients.iter().enumerate() {
        let at = sim.node::<MuxNode>(server).connected_at[&c.agent] - start;
        assert!(at <= DEFAULT_TA, "agent {i} connected after {at:?}");
        let at = sim.node::<AgentNode>(c.node).connected_at[&(S0, RTP)] - start;
        assert!(at <= DEFAULT_TA, "client {i} connected after {at:?}");
    }
}

#[test]
fn a_check_with_a_malformed_username_is_dropped_and_traced() {
    let (mut sim, server, clients) = connected_lite_server(5, 1);
    let ufrag = agent_ufrag(&mut sim, server, clients[0].agent);
    let from: SocketAddr = "203.0.113.9:1234".parse().expect("an address");
    let before = mux(&sim, server).stats();
    let sizes = table_sizes(&sim, server);
    // The agent's own ufrag, but no colon: no agent can authenticate it.
    for username in [ufrag.clone(), format!(":{ufrag}")] {
        let data = binding_request(username.as_bytes(), 1);
        let t = Transmit {
            transport: TransportType::Udp,
            from,
            to: server_addr(),
            data: data.as_slice(),
        };
        let now = sim.now();
        let got = sim.node_mut::<MuxNode>(server).mux.handle_incoming(now, t);
        assert_eq!(
            got,
            MuxIncoming::Dropped(librice_proto::mux::MuxDrop::MalformedUsername)
        );
    }
    let after = mux(&sim, server).stats();
    assert_eq!(
        after.dropped_malformed_username - before.dropped_malformed_username,
        2
    );
    assert_eq!(table_sizes(&sim, server), sizes);
}

/// Same seed, same run: the mux (fixed-key hash maps, no OS randomness) keeps the
/// simulation byte-for-byte reproducible.
#[test]
fn a_mux_run_is_reproducible_from_its_seed() {
    let run = || {
        let (mut sim, server, clients) = connected_lite_server(6, 24);
        exchange_data(&mut sim, server, &clients, 0);
        sim.drive_for(Duration::from_secs(6), 10_000_000);
        (sim.transcript().to_vec(), mux(&sim, server).stats())
    };
    let (first, stats) = run();
    let (second, stats2) = run();
    assert!(first == second, "two runs with one seed differ");
    assert_eq!(stats, stats2);
    assert!(stats.routed_by_ufrag >= 24 && stats.routed_by_tuple >= 24);
}
