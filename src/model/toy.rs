//! The paper's 2-parameter toy (E1): one Linear(1, 1) neuron. The sigmoid is part of the
//! loss (binary cross-entropy on the logit), which is numerically safer and equivalent.

use super::layers::Linear;
use super::params::Scope;
use super::{Mode, Network};
use tch::Tensor;

pub struct Toy {
    linear: Linear,
}

impl Toy {
    pub fn new(s: &Scope) -> Self {
        Self {
            linear: Linear::new(&s.sub("linear"), 1, 1),
        }
    }
}

impl Network for Toy {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        self.linear.forward(x)
    }
}
