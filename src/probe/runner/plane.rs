//! Measuring a plane: its two directions drawn at the centre, then each row of the grid
//! measured as a probe's line ([`Line`]), coarse to fine, with the same stacked evaluation as
//! probes (`stacked_copy`). What a plane is and what it found are plain data in
//! [`crate::probe::plane`].

use super::eigen::{self, EigenRequest};
use super::{PointSamples, ProbeContext, ProbeError};
use crate::data::dataset::DeviceSplit;
use crate::model::Model;
use crate::probe::direction::{self, Direction};
use crate::probe::plane::{
    DEFAULT_HESSIAN_BATCH, HESSIAN_STEPS, PlaneCost, PlaneHeader, PlaneKind, PlaneObserver,
    PlanePoint, PlaneResult, PlaneSpec, coarse_to_fine, d2_seed, markers,
};
use crate::probe::scan::Line;
use crate::probe::{CentreKind, store};
use crate::rundir::RunDir;
use std::time::Instant;
use tch::{Kind, Tensor};

/// `d` minus its projection on `onto`: orthogonal to it.
pub fn orthogonalise(d: &Tensor, onto: &Tensor) -> Tensor {
    let dot = |a: &Tensor, b: &Tensor| (a * b).sum(Kind::Double).double_value(&[]);
    let scale = dot(d, onto) / dot(onto, onto).max(1e-300);
    d - onto * scale
}

/// The cosine of the angle between two vectors.
pub fn cosine(a: &Tensor, b: &Tensor) -> f64 {
    let dot = (a * b).sum(Kind::Double).double_value(&[]);
    let norms = a.norm().double_value(&[]) * b.norm().double_value(&[]);
    if norms > 0.0 { dot / norms } else { 0.0 }
}

/// The plane's two random directions at `centre`, or SGD − SWA and a random one (the SGD
/// iterate `sgd`); a `hessian` plane's are found by [`eigen_directions`].
pub fn directions(
    spec: &PlaneSpec,
    centre: &Model,
    sgd: &Model,
    seed: u64,
) -> (Direction, Direction) {
    let draw = |seed: u64| {
        direction::random(
            spec.direction,
            spec.norm,
            spec.bias_bn,
            spec.params,
            seed,
            centre,
        )
    };
    let mask = direction::group_mask(centre, spec.params);
    let d1 = match spec.kind {
        PlaneKind::SwaSgd => direction::towards(centre, sgd, spec.params),
        _ => draw(seed),
    };
    let drawn = draw(d2_seed(seed));
    let orthogonal = orthogonalise(&drawn.vector, &d1.vector) * &mask;
    let length = match spec.kind {
        PlaneKind::SwaSgd => d1.norm,
        _ => drawn.norm,
    };
    let scaled = &orthogonal * (length / orthogonal.norm().double_value(&[]).max(1e-30));
    let d2 = direction::describe(scaled, centre.flat(), &mask);
    (d1, d2)
}

/// A `hessian` plane's directions: the eigenvectors k₁ and k₂ of the Hessian at the model's
/// weights (which the caller has set to the centre's), unit length and orthogonal as
/// eigenvectors are, with their eigenvalues and the Lanczos steps taken.
fn eigen_directions(
    ctx: &ProbeContext,
    spec: &PlaneSpec,
    centre: &Model,
    train: &DeviceSplit,
    seed: u64,
) -> (Direction, Direction, (f64, f64), usize) {
    let (a, b) = spec.eigenvector_pair();
    let mask = direction::group_mask(centre, spec.params);
    let request = EigenRequest {
        data: ctx.data,
        train,
        samples: spec.hessian_batch.unwrap_or(DEFAULT_HESSIAN_BATCH),
        bn: spec.bn,
        mask: &mask,
        seed,
        steps: HESSIAN_STEPS,
    };
    let pairs = eigen::top(ctx.scratch, &request, a.max(b));
    let d = |k: usize| direction::describe(pairs.vector(k), centre.flat(), &mask);
    (
        d(a),
        d(b),
        (pairs.values[a - 1], pairs.values[b - 1]),
        pairs.steps,
    )
}

/// Why a pca plane cannot be measured on a run without a stored path.
const NO_TRAJECTORY: &str = "plane pca spans the run's stored trajectory, and this run has none (checkpoint.trajectory_every_epochs: 0, or a run from before valleys kept one); expected --plane swa-sgd, random or hessian";

/// What a plane of `spec` needs of the model and the run, checked before any work: the
/// parameter group, the eigenvectors' depth, a pca plane's stored trajectory, a writable
/// planes directory.
pub fn check(spec: &PlaneSpec, model: &Model, run: Option<&RunDir>) -> Result<(), ProbeError> {
    super::check_group(model, spec.params)?;
    if spec.kind == PlaneKind::Hessian {
        let (a, b) = spec.eigenvector_pair();
        super::check_eigenvector(model, spec.params, a.max(b))?;
    }
    if spec.kind == PlaneKind::Pca {
        let index = run
            .map(crate::trajectory::store::read_index)
            .transpose()
            .map_err(|e| ProbeError::Invalid(e.to_string()))?
            .flatten();
        let Some(index) = index else {
            return Err(ProbeError::Invalid(NO_TRAJECTORY.into()));
        };
        path::check_fits(&index, model)?;
    }
    if let Some(run) = run {
        crate::rundir::check_writable(&store::plane_dir(run))?;
    }
    Ok(())
}

/// Measures a plane through the context's weights and stores it in `run` if given.
pub fn run(
    ctx: &ProbeContext,
    spec: &PlaneSpec,
    run: Option<&RunDir>,
    observer: &mut dyn PlaneObserver,
) -> Result<PlaneResult, ProbeError> {
    // As a probe: a model that fails while measured is an error, not a crash.
    crate::error::catch_panic(|| measure(ctx, spec, run, observer)).map_err(ProbeError::Model)?
}

fn measure(
    ctx: &ProbeContext,
    spec: &PlaneSpec,
    run: Option<&RunDir>,
    observer: &mut dyn PlaneObserver,
) -> Result<PlaneResult, ProbeError> {
    let prepared = prepare(ctx, spec, run)?;
    observer.started(&prepared.header());
    let order = coarse_to_fine(prepared.plane.xs.len(), prepared.plane.ys.len());
    let measured = measure_grid(
        ctx,
        &prepared.plane,
        prepared.centre,
        (&prepared.d1.vector, &prepared.d2.vector),
        &order,
        &prepared.samples,
        observer,
    )?;
    let mut result = prepared.plane;
    result.points = measured;
    result.cost.seconds = prepared.started.elapsed().as_secs_f64();
    result.cost.points = order.len();
    result.cost.seconds_per_point = result.cost.seconds / order.len() as f64;
    if let Some(run) = run {
        // The directions first: a plane on disk without them only stops growing its path.
        path::write_directions(
            run,
            &result.id,
            prepared.centre.flat(),
            &prepared.d1.vector,
            &prepared.d2.vector,
        )?;
        store::write_plane(run, &result)?;
    }
    Ok(result)
}

/// A plane ready to be measured: its directions drawn at its centre, its samples chosen and
/// timed, and everything of its result known but its points.
pub struct Prepared<'a> {
    /// The plane as it will be stored, its `points` empty and its cost the preparation's
    /// (with one forward pass timed).
    pub plane: PlaneResult,
    pub centre: &'a Model,
    pub d1: Direction,
    pub d2: Direction,
    /// The expected seconds of one point.
    pub seconds_per_point: f64,
    samples: PointSamples,
    started: Instant,
}

impl Prepared<'_> {
    /// What is known of the plane before its first point.
    pub fn header(&self) -> PlaneHeader {
        self.plane.header(self.seconds_per_point)
    }
}

/// Everything a plane of `spec` needs before its first point: the checks, the centre, the
/// directions (drawn, or found for a `hessian` or `pca` plane), the path projected onto the
/// plane, a fresh id in `run` and one timed forward pass.
pub fn prepare<'a>(
    ctx: &ProbeContext<'a>,
    spec: &PlaneSpec,
    run: Option<&RunDir>,
) -> Result<Prepared<'a>, ProbeError> {
    spec.validate().map_err(|e| ProbeError::Invalid(e.0))?;
    check(spec, ctx.sgd, run)?;
    let started = Instant::now();
    let (centre, label) = plane_centre(ctx, spec)?;
    let seed = spec.seed.unwrap_or(ctx.seed);
    let samples = samples_at(ctx, spec, centre);
    // The run's path: drawn on every plane, spanned by a pca one. A plane of a run whose
    // trajectory cannot be read is still measured, without the path.
    let stored = match run {
        Some(run) => path::load(run, centre),
        None => Ok(None),
    };
    let stored = match spec.kind {
        PlaneKind::Pca => Some(stored?.ok_or_else(|| ProbeError::Invalid(NO_TRAJECTORY.into()))?),
        _ => stored.ok().flatten(),
    };
    let mask = direction::group_mask(centre, spec.params);
    let mut explained = None;
    let (d1, d2, eigen) = match spec.kind {
        PlaneKind::Hessian => {
            let (d1, d2, values, steps) = eigen_directions(ctx, spec, centre, &samples.train, seed);
            (d1, d2, Some((values, steps)))
        }
        PlaneKind::Pca => {
            let stored = stored.as_ref().expect("a pca plane has its trajectory");
            let (d1, d2, shares) = path::principal_directions(stored, centre, &mask)?;
            explained = Some(shares);
            (d1, d2, None)
        }
        _ => {
            let (d1, d2) = directions(spec, centre, ctx.sgd, seed);
            (d1, d2, None)
        }
    };
    let projected = stored.as_ref().map_or(Vec::new(), |stored| {
        path::project(stored, centre, &d1.vector, &d2.vector, &mask)
    });
    drop(stored);
    let id = match run {
        Some(run) => store::next_plane_id(run, spec.kind, label),
        None => format!("{}-{label}", spec.kind.as_str()),
    };
    let forward_seconds = samples.time_forward(ctx);
    let seconds_per_point = samples.expected_point_seconds(forward_seconds, spec.bn);
    let plane = PlaneResult {
        id,
        spec: spec.clone(),
        seed,
        d2_seed: (!spec.derived_directions()).then(|| d2_seed(seed)),
        centre: label.into(),
        points: Vec::new(),
        xs: spec.xs(),
        ys: spec.ys(),
        markers: markers(spec.kind, label),
        d1_norm: d1.norm,
        d2_norm: d2.norm,
        cosine: cosine(&d1.vector, &d2.vector),
        centre_norm: d1.centre_norm,
        train_samples: samples.train.len,
        test_samples: samples.test.len,
        bn_samples: samples.bn_samples.as_ref().map(|s| s.len),
        epoch: ctx.epoch,
        step: ctx.step,
        source: ctx.source.clone(),
        cost: PlaneCost {
            seconds: started.elapsed().as_secs_f64(),
            seconds_per_point: 0.0,
            points: 0,
            forward_seconds,
        },
        eigenvalues: eigen.map(|e| e.0),
        hessian_steps: eigen.map(|e| e.1),
        explained_variance: explained,
        path: projected,
    };
    Ok(Prepared {
        plane,
        centre,
        d1,
        d2,
        seconds_per_point,
        samples,
        started,
    })
}

/// What each point of a plane of `spec` through `centre` reads, with the scratch model set to
/// the centre (where the first point's line starts).
fn samples_at(ctx: &ProbeContext, spec: &PlaneSpec, centre: &Model) -> PointSamples {
    let samples = PointSamples::new(
        ctx,
        (spec.train_subset, spec.test_subset, spec.bn_subset),
        spec.bn,
        centre,
    );
    ctx.scratch.copy_from(centre);
    samples
}

/// Measures the points `order` of `plane` (whose directions d₁ and d₂ were drawn before, by
/// [`prepare`]) exactly as the whole plane measures them, telling `observer` of each; what
/// one tile of a plane does. The weights are the context's, the centre the plane's.
pub fn measure_points(
    ctx: &ProbeContext,
    plane: &PlaneResult,
    (d1, d2): (&Tensor, &Tensor),
    order: &[(usize, usize)],
    observer: &mut dyn PlaneObserver,
) -> Result<(), ProbeError> {
    crate::error::catch_panic(|| {
        let centre = match (plane.centre.as_str(), ctx.swa) {
            ("swa", Some(swa)) => swa,
            ("swa", None) => {
                return Err(ProbeError::Invalid(
                    "the plane is centred on SWA, and this checkpoint holds no average".into(),
                ));
            }
            _ => ctx.sgd,
        };
        let samples = samples_at(ctx, &plane.spec, centre);
        measure_grid(ctx, plane, centre, (d1, d2), order, &samples, observer).map(|_| ())
    })
    .map_err(ProbeError::Model)?
}

/// The centre of a plane of `spec` and its label: SWA for a swa-sgd plane (which needs an
/// average), the asked-for iterate of a random one; both finite.
fn plane_centre<'a>(
    ctx: &ProbeContext<'a>,
    spec: &PlaneSpec,
) -> Result<(&'a Model, &'static str), ProbeError> {
    let (centre, label) = match (spec.kind, spec.centre, ctx.swa) {
        (PlaneKind::SwaSgd, _, Some(swa)) => (swa, "swa"),
        (PlaneKind::SwaSgd, _, None) => {
            return Err(ProbeError::Invalid(
                "plane swa-sgd runs through the SWA average and the SGD iterate, and the average holds no snapshot yet; use --plane random".into(),
            ));
        }
        (_, CentreKind::Swa, Some(swa)) => (swa, "swa"),
        (_, _, _) => (ctx.sgd, "sgd"),
    };
    if !centre.is_finite() || !ctx.sgd.is_finite() {
        return Err(ProbeError::Invalid(
            "the weights are not finite (the run diverged); planes need finite weights".into(),
        ));
    }
    Ok((centre, label))
}

/// Every point of the grid `xs` × `ys`, in `order`, each row a probe's line along d₁ through
/// w_c + y·d₂, up to k points of a row at once on a stacked copy of the model.
fn measure_grid(
    ctx: &ProbeContext,
    plane: &PlaneResult,
    centre: &Model,
    (d1, d2): (&Tensor, &Tensor),
    order: &[(usize, usize)],
    samples: &PointSamples,
    observer: &mut dyn PlaneObserver,
) -> Result<Vec<PlanePoint>, ProbeError> {
    let (spec, xs, ys) = (&plane.spec, &plane.xs, &plane.ys);
    let (k, stacked) = super::stacked_copy(spec.point_batch, centre, xs.len())?;
    let mut measured: Vec<Option<PlanePoint>> = vec![None; xs.len() * ys.len()];
    let (mut next, mut done) = (0, 0);
    while next < order.len() {
        if observer.cancelled() {
            return Err(ProbeError::Cancelled);
        }
        // Up to k points of one row, in the coarse-to-fine order (row by row in each pass).
        let j = order[next].1;
        let chunk: Vec<usize> = order[next..]
            .iter()
            .take_while(|p| p.1 == j)
            .take(k)
            .map(|p| p.0)
            .collect();
        next += chunk.len();
        // The row's line: through w_c + y·d₂, along d₁.
        let origin = tch::no_grad(|| centre.flat() + d2 * ys[j]);
        let line = Line {
            data: ctx.data,
            train: &samples.train,
            test: &samples.test,
            centre: &origin,
            direction: d1,
            end: None,
            control: None,
            bn: spec.bn,
            bn_pass: samples.bn_pass,
            eval_batch: ctx.eval_batch,
            seed: ctx.seed,
        };
        let at: Vec<f64> = chunk.iter().map(|&i| xs[i]).collect();
        let points = match &stacked {
            Some(stacked) => line.evaluate_points(stacked, centre, &at),
            None => vec![line.evaluate(ctx.scratch, at[0])],
        };
        for (&i, point) in chunk.iter().zip(points) {
            let point = PlanePoint {
                x: xs[i],
                y: ys[j],
                measured: point,
            };
            done += 1;
            observer.point(done, i, j, &point);
            measured[j * xs.len() + i] = Some(point);
        }
    }
    Ok(measured.into_iter().flatten().collect())
}

pub mod path;

#[cfg(test)]
mod tests;
