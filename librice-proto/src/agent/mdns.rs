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
//! resolved it is paired as the host candidate it is, with the resolved address (a
//! peer-reflexive candidate learnt at that address takes its type and priority, keeping
//! its pairs, RFC 8445 §7.3.1.3). A name not resolved within
//! [`AgentConfig::mdns_timeout`] is dropped with a trace; the other candidates pair and
//! connect meanwhile. At most [`AgentConfig::max_pending_mdns_names`] names wait at once;
//! more are dropped with a trace. An answer for a name the agent is not waiting for
//! changes nothing ([`UsageError::UnknownMdnsName`]).
//!
//! Local names ([`AgentConfig::hide_host_addresses`]): each local IP address of a host
//! candidate gets one fresh random name from the agent's RNG, published before any
//! candidate carrying it is announced (draft §3.1.1: a name that cannot be registered is
//! not exposed); host candidates are announced as [`AgentEvent::LocalNamedCandidate`] and
//! server-reflexive ones with the unspecified related address. Gathering completes only
//! once every name is published or given up. A name that conflicts is replaced by a new
//! one (at most [`MAX_PUBLISH_ATTEMPTS`] names per address), and the candidates are
//! announced again under it. [`Agent::close`] unpublishes every name.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{Agent, AgentError, AgentEvent, IoRequest, RemoteCand, StreamId, UsageError};
use crate::candidate::{Candidate, CandidateType, HostName, NamedCandidate};

/// How many names the agent tries for one local address before it gives up hiding it
/// (the first and two replacements after conflicts).
pub const MAX_PUBLISH_ATTEMPTS: u32 = 3;

/// How many remote candidates may wait for one name (a browser uses one name per address,
/// for every component and transport).
pub const MAX_CANDIDATES_PER_NAME: usize = 16;

/// How many resolved names the agent remembers, so that a candidate trickled later with a
/// known name is paired without asking again.
const MAX_RESOLVED_NAMES: usize = 256;

/// The agent's mDNS names: the peer's being resolved or resolved, and its own.
#[derive(Debug, Default)]
pub(super) struct MdnsNames {
    /// Remote names being resolved, by key ([`HostName::key`]).
    pending: BTreeMap<String, PendingName>,
    /// Remote names resolved, by key, with the address chosen.
    resolved: BTreeMap<String, IpAddr>,
    /// Local names, by the address they hide.
    local: BTreeMap<IpAddr, LocalName>,
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
    published: bool,
    attempts: u32,
    /// Until published: when to give up.
    deadline: Instant,
    /// Host candidates to announce once published, and whether each holds its stream's
    /// gathering open.
    waiting: Vec<(StreamId, Candidate, bool)>,
}

impl MdnsNames {
    /// True while a remote candidate of stream `sid` waits for its name.
    pub(super) fn pending_for(&self, sid: StreamId) -> bool {
        self.pending
            .values()
            .any(|p| p.waiting.iter().any(|(s, _, _)| *s == sid))
    }

    /// The earliest deadline: a resolution or a publication given up.
    pub(super) fn timeout(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.deadline);
        let local = self
            .local
            .values()
            .filter(|l| !l.published)
            .map(|l| l.deadline);
        pending.chain(local).min()
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
    /// One address is used, the first IPv6 one if any, else the first IPv4 one
    /// (draft-ietf-mmusic-mdns-ice-candidates §3.2.2: the agent "MUST take exactly one of
    /// the resolved IP addresses"); unspecified, multicast and broadcast addresses are
    /// ignored. Every candidate waiting for the name is then paired as a host candidate at
    /// that address. With no usable address the candidates are dropped, as by
    /// [`Self::handle_mdns_resolve_failed`].
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
        let usable = |ip: &&IpAddr| {
            !ip.is_unspecified()
                && !ip.is_multicast()
                && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
        };
        let chosen = addrs
            .iter()
            .filter(usable)
            .find(|ip| ip.is_ipv6())
            .or_else(|| addrs.iter().filter(usable).find(|ip| ip.is_ipv4()))
            .copied();
        let Some(pending) = self.mdns.pending.remove(&key) else {
            return Err(UsageError::UnknownMdnsName(name.to_owned()).into());
        };
        let Some(ip) = chosen else {
            tracing::debug!(name = %pending.name, "mDNS name resolved to no usable address: its candidates are dropped");
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
    /// RFC 6762 §8.1). The host candidates it hides are announced as
    /// [`AgentEvent::LocalNamedCandidate`].
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownMdnsName`] if `name` is not one the agent asked to publish and
    /// is waiting for.
    pub fn handle_mdns_published(&mut self, now: Instant, name: &str) -> Result<(), AgentError> {
        self.last_now = Some(now);
        let ip = self.local_name_ip(name, false)?;
        let local = self
            .mdns
            .local
            .get_mut(&ip)
            .expect("local_name_ip found it");
        local.published = true;
        let waiting = std::mem::take(&mut local.waiting);
        let name = local.name.clone();
        for (sid, candidate, holds_gathering) in waiting {
            self.announce_named(sid, &candidate, &name);
            if holds_gathering {
                self.gather_done(sid);
            }
        }
        Ok(())
    }

    /// Answers [`IoRequest::MdnsPublish`]: another host holds `name` (a conflict while
    /// probing or later, RFC 6762 §9), or it could not be published. The agent asks to
    /// publish a new random name for the address and announces the host candidates again
    /// under it, up to [`MAX_PUBLISH_ATTEMPTS`] names; after that the address's host
    /// candidates stay unannounced (draft-ietf-mmusic-mdns-ice-candidates §3.1.1: a name
    /// that cannot be registered is not exposed), though the agent still uses them.
    ///
    /// # Errors
    ///
    /// [`UsageError::UnknownMdnsName`] if `name` is not one of the agent's names.
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
    /// announces a new local candidate: a host one under its address's name (publishing
    /// it first if need be), a server-reflexive one without its base. Returns false when
    /// hiding is off and the caller announces the candidate as it is.
    pub(super) fn announce_hidden(&mut self, sid: StreamId, candidate: &Candidate) -> bool {
        if !self.config.hide_host_addresses {
            return false;
        }
        match candidate.candidate_type() {
            CandidateType::Host => {}
            CandidateType::ServerReflexive => {
                // draft-ietf-mmusic-mdns-ice-candidates §3.1.2.2: the related address of a
                // server-reflexive candidate would give the host address away; it is
                // written as 0.0.0.0 (:: for IPv6) with port 0.
                let unspecified = match candidate.address() {
                    SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
                    SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
                };
                self.events.push_back(AgentEvent::LocalCandidate {
                    stream: sid,
                    candidate: candidate.with_related_address(Some(unspecified)),
                });
                return true;
            }
            _ => return false,
        }
        let ip = candidate.address().ip();
        match self.mdns.local.get_mut(&ip) {
            Some(local) if local.published => {
                let name = local.name.clone();
                self.announce_named(sid, candidate, &name);
            }
            Some(local) => {
                local.waiting.push((sid, candidate.clone(), true));
                self.streams[sid].pending_gathers += 1;
            }
            None => {
                let name = HostName::random_mdns(&mut self.rng);
                self.io_requests.push_back(IoRequest::MdnsPublish {
                    name: name.clone(),
                    address: ip,
                });
                let now = self
                    .last_now
                    .expect("host candidates are made by gather_candidates(now) or restart(now), which set last_now");
                self.mdns.local.insert(
                    ip,
                    LocalName {
                        name,
                        published: false,
                        attempts: 1,
                        deadline: now + self.config.mdns_timeout,
                        waiting: vec![(sid, candidate.clone(), true)],
                    },
                );
                self.streams[sid].pending_gathers += 1;
            }
        }
        true
    }

    /// Gives up the resolutions and publications whose time has passed.
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
        let unpublished: Vec<IpAddr> = self
            .mdns
            .local
            .iter()
            .filter(|(_, l)| !l.published && l.deadline <= now)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in unpublished {
            tracing::debug!(%ip, "mDNS name not published in time: its host candidates are not announced");
            self.give_up_local_name(ip);
        }
    }

    /// Withdraws every local name ([`IoRequest::MdnsUnpublish`]), on [`Agent::close`].
    pub(super) fn unpublish_all(&mut self) {
        for (_, local) in std::mem::take(&mut self.mdns.local) {
            self.io_requests
                .push_back(IoRequest::MdnsUnpublish { name: local.name });
        }
    }

    /// Pairs `named` resolved to `ip`, unless its stream has ended its candidates
    /// meanwhile for another generation.
    fn pair_resolved(&mut self, sid: StreamId, named: &NamedCandidate, ip: IpAddr) {
        match named.resolve(ip) {
            Ok(candidate) => {
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
            .find(|(_, l)| Some(l.name.key()) == key && (published_too || !l.published))
            .map(|(ip, _)| *ip)
            .ok_or_else(|| {
                tracing::debug!(name, "mDNS publication answer for a name not ours: ignored");
                UsageError::UnknownMdnsName(name.to_owned()).into()
            })
    }

    fn replace_local_name(&mut self, now: Instant, ip: IpAddr) {
        let local = self.mdns.local.get_mut(&ip).expect("found by the caller");
        if local.attempts >= MAX_PUBLISH_ATTEMPTS {
            tracing::info!(%ip, attempts = local.attempts, "no mDNS name could be published: host candidates not announced");
            self.give_up_local_name(ip);
            return;
        }
        let name = HostName::random_mdns(&mut self.rng);
        tracing::debug!(old = %local.name, new = %name, "mDNS name conflict: publishing another name");
        local.attempts += 1;
        local.deadline = now + self.config.mdns_timeout;
        local.name = name.clone();
        if local.published {
            // Announced already: announce again under the new name (a trickled candidate;
            // the peer's pairs on the old one simply go unresolved). Gathering is not held.
            local.published = false;
            let mut waiting = Vec::new();
            for sid in self.streams.ids() {
                for l in &self.streams[sid].local {
                    if l.candidate.candidate_type() == CandidateType::Host && l.base.ip() == ip {
                        waiting.push((sid, l.candidate.clone(), false));
                    }
                }
            }
            let local = self.mdns.local.get_mut(&ip).expect("found by the caller");
            local.waiting = waiting;
        }
        self.io_requests
            .push_back(IoRequest::MdnsPublish { name, address: ip });
    }

    fn give_up_local_name(&mut self, ip: IpAddr) {
        let Some(local) = self.mdns.local.remove(&ip) else {
            return;
        };
        for (sid, _, holds_gathering) in local.waiting {
            if holds_gathering {
                self.gather_done(sid);
            }
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
