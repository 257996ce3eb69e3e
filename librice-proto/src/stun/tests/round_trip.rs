//! Writing with `MessageWriter` and reading back: every typed attribute, the integrity and
//! fingerprint attributes together, the writer's errors, and the message type encoding.

use std::fmt::Debug;
use std::net::SocketAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::stun::attr::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AlternateDomain, AlternateServer,
    AttributeDecode, AttributeEncode, AttributeType, ChannelNumber, Data, DontFragment, ErrorCode,
    EvenPort, IceControlled, IceControlling, Icmp, Lifetime, MappedAddress, MessageIntegrity,
    MessageIntegritySha256, Nomination, Nonce, PasswordAlgorithm, PasswordAlgorithmId,
    PasswordAlgorithms, Priority, Realm, RequestedAddressFamily, RequestedTransport,
    ReservationToken, Software, UnknownAttributes, UseCandidate, Userhash, Username,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use crate::stun::{
    HEADER_LEN, IntegrityAlgorithm, IntegrityError, IntegrityKey, Message, MessageClass,
    MessageType, MessageWriter, Method, StunWriteError, TransactionId,
};

use super::TXID;

const V4: &str = "192.0.2.1:32853";
const V6: &str = "[2001:db8:1234:5678:11:2233:4455:6677]:32853";

/// A Binding request with one attribute, written by the writer.
fn write_one<A: AttributeEncode + ?Sized>(attr: &A) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    w.add(attr).expect("the attribute is valid");
    w.finish().to_vec()
}

/// Checks the framing of a one-attribute message: lengths, and zero padding after `value_len`
/// value bytes.
fn check_framing(bytes: &[u8], value_len: usize) {
    let padded = value_len.div_ceil(4) * 4;
    assert_eq!(bytes.len(), HEADER_LEN + 4 + padded);
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        4 + padded
    );
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[22], bytes[23]])),
        value_len
    );
    assert!(
        bytes[HEADER_LEN + 4 + value_len..].iter().all(|&b| b == 0),
        "zero padding"
    );
}

/// Writes `$value` alone in a message, checks the framing, reads it back as `$ty` and
/// compares; evaluates to the message bytes.
macro_rules! assert_round_trip {
    ($ty:ident, $value:expr) => {{
        let value = $value;
        let bytes = write_one(&value);
        check_framing(&bytes, value.value_len());
        let msg = Message::parse(&bytes).expect("the writer's output parses");
        assert_eq!(msg.attribute::<$ty>(), Ok(Some(value)));
        bytes
    }};
}

/// Decodes the single attribute of `bytes` as `A`.
fn decode_only<'a, A: AttributeDecode<'a> + Debug>(bytes: &'a [u8]) -> A {
    let msg = Message::parse(bytes).expect("the writer's output parses");
    msg.attribute::<A>().expect("decodes").expect("present")
}

#[test]
fn address_attributes_round_trip() {
    for text in [
        V4,
        V6,
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "[::]:1",
        "[::1]:65535",
    ] {
        let addr: SocketAddr = text.parse().unwrap();
        assert_round_trip!(MappedAddress, MappedAddress(addr));
        assert_round_trip!(XorMappedAddress, XorMappedAddress(addr));
        assert_round_trip!(XorPeerAddress, XorPeerAddress(addr));
        assert_round_trip!(XorRelayedAddress, XorRelayedAddress(addr));
        assert_round_trip!(AlternateServer, AlternateServer(addr));
    }
}

#[test]
fn address_encodings_plain_and_xor() {
    let v4: SocketAddr = V4.parse().unwrap();
    // MAPPED-ADDRESS is in clear: family 1, port 32853 = 0x8055, 192.0.2.1.
    let plain = write_one(&MappedAddress(v4));
    assert_eq!(plain[24..], [0, 1, 0x80, 0x55, 192, 0, 2, 1]);
    // XOR-MAPPED-ADDRESS matches RFC 5769 §2.2 (the IPv4 XOR uses only the cookie).
    let xored = write_one(&XorMappedAddress(v4));
    assert_eq!(
        xored[24..],
        [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]
    );

    // The IPv6 XOR mixes in the transaction id: RFC 5769 §2.3 with its id.
    let txid = TransactionId([
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ]);
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, txid);
    w.add(&XorMappedAddress(V6.parse().unwrap())).unwrap();
    assert_eq!(
        w.finish()[24..],
        super::hex("00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9")
    );

    // Read back with another transaction id, the IPv6 address changes; IPv4 does not.
    let bytes = write_one(&XorPeerAddress(V6.parse().unwrap()));
    let raw = Message::parse(&bytes)
        .unwrap()
        .raw_attribute(AttributeType::XOR_PEER_ADDRESS)
        .unwrap();
    let other = TransactionId([0; 12]);
    assert_ne!(
        raw.decode::<XorPeerAddress>(&other).unwrap().0,
        V6.parse().unwrap()
    );
    let bytes = write_one(&XorPeerAddress(v4));
    let raw = Message::parse(&bytes)
        .unwrap()
        .raw_attribute(AttributeType::XOR_PEER_ADDRESS)
        .unwrap();
    assert_eq!(raw.decode::<XorPeerAddress>(&other).unwrap().0, v4);
}

#[test]
fn text_attributes_round_trip_with_every_padding() {
    for text in [
        "",
        "a",
        "ab",
        "abc",
        "abcd",
        "abcde",
        "\u{30DE}\u{30C8}",
        "évian:ÿ",
    ] {
        assert_round_trip!(Username, Username(text));
        assert_round_trip!(Realm, Realm(text));
        assert_round_trip!(Nonce, Nonce(text));
        assert_round_trip!(Software, Software(text));
        assert_round_trip!(AlternateDomain, AlternateDomain(text));
    }
}

#[test]
fn auth_attributes_round_trip() {
    let hash = crate::stun::userhash("user", "realm").unwrap();
    assert_round_trip!(Userhash, Userhash(&hash));
    assert_round_trip!(
        PasswordAlgorithm,
        PasswordAlgorithm {
            algorithm: PasswordAlgorithmId::SHA256,
            params: &[],
        }
    );
    // Parameters of every padding length.
    for params in [
        &[1u8][..],
        &[1, 2],
        &[1, 2, 3],
        &[1, 2, 3, 4],
        &[1, 2, 3, 4, 5],
    ] {
        assert_round_trip!(
            PasswordAlgorithm,
            PasswordAlgorithm {
                algorithm: PasswordAlgorithmId(0x7FFF),
                params,
            }
        );
    }
}

#[test]
fn password_algorithms_round_trip() {
    // From ids: each entry is algorithm, zero parameter length.
    let ids = [PasswordAlgorithmId::MD5, PasswordAlgorithmId::SHA256];
    let bytes = write_one(&PasswordAlgorithms::new(&ids));
    check_framing(&bytes, 8);
    assert_eq!(bytes[24..], [0, 1, 0, 0, 0, 2, 0, 0]);
    let decoded: PasswordAlgorithms<'_> = decode_only(&bytes);
    assert_eq!(decoded.as_wire(), Some(&bytes[24..]));
    let algorithms: Vec<_> = decoded.iter().map(|a| (a.algorithm, a.params)).collect();
    assert_eq!(algorithms, [(ids[0], &[][..]), (ids[1], &[][..])]);
    assert_eq!(PasswordAlgorithms::new(&ids).as_wire(), None);
    assert_eq!(PasswordAlgorithms::new(&ids).iter().count(), 2);

    // From wire bytes, with parameters and their padding: echoed byte for byte.
    let wire = [0x7F, 0xFF, 0, 3, 0xA, 0xB, 0xC, 0, 0, 2, 0, 0];
    let bytes = write_one(&PasswordAlgorithms::from_wire(&wire));
    check_framing(&bytes, wire.len());
    assert_eq!(bytes[24..], wire);
    let decoded: PasswordAlgorithms<'_> = decode_only(&bytes);
    let algorithms: Vec<_> = decoded.iter().map(|a| (a.algorithm, a.params)).collect();
    assert_eq!(
        algorithms,
        [
            (PasswordAlgorithmId(0x7FFF), &[0xA, 0xB, 0xC][..]),
            (PasswordAlgorithmId::SHA256, &[][..]),
        ]
    );
    let echoed = write_one(&PasswordAlgorithms::from_wire(decoded.as_wire().unwrap()));
    assert_eq!(echoed, bytes);

    // An empty list.
    let bytes = write_one(&PasswordAlgorithms::new(&[]));
    let decoded: PasswordAlgorithms<'_> = decode_only(&bytes);
    assert_eq!(decoded.iter().count(), 0);
}

#[test]
fn error_code_round_trip() {
    for code in [300, 399, 400, 401, 420, 438, 487, 500, 508, 600, 699] {
        assert_round_trip!(ErrorCode, ErrorCode::with_default_reason(code));
    }
    assert_round_trip!(
        ErrorCode,
        ErrorCode {
            code: 401,
            reason: ""
        }
    );
    assert_round_trip!(
        ErrorCode,
        ErrorCode {
            code: 500,
            reason: "Erreur du serveur ✗"
        }
    );
    let bytes = write_one(&ErrorCode::with_default_reason(
        ErrorCode::UNKNOWN_ATTRIBUTE,
    ));
    assert_eq!(bytes[24..28], [0, 0, 4, 20]);
    assert_eq!(&bytes[28..45], b"Unknown Attribute");
    assert_eq!(
        ErrorCode::default_reason(ErrorCode::ROLE_CONFLICT),
        "Role Conflict"
    );
    assert_eq!(ErrorCode::default_reason(499), "Error");
}

#[test]
fn unknown_attributes_round_trip() {
    for types in [
        &[][..],
        &[0x7777],
        &[0x7777, 0x0030],
        &[0x7777, 0x0030, 0x0031],
    ] {
        let bytes = write_one(&UnknownAttributes::new(types));
        check_framing(&bytes, types.len() * 2);
        let decoded: UnknownAttributes<'_> = decode_only(&bytes);
        assert_eq!(decoded.len(), types.len());
        assert_eq!(decoded.is_empty(), types.is_empty());
        let listed: Vec<u16> = decoded.iter().map(AttributeType::value).collect();
        assert_eq!(listed, types);
    }
}

#[test]
fn ice_attributes_round_trip() {
    for p in [0, 1, 0x6e00_01ff, u32::MAX] {
        assert_round_trip!(Priority, Priority(p));
    }
    assert_round_trip!(UseCandidate, UseCandidate);
    for t in [0, 0x932f_f9b1_5126_3b36, u64::MAX] {
        assert_round_trip!(IceControlled, IceControlled(t));
        assert_round_trip!(IceControlling, IceControlling(t));
    }
    for n in [1, 2, 0x0102_0304, u32::MAX] {
        let bytes = assert_round_trip!(Nomination, Nomination(n));
        // Type 0xC001, length 4, the value big-endian (draft-thatcher-ice-renomination-01 §4).
        assert_eq!(bytes[20..24], [0xC0, 0x01, 0, 4]);
        assert_eq!(bytes[24..28], n.to_be_bytes());
    }
    assert!(!AttributeType::NOMINATION.is_comprehension_required());
    assert_eq!(AttributeType::NOMINATION.name(), Some("NOMINATION"));
}

#[test]
fn turn_attributes_round_trip() {
    let bytes = assert_round_trip!(ChannelNumber, ChannelNumber(0x4001));
    assert_eq!(bytes[24..], [0x40, 0x01, 0, 0]);
    assert_round_trip!(Lifetime, Lifetime(600));
    assert_round_trip!(Lifetime, Lifetime(u32::MAX));
    for family in [AddressFamily::V4, AddressFamily::V6] {
        assert_round_trip!(RequestedAddressFamily, RequestedAddressFamily(family));
        assert_round_trip!(AdditionalAddressFamily, AdditionalAddressFamily(family));
    }
    let bytes = assert_round_trip!(EvenPort, EvenPort { reserve_next: true });
    assert_eq!(bytes[24..], [0x80, 0, 0, 0]);
    assert_round_trip!(
        EvenPort,
        EvenPort {
            reserve_next: false
        }
    );
    let bytes = assert_round_trip!(RequestedTransport, RequestedTransport::UDP);
    assert_eq!(bytes[24..], [17, 0, 0, 0]);
    assert_round_trip!(RequestedTransport, RequestedTransport::TCP);
    assert_round_trip!(DontFragment, DontFragment);
    assert_round_trip!(ReservationToken, ReservationToken([1, 2, 3, 4, 5, 6, 7, 8]));
    let bytes = assert_round_trip!(
        AddressErrorCode,
        AddressErrorCode {
            family: AddressFamily::V6,
            code: 440,
            reason: "Address Family not Supported",
        }
    );
    assert_eq!(bytes[24..28], [2, 0, 4, 40]);
    assert_round_trip!(
        AddressErrorCode,
        AddressErrorCode {
            family: AddressFamily::V4,
            code: 508,
            reason: "",
        }
    );
    let bytes = assert_round_trip!(
        Icmp,
        Icmp {
            icmp_type: 3,
            code: 4,
            error_data: 1400,
        }
    );
    assert_eq!(bytes[24..], [0, 0, 3, 4, 0, 0, 0x05, 0x78]);
}

#[test]
fn data_of_every_padding_length_round_trips() {
    let payload: Vec<u8> = (1..=13).collect();
    for len in 0..=payload.len() {
        assert_round_trip!(Data, Data(&payload[..len]));
    }
    // A byte that looks like padding at the end of the data is data.
    assert_round_trip!(Data, Data(&[0, 0, 0]));
}

/// Every typed attribute in one message: offsets stay right across paddings.
#[test]
fn all_attributes_in_one_message() {
    let hash = [7u8; 32];
    let v6: SocketAddr = V6.parse().unwrap();
    let ids = [PasswordAlgorithmId::SHA256];
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_ERROR, TransactionId(TXID));
    w.add(&Software("abcde")).unwrap();
    w.add(&MappedAddress(v6)).unwrap();
    w.add(&Data(b"x")).unwrap();
    w.add(&XorMappedAddress(v6)).unwrap();
    w.add(&Username("u")).unwrap();
    w.add(&ErrorCode::with_default_reason(420)).unwrap();
    w.add(&UnknownAttributes::new(&[0x7777])).unwrap();
    w.add(&Realm("re")).unwrap();
    w.add(&Nonce("non")).unwrap();
    w.add(&Userhash(&hash)).unwrap();
    w.add(&PasswordAlgorithms::new(&ids)).unwrap();
    w.add(&EvenPort { reserve_next: true }).unwrap();
    w.add(&Priority(9)).unwrap();
    w.add(&IceControlling(10)).unwrap();
    w.add(&UseCandidate).unwrap();
    w.add(&Icmp {
        icmp_type: 1,
        code: 2,
        error_data: 3,
    })
    .unwrap();
    w.add_raw(AttributeType::new(0xC0DE), b"raw").unwrap();
    let bytes = w.finish().to_vec();
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.message_type(), MessageType::BINDING_ERROR);
    assert_eq!(msg.attributes().count(), 17);
    assert_eq!(msg.attribute::<Software>(), Ok(Some(Software("abcde"))));
    assert_eq!(
        msg.attribute::<MappedAddress>(),
        Ok(Some(MappedAddress(v6)))
    );
    assert_eq!(msg.attribute::<Data>(), Ok(Some(Data(b"x"))));
    assert_eq!(
        msg.attribute::<XorMappedAddress>(),
        Ok(Some(XorMappedAddress(v6)))
    );
    assert_eq!(msg.attribute::<Username>(), Ok(Some(Username("u"))));
    assert_eq!(
        msg.attribute::<ErrorCode>(),
        Ok(Some(ErrorCode::with_default_reason(420)))
    );
    assert_eq!(msg.attribute::<Realm>(), Ok(Some(Realm("re"))));
    assert_eq!(msg.attribute::<Nonce>(), Ok(Some(Nonce("non"))));
    assert_eq!(msg.attribute::<Userhash>(), Ok(Some(Userhash(&hash))));
    assert_eq!(
        msg.attribute::<EvenPort>(),
        Ok(Some(EvenPort { reserve_next: true }))
    );
    assert_eq!(msg.attribute::<Priority>(), Ok(Some(Priority(9))));
    assert_eq!(
        msg.attribute::<IceControlling>(),
        Ok(Some(IceControlling(10)))
    );
    assert_eq!(msg.attribute::<UseCandidate>(), Ok(Some(UseCandidate)));
    assert_eq!(
        msg.attribute::<Icmp>(),
        Ok(Some(Icmp {
            icmp_type: 1,
            code: 2,
            error_data: 3
        }))
    );
    let raw = msg.raw_attribute(AttributeType::new(0xC0DE)).unwrap();
    assert_eq!(raw.value(), b"raw");
    assert_eq!(msg.attribute::<IceControlled>(), Ok(None));
}

/// The expected HMACs, computed with the `hmac` crate directly over the message prefix with
/// the length field adjusted as RFC 8489 §14.5/§14.6 say, independently of the writer.
fn independent_hmac(
    bytes: &[u8],
    attr_at: usize,
    value_len: usize,
    key: &[u8],
    sha256: bool,
) -> Vec<u8> {
    let mut covered = bytes[..attr_at].to_vec();
    let length = u16::try_from(attr_at + 4 + value_len - HEADER_LEN).unwrap();
    covered[2..4].copy_from_slice(&length.to_be_bytes());
    if sha256 {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(&covered);
        mac.finalize().into_bytes()[..value_len].to_vec()
    } else {
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(&covered);
        mac.finalize().into_bytes().to_vec()
    }
}

#[test]
fn both_integrities_and_fingerprint_together() {
    let password = "a-remote-ice-password";
    let key = IntegrityKey::short_term(password).unwrap();
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    w.add(&Username("remote:local")).unwrap();
    w.add(&Priority(1)).unwrap();
    w.add_message_integrity(&key).unwrap();
    w.add_message_integrity_sha256(&key).unwrap();
    w.add_fingerprint().unwrap();
    let bytes = w.finish().to_vec();
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.check_fingerprint(), Ok(()));
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha256));
    assert_eq!(
        msg.check_integrity_with(&key, IntegrityAlgorithm::Sha1),
        Ok(())
    );
    assert_eq!(
        msg.check_integrity_with(&key, IntegrityAlgorithm::Sha256),
        Ok(())
    );
    assert!(msg.has_integrity() && msg.has_fingerprint());

    // Layout: header, USERNAME (16), PRIORITY (8), MI (24), MI-SHA256 (36), FINGERPRINT (8).
    let (mi_at, mi256_at) = (HEADER_LEN + 24, HEADER_LEN + 48);
    let mi = msg.attribute::<MessageIntegrity>().unwrap().unwrap();
    assert_eq!(
        mi.0[..],
        independent_hmac(&bytes, mi_at, 20, password.as_bytes(), false)
    );
    let mi256 = msg.attribute::<MessageIntegritySha256>().unwrap().unwrap();
    assert_eq!(
        mi256.0,
        independent_hmac(&bytes, mi256_at, 32, password.as_bytes(), true)
    );
    let mut resealed = bytes.clone();
    super::refingerprint(&mut resealed);
    assert_eq!(
        resealed, bytes,
        "the writer's FINGERPRINT is CRC-32 ^ 0x5354554e"
    );

    let wrong = IntegrityKey::short_term("another-password").unwrap();
    assert_eq!(
        msg.check_integrity(&wrong),
        Err(IntegrityError::IntegrityMismatch)
    );
    assert_eq!(
        msg.check_integrity_with(&wrong, IntegrityAlgorithm::Sha1),
        Err(IntegrityError::IntegrityMismatch)
    );
}

#[test]
fn truncated_sha256_integrity() {
    let password = "pass";
    let key = IntegrityKey::short_term(password).unwrap();
    for len in [16, 20, 24, 28, 32] {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
        w.add(&Username("abcde")).unwrap();
        w.add_message_integrity_sha256_truncated(&key, len).unwrap();
        w.add_fingerprint().unwrap();
        let mut bytes = w.finish().to_vec();
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(msg.check_fingerprint(), Ok(()), "{len}");
        assert_eq!(
            msg.check_integrity(&key),
            Ok(IntegrityAlgorithm::Sha256),
            "{len}"
        );
        assert_eq!(
            msg.check_integrity_with(&key, IntegrityAlgorithm::Sha1),
            Err(IntegrityError::MissingAlgorithm)
        );
        let mac = msg.attribute::<MessageIntegritySha256>().unwrap().unwrap();
        assert_eq!(mac.0.len(), len);
        // The HMAC is computed with the length field counting the truncated attribute.
        assert_eq!(
            mac.0,
            independent_hmac(&bytes, HEADER_LEN + 12, len, password.as_bytes(), true)
        );

        let last = HEADER_LEN + 12 + 4 + len - 1;
        bytes[last] ^= 1;
        super::refingerprint(&mut bytes);
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(
            msg.check_integrity(&key),
            Err(IntegrityError::IntegrityMismatch),
            "{len}"
        );
    }
}

#[test]
fn long_term_keys_verify_their_own_messages() {
    for algorithm in [PasswordAlgorithmId::MD5, PasswordAlgorithmId::SHA256] {
        let key = IntegrityKey::long_term("user", "realm", "pass", algorithm).unwrap();
        let other = IntegrityKey::long_term("user", "realm", "pasS", algorithm).unwrap();
        let bytes = {
            let mut buf = Vec::new();
            let mut w =
                MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
            w.add(&Realm("realm")).unwrap();
            w.add_message_integrity(&key).unwrap();
            w.finish().to_vec()
        };
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
        assert_eq!(
            msg.check_integrity(&other),
            Err(IntegrityError::IntegrityMismatch)
        );
    }
    assert_eq!(
        IntegrityKey::long_term("user", "realm", "pass", PasswordAlgorithmId(3)).map(|_| ()),
        Err(crate::stun::CredentialError::UnsupportedAlgorithm { algorithm: 3 })
    );
    assert_eq!(
        IntegrityKey::short_term("").map(|_| ()),
        Err(crate::stun::CredentialError::NotOpaqueString { field: "password" })
    );
}

/// A message written after other bytes in the same buffer is self-contained.
#[test]
fn writer_appends_to_a_used_buffer() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = b"previous bytes".to_vec();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, TransactionId(TXID));
    w.add(&XorMappedAddress(V4.parse().unwrap())).unwrap();
    w.add_message_integrity(&key).unwrap();
    w.add_fingerprint().unwrap();
    assert_eq!(w.len(), HEADER_LEN + 12 + 24 + 8);
    assert!(!w.is_empty());
    let msg_bytes = w.finish().to_vec();
    assert_eq!(buf[..14], *b"previous bytes");
    assert_eq!(buf[14..], msg_bytes[..]);
    let msg = Message::parse(&msg_bytes).unwrap();
    assert_eq!(msg.check_fingerprint(), Ok(()));
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha1));
}

#[test]
fn writer_refuses_attributes_after_integrity() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    w.add(&Software("s")).unwrap();
    w.add_message_integrity(&key).unwrap();
    let len = w.len();
    assert_eq!(
        w.add(&Priority(1)),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::PRIORITY
        })
    );
    assert_eq!(
        w.add_message_integrity(&key),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY,
        })
    );
    assert_eq!(w.len(), len, "nothing written on failure");
    w.add_message_integrity_sha256(&key).unwrap();
    assert_eq!(
        w.add(&Software("late")),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::SOFTWARE
        })
    );
    assert_eq!(
        w.add_message_integrity(&key),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY,
        })
    );
    assert_eq!(
        w.add_message_integrity_sha256_truncated(&key, 16),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY_SHA256,
        })
    );
    let bytes = w.finish().to_vec();
    let msg = Message::parse(&bytes).expect("still a valid message");
    assert_eq!(msg.check_integrity(&key), Ok(IntegrityAlgorithm::Sha256));

    // MESSAGE-INTEGRITY after MESSAGE-INTEGRITY-SHA256 alone.
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    w.add_message_integrity_sha256(&key).unwrap();
    assert_eq!(
        w.add_message_integrity(&key),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY,
        })
    );
    assert_eq!(
        w.add_raw(AttributeType::new(0xC001), b""),
        Err(StunWriteError::AfterIntegrity {
            attr: AttributeType::new(0xC001)
        })
    );
}

#[test]
fn writer_refuses_attributes_after_fingerprint() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    w.add_fingerprint().unwrap();
    let len = w.len();
    assert_eq!(
        w.add(&Software("late")),
        Err(StunWriteError::AfterFingerprint {
            attr: AttributeType::SOFTWARE
        })
    );
    assert_eq!(
        w.add_message_integrity(&key),
        Err(StunWriteError::AfterFingerprint {
            attr: AttributeType::MESSAGE_INTEGRITY,
        })
    );
    assert_eq!(
        w.add_message_integrity_sha256(&key),
        Err(StunWriteError::AfterFingerprint {
            attr: AttributeType::MESSAGE_INTEGRITY_SHA256,
        })
    );
    assert_eq!(
        w.add_fingerprint(),
        Err(StunWriteError::AfterFingerprint {
            attr: AttributeType::FINGERPRINT
        })
    );
    assert_eq!(w.len(), len);
    let bytes = w.finish().to_vec();
    assert_eq!(Message::parse(&bytes).unwrap().check_fingerprint(), Ok(()));
}

#[test]
fn writer_refuses_invalid_truncation() {
    let key = IntegrityKey::short_term("pw").unwrap();
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    for len in [0, 4, 12, 15, 17, 18, 30, 33, 36, 64] {
        assert_eq!(
            w.add_message_integrity_sha256_truncated(&key, len),
            Err(StunWriteError::InvalidTruncation { len })
        );
    }
    assert_eq!(w.len(), HEADER_LEN);
}

#[test]
fn writer_refuses_values_too_long() {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(TXID));
    let name = "n".repeat(509);
    assert_eq!(
        w.add(&Username(&name)),
        Err(StunWriteError::ValueTooLong {
            attr: AttributeType::USERNAME,
            len: 509,
        })
    );
    w.add(&Username(&name[..508])).unwrap();
    let realm = "r".repeat(764);
    assert_eq!(
        w.add(&Realm(&realm)),
        Err(StunWriteError::ValueTooLong {
            attr: AttributeType::REALM,
            len: 764,
        })
    );
    let reason = "x".repeat(764);
    assert_eq!(
        w.add(&ErrorCode {
            code: 400,
            reason: &reason
        }),
        Err(StunWriteError::ValueTooLong {
            attr: AttributeType::ERROR_CODE,
            len: 768,
        })
    );
    let data = vec![0u8; 65_536];
    assert_eq!(
        w.add(&Data(&data)),
        Err(StunWriteError::ValueTooLong {
            attr: AttributeType::DATA,
            len: 65_536,
        })
    );
    assert_eq!(w.len(), HEADER_LEN + 512);
}

#[test]
fn writer_refuses_message_too_long() {
    let mut buf = Vec::new();
    let data_indication = MessageType::new(MessageClass::Indication, Method::DATA);
    let mut w = MessageWriter::new(&mut buf, data_indication, TransactionId(TXID));
    // The largest value alone: 65535 bytes pad to 65536, over the length field.
    let data = vec![0xAB; 65_535];
    assert_eq!(w.add(&Data(&data)), Err(StunWriteError::MessageTooLong));
    w.add(&Data(&data[..65_528])).unwrap();
    assert_eq!(w.len(), HEADER_LEN + 65_532);
    assert_eq!(w.add(&Lifetime(1)), Err(StunWriteError::MessageTooLong));
    assert_eq!(w.add_fingerprint(), Err(StunWriteError::MessageTooLong));
    let key = IntegrityKey::short_term("pw").unwrap();
    assert_eq!(
        w.add_message_integrity(&key),
        Err(StunWriteError::MessageTooLong)
    );
    assert_eq!(w.len(), HEADER_LEN + 65_532);
    let bytes = w.finish().to_vec();
    let msg = Message::parse(&bytes).expect("the largest message parses");
    assert_eq!(msg.attribute::<Data>().unwrap().unwrap().0.len(), 65_528);
}

/// Error codes the class digit cannot carry are refused instead of written malformed.
#[test]
fn writer_refuses_invalid_error_codes() {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_ERROR, TransactionId(TXID));
    for code in [0, 200, 299, 700, 1000, u16::MAX] {
        assert_eq!(
            w.add(&ErrorCode { code, reason: "r" }),
            Err(StunWriteError::InvalidErrorCode { code })
        );
        assert_eq!(
            w.add(&AddressErrorCode {
                family: AddressFamily::V4,
                code,
                reason: "r",
            }),
            Err(StunWriteError::InvalidErrorCode { code })
        );
    }
    assert_eq!(w.len(), HEADER_LEN);
}

#[test]
fn message_type_wire_values() {
    use MessageClass::{Error, Indication, Request, Success};
    for (method, class, wire) in [
        (Method::BINDING, Request, 0x0001),
        (Method::BINDING, Success, 0x0101),
        (Method::BINDING, Error, 0x0111),
        (Method::BINDING, Indication, 0x0011),
        (Method::ALLOCATE, Request, 0x0003),
        (Method::ALLOCATE, Success, 0x0103),
        (Method::ALLOCATE, Error, 0x0113),
        (Method::REFRESH, Request, 0x0004),
        (Method::SEND, Indication, 0x0016),
        (Method::DATA, Indication, 0x0017),
        (Method::CREATE_PERMISSION, Request, 0x0008),
        (Method::CHANNEL_BIND, Request, 0x0009),
        (Method::CHANNEL_BIND, Success, 0x0109),
        (Method::new(0xFFF).unwrap(), Error, 0x3FFF),
        (Method::new(0x080).unwrap(), Request, 0x0200),
    ] {
        let ty = MessageType::new(class, method);
        assert_eq!(ty.to_u16(), wire, "{ty:?}");
        assert_eq!(MessageType::from_u16(wire), Some(ty), "{wire:#06x}");
    }
    assert_eq!(MessageType::BINDING_REQUEST.to_u16(), 0x0001);
    assert_eq!(MessageType::BINDING_SUCCESS.to_u16(), 0x0101);
    assert_eq!(MessageType::BINDING_ERROR.to_u16(), 0x0111);
    assert_eq!(MessageType::BINDING_INDICATION.to_u16(), 0x0011);
    assert_eq!(
        MessageType::BINDING_REQUEST.success(),
        MessageType::BINDING_SUCCESS
    );
    assert_eq!(
        MessageType::BINDING_REQUEST.error(),
        MessageType::BINDING_ERROR
    );
    assert!(MessageClass::Success.is_response() && MessageClass::Error.is_response());
    assert!(!MessageClass::Request.is_response() && !MessageClass::Indication.is_response());
}

#[test]
fn message_type_round_trips_for_every_method_and_class() {
    use MessageClass::{Error, Indication, Request, Success};
    for value in 0..=0xFFF {
        let method = Method::new(value).unwrap();
        assert_eq!(method.value(), value);
        for class in [Request, Indication, Success, Error] {
            let ty = MessageType::new(class, method);
            let wire = ty.to_u16();
            assert_eq!(wire & 0xC000, 0);
            assert_eq!(MessageType::from_u16(wire), Some(ty));
        }
    }
    for wire in 0..=0x3FFF {
        assert_eq!(MessageType::from_u16(wire).unwrap().to_u16(), wire);
    }
    assert_eq!(MessageType::from_u16(0x4000), None);
    assert_eq!(MessageType::from_u16(0x8001), None);
    assert_eq!(Method::new(0x1000), None);
}

/// A written message carries its type and transaction id.
#[test]
fn header_round_trip() {
    let txid = TransactionId([9; 12]);
    let mut buf = Vec::new();
    let ty = MessageType::new(MessageClass::Indication, Method::SEND);
    let w = MessageWriter::new(&mut buf, ty, txid);
    assert_eq!(w.transaction_id(), txid);
    let bytes = w.finish().to_vec();
    assert_eq!(bytes.len(), HEADER_LEN);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.message_type(), ty);
    assert_eq!(msg.class(), MessageClass::Indication);
    assert_eq!(msg.method(), Method::SEND);
    assert_eq!(msg.transaction_id(), txid);
    assert_eq!(msg.header().length, 0);
    assert_eq!(msg.as_bytes(), &bytes[..]);
    assert_eq!(msg.attributes().count(), 0);
    assert!(crate::stun::looks_like_stun(&bytes));
}
