//! DTLS over connected librice components (`librice_examples::dtls`, on dimpl), on both
//! runtimes: two agents on loopback connect, one runs the DTLS client and the other the
//! server over their components, each checking the other's certificate fingerprint; then
//! application data goes both ways encrypted. A wrong expected fingerprint on either side
//! stops the handshake with `FingerprintMismatch` on that side, before the time bound.
//!
//! `icepeer --dtls` paired with itself (tokio with async-std): `auto` on both sides (the
//! controlled answerer takes the client role), explicit roles, conflicting roles, and a
//! fingerprint changed on its way through the signalling.
//!
//! `icepeer --dtls` with headless Chromium (its own DTLS, inside a private network
//! namespace like the interop suite's Chromium pairings): both roles, by `auto` and
//! explicitly; icepeer must print `dtls_connected` and Chromium report its DTLS transport
//! `connected`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use librice::{Component, Runtime};
use librice_examples::dtls::{
    Certificate, DtlsConfig, DtlsError, DtlsRole, DtlsSession, Fingerprint, HandshakeInfo,
};
use librice_tests::TestDir;
use librice_tests::ice::{Peer, connected, exchange};
use librice_tests::pairing::{PairOutcome, Rewrite, Session, Side, SideOutcome, StopReason};
use librice_tests::peers::{
    Runtime as PeerRuntime, chromium, exclusive, icepeer, in_netns, require_netns, run_in_netns,
};
use librice_tests::runtimes::{on_async_std, on_tokio, timeout};

/// ICE on loopback connects within this.
const ICE_LIMIT: Duration = Duration::from_secs(10);
/// The handshake bound in the successful scenario (it takes milliseconds on loopback).
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// The handshake bound in the failing scenarios: the side that is not told of the failure
/// gives up after this.
const FAILING_LIMIT: Duration = Duration::from_secs(2);

/// Two agents on 127.0.0.1, connected; their components 1.
async fn connected_pair(rt: &Arc<dyn Runtime>) -> (Peer, Peer, Component, Component) {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let a = Peer::new(Arc::clone(rt), true, ip, &[1], None);
    let b = Peer::new(Arc::clone(rt), false, ip, &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, ICE_LIMIT).await;
    connected(rt.as_ref(), &b, ICE_LIMIT).await;
    let (ca, cb) = (a.components[0][0].clone(), b.components[0][0].clone());
    (a, b, ca, cb)
}

async fn handshake_and_data(rt: Arc<dyn Runtime>) {
    let (_a, _b, ca, cb) = connected_pair(&rt).await;
    let (cert_a, cert_b) = (
        Certificate::generate().unwrap(),
        Certificate::generate().unwrap(),
    );
    let (fp_a, fp_b) = (cert_a.fingerprint(), cert_b.fingerprint());
    assert_ne!(fp_a, fp_b, "fresh certificates differ");
    // The server's raw datagrams, to show that the data crossed the component encrypted.
    let wire: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let seen = Arc::clone(&wire);
    let server_input = cb
        .recv()
        .inspect(move |d| seen.lock().unwrap().push(d.clone()));
    let client = DtlsSession::connect(
        Arc::clone(&rt),
        &ca,
        DtlsConfig::new(DtlsRole::Client, cert_a, fp_b).handshake_timeout(HANDSHAKE_LIMIT),
    );
    let server = DtlsSession::handshake(
        Arc::clone(&rt),
        cb.clone(),
        server_input,
        DtlsConfig::new(DtlsRole::Server, cert_b, fp_a).handshake_timeout(HANDSHAKE_LIMIT),
    );
    let (client, server) = timeout(
        rt.as_ref(),
        HANDSHAKE_LIMIT + Duration::from_secs(2),
        futures::future::join(client, server),
    )
    .await
    .expect("the handshake is bounded");
    let mut client = client.unwrap_or_else(|e| panic!("client handshake failed: {e}"));
    let mut server = server.unwrap_or_else(|e| panic!("server handshake failed: {e}"));
    println!("client: {}", client.info());
    println!("server: {}", server.info());
    check_info(client.info(), DtlsRole::Client, fp_b);
    check_info(server.info(), DtlsRole::Server, fp_a);
    assert_eq!(client.info().version, server.info().version);
    assert_eq!(client.info().cipher_suite, server.info().cipher_suite);
    assert_eq!(client.info().srtp_profile, server.info().srtp_profile);

    // Application data both ways, in turn, including a datagram of 1,000 bytes.
    for i in 0..20 {
        let size = if i == 10 { 1000 } else { 20 };
        let up: Vec<u8> = format!("client to server #{i} ")
            .into_bytes()
            .into_iter()
            .cycle()
            .take(size)
            .collect();
        client.send(&up).await.expect("client sends");
        let got = timeout(rt.as_ref(), Duration::from_secs(5), server.recv())
            .await
            .expect("the server receives in time")
            .expect("the server receives");
        assert_eq!(got, up, "intact at the server");
        let down = format!("server to client #{i}").into_bytes();
        server.send(&down).await.expect("server sends");
        let got = timeout(rt.as_ref(), Duration::from_secs(5), client.recv())
            .await
            .expect("the client receives in time")
            .expect("the client receives");
        assert_eq!(got, down, "intact at the client");
    }
    // On the wire the server saw only DTLS records, and application data only encrypted:
    // records of type 23 (application_data), never the plaintext.
    let wire = wire.lock().unwrap().clone();
    assert!(
        wire.iter().all(|d| librice_examples::dtls::is_dtls(d)),
        "only DTLS records reached the server's component"
    );
    // DTLS 1.2 application_data records have type 23; DTLS 1.3 encrypts every record
    // under the unified header, whose first byte is 0b001xxxxx (RFC 9147 §4).
    let app_records = wire
        .iter()
        .filter(|d| d[0] == 23 || d[0] & 0xE0 == 0x20)
        .count();
    assert!(app_records >= 20, "{app_records} application data records");
    let needle = b"client to server";
    assert!(
        !wire
            .iter()
            .any(|d| d.windows(needle.len()).any(|w| w == needle)),
        "plaintext crossed the component"
    );
    client.close().await;
}

fn check_info(info: &HandshakeInfo, role: DtlsRole, peer: Fingerprint) {
    assert_eq!(info.role, role);
    assert_eq!(info.peer_fingerprint, peer);
    assert!(
        info.cipher_suite.is_some_and(|c| c.name() != "unknown"),
        "a known cipher suite: {info:?}"
    );
    assert!(info.elapsed < HANDSHAKE_LIMIT, "{info:?}");
}

/// One side expects a fingerprint the peer's certificate does not have.
async fn wrong_fingerprint(rt: Arc<dyn Runtime>, wrong_side: DtlsRole) {
    let (_a, _b, ca, cb) = connected_pair(&rt).await;
    let (cert_a, cert_b) = (
        Certificate::generate().unwrap(),
        Certificate::generate().unwrap(),
    );
    let (fp_a, fp_b) = (cert_a.fingerprint(), cert_b.fingerprint());
    let wrong = Certificate::generate().unwrap().fingerprint();
    let (expect_b, expect_a) = match wrong_side {
        DtlsRole::Client => (wrong, fp_a),
        DtlsRole::Server => (fp_b, wrong),
    };
    let start = rt.now();
    let client = async {
        let r = DtlsSession::connect(
            Arc::clone(&rt),
            &ca,
            DtlsConfig::new(DtlsRole::Client, cert_a, expect_b).handshake_timeout(FAILING_LIMIT),
        )
        .await;
        (r, rt.now() - start)
    };
    let server = async {
        let r = DtlsSession::connect(
            Arc::clone(&rt),
            &cb,
            DtlsConfig::new(DtlsRole::Server, cert_b, expect_a).handshake_timeout(FAILING_LIMIT),
        )
        .await;
        (r, rt.now() - start)
    };
    let ((client, client_after), (server, server_after)) = timeout(
        rt.as_ref(),
        FAILING_LIMIT + Duration::from_secs(3),
        futures::future::join(client, server),
    )
    .await
    .expect("a failing handshake is bounded too");
    let client = client.map(|s| s.info().clone());
    let server = server.map(|s| s.info().clone());
    println!(
        "wrong on the {wrong_side} side: client {client:?} after {client_after:?}, server {server:?} after {server_after:?}"
    );
    let ((failed, failed_after, actual), other) = match wrong_side {
        DtlsRole::Client => ((client, client_after, fp_b), server),
        DtlsRole::Server => ((server, server_after, fp_a), client),
    };
    match failed {
        Err(DtlsError::FingerprintMismatch {
            expected,
            actual: got,
        }) => {
            assert_eq!(expected, wrong);
            assert_eq!(got, actual);
        }
        other => panic!("the {wrong_side} should fail with FingerprintMismatch, got {other:?}"),
    }
    assert!(
        failed_after < FAILING_LIMIT,
        "the mismatch is found during the handshake, not by its timeout ({failed_after:?})"
    );
    // A client that refuses stops before its last flight, so the server cannot complete.
    // A server that refuses cannot stop the client in DTLS 1.3: the client's Certificate
    // comes in its last flight, after the server's Finished, and without a fatal alert
    // (dimpl has no call to send one) the client sees the handshake as complete; the
    // server delivers none of its data.
    if wrong_side == DtlsRole::Client {
        assert!(
            other.is_err(),
            "the server completed a handshake its client refused: {other:?}"
        );
    }
}

async fn wrong_fingerprint_client(rt: Arc<dyn Runtime>) {
    wrong_fingerprint(rt, DtlsRole::Client).await;
}

async fn wrong_fingerprint_server(rt: Arc<dyn Runtime>) {
    wrong_fingerprint(rt, DtlsRole::Server).await;
}

#[test]
fn handshake_and_data_tokio() {
    on_tokio(handshake_and_data);
}

#[test]
fn handshake_and_data_async_std() {
    on_async_std(handshake_and_data);
}

#[test]
fn wrong_fingerprint_at_client_tokio() {
    on_tokio(wrong_fingerprint_client);
}

#[test]
fn wrong_fingerprint_at_client_async_std() {
    on_async_std(wrong_fingerprint_client);
}

#[test]
fn wrong_fingerprint_at_server_tokio() {
    on_tokio(wrong_fingerprint_server);
}

#[test]
fn wrong_fingerprint_at_server_async_std() {
    on_async_std(wrong_fingerprint_server);
}

/// The `dtls_connected` or `dtls_failed` event of one side of an icepeer pairing.
fn dtls_outcome(side: &SideOutcome) -> Option<&serde_json::Value> {
    side.events
        .iter()
        .find(|e| e["event"] == "dtls_connected" || e["event"] == "dtls_failed")
}

/// icepeer (tokio, controlling) with icepeer (async-std, controlled), both with `--dtls`
/// and the given modes; `rewrite` may change the signalling lines on their way. Waits for
/// both sides' DTLS outcome, or only B's if `b_only`, and returns them (`Null` for A's if
/// it has none yet) with the pairing's outcome.
fn icepeer_dtls(
    a_mode: &str,
    b_mode: &str,
    rewrite: Option<Rewrite<'_>>,
    b_only: bool,
) -> (serde_json::Value, serde_json::Value, PairOutcome) {
    let dir = TestDir::new();
    let args = |mode: &str, name: &str| -> Vec<String> {
        ["--dtls", mode, "--name", name, "--timeout", "20"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let a = icepeer(PeerRuntime::Tokio, true, &args(a_mode, "A"));
    let b = icepeer(PeerRuntime::AsyncStd, false, &args(b_mode, "B"));
    let mut session = Session::start(a, b, &dir, rewrite);
    let limit = std::time::Instant::now() + Duration::from_secs(20);
    session.run_until(limit, |s| {
        (b_only || dtls_outcome(s.side(Side::A)).is_some())
            && dtls_outcome(s.side(Side::B)).is_some()
    });
    let outcome = session.finish(StopReason::Complete);
    let report = outcome.report();
    let a = match dtls_outcome(&outcome.a) {
        Some(a) => a.clone(),
        None if b_only => serde_json::Value::Null,
        None => panic!("A printed no DTLS outcome\n{report}"),
    };
    let b = dtls_outcome(&outcome.b)
        .cloned()
        .unwrap_or_else(|| panic!("B printed no DTLS outcome\n{report}"));
    println!("A ({a_mode}): {a}\nB ({b_mode}): {b}");
    (a, b, outcome)
}

/// Both icepeers connected over DTLS, in the expected roles, each having checked the
/// fingerprint of the other's description.
fn assert_connected(a: &serde_json::Value, b: &serde_json::Value, a_role: &str, o: &PairOutcome) {
    let report = o.report();
    assert_eq!(a["event"], "dtls_connected", "A: {a}\n{report}");
    assert_eq!(b["event"], "dtls_connected", "B: {b}\n{report}");
    let b_role = if a_role == "client" {
        "server"
    } else {
        "client"
    };
    assert_eq!(a["role"], a_role, "{report}");
    assert_eq!(b["role"], b_role, "{report}");
    assert_eq!(a["cipher"], b["cipher"], "{report}");
    assert!(a["cipher"].is_string(), "{report}");
    let desc = |s: &SideOutcome| s.description.clone().expect("a description");
    assert_eq!(a["peer_fingerprint"], desc(&o.b)["fingerprint"], "{report}");
    assert_eq!(b["peer_fingerprint"], desc(&o.a)["fingerprint"], "{report}");
}

#[test]
fn icepeer_dtls_auto() {
    // A controlling offers actpass; B controlled answers active, so B is the client.
    let (a, b, o) = icepeer_dtls("auto", "auto", None, false);
    assert_eq!(o.a.description.as_ref().unwrap()["setup"], "actpass");
    assert_eq!(o.b.description.as_ref().unwrap()["setup"], "active");
    assert_connected(&a, &b, "server", &o);
}

#[test]
fn icepeer_dtls_explicit_roles() {
    let (a, b, o) = icepeer_dtls("client", "server", None, false);
    assert_eq!(o.a.description.as_ref().unwrap()["setup"], "active");
    assert_eq!(o.b.description.as_ref().unwrap()["setup"], "passive");
    assert_connected(&a, &b, "client", &o);
}

#[test]
fn icepeer_dtls_setup_conflict() {
    let (a, b, o) = icepeer_dtls("client", "client", None, false);
    let report = o.report();
    for side in [&a, &b] {
        assert_eq!(side["event"], "dtls_failed", "{report}");
        assert_eq!(side["reason"], "setup_conflict", "{report}");
    }
}

#[test]
fn icepeer_dtls_wrong_fingerprint() {
    // B is told another fingerprint for A: B (the client) refuses A's certificate.
    let wrong = Certificate::generate().unwrap().fingerprint().sdp();
    let rewrite: Rewrite<'_> = Box::new(move |from, line| {
        let mut line = line.clone();
        if from == Side::A && line.get("fingerprint").is_some() {
            line["fingerprint"] = wrong.clone().into();
        }
        Some(line)
    });
    let (_a, b, o) = icepeer_dtls("auto", "auto", Some(rewrite), true);
    let report = o.report();
    assert_eq!(b["event"], "dtls_failed", "{report}");
    assert_eq!(b["reason"], "fingerprint_mismatch", "{report}");
    assert!(
        !o.b.events.iter().any(|e| e["event"] == "dtls_connected"),
        "{report}"
    );
}

/// Runs the Chromium DTLS pairings inside a private network namespace (as the interop
/// suite's `chromium_suite` does: Chromium must see only loopback).
#[test]
fn chromium_dtls_suite() {
    if in_netns() || !require_netns() {
        return;
    }
    if chromium(true, &[]).is_none() {
        return;
    }
    assert!(
        run_in_netns("chromium_dtls_inner_"),
        "Chromium DTLS pairings failed inside the network namespace (see the output above)"
    );
}

/// The last `dtls` state Chromium reported, if any.
fn chromium_dtls_state(side: &SideOutcome) -> Option<&str> {
    side.events
        .iter()
        .rev()
        .find(|e| e["event"] == "dtls")
        .and_then(|e| e["state"].as_str())
}

/// icepeer `--dtls mode` (A) with Chromium (B): both must report the DTLS handshake
/// complete, icepeer in `icepeer_role`, each side having checked the other's fingerprint.
fn chromium_dtls(icepeer_controlling: bool, mode: &str, icepeer_role: &str) {
    let _serial = exclusive();
    let dir = TestDir::new();
    let Some(browser) = chromium(!icepeer_controlling, &[]) else {
        return;
    };
    let args: Vec<String> = ["--dtls", mode, "--timeout", "30"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let ice = icepeer(PeerRuntime::Tokio, icepeer_controlling, &args);
    let mut session = Session::start(ice, browser, &dir, None);
    let limit = std::time::Instant::now() + Duration::from_secs(30);
    session.run_until(limit, |s| {
        let chromium_done = matches!(
            chromium_dtls_state(s.side(Side::B)),
            Some("connected" | "failed" | "closed" | "error")
        );
        dtls_outcome(s.side(Side::A)).is_some() && chromium_done
    });
    let outcome = session.finish(StopReason::Complete);
    let report = outcome.report();
    println!("{report}");
    let ice_event = dtls_outcome(&outcome.a)
        .cloned()
        .unwrap_or_else(|| panic!("icepeer printed no DTLS outcome\n{report}"));
    println!("icepeer: {ice_event}");
    println!(
        "chromium: dtls {:?}, description {:?}",
        chromium_dtls_state(&outcome.b),
        outcome.b.description
    );
    assert_eq!(
        ice_event["event"], "dtls_connected",
        "icepeer's DTLS with Chromium: {ice_event}\n{report}"
    );
    assert_eq!(ice_event["role"], icepeer_role, "{report}");
    assert_eq!(
        chromium_dtls_state(&outcome.b),
        Some("connected"),
        "Chromium's DTLS transport\n{report}"
    );
    let chromium_desc = outcome.b.description.clone().unwrap_or_default();
    assert_eq!(
        ice_event["peer_fingerprint"]
            .as_str()
            .map(str::to_ascii_uppercase),
        chromium_desc["fingerprint"]
            .as_str()
            .map(str::to_ascii_uppercase),
        "icepeer checked Chromium's signalled fingerprint\n{report}"
    );
}

macro_rules! chromium_dtls_pairings {
    ($($name:ident: $controlling:expr, $mode:expr, $role:expr;)*) => {
        $(
            #[test]
            #[ignore = "run inside a network namespace by the `chromium_dtls_suite` test"]
            fn $name() {
                assert!(in_netns(), "run through the `chromium_dtls_suite` test");
                chromium_dtls($controlling, $mode, $role);
            }
        )*
    };
}

chromium_dtls_pairings! {
    // Chromium offers actpass; icepeer answers active (RFC 8842 §5.3) and is the client.
    chromium_dtls_inner_icepeer_controlled_auto: false, "auto", "client";
    // icepeer offers actpass; Chromium answers active, so icepeer is the server.
    chromium_dtls_inner_icepeer_controlling_auto: true, "auto", "server";
    // icepeer answers passive: Chromium is the client.
    chromium_dtls_inner_icepeer_controlled_server: false, "server", "server";
    // icepeer offers active: Chromium answers passive and is the server.
    chromium_dtls_inner_icepeer_controlling_client: true, "client", "client";
}
