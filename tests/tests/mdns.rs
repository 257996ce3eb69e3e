//! mDNS candidates through the facade, on both runtimes: two agents of one process, both
//! hiding their host addresses behind `.local` names, resolve each other's names through
//! the process's mDNS service and connect on host pairs. Multicast runs inside a private
//! network namespace with multicast on loopback (`librice_tests::mdns`): each outer test
//! re-runs the ignored inner ones there.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use librice::proto::candidate::CandidateType;
use librice::{Agent, IceCandidate, Runtime};
use librice_tests::ice::{Peer, connected, gather_all, give, pump};
use librice_tests::mdns::mdns_suite;
use librice_tests::runtimes::{on_async_std, on_tokio};

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
