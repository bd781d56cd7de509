//! The loss a model is trained with and measured by: per batch, and per stacked copy of a
//! model (several probe points in one forward pass).

use tch::{Kind, Reduction, Tensor};

/// The loss a model is trained with, chosen by its number of outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Softmax cross-entropy over classes.
    CrossEntropy,
    /// Sigmoid + binary cross-entropy on a single logit (the toy).
    Logistic,
}

impl Objective {
    /// Summed loss and number of correct predictions, as device scalars.
    pub fn loss_and_correct(
        self,
        logits: &Tensor,
        y: &Tensor,
        reduction: Reduction,
    ) -> (Tensor, Tensor) {
        match self {
            Self::CrossEntropy => {
                let loss = logits.cross_entropy_loss::<Tensor>(y, None, reduction, -100, 0.0);
                let correct = logits.argmax(-1, false).eq_tensor(y).sum(Kind::Int64);
                (loss, correct)
            }
            Self::Logistic => {
                let logit = logits.view([-1]);
                let target = y.to_kind(Kind::Float);
                let loss = logit
                    .binary_cross_entropy_with_logits::<Tensor>(&target, None, None, reduction);
                let correct = logit
                    .gt(0.0)
                    .eq_tensor(&y.to_kind(Kind::Bool))
                    .sum(Kind::Int64);
                (loss, correct)
            }
        }
    }
}

impl Objective {
    /// Per-sample losses `[k, N]` and correct counts `[k]` of each of `k` stacked copies
    /// (logits `[N, k * C]` or, for the single-logit toy, `[N, k]`), as device tensors.
    pub fn losses_and_correct_per_copy(
        self,
        logits: &Tensor,
        y: &Tensor,
        k: i64,
    ) -> (Tensor, Tensor) {
        let n = logits.size()[0];
        let per_copy = logits.view([n, k, -1]).transpose(0, 1); // [k, N, C]
        let ys = y.unsqueeze(0).expand([k, n], false);
        match self {
            Self::CrossEntropy => {
                let c = per_copy.size()[2];
                let flat = per_copy.reshape([k * n, c]);
                let loss = flat
                    .cross_entropy_loss::<Tensor>(
                        &ys.reshape([-1]),
                        None,
                        Reduction::None,
                        -100,
                        0.0,
                    )
                    .view([k, n]);
                let correct = per_copy.argmax(-1, false).eq_tensor(&ys).sum_dim_intlist(
                    [1i64].as_slice(),
                    false,
                    Kind::Int64,
                );
                (loss, correct)
            }
            Self::Logistic => {
                let logit = per_copy.reshape([k, n]);
                let target = ys.to_kind(Kind::Float);
                let loss = logit.binary_cross_entropy_with_logits::<Tensor>(
                    &target,
                    None,
                    None,
                    Reduction::None,
                );
                let correct = logit
                    .gt(0.0)
                    .eq_tensor(&ys.to_kind(Kind::Bool))
                    .sum_dim_intlist([1i64].as_slice(), false, Kind::Int64);
                (loss, correct)
            }
        }
    }
}
