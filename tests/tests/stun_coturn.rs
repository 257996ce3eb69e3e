//! STUN interop on loopback with Debian's coturn package.
//!
//! - librice's `stund` answers coturn's `turnutils_stunclient` over UDP on 127.0.0.1 and
//!   ::1. `turnutils_stunclient` speaks UDP only (its options are `-p PORT`, `-L ADDR` and
//!   `-f`), so `stund` over TCP is checked with the harness's own byte-by-byte Binding
//!   request ([`librice_tests::stun_probe`]), which also checks that the mapped address
//!   equals the client's own address.
//! - librice's `stunclient` gets its mapped address from coturn's `turnserver` over UDP
//!   and TCP, on 127.0.0.1 and ::1.
//! - `stunclient` fails cleanly, within a bound, when the server never answers.
//!
//! Without coturn installed these tests print why and pass, except in CI (`CI=true`),
//! where `.ci/run` installs it and a missing tool fails them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use librice_tests::{
    ChildGuard, Coturn, Finished, Stund, TestDir, bin_path, require_ipv6_loopback, require_tool,
    stun_probe,
};

/// Upper bound for a client run that should succeed at once on loopback.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for a client run against a server that never answers (RFC 8489 §6.2.1's
/// default UDP transaction gives up after 39.5 s).
const SILENT_SERVER_TIMEOUT: Duration = Duration::from_secs(60);

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[test]
fn stund_answers_turnutils_stunclient_over_udp_on_ipv4() {
    stund_answers_turnutils_stunclient(V4);
}

#[test]
fn stund_answers_turnutils_stunclient_over_udp_on_ipv6() {
    stund_answers_turnutils_stunclient(V6);
}

#[test]
fn stund_answers_binding_over_tcp_on_ipv4() {
    stund_answers_binding_over_tcp(V4);
}

#[test]
fn stund_answers_binding_over_tcp_on_ipv6() {
    stund_answers_binding_over_tcp(V6);
}

#[test]
fn stunclient_gets_mapped_address_from_coturn_over_udp_on_ipv4() {
    stunclient_gets_mapped_address_from_coturn(V4, false);
}

#[test]
fn stunclient_gets_mapped_address_from_coturn_over_tcp_on_ipv4() {
    stunclient_gets_mapped_address_from_coturn(V4, true);
}

#[test]
fn stunclient_gets_mapped_address_from_coturn_over_udp_on_ipv6() {
    stunclient_gets_mapped_address_from_coturn(V6, false);
}

#[test]
fn stunclient_gets_mapped_address_from_coturn_over_tcp_on_ipv6() {
    stunclient_gets_mapped_address_from_coturn(V6, true);
}

#[test]
fn stunclient_fails_with_one_line_reason_when_udp_server_is_silent() {
    let dir = TestDir::new();
    // A socket that receives and never answers: requests are neither answered nor
    // refused with ICMP, so only the client's own timeout can end the transaction.
    let black_hole = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a UDP socket");
    let server = black_hole
        .local_addr()
        .expect("local address of a bound socket");

    // A 50 ms initial RTO: the transaction gives up after 50 ms x (1 + 2 + ... + 32) + 16 x
    // 50 ms = 3.95 s (RFC 8489 §6.2.1, Rc 7, Rm 16) rather than 39.5 s.
    let run = run_stunclient_with(&dir, server, &["--rto-ms", "50"], SILENT_SERVER_TIMEOUT);

    assert!(
        !run.status.success(),
        "stunclient succeeded against a silent server: {}",
        run.report()
    );
    let reason = run.stderr.trim();
    assert!(
        !reason.is_empty() && reason.lines().count() == 1,
        "stunclient should give a one-line reason on stderr: {}",
        run.report()
    );
    drop(black_hole);
}

/// Runs `turnutils_stunclient -p PORT IP` against `stund` on `ip`; it must exit 0 and
/// print the reflexive address `stund` reported: `ip` and a non-zero port.
fn stund_answers_turnutils_stunclient(ip: IpAddr) {
    let Some(stunclient) = require_tool("turnutils_stunclient", "coturn") else {
        return;
    };
    if ip.is_ipv6() && !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let mut stund = Stund::start(&dir, ip);

    // It takes the server's address without brackets, IPv6 included.
    let mut cmd = Command::new(stunclient);
    cmd.arg("-p")
        .arg(stund.addr().port().to_string())
        .arg(ip.to_string());
    let run = ChildGuard::spawn(&mut cmd, &dir, "turnutils_stunclient").finish(CLIENT_TIMEOUT);

    // It exits 0 even when it cannot read the response ("Cannot read the response"), so
    // the reflexive address line is what shows success.
    assert!(
        run.status.success(),
        "{}\n{}",
        run.report(),
        stund.process().report()
    );
    let reflexive = turnutils_reflexive_addrs(&run.stdout);
    assert!(
        !reflexive.is_empty(),
        "turnutils_stunclient printed no reflexive address: {}\n{}",
        run.report(),
        stund.process().report()
    );
    for addr in reflexive {
        assert_eq!(addr.ip(), ip, "wrong mapped address: {}", run.report());
        assert_ne!(addr.port(), 0, "mapped port 0: {}", run.report());
    }
}

/// Sends a hand-written Binding request to `stund` on `ip` over TCP; the response's
/// XOR-MAPPED-ADDRESS must be the client's own address.
fn stund_answers_binding_over_tcp(ip: IpAddr) {
    if ip.is_ipv6() && !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let mut stund = Stund::start(&dir, ip);

    let binding = stun_probe::binding_over_tcp(stund.addr(), CLIENT_TIMEOUT)
        .unwrap_or_else(|e| panic!("Binding over TCP failed: {e}\n{}", stund.process().report()));

    assert_eq!(
        binding.mapped,
        Some(binding.local),
        "XOR-MAPPED-ADDRESS is not the client's address: {}",
        stund.process().report()
    );
}

/// Runs `stunclient [--tcp] SERVER` against coturn on `ip`; it must exit 0 with a last
/// stdout line that is `ip`:port, port non-zero.
fn stunclient_gets_mapped_address_from_coturn(ip: IpAddr, tcp: bool) {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    if ip.is_ipv6() && !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let mut coturn = Coturn::start(&turnserver, &dir, ip.is_ipv6());
    let server = coturn.addr_for(ip);

    let run = run_stunclient(&dir, server, tcp, CLIENT_TIMEOUT);

    assert!(
        run.status.success(),
        "{}\n{}",
        run.report(),
        coturn.process().report()
    );
    let last = run.stdout.lines().last().unwrap_or_default();
    let mapped: SocketAddr = last.trim().parse().unwrap_or_else(|e| {
        panic!(
            "last stdout line {last:?} is not IP:PORT ({e}): {}",
            run.report()
        )
    });
    assert_eq!(mapped.ip(), ip, "wrong mapped address: {}", run.report());
    assert_ne!(mapped.port(), 0, "mapped port 0: {}", run.report());
}

fn run_stunclient(dir: &TestDir, server: SocketAddr, tcp: bool, timeout: Duration) -> Finished {
    let flags: &[&str] = if tcp { &["--tcp"] } else { &[] };
    run_stunclient_with(dir, server, flags, timeout)
}

fn run_stunclient_with(
    dir: &TestDir,
    server: SocketAddr,
    flags: &[&str],
    timeout: Duration,
) -> Finished {
    let mut cmd = Command::new(bin_path("stunclient"));
    cmd.args(flags);
    cmd.arg(server.to_string());
    ChildGuard::spawn(&mut cmd, dir, "stunclient").finish(timeout)
}

/// The addresses of `turnutils_stunclient`'s success lines, which (coturn 4.6) look like
/// `0: : IPv4. UDP reflexive addr: 127.0.0.1:44030` and
/// `0: : IPv6. UDP reflexive addr: ::1:49151` (IPv6 without brackets).
fn turnutils_reflexive_addrs(stdout: &str) -> Vec<SocketAddr> {
    const MARKER: &str = "UDP reflexive addr: ";
    stdout
        .lines()
        .filter_map(|line| {
            let text = &line[line.find(MARKER)? + MARKER.len()..];
            let (ip, port) = text.trim().rsplit_once(':')?;
            Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
        })
        .collect()
}
