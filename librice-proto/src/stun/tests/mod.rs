//! Tests of the STUN codec: RFC test vectors, malformed input, writer round trips, stream
//! framing and a deterministic fuzz loop. Shared helpers live here.

mod framing;
mod fuzz;
mod malformed;
mod round_trip;
mod vectors;

use crate::stun::{HEADER_LEN, MAGIC_COOKIE};

/// The transaction id of hand-built messages.
const TXID: [u8; 12] = [0xA0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xAB];

/// Hex with spaces and line breaks, as the RFCs print it, to bytes.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("hex digits are ASCII");
            u8::from_str_radix(text, 16).expect("filtered to hex digits")
        })
        .collect()
}

/// Assembles a message by hand, bypassing every check of `MessageWriter`: the header with
/// `msg_type`, the magic cookie and [`TXID`], then each attribute as type, length, value and
/// zero padding. The length field counts the attributes as written.
fn build(msg_type: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&msg_type.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(&TXID);
    for (ty, value) in attrs {
        out.extend_from_slice(&ty.to_be_bytes());
        let len = u16::try_from(value.len()).expect("test values fit the length field");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(value);
        out.resize(out.len() + (4 - value.len() % 4) % 4, 0);
    }
    let body = u16::try_from(out.len() - HEADER_LEN).expect("test messages are small");
    set_length(&mut out, body);
    out
}

/// Overwrites the length field of the header.
fn set_length(msg: &mut [u8], len: u16) {
    msg[2..4].copy_from_slice(&len.to_be_bytes());
}

/// Recomputes the FINGERPRINT of a message whose last attribute is FINGERPRINT, with
/// `crc32fast` directly rather than the crate's code, so that it is an independent check.
fn refingerprint(msg: &mut [u8]) {
    let at = msg.len() - 8;
    assert_eq!(
        msg[at..at + 4],
        [0x80, 0x28, 0x00, 0x04],
        "FINGERPRINT is last"
    );
    let crc = crc32fast::hash(&msg[..at]) ^ 0x5354_554E;
    msg[at + 4..].copy_from_slice(&crc.to_be_bytes());
}
