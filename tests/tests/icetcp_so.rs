//! Simultaneous-open ICE-TCP (RFC 6544 `tcptype so`) with real sockets, on both runtimes.
//!
//! - On loopback: agents with `tcp_simultaneous_open` gather an `so` host candidate on a
//!   port of its own beside the passive and active ones, and still connect (over
//!   active/passive: on a fast loopback a lone SYN to an `so` port is reset at once, which
//!   fails only the `so` pair); a connect from an `so` port to a peer's `so` port that is
//!   not connecting is refused at once.
//! - In a private network namespace whose loopback is slowed by a token bucket
//!   (`tests/interop/peers/netns_slow.sh`), two connects from `so` ports to each other
//!   cross and make one connection through [`Runtime::tcp_connect`], exactly as the I/O
//!   layer opens the connection of an `so` pair's check. Outside CI the suite skips with a
//!   printed reason when it cannot make the namespace (root, `unshare`, the tbf qdisc); in
//!   CI that fails it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use librice::proto::candidate::{CandidateTransport, TcpType};
use librice::{Agent, Runtime, Transports};
use librice_proto::TransportType;
use librice_tests::ice::{Peer, connected, exchange, pump};
use librice_tests::peers::{in_netns, slow_netns_suite};
use librice_tests::runtimes::{on_async_std, on_tokio, timeout};

const CONNECT: Duration = Duration::from_secs(10);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// A socket as librice binds one for an `so` candidate: address reuse, bound, never
/// listening.
fn so_socket() -> (socket2::Socket, SocketAddr) {
    use socket2::{Domain, Protocol, Socket, Type};
    let at = SocketAddr::new(v4(), 0);
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("a socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    s.bind(&at.into()).expect("bind");
    let local = s
        .local_addr()
        .expect("bound")
        .as_socket()
        .expect("an IP socket");
    (s, local)
}

async fn agents_with_so_candidates(rt: Arc<dyn Runtime>) {
    let peer = |controlling| {
        Peer::from_builder(
            Agent::builder()
                .runtime(Arc::clone(&rt))
                .controlling(controlling)
                .address(v4())
                .transports(Transports::Tcp)
                .tcp_simultaneous_open(true),
            &[1],
        )
    };
    let (a, b) = (peer(true), peer(false));
    exchange(&a, &b).await;
    for p in [&a, &b] {
        let local = p.streams[0].local_candidates();
        let of = |t| {
            local
                .iter()
                .find(|c| c.transport() == CandidateTransport::Tcp(t))
                .unwrap_or_else(|| panic!("a {t} candidate in {local:?}"))
        };
        let (passive, so) = (of(TcpType::Passive), of(TcpType::So));
        assert_eq!(so.address().ip(), v4());
        assert_ne!(
            so.address().port(),
            passive.address().port(),
            "a port of its own"
        );
        assert!(so.priority() < passive.priority(), "RFC 6544 §4.2");
    }
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    assert_eq!(pa[0].transport, TransportType::Tcp, "{:?}", pa[0]);
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), x, y, 50, 10, CONNECT).await, 50);
    assert_eq!(pump(rt.as_ref(), y, x, 50, 10, CONNECT).await, 50);
    a.agent.close();
    b.agent.close();
}

#[test]
fn agents_with_so_candidates_tokio() {
    on_tokio(agents_with_so_candidates);
}

#[test]
fn agents_with_so_candidates_async_std() {
    on_async_std(agents_with_so_candidates);
}

/// A connect from an `so` port to another `so` port whose side is not connecting: the
/// SYN finds nothing, the reset comes back at once, and the connect fails (the I/O layer
/// then fails the pair).
async fn lone_syn_refused(rt: Arc<dyn Runtime>) {
    let (_held_a, a) = so_socket();
    let (_held_b, b) = so_socket();
    let result = timeout(rt.as_ref(), CONNECT, rt.tcp_connect(a, b))
        .await
        .expect("answered at once");
    assert!(result.is_err(), "refused: {:?}", result.map(|_| ()));
}

#[test]
fn lone_syn_refused_tokio() {
    on_tokio(lone_syn_refused);
}

#[test]
fn lone_syn_refused_async_std() {
    on_async_std(lone_syn_refused);
}

/// Runs the `so_inner_` tests of this binary in the slow namespace. Skips (outside CI)
/// with a printed reason when that namespace cannot be made.
#[test]
fn simultaneous_open_in_a_slow_namespace() {
    slow_netns_suite("so_inner_", "the simultaneous opens");
}

/// Two connects from `so` ports to each other at once, over the slow loopback: both SYNs
/// wait behind two datagrams that empty the token bucket, so each reaches a socket already
/// connecting, and one connection is made (a TCP simultaneous open: neither socket
/// listens), with bytes both ways.
async fn crossing_syns(rt: Arc<dyn Runtime>) {
    assert!(
        in_netns(),
        "run through the `simultaneous_open_in_a_slow_namespace` test"
    );
    let (_held_a, a) = so_socket();
    let (_held_b, b) = so_socket();
    let sink = std::net::UdpSocket::bind(SocketAddr::new(v4(), 0)).expect("a UDP socket");
    let drain = std::net::UdpSocket::bind(SocketAddr::new(v4(), 0)).expect("a UDP socket");
    for _ in 0..2 {
        drain
            .send_to(&[0u8; 1000], sink.local_addr().expect("bound"))
            .expect("sent");
    }
    let started = rt.now();
    let (x, y) = timeout(
        rt.as_ref(),
        Duration::from_secs(30),
        futures::future::join(rt.tcp_connect(a, b), rt.tcp_connect(b, a)),
    )
    .await
    .expect("both connects answered");
    let (mut x, mut y) = (x.expect("a -> b connected"), y.expect("b -> a connected"));
    println!("simultaneous open in {:?}", rt.now() - started);
    assert_eq!(
        (x.local_addr().ok(), x.peer_addr().ok()),
        (Some(a), Some(b))
    );
    assert_eq!(
        (y.local_addr().ok(), y.peer_addr().ok()),
        (Some(b), Some(a))
    );
    timeout(rt.as_ref(), Duration::from_secs(30), async {
        x.write_all(b"ping").await.expect("written");
        x.flush().await.expect("flushed");
        let mut buf = [0u8; 4];
        y.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
        y.write_all(b"pong!").await.expect("written");
        y.flush().await.expect("flushed");
        let mut buf = [0u8; 5];
        x.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"pong!");
    })
    .await
    .expect("bytes both ways");
}

#[test]
#[ignore = "run inside the slow namespace by `simultaneous_open_in_a_slow_namespace`"]
fn so_inner_crossing_syns_tokio() {
    on_tokio(crossing_syns);
}

#[test]
#[ignore = "run inside the slow namespace by `simultaneous_open_in_a_slow_namespace`"]
fn so_inner_crossing_syns_async_std() {
    on_async_std(crossing_syns);
}
