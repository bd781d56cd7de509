//! The paper's 1-D toy problem (E1): x ~ N(+1, 1) with label 0 and x ~ N(-1, 1) with label 1.
//!
//! The training set has `points` per class, as in the paper (10); the test set is ten times
//! larger, drawn from the same distribution, to estimate the population loss.

use super::rng::{Purpose, standard_normal, stream};
use super::{Features, RawDataset, RawSplit};
use crate::config::DatasetName;

pub fn generate(points: usize, seed: u64) -> RawDataset {
    let split = |per_class: usize, key: u64| {
        let mut rng = stream(seed, Purpose::Synthetic, &[key]);
        let mut values = Vec::with_capacity(2 * per_class);
        let mut labels = Vec::with_capacity(2 * per_class);
        for (label, centre) in [(0i64, 1.0f64), (1, -1.0)] {
            for _ in 0..per_class {
                values.push((centre + standard_normal(&mut rng)) as f32);
                labels.push(label);
            }
        }
        RawSplit {
            features: Features::Vectors { dim: 1, values },
            labels,
        }
    };
    RawDataset {
        name: DatasetName::Toy,
        train: split(points, 0),
        test: split(10 * points, 1),
        classes: 2,
        mean: vec![0.0],
        std: vec![1.0],
        source: format!("toy: N(+1, 1) vs N(-1, 1), {points} train points per class"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toy_classes_sit_around_plus_and_minus_one() {
        let d = generate(2000, 3);
        let Features::Vectors { values, .. } = &d.test.features else {
            panic!("toy data are vectors")
        };
        let mean = |label: i64| {
            let xs: Vec<f64> = values
                .iter()
                .zip(&d.test.labels)
                .filter(|(_, l)| **l == label)
                .map(|(v, _)| *v as f64)
                .collect();
            xs.iter().sum::<f64>() / xs.len() as f64
        };
        assert!((mean(0) - 1.0).abs() < 0.05, "{}", mean(0));
        assert!((mean(1) + 1.0).abs() < 0.05, "{}", mean(1));
        assert_eq!(d.train.len(), 4000);
    }
}
