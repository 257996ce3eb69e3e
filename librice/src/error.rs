//! The facade's error type.

use std::fmt;
use std::io;

use librice_proto::agent::AgentError;

/// What can go wrong in the async facade.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The builder has no runtime.
    NoRuntime,
    /// The agent was closed (every handle dropped, or [`crate::Agent::close`]).
    Closed,
    /// The component's check list failed: no pair connected.
    Failed,
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
            Self::Failed => write!(f, "ICE failed: no candidate pair connected"),
            Self::Agent(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Agent(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AgentError> for Error {
    fn from(e: AgentError) -> Self {
        Self::Agent(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}
