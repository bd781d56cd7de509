//! Pre-activation ResNet as in the SWA code (timgaripov/swa `models/preresnet.py`): stages of
//! 16/32/64 planes, basic blocks below depth 44 (n = (depth - 2) / 6 per stage) and bottleneck
//! blocks (expansion 4, n = (depth - 2) / 9) from 44 on, a final BN + ReLU, global average
//! pooling and a linear classifier. Convolutions start from N(0, sqrt(2 / (k * k * out))).

use super::layers::{Conv2d, ConvSpec, Linear, MaybeBn, bn_relu, he_fan_out, maybe_bn};
use super::params::Scope;
use super::{Mode, Network};
use tch::Tensor;

struct Block {
    bn1: MaybeBn,
    conv1: Conv2d,
    bn2: MaybeBn,
    conv2: Conv2d,
    /// Present only in bottleneck blocks.
    bn3_conv3: Option<(MaybeBn, Conv2d)>,
    downsample: Option<Conv2d>,
}

impl Block {
    /// Takes `x` by value: when it is the residual, the block's output may be written over it.
    fn forward(&self, x: Tensor, mode: Mode) -> Tensor {
        let out = bn_relu(&self.bn1, &x, mode);
        // The shortcut projection sees the pre-activated input, as in the SWA code.
        let residual = match &self.downsample {
            Some(conv) => conv.forward(&out),
            None => x,
        };
        let out = self.conv1.forward_bn_relu(&self.bn2, &out, mode);
        match &self.bn3_conv3 {
            Some((bn3, conv3)) => {
                conv3.forward_add(&self.conv2.forward_bn_relu(bn3, &out, mode), residual)
            }
            None => self.conv2.forward_add(&out, residual),
        }
    }
}

pub struct PreResNet {
    conv1: Conv2d,
    blocks: Vec<Block>,
    bn: MaybeBn,
    fc: Linear,
}

impl PreResNet {
    pub fn new(s: &Scope, depth: i64, in_channels: i64, classes: i64, bn: bool) -> Self {
        let (n, bottleneck) = if depth >= 44 {
            ((depth - 2) / 9, true)
        } else {
            ((depth - 2) / 6, false)
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let conv = |s: &Scope, spec: ConvSpec| {
            Conv2d::new(s, spec, he_fan_out(spec.kernel, spec.out_channels))
        };
        let conv1 = conv(&s.sub("conv1"), ConvSpec::k3(in_channels, 16, 1));
        let mut inplanes = 16;
        let mut blocks = Vec::new();
        for (stage, (planes, stride)) in [(16, 1), (32, 2), (64, 2)].into_iter().enumerate() {
            let layer = s.sub(format!("layer{}", stage + 1));
            for i in 0..n {
                let b = layer.sub(i);
                let stride = if i == 0 { stride } else { 1 };
                let out = planes * expansion;
                let bn1 = maybe_bn(&b.sub("bn1"), inplanes, bn);
                let block = if bottleneck {
                    let conv1 = conv(&b.sub("conv1"), ConvSpec::k1(inplanes, planes, 1));
                    let bn2 = maybe_bn(&b.sub("bn2"), planes, bn);
                    let conv2 = conv(&b.sub("conv2"), ConvSpec::k3(planes, planes, stride));
                    let bn3 = maybe_bn(&b.sub("bn3"), planes, bn);
                    let conv3 = conv(&b.sub("conv3"), ConvSpec::k1(planes, out, 1));
                    (conv1, bn2, conv2, Some((bn3, conv3)))
                } else {
                    let conv1 = conv(&b.sub("conv1"), ConvSpec::k3(inplanes, planes, stride));
                    let bn2 = maybe_bn(&b.sub("bn2"), planes, bn);
                    let conv2 = conv(&b.sub("conv2"), ConvSpec::k3(planes, planes, 1));
                    (conv1, bn2, conv2, None)
                };
                let downsample = (stride != 1 || inplanes != out).then(|| {
                    conv(
                        &b.sub("downsample").sub(0),
                        ConvSpec::k1(inplanes, out, stride),
                    )
                });
                blocks.push(Block {
                    bn1,
                    conv1: block.0,
                    bn2: block.1,
                    conv2: block.2,
                    bn3_conv3: block.3,
                    downsample,
                });
                inplanes = out;
            }
        }
        let bn = maybe_bn(&s.sub("bn"), inplanes, bn);
        let fc = Linear::new(&s.sub("fc"), inplanes, classes);
        Self {
            conv1,
            blocks,
            bn,
            fc,
        }
    }
}

impl Network for PreResNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let mut x = self.conv1.forward(x);
        for block in &self.blocks {
            x = block.forward(x, mode);
        }
        let x = bn_relu(&self.bn, &x, mode).adaptive_avg_pool2d([1, 1]);
        self.fc.forward(&x.flatten(1, -1))
    }

    fn runs_fused(&self) -> bool {
        true
    }
}
