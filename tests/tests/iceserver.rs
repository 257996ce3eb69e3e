//! librice's `iceserver` (ICE-lite echo server on one UDP port, `librice::Endpoint`) with
//! librice's own `icepeer` as clients, on loopback: 20 full, controlling icepeers connect
//! at once, each through its own session (`iceserver --connect` relays, driven by
//! `librice_tests::pairing`), on each of the server's runtimes. Every pairing must complete
//! with data both ways, every server-side pair must be on the one UDP port, and each session
//! must echo only its own client's data. Also: a client's ICE restart, and clients that
//! misbehave (bad lines, too many sessions) without harm to the server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use librice_tests::TestDir;
use librice_tests::iceserver::{Client, IceServer, assert_sessions, check_session, serve_at_once};
use librice_tests::pairing::{PairOptions, Side, StopReason, pair_with};
use librice_tests::peers::{Runtime, exclusive, icepeer};
use serde_json::Value;

const CLIENTS: usize = 20;
const LIMIT: Duration = Duration::from_secs(30);

fn twenty_icepeers(server_runtime: Runtime) {
    let _serial = exclusive();
    let dir = TestDir::new();
    let server = IceServer::start(
        &dir,
        &["--runtime", server_runtime.name(), "--timeout", "120"],
    );
    let clients = (0..CLIENTS)
        .map(|i| {
            let name = format!("client-{i}");
            Client::named(&name, icepeer(Runtime::Tokio, true, &[]), &name)
        })
        .collect();
    let (results, all_connected) = serve_at_once(&server, clients, &dir, LIMIT);
    println!("iceserver --runtime {}:", server_runtime.name());
    assert_sessions(&results, server.udp(), all_connected);
    for r in &results {
        // The relay exits 0 when its session connected.
        assert_eq!(r.outcome.b.exit_code, Some(0), "{}", r.outcome.report());
        assert_eq!(
            r.outcome.b.exit_reason(),
            Some("stdin-eof"),
            "{}",
            r.outcome.report()
        );
    }
}

#[test]
fn twenty_icepeers_at_once_server_tokio() {
    twenty_icepeers(Runtime::Tokio);
}

#[test]
fn twenty_icepeers_at_once_server_async_std() {
    twenty_icepeers(Runtime::AsyncStd);
}

/// A client that restarts ICE keeps its session: the session follows with new
/// credentials, reconnects and echoes again.
#[test]
fn client_restart() {
    let _serial = exclusive();
    let dir = TestDir::new();
    let server = IceServer::start(&dir, &["--timeout", "60"]);
    let client = icepeer(Runtime::Tokio, true, &["--name".into(), "restarter".into()]);
    let options = PairOptions {
        restarts: vec![(Side::A, Duration::from_millis(500))],
        ..PairOptions::default()
    };
    let outcome = pair_with(client, server.relay(), &dir, LIMIT, options);
    assert_eq!(outcome.stop, StopReason::Complete, "{}", outcome.report());
    assert_eq!(outcome.b.restarted, ["remote"], "{}", outcome.report());
    let again = outcome.b.reconnected_after_restart.last();
    assert_eq!(
        again.and_then(|e| e["local_base"].as_str()),
        Some(server.udp().to_string().as_str()),
        "{}",
        outcome.report()
    );
}

/// Reads the lines a session writes until it closes the connection (bounded).
fn session_lines(mut tcp: TcpStream, send: &[u8]) -> Vec<Value> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    tcp.write_all(send).expect("write");
    BufReader::new(tcp)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect()
}

/// Waits (boundedly) until the server's stderr says that each of `sessions` ended.
fn wait_ended(server: &mut IceServer, sessions: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let err = server.process().stderr();
        if sessions
            .iter()
            .all(|n| err.contains(&format!("session {n} ended")))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sessions {sessions:?} did not end: {}",
            server.process().report()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn failed_reason(lines: &[Value]) -> Option<&str> {
    lines.iter().find(|l| l["event"] == "failed")?["reason"].as_str()
}

/// Bad lines end their own session with `failed` and `exit`; connections beyond
/// `--max-sessions` are refused; the server serves the next client as before.
#[test]
fn bad_clients_do_not_hurt_the_server() {
    let _serial = exclusive();
    let dir = TestDir::new();
    let mut server = IceServer::start(&dir, &["--max-sessions", "2", "--timeout", "60"]);
    let signal = server.signal();
    let connect = || TcpStream::connect(signal).expect("connect");
    let long = vec![b'x'; 70 * 1024];
    let bad: [&[u8]; 4] = [b"not json\n", b"[1,2]\n", b"\xff\xfe\n", &long];
    for input in bad {
        let lines = session_lines(connect(), input);
        assert_eq!(failed_reason(&lines), Some("bad_input"), "{lines:?}");
        assert_eq!(
            lines.last().map(|l| l["event"].clone()),
            Some("exit".into()),
            "{lines:?}"
        );
    }
    // Odd but well-formed lines are refused one by one, and the session goes on.
    let lines = session_lines(
        connect(),
        b"{\"candidate\":42}\n{\"candidate\":\"candidate:x\"}\n{\"ufrag\":\"a\",\"pwd\":\"\"}\n{\"cmd\":\"restart\"}\n{\"cmd\":\"close\"}\n",
    );
    let errors: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "error")
        .filter_map(|l| l["reason"].as_str())
        .collect();
    assert_eq!(
        errors,
        [
            "bad_candidate",
            "bad_candidate",
            "bad_credentials",
            "restart_unsupported"
        ],
        "{lines:?}"
    );
    assert_eq!(
        lines.last().map(|l| l["reason"].clone()),
        Some("close".into())
    );

    // Two sessions held open: a third connection is refused. (The sessions above count
    // out just after closing their connections, before the server says they ended.)
    wait_ended(&mut server, &[1, 2, 3, 4, 5]);
    let held = [connect(), connect()];
    let mut readers: Vec<_> = held
        .iter()
        .map(|t| BufReader::new(t.try_clone().expect("clone")))
        .collect();
    for r in &mut readers {
        let mut first = String::new();
        r.read_line(&mut first).expect("a session line");
        assert!(first.contains("\"session\""), "{first}");
    }
    let refused = session_lines(connect(), b"");
    assert_eq!(
        failed_reason(&refused).map(|r| r.starts_with("server full")),
        Some(true),
        "{refused:?}"
    );
    drop(readers);
    drop(held);

    // Still serving.
    wait_ended(&mut server, &[6, 7]);
    let (results, all_connected) = serve_at_once(
        &server,
        vec![Client::named(
            "after",
            icepeer(Runtime::Tokio, true, &[]),
            "after",
        )],
        &dir,
        LIMIT,
    );
    assert_sessions(&results, server.udp(), all_connected);
    assert!(check_session(&results[0], server.udp()).is_ok());
    assert!(
        server.process().try_status().is_none(),
        "the server is still running"
    );
}

/// A client that opens a session and then says nothing (gone, its connection left open)
/// loses it after `--idle`: the session ends with `exit` reason `idle` and frees its agent.
/// A client that connects is not cut, however long past `--idle` it stays.
#[test]
fn idle_sessions_end_connected_ones_stay() {
    let _serial = exclusive();
    let dir = TestDir::new();
    let mut server = IceServer::start(&dir, &["--idle", "0.5", "--timeout", "60"]);
    let signal = server.signal();
    let started = Instant::now();
    let lines = session_lines(TcpStream::connect(signal).expect("connect"), b"");
    let exit = lines.last().cloned().unwrap_or_default();
    assert_eq!(exit["event"], "exit", "{lines:?}");
    assert_eq!(exit["reason"], "idle", "{lines:?}");
    assert_eq!(exit["connected"], false, "{lines:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "ended before --idle: {:?}",
        started.elapsed()
    );
    wait_ended(&mut server, &[1]);

    // A client that connects and then keeps its session for four idle periods without a
    // line: not ended as idle (its `exit` comes from the end of the pairing).
    let client = icepeer(Runtime::Tokio, true, &["--name".into(), "held".into()]);
    let options = PairOptions {
        linger: Duration::from_secs(2),
        ..PairOptions::default()
    };
    let outcome = pair_with(client, server.relay(), &dir, LIMIT, options);
    assert_eq!(outcome.stop, StopReason::Complete, "{}", outcome.report());
    let exit = outcome.b.exit_event.clone().unwrap_or_default();
    assert_eq!(exit["reason"], "stdin-eof", "{}", outcome.report());
    assert_eq!(exit["connected"], true, "{}", outcome.report());
}
