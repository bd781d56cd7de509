//! The few layers the zoo needs, with PyTorch's names and initialisations, and a batch norm
//! whose statistics can be recomputed exactly.
//!
//! tch's own BatchNorm fixes its momentum at construction and initialises gamma from U(0, 1);
//! the paper's models use gamma = 1, and an exact recomputation needs the moments of a whole
//! pass, so batch norm is implemented here on top of `Tensor::batch_norm`.

mod conv;

pub use conv::{Conv2d, ConvSpec};

use super::Mode;
use super::fused::{self, FusedPass};
use super::onednn;
use super::params::{Recomputed, Role, Scope};
use super::second_order;
use std::cell::RefCell;
use std::rc::Rc;
use tch::nn::Init;
use tch::{Kind, Tensor};

/// PyTorch's default for conv and linear layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights
/// and biases (kaiming_uniform with a = sqrt(5)).
pub fn torch_default(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// The SWA code's convolution init: N(0, sqrt(2 / (k * k * out_channels))).
pub fn he_fan_out(kernel: i64, out_channels: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / (kernel * kernel * out_channels) as f64).sqrt(),
    }
}

/// kaiming_normal with fan_in and ReLU gain: N(0, sqrt(2 / fan_in)).
pub fn he_fan_in(fan_in: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / fan_in as f64).sqrt(),
    }
}

/// A fully connected layer.
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
    /// Copies side by side (a stacked model's), run as one batched matrix product.
    stack: i64,
}

impl Linear {
    /// PyTorch's default initialisation.
    pub fn new(s: &Scope, in_features: i64, out_features: i64) -> Self {
        Self::with_init(s, in_features, out_features, torch_default(in_features))
    }

    /// A custom weight init; the bias keeps PyTorch's default.
    pub fn with_init(s: &Scope, in_features: i64, out_features: i64, init: Init) -> Self {
        Self {
            weight: s.param("weight", &[out_features, in_features], init, Role::Weight),
            bias: s.param(
                "bias",
                &[out_features],
                torch_default(in_features),
                Role::Bias,
            ),
            stack: s.stack(),
        }
    }

    /// A custom weight init and a zero bias.
    pub fn with_zero_bias(s: &Scope, in_features: i64, out_features: i64, init: Init) -> Self {
        Self {
            weight: s.param("weight", &[out_features, in_features], init, Role::Weight),
            bias: s.param("bias", &[out_features], Init::Const(0.0), Role::Bias),
            stack: s.stack(),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.stack > 1 {
            // [N, k * in] -> [k, N, in] x [k, in, out] -> [N, k * out].
            let n = x.size()[0];
            let k = self.stack;
            let out = x
                .view([n, k, -1])
                .transpose(0, 1)
                .bmm(&self.weight.transpose(1, 2))
                + self.bias.unsqueeze(1);
            return out.transpose(0, 1).reshape([n, -1]);
        }
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// Moments of a whole pass, merged batch by batch (Chan et al.), in double precision.
#[derive(Debug)]
struct Moments {
    count: f64,
    mean: Tensor,
    m2: Tensor,
}

/// Batch normalisation over channel dimension 1, with gamma = 1 and beta = 0 at init.
#[derive(Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    eps: f64,
    moments: RefCell<Option<Moments>>,
    /// A stacked model's: weight and bias are `[k, C]` and are flattened at each pass.
    stacked: bool,
    pass: Rc<FusedPass>,
}

impl BatchNorm {
    /// A batch norm over `channels` with PyTorch's momentum 0.1.
    pub fn new(s: &Scope, channels: i64) -> Rc<Self> {
        Self::with_momentum(s, channels, 0.1)
    }

    /// A batch norm with a PyTorch-style `momentum` (weight of the new batch).
    pub fn with_momentum(s: &Scope, channels: i64, momentum: f64) -> Rc<Self> {
        let device = s.device();
        // A stacked model's copies are channel groups: k times the channels, one after another.
        let all = channels * s.stack();
        let bn = Self {
            // A stacked model flattens these at each pass: the builder moves parameters into the
            // model's flat vector after construction, and a view taken now would not follow.
            weight: s.param("weight", &[channels], Init::Const(1.0), Role::BnWeight),
            bias: s.param("bias", &[channels], Init::Const(0.0), Role::BnBias),
            running_mean: s.buffer("running_mean", Tensor::zeros([all], (Kind::Float, device))),
            running_var: s.buffer("running_var", Tensor::ones([all], (Kind::Float, device))),
            momentum,
            eps: 1e-5,
            moments: RefCell::new(None),
            stacked: s.stack() > 1,
            pass: s.fused(),
        };
        s.register_batch_norm(Rc::new(bn))
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let flattened;
        let (weight, bias) = if self.stacked {
            flattened = (self.weight.view([-1]), self.bias.view([-1]));
            (&flattened.0, &flattened.1)
        } else {
            (&self.weight, &self.bias)
        };
        let (w, b) = (Some(weight), Some(bias));
        let cudnn = true;
        match mode {
            Mode::Train => {
                let (rm, rv) = (Some(&self.running_mean), Some(&self.running_var));
                x.batch_norm(w, b, rm, rv, true, self.momentum, self.eps, cudnn)
            }
            Mode::Eval => {
                // As one multiply-add per element, whose second derivatives are products of
                // per-channel vectors (batch_norm's double backward sweeps the activations
                // several times more).
                let (scale, shift) = self.eval_affine();
                second_order::affine(x, &scale, &shift)
            }
            Mode::PlainEval => {
                let (rm, rv) = (Some(&self.running_mean), Some(&self.running_var));
                x.batch_norm(w, b, rm, rv, false, self.momentum, self.eps, cudnn)
            }
            // ATen's, or ours in a graph built to be differentiated twice (see second_order).
            Mode::BatchStats => second_order::batch_norm(x, weight, bias, self.eps),
            Mode::Accumulate => {
                // Train-mode batch norm already computes the batch's mean and inverse standard
                // deviation; accumulate those rather than reducing the input a second time.
                let (out, mean, invstd) =
                    x.native_batch_norm(w, b, None::<&Tensor>, None, true, 0.0, self.eps);
                self.accumulate(x, &mean, &invstd);
                out
            }
        }
    }

    /// `relu(forward(x, mode))`. In a fused eval pass the normalisation and the ReLU are
    /// one sweep over the activations.
    pub fn forward_relu(&self, x: &Tensor, mode: Mode) -> Tensor {
        if mode == Mode::Eval && self.pass.in_forward() && fused::takes(x) {
            let (scale, shift) = self.eval_affine();
            return onednn::affine_relu(x, &scale, &shift);
        }
        relu_fresh(self.forward(x, mode))
    }

    /// Eval mode as one affine map per channel, `x * scale + shift`, with the running
    /// statistics: `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale`.
    pub fn eval_affine(&self) -> (Tensor, Tensor) {
        let scale = self.weight.view([-1]) * (&self.running_var + self.eps).rsqrt();
        let shift = self.bias.view([-1]) - &self.running_mean * &scale;
        (scale, shift)
    }

    /// Adds a batch's moments (its mean, and 1/sqrt(biased variance + eps)) to the pass's.
    fn accumulate(&self, x: &Tensor, batch_mean: &Tensor, invstd: &Tensor) {
        let n = (x.numel() / x.size()[1] as usize) as f64;
        let mean = batch_mean.to_kind(Kind::Double);
        let var = invstd.to_kind(Kind::Double).pow_tensor_scalar(-2) - self.eps;
        let mut slot = self.moments.borrow_mut();
        *slot = Some(match slot.take() {
            None => Moments {
                count: n,
                m2: var * n,
                mean,
            },
            Some(m) => {
                let total = m.count + n;
                let delta = &mean - &m.mean;
                Moments {
                    count: total,
                    mean: &m.mean + &delta * (n / total),
                    m2: m.m2 + var * n + delta.square() * (m.count * n / total),
                }
            }
        });
    }

    /// Forgets any moments accumulated so far.
    pub fn reset_moments(&self) {
        self.moments.replace(None);
    }

    /// Sets the running statistics to the moments accumulated since the last reset: the mean
    /// and the unbiased variance of the layer's input over the whole pass. Returns false if
    /// nothing was accumulated.
    pub fn store_moments(&self) -> bool {
        let Some(m) = self.moments.replace(None) else {
            return false;
        };
        let unbiased = m.m2 / (m.count - 1.0).max(1.0);
        tch::no_grad(|| {
            self.running_mean.shallow_clone().copy_(&m.mean);
            self.running_var.shallow_clone().copy_(&unbiased);
        });
        true
    }
}

impl Recomputed for BatchNorm {
    fn reset_moments(&self) {
        BatchNorm::reset_moments(self);
    }

    fn store_moments(&self) -> bool {
        BatchNorm::store_moments(self)
    }
}

/// An optional batch norm, for models built with `norm: none`.
pub type MaybeBn = Option<Rc<BatchNorm>>;

/// Builds a batch norm only when `enabled`.
pub fn maybe_bn(s: &Scope, channels: i64, enabled: bool) -> MaybeBn {
    enabled.then(|| BatchNorm::new(s, channels))
}

/// `relu(bn(x))`, the ReLU in place where no graph holds the BN's output.
pub fn bn_relu(bn: &MaybeBn, x: &Tensor, mode: Mode) -> Tensor {
    match bn {
        Some(bn) => bn.forward_relu(x, mode),
        None => relu(x),
    }
}

/// The ReLU of a tensor nothing else holds: in place unless autograd records it.
fn relu_fresh(mut x: Tensor) -> Tensor {
    if x.requires_grad() {
        relu(&x)
    } else {
        x.relu_()
    }
}

/// `relu(x)`, out of place; in a graph built to be differentiated twice, with a second
/// derivative that writes no zeros (see second_order).
pub fn relu(x: &Tensor) -> Tensor {
    second_order::relu(x)
}

/// Applies `bn` if there is one.
pub fn apply_bn(bn: &MaybeBn, x: &Tensor, mode: Mode) -> Tensor {
    match bn {
        Some(bn) => bn.forward(x, mode),
        None => x.shallow_clone(),
    }
}

#[cfg(test)]
mod tests;
