//! A loaded TorchScript module, through the C++ shim (shim.cpp) compiled by build.rs.
//!
//! tch 0.24's `CModule` has no buffers, submodule types or per-submodule training flags, and
//! keeps its module pointer private, so the shim owns the module and this file is its only
//! door: every call returns either its result or the module's error message as one line.
//! It is, with `platform`, the one place allowed `unsafe` (see `[lints]` in Cargo.toml).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::NonNull;
use tch::{Device, Tensor};
use torch_sys::C_tensor;

#[repr(C)]
struct RawModule {
    _private: [u8; 0],
}

type TensorCallback = extern "C" fn(*mut c_void, *const c_char, *mut C_tensor);
type ModuleCallback = extern "C" fn(*mut c_void, *const c_char, *const c_char);

unsafe extern "C" {
    fn vj_free_error(error: *mut c_char);
    fn vj_load(path: *const c_char, device: c_int, out: *mut *mut RawModule) -> *mut c_char;
    fn vj_free(module: *mut RawModule);
    fn vj_clone(module: *const RawModule, out: *mut *mut RawModule) -> *mut c_char;
    fn vj_save(module: *const RawModule, path: *const c_char) -> *mut c_char;
    fn vj_forward(
        module: *mut RawModule,
        input: *const C_tensor,
        out: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn vj_named_parameters(
        module: *const RawModule,
        data: *mut c_void,
        cb: TensorCallback,
    ) -> *mut c_char;
    fn vj_named_buffers(
        module: *const RawModule,
        data: *mut c_void,
        cb: TensorCallback,
    ) -> *mut c_char;
    fn vj_named_modules(
        module: *const RawModule,
        data: *mut c_void,
        cb: ModuleCallback,
    ) -> *mut c_char;
    fn vj_set_training(module: *mut RawModule, name: *const c_char, on: bool) -> *mut c_char;
    fn vj_double_attr(
        module: *const RawModule,
        name: *const c_char,
        attr: *const c_char,
        found: *mut c_int,
        value: *mut f64,
    ) -> *mut c_char;
}

/// What the module or the shim said when a call failed, as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ModuleError(pub String);

impl From<ModuleError> for String {
    fn from(e: ModuleError) -> Self {
        e.0
    }
}

/// A TorchScript module owned by the shim.
pub struct ScriptModule {
    raw: NonNull<RawModule>,
}

impl Drop for ScriptModule {
    fn drop(&mut self) {
        // SAFETY: `raw` came from vj_load or vj_clone and is freed once, here.
        unsafe { vj_free(self.raw.as_ptr()) }
    }
}

/// Turns the shim's error (if any) into a `Result`, keeping only the line that says what
/// went wrong: TorchScript prefixes its messages with the script's traceback.
fn check(error: *mut c_char) -> Result<(), ModuleError> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null error is a NUL-terminated string malloc'd by the shim, freed here.
    let text = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    unsafe { vj_free_error(error) };
    Err(ModuleError(one_line(&text)))
}

/// The last non-empty line of a TorchScript error, without its exception class.
pub fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("unknown error");
    // "RuntimeError: ", "builtins.ValueError: ", "torch.jit.Error: ": the class says nothing
    // the message does not.
    let line = match line.split_once(": ") {
        Some((class, rest))
            if (class.ends_with("Error") || class.ends_with("Exception"))
                && class
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
        {
            rest
        }
        _ => line,
    };
    line.to_owned()
}

fn c_string(text: &str) -> Result<CString, ModuleError> {
    CString::new(text).map_err(|_| ModuleError(format!("{text:?} contains a NUL byte")))
}

fn device_index(device: Device) -> c_int {
    match device {
        Device::Cuda(n) => n as c_int,
        _ => -1,
    }
}

extern "C" fn push_tensor(data: *mut c_void, name: *const c_char, tensor: *mut C_tensor) {
    // SAFETY: `data` is the `&mut Vec` passed by `named_tensors`, `name` a NUL-terminated
    // string valid for this call, and `tensor` a new heap tensor whose ownership we take.
    let out = unsafe { &mut *(data as *mut Vec<(String, Tensor)>) };
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    out.push((name, unsafe { Tensor::from_ptr(tensor) }));
}

extern "C" fn push_module(data: *mut c_void, name: *const c_char, type_name: *const c_char) {
    // SAFETY: as in `push_tensor`; both strings are valid for this call.
    let out = unsafe { &mut *(data as *mut Vec<(String, String)>) };
    let text = |p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    out.push((text(name), text(type_name)));
}

impl ScriptModule {
    /// Loads a module saved by `torch.jit.save`, its tensors on `device`.
    pub fn load(path: &Path, device: Device) -> Result<Self, ModuleError> {
        let path = c_string(&path.to_string_lossy())?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `path` is NUL-terminated and `raw` is written only on success.
        check(unsafe { vj_load(path.as_ptr(), device_index(device), &mut raw) })?;
        NonNull::new(raw)
            .map(|raw| Self { raw })
            .ok_or_else(|| ModuleError("the loader returned no module".into()))
    }

    /// A deep copy: its own parameters and buffers.
    pub fn try_clone(&self) -> Result<Self, ModuleError> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: `self.raw` is a live module.
        check(unsafe { vj_clone(self.raw.as_ptr(), &mut raw) })?;
        NonNull::new(raw)
            .map(|raw| Self { raw })
            .ok_or_else(|| ModuleError("the copy returned no module".into()))
    }

    /// Writes the module (with its current parameters and buffers) as `torch.jit.save` does.
    pub fn save(&self, path: &Path) -> Result<(), ModuleError> {
        let path = c_string(&path.to_string_lossy())?;
        // SAFETY: a live module and a NUL-terminated path.
        check(unsafe { vj_save(self.raw.as_ptr(), path.as_ptr()) })
    }

    /// `module(x)`; an error if it fails or returns anything but one tensor.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModuleError> {
        let mut out = std::ptr::null_mut();
        // SAFETY: a live module and tensor; `out` is a new heap tensor on success.
        check(unsafe { vj_forward(self.raw.as_ptr(), x.as_ptr(), &mut out) })?;
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// `named_parameters()`, sharing storage with the module.
    pub fn named_parameters(&self) -> Result<Vec<(String, Tensor)>, ModuleError> {
        self.named_tensors(vj_named_parameters)
    }

    /// `named_buffers()`, sharing storage with the module.
    pub fn named_buffers(&self) -> Result<Vec<(String, Tensor)>, ModuleError> {
        self.named_tensors(vj_named_buffers)
    }

    fn named_tensors(
        &self,
        list: unsafe extern "C" fn(*const RawModule, *mut c_void, TensorCallback) -> *mut c_char,
    ) -> Result<Vec<(String, Tensor)>, ModuleError> {
        let mut out: Vec<(String, Tensor)> = Vec::new();
        // SAFETY: `push_tensor` casts `data` back to this very vector.
        check(unsafe {
            list(
                self.raw.as_ptr(),
                &mut out as *mut _ as *mut c_void,
                push_tensor,
            )
        })?;
        Ok(out)
    }

    /// Every submodule (the module itself first, named "") with its qualified type name.
    pub fn named_modules(&self) -> Result<Vec<(String, String)>, ModuleError> {
        let mut out: Vec<(String, String)> = Vec::new();
        // SAFETY: `push_module` casts `data` back to this very vector.
        check(unsafe {
            vj_named_modules(
                self.raw.as_ptr(),
                &mut out as *mut _ as *mut c_void,
                push_module,
            )
        })?;
        Ok(out)
    }

    /// Sets `training` on submodule `name` ("" for all) and everything below it.
    pub fn set_training(&self, name: &str, on: bool) -> Result<(), ModuleError> {
        let name = c_string(name)?;
        // SAFETY: a live module and a NUL-terminated name.
        check(unsafe { vj_set_training(self.raw.as_ptr(), name.as_ptr(), on) })
    }

    /// A number attribute of submodule `name`; None when absent or None.
    pub fn number_attr(&self, name: &str, attr: &str) -> Result<Option<f64>, ModuleError> {
        let (name, attr) = (c_string(name)?, c_string(attr)?);
        let (mut found, mut value) = (0, 0.0);
        // SAFETY: a live module, NUL-terminated strings, outputs written by the shim.
        check(unsafe {
            vj_double_attr(
                self.raw.as_ptr(),
                name.as_ptr(),
                attr.as_ptr(),
                &mut found,
                &mut value,
            )
        })?;
        Ok((found != 0).then_some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_torchscript_error_keeps_its_last_line_without_the_exception_class() {
        let text = "The following operation failed in the TorchScript interpreter.\n\
                    Traceback of TorchScript (most recent call last):\n  File \"x.py\"\n\
                    RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x100 and 64x3)\n";
        assert_eq!(
            one_line(text),
            "mat1 and mat2 shapes cannot be multiplied (2x100 and 64x3)"
        );
        assert_eq!(one_line(""), "unknown error");
        assert_eq!(
            one_line("builtins.RuntimeError: injected failure on call 13"),
            "injected failure on call 13"
        );
        assert_eq!(
            one_line("shape '[3, -1]' is invalid: x"),
            "shape '[3, -1]' is invalid: x"
        );
    }
}
