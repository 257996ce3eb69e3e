//! The async facade on both runtimes, over loopback: each scenario body runs once on tokio
//! and once on async-std.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use librice::proto::candidate::CandidateType;
use librice::{Agent, Runtime};
use librice_tests::ice::{Peer, connected, exchange, gather_all, give, pump, trickle};
use librice_tests::require_ipv6_loopback;
use librice_tests::runtimes::{CountingRuntime, on_async_std, on_tokio, sleep, timeout};

const CONNECT: Duration = Duration::from_secs(10);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn v6() -> IpAddr {
    "::1".parse().unwrap()
}

/// Two agents on `ip` connect and exchange 1,000 datagrams each way, all delivered.
async fn thousand_each_way(rt: Arc<dyn Runtime>, ip: IpAddr) {
    let a = Peer::new(Arc::clone(&rt), true, ip, &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, ip, &[1], None);
    exchange(&a, &b).await;
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    let pb = connected(rt.as_ref(), &b, CONNECT).await;
    assert_eq!(pa[0].local_base, pb[0].remote.address());
    assert_eq!(pb[0].local_base, pa[0].remote.address());
    assert_eq!(pa[0].local_base.ip(), ip);
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let limit = Duration::from_secs(20);
    let (ab, ba) = futures::future::join(
        pump(rt.as_ref(), ca, cb, 1000, 20, limit),
        pump(rt.as_ref(), cb, ca, 1000, 20, limit),
    )
    .await;
    assert_eq!((ab, ba), (1000, 1000), "all datagrams delivered both ways");
}

#[test]
fn loopback_v4_tokio() {
    on_tokio(|rt| thousand_each_way(rt, v4()));
}

#[test]
fn loopback_v4_async_std() {
    on_async_std(|rt| thousand_each_way(rt, v4()));
}

#[test]
fn loopback_v6_tokio() {
    if require_ipv6_loopback() {
        on_tokio(|rt| thousand_each_way(rt, v6()));
    }
}

#[test]
fn loopback_v6_async_std() {
    if require_ipv6_loopback() {
        on_async_std(|rt| thousand_each_way(rt, v6()));
    }
}

/// Credentials first, then candidates one by one with 20 ms gaps, then end-of-candidates.
async fn trickled(rt: Arc<dyn Runtime>) {
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[1], None);
    trickle(rt.as_ref(), &a, &b, Duration::from_millis(20)).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), ca, cb, 50, 10, CONNECT).await, 50);
    assert_eq!(pump(rt.as_ref(), cb, ca, 50, 10, CONNECT).await, 50);
}

#[test]
fn trickle_tokio() {
    on_tokio(trickled);
}

#[test]
fn trickle_async_std() {
    on_async_std(trickled);
}

/// Two streams of two components each, data on every component both ways.
async fn two_by_two(rt: Arc<dyn Runtime>) {
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[2, 2], None);
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[2, 2], None);
    exchange(&a, &b).await;
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    let pb = connected(rt.as_ref(), &b, CONNECT).await;
    assert_eq!(pa.len(), 4);
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.local_base, y.remote.address());
        assert_eq!(x.local.component(), y.local.component());
    }
    for (ca, cb) in a.all_components().iter().zip(b.all_components().iter()) {
        assert_eq!(pump(rt.as_ref(), ca, cb, 20, 10, CONNECT).await, 20);
        assert_eq!(pump(rt.as_ref(), cb, ca, 20, 10, CONNECT).await, 20);
    }
}

#[test]
fn two_streams_two_components_tokio() {
    on_tokio(two_by_two);
}

#[test]
fn two_streams_two_components_async_std() {
    on_async_std(two_by_two);
}

/// Both agents offer renomination and give each other's `renomination` ice-option: the
/// streams use it, the first nomination goes with NOMINATION, both sides select one pair
/// with no change after it (the only pair is the best), and data flows both ways.
async fn renomination_negotiated(rt: Arc<dyn Runtime>) {
    let peer = |controlling| {
        let builder = Agent::builder()
            .runtime(Arc::clone(&rt))
            .controlling(controlling)
            .renomination(true)
            .address(v4());
        Peer::from_builder(builder, &[1])
    };
    let (a, b) = (peer(true), peer(false));
    let (mut ea, mut eb) = (a.agent.events(), b.agent.events());
    for p in [&a, &b] {
        assert!(
            !p.streams[0].renomination(),
            "not before the peer announced it"
        );
        p.streams[0].set_remote_ice_options(&[librice::IceOption::Renomination]);
        assert!(p.streams[0].renomination());
    }
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), ca, cb, 50, 10, CONNECT).await, 50);
    assert_eq!(pump(rt.as_ref(), cb, ca, 50, 10, CONNECT).await, 50);
    for events in [&mut ea, &mut eb] {
        let mut selections = (0, 0);
        while let Some(Some(event)) = events.next().now_or_never() {
            match event {
                librice::AgentEvent::SelectedPair { .. } => selections.0 += 1,
                librice::AgentEvent::SelectedPairChanged { .. } => selections.1 += 1,
                _ => {}
            }
        }
        assert_eq!(selections, (1, 0), "one selection, no change");
    }
}

#[test]
fn renomination_negotiated_tokio() {
    on_tokio(renomination_negotiated);
}

#[test]
fn renomination_negotiated_async_std() {
    on_async_std(renomination_negotiated);
}

/// A STUN server in the test that plays a NAT's mapping: it answers each Binding request
/// with the sender's port on 127.0.0.2 (so the mapped address differs from the base), on a
/// thread, until `stop` is set.
fn fake_nat_stun_server() -> (SocketAddr, Arc<std::sync::atomic::AtomicBool>) {
    use librice::proto::stun::attr::XorMappedAddress;
    use librice::proto::stun::{Message, MessageClass, MessageType, MessageWriter};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(msg) = Message::parse(&buf[..n]) else {
                continue;
            };
            if msg.class() != MessageClass::Request {
                continue;
            }
            let mapped = SocketAddr::new(IpAddr::from([127, 0, 0, 2]), from.port());
            let mut out = Vec::new();
            let mut w =
                MessageWriter::new(&mut out, MessageType::BINDING_SUCCESS, msg.transaction_id());
            w.add(&XorMappedAddress(mapped)).unwrap();
            w.add_fingerprint().unwrap();
            let _ = socket.send_to(&out, from);
        }
    });
    (addr, stop)
}

/// A datagram a socket will not take at once is sent when the socket can take it, not
/// dropped to wait for a retransmission. Each socket refuses its first send; with one
/// request per STUN transaction and 2 s before it fails, gathering still finds the
/// server-reflexive candidate (a dropped request would leave only the host one).
async fn refused_send_kept(rt: Arc<dyn Runtime>) {
    use librice::proto::agent::AgentConfig;
    use librice::proto::stun::transaction::RetransmitConfig;
    let (stun, stop) = fake_nat_stun_server();
    let refusing = CountingRuntime::refusing_first_send(rt);
    let once = RetransmitConfig {
        rto: Duration::from_secs(1),
        max_requests: 1,
        last_wait_multiplier: 2,
        ..RetransmitConfig::default()
    };
    let agent = Agent::builder()
        .config(AgentConfig::default().gather_retransmit(once))
        .runtime(refusing.clone())
        .address(v4())
        .stun_server(stun)
        .build()
        .expect("agent starts");
    let stream = agent.add_stream();
    stream.add_component().expect("component");
    let cands: Vec<_> = stream
        .gather_candidates()
        .expect("gathering")
        .collect()
        .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(refusing.refused() >= 1, "the wrapper refused a send");
    assert!(
        cands
            .iter()
            .any(|c| c.candidate_type() == CandidateType::ServerReflexive),
        "the refused Binding request was sent later, not dropped: {cands:?}"
    );
}

#[test]
fn refused_send_kept_tokio() {
    on_tokio(refused_send_kept);
}

#[test]
fn refused_send_kept_async_std() {
    on_async_std(refused_send_kept);
}

/// Server-reflexive gathering through an in-test STUN server: the srflx candidate comes
/// with its base as related address, is signalled, and the agents still connect (over the
/// host pair, since the fake mapping does not route).
async fn srflx(rt: Arc<dyn Runtime>) {
    let (stun, stop) = fake_nat_stun_server();
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[1], Some(stun));
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[1], Some(stun));
    let ca = gather_all(&a).await;
    let cb = gather_all(&b).await;
    for cands in [&ca[0], &cb[0]] {
        let host = cands
            .iter()
            .filter_map(librice::IceCandidate::as_address)
            .find(|c| c.candidate_type() == CandidateType::Host)
            .expect("host");
        let srflx = cands
            .iter()
            .filter_map(librice::IceCandidate::as_address)
            .find(|c| c.candidate_type() == CandidateType::ServerReflexive)
            .expect("a server-reflexive candidate");
        assert_eq!(srflx.related_address(), Some(host.address()));
        assert_eq!(
            srflx.address(),
            SocketAddr::new(IpAddr::from([127, 0, 0, 2]), host.address().port())
        );
        assert!(srflx.priority() < host.priority());
    }
    give(&a, &b, &ca);
    give(&b, &a, &cb);
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    assert_eq!(pump(rt.as_ref(), x, y, 20, 10, CONNECT).await, 20);
    assert_eq!(pump(rt.as_ref(), y, x, 20, 10, CONNECT).await, 20);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn srflx_tokio() {
    on_tokio(srflx);
}

#[test]
fn srflx_async_std() {
    on_async_std(srflx);
}

/// Dropping every handle stops the driver task and closes the sockets: the ports can be
/// bound again.
async fn drop_closes(rt: Arc<dyn Runtime>) {
    let counting = CountingRuntime::new(rt);
    let runtime: Arc<dyn Runtime> = counting.clone();
    let a = Peer::new(Arc::clone(&runtime), true, v4(), &[2], None);
    let b = Peer::new(Arc::clone(&runtime), false, v4(), &[2], None);
    exchange(&a, &b).await;
    connected(runtime.as_ref(), &a, CONNECT).await;
    connected(runtime.as_ref(), &b, CONNECT).await;
    assert_eq!(
        counting.live_tasks(),
        4,
        "one driver task and one network watcher per agent"
    );
    let ports: Vec<SocketAddr> = a.streams[0]
        .local_candidates()
        .iter()
        .chain(b.streams[0].local_candidates().iter())
        .map(|c| c.address())
        .collect();
    assert_eq!(ports.len(), 4);
    drop(a);
    drop(b);
    let ended = timeout(runtime.as_ref(), Duration::from_secs(5), async {
        while counting.live_tasks() > 0 {
            sleep(runtime.as_ref(), Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        ended.is_some(),
        "driver tasks end after the last handle is dropped"
    );
    for addr in ports {
        UdpSocket::bind(addr).unwrap_or_else(|e| panic!("{addr} still bound: {e}"));
    }
}

#[test]
fn drop_closes_sockets_tokio() {
    on_tokio(drop_closes);
}

#[test]
fn drop_closes_sockets_async_std() {
    on_async_std(drop_closes);
}

/// Events arrive on `Agent::events`, and a failed check list resolves `connected()` to an
/// error once both sides ended their candidates.
async fn failure_reported(rt: Arc<dyn Runtime>) {
    use librice::proto::agent::AgentConfig;
    use librice::proto::stun::transaction::RetransmitConfig;
    // Short check timeouts (about 1.1 s) keep the test quick.
    let quick = AgentConfig::default().check_retransmit(RetransmitConfig {
        rto: Duration::from_millis(100),
        max_requests: 3,
        last_wait_multiplier: 4,
        ..RetransmitConfig::default()
    });
    let agent = Agent::builder()
        .runtime(Arc::clone(&rt))
        .config(quick)
        .controlling(true)
        .address(v4())
        .build()
        .unwrap();
    let stream = agent.add_stream();
    let component = stream.add_component().unwrap();
    let a = Peer {
        agent,
        streams: vec![stream],
        components: vec![vec![component]],
    };
    let mut events = a.agent.events();
    let _ = gather_all(&a).await;
    let s = &a.streams[0];
    s.set_remote_credentials(
        librice::IceCredentials::new("abcd", "0123456789012345678901").unwrap(),
    );
    // A candidate nobody listens on: its checks go unanswered (ICMP errors are ignored).
    let dead =
        librice::Candidate::parse("candidate:1 1 UDP 2130706431 127.0.0.1 9 typ host").unwrap();
    s.add_remote_candidate(dead).unwrap();
    s.end_of_remote_candidates();
    let result = timeout(
        rt.as_ref(),
        Duration::from_secs(20),
        a.components[0][0].connected(),
    )
    .await;
    assert!(
        matches!(
            result,
            Some(Err(librice::Error::Failed(
                librice::FailureReason::ChecksFailed(_)
            )))
        ),
        "{result:?}"
    );
    let component = &a.components[0][0];
    assert!(
        matches!(
            component.failure_reason(),
            Some(librice::FailureReason::ChecksFailed(c)) if c.total() > 0
        ),
        "{:?}",
        component.failure_reason()
    );
    // A failed component sends nothing, and says why.
    let sent = component.send(b"late").await;
    assert!(
        matches!(
            sent,
            Err(librice::Error::Failed(
                librice::FailureReason::ChecksFailed(_)
            ))
        ),
        "{sent:?}"
    );
    // ComponentFailed, with the reason, comes before the state change to Failed.
    let mut seen = Vec::new();
    while let Some(Some(e)) = timeout(rt.as_ref(), Duration::from_millis(10), events.next()).await {
        match e {
            librice::AgentEvent::ComponentFailed {
                reason: librice::FailureReason::ChecksFailed(_),
                ..
            } => seen.push("component-failed"),
            librice::AgentEvent::ComponentStateChange {
                state: librice::ComponentState::Failed,
                ..
            } => seen.push("state-failed"),
            _ => {}
        }
    }
    assert_eq!(seen, ["component-failed", "state-failed"]);
}

#[test]
fn failure_reported_tokio() {
    on_tokio(failure_reported);
}

#[test]
fn failure_reported_async_std() {
    on_async_std(failure_reported);
}

#[test]
fn builder_without_runtime_is_an_error() {
    assert!(matches!(
        Agent::builder().build(),
        Err(librice::Error::NoRuntime)
    ));
}

/// A reader that stops polling hands its sockets back to the driver: data sent while it is
/// idle is read by the driver and queued (more than a socket buffer holds), and comes out
/// of the same reader later, in order.
async fn idle_reader(rt: Arc<dyn Runtime>) {
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let mut rx = cb.recv();
    ca.send(b"first").await.unwrap();
    let first = timeout(rt.as_ref(), CONNECT, rx.next()).await.flatten();
    assert_eq!(first.as_deref(), Some(&b"first"[..]));
    // The reader is now idle; its lease runs out after 50 ms.
    sleep(rt.as_ref(), Duration::from_millis(150)).await;
    let payload = vec![7u8; 1000];
    for i in 0..1000u32 {
        let mut d = payload.clone();
        d[..4].copy_from_slice(&i.to_be_bytes());
        ca.send(&d).await.unwrap();
        if i % 10 == 9 {
            sleep(rt.as_ref(), Duration::from_millis(1)).await;
        }
    }
    sleep(rt.as_ref(), Duration::from_millis(200)).await;
    for i in 0..1000u32 {
        let d = timeout(rt.as_ref(), CONNECT, rx.next())
            .await
            .flatten()
            .unwrap_or_else(|| panic!("datagram {i} lost while the reader was idle"));
        assert_eq!(&d[..4], &i.to_be_bytes(), "in order");
    }
}

#[test]
fn idle_reader_hands_sockets_back_tokio() {
    on_tokio(idle_reader);
}

#[test]
fn idle_reader_hands_sockets_back_async_std() {
    on_async_std(idle_reader);
}

/// Waits (at most 5 s) until every address in `addrs` can be bound again, that is until
/// the agent's sockets on them are closed.
async fn until_closed(runtime: &dyn Runtime, addrs: &[SocketAddr]) {
    let closed = timeout(runtime, Duration::from_secs(5), async {
        while !addrs.iter().all(|a| UdpSocket::bind(a).is_ok()) {
            sleep(runtime, Duration::from_millis(5)).await;
        }
    })
    .await;
    if closed.is_none() {
        for a in addrs {
            UdpSocket::bind(a).unwrap_or_else(|e| panic!("{a} still bound after 5 s: {e}"));
        }
    }
}

/// Readers and waiters are not handles: while a `recv()` stream, a `connected()` future and
/// a gathering stream are pending, dropping every Agent, Stream and Component handle closes
/// the agent. All three end within a bound, the driver task ends, and the sockets close
/// while the readers still exist.
async fn readers_do_not_keep_alive(rt: Arc<dyn Runtime>) {
    let counting = CountingRuntime::new(rt);
    let runtime: Arc<dyn Runtime> = counting.clone();
    // A STUN server that never answers: gathering stays pending after the host candidate.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let agent = Agent::builder()
        .runtime(Arc::clone(&runtime))
        .address(v4())
        .stun_server(silent.local_addr().unwrap())
        .build()
        .unwrap();
    let stream = agent.add_stream();
    let component = stream.add_component().unwrap();
    let mut gather = stream.gather_candidates().unwrap();
    let host = timeout(runtime.as_ref(), CONNECT, gather.next())
        .await
        .flatten()
        .expect("the host candidate");
    let mut rx = component.recv();
    let mut connecting = component.connected();
    assert!(futures::poll!(rx.next()).is_pending(), "no data yet");
    assert!(futures::poll!(&mut connecting).is_pending(), "no peer yet");
    assert!(
        futures::poll!(gather.next()).is_pending(),
        "STUN unanswered"
    );
    assert_eq!(
        counting.live_tasks(),
        2,
        "the driver task and the network watcher"
    );

    drop((agent, stream, component));
    let ended = timeout(runtime.as_ref(), Duration::from_secs(5), async {
        (
            rx.next().await,
            (&mut connecting).await,
            gather.next().await,
        )
    })
    .await;
    let (data, connection, candidate) =
        ended.expect("recv, connected and gathering end once the last handle is dropped");
    assert_eq!(data, None);
    assert!(
        matches!(connection, Err(librice::Error::Closed)),
        "{connection:?}"
    );
    assert_eq!(candidate, None);
    let stopped = timeout(runtime.as_ref(), Duration::from_secs(5), async {
        while counting.live_tasks() > 0 {
            sleep(runtime.as_ref(), Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(stopped.is_some(), "the driver task ends");
    let host = host
        .as_address()
        .expect("a host candidate with its address");
    until_closed(runtime.as_ref(), &[host.address()]).await;
    drop((rx, connecting, gather));
}

#[test]
fn readers_do_not_keep_the_agent_alive_tokio() {
    on_tokio(readers_do_not_keep_alive);
}

#[test]
fn readers_do_not_keep_the_agent_alive_async_std() {
    on_async_std(readers_do_not_keep_alive);
}

/// `close()` takes effect at once: the next send fails with `Closed` without waiting for
/// the driver (the connected component's fast path would otherwise still send), and the
/// sockets close although handles remain.
async fn send_after_close(rt: Arc<dyn Runtime>) {
    use futures::FutureExt;
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let ca = &a.components[0][0];
    ca.send(b"before").await.expect("sends while open");
    let ports: Vec<SocketAddr> = a.streams[0]
        .local_candidates()
        .iter()
        .map(|c| c.address())
        .collect();

    a.agent.close();
    let sent = ca.send(b"after").now_or_never();
    assert!(
        matches!(sent, Some(Err(librice::Error::Closed))),
        "a send right after close() fails at once: {sent:?}"
    );
    until_closed(rt.as_ref(), &ports).await;
    assert!(matches!(
        ca.send(b"later").await,
        Err(librice::Error::Closed)
    ));
    let ended = timeout(rt.as_ref(), Duration::from_secs(5), ca.recv().next()).await;
    assert_eq!(ended, Some(None), "recv ends on a closed agent");
}

#[test]
fn send_after_close_fails_at_once_tokio() {
    on_tokio(send_after_close);
}

#[test]
fn send_after_close_fails_at_once_async_std() {
    on_async_std(send_after_close);
}

/// Consent expires while the driver's timers run late (a loaded machine): a send on the fast
/// path must still stop at the expiry (RFC 7675 §5.1), not when the driver wakes. With a
/// 1 s consent timeout and the default 4-6 s consent interval, consent expires 1 s after
/// the selection, and the driver's timer for it fires 3 s later than that.
async fn consent_expiry_stops_fast_sends(rt: Arc<dyn Runtime>) {
    let late = CountingRuntime::with_late_timers(Arc::clone(&rt), Duration::from_secs(3));
    let late: Arc<dyn Runtime> = late;
    let make = |runtime: Arc<dyn Runtime>, controlling| {
        let builder = Agent::builder()
            .runtime(runtime)
            .controlling(controlling)
            .address(v4())
            .consent_timeout(Duration::from_secs(1));
        Peer::from_builder(builder, &[1])
    };
    let a = make(Arc::clone(&late), true);
    let b = make(Arc::clone(&rt), false);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    let connected_at = rt.now();
    let ca = &a.components[0][0];
    let failed = loop {
        match ca.send(b"data").await {
            Ok(()) => {}
            Err(e) => break e,
        }
        assert!(
            rt.now() < connected_at + Duration::from_secs(10),
            "sends kept working"
        );
        sleep(rt.as_ref(), Duration::from_millis(20)).await;
    };
    let after = rt.now() - connected_at;
    assert!(
        matches!(
            failed,
            librice::Error::Failed(librice::FailureReason::ConsentLost)
        ),
        "{failed:?}"
    );
    // Consent expired 1 s after the selection (which came just before `connected`
    // resolved); the late driver would only have noticed at 4 s.
    assert!(
        after < Duration::from_millis(1_500),
        "sends stopped {after:?} after connecting"
    );
}

#[test]
fn consent_expiry_stops_fast_sends_tokio() {
    on_tokio(consent_expiry_stops_fast_sends);
}

#[test]
fn consent_expiry_stops_fast_sends_async_std() {
    on_async_std(consent_expiry_stops_fast_sends);
}

/// `Stream::add_component` is refused once the stream has started gathering (its sockets
/// are bound then, so a later component could never have candidates) and once the agent is
/// closed; a refused call adds nothing, and other streams are not affected.
async fn add_component_refused(rt: Arc<dyn Runtime>) {
    let agent = Agent::builder()
        .runtime(Arc::clone(&rt))
        .address(v4())
        .build()
        .expect("agent");
    let stream = agent.add_stream();
    let first = stream.add_component().expect("before gathering");
    let gathering = stream.gather_candidates().expect("gathering starts");
    let late = stream.add_component();
    assert!(
        matches!(
            late,
            Err(librice::Error::Usage(librice::UsageError::GatheringStarted))
        ),
        "after gathering: {late:?}"
    );
    assert!(
        stream.component(librice::ComponentId::RTCP).is_none(),
        "nothing added"
    );
    let candidates = timeout(rt.as_ref(), CONNECT, gathering.collect::<Vec<_>>())
        .await
        .expect("gathering completes");
    assert!(
        candidates.iter().all(|c| c.component() == first.id()),
        "{candidates:?}"
    );

    let other = agent.add_stream();
    other
        .add_component()
        .expect("another stream is not gathering");
    agent.close();
    let closed = other.add_component();
    assert!(
        matches!(closed, Err(librice::Error::Closed)),
        "after close: {closed:?}"
    );
}

#[test]
fn add_component_refused_after_gathering_or_close_tokio() {
    on_tokio(add_component_refused);
}

#[test]
fn add_component_refused_after_gathering_or_close_async_std() {
    on_async_std(add_component_refused);
}

/// The statistics count what went out on the send fast path (which never enters the
/// core) on the selected pair: after 200 datagrams of 1 to 1,200 bytes each way, each
/// side's selected pair shows 200 packets and the exact bytes both ways, answered checks
/// with a round-trip time, and the component's sums agree.
async fn stats_count_fast_path(rt: Arc<dyn Runtime>) {
    const COUNT: usize = 200;
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let sizes: Vec<usize> = (0..COUNT).map(|i| 1 + (i * 53) % 1200).collect();
    let bytes: u64 = sizes.iter().map(|&n| n as u64).sum();
    for (from, to) in [(ca, cb), (cb, ca)] {
        let mut rx = to.recv();
        for &n in &sizes {
            from.send(&vec![7u8; n]).await.expect("send");
            let got = timeout(rt.as_ref(), CONNECT, rx.next()).await.flatten();
            assert_eq!(got.map(|d| d.len()), Some(n));
        }
    }
    for (peer, c) in [(&a, ca), (&b, cb)] {
        let stats = peer.streams[0].stats();
        let pair = stats.selected_pair(c.id()).expect("a selected pair");
        eprintln!("{pair:?}");
        assert_eq!(
            (pair.packets_sent, pair.bytes_sent),
            (COUNT as u64, bytes),
            "sent on the selected pair"
        );
        assert_eq!(
            (pair.packets_received, pair.bytes_received),
            (COUNT as u64, bytes),
            "received on the selected pair"
        );
        assert!(pair.responses_received > 0, "{pair:?}");
        assert!(pair.current_round_trip_time.is_some(), "{pair:?}");
        assert!(pair.last_packet_sent.is_some() && pair.last_packet_received.is_some());
        let component = c.stats();
        assert_eq!(
            (component.packets_sent, component.bytes_sent),
            (COUNT as u64, bytes)
        );
        assert_eq!(c.selected_pair_stats().as_ref(), Some(pair));
    }
}

#[test]
fn stats_count_fast_path_tokio() {
    on_tokio(stats_count_fast_path);
}

#[test]
fn stats_count_fast_path_async_std() {
    on_async_std(stats_count_fast_path);
}
