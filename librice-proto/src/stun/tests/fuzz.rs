//! A deterministic fuzz loop (no proptest): pseudo-random and mutated inputs fed to the
//! parser, every typed decoder, the integrity checks and the stream framer. Nothing may
//! panic, and a few invariants must hold whenever parsing succeeds.

use crate::stun::attr::{
    AdditionalAddressFamily, AddressErrorCode, AlternateDomain, AlternateServer, AttributeDecode,
    ChannelNumber, Data, DontFragment, ErrorCode, EvenPort, Fingerprint, IceControlled,
    IceControlling, Icmp, Lifetime, MappedAddress, MessageIntegrity, MessageIntegritySha256,
    Nomination, Nonce, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Priority, Realm,
    RequestedAddressFamily, RequestedTransport, ReservationToken, Software, UnknownAttributes,
    UseCandidate, Userhash, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use crate::stun::{
    FramingMode, HEADER_LEN, IntegrityAlgorithm, IntegrityKey, Message, MessageHeader,
    StreamFramer, TransactionId, looks_like_stun,
};

use super::hex;
use super::vectors::{
    RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE, RFC5769_LONG_TERM_REQUEST, RFC5769_REQUEST,
    RFC8489_B1,
};

const ITERATIONS: usize = 20_000;

/// xorshift64*: tiny, deterministic, good enough to spread inputs.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// Attribute types worth generating: every known one, plus unknown ones of both ranges.
const TYPES: [u16; 42] = [
    0x0001, 0x0003, 0x0006, 0x0008, 0x0009, 0x000A, 0x000C, 0x000D, 0x0012, 0x0013, 0x0014, 0x0015,
    0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x001C, 0x001D, 0x001E, 0x0020, 0x0022, 0x0024, 0x0025,
    0x0026, 0x0027, 0x8000, 0x8001, 0x8002, 0x8003, 0x8004, 0x8022, 0x8023, 0x8028, 0x8029, 0x802A,
    0x802B, 0x802C, 0xC001, 0xFFFF, 0x7777, 0x0000,
];

/// Decodes `value` as every typed attribute, whatever its wire type. Results are dropped:
/// only panics matter here.
fn decode_as_everything(value: &[u8], txid: &TransactionId) {
    fn d<'a, A: AttributeDecode<'a> + std::fmt::Debug>(value: &'a [u8], txid: &TransactionId) {
        // Formatting exercises the Debug impls too.
        let _ = format!("{:?}", A::decode(value, txid));
    }
    d::<MappedAddress>(value, txid);
    d::<XorMappedAddress>(value, txid);
    d::<XorPeerAddress>(value, txid);
    d::<XorRelayedAddress>(value, txid);
    d::<AlternateServer>(value, txid);
    d::<Username>(value, txid);
    d::<Realm>(value, txid);
    d::<Nonce>(value, txid);
    d::<Userhash>(value, txid);
    d::<PasswordAlgorithm>(value, txid);
    d::<PasswordAlgorithms>(value, txid);
    d::<MessageIntegrity>(value, txid);
    d::<MessageIntegritySha256>(value, txid);
    d::<Priority>(value, txid);
    d::<UseCandidate>(value, txid);
    d::<IceControlled>(value, txid);
    d::<IceControlling>(value, txid);
    d::<Nomination>(value, txid);
    d::<ErrorCode>(value, txid);
    d::<UnknownAttributes>(value, txid);
    d::<Software>(value, txid);
    d::<AlternateDomain>(value, txid);
    d::<Fingerprint>(value, txid);
    d::<ChannelNumber>(value, txid);
    d::<Lifetime>(value, txid);
    d::<Data>(value, txid);
    d::<RequestedAddressFamily>(value, txid);
    d::<AdditionalAddressFamily>(value, txid);
    d::<EvenPort>(value, txid);
    d::<RequestedTransport>(value, txid);
    d::<DontFragment>(value, txid);
    d::<ReservationToken>(value, txid);
    d::<AddressErrorCode>(value, txid);
    d::<Icmp>(value, txid);
    // The list types are iterated after a successful decode.
    if let Ok(list) = PasswordAlgorithms::decode(value, txid) {
        let _ = list.iter().count();
    }
    if let Ok(list) = UnknownAttributes::decode(value, txid) {
        assert_eq!(list.iter().count(), list.len());
    }
}

/// Decodes the first attribute of each type through `Message::attribute`.
fn decode_through_message(msg: &Message<'_>) {
    macro_rules! each {
        ($($ty:ident),* $(,)?) => { $( let _ = format!("{:?}", msg.attribute::<$ty>()); )* };
    }
    each!(
        MappedAddress,
        XorMappedAddress,
        XorPeerAddress,
        XorRelayedAddress,
        AlternateServer,
        Username,
        Realm,
        Nonce,
        Userhash,
        PasswordAlgorithm,
        PasswordAlgorithms,
        MessageIntegrity,
        MessageIntegritySha256,
        Priority,
        UseCandidate,
        IceControlled,
        IceControlling,
        ErrorCode,
        UnknownAttributes,
        Software,
        AlternateDomain,
        Fingerprint,
        ChannelNumber,
        Lifetime,
        Data,
        RequestedAddressFamily,
        AdditionalAddressFamily,
        EvenPort,
        RequestedTransport,
        DontFragment,
        ReservationToken,
        AddressErrorCode,
        Icmp,
    );
}

struct Keys {
    keys: Vec<IntegrityKey>,
}

impl Keys {
    fn new() -> Self {
        let user = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
        let keys = vec![
            IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBt").unwrap(),
            IntegrityKey::long_term(user, "example.org", "TheMatrIX", PasswordAlgorithmId::MD5)
                .unwrap(),
            IntegrityKey::long_term(
                user,
                "example.org",
                "TheMatrIX",
                PasswordAlgorithmId::SHA256,
            )
            .unwrap(),
        ];
        Keys { keys }
    }
}

/// Everything the crate offers for one input. Returns true if it parsed.
fn exercise(data: &[u8], keys: &Keys) -> bool {
    let _ = looks_like_stun(data);
    let _ = MessageHeader::parse(data);
    let parsed = Message::parse(data);
    let _ = format!("{parsed:?}");
    if let Err(err) = &parsed {
        let _ = err.to_string();
    }
    let Ok(msg) = parsed else {
        return false;
    };
    // Invariants of a parsed message.
    assert!(
        looks_like_stun(data),
        "parse accepted what looks_like_stun rejects"
    );
    let wire: usize = msg.attributes().map(|a| a.wire_len()).sum();
    assert_eq!(
        HEADER_LEN + wire,
        data.len(),
        "the attributes tile the message"
    );
    assert_eq!(msg.as_bytes(), data);

    let txid = msg.transaction_id();
    for raw in msg.attributes() {
        decode_as_everything(raw.value(), &txid);
        let _ = raw.attr_type().name();
    }
    decode_through_message(&msg);
    if let Err(err) = msg.check_fingerprint() {
        let _ = err.to_string();
    }
    for key in &keys.keys {
        let _ = msg.check_integrity(key);
        let _ = msg.check_integrity_with(key, IntegrityAlgorithm::Sha1);
        let _ = msg.check_integrity_with(key, IntegrityAlgorithm::Sha256);
    }
    true
}

/// Feeds `data` to a framer of each mode, in two pieces, and drains it.
fn frame(data: &[u8], split: usize) {
    for mode in [
        FramingMode::Stun,
        FramingMode::StunAndChannelData,
        FramingMode::Rfc4571,
    ] {
        let mut framer = StreamFramer::new(mode);
        let split = split.min(data.len());
        for piece in [&data[..split], &data[split..]] {
            framer.push(piece);
            // Every frame consumes at least 2 bytes; an error ends the loop.
            for _ in 0..=data.len() {
                match framer.next_frame() {
                    None => break,
                    Some(Err(err)) => {
                        let _ = err.to_string();
                        break;
                    }
                    Some(Ok(frame)) => {
                        let _ = format!("{frame:?}");
                    }
                }
            }
        }
    }
}

/// A message with a valid header and random attributes, so that the parser gets past the
/// header and the decoders see values of every type.
fn random_message(rng: &mut XorShift) -> Vec<u8> {
    let mut out = vec![rng.byte() & 0x3F, rng.byte(), 0, 0, 0x21, 0x12, 0xA4, 0x42];
    out.extend_from_slice(&rng.bytes(12));
    for _ in 0..rng.below(6) {
        let ty = TYPES[rng.below(TYPES.len())];
        // Mostly the sizes typed attributes have, sometimes anything.
        let len = match rng.below(4) {
            0 => [0, 1, 4, 8, 20, 32][rng.below(6)],
            1 => rng.below(40),
            _ => [4, 8, 20, 32][rng.below(4)],
        };
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        let mut value = rng.bytes(len);
        if rng.below(3) == 0 && len >= 2 {
            // Plausible address families and error classes.
            value[1] = [1, 2][rng.below(2)];
            value[0] = [0, 1, 2][rng.below(3)];
        }
        out.extend_from_slice(&value);
        out.resize(out.len() + (4 - len % 4) % 4, 0);
    }
    let body = (out.len() - HEADER_LEN) as u16;
    out[2..4].copy_from_slice(&body.to_be_bytes());
    out
}

/// A random change to a valid message.
fn mutate(rng: &mut XorShift, base: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 | 1 => {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
            2 => {
                let at = rng.below(out.len());
                out[at] = rng.byte();
            }
            3 => out.truncate(rng.below(out.len() + 1)),
            4 => {
                let n = rng.below(9);
                let extra = rng.bytes(n);
                out.extend_from_slice(&extra);
            }
            _ => {
                // Rewrite a 16-bit field at a 4-byte boundary: a type or a length.
                if out.len() >= 4 {
                    let at = rng.below(out.len() / 4) * 4 + 2 * rng.below(2);
                    let v = [0u16, 4, 8, 0xFFFF, rng.next_u64() as u16][rng.below(5)];
                    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
        if out.is_empty() {
            break;
        }
    }
    out
}

#[test]
fn random_bytes_never_panic() {
    let keys = Keys::new();
    let mut rng = XorShift(0x5EED_0F57_0001);
    for _ in 0..ITERATIONS {
        let len = rng.below(200);
        let data = rng.bytes(len);
        exercise(&data, &keys);
        frame(&data, rng.below(len + 1));
    }
}

#[test]
fn random_messages_never_panic() {
    let keys = Keys::new();
    let mut rng = XorShift(0x5EED_0F57_0002);
    let mut parsed = 0;
    for _ in 0..ITERATIONS {
        let data = random_message(&mut rng);
        if exercise(&data, &keys) {
            parsed += 1;
        }
        frame(&data, rng.below(data.len() + 1));
    }
    // The generator is only useful if most inputs get past the parser to the decoders.
    assert!(
        parsed > ITERATIONS / 4,
        "only {parsed} of {ITERATIONS} parsed"
    );
}

#[test]
fn mutated_vectors_never_panic() {
    let keys = Keys::new();
    let vectors: Vec<Vec<u8>> = [
        RFC5769_REQUEST,
        RFC5769_IPV4_RESPONSE,
        RFC5769_IPV6_RESPONSE,
        RFC5769_LONG_TERM_REQUEST,
        RFC8489_B1,
    ]
    .into_iter()
    .map(hex)
    .collect();
    let mut rng = XorShift(0x5EED_0F57_0003);
    let mut parsed = 0;
    for _ in 0..ITERATIONS {
        let base = &vectors[rng.below(vectors.len())];
        let data = mutate(&mut rng, base);
        if exercise(&data, &keys) {
            parsed += 1;
        }
        frame(&data, rng.below(data.len() + 1));
    }
    assert!(parsed > 0, "no mutation parsed");
}
