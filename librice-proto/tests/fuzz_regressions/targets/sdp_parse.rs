//! The `sdp_parse` fuzz target.
//!
//! Fuzzes the reader of the ICE attributes of SDP (RFC 8839 §5, RFC 8840): one media section
//! and a whole description.
//!
//! Besides "never panics", it checks the round trip `IceSdp` promises: what parses writes
//! text that parses back to an equal value and writes identically, and the sections of a
//! description, each written whole under its own `m=` line, read back as the same
//! description.

use librice_proto::candidate::IceSdp;

/// Runs one input.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    match IceSdp::parse_media_section(&text) {
        Ok(ice) => round_trip(&ice, &text),
        Err(error) => {
            std::hint::black_box(error.to_string());
        }
    }

    match IceSdp::parse_description(&text) {
        Ok(sections) => {
            for ice in &sections {
                round_trip(ice, &text);
            }
            if !sections.is_empty() {
                // Each section written whole (its session-level attributes too, which a media
                // section may carry) under its own m= line reads back as the same description.
                let mut rebuilt = String::new();
                for ice in &sections {
                    rebuilt.push_str("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
                    rebuilt.push_str(&ice.write());
                }
                let again = IceSdp::parse_description(&rebuilt)
                    .unwrap_or_else(|e| panic!("{rebuilt:?} does not parse back: {e}"));
                assert_eq!(
                    again, sections,
                    "description round trip through {rebuilt:?}"
                );
            }
        }
        Err(error) => {
            std::hint::black_box(error.to_string());
        }
    }
}

/// Checks that `ice` writes text that parses back equal and writes identically.
fn round_trip(ice: &IceSdp, input: &str) {
    let written = ice.write();
    let again = IceSdp::parse_media_section(&written)
        .unwrap_or_else(|e| panic!("{written:?} (from {input:?}) does not parse back: {e}"));
    assert_eq!(&again, ice, "round trip of {input:?} through {written:?}");
    assert_eq!(again.write(), written, "writing is not canonical");
}
