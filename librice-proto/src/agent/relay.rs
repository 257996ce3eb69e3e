//! Relayed candidates: one TURN client per (UDP socket, TURN server), relay candidates from
//! its allocation, permissions installed for every remote candidate before the first check
//! goes out through the relay, checks, answers and data wrapped for the relay, and the
//! allocations released on close (RFC 8445 §5.1.1.2, RFC 8656). A 300 Try Alternate moves
//! an allocation to the alternate server, once (RFC 8656 §7.1): over UDP the client asks
//! there from the same socket; over TCP or TLS a new connection goes to the alternate
//! server, and the old one is closed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use rand_core::Rng;

use super::gather::GatherJob;
use super::pairs::PairState;
use super::requests::Requests;
use super::{Agent, ComponentId, IoRequest, LocalCand, PairId, StreamId};
use crate::candidate::{Candidate, CandidateTransport, CandidateType, FoundationKey};
use crate::turn::{AllocationFamily, TurnClient, TurnConfig, TurnEvent, TurnRecv, TurnState};
use crate::{Transmit, TransportType};

/// One TURN allocation of the agent.
#[derive(Debug)]
pub(super) struct Relay {
    pub stream: StreamId,
    pub component: ComponentId,
    pub client: TurnClient,
    /// The local socket the client uses.
    pub base: SocketAddr,
    pub local_preference: u16,
    /// The configured TURN server this relay was made for (its credentials), which a
    /// redirection does not change.
    pub configured: SocketAddr,
    /// True once this allocation counted towards gathering completion.
    pub gathered: bool,
    /// How many allocations this one replaces after losses (bounded).
    pub generation: u32,
}

/// The agent's TURN allocations, boxed on the first one: most agents (a server's) never
/// have any, and keep one pointer for them.
#[derive(Debug, Default)]
pub(super) struct RelaySet {
    set: Option<Box<Relays>>,
}

impl RelaySet {
    fn set_mut(&mut self) -> &mut Relays {
        self.set.get_or_insert_with(Box::default)
    }

    /// See [`Relays::add`].
    fn add(&mut self, relay: Relay, server: SocketAddr) -> usize {
        self.set_mut().add(relay, server)
    }

    /// See [`Relays::redirect`].
    fn redirect(&mut self, idx: usize, server: SocketAddr) {
        self.set_mut().redirect(idx, server);
    }

    /// See [`Relays::replace`].
    fn replace(&mut self, idx: usize, relay: Relay, server: SocketAddr) -> usize {
        self.set_mut().replace(idx, relay, server)
    }

    /// See [`Relays::forget_from`].
    fn forget_from(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        ip: std::net::IpAddr,
    ) -> Vec<(usize, SocketAddr)> {
        match self.set.as_mut() {
            Some(set) => set.forget_from(sid, component, ip),
            None => Vec::new(),
        }
    }

    /// The relay whose client talks to `server` from local socket `local`.
    fn by_server(&self, local: SocketAddr, server: SocketAddr) -> Option<usize> {
        self.set.as_ref()?.by_server(local, server)
    }

    /// The server relay `idx`'s packets come from (its entry in the look-up).
    fn server_of(&self, idx: usize) -> Option<SocketAddr> {
        self.set.as_ref()?.server_of(idx)
    }

    /// The relay that allocated `relayed`.
    fn by_relayed(&self, relayed: SocketAddr) -> Option<usize> {
        self.set.as_ref()?.by_relayed(relayed)
    }

    /// Relay `idx`'s client allocated `relayed`.
    fn note_relayed(&mut self, relayed: SocketAddr, idx: usize) {
        self.set_mut().by_relayed.insert(relayed, idx);
    }

    /// Forgets relayed address `relayed`.
    fn forget_relayed(&mut self, relayed: SocketAddr) {
        if let Some(set) = self.set.as_mut() {
            set.by_relayed.remove(&relayed);
        }
    }

    /// The relayed addresses of relay `idx`.
    fn relayed_of(&self, idx: usize) -> Vec<SocketAddr> {
        self.set
            .iter()
            .flat_map(|set| set.by_relayed.iter())
            .filter(|&(_, &i)| i == idx)
            .map(|(&r, _)| r)
            .collect()
    }

    fn iter(&self) -> impl Iterator<Item = &Relay> {
        self.set.iter().flat_map(|set| set.relays.iter())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Relay> {
        self.set.iter_mut().flat_map(|set| set.relays.iter_mut())
    }

    fn len(&self) -> usize {
        self.set.as_ref().map_or(0, |set| set.relays.len())
    }
}

impl std::ops::Index<usize> for RelaySet {
    type Output = Relay;

    fn index(&self, idx: usize) -> &Relay {
        &self.set.as_ref().expect("an index names a relay").relays[idx]
    }
}

impl std::ops::IndexMut<usize> for RelaySet {
    fn index_mut(&mut self, idx: usize) -> &mut Relay {
        &mut self.set_mut().relays[idx]
    }
}

/// The TURN allocations and the two look-ups packets need.
///
/// Invariant: every index in the look-ups is an index into `relays`; `by_relayed` holds
/// the relayed addresses the relays' clients have allocated (and not lost).
#[derive(Debug, Default)]
struct Relays {
    relays: Vec<Relay>,
    /// (local socket, TURN server) -> relay: packets from TURN servers.
    by_server: BTreeMap<(SocketAddr, SocketAddr), usize>,
    /// Relayed address -> relay: packets sent from relayed candidates.
    by_relayed: BTreeMap<SocketAddr, usize>,
}

impl Relays {
    /// Adds a relay whose client talks to `server` from `relay.base`; returns its index.
    /// It replaces any relay of the same local socket and server in the look-up.
    fn add(&mut self, relay: Relay, server: SocketAddr) -> usize {
        let idx = self.relays.len();
        self.by_server.insert((relay.base, server), idx);
        self.relays.push(relay);
        idx
    }

    /// Relay `idx`'s client now talks to `server` (a 300 Try Alternate redirected it): packets
    /// from `server` to its socket are its own from now on, those from the old server no
    /// longer.
    fn redirect(&mut self, idx: usize, server: SocketAddr) {
        self.by_server.retain(|_, i| *i != idx);
        self.by_server.insert((self.relays[idx].base, server), idx);
    }

    /// Puts `relay` in the place of relay `idx` (whose relayed addresses are forgotten);
    /// returns `idx`.
    fn replace(&mut self, idx: usize, relay: Relay, server: SocketAddr) -> usize {
        self.by_relayed.retain(|_, &mut i| i != idx);
        self.by_server.retain(|_, &mut i| i != idx);
        self.by_server.insert((relay.base, server), idx);
        self.relays[idx] = relay;
        idx
    }

    /// Forgets the relays of `component` of stream `sid` made from local address `ip`:
    /// they leave both look-ups. Returns their indices and the servers they talked to.
    fn forget_from(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        ip: std::net::IpAddr,
    ) -> Vec<(usize, SocketAddr)> {
        let relays = &self.relays;
        let mine = |i: usize| {
            relays[i].stream == sid && relays[i].component == component && relays[i].base.ip() == ip
        };
        let mut forgotten = Vec::new();
        self.by_server.retain(|&(_, server), &mut i| {
            if mine(i) {
                forgotten.push((i, server));
            }
            !mine(i)
        });
        self.by_relayed.retain(|_, &mut i| !mine(i));
        forgotten
    }

    /// The relay whose client talks to `server` from local socket `local`.
    fn by_server(&self, local: SocketAddr, server: SocketAddr) -> Option<usize> {
        self.by_server.get(&(local, server)).copied()
    }

    /// The server relay `idx`'s packets come from (its entry in the look-up).
    fn server_of(&self, idx: usize) -> Option<SocketAddr> {
        self.by_server
            .iter()
            .find(|&(_, &i)| i == idx)
            .map(|(&(_, server), _)| server)
    }

    /// The relay that allocated `relayed`.
    fn by_relayed(&self, relayed: SocketAddr) -> Option<usize> {
        self.by_relayed.get(&relayed).copied()
    }
}

/// How many times a lost allocation is replaced before the relay is given up.
const MAX_REALLOCATIONS: u32 = 3;

impl Agent {
    /// Makes a TURN client for each UDP TURN server of `base`'s family, and queues its
    /// allocation as a gathering job.
    pub(super) fn plan_relays(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
        local_preference: u16,
        jobs: &mut Vec<GatherJob>,
    ) {
        let servers = self.config.turn_servers.clone();
        for (server_idx, server) in servers.into_iter().enumerate() {
            if server.address.is_ipv4() != base.is_ipv4() {
                continue;
            }
            if server.transport == TransportType::Tcp {
                // RFC 8656 §3.1: TURN over TCP (or TLS, which the caller adds): one
                // connection from the base's IP, opened by the caller (TcpConnect).
                let from = SocketAddr::new(base.ip(), 0);
                // After an ICE restart, an allocation over TCP already made (or under way)
                // is reused rather than made again on a second connection.
                let earlier = self.tcp_relay_of(sid, component, server.address, base);
                if earlier.is_some_and(|idx| self.keep_earlier_relay(idx)) {
                    continue;
                }
                let connecting = self
                    .requests
                    .iter()
                    .flat_map(|r| r.gather_queue.iter().chain(r.tcp_connects.values()))
                    .any(|j| {
                        j.stream == sid
                            && j.component == component
                            && j.turn_tcp == Some(server_idx)
                            && j.base.ip() == base.ip()
                    });
                if !connecting
                    && !jobs.iter().any(|j| {
                        j.turn_tcp == Some(server_idx) && j.base == from && j.component == component
                    })
                {
                    jobs.push(GatherJob {
                        stream: sid,
                        component,
                        base: from,
                        server: server.address,
                        transport: TransportType::Tcp,
                        local_preference,
                        relay: None,
                        turn_tcp: Some(server_idx),
                        redirected: false,
                    });
                }
                continue;
            }
            // After an ICE restart, an allocation of this socket and server is reused, not
            // made again on the same 5-tuple (which the server would refuse with 437).
            let earlier = self
                .relays
                .by_server(base, server.address)
                .filter(|&i| self.relays[i].stream == sid && self.relays[i].component == component);
            if earlier.is_some_and(|idx| self.keep_earlier_relay(idx)) {
                continue;
            }
            let config = self.relay_config(&server, TransportType::Udp, base);
            let seed = self.rng.next_u64();
            let client = match TurnClient::new(config, seed) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot use TURN server");
                    continue;
                }
            };
            let relay = Relay {
                stream: sid,
                component,
                client,
                base,
                local_preference,
                configured: server.address,
                gathered: false,
                generation: 0,
            };
            let idx = match earlier {
                // A lost or closed one is replaced in its place, so that restarts do not
                // pile up relays.
                Some(idx) => self.relays.replace(idx, relay, server.address),
                None => self.relays.add(relay, server.address),
            };
            jobs.push(GatherJob {
                stream: sid,
                component,
                base,
                server: server.address,
                transport: TransportType::Udp,
                local_preference,
                relay: Some(idx),
                turn_tcp: None,
                redirected: false,
            });
        }
    }

    /// Wraps a datagram sent from a relayed address for its TURN server; other datagrams go
    /// out as they are.
    pub(super) fn route_checked(
        &mut self,
        t: Transmit<Vec<u8>>,
    ) -> Result<Transmit<Vec<u8>>, crate::turn::TurnError> {
        match self.relays.by_relayed(t.from) {
            Some(idx) => self.relays[idx].client.send(t.to, &t.data),
            None => Ok(t),
        }
    }

    /// [`Self::route_checked`], with a failure traced and the datagram dropped.
    pub(super) fn route(&mut self, t: Transmit<Vec<u8>>) -> Option<Transmit<Vec<u8>>> {
        let to = t.to;
        self.route_checked(t)
            .map_err(|e| tracing::debug!(error = %e, %to, "relay cannot carry a datagram: dropped"))
            .ok()
    }

    /// Queues a datagram, through its relay if it is sent from a relayed address.
    pub(super) fn send_out(&mut self, t: Transmit<Vec<u8>>) {
        if let Some(t) = self.route(t) {
            self.out.push_back(t);
        }
    }

    /// A packet from a TURN server on one of the agent's sockets: `None` when it comes from
    /// no TURN server; otherwise consumed by the client (responses: `Some(None)`) or
    /// relayed data, returned as `Some(Some((relay, peer, payload)))`.
    #[allow(clippy::type_complexity)]
    pub(super) fn relay_incoming<'a>(
        &mut self,
        now: Instant,
        transmit: &Transmit<&'a [u8]>,
    ) -> Option<Option<(usize, SocketAddr, &'a [u8])>> {
        let idx = self.relays.by_server(transmit.to, transmit.from)?;
        let recv = self.relays[idx]
            .client
            .handle_incoming(now, transmit.clone());
        self.process_turn_events(now);
        Some(match recv {
            TurnRecv::Data { peer, data } => Some((idx, peer, data)),
            TurnRecv::Handled | TurnRecv::Ignored => None,
        })
    }

    /// The relayed address of relay `idx` that carries traffic with `peer`.
    pub(super) fn relayed_for(&self, idx: usize, peer: SocketAddr) -> Option<SocketAddr> {
        self.relays[idx]
            .client
            .relayed()
            .iter()
            .copied()
            .find(|r| r.is_ipv4() == peer.is_ipv4())
    }

    pub(super) fn poll_relay_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.relays
            .iter_mut()
            .find_map(|r| r.client.poll_transmit(now))
    }

    pub(super) fn relay_timeout(&self) -> Option<Instant> {
        self.relays
            .iter()
            .filter_map(|r| r.client.poll_timeout())
            .min()
    }

    pub(super) fn handle_relay_timeouts(&mut self, now: Instant) {
        for r in self.relays.iter_mut() {
            if r.client.poll_timeout().is_some_and(|t| t <= now) {
                r.client.handle_timeout(now);
            }
        }
        self.process_turn_events(now);
    }

    /// Asks relay `idx` for a permission for the remote candidate of pair `pid`; the pair
    /// waits (blocked) until it is installed.
    pub(super) fn need_permission(&mut self, sid: StreamId, pid: PairId) {
        let s = &self.streams[sid];
        let pair = &s.checklist[pid];
        let base = s.local[pair.local].base;
        let Some(idx) = self.relays.by_relayed(base) else {
            return;
        };
        let peer = s.remote[pair.remote].candidate.address();
        let client = &mut self.relays[idx].client;
        if client.has_permission(peer.ip()) {
            return;
        }
        let now = self.last_now;
        self.streams[sid].checklist.set_blocked(pid, true);
        if let Some(now) = now {
            self.relays[idx].client.create_permission(now, peer.ip());
        }
    }

    /// Handles what the TURN clients report.
    pub(super) fn process_turn_events(&mut self, now: Instant) {
        for idx in 0..self.relays.len() {
            while let Some(event) = self.relays[idx].client.poll_event() {
                self.on_turn_event(now, idx, event);
            }
        }
    }

    fn on_turn_event(&mut self, now: Instant, idx: usize, event: TurnEvent) {
        let (sid, component) = (self.relays[idx].stream, self.relays[idx].component);
        match event {
            TurnEvent::Allocated {
                relayed, mapped, ..
            } => {
                for r in relayed {
                    self.relays.note_relayed(r, idx);
                    self.add_relay_candidate(idx, r, mapped);
                }
                // The allocation also tells the server-reflexive address.
                let base = self.relays[idx].base;
                if self.srflx_adds(mapped, base) && !self.config.relay_only {
                    self.add_srflx(
                        sid,
                        component,
                        base,
                        mapped,
                        self.relays[idx].local_preference,
                        self.relays[idx].client.server(),
                    );
                }
                self.relay_gathered(idx);
            }
            TurnEvent::AllocationFailed(error) => {
                tracing::info!(%error, server = %self.relays[idx].client.server(), "TURN allocation failed");
                self.relay_gathered(idx);
            }
            TurnEvent::Redirected { server } => {
                // RFC 8656 §7.1 / RFC 8489 §10: the client follows one 300 Try Alternate; its
                // answers now come from the alternate server.
                if self.relays[idx].client.transport() == TransportType::Tcp {
                    self.redirect_tcp_relay(now, idx, server);
                } else {
                    tracing::debug!(%server, "TURN server redirected the allocation");
                    self.relays.redirect(idx, server);
                }
            }
            TurnEvent::AllocationLost(error) => {
                tracing::info!(%error, "TURN allocation lost");
                self.fail_relay_pairs(idx, None);
                // An ICE restart's old pair through this relay cannot carry data any more.
                let lost = self.relays.relayed_of(idx);
                self.drop_old_path_from(sid, component, &lost);
                match self.reallocate(now, idx) {
                    // A gathering round waiting for this relay waits for its replacement.
                    Some(new) if !self.relays[idx].gathered => {
                        self.relays[idx].gathered = true;
                        self.relays[new].gathered = false;
                    }
                    Some(_) => {}
                    None => self.relay_gathered(idx),
                }
            }
            TurnEvent::Confirmed if !self.relays[idx].gathered => {
                self.announce_allocation(idx);
                self.relay_gathered(idx);
            }
            TurnEvent::PermissionCreated { peer } => {
                let s = &mut self.streams[sid];
                let unblock: Vec<PairId> = s
                    .checklist
                    .ids()
                    .filter(|&p| {
                        let pair = &s.checklist[p];
                        pair.blocked()
                            && self.relays.by_relayed(s.local[pair.local].base) == Some(idx)
                            && s.remote[pair.remote].candidate.address().ip() == peer
                    })
                    .collect();
                for p in unblock {
                    self.streams[sid].checklist.set_blocked(p, false);
                }
            }
            TurnEvent::PermissionFailed { peer, error } => {
                tracing::debug!(%peer, %error, "TURN permission failed");
                self.fail_relay_pairs(idx, Some(peer));
            }
            _ => {}
        }
        let _ = now;
    }

    /// The TCP connection to TURN server `server` (an index in the configuration) is open
    /// from `local`: make the relay and allocate.
    pub(super) fn start_tcp_relay(
        &mut self,
        now: Instant,
        job: &GatherJob,
        server: usize,
        local: SocketAddr,
    ) {
        let Some(spec) = self.config.turn_servers.get(server).cloned() else {
            self.gather_done(job.stream);
            return;
        };
        let mut config = self.relay_config(&spec, TransportType::Tcp, local);
        // After a redirection, the alternate server (the configured one's credentials).
        config.server = job.server;
        let seed = self.rng.next_u64();
        let mut client = match TurnClient::new(config, seed) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot use TURN server");
                self.gather_done(job.stream);
                return;
            }
        };
        client.allocate(now);
        let relay = Relay {
            stream: job.stream,
            component: job.component,
            client,
            base: local,
            local_preference: job.local_preference,
            configured: spec.address,
            gathered: false,
            generation: 0,
        };
        // A lost or closed relay of the same stream, component and server (an ICE restart
        // allocating again) is replaced in its place, so that restarts do not pile up relays.
        let lost = self
            .tcp_relay_of(job.stream, job.component, spec.address, local)
            .filter(|&i| {
                matches!(
                    self.relays[i].client.state(),
                    TurnState::Failed(_) | TurnState::Closing | TurnState::Closed
                )
            });
        match lost {
            Some(idx) => {
                self.relays.replace(idx, relay, job.server);
            }
            None => {
                self.relays.add(relay, job.server);
            }
        }
    }

    /// A TURN server reached over TCP or TLS redirected relay `idx` to `server` (300 Try
    /// Alternate, RFC 8656 §7.1): the allocation cannot move over the old connection, so it
    /// is closed and a new connection to the alternate server allocates there, in the same
    /// gathering slot. Followed once: a relay already redirected (talking to a server other
    /// than the configured one) is given up instead (RFC 8489 §10).
    fn redirect_tcp_relay(&mut self, now: Instant, idx: usize, server: SocketAddr) {
        // The server the connection goes to: the one this relay was made for.
        let r = &self.relays[idx];
        let old_server = self.relays.server_of(idx).unwrap_or(r.configured);
        let (local, sid, component) = (r.base, r.stream, r.component);
        self.relays[idx].client.close(now);
        self.io_requests.push_back(IoRequest::TcpClose {
            local,
            remote: old_server,
        });
        let configured = self.relays[idx].configured;
        let server_idx = self
            .config
            .turn_servers
            .iter()
            .position(|t| t.address == configured && t.transport == TransportType::Tcp);
        let (Some(server_idx), false) = (server_idx, old_server != configured) else {
            tracing::info!(%server, "TURN server over TCP redirected again: relay given up");
            self.relay_gathered(idx);
            return;
        };
        tracing::info!(%server, "TURN server over TCP redirected: connecting to the alternate");
        // The new connection takes this relay's place in the gathering count.
        self.relays[idx].gathered = true;
        Requests::of(&mut self.requests, &self.config)
            .gather_queue
            .push_front(GatherJob {
                stream: sid,
                component,
                base: SocketAddr::new(local.ip(), 0),
                server,
                transport: TransportType::Tcp,
                local_preference: self.relays[idx].local_preference,
                relay: None,
                turn_tcp: Some(server_idx),
                redirected: true,
            });
    }

    /// The latest relay over TCP of stream `sid`'s `component` to `server` from `base`'s IP.
    fn tcp_relay_of(
        &self,
        sid: StreamId,
        component: ComponentId,
        server: SocketAddr,
        base: SocketAddr,
    ) -> Option<usize> {
        (0..self.relays.len()).rev().find(|&i| {
            let r = &self.relays[i];
            r.stream == sid
                && r.component == component
                && r.client.transport() == TransportType::Tcp
                && r.configured == server
                && r.base.ip() == base.ip()
        })
    }

    /// After an ICE restart, relay `idx` of the same socket (or connection) and server as a
    /// relay about to be planned: true if it stays, so that no second allocation is made:
    /// an allocation in place is reused ([`Self::reuse_relay`]); one queued or under way
    /// is already counted in the gathering. False if it failed (a new one is made).
    fn keep_earlier_relay(&mut self, idx: usize) -> bool {
        match self.relays[idx].client.state() {
            TurnState::Allocated => {
                self.reuse_relay(idx);
                true
            }
            TurnState::Idle | TurnState::Allocating => true,
            _ => false,
        }
    }

    /// The client configuration for TURN server `spec` from the local address `local`.
    fn relay_config(
        &self,
        spec: &super::TurnServer,
        transport: TransportType,
        local: SocketAddr,
    ) -> TurnConfig {
        let mut config = TurnConfig::new(
            spec.address,
            transport,
            local,
            &spec.username,
            &spec.password,
        );
        config.retransmit = self.config.gather_retransmit;
        config.permission_lifetime = spec.permission_lifetime;
        config.channel_lifetime = spec.channel_lifetime;
        // A relay of the local address's family: IPv6 asks for an IPv6 relay (RFC 6156).
        if local.is_ipv6() {
            config.family = AllocationFamily::V6;
        }
        config
    }

    /// Replaces a lost allocation with a new one on the same server from the same socket
    /// (RFC 8656 §7.3: after a 437 the client may allocate again); its relayed candidate is
    /// announced like a trickled one.
    /// Allocates again for lost relay `idx`; returns the new relay's index.
    fn reallocate(&mut self, now: Instant, idx: usize) -> Option<usize> {
        let old = &self.relays[idx];
        if old.generation >= MAX_REALLOCATIONS {
            tracing::info!("TURN allocation lost too often: relay given up");
            return None;
        }
        let (sid, component, base, local_preference, generation) = (
            old.stream,
            old.component,
            old.base,
            old.local_preference,
            old.generation + 1,
        );
        let configured = old.configured;
        let spec = self
            .config
            .turn_servers
            .iter()
            .find(|t| t.address == configured)
            .cloned()?;
        let transport = old.client.transport();
        for r in old.client.relayed().to_vec() {
            self.relays.forget_relayed(r);
        }
        let config = self.relay_config(&spec, transport, base);
        let seed = self.rng.next_u64();
        let Ok(mut client) = TurnClient::new(config, seed) else {
            return None;
        };
        client.allocate(now);
        let relay = Relay {
            stream: sid,
            component,
            client,
            base,
            local_preference,
            configured,
            gathered: true,
            generation,
        };
        // The new client starts at the configured server again (and follows its
        // redirection again, if any).
        Some(self.relays.add(relay, configured))
    }

    /// Reuses relay `idx`'s allocation for a new round of gathering (after an ICE
    /// restart): it is refreshed at once, and its candidates are announced again when the
    /// server confirms it ([`TurnEvent::Confirmed`]); a server that forgot it answers 437
    /// ([`TurnEvent::AllocationLost`]) and it is allocated again. Either way gathering
    /// waits for the answer, so that the candidate comes before the end of candidates.
    fn reuse_relay(&mut self, idx: usize) {
        if !self.relays[idx].gathered {
            // A confirmation is already under way, and counted.
            return;
        }
        let Some(now) = self.last_now else {
            self.announce_allocation(idx);
            return;
        };
        self.relays[idx].gathered = false;
        self.streams[self.relays[idx].stream].pending_gathers += 1;
        self.relays[idx].client.refresh_now(now);
    }

    /// Announces the candidates of relay `idx`'s allocation: the relayed address, and the
    /// server-reflexive one it reported.
    fn announce_allocation(&mut self, idx: usize) {
        let (sid, component, base) = (
            self.relays[idx].stream,
            self.relays[idx].component,
            self.relays[idx].base,
        );
        let Some(mapped) = self.relays[idx].client.mapped() else {
            return;
        };
        for r in self.relays[idx].client.relayed().to_vec() {
            self.add_relay_candidate(idx, r, mapped);
        }
        if self.srflx_adds(mapped, base) && !self.config.relay_only {
            let (preference, server) = (
                self.relays[idx].local_preference,
                self.relays[idx].client.server(),
            );
            self.add_srflx(sid, component, base, mapped, preference, server);
        }
    }

    fn relay_gathered(&mut self, idx: usize) {
        if !self.relays[idx].gathered {
            self.relays[idx].gathered = true;
            self.gather_done(self.relays[idx].stream);
        }
    }

    /// Fails the pairs that go through relay `idx` (to `peer` only, if given).
    fn fail_relay_pairs(&mut self, idx: usize, peer: Option<std::net::IpAddr>) {
        let sid = self.relays[idx].stream;
        let s = &self.streams[sid];
        let doomed: Vec<PairId> = s
            .checklist
            .ids()
            .filter(|&p| {
                let pair = &s.checklist[p];
                self.relays.by_relayed(s.local[pair.local].base) == Some(idx)
                    && peer.is_none_or(|ip| s.remote[pair.remote].candidate.address().ip() == ip)
                    && !pair.removed()
            })
            .collect();
        for p in doomed {
            let s = &mut self.streams[sid];
            s.checklist.set_blocked(p, false);
            if s.checklist[p].state() != PairState::Succeeded {
                s.checklist.set_state(p, PairState::Failed);
            }
        }
        self.check_failures(sid);
    }

    fn add_relay_candidate(&mut self, idx: usize, relayed: SocketAddr, mapped: SocketAddr) {
        let r = &self.relays[idx];
        let (sid, component, local_preference) = (r.stream, r.component, r.local_preference);
        let server = r.client.server();
        // RFC 8445 §5.1.1.3: relayed candidates share a foundation by base and server.
        let foundation = self.foundations.foundation(FoundationKey::new(
            CandidateType::Relayed,
            TransportType::Udp,
            relayed.ip(),
            Some(server.ip()),
        ));
        let candidate = Candidate::builder(
            foundation,
            CandidateType::Relayed,
            CandidateTransport::Udp,
            relayed,
        )
        .component(component)
        .local_preference(local_preference)
        .related_address(mapped)
        .build();
        match candidate {
            Ok(c) => self.add_local_candidate(sid, c, relayed, TransportType::Udp),
            Err(e) => tracing::warn!(error = %e, "cannot make a relayed candidate"),
        }
    }

    /// The local address `base` of `component` went away: its TURN allocations (over UDP
    /// from that socket, over TCP or TLS from its IP) are released (one try, RFC 8656
    /// §7.2) and forgotten, their connections closed. Returns their relayed addresses.
    pub(super) fn forget_relays_of(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        base: SocketAddr,
    ) -> Vec<SocketAddr> {
        let mut relayed = Vec::new();
        for (idx, server) in self.relays.forget_from(sid, component, base.ip()) {
            let r = &mut self.relays[idx];
            relayed.extend(r.client.relayed().iter().copied());
            r.client.close(now);
            if r.base.port() != base.port() {
                self.io_requests.push_back(IoRequest::TcpClose {
                    local: r.base,
                    remote: server,
                });
            }
        }
        relayed
    }

    /// Releases every allocation (Refresh with LIFETIME 0, RFC 8656 §7.2).
    pub(super) fn close_relays(&mut self, now: Instant) {
        for r in self.relays.iter_mut() {
            r.client.close(now);
        }
    }

    /// True if `local` (a candidate's base) is a relayed address.
    pub(super) fn is_relayed(&self, local: SocketAddr) -> bool {
        self.relays.by_relayed(local).is_some()
    }

    /// Binds a channel for the selected relay pair's peer, so that its data goes in
    /// ChannelData messages rather than Send indications.
    pub(super) fn bind_for_selected(&mut self, now: Instant, local: &LocalCand, peer: SocketAddr) {
        if let Some(idx) = self.relays.by_relayed(local.base)
            && let Err(e) = self.relays[idx].client.bind_channel(now, peer)
        {
            tracing::debug!(error = %e, "no channel for the selected relay pair");
        }
    }
}
