//! mDNS on the simulated network: a real [`Mdns`] responder and client per host, on
//! `<host ip>:5353`, joined to 224.0.0.251:5353 on the host's segment (its realm).
//!
//! [`MdnsHost`] serves an agent's [`IoRequest::MdnsResolve`], [`IoRequest::MdnsPublish`]
//! and [`IoRequest::MdnsUnpublish`] with that `Mdns`, and gives its events back to the
//! agent's `handle_mdns_*` calls, as the facade will. [`MdnsNode`] is a host with only an
//! `Mdns` (another machine on the LAN: one holding a name, or a hostile one).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use librice_proto::agent::{Agent, IoRequest};
use librice_proto::mdns::{MDNS_PORT, MDNS_V4, Mdns, MdnsConfig, MdnsEvent, MdnsTransmit};
use librice_proto::{Transmit, TransportType};

use super::ice::AgentNode;
use super::{Node, NodeId, RealmId, Sim};

/// One host's mDNS endpoint serving one agent.
pub struct MdnsHost {
    /// The responder and client.
    pub mdns: Mdns,
    /// Its socket: the host's address, port 5353.
    pub addr: SocketAddr,
    /// Every event it reported, with the time.
    pub events: Vec<(Instant, MdnsEvent)>,
    /// Every request the agent made.
    pub requests: Vec<IoRequest>,
    /// Answers the agent refused (a name it was not waiting for).
    pub refused: usize,
    out: VecDeque<Transmit<Vec<u8>>>,
}

impl MdnsHost {
    /// An endpoint at `ip`:5353, IPv4 only.
    pub fn new(ip: IpAddr, seed: u64) -> Self {
        Self::with_config(ip, MdnsConfig::default().rng_seed(seed).ipv6(false))
    }

    /// An endpoint at `ip`:5353 with this configuration.
    pub fn with_config(ip: IpAddr, config: MdnsConfig) -> Self {
        Self {
            mdns: Mdns::new(config),
            addr: SocketAddr::new(ip, MDNS_PORT),
            events: Vec::new(),
            requests: Vec::new(),
            refused: 0,
            out: VecDeque::new(),
        }
    }

    /// True for a datagram to the mDNS group or socket.
    pub fn is_for_me(&self, transmit: &Transmit<Vec<u8>>) -> bool {
        transmit.to == MDNS_V4 || transmit.to == self.addr
    }

    /// A datagram received on the mDNS socket.
    pub fn handle_incoming(&mut self, now: Instant, transmit: &Transmit<Vec<u8>>) {
        self.mdns
            .handle_incoming(now, transmit.from, &transmit.data);
    }

    /// The next datagram, from the mDNS socket.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.collect(now);
        self.out.pop_front()
    }

    /// The responder's next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.mdns.poll_timeout()
    }

    /// The responder's deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.mdns.handle_timeout(now);
    }

    /// Takes one of the agent's requests to its I/O layer: false if it is not an mDNS one.
    pub fn request(&mut self, now: Instant, request: &IoRequest) -> bool {
        let result = match request {
            IoRequest::MdnsResolve { name } => self.mdns.resolve(now, name.as_str()),
            IoRequest::MdnsPublish { name, address } => {
                self.mdns.publish(now, name.as_str(), &[*address])
            }
            IoRequest::MdnsUnpublish { name } => self.mdns.unpublish(now, name.as_str()),
            _ => return false,
        };
        self.requests.push(request.clone());
        if let Err(error) = result {
            panic!("the responder refused {request:?}: {error}");
        }
        true
    }

    /// Hands the responder's events to the agent; true if there were any.
    pub fn answer(&mut self, now: Instant, agent: &mut Agent) -> bool {
        let mut moved = false;
        while let Some(event) = self.mdns.poll_event() {
            moved = true;
            let answer = match &event {
                MdnsEvent::Resolved { name, addrs, .. } => {
                    agent.handle_mdns_resolved(now, name, addrs)
                }
                MdnsEvent::ResolveFailed { name } => agent.handle_mdns_resolve_failed(now, name),
                MdnsEvent::Published { name } => agent.handle_mdns_published(now, name),
                MdnsEvent::Conflict { name } => agent.handle_mdns_publish_failed(now, name),
                _ => Ok(()),
            };
            if answer.is_err() {
                self.refused += 1;
            }
            self.events.push((now, event));
        }
        moved
    }

    /// Names the responder reported, by kind.
    pub fn published(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                MdnsEvent::Published { name } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Names that conflicted.
    pub fn conflicts(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                MdnsEvent::Conflict { name } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    fn collect(&mut self, now: Instant) {
        while let Some(MdnsTransmit { to, data }) = self.mdns.poll_transmit(now) {
            self.out.push_back(Transmit {
                transport: TransportType::Udp,
                from: self.addr,
                to,
                data,
            });
        }
    }
}

/// Gives agent node `id` an mDNS endpoint on its first address, joined to the group.
pub fn enable_mdns(sim: &mut Sim, id: NodeId, seed: u64) {
    enable_mdns_with(sim, id, MdnsConfig::default().rng_seed(seed).ipv6(false));
}

/// As [`enable_mdns`], with this responder configuration.
pub fn enable_mdns_with(sim: &mut Sim, id: NodeId, config: MdnsConfig) {
    let ip = sim.ips_of(id)[0];
    sim.join_multicast(id, MDNS_V4);
    sim.with_node::<AgentNode, _>(id, |n, now| {
        n.mdns = Some(MdnsHost::with_config(ip, config));
        n.drain_events(now);
    });
}

/// A host with only an mDNS endpoint.
pub struct MdnsNode {
    /// The endpoint; its requests are made by the test through [`Sim::with_node`].
    pub host: MdnsHost,
}

impl Node for MdnsNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        if self.host.is_for_me(&transmit) {
            self.host.handle_incoming(now, &transmit);
            self.drain_events(now);
        }
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.host.poll_transmit(now)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.host.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.host.handle_timeout(now);
        self.drain_events(now);
    }
}

impl MdnsNode {
    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.host.mdns.poll_event() {
            self.host.events.push((now, event));
        }
    }
}

/// Adds a host with only an mDNS endpoint at `ip` in `realm`, joined to the group.
pub fn add_mdns_node(sim: &mut Sim, realm: RealmId, ip: &str, seed: u64) -> NodeId {
    let ip: IpAddr = ip.parse().expect("an IP address");
    let id = sim.add_node(
        realm,
        &[ip],
        Box::new(MdnsNode {
            host: MdnsHost::new(ip, seed),
        }),
    );
    sim.join_multicast(id, MDNS_V4);
    id
}
