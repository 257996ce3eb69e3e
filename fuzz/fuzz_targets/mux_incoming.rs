//! The `mux_incoming` target: its body, and what it checks, are in
//! `librice-proto/tests/fuzz_regressions/targets/mux_incoming.rs`, which the replay test of
//! crash inputs and seeds runs too (`cargo test -p librice-proto --test fuzz_regressions`).

#![no_main]

#[path = "../../librice-proto/tests/fuzz_regressions/targets/mux_incoming.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
