//! `icegather`: gathers this machine's ICE candidates with librice and prints them as SDP
//! `candidate:` lines the moment they are found.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use librice::interfaces::{AddressFamilies, AddressFilter, select_addresses};
use librice::proto::agent::AgentConfig;
use librice::proto::candidate::{CandidateType, MAX_COMPONENT};
use librice::proto::stun::transaction::RetransmitConfig;
use librice_examples::{RuntimeKind, block_on, parse_socket_addr, usage_error};

const USAGE: &str = "\
usage: icegather [--stun HOST:PORT]... [--turn HOST:PORT --turn-user U --turn-pass P
                 [--turn-transport udp|tcp|tls] [--turn-insecure] [--relay-only]]
                 [--transport udp|tcp|all] [--stun-transport udp|tcp]
                 [--loopback] [--link-local] [--mdns]
                 [--ipv4 | --ipv6] [--components N] [--runtime tokio|async-std]

Gathers this machine's ICE candidates (RFC 8445 §5.1.1) with librice: for each
address of each network interface and each component, binds a UDP socket and
prints its host candidate as an SDP attribute (RFC 8839 §5.1) the moment it is
found, after the time since start; with --stun, the server-reflexive
candidates the STUN servers report too:

  [  0.4 ms] candidate:1 1 UDP 2130706431 192.0.2.10 51234 typ host

then a summary line:

  gathered 3 candidates (3 host; 2 IPv4, 1 IPv6) on 2 interfaces in 1.2 ms

With --mdns, host candidates are printed with a random <uuid>.local name in
place of their address (draft-ietf-mmusic-mdns-ice-candidates), which icegather
publishes over mDNS (224.0.0.251 and ff02::fb port 5353) while it runs:

  [  0.5 ms] candidate:1 1 UDP 2130706431 1f0e2d3c-...-a4b3c2d1e0f0.local 51234 typ host

With no option it needs no server and sends no packet. Priorities follow RFC
8445 §5.1.2 with local preferences that intermingle interfaces and IPv6/IPv4
addresses (RFC 8421).

options:
  --stun HOST:PORT  a STUN server (UDP) for server-reflexive candidates; repeatable
  --turn HOST:PORT  a TURN server for relayed candidates (with --turn-user and
                    --turn-pass); repeatable, all with the same credentials
  --turn-user U     the TURN username
  --turn-pass P     the TURN password
  --turn-transport T  udp (default), tcp or tls
  --stun-transport T  udp (default) or tcp to the STUN servers
  --transport T       host candidates over udp (default), tcp (ICE-TCP, RFC 6544: a
                      passive and an active candidate per address) or all
  --turn-insecure   with tls: accept any server certificate (self-signed test servers)
  --relay-only      print and use only relayed candidates
  --loopback        also gather loopback addresses (127.0.0.0/8, ::1)
  --link-local      also gather link-local addresses (169.254.0.0/16, fe80::/10)
  --mdns            hide host addresses behind mDNS .local names (published on
                    port 5353 of the gathering interfaces until icegather ends)
  --ipv4            gather IPv4 addresses only
  --ipv6            gather IPv6 addresses only
  --components N    gather for components 1 to N, N from 1 to 256 (default 1)
  --runtime R       the async runtime: tokio (default) or async-std
  -h, --help        print this help

A STUN or TURN server that does not answer is given up after about 4.5 s (STUN) or
39.5 s (TURN).

Exit status: 0 when the interfaces could be listed, even if no candidate was
found (reported on stderr, with a hint); 1 when they could not be listed or
the agent could not start; 2 for a bad command line.";

#[derive(Debug)]
struct Options {
    stun: Vec<SocketAddr>,
    stun_transport: &'static str,
    turn: Vec<SocketAddr>,
    turn_user: Option<String>,
    turn_pass: Option<String>,
    turn_transport: &'static str,
    transports: Transports,
    turn_insecure: bool,
    relay_only: bool,
    mdns: bool,
    filter: AddressFilter,
    components: u16,
    runtime: RuntimeKind,
}

fn main() {
    let options = parse_args();
    let code = block_on(options.runtime, move |runtime| {
        Box::pin(async move { run(options, runtime).await })
    });
    std::process::exit(code);
}

async fn run(options: Options, runtime: std::sync::Arc<dyn librice::Runtime>) -> i32 {
    let start = Instant::now();
    let addresses = match select_addresses(&options.filter) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("icegather: cannot list the network interfaces: {e}");
            return 1;
        }
    };
    let mut builder = Agent::builder()
        .runtime(runtime)
        .config(AgentConfig::default().gather_retransmit(RetransmitConfig {
            rto: Duration::from_millis(300),
            max_requests: 4,
            last_wait_multiplier: 8,
            ..RetransmitConfig::default()
        }))
        .filter(options.filter.clone());
    for server in &options.stun {
        builder = match options.stun_transport {
            "tcp" => builder.stun_server_tcp(*server),
            _ => builder.stun_server(*server),
        };
    }
    for server in &options.turn {
        let (user, pass) = (
            options.turn_user.as_deref().unwrap_or_default(),
            options.turn_pass.as_deref().unwrap_or_default(),
        );
        builder = match options.turn_transport {
            "tcp" => builder.turn_server_tcp(*server, user, pass),
            "tls" => builder.turn_server_tls(*server, user, pass),
            _ => builder.turn_server(*server, user, pass),
        };
    }
    builder = builder
        .relay_only(options.relay_only)
        .hide_host_addresses(options.mdns)
        .tls_insecure(options.turn_insecure)
        .transports(options.transports);
    let agent = match builder.build() {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("icegather: cannot start the agent: {e}");
            return 1;
        }
    };
    let stream = agent.add_stream();
    for _ in 0..options.components {
        if let Err(e) = stream.add_component() {
            eprintln!("icegather: {e}");
            return 1;
        }
    }
    let mut candidates = match stream.gather_candidates() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("icegather: cannot gather: {e}");
            return 1;
        }
    };
    let mut gathered = Vec::new();
    while let Some(candidate) = candidates.next().await {
        println!("[{:>5.1} ms] {candidate}", millis(start.elapsed()));
        gathered.push(candidate);
    }
    let elapsed = start.elapsed();
    // Named candidates hide their address: take it from the agent's own view.
    let locals = stream.local_candidates();
    let addresses_of: Vec<SocketAddr> = gathered
        .iter()
        .filter_map(|c| address_of(c, &locals))
        .collect();

    let host = count(&gathered, CandidateType::Host);
    let named = gathered.iter().filter(|c| c.as_named().is_some()).count();
    let srflx = count(&gathered, CandidateType::ServerReflexive);
    let relay = count(&gathered, CandidateType::Relayed);
    let v4 = addresses_of.iter().filter(|a| a.is_ipv4()).count();
    let v6 = addresses_of.len() - v4;
    let bases: BTreeSet<_> = gathered
        .iter()
        .filter(|c| c.candidate_type() == CandidateType::Host)
        .filter_map(|c| address_of(c, &locals))
        .map(|a| a.ip())
        .collect();
    let interfaces: BTreeSet<&str> = addresses
        .iter()
        .filter(|a| bases.contains(&a.ip))
        .map(|a| a.interface.as_str())
        .collect();
    let mut kinds = format!("{host} host");
    if options.mdns {
        kinds.push_str(&format!(" ({named} named)"));
    }
    if !options.stun.is_empty() || !options.turn.is_empty() {
        kinds.push_str(&format!(", {srflx} srflx"));
    }
    if !options.turn.is_empty() {
        kinds.push_str(&format!(", {relay} relay"));
    }
    let components = if options.components > 1 {
        format!(" for {} components", options.components)
    } else {
        String::new()
    };
    println!(
        "gathered {} ({kinds}; {v4} IPv4, {v6} IPv6){components} on {} in {:.1} ms",
        plural(gathered.len(), "candidate"),
        plural(interfaces.len(), "interface"),
        millis(elapsed),
    );
    if gathered.is_empty() && options.relay_only {
        eprintln!("icegather: no relayed candidate: the TURN servers refused or did not answer");
    } else if gathered.is_empty() {
        if addresses.is_empty() {
            eprintln!("icegather: no candidates: no interface address passed the filters");
        } else {
            eprintln!(
                "icegather: no candidates: no socket could be bound on the {} selected",
                plural(addresses.len(), "address")
            );
        }
        if !options.filter.loopback {
            eprintln!("icegather: hint: try --loopback");
        }
    } else if !options.turn.is_empty() && relay == 0 {
        eprintln!("icegather: no relayed candidate: the TURN servers refused or did not answer");
    } else if !options.stun.is_empty() && srflx == 0 {
        eprintln!(
            "icegather: no server-reflexive candidate: the STUN servers did not answer, or \
             this host is not behind a NAT (a mapped address equal to a host address adds nothing)"
        );
    }
    agent.close();
    0
}

use librice::{Agent, IceCandidate, Transports};

/// The address of a gathered candidate; for a named one, that of the agent's host
/// candidate it hides (same component, transport and port).
fn address_of(c: &IceCandidate, locals: &[librice::Candidate]) -> Option<SocketAddr> {
    match c {
        IceCandidate::Named(n) => locals
            .iter()
            .find(|l| {
                l.candidate_type() == CandidateType::Host
                    && l.component() == n.component()
                    && l.transport() == n.transport()
                    && l.address().port() == n.port()
            })
            .map(librice::Candidate::address),
        other => other.as_address().map(librice::Candidate::address),
    }
}

fn count(candidates: &[IceCandidate], t: CandidateType) -> usize {
    candidates
        .iter()
        .filter(|c| c.candidate_type() == t)
        .count()
}

fn parse_args() -> Options {
    let mut options = Options {
        stun: Vec::new(),
        stun_transport: "udp",
        turn: Vec::new(),
        turn_user: None,
        turn_pass: None,
        turn_transport: "udp",
        transports: Transports::Udp,
        turn_insecure: false,
        relay_only: false,
        mdns: false,
        filter: AddressFilter::default(),
        components: 1,
        runtime: RuntimeKind::Tokio,
    };
    let (mut ipv4, mut ipv6) = (false, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage_error(&format!("{name} needs a value"), USAGE))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--stun" => {
                let v = value("--stun");
                let addr =
                    parse_socket_addr(&v, "--stun").unwrap_or_else(|e| usage_error(&e, USAGE));
                options.stun.push(addr);
            }
            "--stun-transport" => {
                let t = value("--stun-transport");
                options.stun_transport = match t.as_str() {
                    "udp" => "udp",
                    "tcp" => "tcp",
                    _ => usage_error(&format!("--stun-transport {t}: udp or tcp"), USAGE),
                };
            }
            "--loopback" => options.filter.loopback = true,
            "--link-local" => options.filter.link_local = true,
            "--mdns" => options.mdns = true,
            "--ipv4" => ipv4 = true,
            "--ipv6" => ipv6 = true,
            "--components" => {
                options.components = value("--components")
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=MAX_COMPONENT).contains(n))
                    .unwrap_or_else(|| {
                        usage_error("--components needs a number from 1 to 256", USAGE)
                    });
            }
            "--runtime" => {
                options.runtime = RuntimeKind::parse(&value("--runtime"))
                    .unwrap_or_else(|e| usage_error(&e, USAGE));
            }
            "--turn" => {
                let v = value("--turn");
                let addr =
                    parse_socket_addr(&v, "--turn").unwrap_or_else(|e| usage_error(&e, USAGE));
                options.turn.push(addr);
            }
            "--turn-user" => options.turn_user = Some(value("--turn-user")),
            "--turn-pass" => options.turn_pass = Some(value("--turn-pass")),
            "--transport" => {
                let t = value("--transport");
                options.transports = match t.as_str() {
                    "udp" => Transports::Udp,
                    "tcp" => Transports::Tcp,
                    "all" => Transports::Both,
                    _ => usage_error(&format!("--transport {t}: udp, tcp or all"), USAGE),
                };
            }
            "--turn-transport" => {
                let t = value("--turn-transport");
                options.turn_transport = match t.as_str() {
                    "udp" => "udp",
                    "tcp" => "tcp",
                    "tls" => "tls",
                    _ => usage_error(&format!("--turn-transport {t}: udp, tcp or tls"), USAGE),
                };
            }
            "--turn-insecure" => options.turn_insecure = true,
            "--relay-only" => options.relay_only = true,
            _ if arg.starts_with('-') => usage_error(&format!("unknown option {arg}"), USAGE),
            _ => usage_error(&format!("unexpected argument {arg:?}"), USAGE),
        }
    }
    if !options.turn.is_empty() && (options.turn_user.is_none() || options.turn_pass.is_none()) {
        usage_error("--turn needs --turn-user and --turn-pass", USAGE);
    }
    if options.relay_only && options.turn.is_empty() {
        usage_error("--relay-only needs a --turn server", USAGE);
    }
    options.filter.families = match (ipv4, ipv6) {
        (true, true) => usage_error("--ipv4 and --ipv6 exclude each other", USAGE),
        (true, false) => AddressFamilies::V4,
        (false, true) => AddressFamilies::V6,
        (false, false) => AddressFamilies::Both,
    };
    options
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

fn plural(n: usize, noun: &str) -> String {
    let suffix = match (n, noun.ends_with("ss")) {
        (1, _) => "",
        (_, true) => "es",
        (_, false) => "s",
    };
    format!("{n} {noun}{suffix}")
}
