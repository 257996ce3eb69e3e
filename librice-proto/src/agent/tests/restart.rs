//! Unit tests of ICE restarts (RFC 8445 §9): credential changes, restarts before any pair
//! was selected, the old pair's consent, checks that come before the new credentials, and
//! bounded state under a restart storm.

use std::time::Instant;

use super::*;
use crate::agent::RestartOrigin;

fn restarts(events: &[AgentEvent]) -> Vec<RestartOrigin> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Restarted { origin, .. } => Some(*origin),
            _ => None,
        })
        .collect()
}

fn changes(events: &[AgentEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AgentEvent::SelectedPairChanged { .. }))
        .count()
}

/// Two agents at A and B, told of each other and connected.
fn connected(t0: Instant) -> (Agent, Agent, Instant) {
    let mut a = agent(config(true, 1), &["192.0.2.1:5000"], t0);
    let mut b = agent(config(false, 2), &["192.0.2.2:5000"], t0);
    tell(&mut a, &mut b, S0);
    tell(&mut b, &mut a, S0);
    let mut log = Vec::new();
    let now = drive(&mut a, &mut b, t0, t0 + ms(5_000), &mut log, |a, b| {
        a.selected_pair(S0, RTP).is_some() && b.selected_pair(S0, RTP).is_some()
    });
    assert!(a.selected_pair(S0, RTP).is_some(), "A connected");
    assert!(b.selected_pair(S0, RTP).is_some(), "B connected");
    events(&mut a);
    events(&mut b);
    (a, b, now)
}

#[test]
fn the_same_remote_credentials_again_are_no_restart_and_new_ones_are() {
    let t0 = origin();
    let mut a = agent_with_peer(true, t0);
    let local = creds(&mut a);
    a.stream_mut(S0)
        .unwrap()
        .set_remote_credentials(peer_creds());
    assert_eq!(restarts(&events(&mut a)), []);
    assert_eq!(creds(&mut a), local);
    assert!(!pairs(&mut a, S0).is_empty());

    // Only the password changes: still a restart (RFC 8839 §4.4.1.1.1).
    let new = IceCredentials::new(PEER_UFRAG, WRONG_PWD).unwrap();
    a.stream_mut(S0)
        .unwrap()
        .set_remote_credentials(new.clone());
    let e = events(&mut a);
    assert_eq!(restarts(&e), [RestartOrigin::Remote]);
    assert_ne!(
        creds(&mut a),
        local,
        "the answerer restarts too: new local credentials"
    );
    let s = a.stream_mut(S0).unwrap();
    assert_eq!(s.remote_credentials(), Some(&new));
    assert!(
        s.remote_candidates().is_empty(),
        "the peer signals its candidates again"
    );
    assert!(s.pairs().is_empty());
    // Gathering ran again: the host candidate is announced again, then the end.
    assert!(
        e.iter()
            .any(|e| matches!(e, AgentEvent::LocalCandidate { .. }))
    );
    assert!(
        e.iter()
            .any(|e| matches!(e, AgentEvent::GatheringComplete { .. }))
    );
    assert!(s.gathering_complete());
}

#[test]
fn a_local_restart_forgets_the_remote_credentials_until_the_peer_answers() {
    let t0 = origin();
    let mut a = agent_with_peer(true, t0);
    let local = creds(&mut a);
    a.stream_mut(S0).unwrap().restart(t0);
    assert_eq!(restarts(&events(&mut a)), [RestartOrigin::Local]);
    assert_ne!(creds(&mut a), local);
    assert_eq!(a.stream_mut(S0).unwrap().remote_credentials(), None);
    // The peer's answer, with its new credentials, is no restart of its own.
    let answer = IceCredentials::new("peer2", PEER_PWD).unwrap();
    a.stream_mut(S0).unwrap().set_remote_credentials(answer);
    assert_eq!(restarts(&events(&mut a)), []);
}

#[test]
fn a_restart_before_any_pair_was_selected_connects_with_new_pair_ids() {
    let t0 = origin();
    let mut a = agent(config(true, 1), &["192.0.2.1:5000"], t0);
    let mut b = agent(config(false, 2), &["192.0.2.2:5000"], t0);
    tell(&mut a, &mut b, S0);
    tell(&mut b, &mut a, S0);
    let before: Vec<_> = a.stats(S0).unwrap().pairs.iter().map(|p| p.id).collect();
    assert!(!before.is_empty());
    // A restarts before a single check went out; B learns A's new credentials (and
    // restarts), A learns B's, then both signal their candidates again.
    a.stream_mut(S0).unwrap().restart(t0);
    let a_creds = creds(&mut a);
    b.stream_mut(S0).unwrap().set_remote_credentials(a_creds);
    let b_creds = creds(&mut b);
    a.stream_mut(S0).unwrap().set_remote_credentials(b_creds);
    assert!(
        !a.stream_mut(S0).unwrap().restarting(),
        "no old pair to keep"
    );
    // The same credentials again (no restart), and the candidates.
    tell(&mut a, &mut b, S0);
    tell(&mut b, &mut a, S0);
    let (ea, eb) = (events(&mut a), events(&mut b));
    assert_eq!(restarts(&ea), [RestartOrigin::Local]);
    assert_eq!(restarts(&eb), [RestartOrigin::Remote]);
    let mut log = Vec::new();
    drive(&mut a, &mut b, t0, t0 + ms(5_000), &mut log, |a, b| {
        a.selected_pair(S0, RTP).is_some() && b.selected_pair(S0, RTP).is_some()
    });
    let (ea, eb) = (events(&mut a), events(&mut b));
    assert_eq!((selections(&ea), changes(&ea)), (1, 0), "a first selection");
    assert_eq!((selections(&eb), changes(&eb)), (1, 0));
    let after: Vec<_> = a.stats(S0).unwrap().pairs.iter().map(|p| p.id).collect();
    assert!(!after.is_empty());
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} then {after:?}"
    );
}

/// A restarts and B never hears of it: the old pair keeps carrying data and keeps its
/// consent both ways for as long as it lasts (A's consent checks use the old credentials,
/// and A answers B's with them).
#[test]
fn the_old_pair_keeps_consent_both_ways_while_the_restart_waits() {
    let (mut a, mut b, t1) = connected(origin());
    let old = a.selected_pair(S0, RTP).unwrap();
    let expiry = a.consent_expiry(S0, RTP).unwrap();
    a.stream_mut(S0).unwrap().restart(t1);
    assert!(a.stream_mut(S0).unwrap().restarting());
    assert_eq!(a.selected_pair(S0, RTP), Some(old.clone()));
    assert_eq!(
        a.consent_expiry(S0, RTP),
        Some(expiry),
        "the old pair's consent"
    );
    let (ca, cb) = (
        a.consent_stats(S0, RTP).unwrap(),
        b.consent_stats(S0, RTP).unwrap(),
    );
    let mut log = Vec::new();
    let end = drive(&mut a, &mut b, t1, t1 + ms(60_000), &mut log, |_, _| false);
    let (ea, eb) = (events(&mut a), events(&mut b));
    for e in ea.iter().chain(&eb) {
        assert!(
            !matches!(
                e,
                AgentEvent::ConsentLost { .. } | AgentEvent::ComponentFailed { .. }
            ),
            "{e:?}"
        );
    }
    let (ca2, cb2) = (
        a.consent_stats(S0, RTP).unwrap(),
        b.consent_stats(S0, RTP).unwrap(),
    );
    assert!(
        ca2.responses_received >= ca.responses_received + 8,
        "{ca:?} -> {ca2:?}"
    );
    assert!(
        cb2.responses_received >= cb.responses_received + 8,
        "{cb:?} -> {cb2:?}"
    );
    assert_eq!(a.selected_pair(S0, RTP), Some(old));
    // Data still goes on it, and comes from it.
    let t = a
        .stream_mut(S0)
        .unwrap()
        .component_mut(RTP)
        .unwrap()
        .send(end, b"still here")
        .expect("the old pair carries data");
    let got = b.handle_incoming(
        end,
        Transmit {
            transport: t.transport,
            from: t.from,
            to: t.to,
            data: t.data.as_slice(),
        },
    );
    assert_eq!(got.map(|d| d.data), Some(&b"still here"[..]));
    let t = b
        .stream_mut(S0)
        .unwrap()
        .component_mut(RTP)
        .unwrap()
        .send(end, b"back")
        .unwrap();
    let got = a.handle_incoming(
        end,
        Transmit {
            transport: t.transport,
            from: t.from,
            to: t.to,
            data: t.data.as_slice(),
        },
    );
    assert_eq!(got.map(|d| d.data), Some(&b"back"[..]));
}

/// RFC 8445 §7.3 (as before any remote credentials): after a local restart, a check from
/// the peer that already knows the new local credentials is answered, though its own new
/// credentials have not arrived; the triggered check goes out once they do.
#[test]
fn a_check_before_the_new_remote_credentials_is_answered() {
    let t0 = origin();
    let mut a = agent_with_peer(false, t0);
    a.stream_mut(S0).unwrap().restart(t0);
    events(&mut a);
    while a.poll_transmit(t0).is_some() {}
    let new_local = creds(&mut a);
    let username = format!("{}:peer2", new_local.ufrag());
    let key = key(new_local.pwd());
    let tid = TransactionId([7; 12]);
    let check = write_check(
        tid,
        &CheckSpec {
            username: &username,
            key: &key,
            priority: Some(HOST_PRIORITY),
            controlling: Some(1),
            controlled: None,
            use_candidate: false,
        },
    );
    inject(&mut a, t0, addr(PEER), addr(LOCAL), &check);
    let answer = a.poll_transmit(t0).expect("answered");
    let msg = parse(&answer);
    assert_eq!(msg.message_type(), MessageType::BINDING_SUCCESS);
    assert_eq!(msg.transaction_id(), tid);
    assert!(
        msg.check_integrity(&key).is_ok(),
        "signed with the new password"
    );
    assert!(
        a.poll_transmit(t0).is_none(),
        "no check without the remote credentials"
    );
    let peer2 = IceCredentials::new("peer2", PEER_PWD).unwrap();
    a.stream_mut(S0).unwrap().set_remote_credentials(peer2);
    assert_eq!(restarts(&events(&mut a)), [], "the answer is no restart");
    let check = a.poll_transmit(t0).expect("the triggered check");
    assert!(is_binding_request(&check));
    assert_eq!(check.to, addr(PEER));
}

/// A hostile peer changes its credentials a thousand times: each is a restart, and the
/// agent's state stays the size of one generation plus one old pair.
#[test]
fn a_restart_storm_keeps_the_state_bounded() {
    let (mut a, _b, t1) = connected(origin());
    let mut now = t1;
    let (mut txns, mut queue) = (0, 0);
    for i in 0..1_000u32 {
        now += ms(1);
        let creds = IceCredentials::new(format!("storm{i}"), PEER_PWD).unwrap();
        let mut s = a.stream_mut(S0).unwrap();
        s.set_remote_credentials(creds);
        s.add_remote_candidate(host(&format!("f{i}"), "192.0.2.2:5000", HOST_PRIORITY))
            .unwrap();
        a.handle_timeout(now);
        while a.poll_transmit(now).is_some() {}
        txns = txns.max(a.requests.as_ref().map_or(0, |r| r.txns.len()));
        queue = queue.max(a.requests.as_ref().map_or(0, |r| r.gather_queue.len()));
    }
    assert_eq!(restarts(&events(&mut a)).len(), 1_000);
    let s = &a.streams[S0];
    assert!(s.remote.len() <= 1 && s.local.len() <= 1, "one generation");
    assert!(s.checklist.ids().count() <= 1);
    assert!(
        a.stream_mut(S0).unwrap().restarting(),
        "the old pair is kept"
    );
    let r = a.requests.as_ref().expect("a full agent that checked");
    assert!(
        r.pair_foundations.len() <= 1,
        "{}",
        r.pair_foundations.len()
    );
    assert!(
        r.foundation_pairs
            .iter()
            .map(|(_, g)| g.len())
            .sum::<usize>()
            <= 1
    );
    let cancelled = a.requests.as_ref().map_or(0, |r| r.cancelled.len());
    assert!(cancelled <= 2, "{cancelled}");
    assert!(
        txns <= 4 && queue == 0,
        "{txns} transactions, {queue} queued"
    );
    // Data still goes to B on the old pair.
    let t = a
        .stream_mut(S0)
        .unwrap()
        .component_mut(RTP)
        .unwrap()
        .send(now, b"x")
        .unwrap();
    assert_eq!(t.to, addr("192.0.2.2:5000"));
}

/// TURN over TCP: a restart while the connection to the server is being opened asks for
/// no second connection (the one under way serves the new gathering round), and gathering
/// completes once it fails.
#[test]
fn a_restart_while_a_turn_tcp_connection_opens_asks_for_no_second_one() {
    let t0 = origin();
    let server = addr("198.51.100.2:3478");
    let turn = crate::agent::TurnServer::udp(server, "user", "pass").over_tcp();
    let mut a = agent(config(true, 1).turn_server(turn), &["192.0.2.1:5000"], t0);
    while a.poll_transmit(t0).is_some() {}
    let requests: Vec<IoRequest> = std::iter::from_fn(|| a.poll_io_request()).collect();
    let [IoRequest::TcpConnect { id, .. }] = requests.as_slice() else {
        panic!("one TcpConnect: {requests:?}");
    };
    for i in 0..3u64 {
        a.stream_mut(S0).unwrap().restart(t0 + ms(i));
        while a.poll_transmit(t0 + ms(i)).is_some() {}
        assert_eq!(a.poll_io_request(), None, "no second connection");
        assert!(!a.stream_mut(S0).unwrap().gathering_complete());
    }
    assert_eq!(
        a.requests.as_ref().map_or(0, |r| r.tcp_connects.len()),
        1,
        "one connection under way"
    );
    a.handle_tcp_connect_failed(t0 + ms(10), *id).unwrap();
    assert!(a.stream_mut(S0).unwrap().gathering_complete());
    let e = events(&mut a);
    assert_eq!(restarts(&e).len(), 3);
}

/// Every pair of a restart fails (the peer refuses credentials it never got) while the old
/// pair still has consent: the old pair carries on; once its consent is gone too, the
/// component fails.
#[test]
fn a_failed_restart_keeps_the_old_pair_until_its_consent_ends() {
    let (mut a, mut b, t1) = connected(origin());
    let old = a.selected_pair(S0, RTP).unwrap();
    let mut s = a.stream_mut(S0).unwrap();
    s.restart(t1);
    s.set_remote_credentials(IceCredentials::new("nobody", PEER_PWD).unwrap());
    s.add_remote_candidate(old.remote.clone()).unwrap();
    s.end_of_remote_candidates();
    let mut log = Vec::new();
    let t2 = drive(&mut a, &mut b, t1, t1 + ms(60_000), &mut log, |_, _| false);
    assert!(
        a.stream_mut(S0)
            .unwrap()
            .pairs()
            .iter()
            .all(|p| p.state == PairState::Failed),
        "the restart's pairs failed"
    );
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connected));
    assert_eq!(a.selected_pair(S0, RTP), Some(old));
    // B goes silent: the old pair's consent ends, and the component fails.
    let mut sent = Vec::new();
    drive_alone(&mut a, t2, t2 + ms(40_000), &mut sent, |_| false);
    let e = events(&mut a);
    assert!(e.contains(&AgentEvent::ComponentStateChange {
        stream: S0,
        component: RTP,
        state: ComponentState::Disconnected,
    }));
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Failed));
    assert!(matches!(
        a.failure_reason(S0, RTP),
        Some(FailureReason::ChecksFailed(_) | FailureReason::AuthenticationFailed(_))
    ));
    assert_eq!(a.selected_pair(S0, RTP), None);
}
