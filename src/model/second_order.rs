//! The operators of graphs that are differentiated twice (Hessian-vector products), through
//! the C++ shims in second_order/: the convolution, the batch norm with batch statistics,
//! eval mode's batch norm as one affine map per channel, and the ReLU. Each one's backward is
//! an autograd function of its own whose derivative is cheaper than ATen's: the convolution's
//! is made of convolutions and their first backward passes (ATen's takes one term as a
//! convolution with an image-sized kernel over copied transposes), the batch norm's of five
//! per-channel means and two sweeps (ATen's of some thirty operators), the affine map's of
//! three sweeps (ATen's of six and two adds), and the ReLU's writes no zeros for its output.
//! Only graphs built inside [`with_second_derivatives`] use them; everywhere else (training,
//! first derivatives, no graph) each is ATen's operator as it was, except that a 1×1
//! convolution of stride > 1 on a CPU is always taken over the subsampled input (oneDNN's
//! strided kernels take several times as long per operation).
//!
//! With `onednn`, `platform` and the TorchScript shim's door, a place allowed `unsafe`.
#![allow(unsafe_code)]

use super::onednn::take;
use std::ffi::{c_char, c_int};
use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn so_set_second_order(on: c_int) -> c_int;
    fn so_conv2d(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        stride: i64,
        padding: i64,
        groups: i64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn so_batch_norm(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        eps: f64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn so_relu(x: *const C_tensor, out: *mut *mut C_tensor) -> *mut c_char;
    fn so_affine(
        x: *const C_tensor,
        scale: *const C_tensor,
        shift: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// Runs `f` with the operators of this module that it builds recorded with our second
/// derivatives, for a graph that will be differentiated twice. Elsewhere (training, first
/// derivatives, no graph) they are ATen's.
pub fn with_second_derivatives<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: sets a thread-local flag; no pointers.
            unsafe { so_set_second_order(self.0) };
        }
    }
    // SAFETY: as above.
    let _restore = Restore(unsafe { so_set_second_order(1) });
    f()
}

/// Batch norm over dimension 1 with the batch's statistics (no running ones).
pub fn batch_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointers are live tensors for the call's length.
    let error = unsafe { so_batch_norm(x.as_ptr(), weight.as_ptr(), bias.as_ptr(), eps, &mut out) };
    take(error, out, "batch norm")
}

/// `relu(x)`, out of place.
pub fn relu(x: &Tensor) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointer is a live tensor for the call's length.
    let error = unsafe { so_relu(x.as_ptr(), &mut out) };
    take(error, out, "relu")
}

/// `x * scale + shift` with one scale and shift per channel (dimension 1).
pub fn affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointers are live tensors for the call's length.
    let error = unsafe { so_affine(x.as_ptr(), scale.as_ptr(), shift.as_ptr(), &mut out) };
    take(error, out, "affine map")
}

/// `conv(x, weight) + bias` with square stride and padding, dilation 1.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: i64,
    padding: i64,
    groups: i64,
) -> Tensor {
    let mut out = std::ptr::null_mut();
    let bias = bias.map_or(std::ptr::null(), |b| b.as_ptr());
    // SAFETY: the pointers are live tensors (or null for no bias) for the call's length.
    let error = unsafe {
        so_conv2d(
            x.as_ptr(),
            weight.as_ptr(),
            bias,
            stride,
            padding,
            groups,
            &mut out,
        )
    };
    take(error, out, "convolution")
}

#[cfg(test)]
mod tests {
    use super::{affine, batch_norm, conv2d, relu, with_second_derivatives};
    use tch::{Device, Kind, Tensor};

    /// The loss of a two-layer net (sin ∘ conv ∘ tanh ∘ conv), with our convolution or ATen's.
    fn loss(params: &[Tensor], x: &Tensor, ours: bool, at: (i64, i64, i64)) -> Tensor {
        let (stride, padding, groups) = at;
        let conv = |x: &Tensor, w: &Tensor, b: Option<&Tensor>, s: i64, p: i64, g: i64| {
            if ours {
                conv2d(x, w, b, s, p, g)
            } else {
                x.conv2d(w, b, [s, s], [p, p], [1, 1], g)
            }
        };
        let hidden = conv(x, &params[0], Some(&params[1]), 1, 1, 1).tanh();
        let bias = params.get(3);
        conv(&hidden, &params[2], bias, stride, padding, groups)
            .sin()
            .sum(Kind::Double)
    }

    /// Each flat derivative of `y` with respect to `params`, keeping its graph.
    fn derivative(y: &Tensor, params: &[Tensor]) -> Tensor {
        let parts = Tensor::run_backward(&[y], params, true, true);
        Tensor::cat(
            &parts.iter().map(|p| p.reshape([-1])).collect::<Vec<_>>(),
            0,
        )
    }

    /// Gradients, a Hessian-vector product and a third derivative of `loss(true)` (ours,
    /// its graph built for second derivatives) against those of `loss(false)`, along the same
    /// random directions, each within `tolerance` of the reference's largest entry.
    fn assert_orders_agree(
        params: &[Tensor],
        loss: impl Fn(bool) -> Tensor,
        tolerance: f64,
        label: &str,
    ) {
        let kind = params[0].kind();
        let count: i64 = params.iter().map(Tensor::numel).sum::<usize>() as i64;
        let v = Tensor::randn([count], (kind, Device::Cpu));
        let u = Tensor::randn([count], (kind, Device::Cpu));
        let orders = |ours: bool| {
            let g = with_second_derivatives(|| derivative(&loss(ours), params));
            let hv = derivative(&(&g * &v).sum(kind), params);
            let third = derivative(&(&hv * &u).sum(kind), params);
            [g, hv, third]
        };
        let (ours, reference) = (orders(true), orders(false));
        let names = ["gradient", "Hessian-vector product", "third derivative"];
        for ((name, a), b) in names.iter().zip(&ours).zip(&reference) {
            let scale = b.abs().max().double_value(&[]);
            let gap = (a - b).abs().max().double_value(&[]);
            assert!(
                scale > 1e-3 && gap <= tolerance * scale,
                "{label}: {name} differs by {gap:e} of {scale:e}"
            );
        }
    }

    /// Hessian-vector products and a third derivative through our convolution equal those
    /// through ATen's own double backward, for strides, paddings, groups (a stacked model's
    /// layers) and layers with and without a bias. The input of the second layer needs its
    /// gradient, the first layer's does not.
    #[test]
    fn its_second_and_third_derivatives_are_atens() {
        for (kind, tolerance) in [(Kind::Double, 1e-10), (Kind::Float, 2e-4)] {
            // The 1×1 kernels of stride > 1 run over the subsampled input.
            for (at, kernel, bias) in [
                ((1, 1, 1), 3, true),
                ((2, 1, 2), 3, false),
                ((1, 0, 2), 3, true),
                ((2, 0, 1), 3, false),
                ((2, 0, 1), 1, true),
                ((3, 0, 2), 1, false),
            ] {
                tch::manual_seed(3);
                let opts = (kind, Device::Cpu);
                let x = Tensor::randn([3, 4, 7, 7], opts);
                let mut params = vec![
                    Tensor::randn([4, 4, 3, 3], opts) * 0.3,
                    Tensor::randn([4], opts) * 0.1,
                    Tensor::randn([6, 4 / at.2, kernel, kernel], opts) * 0.3,
                ];
                if bias {
                    params.push(Tensor::randn([6], opts) * 0.1);
                }
                let params: Vec<Tensor> = params
                    .into_iter()
                    .map(|p| p.set_requires_grad(true))
                    .collect();
                let label = format!("{kind:?} {at:?} kernel {kernel} bias {bias}");
                assert_orders_agree(
                    &params,
                    |ours| loss(&params, &x, ours, at),
                    tolerance,
                    &label,
                );
            }
        }
    }

    /// The loss of sin ∘ bn ∘ (x·A) with batch statistics, by our batch norm or by its
    /// definition in element-wise operators (ATen's `batch_norm` takes the statistics as
    /// constants in its third derivative); `x` [N, C, rest...] is mixed over channels by A so
    /// that the batch norm's input has a gradient.
    fn bn_loss(params: &[Tensor], x: &Tensor, ours: bool) -> Tensor {
        let (mix, gamma, beta) = (&params[0], &params[1], &params[2]);
        let mixed = x.movedim(1, -1).matmul(mix).movedim(-1, 1);
        let y = if ours {
            batch_norm(&mixed, gamma, beta, 1e-5)
        } else {
            let dims: Vec<i64> = (0..mixed.dim() as i64).filter(|&d| d != 1).collect();
            let mut shape = vec![1i64; mixed.dim()];
            shape[1] = -1;
            let mean = mixed.mean_dim(dims.as_slice(), true, mixed.kind());
            let var = mixed.var_correction(dims.as_slice(), 0, true);
            (&mixed - mean) * (var + 1e-5).rsqrt() * gamma.view(shape.as_slice())
                + beta.view(shape.as_slice())
        };
        (y.sin() * (&y + 0.5)).sum(y.kind())
    }

    /// Batch norm's derivatives to the third, over images and over features (an MLP's), with
    /// a γ far from 1 and a shifted, scaled input, so that no term of them hides.
    #[test]
    fn the_batch_norms_derivatives_to_the_third_are_its_definitions() {
        for (kind, tolerance) in [(Kind::Double, 1e-9), (Kind::Float, 5e-4)] {
            for shape in [vec![6, 3, 4, 5], vec![10, 3]] {
                tch::manual_seed(11);
                let opts = (kind, Device::Cpu);
                let x = Tensor::randn(shape.as_slice(), opts) * 2.0 + 0.7;
                let params: Vec<Tensor> = [
                    Tensor::eye(3, opts) + Tensor::randn([3, 3], opts) * 0.3,
                    Tensor::randn([3], opts) * 0.5 + 1.5,
                    Tensor::randn([3], opts) * 0.5,
                ]
                .into_iter()
                .map(|p| p.set_requires_grad(true))
                .collect();
                let label = format!("{kind:?} {shape:?}");
                assert_orders_agree(
                    &params,
                    |ours| bn_loss(&params, &x, ours),
                    tolerance,
                    &label,
                );
            }
        }
    }

    /// Without a graph to record it is ATen's convolution, and records nothing.
    #[test]
    fn without_a_graph_it_records_nothing() {
        let x = Tensor::randn([2, 3, 5, 5], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = tch::no_grad(|| conv2d(&x, &w, None, 1, 1, 1));
        assert!(!y.requires_grad());
        let want = x.conv2d(&w, None::<&Tensor>, [1, 1], [1, 1], [1, 1], 1);
        assert!(y.allclose(&want, 0.0, 0.0, false));
        let scale = Tensor::from_slice(&[1.5f32, -2.0, 0.5]);
        let shift = Tensor::from_slice(&[0.1f32, 0.0, -3.0]);
        let y = tch::no_grad(|| affine(&x, &scale, &shift));
        let want = &x * scale.view([1, -1, 1, 1]) + shift.view([1, -1, 1, 1]);
        assert!(y.allclose(&want, 1e-6, 1e-6, false));
        assert!(tch::no_grad(|| relu(&x)).equal(&x.relu()));
    }

    /// A 1×1 convolution of stride 2 or 3, taken over the subsampled input, gives ATen's values
    /// and first derivatives, on inputs whose sides the stride does and does not divide.
    #[test]
    fn a_strided_pointwise_convolution_is_atens() {
        for (stride, side) in [(2, 8), (2, 7), (3, 7)] {
            let opts = (Kind::Double, Device::Cpu);
            let x = Tensor::randn([2, 3, side, side], opts).set_requires_grad(true);
            let w = Tensor::randn([4, 3, 1, 1], opts).set_requires_grad(true);
            let b = Tensor::randn([4], opts).set_requires_grad(true);
            let ours = conv2d(&x, &w, Some(&b), stride, 0, 1);
            let theirs = x.conv2d(&w, Some(&b), [stride, stride], [0, 0], [1, 1], 1);
            assert_eq!(ours.size(), theirs.size());
            assert!(ours.allclose(&theirs, 1e-12, 1e-12, false));
            let g = Tensor::randn(theirs.size().as_slice(), opts);
            let params = [&x, &w, &b];
            let a = Tensor::run_backward(&[(&ours * &g).sum(Kind::Double)], &params, false, false);
            let t =
                Tensor::run_backward(&[(&theirs * &g).sum(Kind::Double)], &params, false, false);
            for (a, t) in a.iter().zip(&t) {
                assert!(
                    a.allclose(t, 1e-12, 1e-12, false),
                    "stride {stride} side {side}"
                );
            }
        }
    }

    /// The loss of sin ∘ affine ∘ relu ∘ (x·A): a per-channel scale and shift after a ReLU,
    /// ours or ATen's, whose inputs all have derivatives.
    fn affine_relu_loss(params: &[Tensor], x: &Tensor, ours: bool) -> Tensor {
        let (mix, scale, shift) = (&params[0], &params[1], &params[2]);
        let mixed = x.movedim(1, -1).matmul(mix).movedim(-1, 1);
        let y = if ours {
            affine(&relu(&mixed), scale, shift)
        } else {
            let mut shape = vec![1i64; mixed.dim()];
            shape[1] = -1;
            shift
                .view(shape.as_slice())
                .addcmul(&mixed.relu(), &scale.view(shape.as_slice()))
        };
        y.sin().sum(Kind::Double)
    }

    /// Gradients, Hessian-vector products and third derivatives through our ReLU and affine
    /// map equal ATen's, on 2-D and 4-D inputs.
    #[test]
    fn the_relu_and_the_affine_map_have_atens_derivatives() {
        for (kind, tolerance) in [(Kind::Double, 1e-10), (Kind::Float, 2e-4)] {
            for size in [vec![6, 5], vec![3, 5, 4, 4]] {
                tch::manual_seed(5);
                let opts = (kind, Device::Cpu);
                let x = Tensor::randn(size.as_slice(), opts);
                let params: Vec<Tensor> = [
                    Tensor::randn([5, 5], opts) * 0.5,
                    Tensor::randn([5], opts),
                    Tensor::randn([5], opts) * 0.1,
                ]
                .into_iter()
                .map(|p| p.set_requires_grad(true))
                .collect();
                assert_orders_agree(
                    &params,
                    |ours| affine_relu_loss(&params, &x, ours),
                    tolerance,
                    &format!("{kind:?} {size:?}"),
                );
            }
        }
    }
}
