//! The up-front check of a TorchScript module: run as the run will run it (training mode
//! with a backward pass on every batch size the epochs use, eval mode on the short chunks of
//! the evaluation passes), with logits of the right shape and kind, so that a module that
//! cannot train is refused in one line before anything is created.

use super::TorchScriptNet;
use crate::model::{Mode, ModelError, Network};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The batch sizes a run feeds a module, by mode: what the up-front check runs it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatches {
    /// Training steps (train mode, with a backward pass): the batch size and, if the
    /// epoch's last batch is shorter and trained, that one.
    pub train: Vec<(i64, &'static str)>,
    /// Evaluation passes (eval mode): two samples, and each shorter last chunk of a pass.
    pub eval: Vec<(i64, &'static str)>,
}

/// The batches a run with `batch_size` on `train` samples, evaluating splits of `eval_splits`
/// samples in chunks of each of `eval_batches`, gives the module. With batch norm over samples
/// alone (`bn_over_samples`), a last training batch of one sample is left out, as the engine
/// leaves it out.
pub fn planned_batches(
    batch_size: usize,
    train: usize,
    eval_splits: &[usize],
    eval_batches: &[i64],
    bn_over_samples: bool,
) -> PlannedBatches {
    let mut planned = PlannedBatches {
        train: Vec::new(),
        eval: vec![(2, "two samples")],
    };
    let batch_size = batch_size.max(1);
    planned
        .train
        .push((batch_size.min(train).max(1) as i64, "the batch size"));
    let last = train % batch_size;
    if train > batch_size && last > 0 && !(last == 1 && bn_over_samples) {
        planned
            .train
            .push((last as i64, "the last batch of each epoch"));
    }
    for &len in eval_splits {
        for &chunk in eval_batches {
            let short = len as i64 % chunk.max(1);
            if short > 0 && !planned.eval.iter().any(|&(k, _)| k == short) {
                planned
                    .eval
                    .push((short, "the last chunk of an evaluation pass"));
            }
        }
    }
    planned
}

/// Loads the module at `path` on the CPU and runs it as `experiment`'s run on `raw` will: in
/// training mode with a backward pass on every training batch size the plan uses, in eval
/// mode on the short chunks of the evaluation passes. The check `valleys run` makes before it
/// creates anything, so that a module that fails only in training mode, only on a short last
/// batch or with logits that cannot be trained is refused in one line.
pub fn check_with_data(
    path: &Path,
    experiment: &crate::config::Experiment,
    raw: &crate::data::RawDataset,
) -> Result<(), ModelError> {
    let problem = |problem: String| ModelError::Incompatible {
        arch: "torchscript",
        problem: format!("{}: {problem}", path.display()),
    };
    let loaded = TorchScriptNet::load(path, Device::Cpu)?;
    for (_, tensor, _) in &loaded.params {
        // As the run's parameters are (views of its flat vector), whatever the file says.
        let _ = tensor.shallow_clone().set_requires_grad(true);
    }
    let (train_len, test_len) = raw.sample_counts(&experiment.data);
    let eval_train = experiment
        .eval
        .train_subset
        .map_or(train_len, |n| n.min(train_len));
    let planned = planned_batches(
        experiment.train.batch_size as usize,
        train_len,
        &[test_len, eval_train],
        &[
            experiment.eval.batch_for(false),
            experiment.eval.batch_for(true),
        ],
        loaded.net.has_own_batch_norm(),
    );
    let largest = planned
        .train
        .iter()
        .chain(&planned.eval)
        .map(|&(k, _)| k)
        .max()
        .unwrap_or(2);
    let head = crate::data::RawDataset {
        train: raw.train.head(largest as usize),
        test: raw.test.head(2),
        source: raw.source.clone(),
        mean: raw.mean.clone(),
        std: raw.std.clone(),
        ..*raw
    };
    let mut cfg = experiment.data.clone();
    cfg.train_subset = None;
    cfg.test_subset = None;
    let data =
        crate::data::dataset::Dataset::from_raw(head, &cfg, None, experiment.seed, Device::Cpu)
            .map_err(|e| ModelError::State(e.to_string()))?;
    let available = data.train.len as i64;
    let batch = |k: i64| {
        let k = k.min(available);
        data.eval_batch(&data.train, 0, k)
    };
    for &(k, why) in &planned.eval {
        let (x, _) = batch(k);
        check_eval(&loaded.net, &x, raw.classes).map_err(|p| match k {
            2 => problem(p),
            _ => problem(format!("{p} (a batch of {k}: {why})")),
        })?;
    }
    for &(k, why) in &planned.train {
        let (x, y) = batch(k);
        check_training_step(&loaded.net, &x, &y, raw.classes)
            .map_err(|e| problem(format!("in training mode on a batch of {k} ({why}): {e}")))?;
    }
    Ok(())
}

/// One training step's forward and backward pass on `x`, `y`, as the engine takes it: the
/// module in training mode, cross-entropy of its logits, gradients of its parameters. The
/// weights are not changed.
fn check_training_step(
    net: &TorchScriptNet,
    x: &Tensor,
    y: &Tensor,
    classes: usize,
) -> Result<(), String> {
    let out = net
        .try_forward(x, Mode::Train)
        .map_err(|e| format!("the module fails: {e}"))?;
    let n = x.size()[0];
    check_logits(&out, &format!("a batch of {n}"), n, classes).map_err(|e| e.0)?;
    let loss = crate::error::catch_panic(|| {
        out.cross_entropy_loss::<Tensor>(y, None, tch::Reduction::Mean, -100, 0.0)
    })
    .map_err(|e| format!("its logits give no loss: {e}"))?;
    if !loss.requires_grad() {
        return Err(
            "the loss does not depend on the module's parameters (nothing to train)".into(),
        );
    }
    loss.f_backward().map_err(|e| {
        let text = e.to_string();
        format!(
            "the backward pass fails: {}",
            text.lines().next().unwrap_or_default()
        )
    })?;
    Ok(())
}

/// Logits of `batch` (its words, e.g. "a batch of 44"), `n` samples: `[n, classes]` finite
/// float32 numbers.
fn check_logits(
    out: &Tensor,
    batch: &str,
    n: i64,
    classes: usize,
) -> Result<(), crate::error::Invalid> {
    let expected = [n, classes as i64];
    if out.size() != expected {
        return Err(crate::error::Invalid(format!(
            "the module maps {batch} to {:?}; expected logits {expected:?} ({classes} classes in the data)",
            out.size()
        )));
    }
    if out.kind() != Kind::Float {
        return Err(crate::error::Invalid(format!(
            "the module's logits are {:?}; expected float32 (no .long(), .argmax() or .double() at the end)",
            out.kind()
        )));
    }
    if out.isfinite().all().int64_value(&[]) == 0 {
        return Err(crate::error::Invalid(format!(
            "the module's output on {batch} is not finite (NaN or infinite logits)"
        )));
    }
    Ok(())
}

/// The module in eval mode on `x`, its output checked against `classes`.
fn check_eval(net: &TorchScriptNet, x: &Tensor, classes: usize) -> Result<(), String> {
    let shape = x.size();
    let out = tch::no_grad(|| net.try_forward(x, Mode::Eval))
        .map_err(|e| format!("the module fails on a batch of the data, shape {shape:?}: {e}"))?;
    check_logits(
        &out,
        &format!("a batch of shape {shape:?}"),
        shape[0],
        classes,
    )
    .map_err(|e| e.0)
}

/// Runs a loaded module on a small batch `x` of the data in eval mode and checks its output
/// against `classes`: one tensor `[N, classes]` of finite float32 numbers.
pub fn check_forward(
    net: &TorchScriptNet,
    path: &Path,
    x: &Tensor,
    classes: usize,
) -> Result<(), ModelError> {
    check_eval(net, x, classes).map_err(|problem| ModelError::Incompatible {
        arch: "torchscript",
        problem: format!("{}: {problem}", path.display()),
    })
}
