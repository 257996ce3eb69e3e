//! Proves that the hot paths allocate nothing: reading and checking an ICE Binding
//! request, building and signing a request and a success response into a reused buffer,
//! and receiving a datagram through a component's datagram handle
//! (`librice::Datagram::poll_recv`) on both runtimes. A counting global allocator counts
//! the allocations made by the current thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use librice::Runtime;
use librice_tests::ice::{Peer, connected, exchange};
use librice_tests::runtimes::{on_async_std, on_tokio, sleep, timeout};

use librice_proto::stun::attr::{
    IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use librice_proto::stun::{IntegrityKey, Message, MessageType, MessageWriter, TransactionId};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Allocations made by this thread inside `poll_recv`, counted across every call.
struct Counted<'a> {
    datagram: &'a mut librice::Datagram,
    allocations: u64,
}

impl Counted<'_> {
    async fn recv(&mut self, buf: &mut [u8]) -> librice::RecvMeta {
        futures::future::poll_fn(|cx| {
            let before = ALLOCATIONS.with(Cell::get);
            let polled = self.datagram.poll_recv(cx, buf);
            self.allocations += ALLOCATIONS.with(Cell::get) - before;
            polled
        })
        .await
        .expect("receive")
    }
}

/// Two connected agents; once warm (the handle's task reads its sockets itself), 1,000
/// datagrams received through `poll_recv` cost no allocation at all.
async fn recv_allocates_nothing(rt: Arc<dyn Runtime>) {
    const WARM: usize = 100;
    const COUNT: usize = 1000;
    let ip = "127.0.0.1".parse().unwrap();
    let a = Peer::new(Arc::clone(&rt), true, ip, &[1], None);
    let b = Peer::new(Arc::clone(&rt), false, ip, &[1], None);
    exchange(&a, &b).await;
    connected(rt.as_ref(), &a, Duration::from_secs(10)).await;
    connected(rt.as_ref(), &b, Duration::from_secs(10)).await;
    // Let the checks settle: what comes next is data only.
    sleep(rt.as_ref(), Duration::from_millis(200)).await;
    let sender = a.components[0][0].datagram().sender();
    let mut datagram = b.components[0][0].datagram();
    let mut counted = Counted {
        datagram: &mut datagram,
        allocations: 0,
    };
    let mut buf = vec![0u8; 2048];
    let payload = [0x5a_u8; 1000];
    for round in [WARM, COUNT] {
        counted.allocations = 0;
        let mut tx = sender.clone();
        let sending = async {
            for _ in 0..round {
                tx.send(&payload).await.expect("send");
                // Paced: the receiver keeps up, nothing waits in a queue.
                sleep(rt.as_ref(), Duration::from_micros(100)).await;
            }
        };
        let receiving = async {
            for _ in 0..round {
                let meta = counted.recv(&mut buf).await;
                assert_eq!(&buf[..meta.len], &payload[..]);
            }
        };
        let done = timeout(rt.as_ref(), Duration::from_secs(20), async {
            futures::join!(sending, receiving)
        })
        .await;
        assert!(done.is_some(), "{round} datagrams within 20 s");
        if round == WARM {
            // The first call caches the component's sockets: the counter sees what
            // poll_recv itself allocates.
            assert!(counted.allocations > 0, "nothing counted while warming up");
        }
    }
    eprintln!(
        "allocations in poll_recv over {COUNT} datagrams: {}",
        counted.allocations
    );
    assert_eq!(
        counted.allocations, 0,
        "poll_recv allocated in steady state"
    );

    // Bursts: each is read from the socket in batches into the handle's ring and handed
    // out of it, still without an allocation.
    counted.allocations = 0;
    let mut tx = sender.clone();
    for burst in 0..BURSTS {
        for i in 0..BURST {
            tx.send(&[(burst * BURST + i) as u8; 1000])
                .await
                .expect("send");
        }
        for i in 0..BURST {
            let meta = timeout(rt.as_ref(), Duration::from_secs(20), counted.recv(&mut buf))
                .await
                .expect("burst datagram within 20 s");
            assert_eq!(&buf[..meta.len], &[(burst * BURST + i) as u8; 1000][..]);
        }
    }
    eprintln!(
        "allocations in poll_recv over {BURSTS} bursts of {BURST}: {}",
        counted.allocations
    );
    assert_eq!(counted.allocations, 0, "poll_recv allocated on bursts");
}

/// Datagrams sent back to back, and bursts of them.
const BURST: usize = 48;
const BURSTS: usize = 5;

#[test]
fn datagram_recv_allocates_nothing_tokio() {
    on_tokio(recv_allocates_nothing);
}

#[test]
fn datagram_recv_allocates_nothing_async_std() {
    on_async_std(recv_allocates_nothing);
}

const TXID: TransactionId = TransactionId([0x5A; 12]);

fn write_request(buf: &mut Vec<u8>, key: &IntegrityKey) {
    buf.clear();
    let mut w = MessageWriter::new(buf, MessageType::BINDING_REQUEST, TXID);
    w.add(&Username("Ab3d:Xy9z")).unwrap();
    w.add(&Priority(0x6e7f_1eff)).unwrap();
    w.add(&IceControlling(7)).unwrap();
    w.add(&UseCandidate).unwrap();
    w.add_message_integrity(key).unwrap();
    w.add_fingerprint().unwrap();
}

#[test]
fn counter_sees_allocations() {
    // The test would prove nothing if the counter missed allocations.
    let n = allocations_in(|| {
        std::hint::black_box(vec![1u8; 64]);
    });
    assert_eq!(n, 1);
}

#[test]
fn stun_hot_paths_do_not_allocate() {
    let key = IntegrityKey::short_term("Zx4Tk1Ld9oPq2rS7uVw3yA").unwrap();
    let mapped: SocketAddr = "[2001:db8::7]:40112".parse().unwrap();
    let mut buf = Vec::with_capacity(256);
    let mut request = Vec::with_capacity(256);
    write_request(&mut request, &key);

    let build_request = allocations_in(|| {
        for _ in 0..100 {
            write_request(&mut buf, &key);
        }
    });
    assert_eq!(build_request, 0, "building + signing a request allocated");

    let build_response = allocations_in(|| {
        for _ in 0..100 {
            buf.clear();
            let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, TXID);
            w.add(&XorMappedAddress(mapped)).unwrap();
            w.add_message_integrity(&key).unwrap();
            w.add_fingerprint().unwrap();
        }
    });
    assert_eq!(build_response, 0, "building + signing a response allocated");

    let mut seen = 0u64;
    let read_request = allocations_in(|| {
        for _ in 0..100 {
            let msg = Message::parse(&request).unwrap();
            msg.check_fingerprint().unwrap();
            msg.check_integrity(&key).unwrap();
            let username = msg.attribute::<Username<'_>>().unwrap().unwrap();
            let priority = msg.attribute::<Priority>().unwrap().unwrap();
            let controlling = msg.attribute::<IceControlling>().unwrap().unwrap();
            let use_candidate = msg.attribute::<UseCandidate>().unwrap().is_some();
            seen += u64::from(priority.0) + controlling.0 + username.0.len() as u64;
            seen += u64::from(use_candidate);
        }
    });
    assert_eq!(read_request, 0, "parsing + checking a request allocated");
    assert!(seen > 0);
}
