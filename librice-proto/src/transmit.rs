//! What the core asks its caller to send.

use std::fmt;
use std::net::SocketAddr;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportType {
    /// UDP: unreliable datagrams.
    Udp,
    /// TCP: a reliable byte stream (framed by the caller as the core says).
    Tcp,
}

impl TransportType {
    /// True for transports that retransmit on their own (RFC 8489 §6.2.2).
    pub const fn is_reliable(self) -> bool {
        matches!(self, Self::Tcp)
    }
}

impl fmt::Display for TransportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
        })
    }
}

/// Bytes to send from a local address to a remote one.
///
/// `Debug` prints the length of the data, not the bytes.
#[must_use = "a Transmit must be sent for the protocol to make progress"]
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit<T = Vec<u8>> {
    /// The transport to send on.
    pub transport: TransportType,
    /// The local address to send from.
    pub from: SocketAddr,
    /// The remote address to send to.
    pub to: SocketAddr,
    /// The bytes.
    pub data: T,
}

impl<T: AsRef<[u8]>> Transmit<T> {
    /// The same transmit, its bytes borrowed: what an incoming-packet API takes.
    pub fn borrowed(&self) -> Transmit<&[u8]> {
        Transmit {
            transport: self.transport,
            from: self.from,
            to: self.to,
            data: self.data.as_ref(),
        }
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Transmit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transmit")
            .field("transport", &self.transport)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("len", &self.data.as_ref().len())
            .finish()
    }
}
