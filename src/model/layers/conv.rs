//! The convolution: PyTorch's layout and initialisation, eval mode's BN folded into it, and
//! in a fused pass (see `model::fused`) oneDNN's convolution with its ReLU or residual add.

use super::super::Mode;
use super::super::fused::PackedConv;
use super::super::onednn::{self, Geometry};
use super::super::params::{Role, Scope};
use super::super::second_order;
use super::{BatchNorm, MaybeBn, apply_bn, torch_default};
use tch::Tensor;
use tch::nn::Init;

/// A 2-D convolution (square kernel, no dilation or groups).
#[derive(Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    kernel: i64,
    out_channels: i64,
    /// Copies side by side (a stacked model's), run as convolution groups.
    stack: i64,
    packed: PackedConv,
}

/// How a convolution is shaped and initialised.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    pub bias: bool,
}

impl ConvSpec {
    /// A 3x3 convolution with padding 1.
    pub fn k3(in_channels: i64, out_channels: i64, stride: i64) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: 3,
            stride,
            padding: 1,
            bias: false,
        }
    }

    /// A 1x1 convolution.
    pub fn k1(in_channels: i64, out_channels: i64, stride: i64) -> Self {
        Self {
            kernel: 1,
            padding: 0,
            ..Self::k3(in_channels, out_channels, stride)
        }
    }

    /// The same convolution with a bias.
    pub fn with_bias(self) -> Self {
        Self { bias: true, ..self }
    }

    fn fan_in(&self) -> i64 {
        self.in_channels * self.kernel * self.kernel
    }
}

impl Conv2d {
    /// A convolution with weight init `init` and, if any, PyTorch's default bias init.
    pub fn new(s: &Scope, spec: ConvSpec, init: Init) -> Self {
        let shape = [
            spec.out_channels,
            spec.in_channels,
            spec.kernel,
            spec.kernel,
        ];
        let weight = s.param("weight", &shape, init, Role::Weight);
        let bias = spec.bias.then(|| {
            s.param(
                "bias",
                &[spec.out_channels],
                torch_default(spec.fan_in()),
                Role::Bias,
            )
        });
        Self {
            weight,
            bias,
            stride: spec.stride,
            padding: spec.padding,
            kernel: spec.kernel,
            out_channels: spec.out_channels,
            stack: s.stack(),
            packed: PackedConv::new(s.fused()),
        }
    }

    /// Like [`Conv2d::new`] with a zero bias (the SWA code's VGG).
    pub fn with_zero_bias(s: &Scope, spec: ConvSpec, init: Init) -> Self {
        let mut conv = Self::new(
            s,
            ConvSpec {
                bias: false,
                ..spec
            },
            init,
        );
        conv.bias = Some(s.param("bias", &[spec.out_channels], Init::Const(0.0), Role::Bias));
        conv
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        if self.packed.active() {
            return self.run_packed(x, self.packed_weights(None, x), None, false);
        }
        self.convolve(x, &self.weight, self.bias.as_ref())
    }

    /// This convolution followed by `bn`. In eval mode the BN's per-channel affine map is folded
    /// into the weights and bias, so that the pass skips one sweep over the activations.
    pub fn forward_bn(&self, bn: &MaybeBn, x: &Tensor, mode: Mode) -> Tensor {
        match bn {
            Some(bn) if mode == Mode::Eval => {
                if self.packed.active() {
                    return self.run_packed(x, self.packed_weights(Some(bn), x), None, false);
                }
                let (weight, bias) = self.folded(bn);
                self.convolve(x, &weight, Some(&bias))
            }
            _ => apply_bn(bn, &self.forward(x), mode),
        }
    }

    /// `relu(forward_bn(bn, x, mode))`; in a fused eval pass the ReLU is the convolution's
    /// post-op.
    pub fn forward_bn_relu(&self, bn: &MaybeBn, x: &Tensor, mode: Mode) -> Tensor {
        if self.packed.active() {
            return match bn.as_deref() {
                Some(bn) if mode != Mode::Eval => bn.forward_relu(&self.forward(x), mode),
                fold => self.run_packed(x, self.packed_weights(fold, x), None, true),
            };
        }
        super::relu(&self.forward_bn(bn, x, mode))
    }

    /// `forward(x) + other`; in a fused pass the add is the convolution's post-op, and the sum
    /// is written over `other` when no other handle sees it (pass it by value, not a clone).
    pub fn forward_add(&self, x: &Tensor, other: Tensor) -> Tensor {
        if self.packed.active() && other.size() == self.output_size(x) {
            return self.run_packed(x, self.packed_weights(None, x), Some(other), false);
        }
        self.forward(x) + other
    }

    /// `relu?(conv + bias + other?)` with packed weights: by our direct convolution where it
    /// takes the layer, else by oneDNN's (whose residual add has no ReLU after it here).
    fn run_packed(
        &self,
        x: &Tensor,
        (weight, bias): (Tensor, Option<Tensor>),
        other: Option<Tensor>,
        relu: bool,
    ) -> Tensor {
        let at = self.geometry();
        if onednn::runs_direct(&self.weight.size(), at) {
            return onednn::direct_conv(x, &weight, bias.as_ref(), other, relu);
        }
        match other {
            Some(other) => {
                debug_assert!(!relu, "oneDNN's residual add is called without a ReLU");
                onednn::conv_add(x, &weight, bias.as_ref(), other, at)
            }
            None => onednn::conv(x, &weight, bias.as_ref(), at, relu),
        }
    }

    fn output_size(&self, x: &Tensor) -> Vec<i64> {
        let size = x.size();
        let side = |n: i64| (n + 2 * self.padding - self.kernel) / self.stride + 1;
        vec![
            size[0],
            self.out_channels * self.stack,
            side(size[2]),
            side(size[3]),
        ]
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            stride: self.stride,
            padding: self.padding,
            groups: self.stack,
        }
    }

    /// The weights (with `bn` folded in, if given) packed for the running fused pass.
    fn packed_weights(&self, bn: Option<&BatchNorm>, x: &Tensor) -> (Tensor, Option<Tensor>) {
        self.packed.weights(bn.is_some(), self.geometry(), x, || {
            let (weight, bias) = match bn {
                Some(bn) => {
                    let (weight, bias) = self.folded(bn);
                    (weight, Some(bias))
                }
                None => (
                    self.weight.shallow_clone(),
                    self.bias.as_ref().map(Tensor::shallow_clone),
                ),
            };
            (grouped(&weight), bias.map(|b| b.view([-1])))
        })
    }

    /// The weights and bias with eval-mode `bn` folded in: one scale per output channel,
    /// [out] (or [k * out]) against [out, in, h, w] (or [k, out, in, h, w]).
    fn folded(&self, bn: &BatchNorm) -> (Tensor, Tensor) {
        let (scale, shift) = bn.eval_affine();
        let mut shape = self.weight.size();
        let dims = shape.len();
        shape[dims - 3..].fill(1);
        let weight = &self.weight * scale.view(shape.as_slice());
        let bias = match &self.bias {
            Some(b) => b.view([-1]) * &scale + shift,
            None => shift,
        };
        (weight, bias)
    }

    fn convolve(&self, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let weight = grouped(weight);
        let bias = bias.map(|b| b.view([-1]));
        second_order::conv2d(
            x,
            &weight,
            bias.as_ref(),
            self.stride,
            self.padding,
            self.stack,
        )
    }
}

/// A stacked model's weights [k, out, in, h, w] as k groups of one convolution
/// [k * out, in, h, w] over [N, k * in, H, W]; a plain model's as they are.
fn grouped(weight: &Tensor) -> Tensor {
    let size = weight.size();
    if size.len() == 5 {
        weight.view([size[0] * size[1], size[2], size[3], size[4]])
    } else {
        weight.shallow_clone()
    }
}
