//! STUN attributes: the type registry, the raw form, and typed attributes.
//!
//! Every typed attribute implements [`AttributeDecode`] (read from a parsed
//! [`Message`](super::Message) with [`Message::attribute`](super::Message::attribute)) and,
//! except for the integrity and fingerprint attributes that the
//! [`MessageWriter`](super::MessageWriter) computes itself, [`AttributeEncode`] (written
//! with [`MessageWriter::add`](super::MessageWriter::add)). Decoding borrows from the
//! message; nothing allocates.

mod address;
mod auth;
mod ice;
mod misc;
mod turn;

use std::fmt;

use super::error::{StunParseError, StunWriteError};
use super::message::TransactionId;

pub use address::{
    AlternateServer, MappedAddress, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
pub use auth::{
    MessageIntegrity, MessageIntegritySha256, Nonce, PasswordAlgorithm, PasswordAlgorithmId,
    PasswordAlgorithms, Realm, Userhash, Username,
};
pub use ice::{IceControlled, IceControlling, Nomination, Priority, UseCandidate};
pub use misc::{AlternateDomain, ErrorCode, Fingerprint, Software, UnknownAttributes};
pub use turn::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, ChannelNumber, Data, DontFragment,
    EvenPort, Icmp, Lifetime, RequestedAddressFamily, RequestedTransport, ReservationToken,
};

/// A STUN attribute type (RFC 8489 §18.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(u16);

macro_rules! attribute_types {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, $text:expr; )*) => {
        impl AttributeType {
            $( $(#[$doc])* pub const $name: AttributeType = AttributeType($value); )*

            /// True for the types this crate knows and so can process.
            #[inline]
            pub const fn is_known(self) -> bool {
                matches!(self.0, $( $value )|*)
            }

            /// The registered name of a type this crate knows, e.g. "XOR-MAPPED-ADDRESS".
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }
        }
    };
}

attribute_types! {
    /// MAPPED-ADDRESS (RFC 8489 §14.1).
    MAPPED_ADDRESS = 0x0001, "MAPPED-ADDRESS";
    /// CHANGE-REQUEST (RFC 5780 §7.2): known so it is not reported as unknown; its
    /// behaviour is not implemented and a server answers as if it were absent.
    CHANGE_REQUEST = 0x0003, "CHANGE-REQUEST";
    /// USERNAME (RFC 8489 §14.3).
    USERNAME = 0x0006, "USERNAME";
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5).
    MESSAGE_INTEGRITY = 0x0008, "MESSAGE-INTEGRITY";
    /// ERROR-CODE (RFC 8489 §14.8).
    ERROR_CODE = 0x0009, "ERROR-CODE";
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.13).
    UNKNOWN_ATTRIBUTES = 0x000A, "UNKNOWN-ATTRIBUTES";
    /// CHANNEL-NUMBER (RFC 8656 §18.1).
    CHANNEL_NUMBER = 0x000C, "CHANNEL-NUMBER";
    /// LIFETIME (RFC 8656 §18.2).
    LIFETIME = 0x000D, "LIFETIME";
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3).
    XOR_PEER_ADDRESS = 0x0012, "XOR-PEER-ADDRESS";
    /// DATA (RFC 8656 §18.4).
    DATA = 0x0013, "DATA";
    /// REALM (RFC 8489 §14.9).
    REALM = 0x0014, "REALM";
    /// NONCE (RFC 8489 §14.10).
    NONCE = 0x0015, "NONCE";
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    XOR_RELAYED_ADDRESS = 0x0016, "XOR-RELAYED-ADDRESS";
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    REQUESTED_ADDRESS_FAMILY = 0x0017, "REQUESTED-ADDRESS-FAMILY";
    /// EVEN-PORT (RFC 8656 §18.7).
    EVEN_PORT = 0x0018, "EVEN-PORT";
    /// REQUESTED-TRANSPORT (RFC 8656 §18.8).
    REQUESTED_TRANSPORT = 0x0019, "REQUESTED-TRANSPORT";
    /// DONT-FRAGMENT (RFC 8656 §18.9).
    DONT_FRAGMENT = 0x001A, "DONT-FRAGMENT";
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    MESSAGE_INTEGRITY_SHA256 = 0x001C, "MESSAGE-INTEGRITY-SHA256";
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12).
    PASSWORD_ALGORITHM = 0x001D, "PASSWORD-ALGORITHM";
    /// USERHASH (RFC 8489 §14.4).
    USERHASH = 0x001E, "USERHASH";
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    XOR_MAPPED_ADDRESS = 0x0020, "XOR-MAPPED-ADDRESS";
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    RESERVATION_TOKEN = 0x0022, "RESERVATION-TOKEN";
    /// PRIORITY (RFC 8445 §16.1).
    PRIORITY = 0x0024, "PRIORITY";
    /// USE-CANDIDATE (RFC 8445 §16.1).
    USE_CANDIDATE = 0x0025, "USE-CANDIDATE";
    /// PADDING (RFC 5780 §7.6): known so it is not reported as unknown.
    PADDING = 0x0026, "PADDING";
    /// RESPONSE-PORT (RFC 5780 §7.5): known so it is not reported as unknown.
    RESPONSE_PORT = 0x0027, "RESPONSE-PORT";
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    ADDITIONAL_ADDRESS_FAMILY = 0x8000, "ADDITIONAL-ADDRESS-FAMILY";
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12).
    ADDRESS_ERROR_CODE = 0x8001, "ADDRESS-ERROR-CODE";
    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
    PASSWORD_ALGORITHMS = 0x8002, "PASSWORD-ALGORITHMS";
    /// ALTERNATE-DOMAIN (RFC 8489 §14.16).
    ALTERNATE_DOMAIN = 0x8003, "ALTERNATE-DOMAIN";
    /// ICMP (RFC 8656 §18.13).
    ICMP = 0x8004, "ICMP";
    /// SOFTWARE (RFC 8489 §14.14).
    SOFTWARE = 0x8022, "SOFTWARE";
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    ALTERNATE_SERVER = 0x8023, "ALTERNATE-SERVER";
    /// FINGERPRINT (RFC 8489 §14.7).
    FINGERPRINT = 0x8028, "FINGERPRINT";
    /// ICE-CONTROLLED (RFC 8445 §16.1).
    ICE_CONTROLLED = 0x8029, "ICE-CONTROLLED";
    /// ICE-CONTROLLING (RFC 8445 §16.1).
    ICE_CONTROLLING = 0x802A, "ICE-CONTROLLING";
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    RESPONSE_ORIGIN = 0x802B, "RESPONSE-ORIGIN";
    /// OTHER-ADDRESS (RFC 5780 §7.4).
    OTHER_ADDRESS = 0x802C, "OTHER-ADDRESS";
    /// NOMINATION (draft-thatcher-ice-renomination-01 §4), as libwebrtc and libnice send it.
    NOMINATION = 0xC001, "NOMINATION";
}

impl AttributeType {
    /// An attribute type from its number.
    #[inline]
    pub const fn new(value: u16) -> AttributeType {
        AttributeType(value)
    }

    /// The type's number.
    #[inline]
    pub const fn value(self) -> u16 {
        self.0
    }

    /// Types 0x0000-0x7FFF are comprehension-required: an agent that does not understand
    /// one cannot process the message (RFC 8489 §14).
    #[inline]
    pub const fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }
}

impl fmt::Debug for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#06x}", self.0),
        }
    }
}

/// An attribute as found on the wire: its type and value bytes (without padding).
///
/// Unknown attributes are only ever seen in this form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    attr_type: AttributeType,
    value: &'a [u8],
}

impl<'a> RawAttribute<'a> {
    /// An attribute from its type and value. The value must be at most 65535 bytes to be
    /// written.
    #[inline]
    pub const fn new(attr_type: AttributeType, value: &'a [u8]) -> Self {
        Self { attr_type, value }
    }

    /// The type.
    #[inline]
    pub const fn attr_type(&self) -> AttributeType {
        self.attr_type
    }

    /// The value bytes, without padding.
    #[inline]
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Bytes the attribute takes on the wire: 4 of header, the value, and padding.
    #[inline]
    pub const fn wire_len(&self) -> usize {
        4 + ((self.value.len() + 3) & !3)
    }

    /// Decodes the value as a typed attribute. `transaction_id` is needed by the
    /// XOR-encoded address attributes.
    #[inline]
    pub fn decode<A: AttributeDecode<'a>>(
        &self,
        transaction_id: &TransactionId,
    ) -> Result<A, StunParseError> {
        A::decode(self.value, transaction_id)
    }
}

impl fmt::Debug for RawAttribute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAttribute")
            .field("type", &self.attr_type)
            .field("len", &self.value.len())
            .finish()
    }
}

impl AttributeEncode for RawAttribute<'_> {
    #[inline]
    fn attr_type(&self) -> AttributeType {
        self.attr_type
    }

    fn value_len(&self) -> usize {
        self.value.len()
    }

    fn write_value(&self, out: &mut [u8], _transaction_id: &TransactionId) {
        out.copy_from_slice(self.value);
    }
}

/// A typed attribute that can be read from a message.
pub trait AttributeDecode<'a>: Sized {
    /// The attribute's type.
    const TYPE: AttributeType;

    /// Decodes the attribute from its value bytes (padding excluded).
    fn decode(value: &'a [u8], transaction_id: &TransactionId) -> Result<Self, StunParseError>;
}

/// A typed attribute that can be written into a message.
pub trait AttributeEncode {
    /// The attribute's type.
    fn attr_type(&self) -> AttributeType;

    /// Length of the value in bytes, padding excluded. The writer rejects values over the
    /// type's limit or 65535 bytes.
    fn value_len(&self) -> usize;

    /// Writes the value into `out`, which is exactly [`Self::value_len`] bytes long.
    fn write_value(&self, out: &mut [u8], transaction_id: &TransactionId);

    /// The longest value the type allows; the writer refuses longer ones.
    fn max_value_len(&self) -> usize {
        usize::from(u16::MAX)
    }

    /// Checks the value before it is written; the writer refuses the attribute when this
    /// fails. The default accepts every value.
    fn validate(&self) -> Result<(), StunWriteError> {
        Ok(())
    }

    /// Appends the whole attribute to `buf`: type, length, value and zero padding, exactly
    /// `4 + value_len()` rounded up to a multiple of 4 bytes. The default goes through
    /// [`Self::write_value`]; fixed-size attributes override it to write in one copy.
    fn append_to(&self, buf: &mut Vec<u8>, transaction_id: &TransactionId) {
        let len = self.value_len();
        buf.extend_from_slice(&attribute_header(self.attr_type(), len));
        let at = buf.len();
        buf.resize(at + ((len + 3) & !3), 0);
        self.write_value(&mut buf[at..at + len], transaction_id);
    }
}

/// The 4-byte header of an attribute with a `len`-byte value.
#[inline]
pub(crate) fn attribute_header(ty: AttributeType, len: usize) -> [u8; 4] {
    let [t0, t1] = ty.value().to_be_bytes();
    let [l0, l1] = (len as u16).to_be_bytes();
    [t0, t1, l0, l1]
}

/// Zero bytes to pad a value of `len` bytes to a multiple of 4.
#[inline]
pub(crate) fn padding(len: usize) -> &'static [u8] {
    &[0u8; 3][..(4 - len % 4) % 4]
}

/// Checks that a value has exactly `N` bytes and returns them as an array.
#[inline]
pub(crate) fn fixed<const N: usize>(
    attr: AttributeType,
    value: &[u8],
) -> Result<&[u8; N], StunParseError> {
    value
        .try_into()
        .map_err(|_| StunParseError::InvalidAttributeLength {
            attr,
            len: value.len(),
        })
}

/// Decodes a UTF-8 text value no longer than `max_len` bytes.
#[inline]
pub(crate) fn text(
    attr: AttributeType,
    value: &[u8],
    max_len: usize,
) -> Result<&str, StunParseError> {
    if value.len() > max_len {
        return Err(StunParseError::InvalidAttributeLength {
            attr,
            len: value.len(),
        });
    }
    std::str::from_utf8(value).map_err(|_| StunParseError::InvalidUtf8 { attr })
}

/// Implements [`AttributeDecode`] and [`AttributeEncode`] for a tuple struct over a
/// fixed-size big-endian integer.
macro_rules! int_attribute {
    ($ty:ident, $int:ty, $attr:ident) => {
        impl<'a> $crate::stun::attr::AttributeDecode<'a> for $ty {
            const TYPE: $crate::stun::attr::AttributeType =
                $crate::stun::attr::AttributeType::$attr;

            #[inline]
            fn decode(
                value: &'a [u8],
                _: &$crate::stun::TransactionId,
            ) -> Result<Self, $crate::stun::StunParseError> {
                let bytes = $crate::stun::attr::fixed(Self::TYPE, value)?;
                Ok($ty(<$int>::from_be_bytes(*bytes)))
            }
        }

        impl $crate::stun::attr::AttributeEncode for $ty {
            #[inline]
            fn attr_type(&self) -> $crate::stun::attr::AttributeType {
                $crate::stun::attr::AttributeType::$attr
            }

            fn value_len(&self) -> usize {
                std::mem::size_of::<$int>()
            }

            fn write_value(&self, out: &mut [u8], _: &$crate::stun::TransactionId) {
                out.copy_from_slice(&self.0.to_be_bytes());
            }

            fn append_to(&self, buf: &mut Vec<u8>, _: &$crate::stun::TransactionId) {
                const N: usize = std::mem::size_of::<$int>();
                let mut bytes = [0u8; 4 + N];
                bytes[..4].copy_from_slice(&$crate::stun::attr::attribute_header(
                    $crate::stun::attr::AttributeType::$attr,
                    N,
                ));
                bytes[4..].copy_from_slice(&self.0.to_be_bytes());
                buf.extend_from_slice(&bytes);
            }
        }
    };
}

/// Implements [`AttributeDecode`] and [`AttributeEncode`] for a unit struct whose
/// attribute has an empty value.
macro_rules! flag_attribute {
    ($ty:ident, $attr:ident) => {
        impl<'a> $crate::stun::attr::AttributeDecode<'a> for $ty {
            const TYPE: $crate::stun::attr::AttributeType =
                $crate::stun::attr::AttributeType::$attr;

            #[inline]
            fn decode(
                value: &'a [u8],
                _: &$crate::stun::TransactionId,
            ) -> Result<Self, $crate::stun::StunParseError> {
                $crate::stun::attr::fixed::<0>(Self::TYPE, value)?;
                Ok($ty)
            }
        }

        impl $crate::stun::attr::AttributeEncode for $ty {
            #[inline]
            fn attr_type(&self) -> $crate::stun::attr::AttributeType {
                $crate::stun::attr::AttributeType::$attr
            }

            fn value_len(&self) -> usize {
                0
            }

            fn write_value(&self, _: &mut [u8], _: &$crate::stun::TransactionId) {}

            fn append_to(&self, buf: &mut Vec<u8>, _: &$crate::stun::TransactionId) {
                buf.extend_from_slice(&$crate::stun::attr::attribute_header(
                    $crate::stun::attr::AttributeType::$attr,
                    0,
                ));
            }
        }
    };
}

/// Implements [`AttributeDecode`] and [`AttributeEncode`] for a tuple struct over `&str`
/// with a maximum length in bytes.
macro_rules! text_attribute {
    ($ty:ident, $attr:ident, $max:expr) => {
        impl<'a> $crate::stun::attr::AttributeDecode<'a> for $ty<'a> {
            const TYPE: $crate::stun::attr::AttributeType =
                $crate::stun::attr::AttributeType::$attr;

            #[inline]
            fn decode(
                value: &'a [u8],
                _: &$crate::stun::TransactionId,
            ) -> Result<Self, $crate::stun::StunParseError> {
                $crate::stun::attr::text(Self::TYPE, value, $max).map($ty)
            }
        }

        impl $crate::stun::attr::AttributeEncode for $ty<'_> {
            #[inline]
            fn attr_type(&self) -> $crate::stun::attr::AttributeType {
                $crate::stun::attr::AttributeType::$attr
            }

            fn value_len(&self) -> usize {
                self.0.len()
            }

            fn write_value(&self, out: &mut [u8], _: &$crate::stun::TransactionId) {
                out.copy_from_slice(self.0.as_bytes());
            }

            fn max_value_len(&self) -> usize {
                $max
            }

            fn append_to(&self, buf: &mut Vec<u8>, _: &$crate::stun::TransactionId) {
                let bytes = self.0.as_bytes();
                buf.extend_from_slice(&$crate::stun::attr::attribute_header(
                    $crate::stun::attr::AttributeType::$attr,
                    bytes.len(),
                ));
                buf.extend_from_slice(bytes);
                buf.extend_from_slice($crate::stun::attr::padding(bytes.len()));
            }
        }

        impl $ty<'_> {
            /// The longest value allowed, in bytes.
            pub const MAX_LEN: usize = $max;
        }
    };
}

pub(crate) use {flag_attribute, int_attribute, text_attribute};
