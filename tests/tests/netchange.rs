//! Network change through the facade, on both runtimes over loopback: the interface
//! address of one agent (the mover) goes away mid-session and another appears, as when a
//! laptop moves from one network to another. A test runtime ([`ChangingInterfaces`]) gives
//! the agent's network watcher the addresses (127.0.0.1, then 127.0.0.2); the sockets are
//! real. Datagrams flow both ways every 10 ms throughout; the test measures the longest gap
//! each side saw and checks that the data moved to the new address on both sides.
//!
//! - The mover controls and both use renomination, with continual gathering: it gathers on
//!   the new address, the candidate is trickled, and the selection moves by renomination.
//! - The mover is controlled, with `OnPathLost::Restart`: it restarts ICE by itself, the
//!   test signals the new credentials and candidates as an application would, and the
//!   restart connects on the new address.
//! - Both again over ICE-TCP only (RFC 6544): the mover's listener on the old address
//!   closes (a connection to it is refused), its connections from there end, it listens
//!   on the new address, and the data moves to a TCP pair there.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use librice::interfaces::AddressFamilies;
use librice::proto::TransportType;
use librice::proto::candidate::{CandidateTransport, CandidateType, TcpType};
use librice::{
    Agent, AgentEvent, Component, IceOption, NetworkChange, OnPathLost, Runtime, Stream, Transports,
};
use librice_tests::ice::{Peer, connected, gather_all};
use librice_tests::netchange::ChangingInterfaces;
use librice_tests::runtimes::{on_async_std, on_tokio, sleep};

const CONNECT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(10);
/// Ticks of data before the change, and in all.
const BEFORE: u32 = 50;
const TICKS: u32 = 250;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// What one side received: (sequence number, when, the local address it arrived at).
type Log = Arc<Mutex<Vec<(u32, Instant, std::net::SocketAddr)>>>;

/// Sends a numbered datagram every tick on `from` (counting refused sends), and logs what
/// `to` receives, until `TICKS` ticks and 0.5 s more have passed.
async fn flow(rt: &dyn Runtime, from: &Component, to: &Component, log: Log) -> u32 {
    let mut tx = from.datagram().sender();
    let mut rx = to.datagram();
    let mut refused = 0;
    let end = rt.now() + TICK * TICKS + Duration::from_millis(500);
    let sending = async {
        for i in 0..TICKS {
            if tx.send(&i.to_be_bytes()).await.is_err() {
                refused += 1;
            }
            sleep(rt, TICK).await;
        }
    };
    let receiving = async {
        let mut buf = [0u8; 64];
        loop {
            let left = end.saturating_duration_since(rt.now());
            if left.is_zero() {
                break;
            }
            match librice_tests::runtimes::timeout(rt, left, rx.recv(&mut buf)).await {
                Some(Ok(meta)) if meta.len == 4 => {
                    let seq = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
                    log.lock()
                        .expect("lock")
                        .push((seq, Instant::now(), meta.local));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("receive failed: {e}"),
                None => break,
            }
        }
    };
    futures::join!(sending, receiving);
    refused
}

/// The longest time between two arrivals, and how many arrived at `local_ip` in the log's
/// last second.
fn report(log: &Log, local_ip: Option<IpAddr>) -> (Duration, usize, usize) {
    let log = log.lock().expect("lock");
    let gap = log
        .windows(2)
        .map(|w| w[1].1 - w[0].1)
        .max()
        .unwrap_or_default();
    let last = log.last().map(|l| l.1).expect("something arrived");
    let tail = log
        .iter()
        .filter(|l| last - l.1 < Duration::from_secs(1))
        .filter(|l| local_ip.is_none_or(|ip| l.2.ip() == ip))
        .count();
    (gap, tail, log.len())
}

/// Forwards every candidate `from` gathers (now and later: continual gathering) to `to`.
fn trickle_forever(rt: &dyn Runtime, from: &Stream, to: &Stream) {
    let mut g = from.gather_candidates().expect("gathering");
    let to = to.clone();
    rt.spawn(Box::pin(async move {
        while let Some(c) = g.next().await {
            let _ = to.add_remote_candidate(c);
        }
    }));
}

fn builder(rt: Arc<dyn Runtime>, controlling: bool) -> librice::AgentBuilder {
    Agent::builder()
        .runtime(rt)
        .controlling(controlling)
        .renomination(true)
        .rng_seed(if controlling { 7 } else { 8 })
}

async fn move_under_data(rt: Arc<dyn Runtime>, mover_controls: bool, transports: Transports) {
    let net = ChangingInterfaces::new(Arc::clone(&rt), &[ip(1)]);
    let policy = if mover_controls {
        NetworkChange::default().continual_gathering(true)
    } else {
        NetworkChange::default().on_path_lost(OnPathLost::Restart)
    };
    let mover = Peer::from_builder(
        builder(net.clone(), mover_controls)
            .transports(transports)
            .loopback(true)
            .families(AddressFamilies::V4)
            .network_change(policy),
        &[1],
    );
    // The peer watches the real interfaces (if-watch) but gathers on 127.0.0.1 only.
    let peer = Peer::from_builder(
        builder(Arc::clone(&rt), !mover_controls)
            .transports(transports)
            .address(ip(1)),
        &[1],
    );
    let (sm, sp) = (&mover.streams[0], &peer.streams[0]);
    for (s, other) in [(sm, sp), (sp, sm)] {
        s.set_remote_ice_options(&[IceOption::Renomination]);
        s.set_remote_credentials(other.local_credentials());
    }
    let mut events = mover.agent.events();
    let mut peer_events = peer.agent.events();
    if mover_controls {
        // The mover gathers continually: its candidates are trickled as they come, with
        // no end-of-candidates.
        trickle_forever(rt.as_ref(), sm, sp);
    } else {
        for c in gather_all(&mover).await.remove(0) {
            sp.add_remote_candidate(c).expect("candidate");
        }
        sp.end_of_remote_candidates();
    }
    for c in gather_all(&peer).await.remove(0) {
        sm.add_remote_candidate(c).expect("candidate");
    }
    sm.end_of_remote_candidates();
    connected(rt.as_ref(), &mover, CONNECT).await;
    connected(rt.as_ref(), &peer, CONNECT).await;
    let (cm, cp) = (&mover.components[0][0], &peer.components[0][0]);
    assert_eq!(cm.selected_pair().expect("selected").local_base.ip(), ip(1));
    // The mover's ICE-TCP listeners (passive candidates), before the change.
    let listeners: Vec<std::net::SocketAddr> = sm
        .local_candidates()
        .iter()
        .filter(|c| c.transport() == CandidateTransport::Tcp(TcpType::Passive))
        .filter(|c| c.candidate_type() == CandidateType::Host)
        .map(|c| c.address())
        .collect();
    assert_eq!(!listeners.is_empty(), transports.tcp(), "{listeners:?}");

    let (at_mover, at_peer): (Log, Log) = Default::default();
    let mut moved_at = None;
    let changing = async {
        sleep(rt.as_ref(), TICK * BEFORE).await;
        moved_at = Some(Instant::now());
        net.set(&[ip(2)]);
        if !mover_controls {
            // The mover restarts by itself; the application signals as after any restart:
            // the new credentials both ways, then each side's candidates.
            let restarted = async {
                while let Some(e) = events.next().await {
                    if matches!(e, AgentEvent::Restarted { .. }) {
                        return;
                    }
                }
            };
            librice_tests::runtimes::timeout(rt.as_ref(), Duration::from_secs(5), restarted)
                .await
                .expect("the mover restarted by itself");
            sp.set_remote_credentials(sm.local_credentials());
            sm.set_remote_credentials(sp.local_credentials());
            let ours: Vec<_> = sm.gather_candidates().expect("round").collect().await;
            let theirs: Vec<_> = sp.gather_candidates().expect("round").collect().await;
            for c in ours {
                sp.add_remote_candidate(c).expect("candidate");
            }
            sp.end_of_remote_candidates();
            for c in theirs {
                sm.add_remote_candidate(c).expect("candidate");
            }
            sm.end_of_remote_candidates();
        }
    };
    let (refused_m, refused_p, ()) = futures::join!(
        flow(rt.as_ref(), cm, cp, Arc::clone(&at_peer)),
        flow(rt.as_ref(), cp, cm, Arc::clone(&at_mover)),
        changing
    );
    let moved_at = moved_at.expect("moved");
    let pm = cm.selected_pair().expect("the mover has a pair");
    let pp = cp.selected_pair().expect("the peer has a pair");
    let (gap_m, tail_m, n_m) = report(&at_mover, Some(ip(2)));
    let (gap_p, tail_p, n_p) = report(&at_peer, None);
    let mut peer_changed = false;
    while let Some(Some(e)) = futures::FutureExt::now_or_never(peer_events.next()) {
        peer_changed |= matches!(e, AgentEvent::SelectedPairChanged { .. });
    }
    println!(
        "mover {}: moved {:?} ago; mover got {n_m} datagrams, longest gap {gap_m:?}, \
         {tail_m} in the last second at 127.0.0.2; peer got {n_p}, longest gap {gap_p:?}, \
         {tail_p} in the last second; refused sends {refused_m} (mover) {refused_p} (peer)",
        if mover_controls {
            "controlling, renomination"
        } else {
            "controlled, restart"
        },
        moved_at.elapsed(),
    );
    assert_eq!(
        pm.local_base.ip(),
        ip(2),
        "the mover sends from its new address"
    );
    assert_eq!(pp.remote.address().ip(), ip(2), "the peer sends to it");
    assert!(peer_changed, "the peer's selection moved");
    // Data resumed both ways: the last second of the flow (its last 50 ticks fall in it)
    // arrived over the new address.
    assert!(tail_m >= 40, "the mover got {tail_m} in the last second");
    assert!(tail_p >= 40, "the peer got {tail_p} in the last second");
    assert!(gap_m < Duration::from_secs(2) && gap_p < Duration::from_secs(2));
    assert_eq!(
        pm.transport,
        if transports.udp() {
            TransportType::Udp
        } else {
            TransportType::Tcp
        }
    );
    // The listeners on the gone address are closed.
    for at in listeners {
        let refused = std::net::TcpStream::connect_timeout(&at, Duration::from_secs(1));
        assert!(refused.is_err(), "the listener at {at} still accepts");
    }
    mover.agent.close();
    peer.agent.close();
}

#[test]
fn controlling_mover_renominates_onto_a_new_address_tokio() {
    on_tokio(|rt| move_under_data(rt, true, Transports::Udp));
}

#[test]
fn controlling_mover_renominates_onto_a_new_address_async_std() {
    on_async_std(|rt| move_under_data(rt, true, Transports::Udp));
}

#[test]
fn controlled_mover_restarts_onto_a_new_address_tokio() {
    on_tokio(|rt| move_under_data(rt, false, Transports::Udp));
}

#[test]
fn controlled_mover_restarts_onto_a_new_address_async_std() {
    on_async_std(|rt| move_under_data(rt, false, Transports::Udp));
}

#[test]
fn controlling_mover_over_tcp_renominates_onto_a_new_address_tokio() {
    on_tokio(|rt| move_under_data(rt, true, Transports::Tcp));
}

#[test]
fn controlled_mover_over_tcp_restarts_onto_a_new_address_async_std() {
    on_async_std(|rt| move_under_data(rt, false, Transports::Tcp));
}
