//! WideResNet-depth-k as in the SWA code (`models/wide_resnet.py`): n = (depth - 4) / 6 wide
//! basic blocks per stage, stages of 16k/32k/64k planes, convolutions with biases, dropout 0,
//! a final BN with PyTorch momentum 0.9, and PyTorch's default initialisation (the file's
//! `conv_init` is never called). `norm: none` gives WideResNet28x10_withoutbn.

use super::layers::{
    BatchNorm, Conv2d, ConvSpec, Linear, MaybeBn, bn_relu, maybe_bn, torch_default,
};
use super::params::Scope;
use super::{Mode, Network};
use tch::Tensor;

struct WideBasic {
    bn1: MaybeBn,
    conv1: Conv2d,
    bn2: MaybeBn,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

pub struct WideResNet {
    conv1: Conv2d,
    blocks: Vec<WideBasic>,
    bn1: MaybeBn,
    linear: Linear,
}

fn conv(s: &Scope, spec: ConvSpec) -> Conv2d {
    let spec = spec.with_bias();
    Conv2d::new(
        s,
        spec,
        torch_default(spec.in_channels * spec.kernel * spec.kernel),
    )
}

impl WideResNet {
    pub fn new(s: &Scope, depth: i64, k: i64, in_channels: i64, classes: i64, bn: bool) -> Self {
        let n = (depth - 4) / 6;
        let conv1 = conv(&s.sub("conv1"), ConvSpec::k3(in_channels, 16, 1));
        let mut in_planes = 16;
        let mut blocks = Vec::new();
        for (stage, (planes, stride)) in [(16 * k, 1), (32 * k, 2), (64 * k, 2)]
            .into_iter()
            .enumerate()
        {
            let layer = s.sub(format!("layer{}", stage + 1));
            for i in 0..n {
                let b = layer.sub(i);
                let stride = if i == 0 { stride } else { 1 };
                blocks.push(WideBasic {
                    bn1: maybe_bn(&b.sub("bn1"), in_planes, bn),
                    conv1: conv(&b.sub("conv1"), ConvSpec::k3(in_planes, planes, 1)),
                    bn2: maybe_bn(&b.sub("bn2"), planes, bn),
                    conv2: conv(&b.sub("conv2"), ConvSpec::k3(planes, planes, stride)),
                    shortcut: (stride != 1 || in_planes != planes).then(|| {
                        conv(
                            &b.sub("shortcut").sub(0),
                            ConvSpec::k1(in_planes, planes, stride),
                        )
                    }),
                });
                in_planes = planes;
            }
        }
        let bn1 = bn.then(|| BatchNorm::with_momentum(&s.sub("bn1"), in_planes, 0.9));
        let linear = Linear::new(&s.sub("linear"), in_planes, classes);
        Self {
            conv1,
            blocks,
            bn1,
            linear,
        }
    }
}

impl Network for WideResNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let mut x = self.conv1.forward(x);
        for b in &self.blocks {
            let out = b
                .conv1
                .forward_bn_relu(&b.bn2, &bn_relu(&b.bn1, &x, mode), mode);
            // The block's input moves into the shortcut: the sum may be written over it.
            let shortcut = match &b.shortcut {
                Some(conv) => conv.forward(&x),
                None => x,
            };
            x = b.conv2.forward_add(&out, shortcut);
        }
        let x = bn_relu(&self.bn1, &x, mode).adaptive_avg_pool2d([1, 1]);
        self.linear.forward(&x.flatten(1, -1))
    }

    fn runs_fused(&self) -> bool {
        true
    }
}
