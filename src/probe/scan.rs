//! Evaluating one point of a line: move the scratch model there, set its BN statistics as the
//! probe asks, and measure train and test loss and accuracy. Nothing builds an autograd graph.

use super::{BnMode, ProbePoint};
use crate::data::dataset::{Dataset, DeviceSplit};
use crate::model::eval;
use crate::model::{Mode, Model};
use tch::Tensor;

/// Where the line is and how points are measured.
pub struct Line<'a> {
    pub data: &'a Dataset,
    /// The fixed training and test samples the losses are measured on.
    pub train: &'a DeviceSplit,
    pub test: &'a DeviceSplit,
    pub centre: &'a Tensor,
    pub direction: &'a Tensor,
    /// For interpolation, the far end: points are `lerp(centre, end, t)`, which gives both
    /// ends exactly.
    pub end: Option<&'a Tensor>,
    /// For a Bézier curve from the centre to `end`, its bend: points are
    /// `(1 − t)²·centre + 2t(1 − t)·control + t²·end`.
    pub control: Option<&'a Tensor>,
    pub bn: BnMode,
    /// The BN recomputation at each point (in `Recompute` mode).
    pub bn_pass: eval::BnPass,
    /// Batch size of evaluations (no autograd, so large).
    pub eval_batch: i64,
    pub seed: u64,
}

impl Line<'_> {
    /// The weights at `t`.
    pub fn weights(&self, t: f64) -> Tensor {
        match (self.end, self.control) {
            (Some(end), Some(control)) => {
                let [ka, kc, kb] = super::connect::curve::bezier_coefficients(t);
                self.centre * ka + control * kc + end * kb
            }
            (Some(end), None) => self.centre.lerp(end, t),
            (None, _) => self.centre + self.direction * t,
        }
    }

    /// Sets `model`'s BN statistics as the probe asks; returns the mode to evaluate in.
    fn set_bn(&self, model: &Model) -> Mode {
        match self.bn {
            BnMode::Recompute => {
                // The same batches at every point, so that the curve is smooth in t.
                eval::recompute_bn(
                    model,
                    self.data,
                    self.bn_pass.batch,
                    self.bn_pass.subset,
                    self.seed,
                    self.bn_pass.key,
                );
                Mode::Eval
            }
            BnMode::Frozen => Mode::Eval,
            BnMode::Batch => Mode::BatchStats,
        }
    }

    /// Moves `scratch` to `t` and sets its BN statistics; the mode to measure in.
    fn prepare(&self, scratch: &Model, t: f64) -> Mode {
        tch::no_grad(|| scratch.flat().shallow_clone().copy_(&self.weights(t)));
        self.set_bn(scratch)
    }

    /// Measures the point at `t` on `scratch`, whose BN buffers hold the centre's statistics
    /// (used as they are in `Frozen` mode).
    pub fn evaluate(&self, scratch: &Model, t: f64) -> ProbePoint {
        let mode = self.prepare(scratch, t);
        let train = eval::evaluate_in_mode(scratch, self.data, self.train, self.eval_batch, mode);
        let test = eval::evaluate_in_mode(scratch, self.data, self.test, self.eval_batch, mode);
        ProbePoint::measured(t, &train, &test)
    }

    /// The training half of the point at `t` alone (what the auto range's search reads).
    pub fn evaluate_train(&self, scratch: &Model, t: f64) -> eval::Evaluation {
        let mode = self.prepare(scratch, t);
        eval::evaluate_in_mode(scratch, self.data, self.train, self.eval_batch, mode)
    }

    /// The point at `t` whose training half was measured already (by the search, at the
    /// same t and with the same BN pass): only the test half is measured. The same numbers as
    /// [`Line::evaluate`].
    pub fn evaluate_with_train(
        &self,
        scratch: &Model,
        t: f64,
        train: &eval::Evaluation,
    ) -> ProbePoint {
        let mode = self.prepare(scratch, t);
        let test = eval::evaluate_in_mode(scratch, self.data, self.test, self.eval_batch, mode);
        ProbePoint::measured(t, train, &test)
    }
}

impl Line<'_> {
    /// Measures the points at `ts` at once on `stacked`, a stacked copy of the model with at
    /// least `ts.len()` copies (see `Model::stacked`); `centre` holds the centre's BN
    /// statistics, used as they are in `Frozen` mode. The same numbers as [`Line::evaluate`]
    /// one point at a time.
    pub fn evaluate_points(&self, stacked: &Model, centre: &Model, ts: &[f64]) -> Vec<ProbePoint> {
        let k = stacked.stack() as usize;
        assert!(
            !ts.is_empty() && ts.len() <= k,
            "{} points for {k} copies",
            ts.len()
        );
        // Spare copies repeat the last point; their results are dropped.
        let padded: Vec<f64> = (0..k).map(|i| ts[i.min(ts.len() - 1)]).collect();
        let weights = Tensor::stack(
            &padded.iter().map(|&t| self.weights(t)).collect::<Vec<_>>(),
            0,
        );
        stacked.load_points(&weights, centre);
        let mode = self.set_bn(stacked);
        let train = eval::evaluate_copies(stacked, self.data, self.train, self.eval_batch, mode);
        let test = eval::evaluate_copies(stacked, self.data, self.test, self.eval_batch, mode);
        ts.iter()
            .zip(train.iter().zip(&test))
            .map(|(&t, (train, test))| ProbePoint::measured(t, train, test))
            .collect()
    }
}

/// The order in which to evaluate a grid of `n` points: every 8th point first, then every 4th,
/// and so on, so that the whole shape of the curve appears early and sharpens.
pub fn coarse_to_fine(n: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    let mut stride = 8.min(n.next_power_of_two());
    loop {
        for i in (0..n).step_by(stride) {
            if !seen[i] {
                seen[i] = true;
                order.push(i);
            }
        }
        if stride == 1 {
            break;
        }
        stride /= 2;
    }
    // The last point, if the strides skipped it, belongs to the first pass.
    if let Some(pos) = order.iter().position(|&i| i == n - 1)
        && pos > n / 8 + 1
    {
        order.remove(pos);
        order.insert(n.div_ceil(8).min(order.len()), n - 1);
    }
    order
}

impl ProbePoint {
    /// A point measured on the training and the test samples.
    pub fn measured(t: f64, train: &eval::Evaluation, test: &eval::Evaluation) -> Self {
        Self {
            t,
            train_loss: train.loss,
            train_acc: train.acc,
            test_loss: test.loss,
            test_acc: test.acc,
            train_loss_se: Some(train.loss_se),
            test_loss_se: Some(test.loss_se),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_to_fine_visits_every_point_once_ends_first() {
        for n in [3, 8, 41, 201] {
            let order = coarse_to_fine(n);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "n = {n}");
            let early: Vec<usize> = order[..n.div_ceil(8) + 1].to_vec();
            assert!(
                early.contains(&0) && early.contains(&(n - 1)),
                "n = {n}: {early:?}"
            );
        }
    }
}
