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
    let n = split.len as i64;
    let (loss, correct) = tch::no_grad(|| {
        let device = split.y.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let (x, y) = data.eval_batch(split, start, len);
            let logits = model.forward(&x, mode);
            let (l, c) = model
                .objective()
                .loss_and_correct(&logits, &y, Reduction::Sum);
            loss_sum += l.to_kind(Kind::Double);
            correct += c;
            start += len;
        }
        // One synchronisation per pass, not per batch.
        (loss_sum.double_value(&[]), correct.int64_value(&[]))
    });
    Evaluation {
        loss: loss / n.max(1) as f64,
        acc: correct as f64 / n.max(1) as f64,
        samples: n as usize,
    }
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
    let n = split.len as i64;
    let k = model.stack();
    let (losses, corrects) = tch::no_grad(|| {
        let device = split.y.device();
        let mut loss_sum = Tensor::zeros([k], (Kind::Double, device));
        let mut correct = Tensor::zeros([k], (Kind::Int64, device));
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let (x, y) = data.eval_batch(split, start, len);
            let logits = model.forward(&x, mode);
            let (l, c) = model.objective().loss_and_correct_per_copy(&logits, &y, k);
            loss_sum += l.to_kind(Kind::Double);
            correct += c;
            start += len;
        }
        (
            Vec::<f64>::try_from(&loss_sum).unwrap_or_default(),
            Vec::<i64>::try_from(&correct).unwrap_or_default(),
        )
    });
    losses
        .iter()
        .zip(&corrects)
        .map(|(&loss, &correct)| Evaluation {
            loss: loss / n.max(1) as f64,
            acc: correct as f64 / n.max(1) as f64,
            samples: n as usize,
        })
        .collect()
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
    });
}
