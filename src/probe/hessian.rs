//! The top eigenpair of a Hessian by power iteration with Hessian-vector products (double
//! backward), reusing one gradient graph for every product, as PyHessian does.

use crate::data::rng::{self, Purpose};
use tch::{Kind, Tensor};

/// The result of power iteration.
#[derive(Debug)]
pub struct Eigenpair {
    /// The eigenvalue of largest magnitude.
    pub value: f64,
    /// Its unit eigenvector, flat, restricted to the mask.
    pub vector: Tensor,
    pub iterations: usize,
}

fn flatten(parts: &[Tensor], like: &[Tensor]) -> Tensor {
    let pieces: Vec<Tensor> = parts
        .iter()
        .zip(like)
        .map(|(g, p)| {
            // Gradients of convolutions may come back non-contiguous (channels-last
            // strides): reshape copies where view cannot.
            if g.defined() {
                g.reshape([-1])
            } else {
                p.zeros_like().reshape([-1])
            }
        })
        .collect();
    Tensor::cat(&pieces, 0)
}

/// Power iteration for the Hessian of `loss` with respect to `params` (autograd leaves),
/// restricted to the entries where `mask` is 1. Stops after `iterations` or when the
/// eigenvalue changes by less than `tolerance` (relative).
pub fn top_eigenpair(
    loss: &Tensor,
    params: &[Tensor],
    mask: &Tensor,
    iterations: usize,
    tolerance: f64,
    seed: u64,
) -> Eigenpair {
    let grads = Tensor::run_backward(&[loss], params, true, true);
    let g = flatten(&grads, params);
    let n = g.size()[0] as usize;
    let mut generator = rng::stream(seed, Purpose::Direction, &[u64::MAX]);
    let start: Vec<f32> = (0..n)
        .map(|_| rng::standard_normal(&mut generator) as f32)
        .collect();
    let mut v = Tensor::from_slice(&start).to_device(g.device()) * mask;
    v = &v / v.norm().double_value(&[]).max(1e-30);
    let mut value = 0.0;
    let mut done = 0;
    for i in 0..iterations.max(1) {
        done = i + 1;
        let gv = (&g * &v).sum(Kind::Float);
        let hv_parts = Tensor::run_backward(&[gv], params, true, false);
        let hv = flatten(&hv_parts, params).detach() * mask;
        let next_value = (&hv * &v).sum(Kind::Double).double_value(&[]);
        let length = hv.norm().double_value(&[]);
        if length == 0.0 {
            value = 0.0;
            break;
        }
        v = hv / length;
        let converged =
            i > 0 && (next_value - value).abs() <= tolerance * next_value.abs().max(1e-12);
        value = next_value;
        if converged {
            break;
        }
    }
    Eigenpair {
        value,
        vector: v,
        iterations: done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn power_iteration_finds_the_top_eigenvalue_of_a_known_quadratic() {
        // L(w) = 1/2 w^T A w with A = Q diag(9, 4, 1, 0.5, 0.1) Q^T, Q a random rotation:
        // the Hessian is A, whose top eigenvalue is 9 with eigenvector Q e_1.
        tch::manual_seed(3);
        let (q, _) = Tensor::linalg_qr(
            &Tensor::randn([5, 5], (Kind::Double, Device::Cpu)),
            "reduced",
        );
        let eig = Tensor::from_slice(&[9.0f64, 4.0, 1.0, 0.5, 0.1]);
        let a = (q.matmul(&eig.diag(0)).matmul(&q.tr())).to_kind(Kind::Float);
        let w = Tensor::randn([5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let loss = w.dot(&a.mv(&w)) * 0.5;
        let mask = Tensor::ones([5], (Kind::Float, Device::Cpu));
        let e = top_eigenpair(&loss, std::slice::from_ref(&w), &mask, 100, 1e-6, 1);
        assert!((e.value - 9.0).abs() < 0.09, "eigenvalue {}", e.value);
        let expected = q.select(1, 0).to_kind(Kind::Float);
        let alignment = e.vector.dot(&expected).abs().double_value(&[]);
        assert!(alignment > 0.99, "eigenvector alignment {alignment}");
    }

    #[test]
    fn a_mask_restricts_the_eigenproblem_to_the_chosen_coordinates() {
        // Diagonal Hessian diag(5, 2, 7): with the last coordinate masked out the top
        // eigenvalue of the remaining block is 5.
        let h = Tensor::from_slice(&[5.0f32, 2.0, 7.0]);
        let w = Tensor::ones([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let loss = (&h * &w * &w).sum(Kind::Float) * 0.5;
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 0.0]);
        let e = top_eigenpair(&loss, std::slice::from_ref(&w), &mask, 200, 1e-7, 2);
        assert!((e.value - 5.0).abs() < 0.05, "{}", e.value);
        assert_eq!(e.vector.double_value(&[2]), 0.0);
    }
}
