//! ICE agent benchmark: the cost of handling one incoming connectivity check (parse,
//! authenticate, answer, find the pair, apply the triggered-check rules) on an agent whose
//! check list holds 10 candidate pairs and on one that holds 1,000. Per-packet look-ups are
//! by key (binary searches over sorted entries), so the two should cost nearly the same; BENCHMARKS.md records the
//! ratio.
//!
//! Run: `cargo bench -p librice-proto --bench agent`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use librice_proto::agent::{Agent, AgentConfig};
use librice_proto::candidate::{Candidate, CandidateTransport, CandidateType, IceCredentials};
use librice_proto::stun::attr::{IceControlling, Priority, Username};
use librice_proto::stun::{IntegrityKey, MessageType, MessageWriter, TransactionId};
use librice_proto::{Transmit, TransportType};

const REMOTE_UFRAG: &str = "rEmO";
const REMOTE_PWD: &str = "remotepasswordremotepassword";

/// A controlled agent with one local socket and `pairs` remote candidates, plus a check from
/// the remote candidate in the middle of the list.
fn setup(pairs: usize, now: Instant) -> (Agent, SocketAddr, SocketAddr, Vec<u8>) {
    let local: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    let mut agent = Agent::new(
        AgentConfig::default()
            .controlling(false)
            .rng_seed(1)
            .max_pairs(pairs),
    );
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).unwrap();
    let c = s.add_component().unwrap();
    s.add_local_socket(c, TransportType::Udp, local).unwrap();
    s.gather_candidates(now).unwrap();
    s.set_remote_credentials(IceCredentials::new(REMOTE_UFRAG, REMOTE_PWD).unwrap());
    for i in 0..pairs {
        let port = 10_000 + u16::try_from(i).unwrap();
        let addr = SocketAddr::new("198.51.100.7".parse().unwrap(), port);
        let cand = Candidate::builder(
            format!("r{i}"),
            CandidateType::Host,
            CandidateTransport::Udp,
            addr,
        )
        .component(c)
        .local_preference(u16::try_from(65535 - i).unwrap())
        .build()
        .unwrap();
        s.add_remote_candidate(cand).unwrap();
    }
    let local_creds = s.local_credentials().clone();
    assert_eq!(s.pairs().len(), pairs);
    let from = SocketAddr::new("198.51.100.7".parse().unwrap(), 10_000 + (pairs / 2) as u16);
    // Drain what setting up produced (events, the first check) so the loop measures the
    // steady state.
    while agent.poll_transmit(now).is_some() {}
    while agent.poll_event().is_some() {}

    let key = IntegrityKey::short_term(local_creds.pwd()).unwrap();
    let mut check = Vec::new();
    let mut w = MessageWriter::new(
        &mut check,
        MessageType::BINDING_REQUEST,
        TransactionId([7; 12]),
    );
    w.add(&Username(&format!(
        "{}:{REMOTE_UFRAG}",
        local_creds.ufrag()
    )))
    .unwrap();
    w.add(&Priority(1_845_501_695)).unwrap();
    w.add(&IceControlling(0x0102_0304_0506_0708)).unwrap();
    w.add_message_integrity(&key).unwrap();
    w.add_fingerprint().unwrap();
    (agent, local, from, check)
}

#[allow(clippy::disallowed_methods)] // the benchmark's one read of the real clock
fn origin() -> Instant {
    Instant::now()
}

fn incoming_check(c: &mut Criterion) {
    let now = origin();
    let mut group = c.benchmark_group("incoming_check");
    for pairs in [10usize, 1000] {
        let (mut agent, local, from, check) = setup(pairs, now);
        group.bench_function(format!("{pairs}_pairs"), |b| {
            b.iter(|| {
                let t = Transmit {
                    transport: TransportType::Udp,
                    from,
                    to: local,
                    data: check.as_slice(),
                };
                assert!(agent.handle_incoming(now, black_box(t)).is_none());
                let response = agent.poll_transmit(now).expect("a response");
                black_box(response.data);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, incoming_check);
criterion_main!(benches);
