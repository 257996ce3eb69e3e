//! Candidates whose connection address is a host name: [`HostName`] and
//! [`NamedCandidate`].
//!
//! RFC 8839 §5.1 lets `connection-address` be an FQDN, and browsers hide their host
//! addresses behind random `<uuid>.local` names (draft-ietf-mmusic-mdns-ice-candidates).
//! Such a candidate cannot be paired before its name is resolved, so it is a type of its
//! own rather than a [`Candidate`] with a special address: nothing that takes a
//! [`Candidate`] (pairing, checks, [`Candidate::address`]) can be given an unresolved
//! name. [`NamedCandidate::resolve`] makes the [`Candidate`] once the address is known.
//!
//! Which names the library resolves: `.local` names ([`HostName::is_mdns`]), through
//! mDNS, by the agent ([`crate::agent::StreamMut::add_remote_named_candidate`]). Other
//! FQDNs parse and write back, but the agent refuses them with
//! [`UsageError::UnsupportedHostName`](crate::agent::UsageError::UnsupportedHostName):
//! an application that wants them resolves them with the system resolver and adds
//! [`NamedCandidate::resolve`]'s result as an ordinary candidate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_core::Rng;

use super::{Candidate, CandidateParseError, CandidateTransport, CandidateType, sdp};
use crate::agent::ComponentId;

/// The longest host name, in bytes, without a final dot (RFC 1035 §2.3.4: 255 octets on
/// the wire).
pub const MAX_HOST_NAME_LEN: usize = 253;

/// The longest label of a host name, in bytes (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A host name as a candidate carries it: RFC 1123 §2.1 labels (letters, digits and
/// hyphens, not starting or ending with a hyphen, 1 to 63 bytes), at most 253 bytes,
/// optionally ending in a dot, and a last label that is not all digits (so that a
/// malformed IPv4 address is not taken for a name).
///
/// Kept as written; names compare case-insensitively in DNS, which
/// [`HostName::eq_ignore_case`] does.
///
/// ```
/// use librice_proto::candidate::{HostName, HostNameError};
///
/// let name = HostName::parse("1f4712db-ea17-4bcf-a596-105139dfd8bf.local").unwrap();
/// assert!(name.is_mdns());
/// assert!(!HostName::parse("turn.example.com").unwrap().is_mdns());
/// assert_eq!(HostName::parse("a..local"), Err(HostNameError::EmptyLabel));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);

impl HostName {
    /// Checks `text` as described on [`HostName`].
    pub fn parse(text: &str) -> Result<Self, HostNameError> {
        let name = text.strip_suffix('.').unwrap_or(text);
        if name.is_empty() {
            return Err(HostNameError::Empty);
        }
        if name.len() > MAX_HOST_NAME_LEN {
            return Err(HostNameError::TooLong { len: name.len() });
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err(HostNameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(HostNameError::LabelTooLong { len: label.len() });
            }
            if let Some(character) = label
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
            {
                return Err(HostNameError::InvalidCharacter { character });
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(HostNameError::HyphenAtLabelEdge {
                    label: label.to_owned(),
                });
            }
        }
        if name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(HostNameError::NumericTopLabel);
        }
        Ok(Self(text.to_owned()))
    }

    /// A fresh `<uuid v4>.local` name (lowercase 8-4-4-4-12, as browsers make them;
    /// draft-ietf-rtcweb-mdns-ice-candidates-04 §3.1.1 step 3: "a version 4 UUID ...
    /// followed by ".local""), from `rng`.
    pub fn random_mdns<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self(crate::mdns::random_uuid_name(rng))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for an mDNS candidate name, which the agent resolves through mDNS: one label
    /// then `.local` (draft-ietf-rtcweb-mdns-ice-candidates-04 §3.2.1 step 1: a name that
    /// does not end with ".local" or "contains more than one "."" is processed as any
    /// other).
    pub fn is_mdns(&self) -> bool {
        let name = self.0.strip_suffix('.').unwrap_or(&self.0);
        name.split_once('.')
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case("local"))
    }

    /// True if both name the same host: equal but for ASCII case and a final dot
    /// (RFC 4343).
    pub fn eq_ignore_case(&self, other: &HostName) -> bool {
        let a = self.0.strip_suffix('.').unwrap_or(&self.0);
        let b = other.0.strip_suffix('.').unwrap_or(&other.0);
        a.eq_ignore_ascii_case(b)
    }

    /// The key names compare by: lowercase, without a final dot.
    pub(crate) fn key(&self) -> String {
        self.0
            .strip_suffix('.')
            .unwrap_or(&self.0)
            .to_ascii_lowercase()
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for HostName {
    type Err = HostNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Why a text is not a [`HostName`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostNameError {
    /// The name is empty (or only a dot).
    Empty,
    /// The name is longer than [`MAX_HOST_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes, without a final dot.
        len: usize,
    },
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A label is longer than [`MAX_LABEL_LEN`] bytes.
    LabelTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A label holds a character other than a letter, a digit or a hyphen
    /// (RFC 1123 §2.1).
    InvalidCharacter {
        /// The first such character.
        character: char,
    },
    /// A label starts or ends with a hyphen (RFC 1123 §2.1).
    HyphenAtLabelEdge {
        /// The label.
        label: String,
    },
    /// The last label is all digits: a malformed IPv4 address rather than a name.
    NumericTopLabel,
}

impl fmt::Display for HostNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "the host name is empty"),
            Self::TooLong { len } => write!(
                f,
                "the host name is {len} bytes, above the {MAX_HOST_NAME_LEN}-byte limit"
            ),
            Self::EmptyLabel => write!(f, "the host name has an empty label"),
            Self::LabelTooLong { len } => write!(
                f,
                "a label of the host name is {len} bytes, above the {MAX_LABEL_LEN}-byte limit"
            ),
            Self::InvalidCharacter { character } => write!(
                f,
                "the host name holds {character:?}; labels are letters, digits and hyphens"
            ),
            Self::HyphenAtLabelEdge { label } => {
                write!(f, "label {label:?} starts or ends with a hyphen")
            }
            Self::NumericTopLabel => write!(f, "the last label of the host name is all digits"),
        }
    }
}

impl std::error::Error for HostNameError {}

/// A candidate whose connection address is a host name (RFC 8839 §5.1), such as the
/// `<uuid>.local` names of draft-ietf-mmusic-mdns-ice-candidates.
///
/// Every field but the address is a [`Candidate`]'s, with the same invariants. It cannot
/// be paired: [`Self::resolve`] makes the [`Candidate`] once the name's address is known.
/// A related address that is a host name too is read as the unspecified IPv4 address
/// with its port (privacy-preserving agents hide it, draft-ietf-rtcweb-mdns-ice-candidates-04
/// §3.1.2.2; it is informational only, RFC 8445 §5.1.1).
///
/// `Display` writes the SDP attribute value, which [`Self::parse`] reads back to an equal
/// value.
///
/// ```
/// use librice_proto::candidate::{CandidateType, NamedCandidate};
///
/// let line = "candidate:1 1 UDP 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54321 typ host";
/// let named = NamedCandidate::parse(line).unwrap();
/// assert_eq!(named.name().as_str(), "1f4712db-ea17-4bcf-a596-105139dfd8bf.local");
/// assert_eq!(named.port(), 54321);
/// assert_eq!(named.to_string(), line);
/// let resolved = named.resolve("192.0.2.7".parse().unwrap()).unwrap();
/// assert_eq!(resolved.address(), "192.0.2.7:54321".parse().unwrap());
/// assert_eq!(resolved.candidate_type(), CandidateType::Host);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedCandidate {
    /// Every field but the address; its address is the unspecified IPv4 address with the
    /// candidate's port, and is never exposed.
    fields: Candidate,
    name: HostName,
}

impl NamedCandidate {
    /// A candidate at `name`, with the other fields of `candidate` (whose address gives
    /// only the port). Fails if the written attribute would be longer than
    /// [`MAX_CANDIDATE_LEN`](super::MAX_CANDIDATE_LEN).
    pub fn new(candidate: &Candidate, name: HostName) -> Result<Self, CandidateParseError> {
        let mut fields = candidate.clone();
        fields.address = placeholder(candidate.address().port());
        let named = Self { fields, name };
        let len = named.written_len();
        if len > super::MAX_CANDIDATE_LEN {
            return Err(CandidateParseError::TooLong { len });
        }
        Ok(named)
    }

    /// Parses an SDP `candidate` attribute whose connection address is a host name. An
    /// attribute with an IP address is refused with [`CandidateParseError::NotAHostName`]
    /// (parse it with [`Candidate::parse`]); otherwise the errors are
    /// [`Candidate::parse`]'s.
    pub fn parse(text: &str) -> Result<Self, CandidateParseError> {
        sdp::parse_named(text)
    }

    pub(super) fn from_parts(fields: Candidate, name: HostName) -> Self {
        Self { fields, name }
    }

    /// The host name of the connection address.
    pub fn name(&self) -> &HostName {
        &self.name
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.fields.address.port()
    }

    /// The foundation (RFC 8445 §5.1.1.3).
    pub fn foundation(&self) -> &str {
        self.fields.foundation()
    }

    /// The component id, 1..=256.
    pub fn component(&self) -> ComponentId {
        self.fields.component()
    }

    /// The transport, with the TCP direction.
    pub fn transport(&self) -> CandidateTransport {
        self.fields.transport()
    }

    /// The priority (RFC 8445 §5.1.2).
    pub fn priority(&self) -> u32 {
        self.fields.priority()
    }

    /// How the candidate was obtained.
    pub fn candidate_type(&self) -> CandidateType {
        self.fields.candidate_type()
    }

    /// The related address (`raddr`/`rport`).
    pub fn related_address(&self) -> Option<SocketAddr> {
        self.fields.related_address()
    }

    /// The extension attributes, in order.
    pub fn extensions(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.fields.extensions()
    }

    /// The candidate at `ip` and this candidate's port, every other field kept. Fails only
    /// if it would be written longer than [`MAX_CANDIDATE_LEN`](super::MAX_CANDIDATE_LEN)
    /// (an IPv6 address can be longer than the name).
    pub fn resolve(&self, ip: IpAddr) -> Result<Candidate, CandidateParseError> {
        let mut candidate = self.fields.clone();
        candidate.address = super::sdp_address(SocketAddr::new(ip, self.port()));
        let len = sdp::written_len(&candidate);
        if len > super::MAX_CANDIDATE_LEN {
            return Err(CandidateParseError::TooLong { len });
        }
        Ok(candidate)
    }

    fn written_len(&self) -> usize {
        sdp::written_len_with(&self.fields, Some(&self.name))
    }
}

impl fmt::Display for NamedCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        sdp::write_with(&self.fields, Some(&self.name), f)
    }
}

impl std::str::FromStr for NamedCandidate {
    type Err = CandidateParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The address kept in a [`NamedCandidate`]'s fields: never exposed.
pub(super) fn placeholder(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

#[cfg(test)]
#[path = "named_tests.rs"]
mod tests;
