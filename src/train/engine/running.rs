//! The running training loss of an epoch, kept on the device so that a step never waits
//! for it.

use tch::{Device, Kind, Tensor};

/// Training-mode loss and accuracy accumulated over an epoch, on the device.
pub(super) struct Running {
    pub loss_sum: Tensor,
    pub correct: Tensor,
    pub seen: u64,
}

impl Running {
    pub fn new(device: Device, loss_sum: f64, correct: f64, seen: u64) -> Self {
        Self {
            loss_sum: Tensor::from(loss_sum)
                .to_kind(Kind::Double)
                .to_device(device),
            correct: Tensor::from(correct)
                .to_kind(Kind::Double)
                .to_device(device),
            seen,
        }
    }

    /// (mean loss, accuracy, loss sum, correct); synchronises with the device.
    pub fn read(&self) -> (f64, f64, f64, f64) {
        let loss_sum = self.loss_sum.double_value(&[]);
        let correct = self.correct.double_value(&[]);
        let n = self.seen.max(1) as f64;
        (loss_sum / n, correct / n, loss_sum, correct)
    }
}
