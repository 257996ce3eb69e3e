//! librice's runtime conformance check (UDP echo, timers, spawn, TCP) under tokio, plus
//! tokio-specific checks.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use librice_tokio::TokioRuntime;
use librice_tokio::librice::Runtime;
use librice_tokio::librice::conformance::{check_runtime as scenario, ipv6_loopback};
use librice_tokio::librice::runtime::sleep_until;

#[tokio::test]
async fn current_thread() {
    scenario(librice_tokio::runtime(), IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread() {
    scenario(
        Arc::new(TokioRuntime::current()),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    )
    .await;
}

#[tokio::test]
async fn current_thread_ipv6() {
    if let Some(ip) = ipv6_loopback() {
        scenario(librice_tokio::runtime(), ip).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_ipv6() {
    if let Some(ip) = ipv6_loopback() {
        scenario(librice_tokio::runtime(), ip).await;
    }
}

/// `now` and the timers follow tokio's paused clock.
#[tokio::test(start_paused = true)]
async fn paused_clock() {
    let rt = librice_tokio::runtime();
    let start = rt.now();
    let deadline = start + Duration::from_secs(3600);
    sleep_until(&*rt, deadline).await;
    let now = rt.now();
    assert!(now >= deadline);
    assert!(now < deadline + Duration::from_secs(1));
    // The wall clock has not moved by an hour.
    assert!(std::time::Instant::now() < deadline);
}

/// The runtime is usable from another executor: futures built on it are driven by its
/// reactor and timers.
#[test]
fn foreign_executor() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt: Arc<dyn Runtime> = Arc::new(TokioRuntime::new(tokio_rt.handle().clone()));
    futures::executor::block_on(scenario(rt, IpAddr::V4(Ipv4Addr::LOCALHOST)));
}

#[test]
fn outside_a_runtime() {
    assert!(TokioRuntime::try_current().is_none());
    assert!(std::panic::catch_unwind(TokioRuntime::current).is_err());
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = tokio_rt.enter();
    assert!(TokioRuntime::try_current().is_some());
}
