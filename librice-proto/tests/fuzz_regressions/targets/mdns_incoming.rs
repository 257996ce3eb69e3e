//! The `mdns_incoming` target: the mDNS client and responder's receive path.
//!
//! An [`Mdns`] is brought to a state with every kind of name: one published and announced
//! (for IPv4 and IPv6 addresses), one still probing, one being resolved. The input is one
//! datagram (the seed corpus holds real queries, probes and responses), given from a
//! querier on port 5353, from a legacy querier's port and from an IPv6 querier; then time
//! passes through every timer.
//!
//! Besides "never panics", it checks that: events name only the names the caller gave
//! (`Resolved` only the name being resolved, with 1 to 16 addresses and a capped TTL;
//! `Published` and `Conflict` only published names); output per datagram stays under the
//! transmit queue's bound, and goes to the mDNS groups or back to the sender; and
//! `handle_timeout` at the instant `poll_timeout` gave makes progress.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::mdns::{
    MAX_QUEUED_TRANSMITS, MAX_RESOLVED_ADDRS, MDNS_V4, MDNS_V6, Mdns, MdnsConfig, MdnsEvent,
};

const PUBLISHED: &str = "1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local";
const PROBING: &str = "2e1f0d3c-4b5a-4978-8695-a4b3c2d1e0f0.local";
const RESOLVING: &str = "1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f1.local";

/// The sources the datagram is given from: a querier on port 5353, a legacy querier, an
/// IPv6 querier.
const SOURCES: [SocketAddr; 3] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 5353),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 40000),
    SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9)), 5353),
];

/// Runs one input.
pub fn run(data: &[u8]) {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut mdns = Mdns::new(MdnsConfig::default().rng_seed(11));
    let addrs = [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    ];
    mdns.publish(start, PUBLISHED, &addrs)
        .expect("a valid name");
    let mut now = start;
    while let Some(deadline) = mdns.poll_timeout() {
        if deadline > start + Duration::from_secs(3) {
            break;
        }
        now = deadline;
        mdns.handle_timeout(now);
    }
    drain(&mut mdns, now, None);
    mdns.publish(now, PROBING, &addrs[..1])
        .expect("a valid name");
    mdns.resolve(now, RESOLVING).expect("a valid name");
    drain(&mut mdns, now, None);

    for from in SOURCES {
        mdns.handle_incoming(now, from, data);
        drain(&mut mdns, now, Some(from));
    }
    // Time passes through every timer: each handled deadline moves on.
    for _ in 0..64 {
        let Some(deadline) = mdns.poll_timeout() else {
            break;
        };
        now = now.max(deadline);
        mdns.handle_timeout(now);
        drain(&mut mdns, now, None);
        if let Some(next) = mdns.poll_timeout() {
            assert!(next > now, "handle_timeout at {now:?} left {next:?} due");
        }
    }
    assert_eq!(mdns.poll_timeout(), None, "every timer ends");
}

/// Drains the output, checking it (`from`: the sender of the datagram just given, the only
/// unicast destination allowed).
fn drain(mdns: &mut Mdns, now: Instant, from: Option<SocketAddr>) {
    let mut sent = 0;
    while let Some(t) = mdns.poll_transmit(now) {
        sent += 1;
        assert!(
            t.to == MDNS_V4 || t.to == MDNS_V6 || Some(t.to) == from,
            "sent to {}",
            t.to
        );
        assert!(!t.data.is_empty());
    }
    assert!(sent <= MAX_QUEUED_TRANSMITS);
    while let Some(event) = mdns.poll_event() {
        match event {
            MdnsEvent::Resolved { name, addrs, ttl } => {
                assert_eq!(name, RESOLVING);
                assert!((1..=MAX_RESOLVED_ADDRS).contains(&addrs.len()));
                assert!(ttl <= Duration::from_secs(120));
            }
            MdnsEvent::ResolveFailed { name } => assert_eq!(name, RESOLVING),
            MdnsEvent::Published { name } | MdnsEvent::Conflict { name } => {
                assert!(name == PUBLISHED || name == PROBING, "event for {name}");
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}
