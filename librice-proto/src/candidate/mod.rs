//! ICE candidates: their types, priorities, foundations, SDP text form and the ICE
//! credentials that go with them.
//!
//! - [`Candidate`]: one transport address an agent can be reached at (RFC 8445 §5.1), built
//!   with [`Candidate::builder`] or parsed from an SDP `candidate:` attribute (RFC 8839 §5.1)
//!   with [`Candidate::parse`]; its `Display` writes that attribute back.
//! - [`priority()`], [`local_preferences`], [`tcp_local_preference`]: the RFC 8445 §5.1.2
//!   priority formula, local preferences that intermingle interfaces and address families
//!   (RFC 8421), and the ICE-TCP local preference of RFC 6544 §4.2.
//! - [`FoundationSet`]: deterministic foundations (RFC 8445 §5.1.1.3).
//! - [`IceCredentials`], [`generate_ufrag`], [`generate_pwd`], [`validate_ufrag`],
//!   [`validate_pwd`]: `ice-ufrag` and `ice-pwd` (RFC 8445 §5.3, RFC 8839 §5.4), drawn from
//!   a caller-supplied RNG.
//! - [`IceSdp`]: the ICE attributes of an SDP media section and of the session level
//!   (`ice-ufrag`, `ice-pwd`, `ice-options`, `ice-lite`, `ice-pacing`, `candidate`,
//!   `end-of-candidates`; RFC 8839 §5, RFC 8840), read and written, with candidates whose
//!   address is an mDNS `.local` name kept as [`UnresolvedCandidate`]s.
//! - [`NamedCandidate`], [`HostName`]: a candidate whose address is a host name (RFC 8839
//!   §5.1), such as the `<uuid>.local` names of draft-ietf-mmusic-mdns-ice-candidates. It is
//!   a type of its own, not a [`Candidate`], so that it can never be paired or used as a
//!   socket address before its name is resolved ([`NamedCandidate::resolve`]); the agent
//!   resolves `.local` names through mDNS
//!   ([`StreamMut::add_remote_named_candidate`](crate::agent::StreamMut::add_remote_named_candidate)).
//!
//! ```
//! use librice_proto::candidate::{Candidate, CandidateTransport, CandidateType, FoundationKey, FoundationSet};
//! use librice_proto::TransportType;
//! use librice_proto::agent::ComponentId;
//!
//! // A host candidate for component 1, as an agent makes it...
//! let addr: std::net::SocketAddr = "192.0.2.1:50000".parse().unwrap();
//! let mut foundations = FoundationSet::new();
//! let foundation = foundations.foundation(FoundationKey::new(
//!     CandidateType::Host, TransportType::Udp, addr.ip(), None));
//! let host = Candidate::builder(foundation, CandidateType::Host, CandidateTransport::Udp, addr)
//!     .component(ComponentId::RTP)
//!     .local_preference(65535)
//!     .build()
//!     .unwrap();
//! assert_eq!(host.to_string(), "candidate:1 1 UDP 2130706431 192.0.2.1 50000 typ host");
//!
//! // ...and as the peer reads it.
//! let remote = Candidate::parse("a=candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host").unwrap();
//! assert_eq!(remote, host);
//! ```
//!
//! Every [`Candidate`] value, however it was made, writes an attribute that parses back to an
//! equal value.
//!
//! [`Candidate::parse`] rejects a host name with
//! [`CandidateParseError::HostnameNotSupported`] (parse such a line with
//! [`NamedCandidate::parse`]; [`IceSdp`] keeps such lines as text, and
//! [`UnresolvedCandidate::named`] reads them). Names other than `.local` ones are parsed
//! and written but not resolved by this library (see [`NamedCandidate`]).
//!
//! Left out for now: transports other than UDP and TCP; the
//! `remote-candidates` and `ice-mismatch` attributes (RFC 8839 §5.2, §5.3), which
//! [`IceSdp`] skips.

mod credentials;
mod foundation;
mod ice_sdp;
mod named;
mod priority;
mod sdp;

#[cfg(test)]
mod derived_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{SocketAddr, SocketAddrV6};

use crate::TransportType;
use crate::agent::ComponentId;

pub use credentials::{
    DEFAULT_PWD_LEN, DEFAULT_UFRAG_LEN, IceCredentialError, IceCredentials, MAX_CREDENTIAL_LEN,
    MIN_PWD_LEN, MIN_UFRAG_LEN, generate_ice_chars, generate_pwd, generate_ufrag, is_ice_char,
    validate_pwd, validate_ufrag,
};
pub use foundation::{FoundationKey, FoundationSet};
pub use ice_sdp::{
    DEFAULT_ICE_PACING_MS, IceOption, IceSdp, IceSdpError, MAX_ICE_OPTION_LEN, MAX_ICE_OPTIONS,
    MAX_ICE_PACING_MS, MAX_MEDIA_SECTIONS, MAX_SDP_CANDIDATES, MAX_SDP_LEN, UnresolvedCandidate,
};
pub use named::{HostName, HostNameError, MAX_HOST_NAME_LEN, MAX_LABEL_LEN, NamedCandidate};
pub use priority::{
    MAX_PRIORITY, MAX_TCP_OTHER_PREFERENCE, MAX_TYPE_PREFERENCE, local_preferences,
    preference_order, priority, tcp_local_preference, tcp_other_preferences,
};
pub use sdp::{CandidateParseError, MAX_CANDIDATE_LEN};

/// The most ice-chars a foundation may have (RFC 8839 §5.1).
pub const MAX_FOUNDATION_LEN: usize = 32;

/// The lowest component id (RFC 8445 §5.1.2.1).
pub const MIN_COMPONENT: u16 = 1;

/// The highest component id (RFC 8445 §5.1.2.1, RFC 8839 §5.1).
pub const MAX_COMPONENT: u16 = 256;

/// The port written for active ICE-TCP candidates, which never listen: 9, the discard port
/// (RFC 6544 §4.5).
pub const DISCARD_PORT: u16 = 9;

/// How a candidate was obtained (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CandidateType {
    /// An address of a local interface (`typ host`).
    Host,
    /// The address a STUN server saw a request come from (`typ srflx`).
    ServerReflexive,
    /// The address a peer saw a connectivity check come from (`typ prflx`).
    PeerReflexive,
    /// An address allocated on a TURN server (`typ relay`).
    Relayed,
}

impl CandidateType {
    /// The recommended type preference (RFC 8445 §5.1.2.2): 126 for host, 110 for
    /// peer-reflexive, 100 for server-reflexive and 0 for relayed candidates.
    pub const fn preference(self) -> u8 {
        match self {
            Self::Host => 126,
            Self::PeerReflexive => 110,
            Self::ServerReflexive => 100,
            Self::Relayed => 0,
        }
    }

    /// The name SDP uses after `typ` (RFC 8839 §5.1): `host`, `srflx`, `prflx` or `relay`.
    pub const fn sdp_name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::ServerReflexive => "srflx",
            Self::PeerReflexive => "prflx",
            Self::Relayed => "relay",
        }
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdp_name())
    }
}

/// The direction of an ICE-TCP candidate (RFC 6544 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpType {
    /// Opens outgoing connections and never accepts any (`tcptype active`).
    Active,
    /// Accepts incoming connections and never opens any (`tcptype passive`).
    Passive,
    /// Simultaneous open: both sides open a connection at once (`tcptype so`).
    So,
}

impl TcpType {
    /// The recommended direction preference of RFC 6544 §4.2, for use with
    /// [`tcp_local_preference`]: for host and relayed candidates 6 for active, 4 for passive
    /// and 2 for simultaneous-open; for server-reflexive candidates (and, here, peer-reflexive
    /// ones, which are NAT-assisted too) 6 for simultaneous-open, 4 for active and 2 for
    /// passive.
    pub const fn direction_preference(self, candidate_type: CandidateType) -> u8 {
        match candidate_type {
            CandidateType::Host | CandidateType::Relayed => match self {
                Self::Active => 6,
                Self::Passive => 4,
                Self::So => 2,
            },
            CandidateType::ServerReflexive | CandidateType::PeerReflexive => match self {
                Self::So => 6,
                Self::Active => 4,
                Self::Passive => 2,
            },
        }
    }

    /// The name SDP uses after `tcptype` (RFC 6544 §4.5): `active`, `passive` or `so`.
    pub const fn sdp_name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Passive => "passive",
            Self::So => "so",
        }
    }
}

impl fmt::Display for TcpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sdp_name())
    }
}

/// The transport of a candidate: UDP, or TCP with its direction (RFC 6544).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CandidateTransport {
    /// UDP (RFC 8445).
    Udp,
    /// TCP, with the direction every ICE-TCP candidate carries (RFC 6544 §4.5).
    Tcp(TcpType),
}

impl CandidateTransport {
    /// The transport protocol, without the TCP direction.
    pub const fn transport_type(self) -> TransportType {
        match self {
            Self::Udp => TransportType::Udp,
            Self::Tcp(_) => TransportType::Tcp,
        }
    }

    /// The TCP direction, or `None` for UDP.
    pub const fn tcp_type(self) -> Option<TcpType> {
        match self {
            Self::Udp => None,
            Self::Tcp(tcp_type) => Some(tcp_type),
        }
    }
}

impl From<TcpType> for CandidateTransport {
    fn from(tcp_type: TcpType) -> Self {
        Self::Tcp(tcp_type)
    }
}

/// One candidate: a transport address at which an agent may receive data, with what ICE
/// needs to pair and order it (RFC 8445 §5.1).
///
/// Built with [`Candidate::builder`] or parsed with [`Candidate::parse`] (also
/// [`str::parse`]); `Display` writes the SDP attribute value
/// `candidate:FOUNDATION COMPONENT TRANSPORT PRIORITY ADDRESS PORT typ TYPE [raddr A rport P]
/// [tcptype T] [NAME VALUE]...` (RFC 8839 §5.1, RFC 6544 §4.5), without the `a=` prefix.
///
/// Every value holds these invariants: the foundation is 1 to 32 ice-chars, the component
/// is 1..=256, the priority is at most 2^31 - 1, extension names are RFC 3261 tokens other
/// than `typ`, `raddr`, `rport` and `tcptype`, extension values are visible ASCII, IPv6
/// addresses carry no flow label or scope id (SDP cannot), and the written attribute is at
/// most [`MAX_CANDIDATE_LEN`] bytes. So every candidate writes an attribute that parses back
/// to an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    // Compact (96 B, not 120): an agent keeps one per candidate, and the largest event
    // carries one.
    foundation: Box<str>,
    component: ComponentId,
    transport: CandidateTransport,
    priority: u32,
    address: SocketAddr,
    candidate_type: CandidateType,
    related_address: Option<SocketAddr>,
    extensions: Extensions,
}

/// A candidate's extension attributes, in order: a null pointer for the many candidates
/// without any. Never an empty box, so that equal lists compare and hash equal.
// Boxed on purpose: 8 B in every candidate instead of a `Vec`'s 24.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Extensions(Option<Box<Vec<(String, String)>>>);

impl Extensions {
    fn new(list: Vec<(String, String)>) -> Self {
        Self((!list.is_empty()).then(|| Box::new(list)))
    }

    fn as_slice(&self) -> &[(String, String)] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl Candidate {
    /// Starts building a candidate of type `candidate_type` at `address`.
    ///
    /// The foundation should come from a [`FoundationSet`] for local candidates. For active
    /// TCP candidates, `address` carries port 9 ([`DISCARD_PORT`]) by convention.
    pub fn builder(
        foundation: impl Into<String>,
        candidate_type: CandidateType,
        transport: CandidateTransport,
        address: SocketAddr,
    ) -> CandidateBuilder {
        CandidateBuilder {
            foundation: foundation.into(),
            component: ComponentId::RTP,
            transport,
            priority: PrioritySpec::Recommended {
                local_preference: None,
            },
            address,
            candidate_type,
            related_address: None,
            extensions: Vec::new(),
        }
    }

    /// Parses an SDP `candidate` attribute (RFC 8839 §5.1), with or without its leading
    /// `a=` and `candidate:`. See [`CandidateParseError`] for what is rejected.
    pub fn parse(text: &str) -> Result<Candidate, CandidateParseError> {
        sdp::parse(text)
    }

    /// The foundation: candidates with equal foundations are expected to succeed or fail
    /// together (RFC 8445 §5.1.1.3).
    pub fn foundation(&self) -> &str {
        &self.foundation
    }

    /// The component id, 1..=256 (RFC 8445 §5.1.2.1).
    pub fn component(&self) -> ComponentId {
        self.component
    }

    /// The transport, with the TCP direction.
    pub fn transport(&self) -> CandidateTransport {
        self.transport
    }

    /// The transport protocol, without the TCP direction.
    pub fn transport_type(&self) -> TransportType {
        self.transport.transport_type()
    }

    /// The TCP direction, or `None` for a UDP candidate.
    pub fn tcp_type(&self) -> Option<TcpType> {
        self.transport.tcp_type()
    }

    /// The priority (RFC 8445 §5.1.2), at most [`MAX_PRIORITY`].
    pub fn priority(&self) -> u32 {
        self.priority
    }

    /// The transport address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How the candidate was obtained.
    pub fn candidate_type(&self) -> CandidateType {
        self.candidate_type
    }

    /// The related address (`raddr` and `rport`): the base of a reflexive candidate, the
    /// mapped address of a relayed one (RFC 8839 §5.1).
    pub fn related_address(&self) -> Option<SocketAddr> {
        self.related_address
    }

    /// The extension attributes (`generation 0`, `network-id 1`, ...), in the order they were
    /// given or read.
    pub fn extensions(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.extensions
            .as_slice()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The same candidate with another related address (for the hidden base of a
    /// server-reflexive candidate). The written length cannot grow past the limit: a
    /// related address is at most as long as the one it replaces plus an IPv6 address,
    /// which [`MAX_CANDIDATE_LEN`] leaves room for in every candidate the agent makes.
    pub(crate) fn with_related_address(&self, related_address: Option<SocketAddr>) -> Candidate {
        Candidate {
            related_address: related_address.map(sdp_address),
            ..self.clone()
        }
    }

    /// The value of the first extension attribute called `name` (compared exactly).
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .as_slice()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        sdp::write(self, f)
    }
}

impl std::str::FromStr for Candidate {
    type Err = CandidateParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        sdp::parse(text)
    }
}

/// How the builder sets the priority.
#[derive(Debug, Clone, Copy)]
enum PrioritySpec {
    /// The recommended type preference with this local preference, or with the highest one
    /// when `None` (65535 for UDP, the RFC 6544 §4.2 value for TCP).
    Recommended { local_preference: Option<u16> },
    /// Exactly this priority.
    Exact(u32),
}

/// Builds a [`Candidate`], checking its invariants. Made by [`Candidate::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct CandidateBuilder {
    foundation: String,
    component: ComponentId,
    transport: CandidateTransport,
    priority: PrioritySpec,
    address: SocketAddr,
    candidate_type: CandidateType,
    related_address: Option<SocketAddr>,
    extensions: Vec<(String, String)>,
}

impl CandidateBuilder {
    /// Sets the component id, 1..=256 (default [`ComponentId::RTP`]).
    pub fn component(mut self, component: ComponentId) -> Self {
        self.component = component;
        self
    }

    /// Sets the priority to exactly `priority` (at most [`MAX_PRIORITY`]).
    ///
    /// Without this call, or [`Self::local_preference`], the priority is computed from the
    /// recommended type preference ([`CandidateType::preference`]), the highest local
    /// preference (65535 for UDP; for TCP, RFC 6544 §4.2's
    /// `tcp_local_preference(tcp_type.direction_preference(candidate_type), 8191)`) and the
    /// component. The last of `priority` and `local_preference` called wins.
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = PrioritySpec::Exact(priority);
        self
    }

    /// Computes the priority from the recommended type preference
    /// ([`CandidateType::preference`]), this local preference and the component
    /// (RFC 8445 §5.1.2.1). Use [`local_preferences`] or, for TCP, [`tcp_local_preference`]
    /// to choose it.
    pub fn local_preference(mut self, local_preference: u16) -> Self {
        self.priority = PrioritySpec::Recommended {
            local_preference: Some(local_preference),
        };
        self
    }

    /// Sets the related address (`raddr`/`rport`): the base for a reflexive candidate, the
    /// mapped address for a relayed one (RFC 8839 §5.1). Host candidates have none.
    pub fn related_address(mut self, related_address: SocketAddr) -> Self {
        self.related_address = Some(related_address);
        self
    }

    /// Appends an extension attribute, written after the standard fields in the order
    /// added. `name` must be an RFC 3261 token other than `typ`, `raddr`, `rport` and
    /// `tcptype`; `value` must be one or more visible ASCII characters (RFC 8839 §5.1).
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((name.into(), value.into()));
        self
    }

    /// Checks the invariants listed on [`Candidate`] and makes the candidate.
    pub fn build(self) -> Result<Candidate, CandidateError> {
        if !is_valid_foundation(&self.foundation) {
            return Err(CandidateError::InvalidFoundation(self.foundation));
        }
        if self.component.get() > MAX_COMPONENT {
            return Err(CandidateError::InvalidComponent(self.component.get()));
        }
        let computed = match self.priority {
            PrioritySpec::Exact(exact) if exact > MAX_PRIORITY => {
                return Err(CandidateError::InvalidPriority(exact));
            }
            PrioritySpec::Exact(exact) => exact,
            PrioritySpec::Recommended { local_preference } => {
                let local_preference = match (local_preference, self.transport) {
                    (Some(local_preference), _) => local_preference,
                    (None, CandidateTransport::Udp) => u16::MAX,
                    (None, CandidateTransport::Tcp(tcp_type)) => tcp_local_preference(
                        tcp_type.direction_preference(self.candidate_type),
                        MAX_TCP_OTHER_PREFERENCE,
                    )?,
                };
                priority(
                    self.candidate_type.preference(),
                    local_preference,
                    self.component.get(),
                )?
            }
        };
        // RFC 8839 §5.1: rel-addr and rel-port MUST be omitted for host candidates.
        if self.candidate_type == CandidateType::Host && self.related_address.is_some() {
            return Err(CandidateError::RelatedAddressOnHost);
        }
        for (name, value) in &self.extensions {
            if is_reserved_name(name) {
                return Err(CandidateError::ReservedExtensionName(name.clone()));
            }
            if !is_token(name) {
                return Err(CandidateError::InvalidExtensionName(name.clone()));
            }
            if !is_extension_value(value) {
                return Err(CandidateError::InvalidExtensionValue {
                    name: name.clone(),
                    value: value.clone(),
                });
            }
        }
        let candidate = Candidate {
            foundation: self.foundation.into_boxed_str(),
            component: self.component,
            transport: self.transport,
            priority: computed,
            address: sdp_address(self.address),
            candidate_type: self.candidate_type,
            related_address: self.related_address.map(sdp_address),
            extensions: Extensions::new(self.extensions),
        };
        let len = sdp::written_len(&candidate);
        if len > MAX_CANDIDATE_LEN {
            return Err(CandidateError::TooLong { len });
        }
        Ok(candidate)
    }
}

/// Why a candidate, a priority or a preference could not be made from the values given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CandidateError {
    /// The foundation is not 1 to 32 ice-chars (ALPHA / DIGIT / "+" / "/", RFC 8839 §5.1).
    InvalidFoundation(String),
    /// The component id is not in 1..=256 (RFC 8445 §5.1.2.1).
    InvalidComponent(u16),
    /// The priority is above 2^31 - 1 (RFC 8445 §5.1.2.1).
    InvalidPriority(u32),
    /// The type preference is above 126 (RFC 8445 §5.1.2.1).
    InvalidTypePreference(u8),
    /// The ICE-TCP direction preference is above 7 (RFC 6544 §4.2).
    InvalidDirectionPreference(u8),
    /// The ICE-TCP other preference is above 8191 (RFC 6544 §4.2).
    InvalidOtherPreference(u16),
    /// A host candidate was given a related address (RFC 8839 §5.1: it MUST be omitted).
    RelatedAddressOnHost,
    /// An extension is named `typ`, `raddr`, `rport` or `tcptype`, which the attribute
    /// grammar gives another meaning.
    ReservedExtensionName(String),
    /// An extension name is not an RFC 3261 token.
    InvalidExtensionName(String),
    /// An extension value is empty or holds characters other than visible ASCII.
    InvalidExtensionValue {
        /// The extension's name.
        name: String,
        /// The rejected value.
        value: String,
    },
    /// The written attribute would be longer than [`MAX_CANDIDATE_LEN`] bytes, so it could
    /// not be parsed back.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for CandidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidFoundation(foundation) => write!(
                f,
                "foundation {foundation:?} is not 1 to {MAX_FOUNDATION_LEN} ice-chars (letters, digits, '+', '/')"
            ),
            Self::InvalidComponent(component) => {
                write!(f, "component id {component} is outside 1..=256")
            }
            Self::InvalidPriority(priority) => {
                write!(f, "priority {priority} is above {MAX_PRIORITY}")
            }
            Self::InvalidTypePreference(preference) => write!(
                f,
                "type preference {preference} is above {MAX_TYPE_PREFERENCE}"
            ),
            Self::InvalidDirectionPreference(preference) => {
                write!(f, "ICE-TCP direction preference {preference} is above 7")
            }
            Self::InvalidOtherPreference(preference) => write!(
                f,
                "ICE-TCP other preference {preference} is above {MAX_TCP_OTHER_PREFERENCE}"
            ),
            Self::RelatedAddressOnHost => {
                write!(f, "a host candidate cannot have a related address")
            }
            Self::ReservedExtensionName(name) => write!(
                f,
                "{name:?} cannot be an extension name: the candidate grammar gives it another meaning"
            ),
            Self::InvalidExtensionName(name) => {
                write!(f, "extension name {name:?} is not a token")
            }
            Self::InvalidExtensionValue { name, value } => write!(
                f,
                "value {value:?} of extension {name:?} is not one or more visible ASCII characters"
            ),
            Self::TooLong { len } => write!(
                f,
                "the candidate attribute would be {len} bytes, above the {MAX_CANDIDATE_LEN}-byte limit"
            ),
        }
    }
}

impl std::error::Error for CandidateError {}

/// True for 1 to 32 ice-chars (RFC 8839 §5.1).
fn is_valid_foundation(foundation: &str) -> bool {
    (1..=MAX_FOUNDATION_LEN).contains(&foundation.len()) && foundation.chars().all(is_ice_char)
}

/// True for the field keywords of the candidate grammar, which cannot name extensions.
fn is_reserved_name(name: &str) -> bool {
    ["typ", "raddr", "rport", "tcptype"]
        .iter()
        .any(|reserved| name.eq_ignore_ascii_case(reserved))
}

/// True for an RFC 3261 §25.1 token: one or more of alphanum / "-" / "." / "!" / "%" / "*"
/// / "_" / "+" / "`" / "'" / "~".
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// True for one or more VCHARs (0x21..=0x7E), the extension values that survive being
/// written between spaces.
fn is_extension_value(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// The address as SDP can carry it: IPv6 flow label and scope id cleared.
pub(crate) fn sdp_address(address: SocketAddr) -> SocketAddr {
    match address {
        SocketAddr::V4(_) => address,
        SocketAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
    }
}
