//! Cutting a reliable byte stream (TCP, TLS) into messages.
//!
//! - STUN over TCP carries messages back to back, each delimited by its header's length
//!   (RFC 8489 §6.2.2).
//! - TURN over TCP interleaves STUN messages with ChannelData messages, padded to a
//!   multiple of 4 bytes on the stream (RFC 8656 §12.5).
//! - ICE-TCP frames every packet, STUN or not, with a 16-bit length (RFC 4571, RFC 6544).

use std::fmt;

use super::message::{HEADER_LEN, MAGIC_COOKIE};

/// How a stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingMode {
    /// Only STUN messages (RFC 8489 §6.2.2), e.g. a Binding client over TCP.
    Stun,
    /// STUN messages and TURN ChannelData messages (RFC 8656 §12.5), e.g. a TURN client
    /// over TCP or TLS.
    StunAndChannelData,
    /// A 16-bit big-endian length before every packet (RFC 4571), e.g. ICE-TCP.
    Rfc4571,
}

/// What kind of frame came out of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A STUN message, header included.
    Stun,
    /// A ChannelData message: 4-byte header and data, without the stream padding.
    ChannelData,
    /// An RFC 4571 packet, without its length prefix.
    Packet,
}

/// One message cut from the stream, borrowed from the framer's buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The kind of message.
    pub kind: FrameKind,
    /// Its bytes (see [`FrameKind`] for what is included).
    pub bytes: &'a [u8],
}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.kind)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The stream holds something that is not a frame of the expected kind. The stream cannot
/// be resynchronised: the connection should be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// The first byte of a frame is neither STUN (leading bits 00) nor, where allowed,
    /// ChannelData (channel 0x4000-0x4FFF).
    UnexpectedByte {
        /// The byte found.
        byte: u8,
    },
    /// A STUN header without the magic cookie.
    BadMagicCookie,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedByte { byte } => {
                write!(
                    f,
                    "stream holds a frame starting with {byte:#04x}, which is not expected"
                )
            }
            Self::BadMagicCookie => {
                write!(f, "stream holds a STUN header without the magic cookie")
            }
        }
    }
}

impl std::error::Error for FramingError {}

/// Reassembles messages from the chunks a stream delivers.
///
/// Push bytes as they are read with [`StreamFramer::push`], then take every complete frame
/// with [`StreamFramer::next_frame`] until it returns `None`. The framer keeps at most one
/// incomplete frame (at most 65,555 bytes for STUN) plus the unconsumed part of the last
/// push, so its memory is bounded when frames are drained after every push.
#[derive(Debug, Clone)]
pub struct StreamFramer {
    mode: FramingMode,
    buf: Vec<u8>,
    start: usize,
    error: Option<FramingError>,
}

impl StreamFramer {
    /// A framer for a stream framed as `mode` says.
    pub fn new(mode: FramingMode) -> StreamFramer {
        StreamFramer {
            mode,
            buf: Vec::new(),
            start: 0,
            error: None,
        }
    }

    /// The framing mode.
    pub fn mode(&self) -> FramingMode {
        self.mode
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, `None` if more bytes are needed, or the error that broke
    /// the stream (returned again on every later call).
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, FramingError>> {
        if let Some(err) = self.error {
            return Some(Err(err));
        }
        let pending = &self.buf[self.start..];
        let (kind, skip, len, consumed) = match self.frame_bounds(pending) {
            Ok(Some(bounds)) => bounds,
            Ok(None) => return None,
            Err(err) => {
                self.error = Some(err);
                return Some(Err(err));
            }
        };
        if pending.len() < consumed {
            return None;
        }
        let begin = self.start + skip;
        self.start += consumed;
        Some(Ok(Frame {
            kind,
            bytes: &self.buf[begin..begin + len],
        }))
    }

    /// For the frame at the start of `pending`: its kind, the prefix to skip, the frame's
    /// length, and the bytes it takes on the stream. `None` until enough is known.
    fn frame_bounds(
        &self,
        pending: &[u8],
    ) -> Result<Option<(FrameKind, usize, usize, usize)>, FramingError> {
        if self.mode == FramingMode::Rfc4571 {
            let Some(prefix) = pending.first_chunk::<2>() else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes(*prefix));
            return Ok(Some((FrameKind::Packet, 2, len, 2 + len)));
        }
        let Some(&first) = pending.first() else {
            return Ok(None);
        };
        match first >> 6 {
            0b00 => {
                let Some(header) = pending.first_chunk::<HEADER_LEN>() else {
                    return Ok(None);
                };
                if header[4..8] != MAGIC_COOKIE.to_be_bytes() {
                    return Err(FramingError::BadMagicCookie);
                }
                let len = HEADER_LEN + usize::from(u16::from_be_bytes([header[2], header[3]]));
                Ok(Some((FrameKind::Stun, 0, len, len)))
            }
            // RFC 8656 §12: channel numbers 0x4000-0x4FFF; 0x5000-0x7FFF are reserved.
            0b01 if self.mode == FramingMode::StunAndChannelData && first < 0x50 => {
                let Some(header) = pending.first_chunk::<4>() else {
                    return Ok(None);
                };
                let len = 4 + usize::from(u16::from_be_bytes([header[2], header[3]]));
                // RFC 8656 §12.5: over TCP, ChannelData is padded to a multiple of 4.
                Ok(Some((FrameKind::ChannelData, 0, len, (len + 3) & !3)))
            }
            _ => Err(FramingError::UnexpectedByte { byte: first }),
        }
    }
}
