//! Building STUN messages into a reusable buffer.

use super::attr::{AttributeEncode, AttributeType, RawAttribute, attribute_header};
use super::error::StunWriteError;
use super::integrity::{
    FINGERPRINT_XOR, IntegrityAlgorithm, IntegrityKey, Sha1Key, integrity_attribute,
};
use super::message::{HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId};

/// Where the writer stands with respect to the attributes that must come last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Attributes,
    AfterIntegrity,
    AfterIntegritySha256,
    AfterFingerprint,
}

/// Writes one STUN message at the end of a caller's `Vec<u8>`.
///
/// The header is written by [`MessageWriter::new`] and its length field kept up to date
/// by every `add_*` call, so the bytes are a valid message at any point. When the vector
/// has the capacity (reuse one buffer and `clear()` it between messages), writing
/// allocates nothing.
///
/// ```
/// use librice_proto::stun::{
///     attr::{Priority, Username}, IntegrityKey, Message, MessageType, MessageWriter,
///     TransactionId,
/// };
///
/// let key = IntegrityKey::short_term("a-remote-ice-password").unwrap();
/// let mut buf = Vec::with_capacity(128);
/// let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId([7; 12]));
/// w.add(&Username("remote:local")).unwrap();
/// w.add(&Priority(0x6e00_1eff)).unwrap();
/// w.add_message_integrity(&key).unwrap();
/// w.add_fingerprint().unwrap();
/// let bytes = w.finish();
///
/// let msg = Message::parse(bytes).unwrap();
/// msg.check_fingerprint().unwrap();
/// msg.check_integrity(&key).unwrap();
/// assert_eq!(msg.attribute::<Priority>().unwrap(), Some(Priority(0x6e00_1eff)));
/// ```
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    transaction_id: TransactionId,
    stage: Stage,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message at the end of `buf`.
    #[inline]
    pub fn new(
        buf: &'b mut Vec<u8>,
        message_type: MessageType,
        transaction_id: TransactionId,
    ) -> MessageWriter<'b> {
        let start = buf.len();
        let mut header = [0u8; HEADER_LEN];
        header[..2].copy_from_slice(&message_type.to_u16().to_be_bytes());
        header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        header[8..].copy_from_slice(transaction_id.as_bytes());
        buf.extend_from_slice(&header);
        MessageWriter {
            buf,
            start,
            transaction_id,
            stage: Stage::Attributes,
        }
    }

    /// The message's transaction id.
    #[inline]
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// The message's size so far, header included.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Always false: a message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends an attribute.
    ///
    /// Fails if the value is too long for its type or invalid (an error code outside
    /// 300..=699), if the message would outgrow the length field, or if the attribute would
    /// follow MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT where RFC 8489 §14.5-§14.7 forbid
    /// it. Nothing is written on failure.
    pub fn add<A: AttributeEncode + ?Sized>(&mut self, attr: &A) -> Result<(), StunWriteError> {
        let ty = attr.attr_type();
        self.check_stage(ty)?;
        let len = attr.value_len();
        if len > attr.max_value_len() || len > usize::from(u16::MAX) {
            return Err(StunWriteError::ValueTooLong { attr: ty, len });
        }
        attr.validate()?;
        self.grow(len)?;
        let at = self.buf.len();
        attr.append_to(self.buf, &self.transaction_id);
        debug_assert_eq!(self.buf.len() - at, 4 + ((len + 3) & !3));
        self.advance_stage(ty);
        Ok(())
    }

    /// Appends an attribute given as type and value bytes.
    pub fn add_raw(&mut self, ty: AttributeType, value: &[u8]) -> Result<(), StunWriteError> {
        self.add(&RawAttribute::new(ty, value))
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 with `key` over the message so far
    /// (RFC 8489 §14.5).
    #[inline]
    pub fn add_message_integrity(&mut self, key: &IntegrityKey) -> Result<(), StunWriteError> {
        self.add_integrity(IntegrityAlgorithm::Sha1, 20, |covered| {
            sha1_value(covered, |data, length| {
                key.hmac_sha1_with_length(data, length)
            })
        })
    }

    /// Appends MESSAGE-INTEGRITY with a SHA-1-only key (see [`Sha1Key`]).
    #[inline]
    pub(crate) fn add_message_integrity_sha1(
        &mut self,
        key: &Sha1Key,
    ) -> Result<(), StunWriteError> {
        self.add_integrity(IntegrityAlgorithm::Sha1, 20, |covered| {
            sha1_value(covered, |data, length| {
                key.hmac_sha1_with_length(data, length)
            })
        })
    }

    /// Appends MESSAGE-INTEGRITY-SHA256: HMAC-SHA256 with `key` over the message so far,
    /// full length (RFC 8489 §14.6).
    pub fn add_message_integrity_sha256(
        &mut self,
        key: &IntegrityKey,
    ) -> Result<(), StunWriteError> {
        self.add_integrity(IntegrityAlgorithm::Sha256, 32, |covered| {
            key.hmac_sha256(&[covered])
        })
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 truncated to `len` bytes: 16 to 32 and a multiple
    /// of 4 (RFC 8489 §14.6).
    pub fn add_message_integrity_sha256_truncated(
        &mut self,
        key: &IntegrityKey,
        len: usize,
    ) -> Result<(), StunWriteError> {
        if !(16..=32).contains(&len) || !len.is_multiple_of(4) {
            return Err(StunWriteError::InvalidTruncation { len });
        }
        self.add_integrity(IntegrityAlgorithm::Sha256, len, |covered| {
            key.hmac_sha256(&[covered])
        })
    }

    /// Appends FINGERPRINT, which must be the last attribute (RFC 8489 §14.7).
    #[inline]
    pub fn add_fingerprint(&mut self) -> Result<(), StunWriteError> {
        let ty = AttributeType::FINGERPRINT;
        self.check_stage(ty)?;
        // The CRC covers the header, whose length already counts FINGERPRINT, and every
        // attribute before it (RFC 8489 §14.7).
        self.grow(4)?;
        let crc = crc32fast::hash(&self.buf[self.start..]) ^ FINGERPRINT_XOR;
        let mut attr = [0u8; 8];
        attr[..4].copy_from_slice(&attribute_header(ty, 4));
        attr[4..].copy_from_slice(&crc.to_be_bytes());
        self.buf.extend_from_slice(&attr);
        self.stage = Stage::AfterFingerprint;
        Ok(())
    }

    /// Ends the message and returns its bytes (from the header to the end of `buf`).
    #[inline]
    pub fn finish(self) -> &'b [u8] {
        let start = self.start;
        let buf: &'b Vec<u8> = self.buf;
        &buf[start..]
    }

    /// Appends the integrity attribute of `algorithm`, `len` bytes of the value `mac`
    /// computes over the message so far.
    fn add_integrity(
        &mut self,
        algorithm: IntegrityAlgorithm,
        len: usize,
        mac: impl FnOnce(&[u8]) -> [u8; 32],
    ) -> Result<(), StunWriteError> {
        let ty = integrity_attribute(algorithm);
        self.check_stage(ty)?;
        // The HMAC covers the header, with a length that counts this attribute (set by
        // `grow`), and every attribute before this one (RFC 8489 §14.5, §14.6).
        self.grow(len)?;
        let covered = &self.buf[self.start..];
        let mut attr = [0u8; 36];
        attr[..4].copy_from_slice(&attribute_header(ty, len));
        attr[4..].copy_from_slice(&mac(covered));
        self.buf.extend_from_slice(&attr[..4 + len]);
        self.advance_stage(ty);
        Ok(())
    }

    /// Refuses attributes where RFC 8489 §14.5-§14.7 forbid them.
    #[inline]
    fn check_stage(&self, ty: AttributeType) -> Result<(), StunWriteError> {
        let allowed = match self.stage {
            Stage::Attributes => true,
            // RFC 8489 §14.5: only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT after
            // MESSAGE-INTEGRITY.
            Stage::AfterIntegrity => matches!(
                ty,
                AttributeType::MESSAGE_INTEGRITY_SHA256 | AttributeType::FINGERPRINT
            ),
            // RFC 8489 §14.6: only FINGERPRINT after MESSAGE-INTEGRITY-SHA256.
            Stage::AfterIntegritySha256 => ty == AttributeType::FINGERPRINT,
            // RFC 8489 §14.7: FINGERPRINT is last.
            Stage::AfterFingerprint => {
                return Err(StunWriteError::AfterFingerprint { attr: ty });
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(StunWriteError::AfterIntegrity { attr: ty })
        }
    }

    #[inline]
    fn advance_stage(&mut self, ty: AttributeType) {
        let next = match ty {
            AttributeType::MESSAGE_INTEGRITY => Stage::AfterIntegrity,
            AttributeType::MESSAGE_INTEGRITY_SHA256 => Stage::AfterIntegritySha256,
            AttributeType::FINGERPRINT => Stage::AfterFingerprint,
            _ => return,
        };
        self.stage = self.stage.max(next);
    }

    /// Sets the header's length field to count one more attribute with a `len`-byte value
    /// (and its padding), failing if it would not fit in 16 bits.
    #[inline]
    fn grow(&mut self, len: usize) -> Result<(), StunWriteError> {
        let body = self.len() - HEADER_LEN + 4 + ((len + 3) & !3);
        let Ok(body) = u16::try_from(body) else {
            return Err(StunWriteError::MessageTooLong);
        };
        self.buf[self.start + 2..self.start + 4].copy_from_slice(&body.to_be_bytes());
        Ok(())
    }
}

/// MESSAGE-INTEGRITY's value over `covered` (the message so far, its length field counting
/// the attribute), by `hmac` over the bytes and that length, in the first 20 of 32 bytes.
#[inline]
fn sha1_value(covered: &[u8], hmac: impl FnOnce(&[u8], u16) -> [u8; 20]) -> [u8; 32] {
    let length = u16::from_be_bytes([covered[2], covered[3]]);
    let mut value = [0u8; 32];
    value[..20].copy_from_slice(&hmac(covered, length));
    value
}
