//! The stochastic weight average: an equal-weight running mean of parameter snapshots, kept in
//! a model of its own. BN statistics are not averaged; they are recomputed for the averaged
//! weights before the average is evaluated (see `eval::recompute_bn`).

use crate::config::Experiment;
use crate::model::Model;
use crate::model::eval::BnPass;

/// The pass that recomputes the average's BN statistics at optimiser step `step`: the
/// training batch size, `swa.bn_subset` samples (all unless set). Probes repeat it, so that a
/// probe's t = 0 through the average measures what the dashboard shows.
pub fn bn_pass(exp: &Experiment, step: u64) -> BnPass {
    BnPass {
        batch: i64::from(exp.train.batch_size),
        subset: exp.swa.bn_subset,
        key: step,
    }
}

/// A running average of snapshots of a model's parameters.
pub struct SwaAverage {
    pub model: Model,
    /// Number of snapshots averaged so far.
    pub n: u64,
    /// The snapshot count at which BN statistics were last recomputed.
    bn_fresh_at: Option<u64>,
}

impl SwaAverage {
    /// An empty average held in `model` (a model of the same configuration as the iterate).
    pub fn new(model: Model) -> Self {
        Self {
            model,
            n: 0,
            bn_fresh_at: None,
        }
    }

    /// Sets the count of an average whose weights (and, if `bn_fresh`, BN statistics) were
    /// loaded from a checkpoint.
    pub fn restore(&mut self, n: u64, bn_fresh: bool) {
        self.n = n;
        self.bn_fresh_at = bn_fresh.then_some(n);
    }

    /// Adds a snapshot: avg <- avg * n / (n + 1) + w / (n + 1), as in the SWA code.
    pub fn add(&mut self, snapshot: &Model) {
        let n = self.n as f64;
        tch::no_grad(|| {
            let mut avg = self.model.flat().shallow_clone();
            let _ = avg.g_mul_scalar_(n / (n + 1.0));
            let _ = avg.g_add_(&(snapshot.flat() * (1.0 / (n + 1.0))));
        });
        self.n += 1;
    }

    /// True if BN statistics match the current average (or the model has no BN).
    pub fn bn_is_fresh(&self) -> bool {
        !self.model.has_bn() || self.bn_fresh_at == Some(self.n)
    }

    /// Records that BN statistics were just recomputed for the current average.
    pub fn mark_bn_fresh(&mut self) {
        self.bn_fresh_at = Some(self.n);
    }
}
