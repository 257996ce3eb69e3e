//! ICE restart (RFC 8445 §9, RFC 8839 §4.4): a stream starts a new generation of
//! credentials, candidates and check lists, while the pairs the old one selected keep
//! carrying data until the new one selects its own.
//!
//! # Generations
//! A restart replaces the stream's local credentials (new ones from the agent's RNG), its
//! remote credentials (unknown after a local restart, the new ones after a remote
//! restart), its local and remote candidates, its pairs and its check list (whose pair
//! ids number on after the old ones, so that an id is never reused within a stream).
//! Gathering runs again from the same local sockets; TURN allocations that are still
//! allocated are reused, not allocated again on the same 5-tuple (see `relay.rs`).
//!
//! What the old generation leaves is, for each component that had a selected pair and
//! had not failed, one [`OldPath`], owned by the stream's [`Previous`]: the pair's
//! addresses and description, the old credentials and keys, and its consent timers. Until
//! the new generation selects a pair for that component, the old path:
//! - carries the component's application data both ways (`ComponentMut::send`,
//!   `accept_data`);
//! - keeps its consent (RFC 7675 §5.1): consent checks signed with the old remote
//!   password, and the peer's consent checks on it answered with the old local password
//!   (checks with the new credentials on the same 5-tuple belong to the new generation);
//! - is released when the new generation selects a pair for its component
//!   ([`AgentEvent::SelectedPairChanged`] with the old pair as `old`), when its consent
//!   expires (the component goes [`ComponentState::Disconnected`] until the restart
//!   connects it), or when the component fails.
//!
//! If every pair of the restart fails while the old path still has consent, the old path
//! carries on (the application may restart again); the component fails
//! ([`super::FailureReason::ChecksFailed`]) only once the old path's consent is gone too.
//!
//! After the switch, data from the old pair's 5-tuple still in flight is accepted: that
//! tuple was verified, and is remembered per component until the next switch.
//!
//! A restart during a restart keeps, per component, the path that carries its data: the
//! new generation's selection if it has one, else the path kept before. So a stream holds
//! at most one old path per component, however many restarts a peer asks for.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::checks::signed_success;
use super::pairs::CheckList;
use super::requests::Requests;
use super::{
    Agent, AgentEvent, ComponentId, ComponentState, GatherPhase, PairId, RestartOrigin,
    SelectedPair, StreamId, Txn,
};
use crate::Transmit;
use crate::TransportType;
use crate::candidate::IceCredentials;
use crate::stun::attr::{IceControlled, IceControlling, Priority, Username};
use crate::stun::transaction::ResponseIntegrity;
use crate::stun::{
    IntegrityAlgorithm, IntegrityKey, Message, MessageType, MessageWriter, Sha1Key, TransactionId,
};

/// The selected pair of one component in an earlier generation, carrying the component's
/// data and keeping its consent until the new generation selects a pair.
#[derive(Debug)]
pub(super) struct OldPath {
    /// Its id in the old generation (the [`super::ReceivedData::pair`] of its data).
    pub pair: PairId,
    /// How it was described when selected.
    pub described: SelectedPair,
    /// (local base or relayed address, remote address).
    pub tuple: (SocketAddr, SocketAddr),
    transport: TransportType,
    /// The PRIORITY of its consent checks: the local candidate's priority.
    priority: u32,
    /// The old local credentials, and the key of their password.
    local_creds: IceCredentials,
    local_key: Sha1Key,
    remote_ufrag: String,
    /// `None` for a lite agent, which sends no consent check (RFC 8445 §2.5).
    remote_key: Option<IntegrityKey>,
    /// When consent was last refreshed.
    consent_at: Instant,
    /// When the next consent check goes out.
    next_check: Instant,
    /// The consent check in flight.
    in_flight: Option<TransactionId>,
}

impl OldPath {
    /// When its consent expires unless refreshed.
    pub fn expiry(&self, timeout: std::time::Duration) -> Instant {
        self.consent_at + timeout
    }
}

/// The old paths of one stream, at most one per component.
///
/// Invariant: a component with an old path has no selected pair in the current
/// generation (selecting one releases the path, [`Previous::release`]).
#[derive(Debug, Default)]
pub(super) struct Previous {
    paths: BTreeMap<ComponentId, OldPath>,
}

impl Previous {
    /// The old path of `component`.
    pub fn get(&self, component: ComponentId) -> Option<&OldPath> {
        self.paths.get(&component)
    }

    /// The old path of `component` whose (local, remote) tuple is `tuple`.
    pub fn on_tuple(
        &self,
        component: ComponentId,
        tuple: (SocketAddr, SocketAddr),
    ) -> Option<&OldPath> {
        self.get(component).filter(|p| p.tuple == tuple)
    }

    /// Releases the old path of `component`.
    pub fn release(&mut self, component: ComponentId) -> Option<OldPath> {
        self.paths.remove(&component)
    }

    /// A lite agent's consent on the old path of `component`, if its tuple is `tuple`: the
    /// peer's check on it refreshes it (see `lite.rs`).
    pub fn refresh_consent(
        &mut self,
        component: ComponentId,
        tuple: (SocketAddr, SocketAddr),
        now: Instant,
    ) {
        if let Some(path) = self.paths.get_mut(&component).filter(|p| p.tuple == tuple) {
            path.consent_at = path.consent_at.max(now);
        }
    }

    /// True while no component has an old path.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    fn keep(&mut self, component: ComponentId, path: OldPath) {
        self.paths.insert(component, path);
    }
}

impl Agent {
    /// Restarts stream `sid` (RFC 8445 §9): see the module docs. `remote` is the peer's
    /// new credentials after a remote restart.
    pub(super) fn restart_stream(
        &mut self,
        sid: StreamId,
        origin: RestartOrigin,
        remote: Option<IceCredentials>,
    ) {
        tracing::info!(stream = %sid, ?origin, "ICE restart");
        // The old generation's checks and consent checks end here; only old paths remain.
        if let Some(r) = self.requests.as_deref_mut() {
            let stopped = r.txns.cancel_where(|t| match *t {
                Txn::Check { stream, .. } | Txn::Consent { stream, .. } => stream == sid,
                _ => false,
            });
            for id in stopped {
                r.cancelled.remove(&id);
            }
        }
        self.keep_old_paths(sid);
        self.forget_foundations(sid);
        self.tcp_checks.forget_waits(sid);
        let local_creds = IceCredentials::generate(&mut self.rng);
        let s = &mut self.streams[sid];
        s.local_key = Sha1Key::short_term(local_creds.pwd());
        s.local_creds = local_creds;
        s.remote_key = remote
            .as_ref()
            .and_then(|r| super::remote_key(&self.config, r));
        s.remote_creds = remote;
        s.local.clear();
        s.gone_bases.clear();
        s.remote.clear();
        s.remote_by_addr.clear();
        s.checklist = CheckList::after(&s.checklist);
        s.remote_eoc = false;
        for component in s.components.ids() {
            let s = &mut self.streams[sid];
            let kept = s.previous.get(component).is_some();
            let c = &mut s.components[component];
            c.first_valid_at = None;
            c.nominating = None;
            // A new generation numbers its nominations afresh (draft-thatcher-ice-
            // renomination: the values belong to the check list they were sent on; the peer
            // restarts too, and libwebrtc's new connections start from 0).
            c.renom = Default::default();
            c.failure = None;
            c.check_failures = Default::default();
            if let Some(lost) = c.lost.as_mut() {
                lost.restarted = true;
            }
            if !kept && c.state != ComponentState::Connecting {
                self.set_component_state(sid, component, ComponentState::Connecting);
            }
        }
        self.events.push_back(AgentEvent::Restarted {
            stream: sid,
            origin,
        });
        if self.streams[sid].gathering != GatherPhase::NotStarted {
            self.gather_again(sid);
        }
    }

    /// Moves each component's selected pair (if it still has consent) into an old path,
    /// replacing the path kept by an earlier restart; a component without one keeps its
    /// earlier path, if any.
    fn keep_old_paths(&mut self, sid: StreamId) {
        let s = &mut self.streams[sid];
        for component in s.components.ids() {
            let c = &mut s.components[component];
            let (selected, live) = (c.selected.take(), c.live.take());
            let (Some(pid), Some(live), Some(remote_creds)) = (selected, live, &s.remote_creds)
            else {
                continue;
            };
            if c.state == ComponentState::Failed {
                continue;
            }
            let pair = &s.checklist[pid];
            let local = &s.local[pair.local];
            let remote = &s.remote[pair.remote].candidate;
            let (consent_at, next_check) = live.times();
            let path = OldPath {
                pair: pid,
                described: SelectedPair {
                    local: local.candidate.clone(),
                    remote: remote.clone(),
                    local_base: local.base,
                    transport: local.transport,
                },
                tuple: s.pair_key(pid),
                transport: local.transport,
                priority: local.candidate.priority(),
                local_creds: s.local_creds.clone(),
                local_key: s.local_key.clone(),
                remote_ufrag: remote_creds.ufrag().to_owned(),
                remote_key: s.remote_key.as_deref().cloned(),
                consent_at,
                next_check,
                in_flight: None,
            };
            s.previous.keep(component, path);
        }
    }

    /// Forgets the old generation's pairs in the foundation groups, and the pair
    /// foundations no pair uses any more (so that restarts do not grow them).
    fn forget_foundations(&mut self, sid: StreamId) {
        let Some(r) = self.requests.as_deref_mut() else {
            return;
        };
        r.foundation_pairs.retain(|_, group| {
            group.retain(|&(s, _)| s != sid);
            !group.is_empty()
        });
        let used = &r.foundation_pairs;
        r.pair_foundations.retain(|_, f| used.contains_key(f));
    }

    /// Gathers again after a restart: queued server queries of the old generation are
    /// dropped (the new round queries again), those in flight still count and add their
    /// candidates to the new generation.
    fn gather_again(&mut self, sid: StreamId) {
        let dropped = self.requests.as_deref_mut().map_or(0, |r| {
            let before = r.gather_queue.len();
            r.gather_queue
                .retain(|j| j.stream != sid || j.relay.is_some() || j.turn_tcp.is_some());
            before - r.gather_queue.len()
        });
        let s = &mut self.streams[sid];
        s.pending_gathers = s.pending_gathers.saturating_sub(dropped);
        self.start_gathering(sid);
    }

    /// The path `data` for `component` goes on while the new generation has no selected
    /// pair: the old path's (transport, local, remote), if it still has consent.
    pub(super) fn old_path_target(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
    ) -> Option<Transmit<()>> {
        self.expire_old_path(now, sid, component);
        let path = self.streams[sid].previous.get(component)?;
        Some(Transmit {
            transport: path.transport,
            from: path.tuple.0,
            to: path.tuple.1,
            data: (),
        })
    }

    /// Answers the peer's consent check on an old path, signed with the old password;
    /// true if `msg` was one (its USERNAME names the old local ufrag, on the old path's
    /// tuple, and it verifies with the old password).
    pub(super) fn answer_old_path_check(
        &mut self,
        transmit: &Transmit<&[u8]>,
        msg: &Message<'_>,
        sid: StreamId,
        component: ComponentId,
    ) -> bool {
        let s = &self.streams[sid];
        let Some(path) = s.previous.on_tuple(component, (transmit.to, transmit.from)) else {
            return false;
        };
        let Ok(Some(Username(username))) = msg.attribute::<Username<'_>>() else {
            return false;
        };
        let ours = username.split_once(':').is_some_and(|(local, remote)| {
            local == path.local_creds.ufrag() && remote == path.remote_ufrag
        });
        if !ours || path.local_key.check(msg, path.local_creds.pwd()).is_err() {
            return false;
        }
        if let Some(data) = signed_success(transmit, msg, &path.local_key) {
            self.send_out(Transmit {
                transport: transmit.transport,
                from: transmit.to,
                to: transmit.from,
                data,
            });
        }
        true
    }

    /// Where data from `from` on `to` belongs if it is no pair's of the current
    /// generation: an old path of the component, or the tuple of the path released at the
    /// last switch (verified by the old generation).
    pub(super) fn old_path_data(
        &self,
        sid: StreamId,
        component: ComponentId,
        tuple: (SocketAddr, SocketAddr),
    ) -> Option<PairId> {
        let s = &self.streams[sid];
        if let Some(path) = s.previous.on_tuple(component, tuple) {
            return Some(path.pair);
        }
        s.components
            .get(component)?
            .retired
            .as_deref()
            .filter(|&&(t, _)| t == tuple)
            .map(|&(_, pid)| pid)
    }

    /// The new generation selected a pair for `component`: its old path, if any, is
    /// released, and described for [`AgentEvent::SelectedPairChanged`].
    pub(super) fn release_old_path(
        &mut self,
        sid: StreamId,
        component: ComponentId,
    ) -> Option<Box<SelectedPair>> {
        let path = self.drop_old_path(sid, component)?;
        tracing::info!(stream = %sid, %component, "restart done: data moves to the new pair");
        Some(Box::new(path.described))
    }

    /// Drops the old path of `component` (its consent check in flight is abandoned), and
    /// remembers its tuple for the data still on its way.
    pub(super) fn drop_old_path(
        &mut self,
        sid: StreamId,
        component: ComponentId,
    ) -> Option<OldPath> {
        let s = &mut self.streams[sid];
        let path = s.previous.release(component)?;
        if let Some(c) = s.components.get_mut(component) {
            c.retired = Some(Box::new((path.tuple, path.pair)));
        }
        if let Some(id) = path.in_flight {
            self.cancel_txn(&id);
        }
        Some(path)
    }

    /// Drops the old path of `component` if it goes from one of `locals` (relayed
    /// addresses whose allocation was lost): the component is Disconnected until the
    /// restart selects a pair.
    pub(super) fn drop_old_path_from(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        locals: &[SocketAddr],
    ) {
        let through = self.streams[sid]
            .previous
            .get(component)
            .is_some_and(|p| locals.contains(&p.tuple.0));
        if through {
            tracing::info!(stream = %sid, %component, "the old pair's relay is lost");
            self.drop_old_path(sid, component);
            self.set_component_state(sid, component, ComponentState::Disconnected);
            self.check_failures(sid);
        }
    }

    /// The earliest consent deadline of the old paths.
    pub(super) fn old_paths_timeout(&self) -> Option<Instant> {
        if !self.config.consent_freshness {
            return None;
        }
        let timeout = self.config.consent_timeout;
        self.streams
            .iter()
            .flat_map(|s| s.previous.paths.values())
            .map(|p| {
                // A lite agent sends no consent checks: only the expiry counts.
                if self.lite() {
                    p.expiry(timeout)
                } else {
                    p.next_check.min(p.expiry(timeout))
                }
            })
            .min()
    }

    /// Runs the old paths' consent timers: expiry, then the checks that are due.
    pub(super) fn run_old_paths(&mut self, now: Instant) {
        if !self.config.consent_freshness {
            return;
        }
        for sid in self.streams.ids() {
            if self.streams[sid].previous.is_empty() {
                continue;
            }
            for component in self.streams[sid].components.ids() {
                if self.expire_old_path(now, sid, component) {
                    continue;
                }
                let due = self.streams[sid]
                    .previous
                    .get(component)
                    .is_some_and(|p| p.next_check <= now);
                if due && !self.lite() {
                    self.send_old_path_consent(now, sid, component);
                }
            }
        }
    }

    /// Drops the old path of `component` if its consent has expired (RFC 7675 §5.1): no
    /// more data goes on it, and the component is Disconnected until the restart connects
    /// it. True if it has.
    fn expire_old_path(&mut self, now: Instant, sid: StreamId, component: ComponentId) -> bool {
        let timeout = self.config.consent_timeout;
        let expired = self.config.consent_freshness
            && self.streams[sid]
                .previous
                .get(component)
                .is_some_and(|p| p.expiry(timeout) <= now);
        if expired {
            tracing::info!(stream = %sid, %component, "consent expired on the old pair");
            self.drop_old_path(sid, component);
            self.set_component_state(sid, component, ComponentState::Disconnected);
            // If the restart's pairs have all failed already, the component has failed.
            self.check_failures(sid);
        }
        expired
    }

    /// A consent check on an old path, with the old credentials (RFC 7675 §5.1).
    fn send_old_path_consent(&mut self, now: Instant, sid: StreamId, component: ComponentId) {
        let delay = super::liveness::consent_delay(&mut self.rng, self.config.consent_interval);
        let id = TransactionId::generate(&mut self.rng);
        let (controlling, tie_breaker) = (self.controlling, self.tie_breaker);
        let Some(path) = self.streams[sid].previous.paths.get_mut(&component) else {
            return;
        };
        let Some(remote_key) = path.remote_key.clone() else {
            // A lite agent's old path: no consent check of its own (RFC 8445 §2.5).
            return;
        };
        path.next_check = now + delay;
        let old = path.in_flight.take();
        let username = format!("{}:{}", path.remote_ufrag, path.local_creds.ufrag());
        let mut data = Vec::with_capacity(128);
        let mut w = MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, id);
        let written = (|| {
            // RFC 8445 §7.2.2: USERNAME "remote ufrag:local ufrag", PRIORITY, the role.
            w.add(&Username(&username))?;
            w.add(&Priority(path.priority))?;
            if controlling {
                w.add(&IceControlling(tie_breaker))?;
            } else {
                w.add(&IceControlled(tie_breaker))?;
            }
            w.add_message_integrity(&remote_key)?;
            w.add_fingerprint()
        })();
        let integrity = ResponseIntegrity::short_term(remote_key, IntegrityAlgorithm::Sha1);
        let transmit = Transmit {
            transport: path.transport,
            from: path.tuple.0,
            to: path.tuple.1,
            data,
        };
        if let Some(old) = old {
            self.cancel_txn(&old);
        }
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write a consent check");
            return;
        }
        let context = Txn::OldPathConsent {
            stream: sid,
            component,
        };
        let rto = self.config.check_retransmit.rto;
        match Requests::of(&mut self.requests, &self.config).txns.start(
            now,
            transmit,
            context,
            Some(integrity),
            Some(rto),
        ) {
            Ok(id) => {
                if let Some(path) = self.streams[sid].previous.paths.get_mut(&component) {
                    path.in_flight = Some(id);
                }
                self.streams[sid].components[component]
                    .consent_stats
                    .requests_sent += 1;
                tracing::trace!(stream = %sid, %component, "consent check on the old pair");
            }
            Err(e) => tracing::warn!(error = %e, "cannot start a consent check"),
        }
    }

    /// A response to a consent check on an old path (already matched, and `success` only
    /// for an authenticated success response from the address the check went to).
    pub(super) fn on_old_path_consent_response(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        id: TransactionId,
        success: bool,
    ) {
        let s = &mut self.streams[sid];
        let Some(path) = s.previous.paths.get_mut(&component) else {
            return;
        };
        if path.in_flight == Some(id) {
            path.in_flight = None;
        }
        if success {
            path.consent_at = now;
            s.components[component].consent_stats.responses_received += 1;
        }
    }
}
