//! DenseNet-BC for 32x32 inputs (growth 12, compression 0.5, bottleneck width 4 x growth,
//! 2 x growth initial features, dropout 0), with torchvision's names and initialisation:
//! kaiming-normal convolutions, zero linear bias. Depth 100 gives DenseNet-BC-100
//! (three blocks of 16 layers).

use super::layers::{
    Conv2d, ConvSpec, Linear, MaybeBn, apply_bn, he_fan_in, maybe_bn, relu, torch_default,
};
use super::params::Scope;
use super::{Mode, Network};
use tch::Tensor;

const GROWTH: i64 = 12;
const BN_SIZE: i64 = 4;

struct DenseLayer {
    norm1: MaybeBn,
    conv1: Conv2d,
    norm2: MaybeBn,
    conv2: Conv2d,
}

struct Transition {
    norm: MaybeBn,
    conv: Conv2d,
}

pub struct DenseNetBc {
    /// Copies side by side (a stacked model's).
    stack: i64,
    conv0: Conv2d,
    blocks: Vec<(Vec<DenseLayer>, Option<Transition>)>,
    norm_final: MaybeBn,
    classifier: Linear,
}

fn conv(s: &Scope, spec: ConvSpec) -> Conv2d {
    Conv2d::new(
        s,
        spec,
        he_fan_in(spec.in_channels * spec.kernel * spec.kernel),
    )
}

impl DenseNetBc {
    pub fn new(s: &Scope, depth: i64, in_channels: i64, classes: i64, bn: bool) -> Self {
        let layers_per_block = (depth - 4) / 6;
        let f = s.sub("features");
        let conv0 = conv(&f.sub("conv0"), ConvSpec::k3(in_channels, 2 * GROWTH, 1));
        let mut channels = 2 * GROWTH;
        let mut blocks = Vec::new();
        for block in 1..=3 {
            let bs = f.sub(format!("denseblock{block}"));
            let mut layers = Vec::new();
            for i in 1..=layers_per_block {
                let l = bs.sub(format!("denselayer{i}"));
                layers.push(DenseLayer {
                    norm1: maybe_bn(&l.sub("norm1"), channels, bn),
                    conv1: conv(&l.sub("conv1"), ConvSpec::k1(channels, BN_SIZE * GROWTH, 1)),
                    norm2: maybe_bn(&l.sub("norm2"), BN_SIZE * GROWTH, bn),
                    conv2: conv(&l.sub("conv2"), ConvSpec::k3(BN_SIZE * GROWTH, GROWTH, 1)),
                });
                channels += GROWTH;
            }
            let transition = (block < 3).then(|| {
                let t = f.sub(format!("transition{block}"));
                let out = channels / 2;
                let tr = Transition {
                    norm: maybe_bn(&t.sub("norm"), channels, bn),
                    conv: conv(&t.sub("conv"), ConvSpec::k1(channels, out, 1)),
                };
                channels = out;
                tr
            });
            blocks.push((layers, transition));
        }
        let norm_final = maybe_bn(&f.sub("norm_final"), channels, bn);
        let classifier = Linear::with_zero_bias(
            &s.sub("classifier"),
            channels,
            classes,
            torch_default(channels),
        );
        Self {
            stack: s.stack(),
            conv0,
            blocks,
            norm_final,
            classifier,
        }
    }
}

/// `[a, b]` joined along the channels; in a stacked model each copy's channels are joined
/// with its own, so that the copies stay contiguous groups.
fn cat_channels(a: &Tensor, b: &Tensor, stack: i64) -> Tensor {
    if stack == 1 {
        return Tensor::cat(&[a, b], 1);
    }
    let grouped = |t: &Tensor| {
        let s = t.size();
        t.view([s[0], stack, s[1] / stack, s[2], s[3]])
    };
    let joined = Tensor::cat(&[grouped(a), grouped(b)], 2);
    let s = joined.size();
    joined.view([s[0], s[1] * s[2], s[3], s[4]])
}

impl Network for DenseNetBc {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let mut x = self.conv0.forward(x);
        for (layers, transition) in &self.blocks {
            for l in layers {
                let y = l.conv1.forward(&relu(&apply_bn(&l.norm1, &x, mode)));
                let y = l.conv2.forward(&relu(&apply_bn(&l.norm2, &y, mode)));
                x = cat_channels(&x, &y, self.stack);
            }
            if let Some(t) = transition {
                x = t
                    .conv
                    .forward(&relu(&apply_bn(&t.norm, &x, mode)))
                    .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None);
            }
        }
        let x = relu(&apply_bn(&self.norm_final, &x, mode));
        self.classifier
            .forward(&x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
    }
}
