//! Authentication attributes: USERNAME, USERHASH, REALM, NONCE, PASSWORD-ALGORITHM,
//! PASSWORD-ALGORITHMS, MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.3-§14.6,
//! §14.9-§14.12).

use super::{AttributeDecode, AttributeEncode, AttributeType, text_attribute};
use crate::stun::StunParseError;
use crate::stun::message::TransactionId;

/// USERNAME: the user name and, with short-term credentials, the key's identity
/// (RFC 8489 §14.3: fewer than 509 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Username<'a>(pub &'a str);
text_attribute!(Username, USERNAME, 508);

/// REALM: the long-term credential realm (RFC 8489 §14.9: fewer than 128 characters, at
/// most 763 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realm<'a>(pub &'a str);
text_attribute!(Realm, REALM, 763);

/// NONCE: the server's nonce for long-term credentials (RFC 8489 §14.10: fewer than 128
/// characters, at most 763 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce<'a>(pub &'a str);
text_attribute!(Nonce, NONCE, 763);

/// USERHASH: SHA-256 of `username ":" realm`, sent instead of USERNAME for anonymity
/// (RFC 8489 §14.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Userhash<'a>(pub &'a [u8; 32]);

impl<'a> AttributeDecode<'a> for Userhash<'a> {
    const TYPE: AttributeType = AttributeType::USERHASH;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        super::fixed::<32>(Self::TYPE, value).map(Userhash)
    }
}

impl AttributeEncode for Userhash<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::USERHASH
    }

    fn value_len(&self) -> usize {
        32
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(self.0);
    }
}

/// A password algorithm number (RFC 8489 §18.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithmId(pub u16);

impl PasswordAlgorithmId {
    /// MD5 keys, MESSAGE-INTEGRITY (the RFC 5389 scheme).
    pub const MD5: PasswordAlgorithmId = PasswordAlgorithmId(0x0001);
    /// SHA-256 keys (RFC 8489).
    pub const SHA256: PasswordAlgorithmId = PasswordAlgorithmId(0x0002);
}

/// PASSWORD-ALGORITHM: the algorithm the client picked from the server's list
/// (RFC 8489 §14.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordAlgorithm<'a> {
    /// The algorithm.
    pub algorithm: PasswordAlgorithmId,
    /// Its parameters (none for MD5 and SHA-256).
    pub params: &'a [u8],
}

/// Reads one algorithm entry (algorithm, parameters length, parameters, padding) and
/// returns it with the rest of the input.
fn read_algorithm(
    attr: AttributeType,
    value: &[u8],
) -> Result<(PasswordAlgorithm<'_>, &[u8]), StunParseError> {
    let bad = StunParseError::InvalidAttributeLength {
        attr,
        len: value.len(),
    };
    let Some((head, rest)) = value.split_first_chunk::<4>() else {
        return Err(bad);
    };
    let algorithm = PasswordAlgorithmId(u16::from_be_bytes([head[0], head[1]]));
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let padded = (len + 3) & !3;
    if rest.len() < padded {
        return Err(bad);
    }
    Ok((
        PasswordAlgorithm {
            algorithm,
            params: &rest[..len],
        },
        &rest[padded..],
    ))
}

fn algorithm_len(params: &[u8]) -> usize {
    4 + ((params.len() + 3) & !3)
}

fn write_algorithm(alg: &PasswordAlgorithm<'_>, out: &mut [u8]) -> usize {
    out[..2].copy_from_slice(&alg.algorithm.0.to_be_bytes());
    out[2..4].copy_from_slice(&(alg.params.len() as u16).to_be_bytes());
    out[4..4 + alg.params.len()].copy_from_slice(alg.params);
    let len = algorithm_len(alg.params);
    out[4 + alg.params.len()..len].fill(0);
    len
}

impl<'a> AttributeDecode<'a> for PasswordAlgorithm<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHM;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        let (alg, rest) = read_algorithm(Self::TYPE, value)?;
        if !rest.is_empty() {
            return Err(StunParseError::InvalidAttributeLength {
                attr: Self::TYPE,
                len: value.len(),
            });
        }
        Ok(alg)
    }
}

impl AttributeEncode for PasswordAlgorithm<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::PASSWORD_ALGORITHM
    }

    fn value_len(&self) -> usize {
        algorithm_len(self.params)
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        write_algorithm(self, out);
    }
}

/// PASSWORD-ALGORITHMS: the algorithms a server offers, in its order of preference
/// (RFC 8489 §14.11). A client echoes the list it received byte for byte, which
/// [`PasswordAlgorithms::as_wire`] gives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordAlgorithms<'a>(AlgRepr<'a>);

#[derive(Clone, Copy, PartialEq, Eq)]
enum AlgRepr<'a> {
    Wire(&'a [u8]),
    Ids(&'a [PasswordAlgorithmId]),
}

impl<'a> PasswordAlgorithms<'a> {
    /// A list to write: these algorithms, without parameters.
    pub const fn new(ids: &'a [PasswordAlgorithmId]) -> Self {
        Self(AlgRepr::Ids(ids))
    }

    /// A list to write from the value bytes of a received PASSWORD-ALGORITHMS.
    pub const fn from_wire(value: &'a [u8]) -> Self {
        Self(AlgRepr::Wire(value))
    }

    /// The value bytes, when this list was decoded from a message.
    pub fn as_wire(&self) -> Option<&'a [u8]> {
        match self.0 {
            AlgRepr::Wire(w) => Some(w),
            AlgRepr::Ids(_) => None,
        }
    }

    /// The algorithms in the order listed.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm<'a>> + 'a {
        let (mut wire, ids): (&'a [u8], &'a [PasswordAlgorithmId]) = match self.0 {
            AlgRepr::Wire(w) => (w, &[]),
            AlgRepr::Ids(ids) => (&[], ids),
        };
        std::iter::from_fn(move || {
            let (alg, rest) = read_algorithm(AttributeType::PASSWORD_ALGORITHMS, wire).ok()?;
            wire = rest;
            Some(alg)
        })
        .chain(ids.iter().map(|&algorithm| PasswordAlgorithm {
            algorithm,
            params: &[],
        }))
    }
}

impl std::fmt::Debug for PasswordAlgorithms<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> AttributeDecode<'a> for PasswordAlgorithms<'a> {
    const TYPE: AttributeType = AttributeType::PASSWORD_ALGORITHMS;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        // Validate every entry now so that iterating cannot stop early.
        let mut rest = value;
        while !rest.is_empty() {
            rest = read_algorithm(Self::TYPE, rest)
                .map_err(|_| StunParseError::InvalidAttributeLength {
                    attr: Self::TYPE,
                    len: value.len(),
                })?
                .1;
        }
        Ok(Self(AlgRepr::Wire(value)))
    }
}

impl AttributeEncode for PasswordAlgorithms<'_> {
    fn attr_type(&self) -> AttributeType {
        AttributeType::PASSWORD_ALGORITHMS
    }

    fn value_len(&self) -> usize {
        match self.0 {
            AlgRepr::Wire(w) => w.len(),
            AlgRepr::Ids(ids) => ids.len() * 4,
        }
    }

    fn write_value(&self, out: &mut [u8], _: &TransactionId) {
        match self.0 {
            AlgRepr::Wire(w) => out.copy_from_slice(w),
            AlgRepr::Ids(_) => {
                let mut at = 0;
                for alg in self.iter() {
                    at += write_algorithm(&alg, &mut out[at..]);
                }
            }
        }
    }
}

/// MESSAGE-INTEGRITY: HMAC-SHA1 of the message (RFC 8489 §14.5). Written by
/// [`MessageWriter::add_message_integrity`](crate::stun::MessageWriter::add_message_integrity)
/// and verified by [`Message::check_integrity`](crate::stun::Message::check_integrity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageIntegrity<'a>(pub &'a [u8; 20]);

impl<'a> AttributeDecode<'a> for MessageIntegrity<'a> {
    const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        super::fixed::<20>(Self::TYPE, value).map(MessageIntegrity)
    }
}

/// MESSAGE-INTEGRITY-SHA256: HMAC-SHA256 of the message, possibly truncated to 16-28
/// bytes (RFC 8489 §14.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageIntegritySha256<'a>(pub &'a [u8]);

impl<'a> AttributeDecode<'a> for MessageIntegritySha256<'a> {
    const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY_SHA256;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, StunParseError> {
        // RFC 8489 §14.6: at least 16 bytes, at most 32, a multiple of 4.
        if !(16..=32).contains(&value.len()) || !value.len().is_multiple_of(4) {
            return Err(StunParseError::InvalidAttributeLength {
                attr: Self::TYPE,
                len: value.len(),
            });
        }
        Ok(MessageIntegritySha256(value))
    }
}
