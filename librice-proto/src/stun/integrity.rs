//! Credentials, integrity keys, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT
//! (RFC 8489 §9, §14.4-§14.7).

use std::borrow::Cow;
use std::fmt;

use md5::Md5;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use sha2::{Digest, Sha256};

use super::attr::{AttributeType, PasswordAlgorithmId};
use super::error::{CredentialError, IntegrityError};
use super::hmac::{HmacSha1Key, HmacSha256Key};
use super::message::{HEADER_LEN, Message};

/// The value XORed into the CRC-32 of FINGERPRINT: "STUN" in ASCII (RFC 8489 §14.7).
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Which MESSAGE-INTEGRITY attribute a check used or must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityAlgorithm {
    /// MESSAGE-INTEGRITY: HMAC-SHA1, 20 bytes (RFC 8489 §14.5).
    Sha1,
    /// MESSAGE-INTEGRITY-SHA256: HMAC-SHA256, 16 to 32 bytes (RFC 8489 §14.6).
    Sha256,
}

/// An HMAC key for MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256, derived once from a
/// credential and reused for every message.
///
/// Holds the keyed HMAC-SHA1 and HMAC-SHA256 states, so computing or checking a message's
/// integrity costs only the hash of the message itself and allocates nothing. The key
/// material is not printed by `Debug`.
#[derive(Clone)]
pub struct IntegrityKey {
    sha1: HmacSha1Key,
    sha256: HmacSha256Key,
}

impl IntegrityKey {
    /// A key from raw key bytes, used as they are.
    pub fn from_bytes(key: &[u8]) -> IntegrityKey {
        IntegrityKey {
            // HMAC accepts keys of any length (longer ones are hashed first).
            sha1: HmacSha1Key::new(key),
            sha256: HmacSha256Key::new(key),
        }
    }

    /// The short-term credential key: the password prepared with OpaqueString
    /// (RFC 8489 §9.1.1). ICE passwords (ice-chars) are unchanged by the preparation.
    pub fn short_term(password: &str) -> Result<IntegrityKey, CredentialError> {
        let password = opaque_string(password, "password")?;
        Ok(Self::from_bytes(password.as_bytes()))
    }

    /// The long-term credential key (RFC 8489 §9.2.2):
    /// `H(username ":" OpaqueString(realm) ":" OpaqueString(password))` with H = MD5 or
    /// SHA-256 as `algorithm` says. The username is prepared with OpaqueString too, as
    /// RFC 8489 §14.3 requires of what USERNAME carries.
    pub fn long_term(
        username: &str,
        realm: &str,
        password: &str,
        algorithm: PasswordAlgorithmId,
    ) -> Result<IntegrityKey, CredentialError> {
        let username = opaque_string(username, "username")?;
        let realm = opaque_string(realm, "realm")?;
        let password = opaque_string(password, "password")?;
        let parts: [&[u8]; 5] = [
            username.as_bytes(),
            b":",
            realm.as_bytes(),
            b":",
            password.as_bytes(),
        ];
        match algorithm {
            PasswordAlgorithmId::MD5 => {
                let mut h = Md5::new();
                parts.iter().for_each(|p| h.update(p));
                Ok(Self::from_bytes(&h.finalize()))
            }
            PasswordAlgorithmId::SHA256 => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                Ok(Self::from_bytes(&h.finalize()))
            }
            PasswordAlgorithmId(algorithm) => {
                Err(CredentialError::UnsupportedAlgorithm { algorithm })
            }
        }
    }

    /// HMAC-SHA256 over the parts, in order.
    #[inline]
    pub(crate) fn hmac_sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.sha256.mac(parts)
    }

    /// HMAC-SHA1 over `data` with its STUN length field replaced by `length`.
    #[inline]
    pub(crate) fn hmac_sha1_with_length(&self, data: &[u8], length: u16) -> [u8; 20] {
        self.sha1.mac_with_length(data, length)
    }

    /// Compares `tag` with the leftmost bytes of HMAC-SHA256 over the parts, in constant
    /// time. `tag` must not be longer than 32 bytes.
    #[inline]
    fn verify_sha256(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mac = self.hmac_sha256(parts);
        tag.len() <= mac.len() && constant_time_eq(&mac[..tag.len()], tag)
    }
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntegrityKey(<redacted>)")
    }
}

/// A short-term key for MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) alone: 40 B
/// instead of an [`IntegrityKey`]'s 104, for the keys an ICE server holds by the thousand
/// (an ICE agent's local key: its checks and answers carry MESSAGE-INTEGRITY, RFC 8445
/// §7.2.2, §7.3.1.5). A message that carries MESSAGE-INTEGRITY-SHA256 is checked with an
/// [`IntegrityKey`] made from the password when it comes ([`Sha1Key::check`]).
#[derive(Clone)]
pub(crate) struct Sha1Key {
    sha1: HmacSha1Key,
}

impl Sha1Key {
    /// The short-term key of `password`, as [`IntegrityKey::short_term`] makes it, or of
    /// its raw bytes should the preparation refuse them.
    pub(crate) fn short_term(password: &str) -> Sha1Key {
        Sha1Key {
            sha1: HmacSha1Key::new(prepared_or_raw(password).as_bytes()),
        }
    }

    /// Verifies `msg`'s integrity as [`Message::check_integrity`] does with the key of
    /// `password`, from which this key was made: MESSAGE-INTEGRITY-SHA256 when present
    /// (with the full key, derived here: rare, and never on the data path),
    /// MESSAGE-INTEGRITY otherwise, with this key.
    pub(crate) fn check(&self, msg: &Message<'_>, password: &str) -> Result<(), IntegrityError> {
        if msg.integrity_sha256_offset().is_some() {
            let full = IntegrityKey::from_bytes(prepared_or_raw(password).as_bytes());
            return msg.check_integrity(&full).map(|_| ());
        }
        let offset = msg
            .integrity_offset()
            .ok_or(IntegrityError::MissingIntegrity)?;
        if verify_sha1(&self.sha1, msg.as_bytes(), offset) {
            Ok(())
        } else {
            Err(IntegrityError::IntegrityMismatch)
        }
    }

    /// HMAC-SHA1 over `data` with its STUN length field replaced by `length`.
    #[inline]
    pub(crate) fn hmac_sha1_with_length(&self, data: &[u8], length: u16) -> [u8; 20] {
        self.sha1.mac_with_length(data, length)
    }
}

impl fmt::Debug for Sha1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha1Key(<redacted>)")
    }
}

/// `password` prepared for a short-term key (RFC 8489 §9.2.2), or as it is should the
/// preparation refuse it: the one rule of both halves of [`Sha1Key`].
fn prepared_or_raw(password: &str) -> Cow<'_, str> {
    opaque_string(password, "password").unwrap_or(Cow::Borrowed(password))
}

/// Verifies the MESSAGE-INTEGRITY attribute at `offset` of `data` with `key`, in constant
/// time. Its length field must count the message up to the end of the attribute
/// (RFC 8489 §14.5), and its value be 20 bytes.
fn verify_sha1(key: &HmacSha1Key, data: &[u8], offset: usize) -> bool {
    let value_len = usize::from(u16::from_be_bytes([data[offset + 2], data[offset + 3]]));
    let found = &data[offset + 4..offset + 4 + value_len];
    let length = (offset + 4 + value_len - HEADER_LEN) as u16;
    value_len == 20 && constant_time_eq(&key.mac_with_length(&data[..offset], length), found)
}

/// Prepares a string with the PRECIS OpaqueString profile (RFC 8265 §4.2), as STUN
/// requires of usernames, realms and passwords (RFC 8489 §9.2.2, §14.3).
///
/// Printable ASCII passes through unchanged and unallocated; other input goes through the
/// full profile (NFC, non-ASCII spaces mapped to U+0020, disallowed code points rejected).
/// An empty string is an error.
pub fn opaque_string<'a>(
    input: &'a str,
    field: &'static str,
) -> Result<Cow<'a, str>, CredentialError> {
    if input.is_empty() {
        return Err(CredentialError::NotOpaqueString { field });
    }
    if input.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Ok(Cow::Borrowed(input));
    }
    precis_profiles::OpaqueString::enforce(input)
        .map_err(|_| CredentialError::NotOpaqueString { field })
}

/// USERHASH: SHA-256 of `OpaqueString(username) ":" OpaqueString(realm)` (RFC 8489 §14.4).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], CredentialError> {
    let username = opaque_string(username, "username")?;
    let realm = opaque_string(realm, "realm")?;
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    Ok(h.finalize().into())
}

/// The FINGERPRINT value of a parsed message whose FINGERPRINT attribute starts at
/// `offset`: CRC-32 of everything before it. `Message::parse` guarantees FINGERPRINT is
/// last, so the length field already covers it and the CRC runs over the bytes as they
/// are, in one pass (RFC 8489 §14.7).
fn fingerprint_value(data: &[u8], offset: usize) -> u32 {
    crc32fast::hash(&data[..offset]) ^ FINGERPRINT_XOR
}

/// Compares two byte strings of equal length without branching on their contents: every
/// byte is compared, and the result goes through an optimisation barrier before the one
/// branch, so the time taken does not depend on where they differ.
#[inline]
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The input of MESSAGE-INTEGRITY(-SHA256) for the attribute at `offset` taking
/// `attr_wire_len` bytes: the message up to the attribute, with the length field adjusted
/// to end after it. To keep the hash on its fast path, the first block (up to 64 bytes,
/// header included) is copied to the stack with the adjusted length, and the rest is
/// borrowed.
fn integrity_input(data: &[u8], offset: usize, attr_wire_len: usize) -> ([u8; 64], usize, &[u8]) {
    let mut first = [0u8; 64];
    let n = offset.min(64);
    first[..n].copy_from_slice(&data[..n]);
    let length = (offset + attr_wire_len - HEADER_LEN) as u16;
    first[2..4].copy_from_slice(&length.to_be_bytes());
    (first, n, &data[n..offset])
}

impl Message<'_> {
    /// Verifies FINGERPRINT (RFC 8489 §14.7).
    #[inline]
    pub fn check_fingerprint(&self) -> Result<(), IntegrityError> {
        let offset = self
            .fingerprint_offset()
            .ok_or(IntegrityError::MissingFingerprint)?;
        let data = self.as_bytes();
        // RFC 8489 §14.7: the value is 32 bits. A FINGERPRINT of any other length never
        // matches (and one of length 0 at the very end has no value bytes to read).
        if data[offset + 2..offset + 4] != [0, 4] {
            return Err(IntegrityError::FingerprintMismatch);
        }
        let found = u32::from_be_bytes([
            data[offset + 4],
            data[offset + 5],
            data[offset + 6],
            data[offset + 7],
        ]);
        if found == fingerprint_value(data, offset) {
            Ok(())
        } else {
            Err(IntegrityError::FingerprintMismatch)
        }
    }

    /// Verifies the message's integrity with `key`: MESSAGE-INTEGRITY-SHA256 when present
    /// (the stronger one), MESSAGE-INTEGRITY otherwise (RFC 8489 §9.1.3, §9.2.4). Returns
    /// the algorithm that was checked. The comparison runs in constant time.
    #[inline]
    pub fn check_integrity(
        &self,
        key: &IntegrityKey,
    ) -> Result<IntegrityAlgorithm, IntegrityError> {
        if self.integrity_sha256_offset().is_some() {
            self.check_integrity_with(key, IntegrityAlgorithm::Sha256)
                .map(|()| IntegrityAlgorithm::Sha256)
        } else if self.integrity_offset().is_some() {
            self.check_integrity_with(key, IntegrityAlgorithm::Sha1)
                .map(|()| IntegrityAlgorithm::Sha1)
        } else {
            Err(IntegrityError::MissingIntegrity)
        }
    }

    /// Verifies one integrity attribute in particular, e.g. the one a client used in its
    /// request (RFC 8489 §9.1.4).
    #[inline]
    pub fn check_integrity_with(
        &self,
        key: &IntegrityKey,
        algorithm: IntegrityAlgorithm,
    ) -> Result<(), IntegrityError> {
        let data = self.as_bytes();
        let offset = match algorithm {
            IntegrityAlgorithm::Sha1 => self.integrity_offset(),
            IntegrityAlgorithm::Sha256 => self.integrity_sha256_offset(),
        };
        let Some(offset) = offset else {
            return Err(if self.has_integrity() {
                IntegrityError::MissingAlgorithm
            } else {
                IntegrityError::MissingIntegrity
            });
        };
        let value_len = usize::from(u16::from_be_bytes([data[offset + 2], data[offset + 3]]));
        let found = &data[offset + 4..offset + 4 + value_len];
        let ok = match algorithm {
            IntegrityAlgorithm::Sha1 => verify_sha1(&key.sha1, data, offset),
            IntegrityAlgorithm::Sha256 => {
                // RFC 8489 §14.6: 16 to 32 bytes, a multiple of 4; a truncated value is
                // the leftmost bytes of the HMAC.
                let (first, n, rest) = integrity_input(data, offset, 4 + value_len);
                (16..=32).contains(&value_len)
                    && value_len.is_multiple_of(4)
                    && key.verify_sha256(&[&first[..n], rest], found)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(IntegrityError::IntegrityMismatch)
        }
    }
}

/// The attribute type of an integrity algorithm's attribute.
pub(crate) const fn integrity_attribute(algorithm: IntegrityAlgorithm) -> AttributeType {
    match algorithm {
        IntegrityAlgorithm::Sha1 => AttributeType::MESSAGE_INTEGRITY,
        IntegrityAlgorithm::Sha256 => AttributeType::MESSAGE_INTEGRITY_SHA256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{MessageWriter, TransactionId};

    /// A Binding request signed with `sign`.
    fn signed(sign: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut w = MessageWriter::new(
            &mut buf,
            crate::stun::MessageType::BINDING_REQUEST,
            TransactionId([7; 12]),
        );
        sign(&mut w);
        w.add_fingerprint().expect("fits");
        buf
    }

    #[test]
    fn a_sha1_key_signs_and_checks_as_the_full_key_and_takes_sha256_through_the_password() {
        let (pwd, other) = ("a-password-of-ice-chars", "another-password");
        let full = IntegrityKey::short_term(pwd).expect("ice-chars");
        let sha1 = Sha1Key::short_term(pwd);
        let by_full = signed(|w| w.add_message_integrity(&full).expect("fits"));
        let by_sha1 = signed(|w| w.add_message_integrity_sha1(&sha1).expect("fits"));
        assert_eq!(by_full, by_sha1, "the same MESSAGE-INTEGRITY");
        let msg = Message::parse(&by_sha1).expect("parses");
        assert_eq!(sha1.check(&msg, pwd), Ok(()));
        assert_eq!(
            Sha1Key::short_term(other).check(&msg, other),
            Err(IntegrityError::IntegrityMismatch)
        );
        // MESSAGE-INTEGRITY-SHA256 alone, as a peer may sign: checked with the password's
        // full key, made on the spot.
        let sha256 = signed(|w| w.add_message_integrity_sha256(&full).expect("fits"));
        let msg = Message::parse(&sha256).expect("parses");
        assert_eq!(sha1.check(&msg, pwd), Ok(()));
        assert_eq!(
            Sha1Key::short_term(other).check(&msg, other),
            Err(IntegrityError::IntegrityMismatch)
        );
        let unsigned = signed(|_| {});
        let msg = Message::parse(&unsigned).expect("parses");
        assert_eq!(sha1.check(&msg, pwd), Err(IntegrityError::MissingIntegrity));
    }
}
