//! The real ICE peers the interop suite pairs `icepeer` with: aioice (PyPI), libnice
//! (Debian, through the C wrapper `nice-peer` built here) and headless Chromium (Debian,
//! inside a private network namespace), all speaking `tests/interop/PROTOCOL.md`. The
//! wrappers live in `tests/interop/peers/`, adapted from the shared peer kit so that a clone
//! of the repository is self-contained.
//!
//! A peer that cannot be started skips its test with a printed reason on a developer's
//! machine and fails it in CI, like every external peer ([`crate::require_tool`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::pairing::PairOutcome;
use crate::{bin_path, in_ci, require_python_module, require_tool};

/// The directory of the peer wrappers.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/peers")
}

/// The runtime `icepeer` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `--runtime tokio`.
    Tokio,
    /// `--runtime async-std`.
    AsyncStd,
}

impl Runtime {
    /// The `--runtime` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::AsyncStd => "async-std",
        }
    }
}

/// `icepeer` with `--role` and the given options.
pub fn icepeer(runtime: Runtime, controlling: bool, args: &[String]) -> Command {
    let mut cmd = Command::new(bin_path("icepeer"));
    cmd.arg("--runtime")
        .arg(runtime.name())
        .arg("--role")
        .arg(role(controlling))
        .args(args);
    cmd
}

/// The `--role` value.
pub fn role(controlling: bool) -> &'static str {
    if controlling {
        "controlling"
    } else {
        "controlled"
    }
}

/// The aioice peer, if a Python with aioice is available.
pub fn aioice(controlling: bool, args: &[String]) -> Option<Command> {
    let python = require_python_module("aioice", "aioice==0.13.0")?;
    let mut cmd = Command::new(python);
    cmd.arg(peers_dir().join("aioice_peer.py"))
        .arg("--role")
        .arg(role(controlling))
        .args(args);
    Some(cmd)
}

/// The libnice peer, if it can be built.
pub fn libnice(controlling: bool, args: &[String]) -> Option<Command> {
    let binary = nice_peer_binary()?;
    let mut cmd = Command::new(binary);
    cmd.arg("--role").arg(role(controlling)).args(args);
    Some(cmd)
}

/// The Chromium peer, if Chromium is installed. It must run inside the private network
/// namespace ([`in_netns`]).
pub fn chromium(controlling: bool, args: &[String]) -> Option<Command> {
    let chromium = Path::new("/usr/lib/chromium/chromium");
    if !chromium.exists() {
        let why =
            "Chromium not found at /usr/lib/chromium/chromium (install Debian package chromium)";
        assert!(!in_ci(), "{why}");
        eprintln!("skipping: {why}");
        return None;
    }
    let python = require_tool("python3", "python3")?;
    let mut cmd = Command::new(python);
    cmd.arg(peers_dir().join("chromium_peer.py"))
        .arg("--role")
        .arg(role(controlling))
        .args(args);
    Some(cmd)
}

/// Builds `nice-peer` (once per process) from `tests/interop/peers/libnice/nice_peer.c`
/// against Debian's libnice, into the test's target directory.
pub fn nice_peer_binary() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        // Next to the running test binary (target/<profile>/deps), so `cargo clean` removes it.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let out_dir = exe
            .parent()
            .ok_or("the test binary has no directory")?
            .join("interop-peers");
        std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
        let out = out_dir.join("nice-peer");
        let src = peers_dir().join("libnice/nice_peer.c");
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "nice", "json-glib-1.0", "gio-2.0", "glib-2.0"])
            .output()
            .map_err(|e| format!("pkg-config: {e}"))?;
        if !flags.status.success() {
            return Err(format!(
                "pkg-config finds no libnice/json-glib ({}); install Debian packages libnice-dev libjson-glib-dev",
                String::from_utf8_lossy(&flags.stderr).trim()
            ));
        }
        let flags = String::from_utf8_lossy(&flags.stdout).to_string();
        // Built aside and renamed into place: another test process (a suite re-run in a
        // network namespace) may be running the binary at `out` meanwhile.
        let building = out_dir.join(format!("nice-peer.{}.tmp", std::process::id()));
        let status = Command::new("cc")
            .args(["-O2", "-g", "-Wall", "-o"])
            .arg(&building)
            .arg(&src)
            .args(flags.split_whitespace())
            .status()
            .map_err(|e| format!("cc: {e}"))?;
        if !status.success() {
            return Err(format!("building nice-peer failed: {status}"));
        }
        std::fs::rename(&building, &out).map_err(|e| format!("installing nice-peer: {e}"))?;
        Ok(out)
    });
    match built {
        Ok(path) => Some(path.clone()),
        Err(why) => {
            assert!(!in_ci(), "libnice peer unavailable: {why}");
            eprintln!("skipping: libnice peer unavailable: {why}");
            None
        }
    }
}

/// True inside the private network namespace made by `netns.sh`.
pub fn in_netns() -> bool {
    std::env::var_os("ICE_PEERS_NETNS").is_some_and(|v| v == "1")
}

/// Runs the ignored tests whose names contain `filter` of the current test binary inside a
/// fresh private network namespace (only loopback), and returns whether they passed. Output
/// goes to this process's output.
pub fn run_in_netns(filter: &str) -> bool {
    run_in_netns_with("netns.sh", filter)
}

/// [`run_in_netns`] with another namespace script of `tests/interop/peers` (e.g.
/// `netns_mdns.sh`, whose namespace has a multicast link).
pub fn run_in_netns_with(script: &str, filter: &str) -> bool {
    netns_status(script, filter).success()
}

/// How the ignored tests named with `filter` of the current test binary ended, run inside
/// the namespace the script `script` of `tests/interop/peers` makes.
fn netns_status(script: &str, filter: &str) -> std::process::ExitStatus {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new("sh")
        .arg(peers_dir().join(script))
        .arg(exe)
        .args(["--ignored", "--test-threads=1", "--nocapture", filter])
        .status()
        .unwrap_or_else(|e| panic!("{script} runs: {e}"))
}

/// The slow-loopback suite of a test binary: outside a network namespace, where namespaces
/// can be made, re-runs this binary's ignored tests named with `filter` inside one whose
/// loopback a token bucket slows (`netns_slow.sh`), and panics (naming `what`) if they
/// fail. Without namespaces or the tbf qdisc it skips with a printed reason (a failure in
/// CI). Inside the namespace it does nothing (the inner tests run there).
pub fn slow_netns_suite(filter: &str, what: &str) {
    if in_netns() || !require_netns() {
        return;
    }
    let status = netns_status("netns_slow.sh", filter);
    if status.code() == Some(77) {
        let why = "no tbf qdisc for the slow namespace (see netns_slow.sh)";
        assert!(!in_ci(), "{why}");
        eprintln!("skipping: {why}");
        return;
    }
    assert!(
        status.success(),
        "{what} failed in the slow namespace (see the output above)"
    );
}

/// The Chromium suite of a test binary: outside a network namespace, with namespaces and
/// Chromium available, re-runs this binary's ignored tests named with `filter` inside one
/// and panics (naming `what`) if they fail. Without them it skips with a printed reason
/// (a failure in CI). Inside the namespace it does nothing (the inner tests run there).
pub fn chromium_suite(filter: &str, what: &str) {
    chromium_suite_in("netns.sh", filter, what);
}

/// [`chromium_suite`] inside the namespace `script` makes (see [`run_in_netns_with`]).
pub fn chromium_suite_in(script: &str, filter: &str, what: &str) {
    if in_netns() || !require_netns() || chromium(true, &[]).is_none() {
        return;
    }
    assert!(
        run_in_netns_with(script, filter),
        "{what} failed inside the network namespace (see the output above)"
    );
}

/// Whether private network namespaces can be made here (root and `unshare`). In CI their
/// absence fails the caller; elsewhere it skips with a printed reason.
pub fn require_netns() -> bool {
    let ok = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = "cannot create a network namespace (`unshare --net` needs root and util-linux)";
        assert!(!in_ci(), "{why}");
        eprintln!("skipping: {why}");
    }
    ok
}

/// Serializes pairings within one test process, so that timings are not skewed by
/// pairings running side by side on two cores.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends one pairing's result as a JSON line to `$LIBRICE_INTEROP_RESULTS`, if set (the
/// INTEROP.md script sets it).
pub fn record(
    peer: &str,
    scenario: &str,
    role: &str,
    runtime: &str,
    outcome: &PairOutcome,
    pass: bool,
) {
    let Some(path) = std::env::var_os("LIBRICE_INTEROP_RESULTS") else {
        return;
    };
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let both = match (outcome.a.connect_time, outcome.b.connect_time) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    };
    let line = serde_json::json!({
        "peer": peer, "scenario": scenario, "role": role, "runtime": runtime, "pass": pass,
        "a_connect_ms": ms(outcome.a.connect_time), "b_connect_ms": ms(outcome.b.connect_time),
        "connect_ms": ms(both), "logs": outcome.log_dir.display().to_string(),
        // With restarts: each side's last `reconnected_after_restart` elapsed_ms.
        "a_restart_ms": outcome.a.restart_elapsed_ms(),
        "b_restart_ms": outcome.b.restart_elapsed_ms(),
    });
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}
