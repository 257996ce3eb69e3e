//! ICE agents on the simulated network: [`AgentNode`] wraps a sans-IO [`Agent`] as a
//! [`Node`], records what it reports, and holds the signalling it would send; the free
//! functions set agents up, signal between them and check the outcome. Every scenario uses
//! these instead of its own plumbing.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::agent::{
    Agent, AgentConfig, AgentEvent, ComponentId, ComponentState, IoRequest, PairId, SelectedPair,
    StreamId,
};
use librice_proto::candidate::{Candidate, IceCredentials, NamedCandidate};
use librice_proto::{Transmit, TransportType};

use super::mdns::MdnsHost;
use super::syn::{Answer, SimultaneousOpens};
use super::{Node, NodeId, RealmId, Sim};

/// The first stream of an agent: most scenarios have only this one.
pub const S0: StreamId = StreamId::from_index(0);

/// The second stream of an agent.
pub const S1: StreamId = StreamId::from_index(1);

/// The first component of a stream.
pub const RTP: ComponentId = ComponentId::RTP;

/// The second component of a stream.
pub const RTCP: ComponentId = ComponentId::RTCP;

/// Every stream id of `agent`, in order.
pub fn stream_ids(agent: &Agent) -> impl Iterator<Item = StreamId> + use<> {
    (0..agent.stream_count()).map(StreamId::from_index)
}

/// What one agent would put in its signalling channel.
#[derive(Debug, Clone)]
pub enum Signal {
    /// A local candidate.
    Candidate(StreamId, Candidate),
    /// A local host candidate hidden behind an mDNS name.
    NamedCandidate(StreamId, NamedCandidate),
    /// End of candidates for a stream.
    EndOfCandidates(StreamId),
}

/// A sans-IO ICE agent as a simulated node.
pub struct AgentNode {
    /// The agent.
    pub agent: Agent,
    /// Every event, with the time it was drained.
    pub events: Vec<(Instant, AgentEvent)>,
    /// Signalling not yet delivered to the peer.
    pub outbox: VecDeque<Signal>,
    /// Application data received: (stream, component, the pair it came on, bytes).
    pub received: Vec<(StreamId, ComponentId, PairId, Vec<u8>)>,
    /// When each of `received` arrived.
    pub received_at: Vec<Instant>,
    /// When each component was first connected.
    pub connected_at: BTreeMap<(StreamId, ComponentId), Instant>,
    /// When each component failed.
    pub failed_at: BTreeMap<(StreamId, ComponentId), Instant>,
    /// The latest selected pair per component.
    pub selected: BTreeMap<(StreamId, ComponentId), SelectedPair>,
    /// Datagrams handed to the node (STUN or not).
    pub incoming: usize,
    /// The host's mDNS responder and client, serving the agent's mDNS requests (see
    /// [`MdnsHost`]); `None` unless [`super::mdns::enable_mdns`] gave it one.
    pub mdns: Option<MdnsHost>,
    /// The ICE-TCP connections the agent opened: (local, remote), in order.
    pub tcp_connections: Vec<(SocketAddr, SocketAddr)>,
    /// The host's TCP stack for simultaneous opens (see [`super::syn`]).
    pub so: SimultaneousOpens,
    /// The next local port of an ICE-TCP connection.
    next_tcp_port: u16,
    /// mDNS requests waiting for the host to have an [`MdnsHost`].
    unserved: Vec<IoRequest>,
    outgoing: VecDeque<Transmit<Vec<u8>>>,
}

impl AgentNode {
    /// Wraps `agent`.
    pub fn new(agent: Agent) -> Self {
        Self {
            agent,
            events: Vec::new(),
            outbox: VecDeque::new(),
            received: Vec::new(),
            received_at: Vec::new(),
            connected_at: BTreeMap::new(),
            failed_at: BTreeMap::new(),
            selected: BTreeMap::new(),
            incoming: 0,
            mdns: None,
            tcp_connections: Vec::new(),
            so: SimultaneousOpens::default(),
            next_tcp_port: 50000,
            unserved: Vec::new(),
            outgoing: VecDeque::new(),
        }
    }

    /// Moves the agent's events into the records.
    /// With an mDNS host, its requests and answers are exchanged with the agent first.
    pub fn drain_events(&mut self, now: Instant) {
        self.serve_io_requests(now);
        while let Some(event) = self.agent.poll_event() {
            match &event {
                AgentEvent::LocalCandidate { stream, candidate } => {
                    self.outbox
                        .push_back(Signal::Candidate(*stream, candidate.clone()));
                }
                AgentEvent::LocalNamedCandidate { stream, candidate } => {
                    self.outbox
                        .push_back(Signal::NamedCandidate(*stream, candidate.clone()));
                }
                AgentEvent::GatheringComplete { stream } => {
                    self.outbox.push_back(Signal::EndOfCandidates(*stream));
                }
                AgentEvent::ComponentStateChange {
                    stream,
                    component,
                    state,
                } => match state {
                    ComponentState::Connected => {
                        self.connected_at
                            .entry((*stream, *component))
                            .or_insert(now);
                    }
                    ComponentState::Failed => {
                        self.failed_at.entry((*stream, *component)).or_insert(now);
                    }
                    _ => {}
                },
                AgentEvent::SelectedPair {
                    stream,
                    component,
                    pair,
                }
                | AgentEvent::SelectedPairChanged {
                    stream,
                    component,
                    new: pair,
                    ..
                } => {
                    self.selected
                        .insert((*stream, *component), (**pair).clone());
                }
                _ => {}
            }
            self.events.push((now, event));
        }
    }

    /// Serves the agent's requests to its I/O layer: mDNS ones through the host's
    /// [`MdnsHost`] (kept until it has one), whose answers go back to the agent; ICE-TCP
    /// connections by opening them at once from the next local port (the simulated network
    /// carries TCP messages as it does datagrams, through NATs with TCP mappings; a
    /// connection to where nothing listens fails when its check times out), and those to
    /// STUN servers likewise (from the port asked for, if any); simultaneous opens through
    /// the SYN model of [`super::syn`].
    fn serve_io_requests(&mut self, now: Instant) {
        loop {
            self.unserved
                .extend(std::iter::from_fn(|| self.agent.poll_io_request()));
            let mut moved = false;
            for request in std::mem::take(&mut self.unserved) {
                match request {
                    IoRequest::IceTcpConnect {
                        id,
                        local,
                        remote,
                        simultaneous_open: true,
                    } => {
                        let syn = self.so.connect(now, id, local, remote);
                        self.outgoing.push_back(syn);
                        continue;
                    }
                    IoRequest::IceTcpConnect {
                        id, local, remote, ..
                    } => {
                        let local = SocketAddr::new(local.ip(), self.next_tcp_port);
                        self.next_tcp_port += 1;
                        self.tcp_connections.push((local, remote));
                        self.agent
                            .handle_tcp_connected(now, id, local)
                            .expect("a connection the agent asked for");
                        moved = true;
                        continue;
                    }
                    IoRequest::TcpConnect {
                        id,
                        local,
                        tls: false,
                        ..
                    } => {
                        let local = if local.port() == 0 {
                            self.next_tcp_port += 1;
                            SocketAddr::new(local.ip(), self.next_tcp_port - 1)
                        } else {
                            local
                        };
                        self.agent
                            .handle_tcp_connected(now, id, local)
                            .expect("a connection the agent asked for");
                        moved = true;
                        continue;
                    }
                    _ => {}
                }
                match self.mdns.as_mut() {
                    Some(mdns) => moved |= mdns.request(now, &request),
                    None if matches!(
                        request,
                        IoRequest::MdnsResolve { .. }
                            | IoRequest::MdnsPublish { .. }
                            | IoRequest::MdnsUnpublish { .. }
                    ) =>
                    {
                        self.unserved.push(request)
                    }
                    None => {}
                }
            }
            if let Some(mdns) = self.mdns.as_mut() {
                moved |= mdns.answer(now, &mut self.agent);
            }
            if !moved {
                return;
            }
        }
    }

    /// Tells the agent how one of its simultaneous opens ended.
    fn answer_so(&mut self, now: Instant, answer: Option<Answer>) {
        match answer {
            Some(Answer::Connected(id, local)) => {
                if let Some(remote) = self.so.outcomes.last().map(|o| o.2) {
                    self.tcp_connections.push((local, remote));
                }
                self.agent
                    .handle_tcp_connected(now, id, local)
                    .expect("a connection the agent asked for");
            }
            Some(Answer::Failed(id)) => self
                .agent
                .handle_tcp_connect_failed(now, id)
                .expect("a connection the agent asked for"),
            None => {}
        }
    }

    /// Queues application data on a component's selected pair.
    pub fn send(&mut self, now: Instant, stream: StreamId, component: ComponentId, data: &[u8]) {
        let transmit = self
            .agent
            .stream_mut(stream)
            .and_then(|mut s| s.component_mut(component).map(|mut c| c.send(now, data)))
            .expect("stream and component exist")
            .expect("component is connected");
        self.outgoing.push_back(transmit);
    }

    /// Queues a datagram the agent made (e.g. with `ComponentMut::send`) for the network.
    pub fn queue(&mut self, transmit: Transmit<Vec<u8>>) {
        self.outgoing.push_back(transmit);
    }

    /// The (stream, component) pairs of the agent.
    pub fn components(&mut self) -> Vec<(StreamId, ComponentId)> {
        let mut all = Vec::new();
        for sid in stream_ids(&self.agent) {
            let n = self
                .agent
                .stream_mut(sid)
                .map_or(0, |s| s.component_count());
            all.extend((0..n).map_while(ComponentId::from_index).map(|c| (sid, c)));
        }
        all
    }

    /// True when every component is connected.
    pub fn all_connected(&mut self) -> bool {
        let comps = self.components();
        comps.iter().all(|k| self.connected_at.contains_key(k))
    }

    /// True when every component is connected or failed.
    pub fn all_settled(&mut self) -> bool {
        let comps = self.components();
        comps
            .iter()
            .all(|k| self.connected_at.contains_key(k) || self.failed_at.contains_key(k))
    }
}

impl Node for AgentNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        if SimultaneousOpens::is_segment(&transmit) {
            let (reply, answer) = self.so.handle_packet(now, &transmit);
            self.outgoing.extend(reply);
            self.answer_so(now, answer);
            self.drain_events(now);
            return;
        }
        if let Some(mdns) = self.mdns.as_mut()
            && mdns.is_for_me(&transmit)
        {
            mdns.handle_incoming(now, &transmit);
            self.drain_events(now);
            return;
        }
        self.incoming += 1;
        let t = Transmit {
            transport: transmit.transport,
            from: transmit.from,
            to: transmit.to,
            data: transmit.data.as_slice(),
        };
        if let Some(data) = self.agent.handle_incoming(now, t) {
            self.received
                .push((data.stream, data.component, data.pair, data.data.to_vec()));
            self.received_at.push(now);
        }
        self.drain_events(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        let t = self
            .outgoing
            .pop_front()
            .or_else(|| self.agent.poll_transmit(now))
            .or_else(|| self.mdns.as_mut().and_then(|m| m.poll_transmit(now)));
        self.drain_events(now);
        // Draining may have started a simultaneous open: its SYN goes now.
        t.or_else(|| self.outgoing.pop_front())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mdns = self.mdns.as_ref().and_then(MdnsHost::poll_timeout);
        [self.agent.poll_timeout(), mdns, self.so.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        let (syns, failed) = self.so.handle_timeout(now);
        self.outgoing.extend(syns);
        for id in failed {
            self.answer_so(now, Some(Answer::Failed(id)));
        }
        self.agent.handle_timeout(now);
        if let Some(mdns) = self.mdns.as_mut() {
            mdns.handle_timeout(now);
        }
        self.drain_events(now);
    }
}

/// How to set up one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The agent configuration.
    pub config: AgentConfig,
    /// Components per stream.
    pub streams: Vec<u16>,
    /// The realm the host is in.
    pub realm: RealmId,
    /// The host's addresses; one socket per address per component.
    pub ips: Vec<IpAddr>,
}

impl AgentSpec {
    /// One stream with one component, in `realm` at `ip`.
    pub fn new(config: AgentConfig, realm: RealmId, ip: &str) -> Self {
        Self {
            config,
            streams: vec![1],
            realm,
            ips: vec![ip.parse().expect("an IP address")],
        }
    }

    /// Sets the components per stream.
    pub fn streams(mut self, streams: &[u16]) -> Self {
        self.streams = streams.to_vec();
        self
    }
}

/// The port of the socket for `stream`, `component`.
pub fn socket_port(stream: StreamId, component: ComponentId) -> u16 {
    5000 + 10 * u16::try_from(stream.index()).expect("few streams") + component.get()
}

/// Adds an agent to the simulation, registers its sockets and starts gathering.
pub fn add_agent(sim: &mut Sim, spec: AgentSpec) -> NodeId {
    let mut agent = Agent::new(spec.config);
    for &components in &spec.streams {
        let sid = agent.add_stream();
        let mut s = agent.stream_mut(sid).expect("just added");
        for _ in 0..components {
            let c = s.add_component().expect("few components");
            for ip in &spec.ips {
                s.add_local_socket(
                    c,
                    TransportType::Udp,
                    SocketAddr::new(*ip, socket_port(sid, c)),
                )
                .expect("distinct sockets");
            }
        }
    }
    let id = sim.add_node(spec.realm, &spec.ips, Box::new(AgentNode::new(agent)));
    sim.with_node::<AgentNode, _>(id, |n, now| {
        for sid in stream_ids(&n.agent) {
            n.agent
                .stream_mut(sid)
                .expect("exists")
                .gather_candidates(now)
                .expect("gathering starts");
        }
        n.drain_events(now);
    });
    id
}

/// An agent with one stream of one component and the local `sockets`, on a host in `realm`
/// that owns `host_ips` (which may be more than the sockets use, so that an address can be
/// added later); gathering started.
pub fn add_host(
    sim: &mut Sim,
    config: AgentConfig,
    realm: RealmId,
    host_ips: &[IpAddr],
    sockets: &[(TransportType, SocketAddr)],
) -> NodeId {
    add_host_with_so(sim, config, realm, host_ips, sockets, &[])
}

/// [`add_host`] with simultaneous-open TCP sockets too (`so_sockets`, after `sockets`;
/// the config must turn simultaneous open on).
pub fn add_host_with_so(
    sim: &mut Sim,
    config: AgentConfig,
    realm: RealmId,
    host_ips: &[IpAddr],
    sockets: &[(TransportType, SocketAddr)],
    so_sockets: &[SocketAddr],
) -> NodeId {
    let mut agent = Agent::new(config);
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).expect("just added");
    let c = s.add_component().expect("one component");
    for &(transport, local) in sockets {
        s.add_local_socket(c, transport, local)
            .expect("distinct sockets");
    }
    for &local in so_sockets {
        s.add_local_so_socket(c, local).expect("an so socket");
    }
    let id = sim.add_node(realm, host_ips, Box::new(AgentNode::new(agent)));
    sim.with_node::<AgentNode, _>(id, |n, now| {
        n.agent
            .stream_mut(S0)
            .expect("stream")
            .gather_candidates(now)
            .expect("gathering starts");
        n.drain_events(now);
    });
    id
}

/// The local credentials of every stream of node `id`.
pub fn credentials(sim: &mut Sim, id: NodeId) -> Vec<IceCredentials> {
    sim.with_node::<AgentNode, _>(id, |n, _| {
        stream_ids(&n.agent)
            .map(|sid| {
                n.agent
                    .stream_mut(sid)
                    .expect("exists")
                    .local_credentials()
                    .clone()
            })
            .collect()
    })
}

/// Gives `to` the credentials of `from`, stream by stream.
pub fn give_credentials(sim: &mut Sim, from: NodeId, to: NodeId) {
    let creds = credentials(sim, from);
    sim.with_node::<AgentNode, _>(to, |n, now| {
        for (sid, c) in stream_ids(&n.agent).zip(creds) {
            n.agent
                .stream_mut(sid)
                .expect("same streams")
                .set_remote_credentials(c);
        }
        n.drain_events(now);
    });
}

/// Delivers everything in `from`'s signalling outbox to `to`; returns how many signals.
pub fn signal(sim: &mut Sim, from: NodeId, to: NodeId) -> usize {
    let signals: Vec<Signal> =
        sim.with_node::<AgentNode, _>(from, |n, _| n.outbox.drain(..).collect());
    let count = signals.len();
    sim.with_node::<AgentNode, _>(to, |n, now| {
        for signal in signals {
            match signal {
                Signal::Candidate(sid, c) => n
                    .agent
                    .stream_mut(sid)
                    .expect("same streams")
                    .add_remote_candidate(c.clone())
                    .unwrap_or_else(|e| panic!("candidate {c} refused: {e}")),
                Signal::NamedCandidate(sid, c) => n
                    .agent
                    .stream_mut(sid)
                    .expect("same streams")
                    .add_remote_named_candidate(now, c)
                    .expect("valid named candidate"),
                Signal::EndOfCandidates(sid) => n
                    .agent
                    .stream_mut(sid)
                    .expect("same streams")
                    .end_of_remote_candidates(),
            }
        }
        n.drain_events(now);
    });
    count
}

/// Exchanges credentials, then all signalling both ways, repeatedly, until both agents
/// are connected or failed everywhere; returns whether both are connected everywhere.
/// Gathering keeps producing signalling, so it is delivered after every step.
pub fn connect(sim: &mut Sim, a: NodeId, b: NodeId, max_steps: usize) -> bool {
    give_credentials(sim, a, b);
    give_credentials(sim, b, a);
    sim.drive_until(max_steps, |sim| {
        signal(sim, a, b);
        signal(sim, b, a);
        sim.node_mut::<AgentNode>(a).all_settled() && sim.node_mut::<AgentNode>(b).all_settled()
    });
    sim.node_mut::<AgentNode>(a).all_connected() && sim.node_mut::<AgentNode>(b).all_connected()
}

/// Sends `count` numbered datagrams from every component of `from` to `to`, drives the
/// network for `window`, and returns how many of them `to` received per component.
pub fn send_data(
    sim: &mut Sim,
    from: NodeId,
    to: NodeId,
    count: usize,
    window: Duration,
) -> BTreeMap<(StreamId, ComponentId), usize> {
    let before = sim.node::<AgentNode>(to).received.len();
    let comps = sim.node_mut::<AgentNode>(from).components();
    for &(sid, c) in &comps {
        for i in 0..count {
            let payload = format!("data {from}->{to} s{sid} c{c} #{i}");
            sim.with_node::<AgentNode, _>(from, |n, now| n.send(now, sid, c, payload.as_bytes()));
        }
    }
    sim.drive_for(window, 1_000_000);
    let mut got: BTreeMap<(StreamId, ComponentId), usize> = BTreeMap::new();
    for (sid, c, _, data) in &sim.node::<AgentNode>(to).received[before..] {
        let text = String::from_utf8_lossy(data);
        assert!(
            text.starts_with(&format!("data {from}->{to} s{sid} c{c} #")),
            "datagram delivered to the wrong component: {text}"
        );
        *got.entry((*sid, *c)).or_default() += 1;
    }
    got
}

/// The selected pair of `node` for (stream, component).
pub fn selected(sim: &Sim, node: NodeId, stream: StreamId, component: ComponentId) -> SelectedPair {
    sim.node::<AgentNode>(node)
        .selected
        .get(&(stream, component))
        .cloned()
        .unwrap_or_else(|| panic!("node {node} has no selected pair for {stream}/{component}"))
}

/// Checks that the two agents selected matching pairs: each side's remote candidate
/// address is the other side's local (mapped) candidate address or where its packets appear
/// to come from, and both agree on the pair seen from the wire.
pub fn assert_pairs_match(sim: &Sim, a: NodeId, b: NodeId) {
    let comps: Vec<(StreamId, ComponentId)> = sim
        .node::<AgentNode>(a)
        .connected_at
        .keys()
        .copied()
        .collect();
    for (sid, c) in comps {
        let pa = selected(sim, a, sid, c);
        let pb = selected(sim, b, sid, c);
        assert_eq!(pa.local.component(), c);
        assert_eq!(pa.remote.component(), c);
        assert_eq!(pb.local.component(), c);
        // Without NATs in between the pairs mirror each other exactly.
        if sim.realm_of(a) == sim.realm_of(b) {
            assert_eq!(
                pa.local_base,
                pb.remote.address(),
                "stream {sid} component {c}"
            );
            assert_eq!(
                pb.local_base,
                pa.remote.address(),
                "stream {sid} component {c}"
            );
        }
    }
}
