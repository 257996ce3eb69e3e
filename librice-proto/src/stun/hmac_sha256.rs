//! HMAC-SHA256 (RFC 2104) for MESSAGE-INTEGRITY-SHA256, on RustCrypto's SHA-256
//! compression function.
//!
//! As for HMAC-SHA1 (`hmac_sha1.rs`), a key keeps only the SHA-256 states after its inner
//! and outer padded blocks (64 bytes), where a keyed `Hmac<Sha256>` keeps 144: every
//! integrity key of every agent of a server holds one. Tests compare it with the `hmac`
//! crate.

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};

/// SHA-256's block size.
const BLOCK: usize = 64;

/// SHA-256's initial state (FIPS 180-4 §5.3.3).
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// An HMAC-SHA256 key: the SHA-256 states after the inner and outer padded key blocks.
#[derive(Clone)]
pub(crate) struct HmacSha256Key {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacSha256Key {
    /// Keys the MAC (RFC 2104 §2: keys longer than a block are hashed first).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner = H0;
        compress256(&mut inner, &[k.map(|b| b ^ 0x36)]);
        let mut outer = H0;
        compress256(&mut outer, &[k.map(|b| b ^ 0x5C)]);
        Self { inner, outer }
    }

    /// The MAC of the parts, in order.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut state = self.inner;
        let mut buf = [0u8; BLOCK];
        let mut used = 0;
        // The inner padded key block is hashed already.
        let mut total = BLOCK as u64;
        for part in parts {
            let mut p = *part;
            total += p.len() as u64;
            if used > 0 {
                let n = (BLOCK - used).min(p.len());
                buf[used..used + n].copy_from_slice(&p[..n]);
                used += n;
                p = &p[n..];
                if used < BLOCK {
                    continue;
                }
                compress256(&mut state, &[buf]);
            }
            let (full, tail) = p.as_chunks::<BLOCK>();
            if !full.is_empty() {
                compress256(&mut state, full);
            }
            buf[..tail.len()].copy_from_slice(tail);
            used = tail.len();
        }
        finish_in_place(&mut state, &mut buf, used, total);
        let inner = to_bytes(&state);
        let mut state = self.outer;
        let mut block = [0u8; BLOCK];
        block[..32].copy_from_slice(&inner);
        finish_in_place(&mut state, &mut block, 32, (BLOCK + 32) as u64);
        to_bytes(&state)
    }
}

/// Pads the last `fill` bytes of `block` for a message of `total` bytes and hashes them
/// (FIPS 180-4 §5.1.1).
fn finish_in_place(state: &mut [u32; 8], block: &mut [u8; BLOCK], fill: usize, total: u64) {
    block[fill] = 0x80;
    block[fill + 1..].fill(0);
    if fill + 1 > BLOCK - 8 {
        compress256(state, &[*block]);
        block.fill(0);
    }
    block[BLOCK - 8..].copy_from_slice(&(total * 8).to_be_bytes());
    compress256(state, &[*block]);
}

fn to_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit, Mac};

    use super::*;

    fn reference(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| mac.update(p));
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn rfc4231_vectors() {
        // RFC 4231 §4.2, §4.3 and §4.7 (a key longer than a block).
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, expected) in cases {
            let mac = HmacSha256Key::new(key).mac(&[data]);
            let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, expected);
        }
    }

    #[test]
    fn matches_the_hmac_crate_for_many_keys_lengths_and_splits() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for key_len in [0usize, 1, 20, 32, 63, 64, 65, 100] {
            let key: Vec<u8> = (0..key_len).map(|_| next()).collect();
            let k = HmacSha256Key::new(&key);
            for len in (0..200).chain([255, 256, 257, 1000]) {
                let data: Vec<u8> = (0..len).map(|_| next()).collect();
                assert_eq!(
                    k.mac(&[&data]),
                    reference(&key, &[&data]),
                    "key {key_len}, len {len}"
                );
                // The same bytes in three parts, cut at varying places (empty parts too).
                let a = usize::from(next()) % (len + 1);
                let b = a + usize::from(next()) % (len - a + 1);
                let parts: [&[u8]; 3] = [&data[..a], &data[a..b], &data[b..]];
                assert_eq!(
                    k.mac(&parts),
                    reference(&key, &[&data]),
                    "key {key_len}, len {len}, cut {a} {b}"
                );
            }
        }
    }
}
