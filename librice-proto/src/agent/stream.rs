//! Views that borrow the agent to configure one stream or one component.

use std::net::SocketAddr;
use std::time::Instant;

use super::{
    Agent, AgentError, CompState, ComponentId, ComponentState, GatherPhase, PairInfo, RemoteCand,
    RestartOrigin, SelectedPair, StreamId, UsageError, transport_key,
};
use crate::candidate::{Candidate, IceCredentials, IceOption, MAX_COMPONENT, NamedCandidate};
use crate::compact::push_compact;
use crate::{Transmit, TransportType};

/// A view of one stream, borrowed from its [`Agent`].
#[derive(Debug)]
pub struct StreamMut<'a> {
    agent: &'a mut Agent,
    id: StreamId,
}

impl<'a> StreamMut<'a> {
    pub(super) fn new(agent: &'a mut Agent, id: StreamId) -> Self {
        Self { agent, id }
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Adds a component and returns its id: [`ComponentId::RTP`] (1) for the first, then
    /// 2, ... (at most 256). Components must be added before gathering starts: their
    /// candidates are gathered, and signalled, together.
    ///
    /// # Errors
    ///
    /// [`UsageError::GatheringStarted`] once [`Self::gather_candidates`] has been called,
    /// [`UsageError::TooManyComponents`] beyond 256 components (RFC 8445 §5.1.2.1).
    pub fn add_component(&mut self) -> Result<ComponentId, AgentError> {
        let s = &mut self.agent.streams[self.id];
        if s.gathering != GatherPhase::NotStarted {
            return Err(UsageError::GatheringStarted.into());
        }
        if s.components.len() >= usize::from(MAX_COMPONENT) {
            return Err(UsageError::TooManyComponents.into());
        }
        let added = s.components.push(CompState {
            state: ComponentState::Connecting,
            selected: None,
            sockets: Vec::new(),
            first_valid_at: None,
            nominating: None,
            last_sent: None,
            failure: None,
            check_failures: Default::default(),
            dropped_unverified: 0,
            consent_stats: Default::default(),
            live: None,
            renom: Default::default(),
            retired: None,
            lost: None,
            sockets_added: 0,
        });
        Ok(added.expect("fewer than 256 components have an id each"))
    }

    /// The number of components.
    pub fn component_count(&self) -> usize {
        self.agent.streams[self.id].components.len()
    }

    /// Registers a local socket of `component`: its host candidate is made when gathering
    /// starts, and datagrams that arrive on it are demultiplexed to this component. Add the
    /// sockets in order of preference (the first gets the highest local preference of its
    /// address family).
    ///
    /// A socket added after gathering started (a new interface address: continual
    /// gathering) is gathered on at once: its candidates come out as
    /// [`AgentEvent::LocalCandidate`](super::AgentEvent::LocalCandidate) events, to be
    /// trickled to the peer (see the `netchange` module docs of [`Agent`]).
    ///
    /// # Errors
    ///
    /// [`UsageError::DuplicateSocket`] for a socket already registered (by any stream), and
    /// [`UsageError::UnknownComponent`] for a component the stream lacks.
    pub fn add_local_socket(
        &mut self,
        component: ComponentId,
        transport: TransportType,
        address: SocketAddr,
    ) -> Result<(), AgentError> {
        self.add_socket(component, transport, address, false)
    }

    /// Registers a bound TCP socket of `component` that does not listen, for a
    /// simultaneous-open candidate (RFC 6544 §4.1): it makes a `tcptype so` host candidate
    /// at `address` when gathering starts (or at once, as [`Self::add_local_socket`] does
    /// after gathering started), with the §4.2 direction preference of `so`; STUN servers
    /// over TCP are asked from it. Its pairs' checks ask the I/O layer for connections from
    /// `address` ([`IoRequest::IceTcpConnect`](super::IoRequest::IceTcpConnect) with
    /// `simultaneous_open`): bind the socket with `SO_REUSEADDR` (and `SO_REUSEPORT` where
    /// the OS needs it) and keep it open while the agent uses the port. Messages over those
    /// connections go in through [`Agent::handle_incoming`](super::Agent::handle_incoming)
    /// with `to` = `address`, as for any local socket. See the `icetcp` module docs.
    ///
    /// # Errors
    ///
    /// [`UsageError::SimultaneousOpenSocket`] without
    /// [`AgentConfig::tcp_simultaneous_open`](super::AgentConfig::tcp_simultaneous_open),
    /// for a lite agent, or for port 0, and as [`Self::add_local_socket`].
    pub fn add_local_so_socket(
        &mut self,
        component: ComponentId,
        address: SocketAddr,
    ) -> Result<(), AgentError> {
        // A lite agent sends no checks (RFC 8445 §2.5), and an `so` pair is checked only by
        // both sides connecting at once.
        let config = &self.agent.config;
        if !config.tcp_simultaneous_open || config.lite || address.port() == 0 {
            return Err(UsageError::SimultaneousOpenSocket(address).into());
        }
        self.add_socket(component, TransportType::Tcp, address, true)
    }

    fn add_socket(
        &mut self,
        component: ComponentId,
        transport: TransportType,
        address: SocketAddr,
        simultaneous_open: bool,
    ) -> Result<(), AgentError> {
        let id = self.id;
        let key = (transport_key(transport), address);
        if self.agent.sockets.contains_key(&key) {
            return Err(UsageError::DuplicateSocket(address).into());
        }
        let s = &mut self.agent.streams[id];
        let c = s
            .components
            .get_mut(component)
            .ok_or(UsageError::UnknownComponent(component))?;
        push_compact(&mut c.sockets, (transport, address));
        c.sockets_added = c.sockets_added.saturating_add(1);
        let late = s.gathering != GatherPhase::NotStarted;
        s.gone_bases.remove(&address);
        self.agent.sockets.insert(key, (id, component));
        if simultaneous_open {
            self.agent.tcp_checks.add_so_socket(address);
        }
        if late {
            self.agent
                .gather_late_socket(id, component, transport, address);
        }
        Ok(())
    }

    /// Forgets a local socket of `component` whose address went away (or that failed):
    /// its candidates and their pairs go, and if the component's selected pair used it,
    /// the component looks for another pair or asks for an ICE restart
    /// ([`AgentEvent::SelectedPairLost`](super::AgentEvent::SelectedPairLost),
    /// [`AgentEvent::RestartNeeded`](super::AgentEvent::RestartNeeded); see the
    /// `netchange` module docs). Datagrams that still arrive on it are not the agent's.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownSocket`] if no such socket of this component is registered,
    /// [`UsageError::UnknownComponent`] for a component the stream lacks.
    pub fn remove_local_socket(
        &mut self,
        now: Instant,
        component: ComponentId,
        transport: TransportType,
        address: SocketAddr,
    ) -> Result<(), AgentError> {
        let id = self.id;
        if self.agent.streams[id].components.get(component).is_none() {
            return Err(UsageError::UnknownComponent(component).into());
        }
        let key = (transport_key(transport), address);
        if self.agent.sockets.get(&key) != Some(&(id, component)) {
            return Err(UsageError::UnknownSocket(address).into());
        }
        self.agent
            .remove_socket(now, id, component, transport, address);
        Ok(())
    }

    /// Starts gathering: host candidates come out at once as
    /// [`AgentEvent::LocalCandidate`](super::AgentEvent::LocalCandidate) events, and the
    /// configured STUN servers are queried (paced by Ta) for server-reflexive ones;
    /// [`AgentEvent::GatheringComplete`](super::AgentEvent::GatheringComplete) ends it.
    /// Calling it again does nothing.
    pub fn gather_candidates(&mut self, now: Instant) -> Result<(), AgentError> {
        self.agent.last_now = Some(now);
        if self.agent.streams[self.id].gathering == GatherPhase::NotStarted {
            self.agent.start_gathering(self.id);
        }
        Ok(())
    }

    /// The local credentials to signal to the peer.
    pub fn local_credentials(&self) -> &IceCredentials {
        &self.agent.streams[self.id].local_creds
    }

    /// Replaces the generated local credentials, e.g. with ones already signalled.
    pub fn set_local_credentials(&mut self, credentials: IceCredentials) {
        let s = &mut self.agent.streams[self.id];
        s.local_key = crate::stun::Sha1Key::short_term(credentials.pwd());
        s.local_creds = credentials;
    }

    /// The peer's credentials, if set.
    pub fn remote_credentials(&self) -> Option<&IceCredentials> {
        self.agent.streams[self.id].remote_creds.as_ref()
    }

    /// Sets the peer's credentials. Checks start once they are known; candidates may
    /// come before them (RFC 8838).
    ///
    /// Credentials that differ from the ones set before (ufrag or password) mean that the
    /// peer restarted ICE (RFC 8839 §4.4.1.1.1): the stream restarts too, as
    /// [`Self::restart`] does, with these as the peer's new credentials, and
    /// [`AgentEvent::Restarted`](super::AgentEvent::Restarted) with
    /// [`RestartOrigin::Remote`] asks the application to signal its own new credentials
    /// and candidates. The same credentials again change nothing. After a local
    /// [`Self::restart`], the first credentials set are the peer's for the new generation,
    /// not a restart of its own.
    pub fn set_remote_credentials(&mut self, credentials: IceCredentials) {
        let s = &mut self.agent.streams[self.id];
        match &s.remote_creds {
            Some(old) if *old == credentials => {}
            Some(_) => {
                self.agent
                    .restart_stream(self.id, RestartOrigin::Remote, Some(credentials));
            }
            None => {
                s.remote_key = super::remote_key(&self.agent.config, &credentials);
                s.remote_creds = Some(credentials);
            }
        }
    }

    /// Restarts ICE on this stream (RFC 8445 §9): new local credentials, new check lists,
    /// and, if gathering had started, gathering again from the same local sockets (TURN
    /// allocations still in place are reused). The peer's credentials are forgotten until
    /// [`Self::set_remote_credentials`] gives its new ones, and its candidates until it
    /// signals them again.
    ///
    /// [`AgentEvent::Restarted`](super::AgentEvent::Restarted) with
    /// [`RestartOrigin::Local`] comes first; signal the new
    /// [`Self::local_credentials`] and the candidates that follow as at the start. Each
    /// component's selected pair keeps carrying data (and keeps its consent) until the
    /// restart selects a new pair, reported with
    /// [`AgentEvent::SelectedPairChanged`](super::AgentEvent::SelectedPairChanged). A
    /// failed component becomes `Connecting` again.
    pub fn restart(&mut self, now: Instant) {
        self.agent.last_now = Some(now);
        self.agent
            .restart_stream(self.id, RestartOrigin::Local, None);
    }

    /// True while an ICE restart is under way and some component's data still goes on
    /// the pair selected before it.
    pub fn restarting(&self) -> bool {
        !self.agent.streams[self.id].previous.is_empty()
    }

    /// Gives the peer's `a=ice-options` tags (RFC 8839 §5.6), e.g.
    /// [`IceSdp::options`](crate::candidate::IceSdp::options). Only
    /// [`IceOption::Renomination`] matters to the agent: with it, and
    /// [`AgentConfig::renomination`](super::AgentConfig::renomination) on, this stream uses
    /// renomination (see [`Self::renomination`]). Call it before checks start, and again
    /// when the peer's options change; the last call wins.
    pub fn set_remote_ice_options(&mut self, options: &[IceOption]) {
        self.agent.streams[self.id].remote_renomination =
            options.contains(&IceOption::Renomination);
    }

    /// Says whether the peer is an ICE-lite agent (RFC 8445 §2.5): its description carries
    /// `a=ice-lite` ([`IceSdp::is_lite`](crate::candidate::IceSdp::is_lite)). Facing a
    /// lite peer, a full agent takes the controlling role (RFC 8445 §6.1.1; an
    /// [`AgentEvent::RoleChange`](super::AgentEvent::RoleChange) if it was controlled; the
    /// role is the agent's, for all its streams) and nominates (RFC 8445 §8.1, regular
    /// nomination): it is the only side that sends checks, and nothing in it waits for a
    /// check from the peer. Call it before checks start. A lite agent facing a lite peer
    /// stays as it is: two lite agents cannot connect (neither checks).
    pub fn set_remote_lite(&mut self, lite: bool) {
        self.agent.set_remote_lite(self.id, lite);
    }

    /// True if the peer was said to be a lite agent ([`Self::set_remote_lite`]).
    pub fn remote_lite(&self) -> bool {
        self.agent.streams[self.id].remote_lite
    }

    /// True when the stream uses renomination (draft-thatcher-ice-renomination-01): this
    /// agent offers it and the peer announced it.
    pub fn renomination(&self) -> bool {
        self.agent.renomination_active(self.id)
    }

    /// Adds a remote candidate, all at once or trickled (RFC 8838), and pairs it with the
    /// local candidates. A candidate at the address of a peer-reflexive one learnt earlier
    /// takes its place.
    ///
    /// # Errors
    ///
    /// [`AgentError::AfterEndOfCandidates`] once [`Self::end_of_remote_candidates`] has
    /// been called, and [`UsageError::CandidateComponent`] for a candidate of a component
    /// the stream lacks.
    pub fn add_remote_candidate(&mut self, candidate: Candidate) -> Result<(), AgentError> {
        self.may_add_remote(candidate.component())?;
        self.agent.add_remote(self.id, RemoteCand { candidate });
        Ok(())
    }

    /// Whether a remote candidate of `component` may be added now: not after
    /// end-of-candidates (RFC 8838 §13), and only for a component the stream has.
    fn may_add_remote(&self, component: ComponentId) -> Result<(), AgentError> {
        let s = &self.agent.streams[self.id];
        if s.remote_eoc {
            return Err(AgentError::AfterEndOfCandidates);
        }
        if s.components.get(component).is_none() {
            return Err(UsageError::CandidateComponent(component).into());
        }
        Ok(())
    }

    /// Adds a remote candidate whose address is an mDNS `.local` name
    /// (draft-ietf-mmusic-mdns-ice-candidates), all at once or trickled: the agent asks the
    /// I/O layer to resolve the name ([`IoRequest::MdnsResolve`](super::IoRequest::MdnsResolve),
    /// once per name) and pairs the candidate when the answer comes
    /// ([`Agent::handle_mdns_resolved`](super::Agent::handle_mdns_resolved)). Until then it
    /// is not a remote candidate: nothing is paired with it or sent to it. Past the limit of
    /// names waiting ([`AgentConfig::max_pending_mdns_names`](super::AgentConfig::max_pending_mdns_names))
    /// the candidate is dropped with a trace.
    ///
    /// # Errors
    ///
    /// As [`Self::add_remote_candidate`], and [`UsageError::UnsupportedHostName`] for a
    /// name that is not one label then `.local` ([`HostName::is_mdns`](crate::candidate::HostName::is_mdns)).
    pub fn add_remote_named_candidate(
        &mut self,
        now: Instant,
        candidate: NamedCandidate,
    ) -> Result<(), AgentError> {
        self.agent.last_now = Some(now);
        self.may_add_remote(candidate.component())?;
        // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.2.1 steps 1-2: only "<label>.local"
        // names are resolved through mDNS.
        if !candidate.name().is_mdns() {
            return Err(UsageError::UnsupportedHostName(candidate.name().clone()).into());
        }
        self.agent.add_remote_named(now, self.id, candidate);
        Ok(())
    }

    /// Parses an SDP `candidate:` line (with or without `a=`) and adds it.
    ///
    /// # Errors
    ///
    /// [`AgentError::CandidateParse`] for a line that does not parse, else as
    /// [`Self::add_remote_candidate`]. A line whose address is a host name is refused with
    /// [`CandidateParseError::HostnameNotSupported`](crate::candidate::CandidateParseError::HostnameNotSupported):
    /// read it with [`NamedCandidate::parse`] and give it to
    /// [`Self::add_remote_named_candidate`].
    pub fn add_remote_candidate_sdp(&mut self, line: &str) -> Result<(), AgentError> {
        let candidate = Candidate::parse(line)?;
        self.add_remote_candidate(candidate)
    }

    /// The peer has no more candidates (RFC 8838 §13). Once local gathering is complete
    /// too, a component whose pairs have all failed is reported failed.
    pub fn end_of_remote_candidates(&mut self) {
        self.agent.streams[self.id].remote_eoc = true;
        self.agent.check_failures(self.id);
    }

    /// The local candidates gathered so far, peer-reflexive ones included.
    pub fn local_candidates(&self) -> Vec<Candidate> {
        let s = &self.agent.streams[self.id];
        s.local
            .iter()
            .filter(|l| !s.gone_bases.contains(&l.base))
            .map(|l| l.candidate.clone())
            .collect()
    }

    /// The remote candidates, signalled and peer-reflexive.
    pub fn remote_candidates(&self) -> Vec<Candidate> {
        self.agent.streams[self.id]
            .remote
            .iter()
            .map(|r| r.candidate.clone())
            .collect()
    }

    /// Every candidate pair of the stream (removed ones left out), check-list pairs by
    /// priority first, then the valid pairs outside the check list.
    pub fn pairs(&self) -> Vec<PairInfo> {
        let s = &self.agent.streams[self.id];
        let outside = s
            .checklist
            .ids()
            .filter(|&p| !s.checklist[p].in_checklist());
        s.checklist
            .order()
            .iter()
            .copied()
            .chain(outside)
            .filter(|&p| !s.checklist[p].removed())
            .map(|p| {
                let pair = &s.checklist[p];
                PairInfo {
                    component: pair.component,
                    local: s.local[pair.local].candidate.clone(),
                    remote: s.remote[pair.remote].candidate.clone(),
                    priority: pair.priority,
                    state: pair.state(),
                    in_checklist: pair.in_checklist(),
                    valid: pair.valid,
                    nominated: pair.nominated,
                }
            })
            .collect()
    }

    /// True once gathering is over.
    pub fn gathering_complete(&self) -> bool {
        self.agent.streams[self.id].gathering == GatherPhase::Complete
    }

    /// A view of component `id`.
    pub fn component_mut(&mut self, id: ComponentId) -> Option<ComponentMut<'_>> {
        self.agent.streams[self.id].components.get(id)?;
        Some(ComponentMut {
            agent: &mut *self.agent,
            stream: self.id,
            id,
        })
    }
}

/// A view of one component, borrowed from its [`Agent`].
#[derive(Debug)]
pub struct ComponentMut<'a> {
    agent: &'a mut Agent,
    stream: StreamId,
    id: ComponentId,
}

impl ComponentMut<'_> {
    /// The component's id.
    pub fn id(&self) -> ComponentId {
        self.id
    }

    /// Its state.
    pub fn state(&self) -> ComponentState {
        self.state_ref().state
    }

    /// The selected pair, once connected.
    pub fn selected_pair(&self) -> Option<SelectedPair> {
        self.agent.selected_pair(self.stream, self.id)
    }

    /// The datagram carrying `data` to the peer on the selected pair. Fails with
    /// [`AgentError::NotConnected`] before a pair is selected, and with
    /// [`AgentError::Failed`] once the component has failed (consent lost included: from
    /// the instant consent expires, RFC 7675 §5.1).
    ///
    /// Over a relayed pair the datagram is wrapped for the TURN server (ChannelData once
    /// the channel is bound, a Send indication before) and goes from the local socket the
    /// TURN client uses.
    pub fn send(&mut self, now: Instant, data: &[u8]) -> Result<Transmit<Vec<u8>>, AgentError> {
        let target = self.send_target_any(now)?;
        self.agent
            .record_sent(now, self.stream, self.id, 1, data.len() as u64);
        let t = Transmit {
            transport: target.transport,
            from: target.from,
            to: target.to,
            data: data.to_vec(),
        };
        self.agent.route_checked(t).map_err(AgentError::Relay)
    }

    /// Where data for the peer goes (transport, local socket, remote address), for callers
    /// that send their own buffers: [`Self::send`] without the copy. Counts as a send for
    /// the keepalive timer; count the data itself in the statistics with
    /// [`Agent::record_sent`]. A relayed pair has no such socket target (its data must be
    /// wrapped): [`AgentError::Relay`]; use [`Self::send`].
    pub fn send_target(&mut self, now: Instant) -> Result<Transmit<()>, AgentError> {
        let target = self.send_target_any(now)?;
        if self.agent.is_relayed(target.from) {
            return Err(AgentError::Relay(crate::turn::TurnError::NotAllocated));
        }
        Ok(target)
    }

    fn send_target_any(&mut self, now: Instant) -> Result<Transmit<()>, AgentError> {
        let (stream, id) = (self.stream, self.id);
        // RFC 7675 §5.1: once consent has expired, no more application data is sent, even
        // before the timer that notices it has run.
        self.agent.expire_consent(now, stream, id);
        if let Some(reason) = self.agent.failure_reason(stream, id) {
            return Err(AgentError::Failed(reason));
        }
        let s = &mut self.agent.streams[stream];
        let c = s
            .components
            .get_mut(id)
            .ok_or(UsageError::UnknownComponent(id))?;
        let Some(pid) = c.selected else {
            // During an ICE restart, the old selected pair carries the data.
            return self
                .agent
                .old_path_target(now, stream, id)
                .ok_or(AgentError::NotConnected);
        };
        c.last_sent = Some(now);
        let pair = &s.checklist[pid];
        let local = &s.local[pair.local];
        Ok(Transmit {
            transport: local.transport,
            from: local.base,
            to: s.remote[pair.remote].candidate.address(),
            data: (),
        })
    }

    fn state_ref(&self) -> &CompState {
        &self.agent.streams[self.stream].components[self.id]
    }
}
