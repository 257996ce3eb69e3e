//! Replays fuzz inputs through the code the cargo-fuzz targets run: every input kept under
//! `tests/fuzz_regressions/crashes/<target>/` (crashes the fuzzer found, kept as
//! regression tests once fixed) and every seed under `fuzz/corpus/<target>/` (when the
//! repository is there: a packaged crate has no `fuzz/`). `fuzz/fuzz_targets/<target>.rs`
//! includes `targets/<target>.rs`, so both run the same code. `fuzz/README.md` says how a
//! crash becomes a file here.

mod targets;

use std::path::{Path, PathBuf};

/// A target's body: runs one input, panics on a failure.
type Body = fn(&[u8]);

/// (target, its body): every fuzz target whose inputs are replayed here.
const TARGETS: [(&str, Body); 8] = [
    ("agent_incoming", targets::agent_incoming::run),
    ("candidate_parse", targets::candidate_parse::run),
    ("mdns_incoming", targets::mdns_incoming::run),
    ("mux_incoming", targets::mux_incoming::run),
    ("sdp_parse", targets::sdp_parse::run),
    ("stun_framing", targets::stun_framing::run),
    ("stun_parse", targets::stun_parse::run),
    ("turn_client_recv", targets::turn_client_recv::run),
];

fn crashes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/crashes")
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// The files directly in `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every crash input and seed of `target` through `run`; fails naming every input
/// that panics.
fn replay(target: &str) {
    let (_, run) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let mut inputs = files_in(&crashes_dir().join(target));
    inputs.extend(files_in(&corpus_dir().join(target)));
    let mut failed = Vec::new();
    for input in &inputs {
        let data = std::fs::read(input).expect("readable input");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(input.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panic: {failed:#?}",
        failed.len(),
        inputs.len()
    );
}

#[test]
fn agent_incoming() {
    replay("agent_incoming");
}

#[test]
fn candidate_parse() {
    replay("candidate_parse");
}

#[test]
fn mdns_incoming() {
    replay("mdns_incoming");
}

#[test]
fn mux_incoming() {
    replay("mux_incoming");
}

#[test]
fn sdp_parse() {
    replay("sdp_parse");
}

#[test]
fn stun_framing() {
    replay("stun_framing");
}

#[test]
fn stun_parse() {
    replay("stun_parse");
}

#[test]
fn turn_client_recv() {
    replay("turn_client_recv");
}

/// A crash input under a directory no target reads would never be replayed.
#[test]
fn crash_directories_name_targets() {
    let Ok(entries) = std::fs::read_dir(crashes_dir()) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "{} is not named after a fuzz target replayed here",
                path.display()
            );
        }
    }
}
