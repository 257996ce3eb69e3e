//! Renomination (draft-thatcher-ice-renomination-01, as libwebrtc and libnice speak it): the
//! controlling agent moves a component's selection to a better pair after the first
//! nomination, with NOMINATION values that only rise, and the controlled agent follows the
//! highest value it has received.
//!
//! # Policy
//! - A stream uses it only when this agent offers it
//!   ([`AgentConfig::renomination`](super::AgentConfig::renomination)) and the peer announced
//!   the `renomination` ice-option (draft §3); otherwise nomination is regular nomination
//!   (RFC 8445 §8.1.1), exactly as without this module: the controlling agent nominates
//!   once per component (draft §3: without the option it MUST NOT send more than one
//!   nomination).
//! - Controlling: every nomination carries NOMINATION with a value one above the last sent
//!   for the component, and no USE-CANDIDATE (libwebrtc's
//!   `P2PTransportChannel::PingConnection` sets one or the other, never both). After the
//!   selection, a valid pair whose priority is strictly above the selected pair's is
//!   renominated, one nomination in flight per component, and selected once its nominating
//!   check succeeds: the check is retransmitted until it is answered (draft §3: SHOULD send
//!   the new nomination until it is acked). Values start at 1 and stay within the 24 bits
//!   the draft gives them (§4); the 32 bits received are compared, as libwebrtc does. The selected priority only rises, so each renomination is an
//!   improvement and a pair is renominated once per improvement, never back and forth; a
//!   renomination whose check fails may be tried again after the pair succeeds again.
//!   Failed pairs above the selected one are checked again every
//!   [`AgentConfig::renomination_recheck`](super::AgentConfig::renomination_recheck)
//!   (a path may start working later: a firewall opens, the network changes).
//! - Controlled: a check whose NOMINATION value is above the highest received for the
//!   component nominates its pair (draft §4), like USE-CANDIDATE: at once if the pair is
//!   valid, else when its triggered check succeeds (RFC 8445 §7.3.1.5). The selection follows
//!   the highest value even to a pair of lower priority: the controlling agent decides
//!   (§4: the controlled side MUST select the nomination with the largest value). A lower
//!   or equal value is answered but changes nothing (libwebrtc's
//!   `Connection::HandleStunBindingOrGoogPingRequest` compares with `remote_nomination_`),
//!   and once a value has come, USE-CANDIDATE without one changes nothing either (§4: any
//!   value takes precedence over the lack of a value).
//!   libnice (`conn_check_handle_renomination`, controlled side only) follows any
//!   NOMINATION without comparing values and ignores one of the wrong length; this agent
//!   compares, as the draft and libwebrtc do, and refuses a wrong length with 400. Against
//!   a libnice peer the two agree: the values this agent sends only rise.
//! - Both sides: once a component is connected, a check from the peer on a pair that beats
//!   the selected one triggers a check of ours (RFC 8445 §7.3.1.4), so the pair is valid
//!   here by the time its nomination comes.

use std::time::Instant;

use super::pairs::{Nomination, PairState};
use super::{Agent, ComponentId, ComponentState, PairId, StreamId};

/// The largest NOMINATION value: draft-thatcher-ice-renomination-01 §4 carries a 24-bit
/// integer in the 3 least significant bytes.
const MAX_NOMINATION: u32 = 0x00FF_FFFF;

/// What a connectivity check nominates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NominateWith {
    /// Nothing: an ordinary check.
    No,
    /// USE-CANDIDATE (RFC 8445 §7.1.2).
    UseCandidate,
    /// NOMINATION with this value (draft-thatcher-ice-renomination-01 §4).
    Nomination(u32),
}

/// The renomination state of one component, boxed on first use: a component that never
/// sends nor receives NOMINATION nor rechecks keeps a pointer (and reads the defaults).
#[derive(Debug, Default)]
pub(super) struct Renomination {
    state: Option<Box<RenomState>>,
}

/// What a component without renomination state reads.
static NO_RENOMINATION: RenomState = RenomState {
    sent: 0,
    received: 0,
    target: None,
    next_recheck: None,
};

impl std::ops::Deref for Renomination {
    type Target = RenomState;

    fn deref(&self) -> &RenomState {
        self.state.as_deref().unwrap_or(&NO_RENOMINATION)
    }
}

/// The renomination state of one component ([`Renomination`] boxes it).
///
/// Invariant: `sent` is the highest NOMINATION value sent for the component and
/// `received` the highest received; both only rise.
#[derive(Debug, Default)]
pub(super) struct RenomState {
    /// Controlling: the highest value sent, the one of the nomination in flight.
    sent: u32,
    /// Controlled: the highest value received.
    received: u32,
    /// Controlled: the checked pair the highest value nominated.
    target: Option<PairId>,
    /// Controlling: when the failed pairs better than the selected one are checked again.
    next_recheck: Option<Instant>,
}

impl Renomination {
    /// The state, boxed now if it was not.
    fn state_mut(&mut self) -> &mut RenomState {
        self.state.get_or_insert_with(Box::default)
    }

    /// A value above every one sent, for a new nomination; `None` once the 24 bits are
    /// used up.
    fn next_value(&mut self) -> Option<u32> {
        (self.sent < MAX_NOMINATION).then(|| {
            let state = self.state_mut();
            state.sent += 1;
            state.sent
        })
    }

    /// Sets (or clears) when the better failed pairs are checked again.
    fn set_next_recheck(&mut self, next: Option<Instant>) {
        if next.is_some() || self.state.is_some() {
            self.state_mut().next_recheck = next;
        }
    }

    /// True once a NOMINATION value has been received.
    fn has_received(&self) -> bool {
        self.received > 0
    }

    /// A NOMINATION `value` came on checked pair `pid`: true if it is above every value
    /// received before, and so nominates the pair.
    fn receive(&mut self, value: u32, pid: PairId) -> bool {
        if value <= self.received {
            return false;
        }
        let state = self.state_mut();
        state.received = value;
        state.target = Some(pid);
        true
    }
}

impl Agent {
    /// True when stream `sid` uses renomination: offered here and announced by the peer.
    pub(super) fn renomination_active(&self, sid: StreamId) -> bool {
        self.config.renomination && self.streams.get(sid).is_some_and(|s| s.remote_renomination)
    }

    /// What the next check on pair `pid` nominates with: nothing unless the controlling
    /// agent asked for its nomination; then NOMINATION with the component's current value
    /// under renomination, USE-CANDIDATE otherwise.
    pub(super) fn nominate_with(&self, sid: StreamId, pid: PairId) -> NominateWith {
        let s = &self.streams[sid];
        let pair = &s.checklist[pid];
        if !self.controlling || pair.nomination != Nomination::Requested {
            return NominateWith::No;
        }
        if !self.renomination_active(sid) {
            return NominateWith::UseCandidate;
        }
        let value = s.components.get(pair.component).map_or(0, |c| c.renom.sent);
        NominateWith::Nomination(value)
    }

    /// Controlling: nominates checked pair `checked` of `component` by checking it again
    /// with USE-CANDIDATE, or with a new NOMINATION value under renomination.
    pub(super) fn request_nomination(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        checked: PairId,
    ) {
        let active = self.renomination_active(sid);
        let s = &mut self.streams[sid];
        let c = &mut s.components[component];
        if active {
            let Some(value) = c.renom.next_value() else {
                tracing::warn!(stream = %sid, %component, "NOMINATION values used up: no more nominations");
                return;
            };
            tracing::debug!(stream = %sid, %component, value, "nominating with NOMINATION");
        }
        c.nominating = Some(checked);
        s.checklist[checked].nomination = Nomination::Requested;
        if s.checklist[checked].state() == PairState::Succeeded {
            // The pair stays Succeeded (and valid) while its nomination check runs.
            s.checklist.queue_triggered(checked);
        } else {
            self.trigger(sid, checked);
        }
    }

    /// True when valid or checked pair `pid` has a higher priority than its component's
    /// selected pair (false without a selection).
    pub(super) fn beats_selected(&self, sid: StreamId, pid: PairId) -> bool {
        let s = &self.streams[sid];
        let pair = &s.checklist[pid];
        s.components
            .get(pair.component)
            .and_then(|c| c.selected)
            .is_some_and(|sel| pair.priority > s.checklist[sel].priority)
    }

    /// Controlling, renomination: a check of `checked` succeeded and produced valid pair
    /// `valid`. If it beats the selected pair and no nomination is in flight for the
    /// component, nominate it with a higher value.
    pub(super) fn maybe_renominate(&mut self, sid: StreamId, checked: PairId, valid: PairId) {
        if !self.controlling || !self.renomination_active(sid) || !self.beats_selected(sid, valid) {
            return;
        }
        let component = self.streams[sid].checklist[valid].component;
        let Some(c) = self.streams[sid].components.get(component) else {
            return;
        };
        if c.nominating.is_some() || c.state == ComponentState::Failed {
            return;
        }
        tracing::info!(stream = %sid, %component, "a better pair succeeded: renominating");
        self.request_nomination(sid, component, checked);
    }

    /// Controlling, renomination: renominates the best valid pair of `component` that beats
    /// the selected one, if any (one that succeeded while another nomination was in flight).
    pub(super) fn renominate_best(&mut self, sid: StreamId, component: ComponentId) {
        let s = &self.streams[sid];
        let best = s.checklist.order().iter().find_map(|&pid| {
            let p = &s.checklist[pid];
            let v = p.valid_pair.filter(|&v| s.checklist[v].valid)?;
            (p.component == component && !p.removed()).then_some((pid, v))
        });
        if let Some((checked, valid)) = best {
            self.maybe_renominate(sid, checked, valid);
        }
    }

    /// Controlled, renomination: a check on checked pair `pid` carried NOMINATION `value`.
    /// True if the value is the highest yet, so that the check nominates the pair.
    pub(super) fn receive_nomination(&mut self, sid: StreamId, pid: PairId, value: u32) -> bool {
        let component = self.streams[sid].checklist[pid].component;
        let Some(c) = self.streams[sid].components.get_mut(component) else {
            return false;
        };
        let highest = c.renom.receive(value, pid);
        if highest {
            tracing::debug!(stream = %sid, %component, value, "NOMINATION received");
        } else {
            tracing::debug!(
                stream = %sid,
                %component,
                value,
                highest = c.renom.received,
                "NOMINATION not above the highest received: ignored"
            );
        }
        highest
    }

    /// Controlled, renomination: true once a NOMINATION value has come for the component
    /// of pair `pid`; USE-CANDIDATE without a value then changes nothing
    /// (draft-thatcher-ice-renomination-01 §4).
    pub(super) fn has_received_nomination(&self, sid: StreamId, pid: PairId) -> bool {
        let s = &self.streams[sid];
        s.components
            .get(s.checklist[pid].component)
            .is_some_and(|c| c.renom.has_received())
    }

    /// Controlled, renomination: true if checked pair `pid` carries the highest
    /// nomination received for its component.
    pub(super) fn is_nomination_target(&self, sid: StreamId, pid: PairId) -> bool {
        let s = &self.streams[sid];
        s.components
            .get(s.checklist[pid].component)
            .is_some_and(|c| c.renom.target == Some(pid))
    }

    /// Controlling, renomination: after a selection, arms the recheck of the failed pairs
    /// that would beat the selected one.
    pub(super) fn arm_recheck(&mut self, now: Instant, sid: StreamId, component: ComponentId) {
        let next = (self.controlling && self.renomination_active(sid))
            .then(|| now + self.config.renomination_recheck);
        if let Some(c) = self.streams[sid].components.get_mut(component) {
            c.renom.set_next_recheck(next);
        }
    }

    /// The earliest recheck deadline over all components.
    pub(super) fn recheck_timeout(&self) -> Option<Instant> {
        if !self.controlling || !self.config.renomination {
            return None;
        }
        self.streams
            .iter()
            .flat_map(|s| &s.components)
            .filter(|c| c.state != ComponentState::Failed)
            .filter_map(|c| c.renom.next_recheck)
            .min()
    }

    /// Controlling, renomination: checks again, as triggered checks, the failed pairs of
    /// each due component whose priority is above the selected pair's. Stops once no such
    /// pair is left.
    pub(super) fn run_rechecks(&mut self, now: Instant) {
        if !self.controlling {
            return;
        }
        for sid in self.streams.ids() {
            for component in self.streams[sid].components.ids() {
                let c = &self.streams[sid].components[component];
                let due = c.renom.next_recheck.is_some_and(|t| t <= now);
                if !due || c.state == ComponentState::Failed {
                    continue;
                }
                let Some(selected) = c.selected else {
                    self.streams[sid].components[component]
                        .renom
                        .set_next_recheck(None);
                    continue;
                };
                let s = &self.streams[sid];
                let floor = s.checklist[selected].priority;
                let mut better_left = false;
                let mut again = Vec::new();
                for &pid in s.checklist.order() {
                    let p = &s.checklist[pid];
                    if p.priority <= floor {
                        break;
                    }
                    if p.component != component || p.removed() {
                        continue;
                    }
                    better_left = true;
                    if p.state() == PairState::Failed && !p.blocked() && !p.unauthorized {
                        again.push(pid);
                    }
                }
                if !again.is_empty() {
                    tracing::debug!(stream = %sid, %component, pairs = again.len(), "checking better pairs again");
                }
                for pid in again {
                    self.trigger(sid, pid);
                }
                let next = better_left.then(|| now + self.config.renomination_recheck);
                self.streams[sid].components[component]
                    .renom
                    .set_next_recheck(next);
                self.renominate_best(sid, component);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_rise_and_only_a_higher_value_nominates() {
        let mut r = Renomination::default();
        assert_eq!(r.next_value(), Some(1));
        assert_eq!(r.next_value(), Some(2));
        assert!(!r.has_received());
        let (a, b) = (PairId::from_index(0), PairId::from_index(1));
        assert!(r.receive(2, a));
        assert!(!r.receive(1, b), "a lower value is ignored");
        assert!(!r.receive(2, b), "an equal value is ignored");
        assert_eq!(r.target, Some(a));
        assert!(r.receive(3, b));
        assert_eq!(r.target, Some(b));
        assert!(r.has_received());
    }

    #[test]
    fn values_stay_within_24_bits() {
        let mut r = Renomination {
            state: Some(Box::new(RenomState {
                sent: MAX_NOMINATION - 1,
                ..RenomState::default()
            })),
        };
        assert_eq!(r.next_value(), Some(MAX_NOMINATION));
        assert_eq!(r.next_value(), None);
        assert_eq!(r.sent, MAX_NOMINATION);
    }
}
