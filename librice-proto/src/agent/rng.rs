//! The agent's random number generator, kept small.

use std::convert::Infallible;
use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

/// Words of output kept between draws: enough for an agent's tie-breaker and credentials
/// (9 words) or five transaction ids (3 words each) from one computation.
const CACHE: usize = 16;

/// A ChaCha8 stream ([`ChaCha8Rng`]) kept as its 64-bit seed (expanded to the 256-bit
/// key again at each rebuild, a few multiplications), its position and the next
/// [`CACHE`] words of output: 88 bytes instead of the generator's 304 (its 256-byte
/// output buffer), which a server pays for every agent it holds. When the cached words
/// run out, the generator is rebuilt at the position (one ChaCha computation, as the
/// generator itself makes every 64 words). The agent draws rarely (credentials,
/// tie-breaker, transaction ids, consent jitter), never per packet. The values drawn are
/// exactly those of the `ChaCha8Rng` seeded the same way: words in stream order, two per
/// `u64` (low first), little-endian bytes with a partial word consumed whole, as
/// `rand_core`'s `BlockRng` serves them.
#[derive(Clone)]
pub(super) struct CompactRng {
    /// The seed given to [`Self::seed_from_u64`].
    seed: u64,
    /// The position in the stream of the next word served, in 32-bit words
    /// ([`ChaCha8Rng::get_word_pos`]).
    word_pos: u64,
    /// The words at `word_pos` onwards: the last `cached` of `cache`.
    cache: [u32; CACHE],
    cached: u8,
}

impl CompactRng {
    /// The stream of `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn seed_from_u64(seed: u64) -> Self {
        Self {
            seed,
            word_pos: 0,
            cache: [0; CACHE],
            cached: 0,
        }
    }

    /// The next word of the stream.
    fn next_word(&mut self) -> u32 {
        if self.cached == 0 {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_word_pos(u128::from(self.word_pos));
            self.cache = std::array::from_fn(|_| rng.next_u32());
            self.cached = CACHE as u8;
        }
        let word = self.cache[CACHE - usize::from(self.cached)];
        self.cached -= 1;
        self.word_pos += 1;
        word
    }
}

impl fmt::Debug for CompactRng {
    /// Leaves the seed out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactRng").finish_non_exhaustive()
    }
}

impl TryRng for CompactRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.next_word())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let lo = self.next_word();
        let hi = self.next_word();
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }

    fn try_fill_bytes(&mut self, bytes: &mut [u8]) -> Result<(), Infallible> {
        for chunk in bytes.chunks_mut(4) {
            let word = self.next_word().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for CompactRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_same_values_as_the_chacha8_generator() {
        let mut compact = CompactRng::seed_from_u64(42);
        let mut full = ChaCha8Rng::seed_from_u64(42);
        // Mixed widths, across the cache's and the generator's buffer boundaries.
        for i in 0..400 {
            match i % 5 {
                0 => assert_eq!(compact.next_u32(), full.next_u32()),
                1 => assert_eq!(compact.next_u64(), full.next_u64()),
                2 => {
                    let (mut a, mut b) = ([0u8; 12], [0u8; 12]);
                    compact.fill_bytes(&mut a);
                    full.fill_bytes(&mut b);
                    assert_eq!(a, b);
                }
                3 => {
                    let (mut a, mut b) = ([0u8; 7], [0u8; 7]);
                    compact.fill_bytes(&mut a);
                    full.fill_bytes(&mut b);
                    assert_eq!(a, b);
                }
                _ => {
                    let (mut a, mut b) = ([0u8; 22], [0u8; 22]);
                    compact.fill_bytes(&mut a);
                    full.fill_bytes(&mut b);
                    assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn is_small() {
        assert!(std::mem::size_of::<CompactRng>() <= 112);
    }
}
