//! librice's runtime conformance check (UDP echo, timers, spawn, TCP) under async-std and
//! under smol.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use librice_async_std::AsyncStdRuntime;
use librice_async_std::librice::Runtime;
use librice_async_std::librice::conformance::{check_runtime as scenario, ipv6_loopback};

/// The runtime for smol: async-io's reactor and timers, smol's spawner.
fn smol_runtime() -> Arc<dyn Runtime> {
    Arc::new(AsyncStdRuntime::with_spawner(|f| smol::spawn(f).detach()))
}

#[test]
fn async_std() {
    async_std::task::block_on(scenario(
        librice_async_std::runtime(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    ));
}

#[test]
fn async_std_ipv6() {
    if let Some(ip) = ipv6_loopback() {
        async_std::task::block_on(scenario(Arc::new(AsyncStdRuntime::default()), ip));
    }
}

#[test]
fn smol() {
    smol::block_on(scenario(smol_runtime(), IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

#[test]
fn smol_ipv6() {
    if let Some(ip) = ipv6_loopback() {
        smol::block_on(scenario(smol_runtime(), ip));
    }
}

/// The runtime is `Debug` (as `Runtime` requires) without showing its spawner.
#[test]
fn debug() {
    let rt = AsyncStdRuntime::with_spawner(|f| smol::spawn(f).detach());
    assert_eq!(format!("{rt:?}"), "AsyncStdRuntime { .. }");
}

/// The helpers need no executor context: `runtime()` is made on a plain thread, outside any
/// executor, and works when driven by a foreign one (async-std's executor and async-io's
/// reactor start on first use). There is nothing to fail, so there is no `try_runtime`.
#[test]
fn made_outside_any_executor() {
    let rt = librice_async_std::runtime();
    futures::executor::block_on(scenario(rt, IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let rt: Arc<dyn Runtime> = Arc::new(AsyncStdRuntime::with_spawner(|f| smol::spawn(f).detach()));
    futures::executor::block_on(scenario(rt, IpAddr::V4(Ipv4Addr::LOCALHOST)));
}
