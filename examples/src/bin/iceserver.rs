//! `iceserver`: an ICE-lite echo server on one UDP port per address ([`librice::Endpoint`]),
//! one lite agent per client session; each session is a TCP connection speaking the
//! interop peers' JSON-lines protocol (tests/interop/PROTOCOL.md) with the server in the
//! role of a peer. `iceserver --connect IP:PORT` relays stdin and stdout to one session, so
//! that any stdio driver can use a server session as a peer process. See `USAGE`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use futures::{AsyncReadExt, StreamExt};
use librice::proto::candidate::IceCredentials;
use librice::{
    Agent, AgentEvent, AsyncTcpStream, Component, Endpoint, FailureReason, IceCandidate, Runtime,
    SelectedPair, Stream,
};
use librice_examples::protocol::{self, LineReader, round1};
use librice_examples::{RuntimeKind, block_on, parse_socket_addr, usage_error};
use serde_json::{Value, json};

const USAGE: &str = r#"usage: iceserver [--ip ADDR]... [--port P] [--signal IP:PORT] [--runtime tokio|async-std]
                 [--max-sessions N] [--timeout S] [--no-ping] [--allow-any-address]
       iceserver --connect IP:PORT

An ICE-lite echo server (RFC 8445 §2.5) on one UDP port per address: every client
session gets its own lite agent, all served by one librice::Endpoint (one socket per
--ip, one task for all agents).

  --ip ADDR             an address to serve ICE on; repeatable (default 127.0.0.1)
  --port P              the UDP port on each address (default 0: the system picks)
  --signal IP:PORT      the TCP signalling listener (default 127.0.0.1:0)
  --runtime R           tokio (default) or async-std
  --max-sessions N      sessions at once (default 1000); a connection beyond that
                        gets {"event":"failed","reason":"server full ..."} and exit
  --timeout S           lifetime of the server in seconds (default 0: forever)
  --no-ping             sessions do not send PING data (they still echo)
  --allow-any-address   turn off the loopback guard: without it a non-loopback --ip
                        or --signal is refused, and non-loopback remote candidates
                        are dropped
  --connect IP:PORT     relay mode: open one session at IP:PORT, copy stdin lines to
                        it and its lines to stdout; exit when either side ends (exit
                        status 0 if the session printed connected, 1 if not)

On start the server prints one line on stdout, then only diagnostics on stderr:
  {"event":"listening","udp":["127.0.0.1:P",...],"signal":"127.0.0.1:S"}

Signalling: each TCP connection to --signal is one session speaking the JSON lines of
tests/interop/PROTOCOL.md, the server playing a peer. The client writes what a driver
writes to a peer's stdin: its description (whole, or trickled: credentials, then
{"candidate":...} lines, then {"end_of_candidates":true}), {"send":"TEXT"} and
{"cmd":"close"}. The server writes what a peer writes to stdout: at once its
description {"ufrag":..,"pwd":..,"candidates":[..],"end_of_candidates":true,
"ice_lite":true} (controlled: the client must be a full agent, and controls), then
the events session ({"event":"session","name":"iceserver-N","udp":[..]}, first),
connected (with "local_base", the server socket of the pair), recv,
echo_ok, done, failed, error, and last exit ("stdin-eof" for the client's EOF,
"close", "timeout" when the server ends, "error"). EOF from the client ends the
session and closes its agent. A line that is not a JSON object, longer than 64 KiB
or not UTF-8 gets {"event":"failed","reason":"bad_input",...} and ends the session.

Data (as the other peers): every datagram not starting with ECHO: is echoed back as
ECHO:+datagram; once connected, unless --no-ping, the session sends
PING:iceserver-<N>:1:<seq> every 200 ms (at most 100) until one is echoed, then
prints echo_ok and done. N numbers the sessions from 1.

Restarts: new credentials from the client are its ICE restart (RFC 8445 §9): the
session follows it, prints its new description with "restart":true and
{"event":"restarted","by":"remote"}, and {"event":"reconnected_after_restart",...}
once the new pair is selected, then PINGs again. {"cmd":"restart"} (a restart
started by the server) is refused: {"event":"error","reason":"restart_unsupported"}."#;

/// The longest signalling line a session accepts.
const MAX_LINE: usize = 64 * 1024;
/// The most remote candidates a session takes.
const MAX_REMOTE_CANDIDATES: usize = 64;
/// How long a write to a client may take before its session is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server waits for its sessions to say `exit` when it ends.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Options {
    ips: Vec<IpAddr>,
    port: u16,
    signal: SocketAddr,
    runtime: RuntimeKind,
    max_sessions: usize,
    timeout: Option<Duration>,
    ping: bool,
    allow_any: bool,
    connect: Option<SocketAddr>,
}

fn main() {
    let options = parse_args().unwrap_or_else(|msg| usage_error(&msg, USAGE));
    if let Some(addr) = options.connect {
        relay(addr);
    }
    if !options.allow_any
        && let Some(bad) = options
            .ips
            .iter()
            .copied()
            .chain([options.signal.ip()])
            .find(|ip| !ip.is_loopback())
    {
        let reason = format!("{bad} is not loopback (use --allow-any-address)");
        eprintln!("iceserver: {reason}");
        println!("{}", json!({"event": "failed", "reason": reason}));
        std::process::exit(2);
    }
    let kind = options.runtime;
    let ok = block_on(kind, move |rt| Box::pin(serve(options, rt)));
    std::process::exit(if ok { 0 } else { 1 });
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        ips: Vec::new(),
        port: 0,
        signal: SocketAddr::from(([127, 0, 0, 1], 0)),
        runtime: RuntimeKind::Tokio,
        max_sessions: 1000,
        timeout: None,
        ping: true,
        allow_any: false,
        connect: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--ip" => {
                let v = value("--ip")?;
                let ip = v
                    .parse()
                    .map_err(|_| format!("--ip needs an IP address, got {v:?}"))?;
                options.ips.push(ip);
            }
            "--port" => {
                let v = value("--port")?;
                options.port = v
                    .parse()
                    .map_err(|_| format!("--port needs 0 to 65535, got {v:?}"))?;
            }
            "--signal" => options.signal = parse_socket_addr(&value("--signal")?, "--signal")?,
            "--connect" => {
                options.connect = Some(parse_socket_addr(&value("--connect")?, "--connect")?)
            }
            "--runtime" => options.runtime = RuntimeKind::parse(&value("--runtime")?)?,
            "--max-sessions" => {
                let v = value("--max-sessions")?;
                options.max_sessions = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!("--max-sessions needs a count of 1 or more, got {v:?}")
                })?;
            }
            "--timeout" => {
                let v = value("--timeout")?;
                let s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| format!("--timeout needs seconds, got {v:?}"))?;
                options.timeout = (s > 0.0).then(|| Duration::from_secs_f64(s));
            }
            "--no-ping" => options.ping = false,
            "--allow-any-address" => options.allow_any = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if options.ips.is_empty() {
        options.ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    Ok(options)
}

/// `--connect`: copies stdin lines to a new session at `addr` and its lines to stdout, and
/// exits when either ends (after stdin's end, it still relays the session's last lines,
/// for at most [`SHUTDOWN_GRACE`] + [`WRITE_TIMEOUT`]).
fn relay(addr: SocketAddr) -> ! {
    let fail = |reason: String| -> ! {
        eprintln!("iceserver: {reason}");
        println!("{}", json!({"event": "failed", "reason": reason}));
        println!(
            "{}",
            json!({"event": "exit", "reason": "error", "connected": false, "done": false})
        );
        std::process::exit(1);
    };
    let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| fail(format!("cannot connect to {addr}: {e}")));
    let mut to_server = socket
        .try_clone()
        .unwrap_or_else(|e| fail(format!("cannot use the connection to {addr}: {e}")));
    let connected = Arc::new(AtomicBool::new(false));
    let status = |connected: &AtomicBool| i32::from(!connected.load(Ordering::Acquire));
    let seen = Arc::clone(&connected);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = format!("{}\n", line.trim_end());
                    if to_server.write_all(text.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        }
        // The session ends on our EOF and says `exit`: let it through, boundedly.
        let _ = to_server.shutdown(std::net::Shutdown::Write);
        std::thread::sleep(SHUTDOWN_GRACE + WRITE_TIMEOUT);
        std::process::exit(status(&seen));
    });
    let mut from_server = std::io::BufReader::new(socket);
    let mut line = String::new();
    let stdout = std::io::stdout();
    loop {
        line.clear();
        match from_server.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if serde_json::from_str::<Value>(&line).is_ok_and(|v| v["event"] == "connected") {
                    connected.store(true, Ordering::Release);
                }
                let mut out = stdout.lock();
                if out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    std::process::exit(status(&connected));
}

/// What every session shares.
struct Server {
    endpoint: Endpoint,
    runtime: Arc<dyn Runtime>,
    options: Options,
    /// Sessions running now.
    live: AtomicUsize,
    /// The last session number given.
    numbered: AtomicU64,
    /// Resolves when the server ends (`--timeout`).
    stop: Shared<oneshot::Receiver<()>>,
}

/// Serves until `--timeout`; false if it could not start.
async fn serve(options: Options, runtime: Arc<dyn Runtime>) -> bool {
    let mut builder = Endpoint::builder().runtime(Arc::clone(&runtime));
    for ip in &options.ips {
        builder = builder.bind(SocketAddr::new(*ip, options.port));
    }
    let fail = |reason: String| {
        eprintln!("iceserver: {reason}");
        println!("{}", json!({"event": "failed", "reason": reason}));
        false
    };
    let endpoint = match builder.build() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot serve UDP: {e}")),
    };
    let listener = match std::net::TcpListener::bind(options.signal)
        .and_then(|l| runtime.wrap_tcp_listener(l))
    {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", options.signal)),
    };
    let signal = listener.local_addr().unwrap_or(options.signal);
    let udp: Vec<String> = endpoint
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    println!(
        "{}",
        json!({"event": "listening", "udp": udp, "signal": signal.to_string()})
    );
    let _ = std::io::stdout().flush();
    eprintln!("iceserver: ICE-lite on UDP {udp:?}, signalling on TCP {signal}");

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = Arc::new(Server {
        endpoint: endpoint.clone(),
        runtime: Arc::clone(&runtime),
        options: options.clone(),
        live: AtomicUsize::new(0),
        numbered: AtomicU64::new(0),
        stop: stop_rx.shared(),
    });
    let mut lifetime: BoxFuture<'static, ()> = match options.timeout {
        Some(t) => timer(runtime.as_ref(), runtime.now() + t),
        None => futures::future::pending().boxed(),
    };
    loop {
        let accept = futures::future::poll_fn(|cx| listener.poll_accept(cx));
        futures::select! {
            accepted = accept.fuse() => match accepted {
                Ok((tcp, from)) => admit(&server, tcp, from),
                Err(e) => {
                    // Out of file descriptors, for example: wait rather than spin.
                    eprintln!("iceserver: accept failed: {e}");
                    let pause = runtime.now() + Duration::from_millis(100);
                    timer(runtime.as_ref(), pause).await;
                }
            },
            () = (&mut lifetime).fuse() => break,
        }
    }
    eprintln!(
        "iceserver: timeout: ending {} sessions",
        server.live.load(Ordering::Acquire)
    );
    drop(stop_tx);
    let grace = runtime.now() + SHUTDOWN_GRACE;
    while server.live.load(Ordering::Acquire) > 0 && runtime.now() < grace {
        timer(runtime.as_ref(), runtime.now() + Duration::from_millis(20)).await;
    }
    let stats = endpoint.stats();
    eprintln!("iceserver: endpoint {stats:?}");
    endpoint.close();
    true
}

/// Starts a session for a new connection, or refuses it when `--max-sessions` run.
fn admit(server: &Arc<Server>, tcp: Box<dyn AsyncTcpStream>, from: SocketAddr) {
    let max = server.options.max_sessions;
    if server.live.fetch_add(1, Ordering::AcqRel) >= max {
        server.live.fetch_sub(1, Ordering::AcqRel);
        eprintln!("iceserver: refused {from}: {max} sessions already");
        let runtime = Arc::clone(&server.runtime);
        server.runtime.spawn(Box::pin(async move {
            let (_, writer) = tcp.split();
            let mut out = Output { writer, runtime };
            let reason = format!("server full ({max} sessions)");
            if out.line(json!({"event": "failed", "reason": reason})).await {
                out.line(json!({"event": "exit", "reason": "refused", "connected": false, "done": false}))
                    .await;
            }
            let _ = out.writer.close().await;
        }));
        return;
    }
    let number = server.numbered.fetch_add(1, Ordering::AcqRel) + 1;
    let server = Arc::clone(server);
    server.runtime.clone().spawn(Box::pin(async move {
        let live = LiveGuard(Arc::clone(&server));
        eprintln!("iceserver: session {number} from {from}");
        let reason = run_session(&server, number, tcp).await;
        eprintln!("iceserver: session {number} ended ({reason})");
        drop(live);
    }));
}

/// Counts a session out of [`Server::live`] however it ends.
struct LiveGuard(Arc<Server>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The writing half of a session's connection.
struct Output {
    writer: WriteHalf<Box<dyn AsyncTcpStream>>,
    runtime: Arc<dyn Runtime>,
}

impl Output {
    /// Writes one JSON line; false if the client is gone or took over [`WRITE_TIMEOUT`].
    async fn line(&mut self, value: Value) -> bool {
        let text = format!("{value}\n");
        let deadline = self.runtime.now() + WRITE_TIMEOUT;
        let write = async {
            self.writer.write_all(text.as_bytes()).await?;
            self.writer.flush().await
        };
        futures::select! {
            done = write.fuse() => done.is_ok(),
            () = timer(self.runtime.as_ref(), deadline).fuse() => false,
        }
    }
}

/// The signalling lines of a session's connection, as a stream.
fn lines(
    reader: ReadHalf<Box<dyn AsyncTcpStream>>,
) -> futures::stream::BoxStream<'static, Result<String, protocol::LineError>> {
    futures::stream::unfold(LineReader::new(reader, MAX_LINE), |mut r| async move {
        match r.next_line().await {
            Ok(Some(line)) => Some((Ok(line), r)),
            Ok(None) => None,
            Err(e) => Some((Err(e), r)),
        }
    })
    .boxed()
}

/// One client's session: its lite agent (one stream, one component) and its data test.
struct Session {
    name: String,
    start: Instant,
    ping: bool,
    allow_any: bool,
    out: Output,
    stream: Stream,
    component: Component,
    remote_creds: Option<IceCredentials>,
    remote_creds_at: Option<Instant>,
    remote_candidates: usize,
    connected: bool,
    pings_sent: u32,
    /// When each PING of the current round went out, by sequence number.
    ping_times: BTreeMap<u32, Instant>,
    echo_ok: bool,
    done: bool,
    restarts: u32,
    /// A restart under way: when the client's new credentials came.
    restart_at: Option<Instant>,
    /// Start PINGing (again): set on `connected` and after a restart reconnected.
    ping_start: bool,
    /// The client is gone (a write failed).
    gone: bool,
}

/// Runs session `number` on `tcp` until it ends; returns why.
async fn run_session(server: &Server, number: u64, tcp: Box<dyn AsyncTcpStream>) -> &'static str {
    let runtime = Arc::clone(&server.runtime);
    let (reader, writer) = tcp.split();
    let mut out = Output {
        writer,
        runtime: Arc::clone(&runtime),
    };
    let built = Agent::builder()
        .endpoint(&server.endpoint)
        .lite(true)
        .build()
        .and_then(|agent| {
            let stream = agent.add_stream();
            let component = stream.add_component()?;
            let gather = stream.gather_candidates()?;
            Ok((agent, stream, component, gather))
        });
    let (agent, stream, component, gather) = match built {
        Ok(parts) => parts,
        Err(e) => {
            out.line(json!({"event": "failed", "reason": format!("cannot start an agent: {e}")}))
                .await;
            out.line(
                json!({"event": "exit", "reason": "error", "connected": false, "done": false}),
            )
            .await;
            return "error";
        }
    };
    let mut events = agent.events().fuse();
    let mut recv = component.recv().fuse();
    let mut lines = lines(reader).fuse();
    let mut session = Session {
        name: format!("iceserver-{number}"),
        start: Instant::now(),
        ping: server.options.ping,
        allow_any: server.options.allow_any,
        out,
        stream,
        component,
        remote_creds: None,
        remote_creds_at: None,
        remote_candidates: 0,
        connected: false,
        pings_sent: 0,
        ping_times: BTreeMap::new(),
        echo_ok: false,
        done: false,
        restarts: 0,
        restart_at: None,
        ping_start: false,
        gone: false,
    };
    let udp: Vec<String> = server
        .endpoint
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    session
        .emit(json!({"event": "session", "name": session.name, "udp": udp}))
        .await;
    session.describe(gather, false).await;
    let mut stop = server.stop.clone().fuse();
    let mut next_ping = runtime.now();
    let mut ping_timer: futures::future::Fuse<BoxFuture<'static, ()>> =
        futures::future::Fuse::terminated();
    let reason = loop {
        if session.gone {
            break "error";
        }
        if std::mem::take(&mut session.ping_start) && session.ping {
            next_ping = runtime.now();
            ping_timer = timer(runtime.as_ref(), next_ping).fuse();
        }
        futures::select! {
            line = lines.next() => match line {
                Some(Ok(line)) => {
                    if let Some(reason) = session.handle_line(&line).await {
                        break reason;
                    }
                }
                Some(Err(e)) => {
                    session.emit(json!({"event": "failed", "reason": "bad_input",
                        "detail": e.to_string()})).await;
                    break "error";
                }
                None => break "stdin-eof",
            },
            event = events.next() => match event {
                Some(event) => session.handle_event(event).await,
                None => break "error",
            },
            data = recv.next() => if let Some(data) = data {
                session.handle_data(&data).await;
            },
            () = ping_timer => {
                if session.send_ping().await {
                    next_ping += protocol::PING_INTERVAL;
                    ping_timer = timer(runtime.as_ref(), next_ping).fuse();
                }
            },
            _ = stop => break "timeout",
        }
    };
    let mut exit = json!({"event": "exit", "reason": reason, "connected": session.connected,
        "done": session.done});
    if let Some(pair) = session.component.selected_pair() {
        exit["pairs"] = json!({"1": pair_json(&pair)});
    }
    session.emit(exit).await;
    let _ = session.out.writer.close().await;
    agent.close();
    reason
}

impl Session {
    /// Writes one line to the client (a failed write ends the session).
    async fn emit(&mut self, value: Value) {
        if !self.gone && !self.out.line(value).await {
            self.gone = true;
        }
    }

    /// Writes the description of a round of candidates (the first, or a restart's).
    async fn describe(&mut self, gather: librice::GatherStream, restart: bool) {
        let deadline = self.out.runtime.now() + WRITE_TIMEOUT;
        let collect = gather.map(|c| c.to_string()).collect::<Vec<_>>();
        let candidates = futures::select! {
            c = collect.fuse() => c,
            () = timer(self.out.runtime.as_ref(), deadline).fuse() => Vec::new(),
        };
        let creds = self.stream.local_credentials();
        let mut line = json!({"ufrag": creds.ufrag(), "pwd": creds.pwd(),
            "candidates": candidates, "end_of_candidates": true, "ice_lite": true});
        if restart {
            line["restart"] = true.into();
        }
        self.emit(line).await;
    }

    /// Applies one line from the client; returns an exit reason to stop.
    async fn handle_line(&mut self, line: &str) -> Option<&'static str> {
        if line.trim().is_empty() {
            return None;
        }
        let Some(obj) = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.as_object().cloned())
        else {
            let detail: String = line.chars().take(120).collect();
            self.emit(json!({"event": "failed", "reason": "bad_input",
                "detail": format!("not a JSON object: {detail:?}")}))
                .await;
            return Some("error");
        };
        match obj.get("cmd").and_then(Value::as_str) {
            Some("close") => return Some("close"),
            Some("restart") => {
                self.emit(json!({"event": "error", "reason": "restart_unsupported",
                    "by": "local"}))
                    .await;
                return None;
            }
            _ => {}
        }
        if let Some(send) = obj.get("send") {
            let text = send.as_str().unwrap_or_default();
            if let Err(e) = self.component.send(text.as_bytes()).await {
                eprintln!("iceserver: {}: send failed: {e}", self.name);
            }
            return None;
        }
        if obj.get("ice_lite").and_then(Value::as_bool) == Some(true) {
            // RFC 8445 §6.1.1: two lite agents cannot connect (neither checks).
            self.emit(json!({"event": "error", "reason": "peer_is_lite"}))
                .await;
        }
        if let (Some(ufrag), Some(pwd)) = (
            obj.get("ufrag").and_then(Value::as_str),
            obj.get("pwd").and_then(Value::as_str),
        ) {
            match IceCredentials::new(ufrag, pwd) {
                Ok(creds) => self.remote_credentials(creds).await,
                Err(e) => {
                    self.emit(json!({"event": "error", "reason": "bad_credentials",
                        "detail": e.to_string()}))
                        .await
                }
            }
        }
        let mut candidates: Vec<&Value> = obj
            .get("candidates")
            .and_then(Value::as_array)
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        candidates.extend(obj.get("candidate"));
        for c in candidates {
            self.add_candidate(c).await;
        }
        if obj.get("end_of_candidates").and_then(Value::as_bool) == Some(true) {
            self.stream.end_of_remote_candidates();
        }
        None
    }

    /// The client's credentials: new ones after the first are its restart, which the
    /// session follows (RFC 8839 §4.4.1.1.1) with a new description.
    async fn remote_credentials(&mut self, creds: IceCredentials) {
        let changed = self.remote_creds.as_ref().is_some_and(|c| *c != creds);
        if self.remote_creds.as_ref() == Some(&creds) {
            return;
        }
        self.stream.set_remote_credentials(creds.clone());
        self.remote_creds_at.get_or_insert_with(Instant::now);
        self.remote_creds = Some(creds);
        if !changed {
            return;
        }
        self.restarts += 1;
        self.restart_at = Some(Instant::now());
        self.remote_candidates = 0;
        match self.stream.gather_candidates() {
            Ok(round) => {
                self.describe(round, true).await;
                self.emit(json!({"event": "restarted", "by": "remote"}))
                    .await;
            }
            Err(e) => {
                self.emit(json!({"event": "error", "reason": "restart_failed",
                    "detail": e.to_string()}))
                    .await
            }
        }
    }

    async fn add_candidate(&mut self, value: &Value) {
        let refuse =
            |detail: String| json!({"event": "error", "reason": "bad_candidate", "detail": detail});
        if self.remote_candidates >= MAX_REMOTE_CANDIDATES {
            let detail = format!("more than {MAX_REMOTE_CANDIDATES} candidates");
            return self.emit(refuse(detail)).await;
        }
        let Some(text) = value.as_str() else {
            return self.emit(refuse(format!("not a string: {value}"))).await;
        };
        let candidate = match IceCandidate::parse(text) {
            Ok(c) => c,
            Err(e) => return self.emit(refuse(format!("{text:?}: {e}"))).await,
        };
        if !self.allow_any
            && candidate
                .as_address()
                .is_none_or(|c| !c.address().ip().is_loopback())
        {
            eprintln!(
                "iceserver: {}: dropped non-loopback candidate {text:?}",
                self.name
            );
            return;
        }
        self.remote_candidates += 1;
        if let Err(e) = self.stream.add_remote_candidate(candidate) {
            self.emit(refuse(format!("{text:?}: {e}"))).await;
        }
    }

    async fn handle_event(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::SelectedPair { pair, .. } if !self.connected => {
                self.connected = true;
                self.ping_start = true;
                let since = self.remote_creds_at.unwrap_or_else(Instant::now);
                let line = self.pair_event("connected", &pair, since);
                self.emit(line).await;
            }
            AgentEvent::SelectedPairChanged { new, .. } => {
                if let Some(at) = self.restart_at.take() {
                    let mut line = self.pair_event("reconnected_after_restart", &new, at);
                    line["by"] = "remote".into();
                    line["restarts"] = self.restarts.into();
                    self.emit(line).await;
                    self.echo_ok = false;
                    self.ping_times.clear();
                    self.ping_start = true;
                } else {
                    let mut line = pair_json(&new);
                    line["event"] = "selected_changed".into();
                    line["component"] = 1.into();
                    self.emit(line).await;
                }
            }
            AgentEvent::ComponentFailed { reason, .. } => {
                let code = match reason {
                    FailureReason::ConsentLost => "consent_lost",
                    FailureReason::AuthenticationFailed(_) => "authentication_failed",
                    FailureReason::ChecksFailed(_) => "checks_failed",
                    FailureReason::NominationTimeout => "nomination_timeout",
                    _ => "other",
                };
                self.emit(json!({"event": "failed", "component": 1, "reason": code,
                    "detail": reason.to_string()}))
                    .await;
            }
            _ => {}
        }
    }

    /// `connected` or `reconnected_after_restart`: the pair, the server socket it uses
    /// (`local_base`), the time since `since` and since the session started.
    fn pair_event(&self, event: &str, pair: &SelectedPair, since: Instant) -> Value {
        let ms = |t: Instant| round1(t.elapsed().as_secs_f64() * 1000.0);
        let mut line = pair_json(pair);
        line["event"] = event.into();
        line["pairs"] = json!({"1": pair_json(pair)});
        line["local_base"] = pair.local_base.to_string().into();
        line["elapsed_ms"] = ms(since).into();
        line["since_start_ms"] = ms(self.start).into();
        line
    }

    async fn handle_data(&mut self, data: &[u8]) {
        self.emit(protocol::recv_event(1, data)).await;
        let Some(echo) = protocol::echo_reply(data) else {
            let Some(seq) = protocol::echoed_ping(data, &self.name, 1) else {
                return;
            };
            if std::mem::replace(&mut self.echo_ok, true) {
                return;
            }
            let after = self
                .ping_times
                .get(&seq)
                .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
            let mut line = json!({"event": "echo_ok", "component": 1,
                "echo_after_ms": round1(after), "pings_sent": self.pings_sent});
            if self.restarts > 0 {
                line["restarts"] = self.restarts.into();
            }
            self.emit(line).await;
            if !self.done {
                self.done = true;
                self.emit(json!({"event": "done", "ok": true})).await;
            }
            return;
        };
        if let Err(e) = self.component.send(&echo).await {
            eprintln!("iceserver: {}: echo failed: {e}", self.name);
        }
    }

    /// Sends the next PING unless echoed or [`protocol::MAX_PINGS`] went out; returns
    /// whether to keep pinging.
    async fn send_ping(&mut self) -> bool {
        if self.echo_ok || self.ping_times.len() as u32 >= protocol::MAX_PINGS {
            return false;
        }
        let seq = self.pings_sent;
        let payload = protocol::ping_payload(&self.name, 1, seq);
        if let Err(e) = self.component.send(payload.as_bytes()).await {
            eprintln!("iceserver: {}: ping failed: {e}", self.name);
        }
        self.pings_sent += 1;
        self.ping_times.insert(seq, Instant::now());
        true
    }
}

/// A future that completes at `deadline` on `runtime`'s clock.
fn timer(runtime: &dyn Runtime, deadline: Instant) -> BoxFuture<'static, ()> {
    let mut timer = runtime.new_timer(deadline);
    Box::pin(futures::future::poll_fn(move |cx| {
        timer.as_mut().poll_elapsed(cx)
    }))
}

/// A selected pair as the protocol shows it.
fn pair_json(pair: &SelectedPair) -> Value {
    json!({"local": pair.local.to_string(), "remote": pair.remote.to_string()})
}
