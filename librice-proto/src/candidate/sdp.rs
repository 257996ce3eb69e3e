//! The SDP text form of a candidate: the `candidate` attribute of RFC 8839 §5.1, with the
//! `tcptype` extension of RFC 6544 §4.5.
//!
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP transport SP priority SP
//!                       connection-address SP port SP "typ" SP cand-type
//!                       [SP "raddr" SP connection-address SP "rport" SP port]
//!                       *(SP extension-att-name SP extension-att-value)
//! ```
//!
//! Parsing is liberal where real agents differ and strict where a mistake would change the
//! meaning: fields are separated by any run of ASCII whitespace; keywords (`candidate:`,
//! `typ`, the candidate and TCP types, `raddr`, `rport`, `tcptype`) and the transport are
//! case-insensitive, as ABNF strings are; `raddr`/`rport` and `tcptype` are found anywhere
//! after the type; a host candidate may carry a related address (kept, though RFC 8839 §5.1
//! says to omit it); a reflexive or relayed one may lack it. Writing is canonical: single
//! spaces, lowercase keywords, `UDP`/`TCP`, `raddr`/`rport` right after the type, then
//! `tcptype`, then the extensions in their original order.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::named::{NamedCandidate, placeholder};
use super::{
    Candidate, CandidateTransport, CandidateType, Extensions, HostName, HostNameError,
    MAX_COMPONENT, MAX_FOUNDATION_LEN, MAX_PRIORITY, TcpType, is_extension_value, is_token,
    is_valid_foundation,
};
use crate::agent::ComponentId;

/// The longest candidate attribute accepted, in bytes: longer input is rejected before it is
/// looked at, and a candidate whose written form would be longer cannot be made.
pub const MAX_CANDIDATE_LEN: usize = 1024;

/// Why a text is not a candidate attribute this library accepts.
///
/// Each failure has its own variant; variants that carry text carry the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CandidateParseError {
    /// The text is longer than [`MAX_CANDIDATE_LEN`] bytes (or would be when written back).
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The text ends before this mandatory field.
    MissingField {
        /// The field: `foundation`, `component`, `transport`, `priority`, `address`, `port`,
        /// `typ` or `type`.
        field: &'static str,
    },
    /// The foundation is not 1 to 32 ice-chars (RFC 8839 §5.1).
    BadFoundation(String),
    /// The component id is not a number in 1..=256 (RFC 8839 §5.1).
    BadComponent(String),
    /// The transport is neither UDP nor TCP.
    UnknownTransport(String),
    /// The priority is not a number in 0..=2^31 - 1 (RFC 8445 §5.1.2.1).
    BadPriority(String),
    /// The address (or `raddr`) is neither an IPv4 nor an IPv6 address, nor a host name.
    BadAddress {
        /// `address` or `raddr`.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// The address (or `raddr`) is a host name, such as the mDNS `.local` names browsers
    /// write for privacy, which a [`Candidate`] cannot hold: parse the line with
    /// [`NamedCandidate::parse`] instead (RFC 8839 §5.1 has an agent ignore candidates whose
    /// FQDN it does not support).
    HostnameNotSupported {
        /// `address` or `raddr`.
        field: &'static str,
        /// The name found.
        name: String,
    },
    /// The address (or `raddr`) looks like a host name (no `:`, a last label that is not
    /// all digits) but is not a valid one.
    BadHostName {
        /// `address` or `raddr`.
        field: &'static str,
        /// What is wrong with it.
        error: HostNameError,
    },
    /// [`NamedCandidate::parse`] was given a candidate whose address is an IP address.
    NotAHostName {
        /// The address found.
        address: IpAddr,
    },
    /// The port (or `rport`) is not a number in 0..=65535.
    BadPort {
        /// `port` or `rport`.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// The word after the port is not `typ`.
    ExpectedTyp(String),
    /// The candidate type is not `host`, `srflx`, `prflx` or `relay`.
    UnknownType(String),
    /// `raddr` is given without `rport`.
    RaddrWithoutRport,
    /// `rport` is given without `raddr`.
    RportWithoutRaddr,
    /// The `tcptype` is not `active`, `passive` or `so` (RFC 6544 §4.5).
    BadTcpType(String),
    /// A UDP candidate carries a `tcptype`.
    TcpTypeOnUdp,
    /// A TCP candidate lacks the `tcptype` RFC 6544 §4.5 requires.
    MissingTcpType,
    /// `typ`, `raddr`, `rport` or `tcptype` appears twice.
    DuplicateField(&'static str),
    /// `raddr`, `rport` or `tcptype` ends the text without its value.
    MissingValue(&'static str),
    /// An extension name ends the text without a value: the name/value list has an odd
    /// length.
    ExtensionWithoutValue(String),
    /// An extension name is not an RFC 3261 token, or its value is not visible ASCII.
    BadExtension {
        /// The extension's name.
        name: String,
        /// Its value.
        value: String,
    },
}

impl fmt::Display for CandidateParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(
                f,
                "candidate attribute of {len} bytes is longer than {MAX_CANDIDATE_LEN}"
            ),
            Self::MissingField { field } => write!(f, "candidate attribute has no {field}"),
            Self::BadFoundation(value) => write!(
                f,
                "candidate foundation {value:?} is not 1 to {MAX_FOUNDATION_LEN} ice-chars"
            ),
            Self::BadComponent(value) => {
                write!(
                    f,
                    "candidate component id {value:?} is not a number in 1..=256"
                )
            }
            Self::UnknownTransport(value) => {
                write!(f, "candidate transport {value:?} is neither UDP nor TCP")
            }
            Self::BadPriority(value) => write!(
                f,
                "candidate priority {value:?} is not a number in 0..={MAX_PRIORITY}"
            ),
            Self::BadAddress { field, value } => {
                write!(f, "candidate {field} {value:?} is not an IP address")
            }
            Self::HostnameNotSupported { field, name } => {
                let mdns = if is_mdns_name(name) {
                    " (an mDNS name)"
                } else {
                    ""
                };
                write!(
                    f,
                    "candidate {field} {name:?} is a host name{mdns}, which must be resolved before the candidate can be used"
                )
            }
            Self::BadHostName { field, error } => {
                write!(f, "candidate {field} is not a valid host name: {error}")
            }
            Self::NotAHostName { address } => {
                write!(
                    f,
                    "candidate address {address} is an IP address, not a host name"
                )
            }
            Self::BadPort { field, value } => {
                write!(
                    f,
                    "candidate {field} {value:?} is not a number in 0..=65535"
                )
            }
            Self::ExpectedTyp(value) => write!(f, "expected \"typ\" in candidate, found {value:?}"),
            Self::UnknownType(value) => write!(
                f,
                "candidate type {value:?} is not host, srflx, prflx or relay"
            ),
            Self::RaddrWithoutRport => write!(f, "candidate has raddr but no rport"),
            Self::RportWithoutRaddr => write!(f, "candidate has rport but no raddr"),
            Self::BadTcpType(value) => write!(
                f,
                "candidate tcptype {value:?} is not active, passive or so"
            ),
            Self::TcpTypeOnUdp => write!(f, "UDP candidate has a tcptype"),
            Self::MissingTcpType => write!(f, "TCP candidate has no tcptype"),
            Self::DuplicateField(field) => write!(f, "candidate has {field} twice"),
            Self::MissingValue(field) => {
                write!(f, "candidate ends after {field}, without its value")
            }
            Self::ExtensionWithoutValue(name) => {
                write!(f, "candidate extension {name:?} has no value")
            }
            Self::BadExtension { name, value } => write!(
                f,
                "candidate extension {name:?} {value:?} is not a token followed by visible ASCII"
            ),
        }
    }
}

impl std::error::Error for CandidateParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadHostName { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Parses a candidate attribute; see [`Candidate::parse`].
pub(super) fn parse(text: &str) -> Result<Candidate, CandidateParseError> {
    match parse_any(text, false)? {
        (candidate, None) => Ok(candidate),
        // Names are refused by parse_any when not allowed.
        (_, Some(name)) => Err(CandidateParseError::HostnameNotSupported {
            field: "address",
            name: name.as_str().to_owned(),
        }),
    }
}

/// Parses a candidate attribute whose address is a host name; see
/// [`NamedCandidate::parse`].
pub(super) fn parse_named(text: &str) -> Result<NamedCandidate, CandidateParseError> {
    match parse_any(text, true)? {
        (fields, Some(name)) => Ok(NamedCandidate::from_parts(fields, name)),
        (candidate, None) => Err(CandidateParseError::NotAHostName {
            address: candidate.address().ip(),
        }),
    }
}

/// An address field: an IP address or a host name.
enum Address {
    Ip(IpAddr),
    Name(HostName),
}

/// Parses a candidate attribute. With `names`, a host name in the address is returned
/// beside the fields (whose address is then [`placeholder`]) and one in `raddr` is read as
/// 0.0.0.0; without, either is [`CandidateParseError::HostnameNotSupported`].
fn parse_any(
    text: &str,
    names: bool,
) -> Result<(Candidate, Option<HostName>), CandidateParseError> {
    if text.len() > MAX_CANDIDATE_LEN {
        return Err(CandidateParseError::TooLong { len: text.len() });
    }
    let text = text.trim_ascii();
    let text = strip_prefix_ignore_case(text, "a=").unwrap_or(text);
    let text = strip_prefix_ignore_case(text, "candidate:").unwrap_or(text);
    let mut words = text.split_ascii_whitespace();
    let mut next = |field: &'static str| {
        words
            .next()
            .ok_or(CandidateParseError::MissingField { field })
    };

    let foundation = next("foundation")?;
    if !is_valid_foundation(foundation) {
        return Err(CandidateParseError::BadFoundation(foundation.into()));
    }

    let component = next("component")?;
    // RFC 8445 §5.1.2.1: 1..=256; 0 names no component.
    let component = parse_digits::<u16>(component, 3)
        .filter(|c| *c <= MAX_COMPONENT)
        .and_then(ComponentId::new)
        .ok_or_else(|| CandidateParseError::BadComponent(component.into()))?;

    let transport_word = next("transport")?;
    let is_tcp = if transport_word.eq_ignore_ascii_case("udp") {
        false
    } else if transport_word.eq_ignore_ascii_case("tcp") {
        true
    } else {
        return Err(CandidateParseError::UnknownTransport(transport_word.into()));
    };

    let priority = next("priority")?;
    let priority = parse_digits::<u32>(priority, 10)
        .filter(|&p| p <= MAX_PRIORITY)
        .ok_or_else(|| CandidateParseError::BadPriority(priority.into()))?;

    let address = parse_address(next("address")?, "address")?;
    let port = parse_port(next("port")?, "port")?;
    let (address, name) = match address {
        Address::Ip(ip) => (SocketAddr::new(ip, port), None),
        Address::Name(name) if names => (placeholder(port), Some(name)),
        Address::Name(name) => {
            return Err(CandidateParseError::HostnameNotSupported {
                field: "address",
                name: name.as_str().to_owned(),
            });
        }
    };

    let typ = next("typ")?;
    if !typ.eq_ignore_ascii_case("typ") {
        return Err(CandidateParseError::ExpectedTyp(typ.into()));
    }
    let candidate_type = next("type")?;
    let candidate_type = parse_candidate_type(candidate_type)
        .ok_or_else(|| CandidateParseError::UnknownType(candidate_type.into()))?;

    let mut raddr = None;
    let mut rport = None;
    let mut tcp_type = None;
    let mut extensions = Vec::new();
    while let Some(name) = words.next() {
        let value = words.next();
        if name.eq_ignore_ascii_case("typ") {
            return Err(CandidateParseError::DuplicateField("typ"));
        } else if name.eq_ignore_ascii_case("raddr") {
            let value = value.ok_or(CandidateParseError::MissingValue("raddr"))?;
            let ip = match parse_address(value, "raddr")? {
                Address::Ip(ip) => ip,
                // draft-ietf-rtcweb-mdns-ice-candidates-04 §3.1.2.2: a hidden related address;
                // it is informational only (RFC 8445 §5.1.1).
                Address::Name(_) if names => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                Address::Name(name) => {
                    return Err(CandidateParseError::HostnameNotSupported {
                        field: "raddr",
                        name: name.as_str().to_owned(),
                    });
                }
            };
            set_once(&mut raddr, ip, "raddr")?;
        } else if name.eq_ignore_ascii_case("rport") {
            let value = value.ok_or(CandidateParseError::MissingValue("rport"))?;
            set_once(&mut rport, parse_port(value, "rport")?, "rport")?;
        } else if name.eq_ignore_ascii_case("tcptype") {
            if !is_tcp {
                return Err(CandidateParseError::TcpTypeOnUdp);
            }
            let value = value.ok_or(CandidateParseError::MissingValue("tcptype"))?;
            let parsed = parse_tcp_type(value)
                .ok_or_else(|| CandidateParseError::BadTcpType(value.into()))?;
            set_once(&mut tcp_type, parsed, "tcptype")?;
        } else {
            let value =
                value.ok_or_else(|| CandidateParseError::ExtensionWithoutValue(name.into()))?;
            if !is_token(name) || !is_extension_value(value) {
                return Err(CandidateParseError::BadExtension {
                    name: name.into(),
                    value: value.into(),
                });
            }
            extensions.push((name.to_owned(), value.to_owned()));
        }
    }

    let related_address = match (raddr, rport) {
        (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
        (None, None) => None,
        (Some(_), None) => return Err(CandidateParseError::RaddrWithoutRport),
        (None, Some(_)) => return Err(CandidateParseError::RportWithoutRaddr),
    };
    let transport = match (is_tcp, tcp_type) {
        (false, _) => CandidateTransport::Udp,
        (true, Some(tcp_type)) => CandidateTransport::Tcp(tcp_type),
        // RFC 6544 §4.5: TCP candidates carry a tcptype.
        (true, None) => return Err(CandidateParseError::MissingTcpType),
    };

    let candidate = Candidate {
        foundation: foundation.into(),
        component,
        transport,
        priority,
        address,
        candidate_type,
        related_address,
        extensions: Extensions::new(extensions),
    };
    // The canonical form can be longer than the input (a missing "candidate:" prefix, an IPv6
    // address written differently): refuse what could not be parsed back once written.
    let len = written_len_with(&candidate, name.as_ref());
    if len > MAX_CANDIDATE_LEN {
        return Err(CandidateParseError::TooLong { len });
    }
    Ok((candidate, name))
}

/// Writes the canonical attribute value, starting with `candidate:`.
pub(super) fn write(candidate: &Candidate, f: &mut impl fmt::Write) -> fmt::Result {
    write_with(candidate, None, f)
}

/// Writes the canonical attribute value with `name`, if given, in place of the address.
pub(super) fn write_with(
    candidate: &Candidate,
    name: Option<&HostName>,
    f: &mut impl fmt::Write,
) -> fmt::Result {
    write!(
        f,
        "candidate:{} {} {} {} ",
        candidate.foundation,
        candidate.component,
        candidate.transport.transport_type(),
        candidate.priority,
    )?;
    match name {
        Some(name) => write!(f, "{name}")?,
        None => write!(f, "{}", candidate.address.ip())?,
    }
    write!(
        f,
        " {} typ {}",
        candidate.address.port(),
        candidate.candidate_type.sdp_name(),
    )?;
    if let Some(related) = candidate.related_address {
        write!(f, " raddr {} rport {}", related.ip(), related.port())?;
    }
    if let Some(tcp_type) = candidate.transport.tcp_type() {
        write!(f, " tcptype {}", tcp_type.sdp_name())?;
    }
    for (name, value) in candidate.extensions.as_slice() {
        write!(f, " {name} {value}")?;
    }
    Ok(())
}

/// The length in bytes of what [`write`] writes, without allocating.
pub(super) fn written_len(candidate: &Candidate) -> usize {
    written_len_with(candidate, None)
}

/// The length in bytes of what [`write_with`] writes, without allocating.
pub(super) fn written_len_with(candidate: &Candidate, name: Option<&HostName>) -> usize {
    struct Counter(usize);
    impl fmt::Write for Counter {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Counter never fails, and the values written have infallible Display impls.
    let _ = write_with(candidate, name, &mut counter);
    counter.0
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Parses 1 to `max_digits` ASCII digits (no sign, unlike `str::parse`).
fn parse_digits<T: std::str::FromStr>(text: &str, max_digits: usize) -> Option<T> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An IP address, or a host name. Text that cannot be a name (a `:`, `[` or `%`, which
/// only IPv6 addresses hold, or a last label of digits, as in `1.2.3.256`) is
/// [`CandidateParseError::BadAddress`]; other text that is no valid name is
/// [`CandidateParseError::BadHostName`].
fn parse_address(text: &str, field: &'static str) -> Result<Address, CandidateParseError> {
    if let Ok(ip) = text.parse() {
        return Ok(Address::Ip(ip));
    }
    let bad_address = || CandidateParseError::BadAddress {
        field,
        value: text.into(),
    };
    if text.contains([':', '[', ']', '%']) {
        return Err(bad_address());
    }
    match HostName::parse(text) {
        Ok(name) => Ok(Address::Name(name)),
        Err(HostNameError::NumericTopLabel) => Err(bad_address()),
        Err(error) => Err(CandidateParseError::BadHostName { field, error }),
    }
}

fn parse_port(text: &str, field: &'static str) -> Result<u16, CandidateParseError> {
    // Leading zeros are allowed by the grammar (port = 1*DIGIT), so the digit count is not
    // capped beyond the attribute's own length limit.
    parse_digits(text, MAX_CANDIDATE_LEN).ok_or_else(|| CandidateParseError::BadPort {
        field,
        value: text.into(),
    })
}

fn parse_candidate_type(text: &str) -> Option<CandidateType> {
    [
        CandidateType::Host,
        CandidateType::ServerReflexive,
        CandidateType::PeerReflexive,
        CandidateType::Relayed,
    ]
    .into_iter()
    .find(|t| text.eq_ignore_ascii_case(t.sdp_name()))
}

fn parse_tcp_type(text: &str) -> Option<TcpType> {
    [TcpType::Active, TcpType::Passive, TcpType::So]
        .into_iter()
        .find(|t| text.eq_ignore_ascii_case(t.sdp_name()))
}

fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    field: &'static str,
) -> Result<(), CandidateParseError> {
    if slot.is_some() {
        return Err(CandidateParseError::DuplicateField(field));
    }
    *slot = Some(value);
    Ok(())
}

/// True for a name in the mDNS `.local` domain (RFC 6762).
fn is_mdns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.len() > ".local".len()
        && name
            .get(name.len() - ".local".len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".local"))
}
