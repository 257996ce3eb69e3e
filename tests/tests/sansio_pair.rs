//! The `sansio_pair` example: two sans-IO agents in one thread connect over loopback and
//! exchange a datagram each way, then the program exits 0 (it gives up by itself after
//! 10 s).

use std::process::Command;

use librice_tests::bin_path;

#[test]
fn two_sans_io_agents_connect_and_exchange() {
    let out = Command::new(bin_path("sansio_pair"))
        .output()
        .expect("sansio_pair runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    for line in [
        "controlling: received \"hello from the controlled agent\"",
        "controlled: received \"hello from the controlling agent\"",
        "controlling: selected pair 127.0.0.1:",
        "controlled: selected pair 127.0.0.1:",
        "done: connected and exchanged one datagram each way",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
