//! `icegather` gets relayed candidates from coturn: TURN over UDP and over TCP on
//! 127.0.0.1, and an IPv6 relay from coturn on [::1]; wrong credentials give no relayed
//! candidate and a clear message, without a hang.

use std::process::Command;
use std::time::Duration;

use librice_tests::{
    COTURN_PASSWORD, COTURN_USER, Coturn, TestDir, bin_path, require_ipv6_loopback, require_tool,
};

/// Runs icegather relay-only against `server` and returns (stdout, stderr, exit code).
fn icegather(server: &str, transport: &str, ipv6: bool, password: &str) -> (String, String, i32) {
    let mut cmd = Command::new(bin_path("icegather"));
    cmd.args([
        "--loopback",
        if ipv6 { "--ipv6" } else { "--ipv4" },
        "--turn",
        server,
        "--turn-user",
        COTURN_USER,
        "--turn-pass",
        password,
        "--turn-transport",
        transport,
        "--relay-only",
    ]);
    let out = cmd.output().expect("icegather runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn relay_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.contains(" typ relay "))
        .collect()
}

fn gathers_relay(transport: &str, ipv6: bool) {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    if ipv6 && !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let coturn = Coturn::start(&turnserver, &dir, ipv6);
    let server = if ipv6 {
        coturn.addr_v6().expect("coturn on ::1").to_string()
    } else {
        coturn.addr_v4().to_string()
    };
    let started = std::time::Instant::now();
    let (stdout, stderr, code) = icegather(&server, transport, ipv6, COTURN_PASSWORD);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let relays = relay_lines(&stdout);
    assert!(
        !relays.is_empty(),
        "no relayed candidate:\n{stdout}\n{stderr}"
    );
    for line in &relays {
        let want = if ipv6 { " ::1 " } else { " 127.0.0.1 " };
        assert!(
            line.contains(want),
            "relay on the loopback relay address: {line}"
        );
        assert!(line.contains(" raddr "), "{line}");
    }
    assert!(
        stdout.lines().all(|l| !l.contains(" typ host ")),
        "relay-only prints no host candidate:\n{stdout}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn relay_over_udp() {
    gathers_relay("udp", false);
}

#[test]
fn relay_over_tcp() {
    gathers_relay("tcp", false);
}

#[test]
fn ipv6_relay_from_coturn_on_ipv6_loopback() {
    gathers_relay("udp", true);
}

#[test]
fn relay_over_tls() {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    let Some(openssl) = require_tool("openssl", "openssl") else {
        return;
    };
    let dir = TestDir::new();
    let coturn = Coturn::start_tls(&turnserver, &openssl, &dir);
    let server = coturn.tls_addr().expect("TLS listener").to_string();
    // Self-signed: refused without --turn-insecure...
    let (stdout, stderr, code) = icegather(&server, "tls", false, COTURN_PASSWORD);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        relay_lines(&stdout).is_empty(),
        "the self-signed certificate is refused: {stdout}"
    );
    // ...and accepted with it.
    let mut cmd = Command::new(bin_path("icegather"));
    cmd.args([
        "--loopback",
        "--ipv4",
        "--turn",
        &server,
        "--turn-user",
        COTURN_USER,
        "--turn-pass",
        COTURN_PASSWORD,
        "--turn-transport",
        "tls",
        "--turn-insecure",
        "--relay-only",
    ]);
    let out = cmd.output().expect("icegather runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let relays = relay_lines(&stdout);
    assert!(
        !relays.is_empty(),
        "relay over TLS:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(relays.iter().all(|l| l.contains(" 127.0.0.1 ")), "{stdout}");
}

#[test]
fn wrong_password_gives_no_relay_and_a_message() {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    let dir = TestDir::new();
    let coturn = Coturn::start(&turnserver, &dir, false);
    let (stdout, stderr, code) = icegather(&coturn.addr_v4().to_string(), "udp", false, "wrong");
    assert_eq!(code, 0);
    assert!(relay_lines(&stdout).is_empty(), "{stdout}");
    assert!(stderr.contains("no relayed candidate"), "{stderr}");
}

/// `icegather --stun-transport tcp` asks coturn over TCP: a server-reflexive TCP
/// candidate (`tcptype so`, RFC 6544 §4.1) per address, besides the UDP host candidates.
#[test]
fn icegather_gets_a_tcp_srflx_candidate_over_stun_tcp() {
    let Some(turnserver) = require_tool("turnserver", "coturn") else {
        return;
    };
    let dir = TestDir::new();
    let coturn = Coturn::start(&turnserver, &dir, false);
    let out = Command::new(bin_path("icegather"))
        .args([
            "--loopback",
            "--ipv4",
            "--stun",
            &coturn.addr_v4().to_string(),
            "--stun-transport",
            "tcp",
        ])
        .output()
        .expect("icegather runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let srflx: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" TCP ") && l.contains(" typ srflx ") && l.contains("tcptype so"))
        .collect();
    assert!(
        srflx.iter().any(|l| l.contains(" 127.0.0.1 ")),
        "a TCP srflx candidate on 127.0.0.1:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
