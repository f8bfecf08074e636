//! A small seeded random number generator, so that initialisation, shuffling and data
//! splits give the same bits on every machine and with every version of this crate.
//!
//! The generator is SplitMix64 (G. Steele, D. Lea and C. Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014; the constants of Java's
//! `SplittableRandom`): a 64-bit state advanced by the golden-ratio increment
//! `0x9E3779B97F4A7C15`, each output a bijective mix of the state. It passes BigCrush, has
//! period 2^64 and is more than enough for weight initialisation and minibatch order. It is
//! not cryptographic. Its sequence is part of this crate's contract: changing it would
//! change every seeded result, so it will not change.

/// SplitMix64: a seeded, reproducible 64-bit generator.
///
/// # Example
/// ```
/// use pcnet_std::rng::SplitMix64;
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let x = a.uniform(-0.5, 0.5);
/// assert!((-0.5..0.5).contains(&x));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform value in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// A uniform integer in `0..bound` (`bound > 0`), without modulo bias (Lemire's
    /// multiply-and-reject method). Returns 0 when `bound == 0`.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Shuffles `items` in place (Fisher-Yates, from the back).
    pub fn shuffle<X>(&mut self, items: &mut [X]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// A new generator for a sub-task, seeded from this one (so adding a consumer of one
    /// stream does not shift another's).
    pub fn fork(&mut self) -> SplitMix64 {
        SplitMix64::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outputs_match_the_published_reference_sequence() {
        // SplitMix64 with seed 1234567, the test vector of the reference C implementation
        // (Vigna's splitmix64.c, as used by the xoshiro authors' test suite).
        let mut rng = SplitMix64::new(1234567);
        let expected = [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        for value in expected {
            assert_eq!(rng.next_u64(), value);
        }
    }

    #[test]
    fn below_stays_in_range_and_shuffle_is_a_permutation() {
        let mut rng = SplitMix64::new(3);
        for bound in [1u64, 2, 3, 10, 1000] {
            for _ in 0..200 {
                assert!(rng.below(bound) < bound);
            }
        }
        let mut items: Vec<usize> = (0..100).collect();
        rng.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(items, sorted, "a shuffle of 100 items left them in order");
    }

    #[test]
    fn uniform_values_fill_the_unit_interval_evenly() {
        // 10 bins of 10,000 draws: each bin's count is Binomial(1e5, 0.1), sd = 95;
        // 6 sd = 570 is a bound no correct generator misses.
        let mut rng = SplitMix64::new(99);
        let mut bins = [0usize; 10];
        for _ in 0..100_000 {
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
            bins[(x * 10.0) as usize] += 1;
        }
        for count in bins {
            assert!(count.abs_diff(10_000) < 570, "bin count {count}");
        }
    }
}
