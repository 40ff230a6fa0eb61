//! The project's own seeded random number generator.
//!
//! candle cannot seed its CPU generator, so every random draw of a run (weight
//! initialisation, shuffling, dropout masks, teacher forcing) comes from a
//! [`Rng`] derived from the run's seed. Its whole state is one `u64`, which makes it
//! trivial to store in a checkpoint.

use serde::{Deserialize, Serialize};

/// SplitMix64: the same stream as `splitmix64_stream` in `shared/bench/torch_ref.py`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose first output is splitmix64's first output for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for one purpose (e.g. "dropout") of a run.
    pub fn derive(seed: u64, purpose: &str) -> Self {
        // FNV-1a over the purpose, mixed into the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in purpose.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut r = Self::new(seed ^ h);
        let _ = r.next_u64();
        r
    }

    /// The raw state, for checkpoints.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Restore a generator from [`Rng::state`].
    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 24 bits of precision.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Standard normal by Box-Muller.
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (`n > 0`), by modulo as `torch_ref.py` does.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle, identical to `shuffled_indices` in `torch_ref.py`
    /// when the generator was made with `Rng::new(seed * 1_000_003 + epoch)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // First outputs of splitmix64 seeded with 0 (the published test vector,
        // also what torch_ref.py's splitmix64_stream(0) yields).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn shuffle_matches_torch_ref() {
        // python3 -c "import sys; sys.path.insert(0,'shared/bench'); import torch_ref as t;
        //             print(t.shuffled_indices(10, 0, 0))"  (pure python, no torch needed for this fn)
        let mut idx: Vec<usize> = (0..10).collect();
        Rng::new(0).shuffle(&mut idx);
        assert_eq!(idx, vec![6, 3, 2, 9, 8, 1, 4, 7, 0, 5]);
    }

    #[test]
    fn floats_in_range_and_derived_streams_differ() {
        let mut r = Rng::derive(7, "init");
        for _ in 0..1000 {
            let x = r.uniform(-0.5, 0.5);
            assert!((-0.5..0.5).contains(&x));
        }
        assert_ne!(Rng::derive(7, "init").next_u64(), Rng::derive(7, "dropout").next_u64());
    }
}
