//! Probe directions as flat vectors over the model's parameters.

use super::{BiasBn, DirectionKind, Normalisation, ParamGroup};
use crate::data::rng::{self, Purpose};
use crate::model::Model;
use crate::model::params::ParamInfo;
use rand::Rng;
use tch::{Kind, Tensor};

/// A direction and what is worth knowing about it.
#[derive(Debug)]
pub struct Direction {
    pub vector: Tensor,
    /// ||d|| over the moved parameters.
    pub norm: f64,
    /// ||w_c|| over the moved parameters.
    pub centre_norm: f64,
    /// Fraction of moved, non-zero entries whose sign agrees with the centre's weight.
    pub sign_consistency: f64,
}

/// 1 where `group` may move, 0 elsewhere, as a flat float vector on the model's device.
pub fn group_mask(model: &Model, group: ParamGroup) -> Tensor {
    let mut mask = Vec::with_capacity(model.num_params() as usize);
    for p in model.params() {
        let on = match group {
            ParamGroup::All => true,
            ParamGroup::Bn => p.role.is_bn(),
            ParamGroup::NonBn => !p.role.is_bn(),
        };
        mask.extend(std::iter::repeat_n(
            if on { 1.0f32 } else { 0.0 },
            p.numel as usize,
        ));
    }
    Tensor::from_slice(&mask).to_device(model.flat().device())
}

/// How many of `model`'s weights are in `group`.
pub fn group_size(model: &Model, group: ParamGroup) -> i64 {
    model
        .params()
        .iter()
        .filter(|p| match group {
            ParamGroup::All => true,
            ParamGroup::Bn => p.role.is_bn(),
            ParamGroup::NonBn => !p.role.is_bn(),
        })
        .map(|p| p.numel)
        .sum()
}

/// A seeded random direction of `kind` (uniform, gaussian or sign) at the centre `centre`.
pub fn random(
    kind: DirectionKind,
    norm: Normalisation,
    bias_bn: BiasBn,
    group: ParamGroup,
    seed: u64,
    centre: &Model,
) -> Direction {
    let n = centre.num_params() as usize;
    let mut generator = rng::stream(seed, Purpose::Direction, &[]);
    let values: Vec<f32> = match kind {
        DirectionKind::Uniform => (0..n).map(|_| generator.r#gen::<f32>()).collect(),
        _ => (0..n)
            .map(|_| rng::standard_normal(&mut generator) as f32)
            .collect(),
    };
    let device = centre.flat().device();
    let w = centre.flat();
    let mask = group_mask(centre, group);
    let mut d = Tensor::from_slice(&values).to_device(device);
    if kind == DirectionKind::Sign {
        d = d.abs() * w.sign();
    }
    d = if kind == DirectionKind::Gaussian && norm != Normalisation::Global {
        per_tensor_normalise(&d, w, centre.params(), norm, bias_bn) * &mask
    } else {
        let masked = d * &mask;
        let length = masked.norm().double_value(&[]).max(1e-30);
        masked / length
    };
    describe(d, w, &mask)
}

/// A seeded direction of |N(0, 1)| magnitudes whose signs agree with the centre's weights on
/// exactly round(`ratio` · M) of the M moved entries with a non-zero weight (chosen uniformly
/// at random), and disagree on the rest; unit L2 norm over the group. Its sign consistency is
/// that count over M on every draw (Li et al. 2024 vary it from 0 to 1).
pub fn sign_match(ratio: f64, group: ParamGroup, seed: u64, centre: &Model) -> Direction {
    let n = centre.num_params() as usize;
    let mut generator = rng::stream(seed, Purpose::Direction, &[]);
    // No zero magnitude: a zero entry would have no sign to count.
    let magnitudes: Vec<f32> = (0..n)
        .map(|_| (rng::standard_normal(&mut generator).abs() as f32).max(f32::MIN_POSITIVE))
        .collect();
    let w = centre.flat();
    let mask = group_mask(centre, group);
    let weights = Vec::<f32>::try_from(&w.to_device(tch::Device::Cpu)).unwrap_or_default();
    let moved = Vec::<f32>::try_from(&mask.to_device(tch::Device::Cpu)).unwrap_or_default();
    let mut counted: Vec<usize> = (0..n)
        .filter(|&i| moved[i] > 0.0 && weights[i] != 0.0)
        .collect();
    let agree = ((ratio * counted.len() as f64).round() as usize).min(counted.len());
    // The first `agree` of a partial Fisher–Yates shuffle agree; the rest disagree.
    for i in 0..agree {
        let j = generator.gen_range(i..counted.len());
        counted.swap(i, j);
    }
    let mut values = magnitudes;
    for (k, &i) in counted.iter().enumerate() {
        let sign = weights[i].signum();
        values[i] *= if k < agree { sign } else { -sign };
    }
    let d = Tensor::from_slice(&values).to_device(w.device()) * &mask;
    let length = d.norm().double_value(&[]).max(1e-30);
    describe(d / length, w, &mask)
}

/// Li et al.'s layer and filter normalisation: each tensor (layer) or each output slice
/// (filter) of d gets the norm of the matching slice of w; 1-D tensors follow `bias_bn`.
fn per_tensor_normalise(
    d: &Tensor,
    w: &Tensor,
    params: &[ParamInfo],
    norm: Normalisation,
    bias_bn: BiasBn,
) -> Tensor {
    let pieces: Vec<Tensor> = params
        .iter()
        .map(|p| {
            let dp = d.narrow(0, p.offset, p.numel);
            let wp = w.narrow(0, p.offset, p.numel);
            if p.shape.len() <= 1 {
                return match bias_bn {
                    BiasBn::Zero => dp.zeros_like(),
                    BiasBn::Keep => wp.copy(),
                };
            }
            let rows = match norm {
                Normalisation::Filter => p.shape[0],
                _ => 1,
            };
            let (dr, wr) = (dp.view([rows, -1]), wp.view([rows, -1]));
            let scale = wr.norm_scalaropt_dim(2, [1i64].as_slice(), true)
                / (dr.norm_scalaropt_dim(2, [1i64].as_slice(), true) + 1e-10);
            (dr * scale).view([-1])
        })
        .collect();
    Tensor::cat(&pieces, 0)
}

/// The direction from `centre` to `other` (e.g. SWA to SGD) over the masked parameters.
pub fn towards(centre: &Model, other: &Model, group: ParamGroup) -> Direction {
    let mask = group_mask(centre, group);
    let d = (other.flat() - centre.flat()) * &mask;
    describe(d, centre.flat(), &mask)
}

/// Wraps a direction vector with its norms and sign consistency.
pub fn describe(d: Tensor, w: &Tensor, mask: &Tensor) -> Direction {
    let moved = d.ne(0.0).logical_and(&w.ne(0.0)).logical_and(&mask.ne(0.0));
    let agree = d.sign().eq_tensor(&w.sign()).logical_and(&moved);
    let moved_count = moved.sum(Kind::Int64).int64_value(&[]);
    let sign_consistency = if moved_count > 0 {
        agree.sum(Kind::Int64).int64_value(&[]) as f64 / moved_count as f64
    } else {
        0.0
    };
    Direction {
        norm: d.norm().double_value(&[]),
        centre_norm: (w * mask).norm().double_value(&[]),
        sign_consistency,
        vector: d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use tch::Device;

    fn model(yaml: &str) -> Model {
        let cfg: ModelConfig = serde_yaml::from_str(yaml).unwrap();
        Model::build(&cfg, &[3, 8, 8], 4, Device::Cpu).unwrap()
    }

    fn slice(t: &Tensor, p: &ParamInfo) -> Tensor {
        t.narrow(0, p.offset, p.numel)
    }

    #[test]
    fn uniform_directions_are_positive_unit_vectors_and_seeded() {
        let m = model("{arch: preresnet, depth: 8}");
        let a = random(
            DirectionKind::Uniform,
            Normalisation::Global,
            BiasBn::Zero,
            ParamGroup::All,
            7,
            &m,
        );
        let b = random(
            DirectionKind::Uniform,
            Normalisation::Global,
            BiasBn::Zero,
            ParamGroup::All,
            7,
            &m,
        );
        let c = random(
            DirectionKind::Uniform,
            Normalisation::Global,
            BiasBn::Zero,
            ParamGroup::All,
            8,
            &m,
        );
        assert!((a.norm - 1.0).abs() < 1e-5);
        assert!(a.vector.ge(0.0).all().int64_value(&[]) == 1);
        assert!(a.vector.equal(&b.vector) && !a.vector.equal(&c.vector));
    }

    #[test]
    fn bn_only_directions_move_only_bn_tagged_parameters() {
        let m = model("{arch: preresnet, depth: 8}");
        for (group, moves_bn) in [(ParamGroup::Bn, true), (ParamGroup::NonBn, false)] {
            let d = random(
                DirectionKind::Gaussian,
                Normalisation::Global,
                BiasBn::Zero,
                group,
                1,
                &m,
            );
            for p in m.params() {
                let nonzero = slice(&d.vector, p).ne(0.0).any().int64_value(&[]) == 1;
                assert_eq!(
                    nonzero,
                    p.role.is_bn() == moves_bn,
                    "{} in {group:?}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn filter_normalisation_gives_each_filter_the_norm_of_the_weights_filter() {
        let m = model("{arch: preresnet, depth: 8}");
        let d = random(
            DirectionKind::Gaussian,
            Normalisation::Filter,
            BiasBn::Zero,
            ParamGroup::All,
            3,
            &m,
        );
        let w = m.flat();
        for p in m.params() {
            let (dp, wp) = (slice(&d.vector, p), slice(w, p));
            if p.shape.len() == 1 {
                assert_eq!(
                    dp.abs().sum(Kind::Float).double_value(&[]),
                    0.0,
                    "{} is zeroed",
                    p.name
                );
                continue;
            }
            for row in 0..p.shape[0] {
                let dn = dp.view([p.shape[0], -1]).get(row).norm().double_value(&[]);
                let wn = wp.view([p.shape[0], -1]).get(row).norm().double_value(&[]);
                assert!(
                    (dn - wn).abs() <= 1e-4 * wn.max(1e-6),
                    "{} filter {row}: {dn} vs {wn}",
                    p.name
                );
            }
        }
        let keep = random(
            DirectionKind::Gaussian,
            Normalisation::Filter,
            BiasBn::Keep,
            ParamGroup::All,
            3,
            &m,
        );
        let bn = m.params().iter().find(|p| p.name == "bn.weight").unwrap();
        assert!(
            slice(&keep.vector, bn).equal(&slice(w, bn)),
            "keep copies the weights"
        );
    }

    #[test]
    fn sign_directions_agree_in_sign_with_the_weights() {
        let m = model("{arch: mlp, hidden: 16}");
        let d = random(
            DirectionKind::Sign,
            Normalisation::Global,
            BiasBn::Zero,
            ParamGroup::All,
            5,
            &m,
        );
        assert!(d.sign_consistency > 0.999, "{}", d.sign_consistency);
        let g = random(
            DirectionKind::Gaussian,
            Normalisation::Global,
            BiasBn::Zero,
            ParamGroup::All,
            5,
            &m,
        );
        assert!(
            (g.sign_consistency - 0.5).abs() < 0.05,
            "{}",
            g.sign_consistency
        );
        assert!((d.norm - 1.0).abs() < 1e-5);
    }

    /// The ratio is exact on every draw: round(ρ·M) of the M counted entries agree, counted
    /// here by hand from the vectors; a group restricts both the entries and the count.
    #[test]
    fn sign_match_directions_agree_on_exactly_the_asked_share_of_entries() {
        let m = model("{arch: mlp, hidden: 16, norm: batch}");
        let w = Vec::<f32>::try_from(m.flat()).unwrap();
        for group in [ParamGroup::All, ParamGroup::NonBn, ParamGroup::Bn] {
            let mask = Vec::<f32>::try_from(&group_mask(&m, group)).unwrap();
            let counted: Vec<usize> = (0..w.len())
                .filter(|&i| mask[i] > 0.0 && w[i] != 0.0)
                .collect();
            for (seed, ratio) in [(1, 0.0), (2, 0.1), (3, 0.37), (4, 0.5), (5, 0.9), (6, 1.0)] {
                let d = sign_match(ratio, group, seed, &m);
                let v = Vec::<f32>::try_from(&d.vector).unwrap();
                let agree = counted
                    .iter()
                    .filter(|&&i| v[i].signum() == w[i].signum())
                    .count();
                let expected = (ratio * counted.len() as f64).round() as usize;
                assert_eq!(agree, expected, "{group:?} ρ {ratio}");
                assert_eq!(d.sign_consistency, expected as f64 / counted.len() as f64);
                assert!((d.norm - 1.0).abs() < 1e-5);
                assert!(
                    (0..w.len()).all(|i| mask[i] > 0.0 || v[i] == 0.0),
                    "outside the group"
                );
            }
        }
        // ρ = 0 is ρ = 1 turned around: the same magnitudes, every counted sign flipped.
        let (none, all) = (
            sign_match(0.0, ParamGroup::All, 7, &m),
            sign_match(1.0, ParamGroup::All, 7, &m),
        );
        let (none, all) = (
            Vec::<f32>::try_from(&none.vector).unwrap(),
            Vec::<f32>::try_from(&all.vector).unwrap(),
        );
        assert!(
            (0..w.len())
                .filter(|&i| w[i] != 0.0)
                .all(|i| none[i] == -all[i])
        );
        // Another seed draws other entries to agree.
        let (a, b) = (
            sign_match(0.5, ParamGroup::All, 1, &m),
            sign_match(0.5, ParamGroup::All, 2, &m),
        );
        assert!(a.vector.ne_tensor(&b.vector).any().int64_value(&[]) != 0);
    }

    #[test]
    fn towards_points_from_one_model_to_the_other() {
        let a = model("{arch: mlp, hidden: 8}");
        let b = model("{arch: mlp, hidden: 8}");
        let d = towards(&a, &b, ParamGroup::All);
        assert!((a.flat() + &d.vector).allclose(b.flat(), 1e-6, 1e-6, false));
        let expected = (b.flat() - a.flat()).norm().double_value(&[]);
        assert!((d.norm - expected).abs() < 1e-9);
    }
}
