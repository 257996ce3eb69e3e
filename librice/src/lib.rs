//! # librice
//!
//! An ICE (RFC 8445) library for async Rust: gather candidates, exchange them with a peer
//! over your own signalling, and get connected components to send and receive datagrams
//! on. This crate is the async facade over the sans-IO core [`librice_proto`]: it owns the
//! sockets, timers and the one driver task per agent, through the [`Runtime`] trait, so
//! that it depends on no particular async runtime (`librice-tokio` and
//! `librice-async-std` provide one each).
//!
//! ```no_run
//! # async fn run(runtime: std::sync::Arc<dyn librice::Runtime>) -> Result<(), librice::Error> {
//! use futures::StreamExt;
//!
//! let agent = librice::Agent::builder().runtime(runtime).controlling(true).build()?;
//! let stream = agent.add_stream();
//! let component = stream.add_component()?;
//! let mut candidates = stream.gather_candidates()?;
//! while let Some(candidate) = candidates.next().await {
//!     println!("a={candidate}"); // signal it to the peer
//! }
//! // ... stream.set_remote_credentials(..), stream.add_remote_candidate(..) from the peer ...
//! let pair = component.connected().await?;
//! println!("connected: {} -> {}", pair.local, pair.remote);
//! component.send(b"hello").await?;
//! let mut incoming = component.recv();
//! let reply = incoming.next().await;
//! # Ok(()) }
//! ```
//!
//! ## Shape
//! - [`Agent`] (built with [`Agent::builder`]): streams, events ([`Agent::events`]).
//! - [`Stream`]: components, [`Stream::gather_candidates`], credentials, remote candidates,
//!   end-of-candidates.
//! - [`Component`]: [`Component::connected`], [`Component::send`], [`Component::recv`].
//!
//! Handles are cheap clones that lock briefly and wake the driver. Dropping the last handle
//! of an agent (or [`Agent::close`]) ends its driver task and closes its sockets.
//!
//! ## Left out for now
//! STUN servers over TCP (the core supports them; the builder does not offer them yet),
//! ICE-TCP.

mod agent;
pub mod conformance;
mod driver;
mod error;
pub mod interfaces;
pub mod runtime;
mod shared;
mod stream;
mod tcp;
mod tls;

pub use agent::{Agent, AgentBuilder, Events};
pub use error::Error;
pub use librice_proto as proto;
pub use librice_proto::agent::{ComponentId, ComponentState, SelectedPair, StreamId};
pub use librice_proto::candidate::{Candidate, IceCredentials};
pub use runtime::{
    AsyncTcpStream, AsyncTimer, AsyncUdpSocket, AsyncUdpSocketExt, BoxFuture, Runtime,
};
pub use shared::AgentEvent;
pub use stream::{Component, Connected, GatherStream, Recv, Stream};
