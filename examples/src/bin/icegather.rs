//! `icegather`: gathers this machine's ICE host candidates and prints them as SDP
//! `candidate:` lines as they are found.
//!
//! Blocking and std-only: interface enumeration with `if-addrs`, one `std::net::UdpSocket`
//! per address per component. Server-reflexive and relayed candidates come with the async
//! facade.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

use if_addrs::{IfOperStatus, Interface};
use librice_examples::usage_error;
use librice_proto::TransportType;
use librice_proto::candidate::{
    Candidate, CandidateTransport, CandidateType, FoundationKey, FoundationSet, MAX_COMPONENT,
    local_preferences,
};

const USAGE: &str = "\
usage: icegather [--loopback] [--link-local] [--ipv4 | --ipv6] [--components N]

Gathers this machine's ICE host candidates (RFC 8445 §5.1.1.1): for each
address of each network interface and each component, binds a UDP socket on
port 0 and prints the candidate as an SDP attribute (RFC 8839 §5.1) the moment
it is bound, after the time since start:

  [  0.4 ms] candidate:1 1 UDP 2130706431 192.0.2.10 51234 typ host

then a summary line:

  gathered 3 candidates (2 IPv4, 1 IPv6) on 2 interfaces in 1.2 ms

No packet is sent: gathering host candidates only binds sockets, which are
closed on exit. Priorities follow RFC 8445 §5.1.2, with local preferences that
intermingle interfaces and IPv6/IPv4 addresses (RFC 8421, IPv6 first), so the
lines come out most preferred first; candidates with the same base address
share a foundation (RFC 8445 §5.1.1.3), across components too.

options:
  --loopback        also gather loopback addresses (127.0.0.0/8, ::1)
  --link-local      also gather link-local addresses (169.254.0.0/16, fe80::/10)
  --ipv4            gather IPv4 addresses only
  --ipv6            gather IPv6 addresses only
  --components N    gather for components 1 to N, N from 1 to 256 (default 1)
  -h, --help        print this help

Loopback and link-local addresses, and interfaces the system reports as down,
are skipped by default. An address whose socket cannot be bound is reported on
stderr and skipped.

Exit status: 0 when the interfaces could be listed, even if no candidate was
found (that is reported on stderr, with a hint); 1 when they could not be
listed; 2 for a bad command line.

Server-reflexive and relayed candidates (--stun, --turn) and the choice of
async runtime (--runtime) arrive with librice's async facade; until then those
options are rejected like any other unknown option.";

/// Which address families to gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Both,
    V4,
    V6,
}

#[derive(Debug)]
struct Options {
    loopback: bool,
    link_local: bool,
    family: Family,
    components: u16,
}

/// An interface address that passed the filters.
#[derive(Debug)]
struct LocalAddress {
    interface: String,
    /// The interface index, the scope of link-local IPv6 addresses.
    index: Option<u32>,
    ip: IpAddr,
}

/// Why interface addresses were left out, for the message when nothing is found.
#[derive(Debug, Default)]
struct Skipped {
    loopback: usize,
    link_local: usize,
    family: usize,
    down: usize,
}

fn main() {
    let options = parse_args();
    let start = Instant::now();
    let interfaces = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces,
        Err(e) => {
            eprintln!("icegather: cannot list the network interfaces: {e}");
            std::process::exit(1);
        }
    };
    let (addresses, skipped) = select(&interfaces, &options);
    // The sockets stay open until exit, so the ports printed stay bound while this runs.
    let mut sockets = Vec::new();
    let gathered = gather(&addresses, &options, start, &mut sockets);
    let elapsed = start.elapsed();

    let v4 = gathered
        .iter()
        .filter(|(_, c)| c.address().is_ipv4())
        .count();
    let v6 = gathered.len() - v4;
    let interfaces_used: BTreeSet<&str> = gathered.iter().map(|(i, _)| i.as_str()).collect();
    let components = if options.components > 1 {
        format!(" for {} components", options.components)
    } else {
        String::new()
    };
    println!(
        "gathered {} ({v4} IPv4, {v6} IPv6){components} on {} in {:.1} ms",
        plural(gathered.len(), "candidate"),
        plural(interfaces_used.len(), "interface"),
        millis(elapsed),
    );

    if gathered.is_empty() {
        report_nothing_found(&addresses, &skipped, &options);
    }
}

fn parse_args() -> Options {
    let mut options = Options {
        loopback: false,
        link_local: false,
        family: Family::Both,
        components: 1,
    };
    let mut ipv4 = false;
    let mut ipv6 = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--loopback" => options.loopback = true,
            "--link-local" => options.link_local = true,
            "--ipv4" => ipv4 = true,
            "--ipv6" => ipv6 = true,
            "--components" => {
                options.components = args
                    .next()
                    .and_then(|v| v.parse::<u16>().ok())
                    .filter(|n| (1..=MAX_COMPONENT).contains(n))
                    .unwrap_or_else(|| {
                        usage_error("--components needs a number from 1 to 256", USAGE)
                    });
            }
            "--stun" | "--turn" | "--runtime" => usage_error(
                &format!("unknown option {arg}: it arrives with the async facade"),
                USAGE,
            ),
            _ if arg.starts_with('-') => usage_error(&format!("unknown option {arg}"), USAGE),
            _ => usage_error(&format!("unexpected argument {arg:?}"), USAGE),
        }
    }
    options.family = match (ipv4, ipv6) {
        (true, true) => usage_error("--ipv4 and --ipv6 exclude each other", USAGE),
        (true, false) => Family::V4,
        (false, true) => Family::V6,
        (false, false) => Family::Both,
    };
    options
}

/// The interface addresses to gather from, each IP once, and what was left out.
fn select(interfaces: &[Interface], options: &Options) -> (Vec<LocalAddress>, Skipped) {
    let mut skipped = Skipped::default();
    let mut seen = BTreeSet::new();
    let mut addresses = Vec::new();
    for interface in interfaces {
        let ip = interface.ip();
        if ip.is_loopback() && !options.loopback {
            skipped.loopback += 1;
        } else if is_link_local(ip) && !options.link_local {
            skipped.link_local += 1;
        } else if (options.family == Family::V4 && !ip.is_ipv4())
            || (options.family == Family::V6 && !ip.is_ipv6())
        {
            skipped.family += 1;
        } else if matches!(
            interface.oper_status,
            IfOperStatus::Down | IfOperStatus::NotPresent | IfOperStatus::LowerLayerDown
        ) {
            skipped.down += 1;
        } else if seen.insert(ip) {
            addresses.push(LocalAddress {
                interface: interface.name.clone(),
                index: interface.index,
                ip,
            });
        }
    }
    (addresses, skipped)
}

/// Binds a socket per address per component, kept in `sockets`, and prints each candidate
/// as it is made. Returns the candidates with their interface names.
fn gather(
    addresses: &[LocalAddress],
    options: &Options,
    start: Instant,
    sockets: &mut Vec<UdpSocket>,
) -> Vec<(String, Candidate)> {
    let pairs: Vec<(&str, IpAddr)> = addresses
        .iter()
        .map(|a| (a.interface.as_str(), a.ip))
        .collect();
    let preferences = local_preferences(&pairs);
    let mut order: Vec<usize> = (0..addresses.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(preferences[i]));

    let mut foundations = FoundationSet::new();
    let mut gathered = Vec::new();
    for component in 1..=options.components {
        for &i in &order {
            let local = &addresses[i];
            let bind_addr = match local.ip {
                IpAddr::V6(v6) if is_link_local(local.ip) => {
                    SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, local.index.unwrap_or(0)))
                }
                ip => SocketAddr::new(ip, 0),
            };
            let socket = match UdpSocket::bind(bind_addr) {
                Ok(socket) => socket,
                Err(e) => {
                    eprintln!(
                        "icegather: warning: cannot bind UDP {bind_addr} on {} (component {component}): {e}",
                        local.interface
                    );
                    continue;
                }
            };
            let bound = match socket.local_addr() {
                Ok(bound) => bound,
                Err(e) => {
                    eprintln!(
                        "icegather: warning: no local address for the socket on {bind_addr}: {e}"
                    );
                    continue;
                }
            };
            let foundation = foundations.foundation(FoundationKey::new(
                CandidateType::Host,
                TransportType::Udp,
                local.ip,
                None,
            ));
            let candidate = Candidate::builder(
                foundation,
                CandidateType::Host,
                CandidateTransport::Udp,
                bound,
            )
            .component(component)
            .local_preference(preferences[i])
            .build();
            match candidate {
                Ok(candidate) => {
                    println!("[{:>5.1} ms] {candidate}", millis(start.elapsed()));
                    gathered.push((local.interface.clone(), candidate));
                    sockets.push(socket);
                }
                Err(e) => eprintln!("icegather: warning: no candidate for {bound}: {e}"),
            }
        }
    }
    gathered
}

fn report_nothing_found(addresses: &[LocalAddress], skipped: &Skipped, options: &Options) {
    let reasons: Vec<String> = [
        (skipped.loopback, "loopback"),
        (skipped.link_local, "link-local"),
        (skipped.family, "of the other family"),
        (skipped.down, "on interfaces that are down"),
    ]
    .into_iter()
    .filter(|&(n, _)| n > 0)
    .map(|(n, why)| format!("{n} {why}"))
    .collect();
    if !addresses.is_empty() {
        eprintln!(
            "icegather: no host candidates: no socket could be bound on the {} left",
            plural(addresses.len(), "address")
        );
    } else if reasons.is_empty() {
        eprintln!("icegather: no host candidates: the system lists no interface addresses");
    } else {
        eprintln!(
            "icegather: no host candidates: every interface address was skipped ({})",
            reasons.join(", ")
        );
    }
    let mut hints = Vec::new();
    if !options.loopback {
        hints.push("--loopback");
    }
    if !options.link_local && skipped.link_local > 0 {
        hints.push("--link-local");
    }
    if options.family != Family::Both && skipped.family > 0 {
        hints.push(if options.family == Family::V4 {
            "without --ipv4"
        } else {
            "without --ipv6"
        });
    }
    if !hints.is_empty() {
        eprintln!("icegather: hint: try {}", hints.join(" or "));
    }
}

/// True for link-local addresses: 169.254.0.0/16 and fe80::/10.
fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
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
