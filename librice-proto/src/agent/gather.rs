//! Gathering: host candidates from the caller's sockets and server-reflexive candidates
//! from STUN servers (RFC 8445 §5.1.1).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::requests::Requests;
use super::{Agent, AgentEvent, ComponentId, GatherPhase, IoRequest, LocalCand, StreamId, Txn};
use crate::candidate::{
    Candidate, CandidateTransport, CandidateType, FoundationKey, MAX_TCP_OTHER_PREFERENCE, TcpType,
    local_preferences, tcp_local_preference, tcp_other_preferences,
};
use crate::compact::push_compact;
use crate::stun::attr::{AlternateServer, ErrorCode, XorMappedAddress};
use crate::stun::{Message, MessageClass, MessageType, MessageWriter, TransactionId};
use crate::{Transmit, TransportType};

/// One server-reflexive query: a Binding request from `base` to `server`.
#[derive(Debug, Clone, Copy)]
pub(super) struct GatherJob {
    pub stream: StreamId,
    pub component: ComponentId,
    /// The local socket (port 0 for a TCP connection not yet open).
    pub base: SocketAddr,
    pub server: SocketAddr,
    pub transport: TransportType,
    /// The local preference of the base's host candidate, reused for the srflx one.
    pub local_preference: u16,
    /// For a TURN allocation over UDP: the relay (`server` and `transport` describe its
    /// server).
    pub relay: Option<usize>,
    /// For a TURN allocation over TCP: the server's index in the configuration; the relay
    /// is made once the connection is open.
    pub turn_tcp: Option<usize>,
    /// True once a STUN server redirected this query (300 Try Alternate): it is followed
    /// once only (RFC 8489 §10).
    pub redirected: bool,
}

impl Agent {
    /// Makes the host candidates of stream `sid` and queues its STUN queries.
    pub(super) fn start_gathering(&mut self, sid: StreamId) {
        self.streams[sid].gathering = GatherPhase::Running;
        let mut jobs = Vec::new();
        for component in self.streams[sid].components.ids() {
            let sockets = self.streams[sid].components[component].sockets.clone();
            let udp: Vec<(usize, IpAddr)> = sockets
                .iter()
                .enumerate()
                .filter(|(_, (t, _))| *t == TransportType::Udp)
                .map(|(i, (_, a))| (i, a.ip()))
                .collect();
            let tcp: Vec<(usize, IpAddr)> = sockets
                .iter()
                .enumerate()
                .filter(|(_, (t, _))| *t == TransportType::Tcp)
                .map(|(i, (_, a))| (i, a.ip()))
                .collect();
            let udp_prefs = local_preferences(&udp);
            let tcp_prefs = tcp_other_preferences(&tcp);
            let (mut ui, mut ti) = (0, 0);
            for &(transport, base) in &sockets {
                let preference = match transport {
                    TransportType::Udp => {
                        ui += 1;
                        udp_prefs[ui - 1]
                    }
                    TransportType::Tcp => {
                        ti += 1;
                        tcp_prefs[ti - 1]
                    }
                };
                self.gather_socket(sid, component, transport, base, preference, &mut jobs);
            }
        }
        // After an ICE restart, queries of the old round still in flight count too.
        self.streams[sid].pending_gathers += jobs.len();
        if !jobs.is_empty() {
            Requests::of(&mut self.requests, &self.config)
                .gather_queue
                .extend(jobs);
        }
        if self.streams[sid].pending_gathers == 0 {
            self.finish_gathering(sid);
        }
    }

    /// Gathers on a socket added after gathering started (continual gathering): its host
    /// candidate at once, its server-reflexive and relayed ones as the queued queries
    /// answer. Its local preference is below every one given before in the component, so
    /// that candidates stay distinct (RFC 8445 §5.1.2.1).
    pub(super) fn gather_late_socket(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        transport: TransportType,
        base: SocketAddr,
    ) {
        let rank = self.streams[sid].components[component].sockets_added;
        let preference = match transport {
            TransportType::Udp => u16::MAX.saturating_sub(rank),
            TransportType::Tcp => MAX_TCP_OTHER_PREFERENCE.saturating_sub(rank),
        };
        let mut jobs = Vec::new();
        self.gather_socket(sid, component, transport, base, preference, &mut jobs);
        self.streams[sid].pending_gathers += jobs.len();
        if !jobs.is_empty() {
            Requests::of(&mut self.requests, &self.config)
                .gather_queue
                .extend(jobs);
        }
    }

    /// Makes the host candidate of one socket and plans its server queries: `preference`
    /// is the UDP local preference, or the ICE-TCP "other preference" of a TCP socket.
    fn gather_socket(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        transport: TransportType,
        base: SocketAddr,
        preference: u16,
        jobs: &mut Vec<GatherJob>,
    ) {
        if transport == TransportType::Tcp && self.tcp_checks.is_so_socket(base) {
            self.gather_so_socket(sid, component, base, preference, jobs);
            return;
        }
        let (candidate_transport, local_preference) = match transport {
            TransportType::Udp => (CandidateTransport::Udp, preference),
            TransportType::Tcp => {
                let direction = TcpType::Passive.direction_preference(CandidateType::Host);
                let pref = tcp_local_preference(direction, preference).unwrap_or(u16::MAX);
                (CandidateTransport::Tcp(TcpType::Passive), pref)
            }
        };
        let foundation = self.foundations.foundation(FoundationKey::new(
            CandidateType::Host,
            transport,
            base.ip(),
            None,
        ));
        let candidate =
            Candidate::builder(foundation, CandidateType::Host, candidate_transport, base)
                .component(component)
                .local_preference(local_preference)
                .build();
        match candidate {
            Ok(candidate) => self.add_local_candidate(sid, candidate, base, transport),
            Err(e) => tracing::warn!(error = %e, %base, "cannot make a host candidate"),
        }
        if transport != TransportType::Udp {
            // A listening TCP socket: its active candidate too (RFC 6544 §4.1).
            self.add_active_tcp_host(sid, component, base, preference);
            return;
        }
        self.plan_relays(sid, component, base, local_preference, jobs);
        for server in &self.config.stun_servers {
            // With simultaneous open, TCP servers are asked from the `so` sockets (see
            // `gather_so_socket`).
            if server.address.is_ipv4() != base.is_ipv4()
                || (self.config.tcp_simultaneous_open && server.transport == TransportType::Tcp)
            {
                continue;
            }
            let base = match server.transport {
                TransportType::Udp => base,
                TransportType::Tcp => SocketAddr::new(base.ip(), 0),
            };
            // One TCP query per base address and server.
            let duplicate = jobs.iter().any(|j: &GatherJob| {
                j.base == base && j.server == server.address && j.component == component
            });
            if !duplicate {
                jobs.push(GatherJob {
                    stream: sid,
                    component,
                    base,
                    server: server.address,
                    transport: server.transport,
                    local_preference,
                    relay: None,
                    turn_tcp: None,
                    redirected: false,
                });
            }
        }
    }

    /// The `so` host candidate of simultaneous-open socket `base` (with ICE-TCP "other
    /// preference" `other`), and a query to each TCP STUN server of its family from that
    /// very port: the server-reflexive `so` candidate is then the NAT's mapping of the port
    /// the simultaneous opens come from, which an endpoint-independent mapping (RFC 4787
    /// §4.1; RFC 5382 REQ-1 for TCP) keeps for them, and its base is the `so` host
    /// candidate, whose pairs stand for it (RFC 8445 §6.1.2.4).
    fn gather_so_socket(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
        other: u16,
        jobs: &mut Vec<GatherJob>,
    ) {
        self.add_so_tcp_host(sid, component, base, other);
        for server in &self.config.stun_servers {
            if server.transport != TransportType::Tcp || server.address.is_ipv4() != base.is_ipv4()
            {
                continue;
            }
            jobs.push(GatherJob {
                stream: sid,
                component,
                base,
                server: server.address,
                transport: TransportType::Tcp,
                local_preference: other,
                relay: None,
                turn_tcp: None,
                redirected: false,
            });
        }
    }

    /// Adds a local candidate, announces it, and pairs it with the remote candidates. With
    /// `relay_only`, only relayed candidates are announced.
    pub(super) fn add_local_candidate(
        &mut self,
        sid: StreamId,
        candidate: Candidate,
        base: SocketAddr,
        transport: TransportType,
    ) {
        let s = &mut self.streams[sid];
        // RFC 8445 §5.1.3: a candidate with the same address and base as another is
        // redundant. Not a server-reflexive one beside a hidden host candidate: the peer
        // sees a name there, not the address (draft-ietf-rtcweb-mdns-ice-candidates-04
        // §3.1.2.2: it "MUST NOT be considered redundant").
        let hidden = |l: &LocalCand| {
            self.config.hide_host_addresses
                && l.candidate.candidate_type() == CandidateType::Host
                && candidate.candidate_type() == CandidateType::ServerReflexive
        };
        if s.local
            .iter()
            .any(|l| l.candidate.address() == candidate.address() && l.base == base && !hidden(l))
        {
            return;
        }
        let announce =
            !self.config.relay_only || candidate.candidate_type() == CandidateType::Relayed;
        if announce && !self.announce_hidden(sid, &candidate) {
            self.events.push_back(AgentEvent::LocalCandidate {
                stream: sid,
                candidate: candidate.clone(),
            });
        }
        let s = &mut self.streams[sid];
        push_compact(
            &mut s.local,
            LocalCand {
                candidate,
                base,
                transport,
            },
        );
        let li = s.local.len() - 1;
        for ri in 0..self.streams[sid].remote.len() {
            self.add_pair(sid, li, ri);
        }
    }

    /// Starts the next queued STUN query, if any.
    pub(super) fn start_next_gather(&mut self, now: Instant) -> bool {
        let Some(job) = self
            .requests
            .as_deref_mut()
            .and_then(|r| r.gather_queue.pop_front())
        else {
            return false;
        };
        if let Some(idx) = job.relay {
            self.relays[idx].client.allocate(now);
            return true;
        }
        match job.transport {
            TransportType::Udp => self.send_gather_request(now, job, job.base),
            TransportType::Tcp => {
                let r = Requests::of(&mut self.requests, &self.config);
                let id = r.next_tcp_id();
                r.tcp_connects.insert(id, job);
                let tls = job
                    .turn_tcp
                    .and_then(|i| self.config.turn_servers.get(i))
                    .is_some_and(|t| t.tls);
                self.io_requests.push_back(IoRequest::TcpConnect {
                    id,
                    local: job.base,
                    remote: job.server,
                    tls,
                });
            }
        }
        true
    }

    pub(super) fn start_tcp_gather(&mut self, now: Instant, mut job: GatherJob, local: SocketAddr) {
        job.base = local;
        if let Some(server) = job.turn_tcp {
            self.start_tcp_relay(now, &job, server, local);
            return;
        }
        self.send_gather_request(now, job, local);
    }

    fn send_gather_request(&mut self, now: Instant, job: GatherJob, from: SocketAddr) {
        let id = TransactionId::generate(&mut self.rng);
        let mut data = Vec::with_capacity(28);
        let mut w = MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, id);
        if w.add_fingerprint().is_err() {
            self.gather_done(job.stream);
            return;
        }
        let transmit = Transmit {
            transport: job.transport,
            from,
            to: job.server,
            data,
        };
        if let Err(e) = Requests::of(&mut self.requests, &self.config)
            .gather_txns
            .start(now, transmit, Txn::Gather(job), None, None)
        {
            tracing::warn!(error = %e, "cannot start a STUN query");
            self.gather_done(job.stream);
        }
    }

    /// A STUN server answered (RFC 8445 §5.1.1.1).
    pub(super) fn on_gather_response(&mut self, _now: Instant, msg: &Message<'_>, job: GatherJob) {
        if job.transport == TransportType::Tcp {
            self.io_requests.push_back(IoRequest::TcpClose {
                local: job.base,
                remote: job.server,
            });
        }
        if let Some(alternate) = redirect_target(msg, &job) {
            // RFC 8489 §10: the query is retried once at the alternate server, as a new
            // query in the next pacing slot (a new connection over TCP).
            tracing::debug!(server = %job.server, %alternate, "STUN server redirected the query");
            let mut retry = job;
            retry.server = alternate;
            retry.redirected = true;
            if retry.transport == TransportType::Tcp && !self.tcp_checks.is_so_socket(retry.base) {
                retry.base.set_port(0);
            }
            Requests::of(&mut self.requests, &self.config)
                .gather_queue
                .push_front(retry);
            return;
        }
        let mapped = match (msg.class(), msg.attribute::<XorMappedAddress>()) {
            (MessageClass::Success, Ok(Some(XorMappedAddress(mapped)))) => mapped,
            _ => {
                tracing::debug!(server = %job.server, "STUN server gave no mapped address");
                self.gather_done(job.stream);
                return;
            }
        };
        // A mapped address equal to the base adds nothing (no NAT), unless the host
        // candidate hides it.
        if self.srflx_adds(mapped, job.base) || job.transport == TransportType::Tcp {
            self.add_srflx_transport(
                job.stream,
                job.component,
                job.base,
                mapped,
                job.local_preference,
                job.server,
                job.transport,
            );
        }
        self.gather_done(job.stream);
    }

    /// Adds a UDP server-reflexive candidate learnt from `server` (a STUN or TURN server).
    pub(super) fn add_srflx(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
        mapped: SocketAddr,
        local_preference: u16,
        server: SocketAddr,
    ) {
        self.add_srflx_transport(
            sid,
            component,
            base,
            mapped,
            local_preference,
            server,
            TransportType::Udp,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add_srflx_transport(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
        mapped: SocketAddr,
        local_preference: u16,
        server: SocketAddr,
        transport_type: TransportType,
    ) {
        let foundation = self.foundations.foundation(FoundationKey::new(
            CandidateType::ServerReflexive,
            transport_type,
            base.ip(),
            Some(server.ip()),
        ));
        let transport = match transport_type {
            TransportType::Udp => CandidateTransport::Udp,
            // RFC 6544 §4.2 ranks simultaneous-open first among NAT-assisted TCP
            // candidates. Paired through its base when that is an `so` socket
            // (`gather_so_socket`); from another port (simultaneous open off) it pairs
            // with nothing.
            TransportType::Tcp => CandidateTransport::Tcp(TcpType::So),
        };
        let local_preference = match transport_type {
            TransportType::Udp => local_preference,
            TransportType::Tcp => tcp_local_preference(
                TcpType::So.direction_preference(CandidateType::ServerReflexive),
                local_preference & 0x1FFF,
            )
            .unwrap_or(u16::MAX),
        };
        let candidate = Candidate::builder(
            foundation,
            CandidateType::ServerReflexive,
            transport,
            mapped,
        )
        .component(component)
        .local_preference(local_preference)
        .related_address(base)
        .build();
        match candidate {
            Ok(c) => self.add_local_candidate(sid, c, base, transport_type),
            Err(e) => tracing::debug!(error = %e, "cannot make a server-reflexive candidate"),
        }
    }

    /// One STUN query of stream `sid` ended.
    pub(super) fn gather_done(&mut self, sid: StreamId) {
        let s = &mut self.streams[sid];
        s.pending_gathers = s.pending_gathers.saturating_sub(1);
        if s.pending_gathers == 0 && s.gathering == GatherPhase::Running {
            self.finish_gathering(sid);
        }
    }

    fn finish_gathering(&mut self, sid: StreamId) {
        self.streams[sid].gathering = GatherPhase::Complete;
        // With continual gathering, more candidates may come at any time: no end.
        if !self.config.continual_gathering {
            self.events
                .push_back(AgentEvent::GatheringComplete { stream: sid });
        }
        self.check_failures(sid);
    }
}

/// The alternate server of a 300 (Try Alternate) answer to gathering query `job` (RFC 8489
/// §10), if it is one to follow: the first redirection of the query, to another server of
/// the same address family.
fn redirect_target(msg: &Message<'_>, job: &GatherJob) -> Option<SocketAddr> {
    if msg.class() != MessageClass::Error || job.redirected {
        return None;
    }
    let code = msg.attribute::<ErrorCode<'_>>().ok().flatten()?;
    if code.code != ErrorCode::TRY_ALTERNATE {
        return None;
    }
    let AlternateServer(server) = msg.attribute::<AlternateServer>().ok().flatten()?;
    (server != job.server && server.is_ipv4() == job.server.is_ipv4()).then_some(server)
}
