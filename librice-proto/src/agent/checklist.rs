//! Check lists: candidate pairs, their states, pruning, unfreezing, nomination and the
//! component states that follow from them (RFC 8445 §6.1.2, §7.2.5.3, §8).

use std::time::Instant;

use super::icetcp::tcp_pairable;
use super::pairs::{Nomination, Pair, PairState};
use super::requests::Requests;
use super::{
    Agent, AgentEvent, ComponentId, ComponentState, FailureReason, GatherPhase, PairId, RemoteCand,
    StreamId,
};
use crate::candidate::{CandidateTransport, CandidateType};
use crate::compact::push_compact;

/// A snapshot of one candidate pair, for statistics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairInfo {
    /// The component.
    pub component: super::ComponentId,
    /// The local candidate.
    pub local: crate::candidate::Candidate,
    /// The remote candidate.
    pub remote: crate::candidate::Candidate,
    /// The pair priority (RFC 8445 §6.1.2.3).
    pub priority: u64,
    /// The state.
    pub state: PairState,
    /// True for a pair in the check list; false for a valid pair built from a mapped
    /// address (RFC 8445 §7.2.5.3.2).
    pub in_checklist: bool,
    /// True once a check produced this valid pair.
    pub valid: bool,
    /// True once nominated.
    pub nominated: bool,
}

/// Pair priority (RFC 8445 §6.1.2.3): 2^32·MIN(G,D) + 2·MAX(G,D) + (G>D ? 1 : 0), where G
/// is the controlling agent's candidate priority and D the controlled agent's.
pub(super) fn pair_priority(controlling: bool, local: u32, remote: u32) -> u64 {
    let (g, d) = if controlling {
        (u64::from(local), u64::from(remote))
    } else {
        (u64::from(remote), u64::from(local))
    };
    (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
}

impl Agent {
    /// Interns a pair foundation (RFC 8445 §6.1.2.6: the local and remote foundations).
    fn pair_foundation(&mut self, local: &str, remote: &str) -> u32 {
        let r = Requests::of(&mut self.requests, &self.config);
        let next = u32::try_from(r.pair_foundations.len())
            .map_or(Pair::NO_FOUNDATION - 1, |n| n.min(Pair::NO_FOUNDATION - 1));
        let found = r
            .pair_foundations
            .search_by(|(l, r)| (&**l, &**r).cmp(&(local, remote)));
        match found {
            Ok(i) => *r.pair_foundations.value_at_mut(i),
            Err(i) => *r
                .pair_foundations
                .insert_at(i, (local.into(), remote.into()), next),
        }
    }

    /// Pairs local candidate `li` (a host candidate) with remote candidate `ri`, if they can
    /// be paired and the pair is not redundant; returns the pair's id (RFC 8445 §6.1.2.2,
    /// §6.1.2.4, §6.1.2.5).
    pub(super) fn add_pair(&mut self, sid: StreamId, li: usize, ri: usize) -> Option<PairId> {
        let controlling = self.controlling;
        let max_pairs = self.config.max_pairs;
        let s = &self.streams[sid];
        let local = &s.local[li];
        let remote = &s.remote[ri].candidate;
        // RFC 8445 §6.1.2.2: same component, transport and address family. ICE-TCP pairs are
        // not formed yet.
        if local.candidate.component() != remote.component()
            || s.gone_bases.contains(&local.base)
            || local.transport != remote.transport_type()
            || local.base.is_ipv4() != remote.address().is_ipv4()
        {
            return None;
        }
        // RFC 6544 §6.2: TCP candidates pair by their TCP types (see `icetcp.rs`).
        if let CandidateTransport::Tcp(tcp_type) = local.candidate.transport()
            && (local.candidate.candidate_type() != CandidateType::Host
                || !tcp_pairable(
                    tcp_type,
                    local.base,
                    remote,
                    self.tcp_checks.remote_of(local.base),
                ))
        {
            return None;
        }
        // RFC 8445 §6.1.2.4: a pair whose local candidate is reflexive is replaced by its base
        // and so is redundant with the host pair; only host (and later relayed) candidates
        // are paired. A pair with the same base and remote address as an existing one is
        // redundant too: keep the higher priority one.
        let local_type = local.candidate.candidate_type();
        if !matches!(local_type, CandidateType::Host | CandidateType::Relayed)
            || (self.config.relay_only && local_type != CandidateType::Relayed)
        {
            return None;
        }
        // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.3.2: "the ICE agent MUST NOT form
        // candidate pairs between its own relay candidates and remote mDNS candidates" (the
        // TURN server would learn the hidden address).
        if local_type == CandidateType::Relayed
            && self
                .mdns
                .is_mdns_remote(sid, remote.component(), remote.address())
        {
            return None;
        }
        let key = (local.base, remote.address());
        let priority = pair_priority(controlling, local.candidate.priority(), remote.priority());
        if let Some(existing) = s.checklist.find(key.0, key.1) {
            return Some(existing);
        }
        let component = remote.component();
        // A lite agent never checks, so never unfreezes a pair: it keeps no pair
        // foundations (below).
        let foundations = (!self.lite()).then(|| {
            (
                local.candidate.foundation().to_owned(),
                remote.foundation().to_owned(),
            )
        });
        // RFC 8445 §6.1.2.5: limit the check list; a new pair displaces the lowest-priority
        // pair not yet checked if it beats it.
        if s.checklist.order().len() >= max_pairs {
            let victim = s.checklist.order().iter().rev().copied().find(|&p| {
                matches!(
                    s.checklist[p].state(),
                    PairState::Frozen | PairState::Waiting
                ) && !s.checklist[p].in_triggered()
            });
            match victim {
                Some(v) if s.checklist[v].priority < priority => {
                    let victim_key = s.pair_key(v);
                    self.streams[sid].checklist.remove(v, victim_key);
                }
                _ => {
                    tracing::debug!(stream = %sid, "check list full: pair dropped");
                    return None;
                }
            }
        }
        let (state, foundation) = match foundations {
            Some((lf, rf)) => self.initial_state(sid, component, &lf, &rf),
            // RFC 8445 §2.5: a lite agent sends no checks and runs no check-list schedule
            // (§6.1.2.6, §6.1.4.2 are the full agent's): nothing of it waits to be
            // unfrozen, so its pairs start Waiting (what its statistics show until the
            // peer's checks validate them), with no foundation group.
            None => (PairState::Waiting, Pair::NO_FOUNDATION),
        };
        let pair = Pair::new(component, li, ri, priority, state, foundation);
        let pid = self.streams[sid].checklist.add(pair, key);
        if foundation != Pair::NO_FOUNDATION {
            let group = Requests::of(&mut self.requests, &self.config)
                .foundation_pairs
                .get_or_insert_with(foundation, Vec::new);
            push_compact(group, (sid, pid));
        }
        // RFC 8656 §9 / RFC 8445 §5.1.1.2: a relay pair needs the peer's permission before
        // its first check, or that check would be dropped by the server.
        if local_type == CandidateType::Relayed {
            self.need_permission(sid, pid);
        }
        Some(pid)
    }

    /// A full agent's new pair of `component` in stream `sid` with the local and remote
    /// foundations `lf`, `rf`: its initial state and its interned pair foundation.
    fn initial_state(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        lf: &str,
        rf: &str,
    ) -> (PairState, u32) {
        let foundation = self.pair_foundation(lf, rf);
        // RFC 8445 §6.1.2.6: in the first check list, the first pair of each foundation with
        // the lowest component id starts Waiting; everything else starts Frozen. Later pairs
        // of a foundation already unfrozen here start Waiting too (RFC 8838 §11).
        let s = &self.streams[sid];
        let group = self
            .requests
            .as_ref()
            .and_then(|r| r.foundation_pairs.get(&foundation))
            .map_or(&[][..], Vec::as_slice);
        let active_here = group.iter().any(|&(gs, gp)| {
            gs == sid && !s.checklist[gp].removed() && s.checklist[gp].state() != PairState::Frozen
        });
        let lower_component_here = group.iter().any(|&(gs, gp)| {
            gs == sid && !s.checklist[gp].removed() && s.checklist[gp].component < component
        });
        let first_list = sid == StreamId::from_index(0);
        let state = if first_list && !lower_component_here || active_here {
            PairState::Waiting
        } else {
            PairState::Frozen
        };
        (state, foundation)
    }

    /// Adds a remote candidate to a stream (or updates the peer-reflexive one learnt at
    /// the same address) and pairs it with the local host candidates.
    pub(super) fn add_remote(&mut self, sid: StreamId, remote: RemoteCand) -> Option<usize> {
        let s = &mut self.streams[sid];
        let key = (remote.candidate.component(), remote.candidate.address());
        if let Some(&ri) = s.remote_by_addr.get(&key) {
            let ri = ri as usize;
            let old = &s.remote[ri].candidate;
            if old.candidate_type() == CandidateType::PeerReflexive
                && remote.candidate.candidate_type() != CandidateType::PeerReflexive
            {
                // The signalling caught up with a peer-reflexive candidate: keep its pairs
                // and their states, and take the signalled description.
                s.remote[ri] = remote;
                self.recompute_priorities();
            }
            return Some(ri);
        }
        if s.remote.len() >= self.config.max_remote_candidates {
            tracing::debug!(
                stream = %sid,
                "remote candidate limit reached: candidate dropped"
            );
            return None;
        }
        let ri = s.remote.len();
        let Ok(ri32) = u32::try_from(ri) else {
            return None;
        };
        push_compact(&mut s.remote, remote);
        s.remote_by_addr.insert(key, ri32);
        for li in 0..self.streams[sid].local.len() {
            self.add_pair(sid, li, ri);
        }
        Some(ri)
    }

    /// Recomputes every pair priority after a role change (RFC 8445 §7.2.5.1) or a
    /// candidate update.
    pub(super) fn recompute_priorities(&mut self) {
        let controlling = self.controlling;
        for s in &mut self.streams {
            for i in s.checklist.ids() {
                let p = &s.checklist[i];
                let lp = s.local[p.local].candidate.priority();
                let rp = s.remote[p.remote].candidate.priority();
                s.checklist[i].priority = pair_priority(controlling, lp, rp);
            }
            s.checklist.resort();
        }
    }

    /// RFC 8445 §7.2.5.3.3: a success unfreezes the pairs of its foundation in every check
    /// list.
    pub(super) fn unfreeze_foundation(&mut self, foundation: u32) {
        let Some(group) = self
            .requests
            .as_ref()
            .and_then(|r| r.foundation_pairs.get(&foundation))
        else {
            return;
        };
        for &(sid, pid) in group {
            let s = &mut self.streams[sid];
            if s.checklist[pid].state() == PairState::Frozen && !s.checklist[pid].removed() {
                s.checklist.set_state(pid, PairState::Waiting);
            }
        }
    }

    /// RFC 8445 §6.1.4.2: with no Waiting pair, the highest-priority Frozen pair whose
    /// foundation is not being checked in any check list becomes Waiting.
    fn unfreeze_one(&mut self, sid: StreamId) -> Option<PairId> {
        let s = &self.streams[sid];
        let candidate = s.checklist.order().iter().copied().find(|&pid| {
            let p = &s.checklist[pid];
            p.state() == PairState::Frozen
                && !p.blocked()
                && !self.component_done(sid, p.component)
                && !self
                    .requests
                    .as_ref()
                    .and_then(|r| r.foundation_pairs.get(&p.foundation))
                    .is_some_and(|g| {
                        g.iter().any(|&(gs, gp)| {
                            matches!(
                                self.streams[gs].checklist[gp].state(),
                                PairState::Waiting | PairState::InProgress
                            ) && !self.streams[gs].checklist[gp].removed()
                        })
                    })
        });
        let candidate = candidate.or_else(|| {
            // Every Frozen pair shares a foundation being checked: take the best anyway,
            // so that a check list never stalls behind another's retransmissions.
            s.checklist.order().iter().copied().find(|&pid| {
                s.checklist[pid].state() == PairState::Frozen
                    && !s.checklist[pid].blocked()
                    && !self.component_done(sid, s.checklist[pid].component)
            })
        })?;
        self.streams[sid]
            .checklist
            .set_state(candidate, PairState::Waiting);
        Some(candidate)
    }

    /// True once the component has a selected pair in the current generation, or failed.
    fn component_done(&self, sid: StreamId, component: ComponentId) -> bool {
        self.comp(sid, component).is_some_and(|c| c.done())
    }

    /// Picks the next pair to check in stream `sid` (RFC 8445 §6.1.4.2): the triggered
    /// queue first, then the best Waiting pair, then one unfrozen pair.
    pub(super) fn next_pair_to_check(&mut self, sid: StreamId) -> Option<PairId> {
        self.streams[sid].remote_key.as_ref()?;
        while let Some(pid) = self.streams[sid].checklist.pop_triggered() {
            let p = &self.streams[sid].checklist[pid];
            let nomination =
                p.state() == PairState::Succeeded && p.nomination == Nomination::Requested;
            if !p.removed() && !p.blocked() && (p.state() == PairState::Waiting || nomination) {
                return Some(pid);
            }
        }
        // Pairs of components that are done are not checked any more (RFC 8445 §8.1.2).
        let s = &self.streams[sid];
        let stale: Vec<PairId> = s
            .checklist
            .order()
            .iter()
            .copied()
            .filter(|&pid| {
                matches!(
                    s.checklist[pid].state(),
                    PairState::Waiting | PairState::Frozen
                ) && !s.checklist[pid].in_triggered()
                    && self.component_done(sid, s.checklist[pid].component)
            })
            .collect();
        for pid in stale {
            self.streams[sid]
                .checklist
                .set_state(pid, PairState::Failed);
        }
        let s = &self.streams[sid];
        if s.checklist.count(PairState::Waiting) > 0 {
            let found = s.checklist.order().iter().copied().find(|&pid| {
                s.checklist[pid].state() == PairState::Waiting
                    && !s.checklist[pid].blocked()
                    && !self.component_done(sid, s.checklist[pid].component)
            });
            if found.is_some() {
                return found;
            }
        }
        if s.checklist.count(PairState::Frozen) > 0 {
            return self.unfreeze_one(sid);
        }
        None
    }

    /// Queues a triggered check (RFC 8445 §7.3.1.4).
    pub(super) fn trigger(&mut self, sid: StreamId, pid: PairId) {
        let s = &mut self.streams[sid];
        if s.checklist[pid].removed() {
            return;
        }
        if s.checklist[pid].state() != PairState::Waiting {
            s.checklist.set_state(pid, PairState::Waiting);
        }
        s.checklist.queue_triggered(pid);
    }

    /// Records a valid pair for a component, remembering when the first one appeared.
    pub(super) fn note_valid(&mut self, now: Instant, sid: StreamId, component: ComponentId) {
        if let Some(c) = self.streams[sid].components.get_mut(component) {
            c.first_valid_at.get_or_insert(now);
        }
    }

    /// Controlling, regular nomination (RFC 8445 §8.1.1): once a component has a valid pair
    /// and either no better pair is left to check or the nomination delay has passed,
    /// nominate the best valid pair by checking it again with USE-CANDIDATE.
    pub(super) fn run_nominations(&mut self, now: Instant) {
        if !self.controlling {
            return;
        }
        for sid in self.streams.ids() {
            for component in self.streams[sid].components.ids() {
                let c = &self.streams[sid].components[component];
                let Some(first_valid) = c.first_valid_at else {
                    continue;
                };
                if c.nominating.is_some() || c.done() {
                    continue;
                }
                let s = &self.streams[sid];
                // The best valid pair, and whether a better pair is still being checked.
                let mut better_pending = false;
                let mut best: Option<PairId> = None;
                for &pid in s.checklist.order() {
                    let p = &s.checklist[pid];
                    if p.component != component {
                        continue;
                    }
                    if let Some(v) = p.valid_pair.filter(|&v| s.checklist[v].valid) {
                        best = Some(match best {
                            Some(b) if s.checklist[b].priority >= s.checklist[v].priority => b,
                            _ => v,
                        });
                        break;
                    }
                    if matches!(
                        p.state(),
                        PairState::Frozen | PairState::Waiting | PairState::InProgress
                    ) {
                        better_pending = true;
                    }
                }
                let Some(best) = best else { continue };
                if better_pending && now < first_valid + self.config.nomination_delay {
                    continue;
                }
                // Nominate through the checked pair that produced the valid pair.
                let s = &self.streams[sid];
                let checked = s
                    .checklist
                    .order()
                    .iter()
                    .copied()
                    .find(|&pid| s.checklist[pid].valid_pair == Some(best))
                    .unwrap_or(best);
                tracing::debug!(stream = %sid, %component, "nominating a pair");
                self.request_nomination(sid, component, checked);
            }
        }
    }

    /// Marks valid pair `valid` nominated and selects it if it beats the current selection.
    pub(super) fn nominate(&mut self, now: Instant, sid: StreamId, valid: PairId) {
        let Some(current) = self.mark_nominated(sid, valid) else {
            return;
        };
        let s = &self.streams[sid];
        if current.is_some_and(|c| s.checklist[c].priority >= s.checklist[valid].priority) {
            return;
        }
        self.select_pair(now, sid, valid);
    }

    /// Controlled, renomination: marks valid pair `valid` nominated by the highest
    /// NOMINATION value and selects it, whatever its priority
    /// (draft-thatcher-ice-renomination-01 §4: the controlling agent decides).
    pub(super) fn follow_nomination(&mut self, now: Instant, sid: StreamId, valid: PairId) {
        let Some(current) = self.mark_nominated(sid, valid) else {
            return;
        };
        if current != Some(valid) {
            self.select_pair(now, sid, valid);
        }
    }

    /// Marks valid pair `valid` nominated, unless its component failed (`None`); returns
    /// the component's current selection.
    fn mark_nominated(&mut self, sid: StreamId, valid: PairId) -> Option<Option<PairId>> {
        let s = &mut self.streams[sid];
        let component = s.checklist[valid].component;
        let c = s.components.get(component)?;
        if c.state == ComponentState::Failed {
            return None;
        }
        let current = c.selected;
        s.checklist[valid].nominated = true;
        Some(current)
    }

    /// Makes valid pair `valid` its component's selected pair: consent starts on it, and
    /// [`AgentEvent::SelectedPair`] (the first time) or [`AgentEvent::SelectedPairChanged`]
    /// goes out. The pair selected before stays valid: data the peer still sends on it is
    /// delivered.
    fn select_pair(&mut self, now: Instant, sid: StreamId, valid: PairId) {
        let s = &mut self.streams[sid];
        let component = s.checklist[valid].component;
        let current = s.components[component].selected;
        let c = &mut s.components[component];
        c.selected = Some(valid);
        c.last_sent = Some(now);
        let local = s.local[s.checklist[valid].local].clone();
        let peer = s.remote[s.checklist[valid].remote].candidate.address();
        self.bind_for_selected(now, &local, peer);
        // RFC 7675 §5.1: the check that selected the pair is the first consent.
        self.start_liveness(now, sid, valid);
        let pair = Box::new(self.describe_pair(&self.streams[sid], valid));
        tracing::info!(stream = %sid, %component, local = %pair.local, remote = %pair.remote, "pair selected");
        // After an ICE restart, the pair selected before it hands over (RFC 8445 §9).
        let old = match current {
            Some(old) => Some(Box::new(self.describe_pair(&self.streams[sid], old))),
            None => self
                .release_old_path(sid, component)
                .or_else(|| self.take_lost(sid, component)),
        };
        self.events.push_back(match old {
            Some(old) => AgentEvent::SelectedPairChanged {
                stream: sid,
                component,
                old,
                new: pair,
            },
            None => AgentEvent::SelectedPair {
                stream: sid,
                component,
                pair,
            },
        });
        self.set_component_state(sid, component, ComponentState::Connected);
        self.arm_recheck(now, sid, component);
        // RFC 8445 §8.1.2: the component is done; its unchecked pairs are not checked.
        let s = &mut self.streams[sid];
        let leftovers: Vec<PairId> = s
            .checklist
            .order()
            .iter()
            .copied()
            .filter(|&p| {
                s.checklist[p].component == component
                    && matches!(
                        s.checklist[p].state(),
                        PairState::Frozen | PairState::Waiting
                    )
            })
            .collect();
        for p in leftovers {
            s.checklist.set_state(p, PairState::Failed);
        }
    }

    pub(super) fn set_component_state(
        &mut self,
        sid: StreamId,
        component: ComponentId,
        state: ComponentState,
    ) {
        let Some(c) = self.streams[sid].components.get_mut(component) else {
            return;
        };
        if c.state == state {
            return;
        }
        c.state = state;
        self.events.push_back(AgentEvent::ComponentStateChange {
            stream: sid,
            component,
            state,
        });
    }

    /// RFC 8445 §6.1.2.1, per component: once no more candidates can come on either side
    /// and every pair of a component has failed without a valid pair, it has failed. A
    /// component that lost its selected pair with its socket asks for a restart instead,
    /// as soon as it has no pair left. A lite agent's pairs all come from the peer's
    /// checks (RFC 8445 §2.5): it does not fail for want of them; consent decides once a
    /// pair is selected.
    pub(super) fn check_failures(&mut self, sid: StreamId) {
        let s = &self.streams[sid];
        // A remote candidate still waiting for its mDNS name may yet pair.
        let complete =
            s.remote_eoc && s.gathering == GatherPhase::Complete && !self.mdns.pending_for(sid);
        for component in s.components.ids() {
            let s = &self.streams[sid];
            // During an ICE restart the old pair carries on while it has consent; the
            // component fails only once it is gone (see `restart.rs`).
            if s.components[component].done() || s.previous.get(component).is_some() {
                continue;
            }
            // A component that lost its selected pair with its socket asks for a restart
            // rather than failing, until one begins (see `netchange.rs`).
            let lost_waiting = s.components[component]
                .lost
                .as_ref()
                .is_some_and(|l| !l.restarted);
            if !complete && !lost_waiting {
                continue;
            }
            let alive = s.checklist.ids().any(|pid| {
                let p = &s.checklist[pid];
                p.component == component
                    && !p.removed()
                    && (p.valid || !matches!(p.state(), PairState::Failed))
            });
            if !alive && lost_waiting {
                self.ask_restart(sid, component);
            } else if !alive && !self.lite() && !self.awaits_tcp_checks(sid, component) {
                let failures = self.streams[sid].components[component].check_failures;
                let reason = if failures.unauthorized > 0 {
                    FailureReason::AuthenticationFailed(failures)
                } else {
                    FailureReason::ChecksFailed(failures)
                };
                tracing::info!(stream = %sid, %component, "every pair failed");
                self.fail_component(sid, component, reason);
            }
        }
    }
}
