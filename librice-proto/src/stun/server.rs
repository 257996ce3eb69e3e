//! A sans-IO STUN Binding server (RFC 8489 §6.3, §9).
//!
//! [`BindingServer::handle`] takes one received message and, when it calls for an answer,
//! writes the response into the caller's buffer: a success response with
//! XOR-MAPPED-ADDRESS, or an error response (400, 401, 420, 438) where RFC 8489 says.
//! Everything else is dropped, with the reason returned and traced.

use std::fmt;
use std::net::SocketAddr;

use super::attr::{
    ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Realm, Software,
    UnknownAttributes, Userhash, Username, XorMappedAddress,
};
use super::auth::{NONCE_COOKIE, SecurityFeatures};
use super::error::{IntegrityError, StunParseError, StunWriteError};
use super::integrity::{IntegrityAlgorithm, IntegrityKey, userhash};
use super::message::{Message, MessageClass, MessageHeader, MessageType, Method};
use super::writer::MessageWriter;

/// How the server authenticates requests.
#[derive(Debug, Clone, Default)]
pub enum ServerAuth {
    /// No authentication: answer every Binding request (a public STUN server).
    #[default]
    None,
    /// Short-term credentials (RFC 8489 §9.1): requests must carry this USERNAME and
    /// MESSAGE-INTEGRITY(-SHA256) with this password.
    ShortTerm {
        /// The expected USERNAME.
        username: String,
        /// The password.
        password: String,
    },
    /// Long-term credentials (RFC 8489 §9.2).
    LongTerm(LongTermServer),
}

/// Server state for the long-term credential mechanism: realm, users and the current
/// nonce.
///
/// Nonces come from the caller ([`LongTermServer::set_nonce`]), since the core draws no
/// randomness and reads no clock of its own; a request with an older nonce is answered
/// 438 (Stale Nonce).
#[derive(Clone)]
pub struct LongTermServer {
    realm: String,
    users: Vec<(String, String)>,
    nonce: String,
    features: SecurityFeatures,
}

impl fmt::Debug for LongTermServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LongTermServer")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("features", &self.features)
            .finish_non_exhaustive()
    }
}

impl LongTermServer {
    /// A realm with no users. `nonce_body` is the random part of the first nonce; the
    /// RFC 8489 cookie and feature bits are put before it when `features` enables any.
    pub fn new(realm: &str, nonce_body: &str, features: SecurityFeatures) -> Self {
        let mut server = Self {
            realm: realm.to_owned(),
            users: Vec::new(),
            nonce: String::new(),
            features,
        };
        server.set_nonce(nonce_body);
        server
    }

    /// Adds a user.
    pub fn add_user(&mut self, username: &str, password: &str) {
        self.users.push((username.to_owned(), password.to_owned()));
    }

    /// Starts a new nonce; requests still using the previous one get 438.
    pub fn set_nonce(&mut self, nonce_body: &str) {
        self.nonce.clear();
        if self.features != SecurityFeatures::default() {
            self.nonce.push_str(NONCE_COOKIE);
            self.nonce
                .push_str(std::str::from_utf8(&self.features.encode()).unwrap_or("AAAA"));
        }
        self.nonce.push_str(nonce_body);
    }

    /// The current nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Finds the user a request names by USERNAME or USERHASH.
    fn find_user(&self, msg: &Message<'_>) -> Option<&(String, String)> {
        if let Ok(Some(Username(name))) = msg.attribute::<Username<'_>>() {
            return self.users.iter().find(|(u, _)| u == name);
        }
        if let Ok(Some(Userhash(hash))) = msg.attribute::<Userhash<'_>>() {
            return self
                .users
                .iter()
                .find(|(u, _)| userhash(u, &self.realm).is_ok_and(|h| &h == hash));
        }
        None
    }
}

/// Why the server did not answer, or answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A success response was written.
    Success,
    /// An error response with this code was written.
    Error(u16),
    /// The message was dropped without an answer.
    Dropped(DropReason),
}

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a STUN message, or a broken header (RFC 8489 §6.3).
    Malformed(StunParseError),
    /// Responses and indications get no answer.
    NotARequest,
    /// A method other than Binding (RFC 8489 §6.3: unsupported methods are discarded).
    UnsupportedMethod(Method),
    /// FINGERPRINT present and wrong (RFC 8489 §6.3).
    BadFingerprint,
    /// The response could not be written (cannot happen with sane configuration).
    Write(StunWriteError),
}

/// A STUN server answering Binding requests.
#[derive(Debug, Clone, Default)]
pub struct BindingServer {
    auth: ServerAuth,
    software: Option<String>,
    short_term_key: Option<IntegrityKey>,
}

impl BindingServer {
    /// A server that authenticates as `auth` says.
    pub fn new(auth: ServerAuth) -> Self {
        let short_term_key = match &auth {
            ServerAuth::ShortTerm { password, .. } => Some(
                IntegrityKey::short_term(password)
                    .unwrap_or_else(|_| IntegrityKey::from_bytes(password.as_bytes())),
            ),
            _ => None,
        };
        Self {
            auth,
            software: None,
            short_term_key,
        }
    }

    /// Adds a SOFTWARE attribute to every response.
    pub fn with_software(mut self, software: &str) -> Self {
        self.software = Some(software.to_owned());
        self
    }

    /// The authentication configuration, e.g. to rotate a long-term nonce.
    pub fn auth_mut(&mut self) -> &mut ServerAuth {
        &mut self.auth
    }

    /// Handles a message received from `from`. When it calls for an answer, the response
    /// is appended to `out` (which the caller clears and reuses) and sent back to `from`
    /// on the same transport.
    pub fn handle(&self, from: SocketAddr, data: &[u8], out: &mut Vec<u8>) -> Outcome {
        let outcome = match self.answer(from, data, out) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Dropped(DropReason::Write(e)),
        };
        if let Outcome::Dropped(reason) = outcome {
            tracing::debug!(%from, ?reason, "STUN server dropped a message");
        }
        outcome
    }

    fn answer(
        &self,
        from: SocketAddr,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, StunWriteError> {
        let msg = match Message::parse(data) {
            Ok(msg) => msg,
            Err(StunParseError::UnknownComprehensionRequired(unknown)) => {
                // RFC 8489 §6.3.1: a request with unknown comprehension-required
                // attributes gets 420 listing them; other classes are discarded.
                let Ok(header) = MessageHeader::parse(data) else {
                    return Ok(Outcome::Dropped(DropReason::NotARequest));
                };
                if header.message_type != MessageType::BINDING_REQUEST {
                    return Ok(Outcome::Dropped(DropReason::NotARequest));
                }
                let mut w = self.error(out, &header, 420);
                w.add(&UnknownAttributes::new(unknown.as_slice()))?;
                w.add_fingerprint()?;
                return Ok(Outcome::Error(420));
            }
            Err(e) => return Ok(Outcome::Dropped(DropReason::Malformed(e))),
        };
        if msg.class() != MessageClass::Request {
            return Ok(Outcome::Dropped(DropReason::NotARequest));
        }
        if msg.method() != Method::BINDING {
            return Ok(Outcome::Dropped(DropReason::UnsupportedMethod(
                msg.method(),
            )));
        }
        // RFC 8489 §7.3 (FINGERPRINT in use): a wrong one means the message is discarded.
        if msg.has_fingerprint() && msg.check_fingerprint().is_err() {
            return Ok(Outcome::Dropped(DropReason::BadFingerprint));
        }
        let signing = match self.authenticate(&msg, out)? {
            Ok(signing) => signing,
            Err(code) => return Ok(Outcome::Error(code)),
        };
        let mut w = MessageWriter::new(out, msg.message_type().success(), msg.transaction_id());
        w.add(&XorMappedAddress(from))?;
        if let Some(software) = &self.software {
            w.add(&Software(software))?;
        }
        if let Some((key, algorithm)) = &signing {
            match algorithm {
                IntegrityAlgorithm::Sha1 => w.add_message_integrity(key)?,
                IntegrityAlgorithm::Sha256 => w.add_message_integrity_sha256(key)?,
            }
        }
        w.add_fingerprint()?;
        Ok(Outcome::Success)
    }

    /// Authenticates a request. `Ok(Ok(key))` to answer (signed with the key, if any);
    /// `Ok(Err(code))` when an error response was written.
    #[allow(clippy::type_complexity)]
    fn authenticate(
        &self,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Result<Option<(IntegrityKey, IntegrityAlgorithm)>, u16>, StunWriteError> {
        let header = *msg.header();
        match &self.auth {
            ServerAuth::None => Ok(Ok(None)),
            ServerAuth::ShortTerm { username, .. } => {
                let key = self
                    .short_term_key
                    .as_ref()
                    .expect("set by new() for short-term auth");
                // RFC 8489 §9.1.3: no USERNAME or no integrity -> 400.
                let name = msg.attribute::<Username<'_>>();
                let Ok(Some(Username(name))) = name else {
                    self.error(out, &header, 400).add_fingerprint()?;
                    return Ok(Err(400));
                };
                if !msg.has_integrity() {
                    self.error(out, &header, 400).add_fingerprint()?;
                    return Ok(Err(400));
                }
                // RFC 8489 §9.1.3: unknown USERNAME or failed integrity -> 401.
                let checked = if name == username {
                    msg.check_integrity(key)
                } else {
                    Err(IntegrityError::IntegrityMismatch)
                };
                match checked {
                    Ok(algorithm) => Ok(Ok(Some((key.clone(), algorithm)))),
                    Err(_) => {
                        self.error(out, &header, 401).add_fingerprint()?;
                        Ok(Err(401))
                    }
                }
            }
            ServerAuth::LongTerm(lt) => self.authenticate_long_term(lt, msg, out),
        }
    }

    #[allow(clippy::type_complexity)]
    fn authenticate_long_term(
        &self,
        lt: &LongTermServer,
        msg: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Result<Option<(IntegrityKey, IntegrityAlgorithm)>, u16>, StunWriteError> {
        let header = *msg.header();
        // RFC 8489 §9.2.4: no integrity -> 401 with REALM and NONCE.
        if !msg.has_integrity() {
            self.challenge(out, &header, lt, 401)?;
            return Ok(Err(401));
        }
        // RFC 8489 §9.2.4: integrity but missing USERNAME/USERHASH, REALM or NONCE -> 400.
        let has_user = msg.has_attribute(super::attr::AttributeType::USERNAME)
            || msg.has_attribute(super::attr::AttributeType::USERHASH);
        let (Ok(Some(Realm(_))), Ok(Some(Nonce(nonce)))) =
            (msg.attribute::<Realm<'_>>(), msg.attribute::<Nonce<'_>>())
        else {
            self.error(out, &header, 400).add_fingerprint()?;
            return Ok(Err(400));
        };
        if !has_user {
            self.error(out, &header, 400).add_fingerprint()?;
            return Ok(Err(400));
        }
        // The algorithm the client used must be one offered (RFC 8489 §9.2.4).
        let algorithm = match msg.attribute::<PasswordAlgorithm<'_>>() {
            Ok(Some(a)) if self.offers(lt, a.algorithm) => a.algorithm,
            Ok(None) => PasswordAlgorithmId::MD5,
            _ => {
                self.error(out, &header, 400).add_fingerprint()?;
                return Ok(Err(400));
            }
        };
        // RFC 8489 §9.2.4: an unknown user or a failed integrity check -> 401.
        let Some((user, password)) = lt.find_user(msg) else {
            self.challenge(out, &header, lt, 401)?;
            return Ok(Err(401));
        };
        let Ok(key) = IntegrityKey::long_term(user, &lt.realm, password, algorithm) else {
            self.challenge(out, &header, lt, 401)?;
            return Ok(Err(401));
        };
        let Ok(used) = msg.check_integrity(&key) else {
            self.challenge(out, &header, lt, 401)?;
            return Ok(Err(401));
        };
        // RFC 8489 §9.2.4: a valid request with an old nonce -> 438 with the new one.
        if nonce != lt.nonce {
            self.challenge(out, &header, lt, 438)?;
            return Ok(Err(438));
        }
        Ok(Ok(Some((key, used))))
    }

    fn offers(&self, lt: &LongTermServer, algorithm: PasswordAlgorithmId) -> bool {
        lt.features.password_algorithms
            && matches!(
                algorithm,
                PasswordAlgorithmId::SHA256 | PasswordAlgorithmId::MD5
            )
    }

    /// Starts an error response with ERROR-CODE (and SOFTWARE).
    fn error<'b>(
        &self,
        out: &'b mut Vec<u8>,
        header: &MessageHeader,
        code: u16,
    ) -> MessageWriter<'b> {
        let mut w = MessageWriter::new(out, header.message_type.error(), header.transaction_id);
        // An ERROR-CODE with a known code and short reason always fits.
        let _ = w.add(&ErrorCode::with_default_reason(code));
        if let Some(software) = &self.software {
            let _ = w.add(&Software(software));
        }
        w
    }

    /// Writes a 401 or 438 with REALM, NONCE and PASSWORD-ALGORITHMS.
    fn challenge(
        &self,
        out: &mut Vec<u8>,
        header: &MessageHeader,
        lt: &LongTermServer,
        code: u16,
    ) -> Result<(), StunWriteError> {
        let mut w = self.error(out, header, code);
        w.add(&Realm(&lt.realm))?;
        w.add(&Nonce(&lt.nonce))?;
        if lt.features.password_algorithms {
            w.add(&PasswordAlgorithms::new(&[
                PasswordAlgorithmId::SHA256,
                PasswordAlgorithmId::MD5,
            ]))?;
        }
        w.add_fingerprint()
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
