//! Evaluation passes and the exact recomputation of BN statistics. No autograd graph is built.

use crate::data::dataset::{Dataset, DeviceSplit};
use crate::data::rng::{self, Purpose};
use crate::model::{Mode, Model};
use tch::{Kind, Reduction, Tensor};

/// Mean loss and accuracy over a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub acc: f64,
    pub samples: usize,
    /// Standard error of the mean loss, from the per-sample losses' spread: how far the loss
    /// could move with another sample of the same size.
    pub loss_se: f64,
}

impl Evaluation {
    fn from_sums(loss_sum: f64, loss_sq_sum: f64, correct: i64, n: i64) -> Self {
        let count = n.max(1) as f64;
        let mean = loss_sum / count;
        let variance = if n > 1 {
            ((loss_sq_sum - count * mean * mean) / (count - 1.0)).max(0.0)
        } else {
            0.0
        };
        Self {
            loss: mean,
            acc: correct as f64 / count,
            samples: n as usize,
            loss_se: (variance / count).sqrt(),
        }
    }
}

/// Evaluates `model` on the whole of `split` in eval mode, `batch` samples at a time.
pub fn evaluate(model: &Model, data: &Dataset, split: &DeviceSplit, batch: i64) -> Evaluation {
    evaluate_in_mode(model, data, split, batch, Mode::Eval)
}

/// Like [`evaluate`] with another BN mode (probes evaluate with batch statistics too).
pub fn evaluate_in_mode(
    model: &Model,
    data: &Dataset,
    split: &DeviceSplit,
    batch: i64,
    mode: Mode,
) -> Evaluation {
    let per_batch = |logits: &Tensor, y: &Tensor| {
        let (l, c) = model
            .objective()
            .loss_and_correct(logits, y, Reduction::None);
        (l.unsqueeze(0), c.unsqueeze(0))
    };
    evaluate_passes(model, data, split, batch, mode, 1, per_batch)[0]
}

/// Like [`evaluate_in_mode`] for each copy of a stacked model (see `Model::stacked`), in one
/// pass over the split.
pub fn evaluate_copies(
    model: &Model,
    data: &Dataset,
    split: &DeviceSplit,
    batch: i64,
    mode: Mode,
) -> Vec<Evaluation> {
    let k = model.stack();
    let per_batch =
        |logits: &Tensor, y: &Tensor| model.objective().losses_and_correct_per_copy(logits, y, k);
    evaluate_passes(model, data, split, batch, mode, k, per_batch)
}

/// One pass over `split`, accumulating for each of `k` outputs the sum and the sum of squares
/// of the per-sample losses and the correct count; `per_batch` turns a batch's logits into
/// per-sample losses `[k, N]` and correct counts `[k]`.
fn evaluate_passes(
    model: &Model,
    data: &Dataset,
    split: &DeviceSplit,
    batch: i64,
    mode: Mode,
    k: i64,
    per_batch: impl Fn(&Tensor, &Tensor) -> (Tensor, Tensor),
) -> Vec<Evaluation> {
    let n = split.len as i64;
    let (losses, squares, corrects) = model.fused_pass(mode, || {
        tch::no_grad(|| {
            let device = split.y.device();
            let mut loss_sum = Tensor::zeros([k], (Kind::Double, device));
            let mut loss_sq_sum = Tensor::zeros([k], (Kind::Double, device));
            let mut correct = Tensor::zeros([k], (Kind::Int64, device));
            let mut start = 0;
            while start < n {
                let len = batch.min(n - start);
                let (x, y) = data.eval_batch(split, start, len);
                let (l, c) = per_batch(&model.forward(&x, mode), &y);
                let l = l.to_kind(Kind::Double);
                let per_output =
                    |t: Tensor| t.sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
                loss_sum += per_output(l.shallow_clone());
                loss_sq_sum += per_output(l.square());
                correct += c;
                start += len;
            }
            // One synchronisation per pass, not per batch.
            (
                Vec::<f64>::try_from(&loss_sum).unwrap_or_default(),
                Vec::<f64>::try_from(&loss_sq_sum).unwrap_or_default(),
                Vec::<i64>::try_from(&correct).unwrap_or_default(),
            )
        })
    });
    losses
        .iter()
        .zip(&squares)
        .zip(&corrects)
        .map(|((&loss, &square), &correct)| Evaluation::from_sums(loss, square, correct, n))
        .collect()
}

/// One pass that recomputes BN statistics: its batch size, how many training samples (None:
/// all) and the key of its random stream. Batches and augmentation depend on all three, so a
/// probe that repeats a run's own pass gets the run's statistics exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnPass {
    pub batch: i64,
    pub subset: Option<usize>,
    pub key: u64,
}

/// Sets every BN layer's running statistics to the exact mean and unbiased variance of its
/// input over one pass of augmented training batches (like the SWA code's `bn_update`, but with
/// the moments of the whole pass rather than an average of per-batch variances). `subset`
/// limits the pass to that many samples; `key` selects the random stream (e.g. the epoch).
pub fn recompute_bn(
    model: &Model,
    data: &Dataset,
    batch: i64,
    subset: Option<usize>,
    seed: u64,
    key: u64,
) {
    if !model.has_bn() {
        return;
    }
    let n = data.train.len;
    let take = subset.unwrap_or(n).min(n) as i64;
    let order = rng::permutation(n, &mut rng::stream(seed, Purpose::BnPass, &[key]));
    let device = data.train.y.device();
    let order = Tensor::from_slice(&order[..take as usize]).to_device(device);
    model.fused_pass(Mode::Accumulate, || {
        tch::no_grad(|| {
            model.begin_bn_recompute();
            let mut start = 0;
            let mut index = 0;
            while start < take {
                let len = batch.min(take - start);
                let mut aug = rng::stream(seed, Purpose::BnPass, &[key, index + 1]);
                let (x, _) = data.train_batch(&order.narrow(0, start, len), Some(&mut aug));
                let _ = model.forward(&x, Mode::Accumulate);
                start += len;
                index += 1;
            }
            model.finish_bn_recompute();
        })
    });
}

#[cfg(test)]
mod tests {
    use super::Evaluation;

    #[test]
    fn the_standard_error_is_the_sample_deviation_over_root_n() {
        // Losses 1, 2, 3, 4: mean 2.5, sample variance 5/3, SE sqrt(5/3 / 4) ≈ 0.6455.
        let e = Evaluation::from_sums(10.0, 30.0, 3, 4);
        assert_eq!((e.loss, e.acc, e.samples), (2.5, 0.75, 4));
        assert!(
            (e.loss_se - (5.0f64 / 12.0).sqrt()).abs() < 1e-12,
            "{}",
            e.loss_se
        );
        // One sample has no spread to measure.
        assert_eq!(Evaluation::from_sums(0.7, 0.49, 1, 1).loss_se, 0.0);
    }
}
