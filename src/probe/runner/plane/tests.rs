use super::*;
use crate::config::{DataConfig, ModelConfig};
use crate::data::dataset::Dataset;
use crate::model::eval;
use crate::probe::plane::{PlaneKind, PlaneSpec, d2_seed};
use crate::probe::runner::{self, Observer};
use crate::probe::{BnMode, Normalisation, ParamGroup, ProbePoint, ProbeSpec};
use tch::Device;

fn small_model() -> Model {
    let cfg: ModelConfig = serde_yaml::from_str("{arch: mlp, hidden: 8}").unwrap();
    Model::build(&cfg, &[1, 28, 28], 10, Device::Cpu).unwrap()
}

#[test]
fn directions_are_orthogonal_and_scaled() {
    tch::manual_seed(0);
    let swa = small_model();
    let sgd = small_model();
    let spec = PlaneSpec::default();
    let (d1, d2) = directions(&spec, &swa, &sgd, 3);
    let expected = (sgd.flat() - swa.flat()).norm().double_value(&[]);
    assert!((d1.norm - expected).abs() < 1e-5 * expected);
    assert!(
        (d2.norm - d1.norm).abs() < 1e-4 * d1.norm,
        "{} vs {}",
        d2.norm,
        d1.norm
    );
    assert!(cosine(&d1.vector, &d2.vector).abs() < 1e-6);
    // SGD sits at (1, 0).
    let at_sgd = swa.flat() + &d1.vector;
    assert!((at_sgd - sgd.flat()).abs().max().double_value(&[]) < 1e-6);

    // Two random directions: orthogonal, the second keeps its own length, BN-only stays BN-only.
    let random = PlaneSpec {
        params: ParamGroup::Bn,
        norm: Normalisation::Global,
        ..PlaneSpec::for_kind(PlaneKind::Random)
    };
    assert!(random.validate().is_ok());
    let zero = PlaneSpec {
        norm: Normalisation::Filter,
        ..random.clone()
    };
    assert!(
        zero.validate()
            .unwrap_err()
            .0
            .contains("the directions would be zero")
    );
    let (r1, r2) = directions(&random, &swa, &sgd, 3);
    assert!(cosine(&r1.vector, &r2.vector).abs() < 1e-6);
    let drawn = direction::random(
        random.direction,
        random.norm,
        random.bias_bn,
        random.params,
        d2_seed(3),
        &swa,
    );
    assert!((r2.norm - drawn.norm).abs() < 1e-4 * drawn.norm);
    // d₂ rebuilt from what a plane stores, as docs/planes.md says: drawn from d2_seed (the seed plus
    // 0x9E3779B9), made orthogonal to d₁, kept to the group and given back its length.
    assert_eq!(d2_seed(3), 3 + 0x9E37_79B9);
    let mask = direction::group_mask(&swa, random.params);
    let orthogonal = orthogonalise(&drawn.vector, &r1.vector) * &mask;
    let rebuilt = &orthogonal * (drawn.norm / orthogonal.norm().double_value(&[]));
    let difference = (&rebuilt - &r2.vector).abs().max().double_value(&[]);
    assert!(difference < 1e-6 * drawn.norm, "{difference}");
    let outside = 1.0 - direction::group_mask(&swa, ParamGroup::Bn);
    assert_eq!(
        (&r2.vector * &outside)
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
}

struct Quiet;

impl PlaneObserver for Quiet {
    fn started(&mut self, _: &PlaneHeader) {}
    fn point(&mut self, _: usize, _: usize, _: usize, _: &PlanePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

impl Observer for Quiet {
    fn started(&mut self, _: &str, _: &ProbeSpec, _: &[f64], _: f64) {}
    fn point(&mut self, _: &str, _: usize, _: &ProbePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

/// A small MLP with BN on 256 Fashion-MNIST training and 128 test samples: its SGD and SWA
/// weights drawn with `seed`, and a scratch copy.
struct Tiny {
    data: Dataset,
    sgd: Model,
    swa: Model,
    scratch: Model,
}

impl Tiny {
    fn new(seed: i64) -> Self {
        let cfg: DataConfig =
            serde_yaml::from_str("{dataset: fashion-mnist, train_subset: 256, test_subset: 128}")
                .unwrap();
        let data = Dataset::load(&cfg, Some(128), 1, Device::Cpu).unwrap();
        tch::manual_seed(seed);
        let cfg: ModelConfig = serde_yaml::from_str("{arch: mlp, hidden: 8, norm: batch}").unwrap();
        let build = || Model::build(&cfg, &data.input_shape, data.classes, Device::Cpu).unwrap();
        let (sgd, swa, scratch) = (build(), build(), build());
        Self {
            data,
            sgd,
            swa,
            scratch,
        }
    }

    /// The context of a probe through these weights (with the average if `averaged`), BN
    /// recomputed over 128 samples.
    fn context(&self, averaged: bool) -> ProbeContext<'_> {
        ProbeContext {
            data: &self.data,
            sgd: &self.sgd,
            swa: averaged.then_some(&self.swa),
            scratch: &self.scratch,
            seed: 1,
            eval_batch: 64,
            bn_pass: eval::BnPass {
                batch: 64,
                subset: Some(128),
                key: 0,
            },
            epoch: 0,
            step: 0,
            swa_n: u64::from(averaged),
            source: "test".into(),
        }
    }
}

#[test]
fn the_centre_row_and_column_are_the_1d_probes_along_the_same_lines() {
    let tiny = Tiny::new(1);
    let (data, sgd) = (&tiny.data, &tiny.sgd);
    let ctx = tiny.context(false);
    // The run's own BN pass, as the probe's default.
    let spec = PlaneSpec {
        points: (5, 3),
        centre: CentreKind::Sgd,
        bn_subset: None,
        ..PlaneSpec::for_kind(PlaneKind::Random)
    };
    let plane = run(&ctx, &spec, None, &mut Quiet).unwrap();
    assert_eq!(plane.points.len(), 15);
    assert_eq!(
        (plane.centre.as_str(), plane.markers[0].label.as_str()),
        ("sgd", "SGD")
    );

    // The row y = 0: the probe along d₁, a filter-normalised Gaussian of the same seed.
    let probe = ProbeSpec {
        centre: CentreKind::Sgd,
        direction: spec.direction,
        norm: spec.norm,
        bias_bn: spec.bias_bn,
        from: Some(-1.0),
        to: Some(1.0),
        points: Some(5),
        seed: Some(1),
        point_batch: Some(1),
        ..ProbeSpec::default()
    };
    let line = runner::run_one(&ctx, &probe, None, &mut Quiet).unwrap();
    for (i, p) in line.points.iter().enumerate() {
        let q = plane.at(i, 1);
        assert_eq!((q.x, q.y), (p.t, 0.0));
        assert_eq!(q.measured.train_loss, p.train_loss, "x = {}", p.t);
        assert_eq!(q.measured.test_loss, p.test_loss, "x = {}", p.t);
        assert_eq!(q.measured.test_acc, p.test_acc);
    }

    // The column x = 0: the line through the centre along d₂.
    let (_, d2) = directions(&spec, sgd, sgd, 1);
    let train = data.train_eval.shallow_clone();
    let test = data.test_subset(usize::MAX, 1);
    let column = Line {
        data,
        train: &train,
        test: &test,
        centre: sgd.flat(),
        direction: &d2.vector,
        end: None,
        control: None,
        bn: BnMode::Recompute,
        bn_pass: ctx.bn_pass,
        eval_batch: 64,
        seed: 1,
    };
    for j in 0..3 {
        let q = plane.at(2, j);
        assert_eq!(q.x, 0.0);
        let p = column.evaluate(&tiny.scratch, q.y);
        assert_eq!(q.measured.train_loss, p.train_loss, "y = {}", q.y);
        assert_eq!(q.measured.test_loss, p.test_loss, "y = {}", q.y);
    }
}

#[test]
fn rows_measured_several_points_at_a_time_equal_those_measured_one_by_one() {
    let tiny = Tiny::new(2);
    let ctx = tiny.context(true);
    for bn in [BnMode::Recompute, BnMode::Frozen, BnMode::Batch] {
        let spec = |point_batch| PlaneSpec {
            points: (5, 3),
            bn,
            point_batch: Some(point_batch),
            ..PlaneSpec::default()
        };
        let one = run(&ctx, &spec(1), None, &mut Quiet).unwrap();
        let three = run(&ctx, &spec(3), None, &mut Quiet).unwrap();
        for (a, b) in one.points.iter().zip(&three.points) {
            assert_eq!((a.x, a.y), (b.x, b.y));
            let (a, b) = (&a.measured, &b.measured);
            for (u, v) in [(a.train_loss, b.train_loss), (a.test_loss, b.test_loss)] {
                assert!(
                    (u - v).abs() <= 1e-5 * u.abs().max(1.0),
                    "{bn:?}: {u} vs {v}"
                );
            }
        }
    }
}
