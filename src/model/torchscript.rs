//! The user's own network: a TorchScript module (`model: {arch: torchscript, path: ...}`).
//!
//! Its parameters move into the model's flat vector like the zoo's (each becomes a view of
//! it), so the optimiser, SWA and probes work on it unchanged. Batch norm is found by the
//! submodules' types; its scales and shifts form the `bn` parameter group and its running
//! statistics are the model's buffers. Modes map to training flags: `Train` sets the whole
//! module training, `Eval` none of it, and the two batch-statistics modes set only the BN
//! layers training, with their running statistics put back (`BatchStats`) or read out batch by
//! batch (`Accumulate`, as `torch.optim.swa_utils.update_bn`).

mod check;
mod module;

pub use check::{PlannedBatches, check_forward, check_with_data, planned_batches};
pub use module::{ModuleError, ScriptModule};

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
        let modules = module.named_modules().map_err(|e| problem(e.into()))?;
        let batch_norm_modules: Vec<String> = modules
            .iter()
            .filter(|(_, ty)| is_batch_norm_type(ty))
            .map(|(name, _)| name.clone())
            .collect();
        let params = module.named_parameters().map_err(|e| problem(e.into()))?;
        let sorted = sort_parameters(params, &batch_norm_modules).map_err(problem)?;
        let buffers = module.named_buffers().map_err(|e| problem(e.into()))?;
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
    pub fn try_forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor, ModuleError> {
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
                // Put back by swapping the data, not copying into it: a copy would bump the
                // buffers' version, and the backward pass of the graph just built (which
                // saved them) would then refuse to run.
                tch::no_grad(|| {
                    for (bn, saved) in self.tracked.iter().zip(saved) {
                        let targets = [
                            Some(&bn.running_mean),
                            Some(&bn.running_var),
                            bn.batches_tracked.as_ref(),
                        ];
                        for (target, value) in targets.into_iter().zip(saved) {
                            if let (Some(target), Some(value)) = (target, value) {
                                target.shallow_clone().set_data(&value);
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

    fn set_flags(&self, flags: Flags) -> Result<(), ModuleError> {
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

#[cfg(test)]
mod tests;
