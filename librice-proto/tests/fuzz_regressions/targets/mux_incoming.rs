//! The `mux_incoming` fuzz target.
//!
//! Fuzzes the server's input path: a `Mux` with small table bounds holding two lite agents
//! and a full one on one shared address gets arbitrary datagrams from fuzzed sources (raw
//! bytes, checks with a fuzzed USERNAME, checks signed for one of the agents so that they
//! are answered and teach tuples), interleaved with timeouts, polls, and the removal and
//! re-adding of an agent. Besides "never panics", it checks that `route` names the agent
//! `handle_incoming` then hands the packet to (or the same drop), that the tuple and
//! transaction tables stay within their bounds whatever arrives, and that every agent's
//! ufrag stays registered.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::agent::{Agent, AgentConfig, StreamId};
use librice_proto::candidate::{Candidate, CandidateTransport, CandidateType, IceCredentials};
use librice_proto::mux::{Mux, MuxAgentId, MuxConfig, MuxIncoming};
use librice_proto::stun::TransactionId;
use librice_proto::stun::attr::{IceControlling, Priority, UseCandidate, Username};
use librice_proto::stun::{IntegrityKey, MessageClass, MessageType, MessageWriter, Method};
use librice_proto::{Transmit, TransportType};

const REMOTE_UFRAG: &str = "fUzZ";
const REMOTE_PWD: &str = "fuzzpasswordfuzzpassword";
const PER_AGENT: usize = 2;
const TUPLES: usize = 4;
const TRANSACTIONS: usize = 4;

fn shared() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 3478)
}

/// Agent `seed`: lite for even seeds, full (controlled) for odd ones, knowing the remote
/// credentials and two remote candidates.
fn agent(seed: u64, now: Instant) -> Agent {
    let config = if seed.is_multiple_of(2) {
        AgentConfig::default().lite(true)
    } else {
        AgentConfig::default().controlling(false)
    };
    let mut agent = Agent::new(config.rng_seed(seed));
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).unwrap();
    let c = s.add_component().unwrap();
    s.add_local_socket(c, TransportType::Udp, shared()).unwrap();
    s.gather_candidates(now).unwrap();
    s.set_remote_credentials(IceCredentials::new(REMOTE_UFRAG, REMOTE_PWD).unwrap());
    for port in [6000u16, 6001] {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), port);
        let cand = Candidate::builder("r", CandidateType::Host, CandidateTransport::Udp, addr)
            .build()
            .unwrap();
        s.add_remote_candidate(cand).unwrap();
    }
    agent
}

fn credentials(mux: &mut Mux, id: MuxAgentId) -> IceCredentials {
    mux.agent_mut(id)
        .unwrap()
        .stream_mut(StreamId::from_index(0))
        .unwrap()
        .local_credentials()
        .clone()
}

/// A check for `creds`' agent, signed with its password unless `flags & 128`.
fn signed_check(bytes: &[u8], creds: &IceCredentials, n: u8) -> Vec<u8> {
    let flags = bytes.first().copied().unwrap_or(0);
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(MessageClass::Request, Method::BINDING),
        TransactionId([n; 12]),
    );
    let _ = w.add(&Username(&format!("{}:{REMOTE_UFRAG}", creds.ufrag())));
    let _ = w.add(&Priority(u32::from(flags) << 16 | 1));
    let _ = w.add(&IceControlling(u64::from(n)));
    if flags & 1 != 0 {
        let _ = w.add(&UseCandidate);
    }
    if flags & 128 == 0 {
        let _ = w.add_message_integrity(&IntegrityKey::short_term(creds.pwd()).unwrap());
    }
    let _ = w.add_fingerprint();
    buf
}

/// A check whose USERNAME is fuzz bytes, after a known ufrag when `known`.
fn username_check(bytes: &[u8], known: Option<&str>, n: u8) -> Vec<u8> {
    let mut username = known.map(str::as_bytes).unwrap_or_default().to_vec();
    username.extend_from_slice(bytes);
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(MessageClass::Request, Method::BINDING),
        TransactionId([n; 12]),
    );
    let _ = w.add_raw(
        librice_proto::stun::attr::AttributeType::USERNAME,
        &username,
    );
    let _ = w.finish();
    buf
}

fn check_bounds(mux: &Mux) {
    assert!(mux.tuple_count() <= TUPLES, "tuple table over its bound");
    assert!(
        mux.transaction_count() <= TRANSACTIONS,
        "transactions over their bound"
    );
    for id in mux.agent_ids() {
        assert!(
            mux.tuples_of(id) <= PER_AGENT,
            "agent {id} over its tuple bound"
        );
    }
    assert_eq!(
        mux.ufrag_count(),
        mux.len(),
        "an agent's ufrag is not registered"
    );
}

/// Runs one input.
pub fn run(data: &[u8]) {
    #[allow(clippy::disallowed_methods)] // the fuzzer only needs some instant as a clock origin
    let start = Instant::now();
    let mut now = start;
    let mut mux = Mux::new(
        MuxConfig::default()
            .max_tuples_per_agent(PER_AGENT)
            .max_tuples(TUPLES)
            .max_transactions(TRANSACTIONS),
    );
    let mut next_seed = 0u64;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(mux.add_agent(agent(next_seed, now)).unwrap());
        next_seed += 1;
    }
    let mut sent = 0usize;
    for chunk in data.chunks(40) {
        let op = chunk[0];
        let port = 6000 + u16::from((op >> 2) & 3);
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), port);
        let target = ids[usize::from(op & 3) % ids.len()];
        let payload = match op >> 6 {
            0 => chunk[1..].to_vec(),
            1 => {
                let creds = credentials(&mut mux, target);
                signed_check(&chunk[1..], &creds, op)
            }
            2 => {
                let creds = credentials(&mut mux, target);
                let known = (op & 16 != 0).then(|| creds.ufrag().to_owned());
                username_check(&chunk[1..], known.as_deref(), op)
            }
            _ if op == 0xFF => {
                // The first agent leaves; a new one comes.
                let gone = ids.remove(0);
                assert!(mux.remove_agent(gone).is_some());
                assert!(mux.agent(gone).is_none());
                ids.push(mux.add_agent(agent(next_seed, now)).unwrap());
                next_seed += 1;
                Vec::new()
            }
            _ => {
                now += Duration::from_millis(u64::from(op & 63) * 20);
                mux.handle_timeout(now);
                Vec::new()
            }
        };
        if !payload.is_empty() {
            let t = Transmit {
                transport: TransportType::Udp,
                from,
                to: shared(),
                data: payload.as_slice(),
            };
            let expected = mux.route(&t);
            match (mux.handle_incoming(now, t), expected) {
                (MuxIncoming::Data(id, _) | MuxIncoming::Handled(id), Ok(routed)) => {
                    assert_eq!(id, routed, "handle_incoming and route disagree")
                }
                (MuxIncoming::Dropped(why), Err(reason)) => {
                    assert_eq!(why, reason, "handle_incoming and route disagree")
                }
                (got, expected) => panic!("handle_incoming {got:?}, route {expected:?}"),
            }
        }
        while mux.poll_transmit(now).is_some() {
            sent += 1;
            assert!(sent < 100_000, "unbounded output");
        }
        while mux.poll_event().is_some() {}
        while mux.poll_io_request().is_some() {}
        if let Some(deadline) = mux.poll_timeout() {
            assert!(
                mux.agent_ids()
                    .any(|id| mux.agent_timeout(id) == Some(deadline))
            );
        }
        check_bounds(&mux);
    }
}
