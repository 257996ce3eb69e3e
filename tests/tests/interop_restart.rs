//! ICE restarts (RFC 8445 §9; `tests/interop/PROTOCOL.md`, "Restart") between `icepeer` and
//! real agents on loopback, and libnice's renomination. A restart is injected as
//! `{"cmd":"restart"}` on one side's stdin [`RESTART_AFTER`] after both sides connected; the
//! pairing then runs until both sides printed `reconnected_after_restart` and data flowed on
//! the new pairs.
//!
//! - libnice: icepeer controlling and controlled, the restart started by icepeer and by
//!   libnice, on tokio and on async-std. Both sides must report the restart with the right
//!   `by`, reconnect, and print `echo_ok` again (with `restarts`) after it; icepeer must
//!   have received data after reconnecting.
//! - Chromium (inside a private network namespace, as in `interop.rs`): the same four cases
//!   on both runtimes; icepeer must receive data after reconnecting and Chromium's `stats` must
//!   show bytes both ways on its new pair.
//! - aioice cannot restart (it answers `restart_unsupported`): icepeer restarts, aioice
//!   refuses to follow, and icepeer must keep its connection, with data still flowing both
//!   ways on the old pair.
//! - Baselines for INTEROP.md: libnice restarting with libnice, icepeer with icepeer.
//! - Renomination: icepeer `--renomination` controlling with libnice `--renomination`
//!   controlled (both descriptions carry `"ice_options":["renomination"]`).
//!
//! Each pairing prints both sides' restart-to-new-pair times (`elapsed_ms`). Set
//! `LIBRICE_INTEROP_RESULTS=FILE` to record them (`tests/interop/run_suite.sh`).

use std::process::Command;
use std::time::{Duration, Instant};

use librice_tests::TestDir;
use librice_tests::pairing::{
    PairOptions, PairOutcome, Session, Side, SideOutcome, StopReason, pair_with,
};
use librice_tests::peers::{
    Runtime, aioice, chromium, exclusive, icepeer, in_netns, libnice, record,
};

const LIMIT: Duration = Duration::from_secs(30);

/// How long after both sides connected the restart is requested.
const RESTART_AFTER: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Libnice,
    Chromium,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::Libnice => "libnice",
            Self::Chromium => "chromium",
        }
    }

    fn command(self, controlling: bool, args: &[String]) -> Option<Command> {
        match self {
            Self::Libnice => libnice(controlling, args),
            Self::Chromium => chromium(controlling, args),
        }
    }
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Pairs `a` and `b` with one restart requested from `by`, and returns the outcome. The
/// logs go to `dir`, which the caller keeps until its checks are done (a failed test keeps
/// them).
fn run_restart(
    a: Command,
    b: Command,
    by: Side,
    browsers: Vec<Side>,
    dir: &TestDir,
) -> PairOutcome {
    pair_with(
        a,
        b,
        dir,
        LIMIT,
        PairOptions {
            browsers,
            restarts: vec![(by, RESTART_AFTER)],
            ..PairOptions::default()
        },
    )
}

/// The checks every restart pairing makes: it completed, `by` restarted locally and the
/// other side followed, both reconnected after it, nothing failed or was refused, and data
/// came in after the restart (`recv` on a non-browser side, and with no browser `echo_ok`
/// with `restarts` on both; a browser's `stats` with bytes both ways). Returns the failures.
fn restart_failures(outcome: &PairOutcome, by: Side, browsers: &[Side]) -> Vec<String> {
    let mut why = Vec::new();
    if outcome.stop != StopReason::Complete {
        why.push(format!("stopped: {:?}", outcome.stop));
    }
    for side in [Side::A, Side::B] {
        let s = outcome.side(side);
        let n = side.name();
        let expected = if side == by { "local" } else { "remote" };
        if s.restarted != [expected] {
            why.push(format!(
                "{n} restarted {:?}, expected [{expected}]",
                s.restarted
            ));
        }
        if s.reconnected_after_restart.is_empty() {
            why.push(format!("{n} printed no reconnected_after_restart"));
        }
        if let Some(f) = &s.failed {
            why.push(format!("{n} failed: {f}"));
        }
        if !s.errors.is_empty() {
            why.push(format!("{n} errors: {:?}", s.errors));
        }
        if browsers.contains(&side) {
            if !s.stats_after_restart {
                why.push(format!(
                    "{n} (browser) has no stats with bytes after the restart"
                ));
            }
        } else {
            if s.recv_after_restart == 0 {
                why.push(format!("{n} received no data after reconnecting"));
            }
            if browsers.is_empty() && s.echo_ok_after_restart.is_empty() {
                why.push(format!("{n} printed no echo_ok after the restart"));
            }
        }
    }
    why
}

fn elapsed(outcome: &PairOutcome) -> String {
    format!(
        "restart to new pair: A {:?} ms, B {:?} ms",
        outcome.a.restart_elapsed_ms(),
        outcome.b.restart_elapsed_ms()
    )
}

/// icepeer (side A) paired with `peer` (side B), one restart started by icepeer or by the
/// peer.
fn restart_pairing(peer: Peer, icepeer_controlling: bool, by_icepeer: bool, runtime: Runtime) {
    let _serial = exclusive();
    let Some(other) = peer.command(!icepeer_controlling, &[]) else {
        return;
    };
    let ice = icepeer(runtime, icepeer_controlling, &args(&["--name", "librice"]));
    let browsers = if peer == Peer::Chromium {
        vec![Side::B]
    } else {
        Vec::new()
    };
    let by = if by_icepeer { Side::A } else { Side::B };
    let dir = TestDir::new();
    let outcome = run_restart(ice, other, by, browsers.clone(), &dir);
    let why = restart_failures(&outcome, by, &browsers);
    let scenario = if by_icepeer {
        "restart-by-icepeer"
    } else {
        "restart-by-peer"
    };
    let role = if icepeer_controlling {
        "icepeer-controlling"
    } else {
        "icepeer-controlled"
    };
    record(
        peer.name(),
        scenario,
        role,
        runtime.name(),
        &outcome,
        why.is_empty(),
    );
    println!("{}", outcome.report());
    println!(
        "{} {scenario} {role} {}: {}",
        peer.name(),
        runtime.name(),
        elapsed(&outcome)
    );
    assert!(
        why.is_empty(),
        "restart interop FAILED: peer {}, {scenario}, {role}, runtime {}: {why:?}\n{}",
        peer.name(),
        runtime.name(),
        outcome.report()
    );
}

/// A peer restarting with itself (controlling side A, controlled side B), the restart
/// started by `by`: the baseline for INTEROP.md. `None` for icepeer (on tokio).
fn restart_baseline(peer: Option<Peer>, by: Side) {
    let _serial = exclusive();
    let named = |n: &str| args(&["--name", n]);
    let (a, b, name) = match peer {
        Some(peer) => {
            let (Some(a), Some(b)) = (
                peer.command(true, &named("peerA")),
                peer.command(false, &named("peerB")),
            ) else {
                return;
            };
            (a, b, peer.name())
        }
        None => (
            icepeer(Runtime::Tokio, true, &named("peerA")),
            icepeer(Runtime::Tokio, false, &named("peerB")),
            "icepeer",
        ),
    };
    let dir = TestDir::new();
    let outcome = run_restart(a, b, by, Vec::new(), &dir);
    let why = restart_failures(&outcome, by, &[]);
    let scenario = match by {
        Side::A => "restart-by-controlling",
        Side::B => "restart-by-controlled",
    };
    let runtime = if peer.is_none() { "tokio" } else { "-" };
    record(name, scenario, "self", runtime, &outcome, why.is_empty());
    println!("{}", outcome.report());
    println!("{name} with itself, {scenario}: {}", elapsed(&outcome));
    assert!(
        why.is_empty(),
        "restart baseline FAILED: {name} with itself, {scenario}: {why:?}\n{}",
        outcome.report()
    );
}

macro_rules! libnice_restarts {
    ($($name:ident: $controlling:expr, $by_icepeer:expr;)*) => {
        $(
            mod $name {
                use super::*;
                #[test]
                fn tokio() {
                    restart_pairing(Peer::Libnice, $controlling, $by_icepeer, Runtime::Tokio);
                }
                #[test]
                fn async_std() {
                    restart_pairing(Peer::Libnice, $controlling, $by_icepeer, Runtime::AsyncStd);
                }
            }
        )*
    };
}

libnice_restarts! {
    libnice_restart_by_icepeer_controlling: true, true;
    libnice_restart_by_icepeer_controlled: false, true;
    libnice_restart_by_peer_icepeer_controlling: true, false;
    libnice_restart_by_peer_icepeer_controlled: false, false;
}

#[test]
fn baseline_libnice_restart_by_controlling() {
    restart_baseline(Some(Peer::Libnice), Side::A);
}

#[test]
fn baseline_libnice_restart_by_controlled() {
    restart_baseline(Some(Peer::Libnice), Side::B);
}

#[test]
fn baseline_icepeer_restart_by_controlling() {
    restart_baseline(None, Side::A);
}

#[test]
fn baseline_icepeer_restart_by_controlled() {
    restart_baseline(None, Side::B);
}

/// icepeer restarts against aioice, which cannot follow (it answers `restart_unsupported`
/// and goes on with the old session): icepeer must not fail or crash, and data must still
/// flow both ways on the old pair (bytes injected with `{"send":...}` on each side after the
/// refusal, and their echoes).
#[test]
fn aioice_restart_unsupported() {
    let _serial = exclusive();
    let Some(other) = aioice(false, &[]) else {
        return;
    };
    let ice = icepeer(Runtime::Tokio, true, &args(&["--name", "librice"]));
    let dir = TestDir::new();
    let mut session = Session::start(ice, other, &dir, None);
    let deadline = Instant::now() + LIMIT;
    let connected = session.run_until(deadline, |s| {
        s.side(Side::A).connected && s.side(Side::B).connected
    });
    let report = |session: Session<'_>| session.finish(StopReason::Limit).report();
    if !connected {
        panic!("icepeer and aioice connect: {}", report(session));
    }
    let restart_at = Instant::now() + RESTART_AFTER;
    session.run_until(restart_at, |_| false);
    session.process(Side::A).send_line(r#"{"cmd":"restart"}"#);
    let refused = session.run_until(deadline, |s| {
        !s.side(Side::B).errors.is_empty() || s.side(Side::A).failed.is_some()
    });
    if !refused || session.side(Side::B).errors != ["restart_unsupported"] {
        panic!("aioice refuses the restart: {}", report(session));
    }
    session
        .process(Side::B)
        .send_line(r#"{"send":"from-aioice-after-restart","component":1}"#);
    session
        .process(Side::A)
        .send_line(r#"{"send":"from-icepeer-after-restart","component":1}"#);
    let has = |s: &SideOutcome, data: &str| s.recv_data.iter().any(|d| d == data);
    let flowed = session.run_until(Instant::now() + Duration::from_secs(5), |s| {
        let (a, b) = (s.side(Side::A), s.side(Side::B));
        has(a, "from-aioice-after-restart")
            && has(b, "ECHO:from-aioice-after-restart")
            && has(b, "from-icepeer-after-restart")
            && has(a, "ECHO:from-icepeer-after-restart")
    });
    let outcome = session.finish(StopReason::Complete);
    println!("{}", outcome.report());
    let a = &outcome.a;
    assert!(
        flowed,
        "data both ways on the old pair after the refused restart: {}",
        outcome.report()
    );
    assert_eq!(a.restarted, ["local"], "{}", outcome.report());
    assert!(
        a.failed.is_none()
            && outcome.b.failed.is_none()
            && !a.events.iter().any(|e| e["event"] == "disconnected"),
        "icepeer kept its pair: {}",
        outcome.report()
    );
    assert_eq!(
        a.exit_code,
        Some(0),
        "icepeer exits cleanly: {}",
        outcome.report()
    );
}

/// icepeer `--renomination` (controlling) with libnice `--renomination` (controlled):
/// both advertise it, and they connect with data both ways.
fn renomination(runtime: Runtime) {
    let _serial = exclusive();
    let Some(nice) = libnice(false, &args(&["--renomination"])) else {
        return;
    };
    let ice = icepeer(
        runtime,
        true,
        &args(&["--renomination", "--name", "librice"]),
    );
    let dir = TestDir::new();
    let outcome = pair_with(ice, nice, &dir, LIMIT, PairOptions::default());
    println!("{}", outcome.report());
    let pass =
        outcome.a.complete() && outcome.b.connected && outcome.b.recv > 0 && outcome.b.echo_ok;
    record(
        "libnice",
        "renomination",
        "icepeer-controlling",
        runtime.name(),
        &outcome,
        pass,
    );
    assert!(pass, "renomination pairing FAILED: {}", outcome.report());
    for s in [&outcome.a, &outcome.b] {
        let options = s.description.as_ref().map(|d| d["ice_options"].clone());
        assert_eq!(
            options,
            Some(serde_json::json!(["renomination"])),
            "{} advertises renomination: {}",
            s.command,
            outcome.report()
        );
    }
    assert!(
        outcome.b.stderr().contains("renomination"),
        "libnice runs with support-renomination: {}",
        outcome.report()
    );
    // icepeer used renomination: its nominations carried NOMINATION and no USE-CANDIDATE
    // (the core's renomination tests pin that), so libnice, controlled, selected its pair
    // on a NOMINATION: it accepted it.
    let renominating = outcome
        .a
        .connected_event
        .as_ref()
        .and_then(|e| e["renomination"].as_bool());
    assert_eq!(
        renominating,
        Some(true),
        "icepeer's stream uses renomination: {}",
        outcome.report()
    );
}

#[test]
fn libnice_renomination_tokio() {
    renomination(Runtime::Tokio);
}

#[test]
fn libnice_renomination_async_std() {
    renomination(Runtime::AsyncStd);
}

/// Runs the Chromium restart pairings inside a private network namespace.
#[test]
fn chromium_restart_suite() {
    librice_tests::peers::chromium_suite("chromium_restart_inner_", "Chromium restart pairings");
}

macro_rules! chromium_restarts {
    ($($name:ident: $controlling:expr, $by_icepeer:expr;)*) => {
        $(
            mod $name {
                use super::*;
                #[test]
                #[ignore = "run inside a network namespace by the `chromium_restart_suite` test"]
                fn tokio() {
                    assert!(in_netns(), "run through the `chromium_restart_suite` test");
                    restart_pairing(Peer::Chromium, $controlling, $by_icepeer, Runtime::Tokio);
                }
                #[test]
                #[ignore = "run inside a network namespace by the `chromium_restart_suite` test"]
                fn async_std() {
                    assert!(in_netns(), "run through the `chromium_restart_suite` test");
                    restart_pairing(Peer::Chromium, $controlling, $by_icepeer, Runtime::AsyncStd);
                }
            }
        )*
    };
}

chromium_restarts! {
    chromium_restart_inner_by_icepeer_controlling: true, true;
    chromium_restart_inner_by_icepeer_controlled: false, true;
    chromium_restart_inner_by_peer_icepeer_controlling: true, false;
    chromium_restart_inner_by_peer_icepeer_controlled: false, false;
}
