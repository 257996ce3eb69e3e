//! The policy for external peers: skip on a developer's machine, fail in CI.

use std::env;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories searched after `PATH`: Debian installs daemons such as `turnserver` in
/// `/usr/sbin`, which is not on every user's `PATH`.
const EXTRA_DIRS: &[&str] = &["/usr/bin", "/usr/sbin"];

/// Whether the tests run in CI: the environment variable `CI` is set to a non-empty value
/// other than `false` or `0`.
///
/// In CI a missing external peer is an error (`.ci/run` installs them all); elsewhere it
/// skips the test that needs it.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Finds the executable `name` on `PATH` (then in `/usr/bin` and `/usr/sbin`).
///
/// When it is missing: in CI (see [`in_ci`]) this panics, telling to install it; otherwise
/// it prints `skipping: <name> not found (install Debian package <debian_package>)` to
/// stderr and returns `None`, and the calling test should return early:
///
/// ```no_run
/// let Some(turnserver) = librice_tests::require_tool("turnserver", "coturn") else {
///     return;
/// };
/// # let _ = turnserver;
/// ```
pub fn require_tool(name: &str, debian_package: &str) -> Option<PathBuf> {
    if let Some(path) = find_executable(name) {
        return Some(path);
    }
    if in_ci() {
        panic!("{name} is required in CI but was not found: install it (.ci/run does)");
    }
    eprintln!("skipping: {name} not found (install Debian package {debian_package})");
    None
}

/// Whether the IPv6 loopback address `::1` can be used, under the same policy as
/// [`require_tool`]: when it cannot, this panics in CI and otherwise prints
/// `skipping: IPv6 loopback ::1 is not available` and returns `false`.
pub fn require_ipv6_loopback() -> bool {
    if UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_ok() {
        return true;
    }
    if in_ci() {
        panic!("IPv6 loopback ::1 is required in CI but cannot be bound on this machine");
    }
    eprintln!("skipping: IPv6 loopback ::1 is not available");
    false
}

/// A Python interpreter that can import `module`, under the same policy as
/// [`require_tool`] (skip with a printed reason, or panic in CI).
///
/// Tried in order: `$LIBRICE_PYTHON`, the CI venv `.ci/venv/bin/python` (which `.ci/run`
/// fills from `.ci/requirements.txt`), then `python3`.
pub fn require_python_module(module: &str, pip_package: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/python");
    let candidates = env::var_os("LIBRICE_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")]);
    for python in candidates {
        let imports = std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if imports {
            return Some(python);
        }
    }
    if in_ci() {
        panic!(
            "Python module {module} is required in CI but cannot be imported: .ci/run installs it"
        );
    }
    eprintln!(
        "skipping: Python module {module} not found (pip install {pip_package}, or run .ci/run)"
    );
    None
}

fn find_executable(name: &str) -> Option<PathBuf> {
    let path_dirs = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
