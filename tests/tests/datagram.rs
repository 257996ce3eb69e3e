//! The datagram handle of a component ([`librice::Datagram`]) on both runtimes, over
//! loopback: data arrives intact both ways through every way of using it, bursts arrive in
//! order, errors are typed, and several tasks sending on one congested socket all finish.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use librice::{Agent, Datagram, Runtime};
use librice_tests::ice::{Peer, connected, exchange};
use librice_tests::runtimes::{CountingRuntime, on_async_std, on_tokio, timeout};

const CONNECT: Duration = Duration::from_secs(10);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// Datagram `i` of a test: its length varies from 1 to 1,200 bytes, its bytes from `i`.
fn payload(i: usize) -> Vec<u8> {
    let len = 1 + (i * 97) % 1200;
    (0..len).map(|k| (i + k) as u8).collect()
}

/// Two connected agents with one component each.
async fn pair(rt: &Arc<dyn Runtime>, a: Agent, b: Agent) -> (Peer, Peer) {
    let peer = |agent: Agent| {
        let stream = agent.add_stream();
        let component = stream.add_component().expect("component");
        Peer {
            agent,
            streams: vec![stream],
            components: vec![vec![component]],
        }
    };
    let (a, b) = (peer(a), peer(b));
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    (a, b)
}

/// Two connected agents with default settings.
async fn default_pair(rt: &Arc<dyn Runtime>) -> (Peer, Peer) {
    pair(
        rt,
        agent(rt, true).build().unwrap(),
        agent(rt, false).build().unwrap(),
    )
    .await
}

fn agent(rt: &Arc<dyn Runtime>, controlling: bool) -> librice::AgentBuilder {
    Agent::builder()
        .runtime(Arc::clone(rt))
        .controlling(controlling)
        .address(v4())
}

/// Bursts sent back to back (which the receiving handle reads in batches into its ring)
/// arrive whole and in order, into a buffer of the size asked, 20 KB datagrams into a
/// 64 KiB buffer included; and into a buffer shorter than a datagram, truncated to it as
/// UDP does, the next one intact after it.
async fn bursts_in_order(rt: Arc<dyn Runtime>) {
    const BURST: usize = 40;
    let (a, b) = default_pair(&rt).await;
    let mut sender = a.components[0][0].datagram().sender();
    let mut db = b.components[0][0].datagram();
    let mut buf = vec![0u8; 1500];
    for burst in 0..4 {
        for i in 0..BURST {
            sender
                .send(&payload(burst * BURST + i))
                .await
                .expect("send");
        }
        for i in 0..BURST {
            let meta = timeout(rt.as_ref(), CONNECT, db.recv(&mut buf))
                .await
                .expect("in time")
                .expect("received");
            let want = payload(burst * BURST + i);
            assert_eq!(&buf[..meta.len], &want[..], "burst {burst}, datagram {i}");
        }
    }
    // A 64 KiB buffer, which the ring holds once: large datagrams, whole and in order.
    let mut large = vec![0u8; 65_536];
    for i in 0..8 {
        sender.send(&vec![i as u8; 20_000 + i]).await.expect("send");
    }
    for i in 0..8 {
        let meta = timeout(rt.as_ref(), CONNECT, db.recv(&mut large))
            .await
            .expect("in time")
            .expect("received");
        assert_eq!(meta.len, 20_000 + i, "large datagram {i}");
        assert!(
            large[..meta.len].iter().all(|&b| b == i as u8),
            "large datagram {i}"
        );
    }
    // A 100-byte buffer: the 1,000-byte datagrams are cut to it, the short ones are whole.
    let mut small = [0u8; 100];
    for i in 0..BURST {
        let len = if i % 2 == 0 { 1000 } else { 50 };
        sender.send(&vec![i as u8; len]).await.expect("send");
    }
    for i in 0..BURST {
        let meta = timeout(rt.as_ref(), CONNECT, db.recv(&mut small))
            .await
            .expect("in time")
            .expect("received");
        let want = if i % 2 == 0 { 100 } else { 50 };
        assert_eq!(meta.len, want, "datagram {i} of the truncated burst");
        assert!(
            small[..meta.len].iter().all(|&b| b == i as u8),
            "datagram {i}"
        );
    }
}

#[test]
fn bursts_in_order_tokio() {
    on_tokio(bursts_in_order);
}

#[test]
fn bursts_in_order_async_std() {
    on_async_std(bursts_in_order);
}

/// What a receiver read in a batch but did not hand out goes to the next receiver when it
/// is dropped, in order: a handle that took one datagram of a burst, then a new handle;
/// then `Component::recv` made anew for each datagram (each one reads a batch and keeps
/// one). Nothing is lost.
async fn unread_survives_the_receiver(rt: Arc<dyn Runtime>) {
    const BURST: usize = 20;
    let (a, b) = default_pair(&rt).await;
    let mut sender = a.components[0][0].datagram().sender();
    let cb = &b.components[0][0];
    let mut buf = vec![0u8; 1500];
    let mut first = cb.datagram();
    // A first datagram, so that the handle holds the sockets (the reader's lease) when the
    // burst arrives, and reads it in one batch.
    sender.send(&payload(0)).await.expect("send");
    timeout(rt.as_ref(), CONNECT, first.recv(&mut buf))
        .await
        .expect("in time")
        .expect("received");
    // Nothing is queued now: this poll finds the sockets empty and leaves the handle
    // holding them.
    assert!(first.recv(&mut buf).now_or_never().is_none());
    for i in 1..=BURST {
        sender.send(&payload(i)).await.expect("send");
    }
    let meta = timeout(rt.as_ref(), CONNECT, first.recv(&mut buf))
        .await
        .expect("in time")
        .expect("received");
    assert_eq!(&buf[..meta.len], &payload(1)[..]);
    drop(first);
    let mut second = cb.datagram();
    for i in 2..=BURST / 2 {
        let meta = timeout(rt.as_ref(), Duration::from_secs(5), second.recv(&mut buf))
            .await
            .unwrap_or_else(|| panic!("datagram {i} lost with the first handle"))
            .expect("received");
        assert_eq!(&buf[..meta.len], &payload(i)[..], "datagram {i}");
    }
    drop(second);
    for i in BURST / 2 + 1..=BURST {
        let data = timeout(rt.as_ref(), Duration::from_secs(5), cb.recv().next())
            .await
            .unwrap_or_else(|| panic!("datagram {i} lost with a receiver"))
            .expect("received");
        assert_eq!(data, payload(i), "datagram {i}");
    }
}

#[test]
fn unread_survives_the_receiver_tokio() {
    on_tokio(unread_survives_the_receiver);
}

#[test]
fn unread_survives_the_receiver_async_std() {
    on_async_std(unread_survives_the_receiver);
}

/// 300 datagrams of 1 to 1,200 bytes each way, intact and with the pair's addresses:
/// a to b through `send` and `recv` into a buffer, b to a through the `Sink` and the
/// `Stream`. Before a pair is selected a send fails with `NotConnected`; after `close`
/// sends and receives fail with `Closed`.
async fn intact_both_ways(rt: Arc<dyn Runtime>) {
    let early = agent(&rt, true).build().unwrap();
    let mut unconnected = early.add_stream().add_component().unwrap().datagram();
    let refused = unconnected.send(b"too early").await;
    assert!(
        matches!(
            refused,
            Err(librice::Error::Agent(
                librice::proto::agent::AgentError::NotConnected
            ))
        ),
        "{refused:?}"
    );
    drop((unconnected, early));

    let (a, b) = default_pair(&rt).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let pa = ca.selected_pair().unwrap();
    let pb = cb.selected_pair().unwrap();
    // The pair ids the data should name: each side's selected pair in its statistics.
    let ida = ca.selected_pair_stats().expect("a's selected pair").id;
    let idb = cb.selected_pair_stats().expect("b's selected pair").id;
    let mut da = ca.datagram();
    let mut db = cb.datagram();
    let mut buf = vec![0u8; 1500];
    for i in 0..300 {
        let data = payload(i);
        da.send(&data).await.expect("a sends");
        let meta = timeout(rt.as_ref(), CONNECT, db.recv(&mut buf))
            .await
            .expect("b receives in time")
            .expect("b receives");
        assert_eq!(&buf[..meta.len], &data[..], "datagram {i} a to b");
        assert_eq!(meta.remote, pa.local_base);
        assert_eq!(meta.local, pb.local_base);
        assert_eq!(meta.pair, idb, "datagram {i} a to b");
        assert_eq!(meta.transport, librice::proto::TransportType::Udp);

        let data = payload(i + 1000);
        SinkExt::send(&mut db, data.clone())
            .await
            .expect("b sends through the sink");
        let (got, meta) = timeout(rt.as_ref(), CONNECT, da.next())
            .await
            .flatten()
            .expect("a receives through the stream");
        assert_eq!(got, data, "datagram {i} b to a");
        assert_eq!(
            (meta.len, meta.remote, meta.local, meta.pair),
            (data.len(), pb.local_base, pa.local_base, ida)
        );
    }

    a.agent.close();
    let sent = da.send(b"closed").await;
    assert!(matches!(sent, Err(librice::Error::Closed)), "{sent:?}");
    let received = futures::future::poll_fn(|cx| da.poll_recv(cx, &mut buf)).await;
    let e = received.expect_err("receiving on a closed agent fails");
    assert!(
        matches!(librice::Error::from_io(&e), Some(librice::Error::Closed)),
        "{e:?}"
    );
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn intact_both_ways_tokio() {
    on_tokio(intact_both_ways);
}

#[test]
fn intact_both_ways_async_std() {
    on_async_std(intact_both_ways);
}

const SENDERS: usize = 4;
const PER_SENDER: usize = 300;

/// Four tasks send 300 datagrams each on one component whose socket takes 4 datagrams per
/// millisecond and then would block, keeping one waker, as a runtime's socket does (the
/// send buffer is also asked for at its minimum, which over loopback never fills). Each
/// task sends through its own `DatagramSender` and so waits with its own waker: every one
/// of them finishes within the bound, and the peer gets every datagram. Were they to share
/// the socket's one waker, all but the last to wait would never be woken.
async fn concurrent_senders(rt: Arc<dyn Runtime>) {
    let congested = CountingRuntime::congested(Arc::clone(&rt), 4, Duration::from_millis(1));
    let congested_rt: Arc<dyn Runtime> = congested.clone();
    let (a, b) = pair(
        &rt,
        agent(&congested_rt, true)
            .send_buffer_size(1)
            .build()
            .unwrap(),
        agent(&rt, false).build().unwrap(),
    )
    .await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let granted = ca.socket_buffers();
    eprintln!("send buffer granted: {granted:?}");
    assert!(
        granted
            .iter()
            .all(|g| g.send < librice::DEFAULT_SEND_BUFFER_SIZE)
    );
    let refused_before = congested.refused();

    let datagram = ca.datagram();
    let (done_tx, mut done_rx) = mpsc::unbounded::<usize>();
    for sender_id in 0..SENDERS {
        let mut sender = datagram.sender();
        let done = done_tx.clone();
        rt.spawn(Box::pin(async move {
            for seq in 0..PER_SENDER {
                let mut data = vec![sender_id as u8; 200];
                data[1..5].copy_from_slice(&(seq as u32).to_be_bytes());
                sender.send(&data).await.expect("send");
            }
            let _ = done.unbounded_send(sender_id);
        }));
    }
    drop(done_tx);
    let mut db: Datagram = cb.datagram();
    let receiving = async {
        let mut next = [0u32; SENDERS];
        let mut buf = vec![0u8; 1500];
        for _ in 0..SENDERS * PER_SENDER {
            let meta = db.recv(&mut buf).await.expect("receive");
            let (id, seq) = (usize::from(buf[0]), &buf[1..5]);
            assert_eq!(meta.len, 200);
            assert_eq!(seq, &next[id].to_be_bytes(), "sender {id} in order");
            next[id] += 1;
        }
    };
    let finishing = async {
        let mut finished = Vec::new();
        while let Some(id) = done_rx.next().await {
            finished.push(id);
        }
        finished
    };
    let (finished, received) = futures::future::join(
        timeout(rt.as_ref(), Duration::from_secs(20), finishing),
        timeout(rt.as_ref(), Duration::from_secs(20), receiving),
    )
    .await;
    let refused = congested.refused() - refused_before;
    let finished = finished.unwrap_or_else(|| {
        panic!("not every sender finished within 20 s: a lost wake-up ({refused} sends blocked)")
    });
    assert_eq!(finished.len(), SENDERS, "{finished:?}");
    assert!(received.is_some(), "every datagram arrived");
    assert!(
        refused > SENDERS,
        "the socket blocked the senders ({refused} times)"
    );
}

#[test]
fn concurrent_senders_tokio() {
    on_tokio(concurrent_senders);
}

#[test]
fn concurrent_senders_async_std() {
    on_async_std(concurrent_senders);
}

/// `send_segments`: a burst laid end to end arrives as separate datagrams of the segment
/// size (the last shorter), in order and intact, and the sender's statistics count each
/// one (GSO on Linux: one system call for many).
async fn segments_arrive_separately(rt: Arc<dyn Runtime>) {
    const SEGMENT: usize = 1000;
    const BURSTS: usize = 20;
    const PER_BURST: usize = 16;
    let (a, b) = default_pair(&rt).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let mut sender = ca.datagram().sender();
    let mut rx = cb.datagram();
    let mut burst = Vec::new();
    let mut expected = Vec::new();
    for k in 0..BURSTS * PER_BURST {
        // The last datagram of each burst is shorter.
        let len = if k % PER_BURST == PER_BURST - 1 {
            333
        } else {
            SEGMENT
        };
        expected.push(vec![(k % 251) as u8; len]);
    }
    let send = async {
        for chunk in expected.chunks(PER_BURST) {
            burst.clear();
            for d in chunk {
                burst.extend_from_slice(d);
            }
            sender
                .send_segments(&burst, SEGMENT)
                .await
                .expect("segments sent");
        }
    };
    let recv = async {
        let mut buf = vec![0u8; 2048];
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let meta = rx.recv(&mut buf).await.expect("a datagram");
            got.push(buf[..meta.len].to_vec());
        }
        got
    };
    let (_, got) = futures::join!(send, timeout(rt.as_ref(), Duration::from_secs(10), recv));
    let got = got.expect("every datagram arrives in time");
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "datagram {i}");
    }
    let stats = ca.selected_pair_stats().expect("stats");
    assert!(
        stats.packets_sent >= (BURSTS * PER_BURST) as u64,
        "every segment counted: {stats:?}"
    );
    a.agent.close();
    b.agent.close();
}

#[test]
fn segments_arrive_separately_tokio() {
    on_tokio(segments_arrive_separately);
}

#[test]
fn segments_arrive_separately_async_std() {
    on_async_std(segments_arrive_separately);
}
