//! Unit tests of a check that was started (its Ta slot came in `handle_timeout`) but not
//! yet sent when the peer's check arrives on its pair (RFC 8445 §7.3.1.4): it goes out
//! with the next `poll_transmit` as the triggered check, unless it claims a role the
//! peer's check just made the agent leave.

use super::*;

/// An agent at [`LOCAL`] that knows the hand-written peer, whose first check has been
/// started by `handle_timeout` and not polled out; returns it with the check's id.
fn with_unsent_check(controlling: bool) -> (Agent, Instant) {
    let t0 = origin();
    let mut a = agent_with_peer(controlling, t0);
    assert_eq!(a.poll_timeout(), Some(t0), "the first check is due at once");
    a.handle_timeout(t0);
    (a, t0)
}

/// A check from the peer claiming `role` (ICE-CONTROLLING when `controlling`) with
/// tie-breaker `tie`.
fn peer_check(a: &mut Agent, controlling: bool, tie: u64) -> Vec<u8> {
    let local = creds(a);
    let username = format!("{}:{PEER_UFRAG}", local.ufrag());
    let k = key(local.pwd());
    write_check(
        TransactionId([7; 12]),
        &CheckSpec {
            username: &username,
            key: &k,
            priority: Some(HOST_PRIORITY),
            controlling: controlling.then_some(tie),
            controlled: (!controlling).then_some(tie),
            use_candidate: false,
        },
    )
}

/// The requests `a` sends at `now` (responses left out).
fn requests(a: &mut Agent, now: Instant) -> Vec<Transmit<Vec<u8>>> {
    std::iter::from_fn(|| a.poll_transmit(now))
        .filter(is_binding_request)
        .collect()
}

#[test]
fn an_unsent_check_is_the_triggered_check_and_goes_out_at_once() {
    let (mut a, t0) = with_unsent_check(true);
    let (local, peer) = (addr(LOCAL), addr(PEER));
    // The peer (controlled, no conflict) checks the same pair before our check left.
    let c = peer_check(&mut a, false, 1);
    inject(&mut a, t0, peer, local, &c);
    let sent = requests(&mut a, t0);
    assert_eq!(sent.len(), 1, "our check goes out now, once");
    assert_eq!((sent[0].from, sent[0].to), (local, peer));
    assert!(
        parse(&sent[0])
            .attribute::<IceControlling>()
            .unwrap()
            .is_some()
    );
    // It is a live transaction: its retransmission comes one RTO later, not a Ta-paced
    // new check.
    let id = parse(&sent[0]).transaction_id();
    let mut now = t0;
    let mut again = Vec::new();
    while again.is_empty() && now < t0 + ms(600) {
        now = a.poll_timeout().expect("a timer").max(now + ms(1));
        a.handle_timeout(now);
        again = requests(&mut a, now);
    }
    assert_eq!(now, t0 + ms(500), "the retransmission, one RTO later");
    assert_eq!(parse(&again[0]).transaction_id(), id);
}

#[test]
fn an_unsent_check_claiming_a_role_just_left_is_replaced() {
    let (mut a, t0) = with_unsent_check(true);
    let (local, peer) = (addr(LOCAL), addr(PEER));
    // The peer also controls, with the larger tie-breaker: we switch to controlled
    // (RFC 8445 §7.3.1.1), and our queued check, which claims controlling, must not go.
    let c = peer_check(&mut a, true, u64::MAX);
    inject(&mut a, t0, peer, local, &c);
    assert!(!a.controlling());
    let mut now = t0;
    let mut sent = requests(&mut a, now);
    while sent.is_empty() && now < t0 + ms(200) {
        now = a.poll_timeout().expect("a timer").max(now);
        a.handle_timeout(now);
        sent = requests(&mut a, now);
    }
    assert_eq!(sent.len(), 1, "{} requests", sent.len());
    let m = parse(&sent[0]);
    assert!(
        m.attribute::<IceControlled>().unwrap().is_some(),
        "claims controlled"
    );
    assert!(m.attribute::<IceControlling>().unwrap().is_none());
}
