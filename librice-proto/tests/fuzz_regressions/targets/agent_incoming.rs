//! The `agent_incoming` fuzz target.
//!
//! Fuzzes the ICE agent's input path: a controlled and a controlling agent with known
//! credentials get arbitrary datagrams (raw, or turned into authenticated STUN requests and
//! responses with fuzzed attributes) from fuzzed sources, interleaved with timeouts and
//! polls. Besides "never panics", it checks that nothing the agent sends is a Binding success
//! answering an unauthenticated request, and that the agent's output stays bounded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::agent::{Agent, AgentConfig};
use librice_proto::candidate::{Candidate, CandidateTransport, CandidateType, IceCredentials};
use librice_proto::stun::attr::{
    IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use librice_proto::stun::{
    IntegrityKey, Message, MessageClass, MessageType, MessageWriter, Method, TransactionId,
};
use librice_proto::{Transmit, TransportType};

const REMOTE_UFRAG: &str = "fUzZ";
const REMOTE_PWD: &str = "fuzzpasswordfuzzpassword";

fn agent(controlling: bool, now: Instant) -> (Agent, SocketAddr, IceCredentials) {
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5000);
    let mut agent = Agent::new(AgentConfig::default().controlling(controlling).rng_seed(3));
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).unwrap();
    let c = s.add_component().unwrap();
    s.add_local_socket(c, TransportType::Udp, local).unwrap();
    s.gather_candidates(now).unwrap();
    s.set_remote_credentials(IceCredentials::new(REMOTE_UFRAG, REMOTE_PWD).unwrap());
    for port in [6000u16, 6001] {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), port);
        let cand = Candidate::builder("r", CandidateType::Host, CandidateTransport::Udp, addr)
            .build()
            .unwrap();
        s.add_remote_candidate(cand).unwrap();
    }
    let creds = s.local_credentials().clone();
    (agent, local, creds)
}

/// An authenticated request or response built from fuzz bytes.
fn crafted(bytes: &[u8], creds: &IceCredentials, txid: TransactionId) -> Vec<u8> {
    let flags = bytes.first().copied().unwrap_or(0);
    let mut buf = Vec::new();
    let class = match flags & 3 {
        0 => MessageClass::Request,
        1 => MessageClass::Success,
        2 => MessageClass::Error,
        _ => MessageClass::Indication,
    };
    let mut w = MessageWriter::new(&mut buf, MessageType::new(class, Method::BINDING), txid);
    let username = format!("{}:{REMOTE_UFRAG}", creds.ufrag());
    let _ = w.add(&Username(&username));
    let word = u64::from_le_bytes(
        bytes
            .get(1..9)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    );
    if flags & 4 != 0 {
        let _ = w.add(&Priority(word as u32));
    }
    if flags & 8 != 0 {
        let _ = w.add(&IceControlling(word));
    }
    if flags & 16 != 0 {
        let _ = w.add(&IceControlled(word.rotate_left(7)));
    }
    if flags & 32 != 0 {
        let _ = w.add(&UseCandidate);
    }
    if flags & 64 != 0 {
        let port = word as u16;
        let _ = w.add(&XorMappedAddress(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            port,
        )));
    }
    let key = if class == MessageClass::Request {
        IntegrityKey::short_term(creds.pwd()).unwrap()
    } else {
        IntegrityKey::short_term(REMOTE_PWD).unwrap()
    };
    if flags & 128 == 0 {
        let _ = w.add_message_integrity(&key);
    }
    let _ = w.add_fingerprint();
    buf
}

/// Runs one input.
pub fn run(data: &[u8]) {
    #[allow(clippy::disallowed_methods)] // the fuzzer only needs some instant as a clock origin
    let start = Instant::now();
    for controlling in [false, true] {
        let (mut agent, local, creds) = agent(controlling, start);
        let mut now = start;
        let mut last_txid = TransactionId([0; 12]);
        let mut sent = 0usize;
        for chunk in data.chunks(48) {
            let op = chunk[0];
            let port = 6000 + u16::from(op & 3);
            let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), port);
            let payload = match op >> 6 {
                0 => chunk[1..].to_vec(),
                1 | 2 => crafted(
                    &chunk[1..],
                    &creds,
                    if op & 4 != 0 {
                        last_txid
                    } else {
                        TransactionId([op; 12])
                    },
                ),
                _ => {
                    now += Duration::from_millis(u64::from(op & 63) * 20);
                    agent.handle_timeout(now);
                    Vec::new()
                }
            };
            if !payload.is_empty() {
                let unauthenticated = Message::parse(&payload)
                    .map(|m| {
                        m.class() == MessageClass::Request
                            && m.check_integrity(&IntegrityKey::short_term(creds.pwd()).unwrap())
                                .is_err()
                    })
                    .unwrap_or(true);
                let request_id = Message::parse(&payload).ok().map(|m| m.transaction_id());
                let t = Transmit {
                    transport: TransportType::Udp,
                    from,
                    to: local,
                    data: payload.as_slice(),
                };
                let _ = agent.handle_incoming(now, t);
                while let Some(out) = agent.poll_transmit(now) {
                    sent += 1;
                    assert!(sent < 100_000, "unbounded output");
                    if let Ok(m) = Message::parse(&out.data) {
                        if m.class() == MessageClass::Request {
                            last_txid = m.transaction_id();
                        }
                        if unauthenticated && Some(m.transaction_id()) == request_id {
                            assert_ne!(
                                m.class(),
                                MessageClass::Success,
                                "success for an unauthenticated request"
                            );
                        }
                    }
                }
            }
            while agent.poll_transmit(now).is_some() {}
            while agent.poll_event().is_some() {}
            let _ = agent.poll_timeout();
        }
    }
}
