//! oneDNN's fused convolutions on a CPU, through the C++ shim (onednn/shim.cpp) compiled by
//! build.rs: a convolution's weights reordered once per pass into the layout oneDNN wants,
//! and the ReLU or residual add after it done as the convolution's post-op. Activations stay
//! channels-last (NHWC, strided), so every other operation takes them as they are.
//!
//! With `platform` and the TorchScript shim's door, the one place allowed `unsafe` (see
//! `[lints]` in Cargo.toml). A libtorch without oneDNN, or without the operators, answers
//! [`available`] with false and the layers keep to ATen's convolution.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int};
use std::sync::OnceLock;
use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn vo_free_error(error: *mut c_char);
    fn vo_available() -> c_int;
    fn vo_pack_weight(
        weight: *const C_tensor,
        stride: i64,
        padding: i64,
        groups: i64,
        input_size: *const i64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn vo_conv(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        stride: i64,
        padding: i64,
        groups: i64,
        relu: c_int,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn vo_conv_add(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        other: *const C_tensor,
        stride: i64,
        padding: i64,
        groups: i64,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn vo_affine_relu(
        x: *const C_tensor,
        scale: *const C_tensor,
        shift: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// Whether this libtorch has oneDNN and the fused operators (asked once).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    // SAFETY: takes no arguments and catches every C++ exception itself.
    *AVAILABLE.get_or_init(|| unsafe { vo_available() } != 0)
}

/// Where a convolution sits: its stride, padding and groups (dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
}

/// A tensor the shim returned, or its message. The operators' shapes and layouts are checked
/// by the layers before they call, so a message here is a bug: it panics with it, as tch's
/// own operators do.
fn take(error: *mut c_char, out: *mut C_tensor, what: &str) -> Tensor {
    check(error, what);
    // SAFETY: on success the shim set `out` to a tensor it allocated for us to own.
    unsafe { Tensor::from_ptr(out) }
}

fn check(error: *mut c_char, what: &str) {
    if !error.is_null() {
        // SAFETY: a non-null error is a NUL-terminated string malloc'd by the shim, freed here.
        let text = unsafe { CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned();
        unsafe { vo_free_error(error) };
        panic!("{what}: {text}");
    }
}

fn bias_ptr(bias: Option<&Tensor>) -> *const C_tensor {
    bias.map_or(std::ptr::null(), |b| b.as_ptr())
}

/// `weight` reordered for inputs of `input_size` `[N, C, H, W]`.
pub fn pack_weight(weight: &Tensor, at: Geometry, input_size: [i64; 4]) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointers are live tensors and a 4-element array for the call's length.
    let error = unsafe {
        vo_pack_weight(
            weight.as_ptr(),
            at.stride,
            at.padding,
            at.groups,
            input_size.as_ptr(),
            &mut out,
        )
    };
    take(error, out, "oneDNN weight reorder")
}

/// `relu?(conv(x, weight) + bias)` for a channels-last `x`; the output is channels-last.
pub fn conv(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    at: Geometry,
    relu: bool,
) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointers are live tensors (or null for no bias) for the call's length.
    let error = unsafe {
        vo_conv(
            x.as_ptr(),
            weight.as_ptr(),
            bias_ptr(bias),
            at.stride,
            at.padding,
            at.groups,
            c_int::from(relu),
            &mut out,
        )
    };
    take(error, out, "oneDNN convolution")
}

/// `conv(x, weight) + bias + other` for a channels-last `x` and `other`: accumulated into
/// `other` when this is its only handle and nothing views its storage, else a new tensor.
pub fn conv_add(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    other: Tensor,
    at: Geometry,
) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointers are live tensors (or null for no bias) for the call's length.
    let error = unsafe {
        vo_conv_add(
            x.as_ptr(),
            weight.as_ptr(),
            bias_ptr(bias),
            other.as_ptr(),
            at.stride,
            at.padding,
            at.groups,
            &mut out,
        )
    };
    take(error, out, "oneDNN convolution with add")
}

/// `max(0, x * scale + shift)` per channel for a 4-D float CPU `x`, in one sweep.
pub fn affine_relu(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointers are live tensors for the call's length.
    let error = unsafe { vo_affine_relu(x.as_ptr(), scale.as_ptr(), shift.as_ptr(), &mut out) };
    take(error, out, "affine ReLU")
}

#[cfg(test)]
mod tests {
    use super::{Geometry, available, conv_add, pack_weight};
    use crate::model::fused::channels_last;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn a_residual_sum_is_written_over_the_residual_only_when_nothing_else_sees_it() {
        if !available() {
            // This libtorch or CPU has no fused convolutions: the layers never call them.
            return;
        }
        tch::manual_seed(3);
        let _no_grad = tch::no_grad_guard();
        let opts = (Kind::Float, Device::Cpu);
        let x = channels_last(&Tensor::randn([4, 8, 6, 6], opts));
        let weight = Tensor::randn([8, 8, 3, 3], opts);
        let bias = Tensor::randn([8], opts);
        let residual = channels_last(&Tensor::randn([4, 8, 6, 6], opts));
        let at = Geometry {
            stride: 1,
            padding: 1,
            groups: 1,
        };
        let expected = x.conv2d(&weight, Some(&bias), [1, 1], [1, 1], [1, 1], 1) + &residual;
        let packed = pack_weight(&weight, at, [4, 8, 6, 6]);

        // A second handle sees the residual: it keeps its values.
        let before = residual.copy();
        let sum = conv_add(&x, &packed, Some(&bias), residual.shallow_clone(), at);
        assert!(sum.allclose(&expected, 1e-5, 1e-5, false));
        assert!(residual.equal(&before));
        assert_ne!(sum.data_ptr(), residual.data_ptr());

        // So is another tensor viewing its memory.
        let base = residual.copy();
        let sum = conv_add(&x, &packed, Some(&bias), base.alias(), at);
        assert!(sum.allclose(&expected, 1e-5, 1e-5, false));
        assert!(base.equal(&before));

        // The only handle: the sum takes the residual's memory.
        let unique = residual.copy();
        let place = unique.data_ptr();
        let sum = conv_add(&x, &packed, Some(&bias), unique, at);
        assert!(sum.allclose(&expected, 1e-5, 1e-5, false));
        assert_eq!(sum.data_ptr(), place);
    }
}
