//! Sharpness on the same footing as the Hessian's numbers: the loss increase under random
//! and under worst-case perturbations scaled per weight, on the job's sample set.

use super::{CurvatureObserver, Job};
use crate::config::curvature::SharpnessScale;
use crate::curvature::Estimate;
use crate::curvature::operator::{self, SampleSet};
use crate::model::Model;
use crate::probe::runner::ProbeError;
use tch::Tensor;

pub(super) type Sharpness = (Option<Estimate>, Vec<f64>, Option<f64>);

/// Average- and worst-case sharpness of perturbations δ = c ⊙ u with c = |w| (adaptive) or
/// the weights' RMS (plain), over the group: the mean loss increase under u ~ N(0, ρ² I)
/// (each weight moved by about ρ of itself), and the largest increase that projected
/// sign-gradient ascent finds with every |u_i| ≤ ρ (no weight moved by more than ρ of
/// itself): the average and the worst case of the same per-weight scale.
pub(super) fn sharpness(
    job: &mut Job,
    centre: &Model,
    set: &SampleSet,
    base_loss: f64,
    [c, s]: [u64; 2],
    observer: &mut dyn CurvatureObserver,
) -> Result<Sharpness, ProbeError> {
    let settings = job.settings;
    if settings.noise_draws == 0 && settings.ascent_steps == 0 {
        return Ok((None, Vec::new(), None));
    }
    let model = job.ctx.scratch;
    let w = centre.flat().shallow_clone();
    let rho = settings.rho;
    let scale = match settings.scale {
        SharpnessScale::Adaptive => w.abs() * &job.mask,
        SharpnessScale::Plain => {
            let norm = (&w * &job.mask).norm().double_value(&[]);
            &job.mask * (norm / (job.dimension as f64).sqrt())
        }
    };
    let place = |u: &Tensor| {
        tch::no_grad(|| {
            model.flat().shallow_clone().copy_(&(&w + &scale * u));
        });
    };
    let mut increases = Vec::with_capacity(settings.noise_draws);
    for d in 0..settings.noise_draws {
        if observer.cancelled() {
            return Err(ProbeError::Cancelled);
        }
        place(&(job.gaussian(&[c, s, 3, d as u64]) * rho));
        increases.push(operator::loss(model, set, job.mode) - base_loss);
    }
    observer.progress(job.done, job.planned, "average-case sharpness");
    let average = crate::stats::mean_interval(&increases)
        .map(|(value, interval)| Estimate { value, interval });

    let worst = if settings.ascent_steps > 0 {
        let mut u = w.zeros_like();
        let mut best = f64::NEG_INFINITY;
        for step in 0..settings.ascent_steps {
            if observer.cancelled() {
                return Err(ProbeError::Cancelled);
            }
            place(&u);
            let (loss, gradient) = operator::loss_and_gradient(model, set, job.mode);
            if step > 0 {
                best = best.max(loss - base_loss);
            }
            // The first step goes to the corner of the box the gradient points at (the
            // linear model's maximum); later ones half as far, clipped back into it.
            let eta = if step == 0 { rho } else { rho / 2.0 };
            u = (u + (&scale * gradient).sign() * eta).clamp(-rho, rho) * &job.mask;
        }
        place(&u);
        best = best.max(operator::loss(model, set, job.mode) - base_loss);
        observer.progress(job.done, job.planned, "worst-case sharpness");
        Some(best)
    } else {
        None
    };
    model.copy_from(centre);
    Ok((average, increases, worst))
}
