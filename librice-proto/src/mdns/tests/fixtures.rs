//! Packets as browsers send them, written out byte by byte from the RFC 1035 §4.1 format.

/// What a browser sends to resolve a peer's `.local` candidate, written out from the RFC
/// 1035 §4.1 format: Chromium's mDNS client asks for A in one message (and AAAA in
/// another), identifier 0, no flags, one question, no unicast-response bit.
pub(super) const CHROMIUM_A_QUERY: &[u8] = &[
    0x00, 0x00, // ID 0 (RFC 6762 §18.1)
    0x00, 0x00, // flags: a standard query
    0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // QDCOUNT 1, no records
    36,   // "1f0e2d3c-4b5a-4978-8695-a4b3c2d1e0f0"
    b'1', b'f', b'0', b'e', b'2', b'd', b'3', b'c', b'-', b'4', b'b', b'5', b'a', b'-', b'4', b'9',
    b'7', b'8', b'-', b'8', b'6', b'9', b'5', b'-', b'a', b'4', b'b', b'3', b'c', b'2', b'd', b'1',
    b'e', b'0', b'f', b'0', //
    5, b'l', b'o', b'c', b'a', b'l', 0, // "local", root
    0x00, 0x01, // QTYPE A
    0x00, 0x01, // QCLASS IN, QU bit clear
];

/// What a browser's responder announces for a `.local` candidate (RFC 6762 §8.3): a
/// response (QR, AA), one A record, cache-flush set, TTL 120 s.
pub(super) const CHROMIUM_ANNOUNCEMENT: &[u8] = &[
    0x00, 0x00, // ID 0
    0x84, 0x00, // QR, AA
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // ANCOUNT 1
    36, b'1', b'f', b'0', b'e', b'2', b'd', b'3', b'c', b'-', b'4', b'b', b'5', b'a', b'-', b'4',
    b'9', b'7', b'8', b'-', b'8', b'6', b'9', b'5', b'-', b'a', b'4', b'b', b'3', b'c', b'2', b'd',
    b'1', b'e', b'0', b'f', b'0', //
    5, b'l', b'o', b'c', b'a', b'l', 0, //
    0x00, 0x01, // TYPE A
    0x80, 0x01, // cache flush, CLASS IN
    0x00, 0x00, 0x00, 0x78, // TTL 120
    0x00, 0x04, 192, 0, 2, 1, // RDLENGTH 4, 192.0.2.1
];
