//! A sans-IO TURN client (RFC 8656, RFC 5766 servers, RFC 6156 IPv6 relays).
//!
//! One [`TurnClient`] holds one allocation on one server, reached over UDP or over a
//! reliable stream (TCP, or TLS that the caller adds around TCP). Like the ICE agent it is
//! driven by `handle_*` calls and drained with `poll_*` calls:
//!
//! 1. [`TurnClient::new`], then [`TurnClient::allocate`]: the Allocate request goes out,
//!    is challenged (401), and is sent again with long-term credentials (RFC 8489 §9.2);
//!    a 438 (Stale Nonce) is retried with the new nonce, a 300 (Try Alternate) is followed
//!    once to the ALTERNATE-SERVER ([`TurnEvent::Redirected`]).
//! 2. [`TurnEvent::Allocated`] gives the relayed address(es) and the server-reflexive one.
//!    The allocation is refreshed before it expires, for as long as the client lives.
//! 3. [`TurnClient::create_permission`] installs a permission for a peer IP (refreshed
//!    before its 300 s run out); [`TurnClient::bind_channel`] binds a channel to a peer
//!    (refreshed before its 600 s run out).
//! 4. [`TurnClient::send`] gives the [`Transmit`](crate::Transmit) carrying data to a peer: a ChannelData
//!    message once the peer's channel is bound, a Send indication before.
//!    [`TurnClient::handle_incoming`] unwraps Data indications and ChannelData.
//! 5. [`TurnClient::close`] deletes the allocation (Refresh with LIFETIME 0).
//!
//! Over a stream, what [`TurnClient::poll_transmit`] yields is ready to write (ChannelData
//! padded to 4 bytes, RFC 8656 §12.5), and the caller cuts what it reads with a
//! [`StreamFramer`](crate::stun::StreamFramer) in
//! [`FramingMode::StunAndChannelData`](crate::stun::FramingMode::StunAndChannelData)
//! before giving each frame to [`TurnClient::handle_incoming`].
//!
//! Left out: EVEN-PORT and RESERVATION-TOKEN, DONT-FRAGMENT, TCP allocations (RFC 6062),
//! and the ICMP attribute (it is decoded by the codec, not acted on).

mod client;
mod error;

#[cfg(test)]
mod tests;

pub use client::{
    AllocationFamily, CHANNEL_LIFETIME, PERMISSION_LIFETIME, TurnClient, TurnConfig, TurnEvent,
    TurnRecv, TurnState,
};
pub use error::TurnError;

/// The first channel number (RFC 8656 §12).
pub const MIN_CHANNEL: u16 = 0x4000;

/// The last channel number (RFC 8656 §12).
pub const MAX_CHANNEL: u16 = 0x4FFF;

/// Writes a ChannelData message (RFC 8656 §12.4): channel number, length, data, and over a
/// stream the padding to a multiple of 4 bytes (RFC 8656 §12.5).
pub fn write_channel_data(channel: u16, data: &[u8], padded: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(&channel.to_be_bytes());
    // Callers keep data within u16: the client refuses longer data.
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    if padded {
        let pad = (4 - data.len() % 4) % 4;
        out.extend_from_slice(&[0u8; 3][..pad]);
    }
}

/// Parses a ChannelData message: its channel number and data. `None` if `bytes` is not one
/// (channel outside 0x4000-0x4FFF, or shorter than its length says). Trailing bytes (the
/// stream padding) are ignored.
pub fn parse_channel_data(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let header = bytes.get(..4)?;
    let channel = u16::from_be_bytes([header[0], header[1]]);
    if !(MIN_CHANNEL..=MAX_CHANNEL).contains(&channel) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    Some((channel, bytes.get(4..4 + len)?))
}
