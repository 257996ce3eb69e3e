//! ICE restart through the facade, on both runtimes over loopback: `Stream::restart` on one
//! side, the peer following when it is given the new credentials, while datagrams flow
//! both ways every 10 ms. Every datagram arrives, in order, no send is refused, and both
//! sides report the restart and move to the new generation's pair.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use librice::proto::agent::RestartOrigin;
use librice::{AgentEvent, IceCandidate, Runtime, Stream};
use librice_tests::ice::{Peer, connected, exchange};
use librice_tests::runtimes::{on_async_std, on_tokio, sleep, timeout};

const CONNECT: Duration = Duration::from_secs(10);
/// Datagrams each way, one every [`TICK`]; the restart starts after [`RESTART_AT`] of them.
const COUNT: u32 = 150;
const RESTART_AT: u32 = 30;
const TICK: Duration = Duration::from_millis(10);

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The candidates of a gathering round, to its end.
async fn round(g: librice::GatherStream) -> Vec<IceCandidate> {
    g.collect().await
}

/// Gives `to` the credentials and candidates of `from`'s current round.
fn give(from: &Stream, to: &Stream, candidates: &[IceCandidate]) {
    to.set_remote_credentials(from.local_credentials());
    for c in candidates {
        to.add_remote_candidate(c.clone()).expect("candidate");
    }
    to.end_of_remote_candidates();
}

/// Sends `COUNT` numbered datagrams on `from`, one a tick, and receives `COUNT` on
/// `to`; returns the numbers received, in order, and the sends refused.
async fn flow(
    rt: &dyn Runtime,
    from: &librice::Component,
    to: &librice::Component,
) -> (Vec<u32>, Vec<String>) {
    let mut tx = from.datagram().sender();
    let mut rx = to.datagram();
    let mut refused = Vec::new();
    let sending = async {
        for i in 0..COUNT {
            if let Err(e) = tx.send(&i.to_be_bytes()).await {
                refused.push(format!("#{i}: {e}"));
            }
            sleep(rt, TICK).await;
        }
    };
    let mut got = Vec::new();
    let receiving = async {
        let mut buf = [0u8; 64];
        while got.len() < COUNT as usize {
            match timeout(rt, Duration::from_secs(2), rx.recv(&mut buf)).await {
                Some(Ok(meta)) if meta.len == 4 => {
                    got.push(u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("receive failed: {e}"),
                // Nothing for 2 s: the rest was lost.
                None => break,
            }
        }
    };
    futures::join!(sending, receiving);
    (got, refused)
}

/// The restart events received so far, and whether the selection changed.
async fn restart_report(events: &mut librice::Events) -> (Vec<RestartOrigin>, bool) {
    let mut origins = Vec::new();
    let mut changed = false;
    while let Some(Some(e)) = futures::FutureExt::now_or_never(events.next()) {
        match e {
            AgentEvent::Restarted { origin, .. } => origins.push(origin),
            AgentEvent::SelectedPairChanged { .. } => changed = true,
            _ => {}
        }
    }
    (origins, changed)
}

async fn restart_under_data(rt: Arc<dyn Runtime>, by_controlling: bool) {
    let a = Peer::new(Arc::clone(&rt), true, v4(), &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, v4(), &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, CONNECT).await;
    connected(rt.as_ref(), &b, CONNECT).await;
    let (mut ev_a, mut ev_b) = (a.agent.events(), b.agent.events());
    let (ca, cb) = (&a.components[0][0], &b.components[0][0]);
    let (by, peer) = if by_controlling { (&a, &b) } else { (&b, &a) };
    let mut both_had_credentials = None;
    let restarting = async {
        sleep(rt.as_ref(), TICK * RESTART_AT).await;
        let (sb, sp) = (&by.streams[0], &peer.streams[0]);
        let ours = round(sb.restart().expect("restart")).await;
        // The peer gets the new credentials: it restarts too, and answers with its own.
        give(sb, sp, &ours);
        let theirs = round(sp.gather_candidates().expect("the peer's new round")).await;
        give(sp, sb, &theirs);
        let t0 = Instant::now();
        assert!(
            !ours.is_empty() && !theirs.is_empty(),
            "new candidates both ways"
        );
        // Until both have left the old pair (bounded: 2 s).
        for _ in 0..2000 {
            if !sb.restarting() && !sp.restarting() {
                both_had_credentials = Some(t0.elapsed());
                break;
            }
            sleep(rt.as_ref(), Duration::from_millis(1)).await;
        }
    };
    let ((got_b, refused_a), (got_a, refused_b), ()) = futures::join!(
        flow(rt.as_ref(), ca, cb),
        flow(rt.as_ref(), cb, ca),
        restarting
    );
    let switched = both_had_credentials.expect("both left the old pair within 2 s");
    let (origins_by, changed_by) =
        restart_report(if by_controlling { &mut ev_a } else { &mut ev_b }).await;
    let (origins_peer, changed_peer) =
        restart_report(if by_controlling { &mut ev_b } else { &mut ev_a }).await;
    println!(
        "restart by the {} side: datagrams a->b {}/{COUNT}, b->a {}/{COUNT}, refused {}; \
         both on the new pair {switched:?} after both had the new credentials (1 ms polling)",
        if by_controlling {
            "controlling"
        } else {
            "controlled"
        },
        got_b.len(),
        got_a.len(),
        refused_a.len() + refused_b.len(),
    );
    assert_eq!(origins_by, [RestartOrigin::Local]);
    assert_eq!(origins_peer, [RestartOrigin::Remote]);
    assert!(changed_by && changed_peer, "both moved to the new pair");
    assert!(!a.streams[0].restarting() && !b.streams[0].restarting());
    assert!(
        refused_a.is_empty() && refused_b.is_empty(),
        "{refused_a:?} {refused_b:?}"
    );
    assert_eq!(got_b, (0..COUNT).collect::<Vec<_>>(), "a->b: all, in order");
    assert_eq!(got_a, (0..COUNT).collect::<Vec<_>>(), "b->a: all, in order");
}

#[test]
fn restart_by_controlling_keeps_data_tokio() {
    on_tokio(|rt| restart_under_data(rt, true));
}

#[test]
fn restart_by_controlled_keeps_data_tokio() {
    on_tokio(|rt| restart_under_data(rt, false));
}

#[test]
fn restart_by_controlling_keeps_data_async_std() {
    on_async_std(|rt| restart_under_data(rt, true));
}

#[test]
fn restart_by_controlled_keeps_data_async_std() {
    on_async_std(|rt| restart_under_data(rt, false));
}
