//! General STUN attributes: ERROR-CODE, UNKNOWN-ATTRIBUTES, SOFTWARE, ALTERNATE-DOMAIN and
//! FINGERPRINT (RFC 8489 §14.7, §14.8, §14.13, §14.14, §14.16).

use super::{AttributeDecode, AttributeEncode, AttributeType, int_attribute, text_attribute};
use crate::stun::message::TransactionId;
use crate::stun::{StunParseError, StunWriteError};

/// The longest reason phrase: 128 characters of up to 6 bytes each... RFC 8489 §14.8 caps
/// it at 763 bytes.
const MAX_REASON_LEN: usize = 763;

/// ERROR-CODE: an error response's code (300-699) and reason phrase (RFC 8489 §14.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// The code, class * 100 + number, e.g. 401.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

impl ErrorCode<'static> {
    /// 300 Try Alternate.
    pub const TRY_ALTERNATE: u16 = 300;
    /// 400 Bad Request.
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated.
    pub const UNAUTHENTICATED: u16 = 401;
    /// 403 Forbidden.
    pub const FORBIDDEN: u16 = 403;
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 437 Allocation Mismatch (RFC 8656).
    pub const ALLOCATION_MISMATCH: u16 = 437;
    /// 438 Stale Nonce.
    pub const STALE_NONCE: u16 = 438;
    /// 440 Address Family not Supported (RFC 8656).
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    /// 441 Wrong Credentials (RFC 8656).
    pub const WRONG_CREDENTIALS: u16 = 441;
    /// 442 Unsupported Transport Protocol (RFC 8656).
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: u16 = 442;
    /// 443 Peer Address Family Mismatch (RFC 8656).
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    /// 486 Allocation Quota Reached (RFC 8656).
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    /// 487 Role Conflict (RFC 8445).
    pub const ROLE_CONFLICT: u16 = 487;
    /// 500 Server Error.
    pub const SERVER_ERROR: u16 = 500;
    /// 508 Insufficient Capacity (RFC 8656).
    pub const INSUFFICIENT_CAPACITY: u16 = 508;

    /// A recommended reason phrase for a code, or "Error" for codes it does not list.
    pub const fn default_reason(code: u16) -> &'static str {
        match code {
            300 => "Try Alternate",
            400 => "Bad Request",
            401 => "Unauthenticated",
            403 => "Forbidden",
            420 => "Unknown Attribute",
            437 => "Allocation Mismatch",
            438 => "Stale Nonce",
            440 => "Address Family not Supported",
            441 => "Wrong Credentials",
            442 => "Unsupported Transport Protocol",
            443 => "Peer Address Family Mismatch",
            486 => "Allocation Quota Reached",
            487 => "Role Conflict",
            500 => "Server Error",
            508 => "Insufficient Capacity",
            _ => "Error",
        }
    }

    /// An error code with its recommended reason phrase.
    pub const fn with_default_reason(code: u16) -> ErrorCode<'static> {
        ErrorCode {
            code,
            reason: Self::default_reason(code),
        }
    }
}

/// Decodes the class/number/reason layout shared by ERROR-CODE and ADDRESS-ERROR-CODE,
/// from the value bytes after the 2 leading ones.
pub(super) fn decode_code(attr: AttributeType, rest: &[u8]) -> Result<(u16, &str), StunParseError> {
    let class = rest[0] & 0x07;
    let number = rest[1];
    // RFC 8489 §14.8: the class MUST be between 3 and 6; the number is 0-99.
    if !(3..=6).contains(&class) || number > 99 {
        return Err(StunParseError::InvalidErrorCode {
            attr,
            class,
            number,
        });
    }
    let reason = super::text(attr, &rest[2..], MAX_REASON_LEN)?;
    Ok((u16::from(class) * 100 + u16::from(number), reason))
}

/// Refuses a code the class digit (3 bits, 3..=6 per RFC 8489 §14.8) cannot carry.
pub(super) fn validate_code(code: u16) -> Result<(), StunWriteError> {
    if (300..=699).contains(&code) {
        Ok(())
    } else {
        Err(StunWriteError::InvalidErrorCode { code })
    }
}

/// Writes class, number and reason into `out` (the value bytes after the 2 leading ones).
pub(super) fn encode_code(code: u16, reason: &str, out: &mut [u8]) {
    out[0] = (code / 100) as u8;
    out[1] = (code % 100) as u8;
    out[2..].copy_from_slice(reason.as_bytes());
}

impl<'a> AttributeDecode<'a> for ErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ERROR_CODE;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        if value.len() < 4 {
            return Err(StunParseError::InvalidAttributeLength {
                attr: Self::TYPE,
                len: value.len(),
            });
        }
        let (code, reason) = decode_code(Self::TYPE, &value[2..])?;
        Ok(ErrorCode { code, reason })
    }
}

impl AttributeEncode for ErrorCode<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::ERROR_CODE
    }

    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].fill(0);
        encode_code(self.code, self.reason, &mut out[2..]);
    }

    fn max_value_len(&self) -> usize {
        4 + MAX_REASON_LEN
    }

    fn validate(&self) -> Result<(), StunWriteError> {
        validate_code(self.code)
    }
}

/// UNKNOWN-ATTRIBUTES: the comprehension-required attribute types a server did not
/// understand (RFC 8489 §14.13).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnknownAttributes<'a>(Repr<'a>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Repr<'a> {
    Wire(&'a [u8]),
    Values(&'a [u16]),
}

impl<'a> UnknownAttributes<'a> {
    /// An attribute to write, listing these type numbers (for instance
    /// [`AttributeTypeList::as_slice`](crate::stun::AttributeTypeList::as_slice)).
    pub const fn new(types: &'a [u16]) -> Self {
        Self(Repr::Values(types))
    }

    /// The listed types.
    pub fn iter(&self) -> impl Iterator<Item = AttributeType> + 'a {
        let (wire, values): (&'a [u8], &'a [u16]) = match self.0 {
            Repr::Wire(w) => (w, &[]),
            Repr::Values(v) => (&[], v),
        };
        wire.chunks_exact(2)
            .map(|c| AttributeType::new(u16::from_be_bytes([c[0], c[1]])))
            .chain(values.iter().map(|&v| AttributeType::new(v)))
    }

    /// Number of listed types.
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Wire(w) => w.len() / 2,
            Repr::Values(v) => v.len(),
        }
    }

    /// True when no type is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for UnknownAttributes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> AttributeDecode<'a> for UnknownAttributes<'a> {
    const TYPE: AttributeType = AttributeType::UNKNOWN_ATTRIBUTES;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        if !value.len().is_multiple_of(2) {
            return Err(StunParseError::InvalidAttributeLength {
                attr: Self::TYPE,
                len: value.len(),
            });
        }
        Ok(Self(Repr::Wire(value)))
    }
}

impl AttributeEncode for UnknownAttributes<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::UNKNOWN_ATTRIBUTES
    }

    fn value_len(&self) -> usize {
        self.len() * 2
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        for (chunk, ty) in out.chunks_exact_mut(2).zip(self.iter()) {
            chunk.copy_from_slice(&ty.value().to_be_bytes());
        }
    }
}

/// SOFTWARE: a description of the sender's software (RFC 8489 §14.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Software<'a>(pub &'a str);
text_attribute!(Software, SOFTWARE, 763);

/// ALTERNATE-DOMAIN: the domain name of the alternate server, for TLS (RFC 8489 §14.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlternateDomain<'a>(pub &'a str);
text_attribute!(AlternateDomain, ALTERNATE_DOMAIN, 255);

/// FINGERPRINT: CRC-32 of the message XORed with 0x5354554e (RFC 8489 §14.7). Use
/// [`MessageWriter::add_fingerprint`](crate::stun::MessageWriter::add_fingerprint) to write
/// it and [`Message::check_fingerprint`](crate::stun::Message::check_fingerprint) to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub u32);
int_attribute!(Fingerprint, u32, FINGERPRINT);
