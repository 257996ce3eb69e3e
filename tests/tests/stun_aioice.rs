//! STUN interop on loopback with aioice's STUN codec (PyPI `aioice`, a third-party
//! implementation): `tests/interop/aioice_stun_client.py` sends a Binding request to
//! librice's `stund` over UDP and over TCP (RFC 8489 §6.2.2 framing), on 127.0.0.1 and
//! ::1, and must get back its own address in XOR-MAPPED-ADDRESS.
//!
//! coturn's `turnutils_stunclient` speaks UDP only, so this is the third-party client
//! that exercises `stund` over TCP. Without aioice the tests print why and pass, except in
//! CI, where `.ci/run` installs it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use librice_tests::{ChildGuard, Stund, TestDir, require_ipv6_loopback, require_python_module};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn stund_answers_aioice_over_tcp_on_ipv4() {
    stund_answers_aioice(IpAddr::V4(Ipv4Addr::LOCALHOST), true);
}

#[test]
fn stund_answers_aioice_over_tcp_on_ipv6() {
    stund_answers_aioice(IpAddr::V6(Ipv6Addr::LOCALHOST), true);
}

#[test]
fn stund_answers_aioice_over_udp_on_ipv4() {
    stund_answers_aioice(IpAddr::V4(Ipv4Addr::LOCALHOST), false);
}

#[test]
fn stund_answers_aioice_over_udp_on_ipv6() {
    stund_answers_aioice(IpAddr::V6(Ipv6Addr::LOCALHOST), false);
}

fn stund_answers_aioice(ip: IpAddr, tcp: bool) {
    let Some(python) = require_python_module("aioice", "aioice") else {
        return;
    };
    if ip.is_ipv6() && !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let mut stund = Stund::start(&dir, ip);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/aioice_stun_client.py");
    let mut cmd = Command::new(python);
    cmd.arg(script);
    if tcp {
        cmd.arg("--tcp");
    }
    cmd.arg(ip.to_string()).arg(stund.addr().port().to_string());
    let run = ChildGuard::spawn(&mut cmd, &dir, "aioice_stun_client").finish(CLIENT_TIMEOUT);

    assert!(
        run.status.success(),
        "{}\n{}",
        run.report(),
        stund.process().report()
    );
    let last = run.stdout.lines().last().unwrap_or_default().trim();
    let mapped: SocketAddr = last.parse().unwrap_or_else(|e| {
        panic!(
            "aioice printed {last:?}, not IP:PORT ({e}): {}",
            run.report()
        )
    });
    assert_eq!(mapped.ip(), ip, "wrong mapped address: {}", run.report());
    assert_ne!(mapped.port(), 0, "mapped port 0: {}", run.report());
}
