//! Learning-rate schedules as pure functions of the 0-indexed epoch.

use crate::config::{Experiment, Schedule};

/// A resolved schedule: everything needed to compute the learning rate of any epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    kind: Schedule,
    lr: f64,
    epochs: u32,
    /// SWA start epoch and SWA learning rate, when averaging is on.
    swa: Option<(u32, f64)>,
}

impl LrSchedule {
    /// The schedule an experiment describes.
    pub fn from_experiment(e: &Experiment) -> Self {
        let swa = e.swa.enabled.then(|| {
            (
                e.swa.start_epoch.unwrap_or(e.train.epochs),
                e.swa.lr.unwrap_or(e.train.lr / 2.0),
            )
        });
        Self {
            kind: e.train.schedule.clone(),
            lr: e.train.lr,
            epochs: e.train.epochs,
            swa,
        }
    }

    /// The learning rate for the 0-indexed `epoch`.
    pub fn lr_at(&self, epoch: u32) -> f64 {
        let e = f64::from(epoch);
        match &self.kind {
            Schedule::Swa {} => {
                // The SWA papers' schedule (timgaripov/swa `schedule`): constant for the first
                // half of the run up to swa_start, linear decay until 90%, then constant.
                let (t, ratio) = match self.swa {
                    Some((start, swa_lr)) => (e / f64::from(start), swa_lr / self.lr),
                    None => (e / f64::from(self.epochs), 0.01),
                };
                let factor = if t <= 0.5 {
                    1.0
                } else if t <= 0.9 {
                    1.0 - (1.0 - ratio) * (t - 0.5) / 0.4
                } else {
                    ratio
                };
                self.lr * factor
            }
            Schedule::Step { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| epoch >= m).count();
                self.lr * gamma.powi(passed as i32)
            }
            Schedule::Cosine { min_lr } => {
                let progress = e / f64::from(self.epochs);
                min_lr + (self.lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
            }
            Schedule::Constant {} => self.lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: Schedule, swa: Option<(u32, f64)>) -> LrSchedule {
        LrSchedule {
            kind,
            lr: 0.1,
            epochs: 225,
            swa,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn the_paper_preset_holds_then_decays_then_settles() {
        // PreResNet-164: lr 0.1, swa_start 126, swa_lr 0.05 (paper.md E4).
        let s = schedule(Schedule::Swa {}, Some((126, 0.05)));
        assert!(close(s.lr_at(0), 0.1));
        assert!(close(s.lr_at(63), 0.1), "t = 0.5 is still the first phase");
        let e64 = 0.1 * (1.0 - 0.5 * (64.0 / 126.0 - 0.5) / 0.4);
        assert!(close(s.lr_at(64), e64));
        let e113 = 0.1 * (1.0 - 0.5 * (113.0 / 126.0 - 0.5) / 0.4);
        assert!(close(s.lr_at(113), e113) && s.lr_at(113) > 0.05);
        assert!(close(s.lr_at(114), 0.05), "t > 0.9 is swa_lr");
        assert!(close(s.lr_at(224), 0.05));
    }

    #[test]
    fn without_swa_the_schedule_ends_at_one_percent() {
        let s = schedule(Schedule::Swa {}, None);
        assert!(close(s.lr_at(112), 0.1)); // t = 0.4978
        assert!(close(s.lr_at(224), 0.001)); // t = 0.9956
    }

    #[test]
    fn step_cosine_and_constant_schedules() {
        let s = schedule(
            Schedule::Step {
                milestones: vec![100, 150],
                gamma: 0.1,
            },
            None,
        );
        assert!(close(s.lr_at(99), 0.1));
        assert!(close(s.lr_at(100), 0.1 * 0.1));
        assert!(close(s.lr_at(150), 0.1 * 0.01));
        let c = schedule(Schedule::Cosine { min_lr: 0.0 }, None);
        assert!(close(c.lr_at(0), 0.1));
        assert!(close(
            c.lr_at(112),
            0.1 * (1.0 + (std::f64::consts::PI * 112.0 / 225.0).cos()) / 2.0
        ));
        assert!(schedule(Schedule::Constant {}, None).lr_at(200) == 0.1);
    }
}
