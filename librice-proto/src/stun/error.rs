//! Error types of the STUN layer: decoding, encoding, integrity and credentials.

use std::fmt;

use super::attr::AttributeType;

/// The most attribute types an [`StunParseError::UnknownComprehensionRequired`] error keeps.
pub const MAX_UNKNOWN_ATTRIBUTES: usize = 8;

/// A fixed-capacity list of attribute types, used to report the unknown
/// comprehension-required attributes of a message without allocating.
///
/// A server answers such a request with a 420 (Unknown Attribute) response that lists
/// these types in UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1.1). At most
/// [`MAX_UNKNOWN_ATTRIBUTES`] types are kept; [`Self::overflowed`] says if more were seen.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AttributeTypeList {
    types: [u16; MAX_UNKNOWN_ATTRIBUTES],
    len: u8,
    overflowed: bool,
}

impl AttributeTypeList {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            types: [0; MAX_UNKNOWN_ATTRIBUTES],
            len: 0,
            overflowed: false,
        }
    }

    /// Adds a type, unless it is already listed. Types beyond the capacity are counted as
    /// an overflow and dropped.
    pub fn push(&mut self, ty: AttributeType) {
        if self.as_slice().contains(&ty.value()) {
            return;
        }
        if usize::from(self.len) == MAX_UNKNOWN_ATTRIBUTES {
            self.overflowed = true;
            return;
        }
        self.types[usize::from(self.len)] = ty.value();
        self.len += 1;
    }

    /// The listed types, as their wire values.
    pub fn as_slice(&self) -> &[u16] {
        &self.types[..usize::from(self.len)]
    }

    /// The listed types.
    pub fn iter(&self) -> impl Iterator<Item = AttributeType> + '_ {
        self.as_slice().iter().map(|&t| AttributeType::new(t))
    }

    /// Number of listed types.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True when no type is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when more distinct types were pushed than the list can hold.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl Default for AttributeTypeList {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AttributeTypeList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Why bytes could not be decoded as a STUN message or one of its attributes.
///
/// Each malformed case has its own variant so that callers (and tests) can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StunParseError {
    /// Fewer bytes than a STUN header (20).
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The two most significant bits of the message are not zero (RFC 8489 §5): this is
    /// not a STUN message (it may be ChannelData, RTP, DTLS, ...).
    NotStun,
    /// The magic cookie field is not 0x2112A442 (RFC 8489 §5). RFC 3489 messages, which
    /// have no magic cookie, are not supported.
    BadMagicCookie {
        /// The value found in the cookie field.
        found: u32,
    },
    /// The message length is not a multiple of 4 (RFC 8489 §5).
    UnalignedLength {
        /// The length field.
        length: u16,
    },
    /// The message length runs past the end of the buffer.
    LengthOverrun {
        /// Total size the header announces (header included).
        expected: usize,
        /// Bytes available.
        available: usize,
    },
    /// The buffer holds bytes after the end of the message the header announces.
    TrailingBytes {
        /// Total size the header announces (header included).
        expected: usize,
        /// Bytes available.
        available: usize,
    },
    /// An attribute header or value runs past the end of the message.
    AttributeOverrun {
        /// The attribute's type.
        attr: AttributeType,
        /// Offset of the attribute in the message.
        offset: usize,
    },
    /// An attribute follows MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 where
    /// RFC 8489 §14.5 / §14.6 allow only MESSAGE-INTEGRITY-SHA256 (after
    /// MESSAGE-INTEGRITY) and FINGERPRINT.
    AttributeAfterIntegrity {
        /// The offending attribute.
        attr: AttributeType,
        /// The integrity attribute it follows.
        after: AttributeType,
    },
    /// FINGERPRINT is not the last attribute (RFC 8489 §14.7).
    FingerprintNotLast,
    /// The message carries comprehension-required attributes (type < 0x8000) that this
    /// implementation does not understand (RFC 8489 §6.3.1 and §14). A server answers a
    /// request with 420 and these types in UNKNOWN-ATTRIBUTES.
    UnknownComprehensionRequired(AttributeTypeList),
    /// An attribute's value has a length its type does not allow.
    InvalidAttributeLength {
        /// The attribute's type.
        attr: AttributeType,
        /// The length found.
        len: usize,
    },
    /// An address attribute names an address family other than IPv4 (1) or IPv6 (2).
    UnknownAddressFamily {
        /// The attribute's type.
        attr: AttributeType,
        /// The family byte found.
        family: u8,
    },
    /// A text attribute is not valid UTF-8.
    InvalidUtf8 {
        /// The attribute's type.
        attr: AttributeType,
    },
    /// An ERROR-CODE or ADDRESS-ERROR-CODE class is outside 3..=6 or its number is over 99.
    InvalidErrorCode {
        /// The attribute's type.
        attr: AttributeType,
        /// The class digit found.
        class: u8,
        /// The number found.
        number: u8,
    },
}

impl fmt::Display for StunParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => {
                write!(
                    f,
                    "{len} bytes is too short for a STUN message (20 at least)"
                )
            }
            Self::NotStun => write!(f, "not a STUN message: the two leading bits are not zero"),
            Self::BadMagicCookie { found } => {
                write!(f, "not a STUN message: magic cookie is {found:#010x}")
            }
            Self::UnalignedLength { length } => {
                write!(f, "STUN message length {length} is not a multiple of 4")
            }
            Self::LengthOverrun {
                expected,
                available,
            } => write!(
                f,
                "STUN message of {expected} bytes overruns the {available} bytes available"
            ),
            Self::TrailingBytes {
                expected,
                available,
            } => write!(
                f,
                "{} bytes follow the end of a {expected}-byte STUN message",
                available - expected
            ),
            Self::AttributeOverrun { attr, offset } => write!(
                f,
                "attribute {attr:?} at offset {offset} runs past the end of the message"
            ),
            Self::AttributeAfterIntegrity { attr, after } => {
                write!(f, "attribute {attr:?} is not allowed after {after:?}")
            }
            Self::FingerprintNotLast => write!(f, "FINGERPRINT is not the last attribute"),
            Self::UnknownComprehensionRequired(list) => {
                write!(f, "unknown comprehension-required attributes {list:?}")
            }
            Self::InvalidAttributeLength { attr, len } => {
                write!(f, "attribute {attr:?} has an invalid length {len}")
            }
            Self::UnknownAddressFamily { attr, family } => {
                write!(f, "attribute {attr:?} has unknown address family {family}")
            }
            Self::InvalidUtf8 { attr } => write!(f, "attribute {attr:?} is not valid UTF-8"),
            Self::InvalidErrorCode {
                attr,
                class,
                number,
            } => write!(
                f,
                "attribute {attr:?} has an invalid error code (class {class}, number {number})"
            ),
        }
    }
}

impl std::error::Error for StunParseError {}

/// Why a STUN message or attribute could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StunWriteError {
    /// The attribute value is longer than its type or the 16-bit length field allows.
    ValueTooLong {
        /// The attribute's type.
        attr: AttributeType,
        /// The length that was asked for.
        len: usize,
    },
    /// The message would grow past the 16-bit length field.
    MessageTooLong,
    /// Only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT may follow MESSAGE-INTEGRITY, and only
    /// FINGERPRINT may follow MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.5, §14.6).
    AfterIntegrity {
        /// The attribute that was being added.
        attr: AttributeType,
    },
    /// Nothing may follow FINGERPRINT (RFC 8489 §14.7).
    AfterFingerprint {
        /// The attribute that was being added.
        attr: AttributeType,
    },
    /// A truncated MESSAGE-INTEGRITY-SHA256 must be 16 to 32 bytes and a multiple of 4
    /// (RFC 8489 §14.6).
    InvalidTruncation {
        /// The length that was asked for.
        len: usize,
    },
    /// An error code outside 300..=699.
    InvalidErrorCode {
        /// The code that was asked for.
        code: u16,
    },
}

impl fmt::Display for StunWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValueTooLong { attr, len } => {
                write!(f, "a {len}-byte value is too long for attribute {attr:?}")
            }
            Self::MessageTooLong => {
                write!(f, "STUN message would exceed 65535 bytes of attributes")
            }
            Self::AfterIntegrity { attr } => write!(
                f,
                "attribute {attr:?} cannot be added after the message integrity attribute"
            ),
            Self::AfterFingerprint { attr } => {
                write!(f, "attribute {attr:?} cannot be added after FINGERPRINT")
            }
            Self::InvalidTruncation { len } => write!(
                f,
                "MESSAGE-INTEGRITY-SHA256 cannot be truncated to {len} bytes (16..=32, multiple of 4)"
            ),
            Self::InvalidErrorCode { code } => {
                write!(f, "error code {code} is outside 300..=699")
            }
        }
    }
}

impl std::error::Error for StunWriteError {}

/// Why a message failed its MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 or FINGERPRINT check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The message has no FINGERPRINT attribute.
    MissingFingerprint,
    /// The FINGERPRINT value does not match the message.
    FingerprintMismatch,
    /// The message has neither MESSAGE-INTEGRITY nor MESSAGE-INTEGRITY-SHA256.
    MissingIntegrity,
    /// The message lacks the integrity attribute of the algorithm that was asked for.
    MissingAlgorithm,
    /// The HMAC does not match: wrong key, or the message was altered.
    IntegrityMismatch,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingFingerprint => "message has no FINGERPRINT",
            Self::FingerprintMismatch => "FINGERPRINT does not match the message",
            Self::MissingIntegrity => "message has no MESSAGE-INTEGRITY(-SHA256)",
            Self::MissingAlgorithm => "message lacks the integrity attribute that was required",
            Self::IntegrityMismatch => "message integrity check failed",
        })
    }
}

impl std::error::Error for IntegrityError {}

/// Why a credential could not be turned into an integrity key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialError {
    /// The string is not allowed by the PRECIS OpaqueString profile (RFC 8265 §4.2), e.g.
    /// it is empty or holds control or unassigned code points.
    NotOpaqueString {
        /// Which field was rejected: "username", "realm" or "password".
        field: &'static str,
    },
    /// The password algorithm is not one this implementation supports.
    UnsupportedAlgorithm {
        /// The algorithm number found.
        algorithm: u16,
    },
}

impl fmt::Display for CredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOpaqueString { field } => write!(
                f,
                "the {field} is not a valid PRECIS OpaqueString (RFC 8265): empty, or holds disallowed characters"
            ),
            Self::UnsupportedAlgorithm { algorithm } => {
                write!(f, "unsupported STUN password algorithm {algorithm:#06x}")
            }
        }
    }
}

impl std::error::Error for CredentialError {}
