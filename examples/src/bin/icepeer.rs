//! `icepeer`: a full ICE endpoint on librice (an ICE-lite one with `--lite`), driven by JSON lines on stdin/stdout in the
//! signalling protocol of the interop peers (PROTOCOL.md), so that it pairs with aioice,
//! libnice, Chromium or itself.
//!
//! Besides the protocol's events, icepeer reports the liveness of its components (consent
//! freshness, RFC 7675), one JSON line each:
//!
//! - `{"event":"disconnected","component":c}`: the peer has not been heard on the
//!   component's selected pair for the Disconnected timeout (`--disconnected-timeout`);
//! - `{"event":"reconnected","component":c}`: it is heard again after `disconnected`;
//! - `{"event":"failed","component":c,"reason":R,"detail":D}`: the component failed for
//!   good; `R` is `consent_lost`, `authentication_failed`, `checks_failed` or
//!   `nomination_timeout`, and `D` the library's description of the reason. (A `failed`
//!   line without `component` is a refusal of the options, as in the protocol.)
//! - `{"event":"consent","component":c,"requests_sent":n,"responses_received":m,"t_ms":T}`:
//!   whenever the count of consent checks sent on the component grows; `T` is the time
//!   since icepeer started, in ms. The counters are polled every 250 ms (the library has
//!   no event per consent check), so `T` is at most 250 ms late: a twentieth of the 5 s
//!   consent interval.
//!
//! The `connected` and `done` events also carry `"stats"`: per component id, its selected
//! pair's statistics from the library ([`librice::Stream::stats`]), or `null` without one:
//! `requests_sent`, `requests_received`, `responses_sent`, `responses_received` (the
//! connectivity and consent checks both ways), `consent_requests_sent`, `rtt_ms` (the
//! round-trip time of the latest answered check, `null` before any), and `packets_sent`,
//! `bytes_sent`, `packets_received`, `bytes_received` (application data each way).
//!
//! With `--dtls client|server|auto`, icepeer also runs a DTLS handshake on component 1 once
//! connected ([`librice_examples::dtls`]): its description line carries the fingerprint of
//! a certificate made at start and its `a=setup` role, it checks the peer's certificate
//! against the peer's `fingerprint`, and prints `dtls_connected` or `dtls_failed` (see
//! `--help` and PROTOCOL.md).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use librice::interfaces::AddressFilter;
use librice::proto::candidate::{IceCredentials, IceOption, MAX_COMPONENT};
use librice::{
    Agent, AgentEvent, Component, ComponentId, ComponentState, FailureReason, IceCandidate,
    Runtime, Stream, Transports,
};
use librice_examples::protocol::{self, round1};
use librice_examples::{RuntimeKind, block_on, parse_socket_addr};
use serde_json::{Value, json};

/// How often the consent counters are polled for `consent` lines.
const CONSENT_POLL: Duration = Duration::from_millis(250);

const USAGE: &str = r#"usage: icepeer --role controlling|controlled [--components N] [--transport udp|tcp|all]
               [--ip ADDR]... [--stun HOST:PORT [--stun-transport udp|tcp]] [--turn HOST:PORT --turn-user U
               --turn-pass P [--turn-transport udp|tcp|tls] [--turn-insecure] [--relay-only]] [--trickle] [--no-ping]
               [--name NAME] [--timeout S] [--allow-any-address]
               [--ta MS] [--runtime tokio|async-std] [--consent-interval S]
               [--consent-timeout S] [--disconnected-timeout S]
               [--dtls client|server|auto] [--renomination] [--lite]

A full ICE endpoint (librice), or with --lite an ICE-lite one, speaking the
interop signalling protocol: JSON lines on stdin and stdout (see
tests/interop/PROTOCOL.md).

  --role R              controlling or controlled (required)
  --components N        components, 1 to 256 (default 1)
  --transport T         host-candidate transports: udp (default), tcp (ICE-TCP, RFC 6544:
                        a passive and an active candidate per address) or all
  --ip ADDR             gather on this address only; repeatable (default 127.0.0.1)
  --stun HOST:PORT      STUN server for server-reflexive candidates
  --stun-transport T    udp (default) or tcp to the STUN server
  --turn HOST:PORT      TURN server for relayed candidates (UDP), with
  --turn-user U         its username and
  --turn-pass P         its password
  --turn-transport T    udp (default), tcp or tls to the TURN server
  --turn-insecure       with tls: accept any server certificate (test servers)
  --relay-only          gather, advertise and use only relayed candidates
  --trickle             credentials first, then one line per candidate, then
                        end-of-candidates
  --no-ping             do not send PING data after connecting (still echoes)
  --name NAME           name in PING payloads (default librice)
  --timeout S           hard bound on the process lifetime (default 30)
  --allow-any-address   turn off the loopback-only guard (which lets the peer's
                        .local candidates through and checks the address they
                        resolve to: a selected pair whose remote address is not
                        loopback ends icepeer with "failed")
  --mdns                hide the host candidates behind random .local names,
                        published over mDNS on the gathering interfaces (needs
                        multicast there; on loopback, a network namespace with
                        `ip link set lo multicast on`)
  --ta MS               check pacing interval Ta, 5 to 1000 ms (default 5: this
                        tool runs on loopback and LANs with few candidates; RFC 8445
                        §14.2 allows any Ta from 5 ms; the library's default is 50 ms)
  --runtime R           tokio (default) or async-std
  --consent-interval S  mean interval between consent checks (RFC 7675), in
                        seconds (default 5; each one is drawn from 0.8x to 1.2x)
  --consent-timeout S   consent expiry after the last answer (default 30)
  --disconnected-timeout S
                        silence before a component reports disconnected (default 8)
  --dtls MODE           once connected, run a DTLS handshake on component 1 as
                        client, server, or auto (roles below)
  --renomination        offer renomination (draft-thatcher-ice-renomination):
                        "ice_options":["renomination"] in the description; used
                        when the peer's description announces it too
  --lite                run as an ICE-lite agent (RFC 8445 §2.5): host candidates
                        only (--stun and --turn are ignored), always controlled
                        (use it with --role controlled), no checks of its own;
                        "ice_lite":true in the description. A peer description
                        with "ice_lite":true makes a full icepeer controlling

Restarts (RFC 8445 §9; PROTOCOL.md "Restart"): {"cmd":"restart"} on stdin
restarts ICE and prints the new description with "restart":true, then
{"event":"restarted","by":"local"}; a description whose ufrag or pwd differs
from the peer's current ones is the peer's restart: icepeer follows it, prints
its new description and {"event":"restarted","by":"remote"}. Once every
component is on a new pair: {"event":"reconnected_after_restart",...}, then
PINGs again (echo_ok carries "restarts":N). {"event":"selected_changed",...}
whenever a selected pair moves to other candidates.

stdout carries only the protocol's JSON lines; diagnostics go to stderr. Besides
the protocol's events, icepeer prints its components' liveness:
  {"event":"disconnected","component":C}   the peer went silent on C
  {"event":"reconnected","component":C}    heard again after disconnected
  {"event":"failed","component":C,"reason":R,"detail":TEXT}
      C failed; R is consent_lost, authentication_failed, checks_failed or
      nomination_timeout (a failed line without component refuses the options)
  {"event":"consent","component":C,"requests_sent":N,"responses_received":M,"t_ms":T}
      whenever N (consent checks sent on C) grows; T is ms since the start,
      polled every 250 ms
  {"event":"role","controlling":B,"peer_lite":L}
      the ICE role changed: a role conflict (RFC 8445 §7.3.1.1), or a peer
      description with "ice_lite":true (a full icepeer then controls); L says
      whether the peer's description said "ice_lite":true

The connected and done events also carry "stats": per component id, its
selected pair's statistics (null without one):
  {"1":{"requests_sent":N,"requests_received":N,"responses_sent":N,
        "responses_received":N,"consent_requests_sent":N,"rtt_ms":F|null,
        "packets_sent":N,"bytes_sent":N,"packets_received":N,"bytes_received":N}}
  requests/responses count the connectivity and consent checks both ways,
  rtt_ms is the latest answered check's round trip, packets/bytes are the
  application data each way.

With --dtls, icepeer makes a self-signed ECDSA P-256 certificate at start and
its description line also carries "fingerprint":"sha-256 AB:CD:..." and
"setup": active for client, passive for server; with auto, actpass when
controlling (the offerer: the peer's setup then decides, active making icepeer
the server and passive the client, none meaning active) and active when
controlled (the answerer takes the client role, RFC 8842 §5.3). It reads the
peer's fingerprint and setup from the peer's description. DTLS records on
component 1 (first byte 20 to 63, RFC 7983) go to DTLS and are not echoed.
  {"event":"dtls_connected","component":1,"role":R,"version":V,"cipher":C,"srtp":S,"ms":T}
      the handshake completed and the peer's certificate matched its
      fingerprint; T is the handshake time in ms (bounded by 10 s)
  {"event":"dtls_failed","component":1,"reason":R,"detail":TEXT}
      R is fingerprint_mismatch, timeout, no_fingerprint, bad_fingerprint,
      setup_conflict, dtls, transport or closed
  {"event":"dtls_recv","component":1,"len":N,"hex":H}
      application data decrypted (the first 64 bytes in hex)
  {"event":"dtls_closed","component":1,"reason":R}   the session ended
Exit status: 0 if connected, 1 if not, 2 if the options are refused."#;

/// `--dtls`: which DTLS role icepeer plays once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DtlsMode {
    /// `client`: a=setup:active.
    Client,
    /// `server`: a=setup:passive.
    Server,
    /// `auto`: actpass when controlling (the peer decides), active when controlled.
    Auto,
}

#[derive(Debug, Clone)]
struct Options {
    controlling: bool,
    components: u16,
    ips: Vec<IpAddr>,
    stun: Option<SocketAddr>,
    stun_tcp: bool,
    turn: Option<SocketAddr>,
    turn_user: Option<String>,
    turn_pass: Option<String>,
    turn_transport: &'static str,
    turn_insecure: bool,
    relay_only: bool,
    trickle: bool,
    ping: bool,
    name: String,
    timeout: Duration,
    allow_any: bool,
    ta: Duration,
    runtime: RuntimeKind,
    consent_interval: Option<Duration>,
    consent_timeout: Option<Duration>,
    disconnected_timeout: Option<Duration>,
    dtls: Option<DtlsMode>,
    renomination: bool,
    lite: bool,
    transports: Transports,
    mdns: bool,
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(Refusal::Usage(msg)) => {
            eprintln!("icepeer: {msg}\n\n{USAGE}");
            std::process::exit(2);
        }
        Err(Refusal::Refused(msg)) => {
            eprintln!("icepeer: {msg}");
            emit(json!({"event": "failed", "reason": msg}));
            emit(json!({"event": "exit", "reason": "refused", "connected": false, "done": false}));
            std::process::exit(2);
        }
    };
    let lines = spawn_stdin_reader();
    let kind = options.runtime;
    let connected = block_on(kind, move |rt| {
        Box::pin(async move { run(options, rt, lines).await })
    });
    std::process::exit(if connected { 0 } else { 1 });
}

enum Refusal {
    Usage(String),
    Refused(String),
}

fn parse_args() -> Result<Options, Refusal> {
    let mut options = Options {
        controlling: false,
        components: 1,
        ips: Vec::new(),
        stun: None,
        stun_tcp: false,
        turn: None,
        turn_user: None,
        turn_pass: None,
        turn_transport: "udp",
        turn_insecure: false,
        relay_only: false,
        trickle: false,
        ping: true,
        name: String::from("librice"),
        timeout: Duration::from_secs(30),
        allow_any: false,
        ta: Duration::from_millis(5),
        runtime: RuntimeKind::Tokio,
        consent_interval: None,
        consent_timeout: None,
        disconnected_timeout: None,
        dtls: None,
        renomination: false,
        lite: false,
        transports: Transports::Udp,
        mdns: false,
    };
    let mut role = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| Refusal::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--role" => {
                role = Some(match value("--role")?.as_str() {
                    "controlling" => true,
                    "controlled" => false,
                    other => {
                        return Err(Refusal::Usage(format!(
                            "--role must be controlling or controlled, got {other:?}"
                        )));
                    }
                })
            }
            "--components" => {
                options.components = value("--components")?
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=MAX_COMPONENT).contains(n))
                    .ok_or_else(|| Refusal::Usage("--components needs 1 to 256".into()))?;
            }
            "--transport" => {
                let t = value("--transport")?;
                options.transports = match t.as_str() {
                    "udp" => Transports::Udp,
                    "tcp" => Transports::Tcp,
                    "all" => Transports::Both,
                    _ => {
                        return Err(Refusal::Usage(format!("--transport {t}: udp, tcp or all")));
                    }
                };
            }
            "--ip" => {
                let v = value("--ip")?;
                let ip = v
                    .parse::<IpAddr>()
                    .map_err(|_| Refusal::Usage(format!("--ip needs an IP address, got {v:?}")))?;
                options.ips.push(ip);
            }
            "--stun" => {
                let v = value("--stun")?;
                options.stun = Some(parse_socket_addr(&v, "--stun").map_err(Refusal::Usage)?);
            }
            "--stun-transport" => {
                options.stun_tcp = match value("--stun-transport")?.as_str() {
                    "udp" => false,
                    "tcp" => true,
                    t => {
                        return Err(Refusal::Usage(format!("--stun-transport {t}: udp or tcp")));
                    }
                };
            }
            "--trickle" => options.trickle = true,
            "--renomination" => options.renomination = true,
            "--lite" => options.lite = true,
            "--no-ping" => options.ping = false,
            "--name" => options.name = value("--name")?,
            "--timeout" => options.timeout = seconds("--timeout", &value("--timeout")?)?,
            "--consent-interval" => {
                let v = value("--consent-interval")?;
                options.consent_interval = Some(seconds("--consent-interval", &v)?);
            }
            "--consent-timeout" => {
                let v = value("--consent-timeout")?;
                options.consent_timeout = Some(seconds("--consent-timeout", &v)?);
            }
            "--disconnected-timeout" => {
                let v = value("--disconnected-timeout")?;
                options.disconnected_timeout = Some(seconds("--disconnected-timeout", &v)?);
            }
            "--allow-any-address" => options.allow_any = true,
            "--mdns" => options.mdns = true,
            "--ta" => {
                let v = value("--ta")?;
                let ms = v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (5..=1000).contains(ms))
                    .ok_or_else(|| Refusal::Usage(format!("--ta needs 5 to 1000 ms, got {v:?}")))?;
                options.ta = Duration::from_millis(ms);
            }
            "--runtime" => {
                options.runtime =
                    RuntimeKind::parse(&value("--runtime")?).map_err(Refusal::Usage)?
            }
            "--turn" => {
                let v = value("--turn")?;
                options.turn = Some(parse_socket_addr(&v, "--turn").map_err(Refusal::Usage)?);
            }
            "--turn-user" => options.turn_user = Some(value("--turn-user")?),
            "--turn-pass" => options.turn_pass = Some(value("--turn-pass")?),
            "--turn-transport" => {
                let t = value("--turn-transport")?;
                options.turn_transport = match t.as_str() {
                    "udp" => "udp",
                    "tcp" => "tcp",
                    "tls" => "tls",
                    _ => {
                        return Err(Refusal::Usage(format!(
                            "--turn-transport {t}: udp, tcp or tls"
                        )));
                    }
                };
            }
            "--turn-insecure" => options.turn_insecure = true,
            "--relay-only" => options.relay_only = true,
            "--dtls" => {
                let v = value("--dtls")?;
                options.dtls = Some(match v.as_str() {
                    "client" => DtlsMode::Client,
                    "server" => DtlsMode::Server,
                    "auto" => DtlsMode::Auto,
                    _ => {
                        return Err(Refusal::Usage(format!(
                            "--dtls must be client, server or auto, got {v:?}"
                        )));
                    }
                });
                if cfg!(not(feature = "dtls")) {
                    return Err(Refusal::Refused(
                        "--dtls: this icepeer was built without the dtls feature".into(),
                    ));
                }
            }
            "--nomination" => {
                return Err(Refusal::Refused(format!("{arg} is a nice-peer option")));
            }
            _ => return Err(Refusal::Usage(format!("unknown argument {arg:?}"))),
        }
    }
    options.controlling = role.ok_or_else(|| Refusal::Usage("--role is required".into()))?;
    if options.lite && options.controlling {
        // RFC 8445 §6.1.1: a lite agent is controlled; the DTLS `auto` role follows.
        eprintln!("icepeer: --lite: an ICE-lite agent is always controlled (RFC 8445 §6.1.1)");
        options.controlling = false;
    }
    if options.lite && (options.stun.is_some() || options.turn.is_some()) {
        // RFC 8445 §5.2: a lite agent gathers host candidates only.
        eprintln!("icepeer: --lite: --stun and --turn are ignored (host candidates only)");
    }
    if options.turn.is_some() && (options.turn_user.is_none() || options.turn_pass.is_none()) {
        return Err(Refusal::Usage(
            "--turn needs --turn-user and --turn-pass".into(),
        ));
    }
    if options.relay_only && options.turn.is_none() {
        return Err(Refusal::Usage("--relay-only needs --turn".into()));
    }
    if options.ips.is_empty() {
        options.ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    if !options.allow_any {
        if let Some(ip) = options.ips.iter().find(|ip| !ip.is_loopback()) {
            return Err(Refusal::Refused(format!(
                "--ip {ip} is not loopback (use --allow-any-address)"
            )));
        }
        if let Some(turn) = options.turn.filter(|s| !s.ip().is_loopback()) {
            return Err(Refusal::Refused(format!(
                "--turn {turn} is not loopback (use --allow-any-address)"
            )));
        }
        if let Some(stun) = options.stun.filter(|s| !s.ip().is_loopback()) {
            return Err(Refusal::Refused(format!(
                "--stun {stun} is not loopback (use --allow-any-address)"
            )));
        }
    }
    Ok(options)
}

/// Parses a positive number of seconds (a fraction is fine) for option `name`.
fn seconds(name: &str, v: &str) -> Result<Duration, Refusal> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Refusal::Usage(format!("{name} needs seconds, got {v:?}")))
}

/// Prints one protocol line on stdout.
fn emit(value: Value) {
    println!("{value}");
}

/// Reads stdin lines on a thread; the channel ends at EOF.
fn spawn_stdin_reader() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::BufRead::read_line(&mut stdin.lock(), &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.unbounded_send(line.trim_end().to_owned()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// The state of one run.
struct Peer {
    options: Options,
    start: Instant,
    stream: Stream,
    components: Vec<Component>,
    remote_creds_at: Option<Instant>,
    connected: bool,
    pairs: BTreeMap<ComponentId, (String, String)>,
    echo_ok: BTreeSet<ComponentId>,
    pings_sent: BTreeMap<ComponentId, u32>,
    ping_times: BTreeMap<(ComponentId, u32), Instant>,
    done: bool,
    /// Components reported `failed`.
    failed: BTreeSet<ComponentId>,
    /// Components reported `disconnected` and not yet `reconnected`.
    disconnected: BTreeSet<ComponentId>,
    /// The consent checks sent per component, as last reported.
    consent_sent: BTreeMap<ComponentId, u64>,
    /// With `--dtls`: the certificate and role, until the handshake starts.
    dtls: Option<dtls_glue::Local>,
    /// With `--dtls`: where component 1's DTLS records go (queued until it starts).
    dtls_input: Option<mpsc::UnboundedSender<Vec<u8>>>,
    dtls_records: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
    /// The peer's `fingerprint` and `setup`, from its description.
    peer_fingerprint: Option<String>,
    peer_setup: Option<String>,
    /// The peer's credentials in use: others mean it restarted.
    remote_creds: Option<IceCredentials>,
    /// After our `{"cmd":"restart"}`: the peer's next credentials are its answer.
    awaiting_answer: bool,
    /// Restarts so far (either side's).
    restarts: u32,
    /// The restart under way: who started it, when, and the components on a new pair.
    restart: Option<Restart>,
    /// A restart's round of candidates, for the main loop to describe.
    new_round: Option<(librice::GatherStream, &'static str)>,
    /// After a restart reconnected: PING again.
    ping_again: bool,
    /// The loopback guard refused a selected pair: icepeer ends.
    guard_tripped: bool,
}

/// An ICE restart under way.
struct Restart {
    by: &'static str,
    at: Instant,
    switched: BTreeSet<ComponentId>,
}

async fn run(
    options: Options,
    runtime: Arc<dyn Runtime>,
    mut lines: mpsc::UnboundedReceiver<String>,
) -> bool {
    let start = Instant::now();
    let mut filter = AddressFilter {
        only: options.ips.clone(),
        ..AddressFilter::default()
    };
    filter.loopback = true;
    let mut builder = Agent::builder()
        .runtime(Arc::clone(&runtime))
        .controlling(options.controlling)
        .ta(options.ta)
        .filter(filter);
    if let Some(stun) = options.stun {
        builder = if options.stun_tcp {
            builder.stun_server_tcp(stun)
        } else {
            builder.stun_server(stun)
        };
    }
    if let Some(turn) = options.turn {
        let (user, pass) = (
            options.turn_user.as_deref().unwrap_or_default(),
            options.turn_pass.as_deref().unwrap_or_default(),
        );
        builder = match options.turn_transport {
            "tcp" => builder.turn_server_tcp(turn, user, pass),
            "tls" => builder.turn_server_tls(turn, user, pass),
            _ => builder.turn_server(turn, user, pass),
        };
    }
    builder = builder
        .relay_only(options.relay_only)
        .hide_host_addresses(options.mdns)
        .tls_insecure(options.turn_insecure)
        .renomination(options.renomination)
        .transports(options.transports)
        .lite(options.lite);
    if let Some(interval) = options.consent_interval {
        builder = builder.consent_interval(interval);
    }
    if let Some(timeout) = options.consent_timeout {
        builder = builder.consent_timeout(timeout);
    }
    if let Some(timeout) = options.disconnected_timeout {
        builder = builder.disconnected_timeout(timeout);
    }
    let agent = match builder.build() {
        Ok(a) => a,
        Err(e) => {
            emit(json!({"event": "failed", "reason": format!("cannot start the agent: {e}")}));
            emit(json!({"event": "exit", "reason": "error", "connected": false, "done": false}));
            return false;
        }
    };
    let mut events = agent.events().fuse();
    let stream = agent.add_stream();
    let mut components = Vec::new();
    for _ in 0..options.components {
        match stream.add_component() {
            Ok(c) => components.push(c),
            Err(e) => {
                emit(json!({"event": "failed", "reason": e.to_string()}));
                return false;
            }
        }
    }
    let mut gather = match stream.gather_candidates() {
        Ok(g) => g.fuse(),
        Err(e) => {
            emit(json!({"event": "failed", "reason": format!("cannot gather: {e}")}));
            emit(json!({"event": "exit", "reason": "error", "connected": false, "done": false}));
            return false;
        }
    };
    let dtls = match options
        .dtls
        .map(|mode| dtls_glue::Local::new(mode, options.controlling))
    {
        None => None,
        Some(Ok(local)) => Some(local),
        Some(Err(e)) => {
            emit(
                json!({"event": "failed", "reason": format!("cannot make a DTLS certificate: {e}")}),
            );
            emit(json!({"event": "exit", "reason": "error", "connected": false, "done": false}));
            return false;
        }
    };
    let dtls_fields = Extras {
        dtls: dtls.as_ref().map(|d| (d.fingerprint(), d.setup())),
        renomination: options.renomination,
        lite: options.lite,
    };
    let (dtls_input, dtls_records) = match dtls {
        Some(_) => {
            let (tx, rx) = mpsc::unbounded();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let mut creds = stream.local_credentials();
    let mut local_candidates: Vec<String> = Vec::new();
    let mut gathering_done = false;
    // Set while the description of a restart's round is being gathered: who restarted.
    let mut restart_by: Option<&'static str> = None;
    if options.trickle {
        emit(describe(
            json!({"ufrag": creds.ufrag(), "pwd": creds.pwd(), "candidates": [], "end_of_candidates": false}),
            &dtls_fields,
        ));
    }
    let mut recv = futures::stream::select_all(
        components
            .iter()
            .map(|c| {
                let id = c.id();
                c.recv().map(move |d| (id, d)).boxed()
            })
            .collect::<Vec<_>>(),
    );
    let mut peer = Peer {
        options: options.clone(),
        start,
        stream: stream.clone(),
        components: components.clone(),
        remote_creds_at: None,
        connected: false,
        pairs: BTreeMap::new(),
        echo_ok: BTreeSet::new(),
        pings_sent: BTreeMap::new(),
        ping_times: BTreeMap::new(),
        done: false,
        failed: BTreeSet::new(),
        disconnected: BTreeSet::new(),
        consent_sent: BTreeMap::new(),
        dtls,
        dtls_input,
        dtls_records,
        peer_fingerprint: None,
        peer_setup: None,
        remote_creds: None,
        awaiting_answer: false,
        restarts: 0,
        restart: None,
        new_round: None,
        ping_again: false,
        guard_tripped: false,
    };
    let deadline = start + options.timeout;
    let mut timeout = librice::runtime::sleep_until(runtime.as_ref(), deadline)
        .boxed()
        .fuse();
    let ping_every = protocol::PING_INTERVAL;
    let mut next_ping = Instant::now() + Duration::from_secs(3600);
    let mut ping_timer = librice::runtime::sleep_until(runtime.as_ref(), next_ping)
        .boxed()
        .fuse();
    let mut next_consent_poll = start + CONSENT_POLL;
    let mut consent_timer = librice::runtime::sleep_until(runtime.as_ref(), next_consent_poll)
        .boxed()
        .fuse();
    let mut dtls_task: futures::future::Fuse<futures::future::BoxFuture<'static, ()>> =
        futures::future::Fuse::terminated();
    let reason = loop {
        futures::select! {
            c = gather.next() => match c {
                Some(c) => {
                    // A named candidate hides one of our (loopback-only) addresses.
                    if !peer.options.allow_any
                        && c.as_address().is_some_and(|c| !c.address().ip().is_loopback())
                    {
                        continue;
                    }
                    if options.trickle {
                        emit(json!({"candidate": c.to_string()}));
                    } else {
                        local_candidates.push(c.to_string());
                    }
                }
                None if !gathering_done => {
                    gathering_done = true;
                    if options.trickle {
                        emit(json!({"end_of_candidates": true}));
                    } else {
                        let mut line = json!({"ufrag": creds.ufrag(), "pwd": creds.pwd(),
                            "candidates": local_candidates, "end_of_candidates": true});
                        if restart_by.is_some() {
                            line["restart"] = true.into();
                        }
                        emit(describe(line, &dtls_fields));
                    }
                    if let Some(by) = restart_by.take() {
                        emit(json!({"event": "restarted", "by": by}));
                    }
                }
                None => {}
            },
            line = lines.next() => match line {
                Some(line) => {
                    if let Some(reason) = peer.handle_line(&line).await {
                        break reason;
                    }
                    if let Some((round, by)) = peer.new_round.take() {
                        // A restart: its round of candidates, described as at the start.
                        gather = round.fuse();
                        creds = stream.local_credentials();
                        local_candidates.clear();
                        gathering_done = false;
                        restart_by = Some(by);
                        if options.trickle {
                            emit(describe(json!({"ufrag": creds.ufrag(), "pwd": creds.pwd(),
                                "candidates": [], "end_of_candidates": false, "restart": true}),
                                &dtls_fields));
                        }
                    }
                }
                None => break "stdin-eof",
            },
            event = events.next() => match event {
                Some(event) => {
                    let just_connected = peer.handle_event(event);
                    if peer.guard_tripped {
                        break "refused";
                    }
                    if just_connected && let Some(task) = peer.start_dtls(&runtime) {
                        dtls_task = task.fuse();
                    }
                    if (just_connected || std::mem::take(&mut peer.ping_again)) && peer.options.ping {
                        next_ping = Instant::now();
                        ping_timer = librice::runtime::sleep_until(runtime.as_ref(), next_ping).boxed().fuse();
                    }
                }
                None => break "error",
            },
            data = recv.next() => if let Some((component, data)) = data {
                peer.handle_data(component, &data).await;
            },
            _ = ping_timer => {
                if peer.send_pings().await {
                    next_ping += ping_every;
                    ping_timer = librice::runtime::sleep_until(runtime.as_ref(), next_ping).boxed().fuse();
                }
            },
            _ = consent_timer => {
                peer.report_consent();
                next_consent_poll += CONSENT_POLL;
                consent_timer = librice::runtime::sleep_until(runtime.as_ref(), next_consent_poll).boxed().fuse();
            },
            () = dtls_task => {},
            _ = timeout => break "timeout",
        }
    };
    let mut exit =
        json!({"event": "exit", "reason": reason, "connected": peer.connected, "done": peer.done});
    let pairs = peer.current_pairs_json();
    if !pairs.is_empty() {
        exit["pairs"] = pairs.into();
    }
    emit(exit);
    agent.close();
    peer.connected
}

impl Peer {
    /// Applies one stdin line; returns an exit reason to stop.
    async fn handle_line(&mut self, line: &str) -> Option<&'static str> {
        if line.trim().is_empty() {
            return None;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("icepeer: ignoring a line that is not JSON ({e}): {line:?}");
                return None;
            }
        };
        let Some(obj) = value.as_object() else {
            eprintln!("icepeer: ignoring a JSON line that is not an object: {line:?}");
            return None;
        };
        if obj.get("cmd").and_then(Value::as_str) == Some("close") {
            return Some("close");
        }
        if obj.get("cmd").and_then(Value::as_str) == Some("restart") {
            self.restart_locally();
            return None;
        }
        if let Some(send) = obj.get("send") {
            let text = send.as_str().unwrap_or_default();
            let component = obj.get("component").and_then(Value::as_u64).unwrap_or(1);
            match self.component(component) {
                Some(c) => {
                    if let Err(e) = c.send(text.as_bytes()).await {
                        eprintln!("icepeer: send on component {component} failed: {e}");
                    }
                }
                None => eprintln!("icepeer: no component {component} to send on"),
            }
            return None;
        }
        // Before the credentials, so that no check goes out in the wrong role: a full
        // agent facing a lite peer controls (RFC 8445 §6.1.1).
        if let Some(lite) = obj.get("ice_lite").and_then(Value::as_bool) {
            self.stream.set_remote_lite(lite);
        }
        if let (Some(ufrag), Some(pwd)) = (
            obj.get("ufrag").and_then(Value::as_str),
            obj.get("pwd").and_then(Value::as_str),
        ) {
            match IceCredentials::new(ufrag, pwd) {
                Ok(creds) => self.remote_credentials(creds),
                Err(e) => eprintln!("icepeer: ignoring remote credentials: {e}"),
            }
        }
        if let Some(options) = obj.get("ice_options").and_then(Value::as_array) {
            let options: Vec<IceOption> = options
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|tag| IceOption::parse(tag).ok())
                .collect();
            self.stream.set_remote_ice_options(&options);
        }
        if let Some(fingerprint) = obj.get("fingerprint").and_then(Value::as_str) {
            self.peer_fingerprint = Some(fingerprint.to_owned());
        }
        if let Some(setup) = obj.get("setup").and_then(Value::as_str) {
            self.peer_setup = Some(setup.to_owned());
        }
        if let Some(list) = obj.get("candidates").and_then(Value::as_array) {
            for c in list {
                self.add_candidate(c);
            }
        }
        if let Some(c) = obj.get("candidate") {
            self.add_candidate(c);
        }
        if obj.get("end_of_candidates").and_then(Value::as_bool) == Some(true) {
            self.stream.end_of_remote_candidates();
        }
        None
    }

    /// `{"cmd":"restart"}`: restarts ICE (RFC 8445 §9); the main loop describes the new
    /// round.
    fn restart_locally(&mut self) {
        if self.remote_creds.is_none() {
            emit(json!({"event": "error", "reason": "restart_too_early"}));
            return;
        }
        match self.stream.restart() {
            Ok(round) => {
                self.awaiting_answer = true;
                self.begin_restart("local");
                self.new_round = Some((round, "local"));
            }
            Err(e) => {
                eprintln!("icepeer: restart failed: {e}");
                emit(json!({"event": "error", "reason": "restart_failed"}));
            }
        }
    }

    /// The peer's credentials: new ones after the first are its restart (which this side
    /// follows, RFC 8839 §4.4.1.1.1), or its answer to ours.
    fn remote_credentials(&mut self, creds: IceCredentials) {
        let changed = self.remote_creds.as_ref().is_some_and(|c| *c != creds);
        self.stream.set_remote_credentials(creds.clone());
        self.remote_creds_at.get_or_insert_with(Instant::now);
        self.remote_creds = Some(creds);
        if !changed {
            return;
        }
        if std::mem::take(&mut self.awaiting_answer) {
            return;
        }
        // The agent restarted with the new credentials: describe its new round.
        self.begin_restart("remote");
        match self.stream.gather_candidates() {
            Ok(round) => self.new_round = Some((round, "remote")),
            Err(e) => eprintln!("icepeer: cannot gather after the peer's restart: {e}"),
        }
    }

    fn begin_restart(&mut self, by: &'static str) {
        self.restarts += 1;
        self.restart = Some(Restart {
            by,
            at: Instant::now(),
            switched: BTreeSet::new(),
        });
    }

    /// Component `component` selected a pair of the restart's generation: once all have,
    /// `reconnected_after_restart`, and PINGs again.
    fn switched(&mut self, component: ComponentId) {
        let Some(restart) = &mut self.restart else {
            return;
        };
        restart.switched.insert(component);
        if restart.switched.len() < self.components.len() {
            return;
        }
        let (by, at) = (restart.by, restart.at);
        self.restart = None;
        let mut line = self.pairs_event("reconnected_after_restart", at);
        line["by"] = by.into();
        line["restarts"] = self.restarts.into();
        emit(line);
        self.echo_ok.clear();
        self.ping_again = true;
    }

    /// An event about the selected pairs (`connected`, `reconnected_after_restart`):
    /// component 1's as `local` and `remote`, every component's as `pairs`, the time since
    /// `since` as `elapsed_ms` and since the start as `since_start_ms`.
    fn pairs_event(&self, event: &str, since: Instant) -> Value {
        let now = Instant::now();
        let ms = |t: Instant| round1(now.duration_since(t).as_secs_f64() * 1000.0);
        let (local, remote) = self
            .pairs
            .get(&ComponentId::RTP)
            .cloned()
            .unwrap_or_default();
        json!({"event": event, "local": local, "remote": remote, "pairs": self.pairs_json(),
            "elapsed_ms": ms(since), "since_start_ms": ms(self.start)})
    }

    /// The components' selected pairs as the agent describes them now, by component id: a
    /// remote candidate first learnt as peer-reflexive shows as the signalled one once that
    /// came (for example a `.local` name resolved after the pair was selected).
    fn current_pairs_json(&self) -> serde_json::Map<String, Value> {
        self.components
            .iter()
            .filter_map(|c| {
                let p = c.selected_pair()?;
                Some((
                    c.id().to_string(),
                    json!({"local": p.local.to_string(), "remote": p.remote.to_string()}),
                ))
            })
            .collect()
    }

    /// The selected pairs, by component id.
    fn pairs_json(&self) -> serde_json::Map<String, Value> {
        self.pairs
            .iter()
            .map(|(c, (l, r))| (c.to_string(), json!({"local": l, "remote": r})))
            .collect()
    }

    fn add_candidate(&mut self, value: &Value) {
        let Some(text) = value.as_str() else {
            eprintln!("icepeer: ignoring a candidate that is not a string: {value}");
            return;
        };
        let candidate = match IceCandidate::parse(text) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("icepeer: ignoring candidate {text:?}: {e}");
                return;
            }
        };
        // A .local name passes; the address it resolves to is checked when a pair is
        // selected (`handle_event`).
        if !self.options.allow_any
            && candidate
                .as_address()
                .is_some_and(|c| !c.address().ip().is_loopback())
        {
            eprintln!("icepeer: ignoring non-loopback candidate {text:?} (loopback guard)");
            return;
        }
        if let Err(e) = self.stream.add_remote_candidate(candidate) {
            eprintln!("icepeer: ignoring candidate {text:?}: {e}");
        }
    }

    /// With `--dtls`, once connected: the task that runs the handshake on component 1 and
    /// then reports its application data (it prints its own events).
    fn start_dtls(
        &mut self,
        runtime: &Arc<dyn Runtime>,
    ) -> Option<futures::future::BoxFuture<'static, ()>> {
        let local = self.dtls.take()?;
        let records = self.dtls_records.take()?;
        let component = self.component(1)?.clone();
        Some(local.run(
            Arc::clone(runtime),
            component,
            records,
            self.peer_fingerprint.clone(),
            self.peer_setup.clone(),
        ))
    }

    /// Each component's selected pair statistics, by component id (`null` for a component
    /// without a selected pair), from one snapshot of the stream.
    fn stats(&self) -> Value {
        let stats = self.stream.stats();
        let per_component: serde_json::Map<String, Value> = self
            .components
            .iter()
            .map(|c| {
                let pair = stats.selected_pair(c.id()).map(|p| {
                    json!({
                        "requests_sent": p.requests_sent,
                        "requests_received": p.requests_received,
                        "responses_sent": p.responses_sent,
                        "responses_received": p.responses_received,
                        "consent_requests_sent": p.consent_requests_sent,
                        "rtt_ms": p.current_round_trip_time.map(|d| d.as_secs_f64() * 1000.0),
                        "packets_sent": p.packets_sent,
                        "bytes_sent": p.bytes_sent,
                        "packets_received": p.packets_received,
                        "bytes_received": p.bytes_received,
                    })
                });
                (c.id().to_string(), pair.unwrap_or(Value::Null))
            })
            .collect();
        Value::Object(per_component)
    }

    fn component(&self, id: u64) -> Option<&Component> {
        self.components
            .iter()
            .find(|c| u64::from(c.id().get()) == id)
    }

    /// Handles an agent event; returns true when the peer just connected.
    fn handle_event(&mut self, event: AgentEvent) -> bool {
        match event {
            AgentEvent::SelectedPair {
                component, pair, ..
            } => {
                if !self.options.allow_any && !pair.remote.address().ip().is_loopback() {
                    // The loopback guard, for an address a .local name resolved to.
                    let reason = format!(
                        "selected pair to {} is not loopback (use --allow-any-address)",
                        pair.remote.address()
                    );
                    eprintln!("icepeer: {reason}");
                    emit(
                        json!({"event": "failed", "component": component.get(), "reason": reason}),
                    );
                    self.guard_tripped = true;
                    return false;
                }
                self.pairs
                    .insert(component, (pair.local.to_string(), pair.remote.to_string()));
                if self.connected {
                    // After a restart, a component that had no pair left to keep.
                    self.switched(component);
                }
                if !self.connected && self.pairs.len() == self.components.len() {
                    self.connected = true;
                    // elapsed_ms from reading the peer's credentials (0 without them).
                    let since = self.remote_creds_at.unwrap_or_else(Instant::now);
                    let mut line = self.pairs_event("connected", since);
                    line["renomination"] = json!(self.stream.renomination());
                    line["stats"] = self.stats();
                    emit(line);
                    return true;
                }
            }
            AgentEvent::SelectedPairChanged { component, new, .. } => {
                let pair = (new.local.to_string(), new.remote.to_string());
                // PROTOCOL.md: only a move to other candidates is a change (a restart that
                // selects the same two again is reported by reconnected_after_restart).
                if self.pairs.get(&component) != Some(&pair) {
                    emit(
                        json!({"event": "selected_changed", "component": component.get(),
                        "local": pair.0, "remote": pair.1}),
                    );
                }
                self.pairs.insert(component, pair);
                self.switched(component);
            }
            AgentEvent::RoleChange { controlling } => {
                let peer_lite = self.stream.remote_lite();
                emit(json!({"event": "role", "controlling": controlling, "peer_lite": peer_lite}));
            }
            AgentEvent::ComponentFailed {
                component, reason, ..
            } => self.report_failed(component, Some(reason)),
            AgentEvent::ComponentStateChange {
                component,
                state: ComponentState::Failed,
                ..
            } => {
                // ComponentFailed came first with the reason; this covers a state change
                // without it.
                let reason = self
                    .component(u64::from(component.get()))
                    .and_then(Component::failure_reason);
                self.report_failed(component, reason);
            }
            AgentEvent::ComponentStateChange {
                component,
                state: ComponentState::Disconnected,
                ..
            } if self.disconnected.insert(component) => {
                emit(json!({"event": "disconnected", "component": component.get()}));
            }
            AgentEvent::ComponentStateChange {
                component,
                state: ComponentState::Connected,
                ..
            } if self.disconnected.remove(&component) => {
                emit(json!({"event": "reconnected", "component": component.get()}));
            }
            _ => {}
        }
        false
    }

    /// Prints `failed` for a component, once.
    fn report_failed(&mut self, component: ComponentId, reason: Option<FailureReason>) {
        if !self.failed.insert(component) {
            return;
        }
        self.disconnected.remove(&component);
        let reason = reason.unwrap_or(FailureReason::ChecksFailed(Default::default()));
        let code = match reason {
            FailureReason::ConsentLost => "consent_lost",
            FailureReason::AuthenticationFailed(_) => "authentication_failed",
            FailureReason::ChecksFailed(_) => "checks_failed",
            FailureReason::NominationTimeout => "nomination_timeout",
            _ => "other",
        };
        emit(
            json!({"event": "failed", "component": component.get(), "reason": code,
            "detail": reason.to_string()}),
        );
    }

    /// Prints a `consent` line for each component whose count of consent checks sent grew.
    fn report_consent(&mut self) {
        for c in &self.components {
            let stats = c.consent_stats();
            let last = self.consent_sent.entry(c.id()).or_default();
            if stats.requests_sent > *last {
                *last = stats.requests_sent;
                emit(json!({"event": "consent", "component": c.id().get(),
                    "requests_sent": stats.requests_sent,
                    "responses_received": stats.responses_received,
                    "t_ms": round1(self.start.elapsed().as_secs_f64() * 1000.0)}));
            }
        }
    }

    async fn handle_data(&mut self, component: ComponentId, data: &[u8]) {
        emit(protocol::recv_event(component.get(), data));
        if component == ComponentId::RTP
            && dtls_glue::is_dtls(data)
            && let Some(input) = &self.dtls_input
        {
            // RFC 7983: a DTLS record, for the handshake (not echoed).
            let _ = input.unbounded_send(data.to_vec());
            return;
        }
        let Some(echo) = protocol::echo_reply(data) else {
            if let Some(seq) = protocol::echoed_ping(data, &self.options.name, component)
                && self.echo_ok.insert(component)
            {
                let after = self
                    .ping_times
                    .get(&(component, seq))
                    .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
                let sent = self.pings_sent.get(&component).copied().unwrap_or(0);
                let mut line = json!({"event": "echo_ok", "component": component.get(),
                    "echo_after_ms": round1(after), "pings_sent": sent});
                if self.restarts > 0 {
                    line["restarts"] = self.restarts.into();
                }
                emit(line);
                if self.echo_ok.len() == self.components.len() && !self.done {
                    self.done = true;
                    emit(json!({"event": "done", "ok": true, "stats": self.stats(),
                        "pairs": self.current_pairs_json()}));
                }
            }
            return;
        };
        if let Some(c) = self.component(u64::from(component.get()))
            && let Err(e) = c.send(&echo).await
        {
            eprintln!("icepeer: echo on component {component} failed: {e}");
        }
    }

    /// Sends a PING on each component still waiting for its echo; returns whether to
    /// keep pinging.
    async fn send_pings(&mut self) -> bool {
        let mut more = false;
        for c in self.components.clone() {
            let id = c.id();
            if self.echo_ok.contains(&id) {
                continue;
            }
            let seq = self.pings_sent.get(&id).copied().unwrap_or(0);
            if seq >= protocol::MAX_PINGS {
                continue;
            }
            let payload = protocol::ping_payload(&self.options.name, id, seq);
            if let Err(e) = c.send(payload.as_bytes()).await {
                eprintln!("icepeer: ping on component {id} failed: {e}");
            }
            self.ping_times.insert((id, seq), Instant::now());
            self.pings_sent.insert(id, seq + 1);
            more = true;
        }
        more
    }
}

/// What a description line carries besides credentials and candidates.
struct Extras {
    /// With `--dtls`: the certificate's fingerprint and the `setup` role.
    dtls: Option<(String, &'static str)>,
    /// With `--renomination`: `"ice_options":["renomination"]`.
    renomination: bool,
    /// With `--lite`: `"ice_lite":true`.
    lite: bool,
}

/// A description line with `fingerprint` and `setup` added (with `--dtls`), and
/// `ice_options` (with `--renomination`), and `ice_lite` (with `--lite`).
fn describe(mut line: Value, extras: &Extras) -> Value {
    let Some(obj) = line.as_object_mut() else {
        return line;
    };
    if let Some((fingerprint, setup)) = &extras.dtls {
        obj.insert("fingerprint".into(), fingerprint.clone().into());
        obj.insert("setup".into(), (*setup).into());
    }
    if extras.lite {
        obj.insert("ice_lite".into(), true.into());
    }
    if extras.renomination {
        obj.insert(
            "ice_options".into(),
            json!([IceOption::Renomination.to_string()]),
        );
    }
    line
}

/// icepeer's `--dtls` mode on [`librice_examples::dtls`].
#[cfg(feature = "dtls")]
mod dtls_glue {
    use std::sync::Arc;

    use futures::channel::mpsc;
    use futures::future::BoxFuture;
    use librice::{Component, Runtime};
    pub use librice_examples::dtls::is_dtls;
    use librice_examples::dtls::{Certificate, DtlsConfig, DtlsRole, DtlsSession, Fingerprint};
    use serde_json::json;

    use super::{DtlsMode, emit, round1};

    /// This side's certificate and mode.
    pub struct Local {
        mode: DtlsMode,
        controlling: bool,
        certificate: Certificate,
    }

    impl Local {
        /// Makes the certificate.
        pub fn new(mode: DtlsMode, controlling: bool) -> Result<Local, String> {
            let certificate = Certificate::generate().map_err(|e| e.to_string())?;
            Ok(Local {
                mode,
                controlling,
                certificate,
            })
        }

        /// The `setup` this side signals.
        pub fn setup(&self) -> &'static str {
            match self.mode {
                DtlsMode::Client => "active",
                DtlsMode::Server => "passive",
                DtlsMode::Auto if self.controlling => "actpass",
                DtlsMode::Auto => "active",
            }
        }

        /// The `fingerprint` this side signals.
        pub fn fingerprint(&self) -> String {
            self.certificate.fingerprint().sdp()
        }

        /// The role this side plays, given the peer's `setup` (RFC 8842 §5).
        fn role(&self, peer: Option<&str>) -> Result<DtlsRole, String> {
            let mine = match self.mode {
                DtlsMode::Client => DtlsRole::Client,
                DtlsMode::Server => DtlsRole::Server,
                DtlsMode::Auto if self.controlling => {
                    // The offerer's actpass leaves the choice to the answerer; an answer
                    // without a=setup means active (RFC 4145 §4).
                    return DtlsRole::opposite_of_setup(peer.unwrap_or("active"))
                        .ok_or_else(|| format!("the peer answered setup {peer:?} to actpass"));
                }
                DtlsMode::Auto => DtlsRole::Client,
            };
            match peer {
                None | Some("actpass") => Ok(mine),
                Some(p) if DtlsRole::opposite_of_setup(p) == Some(mine) => Ok(mine),
                Some(p) => Err(format!("setup {} here and {p:?} at the peer", mine.setup())),
            }
        }

        /// Runs the handshake on `component` with the DTLS records from `records`, prints
        /// `dtls_connected` or `dtls_failed`, then `dtls_recv` per datagram of application
        /// data until the session ends (`dtls_closed`).
        pub fn run(
            self,
            runtime: Arc<dyn Runtime>,
            component: Component,
            records: mpsc::UnboundedReceiver<Vec<u8>>,
            peer_fingerprint: Option<String>,
            peer_setup: Option<String>,
        ) -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let fail = |reason: &str, detail: String| {
                    emit(
                        json!({"event": "dtls_failed", "component": 1, "reason": reason,
                        "detail": detail}),
                    );
                };
                let role = match self.role(peer_setup.as_deref()) {
                    Ok(role) => role,
                    Err(detail) => return fail("setup_conflict", detail),
                };
                let Some(peer) = peer_fingerprint else {
                    return fail(
                        "no_fingerprint",
                        "the peer's description has no fingerprint".into(),
                    );
                };
                let peer = match Fingerprint::parse(&peer) {
                    Ok(f) => f,
                    Err(e) => return fail(e.code(), e.to_string()),
                };
                let config = DtlsConfig::new(role, self.certificate, peer);
                let mut session =
                    match DtlsSession::handshake(runtime, component, records, config).await {
                        Ok(s) => s,
                        Err(e) => return fail(e.code(), e.to_string()),
                    };
                let info = session.info();
                emit(json!({"event": "dtls_connected", "component": 1,
                    "role": info.role.to_string(), "version": info.version,
                    "cipher": info.cipher_suite.map(|c| c.name()), "srtp": info.srtp_profile,
                    "peer_fingerprint": info.peer_fingerprint.sdp(),
                    "ms": round1(info.elapsed.as_secs_f64() * 1000.0)}));
                loop {
                    match session.recv().await {
                        Ok(data) => {
                            let hex: String =
                                data.iter().take(64).map(|b| format!("{b:02x}")).collect();
                            emit(json!({"event": "dtls_recv", "component": 1,
                                "len": data.len(), "hex": hex}));
                        }
                        Err(e) => {
                            emit(json!({"event": "dtls_closed", "component": 1,
                                "reason": e.code()}));
                            return;
                        }
                    }
                }
            })
        }
    }
}

/// Without the `dtls` feature `--dtls` is refused, so none of this runs.
#[cfg(not(feature = "dtls"))]
mod dtls_glue {
    use std::sync::Arc;

    use futures::channel::mpsc;
    use futures::future::BoxFuture;
    use librice::{Component, Runtime};

    use super::DtlsMode;

    /// Never made.
    pub enum Local {}

    impl Local {
        pub fn new(_: DtlsMode, _: bool) -> Result<Local, String> {
            Err("this icepeer was built without the dtls feature".into())
        }

        pub fn setup(&self) -> &'static str {
            match *self {}
        }

        pub fn fingerprint(&self) -> String {
            match *self {}
        }

        pub fn run(
            self,
            _: Arc<dyn Runtime>,
            _: Component,
            _: mpsc::UnboundedReceiver<Vec<u8>>,
            _: Option<String>,
            _: Option<String>,
        ) -> BoxFuture<'static, ()> {
            match self {}
        }
    }

    pub fn is_dtls(_: &[u8]) -> bool {
        false
    }
}
