//! Measuring a connection: the straight line from A to B, each point's BN statistics
//! recomputed (or as asked), as a probe measures an interpolation, and the two ends' sign
//! consistency.

use super::{PointSamples, ProbeContext, ProbeError};
use crate::model::Model;
use crate::probe::ProbePoint;
use crate::probe::connect::curve::{CurvePath, CurveSettings};
use crate::probe::connect::{Barrier, ConnectResult, Endpoint, barrier};
use crate::probe::scan::Line;
use crate::probe::{BnMode, ParamGroup, direction};
use crate::rundir::RunDir;
use std::time::Instant;
use tch::{Kind, Tensor};

/// What a connection measures.
pub struct ConnectSpec {
    pub a: Endpoint,
    pub b: Endpoint,
    pub points: usize,
    pub bn: BnMode,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub bn_subset: Option<usize>,
    /// A Bézier curve to train and measure beside the line.
    pub curve: Option<CurveSettings>,
}

/// The share of weights, non-zero in both, whose signs agree.
fn sign_consistency(wa: &Tensor, wb: &Tensor) -> f64 {
    let both = wa.ne(0.0).logical_and(&wb.ne(0.0));
    let agree = wa.sign().eq_tensor(&wb.sign()).logical_and(&both);
    let counted = both.sum(Kind::Int64).int64_value(&[]);
    if counted == 0 {
        return 0.0;
    }
    agree.sum(Kind::Int64).int64_value(&[]) as f64 / counted as f64
}

/// Measures the line from the model `a` to the weights `b` (of a model of the same
/// configuration, flat) on the data and scratch model of `ctx` (A's run), and stores it in
/// `run` if given. `epochs` are the two ends' epochs.
pub fn run(
    ctx: &ProbeContext,
    spec: &ConnectSpec,
    (a, b): (&Model, &Tensor),
    epochs: (u32, u32),
    store_in: Option<&RunDir>,
    cancelled: &dyn Fn() -> bool,
) -> Result<ConnectResult, ProbeError> {
    crate::error::catch_panic(|| measure(ctx, spec, (a, b), epochs, store_in, cancelled))
        .map_err(ProbeError::Model)?
}

fn measure(
    ctx: &ProbeContext,
    spec: &ConnectSpec,
    (a, b): (&Model, &Tensor),
    epochs: (u32, u32),
    store_in: Option<&RunDir>,
    cancelled: &dyn Fn() -> bool,
) -> Result<ConnectResult, ProbeError> {
    if b.size() != a.flat().size() {
        return Err(ProbeError::Invalid(format!(
            "the ends have {} and {} weights; a line between them needs one model",
            a.num_params(),
            b.numel()
        )));
    }
    let b_finite = b.isfinite().all().int64_value(&[]) == 1;
    if !a.is_finite() || !b_finite {
        return Err(ProbeError::Invalid(
            "the weights are not finite (a run diverged); a connection needs finite ends".into(),
        ));
    }
    let started = Instant::now();
    // In frozen mode the points keep A's BN statistics, which the scratch model carries.
    ctx.scratch.copy_from(a);
    let samples = PointSamples::new(
        ctx,
        (spec.train_subset, spec.test_subset, spec.bn_subset),
        spec.bn,
        a,
    );
    let towards = direction::describe(
        b - a.flat(),
        a.flat(),
        &direction::group_mask(a, ParamGroup::All),
    );
    let line = Line {
        data: ctx.data,
        train: &samples.train,
        test: &samples.test,
        centre: a.flat(),
        direction: &towards.vector,
        end: Some(b),
        control: None,
        bn: spec.bn,
        bn_pass: samples.bn_pass,
        eval_batch: ctx.eval_batch,
        seed: ctx.seed,
    };
    let n = spec.points.max(2);
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        if cancelled() {
            return Err(ProbeError::Cancelled);
        }
        let t = i as f64 / (n - 1) as f64;
        points.push(line.evaluate(ctx.scratch, t));
    }
    let (train_barrier, test_barrier) = barriers(&points);
    let curve = match &spec.curve {
        Some(settings) => {
            let curve_started = Instant::now();
            let trained = super::curve::train_on_data(ctx, (a, b), settings, cancelled)?;
            ctx.scratch.copy_from(a);
            let curve_line = Line {
                control: Some(&trained.control),
                ..line
            };
            let mut curve_points = Vec::with_capacity(n);
            for p in &points {
                if cancelled() {
                    return Err(ProbeError::Cancelled);
                }
                curve_points.push(curve_line.evaluate(ctx.scratch, p.t));
            }
            let (train_barrier, test_barrier) = barriers(&curve_points);
            let midpoint = (a.flat() + b) / 2.0;
            let bend = (&trained.control - midpoint).norm().double_value(&[])
                / towards.norm.max(f64::MIN_POSITIVE);
            Some(CurvePath {
                settings: *settings,
                points: curve_points,
                train_barrier,
                test_barrier,
                last_epoch_loss: trained.last_epoch_loss,
                bend,
                steps: trained.steps,
                seconds: curve_started.elapsed().as_secs_f64(),
            })
        }
        None => None,
    };
    let id = match store_in {
        Some(run) => {
            let n = crate::rundir::next_sequence_number(&crate::probe::store::connection_dir(run));
            format!("{n:03}-{}-{}", spec.a.iterate, spec.b.iterate)
        }
        None => format!("{}-{}", spec.a.iterate, spec.b.iterate),
    };
    let result = ConnectResult {
        id,
        a: spec.a.clone(),
        b: spec.b.clone(),
        a_epoch: epochs.0,
        b_epoch: epochs.1,
        points,
        bn: spec.bn,
        train_barrier,
        test_barrier,
        curve,
        sign_consistency: sign_consistency(a.flat(), b),
        distance: towards.norm,
        a_norm: towards.centre_norm,
        train_samples: samples.train.len,
        test_samples: samples.test.len,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(run) = store_in {
        crate::probe::store::write_connection(run, &result)?;
    }
    Ok(result)
}

/// The train and test barriers of a path's points.
fn barriers(points: &[ProbePoint]) -> (Option<Barrier>, Option<Barrier>) {
    let ts: Vec<f64> = points.iter().map(|p| p.t).collect();
    let of = |f: fn(&ProbePoint) -> f64| points.iter().map(f).collect::<Vec<_>>();
    let ses = |f: fn(&ProbePoint) -> Option<f64>| points.iter().map(f).collect::<Vec<_>>();
    (
        barrier(&ts, &of(|p| p.train_loss), &ses(|p| p.train_loss_se)),
        barrier(&ts, &of(|p| p.test_loss), &ses(|p| p.test_loss_se)),
    )
}
