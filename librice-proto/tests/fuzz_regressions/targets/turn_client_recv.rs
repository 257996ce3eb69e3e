//! The `turn_client_recv` target: the TURN client's receive path.
//!
//! A [`TurnClient`] is driven by a scripted server to the state the first input byte picks
//! (idle, allocating, challenged, allocated with requests in flight, allocated with a
//! permission and a channel, closing, failed or closed), then the rest of the input is a
//! list of operations: raw datagrams from the server or from elsewhere, responses carrying
//! the transaction id of a request in flight, well-signed answers with fuzzed attributes,
//! ChannelData, Data indications, a TCP stream cut by a `StreamFramer`, time passing and
//! the caller's own calls (permissions, channels, sends, close).
//!
//! Besides "never panics", it checks that: packets that are not from the server are
//! ignored; data handed back borrows from the packet and comes only from peers the caller
//! asked for; an allocated client has its relayed and mapped addresses; a closed client
//! stays closed; everything it sends goes to its server, and its requests parse and carry
//! a good FINGERPRINT; its output per step and what it keeps in flight stay bounded; and
//! `handle_timeout` at the instant `poll_timeout` gave makes progress.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::stun::attr::{
    AlternateServer, AttributeType, Data, ErrorCode, Lifetime, Nonce, PasswordAlgorithmId, Realm,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use librice_proto::stun::{
    FramingMode, IntegrityKey, Message, MessageClass, MessageType, MessageWriter, Method,
    StreamFramer, TransactionId, looks_like_stun,
};
use librice_proto::turn::{
    AllocationFamily, TurnClient, TurnConfig, TurnRecv, TurnState, write_channel_data,
};
use librice_proto::{Transmit, TransportType};

const USER: &str = "fuzzuser";
const PASSWORD: &str = "fuzzpass";
const REALM: &str = "fuzz.example";
const NONCE: &str = "fuzznonce0123456";

/// The most packets one step may make the client send: the allocation refresh, one
/// request per permission and channel (at most [`PEERS`] of each), and retransmissions.
const MAX_SENT_PER_STEP: usize = 64;
/// The most events one step may raise.
const MAX_EVENTS_PER_STEP: usize = 64;
/// Requests remembered for answers (retransmissions included).
const REMEMBERED: usize = 16;

/// The peers the caller may name: two ports on one IPv4 host, another IPv4 host, an IPv6
/// host. Permissions and channels are keyed by these, so the client's tables stay small.
const PEERS: [SocketAddr; 4] = [
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 6000),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 6001),
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 7000),
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        7000,
    ),
];
const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 3478);
const ALTERNATE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)), 3478);
const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 50000);
const MAPPED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)), 50000);
const RELAYED_V4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)), 49152);
const RELAYED_V6: SocketAddr = SocketAddr::new(
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)),
    49152,
);

/// Error codes a fuzzed answer may carry.
const CODES: [u16; 14] = [
    300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 486, 500, 508,
];

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&setup, ops)) = data.split_first() else {
        return;
    };
    let mut h = Harness::new(setup);
    h.setup(setup & 7);
    let mut input = Input(ops);
    while let Some(op) = input.byte() {
        let body = input.chunk();
        h.op(op, body);
        h.drain();
    }
}

/// The operations that follow the setup byte: an op byte, then a body of a 16-bit
/// big-endian length (cut to what is left).
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn chunk(&mut self) -> &'a [u8] {
        let hi = self.byte().unwrap_or(0);
        let lo = self.byte().unwrap_or(0);
        let len = usize::from(u16::from_be_bytes([hi, lo])).min(self.0.len());
        let (body, rest) = self.0.split_at(len);
        self.0 = rest;
        body
    }
}

struct Harness {
    client: TurnClient,
    transport: TransportType,
    family: AllocationFamily,
    key: IntegrityKey,
    now: Instant,
    /// Requests the client sent, newest last: (type, transaction id).
    requests: VecDeque<(MessageType, TransactionId)>,
    /// Peer IPs the caller asked a permission or a channel for.
    asked_ips: BTreeSet<IpAddr>,
    /// Peers the caller asked a channel for.
    asked_channels: BTreeSet<SocketAddr>,
    allocate_called: bool,
    closed: bool,
    framer: StreamFramer,
}

impl Harness {
    fn new(setup: u8) -> Harness {
        let transport = if setup & 8 == 0 {
            TransportType::Udp
        } else {
            TransportType::Tcp
        };
        let family = match (setup >> 4) & 3 {
            0 | 3 => AllocationFamily::V4,
            1 => AllocationFamily::V6,
            _ => AllocationFamily::Dual,
        };
        let mut config = TurnConfig::new(SERVER, transport, LOCAL, USER, PASSWORD);
        config.family = family;
        if setup & 0x40 != 0 {
            config.lifetime = Some(Duration::from_secs(60));
            config.permission_lifetime = Duration::from_secs(60);
            config.channel_lifetime = Duration::from_secs(90);
        }
        Harness {
            client: TurnClient::new(config, u64::from(setup)).expect("valid credentials"),
            transport,
            family,
            key: IntegrityKey::long_term(USER, REALM, PASSWORD, PasswordAlgorithmId::MD5)
                .expect("valid credentials"),
            now: start(),
            requests: VecDeque::new(),
            asked_ips: BTreeSet::new(),
            asked_channels: BTreeSet::new(),
            allocate_called: false,
            closed: false,
            framer: StreamFramer::new(FramingMode::StunAndChannelData),
        }
    }

    /// Drives the client to the state `stage` names, with well-behaved server answers.
    fn setup(&mut self, stage: u8) {
        if stage == 0 {
            return; // Idle.
        }
        self.allocate();
        if stage == 1 {
            return; // Allocating: the unsigned Allocate is in flight.
        }
        self.answer_latest(Answer::Challenge);
        if stage == 2 {
            return; // Challenged: the signed Allocate is in flight.
        }
        if stage == 6 {
            // Failed: the server refuses the allocation.
            self.answer_latest(Answer::Error(ErrorCode::ALLOCATION_QUOTA_REACHED));
            return;
        }
        // Requests made before the allocation wait for it.
        self.create_permission(PEERS[0].ip());
        self.bind_channel(PEERS[1]);
        self.answer_latest(Answer::Success);
        if stage == 3 {
            return; // Allocated, with CreatePermission and ChannelBind in flight.
        }
        self.answer_all();
        if stage == 4 {
            return; // Allocated, with a permission and a bound channel.
        }
        self.client.close(self.now);
        self.drain();
        if stage == 5 {
            return; // Closing: the Refresh with LIFETIME 0 is in flight.
        }
        self.answer_latest(Answer::Success); // Closed.
    }

    fn op(&mut self, op: u8, body: &[u8]) {
        match op % 8 {
            0 => {
                self.deliver(body);
            }
            1 => self.stray_packet(body),
            2 => self.with_transaction_id(body),
            3 => self.signed_answer(body),
            4 => self.channel_data(body),
            5 => self.data_indication(body),
            6 => self.stream(body),
            _ => self.caller(body),
        }
    }

    /// A datagram that is not from the server, or not over the client's transport, or not
    /// to its local address: ignored.
    fn stray_packet(&mut self, body: &[u8]) {
        let pick = body.first().copied().unwrap_or(0);
        let server = self.client.server();
        let mut transmit = Transmit {
            transport: self.transport,
            from: server,
            to: LOCAL,
            data: body,
        };
        match pick % 4 {
            0 => transmit.from = SocketAddr::new(server.ip(), server.port() + 1),
            1 => transmit.from = PEERS[usize::from(pick >> 2) % PEERS.len()],
            2 => transmit.to = SocketAddr::new(LOCAL.ip(), LOCAL.port() + 1),
            _ => {
                transmit.transport = match self.transport {
                    TransportType::Udp => TransportType::Tcp,
                    _ => TransportType::Udp,
                };
            }
        }
        let got = self.client.handle_incoming(self.now, transmit);
        assert_eq!(
            got,
            TurnRecv::Ignored,
            "a packet not from the server was taken"
        );
    }

    /// Raw bytes with the transaction id of a request in flight written in.
    fn with_transaction_id(&mut self, body: &[u8]) {
        let Some((&pick, rest)) = body.split_first() else {
            return;
        };
        let mut packet = rest.to_vec();
        if let Some((_, id)) = self.pick_request(pick)
            && packet.len() >= 20
        {
            packet[8..20].copy_from_slice(id.as_bytes());
        }
        self.deliver(&packet);
    }

    /// An answer to a request in flight, built from the body: its class, its integrity,
    /// the attributes its method expects, an error code, and raw fuzzed attributes.
    fn signed_answer(&mut self, body: &[u8]) {
        let [pick, flags, code, attrs @ ..] = body else {
            return;
        };
        let Some((ty, id)) = self.pick_request(*pick) else {
            return;
        };
        let class = if flags & 1 == 0 {
            MessageClass::Success
        } else {
            MessageClass::Error
        };
        let mut out = Vec::new();
        let mut w = MessageWriter::new(&mut out, MessageType::new(class, ty.method), id);
        if flags & 0x10 != 0 {
            if class == MessageClass::Success {
                let lifetime = u32::from(*code) * 5;
                let _ = self.success_attributes(&mut w, ty.method, lifetime);
            } else {
                let code = CODES[usize::from(*code) % CODES.len()];
                let _ = w.add(&ErrorCode::with_default_reason(code));
                let _ = w.add(&Realm(REALM));
                let nonce = if flags & 0x80 == 0 {
                    NONCE
                } else {
                    "fuzznonce-fresh"
                };
                let _ = w.add(&Nonce(nonce));
            }
        }
        if flags & 0x20 != 0 {
            let alternate = if flags & 0x40 == 0 {
                ALTERNATE
            } else {
                RELAYED_V6
            };
            let _ = w.add(&AlternateServer(alternate));
        }
        // Raw attributes: type (2 bytes), length (1 byte), value.
        let mut rest = attrs;
        while let [t0, t1, len, tail @ ..] = rest {
            let len = usize::from(*len).min(tail.len());
            let (value, tail) = tail.split_at(len);
            let _ = w.add_raw(AttributeType::new(u16::from_be_bytes([*t0, *t1])), value);
            rest = tail;
        }
        let _ = match (flags >> 1) & 3 {
            0 => w.add_message_integrity(&self.key),
            1 => Ok(()),
            2 => w.add_message_integrity(&IntegrityKey::from_bytes(b"not the key")),
            _ => w.add_message_integrity_sha256(&self.key),
        };
        if flags & 8 == 0 {
            let _ = w.add_fingerprint();
        }
        self.deliver(&out);
    }

    /// ChannelData on a channel the body picks, padded as over a stream when it says so.
    fn channel_data(&mut self, body: &[u8]) {
        let Some((&pick, payload)) = body.split_first() else {
            return;
        };
        let channel = librice_proto::turn::MIN_CHANNEL + u16::from(pick & 0x0f);
        let mut packet = Vec::with_capacity(payload.len() + 8);
        write_channel_data(channel, payload, pick & 0x80 != 0, &mut packet);
        if let Some((peer, data)) = self.deliver(&packet) {
            assert_eq!(data, payload, "ChannelData payload changed");
            assert!(
                self.asked_channels.contains(&peer),
                "ChannelData from {peer}, which has no channel"
            );
        }
    }

    /// A Data indication from a peer the body picks (or makes up), with the rest as data.
    fn data_indication(&mut self, body: &[u8]) {
        let Some((&pick, rest)) = body.split_first() else {
            return;
        };
        let (peer, payload) = match rest {
            [a, b, c, d, p0, p1, payload @ ..] if pick & 0x80 != 0 => (
                SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)),
                    u16::from_be_bytes([*p0, *p1]),
                ),
                payload,
            ),
            _ => (PEERS[usize::from(pick) % PEERS.len()], rest),
        };
        let mut packet = Vec::new();
        let mut w = MessageWriter::new(
            &mut packet,
            MessageType::new(MessageClass::Indication, Method::DATA),
            TransactionId([pick; 12]),
        );
        if w.add(&XorPeerAddress(peer)).is_err() || w.add(&Data(payload)).is_err() {
            return;
        }
        if pick & 0x40 != 0 {
            let _ = w.add_fingerprint();
        }
        if let Some((from, data)) = self.deliver(&packet) {
            assert_eq!(from, peer, "Data indication peer changed");
            assert_eq!(data, payload, "Data indication payload changed");
        }
    }

    /// Over TCP: the body pushed into the stream and every frame cut from it delivered.
    /// Over UDP: one datagram.
    fn stream(&mut self, body: &[u8]) {
        if self.transport == TransportType::Udp {
            self.deliver(body);
            return;
        }
        self.framer.push(body);
        let mut frames = Vec::new();
        while let Some(Ok(frame)) = self.framer.next_frame() {
            frames.push(frame.bytes.to_vec());
        }
        if let Some(Err(_)) = self.framer.next_frame() {
            // A broken stream is closed; a new connection starts clean.
            self.framer = StreamFramer::new(FramingMode::StunAndChannelData);
        }
        for frame in frames {
            self.deliver(&frame);
        }
    }

    /// Time passing, the caller's calls, and the scripted server answering.
    fn caller(&mut self, body: &[u8]) {
        let [pick, arg @ ..] = body else {
            return;
        };
        let peer = PEERS[usize::from(arg.first().copied().unwrap_or(0)) % PEERS.len()];
        match pick % 8 {
            0 => {
                let step = arg
                    .get(..2)
                    .map_or(0, |b| u64::from(u16::from_be_bytes([b[0], b[1]])));
                self.now += Duration::from_millis(step * 10);
                self.client.handle_timeout(self.now);
            }
            1 => self.timeout(),
            2 => self.create_permission(peer.ip()),
            3 => self.bind_channel(peer),
            4 => {
                let data = arg.get(1..).unwrap_or_default();
                let allocated = *self.client.state() == TurnState::Allocated;
                if let Ok(t) = self.client.send(peer, data) {
                    assert!(allocated, "send worked while {:?}", self.client.state());
                    self.check_sent(&t);
                }
            }
            5 => self.client.close(self.now),
            6 => self.allocate(),
            _ => self.answer_all(),
        }
    }

    /// `handle_timeout` at the instant `poll_timeout` gives: afterwards nothing is due then.
    fn timeout(&mut self) {
        let Some(at) = self.client.poll_timeout() else {
            return;
        };
        self.now = self.now.max(at);
        self.client.handle_timeout(self.now);
        self.drain();
        if let Some(next) = self.client.poll_timeout() {
            assert!(
                next > self.now,
                "handle_timeout made no progress: still due at {:?} after {:?} ({:?})",
                next - start(),
                self.now - start(),
                self.client.state(),
            );
        }
    }

    fn allocate(&mut self) {
        self.allocate_called = true;
        self.client.allocate(self.now);
        self.drain();
    }

    fn create_permission(&mut self, ip: IpAddr) {
        self.asked_ips.insert(ip);
        self.client.create_permission(self.now, ip);
        self.drain();
    }

    fn bind_channel(&mut self, peer: SocketAddr) {
        self.asked_ips.insert(peer.ip());
        self.asked_channels.insert(peer);
        let _ = self.client.bind_channel(self.now, peer);
        self.drain();
    }

    /// Gives `data` to the client from its server; returns the peer data it handed back.
    fn deliver<'a>(&mut self, data: &'a [u8]) -> Option<(SocketAddr, &'a [u8])> {
        let transmit = Transmit {
            transport: self.transport,
            from: self.client.server(),
            to: LOCAL,
            data,
        };
        match self.client.handle_incoming(self.now, transmit) {
            TurnRecv::Data {
                peer,
                data: payload,
            } => {
                let packet = data.as_ptr_range();
                let inside = payload.as_ptr_range();
                assert!(
                    packet.start <= inside.start && inside.end <= packet.end,
                    "the data handed back is not borrowed from the packet"
                );
                assert!(
                    self.asked_ips.contains(&peer.ip()),
                    "data from {peer}, which the caller never asked for"
                );
                Some((peer, payload))
            }
            TurnRecv::Handled | TurnRecv::Ignored => None,
        }
    }

    /// The request that `pick` names among those in flight.
    fn pick_request(&self, pick: u8) -> Option<(MessageType, TransactionId)> {
        if self.requests.is_empty() {
            return None;
        }
        let back = usize::from(pick) % self.requests.len();
        self.requests.get(self.requests.len() - 1 - back).copied()
    }

    /// The scripted server answers the newest request.
    fn answer_latest(&mut self, answer: Answer) {
        if let Some((ty, id)) = self.requests.back().copied() {
            self.answer(ty, id, answer);
        }
    }

    /// The scripted server answers every request it remembers, oldest first, with success
    /// (a request answered twice gets the second answer ignored).
    fn answer_all(&mut self) {
        let pending: Vec<_> = self.requests.iter().copied().collect();
        for (ty, id) in pending {
            self.answer(ty, id, Answer::Success);
        }
    }

    fn answer(&mut self, ty: MessageType, id: TransactionId, answer: Answer) {
        let mut out = Vec::new();
        let mut w = match answer {
            Answer::Success => MessageWriter::new(&mut out, ty.success(), id),
            Answer::Challenge | Answer::Error(_) => MessageWriter::new(&mut out, ty.error(), id),
        };
        let written = match answer {
            Answer::Challenge => w
                .add(&ErrorCode::with_default_reason(ErrorCode::UNAUTHENTICATED))
                .and_then(|()| w.add(&Realm(REALM)))
                .and_then(|()| w.add(&Nonce(NONCE))),
            Answer::Error(code) => w
                .add(&ErrorCode::with_default_reason(code))
                .and_then(|()| w.add_message_integrity(&self.key)),
            Answer::Success => self
                .success_attributes(&mut w, ty.method, 600)
                .and_then(|()| w.add_message_integrity(&self.key)),
        };
        written
            .and_then(|()| w.add_fingerprint())
            .expect("the scripted answers fit");
        self.deliver(&out);
        self.drain();
    }

    /// What a server puts in a success for `method`.
    fn success_attributes(
        &self,
        w: &mut MessageWriter<'_>,
        method: Method,
        lifetime: u32,
    ) -> Result<(), librice_proto::stun::StunWriteError> {
        if method == Method::ALLOCATE {
            match self.family {
                AllocationFamily::V6 => w.add(&XorRelayedAddress(RELAYED_V6))?,
                AllocationFamily::Dual => {
                    w.add(&XorRelayedAddress(RELAYED_V4))?;
                    w.add(&XorRelayedAddress(RELAYED_V6))?;
                }
                _ => w.add(&XorRelayedAddress(RELAYED_V4))?,
            }
            w.add(&XorMappedAddress(MAPPED))?;
            w.add(&Lifetime(lifetime))?;
        } else if method == Method::REFRESH {
            w.add(&Lifetime(lifetime))?;
        }
        Ok(())
    }

    /// Takes everything the client has to send and to say, checking it.
    fn drain(&mut self) {
        let mut sent = 0;
        while let Some(t) = self.client.poll_transmit(self.now) {
            sent += 1;
            assert!(sent <= MAX_SENT_PER_STEP, "unbounded output");
            self.check_sent(&t);
            if let Ok(msg) = Message::parse(&t.data)
                && msg.class() == MessageClass::Request
            {
                msg.check_fingerprint()
                    .expect("requests carry a good FINGERPRINT");
                let entry = (msg.message_type(), msg.transaction_id());
                if !self.requests.contains(&entry) {
                    if self.requests.len() == REMEMBERED {
                        self.requests.pop_front();
                    }
                    self.requests.push_back(entry);
                }
            }
        }
        let mut events = 0;
        while let Some(event) = self.client.poll_event() {
            events += 1;
            assert!(events <= MAX_EVENTS_PER_STEP, "unbounded events");
            std::hint::black_box(format!("{event:?}"));
        }
        self.check_state();
    }

    fn check_sent(&self, t: &Transmit<Vec<u8>>) {
        assert_eq!(t.transport, self.transport);
        assert_eq!(t.from, LOCAL);
        assert_eq!(
            t.to,
            self.client.server(),
            "sent somewhere else than the server"
        );
        assert!(
            t.to == SERVER || t.to == ALTERNATE,
            "sent to {}, neither the server nor its alternate",
            t.to
        );
        if looks_like_stun(&t.data) {
            Message::parse(&t.data).expect("what the client writes parses");
        }
    }

    fn check_state(&mut self) {
        let state = self.client.state().clone();
        if self.closed {
            assert_eq!(state, TurnState::Closed, "a closed client came back");
        }
        match state {
            TurnState::Idle => assert!(!self.allocate_called, "idle after allocate()"),
            TurnState::Allocated => {
                assert!(
                    !self.client.relayed().is_empty(),
                    "allocated without a relay"
                );
                assert!(
                    self.client.mapped().is_some(),
                    "allocated without a mapping"
                );
            }
            TurnState::Closed => self.closed = true,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    /// 401 with REALM and NONCE, unsigned.
    Challenge,
    /// A signed error.
    Error(u16),
    /// A signed success with what the method's success carries.
    Success,
}

/// The clock origin of every run.
fn start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    // The harness only needs some instant as a clock origin; the client is given every time.
    #[allow(clippy::disallowed_methods)]
    *START.get_or_init(Instant::now)
}
