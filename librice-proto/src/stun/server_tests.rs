//! Tests of the Binding server: answers, 420, drops, and short-term and long-term
//! authentication (RFC 8489 §6.3, §9.1.3, §9.2.4).

use std::net::SocketAddr;

use super::*;
use crate::stun::attr::{AttributeType, MessageIntegrity};
use crate::stun::{MAGIC_COOKIE, TransactionId};

const REALM: &str = "example.org";

fn client_v4() -> SocketAddr {
    "203.0.113.7:40000".parse().expect("valid address")
}

fn client_v6() -> SocketAddr {
    "[2001:db8::7]:40001".parse().expect("valid address")
}

fn txid(n: u8) -> TransactionId {
    TransactionId([n; 12])
}

/// How a test request is signed.
#[derive(Clone, Copy)]
enum Sign<'k> {
    None,
    Sha1(&'k IntegrityKey),
    Sha256(&'k IntegrityKey),
}

/// Credential attributes of a test request.
#[derive(Clone, Copy, Default)]
struct Creds<'a> {
    username: Option<&'a str>,
    realm: Option<&'a str>,
    nonce: Option<&'a str>,
    password_algorithm: Option<PasswordAlgorithmId>,
}

fn request(id: TransactionId, creds: Creds<'_>, sign: Sign<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, id);
    if let Some(name) = creds.username {
        w.add(&Username(name)).expect("fits");
    }
    if let Some(realm) = creds.realm {
        w.add(&Realm(realm)).expect("fits");
    }
    if let Some(nonce) = creds.nonce {
        w.add(&Nonce(nonce)).expect("fits");
    }
    if let Some(algorithm) = creds.password_algorithm {
        w.add(&PasswordAlgorithms::new(&[
            PasswordAlgorithmId::SHA256,
            PasswordAlgorithmId::MD5,
        ]))
        .expect("fits");
        w.add(&PasswordAlgorithm {
            algorithm,
            params: &[],
        })
        .expect("fits");
    }
    match sign {
        Sign::None => {}
        Sign::Sha1(key) => w.add_message_integrity(key).expect("fits"),
        Sign::Sha256(key) => w.add_message_integrity_sha256(key).expect("fits"),
    }
    w.add_fingerprint().expect("fits");
    buf
}

fn plain_request(id: TransactionId) -> Vec<u8> {
    request(id, Creds::default(), Sign::None)
}

/// Runs `data` through `server` and returns the outcome and the response bytes.
fn answer(server: &BindingServer, from: SocketAddr, data: &[u8]) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let outcome = server.handle(from, data, &mut out);
    (outcome, out)
}

/// Checks the parts every response shares: a Binding response to `id` with a good
/// FINGERPRINT.
fn parse_response(bytes: &[u8], id: TransactionId) -> Message<'_> {
    let msg = Message::parse(bytes).expect("the response parses");
    assert_eq!(msg.method(), Method::BINDING);
    assert!(msg.class().is_response());
    assert_eq!(msg.transaction_id(), id);
    msg.check_fingerprint()
        .expect("responses carry a good FINGERPRINT");
    msg
}

fn error_code(msg: &Message<'_>) -> u16 {
    msg.attribute::<ErrorCode<'_>>()
        .expect("well formed")
        .expect("an error response has ERROR-CODE")
        .code
}

fn assert_error(outcome: Outcome, bytes: &[u8], id: TransactionId, code: u16) -> Message<'_> {
    assert_eq!(outcome, Outcome::Error(code));
    let msg = parse_response(bytes, id);
    assert_eq!(msg.class(), MessageClass::Error);
    assert_eq!(error_code(&msg), code);
    assert!(
        !msg.has_integrity(),
        "error responses here cannot be signed"
    );
    msg
}

#[test]
fn answers_with_the_source_address_ipv4_and_ipv6() {
    let server = BindingServer::new(ServerAuth::None);
    for (n, from) in [(1, client_v4()), (2, client_v6())] {
        let (outcome, bytes) = answer(&server, from, &plain_request(txid(n)));
        assert_eq!(outcome, Outcome::Success);
        let msg = parse_response(&bytes, txid(n));
        assert_eq!(msg.class(), MessageClass::Success);
        assert_eq!(
            msg.attribute::<XorMappedAddress>(),
            Ok(Some(XorMappedAddress(from)))
        );
        assert_eq!(
            msg.attribute::<Software<'_>>(),
            Ok(None),
            "no SOFTWARE unless configured"
        );
        assert!(!msg.has_integrity());
    }
}

#[test]
fn answers_requests_without_fingerprint() {
    let server = BindingServer::default();
    let mut data = Vec::new();
    MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, txid(3));
    let (outcome, bytes) = answer(&server, client_v4(), &data);
    assert_eq!(outcome, Outcome::Success);
    parse_response(&bytes, txid(3));
}

#[test]
fn adds_software_when_configured() {
    let server = BindingServer::new(ServerAuth::None).with_software("librice test");
    let (outcome, bytes) = answer(&server, client_v4(), &plain_request(txid(4)));
    assert_eq!(outcome, Outcome::Success);
    let msg = parse_response(&bytes, txid(4));
    assert_eq!(
        msg.attribute::<Software<'_>>(),
        Ok(Some(Software("librice test")))
    );

    // Error responses carry it too.
    let server = BindingServer::new(ServerAuth::ShortTerm {
        username: "u".into(),
        password: "p".into(),
    })
    .with_software("librice test");
    let (outcome, bytes) = answer(&server, client_v4(), &plain_request(txid(5)));
    let msg = assert_error(outcome, &bytes, txid(5), 400);
    assert_eq!(
        msg.attribute::<Software<'_>>(),
        Ok(Some(Software("librice test")))
    );
}

#[test]
fn unknown_comprehension_required_attributes_get_420() {
    let server = BindingServer::new(ServerAuth::None);
    let mut data = Vec::new();
    let mut w = MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, txid(6));
    w.add_raw(AttributeType::new(0x7777), b"abcd")
        .expect("fits");
    w.add_raw(AttributeType::new(0xC001), b"optional")
        .expect("fits");
    w.add_raw(AttributeType::new(0x0030), b"").expect("fits");
    w.add_fingerprint().expect("fits");

    let (outcome, bytes) = answer(&server, client_v4(), &data);

    // RFC 8489 §6.3.1.1: 420 listing the comprehension-required types only.
    let msg = assert_error(outcome, &bytes, txid(6), 420);
    let unknown = msg
        .attribute::<UnknownAttributes<'_>>()
        .expect("well formed")
        .expect("420 carries UNKNOWN-ATTRIBUTES");
    let listed: Vec<u16> = unknown.iter().map(AttributeType::value).collect();
    assert_eq!(listed, [0x7777, 0x0030]);
}

#[test]
fn unknown_attributes_in_an_indication_are_dropped() {
    let server = BindingServer::new(ServerAuth::None);
    let mut data = Vec::new();
    let mut w = MessageWriter::new(&mut data, MessageType::BINDING_INDICATION, txid(7));
    w.add_raw(AttributeType::new(0x7777), b"abcd")
        .expect("fits");
    let (outcome, bytes) = answer(&server, client_v4(), &data);
    assert_eq!(outcome, Outcome::Dropped(DropReason::NotARequest));
    assert!(bytes.is_empty());
}

#[test]
fn drops_what_it_must_not_answer() {
    let server = BindingServer::new(ServerAuth::None);
    let id = txid(8);
    let of_type = |ty: MessageType| {
        let mut data = Vec::new();
        MessageWriter::new(&mut data, ty, id);
        data
    };
    let mut bad_cookie = plain_request(id);
    bad_cookie[4] ^= 0xFF;
    let found = MAGIC_COOKIE ^ 0xFF00_0000;
    let mut not_stun = plain_request(id);
    not_stun[0] |= 0x80;
    let mut bad_fingerprint = plain_request(id);
    let last = bad_fingerprint.len() - 1;
    bad_fingerprint[last] ^= 0x01;
    let mut trailing = plain_request(id);
    trailing.extend_from_slice(&[0; 4]);
    let allocate = MessageType::new(MessageClass::Request, Method::ALLOCATE);

    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "indication",
            of_type(MessageType::BINDING_INDICATION),
            DropReason::NotARequest,
        ),
        (
            "success",
            of_type(MessageType::BINDING_SUCCESS),
            DropReason::NotARequest,
        ),
        (
            "error",
            of_type(MessageType::BINDING_ERROR),
            DropReason::NotARequest,
        ),
        (
            "allocate",
            of_type(allocate),
            DropReason::UnsupportedMethod(Method::ALLOCATE),
        ),
        (
            "garbage",
            b"hello".to_vec(),
            DropReason::Malformed(StunParseError::TooShort { len: 5 }),
        ),
        (
            "leading bits",
            not_stun,
            DropReason::Malformed(StunParseError::NotStun),
        ),
        (
            "magic cookie",
            bad_cookie,
            DropReason::Malformed(StunParseError::BadMagicCookie { found }),
        ),
        (
            "trailing bytes",
            trailing,
            DropReason::Malformed(StunParseError::TrailingBytes {
                expected: 28,
                available: 32,
            }),
        ),
        ("fingerprint", bad_fingerprint, DropReason::BadFingerprint),
    ];
    for (name, data, reason) in cases {
        let (outcome, bytes) = answer(&server, client_v4(), &data);
        assert_eq!(outcome, Outcome::Dropped(reason), "{name}");
        assert!(
            bytes.is_empty(),
            "{name}: nothing is written for a dropped message"
        );
    }
}

fn short_term_server() -> BindingServer {
    BindingServer::new(ServerAuth::ShortTerm {
        username: "remote:local".into(),
        password: "the-ice-password".into(),
    })
}

#[test]
fn short_term_without_username_is_400() {
    let server = short_term_server();
    let key = IntegrityKey::short_term("the-ice-password").expect("valid");
    let data = request(txid(9), Creds::default(), Sign::Sha1(&key));
    let (outcome, bytes) = answer(&server, client_v4(), &data);
    assert_error(outcome, &bytes, txid(9), 400);
}

#[test]
fn short_term_without_integrity_is_400() {
    let server = short_term_server();
    let creds = Creds {
        username: Some("remote:local"),
        ..Creds::default()
    };
    let (outcome, bytes) = answer(&server, client_v4(), &request(txid(10), creds, Sign::None));
    assert_error(outcome, &bytes, txid(10), 400);
}

#[test]
fn short_term_wrong_username_or_password_is_401() {
    let server = short_term_server();
    let right = IntegrityKey::short_term("the-ice-password").expect("valid");
    let wrong = IntegrityKey::short_term("not-the-password").expect("valid");
    let cases = [
        (txid(11), "someone:else", &right),
        (txid(12), "remote:local", &wrong),
    ];
    for (id, username, key) in cases {
        let creds = Creds {
            username: Some(username),
            ..Creds::default()
        };
        let (outcome, bytes) = answer(&server, client_v4(), &request(id, creds, Sign::Sha1(key)));
        assert_error(outcome, &bytes, id, 401);
    }
}

#[test]
fn short_term_success_is_signed_like_the_request() {
    let server = short_term_server();
    let key = IntegrityKey::short_term("the-ice-password").expect("valid");
    let creds = Creds {
        username: Some("remote:local"),
        ..Creds::default()
    };

    let (outcome, bytes) = answer(
        &server,
        client_v4(),
        &request(txid(13), creds, Sign::Sha1(&key)),
    );
    assert_eq!(outcome, Outcome::Success);
    let msg = parse_response(&bytes, txid(13));
    assert_eq!(msg.class(), MessageClass::Success);
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
    assert!(!msg.has_attribute(AttributeType::MESSAGE_INTEGRITY_SHA256));
    assert_eq!(
        msg.attribute::<XorMappedAddress>(),
        Ok(Some(XorMappedAddress(client_v4())))
    );

    let (outcome, bytes) = answer(
        &server,
        client_v6(),
        &request(txid(14), creds, Sign::Sha256(&key)),
    );
    assert_eq!(outcome, Outcome::Success);
    let msg = parse_response(&bytes, txid(14));
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha256));
    assert!(!msg.has_attribute(AttributeType::MESSAGE_INTEGRITY));
    assert_eq!(
        msg.attribute::<XorMappedAddress>(),
        Ok(Some(XorMappedAddress(client_v6())))
    );

    // The response does not verify with another key.
    let other = IntegrityKey::short_term("not-the-password").expect("valid");
    assert_eq!(
        msg.check_integrity(&other),
        Err(IntegrityError::IntegrityMismatch)
    );
}

#[test]
fn short_term_request_with_both_integrity_attributes_gets_sha256() {
    let server = short_term_server();
    let key = IntegrityKey::short_term("the-ice-password").expect("valid");
    let mut data = Vec::new();
    let mut w = MessageWriter::new(&mut data, MessageType::BINDING_REQUEST, txid(15));
    w.add(&Username("remote:local")).expect("fits");
    w.add_message_integrity(&key).expect("fits");
    w.add_message_integrity_sha256(&key).expect("fits");
    w.add_fingerprint().expect("fits");
    let (outcome, bytes) = answer(&server, client_v4(), &data);
    assert_eq!(outcome, Outcome::Success);
    let msg = parse_response(&bytes, txid(15));
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha256));
}

fn long_term_server(features: SecurityFeatures) -> BindingServer {
    let mut lt = LongTermServer::new(REALM, "nonce-one", features);
    lt.add_user("alice", "alice-password");
    lt.add_user("bob", "bob-password");
    BindingServer::new(ServerAuth::LongTerm(lt))
}

fn set_nonce(server: &mut BindingServer, body: &str) {
    match server.auth_mut() {
        ServerAuth::LongTerm(lt) => lt.set_nonce(body),
        other => panic!("not a long-term server: {other:?}"),
    }
}

fn md5_key(user: &str, password: &str) -> IntegrityKey {
    IntegrityKey::long_term(user, REALM, password, PasswordAlgorithmId::MD5).expect("valid")
}

/// REALM and NONCE of a 401 or 438.
fn challenge(msg: &Message<'_>) -> (String, String) {
    let Ok(Some(Realm(realm))) = msg.attribute::<Realm<'_>>() else {
        panic!("no REALM in {msg:?}");
    };
    let Ok(Some(Nonce(nonce))) = msg.attribute::<Nonce<'_>>() else {
        panic!("no NONCE in {msg:?}");
    };
    (realm.to_owned(), nonce.to_owned())
}

#[test]
fn long_term_without_integrity_is_challenged() {
    let server = long_term_server(SecurityFeatures::default());
    let (outcome, bytes) = answer(&server, client_v4(), &plain_request(txid(16)));
    let msg = assert_error(outcome, &bytes, txid(16), 401);
    // RFC 8489 §9.2.4: REALM and NONCE; without features, no cookie (an RFC 5389 server).
    assert_eq!(challenge(&msg), (REALM.to_owned(), "nonce-one".to_owned()));
    assert_eq!(msg.attribute::<PasswordAlgorithms<'_>>(), Ok(None));
}

#[test]
fn long_term_challenge_announces_features_in_the_nonce() {
    let features = SecurityFeatures {
        password_algorithms: true,
        username_anonymity: false,
    };
    let server = long_term_server(features);
    let (outcome, bytes) = answer(&server, client_v4(), &plain_request(txid(17)));
    let msg = assert_error(outcome, &bytes, txid(17), 401);
    let (_, nonce) = challenge(&msg);
    assert!(nonce.starts_with(NONCE_COOKIE), "{nonce}");
    assert!(nonce.ends_with("nonce-one"), "{nonce}");
    assert_eq!(SecurityFeatures::from_nonce(&nonce), Some(features));
    let offered: Vec<PasswordAlgorithmId> = msg
        .attribute::<PasswordAlgorithms<'_>>()
        .expect("well formed")
        .expect("offered with the feature")
        .iter()
        .map(|a| a.algorithm)
        .collect();
    assert_eq!(
        offered,
        [PasswordAlgorithmId::SHA256, PasswordAlgorithmId::MD5]
    );
}

#[test]
fn long_term_success_is_signed() {
    let server = long_term_server(SecurityFeatures::default());
    let key = md5_key("alice", "alice-password");
    let creds = Creds {
        username: Some("alice"),
        realm: Some(REALM),
        nonce: Some("nonce-one"),
        ..Creds::default()
    };
    let (outcome, bytes) = answer(
        &server,
        client_v4(),
        &request(txid(18), creds, Sign::Sha1(&key)),
    );
    assert_eq!(outcome, Outcome::Success);
    let msg = parse_response(&bytes, txid(18));
    assert_eq!(msg.class(), MessageClass::Success);
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
    assert!(
        msg.attribute::<MessageIntegrity<'_>>()
            .expect("well formed")
            .is_some()
    );
    assert_eq!(
        msg.attribute::<XorMappedAddress>(),
        Ok(Some(XorMappedAddress(client_v4())))
    );
}

#[test]
fn long_term_wrong_password_or_user_is_401_with_a_challenge() {
    let server = long_term_server(SecurityFeatures::default());
    let cases = [
        (txid(19), "alice", md5_key("alice", "bob-password")),
        (txid(20), "carol", md5_key("carol", "alice-password")),
    ];
    for (id, user, key) in cases {
        let creds = Creds {
            username: Some(user),
            realm: Some(REALM),
            nonce: Some("nonce-one"),
            ..Creds::default()
        };
        let (outcome, bytes) = answer(&server, client_v4(), &request(id, creds, Sign::Sha1(&key)));
        let msg = assert_error(outcome, &bytes, id, 401);
        assert_eq!(challenge(&msg), (REALM.to_owned(), "nonce-one".to_owned()));
    }
}

#[test]
fn long_term_missing_credential_attributes_is_400() {
    let server = long_term_server(SecurityFeatures::default());
    let key = md5_key("alice", "alice-password");
    let full = Creds {
        username: Some("alice"),
        realm: Some(REALM),
        nonce: Some("nonce-one"),
        ..Creds::default()
    };
    let cases = [
        Creds {
            username: None,
            ..full
        },
        Creds {
            realm: None,
            ..full
        },
        Creds {
            nonce: None,
            ..full
        },
    ];
    for (n, creds) in (21..).zip(cases) {
        let (outcome, bytes) = answer(
            &server,
            client_v4(),
            &request(txid(n), creds, Sign::Sha1(&key)),
        );
        let msg = assert_error(outcome, &bytes, txid(n), 400);
        assert_eq!(msg.attribute::<Nonce<'_>>(), Ok(None));
    }
}

#[test]
fn long_term_password_algorithm_without_the_feature_is_400() {
    let server = long_term_server(SecurityFeatures::default());
    let key = md5_key("alice", "alice-password");
    let creds = Creds {
        username: Some("alice"),
        realm: Some(REALM),
        nonce: Some("nonce-one"),
        password_algorithm: Some(PasswordAlgorithmId::MD5),
    };
    let (outcome, bytes) = answer(
        &server,
        client_v4(),
        &request(txid(24), creds, Sign::Sha1(&key)),
    );
    assert_error(outcome, &bytes, txid(24), 400);
}

#[test]
fn long_term_sha256_password_algorithm_is_accepted_with_the_feature() {
    let features = SecurityFeatures {
        password_algorithms: true,
        username_anonymity: false,
    };
    let server = long_term_server(features);
    let nonce = match &server.auth {
        ServerAuth::LongTerm(lt) => lt.nonce().to_owned(),
        _ => unreachable!("built as long-term"),
    };
    let key = IntegrityKey::long_term(
        "alice",
        REALM,
        "alice-password",
        PasswordAlgorithmId::SHA256,
    )
    .expect("valid");
    let creds = Creds {
        username: Some("alice"),
        realm: Some(REALM),
        nonce: Some(&nonce),
        password_algorithm: Some(PasswordAlgorithmId::SHA256),
    };
    let (outcome, bytes) = answer(
        &server,
        client_v4(),
        &request(txid(25), creds, Sign::Sha256(&key)),
    );
    assert_eq!(outcome, Outcome::Success);
    let msg = parse_response(&bytes, txid(25));
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha256));
}

#[test]
fn long_term_stale_nonce_is_438_with_the_new_nonce() {
    let mut server = long_term_server(SecurityFeatures::default());
    // The client learns the first nonce...
    let (outcome, bytes) = answer(&server, client_v4(), &plain_request(txid(26)));
    let msg = assert_error(outcome, &bytes, txid(26), 401);
    let (realm, old_nonce) = challenge(&msg);
    // ...and the server moves on before the client uses it.
    set_nonce(&mut server, "nonce-two");

    let key = md5_key("alice", "alice-password");
    let stale = Creds {
        username: Some("alice"),
        realm: Some(&realm),
        nonce: Some(&old_nonce),
        ..Creds::default()
    };
    let (outcome, bytes) = answer(
        &server,
        client_v4(),
        &request(txid(27), stale, Sign::Sha1(&key)),
    );
    let msg = assert_error(outcome, &bytes, txid(27), 438);
    let (realm, new_nonce) = challenge(&msg);
    assert_eq!(new_nonce, "nonce-two");

    let fresh = Creds {
        nonce: Some(&new_nonce),
        realm: Some(&realm),
        ..stale
    };
    let (outcome, _) = answer(
        &server,
        client_v4(),
        &request(txid(28), fresh, Sign::Sha1(&key)),
    );
    assert_eq!(outcome, Outcome::Success);
}

#[test]
fn long_term_server_debug_hides_passwords() {
    let server = long_term_server(SecurityFeatures::default());
    let text = format!("{server:?}");
    assert!(!text.contains("alice-password"), "{text}");
    assert!(text.contains(REALM), "{text}");
}
