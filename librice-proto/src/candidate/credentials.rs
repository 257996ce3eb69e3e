//! ICE credentials: the `ice-ufrag` and `ice-pwd` of RFC 8445 §5.3 and RFC 8839 §5.4.
//!
//! Both are strings of ice-chars (ALPHA / DIGIT / "+" / "/"): a username fragment of 4 to
//! 256 characters and a password of 22 to 256. Generated ones draw each character uniformly
//! from the 64 ice-chars (6 bits each) with the caller's RNG, so a seeded RNG gives the same
//! credentials every run: 8 characters (48 bits) for a ufrag and 24 (144 bits) for a password,
//! above RFC 8445 §5.3's minimums of 24 and 128 random bits.

use std::fmt;

use rand_core::Rng;

/// The shortest `ice-ufrag`: 4 ice-chars (RFC 8839 §5.4).
pub const MIN_UFRAG_LEN: usize = 4;

/// The shortest `ice-pwd`: 22 ice-chars (RFC 8839 §5.4).
pub const MIN_PWD_LEN: usize = 22;

/// The longest `ice-ufrag` or `ice-pwd`: 256 ice-chars (RFC 8839 §5.4).
pub const MAX_CREDENTIAL_LEN: usize = 256;

/// The length of a generated `ice-ufrag`: 8 ice-chars, 48 random bits.
pub const DEFAULT_UFRAG_LEN: usize = 8;

/// The length of a generated `ice-pwd`: 24 ice-chars, 144 random bits.
pub const DEFAULT_PWD_LEN: usize = 24;

/// The 64 ice-chars, indexed by 6 random bits.
const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// True for an ice-char: ALPHA / DIGIT / "+" / "/" (RFC 8839 §5.1).
pub const fn is_ice_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

/// `len` ice-chars drawn uniformly from `rng`.
pub fn generate_ice_chars<R: Rng + ?Sized>(rng: &mut R, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    // 256 is a multiple of 64: the low 6 bits of a uniform byte are uniform. The bytes
    // become the string's own buffer (one allocation).
    for b in &mut bytes {
        *b = ICE_CHARS[usize::from(*b & 0x3f)];
    }
    String::from_utf8(bytes).expect("ice-chars are ASCII")
}

/// A fresh `ice-ufrag` of [`DEFAULT_UFRAG_LEN`] ice-chars from `rng` (RFC 8445 §5.3: at least
/// 24 bits of randomness).
pub fn generate_ufrag<R: Rng + ?Sized>(rng: &mut R) -> String {
    generate_ice_chars(rng, DEFAULT_UFRAG_LEN)
}

/// A fresh `ice-pwd` of [`DEFAULT_PWD_LEN`] ice-chars from `rng` (RFC 8445 §5.3: at least
/// 128 bits of randomness).
pub fn generate_pwd<R: Rng + ?Sized>(rng: &mut R) -> String {
    generate_ice_chars(rng, DEFAULT_PWD_LEN)
}

/// Checks an `ice-ufrag`: 4 to 256 ice-chars (RFC 8839 §5.4).
pub fn validate_ufrag(ufrag: &str) -> Result<(), IceCredentialError> {
    validate(ufrag, "ice-ufrag", MIN_UFRAG_LEN)
}

/// Checks an `ice-pwd`: 22 to 256 ice-chars (RFC 8839 §5.4).
pub fn validate_pwd(pwd: &str) -> Result<(), IceCredentialError> {
    validate(pwd, "ice-pwd", MIN_PWD_LEN)
}

fn validate(value: &str, field: &'static str, min: usize) -> Result<(), IceCredentialError> {
    if let Some((index, found)) = value.char_indices().find(|&(_, c)| !is_ice_char(c)) {
        return Err(IceCredentialError::InvalidChar {
            field,
            index,
            found,
        });
    }
    // All ice-chars are ASCII, so the byte length is the character count.
    let len = value.len();
    if len < min {
        return Err(IceCredentialError::TooShort { field, len, min });
    }
    if len > MAX_CREDENTIAL_LEN {
        return Err(IceCredentialError::TooLong {
            field,
            len,
            max: MAX_CREDENTIAL_LEN,
        });
    }
    Ok(())
}

/// Why an `ice-ufrag` or `ice-pwd` is not valid (RFC 8839 §5.4).
///
/// The errors name the character or length at fault, never the password itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceCredentialError {
    /// Fewer characters than the minimum.
    TooShort {
        /// `ice-ufrag` or `ice-pwd`.
        field: &'static str,
        /// The length found.
        len: usize,
        /// The minimum: 4 for a ufrag, 22 for a password.
        min: usize,
    },
    /// More characters than the maximum.
    TooLong {
        /// `ice-ufrag` or `ice-pwd`.
        field: &'static str,
        /// The length found.
        len: usize,
        /// The maximum: 256.
        max: usize,
    },
    /// A character that is not an ice-char (ALPHA / DIGIT / "+" / "/").
    InvalidChar {
        /// `ice-ufrag` or `ice-pwd`.
        field: &'static str,
        /// Its byte offset.
        index: usize,
        /// The character.
        found: char,
    },
}

impl fmt::Display for IceCredentialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { field, len, min } => {
                write!(f, "{field} of {len} characters is shorter than {min}")
            }
            Self::TooLong { field, len, max } => {
                write!(f, "{field} of {len} characters is longer than {max}")
            }
            Self::InvalidChar {
                field,
                index,
                found,
            } => write!(
                f,
                "{field} has {found:?} at byte {index}; only letters, digits, '+' and '/' are allowed"
            ),
        }
    }
}

impl std::error::Error for IceCredentialError {}

/// A validated `ice-ufrag` and `ice-pwd` pair.
///
/// `Debug` shows the username fragment and hides the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IceCredentials {
    // Boxed strings (16 B each, not 24): every stream keeps two sets.
    ufrag: Box<str>,
    pwd: Box<str>,
}

impl IceCredentials {
    /// Fresh credentials from `rng`: [`generate_ufrag`] and [`generate_pwd`].
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let ufrag = generate_ufrag(rng).into_boxed_str();
        let pwd = generate_pwd(rng).into_boxed_str();
        Self { ufrag, pwd }
    }

    /// Credentials from given values, checked with [`validate_ufrag`] and [`validate_pwd`].
    pub fn new(
        ufrag: impl Into<String>,
        pwd: impl Into<String>,
    ) -> Result<Self, IceCredentialError> {
        let ufrag = ufrag.into();
        let pwd = pwd.into();
        validate_ufrag(&ufrag)?;
        validate_pwd(&pwd)?;
        Ok(Self {
            ufrag: ufrag.into_boxed_str(),
            pwd: pwd.into_boxed_str(),
        })
    }

    /// The username fragment.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// The password.
    pub fn pwd(&self) -> &str {
        &self.pwd
    }
}

impl fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceCredentials")
            .field("ufrag", &self.ufrag)
            .field("pwd", &"<redacted>")
            .finish()
    }
}
