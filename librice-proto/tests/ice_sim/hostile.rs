//! Hostile traffic: a rogue host on the public internet floods the agents' sockets with
//! garbage, malformed STUN, unauthenticated or badly authenticated checks and a stray
//! response. The agents must answer only with error responses (or not at all), keep their
//! check lists and selected pairs, never learn the rogue as a peer-reflexive candidate, and
//! keep carrying data.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use librice_proto::agent::{AgentConfig, ComponentState, PairInfo, SelectedPair};
use librice_proto::candidate::Candidate;
use librice_proto::stun::attr::{
    AttributeType, ErrorCode, IceControlled, IceControlling, Priority, Username, XorMappedAddress,
};
use librice_proto::stun::{
    IntegrityKey, Message, MessageClass, MessageType, MessageWriter, Method, TransactionId,
};
use librice_proto::{Transmit, TransportType};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::harness::ice::{
    AgentNode, AgentSpec, RTP, S0, add_agent, connect, credentials, give_credentials, send_data,
    signal, socket_port,
};
use crate::harness::{Node, NodeId, PUBLIC_REALM, Sim};

const STEPS: usize = 500_000;
const ROGUE_IP: &str = "198.51.100.66";

/// A node that sends the datagrams it is given and records everything it receives.
#[derive(Debug, Default)]
pub struct RogueNode {
    outbox: VecDeque<Transmit<Vec<u8>>>,
    /// Everything received.
    pub received: Vec<Transmit<Vec<u8>>>,
}

impl RogueNode {
    /// Queues datagrams to send.
    pub fn queue(&mut self, datagrams: impl IntoIterator<Item = Transmit<Vec<u8>>>) {
        self.outbox.extend(datagrams);
    }
}

impl Node for RogueNode {
    fn handle_incoming(&mut self, _now: Instant, transmit: Transmit<Vec<u8>>) {
        self.received.push(transmit);
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit<Vec<u8>>> {
        self.outbox.pop_front()
    }
}

/// What the rogue sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    Garbage,
    TruncatedHeader,
    NoCredentials,
    WrongPassword,
    WrongUsername,
    BadFingerprint,
    NoPriority,
    BothRoles,
    StraySuccess,
    UnknownAttribute,
    Huge,
}

const PROBES: [Probe; 11] = [
    Probe::Garbage,
    Probe::TruncatedHeader,
    Probe::NoCredentials,
    Probe::WrongPassword,
    Probe::WrongUsername,
    Probe::BadFingerprint,
    Probe::NoPriority,
    Probe::BothRoles,
    Probe::StraySuccess,
    Probe::UnknownAttribute,
    Probe::Huge,
];

impl Probe {
    /// The error code the agent must answer with, or `None` for silence.
    fn expected(self) -> Option<u16> {
        match self {
            // RFC 8489 §9.1.3: no USERNAME or MESSAGE-INTEGRITY -> 400 (the huge request
            // carries neither); bad credentials -> 401.
            Probe::NoCredentials | Probe::Huge => Some(ErrorCode::BAD_REQUEST),
            Probe::WrongPassword | Probe::WrongUsername => Some(ErrorCode::UNAUTHENTICATED),
            // RFC 8445 §7.1.1 (PRIORITY mandatory), §7.1.3 (exactly one role attribute).
            Probe::NoPriority | Probe::BothRoles => Some(ErrorCode::BAD_REQUEST),
            Probe::Garbage
            | Probe::TruncatedHeader
            | Probe::BadFingerprint
            | Probe::StraySuccess
            | Probe::UnknownAttribute => None,
        }
    }
}

/// The rogue's source port for a probe to target `t`: responses are matched by it.
fn rogue_port(target: usize, probe: usize) -> u16 {
    40_000 + 100 * u16::try_from(target).unwrap() + u16::try_from(probe).unwrap()
}

/// What the rogue knows of one agent.
struct Target {
    socket: SocketAddr,
    /// "local ufrag:remote ufrag" as the agent expects it.
    username: String,
    key: IntegrityKey,
    /// The peer's password: what the agent's own checks are answered with.
    peer_key: IntegrityKey,
    /// Claim the role opposite to the agent's, so that no role conflict muddles things.
    claim_controlling: bool,
}

fn target(sim: &mut Sim, node: NodeId, peer: NodeId) -> Target {
    let local = credentials(sim, node).remove(0);
    let remote = credentials(sim, peer).remove(0);
    let controlling = sim.node::<AgentNode>(node).agent.controlling();
    Target {
        socket: SocketAddr::new(sim.ips_of(node)[0], socket_port(S0, RTP)),
        username: format!("{}:{}", local.ufrag(), remote.ufrag()),
        key: IntegrityKey::short_term(local.pwd()).unwrap(),
        peer_key: IntegrityKey::short_term(remote.pwd()).unwrap(),
        claim_controlling: !controlling,
    }
}

/// A Binding request with the given parts; `extra` is added before MESSAGE-INTEGRITY.
fn request(
    tid: TransactionId,
    username: Option<&str>,
    key: Option<&IntegrityKey>,
    priority: bool,
    roles: (bool, bool),
    extra: Option<(AttributeType, &[u8])>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, tid);
    if let Some(u) = username {
        w.add(&Username(u)).unwrap();
    }
    if priority {
        w.add(&Priority(0x6E7F_FFFF)).unwrap();
    }
    if roles.0 {
        w.add(&IceControlling(u64::MAX - 1)).unwrap();
    }
    if roles.1 {
        w.add(&IceControlled(u64::MAX - 1)).unwrap();
    }
    if let Some((ty, value)) = extra {
        w.add_raw(ty, value).unwrap();
    }
    if let Some(k) = key {
        w.add_message_integrity(k).unwrap();
    }
    w.add_fingerprint().unwrap();
    buf
}

fn probe_bytes(probe: Probe, t: &Target, tid: TransactionId, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let role = (t.claim_controlling, !t.claim_controlling);
    let user = Some(t.username.as_str());
    let key = Some(&t.key);
    match probe {
        Probe::Garbage => {
            let mut data = vec![0u8; 200];
            rng.fill_bytes(&mut data);
            data
        }
        Probe::TruncatedHeader => request(tid, user, key, true, role, None)[..12].to_vec(),
        Probe::NoCredentials => request(tid, None, None, true, role, None),
        Probe::WrongPassword => {
            let wrong = IntegrityKey::short_term("notthepasswordnotthepassword").unwrap();
            request(tid, user, Some(&wrong), true, role, None)
        }
        Probe::WrongUsername => {
            let (_, remote) = t.username.split_once(':').unwrap();
            let wrong = format!("zzzz:{remote}");
            request(tid, Some(&wrong), key, true, role, None)
        }
        Probe::BadFingerprint => {
            let mut data = request(tid, user, key, true, role, None);
            *data.last_mut().unwrap() ^= 0x01;
            data
        }
        Probe::NoPriority => request(tid, user, key, false, role, None),
        Probe::BothRoles => request(tid, user, key, true, (true, true), None),
        Probe::StraySuccess => {
            // Signed as the peer would sign it: only the transaction id is wrong.
            let mut buf = Vec::new();
            let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, tid);
            w.add(&XorMappedAddress(t.socket)).unwrap();
            w.add_message_integrity(&t.peer_key).unwrap();
            w.add_fingerprint().unwrap();
            buf
        }
        Probe::UnknownAttribute => {
            let unknown = AttributeType::new(0x7F01);
            assert!(unknown.is_comprehension_required() && !unknown.is_known());
            request(tid, user, key, true, role, Some((unknown, b"boom")))
        }
        Probe::Huge => {
            // 64 KiB on the wire: a header and one comprehension-optional attribute.
            let filler = vec![0x55u8; 65_536 - 20 - 4];
            let mut buf = Vec::new();
            let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, tid);
            w.add_raw(AttributeType::new(0x8FFF), &filler).unwrap();
            assert_eq!(buf.len(), 65_536);
            buf
        }
    }
}

/// Has the rogue send every probe to every target, now.
fn flood(sim: &mut Sim, rogue: NodeId, targets: &[Target], round: u8) {
    let ip: IpAddr = ROGUE_IP.parse().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from(round));
    let mut datagrams = Vec::new();
    for (ti, t) in targets.iter().enumerate() {
        for (pi, &probe) in PROBES.iter().enumerate() {
            let mut id = [0xA5u8; 12];
            id[0] = round;
            id[1] = u8::try_from(ti).unwrap();
            id[2] = u8::try_from(pi).unwrap();
            datagrams.push(Transmit {
                transport: TransportType::Udp,
                from: SocketAddr::new(ip, rogue_port(ti, pi)),
                to: t.socket,
                data: probe_bytes(probe, t, TransactionId(id), &mut rng),
            });
        }
    }
    sim.with_node::<RogueNode, _>(rogue, |r, _| r.queue(datagrams));
}

/// Checks what the rogue got back after `rounds` floods of `targets` targets: never a
/// success, and per probe exactly the expected error `rounds` times or nothing.
fn assert_rogue_answers(sim: &Sim, rogue: NodeId, targets: usize, rounds: usize) {
    let mut got: BTreeMap<(usize, Probe), Vec<u16>> = BTreeMap::new();
    for t in &sim.node::<RogueNode>(rogue).received {
        let msg = Message::parse(&t.data).expect("the agents send well-formed STUN");
        assert_eq!(msg.method(), Method::BINDING);
        assert_ne!(
            msg.class(),
            MessageClass::Success,
            "the rogue got a success response on port {}",
            t.to.port()
        );
        assert_eq!(msg.class(), MessageClass::Error);
        let port = t.to.port() - 40_000;
        let (ti, pi) = (usize::from(port / 100), usize::from(port % 100));
        let code = msg
            .attribute::<ErrorCode>()
            .unwrap()
            .expect("ERROR-CODE")
            .code;
        got.entry((ti, PROBES[pi])).or_default().push(code);
    }
    let mut expected: BTreeMap<(usize, Probe), Vec<u16>> = BTreeMap::new();
    for ti in 0..targets {
        for probe in PROBES {
            if let Some(code) = probe.expected() {
                expected.insert((ti, probe), vec![code; rounds]);
            }
        }
    }
    assert_eq!(
        got, expected,
        "responses the rogue got, per (target, probe)"
    );
}

/// What must not change under the flood.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    pairs: Vec<PairInfo>,
    remotes: Vec<Candidate>,
    selected: Option<SelectedPair>,
    state: Option<ComponentState>,
    controlling: bool,
}

fn snapshot(sim: &mut Sim, node: NodeId) -> Snapshot {
    sim.with_node::<AgentNode, _>(node, |n, _| {
        let s = n.agent.stream_mut(S0).unwrap();
        let (pairs, remotes) = (s.pairs(), s.remote_candidates());
        Snapshot {
            pairs,
            remotes,
            selected: n.agent.selected_pair(S0, RTP),
            state: n.agent.component_state(S0, RTP),
            controlling: n.agent.controlling(),
        }
    })
}

fn assert_rogue_unknown(sim: &mut Sim, node: NodeId) {
    let ip: IpAddr = ROGUE_IP.parse().unwrap();
    let snap = snapshot(sim, node);
    assert!(
        snap.remotes.iter().all(|c| c.address().ip() != ip),
        "node {node} learnt the rogue as a candidate: {:?}",
        snap.remotes
    );
    assert!(snap.pairs.iter().all(|p| p.remote.address().ip() != ip));
}

fn assert_data_both_ways(sim: &mut Sim, a: NodeId, b: NodeId) {
    for (from, to) in [(a, b), (b, a)] {
        let got = send_data(sim, from, to, 10, Duration::from_millis(200));
        assert_eq!(got.get(&(S0, RTP)), Some(&10), "{from}->{to}");
    }
}

fn config(controlling: bool, seed: u64) -> AgentConfig {
    AgentConfig::default()
        .controlling(controlling)
        .rng_seed(seed)
}

fn setup(seed: u64) -> (Sim, NodeId, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    let a = add_agent(
        &mut sim,
        AgentSpec::new(config(true, seed), PUBLIC_REALM, "192.0.2.1"),
    );
    let b = add_agent(
        &mut sim,
        AgentSpec::new(config(false, seed + 1), PUBLIC_REALM, "192.0.2.2"),
    );
    let rogue = sim.add_node(
        PUBLIC_REALM,
        &[ROGUE_IP.parse().unwrap()],
        Box::new(RogueNode::default()),
    );
    (sim, a, b, rogue)
}

#[test]
fn flood_after_connecting_changes_nothing() {
    let (mut sim, a, b, rogue) = setup(41);
    assert!(connect(&mut sim, a, b, STEPS));
    // Let the last checks and nominations settle.
    sim.drive_for(Duration::from_secs(2), STEPS);
    let before = (snapshot(&mut sim, a), snapshot(&mut sim, b));
    assert_eq!(before.0.state, Some(ComponentState::Connected));
    assert_eq!(before.1.state, Some(ComponentState::Connected));
    let targets = [target(&mut sim, a, b), target(&mut sim, b, a)];
    flood(&mut sim, rogue, &targets, 1);
    sim.drive_for(Duration::from_millis(500), STEPS);
    assert_rogue_answers(&sim, rogue, targets.len(), 1);
    let after = (snapshot(&mut sim, a), snapshot(&mut sim, b));
    assert_eq!(after.0, before.0, "agent A's state changed under the flood");
    assert_eq!(after.1, before.1, "agent B's state changed under the flood");
    assert_rogue_unknown(&mut sim, a);
    assert_rogue_unknown(&mut sim, b);
    assert_data_both_ways(&mut sim, a, b);
}

#[test]
fn flood_during_checks_does_not_prevent_connecting() {
    let (mut sim, a, b, rogue) = setup(43);
    give_credentials(&mut sim, a, b);
    give_credentials(&mut sim, b, a);
    signal(&mut sim, a, b);
    signal(&mut sim, b, a);
    let targets = [target(&mut sim, a, b), target(&mut sim, b, a)];
    // Right after the credentials, and again while the checks run.
    flood(&mut sim, rogue, &targets, 1);
    sim.drive_for(Duration::from_millis(20), STEPS);
    assert!(
        !sim.node_mut::<AgentNode>(a).all_connected(),
        "the second flood comes while A is still checking"
    );
    flood(&mut sim, rogue, &targets, 2);
    let done = sim.drive_until(STEPS, |sim| {
        signal(sim, a, b);
        signal(sim, b, a);
        sim.node_mut::<AgentNode>(a).all_settled() && sim.node_mut::<AgentNode>(b).all_settled()
    });
    assert!(done);
    assert!(sim.node_mut::<AgentNode>(a).all_connected());
    assert!(sim.node_mut::<AgentNode>(b).all_connected());
    sim.drive_for(Duration::from_millis(500), STEPS);
    assert_rogue_answers(&sim, rogue, targets.len(), 2);
    assert_rogue_unknown(&mut sim, a);
    assert_rogue_unknown(&mut sim, b);
    assert_data_both_ways(&mut sim, a, b);
}
