//! Unpaced bursts over loopback, on both runtimes: two connected agents each send 1,000
//! datagrams back to back while the other side reads, and every datagram arrives, in
//! order and intact. What makes room for a burst is the socket receive buffer the facade
//! asks for ([`librice::AgentBuilder::recv_buffer_size`]); the sizes the system granted
//! are checked too ([`librice::Component::socket_buffers`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::oneshot;
use librice::{Agent, Component, Runtime, SocketBuffers};
use librice_tests::ice::{Peer, connected, exchange, gather_all};
use librice_tests::in_ci;
use librice_tests::runtimes::{on_async_std, on_tokio, timeout};

const CONNECT: Duration = Duration::from_secs(10);

/// Datagrams per direction.
const COUNT: u32 = 1000;

/// How long a reader waits for the next datagram before it counts the rest as lost.
const IDLE: Duration = Duration::from_secs(3);

/// A receive buffer that holds the whole burst even if its reader never ran: 1,000
/// datagrams at what Linux charges for one of 1,200 bytes over loopback (2,304 bytes).
const HOLDS_THE_BURST: usize = COUNT as usize * 2304;

/// A Linux sysctl under `/proc/sys/net/core` (`None` elsewhere).
fn net_core(name: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What Linux grants for a buffer of `asked` bytes (0: the default) under the limits
/// `default` and `max`: twice the size asked for, at most twice the maximum.
fn linux_grant(asked: usize, default: usize, max: usize) -> usize {
    match asked {
        0 => default,
        n => 2 * n.min(max),
    }
}

/// Datagram `seq`: 100 to 1,200 bytes (a deterministic spread over the whole range), the
/// sequence number first, then a pattern that depends on both the number and the offset.
fn datagram(seq: u32) -> Vec<u8> {
    let len = 100 + (seq as usize * 389) % 1101;
    let mut d: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect();
    d[..4].copy_from_slice(&seq.to_be_bytes());
    d
}

/// What a reader saw: the datagrams delivered, and the first one out of order or damaged.
#[derive(Debug)]
struct Received {
    delivered: u32,
    first_wrong: Option<String>,
}

/// Reads until the last datagram, or until nothing came for [`IDLE`].
async fn read_burst(rt: Arc<dyn Runtime>, mut rx: librice::Recv) -> Received {
    let mut delivered = 0;
    let mut expected = 0u32;
    let mut first_wrong = None;
    while let Some(Some(d)) = timeout(rt.as_ref(), IDLE, rx.next()).await {
        delivered += 1;
        let seq = d
            .get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
        if first_wrong.is_none() {
            if seq != Some(expected) {
                first_wrong = Some(format!("expected #{expected}, got {seq:?}"));
            } else if d != datagram(expected) {
                first_wrong = Some(format!("#{expected} damaged ({} bytes)", d.len()));
            }
        }
        expected = seq.map_or(expected, |s| s.wrapping_add(1));
        if seq == Some(COUNT - 1) {
            break;
        }
    }
    Received {
        delivered,
        first_wrong,
    }
}

/// Starts a reader task on `to` before anything is sent; its result comes on the channel.
fn spawn_reader(rt: &Arc<dyn Runtime>, to: &Component) -> oneshot::Receiver<Received> {
    let (tx, rx) = oneshot::channel();
    let recv = to.recv();
    let rt2 = Arc::clone(rt);
    rt.spawn(Box::pin(async move {
        let _ = tx.send(read_burst(rt2, recv).await);
    }));
    rx
}

/// Sends the burst on `from`: no pacing, no yields between sends.
async fn send_burst(from: &Component) {
    for seq in 0..COUNT {
        from.send(&datagram(seq)).await.expect("send");
    }
}

async fn burst(rt: Arc<dyn Runtime>) {
    if let Some(max) = net_core("rmem_max")
        && 2 * max < HOLDS_THE_BURST
    {
        // Not a librice failure: the system caps every socket's receive buffer below the
        // burst (the facade's default would get twice the cap).
        let why = format!(
            "net.core.rmem_max is {max}: a socket's receive buffer cannot hold the burst \
             ({HOLDS_THE_BURST} bytes); raise it (sysctl -w net.core.rmem_max=4194304)"
        );
        if in_ci() {
            panic!("{why}");
        }
        eprintln!("skipping: {why}");
        return;
    }
    let ip = IpAddr::from([127, 0, 0, 1]);
    let a = Peer::new(Arc::clone(&rt), true, ip, &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, ip, &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let at_b = spawn_reader(&rt, cb);
    let at_a = spawn_reader(&rt, ca);
    futures::future::join(send_burst(ca), send_burst(cb)).await;
    let limit = Duration::from_secs(30);
    let (at_b, at_a) = timeout(rt.as_ref(), limit, futures::future::join(at_b, at_a))
        .await
        .expect("the readers finish");
    let (at_b, at_a) = (at_b.expect("reader a->b"), at_a.expect("reader b->a"));
    eprintln!("burst: a->b {at_b:?}, b->a {at_a:?}");
    for (dir, r) in [("a->b", &at_b), ("b->a", &at_a)] {
        assert_eq!(r.first_wrong, None, "{dir}: in order and intact");
        assert_eq!(r.delivered, COUNT, "{dir}: every datagram of the burst");
    }
}

#[test]
fn burst_tokio() {
    on_tokio(burst);
}

#[test]
fn burst_async_std() {
    on_async_std(burst);
}

/// The buffers of `agent`'s one component's sockets, after gathering.
async fn granted(agent: librice::AgentBuilder) -> Vec<SocketBuffers> {
    let agent = agent.address(IpAddr::from([127, 0, 0, 1])).build().unwrap();
    let stream = agent.add_stream();
    let component = stream.add_component().unwrap();
    assert!(
        component.socket_buffers().is_empty(),
        "no socket before gathering"
    );
    let peer = Peer {
        agent,
        streams: vec![stream],
        components: vec![vec![component.clone()]],
    };
    let candidates = gather_all(&peer).await;
    let buffers = component.socket_buffers();
    let bound: Vec<_> = candidates[0]
        .iter()
        .filter_map(|c| c.as_address().map(librice::Candidate::address))
        .collect();
    assert_eq!(
        buffers.iter().map(|b| b.local).collect::<Vec<_>>(),
        bound,
        "one entry per socket, with its address"
    );
    buffers
}

/// The sizes asked for reach the sockets: by default, [`librice::DEFAULT_RECV_BUFFER_SIZE`]
/// and [`librice::DEFAULT_SEND_BUFFER_SIZE`]; 0 leaves the system's default; other sizes
/// as given. On Linux the granted sizes are exactly what the kernel's rule predicts.
async fn buffers_granted(rt: Arc<dyn Runtime>) {
    let builder = || Agent::builder().runtime(Arc::clone(&rt));
    let cases = [
        (
            builder(),
            librice::DEFAULT_RECV_BUFFER_SIZE,
            librice::DEFAULT_SEND_BUFFER_SIZE,
        ),
        (builder().recv_buffer_size(0).send_buffer_size(0), 0, 0),
        (
            builder()
                .recv_buffer_size(300_000)
                .send_buffer_size(150_000),
            300_000,
            150_000,
        ),
    ];
    for (agent, recv, send) in cases {
        let buffers = granted(agent).await;
        assert_eq!(buffers.len(), 1, "{buffers:?}");
        let b = buffers[0];
        eprintln!("asked recv {recv}, send {send}: granted {b:?}");
        let limits = (
            net_core("rmem_default"),
            net_core("rmem_max"),
            net_core("wmem_default"),
            net_core("wmem_max"),
        );
        if let (Some(rd), Some(rm), Some(wd), Some(wm)) = limits {
            assert_eq!(b.recv, linux_grant(recv, rd, rm), "receive buffer");
            assert_eq!(b.send, linux_grant(send, wd, wm), "send buffer");
        } else {
            assert!(b.recv > 0 && b.send > 0, "{b:?}");
        }
    }
}

#[test]
fn socket_buffers_granted_tokio() {
    on_tokio(buffers_granted);
}

#[test]
fn socket_buffers_granted_async_std() {
    on_async_std(buffers_granted);
}
