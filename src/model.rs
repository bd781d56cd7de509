//! The model zoo, built from the experiment's `model:` section.
//!
//! A [`Model`] is a network plus its parameters in one flat vector (see [`params`]), its BN
//! running statistics, and the loss it is trained with. Copies of a model (the SWA average,
//! probe points) are built from the same configuration and filled with [`Model::copy_from`].

pub mod eval;
mod fused;
pub mod layers;
mod objective;
mod onednn;
pub mod params;
mod second_order;
mod state;

mod densenet;
mod mlp;
mod preresnet;
pub mod torchscript;
mod toy;
mod vgg;
mod wrn;
mod zoo;

use crate::config::{Arch, ModelConfig, Norm};
use crate::format::group_thousands;
use fused::FusedPass;
pub use objective::Objective;
use params::{Builder, ParamInfo};
pub use second_order::with_second_derivatives;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};
pub use zoo::Layout;
use zoo::network;

/// How a forward pass treats batch norm (and dropout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics, running statistics updated, dropout on.
    Train,
    /// Running statistics, dropout off. Zoo models fold each BN that follows a convolution into
    /// it and, in a fused pass on the CPU (see [`fused`]), run oneDNN's convolutions with
    /// their ReLU and residual add: `PlainEval` up to float rounding.
    Eval,
    /// `Eval` computed layer by layer as PyTorch eager does (no folding, no fusion): the
    /// reference the fast pass is checked and benchmarked against, and the pass to take
    /// gradients through (oneDNN's fused operators have no backward).
    PlainEval,
    /// Batch statistics without touching the running ones, dropout off.
    BatchStats,
    /// Like `BatchStats`, while accumulating the exact moments of every BN input.
    Accumulate,
}

/// A network: a forward pass over a batch.
pub trait Network {
    /// Logits for a batch.
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor;

    /// The TorchScript module behind it, if it is one.
    fn script_module(&self) -> Option<&torchscript::ScriptModule> {
        None
    }

    /// True if it has batch norm that it manages itself (the zoo registers its layers with
    /// the builder instead).
    fn has_own_batch_norm(&self) -> bool {
        false
    }

    /// True if its evaluation and BN passes can run fused (see [`fused`]): its convolutions
    /// are `layers::Conv2d`, and every operation takes channels-last activations.
    fn runs_fused(&self) -> bool {
        false
    }

    /// Starts a recomputation of its own BN statistics: `Mode::Accumulate` passes follow.
    fn begin_bn_recompute(&self) {}

    /// Stores the statistics accumulated since `begin_bn_recompute`.
    fn finish_bn_recompute(&self) {}
}

/// Why a model could not be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model.arch = {arch}: {problem}")]
    Incompatible { arch: &'static str, problem: String },
    #[error("{0}")]
    State(String),
}

/// A network with its parameters in one flat vector.
pub struct Model {
    net: Box<dyn Network>,
    flat: Tensor,
    params: Vec<ParamInfo>,
    handles: Vec<Tensor>,
    buffers: Vec<(String, Tensor)>,
    batch_norms: Vec<Rc<dyn params::Recomputed>>,
    objective: Objective,
    description: String,
    /// What it was built from, to build stacked copies of it.
    cfg: ModelConfig,
    input_shape: Vec<i64>,
    classes: usize,
    /// Copies side by side (see [`Model::stacked`]); 1 for a plain model.
    stack: i64,
    fused: Rc<FusedPass>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({})", self.description)
    }
}

impl Model {
    /// Builds the configured model for inputs of `input_shape` (`[C, H, W]` or `[D]`) and
    /// `classes` classes. Initialisation draws from libtorch's global generator.
    pub fn build(
        cfg: &ModelConfig,
        input_shape: &[i64],
        classes: usize,
        device: Device,
    ) -> Result<Self, ModelError> {
        let model = Self::build_with(Builder::new(device), cfg, input_shape, classes)?;
        if let Some(init) = cfg.bn_init {
            model.init_bn_scales(init)?;
        }
        Ok(model)
    }

    /// Starts every BN scale (γ) as `init` says, from libtorch's seeded generator.
    fn init_bn_scales(&self, init: crate::config::BnInit) -> Result<(), ModelError> {
        let scales: Vec<&ParamInfo> = self
            .params
            .iter()
            .filter(|p| p.role == params::Role::BnWeight)
            .collect();
        if scales.is_empty() {
            return Err(ModelError::Incompatible {
                arch: self.cfg.arch.as_str(),
                problem: format!(
                    "model.bn_init = {}: the model has no batch norm scale to initialise; expected a model with BN (model.norm: batch)",
                    init.as_str()
                ),
            });
        }
        tch::no_grad(|| {
            for p in scales {
                let mut gamma = self.flat.narrow(0, p.offset, p.numel);
                match init {
                    crate::config::BnInit::One => {
                        let _ = gamma.fill_(1.0);
                    }
                    crate::config::BnInit::Uniform => {
                        let _ = gamma.uniform_(0.0, 1.0);
                    }
                    crate::config::BnInit::Normal => {
                        let _ = gamma.normal_(0.0, 0.1);
                    }
                }
            }
        });
        Ok(())
    }

    /// `k` copies of this model's architecture side by side, evaluated in one forward pass
    /// (parameters zero until [`Model::load_points`] fills them): a probe measures `k` points
    /// of its line at once.
    pub fn stacked(&self, k: i64) -> Result<Self, ModelError> {
        if !self.can_stack() {
            return Err(ModelError::Incompatible {
                arch: self.cfg.arch.as_str(),
                problem: "its copies cannot be stacked into one pass".into(),
            });
        }
        let builder = Builder::stacked(self.flat.device(), k);
        Self::build_with(builder, &self.cfg, &self.input_shape, self.classes)
    }

    fn build_with(
        builder: Builder,
        cfg: &ModelConfig,
        input_shape: &[i64],
        classes: usize,
    ) -> Result<Self, ModelError> {
        if cfg.arch == Arch::Torchscript {
            return Self::load_torchscript(builder, cfg, input_shape, classes);
        }
        let inputs = Self::check_input(cfg, input_shape, classes)?;
        let stack = builder.root().stack();
        let (net, name) = network(cfg, &builder.root(), inputs, classes as i64);
        let objective = if cfg.arch == Arch::Toy {
            Objective::Logistic
        } else {
            Objective::CrossEntropy
        };
        let built = builder.finish();
        let count = built.flat.numel();
        let norm = if built.batch_norms.is_empty() {
            "no BN"
        } else {
            "BN"
        };
        Ok(Self {
            net,
            description: format!("{name} ({norm}, {} parameters)", group_thousands(count)),
            flat: built.flat,
            params: built.infos,
            handles: built.handles,
            buffers: built.buffers,
            batch_norms: built.batch_norms,
            objective,
            cfg: cfg.clone(),
            input_shape: input_shape.to_vec(),
            classes,
            stack,
            fused: built.fused,
        })
    }

    /// A TorchScript module (see [`torchscript`]) with its parameters moved into the flat
    /// vector.
    fn load_torchscript(
        builder: Builder,
        cfg: &ModelConfig,
        input_shape: &[i64],
        classes: usize,
    ) -> Result<Self, ModelError> {
        let loaded = torchscript::TorchScriptNet::load(cfg.script_path()?, builder.device())?;
        for (name, tensor, role) in loaded.params {
            builder.adopt(name, tensor, role);
        }
        for (name, tensor) in loaded.buffers {
            let _ = builder.root().buffer(&name, tensor);
        }
        let built = builder.finish();
        let norm = if loaded.net.has_own_batch_norm() {
            "BN"
        } else {
            "no BN"
        };
        Ok(Self {
            description: format!(
                "{} (TorchScript, {norm}, {} parameters)",
                loaded.name,
                group_thousands(built.flat.numel())
            ),
            net: Box::new(loaded.net),
            flat: built.flat,
            params: built.infos,
            handles: built.handles,
            buffers: built.buffers,
            batch_norms: built.batch_norms,
            objective: Objective::CrossEntropy,
            cfg: cfg.clone(),
            input_shape: input_shape.to_vec(),
            classes,
            stack: 1,
            fused: built.fused,
        })
    }

    /// Whether copies of it can run side by side in one pass ([`Model::stacked`]): the zoo's
    /// layers know how; a TorchScript module does not.
    pub fn can_stack(&self) -> bool {
        self.cfg.arch != Arch::Torchscript
    }

    /// The TorchScript module behind a custom model (None for the zoo's).
    pub fn script_module(&self) -> Option<&torchscript::ScriptModule> {
        self.net.script_module()
    }

    /// Copies side by side (1 for a plain model).
    pub fn stack(&self) -> i64 {
        self.stack
    }

    /// Fills a stacked model with `weights`, one row per copy (`[k, P]`, each row a flat
    /// parameter vector of the plain model), and every copy's BN statistics with `stats`'s.
    pub fn load_points(&self, weights: &Tensor, stats: &Model) {
        let k = self.stack;
        // The stacked vector holds each parameter's k copies one after another.
        let mut base = 0;
        let mut pieces = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let numel = p.numel / k;
            pieces.push(weights.narrow(1, base, numel).reshape([-1]));
            base += numel;
        }
        tch::no_grad(|| {
            self.flat.shallow_clone().copy_(&Tensor::cat(&pieces, 0));
            for ((_, mine), (_, theirs)) in self.buffers.iter().zip(&stats.buffers) {
                mine.shallow_clone().copy_(&theirs.repeat([k]));
            }
        });
    }

    /// Logits for a batch.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let repeated;
        let x = if self.stack > 1 {
            // Every copy sees the same batch: the input repeated along the channels.
            let mut times = vec![1i64; x.dim()];
            times[1] = self.stack;
            repeated = x.repeat(times.as_slice());
            &repeated
        } else {
            x
        };
        if self.fused.runs(mode) && fused::takes(x) {
            let _span = self.fused.forward_span();
            return self.net.forward(&fused::channels_last(x), mode);
        }
        self.net.forward(x, mode)
    }

    /// Runs `f`, passes of forwards in `mode` over which the weights do not change, with
    /// oneDNN's fused convolutions where the network and the machine allow (see [`fused`]).
    pub fn fused_pass<R>(&self, mode: Mode, f: impl FnOnce() -> R) -> R {
        if !self.runs_fused_passes() {
            return f();
        }
        let _pass = self.fused.begin(mode);
        f()
    }

    /// Whether [`Model::fused_pass`] runs fused here.
    pub fn runs_fused_passes(&self) -> bool {
        self.net.runs_fused() && fused::supported(self.flat.device())
    }

    /// How many convolution weights fused passes have packed so far (once per convolution
    /// and pass).
    pub fn fused_weight_packs(&self) -> usize {
        self.fused.packs()
    }

    /// All trainable parameters as one 1-D tensor; the parameters are views of it, so writing
    /// to it changes the model.
    pub fn flat(&self) -> &Tensor {
        &self.flat
    }

    /// Names, shapes, roles and offsets of the parameters, in PyTorch's `parameters()` order.
    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }

    /// The parameters as autograd leaves (views of [`Model::flat`]), for higher-order
    /// derivatives.
    pub fn param_handles(&self) -> &[Tensor] {
        &self.handles
    }

    /// BN running statistics by name.
    pub fn buffers(&self) -> &[(String, Tensor)] {
        &self.buffers
    }

    /// Number of trainable scalars.
    pub fn num_params(&self) -> i64 {
        self.flat.numel() as i64
    }

    /// True if the model has batch-norm layers.
    pub fn has_bn(&self) -> bool {
        !self.batch_norms.is_empty() || self.net.has_own_batch_norm()
    }

    /// The loss the model is trained with.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// e.g. "preresnet-8 (BN, 77 562 parameters)".
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The gradient of `loss` with respect to every parameter, as one flat vector.
    pub fn flat_grad(&self, loss: &Tensor) -> Tensor {
        let grads = Tensor::run_backward(&[loss], &self.handles, false, false);
        let pieces: Vec<Tensor> = grads
            .iter()
            .zip(&self.params)
            .map(|(g, info)| {
                if g.defined() {
                    g.view([-1])
                } else {
                    Tensor::zeros([info.numel], (Kind::Float, self.flat.device()))
                }
            })
            .collect();
        Tensor::cat(&pieces, 0)
    }

    /// Starts an exact BN recomputation: forward passes in [`Mode::Accumulate`] follow.
    pub fn begin_bn_recompute(&self) {
        self.batch_norms.iter().for_each(|bn| bn.reset_moments());
        self.net.begin_bn_recompute();
    }

    /// Stores the accumulated moments as the running statistics.
    pub fn finish_bn_recompute(&self) {
        for bn in &self.batch_norms {
            bn.store_moments();
        }
        self.net.finish_bn_recompute();
    }

    /// True if every parameter and BN statistic is finite.
    pub fn is_finite(&self) -> bool {
        let finite = |t: &Tensor| t.isfinite().all().int64_value(&[]) == 1;
        finite(&self.flat) && self.buffers.iter().all(|(_, t)| finite(t))
    }
}

#[cfg(test)]
mod tests;
