//! A coturn started as a redirector (`--alternate-server`, `--tls-alternate-server`) in
//! front of a second coturn: every Allocate to the first is answered 300 Try Alternate
//! (RFC 8656 §7.1), and `icegather` and `icepeer` get their relay from the second, over
//! UDP, TCP and TLS. The two servers relay from different port ranges, so a relayed
//! candidate tells which one made it.

use std::ops::RangeInclusive;
use std::process::Command;
use std::time::Duration;

use librice_tests::pairing::{PairOptions, pair_with};
use librice_tests::peers::{Runtime, exclusive, icepeer};
use librice_tests::{COTURN_PASSWORD, COTURN_USER, Coturn, TestDir, bin_path, require_tool};

/// The relay ports of the second (real) server.
const SECOND: RangeInclusive<u16> = 40000..=40999;

/// The two servers: the redirector first, then the one it redirects to. `None` (skipped
/// outside CI) without coturn or, for TLS, openssl.
fn servers(tls: bool, dirs: &(TestDir, TestDir)) -> Option<(Coturn, Coturn)> {
    let turnserver = require_tool("turnserver", "coturn")?;
    let range = ["--min-port=40000", "--max-port=40999"];
    let second = if tls {
        let openssl = require_tool("openssl", "openssl")?;
        Coturn::start_tls_with(&turnserver, &openssl, &dirs.1, &range)
    } else {
        Coturn::start_with(&turnserver, &dirs.1, false, &range)
    };
    let alternate = format!("--alternate-server={}", second.addr_v4());
    let first = if tls {
        let openssl = require_tool("openssl", "openssl")?;
        let tls_alternate = format!(
            "--tls-alternate-server={}",
            second.tls_addr().expect("TLS listener")
        );
        Coturn::start_tls_with(
            &turnserver,
            &openssl,
            &dirs.0,
            &[&alternate, &tls_alternate],
        )
    } else {
        Coturn::start_with(&turnserver, &dirs.0, false, &[&alternate])
    };
    Some((first, second))
}

/// The address icegather and icepeer are given: the first server's, for `transport`.
fn first_addr(first: &Coturn, transport: &str) -> String {
    match transport {
        "tls" => first.tls_addr().expect("TLS listener").to_string(),
        _ => first.addr_v4().to_string(),
    }
}

/// The ports of the relayed candidate lines in `text`.
fn relay_ports(text: &str) -> Vec<u16> {
    text.lines()
        .filter(|l| l.contains(" typ relay"))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let typ = fields.iter().position(|f| *f == "typ")?;
            fields.get(typ.checked_sub(1)?)?.parse().ok()
        })
        .collect()
}

fn turn_args(server: &str, transport: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "--turn",
        server,
        "--turn-user",
        COTURN_USER,
        "--turn-pass",
        COTURN_PASSWORD,
        "--turn-transport",
        transport,
        "--relay-only",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if transport == "tls" {
        args.push("--turn-insecure".into());
    }
    args
}

fn icegather_redirected(transport: &str) {
    let _serial = exclusive();
    let dirs = (TestDir::new(), TestDir::new());
    let Some((first, _second)) = servers(transport == "tls", &dirs) else {
        return;
    };
    let out = Command::new(bin_path("icegather"))
        .args(["--loopback", "--ipv4"])
        .args(turn_args(&first_addr(&first, transport), transport))
        .output()
        .expect("icegather runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let ports = relay_ports(&stdout);
    println!("icegather over {transport}: relay ports {ports:?}");
    assert!(
        !ports.is_empty() && ports.iter().all(|p| SECOND.contains(p)),
        "the relay comes from the second server ({SECOND:?}): {ports:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[test]
fn icegather_follows_a_redirect_over_udp() {
    icegather_redirected("udp");
}

#[test]
fn icegather_follows_a_redirect_over_tcp() {
    icegather_redirected("tcp");
}

#[test]
fn icegather_follows_a_redirect_over_tls() {
    icegather_redirected("tls");
}

/// icepeer relay-only through the redirector, paired with icepeer on its host candidates:
/// its relay is the second server's, and data flows both ways through it.
fn icepeer_redirected(transport: &str, runtime: Runtime) {
    let _serial = exclusive();
    let dirs = (TestDir::new(), TestDir::new());
    let Some((first, _second)) = servers(transport == "tls", &dirs) else {
        return;
    };
    let mut args = turn_args(&first_addr(&first, transport), transport);
    args.extend(["--name".into(), "relayed".into()]);
    let a = icepeer(runtime, true, &args);
    let b = icepeer(runtime, false, &["--name".to_string(), "host".into()]);
    let dir = TestDir::new();
    let outcome = pair_with(a, b, &dir, Duration::from_secs(30), PairOptions::default());
    println!("{}", outcome.report());
    let candidates = outcome
        .a
        .description
        .as_ref()
        .map(|d| d["candidates"].to_string().replace("\",\"", "\n"))
        .unwrap_or_default();
    let ports = relay_ports(&candidates.replace('"', "\n"));
    assert!(
        !ports.is_empty() && ports.iter().all(|p| SECOND.contains(p)),
        "icepeer's relay comes from the second server: {ports:?} in {candidates}"
    );
    for s in [&outcome.a, &outcome.b] {
        assert!(
            s.connected && s.recv > 0 && s.echo_ok,
            "{} connected with data both ways: {}",
            s.command,
            outcome.report()
        );
    }
}

#[test]
fn icepeer_follows_a_redirect_over_udp() {
    icepeer_redirected("udp", Runtime::Tokio);
}

#[test]
fn icepeer_follows_a_redirect_over_tcp() {
    icepeer_redirected("tcp", Runtime::AsyncStd);
}

#[test]
fn icepeer_follows_a_redirect_over_tls() {
    icepeer_redirected("tls", Runtime::Tokio);
}
