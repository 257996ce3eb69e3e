//! Tests of client transactions: the RFC 8489 §6.2 retransmission schedule, response
//! matching and response integrity, on a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::stun::attr::{ErrorCode, XorMappedAddress};
use crate::stun::{MessageType, MessageWriter, Method};

/// An arbitrary origin for the virtual clock; the tests only ever add Durations to it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn local() -> SocketAddr {
    "192.0.2.10:5000".parse().expect("valid address")
}

fn server() -> SocketAddr {
    "198.51.100.1:3478".parse().expect("valid address")
}

fn txid(n: u32) -> TransactionId {
    let mut id = [0xA5; 12];
    id[8..].copy_from_slice(&n.to_be_bytes());
    TransactionId(id)
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d)
}

fn message(ty: MessageType, id: TransactionId) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, ty, id);
    buf
}

fn request_transmit(transport: TransportType, id: TransactionId) -> Transmit<Vec<u8>> {
    Transmit {
        transport,
        from: local(),
        to: server(),
        data: message(MessageType::BINDING_REQUEST, id),
    }
}

/// A Binding success response, signed with `key` when given.
fn success(id: TransactionId, key: Option<(&IntegrityKey, IntegrityAlgorithm)>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, id);
    w.add(&XorMappedAddress(local())).expect("fits");
    match key {
        Some((key, IntegrityAlgorithm::Sha1)) => w.add_message_integrity(key).expect("fits"),
        Some((key, IntegrityAlgorithm::Sha256)) => {
            w.add_message_integrity_sha256(key).expect("fits")
        }
        None => {}
    }
    w.add_fingerprint().expect("fits");
    buf
}

/// A Binding error response with `code`, signed with `key` when given.
fn error_response(id: TransactionId, code: u16, key: Option<&IntegrityKey>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_ERROR, id);
    w.add(&ErrorCode::with_default_reason(code)).expect("fits");
    if let Some(key) = key {
        w.add_message_integrity(key).expect("fits");
    }
    buf
}

fn handle(tx: &mut Transactions<u32>, bytes: &[u8]) -> ResponseOutcome<u32> {
    tx.handle_response(&Message::parse(bytes).expect("test messages parse"))
}

fn key(password: &str) -> IntegrityKey {
    IntegrityKey::short_term(password).expect("valid password")
}

fn sha1_integrity(password: &str) -> ResponseIntegrity {
    ResponseIntegrity::long_term(key(password), IntegrityAlgorithm::Sha1)
}

/// What happened while driving a set of transactions, in milliseconds since `t0`.
#[derive(Debug, Default)]
struct Trace {
    /// (time, transaction id) of every transmission.
    sent: Vec<(u64, TransactionId)>,
    /// (time, context) of every timeout.
    timed_out: Vec<(u64, u32)>,
}

impl Trace {
    fn sent_times(&self) -> Vec<u64> {
        self.sent.iter().map(|(t, _)| *t).collect()
    }

    fn timeout_times(&self) -> Vec<u64> {
        self.timed_out.iter().map(|(t, _)| *t).collect()
    }
}

/// Drives `tx` from `t0` until nothing is left, the way a caller's loop does: send what
/// is queued, report failures, sleep until `poll_timeout`, `handle_timeout` then.
///
/// Checks on the way that `poll_timeout` never goes backwards, that `handle_timeout` just
/// before the returned instant does nothing, that it makes progress at that instant, and
/// that calling it again at the same instant is harmless.
fn drive(tx: &mut Transactions<u32>, t0: Instant, max_steps: usize) -> Trace {
    let since = |t: Instant| u64::try_from((t - t0).as_millis()).expect("short test");
    let mut trace = Trace::default();
    let mut now = t0;
    let drain = |tx: &mut Transactions<u32>, now: Instant, trace: &mut Trace| {
        let before = trace.sent.len() + trace.timed_out.len();
        while let Some(t) = tx.poll_transmit(now) {
            let id = Message::parse(&t.data).expect("a request").transaction_id();
            trace.sent.push((since(now), id));
        }
        while let Some(TransactionEvent::TimedOut { context, .. }) = tx.poll_event() {
            trace.timed_out.push((since(now), context));
        }
        trace.sent.len() + trace.timed_out.len() - before
    };
    drain(tx, now, &mut trace);
    for _ in 0..max_steps {
        let Some(next) = tx.poll_timeout() else {
            assert!(tx.is_empty(), "no timeout while transactions are in flight");
            return trace;
        };
        assert!(next >= now, "poll_timeout went backwards");
        if next - now >= ms(1) {
            let early = next - ms(1);
            tx.handle_timeout(early);
            assert_eq!(
                drain(tx, early, &mut trace),
                0,
                "progress before the deadline"
            );
        }
        now = next;
        tx.handle_timeout(now);
        assert!(
            drain(tx, now, &mut trace) > 0,
            "handle_timeout at poll_timeout made no progress"
        );
        tx.handle_timeout(now);
        assert_eq!(
            drain(tx, now, &mut trace),
            0,
            "a repeated timeout did something"
        );
    }
    panic!("transactions still running after {max_steps} steps");
}

#[test]
fn udp_schedule_follows_rfc8489_defaults() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(1)),
            7,
            None,
            None,
        )
        .expect("starts");
    assert_eq!(
        tx.poll_timeout(),
        Some(t0),
        "the first request is due at once"
    );

    let trace = drive(&mut tx, t0, 100);

    // RFC 8489 §6.2.1: RTO 500 ms, Rc 7, Rm 16.
    assert_eq!(trace.sent_times(), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(trace.sent.iter().all(|(_, sent)| *sent == id));
    assert_eq!(trace.timed_out, [(39_500, 7)]);
    assert!(tx.is_empty());
}

#[test]
fn every_retransmission_carries_the_same_bytes() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let original = request_transmit(TransportType::Udp, txid(2));
    tx.start(t0, original.clone(), 0, None, None)
        .expect("starts");
    let mut now = t0;
    for _ in 0..7 {
        let t = tx.poll_transmit(now).expect("a transmission is due");
        assert_eq!(t, original);
        now = tx.poll_timeout().expect("a timer is armed");
        tx.handle_timeout(now);
    }
    assert_eq!(tx.poll_transmit(now), None);
    assert!(matches!(
        tx.poll_event(),
        Some(TransactionEvent::TimedOut { context: 0, .. })
    ));
}

#[test]
fn udp_schedule_with_custom_config() {
    let t0 = origin();
    let config = RetransmitConfig {
        rto: ms(100),
        max_requests: 3,
        last_wait_multiplier: 4,
        ..RetransmitConfig::default()
    };
    let mut tx = Transactions::new(config);
    assert_eq!(tx.config(), &config);
    tx.start(
        t0,
        request_transmit(TransportType::Udp, txid(3)),
        1,
        None,
        None,
    )
    .expect("starts");

    let trace = drive(&mut tx, t0, 100);

    assert_eq!(trace.sent_times(), [0, 100, 300]);
    assert_eq!(trace.timeout_times(), [300 + 4 * 100]);
}

#[test]
fn per_transaction_rto_overrides_the_config() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    tx.start(
        t0,
        request_transmit(TransportType::Udp, txid(4)),
        1,
        None,
        Some(ms(1000)),
    )
    .expect("starts");
    tx.start(
        t0,
        request_transmit(TransportType::Udp, txid(5)),
        2,
        None,
        None,
    )
    .expect("starts");

    let trace = drive(&mut tx, t0, 100);

    let times_of = |id| {
        trace
            .sent
            .iter()
            .filter(|(_, sent)| *sent == id)
            .map(|(t, _)| *t)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        times_of(txid(4)),
        [0, 1000, 3000, 7000, 15000, 31000, 63000]
    );
    assert_eq!(times_of(txid(5)), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(trace.timed_out, [(39_500, 2), (63_000 + 16_000, 1)]);
}

#[test]
fn tcp_sends_once_and_times_out_after_ti() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    tx.start(
        t0,
        request_transmit(TransportType::Tcp, txid(6)),
        9,
        None,
        None,
    )
    .expect("starts");

    let trace = drive(&mut tx, t0, 100);

    // RFC 8489 §6.2.2: no retransmission over a reliable transport; Ti = 39.5 s.
    assert_eq!(trace.sent_times(), [0]);
    assert_eq!(trace.timed_out, [(39_500, 9)]);
}

#[test]
fn tcp_honours_a_custom_reliable_timeout() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig {
        reliable_timeout: ms(2_000),
        ..RetransmitConfig::default()
    });
    tx.start(
        t0,
        request_transmit(TransportType::Tcp, txid(7)),
        9,
        None,
        None,
    )
    .expect("starts");

    let trace = drive(&mut tx, t0, 100);

    assert_eq!(trace.sent_times(), [0]);
    assert_eq!(trace.timeout_times(), [2_000]);
}

#[test]
fn matching_success_ends_the_transaction_and_stops_retransmission() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(8)),
            42,
            None,
            None,
        )
        .expect("starts");
    assert!(tx.contains(&id));
    assert_eq!(tx.context(&id), Some(&42));
    assert_eq!(tx.len(), 1);
    let _first = tx.poll_transmit(t0).expect("first request");
    tx.handle_timeout(t0 + ms(500));
    let _second = tx
        .poll_transmit(t0 + ms(500))
        .expect("first retransmission");

    let outcome = handle(&mut tx, &success(id, None));

    assert_eq!(
        outcome,
        ResponseOutcome::Matched {
            id,
            context: 42,
            to: server(),
            from: local(),
        }
    );
    assert!(tx.is_empty());
    assert!(!tx.contains(&id));
    assert_eq!(tx.context(&id), None);
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_timeout(t0 + ms(60_000));
    assert_eq!(tx.poll_transmit(t0 + ms(60_000)), None);
    assert_eq!(tx.poll_event(), None);
    // A duplicate of the response finds nothing.
    assert_eq!(
        handle(&mut tx, &success(id, None)),
        ResponseOutcome::Unknown
    );
}

#[test]
fn response_while_a_retransmission_is_queued_cancels_it() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(9)),
            1,
            None,
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("first request");
    tx.handle_timeout(t0 + ms(500));
    // The retransmission is queued but not yet taken when the response arrives.
    assert!(matches!(
        handle(&mut tx, &success(id, None)),
        ResponseOutcome::Matched { .. }
    ));
    assert_eq!(tx.poll_transmit(t0 + ms(500)), None);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn matching_error_response_ends_the_transaction() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(10)),
            3,
            None,
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("first request");
    assert!(matches!(
        handle(&mut tx, &error_response(id, 500, None)),
        ResponseOutcome::Matched { context: 3, .. }
    ));
    assert!(tx.is_empty());
}

#[test]
fn unknown_transaction_id_is_unknown() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(11)),
            1,
            None,
            None,
        )
        .expect("starts");
    assert_eq!(
        handle(&mut tx, &success(txid(12), None)),
        ResponseOutcome::Unknown
    );
    assert!(
        tx.contains(&id),
        "an unrelated response leaves the transaction alone"
    );
}

#[test]
fn requests_and_indications_are_not_responses() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(13)),
            1,
            None,
            None,
        )
        .expect("starts");
    for ty in [
        MessageType::BINDING_REQUEST,
        MessageType::BINDING_INDICATION,
    ] {
        assert_eq!(
            handle(&mut tx, &message(ty, id)),
            ResponseOutcome::NotAResponse
        );
    }
    assert!(tx.contains(&id));
}

#[test]
fn bad_integrity_over_udp_is_discarded_and_the_transaction_goes_on() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(14)),
            5,
            Some(sha1_integrity("right-password")),
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("first request");
    let wrong = key("wrong-password");
    let right = key("right-password");

    // RFC 8489 §9.1.4: over UDP a response that fails the check is discarded.
    assert_eq!(
        handle(
            &mut tx,
            &success(id, Some((&wrong, IntegrityAlgorithm::Sha1)))
        ),
        ResponseOutcome::Discarded(IntegrityError::IntegrityMismatch)
    );
    assert_eq!(
        handle(&mut tx, &success(id, None)),
        ResponseOutcome::Discarded(IntegrityError::MissingIntegrity)
    );
    assert_eq!(
        handle(
            &mut tx,
            &success(id, Some((&right, IntegrityAlgorithm::Sha256)))
        ),
        ResponseOutcome::Discarded(IntegrityError::MissingAlgorithm),
        "the response must carry the attribute the request used"
    );
    assert_eq!(
        handle(&mut tx, &error_response(id, 500, None)),
        ResponseOutcome::Discarded(IntegrityError::MissingIntegrity),
        "other unsigned error responses are discarded"
    );
    assert!(tx.contains(&id));

    // Retransmissions go on as if nothing was received.
    tx.handle_timeout(t0 + ms(500));
    assert!(tx.poll_transmit(t0 + ms(500)).is_some());

    assert_eq!(
        handle(
            &mut tx,
            &success(id, Some((&right, IntegrityAlgorithm::Sha1)))
        ),
        ResponseOutcome::Matched {
            id,
            context: 5,
            to: server(),
            from: local(),
        }
    );
    assert!(tx.is_empty());
}

#[test]
fn sha256_integrity_is_checked_when_asked_for() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(15)),
            5,
            Some(ResponseIntegrity::long_term(
                key("pw"),
                IntegrityAlgorithm::Sha256,
            )),
            None,
        )
        .expect("starts");
    let right = key("pw");
    assert_eq!(
        handle(
            &mut tx,
            &success(id, Some((&right, IntegrityAlgorithm::Sha1)))
        ),
        ResponseOutcome::Discarded(IntegrityError::MissingAlgorithm)
    );
    assert!(matches!(
        handle(
            &mut tx,
            &success(id, Some((&right, IntegrityAlgorithm::Sha256)))
        ),
        ResponseOutcome::Matched { context: 5, .. }
    ));
}

#[test]
fn bad_integrity_over_tcp_fails_the_transaction() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Tcp, txid(16)),
            6,
            Some(sha1_integrity("right-password")),
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("the request");
    let wrong = key("wrong-password");

    // RFC 8489 §9.1.4: over a reliable transport the transaction ends at once.
    assert_eq!(
        handle(
            &mut tx,
            &success(id, Some((&wrong, IntegrityAlgorithm::Sha1)))
        ),
        ResponseOutcome::Failed {
            id,
            context: 6,
            error: IntegrityError::IntegrityMismatch,
        }
    );
    assert!(tx.is_empty());
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_timeout(t0 + ms(40_000));
    assert_eq!(
        tx.poll_event(),
        None,
        "a failed transaction does not also time out"
    );
}

#[test]
fn unsigned_401_and_438_are_accepted_when_integrity_was_asked() {
    let t0 = origin();
    for (n, code) in [(17, 401), (18, 438)] {
        for transport in [TransportType::Udp, TransportType::Tcp] {
            let mut tx = Transactions::new(RetransmitConfig::default());
            let id = tx
                .start(
                    t0,
                    request_transmit(transport, txid(n)),
                    code.into(),
                    Some(sha1_integrity("pw")),
                    None,
                )
                .expect("starts");
            // RFC 8489 §9.2.5: the long-term mechanism needs to see these.
            assert_eq!(
                handle(&mut tx, &error_response(id, code, None)),
                ResponseOutcome::Matched {
                    id,
                    context: code.into(),
                    to: server(),
                    from: local(),
                },
                "{code} over {transport}"
            );
        }
    }
}

#[test]
fn unsigned_401_is_discarded_with_short_term_credentials() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(19)),
            401,
            Some(ResponseIntegrity::short_term(
                key("pw"),
                IntegrityAlgorithm::Sha1,
            )),
            None,
        )
        .expect("starts");
    // RFC 8489 §9.1.4: short-term credentials accept no unsigned response.
    assert!(matches!(
        handle(&mut tx, &error_response(id, 401, None)),
        ResponseOutcome::Discarded(_)
    ));
    assert!(tx.contains(&id));
}

#[test]
fn signed_401_with_the_wrong_key_is_discarded() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(19)),
            1,
            Some(sha1_integrity("pw")),
            None,
        )
        .expect("starts");
    assert_eq!(
        handle(&mut tx, &error_response(id, 401, Some(&key("other")))),
        ResponseOutcome::Discarded(IntegrityError::IntegrityMismatch)
    );
    assert!(tx.contains(&id));
}

#[test]
fn cancel_stops_everything() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(20)),
            11,
            None,
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("first request");

    assert_eq!(tx.cancel(&id), Some(11));

    assert!(tx.is_empty());
    assert_eq!(tx.poll_timeout(), None);
    tx.handle_timeout(t0 + ms(60_000));
    assert_eq!(tx.poll_transmit(t0 + ms(60_000)), None);
    assert_eq!(tx.poll_event(), None);
    assert_eq!(
        handle(&mut tx, &success(id, None)),
        ResponseOutcome::Unknown
    );
    assert_eq!(tx.cancel(&id), None);
}

#[test]
fn cancel_before_the_first_transmission_sends_nothing() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(21)),
            1,
            None,
            None,
        )
        .expect("starts");
    assert_eq!(tx.cancel(&id), Some(1));
    assert_eq!(tx.poll_transmit(t0), None);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn cancel_while_a_retransmission_is_queued_sends_nothing() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(22)),
            1,
            None,
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("first request");
    tx.handle_timeout(t0 + ms(500));
    assert_eq!(tx.cancel(&id), Some(1));
    assert_eq!(tx.poll_transmit(t0 + ms(500)), None);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn restarting_a_cancelled_id_before_draining_sends_it_once() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let transmit = request_transmit(TransportType::Udp, txid(23));
    let id = tx
        .start(t0, transmit.clone(), 1, None, None)
        .expect("starts");
    assert_eq!(tx.cancel(&id), Some(1));
    tx.start(t0, transmit, 2, None, None)
        .expect("the id is free again");

    let trace = drive(&mut tx, t0, 100);

    assert_eq!(trace.sent_times(), [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(trace.timed_out, [(39_500, 2)]);
}

#[test]
fn duplicate_id_is_refused() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(24)),
            1,
            None,
            None,
        )
        .expect("starts");
    assert_eq!(
        tx.start(
            t0,
            request_transmit(TransportType::Tcp, txid(24)),
            2,
            None,
            None
        ),
        Err(StartError::DuplicateId(id))
    );
    assert_eq!(tx.len(), 1);
    assert_eq!(
        tx.context(&id),
        Some(&1),
        "the first transaction is untouched"
    );
    let sent = tx.poll_transmit(t0).expect("the first request");
    assert_eq!(sent.transport, TransportType::Udp);
    assert_eq!(tx.poll_transmit(t0), None);
}

#[test]
fn an_ended_transaction_frees_its_id() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(25)),
            1,
            None,
            None,
        )
        .expect("starts");
    let _first = tx.poll_transmit(t0).expect("first request");
    assert!(matches!(
        handle(&mut tx, &success(id, None)),
        ResponseOutcome::Matched { .. }
    ));
    assert_eq!(
        tx.start(
            t0,
            request_transmit(TransportType::Udp, txid(25)),
            2,
            None,
            None
        ),
        Ok(id)
    );
}

#[test]
fn only_requests_start_transactions() {
    let t0 = origin();
    let mut tx: Transactions<u32> = Transactions::new(RetransmitConfig::default());
    for ty in [
        MessageType::BINDING_SUCCESS,
        MessageType::BINDING_ERROR,
        MessageType::BINDING_INDICATION,
    ] {
        let transmit = Transmit {
            transport: TransportType::Udp,
            from: local(),
            to: server(),
            data: message(ty, txid(26)),
        };
        assert_eq!(
            tx.start(t0, transmit, 1, None, None),
            Err(StartError::NotARequest)
        );
    }
    let garbage = Transmit {
        transport: TransportType::Udp,
        from: local(),
        to: server(),
        data: b"not stun".to_vec(),
    };
    let err = tx.start(t0, garbage, 1, None, None).expect_err("not STUN");
    assert_eq!(err, StartError::Parse(StunParseError::TooShort { len: 8 }));
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().contains("does not parse"));
    assert!(tx.is_empty());
    assert_eq!(tx.poll_transmit(t0), None);
}

#[test]
fn other_methods_are_requests_too() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let allocate = MessageType::new(MessageClass::Request, Method::ALLOCATE);
    let transmit = Transmit {
        transport: TransportType::Udp,
        from: local(),
        to: server(),
        data: message(allocate, txid(27)),
    };
    assert_eq!(tx.start(t0, transmit, 1, None, None), Ok(txid(27)));
}

#[test]
fn a_thousand_transactions_each_time_out_exactly_once() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    const N: u32 = 1_000;
    // RTOs from 500 to 509 ms interleave the timers of different transactions.
    let rto_of = |i: u32| ms(500 + u64::from(i % 10));
    for i in 0..N {
        tx.start(
            t0,
            request_transmit(TransportType::Udp, txid(i)),
            i,
            None,
            Some(rto_of(i)),
        )
        .expect("distinct ids");
    }
    assert_eq!(tx.len(), N as usize);

    let trace = drive(&mut tx, t0, 1_000);

    assert_eq!(trace.sent.len(), 7 * N as usize);
    let mut seen = vec![0u32; N as usize];
    for &(t, context) in &trace.timed_out {
        seen[context as usize] += 1;
        // 1 + 2 + 4 + 8 + 16 + 32 RTOs of retransmissions, then Rm = 16 RTOs.
        let expected = u64::try_from((rto_of(context) * 79).as_millis()).expect("small");
        assert_eq!(
            t, expected,
            "transaction {context} timed out at the wrong time"
        );
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "each transaction times out exactly once"
    );
    for i in 0..N {
        let sends = trace.sent.iter().filter(|(_, id)| *id == txid(i)).count();
        assert_eq!(sends, 7, "transaction {i}");
    }
    assert!(tx.is_empty());
}

#[test]
fn transaction_timeout_matches_the_schedule() {
    let config = RetransmitConfig::default();
    assert_eq!(
        config.transaction_timeout(TransportType::Udp),
        Duration::from_millis(39_500)
    );
    assert_eq!(
        config.transaction_timeout(TransportType::Tcp),
        Duration::from_millis(39_500)
    );
    let custom = RetransmitConfig {
        rto: Duration::from_millis(100),
        max_requests: 3,
        last_wait_multiplier: 4,
        ..config
    };
    // Requests at 0, 100 and 300 ms, failure 400 ms after the last: 700 ms.
    assert_eq!(
        custom.transaction_timeout(TransportType::Udp),
        Duration::from_millis(700)
    );
}

#[test]
fn stop_retransmitting_before_the_first_send_still_sends_it_once() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(1)),
            7,
            None,
            None,
        )
        .expect("starts");
    assert!(tx.unsent(&id));
    assert!(tx.stop_retransmitting(&id));
    let trace = drive(&mut tx, t0, 100);
    // Sent once, no retransmission, over when the first retransmission would have been
    // due (one RTO).
    assert_eq!(trace.sent_times(), [0]);
    assert_eq!(trace.timed_out, [(500, 7)]);
}

#[test]
fn stop_retransmitting_after_the_first_send_ends_at_the_next_due_time() {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let id = tx
        .start(
            t0,
            request_transmit(TransportType::Udp, txid(1)),
            7,
            None,
            None,
        )
        .expect("starts");
    assert!(tx.poll_transmit(t0).is_some());
    assert!(!tx.unsent(&id));
    assert!(tx.stop_retransmitting(&id));
    assert!(tx.poll_transmit(t0).is_none());
    let trace = drive(&mut tx, t0, 100);
    assert!(trace.sent.is_empty(), "{:?}", trace.sent);
    assert_eq!(trace.timed_out, [(500, 7)]);
    assert!(!tx.stop_retransmitting(&id), "no longer in flight");
}
