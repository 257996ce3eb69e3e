//! Unit tests of ICE-lite (RFC 8445 §2.5): a lite agent fed hand-written checks, and a
//! full agent told that its peer is lite.

use std::time::Instant;

use super::*;
use crate::agent::{DEFAULT_CONSENT_TIMEOUT, TurnServer};
use crate::stun::attr::AttributeType;

const PEER2: &str = "192.0.2.1:5002";
/// A lower host priority than [`HOST_PRIORITY`] (local preference 1).
const LOW_PRIORITY: u32 = (126 << 24) | (1 << 8) | 255;

/// A lite agent at [`LOCAL`] that knows the peer's credentials and two host candidates:
/// [`PEER`] (high priority) and [`PEER2`] (low).
fn lite_with_peer(now: Instant) -> Agent {
    let mut a = agent(config(true, 2).lite(true), &[LOCAL], now);
    let mut s = a.stream_mut(S0).unwrap();
    s.set_remote_credentials(peer_creds());
    s.add_remote_candidate(host("peer1", PEER, HOST_PRIORITY))
        .unwrap();
    s.add_remote_candidate(host("peer2", PEER2, LOW_PRIORITY))
        .unwrap();
    a
}

/// A check from the hand-written peer, claiming the controlling role with tie-breaker 42
/// unless `controlled` gives ICE-CONTROLLED's.
fn check(a: &mut Agent, tid: u8, use_candidate: bool, controlled: Option<u64>) -> Vec<u8> {
    let local = creds(a);
    let username = format!("{}:{PEER_UFRAG}", local.ufrag());
    let k = key(local.pwd());
    write_check(
        TransactionId([tid; 12]),
        &CheckSpec {
            username: &username,
            key: &k,
            priority: Some(HOST_PRIORITY),
            controlling: controlled.is_none().then_some(42),
            controlled,
            use_candidate,
        },
    )
}

/// Everything `a` sends at `now`: all of it must be responses.
fn responses(a: &mut Agent, now: Instant) -> Vec<(MessageClass, Option<u16>)> {
    std::iter::from_fn(|| a.poll_transmit(now))
        .map(|t| {
            let m = parse(&t);
            assert_ne!(
                m.class(),
                MessageClass::Request,
                "a lite agent sent a request"
            );
            let code = m
                .attribute::<ErrorCode<'_>>()
                .ok()
                .flatten()
                .map(|c| c.code);
            (m.class(), code)
        })
        .collect()
}

fn selected_remote(a: &Agent) -> Option<SocketAddr> {
    a.selected_pair(S0, RTP).map(|p| p.remote.address())
}

#[test]
fn lite_selects_on_use_candidate_and_follows_only_a_higher_priority_nomination() {
    let t0 = origin();
    let local = addr(LOCAL);
    let mut a = lite_with_peer(t0);
    assert!(!a.controlling(), "a lite agent is controlled");
    assert_eq!(
        a.poll_timeout(),
        None,
        "nothing to do before a check arrives"
    );
    assert!(a.poll_transmit(t0).is_none(), "no check of its own");

    // A check without USE-CANDIDATE: answered, nothing selected, no triggered check.
    let c = check(&mut a, 1, false, None);
    inject(&mut a, t0, addr(PEER), local, &c);
    assert_eq!(responses(&mut a, t0), [(MessageClass::Success, None)]);
    assert_eq!(selected_remote(&a), None);
    assert_eq!(a.poll_timeout(), None, "still no timer: nothing to check");

    // USE-CANDIDATE on the low-priority pair selects it at once.
    let t1 = t0 + ms(10);
    let c = check(&mut a, 2, true, None);
    inject(&mut a, t1, addr(PEER2), local, &c);
    assert_eq!(responses(&mut a, t1), [(MessageClass::Success, None)]);
    let ev = events(&mut a);
    assert_eq!(selections(&ev), 1, "{ev:?}");
    assert!(ev.contains(&AgentEvent::ComponentStateChange {
        stream: S0,
        component: RTP,
        state: ComponentState::Connected
    }));
    assert_eq!(selected_remote(&a), Some(addr(PEER2)));

    // A nomination of a higher-priority pair is followed (RFC 8445 §8.1.1).
    let t2 = t1 + ms(10);
    let c = check(&mut a, 3, true, None);
    inject(&mut a, t2, addr(PEER), local, &c);
    assert_eq!(responses(&mut a, t2), [(MessageClass::Success, None)]);
    let ev = events(&mut a);
    assert!(
        ev.iter()
            .any(|e| matches!(e, AgentEvent::SelectedPairChanged { .. })),
        "{ev:?}"
    );
    assert_eq!(selected_remote(&a), Some(addr(PEER)));

    // The lower one again: answered and ignored.
    let t3 = t2 + ms(10);
    let c = check(&mut a, 4, true, None);
    inject(&mut a, t3, addr(PEER2), local, &c);
    assert_eq!(responses(&mut a, t3), [(MessageClass::Success, None)]);
    assert!(
        !events(&mut a)
            .iter()
            .any(|e| matches!(e, AgentEvent::SelectedPairChanged { .. }))
    );
    assert_eq!(selected_remote(&a), Some(addr(PEER)));
}

#[test]
fn lite_answers_487_to_a_peer_claiming_controlled_whatever_the_tie_breakers() {
    let t0 = origin();
    let local = addr(LOCAL);
    let mut a = lite_with_peer(t0);
    // Tie-breaker 0: a full agent would have the larger one and switch to controlling;
    // u64::MAX: it would answer 487 anyway. A lite agent answers 487 both times.
    for (tid, theirs) in [(1, 0), (2, u64::MAX)] {
        let c = check(&mut a, tid, true, Some(theirs));
        inject(&mut a, t0, addr(PEER), local, &c);
        assert_eq!(
            responses(&mut a, t0),
            [(MessageClass::Error, Some(ErrorCode::ROLE_CONFLICT))],
            "tie-breaker {theirs}"
        );
        assert!(!a.controlling());
    }
    let ev = events(&mut a);
    assert!(role_changes(&ev).is_empty(), "{ev:?}");
    assert_eq!(selections(&ev), 0, "a refused check nominates nothing");
}

#[test]
fn lite_consent_is_refreshed_by_the_peer_checks_and_expires_without_them() {
    let t0 = origin();
    let local = addr(LOCAL);
    let mut a = lite_with_peer(t0);
    let c = check(&mut a, 1, true, None);
    inject(&mut a, t0, addr(PEER), local, &c);
    responses(&mut a, t0);
    events(&mut a);
    let timeout = DEFAULT_CONSENT_TIMEOUT;
    assert_eq!(a.consent_expiry(S0, RTP), Some(t0 + timeout));
    // The peer's consent checks every 5 s keep it fresh; the agent only answers.
    let mut now = t0;
    for tid in 2..10 {
        now += ms(5_000);
        a.handle_timeout(now);
        let c = check(&mut a, tid, false, None);
        inject(&mut a, now, addr(PEER), local, &c);
        assert_eq!(responses(&mut a, now), [(MessageClass::Success, None)]);
        assert_eq!(a.consent_expiry(S0, RTP), Some(now + timeout));
    }
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connected));
    // A check from elsewhere (not the selected pair) does not refresh it.
    let last = now;
    now += ms(1_000);
    let c = check(&mut a, 20, false, None);
    inject(&mut a, now, addr(PEER2), local, &c);
    responses(&mut a, now);
    assert_eq!(a.consent_expiry(S0, RTP), Some(last + timeout));
    // Then silence: the timers are the Disconnected one and the expiry, never a check.
    let mut steps = 0;
    while let Some(deadline) = a.poll_timeout() {
        steps += 1;
        assert!(steps < 10, "too many wake-ups");
        a.handle_timeout(deadline);
        assert!(responses(&mut a, deadline).is_empty(), "sent something");
        if a.component_state(S0, RTP) == Some(ComponentState::Failed) {
            assert_eq!(deadline, last + timeout, "failed at the consent expiry");
            break;
        }
    }
    assert_eq!(a.failure_reason(S0, RTP), Some(FailureReason::ConsentLost));
    let ev = events(&mut a);
    assert!(
        ev.iter()
            .any(|e| matches!(e, AgentEvent::ConsentLost { .. }))
    );
}

#[test]
fn lite_agent_ignores_stun_and_turn_servers() {
    let t0 = origin();
    let stun = addr("198.51.100.1:3478");
    let cfg = config(false, 3)
        .lite(true)
        .stun_server(StunServer::udp(stun))
        .turn_server(TurnServer::udp(stun, "user", "pass"))
        .relay_only(true)
        .renomination(true);
    let mut a = Agent::new(cfg);
    let sid = a.add_stream();
    let mut s = a.stream_mut(sid).unwrap();
    let c = s.add_component().unwrap();
    s.add_local_socket(c, TransportType::Udp, addr(LOCAL))
        .unwrap();
    s.gather_candidates(t0).unwrap();
    let ev = events(&mut a);
    let local: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            AgentEvent::LocalCandidate { candidate, .. } => Some(candidate.candidate_type()),
            _ => None,
        })
        .collect();
    assert_eq!(
        local,
        [CandidateType::Host],
        "the host candidate, announced"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, AgentEvent::GatheringComplete { .. }))
    );
    assert!(a.poll_transmit(t0).is_none());
    assert_eq!(a.poll_timeout(), None);
    let cfg = a.config();
    assert!(cfg.stun_servers().is_empty() && cfg.turn_servers().is_empty());
    assert!(!cfg.is_renomination() && cfg.is_lite());
}

/// A full agent facing a lite peer takes the controlling role, and a check the peer
/// refuses with an unsigned 401 (it does not have our credentials yet) is not left
/// waiting for a check from the peer, which never comes: it is retransmitted on its
/// schedule and succeeds once the peer has them.
#[test]
fn full_agent_facing_a_lite_peer_controls_and_retransmits_after_an_unsigned_401() {
    let t0 = origin();
    let (local, peer) = (addr(LOCAL), addr(PEER));
    let mut a = agent_with_peer(false, t0);
    a.stream_mut(S0).unwrap().set_remote_lite(true);
    assert!(a.controlling());
    assert_eq!(role_changes(&events(&mut a)), [true]);
    let first = a.poll_transmit(t0).expect("a check");
    let m = parse(&first);
    assert!(m.attribute::<IceControlling>().unwrap().is_some());
    let tid = m.transaction_id();
    // Refused with an unsigned 401: discarded (RFC 8489 §9.1.4), the transaction goes on.
    inject(
        &mut a,
        t0 + ms(5),
        peer,
        local,
        &write_error(tid, ErrorCode::UNAUTHENTICATED, None),
    );
    assert_eq!(pair_to(&mut a, S0, peer).state, PairState::InProgress);
    // The retransmission one RTO later, the same transaction.
    let due = a.poll_timeout().expect("a timer");
    assert!(due <= t0 + ms(500), "{due:?}");
    let mut now = t0;
    let mut retransmitted = None;
    while retransmitted.is_none() && now < t0 + ms(1_000) {
        now = a.poll_timeout().expect("a timer").max(now);
        a.handle_timeout(now);
        retransmitted = std::iter::from_fn(|| a.poll_transmit(now))
            .find(|t| is_binding_request(t) && parse(t).transaction_id() == tid);
    }
    assert!(retransmitted.is_some(), "the check was retransmitted");
    inject(
        &mut a,
        now,
        peer,
        local,
        &write_success(tid, local, Some(&key(PEER_PWD))),
    );
    assert_eq!(pair_to(&mut a, S0, peer).state, PairState::Succeeded);
    // And it nominates: the next check on the pair carries USE-CANDIDATE.
    let mut nominated = false;
    for _ in 0..20 {
        let Some(deadline) = a.poll_timeout() else {
            break;
        };
        now = deadline.max(now);
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now) {
            let m = parse(&t);
            if m.class() == MessageClass::Request && m.has_attribute(AttributeType::USE_CANDIDATE) {
                nominated = true;
            }
        }
        if nominated {
            break;
        }
    }
    assert!(nominated, "the full agent nominated");
}

/// A lite agent's pairs come from the peer's checks: one whose peer signalled no candidate
/// (relay-only, or hidden behind names) and end-of-candidates does not fail for want of
/// pairs, and connects when the checks come, from a peer-reflexive address.
#[test]
fn lite_without_remote_candidates_waits_for_the_checks() {
    let t0 = origin();
    let local = addr(LOCAL);
    let mut a = agent(config(true, 2).lite(true), &[LOCAL], t0);
    {
        let mut s = a.stream_mut(S0).unwrap();
        s.set_remote_credentials(peer_creds());
        s.end_of_remote_candidates();
    }
    let ev = events(&mut a);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, AgentEvent::ComponentFailed { .. })),
        "{ev:?}"
    );
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connecting));
    let t1 = t0 + ms(500);
    let c = check(&mut a, 1, true, None);
    inject(&mut a, t1, addr(PEER), local, &c);
    assert_eq!(responses(&mut a, t1), [(MessageClass::Success, None)]);
    assert_eq!(selected_remote(&a), Some(addr(PEER)));
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connected));
}

#[test]
fn lite_pairs_start_waiting_without_foundation_groups_or_request_state() {
    let now = origin();
    let mut a = agent(config(true, 2).lite(true), &[LOCAL], now);
    let mut s = a.stream_mut(S0).unwrap();
    s.set_remote_credentials(peer_creds());
    // One foundation for both: a full agent would start the second pair Frozen
    // (RFC 8445 §6.1.2.6); a lite agent runs no check-list schedule (§2.5).
    s.add_remote_candidate(host("peer1", PEER, HOST_PRIORITY))
        .unwrap();
    s.add_remote_candidate(host("peer1", PEER2, LOW_PRIORITY))
        .unwrap();
    let stats = a.stats(S0).unwrap();
    assert_eq!(stats.pairs.len(), 2);
    assert!(stats.pairs.iter().all(|p| p.state == PairState::Waiting));
    // A selection by the peer's check leaves it so: a lite agent never starts a request.
    let c = check(&mut a, 1, true, None);
    inject(&mut a, now, addr(PEER), addr(LOCAL), &c);
    assert_eq!(responses(&mut a, now), [(MessageClass::Success, None)]);
    assert_eq!(selected_remote(&a), Some(addr(PEER)));
    assert!(
        a.requests.is_none(),
        "a lite agent keeps no request state and no pair foundations"
    );
}
