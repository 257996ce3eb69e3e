//! mDNS candidates (draft-ietf-mmusic-mdns-ice-candidates) against Chromium with its
//! default hiding of host addresses ON: no `--disable-features=WebRtcHideLocalIpsWithMdns`
//! and no `getUserMedia` (which would lift it). Everything runs inside a private network
//! namespace with a multicast link of its own (`tests/interop/peers/netns_mdns.sh`: a veth
//! pair, 10.99.0.1 and 10.99.0.2, the default route through it; nothing leaves the
//! namespace), where Chromium hides 10.99.0.1 behind a `<uuid>.local` name.
//!
//! - Chromium (hiding) with icepeer on 10.99.0.1, both roles: Chromium's candidates are
//!   `.local` names; icepeer resolves them and its selected pair's remote candidate is the
//!   resolved host candidate, not a peer-reflexive one.
//! - icepeer `--mdns` (hiding too) with Chromium (hiding), both roles: both resolve.
//!
//! Data goes both ways in each (Chromium's DTLS hello to icepeer, icepeer's echo).

use std::time::Duration;

use librice_tests::TestDir;
use librice_tests::pairing::{PairOptions, Side, pair_with};
use librice_tests::peers::{Runtime, chromium, chromium_suite_in, exclusive, icepeer, in_netns};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn chromium_mdns_suite() {
    chromium_suite_in(
        "netns_mdns.sh",
        "chromium_mdns_inner_",
        "Chromium mDNS pairings",
    );
}

/// The candidate lines of a side's description.
fn candidates(d: Option<&serde_json::Value>) -> Vec<String> {
    d.and_then(|d| d["candidates"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn pairing(icepeer_controlling: bool, icepeer_hides: bool) {
    assert!(in_netns(), "run through the `chromium_mdns_suite` test");
    let _serial = exclusive();
    let dir = TestDir::new();
    let mut args: Vec<String> = [
        "--ip",
        "10.99.0.1",
        "--allow-any-address",
        "--name",
        "librice",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if icepeer_hides {
        args.push("--mdns".into());
    }
    let ice = icepeer(Runtime::Tokio, icepeer_controlling, &args);
    // The namespace's veth pair is its own (netns_mdns.sh): nothing leaves it.
    let browser = chromium(
        !icepeer_controlling,
        &["--mdns".to_string(), "--allow-any-address".to_string()],
    )
    .expect("Chromium is there (the suite checked)");
    let outcome = pair_with(
        ice,
        browser,
        &dir,
        LIMIT,
        PairOptions {
            browsers: vec![Side::B],
            // Chromium's name may resolve after the pair was selected on its checks (as a
            // peer-reflexive candidate): icepeer's `exit` tells the pair as it then is.
            linger: Duration::from_secs(3),
            ..PairOptions::default()
        },
    );
    let report = outcome.report();
    println!("{report}");
    let chromium_candidates = candidates(outcome.b.description.as_ref());
    assert!(
        !chromium_candidates.is_empty()
            && chromium_candidates
                .iter()
                .filter(|c| c.contains(" typ host"))
                .all(|c| c.contains(".local ")),
        "Chromium hides its host addresses: {chromium_candidates:?}\n{report}"
    );
    if icepeer_hides {
        let ours = candidates(outcome.a.description.as_ref());
        assert!(
            ours.iter()
                .filter(|c| c.contains(" typ host"))
                .all(|c| c.contains(".local ")),
            "icepeer hides its host addresses: {ours:?}\n{report}"
        );
    }
    assert!(
        outcome.a.connected && outcome.a.recv > 0 && outcome.b.connected && outcome.b.done,
        "connected with data: {report}"
    );
    let remote = outcome
        .a
        .exit_event
        .as_ref()
        .and_then(|e| e["pairs"]["1"]["remote"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        remote.contains(" typ host") && remote.contains(" 10.99.0.1 "),
        "icepeer's remote is Chromium's resolved host candidate, not prflx: {remote}\n{report}"
    );
}

#[test]
#[ignore = "run inside a network namespace by the `chromium_mdns_suite` test"]
fn chromium_mdns_inner_icepeer_controlling() {
    pairing(true, false);
}

#[test]
#[ignore = "run inside a network namespace by the `chromium_mdns_suite` test"]
fn chromium_mdns_inner_icepeer_controlled() {
    pairing(false, false);
}

#[test]
#[ignore = "run inside a network namespace by the `chromium_mdns_suite` test"]
fn chromium_mdns_inner_both_hide_icepeer_controlling() {
    pairing(true, true);
}

#[test]
#[ignore = "run inside a network namespace by the `chromium_mdns_suite` test"]
fn chromium_mdns_inner_both_hide_icepeer_controlled() {
    pairing(false, true);
}
