//! ICE-TCP (RFC 6544): TCP host candidates, their pairs, and the connections their checks
//! run over.
//!
//! # Candidates
//! A TCP socket given to [`StreamMut::add_local_socket`](super::StreamMut::add_local_socket)
//! is a listening socket: it makes a `tcptype passive` host candidate at its address, and a
//! `tcptype active` host candidate at its IP with port 9 (RFC 6544 §4.5: an active
//! candidate's port is meaningless), with the local preferences of RFC 6544 §4.2.
//!
//! With [`AgentConfig::tcp_simultaneous_open`](super::AgentConfig::tcp_simultaneous_open)
//! (off by default; its docs give the reasons), a bound TCP socket that does not listen,
//! given to [`StreamMut::add_local_so_socket`](super::StreamMut::add_local_so_socket),
//! makes a `tcptype so` host candidate at its own address and port (RFC 6544 §4.1: each
//! `so` candidate on a port of its own, not the passive candidate's), ranked with the
//! direction preference 2 of §4.2 (below active, 6, and passive, 4). STUN servers over TCP
//! are then asked from that port, so the server-reflexive `so` candidate (§4.2: direction
//! preference 6 among NAT-assisted candidates) is the NAT's mapping of the port the
//! simultaneous opens will come from; its base is the `so` host candidate, whose pairs
//! stand for it (RFC 8445 §6.1.2.4). Without the option, TCP STUN queries go from any port
//! of a UDP socket's IP, and the resulting server-reflexive `so` candidates pair with
//! nothing (nothing would open a connection from their port).
//!
//! # Pairs (RFC 6544 §6.2)
//! - A local active candidate pairs with each remote passive candidate. Its check needs a
//!   connection first: the agent asks the I/O layer for one
//!   ([`IoRequest::IceTcpConnect`]); once it is open
//!   ([`Agent::handle_tcp_connected`](super::Agent::handle_tcp_connected)), a local
//!   candidate of that connection (the active candidate, based on the connection's local
//!   address) takes the pair's place, and its check goes out over the connection (RFC 6544
//!   §7.1: one connection per pair). A connection that cannot be opened fails the pair.
//! - A local passive candidate is checked over connections the peer opens: the peer's
//!   check on such a connection makes a peer-reflexive remote candidate (`tcptype active`,
//!   at the connection's source address) and its pair with the passive candidate, whose
//!   triggered check goes back over the same connection (RFC 6544 §7.2). Pairs of a local
//!   passive candidate with a signalled active one (port 9) are not formed: nothing could
//!   be sent on them.
//! - A local `so` candidate pairs with each remote `so` candidate, signalled or
//!   peer-reflexive (§6.2). Its check needs a connection to the pair's remote address
//!   first (§7.1): the agent asks the I/O layer for a simultaneous open from the
//!   candidate's own address and port ([`IoRequest::IceTcpConnect`] with
//!   `simultaneous_open`), the peer doing the same from its side as it checks the mirror
//!   pair. Once open, the pair itself (its base is the connection's local end) is
//!   checked over it, and checks and answers flow both ways as over an active
//!   candidate's connection; a check from an unknown address on such a connection makes a
//!   peer-reflexive `so` remote candidate (§7.2). A connection that cannot be opened
//!   (refused: the peer's SYN did not cross ours; timed out) fails only that pair, at
//!   once (§7.1). Each connection is keyed by (local `so` address, remote address), so one
//!   `so` port carries connections to several remote candidates.
//! - A successful check makes its own pair valid: the connection fixes the 5-tuple, so
//!   the mapped address (which a NAT in front of the active side changes) makes no local
//!   peer-reflexive candidate.
//!
//! Messages over these connections (checks, answers and application data) are framed by
//! the I/O layer with RFC 4571's 16-bit length: the agent takes and gives them whole.
//!
//! # Waiting for the peer's connections
//! A component whose own pairs have all failed (or that has none: a peer with active
//! candidates only, as browsers are) does not fail while it has a passive candidate and the
//! peer an active one: the peer's connections may still come. It waits for them as long as
//! a check over TCP may take (RFC 8489 §6.2.2's Ti, the reliable-transport timeout of
//! [`AgentConfig::check_retransmit`](super::AgentConfig::check_retransmit); 39.5 s by
//! default), then fails.
//!
//! # Connections that end
//! [`Agent::handle_tcp_closed`](super::Agent::handle_tcp_closed) tells the agent that a
//! connection is gone (closed or reset by the peer, or failed): the pairs over it fail (for
//! a simultaneous open, only the one pair of that connection), and
//! a selected one is lost as when its socket goes (see `netchange.rs`): the controlling
//! agent under renomination moves to another valid pair, otherwise
//! [`AgentEvent::RestartNeeded`](super::AgentEvent::RestartNeeded).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use super::pairs::PairState;
use super::requests::Requests;
use super::{Agent, ComponentId, IoRequest, LocalCand, PairId, StreamId, transport_key};
use crate::TransportType;
use crate::candidate::{
    Candidate, CandidateTransport, CandidateType, FoundationKey, TcpType, tcp_local_preference,
};

/// The port of an active TCP candidate (RFC 6544 §4.5: the discard port).
pub(super) const ACTIVE_PORT: u16 = 9;

/// The connections of ICE-TCP checks ([`TcpChecks`] boxes them).
///
/// Invariant: every entry of `connecting` names a pair of the current check list of its
/// stream, in state InProgress, with no transaction; every entry of `remote_of` is a local
/// connection address registered in the agent's socket map; every local end in `so_open`
/// is in `so_sockets`, which are registered in the agent's socket map.
#[derive(Debug, Default)]
pub(super) struct TcpTables {
    /// Connections asked of the I/O layer: request id -> (stream, the pair to check, the
    /// remote address).
    connecting: BTreeMap<u64, (StreamId, PairId, SocketAddr)>,
    /// An open connection of an active candidate: its local address -> its remote one.
    remote_of: BTreeMap<SocketAddr, SocketAddr>,
    /// Components whose own pairs all failed but whose passive candidates the peer's
    /// active ones may still connect to: until when they wait (`None` once that passed).
    waits: BTreeMap<(StreamId, ComponentId), Option<Instant>>,
    /// The local sockets of simultaneous-open candidates.
    so_sockets: BTreeSet<SocketAddr>,
    /// The open simultaneous-open connections: (local so socket, remote address).
    so_open: BTreeSet<(SocketAddr, SocketAddr)>,
}

/// The ICE-TCP tables ([`TcpTables`]), boxed on first use: an agent that never checks
/// over TCP nor has a simultaneous-open socket keeps a pointer, and reads empty tables.
#[derive(Debug, Default)]
pub(super) struct TcpChecks {
    tables: Option<Box<TcpTables>>,
}

/// What an agent without ICE-TCP tables reads.
static NO_TABLES: TcpTables = TcpTables {
    connecting: BTreeMap::new(),
    remote_of: BTreeMap::new(),
    waits: BTreeMap::new(),
    so_sockets: BTreeSet::new(),
    so_open: BTreeSet::new(),
};

impl std::ops::Deref for TcpChecks {
    type Target = TcpTables;

    fn deref(&self) -> &TcpTables {
        self.tables.as_deref().unwrap_or(&NO_TABLES)
    }
}

impl TcpChecks {
    /// The tables, boxed now if they were not: for an insertion.
    fn tables_mut(&mut self) -> &mut TcpTables {
        self.tables.get_or_insert_with(Box::default)
    }

    /// The tables if they were ever used: for a removal (none from empty tables).
    fn existing_mut(&mut self) -> Option<&mut TcpTables> {
        self.tables.as_deref_mut()
    }

    /// The connection opened from `local`, if it is one of an active candidate: its
    /// remote end.
    pub fn remote_of(&self, local: SocketAddr) -> Option<SocketAddr> {
        self.remote_of.get(&local).copied()
    }

    /// Registers `local` as the socket of a simultaneous-open candidate.
    pub fn add_so_socket(&mut self, local: SocketAddr) {
        self.tables_mut().so_sockets.insert(local);
    }

    /// True if `local` is the socket of a simultaneous-open candidate.
    pub fn is_so_socket(&self, local: SocketAddr) -> bool {
        self.so_sockets.contains(&local)
    }

    /// Forgets the simultaneous-open socket `local` (removed) and its connections.
    pub fn forget_so_socket(&mut self, local: SocketAddr) {
        if let Some(t) = self.existing_mut()
            && t.so_sockets.remove(&local)
        {
            t.so_open.retain(|&(l, _)| l != local);
        }
    }

    /// Forgets stream `sid`'s waits for the peer's connections (an ICE restart: the new
    /// generation waits afresh).
    pub fn forget_waits(&mut self, sid: StreamId) {
        if let Some(t) = self.existing_mut() {
            t.waits.retain(|&(s, _), _| s != sid);
        }
    }
}

/// RFC 6544 §6.2: whether a local candidate of TCP type `local` (based on `base`) may pair
/// with remote candidate `remote`. `connection_remote` is the remote end of the connection
/// `base` is the local end of, for the candidate of an open connection.
pub(super) fn tcp_pairable(
    local: TcpType,
    base: SocketAddr,
    remote: &Candidate,
    connection_remote: Option<SocketAddr>,
) -> bool {
    let CandidateTransport::Tcp(remote_type) = remote.transport() else {
        return false;
    };
    match (local, remote_type) {
        // The active candidate itself pairs with every passive one; the candidate of an
        // open connection only with the remote end of that connection.
        (TcpType::Active, TcpType::Passive) => match connection_remote {
            Some(r) => r == remote.address(),
            None => base.port() == ACTIVE_PORT,
        },
        // Over a connection the peer opened: its source, learnt from its check.
        (TcpType::Passive, TcpType::Active) => {
            remote.candidate_type() == CandidateType::PeerReflexive
                && remote.address().port() != ACTIVE_PORT
        }
        // RFC 6544 §6.2: simultaneous-open candidates pair with each other (a
        // server-reflexive one through its base, the `so` host candidate).
        (TcpType::So, TcpType::So) => true,
        _ => false,
    }
}

impl Agent {
    /// True while component `component` waits for the peer's ICE-TCP connections instead
    /// of failing (see the module docs); the wait starts at the first call.
    pub(super) fn awaits_tcp_checks(&mut self, sid: StreamId, component: ComponentId) -> bool {
        let s = &self.streams[sid];
        let passive_here = s.local.iter().any(|l| {
            l.candidate.component() == component
                && l.candidate.transport() == CandidateTransport::Tcp(TcpType::Passive)
                && !s.gone_bases.contains(&l.base)
        });
        let active_there = s.remote.iter().any(|r| {
            r.candidate.component() == component
                && r.candidate.transport() == CandidateTransport::Tcp(TcpType::Active)
        });
        let Some(now) = self.last_now else {
            return false;
        };
        if !(passive_here && active_there) {
            return false;
        }
        let ti = self.config.check_retransmit.reliable_timeout;
        let wait = self
            .tcp_checks
            .tables_mut()
            .waits
            .entry((sid, component))
            .or_insert(Some(now + ti));
        wait.is_some_and(|until| now < until)
    }

    /// The earliest end of a wait for the peer's ICE-TCP connections.
    pub(super) fn tcp_wait_timeout(&self) -> Option<Instant> {
        self.tcp_checks.waits.values().flatten().min().copied()
    }

    /// Ends the waits that are due: their components fail now if nothing came.
    pub(super) fn run_tcp_waits(&mut self, now: Instant) {
        let mut due = Vec::new();
        let Some(tables) = self.tcp_checks.existing_mut() else {
            return;
        };
        for (&(sid, _), wait) in tables.waits.iter_mut() {
            if wait.is_some_and(|until| until <= now) {
                *wait = None;
                due.push(sid);
            }
        }
        for sid in due {
            self.check_failures(sid);
        }
    }

    /// The active host candidate of TCP listening socket `base` (RFC 6544 §4.1, §4.2),
    /// with the ICE-TCP "other preference" `other` of the socket.
    pub(super) fn add_active_tcp_host(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
        other: u16,
    ) {
        let address = SocketAddr::new(base.ip(), ACTIVE_PORT);
        let foundation = self.foundations.foundation(FoundationKey::new(
            CandidateType::Host,
            TransportType::Tcp,
            base.ip(),
            None,
        ));
        let direction = TcpType::Active.direction_preference(CandidateType::Host);
        let preference = tcp_local_preference(direction, other).unwrap_or(u16::MAX);
        let candidate = Candidate::builder(
            foundation,
            CandidateType::Host,
            CandidateTransport::Tcp(TcpType::Active),
            address,
        )
        .component(component)
        .local_preference(preference)
        .build();
        match candidate {
            Ok(c) => self.add_local_candidate(sid, c, address, TransportType::Tcp),
            Err(e) => tracing::warn!(error = %e, %base, "cannot make an active TCP candidate"),
        }
    }

    /// The simultaneous-open host candidate of TCP socket `base` (RFC 6544 §4.1, §4.2: the
    /// direction preference of `so`), with the ICE-TCP "other preference" `other` of the
    /// socket.
    pub(super) fn add_so_tcp_host(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
        other: u16,
    ) {
        let foundation = self.foundations.foundation(FoundationKey::new(
            CandidateType::Host,
            TransportType::Tcp,
            base.ip(),
            None,
        ));
        let direction = TcpType::So.direction_preference(CandidateType::Host);
        let preference = tcp_local_preference(direction, other).unwrap_or(u16::MAX);
        let candidate = Candidate::builder(
            foundation,
            CandidateType::Host,
            CandidateTransport::Tcp(TcpType::So),
            base,
        )
        .component(component)
        .local_preference(preference)
        .build();
        match candidate {
            Ok(c) => self.add_local_candidate(sid, c, base, TransportType::Tcp),
            Err(e) => tracing::warn!(error = %e, %base, "cannot make an so TCP candidate"),
        }
    }

    /// True when pair `pid`'s check needs a connection first: its local candidate is the
    /// active candidate itself (not that of an open connection), or a simultaneous-open
    /// one with no connection to the pair's remote address yet (RFC 6544 §7.1: a check
    /// goes over the pair's connection, opened first if there is none).
    pub(super) fn needs_connection(&self, sid: StreamId, pid: PairId) -> bool {
        let s = &self.streams[sid];
        let pair = &s.checklist[pid];
        let local = &s.local[pair.local];
        if local.transport != TransportType::Tcp {
            return false;
        }
        match local.candidate.transport() {
            CandidateTransport::Tcp(TcpType::Active) => local.base.port() == ACTIVE_PORT,
            CandidateTransport::Tcp(TcpType::So) => {
                let remote = s.remote[pair.remote].candidate.address();
                !self.tcp_checks.so_open.contains(&(local.base, remote))
            }
            _ => false,
        }
    }

    /// Asks the I/O layer for the connection of pair `pid`'s check (RFC 6544 §7.1): from
    /// any port of an active candidate's IP, or a simultaneous open from the port of an
    /// `so` candidate. The pair is In-Progress until it opens or fails; a pair already
    /// waiting for its connection is not asked for twice.
    pub(super) fn connect_for_check(&mut self, sid: StreamId, pid: PairId) {
        if self
            .tcp_checks
            .connecting
            .values()
            .any(|&(s, p, _)| s == sid && p == pid)
        {
            self.streams[sid]
                .checklist
                .set_state(pid, PairState::InProgress);
            return;
        }
        let s = &mut self.streams[sid];
        let pair = &s.checklist[pid];
        let local = &s.local[pair.local];
        let simultaneous_open = local.candidate.transport() == CandidateTransport::Tcp(TcpType::So);
        let local = if simultaneous_open {
            local.base
        } else {
            SocketAddr::new(local.base.ip(), 0)
        };
        let remote = s.remote[pair.remote].candidate.address();
        let id = Requests::of(&mut self.requests, &self.config).next_tcp_id();
        s.checklist.set_state(pid, PairState::InProgress);
        self.tcp_checks
            .tables_mut()
            .connecting
            .insert(id, (sid, pid, remote));
        tracing::debug!(stream = %sid, %local, %remote, simultaneous_open, "ICE-TCP: connecting for a check");
        self.io_requests.push_back(IoRequest::IceTcpConnect {
            id,
            local,
            remote,
            simultaneous_open,
        });
    }

    /// The I/O layer answered [`IoRequest::IceTcpConnect`] `id`: the connection is open
    /// from `local` (`Some`), or could not be opened. False if `id` is not one of these
    /// requests.
    pub(super) fn on_check_connection(
        &mut self,
        now: Instant,
        id: u64,
        local: Option<SocketAddr>,
    ) -> bool {
        let Some((sid, pid, remote)) = self
            .tcp_checks
            .existing_mut()
            .and_then(|t| t.connecting.remove(&id))
        else {
            return false;
        };
        let gone = self
            .streams
            .get(sid)
            .is_none_or(|s| !s.checklist.contains(pid) || s.checklist[pid].removed());
        if gone {
            // The pair went meanwhile (an ICE restart, its socket removed): nothing to
            // check; the connection is closed.
            if let Some(local) = local {
                self.io_requests
                    .push_back(IoRequest::TcpClose { local, remote });
            }
            return true;
        }
        let base = {
            let s = &self.streams[sid];
            let l = &s.local[s.checklist[pid].local];
            (l.candidate.transport() == CandidateTransport::Tcp(TcpType::So)).then_some(l.base)
        };
        match (local, base) {
            (None, _) => {
                // RFC 6544 §7.1: a connection that cannot be established fails the check;
                // only this pair fails.
                tracing::debug!(stream = %sid, %remote, "ICE-TCP: connection refused: pair failed");
                self.fail_unreachable(sid, pid);
            }
            (Some(local), Some(base)) if local != base => {
                // A simultaneous open must come from the candidate's own port: anything
                // else is not the pair the peer checks.
                tracing::debug!(stream = %sid, %local, %base, "ICE-TCP: simultaneous open from the wrong port: pair failed");
                self.io_requests
                    .push_back(IoRequest::TcpClose { local, remote });
                self.fail_unreachable(sid, pid);
            }
            (Some(local), Some(_)) => {
                // RFC 6544 §7.1: the check goes over the new connection; the pair itself,
                // whose base is the connection's local end, is checked.
                tracing::debug!(stream = %sid, %local, %remote, "ICE-TCP: simultaneous open done, checking");
                self.tcp_checks.tables_mut().so_open.insert((local, remote));
                self.trigger(sid, pid);
            }
            (Some(local), None) => self.check_over_connection(now, sid, pid, local),
        }
        true
    }

    /// Pair `pid`'s connection could not be opened: the pair fails.
    fn fail_unreachable(&mut self, sid: StreamId, pid: PairId) {
        self.count_failure(sid, pid, |f| &mut f.unreachable);
        self.streams[sid]
            .checklist
            .set_state(pid, PairState::Failed);
        self.check_failures(sid);
    }

    /// The connection of pair `pid` (of the active candidate itself) is open from `local`:
    /// a local candidate of that connection takes the pair's place and is checked at once.
    fn check_over_connection(
        &mut self,
        _now: Instant,
        sid: StreamId,
        pid: PairId,
        local: SocketAddr,
    ) {
        let s = &mut self.streams[sid];
        let template = &s.checklist[pid];
        let (li, ri, component) = (template.local, template.remote, template.component);
        let nomination = template.nomination;
        let remote = s.remote[ri].candidate.address();
        let key = s.pair_key(pid);
        let candidate = s.local[li].candidate.clone();
        s.local.push(LocalCand {
            candidate,
            base: local,
            transport: TransportType::Tcp,
        });
        let conn_li = s.local.len() - 1;
        s.checklist.remove(pid, key);
        self.tcp_checks.tables_mut().remote_of.insert(local, remote);
        self.sockets
            .insert((transport_key(TransportType::Tcp), local), (sid, component));
        let Some(new) = self.add_pair(sid, conn_li, ri) else {
            tracing::debug!(stream = %sid, %local, %remote, "ICE-TCP: no pair for the connection");
            return;
        };
        let s = &mut self.streams[sid];
        s.checklist[new].nomination = nomination;
        if let Some(c) = s.components.get_mut(component)
            && c.nominating == Some(pid)
        {
            c.nominating = Some(new);
        }
        tracing::debug!(stream = %sid, %local, %remote, "ICE-TCP: connected, checking");
        self.trigger(sid, new);
    }

    /// The I/O layer says the TCP connection between `local` and `remote` ended: the pairs
    /// over it fail, and a selected one among them is lost (see the module docs).
    pub(super) fn on_tcp_closed(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        let key = (transport_key(TransportType::Tcp), local);
        let Some(&(sid, component)) = self.sockets.get(&key) else {
            return;
        };
        let connection_of_ours = self.tcp_checks.remote_of(local) == Some(remote);
        if let Some(t) = self.tcp_checks.existing_mut() {
            if connection_of_ours {
                t.remote_of.remove(&local);
            }
            t.so_open.remove(&(local, remote));
        }
        if connection_of_ours {
            self.sockets.remove(&key);
        }
        tracing::debug!(stream = %sid, %local, %remote, "ICE-TCP: connection ended");
        self.drop_pairs_on(now, sid, component, |(base, peer)| {
            base == local && (connection_of_ours || peer == remote)
        });
    }
}
