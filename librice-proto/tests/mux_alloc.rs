//! Proves that the mux's hot path allocates nothing: routing any packet
//! ([`Mux::route`]), dropping floods of unknown ufrags, malformed USERNAMEs and unknown
//! sources, and delivering application data through [`Mux::handle_incoming`]; and that
//! routing a check adds no allocation to what the agent itself makes to answer it (the
//! answer and its slot in the agent's output queue, two at most).
//!
//! A counting global allocator (`stats_alloc`) counts every allocation of the process, so
//! this binary holds this one test only.

mod mux_common;

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use librice_proto::mux::{MuxConfig, MuxDrop, MuxIncoming};
use librice_proto::stun::attr::Username;
use librice_proto::stun::{
    Message, MessageClass, MessageType, MessageWriter, Method, TransactionId,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use mux_common::{Net, origin, shared, udp};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (and reallocations) made while running `f`.
fn allocations_in<R>(f: impl FnOnce() -> R) -> usize {
    let region = Region::new(GLOBAL);
    black_box(f());
    let change = region.change();
    change.allocations + change.reallocations
}

/// An unauthenticated Binding request with this USERNAME.
fn check(username: &str, n: u8) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(MessageClass::Request, Method::BINDING),
        TransactionId([n; 12]),
    );
    w.add(&Username(username)).expect("fits");
    let _ = w.finish();
    buf
}

#[test]
fn the_mux_hot_path_allocates_nothing() {
    let mut net = Net::new(origin(), MuxConfig::default());
    for i in 0..48 {
        net.add_pair(1000 + i, i % 4 != 0);
    }
    assert!(net.connect_all(), "every pair connects");
    // Warm up: consent checks and data for a while, so every queue and table has grown.
    net.run_for(Duration::from_secs(12), Duration::from_millis(50));
    assert!(net.all_connected());
    let now = net.now;
    let n = net.clients.len();

    // Data from each client, captured once, replayed many times.
    let data: Vec<_> = (0..n)
        .map(|i| net.client_send(i, format!("from client {i}").as_bytes()))
        .collect();
    // A real check of each client (a consent check), captured on the wire.
    net.capture(true);
    net.run_for(Duration::from_secs(7), Duration::from_millis(50));
    net.capture(false);
    let checks: Vec<_> = net
        .captured
        .drain(..)
        .filter(|t| {
            Message::parse(&t.data)
                .is_ok_and(|m| m.class() == MessageClass::Request && m.method() == Method::BINDING)
        })
        .collect();
    assert!(checks.len() >= n, "every client sent a consent check");
    let from = "203.0.113.66:9999".parse().expect("an address");
    let flood: Vec<Vec<u8>> = (0..=255u8)
        .flat_map(|k| {
            [
                check(&format!("unknown{k}:peer"), k),
                check(&format!("nocolon{k}"), k),
                format!("not STUN {k}").into_bytes(),
            ]
        })
        .collect();
    let agents = net.mux.len();

    // 1. Routing, whatever the packet.
    let routed = allocations_in(|| {
        let mut found = 0;
        for _ in 0..10 {
            for t in data.iter().chain(&checks) {
                found += usize::from(net.mux.route(&udp(t.from, t.to, &t.data)).is_ok());
            }
            for f in &flood {
                found += usize::from(net.mux.route(&udp(from, shared(), f)).is_ok());
            }
        }
        assert_eq!(found, 10 * (data.len() + checks.len()));
    });
    assert_eq!(routed, 0, "Mux::route allocated");

    // 2. Floods: dropped, counted, nothing allocated, no table grows.
    let sizes = (net.mux.ufrag_count(), net.mux.tuple_count());
    let before = net.mux.stats();
    let dropped = allocations_in(|| {
        for _ in 0..10 {
            for f in &flood {
                let got = net.mux.handle_incoming(now, udp(from, shared(), f));
                assert!(matches!(got, MuxIncoming::Dropped(_)));
            }
        }
    });
    assert_eq!(dropped, 0, "dropping a flood allocated");
    let after = net.mux.stats();
    assert_eq!(
        after.dropped_unknown_ufrag - before.dropped_unknown_ufrag,
        2560
    );
    assert_eq!(
        after.dropped_malformed_username - before.dropped_malformed_username,
        2560
    );
    assert_eq!(
        after.dropped_unknown_source - before.dropped_unknown_source,
        2560
    );
    assert_eq!((net.mux.ufrag_count(), net.mux.tuple_count()), sizes);
    assert_eq!(
        net.mux
            .route(&udp(from, shared(), &check("nocolon", 1)))
            .err(),
        Some(MuxDrop::MalformedUsername)
    );

    // 3. Application data through the mux into the agents, lite and full.
    let delivered = allocations_in(|| {
        let mut got = 0;
        for _ in 0..10 {
            for t in &data {
                if let MuxIncoming::Data(..) =
                    net.mux.handle_incoming(now, udp(t.from, t.to, &t.data))
                {
                    got += 1;
                }
            }
        }
        assert_eq!(got, 10 * n);
    });
    assert_eq!(delivered, 0, "delivering data through the mux allocated");

    // 4. A check: the mux adds nothing to what the agent allocates to answer it (its
    // response). Same check, once straight into the agent, once through the mux.
    let t = &checks[0];
    let id = net.mux.route(&udp(t.from, t.to, &t.data)).expect("routed");
    let direct = allocations_in(|| {
        let mut agent = net.mux.agent_mut(id).expect("present");
        let _ = agent.handle_incoming(now, udp(t.from, t.to, &t.data));
    });
    // The answer goes out before the next check comes, as a driver sends it.
    while net.mux.poll_transmit(now).is_some() {}
    let routed_check = allocations_in(|| {
        let _ = net.mux.handle_incoming(now, udp(t.from, t.to, &t.data));
    });
    println!("a check: {direct} allocations in the agent, {routed_check} through the mux");
    assert_eq!(routed_check, direct, "routing a check allocated");
    // The agent's answer costs two allocations: the answer's bytes and the slot of its
    // output queue, which an idle agent gives back (96 B an agent, kept until 2026-12 at
    // the price of memory in every one of a server's idle agents).
    assert!(direct <= 2, "answering a check took {direct} allocations");
    assert_eq!(net.mux.len(), agents);
}
