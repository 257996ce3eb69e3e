//! Shared machinery for librice's cross-crate and real-peer interop tests.
//!
//! The integration tests in `tests/tests/` run librice's command-line programs (the
//! `librice-examples` package) against real peers on loopback, such as Debian's coturn. This
//! crate holds what those tests share, so that no test file re-writes it:
//!
//! - [`bin_path`] builds the `librice-examples` binaries once per test process, with the
//!   profile of the running test, and returns the path of one of them.
//! - [`require_tool`] and [`require_ipv6_loopback`] apply the external-peer policy: a missing
//!   peer skips the test with a printed reason on a developer's machine and fails it in CI
//!   (`CI` set to anything but empty, `false` or `0`), because `.ci/run` installs every peer.
//! - [`TestDir`] is a private temporary directory per test that keeps its logs when the test
//!   fails; [`ChildGuard`] runs a process with its output in log files there and kills it
//!   when dropped; [`signal`] kills, freezes or resumes a process (or process group) the
//!   test started.
//! - [`Coturn`] runs Debian's `turnserver` on loopback as a STUN/TURN server; [`Stund`] runs
//!   librice's own `stund`.
//! - [`free_port`] picks a port free for both UDP and TCP, and [`stun_probe`] sends STUN
//!   Binding requests written byte by byte, independently of librice's own codec.
//!
//! - [`runtimes`] runs one async scenario body on tokio or on async-std, and [`ice`] sets up
//!   two librice agents in one process and signals them directly.
//! - [`pairing`] pairs two JSON-lines signalling peers (such as `icepeer`) and records events;
//!   its `Session` keeps such a pairing up for as long as the caller watches it.
//!
//! - [`mdns`] runs mDNS tests inside a private network namespace with multicast on
//!   loopback.
//!
//! - [`peers`] starts the real ICE peers (aioice, libnice, Chromium) for the interop suite.
//! - [`iceserver`] runs librice's `iceserver` and pairs many clients with its sessions at
//!   once.
//!
//! Polling external processes uses short sleeps; every wait is bounded by a deadline and
//! fails with the paths (and the last lines) of the logs involved.

mod bins;
mod coturn;
pub mod ice;
pub mod iceserver;
pub mod mdns;
mod net;
pub mod netchange;
pub mod pairing;
pub mod peers;
mod process;
pub mod runtimes;
pub mod stun_probe;
mod tools;

pub use bins::{EXAMPLES_PACKAGE, Stund, bin_path};
pub use coturn::{COTURN_PASSWORD, COTURN_REALM, COTURN_USER, Coturn};
pub use net::{free_port, port_is_free};
pub use process::{ChildGuard, Finished, Signal, TestDir, signal};
pub use tools::{in_ci, require_ipv6_loopback, require_python_module, require_tool};
