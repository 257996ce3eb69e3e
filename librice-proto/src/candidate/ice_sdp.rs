//! The ICE attributes of an SDP description (RFC 8839 §5, RFC 8840): reading them out of a
//! media section, or out of a whole description with session-level defaults, and writing
//! them back as canonical `a=` lines.
//!
//! | attribute | level | here |
//! |---|---|---|
//! | `a=ice-ufrag`, `a=ice-pwd` (RFC 8839 §5.4) | session or media; media wins | [`IceSdp::credentials`] |
//! | `a=ice-options` (RFC 8839 §5.6) | session or media; media wins | [`IceSdp::options`] |
//! | `a=ice-lite` (RFC 8839 §5.3) | session | [`IceSdp::is_lite`] |
//! | `a=ice-pacing` (RFC 8839 §5.5) | session | [`IceSdp::pacing_ms`] |
//! | `a=candidate` (RFC 8839 §5.1) | media | [`IceSdp::candidates`], [`IceSdp::unresolved_candidates`] |
//! | `a=end-of-candidates` (RFC 8840) | session or media | [`IceSdp::end_of_candidates`] |
//!
//! Reading is liberal where real agents differ: lines end in `\r\n` or `\n`, surrounding
//! whitespace is ignored, attribute names are matched without regard to case, lines that are
//! not ICE attributes are skipped, and `ice-lite`/`ice-pacing` are accepted in a media
//! section too. It is strict where a mistake would change the meaning: a duplicate
//! `ice-ufrag`, `ice-pwd` or `ice-pacing`, a credential that is not 4 (22) to 256 ice-chars,
//! an `ice-options` tag that is not ice-chars and a `candidate` line that
//! [`Candidate::parse`] rejects are errors naming the line (1-based, in the text given).
//!
//! Candidates whose address is a host name, such as the mDNS `.local` names browsers write
//! to hide local addresses, are not errors: RFC 8839 §5.1 has an agent ignore the lines it
//! cannot use rather than the description, so they are kept as text, with the rest of the
//! line checked, in [`IceSdp::unresolved_candidates`]. [`UnresolvedCandidate::named`]
//! gives the [`NamedCandidate`] for the agent to resolve; a caller that resolves the name
//! itself makes a [`Candidate`] with [`UnresolvedCandidate::resolve`].
//! [`IceSdp::add_named_candidate`] adds a local one for writing.
//!
//! Writing is canonical: `\r\n` line ends, session-level lines first (`ice-lite`,
//! `ice-pacing`), then `ice-ufrag`, `ice-pwd`, one `ice-options` line, the candidates, the
//! unresolved candidates and `end-of-candidates`. What [`IceSdp::parse_media_section`]
//! returns writes text that parses back to an equal value.
//!
//! Hostile input cannot make memory grow without limit: a text longer than [`MAX_SDP_LEN`]
//! bytes is refused before it is read; a section holds at most [`MAX_SDP_CANDIDATES`]
//! candidates (resolved and unresolved together) and [`MAX_ICE_OPTIONS`] option tags of at
//! most [`MAX_ICE_OPTION_LEN`] characters; a description holds at most
//! [`MAX_MEDIA_SECTIONS`] media sections; a candidate line is at most
//! [`MAX_CANDIDATE_LEN`](super::MAX_CANDIDATE_LEN) bytes.
//!
//! ```
//! use librice_proto::candidate::{IceOption, IceSdp};
//!
//! let section = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
//!                c=IN IP4 0.0.0.0\r\n\
//!                a=candidate:1 1 udp 2113937151 192.0.2.2 47863 typ host generation 0\r\n\
//!                a=ice-ufrag:mRiu\r\n\
//!                a=ice-pwd:ZYk+A4tU1+SIn/Noew86iRzG\r\n\
//!                a=ice-options:trickle\r\n\
//!                a=mid:0\r\n";
//! let ice = IceSdp::parse_media_section(section).unwrap();
//! assert_eq!(ice.credentials().ufrag(), "mRiu");
//! assert_eq!(ice.options(), &[IceOption::Trickle]);
//! assert_eq!(ice.candidates().len(), 1);
//! assert_eq!(
//!     ice.write(),
//!     "a=ice-ufrag:mRiu\r\n\
//!      a=ice-pwd:ZYk+A4tU1+SIn/Noew86iRzG\r\n\
//!      a=ice-options:trickle\r\n\
//!      a=candidate:1 1 UDP 2113937151 192.0.2.2 47863 typ host generation 0\r\n"
//! );
//! assert_eq!(IceSdp::parse_media_section(&ice.write()).unwrap(), ice);
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    Candidate, CandidateParseError, IceCredentialError, IceCredentials, NamedCandidate,
    is_ice_char, validate_pwd, validate_ufrag,
};
use crate::agent::ComponentId;

/// The longest text [`IceSdp::parse_media_section`] and [`IceSdp::parse_description`] read,
/// in bytes (256 KiB): longer input is refused before it is looked at.
///
/// ```
/// use librice_proto::candidate::{IceSdp, IceSdpError, MAX_SDP_LEN};
///
/// let huge = "a=x\n".repeat(MAX_SDP_LEN / 4 + 1);
/// assert!(matches!(IceSdp::parse_media_section(&huge), Err(IceSdpError::TooLong { .. })));
/// ```
pub const MAX_SDP_LEN: usize = 256 * 1024;

/// The most candidates one media section may hold, resolved and unresolved together.
///
/// ```
/// use librice_proto::candidate::{Candidate, IceCredentials, IceSdp, MAX_SDP_CANDIDATES};
///
/// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
/// let c = Candidate::parse("candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host").unwrap();
/// for _ in 0..MAX_SDP_CANDIDATES {
///     ice.add_candidate(c.clone()).unwrap();
/// }
/// assert!(ice.add_candidate(c).is_err());
/// ```
pub const MAX_SDP_CANDIDATES: usize = 256;

/// The most distinct `ice-options` tags one media section may hold.
///
/// ```
/// use librice_proto::candidate::{IceCredentials, IceOption, IceSdp, MAX_ICE_OPTIONS};
///
/// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
/// for i in 0..MAX_ICE_OPTIONS {
///     ice.add_option(IceOption::Other(format!("x{i}"))).unwrap();
/// }
/// assert!(ice.add_option(IceOption::Trickle).is_err());
/// ```
pub const MAX_ICE_OPTIONS: usize = 32;

/// The longest `ice-options` tag accepted, in characters (RFC 8839 §5.6 sets no limit; real
/// tags are a few characters long).
///
/// ```
/// use librice_proto::candidate::{IceOption, MAX_ICE_OPTION_LEN};
///
/// assert!(IceOption::parse(&"a".repeat(MAX_ICE_OPTION_LEN)).is_ok());
/// assert!(IceOption::parse(&"a".repeat(MAX_ICE_OPTION_LEN + 1)).is_err());
/// ```
pub const MAX_ICE_OPTION_LEN: usize = 64;

/// The most media sections [`IceSdp::parse_description`] reads.
///
/// ```
/// use librice_proto::candidate::{IceSdp, MAX_MEDIA_SECTIONS};
///
/// let sdp = "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n".to_owned()
///     + &"m=audio 9 RTP/AVP 0\n".repeat(MAX_MEDIA_SECTIONS + 1);
/// assert!(IceSdp::parse_description(&sdp).is_err());
/// ```
pub const MAX_MEDIA_SECTIONS: usize = 256;

/// The longest `ice-pacing` value: 10 digits (RFC 8839 §5.5: `pacing-value = 1*10DIGIT`).
///
/// ```
/// use librice_proto::candidate::MAX_ICE_PACING_MS;
///
/// assert_eq!(MAX_ICE_PACING_MS, 9_999_999_999);
/// ```
pub const MAX_ICE_PACING_MS: u64 = 9_999_999_999;

/// The pacing an agent assumes when the peer sends no `ice-pacing`: 50 ms
/// (RFC 8839 §5.5, RFC 8445 §14.2).
///
/// ```
/// use librice_proto::candidate::{DEFAULT_ICE_PACING_MS, IceCredentials, IceSdp};
///
/// let ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
/// assert_eq!(ice.pacing_ms().unwrap_or(DEFAULT_ICE_PACING_MS), 50);
/// ```
pub const DEFAULT_ICE_PACING_MS: u64 = 50;

/// One `ice-options` tag (RFC 8839 §5.6: `ice-option-tag = 1*ice-char`).
///
/// The tags this library knows get their own variants; any other is kept as
/// [`IceOption::Other`], so that a description can be passed on unchanged. Tags are compared
/// exactly, as written.
///
/// ```
/// use librice_proto::candidate::IceOption;
///
/// assert_eq!(IceOption::parse("trickle").unwrap(), IceOption::Trickle);
/// assert_eq!(IceOption::parse("ice2").unwrap(), IceOption::Other("ice2".into()));
/// assert_eq!(IceOption::Renomination.to_string(), "renomination");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IceOption {
    /// `trickle`: the agent trickles candidates (RFC 8840 §4.1, RFC 8838).
    Trickle,
    /// `renomination`: the controlling agent may nominate again
    /// (draft-thatcher-ice-renomination).
    Renomination,
    /// Any other tag: 1 to [`MAX_ICE_OPTION_LEN`] ice-chars. [`IceOption::parse`] and
    /// [`IceSdp::add_option`] turn `Other("trickle")` into [`IceOption::Trickle`].
    Other(String),
}

impl IceOption {
    /// Reads one tag: 1 to [`MAX_ICE_OPTION_LEN`] ice-chars (RFC 8839 §5.6).
    ///
    /// ```
    /// use librice_proto::candidate::IceOption;
    ///
    /// assert_eq!(IceOption::parse("renomination").unwrap(), IceOption::Renomination);
    /// assert!(IceOption::parse("not-ice-chars").is_err());
    /// assert!(IceOption::parse("").is_err());
    /// ```
    pub fn parse(tag: &str) -> Result<IceOption, IceSdpError> {
        parse_option(tag, None)
    }

    /// The tag as written in SDP.
    ///
    /// ```
    /// use librice_proto::candidate::IceOption;
    ///
    /// assert_eq!(IceOption::Trickle.as_str(), "trickle");
    /// assert_eq!(IceOption::Other("rtp+ecn".into()).as_str(), "rtp+ecn");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Self::Trickle => "trickle",
            Self::Renomination => "renomination",
            Self::Other(tag) => tag,
        }
    }
}

impl fmt::Display for IceOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `candidate` line whose address (or `raddr`) is a host name, such as an mDNS `.local`
/// name, kept as text because this library resolves no names (see
/// [`CandidateParseError::HostnameNotSupported`]).
///
/// Every other field of the line has been checked as [`Candidate::parse`] checks it, so
/// [`Self::resolve`] with an address makes a [`Candidate`].
///
/// ```
/// use librice_proto::candidate::IceSdp;
///
/// let ice = IceSdp::parse_media_section(
///     "a=ice-ufrag:UdIt\n\
///      a=ice-pwd:tExgjXL+nKALZ/JeYZ1cywdR\n\
///      a=candidate:3899341712 1 udp 2113937151 0df9e7e0-7cba-402d-bad5-fd71defabba6.local 47373 typ host generation 0\n",
/// ).unwrap();
/// assert!(ice.candidates().is_empty());
/// let unresolved = &ice.unresolved_candidates()[0];
/// assert_eq!(unresolved.hostname(), "0df9e7e0-7cba-402d-bad5-fd71defabba6.local");
/// assert_eq!(unresolved.component(), librice_proto::agent::ComponentId::RTP);
/// let candidate = unresolved.resolve("192.0.2.2".parse().unwrap()).unwrap();
/// assert_eq!(candidate.address(), "192.0.2.2:47373".parse().unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnresolvedCandidate {
    /// `candidate:` and the fields, separated by single spaces.
    attribute: String,
    /// The first host name: the connection address's, else `raddr`'s.
    hostname: String,
    component: ComponentId,
}

impl UnresolvedCandidate {
    /// The attribute value, without `a=`: `candidate:` and the fields of the line, separated
    /// by single spaces.
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1  1 udp 5 peer.local 9 typ host\n",
    /// ).unwrap();
    /// assert_eq!(ice.unresolved_candidates()[0].attribute(), "candidate:1 1 udp 5 peer.local 9 typ host");
    /// ```
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// The host name of the connection address or, if that is an IP address, of `raddr`.
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1 1 udp 5 peer.local 9 typ host\n",
    /// ).unwrap();
    /// assert_eq!(ice.unresolved_candidates()[0].hostname(), "peer.local");
    /// ```
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The component id, 1..=256.
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1 2 udp 5 peer.local 9 typ host\n",
    /// ).unwrap();
    /// assert_eq!(ice.unresolved_candidates()[0].component().get(), 2);
    /// ```
    pub fn component(&self) -> ComponentId {
        self.component
    }

    /// The line as a [`NamedCandidate`], for the agent to resolve
    /// ([`StreamMut::add_remote_named_candidate`](crate::agent::StreamMut::add_remote_named_candidate)),
    /// or `None` when only `raddr` is a host name (then [`Self::resolve`] with any address
    /// of the family gives the candidate).
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1 1 udp 5 peer.local 9 typ host\n",
    /// ).unwrap();
    /// let named = ice.unresolved_candidates()[0].named().unwrap();
    /// assert_eq!(named.name().as_str(), "peer.local");
    /// assert_eq!(named.to_string(), "candidate:1 1 UDP 5 peer.local 9 typ host");
    /// ```
    pub fn named(&self) -> Option<NamedCandidate> {
        NamedCandidate::parse(&self.attribute).ok()
    }

    /// The candidate with its host names replaced: the connection address's by `address`,
    /// a `raddr` name by the unspecified address of `address`'s family, as
    /// privacy-preserving agents write it (RFC 8839 §5.1). An IP address stays as it is.
    ///
    /// Fails only if the candidate, written with `address`, would be longer than
    /// [`MAX_CANDIDATE_LEN`](super::MAX_CANDIDATE_LEN).
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1 1 udp 5 peer.local 9 typ host\n",
    /// ).unwrap();
    /// let c = ice.unresolved_candidates()[0].resolve("fd00::2".parse().unwrap()).unwrap();
    /// assert_eq!(c.to_string(), "candidate:1 1 UDP 5 fd00::2 9 typ host");
    /// ```
    pub fn resolve(&self, address: IpAddr) -> Result<Candidate, CandidateParseError> {
        let unspecified = match address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
        .to_string();
        let address = address.to_string();
        let mut words: Vec<&str> = candidate_words(&self.attribute).collect();
        if let Some(word) = words.get_mut(ADDRESS_WORD)
            && word.parse::<IpAddr>().is_err()
        {
            *word = &address;
        }
        if let Some(index) = raddr_value_index(&words)
            && words[index].parse::<IpAddr>().is_err()
        {
            words[index] = &unspecified;
        }
        Candidate::parse(&words.join(" "))
    }
}

/// The ICE attributes of one media section, with the session-level ones that apply to it.
///
/// Made by [`IceSdp::parse_media_section`] or [`IceSdp::parse_description`] from a peer's
/// description, or by [`IceSdp::new`] and the setters for a local one; written with
/// [`IceSdp::write`] (or [`IceSdp::write_session`] and [`IceSdp::write_media`] when the
/// two levels go to different places).
///
/// ```
/// use librice_proto::candidate::{Candidate, IceCredentials, IceOption, IceSdp};
///
/// let credentials = IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap();
/// let mut ice = IceSdp::new(credentials.clone());
/// ice.add_option(IceOption::Trickle).unwrap();
/// ice.add_candidate(Candidate::parse("candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host").unwrap())
///     .unwrap();
/// ice.set_end_of_candidates(true);
/// let text = ice.write();
/// assert_eq!(
///     text,
///     "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=ice-options:trickle\r\n\
///      a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n"
/// );
/// let read = IceSdp::parse_media_section(&text).unwrap();
/// assert_eq!(read, ice);
/// assert_eq!(IceCredentials::from(read), credentials);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceSdp {
    credentials: IceCredentials,
    options: Vec<IceOption>,
    lite: bool,
    pacing_ms: Option<u64>,
    candidates: Vec<Candidate>,
    unresolved: Vec<UnresolvedCandidate>,
    end_of_candidates: bool,
}

impl IceSdp {
    /// ICE attributes with these credentials and nothing else: no options, full (not lite)
    /// ICE, no pacing, no candidates, candidates not ended.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// assert_eq!(ice.write(), "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n");
    /// ```
    pub fn new(credentials: IceCredentials) -> Self {
        Self {
            credentials,
            options: Vec::new(),
            lite: false,
            pacing_ms: None,
            candidates: Vec::new(),
            unresolved: Vec::new(),
            end_of_candidates: false,
        }
    }

    /// Reads the ICE attributes of one media section: its lines, from the `m=` line (which
    /// may be left out) to the next one. Lines that are not ICE attributes are skipped;
    /// `ice-lite` and `ice-pacing`, session-level attributes (RFC 8839 §5.3, §5.5), are read
    /// here too, for signalling that carries one section alone. The section must have an
    /// `ice-ufrag` and an `ice-pwd` (RFC 8839 §5.4); use [`Self::parse_description`] when they
    /// may be at session level.
    ///
    /// ```
    /// use librice_proto::candidate::{IceSdp, IceSdpError};
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "m=application 47875 ICE/SDP\nc=IN IP4 127.0.0.1\n\
    ///      a=ice-ufrag:O1Km\na=ice-pwd:iQYM6C8e6ygk87JwQeueA7\n\
    ///      a=candidate:1 1 UDP 2015364095 127.0.0.1 39521 typ host\n",
    /// ).unwrap();
    /// assert_eq!(ice.credentials().pwd(), "iQYM6C8e6ygk87JwQeueA7");
    ///
    /// let err = IceSdp::parse_media_section("a=ice-ufrag:O1Km\n").unwrap_err();
    /// assert_eq!(err, IceSdpError::MissingPwd { section_line: None });
    /// ```
    pub fn parse_media_section(text: &str) -> Result<IceSdp, IceSdpError> {
        check_len(text)?;
        let mut scope = Scope::default();
        let mut section_line = None;
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = line.trim_ascii();
            if line.starts_with("m=") {
                if section_line.is_some() {
                    return Err(IceSdpError::NotOneMediaSection { line: number });
                }
                section_line = Some(number);
                continue;
            }
            scope.read_line(line, number, Level::Media)?;
        }
        scope.into_ice(&Scope::default(), section_line)
    }

    /// Reads the ICE attributes of every media section of a whole description, in order.
    ///
    /// The lines before the first `m=` line are the session level. There `ice-ufrag`,
    /// `ice-pwd` and `ice-options` are defaults for the sections that lack them (RFC 8839
    /// §5.4, §5.6: the media-level value wins), `ice-lite` and `end-of-candidates` apply to
    /// every section (RFC 8839 §5.3, RFC 8840), and `ice-pacing` to every section that does
    /// not set its own (RFC 8839 §5.5). A `candidate` line there is an error (RFC 8839 §5.1:
    /// media level only). Each section must end up with an `ice-ufrag` and an `ice-pwd`.
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    ///            a=ice-lite\r\na=ice-ufrag:sess\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n\
    ///            m=audio 9 RTP/AVP 0\r\na=candidate:1 1 UDP 5 192.0.2.1 5000 typ host\r\n\
    ///            m=video 9 RTP/AVP 96\r\na=ice-ufrag:vide\r\n";
    /// let sections = IceSdp::parse_description(sdp).unwrap();
    /// assert_eq!(sections.len(), 2);
    /// assert!(sections.iter().all(|s| s.is_lite()));
    /// assert_eq!(sections[0].credentials().ufrag(), "sess");
    /// assert_eq!(sections[1].credentials().ufrag(), "vide");
    /// assert_eq!(sections[1].credentials().pwd(), "abcdefghijklmnopqrstuv");
    /// ```
    pub fn parse_description(text: &str) -> Result<Vec<IceSdp>, IceSdpError> {
        check_len(text)?;
        let mut session = Scope::default();
        let mut sections = Vec::new();
        let mut current: Option<(usize, Scope)> = None;
        for (index, line) in text.split('\n').enumerate() {
            let number = index + 1;
            let line = line.trim_ascii();
            if line.starts_with("m=") {
                if let Some((section_line, scope)) = current.take() {
                    sections.push(scope.into_ice(&session, Some(section_line))?);
                }
                if sections.len() == MAX_MEDIA_SECTIONS {
                    return Err(IceSdpError::TooManyMediaSections { line: number });
                }
                current = Some((number, Scope::default()));
                continue;
            }
            match current.as_mut() {
                Some((_, scope)) => scope.read_line(line, number, Level::Media)?,
                None => session.read_line(line, number, Level::Session)?,
            }
        }
        if let Some((section_line, scope)) = current {
            sections.push(scope.into_ice(&session, Some(section_line))?);
        }
        Ok(sections)
    }

    /// The `ice-ufrag` and `ice-pwd` (RFC 8839 §5.4).
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// assert_eq!(ice.credentials().ufrag(), "abcd");
    /// ```
    pub fn credentials(&self) -> &IceCredentials {
        &self.credentials
    }

    /// Replaces the credentials (an ICE restart changes them, RFC 8839 §4.4.1.1.1).
    ///
    /// When sending, RFC 8839 §5.4 keeps an `ice-ufrag` to at most 32 characters; the
    /// credentials [`IceCredentials::generate`] makes are shorter.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.set_credentials(IceCredentials::new("wxyz", "ABCDEFGHIJKLMNOPQRSTUV").unwrap());
    /// assert_eq!(ice.credentials().ufrag(), "wxyz");
    /// ```
    pub fn set_credentials(&mut self, credentials: IceCredentials) {
        self.credentials = credentials;
    }

    /// The `ice-options` tags, each once, in the order first read or added (RFC 8839 §5.6).
    ///
    /// ```
    /// use librice_proto::candidate::{IceOption, IceSdp};
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\na=ice-options:trickle ice2 trickle\n",
    /// ).unwrap();
    /// assert_eq!(ice.options(), &[IceOption::Trickle, IceOption::Other("ice2".into())]);
    /// ```
    pub fn options(&self) -> &[IceOption] {
        &self.options
    }

    /// True if `option` is among [`Self::options`].
    ///
    /// ```
    /// use librice_proto::candidate::{IceOption, IceSdp};
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\na=ice-options:trickle\n",
    /// ).unwrap();
    /// assert!(ice.has_option(&IceOption::Trickle));
    /// assert!(!ice.has_option(&IceOption::Renomination));
    /// ```
    pub fn has_option(&self, option: &IceOption) -> bool {
        self.options.iter().any(|o| o.as_str() == option.as_str())
    }

    /// Adds an `ice-options` tag, unless it is there already. Fails if an
    /// [`IceOption::Other`] tag is not 1 to [`MAX_ICE_OPTION_LEN`] ice-chars, or if
    /// [`MAX_ICE_OPTIONS`] tags are there already.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceOption, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.add_option(IceOption::Other("trickle".into())).unwrap();
    /// ice.add_option(IceOption::Trickle).unwrap();
    /// assert_eq!(ice.options(), &[IceOption::Trickle]);
    /// assert!(ice.add_option(IceOption::Other("no spaces".into())).is_err());
    /// ```
    pub fn add_option(&mut self, option: IceOption) -> Result<(), IceSdpError> {
        let option = parse_option(option.as_str(), None)?;
        self.push_option(option, None)
    }

    /// True if the agent is a lite implementation: `a=ice-lite` (RFC 8839 §5.3).
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-lite\na=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n",
    /// ).unwrap();
    /// assert!(ice.is_lite());
    /// ```
    pub fn is_lite(&self) -> bool {
        self.lite
    }

    /// Sets whether `a=ice-lite` is written.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.set_lite(true);
    /// assert_eq!(ice.write_session(), "a=ice-lite\r\n");
    /// ```
    pub fn set_lite(&mut self, lite: bool) {
        self.lite = lite;
    }

    /// The `ice-pacing` in milliseconds, if given (RFC 8839 §5.5). Without it an agent
    /// assumes [`DEFAULT_ICE_PACING_MS`]; once both agents have given one, both use the
    /// larger (RFC 8445 §14.2).
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-pacing:0020\na=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n",
    /// ).unwrap();
    /// assert_eq!(ice.pacing_ms(), Some(20));
    /// ```
    pub fn pacing_ms(&self) -> Option<u64> {
        self.pacing_ms
    }

    /// Sets or clears the `ice-pacing`, in milliseconds; at most [`MAX_ICE_PACING_MS`]
    /// (RFC 8839 §5.5: 1 to 10 digits).
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.set_pacing_ms(Some(50)).unwrap();
    /// assert_eq!(ice.write_session(), "a=ice-pacing:50\r\n");
    /// assert!(ice.set_pacing_ms(Some(10_000_000_000)).is_err());
    /// ```
    pub fn set_pacing_ms(&mut self, pacing_ms: Option<u64>) -> Result<(), IceSdpError> {
        if let Some(ms) = pacing_ms.filter(|&ms| ms > MAX_ICE_PACING_MS) {
            return Err(IceSdpError::InvalidPacing {
                line: None,
                value: ms.to_string(),
            });
        }
        self.pacing_ms = pacing_ms;
        Ok(())
    }

    /// The candidates (RFC 8839 §5.1), in the order read or added.
    ///
    /// ```
    /// use librice_proto::candidate::{CandidateType, IceSdp};
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1 1 UDP 2015364095 127.0.0.1 39521 typ host\n",
    /// ).unwrap();
    /// assert_eq!(ice.candidates()[0].candidate_type(), CandidateType::Host);
    /// ```
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Adds a candidate. Fails if the section holds [`MAX_SDP_CANDIDATES`] already.
    ///
    /// ```
    /// use librice_proto::candidate::{Candidate, IceCredentials, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.add_candidate(Candidate::parse("candidate:1 1 UDP 5 192.0.2.1 9 typ host").unwrap()).unwrap();
    /// assert_eq!(ice.candidates().len(), 1);
    /// ```
    pub fn add_candidate(&mut self, candidate: Candidate) -> Result<(), IceSdpError> {
        self.check_candidate_room(None)?;
        self.candidates.push(candidate);
        Ok(())
    }

    /// Adds a candidate whose address is a host name, such as the agent's hidden host
    /// candidates ([`AgentEvent::LocalNamedCandidate`](crate::agent::AgentEvent::LocalNamedCandidate)),
    /// to [`Self::unresolved_candidates`]; it is written with the other candidates.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp, NamedCandidate};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// let named = NamedCandidate::parse("candidate:1 1 UDP 5 peer.local 9 typ host").unwrap();
    /// ice.add_named_candidate(named.clone()).unwrap();
    /// let back = IceSdp::parse_media_section(&ice.write()).unwrap();
    /// assert_eq!(back.unresolved_candidates()[0].named(), Some(named));
    /// ```
    pub fn add_named_candidate(&mut self, candidate: NamedCandidate) -> Result<(), IceSdpError> {
        self.check_candidate_room(None)?;
        self.unresolved.push(UnresolvedCandidate {
            attribute: candidate.to_string(),
            hostname: candidate.name().as_str().to_owned(),
            component: candidate.component(),
        });
        Ok(())
    }

    /// The candidates whose address is a host name, kept as text (see
    /// [`UnresolvedCandidate`]).
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
    ///      a=candidate:1 1 udp 5 peer.local 9 typ host\n",
    /// ).unwrap();
    /// assert_eq!(ice.unresolved_candidates().len(), 1);
    /// ```
    pub fn unresolved_candidates(&self) -> &[UnresolvedCandidate] {
        &self.unresolved
    }

    /// True if the agent will send no more candidates: `a=end-of-candidates` (RFC 8840).
    ///
    /// ```
    /// use librice_proto::candidate::IceSdp;
    ///
    /// let ice = IceSdp::parse_media_section(
    ///     "a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\na=end-of-candidates\n",
    /// ).unwrap();
    /// assert!(ice.end_of_candidates());
    /// ```
    pub fn end_of_candidates(&self) -> bool {
        self.end_of_candidates
    }

    /// Sets whether `a=end-of-candidates` is written.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.set_end_of_candidates(true);
    /// assert!(ice.write_media().ends_with("a=end-of-candidates\r\n"));
    /// ```
    pub fn set_end_of_candidates(&mut self, end_of_candidates: bool) {
        self.end_of_candidates = end_of_candidates;
    }

    /// Writes every attribute: [`Self::write_session`] then [`Self::write_media`]. Suits
    /// signalling that carries one section alone; in a full description the session-level
    /// lines belong before the first `m=` line.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let mut ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// ice.set_lite(true);
    /// assert_eq!(ice.write(), "a=ice-lite\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n");
    /// ```
    pub fn write(&self) -> String {
        let mut out = self.write_session();
        out.push_str(&self.write_media());
        out
    }

    /// Writes the session-level attributes: `a=ice-lite` (RFC 8839 §5.3) and
    /// `a=ice-pacing` (RFC 8839 §5.5), each if set, with `\r\n` line ends.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// assert_eq!(ice.write_session(), "");
    /// ```
    pub fn write_session(&self) -> String {
        let mut out = String::new();
        if self.lite {
            out.push_str("a=ice-lite\r\n");
        }
        if let Some(ms) = self.pacing_ms {
            out.push_str(&format!("a=ice-pacing:{ms}\r\n"));
        }
        out
    }

    /// Writes the media-level attributes, with `\r\n` line ends: `a=ice-ufrag`, `a=ice-pwd`
    /// (RFC 8839 §5.4), `a=ice-options` if any (§5.6), the candidates (§5.1), the unresolved
    /// candidates and `a=end-of-candidates` if set (RFC 8840).
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let ice = IceSdp::new(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// assert_eq!(ice.write_media(), "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n");
    /// ```
    pub fn write_media(&self) -> String {
        let mut out = format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            self.credentials.ufrag(),
            self.credentials.pwd()
        );
        if !self.options.is_empty() {
            out.push_str("a=ice-options:");
            for (i, option) in self.options.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(option.as_str());
            }
            out.push_str("\r\n");
        }
        for candidate in &self.candidates {
            out.push_str(&format!("a={candidate}\r\n"));
        }
        for unresolved in &self.unresolved {
            out.push_str(&format!("a={}\r\n", unresolved.attribute));
        }
        if self.end_of_candidates {
            out.push_str("a=end-of-candidates\r\n");
        }
        out
    }

    fn check_candidate_room(&self, line: Option<usize>) -> Result<(), IceSdpError> {
        if self.candidates.len() + self.unresolved.len() >= MAX_SDP_CANDIDATES {
            return Err(IceSdpError::TooManyCandidates { line });
        }
        Ok(())
    }

    fn push_option(&mut self, option: IceOption, line: Option<usize>) -> Result<(), IceSdpError> {
        push_option(&mut self.options, option, line)
    }
}

impl From<IceCredentials> for IceSdp {
    /// [`IceSdp::new`].
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let ice = IceSdp::from(IceCredentials::new("abcd", "abcdefghijklmnopqrstuv").unwrap());
    /// assert!(ice.candidates().is_empty());
    /// ```
    fn from(credentials: IceCredentials) -> Self {
        Self::new(credentials)
    }
}

impl From<IceSdp> for IceCredentials {
    /// The credentials, dropping the rest.
    ///
    /// ```
    /// use librice_proto::candidate::{IceCredentials, IceSdp};
    ///
    /// let ice = IceSdp::parse_media_section("a=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n").unwrap();
    /// assert_eq!(IceCredentials::from(ice).ufrag(), "abcd");
    /// ```
    fn from(ice: IceSdp) -> Self {
        ice.credentials
    }
}

/// Why SDP text does not hold the ICE attributes this library accepts, or why a value
/// cannot be added to an [`IceSdp`].
///
/// `line` fields count from 1 in the text given; they are `None` for values given to a
/// setter. Errors about a credential name its length or bad character, never the password.
///
/// ```
/// use librice_proto::candidate::{IceSdp, IceSdpError};
///
/// let err = IceSdp::parse_media_section("a=ice-ufrag:abcd\na=ice-ufrag:efgh\n").unwrap_err();
/// assert_eq!(err, IceSdpError::Duplicate { attribute: "ice-ufrag", line: 2 });
/// assert_eq!(err.to_string(), "line 2: a second a=ice-ufrag in the same section");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceSdpError {
    /// The text is longer than [`MAX_SDP_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// [`IceSdp::parse_media_section`] found a second `m=` line.
    NotOneMediaSection {
        /// The second `m=` line.
        line: usize,
    },
    /// [`IceSdp::parse_description`] found more than [`MAX_MEDIA_SECTIONS`] media sections.
    TooManyMediaSections {
        /// The first `m=` line past the limit.
        line: usize,
    },
    /// A media section has no `ice-ufrag`, nor does the session level (RFC 8839 §5.4).
    MissingUfrag {
        /// The section's `m=` line, if the text had one.
        section_line: Option<usize>,
    },
    /// A media section has no `ice-pwd`, nor does the session level (RFC 8839 §5.4).
    MissingPwd {
        /// The section's `m=` line, if the text had one.
        section_line: Option<usize>,
    },
    /// `ice-ufrag`, `ice-pwd` or `ice-pacing` appears twice at one level.
    Duplicate {
        /// The attribute's name.
        attribute: &'static str,
        /// The second occurrence.
        line: usize,
    },
    /// An `ice-ufrag` or `ice-pwd` is not 4 (22) to 256 ice-chars (RFC 8839 §5.4); the
    /// details are in [`source`](std::error::Error::source).
    InvalidCredential {
        /// The line.
        line: usize,
        /// What is wrong with it.
        error: IceCredentialError,
    },
    /// A `candidate` line does not parse (RFC 8839 §5.1); the details are in
    /// [`source`](std::error::Error::source). Lines with a host name for an address are
    /// not errors: see [`UnresolvedCandidate`].
    BadCandidate {
        /// The line.
        line: usize,
        /// What is wrong with it.
        error: CandidateParseError,
    },
    /// A `candidate` line at session level (RFC 8839 §5.1: media level only).
    CandidateAtSessionLevel {
        /// The line.
        line: usize,
    },
    /// A section would hold more than [`MAX_SDP_CANDIDATES`] candidates.
    TooManyCandidates {
        /// The first candidate line past the limit.
        line: Option<usize>,
    },
    /// An `ice-options` tag is not 1 to [`MAX_ICE_OPTION_LEN`] ice-chars (RFC 8839 §5.6),
    /// or the attribute has no tag.
    InvalidIceOption {
        /// The line.
        line: Option<usize>,
        /// The tag, cut to [`MAX_ICE_OPTION_LEN`] bytes.
        option: String,
    },
    /// A section would hold more than [`MAX_ICE_OPTIONS`] distinct tags.
    TooManyIceOptions {
        /// The line.
        line: Option<usize>,
    },
    /// An `ice-pacing` value is not 1 to 10 digits (RFC 8839 §5.5).
    InvalidPacing {
        /// The line.
        line: Option<usize>,
        /// The value, cut to 16 bytes.
        value: String,
    },
}

impl fmt::Display for IceSdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |f: &mut fmt::Formatter<'_>, line: &Option<usize>| match line {
            Some(line) => write!(f, "line {line}: "),
            None => Ok(()),
        };
        match self {
            Self::TooLong { len } => write!(
                f,
                "SDP text of {len} bytes is longer than the {MAX_SDP_LEN}-byte limit"
            ),
            Self::NotOneMediaSection { line } => {
                write!(f, "line {line}: a second m= line; a media section has one")
            }
            Self::TooManyMediaSections { line } => write!(
                f,
                "line {line}: more than {MAX_MEDIA_SECTIONS} media sections"
            ),
            Self::MissingUfrag { section_line } => {
                write!(f, "no a=ice-ufrag")?;
                section_suffix(f, *section_line)
            }
            Self::MissingPwd { section_line } => {
                write!(f, "no a=ice-pwd")?;
                section_suffix(f, *section_line)
            }
            Self::Duplicate { attribute, line } => {
                write!(f, "line {line}: a second a={attribute} in the same section")
            }
            Self::InvalidCredential { line, error } => {
                let attribute = match error {
                    IceCredentialError::TooShort { field, .. }
                    | IceCredentialError::TooLong { field, .. }
                    | IceCredentialError::InvalidChar { field, .. } => *field,
                };
                write!(f, "line {line}: invalid a={attribute}")
            }
            Self::BadCandidate { line, .. } => write!(f, "line {line}: bad a=candidate"),
            Self::CandidateAtSessionLevel { line } => write!(
                f,
                "line {line}: a=candidate before the first m= line; candidates are media-level"
            ),
            Self::TooManyCandidates { line } => {
                at(f, line)?;
                write!(
                    f,
                    "more than {MAX_SDP_CANDIDATES} candidates in one media section"
                )
            }
            Self::InvalidIceOption { line, option } => {
                at(f, line)?;
                write!(
                    f,
                    "ice-options tag {option:?} is not 1 to {MAX_ICE_OPTION_LEN} ice-chars (letters, digits, '+', '/')"
                )
            }
            Self::TooManyIceOptions { line } => {
                at(f, line)?;
                write!(f, "more than {MAX_ICE_OPTIONS} ice-options tags")
            }
            Self::InvalidPacing { line, value } => {
                at(f, line)?;
                write!(f, "ice-pacing {value:?} is not 1 to 10 digits")
            }
        }
    }
}

impl std::error::Error for IceSdpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidCredential { error, .. } => Some(error),
            Self::BadCandidate { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The index of the connection address among a candidate's words (after `candidate:`).
const ADDRESS_WORD: usize = 4;

/// Where an attribute may appear, for the checks that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Session,
    Media,
}

/// The ICE attributes read at one level, before session defaults are applied.
#[derive(Debug, Default)]
struct Scope {
    ufrag: Option<String>,
    pwd: Option<String>,
    /// `None` without any `ice-options` line, so that the session's apply.
    options: Option<Vec<IceOption>>,
    lite: bool,
    pacing_ms: Option<u64>,
    candidates: Vec<Candidate>,
    unresolved: Vec<UnresolvedCandidate>,
    end_of_candidates: bool,
}

impl Scope {
    /// Reads one trimmed line; lines that are not ICE attributes are skipped.
    fn read_line(&mut self, line: &str, number: usize, level: Level) -> Result<(), IceSdpError> {
        let Some(attribute) = line.strip_prefix("a=") else {
            return Ok(());
        };
        let (name, value) = match attribute.split_once(':') {
            Some((name, value)) => (name.trim_ascii(), Some(value.trim_ascii())),
            None => (attribute.trim_ascii(), None),
        };
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("ice-ufrag") {
            let value = value.unwrap_or("");
            validate_ufrag(value).map_err(|error| IceSdpError::InvalidCredential {
                line: number,
                error,
            })?;
            set_once(&mut self.ufrag, value.to_owned(), "ice-ufrag", number)
        } else if is("ice-pwd") {
            let value = value.unwrap_or("");
            validate_pwd(value).map_err(|error| IceSdpError::InvalidCredential {
                line: number,
                error,
            })?;
            set_once(&mut self.pwd, value.to_owned(), "ice-pwd", number)
        } else if is("ice-options") {
            self.read_options(value.unwrap_or(""), number)
        } else if is("ice-lite") {
            // RFC 8839 §5.3: a flag, session level; accepted in a section too.
            self.lite = true;
            Ok(())
        } else if is("ice-pacing") {
            let value = value.unwrap_or("");
            let ms = parse_pacing(value).ok_or_else(|| IceSdpError::InvalidPacing {
                line: Some(number),
                value: truncate(value, 16),
            })?;
            set_once(&mut self.pacing_ms, ms, "ice-pacing", number)
        } else if is("end-of-candidates") {
            self.end_of_candidates = true;
            Ok(())
        } else if is("candidate") {
            if level == Level::Session {
                // RFC 8839 §5.1: candidate is a media-level attribute.
                return Err(IceSdpError::CandidateAtSessionLevel { line: number });
            }
            self.read_candidate(line, number)
        } else {
            Ok(())
        }
    }

    /// RFC 8839 §5.6: `ice-options = "ice-options:" ice-option-tag *(SP ice-option-tag)`.
    /// Several lines add up; repeated tags count once.
    fn read_options(&mut self, value: &str, number: usize) -> Result<(), IceSdpError> {
        let options = self.options.get_or_insert_with(Vec::new);
        let mut tags = value.split_ascii_whitespace().peekable();
        if tags.peek().is_none() {
            return Err(IceSdpError::InvalidIceOption {
                line: Some(number),
                option: String::new(),
            });
        }
        for tag in tags {
            push_option(options, parse_option(tag, Some(number))?, Some(number))?;
        }
        Ok(())
    }

    fn read_candidate(&mut self, line: &str, number: usize) -> Result<(), IceSdpError> {
        if self.candidates.len() + self.unresolved.len() >= MAX_SDP_CANDIDATES {
            return Err(IceSdpError::TooManyCandidates { line: Some(number) });
        }
        match Candidate::parse(line) {
            Ok(candidate) => self.candidates.push(candidate),
            Err(CandidateParseError::HostnameNotSupported { .. }) => {
                let unresolved = unresolved(line).map_err(|error| IceSdpError::BadCandidate {
                    line: number,
                    error,
                })?;
                self.unresolved.push(unresolved);
            }
            Err(error) => {
                return Err(IceSdpError::BadCandidate {
                    line: number,
                    error,
                });
            }
        }
        Ok(())
    }

    /// The effective attributes of a media section (`self`) under `session`.
    fn into_ice(self, session: &Scope, section_line: Option<usize>) -> Result<IceSdp, IceSdpError> {
        // RFC 8839 §5.4: media-level credentials win; session-level ones are the default.
        let ufrag = self
            .ufrag
            .or_else(|| session.ufrag.clone())
            .ok_or(IceSdpError::MissingUfrag { section_line })?;
        let pwd = self
            .pwd
            .or_else(|| session.pwd.clone())
            .ok_or(IceSdpError::MissingPwd { section_line })?;
        let credentials = IceCredentials::new(ufrag, pwd)
            .expect("ice-ufrag and ice-pwd were validated when read");
        Ok(IceSdp {
            credentials,
            // RFC 8839 §5.6: session- and media-level; the media level wins.
            options: self
                .options
                .or_else(|| session.options.clone())
                .unwrap_or_default(),
            // RFC 8839 §5.3: a session-level ice-lite covers every section.
            lite: self.lite || session.lite,
            // RFC 8839 §5.5: session level.
            pacing_ms: self.pacing_ms.or(session.pacing_ms),
            candidates: self.candidates,
            unresolved: self.unresolved,
            // RFC 8840: at session level it ends the candidates of every section.
            end_of_candidates: self.end_of_candidates || session.end_of_candidates,
        })
    }
}

fn check_len(text: &str) -> Result<(), IceSdpError> {
    if text.len() > MAX_SDP_LEN {
        return Err(IceSdpError::TooLong { len: text.len() });
    }
    Ok(())
}

fn section_suffix(f: &mut fmt::Formatter<'_>, section_line: Option<usize>) -> fmt::Result {
    match section_line {
        Some(line) => write!(
            f,
            " in the media section of line {line}, nor at session level"
        ),
        None => write!(f, " in the media section"),
    }
}

fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    attribute: &'static str,
    line: usize,
) -> Result<(), IceSdpError> {
    if slot.is_some() {
        return Err(IceSdpError::Duplicate { attribute, line });
    }
    *slot = Some(value);
    Ok(())
}

/// RFC 8839 §5.6: `ice-option-tag = 1*ice-char`, here at most [`MAX_ICE_OPTION_LEN`].
fn parse_option(tag: &str, line: Option<usize>) -> Result<IceOption, IceSdpError> {
    if tag.is_empty() || tag.len() > MAX_ICE_OPTION_LEN || !tag.chars().all(is_ice_char) {
        return Err(IceSdpError::InvalidIceOption {
            line,
            option: truncate(tag, MAX_ICE_OPTION_LEN),
        });
    }
    Ok(match tag {
        "trickle" => IceOption::Trickle,
        "renomination" => IceOption::Renomination,
        other => IceOption::Other(other.to_owned()),
    })
}

fn push_option(
    options: &mut Vec<IceOption>,
    option: IceOption,
    line: Option<usize>,
) -> Result<(), IceSdpError> {
    if options.contains(&option) {
        return Ok(());
    }
    if options.len() >= MAX_ICE_OPTIONS {
        return Err(IceSdpError::TooManyIceOptions { line });
    }
    options.push(option);
    Ok(())
}

/// RFC 8839 §5.5: `pacing-value = 1*10DIGIT`.
fn parse_pacing(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The words of a candidate line after `a=` and `candidate:`.
fn candidate_words(line: &str) -> impl Iterator<Item = &str> {
    let text = line.trim_ascii();
    let text = strip_prefix_ignore_case(text, "a=").unwrap_or(text);
    let text = strip_prefix_ignore_case(text, "candidate:").unwrap_or(text);
    text.split_ascii_whitespace()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The index of the word after `raddr`, if any.
fn raddr_value_index(words: &[&str]) -> Option<usize> {
    words
        .iter()
        .skip(ADDRESS_WORD + 1)
        .position(|w| w.eq_ignore_ascii_case("raddr"))
        .map(|i| i + ADDRESS_WORD + 2)
        .filter(|&i| i < words.len())
}

/// Keeps a candidate line whose address or `raddr` is a host name, after checking the rest
/// of it: each name is replaced by an IP address and the line parsed.
fn unresolved(line: &str) -> Result<UnresolvedCandidate, CandidateParseError> {
    let words: Vec<&str> = candidate_words(line).collect();
    let mut probe = words.clone();
    let mut hostname = None;
    // Each round replaces one of at most two names (the connection address and raddr) or
    // returns, so the third round returns.
    let mut last_error = None;
    for _ in 0..3 {
        match Candidate::parse(&probe.join(" ")) {
            Ok(candidate) => {
                return Ok(UnresolvedCandidate {
                    attribute: format!("candidate:{}", words.join(" ")),
                    hostname: hostname.unwrap_or_default(),
                    component: candidate.component(),
                });
            }
            Err(CandidateParseError::HostnameNotSupported { field, name }) => {
                let index = if field == "raddr" {
                    raddr_value_index(&probe)
                } else {
                    Some(ADDRESS_WORD)
                };
                match index.filter(|&i| probe.get(i) == Some(&name.as_str())) {
                    Some(index) => probe[index] = "0.0.0.0",
                    None => return Err(CandidateParseError::HostnameNotSupported { field, name }),
                }
                last_error = Some(CandidateParseError::HostnameNotSupported {
                    field,
                    name: name.clone(),
                });
                hostname.get_or_insert(name);
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.unwrap_or(CandidateParseError::MissingField { field: "address" }))
}

#[cfg(test)]
#[path = "ice_sdp_tests.rs"]
mod tests;
