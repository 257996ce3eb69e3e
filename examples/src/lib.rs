//! Helpers shared by librice's command-line programs.

use std::net::SocketAddr;

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
