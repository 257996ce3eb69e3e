//! # librice
//!
//! The async facade over [`librice_proto`]: it owns the sockets, timers and tasks that
//! the sans-IO core leaves to its caller, through a `Runtime` trait so that it depends on
//! no particular async runtime.
//!
//! Status: the facade (runtime trait, driver task, `Agent`/`Stream`/`Component` handles)
//! is not written yet. Today this crate only re-exports the protocol core, so that
//! applications can already use the STUN codec and transactions through one dependency.

pub use librice_proto as proto;
