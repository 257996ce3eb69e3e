//! TURN interop on loopback: librice-proto's sans-IO [`TurnClient`] against Debian's coturn
//! `turnserver` (4.6).
//!
//! A small blocking driver below owns the client and its socket (UDP, or TCP cut with a
//! [`StreamFramer`]): it writes everything [`TurnClient::poll_transmit`] yields, reads
//! with a timeout no later than [`TurnClient::poll_timeout`], and feeds what it reads and
//! the timeouts back to the client. A plain UDP socket on loopback stands for the remote
//! peer (coturn runs with `--allow-loopback-peers`). Every wait is bounded.
//!
//! - An allocation over UDP and over TCP, on 127.0.0.1 and ::1 (an IPv6 relay asked for
//!   with REQUESTED-ADDRESS-FAMILY): relayed and mapped addresses, a permission, data both
//!   ways in Send and Data indications, a channel, data both ways in ChannelData, then the
//!   allocation is deleted.
//! - A dual-stack allocation asked for from an IPv4 client (ADDITIONAL-ADDRESS-FAMILY).
//! - A wrong password fails the allocation with an authentication error.
//! - A short requested lifetime, and the refreshes of the allocation, permission and
//!   channel, taken early on the client's clock.
//!
//! Without coturn installed these tests print why and pass, except in CI (`CI=true`).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use librice_proto::stun::attr::{
    AdditionalAddressFamily, AddressFamily, AttributeType, Lifetime, RequestedAddressFamily,
};
use librice_proto::stun::transaction::AuthError;
use librice_proto::stun::{FramingMode, Message, StreamFramer};
use librice_proto::turn::{
    AllocationFamily, MAX_CHANNEL, MIN_CHANNEL, TurnClient, TurnConfig, TurnError, TurnEvent,
    TurnRecv, TurnState,
};
use librice_proto::{Transmit, TransportType};
use librice_tests::{
    COTURN_PASSWORD, COTURN_USER, Coturn, TestDir, require_ipv6_loopback, require_tool,
};

/// Upper bound for one exchange with coturn on loopback.
const STEP: Duration = Duration::from_secs(10);
/// Upper bound for a whole test.
const TEST_DEADLINE: Duration = Duration::from_secs(60);
/// The longest the driver blocks in one read, so that it polls the client regularly.
const MAX_READ: Duration = Duration::from_millis(100);
/// The relay ports `Coturn` configures (`--min-port`, `--max-port`).
const RELAY_PORTS: RangeInclusive<u16> = 49152..=65535;
/// coturn's default allocation lifetime (RFC 8656 §7.2's 10 minutes), which is also the
/// least it grants.
const COTURN_LIFETIME: Duration = Duration::from_secs(600);

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// STUN message types (RFC 8489 §5, RFC 8656 §18) as seen on the wire.
const ALLOCATE_REQUEST: u16 = 0x0003;
const ALLOCATE_SUCCESS: u16 = 0x0103;
const ALLOCATE_ERROR: u16 = 0x0113;
const REFRESH_REQUEST: u16 = 0x0004;
const REFRESH_SUCCESS: u16 = 0x0104;
const PERMISSION_REQUEST: u16 = 0x0008;
const PERMISSION_SUCCESS: u16 = 0x0108;
const CHANNEL_BIND_REQUEST: u16 = 0x0009;
const CHANNEL_BIND_SUCCESS: u16 = 0x0109;
const SEND_INDICATION: u16 = 0x0016;

#[test]
fn allocation_relays_data_over_udp_on_ipv4() {
    allocation_relays_data(TransportType::Udp, V4);
}

#[test]
fn allocation_relays_data_over_tcp_on_ipv4() {
    allocation_relays_data(TransportType::Tcp, V4);
}

#[test]
fn allocation_relays_data_over_udp_on_ipv6() {
    allocation_relays_data(TransportType::Udp, V6);
}

#[test]
fn allocation_relays_data_over_tcp_on_ipv6() {
    allocation_relays_data(TransportType::Tcp, V6);
}

/// coturn 4.6 knows ADDITIONAL-ADDRESS-FAMILY only by the code point of the draft it
/// implemented (0x8032, "SSODA"), not by RFC 8656's 0x8000 (§18, §19) that the client
/// sends. 0x8000 is comprehension-optional, so coturn ignores it without a word and makes
/// an IPv4-only allocation, without an ADDRESS-ERROR-CODE. The client must take that for
/// what it is: one IPv4 relayed address, IPv4 peers only.
#[test]
fn dual_allocation_from_ipv4_client_gets_ipv4_relay_only() {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    if !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    // With IPv6 relaying available (--relay-ip=::1), so that only the code point is
    // in the way of a dual allocation.
    let mut coturn = Coturn::start(&turnserver, &dir, true);
    let log = coturn.process().stdout_path().to_owned();
    let mut config = config(TransportType::Udp, coturn.addr_v4(), COTURN_PASSWORD);
    config.family = AllocationFamily::Dual;
    let mut d = Driver::connect(config, log);

    d.client.allocate(d.now());
    let (relayed, mapped, lifetime) = d.expect_allocated();

    let request = Message::parse(d.last_message(true, ALLOCATE_REQUEST))
        .expect("the client's Allocate parses");
    assert_eq!(
        request.attribute::<AdditionalAddressFamily>(),
        Ok(Some(AdditionalAddressFamily(AddressFamily::V6))),
        "the Allocate should ask for an IPv6 relay too"
    );
    assert_eq!(request.attribute::<RequestedAddressFamily>(), Ok(None));
    let response = Message::parse(d.last_message(false, ALLOCATE_SUCCESS))
        .expect("coturn's Allocate response parses");
    let relayed_attrs = response
        .attributes()
        .filter(|a| a.attr_type() == AttributeType::XOR_RELAYED_ADDRESS)
        .count();
    assert_eq!(relayed_attrs, 1, "{}", d.history());
    assert!(
        response
            .raw_attribute(AttributeType::ADDRESS_ERROR_CODE)
            .is_none(),
        "coturn now answers ADDITIONAL-ADDRESS-FAMILY: update this test"
    );

    assert_eq!(
        relayed.len(),
        1,
        "coturn 4.6 ignores RFC 8656's ADDITIONAL-ADDRESS-FAMILY"
    );
    assert_eq!(relayed[0].ip(), V4, "relayed address {relayed:?}");
    assert!(RELAY_PORTS.contains(&relayed[0].port()), "{relayed:?}");
    assert_eq!(
        mapped, d.local,
        "XOR-MAPPED-ADDRESS is not the client's socket"
    );
    assert_eq!(lifetime, COTURN_LIFETIME);

    // IPv4 peers are relayed as usual.
    let peer4 = Peer::bind(V4);
    relay_round_trips(&mut d, &peer4, relayed[0]);

    // An IPv6 peer cannot be: coturn refuses a permission for it with 443 Peer Address
    // Family Mismatch (RFC 8656 §9.2), and the client refuses to send to it.
    let peer6 = Peer::bind(V6);
    assert_eq!(
        d.client.send(peer6.addr, b"to nowhere"),
        Err(TurnError::PeerFamily)
    );
    d.client.create_permission(d.now(), V6);
    let event = d.wait_event("the IPv6 permission to fail", STEP, |e| {
        matches!(
            e,
            TurnEvent::PermissionCreated { .. } | TurnEvent::PermissionFailed { .. }
        )
    });
    assert_eq!(
        event,
        TurnEvent::PermissionFailed {
            peer: V6,
            error: TurnError::PeerAddressFamilyMismatch
        },
        "{}",
        d.history()
    );
    assert!(!d.client.has_permission(V6));
    assert_eq!(
        d.client.send(peer6.addr, b"to nowhere"),
        Err(TurnError::PeerFamily)
    );
    // The allocation survives the refusal.
    assert_eq!(d.client.state(), &TurnState::Allocated);
    channel_data_round_trip(&mut d, &peer4, relayed[0]);

    close_and_reallocate(&mut d);
}

#[test]
fn wrong_password_fails_allocation_with_auth_error() {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    let dir = TestDir::new();
    let mut coturn = Coturn::start(&turnserver, &dir, false);
    let log = coturn.process().stdout_path().to_owned();
    let config = config(TransportType::Udp, coturn.addr_v4(), "not-the-password");
    let mut d = Driver::connect(config, log);

    let start = Instant::now();
    d.client.allocate(d.now());
    let event = d.wait_event("the allocation to fail", STEP, |e| {
        matches!(
            e,
            TurnEvent::Allocated { .. } | TurnEvent::AllocationFailed(_)
        )
    });

    // coturn challenges the first Allocate with 401 and rejects the signed retry with 401
    // again: the client gives up at once, not after its transaction timeout.
    assert_eq!(
        event,
        TurnEvent::AllocationFailed(TurnError::Auth(AuthError::Rejected)),
        "{}",
        d.history()
    );
    assert!(start.elapsed() < STEP, "took {:?}", start.elapsed());
    assert_eq!(
        d.client.state(),
        &TurnState::Failed(TurnError::Auth(AuthError::Rejected))
    );
    assert_eq!(
        (
            d.count(true, ALLOCATE_REQUEST),
            d.count(false, ALLOCATE_ERROR)
        ),
        (2, 2),
        "one challenged Allocate and one signed retry, both answered 401: {}",
        d.history()
    );
    assert_eq!(d.count(false, ALLOCATE_SUCCESS), 0, "{}", d.history());
    // Nothing is left to send or wait for.
    d.pump(Duration::from_millis(200));
    assert_eq!(d.count(true, ALLOCATE_REQUEST), 2, "{}", d.history());
    assert!(d.events.is_empty(), "{}", d.history());
    assert_eq!(d.client.poll_timeout(), None);
    assert_eq!(
        d.client.send(SocketAddr::new(V4, 9), b"x"),
        Err(TurnError::NotAllocated)
    );
}

/// A requested LIFETIME of 30 s, and the refreshes the client sends.
///
/// coturn raises any lifetime under its 600 s minimum to 600 s (RFC 8656 §7.2 lets the
/// server choose), so the allocation's own refresh is due after 540 s: far too long to
/// wait for in real time. The check that a refresh comes within the lifetime in real time
/// is therefore skipped. The sans-IO client takes its time from its caller, though: the
/// driver moves the client's clock 541 s ahead, and the refreshes then due (allocation at
/// 540 s, permission at 240 s, channel at 540 s) go to coturn for real and must succeed.
#[test]
fn short_lifetime_is_raised_and_refreshes_succeed() {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    let dir = TestDir::new();
    let mut coturn = Coturn::start(&turnserver, &dir, false);
    let log = coturn.process().stdout_path().to_owned();
    let mut config = config(TransportType::Udp, coturn.addr_v4(), COTURN_PASSWORD);
    let requested = Duration::from_secs(30);
    config.lifetime = Some(requested);
    let mut d = Driver::connect(config, log);

    d.client.allocate(d.now());
    let (relayed, _, lifetime) = d.expect_allocated();
    let relay = relayed[0];
    let request = Message::parse(d.last_message(true, ALLOCATE_REQUEST))
        .expect("the client's Allocate parses");
    assert_eq!(request.attribute::<Lifetime>(), Ok(Some(Lifetime(30))));
    assert_eq!(
        lifetime, COTURN_LIFETIME,
        "coturn should raise the requested {requested:?} to its 600 s minimum"
    );

    let peer = Peer::bind(V4);
    relay_round_trips(&mut d, &peer, relay);
    let channel = d.client.channel(peer.addr).expect("bound");
    let before = d.wire.len();

    // Nothing is due yet: the first refresh is the permission's, well ahead.
    let due = d.client.poll_timeout().expect("refreshes are scheduled");
    let ahead = due.saturating_duration_since(d.now());
    assert!(
        ahead > Duration::from_secs(200) && ahead < Duration::from_secs(300),
        "next refresh in {ahead:?}: the permission's (300 s, refreshed a minute early)"
    );

    d.skew += lifetime - Duration::from_secs(59);
    let permission = d.wait_event("the permission refresh", STEP, |e| {
        matches!(
            e,
            TurnEvent::PermissionCreated { .. } | TurnEvent::PermissionFailed { .. }
        )
    });
    assert_eq!(
        permission,
        TurnEvent::PermissionCreated { peer: V4 },
        "{}",
        d.history()
    );
    let bound = d.wait_event("the channel refresh", STEP, |e| {
        matches!(
            e,
            TurnEvent::ChannelBound { .. } | TurnEvent::ChannelFailed { .. }
        )
    });
    assert_eq!(
        bound,
        TurnEvent::ChannelBound {
            peer: peer.addr,
            channel
        },
        "{}",
        d.history()
    );
    let until = Instant::now() + STEP;
    while d.count(false, REFRESH_SUCCESS) == 0 {
        assert!(
            Instant::now() < until,
            "no Refresh success response: {}",
            d.history()
        );
        d.pump(MAX_READ);
    }
    assert!(d.events.is_empty(), "unexpected events: {}", d.history());

    // Exactly one of each refresh, each answered with success.
    let mut after: Vec<u16> = d.wire[before..]
        .iter()
        .filter(|w| w.kind & 0xC000 == 0)
        .map(|w| w.kind)
        .collect();
    after.sort_unstable();
    assert_eq!(
        after,
        [
            REFRESH_REQUEST,
            PERMISSION_REQUEST,
            CHANNEL_BIND_REQUEST,
            REFRESH_SUCCESS,
            PERMISSION_SUCCESS,
            CHANNEL_BIND_SUCCESS
        ],
        "{}",
        d.history()
    );
    // The Refresh asks for the configured lifetime again; coturn grants 600 s again.
    let refresh = Message::parse(d.last_message(true, REFRESH_REQUEST)).expect("parses");
    assert_eq!(refresh.attribute::<Lifetime>(), Ok(Some(Lifetime(30))));
    let granted = Message::parse(d.last_message(false, REFRESH_SUCCESS)).expect("parses");
    assert_eq!(granted.attribute::<Lifetime>(), Ok(Some(Lifetime(600))));
    assert_eq!(d.client.state(), &TurnState::Allocated);

    // The next refresh is the permission's again, 240 s on.
    let next = d
        .client
        .poll_timeout()
        .expect("refreshes are scheduled")
        .saturating_duration_since(d.now());
    assert!(
        next > Duration::from_secs(200) && next < Duration::from_secs(300),
        "next refresh in {next:?}"
    );

    // Still relaying, over the channel.
    channel_data_round_trip(&mut d, &peer, relay);
    d.close_expect_closed();
}

/// Allocates on coturn at `ip` over `transport`, relays data to and from a peer on `ip`,
/// then deletes the allocation.
fn allocation_relays_data(transport: TransportType, ip: IpAddr) {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    if ip.is_ipv6() && !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let mut coturn = Coturn::start(&turnserver, &dir, ip.is_ipv6());
    let server = coturn.addr_for(ip);
    let log = coturn.process().stdout_path().to_owned();
    let mut config = config(transport, server, COTURN_PASSWORD);
    if ip.is_ipv6() {
        config.family = AllocationFamily::V6;
    }
    let mut d = Driver::connect(config, log);

    d.client.allocate(d.now());
    let (relayed, mapped, lifetime) = d.expect_allocated();

    assert_eq!(
        relayed.len(),
        1,
        "one relayed address expected: {relayed:?}"
    );
    let relay = relayed[0];
    assert_eq!(relay.ip(), ip, "relayed address {relay}");
    assert!(
        RELAY_PORTS.contains(&relay.port()),
        "relay port out of range: {relay}"
    );
    assert_eq!(
        mapped, d.local,
        "XOR-MAPPED-ADDRESS is not the client's address"
    );
    assert_eq!(lifetime, COTURN_LIFETIME);
    assert_eq!(d.client.relayed(), &[relay][..]);
    assert_eq!(d.client.mapped(), Some(mapped));

    let peer = Peer::bind(ip);
    relay_round_trips(&mut d, &peer, relay);
    close_and_reallocate(&mut d);
}

/// Permission, data both ways in indications, channel, data both ways in ChannelData.
fn relay_round_trips(d: &mut Driver, peer: &Peer, relay: SocketAddr) {
    d.client.create_permission(d.now(), peer.addr.ip());
    d.expect_permission(peer.addr.ip());
    assert!(d.client.has_permission(peer.addr.ip()));

    send_indication_round_trip(d, peer, relay);

    // A channel: ChannelData both ways.
    let channel = d
        .client
        .bind_channel(d.now(), peer.addr)
        .expect("a free channel number");
    assert!(
        (MIN_CHANNEL..=MAX_CHANNEL).contains(&channel),
        "{channel:#x}"
    );
    let event = d.wait_event("the channel to be bound", STEP, |e| {
        matches!(
            e,
            TurnEvent::ChannelBound { .. } | TurnEvent::ChannelFailed { .. }
        )
    });
    assert_eq!(
        event,
        TurnEvent::ChannelBound {
            peer: peer.addr,
            channel
        },
        "{}",
        d.history()
    );
    assert_eq!(d.client.channel(peer.addr), Some(channel));
    channel_data_round_trip(d, peer, relay);
}

/// Data to the peer in ChannelData and back in ChannelData (the channel is bound).
fn channel_data_round_trip(d: &mut Driver, peer: &Peer, relay: SocketAddr) {
    let channel = d.client.channel(peer.addr).expect("a bound channel");
    // Lengths that are not multiples of 4, so that over TCP both sides pad (RFC 8656
    // §12.5): the client's padding is checked here, coturn's by the framer.
    let out = format!("channel to {}", peer.addr).into_bytes();
    let out = if out.len() % 4 == 0 {
        [&out[..], b"!"].concat()
    } else {
        out
    };
    let t = d
        .client
        .send(peer.addr, &out)
        .expect("send over the channel");
    assert!(
        (0x40..=0x4F).contains(&t.data[0]),
        "not ChannelData: first byte {:#04x}",
        t.data[0]
    );
    assert_eq!(u16::from_be_bytes([t.data[0], t.data[1]]), channel);
    assert_eq!(
        usize::from(u16::from_be_bytes([t.data[2], t.data[3]])),
        out.len()
    );
    assert_eq!(&t.data[4..4 + out.len()], &out[..]);
    let expected_len = match d.transport {
        TransportType::Tcp => (4 + out.len()).next_multiple_of(4),
        TransportType::Udp => 4 + out.len(),
    };
    assert_eq!(
        t.data.len(),
        expected_len,
        "ChannelData length over {}",
        d.transport
    );
    d.write_transmit(t);
    let (from, got) = peer.recv(STEP);
    assert_eq!(from, relay, "ChannelData relayed from elsewhere");
    assert_eq!(got, out);

    let back = format!("channel from {}!", peer.addr).into_bytes();
    let back = if back.len() % 4 == 0 {
        [&back[..], b"?"].concat()
    } else {
        back
    };
    peer.send_to(&back, relay);
    let inc = d.wait_data(STEP);
    assert_eq!(inc.peer, peer.addr);
    assert_eq!(inc.data, back);
    assert_eq!(
        inc.first_byte & 0xF0,
        0x40,
        "coturn should relay over the bound channel (ChannelData), got first byte {:#04x}",
        inc.first_byte
    );
}

/// Data to the peer in a Send indication and back in a Data indication (no channel yet).
fn send_indication_round_trip(d: &mut Driver, peer: &Peer, relay: SocketAddr) {
    let out = format!("indication to {}", peer.addr).into_bytes();
    let t = d
        .client
        .send(peer.addr, &out)
        .expect("send in a Send indication");
    assert_eq!(
        u16::from_be_bytes([t.data[0], t.data[1]]),
        SEND_INDICATION,
        "not a Send indication"
    );
    d.write_transmit(t);
    let (from, got) = peer.recv(STEP);
    assert_eq!(from, relay, "data relayed from elsewhere");
    assert_eq!(got, out);

    let back = format!("indication from {}", peer.addr).into_bytes();
    peer.send_to(&back, relay);
    let inc = d.wait_data(STEP);
    assert_eq!(inc.peer, peer.addr);
    assert_eq!(inc.data, back);
    assert_eq!(
        inc.first_byte >> 6,
        0,
        "expected a Data indication, got first byte {:#04x}",
        inc.first_byte
    );
}

/// Deletes the allocation, then checks that coturn deleted it.
///
/// - Over UDP, a new allocation from the same 5-tuple succeeds. coturn answers such an
///   Allocate with 437 Allocation Mismatch while the old allocation exists, and it drops a
///   deleted allocation at a tick of its 1-second timer, not at once: the new Allocate is
///   tried every 250 ms until it succeeds.
/// - Over TCP, coturn ends the connection with the allocation (with a reset, in 4.6).
fn close_and_reallocate(d: &mut Driver) {
    d.close_expect_closed();
    assert_eq!(
        d.client.send(SocketAddr::new(V4, 9), b"x"),
        Err(TurnError::NotAllocated)
    );
    if d.transport == TransportType::Tcp {
        let how = d.expect_end_of_stream(STEP);
        eprintln!("coturn {how} the TCP connection after the deletion");
        return;
    }
    let until = Instant::now() + STEP;
    let mut mismatches = 0;
    loop {
        d.client = TurnClient::new(d.client_config.clone(), next_seed()).expect("credentials");
        d.client.allocate(d.now());
        let event = d.wait_event("a new allocation", STEP, |e| {
            matches!(
                e,
                TurnEvent::Allocated { .. } | TurnEvent::AllocationFailed(_)
            )
        });
        match event {
            TurnEvent::Allocated { mapped, .. } => {
                assert_eq!(mapped, d.local);
                eprintln!("new allocation after {mismatches} × 437 Allocation Mismatch");
                break;
            }
            TurnEvent::AllocationFailed(TurnError::AllocationMismatch) => mismatches += 1,
            other => panic!("new allocation: {other:?}: {}", d.history()),
        }
        assert!(
            Instant::now() < until,
            "coturn kept the deleted allocation ({mismatches} × 437): {}",
            d.history()
        );
        thread::sleep(Duration::from_millis(250));
    }
    d.close_expect_closed();
}

fn config(transport: TransportType, server: SocketAddr, password: &str) -> TurnConfig {
    // `local` is set by `Driver::connect` once the socket exists.
    TurnConfig::new(server, transport, server, COTURN_USER, password)
}

fn next_seed() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x7475_726e);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The remote peer: a plain UDP socket.
struct Peer {
    socket: UdpSocket,
    addr: SocketAddr,
}

impl Peer {
    fn bind(ip: IpAddr) -> Peer {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind the peer's socket");
        let addr = socket.local_addr().expect("peer address");
        Peer { socket, addr }
    }

    fn send_to(&self, data: &[u8], to: SocketAddr) {
        self.socket.send_to(data, to).expect("peer send");
    }

    /// The next datagram, within `within`.
    fn recv(&self, within: Duration) -> (SocketAddr, Vec<u8>) {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the peer {} received nothing within {within:?}",
                self.addr
            );
            self.socket
                .set_read_timeout(Some(left))
                .expect("set read timeout");
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => return (from, buf[..n].to_vec()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("peer recv: {e}"),
            }
        }
    }
}

/// Data the client unwrapped from the relay.
#[derive(Debug)]
struct Incoming {
    peer: SocketAddr,
    data: Vec<u8>,
    /// The first byte of the message it came in: 0x40-0x4F for ChannelData, 0x00/0x01
    /// for a Data indication.
    first_byte: u8,
}

/// One message on the wire.
struct Wire {
    outgoing: bool,
    /// The first two bytes: the STUN message type, or the channel number.
    kind: u16,
    bytes: Vec<u8>,
}

enum Conn {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        framer: StreamFramer,
        /// How coturn ended the stream, if it did.
        ended: Option<&'static str>,
    },
}

/// A blocking driver for one [`TurnClient`] on one socket.
struct Driver {
    client: TurnClient,
    client_config: TurnConfig,
    conn: Conn,
    transport: TransportType,
    server: SocketAddr,
    local: SocketAddr,
    /// How far the client's clock runs ahead of the real one (see [`Driver::now`]).
    skew: Duration,
    start: Instant,
    deadline: Instant,
    events: VecDeque<TurnEvent>,
    data: VecDeque<Incoming>,
    wire: Vec<Wire>,
    /// Messages, events and end of stream, for failure messages.
    log: Vec<String>,
    coturn_log: PathBuf,
}

impl Driver {
    /// Opens the socket (UDP) or connection (TCP) to `config.server` from the loopback
    /// address of its family, and makes the client.
    fn connect(mut config: TurnConfig, coturn_log: PathBuf) -> Driver {
        let server = config.server;
        let (conn, local) = match config.transport {
            TransportType::Udp => {
                let socket = UdpSocket::bind(SocketAddr::new(server.ip(), 0))
                    .expect("bind the client's UDP socket");
                let local = socket.local_addr().expect("local address");
                (Conn::Udp(socket), local)
            }
            TransportType::Tcp => {
                let stream = TcpStream::connect_timeout(&server, STEP)
                    .unwrap_or_else(|e| panic!("connect to coturn at {server}: {e}"));
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let local = stream.local_addr().expect("local address");
                let conn = Conn::Tcp {
                    stream,
                    framer: StreamFramer::new(FramingMode::StunAndChannelData),
                    ended: None,
                };
                (conn, local)
            }
        };
        config.local = local;
        let start = Instant::now();
        Driver {
            client: TurnClient::new(config.clone(), next_seed()).expect("credentials"),
            transport: config.transport,
            client_config: config,
            conn,
            server,
            local,
            skew: Duration::ZERO,
            start,
            deadline: start + TEST_DEADLINE,
            events: VecDeque::new(),
            data: VecDeque::new(),
            wire: Vec::new(),
            log: Vec::new(),
            coturn_log,
        }
    }

    /// The client's clock: the real one, plus [`Driver::skew`].
    fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    /// How many messages of `kind` (STUN message type or channel) went out (`outgoing`)
    /// or came in.
    fn count(&self, outgoing: bool, kind: u16) -> usize {
        self.wire
            .iter()
            .filter(|w| w.outgoing == outgoing && w.kind == kind)
            .count()
    }

    /// The bytes of the last message of `kind` that went out (`outgoing`) or came in.
    fn last_message(&self, outgoing: bool, kind: u16) -> &[u8] {
        self.wire
            .iter()
            .rev()
            .find(|w| w.outgoing == outgoing && w.kind == kind)
            .map(|w| &w.bytes[..])
            .unwrap_or_else(|| panic!("no message {kind:#06x}: {}", self.history()))
    }

    /// What happened so far and the end of coturn's log, for failure messages.
    fn history(&self) -> String {
        let log = std::fs::read_to_string(&self.coturn_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "\n--- client ({} {} -> {}):\n{}\n--- coturn log {} (last lines):\n{}",
            self.transport,
            self.local,
            self.server,
            self.log.join("\n"),
            self.coturn_log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    fn note(&mut self, line: String) {
        let ms = self.start.elapsed().as_millis();
        self.log.push(format!("{ms:>6} ms {line}"));
    }

    fn record(&mut self, outgoing: bool, bytes: &[u8]) {
        let kind = match bytes {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0xFFFF,
        };
        let arrow = if outgoing { "->" } else { "<-" };
        self.note(format!("{arrow} {kind:#06x} ({} bytes)", bytes.len()));
        self.wire.push(Wire {
            outgoing,
            kind,
            bytes: bytes.to_vec(),
        });
    }

    fn write_transmit(&mut self, t: Transmit<Vec<u8>>) {
        assert_eq!(
            t.transport, self.transport,
            "transmit on the wrong transport"
        );
        assert_eq!(t.from, self.local, "transmit from the wrong address");
        assert_eq!(t.to, self.server, "transmit to the wrong address");
        self.record(true, &t.data);
        match &mut self.conn {
            Conn::Udp(socket) => {
                socket.send_to(&t.data, t.to).expect("UDP send to coturn");
            }
            Conn::Tcp { stream, .. } => stream.write_all(&t.data).expect("TCP write to coturn"),
        }
    }

    /// One round: timeouts, transmits, then one read of at most `wait` (cut short by
    /// the client's next timeout).
    fn pump(&mut self, wait: Duration) {
        let now = self.now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        self.flush();
        let now = self.now();
        let mut timeout = wait.min(self.deadline.saturating_duration_since(Instant::now()));
        if let Some(t) = self.client.poll_timeout() {
            timeout = timeout.min(t.saturating_duration_since(now));
        }
        self.read(timeout.max(Duration::from_millis(1)));
        self.flush();
    }

    fn flush(&mut self) {
        let now = self.now();
        while let Some(t) = self.client.poll_transmit(now) {
            self.write_transmit(t);
        }
        while let Some(e) = self.client.poll_event() {
            self.note(format!("event {e:?}"));
            self.events.push_back(e);
        }
    }

    fn read(&mut self, timeout: Duration) {
        let mut buf = vec![0u8; 65_536];
        let mut packets: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let mut ended = None;
        let server = self.server;
        match &mut self.conn {
            Conn::Udp(socket) => {
                socket
                    .set_read_timeout(Some(timeout))
                    .expect("set read timeout");
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => packets.push((from, buf[..n].to_vec())),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) => panic!("UDP recv from coturn: {e}"),
                }
            }
            Conn::Tcp {
                stream,
                framer,
                ended: stream_ended,
            } => {
                if stream_ended.is_some() {
                    thread::sleep(timeout);
                    return;
                }
                stream
                    .set_read_timeout(Some(timeout))
                    .expect("set read timeout");
                match stream.read(&mut buf) {
                    Ok(0) => ended = Some("closed (FIN)"),
                    Ok(n) => framer.push(&buf[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => ended = Some("reset (RST)"),
                    Err(e) => panic!("TCP read from coturn: {e}"),
                }
                *stream_ended = ended;
                while let Some(frame) = framer.next_frame() {
                    let frame = frame.unwrap_or_else(|e| panic!("coturn's TCP stream: {e}"));
                    packets.push((server, frame.bytes.to_vec()));
                }
            }
        }
        for (from, bytes) in packets {
            self.record(false, &bytes);
            let incoming = Transmit {
                transport: self.transport,
                from,
                to: self.local,
                data: &bytes[..],
            };
            match self.client.handle_incoming(self.now(), incoming) {
                TurnRecv::Data { peer, data } => self.data.push_back(Incoming {
                    peer,
                    data: data.to_vec(),
                    first_byte: bytes[0],
                }),
                TurnRecv::Handled => {}
                TurnRecv::Ignored => panic!(
                    "the client ignored {} bytes from {from}: {}",
                    bytes.len(),
                    self.history()
                ),
            }
        }
        if let Some(how) = ended {
            self.note(format!("<- coturn {how} the connection"));
        }
    }

    /// Pumps until an event matching `matches` comes (and returns it), failing after
    /// `within` or at the test's deadline.
    fn wait_event(
        &mut self,
        what: &str,
        within: Duration,
        matches: impl Fn(&TurnEvent) -> bool,
    ) -> TurnEvent {
        let until = (Instant::now() + within).min(self.deadline);
        loop {
            if let Some(i) = self.events.iter().position(&matches) {
                return self.events.remove(i).expect("position is in range");
            }
            assert!(
                Instant::now() < until,
                "waited {within:?} for {what}: {}",
                self.history()
            );
            self.pump(MAX_READ);
        }
    }

    /// Pumps until the client unwraps data from a peer.
    fn wait_data(&mut self, within: Duration) -> Incoming {
        let until = (Instant::now() + within).min(self.deadline);
        loop {
            if let Some(inc) = self.data.pop_front() {
                return inc;
            }
            assert!(
                Instant::now() < until,
                "no relayed data within {within:?}: {}",
                self.history()
            );
            self.pump(MAX_READ);
        }
    }

    /// Waits for `Allocated` (failing on `AllocationFailed`): relayed, mapped, lifetime.
    fn expect_allocated(&mut self) -> (Vec<SocketAddr>, SocketAddr, Duration) {
        let event = self.wait_event("the allocation", STEP, |e| {
            matches!(
                e,
                TurnEvent::Allocated { .. } | TurnEvent::AllocationFailed(_)
            )
        });
        match event {
            TurnEvent::Allocated {
                relayed,
                mapped,
                lifetime,
            } => {
                assert_eq!(self.client.state(), &TurnState::Allocated);
                (relayed, mapped, lifetime)
            }
            other => panic!("allocation failed: {other:?}: {}", self.history()),
        }
    }

    fn expect_permission(&mut self, ip: IpAddr) {
        let event = self.wait_event("the permission", STEP, |e| {
            matches!(
                e,
                TurnEvent::PermissionCreated { .. } | TurnEvent::PermissionFailed { .. }
            )
        });
        assert_eq!(
            event,
            TurnEvent::PermissionCreated { peer: ip },
            "{}",
            self.history()
        );
    }

    /// Deletes the allocation and waits for `Closed`, which must come from coturn's
    /// success response to the Refresh with LIFETIME 0.
    fn close_expect_closed(&mut self) {
        let before = self.count(false, REFRESH_SUCCESS);
        self.client.close(self.now());
        assert_eq!(self.client.state(), &TurnState::Closing);
        let event = self.wait_event("the allocation to be deleted", STEP, |e| {
            matches!(e, TurnEvent::Closed)
        });
        assert_eq!(event, TurnEvent::Closed);
        assert_eq!(self.client.state(), &TurnState::Closed);
        assert_eq!(
            self.count(false, REFRESH_SUCCESS),
            before + 1,
            "Closed without a Refresh success response: {}",
            self.history()
        );
        let delete = Message::parse(self.last_message(true, REFRESH_REQUEST)).expect("parses");
        assert_eq!(delete.attribute::<Lifetime>(), Ok(Some(Lifetime(0))));
        assert!(self.events.is_empty(), "{}", self.history());
        // Nothing more to send or wait for.
        assert_eq!(self.client.poll_timeout(), None);
        assert!(self.client.poll_transmit(self.now()).is_none());
    }

    /// Waits for coturn to end the TCP connection; how it did.
    fn expect_end_of_stream(&mut self, within: Duration) -> &'static str {
        let until = (Instant::now() + within).min(self.deadline);
        loop {
            if let Conn::Tcp {
                ended: Some(how), ..
            } = self.conn
            {
                return how;
            }
            assert!(
                Instant::now() < until,
                "coturn kept the TCP connection open: {}",
                self.history()
            );
            self.pump(MAX_READ);
        }
    }
}
