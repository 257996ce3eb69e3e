//! Tests of the long-term credential exchange (RFC 8489 §9.2): a [`LongTermAuth`] client
//! against a [`BindingServer`] with a [`LongTermServer`], driven in memory through
//! [`Transactions`], plus hand-made challenges for the cases a real server never sends.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::stun::attr::{AttributeType, XorMappedAddress};
use crate::stun::server::{BindingServer, LongTermServer, Outcome, ServerAuth};
use crate::stun::transaction::{ResponseOutcome, RetransmitConfig, Transactions};
use crate::stun::{HEADER_LEN, IntegrityError, MessageType, TransactionId};
use crate::transmit::{Transmit, TransportType};

const REALM: &str = "example.org";
const USER: &str = "alice";
const PASSWORD: &str = "alice-password";

/// An arbitrary origin for the virtual clock; the tests only ever add Durations to it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn client_addr() -> SocketAddr {
    "192.0.2.20:5000".parse().expect("valid address")
}

fn server_addr() -> SocketAddr {
    "198.51.100.2:3478".parse().expect("valid address")
}

const PASSWORD_ALGORITHMS: SecurityFeatures = SecurityFeatures {
    password_algorithms: true,
    username_anonymity: false,
};

const USERNAME_ANONYMITY: SecurityFeatures = SecurityFeatures {
    password_algorithms: false,
    username_anonymity: true,
};

fn server(features: SecurityFeatures) -> BindingServer {
    let mut lt = LongTermServer::new(REALM, "nonce-one", features);
    lt.add_user(USER, PASSWORD);
    BindingServer::new(ServerAuth::LongTerm(lt))
}

fn set_nonce(server: &mut BindingServer, body: &str) {
    match server.auth_mut() {
        ServerAuth::LongTerm(lt) => lt.set_nonce(body),
        other => panic!("not a long-term server: {other:?}"),
    }
}

/// One request and its answer.
struct Round {
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Round {
    fn request(&self) -> Message<'_> {
        Message::parse(&self.request).expect("requests parse")
    }

    fn response(&self) -> Message<'_> {
        Message::parse(&self.response).expect("responses parse")
    }
}

/// A client and a server joined by a lossless in-memory link.
struct Exchange {
    server: BindingServer,
    client: LongTermAuth,
    transactions: Transactions<u32>,
    now: Instant,
    next_id: u32,
    rounds: Vec<Round>,
}

impl Exchange {
    fn new(server: BindingServer, client: LongTermAuth) -> Self {
        Self {
            server,
            client,
            transactions: Transactions::new(RetransmitConfig::default()),
            now: origin(),
            next_id: 0,
            rounds: Vec::new(),
        }
    }

    fn next_txid(&mut self) -> TransactionId {
        self.next_id += 1;
        let mut id = [0x3C; 12];
        id[8..].copy_from_slice(&self.next_id.to_be_bytes());
        TransactionId(id)
    }

    /// A Binding request signed as the client's state says.
    fn signed_request(&mut self) -> Vec<u8> {
        let id = self.next_txid();
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, id);
        self.client
            .write_credentials(&mut w)
            .expect("credentials fit");
        w.add_fingerprint().expect("fits");
        buf
    }

    /// Sends one request through a transaction, lets the server answer it, checks that
    /// the answer ends the transaction (its integrity, when asked for, included), and
    /// returns the answer.
    fn round(&mut self) -> Vec<u8> {
        let request = self.signed_request();
        let integrity = self.client.response_integrity();
        let transmit = Transmit {
            transport: TransportType::Udp,
            from: client_addr(),
            to: server_addr(),
            data: request,
        };
        let id = self
            .transactions
            .start(self.now, transmit, self.next_id, integrity, None)
            .expect("a fresh request");
        let sent = self
            .transactions
            .poll_transmit(self.now)
            .expect("sent at once");
        let mut response = Vec::new();
        let outcome = self.server.handle(sent.from, &sent.data, &mut response);
        assert!(
            matches!(outcome, Outcome::Success | Outcome::Error(_)),
            "the server answers every request: {outcome:?}"
        );
        let msg = Message::parse(&response).expect("the server writes valid messages");
        assert_eq!(
            self.transactions.handle_response(&msg),
            ResponseOutcome::Matched {
                id,
                context: self.next_id,
                to: server_addr(),
                from: client_addr(),
            }
        );
        self.now += Duration::from_millis(20);
        self.rounds.push(Round {
            request: sent.data,
            response: response.clone(),
        });
        response
    }

    /// Runs requests until one succeeds or authentication fails, at most `max_rounds`.
    fn run(&mut self, max_rounds: usize) -> Result<(), AuthError> {
        for _ in 0..max_rounds {
            let response = self.round();
            let msg = Message::parse(&response).expect("parsed before");
            if msg.class() == MessageClass::Success {
                self.client.handle_success();
                return Ok(());
            }
            match self.client.handle_error_response(&msg) {
                AuthOutcome::Retry => continue,
                AuthOutcome::Failed(e) => return Err(e),
                AuthOutcome::NotAuthError => panic!("unexpected error {msg:?}"),
            }
        }
        panic!("no conclusion after {max_rounds} rounds");
    }

    fn last(&self) -> &Round {
        self.rounds.last().expect("a round ran")
    }

    fn codes(&self) -> Vec<u16> {
        self.rounds
            .iter()
            .map(|r| match r.response().attribute::<ErrorCode<'_>>() {
                Ok(Some(code)) => code.code,
                _ => 200,
            })
            .collect()
    }
}

fn client() -> LongTermAuth {
    LongTermAuth::new(USER, PASSWORD).expect("valid credentials")
}

fn nonce_of(msg: &Message<'_>) -> String {
    match msg.attribute::<Nonce<'_>>() {
        Ok(Some(Nonce(nonce))) => nonce.to_owned(),
        other => panic!("no NONCE: {other:?}"),
    }
}

#[test]
fn rfc5389_server_gets_md5_and_message_integrity() {
    let mut ex = Exchange::new(server(SecurityFeatures::default()), client());
    assert!(!ex.client.is_ready());
    assert!(ex.client.response_integrity().is_none());

    assert_eq!(ex.run(4), Ok(()));

    assert_eq!(ex.codes(), [401, 200]);
    // RFC 8489 §9.2.3: the first request carries no credentials.
    let first = ex.rounds[0].request();
    assert!(!first.has_integrity());
    assert!(!first.has_attribute(AttributeType::USERNAME));

    assert!(ex.client.is_ready());
    assert_eq!(ex.client.realm(), Some(REALM));
    assert_eq!(ex.client.nonce(), Some("nonce-one"));
    assert_eq!(
        ex.client.password_algorithm(),
        Some(PasswordAlgorithmId::MD5)
    );
    let integrity = ex.client.response_integrity().expect("ready");
    assert_eq!(integrity.algorithm, IntegrityAlgorithm::Sha1);

    let key =
        IntegrityKey::long_term(USER, REALM, PASSWORD, PasswordAlgorithmId::MD5).expect("valid");
    let request = ex.last().request();
    assert_eq!(
        request.attribute::<Username<'_>>(),
        Ok(Some(Username(USER)))
    );
    assert_eq!(request.attribute::<Realm<'_>>(), Ok(Some(Realm(REALM))));
    assert_eq!(
        request.attribute::<Nonce<'_>>(),
        Ok(Some(Nonce("nonce-one")))
    );
    assert!(!request.has_attribute(AttributeType::PASSWORD_ALGORITHMS));
    assert!(!request.has_attribute(AttributeType::PASSWORD_ALGORITHM));
    assert!(!request.has_attribute(AttributeType::MESSAGE_INTEGRITY_SHA256));
    assert_eq!(request.check_integrity(&key), Ok(IntegrityAlgorithm::Sha1));

    let response = ex.last().response();
    assert_eq!(response.check_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
    assert_eq!(
        response.attribute::<XorMappedAddress>(),
        Ok(Some(XorMappedAddress(client_addr())))
    );
}

#[test]
fn password_algorithms_server_gets_sha256() {
    let mut ex = Exchange::new(server(PASSWORD_ALGORITHMS), client());

    assert_eq!(ex.run(4), Ok(()));

    assert_eq!(ex.codes(), [401, 200]);
    assert_eq!(
        ex.client.password_algorithm(),
        Some(PasswordAlgorithmId::SHA256)
    );
    assert_eq!(
        ex.client.response_integrity().expect("ready").algorithm,
        IntegrityAlgorithm::Sha256
    );

    let challenge = ex.rounds[0].response();
    let request = ex.last().request();
    // RFC 8489 §9.2.5: PASSWORD-ALGORITHMS echoed byte for byte, the first supported
    // algorithm chosen, and MESSAGE-INTEGRITY-SHA256 only.
    let offered = challenge
        .raw_attribute(AttributeType::PASSWORD_ALGORITHMS)
        .expect("offered");
    let echoed = request
        .raw_attribute(AttributeType::PASSWORD_ALGORITHMS)
        .expect("echoed");
    assert_eq!(offered.value(), echoed.value());
    let chosen = request
        .attribute::<PasswordAlgorithm<'_>>()
        .expect("well formed")
        .expect("sent");
    assert_eq!(chosen.algorithm, PasswordAlgorithmId::SHA256);
    assert!(request.has_attribute(AttributeType::MESSAGE_INTEGRITY_SHA256));
    assert!(!request.has_attribute(AttributeType::MESSAGE_INTEGRITY));

    let key =
        IntegrityKey::long_term(USER, REALM, PASSWORD, PasswordAlgorithmId::SHA256).expect("valid");
    assert_eq!(
        request.check_integrity(&key),
        Ok(IntegrityAlgorithm::Sha256)
    );
    let response = ex.last().response();
    assert_eq!(
        response.check_integrity(&key),
        Ok(IntegrityAlgorithm::Sha256)
    );
}

#[test]
fn username_anonymity_sends_userhash_when_preferred() {
    let mut ex = Exchange::new(server(USERNAME_ANONYMITY), client().prefer_userhash(true));

    assert_eq!(ex.run(4), Ok(()));

    assert_eq!(ex.codes(), [401, 200]);
    let request = ex.last().request();
    let expected = userhash(USER, REALM).expect("valid");
    assert_eq!(
        request.attribute::<Userhash<'_>>(),
        Ok(Some(Userhash(&expected)))
    );
    assert!(!request.has_attribute(AttributeType::USERNAME));
}

#[test]
fn username_anonymity_with_password_algorithms() {
    let both = SecurityFeatures {
        password_algorithms: true,
        username_anonymity: true,
    };
    let mut ex = Exchange::new(server(both), client().prefer_userhash(true));

    assert_eq!(ex.run(4), Ok(()));

    let request = ex.last().request();
    assert!(request.has_attribute(AttributeType::USERHASH));
    assert!(!request.has_attribute(AttributeType::USERNAME));
    assert!(request.has_attribute(AttributeType::MESSAGE_INTEGRITY_SHA256));
}

#[test]
fn username_is_sent_unless_both_sides_want_userhash() {
    let cases = [
        (USERNAME_ANONYMITY, false),
        (SecurityFeatures::default(), true),
        (PASSWORD_ALGORITHMS, true),
    ];
    for (features, prefer) in cases {
        let mut ex = Exchange::new(server(features), client().prefer_userhash(prefer));
        assert_eq!(ex.run(4), Ok(()), "{features:?}, prefer {prefer}");
        let request = ex.last().request();
        assert_eq!(
            request.attribute::<Username<'_>>(),
            Ok(Some(Username(USER)))
        );
        assert!(!request.has_attribute(AttributeType::USERHASH));
    }
}

#[test]
fn stale_nonce_is_retried_with_the_new_one() {
    for features in [SecurityFeatures::default(), PASSWORD_ALGORITHMS] {
        let mut ex = Exchange::new(server(features), client());
        assert_eq!(ex.run(4), Ok(()));
        let old_nonce = ex.client.nonce().expect("ready").to_owned();

        set_nonce(&mut ex.server, "nonce-two");
        assert_eq!(ex.run(4), Ok(()), "{features:?}");

        assert_eq!(ex.codes(), [401, 200, 438, 200], "{features:?}");
        let new_nonce = ex.client.nonce().expect("ready").to_owned();
        assert_ne!(new_nonce, old_nonce);
        assert!(new_nonce.ends_with("nonce-two"));
        assert_eq!(nonce_of(&ex.rounds[2].request()), old_nonce);
        assert_eq!(nonce_of(&ex.rounds[2].response()), new_nonce);
        assert_eq!(nonce_of(&ex.rounds[3].request()), new_nonce);
    }
}

#[test]
fn wrong_password_is_retried_once_then_rejected() {
    let client = LongTermAuth::new(USER, "not-the-password").expect("valid");
    let mut ex = Exchange::new(server(SecurityFeatures::default()), client);

    assert_eq!(ex.run(4), Err(AuthError::Rejected));

    // RFC 8489 §9.2.5: no second retry with unchanged credentials.
    assert_eq!(ex.codes(), [401, 401]);
}

#[test]
fn unknown_user_is_rejected() {
    let client = LongTermAuth::new("mallory", PASSWORD).expect("valid");
    let mut ex = Exchange::new(server(PASSWORD_ALGORITHMS), client);
    assert_eq!(ex.run(4), Err(AuthError::Rejected));
    assert_eq!(ex.codes(), [401, 401]);
}

#[test]
fn endless_stale_nonces_give_up_after_three_retries() {
    let mut ex = Exchange::new(server(SecurityFeatures::default()), client());
    let first = ex.round();
    let msg = Message::parse(&first).expect("parses");
    assert_eq!(ex.client.handle_error_response(&msg), AuthOutcome::Retry);

    let mut outcomes = Vec::new();
    for n in 0..4 {
        set_nonce(&mut ex.server, &format!("rotated-{n}"));
        let response = ex.round();
        let msg = Message::parse(&response).expect("parses");
        outcomes.push(ex.client.handle_error_response(&msg));
    }

    assert_eq!(ex.codes(), [401, 438, 438, 438, 438]);
    assert_eq!(
        outcomes,
        [
            AuthOutcome::Retry,
            AuthOutcome::Retry,
            AuthOutcome::Retry,
            AuthOutcome::Failed(AuthError::TooManyStaleNonces),
        ]
    );
}

#[test]
fn a_success_resets_the_stale_nonce_count() {
    let mut ex = Exchange::new(server(SecurityFeatures::default()), client());
    assert_eq!(ex.run(4), Ok(()));
    for n in 0..3 {
        set_nonce(&mut ex.server, &format!("first-{n}"));
        let response = ex.round();
        let msg = Message::parse(&response).expect("parses");
        assert_eq!(ex.client.handle_error_response(&msg), AuthOutcome::Retry);
    }
    assert_eq!(ex.run(4), Ok(()));
    // Three more stale nonces are retried again.
    for n in 0..3 {
        set_nonce(&mut ex.server, &format!("second-{n}"));
        let response = ex.round();
        let msg = Message::parse(&response).expect("parses");
        assert_eq!(
            ex.client.handle_error_response(&msg),
            AuthOutcome::Retry,
            "{n}"
        );
    }
    assert_eq!(ex.run(4), Ok(()));
}

/// A hand-made Binding error response to `id`.
fn crafted_error(
    id: TransactionId,
    code: u16,
    realm: Option<&str>,
    nonce: Option<&str>,
    algorithms: Option<&[PasswordAlgorithmId]>,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_ERROR, id);
    w.add(&ErrorCode::with_default_reason(code)).expect("fits");
    if let Some(realm) = realm {
        w.add(&Realm(realm)).expect("fits");
    }
    if let Some(nonce) = nonce {
        w.add(&Nonce(nonce)).expect("fits");
    }
    if let Some(algorithms) = algorithms {
        w.add(&PasswordAlgorithms::new(algorithms)).expect("fits");
    }
    w.add_fingerprint().expect("fits");
    buf
}

fn cookie_nonce(features: SecurityFeatures, body: &str) -> String {
    let bits = features.encode();
    format!(
        "{NONCE_COOKIE}{}{body}",
        std::str::from_utf8(&bits).expect("base64")
    )
}

/// Starts a transaction for an unsigned request and feeds it `response`, which must end
/// it; returns what the client makes of it.
fn answer_with(client: &mut LongTermAuth, id: TransactionId, response: &[u8]) -> AuthOutcome {
    let t0 = origin();
    let mut tx = Transactions::new(RetransmitConfig::default());
    let mut request = Vec::new();
    let mut w = MessageWriter::new(&mut request, MessageType::BINDING_REQUEST, id);
    client.write_credentials(&mut w).expect("fits");
    let transmit = Transmit {
        transport: TransportType::Udp,
        from: client_addr(),
        to: server_addr(),
        data: request,
    };
    tx.start(t0, transmit, 0u32, client.response_integrity(), None)
        .expect("starts");
    let _sent = tx.poll_transmit(t0).expect("sent");
    let msg = Message::parse(response).expect("crafted responses parse");
    assert!(matches!(
        tx.handle_response(&msg),
        ResponseOutcome::Matched { .. }
    ));
    client.handle_error_response(&msg)
}

#[test]
fn challenge_without_realm_or_nonce_fails() {
    let id = TransactionId([1; 12]);
    let cases = [(None, None), (Some(REALM), None), (None, Some("nonce-one"))];
    for (realm, nonce) in cases {
        for code in [401, 438] {
            let mut client = client();
            let response = crafted_error(id, code, realm, nonce, None);
            assert_eq!(
                answer_with(&mut client, id, &response),
                AuthOutcome::Failed(AuthError::MissingChallenge),
                "{code} with {realm:?} {nonce:?}"
            );
            assert!(!client.is_ready());
        }
    }
}

#[test]
fn other_errors_are_not_auth_errors() {
    let id = TransactionId([2; 12]);
    let mut client = client();
    let response = crafted_error(id, 500, Some(REALM), Some("n"), None);
    assert_eq!(
        answer_with(&mut client, id, &response),
        AuthOutcome::NotAuthError
    );
    let mut success = Vec::new();
    MessageWriter::new(&mut success, MessageType::BINDING_SUCCESS, id);
    let msg = Message::parse(&success).expect("parses");
    assert_eq!(
        client.handle_error_response(&msg),
        AuthOutcome::NotAuthError
    );
}

#[test]
fn password_algorithms_feature_without_the_list_fails() {
    let id = TransactionId([3; 12]);
    let mut client = client();
    let nonce = cookie_nonce(PASSWORD_ALGORITHMS, "abc");
    let response = crafted_error(id, 401, Some(REALM), Some(&nonce), None);
    // RFC 8489 §9.2.5: the client MUST NOT retry.
    assert_eq!(
        answer_with(&mut client, id, &response),
        AuthOutcome::Failed(AuthError::BadPasswordAlgorithms)
    );
}

#[test]
fn no_supported_password_algorithm_fails() {
    let id = TransactionId([4; 12]);
    let mut client = client();
    let nonce = cookie_nonce(PASSWORD_ALGORITHMS, "abc");
    let response = crafted_error(
        id,
        401,
        Some(REALM),
        Some(&nonce),
        Some(&[PasswordAlgorithmId(0x0099)]),
    );
    assert_eq!(
        answer_with(&mut client, id, &response),
        AuthOutcome::Failed(AuthError::NoSupportedAlgorithm)
    );
}

#[test]
fn changed_password_algorithms_between_challenges_fail() {
    let nonce = cookie_nonce(PASSWORD_ALGORITHMS, "abc");
    let both = [PasswordAlgorithmId::SHA256, PasswordAlgorithmId::MD5];
    let md5_only = [PasswordAlgorithmId::MD5];

    // Two requests go out before the first challenge; the second 401 offers less.
    let mut client = client();
    let first = crafted_error(
        TransactionId([5; 12]),
        401,
        Some(REALM),
        Some(&nonce),
        Some(&both),
    );
    assert_eq!(
        answer_with(&mut client, TransactionId([5; 12]), &first),
        AuthOutcome::Retry
    );
    let mut parallel = client.clone();
    let second = crafted_error(
        TransactionId([6; 12]),
        401,
        Some(REALM),
        Some(&nonce),
        Some(&md5_only),
    );
    let msg = Message::parse(&second).expect("parses");
    // RFC 8489 §9.2.5: a changed list is a bid-down attempt.
    assert_eq!(
        parallel.handle_error_response(&msg),
        AuthOutcome::Failed(AuthError::BadPasswordAlgorithms)
    );

    // A 438 to a signed request that offers less fails the same way.
    let id = TransactionId([7; 12]);
    let stale = crafted_error(id, 438, Some(REALM), Some(&nonce), Some(&md5_only));
    assert_eq!(
        answer_with(&mut client, id, &stale),
        AuthOutcome::Failed(AuthError::BadPasswordAlgorithms)
    );
    // The same list again is fine.
    let id = TransactionId([8; 12]);
    let stale = crafted_error(id, 438, Some(REALM), Some(&nonce), Some(&both));
    assert_eq!(answer_with(&mut client, id, &stale), AuthOutcome::Retry);
}

#[test]
fn response_integrity_checks_the_servers_signed_success() {
    for features in [SecurityFeatures::default(), PASSWORD_ALGORITHMS] {
        let mut ex = Exchange::new(server(features), client());
        assert_eq!(ex.run(4), Ok(()));

        let t0 = origin();
        let request = ex.signed_request();
        let mut tx = Transactions::new(RetransmitConfig::default());
        let id = tx
            .start(
                t0,
                Transmit {
                    transport: TransportType::Udp,
                    from: client_addr(),
                    to: server_addr(),
                    data: request.clone(),
                },
                1u32,
                ex.client.response_integrity(),
                None,
            )
            .expect("starts");
        let mut genuine = Vec::new();
        assert_eq!(
            ex.server.handle(client_addr(), &request, &mut genuine),
            Outcome::Success
        );

        // A response altered on the way fails its integrity check and is discarded.
        let mut altered = genuine.clone();
        altered[HEADER_LEN + 4 + 3] ^= 0x01; // inside XOR-MAPPED-ADDRESS's port
        let msg = Message::parse(&altered).expect("still well formed");
        assert_eq!(
            tx.handle_response(&msg),
            ResponseOutcome::Discarded(IntegrityError::IntegrityMismatch),
            "{features:?}"
        );

        // So is one from a server that does not know the password.
        let mut impostor = LongTermServer::new(REALM, "nonce-one", features);
        impostor.add_user(USER, "another-password");
        let impostor_server = BindingServer::new(ServerAuth::LongTerm(impostor));
        let mut forged = Vec::new();
        let forged_request = {
            // The impostor answers only requests signed with its own key: sign one.
            let mut other = LongTermAuth::new(USER, "another-password").expect("valid");
            let challenge = Message::parse(&ex.rounds[0].response).expect("parses");
            assert_eq!(other.handle_error_response(&challenge), AuthOutcome::Retry);
            let mut buf = Vec::new();
            let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, id);
            other.write_credentials(&mut w).expect("fits");
            buf
        };
        assert_eq!(
            impostor_server.handle(client_addr(), &forged_request, &mut forged),
            Outcome::Success
        );
        let msg = Message::parse(&forged).expect("parses");
        assert_eq!(
            tx.handle_response(&msg),
            ResponseOutcome::Discarded(IntegrityError::IntegrityMismatch)
        );

        // The genuine response ends the transaction.
        let msg = Message::parse(&genuine).expect("parses");
        assert!(matches!(
            tx.handle_response(&msg),
            ResponseOutcome::Matched { context: 1, .. }
        ));
    }
}

#[test]
fn security_features_round_trip_through_the_nonce() {
    for password_algorithms in [false, true] {
        for username_anonymity in [false, true] {
            let features = SecurityFeatures {
                password_algorithms,
                username_anonymity,
            };
            let nonce = cookie_nonce(features, "f//499k954d6OL34oL9FSTvy64sA");
            assert_eq!(
                SecurityFeatures::from_nonce(&nonce),
                Some(features),
                "{nonce}"
            );
            // Also with nothing after the feature characters.
            assert_eq!(
                SecurityFeatures::from_nonce(&cookie_nonce(features, "")),
                Some(features)
            );
        }
    }
}

#[test]
fn security_feature_bits_follow_rfc8489_errata_6290() {
    // RFC 8489 §9.2, corrected by verified erratum 6290: bit 0 of the 24 is the least
    // significant bit of the third byte, so "Password algorithms" (bit 0) is "AAAB" and
    // "Username anonymity" (bit 1) is "AAAC".
    assert_eq!(&PASSWORD_ALGORITHMS.encode(), b"AAAB");
    assert_eq!(&USERNAME_ANONYMITY.encode(), b"AAAC");
    let both = SecurityFeatures {
        password_algorithms: true,
        username_anonymity: true,
    };
    assert_eq!(&both.encode(), b"AAAD");
    assert_eq!(&SecurityFeatures::default().encode(), b"AAAA");

    // The nonce of the RFC 8489 B.1 example, whose request carries USERHASH.
    assert_eq!(
        SecurityFeatures::from_nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"),
        Some(USERNAME_ANONYMITY)
    );
    // Bits this crate does not know are ignored.
    assert_eq!(
        SecurityFeatures::from_nonce("obMatJos2/////"),
        Some(SecurityFeatures {
            password_algorithms: true,
            username_anonymity: true,
        })
    );
    assert_eq!(
        SecurityFeatures::from_nonce("obMatJos2gAAA"),
        Some(SecurityFeatures::default())
    );
}

#[test]
fn nonces_without_a_valid_cookie_have_no_features() {
    for nonce in [
        "",
        "f//499k954d6OL34oL9FSTvy64sA",
        "obMatJos",
        "obMatJos2",
        "obMatJos2AAA",
        "obMatJos2AA*Bxyz",
        "obmatjos2AAAB",
    ] {
        assert_eq!(SecurityFeatures::from_nonce(nonce), None, "{nonce:?}");
    }
}

#[test]
fn credentials_are_prepared_and_kept_out_of_debug() {
    assert!(matches!(
        LongTermAuth::new("", PASSWORD),
        Err(CredentialError::NotOpaqueString { field: "username" })
    ));
    assert!(matches!(
        LongTermAuth::new(USER, "bad\u{7}password"),
        Err(CredentialError::NotOpaqueString { field: "password" })
    ));
    let mut ex = Exchange::new(server(SecurityFeatures::default()), client());
    assert_eq!(ex.run(4), Ok(()));
    let text = format!("{:?}", ex.client);
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains(USER), "{text}");
}

#[test]
fn errors_display_and_chain() {
    // A transparent wrapper: the credential error shows in Display, once, and is not
    // also the source (which would print it twice in an error chain).
    let e = AuthError::Credential(CredentialError::NotOpaqueString { field: "realm" });
    assert!(std::error::Error::source(&e).is_none());
    assert!(e.to_string().contains("realm"));
    assert!(std::error::Error::source(&AuthError::Rejected).is_none());
    assert!(AuthError::TooManyStaleNonces.to_string().contains("438"));
}
