//! The facade's error type.

use std::fmt;
use std::io;

use librice_proto::agent::{AgentError, FailureReason, UsageError};

/// What can go wrong in the async facade.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The builder has no runtime.
    NoRuntime,
    /// The agent was closed (every handle dropped, or [`crate::Agent::close`]).
    Closed,
    /// The component failed, and why: its checks failed, the controlling peer nominated no
    /// pair, or consent was lost (RFC 7675). It sends nothing any more.
    Failed(FailureReason),
    /// Components and local sockets must be added before gathering starts
    /// ([`crate::Stream::add_component`] after [`crate::Stream::gather_candidates`]). The
    /// core's [`UsageError::GatheringStarted`] converts to this too.
    GatheringStarted,
    /// A TURN server over TLS was configured, but this crate was built without its `tls`
    /// feature ([`crate::AgentBuilder::turn_server_tls`]).
    TlsUnavailable,
    /// The sans-IO core refused the request.
    Agent(AgentError),
    /// Listing the interfaces or using a socket failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntime => write!(f, "no runtime given to the agent builder"),
            Self::Closed => write!(f, "the agent is closed"),
            Self::Failed(reason) => write!(f, "ICE failed: {reason}"),
            Self::GatheringStarted => write!(
                f,
                "components must be added before gathering starts on their stream"
            ),
            Self::TlsUnavailable => write!(
                f,
                "a TURN server over TLS needs librice's `tls` feature, which this build lacks"
            ),
            // Transparent wrappers: the inner error's own text, and its source below.
            Self::Agent(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    /// `Agent` and `Io` are transparent: their Display is the inner error's, so their
    /// source is the inner error's source (an error is shown once in a chain, not twice).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Agent(e) => e.source(),
            Self::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl From<AgentError> for Error {
    /// The core's [`AgentError::Failed`] becomes [`Error::Failed`] and
    /// [`UsageError::GatheringStarted`] becomes [`Error::GatheringStarted`], so that each
    /// reads the same whichever layer reports it; the rest wrap as [`Error::Agent`].
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Failed(reason) => Self::Failed(reason),
            AgentError::Usage(UsageError::GatheringStarted) => Self::GatheringStarted,
            e => Self::Agent(e),
        }
    }
}

impl Error {
    /// The librice error inside an [`io::Error`] that a `poll_` method of a
    /// [`crate::Datagram`] returned, if it is one (rather than the socket's own error).
    pub fn from_io(e: &io::Error) -> Option<&Error> {
        e.get_ref()?.downcast_ref::<Error>()
    }
}

impl From<io::Error> for Error {
    /// An [`io::Error`] that carries a librice error (from a [`crate::Datagram`]'s `poll_`
    /// methods) gives that error back; any other becomes [`Error::Io`].
    fn from(e: io::Error) -> Self {
        if Self::from_io(&e).is_none() {
            return Self::Io(e);
        }
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(inner)) => *inner,
            // Not reached (checked above), but an error either way.
            _ => Self::Closed,
        }
    }
}

impl From<Error> for io::Error {
    /// [`Error::Io`] gives its error back; the others are carried inside one, with a kind
    /// that says what happened: `BrokenPipe` for [`Error::Closed`], `ConnectionAborted`
    /// for [`Error::Failed`], `NotConnected` before a pair is selected, `Other` else.
    /// [`Error::from_io`] takes them out again.
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Closed => io::ErrorKind::BrokenPipe,
            Error::Failed(_) => io::ErrorKind::ConnectionAborted,
            Error::Agent(AgentError::NotConnected) => io::ErrorKind::NotConnected,
            _ => io::ErrorKind::Other,
        };
        match e {
            Error::Io(inner) => inner,
            e => io::Error::new(kind, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use librice_proto::candidate::IceCredentials;

    /// Each error of a chain is shown once: walking `source()` from the facade's error
    /// never repeats a text that a Display above it already showed.
    #[test]
    fn a_chain_shows_each_error_once() {
        let inner = IceCredentials::new("ab", "short").unwrap_err();
        let e = Error::from(AgentError::from(inner));
        let mut texts = vec![e.to_string()];
        let mut next = std::error::Error::source(&e);
        while let Some(s) = next {
            texts.push(s.to_string());
            next = s.source();
        }
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(!texts[0].contains(&texts[1]), "{texts:?}");
        let io = Error::from(io::Error::other("boom"));
        assert_eq!(io.to_string(), "boom");
        assert!(std::error::Error::source(&io).is_none());
    }
}
