//! mDNS candidates through the facade, on both runtimes:
//!
//! - two agents of one process, both hiding their host addresses behind `.local` names,
//!   resolve each other's names through the process's mDNS service and connect on host
//!   pairs;
//! - another host on the link (`ForeignHost`) resolves a hiding agent's name over
//!   multicast, and hears its goodbye when the agent closes;
//! - a name another host claims while the agent probes it is replaced: the host
//!   candidates are announced again under a new name;
//! - the service started on one tokio runtime keeps serving the agents of another once
//!   the first runtime is shut down;
//! - a legacy query (RFC 6762 §6.7, from a port other than 5353) for a hiding agent's
//!   name gets a unicast reply to its port;
//! - with port 5353 held by a socket that does not share it, the agent's names fail at
//!   once (gathering ends without waiting for claims) and nothing panics.
//!
//! Multicast runs inside a private network namespace with multicast on loopback
//! (`librice_tests::mdns`): the outer test re-runs the ignored inner ones there.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use librice::proto::candidate::CandidateType;
use librice::proto::mdns::MdnsEvent;
use librice::{Agent, IceCandidate, NamedCandidate, Runtime};
use librice_tests::ice::{Peer, connected, gather_all, give, pump};
use librice_tests::mdns::{ForeignHost, mdns_suite};
use librice_tests::runtimes::{on_async_std, on_tokio, sleep, timeout};

const CONNECT: Duration = Duration::from_secs(15);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The real address of each host candidate of `p`'s first stream.
fn host_addresses(p: &Peer) -> Vec<SocketAddr> {
    p.streams[0]
        .local_candidates()
        .iter()
        .filter(|c| c.candidate_type() == CandidateType::Host)
        .map(|c| c.address())
        .collect()
}

/// Both agents hide their host addresses; every host candidate is signalled as a
/// `.local` name and no candidate carries a real address. Each side resolves the other's
/// name, so the selected pair's remote candidate is a host candidate at the peer's real
/// socket (not a peer-reflexive one learnt from a check), and data flows both ways.
async fn hidden_hosts_connect(rt: Arc<dyn Runtime>) {
    let builder = |controlling| {
        Agent::builder()
            .runtime(Arc::clone(&rt))
            .controlling(controlling)
            .address(v4())
            .hide_host_addresses(true)
    };
    let a = Peer::from_builder(builder(true), &[1]);
    let b = Peer::from_builder(builder(false), &[1]);
    let ca = gather_all(&a).await;
    let cb = gather_all(&b).await;
    for c in ca[0].iter().chain(&cb[0]) {
        let IceCandidate::Named(named) = c else {
            panic!("a host address was signalled: {c}");
        };
        assert!(named.name().is_mdns(), "{c}");
        assert!(c.to_string().contains(".local "), "{c}");
    }
    assert!(
        !ca[0].is_empty() && !cb[0].is_empty(),
        "host candidates gathered"
    );
    give(&a, &b, &ca);
    give(&b, &a, &cb);
    let pa = connected(rt.as_ref(), &a, CONNECT).await;
    let pb = connected(rt.as_ref(), &b, CONNECT).await;
    let (real_a, real_b) = (host_addresses(&a), host_addresses(&b));
    assert_eq!(
        pa[0].remote.candidate_type(),
        CandidateType::Host,
        "{:?}",
        pa[0]
    );
    assert_eq!(
        pb[0].remote.candidate_type(),
        CandidateType::Host,
        "{:?}",
        pb[0]
    );
    assert!(
        real_b.contains(&pa[0].remote.address()),
        "{:?} not in {real_b:?}",
        pa[0]
    );
    assert!(
        real_a.contains(&pb[0].remote.address()),
        "{:?} not in {real_a:?}",
        pb[0]
    );
    assert_eq!(pa[0].remote.address(), pb[0].local_base);
    assert_eq!(pb[0].remote.address(), pa[0].local_base);
    let (x, y) = (&a.components[0][0], &b.components[0][0]);
    let limit = Duration::from_secs(10);
    let (ab, ba) = futures::future::join(
        pump(rt.as_ref(), x, y, 200, 20, limit),
        pump(rt.as_ref(), y, x, 200, 20, limit),
    )
    .await;
    assert_eq!((ab, ba), (200, 200), "every datagram arrived, both ways");
    a.agent.close();
    b.agent.close();
}

/// A hiding agent on 127.0.0.1 with one component, and its first named candidate.
async fn hiding_agent(
    rt: &Arc<dyn Runtime>,
) -> (
    Agent,
    librice::Stream,
    librice::GatherStream,
    NamedCandidate,
) {
    let agent = Agent::builder()
        .runtime(Arc::clone(rt))
        .address(v4())
        .hide_host_addresses(true)
        .build()
        .expect("agent starts");
    let stream = agent.add_stream();
    stream.add_component().expect("component");
    let mut gather = stream.gather_candidates().expect("gathering starts");
    let first = timeout(rt.as_ref(), Duration::from_secs(5), gather.next())
        .await
        .flatten()
        .expect("a candidate at once");
    let IceCandidate::Named(named) = first else {
        panic!("a host address was signalled: {first}");
    };
    (agent, stream, gather, named)
}

/// Another host resolves a hiding agent's name over the link (multicast) to the agent's
/// real address; when the agent closes, its goodbye (TTL 0) reaches that host.
async fn names_answer_the_link_and_say_goodbye(rt: Arc<dyn Runtime>) {
    let foreign = ForeignHost::start(11).expect("the other host binds port 5353");
    let (agent, stream, gather, named) = hiding_agent(&rt).await;
    let name = named.name().as_str().to_owned();
    let _rest: Vec<_> = gather.collect().await; // until the name is claimed
    foreign.resolve(&name);
    let answer = foreign.next_event(Duration::from_secs(5));
    let real = host_addresses_of(&stream);
    assert_eq!(
        answer,
        Some(MdnsEvent::Resolved {
            name: name.clone(),
            addrs: vec![v4()],
            ttl: Duration::from_secs(120),
        }),
        "the name resolves to the agent's address ({real:?})"
    );
    assert!(real.iter().all(|a| a.port() == named.port()), "{real:?}");
    assert!(
        !foreign.heard_goodbye(&name),
        "no goodbye while the agent runs"
    );
    agent.close();
    drop((agent, stream));
    let mut heard = false;
    for _ in 0..100 {
        if foreign.heard_goodbye(&name) {
            heard = true;
            break;
        }
        sleep(rt.as_ref(), Duration::from_millis(20)).await;
    }
    assert!(heard, "the closing agent withdrew {name} with a goodbye");
}

/// Another host claims the agent's name while the agent probes it (and wins the
/// tie-break, its address being greater): the agent gets a conflict and announces its
/// host candidate again under a new name, on the same port.
async fn a_claimed_name_is_replaced(rt: Arc<dyn Runtime>) {
    let foreign = ForeignHost::start(12).expect("the other host binds port 5353");
    let (_agent, _stream, gather, named) = hiding_agent(&rt).await;
    let taken = named.name().as_str().to_owned();
    foreign.publish(&taken, IpAddr::from([192, 0, 2, 1]));
    let rest: Vec<_> = timeout(rt.as_ref(), Duration::from_secs(15), gather.collect())
        .await
        .expect("gathering completes");
    let renamed: Vec<&NamedCandidate> = rest.iter().filter_map(IceCandidate::as_named).collect();
    assert!(
        renamed
            .iter()
            .any(|c| c.name().as_str() != taken && c.port() == named.port()),
        "the candidate was announced again under a new name: {rest:?}"
    );
    assert!(
        renamed.iter().all(|c| c.name().as_str() != taken),
        "not under the taken name again: {rest:?}"
    );
    let mut claimed = false;
    while let Some(event) = foreign.next_event(Duration::from_secs(3)) {
        if event
            == (MdnsEvent::Published {
                name: taken.clone(),
            })
        {
            claimed = true;
            break;
        }
    }
    assert!(claimed, "the other host holds {taken}");
}

fn host_addresses_of(stream: &librice::Stream) -> Vec<SocketAddr> {
    stream
        .local_candidates()
        .iter()
        .filter(|c| c.candidate_type() == CandidateType::Host)
        .map(|c| c.address())
        .collect()
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_names_answer_the_link_and_say_goodbye_tokio() {
    on_tokio(names_answer_the_link_and_say_goodbye);
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_names_answer_the_link_and_say_goodbye_async_std() {
    on_async_std(names_answer_the_link_and_say_goodbye);
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_a_claimed_name_is_replaced_tokio() {
    on_tokio(a_claimed_name_is_replaced);
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_a_claimed_name_is_replaced_async_std() {
    on_async_std(a_claimed_name_is_replaced);
}

/// The process's mDNS service starts on the runtime of the first agent that needs it.
/// When that runtime shuts down, the service moves to the runtime of an agent still
/// running: another host still resolves that agent's name. (Tokio only: async-std's
/// executor is global and never shuts down.)
#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_service_moves_to_a_live_runtime_tokio() {
    let foreign = ForeignHost::start(13).expect("the other host binds port 5353");
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    let (first, second) = (runtime(), runtime());
    let rt1 = librice_tokio::runtime_from_handle(first.handle().clone());
    let rt2 = librice_tokio::runtime_from_handle(second.handle().clone());
    let (a, _sa, ga, _) = first.block_on(hiding_agent(&rt1));
    first.block_on(ga.collect::<Vec<_>>());
    let (b, sb, gb, named) = second.block_on(hiding_agent(&rt2));
    second.block_on(gb.collect::<Vec<_>>());
    // The first runtime goes, with the service's task and agent A's driver.
    drop(first);
    drop(a);
    let name = named.name().as_str().to_owned();
    foreign.resolve(&name);
    let answer = foreign.next_event(Duration::from_secs(5));
    assert_eq!(
        answer,
        Some(MdnsEvent::Resolved {
            name,
            addrs: vec![v4()],
            ttl: Duration::from_secs(120),
        }),
        "agent B's name is still answered after the first runtime shut down"
    );
    drop((b, sb));
}

/// A one-shot legacy query (RFC 6762 §6.7: from an ordinary port, as `dig -p 5353`
/// sends) for a hiding agent's claimed name is answered by unicast to the querier's port,
/// echoing its identifier, with the agent's address.
async fn a_legacy_query_gets_a_unicast_reply(rt: Arc<dyn Runtime>) {
    let (agent, _stream, gather, named) = hiding_agent(&rt).await;
    let _rest: Vec<_> = gather.collect().await; // until the name is claimed
    let querier = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
    querier
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Header: id 0x4a11, no flags, one question; then the name, type A, class IN.
    let mut query = vec![0x4a, 0x11, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in named.name().as_str().split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut reply = None;
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        querier
            .send_to(&query, (std::net::Ipv4Addr::new(224, 0, 0, 251), 5353))
            .unwrap();
        if let Ok((len, from)) = querier.recv_from(&mut buf) {
            reply = Some((buf[..len].to_vec(), from));
            break;
        }
        sleep(rt.as_ref(), Duration::from_millis(100)).await;
    }
    let (reply, from) = reply.expect("a unicast reply to the legacy query");
    assert_eq!(from.port(), 5353, "from the mDNS port");
    assert_eq!(&reply[..2], &[0x4a, 0x11], "the query's identifier echoed");
    assert!(reply[2] & 0x80 != 0, "a response");
    // An A record's data: length 4, then the address.
    assert!(
        reply.windows(6).any(|w| w == [0, 4, 127, 0, 0, 1]),
        "the agent's address in {reply:?}"
    );
    agent.close();
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_a_legacy_query_gets_a_unicast_reply_tokio() {
    on_tokio(a_legacy_query_gets_a_unicast_reply);
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_a_legacy_query_gets_a_unicast_reply_async_std() {
    on_async_std(a_legacy_query_gets_a_unicast_reply);
}

/// Port 5353 held by a socket that does not share it (no `SO_REUSEADDR`): the service
/// cannot bind, so the agent's names fail at once through the core's failure calls. Its
/// gathering then ends at once (not after the 10 s wait for claims) with its host
/// candidates still named (draft: provided even if registration fails), and a remote
/// `.local` candidate is taken and dropped without harm.
async fn port_taken_fails_the_names(rt: Arc<dyn Runtime>) {
    let mut blocker = None;
    for _ in 0..50 {
        // A service of an earlier test may still be closing its sockets.
        match std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 5353)) {
            Ok(socket) => {
                blocker = Some(socket);
                break;
            }
            Err(_) => sleep(rt.as_ref(), Duration::from_millis(20)).await,
        }
    }
    let _blocker = blocker.expect("port 5353 free to take in the namespace");
    let started = std::time::Instant::now();
    let (agent, stream, gather, named) = hiding_agent(&rt).await;
    let rest: Vec<_> = timeout(rt.as_ref(), Duration::from_secs(5), gather.collect())
        .await
        .expect("gathering ends without waiting for the claims");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        rest.iter().all(|c| c.as_named().is_some()),
        "the host candidates stay named: {rest:?}"
    );
    assert!(named.name().is_mdns());
    let remote = NamedCandidate::parse(
        "candidate:1 1 UDP 2130706431 1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local 9999 typ host",
    )
    .expect("a named candidate");
    stream
        .add_remote_candidate(remote)
        .expect("a .local candidate is taken even when it cannot be resolved");
    sleep(rt.as_ref(), Duration::from_millis(100)).await;
    assert!(
        stream.stats().pairs.is_empty(),
        "an unresolved name makes no pair"
    );
    agent.close();
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_port_taken_fails_the_names_tokio() {
    on_tokio(port_taken_fails_the_names);
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_port_taken_fails_the_names_async_std() {
    on_async_std(port_taken_fails_the_names);
}

#[test]
fn hidden_hosts_connect_through_mdns() {
    mdns_suite("netns_mdns_", "the mDNS facade tests");
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_hidden_hosts_connect_tokio() {
    on_tokio(hidden_hosts_connect);
}

#[test]
#[ignore = "runs inside the network namespace made by hidden_hosts_connect_through_mdns"]
fn netns_mdns_hidden_hosts_connect_async_std() {
    on_async_std(hidden_hosts_connect);
}
