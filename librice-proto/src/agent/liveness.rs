//! Liveness of a component once it has a selected pair: consent freshness (RFC 7675), the
//! Disconnected state, the controlled side's wait for a nomination, failure with a reason,
//! and the filter that delivers data only from verified remote addresses.
//!
//! # Timers (all per component)
//! - consent check: every 0.8x to 1.2x of the consent interval (RFC 7675 §5.1), a new
//!   authenticated Binding request on the selected pair; the one before is abandoned if
//!   still unanswered (each check has a new transaction id, RFC 7675 §5.1), and until then
//!   it is retransmitted on the usual RTO schedule (500 ms, doubling);
//! - consent expiry: the consent timeout after the last refresh (RFC 7675 §5.1: 30 s);
//! - Disconnected: the Disconnected timeout after the peer was last heard on the selected
//!   pair (an authenticated response, an authenticated check of theirs, or data);
//! - nomination: the nomination timeout after the first valid pair, controlled side only.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::Rng;

use super::pairs::PairState;
use super::{Agent, AgentEvent, ComponentId, ComponentState, FailureReason, PairId, StreamId, Txn};
use crate::stun::TransactionId;

/// The liveness state of a component with a selected pair. Made fresh at each selection:
/// the check that selected the pair is the first consent (RFC 7675 §5.1).
///
/// Invariant: `pair` is the component's selected pair in the stream's current check list
/// (an ICE restart and the loss of the pair take the state away), so its (local base,
/// remote address), the key data and checks on it arrive with, is
/// [`StreamState::pair_key`](super::StreamState::pair_key) of `pair`: it is not kept
/// twice (64 B).
#[derive(Debug, Clone)]
pub(super) struct Liveness {
    /// The selected pair.
    pub pair: PairId,
    /// When consent was last refreshed.
    consent_at: Instant,
    /// When the next consent check goes out.
    next_check: Instant,
    /// The consent check in flight, if any.
    in_flight: Option<TransactionId>,
    /// When the peer was last heard on the selected pair.
    heard_at: Instant,
}

impl Liveness {
    pub(super) fn new(now: Instant, pair: PairId, first_check: Instant) -> Self {
        Self {
            pair,
            consent_at: now,
            next_check: first_check,
            in_flight: None,
            heard_at: now,
        }
    }

    /// When consent was last refreshed, and when the next consent check goes out.
    pub(super) fn times(&self) -> (Instant, Instant) {
        (self.consent_at, self.next_check)
    }

    /// When consent expires.
    pub(super) fn expiry(&self, timeout: Duration) -> Instant {
        self.consent_at + timeout
    }

    /// Consent is fresh as of `now` (a lite agent's: the peer's check on the pair).
    pub(super) fn refresh_consent(&mut self, now: Instant) {
        self.consent_at = self.consent_at.max(now);
    }

    /// The earliest instant one of this component's liveness timers needs the agent.
    fn deadline(&self, agent: &Agent, state: ComponentState) -> Option<Instant> {
        if !agent.config.consent_freshness {
            return None;
        }
        let expiry = self.expiry(agent.config.consent_timeout);
        // A lite agent sends no consent checks: only the expiry counts.
        let mut t = if agent.lite() {
            expiry
        } else {
            self.next_check.min(expiry)
        };
        if state == ComponentState::Connected {
            t = t.min(self.heard_at + agent.config.disconnected_timeout);
        }
        Some(t)
    }
}

/// Draws the delay to the next consent check: 0.8x to 1.2x of `interval` (RFC 7675 §5.1).
pub(super) fn consent_delay(rng: &mut impl Rng, interval: Duration) -> Duration {
    let permille = 800 + u128::from(rng.next_u32() % 401);
    let nanos = interval.as_nanos() * permille / 1000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl Agent {
    /// Starts liveness on a newly selected pair.
    pub(super) fn start_liveness(&mut self, now: Instant, sid: StreamId, pid: PairId) {
        let delay = consent_delay(&mut self.rng, self.config.consent_interval);
        let s = &mut self.streams[sid];
        let component = s.checklist[pid].component;
        if let Some(old) = s.components[component]
            .live
            .take()
            .and_then(|l| l.in_flight)
        {
            self.cancel_txn(&old);
        }
        self.streams[sid].components[component].live = Some(Liveness::new(now, pid, now + delay));
    }

    /// The earliest liveness deadline over all components.
    pub(super) fn liveness_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for s in &self.streams {
            for c in &s.components {
                let t = match (&c.live, c.state) {
                    (_, ComponentState::Failed) => None,
                    (Some(live), state) => live.deadline(self, state),
                    (None, ComponentState::Connecting) if !self.controlling => {
                        c.first_valid_at.map(|t| t + self.config.nomination_timeout)
                    }
                    (None, _) => None,
                };
                if let Some(t) = t {
                    earliest = Some(earliest.map_or(t, |e| e.min(t)));
                }
            }
        }
        earliest
    }

    /// Runs the liveness timers that are due.
    pub(super) fn run_liveness(&mut self, now: Instant) {
        for sid in self.streams.ids() {
            for component in self.streams[sid].components.ids() {
                let c = &self.streams[sid].components[component];
                if c.state == ComponentState::Failed {
                    continue;
                }
                if c.live.is_none() {
                    // Controlled: the controlling peer must nominate in time.
                    if !self.controlling
                        && c.state == ComponentState::Connecting
                        && c.first_valid_at
                            .is_some_and(|t| t + self.config.nomination_timeout <= now)
                    {
                        tracing::info!(stream = %sid, %component, "no nomination came in time");
                        self.fail_component(sid, component, FailureReason::NominationTimeout);
                    }
                    continue;
                }
                if !self.config.consent_freshness {
                    continue;
                }
                if self.expire_consent(now, sid, component) {
                    continue;
                }
                let c = &self.streams[sid].components[component];
                let Some(live) = &c.live else { continue };
                let (next_check, heard_at, state) = (live.next_check, live.heard_at, c.state);
                // A lite agent sends no consent checks (RFC 8445 §2.5).
                if next_check <= now && !self.lite() {
                    self.send_consent_check(now, sid, component);
                }
                if state == ComponentState::Connected
                    && heard_at + self.config.disconnected_timeout <= now
                {
                    tracing::info!(stream = %sid, %component, "peer silent: disconnected");
                    self.set_component_state(sid, component, ComponentState::Disconnected);
                }
            }
        }
    }

    /// Fails the component if its consent has expired (RFC 7675 §5.1); true if it has.
    pub(super) fn expire_consent(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
    ) -> bool {
        let timeout = self.config.consent_timeout;
        let Some(c) = self.comp(sid, component) else {
            return false;
        };
        let expired = self.config.consent_freshness
            && c.state != ComponentState::Failed
            && c.live.as_ref().is_some_and(|l| l.expiry(timeout) <= now);
        if expired {
            tracing::info!(stream = %sid, %component, "consent expired");
            self.events.push_back(AgentEvent::ConsentLost {
                stream: sid,
                component,
            });
            self.fail_component(sid, component, FailureReason::ConsentLost);
        }
        expired
    }

    /// Sends a consent check on the selected pair (RFC 7675 §5.1): an authenticated Binding
    /// request like a connectivity check, with a new transaction id.
    fn send_consent_check(&mut self, now: Instant, sid: StreamId, component: ComponentId) {
        let delay = consent_delay(&mut self.rng, self.config.consent_interval);
        let Some(live) = self.streams[sid].components[component].live.as_mut() else {
            return;
        };
        live.next_check = now + delay;
        let pid = live.pair;
        if let Some(old) = live.in_flight.take() {
            // Unanswered: abandoned for the new one.
            self.cancel_txn(&old);
        }
        let context = Txn::Consent {
            stream: sid,
            component,
            pair: pid,
            sent_at: now,
        };
        let rto = self.config.check_retransmit.rto;
        if let Some(id) = self.start_check_transaction(
            now,
            sid,
            pid,
            super::renomination::NominateWith::No,
            context,
            rto,
        ) {
            self.streams[sid].checklist[pid]
                .stats
                .consent_request_sent();
            let c = &mut self.streams[sid].components[component];
            c.consent_stats.requests_sent += 1;
            if let Some(live) = c.live.as_mut() {
                live.in_flight = Some(id);
            }
            tracing::trace!(stream = %sid, %component, "consent check");
        }
    }

    /// A response to a consent check, already matched to its transaction and found to come
    /// from the address the check went to (RFC 7675 §5.1: only an authenticated success
    /// response from the pair's remote address refreshes consent).
    pub(super) fn on_consent_response(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        id: TransactionId,
        success: bool,
    ) {
        let Some(c) = self.streams[sid].components.get_mut(component) else {
            return;
        };
        let Some(live) = c.live.as_mut() else { return };
        if live.in_flight == Some(id) {
            live.in_flight = None;
        }
        if !success {
            tracing::debug!(stream = %sid, %component, "consent check refused");
            return;
        }
        live.consent_at = now;
        c.consent_stats.responses_received += 1;
        self.heard(now, sid, component);
    }

    /// The peer was heard on the selected pair of the component: it is not disconnected.
    pub(super) fn heard(&mut self, now: Instant, sid: StreamId, component: ComponentId) {
        let Some(c) = self.streams[sid].components.get_mut(component) else {
            return;
        };
        let Some(live) = c.live.as_mut() else { return };
        live.heard_at = now;
        if c.state == ComponentState::Disconnected {
            tracing::info!(stream = %sid, %component, "peer heard again: reconnected");
            self.set_component_state(sid, component, ComponentState::Connected);
        }
    }

    /// If `(local, remote)` is the selected pair's tuple of the component, it was heard.
    pub(super) fn heard_on(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        tuple: (SocketAddr, SocketAddr),
    ) {
        let s = &self.streams[sid];
        let on_selected = s
            .components
            .get(component)
            .and_then(|c| c.live.as_ref())
            .is_some_and(|l| s.pair_key(l.pair) == tuple);
        if on_selected {
            self.heard(now, sid, component);
        }
    }

    /// Whether application data from `from` that arrived on `to` (a local socket or a
    /// relayed address) may be delivered: only from a remote address a check has verified
    /// over that local address (a valid pair, or an authenticated check from the peer).
    /// Anything else is dropped and counted. Delivered data counts in its pair's statistics.
    /// Returns the pair it is delivered on, `None` if it is dropped.
    pub(super) fn accept_data(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        to: SocketAddr,
        from: SocketAddr,
        len: usize,
    ) -> Option<PairId> {
        let s = &mut self.streams[sid];
        let c = s.components.get_mut(component)?;
        // The common case first: data on the selected pair (its key read through the
        // pair, as `StreamState::pair_key` does, with the fields borrowed apart).
        if let Some(live) = c.live.as_mut()
            && let pair = &s.checklist[live.pair]
            && s.remote[pair.remote].candidate.address() == from
            && s.local[pair.local].base == to
        {
            live.heard_at = now;
            let (pid, reconnect) = (live.pair, c.state == ComponentState::Disconnected);
            s.checklist[pid].stats.received(now, len);
            if reconnect {
                self.heard(now, sid, component);
            }
            return Some(pid);
        }
        if let Some(pid) = s.checklist.find(to, from)
            && s.checklist[pid].verified
        {
            s.checklist[pid].stats.received(now, len);
            return Some(pid);
        }
        // An ICE restart's old path, or the one it released (verified before the restart).
        if let Some(pid) = self.old_path_data(sid, component, (to, from)) {
            return Some(pid);
        }
        let c = self.streams[sid].components.get_mut(component)?;
        c.dropped_unverified = c.dropped_unverified.saturating_add(1);
        tracing::trace!(stream = %sid, %component, %from, %to, "data from an unverified address dropped");
        None
    }

    /// Fails a component for `reason`: its checks and consent stop, nothing more is sent
    /// for it, and [`AgentEvent::ComponentFailed`] then the `Failed` state go out.
    pub(super) fn fail_component(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        reason: FailureReason,
    ) {
        let s = &mut self.streams[sid];
        let Some(c) = s.components.get_mut(component) else {
            return;
        };
        if c.state == ComponentState::Failed {
            return;
        }
        c.failure = Some(Box::new(reason));
        c.nominating = None;
        let consent = c.live.as_mut().and_then(|l| l.in_flight.take());
        let mut stop: Vec<TransactionId> = consent.into_iter().collect();
        let pids: Vec<PairId> = s
            .checklist
            .ids()
            .filter(|&p| s.checklist[p].component == component)
            .collect();
        for pid in pids {
            if let Some(id) = s.checklist[pid].txn.take() {
                stop.push(id);
            }
            s.checklist[pid].nomination = super::pairs::Nomination::None;
            if matches!(
                s.checklist[pid].state(),
                PairState::Frozen | PairState::Waiting | PairState::InProgress
            ) {
                s.checklist.set_state(pid, PairState::Failed);
            }
        }
        for id in stop {
            self.cancel_txn(&id);
        }
        // An ICE restart's old path goes too: a failed component sends nothing.
        self.drop_old_path(sid, component);
        tracing::info!(stream = %sid, %component, %reason, "component failed");
        self.events.push_back(AgentEvent::ComponentFailed {
            stream: sid,
            component,
            reason,
        });
        self.set_component_state(sid, component, ComponentState::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::consent_delay;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use std::time::Duration;

    #[test]
    fn consent_delay_stays_within_0_8_and_1_2_of_the_interval() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let interval = Duration::from_secs(5);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            let d = consent_delay(&mut rng, interval);
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(lo >= Duration::from_millis(4000), "{lo:?}");
        assert!(hi <= Duration::from_millis(6000), "{hi:?}");
        // Spread over the whole range, not stuck at one value.
        assert!(lo < Duration::from_millis(4050), "{lo:?}");
        assert!(hi > Duration::from_millis(5950), "{hi:?}");
    }
}
