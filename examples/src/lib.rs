//! Helpers shared by librice's command-line programs.

use std::net::SocketAddr;

#[cfg(feature = "dtls")]
pub mod dtls;
pub mod lite_server;
pub mod protocol;

/// Fresh random bytes from the operating system, for transaction ids and seeds.
pub fn os_random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system has no randomness source");
    bytes
}

/// Parses `IP:PORT` or `[IPv6]:PORT`, with a message fit for the command line on error.
pub fn parse_socket_addr(text: &str, what: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("{what} must be IP:PORT or [IPv6]:PORT (e.g. 127.0.0.1:3478 or [::1]:3478), got {text:?}")
    })
}

/// Prints `message` and the usage text to stderr and exits with status 2, as programs do
/// for bad command lines.
pub fn usage_error(message: &str, usage: &str) -> ! {
    eprintln!("error: {message}\n\n{usage}");
    std::process::exit(2)
}

/// The async runtimes the tools can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// tokio (multi-threaded, 2 workers).
    Tokio,
    /// async-std (async-io based; the same adapter runs under smol).
    AsyncStd,
}

impl RuntimeKind {
    /// Parses `tokio` or `async-std`.
    pub fn parse(text: &str) -> Result<RuntimeKind, String> {
        match text {
            "tokio" => Ok(Self::Tokio),
            "async-std" | "async_std" => Ok(Self::AsyncStd),
            _ => Err(format!(
                "--runtime must be tokio or async-std, got {text:?}"
            )),
        }
    }
}

/// Runs the future `f` makes on the chosen runtime, to completion, and returns its output.
pub fn block_on<T: Send + 'static>(
    kind: RuntimeKind,
    f: impl FnOnce(std::sync::Arc<dyn librice::Runtime>) -> librice::BoxFuture<T>,
) -> T {
    match kind {
        RuntimeKind::Tokio => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime can be built");
            let runtime = librice_tokio::runtime_from_handle(rt.handle().clone());
            rt.block_on(async move { f(runtime).await })
        }
        RuntimeKind::AsyncStd => async_std::task::block_on(f(librice_async_std::runtime())),
    }
}
