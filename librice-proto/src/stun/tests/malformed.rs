//! Malformed messages and attributes, one test per error class, each asserting the exact
//! variant. Messages are assembled by hand so that no writer check gets in the way.

use crate::stun::attr::{
    AddressErrorCode, AlternateDomain, AttributeType, ChannelNumber, ErrorCode, EvenPort,
    IceControlled, Icmp, Lifetime, MappedAddress, MessageIntegrity, MessageIntegritySha256,
    Nomination, Nonce, PasswordAlgorithm, PasswordAlgorithms, Priority, Realm,
    RequestedAddressFamily, RequestedTransport, ReservationToken, Software, UnknownAttributes,
    UseCandidate, Userhash, Username, XorMappedAddress, XorPeerAddress,
};
use crate::stun::{
    IntegrityError, IntegrityKey, MAX_UNKNOWN_ATTRIBUTES, Message, MessageHeader, MessageType,
    StunParseError, TransactionId,
};

use super::{TXID, build, hex, set_length};

const BINDING_REQUEST: u16 = 0x0001;
const SOFTWARE: u16 = 0x8022;
const MI: u16 = 0x0008;
const MI_SHA256: u16 = 0x001C;
const FINGERPRINT: u16 = 0x8028;

/// A Binding request carrying one attribute.
fn with_attr(ty: AttributeType, value: &[u8]) -> Vec<u8> {
    build(BINDING_REQUEST, &[(ty.value(), value)])
}

fn parse_err(bytes: &[u8]) -> StunParseError {
    Message::parse(bytes).expect_err("the message is malformed")
}

/// Asserts that decoding the single attribute `$ty` (wire type `$attr`) with value `$value`
/// fails with `$err`, while the message framing itself is valid.
macro_rules! assert_decode_err {
    ($ty:ident, $attr:ident, $value:expr, $err:expr) => {{
        let bytes = with_attr(AttributeType::$attr, $value);
        let msg = Message::parse(&bytes).expect("the framing is valid");
        assert_eq!(
            msg.attribute::<$ty>().map(|_| ()),
            Err($err),
            "{}",
            stringify!($ty)
        );
    }};
}

#[test]
fn too_short() {
    assert_eq!(parse_err(&[]), StunParseError::TooShort { len: 0 });
    let valid = build(BINDING_REQUEST, &[]);
    assert_eq!(
        parse_err(&valid[..19]),
        StunParseError::TooShort { len: 19 }
    );
    assert_eq!(
        MessageHeader::parse(&valid[..1]),
        Err(StunParseError::TooShort { len: 1 })
    );
    assert!(Message::parse(&valid).is_ok(), "20 bytes are enough");
}

#[test]
fn leading_bits_not_zero_is_not_stun() {
    for first in [0x40, 0x80, 0xC0, 0xFF] {
        let mut bytes = build(BINDING_REQUEST, &[]);
        bytes[0] = first;
        assert_eq!(parse_err(&bytes), StunParseError::NotStun, "{first:#x}");
    }
    // A TURN ChannelData message (channel 0x4001), 20 bytes long.
    let mut channel_data = vec![0x40, 0x01, 0x00, 0x10];
    channel_data.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    channel_data.resize(20, 7);
    assert_eq!(parse_err(&channel_data), StunParseError::NotStun);
}

#[test]
fn bad_magic_cookie() {
    // An RFC 3489 message has a transaction id where the cookie is.
    let mut bytes = build(BINDING_REQUEST, &[]);
    bytes[4..8].copy_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    assert_eq!(
        parse_err(&bytes),
        StunParseError::BadMagicCookie { found: 0xDEAD_BEEF }
    );
    assert_eq!(
        MessageHeader::parse(&bytes),
        Err(StunParseError::BadMagicCookie { found: 0xDEAD_BEEF })
    );
    // The leading bits are checked first.
    bytes[0] = 0x80;
    assert_eq!(parse_err(&bytes), StunParseError::NotStun);
}

#[test]
fn unaligned_length() {
    for length in [1u16, 2, 3, 5, 0xFFFF] {
        let mut bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcdefgh")]);
        set_length(&mut bytes, length);
        assert_eq!(
            parse_err(&bytes),
            StunParseError::UnalignedLength { length }
        );
    }
}

#[test]
fn length_overrun() {
    let mut bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcd")]);
    assert_eq!(bytes.len(), 28);
    set_length(&mut bytes, 12);
    assert_eq!(
        parse_err(&bytes),
        StunParseError::LengthOverrun {
            expected: 32,
            available: 28,
        }
    );
    let valid = hex(super::vectors::RFC5769_REQUEST);
    assert_eq!(
        parse_err(&valid[..100]),
        StunParseError::LengthOverrun {
            expected: 108,
            available: 100,
        }
    );
}

#[test]
fn trailing_bytes() {
    let mut bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcd")]);
    bytes.extend_from_slice(&[0; 4]);
    assert_eq!(
        parse_err(&bytes),
        StunParseError::TrailingBytes {
            expected: 28,
            available: 32,
        }
    );
    // Two messages in one datagram are not one message.
    let one = build(BINDING_REQUEST, &[]);
    let two = [one.clone(), one].concat();
    assert_eq!(
        parse_err(&two),
        StunParseError::TrailingBytes {
            expected: 20,
            available: 40,
        }
    );
}

/// An attribute's value running past the end of the message. (An attribute *header* cannot
/// overrun through `Message::parse`: the length field is a multiple of 4 and every
/// attribute starts on a 4-byte boundary, so at least 4 bytes remain wherever a header
/// starts.)
#[test]
fn attribute_value_overrun() {
    // The only attribute claims one byte more than the message holds.
    let mut bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcdefgh")]);
    bytes[22..24].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(
        parse_err(&bytes),
        StunParseError::AttributeOverrun {
            attr: AttributeType::SOFTWARE,
            offset: 20,
        }
    );
    // The second attribute claims far more.
    let mut bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcd"), (0x0006, b"user")]);
    bytes[30..32].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert_eq!(
        parse_err(&bytes),
        StunParseError::AttributeOverrun {
            attr: AttributeType::USERNAME,
            offset: 28,
        }
    );
    // An attribute whose value ends exactly at the message end but whose padding would not
    // fit cannot exist either: the value length is the remaining length at most.
    let mut bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcd"), (0x0006, b"user")]);
    bytes[30..32].copy_from_slice(&5u16.to_be_bytes());
    assert_eq!(
        parse_err(&bytes),
        StunParseError::AttributeOverrun {
            attr: AttributeType::USERNAME,
            offset: 28,
        }
    );
}

/// RFC 8489 §14: padding "MUST be ignored by the receiver" (RFC 5389 §15: "may be any
/// value"), so non-zero padding is accepted and left out of the value; the integrity and
/// fingerprint still cover it. (`StunParseError::BadPadding` is no longer produced.)
#[test]
fn non_zero_padding_is_ignored() {
    for pad in [0x01, 0x20, 0xFF] {
        let mut bytes = build(
            BINDING_REQUEST,
            &[(0x0006, b"abc"), (SOFTWARE, b"x"), (0xC001, b"yz")],
        );
        bytes[27] = pad;
        bytes[33..36].fill(pad);
        bytes[42..44].fill(pad);
        let msg = Message::parse(&bytes).expect("padding values are ignored");
        assert_eq!(msg.attribute::<Username>(), Ok(Some(Username("abc"))));
        assert_eq!(msg.attribute::<Software>(), Ok(Some(Software("x"))));
        let raw = msg.raw_attribute(AttributeType::new(0xC001)).unwrap();
        assert_eq!(raw.value(), b"yz");
        assert_eq!(msg.attributes().count(), 3);
    }
}

#[test]
fn attribute_after_message_integrity() {
    let mi = [0u8; 20];
    let mi256 = [0u8; 32];
    let after = |attrs: &[(u16, &[u8])]| parse_err(&build(BINDING_REQUEST, attrs));
    assert_eq!(
        after(&[(MI, &mi), (SOFTWARE, b"late")]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::SOFTWARE,
            after: AttributeType::MESSAGE_INTEGRITY,
        }
    );
    assert_eq!(
        after(&[(MI_SHA256, &mi256), (SOFTWARE, b"late")]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::SOFTWARE,
            after: AttributeType::MESSAGE_INTEGRITY_SHA256,
        }
    );
    assert_eq!(
        after(&[(MI_SHA256, &mi256), (MI, &mi)]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY,
            after: AttributeType::MESSAGE_INTEGRITY_SHA256,
        }
    );
    assert_eq!(
        after(&[(MI, &mi), (MI, &mi)]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY,
            after: AttributeType::MESSAGE_INTEGRITY,
        }
    );
    assert_eq!(
        after(&[(MI_SHA256, &mi256), (MI_SHA256, &mi256)]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::MESSAGE_INTEGRITY_SHA256,
            after: AttributeType::MESSAGE_INTEGRITY_SHA256,
        }
    );
    assert_eq!(
        after(&[(MI, &mi), (MI_SHA256, &mi256), (SOFTWARE, b"late")]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::SOFTWARE,
            after: AttributeType::MESSAGE_INTEGRITY_SHA256,
        }
    );
    // An unknown comprehension-required attribute after MESSAGE-INTEGRITY is reported as
    // misplaced, not as unknown.
    assert_eq!(
        after(&[(MI, &mi), (0x7777, b"")]),
        StunParseError::AttributeAfterIntegrity {
            attr: AttributeType::new(0x7777),
            after: AttributeType::MESSAGE_INTEGRITY,
        }
    );
    // What RFC 8489 §14.5 and §14.6 allow.
    for allowed in [
        &[
            (MI, &mi[..]),
            (MI_SHA256, &mi256[..]),
            (FINGERPRINT, &[0u8; 4][..]),
        ][..],
        &[(MI, &mi[..]), (FINGERPRINT, &[0u8; 4][..])][..],
        &[(MI_SHA256, &mi256[..]), (FINGERPRINT, &[0u8; 4][..])][..],
    ] {
        assert!(Message::parse(&build(BINDING_REQUEST, allowed)).is_ok());
    }
}

#[test]
fn fingerprint_not_last() {
    let fp = [0u8; 4];
    for attrs in [
        &[(FINGERPRINT, &fp[..]), (SOFTWARE, &b"late"[..])][..],
        &[(FINGERPRINT, &fp[..]), (FINGERPRINT, &fp[..])][..],
        &[(FINGERPRINT, &fp[..]), (MI, &[0u8; 20][..])][..],
        &[(FINGERPRINT, &fp[..]), (0x7777, &[][..])][..],
    ] {
        assert_eq!(
            parse_err(&build(BINDING_REQUEST, attrs)),
            StunParseError::FingerprintNotLast
        );
    }
}

#[test]
fn unknown_comprehension_required() {
    let bytes = build(
        BINDING_REQUEST,
        &[
            (0x7777, b"a"),
            (SOFTWARE, b"ok"),
            (0x0030, b""),
            (0x7777, b"again"),
        ],
    );
    let StunParseError::UnknownComprehensionRequired(list) = parse_err(&bytes) else {
        panic!("expected UnknownComprehensionRequired");
    };
    assert_eq!(
        list.as_slice(),
        [0x7777, 0x0030],
        "each type once, in wire order"
    );
    assert_eq!(
        list.iter().collect::<Vec<_>>(),
        [AttributeType::new(0x7777), AttributeType::new(0x0030)]
    );
    assert!(!list.overflowed());
    // A server still reads the header to answer with 420.
    let header = MessageHeader::parse(&bytes).unwrap();
    assert_eq!(header.message_type, MessageType::BINDING_REQUEST);
    assert_eq!(header.transaction_id, TransactionId(TXID));
}

#[test]
fn unknown_comprehension_required_list_overflows() {
    let types: Vec<u16> = (0x7700..0x7700 + MAX_UNKNOWN_ATTRIBUTES as u16 + 2).collect();
    let attrs: Vec<(u16, &[u8])> = types.iter().map(|&t| (t, &b""[..])).collect();
    let StunParseError::UnknownComprehensionRequired(list) =
        parse_err(&build(BINDING_REQUEST, &attrs))
    else {
        panic!("expected UnknownComprehensionRequired");
    };
    assert_eq!(list.len(), MAX_UNKNOWN_ATTRIBUTES);
    assert_eq!(list.as_slice(), &types[..MAX_UNKNOWN_ATTRIBUTES]);
    assert!(list.overflowed());
}

#[test]
fn unknown_comprehension_optional_is_accepted_as_raw() {
    let bytes = build(
        BINDING_REQUEST,
        &[(0xC0FF, b"opaque"), (SOFTWARE, b"sw"), (0xFFFF, b"")],
    );
    let msg = Message::parse(&bytes).expect("comprehension-optional types are ignorable");
    let types: Vec<u16> = msg.attributes().map(|a| a.attr_type().value()).collect();
    assert_eq!(types, [0xC0FF, 0x8022, 0xFFFF]);
    let raw = msg.raw_attribute(AttributeType::new(0xC0FF)).unwrap();
    assert_eq!(raw.value(), b"opaque");
    assert_eq!(raw.wire_len(), 12);
    assert!(msg.has_attribute(AttributeType::new(0xFFFF)));
    assert!(!AttributeType::new(0xC0FF).is_known());
    assert!(!AttributeType::new(0xC0FF).is_comprehension_required());
    assert_eq!(msg.attribute::<Software>(), Ok(Some(Software("sw"))));
}

/// Types the crate knows without acting on them (RFC 5780) are not reported as unknown.
#[test]
fn known_unimplemented_types_are_accepted() {
    let bytes = build(
        BINDING_REQUEST,
        &[
            (0x0003, &[0, 0, 0, 6]),
            (0x0026, b"pad"),
            (0x0027, &[0x12, 0x34, 0, 0]),
        ],
    );
    assert!(Message::parse(&bytes).is_ok());
}

#[test]
fn invalid_attribute_length() {
    use StunParseError::InvalidAttributeLength as Len;
    macro_rules! len_err {
        ($ty:ident, $attr:ident, $value:expr) => {{
            let value: &[u8] = $value;
            assert_decode_err!(
                $ty,
                $attr,
                value,
                Len {
                    attr: AttributeType::$attr,
                    len: value.len(),
                }
            );
        }};
    }
    len_err!(Priority, PRIORITY, &[1, 2, 3]);
    len_err!(Priority, PRIORITY, &[1, 2, 3, 4, 5]);
    len_err!(IceControlled, ICE_CONTROLLED, &[0; 4]);
    len_err!(UseCandidate, USE_CANDIDATE, &[0]);
    len_err!(Nomination, NOMINATION, &[]);
    len_err!(Nomination, NOMINATION, &[0, 0, 1]);
    len_err!(Nomination, NOMINATION, &[0, 0, 0, 0, 1]);
    len_err!(Lifetime, LIFETIME, &[0; 8]);
    len_err!(XorMappedAddress, XOR_MAPPED_ADDRESS, &[]);
    len_err!(XorMappedAddress, XOR_MAPPED_ADDRESS, &[0]);
    len_err!(XorMappedAddress, XOR_MAPPED_ADDRESS, &[0, 1, 0, 0, 1, 2, 3]);
    len_err!(
        XorMappedAddress,
        XOR_MAPPED_ADDRESS,
        &[0, 1, 0, 0, 1, 2, 3, 4, 5]
    );
    len_err!(MappedAddress, MAPPED_ADDRESS, &[0, 2, 0, 0, 1, 2, 3, 4]);
    len_err!(Userhash, USERHASH, &[0; 31]);
    len_err!(Userhash, USERHASH, &[0; 33]);
    len_err!(MessageIntegrity, MESSAGE_INTEGRITY, &[0; 19]);
    len_err!(MessageIntegritySha256, MESSAGE_INTEGRITY_SHA256, &[0; 12]);
    len_err!(MessageIntegritySha256, MESSAGE_INTEGRITY_SHA256, &[0; 18]);
    len_err!(MessageIntegritySha256, MESSAGE_INTEGRITY_SHA256, &[0; 36]);
    len_err!(Username, USERNAME, &[b'u'; 509]);
    len_err!(Realm, REALM, &[b'r'; 764]);
    len_err!(Nonce, NONCE, &[b'n'; 764]);
    len_err!(Software, SOFTWARE, &[b's'; 764]);
    len_err!(AlternateDomain, ALTERNATE_DOMAIN, &[b'd'; 256]);
    len_err!(ErrorCode, ERROR_CODE, &[0, 0, 4]);
    len_err!(UnknownAttributes, UNKNOWN_ATTRIBUTES, &[0, 1, 0]);
    len_err!(PasswordAlgorithm, PASSWORD_ALGORITHM, &[0, 2]);
    // Parameters longer than the value.
    len_err!(
        PasswordAlgorithm,
        PASSWORD_ALGORITHM,
        &[0, 2, 0, 8, 1, 2, 3, 4]
    );
    // Two algorithms where one is allowed.
    len_err!(
        PasswordAlgorithm,
        PASSWORD_ALGORITHM,
        &[0, 2, 0, 0, 0, 1, 0, 0]
    );
    // A truncated second entry.
    len_err!(PasswordAlgorithms, PASSWORD_ALGORITHMS, &[0, 2, 0, 0, 0, 1]);
    len_err!(ChannelNumber, CHANNEL_NUMBER, &[0x40, 0x01]);
    len_err!(EvenPort, EVEN_PORT, &[0x80, 0, 0, 0]);
    len_err!(RequestedTransport, REQUESTED_TRANSPORT, &[17]);
    len_err!(RequestedAddressFamily, REQUESTED_ADDRESS_FAMILY, &[1]);
    len_err!(ReservationToken, RESERVATION_TOKEN, &[0; 4]);
    len_err!(AddressErrorCode, ADDRESS_ERROR_CODE, &[1, 0, 4]);
    len_err!(Icmp, ICMP, &[0; 4]);
}

/// The longest values each text type allows still decode.
#[test]
fn text_attributes_at_their_limits() {
    let long = "u".repeat(508);
    let bytes = with_attr(AttributeType::USERNAME, long.as_bytes());
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.attribute::<Username>(), Ok(Some(Username(&long))));
    let long = "r".repeat(763);
    let bytes = with_attr(AttributeType::REALM, long.as_bytes());
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.attribute::<Realm>(), Ok(Some(Realm(&long))));
}

#[test]
fn unknown_address_family() {
    use StunParseError::UnknownAddressFamily as Family;
    assert_decode_err!(
        MappedAddress,
        MAPPED_ADDRESS,
        &[0, 3, 0, 1, 1, 2, 3, 4],
        Family {
            attr: AttributeType::MAPPED_ADDRESS,
            family: 3,
        }
    );
    assert_decode_err!(
        XorMappedAddress,
        XOR_MAPPED_ADDRESS,
        &[0, 0, 0, 1, 1, 2, 3, 4],
        Family {
            attr: AttributeType::XOR_MAPPED_ADDRESS,
            family: 0,
        }
    );
    // The family is checked before the length.
    assert_decode_err!(
        XorPeerAddress,
        XOR_PEER_ADDRESS,
        &[0, 0xFF],
        Family {
            attr: AttributeType::XOR_PEER_ADDRESS,
            family: 0xFF,
        }
    );
    assert_decode_err!(
        RequestedAddressFamily,
        REQUESTED_ADDRESS_FAMILY,
        &[3, 0, 0, 0],
        Family {
            attr: AttributeType::REQUESTED_ADDRESS_FAMILY,
            family: 3,
        }
    );
    assert_decode_err!(
        AddressErrorCode,
        ADDRESS_ERROR_CODE,
        &[0, 0, 4, 40],
        Family {
            attr: AttributeType::ADDRESS_ERROR_CODE,
            family: 0,
        }
    );
}

#[test]
fn invalid_utf8() {
    use StunParseError::InvalidUtf8;
    let bad: &[u8] = &[b'o', b'k', 0xFF, 0xFE];
    assert_decode_err!(
        Username,
        USERNAME,
        bad,
        InvalidUtf8 {
            attr: AttributeType::USERNAME
        }
    );
    assert_decode_err!(
        Realm,
        REALM,
        bad,
        InvalidUtf8 {
            attr: AttributeType::REALM
        }
    );
    assert_decode_err!(
        Nonce,
        NONCE,
        bad,
        InvalidUtf8 {
            attr: AttributeType::NONCE
        }
    );
    assert_decode_err!(
        Software,
        SOFTWARE,
        bad,
        InvalidUtf8 {
            attr: AttributeType::SOFTWARE
        }
    );
    assert_decode_err!(
        AlternateDomain,
        ALTERNATE_DOMAIN,
        bad,
        InvalidUtf8 {
            attr: AttributeType::ALTERNATE_DOMAIN,
        }
    );
    // A truncated multi-byte sequence.
    assert_decode_err!(
        Username,
        USERNAME,
        &[0xE3, 0x83],
        InvalidUtf8 {
            attr: AttributeType::USERNAME
        }
    );
    // The reason phrase of an error code.
    assert_decode_err!(
        ErrorCode,
        ERROR_CODE,
        &[0, 0, 4, 1, 0xC0, 0x80],
        InvalidUtf8 {
            attr: AttributeType::ERROR_CODE,
        }
    );
}

#[test]
fn invalid_error_code() {
    use StunParseError::InvalidErrorCode as Code;
    for (class, number) in [(2u8, 0u8), (7, 0), (0, 0), (4, 100), (6, 255)] {
        assert_decode_err!(
            ErrorCode,
            ERROR_CODE,
            &[0, 0, class, number],
            Code {
                attr: AttributeType::ERROR_CODE,
                class,
                number,
            }
        );
    }
    assert_decode_err!(
        AddressErrorCode,
        ADDRESS_ERROR_CODE,
        &[2, 0, 1, 0],
        Code {
            attr: AttributeType::ADDRESS_ERROR_CODE,
            class: 1,
            number: 0,
        }
    );
    // The boundaries are valid; the 21 reserved bits before the class are ignored.
    let bytes = with_attr(AttributeType::ERROR_CODE, &[0, 0, 3, 0]);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        msg.attribute::<ErrorCode>(),
        Ok(Some(ErrorCode {
            code: 300,
            reason: ""
        }))
    );
    let bytes = with_attr(AttributeType::ERROR_CODE, &[0xFF, 0xFF, 0xF6, 99, b'x']);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        msg.attribute::<ErrorCode>(),
        Ok(Some(ErrorCode {
            code: 699,
            reason: "x"
        }))
    );
}

/// Only the first occurrence of an attribute is processed (RFC 8489 §14), so a malformed
/// later duplicate does not matter.
#[test]
fn only_first_occurrence_is_decoded() {
    let bytes = build(
        BINDING_REQUEST,
        &[(SOFTWARE, b"first"), (SOFTWARE, &[0xFF])],
    );
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.attribute::<Software>(), Ok(Some(Software("first"))));
    assert_eq!(msg.attribute::<Username>(), Ok(None));
}

/// A FINGERPRINT attribute whose value is not 4 bytes never matches, and never reads
/// outside the message (a zero-length one at the very end used to index past it).
#[test]
fn fingerprint_of_wrong_length_is_a_mismatch() {
    let bytes = build(BINDING_REQUEST, &[(FINGERPRINT, b"")]);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        msg.check_fingerprint(),
        Err(IntegrityError::FingerprintMismatch)
    );

    // A 2-byte FINGERPRINT whose value and padding hold the right CRC is still rejected.
    let mut bytes = build(
        BINDING_REQUEST,
        &[(SOFTWARE, b"abcd"), (FINGERPRINT, &[0, 0])],
    );
    let at = bytes.len() - 8;
    let crc = crc32fast::hash(&bytes[..at]) ^ 0x5354_554E;
    bytes[at + 4..].copy_from_slice(&crc.to_be_bytes());
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(
        msg.check_fingerprint(),
        Err(IntegrityError::FingerprintMismatch)
    );
    // With the right length the same CRC matches, so only the length was wrong.
    bytes[at + 2..at + 4].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(Message::parse(&bytes).unwrap().check_fingerprint(), Ok(()));
}

/// Integrity attributes of lengths RFC 8489 does not allow never verify.
#[test]
fn integrity_of_wrong_length_is_a_mismatch() {
    let key = IntegrityKey::short_term("password").unwrap();
    for (ty, len) in [
        (MI, 0),
        (MI, 16),
        (MI, 32),
        (MI_SHA256, 0),
        (MI_SHA256, 12),
        (MI_SHA256, 18),
    ] {
        let value = vec![0u8; len];
        let bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcd"), (ty, &value)]);
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(
            msg.check_integrity(&key),
            Err(IntegrityError::IntegrityMismatch),
            "type {ty:#x} length {len}"
        );
    }
    let msg_bytes = build(BINDING_REQUEST, &[(SOFTWARE, b"abcd")]);
    let msg = Message::parse(&msg_bytes).unwrap();
    assert_eq!(
        msg.check_integrity(&key),
        Err(IntegrityError::MissingIntegrity)
    );
}
