//! Sans-IO STUN client transactions: retransmission, timeouts and response matching
//! (RFC 8489 §6.2, §6.3).
//!
//! A [`Transactions`] set holds the requests in flight. Start one with
//! [`Transactions::start`], send what [`Transactions::poll_transmit`] yields, call
//! [`Transactions::handle_timeout`] when [`Transactions::poll_timeout`] says, and give every
//! received response to [`Transactions::handle_response`]. Failures come out of
//! [`Transactions::poll_event`].
//!
//! Over UDP a request is retransmitted after RTO, 2·RTO, 4·RTO, ... until Rc requests have
//! been sent, and the transaction fails Rm·RTO after the last one (RFC 8489 §6.2.1: with
//! the defaults, requests at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s and failure at 39.5 s).
//! Over TCP the request is sent once and the transaction fails after Ti = 39.5 s
//! (RFC 8489 §6.2.2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::integrity::{IntegrityAlgorithm, IntegrityKey};
use super::message::{Message, MessageClass, MessageHeader, TransactionId};
use super::{IntegrityError, StunParseError};
use crate::compact::{Queue, VecMap, VecSet};
use crate::transmit::{Transmit, TransportType};

/// The longest wait this module schedules: larger configured values are clamped to it,
/// so that no deadline arithmetic can overflow.
pub const MAX_RTO: Duration = Duration::from_secs(24 * 3600);

/// Retransmission parameters (RFC 8489 §6.2.1, §6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// Initial retransmission timeout. Default 500 ms.
    pub rto: Duration,
    /// Rc: the most requests sent over UDP, first one included. Default 7.
    pub max_requests: u32,
    /// Rm: after the last request, wait Rm·RTO before failing. Default 16.
    pub last_wait_multiplier: u32,
    /// Ti: how long a request over a reliable transport may wait. Default 39.5 s.
    pub reliable_timeout: Duration,
}

impl RetransmitConfig {
    /// How long a transaction over `transport` waits before it times out: Ti for reliable
    /// transports, and for UDP the sum of the Rc - 1 doubling intervals plus Rm·RTO
    /// (39.5 s with the defaults, RFC 8489 §6.2.1).
    pub fn transaction_timeout(&self, transport: TransportType) -> Duration {
        if transport.is_reliable() {
            return self.reliable_timeout.min(MAX_RTO);
        }
        let doublings = (1u32 << self.max_requests.saturating_sub(1).min(20)) - 1;
        self.rto
            .saturating_mul(doublings.saturating_add(self.last_wait_multiplier))
            .min(MAX_RTO)
    }
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        Self {
            rto: Duration::from_millis(500),
            max_requests: 7,
            last_wait_multiplier: 16,
            reliable_timeout: Duration::from_millis(39_500),
        }
    }
}

/// How to check a response's integrity: the key, the algorithm the request used, and
/// whether the request used long-term credentials.
#[derive(Debug, Clone)]
pub struct ResponseIntegrity {
    /// The key.
    pub key: IntegrityKey,
    /// The algorithm whose attribute the response must carry (RFC 8489 §9.1.4, §9.2.5).
    pub algorithm: IntegrityAlgorithm,
    /// True for the long-term mechanism, where unsigned 401 and 438 answers are accepted
    /// because the server cannot sign them (RFC 8489 §9.2.5). With short-term credentials
    /// (ICE checks) every response without valid integrity is discarded (RFC 8489 §9.1.4).
    pub long_term: bool,
}

impl ResponseIntegrity {
    /// Short-term credentials: every response must be signed with `key` (RFC 8489 §9.1.4).
    pub fn short_term(key: IntegrityKey, algorithm: IntegrityAlgorithm) -> Self {
        Self {
            key,
            algorithm,
            long_term: false,
        }
    }

    /// Long-term credentials: as short-term, except that unsigned 401 and 438 answers pass
    /// to the long-term mechanism (RFC 8489 §9.2.5).
    pub fn long_term(key: IntegrityKey, algorithm: IntegrityAlgorithm) -> Self {
        Self {
            key,
            algorithm,
            long_term: true,
        }
    }
}

/// Why a transaction could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The bytes are not a STUN request.
    NotARequest,
    /// The request could not be parsed.
    Parse(StunParseError),
    /// A transaction with this id is already in flight.
    DuplicateId(TransactionId),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotARequest => write!(f, "message is not a STUN request"),
            Self::Parse(_) => write!(f, "the request does not parse"),
            Self::DuplicateId(id) => write!(f, "transaction {id:?} is already in flight"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Parse(e) => Some(e),
            _ => None,
        }
    }
}

/// What became of a received response.
#[derive(Debug, PartialEq, Eq)]
pub enum ResponseOutcome<T> {
    /// The response ends transaction `id`, which carried `context`.
    Matched {
        /// The transaction.
        id: TransactionId,
        /// The context given to [`Transactions::start`].
        context: T,
        /// The address the request was sent to.
        to: SocketAddr,
        /// The local address it was sent from.
        from: SocketAddr,
    },
    /// No transaction in flight has this id: drop the message.
    Unknown,
    /// The message is a request or indication, not a response.
    NotAResponse,
    /// The response failed its integrity check and was discarded as if never received;
    /// the transaction goes on (RFC 8489 §9.1.4, §9.2.5, unreliable transports).
    Discarded(IntegrityError),
    /// The response failed its integrity check over a reliable transport, which fails the
    /// transaction (RFC 8489 §9.1.4, §9.2.5).
    Failed {
        /// The transaction.
        id: TransactionId,
        /// Its context.
        context: T,
        /// The integrity failure.
        error: IntegrityError,
    },
}

/// A transaction ended without a response.
#[derive(Debug, PartialEq, Eq)]
pub enum TransactionEvent<T> {
    /// No response arrived in time (RFC 8489 §6.2.1, §6.2.2).
    TimedOut {
        /// The transaction.
        id: TransactionId,
        /// Its context.
        context: T,
    },
}

#[derive(Debug)]
struct Pending<T> {
    context: T,
    transport: TransportType,
    from: SocketAddr,
    to: SocketAddr,
    request: Vec<u8>,
    integrity: Option<ResponseIntegrity>,
    rto: Duration,
    /// Requests sent so far.
    sent: u32,
    /// When the next retransmission or the failure is due.
    due: Instant,
    /// True while a transmission of this transaction waits in `to_send`. An id can sit in
    /// `to_send` after its transaction ended (and even after a new one reused the id), so
    /// only this flag says whether an entry there is live.
    queued: bool,
    /// Retransmissions were stopped before the first transmission: it is sent once, and
    /// the transaction times out one RTO later.
    no_retransmit: bool,
}

/// The client transactions in flight, each carrying a caller's `context` (e.g. which
/// check or server it belongs to).
///
/// Look-ups by transaction id and by due time are O(log n). The tables are boxed on the
/// first transaction: an agent that never starts one (an ICE-lite server's, or the
/// gathering set of an agent without STUN servers) keeps a pointer for them.
#[derive(Debug)]
pub struct Transactions<T> {
    config: RetransmitConfig,
    state: Option<Box<State<T>>>,
}

/// The tables of [`Transactions`].
#[derive(Debug)]
struct State<T> {
    pending: VecMap<TransactionId, Pending<T>>,
    timers: VecSet<(Instant, TransactionId)>,
    to_send: Queue<TransactionId>,
    events: Queue<TransactionEvent<T>>,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        Self {
            pending: VecMap::new(),
            timers: VecSet::new(),
            to_send: Queue::new(),
            events: Queue::new(),
        }
    }
}

impl<T> State<T> {
    fn remove(&mut self, id: &TransactionId) -> Pending<T> {
        let p = self
            .pending
            .remove(id)
            .expect("caller checked that the transaction is pending");
        self.timers.remove(&(p.due, *id));
        p
    }
}

impl<T> Transactions<T> {
    /// An empty set using `config` for every transaction.
    pub fn new(config: RetransmitConfig) -> Self {
        Self {
            config,
            state: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RetransmitConfig {
        &self.config
    }

    /// Number of transactions in flight.
    pub fn len(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.pending.len())
    }

    /// True when no transaction is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if transaction `id` is in flight.
    pub fn contains(&self, id: &TransactionId) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.pending.contains_key(id))
    }

    /// The context of transaction `id`, while it is in flight.
    pub fn context(&self, id: &TransactionId) -> Option<&T> {
        self.state.as_ref()?.pending.get(id).map(|p| &p.context)
    }

    /// Starts a transaction for the request in `transmit`, sent at once (the first
    /// [`Self::poll_transmit`] yields it). `integrity`, when given, is how responses are
    /// authenticated. `rto` overrides the configured RTO for this transaction (ICE paces
    /// its checks with RTO = max(500 ms, Ta·pairs), RFC 8445 §14.3).
    pub fn start(
        &mut self,
        now: Instant,
        transmit: Transmit<Vec<u8>>,
        context: T,
        integrity: Option<ResponseIntegrity>,
        rto: Option<Duration>,
    ) -> Result<TransactionId, StartError> {
        let header = MessageHeader::parse(&transmit.data).map_err(StartError::Parse)?;
        if header.message_type.class != MessageClass::Request {
            return Err(StartError::NotARequest);
        }
        let id = header.transaction_id;
        let rto = rto.unwrap_or(self.config.rto).min(MAX_RTO);
        let s = self.state.get_or_insert_with(Box::default);
        if s.pending.contains_key(&id) {
            return Err(StartError::DuplicateId(id));
        }
        s.pending.insert(
            id,
            Pending {
                context,
                transport: transmit.transport,
                from: transmit.from,
                to: transmit.to,
                request: transmit.data,
                integrity,
                rto,
                sent: 0,
                due: now,
                queued: true,
                no_retransmit: false,
            },
        );
        s.to_send.push_back(id);
        Ok(id)
    }

    /// Abandons transaction `id` and returns its context. Responses to it are then
    /// [`ResponseOutcome::Unknown`].
    pub fn cancel(&mut self, id: &TransactionId) -> Option<T> {
        let s = self.state.as_deref_mut()?;
        let p = s.pending.remove(id)?;
        s.timers.remove(&(p.due, *id));
        Some(p.context)
    }

    /// Abandons every transaction whose context `matches`, and returns their ids.
    pub fn cancel_where(&mut self, mut matches: impl FnMut(&T) -> bool) -> Vec<TransactionId> {
        let Some(s) = self.state.as_deref() else {
            return Vec::new();
        };
        let ids: Vec<TransactionId> = s
            .pending
            .iter()
            .filter(|(_, p)| matches(&p.context))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.cancel(id);
        }
        ids
    }

    /// True while transaction `id` is in flight and its request has not been sent yet
    /// (the next [`Self::poll_transmit`] sends it).
    pub fn unsent(&self, id: &TransactionId) -> bool {
        self.state
            .as_ref()
            .and_then(|s| s.pending.get(id))
            .is_some_and(|p| p.sent == 0)
    }

    /// Stops retransmitting transaction `id` but keeps it open: a response is still
    /// matched until it times out when its next retransmission would have been due
    /// (RFC 8445 §7.3.1.4 cancels checks this way). A request not sent yet is still sent
    /// once (stopping retransmissions does not drop the first transmission), and times out
    /// one RTO after it. Returns false if `id` is not in flight.
    pub fn stop_retransmitting(&mut self, id: &TransactionId) -> bool {
        let max_requests = self.config.max_requests;
        let Some(s) = self.state.as_deref_mut() else {
            return false;
        };
        let Some(p) = s.pending.get_mut(id) else {
            return false;
        };
        if p.sent == 0 {
            // Still queued: its first (and now only) transmission goes out as planned.
            p.no_retransmit = true;
            return true;
        }
        p.sent = p.sent.max(max_requests);
        p.queued = false;
        if !s.timers.contains(&(p.due, *id)) {
            s.timers.insert((p.due, *id));
        }
        true
    }

    /// The next request (or retransmission) to send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit<Vec<u8>>> {
        let config = self.config;
        let s = self.state.as_deref_mut()?;
        while let Some(id) = s.to_send.pop_front() {
            let Some(p) = s.pending.get_mut(&id).filter(|p| p.queued) else {
                continue; // completed or cancelled (and maybe restarted) since it was queued
            };
            p.queued = false;
            p.sent += 1;
            s.timers.remove(&(p.due, id));
            if p.no_retransmit {
                // Stopped before it was first sent: no retransmission follows, and the
                // transaction ends when the first would have been due.
                p.sent = p.sent.max(config.max_requests);
            }
            p.due = if p.transport.is_reliable() {
                // RFC 8489 §6.2.2: reliable transports are not retransmitted; fail after Ti.
                now + config.reliable_timeout.min(MAX_RTO)
            } else if p.no_retransmit {
                now + p.rto
            } else if p.sent >= config.max_requests {
                // RFC 8489 §6.2.1: after the last request, wait Rm·RTO.
                now + p
                    .rto
                    .saturating_mul(config.last_wait_multiplier)
                    .min(MAX_RTO)
            } else {
                // RFC 8489 §6.2.1: the interval doubles after each transmission.
                now + p
                    .rto
                    .saturating_mul(1u32 << (p.sent - 1).min(20))
                    .min(MAX_RTO)
            };
            s.timers.insert((p.due, id));
            return Some(Transmit {
                transport: p.transport,
                from: p.from,
                to: p.to,
                data: p.request.clone(),
            });
        }
        None
    }

    /// When [`Self::handle_timeout`] must next be called. Changes only through the other
    /// methods of this set.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self.state.as_deref()?;
        if !s.to_send.is_empty() {
            // Queued transmissions are due at once; their time is the earliest due time.
            return s
                .to_send
                .iter()
                .filter_map(|id| s.pending.get(id).filter(|p| p.queued).map(|p| p.due))
                .min()
                .or_else(|| s.timers.first().map(|(t, _)| *t));
        }
        s.timers.first().map(|(t, _)| *t)
    }

    /// Retransmits the requests that are due and fails the transactions that timed out.
    pub fn handle_timeout(&mut self, now: Instant) {
        let max_requests = self.config.max_requests;
        let Some(s) = self.state.as_deref_mut() else {
            return;
        };
        while let Some(&(due, id)) = s.timers.first() {
            if due > now {
                break;
            }
            s.timers.pop_first();
            let Some(p) = s.pending.get_mut(&id) else {
                continue;
            };
            if p.transport.is_reliable() || p.sent >= max_requests {
                if let Some(p) = s.pending.remove(&id) {
                    s.events.push_back(TransactionEvent::TimedOut {
                        id,
                        context: p.context,
                    });
                }
            } else if !p.queued {
                p.queued = true;
                s.to_send.push_back(id);
            }
        }
    }

    /// Matches a received message against the transactions in flight. A success or error
    /// response with a known id, whose integrity checks out when the request asked for
    /// it, ends its transaction.
    ///
    /// Error responses 401 and 438 without integrity are accepted, since a server
    /// cannot sign them before authenticating the client (RFC 8489 §9.2.5); a request
    /// made with long-term credentials handles them through
    /// [`LongTermAuth`].
    pub fn handle_response(&mut self, msg: &Message<'_>) -> ResponseOutcome<T> {
        if !msg.class().is_response() {
            return ResponseOutcome::NotAResponse;
        }
        let id = msg.transaction_id();
        let Some(s) = self.state.as_deref_mut() else {
            return ResponseOutcome::Unknown;
        };
        let Some(p) = s.pending.get(&id) else {
            return ResponseOutcome::Unknown;
        };
        if let Some(Err(error)) = p
            .integrity
            .as_ref()
            .map(|integrity| check_response_integrity(msg, integrity))
        {
            if !p.transport.is_reliable() {
                return ResponseOutcome::Discarded(error);
            }
            let p = s.remove(&id);
            return ResponseOutcome::Failed {
                id,
                context: p.context,
                error,
            };
        }
        let p = s.remove(&id);
        ResponseOutcome::Matched {
            id,
            context: p.context,
            to: p.to,
            from: p.from,
        }
    }

    /// The next transaction failure.
    pub fn poll_event(&mut self) -> Option<TransactionEvent<T>> {
        self.state.as_deref_mut()?.events.pop_front()
    }
}

/// Checks a response against the integrity its request asked for. With long-term
/// credentials, unsigned 401 and 438 error responses pass: the long-term mechanism handles
/// them (RFC 8489 §9.2.5).
fn check_response_integrity(
    msg: &Message<'_>,
    integrity: &ResponseIntegrity,
) -> Result<(), IntegrityError> {
    let unsigned_auth_error = integrity.long_term
        && msg.class() == MessageClass::Error
        && !msg.has_integrity()
        && msg
            .attribute::<super::attr::ErrorCode<'_>>()
            .is_ok_and(|code| code.is_some_and(|c| matches!(c.code, 401 | 438)));
    if unsigned_auth_error {
        return Ok(());
    }
    msg.check_integrity_with(&integrity.key, integrity.algorithm)
}

pub use super::auth::{AuthError, AuthOutcome, LongTermAuth};

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
