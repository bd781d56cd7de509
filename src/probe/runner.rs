//! Running probes: choose the centre, build the direction, walk the grid on a scratch copy of
//! the weights, score the curves, and store the result. The live models are only read.

pub mod plane;

use super::direction::{self, Direction};
use super::scan::{self, Line};
use super::summary::{BatchSummary, compare, summarise};
use super::{
    BnMode, CentreKind, DirectionInfo, DirectionKind, ParamGroup, ProbeCentre, ProbeCost,
    ProbePoint, ProbeResult, ProbeSamples, ProbeSpec, hessian, range, score, shift, store,
};
use crate::data::dataset::{Dataset, DeviceSplit};
use crate::model::eval;
use crate::model::{Mode, Model};
use crate::rundir::RunDir;
use std::time::Instant;
use tch::Reduction;

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
pub(crate) fn points_per_pass(point_batch: Option<usize>, centre: &Model, points: usize) -> usize {
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

/// Runs one probe, stores it in `run` (if given) and returns it.
pub fn run_one(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    run: Option<&RunDir>,
    observer: &mut dyn Observer,
) -> Result<ProbeResult, ProbeError> {
    let mut spec = spec.resolved(ctx.seed, ctx.on_gpu());
    spec.validate().map_err(ProbeError::Invalid)?;
    check_group(ctx.sgd, spec.params)?;
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
        crate::error::catch_panic(|| probe(ctx, &spec, centre, other, label, id, observer))
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
fn chance_loss(classes: usize) -> f64 {
    (classes.max(2) as f64).ln()
}

/// Points measured side by side in one forward pass when the spec does not say. On a CPU
/// grouped convolutions are slower than the same work one point at a time (`make bench`:
/// 4 points per pass took 1.5x as long per point on 2 cores, 16 took 2.3x), so a CPU measures them one by
/// one; a GPU, which one small model leaves mostly idle, takes 16 at once.
pub fn default_point_batch(cuda: bool) -> usize {
    if cuda { 16 } else { 1 }
}

fn probe(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    centre: &Model,
    other: Option<&Model>,
    label: &str,
    id: String,
    observer: &mut dyn Observer,
) -> Result<ProbeResult, ProbeError> {
    let started = Instant::now();
    let samples = PointSamples::new(
        ctx,
        (spec.train_subset, spec.test_subset, spec.bn_subset),
        spec.bn,
        centre,
    );
    ctx.scratch.copy_from(centre);
    let (dir, eigen) = draw_direction(ctx, spec, centre, other, &samples.train);
    let end = other.map(|o| o.flat());
    let line = Line {
        data: ctx.data,
        train: &samples.train,
        test: &samples.test,
        centre: centre.flat(),
        direction: &dir.vector,
        // Interpolation over a parameter subset keeps the other parameters at the centre.
        end: end.filter(|_| spec.params == ParamGroup::All),
        bn: spec.bn,
        bn_pass: samples.bn_pass,
        eval_batch: ctx.eval_batch,
        seed: ctx.seed,
    };
    let mut forward_timings = first_forward_timings(ctx, &samples);
    let estimate = samples.expected_point_seconds(
        forward_timings
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min),
        spec.bn,
    );
    let mut spec = spec.clone();
    // Training halves of points the auto range's search measured, by t: the grid over
    // [-T, T] reuses the centre's and both ends'.
    let mut searched: std::collections::HashMap<u64, eval::Evaluation> = Default::default();
    let auto_range = match spec.auto_range {
        Some(fraction) => {
            let found = search_range(ctx, &line, fraction, estimate, &id, &mut searched, observer)?;
            (spec.from, spec.to) = (Some(-found.half_range), Some(found.half_range));
            Some(found)
        }
        None => None,
    };
    let spec = &spec;
    let grid = spec.grid();
    observer.started(&id, spec, &grid, estimate);
    let points_started = Instant::now();
    let points = measure_grid(ctx, spec, centre, &line, &grid, &searched, &id, observer)?;
    let seconds_per_point = points_started.elapsed().as_secs_f64() / points.len() as f64;
    forward_timings.push(samples.time_forward(ctx));
    forward_timings.sort_by(f64::total_cmp);
    let measured = Measured {
        points,
        direction: DirectionInfo {
            norm: dir.norm,
            centre_norm: dir.centre_norm,
            sign_consistency: dir.sign_consistency,
            eigenvalue: eigen.map(|e| e.0),
            hessian_iterations: eigen.map(|e| e.1),
        },
        samples: ProbeSamples {
            train: samples.train.len,
            test: samples.test.len,
            bn: samples.bn_samples.as_ref().map(|s| s.len),
        },
        auto_range,
        cost: ProbeCost {
            seconds: started.elapsed().as_secs_f64(),
            seconds_per_point,
            forward_seconds: forward_timings[1],
            ratio_to_forward: seconds_per_point / forward_timings[1].max(1e-9),
        },
    };
    Ok(assemble(ctx, spec, label, id, measured))
}

/// The direction of a probe at `centre`: towards `other` for an interpolation, the top
/// Hessian eigenvector (with its eigenvalue and iterations) on the first training samples, or
/// a seeded random one.
fn draw_direction(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    centre: &Model,
    other: Option<&Model>,
    train: &DeviceSplit,
) -> (Direction, Option<(f64, usize)>) {
    let mask = direction::group_mask(centre, spec.params);
    match (spec.direction, other) {
        (DirectionKind::Interp, Some(other)) => {
            (direction::towards(centre, other, spec.params), None)
        }
        (DirectionKind::Hessian, _) => {
            let n = spec.hessian_batch.unwrap_or(512).min(train.len) as i64;
            let (x, y) = ctx.data.eval_batch(train, 0, n);
            // Differentiated twice: the layer-by-layer pass (the fast one's blocked layout has
            // no backward).
            let mode = if spec.bn == BnMode::Batch {
                Mode::BatchStats
            } else {
                Mode::PlainEval
            };
            let logits = ctx.scratch.forward(&x, mode);
            let (loss, _) = ctx
                .scratch
                .objective()
                .loss_and_correct(&logits, &y, Reduction::Mean);
            let pair = hessian::top_eigenpair(
                &loss,
                ctx.scratch.param_handles(),
                &mask,
                spec.hessian_iterations.unwrap_or(20),
                1e-3,
                spec.seed.unwrap_or(ctx.seed),
            );
            let eigen = Some((pair.value, pair.iterations));
            (
                direction::describe(pair.vector, centre.flat(), &mask),
                eigen,
            )
        }
        (kind, _) => (
            direction::random(
                kind,
                spec.norm,
                spec.bias_bn,
                spec.params,
                spec.seed.unwrap_or(ctx.seed),
                centre,
            ),
            None,
        ),
    }
}

/// The lower bound a point is measured against (`PointSamples::time_forward`). One batch
/// first, so that one-off set-up costs do not count; timed twice now (and once more after the
/// points, under the same load as they, by the caller, who keeps the median).
fn first_forward_timings(ctx: &ProbeContext, samples: &PointSamples) -> Vec<f64> {
    let warm_up = ctx.eval_batch.min(samples.test.len as i64);
    if warm_up > 0 {
        let (x, _) = ctx.data.eval_batch(&samples.test, 0, warm_up);
        let _ = tch::no_grad(|| ctx.scratch.forward(&x, Mode::Eval));
    }
    vec![samples.time_forward(ctx), samples.time_forward(ctx)]
}

/// The auto range's search for T, keeping the training halves of the points it measured.
fn search_range(
    ctx: &ProbeContext,
    line: &Line,
    fraction: f64,
    estimate: f64,
    id: &str,
    searched: &mut std::collections::HashMap<u64, eval::Evaluation>,
    observer: &mut dyn Observer,
) -> Result<range::AutoRange, ProbeError> {
    if observer.cancelled() {
        return Err(ProbeError::Cancelled);
    }
    observer.note(
        id,
        &format!(
            "auto range: searching T, at most {} training-loss points (~{:.2} s each, at most {})",
            range::max_evaluations(),
            estimate,
            crate::format::clock(estimate * range::max_evaluations() as f64)
        ),
    );
    Ok(range::find(fraction, chance_loss(ctx.data.classes), |t| {
        let train = line.evaluate_train(ctx.scratch, t);
        searched.insert(t.to_bits(), train);
        train.loss
    }))
}

/// Every point of `grid` along `line`: those the range search half-measured first, then the
/// rest coarse to fine, several at a time on a stacked copy when the model allows it.
#[allow(clippy::too_many_arguments)]
fn measure_grid(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    centre: &Model,
    line: &Line,
    grid: &[f64],
    searched: &std::collections::HashMap<u64, eval::Evaluation>,
    id: &str,
    observer: &mut dyn Observer,
) -> Result<Vec<ProbePoint>, ProbeError> {
    let mut points: Vec<Option<ProbePoint>> = vec![None; grid.len()];
    let (shared, order): (Vec<usize>, Vec<usize>) = scan::coarse_to_fine(grid.len())
        .into_iter()
        .partition(|&i| searched.contains_key(&grid[i].to_bits()));
    for index in shared {
        if observer.cancelled() {
            return Err(ProbeError::Cancelled);
        }
        let t = grid[index];
        let point = line.evaluate_with_train(ctx.scratch, t, &searched[&t.to_bits()]);
        observer.point(id, index, &point);
        points[index] = Some(point);
    }
    let (k, stacked) = stacked_copy(spec.point_batch, centre, grid.len())?;
    if spec.point_batch.is_some_and(|n| n > 1) && !centre.can_stack() {
        observer.note(
            id,
            &format!(
                "point_batch {}: a TorchScript model is evaluated one point per pass",
                spec.point_batch.unwrap_or(1)
            ),
        );
    }
    for chunk in order.chunks(k) {
        if observer.cancelled() {
            return Err(ProbeError::Cancelled);
        }
        let ts: Vec<f64> = chunk.iter().map(|&i| grid[i]).collect();
        let measured = match &stacked {
            Some(stacked) => line.evaluate_points(stacked, centre, &ts),
            None => vec![line.evaluate(ctx.scratch, ts[0])],
        };
        for (&index, point) in chunk.iter().zip(measured) {
            observer.point(id, index, &point);
            points[index] = Some(point);
        }
    }
    Ok(points.into_iter().flatten().collect())
}

/// What a probe measured, before it is scored.
struct Measured {
    points: Vec<ProbePoint>,
    direction: DirectionInfo,
    samples: ProbeSamples,
    auto_range: Option<range::AutoRange>,
    cost: ProbeCost,
}

/// The probe's result: its points scored (train and test, with their standard errors) and
/// checked against a random shift.
fn assemble(
    ctx: &ProbeContext,
    spec: &ProbeSpec,
    label: &str,
    id: String,
    measured: Measured,
) -> ProbeResult {
    let points = measured.points;
    let ts: Vec<f64> = points.iter().map(|p| p.t).collect();
    let train_loss: Vec<f64> = points.iter().map(|p| p.train_loss).collect();
    let test_loss: Vec<f64> = points.iter().map(|p| p.test_loss).collect();
    let ses = |f: fn(&ProbePoint) -> Option<f64>| -> Vec<f64> {
        points.iter().map(|p| f(p).unwrap_or(f64::NAN)).collect()
    };
    let (train_se, test_se) = (ses(|p| p.train_loss_se), ses(|p| p.test_loss_se));
    let scoring = score::Scoring::new(
        spec.threshold.unwrap_or(3.0),
        spec.min_rise.unwrap_or(score::DEFAULT_MIN_RISE),
    );
    let span = ts.last().copied().unwrap_or(0.0) - ts.first().copied().unwrap_or(0.0);
    ProbeResult {
        id,
        spec: spec.clone(),
        centre: ProbeCentre {
            iterate: match label {
                "swa-sgd" => "swa→sgd".into(),
                other => other.into(),
            },
            epoch: ctx.epoch,
            step: ctx.step,
            swa_n: ctx.swa_n,
            source: ctx.source.clone(),
        },
        direction: measured.direction,
        train_score: score::score(&ts, &train_loss, &train_se, scoring),
        test_score: score::score(&ts, &test_loss, &test_se, scoring),
        samples: Some(measured.samples),
        auto_range: measured.auto_range,
        shift: shift::random_shift(&ts, &train_loss, &test_loss, span / 8.0, 40),
        points,
        cost: measured.cost,
        created: jiff::Zoned::now().to_string(),
    }
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
    Model(String),
    #[error(transparent)]
    Store(#[from] crate::rundir::RunDirError),
}
