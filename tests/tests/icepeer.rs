//! `icepeer`, librice's command-line ICE endpoint, driven through its JSON-lines signalling
//! protocol (`/work/shared/peers/PROTOCOL.md`, the interop peers' protocol):
//!
//! - two `icepeer`s paired on loopback by [`librice_tests::pairing`], in both role
//!   assignments, on tokio and on async-std, with two components, with trickle, and on
//!   IPv6: both connect, data flows both ways (`PING:`/`ECHO:`), both print `echo_ok`,
//!   `done`, and exit 0 with reason `stdin-eof` once their stdin is closed;
//! - bad signalling input (broken JSON, a JSON array, an unparsable candidate, invalid
//!   credentials) is reported on stderr and ignored: the peer keeps answering;
//! - a wrong (valid-looking) remote password keeps the pair from connecting;
//! - refused options exit 2, and `--timeout` ends an idle peer with exit 1;
//! - liveness: with short consent timers, a frozen peer makes the other report
//!   `disconnected` then `reconnected`, a killed one `disconnected` then `failed` with
//!   `consent_lost`, and `consent` lines count the checks.
//!
//! Each pairing prints its outcome (with the connection times) to the test's output.

use std::process::Command;
use std::time::{Duration, Instant};

use librice_tests::pairing::{
    EXIT_GRACE, Output, PairOptions, PairOutcome, PeerLine, PeerProcess, Session, Side,
    SideOutcome, StopReason, pair, pair_with, wait_for_line,
};
use librice_tests::{ChildGuard, Signal, TestDir, bin_path, require_ipv6_loopback, signal};
use serde_json::{Value, json};

/// Bound on a pairing that should succeed at once on loopback.
const PAIR_LIMIT: Duration = Duration::from_secs(20);
/// icepeer's own lifetime bound in the pairings (longer than [`PAIR_LIMIT`]).
const PEER_TIMEOUT: &str = "40";
/// Bound on waiting for one line or one exit of a single icepeer.
const LINE_WAIT: Duration = Duration::from_secs(10);

fn icepeer(role: &str, name: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(bin_path("icepeer"));
    cmd.args(["--role", role, "--name", name, "--timeout", PEER_TIMEOUT])
        .args(extra);
    cmd
}

/// Pairs an `alpha` icepeer (side A, `a_role`) with a `beta` one (side B, the other role),
/// both with `extra` options, and prints the outcome.
fn pair_icepeers(a_role: &str, extra: &[&str], dir: &TestDir) -> PairOutcome {
    let b_role = match a_role {
        "controlling" => "controlled",
        _ => "controlling",
    };
    let outcome = pair(
        icepeer(a_role, "alpha", extra),
        icepeer(b_role, "beta", extra),
        dir,
        PAIR_LIMIT,
    );
    println!("{}", outcome.report());
    outcome
}

/// Asserts everything a successful pairing of `alpha` (A) and `beta` (B) shows, with
/// `components` components whose selected pairs are on `ip`.
fn assert_complete(outcome: &PairOutcome, components: u64, ip: &str) {
    let report = outcome.report();
    assert_eq!(outcome.stop, StopReason::Complete, "{report}");
    for (side, me, peer) in [(Side::A, "alpha", "beta"), (Side::B, "beta", "alpha")] {
        let s = outcome.side(side);
        let who = side.name();
        assert!(s.connected, "{who} connected\n{report}");
        assert!(s.failed.is_none(), "{who} reported no failure\n{report}");
        assert!(
            s.bad_lines.is_empty(),
            "{who}: stdout only JSON objects\n{report}"
        );
        assert_eq!(s.undelivered, 0, "every line reached {who}\n{report}");
        let connected = s.connected_event.as_ref().expect("connected event");
        let pairs = connected["pairs"].as_object().expect("pairs object");
        assert_eq!(
            pairs.len() as u64,
            components,
            "{who}: one pair per component\n{report}"
        );
        for c in 1..=components {
            let pair = &pairs[&c.to_string()];
            for end in ["local", "remote"] {
                let cand = pair[end].as_str().unwrap_or_default();
                assert!(
                    cand.starts_with("candidate:") && cand.contains(&format!(" {ip} ")),
                    "{who}: component {c} {end} candidate {cand:?} is on {ip}\n{report}"
                );
                assert!(
                    cand.split_whitespace().nth(1) == Some(&c.to_string()),
                    "{who}: component {c} {end} candidate {cand:?} has component id {c}\n{report}"
                );
            }
        }
        assert_eq!(connected["local"], pairs["1"]["local"], "{report}");
        assert_eq!(connected["remote"], pairs["1"]["remote"], "{report}");
        assert!(connected["elapsed_ms"].is_number(), "{report}");
        for c in 1..=components {
            // Data both ways: the peer's PINGs, and the echoes of our own.
            let ping = format!("PING:{peer}:{c}:");
            let echo = format!("ECHO:PING:{me}:{c}:");
            assert!(
                s.recv_data.iter().any(|d| d.starts_with(&ping)),
                "{who} received {ping}...\n{report}"
            );
            assert!(
                s.recv_data.iter().any(|d| d.starts_with(&echo)),
                "{who} received {echo}...\n{report}"
            );
            assert!(
                s.echo_ok_components.contains(&c),
                "{who}: echo_ok for component {c}\n{report}"
            );
        }
        assert!(
            s.recv > 0 && s.echo_ok && s.done,
            "{who}: data test done\n{report}"
        );
        let done = s.done_event.as_ref().expect("done event");
        for c in 1..=components {
            assert_stats(&connected["stats"][c.to_string()], false, &report);
            assert_stats(&done["stats"][c.to_string()], true, &report);
        }
        assert_clean_exit(s, 0, "stdin-eof", true, &report);
    }
}

/// Asserts the statistics of a selected pair in a `connected` or `done` event: every
/// field there, checks answered both ways; after the data test (`data`), datagrams and
/// bytes both ways too.
fn assert_stats(stats: &serde_json::Value, data: bool, report: &str) {
    let n = |key: &str| {
        stats[key]
            .as_u64()
            .unwrap_or_else(|| panic!("stats.{key} is a count in {stats}\n{report}"))
    };
    assert!(
        n("requests_sent") + n("requests_received") > 0,
        "{stats}\n{report}"
    );
    assert!(
        n("responses_sent") + n("responses_received") > 0,
        "{stats}\n{report}"
    );
    let _ = n("consent_requests_sent");
    assert!(
        stats["rtt_ms"].is_number() || stats["rtt_ms"].is_null(),
        "{stats}\n{report}"
    );
    let data_counts = [
        "packets_sent",
        "bytes_sent",
        "packets_received",
        "bytes_received",
    ];
    for key in data_counts {
        let count = n(key);
        assert!(
            !data || count > 0,
            "{key} after the data test: {stats}\n{report}"
        );
    }
}

/// Asserts the `exit` event (`reason`, `connected`) and the exit code of one side.
fn assert_clean_exit(s: &SideOutcome, code: i32, reason: &str, connected: bool, report: &str) {
    assert!(!s.killed, "exited by itself, not killed\n{report}");
    assert_eq!(s.exit_code, Some(code), "exit code\n{report}");
    let exit = s.exit_event.as_ref().expect("an exit event");
    assert_eq!(exit["reason"], reason, "exit reason\n{report}");
    assert_eq!(
        exit["connected"], connected,
        "exit event's connected\n{report}"
    );
    assert_eq!(
        s.events.last(),
        Some(exit),
        "the exit event is the last line\n{report}"
    );
}

#[test]
fn pair_tokio_a_controlling() {
    let dir = TestDir::new();
    let outcome = pair_icepeers("controlling", &["--runtime", "tokio"], &dir);
    assert_complete(&outcome, 1, "127.0.0.1");
}

#[test]
fn pair_tokio_a_controlled() {
    let dir = TestDir::new();
    let outcome = pair_icepeers("controlled", &["--runtime", "tokio"], &dir);
    assert_complete(&outcome, 1, "127.0.0.1");
}

#[test]
fn pair_async_std_a_controlling() {
    let dir = TestDir::new();
    let outcome = pair_icepeers("controlling", &["--runtime", "async-std"], &dir);
    assert_complete(&outcome, 1, "127.0.0.1");
}

#[test]
fn pair_async_std_a_controlled() {
    let dir = TestDir::new();
    let outcome = pair_icepeers("controlled", &["--runtime", "async-std"], &dir);
    assert_complete(&outcome, 1, "127.0.0.1");
}

#[test]
fn pair_two_components() {
    let dir = TestDir::new();
    let outcome = pair_icepeers(
        "controlling",
        &["--runtime", "tokio", "--components", "2"],
        &dir,
    );
    assert_complete(&outcome, 2, "127.0.0.1");
    let report = outcome.report();
    for side in [Side::A, Side::B] {
        let s = outcome.side(side);
        let desc = s.description.as_ref().expect("a description");
        let candidates = desc["candidates"].as_array().expect("candidates");
        for c in ["1", "2"] {
            assert!(
                candidates
                    .iter()
                    .any(|x| x.as_str().and_then(|x| x.split_whitespace().nth(1)) == Some(c)),
                "{}: a candidate for component {c}\n{report}",
                side.name()
            );
        }
    }
}

#[test]
fn pair_trickle() {
    let dir = TestDir::new();
    let outcome = pair_icepeers("controlling", &["--runtime", "tokio", "--trickle"], &dir);
    assert_complete(&outcome, 1, "127.0.0.1");
    let report = outcome.report();
    for side in [Side::A, Side::B] {
        let s = outcome.side(side);
        let who = side.name();
        let lines: Vec<Value> = s
            .signalling
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        // Credentials first, without candidates; then one line per candidate; then
        // end-of-candidates.
        let first = &lines[0];
        assert!(
            first["ufrag"].is_string() && first["pwd"].is_string(),
            "{who}\n{report}"
        );
        assert_eq!(first["candidates"], json!([]), "{who}\n{report}");
        assert_eq!(first["end_of_candidates"], false, "{who}\n{report}");
        assert_eq!(
            lines.last(),
            Some(&json!({"end_of_candidates": true})),
            "{who}\n{report}"
        );
        let middle = &lines[1..lines.len() - 1];
        assert!(!middle.is_empty(), "{who}: trickled candidates\n{report}");
        for line in middle {
            let obj = line.as_object().expect("object");
            assert_eq!(
                obj.len(),
                1,
                "{who}: one candidate per line: {line}\n{report}"
            );
            let cand = line["candidate"].as_str().unwrap_or_default();
            assert!(cand.starts_with("candidate:"), "{who}: {line}\n{report}");
        }
    }
}

#[test]
fn pair_ipv6() {
    if !require_ipv6_loopback() {
        return;
    }
    let dir = TestDir::new();
    let outcome = pair_icepeers("controlling", &["--runtime", "tokio", "--ip", "::1"], &dir);
    assert_complete(&outcome, 1, "::1");
}

/// Starts one controlled icepeer on its own (stdin piped and kept open) and waits for its
/// description line.
fn lone_icepeer(
    dir: &TestDir,
    extra: &[&str],
) -> (PeerProcess, std::sync::mpsc::Receiver<PeerLine>) {
    let mut cmd = Command::new(bin_path("icepeer"));
    cmd.args(["--role", "controlled", "--timeout", "30"])
        .args(extra);
    let (mut peer, rx) = PeerProcess::spawn_alone(cmd, dir, "icepeer");
    let mut seen = Vec::new();
    let desc = wait_for_line(&rx, LINE_WAIT, &mut seen, |l| {
        l.json().is_some_and(|v| v.get("ufrag").is_some())
    });
    assert!(
        desc.is_some(),
        "no description within {LINE_WAIT:?}; lines {seen:?}\n{}",
        peer.report()
    );
    (peer, rx)
}

/// Sends `{"cmd":"close"}` and asserts the `exit` event (reason `close`, not connected),
/// that nothing else but protocol lines came out, and exit code 1.
fn close_unconnected(mut peer: PeerProcess, rx: &std::sync::mpsc::Receiver<PeerLine>) {
    assert!(peer.send_line(r#"{"cmd":"close"}"#), "{}", peer.report());
    let mut seen = Vec::new();
    let exit = wait_for_line(rx, LINE_WAIT, &mut seen, |l| l.event() == Some("exit"));
    let Some(exit) = exit else {
        panic!(
            "no exit event after close; lines {seen:?}\n{}",
            peer.report()
        );
    };
    let exit = exit.json().expect("JSON").clone();
    assert_eq!(
        exit,
        json!({"event": "exit", "reason": "close", "connected": false, "done": false}),
        "{}",
        peer.report()
    );
    let status = peer.stop(EXIT_GRACE);
    assert!(!peer.was_killed(), "it exited by itself: {}", peer.report());
    assert_eq!(status.code(), Some(1), "not connected: {}", peer.report());
    let eof = wait_for_line(rx, LINE_WAIT, &mut seen, |_| false);
    assert!(eof.is_none());
    assert!(
        matches!(seen.last().map(|l| &l.output), Some(Output::Eof)),
        "stdout ended after the exit event: {seen:?}"
    );
    let extra: Vec<&PeerLine> = seen
        .iter()
        .filter(|l| !matches!(l.output, Output::Eof) && l.event() != Some("exit"))
        .collect();
    assert!(extra.is_empty(), "nothing after the exit event: {extra:?}");
}

/// Sends one bad line to a lone icepeer: it must print a stderr line containing every one
/// of `expect`, keep running, and still obey `{"cmd":"close"}`.
fn bad_line_is_reported_and_ignored(line: &str, expect: &[&str]) {
    let dir = TestDir::new();
    let (mut peer, rx) = lone_icepeer(&dir, &[]);
    assert!(peer.send_line(line), "{}", peer.report());
    let reported = peer.wait_for_stderr_line(LINE_WAIT, |l| expect.iter().all(|e| l.contains(e)));
    assert!(
        reported.is_some(),
        "no stderr line containing {expect:?} after {line:?}\n{}",
        peer.report()
    );
    println!("{line} -> {}", reported.unwrap_or_default());
    assert!(
        peer.try_status().is_none(),
        "still running: {}",
        peer.report()
    );
    // Nothing on stdout about it: no failed event, no exit.
    let mut seen = Vec::new();
    let _ = wait_for_line(&rx, Duration::from_millis(300), &mut seen, |_| false);
    assert!(seen.is_empty(), "no stdout line after {line:?}: {seen:?}");
    close_unconnected(peer, &rx);
}

#[test]
fn broken_json_is_reported_and_ignored() {
    bad_line_is_reported_and_ignored(r#"{"ufrag": "abcd", "pwd""#, &["not JSON", "ufrag"]);
}

#[test]
fn json_array_is_reported_and_ignored() {
    bad_line_is_reported_and_ignored(
        r#"["candidate", 1, 2]"#,
        &["not an object", "[\\\"candidate"],
    );
}

#[test]
fn unparsable_candidate_is_reported_and_ignored() {
    bad_line_is_reported_and_ignored(
        r#"{"candidate":"candidate:garbage"}"#,
        &["ignoring candidate", "candidate:garbage", "has no"],
    );
}

#[test]
fn invalid_credentials_are_reported_and_ignored() {
    bad_line_is_reported_and_ignored(
        r#"{"ufrag":"a","pwd":"short"}"#,
        &["remote credentials", "ufrag", "shorter than 4"],
    );
}

#[test]
fn all_bad_lines_in_a_row_then_close() {
    let dir = TestDir::new();
    let (mut peer, rx) = lone_icepeer(&dir, &["--runtime", "async-std"]);
    for line in [
        "{not json",
        "[1,2,3]",
        r#"{"candidate":"candidate:garbage"}"#,
        r#"{"ufrag":"a","pwd":"short"}"#,
        r#"{"ufrag":"abcd","pwd":"short"}"#,
        r#"{"candidate":42}"#,
        r#"{"send":"hello","component":7}"#,
        "",
    ] {
        assert!(peer.send_line(line), "{}", peer.report());
    }
    let expect = [
        "not JSON",
        "not an object",
        "ignoring candidate \"candidate:garbage\"",
        "ufrag of 1 characters is shorter than 4",
        "pwd of 5 characters is shorter than 22",
        "candidate that is not a string",
        "no component 7",
    ];
    for e in expect {
        assert!(
            peer.wait_for_stderr_line(LINE_WAIT, |l| l.contains(e))
                .is_some(),
            "a stderr line containing {e:?}\n{}",
            peer.report()
        );
    }
    assert_eq!(
        peer.stderr().lines().count(),
        expect.len(),
        "one stderr line per bad line, none for the empty line\n{}",
        peer.report()
    );
    close_unconnected(peer, &rx);
}

/// Another valid ice-pwd (22 ice-chars), which neither icepeer uses.
const WRONG_PWD: &str = "wrongwrongwrongwrong22";

/// Pairs two icepeers but gives A a wrong password for B (a valid one, just not B's). Runs
/// until both exit by their `--timeout 8`.
fn pair_with_wrong_pwd_for_b(a_role: &str, dir: &TestDir) -> PairOutcome {
    let b_role = match a_role {
        "controlling" => "controlled",
        _ => "controlling",
    };
    let command = |role: &str, name: &str| {
        let mut cmd = Command::new(bin_path("icepeer"));
        cmd.args(["--role", role, "--name", name, "--timeout", "8"]);
        cmd
    };
    let outcome = pair_with(
        command(a_role, "alpha"),
        command(b_role, "beta"),
        dir,
        Duration::from_secs(15),
        PairOptions {
            stop_on_failed: false,
            rewrite: Some(Box::new(|from, line: &Value| {
                if from != Side::B || line.get("pwd").is_none() {
                    return None;
                }
                assert_ne!(line["pwd"], WRONG_PWD);
                let mut line = line.clone();
                line["pwd"] = json!(WRONG_PWD);
                Some(line)
            })),
            ..PairOptions::default()
        },
    );
    println!("{}", outcome.report());
    outcome
}

/// Checks what holds whoever connects: no panic, an `exit` event with reason `timeout`
/// (both ran until `--timeout 8`), exit codes matching `connected`.
fn assert_wrong_pwd_common(outcome: &PairOutcome) {
    let report = outcome.report();
    assert_eq!(outcome.stop, StopReason::BothExited, "{report}");
    assert!(
        outcome.elapsed >= Duration::from_secs(7),
        "they ran until their timeout\n{report}"
    );
    for side in [Side::A, Side::B] {
        let s = outcome.side(side);
        let code = if s.connected { 0 } else { 1 };
        assert_clean_exit(s, code, "timeout", s.connected, &report);
        assert!(!s.stderr().contains("panicked"), "no panic\n{report}");
        assert!(s.bad_lines.is_empty(), "{report}");
    }
}

// What a wrong remote pwd does, as observed (and as RFC 8445/8489 prescribe):
//
// - B answers A's checks, which carry the wrong pwd, with an unsigned 401; over UDP A
//   discards unsigned answers to its checks (RFC 8489 §9.1.5), so each of A's checks only
//   fails when its transaction times out: 39.5 s with the default RTO of 500 ms, Rc 7 and
//   Rm 16. So no `failed` event comes within `--timeout 8`. With `--timeout 55`, A
//   printed `failed` before exiting in both role assignments; B never did.
// - B's checks to A carry A's true pwd and A answers them signed with it, so they succeed.
// - Who connects then depends on who nominates (regular nomination, RFC 8445 §8.1.1).

#[test]
fn wrong_pwd_a_controlling_nobody_connects() {
    // A (controlling) never has a valid pair, so it never nominates; B (controlled) has
    // valid pairs but waits for a nomination that never comes. Nobody connects and no data
    // flows.
    let dir = TestDir::new();
    let outcome = pair_with_wrong_pwd_for_b("controlling", &dir);
    assert_wrong_pwd_common(&outcome);
    let report = outcome.report();
    for side in [Side::A, Side::B] {
        let s = outcome.side(side);
        assert!(!s.connected, "{} never connects\n{report}", side.name());
        assert_eq!(s.failed, None, "no failure within 8 s\n{report}");
        assert_eq!(s.recv, 0, "no data\n{report}");
    }
}

#[test]
fn wrong_pwd_a_controlled_only_b_connects() {
    // B (controlling) has A's true credentials: its nominating check succeeds and B
    // selects the pair (in about 50 ms). A (controlled) accepts the nomination only after
    // its own (triggered) check on that pair succeeds (RFC 8445 §7.3.1.5), and those are
    // rejected by B, so A never selects a pair. B's PINGs still reach A, which cannot echo
    // them without a selected pair; B keeps its selected pair (A keeps answering its
    // checks), receives nothing and exits 0.
    let dir = TestDir::new();
    let outcome = pair_with_wrong_pwd_for_b("controlled", &dir);
    assert_wrong_pwd_common(&outcome);
    let report = outcome.report();
    let (a, b) = (&outcome.a, &outcome.b);
    assert!(b.connected, "B connects\n{report}");
    assert!(!a.connected, "A never connects\n{report}");
    assert_eq!(
        (&a.failed, &b.failed),
        (&None, &None),
        "no failure within 8 s\n{report}"
    );
    assert!(a.recv > 0, "B's PINGs reach A\n{report}");
    assert!(
        a.recv_data.iter().all(|d| d.starts_with("PING:beta:1:")),
        "A receives only B's PINGs\n{report}"
    );
    assert!(
        a.stderr()
            .contains("echo on component 1 failed: the component has no selected pair"),
        "A cannot echo\n{report}"
    );
    assert_eq!(b.recv, 0, "nothing comes back to B\n{report}");
    assert!(!a.echo_ok && !b.echo_ok && !a.done && !b.done, "{report}");
}

/// Runs icepeer with `args` and stdin at EOF, bounded; returns what it left.
fn run_refused(args: &[&str]) -> librice_tests::Finished {
    let dir = TestDir::new();
    let mut cmd = Command::new(bin_path("icepeer"));
    cmd.args(args);
    let finished = ChildGuard::spawn(&mut cmd, &dir, "icepeer").finish(LINE_WAIT);
    println!("{}", finished.report());
    finished
}

/// Asserts a refusal: exit 2, stdout exactly a `failed` event whose reason contains
/// `reason` and an `exit` event with reason `refused`, the reason on stderr too.
fn assert_refused(args: &[&str], reason: &str) {
    let finished = run_refused(args);
    let report = finished.report();
    assert_eq!(finished.status.code(), Some(2), "{report}");
    let lines: Vec<Value> = finished
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout is JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2, "{report}");
    assert_eq!(lines[0]["event"], "failed", "{report}");
    let why = lines[0]["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains(reason),
        "failed reason {why:?} mentions {reason:?}\n{report}"
    );
    assert_eq!(
        lines[1],
        json!({"event": "exit", "reason": "refused", "connected": false, "done": false}),
        "{report}"
    );
    assert!(finished.stderr.contains(reason), "{report}");
}

#[test]
fn unknown_transport_is_a_usage_error() {
    let finished = run_refused(&["--role", "controlling", "--transport", "sctp"]);
    let report = finished.report();
    assert_eq!(finished.status.code(), Some(2), "{report}");
    assert!(finished.stdout.is_empty(), "nothing on stdout\n{report}");
    assert!(
        finished
            .stderr
            .contains("--transport sctp: udp, tcp or all"),
        "{report}"
    );
}

/// Two icepeers with `--transport tcp` (ICE-TCP only): their descriptions carry TCP
/// candidates (passive and active), they connect over a TCP pair, and data goes both ways.
#[test]
fn pair_over_tcp() {
    for runtime in ["tokio", "async-std"] {
        let dir = TestDir::new();
        let args = ["--runtime", runtime, "--transport", "tcp"];
        let outcome = pair(
            icepeer("controlling", "alpha", &args),
            icepeer("controlled", "beta", &args),
            &dir,
            PAIR_LIMIT,
        );
        let report = outcome.report();
        println!("{report}");
        assert_complete(&outcome, 1, "127.0.0.1");
        for side in [Side::A, Side::B] {
            let s = outcome.side(side);
            let candidates =
                s.description.as_ref().expect("a description")["candidates"].to_string();
            assert!(
                candidates.contains("tcptype passive") && candidates.contains("tcptype active"),
                "{candidates}\n{report}"
            );
            assert!(!candidates.contains(" UDP "), "{candidates}\n{report}");
            let local = s.connected_event.as_ref().expect("connected")["local"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(local.contains(" TCP "), "{local}\n{report}");
        }
    }
}

#[test]
fn unknown_turn_transport_is_a_usage_error() {
    let finished = run_refused(&[
        "--role",
        "controlled",
        "--turn",
        "127.0.0.1:3478",
        "--turn-user",
        "test",
        "--turn-pass",
        "test",
        "--turn-transport",
        "dtls",
    ]);
    let report = finished.report();
    assert_eq!(finished.status.code(), Some(2), "{report}");
    assert!(finished.stdout.is_empty(), "nothing on stdout\n{report}");
    assert!(
        finished
            .stderr
            .contains("--turn-transport dtls: udp, tcp or tls"),
        "{report}"
    );
}

#[test]
fn non_loopback_turn_is_refused() {
    assert_refused(
        &[
            "--role",
            "controlled",
            "--turn",
            "192.0.2.1:3478",
            "--turn-user",
            "test",
            "--turn-pass",
            "test",
        ],
        "--turn 192.0.2.1:3478 is not loopback",
    );
}

#[test]
fn non_loopback_ip_is_refused() {
    assert_refused(
        &["--role", "controlling", "--ip", "192.0.2.1"],
        "--ip 192.0.2.1 is not loopback",
    );
}

#[test]
fn missing_role_is_a_usage_error() {
    let finished = run_refused(&["--components", "1"]);
    let report = finished.report();
    assert_eq!(finished.status.code(), Some(2), "{report}");
    assert!(finished.stdout.is_empty(), "nothing on stdout\n{report}");
    assert!(finished.stderr.contains("--role is required"), "{report}");
    assert!(finished.stderr.contains("usage: icepeer"), "{report}");
}

#[test]
fn timeout_with_nothing_on_stdin() {
    let dir = TestDir::new();
    let mut cmd = Command::new(bin_path("icepeer"));
    cmd.args(["--role", "controlling", "--timeout", "1"]);
    let started = Instant::now();
    let (mut peer, rx) = PeerProcess::spawn_alone(cmd, &dir, "icepeer");
    let mut seen = Vec::new();
    let exit = wait_for_line(&rx, LINE_WAIT, &mut seen, |l| l.event() == Some("exit"));
    let Some(exit) = exit else {
        panic!("no exit event; lines {seen:?}\n{}", peer.report());
    };
    let waited = started.elapsed();
    assert_eq!(
        exit.json().expect("JSON"),
        &json!({"event": "exit", "reason": "timeout", "connected": false, "done": false}),
        "{}",
        peer.report()
    );
    assert!(
        waited >= Duration::from_millis(900),
        "exit after about 1 s, not {waited:?}"
    );
    assert!(peer.stdin_open(), "stdin was open all along");
    let status = peer.stop(EXIT_GRACE);
    assert!(!peer.was_killed(), "{}", peer.report());
    assert_eq!(status.code(), Some(1), "{}", peer.report());
    // Before the exit: only the description.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].json().is_some_and(|v| v.get("ufrag").is_some()),
        "{seen:?}"
    );
}

#[test]
fn bad_consent_timeout_is_a_usage_error() {
    let finished = run_refused(&["--role", "controlling", "--consent-timeout", "soon"]);
    let report = finished.report();
    assert_eq!(finished.status.code(), Some(2), "{report}");
    assert!(finished.stdout.is_empty(), "nothing on stdout\n{report}");
    assert!(
        finished
            .stderr
            .contains("--consent-timeout needs seconds, got \"soon\""),
        "{report}"
    );
}

/// icepeer's events named `name` on `side` in a session, with when they were read.
fn session_events<'s>(
    session: &'s Session<'_>,
    side: Side,
    name: &'s str,
) -> Vec<(Instant, &'s Value)> {
    session
        .timeline()
        .iter()
        .filter(|(s, _, v)| *s == side && v["event"] == name)
        .map(|(_, at, v)| (*at, v))
        .collect()
}

// Liveness between two icepeers with short timers (consent checks every 0.2 s, consent
// expiry after 4 s, Disconnected after 1 s of silence): while B is frozen (SIGSTOP) for
// 2 s, A reports `disconnected`, and `reconnected` once B runs again; when B is killed, A
// reports `disconnected`, then `failed` with reason `consent_lost` 4 s (plus polling)
// after B's last answer. A's `consent` lines count its checks, answered by B.
#[test]
fn liveness_events_when_the_peer_freezes_and_dies() {
    let dir = TestDir::new();
    let timers = [
        "--consent-interval",
        "0.2",
        "--consent-timeout",
        "4",
        "--disconnected-timeout",
        "1",
    ];
    let a = icepeer("controlling", "alpha", &timers);
    let mut b = icepeer("controlled", "beta", &timers);
    b.args(["--runtime", "async-std"]);
    let mut session = Session::start(a, b, &dir, None);
    let connected = session.run_until(Instant::now() + PAIR_LIMIT, |s| {
        let (a, b) = (s.side(Side::A), s.side(Side::B));
        a.echo_ok && b.echo_ok
    });
    let report = |session: Session<'_>| session.finish(StopReason::Limit).report();
    if !connected {
        panic!("connected with data both ways\n{}", report(session));
    }
    // Consent checks go out and are answered.
    let checked = session.run_until(Instant::now() + LINE_WAIT, |s| {
        session_events(s, Side::A, "consent")
            .last()
            .is_some_and(|(_, v)| v["requests_sent"].as_u64() >= Some(3))
    });
    if !checked {
        panic!("A sent 3 consent checks\n{}", report(session));
    }
    let last = session_events(&session, Side::A, "consent")
        .last()
        .map(|(_, v)| (*v).clone())
        .expect("a consent line");
    let (sent, answered) = (
        last["requests_sent"].as_u64().unwrap_or(0),
        last["responses_received"].as_u64().unwrap_or(0),
    );
    if answered + 1 < sent || last["component"] != 1 || !last["t_ms"].is_number() {
        panic!("B answers A's consent checks: {last}\n{}", report(session));
    }

    // Frozen for 2 s: A goes disconnected (1 s), not failed (4 s), and comes back.
    let b_pid = session.process(Side::B).id();
    signal(b_pid, false, Signal::Stop).expect("SIGSTOP to our own child");
    let frozen_at = Instant::now();
    let disconnected = session.run_until(frozen_at + Duration::from_secs(2), |s| {
        !session_events(s, Side::A, "disconnected").is_empty()
    });
    // Let the 2 s pass even if it came early.
    session.run_until(frozen_at + Duration::from_secs(2), |_| false);
    signal(b_pid, false, Signal::Cont).expect("SIGCONT to our own child");
    let reconnected = session.run_until(Instant::now() + Duration::from_secs(2), |s| {
        !session_events(s, Side::A, "reconnected").is_empty()
    });
    let failed_early = !session_events(&session, Side::A, "failed").is_empty();
    if !disconnected || !reconnected || failed_early {
        panic!(
            "while B was frozen, A printed disconnected ({disconnected}), then reconnected \
             ({reconnected}) and no failed ({failed_early})\n{}",
            report(session)
        );
    }

    // `reconnected` may come from B's own checks before B has answered one of A's: wait
    // for a fresh consent refresh, so that consent is known to expire 4 s after about now.
    let answered_before = session_events(&session, Side::A, "consent")
        .last()
        .and_then(|(_, v)| v["responses_received"].as_u64())
        .unwrap_or(0);
    let refreshed = session.run_until(Instant::now() + LINE_WAIT, |s| {
        session_events(s, Side::A, "consent")
            .last()
            .and_then(|(_, v)| v["responses_received"].as_u64())
            .is_some_and(|n| n > answered_before)
    });
    if !refreshed {
        panic!(
            "B answers A's consent checks again after SIGCONT\n{}",
            report(session)
        );
    }

    // Killed: disconnected, then consent lost.
    let killed_at = session.kill(Side::B);
    let failed = session.run_until(killed_at + Duration::from_secs(8), |s| {
        !session_events(s, Side::A, "failed").is_empty()
    });
    let events: Vec<(Instant, Value)> = session
        .timeline()
        .iter()
        .filter(|(s, at, _)| *s == Side::A && *at >= killed_at)
        .map(|(_, at, v)| (*at, v.clone()))
        .filter(|(_, v)| v["event"] != "consent")
        .collect();
    let names: Vec<&str> = events
        .iter()
        .filter_map(|(_, v)| v["event"].as_str())
        .collect();
    let failed_event = events.iter().find(|(_, v)| v["event"] == "failed");
    let delay = failed_event.map(|(at, _)| *at - killed_at);
    println!("after the kill A printed {names:?}; failed after {delay:?}");
    let ok = failed
        && names == ["disconnected", "failed"]
        && failed_event.is_some_and(|(_, v)| {
            v["component"] == 1
                && v["reason"] == "consent_lost"
                && v["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("consent lost"))
        })
        && delay.is_some_and(|d| d >= Duration::from_millis(3500) && d <= Duration::from_secs(5));
    if !ok {
        panic!(
            "after B was killed A printed disconnected, then failed with consent_lost \
             3.5 to 5 s later: {events:?}\n{}",
            report(session)
        );
    }
    // A failed component sends nothing: A says so when asked to.
    session
        .process(Side::A)
        .send_line(r#"{"send":"late","component":1}"#);
    let refused = session
        .process(Side::A)
        .wait_for_stderr_line(LINE_WAIT, |l| {
            l.contains("send on component 1 failed: ICE failed: consent lost")
        });
    let outcome = session.finish(StopReason::Failed(Side::A));
    println!("{}", outcome.report());
    assert!(refused.is_some(), "A refuses to send\n{}", outcome.report());
}

/// A full icepeer started controlled and a `--lite` one (also controlled, as an ICE-lite
/// agent must be): the lite side's description carries `"ice_lite":true`, the full side
/// reads it and takes the controlling role (a `role` event) before it checks, the lite
/// side sends no request of its own (its stats count only requests received), and data
/// flows both ways as in every pairing.
#[test]
fn pair_full_and_lite() {
    let dir = TestDir::new();
    let outcome = pair(
        icepeer("controlled", "alpha", &["--runtime", "tokio"]),
        icepeer("controlled", "beta", &["--runtime", "tokio", "--lite"]),
        &dir,
        PAIR_LIMIT,
    );
    let report = outcome.report();
    println!("{report}");
    assert_complete(&outcome, 1, "127.0.0.1");
    let (full, lite) = (outcome.side(Side::A), outcome.side(Side::B));
    let description = |s: &SideOutcome| s.description.clone().expect("a description");
    assert_eq!(description(lite)["ice_lite"], true, "{report}");
    assert!(description(full).get("ice_lite").is_none(), "{report}");
    let roles = |s: &SideOutcome| -> Vec<Value> {
        s.events
            .iter()
            .filter(|e| e["event"] == "role")
            .cloned()
            .collect()
    };
    assert_eq!(
        roles(full),
        [json!({"event": "role", "controlling": true, "peer_lite": true})],
        "{report}"
    );
    assert!(
        roles(lite).is_empty(),
        "the lite side keeps its role\n{report}"
    );
    for event in [&lite.connected_event, &lite.done_event] {
        let stats = &event.as_ref().expect("an event")["stats"]["1"];
        assert_eq!(stats["requests_sent"], 0, "{stats}\n{report}");
        assert_eq!(stats["consent_requests_sent"], 0, "{stats}\n{report}");
    }
}
