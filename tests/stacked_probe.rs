//! Several probe points measured at once, side by side in one forward pass (a stacked model),
//! give the same losses as one point at a time: for every architecture of the zoo, with and
//! without BN, and every way of treating the BN statistics.

use tch::{Device, Kind, Tensor};
use valleys::config::{DataConfig, ModelConfig};
use valleys::data::dataset::Dataset;
use valleys::model::Model;
use valleys::probe::BnMode;
use valleys::probe::scan::Line;

fn data(pad_to: Option<u32>) -> Dataset {
    let yaml = match pad_to {
        Some(size) => {
            format!("{{dataset: fashion-mnist, train_subset: 96, test_subset: 48, pad_to: {size}}}")
        }
        None => "{dataset: fashion-mnist, train_subset: 96, test_subset: 48}".into(),
    };
    let cfg: DataConfig = serde_yaml::from_str(&yaml).unwrap();
    Dataset::load(&cfg, None, 3, Device::Cpu).unwrap()
}

#[test]
fn stacked_points_match_points_measured_one_at_a_time() {
    let cases = [
        ("{arch: mlp, hidden: 24}", None),
        ("{arch: mlp, hidden: 24, norm: none}", None),
        ("{arch: preresnet, depth: 8}", None),
        ("{arch: preresnet, depth: 8, norm: none}", None),
        ("{arch: wrn, depth: 10, width: 1}", None),
        ("{arch: densenet-bc, depth: 10}", None),
        ("{arch: vgg16}", Some(32)),
    ];
    let ts = [-1.5, -0.25, 0.0, 0.7, 2.0];
    for (yaml, pad_to) in cases {
        let data = data(pad_to);
        let cfg: ModelConfig = serde_yaml::from_str(yaml).unwrap();
        tch::manual_seed(7);
        let centre = Model::build(&cfg, &data.input_shape, data.classes, Device::Cpu).unwrap();
        let scratch = Model::build(&cfg, &data.input_shape, data.classes, Device::Cpu).unwrap();
        // Non-trivial BN statistics at the centre, so that frozen mode has something to keep.
        valleys::model::eval::recompute_bn(&centre, &data, 32, Some(64), 3, 1);
        let n = centre.num_params();
        let direction = Tensor::randn([n], (Kind::Float, Device::Cpu)) / (n as f64).sqrt() * 5.0;
        let train = data.train_subset(64, 3);
        let test = data.test_subset(48, 3);
        for bn in [BnMode::Recompute, BnMode::Frozen, BnMode::Batch] {
            let line = Line {
                data: &data,
                train: &train,
                test: &test,
                centre: centre.flat(),
                direction: &direction,
                end: None,
                control: None,
                bn,
                bn_pass: valleys::model::eval::BnPass {
                    batch: 40,
                    subset: Some(64),
                    key: 0,
                },
                eval_batch: 40,
                seed: 3,
            };
            let one_by_one: Vec<_> = ts
                .iter()
                .map(|&t| {
                    scratch.copy_from(&centre);
                    line.evaluate(&scratch, t)
                })
                .collect();
            // Six copies for five points: a spare copy must not disturb the others.
            let stacked = centre.stacked(6).unwrap();
            let together = line.evaluate_points(&stacked, &centre, &ts);
            for (a, b) in one_by_one.iter().zip(&together) {
                let worst = [
                    (a.train_loss - b.train_loss).abs(),
                    (a.test_loss - b.test_loss).abs(),
                    (a.train_acc - b.train_acc).abs(),
                    (a.test_acc - b.test_acc).abs(),
                ]
                .into_iter()
                .fold(0.0, f64::max);
                assert!(
                    worst <= 1e-5,
                    "{yaml}, BN {bn:?}, t = {}: {a:?} one at a time, {b:?} stacked",
                    a.t
                );
                assert_eq!(a.t, b.t);
            }
        }
    }
}
