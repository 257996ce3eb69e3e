//! A 10-minute ICE session relayed through coturn started with short lifetimes (60 s
//! allocations and permissions, 90 s channels): the allocation, permission and channel
//! refreshes each happen several times, and data keeps flowing both ways the whole time.
//! Without the refreshes the relay would stop after a minute.
//!
//! Runs on tokio only (the runtime does not matter to refresh timing, and the test takes
//! its 10 minutes of real time), once with the relays reached over UDP and once over TCP,
//! side by side. A soak test: `cargo test` skips it, `.ci/run` runs it with
//! `cargo test -p librice-tests --test turn_session -- --ignored`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use librice::proto::agent::TurnServer;
use librice::proto::candidate::CandidateType;
use librice::{Agent, Runtime};
use librice_proto::TransportType;
use librice_tests::ice::{Peer, connected, exchange};
use librice_tests::runtimes::{on_tokio, sleep, timeout};
use librice_tests::{COTURN_PASSWORD, COTURN_USER, Coturn, TestDir, require_tool};

const SESSION: Duration = Duration::from_secs(600);
const LIFETIME: u64 = 60;

fn relay_peer(rt: &Arc<dyn Runtime>, controlling: bool, turn: TurnServer) -> Peer {
    let agent = Agent::builder()
        .runtime(Arc::clone(rt))
        .controlling(controlling)
        .address("127.0.0.1".parse().unwrap())
        .turn(turn)
        .relay_only(true)
        .build()
        .unwrap();
    let stream = agent.add_stream();
    let component = stream.add_component().unwrap();
    Peer {
        agent,
        streams: vec![stream],
        components: vec![vec![component]],
    }
}

#[test]
#[ignore = "soak: 10 minutes of real time; .ci/run runs it with --ignored"]
fn ten_minutes_through_coturn_with_short_lifetimes() {
    session(TransportType::Udp);
}

/// The same session with both sides' relays reached over TCP (RFC 6062 is not needed:
/// TURN over TCP to the server, UDP relaying from it), run beside the UDP one.
#[test]
#[ignore = "soak: 10 minutes of real time; .ci/run runs it with --ignored"]
fn ten_minutes_through_coturn_over_tcp_with_short_lifetimes() {
    session(TransportType::Tcp);
}

fn session(transport: TransportType) {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    let dir = TestDir::new();
    let lifetime = LIFETIME.to_string();
    let coturn = Coturn::start_with(
        &turnserver,
        &dir,
        false,
        &[
            "--max-allocate-lifetime",
            &lifetime,
            "--permission-lifetime",
            &lifetime,
            "--channel-lifetime",
            "90",
        ],
    );
    let mut turn = match transport {
        TransportType::Udp => TurnServer::udp(coturn.addr_v4(), COTURN_USER, COTURN_PASSWORD),
        TransportType::Tcp => {
            TurnServer::udp(coturn.addr_v4(), COTURN_USER, COTURN_PASSWORD).over_tcp()
        }
    };
    turn.permission_lifetime = Duration::from_secs(LIFETIME);
    turn.channel_lifetime = Duration::from_secs(90);
    on_tokio(|rt| async move {
        let a = relay_peer(&rt, true, turn.clone());
        let b = relay_peer(&rt, false, turn);
        exchange(&a, &b).await;
        let pa = connected(rt.as_ref(), &a, Duration::from_secs(20)).await;
        assert_eq!(pa[0].local.candidate_type(), CandidateType::Relayed);
        let (ca, cb) = (a.components[0][0].clone(), b.components[0][0].clone());
        let (mut ra, mut rb) = (ca.recv(), cb.recv());
        let start = Instant::now();
        let mut sent = 0u32;
        let mut lost = Vec::new();
        while start.elapsed() < SESSION {
            sent += 1;
            let second = start.elapsed().as_secs();
            for (from, rx, dir) in [(&ca, &mut rb, "a->b"), (&cb, &mut ra, "b->a")] {
                let payload = format!("{dir} {sent}");
                from.send(payload.as_bytes()).await.unwrap();
                match timeout(rt.as_ref(), Duration::from_secs(2), rx.next()).await {
                    Some(Some(d)) if d == payload.as_bytes() => {}
                    other => lost.push(format!("{dir} at {second} s: {other:?}")),
                }
            }
            sleep(rt.as_ref(), Duration::from_millis(500)).await;
        }
        // A datagram may be lost in the instant a refresh and a send cross; the relay must
        // not stop.
        println!(
            "{transport:?}: {sent} round trips, {} lost: {lost:?}",
            lost.len()
        );
        assert!(
            lost.len() <= 2,
            "{} of {sent} round trips lost: {lost:?}",
            lost.len()
        );
        assert!(sent > 1000, "{sent}");
    });
    drop(coturn);
}
