//! Hessian eigenvectors at a probe's or a plane's centre: Lanczos on the training loss of the
//! first training samples, with the Hessian-vector products of `curvature::operator`. A line
//! probes one of them; a Hessian plane spans two.

use crate::curvature::lanczos::Lanczos;
use crate::curvature::operator::{HessianOperator, SampleSet};
use crate::data::dataset::{Dataset, DeviceSplit};
use crate::model::{Mode, Model};
use crate::probe::BnMode;
use tch::Tensor;

/// Which loss's Hessian a probe or plane with BN mode `bn` follows: the one its points
/// measure. Frozen statistics are eval mode exactly; statistics recomputed at each point are
/// the population's batch statistics, which batch mode follows (eval mode's Hessian at the
/// centre is an order of magnitude sharper than what recomputed points see: on the quick run
/// λ₁ 144 against a rise of about 1.2 at 0.5 along its eigenvector, λ_eff ≈ 10).
pub fn hessian_mode(bn: BnMode) -> Mode {
    match bn {
        BnMode::Frozen => Mode::Eval,
        BnMode::Batch | BnMode::Recompute => Mode::BatchStats,
    }
}

/// What the eigenvectors are asked of.
pub struct EigenRequest<'a> {
    pub data: &'a Dataset,
    pub train: &'a DeviceSplit,
    /// The first `samples` of `train`, in one batch.
    pub samples: usize,
    pub bn: BnMode,
    /// 0/1 over the flat parameters: the group the eigenvectors live in.
    pub mask: &'a Tensor,
    pub seed: u64,
    /// Lanczos steps at most; it stops once the deepest eigenvector asked for has converged.
    pub steps: usize,
}

/// Eigenpairs of the Hessian (largest first) found at a model's weights.
pub struct Eigenpairs {
    /// The k largest eigenvalues.
    pub values: Vec<f64>,
    /// Their unit eigenvectors, one row each, zero outside the group.
    pub vectors: Tensor,
    /// Lanczos steps (Hessian-vector products) taken.
    pub steps: usize,
}

impl Eigenpairs {
    /// The `k`-th eigenvector (1: the top one), flat.
    pub fn vector(&self, k: usize) -> Tensor {
        self.vectors.get((k - 1) as i64)
    }
}

/// The top `k` eigenpairs of the Hessian at `model`'s weights (which must not change meanwhile).
/// The start vector is a seeded Gaussian, so that the same request finds the same vectors.
pub fn top(model: &Model, request: &EigenRequest, k: usize) -> Eigenpairs {
    let n = request.samples.min(request.train.len).max(1);
    // Differentiated twice, so the layer-by-layer pass (the fast one's fused operators have no
    // backward).
    let set = SampleSet::new(request.data, &request.train.head(n), n);
    let op = HessianOperator::new(model, &set, hessian_mode(request.bn), request.mask);
    let mut generator = crate::data::rng::stream(
        request.seed,
        crate::data::rng::Purpose::Direction,
        &[u64::MAX],
    );
    let start: Vec<f32> = (0..request.mask.size()[0])
        .map(|_| crate::data::rng::standard_normal(&mut generator) as f32)
        .collect();
    let start = Tensor::from_slice(&start).to_device(request.mask.device());
    let mut lanczos = Lanczos::new(&(&start * request.mask), request.steps.max(k + 1));
    while lanczos.can_step() && !lanczos.converged(k, 1e-3) {
        lanczos.step(&op.apply(&lanczos.current()));
    }
    let pairs = lanczos.top_pairs(k);
    Eigenpairs {
        values: pairs.values,
        vectors: pairs.vectors * request.mask.unsqueeze(0),
        steps: lanczos.steps(),
    }
}
