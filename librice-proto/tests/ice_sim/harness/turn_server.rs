//! A minimal TURN server (RFC 8656) over UDP as a simulated node.
//!
//! It owns two addresses: the one it listens on for clients and a relay IP on which it
//! hands out relayed transport addresses (ports from a counter). Requests are
//! authenticated with long-term credentials (RFC 8489 §9.2: one user, one realm, a nonce
//! the test can rotate); success responses and error responses to authenticated requests
//! are signed with MESSAGE-INTEGRITY and carry FINGERPRINT.
//!
//! Supported: Allocate (REQUESTED-TRANSPORT UDP, IPv4 relays), Refresh (LIFETIME 0
//! deletes), CreatePermission, ChannelBind, Send indications, and relaying from peers as
//! Data indications or ChannelData. Allocations, permissions and channels expire at the
//! right virtual time ([`Node::poll_timeout`] / [`Node::handle_timeout`]).
//!
//! Deterministic: time only comes from the `now` the simulator passes in, randomness only
//! from a seeded ChaCha8 RNG, and every map is a `BTreeMap`.
//!
//! A [`Misbehave`] knob makes it answer Allocate requests the way a broken or hostile
//! server would.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::stun::attr::{
    AddressFamily, AlternateServer, AttributeType, ChannelNumber, Data, ErrorCode, Lifetime, Nonce,
    PasswordAlgorithmId, Realm, RequestedAddressFamily, RequestedTransport, Username,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use librice_proto::stun::{
    IntegrityKey, Message, MessageClass, MessageType, MessageWriter, Method, StunWriteError,
    TransactionId, looks_like_stun,
};
use librice_proto::turn::{MAX_CHANNEL, MIN_CHANNEL, parse_channel_data, write_channel_data};
use librice_proto::{Transmit, TransportType};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::Node;

/// The lifetime of an allocation when the client asks for none (RFC 8656 §7.2).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// How long a permission lasts (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// How long a channel binding lasts (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// How the server misbehaves when answering authenticated Allocate requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Misbehave {
    /// A correct server.
    #[default]
    None,
    /// Allocate success responses lack XOR-RELAYED-ADDRESS.
    OmitRelayedAddress,
    /// Every signed response carries a MESSAGE-INTEGRITY computed with a wrong key.
    BadIntegrity,
    /// Authenticated Allocate requests get this error code (signed).
    RejectAllocate(u16),
    /// Authenticated Allocate requests get 300 Try Alternate to this server (signed).
    TryAlternate(SocketAddr),
    /// Every Allocate request, before authentication, gets 300 Try Alternate (unsigned).
    TryAlternateUnauthenticated(SocketAddr),
    /// Data from peers without a permission is relayed anyway (a broken relay).
    RelayUnpermitted,
}

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct TurnServerConfig {
    /// Where clients reach the server.
    pub listen: SocketAddr,
    /// The IP relayed addresses are allocated on (the node must own it).
    pub relay_ip: IpAddr,
    /// The long-term credential realm.
    pub realm: String,
    /// The one user.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// The first nonce.
    pub nonce: String,
    /// The longest lifetime granted.
    pub max_lifetime: Duration,
    /// The first relayed port.
    pub first_relay_port: u16,
    /// Seed of the RNG (transaction ids of indications, rotated nonces).
    pub seed: u64,
}

impl TurnServerConfig {
    /// A server on `listen` relaying on `relay_ip`, realm "example.org", user "alice" with
    /// password "secret", lifetimes up to 600 s.
    pub fn new(listen: SocketAddr, relay_ip: IpAddr) -> Self {
        Self {
            listen,
            relay_ip,
            realm: "example.org".to_owned(),
            username: "alice".to_owned(),
            password: "secret".to_owned(),
            nonce: "nonce-0".to_owned(),
            max_lifetime: DEFAULT_LIFETIME,
            first_relay_port: 49152,
            seed: 0,
        }
    }
}

/// Counters of what the server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnServerStats {
    /// 401 answers (challenges and rejected credentials).
    pub challenges: u64,
    /// 438 (Stale Nonce) answers.
    pub stale_nonces: u64,
    /// 437 (Allocation Mismatch) answers.
    pub mismatches: u64,
    /// Other error answers (400, 300, misbehaviour codes...).
    pub other_errors: u64,
    /// Allocations made.
    pub allocations: u64,
    /// Successful Refresh requests with a non-zero LIFETIME.
    pub refreshes: u64,
    /// Allocations deleted by a Refresh with LIFETIME 0.
    pub deletes: u64,
    /// Successful CreatePermission requests.
    pub permissions: u64,
    /// Successful ChannelBind requests.
    pub channel_binds: u64,
    /// Datagrams relayed from a client to a peer (Send indication or ChannelData).
    pub relayed_to_peer: u64,
    /// Datagrams relayed from a peer to a client (Data indication or ChannelData).
    pub relayed_to_client: u64,
    /// Of those, how many went as ChannelData.
    pub channel_data_to_client: u64,
    /// Of the datagrams to peers, how many came as ChannelData.
    pub channel_data_from_client: u64,
    /// Relay traffic dropped (no allocation, no permission, unknown channel).
    pub dropped: u64,
    /// Requests dropped without an answer ([`TurnServerNode::drop_requests`]).
    pub ignored_requests: u64,
    /// Allocations that expired.
    pub expired_allocations: u64,
    /// Permissions that expired.
    pub expired_permissions: u64,
    /// Channel bindings that expired.
    pub expired_channels: u64,
}

/// One answered request, for tests to inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// When.
    pub at: Instant,
    /// The client's address (its 5-tuple's source).
    pub client: SocketAddr,
    /// The request's method.
    pub method: Method,
    /// 200 for a success response, else the error code.
    pub code: u16,
    /// True if the request carried MESSAGE-INTEGRITY.
    pub signed: bool,
}

/// One allocation.
#[derive(Debug, Clone)]
pub struct Allocation {
    /// The relayed transport address.
    pub relayed: SocketAddr,
    /// When it expires.
    pub expires: Instant,
    /// The lifetime granted by the Allocate request (for retransmissions).
    lifetime: u32,
    /// The Allocate request's transaction id (RFC 8656 §7.2: a retransmission gets the
    /// same answer).
    allocate_id: TransactionId,
    /// Peer IP -> expiry.
    pub permissions: BTreeMap<IpAddr, Instant>,
    /// Channel number -> (peer, expiry).
    pub channels: BTreeMap<u16, (SocketAddr, Instant)>,
}

impl Allocation {
    fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|&t| t > now)
    }

    fn channel_of(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.channels
            .iter()
            .find(|(_, (p, t))| *p == peer && *t > now)
            .map(|(&n, _)| n)
    }
}

/// The TURN server node. See the module docs.
#[derive(Debug)]
pub struct TurnServerNode {
    config: TurnServerConfig,
    key: IntegrityKey,
    bad_key: IntegrityKey,
    nonce: String,
    rng: ChaCha8Rng,
    misbehave: Misbehave,
    /// Client address (UDP 5-tuple source) -> allocation.
    allocations: BTreeMap<SocketAddr, Allocation>,
    /// Relayed address -> client address.
    relays: BTreeMap<SocketAddr, SocketAddr>,
    next_port: u16,
    outbox: VecDeque<Transmit<Vec<u8>>>,
    stats: TurnServerStats,
    answers: Vec<Answer>,
    /// Method -> how many more requests of it to drop unanswered.
    drop_next: BTreeMap<Method, u32>,
}

impl TurnServerNode {
    /// A server with this configuration.
    pub fn new(config: TurnServerConfig) -> Self {
        let key = IntegrityKey::long_term(
            &config.username,
            &config.realm,
            &config.password,
            PasswordAlgorithmId::MD5,
        )
        .expect("valid credentials");
        let bad_key = IntegrityKey::long_term(
            &config.username,
            &config.realm,
            "not-the-password",
            PasswordAlgorithmId::MD5,
        )
        .expect("valid credentials");
        Self {
            key,
            bad_key,
            nonce: config.nonce.clone(),
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            misbehave: Misbehave::None,
            allocations: BTreeMap::new(),
            relays: BTreeMap::new(),
            next_port: config.first_relay_port,
            outbox: VecDeque::new(),
            stats: TurnServerStats::default(),
            answers: Vec::new(),
            drop_next: BTreeMap::new(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TurnServerConfig {
        &self.config
    }

    /// Sets how the server misbehaves.
    pub fn set_misbehave(&mut self, misbehave: Misbehave) {
        self.misbehave = misbehave;
    }

    /// The counters.
    pub fn stats(&self) -> TurnServerStats {
        self.stats
    }

    /// Every answered request, in order.
    pub fn answers(&self) -> &[Answer] {
        &self.answers
    }

    /// The current nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Starts a new nonce (from the seeded RNG): signed requests with the old one get 438.
    pub fn rotate_nonce(&mut self) {
        self.nonce = format!("nonce-{:016x}", self.rng.next_u64());
    }

    /// Drops the next `count` requests of `method` without answering (as if lost).
    pub fn drop_requests(&mut self, method: Method, count: u32) {
        self.drop_next.insert(method, count);
    }

    /// Forgets every allocation (as a restarted server would): the next request for one
    /// gets 437 Allocation Mismatch.
    pub fn forget_allocations(&mut self) {
        self.allocations.clear();
        self.relays.clear();
    }

    /// How many allocations exist.
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// The allocation of the client at `client` (its address as the server sees it).
    pub fn allocation(&self, client: SocketAddr) -> Option<&Allocation> {
        self.allocations.get(&client)
    }

    /// Every allocation, by client address.
    pub fn allocations(&self) -> impl Iterator<Item = (&SocketAddr, &Allocation)> {
        self.allocations.iter()
    }

    fn live_allocation(&mut self, client: SocketAddr, now: Instant) -> Option<&mut Allocation> {
        self.allocations
            .get_mut(&client)
            .filter(|a| a.expires > now)
    }

    fn push(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        self.outbox.push_back(Transmit {
            transport: TransportType::Udp,
            from,
            to,
            data,
        });
    }

    /// Traffic from a client to the listening address.
    fn on_client_packet(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if let Some((channel, payload)) = parse_channel_data(data) {
            self.channel_data_from_client(now, from, channel, payload);
            return;
        }
        if !looks_like_stun(data) {
            return;
        }
        let Ok(msg) = Message::parse(data) else {
            return;
        };
        // RFC 8489 §7.3: a wrong FINGERPRINT means the message is not STUN.
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            return;
        }
        match msg.class() {
            MessageClass::Indication if msg.method() == Method::SEND => {
                self.send_indication(now, from, &msg);
            }
            MessageClass::Request => {
                if let Some(n) = self.drop_next.get_mut(&msg.method())
                    && *n > 0
                {
                    *n -= 1;
                    self.stats.ignored_requests += 1;
                    return;
                }
                let (code, response) = match self.request(now, from, &msg) {
                    Ok(r) => r,
                    Err(e) => panic!("TURN server could not write a response: {e}"),
                };
                self.answers.push(Answer {
                    at: now,
                    client: from,
                    method: msg.method(),
                    code,
                    signed: msg.has_integrity(),
                });
                match code {
                    200 => {}
                    401 => self.stats.challenges += 1,
                    437 => self.stats.mismatches += 1,
                    438 => self.stats.stale_nonces += 1,
                    _ => self.stats.other_errors += 1,
                }
                let listen = self.config.listen;
                self.push(listen, from, response);
            }
            _ => {}
        }
    }

    fn channel_data_from_client(
        &mut self,
        now: Instant,
        from: SocketAddr,
        channel: u16,
        payload: &[u8],
    ) {
        let target = self.live_allocation(from, now).and_then(|a| {
            let &(peer, expires) = a.channels.get(&channel)?;
            (expires > now && a.permitted(peer.ip(), now)).then_some((a.relayed, peer))
        });
        match target {
            Some((relayed, peer)) => {
                self.stats.relayed_to_peer += 1;
                self.stats.channel_data_from_client += 1;
                self.push(relayed, peer, payload.to_vec());
            }
            None => self.stats.dropped += 1,
        }
    }

    fn send_indication(&mut self, now: Instant, from: SocketAddr, msg: &Message<'_>) {
        let (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(payload)))) = (
            msg.attribute::<XorPeerAddress>(),
            msg.attribute::<Data<'_>>(),
        ) else {
            self.stats.dropped += 1;
            return;
        };
        let relayed = self
            .live_allocation(from, now)
            .filter(|a| a.permitted(peer.ip(), now))
            .map(|a| a.relayed);
        match relayed {
            Some(relayed) => {
                self.stats.relayed_to_peer += 1;
                self.push(relayed, peer, payload.to_vec());
            }
            None => self.stats.dropped += 1,
        }
    }

    /// Traffic from a peer to a relayed address.
    fn on_peer_packet(&mut self, now: Instant, client: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let relay_unpermitted = self.misbehave == Misbehave::RelayUnpermitted;
        let channel = match self.live_allocation(client, now) {
            Some(a) if relay_unpermitted || a.permitted(peer.ip(), now) => a.channel_of(peer, now),
            _ => {
                self.stats.dropped += 1;
                return;
            }
        };
        let mut out = Vec::with_capacity(data.len() + 40);
        match channel {
            Some(channel) => {
                write_channel_data(channel, data, false, &mut out);
                self.stats.channel_data_to_client += 1;
            }
            None => {
                let id = TransactionId::generate(&mut self.rng);
                let mut w = MessageWriter::new(
                    &mut out,
                    MessageType::new(MessageClass::Indication, Method::DATA),
                    id,
                );
                w.add(&XorPeerAddress(peer)).expect("peer address fits");
                w.add(&Data(data)).expect("data fits");
            }
        }
        self.stats.relayed_to_client += 1;
        let listen = self.config.listen;
        self.push(listen, client, out);
    }

    /// Answers a request: (200 or the error code, the response).
    fn request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        if let Misbehave::TryAlternateUnauthenticated(alternate) = self.misbehave
            && msg.method() == Method::ALLOCATE
        {
            return self.error(msg, ErrorCode::TRY_ALTERNATE, false, Some(alternate));
        }
        if let Some(answer) = self.authenticate(msg)? {
            return Ok(answer);
        }
        match msg.method() {
            Method::ALLOCATE => self.allocate(now, from, msg),
            Method::REFRESH => self.refresh(now, from, msg),
            Method::CREATE_PERMISSION => self.create_permission(now, from, msg),
            Method::CHANNEL_BIND => self.channel_bind(now, from, msg),
            _ => self.error(msg, ErrorCode::BAD_REQUEST, true, None),
        }
    }

    /// RFC 8489 §9.2.4. `Some(answer)` when the request is not authenticated.
    fn authenticate(
        &mut self,
        msg: &Message<'_>,
    ) -> Result<Option<(u16, Vec<u8>)>, StunWriteError> {
        if !msg.has_integrity() {
            return self.challenge(msg, ErrorCode::UNAUTHENTICATED).map(Some);
        }
        let (Ok(Some(Username(user))), Ok(Some(Realm(realm))), Ok(Some(Nonce(nonce)))) = (
            msg.attribute::<Username<'_>>(),
            msg.attribute::<Realm<'_>>(),
            msg.attribute::<Nonce<'_>>(),
        ) else {
            return self
                .error(msg, ErrorCode::BAD_REQUEST, false, None)
                .map(Some);
        };
        if user != self.config.username
            || realm != self.config.realm
            || msg.check_integrity(&self.key).is_err()
        {
            return self.challenge(msg, ErrorCode::UNAUTHENTICATED).map(Some);
        }
        if nonce != self.nonce {
            return self.challenge(msg, ErrorCode::STALE_NONCE).map(Some);
        }
        Ok(None)
    }

    /// A 401 or 438 with REALM and NONCE, unsigned.
    fn challenge(&self, msg: &Message<'_>, code: u16) -> Result<(u16, Vec<u8>), StunWriteError> {
        let mut out = Vec::with_capacity(96);
        let mut w = MessageWriter::new(&mut out, msg.message_type().error(), msg.transaction_id());
        w.add(&ErrorCode::with_default_reason(code))?;
        w.add(&Realm(&self.config.realm))?;
        w.add(&Nonce(&self.nonce))?;
        w.add_fingerprint()?;
        Ok((code, out))
    }

    /// An error response, signed when `sign` (the request was authenticated).
    fn error(
        &self,
        msg: &Message<'_>,
        code: u16,
        sign: bool,
        alternate: Option<SocketAddr>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        let mut out = Vec::with_capacity(96);
        let mut w = MessageWriter::new(&mut out, msg.message_type().error(), msg.transaction_id());
        w.add(&ErrorCode::with_default_reason(code))?;
        if let Some(alternate) = alternate {
            w.add(&AlternateServer(alternate))?;
        }
        if sign {
            self.sign(&mut w)?;
        }
        w.add_fingerprint()?;
        Ok((code, out))
    }

    /// A signed success response with the attributes `attrs` writes.
    fn success(
        &self,
        msg: &Message<'_>,
        attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), StunWriteError>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        let mut out = Vec::with_capacity(96);
        let mut w =
            MessageWriter::new(&mut out, msg.message_type().success(), msg.transaction_id());
        attrs(&mut w)?;
        self.sign(&mut w)?;
        w.add_fingerprint()?;
        Ok((200, out))
    }

    fn sign(&self, w: &mut MessageWriter<'_>) -> Result<(), StunWriteError> {
        let key = if self.misbehave == Misbehave::BadIntegrity {
            &self.bad_key
        } else {
            &self.key
        };
        w.add_message_integrity(key)
    }

    fn mismatch(&self, msg: &Message<'_>) -> Result<(u16, Vec<u8>), StunWriteError> {
        self.error(msg, ErrorCode::ALLOCATION_MISMATCH, true, None)
    }

    /// The lifetime to grant for a requested one.
    fn granted(&self, msg: &Message<'_>) -> u32 {
        let requested = msg
            .attribute::<Lifetime>()
            .ok()
            .flatten()
            .map_or(DEFAULT_LIFETIME, |l| Duration::from_secs(u64::from(l.0)));
        u32::try_from(requested.min(self.config.max_lifetime).as_secs()).unwrap_or(u32::MAX)
    }

    fn allocate_success(
        &self,
        msg: &Message<'_>,
        from: SocketAddr,
        relayed: SocketAddr,
        lifetime: u32,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        let omit = self.misbehave == Misbehave::OmitRelayedAddress;
        self.success(msg, |w| {
            if !omit {
                w.add(&XorRelayedAddress(relayed))?;
            }
            w.add(&Lifetime(lifetime))?;
            w.add(&XorMappedAddress(from))
        })
    }

    /// RFC 8656 §7.2.
    fn allocate(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        match self.misbehave {
            Misbehave::RejectAllocate(code) => return self.error(msg, code, true, None),
            Misbehave::TryAlternate(alternate) => {
                return self.error(msg, ErrorCode::TRY_ALTERNATE, true, Some(alternate));
            }
            _ => {}
        }
        if let Some(a) = self.live_allocation(from, now) {
            // A retransmission gets the same answer; another Allocate gets 437.
            if a.allocate_id == msg.transaction_id() {
                let (relayed, lifetime) = (a.relayed, a.lifetime);
                return self.allocate_success(msg, from, relayed, lifetime);
            }
            return self.mismatch(msg);
        }
        match msg.attribute::<RequestedTransport>() {
            Ok(Some(RequestedTransport::UDP)) => {}
            Ok(Some(_)) => {
                return self.error(msg, ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL, true, None);
            }
            _ => return self.error(msg, ErrorCode::BAD_REQUEST, true, None),
        }
        if let Ok(Some(RequestedAddressFamily(AddressFamily::V6))) =
            msg.attribute::<RequestedAddressFamily>()
        {
            return self.error(msg, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED, true, None);
        }
        let lifetime = self.granted(msg);
        let relayed = SocketAddr::new(self.config.relay_ip, self.next_port);
        self.next_port = self.next_port.checked_add(1).expect("relay ports left");
        self.allocations.insert(
            from,
            Allocation {
                relayed,
                expires: now + Duration::from_secs(u64::from(lifetime)),
                lifetime,
                allocate_id: msg.transaction_id(),
                permissions: BTreeMap::new(),
                channels: BTreeMap::new(),
            },
        );
        self.relays.insert(relayed, from);
        self.stats.allocations += 1;
        self.allocate_success(msg, from, relayed, lifetime)
    }

    /// RFC 8656 §7.3.
    fn refresh(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        let lifetime = self.granted(msg);
        let Some(a) = self.live_allocation(from, now) else {
            return self.mismatch(msg);
        };
        if lifetime == 0 {
            let relayed = a.relayed;
            self.allocations.remove(&from);
            self.relays.remove(&relayed);
            self.stats.deletes += 1;
        } else {
            a.expires = now + Duration::from_secs(u64::from(lifetime));
            self.stats.refreshes += 1;
        }
        self.success(msg, |w| w.add(&Lifetime(lifetime)))
    }

    /// RFC 8656 §9.
    fn create_permission(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        let id = msg.transaction_id();
        let peers: Vec<SocketAddr> = msg
            .attributes()
            .filter(|a| a.attr_type() == AttributeType::XOR_PEER_ADDRESS)
            .filter_map(|a| a.decode::<XorPeerAddress>(&id).ok())
            .map(|a| a.0)
            .collect();
        let Some(a) = self.live_allocation(from, now) else {
            return self.mismatch(msg);
        };
        if peers.is_empty() {
            return self.error(msg, ErrorCode::BAD_REQUEST, true, None);
        }
        if peers.iter().any(|p| p.is_ipv4() != a.relayed.is_ipv4()) {
            return self.error(msg, ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH, true, None);
        }
        for peer in peers {
            a.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
        }
        self.stats.permissions += 1;
        self.success(msg, |_| Ok(()))
    }

    /// RFC 8656 §11.
    fn channel_bind(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(u16, Vec<u8>), StunWriteError> {
        let number = msg.attribute::<ChannelNumber>();
        let peer = msg.attribute::<XorPeerAddress>();
        let Some(a) = self.live_allocation(from, now) else {
            return self.mismatch(msg);
        };
        let (Ok(Some(ChannelNumber(number))), Ok(Some(XorPeerAddress(peer)))) = (number, peer)
        else {
            return self.error(msg, ErrorCode::BAD_REQUEST, true, None);
        };
        let taken = a
            .channels
            .iter()
            .any(|(&n, &(p, _))| (n == number) != (p == peer));
        if !(MIN_CHANNEL..=MAX_CHANNEL).contains(&number) || taken {
            return self.error(msg, ErrorCode::BAD_REQUEST, true, None);
        }
        a.channels.insert(number, (peer, now + CHANNEL_LIFETIME));
        a.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
        self.stats.channel_binds += 1;
        self.success(msg, |_| Ok(()))
    }
}

impl Node for TurnServerNode {
    fn handle_incoming(&mut self, now: Instant, transmit: Transmit<Vec<u8>>) {
        if transmit.transport != TransportType::Udp {
            return;
        }
        if transmit.to == self.config.listen {
            self.on_client_packet(now, transmit.from, &transmit.data);
        } else if let Some(&client) = self.relays.get(&transmit.to) {
            self.on_peer_packet(now, client, transmit.from, &transmit.data);
        } else {
            self.stats.dropped += 1;
        }
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.allocations
            .values()
            .flat_map(|a| {
                std::iter::once(a.expires)
                    .chain(a.permissions.values().copied())
                    .chain(a.channels.values().map(|&(_, t)| t))
            })
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<SocketAddr> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(&c, _)| c)
            .collect();
        for client in expired {
            if let Some(a) = self.allocations.remove(&client) {
                self.relays.remove(&a.relayed);
                self.stats.expired_allocations += 1;
            }
        }
        for a in self.allocations.values_mut() {
            let before = a.permissions.len();
            a.permissions.retain(|_, t| *t > now);
            self.stats.expired_permissions += (before - a.permissions.len()) as u64;
            let before = a.channels.len();
            a.channels.retain(|_, (_, t)| *t > now);
            self.stats.expired_channels += (before - a.channels.len()) as u64;
        }
    }
}
