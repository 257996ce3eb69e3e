//! Running mDNS tests where multicast works and stays on the machine: a private network
//! namespace, made by the test, with only `lo`, which gets the `MULTICAST` flag and a
//! route for 224.0.0.0/4 (Linux gives `lo` neither by default). Nothing in it reaches any
//! other host.
//!
//! A test calls [`mdns_suite`] from a plain `#[test]`: outside the namespace it re-runs
//! the binary's ignored tests named with its filter inside a new one; inside it returns
//! and those ignored tests do the work.

use std::process::Command;

use crate::tools::{in_ci, require_tool};

/// The variable set inside the namespace made by [`mdns_suite`].
const IN_NETNS: &str = "LIBRICE_MDNS_NETNS";

/// What runs inside the namespace before the test binary: loopback up, multicast on, a
/// multicast route (IPv4; IPv6 multicast on `lo` needs nothing more).
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && \
                     ip route add 224.0.0.0/4 dev lo";

/// True inside the namespace made by [`mdns_suite`].
pub fn in_mdns_netns() -> bool {
    std::env::var_os(IN_NETNS).is_some_and(|v| v == "1")
}

/// Outside the namespace: re-runs the ignored tests of this test binary whose names
/// contain `filter` inside a new private network namespace with multicast on loopback,
/// and panics (naming `what`) if they fail. Without `unshare` or the privilege to make a
/// namespace (root, or user namespaces), it skips with a printed reason, except in CI
/// where it fails. Inside the namespace it does nothing.
pub fn mdns_suite(filter: &str, what: &str) {
    if in_mdns_netns() {
        return;
    }
    let (Some(unshare), Some(_ip)) = (
        require_tool("unshare", "util-linux"),
        require_tool("ip", "iproute2"),
    ) else {
        return;
    };
    // Root makes a plain network namespace; otherwise try a user namespace too.
    let mut prefix: Option<Vec<&str>> = None;
    for flags in [&["--net"][..], &["--user", "--map-root-user", "--net"][..]] {
        let ok = Command::new(&unshare)
            .args(flags)
            .args(["sh", "-c", SETUP])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            prefix = Some(flags.to_vec());
            break;
        }
    }
    let Some(flags) = prefix else {
        let why = "cannot make a network namespace with multicast on loopback \
                   (`unshare --net` and `ip` need root or user namespaces)";
        assert!(!in_ci(), "{why}");
        eprintln!("skipping: {why}");
        return;
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new(&unshare)
        .args(&flags)
        .args([
            "sh",
            "-c",
            &format!("{SETUP} && {IN_NETNS}=1 exec \"$@\""),
            "mdns-netns",
        ])
        .arg(exe)
        .args(["--ignored", "--test-threads=1", "--nocapture", filter])
        .status()
        .expect("unshare runs");
    assert!(
        status.success(),
        "{what} failed inside the network namespace (see the output above)"
    );
}
