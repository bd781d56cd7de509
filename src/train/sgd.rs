//! SGD with momentum, dampening 0, optional Nesterov, and L2 weight decay added to the
//! gradient: PyTorch's `torch.optim.SGD`, on the flat parameter vector. Owning the momentum
//! buffer (rather than using tch's opaque optimiser) lets checkpoints save and restore it.

use tch::Tensor;

/// The optimiser and its state.
#[derive(Debug)]
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    buffer: Option<Tensor>,
    /// 1 for parameters that train, 0 for frozen ones (absent: all train).
    trainable: Option<Tensor>,
}

impl Sgd {
    pub fn new(momentum: f64, weight_decay: f64, nesterov: bool) -> Self {
        Self {
            momentum,
            weight_decay,
            nesterov,
            buffer: None,
            trainable: None,
        }
    }

    /// Freezes the parameters where `mask` is 0: they get no update, no weight decay and no
    /// momentum.
    pub fn freeze(&mut self, trainable: Tensor) {
        self.trainable = Some(trainable);
    }

    /// One update of `params` (a flat vector, changed in place) with gradient `grad`.
    pub fn step(&mut self, params: &Tensor, grad: &Tensor, lr: f64) {
        tch::no_grad(|| {
            let mut d = if self.weight_decay != 0.0 {
                grad + params * self.weight_decay
            } else {
                grad.shallow_clone()
            };
            if let Some(mask) = &self.trainable {
                d *= mask;
            }
            if self.momentum != 0.0 {
                let buf = match self.buffer.take() {
                    // PyTorch starts the buffer at the first gradient, not at zero.
                    None => d.copy(),
                    Some(mut buf) => {
                        let _ = buf.g_mul_scalar_(self.momentum).g_add_(&d);
                        buf
                    }
                };
                d = if self.nesterov {
                    d + &buf * self.momentum
                } else {
                    buf.shallow_clone()
                };
                self.buffer = Some(buf);
            }
            let _ = params.shallow_clone().g_sub_(&(d * lr));
        });
    }

    /// The momentum buffer, once the first step has been taken.
    pub fn momentum_buffer(&self) -> Option<&Tensor> {
        self.buffer.as_ref()
    }

    /// Restores a momentum buffer (from a checkpoint).
    pub fn set_momentum_buffer(&mut self, buffer: Option<Tensor>) {
        self.buffer = buffer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn vec(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
    }

    #[test]
    fn steps_follow_pytorch_sgd_with_momentum_and_weight_decay() {
        let w = Tensor::from_slice(&[1.0f32, -2.0]);
        let mut sgd = Sgd::new(0.9, 0.1, false);
        let g1 = Tensor::from_slice(&[0.5f32, 0.5]);
        sgd.step(&w, &g1, 0.1);
        // d = g + wd*w = [0.6, 0.3]; buf = d; w -= 0.1*buf
        let w1 = [1.0 - 0.1 * 0.6, -2.0 - 0.1 * 0.3];
        vec(&w)
            .iter()
            .zip(w1)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-6));
        let g2 = Tensor::from_slice(&[-1.0f32, 0.0]);
        sgd.step(&w, &g2, 0.05);
        // d = g2 + 0.1*w1; buf = 0.9*[0.6, 0.3] + d; w -= 0.05*buf
        let d = [-1.0 + 0.1 * w1[0], 0.1 * w1[1]];
        let buf = [0.9 * 0.6 + d[0], 0.9 * 0.3 + d[1]];
        let w2 = [w1[0] - 0.05 * buf[0], w1[1] - 0.05 * buf[1]];
        vec(&w)
            .iter()
            .zip(w2)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-6, "{a} vs {b}"));
        vec(sgd.momentum_buffer().unwrap())
            .iter()
            .zip(buf)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-6));
    }

    #[test]
    fn frozen_entries_never_move() {
        let w = Tensor::from_slice(&[1.0f32, 2.0]);
        let mut sgd = Sgd::new(0.9, 0.1, false);
        sgd.freeze(Tensor::from_slice(&[0.0f32, 1.0]));
        for _ in 0..3 {
            sgd.step(&w, &Tensor::from_slice(&[5.0f32, 5.0]), 0.1);
        }
        assert_eq!(w.double_value(&[0]), 1.0);
        assert!(w.double_value(&[1]) < 2.0);
    }

    #[test]
    fn nesterov_looks_ahead_along_the_buffer() {
        let w = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let mut sgd = Sgd::new(0.5, 0.0, true);
        sgd.step(&w, &Tensor::from_slice(&[1.0f32]), 1.0);
        // buf = 1; d = g + 0.5*buf = 1.5
        assert!((w.double_value(&[0]) + 1.5).abs() < 1e-6);
        sgd.step(&w, &Tensor::from_slice(&[1.0f32]), 1.0);
        // buf = 0.5 + 1 = 1.5; d = 1 + 0.75
        assert!((w.double_value(&[0]) + 1.5 + 1.75).abs() < 1e-6);
    }
}
