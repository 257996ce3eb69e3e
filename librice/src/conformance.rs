//! A conformance check for [`Runtime`] implementations: what librice needs of sockets,
//! timers, tasks and TCP, exercised for real on loopback. Adapter crates run
//! [`check_runtime`] in their tests; so can anyone writing a runtime of their own.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};

use crate::Runtime;
use crate::runtime::{recv_from, send_to, sleep_until};

/// Generous bound for any single step that does not wait on a timer of its own.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// `future`, or a panic naming `what` after [`STEP_TIMEOUT`] on the runtime's clock.
async fn within<T>(rt: &dyn Runtime, what: &str, future: impl Future<Output = T>) -> T {
    let mut timer = rt.new_timer(rt.now() + STEP_TIMEOUT);
    let mut future = std::pin::pin!(future);
    futures::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(cx) {
            return std::task::Poll::Ready(v);
        }
        if timer.as_mut().poll_elapsed(cx).is_ready() {
            panic!("timed out: {what}");
        }
        std::task::Poll::Pending
    })
    .await
}

/// A freshly wrapped socket sends at the first poll: no wait for the reactor to report
/// writability (see [`AsyncUdpSocket::poll_send_to`](crate::AsyncUdpSocket::poll_send_to)).
fn first_send(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    let receiver = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let to = receiver.local_addr().unwrap();
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    for i in 0..20u8 {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        let socket = rt.wrap_udp_socket(socket).unwrap();
        match socket.poll_send_to(&mut cx, &[i], to) {
            std::task::Poll::Ready(Ok(1)) => {}
            other => panic!("first send on a new socket (try {i}): {other:?}, not sent at once"),
        }
    }
    receiver.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut buf = [0u8; 4];
    for i in 0..20u8 {
        let (len, _) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &[i], "datagrams arrive in order");
    }
}

/// [`AsyncUdpSocket::poll_recv_batch`](crate::AsyncUdpSocket::poll_recv_batch): a burst
/// of datagrams of different lengths arrives whole, in order, one a buffer, with the
/// sender's address; one longer than its buffer is truncated to it, as UDP does; and a
/// batch waits for the first datagram rather than returning empty.
async fn udp_batch(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    use crate::runtime::{RECV_BATCH_MAX, RecvInfo};
    use std::io::IoSliceMut;

    let sender = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let from = sender.local_addr().unwrap();
    let receiver = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let receiver = rt.wrap_udp_socket(receiver).unwrap();
    let to = receiver.local_addr().unwrap();
    const SLOT: usize = 64;
    let count = RECV_BATCH_MAX + 8;
    // Datagram i is i + 1 bytes of i; the last one is longer than a slot.
    let datagram = |i: usize| {
        let len = if i + 1 == count { SLOT + 10 } else { i + 1 };
        vec![i as u8; len]
    };
    let mut storage = vec![0u8; SLOT * RECV_BATCH_MAX];
    let mut info = [RecvInfo::default(); RECV_BATCH_MAX];
    // Nothing sent yet: the first batch call waits; the burst then wakes it.
    let mut next = 0;
    let mut first = true;
    while next < count {
        let mut chunks = storage.chunks_mut(SLOT);
        let mut bufs: Vec<IoSliceMut<'_>> = (0..RECV_BATCH_MAX)
            .map(|_| IoSliceMut::new(chunks.next().unwrap()))
            .collect();
        let got = within(
            rt.as_ref(),
            "batch receive",
            futures::future::poll_fn(|cx| {
                let polled = receiver.poll_recv_batch(cx, &mut bufs, &mut info);
                if first {
                    assert!(
                        polled.is_pending(),
                        "a batch before any datagram: {polled:?}"
                    );
                    first = false;
                    for i in 0..count {
                        sender.send_to(&datagram(i), to).unwrap();
                    }
                    cx.waker().wake_by_ref();
                    return std::task::Poll::Pending;
                }
                polled
            }),
        )
        .await
        .unwrap();
        assert!((1..=RECV_BATCH_MAX).contains(&got), "batch of {got}");
        drop(bufs);
        for (k, slot) in info[..got].iter().enumerate() {
            let want = datagram(next);
            let want = &want[..want.len().min(SLOT)];
            assert_eq!(slot.from, from, "sender of datagram {next}");
            assert_eq!(slot.len, want.len(), "length of datagram {next}");
            assert_eq!(
                &storage[k * SLOT..k * SLOT + slot.len],
                want,
                "datagram {next}"
            );
            next += 1;
        }
    }
}

/// [`AsyncUdpSocket::poll_send_segments`](crate::AsyncUdpSocket::poll_send_segments): a
/// burst laid end to end goes out as separate datagrams of the segment size (the last one
/// shorter), all of them in order, to the target, however many calls it takes.
async fn udp_segments(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    const SEGMENT: usize = 100;
    const COUNT: usize = 20;
    let sender = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let sender = rt.wrap_udp_socket(sender).unwrap();
    let receiver = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    receiver
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let to = receiver.local_addr().unwrap();
    // Datagram i is SEGMENT bytes of i, the last 37 bytes.
    let mut burst = Vec::new();
    for i in 0..COUNT {
        let len = if i + 1 == COUNT { 37 } else { SEGMENT };
        burst.extend(std::iter::repeat_n(i as u8, len));
    }
    let mut rest = &burst[..];
    while !rest.is_empty() {
        let n = within(
            rt.as_ref(),
            "segments send",
            futures::future::poll_fn(|cx| sender.poll_send_segments(cx, rest, SEGMENT, to)),
        )
        .await
        .unwrap();
        assert!(n >= 1, "a ready send of segments sent none");
        rest = &rest[(n * SEGMENT).min(rest.len())..];
    }
    let mut buf = [0u8; 2048];
    for i in 0..COUNT {
        let (len, _) = receiver.recv_from(&mut buf).expect("every segment arrives");
        let want = if i + 1 == COUNT { 37 } else { SEGMENT };
        assert_eq!(len, want, "length of segment {i}");
        assert!(buf[..len].iter().all(|&b| b == i as u8), "segment {i}");
    }
}

async fn udp_echo(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    const COUNT: u32 = 100;
    const WINDOW: u32 = 16;

    let a = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let b = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
    let a_addr = a.local_addr().unwrap();
    let b_addr = b.local_addr().unwrap();
    let a = rt.wrap_udp_socket(a).unwrap();
    let b = rt.wrap_udp_socket(b).unwrap();
    assert_eq!(a.local_addr().unwrap(), a_addr);
    assert_eq!(b.local_addr().unwrap(), b_addr);

    // b echoes every datagram back to its sender, in a task of its own.
    let (done_tx, done_rx) = futures::channel::oneshot::channel();
    let echo_socket = b.clone();
    rt.spawn(Box::pin(async move {
        let mut buf = [0u8; 1500];
        for _ in 0..COUNT {
            let (len, from) = recv_from(&*echo_socket, &mut buf).await.unwrap();
            let sent = send_to(&*echo_socket, &buf[..len], from).await.unwrap();
            assert_eq!(sent, len);
        }
        let _ = done_tx.send(());
    }));

    // a sends COUNT datagrams, at most WINDOW unanswered at a time, and collects the echoes.
    let mut received = BTreeSet::new();
    let mut next = 0u32;
    let mut buf = [0u8; 1500];
    within(&**rt, "udp echo", async {
        while received.len() < COUNT as usize {
            while next < COUNT && next - (received.len() as u32) < WINDOW {
                let mut payload = next.to_be_bytes().to_vec();
                payload.resize(100 + next as usize, 0xa5);
                let sent = send_to(&*a, &payload, b_addr).await.unwrap();
                assert_eq!(sent, payload.len());
                next += 1;
            }
            let (len, from) = recv_from(&*a, &mut buf).await.unwrap();
            assert_eq!(from, b_addr);
            let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
            assert_eq!(len, 100 + seq as usize);
            assert!(buf[4..len].iter().all(|&x| x == 0xa5));
            assert!(received.insert(seq), "duplicate echo {seq}");
        }
        done_rx.await.unwrap();
    })
    .await;
    assert_eq!(received, (0..COUNT).collect());
}

async fn timers(rt: &Arc<dyn Runtime>) {
    let start = rt.now();

    // Fires no earlier than its deadline.
    let deadline = start + Duration::from_millis(50);
    sleep_until(&**rt, deadline).await;
    assert!(rt.now() >= deadline);

    // A deadline in the past is ready at once.
    let mut past = rt.new_timer(start);
    assert!(
        futures::future::poll_fn(|cx| past.as_mut().poll_elapsed(cx))
            .now_or_never()
            .is_some()
    );

    // Reset to an earlier deadline fires at that one.
    let start = rt.now();
    let late = start + Duration::from_secs(3600);
    let early = start + Duration::from_millis(30);
    let mut timer = rt.new_timer(late);
    assert!(
        futures::future::poll_fn(|cx| timer.as_mut().poll_elapsed(cx))
            .now_or_never()
            .is_none()
    );
    timer.as_mut().reset(early);
    futures::future::poll_fn(|cx| timer.as_mut().poll_elapsed(cx)).await;
    let now = rt.now();
    assert!(now >= early);
    assert!(now < late);

    // A fired timer reset to a later deadline waits again.
    let again = rt.now() + Duration::from_millis(30);
    timer.as_mut().reset(again);
    assert!(
        futures::future::poll_fn(|cx| timer.as_mut().poll_elapsed(cx))
            .now_or_never()
            .is_none()
    );
    futures::future::poll_fn(|cx| timer.as_mut().poll_elapsed(cx)).await;
    assert!(rt.now() >= again);
}

async fn spawn(rt: &Arc<dyn Runtime>) {
    let (tx, rx) = futures::channel::oneshot::channel();
    let inner = rt.clone();
    rt.spawn(Box::pin(async move {
        // The task can use the runtime's timers too.
        sleep_until(&*inner, inner.now() + Duration::from_millis(5)).await;
        tx.send(42u32).unwrap();
    }));
    assert_eq!(within(&**rt, "spawned task", rx).await, Ok(42));
}

async fn tcp(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let listen_addr = listener.local_addr().unwrap();
    let (peer_tx, peer_rx) = futures::channel::oneshot::channel();
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        stream.write_all(b"world!").unwrap();
        let _ = peer_tx.send(peer);
        // Wait for the client's close.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });

    let mut stream = within(
        &**rt,
        "tcp connect",
        rt.tcp_connect(SocketAddr::new(ip, 0), listen_addr),
    )
    .await
    .unwrap();
    assert_eq!(stream.peer_addr().unwrap(), listen_addr);
    let local = stream.local_addr().unwrap();
    assert_eq!(local.ip(), ip);
    assert_ne!(local.port(), 0);

    within(&**rt, "tcp exchange", async {
        stream.write_all(b"hello").await.unwrap();
        stream.flush().await.unwrap();
        let mut buf = [0u8; 6];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"world!");
        assert_eq!(peer_rx.await.unwrap(), local);
        stream.close().await.unwrap();
    })
    .await;
    drop(stream);
    server.join().unwrap();

    // Connecting to a closed port fails.
    let closed = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let result = within(
        &**rt,
        "refused tcp connect",
        rt.tcp_connect(SocketAddr::new(ip, 0), closed_addr),
    )
    .await;
    assert!(result.is_err(), "connect to a closed port: {result:?}");
}

/// A listening socket wrapped by the runtime accepts a connection made with
/// [`Runtime::tcp_connect`], and bytes go both ways.
async fn tcp_listen(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    let std_listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let listener = rt.wrap_tcp_listener(std_listener).unwrap();
    let listen_addr = listener.local_addr().unwrap();
    let connecting = rt.tcp_connect(SocketAddr::new(ip, 0), listen_addr);
    let accepting = futures::future::poll_fn(|cx| listener.poll_accept(cx));
    let (client, accepted) = within(&**rt, "tcp accept", async {
        futures::join!(connecting, accepting)
    })
    .await;
    let mut client = client.unwrap();
    let (mut server, peer) = accepted.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(server.local_addr().unwrap(), listen_addr);
    within(&**rt, "tcp listen exchange", async {
        client.write_all(b"ping").await.unwrap();
        client.flush().await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        server.write_all(b"pong!").await.unwrap();
        server.flush().await.unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong!");
    })
    .await;
}

/// [`Runtime::tcp_connect`] from a fixed port held by a simultaneous-open socket (bound
/// with address reuse, not listening, as librice binds one): two connections from that
/// port, to two listeners, both open from it.
async fn tcp_shared_port(rt: &Arc<dyn Runtime>, ip: IpAddr) {
    let held = crate::socket::bind_so(SocketAddr::new(ip, 0)).unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    let local = SocketAddr::new(ip, port);
    let listeners: Vec<_> = (0..2)
        .map(|_| std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap())
        .collect();
    for listener in &listeners {
        let to = listener.local_addr().unwrap();
        let stream = within(
            &**rt,
            "tcp connect from a shared port",
            rt.tcp_connect(local, to),
        )
        .await
        .unwrap_or_else(|e| {
            panic!("connect from {local} (held for simultaneous open) to {to}: {e}")
        });
        assert_eq!(stream.local_addr().unwrap(), local);
        assert_eq!(stream.peer_addr().unwrap(), to);
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, local);
    }
    drop(held);
}

/// Checks that `rt` does what librice needs, on the loopback address `ip` (127.0.0.1 or
/// ::1): 100 UDP datagrams echoed back through a spawned task; a burst received in batches;
/// timers that fire no earlier
/// than their deadline and can be moved; `spawn`; a TCP connection with bytes both ways, its
/// addresses, and a refused connection; a listening TCP socket accepting one; two
/// connections from one fixed port that a simultaneous-open socket holds. Every step is bounded (20 s on the runtime's own
/// timers).
///
/// For runtime adapters' tests: `librice-tokio` and `librice-async-std` run it under each
/// of their executors.
///
/// # Panics
/// When the runtime fails a check, naming the step.
pub async fn check_runtime(rt: Arc<dyn Runtime>, ip: IpAddr) {
    first_send(&rt, ip);
    udp_echo(&rt, ip).await;
    udp_batch(&rt, ip).await;
    udp_segments(&rt, ip).await;
    timers(&rt).await;
    spawn(&rt).await;
    tcp(&rt, ip).await;
    tcp_listen(&rt, ip).await;
    tcp_shared_port(&rt, ip).await;
}

/// `::1`, when this machine can bind it; otherwise prints why and returns `None`.
pub fn ipv6_loopback() -> Option<IpAddr> {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    match std::net::UdpSocket::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => Some(ip),
        Err(e) => {
            println!("skipping the IPv6 scenario: cannot bind [::1]:0: {e}");
            None
        }
    }
}
