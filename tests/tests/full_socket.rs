//! A UDP socket whose send buffer is really full, on both runtimes' adapters
//! ([`Runtime::wrap_udp_socket`]): a send that would block waits, and is woken when the
//! kernel has room again.
//!
//! Over a plain loopback a UDP send never waits (the kernel hands each datagram over at
//! once), so this runs in a private network namespace whose loopback a token bucket slows
//! to 1,000 bytes a second (`tests/interop/peers/netns_slow.sh`): datagrams queue behind it
//! and hold the sender's buffer. The tokio adapter watches a socket for writability only
//! while a send waits (`librice-tokio/src/udp.rs`); this is the test of that path. Outside
//! CI the suite skips with a printed reason when it cannot make the namespace; in CI that
//! fails it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use librice::Runtime;
use librice::runtime::{recv_from, send_to};
use librice_tests::peers::{in_netns, slow_netns_suite};
use librice_tests::runtimes::{on_async_std, on_tokio, timeout};

/// Datagrams the sender offers before one must wait: the smallest send buffer holds a few.
const MAX_BEFORE_FULL: usize = 16;

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// Datagram `i`: 1,000 bytes of `i`.
fn datagram(i: usize) -> Vec<u8> {
    vec![i as u8; 1000]
}

/// Sends until a send would block (it must, within [`MAX_BEFORE_FULL`]), then waits for
/// that send to go through; the peer gets every datagram in order. The socket still
/// receives afterwards (its read registration is untouched by the write one), and a
/// second full buffer is waited out the same way.
async fn full_send_buffer(rt: Arc<dyn Runtime>) {
    assert!(
        in_netns(),
        "run through the `full_send_buffer_in_a_slow_namespace` test"
    );
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .expect("a UDP socket");
    socket.set_send_buffer_size(1).expect("SO_SNDBUF");
    socket
        .bind(&SocketAddr::new(v4(), 0).into())
        .expect("bound");
    let sender = rt
        .wrap_udp_socket(UdpSocket::from(socket))
        .expect("wrapped");
    let receiver = UdpSocket::bind(SocketAddr::new(v4(), 0)).expect("a UDP socket");
    receiver
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let to = receiver.local_addr().expect("bound");

    let mut sent = 0;
    for _round in 0..2 {
        let waited = loop {
            assert!(sent < 2 * MAX_BEFORE_FULL, "no send ever waited");
            let data = datagram(sent);
            let mut send = send_to(sender.as_ref(), &data, to).boxed();
            match futures::poll!(send.as_mut()) {
                Poll::Ready(result) => {
                    result.expect("sent");
                    sent += 1;
                }
                Poll::Pending => {
                    let started = rt.now();
                    timeout(rt.as_ref(), Duration::from_secs(30), send)
                        .await
                        .expect("the waiting send is woken")
                        .expect("sent");
                    sent += 1;
                    break rt.now() - started;
                }
            }
        };
        eprintln!("{sent} datagrams sent; the last waited {waited:?} for room");
    }
    let mut buf = [0u8; 2048];
    for i in 0..sent {
        let (len, from) = receiver.recv_from(&mut buf).expect("a datagram in time");
        assert_eq!(from, sender.local_addr().expect("bound"));
        assert_eq!(
            &buf[..len],
            &datagram(i)[..],
            "datagram {i} intact, in order"
        );
    }
    receiver
        .send_to(b"back", sender.local_addr().expect("bound"))
        .expect("sent back");
    let (len, from) = timeout(
        rt.as_ref(),
        Duration::from_secs(30),
        recv_from(sender.as_ref(), &mut buf),
    )
    .await
    .expect("the answer arrives")
    .expect("received");
    assert_eq!((&buf[..len], from), (&b"back"[..], to));
}

/// Runs the `full_inner_` tests of this binary in the slow namespace.
#[test]
fn full_send_buffer_in_a_slow_namespace() {
    slow_netns_suite("full_inner_", "the full send buffer");
}

#[test]
#[ignore = "run inside the slow namespace by full_send_buffer_in_a_slow_namespace"]
fn full_inner_tokio() {
    on_tokio(full_send_buffer);
}

#[test]
#[ignore = "run inside the slow namespace by full_send_buffer_in_a_slow_namespace"]
fn full_inner_async_std() {
    on_async_std(full_send_buffer);
}
