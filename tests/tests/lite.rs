//! ICE-lite through the facade, on both runtimes over loopback: a full agent (configured
//! controlled, told its peer is lite) and a lite agent (configured controlling, with a
//! STUN server that never answers) connect, the full side controls, the lite side
//! gathers host candidates only and at once, and data flows both ways.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use librice::proto::candidate::CandidateType;
use librice::{Agent, Runtime};
use librice_tests::ice::{Peer, connected, gather_all, give, pump};
use librice_tests::runtimes::{on_async_std, on_tokio, timeout};

const CONNECT: Duration = Duration::from_secs(10);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

async fn full_and_lite(rt: Arc<dyn Runtime>) {
    // Nothing listens there: a full agent would wait for its query to time out (39.5 s).
    let silent: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let full = Peer::new(Arc::clone(&rt), false, v4(), &[1], None);
    let lite = Peer::from_builder(
        Agent::builder()
            .runtime(Arc::clone(&rt))
            .lite(true)
            .controlling(true)
            .stun_server(silent)
            .address(v4()),
        &[1],
    );
    assert!(lite.agent.lite() && !full.agent.lite());
    assert!(!lite.agent.controlling(), "a lite agent is controlled");
    full.streams[0].set_remote_lite(true);
    assert!(full.streams[0].remote_lite());
    assert!(
        full.agent.controlling(),
        "facing a lite peer, the full agent controls"
    );

    let lite_candidates = timeout(rt.as_ref(), Duration::from_secs(2), gather_all(&lite))
        .await
        .expect("a lite agent's gathering ends at once: no STUN query");
    assert!(!lite_candidates[0].is_empty());
    assert!(
        lite_candidates[0]
            .iter()
            .all(|c| c.candidate_type() == CandidateType::Host),
        "{:?}",
        lite_candidates[0]
    );
    let full_candidates = gather_all(&full).await;
    give(&full, &lite, &full_candidates);
    give(&lite, &full, &lite_candidates);

    let pf = connected(rt.as_ref(), &full, CONNECT).await;
    let pl = connected(rt.as_ref(), &lite, CONNECT).await;
    assert_eq!(pf[0].local_base, pl[0].remote.address());
    assert_eq!(pl[0].local_base, pf[0].remote.address());
    assert!(full.agent.controlling() && !lite.agent.controlling());

    let (cf, cl) = (&full.components[0][0], &lite.components[0][0]);
    let limit = Duration::from_secs(5);
    let to_lite = pump(rt.as_ref(), cf, cl, 100, 10, limit).await;
    let to_full = pump(rt.as_ref(), cl, cf, 100, 10, limit).await;
    println!("full -> lite {to_lite}/100, lite -> full {to_full}/100 over loopback");
    assert_eq!((to_lite, to_full), (100, 100));
    full.agent.close();
    lite.agent.close();
}

#[test]
fn full_and_lite_connect_and_exchange_data_tokio() {
    on_tokio(full_and_lite);
}

#[test]
fn full_and_lite_connect_and_exchange_data_async_std() {
    on_async_std(full_and_lite);
}
