//! Consent freshness (RFC 7675) against real peers: `icepeer` with `--consent-timeout 10`
//! paired on loopback with aioice, libnice and headless Chromium (the latter inside a
//! private network namespace, like the interop suite). For each peer:
//!
//! 1. both sides connect and data flows both ways;
//! 2. the session is kept up for 24 s with nothing but each side's consent checks and
//!    keepalives: icepeer must report neither `disconnected` nor `failed` (the peer answers
//!    its consent checks), the peer must not report losing the session (icepeer answers
//!    its checks: Chromium's ICE state, aioice's consent-driven close, libnice's component
//!    state), and icepeer's `consent` lines must show our checks at the RFC 7675 §5.1
//!    rate, one per 4 to 6 s (4 to 6 in 24 s), all answered;
//! 3. the peer is killed (SIGKILL; for Chromium, its whole process group), and icepeer
//!    must report `failed` with reason `consent_lost` within 10 + 2 s of the kill (and not
//!    sooner than consent can expire: more than 3.5 s after it, since the last answer came
//!    at most 6 s and a round trip before the kill).
//!
//! The three sessions run side by side (one thread each), so the suite takes about 35 s
//! rather than three times that. The consent timestamps, the count and the kill-to-`failed` delay are
//! printed to the test's output. Each session checks everything it can and reports every
//! violation at the end, so one run shows both a missing consent rate and a missing
//! `consent_lost`.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use librice_tests::pairing::{Session, Side, StopReason};
use librice_tests::peers::{
    Runtime, aioice, chromium, icepeer, in_netns, libnice, require_netns, run_in_netns,
};
use librice_tests::{Signal, TestDir, signal};
use serde_json::Value;

/// icepeer's consent expiry in these sessions (`--consent-timeout`).
const CONSENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How late after the expiry `failed` may come.
const FAIL_SLACK: Duration = Duration::from_secs(2);
/// The shortest kill-to-`failed` delay a correct agent shows: consent expires 10 s after
/// the last answer, which came at most 6 s (the longest consent interval) and a round trip
/// before the kill.
const FAIL_AT_LEAST: Duration = Duration::from_millis(3500);
/// How long the session is kept up once data has flowed.
const HOLD: Duration = Duration::from_secs(24);
/// Consent checks expected in [`HOLD`]: one per 4 to 6 s.
const CHECKS_IN_HOLD: std::ops::RangeInclusive<u64> = 4..=6;
/// Bound on connecting and exchanging data.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// Both processes' `--timeout`: longer than the whole session.
const LIFETIME: &str = "120";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Aioice,
    Libnice,
    Chromium,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::Aioice => "aioice",
            Self::Libnice => "libnice",
            Self::Chromium => "chromium",
        }
    }

    fn command(self, controlling: bool) -> Option<Command> {
        let args = ["--timeout".to_owned(), LIFETIME.to_owned()];
        match self {
            Self::Aioice => aioice(controlling, &args),
            Self::Libnice => libnice(controlling, &args),
            Self::Chromium => chromium(controlling, &args),
        }
    }
}

/// One `consent` line of icepeer: when it was read, and its counters.
#[derive(Debug, Clone, Copy)]
struct ConsentLine {
    at: Instant,
    t_ms: f64,
    sent: u64,
    answered: u64,
}

/// icepeer's (side A's) events named `name`, with when they were read.
fn icepeer_events<'s>(
    session: &'s Session<'_>,
    name: &'s str,
) -> impl Iterator<Item = (Instant, &'s Value)> + 's {
    session
        .timeline()
        .iter()
        .filter(move |(side, _, v)| *side == Side::A && v["event"] == name)
        .map(|(_, at, v)| (*at, v))
}

fn consent_lines(session: &Session<'_>) -> Vec<ConsentLine> {
    icepeer_events(session, "consent")
        .filter(|(_, v)| v["component"] == 1)
        .map(|(at, v)| ConsentLine {
            at,
            t_ms: v["t_ms"].as_f64().unwrap_or(f64::NAN),
            sent: v["requests_sent"].as_u64().unwrap_or(0),
            answered: v["responses_received"].as_u64().unwrap_or(0),
        })
        .collect()
}

/// What the peer (side B) has said so far about losing the session, by its own account:
/// Chromium's `ice_state` events, aioice-peer's "connection closed" (aioice closes the
/// connection when its consent checks go unanswered) and nice-peer's component state log.
fn peer_losses(session: &mut Session<'_>, peer: Peer) -> Vec<String> {
    match peer {
        Peer::Chromium => session
            .timeline()
            .iter()
            .filter(|(side, _, v)| {
                *side == Side::B
                    && v["event"] == "ice_state"
                    && (v["state"] == "disconnected" || v["state"] == "failed")
            })
            .map(|(_, _, v)| v.to_string())
            .collect(),
        Peer::Aioice | Peer::Libnice => session
            .process(Side::B)
            .stderr()
            .lines()
            .filter(|l| {
                l.contains("connection closed")
                    || l.contains("state disconnected")
                    || l.contains("state failed")
            })
            .map(String::from)
            .collect(),
    }
}

/// Kills the peer (side B): Chromium's whole process group (browser, renderer, network
/// service), then its wrapper; the other peers are the process itself. Returns when.
fn kill_peer(session: &mut Session<'_>, peer: Peer, problems: &mut Vec<String>) -> Instant {
    if peer == Peer::Chromium {
        let browser = session
            .timeline()
            .iter()
            .find(|(side, _, v)| *side == Side::B && v["event"] == "browser")
            .and_then(|(_, _, v)| v["pid"].as_u64())
            .and_then(|pid| u32::try_from(pid).ok());
        match browser {
            Some(pid) => {
                if let Err(e) = signal(pid, true, Signal::Kill) {
                    problems.push(format!("cannot kill Chromium's process group {pid}: {e}"));
                }
            }
            None => problems.push("chromium-peer printed no `browser` event with a pid".into()),
        }
    }
    session.kill(Side::B)
}

/// The whole scenario with one peer; panics with every violation found.
fn consent_session(peer: Peer, runtime: Runtime, icepeer_controlling: bool) {
    let dir = TestDir::new();
    let Some(other) = peer.command(!icepeer_controlling) else {
        return;
    };
    let role = if icepeer_controlling {
        "controlling"
    } else {
        "controlled"
    };
    let label = format!("{} with icepeer {role} on {}", peer.name(), runtime.name());
    let consent_timeout = CONSENT_TIMEOUT.as_secs().to_string();
    let ice = icepeer(
        runtime,
        icepeer_controlling,
        &[
            "--consent-timeout".into(),
            consent_timeout,
            "--timeout".into(),
            LIFETIME.into(),
            "--name".into(),
            "librice".into(),
        ],
    );
    let mut session = Session::start(ice, other, &dir, None);
    let mut problems: Vec<String> = Vec::new();

    // 1. Connected, and data both ways (Chromium's `done`: bytes both ways on its pair).
    let browser = peer == Peer::Chromium;
    let established = session.run_until(Instant::now() + SETUP_LIMIT, |s| {
        let (a, b) = (s.side(Side::A), s.side(Side::B));
        let peer_got_data = if browser { b.done } else { b.recv > 0 };
        a.connected && b.connected && a.recv > 0 && peer_got_data
    });
    if !established {
        let outcome = session.finish(StopReason::Limit);
        panic!(
            "{label}: no connection with data both ways within {SETUP_LIMIT:?}\n{}",
            outcome.report()
        );
    }

    // 2. Hold the session: nothing but consent checks and keepalives.
    let peer_losses_before = peer_losses(&mut session, peer).len();
    let hold_start = Instant::now();
    session.run_until(hold_start + HOLD, |s| {
        icepeer_events(s, "disconnected").next().is_some()
            || icepeer_events(s, "failed").next().is_some()
            || s.exited(Side::A)
            || s.exited(Side::B)
    });
    let hold_end = Instant::now();
    for name in ["disconnected", "failed"] {
        for (at, v) in icepeer_events(&session, name) {
            problems.push(format!(
                "icepeer printed {v} {:.1?} into the session",
                at.saturating_duration_since(hold_start)
            ));
        }
    }
    // The peer's own checks are answered too: it did not lose the session.
    for loss in peer_losses(&mut session, peer)
        .into_iter()
        .skip(peer_losses_before)
    {
        problems.push(format!("the peer lost the session during the hold: {loss}"));
    }
    for side in [Side::A, Side::B] {
        if session.exited(side) {
            problems.push(format!("side {} exited during the session", side.name()));
        }
    }
    let lines = consent_lines(&session);
    let upto = |t: Instant| lines.iter().rev().find(|c| c.at <= t).copied();
    let (before, after) = (upto(hold_start), upto(hold_end));
    let sent = |c: Option<ConsentLine>| c.map_or(0, |c| c.sent);
    let checks = sent(after) - sent(before);
    let times: Vec<String> = lines
        .iter()
        .map(|c| format!("{:.0} ({}/{})", c.t_ms, c.answered, c.sent))
        .collect();
    let gaps: Vec<String> = lines
        .windows(2)
        .map(|w| format!("{:.2}", (w[1].t_ms - w[0].t_ms) / 1000.0))
        .collect();
    println!(
        "{label}: {checks} consent checks by icepeer in the {HOLD:?} hold (expected {CHECKS_IN_HOLD:?}); \
         consent lines at t_ms (answered/sent): {}; gaps in s: {}",
        times.join(", "),
        gaps.join(", ")
    );
    if !CHECKS_IN_HOLD.contains(&checks) {
        problems.push(format!(
            "{checks} consent checks in {HOLD:?}, not one per 4-6 s ({CHECKS_IN_HOLD:?})"
        ));
    }
    if let Some(last) = after
        && last.answered + 1 < last.sent
    {
        problems.push(format!(
            "the peer answered {} of icepeer's {} consent checks",
            last.answered, last.sent
        ));
    }

    // 3. Kill the peer: consent must be lost within the consent timeout (+ slack).
    let killed_at = kill_peer(&mut session, peer, &mut problems);
    session.run_until(killed_at + CONSENT_TIMEOUT + FAIL_SLACK * 2, |s| {
        icepeer_events(s, "failed").next().is_some()
    });
    match icepeer_events(&session, "failed")
        .find(|(at, _)| *at >= killed_at)
        .map(|(at, v)| (at - killed_at, v.clone()))
    {
        Some((delay, v)) => {
            println!("{label}: icepeer printed {v} {delay:.2?} after the peer was killed");
            if v["reason"] != "consent_lost" || v["component"] != 1 {
                problems.push(format!(
                    "icepeer failed with {v}, not consent_lost on component 1"
                ));
            }
            if delay > CONSENT_TIMEOUT + FAIL_SLACK || delay < FAIL_AT_LEAST {
                problems.push(format!(
                    "failed came {delay:.2?} after the kill, not within {FAIL_AT_LEAST:?} to {:?}",
                    CONSENT_TIMEOUT + FAIL_SLACK
                ));
            }
        }
        None => problems.push(format!(
            "no `failed` from icepeer within {:?} of killing the peer",
            CONSENT_TIMEOUT + FAIL_SLACK * 2
        )),
    }
    let outcome = session.finish(StopReason::Failed(Side::A));
    println!("{label}:\n{}", outcome.report());
    assert!(
        problems.is_empty(),
        "{label}: consent freshness FAILED:\n  {}\n{}",
        problems.join("\n  "),
        outcome.report()
    );
}

/// The Chromium session, inside its own network namespace (a run of this binary's ignored
/// `chromium_inner_consent`).
fn chromium_in_netns() {
    if !require_netns() || chromium(true, &[]).is_none() {
        return;
    }
    assert!(
        run_in_netns("chromium_inner_consent"),
        "the Chromium consent session failed inside the network namespace (see the output above)"
    );
}

#[test]
fn consent_with_real_peers() {
    if in_netns() {
        return;
    }
    // Runtimes and roles alternate across the peers.
    let runs: Vec<(&str, thread::JoinHandle<()>)> = vec![
        (
            "aioice",
            thread::spawn(|| consent_session(Peer::Aioice, Runtime::Tokio, true)),
        ),
        (
            "libnice",
            thread::spawn(|| consent_session(Peer::Libnice, Runtime::AsyncStd, false)),
        ),
        ("chromium", thread::spawn(chromium_in_netns)),
    ];
    let failed: Vec<&str> = runs
        .into_iter()
        .filter_map(|(name, run)| run.join().is_err().then_some(name))
        .collect();
    assert!(
        failed.is_empty(),
        "consent sessions failed with {failed:?} (their reports are above)"
    );
}

#[test]
#[ignore = "run inside a network namespace by the `consent_with_real_peers` test"]
fn chromium_inner_consent() {
    assert!(in_netns(), "run through the `consent_with_real_peers` test");
    consent_session(Peer::Chromium, Runtime::Tokio, true);
}
