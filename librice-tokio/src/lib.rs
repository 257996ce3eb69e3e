//! # librice-tokio
//!
//! The tokio adapter for [`librice`]: an implementation of librice's `Runtime` trait on
//! tokio's sockets, timers and task spawning.
//!
//! Status: waits for librice's `Runtime` trait, which is not written yet. Today this crate
//! only re-exports [`librice`].

pub use librice;
