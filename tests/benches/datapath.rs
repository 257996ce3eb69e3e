//! Data-path benchmark: datagrams per second through two connected librice components over
//! loopback, against a raw UDP socket pair wrapped by the same runtime, in the same run, on
//! tokio and on async-std. Two librice paths: the components' `send` and `recv` (a buffer
//! per datagram), and their datagram handles (`DatagramSender::send`, `Datagram::recv`
//! into one buffer, as the raw path does), and the handles with the sender giving each
//! credit's datagrams at once (`DatagramSender::send_segments`, UDP GSO on Linux).
//! BENCHMARKS.md records the ratios.
//!
//! Both paths move 1,000-byte datagrams one way under the same flow control: the sender
//! may run at most 64 datagrams ahead of what the receiver has counted (credits of 32), so
//! loopback never overflows a socket buffer and nothing is lost.
//!
//! Run: `cargo bench -p librice-tests --bench datapath`

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

/// The raw UDP socket pair.
async fn raw_batch(
    a: &Arc<dyn AsyncUdpSocket>,
    b: &Arc<dyn AsyncUdpSocket>,
    to: SocketAddr,
    n: u64,
) -> Duration {
    batch(
        n,
        async |data| {
            librice::runtime::send_to(a.as_ref(), data, to)
                .await
                .unwrap();
        },
        async |buf| {
            librice::runtime::recv_from(b.as_ref(), buf).await.unwrap();
        },
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

/// The raw pair and the connected components, set up on `rt`.
async fn setup(
    rt: Arc<dyn Runtime>,
) -> (
    Arc<dyn AsyncUdpSocket>,
    Arc<dyn AsyncUdpSocket>,
    SocketAddr,
    Peer,
    Peer,
) {
    let bind = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        s
    };
    let ra = rt.wrap_udp_socket(bind()).unwrap();
    let rb = rt.wrap_udp_socket(bind()).unwrap();
    let to = rb.local_addr().unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    let a = Peer::new(Arc::clone(&rt), true, ip, &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, ip, &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, Duration::from_secs(10)).await;
    connected(rt.as_ref(), &b, Duration::from_secs(10)).await;
    (ra, rb, to, a, b)
}

fn datapath(c: &mut Criterion) {
    let mut group = c.benchmark_group("datapath");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(8));

    // tokio, multi-threaded (2 workers).
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = librice_tokio::runtime_from_handle(tokio_rt.handle().clone());
    let (ra, rb, to, a, b) = tokio_rt.block_on(setup(Arc::clone(&rt)));
    let (ca, cb) = (a.components[0][0].clone(), b.components[0][0].clone());
    group.bench_function("tokio/raw_udp", |bench| {
        bench.iter_custom(|n| tokio_rt.block_on(raw_batch(&ra, &rb, to, n)))
    });
    group.bench_function("tokio/librice", |bench| {
        bench.iter_custom(|n| tokio_rt.block_on(ice_batch(&ca, &cb, n)))
    });
    let (mut sa, mut db) = (ca.datagram().sender(), cb.datagram());
    group.bench_function("tokio/handle", |bench| {
        bench.iter_custom(|n| tokio_rt.block_on(handle_batch(&mut sa, &mut db, n)))
    });
    group.bench_function("tokio/handle_segments", |bench| {
        bench.iter_custom(|n| tokio_rt.block_on(segments_batch(&mut sa, &mut db, n)))
    });
    drop((sa, db, ca, cb, a, b, ra, rb));

    // async-std (async-io).
    let rt = librice_async_std::runtime();
    let (ra, rb, to, a, b) = async_std::task::block_on(setup(Arc::clone(&rt)));
    let (ca, cb) = (a.components[0][0].clone(), b.components[0][0].clone());
    group.bench_function("async-std/raw_udp", |bench| {
        bench.iter_custom(|n| async_std::task::block_on(raw_batch(&ra, &rb, to, n)))
    });
    group.bench_function("async-std/librice", |bench| {
        bench.iter_custom(|n| async_std::task::block_on(ice_batch(&ca, &cb, n)))
    });
    let (mut sa, mut db) = (ca.datagram().sender(), cb.datagram());
    group.bench_function("async-std/handle", |bench| {
        bench.iter_custom(|n| async_std::task::block_on(handle_batch(&mut sa, &mut db, n)))
    });
    group.bench_function("async-std/handle_segments", |bench| {
        bench.iter_custom(|n| async_std::task::block_on(segments_batch(&mut sa, &mut db, n)))
    });
    group.finish();
}

criterion_group!(benches, datapath);
criterion_main!(benches);
