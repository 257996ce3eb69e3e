//! TURN client errors.

use std::fmt;

use crate::stun::transaction::AuthError;

/// Why a TURN operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnError {
    /// The long-term credential exchange failed (wrong credentials, no usable challenge).
    Auth(AuthError),
    /// 300 Try Alternate after the client already followed one redirection, or without
    /// an ALTERNATE-SERVER of the server's transport family.
    TooManyRedirects,
    /// 403 Forbidden.
    Forbidden,
    /// 437 Allocation Mismatch: the server has no allocation for this client (it was lost,
    /// or a request came before the allocation existed).
    AllocationMismatch,
    /// 440 Address Family not Supported.
    AddressFamilyNotSupported,
    /// 441 Wrong Credentials: the request's credentials differ from the allocation's.
    WrongCredentials,
    /// 442 Unsupported Transport Protocol.
    UnsupportedTransport,
    /// 443 Peer Address Family Mismatch.
    PeerAddressFamilyMismatch,
    /// 486 Allocation Quota Reached.
    QuotaReached,
    /// 508 Insufficient Capacity.
    InsufficientCapacity,
    /// Another error code from the server.
    Server {
        /// The code.
        code: u16,
        /// The reason phrase, as sent.
        reason: String,
    },
    /// An error response without a valid ERROR-CODE.
    MalformedError,
    /// A success response lacks an attribute the method requires.
    MissingAttribute(&'static str),
    /// The server did not answer in time (RFC 8489 §6.2).
    Timeout,
    /// A response failed its integrity check over a reliable transport.
    Integrity,
    /// The operation needs an allocation, and there is none (yet, or any more).
    NotAllocated,
    /// No permission was requested for the peer's IP.
    NoPermission,
    /// The peer's address family differs from every relayed address's.
    PeerFamily,
    /// Every channel number is in use.
    NoChannel,
    /// The data does not fit in one ChannelData message or Send indication.
    TooLong(usize),
    /// A request could not be written.
    Write(String),
}

impl TurnError {
    /// The error a response code stands for.
    pub fn from_code(code: u16, reason: &str) -> TurnError {
        match code {
            403 => Self::Forbidden,
            437 => Self::AllocationMismatch,
            440 => Self::AddressFamilyNotSupported,
            441 => Self::WrongCredentials,
            442 => Self::UnsupportedTransport,
            443 => Self::PeerAddressFamilyMismatch,
            486 => Self::QuotaReached,
            508 => Self::InsufficientCapacity,
            code => Self::Server {
                code,
                reason: reason.chars().take(128).collect(),
            },
        }
    }
}

impl fmt::Display for TurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth(_) => write!(f, "TURN authentication failed"),
            Self::TooManyRedirects => write!(f, "TURN server redirected more than once (300)"),
            Self::Forbidden => write!(f, "TURN server answered 403 Forbidden"),
            Self::AllocationMismatch => write!(f, "TURN server has no such allocation (437)"),
            Self::AddressFamilyNotSupported => {
                write!(f, "TURN server does not support the address family (440)")
            }
            Self::WrongCredentials => write!(f, "TURN server answered 441 Wrong Credentials"),
            Self::UnsupportedTransport => {
                write!(f, "TURN server does not support the transport (442)")
            }
            Self::PeerAddressFamilyMismatch => {
                write!(f, "peer address family differs from the relay's (443)")
            }
            Self::QuotaReached => write!(f, "TURN allocation quota reached (486)"),
            Self::InsufficientCapacity => write!(f, "TURN server out of capacity (508)"),
            Self::Server { code, reason } => write!(f, "TURN server error {code} {reason:?}"),
            Self::MalformedError => write!(f, "TURN error response without a valid ERROR-CODE"),
            Self::MissingAttribute(a) => write!(f, "TURN response lacks {a}"),
            Self::Timeout => write!(f, "TURN server did not answer"),
            Self::Integrity => write!(f, "TURN response failed its integrity check"),
            Self::NotAllocated => write!(f, "no TURN allocation"),
            Self::NoPermission => write!(f, "no TURN permission for the peer"),
            Self::PeerFamily => write!(f, "no relayed address of the peer's family"),
            Self::NoChannel => write!(f, "no TURN channel number left"),
            Self::TooLong(len) => write!(f, "{len} bytes do not fit in one TURN message"),
            Self::Write(e) => write!(f, "cannot write a TURN request: {e}"),
        }
    }
}

impl std::error::Error for TurnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Auth(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AuthError> for TurnError {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}
