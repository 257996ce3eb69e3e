//! The TURN client state machine.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::{MAX_CHANNEL, MIN_CHANNEL, TurnError, parse_channel_data, write_channel_data};
use crate::stun::attr::{
    AdditionalAddressFamily, AddressFamily, AlternateServer, AttributeType, ChannelNumber, Data,
    ErrorCode, Lifetime, RequestedAddressFamily, RequestedTransport, XorMappedAddress,
    XorPeerAddress, XorRelayedAddress,
};
use crate::stun::transaction::{
    AuthOutcome, LongTermAuth, ResponseOutcome, RetransmitConfig, TransactionEvent, Transactions,
};
use crate::stun::{
    Message, MessageClass, MessageType, MessageWriter, Method, StunWriteError, TransactionId,
    looks_like_stun,
};
use crate::{Transmit, TransportType};

/// How long a permission lasts (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);

/// How long a channel binding lasts (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// The most data one Send indication or ChannelData message carries here.
const MAX_DATA: usize = 65_000;

/// Which relayed addresses to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocationFamily {
    /// One IPv4 relayed address (the server's default).
    #[default]
    V4,
    /// One IPv6 relayed address (REQUESTED-ADDRESS-FAMILY, RFC 6156 / RFC 8656 §7.1).
    V6,
    /// An IPv4 and an IPv6 relayed address (ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §7.1).
    Dual,
}

/// How to reach the server and what to ask of it.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The server's address.
    pub server: SocketAddr,
    /// The transport to the server (TLS counts as TCP here: the caller wraps the stream).
    pub transport: TransportType,
    /// The local address the client sends from (its socket, or its end of the connection).
    pub local: SocketAddr,
    /// The long-term credentials.
    pub username: String,
    /// The password.
    pub password: String,
    /// Which relayed addresses to ask for.
    pub family: AllocationFamily,
    /// A LIFETIME to ask for (the server decides; default none, i.e. 10 minutes).
    pub lifetime: Option<Duration>,
    /// Retransmission of requests over UDP (RFC 8489 §6.2.1 defaults).
    pub retransmit: RetransmitConfig,
    /// How long the server keeps a permission: 300 s by RFC 8656 §9, which servers do not
    /// announce; set it lower only for a server configured so (tests).
    pub permission_lifetime: Duration,
    /// How long the server keeps a channel binding: 600 s by RFC 8656 §12.
    pub channel_lifetime: Duration,
}

impl TurnConfig {
    /// A configuration with the defaults: one IPv4 relay, the server's lifetime.
    pub fn new(
        server: SocketAddr,
        transport: TransportType,
        local: SocketAddr,
        username: &str,
        password: &str,
    ) -> Self {
        Self {
            server,
            transport,
            local,
            username: username.to_owned(),
            password: password.to_owned(),
            family: AllocationFamily::V4,
            lifetime: None,
            retransmit: RetransmitConfig::default(),
            permission_lifetime: PERMISSION_LIFETIME,
            channel_lifetime: CHANNEL_LIFETIME,
        }
    }
}

/// Where the client stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnState {
    /// Created; [`TurnClient::allocate`] not called yet.
    Idle,
    /// The Allocate exchange is under way.
    Allocating,
    /// The allocation exists.
    Allocated,
    /// The allocation failed or was lost.
    Failed(TurnError),
    /// Being deleted ([`TurnClient::close`]).
    Closing,
    /// Deleted, or given up.
    Closed,
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// The allocation exists.
    Allocated {
        /// The relayed addresses (two for a dual allocation).
        relayed: Vec<SocketAddr>,
        /// The client's address as the server saw it (server-reflexive).
        mapped: SocketAddr,
        /// How long it lasts unless refreshed (the client refreshes it).
        lifetime: Duration,
    },
    /// The Allocate request failed: a typed reason, for this server only.
    AllocationFailed(TurnError),
    /// The allocation was lost (a refresh failed, e.g. with 437): allocate anew if needed.
    AllocationLost(TurnError),
    /// The server redirected the client (300 Try Alternate); requests now go to `server`.
    Redirected {
        /// The new server address.
        server: SocketAddr,
    },
    /// A permission for `peer` is installed (or refreshed).
    PermissionCreated {
        /// The peer IP.
        peer: IpAddr,
    },
    /// A CreatePermission failed.
    PermissionFailed {
        /// The peer IP.
        peer: IpAddr,
        /// Why.
        error: TurnError,
    },
    /// A channel is bound (or refreshed).
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number.
        channel: u16,
    },
    /// A ChannelBind failed; data keeps going in Send indications.
    ChannelFailed {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        error: TurnError,
    },
    /// The allocation is deleted (after [`TurnClient::close`]).
    Closed,
    /// The refresh asked by [`TurnClient::refresh_now`] succeeded: the server still has
    /// the allocation.
    Confirmed,
}

/// What [`TurnClient::handle_incoming`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnRecv<'a> {
    /// A STUN message for the client (a response), consumed.
    Handled,
    /// Data from a peer, through the relay.
    Data {
        /// The peer.
        peer: SocketAddr,
        /// The data, borrowed from the packet.
        data: &'a [u8],
    },
    /// Not from this client's server, or not TURN: the caller may route it elsewhere.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Allocate,
    Refresh { lifetime: u32 },
    Permission(IpAddr),
    Channel { peer: SocketAddr, channel: u16 },
}

#[derive(Debug)]
struct Permission {
    installed: bool,
    pending: bool,
    refresh_at: Option<Instant>,
}

#[derive(Debug)]
struct Channel {
    number: u16,
    bound: bool,
    pending: bool,
    refresh_at: Option<Instant>,
}

/// A TURN client: one allocation on one server. See the [module docs](super).
#[derive(Debug)]
pub struct TurnClient {
    config: TurnConfig,
    rng: ChaCha8Rng,
    auth: LongTermAuth,
    txns: Transactions<Request>,
    state: TurnState,
    redirected: bool,
    relayed: Vec<SocketAddr>,
    mapped: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    /// A refresh asked by [`Self::refresh_now`] is due or in flight.
    confirming: bool,
    permissions: BTreeMap<IpAddr, Permission>,
    channels: BTreeMap<SocketAddr, Channel>,
    by_channel: BTreeMap<u16, SocketAddr>,
    next_channel: u16,
    out: VecDeque<Transmit<Vec<u8>>>,
    events: VecDeque<TurnEvent>,
}

impl TurnClient {
    /// A client for `config`; its transaction ids come from an RNG seeded with `seed`.
    /// Fails if the credentials cannot be prepared (RFC 8265 OpaqueString).
    pub fn new(config: TurnConfig, seed: u64) -> Result<TurnClient, TurnError> {
        let auth = LongTermAuth::new(&config.username, &config.password)
            .map_err(|e| TurnError::Auth(crate::stun::transaction::AuthError::Credential(e)))?;
        Ok(TurnClient {
            txns: Transactions::new(config.retransmit),
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            auth,
            state: TurnState::Idle,
            redirected: false,
            relayed: Vec::new(),
            mapped: None,
            refresh_at: None,
            confirming: false,
            permissions: BTreeMap::new(),
            channels: BTreeMap::new(),
            by_channel: BTreeMap::new(),
            next_channel: MIN_CHANNEL,
            out: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The server the client talks to (it changes after a redirection).
    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    /// The transport to the server.
    pub fn transport(&self) -> TransportType {
        self.config.transport
    }

    /// The local address the client sends from.
    pub fn local(&self) -> SocketAddr {
        self.config.local
    }

    /// Where the client stands.
    pub fn state(&self) -> &TurnState {
        &self.state
    }

    /// The relayed addresses, once allocated.
    pub fn relayed(&self) -> &[SocketAddr] {
        &self.relayed
    }

    /// The server-reflexive address the server reported, once allocated.
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// True once a permission for `peer` is installed.
    pub fn has_permission(&self, peer: IpAddr) -> bool {
        self.permissions.get(&peer).is_some_and(|p| p.installed)
    }

    /// The channel bound to `peer`, if any.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(&peer)
            .filter(|c| c.bound)
            .map(|c| c.number)
    }

    /// Starts the allocation (RFC 8656 §7.1). Calling it again does nothing.
    pub fn allocate(&mut self, now: Instant) {
        if self.state == TurnState::Idle {
            self.state = TurnState::Allocating;
            self.request(now, Request::Allocate);
        }
    }

    /// Asks for a permission for `peer` (RFC 8656 §9), kept refreshed. Data from and to a
    /// peer IP flows only while a permission exists. Before the allocation exists, the
    /// request waits for it.
    pub fn create_permission(&mut self, now: Instant, peer: IpAddr) {
        let allocated = self.state == TurnState::Allocated;
        let p = self.permissions.entry(peer).or_insert(Permission {
            installed: false,
            pending: false,
            refresh_at: None,
        });
        if p.pending || p.installed {
            return;
        }
        if allocated {
            p.pending = true;
            self.request(now, Request::Permission(peer));
        }
    }

    /// Binds a channel to `peer` (RFC 8656 §11), kept refreshed; data to the peer goes in
    /// ChannelData messages once it is bound. Also installs the peer's permission.
    /// Returns the channel number.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> Result<u16, TurnError> {
        if let Some(c) = self.channels.get(&peer) {
            let number = c.number;
            // A binding that failed is tried again.
            if !c.bound && !c.pending && self.state == TurnState::Allocated {
                self.start_channel(now, peer);
            }
            return Ok(number);
        }
        let number = self.free_channel().ok_or(TurnError::NoChannel)?;
        self.permissions.entry(peer.ip()).or_insert(Permission {
            installed: false,
            pending: false,
            refresh_at: None,
        });
        self.channels.insert(
            peer,
            Channel {
                number,
                bound: false,
                pending: false,
                refresh_at: None,
            },
        );
        self.by_channel.insert(number, peer);
        if self.state == TurnState::Allocated {
            self.start_channel(now, peer);
        }
        Ok(number)
    }

    /// The packet that carries `data` to `peer` through the relay: ChannelData when the
    /// peer's channel is bound, a Send indication otherwise (RFC 8656 §10, §12).
    pub fn send(&mut self, peer: SocketAddr, data: &[u8]) -> Result<Transmit<Vec<u8>>, TurnError> {
        if self.state != TurnState::Allocated {
            return Err(TurnError::NotAllocated);
        }
        if data.len() > MAX_DATA {
            return Err(TurnError::TooLong(data.len()));
        }
        if !self.relayed.iter().any(|r| r.is_ipv4() == peer.is_ipv4()) {
            return Err(TurnError::PeerFamily);
        }
        // A permission must be installed or on its way; one that failed sends nothing the
        // server would relay (RFC 8656 §10.2: it drops data to unpermitted peers).
        if !self
            .permissions
            .get(&peer.ip())
            .is_some_and(|p| p.installed || p.pending)
        {
            return Err(TurnError::NoPermission);
        }
        let mut out = Vec::with_capacity(data.len() + 40);
        match self.channel(peer) {
            Some(channel) => {
                write_channel_data(channel, data, self.config.transport.is_reliable(), &mut out);
            }
            None => {
                let id = TransactionId::generate(&mut self.rng);
                let mut w = MessageWriter::new(
                    &mut out,
                    MessageType::new(MessageClass::Indication, Method::SEND),
                    id,
                );
                w.add(&XorPeerAddress(peer))
                    .and_then(|()| w.add(&Data(data)))
                    .map_err(|e| TurnError::Write(e.to_string()))?;
            }
        }
        Ok(self.to_server(out))
    }

    /// Deletes the allocation: a Refresh with LIFETIME 0 (RFC 8656 §7.2), then
    /// [`TurnEvent::Closed`].
    pub fn close(&mut self, now: Instant) {
        match self.state {
            TurnState::Allocated => {
                self.state = TurnState::Closing;
                self.request(now, Request::Refresh { lifetime: 0 });
            }
            TurnState::Closing | TurnState::Closed => {}
            _ => {
                self.state = TurnState::Closed;
                self.events.push_back(TurnEvent::Closed);
            }
        }
    }

    /// True if a packet from `from` over `transport` to `to` is this client's: from its
    /// server, on its local socket.
    pub fn is_from_server(
        &self,
        transport: TransportType,
        from: SocketAddr,
        to: SocketAddr,
    ) -> bool {
        transport == self.config.transport && from == self.config.server && to == self.config.local
    }

    /// Handles a packet from the server (over a stream: one frame).
    pub fn handle_incoming<'a>(
        &mut self,
        now: Instant,
        transmit: Transmit<&'a [u8]>,
    ) -> TurnRecv<'a> {
        if !self.is_from_server(transmit.transport, transmit.from, transmit.to) {
            return TurnRecv::Ignored;
        }
        let data = transmit.data;
        if let Some((channel, payload)) = parse_channel_data(data) {
            return match self.by_channel.get(&channel) {
                Some(&peer) => TurnRecv::Data {
                    peer,
                    data: payload,
                },
                None => {
                    tracing::debug!(channel, "ChannelData on an unknown channel dropped");
                    TurnRecv::Handled
                }
            };
        }
        if !looks_like_stun(data) {
            return TurnRecv::Ignored;
        }
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "malformed STUN from the TURN server dropped");
                return TurnRecv::Handled;
            }
        };
        if msg.class() == MessageClass::Indication {
            if msg.method() != Method::DATA {
                return TurnRecv::Handled;
            }
            // RFC 8656 §10.4: XOR-PEER-ADDRESS and DATA, else discard.
            return match (
                msg.attribute::<XorPeerAddress>(),
                msg.attribute::<Data<'a>>(),
            ) {
                // RFC 8656 §10.4: data from a peer the client gave no permission to SHOULD
                // be discarded.
                (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(_))))
                    if !self.permissions.contains_key(&peer.ip()) =>
                {
                    tracing::debug!(%peer, "Data indication from an unpermitted peer dropped");
                    TurnRecv::Handled
                }
                (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(payload)))) => TurnRecv::Data {
                    peer,
                    data: payload,
                },
                _ => {
                    tracing::debug!("Data indication without peer or data dropped");
                    TurnRecv::Handled
                }
            };
        }
        match self.txns.handle_response(&msg) {
            ResponseOutcome::Matched { context, .. } => self.on_response(now, &msg, context),
            ResponseOutcome::Failed { context, .. } => {
                self.on_failure(now, context, TurnError::Integrity)
            }
            ResponseOutcome::Discarded(e) => {
                tracing::debug!(error = %e, "TURN response failed its integrity check: dropped");
            }
            ResponseOutcome::Unknown | ResponseOutcome::NotAResponse => {}
        }
        TurnRecv::Handled
    }

    /// The next packet to send to the server.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.out
            .pop_front()
            .or_else(|| self.txns.poll_transmit(now))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is next due. No side effects.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest = self.txns.poll_timeout();
        if self.state == TurnState::Allocated {
            let refreshes = self
                .permissions
                .values()
                .filter(|p| !p.pending)
                .filter_map(|p| p.refresh_at)
                .chain(
                    self.channels
                        .values()
                        .filter(|c| !c.pending)
                        .filter_map(|c| c.refresh_at),
                )
                .chain(self.refresh_at);
            for t in refreshes {
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
            }
        }
        earliest
    }

    /// Refreshes the allocation at the next [`Self::handle_timeout`] rather than when its
    /// lifetime is running out (RFC 8656 §7.2), to learn whether the server still has it
    /// before reusing it: [`TurnEvent::Confirmed`] if it has,
    /// [`TurnEvent::AllocationLost`] if not. Does nothing unless allocated.
    pub fn refresh_now(&mut self, now: Instant) {
        if self.state == TurnState::Allocated {
            self.confirming = true;
            if self.refresh_at.is_some() {
                self.refresh_at = Some(now);
            }
        }
    }

    /// Retransmits, times out, and refreshes what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.txns.handle_timeout(now);
        while let Some(TransactionEvent::TimedOut { context, .. }) = self.txns.poll_event() {
            self.on_failure(now, context, TurnError::Timeout);
        }
        if self.state != TurnState::Allocated {
            return;
        }
        // RFC 8656 §7.2: refresh the allocation before it expires.
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            let lifetime = self
                .config
                .lifetime
                .map_or(600, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
            self.request(now, Request::Refresh { lifetime });
        }
        // RFC 8656 §9: permissions last 300 s; §12: channels 600 s.
        let due: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(_, p)| !p.pending && p.refresh_at.is_some_and(|t| t <= now))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            if let Some(p) = self.permissions.get_mut(&ip) {
                p.pending = true;
                p.refresh_at = None;
            }
            self.request(now, Request::Permission(ip));
        }
        let due: Vec<SocketAddr> = self
            .channels
            .iter()
            .filter(|(_, c)| !c.pending && c.refresh_at.is_some_and(|t| t <= now))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            self.start_channel(now, peer);
        }
    }

    fn free_channel(&mut self) -> Option<u16> {
        let span = usize::from(MAX_CHANNEL - MIN_CHANNEL) + 1;
        for _ in 0..span {
            let n = self.next_channel;
            self.next_channel = if n >= MAX_CHANNEL { MIN_CHANNEL } else { n + 1 };
            if !self.by_channel.contains_key(&n) {
                return Some(n);
            }
        }
        None
    }

    fn start_channel(&mut self, now: Instant, peer: SocketAddr) {
        let Some(c) = self.channels.get_mut(&peer) else {
            return;
        };
        c.pending = true;
        c.refresh_at = None;
        let channel = c.number;
        self.request(now, Request::Channel { peer, channel });
    }

    fn to_server(&self, data: Vec<u8>) -> Transmit<Vec<u8>> {
        Transmit {
            transport: self.config.transport,
            from: self.config.local,
            to: self.config.server,
            data,
        }
    }

    /// Writes and starts a request, signed once the credentials are known.
    fn request(&mut self, now: Instant, request: Request) {
        let id = TransactionId::generate(&mut self.rng);
        let method = match request {
            Request::Allocate => Method::ALLOCATE,
            Request::Refresh { .. } => Method::REFRESH,
            Request::Permission(_) => Method::CREATE_PERMISSION,
            Request::Channel { .. } => Method::CHANNEL_BIND,
        };
        let mut data = Vec::with_capacity(160);
        let mut w = MessageWriter::new(
            &mut data,
            MessageType::new(MessageClass::Request, method),
            id,
        );
        let written = self.write_request(&mut w, request);
        if let Err(e) = written {
            self.on_failure(now, request, TurnError::Write(e.to_string()));
            return;
        }
        let transmit = self.to_server(data);
        let integrity = self.auth.response_integrity();
        if let Err(e) = self.txns.start(now, transmit, request, integrity, None) {
            self.on_failure(now, request, TurnError::Write(e.to_string()));
        }
    }

    fn write_request(
        &mut self,
        w: &mut MessageWriter<'_>,
        request: Request,
    ) -> Result<(), StunWriteError> {
        match request {
            Request::Allocate => {
                // RFC 8656 §7.1: REQUESTED-TRANSPORT UDP (the relay to peers is UDP).
                w.add(&RequestedTransport::UDP)?;
                match self.config.family {
                    AllocationFamily::V4 => {}
                    AllocationFamily::V6 => {
                        w.add(&RequestedAddressFamily(AddressFamily::V6))?;
                    }
                    AllocationFamily::Dual => {
                        w.add(&AdditionalAddressFamily(AddressFamily::V6))?;
                    }
                }
                if let Some(l) = self.config.lifetime {
                    w.add(&Lifetime(u32::try_from(l.as_secs()).unwrap_or(u32::MAX)))?;
                }
            }
            Request::Refresh { lifetime } => w.add(&Lifetime(lifetime))?,
            Request::Permission(ip) => w.add(&XorPeerAddress(SocketAddr::new(ip, 0)))?,
            Request::Channel { peer, channel } => {
                w.add(&ChannelNumber(channel))?;
                w.add(&XorPeerAddress(peer))?;
            }
        }
        self.auth.write_credentials(w)?;
        w.add_fingerprint()
    }

    fn on_response(&mut self, now: Instant, msg: &Message<'_>, request: Request) {
        // A closed client is done: a late answer neither revives it nor makes it send again.
        // Only the Allocate exchange under way may make or redirect the allocation (close()
        // while allocating, then the Allocate success, must not bring the client back).
        if self.state == TurnState::Closed
            || (request == Request::Allocate && self.state != TurnState::Allocating)
        {
            tracing::debug!(?request, state = ?self.state, "late TURN answer ignored");
            return;
        }
        if msg.class() == MessageClass::Error {
            match self.auth.handle_error_response(msg) {
                AuthOutcome::Retry => {
                    self.request(now, request);
                    return;
                }
                AuthOutcome::Failed(e) => {
                    self.on_failure(now, request, TurnError::Auth(e));
                    return;
                }
                AuthOutcome::NotAuthError => {}
            }
            let Ok(Some(code)) = msg.attribute::<ErrorCode<'_>>() else {
                self.on_failure(now, request, TurnError::MalformedError);
                return;
            };
            if code.code == ErrorCode::TRY_ALTERNATE && request == Request::Allocate {
                self.redirect(now, msg);
                return;
            }
            self.on_failure(now, request, TurnError::from_code(code.code, code.reason));
            return;
        }
        self.auth.handle_success();
        match request {
            Request::Allocate => self.on_allocated(now, msg),
            Request::Refresh { lifetime: 0 } => {
                self.state = TurnState::Closed;
                self.events.push_back(TurnEvent::Closed);
            }
            Request::Refresh { .. } => {
                let lifetime = msg
                    .attribute::<Lifetime>()
                    .ok()
                    .flatten()
                    .map_or(600, |l| l.0);
                self.refresh_at =
                    Some(now + refresh_after(Duration::from_secs(u64::from(lifetime))));
                if std::mem::take(&mut self.confirming) {
                    self.events.push_back(TurnEvent::Confirmed);
                }
            }
            Request::Permission(ip) => {
                if let Some(p) = self.permissions.get_mut(&ip) {
                    p.pending = false;
                    p.installed = true;
                    p.refresh_at = Some(now + refresh_after(self.config.permission_lifetime));
                }
                self.events
                    .push_back(TurnEvent::PermissionCreated { peer: ip });
            }
            Request::Channel { peer, channel } => {
                if let Some(c) = self.channels.get_mut(&peer) {
                    c.pending = false;
                    c.bound = true;
                    c.refresh_at = Some(now + refresh_after(self.config.channel_lifetime));
                }
                // RFC 8656 §11: a channel binding installs or refreshes the permission.
                if let Some(p) = self.permissions.get_mut(&peer.ip())
                    && !p.pending
                {
                    p.installed = true;
                    p.refresh_at = Some(now + refresh_after(self.config.permission_lifetime));
                }
                self.events
                    .push_back(TurnEvent::ChannelBound { peer, channel });
            }
        }
    }

    fn on_allocated(&mut self, now: Instant, msg: &Message<'_>) {
        let id = msg.transaction_id();
        let relayed: Vec<SocketAddr> = msg
            .attributes()
            .filter(|a| a.attr_type() == AttributeType::XOR_RELAYED_ADDRESS)
            .filter_map(|a| a.decode::<XorRelayedAddress>(&id).ok())
            .map(|a| a.0)
            .collect();
        let mapped = msg.attribute::<XorMappedAddress>().ok().flatten();
        let lifetime = msg.attribute::<Lifetime>().ok().flatten();
        let (Some(XorMappedAddress(mapped)), Some(Lifetime(lifetime))) = (mapped, lifetime) else {
            let missing = if mapped.is_none() {
                "XOR-MAPPED-ADDRESS"
            } else {
                "LIFETIME"
            };
            self.fail_allocation(TurnError::MissingAttribute(missing));
            return;
        };
        if relayed.is_empty() {
            self.fail_allocation(TurnError::MissingAttribute("XOR-RELAYED-ADDRESS"));
            return;
        }
        let lifetime = Duration::from_secs(u64::from(lifetime));
        self.state = TurnState::Allocated;
        self.relayed = relayed.clone();
        self.mapped = Some(mapped);
        self.refresh_at = Some(now + refresh_after(lifetime));
        tracing::debug!(?relayed, %mapped, ?lifetime, "TURN allocation made");
        self.events.push_back(TurnEvent::Allocated {
            relayed,
            mapped,
            lifetime,
        });
        // Requests that waited for the allocation.
        let waiting: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(_, p)| !p.pending && !p.installed)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in waiting {
            if let Some(p) = self.permissions.get_mut(&ip) {
                p.pending = true;
            }
            self.request(now, Request::Permission(ip));
        }
        let channels: Vec<SocketAddr> = self
            .channels
            .iter()
            .filter(|(_, c)| !c.pending && !c.bound)
            .map(|(p, _)| *p)
            .collect();
        for peer in channels {
            self.start_channel(now, peer);
        }
    }

    /// RFC 8656 §7.1 / RFC 8489 §10: 300 Try Alternate with ALTERNATE-SERVER, followed once.
    fn redirect(&mut self, now: Instant, msg: &Message<'_>) {
        let alternate = msg.attribute::<AlternateServer>().ok().flatten();
        match alternate {
            Some(AlternateServer(server))
                if !self.redirected && server.is_ipv4() == self.config.server.is_ipv4() =>
            {
                self.redirected = true;
                self.config.server = server;
                // A new server: a new credential exchange.
                if let Ok(auth) = LongTermAuth::new(&self.config.username, &self.config.password) {
                    self.auth = auth;
                }
                self.events.push_back(TurnEvent::Redirected { server });
                self.request(now, Request::Allocate);
            }
            _ => self.fail_allocation(TurnError::TooManyRedirects),
        }
    }

    fn fail_allocation(&mut self, error: TurnError) {
        tracing::debug!(%error, "TURN allocation failed");
        self.state = TurnState::Failed(error.clone());
        self.events.push_back(TurnEvent::AllocationFailed(error));
    }

    fn on_failure(&mut self, _now: Instant, request: Request, error: TurnError) {
        match request {
            Request::Allocate => {
                if self.state == TurnState::Allocating {
                    self.fail_allocation(error);
                }
            }
            Request::Refresh { lifetime: 0 } => {
                self.state = TurnState::Closed;
                self.events.push_back(TurnEvent::Closed);
            }
            Request::Refresh { .. } => {
                // RFC 8656 §7.3: the allocation is gone (437), or cannot be kept. After
                // close() a late answer changes nothing.
                self.lose_allocation(error);
            }
            Request::Permission(peer) => {
                if let Some(p) = self.permissions.get_mut(&peer) {
                    p.pending = false;
                    p.installed = false;
                    p.refresh_at = None;
                }
                if error == TurnError::AllocationMismatch {
                    self.lose_allocation(error.clone());
                }
                self.events
                    .push_back(TurnEvent::PermissionFailed { peer, error });
            }
            Request::Channel { peer, .. } => {
                if let Some(c) = self.channels.get_mut(&peer) {
                    c.pending = false;
                    c.bound = false;
                    c.refresh_at = None;
                }
                if error == TurnError::AllocationMismatch {
                    self.lose_allocation(error.clone());
                }
                self.events
                    .push_back(TurnEvent::ChannelFailed { peer, error });
            }
        }
    }

    fn lose_allocation(&mut self, error: TurnError) {
        if self.state == TurnState::Allocated {
            self.state = TurnState::Failed(error.clone());
            self.relayed.clear();
            self.events.push_back(TurnEvent::AllocationLost(error));
        }
    }
}

/// When to refresh something that lasts `lifetime`: a minute before it ends, or halfway
/// through when it lasts under two minutes (RFC 8656 §7.2 asks for before expiry).
fn refresh_after(lifetime: Duration) -> Duration {
    if lifetime >= Duration::from_secs(120) {
        lifetime - Duration::from_secs(60)
    } else {
        lifetime / 2
    }
}
