//! The SWA average and the BN recomputation, checked against sums computed here by hand.

use tch::{Device, Kind, Tensor};
use valleys::config::{DataConfig, DatasetName, ModelConfig};
use valleys::data::dataset::Dataset;
use valleys::data::{Features, Images, RawDataset, RawSplit};
use valleys::model::Model;
use valleys::model::eval;
use valleys::train::swa::SwaAverage;

fn mlp(yaml: &str) -> Model {
    let cfg: ModelConfig = serde_yaml::from_str(yaml).unwrap();
    Model::build(&cfg, &[1, 4, 4], 3, Device::Cpu).unwrap()
}

#[test]
fn the_swa_average_is_the_mean_of_the_snapshots() {
    let live = mlp("{arch: mlp, hidden: 16}");
    let mut swa = SwaAverage::new(mlp("{arch: mlp, hidden: 16}"));
    let n = live.num_params();
    let mut sum = vec![0f64; n as usize];
    for k in 0..7 {
        let snapshot = Tensor::randn([n], (Kind::Float, Device::Cpu)) * (k as f64 + 1.0);
        tch::no_grad(|| live.flat().shallow_clone().copy_(&snapshot));
        let values: Vec<f32> = snapshot.try_into().unwrap();
        sum.iter_mut()
            .zip(&values)
            .for_each(|(s, v)| *s += f64::from(*v));
        swa.add(&live);
    }
    assert_eq!(swa.n, 7);
    let avg: Vec<f32> = swa.model.flat().shallow_clone().try_into().unwrap();
    let worst = avg
        .iter()
        .zip(&sum)
        .map(|(a, s)| (f64::from(*a) - s / 7.0).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-6, "largest deviation {worst}");
}

fn synthetic_images(n: usize) -> RawDataset {
    let pixels: Vec<u8> = (0..n * 16)
        .map(|i| ((i * 37 + i / 16 * 11) % 256) as u8)
        .collect();
    let split = RawSplit {
        features: Features::Images(Images {
            count: n,
            channels: 1,
            height: 4,
            width: 4,
            pixels,
        }),
        labels: (0..n).map(|i| (i % 3) as i64).collect(),
    };
    RawDataset {
        name: DatasetName::Mnist,
        train: split.clone(),
        test: split,
        classes: 3,
        mean: vec![0.5],
        std: vec![0.25],
        source: "synthetic".into(),
    }
}

#[test]
fn recomputed_bn_statistics_are_the_moments_of_the_whole_pass() {
    let cfg: DataConfig =
        serde_yaml::from_str("{dataset: mnist, augment: {crop_padding: 0, flip: false}}").unwrap();
    let data = Dataset::from_raw(synthetic_images(103), &cfg, None, 1, Device::Cpu).unwrap();
    let model = mlp("{arch: mlp, hidden: 6, norm: batch}");
    // Batches of 10 leave a last batch of 3: the moments must still be those of all 103.
    eval::recompute_bn(&model, &data, 10, None, 1, 0);

    let state: std::collections::HashMap<String, Tensor> =
        model.named_state().into_iter().collect();
    let (x, _) = data.eval_batch(&data.train, 0, 103);
    let hidden = x
        .flatten(1, -1)
        .linear(&state["fc1.weight"], Some(&state["fc1.bias"]));
    let mean = hidden.mean_dim(0, false, Kind::Float);
    let var = hidden.var_dim(0, true, false);
    assert!(state["bn1.running_mean"].allclose(&mean, 1e-5, 1e-5, false));
    assert!(state["bn1.running_var"].allclose(&var, 1e-5, 1e-5, false));

    // A subset pass uses exactly that many samples and changes the statistics.
    eval::recompute_bn(&model, &data, 10, Some(20), 1, 0);
    let subset_mean = model
        .named_state()
        .into_iter()
        .find(|(n, _)| n == "bn1.running_mean")
        .unwrap()
        .1;
    assert!(!subset_mean.allclose(&mean, 1e-5, 1e-5, false));
}
