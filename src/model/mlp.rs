//! Two-layer perceptron: flatten, linear, [BN], ReLU, linear. PyTorch's default init.

use super::layers::{Linear, MaybeBn, apply_bn, maybe_bn, relu};
use super::params::Scope;
use super::{Mode, Network};
use tch::Tensor;

pub struct Mlp {
    fc1: Linear,
    bn1: MaybeBn,
    fc2: Linear,
}

impl Mlp {
    pub fn new(s: &Scope, in_features: i64, hidden: i64, classes: i64, bn: bool) -> Self {
        Self {
            fc1: Linear::new(&s.sub("fc1"), in_features, hidden),
            bn1: maybe_bn(&s.sub("bn1"), hidden, bn),
            fc2: Linear::new(&s.sub("fc2"), hidden, classes),
        }
    }
}

impl Network for Mlp {
    fn forward(&self, x: &Tensor, mode: Mode) -> Tensor {
        let h = self.fc1.forward(&x.flatten(1, -1));
        self.fc2.forward(&relu(&apply_bn(&self.bn1, &h, mode)))
    }
}
