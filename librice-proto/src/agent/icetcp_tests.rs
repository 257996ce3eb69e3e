//! Unit tests of simultaneous-open ICE-TCP (RFC 6544 `tcptype so`): one agent driven by
//! hand at a virtual `now`, its I/O requests answered by the test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    Agent, AgentConfig, AgentError, ComponentId, IoRequest, PairInfo, PairState, StreamId,
    StunServer, UsageError,
};
use crate::candidate::{Candidate, CandidateTransport, CandidateType, IceCredentials, TcpType};
use crate::stun::attr::{IceControlled, Priority, Username};
use crate::stun::{IntegrityKey, MessageType, MessageWriter, TransactionId};
use crate::{Transmit, TransportType};

const S0: StreamId = StreamId::from_index(0);
const RTP: ComponentId = ComponentId::RTP;
/// This agent's `so` socket.
const SO: &str = "192.0.2.1:7001";

/// The virtual clock's origin: the only real clock read.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn so_config() -> AgentConfig {
    AgentConfig::default()
        .controlling(true)
        .rng_seed(7)
        .tcp_simultaneous_open(true)
}

/// An agent with one component and the `so` socket [`SO`], gathering started at `now`,
/// the peer's credentials known.
fn so_agent(config: AgentConfig, now: Instant) -> Agent {
    let mut a = Agent::new(config);
    let sid = a.add_stream();
    let mut s = a.stream_mut(sid).expect("stream");
    let c = s.add_component().expect("component");
    s.add_local_so_socket(c, addr(SO)).expect("an so socket");
    s.gather_candidates(now).expect("gathering");
    s.set_remote_credentials(
        IceCredentials::new("peer", "apasswordof22charsatleast").expect("credentials"),
    );
    while a.poll_event().is_some() {}
    a
}

fn remote_so(foundation: &str, address: &str) -> Candidate {
    Candidate::builder(
        foundation,
        CandidateType::Host,
        CandidateTransport::Tcp(TcpType::So),
        addr(address),
    )
    .priority(1_000_000)
    .build()
    .expect("candidate")
}

fn pair_to(a: &mut Agent, remote: &str) -> Option<PairInfo> {
    a.stream_mut(S0)
        .expect("stream")
        .pairs()
        .into_iter()
        .find(|p| p.in_checklist && p.remote.address() == addr(remote))
}

/// Runs the agent for `span` in 10 ms steps, collecting its I/O requests.
fn run(a: &mut Agent, from: Instant, span: Duration) -> Vec<IoRequest> {
    let mut requests = Vec::new();
    let mut now = from;
    while now <= from + span {
        a.handle_timeout(now);
        while a.poll_transmit(now).is_some() {}
        requests.extend(std::iter::from_fn(|| a.poll_io_request()));
        now += Duration::from_millis(10);
    }
    requests
}

/// The simultaneous opens among `requests`: (id, local, remote).
fn opens(requests: &[IoRequest]) -> Vec<(u64, SocketAddr, SocketAddr)> {
    requests
        .iter()
        .filter_map(|r| match *r {
            IoRequest::IceTcpConnect {
                id,
                local,
                remote,
                simultaneous_open: true,
            } => Some((id, local, remote)),
            _ => None,
        })
        .collect()
}

#[test]
fn so_sockets_need_the_option_a_full_agent_and_a_port() {
    let refused = |config: AgentConfig, at: &str| {
        let mut a = Agent::new(config);
        let sid = a.add_stream();
        let mut s = a.stream_mut(sid).expect("stream");
        let c = s.add_component().expect("component");
        s.add_local_so_socket(c, addr(at))
    };
    for (config, at) in [
        (AgentConfig::default(), SO),
        (so_config().lite(true), SO),
        (so_config(), "192.0.2.1:0"),
    ] {
        assert_eq!(
            refused(config, at),
            Err(AgentError::Usage(UsageError::SimultaneousOpenSocket(addr(
                at
            ))))
        );
    }
    assert_eq!(refused(so_config(), SO), Ok(()));
}

/// RFC 6544 §6.2, §7.1: each `so` pair's check asks for a simultaneous open from the `so`
/// socket's own address; a refused one fails only its pair; an open one carries the
/// pair's check from that address; a reset of it fails only that pair.
#[test]
fn so_pairs_open_from_their_port_and_fail_one_by_one() {
    let t0 = origin();
    let mut a = so_agent(so_config(), t0);
    let (r1, r2) = ("192.0.2.2:7001", "192.0.2.3:7001");
    {
        let mut s = a.stream_mut(S0).expect("stream");
        s.add_remote_candidate(remote_so("1", r1)).expect("remote");
        s.add_remote_candidate(remote_so("2", r2)).expect("remote");
        // A passive candidate: no pair with an `so` one.
        let passive = Candidate::builder(
            "3",
            CandidateType::Host,
            CandidateTransport::Tcp(TcpType::Passive),
            addr("192.0.2.4:7000"),
        )
        .priority(1_000)
        .build()
        .expect("candidate");
        s.add_remote_candidate(passive).expect("remote");
        s.end_of_remote_candidates();
    }
    assert!(
        pair_to(&mut a, "192.0.2.4:7000").is_none(),
        "so/passive unpaired"
    );
    let requests = run(&mut a, t0, Duration::from_millis(500));
    let opens = opens(&requests);
    assert_eq!(opens.len(), 2, "{requests:?}");
    for &(_, local, _) in &opens {
        assert_eq!(local, addr(SO), "from the so port");
    }
    let id_of = |remote: &str| {
        opens
            .iter()
            .find(|o| o.2 == addr(remote))
            .map(|o| o.0)
            .expect("an open to it")
    };
    let now = t0 + Duration::from_millis(600);
    // Refused: that pair fails, the other waits for its connection.
    a.handle_tcp_connect_failed(now, id_of(r1))
        .expect("an open the agent asked for");
    assert_eq!(
        pair_to(&mut a, r1).map(|p| p.state),
        Some(PairState::Failed)
    );
    assert_eq!(
        pair_to(&mut a, r2).map(|p| p.state),
        Some(PairState::InProgress)
    );
    // Open: the pair's check goes over it, from the `so` address.
    a.handle_tcp_connected(now, id_of(r2), addr(SO))
        .expect("an open the agent asked for");
    let mut check = None;
    for step in 0..20 {
        let at = now + Duration::from_millis(10 * step);
        a.handle_timeout(at);
        if let Some(t) = a.poll_transmit(at) {
            check = Some(t);
            break;
        }
    }
    let check = check.expect("a check over the connection");
    assert_eq!(
        (check.transport, check.from, check.to),
        (TransportType::Tcp, addr(SO), addr(r2))
    );
    // Reset: that pair fails too, and nothing is left.
    a.handle_tcp_closed(now, addr(SO), addr(r2));
    assert!(
        pair_to(&mut a, r2).is_none_or(|p| p.state == PairState::Failed),
        "the reset pair failed"
    );
    assert!(a.poll_io_request().is_none());
}

/// A simultaneous open answered from another port is not the pair's: the connection is
/// closed and the pair fails.
#[test]
fn an_open_from_another_port_fails_the_pair() {
    let t0 = origin();
    let mut a = so_agent(so_config(), t0);
    let r1 = "192.0.2.2:7001";
    a.stream_mut(S0)
        .expect("stream")
        .add_remote_candidate(remote_so("1", r1))
        .expect("remote");
    let requests = run(&mut a, t0, Duration::from_millis(200));
    let (id, _, _) = opens(&requests)[0];
    let wrong = addr("192.0.2.1:50000");
    a.handle_tcp_connected(t0 + Duration::from_millis(300), id, wrong)
        .expect("an open the agent asked for");
    assert_eq!(
        a.poll_io_request(),
        Some(IoRequest::TcpClose {
            local: wrong,
            remote: addr(r1)
        })
    );
    assert_eq!(
        pair_to(&mut a, r1).map(|p| p.state),
        Some(PairState::Failed)
    );
}

/// With simultaneous open on, a STUN server over TCP is asked from the `so` port (so the
/// server-reflexive `so` candidate is that port's mapping), not from a UDP socket's IP.
#[test]
fn tcp_stun_queries_go_from_the_so_port() {
    let t0 = origin();
    let server = addr("198.51.100.1:3478");
    let mut a = Agent::new(so_config().stun_server(StunServer::tcp(server)));
    let sid = a.add_stream();
    let mut s = a.stream_mut(sid).expect("stream");
    let c = s.add_component().expect("component");
    s.add_local_socket(c, TransportType::Udp, addr("192.0.2.1:5000"))
        .expect("socket");
    s.add_local_so_socket(c, addr(SO)).expect("an so socket");
    s.gather_candidates(t0).expect("gathering");
    let requests = run(&mut a, t0, Duration::from_millis(300));
    let connects: Vec<_> = requests
        .iter()
        .filter_map(|r| match *r {
            IoRequest::TcpConnect { local, remote, .. } => Some((local, remote)),
            _ => None,
        })
        .collect();
    assert_eq!(connects, vec![(addr(SO), server)], "{requests:?}");
    let so_host = a
        .stream_mut(S0)
        .expect("stream")
        .local_candidates()
        .into_iter()
        .find(|c| c.tcp_type() == Some(TcpType::So))
        .expect("an so host candidate");
    assert_eq!(so_host.address(), addr(SO));
    assert_eq!(so_host.candidate_type(), CandidateType::Host);
    assert_eq!(so_host.component(), RTP);
}

/// RFC 6544 §7.2: a check that arrives on a simultaneous-open connection from an address
/// that is no remote candidate makes a peer-reflexive `so` remote candidate (not an
/// active one, as on a passive candidate's connection), paired with the `so` candidate.
#[test]
fn a_check_from_an_unknown_address_on_an_so_connection_is_a_prflx_so() {
    let t0 = origin();
    let mut a = so_agent(so_config(), t0);
    let (ufrag, pwd) = {
        let s = a.stream_mut(S0).expect("stream");
        let c = s.local_credentials();
        (c.ufrag().to_owned(), c.pwd().to_owned())
    };
    let mut check = Vec::new();
    let mut w = MessageWriter::new(
        &mut check,
        MessageType::BINDING_REQUEST,
        TransactionId([5; 12]),
    );
    w.add(&Username(&format!("{ufrag}:peer"))).expect("room");
    w.add(&Priority(1_234_567)).expect("room");
    w.add(&IceControlled(42)).expect("room");
    w.add_message_integrity(&IntegrityKey::short_term(&pwd).expect("key"))
        .expect("room");
    w.add_fingerprint().expect("room");
    let from = addr("203.0.113.9:40000");
    let data = a.handle_incoming(
        t0,
        Transmit {
            transport: TransportType::Tcp,
            from,
            to: addr(SO),
            data: check.as_slice(),
        },
    );
    assert!(data.is_none(), "a check, not data");
    let remote = a
        .stream_mut(S0)
        .expect("stream")
        .remote_candidates()
        .into_iter()
        .find(|c| c.address() == from)
        .expect("a peer-reflexive candidate");
    assert_eq!(remote.candidate_type(), CandidateType::PeerReflexive);
    assert_eq!(remote.tcp_type(), Some(TcpType::So));
    let pair = pair_to(&mut a, "203.0.113.9:40000").expect("its pair");
    assert_eq!(pair.local.tcp_type(), Some(TcpType::So));
    // The answer goes back over the same connection.
    let answer = a.poll_transmit(t0).expect("an answer");
    assert_eq!((answer.from, answer.to), (addr(SO), from));
}
