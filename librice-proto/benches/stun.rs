//! STUN codec benchmarks against the cryptographic floor.
//!
//! (a) parse + FINGERPRINT + MESSAGE-INTEGRITY + ICE attributes of a typical ICE Binding
//!     request (92 bytes), (b) build + sign that request, (c) build + sign a Binding
//!     success response with XOR-MAPPED-ADDRESS, and (d) the floor: HMAC-SHA1 with a
//!     pre-keyed state plus crc32fast over the same 92 bytes. BENCHMARKS.md records the
//!     figures and their ratios to (d).
//!
//! Run: `cargo bench -p librice-proto --bench stun`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use librice_proto::stun::attr::{
    IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use librice_proto::stun::{IntegrityKey, Message, MessageType, MessageWriter, TransactionId};
use sha1::Sha1;

const PASSWORD: &str = "Zx4Tk1Ld9oPq2rS7uVw3yA";
const USERNAME: &str = "Ab3d:Xy9z";
const TXID: TransactionId = TransactionId([0xA5; 12]);

fn write_request(buf: &mut Vec<u8>, key: &IntegrityKey) {
    buf.clear();
    let mut w = MessageWriter::new(buf, MessageType::BINDING_REQUEST, TXID);
    w.add(&Username(USERNAME)).unwrap();
    w.add(&Priority(0x6e7f_1eff)).unwrap();
    w.add(&IceControlling(0x1234_5678_9abc_def0)).unwrap();
    w.add(&UseCandidate).unwrap();
    w.add_message_integrity(key).unwrap();
    w.add_fingerprint().unwrap();
}

fn write_response(buf: &mut Vec<u8>, key: &IntegrityKey, mapped: SocketAddr) {
    buf.clear();
    let mut w = MessageWriter::new(buf, MessageType::BINDING_SUCCESS, TXID);
    w.add(&XorMappedAddress(mapped)).unwrap();
    w.add_message_integrity(key).unwrap();
    w.add_fingerprint().unwrap();
}

/// What an ICE agent reads from an incoming check.
#[derive(Debug)]
struct Check<'a> {
    username: &'a str,
    priority: u32,
    controlling: Option<u64>,
    use_candidate: bool,
}

fn read_request<'a>(data: &'a [u8], key: &IntegrityKey) -> Check<'a> {
    let msg = Message::parse(data).unwrap();
    msg.check_fingerprint().unwrap();
    msg.check_integrity(key).unwrap();
    Check {
        username: msg.attribute::<Username<'_>>().unwrap().unwrap().0,
        priority: msg.attribute::<Priority>().unwrap().unwrap().0,
        controlling: msg.attribute::<IceControlling>().unwrap().map(|c| c.0),
        use_candidate: msg.attribute::<UseCandidate>().unwrap().is_some(),
    }
}

fn stun(c: &mut Criterion) {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    let mut request = Vec::with_capacity(256);
    write_request(&mut request, &key);
    assert_eq!(request.len(), 92, "the typical ICE request is 92 bytes");
    let mapped: SocketAddr = "192.0.2.33:40112".parse().unwrap();
    let mut buf = Vec::with_capacity(256);

    let mut group = c.benchmark_group("stun");
    group.bench_function("a_parse_check_read_request", |b| {
        b.iter(|| {
            let check = read_request(black_box(&request), &key);
            black_box((
                check.username,
                check.priority,
                check.controlling,
                check.use_candidate,
            ));
            black_box(check);
        })
    });
    group.bench_function("b_build_sign_request", |b| {
        b.iter(|| {
            write_request(&mut buf, black_box(&key));
            black_box(&buf);
        })
    });
    group.bench_function("c_build_sign_response", |b| {
        b.iter(|| {
            write_response(&mut buf, black_box(&key), black_box(mapped));
            black_box(&buf);
        })
    });
    let keyed = <Hmac<Sha1> as KeyInit>::new_from_slice(PASSWORD.as_bytes()).unwrap();
    group.bench_function("d_floor_hmac_sha1_crc32", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&request));
            let tag = mac.finalize().into_bytes();
            let crc = crc32fast::hash(black_box(&request));
            black_box((tag, crc));
        })
    });
    group.finish();
}

criterion_group!(benches, stun);
criterion_main!(benches);
