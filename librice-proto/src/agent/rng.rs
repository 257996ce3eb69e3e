//! The agent's random number generator, kept small.

use std::convert::Infallible;
use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

/// A ChaCha8 stream ([`ChaCha8Rng`]) kept as its seed and position: 48 bytes instead of the
/// generator's 304 (its 256-byte output buffer), which a server pays for every agent it
/// holds. Each draw rebuilds the generator at the position and computes one buffer of
/// output; the agent draws rarely (credentials, tie-breaker, transaction ids, consent
/// jitter), never per packet. The values drawn are exactly those of the `ChaCha8Rng`
/// seeded the same way.
#[derive(Clone)]
pub(super) struct CompactRng {
    seed: [u8; 32],
    /// The position in the stream, in 32-bit words ([`ChaCha8Rng::get_word_pos`]).
    word_pos: u128,
}

impl CompactRng {
    /// The stream of `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn seed_from_u64(seed: u64) -> Self {
        Self {
            seed: ChaCha8Rng::seed_from_u64(seed).get_seed(),
            word_pos: 0,
        }
    }

    /// Runs `f` on the generator at the current position, then moves past what it drew.
    fn draw<R>(&mut self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_word_pos(self.word_pos);
        let drawn = f(&mut rng);
        self.word_pos = rng.get_word_pos();
        drawn
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
        Ok(self.draw(|rng| rng.next_u32()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.draw(|rng| rng.next_u64()))
    }

    fn try_fill_bytes(&mut self, bytes: &mut [u8]) -> Result<(), Infallible> {
        self.draw(|rng| rng.fill_bytes(bytes));
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
        // Mixed widths, across the generator's 64-word buffer boundaries.
        for i in 0..200 {
            match i % 4 {
                0 => assert_eq!(compact.next_u32(), full.next_u32()),
                1 => assert_eq!(compact.next_u64(), full.next_u64()),
                2 => {
                    let (mut a, mut b) = ([0u8; 12], [0u8; 12]);
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
        assert!(std::mem::size_of::<CompactRng>() <= 48);
    }
}
