//! Server-mode benchmarks: a `Mux` of 10 vs 10,000 connected agents on one address.
//!
//! - `mux/route/N`: `Mux::route` alone (the look-up) for a data packet, cycling over
//!   the clients of all N agents, the input hot in the cache (as a packet just read is).
//! - `mux/data/N`: `Mux::handle_incoming` for a data packet: the look-up plus the
//!   agent's own data path (find the component and pair, check the source, refresh
//!   liveness), cycling over all N agents.
//! - `mux/data-one-agent/N`: the same, always from the same client: the cost with the
//!   agent's state in the cache, which isolates what grows with N from cache misses.
//! - `mux/check/N`: `Mux::handle_incoming` for a consent check: the look-up by ufrag
//!   plus the agent's check handling (authenticate, answer), cycling over all N agents.
//!
//! Before the timings it prints the heap held per connected agent at 1,000 and 10,000
//! agents, lite and full, counted by a counting global allocator (`stats_alloc`): the
//! bytes freed when the mux and its agents are dropped, divided by the number of agents,
//! with what the agents hold and what the mux's tables hold.
//!
//! Run: `cargo bench -p librice-proto --bench mux`

#[path = "../tests/mux_common/mod.rs"]
mod mux_common;

use std::alloc::System;
use std::hint::black_box;
use std::mem::size_of;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use librice_proto::Transmit;
use librice_proto::agent::{Agent, AgentConfig, AgentEvent};
use librice_proto::candidate::Candidate;
use librice_proto::mux::{MuxConfig, MuxIncoming};
use librice_proto::stun::{IntegrityKey, Message, MessageClass, Method};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

use mux_common::{Net, origin, shared, udp};

/// A datagram on the wire.
type Datagram = Transmit<Vec<u8>>;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes of heap in use now. `stats_alloc` adds a reallocation's growth to
/// `bytes_allocated` (and its shrinking to `bytes_deallocated`) as well as to
/// `bytes_reallocated`, so the latter is not added again.
fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// A mux of `n` connected agents, all lite or all full, in a steady state: 12 s of consent checks after connecting.
fn connected(n: usize, lite: bool) -> Net {
    let mut net = Net::new(origin(), MuxConfig::default());
    for i in 0..n {
        net.add_pair(1_000_000 + i as u64, lite);
    }
    assert!(net.connect_all(), "every pair connects");
    net.run_for(Duration::from_secs(12), Duration::from_millis(100));
    assert!(net.all_connected());
    net
}

/// Heap held per connected agent in a mux of `n`, lite or full: (total, what each agent
/// owns, the agent struct itself (boxed in the mux), the mux's tables), in bytes per agent.
fn heap_per_agent(n: usize, lite: bool) -> (f64, f64, f64, f64) {
    let mut net = connected(n, lite);
    let mux = std::mem::take(&mut net.mux);
    let ids: Vec<_> = mux.agent_ids().collect();
    let before = live_bytes();
    let mut mux = mux;
    let mut agents_bytes = 0i64;
    for id in ids {
        let agent = mux.remove_agent(id).expect("present");
        let b = live_bytes();
        drop(agent);
        agents_bytes += b - live_bytes();
    }
    drop(mux);
    let total = before - live_bytes();
    let per = |b: i64| b as f64 / n as f64;
    let inline = (size_of::<Agent>() * n) as i64;
    (
        per(total),
        per(agents_bytes),
        per(inline),
        per(total - agents_bytes - inline),
    )
}

/// Heap of an agent: the bytes freed when it is dropped.
fn heap_of(agent: Agent) -> i64 {
    let before = live_bytes();
    drop(agent);
    before - live_bytes()
}

/// Heap held by one agent at its stages, for the breakdown.
fn agent_stages() {
    let now = origin();
    println!(
        "inline sizes: Agent {} B, AgentEvent {} B, Transmit {} B, IntegrityKey {} B, \
         Candidate {} B",
        size_of::<Agent>(),
        size_of::<AgentEvent>(),
        size_of::<Transmit<Vec<u8>>>(),
        size_of::<IntegrityKey>(),
        size_of::<Candidate>(),
    );
    // A lone agent, step by step.
    let config = AgentConfig::default().lite(true).rng_seed(1);
    // Room for every step before the count starts: its growth is not the agent's.
    let mut steps: Vec<(&str, i64)> = Vec::with_capacity(8);
    let mut a = Agent::new(config.clone());
    let base = live_bytes();
    let sid = a.add_stream();
    steps.push((
        "add_stream (credentials, integrity keys, an empty check list)",
        live_bytes() - base,
    ));
    let mut s = a.stream_mut(sid).expect("stream");
    let c = s.add_component().expect("component");
    steps.push(("add_component", live_bytes() - base));
    s.add_local_socket(c, librice_proto::TransportType::Udp, shared())
        .expect("socket");
    steps.push(("add_local_socket", live_bytes() - base));
    s.gather_candidates(now).expect("gathering");
    steps.push((
        "gather_candidates (host candidate, events queued)",
        live_bytes() - base,
    ));
    while a.poll_event().is_some() {}
    steps.push(("events drained", live_bytes() - base));
    drop(a);
    for (what, bytes) in steps {
        println!("  lite agent heap after {what}: {bytes} B");
    }
    // In a mux, connected, through its life.
    for lite in [true, false] {
        let kind = if lite { "lite" } else { "full" };
        let mut net = Net::new(now, MuxConfig::default());
        let id = net.add_pair(7, lite);
        // Earlier stages are measured on twins (same seeds, same history), so that the
        // agent followed is not consumed.
        let signalled = {
            let mut twin = Net::new(now, MuxConfig::default());
            let tid = twin.add_pair(7, lite);
            heap_of(twin.mux.remove_agent(tid).expect("present"))
        };
        assert!(net.connect_all());
        let connected = {
            let mut twin = Net::new(now, MuxConfig::default());
            let tid = twin.add_pair(7, lite);
            assert!(twin.connect_all());
            heap_of(twin.mux.remove_agent(tid).expect("present"))
        };
        net.run_for(Duration::from_secs(12), Duration::from_millis(100));
        let steady = heap_of(net.mux.remove_agent(id).expect("present"));
        println!(
            "  {kind} agent in a mux: heap {signalled} B once signalled (remote credentials \
             and candidates), {connected} B when connected, {steady} B after 12 s of consent"
        );
    }
}

fn memory_report() {
    agent_stages();
    for lite in [true, false] {
        for n in [1_000, 10_000] {
            let (total, agents, inline, tables) = heap_per_agent(n, lite);
            println!(
                "heap per connected {} agent, {n} agents: {total:.0} B ({agents:.0} B owned by \
                 the agent, {inline:.0} B the agent struct, {tables:.0} B the mux's tables)",
                if lite { "lite" } else { "full" },
            );
        }
    }
}

/// Per-agent packets of a connected mux: each client's data, and each client's consent
/// check.
fn packets(net: &mut Net) -> (Vec<Datagram>, Vec<Datagram>) {
    let n = net.clients.len();
    let data = (0..n).map(|i| net.client_send(i, &[0x80u8; 160])).collect();
    net.capture(true);
    net.run_for(Duration::from_secs(7), Duration::from_millis(100));
    net.capture(false);
    let mut checks: Vec<_> = net
        .captured
        .drain(..)
        .filter(|t| {
            Message::parse(&t.data)
                .is_ok_and(|m| m.class() == MessageClass::Request && m.method() == Method::BINDING)
        })
        .collect();
    // One per client.
    checks.sort_by_key(|t| t.from);
    checks.dedup_by_key(|t| t.from);
    assert_eq!(checks.len(), n, "every client sent a consent check");
    (data, checks)
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("mux");
    for n in [10, 10_000] {
        let mut net = connected(n, true);
        let (data, checks) = packets(&mut net);
        let now = net.now;
        let mut i = 0;
        // The look-up alone, its input hot in the cache as a packet just read from the
        // socket is: the clients' 5-tuples side by side, one payload for all (a data
        // packet is routed by its 5-tuple whatever its bytes).
        let tuples: Vec<_> = data.iter().map(|t| (t.from, t.to)).collect();
        let payload = data[0].data.clone();
        group.bench_function(format!("route/{n}"), |b| {
            b.iter(|| {
                let (from, to) = tuples[i % n];
                i += 1;
                black_box(net.mux.route(&udp(from, to, &payload)))
            })
        });
        group.bench_function(format!("data/{n}"), |b| {
            b.iter(|| {
                let t = &data[i % n];
                i += 1;
                let got = net.mux.handle_incoming(now, udp(t.from, t.to, &t.data));
                debug_assert!(matches!(got, MuxIncoming::Data(..)));
                black_box(matches!(got, MuxIncoming::Data(..)))
            })
        });
        // The same client again and again: the look-up's own cost, caches warm.
        group.bench_function(format!("data-one-agent/{n}"), |b| {
            let t = &data[n / 2];
            b.iter(|| {
                let got = net.mux.handle_incoming(now, udp(t.from, t.to, &t.data));
                black_box(matches!(got, MuxIncoming::Data(..)))
            })
        });
        group.bench_function(format!("check/{n}"), |b| {
            b.iter(|| {
                let t = &checks[i % n];
                i += 1;
                let got = net.mux.handle_incoming(now, udp(t.from, t.to, &t.data));
                // Drain the answer so that queues stay short, as a driver does.
                while net.mux.poll_transmit(now).is_some() {}
                while net.mux.poll_event().is_some() {}
                black_box(got)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = routing
}

fn main() {
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
