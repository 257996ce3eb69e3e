//! The `stun_framing` fuzz target.
//!
//! Fuzzes `StreamFramer`: the same bytes pushed in one piece and in fuzzer-chosen chunks
//! must give the same frames, and every byte pushed is either in a frame (with its prefix
//! or padding) or still buffered.
//!
//! Input: byte 0 picks the mode, byte 1 the chunk size; the rest is the stream.

use librice_proto::stun::{FrameKind, FramingError, FramingMode, StreamFramer};

/// Frames taken so far, as (kind, bytes), and the error that ended the stream, if any.
#[derive(Debug, Default, PartialEq)]
struct Cut {
    frames: Vec<(FrameKind, Vec<u8>)>,
    error: Option<FramingError>,
}

/// Bytes a frame took on the stream.
fn stream_len(kind: FrameKind, len: usize) -> usize {
    match kind {
        FrameKind::Stun => len,
        FrameKind::ChannelData => (len + 3) & !3,
        FrameKind::Packet => len + 2,
    }
}

fn drain(framer: &mut StreamFramer, cut: &mut Cut) {
    if cut.error.is_some() {
        return;
    }
    loop {
        match framer.next_frame() {
            None => return,
            Some(Ok(frame)) => cut.frames.push((frame.kind, frame.bytes.to_vec())),
            Some(Err(e)) => {
                // A broken stream stays broken.
                assert_eq!(framer.next_frame(), Some(Err(e)));
                cut.error = Some(e);
                return;
            }
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let [mode, chunk, stream @ ..] = data else {
        return;
    };
    let mode = match mode % 3 {
        0 => FramingMode::Stun,
        1 => FramingMode::StunAndChannelData,
        _ => FramingMode::Rfc4571,
    };
    let chunk = usize::from(*chunk) + 1;

    let mut whole = StreamFramer::new(mode);
    let mut whole_cut = Cut::default();
    whole.push(stream);
    drain(&mut whole, &mut whole_cut);

    let mut pieces = StreamFramer::new(mode);
    let mut pieces_cut = Cut::default();
    for piece in stream.chunks(chunk) {
        pieces.push(piece);
        drain(&mut pieces, &mut pieces_cut);
    }

    assert_eq!(whole_cut, pieces_cut);
    if whole_cut.error.is_none() {
        let framed: usize = whole_cut
            .frames
            .iter()
            .map(|(kind, bytes)| stream_len(*kind, bytes.len()))
            .sum();
        assert_eq!(framed + whole.buffered(), stream.len());
        assert_eq!(framed + pieces.buffered(), stream.len());
    }
}
