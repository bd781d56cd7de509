//! One probe measured: its direction drawn at the centre, one forward pass timed as the
//! yardstick of a point's cost, the auto range searched, the grid's points measured coarse to
//! fine (several at a time on a stacked copy when the model allows), and the result scored.

use super::{Observer, PointSamples, ProbeContext, ProbeError, chance_loss, stacked_copy};
use crate::data::dataset::DeviceSplit;
use crate::model::eval;
use crate::model::{Mode, Model};
use crate::probe::direction::{self, Direction};
use crate::probe::scan::{self, Line};
use crate::probe::{
    DirectionInfo, DirectionKind, ParamGroup, ProbeCentre, ProbeCost, ProbePoint, ProbeResult,
    ProbeSamples, ProbeSpec, range, score, shift,
};
use std::time::Instant;

pub(super) fn probe(
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
        control: None,
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
            let k = spec.eigenvector.unwrap_or(1);
            let request = super::eigen::EigenRequest {
                data: ctx.data,
                train,
                samples: spec.hessian_batch.unwrap_or(512),
                bn: spec.bn,
                mask: &mask,
                seed: spec.seed.unwrap_or(ctx.seed),
                steps: spec.hessian_iterations.unwrap_or(20),
            };
            let pairs = super::eigen::top(ctx.scratch, &request, k);
            let vector = pairs.vector(k);
            let eigen = Some((pairs.values[k - 1], pairs.steps));
            (direction::describe(vector, centre.flat(), &mask), eigen)
        }
        (DirectionKind::SignMatch, _) => (
            direction::sign_match(
                spec.ratio.unwrap_or(1.0),
                spec.params,
                spec.seed.unwrap_or(ctx.seed),
                centre,
            ),
            None,
        ),
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
