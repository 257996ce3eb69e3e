//! Many agents driven in batch order, as an endpoint that runs all its agents in one
//! driver does: every agent's due `handle_timeout` first, then every agent's
//! `poll_transmit`, on a network that delivers at once (a datagram reaches its
//! destination before that agent's own turn to transmit). The simulator's usual order
//! (`Sim::step`: one agent's timeout, then that agent's transmits) is the reference: batch
//! order must connect as fast.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use librice_proto::Transmit;
use librice_proto::agent::{Agent, AgentConfig, AgentEvent, ComponentState, DEFAULT_TA};

use crate::harness::ice::{AgentNode, AgentSpec, RTP, S0, add_agent, connect, socket_port};
use crate::harness::{PUBLIC_REALM, Sim};

/// Agent pairs driven together.
const PAIRS: usize = 4;

/// The address of agent `i` (pair `i / 2`, side `i % 2`).
fn ip(i: usize) -> String {
    format!("192.0.2.{}", i + 1)
}

/// Agent `i`'s configuration: even agents control; with `conflict`, odd ones too (a role
/// conflict at the start, RFC 8445 §7.3.1.1).
fn config(i: usize, conflict: bool) -> AgentConfig {
    AgentConfig::default()
        .controlling(conflict || i.is_multiple_of(2))
        .rng_seed(1000 + i as u64)
}

/// One agent of the batch: one stream, one component, one UDP socket.
struct Member {
    agent: Agent,
    addr: SocketAddr,
    connected_at: Option<Instant>,
}

impl Member {
    fn drain_events(&mut self, now: Instant) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        while let Some(event) = self.agent.poll_event() {
            if let AgentEvent::ComponentStateChange {
                state: ComponentState::Connected,
                ..
            } = event
            {
                self.connected_at.get_or_insert(now);
            }
            out.push(event);
        }
        out
    }
}

/// The batch: agents `2k` and `2k + 1` are peers; signalling is complete before the first
/// turn.
struct Batch {
    members: Vec<Member>,
    now: Instant,
    start: Instant,
}

impl Batch {
    fn new(start: Instant, conflict: bool) -> Batch {
        let mut members: Vec<Member> = (0..2 * PAIRS)
            .map(|i| {
                let addr = SocketAddr::new(ip(i).parse().expect("an IP"), socket_port(S0, RTP));
                let mut agent = Agent::new(config(i, conflict));
                let sid = agent.add_stream();
                let mut s = agent.stream_mut(sid).expect("just added");
                let c = s.add_component().expect("the first component");
                s.add_local_socket(c, librice_proto::TransportType::Udp, addr)
                    .expect("a new socket");
                s.gather_candidates(start).expect("gathering starts");
                Member {
                    agent,
                    addr,
                    connected_at: None,
                }
            })
            .collect();
        let signals: Vec<_> = members
            .iter_mut()
            .map(|m| {
                let creds = m
                    .agent
                    .stream_mut(S0)
                    .expect("stream")
                    .local_credentials()
                    .clone();
                let cands: Vec<_> = m
                    .drain_events(start)
                    .into_iter()
                    .filter_map(|e| match e {
                        AgentEvent::LocalCandidate { candidate, .. } => Some(candidate),
                        _ => None,
                    })
                    .collect();
                (creds, cands)
            })
            .collect();
        for (i, m) in members.iter_mut().enumerate() {
            let (creds, cands) = signals[i ^ 1].clone();
            let mut s = m.agent.stream_mut(S0).expect("stream");
            s.set_remote_credentials(creds);
            for c in cands {
                s.add_remote_candidate(c).expect("a valid candidate");
            }
            s.end_of_remote_candidates();
        }
        Batch {
            members,
            now: start,
            start,
        }
    }

    /// Delivers a datagram to the agent that owns its destination.
    fn deliver(&mut self, t: Transmit<Vec<u8>>) {
        let Some(m) = self.members.iter_mut().find(|m| m.addr == t.to) else {
            return;
        };
        let now = self.now;
        let _ = m.agent.handle_incoming(
            now,
            Transmit {
                transport: t.transport,
                from: t.from,
                to: t.to,
                data: t.data.as_slice(),
            },
        );
        m.drain_events(now);
    }

    /// One turn at `self.now`: every due timeout, then every agent's transmits (repeated
    /// while any agent has more, since deliveries make answers).
    fn turn(&mut self) {
        let now = self.now;
        for m in &mut self.members {
            if m.agent.poll_timeout().is_some_and(|t| t <= now) {
                m.agent.handle_timeout(now);
                m.drain_events(now);
            }
        }
        for _ in 0..100 {
            let mut sent = false;
            for i in 0..self.members.len() {
                while let Some(t) = self.members[i].agent.poll_transmit(now) {
                    self.members[i].drain_events(now);
                    sent = true;
                    self.deliver(t);
                }
            }
            if !sent {
                return;
            }
        }
        panic!("transmits did not settle within 100 rounds");
    }

    /// Turns until every agent is connected (bounded); returns the connect times.
    fn run(&mut self) -> Vec<Duration> {
        for _ in 0..10_000 {
            if self.members.iter().all(|m| m.connected_at.is_some()) {
                break;
            }
            self.turn();
            let next = self
                .members
                .iter()
                .filter_map(|m| m.agent.poll_timeout())
                .min();
            match next {
                Some(t) => self.now = self.now.max(t),
                None => break,
            }
        }
        self.members
            .iter()
            .map(|m| {
                m.connected_at
                    .expect("every agent connects in batch order")
                    .duration_since(self.start)
            })
            .collect()
    }
}

/// The same agents, one pair at a time, in the simulator's usual order.
fn usual_order_times(conflict: bool) -> Vec<Duration> {
    let mut times = Vec::new();
    for k in 0..PAIRS {
        let mut sim = Sim::new(7);
        let start = sim.now();
        let a = add_agent(
            &mut sim,
            AgentSpec::new(config(2 * k, conflict), PUBLIC_REALM, &ip(2 * k)),
        );
        let b = add_agent(
            &mut sim,
            AgentSpec::new(config(2 * k + 1, conflict), PUBLIC_REALM, &ip(2 * k + 1)),
        );
        assert!(connect(&mut sim, a, b, 100_000), "pair {k} connects");
        for id in [a, b] {
            let at = sim.node::<AgentNode>(id).connected_at[&(S0, RTP)];
            times.push(at.duration_since(start));
        }
    }
    times
}

#[test]
fn batch_order_connects_as_fast_as_usual_order() {
    let usual = usual_order_times(false);
    // The usual order connects in one Ta: the checks cross at once, and the controlling
    // side's nominating check goes out in the next slot.
    for (i, t) in usual.iter().enumerate() {
        assert!(*t <= DEFAULT_TA, "usual order, agent {i}: {t:?}");
    }
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let batch = Batch::new(start, false).run();
    assert_eq!(
        batch, usual,
        "connect times per agent: batch order vs the usual order"
    );
}

/// Both agents of every pair start controlling: the role conflict is repaired in batch
/// order too, and no agent connects later than in the usual order. (The unit tests in
/// `agent/tests/triggered.rs` pin what happens to a queued check whose role is left.)
#[test]
fn batch_order_repairs_a_role_conflict_as_fast_as_usual_order() {
    let usual = usual_order_times(true);
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let batch = Batch::new(start, true).run();
    println!("role conflict: usual order {usual:?}, batch order {batch:?}");
    for (i, (b, u)) in batch.iter().zip(&usual).enumerate() {
        assert!(b <= u, "agent {i}: batch order {b:?}, usual order {u:?}");
    }
}
