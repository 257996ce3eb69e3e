//! Statistics: per candidate pair, per component and per candidate, with the fields of the
//! W3C `RTCIceCandidatePairStats` and `RTCIceCandidateStats` that apply to an ICE agent
//! (<https://www.w3.org/TR/webrtc-stats/>). [`Agent::stats`] takes a snapshot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::pairs::PairState;
use super::{Agent, ComponentId, ComponentState, ConsentStats, FailureReason, PairId, StreamId};
use crate::candidate::Candidate;

/// The counters the agent keeps for a pair (see [`PairStats`] for their meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PairCounters {
    // The counts of checks in 32 bits (24 B less a pair), saturating: a check every
    // 50 ms (Ta) would take 6 years to reach 2^32.
    requests_sent: u32,
    requests_received: u32,
    responses_sent: u32,
    responses_received: u32,
    consent_requests_sent: u32,
    rtt_measurements: u32,
    // The round-trip times in nanoseconds (16 B less a pair than two `Duration`s; exact
    // below 584 years): the latest, `NO_RTT` before the first, and their sum, saturating.
    current_rtt_ns: u64,
    total_rtt_ns: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub last_packet_sent: Option<Instant>,
    pub last_packet_received: Option<Instant>,
}

/// [`PairCounters::current_rtt_ns`] before the first round-trip time.
const NO_RTT: u64 = u64::MAX;

impl Default for PairCounters {
    fn default() -> Self {
        Self {
            requests_sent: 0,
            requests_received: 0,
            responses_sent: 0,
            responses_received: 0,
            consent_requests_sent: 0,
            rtt_measurements: 0,
            current_rtt_ns: NO_RTT,
            total_rtt_ns: 0,
            packets_sent: 0,
            bytes_sent: 0,
            packets_received: 0,
            bytes_received: 0,
            last_packet_sent: None,
            last_packet_received: None,
        }
    }
}

impl PairCounters {
    /// A response to a check sent at `sent_at` came at `now`.
    pub fn response(&mut self, now: Instant, sent_at: Instant) {
        self.responses_received = self.responses_received.saturating_add(1);
        let rtt = now.saturating_duration_since(sent_at);
        let ns = u64::try_from(rtt.as_nanos()).map_or(NO_RTT - 1, |ns| ns.min(NO_RTT - 1));
        self.current_rtt_ns = ns;
        self.total_rtt_ns = self.total_rtt_ns.saturating_add(ns);
        self.rtt_measurements = self.rtt_measurements.saturating_add(1);
    }

    /// The round-trip time of the latest answered check.
    pub fn current_rtt(&self) -> Option<Duration> {
        (self.current_rtt_ns != NO_RTT).then(|| Duration::from_nanos(self.current_rtt_ns))
    }

    /// The sum of the round-trip times of answered checks.
    pub fn total_rtt(&self) -> Duration {
        Duration::from_nanos(self.total_rtt_ns)
    }

    /// A check went out on the pair.
    pub fn request_sent(&mut self) {
        self.requests_sent = self.requests_sent.saturating_add(1);
    }

    /// A consent check went out on the pair.
    pub fn consent_request_sent(&mut self) {
        self.consent_requests_sent = self.consent_requests_sent.saturating_add(1);
    }

    /// The peer's check came on the pair, and was answered.
    pub fn request_answered(&mut self) {
        self.requests_received = self.requests_received.saturating_add(1);
        self.responses_sent = self.responses_sent.saturating_add(1);
    }

    /// Application data sent on the pair.
    pub fn sent(&mut self, now: Instant, packets: u64, bytes: u64) {
        self.packets_sent += packets;
        self.bytes_sent += bytes;
        self.last_packet_sent = Some(now);
    }

    /// Application data received on the pair.
    pub fn received(&mut self, now: Instant, bytes: usize) {
        self.packets_received += 1;
        self.bytes_received += bytes as u64;
        self.last_packet_received = Some(now);
    }
}

/// A snapshot of one candidate pair (W3C `RTCIceCandidatePairStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairStats {
    /// The pair's id within its stream: the [`ReceivedData::pair`](super::ReceivedData::pair)
    /// of data that arrived on it, and the [`ComponentStats::selected_pair`] of its
    /// component while selected.
    pub id: PairId,
    /// The component.
    pub component: ComponentId,
    /// The local candidate: an index into [`StreamStats::local_candidates`] of the same
    /// snapshot. Candidates are only ever added to a stream, so the index also holds in a
    /// later snapshot.
    pub local: usize,
    /// The remote candidate: an index into [`StreamStats::remote_candidates`] of the same
    /// snapshot (and of later ones, as for `local`).
    pub remote: usize,
    /// The pair priority (RFC 8445 §6.1.2.3).
    pub priority: u64,
    /// The state (`state`).
    pub state: PairState,
    /// True for a pair in the check list, false for a valid pair made from a mapped
    /// address (RFC 8445 §7.2.5.3.2).
    pub in_checklist: bool,
    /// True once a check produced this valid pair.
    pub valid: bool,
    /// True once nominated (`nominated`).
    pub nominated: bool,
    /// True while it is its component's selected pair.
    pub selected: bool,
    /// Connectivity checks sent, retransmissions not counted (`requestsSent`).
    pub requests_sent: u64,
    /// Checks received from the peer, consent checks included (`requestsReceived`).
    pub requests_received: u64,
    /// Success responses sent to the peer's checks (`responsesSent`).
    pub responses_sent: u64,
    /// Responses received to our checks and consent checks (`responsesReceived`).
    pub responses_received: u64,
    /// Consent checks sent (RFC 7675; `consentRequestsSent`).
    pub consent_requests_sent: u64,
    /// The round-trip time of the latest answered check, measured from its first
    /// transmission (`currentRoundTripTime`).
    pub current_round_trip_time: Option<Duration>,
    /// The sum of the round-trip times of answered checks (`totalRoundTripTime`); divide
    /// by `responses_received` for the mean.
    pub total_round_trip_time: Duration,
    /// Application datagrams sent (`packetsSent`).
    pub packets_sent: u64,
    /// Application bytes sent, without STUN, TURN or transport headers (`bytesSent`).
    pub bytes_sent: u64,
    /// Application datagrams received (`packetsReceived`).
    pub packets_received: u64,
    /// Application bytes received (`bytesReceived`).
    pub bytes_received: u64,
    /// When application data was last sent (`lastPacketSentTimestamp`).
    pub last_packet_sent: Option<Instant>,
    /// When application data was last received (`lastPacketReceivedTimestamp`).
    pub last_packet_received: Option<Instant>,
}

/// A snapshot of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentStats {
    /// The component.
    pub component: ComponentId,
    /// Its state.
    pub state: ComponentState,
    /// Its selected pair, one of [`StreamStats::pairs`] ([`StreamStats::pair`] finds it).
    pub selected_pair: Option<PairId>,
    /// Why it failed, once it has.
    pub failure: Option<FailureReason>,
    /// Consent freshness counters.
    pub consent: ConsentStats,
    /// Application datagrams dropped because they came from an unverified address.
    pub dropped_unverified: u64,
    /// The sums over its pairs of the application data counters.
    pub packets_sent: u64,
    /// See `packets_sent`.
    pub bytes_sent: u64,
    /// See `packets_sent`.
    pub packets_received: u64,
    /// See `packets_sent`.
    pub bytes_received: u64,
}

/// A snapshot of one candidate (W3C `RTCIceCandidateStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CandidateStats {
    /// The candidate: its address, port, transport, type and priority.
    pub candidate: Candidate,
    /// Local candidates: the socket it sends from (its base, or the relayed address).
    pub base: Option<SocketAddr>,
}

/// A snapshot of one stream's statistics ([`Agent::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStats {
    /// The stream.
    pub stream: StreamId,
    /// Every pair, pruned ones left out, check-list pairs by priority first.
    pub pairs: Vec<PairStats>,
    /// Every component, in id order.
    pub components: Vec<ComponentStats>,
    /// The local candidates, peer-reflexive ones included.
    pub local_candidates: Vec<CandidateStats>,
    /// The remote candidates, peer-reflexive ones included.
    pub remote_candidates: Vec<CandidateStats>,
}

impl StreamStats {
    /// The pair with id `id`, if the snapshot has it (pruned pairs are left out).
    pub fn pair(&self, id: PairId) -> Option<&PairStats> {
        self.pairs.iter().find(|p| p.id == id)
    }

    /// The selected pair of `component`, if it has one.
    pub fn selected_pair(&self, component: ComponentId) -> Option<&PairStats> {
        let c = self.components.iter().find(|c| c.component == component)?;
        self.pair(c.selected_pair?)
    }
}

impl Agent {
    /// A snapshot of the statistics of stream `stream`. It copies counters and candidates,
    /// nothing more: cheap enough to call every second.
    pub fn stats(&self, stream: StreamId) -> Option<StreamStats> {
        let s = self.streams.get(stream)?;
        let outside = s
            .checklist
            .ids()
            .filter(|&p| !s.checklist[p].in_checklist());
        let ids: Vec<PairId> = s
            .checklist
            .order()
            .iter()
            .copied()
            .chain(outside)
            .filter(|&p| !s.checklist[p].removed())
            .collect();
        let selected: Vec<Option<PairId>> = s.components.iter().map(|c| c.selected).collect();
        let pairs: Vec<PairStats> = ids
            .iter()
            .map(|&pid| {
                let p = &s.checklist[pid];
                let n = &p.stats;
                PairStats {
                    id: pid,
                    component: p.component,
                    local: p.local,
                    remote: p.remote,
                    priority: p.priority,
                    state: p.state(),
                    in_checklist: p.in_checklist(),
                    valid: p.valid,
                    nominated: p.nominated,
                    selected: selected.contains(&Some(pid)),
                    requests_sent: n.requests_sent.into(),
                    requests_received: n.requests_received.into(),
                    responses_sent: n.responses_sent.into(),
                    responses_received: n.responses_received.into(),
                    consent_requests_sent: n.consent_requests_sent.into(),
                    current_round_trip_time: n.current_rtt(),
                    total_round_trip_time: n.total_rtt(),
                    packets_sent: n.packets_sent,
                    bytes_sent: n.bytes_sent,
                    packets_received: n.packets_received,
                    bytes_received: n.bytes_received,
                    last_packet_sent: n.last_packet_sent,
                    last_packet_received: n.last_packet_received,
                }
            })
            .collect();
        let components = s
            .components
            .ids()
            .zip(&s.components)
            .map(|(component, c)| {
                let mine = pairs.iter().filter(|p| p.component == component);
                let sum = |f: fn(&PairStats) -> u64| mine.clone().map(f).sum();
                ComponentStats {
                    component,
                    state: c.state,
                    selected_pair: c.selected.filter(|sel| ids.contains(sel)),
                    failure: c.failure.as_deref().copied(),
                    consent: c.consent_stats,
                    dropped_unverified: c.dropped_unverified,
                    packets_sent: sum(|p| p.packets_sent),
                    bytes_sent: sum(|p| p.bytes_sent),
                    packets_received: sum(|p| p.packets_received),
                    bytes_received: sum(|p| p.bytes_received),
                }
            })
            .collect();
        Some(StreamStats {
            stream,
            pairs,
            components,
            local_candidates: s
                .local
                .iter()
                .map(|l| CandidateStats {
                    candidate: l.candidate.clone(),
                    base: Some(l.base),
                })
                .collect(),
            remote_candidates: s
                .remote
                .iter()
                .map(|r| CandidateStats {
                    candidate: r.candidate.clone(),
                    base: None,
                })
                .collect(),
        })
    }

    /// Counts application data the caller sent on a component's selected pair without
    /// [`ComponentMut::send`](super::ComponentMut::send) (after
    /// [`ComponentMut::send_target`](super::ComponentMut::send_target)): `packets`
    /// datagrams, `bytes` bytes, the last at `now`. Does nothing without a selected pair.
    pub fn record_sent(
        &mut self,
        now: Instant,
        stream: StreamId,
        component: ComponentId,
        packets: u64,
        bytes: u64,
    ) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(pid) = s.components.get(component).and_then(|c| c.selected) else {
            return;
        };
        s.checklist[pid].stats.sent(now, packets, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_times_are_kept_exactly_in_nanoseconds() {
        let mut c = PairCounters::default();
        assert_eq!((c.current_rtt(), c.total_rtt()), (None, Duration::ZERO));
        #[allow(clippy::disallowed_methods)] // Only a base for offsets: any instant will do.
        let t0 = Instant::now();
        c.response(t0, t0);
        assert_eq!(c.current_rtt(), Some(Duration::ZERO), "a zero RTT is one");
        let rtt = Duration::new(1, 234_567_891);
        c.response(t0 + rtt, t0);
        assert_eq!((c.current_rtt(), c.total_rtt()), (Some(rtt), rtt));
        c.response(t0 + Duration::from_millis(5), t0);
        assert_eq!(c.current_rtt(), Some(Duration::from_millis(5)));
        assert_eq!(c.total_rtt(), rtt + Duration::from_millis(5));
    }
}
