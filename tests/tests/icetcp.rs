//! ICE-TCP (RFC 6544) through the facade, on both runtimes over loopback: two agents with
//! TCP listeners only (`Transports::Tcp`) connect over a TCP pair and carry datagrams both
//! ways (RFC 4571 framing underneath); with both transports, UDP still wins. Hostile input
//! on a listener (many connections, garbage, half a frame, a 64 KiB frame) leaves the real
//! peer served.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use librice::proto::candidate::{CandidateTransport, TcpType};
use librice::{Agent, Runtime, Transports};
use librice_proto::TransportType;
use librice_tests::ice::{Peer, connected, exchange, pump};
use librice_tests::runtimes::{on_async_std, on_tokio, sleep};

const CONNECT: Duration = Duration::from_secs(10);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn peer(rt: &Arc<dyn Runtime>, controlling: bool, transports: Transports) -> Peer {
    Peer::from_builder(
        Agent::builder()
            .runtime(Arc::clone(rt))
            .controlling(controlling)
            .address(v4())
            .transports(transports),
        &[1],
    )
}

async fn tcp_only(rt: Arc<dyn Runtime>) {
    let a = peer(&rt, true, Transports::Tcp);
    let b = peer(&rt, false, Transports::Tcp);
    exchange(&a, &b).await;
    for p in [&a, &b] {
        let local = p.streams[0].local_candidates();
        let types: Vec<_> = local.iter().map(|c| c.transport()).collect();
        assert!(
            types.contains(&CandidateTransport::Tcp(TcpType::Passive))
                && types.contains(&CandidateTransport::Tcp(TcpType::Active))
                && !types.contains(&CandidateTransport::Udp),
            "{types:?}"
        );
    }
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    let pb = connected(rt.as_ref(), &b, CONNECT).await;
    for p in pa.iter().chain(&pb) {
        assert_eq!(p.transport, TransportType::Tcp, "{p:?}");
    }
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), x, y, 200, 20, CONNECT).await, 200);
    assert_eq!(pump(rt.as_ref(), y, x, 200, 20, CONNECT).await, 200);
    a.agent.close();
    b.agent.close();
}

#[test]
fn tcp_only_tokio() {
    on_tokio(tcp_only);
}

#[test]
fn tcp_only_async_std() {
    on_async_std(tcp_only);
}

/// With UDP and TCP candidates on both sides, the UDP pair is selected (RFC 6544 §4.2:
/// TCP candidates rank below UDP ones of the same type).
async fn both_transports(rt: Arc<dyn Runtime>) {
    let a = peer(&rt, true, Transports::Both);
    let b = peer(&rt, false, Transports::Both);
    exchange(&a, &b).await;
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    assert_eq!(pa[0].transport, TransportType::Udp, "{:?}", pa[0]);
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), x, y, 50, 10, CONNECT).await, 50);
    a.agent.close();
    b.agent.close();
}

#[test]
fn both_transports_prefer_udp_tokio() {
    on_tokio(both_transports);
}

/// The passive candidate of `p`.
fn passive(p: &Peer) -> SocketAddr {
    p.streams[0]
        .local_candidates()
        .iter()
        .find(|c| c.transport() == CandidateTransport::Tcp(TcpType::Passive))
        .expect("a passive candidate")
        .address()
}

/// What a hostile host does to a passive candidate before the real peer connects.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// 1,000 connections, 100 of them kept open and silent.
    Flood,
    /// 100 connections sending text that is no RFC 4571 frame of STUN.
    Garbage,
    /// 100 connections sending half a frame, kept open.
    HalfFrame,
    /// 100 connections sending a whole 64 KiB frame that is not STUN.
    BigFrame,
}

impl Attack {
    /// Connects to `target` and attacks; returns the connections kept open.
    fn run(self, target: SocketAddr) -> Vec<std::net::TcpStream> {
        let count = match self {
            Self::Flood => 1000,
            _ => 100,
        };
        let mut held = Vec::new();
        for i in 0..count {
            let Ok(mut s) = std::net::TcpStream::connect(target) else {
                continue;
            };
            let _ = match self {
                Self::Flood => Ok(()),
                Self::Garbage => s.write_all(b"GET / HTTP/1.1\r\n\r\n"),
                // A frame of 48 bytes of which 2 come.
                Self::HalfFrame => s.write_all(&[0x00, 0x30, 0x00, 0x01]),
                Self::BigFrame => {
                    let mut big = vec![0xffu8, 0xff];
                    big.extend(std::iter::repeat_n(0x41, 65535));
                    s.write_all(&big)
                }
            };
            if !matches!(self, Self::Flood) || i % 10 == 0 {
                held.push(s);
            }
        }
        held
    }
}

/// Before the real peer connects, a hostile host attacks the passive candidate; the agent
/// then connects to the real peer over TCP and carries its data both ways. The listener
/// holds at most 32 connections, each with at most one frame (64 KiB) buffered, and makes
/// room for the peer by closing the oldest connection that has not sent STUN.
async fn hostile_listener(rt: Arc<dyn Runtime>, attack: Attack) {
    let a = peer(&rt, false, Transports::Tcp);
    let b = peer(&rt, true, Transports::Tcp);
    let ca: Vec<_> = librice_tests::ice::gather_all(&a).await;
    let target = passive(&a);
    let held = std::thread::spawn(move || attack.run(target))
        .join()
        .expect("the hostile host ran");
    sleep(rt.as_ref(), Duration::from_millis(200)).await;
    let cb = librice_tests::ice::gather_all(&b).await;
    librice_tests::ice::give(&a, &b, &ca);
    librice_tests::ice::give(&b, &a, &cb);
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    assert_eq!(pa[0].transport, TransportType::Tcp, "{attack:?}");
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(
        pump(rt.as_ref(), x, y, 50, 10, CONNECT).await,
        50,
        "{attack:?}"
    );
    assert_eq!(
        pump(rt.as_ref(), y, x, 50, 10, CONNECT).await,
        50,
        "{attack:?}"
    );
    drop(held);
    a.agent.close();
    b.agent.close();
}

#[test]
fn a_flood_of_connections_does_not_keep_the_peer_out_tokio() {
    on_tokio(|rt| hostile_listener(rt, Attack::Flood));
}

#[test]
fn a_flood_of_connections_does_not_keep_the_peer_out_async_std() {
    on_async_std(|rt| hostile_listener(rt, Attack::Flood));
}

#[test]
fn garbage_on_a_listener_is_closed() {
    on_tokio(|rt| hostile_listener(rt, Attack::Garbage));
}

#[test]
fn half_frames_on_a_listener_do_not_keep_the_peer_out() {
    on_async_std(|rt| hostile_listener(rt, Attack::HalfFrame));
}

#[test]
fn big_frames_on_a_listener_are_closed() {
    on_tokio(|rt| hostile_listener(rt, Attack::BigFrame));
}
