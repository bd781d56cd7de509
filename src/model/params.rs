//! Named, tagged parameters living in one flat vector.
//!
//! Models are built through a [`Scope`], which names every tensor as PyTorch's `state_dict`
//! would (`layer1.0.bn1.weight`) and tags it (BN or not). Once built, all trainable parameters
//! are moved into one contiguous 1-D tensor and each parameter becomes a view of it. The
//! optimiser, the SWA average and the probes then work on whole parameter vectors with a
//! handful of kernel launches, whatever the number of layers.

use super::fused::FusedPass;
use std::cell::RefCell;
use std::rc::Rc;
use tch::nn::Init;
use tch::{Device, Kind, Tensor};

/// What a parameter is, for selecting groups of them (probes and ablations select by BN tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Weight,
    Bias,
    /// A batch-norm scale (gamma).
    BnWeight,
    /// A batch-norm shift (beta).
    BnBias,
}

impl Role {
    /// True for batch-norm affine parameters.
    pub fn is_bn(self) -> bool {
        matches!(self, Self::BnWeight | Self::BnBias)
    }
}

/// Where a parameter sits in the flat vector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<i64>,
    pub offset: i64,
    pub numel: i64,
    pub role: Role,
}

/// A layer whose running statistics a BN recomputation rebuilds: batch norm. The builder
/// keeps each one so that the model can reset and store them (the layers depend on this
/// module for their parameters, not the other way round).
pub trait Recomputed {
    /// Forgets any moments accumulated so far.
    fn reset_moments(&self);
    /// Sets the running statistics to the moments accumulated since the reset; false if
    /// nothing was accumulated.
    fn store_moments(&self) -> bool;
}

/// Collects tensors while a model is being built.
pub struct Builder {
    device: Device,
    /// Only shapes are wanted: parameters take no memory (see [`Builder::counting`]).
    counting: bool,
    /// Copies of the model side by side (see [`Builder::stacked`]); 1 for a plain model.
    stack: i64,
    params: RefCell<Vec<(String, Tensor, Role)>>,
    buffers: RefCell<Vec<(String, Tensor)>>,
    batch_norms: RefCell<Vec<Rc<dyn Recomputed>>>,
    /// The fused pass its convolutions watch (see `fused`).
    fused: Rc<FusedPass>,
}

/// A naming scope inside a [`Builder`], like a PyTorch submodule.
#[derive(Clone)]
pub struct Scope<'a> {
    builder: &'a Builder,
    prefix: String,
}

impl Builder {
    /// An empty builder that creates tensors on `device`.
    pub fn new(device: Device) -> Self {
        Self {
            device,
            counting: false,
            stack: 1,
            params: RefCell::default(),
            buffers: RefCell::default(),
            batch_norms: RefCell::default(),
            fused: Rc::default(),
        }
    }

    /// A builder that records names and shapes without storing parameter values: each
    /// parameter is one zero broadcast to its shape, so a model of any size costs a few bytes
    /// (BN statistics, one entry per channel, are still allocated).
    pub fn counting() -> Self {
        Self {
            counting: true,
            ..Self::new(Device::Cpu)
        }
    }

    /// A builder of `k` copies of a model evaluated side by side in one forward pass: every
    /// parameter gets a leading dimension `k`, every BN layer `k` times the channels, and the
    /// layers run the copies as groups (grouped convolutions, batched matrix products), so
    /// that a probe measures `k` points of its line at once. Values start at zero; they are
    /// copied in from the points' weight vectors.
    pub fn stacked(device: Device, k: i64) -> Self {
        Self {
            stack: k.max(1),
            ..Self::new(device)
        }
    }

    /// The device tensors are created on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Takes an existing tensor (a loaded module's parameter) as a parameter; like the ones
    /// [`Scope::param`] creates, it becomes a view of the flat vector in [`Builder::finish`].
    pub fn adopt(&self, name: String, tensor: Tensor, role: Role) {
        self.params.borrow_mut().push((name, tensor, role));
    }

    /// Names and shapes of the parameters and buffers built so far.
    pub(super) fn shapes(&self) -> (Shapes, Shapes) {
        let params = self.params.borrow();
        let buffers = self.buffers.borrow();
        (
            params
                .iter()
                .map(|(n, t, _)| (n.clone(), t.size()))
                .collect(),
            buffers.iter().map(|(n, t)| (n.clone(), t.size())).collect(),
        )
    }

    /// The top-level scope.
    pub fn root(&self) -> Scope<'_> {
        Scope {
            builder: self,
            prefix: String::new(),
        }
    }

    /// Moves the parameters into one flat vector and returns the pieces a `Model` keeps.
    pub(super) fn finish(self) -> Built {
        let params = self.params.into_inner();
        let mut infos = Vec::with_capacity(params.len());
        let mut offset = 0;
        for (name, tensor, role) in &params {
            let numel = tensor.numel() as i64;
            infos.push(ParamInfo {
                name: name.clone(),
                shape: tensor.size(),
                offset,
                numel,
                role: *role,
            });
            offset += numel;
        }
        let flat = if params.is_empty() {
            Tensor::zeros([0], (Kind::Float, self.device))
        } else {
            Tensor::cat(
                &params
                    .iter()
                    .map(|(_, t, _)| t.view([-1]))
                    .collect::<Vec<_>>(),
                0,
            )
        };
        let handles = params
            .into_iter()
            .zip(&infos)
            .map(|((_, mut tensor, _), info)| {
                tensor.set_data(
                    &flat
                        .narrow(0, info.offset, info.numel)
                        .view(&info.shape[..]),
                );
                tensor.set_requires_grad(true)
            })
            .collect();
        Built {
            flat,
            infos,
            handles,
            buffers: self.buffers.into_inner(),
            batch_norms: self.batch_norms.into_inner(),
            fused: self.fused,
        }
    }
}

/// Tensors by name and shape.
pub type Shapes = Vec<(String, Vec<i64>)>;

pub(super) struct Built {
    pub flat: Tensor,
    pub infos: Vec<ParamInfo>,
    pub handles: Vec<Tensor>,
    pub buffers: Vec<(String, Tensor)>,
    pub batch_norms: Vec<Rc<dyn Recomputed>>,
    pub fused: Rc<FusedPass>,
}

impl<'a> Scope<'a> {
    /// A child scope, `self.name`.
    pub fn sub(&self, name: impl std::fmt::Display) -> Scope<'a> {
        Scope {
            builder: self.builder,
            prefix: self.qualify(&name.to_string()),
        }
    }

    fn qualify(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The device tensors are created on.
    pub fn device(&self) -> Device {
        self.builder.device
    }

    /// Copies of the model built side by side (1 for a plain model).
    pub fn stack(&self) -> i64 {
        self.builder.stack
    }

    /// The fused pass the model's convolutions watch.
    pub fn fused(&self) -> Rc<FusedPass> {
        self.builder.fused.clone()
    }

    /// A new trainable parameter, initialised by `init`.
    pub fn param(&self, name: &str, shape: &[i64], init: Init, role: Role) -> Tensor {
        let k = self.builder.stack;
        let tensor = if self.builder.counting {
            Tensor::zeros([1], (Kind::Float, Device::Cpu)).expand(shape, false)
        } else if k > 1 {
            let stacked: Vec<i64> = std::iter::once(k).chain(shape.iter().copied()).collect();
            Tensor::zeros(stacked.as_slice(), (Kind::Float, self.builder.device))
        } else {
            tch::nn::init(init, shape, self.builder.device)
        };
        self.builder
            .params
            .borrow_mut()
            .push((self.qualify(name), tensor.shallow_clone(), role));
        tensor
    }

    /// A new non-trainable state tensor (BN running statistics).
    pub fn buffer(&self, name: &str, tensor: Tensor) -> Tensor {
        self.builder
            .buffers
            .borrow_mut()
            .push((self.qualify(name), tensor.shallow_clone()));
        tensor
    }

    /// Registers a batch-norm layer so that the model can recompute its statistics.
    pub fn register_batch_norm<T: Recomputed + 'static>(&self, bn: Rc<T>) -> Rc<T> {
        self.builder.batch_norms.borrow_mut().push(bn.clone());
        bn
    }
}
