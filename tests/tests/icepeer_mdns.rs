//! `icepeer --mdns` paired with `icepeer --mdns` ([`librice_tests::pairing`]): both hide
//! their host addresses behind `.local` names, resolve each other's through mDNS, and
//! connect on host pairs at the real loopback addresses; data flows both ways. Both role
//! assignments, one side on tokio and the other on async-std. Multicast runs inside a
//! private network namespace with multicast on loopback (`librice_tests::mdns`). Also
//! `icegather --mdns`, whose host candidates come out as `.local` names.

use std::process::Command;
use std::time::Duration;

use librice_tests::mdns::mdns_suite;
use librice_tests::pairing::{Side, StopReason, pair};
use librice_tests::{TestDir, bin_path};

const PAIR_LIMIT: Duration = Duration::from_secs(30);

fn icepeer(role: &str, name: &str, runtime: &str) -> Command {
    let mut cmd = Command::new(bin_path("icepeer"));
    cmd.args(["--role", role, "--name", name, "--timeout", "45"])
        .args(["--runtime", runtime, "--mdns"]);
    cmd
}

/// Pairs `alpha` (side A, `a_role`, tokio) with `beta` (the other role, async-std).
fn pair_hidden(a_role: &str) {
    let b_role = if a_role == "controlling" {
        "controlled"
    } else {
        "controlling"
    };
    let dir = TestDir::new();
    let outcome = pair(
        icepeer(a_role, "alpha", "tokio"),
        icepeer(b_role, "beta", "async-std"),
        &dir,
        PAIR_LIMIT,
    );
    let report = outcome.report();
    println!("{report}");
    assert_eq!(outcome.stop, StopReason::Complete, "{report}");
    for (side, me, peer) in [(Side::A, "alpha", "beta"), (Side::B, "beta", "alpha")] {
        let s = outcome.side(side);
        let who = side.name();
        // Every candidate signalled is a .local name, none a loopback address.
        let description = s.description.as_ref().expect("a description");
        let candidates: Vec<&str> = description["candidates"]
            .as_array()
            .expect("candidates")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert!(
            !candidates.is_empty(),
            "{who} signalled candidates\n{report}"
        );
        for c in &candidates {
            assert!(
                c.contains(".local ") && !c.contains("127.0.0.1"),
                "{who} hid its address: {c:?}\n{report}"
            );
        }
        // The pair: at the peer's real address, as the host candidate its name resolved
        // to, or as the peer-reflexive one a check from the peer made first (whichever
        // side resolves first checks, the other may learn the peer from that check).
        let remote = selected_remote(s);
        assert!(
            remote.contains(" 127.0.0.1 ")
                && (remote.contains("typ host") || remote.contains("typ prflx")),
            "{who}: selected remote {remote:?} is at the peer's address\n{report}"
        );
        assert!(s.failed.is_none(), "{who} reported no failure\n{report}");
        // Data both ways: the peer's PINGs, and the echoes of our own.
        let ping = format!("PING:{peer}:1:");
        let echo = format!("ECHO:PING:{me}:1:");
        assert!(
            s.recv_data.iter().any(|d| d.starts_with(&ping)),
            "{who} received {ping}...\n{report}"
        );
        assert!(
            s.recv_data.iter().any(|d| d.starts_with(&echo)),
            "{who} received {echo}...\n{report}"
        );
        assert!(s.echo_ok && s.done, "{who}: data test done\n{report}");
        assert_eq!(s.exit_code, Some(0), "{who} exits 0\n{report}");
    }
    // No candidate carried an address, so no pair could be checked before a name was
    // resolved: the side that resolved first selected the resolved host candidate.
    assert!(
        [Side::A, Side::B]
            .iter()
            .any(|&side| selected_remote(outcome.side(side)).contains("typ host")),
        "a side selected the peer's resolved host candidate\n{report}"
    );
}

/// The remote candidate of a side's first selected pair.
fn selected_remote(s: &librice_tests::pairing::SideOutcome) -> String {
    let connected = s.connected_event.as_ref().expect("connected event");
    connected["remote"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn icepeer_mdns_pairings() {
    mdns_suite("netns_icepeer_mdns_", "the icepeer --mdns pairings");
}

#[test]
#[ignore = "runs inside the network namespace made by icepeer_mdns_pairings"]
fn netns_icepeer_mdns_alpha_controlling() {
    pair_hidden("controlling");
}

#[test]
#[ignore = "runs inside the network namespace made by icepeer_mdns_pairings"]
fn netns_icepeer_mdns_alpha_controlled() {
    pair_hidden("controlled");
}

/// `icegather --mdns --loopback` prints its host candidates with `.local` names, never
/// with their addresses, and counts them as named in its summary.
#[test]
#[ignore = "runs inside the network namespace made by icepeer_mdns_pairings"]
fn netns_icepeer_mdns_icegather_prints_names() {
    let out = Command::new(bin_path("icegather"))
        .args(["--mdns", "--loopback", "--ipv4"])
        .output()
        .expect("icegather runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("candidate:"))
        .collect();
    assert!(!lines.is_empty(), "{stdout}");
    for line in &lines {
        assert!(
            line.contains(".local ") && line.contains("typ host") && !line.contains("127.0.0.1"),
            "{line}"
        );
    }
    assert!(
        stdout.contains(&format!("{} host ({} named)", lines.len(), lines.len())),
        "{stdout}"
    );
}
