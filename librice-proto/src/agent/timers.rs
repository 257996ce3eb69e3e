//! The agent's timers in one table: what each is for, when it is next due, and what runs
//! when it fires. [`Agent::poll_timeout`] is the earliest deadline of the table;
//! [`Agent::handle_timeout`] runs every entry in the table's order (each does nothing
//! when it has nothing due, so calling it early is harmless).

use std::time::Instant;

use super::{Agent, ComponentState};
use crate::stun::transaction::TransactionEvent;

/// One of the agent's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Retransmissions and timeouts of connectivity and consent checks (RFC 8489 §6.2.1
    /// with the RTO of RFC 8445 §14.3).
    Checks,
    /// Retransmissions and timeouts of the queries to STUN servers while gathering.
    Gathering,
    /// The TURN clients' refreshes of allocations, permissions and channels, and their
    /// retransmissions (RFC 8656 §7-§12).
    Relays,
    /// Controlling: nominate a component's best valid pair once the nomination delay after
    /// its first valid pair has passed (RFC 8445 §8.1.1).
    Nomination,
    /// Controlling, renomination: check again the failed pairs that would beat the selected
    /// one (draft-thatcher-ice-renomination-01; see the `renomination` module).
    Recheck,
    /// Consent checks and expiry, Disconnected, and the controlled side's wait for a
    /// nomination (RFC 7675 §5.1; see the `liveness` module).
    Liveness,
    /// Keepalives on selected pairs, with consent freshness off (RFC 8445 §11).
    Keepalive,
    /// Consent checks and expiry on the pairs selected before an ICE restart, until the
    /// restart selects new ones (RFC 7675 §5.1, RFC 8445 §9; see the `restart` module).
    OldPaths,
    /// The peer's `.local` names not resolved in time, and this agent's names not
    /// published in time (see the `mdns` module).
    Mdns,
    /// The end of a component's wait for the peer's ICE-TCP connections (see the
    /// `icetcp` module).
    TcpWait,
    /// The next paced check or gathering request (RFC 8445 §14.2).
    Pacing,
}

/// The timers, in the order [`Agent::handle_timeout`] runs them: transactions first, so
/// that their failures are known to nomination, liveness and pacing.
pub(super) const TIMERS: [Timer; 11] = [
    Timer::Checks,
    Timer::Gathering,
    Timer::Relays,
    Timer::Nomination,
    Timer::Recheck,
    Timer::Liveness,
    Timer::Keepalive,
    Timer::OldPaths,
    Timer::Mdns,
    Timer::TcpWait,
    Timer::Pacing,
];

impl Agent {
    /// When `timer` next needs the agent, if it is armed.
    pub(super) fn deadline(&self, timer: Timer) -> Option<Instant> {
        match timer {
            Timer::Checks => self.requests.as_ref()?.txns.poll_timeout(),
            Timer::Gathering => self.requests.as_ref()?.gather_txns.poll_timeout(),
            Timer::Relays => self.relay_timeout(),
            Timer::Nomination => {
                if !self.controlling {
                    return None;
                }
                self.streams
                    .iter()
                    .flat_map(|s| &s.components)
                    .filter(|c| !c.done() && c.nominating.is_none())
                    .filter_map(|c| c.first_valid_at)
                    .min()
                    .map(|t| t + self.config.nomination_delay)
            }
            Timer::Recheck => self.recheck_timeout(),
            Timer::Liveness => self.liveness_timeout(),
            Timer::OldPaths => self.old_paths_timeout(),
            Timer::Keepalive => {
                if self.config.consent_freshness {
                    return None;
                }
                self.streams
                    .iter()
                    .flat_map(|s| &s.components)
                    .filter(|c| c.state == ComponentState::Connected)
                    .filter_map(|c| c.last_sent)
                    .min()
                    .map(|t| t + self.config.keepalive_interval)
            }
            Timer::Mdns => self.mdns.timeout(),
            Timer::TcpWait => self.tcp_wait_timeout(),
            Timer::Pacing => self
                .has_slot_work()
                .then(|| {
                    self.requests
                        .as_ref()
                        .and_then(|r| r.next_slot)
                        .or(self.last_now)
                })
                .flatten(),
        }
    }

    /// Runs what `timer` does at `now` (whether or not it is due).
    pub(super) fn run_timer(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Checks => {
                let Some(r) = self.requests.as_deref_mut() else {
                    return;
                };
                r.txns.handle_timeout(now);
                while let Some(TransactionEvent::TimedOut { id, context }) = self
                    .requests
                    .as_deref_mut()
                    .and_then(|r| r.txns.poll_event())
                {
                    self.on_timed_out(now, id, context);
                }
            }
            Timer::Gathering => {
                let Some(r) = self.requests.as_deref_mut() else {
                    return;
                };
                r.gather_txns.handle_timeout(now);
                while let Some(TransactionEvent::TimedOut { id, context }) = self
                    .requests
                    .as_deref_mut()
                    .and_then(|r| r.gather_txns.poll_event())
                {
                    self.on_timed_out(now, id, context);
                }
            }
            Timer::Relays => self.handle_relay_timeouts(now),
            Timer::Nomination => self.run_nominations(now),
            Timer::Recheck => self.run_rechecks(now),
            Timer::Liveness => self.run_liveness(now),
            Timer::OldPaths => self.run_old_paths(now),
            Timer::Keepalive => {
                if !self.config.consent_freshness {
                    self.run_keepalives(now);
                }
            }
            Timer::Mdns => self.run_mdns_timeouts(now),
            Timer::TcpWait => self.run_tcp_waits(now),
            Timer::Pacing => self.run_slot(now),
        }
    }
}
