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

/// Outside a tokio runtime, the helpers return a typed error or panic at the caller's
/// line with a message that says what to do; a handle works anywhere.
#[test]
fn outside_a_runtime() {
    let error = librice_tokio::try_runtime().expect_err("no runtime here");
    assert!(matches!(error, librice_tokio::Error::NoRuntime(_)));
    assert!(error.to_string().contains("runtime_from_handle"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    assert!(matches!(
        TokioRuntime::try_current(),
        Err(librice_tokio::Error::NoRuntime(_))
    ));

    // The panicking forms panic here, in the caller, not inside the library.
    let (file, message) = caught_panic(|| drop(librice_tokio::runtime()));
    assert_eq!(file, file!());
    assert!(message.contains("librice_tokio::runtime()"), "{message}");
    assert!(message.contains("runtime_from_handle"), "{message}");
    let (file, message) = caught_panic(|| drop(TokioRuntime::current()));
    assert_eq!(file, file!());
    assert!(message.contains("TokioRuntime::current()"), "{message}");

    // From outside, by its handle: usable from a foreign executor (a multi-threaded runtime
    // drives its timers in its own threads; a current-thread one only inside block_on).
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = librice_tokio::runtime_from_handle(tokio_rt.handle().clone());
    let start = rt.now();
    futures::executor::block_on(sleep_until(&*rt, start + Duration::from_millis(5)));
    assert!(rt.now() >= start + Duration::from_millis(5));
    let _guard = tokio_rt.enter();
    assert!(TokioRuntime::try_current().is_ok());
    assert!(librice_tokio::try_runtime().is_ok());
}

/// Runs `f`, which must panic, and returns the file the panic was raised in and its
/// message. The panic hook is swapped for the duration (it records only this thread's
/// panic; a test of this binary that panics meanwhile still fails, only unprinted).
fn caught_panic(f: impl FnOnce() + std::panic::UnwindSafe) -> (String, String) {
    let location = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&location);
    let this_thread = std::thread::current().id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == this_thread {
            *seen.lock().unwrap() = info.location().map(|l| l.file().to_owned());
        }
    }));
    let payload = std::panic::catch_unwind(f).expect_err("it panics");
    std::panic::set_hook(previous);
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let file = location.lock().unwrap().take().unwrap_or_default();
    (file, message)
}
