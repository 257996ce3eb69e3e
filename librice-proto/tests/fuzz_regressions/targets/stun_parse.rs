//! The `stun_parse` fuzz target.
//!
//! Fuzzes everything that reads a STUN message from the network: parsing, typed attribute
//! decoding, FINGERPRINT and MESSAGE-INTEGRITY(-SHA256) checks, the Binding server (no,
//! short-term and long-term authentication), the long-term client's error handling,
//! response matching, and stream framing in every mode.
//!
//! Besides "never panics", it checks that whatever the server writes is a valid message
//! with a good FINGERPRINT, answering the request's transaction id.

use std::net::SocketAddr;
use std::time::Instant;

use librice_proto::stun::attr::{
    AdditionalAddressFamily, AddressErrorCode, AlternateDomain, AlternateServer, AttributeType,
    ChannelNumber, Data, DontFragment, ErrorCode, EvenPort, Fingerprint, IceControlled,
    IceControlling, Icmp, Lifetime, MappedAddress, MessageIntegrity, MessageIntegritySha256, Nonce,
    PasswordAlgorithm, PasswordAlgorithms, Priority, Realm, RequestedAddressFamily,
    RequestedTransport, ReservationToken, Software, UnknownAttributes, UseCandidate, Userhash,
    Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use librice_proto::stun::server::{BindingServer, LongTermServer, Outcome, ServerAuth};
use librice_proto::stun::transaction::{LongTermAuth, RetransmitConfig, Transactions};
use librice_proto::stun::{
    FramingMode, IntegrityAlgorithm, IntegrityKey, Message, MessageType, MessageWriter,
    SecurityFeatures, StreamFramer, looks_like_stun,
};
use librice_proto::{Transmit, TransportType};

/// Decodes every occurrence of every typed attribute, and the first one through
/// `Message::attribute`, touching what the decoded values expose.
macro_rules! decode_all {
    ($msg:expr, $raw:expr, $($ty:ty),* $(,)?) => {
        $(
            if $raw.attr_type() == <$ty as librice_proto::stun::attr::AttributeDecode>::TYPE {
                if let Ok(value) = $raw.decode::<$ty>(&$msg.transaction_id()) {
                    std::hint::black_box(format!("{value:?}"));
                }
                let _ = std::hint::black_box($msg.attribute::<$ty>());
            }
        )*
    };
}

fn touch_message(msg: &Message<'_>) {
    std::hint::black_box(format!("{msg:?}"));
    for raw in msg.attributes() {
        std::hint::black_box(raw.attr_type().name());
        decode_all!(
            msg,
            raw,
            MappedAddress,
            XorMappedAddress,
            XorPeerAddress,
            XorRelayedAddress,
            AlternateServer,
            Username<'_>,
            Realm<'_>,
            Nonce<'_>,
            Userhash<'_>,
            PasswordAlgorithm<'_>,
            MessageIntegrity<'_>,
            MessageIntegritySha256<'_>,
            Priority,
            UseCandidate,
            IceControlled,
            IceControlling,
            Software<'_>,
            AlternateDomain<'_>,
            Fingerprint,
            ChannelNumber,
            Lifetime,
            Data<'_>,
            RequestedAddressFamily,
            AdditionalAddressFamily,
            EvenPort,
            RequestedTransport,
            DontFragment,
            ReservationToken,
            AddressErrorCode<'_>,
            Icmp,
        );
        match raw.attr_type() {
            AttributeType::PASSWORD_ALGORITHMS => {
                if let Ok(list) = raw.decode::<PasswordAlgorithms<'_>>(&msg.transaction_id()) {
                    std::hint::black_box(list.iter().count());
                    std::hint::black_box(list.as_wire());
                }
            }
            AttributeType::UNKNOWN_ATTRIBUTES => {
                if let Ok(list) = raw.decode::<UnknownAttributes<'_>>(&msg.transaction_id()) {
                    std::hint::black_box(list.iter().count());
                    std::hint::black_box(list.len());
                }
            }
            AttributeType::ERROR_CODE => {
                if let Ok(code) = raw.decode::<ErrorCode<'_>>(&msg.transaction_id()) {
                    std::hint::black_box((code.code, code.reason));
                }
            }
            _ => {}
        }
    }
    let _ = msg.attribute::<PasswordAlgorithms<'_>>();
    let _ = msg.attribute::<UnknownAttributes<'_>>();
    let _ = msg.attribute::<ErrorCode<'_>>();
    if let Ok(Some(Nonce(nonce))) = msg.attribute::<Nonce<'_>>() {
        std::hint::black_box(SecurityFeatures::from_nonce(nonce));
    }

    let _ = msg.check_fingerprint();
    let key = IntegrityKey::from_bytes(b"fuzz-key");
    let _ = msg.check_integrity(&key);
    let _ = msg.check_integrity_with(&key, IntegrityAlgorithm::Sha1);
    let _ = msg.check_integrity_with(&key, IntegrityAlgorithm::Sha256);
}

/// Runs `data` through `server` and checks any answer it writes.
fn serve(server: &BindingServer, from: SocketAddr, data: &[u8]) {
    let mut out = Vec::new();
    let outcome = server.handle(from, data, &mut out);
    match outcome {
        Outcome::Success | Outcome::Error(_) => {
            let response = Message::parse(&out).expect("the server writes valid messages");
            response
                .check_fingerprint()
                .expect("the server's responses carry a good FINGERPRINT");
            assert!(response.class().is_response());
            let request_id = librice_proto::stun::MessageHeader::parse(data)
                .expect("answered messages have a header")
                .transaction_id;
            assert_eq!(response.transaction_id(), request_id);
            touch_message(&response);
        }
        _ => assert!(
            out.is_empty(),
            "nothing is written for a dropped message: {outcome:?}"
        ),
    }
}

/// Gives `msg` to the client side: response matching and the long-term error handling.
fn client_side(msg: &Message<'_>, now: Instant) {
    let mut transactions = Transactions::new(RetransmitConfig::default());
    let mut request = Vec::new();
    MessageWriter::new(
        &mut request,
        MessageType::BINDING_REQUEST,
        msg.transaction_id(),
    );
    let transmit = Transmit {
        transport: TransportType::Udp,
        from: "192.0.2.1:1".parse().expect("valid address"),
        to: "192.0.2.2:2".parse().expect("valid address"),
        data: request,
    };
    let key = IntegrityKey::from_bytes(b"fuzz-key");
    let integrity = librice_proto::stun::transaction::ResponseIntegrity {
        key,
        algorithm: IntegrityAlgorithm::Sha1,
        // Long-term transactions take unsigned 401 and 438 answers; short-term ones do not.
        long_term: msg.transaction_id().as_bytes()[0] & 1 == 1,
    };
    if transactions
        .start(now, transmit, (), Some(integrity), None)
        .is_ok()
    {
        let _ = transactions.poll_transmit(now);
        std::hint::black_box(transactions.handle_response(msg));
    }

    let mut auth = LongTermAuth::new("user", "password").expect("valid credentials");
    let outcome = auth.handle_error_response(msg);
    std::hint::black_box(&outcome);
    if auth.is_ready() {
        // A challenge was taken: signing a request with it must work.
        let mut buf = Vec::new();
        let mut w =
            MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, msg.transaction_id());
        if auth.write_credentials(&mut w).is_ok() {
            let signed = w.finish().to_vec();
            let parsed = Message::parse(&signed).expect("signed requests parse");
            let integrity = auth.response_integrity().expect("ready");
            parsed
                .check_integrity_with(&integrity.key, integrity.algorithm)
                .expect("a request verifies with the key it was signed with");
        }
        // A second answer from the same server goes through the bid-down checks.
        std::hint::black_box(auth.handle_error_response(msg));
    }
}

fn frame(data: &[u8]) {
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let (first, second) = data.split_at(split);
    for mode in [
        FramingMode::Stun,
        FramingMode::StunAndChannelData,
        FramingMode::Rfc4571,
    ] {
        let mut framer = StreamFramer::new(mode);
        for chunk in [first, second] {
            framer.push(chunk);
            while let Some(Ok(frame)) = framer.next_frame() {
                if let Ok(msg) = Message::parse(frame.bytes) {
                    std::hint::black_box(msg.transaction_id());
                }
            }
        }
        std::hint::black_box(framer.buffered());
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    #[allow(clippy::disallowed_methods)] // the fuzzer only needs some instant as a clock origin
    let now = Instant::now();
    let v4: SocketAddr = "203.0.113.9:40000".parse().expect("valid address");
    let v6: SocketAddr = "[2001:db8::9]:40000".parse().expect("valid address");

    std::hint::black_box(looks_like_stun(data));
    if let Ok(msg) = Message::parse(data) {
        touch_message(&msg);
        client_side(&msg, now);
    }

    serve(
        &BindingServer::new(ServerAuth::None).with_software("fuzz"),
        v4,
        data,
    );
    serve(
        &BindingServer::new(ServerAuth::ShortTerm {
            username: "user".into(),
            password: "password".into(),
        }),
        v6,
        data,
    );
    for features in [
        SecurityFeatures::default(),
        SecurityFeatures {
            password_algorithms: true,
            username_anonymity: true,
        },
    ] {
        let mut lt = LongTermServer::new("realm", "nonce", features);
        lt.add_user("user", "password");
        serve(&BindingServer::new(ServerAuth::LongTerm(lt)), v4, data);
    }

    frame(data);
}
