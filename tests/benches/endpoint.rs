//! Server-mode benchmarks of the facade's [`Endpoint`]: what 1,000 and 10,000 connected
//! lite agents on one UDP port cost (heap per agent with a counting allocator, RSS, the
//! time and the server's CPU to connect them all), and the datagrams per second one
//! agent of an endpoint receives with batched reads (`recvmmsg`) against one system call
//! per datagram, in the same run. BENCHMARKS.md records the figures.
//!
//! The clients run in a child process (this same binary, started with
//! `LIBRICE_ENDPOINT_BENCH_CLIENTS=N`): sans-IO full agents of the core, each on a UDP
//! socket of its own, all driven by one thread, so that the server process's heap, RSS
//! and CPU are the endpoint's alone. Server and clients signal over the child's stdin and
//! stdout, one line per client.
//!
//! Run: `cargo bench -p librice-tests --bench endpoint` (figures first, then criterion's
//! throughput group; `-- --figures-only` stops after the figures).

use std::alloc::System;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use librice::{Agent, Endpoint, IceCandidate, IceCredentials, Runtime};
use librice_tests::ice::{Peer, connected, exchange};
use librice_tests::runtimes::CountingRuntime;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CLIENTS_ENV: &str = "LIBRICE_ENDPOINT_BENCH_CLIENTS";

/// Heap bytes in use now (every allocation of the process). `stats_alloc` counts what a
/// reallocation adds in `bytes_allocated` (and what it gives back in `bytes_deallocated`),
/// and again in `bytes_reallocated`: that one is not added.
fn heap() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// This process's resident set size, from `/proc/self/status` (0 where there is none).
fn rss() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// CPU time (user + system) this process has used.
fn cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn tokio_runtime() -> (tokio::runtime::Runtime, Arc<dyn Runtime>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let handle = librice_tokio::runtime_from_handle(rt.handle().clone());
    (rt, handle)
}

/// One scale run: `n` lite agents on one endpoint, connected by `n` clients in a child
/// process. Prints the figures.
fn scale(n: usize) {
    let (tokio_rt, rt) = tokio_runtime();
    let heap0 = heap();
    let rss0 = rss();
    let endpoint = Endpoint::builder()
        .runtime(Arc::clone(&rt))
        .bind("127.0.0.1:0".parse().expect("an address"))
        .build()
        .expect("the endpoint binds");
    let shared = endpoint.local_addrs()[0];
    let mut agents = Vec::with_capacity(n);
    for _ in 0..n {
        let agent = Agent::builder()
            .endpoint(&endpoint)
            .lite(true)
            .build()
            .expect("an agent");
        let stream = agent.add_stream();
        let component = stream.add_component().expect("a component");
        agents.push((agent, stream, component));
    }
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(CLIENTS_ENV, n.to_string())
        .arg(shared.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the client process starts");
    let mut to_clients = child.stdin.take().expect("stdin");
    let from_clients = BufReader::new(child.stdout.take().expect("stdout"));

    let start = Instant::now();
    let cpu0 = cpu();
    {
        let mut lines = String::new();
        for (i, (_, stream, _)) in agents.iter().enumerate() {
            // Starts gathering: the candidate is the endpoint's address, known already.
            drop(stream.gather_candidates().expect("gathering"));
            let c = stream.local_credentials();
            lines.push_str(&format!("{i} {} {}\n", c.ufrag(), c.pwd()));
        }
        to_clients.write_all(lines.as_bytes()).expect("signal");
        to_clients.flush().expect("signal");
    }
    let mut answered = 0;
    let mut lines = from_clients.lines();
    while answered < n {
        let line = lines.next().expect("the clients answer").expect("a line");
        let mut f = line.split(' ');
        let (Some(i), Some(ufrag), Some(pwd), Some(port)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            panic!("bad client line {line:?}");
        };
        let i: usize = i.parse().expect("an index");
        let stream = &agents[i].1;
        stream.set_remote_credentials(IceCredentials::new(ufrag, pwd).expect("credentials"));
        let candidate = format!("candidate:1 1 UDP 2130706431 127.0.0.1 {port} typ host");
        stream
            .add_remote_candidate(IceCandidate::parse(&candidate).expect("a candidate"))
            .expect("accepted");
        stream.end_of_remote_candidates();
        answered += 1;
    }
    let all = futures::future::join_all(agents.iter().map(|(_, _, c)| c.connected()));
    let results = tokio_rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("every agent connects within 120 s")
    });
    let elapsed = start.elapsed();
    let cpu_used = cpu() - cpu0;
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 0, "{failed} agents failed");
    drop(results);
    // A second of steady state: the clients' consent checks, the agents' answers.
    std::thread::sleep(Duration::from_secs(1));
    let heap1 = heap();
    let rss1 = rss();
    let stats = endpoint.stats();
    println!(
        "endpoint/scale n={n}: all connected in {:.2} s ({:.1} us wall per client), server CPU {:.2} s ({:.1} us per connect); heap {} B per agent (all included: endpoint, agents, handles, tables), RSS +{} B per agent; routed by ufrag {}, by tuple {}, dropped {}",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        cpu_used.as_secs_f64(),
        cpu_used.as_secs_f64() * 1e6 / n as f64,
        (heap1 - heap0) / n as i64,
        (rss1 - rss0) / n as i64,
        stats.routed_by_ufrag,
        stats.routed_by_tuple,
        stats.dropped_unknown_source + stats.dropped_unknown_ufrag,
    );
    drop(to_clients);
    let _ = child.wait();
    for (agent, _, _) in &agents {
        agent.close();
    }
    drop(agents);
    endpoint.close();
}

/// The client process: sans-IO full agents, controlling, each on its own socket, all
/// driven by this thread.
fn clients(n: usize, server: SocketAddr) {
    use librice_proto::agent::{AgentConfig, ComponentId};
    use librice_proto::candidate::Candidate;
    use librice_proto::{Transmit, TransportType};

    struct Client {
        agent: librice_proto::agent::Agent,
        socket: UdpSocket,
        local: SocketAddr,
    }
    let (tx, rx) = std::sync::mpsc::channel::<(usize, String, String)>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let mut f = line.split(' ');
            if let (Some(i), Some(u), Some(p)) = (f.next(), f.next(), f.next())
                && let Ok(i) = i.parse()
            {
                let _ = tx.send((i, u.to_owned(), p.to_owned()));
            }
        }
        // EOF: the server is done.
        std::process::exit(0);
    });
    let server_candidate = Candidate::parse(&format!(
        "candidate:1 1 UDP 2130706431 {} {} typ host",
        server.ip(),
        server.port()
    ))
    .expect("the server's candidate");
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        while let Ok((i, ufrag, pwd)) = rx.try_recv() {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("a client socket");
            socket.set_nonblocking(true).expect("non-blocking");
            let local = socket.local_addr().expect("an address");
            let mut agent = librice_proto::agent::Agent::new(
                AgentConfig::default()
                    .controlling(true)
                    .rng_seed(i as u64 + 1),
            );
            let s_id = agent.add_stream();
            let mut s = agent.stream_mut(s_id).expect("the stream");
            let c = s.add_component().expect("a component");
            debug_assert_eq!(c, ComponentId::RTP);
            s.add_local_socket(c, TransportType::Udp, local)
                .expect("a socket");
            s.set_remote_lite(true);
            s.gather_candidates(now).expect("gathering");
            s.set_remote_credentials(IceCredentials::new(ufrag, pwd).expect("credentials"));
            s.add_remote_candidate(server_candidate.clone())
                .expect("accepted");
            s.end_of_remote_candidates();
            let mine = s.local_credentials().clone();
            writeln!(out, "{i} {} {} {}", mine.ufrag(), mine.pwd(), local.port()).expect("signal");
            clients.push(Client {
                agent,
                socket,
                local,
            });
        }
        let _ = out.flush();
        let mut next: Option<Instant> = None;
        for c in &mut clients {
            while let Ok((len, from)) = c.socket.recv_from(&mut buf) {
                let t = Transmit {
                    transport: TransportType::Udp,
                    from,
                    to: c.local,
                    data: &buf[..len],
                };
                let _ = c.agent.handle_incoming(now, t);
            }
            if c.agent.poll_timeout().is_some_and(|t| t <= now) {
                c.agent.handle_timeout(now);
            }
            while let Some(t) = c.agent.poll_transmit(now) {
                let _ = c.socket.send_to(&t.data, t.to);
            }
            while let Some(event) = c.agent.poll_event() {
                drop(event);
            }
            if let Some(t) = c.agent.poll_timeout() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let wait = next
            .map_or(Duration::from_millis(1), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .min(Duration::from_millis(1));
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A client for the throughput runs: a sans-IO full agent on a plain UDP socket, driven
/// by a thread of its own (checks, then consent checks), connected to the endpoint agent
/// whose credentials are given; returns a clone of its socket, to send data on the
/// selected pair's 5-tuple.
fn blaster(server: SocketAddr, remote: IceCredentials) -> (UdpSocket, IceCredentials, u16) {
    use librice_proto::agent::AgentConfig;
    use librice_proto::candidate::Candidate;
    use librice_proto::{Transmit, TransportType};

    let socket = UdpSocket::bind("127.0.0.1:0").expect("a socket");
    let local = socket.local_addr().expect("an address");
    let mut agent =
        librice_proto::agent::Agent::new(AgentConfig::default().controlling(true).rng_seed(7));
    let now = Instant::now();
    let sid = agent.add_stream();
    let mut s = agent.stream_mut(sid).expect("the stream");
    let c = s.add_component().expect("a component");
    s.add_local_socket(c, TransportType::Udp, local)
        .expect("a socket");
    s.set_remote_lite(true);
    s.gather_candidates(now).expect("gathering");
    s.set_remote_credentials(remote);
    let line = format!(
        "candidate:1 1 UDP 2130706431 {} {} typ host",
        server.ip(),
        server.port()
    );
    s.add_remote_candidate(Candidate::parse(&line).expect("a candidate"))
        .expect("accepted");
    s.end_of_remote_candidates();
    let mine = s.local_credentials().clone();
    let thread_socket = socket.try_clone().expect("a clone");
    thread_socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .expect("a timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        loop {
            let now = Instant::now();
            if let Ok((len, from)) = thread_socket.recv_from(&mut buf) {
                let t = Transmit {
                    transport: TransportType::Udp,
                    from,
                    to: local,
                    data: &buf[..len],
                };
                let _ = agent.handle_incoming(now, t);
            }
            if agent.poll_timeout().is_some_and(|t| t <= now) {
                agent.handle_timeout(now);
            }
            while let Some(t) = agent.poll_transmit(now) {
                if thread_socket.send_to(&t.data, t.to).is_err() {
                    return;
                }
            }
            while agent.poll_event().is_some() {}
        }
    });
    (socket, mine, local.port())
}

/// Sends `n` datagrams of 1,000 bytes from `socket` to `to` in GSO batches of up to 64
/// (one system call each), at most `WINDOW` ahead of what the endpoint agent has
/// received (`received`); returns the time until all arrived.
fn blast(
    n: u64,
    state: &quinn_udp::UdpSocketState,
    socket: &UdpSocket,
    to: SocketAddr,
    received: &std::sync::atomic::AtomicU64,
) -> Duration {
    use std::sync::atomic::Ordering;
    const WINDOW: u64 = 512;
    const SIZE: usize = 1000;
    let segments = state.max_gso_segments().clamp(1, 64);
    let data = vec![0x5a; SIZE * segments];
    let base = received.load(Ordering::Acquire);
    let start = Instant::now();
    let mut sent = 0u64;
    while received.load(Ordering::Acquire) - base < n {
        let got = received.load(Ordering::Acquire) - base;
        let room = (WINDOW - (sent - got).min(WINDOW)).min(n - sent) as usize;
        if room == 0 {
            std::thread::yield_now();
            continue;
        }
        let k = room.min(segments);
        let t = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents: &data[..k * SIZE],
            segment_size: (k > 1).then_some(SIZE),
            src_ip: None,
        };
        match state.try_send(socket.into(), &t) {
            Ok(()) => sent += k as u64,
            Err(_) => std::thread::yield_now(),
        }
    }
    start.elapsed()
}

/// An endpoint on `rt` with one lite agent whose component counts what it receives, and
/// a client connected to it; returns what [`blast`] needs.
fn blast_setup(
    tokio_rt: &tokio::runtime::Runtime,
    rt: Arc<dyn Runtime>,
) -> (
    Endpoint,
    Agent,
    UdpSocket,
    SocketAddr,
    Arc<std::sync::atomic::AtomicU64>,
) {
    let endpoint = Endpoint::builder()
        .runtime(Arc::clone(&rt))
        .bind("127.0.0.1:0".parse().expect("an address"))
        .recv_buffer_size(8 << 20)
        .build()
        .expect("binds");
    let shared = endpoint.local_addrs()[0];
    let agent = Agent::builder()
        .endpoint(&endpoint)
        .lite(true)
        .build()
        .expect("an agent");
    let stream = agent.add_stream();
    let component = stream.add_component().expect("a component");
    drop(stream.gather_candidates().expect("gathering"));
    let (socket, client, port) = blaster(shared, stream.local_credentials());
    stream.set_remote_credentials(client);
    let line = format!("candidate:1 1 UDP 2130706431 127.0.0.1 {port} typ host");
    stream
        .add_remote_candidate(IceCandidate::parse(&line).expect("a candidate"))
        .expect("accepted");
    stream.end_of_remote_candidates();
    tokio_rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), component.connected()).await
        })
        .expect("connects in time")
        .expect("connects");
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let mut datagrams = component.datagram();
    tokio_rt.spawn(async move {
        let mut buf = vec![0u8; 2048];
        while datagrams.recv(&mut buf).await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    });
    (endpoint, agent, socket, shared, received)
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint");
    group.throughput(Throughput::Elements(1));
    let (tokio_rt, rt) = tokio_runtime();
    let batched = blast_setup(&tokio_rt, Arc::clone(&rt));
    let unbatched = blast_setup(&tokio_rt, CountingRuntime::unbatched(Arc::clone(&rt)));
    for (name, (_, _, socket, to, received)) in [
        ("recv/batched", &batched),
        ("recv/one_per_call", &unbatched),
    ] {
        let state = quinn_udp::UdpSocketState::new(socket.into()).expect("quinn-udp");
        group.bench_function(name, |b| {
            b.iter_custom(|n| blast(n, &state, socket, *to, received))
        });
    }
    group.finish();
    for (endpoint, agent, ..) in [batched, unbatched] {
        agent.close();
        endpoint.close();
    }
}

/// Heap and RSS per connected standalone agent (its own sockets and tasks): `n` pairs of
/// agents in this process, connected over loopback, one stream and one component each,
/// with the default network-change policy (the interfaces watched).
fn standalone(n: usize) {
    let (tokio_rt, rt) = tokio_runtime();
    let heap0 = heap();
    let rss0 = rss();
    let ip = "127.0.0.1".parse().expect("an address");
    let pairs: Vec<(Peer, Peer)> = tokio_rt.block_on(async {
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let a = Peer::new(Arc::clone(&rt), true, ip, &[1], None);
            let b = Peer::new(Arc::clone(&rt), false, ip, &[1], None);
            exchange(&a, &b).await;
            pairs.push((a, b));
        }
        for (a, b) in &pairs {
            connected(rt.as_ref(), a, Duration::from_secs(20)).await;
            connected(rt.as_ref(), b, Duration::from_secs(20)).await;
        }
        pairs
    });
    std::thread::sleep(Duration::from_secs(1));
    let heap1 = heap();
    let rss1 = rss();
    println!(
        "standalone agents: {} connected: heap {} B per agent (sockets, tasks, handles), RSS +{} B per agent",
        2 * n,
        (heap1 - heap0) / (2 * n) as i64,
        (rss1 - rss0) / (2 * n) as i64,
    );
    for (a, b) in &pairs {
        a.agent.close();
        b.agent.close();
    }
    drop(pairs);
}

fn main() {
    if let Ok(n) = std::env::var(CLIENTS_ENV) {
        let n: usize = n.parse().expect("a client count");
        let server: SocketAddr = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .expect("the server's address");
        clients(n, server);
        return;
    }
    let figures_only = std::env::args().any(|a| a == "--figures-only");
    let sizes: Vec<usize> = std::env::var("LIBRICE_ENDPOINT_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]);
    for n in sizes {
        scale(n);
    }
    if std::env::var("LIBRICE_ENDPOINT_BENCH_STANDALONE").as_deref() != Ok("0") {
        standalone(100);
    }
    if figures_only {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
