//! Deterministic random streams derived from the experiment seed.
//!
//! Every random choice of the engine (data order, crops, flips, subsets) draws from a stream
//! keyed by what it is for and where it happens (epoch, batch). Any position of a run can thus
//! be replayed without saving generator state, which is what makes resuming exact.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random stream is used for; part of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The order of training samples in an epoch.
    Shuffle = 1,
    /// Crops and flips of one training batch.
    Augment = 2,
    /// Fixed subsets of the data (training subset, evaluation subset).
    Subset = 3,
    /// Synthetic data (the toy problem).
    Synthetic = 4,
    /// Batches of a BN-statistics recomputation pass.
    BnPass = 5,
    /// Random probe directions.
    Direction = 6,
    /// Seeds for libtorch's generator (dropout).
    Torch = 7,
    /// Random vectors of curvature estimates (Lanczos starts, trace probes, noise).
    Curvature = 8,
    /// Batches, augmentation and the t of each step of a Bézier curve's training.
    Curve = 9,
}

/// The generator for `purpose` at position `keys` (e.g. `[epoch, batch]`).
pub fn stream(seed: u64, purpose: Purpose, keys: &[u64]) -> ChaCha8Rng {
    let mut h = splitmix(seed ^ 0x5641_4c4c_4559_5321);
    h = splitmix(h ^ purpose as u64);
    for &k in keys {
        h = splitmix(h ^ k);
    }
    ChaCha8Rng::seed_from_u64(h)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A standard normal sample (Box-Muller; exact enough for data and directions, and free of
/// extra dependencies).
pub fn standard_normal(rng: &mut impl rand::Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A seed for libtorch's own generator at a position of the run.
pub fn torch_seed(seed: u64, epoch: u32, batch: u32) -> i64 {
    use rand::Rng;
    (stream(seed, Purpose::Torch, &[u64::from(epoch), u64::from(batch)]).r#gen::<u64>() >> 1) as i64
}

/// A seeded permutation of `0..n`.
pub fn permutation(n: usize, rng: &mut ChaCha8Rng) -> Vec<i64> {
    use rand::seq::SliceRandom;
    let mut v: Vec<i64> = (0..n as i64).collect();
    v.shuffle(rng);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_replay_and_differ_by_key() {
        let a: u64 = stream(1, Purpose::Shuffle, &[3]).r#gen();
        let b: u64 = stream(1, Purpose::Shuffle, &[3]).r#gen();
        let c: u64 = stream(1, Purpose::Shuffle, &[4]).r#gen();
        let d: u64 = stream(1, Purpose::Augment, &[3]).r#gen();
        let e: u64 = stream(2, Purpose::Shuffle, &[3]).r#gen();
        assert_eq!(a, b);
        assert!(a != c && a != d && a != e);
    }

    #[test]
    fn a_permutation_holds_every_index_once() {
        let mut p = permutation(1000, &mut stream(7, Purpose::Shuffle, &[0]));
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
