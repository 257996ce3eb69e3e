//! HMAC-SHA1 (RFC 2104) for MESSAGE-INTEGRITY, on RustCrypto's SHA-1 compression function.
//!
//! A STUN message is hashed once per MESSAGE-INTEGRITY computation, from a key that is
//! reused for many messages. This keeps the two pad states of the key (RFC 2104 §2) and
//! runs the compression function directly over the message blocks, the final padded
//! block built on the stack: the same cryptographic work as a generic HMAC, without the
//! generic buffering around each update. Tests compare it with the `hmac` crate.

use sha1::block_api::compress;
use sha1::{Digest, Sha1};

/// SHA-1's block size.
const BLOCK: usize = 64;

/// SHA-1's initial state (FIPS 180-4 §5.3.1).
const H0: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// An HMAC-SHA1 key: the SHA-1 states after the inner and outer padded key blocks.
#[derive(Clone)]
pub(crate) struct HmacSha1Key {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl HmacSha1Key {
    /// Keys the MAC (RFC 2104 §2: keys longer than a block are hashed first).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..20].copy_from_slice(&Sha1::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let ipad = k.map(|b| b ^ 0x36);
        let opad = k.map(|b| b ^ 0x5C);
        let mut inner = H0;
        compress(&mut inner, &[ipad]);
        let mut outer = H0;
        compress(&mut outer, &[opad]);
        Self { inner, outer }
    }

    /// The MAC of `data` with bytes 2..4 (a STUN header's length field) replaced by
    /// `length`: what MESSAGE-INTEGRITY covers (RFC 8489 §14.5), computed without copying
    /// the message first. `data` must hold at least 4 bytes.
    #[inline]
    pub(crate) fn mac_with_length(&self, data: &[u8], length: u16) -> [u8; 20] {
        let mut state = self.inner;
        let (full, tail) = data.as_chunks::<BLOCK>();
        // The tail and SHA-1 padding take one or two blocks, hashed in one call.
        let mut last = [[0u8; BLOCK]; 2];
        last[0][..tail.len()].copy_from_slice(tail);
        match full.split_first() {
            Some((first, rest)) => {
                let mut first = *first;
                first[2..4].copy_from_slice(&length.to_be_bytes());
                compress(&mut state, &[first]);
                if !rest.is_empty() {
                    compress(&mut state, rest);
                }
            }
            None => last[0][2..4].copy_from_slice(&length.to_be_bytes()),
        }
        last[0][tail.len()] = 0x80;
        let n = if tail.len() + 9 > BLOCK { 2 } else { 1 };
        let bits = (BLOCK + data.len()) as u64 * 8;
        last[n - 1][BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut state, &last[..n]);
        self.outer_hash(&to_bytes(&state))
    }

    /// The outer hash of RFC 2104 over the inner digest.
    #[inline]
    fn outer_hash(&self, inner: &[u8; 20]) -> [u8; 20] {
        let mut state = self.outer;
        let mut block = [0u8; BLOCK];
        block[..20].copy_from_slice(inner);
        finish_in_place(&mut state, &mut block, 20, (BLOCK + 20) as u64);
        to_bytes(&state)
    }
}

#[inline]
fn finish_in_place(state: &mut [u32; 5], block: &mut [u8; BLOCK], fill: usize, total: u64) {
    block[fill] = 0x80;
    block[fill + 1..].fill(0);
    if fill + 1 > BLOCK - 8 {
        compress(state, &[*block]);
        block.fill(0);
    }
    block[BLOCK - 8..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(state, &[*block]);
}

#[inline]
fn to_bytes(state: &[u32; 5]) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit, Mac};

    use super::*;

    fn reference(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| mac.update(p));
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn rfc2202_vectors() {
        // RFC 2202 §3, test cases 1, 2 and 6 (a key longer than a block).
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ];
        for (key, data, expected) in cases {
            let length = u16::from_be_bytes([data[2], data[3]]);
            let mac = HmacSha1Key::new(key).mac_with_length(data, length);
            let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected);
        }
    }

    #[test]
    fn length_patched_mac_matches_a_patched_copy() {
        let k = HmacSha1Key::new(b"VOkJxbRl1RmTxUk/WvJxBt");
        for len in [
            4usize, 20, 55, 56, 60, 63, 64, 65, 100, 119, 120, 128, 200, 300,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut patched = data.clone();
            patched[2..4].copy_from_slice(&0xBEEFu16.to_be_bytes());
            assert_eq!(
                k.mac_with_length(&data, 0xBEEF),
                reference(b"VOkJxbRl1RmTxUk/WvJxBt", &[&patched]),
                "len {len}"
            );
        }
    }

    #[test]
    fn matches_the_hmac_crate_for_many_keys_and_lengths() {
        // Deterministic pseudo-random keys and messages of every length around the block
        // and padding boundaries.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for key_len in [0usize, 1, 20, 63, 64, 65, 100] {
            let key: Vec<u8> = (0..key_len).map(|_| next()).collect();
            let k = HmacSha1Key::new(&key);
            for len in (4..200).chain([255, 256, 257, 1000]) {
                let data: Vec<u8> = (0..len).map(|_| next()).collect();
                let length = u16::from_be_bytes([data[2], data[3]]);
                assert_eq!(
                    k.mac_with_length(&data, length),
                    reference(&key, &[&data]),
                    "key {key_len}, len {len}"
                );
            }
        }
    }
}
