//! `StreamFramer`: STUN over TCP (RFC 8489 §6.2.2), interleaved ChannelData (RFC 8656
//! §12.5) and RFC 4571 framing, fed in every chunk size.

use crate::stun::{Frame, FrameKind, FramingError, FramingMode, Message, StreamFramer};

use super::hex;
use super::vectors::{
    RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE, RFC5769_LONG_TERM_REQUEST, RFC5769_REQUEST,
    RFC8489_B1,
};

/// An owned copy of a frame.
type Owned = (FrameKind, Vec<u8>);

fn vectors() -> Vec<Vec<u8>> {
    [
        RFC5769_REQUEST,
        RFC5769_IPV4_RESPONSE,
        RFC5769_IPV6_RESPONSE,
        RFC5769_LONG_TERM_REQUEST,
        RFC8489_B1,
    ]
    .into_iter()
    .map(hex)
    .collect()
}

/// A ChannelData message: channel, length, data (without stream padding).
fn channel_data(channel: u16, data: &[u8]) -> Vec<u8> {
    let mut out = channel.to_be_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Takes every complete frame out of the framer; panics on a framing error.
fn drain(framer: &mut StreamFramer, out: &mut Vec<Owned>) {
    // Each frame consumes at least 2 bytes, so this loop is bounded by the bytes buffered.
    for _ in 0..=framer.buffered() {
        match framer.next_frame() {
            None => return,
            Some(Ok(Frame { kind, bytes })) => out.push((kind, bytes.to_vec())),
            Some(Err(err)) => panic!("unexpected framing error {err:?}"),
        }
    }
    panic!("next_frame kept returning frames");
}

/// Pushes `stream` in chunks of `chunk` bytes, draining after each push.
fn feed(mode: FramingMode, stream: &[u8], chunk: usize) -> (Vec<Owned>, StreamFramer) {
    let mut framer = StreamFramer::new(mode);
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        framer.push(piece);
        drain(&mut framer, &mut frames);
    }
    (frames, framer)
}

const CHUNKS: [usize; 8] = [1, 2, 3, 5, 7, 13, 64, usize::MAX];

#[test]
fn stun_messages_in_any_chunking_come_out_intact() {
    let messages = vectors();
    let stream = messages.concat();
    for chunk in CHUNKS {
        let (frames, framer) = feed(FramingMode::Stun, &stream, chunk.min(stream.len()));
        let want: Vec<Owned> = messages
            .iter()
            .map(|m| (FrameKind::Stun, m.clone()))
            .collect();
        assert_eq!(frames, want, "chunk {chunk}");
        assert_eq!(framer.buffered(), 0, "chunk {chunk}");
        assert_eq!(framer.mode(), FramingMode::Stun);
        for (_, bytes) in &frames {
            Message::parse(bytes).expect("each frame is one whole message");
        }
    }
}

#[test]
fn incomplete_frame_waits_for_more_bytes() {
    let msg = hex(RFC5769_REQUEST);
    let mut framer = StreamFramer::new(FramingMode::Stun);
    assert!(framer.next_frame().is_none());
    framer.push(&msg[..19]);
    assert!(framer.next_frame().is_none(), "no header yet");
    framer.push(&msg[19..msg.len() - 1]);
    assert!(framer.next_frame().is_none(), "one byte missing");
    assert_eq!(framer.buffered(), msg.len() - 1);
    framer.push(&msg[msg.len() - 1..]);
    let frame = framer.next_frame().unwrap().unwrap();
    assert_eq!((frame.kind, frame.bytes), (FrameKind::Stun, &msg[..]));
    assert!(framer.next_frame().is_none());
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn channel_data_is_framed_with_its_stream_padding() {
    let cd = channel_data(0x4001, b"hello");
    assert_eq!(cd.len(), 9);
    let mut framer = StreamFramer::new(FramingMode::StunAndChannelData);
    framer.push(&cd);
    assert!(
        framer.next_frame().is_none(),
        "the 3 padding bytes have not arrived"
    );
    framer.push(&[0, 0, 0]);
    assert_eq!(framer.buffered(), 12);
    let frame = framer.next_frame().unwrap().unwrap();
    assert_eq!(frame.kind, FrameKind::ChannelData);
    assert_eq!(frame.bytes, &cd[..], "9 bytes of frame, padding excluded");
    assert_eq!(framer.buffered(), 0, "12 bytes consumed");
    assert!(framer.next_frame().is_none());
}

#[test]
fn stun_and_channel_data_interleaved() {
    let messages = vectors();
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let data: Vec<u8> = (0..i as u8 * 3).collect();
        let channel = 0x4000 + i as u16 * 0x3FF;
        let cd = channel_data(channel, &data);
        stream.extend_from_slice(&cd);
        stream.resize(stream.len() + (4 - cd.len() % 4) % 4, 0);
        want.push((FrameKind::ChannelData, cd));
        stream.extend_from_slice(msg);
        want.push((FrameKind::Stun, msg.clone()));
    }
    // The highest channel number and an empty payload.
    let cd = channel_data(0x4FFF, b"");
    stream.extend_from_slice(&cd);
    want.push((FrameKind::ChannelData, cd));
    for chunk in CHUNKS {
        let (frames, framer) = feed(
            FramingMode::StunAndChannelData,
            &stream,
            chunk.min(stream.len()),
        );
        assert_eq!(frames, want, "chunk {chunk}");
        assert_eq!(framer.buffered(), 0);
    }
}

#[test]
fn rfc4571_packets_in_any_chunking() {
    let payloads: [Vec<u8>; 5] = [
        hex(RFC5769_REQUEST),
        vec![],
        vec![0x16, 0x03, 0x01],
        (0..=255).collect(),
        vec![0xFF; 5],
    ];
    let mut stream = Vec::new();
    for p in &payloads {
        stream.extend_from_slice(&u16::try_from(p.len()).unwrap().to_be_bytes());
        stream.extend_from_slice(p);
    }
    let want: Vec<Owned> = payloads
        .iter()
        .map(|p| (FrameKind::Packet, p.clone()))
        .collect();
    for chunk in CHUNKS {
        let (frames, framer) = feed(FramingMode::Rfc4571, &stream, chunk.min(stream.len()));
        assert_eq!(frames, want, "chunk {chunk}");
        assert_eq!(framer.buffered(), 0);
    }
}

#[test]
fn garbage_first_byte_breaks_the_stream() {
    // RTP/RTCP (0x80), anything with the top bits set, and HTTP ("GET ") where only STUN may
    // come; detected from the first byte alone.
    for (mode, byte) in [
        (FramingMode::Stun, 0x80),
        (FramingMode::Stun, 0xC0),
        (FramingMode::Stun, 0xFF),
        (FramingMode::Stun, b'G'),
        (FramingMode::StunAndChannelData, 0x80),
        (FramingMode::StunAndChannelData, 0xFF),
    ] {
        let mut framer = StreamFramer::new(mode);
        framer.push(&[byte]);
        let err = Err(FramingError::UnexpectedByte { byte });
        assert_eq!(
            framer.next_frame().map(|r| r.map(|_| ())),
            Some(err),
            "{mode:?}"
        );
        // The error sticks, even once valid bytes follow.
        framer.push(&hex(RFC5769_REQUEST));
        assert_eq!(
            framer.next_frame().map(|r| r.map(|_| ())),
            Some(err),
            "{mode:?}"
        );
    }
    // ChannelData outside the mode that allows it, and reserved channel numbers.
    for (mode, byte) in [
        (FramingMode::Stun, 0x40),
        (FramingMode::StunAndChannelData, 0x50),
        (FramingMode::StunAndChannelData, 0x7F),
    ] {
        let mut framer = StreamFramer::new(mode);
        framer.push(&channel_data(u16::from(byte) << 8, b"abc"));
        assert_eq!(
            framer.next_frame().map(|r| r.map(|_| ())),
            Some(Err(FramingError::UnexpectedByte { byte })),
            "{mode:?} {byte:#x}"
        );
    }
}

/// A TLS record (0x16) starts with the two zero bits of STUN, so it is only told apart by
/// its missing magic cookie, once a whole header's worth of bytes has arrived.
#[test]
fn tls_record_is_rejected_by_its_cookie() {
    let client_hello = hex("16 03 01 02 00 01 00 01 fc 03 03 5a 5b 5c 5d 5e 5f 60 61 62 63 64");
    for mode in [FramingMode::Stun, FramingMode::StunAndChannelData] {
        let mut framer = StreamFramer::new(mode);
        framer.push(&client_hello[..5]);
        assert!(
            framer.next_frame().is_none(),
            "{mode:?}: could still be STUN"
        );
        framer.push(&client_hello[5..]);
        let err = Err(FramingError::BadMagicCookie);
        assert_eq!(
            framer.next_frame().map(|r| r.map(|_| ())),
            Some(err),
            "{mode:?}"
        );
        assert_eq!(
            framer.next_frame().map(|r| r.map(|_| ())),
            Some(err),
            "{mode:?}"
        );
    }
}

#[test]
fn bad_cookie_breaks_the_stream_once_the_header_is_in() {
    let mut msg = hex(RFC5769_IPV4_RESPONSE);
    msg[5] ^= 0xFF;
    let mut framer = StreamFramer::new(FramingMode::Stun);
    framer.push(&msg[..19]);
    assert!(
        framer.next_frame().is_none(),
        "the cookie is not known before the header is"
    );
    framer.push(&msg[19..20]);
    assert_eq!(
        framer.next_frame().map(|r| r.map(|_| ())),
        Some(Err(FramingError::BadMagicCookie))
    );
}

#[test]
fn error_after_good_frames() {
    let good = hex(RFC5769_IPV6_RESPONSE);
    let mut stream = good.clone();
    stream.extend_from_slice(&[0xC0; 24]);
    let mut framer = StreamFramer::new(FramingMode::Stun);
    framer.push(&stream);
    assert_eq!(framer.next_frame().unwrap().unwrap().bytes, &good[..]);
    assert_eq!(
        framer.next_frame().map(|r| r.map(|_| ())),
        Some(Err(FramingError::UnexpectedByte { byte: 0xC0 }))
    );
}

#[test]
fn buffered_returns_to_zero_after_each_drain() {
    let msg = hex(RFC5769_LONG_TERM_REQUEST);
    let mut framer = StreamFramer::new(FramingMode::Stun);
    for round in 0..5 {
        framer.push(&msg);
        framer.push(&msg);
        assert_eq!(framer.buffered(), 2 * msg.len(), "round {round}");
        assert!(framer.next_frame().unwrap().is_ok());
        assert_eq!(framer.buffered(), msg.len());
        assert!(framer.next_frame().unwrap().is_ok());
        assert_eq!(framer.buffered(), 0);
        assert!(framer.next_frame().is_none());
    }
}
