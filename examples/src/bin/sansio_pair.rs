//! sansio_pair: two sans-IO ICE agents (`librice_proto::agent::Agent`) on two UDP sockets
//! on 127.0.0.1, driven by one thread with no async runtime: they exchange credentials and
//! candidates (here by function call; normally over a signalling channel), connect, send
//! one datagram each way, and the program prints what happened and exits 0. It exits 1 if
//! that takes more than 10 s.
//!
//! The same loop, shorter, is a doc-test of `librice_proto::agent`. Each turn of the loop,
//! per agent: handle the timer if it is due, feed every datagram waiting on the socket,
//! then send what `poll_transmit` yields and act on what `poll_event` yields. Between turns
//! the thread sleeps until the earliest deadline, but at most 1 ms, because it polls two
//! non-blocking sockets; a real application waits on its sockets (poll/epoll) or uses the
//! async facade, `librice`.

use std::error::Error;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use librice_proto::agent::{Agent, AgentConfig, AgentEvent, ComponentId, StreamId};
use librice_proto::candidate::{Candidate, IceCredentials};
use librice_proto::{Transmit, TransportType};

/// How long the two agents have to connect and exchange their datagrams.
const LIMIT: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: sansio_pair

Runs two sans-IO ICE agents on 127.0.0.1 in one thread: they exchange candidates,
connect, send one datagram each way, and the program exits 0 (1 after 10 s without).";

/// What one agent tells the other over the signalling channel.
enum Signal {
    Candidate(Candidate),
    EndOfCandidates,
}

/// One agent with one stream of one component, on one non-blocking UDP socket.
struct Peer {
    name: &'static str,
    agent: Agent,
    socket: UdpSocket,
    local: SocketAddr,
    stream: StreamId,
    component: ComponentId,
    connected: bool,
    received: Vec<Vec<u8>>,
}

impl Peer {
    fn new(name: &'static str, controlling: bool, seed: u64) -> Result<Peer, Box<dyn Error>> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        let config = AgentConfig::default()
            .controlling(controlling)
            .rng_seed(seed);
        let mut agent = Agent::new(config);
        let stream = agent.add_stream();
        let mut s = agent.stream_mut(stream).ok_or("no stream")?;
        let component = s.add_component()?;
        s.add_local_socket(component, TransportType::Udp, local)?;
        println!("{name}: agent on {local}");
        Ok(Peer {
            name,
            agent,
            socket,
            local,
            stream,
            component,
            connected: false,
            received: Vec::new(),
        })
    }

    fn credentials(&mut self) -> IceCredentials {
        self.agent
            .stream_mut(self.stream)
            .map(|s| s.local_credentials().clone())
            .expect("the stream exists")
    }

    /// Applies what the peer signalled.
    fn apply(&mut self, signal: Signal) -> Result<(), Box<dyn Error>> {
        let mut s = self.agent.stream_mut(self.stream).ok_or("no stream")?;
        match signal {
            Signal::Candidate(candidate) => {
                println!("{}: remote candidate {candidate}", self.name);
                s.add_remote_candidate(candidate)?;
            }
            Signal::EndOfCandidates => s.end_of_remote_candidates(),
        }
        Ok(())
    }

    /// One turn: the timer if it is due, every datagram waiting on the socket, then the
    /// output (datagrams sent, events turned into signals for the peer).
    fn turn(&mut self, now: Instant, signals: &mut Vec<Signal>) -> io::Result<()> {
        if self
            .agent
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.agent.handle_timeout(now);
        }
        let mut buf = [0u8; 2048];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((len, from)) => {
                    let t = Transmit {
                        transport: TransportType::Udp,
                        from,
                        to: self.local,
                        data: &buf[..len],
                    };
                    // STUN is consumed by the agent; anything else is application data.
                    if let Some(data) = self.agent.handle_incoming(now, t) {
                        self.received.push(data.data.to_vec());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        while let Some(t) = self.agent.poll_transmit(now) {
            self.send_to(now, &t);
        }
        while let Some(event) = self.agent.poll_event() {
            match event {
                AgentEvent::LocalCandidate { candidate, .. } => {
                    signals.push(Signal::Candidate(candidate))
                }
                AgentEvent::GatheringComplete { .. } => signals.push(Signal::EndOfCandidates),
                AgentEvent::SelectedPair { pair, .. } => {
                    println!(
                        "{}: selected pair {} -> {}",
                        self.name,
                        pair.local.address(),
                        pair.remote.address()
                    );
                    self.connected = true;
                }
                AgentEvent::ComponentStateChange { state, .. } => {
                    println!("{}: component {state}", self.name)
                }
                other => println!("{}: {other:?}", self.name),
            }
        }
        Ok(())
    }

    /// Sends `t`; a datagram the system refuses is reported to the agent.
    fn send_to(&mut self, now: Instant, t: &Transmit<Vec<u8>>) {
        match self.socket.send_to(&t.data, t.to) {
            Ok(_) => {}
            // A full socket buffer loses the datagram, as the network may.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.agent.handle_unreachable(now, t.from, t.to),
        }
    }

    /// Sends application data on the selected pair.
    fn send(&mut self, now: Instant, data: &[u8]) -> Result<(), Box<dyn Error>> {
        let t = self
            .agent
            .stream_mut(self.stream)
            .ok_or("no stream")?
            .component_mut(self.component)
            .ok_or("no component")?
            .send(now, data)?;
        self.send_to(now, &t);
        println!("{}: sent {:?}", self.name, String::from_utf8_lossy(data));
        Ok(())
    }
}

fn run() -> Result<Duration, Box<dyn Error>> {
    let start = Instant::now();
    let mut a = Peer::new("controlling", true, 1)?;
    let mut b = Peer::new("controlled", false, 2)?;
    let (creds_a, creds_b) = (a.credentials(), b.credentials());
    for (peer, remote) in [(&mut a, creds_b), (&mut b, creds_a)] {
        let mut s = peer.agent.stream_mut(peer.stream).ok_or("no stream")?;
        s.set_remote_credentials(remote);
        s.gather_candidates(start)?;
    }
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    let mut sent = false;
    while a.received.is_empty() || b.received.is_empty() {
        let now = Instant::now();
        if now - start > LIMIT {
            return Err(format!("not connected and exchanged within {LIMIT:?}").into());
        }
        a.turn(now, &mut to_b)?;
        b.turn(now, &mut to_a)?;
        for signal in to_b.drain(..) {
            b.apply(signal)?;
        }
        for signal in to_a.drain(..) {
            a.apply(signal)?;
        }
        if a.connected && b.connected && !sent {
            a.send(now, b"hello from the controlling agent")?;
            b.send(now, b"hello from the controlled agent")?;
            sent = true;
        }
        // Sleep until the earliest deadline, at most 1 ms (the sockets are polled).
        let next = [a.agent.poll_timeout(), b.agent.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let wait = next
            .map_or(Duration::MAX, |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(1));
        std::thread::sleep(wait);
    }
    for peer in [&a, &b] {
        for data in &peer.received {
            println!(
                "{}: received {:?}",
                peer.name,
                String::from_utf8_lossy(data)
            );
        }
    }
    Ok(start.elapsed())
}

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(elapsed) => {
            println!(
                "done: connected and exchanged one datagram each way in {} ms",
                elapsed.as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sansio_pair: {e}");
            ExitCode::FAILURE
        }
    }
}
