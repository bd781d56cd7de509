//! Training the bend of a quadratic Bézier curve between two solutions: every step draws
//! t ~ U(0, 1), measures the loss of one training batch at θ(t) in training mode (batch
//! statistics, as the run trained), and moves the bend C along ∂L/∂C = 2t(1 − t)·∇L(θ(t)), the
//! chain rule through θ(t), with SGD. Nothing here knows the architecture: any model whose
//! weights are one flat vector, zoo or TorchScript, gets a curve.

use super::{ProbeContext, ProbeError};
use crate::data::rng::{self, Purpose};
use crate::model::{Mode, Model};
use crate::probe::connect::curve::{CurveSettings, bezier_coefficients};
use crate::train::sgd::Sgd;
use rand::Rng;
use tch::{Kind, Reduction, Tensor};

/// A trained bend.
pub struct TrainedBend {
    pub control: Tensor,
    /// The mean loss over the last epoch's batches.
    pub last_epoch_loss: f64,
    pub steps: u64,
}

/// The loss of one training batch (epoch, batch) at some weights, and its gradient there.
pub type LossAndGrad<'a> = dyn FnMut(&Tensor, u32, u32) -> Result<(f64, Tensor), ProbeError> + 'a;

/// Trains the bend of the curve from `a` to `b` (flat vectors), starting from their midpoint,
/// where the curve is the straight line. `loss_and_grad(θ, epoch, batch)` gives the loss of
/// batch `batch` of `epoch` at the weights θ and its gradient there; `batches` is the number
/// of batches an epoch has. The t of each step is drawn from `seed`.
pub fn train_bend(
    (a, b): (&Tensor, &Tensor),
    settings: &CurveSettings,
    batches: u32,
    seed: u64,
    cancelled: &dyn Fn() -> bool,
    loss_and_grad: &mut LossAndGrad,
) -> Result<TrainedBend, ProbeError> {
    let control = tch::no_grad(|| (a + b) / 2.0);
    let mut opt = Sgd::new(settings.momentum, settings.weight_decay, false);
    let total = u64::from(settings.epochs) * u64::from(batches.max(1));
    let mut steps = 0u64;
    let mut last_epoch_loss = f64::NAN;
    for epoch in 0..settings.epochs {
        let mut draws = rng::stream(seed, Purpose::Curve, &[1, u64::from(epoch)]);
        let mut sum = 0.0;
        for batch in 0..batches {
            if cancelled() {
                return Err(ProbeError::Cancelled);
            }
            let t: f64 = draws.r#gen();
            let [ka, kc, kb] = bezier_coefficients(t);
            let theta = tch::no_grad(|| a * ka + &control * kc + b * kb);
            let (loss, grad) = loss_and_grad(&theta, epoch, batch)?;
            if !loss.is_finite() {
                return Err(ProbeError::Invalid(format!(
                    "the curve's training diverged at epoch {} (loss {loss} at t = {t:.3}); expected a smaller --curve-lr than {}",
                    epoch + 1,
                    settings.lr
                )));
            }
            let lr = settings.lr_at(steps as f64 / total as f64);
            opt.step(&control, &(grad * kc), lr);
            sum += loss;
            steps += 1;
        }
        last_epoch_loss = sum / f64::from(batches.max(1));
    }
    Ok(TrainedBend {
        control,
        last_epoch_loss,
        steps,
    })
}

/// Batches of an epoch of the curve's training over `ctx`'s training set.
pub fn batches_per_epoch(ctx: &ProbeContext, settings: &CurveSettings, model: &Model) -> u32 {
    crate::train::engine::batches_per_epoch(
        ctx.data.train.len,
        settings.batch_size as usize,
        model.has_bn(),
    )
}

/// Trains the bend between the model `a` and the weights `b` on `ctx`'s training set (shuffled and
/// augmented as the run was, from streams of their own), moving `ctx.scratch` along the curve.
pub fn train_on_data(
    ctx: &ProbeContext,
    (a, b): (&Model, &Tensor),
    settings: &CurveSettings,
    cancelled: &dyn Fn() -> bool,
) -> Result<TrainedBend, ProbeError> {
    let scratch = ctx.scratch;
    let batches = batches_per_epoch(ctx, settings, a);
    let n = ctx.data.train.len as i64;
    let bs = i64::from(settings.batch_size);
    let device = scratch.flat().device();
    let objective = scratch.objective();
    let mut order: Option<(u32, Tensor)> = None;
    let mut step = |theta: &Tensor, epoch: u32, batch: u32| {
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut shuffle = rng::stream(ctx.seed, Purpose::Curve, &[0, u64::from(epoch)]);
            let perm = rng::permutation(n as usize, &mut shuffle);
            order = Some((epoch, Tensor::from_slice(&perm).to_device(device)));
        }
        let (_, order) = order.as_ref().expect("set above");
        let start = i64::from(batch) * bs;
        let len = bs.min(n - start);
        let mut augment = rng::stream(
            ctx.seed,
            Purpose::Curve,
            &[2, u64::from(epoch), u64::from(batch)],
        );
        tch::manual_seed(rng::torch_seed(ctx.seed ^ 0xC0FFEE, epoch, batch));
        let (x, y) = ctx
            .data
            .train_batch(&order.narrow(0, start, len), Some(&mut augment));
        tch::no_grad(|| scratch.flat().shallow_clone().copy_(theta));
        let logits = scratch.forward(&x, Mode::Train);
        let (loss, _) = objective.loss_and_correct(&logits, &y, Reduction::Mean);
        let grad = scratch.flat_grad(&loss);
        Ok((loss.to_kind(Kind::Double).double_value(&[]), grad))
    };
    train_bend(
        (a.flat(), b),
        settings,
        batches,
        ctx.seed,
        cancelled,
        &mut step,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The toy valley L(x, y) = (y − 1 + x²)² holds the parabola y = 1 − x², which from
    /// A = (−1, 0) to B = (1, 0) is exactly the Bézier curve with bend C = (0, 2):
    /// x = 2t − 1, y = 4t(1 − t) = 1 − x². It is the only bend with zero loss everywhere
    /// (x must be linear in t, so C_x = 0, and then C_y = 2), while the straight line climbs
    /// to L(0, 0) = 1.
    #[test]
    fn the_bend_finds_the_toy_valley_s_parabola() {
        let a = Tensor::from_slice(&[-1.0f32, 0.0]).to_kind(Kind::Double);
        let b = Tensor::from_slice(&[1.0f32, 0.0]).to_kind(Kind::Double);
        let settings = CurveSettings {
            epochs: 40,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size: 1,
        };
        let loss_at = |x: f64, y: f64| (y - 1.0 + x * x).powi(2);
        let mut toy = |theta: &Tensor, _: u32, _: u32| {
            let (x, y) = (theta.double_value(&[0]), theta.double_value(&[1]));
            let r = y - 1.0 + x * x;
            // ∂L/∂x = 4xr and ∂L/∂y = 2r, by hand.
            let grad = Tensor::from_slice(&[4.0 * x * r, 2.0 * r]);
            Ok((loss_at(x, y), grad))
        };
        let trained = train_bend((&a, &b), &settings, 100, 7, &|| false, &mut toy).unwrap();
        let (cx, cy) = (
            trained.control.double_value(&[0]),
            trained.control.double_value(&[1]),
        );
        assert!(
            cx.abs() < 1e-2 && (cy - 2.0).abs() < 1e-2,
            "C = ({cx}, {cy})"
        );
        assert_eq!(trained.steps, 4000);
        // Along the trained curve the loss stays near 0; the straight line's top is 1.
        let curve_top = (0..=20)
            .map(|i| {
                let [ka, kc, kb] = bezier_coefficients(f64::from(i) / 20.0);
                loss_at(-ka + kc * cx + kb, kc * cy)
            })
            .fold(0.0, f64::max);
        let line_top = (0..=20)
            .map(|i| loss_at(-1.0 + 2.0 * f64::from(i) / 20.0, 0.0))
            .fold(0.0, f64::max);
        assert!(
            curve_top < 1e-3 && line_top == 1.0,
            "{curve_top} {line_top}"
        );
        assert!(trained.last_epoch_loss < 1e-3);
    }

    #[test]
    fn a_diverging_curve_is_one_line_naming_the_learning_rate() {
        let a = Tensor::from_slice(&[-1.0f64, 0.0]);
        let b = Tensor::from_slice(&[1.0f64, 0.0]);
        let settings = CurveSettings {
            epochs: 1,
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
            batch_size: 1,
        };
        let mut bad =
            |_: &Tensor, _: u32, _: u32| Ok((f64::NAN, Tensor::zeros([2], tch::kind::FLOAT_CPU)));
        match train_bend((&a, &b), &settings, 3, 1, &|| false, &mut bad) {
            Err(ProbeError::Invalid(m)) => assert!(m.contains("--curve-lr"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
    }
}
