//! The bodies of the cargo-fuzz targets, one module per target, each with `run(data)`.
//! `fuzz/fuzz_targets/<target>.rs` includes its module and calls `run` on every input, so
//! what the replay runs is what the fuzzer ran.

pub mod agent_incoming;
pub mod candidate_parse;
pub mod mdns_incoming;
pub mod mux_incoming;
pub mod sdp_parse;
pub mod stun_framing;
pub mod stun_parse;
pub mod turn_client_recv;
