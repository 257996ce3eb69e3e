//! Unit tests of mDNS candidates (draft-ietf-mmusic-mdns-ice-candidates): the peer's
//! `.local` names resolved through the I/O layer, and this agent's host addresses hidden
//! behind published names.

use std::net::IpAddr;
use std::time::Instant;

use super::*;
use crate::agent::{DEFAULT_MAX_PENDING_MDNS_NAMES, DEFAULT_MDNS_TIMEOUT, MAX_PUBLISH_ATTEMPTS};
use crate::candidate::{HostName, NamedCandidate};

const PEER_NAME: &str = "0df9e7e0-7cba-402d-bad5-fd71defabba6.local";

fn named(name: &str, port: u16, priority: u32) -> NamedCandidate {
    NamedCandidate::parse(&format!(
        "candidate:n{port} 1 UDP {priority} {name} {port} typ host"
    ))
    .expect("named candidate")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn io_requests(a: &mut Agent) -> Vec<IoRequest> {
    std::iter::from_fn(|| a.poll_io_request()).collect()
}

fn resolve_requests(requests: &[IoRequest]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| match r {
            IoRequest::MdnsResolve { name } => Some(name.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

fn publish_requests(requests: &[IoRequest]) -> Vec<(HostName, IpAddr)> {
    requests
        .iter()
        .filter_map(|r| match r {
            IoRequest::MdnsPublish { name, address } => Some((name.clone(), *address)),
            _ => None,
        })
        .collect()
}

fn named_announcements(events: &[AgentEvent]) -> Vec<NamedCandidate> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::LocalNamedCandidate { candidate, .. } => Some(candidate.clone()),
            _ => None,
        })
        .collect()
}

fn gathering_complete(events: &[AgentEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, AgentEvent::GatheringComplete { .. }))
}

/// An agent at [`LOCAL`] with the hand-written peer's credentials and no candidate.
fn agent_with_peer_creds(config: AgentConfig, now: Instant) -> Agent {
    let mut a = agent(config, &[LOCAL], now);
    a.stream_mut(S0)
        .unwrap()
        .set_remote_credentials(peer_creds());
    a
}

fn hiding_agent(seed: u64, now: Instant) -> Agent {
    agent(config(true, seed).hide_host_addresses(true), &[LOCAL], now)
}

#[test]
fn a_name_is_resolved_once_and_its_candidates_pair_as_host_candidates() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    let mut s = a.stream_mut(S0).unwrap();
    s.add_remote_named_candidate(t0, named(PEER_NAME, 5000, HOST_PRIORITY))
        .unwrap();
    // The same name in another case, for a second port: no second request.
    s.add_remote_named_candidate(t0, named(&PEER_NAME.to_uppercase(), 5001, 1000))
        .unwrap();
    assert_eq!(resolve_requests(&io_requests(&mut a)), [PEER_NAME]);
    assert!(pairs(&mut a, S0).is_empty(), "nothing pairs with a name");
    assert!(a.stream_mut(S0).unwrap().remote_candidates().is_empty());
    assert!(a.poll_transmit(t0).is_none(), "nothing is sent to a name");
    assert_eq!(a.pending_mdns_names(), 1);

    a.handle_mdns_resolved(t0 + ms(5), PEER_NAME, &[ip("192.0.2.1")])
        .unwrap();
    assert_eq!(a.pending_mdns_names(), 0);
    let remote = a.stream_mut(S0).unwrap().remote_candidates();
    assert_eq!(remote.len(), 2);
    assert!(
        remote
            .iter()
            .all(|c| c.candidate_type() == CandidateType::Host)
    );
    assert_eq!(remote[0].address(), addr("192.0.2.1:5000"));
    assert_eq!(remote[0].priority(), HOST_PRIORITY);
    assert_eq!(remote[1].address(), addr("192.0.2.1:5001"));
    assert_eq!(pairs(&mut a, S0).len(), 2);
    // A candidate trickled later with the known name pairs at once, without a request.
    a.stream_mut(S0)
        .unwrap()
        .add_remote_named_candidate(t0 + ms(10), named(PEER_NAME, 5002, 900))
        .unwrap();
    assert!(io_requests(&mut a).is_empty());
    assert_eq!(pairs(&mut a, S0).len(), 3);
    // A second answer changes nothing.
    assert_eq!(
        a.handle_mdns_resolved(t0 + ms(20), PEER_NAME, &[ip("192.0.2.66")]),
        Err(UsageError::UnknownMdnsName(PEER_NAME.into()).into())
    );
    assert_eq!(a.stream_mut(S0).unwrap().remote_candidates().len(), 3);
}

#[test]
fn exactly_one_usable_address_is_required() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    let names = ["a.local", "b.local", "c.local", "d.local", "e.local"];
    for (i, name) in names.into_iter().enumerate() {
        a.stream_mut(S0)
            .unwrap()
            .add_remote_named_candidate(t0, named(name, 5000 + i as u16, 100))
            .unwrap();
    }
    // One address, given twice: used.
    a.handle_mdns_resolved(t0, "a.local", &[ip("192.0.2.9"), ip("192.0.2.9")])
        .unwrap();
    // One IPv6 address: used.
    a.handle_mdns_resolved(t0, "b.local", &[ip("fd00::8")])
        .unwrap();
    // Two addresses (a second host answering): ignored (draft §3.2.2).
    a.handle_mdns_resolved(t0, "c.local", &[ip("192.0.2.7"), ip("fd00::7")])
        .unwrap();
    // Unusable addresses: ignored.
    a.handle_mdns_resolved(t0, "d.local", &[ip("0.0.0.0")])
        .unwrap();
    a.handle_mdns_resolved(t0, "e.local", &[ip("224.0.0.251")])
        .unwrap();
    let remote: Vec<SocketAddr> = a
        .stream_mut(S0)
        .unwrap()
        .remote_candidates()
        .iter()
        .map(Candidate::address)
        .collect();
    assert_eq!(remote, [addr("192.0.2.9:5000"), addr("[fd00::8]:5001")]);
    assert_eq!(a.pending_mdns_names(), 0);
}

#[test]
fn a_name_not_resolved_in_time_is_dropped_and_a_late_answer_changes_nothing() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    let mut s = a.stream_mut(S0).unwrap();
    s.add_remote_named_candidate(t0, named(PEER_NAME, 5000, 100))
        .unwrap();
    s.add_remote_candidate(host("h", PEER, HOST_PRIORITY))
        .unwrap();
    io_requests(&mut a);
    assert!(
        a.poll_timeout()
            .is_some_and(|t| t <= t0 + DEFAULT_MDNS_TIMEOUT),
        "a deadline for the name"
    );
    let mut log = Vec::new();
    drive_alone(
        &mut a,
        t0,
        t0 + DEFAULT_MDNS_TIMEOUT - ms(1),
        &mut log,
        |_| false,
    );
    assert_eq!(a.pending_mdns_names(), 1, "still waiting before 10 s");
    a.handle_timeout(t0 + DEFAULT_MDNS_TIMEOUT);
    assert_eq!(a.pending_mdns_names(), 0);
    assert_eq!(
        a.handle_mdns_resolved(
            t0 + DEFAULT_MDNS_TIMEOUT + ms(1),
            PEER_NAME,
            &[ip("192.0.2.9")]
        ),
        Err(UsageError::UnknownMdnsName(PEER_NAME.into()).into())
    );
    let remote = a.stream_mut(S0).unwrap().remote_candidates();
    assert_eq!(remote.len(), 1, "only the IP candidate: {remote:?}");
    assert!(
        log.iter().all(|(_, t)| t.to == addr(PEER)),
        "checks went to the IP candidate"
    );
    assert!(!log.is_empty());
}

#[test]
fn a_failed_resolution_drops_the_candidates_and_lets_the_component_fail() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    let mut s = a.stream_mut(S0).unwrap();
    s.add_remote_named_candidate(t0, named(PEER_NAME, 5000, 100))
        .unwrap();
    s.end_of_remote_candidates();
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Connecting));
    a.handle_mdns_resolve_failed(t0, PEER_NAME).unwrap();
    assert_eq!(a.component_state(S0, RTP), Some(ComponentState::Failed));
    assert_eq!(
        a.handle_mdns_resolve_failed(t0, PEER_NAME),
        Err(UsageError::UnknownMdnsName(PEER_NAME.into()).into())
    );
}

#[test]
fn pending_names_are_bounded_against_a_hostile_peer() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    let mut rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(9);
    for i in 0..100_000u32 {
        let name = HostName::random_mdns(&mut rng);
        let port = 1024 + (i % 60_000) as u16;
        a.stream_mut(S0)
            .unwrap()
            .add_remote_named_candidate(t0, named(name.as_str(), port, 100))
            .unwrap();
    }
    assert_eq!(a.pending_mdns_names(), DEFAULT_MAX_PENDING_MDNS_NAMES);
    assert_eq!(
        resolve_requests(&io_requests(&mut a)).len(),
        DEFAULT_MAX_PENDING_MDNS_NAMES
    );
    // One name with many candidates is bounded too.
    let mut b = agent_with_peer_creds(config(true, 1), t0);
    for port in 0..1000 {
        b.stream_mut(S0)
            .unwrap()
            .add_remote_named_candidate(t0, named(PEER_NAME, 2000 + port, 100))
            .unwrap();
    }
    b.handle_mdns_resolved(t0, PEER_NAME, &[ip("192.0.2.1")])
        .unwrap();
    assert_eq!(
        b.stream_mut(S0).unwrap().remote_candidates().len(),
        crate::agent::MAX_CANDIDATES_PER_NAME
    );
}

#[test]
fn an_answer_for_a_name_not_asked_changes_no_candidate() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    a.stream_mut(S0)
        .unwrap()
        .add_remote_named_candidate(t0, named(PEER_NAME, 5000, 100))
        .unwrap();
    for name in ["other.local", "not a name", ""] {
        assert_eq!(
            a.handle_mdns_resolved(t0, name, &[ip("198.51.100.66")]),
            Err(UsageError::UnknownMdnsName(name.into()).into())
        );
    }
    assert!(a.stream_mut(S0).unwrap().remote_candidates().is_empty());
    assert_eq!(a.pending_mdns_names(), 1);
    a.handle_mdns_resolved(t0, PEER_NAME, &[ip("192.0.2.1")])
        .unwrap();
    let remote = a.stream_mut(S0).unwrap().remote_candidates();
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].address(), addr("192.0.2.1:5000"));
}

#[test]
fn a_resolved_name_upgrades_the_peer_reflexive_candidate_at_its_address() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(false, 1), t0);
    a.stream_mut(S0)
        .unwrap()
        .add_remote_named_candidate(t0, named(PEER_NAME, 5000, HOST_PRIORITY))
        .unwrap();
    // The peer's check arrives before the name resolves: a peer-reflexive candidate.
    let local_ufrag = creds(&mut a).ufrag().to_owned();
    let username = format!("{local_ufrag}:{PEER_UFRAG}");
    let local_key = key(creds(&mut a).pwd());
    let check = write_check(
        TransactionId::from([7; 12]),
        &CheckSpec {
            username: &username,
            key: &local_key,
            priority: Some(12345),
            controlling: Some(1),
            controlled: None,
            use_candidate: false,
        },
    );
    inject(&mut a, t0, addr(PEER), addr(LOCAL), &check);
    let before = pair_to(&mut a, S0, addr(PEER));
    assert_eq!(before.remote.candidate_type(), CandidateType::PeerReflexive);
    a.handle_mdns_resolved(t0 + ms(1), PEER_NAME, &[addr(PEER).ip()])
        .unwrap();
    let remote = a.stream_mut(S0).unwrap().remote_candidates();
    assert_eq!(
        remote.len(),
        1,
        "the prflx candidate was replaced: {remote:?}"
    );
    let after = pair_to(&mut a, S0, addr(PEER));
    // RFC 8445 §7.3.1.3 (draft-ietf-rtcweb-mdns-ice-candidates-04 §5.3): the pair stays,
    // with its state; the remote candidate is now the signalled host one.
    assert_eq!(pairs(&mut a, S0).len(), 1, "the same pair");
    assert_eq!(after.in_checklist, before.in_checklist);
    assert_eq!(after.state, before.state);
    assert_eq!(after.remote.candidate_type(), CandidateType::Host);
    assert_eq!(after.remote.priority(), HOST_PRIORITY);
}

#[test]
fn names_outside_local_and_misuse_are_refused() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    let mut s = a.stream_mut(S0).unwrap();
    // Other domains, and .local names of more than one label (draft §3.2.1 step 1).
    for name in ["turn.example.com", "host.sub.local"] {
        let fqdn = named(name, 5000, 100);
        assert_eq!(
            s.add_remote_named_candidate(t0, fqdn.clone()),
            Err(UsageError::UnsupportedHostName(fqdn.name().clone()).into())
        );
    }
    let two =
        NamedCandidate::parse(&format!("candidate:1 2 UDP 5 {PEER_NAME} 9 typ host")).unwrap();
    assert_eq!(
        s.add_remote_named_candidate(t0, two),
        Err(UsageError::CandidateComponent(ComponentId::new(2).unwrap()).into())
    );
    s.end_of_remote_candidates();
    assert_eq!(
        s.add_remote_named_candidate(t0, named(PEER_NAME, 5000, 100)),
        Err(AgentError::AfterEndOfCandidates)
    );
    assert!(io_requests(&mut a).is_empty());
}

#[test]
fn hidden_host_candidates_are_announced_by_name_at_once_and_published() {
    let t0 = origin();
    let mut a = Agent::new(config(true, 1).hide_host_addresses(true));
    let sid = a.add_stream();
    let mut st = a.stream_mut(sid).unwrap();
    let c = st.add_component().unwrap();
    st.add_local_socket(c, TransportType::Udp, addr(LOCAL))
        .unwrap();
    st.add_local_socket(c, TransportType::Udp, addr("192.0.2.2:6001"))
        .unwrap();
    st.gather_candidates(t0).unwrap();
    let requests = io_requests(&mut a);
    let published = publish_requests(&requests);
    // One name per address (draft §3.1.1 step 2), two sockets on one address.
    assert_eq!(published.len(), 1, "{requests:?}");
    let (name, address) = published[0].clone();
    assert_eq!(address, addr(LOCAL).ip());
    assert!(name.is_mdns());
    // Announced at once (draft §3.1.2.1); end-of-candidates waits for the claim.
    let ev = events(&mut a);
    let announced = named_announcements(&ev);
    assert_eq!(announced.len(), 2);
    assert!(announced.iter().all(|c| c.name() == &name));
    let ports: Vec<u16> = announced.iter().map(NamedCandidate::port).collect();
    assert_eq!(ports, [6000, 6001]);
    assert_eq!(announced[0].candidate_type(), CandidateType::Host);
    assert!(
        !announced[0]
            .to_string()
            .contains(&addr(LOCAL).ip().to_string())
    );
    assert!(
        !ev.iter()
            .any(|e| matches!(e, AgentEvent::LocalCandidate { .. })),
        "the address is never announced: {ev:?}"
    );
    assert!(!gathering_complete(&ev));
    // Internally the real address is kept for pairing.
    let local = a.stream_mut(S0).unwrap().local_candidates();
    assert_eq!(local[0].address(), addr(LOCAL));
    // The claim is taken once; a name not ours is refused.
    a.handle_mdns_published(t0 + ms(1000), name.as_str())
        .unwrap();
    assert!(
        a.handle_mdns_published(t0 + ms(1000), name.as_str())
            .is_err()
    );
    assert_eq!(
        a.handle_mdns_published(t0 + ms(1000), PEER_NAME),
        Err(UsageError::UnknownMdnsName(PEER_NAME.into()).into())
    );
    // Close withdraws the name.
    a.close(t0 + ms(2000));
    let requests = io_requests(&mut a);
    assert_eq!(
        requests,
        [IoRequest::MdnsUnpublish { name: name.clone() }],
        "{requests:?}"
    );
}

#[test]
fn names_come_from_the_seeded_rng() {
    let t0 = origin();
    let name = |seed| {
        publish_requests(&io_requests(&mut hiding_agent(seed, t0)))[0]
            .0
            .clone()
    };
    assert_eq!(name(5), name(5));
    assert_ne!(name(5), name(6));
}

#[test]
fn a_conflict_while_probing_publishes_a_new_name_and_announces_it_before_the_end() {
    let t0 = origin();
    let mut a = hiding_agent(1, t0);
    let first = publish_requests(&io_requests(&mut a))[0].0.clone();
    // Another host holds it: a second name, announced again, gathering still open.
    a.handle_mdns_publish_failed(t0 + ms(500), first.as_str())
        .unwrap();
    let second = publish_requests(&io_requests(&mut a))[0].0.clone();
    assert_ne!(first, second);
    let ev = events(&mut a);
    assert_eq!(named_announcements(&ev)[0].name(), &second);
    assert!(!gathering_complete(&ev));
    // The old name is no longer ours.
    assert!(
        a.handle_mdns_published(t0 + ms(600), first.as_str())
            .is_err()
    );
    assert!(
        a.handle_mdns_publish_failed(t0 + ms(600), first.as_str())
            .is_err()
    );
    // A third.
    a.handle_mdns_publish_failed(t0 + ms(1000), second.as_str())
        .unwrap();
    let third = publish_requests(&io_requests(&mut a))[0].0.clone();
    assert_eq!(named_announcements(&events(&mut a))[0].name(), &third);
    assert_eq!(MAX_PUBLISH_ATTEMPTS, 3);
    // The last attempt used: no new name, no new announcement, gathering completes, and
    // there is nothing to unpublish.
    a.handle_mdns_publish_failed(t0 + ms(1500), third.as_str())
        .unwrap();
    assert!(io_requests(&mut a).is_empty());
    let ev = events(&mut a);
    assert!(named_announcements(&ev).is_empty());
    assert!(gathering_complete(&ev));
    assert!(
        a.handle_mdns_publish_failed(t0 + ms(1500), third.as_str())
            .is_err()
    );
    a.close(t0 + ms(8000));
    assert!(io_requests(&mut a).is_empty());
}

#[test]
fn a_conflict_after_end_of_candidates_renames_without_announcing() {
    let t0 = origin();
    let mut a = hiding_agent(1, t0);
    let first = publish_requests(&io_requests(&mut a))[0].0.clone();
    a.handle_mdns_published(t0 + ms(1000), first.as_str())
        .unwrap();
    assert!(gathering_complete(&events(&mut a)));
    a.handle_mdns_publish_failed(t0 + ms(5000), first.as_str())
        .unwrap();
    let second = publish_requests(&io_requests(&mut a));
    assert_eq!(second.len(), 1);
    // RFC 8838 §13: no candidate after end-of-candidates.
    assert!(named_announcements(&events(&mut a)).is_empty());
    a.handle_mdns_published(t0 + ms(6000), second[0].0.as_str())
        .unwrap();
}

#[test]
fn gathering_waits_for_a_claim_no_longer_than_the_timeout() {
    let t0 = origin();
    let mut a = hiding_agent(1, t0);
    io_requests(&mut a);
    let mut log = Vec::new();
    let early = t0 + DEFAULT_MDNS_TIMEOUT - ms(1);
    let stopped = drive_alone(&mut a, t0, early, &mut log, |a| {
        a.stream_mut(S0).unwrap().gathering_complete()
    });
    assert_eq!(stopped, early, "still waiting for the claim");
    assert!(!gathering_complete(&events(&mut a)));
    a.handle_timeout(t0 + DEFAULT_MDNS_TIMEOUT);
    assert!(gathering_complete(&events(&mut a)));
}

/// An agent on `LOCAL` (hiding its host address when `hide`) whose STUN server answers its
/// query with `mapped`; returns it and its events so far.
fn answered_by_stun_server(hide: bool, mapped: SocketAddr) -> (Agent, Vec<AgentEvent>) {
    let t0 = origin();
    let server = addr("198.51.100.1:3478");
    let mut a = agent(
        config(true, 1)
            .hide_host_addresses(hide)
            .stun_server(StunServer::udp(server)),
        &[LOCAL],
        t0,
    );
    let req = a.poll_transmit(t0).expect("STUN request");
    let tid = parse(&req).transaction_id();
    inject(
        &mut a,
        t0,
        server,
        addr(LOCAL),
        &write_success(tid, mapped, None),
    );
    let ev = events(&mut a);
    (a, ev)
}

#[test]
fn hidden_server_reflexive_candidates_carry_no_base() {
    let mapped = addr("203.0.113.7:40000");
    let (mut a, ev) = answered_by_stun_server(true, mapped);
    let srflx: Vec<&Candidate> = ev
        .iter()
        .filter_map(|e| match e {
            AgentEvent::LocalCandidate { candidate, .. } => Some(candidate),
            _ => None,
        })
        .collect();
    assert_eq!(srflx.len(), 1, "{ev:?}");
    assert_eq!(srflx[0].candidate_type(), CandidateType::ServerReflexive);
    assert_eq!(srflx[0].address(), mapped);
    // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.1.2.2.
    assert!(
        srflx[0].to_string().contains("raddr 0.0.0.0 rport 9"),
        "{}",
        srflx[0]
    );
    // The agent keeps the base for itself.
    let local = a.stream_mut(S0).unwrap().local_candidates();
    let kept = local
        .iter()
        .find(|c| c.candidate_type() == CandidateType::ServerReflexive)
        .unwrap();
    assert_eq!(kept.related_address(), Some(addr(LOCAL)));
}

#[test]
fn a_name_resolved_after_the_peer_restarted_is_dropped() {
    let t0 = origin();
    let mut a = agent_with_peer_creds(config(true, 1), t0);
    a.stream_mut(S0)
        .unwrap()
        .add_remote_named_candidate(t0, named(PEER_NAME, 5000, 100))
        .unwrap();
    assert_eq!(resolve_requests(&io_requests(&mut a)), [PEER_NAME]);
    // The peer restarts (new credentials) before the name resolves: the candidate was of
    // the old generation.
    a.stream_mut(S0)
        .unwrap()
        .set_remote_credentials(IceCredentials::new("newu", "newpasswordnewpassword1").unwrap());
    a.handle_mdns_resolved(t0 + ms(5), PEER_NAME, &[ip("192.0.2.1")])
        .unwrap();
    assert!(a.stream_mut(S0).unwrap().remote_candidates().is_empty());
    // The name is known now: the new generation's candidate with it pairs at once.
    a.stream_mut(S0)
        .unwrap()
        .add_remote_named_candidate(t0 + ms(6), named(PEER_NAME, 5000, 100))
        .unwrap();
    assert!(
        io_requests(&mut a)
            .iter()
            .all(|r| !matches!(r, IoRequest::MdnsResolve { .. }))
    );
    assert_eq!(a.stream_mut(S0).unwrap().remote_candidates().len(), 1);
}

#[test]
fn a_public_address_gets_a_server_reflexive_candidate_beside_its_name() {
    // The STUN server sees the host address itself: the address is public.
    for hide in [false, true] {
        let (_, ev) = answered_by_stun_server(hide, addr(LOCAL));
        let srflx: Vec<Candidate> = ev
            .into_iter()
            .filter_map(|e| match e {
                AgentEvent::LocalCandidate { candidate, .. } => Some(candidate),
                _ => None,
            })
            .collect();
        if hide {
            // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.1.2.2: not redundant with the
            // named host candidate.
            assert_eq!(srflx.len(), 1, "{srflx:?}");
            assert_eq!(srflx[0].candidate_type(), CandidateType::ServerReflexive);
            assert_eq!(srflx[0].address(), addr(LOCAL));
        } else {
            // RFC 8445 §5.1.3: redundant with the host candidate.
            assert!(srflx.is_empty(), "{srflx:?}");
        }
    }
}
