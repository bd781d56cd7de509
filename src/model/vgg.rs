//! VGG-16 as in the SWA code (`models/vgg.py`): 13 convolutions with optional BN, 5 max pools,
//! and a Dropout-512-ReLU-Dropout-512-ReLU-linear classifier. Convolutions start from
//! N(0, sqrt(2 / (k * k * out))) with zero biases. Needs 32x32 inputs (1x1 after the pools).

use super::layers::{BatchNorm, Conv2d, ConvSpec, Linear, he_fan_out, relu, torch_default};
use super::params::Scope;
use super::{Mode, Network};
use std::rc::Rc;
use tch::Tensor;

const CFG16: [i64; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

enum Layer {
    Conv(Conv2d, Option<Rc<BatchNorm>>),
    Pool,
}

pub struct Vgg16 {
    features: Vec<Layer>,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Vgg16 {
    pub fn new(s: &Scope, in_channels: i64, classes: i64, bn: bool) -> Self {
        let f = s.sub("features");
        let mut index = 0;
        let mut channels = in_channels;
        let mut features = Vec::new();
        for v in CFG16 {
            if v == 0 {
                features.push(Layer::Pool);
                index += 1;
                continue;
            }
            let conv = Conv2d::with_zero_bias(
                &f.sub(index),
                ConvSpec::k3(channels, v, 1),
                he_fan_out(3, v),
            );
            let norm = bn.then(|| BatchNorm::new(&f.sub(index + 1), v));
            // Sequential indices: conv, [bn], relu.
            index += if bn { 3 } else { 2 };
            features.push(Layer::Conv(conv, norm));
            channels = v;
        }
        let c = s.sub("classifier");
        let fc = |i: i64, out: i64| Linear::with_init(&c.sub(i), 512, out, torch_default(512));
        Self {
            features,
            fc1: fc(1, 512),
            fc2: fc(4, 512),
            fc3: fc(6, classes),
        }
    }
}

impl Network for Vgg16 {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let mut x = x.shallow_clone();
        for layer in &self.features {
            x = match layer {
                Layer::Conv(conv, bn) => conv.forward_bn_relu(bn, &x, mode),
                Layer::Pool => x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
            };
        }
        let train = mode == Mode::Train;
        let x = x.flatten(1, -1).dropout(0.5, train);
        let x = relu(&self.fc1.forward(&x)).dropout(0.5, train);
        let x = relu(&self.fc2.forward(&x));
        self.fc3.forward(&x)
    }

    fn runs_fused(&self) -> bool {
        true
    }
}
