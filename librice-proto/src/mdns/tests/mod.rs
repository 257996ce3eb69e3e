//! Deterministic tests of [`Mdns`]: a virtual clock from one real origin, pinned seeds, and
//! a one-link network of a few nodes that delivers each one's datagrams to the others.

mod fixtures;
mod net;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use simple_dns::rdata::{A, CNAME, RData};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QTYPE, ResourceRecord, TYPE};

use self::fixtures::{CHROMIUM_A_QUERY, CHROMIUM_ANNOUNCEMENT};
use self::net::*;
use super::*;

#[test]
fn a_published_name_resolves_on_another_host() {
    let mut net = Net::new(&[1, 2]);
    let start = net.now;
    net.nodes[0]
        .mdns
        .publish(start, NAME, &[V4_A, V6_A])
        .unwrap();
    net.run_until(Duration::from_secs(2));
    let published = &net.nodes[0].events;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].1, MdnsEvent::Published { name: NAME.into() });
    // A random 0-250 ms, three probes 250 ms apart, 250 ms after the last.
    assert!(
        (ms(750)..=ms(1000)).contains(&published[0].0),
        "{:?}",
        published[0].0
    );

    let now = net.now;
    net.nodes[1]
        .mdns
        .resolve(now, &NAME.to_uppercase())
        .unwrap();
    net.run_until(Duration::from_secs(3));
    assert_eq!(
        net.events(1),
        [MdnsEvent::Resolved {
            name: NAME.to_uppercase(),
            addrs: vec![V4_A, V6_A],
            ttl: Duration::from_secs(120),
        }]
    );
    // Answered at once, both types in the answer section and none repeated as additional
    // data; the resolution ended: no further query.
    assert_eq!(net.nodes[1].events[0].0, ms(2000));
    let (_, _, reply) = net.sent.last().unwrap();
    assert_eq!(
        reply.to, net.nodes[1].addr,
        "a unicast reply to the QU query"
    );
    let packet = Packet::parse(&reply.data).unwrap();
    assert_eq!(packet.answers.len(), 2);
    assert!(packet.additional_records.is_empty());
    assert_eq!(net.nodes[1].mdns.poll_timeout(), None);
}

#[test]
fn probes_and_announcements_follow_the_schedule() {
    let mut net = Net::new(&[3]);
    let start = net.now;
    net.nodes[0].mdns.publish(start, NAME, &[V4_A]).unwrap();
    net.run_until(Duration::from_secs(5));
    let v4: Vec<_> = net
        .sent
        .iter()
        .filter(|(_, _, t)| t.to == MDNS_V4)
        .collect();
    assert_eq!(v4.len(), 5, "three probes and two announcements");
    let first = v4[0].0;
    assert!(first <= ms(250));
    let times: Vec<Duration> = v4.iter().map(|(at, _, _)| *at - first).collect();
    assert_eq!(times, [ms(0), ms(250), ms(500), ms(750), ms(1750)]);
    for (_, _, probe) in &v4[..3] {
        let packet = Packet::parse(&probe.data).unwrap();
        assert!(!packet.has_flags(PacketFlag::RESPONSE));
        assert_eq!(packet.questions.len(), 1);
        assert_eq!(packet.questions[0].qtype, QTYPE::ANY);
        assert!(packet.questions[0].unicast_response);
        assert_eq!(packet.name_servers.len(), 1, "the proposed record");
    }
    for (_, _, announcement) in &v4[3..] {
        let packet = Packet::parse(&announcement.data).unwrap();
        assert!(packet.has_flags(PacketFlag::RESPONSE | PacketFlag::AUTHORITATIVE_ANSWER));
        assert!(packet.questions.is_empty());
        assert_eq!(
            answers(&announcement.data),
            [(NAME.into(), V4_A, 120, true)]
        );
    }
    // Both families by default.
    assert_eq!(
        net.sent.iter().filter(|(_, _, t)| t.to == MDNS_V6).count(),
        5
    );
}

#[test]
fn simultaneous_probes_end_in_one_conflict_for_the_earlier_data() {
    let mut net = Net::new(&[1, 2]);
    let start = net.now;
    // 192.0.2.2 is lexicographically later than 192.0.2.1: node 1 wins (RFC 6762 §8.2.1).
    net.nodes[0].mdns.publish(start, NAME, &[V4_A]).unwrap();
    net.nodes[1].mdns.publish(start, NAME, &[V4_B]).unwrap();
    net.run_until(Duration::from_secs(6));
    assert_eq!(net.events(0), [MdnsEvent::Conflict { name: NAME.into() }]);
    assert_eq!(net.events(1), [MdnsEvent::Published { name: NAME.into() }]);
    // The same with the roles swapped.
    let mut net = Net::new(&[1, 2]);
    net.nodes[0].mdns.publish(start, NAME, &[V4_B]).unwrap();
    net.nodes[1].mdns.publish(start, NAME, &[V4_A]).unwrap();
    net.run_until(Duration::from_secs(6));
    assert_eq!(net.events(0), [MdnsEvent::Published { name: NAME.into() }]);
    assert_eq!(net.events(1), [MdnsEvent::Conflict { name: NAME.into() }]);
}

#[test]
fn simultaneous_probes_with_identical_data_end_in_one_conflict() {
    // RFC 6762 §8.2: identical records lose no tie-break, so both keep probing; the first
    // to claim the name announces it, and any record of the name is a conflict for a host
    // still probing (§8.1): the slower one (the later random delay) gives the name up.
    for seeds in [[1, 2], [3, 4], [5, 6]] {
        let mut net = Net::new(&seeds);
        let start = net.now;
        net.nodes[0].mdns.publish(start, NAME, &[V4_A]).unwrap();
        net.nodes[1].mdns.publish(start, NAME, &[V4_A]).unwrap();
        net.run_until(Duration::from_secs(5));
        let mut events = [net.events(0), net.events(1)].concat();
        events.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(
            events,
            [
                MdnsEvent::Conflict { name: NAME.into() },
                MdnsEvent::Published { name: NAME.into() }
            ],
            "seeds {seeds:?}"
        );
    }
}

#[test]
fn a_late_prober_meets_the_owners_defence() {
    let mut net = Net::new(&[1, 2]);
    let start = net.now;
    net.nodes[0].mdns.publish(start, NAME, &[V4_A]).unwrap();
    net.run_until(Duration::from_secs(3));
    let now = net.now;
    net.nodes[1].mdns.publish(now, NAME, &[V4_B]).unwrap();
    net.run_until(Duration::from_secs(6));
    assert_eq!(net.events(0), [MdnsEvent::Published { name: NAME.into() }]);
    assert_eq!(net.events(1), [MdnsEvent::Conflict { name: NAME.into() }]);
    // A conflicting answer after the name is claimed drops it too (§9).
    let (mut mdns, now) = published(&[V4_A]);
    let from = SocketAddr::new(V4_B, 5353);
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes(NAME, CLASS::IN, 120, Ipv4Addr::new(192, 0, 2, 2)),
    );
    assert_eq!(
        drain_events(&mut mdns),
        [MdnsEvent::Conflict { name: NAME.into() }]
    );
    assert!(mdns.unpublish(now, NAME).is_err());
}

#[test]
fn responses_before_the_first_probe_are_stale_and_after_it_conflicts() {
    let start = origin();
    let from = SocketAddr::new(V4_B, 5353);
    let answer = answer_bytes(NAME, CLASS::IN, 120, Ipv4Addr::new(192, 0, 2, 2));
    let mut mdns = Mdns::new(MdnsConfig::default().rng_seed(3));
    mdns.publish(start, NAME, &[V4_A]).unwrap();
    // RFC 6762 §8.1: before the first probe, ignored.
    mdns.handle_incoming(start, from, &answer);
    assert!(drain_events(&mut mdns).is_empty());
    let first_probe = mdns.poll_timeout().unwrap();
    mdns.handle_timeout(first_probe);
    assert_eq!(
        drain(&mut mdns, first_probe).len(),
        2,
        "the first probe, both families"
    );
    // After it, a conflict, and the name is gone.
    mdns.handle_incoming(first_probe, from, &answer);
    assert_eq!(
        drain_events(&mut mdns),
        [MdnsEvent::Conflict { name: NAME.into() }]
    );
    assert_eq!(mdns.poll_timeout(), None);
}

#[test]
fn our_own_looped_back_packets_are_no_conflict() {
    let (mut mdns, now) = published(&[V4_A]);
    // Its own announcement, as multicast loopback returns it.
    mdns.handle_incoming(
        now,
        SocketAddr::new(V4_A, 5353),
        &answer_bytes(NAME, CLASS::IN, 120, Ipv4Addr::new(192, 0, 2, 1)),
    );
    assert!(drain_events(&mut mdns).is_empty());
}

#[test]
fn a_name_that_never_resolves_fails_at_the_timeout() {
    let start = origin();
    let mut mdns = Mdns::new(MdnsConfig::default().ipv6(false));
    mdns.resolve(start, "nobody.local").unwrap();
    let mut sent = vec![(Duration::ZERO, drain(&mut mdns, start))];
    let mut failed = None;
    while let Some(t) = mdns.poll_timeout() {
        mdns.handle_timeout(t);
        sent.push((t - start, drain(&mut mdns, t)));
        if let Some(event) = mdns.poll_event() {
            failed = Some((t - start, event));
        }
    }
    assert_eq!(
        failed,
        Some((
            Duration::from_secs(3),
            MdnsEvent::ResolveFailed {
                name: "nobody.local".into()
            }
        ))
    );
    let queries: Vec<(Duration, bool)> = sent
        .iter()
        .flat_map(|(at, ts)| ts.iter().map(move |t| (*at, t)))
        .map(|(at, t)| {
            assert_eq!(t.to, MDNS_V4);
            let packet = Packet::parse(&t.data).unwrap();
            let types: Vec<QTYPE> = packet.questions.iter().map(|q| q.qtype).collect();
            assert_eq!(types, [QTYPE::TYPE(TYPE::A), QTYPE::TYPE(TYPE::AAAA)]);
            (at, packet.questions[0].unicast_response)
        })
        .collect();
    // QU on the first query only (RFC 6762 §5.4), one second apart (§5.2).
    assert_eq!(
        queries,
        [(ms(0), true), (ms(1000), false), (ms(2000), false)]
    );
}

#[test]
fn a_late_timeout_does_not_send_queries_back_to_back() {
    let start = origin();
    let mut mdns = Mdns::new(MdnsConfig::default().ipv6(false));
    mdns.resolve(start, "nobody.local").unwrap();
    drain(&mut mdns, start);
    // The caller wakes 1.9 s late: one query now, the next a second later.
    let late = start + ms(1900);
    mdns.handle_timeout(late);
    assert_eq!(drain(&mut mdns, late).len(), 1);
    assert_eq!(mdns.poll_timeout(), Some(start + ms(2900)));
    mdns.handle_timeout(start + ms(2900));
    assert_eq!(drain(&mut mdns, late).len(), 1);
    assert_eq!(mdns.poll_timeout(), Some(start + ms(3000)));
    mdns.handle_timeout(start + ms(3000));
    assert!(matches!(
        mdns.poll_event(),
        Some(MdnsEvent::ResolveFailed { .. })
    ));
}

#[test]
fn the_resolve_timeout_is_configurable() {
    let start = origin();
    let config = MdnsConfig::default().ipv4(false).resolve_timeout(ms(1500));
    let mut mdns = Mdns::new(config);
    mdns.resolve(start, "nobody.local").unwrap();
    let mut queries = vec![(Duration::ZERO, drain(&mut mdns, start))];
    let mut failed = None;
    while let Some(t) = mdns.poll_timeout() {
        mdns.handle_timeout(t);
        queries.push((t - start, drain(&mut mdns, t)));
        if let Some(MdnsEvent::ResolveFailed { .. }) = mdns.poll_event() {
            failed = Some(t - start);
        }
    }
    assert_eq!(failed, Some(ms(1500)));
    let sent: Vec<(Duration, SocketAddr)> = queries
        .iter()
        .flat_map(|(at, ts)| ts.iter().map(move |t| (*at, t.to)))
        .collect();
    // IPv6 only, two queries before the timeout.
    assert_eq!(sent, [(ms(0), MDNS_V6), (ms(1000), MDNS_V6)]);
}

#[test]
fn a_qu_query_gets_a_unicast_answer_and_a_qm_query_a_multicast_one() {
    let (mut mdns, now) = published(&[V4_A]);
    mdns.handle_incoming(now, QUERIER, &query_bytes(NAME, TYPE::A, true, None));
    let sent = drain(&mut mdns, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, QUERIER);
    assert!(!sent[0].is_multicast());
    assert_eq!(answers(&sent[0].data), [(NAME.into(), V4_A, 120, true)]);

    mdns.handle_incoming(now, QUERIER, &query_bytes(NAME, TYPE::A, false, None));
    let sent = drain(&mut mdns, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, MDNS_V4);
    assert_eq!(answers(&sent[0].data), [(NAME.into(), V4_A, 120, true)]);
    // Not multicast again within a second (RFC 6762 §6).
    mdns.handle_incoming(
        now + ms(500),
        QUERIER,
        &query_bytes(NAME, TYPE::A, false, None),
    );
    assert!(drain(&mut mdns, now).is_empty());
    mdns.handle_incoming(
        now + ms(1000),
        QUERIER,
        &query_bytes(NAME, TYPE::A, false, None),
    );
    assert_eq!(drain(&mut mdns, now).len(), 1);
    // No answer for names we do not own.
    mdns.handle_incoming(
        now,
        QUERIER,
        &query_bytes("other.local", TYPE::A, true, None),
    );
    assert!(drain(&mut mdns, now).is_empty());
}

#[test]
fn a_legacy_query_gets_a_unicast_reply_echoing_it() {
    let (mut mdns, now) = published(&[V4_A]);
    let legacy = SocketAddr::new(V4_B, 40000);
    let mut query = query_bytes(&NAME.to_uppercase(), TYPE::A, false, None);
    query[..2].copy_from_slice(&0x1234u16.to_be_bytes());
    mdns.handle_incoming(now, legacy, &query);
    let sent = drain(&mut mdns, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, legacy);
    let packet = Packet::parse(&sent[0].data).unwrap();
    assert_eq!(packet.id(), 0x1234);
    assert_eq!(packet.questions.len(), 1);
    assert_eq!(packet.questions[0].qname.to_string(), NAME.to_uppercase());
    // RFC 6762 §6.7: a TTL of at most 10 s, no cache-flush bit.
    assert_eq!(answers(&sent[0].data), [(NAME.into(), V4_A, 10, false)]);
}

#[test]
fn known_answers_are_not_repeated_and_missing_types_get_nsec() {
    let (mut mdns, now) = published(&[V4_A]);
    // RFC 6762 §7.1: the querier knows the answer with more than half its TTL left.
    mdns.handle_incoming(
        now,
        QUERIER,
        &query_bytes(NAME, TYPE::A, false, Some((V4_A, 100))),
    );
    assert!(drain(&mut mdns, now).is_empty());
    // With less than half, it is answered.
    mdns.handle_incoming(
        now,
        QUERIER,
        &query_bytes(NAME, TYPE::A, false, Some((V4_A, 30))),
    );
    assert_eq!(drain(&mut mdns, now).len(), 1);
    // §6.1: an IPv4-only name asked for AAAA answers with an NSEC record.
    mdns.handle_incoming(now, QUERIER, &query_bytes(NAME, TYPE::AAAA, true, None));
    let sent = drain(&mut mdns, now);
    assert_eq!(sent.len(), 1);
    let packet = Packet::parse(&sent[0].data).unwrap();
    assert_eq!(packet.answers.len(), 1);
    assert_eq!(packet.answers[0].rdata.type_code(), TYPE::NSEC);
    // §6.2: the A record as additional data.
    assert_eq!(packet.additional_records.len(), 1);
    assert_eq!(packet.additional_records[0].rdata.type_code(), TYPE::A);
}

#[test]
fn unpublish_sends_a_goodbye_that_resolves_nothing() {
    let (mut mdns, now) = published(&[V4_A]);
    mdns.unpublish(now, NAME).unwrap();
    let sent = drain(&mut mdns, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, MDNS_V4);
    assert_eq!(answers(&sent[0].data), [(NAME.into(), V4_A, 0, false)]);
    // No more answers for it.
    mdns.handle_incoming(now, QUERIER, &query_bytes(NAME, TYPE::A, true, None));
    assert!(drain(&mut mdns, now).is_empty());
    // A resolver waiting for the name is not resolved by the goodbye.
    let mut resolver = Mdns::new(MdnsConfig::default());
    resolver.resolve(now, NAME).unwrap();
    resolver.handle_incoming(now, SocketAddr::new(V4_A, 5353), &sent[0].data);
    assert!(drain_events(&mut resolver).is_empty());
    // A name still probing leaves without a goodbye.
    let mut mdns = Mdns::new(MdnsConfig::default());
    mdns.publish(now, NAME, &[V4_A]).unwrap();
    mdns.unpublish(now, NAME).unwrap();
    assert!(drain(&mut mdns, now).is_empty());
    assert_eq!(mdns.poll_timeout(), None);
}

#[test]
fn answers_resolve_only_the_exact_name_asked_with_capped_ttls() {
    let now = origin();
    let from = SocketAddr::new(V4_A, 5353);
    let mut mdns = Mdns::new(MdnsConfig::default());
    mdns.resolve(now, "Peer.local").unwrap();
    drain(&mut mdns, now);
    // Another name, a sub-name, a CNAME pointing elsewhere, class CH, a goodbye, the
    // right answer from a port other than 5353: nothing.
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes("other.local", CLASS::IN, 120, Ipv4Addr::LOCALHOST),
    );
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes("x.peer.local", CLASS::IN, 120, Ipv4Addr::LOCALHOST),
    );
    let mut cname = Packet::new_reply(0);
    cname.answers.push(ResourceRecord::new(
        Name::new_unchecked("peer.local"),
        CLASS::IN,
        120,
        RData::CNAME(CNAME(Name::new_unchecked("other.local"))),
    ));
    cname.answers.push(ResourceRecord::new(
        Name::new_unchecked("other.local"),
        CLASS::IN,
        120,
        RData::A(A::from(Ipv4Addr::LOCALHOST)),
    ));
    mdns.handle_incoming(now, from, &cname.build_bytes_vec().unwrap());
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes("peer.local", CLASS::CH, 120, Ipv4Addr::LOCALHOST),
    );
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes("peer.local", CLASS::IN, 0, Ipv4Addr::LOCALHOST),
    );
    mdns.handle_incoming(
        now,
        SocketAddr::new(V4_A, 5354),
        &answer_bytes("peer.local", CLASS::IN, 120, Ipv4Addr::LOCALHOST),
    );
    assert!(drain_events(&mut mdns).is_empty());
    // The known answers of a query are not answers.
    let mut known = query_bytes("peer.local", TYPE::A, false, Some((V4_A, 120)));
    known[..2].copy_from_slice(&[0, 0]);
    mdns.handle_incoming(now, from, &known);
    assert!(drain_events(&mut mdns).is_empty());
    // The name in another case, with a huge TTL: resolved, the TTL capped.
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes(
            "PEER.LOCAL",
            CLASS::IN,
            u32::MAX,
            Ipv4Addr::new(10, 0, 0, 1),
        ),
    );
    assert_eq!(
        drain_events(&mut mdns),
        [MdnsEvent::Resolved {
            name: "Peer.local".into(),
            addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))],
            ttl: Duration::from_secs(120),
        }]
    );
    // Once resolved, later answers are ignored.
    mdns.handle_incoming(
        now,
        from,
        &answer_bytes("peer.local", CLASS::IN, 120, Ipv4Addr::LOCALHOST),
    );
    assert!(drain_events(&mut mdns).is_empty());
}

#[test]
fn calls_refuse_bad_names_and_limits() {
    let now = origin();
    let mut mdns = Mdns::new(MdnsConfig::default());
    assert!(matches!(
        mdns.resolve(now, "example.com"),
        Err(MdnsError::NotLocal { .. })
    ));
    assert!(matches!(
        mdns.resolve(now, "a..local"),
        Err(MdnsError::InvalidName { .. })
    ));
    assert_eq!(
        mdns.publish(now, NAME, &[]),
        Err(MdnsError::Addresses { count: 0 })
    );
    let many: Vec<IpAddr> = (0..17)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
        .collect();
    assert_eq!(
        mdns.publish(now, NAME, &many),
        Err(MdnsError::Addresses { count: 17 })
    );
    mdns.publish(now, NAME, &[V4_A, V4_A]).unwrap();
    assert!(matches!(
        mdns.publish(now, &NAME.to_uppercase(), &[V4_A]),
        Err(MdnsError::AlreadyPublished { .. })
    ));
    assert!(matches!(
        mdns.unpublish(now, "x.local"),
        Err(MdnsError::NotPublished { .. })
    ));
    for i in 0..MAX_RESOLUTIONS {
        mdns.resolve(now, &format!("n{i}.local")).unwrap();
    }
    // A name in flight already is accepted, a new one is not.
    mdns.resolve(now, "n0.local").unwrap();
    assert_eq!(
        mdns.resolve(now, "more.local"),
        Err(MdnsError::TooManyResolutions)
    );
    assert_eq!(mdns.cancel_resolve("N1.local"), Ok(true));
    mdns.resolve(now, "more.local").unwrap();
    for i in 1..MAX_PUBLISHED {
        mdns.publish(now, &format!("p{i}.local"), &[V4_A]).unwrap();
    }
    assert_eq!(
        mdns.publish(now, "p.local", &[V4_A]),
        Err(MdnsError::TooManyNames)
    );
    assert!(!MdnsError::TooManyNames.to_string().is_empty());
}

#[test]
fn hostile_input_is_dropped_and_state_stays_bounded() {
    let (mut mdns, now) = published(&[V4_A]);
    mdns.resolve(now, "peer.local").unwrap();
    drain(&mut mdns, now);
    let from = SocketAddr::new(V4_B, 5353);
    // Every truncation of a valid response and of a valid query.
    let response = answer_bytes("peer.local", CLASS::IN, 120, Ipv4Addr::LOCALHOST);
    for len in 0..response.len() {
        mdns.handle_incoming(now, from, &response[..len]);
    }
    let query = query_bytes(NAME, TYPE::A, true, None);
    for len in 0..query.len() {
        mdns.handle_incoming(now, from, &query[..len]);
    }
    assert!(drain_events(&mut mdns).is_empty());
    assert!(drain(&mut mdns, now).is_empty());
    // A header that claims 65,535 entries per section.
    let mut header = [0xffu8; 12];
    header[..4].copy_from_slice(&[0, 0, 0x84, 0]);
    mdns.handle_incoming(now, from, &header);
    // An unknown class (the codec refuses the message), and a self-pointing name.
    let mut unknown_class = response.clone();
    let class_at = unknown_class.len() - 12;
    unknown_class[class_at..class_at + 2].copy_from_slice(&0x0042u16.to_be_bytes());
    mdns.handle_incoming(now, from, &unknown_class);
    let mut looped = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 1, 2, 3, 4]);
    mdns.handle_incoming(now, from, &looped);
    // Ten thousand answers in one message: more than 9000 bytes, dropped whole.
    let mut flood = Packet::new_reply(0);
    for i in 0..10_000u32 {
        flood.answers.push(ResourceRecord::new(
            Name::new_unchecked("peer.local"),
            CLASS::IN,
            120,
            RData::A(A { address: i }),
        ));
    }
    let flood = flood.build_bytes_vec_compressed().unwrap();
    assert!(flood.len() > MAX_MESSAGE);
    mdns.handle_incoming(now, from, &flood);
    // Ten thousand messages answering names nobody asked about.
    for i in 0..10_000u32 {
        let name = format!("n{i}.local");
        mdns.handle_incoming(
            now,
            from,
            &answer_bytes(&name, CLASS::IN, 120, Ipv4Addr::from(i)),
        );
    }
    assert_eq!(
        mdns.state_sizes(),
        (1, 1, 0, 0),
        "nothing kept of the flood"
    );
    // Ten thousand QU queries: the queue stops at its bound.
    for _ in 0..10_000 {
        mdns.handle_incoming(now, from, &query_bytes(NAME, TYPE::A, true, None));
    }
    assert_eq!(mdns.state_sizes(), (1, 1, MAX_QUEUED_TRANSMITS, 0));
    assert_eq!(drain(&mut mdns, now).len(), MAX_QUEUED_TRANSMITS);
    // Ten thousand multicast queries: one answer a second.
    for i in 0..10_000u64 {
        mdns.handle_incoming(
            now + ms(i / 100),
            QUERIER,
            &query_bytes(NAME, TYPE::A, false, None),
        );
    }
    assert_eq!(drain(&mut mdns, now).len(), 1);
    // The resolution still works.
    mdns.handle_incoming(now, from, &response);
    assert_eq!(drain_events(&mut mdns).len(), 1);
}

#[test]
fn real_packets_byte_for_byte() {
    // Our announcement of an IPv4 name is byte for byte what a browser announces.
    let start = origin();
    let mut mdns = Mdns::new(MdnsConfig::default().ipv6(false));
    mdns.publish(start, NAME, &[V4_A]).unwrap();
    let mut sent = Vec::new();
    while let Some(t) = mdns.poll_timeout() {
        mdns.handle_timeout(t);
        sent.extend(drain(&mut mdns, t));
    }
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[3].data, CHROMIUM_ANNOUNCEMENT);
    assert_eq!(sent[4].data, CHROMIUM_ANNOUNCEMENT);
    // A browser's query for our name: answered by multicast (it came from port 5353 and
    // has no QU bit), with the same answer section and an NSEC record saying the name has
    // no AAAA record (RFC 6762 §6.2, §6.1).
    let now = start + Duration::from_secs(5);
    mdns.handle_incoming(now, QUERIER, CHROMIUM_A_QUERY);
    let sent = drain(&mut mdns, now);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, MDNS_V4);
    let header = [0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    assert_eq!(sent[0].data[..12], header);
    let answer = &CHROMIUM_ANNOUNCEMENT[12..];
    assert_eq!(sent[0].data[12..12 + answer.len()], *answer);
    let packet = Packet::parse(&sent[0].data).unwrap();
    assert_eq!(packet.additional_records[0].rdata.type_code(), TYPE::NSEC);
    // Our resolver takes the browser's announcement.
    let mut resolver = Mdns::new(MdnsConfig::default());
    resolver.resolve(now, NAME).unwrap();
    let query = drain(&mut resolver, now);
    resolver.handle_incoming(now, QUERIER, CHROMIUM_ANNOUNCEMENT);
    assert_eq!(
        drain_events(&mut resolver),
        [MdnsEvent::Resolved {
            name: NAME.into(),
            addrs: vec![V4_A],
            ttl: Duration::from_secs(120),
        }]
    );
    // Our first query: the browser's question with the QU bit, then AAAA with the name
    // compressed to a pointer at offset 12.
    let mut expected = CHROMIUM_A_QUERY.to_vec();
    expected[5] = 2; // QDCOUNT 2
    let last = expected.len() - 2;
    expected[last] = 0x80; // QU
    expected.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x1c, 0x80, 0x01]);
    assert_eq!(query[0].data, expected);
    assert_eq!(query[0].to, MDNS_V4);
    assert_eq!(query[1].to, MDNS_V6);
}

#[test]
fn runs_with_one_seed_are_identical() {
    let run = || {
        let mut net = Net::new(&[9, 10]);
        let start = net.now;
        let name = net.nodes[0].mdns.random_name();
        net.nodes[0].mdns.publish(start, &name, &[V4_A]).unwrap();
        net.nodes[1].mdns.publish(start, &name, &[V4_B]).unwrap();
        net.run_until(Duration::from_secs(2));
        let now = net.now;
        net.nodes[1].mdns.resolve(now, "x.local").unwrap();
        net.run_until(Duration::from_secs(8));
        let sent: Vec<(Duration, usize, SocketAddr, Vec<u8>)> = net
            .sent
            .iter()
            .map(|(at, i, t)| (*at, *i, t.to, t.data.clone()))
            .collect();
        (name, sent, net.events(0), net.events(1))
    };
    let first = run();
    assert!(!first.1.is_empty());
    assert_eq!(first, run());
}

/// Without unicast responses (RFC 6762 §15.1: another responder shares the port), neither
/// the first query nor the probes set the QU bit, and a name is still resolved through
/// the multicast answer.
#[test]
fn without_unicast_responses_no_query_or_probe_asks_for_one() {
    let start = origin();
    let config = || MdnsConfig::default().ipv6(false).unicast_responses(false);
    let mut mdns = Mdns::new(config().rng_seed(3));
    mdns.publish(start, NAME, &[V4_A]).unwrap();
    mdns.resolve(start, "other.local").unwrap();
    let mut at = start;
    let mut questions = 0;
    while at < start + Duration::from_secs(3) {
        if mdns.poll_timeout().is_some_and(|t| t <= at) {
            mdns.handle_timeout(at);
        }
        while let Some(t) = mdns.poll_transmit(at) {
            let packet = Packet::parse(&t.data).unwrap();
            for q in &packet.questions {
                assert!(!q.unicast_response, "no QU bit: {packet:?}");
                questions += 1;
            }
        }
        at += ms(10);
    }
    // Three probes and three queries of two questions.
    assert_eq!(questions, 3 + 3 * 2);
}
