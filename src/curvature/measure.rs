//! One curvature job on the live or saved weights: for each centre and each disjoint sample
//! set, the Hessian operator is built once, Lanczos finds the top eigenpairs, the trace is
//! estimated outside their span, SLQ runs give the density, and then the sharpness measures
//! perturb a scratch copy. The cost is timed and announced before the work starts; every
//! product asks whether to stop.

use super::lanczos::Lanczos;
use super::operator::{self, HessianOperator, SampleSet};
use super::{
    CentreCurvature, CurvatureCost, CurvatureResult, Estimate, Quadrature, SetCurvature,
    TraceEstimate, store,
};
use crate::config::curvature::{CurvatureCentres, CurvatureSpec, ResolvedCurvature, RunDefaults};
use crate::data::rng::{self, Purpose};
use crate::model::{Mode, Model, eval};
use crate::probe::direction;
use crate::probe::runner::{ProbeContext, ProbeError, check_group};
use crate::rundir::RunDir;
use rand::Rng;
use std::time::Instant;
use tch::Tensor;

mod sharpness;
use sharpness::sharpness;

/// What a job will do and about how long it will take, said before it starts.
#[derive(Debug, Clone)]
pub struct Plan {
    pub centres: Vec<String>,
    pub loss: String,
    pub dimension: usize,
    /// Hessian-vector products at most (Lanczos may stop earlier).
    pub products: usize,
    pub seconds_per_product: f64,
    /// Forward and backward passes of the sharpness measures (and the graphs' builds).
    pub passes: usize,
    pub forward_backward_seconds: f64,
}

impl Plan {
    pub fn expected_seconds(&self) -> f64 {
        self.products as f64 * self.seconds_per_product
            + self.passes as f64 * self.forward_backward_seconds
    }

    /// "about 480 Hessian-vector products × 0.21 s + 90 passes × 0.09 s ≈ 1m 49s".
    pub fn describe(&self) -> String {
        format!(
            "{} at {}: Hessian of {} parameters; at most {} Hessian-vector products × {:.3} s + {} forward-backward passes × {:.3} s ≈ {}",
            self.loss,
            self.centres.join(" and "),
            crate::format::group_thousands(self.dimension),
            self.products,
            self.seconds_per_product,
            self.passes,
            self.forward_backward_seconds,
            crate::format::clock(self.expected_seconds())
        )
    }
}

/// Follows a curvature job and may cancel it.
pub trait CurvatureObserver {
    fn planned(&mut self, plan: &Plan);
    /// After each product (and pass): products done so far, what is being measured.
    fn progress(&mut self, done: usize, planned: usize, what: &str);
    /// Asked before each product; true stops the job (nothing is stored).
    fn cancelled(&mut self) -> bool;
}

/// The settings of one job as the measuring needs them.
struct Job<'a> {
    ctx: &'a ProbeContext<'a>,
    settings: ResolvedCurvature,
    mode: Mode,
    mask: Tensor,
    dimension: usize,
    planned: usize,
    done: usize,
}

impl Job<'_> {
    fn stream(&self, keys: &[u64]) -> rand_chacha::ChaCha8Rng {
        rng::stream(self.settings.seed, Purpose::Curvature, keys)
    }

    /// A Rademacher vector on the group's coordinates.
    fn rademacher(&self, keys: &[u64]) -> Tensor {
        let mut generator = self.stream(keys);
        let n = self.mask.size()[0] as usize;
        let signs: Vec<f32> = (0..n)
            .map(|_| if generator.r#gen::<bool>() { 1.0 } else { -1.0 })
            .collect();
        Tensor::from_slice(&signs).to_device(self.mask.device()) * &self.mask
    }

    /// A standard normal vector on the group's coordinates.
    fn gaussian(&self, keys: &[u64]) -> Tensor {
        let mut generator = self.stream(keys);
        let n = self.mask.size()[0] as usize;
        let values: Vec<f32> = (0..n)
            .map(|_| rng::standard_normal(&mut generator) as f32)
            .collect();
        Tensor::from_slice(&values).to_device(self.mask.device()) * &self.mask
    }

    fn product(
        &mut self,
        op: &HessianOperator,
        v: &Tensor,
        what: &str,
        observer: &mut dyn CurvatureObserver,
    ) -> Result<Tensor, ProbeError> {
        if observer.cancelled() {
            return Err(ProbeError::Cancelled);
        }
        let hv = op.apply(v);
        self.done += 1;
        observer.progress(self.done, self.planned, what);
        Ok(hv)
    }
}

/// The centres a job measures, with their names.
fn centres<'a>(
    ctx: &ProbeContext<'a>,
    which: CurvatureCentres,
) -> Result<Vec<(&'static str, &'a Model)>, ProbeError> {
    let chosen = match (which, ctx.swa) {
        (CurvatureCentres::Both, Some(swa)) => vec![("sgd", ctx.sgd), ("swa", swa)],
        (CurvatureCentres::Swa, Some(swa)) => vec![("swa", swa)],
        (CurvatureCentres::Swa, None) => {
            return Err(ProbeError::Invalid(format!(
                "centre swa: the SWA average holds no snapshot yet at epoch {}; expected centre sgd or both, or a later checkpoint",
                ctx.epoch
            )));
        }
        // Before averaging starts the only point there is is the SGD iterate.
        (CurvatureCentres::Both | CurvatureCentres::Sgd, _) => vec![("sgd", ctx.sgd)],
    };
    if chosen.iter().any(|(_, m)| !m.is_finite()) {
        return Err(ProbeError::Invalid(
            "the weights are not finite (the run diverged); curvature needs finite weights".into(),
        ));
    }
    Ok(chosen)
}

/// What a run gives a job's defaults: its seed, evaluation subset, data and batch size.
pub fn run_defaults(
    experiment: &crate::config::Experiment,
    data: &crate::data::dataset::Dataset,
) -> RunDefaults {
    RunDefaults {
        seed: experiment.seed,
        eval_subset: data.train_eval.len,
        train_samples: data.train.len,
        train_batch: experiment.train.batch_size as usize,
    }
}

/// Checks a job against the run before anything is computed: the settings resolved
/// against its data, the group against the model, k against the group's size.
pub fn check(
    ctx: &ProbeContext,
    spec: &CurvatureSpec,
    run: RunDefaults,
) -> Result<ResolvedCurvature, ProbeError> {
    check_group(ctx.sgd, spec.params)?;
    let settings = spec.resolved(run).map_err(|e| ProbeError::Invalid(e.0))?;
    let dimension = direction::group_size(ctx.sgd, settings.params) as usize;
    if settings.top_k > dimension {
        return Err(ProbeError::Invalid(format!(
            "curvature.top_k = {}: expected at most {dimension}, the parameters in group {}",
            settings.top_k,
            settings.params.as_str()
        )));
    }
    centres(ctx, settings.centre)?;
    Ok(settings)
}

/// Runs a job on `ctx`'s weights and stores it in `run` (if given).
pub fn run(
    ctx: &ProbeContext,
    spec: &CurvatureSpec,
    defaults: RunDefaults,
    run: Option<&RunDir>,
    observer: &mut dyn CurvatureObserver,
) -> Result<CurvatureResult, ProbeError> {
    let settings = check(ctx, spec, defaults)?;
    if let Some(run) = run {
        crate::rundir::check_writable(&store::dir(run))?;
    }
    let result = crate::error::catch_panic(|| measure(ctx, settings, observer))
        .map_err(ProbeError::Model)??;
    let mut result = result;
    if let Some(run) = run {
        result.id = store::next_id(run, settings.centre);
        store::write(run, &result)?;
    }
    Ok(result)
}

/// The top-k eigenvectors (unit rows, largest eigenvalue first) of the Hessian at the job's
/// first centre on its first sample set: directions to probe along or to span a plane with.
pub fn top_eigenvectors(
    ctx: &ProbeContext,
    spec: &CurvatureSpec,
    defaults: RunDefaults,
) -> Result<Tensor, ProbeError> {
    let settings = check(ctx, spec, defaults)?;
    crate::error::catch_panic(|| {
        let (_, centre) = centres(ctx, settings.centre)?[0];
        let split = &ctx.data.train_sample_sets(settings.samples, 1, ctx.seed)[0];
        let set = SampleSet::new(ctx.data, split, settings.batch);
        let job = Job {
            ctx,
            settings,
            mode: operator::mode(settings.bn),
            mask: direction::group_mask(ctx.sgd, settings.params),
            dimension: direction::group_size(ctx.sgd, settings.params) as usize,
            planned: 0,
            done: 0,
        };
        ctx.scratch.copy_from(centre);
        let op = HessianOperator::new(ctx.scratch, &set, job.mode, &job.mask);
        let mut lanczos = Lanczos::new(
            &job.gaussian(&[0, 0, 0]),
            settings.lanczos_steps.min(job.dimension),
        );
        while lanczos.can_step() && !lanczos.converged(settings.top_k, settings.tolerance) {
            lanczos.step(&op.apply(&lanczos.current()));
        }
        Ok(lanczos.top_pairs(settings.top_k).vectors)
    })
    .map_err(ProbeError::Model)?
}

fn measure(
    ctx: &ProbeContext,
    settings: ResolvedCurvature,
    observer: &mut dyn CurvatureObserver,
) -> Result<CurvatureResult, ProbeError> {
    let started = Instant::now();
    let chosen = centres(ctx, settings.centre)?;
    let mask = direction::group_mask(ctx.sgd, settings.params);
    let dimension = direction::group_size(ctx.sgd, settings.params) as usize;
    let sets: Vec<SampleSet> = ctx
        .data
        .train_sample_sets(settings.samples, settings.sets, ctx.seed)
        .iter()
        .map(|split| SampleSet::new(ctx.data, split, settings.batch))
        .collect();
    let loss = settings.describe_loss(ctx.sgd.has_bn());
    let mut job = Job {
        ctx,
        settings,
        mode: operator::mode(settings.bn),
        mask,
        dimension,
        planned: 0,
        done: 0,
    };
    let (per_product, per_pass) = time_costs(&job, chosen[0].1, &sets[0]);
    let runs = chosen.len() * sets.len();
    let lanczos_steps = settings.lanczos_steps.min(dimension);
    let density_steps = settings.density_steps.min(dimension);
    job.planned =
        runs * (lanczos_steps + settings.trace_vectors + settings.density_runs * density_steps);
    let plan = Plan {
        centres: chosen.iter().map(|(name, _)| (*name).to_owned()).collect(),
        loss: loss.clone(),
        dimension,
        products: job.planned,
        seconds_per_product: per_product,
        // The graph's build, the ascent's steps and the noise draws (forward only, about a
        // third of a pass each).
        passes: runs * (1 + settings.ascent_steps + settings.noise_draws.div_ceil(3)),
        forward_backward_seconds: per_pass,
    };
    observer.planned(&plan);
    let test = ctx.data.test_subset(usize::MAX, ctx.seed);
    let mut measured = Vec::with_capacity(chosen.len());
    for (c, (name, centre)) in chosen.iter().enumerate() {
        let mut per_set = Vec::with_capacity(sets.len());
        for (s, set) in sets.iter().enumerate() {
            ctx.scratch.copy_from(centre);
            per_set.push(measure_set(
                &mut job,
                centre,
                set,
                [c as u64, s as u64],
                observer,
            )?);
        }
        let e = eval::evaluate(centre, ctx.data, &test, ctx.eval_batch);
        measured.push(CentreCurvature::from_sets(name, (e.loss, e.acc), per_set));
    }
    ctx.scratch.copy_from(chosen[0].1);
    let seconds = started.elapsed().as_secs_f64();
    Ok(CurvatureResult {
        id: String::new(),
        settings,
        loss,
        model: ctx.sgd.description().to_owned(),
        dimension,
        source: ctx.source.clone(),
        epoch: ctx.epoch,
        step: ctx.step,
        swa_n: ctx.swa_n,
        centres: measured,
        cost: CurvatureCost {
            products: job.done,
            seconds,
            seconds_per_product: per_product,
            forward_backward_seconds: per_pass,
            ratio: per_product / per_pass.max(1e-9),
        },
    })
}

/// Seconds of one Hessian-vector product and of one forward and backward pass on `set` at
/// `centre`, each the faster of two (the first pays for warming up).
fn time_costs(job: &Job, centre: &Model, set: &SampleSet) -> (f64, f64) {
    let model = job.ctx.scratch;
    model.copy_from(centre);
    let timed = |f: &dyn Fn()| {
        (0..2)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let pass = timed(&|| {
        let _ = operator::loss_and_gradient(model, set, job.mode);
    });
    let op = HessianOperator::new(model, set, job.mode, &job.mask);
    let v = job.gaussian(&[u64::MAX]);
    let product = timed(&|| {
        let _ = op.apply(&v);
    });
    (product, pass)
}

fn measure_set(
    job: &mut Job,
    centre: &Model,
    set: &SampleSet,
    [c, s]: [u64; 2],
    observer: &mut dyn CurvatureObserver,
) -> Result<SetCurvature, ProbeError> {
    let model = job.ctx.scratch;
    let settings = job.settings;
    let op = HessianOperator::new(model, set, job.mode, &job.mask);
    let base_loss = op.loss;

    let mut lanczos = Lanczos::new(
        &job.gaussian(&[c, s, 0]),
        settings.lanczos_steps.min(job.dimension),
    );
    while lanczos.can_step() && !lanczos.converged(settings.top_k, settings.tolerance) {
        let hv = job.product(&op, &lanczos.current(), "top eigenvalues", observer)?;
        lanczos.step(&hv);
    }
    let lanczos_steps = lanczos.steps();
    let pairs = lanczos.top_pairs(settings.top_k);
    drop(lanczos);

    let trace = if settings.trace_vectors > 0 {
        // Hutch++'s split: the top-k subspace exactly (its Rayleigh quotients are the Ritz
        // values), Hutchinson's estimator with Rademacher vectors on the rest.
        let q = &pairs.vectors;
        let mut samples = Vec::with_capacity(settings.trace_vectors);
        for i in 0..settings.trace_vectors {
            let z = job.rademacher(&[c, s, 1, i as u64]);
            let z = &z - q.tr().mv(&q.mv(&z));
            let hz = job.product(&op, &z, "trace", observer)?;
            samples.push(hz.dot(&z).double_value(&[]));
        }
        let top_part: f64 = pairs.values.iter().sum();
        crate::stats::mean_interval(&samples).map(|(mean, interval)| TraceEstimate {
            trace: Estimate {
                value: top_part + mean,
                interval: interval.map(|i| crate::stats::Interval {
                    lo: top_part + i.lo,
                    hi: top_part + i.hi,
                }),
            },
            top_part,
            samples,
        })
    } else {
        None
    };

    let mut density = Vec::with_capacity(settings.density_runs);
    for r in 0..settings.density_runs {
        let start = job.rademacher(&[c, s, 2, r as u64]);
        let mut slq = Lanczos::new(&start, settings.density_steps.min(job.dimension));
        while slq.can_step() {
            let hv = job.product(&op, &slq.current(), "spectral density", observer)?;
            slq.step(&hv);
        }
        let (nodes, weights) = slq.quadrature();
        density.push(Quadrature { nodes, weights });
    }
    drop(op);

    let (average_sharpness, noise_increases, worst_sharpness) =
        sharpness(job, centre, set, base_loss, [c, s], observer)?;
    model.copy_from(centre);
    Ok(SetCurvature {
        loss: base_loss,
        eigenvalues: pairs.values,
        residuals: pairs.residuals,
        lanczos_steps,
        trace,
        density,
        average_sharpness,
        noise_increases,
        worst_sharpness,
    })
}
