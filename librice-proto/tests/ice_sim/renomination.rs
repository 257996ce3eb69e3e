//! Renomination (draft-thatcher-ice-renomination-01) on the simulator: two librice agents
//! on the public network with a TURN server; the direct path between them is blocked by a
//! firewall until 2 s after a relayed pair was selected. Data flows both ways at 100
//! datagrams/s throughout, and every datagram is counted. Every run is deterministic.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use librice_proto::agent::{
    AgentConfig, AgentEvent, DEFAULT_RENOMINATION_RECHECK, SelectedPair, TurnServer,
};
use librice_proto::candidate::{CandidateType, IceOption};
use librice_proto::stun::attr::{
    AttributeType, ErrorCode, IceControlling, Nomination, Priority, UseCandidate, Username,
};
use librice_proto::stun::transaction::RetransmitConfig;
use librice_proto::stun::{
    IntegrityKey, Message, MessageClass, MessageType, MessageWriter, TransactionId,
};
use librice_proto::{Transmit, TransportType};

use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, connect, credentials, selected, socket_port,
};
use crate::harness::turn_server::{TurnServerConfig, TurnServerNode};
use crate::harness::{LinkConfig, NodeId, PUBLIC_REALM, Sim};

const STEPS: usize = 2_000_000;
const LATENCY: Duration = Duration::from_millis(10);
/// 100 datagrams/s each way.
const TICK: Duration = Duration::from_millis(10);
/// The direct path opens this long after the relayed pair was selected.
const OPEN_AFTER: Duration = Duration::from_secs(2);

fn link(loss: f64) -> LinkConfig {
    LinkConfig {
        loss,
        ..LinkConfig::with_latency(LATENCY)
    }
}

fn node(sim: &Sim, n: NodeId) -> &AgentNode {
    sim.node::<AgentNode>(n)
}

/// What a world is made of: the simulation, the controlling and the controlled agent.
struct World {
    sim: Sim,
    controlling: NodeId,
    controlled: NodeId,
}

/// Two agents at 192.0.2.1 and 192.0.2.2 with a TURN server, both offering renomination;
/// `announce` says whether each tells the other (controlling's options to the controlled,
/// and back). The direct path between them is blocked. Agent 1 is controlling when
/// `first_controls`.
fn world(seed: u64, first_controls: bool, announce: bool) -> World {
    world_with(seed, first_controls, announce, |c| c)
}

/// [`world`] with both configurations adjusted by `tune`.
fn world_with(
    seed: u64,
    first_controls: bool,
    announce: bool,
    tune: impl Fn(AgentConfig) -> AgentConfig,
) -> World {
    let mut sim = Sim::new(seed);
    sim.set_default_link(link(0.0));
    let turn_listen: SocketAddr = "198.51.100.2:3478".parse().unwrap();
    let relay_ip = "198.51.100.3".parse().unwrap();
    let turn_config = TurnServerConfig::new(turn_listen, relay_ip);
    let (user, pass) = (turn_config.username.clone(), turn_config.password.clone());
    sim.add_node(
        PUBLIC_REALM,
        &[turn_listen.ip(), relay_ip],
        Box::new(TurnServerNode::new(turn_config)),
    );
    let cfg = |controlling, s| {
        tune(
            AgentConfig::default()
                .controlling(controlling)
                .rng_seed(s)
                .turn_server(TurnServer::udp(turn_listen, &user, &pass))
                .renomination(true),
        )
    };
    let one = add_agent(
        &mut sim,
        AgentSpec::new(cfg(first_controls, seed), PUBLIC_REALM, "192.0.2.1"),
    );
    let two = add_agent(
        &mut sim,
        AgentSpec::new(cfg(!first_controls, seed + 1), PUBLIC_REALM, "192.0.2.2"),
    );
    // The firewall: nothing passes directly between the two hosts.
    sim.set_link_both(one, two, link(1.0));
    if announce {
        for n in [one, two] {
            sim.with_node::<AgentNode, _>(n, |n, _| {
                let mut s = n.agent.stream_mut(S0).expect("stream 0");
                s.set_remote_ice_options(&[IceOption::Trickle, IceOption::Renomination]);
                assert!(s.renomination(), "offered and announced");
            });
        }
    }
    let (controlling, controlled) = if first_controls {
        (one, two)
    } else {
        (two, one)
    };
    World {
        sim,
        controlling,
        controlled,
    }
}

fn relayed(p: &SelectedPair) -> bool {
    p.local.candidate_type() == CandidateType::Relayed
        || p.remote.candidate_type() == CandidateType::Relayed
}

fn direct(p: &SelectedPair) -> bool {
    p.local.candidate_type() == CandidateType::Host
        && p.remote.candidate_type() == CandidateType::Host
}

/// The selection changes of node `n`: (when, old, new).
fn changes(sim: &Sim, n: NodeId) -> Vec<(Instant, SelectedPair, SelectedPair)> {
    node(sim, n)
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            AgentEvent::SelectedPairChanged { old, new, .. } => {
                Some((*t, (**old).clone(), (**new).clone()))
            }
            _ => None,
        })
        .collect()
}

/// Datagrams sent and received each way.
#[derive(Debug, Default)]
struct Flow {
    sent: [usize; 2],
    got: [BTreeSet<usize>; 2],
    seen: [usize; 2],
}

impl Flow {
    /// Sends datagram `i` each way on the selected pairs, then drives one tick.
    fn tick(&mut self, sim: &mut Sim, nodes: [NodeId; 2], i: usize) {
        for (k, &from) in nodes.iter().enumerate() {
            let payload = format!("{k}:{i}");
            sim.with_node::<AgentNode, _>(from, |n, now| n.send(now, S0, RTP, payload.as_bytes()));
            self.sent[k] += 1;
        }
        sim.drive_for(TICK, STEPS);
        self.collect(sim, nodes);
    }

    /// Takes what each side received since the last call.
    fn collect(&mut self, sim: &Sim, nodes: [NodeId; 2]) {
        for (k, &to) in nodes.iter().enumerate() {
            let from = 1 - k;
            let received = &node(sim, to).received;
            for (_, _, _, data) in &received[self.seen[k]..] {
                let text = String::from_utf8_lossy(data);
                let (tag, num) = text.split_once(':').expect("k:i");
                assert_eq!(tag, from.to_string(), "a datagram from the other side");
                let num: usize = num.parse().expect("a number");
                assert!(self.got[from].insert(num), "datagram {num} delivered twice");
            }
            self.seen[k] = received.len();
        }
    }

    fn assert_complete(&self, label: &str) {
        for k in 0..2 {
            assert_eq!(
                self.got[k].len(),
                self.sent[k],
                "{label}: side {k} sent {} datagrams, {} arrived",
                self.sent[k],
                self.got[k].len()
            );
        }
    }
}

/// Connects through the relay, sends data for `OPEN_AFTER`, opens the direct path, and
/// keeps sending for `after_open`; returns the flow, when the relayed pair was selected
/// and when the path opened.
fn run(w: &mut World, after_open: Duration) -> (Flow, Instant, Instant) {
    run_opening(w, OPEN_AFTER, after_open)
}

/// [`run`] with the direct path opening `open_after` the selection.
fn run_opening(
    w: &mut World,
    open_after: Duration,
    after_open: Duration,
) -> (Flow, Instant, Instant) {
    let (a, b) = (w.controlling, w.controlled);
    assert!(connect(&mut w.sim, a, b, STEPS), "both sides connect");
    let selected_at =
        node(&w.sim, a).connected_at[&(S0, RTP)].max(node(&w.sim, b).connected_at[&(S0, RTP)]);
    for n in [a, b] {
        let p = selected(&w.sim, n, S0, RTP);
        assert!(relayed(&p), "the relay is selected first: {p:?}");
    }
    let mut flow = Flow::default();
    let nodes = [a, b];
    let mut i = 0;
    while w.sim.now() < selected_at + open_after {
        flow.tick(&mut w.sim, nodes, i);
        i += 1;
    }
    let opened_at = w.sim.now();
    w.sim.set_link_both(a, b, link(0.0));
    while w.sim.now() < opened_at + after_open {
        flow.tick(&mut w.sim, nodes, i);
        i += 1;
    }
    // Let the last datagrams land.
    w.sim.drive_for(Duration::from_millis(200), STEPS);
    flow.collect(&w.sim, nodes);
    (flow, selected_at, opened_at)
}

/// Checks that both sides moved from the relayed pair to the direct one exactly once, the
/// controlled side after the controlling side; prints the figures. Returns
/// (controlling switched, controlled followed).
fn assert_renominated(
    w: &World,
    flow: &Flow,
    opened_at: Instant,
    within: Duration,
    label: &str,
) -> (Instant, Instant) {
    let (a, b) = (w.controlling, w.controlled);
    let ca = changes(&w.sim, a);
    let cb = changes(&w.sim, b);
    assert_eq!(
        ca.len(),
        1,
        "{label}: the controlling side renominates once: {ca:?}"
    );
    assert_eq!(
        cb.len(),
        1,
        "{label}: the controlled side follows once: {cb:?}"
    );
    for (_, old, new) in ca.iter().chain(&cb) {
        assert!(relayed(old), "{label}: from the relayed pair: {old:?}");
        assert!(direct(new), "{label}: to the direct pair: {new:?}");
    }
    for n in [a, b] {
        assert!(direct(&selected(&w.sim, n, S0, RTP)), "{label}");
    }
    let (ta, tb) = (ca[0].0, cb[0].0);
    println!(
        "{label}: direct path open at +0; controlling switched at +{:?}, controlled followed at +{:?}; \
         datagrams controlling->controlled {}/{}, controlled->controlling {}/{}",
        ta - opened_at,
        tb - opened_at,
        flow.got[0].len(),
        flow.sent[0],
        flow.got[1].len(),
        flow.sent[1],
    );
    flow.assert_complete(label);
    // The switch comes `within` the opening; the controlled side follows within a few
    // round trips.
    assert!(
        ta > opened_at && ta - opened_at < within,
        "{label}: {:?}",
        ta - opened_at
    );
    assert!(
        tb + LATENCY * 4 >= ta && tb.saturating_duration_since(ta) < LATENCY * 10,
        "{label}: {:?} {:?}",
        ta - opened_at,
        tb - opened_at
    );
    (ta, tb)
}

/// Librice controlling: the direct pair succeeds 2 s after the relayed pair was selected;
/// the controlling side renominates it with a higher NOMINATION value, the controlled side
/// follows, and no datagram is lost either way.
#[test]
fn controlling_renominates_the_direct_pair() {
    let mut w = world(61, true, true);
    let (flow, _, opened_at) = run(&mut w, Duration::from_secs(3));
    // The check on the direct pair is still being retransmitted (500 ms, doubling) when the
    // path opens: a retransmission gets through within 2 s.
    assert_renominated(
        &w,
        &flow,
        opened_at,
        Duration::from_secs(2),
        "librice controlling",
    );
    // NOMINATION values rise: 1 for the first nomination (of a pair with the peer's
    // relayed address, sent unwrapped), 2 for the renomination of the direct pair; and
    // USE-CANDIDATE is not used (as libwebrtc, when both sides support renomination).
    let values = nomination_values(&w.sim, w.controlling);
    assert_eq!(
        (values.first(), values.last()),
        (Some(&1), Some(&2)),
        "{values:?}"
    );
    assert!(values.windows(2).all(|p| p[0] <= p[1]), "{values:?}");
    let use_candidate = w
        .sim
        .packets()
        .iter()
        .filter(|p| p.node == w.controlling)
        .any(|p| stun_request_has(&p.data, AttributeType::USE_CANDIDATE));
    assert!(!use_candidate, "no USE-CANDIDATE under renomination");
    println!("librice controlling: NOMINATION values sent unwrapped {values:?}");
    // Consent now runs on the direct pair.
    let a = w.controlling;
    let expiry = node(&w.sim, a)
        .agent
        .consent_expiry(S0, RTP)
        .expect("consent runs");
    assert!(expiry > w.sim.now());
}

/// Librice controlled, against a librice controlling peer (roles the other way round on
/// the same hosts): it follows the higher NOMINATION value to the direct pair.
#[test]
fn controlled_follows_the_renomination() {
    let mut w = world(62, false, true);
    let (flow, _, opened_at) = run(&mut w, Duration::from_secs(3));
    let (ta, tb) = assert_renominated(
        &w,
        &flow,
        opened_at,
        Duration::from_secs(2),
        "librice controlled",
    );
    // The controlled side selects when the nominating check reaches it (its own check on
    // the pair has succeeded already), the controlling side when the answer comes back.
    assert!(tb <= ta, "{tb:?} {ta:?}");
    // The controlled side keeps taking data on the old pair until the peer stops using it.
    let b = w.controlled;
    let pairs: BTreeSet<_> = node(&w.sim, b)
        .received
        .iter()
        .map(|(_, _, p, _)| *p)
        .collect();
    assert!(
        pairs.len() >= 2,
        "data came on the relayed pair, then the direct one: {pairs:?}"
    );
}

/// A path that opens long after its checks failed (a network change): the failed direct
/// pair is checked again every 2.5 s, succeeds, and is renominated. Checks give up after
/// 2.5 s here (3 requests) so that the pair has failed well before the path opens.
#[test]
fn a_failed_direct_pair_is_checked_again_and_renominated() {
    let short = RetransmitConfig {
        max_requests: 3,
        last_wait_multiplier: 2,
        ..RetransmitConfig::default()
    };
    let mut w = world_with(65, true, true, |c| c.check_retransmit(short));
    let (flow, _, opened_at) = run_opening(&mut w, Duration::from_secs(6), Duration::from_secs(4));
    // The next recheck is at most 2.5 s away.
    assert_renominated(
        &w,
        &flow,
        opened_at,
        DEFAULT_RENOMINATION_RECHECK + Duration::from_millis(200),
        "after a network change",
    );
}

/// A peer that did not announce `renomination`: regular nomination, so the relayed pair
/// stays selected after the direct path opens, and no NOMINATION goes on the wire.
#[test]
fn without_the_peers_announcement_there_is_no_renomination() {
    let mut w = world(63, true, false);
    for n in [w.controlling, w.controlled] {
        let renom = w.sim.with_node::<AgentNode, _>(n, |n, _| {
            n.agent.stream_mut(S0).expect("s0").renomination()
        });
        assert!(!renom, "offered here, not announced by the peer");
    }
    let (flow, _, opened_at) = run(&mut w, Duration::from_secs(6));
    flow.assert_complete("no renomination");
    for n in [w.controlling, w.controlled] {
        assert!(changes(&w.sim, n).is_empty(), "no selection change on {n}");
        assert!(
            relayed(&selected(&w.sim, n, S0, RTP)),
            "the relayed pair stays"
        );
    }
    let nominations = w
        .sim
        .packets()
        .iter()
        .filter(|p| p.at >= opened_at && stun_request_has(&p.data, AttributeType::NOMINATION))
        .count();
    assert_eq!(nominations, 0, "no NOMINATION on the wire");
    println!(
        "no renomination: datagrams {}/{} and {}/{}, selection unchanged 6 s after the direct path opened",
        flow.got[0].len(),
        flow.sent[0],
        flow.got[1].len(),
        flow.sent[1]
    );
}

/// The controlled side follows the highest NOMINATION value even to a pair of lower
/// priority, ignores a lower one (still answering it), and refuses a malformed one with
/// 400, without a panic or a change of selection.
#[test]
fn a_lower_nomination_value_is_ignored() {
    let mut w = world(64, true, true);
    // The direct path works from the start: the direct pair is selected with value 1.
    w.sim.set_link_both(w.controlling, w.controlled, link(0.0));
    let (a, b) = (w.controlling, w.controlled);
    assert!(connect(&mut w.sim, a, b, STEPS));
    assert!(direct(&selected(&w.sim, b, S0, RTP)));
    w.sim.drive_for(Duration::from_secs(1), STEPS);

    // Checks as the controlling agent would send them. On the controlled side, the pair
    // from the controlling agent's relayed address has a lower priority than the direct one.
    let a_host = SocketAddr::new("192.0.2.1".parse().unwrap(), socket_port(S0, RTP));
    let b_host = SocketAddr::new("192.0.2.2".parse().unwrap(), socket_port(S0, RTP));
    let a_relay = w.sim.with_node::<AgentNode, _>(b, |n, _| {
        n.agent
            .stream_mut(S0)
            .expect("s0")
            .remote_candidates()
            .iter()
            .find(|c| c.candidate_type() == CandidateType::Relayed)
            .map(|c| c.address())
            .expect("the controlling agent signalled a relayed candidate")
    });
    let check = Check {
        username: format!(
            "{}:{}",
            credentials(&mut w.sim, b)[0].ufrag(),
            credentials(&mut w.sim, a)[0].ufrag()
        ),
        key: IntegrityKey::short_term(credentials(&mut w.sim, b)[0].pwd()).unwrap(),
    };

    // A higher value on the lower-priority pair: followed.
    let t5 = check.inject(
        &mut w.sim,
        b,
        a_relay,
        b_host,
        Some(&5u32.to_be_bytes()),
        false,
        1,
    );
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(
        answer(&w.sim, b, t5),
        Some(None),
        "value 5 answered with success"
    );
    let now_selected = selected(&w.sim, b, S0, RTP);
    assert!(
        relayed(&now_selected),
        "value 5 wins over priority: {now_selected:?}"
    );
    let followed = changes(&w.sim, b).len();
    assert_eq!(followed, 1);

    // A lower value on the direct pair: answered, ignored.
    let t3 = check.inject(
        &mut w.sim,
        b,
        a_host,
        b_host,
        Some(&3u32.to_be_bytes()),
        false,
        2,
    );
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(
        answer(&w.sim, b, t3),
        Some(None),
        "value 3 answered with success"
    );
    assert_eq!(
        changes(&w.sim, b).len(),
        followed,
        "value 3 < 5 changes nothing"
    );
    assert!(relayed(&selected(&w.sim, b, S0, RTP)));
    // An equal value too.
    let t5b = check.inject(
        &mut w.sim,
        b,
        a_host,
        b_host,
        Some(&5u32.to_be_bytes()),
        false,
        3,
    );
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(answer(&w.sim, b, t5b), Some(None));
    assert_eq!(
        changes(&w.sim, b).len(),
        followed,
        "an equal value changes nothing"
    );

    // A malformed NOMINATION (3 bytes): refused with 400, nothing else happens.
    let bad = check.inject(&mut w.sim, b, a_host, b_host, Some(&[0, 0, 9]), false, 4);
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(answer(&w.sim, b, bad), Some(Some(ErrorCode::BAD_REQUEST)));
    assert_eq!(changes(&w.sim, b).len(), followed);

    // USE-CANDIDATE without a value, on the pair of higher priority: a value came
    // before, so it changes nothing (draft-thatcher-ice-renomination-01 §4).
    let plain = check.inject(&mut w.sim, b, a_host, b_host, None, true, 6);
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(answer(&w.sim, b, plain), Some(None));
    assert_eq!(
        changes(&w.sim, b).len(),
        followed,
        "USE-CANDIDATE alone changes nothing"
    );
    assert!(relayed(&selected(&w.sim, b, S0, RTP)));

    // A higher value again on the direct pair: followed back.
    let t6 = check.inject(
        &mut w.sim,
        b,
        a_host,
        b_host,
        Some(&6u32.to_be_bytes()),
        false,
        7,
    );
    w.sim.drive_for(Duration::from_secs(1), STEPS);
    assert_eq!(answer(&w.sim, b, t6), Some(None));
    assert!(direct(&selected(&w.sim, b, S0, RTP)), "value 6 is followed");
    println!(
        "nomination values 5 (relayed pair), 3, 5 (ignored), malformed (400), USE-CANDIDATE alone (ignored), 6 (direct pair): {} selection changes on the controlled side",
        changes(&w.sim, b).len()
    );
}

/// A hand-written check from the controlling agent to the controlled one.
struct Check {
    username: String,
    key: IntegrityKey,
}

impl Check {
    /// Gives node `to` a check from `from` to `local` carrying a NOMINATION attribute with
    /// `value` as its bytes, if any, and USE-CANDIDATE if `use_candidate`; returns its
    /// transaction id.
    #[allow(clippy::too_many_arguments)]
    fn inject(
        &self,
        sim: &mut Sim,
        to: NodeId,
        from: SocketAddr,
        local: SocketAddr,
        value: Option<&[u8]>,
        use_candidate: bool,
        n: u8,
    ) -> TransactionId {
        let tid = TransactionId([0xAB, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let mut data = Vec::new();
        let mut w = MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, tid);
        w.add(&Username(&self.username)).unwrap();
        w.add(&Priority(0x6e00_00ff)).unwrap();
        w.add(&IceControlling(1)).unwrap();
        if use_candidate {
            w.add(&UseCandidate).unwrap();
        }
        if let Some(value) = value {
            w.add_raw(AttributeType::NOMINATION, value).unwrap();
        }
        w.add_message_integrity(&self.key).unwrap();
        w.add_fingerprint().unwrap();
        if let Some(value) = value.filter(|v| v.len() == 4) {
            let msg = Message::parse(&data).unwrap();
            let expected = u32::from_be_bytes(value.try_into().unwrap());
            assert_eq!(
                msg.attribute::<Nomination>(),
                Ok(Some(Nomination(expected)))
            );
        }
        sim.with_node::<AgentNode, _>(to, |n, now| {
            let t = Transmit {
                transport: TransportType::Udp,
                from,
                to: local,
                data: data.as_slice(),
            };
            assert!(
                n.agent.handle_incoming(now, t).is_none(),
                "STUN is consumed"
            );
            n.drain_events(now);
        });
        tid
    }
}

/// The answer node `n` sent to transaction `tid`: `Some(None)` for a success,
/// `Some(Some(code))` for an error.
fn answer(sim: &Sim, n: NodeId, tid: TransactionId) -> Option<Option<u16>> {
    sim.packets().iter().filter(|p| p.node == n).find_map(|p| {
        let msg = Message::parse(&p.data).ok()?;
        if msg.transaction_id() != tid {
            return None;
        }
        match msg.class() {
            MessageClass::Success => Some(None),
            MessageClass::Error => Some(
                msg.attribute::<ErrorCode<'_>>()
                    .ok()
                    .flatten()
                    .map(|e| e.code),
            ),
            _ => None,
        }
    })
}

/// The NOMINATION values in the STUN requests node `n` sent unwrapped, in order.
fn nomination_values(sim: &Sim, n: NodeId) -> Vec<u32> {
    sim.packets()
        .iter()
        .filter(|p| p.node == n)
        .filter_map(|p| {
            let msg = Message::parse(&p.data).ok()?;
            (msg.class() == MessageClass::Request).then_some(())?;
            msg.attribute::<Nomination>()
                .ok()
                .flatten()
                .map(|Nomination(v)| v)
        })
        .collect()
}

/// True if `data` is a STUN request carrying attribute `ty`.
fn stun_request_has(data: &[u8], ty: AttributeType) -> bool {
    Message::parse(data).is_ok_and(|m| m.class() == MessageClass::Request && m.has_attribute(ty))
}

/// The same seed gives the same run, renomination included, byte for byte.
#[test]
fn renomination_runs_are_reproducible() {
    let transcript = || {
        let mut w = world(66, true, true);
        let (flow, _, opened_at) = run(&mut w, Duration::from_secs(2));
        assert_renominated(&w, &flow, opened_at, Duration::from_secs(2), "reproducible");
        w.sim.transcript().to_vec()
    };
    assert!(transcript() == transcript(), "two runs differ");
}
