//! Unit tests of the agent: one or two agents driven by hand at a virtual `now`, and a
//! hand-written peer where the exact bytes on the wire matter.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    Agent, AgentConfig, AgentError, AgentEvent, CheckFailures, ComponentId, ComponentState,
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_TA, FailureReason, IoRequest, MIN_TA, PairInfo, PairState,
    StreamId, StunServer, UsageError,
};
use crate::candidate::{Candidate, CandidateTransport, CandidateType, IceCredentials, TcpType};
use crate::stun::attr::{
    ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use crate::stun::transaction::RetransmitConfig;
use crate::stun::{
    IntegrityKey, Message, MessageClass, MessageType, MessageWriter, Method, TransactionId,
};
use crate::{Transmit, TransportType};

// ---------------------------------------------------------------------------------------
// Helpers

/// The first and second streams of an agent.
const S0: StreamId = StreamId::from_index(0);
const S1: StreamId = StreamId::from_index(1);

/// The first component of a stream.
const RTP: ComponentId = ComponentId::RTP;

/// The virtual clock's origin: the only real clock read.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

/// An agent with one stream of one component, a UDP socket at each address, gathering
/// started at `now` and its first events dropped.
fn agent(config: AgentConfig, sockets: &[&str], now: Instant) -> Agent {
    let mut a = Agent::new(config);
    let sid = a.add_stream();
    let mut s = a.stream_mut(sid).expect("stream");
    let c = s.add_component().expect("component");
    for socket in sockets {
        s.add_local_socket(c, TransportType::Udp, addr(socket))
            .expect("socket");
    }
    s.gather_candidates(now).expect("gathering");
    events(&mut a);
    a
}

fn events(a: &mut Agent) -> Vec<AgentEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn role_changes(events: &[AgentEvent]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::RoleChange { controlling } => Some(*controlling),
            _ => None,
        })
        .collect()
}

fn selections(events: &[AgentEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AgentEvent::SelectedPair { .. }))
        .count()
}

fn host(foundation: &str, address: &str, priority: u32) -> Candidate {
    Candidate::builder(
        foundation,
        CandidateType::Host,
        CandidateTransport::Udp,
        addr(address),
    )
    .priority(priority)
    .build()
    .expect("candidate")
}

/// Gives `to` the credentials and local candidates of stream `sid` of `from`.
fn tell(from: &mut Agent, to: &mut Agent, sid: StreamId) {
    let f = from.stream_mut(sid).expect("stream");
    let creds = f.local_credentials().clone();
    let candidates = f.local_candidates();
    let mut t = to.stream_mut(sid).expect("stream");
    t.set_remote_credentials(creds);
    for c in candidates {
        t.add_remote_candidate(c).expect("remote candidate");
    }
}

fn creds(a: &mut Agent) -> IceCredentials {
    a.stream_mut(S0)
        .expect("stream")
        .local_credentials()
        .clone()
}

fn pairs(a: &mut Agent, sid: StreamId) -> Vec<PairInfo> {
    a.stream_mut(sid).expect("stream").pairs()
}

/// The check-list pair of stream `sid` whose remote candidate is at `remote`.
fn pair_to(a: &mut Agent, sid: StreamId, remote: SocketAddr) -> PairInfo {
    pairs(a, sid)
        .into_iter()
        .find(|p| p.in_checklist && p.remote.address() == remote)
        .unwrap_or_else(|| panic!("no pair to {remote}"))
}

fn deliver(to: &mut Agent, now: Instant, t: &Transmit<Vec<u8>>) {
    let _ = to.handle_incoming(
        now,
        Transmit {
            transport: t.transport,
            from: t.from,
            to: t.to,
            data: t.data.as_slice(),
        },
    );
}

/// Delivers `data` to `to` as if sent from `from` to `local`.
fn inject(to: &mut Agent, now: Instant, from: SocketAddr, local: SocketAddr, data: &[u8]) {
    let _ = to.handle_incoming(
        now,
        Transmit {
            transport: TransportType::Udp,
            from,
            to: local,
            data,
        },
    );
}

fn parse(t: &Transmit<Vec<u8>>) -> Message<'_> {
    Message::parse(&t.data).expect("STUN")
}

fn is_binding_request(t: &Transmit<Vec<u8>>) -> bool {
    Message::parse(&t.data).is_ok_and(|m| m.message_type() == MessageType::BINDING_REQUEST)
}

fn is_binding_indication(t: &Transmit<Vec<u8>>) -> bool {
    Message::parse(&t.data).is_ok_and(|m| m.message_type() == MessageType::BINDING_INDICATION)
}

/// One datagram moved between two agents: when, whether `a` sent it, and what.
type Logged = (Instant, bool, Transmit<Vec<u8>>);

/// Moves datagrams between `a` and `b` at `now` until neither has any left.
fn shuttle(a: &mut Agent, b: &mut Agent, now: Instant, log: &mut Vec<Logged>) {
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit(now) {
            deliver(b, now, &t);
            log.push((now, true, t));
            moved = true;
        }
        while let Some(t) = b.poll_transmit(now) {
            deliver(a, now, &t);
            log.push((now, false, t));
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

/// Runs two agents on a zero-latency link from `now` until `stop` holds (returns that
/// time) or `until` (returns `until`).
fn drive(
    a: &mut Agent,
    b: &mut Agent,
    mut now: Instant,
    until: Instant,
    log: &mut Vec<Logged>,
    mut stop: impl FnMut(&Agent, &Agent) -> bool,
) -> Instant {
    for _ in 0..100_000 {
        shuttle(a, b, now, log);
        if stop(a, b) {
            return now;
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= until => now = now.max(t),
            _ => return until,
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    panic!("agents busy-loop at {now:?}");
}

/// Runs one agent, dropping what it sends (logged with the time), until `stop` holds or
/// `until`.
fn drive_alone(
    a: &mut Agent,
    mut now: Instant,
    until: Instant,
    log: &mut Vec<(Instant, Transmit<Vec<u8>>)>,
    mut stop: impl FnMut(&mut Agent) -> bool,
) -> Instant {
    for _ in 0..100_000 {
        while let Some(t) = a.poll_transmit(now) {
            log.push((now, t));
        }
        if stop(a) {
            return now;
        }
        match a.poll_timeout() {
            Some(t) if t <= until => now = now.max(t),
            _ => return until,
        }
        a.handle_timeout(now);
    }
    panic!("agent busy-loops at {now:?}");
}

// A peer written by hand.

const PEER_UFRAG: &str = "peer";
const PEER_PWD: &str = "peerpasswordpeerpassword";
const WRONG_PWD: &str = "wrongpasswordwrongpassword";
/// A host candidate priority (type 126, local preference 65535, component 1).
const HOST_PRIORITY: u32 = (126 << 24) | (65535 << 8) | 255;

fn peer_creds() -> IceCredentials {
    IceCredentials::new(PEER_UFRAG, PEER_PWD).expect("credentials")
}

fn key(pwd: &str) -> IntegrityKey {
    IntegrityKey::short_term(pwd).expect("key")
}

/// What goes in a hand-written connectivity check.
struct CheckSpec<'a> {
    username: &'a str,
    key: &'a IntegrityKey,
    priority: Option<u32>,
    controlling: Option<u64>,
    controlled: Option<u64>,
    use_candidate: bool,
}

fn write_check(tid: TransactionId, spec: &CheckSpec<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, tid);
    w.add(&Username(spec.username)).unwrap();
    if let Some(p) = spec.priority {
        w.add(&Priority(p)).unwrap();
    }
    if let Some(t) = spec.controlling {
        w.add(&IceControlling(t)).unwrap();
    }
    if let Some(t) = spec.controlled {
        w.add(&IceControlled(t)).unwrap();
    }
    if spec.use_candidate {
        w.add(&UseCandidate).unwrap();
    }
    w.add_message_integrity(spec.key).unwrap();
    w.add_fingerprint().unwrap();
    buf
}

fn write_success(tid: TransactionId, mapped: SocketAddr, key: Option<&IntegrityKey>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, tid);
    w.add(&XorMappedAddress(mapped)).unwrap();
    if let Some(k) = key {
        w.add_message_integrity(k).unwrap();
    }
    w.add_fingerprint().unwrap();
    buf
}

fn write_error(tid: TransactionId, code: u16, key: Option<&IntegrityKey>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_ERROR, tid);
    w.add(&ErrorCode::with_default_reason(code)).unwrap();
    if let Some(k) = key {
        w.add_message_integrity(k).unwrap();
    }
    w.add_fingerprint().unwrap();
    buf
}

const LOCAL: &str = "192.0.2.2:6000";
const PEER: &str = "192.0.2.1:5000";

/// An agent at [`LOCAL`] that knows the hand-written peer at [`PEER`] (credentials and one
/// host candidate).
fn agent_with_peer(controlling: bool, now: Instant) -> Agent {
    let mut a = agent(config(controlling, 2), &[LOCAL], now);
    let mut s = a.stream_mut(S0).unwrap();
    s.set_remote_credentials(peer_creds());
    s.add_remote_candidate(host("peer1", PEER, HOST_PRIORITY))
        .unwrap();
    a
}

// ---------------------------------------------------------------------------------------
// Pair priorities and check lists

/// RFC 8445 §6.1.2.3, computed here independently of the agent.
fn rfc_pair_priority(g: u32, d: u32) -> u64 {
    let (g, d) = (u64::from(g), u64::from(d));
    (1u64 << 32) * g.min(d) + 2 * g.max(d) + u64::from(g > d)
}

#[test]
fn pair_priority_formula_is_the_same_from_both_sides() {
    let t0 = origin();
    let mut a = agent(config(true, 1), &["192.0.2.1:5000", "192.0.2.11:5000"], t0);
    let mut b = agent(config(false, 2), &["192.0.2.2:6000", "192.0.2.12:6000"], t0);
    tell(&mut a, &mut b, S0);
    tell(&mut b, &mut a, S0);
    let pa = pairs(&mut a, S0);
    let pb = pairs(&mut b, S0);
    assert_eq!(pa.len(), 4);
    assert_eq!(pb.len(), 4);
    let mut relations = Vec::new();
    for p in &pa {
        // A controls: G is A's candidate priority, D is B's.
        let (g, d) = (p.local.priority(), p.remote.priority());
        assert_eq!(p.priority, rfc_pair_priority(g, d), "{p:?}");
        relations.push(g.cmp(&d));
        let mirror = pb
            .iter()
            .find(|q| {
                q.local.address() == p.remote.address() && q.remote.address() == p.local.address()
            })
            .expect("the same pair on B");
        assert_eq!(mirror.priority, p.priority, "same priority seen from B");
    }
    // The pairs cover G > D, G < D and G = D.
    relations.sort();
    relations.dedup();
    assert_eq!(relations.len(), 3, "{relations:?}");
    // pairs() lists the check list highest priority first.
    assert!(pa.windows(2).all(|w| w[0].priority >= w[1].priority));
    // Exact value for the two best host candidates: G = D = HOST_PRIORITY.
    assert_eq!(
        pa[0].priority,
        (u64::from(HOST_PRIORITY) << 32) + 2 * u64::from(HOST_PRIORITY)
    );
}

#[test]
fn first_check_at_once_then_every_ta() {
    let t0 = origin();
    let mut a = agent(config(true, 1), &["192.0.2.1:5000"], t0);
    {
        let mut s = a.stream_mut(S0).unwrap();
        s.add_remote_candidate(host("r1", "192.0.2.2:6000", 2_000_000_000))
            .unwrap();
        s.add_remote_candidate(host("r2", "192.0.2.3:6000", 1_000_000_000))
            .unwrap();
    }
    // No check without the peer's credentials, and no timer either.
    assert!(a.poll_transmit(t0).is_none());
    assert_eq!(a.poll_timeout(), None);
    a.stream_mut(S0)
        .unwrap()
        .set_remote_credentials(peer_creds());
    let ta = a.config().ta_interval();
    assert_eq!(ta, DEFAULT_TA);
    let first = a
        .poll_transmit(t0)
        .expect("first check without waiting for Ta");
    assert!(is_binding_request(&first));
    assert_eq!(first.to, addr("192.0.2.2:6000"), "best pair first");
    assert!(a.poll_transmit(t0).is_none());
    assert_eq!(a.poll_timeout(), Some(t0 + ta));
    assert!(a.poll_transmit(t0 + ta - ms(1)).is_none());
    a.handle_timeout(t0 + ta - ms(1));
    assert!(a.poll_transmit(t0 + ta - ms(1)).is_none());
    assert_eq!(a.poll_timeout(), Some(t0 + ta));
    let second = a.poll_transmit(t0 + ta).expect("second check at Ta");
    assert!(is_binding_request(&second));
    assert_eq!(second.to, addr("192.0.2.3:6000"));
    assert!(a.poll_transmit(t0 + ta).is_none());
}

#[test]
fn ta_below_5ms_is_raised_to_5ms() {
    assert_eq!(MIN_TA, ms(5));
    assert_eq!(AgentConfig::default().ta(ms(1)).ta_interval(), ms(5));
    assert_eq!(AgentConfig::default().ta(ms(20)).ta_interval(), ms(20));
    // And the pacing follows: the second check comes 5 ms after the first.
    let t0 = origin();
    let mut a = agent(config(true, 1).ta(ms(1)), &["192.0.2.1:5000"], t0);
    {
        let mut s = a.stream_mut(S0).unwrap();
        s.add_remote_candidate(host("r1", "192.0.2.2:6000", 2_000_000_000))
            .unwrap();
        s.add_remote_candidate(host("r2", "192.0.2.3:6000", 1_000_000_000))
            .unwrap();
        s.set_remote_credentials(peer_creds());
    }
    assert!(a.poll_transmit(t0).is_some());
    assert!(a.poll_transmit(t0 + ms(1)).is_none());
    assert!(a.poll_transmit(t0 + ms(4)).is_none());
    assert_eq!(a.poll_timeout(), Some(t0 + ms(5)));
    assert!(a.poll_transmit(t0 + ms(5)).is_some());
}

#[test]
fn pair_limit_keeps_the_best_pairs() {
    let t0 = origin();
    let mut a = agent(config(true, 1).max_pairs(3), &["192.0.2.1:5000"], t0);
    let prios = [3000, 5000, 1000, 4000, 2000];
    {
        let mut s = a.stream_mut(S0).unwrap();
        for (i, p) in prios.iter().enumerate() {
            s.add_remote_candidate(host(
                &format!("r{i}"),
                &format!("192.0.2.{}:6000", 10 + i),
                *p,
            ))
            .unwrap();
        }
    }
    let got: Vec<u32> = pairs(&mut a, S0)
        .iter()
        .map(|p| p.remote.priority())
        .collect();
    assert_eq!(got, vec![5000, 4000, 3000]);
}

#[test]
fn redundant_pairs_are_not_duplicated() {
    let t0 = origin();
    let mut a = agent(config(true, 1), &["192.0.2.1:5000"], t0);
    {
        let mut s = a.stream_mut(S0).unwrap();
        s.add_remote_candidate(host("r1", "192.0.2.2:6000", 1000))
            .unwrap();
        // The same remote address again, with another foundation and priority.
        s.add_remote_candidate(host("r2", "192.0.2.2:6000", 2000))
            .unwrap();
        assert_eq!(s.remote_candidates().len(), 1);
    }
    let p = pairs(&mut a, S0);
    assert_eq!(p.len(), 1, "{p:?}");
}

#[test]
fn server_reflexive_candidate_is_not_paired() {
    let t0 = origin();
    let server = addr("198.51.100.1:3478");
    let base = addr("192.0.2.1:5000");
    let mapped = addr("203.0.113.7:40000");
    let mut a = agent(
        config(true, 1).stun_server(StunServer::udp(server)),
        &["192.0.2.1:5000"],
        t0,
    );
    a.stream_mut(S0)
        .unwrap()
        .add_remote_candidate(host("r1", "192.0.2.2:6000", 1000))
        .unwrap();
    let req = a.poll_transmit(t0).expect("STUN request");
    assert_eq!((req.from, req.to), (base, server));
    let tid = parse(&req).transaction_id();
    inject(&mut a, t0, server, base, &write_success(tid, mapped, None));
    let ev = events(&mut a);
    assert!(ev.iter().any(|e| matches!(e, AgentEvent::LocalCandidate { candidate, .. }
        if candidate.candidate_type() == CandidateType::ServerReflexive && candidate.address() == mapped)));
    a.stream_mut(S0)
        .unwrap()
        .add_remote_candidate(host("r2", "192.0.2.3:6000", 2000))
        .unwrap();
    assert_eq!(a.stream_mut(S0).unwrap().local_candidates().len(), 2);
    let p = pairs(&mut a, S0);
    assert_eq!(p.len(), 2, "one pair per remote candidate: {p:?}");
    assert!(
        p.iter()
            .all(|p| p.local.candidate_type() == CandidateType::Host)
    );
}

#[test]
fn initial_states_across_two_streams() {
    let t0 = origin();
    // A is controlled, so that no nomination re-checks its first valid pair.
    let mut a = Agent::new(config(false, 1));
    let mut b = Agent::new(config(true, 2));
    for (x, ip, port) in [(&mut a, "192.0.2.1", 5000), (&mut b, "192.0.2.2", 6000)] {
        for (i, sid) in [S0, S1].into_iter().enumerate() {
            assert_eq!(x.add_stream(), sid);
            let mut s = x.stream_mut(sid).unwrap();
            let c = s.add_component().unwrap();
            s.add_local_socket(
                c,
                TransportType::Udp,
                addr(&format!("{ip}:{}", port + 10 * i)),
            )
            .unwrap();
            s.gather_candidates(t0).unwrap();
        }
        events(x);
    }
    tell(&mut b, &mut a, S0);
    tell(&mut b, &mut a, S1);
    // Stream 1 also gets a candidate of another foundation.
    let other = addr("192.0.2.9:6010");
    a.stream_mut(S1)
        .unwrap()
        .add_remote_candidate(host("zz", "192.0.2.9:6010", 1000))
        .unwrap();
    let b0 = addr("192.0.2.2:6000");
    let b1 = addr("192.0.2.2:6010");
    assert_eq!(pair_to(&mut a, S0, b0).state, PairState::Waiting);
    assert_eq!(pair_to(&mut a, S1, b1).state, PairState::Frozen);
    assert_eq!(pair_to(&mut a, S1, other).state, PairState::Frozen);
    // B answers without checking (it lacks A's credentials).
    let check = a.poll_transmit(t0).expect("check");
    assert_eq!(check.to, b0, "stream 0 is checked first");
    assert_eq!(pair_to(&mut a, S0, b0).state, PairState::InProgress);
    assert_eq!(pair_to(&mut a, S1, b1).state, PairState::Frozen);
    deliver(&mut b, t0, &check);
    let response = b.poll_transmit(t0).expect("response");
    assert_eq!(parse(&response).class(), MessageClass::Success);
    deliver(&mut a, t0, &response);
    assert_eq!(pair_to(&mut a, S0, b0).state, PairState::Succeeded);
    assert_eq!(
        pair_to(&mut a, S1, b1).state,
        PairState::Waiting,
        "same foundation unfrozen"
    );
    assert_eq!(
        pair_to(&mut a, S1, other).state,
        PairState::Frozen,
        "other foundation still frozen"
    );
}

// ---------------------------------------------------------------------------------------
// Role conflicts (RFC 8445 §7.2.5.1, §7.3.1.1)

/// Two agents of the same role that know each other, as (higher tie-breaker, lower).
fn same_role_pair(controlling: bool, t0: Instant) -> (Agent, Agent) {
    let mut a = agent(config(controlling, 11), &["192.0.2.1:5000"], t0);
    let mut b = agent(config(controlling, 12), &["192.0.2.2:6000"], t0);
    tell(&mut a, &mut b, S0);
    tell(&mut b, &mut a, S0);
    assert_ne!(a.tie_breaker(), b.tie_breaker());
    if a.tie_breaker() > b.tie_breaker() {
        (a, b)
    } else {
        (b, a)
    }
}

/// The agent that switches on receiving a check is the lower tie-breaker when both are
/// controlling and the higher one when both are controlled; the other answers 487.
fn switcher_and_refuser(controlling: bool, t0: Instant) -> (Agent, Agent) {
    let (hi, lo) = same_role_pair(controlling, t0);
    if controlling { (lo, hi) } else { (hi, lo) }
}

fn role_conflict_switch_on_check(controlling: bool) {
    let t0 = origin();
    let (mut switcher, mut refuser) = switcher_and_refuser(controlling, t0);
    let check = refuser.poll_transmit(t0).expect("check");
    let m = parse(&check);
    if controlling {
        assert_eq!(
            m.attribute::<IceControlling>().unwrap(),
            Some(IceControlling(refuser.tie_breaker()))
        );
    } else {
        assert_eq!(
            m.attribute::<IceControlled>().unwrap(),
            Some(IceControlled(refuser.tie_breaker()))
        );
    }
    deliver(&mut switcher, t0, &check);
    assert_eq!(role_changes(&events(&mut switcher)), vec![!controlling]);
    assert_eq!(switcher.controlling(), !controlling);
    let response = switcher.poll_transmit(t0).expect("response");
    let r = parse(&response);
    assert_eq!(r.class(), MessageClass::Success);
    assert_eq!(r.transaction_id(), m.transaction_id());
    deliver(&mut refuser, t0, &response);
    assert!(role_changes(&events(&mut refuser)).is_empty());
    assert_eq!(refuser.controlling(), controlling);
}

fn role_conflict_487(controlling: bool) {
    let t0 = origin();
    let (mut switcher, mut refuser) = switcher_and_refuser(controlling, t0);
    let check = switcher.poll_transmit(t0).expect("check");
    let tid = parse(&check).transaction_id();
    deliver(&mut refuser, t0, &check);
    assert!(role_changes(&events(&mut refuser)).is_empty());
    assert_eq!(refuser.controlling(), controlling);
    let response = refuser.poll_transmit(t0).expect("487");
    let r = parse(&response);
    assert_eq!(
        r.message_type(),
        MessageType::new(MessageClass::Error, Method::BINDING)
    );
    assert_eq!(r.transaction_id(), tid);
    assert_eq!(
        r.attribute::<ErrorCode>().unwrap().map(|c| c.code),
        Some(ErrorCode::ROLE_CONFLICT)
    );
    r.check_integrity(&key(creds(&mut refuser).pwd()))
        .expect("the 487 is signed");
    deliver(&mut switcher, t0, &response);
    assert_eq!(role_changes(&events(&mut switcher)), vec![!controlling]);
    assert_eq!(switcher.controlling(), !controlling);
    // The pair is checked again, in the new role, at the next Ta slot.
    let ta = switcher.config().ta_interval();
    assert!(switcher.poll_transmit(t0).is_none());
    let again = switcher.poll_transmit(t0 + ta).expect("check again");
    assert_eq!((again.from, again.to), (check.from, check.to));
    let m = parse(&again);
    assert_eq!(m.class(), MessageClass::Request);
    assert_ne!(m.transaction_id(), tid);
    if controlling {
        assert_eq!(
            m.attribute::<IceControlled>().unwrap(),
            Some(IceControlled(switcher.tie_breaker()))
        );
        assert!(m.attribute::<IceControlling>().unwrap().is_none());
    } else {
        assert_eq!(
            m.attribute::<IceControlling>().unwrap(),
            Some(IceControlling(switcher.tie_breaker()))
        );
        assert!(m.attribute::<IceControlled>().unwrap().is_none());
    }
    deliver(&mut refuser, t0 + ta, &again);
    let ok = refuser.poll_transmit(t0 + ta).expect("response");
    assert_eq!(parse(&ok).class(), MessageClass::Success);
}

#[test]
fn both_controlling_lower_tie_breaker_switches_on_check() {
    role_conflict_switch_on_check(true);
}

#[test]
fn both_controlling_higher_tie_breaker_answers_487() {
    role_conflict_487(true);
}

#[test]
fn both_controlled_higher_tie_breaker_switches_on_check() {
    role_conflict_switch_on_check(false);
}

#[test]
fn both_controlled_lower_tie_breaker_answers_487() {
    role_conflict_487(false);
}

// ---------------------------------------------------------------------------------------
// Nomination as the controlled agent (RFC 8445 §7.3.1.5)

fn nominating_check(a: &mut Agent, tid: TransactionId) -> Vec<u8> {
    let local = creds(a);
    let username = format!("{}:{PEER_UFRAG}", local.ufrag());
    let k = key(local.pwd());
    write_check(
        tid,
        &CheckSpec {
            username: &username,
            key: &k,
            priority: Some(HOST_PRIORITY),
            controlling: Some(42),
            controlled: None,
            use_candidate: true,
        },
    )
}

#[test]
fn use_candidate_on_succeeded_pair_selects_at_once() {
    let t0 = origin();
    let (local, peer) = (addr(LOCAL), addr(PEER));
    let mut b = agent_with_peer(false, t0);
    let check = b.poll_transmit(t0).expect("check");
    assert_eq!((check.from, check.to), (local, peer));
    let m = parse(&check);
    let expected_username = format!("{PEER_UFRAG}:{}", creds(&mut b).ufrag());
    assert_eq!(
        m.attribute::<Username>().unwrap(),
        Some(Username(&expected_username))
    );
    m.check_integrity(&key(PEER_PWD))
        .expect("signed with the peer's password");
    let tid = m.transaction_id();
    inject(
        &mut b,
        t0,
        peer,
        local,
        &write_success(tid, local, Some(&key(PEER_PWD))),
    );
    assert_eq!(pair_to(&mut b, S0, peer).state, PairState::Succeeded);
    assert_eq!(selections(&events(&mut b)), 0);
    assert!(b.selected_pair(S0, RTP).is_none());
    // The peer nominates the pair.
    let t1 = t0 + ms(1);
    let nomination = nominating_check(&mut b, TransactionId([9; 12]));
    inject(&mut b, t1, peer, local, &nomination);
    let ev = events(&mut b);
    assert_eq!(selections(&ev), 1, "{ev:?}");
    assert!(ev.contains(&AgentEvent::ComponentStateChange {
        stream: S0,
        component: RTP,
        state: ComponentState::Connected
    }));
    let sel = b.selected_pair(S0, RTP).expect("selected");
    assert_eq!((sel.local_base, sel.remote.address()), (local, peer));
    let response = b.poll_transmit(t1).expect("response");
    let r = parse(&response);
    assert_eq!(
        (r.class(), r.transaction_id()),
        (MessageClass::Success, TransactionId([9; 12]))
    );
    assert!(b.poll_transmit(t1).is_none(), "no new check is needed");
}

#[test]
fn aggressive_use_candidate_selects_when_triggered_check_succeeds() {
    let t0 = origin();
    let (local, peer) = (addr(LOCAL), addr(PEER));
    let mut b = agent_with_peer(false, t0);
    // The peer's very first check carries USE-CANDIDATE (RFC 5245 aggressive nomination).
    let nomination = nominating_check(&mut b, TransactionId([7; 12]));
    inject(&mut b, t0, peer, local, &nomination);
    assert_eq!(selections(&events(&mut b)), 0, "the pair is not valid yet");
    let response = b.poll_transmit(t0).expect("response");
    assert_eq!(parse(&response).class(), MessageClass::Success);
    let triggered = b.poll_transmit(t0).expect("triggered check");
    assert!(is_binding_request(&triggered));
    assert_eq!((triggered.from, triggered.to), (local, peer));
    assert_eq!(pair_to(&mut b, S0, peer).state, PairState::InProgress);
    assert!(b.selected_pair(S0, RTP).is_none());
    let tid = parse(&triggered).transaction_id();
    inject(
        &mut b,
        t0 + ms(1),
        peer,
        local,
        &write_success(tid, local, Some(&key(PEER_PWD))),
    );
    assert_eq!(selections(&events(&mut b)), 1);
    let sel = b.selected_pair(S0, RTP).expect("selected");
    assert_eq!((sel.local_base, sel.remote.address()), (local, peer));
    assert_eq!(b.component_state(S0, RTP), Some(ComponentState::Connected));
}

// ---------------------------------------------------------------------------------------
// Forged responses (RFC 8489 §9.1.4, RFC 8445 §7.2.5)

#[test]
fn forged_responses_are_ignored_and_the_genuine_one_counts() {
    let t0 = origin();
    let (local, peer) = (addr(LOCAL), addr(PEER));
    // Controlled: a genuine 487 would make it switch, and no nomination follows success.
    let mut a = agent_with_peer(false, t0);
    let check = a.poll_transmit(t0).expect("check");
    let tid = parse(&check).transaction_id();
    // A success signed with the wrong key.
    inject(
        &mut a,
        t0,
        peer,
        local,
        &write_success(tid, local, Some(&key(WRONG_PWD))),
    );
    assert_eq!(pair_to(&mut a, S0, peer).state, PairState::InProgress);
    // An unsigned 487.
    inject(
        &mut a,
        t0,
        peer,
        local,
        &write_error(tid, ErrorCode::ROLE_CONFLICT, None),
    );
    assert!(role_changes(&events(&mut a)).is_empty());
    assert!(!a.controlling());
    assert_eq!(pair_to(&mut a, S0, peer).state, PairState::InProgress);
    // A 487 signed with the wrong key.
    inject(
        &mut a,
        t0,
        peer,
        local,
        &write_error(tid, ErrorCode::ROLE_CONFLICT, Some(&key(WRONG_PWD))),
    );
    assert!(role_changes(&events(&mut a)).is_empty());
    assert_eq!(pair_to(&mut a, S0, peer).state, PairState::InProgress);
    // The genuine response.
    inject(
        &mut a,
        t0,
        peer,
        local,
        &write_success(tid, local, Some(&key(PEER_PWD))),
    );
    let p = pair_to(&mut a, S0, peer);
    assert_eq!(p.state, PairState::Succeeded);
    assert!(p.valid);
}

#[test]
fn unsigned_error_responses_are_discarded() {
    // RFC 8489 §9.1.4: with short-term credentials over UDP, a response without
    // MESSAGE-INTEGRITY MUST be discarded as if never received.
    let t0 = origin();
    let (local, peer) = (addr(LOCAL), addr(PEER));
    let mut a = agent_with_peer(true, t0);
    let check = a.poll_transmit(t0).expect("check");
    let tid = parse(&check).transaction_id();
    for code in [
        ErrorCode::BAD_REQUEST,
        ErrorCode::UNAUTHENTICATED,
        ErrorCode::STALE_NONCE,
    ] {
        inject(&mut a, t0, peer, local, &write_error(tid, code, None));
        assert_eq!(
            pair_to(&mut a, S0, peer).state,
            PairState::InProgress,
            "an unsigned {code} must not fail the pair"
        );
    }
    inject(
        &mut a,
        t0,
        peer,
        local,
        &write_success(tid, local, Some(&key(PEER_PWD))),
    );
    assert_eq!(pair_to(&mut a, S0, peer).state, PairState::Succeeded);
}

#[test]
fn response_from_another_address_fails_the_pair() {
    let t0 = origin();
    let (local, peer) = (addr(LOCAL), addr(PEER));
    let mut a = agent_with_peer(true, t0);
    let check = a.poll_transmit(t0).expect("check");
    let tid = parse(&check).transaction_id();
    // Genuine (signed with the peer's password), but from another port of the peer's IP.
    let elsewhere = addr("192.0.2.1:5999");
    inject(
        &mut a,
        t0,
        elsewhere,
        local,
        &write_success(tid, local, Some(&key(PEER_PWD))),
    );
    let p = pair_to(&mut a, S0, peer);
    assert_eq!(p.state, PairState::Failed);
    assert!(!p.valid);
    assert!(pairs(&mut a, S0).iter().all(|p| !p.valid));
}

// ---------------------------------------------------------------------------------------
// Keepalives (RFC 8445 §11)

fn keepalive_after(config_a: AgentConfig, interval: Duration) {
    let t0 = origin();
    let mut a = agent(config_a, &["192.0.2.1:5000"], t0);
    let mut b = agent(config(false, 2), &["192.0.2.2:6000"], t0);
    tell(&mut a, &mut b, S0);
    tell(&mut b, &mut a, S0);
    let mut log = Vec::new();
    let deadline = t0 + Duration::from_secs(5);
    let ts = drive(&mut a, &mut b, t0, deadline, &mut log, |a, _| {
        a.selected_pair(S0, RTP).is_some()
    });
    assert!(ts < deadline, "A selects a pair");
    let sel = a.selected_pair(S0, RTP).unwrap();
    log.clear();
    drive(
        &mut a,
        &mut b,
        ts,
        ts + interval - ms(1),
        &mut log,
        |_, _| false,
    );
    assert!(
        !log.iter()
            .any(|(_, from_a, t)| *from_a && is_binding_indication(t)),
        "no keepalive before {interval:?}"
    );
    drive(
        &mut a,
        &mut b,
        ts + interval - ms(1),
        ts + interval,
        &mut log,
        |_, _| false,
    );
    let keepalives: Vec<&Logged> = log
        .iter()
        .filter(|(_, from_a, t)| *from_a && is_binding_indication(t))
        .collect();
    assert_eq!(keepalives.len(), 1, "one keepalive at {interval:?}");
    let (at, _, t) = keepalives[0];
    assert_eq!(*at, ts + interval);
    assert_eq!((t.from, t.to), (sel.local_base, sel.remote.address()));
    assert!(parse(t).has_fingerprint());
}

#[test]
fn keepalive_after_15s_of_silence() {
    assert_eq!(DEFAULT_KEEPALIVE_INTERVAL, Duration::from_secs(15));
    // Keepalives are for agents without consent freshness, whose checks replace them.
    keepalive_after(
        config(true, 1).consent_freshness(false),
        Duration::from_secs(15),
    );
}

#[test]
fn keepalive_interval_is_configurable() {
    let interval = Duration::from_secs(3);
    keepalive_after(
        config(true, 1)
            .consent_freshness(false)
            .keepalive_interval(interval),
        interval,
    );
}

// ---------------------------------------------------------------------------------------
// Gathering

fn tcp_gathering_agent(t0: Instant, server: SocketAddr) -> (Agent, u64) {
    let mut a = agent(
        config(true, 1).stun_server(StunServer::tcp(server)),
        &["192.0.2.1:5000"],
        t0,
    );
    assert!(
        a.poll_transmit(t0).is_none(),
        "a TCP query starts with a connection"
    );
    assert!(events(&mut a).is_empty(), "I/O requests are not events");
    let requests: Vec<IoRequest> = std::iter::from_fn(|| a.poll_io_request()).collect();
    let [
        IoRequest::TcpConnect {
            id,
            local,
            remote,
            tls: false,
        },
    ] = requests.as_slice()
    else {
        panic!("expected one TcpConnect: {requests:?}");
    };
    assert_eq!((*local, *remote), (addr("192.0.2.1:0"), server));
    assert!(!a.stream_mut(S0).unwrap().gathering_complete());
    (a, *id)
}

#[test]
fn tcp_stun_server_gives_a_tcp_srflx_candidate() {
    let t0 = origin();
    let server = addr("198.51.100.1:3478");
    let local = addr("192.0.2.1:40000");
    let mapped = addr("203.0.113.7:41000");
    let (mut a, id) = tcp_gathering_agent(t0, server);
    a.handle_tcp_connected(t0, id, local).unwrap();
    assert_eq!(
        a.handle_tcp_connected(t0, id, local),
        Err(AgentError::Usage(UsageError::UnknownTcpConnect(id)))
    );
    let req = a.poll_transmit(t0).expect("request over TCP");
    assert_eq!(
        (req.transport, req.from, req.to),
        (TransportType::Tcp, local, server)
    );
    assert!(is_binding_request(&req));
    let tid = parse(&req).transaction_id();
    let response = write_success(tid, mapped, None);
    let _ = a.handle_incoming(
        t0 + ms(10),
        Transmit {
            transport: TransportType::Tcp,
            from: server,
            to: local,
            data: response.as_slice(),
        },
    );
    assert_eq!(
        a.poll_io_request(),
        Some(IoRequest::TcpClose {
            local,
            remote: server
        })
    );
    assert_eq!(a.poll_io_request(), None);
    let ev = events(&mut a);
    assert_eq!(ev.len(), 2, "{ev:?}");
    let AgentEvent::LocalCandidate {
        stream: S0,
        candidate,
    } = &ev[0]
    else {
        panic!("expected a local candidate: {ev:?}");
    };
    assert_eq!(candidate.candidate_type(), CandidateType::ServerReflexive);
    assert_eq!(candidate.transport_type(), TransportType::Tcp);
    assert_eq!(candidate.tcp_type(), Some(TcpType::So));
    assert_eq!(candidate.address(), mapped);
    assert_eq!(candidate.related_address(), Some(local));
    assert_eq!(ev[1], AgentEvent::GatheringComplete { stream: S0 });
    assert!(a.stream_mut(S0).unwrap().gathering_complete());
}

#[test]
fn tcp_connect_failure_completes_gathering() {
    let t0 = origin();
    let (mut a, id) = tcp_gathering_agent(t0, addr("198.51.100.1:3478"));
    assert_eq!(
        a.handle_tcp_connect_failed(t0, id + 100),
        Err(AgentError::Usage(UsageError::UnknownTcpConnect(id + 100)))
    );
    assert_eq!(
        a.handle_tcp_connected(t0, id + 100, addr("192.0.2.1:40000")),
        Err(AgentError::Usage(UsageError::UnknownTcpConnect(id + 100)))
    );
    a.handle_tcp_connect_failed(t0, id).unwrap();
    assert_eq!(
        events(&mut a),
        vec![AgentEvent::GatheringComplete { stream: S0 }]
    );
    assert!(a.stream_mut(S0).unwrap().gathering_complete());
    assert_eq!(
        a.handle_tcp_connect_failed(t0, id),
        Err(AgentError::Usage(UsageError::UnknownTcpConnect(id)))
    );
}

#[test]
fn silent_stun_server_then_failure_after_both_ends_of_candidates() {
    let t0 = origin();
    let server = addr("198.51.100.1:3478");
    let gather = RetransmitConfig {
        rto: ms(20),
        max_requests: 2,
        last_wait_multiplier: 20,
        reliable_timeout: Duration::from_secs(1),
    };
    let check = RetransmitConfig {
        rto: ms(10),
        max_requests: 1,
        last_wait_multiplier: 1,
        reliable_timeout: Duration::from_secs(1),
    };
    let timeout = gather.transaction_timeout(TransportType::Udp);
    assert_eq!(timeout, ms(420));
    let mut a = agent(
        config(true, 1)
            .stun_server(StunServer::udp(server))
            .gather_retransmit(gather)
            .check_retransmit(check),
        &[LOCAL],
        t0,
    );
    {
        let mut s = a.stream_mut(S0).unwrap();
        s.set_remote_credentials(peer_creds());
        s.add_remote_candidate(host("peer1", PEER, HOST_PRIORITY))
            .unwrap();
    }
    let peer = addr(PEER);
    let mut log = Vec::new();
    let limit = t0 + Duration::from_secs(5);
    let failed_at = drive_alone(&mut a, t0, limit, &mut log, |a| {
        pair_to(a, S0, peer).state == PairState::Failed
    });
    assert!(failed_at < limit, "the unanswered check fails");
    assert!(!a.stream_mut(S0).unwrap().gathering_complete());
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connecting));
    a.stream_mut(S0).unwrap().end_of_remote_candidates();
    assert_eq!(
        a.component_state(S0, RTP),
        Some(ComponentState::Connecting),
        "gathering is not over yet"
    );
    assert!(!events(&mut a).iter().any(|e| matches!(
        e,
        AgentEvent::ComponentStateChange { .. } | AgentEvent::GatheringComplete { .. }
    )));
    let done_at = drive_alone(&mut a, failed_at, limit, &mut log, |a| {
        a.stream_mut(S0).unwrap().gathering_complete()
    });
    let to_server: Vec<Instant> = log
        .iter()
        .filter(|(_, t)| t.to == server)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(to_server.len(), 2, "Rc = 2 requests");
    assert_eq!(done_at, to_server[0] + timeout);
    let ev = events(&mut a);
    let complete = ev
        .iter()
        .position(|e| *e == AgentEvent::GatheringComplete { stream: S0 })
        .expect("gathering complete");
    let failed = ev
        .iter()
        .position(|e| {
            *e == AgentEvent::ComponentStateChange {
                stream: S0,
                component: RTP,
                state: ComponentState::Failed,
            }
        })
        .expect("component failed");
    assert!(complete < failed);
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Failed));
}

#[test]
fn failure_waits_for_end_of_remote_candidates() {
    let t0 = origin();
    let check = RetransmitConfig {
        rto: ms(10),
        max_requests: 1,
        last_wait_multiplier: 1,
        reliable_timeout: Duration::from_secs(1),
    };
    let mut a = agent(config(true, 1).check_retransmit(check), &[LOCAL], t0);
    assert!(a.stream_mut(S0).unwrap().gathering_complete());
    {
        let mut s = a.stream_mut(S0).unwrap();
        s.set_remote_credentials(peer_creds());
        s.add_remote_candidate(host("peer1", PEER, HOST_PRIORITY))
            .unwrap();
    }
    let peer = addr(PEER);
    let mut log = Vec::new();
    let limit = t0 + Duration::from_secs(5);
    let failed_at = drive_alone(&mut a, t0, limit, &mut log, |a| {
        pair_to(a, S0, peer).state == PairState::Failed
    });
    assert!(failed_at < limit);
    drive_alone(
        &mut a,
        failed_at,
        failed_at + Duration::from_secs(1),
        &mut log,
        |_| false,
    );
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connecting));
    assert!(
        events(&mut a)
            .iter()
            .all(|e| !matches!(e, AgentEvent::ComponentStateChange { .. }))
    );
    a.stream_mut(S0).unwrap().end_of_remote_candidates();
    let reason = FailureReason::ChecksFailed(CheckFailures {
        timeouts: 1,
        ..Default::default()
    });
    assert_eq!(
        events(&mut a),
        vec![
            AgentEvent::ComponentFailed {
                stream: S0,
                component: RTP,
                reason
            },
            AgentEvent::ComponentStateChange {
                stream: S0,
                component: RTP,
                state: ComponentState::Failed
            }
        ]
    );
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Failed));
    assert_eq!(a.failure_reason(S0, RTP), Some(reason));
}

// ---------------------------------------------------------------------------------------
// API errors

#[test]
fn api_errors() {
    let t0 = origin();
    let mut a = Agent::new(config(true, 1));
    let sid = a.add_stream();
    assert!(a.stream_mut(S1).is_none());
    let mut s = a.stream_mut(sid).unwrap();
    let c = s.add_component().unwrap();
    assert_eq!(c, RTP);
    let socket = addr("192.0.2.1:5000");
    let seven = ComponentId::new(7).unwrap();
    assert_eq!(
        s.add_local_socket(seven, TransportType::Udp, socket),
        Err(AgentError::Usage(UsageError::UnknownComponent(seven)))
    );
    s.add_local_socket(c, TransportType::Udp, socket).unwrap();
    assert_eq!(
        s.add_local_socket(c, TransportType::Udp, socket),
        Err(AgentError::Usage(UsageError::DuplicateSocket(socket)))
    );
    s.gather_candidates(t0).unwrap();
    // Continual gathering: a socket added now is gathered on at once.
    let late = addr("192.0.2.1:5002");
    s.add_local_socket(c, TransportType::Udp, late).unwrap();
    assert!(s.local_candidates().iter().any(|l| l.address() == late));
    assert_eq!(
        s.remove_local_socket(t0, c, TransportType::Udp, addr("192.0.2.1:5003")),
        Err(AgentError::Usage(UsageError::UnknownSocket(addr(
            "192.0.2.1:5003"
        ))))
    );
    s.remove_local_socket(t0, c, TransportType::Udp, late)
        .unwrap();
    assert!(s.local_candidates().iter().all(|l| l.address() != late));
    assert_eq!(
        s.remove_local_socket(t0, c, TransportType::Udp, late),
        Err(AgentError::Usage(UsageError::UnknownSocket(late)))
    );
    assert_eq!(
        s.add_component(),
        Err(AgentError::Usage(UsageError::GatheringStarted))
    );
    {
        let mut comp = s.component_mut(c).unwrap();
        assert_eq!(comp.send(t0, b"early"), Err(AgentError::NotConnected));
        assert_eq!(comp.send_target(t0).err(), Some(AgentError::NotConnected));
    }
    assert!(s.component_mut(ComponentId::RTCP).is_none());
    let two = Candidate::builder(
        "x",
        CandidateType::Host,
        CandidateTransport::Udp,
        addr("192.0.2.2:6000"),
    )
    .component(ComponentId::RTCP)
    .build()
    .unwrap();
    assert_eq!(
        s.add_remote_candidate(two),
        Err(AgentError::Usage(UsageError::CandidateComponent(
            ComponentId::RTCP
        )))
    );
    assert!(matches!(
        s.add_remote_candidate_sdp("candidate:1 1 UDP notanumber 192.0.2.2 6000 typ host"),
        Err(AgentError::CandidateParse(_))
    ));
    assert!(matches!(
        s.add_remote_candidate_sdp("not a candidate"),
        Err(AgentError::CandidateParse(_))
    ));
    s.add_remote_candidate_sdp("a=candidate:1 1 UDP 2130706431 192.0.2.2 6000 typ host")
        .unwrap();
    s.end_of_remote_candidates();
    assert_eq!(
        s.add_remote_candidate(host("y", "192.0.2.3:6000", 1000)),
        Err(AgentError::AfterEndOfCandidates)
    );
    assert_eq!(
        s.add_remote_candidate_sdp("candidate:2 1 UDP 1000 192.0.2.4 6000 typ host"),
        Err(AgentError::AfterEndOfCandidates)
    );
    assert_eq!(s.remote_candidates().len(), 1);
}

/// Errors show an inner error once: in `source()`, not also in `Display`.
#[test]
fn wrapped_errors_are_shown_once() {
    let inner = IceCredentials::new("ab", "short").unwrap_err();
    let e = AgentError::from(inner);
    assert!(!e.to_string().contains(&inner.to_string()), "{e}");
    assert_eq!(
        std::error::Error::source(&e).map(|s| s.to_string()),
        Some(inner.to_string())
    );
    let parse = Candidate::parse("candidate:x").unwrap_err();
    let e = AgentError::from(parse.clone());
    assert!(!e.to_string().contains(&parse.to_string()), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    // Misuse is transparent: its own text, no source to repeat it.
    let usage = UsageError::UnknownStream(S1);
    let e = AgentError::from(usage.clone());
    assert_eq!(e, AgentError::Usage(usage.clone()));
    assert_eq!(e.to_string(), usage.to_string());
    assert_eq!(e.to_string(), "no stream with id 1");
    assert!(std::error::Error::source(&e).is_none());
}

// ---------------------------------------------------------------------------------------
// ICE restarts: in their own file, with these helpers.

mod restart;

// mDNS candidates: in their own file, with these helpers.
mod mdns;

// ICE-lite: in its own file, with these helpers.
mod lite;

// A check started but not sent when the peer's arrives: in its own file.
mod triggered;
