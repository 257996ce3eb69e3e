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
    /// The agent was closed (every handle dropped, or [`crate::Agent::close`]). Every call
    /// that needs a running agent reports it, a component added after the close included:
    /// not a [`Error::Usage`], since any task may meet it when another task closes the
    /// agent, as a send may meet a closed socket.
    Closed,
    /// The component failed, and why: its checks failed, the controlling peer nominated no
    /// pair, or consent was lost (RFC 7675). It sends nothing any more.
    Failed(FailureReason),
    /// The caller misused the API: a programming error, which retrying cannot fix. The
    /// facade's own checks report it (a component added after gathering started:
    /// [`UsageError::GatheringStarted`]) and so does the core, whose
    /// [`AgentError::Usage`] converts to this, so that a misuse reads the same whichever
    /// layer finds it. Transparent: its `Display` is the inner error's.
    Usage(UsageError),
    /// A TURN server over TLS was configured, but this crate was built without its `tls`
    /// feature ([`crate::AgentBuilder::turn_server_tls`]).
    TlsUnavailable,
    /// The sans-IO core refused the request.
    Agent(AgentError),
    /// Listing the interfaces or using a socket failed.
    Io(io::Error),
    /// An [`crate::Endpoint`] refused: see [`crate::endpoint::EndpointError`].
    Endpoint(crate::endpoint::EndpointError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRuntime => write!(f, "no runtime given to the agent builder"),
            Self::Closed => write!(f, "the agent is closed"),
            Self::Failed(reason) => write!(f, "ICE failed: {reason}"),
            Self::TlsUnavailable => write!(
                f,
                "a TURN server over TLS needs librice's `tls` feature, which this build lacks"
            ),
            // Transparent wrappers: the inner error's own text, and its source below.
            Self::Usage(e) => write!(f, "{e}"),
            Self::Agent(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "{e}"),
            Self::Endpoint(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    /// `Usage`, `Agent` and `Io` are transparent: their Display is the inner error's, so
    /// their source is the inner error's source (an error is shown once in a chain, not
    /// twice).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Usage(e) => e.source(),
            Self::Agent(e) => e.source(),
            Self::Io(e) => e.source(),
            _ => None,
        }
    }
}

impl From<crate::endpoint::EndpointError> for Error {
    fn from(e: crate::endpoint::EndpointError) -> Self {
        Self::Endpoint(e)
    }
}

impl From<AgentError> for Error {
    /// The core's [`AgentError::Failed`] becomes [`Error::Failed`] and
    /// [`AgentError::Usage`] becomes [`Error::Usage`], so that each reads the same
    /// whichever layer reports it; the rest wrap as [`Error::Agent`].
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Failed(reason) => Self::Failed(reason),
            AgentError::Usage(e) => Self::Usage(e),
            e => Self::Agent(e),
        }
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Self::Usage(e)
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
    /// for [`Error::Failed`], `NotConnected` before a pair is selected, `InvalidInput` for
    /// [`Error::Usage`], `Other` else. [`Error::from_io`] takes them out again.
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Closed => io::ErrorKind::BrokenPipe,
            Error::Failed(_) => io::ErrorKind::ConnectionAborted,
            Error::Usage(_) => io::ErrorKind::InvalidInput,
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

    /// A misuse the core finds lands in `Error::Usage`, where the facade's own does, and
    /// shows once (transparent, no source); inside an `io::Error` it is `InvalidInput`.
    #[test]
    fn core_misuse_is_a_usage_error() {
        let usage = UsageError::GatheringStarted;
        let e = Error::from(AgentError::from(usage.clone()));
        assert!(matches!(&e, Error::Usage(u) if *u == usage), "{e:?}");
        assert_eq!(e.to_string(), usage.to_string());
        assert!(std::error::Error::source(&e).is_none());
        let io = io::Error::from(e);
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        assert!(matches!(Error::from_io(&io), Some(Error::Usage(_))));
        // Not every core error is misuse.
        let e = Error::from(AgentError::NotConnected);
        assert!(matches!(e, Error::Agent(AgentError::NotConnected)), "{e:?}");
    }
}
