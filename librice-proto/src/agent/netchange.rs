//! Network change: local sockets that come and go after gathering started.
//!
//! # Sockets added late (continual gathering)
//! A socket given to [`StreamMut::add_local_socket`](super::StreamMut::add_local_socket)
//! after gathering started is gathered on at once: its host candidate comes out as an
//! [`AgentEvent::LocalCandidate`] (trickle it, RFC 8838), its server-reflexive and relayed
//! candidates follow as the servers answer, and its pairs join the check list. Its local
//! preference is below every one the component used before (RFC 8445 §5.1.2.1: distinct
//! per base). While the component is connected its new pairs are not checked (RFC 8445
//! §8.1.2), unless renomination rechecks them or the selected pair is lost (below).
//!
//! # Sockets removed
//! [`StreamMut::remove_local_socket`](super::StreamMut::remove_local_socket) forgets a
//! socket whose address went away. Every candidate based on it goes (host,
//! server-reflexive, peer-reflexive, and the relayed candidates of TURN allocations made
//! from it), their pairs leave the check list and their checks and queries stop.
//!
//! When the component's selected pair was one of them, the component *loses* its selection
//! ([`AgentEvent::SelectedPairLost`], [`ComponentState::Disconnected`]):
//! - controlling with renomination in use (draft-thatcher-ice-renomination-01 §3: the
//!   controlling agent may nominate again), the component's remaining pairs are checked
//!   again and the best valid one is nominated with a higher NOMINATION value; its
//!   selection comes out as [`AgentEvent::SelectedPairChanged`] with the lost pair as
//!   `old`. If every pair left fails, [`AgentEvent::RestartNeeded`] follows.
//! - otherwise, [`AgentEvent::RestartNeeded`] at once: RFC 8445 §8.1.1 lets a controlling
//!   agent nominate once per component without renomination, and a controlled agent
//!   cannot move the selection at all; an ICE restart (§9) is the way on.
//!
//! A component that lost its selection does not fail when its pairs run out (it asks for a
//! restart instead); an ICE restart ends the loss, and its selection is reported as
//! [`AgentEvent::SelectedPairChanged`] from the lost pair.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Instant;

use super::pairs::PairState;
use super::{
    Agent, AgentEvent, ComponentId, ComponentState, PairId, SelectedPair, StreamId, Txn,
    transport_key,
};
use crate::TransportType;

/// A component whose selected pair's socket went away, until it selects another.
#[derive(Debug)]
pub(super) struct Lost {
    /// The pair that was selected, as it was described.
    pub pair: Box<SelectedPair>,
    /// [`AgentEvent::RestartNeeded`] went out for this loss.
    pub restart_asked: bool,
    /// An ICE restart began since: the component fails again as any other once its
    /// restart's pairs all fail.
    pub restarted: bool,
}

impl Agent {
    /// Forgets local socket `base` of `component` in stream `sid`: see the module docs.
    pub(super) fn remove_socket(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        transport: TransportType,
        base: SocketAddr,
    ) {
        self.last_now = Some(now);
        self.sockets.remove(&(transport_key(transport), base));
        let c = &mut self.streams[sid].components[component];
        c.sockets.retain(|&(t, a)| (t, a) != (transport, base));
        if transport == TransportType::Tcp {
            self.tcp_checks.forget_so_socket(base);
        }
        tracing::info!(stream = %sid, %component, %base, "local socket removed");
        // The bases that go: the socket itself and the relayed addresses of allocations
        // made from it, whose TURN clients are dropped.
        let mut gone: BTreeSet<SocketAddr> = BTreeSet::from([base]);
        gone.extend(self.forget_relays_of(now, sid, component, base));
        // Its queries: queued ones are dropped, those in flight stopped.
        let mut ended = 0;
        if let Some(r) = self.requests.as_deref_mut() {
            let before = r.gather_queue.len();
            r.gather_queue
                .retain(|j| !(j.stream == sid && j.base == base && j.relay.is_none()));
            ended += before - r.gather_queue.len();
            ended += r
                .gather_txns
                .cancel_where(|t| matches!(t, Txn::Gather(j) if j.stream == sid && j.base == base))
                .len();
        }
        self.streams[sid].gone_bases.extend(gone.iter().copied());
        let gone_list: Vec<SocketAddr> = gone.iter().copied().collect();
        self.drop_old_path_from(sid, component, &gone_list);
        for _ in 0..ended {
            self.gather_done(sid);
        }
        // Its pairs: out of the check list, their checks stopped.
        self.drop_pairs_on(now, sid, component, |(b, _)| gone.contains(&b));
    }

    /// Drops the pairs of `component` whose (local base, remote address) `on` accepts:
    /// their checks and consent checks stop, they leave the check list (failed, no longer
    /// valid), and a selected one among them is lost (see the module docs).
    pub(super) fn drop_pairs_on(
        &mut self,
        now: Instant,
        sid: StreamId,
        component: ComponentId,
        on: impl Fn((SocketAddr, SocketAddr)) -> bool,
    ) {
        let s = &self.streams[sid];
        let dead: BTreeSet<PairId> = s
            .checklist
            .ids()
            .filter(|&pid| s.checklist[pid].component == component && on(s.pair_key(pid)))
            .collect();
        if let Some(r) = self.requests.as_deref_mut() {
            let stopped = r.txns.cancel_where(|t| {
                matches!(*t, Txn::Check { stream, pair, .. } | Txn::Consent { stream, pair, .. }
                    if stream == sid && dead.contains(&pair))
            });
            for id in stopped {
                r.cancelled.remove(&id);
            }
        }
        let s = &mut self.streams[sid];
        for &pid in &dead {
            let key = s.pair_key(pid);
            s.checklist[pid].txn = None;
            s.checklist[pid].valid = false;
            if s.checklist[pid].state() != PairState::Failed {
                s.checklist.set_state(pid, PairState::Failed);
            }
            s.checklist.remove(pid, key);
        }
        let c = &mut s.components[component];
        if c.nominating.is_some_and(|p| dead.contains(&p)) {
            c.nominating = None;
        }
        if let Some(selected) = self.streams[sid].components[component].selected
            && dead.contains(&selected)
        {
            self.lose_selection(now, sid, component, selected);
        }
        self.check_failures(sid);
    }

    /// The selected pair of `component` went with its socket: see the module docs.
    fn lose_selection(&mut self, now: Instant, sid: StreamId, component: ComponentId, pid: PairId) {
        let described = Box::new(self.describe_pair(&self.streams[sid], pid));
        tracing::info!(stream = %sid, %component, local = %described.local_base, "selected pair lost with its socket");
        let s = &mut self.streams[sid];
        let c = &mut s.components[component];
        c.selected = None;
        c.live = None;
        c.nominating = None;
        c.lost = Some(Lost {
            pair: described.clone(),
            restart_asked: false,
            restarted: false,
        });
        // The pairs left are checked again: the network changed under them.
        let again: Vec<PairId> = s
            .checklist
            .order()
            .iter()
            .copied()
            .filter(|&p| {
                let p = &s.checklist[p];
                p.component == component && !p.blocked() && p.state() == PairState::Failed
            })
            .collect();
        for p in again {
            s.checklist[p].unauthorized = false;
            s.checklist.set_state(p, PairState::Waiting);
        }
        let still_valid = s
            .checklist
            .ids()
            .any(|p| s.checklist[p].component == component && s.checklist[p].valid);
        let c = &mut s.components[component];
        c.first_valid_at = still_valid.then_some(now);
        self.events.push_back(AgentEvent::SelectedPairLost {
            stream: sid,
            component,
            pair: described,
        });
        self.set_component_state(sid, component, ComponentState::Disconnected);
        if !(self.controlling && self.renomination_active(sid)) {
            self.ask_restart(sid, component);
        }
    }

    /// Sends [`AgentEvent::RestartNeeded`] for a component that lost its selection, once
    /// per loss.
    pub(super) fn ask_restart(&mut self, sid: StreamId, component: ComponentId) {
        let Some(lost) = self.streams[sid].components[component].lost.as_mut() else {
            return;
        };
        if std::mem::replace(&mut lost.restart_asked, true) {
            return;
        }
        tracing::info!(stream = %sid, %component, "no pair left to move to: ICE restart needed");
        self.events.push_back(AgentEvent::RestartNeeded {
            stream: sid,
            component,
        });
    }

    /// The description of the pair `component` lost, taken when a new pair is selected
    /// (so that the selection is reported as a change from it).
    pub(super) fn take_lost(
        &mut self,
        sid: StreamId,
        component: ComponentId,
    ) -> Option<Box<SelectedPair>> {
        self.streams[sid].components[component]
            .lost
            .take()
            .map(|l| l.pair)
    }
}
