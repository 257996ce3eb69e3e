//! A deterministic, single-threaded network simulator.
//!
//! [`Node`]s (sans-IO protocol endpoints) live in realms: realm 0 is the public internet,
//! every other realm is a private network behind one [`Nat`]. Packets travel over links
//! with configurable latency, jitter, loss, duplication and reordering; all randomness
//! comes from one ChaCha8 RNG seeded by [`Sim::new`], and time is virtual, so a run is
//! fully reproducible from its seed.
//!
//! Routing model: when a node sends, the route is worked out at once. A packet to an
//! address owned by a node of the sender's realm goes straight to it. Otherwise a packet
//! leaving a private realm is translated by that realm's NAT (instantaneously, at send
//! time) and continues in the public realm, where the destination is a public node or the
//! public IP of a NAT. A packet to a NAT is filtered by that NAT *when it arrives* (at
//! delivery time, with the NAT state of that moment), then delivered to the internal
//! endpoint of the mapping. The link used for the delay, loss and duplication draws is that
//! of (sending node, final destination node); for a packet to a NAT the final node is
//! resolved through the mapping at send time (the default link when there is none yet).
//!
//! Multicast: each realm is one link-local segment. A packet to a multicast group (such as
//! mDNS's 224.0.0.251:5353) reaches every node of the sender's realm that joined the group
//! with [`Sim::join_multicast`], the sender too (as multicast loopback does), each copy
//! with the link of (sender, member); it never crosses a NAT.

#![allow(dead_code)]

pub mod flow;
pub mod ice;
pub mod mdns;
pub mod nat;
pub mod stun_server;
pub mod syn;
pub mod turn_server;

mod tests;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::{Transmit, TransportType};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

pub use nat::{InboundDrop, Nat, NatType};
pub use stun_server::StunServerNode;
pub use turn_server::{Misbehave, TurnServerConfig, TurnServerNode};

/// A simulated endpoint, driven by the [`Sim`] like a sans-IO protocol object.
pub trait Node: std::any::Any {
    /// A datagram (or framed TCP message) arrives for this node.
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>);
    /// The next packet the node wants to send; its `from` must be one of its addresses.
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>>;
    /// When the node next wants [`Node::handle_timeout`] called (never, by default).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// The time of [`Node::poll_timeout`] has come.
    fn handle_timeout(&mut self, _now: Instant) {}
}

/// A node's index in the simulation.
pub type NodeId = usize;
/// A network's index: 0 is the public internet, others are behind a NAT each.
pub type RealmId = usize;

/// The public internet.
pub const PUBLIC_REALM: RealmId = 0;

/// How a directed link treats packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]`.
    pub jitter: Duration,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Probability a packet is delivered twice (the copy gets its own delay).
    pub duplicate: f64,
    /// Probability a packet gets an extra delay of `reorder_delay`.
    pub reorder: f64,
    /// The extra delay of reordered packets.
    pub reorder_delay: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        }
    }
}

impl LinkConfig {
    /// A perfect link with this latency.
    pub fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    fn check(&self) {
        for p in [self.loss, self.duplicate, self.reorder] {
            assert!((0.0..=1.0).contains(&p), "probability {p} out of [0, 1]");
        }
    }
}

/// A packet a node handed to the network (see [`Sim::packets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// When.
    pub at: Instant,
    /// The sending node.
    pub node: NodeId,
    /// The transport.
    pub transport: TransportType,
    /// The source address as sent.
    pub from: SocketAddr,
    /// The destination address.
    pub to: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Counters of what happened to packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Packets handed to the network by nodes.
    pub sent: u64,
    /// Packets handed to a node (duplicates count twice).
    pub delivered: u64,
    /// Packets lost on a link.
    pub dropped_loss: u64,
    /// Packets with no node or NAT at their destination (or hairpinning).
    pub dropped_no_route: u64,
    /// Packets a NAT refused (no mapping, or filtered).
    pub dropped_nat_filter: u64,
    /// Packets sent twice by a link.
    pub duplicated: u64,
    /// Packets whose `from` is not one of the sending node's addresses.
    pub dropped_bad_source: u64,
}

/// Where a packet in flight is going.
#[derive(Clone, Copy, Debug)]
enum Hop {
    /// Straight to a node.
    Node(NodeId),
    /// To the public side of the NAT of a realm, which filters it on arrival.
    Nat(RealmId),
}

/// A packet scheduled for delivery.
#[derive(Debug)]
struct InFlight {
    hop: Hop,
    transmit: Transmit<Vec<u8>>,
}

/// One node and its place in the network.
struct Slot {
    realm: RealmId,
    ips: Vec<IpAddr>,
    node: Box<dyn Node>,
}

/// One network: the public one (no NAT) or a private one.
struct Realm {
    nat: Option<Nat>,
}

/// The virtual origin of a simulation's clock: the only real clock read.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The network simulator. See the module docs for the model.
pub struct Sim {
    start: Instant,
    now: Instant,
    rng: ChaCha8Rng,
    nodes: Vec<Slot>,
    realms: Vec<Realm>,
    /// (realm, ip) -> owning node.
    owners: BTreeMap<(RealmId, IpAddr), NodeId>,
    /// public NAT ip -> the realm behind it.
    nat_ips: BTreeMap<IpAddr, RealmId>,
    default_link: LinkConfig,
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    /// (delivery time, sequence) -> packet.
    queue: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
    transcript: Vec<u8>,
    stats: SimStats,
    /// Multicast group -> the nodes that joined it.
    groups: BTreeMap<SocketAddr, Vec<NodeId>>,
}

impl Sim {
    /// An empty simulation whose randomness all comes from `seed`.
    pub fn new(seed: u64) -> Sim {
        let start = origin();
        Sim {
            start,
            now: start,
            rng: ChaCha8Rng::seed_from_u64(seed),
            nodes: Vec::new(),
            realms: vec![Realm { nat: None }],
            owners: BTreeMap::new(),
            nat_ips: BTreeMap::new(),
            default_link: LinkConfig::default(),
            links: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            transcript: Vec::new(),
            stats: SimStats::default(),
            groups: BTreeMap::new(),
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The virtual time the simulation started at.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The public internet's realm (0).
    pub fn public_realm(&self) -> RealmId {
        PUBLIC_REALM
    }

    /// A private network behind a NAT of `nat` type whose public address is `public_ip`
    /// (in realm 0).
    pub fn add_nat(&mut self, nat: NatType, public_ip: IpAddr) -> RealmId {
        assert!(
            !self.owners.contains_key(&(PUBLIC_REALM, public_ip))
                && !self.nat_ips.contains_key(&public_ip),
            "public address {public_ip} already in use"
        );
        let realm = self.realms.len();
        self.realms.push(Realm {
            nat: Some(Nat::new(nat, public_ip)),
        });
        self.nat_ips.insert(public_ip, realm);
        realm
    }

    /// A host node with these IP addresses in `realm`. Its transmits' `from` must use one
    /// of them.
    pub fn add_node(&mut self, realm: RealmId, ips: &[IpAddr], node: Box<dyn Node>) -> NodeId {
        assert!(realm < self.realms.len(), "no realm {realm}");
        let id = self.nodes.len();
        for &ip in ips {
            assert!(
                !(realm == PUBLIC_REALM && self.nat_ips.contains_key(&ip)),
                "{ip} is a NAT's public address"
            );
            let prev = self.owners.insert((realm, ip), id);
            assert!(prev.is_none(), "{ip} already in use in realm {realm}");
        }
        self.nodes.push(Slot {
            realm,
            ips: ips.to_vec(),
            node,
        });
        id
    }

    /// Node `id` receives the packets sent to the multicast `group` in its realm.
    pub fn join_multicast(&mut self, id: NodeId, group: SocketAddr) {
        assert!(
            group.ip().is_multicast(),
            "{group} is not a multicast group"
        );
        let members = self.groups.entry(group).or_default();
        if !members.contains(&id) {
            members.push(id);
        }
    }

    /// The link config for pairs without their own.
    pub fn set_default_link(&mut self, cfg: LinkConfig) {
        cfg.check();
        self.default_link = cfg;
    }

    /// Config for packets from node `from` to node `to` (directed), overriding the default.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, cfg: LinkConfig) {
        cfg.check();
        self.links.insert((from, to), cfg);
    }

    /// Sets the link config both ways between `a` and `b`.
    pub fn set_link_both(&mut self, a: NodeId, b: NodeId, cfg: LinkConfig) {
        self.set_link(a, b, cfg);
        self.set_link(b, a, cfg);
    }

    /// The node `id` as a `T`. Panics if it is not one.
    pub fn node<T: Node>(&self, id: NodeId) -> &T {
        let node: &dyn std::any::Any = self.nodes[id].node.as_ref();
        node.downcast_ref::<T>()
            .unwrap_or_else(|| panic!("node {id} is not a {}", std::any::type_name::<T>()))
    }

    /// The node `id` as a `T`, mutably. Panics if it is not one. What it queues to send is
    /// only collected by the next event touching it; prefer [`Sim::with_node`].
    pub fn node_mut<T: Node>(&mut self, id: NodeId) -> &mut T {
        let node: &mut dyn std::any::Any = self.nodes[id].node.as_mut();
        node.downcast_mut::<T>()
            .unwrap_or_else(|| panic!("node {id} is not a {}", std::any::type_name::<T>()))
    }

    /// Runs `f` on the node with the current time, then collects what the node wants to
    /// send.
    pub fn with_node<T: Node, R>(&mut self, id: NodeId, f: impl FnOnce(&mut T, Instant) -> R) -> R {
        let now = self.now;
        let r = f(self.node_mut::<T>(id), now);
        self.drain(id);
        r
    }

    /// The realm node `id` is in.
    pub fn realm_of(&self, id: NodeId) -> RealmId {
        self.nodes[id].realm
    }

    /// The addresses of node `id`.
    pub fn ips_of(&self, id: NodeId) -> &[IpAddr] {
        &self.nodes[id].ips
    }

    /// The NAT in front of `realm` (none for the public realm).
    pub fn nat(&self, realm: RealmId) -> Option<&Nat> {
        self.realms[realm].nat.as_ref()
    }

    /// The NAT in front of `realm`, to change its state (none for the public realm).
    pub fn nat_mut(&mut self, realm: RealmId) -> Option<&mut Nat> {
        self.realms[realm].nat.as_mut()
    }

    /// How many packets are in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Every packet handed to the network so far, encoded for byte-for-byte comparison:
    /// per packet, the virtual time offset in nanoseconds (u64 BE), the sending node (u32
    /// BE), the transport (one byte), the `from` and `to` addresses as length-prefixed
    /// text, the data length (u32 BE) and the data.
    pub fn transcript(&self) -> &[u8] {
        &self.transcript
    }

    /// The packets of [`Self::transcript`], decoded.
    pub fn packets(&self) -> Vec<Packet> {
        let t = &self.transcript;
        let mut out = Vec::new();
        let mut at = 0;
        let take = |at: &mut usize, n: usize| {
            let bytes = &t[*at..*at + n];
            *at += n;
            bytes
        };
        while at < t.len() {
            let nanos = u64::from_be_bytes(take(&mut at, 8).try_into().expect("8 bytes"));
            let node = u32::from_be_bytes(take(&mut at, 4).try_into().expect("4 bytes"));
            let transport = match take(&mut at, 1)[0] {
                b'U' => TransportType::Udp,
                _ => TransportType::Tcp,
            };
            let mut addr = || {
                let len = usize::from(take(&mut at, 1)[0]);
                let text = std::str::from_utf8(take(&mut at, len)).expect("text");
                text.parse::<SocketAddr>().expect("an address")
            };
            let (from, to) = (addr(), addr());
            let len = u32::from_be_bytes(take(&mut at, 4).try_into().expect("4 bytes"));
            let data = take(&mut at, len as usize).to_vec();
            out.push(Packet {
                at: self.start + Duration::from_nanos(nanos),
                node: node as NodeId,
                transport,
                from,
                to,
                data,
            });
        }
        out
    }

    /// The packet counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// The earliest node timeout: (time, node), lowest node id first on ties.
    fn next_timeout(&self) -> Option<(Instant, NodeId)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| slot.node.poll_timeout().map(|t| (t, id)))
            .min()
    }

    /// When the next event happens (a timeout in the past counts as now).
    pub fn next_event_time(&self) -> Option<Instant> {
        let packet = self.queue.first_key_value().map(|(&(t, _), _)| t);
        let timeout = self.next_timeout().map(|(t, _)| t.max(self.now));
        match (packet, timeout) {
            (Some(p), Some(t)) => Some(p.min(t)),
            (p, t) => p.or(t),
        }
    }

    /// One event: the earliest of the next packet delivery and the earliest node timeout
    /// (a timeout wins a tie); advances the clock to it, handles it, then drains
    /// `poll_transmit` of the node touched. Returns false when there is nothing left to do
    /// (no packet in flight, no node timeout).
    pub fn step(&mut self) -> bool {
        let packet = self.queue.first_key_value().map(|(&(t, _), _)| t);
        if let Some((t, id)) = self.next_timeout()
            && packet.is_none_or(|p| t <= p)
        {
            self.now = self.now.max(t);
            let now = self.now;
            self.nodes[id].node.handle_timeout(now);
            self.drain(id);
            return true;
        }
        let Some(((t, _), inflight)) = self.queue.pop_first() else {
            return false;
        };
        self.now = self.now.max(t);
        self.deliver(inflight);
        true
    }

    /// Steps until `done(&mut Sim)` holds (checked before the first step and after each
    /// one), the simulation is idle, or `max_steps` steps were taken; returns whether
    /// `done` held.
    pub fn drive_until(
        &mut self,
        max_steps: usize,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> bool {
        if done(self) {
            return true;
        }
        for _ in 0..max_steps {
            if !self.step() {
                return done(self);
            }
            if done(self) {
                return true;
            }
        }
        false
    }

    /// Handles every event up to now + `limit`, then moves the clock to now + `limit` (so
    /// that much virtual time has passed); stops early after `max_steps` steps. Returns the
    /// steps taken.
    pub fn drive_for(&mut self, limit: Duration, max_steps: usize) -> usize {
        let deadline = self.now + limit;
        let mut steps = 0;
        while steps < max_steps {
            match self.next_event_time() {
                Some(t) if t <= deadline => {
                    self.step();
                    steps += 1;
                }
                _ => {
                    self.now = self.now.max(deadline);
                    break;
                }
            }
        }
        steps
    }

    /// Steps until nothing is left to do or `max_steps` steps; returns the steps taken.
    pub fn drive_until_idle(&mut self, max_steps: usize) -> usize {
        let mut steps = 0;
        while steps < max_steps && self.step() {
            steps += 1;
        }
        steps
    }

    /// Puts everything node `id` wants to send on the network.
    fn drain(&mut self, id: NodeId) {
        let now = self.now;
        while let Some(transmit) = self.nodes[id].node.poll_transmit(now) {
            self.send(id, transmit);
        }
    }

    /// Appends one sent packet to the transcript.
    fn record(&mut self, src: NodeId, transmit: &Transmit<Vec<u8>>) {
        let nanos = u64::try_from(self.elapsed().as_nanos()).expect("virtual time overflow");
        let t = &mut self.transcript;
        t.extend_from_slice(&nanos.to_be_bytes());
        t.extend_from_slice(&(src as u32).to_be_bytes());
        t.push(match transmit.transport {
            TransportType::Udp => b'U',
            TransportType::Tcp => b'T',
        });
        for addr in [transmit.from, transmit.to] {
            let text = addr.to_string();
            t.push(text.len() as u8);
            t.extend_from_slice(text.as_bytes());
        }
        t.extend_from_slice(&(transmit.data.len() as u32).to_be_bytes());
        t.extend_from_slice(&transmit.data);
    }

    /// Routes a packet node `src` sends and schedules its delivery.
    fn send(&mut self, src: NodeId, transmit: Transmit<Vec<u8>>) {
        self.stats.sent += 1;
        self.record(src, &transmit);
        if !self.nodes[src].ips.contains(&transmit.from.ip()) {
            tracing::debug!(
                src,
                ?transmit,
                "sim: packet from an address the node does not own"
            );
            self.stats.dropped_bad_source += 1;
            return;
        }
        if transmit.to.ip().is_multicast() {
            self.send_multicast(src, transmit);
            return;
        }
        let Some((hop, dst, transmit)) = self.route(src, transmit) else {
            self.stats.dropped_no_route += 1;
            return;
        };
        let cfg = dst
            .and_then(|dst| self.links.get(&(src, dst)).copied())
            .unwrap_or(self.default_link);
        if unit(&mut self.rng) < cfg.loss {
            self.stats.dropped_loss += 1;
            return;
        }
        let first = self.delay(&cfg);
        if unit(&mut self.rng) < cfg.duplicate {
            self.stats.duplicated += 1;
            let second = self.delay(&cfg);
            self.schedule(second, hop, transmit.clone());
        }
        self.schedule(first, hop, transmit);
    }

    /// Schedules a copy of a multicast packet for every member of its group in the
    /// sender's realm (the sender included).
    fn send_multicast(&mut self, src: NodeId, transmit: Transmit<Vec<u8>>) {
        let realm = self.nodes[src].realm;
        let members: Vec<NodeId> = self
            .groups
            .get(&transmit.to)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&id| self.nodes[id].realm == realm)
            .collect();
        if members.is_empty() {
            self.stats.dropped_no_route += 1;
            return;
        }
        for dst in members {
            let cfg = self
                .links
                .get(&(src, dst))
                .copied()
                .unwrap_or(self.default_link);
            if unit(&mut self.rng) < cfg.loss {
                self.stats.dropped_loss += 1;
                continue;
            }
            let delay = self.delay(&cfg);
            self.schedule(delay, Hop::Node(dst), transmit.clone());
        }
    }

    /// Draws a link delay.
    fn delay(&mut self, cfg: &LinkConfig) -> Duration {
        let jitter = u64::try_from(cfg.jitter.as_nanos()).expect("jitter too large");
        let jitter = match jitter {
            0 => 0,
            j => self.rng.next_u64() % (j + 1),
        };
        let mut delay = cfg.latency + Duration::from_nanos(jitter);
        if cfg.reorder > 0.0 && unit(&mut self.rng) < cfg.reorder {
            delay += cfg.reorder_delay;
        }
        delay
    }

    fn schedule(&mut self, delay: Duration, hop: Hop, transmit: Transmit<Vec<u8>>) {
        self.seq += 1;
        self.queue
            .insert((self.now + delay, self.seq), InFlight { hop, transmit });
    }

    /// Works out where a packet goes: the next hop, the final node if known, and the
    /// packet as it travels (after outbound NAT translation). `None`: no route.
    fn route(
        &mut self,
        src: NodeId,
        mut transmit: Transmit<Vec<u8>>,
    ) -> Option<(Hop, Option<NodeId>, Transmit<Vec<u8>>)> {
        let realm = self.nodes[src].realm;
        let dest_ip = transmit.to.ip();
        if let Some(&dst) = self.owners.get(&(realm, dest_ip)) {
            return Some((Hop::Node(dst), Some(dst), transmit));
        }
        if realm != PUBLIC_REALM {
            let nat = self.realms[realm]
                .nat
                .as_mut()
                .expect("private realms have a NAT");
            // No hairpinning, and no crossing address families.
            if dest_ip == nat.public_ip() || dest_ip.is_ipv4() != nat.public_ip().is_ipv4() {
                return None;
            }
            transmit.from = nat.outbound(transmit.transport, transmit.from, transmit.to);
        }
        if let Some(&dst) = self.owners.get(&(PUBLIC_REALM, dest_ip)) {
            return Some((Hop::Node(dst), Some(dst), transmit));
        }
        let &nat_realm = self.nat_ips.get(&dest_ip)?;
        let dst = self.realms[nat_realm]
            .nat
            .as_ref()
            .and_then(|nat| nat.lookup(transmit.transport, transmit.to))
            .and_then(|internal| self.owners.get(&(nat_realm, internal.ip())).copied());
        Some((Hop::Nat(nat_realm), dst, transmit))
    }

    /// Delivers a packet whose time has come (filtering it at a NAT first if it is going
    /// to one).
    fn deliver(&mut self, inflight: InFlight) {
        let InFlight { hop, mut transmit } = inflight;
        let dst = match hop {
            Hop::Node(dst) => dst,
            Hop::Nat(realm) => {
                let nat = self.realms[realm].nat.as_ref().expect("NAT realm");
                match nat.inbound(transmit.transport, transmit.from, transmit.to) {
                    Ok(internal) => match self.owners.get(&(realm, internal.ip())) {
                        Some(&dst) => {
                            transmit.to = internal;
                            dst
                        }
                        None => {
                            self.stats.dropped_no_route += 1;
                            return;
                        }
                    },
                    Err(reason) => {
                        tracing::trace!(?reason, ?transmit, "sim: NAT dropped a packet");
                        self.stats.dropped_nat_filter += 1;
                        return;
                    }
                }
            }
        };
        self.stats.delivered += 1;
        let now = self.now;
        self.nodes[dst].node.handle_incoming(now, transmit);
        self.drain(dst);
    }
}
