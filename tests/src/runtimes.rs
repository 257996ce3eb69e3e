//! Running one async scenario body on each runtime, and the small async utilities the
//! facade tests share.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use librice::{BoxFuture, Runtime};

/// Runs `body` on a multi-threaded tokio runtime (2 workers).
pub fn on_tokio<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Runtime>) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runtime = librice_tokio::runtime_from_handle(rt.handle().clone());
    rt.block_on(async { body(runtime).await });
}

/// Runs `body` on async-std (the async-io based adapter).
pub fn on_async_std<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Runtime>) -> Fut,
    Fut: Future<Output = ()>,
{
    async_std::task::block_on(body(librice_async_std::runtime()));
}

/// Awaits `fut` for at most `limit` on `runtime`'s clock; `None` on timeout.
pub async fn timeout<T>(
    runtime: &dyn Runtime,
    limit: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
    let deadline = runtime.now() + limit;
    let sleep = librice::runtime::sleep_until(runtime, deadline).fuse();
    let fut = fut.fuse();
    futures::pin_mut!(sleep, fut);
    futures::select! {
        v = fut => Some(v),
        _ = sleep => None,
    }
}

/// Sleeps for `d` on `runtime`'s clock.
pub async fn sleep(runtime: &dyn Runtime, d: Duration) {
    librice::runtime::sleep_until(runtime, runtime.now() + d).await
}

/// A runtime around another one that counts the tasks spawned through it that are still
/// alive (to show that an agent's tasks end) and, when made by
/// [`CountingRuntime::refusing_first_send`], has each UDP socket refuse its first send:
/// it returns `Pending` and wakes the task at once, as a socket with a full buffer would,
/// or one whose reactor has not yet reported it writable.
#[derive(Debug)]
pub struct CountingRuntime {
    inner: Arc<dyn Runtime>,
    live: Arc<AtomicUsize>,
    refuse_first_send: bool,
    refused: Arc<AtomicUsize>,
    timer_delay: std::time::Duration,
    /// Sends each socket takes per tick, and the tick ([`CountingRuntime::congested`]).
    congestion: Option<(usize, Duration)>,
    /// Sockets read one datagram per call ([`CountingRuntime::unbatched`]).
    unbatched: bool,
}

impl CountingRuntime {
    /// Wraps `inner`; every timer fires `delay` late, as on a loaded machine whose driver
    /// task is not scheduled on time.
    pub fn with_late_timers(
        inner: Arc<dyn Runtime>,
        delay: std::time::Duration,
    ) -> Arc<CountingRuntime> {
        Arc::new(CountingRuntime {
            timer_delay: delay,
            ..Self::plain(inner)
        })
    }

    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Runtime>) -> Arc<CountingRuntime> {
        Arc::new(Self::plain(inner))
    }

    /// Wraps `inner`; each UDP socket refuses its first send.
    pub fn refusing_first_send(inner: Arc<dyn Runtime>) -> Arc<CountingRuntime> {
        Arc::new(CountingRuntime {
            refuse_first_send: true,
            ..Self::plain(inner)
        })
    }

    /// Wraps `inner`; each UDP socket takes at most `per_tick` datagrams per `tick` and
    /// then would block, as a socket whose send buffer is full: it returns `Pending` and
    /// keeps one waker, the one given last, as tokio's and async-io's sockets do, and wakes
    /// it at the next tick, when it takes `per_tick` more. (Over loopback a real socket's
    /// send buffer never fills, whatever `SO_SNDBUF` says: Linux frees it as soon as the
    /// datagram is handed to the loopback interface.) Also counts the sends refused.
    pub fn congested(inner: Arc<dyn Runtime>, per_tick: usize, tick: Duration) -> Arc<Self> {
        Arc::new(CountingRuntime {
            congestion: Some((per_tick, tick)),
            ..Self::plain(inner)
        })
    }

    /// Wraps `inner`; its UDP sockets read one datagram per system call (no `recvmmsg`):
    /// the baseline of batched receiving.
    pub fn unbatched(inner: Arc<dyn Runtime>) -> Arc<Self> {
        Arc::new(CountingRuntime {
            unbatched: true,
            ..Self::plain(inner)
        })
    }

    /// `inner` with nothing changed but the counting.
    fn plain(inner: Arc<dyn Runtime>) -> CountingRuntime {
        CountingRuntime {
            inner,
            live: Arc::new(AtomicUsize::new(0)),
            refuse_first_send: false,
            refused: Arc::new(AtomicUsize::new(0)),
            timer_delay: std::time::Duration::ZERO,
            congestion: None,
            unbatched: false,
        }
    }

    /// Tasks spawned and not yet finished (or dropped).
    pub fn live_tasks(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// How many sends were refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// A timer that fires `delay` after the deadline it is given.
#[derive(Debug)]
struct LateTimer {
    inner: std::pin::Pin<Box<dyn librice::AsyncTimer>>,
    delay: std::time::Duration,
}

impl librice::AsyncTimer for LateTimer {
    fn reset(mut self: std::pin::Pin<&mut Self>, deadline: std::time::Instant) {
        let delay = self.delay;
        self.inner.as_mut().reset(deadline + delay);
    }

    fn poll_elapsed(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.inner.as_mut().poll_elapsed(cx)
    }
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A UDP socket that refuses some sends, as a socket with a full buffer would: the
/// [`Gate`] decides; receiving and the address are the inner socket's.
#[derive(Debug)]
struct GatedSocket {
    inner: Arc<dyn librice::AsyncUdpSocket>,
    gate: Gate,
    refused: Arc<AtomicUsize>,
}

/// Which sends a [`GatedSocket`] refuses.
#[derive(Debug)]
enum Gate {
    /// None: every send goes ahead (the socket only loses its batched receive,
    /// [`CountingRuntime::unbatched`]).
    Open,
    /// The first one ([`CountingRuntime::refusing_first_send`]): `Pending`, and the task is
    /// woken at once.
    FirstSend(std::sync::atomic::AtomicBool),
    /// Those beyond `per_tick` in a tick ([`CountingRuntime::congested`]): sends left in
    /// this tick, and the one waker of a sender waiting for the next.
    Congested(Arc<std::sync::Mutex<(usize, Option<std::task::Waker>)>>),
}

impl Gate {
    /// A congested gate, refilled every `tick` by a thread, until the socket is gone.
    fn congested(per_tick: usize, tick: Duration) -> Gate {
        let state = Arc::new(std::sync::Mutex::new((per_tick, None::<std::task::Waker>)));
        let weak = Arc::downgrade(&state);
        std::thread::spawn(move || {
            while let Some(state) = weak.upgrade() {
                let waker = {
                    let mut s = state.lock().unwrap();
                    s.0 = per_tick;
                    s.1.take()
                };
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
                std::thread::sleep(tick);
            }
        });
        Gate::Congested(state)
    }

    /// True if the send may go ahead; otherwise the waker is handled as the gate says.
    fn admit(&self, cx: &mut std::task::Context<'_>) -> bool {
        match self {
            Gate::Open => true,
            Gate::FirstSend(refused_once) => {
                if refused_once.swap(true, Ordering::SeqCst) {
                    return true;
                }
                cx.waker().wake_by_ref();
                false
            }
            Gate::Congested(state) => {
                let mut s = state.lock().unwrap();
                if s.0 == 0 {
                    // One waker, the last one given: an earlier sender's is forgotten.
                    s.1 = Some(cx.waker().clone());
                    return false;
                }
                s.0 -= 1;
                true
            }
        }
    }
}

impl librice::AsyncUdpSocket for GatedSocket {
    fn poll_recv_from(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<(usize, std::net::SocketAddr)>> {
        self.inner.poll_recv_from(cx, buf)
    }

    fn poll_send_to(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        target: std::net::SocketAddr,
    ) -> std::task::Poll<std::io::Result<usize>> {
        if !self.gate.admit(cx) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return std::task::Poll::Pending;
        }
        self.inner.poll_send_to(cx, buf, target)
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl Runtime for CountingRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        self.live.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(Arc::clone(&self.live));
        self.inner.spawn(Box::pin(async move {
            let _guard = guard;
            future.await;
        }));
    }

    fn now(&self) -> std::time::Instant {
        self.inner.now()
    }

    fn new_timer(
        &self,
        deadline: std::time::Instant,
    ) -> std::pin::Pin<Box<dyn librice::AsyncTimer>> {
        let delay = self.timer_delay;
        let inner = self.inner.new_timer(deadline + delay);
        if delay.is_zero() {
            return inner;
        }
        Box::pin(LateTimer { inner, delay })
    }

    fn wrap_udp_socket(
        &self,
        socket: std::net::UdpSocket,
    ) -> std::io::Result<Arc<dyn librice::AsyncUdpSocket>> {
        let socket = self.inner.wrap_udp_socket(socket)?;
        let gate = match self.congestion {
            Some((per_tick, tick)) => Gate::congested(per_tick, tick),
            None if self.refuse_first_send => Gate::FirstSend(Default::default()),
            None if self.unbatched => Gate::Open,
            None => return Ok(socket),
        };
        Ok(Arc::new(GatedSocket {
            inner: socket,
            gate,
            refused: Arc::clone(&self.refused),
        }))
    }

    fn tcp_connect(
        &self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> BoxFuture<std::io::Result<Box<dyn librice::AsyncTcpStream>>> {
        self.inner.tcp_connect(local, remote)
    }
}
