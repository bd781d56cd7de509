//! oneDNN's fused convolutions on a CPU, through the C++ shim (onednn/shim.cpp) compiled by
//! build.rs: a convolution's weights reordered once per pass into the layout oneDNN wants,
//! and the ReLU or residual add after it done as the convolution's post-op. Activations stay
//! channels-last (NHWC, strided), so every other operation takes them as they are. 3x3
//! layers with 16 output channels and at most 16 input channels (the stems and first stages
//! of the SWA papers' ResNets), which oneDNN runs at its lowest throughput, run our own
//! direct convolution instead (onednn/direct.cpp) on CPUs with AVX-512.
//!
//! With `platform`, `second_order` and the TorchScript shim's door, a place allowed `unsafe` (see
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
    fn vo_direct_available() -> c_int;
    fn vo_direct_pack(weight: *const C_tensor, out: *mut *mut C_tensor) -> *mut c_char;
    fn vo_direct_conv(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        other: *const C_tensor,
        relu: c_int,
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
pub(super) fn take(error: *mut c_char, out: *mut C_tensor, what: &str) -> Tensor {
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

/// Whether this CPU runs our direct convolution (onednn/direct.cpp): 3x3, stride 1, padding 1,
/// one group, 16 output channels and at most 16 input channels, where it is faster than
/// oneDNN's (asked once).
pub fn direct_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    // SAFETY: takes no arguments and throws nothing.
    *AVAILABLE.get_or_init(|| unsafe { vo_direct_available() } == 1)
}

/// Whether a convolution of this shape runs direct.
pub fn runs_direct(weight_size: &[i64], at: Geometry) -> bool {
    matches!(weight_size, [16, c, 3, 3] if *c <= 16)
        && at.stride == 1
        && at.padding == 1
        && at.groups == 1
        && direct_available()
}

/// `weight` [16, in, 3, 3] in the direct convolution's layout.
pub fn pack_direct(weight: &Tensor) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: the pointer is a live tensor for the call's length.
    let error = unsafe { vo_direct_pack(weight.as_ptr(), &mut out) };
    take(error, out, "direct convolution's weight")
}

/// `relu?(conv(x, weight) + bias + other?)` by the direct convolution, for a channels-last
/// `x` and a weight from [`pack_direct`]; the sum is written over `other` when this is its
/// only handle and nothing views its storage.
pub fn direct_conv(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    other: Option<Tensor>,
    relu: bool,
) -> Tensor {
    let mut out = std::ptr::null_mut();
    let other_ptr = other.as_ref().map_or(std::ptr::null(), |o| o.as_ptr());
    // SAFETY: the pointers are live tensors (or null for no bias or residual) for the call's
    // length; `other` is dropped only after it.
    let error = unsafe {
        vo_direct_conv(
            x.as_ptr(),
            weight.as_ptr(),
            bias_ptr(bias),
            other_ptr,
            c_int::from(relu),
            &mut out,
        )
    };
    drop(other);
    take(error, out, "direct convolution")
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
    use super::{
        Geometry, available, conv_add, direct_available, direct_conv, pack_direct, pack_weight,
        runs_direct,
    };
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

    #[test]
    fn the_direct_convolution_is_atens_for_every_width_block_and_epilogue() {
        let at = Geometry {
            stride: 1,
            padding: 1,
            groups: 1,
        };
        assert!(!runs_direct(&[32, 16, 3, 3], at) && !runs_direct(&[16, 17, 3, 3], at));
        assert!(!runs_direct(&[16, 16, 1, 1], at));
        assert!(!runs_direct(&[16, 16, 3, 3], Geometry { stride: 2, ..at }));
        assert_eq!(runs_direct(&[16, 16, 3, 3], at), direct_available());
        if !direct_available() {
            // No AVX-512 here: such layers run oneDNN's convolution.
            return;
        }
        tch::manual_seed(4);
        let _no_grad = tch::no_grad_guard();
        let opts = (Kind::Float, Device::Cpu);
        // Input channels of each compiled kind (1, 3, 16) and the generic one (5); widths
        // that take blocks of 14, 4 and 1 pixels; one image of one row.
        for (n, c, h, w) in [(3, 1, 7, 28), (2, 3, 5, 19), (2, 5, 4, 9), (2, 16, 6, 33)] {
            let x = channels_last(&Tensor::randn([n, c, h, w], opts));
            let weight = Tensor::randn([16, c, 3, 3], opts);
            let bias = Tensor::randn([16], opts);
            let packed = pack_direct(&weight);
            let conv = x.conv2d(&weight, Some(&bias), [1, 1], [1, 1], [1, 1], 1);
            let close = |a: &Tensor, b: &Tensor| a.allclose(b, 1e-5, 1e-5, false);
            let plain = direct_conv(&x, &packed, Some(&bias), None, false);
            assert!(close(&plain, &conv), "{n}x{c}x{h}x{w}");
            let relu = direct_conv(&x, &packed, Some(&bias), None, true);
            assert!(close(&relu, &conv.relu()));
            let unbiased = direct_conv(&x, &packed, None, None, false);
            assert!(close(
                &unbiased,
                &x.conv2d(&weight, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
            ));
            let residual = channels_last(&Tensor::randn([n, 16, h, w], opts));
            let before = residual.copy();
            let shared = direct_conv(&x, &packed, Some(&bias), Some(residual.alias()), false);
            assert!(close(&shared, &(&conv + &residual)) && residual.equal(&before));
            let unique = residual.copy();
            let place = unique.data_ptr();
            let summed = direct_conv(&x, &packed, Some(&bias), Some(unique), false);
            assert!(close(&summed, &(&conv + &residual)));
            assert_eq!(summed.data_ptr(), place);
        }
        let tiny = channels_last(&Tensor::randn([1, 16, 1, 1], opts));
        let weight = Tensor::randn([16, 16, 3, 3], opts);
        let centre = tiny.conv2d(&weight, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let direct = direct_conv(&tiny, &pack_direct(&weight), None, None, false);
        assert!(direct.allclose(&centre, 1e-5, 1e-5, false));
    }
}
