//! Self-tests of the simulator: links, timers, NATs, routing and determinism.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::stun::attr::XorMappedAddress;
use librice_proto::stun::{Message, MessageClass, MessageType, MessageWriter, TransactionId};
use librice_proto::{Transmit, TransportType};

use super::nat::FIRST_PORT;
use super::{LinkConfig, Nat, NatType, Node, NodeId, Sim, StunServerNode};

/// An IP address from text.
fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP address")
}

/// A socket address from text.
fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// A UDP transmit.
fn udp(from: SocketAddr, to: SocketAddr, data: &[u8]) -> Transmit<Vec<u8>> {
    Transmit {
        transport: TransportType::Udp,
        from,
        to,
        data: data.to_vec(),
    }
}

/// A STUN Binding request whose transaction id is derived from `n`.
fn binding_request(n: u8) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([n; 12]),
    );
    w.add_fingerprint().expect("fingerprint fits");
    buf
}

/// A test node: sends what it is told (now or at a set time), records what it receives,
/// and echoes every packet back when asked to.
#[derive(Default)]
struct TestNode {
    outbox: VecDeque<Transmit<Vec<u8>>>,
    timers: BTreeMap<(Instant, u64), Transmit<Vec<u8>>>,
    timer_seq: u64,
    received: Vec<(Instant, Transmit<Vec<u8>>)>,
    echo: bool,
}

impl TestNode {
    /// A node that only records.
    fn boxed() -> Box<dyn Node> {
        Box::new(TestNode::default())
    }

    /// A node that echoes every packet to its source.
    fn echo() -> Box<dyn Node> {
        Box::new(TestNode {
            echo: true,
            ..TestNode::default()
        })
    }

    /// Sends a UDP packet at the next drain.
    fn send(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.outbox.push_back(udp(from, to, data));
    }

    /// Sends a UDP packet at `at`.
    fn send_at(&mut self, at: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.timer_seq += 1;
        self.timers
            .insert((at, self.timer_seq), udp(from, to, data));
    }

    /// The payloads received, in order.
    fn payloads(&self) -> Vec<Vec<u8>> {
        self.received.iter().map(|(_, t)| t.data.clone()).collect()
    }

    /// Whether a packet with this payload arrived.
    fn got(&self, data: &[u8]) -> bool {
        self.received.iter().any(|(_, t)| t.data == data)
    }

    /// The XOR-MAPPED-ADDRESS of every STUN success response received, in order.
    fn mapped_addresses(&self) -> Vec<SocketAddr> {
        self.received
            .iter()
            .filter_map(|(_, t)| {
                let msg = Message::parse(&t.data).ok()?;
                if msg.class() != MessageClass::Success {
                    return None;
                }
                msg.attribute::<XorMappedAddress>().ok()?.map(|a| a.0)
            })
            .collect()
    }
}

impl Node for TestNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        if self.echo {
            self.outbox.push_back(Transmit {
                transport: transmit.transport,
                from: transmit.to,
                to: transmit.from,
                data: transmit.data.clone(),
            });
        }
        self.received.push((now, transmit));
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(&(t, _), _)| t)
    }

    fn handle_timeout(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.outbox.push_back(entry.remove());
        }
    }
}

/// Two public test nodes, `a` at 198.51.100.1 and `b` (echoing if `echo`) at 198.51.100.2.
fn two_nodes(seed: u64, link: LinkConfig, echo: bool) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(link);
    let a = sim.add_node(0, &[ip("198.51.100.1")], TestNode::boxed());
    let b_node = if echo {
        TestNode::echo()
    } else {
        TestNode::boxed()
    };
    let b = sim.add_node(0, &[ip("198.51.100.2")], b_node);
    (sim, a, b)
}

const A: &str = "198.51.100.1:1000";
const B: &str = "198.51.100.2:2000";

#[test]
fn delivery_happens_after_the_link_latency() {
    let (mut sim, a, b) = two_nodes(1, LinkConfig::with_latency(Duration::from_millis(50)), true);
    sim.set_link(b, a, LinkConfig::with_latency(Duration::from_millis(30)));
    sim.with_node(a, |n: &mut TestNode, _| n.send(sa(A), sa(B), b"ping"));
    assert_eq!(sim.drive_until_idle(100), 2);
    assert!(!sim.step());

    let start = sim.start();
    let at_b = &sim.node::<TestNode>(b).received;
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].0 - start, Duration::from_millis(50));
    assert_eq!((at_b[0].1.from, at_b[0].1.to), (sa(A), sa(B)));
    let at_a = &sim.node::<TestNode>(a).received;
    assert_eq!(at_a.len(), 1);
    assert_eq!(at_a[0].0 - start, Duration::from_millis(80));
    assert_eq!(sim.elapsed(), Duration::from_millis(80));
    let stats = sim.stats();
    assert_eq!((stats.sent, stats.delivered), (2, 2));
}

#[test]
fn timeouts_fire_at_their_time_and_drive_for_stops_at_the_limit() {
    let (mut sim, a, b) = two_nodes(
        1,
        LinkConfig::with_latency(Duration::from_millis(10)),
        false,
    );
    let start = sim.start();
    sim.with_node(a, |n: &mut TestNode, _| {
        n.send_at(start + Duration::from_secs(1), sa(A), sa(B), b"one");
        n.send_at(start + Duration::from_secs(3), sa(A), sa(B), b"three");
    });
    // Timer at 1 s, delivery at 1.01 s; the 3 s timer is beyond the limit.
    assert_eq!(sim.drive_for(Duration::from_secs(2), 100), 2);
    assert_eq!(sim.elapsed(), Duration::from_secs(2));
    assert_eq!(sim.node::<TestNode>(b).payloads(), vec![b"one".to_vec()]);
    assert_eq!(
        sim.node::<TestNode>(b).received[0].0 - start,
        Duration::from_millis(1010)
    );

    sim.drive_until_idle(100);
    assert_eq!(sim.elapsed(), Duration::from_millis(3010));
    assert_eq!(sim.node::<TestNode>(b).received.len(), 2);

    // Idle: drive_for still lets the time pass.
    assert_eq!(sim.drive_for(Duration::from_secs(5), 100), 0);
    assert_eq!(sim.elapsed(), Duration::from_millis(8010));
}

#[test]
fn drive_until_stops_when_done() {
    let (mut sim, a, b) = two_nodes(1, LinkConfig::with_latency(Duration::from_millis(5)), false);
    sim.with_node(a, |n: &mut TestNode, _| {
        for i in 0..10u8 {
            n.send(sa(A), sa(B), &[i]);
        }
    });
    let done = sim.drive_until(100, |sim| sim.node::<TestNode>(b).received.len() == 3);
    assert!(done);
    assert_eq!(sim.in_flight(), 7);
    assert!(!sim.drive_until(100, |sim| sim.node::<TestNode>(b).received.len() > 10));
}

/// Sends `count` packets from a to b at once over `link`, delivers them all; returns the
/// payloads b received, in order, and the stats.
fn blast(seed: u64, count: u16, link: LinkConfig) -> (Vec<Vec<u8>>, super::SimStats) {
    let (mut sim, a, b) = two_nodes(seed, link, false);
    sim.with_node(a, |n: &mut TestNode, _| {
        for i in 0..count {
            n.send(sa(A), sa(B), &i.to_be_bytes());
        }
    });
    sim.drive_until_idle(10 * usize::from(count));
    (sim.node::<TestNode>(b).payloads(), sim.stats())
}

#[test]
fn loss_drops_about_the_configured_share() {
    let lossy = LinkConfig {
        loss: 0.3,
        ..LinkConfig::default()
    };
    let (got, stats) = blast(42, 1000, lossy);
    assert!((650..=750).contains(&got.len()), "{} delivered", got.len());
    assert_eq!(stats.delivered + stats.dropped_loss, 1000);
    assert_eq!(stats.delivered, got.len() as u64);

    let (got, stats) = blast(42, 1000, LinkConfig::default());
    assert_eq!(got.len(), 1000);
    assert_eq!(stats.dropped_loss, 0);

    let all_lost = LinkConfig {
        loss: 1.0,
        ..LinkConfig::default()
    };
    assert!(blast(42, 100, all_lost).0.is_empty());
}

#[test]
fn duplication_delivers_copies() {
    let dup = LinkConfig {
        duplicate: 0.25,
        jitter: Duration::from_millis(10),
        ..LinkConfig::default()
    };
    let (got, stats) = blast(3, 1000, dup);
    assert!((180..=320).contains(&stats.duplicated), "{stats:?}");
    assert_eq!(got.len() as u64, 1000 + stats.duplicated);

    let always = LinkConfig {
        duplicate: 1.0,
        ..LinkConfig::default()
    };
    let (got, stats) = blast(3, 100, always);
    assert_eq!((got.len(), stats.duplicated), (200, 100));
}

#[test]
fn reordering_happens_only_when_configured() {
    let reorder = LinkConfig {
        latency: Duration::from_millis(10),
        reorder: 0.3,
        reorder_delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let (got, _) = blast(5, 100, reorder);
    assert_eq!(got.len(), 100);
    assert!(!got.is_sorted(), "no packet was reordered");

    let (got, _) = blast(5, 100, LinkConfig::with_latency(Duration::from_millis(10)));
    assert_eq!(got.len(), 100);
    assert!(got.is_sorted(), "packets at equal times keep send order");
}

/// A public STUN server at 198.51.100.1 (answering on any port), a third public node at
/// 198.51.100.2, and a host at 192.168.1.10 behind a NAT of `nat` type with public IP
/// 203.0.113.1. Returns (sim, server, third, host).
fn nat_setup(seed: u64, nat: NatType) -> (Sim, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    sim.set_default_link(LinkConfig::with_latency(Duration::from_millis(10)));
    let server = sim.add_node(0, &[ip("198.51.100.1")], Box::new(StunServerNode::new()));
    let third = sim.add_node(0, &[ip("198.51.100.2")], TestNode::boxed());
    let realm = sim.add_nat(nat, ip("203.0.113.1"));
    let host = sim.add_node(realm, &[ip("192.168.1.10")], TestNode::boxed());
    (sim, server, third, host)
}

const HOST: &str = "192.168.1.10:5000";
const STUN: &str = "198.51.100.1:3478";

#[test]
fn nat_filtering_per_type() {
    for nat in NatType::ALL {
        let (mut sim, server, third, host) = nat_setup(9, nat);
        sim.with_node(host, |n: &mut TestNode, _| {
            n.send(sa(HOST), sa(STUN), &binding_request(1))
        });
        sim.drive_until_idle(100);
        assert_eq!(sim.node::<StunServerNode>(server).answered(), 1);
        let mapped = sim.node::<TestNode>(host).mapped_addresses();
        assert_eq!(mapped.len(), 1, "{nat:?}");
        let mapped = mapped[0];
        assert_eq!(mapped, SocketAddr::new(ip("203.0.113.1"), FIRST_PORT));

        sim.with_node(third, |n: &mut TestNode, _| {
            n.send(sa("198.51.100.2:6000"), mapped, b"third party")
        });
        sim.with_node(server, |n: &mut StunServerNode, _| {
            n.send_raw(udp(sa("198.51.100.1:9999"), mapped, b"other port"));
            n.send_raw(udp(sa(STUN), mapped, b"same port"));
        });
        sim.drive_until_idle(100);

        let h = sim.node::<TestNode>(host);
        let passed = (
            h.got(b"third party"),
            h.got(b"other port"),
            h.got(b"same port"),
        );
        let expected = match nat {
            NatType::FullCone => (true, true, true),
            NatType::AddressRestricted => (false, true, true),
            NatType::PortRestricted | NatType::Symmetric => (false, false, true),
        };
        assert_eq!(passed, expected, "{nat:?}");
        assert!(h.received.iter().all(|(_, t)| t.to == sa(HOST)));
        let refused = [expected.0, expected.1].iter().filter(|p| !**p).count();
        assert_eq!(sim.stats().dropped_nat_filter, refused as u64, "{nat:?}");
    }
}

#[test]
fn symmetric_nat_maps_per_destination() {
    for nat in NatType::ALL {
        let (mut sim, _server, _third, host) = nat_setup(9, nat);
        let server2 = sim.add_node(0, &[ip("198.51.100.3")], Box::new(StunServerNode::new()));
        sim.with_node(host, |n: &mut TestNode, _| {
            n.send(sa(HOST), sa(STUN), &binding_request(1));
            n.send(sa(HOST), sa("198.51.100.1:3479"), &binding_request(2));
            n.send(sa(HOST), sa("198.51.100.3:3478"), &binding_request(3));
            n.send(sa("192.168.1.10:5001"), sa(STUN), &binding_request(4));
        });
        sim.drive_until_idle(100);
        assert_eq!(sim.node::<StunServerNode>(server2).answered(), 1);
        let mapped = sim.node::<TestNode>(host).mapped_addresses();
        assert_eq!(mapped.len(), 4, "{nat:?}");
        assert!(mapped.iter().all(|m| m.ip() == ip("203.0.113.1")));
        let ports: Vec<u16> = mapped.iter().map(|m| m.port()).collect();
        if nat == NatType::Symmetric {
            assert_eq!(ports, [40000, 40001, 40002, 40003]);
        } else {
            assert_eq!(ports, [40000, 40000, 40000, 40001], "{nat:?}");
        }
        assert_eq!(
            sim.nat(1).map(Nat::mapping_count),
            Some(if nat == NatType::Symmetric { 4 } else { 2 })
        );
    }
}

#[test]
fn nat_mappings_are_per_transport() {
    let mut nat = Nat::new(NatType::PortRestricted, ip("203.0.113.1"));
    let udp_port = nat.outbound(TransportType::Udp, sa(HOST), sa(STUN));
    let tcp_port = nat.outbound(TransportType::Tcp, sa(HOST), sa(STUN));
    assert_ne!(udp_port, tcp_port);
    assert_eq!(
        nat.inbound(TransportType::Udp, sa(STUN), udp_port),
        Ok(sa(HOST))
    );
    assert_eq!(
        nat.inbound(TransportType::Tcp, sa(STUN), udp_port),
        Err(super::InboundDrop::NoMapping)
    );
}

#[test]
fn private_realms_only_meet_through_public_addresses() {
    let mut sim = Sim::new(11);
    let server = sim.add_node(0, &[ip("198.51.100.1")], Box::new(StunServerNode::new()));
    let r1 = sim.add_nat(NatType::FullCone, ip("203.0.113.1"));
    let r2 = sim.add_nat(NatType::FullCone, ip("203.0.113.2"));
    let a = sim.add_node(r1, &[ip("192.168.1.10")], TestNode::boxed());
    let b = sim.add_node(r2, &[ip("10.0.0.20")], TestNode::boxed());
    let (a_addr, b_addr) = (sa("192.168.1.10:5000"), sa("10.0.0.20:6000"));

    sim.with_node(a, |n: &mut TestNode, _| {
        n.send(a_addr, b_addr, b"private");
        n.send(a_addr, sa("198.51.100.99:1"), b"nowhere");
        n.send(a_addr, sa("203.0.113.1:40000"), b"hairpin");
    });
    sim.drive_until_idle(100);
    assert!(sim.node::<TestNode>(b).received.is_empty());
    assert_eq!(sim.stats().dropped_no_route, 3);

    // Through the NATs' public addresses it works (full cone: no filtering).
    sim.with_node(a, |n: &mut TestNode, _| {
        n.send(a_addr, sa(STUN), &binding_request(1))
    });
    sim.with_node(b, |n: &mut TestNode, _| {
        n.send(b_addr, sa(STUN), &binding_request(2))
    });
    sim.drive_until_idle(100);
    assert_eq!(sim.node::<StunServerNode>(server).answered(), 2);
    let a_mapped = sim.node::<TestNode>(a).mapped_addresses()[0];
    let b_mapped = sim.node::<TestNode>(b).mapped_addresses()[0];
    sim.with_node(a, |n: &mut TestNode, _| n.send(a_addr, b_mapped, b"hello"));
    sim.drive_until_idle(100);
    let got = &sim
        .node::<TestNode>(b)
        .received
        .last()
        .expect("delivered")
        .1;
    assert_eq!(
        (got.from, got.to, &got.data[..]),
        (a_mapped, b_addr, &b"hello"[..])
    );
}

#[test]
fn packets_from_foreign_addresses_are_dropped() {
    let (mut sim, a, b) = two_nodes(1, LinkConfig::default(), false);
    sim.with_node(a, |n: &mut TestNode, _| {
        n.send(sa("198.51.100.7:1"), sa(B), b"spoofed")
    });
    sim.drive_until_idle(10);
    assert!(sim.node::<TestNode>(b).received.is_empty());
    assert_eq!(sim.stats().dropped_bad_source, 1);
}

#[test]
#[should_panic(expected = "is not a")]
fn downcasting_to_the_wrong_type_panics() {
    let (sim, a, _) = two_nodes(1, LinkConfig::default(), false);
    let _ = sim.node::<StunServerNode>(a);
}

/// A busy, lossy run: a host behind a port-restricted NAT polls a STUN server while two
/// public nodes ping each other. Returns the transcript.
fn lossy_run(seed: u64) -> Vec<u8> {
    let (mut sim, server, _third, host) = nat_setup(seed, NatType::PortRestricted);
    sim.set_default_link(LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(15),
        loss: 0.2,
        duplicate: 0.1,
        reorder: 0.2,
        reorder_delay: Duration::from_millis(30),
    });
    let pinger = sim.add_node(0, &[ip("198.51.100.5")], TestNode::boxed());
    let echo = sim.add_node(0, &[ip("198.51.100.6")], TestNode::echo());
    let start = sim.start();
    sim.with_node(host, |n: &mut TestNode, _| {
        for i in 0..50u8 {
            let at = start + Duration::from_millis(10 * u64::from(i));
            n.send_at(at, sa(HOST), sa(STUN), &binding_request(i));
        }
    });
    sim.with_node(pinger, |n: &mut TestNode, _| {
        for i in 0..50u8 {
            let at = start + Duration::from_millis(7 * u64::from(i));
            n.send_at(at, sa("198.51.100.5:1"), sa("198.51.100.6:2"), &[i]);
        }
    });
    sim.drive_until_idle(10_000);
    assert!(sim.node::<StunServerNode>(server).answered() > 0);
    assert!(!sim.node::<TestNode>(echo).received.is_empty());
    sim.transcript().to_vec()
}

#[test]
fn same_seed_same_transcript() {
    let first = lossy_run(7);
    assert!(!first.is_empty());
    assert_eq!(first, lossy_run(7));
    assert_ne!(first, lossy_run(8));
}
