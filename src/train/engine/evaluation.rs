//! Evaluations during training: the SGD iterate and the SWA average (BN recomputed, and
//! optionally with stale statistics), each row written to metrics.jsonl and sent as an event.

use super::Engine;
use super::EngineError;
use crate::data::dataset::Dataset;
use crate::model::Model;
use crate::model::eval::{self, Evaluation};
use crate::protocol::{Event, Iterate, MetricRow, Split};

impl Engine {
    /// Evaluates the SGD iterate and, if it holds snapshots, the SWA average (after
    /// recomputing its BN statistics). False when a loss is not finite: the run diverged
    /// (e.g. its BN statistics did), however finite its training loss.
    pub(super) fn evaluate(&mut self, lr: f64) -> Result<bool, EngineError> {
        let batch = self.eval_batch();
        let mut finite = true;
        for (split, e) in evaluate_splits(&self.sgd, &self.data, batch) {
            finite &= e.loss.is_finite();
            self.record_eval(Iterate::Sgd, split, lr, e, None)?;
        }
        let Some(swa) = self.swa.as_mut().filter(|s| s.n > 0) else {
            return Ok(finite);
        };
        if !swa.bn_is_fresh() {
            let pass = crate::train::swa::bn_pass(&self.exp, self.state.step);
            let samples = pass.subset.unwrap_or(usize::MAX).min(self.data.train.len);
            self.events.send(Event::Phase(Some(format!(
                "recomputing the average's BN statistics over {samples} samples"
            ))));
            eval::recompute_bn(
                &swa.model,
                &self.data,
                pass.batch,
                pass.subset,
                self.exp.seed,
                pass.key,
            );
            self.events.send(Event::Phase(None));
            swa.mark_bn_fresh();
        }
        let n = swa.n;
        let fresh = evaluate_splits(&swa.model, &self.data, batch);
        let stale = (self.exp.swa.stale_bn && self.sgd.has_bn()).then(|| {
            // The averaged weights with the statistics they would have without recomputation:
            // the live iterate's (what AveragedModel does without use_buffers).
            self.scratch.copy_from(&self.sgd);
            tch::no_grad(|| {
                self.scratch.flat().shallow_clone().copy_(swa.model.flat());
            });
            evaluate_splits(&self.scratch, &self.data, batch)
        });
        for (split, e) in fresh {
            finite &= e.loss.is_finite();
            self.record_eval(Iterate::Swa, split, lr, e, Some(n))?;
        }
        // The stale-BN variant is an ablation: its losses may be anything.
        for (split, e) in stale.into_iter().flatten() {
            self.record_eval(Iterate::SwaStale, split, lr, e, Some(n))?;
        }
        Ok(finite)
    }

    fn record_eval(
        &mut self,
        iterate: Iterate,
        split: Split,
        lr: f64,
        e: Evaluation,
        swa_n: Option<u64>,
    ) -> Result<(), EngineError> {
        self.record(iterate, split, lr, e.loss, e.acc, e.samples, swa_n)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &mut self,
        iterate: Iterate,
        split: Split,
        lr: f64,
        loss: f64,
        acc: f64,
        samples: usize,
        swa_n: Option<u64>,
    ) -> Result<(), EngineError> {
        let row = MetricRow {
            epoch: self.state.epoch,
            step: self.state.step,
            iterate,
            split,
            loss,
            acc,
            lr,
            elapsed_s: self.elapsed(),
            samples,
            swa_n,
        };
        self.metrics.append(&row)?;
        self.events.send(Event::Metric(row));
        Ok(())
    }
}

/// Train (the fixed evaluation subset) and test evaluations of `model`.
fn evaluate_splits(model: &Model, data: &Dataset, batch: i64) -> [(Split, Evaluation); 2] {
    [
        (
            Split::Train,
            eval::evaluate(model, data, &data.train_eval, batch),
        ),
        (Split::Test, eval::evaluate(model, data, &data.test, batch)),
    ]
}
