//! The Hessian of the training loss on a fixed sample set, as an operator: Hessian-vector
//! products by double backward through the gradient's graph, which is built once per set and
//! kept, so that a product costs one backward pass through it and memory stays flat however
//! many products follow.
//!
//! The loss is the mean over the set, taken in near-equal batches: with batch statistics
//! each batch normalises over itself, as in training; in eval mode the batches change
//! nothing but memory.

use crate::config::curvature::CurvatureBn;
use crate::data::dataset::{Dataset, DeviceSplit};
use crate::model::{Mode, Model, with_second_derivatives};
use std::cell::Cell;
use tch::{Kind, Reduction, Tensor};

/// A sample set cut into near-equal batches (so that none is a runt whose batch statistics
/// mean nothing), each with its share of the mean.
pub struct SampleSet {
    batches: Vec<(Tensor, Tensor)>,
    shares: Vec<f64>,
    pub len: usize,
}

impl SampleSet {
    pub fn new(data: &Dataset, split: &DeviceSplit, batch: usize) -> Self {
        let n = split.len;
        let count = n.div_ceil(batch.max(1)).max(1);
        let mut batches = Vec::with_capacity(count);
        let mut shares = Vec::with_capacity(count);
        let mut start = 0;
        for i in 0..count {
            let len = n / count + usize::from(i < n % count);
            batches.push(data.eval_batch(split, start as i64, len as i64));
            shares.push(len as f64 / n as f64);
            start += len;
        }
        Self {
            batches,
            shares,
            len: n,
        }
    }
}

/// The forward mode of the loss: batch statistics (without touching the running ones) or
/// the checkpoint's. Eval mode folds each BN that follows a convolution into it, as part of
/// the graph (the BN's parameters keep their derivatives): the double backward then runs
/// through weight-sized products instead of the BN's activation-sized ones.
pub fn mode(bn: CurvatureBn) -> Mode {
    match bn {
        CurvatureBn::Batch => Mode::BatchStats,
        CurvatureBn::Eval => Mode::Eval,
    }
}

fn batch_loss(model: &Model, (x, y): &(Tensor, Tensor), mode: Mode) -> Tensor {
    let logits = model.forward(x, mode);
    model
        .objective()
        .loss_and_correct(&logits, y, Reduction::Mean)
        .0
}

/// Flattens per-parameter derivatives into one vector (zeros where a parameter does not
/// reach the loss). Derivatives of convolutions may come back non-contiguous: reshape
/// copies where view cannot.
fn flatten(parts: &[Tensor], model: &Model) -> Tensor {
    let pieces: Vec<Tensor> = parts
        .iter()
        .zip(model.params())
        .map(|(g, info)| {
            if g.defined() {
                g.reshape([-1])
            } else {
                Tensor::zeros([info.numel], (Kind::Float, model.flat().device()))
            }
        })
        .collect();
    Tensor::cat(&pieces, 0)
}

/// The loss on `set` at the model's current weights, without gradients.
pub fn loss(model: &Model, set: &SampleSet, mode: Mode) -> f64 {
    tch::no_grad(|| {
        set.batches
            .iter()
            .zip(&set.shares)
            .map(|(batch, share)| share * batch_loss(model, batch, mode).double_value(&[]))
            .sum()
    })
}

/// The loss on `set` and its gradient (flat, over every parameter) at the model's current
/// weights: one forward and backward pass.
pub fn loss_and_gradient(model: &Model, set: &SampleSet, mode: Mode) -> (f64, Tensor) {
    let mut total = 0.0;
    let mut gradient = model.flat().zeros_like();
    for (batch, share) in set.batches.iter().zip(&set.shares) {
        let loss = batch_loss(model, batch, mode);
        total += share * loss.double_value(&[]);
        let parts = Tensor::run_backward(&[&loss], model.param_handles(), false, false);
        gradient += flatten(&parts, model) * *share;
    }
    (total, gradient)
}

/// The Hessian of the loss on a sample set at the model's weights, restricted to a group of
/// parameters (a 0/1 mask): `apply(v)` is `P H P v`. The model's weights must not change
/// while it lives (its graph holds them).
pub struct HessianOperator<'a> {
    model: &'a Model,
    gradients: Vec<Tensor>,
    shares: Vec<f64>,
    mask: Tensor,
    /// The loss on the set at these weights.
    pub loss: f64,
    products: Cell<usize>,
}

impl<'a> HessianOperator<'a> {
    /// Builds the gradient's graph on every batch of `set`: one forward and one backward
    /// pass that keeps its graph, whose convolutions and batch norms have second derivatives
    /// cheaper than ATen's (see `model::with_second_derivatives`).
    pub fn new(model: &'a Model, set: &SampleSet, mode: Mode, mask: &Tensor) -> Self {
        let mut gradients = Vec::with_capacity(set.batches.len());
        let mut total = 0.0;
        for (batch, share) in set.batches.iter().zip(&set.shares) {
            let (loss, parts) = with_second_derivatives(|| {
                let loss = batch_loss(model, batch, mode);
                let parts = Tensor::run_backward(&[&loss], model.param_handles(), true, true);
                (loss, parts)
            });
            total += share * loss.double_value(&[]);
            gradients.push(flatten(&parts, model));
        }
        Self {
            model,
            gradients,
            shares: set.shares.clone(),
            mask: mask.shallow_clone(),
            loss: total,
            products: Cell::new(0),
        }
    }

    /// `P H P v` for a flat vector `v` (float, on the model's device).
    pub fn apply(&self, v: &Tensor) -> Tensor {
        let v = v * &self.mask;
        let mut out = v.zeros_like();
        for (g, share) in self.gradients.iter().zip(&self.shares) {
            let gv = (g * &v).sum(Kind::Float);
            let parts = Tensor::run_backward(&[gv], self.model.param_handles(), true, false);
            out += flatten(&parts, self.model) * *share;
        }
        self.products.set(self.products.get() + 1);
        out * &self.mask
    }

    /// Products computed so far.
    pub fn products(&self) -> usize {
        self.products.get()
    }

    pub fn mask(&self) -> &Tensor {
        &self.mask
    }
}
