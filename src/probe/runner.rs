//! Running probes: choose the centre, build the direction, walk the grid on a scratch copy of
//! the weights, score the curves, and store the result. The live models are only read.

pub mod connect;
pub mod curve;
mod eigen;
mod line;
pub mod plane;

use super::summary::{BatchSummary, compare, summarise};
use super::{
    BnMode, CentreKind, DirectionKind, ParamGroup, ProbePoint, ProbeResult, ProbeSpec, store,
};
use crate::data::dataset::{Dataset, DeviceSplit};
use crate::model::Model;
use crate::model::eval;
use crate::rundir::RunDir;
use std::time::Instant;

/// The weights and data a probe reads, and where the weights came from.
pub struct ProbeContext<'a> {
    pub data: &'a Dataset,
    pub sgd: &'a Model,
    /// The SWA average, when it holds at least one snapshot.
    pub swa: Option<&'a Model>,
    /// A model of the same configuration to move along the line.
    pub scratch: &'a Model,
    /// The experiment's seed (the default direction seed).
    pub seed: u64,
    pub eval_batch: i64,
    /// The run's own recomputation of the average's BN statistics, which probes repeat
    /// unless told another subset.
    pub bn_pass: eval::BnPass,
    pub epoch: u32,
    pub step: u64,
    pub swa_n: u64,
    /// "live" or a checkpoint path.
    pub source: String,
}

impl ProbeContext<'_> {
    /// True when the points are measured on a GPU (whose defaults differ: more points).
    pub fn on_gpu(&self) -> bool {
        self.scratch.flat().device().is_cuda()
    }
}

/// What each point of a probe (or a plane) reads: the samples its losses are measured on,
/// the pass that recomputes its BN statistics, and that pass's samples when it runs.
pub(crate) struct PointSamples {
    pub train: DeviceSplit,
    pub test: DeviceSplit,
    pub bn_pass: eval::BnPass,
    pub bn_samples: Option<DeviceSplit>,
}

impl PointSamples {
    /// The subsets asked for, or by default the run's own evaluation subset (so that the
    /// centre matches the dashboard), the whole test set and the run's own BN pass.
    pub(crate) fn new(
        ctx: &ProbeContext,
        (train_subset, test_subset, bn_subset): (Option<usize>, Option<usize>, Option<usize>),
        bn: BnMode,
        centre: &Model,
    ) -> Self {
        let train = match train_subset {
            Some(n) => ctx.data.train_subset(n, ctx.seed),
            None => ctx.data.train_eval.shallow_clone(),
        };
        let test = ctx
            .data
            .test_subset(test_subset.unwrap_or(usize::MAX), ctx.seed);
        let bn_pass = eval::BnPass {
            subset: bn_subset.or(ctx.bn_pass.subset),
            ..ctx.bn_pass
        };
        let bn_samples = (bn == BnMode::Recompute && centre.has_bn()).then(|| {
            ctx.data
                .train_subset(bn_pass.subset.unwrap_or(usize::MAX), ctx.seed)
        });
        Self {
            train,
            test,
            bn_pass,
            bn_samples,
        }
    }

    /// A point's expected seconds from `forward_seconds`, one eval-mode pass over all its
    /// samples ([`PointSamples::time_forward`]). As measured on two CPU cores, train-mode batch
    /// norm costs about 1.5 times eval: the BN pass's share of the samples (in proportion to
    /// their count), or the whole point with per-batch statistics; the rest about 1.05.
    pub(crate) fn expected_point_seconds(&self, forward_seconds: f64, bn: BnMode) -> f64 {
        let (eval_cost, train_cost) = (1.05, 1.5);
        let bn_samples = self.bn_samples.as_ref().map_or(0, |s| s.len) as f64;
        let all = (self.train.len + self.test.len) as f64 + bn_samples;
        let bn_share = if all > 0.0 { bn_samples / all } else { 0.0 };
        match bn {
            BnMode::Frozen => forward_seconds * eval_cost,
            BnMode::Batch => forward_seconds * train_cost,
            BnMode::Recompute => {
                forward_seconds * ((1.0 - bn_share) * eval_cost + bn_share * train_cost)
            }
        }
    }

    /// Seconds of one plain forward pass over every sample a point reads (the BN pass's
    /// too): the lower bound a point is measured against.
    pub(crate) fn time_forward(&self, ctx: &ProbeContext) -> f64 {
        let started = Instant::now();
        for split in [
            Some(&self.train),
            Some(&self.test),
            self.bn_samples.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = eval::evaluate(ctx.scratch, ctx.data, split, ctx.eval_batch);
        }
        started.elapsed().as_secs_f64()
    }
}

/// How many of `points` points to measure in one pass on a stacked copy of `centre`: the
/// asked-for `point_batch`, else the device's default; 1 for a model whose copies cannot be
/// stacked (a TorchScript module).
fn points_per_pass(point_batch: Option<usize>, centre: &Model, points: usize) -> usize {
    if !centre.can_stack() {
        return 1;
    }
    point_batch
        .unwrap_or_else(|| default_point_batch(centre.flat().device().is_cuda()))
        .min(points)
        .max(1)
}

/// The stacked copy of `centre` that measures `points_per_pass` points at once (None for one
/// point per pass), and that number: what probes and planes share to measure several points
/// of a line in one forward pass.
pub(crate) fn stacked_copy(
    point_batch: Option<usize>,
    centre: &Model,
    points: usize,
) -> Result<(usize, Option<Model>), ProbeError> {
    match points_per_pass(point_batch, centre, points) {
        1 => Ok((1, None)),
        k => centre
            .stacked(k as i64)
            .map(|stacked| (k, Some(stacked)))
            .map_err(|e| ProbeError::Invalid(e.to_string())),
    }
}

/// Follows a probe as it runs and may cancel it.
pub trait Observer {
    /// A probe's grid is about to be measured; each point is expected to take about
    /// `seconds_per_point` (from one forward pass over the samples a point reads).
    fn started(&mut self, id: &str, spec: &ProbeSpec, grid: &[f64], seconds_per_point: f64);
    /// Something worth saying before a long step: the auto range's search and its bound, a
    /// batch's progress (`id` is then "batch").
    fn note(&mut self, _id: &str, _text: &str) {}
    fn point(&mut self, id: &str, index: usize, point: &ProbePoint);
    /// A probe finished (and was stored, when it has a run): each of a batch or an ablation
    /// as well as a single one.
    fn finished(&mut self, _result: &ProbeResult) {}
    /// Asked between points; true stops the probe.
    fn cancelled(&mut self) -> bool;
}

/// Refuses to move `model` along a parameter group it does not have: a BN-only direction of
/// a model without batch norm (zoo or TorchScript) is zero, and its probe would read as a
/// flat valley. The one rule for probes, planes and ablation arms.
pub fn check_group(model: &Model, group: ParamGroup) -> Result<(), ProbeError> {
    if crate::probe::direction::group_size(model, group) > 0 {
        return Ok(());
    }
    Err(ProbeError::Invalid(match group {
        ParamGroup::Bn => "params bn: the model has no batch norm (no BN scale or shift to move); expected params all or non-bn, or a run with BN".into(),
        other => format!(
            "params {}: the model has no such parameter; expected another parameter group",
            other.as_str()
        ),
    }))
}

/// Refuses a Hessian eigenvector deeper than the group has dimensions (or than valleys goes).
pub fn check_eigenvector(model: &Model, group: ParamGroup, k: usize) -> Result<(), ProbeError> {
    let size = crate::probe::direction::group_size(model, group);
    if k as i64 > size {
        return Err(ProbeError::Invalid(format!(
            "eigenvector {k}: params {} has {size} parameters, so at most {size} eigenvectors",
            group.as_str()
        )));
    }
    Ok(())
}

/// Runs one probe, stores it in `run` (if given) and returns it.
pub fn run_one(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    run: Option<&RunDir>,
    observer: &mut dyn Observer,
) -> Result<ProbeResult, ProbeError> {
    let mut spec = spec.resolved(ctx.seed, ctx.on_gpu());
    spec.validate().map_err(|e| ProbeError::Invalid(e.0))?;
    check_group(ctx.sgd, spec.params)?;
    if spec.direction == DirectionKind::Hessian {
        check_eigenvector(ctx.sgd, spec.params, spec.eigenvector.unwrap_or(1))?;
    }
    if let Some(run) = run {
        crate::rundir::check_writable(&store::dir(run))?;
    }
    let (centre, other, label) = choose_centre(ctx, &spec)?;
    if label == "sgd" {
        // Before averaging starts the SWA centre falls back to the SGD iterate; say so.
        spec.centre = CentreKind::Sgd;
    }
    let id = match run {
        Some(run) => store::next_id(run, &spec, label),
        None => format!("{}-{label}", spec.direction.as_str()),
    };
    // The model may fail (a TorchScript module that raises, an operation libtorch refuses):
    // a probe that cannot be measured is an error of its own, not a crash.
    let result =
        crate::error::catch_panic(|| line::probe(ctx, &spec, centre, other, label, id, observer))
            .map_err(ProbeError::Model)??;
    if let Some(run) = run {
        store::write(run, &result)?;
    }
    observer.finished(&result);
    Ok(result)
}

fn choose_centre<'a>(
    ctx: &ProbeContext<'a>,
    spec: &ProbeSpec,
) -> Result<(&'a Model, Option<&'a Model>, &'static str), ProbeError> {
    let (centre, other, label) = match (spec.direction, spec.centre, ctx.swa) {
        (DirectionKind::Interp, _, Some(swa)) => (swa, Some(ctx.sgd), "swa-sgd"),
        (DirectionKind::Interp, _, None) => {
            return Err(ProbeError::Invalid(
                "interp runs from the SWA average to the SGD iterate, and the average holds no snapshot yet".into(),
            ));
        }
        (_, CentreKind::Swa, Some(swa)) => (swa, None, "swa"),
        // Before averaging starts the only point there is is the SGD iterate.
        (_, CentreKind::Swa | CentreKind::Sgd, _) => (ctx.sgd, None, "sgd"),
    };
    for model in std::iter::once(centre).chain(other) {
        if !model.is_finite() {
            return Err(ProbeError::Invalid(
                "the weights are not finite (the run diverged); probes need finite weights".into(),
            ));
        }
    }
    Ok((centre, other, label))
}

/// The loss of a model that knows nothing: ln(classes) for cross-entropy, ln 2 for the
/// single-logit objective.
pub(super) fn chance_loss(classes: usize) -> f64 {
    (classes.max(2) as f64).ln()
}

/// Points measured side by side in one forward pass when the spec does not say. On a CPU
/// grouped convolutions are slower than the same work one point at a time (`make bench`:
/// 4 points per pass took 1.5x as long per point on 2 cores, 16 took 2.3x), so a CPU measures them one by
/// one; a GPU, which one small model leaves mostly idle, takes 16 at once.
pub fn default_point_batch(cuda: bool) -> usize {
    if cuda { 16 } else { 1 }
}

/// Runs `directions` random directions (seeds seed, seed + 1, ...) through each centre and
/// stores every probe and the summary.
pub fn run_batch(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    directions: usize,
    run: Option<&RunDir>,
    observer: &mut dyn Observer,
) -> Result<BatchSummary, ProbeError> {
    let base = spec.resolved(ctx.seed, ctx.on_gpu());
    check_group(ctx.sgd, base.params)?;
    if let Some(run) = run {
        crate::rundir::check_writable(&store::dir(run))?;
    }
    if !base.direction.is_random() {
        return Err(ProbeError::Invalid(format!(
            "--directions draws random directions; {} is not random",
            base.direction.as_str()
        )));
    }
    let first_seed = base.seed.unwrap_or(ctx.seed);
    let mut centres = vec![CentreKind::Sgd];
    if ctx.swa.is_some() {
        centres.push(CentreKind::Swa);
    }
    let mut stats = Vec::new();
    let mut sets = Vec::new();
    let (total, started) = (directions * centres.len(), Instant::now());
    for (c, centre) in centres.into_iter().enumerate() {
        let mut results = Vec::new();
        for k in 0..directions as u64 {
            let done = c * directions + k as usize;
            let elapsed = started.elapsed().as_secs_f64();
            observer.note(
                "batch",
                &format!(
                    "probe {}/{total} · {}",
                    done + 1,
                    crate::format::elapsed_and_left(elapsed, done, total)
                ),
            );
            let sub = ProbeSpec {
                centre,
                seed: Some(first_seed + k),
                ..base.clone()
            };
            results.push(run_one(ctx, &sub, run, observer)?);
        }
        let label = match centre {
            CentreKind::Sgd => "sgd",
            CentreKind::Swa => "swa",
        };
        stats.push(summarise(label, &results));
        sets.push((label, results));
    }
    let comparisons = match sets.as_slice() {
        [(sgd, sgd_results), (swa, swa_results)] => {
            vec![compare((swa, swa_results), (sgd, sgd_results), "")]
        }
        _ => Vec::new(),
    };
    let id = match run {
        Some(run) => {
            let n = store::next_id(run, &base, "batch");
            n.replacen(
                base.direction.as_str(),
                &format!("{}x{directions}", base.direction.as_str()),
                1,
            )
        }
        None => format!("batch-{directions}"),
    };
    let summary = BatchSummary {
        id,
        batch: true,
        threshold: base.threshold.unwrap_or(3.0),
        spec: base,
        directions,
        centres: stats,
        comparisons,
    };
    if let Some(run) = run {
        let value = serde_json::to_value(&summary).expect("summaries serialise");
        store::write_json(run, &summary.id, &value)?;
    }
    Ok(summary)
}

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Invalid(String),
    #[error("the probe was cancelled")]
    Cancelled,
    #[error("the model failed: {0}")]
    Model(crate::error::Panic),
    #[error(transparent)]
    Store(#[from] crate::rundir::RunDirError),
}
