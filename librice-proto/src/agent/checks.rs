//! Connectivity checks: sending them, answering the peer's, and handling the responses
//! (RFC 8445 §7).

use std::net::SocketAddr;
use std::time::Instant;

use super::pairs::{Nomination, PairState};
use super::renomination::NominateWith;
use super::requests;
use super::{Agent, AgentEvent, ComponentId, LocalCand, PairId, RemoteCand, StreamId, Txn};
use crate::candidate::{Candidate, CandidateTransport, CandidateType, FoundationKey, TcpType};
use crate::compact::push_compact;
use crate::stun::attr::{
    AttributeType, ErrorCode, IceControlled, IceControlling, Nomination as NominationAttr,
    Priority, UseCandidate, Username, XorMappedAddress,
};
use crate::stun::transaction::{ResponseIntegrity, ResponseOutcome};
use crate::stun::{
    IntegrityAlgorithm, Message, MessageClass, MessageType, MessageWriter, Method, Sha1Key,
    StunParseError, TransactionId,
};
use crate::{Transmit, TransportType};

/// A Binding indication with FINGERPRINT: the keepalive of RFC 8445 §11.
pub(super) fn binding_indication(id: TransactionId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(28);
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_INDICATION, id);
    // Cannot fail: the first and only attribute of a tiny message.
    let _ = w.add_fingerprint();
    buf
}

/// Why an incoming check was refused with an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadRequest,
    Unauthenticated,
    RoleConflict,
}

impl Refusal {
    fn code(self) -> u16 {
        match self {
            Self::BadRequest => ErrorCode::BAD_REQUEST,
            Self::Unauthenticated => ErrorCode::UNAUTHENTICATED,
            Self::RoleConflict => ErrorCode::ROLE_CONFLICT,
        }
    }
}

impl Agent {
    /// Starts a check on the next pair of stream `sid`, if there is one.
    pub(super) fn start_next_check(&mut self, now: Instant, sid: StreamId) -> bool {
        if self.lite() {
            // RFC 8445 §2.5: a lite agent sends no checks.
            return false;
        }
        let Some(pid) = self.next_pair_to_check(sid) else {
            return false;
        };
        self.send_check(now, sid, pid);
        true
    }

    /// Sends a connectivity check on pair `pid` (RFC 8445 §7.1, §7.2.4); over ICE-TCP, asks
    /// for the connection first (RFC 6544 §7.1).
    fn send_check(&mut self, now: Instant, sid: StreamId, pid: PairId) {
        if self.needs_connection(sid, pid) {
            self.connect_for_check(sid, pid);
            return;
        }
        let ta = self.config.ta;
        let rto_floor = self.config.check_retransmit.rto;
        // RFC 8445 §14.3: RTO = MAX(500 ms, Ta * (pairs Waiting or In-Progress)).
        let busy: usize = self
            .streams
            .iter()
            .map(|s| {
                s.checklist.count(PairState::Waiting) + s.checklist.count(PairState::InProgress)
            })
            .sum();
        let rto = rto_floor.max(ta.saturating_mul(u32::try_from(busy).unwrap_or(u32::MAX)));
        let nominate = self.nominate_with(sid, pid);
        let use_candidate = nominate != NominateWith::No;
        let context = Txn::Check {
            stream: sid,
            pair: pid,
            controlling: self.controlling,
            use_candidate,
            priority: self.check_priority(sid, pid),
            sent_at: now,
        };
        match self.start_check_transaction(now, sid, pid, nominate, context, rto) {
            Some(id) => {
                let s = &mut self.streams[sid];
                s.checklist[pid].stats.request_sent();
                s.checklist[pid].txn = Some(id);
                s.checklist[pid].unauthorized = false;
                if s.checklist[pid].state() != PairState::Succeeded {
                    s.checklist.set_state(pid, PairState::InProgress);
                }
            }
            None => self.streams[sid]
                .checklist
                .set_state(pid, PairState::Failed),
        }
    }

    /// RFC 8445 §7.1.1: the PRIORITY of a check is what a peer-reflexive candidate from it
    /// would have: the prflx type preference with the local candidate's local preference.
    fn check_priority(&self, sid: StreamId, pid: PairId) -> u32 {
        let s = &self.streams[sid];
        let local = &s.local[s.checklist[pid].local];
        (u32::from(CandidateType::PeerReflexive.preference()) << 24)
            | (local.candidate.priority() & 0x00FF_FFFF)
    }

    /// Starts the transaction of an authenticated Binding request on pair `pid`: a
    /// connectivity check, or a consent check (RFC 7675 §5.1 uses the same request). `None`
    /// when the stream has no remote credentials or the request cannot be made.
    pub(super) fn start_check_transaction(
        &mut self,
        now: Instant,
        sid: StreamId,
        pid: PairId,
        nominate: NominateWith,
        context: Txn,
        rto: std::time::Duration,
    ) -> Option<TransactionId> {
        let controlling = self.controlling;
        let tie_breaker = self.tie_breaker;
        let priority = self.check_priority(sid, pid);
        let id = TransactionId::generate(&mut self.rng);
        let s = &self.streams[sid];
        let (Some(remote_creds), Some(remote_key)) = (&s.remote_creds, &s.remote_key) else {
            return None;
        };
        let pair = &s.checklist[pid];
        let local = &s.local[pair.local];
        let remote = &s.remote[pair.remote];
        let username = format!("{}:{}", remote_creds.ufrag(), s.local_creds.ufrag());
        let mut data = Vec::with_capacity(128);
        let mut w = MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, id);
        let written = (|| {
            // RFC 8445 §7.2.2: USERNAME is "remote ufrag:local ufrag".
            w.add(&Username(&username))?;
            w.add(&Priority(priority))?;
            // RFC 8445 §7.1.3: the role and tie-breaker.
            if controlling {
                w.add(&IceControlling(tie_breaker))?;
            } else {
                w.add(&IceControlled(tie_breaker))?;
            }
            // RFC 8445 §7.1.2: the controlling agent nominates with USE-CANDIDATE; under
            // renomination with NOMINATION instead (draft-thatcher-ice-renomination-01 §4).
            match nominate {
                NominateWith::No => {}
                NominateWith::UseCandidate => w.add(&UseCandidate)?,
                NominateWith::Nomination(value) => w.add(&NominationAttr(value))?,
            }
            // RFC 8445 §7.2.2: short-term credentials with the remote password; FINGERPRINT
            // is mandatory for ICE (RFC 8445 §7.2.2).
            w.add_message_integrity(remote_key)?;
            w.add_fingerprint()
        })();
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write a connectivity check");
            return None;
        }
        let transmit = Transmit {
            transport: local.transport,
            from: local.base,
            to: remote.candidate.address(),
            data,
        };
        // RFC 8489 §9.1.4: short-term credentials, so unsigned answers are discarded.
        let integrity =
            ResponseIntegrity::short_term((**remote_key).clone(), IntegrityAlgorithm::Sha1);
        // A check from a relayed candidate is wrapped for its TURN server when it (or its
        // retransmission) leaves `poll_transmit`; the transaction keeps the logical
        // addresses, so the answer is matched as coming from the peer.
        tracing::trace!(stream = %sid, to = %transmit.to, from = %transmit.from, ?nominate, "check");
        match requests::Requests::of(&mut self.requests, &self.config)
            .txns
            .start(now, transmit, context, Some(integrity), Some(rto))
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a connectivity check");
                None
            }
        }
    }

    /// Routes a received STUN message.
    pub(super) fn handle_stun(
        &mut self,
        now: Instant,
        transmit: &Transmit<&[u8]>,
        owner: Option<(StreamId, ComponentId)>,
    ) {
        let msg = match Message::parse(transmit.data) {
            Ok(msg) => msg,
            Err(StunParseError::UnknownComprehensionRequired(_)) => {
                tracing::debug!(from = %transmit.from, "STUN with unknown comprehension-required attributes dropped");
                return;
            }
            Err(e) => {
                tracing::debug!(from = %transmit.from, error = %e, "malformed STUN dropped");
                return;
            }
        };
        // RFC 8445 §7.2.2 / RFC 8489 §7.3: a wrong FINGERPRINT means it is not for us.
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            tracing::debug!(from = %transmit.from, "STUN with a bad FINGERPRINT dropped");
            return;
        }
        match msg.class() {
            MessageClass::Request if msg.method() == Method::BINDING => {
                if let Some((sid, component)) = owner {
                    self.handle_check(now, transmit, &msg, sid, component);
                }
            }
            MessageClass::Success | MessageClass::Error => {
                self.handle_response(now, transmit, &msg)
            }
            MessageClass::Indication => {} // keepalives
            MessageClass::Request => {
                tracing::debug!(method = ?msg.method(), "STUN request of another method dropped");
            }
        }
    }

    /// Answers a connectivity check from the peer (RFC 8445 §7.3).
    fn handle_check(
        &mut self,
        now: Instant,
        transmit: &Transmit<&[u8]>,
        msg: &Message<'_>,
        sid: StreamId,
        component: ComponentId,
    ) {
        let from = transmit.from;
        if self.answer_old_path_check(transmit, msg, sid, component) {
            // A consent check on the pair selected before an ICE restart.
            self.heard_on(now, sid, component, (transmit.to, from));
            self.lite_refresh_consent(now, sid, component, (transmit.to, from));
            return;
        }
        if self.comp(sid, component).map(|c| c.state) == Some(super::ComponentState::Failed) {
            // A failed component is over: its checks go unanswered (a restart would give
            // the stream new credentials).
            tracing::debug!(%from, stream = %sid, %component, "check for a failed component dropped");
            return;
        }
        match self.authenticate_check(msg, sid) {
            Ok(()) => {}
            Err(refusal) => {
                tracing::debug!(%from, ?refusal, "connectivity check refused");
                self.respond_error(transmit, msg, sid, refusal);
                return;
            }
        }
        let Ok(Some(Priority(priority))) = msg.attribute::<Priority>() else {
            // RFC 8445 §7.1.1 makes PRIORITY mandatory.
            self.respond_error(transmit, msg, sid, Refusal::BadRequest);
            return;
        };
        let controlling_attr = msg.attribute::<IceControlling>().ok().flatten();
        let controlled_attr = msg.attribute::<IceControlled>().ok().flatten();
        // RFC 8445 §7.3.1.1: role conflicts.
        match (controlling_attr, controlled_attr) {
            (Some(IceControlling(theirs)), None) if self.controlling => {
                if self.tie_breaker >= theirs {
                    self.respond_error(transmit, msg, sid, Refusal::RoleConflict);
                    return;
                }
                self.switch_role(false);
            }
            (None, Some(IceControlled(theirs))) if !self.controlling => {
                // A lite agent is always controlled (RFC 8445 §6.1.1): whatever the
                // tie-breakers, the full peer gets 487 and takes the controlling role
                // (RFC 8445 §7.2.5.1).
                if self.tie_breaker >= theirs && !self.lite() {
                    self.switch_role(true);
                } else {
                    self.respond_error(transmit, msg, sid, Refusal::RoleConflict);
                    return;
                }
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                // RFC 8445 §7.1.3: exactly one of the two.
                self.respond_error(transmit, msg, sid, Refusal::BadRequest);
                return;
            }
        }
        let use_candidate = msg.has_attribute(AttributeType::USE_CANDIDATE);
        // draft-thatcher-ice-renomination-01 §4: NOMINATION counts only on a stream that
        // uses renomination; elsewhere it is ignored, as any comprehension-optional
        // attribute. One of the wrong length is refused.
        let nomination = if self.renomination_active(sid) {
            match msg.attribute::<NominationAttr>() {
                Ok(n) => n.map(|NominationAttr(v)| v),
                Err(e) => {
                    tracing::debug!(%from, error = %e, "check with a malformed NOMINATION refused");
                    self.respond_error(transmit, msg, sid, Refusal::BadRequest);
                    return;
                }
            }
        } else {
            None
        };
        self.respond_success(transmit, msg, sid);

        // RFC 8445 §7.3.1.3: a source that is no known remote candidate is a new
        // peer-reflexive candidate.
        let s = &self.streams[sid];
        let ri = match s.remote_by_addr.get(&(component, from)) {
            Some(&ri) => Some(ri as usize),
            None => self.learn_remote_prflx(sid, component, transmit, priority),
        };
        let Some(ri) = ri else { return };
        // The peer is alive.
        self.heard_on(now, sid, component, (transmit.to, from));
        self.lite_refresh_consent(now, sid, component, (transmit.to, from));
        // RFC 8445 §7.3.1.4: the pair of the local base the check arrived on and the source.
        let s = &self.streams[sid];
        let pid = match s.checklist.find(transmit.to, from) {
            Some(pid) => Some(pid),
            None => {
                let li = s.local.iter().position(|l| {
                    l.base == transmit.to
                        && matches!(
                            l.candidate.candidate_type(),
                            CandidateType::Host | CandidateType::Relayed
                        )
                });
                li.and_then(|li| self.add_pair(sid, li, ri))
            }
        };
        let Some(pid) = pid else { return };
        let pair = &mut self.streams[sid].checklist[pid];
        // The peer proved it knows the password from this address: its data is welcome
        // on this pair.
        pair.verified = true;
        pair.stats.request_answered();
        if self.lite() {
            self.lite_incoming_check(now, sid, pid, use_candidate);
            return;
        }
        self.on_incoming_check(now, sid, pid, use_candidate, nomination);
    }

    /// The triggered-check and nomination rules for a check received on pair `pid`
    /// (RFC 8445 §7.3.1.4, §7.3.1.5), and renomination's: `nomination` is the NOMINATION
    /// value, read only on a stream that uses renomination.
    fn on_incoming_check(
        &mut self,
        now: Instant,
        sid: StreamId,
        pid: PairId,
        use_candidate: bool,
        nomination: Option<u32>,
    ) {
        self.streams[sid].checklist.note_peer_check();
        let controlled = !self.controlling;
        let component_connected = self
            .comp(sid, self.streams[sid].checklist[pid].component)
            .is_some_and(|c| c.selected.is_some());
        // draft-thatcher-ice-renomination-01 §4: the highest value nominates, whatever the
        // pair's priority; a lower or equal one (and USE-CANDIDATE beside it) is ignored.
        let (use_candidate, follow) = match nomination {
            Some(value) if controlled => {
                let highest = self.receive_nomination(sid, pid, value);
                (highest, highest)
            }
            // §4: any value takes precedence over the lack of one.
            None if use_candidate && controlled && self.has_received_nomination(sid, pid) => {
                tracing::debug!(stream = %sid, "USE-CANDIDATE without NOMINATION after a NOMINATION: ignored");
                (false, false)
            }
            _ => (use_candidate, false),
        };
        // Renomination: a check from the peer on a pair that beats the selected one is
        // answered with a check of ours, so the pair is valid when it is nominated.
        let probe =
            component_connected && self.renomination_active(sid) && self.beats_selected(sid, pid);
        let s = &mut self.streams[sid];
        let state = s.checklist[pid].state();
        if s.checklist[pid].unauthorized {
            // Our check on this pair was refused with 401. Refused after the peer showed it
            // knows our credentials, it stands (checking again would only be refused again,
            // and would keep the pair from ever failing); refused before, it may have been
            // a race (see MAX_UNAUTHORIZED_RETRIGGERS): check again, a few times at most.
            let pair = &mut s.checklist[pid];
            if pair.unauthorized_final
                || pair.unauthorized_retriggers >= super::pairs::MAX_UNAUTHORIZED_RETRIGGERS
            {
                return;
            }
            pair.unauthorized_retriggers += 1;
        }
        if use_candidate && controlled {
            // RFC 8445 §7.3.1.5: a nomination on a valid pair takes effect now; otherwise
            // when the triggered check succeeds.
            if state == PairState::Succeeded {
                if let Some(valid) = s.checklist[pid].valid_pair {
                    if follow {
                        self.follow_nomination(now, sid, valid);
                    } else {
                        self.nominate(now, sid, valid);
                    }
                }
                return;
            }
            s.checklist[pid].nomination = Nomination::OnSuccess;
        }
        match state {
            PairState::Succeeded => {}
            PairState::InProgress => {
                if component_connected && !(use_candidate && controlled) && !probe {
                    return;
                }
                // A check started but not sent yet (its Ta slot came in `handle_timeout`,
                // and the peer's check arrived before `poll_transmit`) goes out with the
                // next transmit: it is the triggered check already, with its
                // retransmissions. Cancelling it would leave the pair waiting a whole Ta
                // for its slot. One that claims a role this check just made us leave
                // (RFC 8445 §7.3.1.1) is dropped unsent, and a new check is triggered.
                if let Some(id) = s.checklist[pid].txn
                    && let Some(r) = self.requests.as_deref_mut()
                    && r.txns.unsent(&id)
                {
                    let claimed = match r.txns.context(&id) {
                        Some(Txn::Check { controlling, .. }) => Some(*controlling),
                        _ => None,
                    };
                    if claimed == Some(self.controlling) {
                        return;
                    }
                    r.cancel(&id);
                    s.checklist[pid].txn = None;
                    self.trigger(sid, pid);
                    return;
                }
                // RFC 8445 §7.3.1.4: stop retransmitting the check in progress (its answer is
                // still taken) and check again at once.
                if let Some(id) = s.checklist[pid].txn
                    && let Some(r) = self.requests.as_deref_mut()
                {
                    r.cancelled.insert(id);
                    r.txns.stop_retransmitting(&id);
                }
                self.trigger(sid, pid);
            }
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                if component_connected && !(use_candidate && controlled) && !probe {
                    return;
                }
                self.trigger(sid, pid);
            }
        }
    }

    fn learn_remote_prflx(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        transmit: &Transmit<&[u8]>,
        priority: u32,
    ) -> Option<usize> {
        let from = transmit.from;
        // RFC 8445 §7.3.1.3: priority from PRIORITY, any unique foundation.
        let foundation = format!(
            "prflx{}",
            crate::candidate::generate_ice_chars(&mut self.rng, 8)
        );
        // RFC 6544 §7.2: a check over a connection the peer opened comes from its active
        // side; one over a simultaneous open, from its `so` side.
        let transport = match transmit.transport {
            TransportType::Udp => CandidateTransport::Udp,
            TransportType::Tcp if self.tcp_checks.is_so_socket(transmit.to) => {
                CandidateTransport::Tcp(TcpType::So)
            }
            TransportType::Tcp => CandidateTransport::Tcp(TcpType::Active),
        };
        let candidate =
            Candidate::builder(foundation, CandidateType::PeerReflexive, transport, from)
                .component(component)
                .priority(priority.min(crate::candidate::MAX_PRIORITY))
                .build();
        let candidate = match candidate {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "cannot make a remote peer-reflexive candidate");
                return None;
            }
        };
        tracing::debug!(stream = %sid, %from, "remote peer-reflexive candidate learnt");
        self.add_remote(sid, RemoteCand { candidate })
    }

    /// RFC 8489 §9.1.3 and RFC 8445 §7.3: USERNAME must be "local ufrag:remote ufrag" and
    /// MESSAGE-INTEGRITY must verify with the local password.
    fn authenticate_check(&self, msg: &Message<'_>, sid: StreamId) -> Result<(), Refusal> {
        let s = &self.streams[sid];
        let Ok(Some(Username(username))) = msg.attribute::<Username<'_>>() else {
            return Err(Refusal::BadRequest);
        };
        if !msg.has_integrity() {
            return Err(Refusal::BadRequest);
        }
        let Some((local, remote)) = username.split_once(':') else {
            return Err(Refusal::Unauthenticated);
        };
        if local != s.local_creds.ufrag() {
            return Err(Refusal::Unauthenticated);
        }
        if let Some(creds) = &s.remote_creds
            && remote != creds.ufrag()
        {
            return Err(Refusal::Unauthenticated);
        }
        s.local_key
            .check(msg, s.local_creds.pwd())
            .map_err(|_| Refusal::Unauthenticated)
    }

    fn respond_success(&mut self, transmit: &Transmit<&[u8]>, msg: &Message<'_>, sid: StreamId) {
        if let Some(data) = signed_success(transmit, msg, &self.streams[sid].local_key) {
            self.queue_response(transmit, data);
        }
    }

    fn respond_error(
        &mut self,
        transmit: &Transmit<&[u8]>,
        msg: &Message<'_>,
        sid: StreamId,
        refusal: Refusal,
    ) {
        let mut data = Vec::with_capacity(64);
        let mut w = MessageWriter::new(
            &mut data,
            MessageType::new(MessageClass::Error, Method::BINDING),
            msg.transaction_id(),
        );
        let mut written = w.add(&ErrorCode::with_default_reason(refusal.code()));
        // A 487 answers an authenticated request and is signed (RFC 8445 §7.3.1.1); 400 and
        // 401 are not, since the request could not be authenticated (RFC 8489 §9.1.3).
        if refusal == Refusal::RoleConflict {
            written =
                written.and_then(|()| w.add_message_integrity_sha1(&self.streams[sid].local_key));
        }
        if written.and_then(|()| w.add_fingerprint()).is_ok() {
            self.queue_response(transmit, data);
        }
    }

    fn queue_response(&mut self, transmit: &Transmit<&[u8]>, data: Vec<u8>) {
        self.send_out(Transmit {
            transport: transmit.transport,
            from: transmit.to,
            to: transmit.from,
            data,
        });
    }

    /// Switches role and recomputes the pair priorities (RFC 8445 §7.2.5.1, §7.3.1.1).
    pub(super) fn switch_role(&mut self, controlling: bool) {
        if self.controlling == controlling {
            return;
        }
        if controlling && self.lite() {
            // RFC 8445 §6.1.1: a lite agent is always controlled.
            tracing::debug!("lite agent: the controlling role is refused");
            return;
        }
        tracing::info!(controlling, "role changed");
        self.controlling = controlling;
        self.recompute_priorities();
        for s in &mut self.streams {
            for c in &mut s.components {
                c.nominating = None;
            }
            for pid in s.checklist.ids() {
                s.checklist[pid].nomination = Nomination::None;
            }
        }
        self.events
            .push_back(AgentEvent::RoleChange { controlling });
    }

    fn handle_response(&mut self, now: Instant, transmit: &Transmit<&[u8]>, msg: &Message<'_>) {
        // An agent that never sent a request (a lite one) has no transaction to match.
        let Some(r) = self.requests.as_deref_mut() else {
            tracing::trace!(from = %transmit.from, "response to no transaction in flight dropped");
            return;
        };
        let outcome = match r.txns.handle_response(msg) {
            ResponseOutcome::Unknown => r.gather_txns.handle_response(msg),
            outcome => outcome,
        };
        if let ResponseOutcome::Matched { id, .. } | ResponseOutcome::Failed { id, .. } = &outcome {
            r.cancelled.remove(id);
        }
        match outcome {
            ResponseOutcome::Matched {
                id,
                context,
                to,
                from,
            } => {
                let symmetric = transmit.from == to && transmit.to == from;
                if symmetric && let Some((stream, pair, sent_at)) = context.checked_pair() {
                    self.streams[stream].checklist[pair]
                        .stats
                        .response(now, sent_at);
                }
                match context {
                    Txn::Check { .. } => {
                        self.on_check_response(now, transmit, msg, context, to, from);
                    }
                    Txn::Gather(job) => self.on_gather_response(now, msg, job),
                    Txn::Consent {
                        stream, component, ..
                    } => {
                        // RFC 7675 §5.1: only a success response from the address the check
                        // went to, to the address it came from, refreshes consent.
                        let success = symmetric && msg.class() == MessageClass::Success;
                        self.on_consent_response(now, stream, component, id, success);
                    }
                    Txn::OldPathConsent { stream, component } => {
                        let success = symmetric && msg.class() == MessageClass::Success;
                        self.on_old_path_consent_response(now, stream, component, id, success);
                    }
                }
            }
            ResponseOutcome::Failed { context, error, .. } => {
                tracing::debug!(%error, "response failed its integrity check");
                if let Txn::Check { stream, pair, .. } = context {
                    self.count_failure(stream, pair, |f| &mut f.other_errors);
                }
                self.on_txn_failed(now, context);
            }
            ResponseOutcome::Discarded(error) => {
                tracing::debug!(%error, from = %transmit.from, "response failed its integrity check: dropped");
                self.note_unsigned_401(msg);
            }
            ResponseOutcome::Unknown | ResponseOutcome::NotAResponse => {
                tracing::trace!(from = %transmit.from, "response to no transaction in flight dropped");
            }
        }
    }

    /// The network refused a datagram from `local` to `remote` (the caller saw an ICMP
    /// error or a send error): a check in flight on that pair fails at once, counted as
    /// unreachable in the component's [`FailureReason`](super::FailureReason).
    pub fn handle_unreachable(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        self.last_now = Some(now);
        for sid in self.streams.ids() {
            let Some(pid) = self.streams[sid].checklist.find(local, remote) else {
                continue;
            };
            let Some(id) = self.streams[sid].checklist[pid].txn else {
                continue;
            };
            let Some(r) = self.requests.as_deref_mut() else {
                return;
            };
            if r.cancel(&id).is_none() {
                continue;
            }
            tracing::debug!(stream = %sid, %local, %remote, "check unreachable: pair failed");
            self.count_failure(sid, pid, |f| &mut f.unreachable);
            self.fail_pair(sid, pid);
        }
    }

    /// Counts one failed check of pair `pid` in its component's [`CheckFailures`].
    pub(super) fn count_failure(
        &mut self,
        sid: StreamId,
        pid: PairId,
        field: impl FnOnce(&mut super::CheckFailures) -> &mut u32,
    ) {
        let s = &mut self.streams[sid];
        let component = s.checklist[pid].component;
        let counter = field(&mut s.components[component].check_failures);
        *counter = counter.saturating_add(1);
    }

    pub(super) fn on_timed_out(&mut self, now: Instant, id: TransactionId, context: Txn) {
        if self
            .requests
            .as_deref_mut()
            .is_some_and(|r| r.cancelled.remove(&id))
        {
            // RFC 8445 §7.3.1.4: a cancelled check's silence is no failure.
            return;
        }
        if let Txn::Check { stream, pair, .. } = context {
            // A check the peer refused with an unsigned 401 (which cannot be trusted, so it
            // did not end the transaction) counts as unauthorized rather than silent.
            if self.streams[stream].checklist[pair].unauthorized {
                self.count_failure(stream, pair, |f| &mut f.unauthorized);
            } else {
                self.count_failure(stream, pair, |f| &mut f.timeouts);
            }
        }
        self.on_txn_failed(now, context);
    }

    fn on_txn_failed(&mut self, now: Instant, context: Txn) {
        match context {
            Txn::Check { stream, pair, .. } => self.fail_pair(stream, pair),
            Txn::Gather(job) => {
                tracing::debug!(server = %job.server, "STUN server did not answer");
                self.gather_done(job.stream);
            }
            Txn::Consent {
                stream, component, ..
            }
            | Txn::OldPathConsent { stream, component } => {
                // Unanswered: consent is not refreshed, and expires in its own time.
                tracing::debug!(%stream, %component, "consent check unanswered");
            }
        }
        let _ = now;
    }

    /// RFC 8489 §9.1.4 discards an unsigned error response to a request made with
    /// short-term credentials, so an unsigned 401 does not end a check. It is still noted:
    /// if the check then times out, the peer most likely refused our credentials, and the
    /// failure reason says so.
    fn note_unsigned_401(&mut self, msg: &Message<'_>) {
        if msg.class() != MessageClass::Error
            || msg
                .attribute::<ErrorCode<'_>>()
                .ok()
                .flatten()
                .map(|c| c.code)
                != Some(ErrorCode::UNAUTHENTICATED)
        {
            return;
        }
        if let Some(&Txn::Check { stream, pair, .. }) = self
            .requests
            .as_ref()
            .and_then(|r| r.txns.context(&msg.transaction_id()))
        {
            tracing::debug!(%stream, "check refused with 401 Unauthenticated");
            self.streams[stream].checklist.note_unauthorized(pair);
        }
    }

    fn fail_pair(&mut self, sid: StreamId, pid: PairId) {
        let s = &mut self.streams[sid];
        if s.checklist[pid].state() == PairState::InProgress {
            s.checklist.set_state(pid, PairState::Failed);
        }
        s.checklist[pid].txn = None;
        let component = s.checklist[pid].component;
        let Some(c) = s.components.get_mut(component) else {
            return;
        };
        if c.nominating == Some(pid) {
            c.nominating = None;
            s.checklist[pid].nomination = Nomination::None;
        }
        self.check_failures(sid);
    }

    /// RFC 8445 §7.2.5: a response to a connectivity check.
    fn on_check_response(
        &mut self,
        now: Instant,
        transmit: &Transmit<&[u8]>,
        msg: &Message<'_>,
        context: Txn,
        sent_to: SocketAddr,
        sent_from: SocketAddr,
    ) {
        let Txn::Check {
            stream: sid,
            pair: pid,
            controlling,
            use_candidate,
            priority,
            ..
        } = context
        else {
            return;
        };
        if self.streams[sid].checklist[pid]
            .txn
            .is_some_and(|t| t == msg.transaction_id())
        {
            self.streams[sid].checklist[pid].txn = None;
        }
        // RFC 8445 §7.2.5.2.1: the addresses must be symmetric. The transaction keeps the
        // check's logical addresses (a relayed check is wrapped only on its way out), so this
        // holds for relayed pairs too.
        if transmit.from != sent_to || transmit.to != sent_from {
            tracing::debug!(
                stream = %sid,
                "check response from a non-symmetric address: pair failed"
            );
            self.count_failure(sid, pid, |f| &mut f.other_errors);
            self.fail_pair(sid, pid);
            return;
        }
        if msg.class() == MessageClass::Error {
            let code = msg
                .attribute::<ErrorCode<'_>>()
                .ok()
                .flatten()
                .map(|c| c.code);
            if code == Some(ErrorCode::ROLE_CONFLICT) {
                self.count_failure(sid, pid, |f| &mut f.role_conflicts);
                // RFC 8445 §7.2.5.1: switch role if we still hold the role the check claimed,
                // and check the pair again.
                if self.controlling == controlling {
                    self.switch_role(!controlling);
                }
                self.trigger(sid, pid);
                return;
            }
            tracing::debug!(
                stream = %sid,
                ?code,
                "check answered with an error: pair failed"
            );
            // RFC 8445 §7.2.5.2.4: an unrecoverable error fails the pair.
            if code == Some(ErrorCode::UNAUTHENTICATED) {
                self.count_failure(sid, pid, |f| &mut f.unauthorized);
            } else {
                self.count_failure(sid, pid, |f| &mut f.other_errors);
            }
            self.fail_pair(sid, pid);
            return;
        }
        let Ok(Some(XorMappedAddress(mapped))) = msg.attribute::<XorMappedAddress>() else {
            tracing::debug!(
                stream = %sid,
                "check success without XOR-MAPPED-ADDRESS: pair failed"
            );
            self.count_failure(sid, pid, |f| &mut f.other_errors);
            self.fail_pair(sid, pid);
            return;
        };
        // A valid pair's addresses are verified for data, and the peer is alive on them.
        let component = self.streams[sid].checklist[pid].component;
        self.streams[sid].checklist[pid].verified = true;
        self.heard_on(now, sid, component, (sent_from, sent_to));
        let valid = self.valid_pair_for(sid, pid, mapped, priority);
        let s = &mut self.streams[sid];
        if s.checklist[pid].state() != PairState::Succeeded {
            s.checklist.set_state(pid, PairState::Succeeded);
        }
        let component = s.checklist[pid].component;
        let foundation = s.checklist[pid].foundation;
        let Some(valid) = valid else {
            self.fail_pair(sid, pid);
            return;
        };
        let s = &mut self.streams[sid];
        s.checklist[pid].valid_pair = Some(valid);
        s.checklist[valid].valid = true;
        s.checklist.set_state(valid, PairState::Succeeded);
        self.note_valid(now, sid, component);
        // RFC 8445 §7.2.5.3.3: unfreeze the foundation everywhere.
        self.unfreeze_foundation(foundation);
        let s = &mut self.streams[sid];
        if use_candidate && controlling && self.controlling {
            // The nominating check succeeded (RFC 8445 §8.1.1): the nomination is done.
            s.checklist[pid].nomination = Nomination::None;
            if s.components[component].nominating == Some(pid) {
                s.components[component].nominating = None;
            }
            self.nominate(now, sid, valid);
            // A better pair may have succeeded meanwhile.
            self.renominate_best(sid, component);
        } else if !self.controlling && s.checklist[pid].nomination == Nomination::OnSuccess {
            s.checklist[pid].nomination = Nomination::None;
            if !self.renomination_active(sid) {
                self.nominate(now, sid, valid);
            } else if self.is_nomination_target(sid, pid) {
                self.follow_nomination(now, sid, valid);
            }
        } else if controlling && self.controlling {
            self.run_nominations(now);
            self.maybe_renominate(sid, pid, valid);
        }
    }

    /// RFC 8445 §7.2.5.3.1, §7.2.5.3.2: the valid pair a success response produces. Its local
    /// candidate is the one whose address is the mapped address, a new local peer-reflexive
    /// candidate if there is none; its remote candidate is the checked pair's.
    fn valid_pair_for(
        &mut self,
        sid: StreamId,
        pid: PairId,
        mapped: SocketAddr,
        priority: u32,
    ) -> Option<PairId> {
        let s = &self.streams[sid];
        let pair = &s.checklist[pid];
        if let Some(v) = pair.valid_pair {
            return Some(v);
        }
        let base = s.local[pair.local].base;
        if s.local[pair.local].transport == TransportType::Tcp {
            // Over ICE-TCP the connection fixes the 5-tuple: the checked pair is the valid
            // one, whatever address a NAT gave the connection (see `icetcp.rs`).
            return Some(pid);
        }
        let component = pair.component;
        let mapped_addr = crate::candidate::sdp_address(mapped);
        let known = s.local.iter().position(|l| {
            l.candidate.component() == component
                && l.transport == TransportType::Udp
                && (l.candidate.address() == mapped_addr)
        });
        let li = match known {
            Some(li) => li,
            None => {
                // A new local peer-reflexive candidate, with the PRIORITY the check sent.
                let foundation = self.foundations.foundation(FoundationKey::new(
                    CandidateType::PeerReflexive,
                    TransportType::Udp,
                    base.ip(),
                    None,
                ));
                let candidate = Candidate::builder(
                    foundation,
                    CandidateType::PeerReflexive,
                    CandidateTransport::Udp,
                    mapped,
                )
                .component(component)
                .priority(priority)
                .related_address(base)
                .build()
                .ok()?;
                tracing::debug!(stream = %sid, %mapped, "local peer-reflexive candidate learnt");
                let s = &mut self.streams[sid];
                push_compact(
                    &mut s.local,
                    LocalCand {
                        candidate,
                        base,
                        transport: TransportType::Udp,
                    },
                );
                s.local.len() - 1
            }
        };
        let s = &mut self.streams[sid];
        let pair = &s.checklist[pid];
        if li == pair.local {
            return Some(pid);
        }
        let remote = pair.remote;
        let priority = super::checklist::pair_priority(
            self.controlling,
            s.local[li].candidate.priority(),
            s.remote[remote].candidate.priority(),
        );
        let valid = pair.valid_from(li, priority);
        Some(s.checklist.add_valid(valid))
    }
}

/// A Binding success response to the check `msg` that came in `transmit` (RFC 8445
/// §7.3.1.2: XOR-MAPPED-ADDRESS is the source of the request), signed with `key`, the
/// local password of the credentials the check used.
pub(super) fn signed_success(
    transmit: &Transmit<&[u8]>,
    msg: &Message<'_>,
    key: &Sha1Key,
) -> Option<Vec<u8>> {
    let mut data = Vec::with_capacity(80);
    let mut w = MessageWriter::new(
        &mut data,
        MessageType::BINDING_SUCCESS,
        msg.transaction_id(),
    );
    w.add(&XorMappedAddress(transmit.from))
        .and_then(|()| w.add_message_integrity_sha1(key))
        .and_then(|()| w.add_fingerprint())
        .ok()?;
    Some(data)
}
