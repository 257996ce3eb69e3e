//! A mux and its clients on an in-process network that delivers at once, shared by the
//! mux allocation test (`tests/mux_alloc.rs`) and the mux benchmarks
//! (`benches/mux.rs`, which includes this file by path). Each client is a full agent on
//! its own address; its peer is an agent in the mux on the shared address, lite or full.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use librice_proto::agent::{Agent, AgentConfig, ComponentId, ComponentState, StreamId};
use librice_proto::mux::{Mux, MuxAgentId, MuxConfig, MuxIncoming};
use librice_proto::{Transmit, TransportType};

/// The first stream.
pub const S0: StreamId = StreamId::from_index(0);
/// The first component.
pub const RTP: ComponentId = ComponentId::RTP;

/// The mux's shared address.
pub fn shared() -> SocketAddr {
    "192.0.2.1:3478".parse().expect("an address")
}

/// Client `i`'s address: 10.x.y.z:5000.
pub fn client_addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::new(IpAddr::V4(ip), 5000)
}

/// A start instant for the virtual clock (the only real clock read).
#[allow(clippy::disallowed_methods)]
pub fn origin() -> Instant {
    Instant::now()
}

/// An agent with one stream of one component on `local`, gathering started.
pub fn agent(config: AgentConfig, local: SocketAddr, now: Instant) -> Agent {
    prepared(Agent::new(config), local, now)
}

/// `agent` with one stream of one component on `local`, gathering started.
pub fn prepared(mut agent: Agent, local: SocketAddr, now: Instant) -> Agent {
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).expect("just added");
    let c = s.add_component().expect("the first component");
    s.add_local_socket(c, TransportType::Udp, local)
        .expect("a new socket");
    s.gather_candidates(now).expect("gathering starts");
    agent
}

/// A borrowed datagram.
pub fn udp(from: SocketAddr, to: SocketAddr, data: &[u8]) -> Transmit<&[u8]> {
    Transmit {
        transport: TransportType::Udp,
        from,
        to,
        data,
    }
}

/// The mux, its clients, and what was delivered.
pub struct Net {
    /// The virtual time.
    pub now: Instant,
    /// The server.
    pub mux: Mux,
    /// Client i: (address, agent, its agent in the mux).
    pub clients: Vec<(SocketAddr, Agent, MuxAgentId)>,
    by_addr: BTreeMap<SocketAddr, usize>,
    /// Datagrams of application data the mux delivered.
    pub mux_data: usize,
    /// Datagrams of application data the clients got.
    pub client_data: usize,
    /// Client datagrams captured instead of delivered (see [`Net::capture`]).
    pub captured: Vec<Transmit<Vec<u8>>>,
    capture: bool,
    /// The configurations of the mux's agents, lite and full, each shared by its agents
    /// as a server's would be.
    lite_config: Arc<AgentConfig>,
    full_config: Arc<AgentConfig>,
}

impl Net {
    /// An empty network with a mux of `config`.
    pub fn new(now: Instant, config: MuxConfig) -> Net {
        Net {
            now,
            mux: Mux::new(config),
            clients: Vec::new(),
            by_addr: BTreeMap::new(),
            mux_data: 0,
            client_data: 0,
            captured: Vec::new(),
            capture: false,
            lite_config: Arc::new(AgentConfig::default().lite(true)),
            full_config: Arc::new(AgentConfig::default().controlling(false)),
        }
    }

    /// Adds an agent to the mux (lite, or full and controlled) and a full controlling
    /// client for it, signalled to each other. `seed` must differ per pair.
    pub fn add_pair(&mut self, seed: u64, lite: bool) -> MuxAgentId {
        let now = self.now;
        let config = if lite {
            &self.lite_config
        } else {
            &self.full_config
        };
        let server = Agent::with_shared_config(Arc::clone(config), seed);
        let id = self
            .mux
            .add_agent(prepared(server, shared(), now))
            .expect("distinct ufrags");
        let addr = client_addr(self.clients.len());
        let mut client = agent(
            AgentConfig::default()
                .controlling(true)
                .rng_seed(seed ^ (1 << 40)),
            addr,
            now,
        );
        let mut m = self.mux.agent_mut(id).expect("present");
        let mut ms = m.stream_mut(S0).expect("stream");
        let mut cs = client.stream_mut(S0).expect("stream");
        cs.set_remote_lite(lite);
        cs.set_remote_credentials(ms.local_credentials().clone());
        ms.set_remote_credentials(cs.local_credentials().clone());
        for c in ms.local_candidates() {
            cs.add_remote_candidate(c).expect("a candidate");
        }
        for c in cs.local_candidates() {
            ms.add_remote_candidate(c).expect("a candidate");
        }
        cs.end_of_remote_candidates();
        ms.end_of_remote_candidates();
        drop(m);
        while client.poll_event().is_some() {}
        self.by_addr.insert(addr, self.clients.len());
        self.clients.push((addr, client, id));
        id
    }

    /// From now on, what clients send is kept in [`Net::captured`] instead of delivered.
    pub fn capture(&mut self, on: bool) {
        self.capture = on;
    }

    /// Delivers one datagram.
    pub fn deliver(&mut self, t: Transmit<Vec<u8>>) {
        let now = self.now;
        if t.to == shared() {
            if self.capture {
                self.captured.push(t);
                return;
            }
            if let MuxIncoming::Data(..) = self.mux.handle_incoming(now, udp(t.from, t.to, &t.data))
            {
                self.mux_data += 1;
            }
            return;
        }
        if let Some(&i) = self.by_addr.get(&t.to)
            && self.clients[i]
                .1
                .handle_incoming(now, udp(t.from, t.to, &t.data))
                .is_some()
        {
            self.client_data += 1;
        }
    }

    /// One turn at `self.now`: due timeouts, then every transmit, delivered at once
    /// (repeated while answers come), then events are drained.
    pub fn turn(&mut self) {
        let now = self.now;
        self.mux.handle_timeout(now);
        for (_, c, _) in &mut self.clients {
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
        }
        for _ in 0..100 {
            let mut out = Vec::new();
            while let Some((_, t)) = self.mux.poll_transmit(now) {
                out.push(t);
            }
            for (_, c, _) in &mut self.clients {
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
        for (_, c, _) in &mut self.clients {
            while c.poll_event().is_some() {}
        }
    }

    /// Turns every `step` for `span` of virtual time.
    pub fn run_for(&mut self, span: Duration, step: Duration) {
        let end = self.now + span;
        while self.now < end {
            self.turn();
            self.now += step;
        }
    }

    /// Turns every 10 ms until every pair is connected (at most 10 s); returns whether.
    pub fn connect_all(&mut self) -> bool {
        for _ in 0..1000 {
            if self.all_connected() {
                return true;
            }
            self.turn();
            self.now += Duration::from_millis(10);
        }
        self.all_connected()
    }

    /// True when every client and every agent of the mux is connected.
    pub fn all_connected(&self) -> bool {
        self.clients.iter().all(|(_, c, id)| {
            c.component_state(S0, RTP) == Some(ComponentState::Connected)
                && self.mux.agent(*id).and_then(|a| a.component_state(S0, RTP))
                    == Some(ComponentState::Connected)
        })
    }

    /// Application data from client `i` on its selected pair.
    pub fn client_send(&mut self, i: usize, data: &[u8]) -> Transmit<Vec<u8>> {
        let now = self.now;
        self.clients[i]
            .1
            .stream_mut(S0)
            .and_then(|mut s| s.component_mut(RTP).map(|mut c| c.send(now, data)))
            .expect("a component")
            .expect("connected")
    }
}
