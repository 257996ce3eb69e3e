//! Unit tests of the mux: routing rules, drops, the ufrag registry, removal, and one
//! client connecting through it on a perfect in-process network. The NAT scenarios with
//! many clients are in `tests/ice_sim/mux.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::router::local_ufrag;
use super::*;
use crate::agent::{AgentConfig, ComponentId, ComponentState, StreamId};
use crate::candidate::IceCredentials;
use crate::stun::attr::AttributeType;
use crate::stun::{Message, MessageClass, Method};
use crate::stun::{MessageType, MessageWriter, TransactionId};
use crate::{Transmit, TransportType};

const S0: StreamId = StreamId::from_index(0);
const RTP: ComponentId = ComponentId::RTP;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

fn shared() -> SocketAddr {
    addr("192.0.2.1:3478")
}

#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

/// An agent with one stream of one component on `local`.
fn agent(config: AgentConfig, local: SocketAddr, now: Instant) -> Agent {
    let mut agent = Agent::new(config);
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).expect("just added");
    let c = s.add_component().expect("the first component");
    s.add_local_socket(c, TransportType::Udp, local)
        .expect("a new socket");
    s.gather_candidates(now).expect("gathering starts");
    agent
}

fn udp(from: SocketAddr, to: SocketAddr, data: &[u8]) -> Transmit<&[u8]> {
    Transmit {
        transport: TransportType::Udp,
        from,
        to,
        data,
    }
}

/// A Binding request with `username` (raw bytes) and nothing else.
fn check_with_username(username: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(MessageClass::Request, Method::BINDING),
        TransactionId([7; 12]),
    );
    w.add_raw(AttributeType::USERNAME, username).expect("fits");
    let _ = w.finish();
    buf
}

#[test]
fn the_local_ufrag_is_the_part_before_the_first_colon() {
    assert_eq!(local_ufrag(b"abcd:efgh"), Some("abcd"));
    assert_eq!(local_ufrag(b"abcd:ef:gh"), Some("abcd"));
    assert_eq!(local_ufrag(b"abcd:"), Some("abcd"));
    assert_eq!(local_ufrag(b"abcd"), None, "no colon");
    assert_eq!(local_ufrag(b":efgh"), None, "empty local part");
    assert_eq!(local_ufrag(b"\xff\xfe:efgh"), None, "not UTF-8");
}

#[test]
fn unknown_sources_ufrags_and_malformed_checks_are_dropped_and_counted() {
    let now = start();
    let mut mux = Mux::default();
    let id = mux
        .add_agent(agent(
            AgentConfig::default().lite(true).rng_seed(1),
            shared(),
            now,
        ))
        .expect("added");
    let from = addr("198.51.100.1:4000");
    assert_eq!(
        mux.handle_incoming(now, udp(from, shared(), b"data")),
        MuxIncoming::Dropped(MuxDrop::UnknownSource)
    );
    let unknown = check_with_username(b"nosuchufrag:peer");
    assert_eq!(
        mux.handle_incoming(now, udp(from, shared(), &unknown)),
        MuxIncoming::Dropped(MuxDrop::UnknownUfrag)
    );
    for bad in [&b"nocolon"[..], b":peer", b"\xff:peer"] {
        let check = check_with_username(bad);
        assert_eq!(
            mux.handle_incoming(now, udp(from, shared(), &check)),
            MuxIncoming::Dropped(MuxDrop::MalformedUsername)
        );
    }
    // Looks like STUN (cookie, leading bits), but the length runs past the end.
    let mut broken = check_with_username(b"x:y");
    broken[3] = 200;
    assert_eq!(
        mux.handle_incoming(now, udp(from, shared(), &broken)),
        MuxIncoming::Dropped(MuxDrop::Malformed)
    );
    let stats = mux.stats();
    assert_eq!(stats.dropped_unknown_source, 1);
    assert_eq!(stats.dropped_unknown_ufrag, 1);
    assert_eq!(stats.dropped_malformed_username, 3);
    assert_eq!(stats.dropped_malformed, 1);
    assert_eq!(mux.tuple_count(), 0);
    // A check with the agent's ufrag reaches it (it refuses it: no integrity).
    let ufrag = mux
        .agent_mut(id)
        .expect("present")
        .stream_mut(S0)
        .expect("stream")
        .local_credentials()
        .ufrag()
        .to_owned();
    let known = check_with_username(format!("{ufrag}:peer").as_bytes());
    assert_eq!(mux.route(&udp(from, shared(), &known)), Ok(id));
    assert_eq!(
        mux.handle_incoming(now, udp(from, shared(), &known)),
        MuxIncoming::Handled(id)
    );
    assert_eq!(mux.stats().routed_by_ufrag, 1);
    // Its error response teaches the mux nothing.
    while mux.poll_transmit(now).is_some() {}
    assert_eq!(mux.tuple_count(), 0);
}

#[test]
fn an_agent_whose_ufrag_is_taken_is_handed_back() {
    let now = start();
    let mut mux = Mux::default();
    let config = AgentConfig::default().lite(true).rng_seed(5);
    mux.add_agent(agent(config.clone(), shared(), now))
        .expect("the first");
    match mux.add_agent(agent(config, shared(), now)) {
        Err(MuxError::UfragInUse { agent, ufrag }) => {
            assert_eq!(agent.stream_count(), 1);
            assert!(mux.has_ufrag(&ufrag));
        }
        other => panic!("expected UfragInUse, got {other:?}"),
    }
    assert_eq!(mux.len(), 1);
    assert_eq!(mux.ufrag_count(), 1);
}

/// A full client on its own address and the mux, on a network that delivers at once.
struct Net {
    now: Instant,
    mux: Mux,
    clients: Vec<(SocketAddr, Agent)>,
    /// Data received by the mux: (agent, bytes).
    mux_data: Vec<(MuxAgentId, Vec<u8>)>,
    /// Data received by client i.
    client_data: Vec<Vec<Vec<u8>>>,
}

impl Net {
    fn new(now: Instant) -> Net {
        Net {
            now,
            mux: Mux::default(),
            clients: Vec::new(),
            mux_data: Vec::new(),
            client_data: Vec::new(),
        }
    }

    /// A lite agent in the mux and a full client at `client`, signalled to each other.
    fn add_pair(&mut self, seed: u64, client: SocketAddr) -> MuxAgentId {
        let now = self.now;
        let lite = agent(
            AgentConfig::default().lite(true).rng_seed(seed),
            shared(),
            now,
        );
        let id = self.mux.add_agent(lite).expect("added");
        let mut full = agent(
            AgentConfig::default()
                .controlling(true)
                .rng_seed(seed + 1000),
            client,
            now,
        );
        let mut m = self.mux.agent_mut(id).expect("present");
        let mut ms = m.stream_mut(S0).expect("stream");
        let mut fs = full.stream_mut(S0).expect("stream");
        fs.set_remote_lite(true);
        fs.set_remote_credentials(ms.local_credentials().clone());
        ms.set_remote_credentials(fs.local_credentials().clone());
        for c in ms.local_candidates() {
            fs.add_remote_candidate(c).expect("a candidate");
        }
        for c in fs.local_candidates() {
            ms.add_remote_candidate(c).expect("a candidate");
        }
        fs.end_of_remote_candidates();
        ms.end_of_remote_candidates();
        drop(m);
        self.clients.push((client, full));
        self.client_data.push(Vec::new());
        id
    }

    fn deliver(&mut self, t: Transmit<Vec<u8>>) {
        let now = self.now;
        if t.to == shared() {
            if let MuxIncoming::Data(id, d) =
                self.mux.handle_incoming(now, udp(t.from, t.to, &t.data))
            {
                self.mux_data.push((id, d.data.to_vec()));
            }
            return;
        }
        if let Some(i) = self.clients.iter().position(|(a, _)| *a == t.to)
            && let Some(d) = self.clients[i]
                .1
                .handle_incoming(now, udp(t.from, t.to, &t.data))
        {
            self.client_data[i].push(d.data.to_vec());
        }
    }

    /// Runs until `done` or 10 s of virtual time, in 10 ms turns.
    fn run_until(&mut self, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        for _ in 0..1000 {
            if done(self) {
                return true;
            }
            let now = self.now;
            self.mux.handle_timeout(now);
            for (_, c) in &mut self.clients {
                c.handle_timeout(now);
            }
            for _ in 0..100 {
                let mut out = Vec::new();
                while let Some((_, t)) = self.mux.poll_transmit(now) {
                    out.push(t);
                }
                for (_, c) in &mut self.clients {
                    while let Some(t) = c.poll_transmit(now) {
                        out.push(t);
                    }
                }
                if out.is_empty() {
                    break;
                }
                for t in out {
                    self.deliver(t);
                }
            }
            while self.mux.poll_event().is_some() {}
            for (_, c) in &mut self.clients {
                while c.poll_event().is_some() {}
            }
            self.now += Duration::from_millis(10);
        }
        done(self)
    }

    fn connected(&self) -> bool {
        self.mux.agent_ids().all(|id| {
            self.mux.agent(id).and_then(|a| a.component_state(S0, RTP))
                == Some(ComponentState::Connected)
        }) && self
            .clients
            .iter()
            .all(|(_, c)| c.component_state(S0, RTP) == Some(ComponentState::Connected))
    }
}

#[test]
fn clients_connect_through_the_mux_and_a_removed_agent_is_forgotten() {
    let mut net = Net::new(start());
    let a = net.add_pair(1, addr("198.51.100.1:5000"));
    let b = net.add_pair(2, addr("198.51.100.2:5000"));
    assert!(net.run_until(|n| n.connected()), "both connect");
    assert_eq!(net.mux.tuple_count(), 2);
    assert_eq!(net.mux.tuples_of(a), 1);
    // Data both ways, each to its own.
    let now = net.now;
    for (i, id) in [a, b].into_iter().enumerate() {
        let payload = format!("to agent {id}");
        let (client, full) = &mut net.clients[i];
        let t = full
            .stream_mut(S0)
            .and_then(|mut s| {
                s.component_mut(RTP)
                    .map(|mut c| c.send(now, payload.as_bytes()))
            })
            .expect("component")
            .expect("connected");
        assert_eq!(t.from, *client);
        net.deliver(t);
        let payload = format!("from agent {id}");
        let t = net
            .mux
            .agent_mut(id)
            .expect("present")
            .stream_mut(S0)
            .and_then(|mut s| {
                s.component_mut(RTP)
                    .map(|mut c| c.send(now, payload.as_bytes()))
            })
            .expect("component")
            .expect("connected");
        net.deliver(t);
    }
    assert_eq!(
        net.mux_data,
        vec![(a, b"to agent 0.0".to_vec()), (b, b"to agent 1.0".to_vec())]
    );
    assert_eq!(net.client_data[0], vec![b"from agent 0.0".to_vec()]);
    assert_eq!(net.client_data[1], vec![b"from agent 1.0".to_vec()]);
    // Removing agent a forgets its ufrag and tuple; its client's data is then dropped.
    let removed = net.mux.remove_agent(a).expect("present");
    assert_eq!(removed.stream_count(), 1);
    assert_eq!(net.mux.tuple_count(), 1);
    assert_eq!(net.mux.ufrag_count(), 1);
    assert!(net.mux.agent(a).is_none());
    let before = net.mux.stats().dropped_unknown_source;
    let t = net.clients[0]
        .1
        .stream_mut(S0)
        .and_then(|mut s| s.component_mut(RTP).map(|mut c| c.send(now, b"late")))
        .expect("component")
        .expect("connected");
    assert_eq!(
        net.mux.handle_incoming(now, udp(t.from, t.to, &t.data)),
        MuxIncoming::Dropped(MuxDrop::UnknownSource)
    );
    assert_eq!(net.mux.stats().dropped_unknown_source, before + 1);
    // The slot is reused with a new generation: the old id names nothing.
    let c = net.add_pair(3, addr("198.51.100.3:5000"));
    assert_eq!(c.index(), a.index());
    assert_ne!(c, a);
    assert!(net.mux.agent(a).is_none());
    assert!(net.mux.agent(c).is_some());
}

#[test]
fn the_timer_queue_holds_each_agents_own_deadline() {
    let mut net = Net::new(start());
    for i in 0..5 {
        net.add_pair(
            10 + i,
            SocketAddr::new(addr("198.51.100.1:0").ip(), 5000 + i as u16),
        );
    }
    assert!(net.run_until(|n| n.connected()));
    // Some consent traffic, so that deadlines spread.
    let end = net.now + Duration::from_secs(7);
    net.run_until(|n| n.now >= end);
    let ids: Vec<_> = net.mux.agent_ids().collect();
    for &id in &ids {
        assert_eq!(
            net.mux.agent_timeout(id),
            net.mux.agent(id).and_then(Agent::poll_timeout),
            "agent {id}"
        );
    }
    let earliest = ids
        .iter()
        .filter_map(|&id| net.mux.agent(id).and_then(Agent::poll_timeout))
        .min();
    assert_eq!(net.mux.poll_timeout(), earliest);
    // handle_timeout runs the due agents only, each once.
    let now = earliest.expect("connected agents have consent timers");
    let due = ids
        .iter()
        .filter(|&&id| net.mux.agent_timeout(id).is_some_and(|t| t <= now))
        .count();
    assert!(due >= 1 && due < ids.len(), "{due} of {} due", ids.len());
    let before = net.mux.stats().agent_timeouts;
    net.mux.handle_timeout(now);
    assert_eq!(net.mux.stats().agent_timeouts - before, due as u64);
    net.mux.handle_timeout(now - Duration::from_millis(1));
    assert_eq!(
        net.mux.stats().agent_timeouts - before,
        due as u64,
        "none due earlier"
    );
}

#[test]
fn a_restart_registers_the_new_ufrag_and_forgets_the_old() {
    let mut net = Net::new(start());
    let a = net.add_pair(1, addr("198.51.100.1:5000"));
    assert!(net.run_until(|n| n.connected()));
    let ufrag = |net: &mut Net| {
        net.mux
            .agent_mut(a)
            .expect("present")
            .stream_mut(S0)
            .expect("stream")
            .local_credentials()
            .ufrag()
            .to_owned()
    };
    let old = ufrag(&mut net);
    let now = net.now;
    net.mux
        .agent_mut(a)
        .expect("present")
        .stream_mut(S0)
        .expect("stream")
        .restart(now);
    let new = ufrag(&mut net);
    assert_ne!(old, new);
    assert!(net.mux.has_ufrag(&new));
    assert!(!net.mux.has_ufrag(&old));
    assert_eq!(net.mux.ufrag_count(), 1);
    // A check with the old ufrag from the known tuple still reaches the agent (the old
    // path's consent); from elsewhere it is an unknown ufrag.
    let check = check_with_username(format!("{old}:peer").as_bytes());
    assert_eq!(
        net.mux
            .route(&udp(addr("198.51.100.1:5000"), shared(), &check)),
        Ok(a)
    );
    assert_eq!(
        net.mux
            .route(&udp(addr("198.51.100.9:5000"), shared(), &check)),
        Err(MuxDrop::UnknownUfrag)
    );
}

#[test]
fn a_response_goes_to_the_agent_that_sent_the_request_whatever_the_tuple() {
    let now = start();
    let mut mux = Mux::default();
    // Two full agents on the shared socket, both checking the same remote address: the
    // tuple is ambiguous, the transaction id is not.
    let remote = addr("198.51.100.1:5000");
    let mut ids = Vec::new();
    for seed in [1, 2] {
        let mut a = agent(
            AgentConfig::default().controlling(true).rng_seed(seed),
            shared(),
            now,
        );
        let mut s = a.stream_mut(S0).expect("stream");
        s.set_remote_credentials(
            IceCredentials::new(format!("peer{seed}"), "passwordpasswordpassword").expect("valid"),
        );
        s.add_remote_candidate_sdp("candidate:1 1 UDP 2130706431 198.51.100.1 5000 typ host")
            .expect("a candidate");
        ids.push(mux.add_agent(a).expect("added"));
    }
    let mut requests = Vec::new();
    let mut t = now;
    for _ in 0..20 {
        mux.handle_timeout(t);
        while let Some((id, tx)) = mux.poll_transmit(t) {
            if tx.to == remote {
                requests.push((id, tx));
            }
        }
        t += Duration::from_millis(50);
    }
    let first_of = |id| {
        requests
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, tx)| Message::parse(&tx.data).expect("STUN").transaction_id())
            .expect("each agent checked the remote")
    };
    assert!(mux.transaction_count() >= 2);
    for &id in &ids {
        let txid = first_of(id);
        let mut buf = Vec::new();
        let w = MessageWriter::new(
            &mut buf,
            MessageType::new(MessageClass::Success, Method::BINDING),
            txid,
        );
        let _ = w.finish();
        assert_eq!(mux.route(&udp(remote, shared(), &buf)), Ok(id));
        assert_eq!(
            mux.handle_incoming(t, udp(remote, shared(), &buf)),
            MuxIncoming::Handled(id)
        );
    }
    assert_eq!(mux.stats().routed_by_transaction, 2);
}

#[test]
fn what_an_agent_sends_teaches_tuples_and_transactions() {
    let now = start();
    let mut mux = Mux::default();
    let id = mux
        .add_agent(agent(AgentConfig::default().rng_seed(9), shared(), now))
        .expect("added");
    let message = |class, method, username: Option<&str>, n: u8| {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::new(class, method),
            TransactionId([n; 12]),
        );
        if let Some(u) = username {
            w.add_raw(AttributeType::USERNAME, u.as_bytes())
                .expect("fits");
        }
        let _ = w.finish();
        buf
    };
    fn out<'a>(to: &str, data: &'a [u8]) -> Transmit<&'a [u8]> {
        Transmit {
            transport: TransportType::Udp,
            from: shared(),
            to: addr(to),
            data,
        }
    }
    // To a STUN server: a transaction, no tuple.
    let gather = message(MessageClass::Request, Method::BINDING, None, 1);
    mux.router
        .learn(now, id, &out("198.51.100.1:3478", &gather));
    assert_eq!((mux.transaction_count(), mux.tuple_count()), (1, 0));
    // A TURN Allocate with long-term credentials: a transaction and the server's tuple.
    let allocate = message(MessageClass::Request, Method::ALLOCATE, Some("user"), 2);
    mux.router
        .learn(now, id, &out("198.51.100.2:3478", &allocate));
    assert_eq!((mux.transaction_count(), mux.tuple_count()), (2, 1));
    // A check, and a success response: their tuples.
    let check = message(MessageClass::Request, Method::BINDING, Some("a:b"), 3);
    mux.router.learn(now, id, &out("198.51.100.3:5000", &check));
    let success = message(MessageClass::Success, Method::BINDING, None, 4);
    mux.router
        .learn(now, id, &out("198.51.100.4:5000", &success));
    assert_eq!((mux.transaction_count(), mux.tuple_count()), (3, 3));
    // An error response or an indication: nothing.
    let error = message(MessageClass::Error, Method::BINDING, None, 5);
    mux.router.learn(now, id, &out("198.51.100.5:5000", &error));
    let indication = message(MessageClass::Indication, Method::BINDING, None, 6);
    mux.router
        .learn(now, id, &out("198.51.100.6:5000", &indication));
    assert_eq!((mux.transaction_count(), mux.tuple_count()), (3, 3));
    // Transactions expire.
    mux.handle_timeout(now + DEFAULT_TRANSACTION_LIFETIME);
    assert_eq!(mux.transaction_count(), 0);
    assert_eq!(mux.stats().tuples_learned, 3);
}

#[test]
fn a_ufrag_changed_to_another_agents_is_not_taken_and_is_counted() {
    let now = start();
    let mut mux = Mux::default();
    let a = mux
        .add_agent(agent(
            AgentConfig::default().lite(true).rng_seed(1),
            shared(),
            now,
        ))
        .expect("added");
    let b = mux
        .add_agent(agent(
            AgentConfig::default().lite(true).rng_seed(2),
            shared(),
            now,
        ))
        .expect("added");
    let creds = |mux: &mut Mux, id| {
        mux.agent_mut(id)
            .expect("present")
            .stream_mut(S0)
            .expect("stream")
            .local_credentials()
            .clone()
    };
    let set = |mux: &mut Mux, id, c: IceCredentials| {
        mux.agent_mut(id)
            .expect("present")
            .stream_mut(S0)
            .expect("stream")
            .set_local_credentials(c);
    };
    let (ca, cb) = (creds(&mut mux, a), creds(&mut mux, b));
    set(&mut mux, b, ca.clone());
    assert_eq!(mux.stats().ufrag_conflicts, 1);
    assert_eq!(
        mux.ufrag_count(),
        1,
        "b's old ufrag is gone, a keeps its own"
    );
    let check = check_with_username(format!("{}:peer", ca.ufrag()).as_bytes());
    let from = addr("198.51.100.1:4000");
    assert_eq!(mux.route(&udp(from, shared(), &check)), Ok(a));
    // Touching b again counts nothing more while the clash lasts.
    drop(mux.agent_mut(b));
    assert_eq!(mux.stats().ufrag_conflicts, 1);
    // A ufrag of its own again: registered.
    set(&mut mux, b, cb.clone());
    assert_eq!(mux.ufrag_count(), 2);
    assert!(mux.has_ufrag(cb.ufrag()));
}

#[test]
fn a_forgotten_tuple_routes_nothing() {
    let mut net = Net::new(start());
    let a = net.add_pair(1, addr("198.51.100.1:5000"));
    assert!(net.run_until(|n| n.connected()));
    let from = addr("198.51.100.1:5000");
    assert_eq!(net.mux.route(&udp(from, shared(), b"data")), Ok(a));
    assert_eq!(
        net.mux.forget_tuple(TransportType::Udp, shared(), from),
        Some(a)
    );
    assert_eq!(net.mux.tuples_of(a), 0);
    assert_eq!(
        net.mux.route(&udp(from, shared(), b"data")),
        Err(MuxDrop::UnknownSource)
    );
    assert_eq!(
        net.mux.forget_tuple(TransportType::Udp, shared(), from),
        None
    );
}
