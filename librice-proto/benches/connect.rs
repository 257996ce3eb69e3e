//! Connection setup CPU: one agent in a `Mux` (lite, or full and controlled) and its full
//! controlling client, created, signalled to each other and driven in-process (an
//! in-process network that delivers at once, virtual time in 10 ms turns, shared with
//! `tests/mux_alloc.rs` and `benches/mux.rs`) until both are connected.
//!
//! - `connect/lite`: a lite agent in the mux and its full client.
//! - `connect/full`: a full agent in the mux and its full client.
//!
//! One iteration is one connect: both agents' creation, gathering, signalling, checks,
//! nomination, and the mux's bookkeeping; dropping them is left out of the timing.
//!
//! Run: `cargo bench -p librice-proto --bench connect`

#[path = "../tests/mux_common/mod.rs"]
mod mux_common;

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use librice_proto::mux::MuxConfig;

use mux_common::{Net, origin};

fn connect(c: &mut Criterion) {
    let mut group = c.benchmark_group("connect");
    let start = origin();
    for (name, lite) in [("lite", true), ("full", false)] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || Net::new(start, MuxConfig::default()),
                |mut net| {
                    net.add_pair(7, lite);
                    assert!(net.connect_all(), "the pair connects");
                    net
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = connect
}
criterion_main!(benches);
