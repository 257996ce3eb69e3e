//! # librice-async-std
//!
//! The async-std adapter for [`librice`], built on the `async-io` primitives that async-std
//! and smol share, so that it runs under either.
//!
//! Status: waits for librice's `Runtime` trait, which is not written yet. Today this crate
//! only re-exports [`librice`].

pub use librice;
