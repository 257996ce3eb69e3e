//! [`IceCandidate`]: a candidate as it is signalled, with its address or with a `.local`
//! name hiding it.

use std::fmt;

use librice_proto::agent::ComponentId;
use librice_proto::candidate::{
    Candidate, CandidateParseError, CandidateTransport, CandidateType, NamedCandidate,
};

/// A candidate to signal or signalled: an address, or a host candidate whose address
/// hides behind an mDNS `.local` name (draft-ietf-mmusic-mdns-ice-candidates).
///
/// [`crate::GatherStream`] yields `Named` ones for the host candidates of an agent built
/// with [`crate::AgentBuilder::hide_host_addresses`];
/// [`crate::Stream::add_remote_candidate`] takes both (a `Candidate` or a
/// `NamedCandidate` converts into one). Its `Display` is the SDP `candidate:` attribute
/// value, and [`IceCandidate::parse`] reads it back, named or not.
///
/// ```
/// use librice::IceCandidate;
///
/// let named = IceCandidate::parse(
///     "candidate:1 1 UDP 2122260223 1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0.local 54400 typ host",
/// )?;
/// assert!(matches!(named, IceCandidate::Named(_)));
/// let plain = IceCandidate::parse("candidate:1 1 UDP 2122260223 192.0.2.1 54400 typ host")?;
/// assert_eq!(plain.as_address().map(|c| c.address().port()), Some(54400));
/// assert_eq!(
///     plain.to_string(),
///     "candidate:1 1 UDP 2122260223 192.0.2.1 54400 typ host"
/// );
/// # Ok::<(), librice::proto::candidate::CandidateParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceCandidate {
    /// A candidate with its transport address.
    Address(Candidate),
    /// A host candidate with a `.local` name in place of its IP address.
    Named(NamedCandidate),
}

impl IceCandidate {
    /// Reads the SDP form (with or without the `a=` and `candidate:` prefixes, as
    /// [`Candidate::parse`]): a `.local` name (or any host name) in the address field
    /// makes a `Named` one.
    ///
    /// # Errors
    ///
    /// What [`Candidate::parse`] or [`NamedCandidate::parse`] say of the text.
    pub fn parse(text: &str) -> Result<Self, CandidateParseError> {
        match Candidate::parse(text) {
            Ok(c) => Ok(Self::Address(c)),
            Err(address_error) => match NamedCandidate::parse(text) {
                Ok(c) => Ok(Self::Named(c)),
                Err(_) => Err(address_error),
            },
        }
    }

    /// The candidate, when it carries its address.
    pub fn as_address(&self) -> Option<&Candidate> {
        match self {
            Self::Address(c) => Some(c),
            Self::Named(_) => None,
        }
    }

    /// The named candidate, when its address is hidden.
    pub fn as_named(&self) -> Option<&NamedCandidate> {
        match self {
            Self::Address(_) => None,
            Self::Named(c) => Some(c),
        }
    }

    /// The component.
    pub fn component(&self) -> ComponentId {
        match self {
            Self::Address(c) => c.component(),
            Self::Named(c) => c.component(),
        }
    }

    /// The candidate type (always host for a named one).
    pub fn candidate_type(&self) -> CandidateType {
        match self {
            Self::Address(c) => c.candidate_type(),
            Self::Named(c) => c.candidate_type(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> CandidateTransport {
        match self {
            Self::Address(c) => c.transport(),
            Self::Named(c) => c.transport(),
        }
    }
}

impl fmt::Display for IceCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(c) => c.fmt(f),
            Self::Named(c) => c.fmt(f),
        }
    }
}

impl From<Candidate> for IceCandidate {
    fn from(c: Candidate) -> Self {
        Self::Address(c)
    }
}

impl From<NamedCandidate> for IceCandidate {
    fn from(c: NamedCandidate) -> Self {
        Self::Named(c)
    }
}
