//! `iceserver`: an ICE-lite echo server on one UDP port per address ([`librice::Endpoint`]),
//! one lite agent per client session; each session is a TCP connection speaking the
//! interop peers' JSON-lines protocol (tests/interop/PROTOCOL.md) with the server in the
//! role of a peer. `iceserver --connect IP:PORT` relays stdin and stdout to one session, so
//! that any stdio driver can use a server session as a peer process. See `USAGE`.

use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt};
use librice::{AsyncTcpStream, Endpoint, Runtime};
use librice_examples::lite_server::{SessionConfig, WRITE_TIMEOUT, refuse, run_session, timer};
use librice_examples::{RuntimeKind, block_on, parse_socket_addr, usage_error};
use serde_json::{Value, json};

const USAGE: &str = r#"usage: iceserver [--ip ADDR]... [--port P] [--signal IP:PORT] [--runtime tokio|async-std]
                 [--max-sessions N] [--timeout S] [--idle S] [--no-ping]
                 [--allow-any-address]
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
  --idle S              a session whose ICE is not connected and whose client wrote
                        no line for S seconds ends with exit reason "idle" (default
                        60; 0: never), so that vanished clients free their agent
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
"close", "timeout" when the server ends, "idle" (see --idle), "error"). EOF from the client ends the
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

/// How long a session may be idle by default (`--idle`).
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

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
    idle: Option<Duration>,
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

/// A duration in seconds for option `name`: `None` for 0.
fn seconds(name: &str, v: &str) -> Result<Option<Duration>, String> {
    let s = v
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .ok_or_else(|| format!("{name} needs seconds, got {v:?}"))?;
    Ok((s > 0.0).then(|| Duration::from_secs_f64(s)))
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        ips: Vec::new(),
        port: 0,
        signal: SocketAddr::from(([127, 0, 0, 1], 0)),
        runtime: RuntimeKind::Tokio,
        max_sessions: 1000,
        timeout: None,
        idle: Some(DEFAULT_IDLE),
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
            "--timeout" => options.timeout = seconds("--timeout", &value("--timeout")?)?,
            "--idle" => options.idle = seconds("--idle", &value("--idle")?)?,
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
    sessions: SessionConfig,
    max_sessions: usize,
    /// Sessions running now.
    live: AtomicUsize,
    /// The last session number given.
    numbered: AtomicU64,
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
        sessions: SessionConfig {
            endpoint: endpoint.clone(),
            runtime: Arc::clone(&runtime),
            ping: options.ping,
            allow_any: options.allow_any,
            stop: stop_rx.shared(),
            idle: options.idle,
        },
        max_sessions: options.max_sessions,
        live: AtomicUsize::new(0),
        numbered: AtomicU64::new(0),
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
        "iceserver: timeout: ending {} sessions ({} agents on the endpoint)",
        server.live.load(Ordering::Acquire),
        endpoint.agent_count()
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
    let max = server.max_sessions;
    let runtime = Arc::clone(&server.sessions.runtime);
    if server.live.fetch_add(1, Ordering::AcqRel) >= max {
        server.live.fetch_sub(1, Ordering::AcqRel);
        eprintln!("iceserver: refused {from}: {max} sessions already");
        let reason = format!("server full ({max} sessions)");
        runtime.spawn(Box::pin(refuse(Arc::clone(&runtime), tcp, reason)));
        return;
    }
    let number = server.numbered.fetch_add(1, Ordering::AcqRel) + 1;
    let server = Arc::clone(server);
    runtime.spawn(Box::pin(async move {
        let live = LiveGuard(Arc::clone(&server));
        eprintln!("iceserver: session {number} from {from}");
        let reason = run_session(&server.sessions, number, tcp).await;
        // Counted out before saying so: a client that reads this line may start another.
        drop(live);
        let agents = server.sessions.endpoint.agent_count();
        eprintln!("iceserver: session {number} ended ({reason}; the endpoint has {agents} agents)");
    }));
}

/// Counts a session out of [`Server::live`] however it ends.
struct LiveGuard(Arc<Server>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}
