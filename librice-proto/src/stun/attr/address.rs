//! Address attributes: MAPPED-ADDRESS, XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
//! XOR-RELAYED-ADDRESS and ALTERNATE-SERVER (RFC 8489 §14.1, §14.2, §14.15;
//! RFC 8656 §18.3, §18.5).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{AttributeDecode, AttributeEncode, AttributeType};
use crate::stun::StunParseError;
use crate::stun::message::{MAGIC_COOKIE, TransactionId};

const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// The bytes an XOR-encoded address is XORed with: the magic cookie, then (for IPv6) the
/// transaction id (RFC 8489 §14.2).
fn xor_key(transaction_id: &TransactionId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(transaction_id.as_bytes());
    key
}

fn decode_address(
    attr: AttributeType,
    value: &[u8],
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, StunParseError> {
    let bad_len = StunParseError::InvalidAttributeLength {
        attr,
        len: value.len(),
    };
    let Some(&family) = value.get(1) else {
        return Err(bad_len);
    };
    let ip_len = match family {
        FAMILY_IPV4 => 4,
        FAMILY_IPV6 => 16,
        family => return Err(StunParseError::UnknownAddressFamily { attr, family }),
    };
    if value.len() != 4 + ip_len {
        return Err(bad_len);
    }
    let mut port = u16::from_be_bytes([value[2], value[3]]);
    let mut ip = [0u8; 16];
    ip[..ip_len].copy_from_slice(&value[4..]);
    if let Some(txid) = xor {
        port ^= (MAGIC_COOKIE >> 16) as u16;
        ip.iter_mut().zip(xor_key(txid)).for_each(|(b, k)| *b ^= k);
    }
    let ip = if family == FAMILY_IPV4 {
        IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(ip))
    };
    Ok(SocketAddr::new(ip, port))
}

fn address_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

fn encode_address(addr: &SocketAddr, out: &mut [u8], xor: Option<&TransactionId>) {
    let key = xor.map(xor_key);
    let mut port = addr.port();
    if key.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    out[0] = 0;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_IPV4;
            out[4..8].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_IPV6;
            out[4..20].copy_from_slice(&ip.octets());
        }
    }
    if let Some(key) = key {
        out[4..].iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
    }
}

macro_rules! address_attribute {
    ($(#[$doc:meta])* $ty:ident, $attr:ident, xor = $xor:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $ty(pub SocketAddr);

        impl<'a> AttributeDecode<'a> for $ty {
            const TYPE: AttributeType = AttributeType::$attr;

            fn decode(value: &'a [u8], transaction_id: &TransactionId) -> Result<Self, StunParseError> {
                decode_address(Self::TYPE, value, $xor.then_some(transaction_id)).map($ty)
            }
        }

        impl AttributeEncode for $ty {
            fn attr_type(&self) -> AttributeType {
                AttributeType::$attr
            }

            fn value_len(&self) -> usize {
                address_len(&self.0)
            }

            fn write_value(&self, out: &mut [u8], transaction_id: &TransactionId) {
                encode_address(&self.0, out, $xor.then_some(transaction_id))
            }
        }
    };
}

address_attribute!(
    /// MAPPED-ADDRESS: the client's reflexive address, not obfuscated (RFC 8489 §14.1).
    MappedAddress, MAPPED_ADDRESS, xor = false
);
address_attribute!(
    /// XOR-MAPPED-ADDRESS: the client's reflexive address, XOR-obfuscated (RFC 8489 §14.2).
    XorMappedAddress, XOR_MAPPED_ADDRESS, xor = true
);
address_attribute!(
    /// XOR-PEER-ADDRESS: a TURN peer's address (RFC 8656 §18.3).
    XorPeerAddress, XOR_PEER_ADDRESS, xor = true
);
address_attribute!(
    /// XOR-RELAYED-ADDRESS: the relayed transport address a TURN server allocated
    /// (RFC 8656 §18.5).
    XorRelayedAddress, XOR_RELAYED_ADDRESS, xor = true
);
address_attribute!(
    /// ALTERNATE-SERVER: where a 300 (Try Alternate) response redirects the client; encoded
    /// like MAPPED-ADDRESS (RFC 8489 §14.15).
    AlternateServer, ALTERNATE_SERVER, xor = false
);
