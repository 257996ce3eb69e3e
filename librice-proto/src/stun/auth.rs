//! The client side of the long-term credential mechanism (RFC 8489 §9.2).
//!
//! The first request goes out without credentials. The server answers 401 with REALM and
//! NONCE (and, with the RFC 8489 nonce cookie, the security features it supports); the
//! client then signs every request with a key derived from the username, realm and
//! password. A 438 (Stale Nonce) answer carries a new nonce to retry with.

use std::fmt;

use super::attr::{
    ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Realm, Userhash,
    Username,
};
use super::error::{CredentialError, StunWriteError};
use super::integrity::{IntegrityAlgorithm, IntegrityKey, opaque_string, userhash};
use super::message::{Message, MessageClass};
use super::transaction::ResponseIntegrity;
use super::writer::MessageWriter;

/// The nonce cookie of RFC 8489 §9.2: a nonce starting with it carries, in the next 4
/// characters, 24 bits of security features in base64.
pub const NONCE_COOKIE: &str = "obMatJos2";

/// How many 438 (Stale Nonce) answers in a row are retried before giving up.
const MAX_STALE_RETRIES: u32 = 3;

/// The security features a server announces in its nonce (RFC 8489 §9.2, §18.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecurityFeatures {
    /// Bit 0, "Password algorithms": the server supports PASSWORD-ALGORITHMS.
    pub password_algorithms: bool,
    /// Bit 1, "Username anonymity": the server accepts USERHASH.
    pub username_anonymity: bool,
}

impl SecurityFeatures {
    /// Reads the features from a nonce. `None` when the nonce has no RFC 8489 cookie (an
    /// RFC 5389 server).
    pub fn from_nonce(nonce: &str) -> Option<SecurityFeatures> {
        let rest = nonce.strip_prefix(NONCE_COOKIE)?;
        let chars = rest.as_bytes().get(..4)?;
        let mut bits = 0u32;
        for &c in chars {
            bits = (bits << 6) | u32::from(base64_value(c)?);
        }
        Some(SecurityFeatures {
            password_algorithms: bits & FEATURE_PASSWORD_ALGORITHMS != 0,
            username_anonymity: bits & FEATURE_USERNAME_ANONYMITY != 0,
        })
    }

    /// The 4 base64 characters that encode these features after the cookie.
    pub fn encode(&self) -> [u8; 4] {
        let mut bits = 0u32;
        if self.password_algorithms {
            bits |= FEATURE_PASSWORD_ALGORITHMS;
        }
        if self.username_anonymity {
            bits |= FEATURE_USERNAME_ANONYMITY;
        }
        let mut out = [0u8; 4];
        for (i, c) in out.iter_mut().enumerate() {
            *c = BASE64[((bits >> (18 - 6 * i)) & 0x3F) as usize];
        }
        out
    }
}

// RFC 8489 §9.2 as corrected by verified erratum 6290: bit 0 of the 24 feature bits is
// the least significant bit of the third byte (the B.1 example nonce "obMatJos2AAAC..."
// sets bit 1, "Username anonymity", and its request carries USERHASH).
const FEATURE_PASSWORD_ALGORITHMS: u32 = 1 << 0;
const FEATURE_USERNAME_ANONYMITY: u32 = 1 << 1;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_value(c: u8) -> Option<u8> {
    BASE64.iter().position(|&b| b == c).map(|p| p as u8)
}

/// Why the long-term credential exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The server answered 401 to a request that carried credentials for its current
    /// realm and nonce: wrong username or password.
    Rejected,
    /// A 401 or 438 answer lacks REALM or NONCE, or they are malformed.
    MissingChallenge,
    /// The server announced the "Password algorithms" feature but sent no usable
    /// PASSWORD-ALGORITHMS, or changed the list between answers (a bid-down attempt,
    /// RFC 8489 §9.2.5).
    BadPasswordAlgorithms,
    /// The server offers only password algorithms this implementation lacks.
    NoSupportedAlgorithm,
    /// The server keeps answering 438 (Stale Nonce).
    TooManyStaleNonces,
    /// The credentials cannot be prepared (RFC 8265 OpaqueString).
    Credential(CredentialError),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected => write!(f, "the server rejected the credentials (401)"),
            Self::MissingChallenge => {
                write!(
                    f,
                    "the server's 401/438 answer lacks a valid REALM or NONCE"
                )
            }
            Self::BadPasswordAlgorithms => {
                write!(
                    f,
                    "the server's PASSWORD-ALGORITHMS is missing, invalid or changed"
                )
            }
            Self::NoSupportedAlgorithm => {
                write!(f, "the server offers no supported password algorithm")
            }
            Self::TooManyStaleNonces => write!(f, "the server keeps answering 438 Stale Nonce"),
            Self::Credential(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AuthError {
    /// `Credential` is transparent: its Display is the credential error's own, so its
    /// source is that error's source, not the error itself (shown once, not twice).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Credential(e) => e.source(),
            _ => None,
        }
    }
}

impl From<CredentialError> for AuthError {
    fn from(e: CredentialError) -> Self {
        Self::Credential(e)
    }
}

/// What to do after an error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Send the request again, with a new transaction id, signed with
    /// [`LongTermAuth::write_credentials`].
    Retry,
    /// The error is not about authentication: handle it as the request's answer.
    NotAuthError,
    /// Authentication failed; do not retry.
    Failed(AuthError),
}

#[derive(Clone)]
struct Session {
    realm: String,
    nonce: String,
    key: IntegrityKey,
    algorithm: PasswordAlgorithmId,
    /// The PASSWORD-ALGORITHMS value of the first challenge, echoed in requests.
    algorithms: Option<Vec<u8>>,
    userhash: Option<[u8; 32]>,
    features: Option<SecurityFeatures>,
}

/// Client state for the long-term credential mechanism, shared by every request to one
/// server (RFC 8489 §9.2.3-§9.2.5).
#[derive(Clone)]
pub struct LongTermAuth {
    username: String,
    password: String,
    prefer_userhash: bool,
    session: Option<Session>,
    /// True once a request was signed with the current realm and nonce.
    sent_with_current: bool,
    stale_retries: u32,
}

impl fmt::Debug for LongTermAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LongTermAuth")
            .field("username", &self.username)
            .field("realm", &self.session.as_ref().map(|s| &s.realm))
            .field("algorithm", &self.session.as_ref().map(|s| s.algorithm))
            .finish_non_exhaustive()
    }
}

impl LongTermAuth {
    /// Credentials for one server. The username and password are prepared with
    /// OpaqueString now, so that bad input fails here rather than mid-exchange.
    pub fn new(username: &str, password: &str) -> Result<LongTermAuth, CredentialError> {
        Ok(LongTermAuth {
            username: opaque_string(username, "username")?.into_owned(),
            password: opaque_string(password, "password")?.into_owned(),
            prefer_userhash: false,
            session: None,
            sent_with_current: false,
            stale_retries: 0,
        })
    }

    /// Send USERHASH instead of USERNAME when the server announces "Username anonymity"
    /// (RFC 8489 §9.2.4).
    pub fn prefer_userhash(mut self, prefer: bool) -> Self {
        self.prefer_userhash = prefer;
        self
    }

    /// True once the server's realm and nonce are known, so requests can be signed.
    pub fn is_ready(&self) -> bool {
        self.session.is_some()
    }

    /// The realm the server announced.
    pub fn realm(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.realm.as_str())
    }

    /// The current nonce.
    pub fn nonce(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.nonce.as_str())
    }

    /// The password algorithm in use.
    pub fn password_algorithm(&self) -> Option<PasswordAlgorithmId> {
        self.session.as_ref().map(|s| s.algorithm)
    }

    /// How responses to signed requests are authenticated, once ready.
    pub fn response_integrity(&self) -> Option<ResponseIntegrity> {
        self.session
            .as_ref()
            .map(|s| ResponseIntegrity::long_term(s.key.clone(), integrity_algorithm(s)))
    }

    /// Appends the credential attributes and the integrity attribute to a request:
    /// USERNAME or USERHASH, REALM, NONCE, PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM when
    /// the server uses them, then MESSAGE-INTEGRITY-SHA256 (servers announcing the
    /// RFC 8489 features) or MESSAGE-INTEGRITY. Add FINGERPRINT, if wanted, after this.
    /// Does nothing before the first challenge (RFC 8489 §9.2.3: the first request goes
    /// without credentials).
    pub fn write_credentials(&mut self, w: &mut MessageWriter<'_>) -> Result<(), StunWriteError> {
        let Some(s) = &self.session else {
            return Ok(());
        };
        match &s.userhash {
            Some(hash) => w.add(&Userhash(hash))?,
            None => w.add(&Username(&self.username))?,
        }
        w.add(&Realm(&s.realm))?;
        w.add(&Nonce(&s.nonce))?;
        if let Some(algorithms) = &s.algorithms {
            w.add(&PasswordAlgorithms::from_wire(algorithms))?;
            w.add(&PasswordAlgorithm {
                algorithm: s.algorithm,
                params: &[],
            })?;
        }
        match integrity_algorithm(s) {
            IntegrityAlgorithm::Sha256 => w.add_message_integrity_sha256(&s.key)?,
            IntegrityAlgorithm::Sha1 => w.add_message_integrity(&s.key)?,
        }
        self.sent_with_current = true;
        Ok(())
    }

    /// Call after a success response: a later 438 may be retried again.
    pub fn handle_success(&mut self) {
        self.stale_retries = 0;
    }

    /// Processes an error response to a request made with this state.
    pub fn handle_error_response(&mut self, msg: &Message<'_>) -> AuthOutcome {
        if msg.class() != MessageClass::Error {
            return AuthOutcome::NotAuthError;
        }
        let code = match msg.attribute::<ErrorCode<'_>>() {
            Ok(Some(code)) => code.code,
            _ => return AuthOutcome::NotAuthError,
        };
        match code {
            401 => {
                if self.sent_with_current {
                    // RFC 8489 §9.2.5: credentials for this realm and nonce were refused.
                    return AuthOutcome::Failed(AuthError::Rejected);
                }
                match self.take_challenge(msg) {
                    Ok(()) => AuthOutcome::Retry,
                    Err(e) => AuthOutcome::Failed(e),
                }
            }
            438 => {
                // A 438 whose nonce the client already holds answers a request sent before
                // an earlier 438 updated the nonce (several requests in flight): retry it
                // without counting it as another stale round.
                let same_nonce = matches!(
                    (msg.attribute::<Nonce<'_>>(), &self.session),
                    (Ok(Some(Nonce(n))), Some(s)) if n == s.nonce
                );
                if same_nonce {
                    return match self.take_challenge(msg) {
                        Ok(()) => AuthOutcome::Retry,
                        Err(e) => AuthOutcome::Failed(e),
                    };
                }
                self.stale_retries += 1;
                if self.stale_retries > MAX_STALE_RETRIES {
                    return AuthOutcome::Failed(AuthError::TooManyStaleNonces);
                }
                // RFC 8489 §9.2.5: retry with the NONCE (and REALM) of the 438 response.
                match self.take_challenge(msg) {
                    Ok(()) => AuthOutcome::Retry,
                    Err(e) => AuthOutcome::Failed(e),
                }
            }
            _ => AuthOutcome::NotAuthError,
        }
    }

    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 answer.
    fn take_challenge(&mut self, msg: &Message<'_>) -> Result<(), AuthError> {
        let (Ok(Some(Realm(realm))), Ok(Some(Nonce(nonce)))) =
            (msg.attribute::<Realm<'_>>(), msg.attribute::<Nonce<'_>>())
        else {
            return Err(AuthError::MissingChallenge);
        };
        let features = SecurityFeatures::from_nonce(nonce);
        let offered = match msg.attribute::<PasswordAlgorithms<'_>>() {
            Ok(list) => list,
            Err(_) => return Err(AuthError::BadPasswordAlgorithms),
        };
        // RFC 8489 §9.2.4: PASSWORD-ALGORITHMS is used only with the "Password algorithms"
        // feature; without it the key is MD5.
        let (algorithm, algorithms) = match (features, offered) {
            (Some(f), Some(list)) if f.password_algorithms => {
                let algorithm = list
                    .iter()
                    .map(|a| a.algorithm)
                    .find(|a| matches!(*a, PasswordAlgorithmId::SHA256 | PasswordAlgorithmId::MD5))
                    .ok_or(AuthError::NoSupportedAlgorithm)?;
                (algorithm, Some(list.as_wire().unwrap_or_default().to_vec()))
            }
            (Some(f), None) if f.password_algorithms => {
                return Err(AuthError::BadPasswordAlgorithms);
            }
            _ => (PasswordAlgorithmId::MD5, None),
        };
        if let Some(old) = &self.session {
            // RFC 8489 §9.2.5: the list must not change between challenges (bid-down).
            if old.algorithms.is_some() && old.algorithms != algorithms {
                return Err(AuthError::BadPasswordAlgorithms);
            }
        }
        let key = IntegrityKey::long_term(&self.username, realm, &self.password, algorithm)?;
        let userhash = match features {
            Some(f) if f.username_anonymity && self.prefer_userhash => {
                Some(userhash(&self.username, realm)?)
            }
            _ => None,
        };
        self.session = Some(Session {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            key,
            algorithm,
            algorithms,
            userhash,
            features,
        });
        self.sent_with_current = false;
        Ok(())
    }
}

/// MESSAGE-INTEGRITY-SHA256 for servers that announce the RFC 8489 features, where the
/// SHA-256 password algorithm was chosen; MESSAGE-INTEGRITY otherwise (RFC 5389 servers).
fn integrity_algorithm(s: &Session) -> IntegrityAlgorithm {
    match s.features {
        Some(f) if f.password_algorithms && s.algorithm == PasswordAlgorithmId::SHA256 => {
            IntegrityAlgorithm::Sha256
        }
        _ => IntegrityAlgorithm::Sha1,
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
