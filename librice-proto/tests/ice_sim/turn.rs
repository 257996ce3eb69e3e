//! TURN client scenarios on the simulator: a [`TurnClient`] (often behind a NAT) against
//! the in-process [`TurnServerNode`], with plain peers in the public realm. Each scenario
//! is deterministic and bounded in steps and virtual time.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::stun::transaction::{AuthError, RetransmitConfig};
use librice_proto::stun::{Message, MessageClass, Method};
use librice_proto::turn::{
    MAX_CHANNEL, MIN_CHANNEL, TurnClient, TurnConfig, TurnError, TurnEvent, TurnRecv, TurnState,
    parse_channel_data,
};
use librice_proto::{Transmit, TransportType};

use crate::harness::{
    LinkConfig, Misbehave, NatType, Node, NodeId, PUBLIC_REALM, RealmId, Sim, TurnServerConfig,
    TurnServerNode,
};

const STEPS: usize = 200_000;
const LATENCY: Duration = Duration::from_millis(10);

const SERVER: &str = "203.0.113.1:3478";
const RELAY_IP: &str = "203.0.113.2";
const ALT_SERVER: &str = "203.0.113.11:3478";
const ALT_RELAY_IP: &str = "203.0.113.12";
const THIRD_SERVER: &str = "203.0.113.21:3478";
const NAT_IP: &str = "192.0.2.1";
const CLIENT_PRIVATE: &str = "10.0.0.2:50000";
const CLIENT_PUBLIC: &str = "192.0.2.50:50000";
const PEERS: [&str; 5] = [
    "198.51.100.10:5000",
    "198.51.100.20:6000",
    "198.51.100.30:7000",
    "198.51.100.40:8000",
    "198.51.100.50:9000",
];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP address")
}

/// A node around a [`TurnClient`]: records its events, the peer data it unwraps, and the
/// raw bytes it sends and receives.
#[derive(Debug)]
pub struct TurnClientNode {
    /// The client.
    pub client: TurnClient,
    /// Every event, with its time.
    pub events: Vec<(Instant, TurnEvent)>,
    /// Peer data delivered by the client: (time, peer, data).
    pub received: Vec<(Instant, SocketAddr, Vec<u8>)>,
    /// Every packet the node sent (to the server).
    pub raw_out: Vec<Vec<u8>>,
    /// Every packet the node received.
    pub raw_in: Vec<Vec<u8>>,
    /// Packets the client called `Ignored`.
    pub ignored: usize,
    outbox: VecDeque<Transmit<Vec<u8>>>,
}

impl TurnClientNode {
    /// A node around a new client.
    pub fn new(config: TurnConfig, seed: u64) -> Self {
        Self {
            client: TurnClient::new(config, seed).expect("client"),
            events: Vec::new(),
            received: Vec::new(),
            raw_out: Vec::new(),
            raw_in: Vec::new(),
            ignored: 0,
            outbox: VecDeque::new(),
        }
    }

    /// Sends `data` to `peer` through the relay.
    pub fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Result<(), TurnError> {
        let transmit = self.client.send(peer, data)?;
        self.outbox.push_back(transmit);
        Ok(())
    }

    fn collect(&mut self, now: Instant) {
        while let Some(e) = self.client.poll_event() {
            self.events.push((now, e));
        }
    }

    /// The events alone.
    pub fn event_list(&self) -> Vec<TurnEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// How many events match.
    pub fn count(&self, pred: impl Fn(&TurnEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| pred(e)).count()
    }

    /// The first Allocated event's fields.
    pub fn allocated(&self) -> Option<(Vec<SocketAddr>, SocketAddr, Duration)> {
        self.events.iter().find_map(|(_, e)| match e {
            TurnEvent::Allocated {
                relayed,
                mapped,
                lifetime,
            } => Some((relayed.clone(), *mapped, *lifetime)),
            _ => None,
        })
    }

    /// The first AllocationFailed event's error.
    pub fn failure(&self) -> Option<TurnError> {
        self.events.iter().find_map(|(_, e)| match e {
            TurnEvent::AllocationFailed(err) => Some(err.clone()),
            _ => None,
        })
    }

    /// The data received from `peer`, in order.
    pub fn data_from(&self, peer: SocketAddr) -> Vec<Vec<u8>> {
        self.received
            .iter()
            .filter(|(_, p, _)| *p == peer)
            .map(|(_, _, d)| d.clone())
            .collect()
    }
}

impl Node for TurnClientNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        self.raw_in.push(transmit.data.clone());
        let recv = self.client.handle_incoming(
            now,
            Transmit {
                transport: transmit.transport,
                from: transmit.from,
                to: transmit.to,
                data: &transmit.data[..],
            },
        );
        match recv {
            TurnRecv::Data { peer, data } => self.received.push((now, peer, data.to_vec())),
            TurnRecv::Handled => {}
            TurnRecv::Ignored => self.ignored += 1,
        }
        self.collect(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        let transmit = self
            .outbox
            .pop_front()
            .or_else(|| self.client.poll_transmit(now))?;
        self.raw_out.push(transmit.data.clone());
        Some(transmit)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.collect(now);
    }
}

/// A plain UDP host: records what it receives, optionally echoes it, sends on demand.
#[derive(Debug)]
pub struct PeerNode {
    addr: SocketAddr,
    echo: bool,
    /// Everything received: (time, source, data).
    pub received: Vec<(Instant, SocketAddr, Vec<u8>)>,
    outbox: VecDeque<Transmit<Vec<u8>>>,
}

impl PeerNode {
    /// A peer at `addr`.
    pub fn new(addr: SocketAddr, echo: bool) -> Self {
        Self {
            addr,
            echo,
            received: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    /// Sends a datagram to `to`.
    pub fn send_to(&mut self, to: SocketAddr, data: &[u8]) {
        self.outbox.push_back(Transmit {
            transport: TransportType::Udp,
            from: self.addr,
            to,
            data: data.to_vec(),
        });
    }
}

impl Node for PeerNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        if self.echo {
            self.outbox.push_back(Transmit {
                transport: transmit.transport,
                from: transmit.to,
                to: transmit.from,
                data: transmit.data.clone(),
            });
        }
        self.received.push((now, transmit.from, transmit.data));
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.outbox.pop_front()
    }
}

/// How to build a [`World`].
struct Setup {
    seed: u64,
    nat: Option<NatType>,
    server: TurnServerConfig,
    misbehave: Misbehave,
    password: String,
    retransmit: RetransmitConfig,
    echo: bool,
}

impl Setup {
    fn new(seed: u64) -> Self {
        let mut server = TurnServerConfig::new(addr(SERVER), ip(RELAY_IP));
        server.seed = seed;
        Self {
            seed,
            nat: Some(NatType::PortRestricted),
            server,
            misbehave: Misbehave::None,
            password: "secret".to_owned(),
            retransmit: RetransmitConfig::default(),
            echo: false,
        }
    }

    fn public_client(mut self) -> Self {
        self.nat = None;
        self
    }

    fn max_lifetime(mut self, secs: u64) -> Self {
        self.server.max_lifetime = Duration::from_secs(secs);
        self
    }

    fn misbehave(mut self, misbehave: Misbehave) -> Self {
        self.misbehave = misbehave;
        self
    }

    fn password(mut self, password: &str) -> Self {
        self.password = password.to_owned();
        self
    }

    fn retransmit(mut self, retransmit: RetransmitConfig) -> Self {
        self.retransmit = retransmit;
        self
    }

    fn echo(mut self) -> Self {
        self.echo = true;
        self
    }
}

/// A TURN server, a client (behind a NAT or not) and five peers in the public realm.
struct World {
    sim: Sim,
    server: NodeId,
    client: NodeId,
    peers: Vec<NodeId>,
    client_realm: RealmId,
}

fn build(setup: Setup) -> World {
    let mut sim = Sim::new(setup.seed);
    sim.set_default_link(LinkConfig::with_latency(LATENCY));
    let mut server = TurnServerNode::new(setup.server.clone());
    server.set_misbehave(setup.misbehave);
    let server = sim.add_node(
        PUBLIC_REALM,
        &[setup.server.listen.ip(), setup.server.relay_ip],
        Box::new(server),
    );
    let (client_realm, local) = match setup.nat {
        Some(nat) => (sim.add_nat(nat, ip(NAT_IP)), addr(CLIENT_PRIVATE)),
        None => (PUBLIC_REALM, addr(CLIENT_PUBLIC)),
    };
    let mut config = TurnConfig::new(
        setup.server.listen,
        TransportType::Udp,
        local,
        &setup.server.username,
        &setup.password,
    );
    config.retransmit = setup.retransmit;
    let client = sim.add_node(
        client_realm,
        &[local.ip()],
        Box::new(TurnClientNode::new(config, setup.seed ^ 0x5eed)),
    );
    let peers = PEERS
        .iter()
        .map(|p| {
            let p = addr(p);
            sim.add_node(
                PUBLIC_REALM,
                &[p.ip()],
                Box::new(PeerNode::new(p, setup.echo)),
            )
        })
        .collect();
    World {
        sim,
        server,
        client,
        peers,
        client_realm,
    }
}

/// Adds another TURN server to the public realm.
fn add_server(w: &mut World, listen: &str, relay: &str, misbehave: Misbehave) -> NodeId {
    let config = TurnServerConfig::new(addr(listen), ip(relay));
    let mut server = TurnServerNode::new(config);
    server.set_misbehave(misbehave);
    w.sim.add_node(
        PUBLIC_REALM,
        &[addr(listen).ip(), ip(relay)],
        Box::new(server),
    )
}

impl World {
    fn client(&self) -> &TurnClientNode {
        self.sim.node::<TurnClientNode>(self.client)
    }

    fn server(&self) -> &TurnServerNode {
        self.sim.node::<TurnServerNode>(self.server)
    }

    fn peer(&self, i: usize) -> &PeerNode {
        self.sim.node::<PeerNode>(self.peers[i])
    }

    /// Runs `f` on the client now, then collects its events and what it sends.
    fn act<R>(&mut self, f: impl FnOnce(&mut TurnClient, Instant) -> R) -> R {
        self.sim
            .with_node::<TurnClientNode, _>(self.client, |n, now| {
                let r = f(&mut n.client, now);
                n.collect(now);
                r
            })
    }

    /// The client sends `data` to peer `i` through the relay.
    fn client_send(&mut self, i: usize, data: &[u8]) -> Result<(), TurnError> {
        let peer = addr(PEERS[i]);
        self.sim
            .with_node::<TurnClientNode, _>(self.client, |n, _| n.send_to(peer, data))
    }

    /// Peer `i` sends `data` to `to`.
    fn peer_send(&mut self, i: usize, to: SocketAddr, data: &[u8]) {
        self.sim
            .with_node::<PeerNode, _>(self.peers[i], |n, _| n.send_to(to, data));
    }

    /// Steps until `pred` holds for the client, for at most `limit` of virtual time.
    fn wait(&mut self, limit: Duration, pred: impl Fn(&TurnClientNode) -> bool) -> bool {
        let deadline = self.sim.now() + limit;
        let client = self.client;
        self.sim.drive_until(STEPS, |sim| {
            pred(sim.node::<TurnClientNode>(client)) || sim.now() > deadline
        });
        pred(self.client())
    }

    /// Allocates and returns (relayed, mapped); panics if the allocation fails.
    fn allocate(&mut self) -> (SocketAddr, SocketAddr) {
        self.act(|c, now| c.allocate(now));
        let done = self.wait(Duration::from_secs(60), |n| {
            n.allocated().is_some() || n.failure().is_some()
        });
        assert!(done, "allocation neither done nor failed");
        let Some((relayed, mapped, _)) = self.client().allocated() else {
            panic!("allocation failed: {:?}", self.client().event_list());
        };
        assert_eq!(relayed.len(), 1);
        (relayed[0], mapped)
    }

    /// Creates a permission for peer `i` and waits for it.
    fn permit(&mut self, i: usize) {
        let peer = addr(PEERS[i]).ip();
        self.act(|c, now| c.create_permission(now, peer));
        assert!(
            self.wait(Duration::from_secs(10), |n| n.client.has_permission(peer)),
            "permission for {peer}: {:?}",
            self.client().event_list()
        );
    }

    /// Binds a channel to peer `i` and waits for it; returns the channel number.
    fn bind(&mut self, i: usize) -> u16 {
        let peer = addr(PEERS[i]);
        let number = self
            .act(|c, now| c.bind_channel(now, peer))
            .expect("a channel number");
        assert!(
            self.wait(Duration::from_secs(10), |n| n
                .client
                .channel(peer)
                .is_some()),
            "channel for {peer}: {:?}",
            self.client().event_list()
        );
        number
    }

    /// The client's address as the server sees it (the NAT mapping, if any).
    fn client_public(&self) -> SocketAddr {
        match self.sim.nat(self.client_realm) {
            Some(nat) => {
                let port = nat
                    .bindings()
                    .find(|(t, _, b)| {
                        *t == TransportType::Udp && b.internal == addr(CLIENT_PRIVATE)
                    })
                    .map(|(_, port, _)| port)
                    .expect("the client has a NAT mapping");
                SocketAddr::new(ip(NAT_IP), port)
            }
            None => addr(CLIENT_PUBLIC),
        }
    }

    /// The (method, code) of every request the main server answered.
    fn answers(&self) -> Vec<(Method, u16)> {
        self.server()
            .answers()
            .iter()
            .map(|a| (a.method, a.code))
            .collect()
    }
}

fn is_lost(e: &TurnEvent) -> bool {
    matches!(e, TurnEvent::AllocationLost(_))
}

fn is_failure(e: &TurnEvent) -> bool {
    matches!(
        e,
        TurnEvent::AllocationFailed(_)
            | TurnEvent::AllocationLost(_)
            | TurnEvent::PermissionFailed { .. }
            | TurnEvent::ChannelFailed { .. }
    )
}

/// What a STUN packet is: (class, method), or `None` for non-STUN.
fn stun_kind(data: &[u8]) -> Option<(MessageClass, Method)> {
    Message::parse(data).ok().map(|m| (m.class(), m.method()))
}

#[test]
fn allocation_challenge_then_success_behind_nat() {
    let mut w = build(Setup::new(1));
    let (relayed, mapped) = w.allocate();
    let public = w.client_public();
    assert_eq!(
        relayed.ip(),
        ip(RELAY_IP),
        "relayed on the server's relay IP"
    );
    assert_eq!(relayed, SocketAddr::new(ip(RELAY_IP), 49152));
    assert_eq!(mapped, public, "mapped is the NAT's public address");
    assert_eq!(public.ip(), ip(NAT_IP));
    let (_, _, lifetime) = w.client().allocated().expect("allocated");
    assert_eq!(lifetime, Duration::from_secs(600));
    assert_eq!(w.client().client.state(), &TurnState::Allocated);
    assert_eq!(w.client().client.relayed(), &[relayed]);
    assert_eq!(w.client().client.mapped(), Some(public));
    assert_eq!(
        w.client().event_list().len(),
        1,
        "{:?}",
        w.client().event_list()
    );

    // 401 challenge, then success; the first request unsigned, the second signed.
    assert_eq!(
        w.answers(),
        vec![(Method::ALLOCATE, 401), (Method::ALLOCATE, 200)]
    );
    let signed: Vec<bool> = w.server().answers().iter().map(|a| a.signed).collect();
    assert_eq!(signed, vec![false, true]);
    assert_eq!(w.server().stats().challenges, 1);
    assert_eq!(w.server().stats().allocations, 1);
    let a = w.server().allocation(public).expect("server allocation");
    assert_eq!(a.relayed, relayed);
    // Both requests went out as Allocate requests.
    let kinds: Vec<_> = w.client().raw_out.iter().map(|d| stun_kind(d)).collect();
    assert_eq!(
        kinds,
        vec![Some((MessageClass::Request, Method::ALLOCATE)); 2]
    );
}

#[test]
fn permission_send_and_data_indications() {
    let mut w = build(Setup::new(2));
    let (relayed, _) = w.allocate();
    let (a, c) = (addr(PEERS[0]), addr(PEERS[2]));

    // No permission: the client refuses to send.
    assert_eq!(w.client_send(0, b"too early"), Err(TurnError::NoPermission));

    w.permit(0);
    assert_eq!(
        w.client()
            .count(|e| matches!(e, TurnEvent::PermissionCreated { peer } if *peer == a.ip())),
        1
    );
    assert_eq!(w.server().stats().permissions, 1);

    // Client -> peer in a Send indication.
    w.client_send(0, b"hello peer").expect("send");
    assert_eq!(
        stun_kind(w.client().raw_out.last().expect("sent")),
        Some((MessageClass::Indication, Method::SEND))
    );
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(
        w.peer(0)
            .received
            .iter()
            .map(|(_, f, d)| (*f, d.clone()))
            .collect::<Vec<_>>(),
        vec![(relayed, b"hello peer".to_vec())],
        "the peer sees the data from the relayed address"
    );

    // Peer -> client in a Data indication.
    w.peer_send(0, relayed, b"hello client");
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(w.client().data_from(a), vec![b"hello client".to_vec()]);
    assert_eq!(
        stun_kind(w.client().raw_in.last().expect("received")),
        Some((MessageClass::Indication, Method::DATA))
    );

    // A peer without a permission: nothing goes either way.
    assert_eq!(w.client_send(2, b"no"), Err(TurnError::NoPermission));
    let dropped = w.server().stats().dropped;
    w.peer_send(2, relayed, b"intruder");
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert!(w.client().data_from(c).is_empty());
    assert_eq!(w.client().received.len(), 1);
    assert_eq!(w.server().stats().dropped, dropped + 1);
    assert_eq!(w.server().stats().relayed_to_client, 1);
    assert!(w.peer(2).received.is_empty());
    assert_eq!(w.client().count(is_failure), 0);
}

#[test]
fn channel_bind_then_channel_data_both_ways() {
    let mut w = build(Setup::new(3).echo());
    let (relayed, _) = w.allocate();
    let a = addr(PEERS[0]);
    let channel = w.bind(0);
    assert!((MIN_CHANNEL..=MAX_CHANNEL).contains(&channel));
    assert_eq!(
        w.client()
            .count(|e| *e == TurnEvent::ChannelBound { peer: a, channel }),
        1
    );
    assert!(
        w.client().client.has_permission(a.ip()),
        "a channel installs the permission"
    );
    assert_eq!(w.server().stats().channel_binds, 1);

    for i in 0..5u8 {
        let data = [b'x', i, 0xff, 0x00, i];
        w.client_send(0, &data).expect("send");
        let sent = w.client().raw_out.last().expect("sent").clone();
        assert!(
            (0x40..=0x4F).contains(&sent[0]),
            "ChannelData starts with 0x40-0x4F, got {:#04x}",
            sent[0]
        );
        assert_eq!(parse_channel_data(&sent), Some((channel, &data[..])));
        w.sim.drive_for(Duration::from_secs(1), STEPS);
        // The echo comes back as ChannelData.
        let got = w.client().raw_in.last().expect("received").clone();
        assert_eq!(parse_channel_data(&got), Some((channel, &data[..])));
    }
    let echoed: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'x', i, 0xff, 0x00, i]).collect();
    assert_eq!(w.client().data_from(a), echoed);
    assert!(w.peer(0).received.iter().all(|(_, f, _)| *f == relayed));
    let stats = w.server().stats();
    assert_eq!(stats.channel_data_from_client, 5);
    assert_eq!(stats.channel_data_to_client, 5);
    assert_eq!(w.client().count(is_failure), 0);
}

#[test]
fn one_hour_of_traffic_keeps_everything_refreshed() {
    let mut w = build(Setup::new(4).max_lifetime(120));
    let (relayed, _) = w.allocate();
    let (_, _, lifetime) = w.client().allocated().expect("allocated");
    assert_eq!(lifetime, Duration::from_secs(120));
    let (a, b) = (addr(PEERS[0]), addr(PEERS[1]));
    w.permit(0);
    let channel = w.bind(1);

    let start = w.sim.now();
    let rounds = 720; // every 5 s for an hour
    for i in 0..rounds {
        w.client_send(0, format!("c->a {i}").as_bytes())
            .unwrap_or_else(|e| panic!("round {i}: send to A: {e}"));
        w.client_send(1, format!("c->b {i}").as_bytes())
            .unwrap_or_else(|e| panic!("round {i}: send to B: {e}"));
        w.peer_send(0, relayed, format!("a->c {i}").as_bytes());
        w.peer_send(1, relayed, format!("b->c {i}").as_bytes());
        w.sim.drive_for(Duration::from_secs(5), STEPS);
    }
    assert!(w.sim.now() - start >= Duration::from_secs(3600));

    // Every datagram arrived, in order, both ways.
    let expect = |tag: &str| -> Vec<Vec<u8>> {
        (0..rounds)
            .map(|i| format!("{tag} {i}").into_bytes())
            .collect()
    };
    let peer_got = |w: &World, p: usize| -> Vec<Vec<u8>> {
        w.peer(p)
            .received
            .iter()
            .map(|(_, _, d)| d.clone())
            .collect()
    };
    assert_eq!(peer_got(&w, 0), expect("c->a"));
    assert_eq!(peer_got(&w, 1), expect("c->b"));
    assert_eq!(w.client().data_from(a), expect("a->c"));
    assert_eq!(w.client().data_from(b), expect("b->c"));
    // B's traffic went as ChannelData both ways.
    let cd_out = w
        .client()
        .raw_out
        .iter()
        .filter(|d| parse_channel_data(d).is_some_and(|(n, _)| n == channel))
        .count();
    assert_eq!(cd_out, rounds);
    let stats = w.server().stats();
    assert_eq!(stats.channel_data_to_client, rounds as u64);

    // Refreshes: the allocation every 60 s, permissions every 240 s, the channel every
    // 540 s; nothing ever expired on the server.
    assert!(
        (55..=61).contains(&stats.refreshes),
        "allocation refreshes: {}",
        stats.refreshes
    );
    assert!(
        stats.permissions >= 15,
        "permissions: {}",
        stats.permissions
    );
    assert!(
        stats.channel_binds >= 7,
        "channel binds: {}",
        stats.channel_binds
    );
    assert_eq!(stats.expired_allocations, 0);
    assert_eq!(stats.expired_permissions, 0);
    assert_eq!(stats.expired_channels, 0);
    assert_eq!(stats.mismatches, 0);
    assert_eq!(
        w.client().count(is_failure),
        0,
        "{:?}",
        w.client().event_list()
    );
    assert!(
        w.client()
            .count(|e| matches!(e, TurnEvent::ChannelBound { .. }))
            >= 7
    );
    assert!(
        w.client()
            .count(|e| matches!(e, TurnEvent::PermissionCreated { peer } if *peer == a.ip()))
            >= 15
    );
    assert_eq!(w.client().client.state(), &TurnState::Allocated);
    assert_eq!(w.server().allocation_count(), 1);
}

#[test]
fn lossy_half_hour_keeps_the_allocation() {
    let mut w = build(Setup::new(5).max_lifetime(120));
    let lossy = LinkConfig {
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(20),
        loss: 0.15,
        duplicate: 0.05,
        ..LinkConfig::default()
    };
    w.sim.set_link_both(w.client, w.server, lossy);
    let (relayed, _) = w.allocate();
    w.permit(0);
    w.bind(1);
    let rounds = 360;
    for i in 0..rounds {
        for p in 0..2 {
            w.client_send(p, format!("c {i}").as_bytes())
                .unwrap_or_else(|e| panic!("round {i}: send to {p}: {e}"));
            w.peer_send(p, relayed, format!("p {i}").as_bytes());
        }
        w.sim.drive_for(Duration::from_secs(5), STEPS);
    }
    assert_eq!(
        w.client().count(is_failure),
        0,
        "{:?}",
        w.client().event_list()
    );
    assert_eq!(w.client().client.state(), &TurnState::Allocated);
    let stats = w.server().stats();
    assert_eq!(stats.expired_allocations, 0);
    assert_eq!(stats.expired_permissions, 0);
    assert_eq!(stats.expired_channels, 0);
    for (p, peer) in PEERS.iter().enumerate().take(2) {
        let got = w.client().data_from(addr(peer)).len();
        assert!(
            got > rounds * 7 / 10,
            "peer {p} -> client: {got} of {rounds}"
        );
        let got = w.peer(p).received.len();
        assert!(
            got > rounds * 7 / 10,
            "client -> peer {p}: {got} of {rounds}"
        );
    }
}

#[test]
fn stale_nonce_mid_session_is_retried() {
    let mut w = build(Setup::new(6).max_lifetime(120));
    let (relayed, _) = w.allocate();
    w.permit(0);
    w.sim.drive_for(Duration::from_secs(30), STEPS);
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.rotate_nonce());
    // The allocation refresh at ~60 s meets the new nonce.
    w.sim.drive_for(Duration::from_secs(40), STEPS);
    let answers = w.answers();
    let stale = answers
        .iter()
        .position(|&a| a == (Method::REFRESH, 438))
        .expect("a refresh got 438");
    assert_eq!(answers.get(stale + 1), Some(&(Method::REFRESH, 200)));
    assert_eq!(w.server().stats().stale_nonces, 1);
    assert_eq!(
        w.client().count(is_failure),
        0,
        "{:?}",
        w.client().event_list()
    );

    // The session goes on: data, permission and allocation refreshes with the new nonce.
    for i in 0..60 {
        w.client_send(0, format!("c {i}").as_bytes()).expect("send");
        w.peer_send(0, relayed, format!("p {i}").as_bytes());
        w.sim.drive_for(Duration::from_secs(5), STEPS);
    }
    assert_eq!(w.server().stats().stale_nonces, 1, "the new nonce is used");
    assert!(w.server().stats().permissions >= 2, "permission refreshed");
    assert!(w.server().stats().refreshes >= 5);
    assert_eq!(w.client().data_from(addr(PEERS[0])).len(), 60);
    assert_eq!(w.peer(0).received.len(), 60);
    assert_eq!(w.client().count(is_failure), 0);
    assert_eq!(w.client().client.state(), &TurnState::Allocated);
}

/// Four permissions made together are refreshed together; when the nonce went stale in
/// the meantime, all four refreshes get 438 and each must be retried once.
#[test]
fn stale_nonce_with_several_refreshes_in_flight() {
    let mut w = build(Setup::new(7));
    let (relayed, _) = w.allocate();
    let peers: Vec<IpAddr> = PEERS[..4].iter().map(|p| addr(p).ip()).collect();
    w.act(|c, now| {
        for &p in &peers {
            c.create_permission(now, p);
        }
    });
    assert!(w.wait(Duration::from_secs(10), |n| {
        peers.iter().all(|&p| n.client.has_permission(p))
    }));
    w.sim.drive_for(Duration::from_secs(100), STEPS);
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.rotate_nonce());
    // The four permission refreshes at ~240 s all meet the new nonce.
    w.sim.drive_for(Duration::from_secs(200), STEPS);
    assert_eq!(w.server().stats().stale_nonces, 4);
    assert_eq!(
        w.client().count(is_failure),
        0,
        "a 438 per request must be retried: {:?}",
        w.client().event_list()
    );
    for &p in &peers {
        assert!(w.client().client.has_permission(p), "permission for {p}");
    }
    // Past the first 300 s, data still flows to and from every peer.
    for i in 0..4 {
        w.peer_send(i, relayed, b"still there");
    }
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    for (i, peer) in PEERS.iter().enumerate().take(4) {
        assert_eq!(
            w.client().data_from(addr(peer)),
            vec![b"still there".to_vec()],
            "peer {i}"
        );
    }
}

#[test]
fn forgotten_allocation_refresh_gets_437() {
    let mut w = build(Setup::new(8).max_lifetime(120));
    w.allocate();
    w.sim.drive_for(Duration::from_secs(30), STEPS);
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.forget_allocations());
    assert!(w.wait(Duration::from_secs(60), |n| n.count(is_lost) > 0));
    assert_eq!(
        w.client().event_list().last(),
        Some(&TurnEvent::AllocationLost(TurnError::AllocationMismatch))
    );
    assert_eq!(
        w.client().client.state(),
        &TurnState::Failed(TurnError::AllocationMismatch)
    );
    assert!(w.client().client.relayed().is_empty());
    assert_eq!(w.answers().last(), Some(&(Method::REFRESH, 437)));
    assert_eq!(w.server().stats().mismatches, 1);
    assert_eq!(w.client_send(0, b"x"), Err(TurnError::NotAllocated));
    // The client has nothing left to do.
    let answered = w.server().answers().len();
    let steps = w.sim.drive_until_idle(STEPS);
    assert!(steps < 100, "idle after {steps} steps");
    assert_eq!(w.server().answers().len(), answered);
}

#[test]
fn forgotten_allocation_permission_refresh_gets_437() {
    let mut w = build(Setup::new(9));
    w.allocate();
    w.permit(0);
    w.sim.drive_for(Duration::from_secs(30), STEPS);
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.forget_allocations());
    // The permission refresh (~240 s) comes before the allocation's (~540 s).
    assert!(w.wait(Duration::from_secs(300), |n| n.count(is_lost) > 0));
    let a = addr(PEERS[0]).ip();
    let events = w.client().event_list();
    assert!(events.contains(&TurnEvent::AllocationLost(TurnError::AllocationMismatch)));
    assert!(events.contains(&TurnEvent::PermissionFailed {
        peer: a,
        error: TurnError::AllocationMismatch
    }));
    assert_eq!(w.answers().last(), Some(&(Method::CREATE_PERMISSION, 437)));
    assert_eq!(w.server().stats().mismatches, 1);
    assert_eq!(
        w.client().client.state(),
        &TurnState::Failed(TurnError::AllocationMismatch)
    );
    assert!(w.sim.drive_until_idle(STEPS) < 100);
}

#[test]
fn wrong_password_fails_without_hang() {
    let mut w = build(Setup::new(10).password("not-secret"));
    w.act(|c, now| c.allocate(now));
    let steps = w.sim.drive_until_idle(STEPS);
    assert!(steps < 100, "the simulation went idle after {steps} steps");
    assert!(w.sim.elapsed() < Duration::from_secs(1));
    assert_eq!(
        w.client().event_list(),
        vec![TurnEvent::AllocationFailed(TurnError::Auth(
            AuthError::Rejected
        ))]
    );
    assert_eq!(
        w.client().client.state(),
        &TurnState::Failed(TurnError::Auth(AuthError::Rejected))
    );
    assert_eq!(
        w.answers(),
        vec![(Method::ALLOCATE, 401), (Method::ALLOCATE, 401)]
    );
    assert_eq!(w.server().allocation_count(), 0);
}

#[test]
fn allocate_success_without_relayed_address() {
    let mut w = build(Setup::new(11).misbehave(Misbehave::OmitRelayedAddress));
    w.act(|c, now| c.allocate(now));
    assert!(w.wait(Duration::from_secs(60), |n| n.failure().is_some()));
    assert_eq!(
        w.client().event_list(),
        vec![TurnEvent::AllocationFailed(TurnError::MissingAttribute(
            "XOR-RELAYED-ADDRESS"
        ))]
    );
    assert!(matches!(w.client().client.state(), TurnState::Failed(_)));
}

#[test]
fn allocate_success_with_bad_integrity_times_out() {
    let retransmit = RetransmitConfig {
        rto: Duration::from_millis(100),
        max_requests: 3,
        last_wait_multiplier: 4,
        reliable_timeout: Duration::from_secs(2),
    };
    let mut w = build(
        Setup::new(12)
            .misbehave(Misbehave::BadIntegrity)
            .retransmit(retransmit),
    );
    w.act(|c, now| c.allocate(now));
    assert!(w.wait(Duration::from_secs(60), |n| n.failure().is_some()));
    assert_eq!(
        w.client().event_list(),
        vec![TurnEvent::AllocationFailed(TurnError::Timeout)]
    );
    // 100 + 200 + 400 ms after the signed request, plus a round trip.
    assert!(
        w.sim.elapsed() < Duration::from_secs(1),
        "{:?}",
        w.sim.elapsed()
    );
    // Every copy of the signed request got a (badly signed) success.
    assert_eq!(
        w.answers(),
        vec![
            (Method::ALLOCATE, 401),
            (Method::ALLOCATE, 200),
            (Method::ALLOCATE, 200),
            (Method::ALLOCATE, 200)
        ]
    );
    assert!(w.client().client.relayed().is_empty());
}

#[test]
fn allocate_quota_reached() {
    let mut w = build(Setup::new(13).misbehave(Misbehave::RejectAllocate(486)));
    w.act(|c, now| c.allocate(now));
    assert!(w.sim.drive_until_idle(STEPS) < 100);
    assert_eq!(
        w.client().event_list(),
        vec![TurnEvent::AllocationFailed(TurnError::QuotaReached)]
    );
    assert_eq!(
        w.answers(),
        vec![(Method::ALLOCATE, 401), (Method::ALLOCATE, 486)]
    );
}

#[test]
fn try_alternate_redirects_once() {
    let mut w = build(Setup::new(14).misbehave(Misbehave::TryAlternate(addr(ALT_SERVER))));
    let alt = add_server(&mut w, ALT_SERVER, ALT_RELAY_IP, Misbehave::None);
    let (relayed, mapped) = w.allocate();
    assert_eq!(
        w.client().events.first().map(|(_, e)| e.clone()),
        Some(TurnEvent::Redirected {
            server: addr(ALT_SERVER)
        })
    );
    assert_eq!(relayed.ip(), ip(ALT_RELAY_IP), "allocated on the alternate");
    assert_eq!(mapped, w.client_public());
    assert_eq!(w.client().client.server(), addr(ALT_SERVER));
    assert_eq!(
        w.answers(),
        vec![(Method::ALLOCATE, 401), (Method::ALLOCATE, 300)]
    );
    assert_eq!(w.server().allocation_count(), 0);
    let alt_server = w.sim.node::<TurnServerNode>(alt);
    assert_eq!(
        alt_server.stats().challenges,
        1,
        "a new credential exchange"
    );
    assert_eq!(alt_server.stats().allocations, 1);

    // The relay on the alternate works.
    w.permit(0);
    w.client_send(0, b"via alternate").expect("send");
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(
        w.peer(0).received.last().map(|(_, f, d)| (*f, d.clone())),
        Some((relayed, b"via alternate".to_vec()))
    );
}

#[test]
fn try_alternate_before_authentication() {
    let mut w =
        build(Setup::new(15).misbehave(Misbehave::TryAlternateUnauthenticated(addr(ALT_SERVER))));
    add_server(&mut w, ALT_SERVER, ALT_RELAY_IP, Misbehave::None);
    let (relayed, _) = w.allocate();
    assert_eq!(relayed.ip(), ip(ALT_RELAY_IP));
    assert_eq!(w.answers(), vec![(Method::ALLOCATE, 300)]);
    assert_eq!(
        w.client()
            .count(|e| matches!(e, TurnEvent::Redirected { .. })),
        1
    );
}

#[test]
fn second_try_alternate_is_too_many_redirects() {
    let mut w = build(Setup::new(16).misbehave(Misbehave::TryAlternate(addr(ALT_SERVER))));
    let alt = add_server(
        &mut w,
        ALT_SERVER,
        ALT_RELAY_IP,
        Misbehave::TryAlternate(addr(THIRD_SERVER)),
    );
    w.act(|c, now| c.allocate(now));
    assert!(w.sim.drive_until_idle(STEPS) < 100);
    assert_eq!(
        w.client().event_list(),
        vec![
            TurnEvent::Redirected {
                server: addr(ALT_SERVER)
            },
            TurnEvent::AllocationFailed(TurnError::TooManyRedirects)
        ]
    );
    assert_eq!(w.sim.node::<TurnServerNode>(alt).answers().len(), 2);
    assert_eq!(w.client().client.server(), addr(ALT_SERVER));
}

/// RFC 8656 §10.4: the client SHOULD discard a Data indication whose peer has no
/// permission it believes active. Here a broken server relays any peer's data.
#[test]
fn data_indication_from_unpermitted_peer_is_discarded() {
    let mut w = build(Setup::new(17).misbehave(Misbehave::RelayUnpermitted));
    let (relayed, _) = w.allocate();
    w.permit(0);
    w.peer_send(0, relayed, b"permitted");
    w.peer_send(2, relayed, b"not permitted");
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(w.server().stats().relayed_to_client, 2);
    assert_eq!(
        w.client().data_from(addr(PEERS[0])),
        vec![b"permitted".to_vec()]
    );
    assert!(
        w.client().data_from(addr(PEERS[2])).is_empty(),
        "data from a peer without a permission was delivered"
    );
}

#[test]
fn close_deletes_the_allocation() {
    let mut w = build(Setup::new(18));
    let (relayed, _) = w.allocate();
    w.permit(0);
    w.act(|c, now| c.close(now));
    assert_eq!(w.client().client.state(), &TurnState::Closing);
    assert!(w.wait(
        Duration::from_secs(10),
        |n| n.count(|e| *e == TurnEvent::Closed) > 0
    ));
    assert_eq!(w.client().client.state(), &TurnState::Closed);
    assert_eq!(w.answers().last(), Some(&(Method::REFRESH, 200)));
    assert_eq!(w.server().allocation_count(), 0);
    assert_eq!(w.server().stats().deletes, 1);
    assert_eq!(w.client_send(0, b"x"), Err(TurnError::NotAllocated));
    // The relayed address is gone.
    let dropped = w.server().stats().dropped;
    w.peer_send(0, relayed, b"anyone?");
    assert!(w.sim.drive_until_idle(STEPS) < 100, "nothing left to do");
    assert_eq!(w.server().stats().dropped, dropped + 1);
    assert!(w.client().received.is_empty());
    assert_eq!(w.client().count(is_failure), 0);
}

#[test]
fn public_client_gets_its_own_address_as_mapped() {
    let mut w = build(Setup::new(19).public_client());
    let (relayed, mapped) = w.allocate();
    assert_eq!(mapped, addr(CLIENT_PUBLIC));
    assert_eq!(relayed.ip(), ip(RELAY_IP));
}

fn channel_session_transcript(seed: u64) -> Vec<u8> {
    let mut w = build(Setup::new(seed).echo().max_lifetime(120));
    w.allocate();
    w.bind(0);
    w.permit(1);
    let relayed = w.client().client.relayed()[0];
    for i in 0..40 {
        w.client_send(0, format!("c {i}").as_bytes()).expect("send");
        w.client_send(1, format!("c {i}").as_bytes()).expect("send");
        w.peer_send(1, relayed, b"p");
        w.sim.drive_for(Duration::from_secs(10), STEPS);
    }
    assert_eq!(w.client().count(is_failure), 0);
    w.sim.transcript().to_vec()
}

#[test]
fn same_seed_same_transcript() {
    let a = channel_session_transcript(20);
    let b = channel_session_transcript(20);
    assert!(!a.is_empty());
    assert!(a == b, "two runs with one seed differ");
}

/// Short retransmissions: 3 requests, failure 700 ms after the first.
fn short_retransmit() -> RetransmitConfig {
    RetransmitConfig {
        rto: Duration::from_millis(100),
        max_requests: 3,
        last_wait_multiplier: 4,
        reliable_timeout: Duration::from_secs(2),
    }
}

#[test]
fn refresh_never_answered_loses_the_allocation() {
    let mut w = build(Setup::new(21).max_lifetime(120));
    w.allocate();
    w.sim.with_node::<TurnServerNode, _>(w.server, |s, _| {
        s.drop_requests(Method::REFRESH, u32::MAX)
    });
    assert!(w.wait(Duration::from_secs(150), |n| n.count(is_lost) > 0));
    assert_eq!(
        w.client().event_list().last(),
        Some(&TurnEvent::AllocationLost(TurnError::Timeout))
    );
    // Refreshed at ~60 s, given up 39.5 s later: before the server's 120 s ran out.
    assert!(w.sim.elapsed() < Duration::from_secs(110));
    assert_eq!(w.server().stats().ignored_requests, 7);
    assert!(w.client().client.relayed().is_empty());
}

/// close() while the allocation refresh waits for a retransmission: the retransmitted
/// refresh reaches the server after the deletion and gets 437; the client, closed, must
/// stay closed.
#[test]
fn close_while_a_refresh_is_retransmitted_stays_closed() {
    let mut w = build(Setup::new(22).max_lifetime(120));
    w.allocate();
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.drop_requests(Method::REFRESH, 1));
    // The refresh goes out at ~60.04 s and is dropped; its retransmission is due 500 ms
    // later.
    w.sim.drive_for(Duration::from_millis(60_200), STEPS);
    assert_eq!(w.server().stats().ignored_requests, 1);
    w.act(|c, now| c.close(now));
    assert!(w.wait(
        Duration::from_secs(60),
        |n| n.count(|e| *e == TurnEvent::Closed) > 0
    ));
    assert_eq!(w.server().allocation_count(), 0);
    w.sim.drive_for(Duration::from_secs(60), STEPS);
    assert_eq!(
        w.answers()[2..],
        [(Method::REFRESH, 200), (Method::REFRESH, 437)],
        "the deletion, then the stale refresh"
    );
    assert_eq!(
        w.client().event_list()[1..],
        [TurnEvent::Closed],
        "nothing after Closed"
    );
    assert_eq!(w.client().client.state(), &TurnState::Closed);
}

#[test]
fn channel_bind_can_be_retried_after_a_failure() {
    let mut w = build(Setup::new(23).retransmit(short_retransmit()));
    let (relayed, _) = w.allocate();
    let a = addr(PEERS[0]);
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.drop_requests(Method::CHANNEL_BIND, 3));
    let channel = w
        .act(|c, now| c.bind_channel(now, a))
        .expect("a channel number");
    assert!(w.wait(Duration::from_secs(10), |n| {
        n.count(|e| matches!(e, TurnEvent::ChannelFailed { .. })) > 0
    }));
    assert_eq!(
        w.client().event_list().last(),
        Some(&TurnEvent::ChannelFailed {
            peer: a,
            error: TurnError::Timeout
        })
    );
    assert_eq!(w.client().client.channel(a), None);

    // Data keeps going, in Send indications (the channel request made no permission).
    w.permit(0);
    w.client_send(0, b"no channel").expect("send");
    assert_eq!(
        stun_kind(w.client().raw_out.last().expect("sent")),
        Some((MessageClass::Indication, Method::SEND))
    );
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(
        w.peer(0).received.last().map(|(_, f, d)| (*f, d.clone())),
        Some((relayed, b"no channel".to_vec()))
    );

    // Asking again binds the channel.
    let again = w
        .act(|c, now| c.bind_channel(now, a))
        .expect("a channel number");
    let bound = w.wait(Duration::from_secs(10), |n| n.client.channel(a).is_some());
    assert!(
        bound,
        "bind_channel after ChannelFailed returned {again:#06x} (first {channel:#06x}) but \
         the channel never got bound; ChannelBind requests seen by the server: {}",
        w.server().stats().channel_binds + w.server().stats().ignored_requests
    );
}

#[test]
fn ipv6_peer_on_an_ipv4_relay() {
    let mut w = build(Setup::new(24));
    w.allocate();
    let v6: SocketAddr = addr("[2001:db8::1]:5000");
    // While the permission is pending, sending is refused for the family.
    let sent = w.sim.with_node::<TurnClientNode, _>(w.client, |n, now| {
        n.client.create_permission(now, v6.ip());
        n.send_to(v6, b"x")
    });
    assert_eq!(sent, Err(TurnError::PeerFamily));
    assert!(w.wait(Duration::from_secs(10), |n| {
        n.count(|e| matches!(e, TurnEvent::PermissionFailed { .. })) > 0
    }));
    assert_eq!(
        w.client().event_list().last(),
        Some(&TurnEvent::PermissionFailed {
            peer: v6.ip(),
            error: TurnError::PeerAddressFamilyMismatch
        })
    );
    assert!(!w.client().client.has_permission(v6.ip()));
    assert_eq!(w.client().client.state(), &TurnState::Allocated);
}

#[test]
fn oversized_data_and_stray_packets() {
    let mut w = build(Setup::new(25).public_client());
    w.allocate();
    w.permit(0);
    let big = vec![0u8; 65_001];
    assert_eq!(w.client_send(0, &big), Err(TurnError::TooLong(65_001)));
    // A peer writing to the client's own address directly: not from the server.
    w.peer_send(0, addr(CLIENT_PUBLIC), b"direct");
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(w.client().ignored, 1);
    assert!(w.client().received.is_empty());
}

/// The nonce changes between the 401 challenge and the signed Allocate: 438, then the
/// retry succeeds.
#[test]
fn nonce_rotated_during_the_first_exchange() {
    let mut w = build(Setup::new(26));
    assert_eq!(w.client_send(0, b"x"), Err(TurnError::NotAllocated));
    w.act(|c, now| c.allocate(now));
    // The challenge is back at the client at 20 ms; the signed request arrives at 30 ms.
    w.sim.drive_for(Duration::from_millis(25), STEPS);
    assert_eq!(w.answers(), vec![(Method::ALLOCATE, 401)]);
    w.sim
        .with_node::<TurnServerNode, _>(w.server, |s, _| s.rotate_nonce());
    assert!(w.wait(Duration::from_secs(10), |n| n.allocated().is_some()));
    assert_eq!(
        w.answers(),
        vec![
            (Method::ALLOCATE, 401),
            (Method::ALLOCATE, 438),
            (Method::ALLOCATE, 200)
        ]
    );
    assert_eq!(w.client().count(is_failure), 0);
}

/// A 30 s lifetime is refreshed halfway through, for five minutes.
#[test]
fn short_lifetime_is_refreshed_halfway() {
    let mut w = build(Setup::new(27).max_lifetime(30));
    let (relayed, _) = w.allocate();
    w.permit(0);
    for i in 0..60 {
        w.peer_send(0, relayed, format!("p {i}").as_bytes());
        w.sim.drive_for(Duration::from_secs(5), STEPS);
    }
    let stats = w.server().stats();
    assert!(
        (19..=21).contains(&stats.refreshes),
        "refreshes: {}",
        stats.refreshes
    );
    assert_eq!(stats.expired_allocations, 0);
    assert_eq!(stats.expired_permissions, 0);
    assert_eq!(w.client().data_from(addr(PEERS[0])).len(), 60);
    assert_eq!(w.client().count(is_failure), 0);
}
