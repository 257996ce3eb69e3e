//! The test machinery: a virtual clock, a one-link network of [`Mdns`] nodes, and packet
//! builders and readers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use simple_dns::rdata::{A, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, ResourceRecord, TYPE};

use crate::mdns::{MDNS_V4, Mdns, MdnsConfig, MdnsEvent, MdnsTransmit};

/// The virtual clock's origin: the only real clock read.
#[allow(clippy::disallowed_methods)]
pub(super) fn origin() -> Instant {
    Instant::now()
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) const NAME: &str = "1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local";
pub(super) const V4_A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
pub(super) const V4_B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
pub(super) const V6_A: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
pub(super) const QUERIER: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 5353);

/// One host on the link.
pub(super) struct Node {
    pub(super) mdns: Mdns,
    pub(super) addr: SocketAddr,
    pub(super) events: Vec<(Duration, MdnsEvent)>,
}

/// A one-link network: multicasts reach every node (the sender too, as multicast loopback
/// does), unicasts reach the node with that address.
pub(super) struct Net {
    pub(super) nodes: Vec<Node>,
    pub(super) start: Instant,
    pub(super) now: Instant,
    /// Every datagram sent: (time, sender index, datagram).
    pub(super) sent: Vec<(Duration, usize, MdnsTransmit)>,
}

impl Net {
    pub(super) fn new(seeds: &[u64]) -> Self {
        let start = origin();
        let nodes = seeds
            .iter()
            .enumerate()
            .map(|(i, &seed)| Node {
                mdns: Mdns::new(MdnsConfig::default().rng_seed(seed)),
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8)), 5353),
                events: Vec::new(),
            })
            .collect();
        Self {
            nodes,
            start,
            now: start,
            sent: Vec::new(),
        }
    }

    pub(super) fn at(&self) -> Duration {
        self.now - self.start
    }

    /// Delivers what every node has to send, and collects events, until all are quiet.
    pub(super) fn deliver(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(event) = self.nodes[i].mdns.poll_event() {
                    let at = self.at();
                    self.nodes[i].events.push((at, event));
                }
                while let Some(t) = self.nodes[i].mdns.poll_transmit(self.now) {
                    moved = true;
                    let from = self.nodes[i].addr;
                    for node in &mut self.nodes {
                        // IPv6 multicasts reach nobody here: the nodes have IPv4 addresses.
                        if t.to == MDNS_V4 || t.to == node.addr {
                            node.mdns.handle_incoming(self.now, from, &t.data);
                        }
                    }
                    let at = self.at();
                    self.sent.push((at, i, t));
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// Runs the network until `end` from the start, jumping from deadline to deadline.
    pub(super) fn run_until(&mut self, end: Duration) {
        let end = self.start + end;
        for _ in 0..10_000 {
            self.deliver();
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.mdns.poll_timeout())
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for node in &mut self.nodes {
                        node.mdns.handle_timeout(self.now);
                    }
                }
                _ => {
                    self.now = end;
                    self.deliver();
                    return;
                }
            }
        }
        panic!("too many timeouts");
    }

    pub(super) fn events(&self, i: usize) -> Vec<MdnsEvent> {
        self.nodes[i]
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// Drains a lone instance's datagrams.
pub(super) fn drain(mdns: &mut Mdns, now: Instant) -> Vec<MdnsTransmit> {
    std::iter::from_fn(|| mdns.poll_transmit(now)).collect()
}

pub(super) fn drain_events(mdns: &mut Mdns) -> Vec<MdnsEvent> {
    std::iter::from_fn(|| mdns.poll_event()).collect()
}

/// A lone instance that has published [`NAME`] for `addrs`, with its output drained.
pub(super) fn published(addrs: &[IpAddr]) -> (Mdns, Instant) {
    let start = origin();
    let mut mdns = Mdns::new(MdnsConfig::default().rng_seed(5).ipv6(false));
    mdns.publish(start, NAME, addrs).unwrap();
    let mut now = start;
    while let Some(t) = mdns.poll_timeout() {
        if t > start + Duration::from_secs(5) {
            break;
        }
        now = t;
        mdns.handle_timeout(now);
    }
    assert_eq!(
        drain_events(&mut mdns),
        [MdnsEvent::Published { name: NAME.into() }]
    );
    drain(&mut mdns, now);
    (mdns, now + Duration::from_secs(5))
}

/// A query for `name` of `qtype`, optionally with the unicast-response bit and a known
/// answer.
pub(super) fn query_bytes(
    name: &str,
    qtype: TYPE,
    qu: bool,
    known: Option<(IpAddr, u32)>,
) -> Vec<u8> {
    let mut packet = Packet::new_query(0);
    packet.questions.push(Question::new(
        Name::new_unchecked(name),
        QTYPE::TYPE(qtype),
        QCLASS::CLASS(CLASS::IN),
        qu,
    ));
    if let Some((IpAddr::V4(addr), ttl)) = known {
        packet.answers.push(ResourceRecord::new(
            Name::new_unchecked(name),
            CLASS::IN,
            ttl,
            RData::A(A::from(addr)),
        ));
    }
    packet.build_bytes_vec().unwrap()
}

/// A response with one A record of `name`.
pub(super) fn answer_bytes(name: &str, class: CLASS, ttl: u32, addr: Ipv4Addr) -> Vec<u8> {
    let mut packet = Packet::new_reply(0);
    packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    packet.answers.push(ResourceRecord::new(
        Name::new_unchecked(name),
        class,
        ttl,
        RData::A(A::from(addr)),
    ));
    packet.build_bytes_vec().unwrap()
}

/// The (name, address, TTL, cache-flush) of the A and AAAA records of the answer section.
pub(super) fn answers(data: &[u8]) -> Vec<(String, IpAddr, u32, bool)> {
    let packet = Packet::parse(data).unwrap();
    packet
        .answers
        .iter()
        .filter_map(|rr| {
            let addr = match &rr.rdata {
                RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
                RData::AAAA(a) => IpAddr::V6(Ipv6Addr::from(a.address)),
                _ => return None,
            };
            Some((rr.name.to_string(), addr, rr.ttl, rr.cache_flush))
        })
        .collect()
}
