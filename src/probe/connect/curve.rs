//! A quadratic Bézier curve between two solutions (Garipov et al. 2018): the weights
//! θ(t) = (1 − t)²·A + 2t(1 − t)·C + t²·B, with the bend C trained so that the whole curve has
//! a low loss (t drawn afresh for every batch). Plain: the coefficients, the training
//! schedule and settings, and the measured curve. Trained by `probe::runner::curve`.

use super::Barrier;
use crate::probe::ProbePoint;
use serde::{Deserialize, Serialize};

/// The weights of A, C and B at `t`: (1 − t)², 2t(1 − t), t². They sum to 1, so C at the
/// midpoint of A and B gives the straight line.
pub fn bezier_coefficients(t: f64) -> [f64; 3] {
    [(1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t]
}

/// How the bend is trained: SGD with momentum and weight decay on C alone, the run's own
/// settings unless told others.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurveSettings {
    /// Passes over the training set.
    pub epochs: u32,
    /// The starting learning rate (held for the first half, then as [`CurveSettings::lr_at`]).
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: u32,
}

impl CurveSettings {
    /// The learning rate after `progress` (0..1) of the training: constant for the first
    /// half, linearly down to 1% of it by 90%, then 1% (the schedule of Garipov et al.'s
    /// curve training).
    pub fn lr_at(&self, progress: f64) -> f64 {
        let p = progress.clamp(0.0, 1.0);
        let factor = if p <= 0.5 {
            1.0
        } else if p <= 0.9 {
            1.0 - 0.99 * (p - 0.5) / 0.4
        } else {
            0.01
        };
        self.lr * factor
    }

    /// One line naming the setting that is out of range.
    pub fn validate(&self) -> Result<(), crate::error::Invalid> {
        if !(1..=1000).contains(&self.epochs) {
            return Err(format!("curve epochs {}: expected 1..=1000", self.epochs).into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("curve lr {}: expected a positive number", self.lr).into());
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(format!("curve momentum {}: expected 0 <= m < 1", self.momentum).into());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "curve weight decay {}: expected 0 or more",
                self.weight_decay
            )
            .into());
        }
        if self.batch_size == 0 {
            return Err("curve batch size 0: expected at least 1".into());
        }
        Ok(())
    }
}

/// The trained curve and its points, measured as the line's are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePath {
    pub settings: CurveSettings,
    /// θ(t) at each point's t, BN statistics as the line's.
    pub points: Vec<ProbePoint>,
    pub train_barrier: Option<Barrier>,
    pub test_barrier: Option<Barrier>,
    /// The mean training loss over the last epoch's batches (each at its own random t).
    pub last_epoch_loss: f64,
    /// |C − (A + B)/2| / |B − A|: how far the bend left the straight line.
    pub bend: f64,
    pub steps: u64,
    pub seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coefficients_give_the_ends_and_the_line_through_the_midpoint() {
        assert_eq!(bezier_coefficients(0.0), [1.0, 0.0, 0.0]);
        assert_eq!(bezier_coefficients(1.0), [0.0, 0.0, 1.0]);
        // By hand at t = 0.25: 0.5625, 0.375, 0.0625.
        assert_eq!(bezier_coefficients(0.25), [0.5625, 0.375, 0.0625]);
        // With C = (A + B)/2 the curve is (1 − t)·A + t·B: on scalars A = 2, B = 6.
        for t in [0.1, 0.5, 0.8] {
            let [ka, kc, kb] = bezier_coefficients(t);
            let on_curve = ka * 2.0 + kc * 4.0 + kb * 6.0;
            assert!((on_curve - (2.0 + 4.0 * t)).abs() < 1e-12);
        }
    }

    #[test]
    fn the_learning_rate_holds_then_falls_to_one_percent() {
        let s = CurveSettings {
            epochs: 10,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size: 32,
        };
        assert_eq!(s.lr_at(0.0), 0.1);
        assert_eq!(s.lr_at(0.5), 0.1);
        assert!((s.lr_at(0.7) - 0.1 * (1.0 - 0.99 * 0.5)).abs() < 1e-15);
        assert!((s.lr_at(0.9) - 0.001).abs() < 1e-15);
        assert!((s.lr_at(1.0) - 0.001).abs() < 1e-15);
        assert!(s.validate().is_ok());
        for bad in [
            CurveSettings { epochs: 0, ..s },
            CurveSettings { lr: -1.0, ..s },
            CurveSettings { momentum: 1.0, ..s },
            CurveSettings {
                weight_decay: f64::NAN,
                ..s
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
