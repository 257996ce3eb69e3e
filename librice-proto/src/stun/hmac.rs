//! HMAC (RFC 2104) for MESSAGE-INTEGRITY (HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256
//! (HMAC-SHA256), on RustCrypto's compression functions.
//!
//! A STUN message is hashed once per integrity computation, from a key that is reused for
//! many messages. A [`PadKey`] keeps only the hash states after the key's inner and outer
//! padded blocks (RFC 2104 §2): 40 bytes for SHA-1 and 64 for SHA-256, where a keyed
//! `Hmac<Sha256>` keeps 144, and every integrity key of every agent of a server holds one.
//! The compression function then runs directly over the message blocks, the final padded
//! block built on the stack: the same cryptographic work as a generic HMAC, without the
//! generic buffering around each update. Both hashes share the construction: 64-byte
//! blocks, big-endian 32-bit words, and the same padding (FIPS 180-4 §5.1.1). Tests
//! compare both with the `hmac` crate.

use sha2::Digest;

/// The block size of SHA-1 and SHA-256.
const BLOCK: usize = 64;

/// A hash function as HMAC uses it here: its state, initial value, compression function
/// and digest (FIPS 180-4).
pub(crate) trait BlockHash {
    /// The chaining state (32-bit words).
    type State: Copy + AsRef<[u32]>;
    /// A digest (`[u8; 4 * words]`).
    type Out: Copy + Default + AsRef<[u8]> + AsMut<[u8]>;
    /// The initial state.
    const H0: Self::State;
    /// Hashes whole blocks into `state`.
    fn compress(state: &mut Self::State, blocks: &[[u8; BLOCK]]);
    /// The digest of `data` (a key longer than a block is hashed first, RFC 2104 §2).
    fn digest(data: &[u8]) -> Self::Out;
}

/// SHA-1 (FIPS 180-4 §6.1).
pub(crate) enum Sha1Hash {}

impl BlockHash for Sha1Hash {
    type State = [u32; 5];
    type Out = [u8; 20];
    // FIPS 180-4 §5.3.1.
    const H0: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    #[inline]
    fn compress(state: &mut [u32; 5], blocks: &[[u8; BLOCK]]) {
        sha1::block_api::compress(state, blocks);
    }
    fn digest(data: &[u8]) -> [u8; 20] {
        sha1::Sha1::digest(data).into()
    }
}

/// SHA-256 (FIPS 180-4 §6.2).
pub(crate) enum Sha256Hash {}

impl BlockHash for Sha256Hash {
    type State = [u32; 8];
    type Out = [u8; 32];
    // FIPS 180-4 §5.3.3.
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
    #[inline]
    fn compress(state: &mut [u32; 8], blocks: &[[u8; BLOCK]]) {
        sha2::block_api::compress256(state, blocks);
    }
    fn digest(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }
}

/// An HMAC-SHA1 key (MESSAGE-INTEGRITY, RFC 8489 §14.5).
pub(crate) type HmacSha1Key = PadKey<Sha1Hash>;
/// An HMAC-SHA256 key (MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6).
pub(crate) type HmacSha256Key = PadKey<Sha256Hash>;

/// An HMAC key: the hash states after the inner and outer padded key blocks.
pub(crate) struct PadKey<H: BlockHash> {
    inner: H::State,
    outer: H::State,
}

impl<H: BlockHash> Clone for PadKey<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner,
            outer: self.outer,
        }
    }
}

impl<H: BlockHash> PadKey<H> {
    /// Keys the MAC (RFC 2104 §2: keys longer than a block are hashed first).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; BLOCK];
        if key.len() > BLOCK {
            let digest = H::digest(key);
            k[..digest.as_ref().len()].copy_from_slice(digest.as_ref());
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner = H::H0;
        H::compress(&mut inner, &[k.map(|b| b ^ 0x36)]);
        let mut outer = H::H0;
        H::compress(&mut outer, &[k.map(|b| b ^ 0x5C)]);
        Self { inner, outer }
    }

    /// The MAC of the parts, in order.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> H::Out {
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
                H::compress(&mut state, &[buf]);
            }
            let (full, tail) = p.as_chunks::<BLOCK>();
            if !full.is_empty() {
                H::compress(&mut state, full);
            }
            buf[..tail.len()].copy_from_slice(tail);
            used = tail.len();
        }
        finish_in_place::<H>(&mut state, &mut buf, used, total);
        self.outer_hash(&digest_of::<H>(&state))
    }

    /// The MAC of `data` with bytes 2..4 (a STUN header's length field) replaced by
    /// `length`: what MESSAGE-INTEGRITY covers (RFC 8489 §14.5), computed without copying
    /// the message first. `data` must hold at least 4 bytes.
    #[inline]
    pub(crate) fn mac_with_length(&self, data: &[u8], length: u16) -> H::Out {
        let mut state = self.inner;
        let (full, tail) = data.as_chunks::<BLOCK>();
        // The tail and the padding take one or two blocks, hashed in one call.
        let mut last = [[0u8; BLOCK]; 2];
        last[0][..tail.len()].copy_from_slice(tail);
        match full.split_first() {
            Some((first, rest)) => {
                let mut first = *first;
                first[2..4].copy_from_slice(&length.to_be_bytes());
                H::compress(&mut state, &[first]);
                if !rest.is_empty() {
                    H::compress(&mut state, rest);
                }
            }
            None => last[0][2..4].copy_from_slice(&length.to_be_bytes()),
        }
        last[0][tail.len()] = 0x80;
        let n = if tail.len() + 9 > BLOCK { 2 } else { 1 };
        let bits = (BLOCK + data.len()) as u64 * 8;
        last[n - 1][BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        H::compress(&mut state, &last[..n]);
        self.outer_hash(&digest_of::<H>(&state))
    }

    /// The outer hash of RFC 2104 over the inner digest.
    #[inline]
    fn outer_hash(&self, inner: &H::Out) -> H::Out {
        let inner = inner.as_ref();
        let mut state = self.outer;
        let mut block = [0u8; BLOCK];
        block[..inner.len()].copy_from_slice(inner);
        let total = (BLOCK + inner.len()) as u64;
        finish_in_place::<H>(&mut state, &mut block, inner.len(), total);
        digest_of::<H>(&state)
    }
}

/// Pads the first `fill` bytes of `block` for a message of `total` bytes and hashes them
/// (FIPS 180-4 §5.1.1).
#[inline]
fn finish_in_place<H: BlockHash>(
    state: &mut H::State,
    block: &mut [u8; BLOCK],
    fill: usize,
    total: u64,
) {
    block[fill] = 0x80;
    block[fill + 1..].fill(0);
    if fill + 1 > BLOCK - 8 {
        H::compress(state, &[*block]);
        block.fill(0);
    }
    block[BLOCK - 8..].copy_from_slice(&(total * 8).to_be_bytes());
    H::compress(state, &[*block]);
}

/// The digest a state stands for: its words, big-endian.
#[inline]
fn digest_of<H: BlockHash>(state: &H::State) -> H::Out {
    let mut out = H::Out::default();
    for (chunk, word) in out.as_mut().chunks_exact_mut(4).zip(state.as_ref()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit, Mac};

    use super::*;

    /// The `hmac` crate's MAC of the parts, for comparison.
    type Reference = fn(&[u8], &[&[u8]]) -> Vec<u8>;

    fn reference_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| mac.update(p));
        mac.finalize().into_bytes().to_vec()
    }

    fn reference_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
        parts.iter().for_each(|p| mac.update(p));
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Published test vectors: (key, data, MAC in hex).
    fn vectors<H: BlockHash>(cases: &[(&[u8], &[u8], &str)]) {
        for (key, data, expected) in cases {
            let key = PadKey::<H>::new(key);
            assert_eq!(hex(key.mac(&[data]).as_ref()), *expected);
            let length = u16::from_be_bytes([data[2], data[3]]);
            assert_eq!(hex(key.mac_with_length(data, length).as_ref()), *expected);
        }
    }

    /// Deterministic pseudo-random keys and messages of every length around the block and
    /// padding boundaries, whole, in three parts cut at varying places (empty parts too),
    /// and with a STUN length field patched in, against the `hmac` crate.
    fn matches_the_reference<H: BlockHash>(reference: Reference) {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for key_len in [0usize, 1, 20, 32, 63, 64, 65, 100] {
            let key: Vec<u8> = (0..key_len).map(|_| next()).collect();
            let k = PadKey::<H>::new(&key);
            for len in (0..200).chain([255, 256, 257, 1000]) {
                let data: Vec<u8> = (0..len).map(|_| next()).collect();
                let expected = reference(&key, &[&data]);
                assert_eq!(
                    k.mac(&[&data]).as_ref(),
                    expected,
                    "key {key_len}, len {len}"
                );
                let a = usize::from(next()) % (len + 1);
                let b = a + usize::from(next()) % (len - a + 1);
                let parts: [&[u8]; 3] = [&data[..a], &data[a..b], &data[b..]];
                assert_eq!(
                    k.mac(&parts).as_ref(),
                    expected,
                    "key {key_len}, len {len}, cut {a} {b}"
                );
                if len >= 4 {
                    let mut patched = data.clone();
                    patched[2..4].copy_from_slice(&0xBEEFu16.to_be_bytes());
                    assert_eq!(
                        k.mac_with_length(&data, 0xBEEF).as_ref(),
                        reference(&key, &[&patched]),
                        "key {key_len}, len {len}, patched"
                    );
                }
            }
        }
    }

    #[test]
    fn hmac_sha1_rfc2202_vectors() {
        // RFC 2202 §3, test cases 1, 2 and 6 (a key longer than a block).
        vectors::<Sha1Hash>(&[
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
        ]);
    }

    #[test]
    fn hmac_sha256_rfc4231_vectors() {
        // RFC 4231 §4.2, §4.3 and §4.7 (a key longer than a block).
        vectors::<Sha256Hash>(&[
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
        ]);
    }

    #[test]
    fn hmac_sha1_matches_the_hmac_crate() {
        matches_the_reference::<Sha1Hash>(reference_sha1);
    }

    #[test]
    fn hmac_sha256_matches_the_hmac_crate() {
        matches_the_reference::<Sha256Hash>(reference_sha256);
    }
}
