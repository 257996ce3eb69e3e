//! ICE-TCP (RFC 6544): TCP host candidates, their pairs, and the connections their checks
//! run over.
//!
//! # Candidates
//! A TCP socket given to [`StreamMut::add_local_socket`](super::StreamMut::add_local_socket)
//! is a listening socket: it makes a `tcptype passive` host candidate at its address, and a
//! `tcptype active` host candidate at its IP with port 9 (RFC 6544 §4.5: an active
//! candidate's port is meaningless), with the local preferences of RFC 6544 §4.2.
//! Simultaneous-open candidates are not made for host addresses (RFC 6544 §4.1 makes them
//! optional); server-reflexive TCP candidates are `so` (see `gather.rs`), and are not
//! paired.
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
//! - `so` candidates are not paired.
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
//! connection is gone (closed or reset by the peer, or failed): the pairs over it fail, and
//! a selected one is lost as when its socket goes (see `netchange.rs`): the controlling
//! agent under renomination moves to another valid pair, otherwise
//! [`AgentEvent::RestartNeeded`](super::AgentEvent::RestartNeeded).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::pairs::PairState;
use super::{Agent, ComponentId, IoRequest, LocalCand, PairId, StreamId, transport_key};
use crate::TransportType;
use crate::candidate::{
    Candidate, CandidateTransport, CandidateType, FoundationKey, TcpType, tcp_local_preference,
};

/// The port of an active TCP candidate (RFC 6544 §4.5: the discard port).
pub(super) const ACTIVE_PORT: u16 = 9;

/// The connections of ICE-TCP checks.
///
/// Invariant: every entry of `connecting` names a pair of the current check list of its
/// stream, in state InProgress, with no transaction; every entry of `remote_of` is a local
/// connection address registered in the agent's socket map.
#[derive(Debug, Default)]
pub(super) struct TcpChecks {
    /// Connections asked of the I/O layer: request id -> (stream, the pair to check, the
    /// remote address).
    connecting: BTreeMap<u64, (StreamId, PairId, SocketAddr)>,
    /// An open connection of an active candidate: its local address -> its remote one.
    remote_of: BTreeMap<SocketAddr, SocketAddr>,
    /// Components whose own pairs all failed but whose passive candidates the peer's
    /// active ones may still connect to: until when they wait (`None` once that passed).
    waits: BTreeMap<(StreamId, ComponentId), Option<Instant>>,
}

impl TcpChecks {
    /// The connection opened from `local`, if it is one of an active candidate: its
    /// remote end.
    pub fn remote_of(&self, local: SocketAddr) -> Option<SocketAddr> {
        self.remote_of.get(&local).copied()
    }

    /// Forgets stream `sid`'s waits for the peer's connections (an ICE restart: the new
    /// generation waits afresh).
    pub fn forget_waits(&mut self, sid: StreamId) {
        self.waits.retain(|&(s, _), _| s != sid);
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
        for (&(sid, _), wait) in self.tcp_checks.waits.iter_mut() {
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

    /// True when pair `pid`'s check needs a connection first: its local candidate is the
    /// active candidate itself (not that of an open connection).
    pub(super) fn needs_connection(&self, sid: StreamId, pid: PairId) -> bool {
        let s = &self.streams[sid];
        let local = &s.local[s.checklist[pid].local];
        local.transport == TransportType::Tcp
            && local.candidate.transport() == CandidateTransport::Tcp(TcpType::Active)
            && local.base.port() == ACTIVE_PORT
    }

    /// Asks the I/O layer for the connection of pair `pid`'s check (RFC 6544 §7.1); the
    /// pair is In-Progress until it opens or fails.
    pub(super) fn connect_for_check(&mut self, sid: StreamId, pid: PairId) {
        let s = &mut self.streams[sid];
        let pair = &s.checklist[pid];
        let local = SocketAddr::new(s.local[pair.local].base.ip(), 0);
        let remote = s.remote[pair.remote].candidate.address();
        let id = self.next_tcp_id;
        self.next_tcp_id += 1;
        s.checklist.set_state(pid, PairState::InProgress);
        self.tcp_checks.connecting.insert(id, (sid, pid, remote));
        tracing::debug!(stream = %sid, %local, %remote, "ICE-TCP: connecting for a check");
        self.io_requests
            .push_back(IoRequest::IceTcpConnect { id, local, remote });
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
        let Some((sid, pid, remote)) = self.tcp_checks.connecting.remove(&id) else {
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
        let Some(local) = local else {
            tracing::debug!(stream = %sid, "ICE-TCP: connection refused: pair failed");
            self.count_failure(sid, pid, |f| &mut f.unreachable);
            self.streams[sid]
                .checklist
                .set_state(pid, PairState::Failed);
            self.check_failures(sid);
            return true;
        };
        self.check_over_connection(now, sid, pid, local);
        true
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
        self.tcp_checks.remote_of.insert(local, remote);
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
        if connection_of_ours {
            self.tcp_checks.remote_of.remove(&local);
            self.sockets.remove(&key);
        }
        tracing::debug!(stream = %sid, %local, %remote, "ICE-TCP: connection ended");
        self.drop_pairs_on(now, sid, component, |(base, peer)| {
            base == local && (connection_of_ours || peer == remote)
        });
    }
}
