//! Lanczos iteration with full reorthogonalisation for a symmetric operator given by its
//! products: the top Ritz pairs with their residual bounds, and Gauss quadrature nodes and
//! weights (stochastic Lanczos quadrature). The Krylov basis is allocated whole up front, so
//! memory does not grow with the steps.

use tch::{Device, Kind, Tensor};

/// A Lanczos run in progress: the basis and the tridiagonal matrix's entries so far.
pub struct Lanczos {
    basis: Tensor,
    alphas: Vec<f64>,
    betas: Vec<f64>,
    /// True once the Krylov space is invariant (the last β vanished): the Ritz values are
    /// then eigenvalues.
    pub exhausted: bool,
}

/// The top Ritz pairs of a run.
pub struct RitzPairs {
    /// Largest first.
    pub values: Vec<f64>,
    /// Rows: unit vectors, in the same order.
    pub vectors: Tensor,
    /// |H x - θ x| for each: θ lies within it of an eigenvalue of H.
    pub residuals: Vec<f64>,
}

impl Lanczos {
    /// Starts from `start` (any non-zero vector; normalised here), with room for `steps`.
    pub fn new(start: &Tensor, steps: usize) -> Self {
        let n = start.size()[0];
        let basis = Tensor::zeros([steps as i64 + 1, n], (Kind::Float, start.device()));
        let norm = start.norm().double_value(&[]);
        basis.get(0).copy_(&(start / norm.max(1e-30)));
        Self {
            basis,
            alphas: Vec::with_capacity(steps),
            betas: Vec::with_capacity(steps),
            exhausted: norm == 0.0,
        }
    }

    pub fn steps(&self) -> usize {
        self.alphas.len()
    }

    /// Room left for another step.
    pub fn can_step(&self) -> bool {
        !self.exhausted && (self.alphas.len() as i64) < self.basis.size()[0] - 1
    }

    /// One step with the product `hv = H v_j` of the current vector ([`Lanczos::current`]).
    pub fn step(&mut self, hv: &Tensor) {
        let j = self.alphas.len() as i64;
        let v = self.basis.get(j);
        let alpha = hv.dot(&v).double_value(&[]);
        self.alphas.push(alpha);
        // Against every basis vector, twice ("twice is enough", Parlett): the three-term
        // recurrence alone loses orthogonality as Ritz values converge.
        let kept = self.basis.narrow(0, 0, j + 1);
        let mut w = hv.copy();
        for _ in 0..2 {
            let coefficients = kept.mv(&w);
            w -= kept.tr().mv(&coefficients);
        }
        let beta = w.norm().double_value(&[]);
        // Relative to the operator's scale seen so far: below it, w is rounding noise.
        let scale = self.alphas.iter().map(|a| a.abs()).fold(0.0, f64::max)
            + self.betas.iter().fold(0.0, |m: f64, b| m.max(*b));
        if beta <= 1e-6 * scale.max(1e-30) {
            self.exhausted = true;
            self.betas.push(0.0);
            return;
        }
        self.betas.push(beta);
        self.basis.get(j + 1).copy_(&(w / beta));
    }

    /// The vector whose product the next step needs.
    pub fn current(&self) -> Tensor {
        self.basis.get(self.alphas.len() as i64)
    }

    /// Eigenvalues (ascending) and eigenvectors (columns) of the tridiagonal matrix, in
    /// double precision on the CPU.
    fn tridiagonal_eigen(&self) -> (Vec<f64>, Tensor) {
        let m = self.alphas.len();
        let mut t = vec![0.0f64; m * m];
        for i in 0..m {
            t[i * m + i] = self.alphas[i];
            if i + 1 < m {
                t[i * m + i + 1] = self.betas[i];
                t[(i + 1) * m + i] = self.betas[i];
            }
        }
        let t = Tensor::from_slice(&t).view([m as i64, m as i64]);
        let (values, vectors) = t.linalg_eigh("L");
        let values = Vec::<f64>::try_from(&values).unwrap_or_default();
        (values, vectors)
    }

    /// The `k` largest Ritz values and their residual bounds (no vectors): cheap, for
    /// checking convergence after each step.
    pub fn top_values(&self, k: usize) -> (Vec<f64>, Vec<f64>) {
        let m = self.alphas.len();
        if m == 0 {
            return (Vec::new(), Vec::new());
        }
        let (values, vectors) = self.tridiagonal_eigen();
        let last_beta = self.betas.last().copied().unwrap_or(0.0);
        let k = k.min(m);
        let mut top = Vec::with_capacity(k);
        let mut residuals = Vec::with_capacity(k);
        for i in (m - k..m).rev() {
            top.push(values[i]);
            residuals.push(last_beta * vectors.double_value(&[m as i64 - 1, i as i64]).abs());
        }
        (top, residuals)
    }

    /// True when each of the top `k` Ritz values is within `tolerance` (relative to the
    /// largest in size) of an eigenvalue.
    pub fn converged(&self, k: usize, tolerance: f64) -> bool {
        if self.exhausted {
            return true;
        }
        if self.alphas.len() < k {
            return false;
        }
        let (values, residuals) = self.top_values(k);
        let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
        residuals.iter().all(|r| *r <= tolerance * scale)
    }

    /// The top `k` Ritz pairs.
    pub fn top_pairs(&self, k: usize) -> RitzPairs {
        let m = self.alphas.len();
        let (values, residuals) = self.top_values(k);
        let (_, s) = self.tridiagonal_eigen();
        let k = values.len() as i64;
        // Columns m-1, m-2, …: the largest first.
        let index = Tensor::arange_start_step(
            m as i64 - 1,
            m as i64 - 1 - k,
            -1,
            (Kind::Int64, Device::Cpu),
        );
        let coefficients = s
            .index_select(1, &index)
            .to_kind(Kind::Float)
            .to_device(self.basis.device());
        let vectors = coefficients.tr().matmul(&self.basis.narrow(0, 0, m as i64));
        RitzPairs {
            values,
            vectors,
            residuals,
        }
    }

    /// The Gauss quadrature of the start vector's spectral measure: every Ritz value with
    /// the squared first component of its eigenvector (weights summing to 1).
    pub fn quadrature(&self) -> (Vec<f64>, Vec<f64>) {
        if self.alphas.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let (values, s) = self.tridiagonal_eigen();
        let first = Vec::<f64>::try_from(&s.get(0).square()).unwrap_or_default();
        let total: f64 = first.iter().sum();
        (
            values,
            first.iter().map(|w| w / total.max(1e-300)).collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric matrix with the given eigenvalues in a random basis, as an operator.
    fn known(eigenvalues: &[f64], seed: i64) -> (Tensor, Tensor) {
        tch::manual_seed(seed);
        let n = eigenvalues.len() as i64;
        let (q, _) = Tensor::linalg_qr(
            &Tensor::randn([n, n], (Kind::Double, Device::Cpu)),
            "reduced",
        );
        let a = q
            .matmul(&Tensor::from_slice(eigenvalues).diag(0))
            .matmul(&q.tr());
        (a.to_kind(Kind::Float), q)
    }

    #[test]
    fn the_top_eigenpairs_of_a_known_matrix() {
        // 200 eigenvalues: 50, 20, 10, then a bulk in [-1, 1].
        let mut eig = vec![50.0, 20.0, 10.0];
        eig.extend((0..197).map(|i| -1.0 + 2.0 * i as f64 / 196.0));
        let (a, q) = known(&eig, 5);
        let start = Tensor::ones([200], (Kind::Float, Device::Cpu));
        let mut lanczos = Lanczos::new(&start, 80);
        while lanczos.can_step() && !lanczos.converged(3, 1e-6) {
            let hv = a.mv(&lanczos.current());
            lanczos.step(&hv);
        }
        assert!(
            lanczos.steps() < 80,
            "converged in {} steps",
            lanczos.steps()
        );
        let pairs = lanczos.top_pairs(3);
        for (i, expected) in [50.0, 20.0, 10.0].into_iter().enumerate() {
            let got = pairs.values[i];
            assert!(
                (got - expected).abs() < 1e-4 * expected,
                "{got} vs {expected}"
            );
            assert!(pairs.residuals[i] < 1e-4 * 50.0);
            let truth = q.select(1, i as i64).to_kind(Kind::Float);
            let cos = pairs
                .vectors
                .get(i as i64)
                .dot(&truth)
                .abs()
                .double_value(&[]);
            assert!(cos > 0.9999, "eigenvector {i}: |cos| {cos}");
        }
    }

    #[test]
    fn quadrature_weights_are_the_start_vectors_spectral_measure() {
        // Diagonal: the start vector e = (1,…,1)/√n has weight 1/n on each eigenvalue; with n
        // steps the quadrature is exact.
        let eig = [4.0, 3.0, 2.0, 1.0, 0.5];
        let a = Tensor::from_slice(&eig).to_kind(Kind::Float).diag(0);
        let start = Tensor::ones([5], (Kind::Float, Device::Cpu));
        let mut lanczos = Lanczos::new(&start, 5);
        while lanczos.can_step() {
            let hv = a.mv(&lanczos.current());
            lanczos.step(&hv);
        }
        let (nodes, weights) = lanczos.quadrature();
        assert_eq!(nodes.len(), 5);
        for (node, weight) in nodes.iter().zip(&weights) {
            assert!(eig.iter().any(|e| (e - node).abs() < 1e-4), "{node}");
            assert!((weight - 0.2).abs() < 1e-4, "{weight}");
        }
    }

    #[test]
    fn an_invariant_subspace_ends_the_run_exactly() {
        // The start vector lies in a 2-dimensional eigenspace: two steps and done.
        let a = Tensor::from_slice(&[3.0f32, 1.0, 5.0, 5.0]).diag(0);
        let start = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0]);
        let mut lanczos = Lanczos::new(&start, 4);
        while lanczos.can_step() {
            let hv = a.mv(&lanczos.current());
            lanczos.step(&hv);
        }
        assert!(lanczos.exhausted);
        assert_eq!(lanczos.steps(), 2);
        let (values, residuals) = lanczos.top_values(2);
        assert!((values[0] - 3.0).abs() < 1e-5 && (values[1] - 1.0).abs() < 1e-5);
        assert!(residuals.iter().all(|r| *r == 0.0));
    }
}
