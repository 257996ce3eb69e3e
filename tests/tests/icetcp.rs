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

/// Before the real peer connects, a hostile host opens many connections to the passive
/// candidate and sends garbage, half a frame, and a 64 KiB frame; the agent still connects
/// to the real peer over TCP and carries its data.
async fn hostile_listener(rt: Arc<dyn Runtime>) {
    let a = peer(&rt, false, Transports::Tcp);
    let b = peer(&rt, true, Transports::Tcp);
    let ca: Vec<_> = librice_tests::ice::gather_all(&a).await;
    let target = passive(&a);
    let hostile = std::thread::spawn(move || {
        let mut held = Vec::new();
        for i in 0..std::env::var("HOSTILE_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
        {
            let Ok(mut s) = std::net::TcpStream::connect(target) else {
                continue;
            };
            let _ = match i % 4 {
                0 => s.write_all(b"GET / HTTP/1.1\r\n\r\n"),
                1 => s.write_all(&[0x00, 0x30, 0x00, 0x01]),
                2 => {
                    let mut big = vec![0xffu8, 0xff];
                    big.extend(std::iter::repeat_n(0x41, 65535));
                    s.write_all(&big)
                }
                _ => Ok(()),
            };
            if i % 10 == 0 {
                held.push(s);
            }
        }
        held
    });
    let held = hostile.join().expect("the hostile host ran");
    sleep(rt.as_ref(), Duration::from_millis(200)).await;
    let cb = librice_tests::ice::gather_all(&b).await;
    librice_tests::ice::give(&a, &b, &ca);
    librice_tests::ice::give(&b, &a, &cb);
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    assert_eq!(pa[0].transport, TransportType::Tcp);
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), x, y, 50, 10, CONNECT).await, 50);
    assert_eq!(pump(rt.as_ref(), y, x, 50, 10, CONNECT).await, 50);
    drop(held);
    a.agent.close();
    b.agent.close();
}

#[test]
fn hostile_connections_to_a_listener_tokio() {
    on_tokio(hostile_listener);
}

#[test]
fn hostile_connections_to_a_listener_async_std() {
    on_async_std(hostile_listener);
}
