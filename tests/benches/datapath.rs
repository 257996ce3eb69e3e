//! Data-path benchmark: datagrams per second through two connected librice components over
//! loopback, against a raw UDP socket pair of the same runtime (`tokio::net::UdpSocket`,
//! `async_std::net::UdpSocket`), in the same run, on tokio and on async-std. Also a raw
//! pair through librice's adapter for that runtime (`Runtime::wrap_udp_socket`, the
//! sockets the agents use), to tell what the adapter does from what the agent does. Three
//! librice paths: the components' `send` and `recv` (a buffer per datagram), their
//! datagram handles (`DatagramSender::send`, `Datagram::recv` into one buffer, as the raw
//! paths do), and the handles with the sender giving each credit's datagrams at once
//! (`DatagramSender::send_segments`, UDP GSO on Linux). BENCHMARKS.md records the ratios.
//!
//! Both paths move 1,000-byte datagrams one way under the same flow control: the sender
//! may run at most 64 datagrams ahead of what the receiver has counted (credits of 32), so
//! loopback never overflows a socket buffer and nothing is lost.
//!
//! Run: `cargo bench -p librice-tests --bench datapath`

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group};
use futures::StreamExt;
use futures::channel::mpsc;
use librice::{AsyncUdpSocket, Component, Datagram, DatagramSender, Runtime};
use librice_tests::ice::{Peer, connected, exchange};

const PAYLOAD: usize = 1000;
const CREDIT: u64 = 32;

/// Moves `n` datagrams of [`PAYLOAD`] bytes with `send` while `recv` takes them, the
/// sender at most two credits of [`CREDIT`] datagrams ahead; returns the time taken.
async fn batch(
    n: u64,
    mut send: impl AsyncFnMut(&[u8]),
    mut recv: impl AsyncFnMut(&mut [u8]),
) -> Duration {
    let (credit_tx, mut credit_rx) = mpsc::unbounded::<()>();
    let data = vec![0x5a; PAYLOAD];
    let start = Instant::now();
    let sender = async {
        let mut credits = 2u64;
        for i in 0..n {
            if i % CREDIT == 0 {
                if credits == 0 {
                    credit_rx.next().await;
                } else {
                    credits -= 1;
                }
            }
            send(&data).await;
        }
    };
    let receiver = async {
        let mut buf = vec![0u8; 2048];
        for i in 1..=n {
            recv(&mut buf).await;
            if i % CREDIT == 0 {
                let _ = credit_tx.unbounded_send(());
            }
        }
    };
    futures::join!(sender, receiver);
    start.elapsed()
}

/// A runtime's own UDP socket, used directly.
trait RawSocket {
    fn local_addr(&self) -> SocketAddr;
    async fn send_to(&self, data: &[u8], to: SocketAddr);
    async fn recv_from(&self, buf: &mut [u8]);
}

impl RawSocket for tokio::net::UdpSocket {
    fn local_addr(&self) -> SocketAddr {
        tokio::net::UdpSocket::local_addr(self).unwrap()
    }

    async fn send_to(&self, data: &[u8], to: SocketAddr) {
        tokio::net::UdpSocket::send_to(self, data, to)
            .await
            .unwrap();
    }

    async fn recv_from(&self, buf: &mut [u8]) {
        tokio::net::UdpSocket::recv_from(self, buf).await.unwrap();
    }
}

impl RawSocket for async_std::net::UdpSocket {
    fn local_addr(&self) -> SocketAddr {
        async_std::net::UdpSocket::local_addr(self).unwrap()
    }

    async fn send_to(&self, data: &[u8], to: SocketAddr) {
        async_std::net::UdpSocket::send_to(self, data, to)
            .await
            .unwrap();
    }

    async fn recv_from(&self, buf: &mut [u8]) {
        async_std::net::UdpSocket::recv_from(self, buf)
            .await
            .unwrap();
    }
}

/// A socket through librice's adapter for the runtime.
impl RawSocket for Arc<dyn AsyncUdpSocket> {
    fn local_addr(&self) -> SocketAddr {
        AsyncUdpSocket::local_addr(self.as_ref()).unwrap()
    }

    async fn send_to(&self, data: &[u8], to: SocketAddr) {
        librice::runtime::send_to(self.as_ref(), data, to)
            .await
            .unwrap();
    }

    async fn recv_from(&self, buf: &mut [u8]) {
        librice::runtime::recv_from(self.as_ref(), buf)
            .await
            .unwrap();
    }
}

/// A UDP socket pair (the runtime's own, or through the adapter): `send_to` and
/// `recv_from` into one buffer.
async fn raw_batch(a: &impl RawSocket, b: &impl RawSocket, to: SocketAddr, n: u64) -> Duration {
    batch(
        n,
        async |data| a.send_to(data, to).await,
        async |buf| b.recv_from(buf).await,
    )
    .await
}

/// The components' `send` and `recv` (a buffer per datagram).
async fn ice_batch(a: &Component, b: &Component, n: u64) -> Duration {
    let mut rx = b.recv();
    batch(
        n,
        async |data| a.send(data).await.unwrap(),
        async |_| {
            rx.next().await.unwrap();
        },
    )
    .await
}

/// The datagram handles: a sender, and a receiver into one buffer.
async fn handle_batch(a: &mut DatagramSender, b: &mut Datagram, n: u64) -> Duration {
    batch(
        n,
        async |data| a.send(data).await.unwrap(),
        async |buf| {
            b.recv(buf).await.unwrap();
        },
    )
    .await
}

/// The datagram handles, the sender giving each credit's datagrams at once, laid end to
/// end ([`DatagramSender::send_segments`]: one system call for them with UDP GSO), the
/// receiver into one buffer; the same flow control as [`batch`].
async fn segments_batch(a: &mut DatagramSender, b: &mut Datagram, n: u64) -> Duration {
    let (credit_tx, mut credit_rx) = mpsc::unbounded::<()>();
    let burst = vec![0x5a; PAYLOAD * CREDIT as usize];
    let start = Instant::now();
    let sender = async {
        let mut credits = 2u64;
        let mut sent = 0u64;
        while sent < n {
            if credits == 0 {
                credit_rx.next().await;
            } else {
                credits -= 1;
            }
            let k = CREDIT.min(n - sent);
            a.send_segments(&burst[..k as usize * PAYLOAD], PAYLOAD)
                .await
                .unwrap();
            sent += k;
        }
    };
    let receiver = async {
        let mut buf = vec![0u8; 2048];
        for i in 1..=n {
            b.recv(&mut buf).await.unwrap();
            if i % CREDIT == 0 {
                let _ = credit_tx.unbounded_send(());
            }
        }
    };
    futures::join!(sender, receiver);
    start.elapsed()
}

/// A non-blocking UDP socket on loopback.
fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// Runs futures to completion on one runtime, from outside it.
enum Exec {
    /// tokio, multi-threaded (2 workers).
    Tokio(tokio::runtime::Runtime),
    /// async-std (async-io).
    AsyncStd,
}

impl Exec {
    fn run<F: Future>(&self, f: F) -> F::Output {
        match self {
            Self::Tokio(rt) => rt.block_on(f),
            Self::AsyncStd => async_std::task::block_on(f),
        }
    }
}

/// Everything one runtime's rows need: the runtime's own socket pair, a pair through
/// librice's adapter, and two connected agents (their first components, and those
/// components' datagram handles).
struct Rig<R> {
    name: &'static str,
    raw: (R, R, SocketAddr),
    adapter: (Arc<dyn AsyncUdpSocket>, Arc<dyn AsyncUdpSocket>, SocketAddr),
    components: (Component, Component),
    handles: (DatagramSender, Datagram),
    /// The agents: kept alive as long as their components are used.
    _peers: (Peer, Peer),
    /// Last, so that the runtime outlives what was made on it.
    exec: Exec,
}

impl<R: RawSocket> Rig<R> {
    /// Sets up the pairs and connects the agents on `rt`, run by `exec`; `raw` wraps a
    /// socket as the runtime's own (inside the runtime).
    fn new(name: &'static str, exec: Exec, rt: Arc<dyn Runtime>, raw: fn(UdpSocket) -> R) -> Self {
        let (raw, adapter, components, handles, peers) = exec.run(async {
            let (a, b) = (raw(bind()), raw(bind()));
            let to = b.local_addr();
            let (ra, rb) = (
                rt.wrap_udp_socket(bind()).unwrap(),
                rt.wrap_udp_socket(bind()).unwrap(),
            );
            let rto = rb.local_addr();
            let ip = "127.0.0.1".parse().unwrap();
            let pa = Peer::new(Arc::clone(&rt), true, ip, &[1], None);
            let pb = Peer::new(Arc::clone(&rt), false, ip, &[1], None);
            exchange(&pa, &pb).await;
            connected(rt.as_ref(), &pa, Duration::from_secs(10)).await;
            connected(rt.as_ref(), &pb, Duration::from_secs(10)).await;
            let (ca, cb) = (pa.components[0][0].clone(), pb.components[0][0].clone());
            let handles = (ca.datagram().sender(), cb.datagram());
            ((a, b, to), (ra, rb, rto), (ca, cb), handles, (pa, pb))
        });
        Rig {
            name,
            raw,
            adapter,
            components,
            handles,
            _peers: peers,
            exec,
        }
    }

    /// Moves `n` datagrams between the runtime's own sockets.
    fn raw(&self, n: u64) -> Duration {
        let (a, b, to) = &self.raw;
        self.exec.run(raw_batch(a, b, *to, n))
    }

    /// Moves `n` datagrams between the adapter's sockets.
    fn adapter(&self, n: u64) -> Duration {
        let (a, b, to) = &self.adapter;
        self.exec.run(raw_batch(a, b, *to, n))
    }

    /// Moves `n` datagrams between the components (`send`, `recv`).
    fn components(&self, n: u64) -> Duration {
        let (a, b) = &self.components;
        self.exec.run(ice_batch(a, b, n))
    }

    /// Moves `n` datagrams between the datagram handles.
    fn handle(&mut self, n: u64) -> Duration {
        let (a, b) = &mut self.handles;
        self.exec.run(handle_batch(a, b, n))
    }

    /// Moves `n` datagrams between the datagram handles, in GSO bursts.
    fn segments(&mut self, n: u64) -> Duration {
        let (a, b) = &mut self.handles;
        self.exec.run(segments_batch(a, b, n))
    }

    /// The criterion rows.
    fn bench(&mut self, group: &mut BenchmarkGroup<'_, WallTime>) {
        let name = self.name;
        group.bench_function(format!("{name}/raw_udp"), |b| {
            b.iter_custom(|n| self.raw(n))
        });
        group.bench_function(format!("{name}/raw_adapter"), |b| {
            b.iter_custom(|n| self.adapter(n))
        });
        group.bench_function(format!("{name}/librice"), |b| {
            b.iter_custom(|n| self.components(n))
        });
        group.bench_function(format!("{name}/handle"), |b| {
            b.iter_custom(|n| self.handle(n))
        });
        group.bench_function(format!("{name}/handle_segments"), |b| {
            b.iter_custom(|n| self.segments(n))
        });
    }

    /// `rounds` rounds of [`PAIRED_DATAGRAMS`] datagrams through the runtime's own
    /// sockets, the adapter's and the handles, in turn; prints the median (and the
    /// lowest and highest) of each round's ratios: the handle's rate over the others'.
    fn paired(&mut self, rounds: usize) {
        let n = PAIRED_DATAGRAMS;
        let (mut raw, mut adapter, mut rate) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let r = self.raw(n).as_secs_f64();
            let a = self.adapter(n).as_secs_f64();
            let h = self.handle(n).as_secs_f64();
            raw.push(r / h);
            adapter.push(a / h);
            rate.push(n as f64 / h);
        }
        let summary = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0], v[v.len() - 1])
        };
        let (raw, adapter, rate) = (summary(raw), summary(adapter), summary(rate));
        println!(
            "{}: handle / raw UDP {:.3}x ({:.3}-{:.3}), handle / adapter's socket {:.3}x \
             ({:.3}-{:.3}), handle {:.0} datagrams/s; median of {rounds} rounds",
            self.name, raw.0, raw.1, raw.2, adapter.0, adapter.1, adapter.2, rate.0
        );
    }
}

/// Datagrams per path in a round of the paired measurement.
const PAIRED_DATAGRAMS: u64 = 40_000;

fn tokio_rig() -> Rig<tokio::net::UdpSocket> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = librice_tokio::runtime_from_handle(rt.handle().clone());
    Rig::new("tokio", Exec::Tokio(rt), handle, |s| {
        tokio::net::UdpSocket::from_std(s).unwrap()
    })
}

fn async_std_rig() -> Rig<async_std::net::UdpSocket> {
    Rig::new(
        "async-std",
        Exec::AsyncStd,
        librice_async_std::runtime(),
        async_std::net::UdpSocket::from,
    )
}

fn datapath(c: &mut Criterion) {
    let mut group = c.benchmark_group("datapath");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(8));
    tokio_rig().bench(&mut group);
    async_std_rig().bench(&mut group);
    group.finish();
}

criterion_group!(benches, datapath);

/// With `DATAPATH_PAIRED=<rounds>` set, the paired measurement instead of criterion's
/// rows: the handle against both raw paths, alternated round by round, so that drift of
/// the machine between rows does not enter the ratios.
fn main() {
    match std::env::var("DATAPATH_PAIRED").map(|v| v.parse::<usize>()) {
        Ok(Ok(rounds)) if rounds > 0 => {
            tokio_rig().paired(rounds);
            async_std_rig().paired(rounds);
        }
        Ok(_) => eprintln!("DATAPATH_PAIRED: a number of rounds, at least 1"),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
