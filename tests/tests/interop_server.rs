//! librice's `iceserver` (ICE-lite echo server on one UDP port, `librice::Endpoint`) with
//! real full ICE agents as clients, each controlling and connected to its own session
//! through an `iceserver --connect` relay (driven by `librice_tests::pairing`): aioice
//! (which reads `"ice_lite":true` as `remote_is_lite`), libnice and headless Chromium, one
//! at a time (libnice also restarting ICE), then 20 at once (8 libnice, 8 aioice, 4 Chromium) on the one port. Each pairing
//! must complete with data both ways (Chromium's evidence: its `done`, bytes both ways on
//! its selected pair), every server-side pair must be on the one UDP port, and each session
//! must echo only its own client's data.
//!
//! Chromium runs only inside a private network namespace, so the `chromium_suite` test
//! re-runs this binary's ignored `chromium_inner_*` tests inside one; the 20-at-once test
//! runs there too, so that all its peers share the namespace.
//!
//! Set `LIBRICE_INTEROP_RESULTS=FILE` to append one JSON line per session.

use std::time::Duration;

use librice_tests::TestDir;
use librice_tests::iceserver::{Client, IceServer, SessionResult, assert_sessions, serve_at_once};
use librice_tests::pairing::{PairOptions, Side, StopReason, pair_with};
use librice_tests::peers::{aioice, chromium, exclusive, in_netns, libnice, record};

const LIMIT: Duration = Duration::from_secs(40);

/// Runs `clients` against one server at once, records and checks every session.
fn serve(scenario: &str, clients: Vec<Client>) {
    let _serial = exclusive();
    let dir = TestDir::new();
    let server = IceServer::start(&dir, &["--timeout", "120"]);
    let (results, all_connected) = serve_at_once(&server, clients, &dir, LIMIT);
    for r in &results {
        let kind = r.label.split('-').next().unwrap_or_default();
        let pass = librice_tests::iceserver::check_session(r, server.udp()).is_ok();
        record(kind, scenario, "iceserver-lite", "tokio", &r.outcome, pass);
    }
    println!("{scenario}: {}", summary(&results));
    assert_sessions(&results, server.udp(), all_connected);
}

/// How many clients of each kind.
fn summary(results: &[SessionResult]) -> String {
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for r in results {
        let kind = r.label.split('-').next().unwrap_or_default();
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn libnice_client(i: usize) -> Option<Client> {
    let label = format!("libnice-{i}");
    Some(Client::named(&label, libnice(true, &[])?, &label))
}

fn aioice_client(i: usize) -> Option<Client> {
    let label = format!("aioice-{i}");
    Some(Client::named(&label, aioice(true, &[])?, &label))
}

fn chromium_client(i: usize) -> Option<Client> {
    Some(Client::browser(
        &format!("chromium-{i}"),
        chromium(true, &[])?,
    ))
}

#[test]
fn aioice_connects() {
    let Some(client) = aioice_client(0) else {
        return;
    };
    serve("one-client", vec![client]);
}

#[test]
fn libnice_connects() {
    let Some(client) = libnice_client(0) else {
        return;
    };
    serve("one-client", vec![client]);
}

/// libnice restarts ICE: its session follows (new credentials, `"restart":true`), reconnects
/// on the same server port, and both echo again.
#[test]
fn libnice_restart() {
    let Some(client) = libnice(true, &["--name".into(), "nice-restarter".into()]) else {
        return;
    };
    let _serial = exclusive();
    let dir = TestDir::new();
    let server = IceServer::start(&dir, &["--timeout", "60"]);
    let options = PairOptions {
        restarts: vec![(Side::A, Duration::from_millis(500))],
        ..PairOptions::default()
    };
    let outcome = pair_with(client, server.relay(), &dir, LIMIT, options);
    let pass = outcome.stop == StopReason::Complete && outcome.b.restarted == ["remote"];
    record(
        "libnice",
        "restart",
        "iceserver-lite",
        "tokio",
        &outcome,
        pass,
    );
    assert!(pass, "{}", outcome.report());
    let again = outcome.b.reconnected_after_restart.last();
    assert_eq!(
        again.and_then(|e| e["local_base"].as_str()),
        Some(server.udp().to_string().as_str()),
        "{}",
        outcome.report()
    );
}

/// Runs the Chromium tests (and the 20-at-once test) inside a private network namespace.
#[test]
fn chromium_suite() {
    librice_tests::peers::chromium_suite("chromium_inner_", "iceserver with Chromium");
}

#[test]
#[ignore = "run inside a network namespace by the `chromium_suite` test"]
fn chromium_inner_chromium_connects() {
    assert!(in_netns(), "run through the `chromium_suite` test");
    let client = chromium_client(0).expect("Chromium (checked by chromium_suite)");
    serve("one-client", vec![client]);
}

#[test]
#[ignore = "run inside a network namespace by the `chromium_suite` test"]
fn chromium_inner_twenty_at_once() {
    assert!(in_netns(), "run through the `chromium_suite` test");
    let clients: Option<Vec<Client>> = (0..8)
        .map(libnice_client)
        .chain((0..8).map(aioice_client))
        .chain((0..4).map(chromium_client))
        .collect();
    let Some(clients) = clients else {
        return;
    };
    serve("20-at-once", clients);
}
