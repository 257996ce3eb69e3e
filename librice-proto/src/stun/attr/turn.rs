//! TURN attributes (RFC 8656 §18): CHANNEL-NUMBER, LIFETIME, DATA, REQUESTED-ADDRESS-FAMILY,
//! EVEN-PORT, REQUESTED-TRANSPORT, DONT-FRAGMENT, RESERVATION-TOKEN,
//! ADDITIONAL-ADDRESS-FAMILY, ADDRESS-ERROR-CODE and ICMP. The address attributes are in
//! the address module.

use super::misc::{decode_code, encode_code, validate_code};
use super::{AttributeDecode, AttributeEncode, AttributeType, flag_attribute, int_attribute};
use crate::stun::message::TransactionId;
use crate::stun::{StunParseError, StunWriteError};

/// An IP address family as TURN attributes encode it (RFC 8656 §18.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (0x01).
    V4,
    /// IPv6 (0x02).
    V6,
}

impl AddressFamily {
    const fn to_wire(self) -> u8 {
        match self {
            Self::V4 => 0x01,
            Self::V6 => 0x02,
        }
    }

    fn from_wire(attr: AttributeType, family: u8) -> Result<Self, StunParseError> {
        match family {
            0x01 => Ok(Self::V4),
            0x02 => Ok(Self::V6),
            family => Err(StunParseError::UnknownAddressFamily { attr, family }),
        }
    }
}

/// CHANNEL-NUMBER: a TURN channel, 0x4000-0x4FFF when valid (RFC 8656 §18.1). The
/// reserved 16 bits after the number are written as zero and ignored on reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelNumber(pub u16);

impl<'a> AttributeDecode<'a> for ChannelNumber {
    const TYPE: AttributeType = AttributeType::CHANNEL_NUMBER;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        let b = super::fixed::<4>(Self::TYPE, value)?;
        Ok(ChannelNumber(u16::from_be_bytes([b[0], b[1]])))
    }
}

impl AttributeEncode for ChannelNumber {
    fn attr_type(&self) -> AttributeType {
        AttributeType::CHANNEL_NUMBER
    }

    fn value_len(&self) -> usize {
        4
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].copy_from_slice(&self.0.to_be_bytes());
        out[2..].fill(0);
    }
}

/// LIFETIME: an allocation's lifetime in seconds (RFC 8656 §18.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifetime(pub u32);
int_attribute!(Lifetime, u32, LIFETIME);

/// DATA: application data in a Send or Data indication (RFC 8656 §18.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a>(pub &'a [u8]);

impl<'a> AttributeDecode<'a> for Data<'a> {
    const TYPE: AttributeType = AttributeType::DATA;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        Ok(Data(value))
    }
}

impl AttributeEncode for Data<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::DATA
    }

    fn value_len(&self) -> usize {
        self.0.len()
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(self.0);
    }
}

/// Implements decode and encode for an attribute holding a family byte and 3 reserved
/// bytes.
macro_rules! family_attribute {
    ($(#[$doc:meta])* $ty:ident, $attr:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $ty(pub AddressFamily);

        impl<'a> AttributeDecode<'a> for $ty {
            const TYPE: AttributeType = AttributeType::$attr;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
                let b = super::fixed::<4>(Self::TYPE, value)?;
                AddressFamily::from_wire(Self::TYPE, b[0]).map($ty)
            }
        }

        impl AttributeEncode for $ty {
            fn attr_type(&self) -> AttributeType {
                AttributeType::$attr
            }

            fn value_len(&self) -> usize {
                4
            }

            fn write_value(&self, out: &mut [u8], _: &TransactionId) {
                out[0] = self.0.to_wire();
                out[1..].fill(0);
            }
        }
    };
}

family_attribute!(
    /// REQUESTED-ADDRESS-FAMILY: the family of relayed address the client wants
    /// (RFC 8656 §18.6).
    RequestedAddressFamily,
    REQUESTED_ADDRESS_FAMILY
);
family_attribute!(
    /// ADDITIONAL-ADDRESS-FAMILY: asks for a second, IPv6, relayed address besides the IPv4
    /// one (RFC 8656 §18.11).
    AdditionalAddressFamily,
    ADDITIONAL_ADDRESS_FAMILY
);

/// EVEN-PORT: ask for an even relayed port and, with `reserve_next`, to reserve the next
/// one (RFC 8656 §18.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvenPort {
    /// The R bit: reserve the next higher port too.
    pub reserve_next: bool,
}

impl<'a> AttributeDecode<'a> for EvenPort {
    const TYPE: AttributeType = AttributeType::EVEN_PORT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        let b = super::fixed::<1>(Self::TYPE, value)?;
        Ok(EvenPort {
            reserve_next: b[0] & 0x80 != 0,
        })
    }
}

impl AttributeEncode for EvenPort {
    fn attr_type(&self) -> AttributeType {
        AttributeType::EVEN_PORT
    }

    fn value_len(&self) -> usize {
        1
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = if self.reserve_next { 0x80 } else { 0 };
    }
}

/// REQUESTED-TRANSPORT: the relay's transport protocol number; 17 is UDP
/// (RFC 8656 §18.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    /// UDP (IANA protocol number 17).
    pub const UDP: RequestedTransport = RequestedTransport(17);
    /// TCP (IANA protocol number 6, RFC 6062).
    pub const TCP: RequestedTransport = RequestedTransport(6);
}

impl<'a> AttributeDecode<'a> for RequestedTransport {
    const TYPE: AttributeType = AttributeType::REQUESTED_TRANSPORT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        let b = super::fixed::<4>(Self::TYPE, value)?;
        Ok(RequestedTransport(b[0]))
    }
}

impl AttributeEncode for RequestedTransport {
    fn attr_type(&self) -> AttributeType {
        AttributeType::REQUESTED_TRANSPORT
    }

    fn value_len(&self) -> usize {
        4
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = self.0;
        out[1..].fill(0);
    }
}

/// DONT-FRAGMENT: set the DF bit on relayed packets (RFC 8656 §18.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DontFragment;
flag_attribute!(DontFragment, DONT_FRAGMENT);

/// RESERVATION-TOKEN: names a relayed port reserved by an earlier EVEN-PORT request
/// (RFC 8656 §18.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservationToken(pub [u8; 8]);

impl<'a> AttributeDecode<'a> for ReservationToken {
    const TYPE: AttributeType = AttributeType::RESERVATION_TOKEN;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        super::fixed::<8>(Self::TYPE, value).map(|b| ReservationToken(*b))
    }
}

impl AttributeEncode for ReservationToken {
    fn attr_type(&self) -> AttributeType {
        AttributeType::RESERVATION_TOKEN
    }

    fn value_len(&self) -> usize {
        8
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&self.0);
    }
}

/// ADDRESS-ERROR-CODE: why the server could not allocate a relayed address of one family
/// in a dual allocation (RFC 8656 §18.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressErrorCode<'a> {
    /// The family that failed.
    pub family: AddressFamily,
    /// The error code, e.g. 440.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

impl<'a> AttributeDecode<'a> for AddressErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ADDRESS_ERROR_CODE;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        if value.len() < 4 {
            return Err(StunParseError::InvalidAttributeLength {
                attr: Self::TYPE,
                len: value.len(),
            });
        }
        let family = AddressFamily::from_wire(Self::TYPE, value[0])?;
        let (code, reason) = decode_code(Self::TYPE, &value[2..])?;
        Ok(AddressErrorCode {
            family,
            code,
            reason,
        })
    }
}

impl AttributeEncode for AddressErrorCode<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::ADDRESS_ERROR_CODE
    }

    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = self.family.to_wire();
        out[1] = 0;
        encode_code(self.code, self.reason, &mut out[2..]);
    }

    fn max_value_len(&self) -> usize {
        4 + 763
    }

    fn validate(&self) -> Result<(), StunWriteError> {
        validate_code(self.code)
    }
}

/// ICMP: an ICMP error the server received for the allocation, relayed in a Data
/// indication (RFC 8656 §18.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// The ICMP type.
    pub icmp_type: u8,
    /// The ICMP code.
    pub code: u8,
    /// The error data (e.g. the MTU for "fragmentation needed").
    pub error_data: u32,
}

impl<'a> AttributeDecode<'a> for Icmp {
    const TYPE: AttributeType = AttributeType::ICMP;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        let b = super::fixed::<8>(Self::TYPE, value)?;
        Ok(Icmp {
            icmp_type: b[2],
            code: b[3],
            error_data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

impl AttributeEncode for Icmp {
    fn attr_type(&self) -> AttributeType {
        AttributeType::ICMP
    }

    fn value_len(&self) -> usize {
        8
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out[..2].fill(0);
        out[2] = self.icmp_type;
        out[3] = self.code;
        out[4..].copy_from_slice(&self.error_data.to_be_bytes());
    }
}
