//! mDNS host names (draft-ietf-mmusic-mdns-ice-candidates), sans-IO: resolving the peer's
//! `.local` candidates and hiding the local host addresses behind `<uuid>.local` names.
//!
//! The agent does no mDNS itself: it asks the I/O layer with [`IoRequest::MdnsResolve`],
//! [`IoRequest::MdnsPublish`] and [`IoRequest::MdnsUnpublish`], and takes the answers back
//! with [`Agent::handle_mdns_resolved`], [`Agent::handle_mdns_resolve_failed`],
//! [`Agent::handle_mdns_published`] and [`Agent::handle_mdns_publish_failed`]. One
//! [`crate::mdns::Mdns`] per process serves every agent.
//!
//! Remote names: a `.local` candidate given to
//! [`StreamMut::add_remote_named_candidate`](super::StreamMut::add_remote_named_candidate)
//! waits for its name, which is asked for once however many candidates carry it. Once
//! resolved to exactly one address it is paired as the host candidate it is (a
//! peer-reflexive candidate learnt at that address takes its type and priority, keeping
//! its pairs, RFC 8445 §7.3.1.3), but never with a local relayed candidate
//! (draft §3.3.2). A name not resolved within [`AgentConfig::mdns_timeout`] is dropped
//! with a trace; the other candidates pair and connect meanwhile. At most
//! [`AgentConfig::max_pending_mdns_names`] names wait at once; more are dropped with a
//! trace. An answer for a name the agent is not waiting for changes nothing
//! ([`UsageError::UnknownMdnsName`]).
//!
//! Local names ([`AgentConfig::hide_host_addresses`]): each local IP address of a host
//! candidate gets one fresh random name from the agent's RNG (draft §3.1.1 steps 2-5),
//! which the agent asks to publish; its host candidates are announced at once as
//! [`AgentEvent::LocalNamedCandidate`] (draft §3.1.2.1: "as soon as its mDNS name is
//! generated"), and server-reflexive ones with the unspecified related address.
//! [`AgentEvent::GatheringComplete`] waits until every name is claimed
//! ([`Agent::handle_mdns_published`]), or for [`AgentConfig::mdns_timeout`] at most, so
//! that a name that conflicts while probing (another host holds it, RFC 6762 §9) is
//! replaced, and the host candidates announced again under the new one, before
//! end-of-candidates. At most [`MAX_PUBLISH_ATTEMPTS`] names are tried per address; after
//! that the last name stays announced, unpublished (draft §3.1.1: the candidates are
//! provided "even if ... mDNS registration fails"). A conflict after end-of-candidates
//! gets a new name but no new announcement (RFC 8838 §13). [`Agent::close`] unpublishes
//! every name.
//!
//! The draft cited is draft-ietf-rtcweb-mdns-ice-candidates-04, continued as
//! draft-ietf-mmusic-mdns-ice-candidates.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use super::{
    Agent, AgentError, AgentEvent, ComponentId, GatherPhase, IoRequest, RemoteCand, StreamId,
    UsageError,
};
use crate::candidate::{Candidate, CandidateType, DISCARD_PORT, HostName, NamedCandidate};

/// How many names the agent tries for one local address before it gives up hiding it
/// (the first and two replacements after conflicts).
pub const MAX_PUBLISH_ATTEMPTS: u32 = 3;

/// How many remote candidates may wait for one name (a browser uses one name per address,
/// for every component and transport).
pub const MAX_CANDIDATES_PER_NAME: usize = 16;

/// How many resolved names the agent remembers, so that a candidate trickled later with a
/// known name is paired without asking again.
const MAX_RESOLVED_NAMES: usize = 256;

/// How many remote addresses learnt through mDNS the agent remembers, to keep them from
/// its relayed candidates (draft §3.3.2). A resolved candidate beyond it is dropped.
const MAX_MDNS_REMOTES: usize = 4096;

/// The agent's mDNS names, boxed on first use: most agents (a server's) never resolve nor
/// publish one, and keep a pointer for them. Reading the names of an agent that has none
/// sees an empty [`MdnsState`]; the first mutable access makes the box.
#[derive(Debug, Default)]
pub(super) struct MdnsNames {
    state: Option<Box<MdnsState>>,
}

/// The names of an agent that has none.
static NO_NAMES: MdnsState = MdnsState {
    pending: BTreeMap::new(),
    resolved: BTreeMap::new(),
    local: BTreeMap::new(),
    remotes: BTreeSet::new(),
};

impl Deref for MdnsNames {
    type Target = MdnsState;

    fn deref(&self) -> &MdnsState {
        self.state.as_deref().unwrap_or(&NO_NAMES)
    }
}

impl DerefMut for MdnsNames {
    fn deref_mut(&mut self) -> &mut MdnsState {
        self.state.get_or_insert_with(Box::default)
    }
}

/// The mDNS names: the peer's being resolved or resolved, and the agent's own.
#[derive(Debug, Default)]
pub(super) struct MdnsState {
    /// Remote names being resolved, by key ([`HostName::key`]).
    pending: BTreeMap<String, PendingName>,
    /// Remote names resolved, by key, with the address chosen.
    resolved: BTreeMap<String, IpAddr>,
    /// Local names, by the address they hide.
    local: BTreeMap<IpAddr, LocalName>,
    /// Remote transport addresses learnt by resolving a name: never paired with a local
    /// relayed candidate.
    remotes: BTreeSet<(StreamId, ComponentId, SocketAddr)>,
}

#[derive(Debug)]
struct PendingName {
    name: HostName,
    deadline: Instant,
    /// The candidates waiting, with the stream's remote ufrag when they were added (a
    /// restart in between makes them stale).
    waiting: Vec<(StreamId, NamedCandidate, Option<String>)>,
}

#[derive(Debug)]
struct LocalName {
    name: HostName,
    /// Claimed, as the I/O layer answered.
    published: bool,
    /// The names tried for the address, this one included.
    attempts: u32,
    /// The last attempt conflicted too: the name is announced but not published.
    failed: bool,
    /// Until published: the streams whose gathering waits for it (one count of
    /// `pending_gathers` each), so that a name replaced after a conflict while probing is
    /// announced before end-of-candidates; and when to stop waiting.
    holds: Vec<StreamId>,
    deadline: Instant,
}

impl MdnsState {
    /// True while a remote candidate of stream `sid` waits for its name.
    pub(super) fn pending_for(&self, sid: StreamId) -> bool {
        self.pending
            .values()
            .any(|p| p.waiting.iter().any(|(s, _, _)| *s == sid))
    }

    /// The earliest deadline: a resolution given up, or a publication no longer waited for.
    pub(super) fn timeout(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.deadline);
        let local = self
            .local
            .values()
            .filter(|l| !l.holds.is_empty())
            .map(|l| l.deadline);
        pending.chain(local).min()
    }

    /// True for a remote address of stream `sid` learnt by resolving a name.
    pub(super) fn is_mdns_remote(
        &self,
        sid: StreamId,
        component: ComponentId,
        address: SocketAddr,
    ) -> bool {
        self.remotes.contains(&(sid, component, address))
    }

    /// The number of remote names being resolved.
    pub(super) fn pending_count(&self) -> usize {
        self.pending.len()
    }
}

impl Agent {
    /// Adds a remote candidate whose address is a `.local` name: see
    /// [`StreamMut::add_remote_named_candidate`](super::StreamMut::add_remote_named_candidate).
    pub(super) fn add_remote_named(&mut self, now: Instant, sid: StreamId, named: NamedCandidate) {
        let key = named.name().key();
        if let Some(&ip) = self.mdns.resolved.get(&key) {
            self.pair_resolved(sid, &named, ip);
            return;
        }
        let ufrag = self.remote_ufrag(sid);
        if let Some(pending) = self.mdns.pending.get_mut(&key) {
            if pending.waiting.len() >= MAX_CANDIDATES_PER_NAME {
                tracing::debug!(stream = %sid, name = %named.name(), "too many candidates for one mDNS name: candidate dropped");
                return;
            }
            // The name is asked for once.
            pending.waiting.push((sid, named, ufrag));
            return;
        }
        if self.mdns.pending.len() >= self.config.max_pending_mdns_names {
            tracing::debug!(
                stream = %sid,
                name = %named.name(),
                limit = self.config.max_pending_mdns_names,
                "too many mDNS names being resolved: candidate dropped"
            );
            return;
        }
        let name = named.name().clone();
        self.io_requests
            .push_back(IoRequest::MdnsResolve { name: name.clone() });
        self.mdns.pending.insert(
            key,
            PendingName {
                name,
                deadline: now + self.config.mdns_timeout,
                waiting: vec![(sid, named, ufrag)],
            },
        );
    }

    /// Answers [`IoRequest::MdnsResolve`]: `name` has the addresses `addrs`.
    ///
    /// The name must have exactly one address (repeats count once), and a usable one: not
    /// unspecified, multicast or broadcast. Every candidate waiting for the name is then
    /// paired as a host candidate at that address. Otherwise the candidates are dropped, as
    /// by [`Self::handle_mdns_resolve_failed`] (draft §3.2.2: "SHOULD ignore candidates
    /// where the hostname resolution returns more than one IP address"; the names this
    /// draft makes have one address each, §3.1.1, so several mean a second host answers).
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownMdnsName`] if the agent is not waiting for `name` (never asked,
    /// answered already, or given up after [`AgentConfig::mdns_timeout`](super::AgentConfig::mdns_timeout)):
    /// nothing changes.
    pub fn handle_mdns_resolved(
        &mut self,
        now: Instant,
        name: &str,
        addrs: &[IpAddr],
    ) -> Result<(), AgentError> {
        self.last_now = Some(now);
        let key = self.pending_key(name)?;
        let distinct: BTreeSet<IpAddr> = addrs.iter().copied().collect();
        let chosen = match distinct.into_iter().collect::<Vec<_>>()[..] {
            [ip] if !ip.is_unspecified()
                && !ip.is_multicast()
                && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) =>
            {
                Some(ip)
            }
            _ => None,
        };
        let Some(pending) = self.mdns.pending.remove(&key) else {
            return Err(UsageError::UnknownMdnsName(name.to_owned()).into());
        };
        let Some(ip) = chosen else {
            tracing::debug!(name = %pending.name, ?addrs, "mDNS name resolved to no single usable address: its candidates are dropped");
            self.drop_waiting(pending);
            return Ok(());
        };
        if self.mdns.resolved.len() < MAX_RESOLVED_NAMES {
            self.mdns.resolved.insert(key, ip);
        }
        for (sid, named, ufrag) in pending.waiting {
            if self.remote_ufrag(sid) != ufrag {
                tracing::debug!(stream = %sid, name = %named.name(), "mDNS candidate of an earlier ICE generation dropped");
                continue;
            }
            self.pair_resolved(sid, &named, ip);
        }
        Ok(())
    }

    /// Answers [`IoRequest::MdnsResolve`]: `name` could not be resolved. The candidates
    /// waiting for it are dropped with a trace.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownMdnsName`] if the agent is not waiting for `name`.
    pub fn handle_mdns_resolve_failed(
        &mut self,
        now: Instant,
        name: &str,
    ) -> Result<(), AgentError> {
        self.last_now = Some(now);
        let key = self.pending_key(name)?;
        if let Some(pending) = self.mdns.pending.remove(&key) {
            tracing::debug!(name = %pending.name, "mDNS name not resolved: its candidates are dropped");
            self.drop_waiting(pending);
        }
        Ok(())
    }

    /// Answers [`IoRequest::MdnsPublish`]: `name` is claimed (probed without conflict,
    /// RFC 6762 §8.1). The candidates were announced already.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownMdnsName`] if `name` is not one the agent asked to publish and
    /// is waiting for.
    pub fn handle_mdns_published(&mut self, now: Instant, name: &str) -> Result<(), AgentError> {
        self.last_now = Some(now);
        let ip = self.local_name_ip(name, false)?;
        if let Some(local) = self.mdns.local.get_mut(&ip) {
            local.published = true;
        }
        self.release_holds(ip);
        Ok(())
    }

    /// Answers [`IoRequest::MdnsPublish`]: another host holds `name` (a conflict while
    /// probing or later, RFC 6762 §9), or it could not be published. The agent asks to
    /// publish a new random name for the address and announces its host candidates again
    /// under it ([`AgentEvent::LocalNamedCandidate`]), up to [`MAX_PUBLISH_ATTEMPTS`] names;
    /// after that the last name stays as it is.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownMdnsName`] if `name` is not the current name of an address.
    pub fn handle_mdns_publish_failed(
        &mut self,
        now: Instant,
        name: &str,
    ) -> Result<(), AgentError> {
        self.last_now = Some(now);
        let ip = self.local_name_ip(name, true)?;
        self.replace_local_name(now, ip);
        Ok(())
    }

    /// With [`AgentConfig::hide_host_addresses`](super::AgentConfig::hide_host_addresses),
    /// announces a new local candidate: a host one under its address's name (asking to
    /// publish a new name if the address has none), a server-reflexive one without its
    /// base. Returns false when the caller announces the candidate as it is.
    pub(super) fn announce_hidden(&mut self, sid: StreamId, candidate: &Candidate) -> bool {
        if !self.config.hide_host_addresses {
            return false;
        }
        match candidate.candidate_type() {
            CandidateType::Host => {}
            CandidateType::ServerReflexive => {
                // draft §3.1.2.2: "this server-reflexive candidate MUST have its raddr field
                // set to "0.0.0.0"/"::" and its rport field set to "9"" (draft -03 and
                // Chromium write port 0; the related address is informational either way).
                let hidden = match candidate.address() {
                    SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], DISCARD_PORT)),
                    SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], DISCARD_PORT)),
                };
                self.events.push_back(AgentEvent::LocalCandidate {
                    stream: sid,
                    candidate: candidate.with_related_address(Some(hidden)),
                });
                return true;
            }
            _ => return false,
        }
        let ip = candidate.address().ip();
        let now = self
            .last_now
            .expect("host candidates are made by gather_candidates(now) or restart(now), which set last_now");
        let name = match self.mdns.local.get_mut(&ip) {
            // draft §3.1.1 step 2: one name per address, reused.
            Some(local) => {
                if !local.published && !local.failed && !local.holds.contains(&sid) {
                    local.holds.push(sid);
                    self.streams[sid].pending_gathers += 1;
                }
                local.name.clone()
            }
            None => {
                // draft §3.1.1 step 3: "a version 4 UUID ... followed by ".local"".
                let name = HostName::random_mdns(&mut self.rng);
                self.io_requests.push_back(IoRequest::MdnsPublish {
                    name: name.clone(),
                    address: ip,
                });
                self.mdns.local.insert(
                    ip,
                    LocalName {
                        name: name.clone(),
                        published: false,
                        attempts: 1,
                        failed: false,
                        holds: vec![sid],
                        deadline: now + self.config.mdns_timeout,
                    },
                );
                self.streams[sid].pending_gathers += 1;
                name
            }
        };
        self.announce_named(sid, candidate, &name);
        true
    }

    /// True if a server-reflexive candidate at `mapped` from `base` tells the peer
    /// something: the mapped address differs from the base, or the host candidate at the
    /// base is hidden behind a name (draft-ietf-rtcweb-mdns-ice-candidates-04 §3.1.2.2:
    /// "Regardless of the result, a server-reflexive candidate will be generated").
    pub(super) fn srflx_adds(&self, mapped: SocketAddr, base: SocketAddr) -> bool {
        mapped != base || self.config.hide_host_addresses
    }

    /// Gives up the resolutions whose time has passed.
    pub(super) fn run_mdns_timeouts(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .mdns
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in expired {
            if let Some(pending) = self.mdns.pending.remove(&key) {
                tracing::debug!(name = %pending.name, "mDNS name not resolved in time: its candidates are dropped");
                self.drop_waiting(pending);
            }
        }
        let overdue: Vec<IpAddr> = self
            .mdns
            .local
            .iter()
            .filter(|(_, l)| !l.holds.is_empty() && l.deadline <= now)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in overdue {
            tracing::debug!(%ip, "mDNS name not claimed in time: gathering completes without waiting for it");
            self.release_holds(ip);
        }
    }

    /// Withdraws every local name ([`IoRequest::MdnsUnpublish`]), on [`Agent::close`].
    pub(super) fn unpublish_all(&mut self) {
        let Some(state) = self.mdns.state.as_mut() else {
            return;
        };
        for (_, local) in std::mem::take(&mut state.local) {
            if !local.failed {
                self.io_requests
                    .push_back(IoRequest::MdnsUnpublish { name: local.name });
            }
        }
    }

    /// Pairs `named` resolved to `ip`, unless its stream has ended its candidates
    /// meanwhile for another generation.
    fn pair_resolved(&mut self, sid: StreamId, named: &NamedCandidate, ip: IpAddr) {
        match named.resolve(ip) {
            Ok(candidate) => {
                let key = (sid, candidate.component(), candidate.address());
                if !self.mdns.remotes.contains(&key) {
                    if self.mdns.remotes.len() >= MAX_MDNS_REMOTES {
                        tracing::debug!(stream = %sid, "too many mDNS candidates: candidate dropped");
                        return;
                    }
                    self.mdns.remotes.insert(key);
                }
                tracing::debug!(stream = %sid, name = %named.name(), %ip, "mDNS candidate resolved");
                self.add_remote(sid, RemoteCand { candidate });
            }
            Err(error) => {
                tracing::debug!(stream = %sid, %error, "resolved mDNS candidate cannot be made")
            }
        }
    }

    fn drop_waiting(&mut self, pending: PendingName) {
        let mut streams: Vec<StreamId> = pending.waiting.iter().map(|(s, _, _)| *s).collect();
        streams.dedup();
        for sid in streams {
            // The component may now have nothing left to try.
            self.check_failures(sid);
        }
    }

    fn remote_ufrag(&self, sid: StreamId) -> Option<String> {
        self.streams[sid]
            .remote_creds
            .as_ref()
            .map(|c| c.ufrag().to_owned())
    }

    /// The key of a name the agent is resolving.
    fn pending_key(&self, name: &str) -> Result<String, AgentError> {
        HostName::parse(name)
            .ok()
            .map(|n| n.key())
            .filter(|key| self.mdns.pending.contains_key(key))
            .ok_or_else(|| {
                tracing::debug!(name, "mDNS answer for a name not asked for: ignored");
                UsageError::UnknownMdnsName(name.to_owned()).into()
            })
    }

    /// The address a local name hides; with `published_too`, a published name is found
    /// as well as one being published.
    fn local_name_ip(&self, name: &str, published_too: bool) -> Result<IpAddr, AgentError> {
        let key = HostName::parse(name).ok().map(|n| n.key());
        self.mdns
            .local
            .iter()
            .find(|(_, l)| {
                Some(l.name.key()) == key && !l.failed && (published_too || !l.published)
            })
            .map(|(ip, _)| *ip)
            .ok_or_else(|| {
                tracing::debug!(name, "mDNS publication answer for a name not ours: ignored");
                UsageError::UnknownMdnsName(name.to_owned()).into()
            })
    }

    fn replace_local_name(&mut self, now: Instant, ip: IpAddr) {
        let Some(local) = self.mdns.local.get_mut(&ip) else {
            return;
        };
        if local.attempts >= MAX_PUBLISH_ATTEMPTS {
            tracing::info!(%ip, name = %local.name, attempts = local.attempts, "no mDNS name could be published: the last one stays announced");
            local.published = false;
            local.failed = true;
            self.release_holds(ip);
            return;
        }
        let name = HostName::random_mdns(&mut self.rng);
        tracing::debug!(old = %local.name, new = %name, "mDNS name conflict: publishing another name");
        local.attempts += 1;
        local.published = false;
        local.name = name.clone();
        local.deadline = now + self.config.mdns_timeout;
        self.io_requests.push_back(IoRequest::MdnsPublish {
            name: name.clone(),
            address: ip,
        });
        // Announce the host candidates again under the new name (trickled; the peer's
        // resolution of the old one fails and its candidates are dropped), in the streams
        // that have not ended their candidates (RFC 8838 §13: none after end-of-candidates
        // in a generation; a conflict while probing holds gathering open, so only a
        // conflict after the claim meets this).
        let mut again = Vec::new();
        for sid in self.streams.ids() {
            if self.streams[sid].gathering == GatherPhase::Complete {
                tracing::debug!(stream = %sid, "mDNS name replaced after end-of-candidates: not announced");
                continue;
            }
            for l in &self.streams[sid].local {
                if l.candidate.candidate_type() == CandidateType::Host && l.base.ip() == ip {
                    again.push((sid, l.candidate.clone()));
                }
            }
        }
        for (sid, candidate) in again {
            self.announce_named(sid, &candidate, &name);
        }
    }

    /// The name of `ip` is claimed or no longer waited for: the gathering it held goes on.
    fn release_holds(&mut self, ip: IpAddr) {
        let holds = self
            .mdns
            .local
            .get_mut(&ip)
            .map(|l| std::mem::take(&mut l.holds))
            .unwrap_or_default();
        for sid in holds {
            self.gather_done(sid);
        }
    }

    fn announce_named(&mut self, sid: StreamId, candidate: &Candidate, name: &HostName) {
        match NamedCandidate::new(candidate, name.clone()) {
            Ok(candidate) => self.events.push_back(AgentEvent::LocalNamedCandidate {
                stream: sid,
                candidate,
            }),
            Err(error) => tracing::warn!(%error, "cannot name a host candidate"),
        }
    }
}
