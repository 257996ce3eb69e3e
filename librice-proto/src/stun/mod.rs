//! STUN: Session Traversal Utilities for NAT (RFC 8489, and RFC 5389 peers).
//!
//! - [`Message`]: a zero-copy, validated view of a received message, with typed attribute
//!   access ([`Message::attribute`]), FINGERPRINT and MESSAGE-INTEGRITY(-SHA256) checks.
//! - [`MessageWriter`]: builds a message into a reusable buffer, signs and fingerprints it.
//! - [`attr`]: the attribute registry and typed attributes (STUN, ICE and TURN).
//! - [`IntegrityKey`]: short-term and long-term (MD5 / SHA-256) keys, derived once.
//! - [`transaction`]: sans-IO client transactions with retransmission and the long-term
//!   credential exchange; [`server`]: a sans-IO Binding server.
//! - [`StreamFramer`]: cuts a TCP byte stream into STUN messages (RFC 8489 §6.2.2), and
//!   also ChannelData (RFC 8656 §12.5) or RFC 4571 frames.
//!
//! ```
//! use librice_proto::stun::{attr::XorMappedAddress, Message, MessageType, MessageWriter, TransactionId};
//!
//! // A Binding success response, as a server would write it...
//! let mut buf = Vec::new();
//! let mapped = "192.0.2.1:32853".parse().unwrap();
//! let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_SUCCESS, TransactionId([1; 12]));
//! w.add(&XorMappedAddress(mapped)).unwrap();
//! w.add_fingerprint().unwrap();
//! let bytes = w.finish().to_vec();
//!
//! // ...and as the client reads it.
//! let msg = Message::parse(&bytes).unwrap();
//! msg.check_fingerprint().unwrap();
//! assert_eq!(msg.attribute::<XorMappedAddress>().unwrap(), Some(XorMappedAddress(mapped)));
//! ```

pub mod attr;
mod auth;
mod error;
mod framing;
mod hmac;
mod integrity;
mod message;
pub mod server;
pub mod transaction;
mod writer;

#[cfg(test)]
mod tests;

pub use auth::{NONCE_COOKIE, SecurityFeatures};
pub use error::{
    AttributeTypeList, CredentialError, IntegrityError, MAX_UNKNOWN_ATTRIBUTES, StunParseError,
    StunWriteError,
};
pub use framing::{Frame, FrameKind, FramingError, FramingMode, StreamFramer};
pub(crate) use integrity::Sha1Key;
pub use integrity::{FINGERPRINT_XOR, IntegrityAlgorithm, IntegrityKey, opaque_string, userhash};
pub use message::{
    AttributeIter, HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN, Message, MessageClass, MessageHeader,
    MessageType, Method, TransactionId, looks_like_stun,
};
pub use writer::MessageWriter;

impl TransactionId {
    /// A fresh transaction id from `rng` (RFC 8489 §5: uniformly and randomly chosen).
    pub fn generate<R: rand_core::Rng + ?Sized>(rng: &mut R) -> TransactionId {
        let mut id = [0u8; 12];
        rng.fill_bytes(&mut id);
        TransactionId(id)
    }
}
