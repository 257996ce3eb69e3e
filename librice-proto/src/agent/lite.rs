//! ICE-lite (RFC 8445 §2.5): this agent as a lite agent ([`AgentConfig::lite`]), and a
//! full agent facing a lite peer ([`super::StreamMut::set_remote_lite`]).
//!
//! A lite agent has host candidates only, is always controlled, sends no request of its
//! own (no connectivity check, no consent check), and learns everything from the full
//! peer's checks:
//! - a check with USE-CANDIDATE makes its pair valid, nominated and, if it beats the
//!   current selection, selected (RFC 8445 §7.3.2, §8.2, §8.1.1);
//! - an authenticated check on the selected pair refreshes consent; none for the consent
//!   timeout fails the component with [`super::FailureReason::ConsentLost`], as for a
//!   full agent whose consent checks go unanswered (RFC 7675 §5.1).
//!
//! The rest of the agent asks [`Agent::lite`] where it would otherwise check: the pacer
//! has no slot work, liveness sends no consent check, a restart's old path sends none
//! either, and a role switch to controlling is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::pairs::PairState;
use super::{Agent, AgentConfig, ComponentId, PairId, StreamId};

/// The configuration a lite agent runs with: controlled, no STUN or TURN server, no
/// relay-only filter and no renomination (see [`AgentConfig::lite`]). A full agent's is
/// returned unchanged, and so is a lite agent's that is already so (a shared
/// configuration stays shared).
pub(super) fn effective_config(mut config: Arc<AgentConfig>) -> Arc<AgentConfig> {
    let effective = |c: &AgentConfig| {
        !c.lite
            || (!c.controlling
                && c.stun_servers.is_empty()
                && c.turn_servers.is_empty()
                && !c.relay_only
                && !c.renomination)
    };
    if !effective(&config) {
        let config = Arc::make_mut(&mut config);
        // RFC 8445 §6.1.1: a lite agent takes the controlled role.
        config.controlling = false;
        // RFC 8445 §5.2: a lite agent gathers host candidates only.
        config.stun_servers.clear();
        config.turn_servers.clear();
        config.relay_only = false;
        config.renomination = false;
    }
    config
}

impl Agent {
    /// True for a lite agent ([`AgentConfig::lite`]).
    pub(super) fn lite(&self) -> bool {
        self.config.lite
    }

    /// A lite agent's handling of an authenticated check on pair `pid` (already answered
    /// with a success response): the nomination, if the check carries USE-CANDIDATE. A
    /// lite agent sends no triggered check (RFC 8445 §2.5: it sends no check at all).
    pub(super) fn lite_incoming_check(
        &mut self,
        now: Instant,
        sid: StreamId,
        pid: PairId,
        use_candidate: bool,
    ) {
        if !use_candidate {
            return;
        }
        // RFC 8445 §7.3.2 (a lite agent's additions to answering a check): the pair of the
        // address the check arrived on and its source goes to the valid list, nominated;
        // with no checks of its own, the lite agent has nothing else to wait for.
        let s = &mut self.streams[sid];
        let component = s.checklist[pid].component;
        if s.checklist[pid].state() != PairState::Succeeded {
            s.checklist.set_state(pid, PairState::Succeeded);
        }
        s.checklist[pid].valid = true;
        s.checklist[pid].valid_pair = Some(pid);
        self.note_valid(now, sid, component);
        // RFC 8445 §8.1.1: when several pairs are nominated, the highest-priority one is
        // used; `nominate` selects the pair only if it beats the current selection.
        tracing::debug!(stream = %sid, %component, "lite: nominated by the peer");
        self.nominate(now, sid, pid);
    }

    /// A lite agent's consent: an authenticated check from the peer on the selected pair's
    /// `tuple` (local, remote) refreshes it, as a success response to a consent check does
    /// for a full agent (RFC 7675 §5.1). Also on the pair selected before an ICE restart.
    pub(super) fn lite_refresh_consent(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        tuple: (SocketAddr, SocketAddr),
    ) {
        if !self.lite() {
            return;
        }
        let s = &mut self.streams[sid];
        if let Some(c) = s.components.get_mut(component)
            && let Some(live) = c.live.as_mut()
            && let pair = &s.checklist[live.pair]
            && (
                s.local[pair.local].base,
                s.remote[pair.remote].candidate.address(),
            ) == tuple
        {
            live.refresh_consent(now);
        }
        s.previous.refresh_consent(component, tuple, now);
    }

    /// Says whether the peer of stream `sid` is a lite agent. A full agent facing a lite
    /// peer takes the controlling role (RFC 8445 §6.1.1) and nominates (§8.1): it is the
    /// only side that checks.
    pub(super) fn set_remote_lite(&mut self, sid: StreamId, lite: bool) {
        self.streams[sid].remote_lite = lite;
        if !lite {
            return;
        }
        if self.lite() {
            // RFC 8445 §6.1.1 gives the initiating lite agent the controlling role, but two
            // lite agents never check, so it cannot help: stay controlled, and say so.
            tracing::warn!(stream = %sid, "both agents are lite: neither checks, no pair can be selected");
            return;
        }
        // RFC 8445 §6.1.1: the full agent MUST take the controlling role.
        self.switch_role(true);
    }
}
