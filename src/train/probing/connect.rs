//! A connection on the live run: the line (and a Bézier curve, if asked) from the live SGD
//! iterate or SWA average to the other, or to an SGD iterate the run kept at an epoch end,
//! measured and stored as `valleys connect` does.

use super::{LiveObserver, Observer};
use crate::probe::connect::Endpoint;
use crate::probe::connect::curve::CurveSettings;
use crate::probe::runner::ProbeError;
use crate::probe::runner::connect::{self, ConnectSpec};
use crate::protocol::{ConnectRequest, Event, Iterate};
use crate::train::engine::Engine;
use std::cell::RefCell;
use tch::Tensor;

pub(super) fn connect(
    engine: &Engine,
    request: &ConnectRequest,
    observer: &mut LiveObserver,
) -> Result<Option<Event>, ProbeError> {
    let ctx = engine.probe_context();
    let run = engine.run_dir();
    if request.b_epoch.is_none() && request.a == request.b {
        return Err(ProbeError::Invalid(format!(
            "{0} → {0} connects the weights to themselves; expected two iterates, or an epoch",
            request.a.as_str()
        )));
    }
    let iterate = |it: Iterate| match it {
        Iterate::Swa => ctx.swa.ok_or_else(|| {
            ProbeError::Invalid("the SWA average holds no snapshot yet; expected sgd".into())
        }),
        _ => Ok(ctx.sgd),
    };
    let a = iterate(request.a)?;
    let (b, b_epoch, b_checkpoint): (Tensor, u32, String) = match request.b_epoch {
        Some(epoch) => (
            kept_iterate(engine, epoch)?,
            epoch,
            format!("epoch-{epoch:04}"),
        ),
        None => (
            iterate(request.b)?.flat().shallow_clone(),
            ctx.epoch,
            "live".into(),
        ),
    };
    let end = |iterate: Iterate, checkpoint: String| Endpoint {
        run: run.root().to_owned(),
        iterate: iterate.as_str().into(),
        checkpoint,
    };
    let b_iterate = if request.b_epoch.is_some() {
        Iterate::Sgd
    } else {
        request.b
    };
    let train = &engine.experiment().train;
    let spec = ConnectSpec {
        a: end(request.a, "live".into()),
        b: end(b_iterate, b_checkpoint),
        points: request.points,
        bn: request.bn,
        train_subset: None,
        test_subset: None,
        bn_subset: None,
        curve: (request.curve_epochs > 0).then_some(CurveSettings {
            epochs: request.curve_epochs,
            lr: train.lr,
            momentum: train.momentum,
            weight_decay: train.weight_decay,
            batch_size: train.batch_size,
        }),
    };
    observer.events.send(Event::ConnectStarted {
        label: request.describe(),
    });
    let observer = RefCell::new(observer);
    let cancelled = || Observer::cancelled(&mut **observer.borrow_mut());
    let result = connect::run(
        &ctx,
        &spec,
        (a, &b),
        (ctx.epoch, b_epoch),
        Some(run),
        &cancelled,
    )?;
    Ok(Some(Event::ConnectFinished(Box::new(result))))
}

/// The SGD iterate the run kept at the end of `epoch`, on the model's device.
fn kept_iterate(engine: &Engine, epoch: u32) -> Result<Tensor, ProbeError> {
    use crate::trajectory::store;
    let run = engine.run_dir();
    let index = store::read_index(run)
        .map_err(|e| ProbeError::Invalid(e.to_string()))?
        .ok_or_else(|| {
            ProbeError::Invalid(
                "the run keeps no trajectory (checkpoint.trajectory_every_epochs: 0); expected sgd or swa".into(),
            )
        })?;
    let Some(position) = index.points.iter().position(|p| p.epoch == epoch) else {
        let kept: Vec<String> = index.points.iter().map(|p| p.epoch.to_string()).collect();
        return Err(ProbeError::Invalid(format!(
            "epoch {epoch}: the run kept its SGD iterate at epochs {}",
            kept.join(", ")
        )));
    };
    let weights = store::read_iterate(run, &index, position)
        .map_err(|e| ProbeError::Invalid(e.to_string()))?;
    Ok(Tensor::from_slice(&weights).to_device(engine.sgd().flat().device()))
}
