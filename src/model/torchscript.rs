//! The user's own network: a TorchScript module (`model: {arch: torchscript, path: ...}`).
//!
//! Its parameters move into the model's flat vector like the zoo's (each becomes a view of
//! it), so the optimiser, SWA and probes work on it unchanged. Batch norm is found by the
//! submodules' types; its scales and shifts form the `bn` parameter group and its running
//! statistics are the model's buffers. Modes map to training flags: `Train` sets the whole
//! module training, `Eval` none of it, and the two batch-statistics modes set only the BN
//! layers training, with their running statistics put back (`BatchStats`) or read out batch by
//! batch (`Accumulate`, as `torch.optim.swa_utils.update_bn`).

mod module;

pub use module::ScriptModule;

use super::params::Role;
use super::{Mode, ModelError, Network};
use std::cell::{Cell, RefCell};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The last component of the qualified type names of PyTorch's batch-norm modules.
const BATCH_NORM_TYPES: [&str; 7] = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "SyncBatchNorm",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
];

/// True for a qualified type name of a batch-norm module.
pub fn is_batch_norm_type(type_name: &str) -> bool {
    let last = type_name.rsplit('.').next().unwrap_or(type_name);
    BATCH_NORM_TYPES.contains(&last)
}

/// A BN layer of the module that tracks running statistics.
struct TrackedBatchNorm {
    running_mean: Tensor,
    running_var: Tensor,
    batches_tracked: Option<Tensor>,
    /// The weight of a new batch in the running average; None: a cumulative average.
    momentum: Option<f64>,
}

/// Sums of per-batch statistics during a recomputation.
struct Sums {
    means: Vec<Tensor>,
    vars: Vec<Tensor>,
    batches: i64,
}

/// Which submodules are in training mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flags {
    All,
    None,
    BatchNormOnly,
}

/// A TorchScript module as a [`Network`].
pub struct TorchScriptNet {
    module: ScriptModule,
    /// Names of every BN submodule (tracking statistics or not).
    batch_norm_modules: Vec<String>,
    tracked: Vec<TrackedBatchNorm>,
    flags: Cell<Option<Flags>>,
    sums: RefCell<Option<Sums>>,
}

/// What a loaded module gives a `Model`.
pub struct Loaded {
    pub net: TorchScriptNet,
    /// Parameters in `named_parameters()` order, sharing storage with the module.
    pub params: Vec<(String, Tensor, Role)>,
    pub buffers: Vec<(String, Tensor)>,
    /// e.g. "my_net.pt".
    pub name: String,
}

impl TorchScriptNet {
    /// Loads `path` onto `device` and sorts its tensors into parameters (with BN roles) and
    /// buffers. Only float32 parameters are accepted.
    pub fn load(path: &Path, device: Device) -> Result<Loaded, ModelError> {
        let problem = |problem: String| ModelError::Incompatible {
            arch: "torchscript",
            problem: format!("{}: {problem}", path.display()),
        };
        if !path.is_file() {
            return Err(problem(
                "no such file; expected a module saved by torch.jit.save (scripts/export_model.py writes one)".into(),
            ));
        }
        let module = ScriptModule::load(path, device).map_err(|e| {
            problem(format!(
                "not a TorchScript module ({e}); expected a file saved by torch.jit.save"
            ))
        })?;
        let modules = module.named_modules().map_err(problem)?;
        let batch_norm_modules: Vec<String> = modules
            .iter()
            .filter(|(_, ty)| is_batch_norm_type(ty))
            .map(|(name, _)| name.clone())
            .collect();
        let params = module.named_parameters().map_err(problem)?;
        let sorted = sort_parameters(params, &batch_norm_modules).map_err(problem)?;
        let buffers = module.named_buffers().map_err(problem)?;
        let tracked =
            tracked_batch_norms(&module, &batch_norm_modules, &buffers).map_err(problem)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        Ok(Loaded {
            net: Self {
                module,
                batch_norm_modules,
                tracked,
                flags: Cell::new(None),
                sums: RefCell::new(None),
            },
            params: sorted,
            buffers,
            name,
        })
    }

    /// Runs the module, or says in one line why it could not.
    pub fn try_forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor, String> {
        match mode {
            Mode::Train => {
                self.set_flags(Flags::All)?;
                self.module.forward(x)
            }
            Mode::Eval | Mode::PlainEval => {
                self.set_flags(Flags::None)?;
                self.module.forward(x)
            }
            Mode::BatchStats => {
                self.set_flags(Flags::BatchNormOnly)?;
                let saved: Vec<[Option<Tensor>; 3]> = self
                    .tracked
                    .iter()
                    .map(|bn| {
                        [
                            Some(bn.running_mean.copy()),
                            Some(bn.running_var.copy()),
                            bn.batches_tracked.as_ref().map(Tensor::copy),
                        ]
                    })
                    .collect();
                let out = self.module.forward(x);
                tch::no_grad(|| {
                    for (bn, saved) in self.tracked.iter().zip(saved) {
                        let targets = [
                            Some(&bn.running_mean),
                            Some(&bn.running_var),
                            bn.batches_tracked.as_ref(),
                        ];
                        for (target, value) in targets.into_iter().zip(saved) {
                            if let (Some(target), Some(value)) = (target, value) {
                                target.shallow_clone().copy_(&value);
                            }
                        }
                    }
                });
                out
            }
            Mode::Accumulate => {
                self.set_flags(Flags::BatchNormOnly)?;
                // With the running statistics at zero, one training-mode pass leaves in them
                // the batch's mean and unbiased variance times the layer's update weight.
                tch::no_grad(|| {
                    for bn in &self.tracked {
                        let _ = bn.running_mean.shallow_clone().zero_();
                        let _ = bn.running_var.shallow_clone().zero_();
                        if let Some(b) = &bn.batches_tracked {
                            let _ = b.shallow_clone().zero_();
                        }
                    }
                });
                let out = match self.module.forward(x) {
                    Ok(out) => out,
                    // A last batch of one sample, which a BatchNorm1d refuses in training
                    // mode: left out of the average, as `drop_last` would leave it out.
                    Err(_) if x.size().first() == Some(&1) => {
                        self.set_flags(Flags::None)?;
                        return self.module.forward(x);
                    }
                    Err(e) => return Err(e),
                };
                tch::no_grad(|| {
                    let mut sums = self.sums.borrow_mut();
                    let sums = sums.get_or_insert_with(|| Sums {
                        means: self
                            .tracked
                            .iter()
                            .map(|bn| bn.running_mean.zeros_like().to_kind(Kind::Double))
                            .collect(),
                        vars: self
                            .tracked
                            .iter()
                            .map(|bn| bn.running_var.zeros_like().to_kind(Kind::Double))
                            .collect(),
                        batches: 0,
                    });
                    for (i, bn) in self.tracked.iter().enumerate() {
                        // A cumulative average (momentum None) of one batch weighs it fully.
                        let weight = bn.momentum.unwrap_or(1.0);
                        sums.means[i] += bn.running_mean.to_kind(Kind::Double) / weight;
                        sums.vars[i] += bn.running_var.to_kind(Kind::Double) / weight;
                    }
                    sums.batches += 1;
                });
                Ok(out)
            }
        }
    }

    fn set_flags(&self, flags: Flags) -> Result<(), String> {
        if self.flags.get() == Some(flags) {
            return Ok(());
        }
        self.flags.set(None);
        self.module.set_training("", flags == Flags::All)?;
        if flags == Flags::BatchNormOnly {
            for name in &self.batch_norm_modules {
                self.module.set_training(name, true)?;
            }
        }
        self.flags.set(Some(flags));
        Ok(())
    }
}

impl Network for TorchScriptNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        // The module was run on a batch of the data before the run started (see
        // `check_forward`), so a failure here is a failure of the module itself.
        self.try_forward(x, mode)
            .unwrap_or_else(|e| panic!("the TorchScript module failed: {e}"))
    }

    fn script_module(&self) -> Option<&ScriptModule> {
        Some(&self.module)
    }

    fn has_own_batch_norm(&self) -> bool {
        !self.batch_norm_modules.is_empty()
    }

    fn begin_bn_recompute(&self) {
        *self.sums.borrow_mut() = None;
    }

    fn finish_bn_recompute(&self) {
        let Some(sums) = self.sums.borrow_mut().take() else {
            return;
        };
        let n = sums.batches.max(1) as f64;
        tch::no_grad(|| {
            for ((bn, mean), var) in self.tracked.iter().zip(&sums.means).zip(&sums.vars) {
                let kind = bn.running_mean.kind();
                bn.running_mean
                    .shallow_clone()
                    .copy_(&(mean / n).to_kind(kind));
                bn.running_var
                    .shallow_clone()
                    .copy_(&(var / n).to_kind(kind));
                if let Some(b) = &bn.batches_tracked {
                    let _ = b.shallow_clone().fill_(sums.batches);
                }
            }
        });
    }
}

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
    planned.train.dedup_by_key(|(k, _)| *k);
    planned
}

/// The module's parameters in `named_parameters()` order with their roles (BN scale or shift
/// by the submodule they belong to), or why they cannot be trained: none, none with an
/// element, not float32, or tied.
fn sort_parameters(
    params: Vec<(String, Tensor)>,
    batch_norm_modules: &[String],
) -> Result<Vec<(String, Tensor, Role)>, String> {
    let owner = |tensor_name: &str| -> String {
        tensor_name
            .rsplit_once('.')
            .map_or(String::new(), |(m, _)| m.to_owned())
    };
    if params.is_empty() {
        return Err(
            "the module has no parameters; expected a network with trainable weights".into(),
        );
    }
    if params.iter().all(|(_, t)| t.numel() == 0) {
        return Err(format!(
            "every one of the module's {} parameters holds no element (zero-size); expected a network with trainable weights",
            params.len()
        ));
    }
    let mut seen = std::collections::HashMap::new();
    let mut sorted = Vec::with_capacity(params.len());
    for (name, tensor) in params {
        if tensor.kind() != Kind::Float {
            return Err(format!(
                "parameter {name} is {:?}; expected float32 (export the model after .float())",
                tensor.kind()
            ));
        }
        if let Some(first) = seen.insert(tensor.data_ptr() as usize, name.clone()) {
            return Err(format!(
                "parameters {first} and {name} share their storage (tied weights); expected separate parameters"
            ));
        }
        let in_bn = batch_norm_modules.contains(&owner(&name));
        let bias = name.ends_with("bias");
        let role = match (in_bn, bias) {
            (true, false) => Role::BnWeight,
            (true, true) => Role::BnBias,
            (false, false) => Role::Weight,
            (false, true) => Role::Bias,
        };
        sorted.push((name, tensor, role));
    }
    Ok(sorted)
}

/// The BN layers that track running statistics, with those statistics (views of the module's
/// buffers) and their momentum.
fn tracked_batch_norms(
    module: &ScriptModule,
    batch_norm_modules: &[String],
    buffers: &[(String, Tensor)],
) -> Result<Vec<TrackedBatchNorm>, String> {
    let buffer = |name: String| {
        buffers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.shallow_clone())
    };
    let mut tracked = Vec::new();
    for bn in batch_norm_modules {
        let qualify = |leaf: &str| {
            if bn.is_empty() {
                leaf.to_owned()
            } else {
                format!("{bn}.{leaf}")
            }
        };
        let (Some(running_mean), Some(running_var)) = (
            buffer(qualify("running_mean")),
            buffer(qualify("running_var")),
        ) else {
            // track_running_stats=False: it always normalises with batch statistics.
            continue;
        };
        tracked.push(TrackedBatchNorm {
            running_mean,
            running_var,
            batches_tracked: buffer(qualify("num_batches_tracked")),
            momentum: module.number_attr(bn, "momentum")?,
        });
    }
    Ok(tracked)
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
        check_forward(&loaded.net, path, &x, raw.classes).map_err(|e| match e {
            ModelError::Incompatible { problem: p, .. } if k != 2 => {
                problem(format!("{} (a batch of {k}: {why})", strip_path(&p, path)))
            }
            other => other,
        })?;
    }
    for &(k, why) in &planned.train {
        let (x, y) = batch(k);
        check_training_step(&loaded.net, &x, &y, raw.classes)
            .map_err(|e| problem(format!("in training mode on a batch of {k} ({why}): {e}")))?;
    }
    Ok(())
}

fn strip_path(problem: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    problem.strip_prefix(&prefix).unwrap_or(problem).to_owned()
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
    check_logits(&out, x.size()[0], classes)?;
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

/// Logits of a batch of `n`: `[n, classes]` finite float32 numbers.
fn check_logits(out: &Tensor, n: i64, classes: usize) -> Result<(), String> {
    let expected = [n, classes as i64];
    if out.size() != expected {
        return Err(format!(
            "the module maps a batch of {n} to {:?}; expected logits {expected:?} ({classes} classes in the data)",
            out.size()
        ));
    }
    if out.kind() != Kind::Float {
        return Err(format!(
            "the module's logits are {:?}; expected float32 (no .long(), .argmax() or .double() at the end)",
            out.kind()
        ));
    }
    if out.isfinite().all().int64_value(&[]) == 0 {
        return Err(format!(
            "the module's output on a batch of {n} is not finite (NaN or infinite logits)"
        ));
    }
    Ok(())
}

/// Runs a loaded module on a small batch `x` of the data in eval mode and checks its output
/// against `classes`: one tensor `[N, classes]` of finite float32 numbers.
pub fn check_forward(
    net: &TorchScriptNet,
    path: &Path,
    x: &Tensor,
    classes: usize,
) -> Result<(), ModelError> {
    let problem = |problem: String| ModelError::Incompatible {
        arch: "torchscript",
        problem: format!("{}: {problem}", path.display()),
    };
    let shape = x.size();
    let out = tch::no_grad(|| net.try_forward(x, Mode::Eval)).map_err(|e| {
        problem(format!(
            "the module fails on a batch of the data, shape {shape:?}: {e}"
        ))
    })?;
    check_logits(&out, shape[0], classes).map_err(|e| {
        problem(e.replace(
            &format!("a batch of {} ", shape[0]),
            &format!("a batch of shape {shape:?} "),
        ))
    })
}

#[cfg(test)]
mod tests;
