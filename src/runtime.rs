//! libtorch at run time: registering its CUDA backend and choosing the device.
//!
//! The binary links only libtorch_cpu, so that it starts on machines without the CUDA stack.
//! CUDA is registered by loading libtorch_cuda.so from the directory of the libtorch_cpu.so that
//! was actually loaded. This must happen before anything asks libtorch about CUDA: PyTorch
//! caches its CUDA hooks on the first query, and a later load would leave CUDA dead.

use serde::Serialize;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Cuda, Device};

/// What happened when looking for libtorch's CUDA backend.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CudaBackend {
    /// libtorch_cuda.so was loaded from this path.
    Loaded { path: PathBuf },
    /// There is no libtorch_cuda.so where it was looked for (a CPU-only libtorch).
    Absent { looked_for: PathBuf },
    /// libtorch_cuda.so exists but could not be loaded (usually missing CUDA libraries).
    Unloadable { path: PathBuf, error: String },
    /// The directory of libtorch_cpu.so could not be found in this process's mappings.
    Unknown,
}

static CUDA_BACKEND: OnceLock<CudaBackend> = OnceLock::new();

/// True when `signal` is set to be ignored (inherited from the parent, as under `nohup`).
pub fn signal_is_ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, sigaction only reads the current one into `current`.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Keeps freed memory in the process instead of handing it back to the kernel at once.
///
/// libtorch allocates every activation with `malloc`. By default glibc trims the heap top as
/// soon as a couple of megabytes lie free, so each batch faults in and zeroes its activations
/// again: on a 2-core CPU half of an evaluation pass went to page faults. With blocks up to
/// 32 MiB served from the heap and up to 256 MiB of free heap kept, evaluation runs about 1.7x
/// faster and training faster too, while the resident size stays at the working set. Settings
/// of the user's own (any `MALLOC_*` variable) are left alone.
pub fn tune_allocator() {
    if std::env::vars_os().any(|(k, _)| k.to_string_lossy().starts_with("MALLOC_")) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Loads libtorch's CUDA backend if it is there. Call it first thing in `main`; later calls
/// return the first result.
pub fn init_cuda_backend() -> &'static CudaBackend {
    CUDA_BACKEND.get_or_init(|| match libtorch_dir() {
        None => CudaBackend::Unknown,
        Some(dir) => {
            let path = dir.join("libtorch_cuda.so");
            if !path.exists() {
                return CudaBackend::Absent { looked_for: path };
            }
            match dlopen_global(&path) {
                Ok(()) => CudaBackend::Loaded { path },
                Err(error) => CudaBackend::Unloadable { path, error },
            }
        }
    })
}

/// The directory of the libtorch_cpu.so this process loaded, from /proc/self/maps.
pub fn libtorch_dir() -> Option<PathBuf> {
    // The executable lists libtorch_cpu.so as NEEDED, so it is mapped before main runs.
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .is_some_and(|n| n == "libtorch_cpu.so")
        })
        .and_then(|path| Path::new(path).parent().map(Path::to_owned))
}

fn dlopen_global(path: &Path) -> Result<(), String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| "path contains a NUL byte".to_owned())?;
    // SAFETY: dlopen with a valid NUL-terminated path; the handle is deliberately leaked so
    // that the library stays loaded for the life of the process.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let err = unsafe { libc::dlerror() };
        let message = if err.is_null() {
            "unknown dlopen error".to_owned()
        } else {
            // SAFETY: non-null pointer from dlerror, valid until the next dl* call.
            unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(message);
    }
    Ok(())
}

/// The `--device` argument, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    Auto,
    Cpu,
    Cuda(Option<usize>),
}

impl DeviceRequest {
    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Self, DeviceError> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(None)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(|n| Self::Cuda(Some(n)))
                .ok_or_else(|| DeviceError::Unknown(s.to_owned())),
        }
    }
}

/// Why a device could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device '{0}': expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("--device {requested}: no CUDA device: {why}")]
    NoCuda { requested: String, why: String },
    #[error("--device cuda:{index}: there are only {count} CUDA device(s) (cuda:0..cuda:{last})", last = count.saturating_sub(1))]
    NoSuchCuda { index: usize, count: usize },
}

/// The chosen device and, in words, why.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceChoice {
    #[serde(skip)]
    pub device: Device,
    /// `cpu` or `cuda:N`.
    pub name: String,
    pub reason: String,
    pub cuda_backend: CudaBackend,
}

/// Resolves a device request, after [`init_cuda_backend`].
pub fn choose_device(request: DeviceRequest) -> Result<DeviceChoice, DeviceError> {
    let backend = init_cuda_backend().clone();
    let count = if Cuda::is_available() {
        Cuda::device_count().max(0) as usize
    } else {
        0
    };
    let why_no_cuda = || match &backend {
        CudaBackend::Absent { looked_for } => format!(
            "this libtorch has no CUDA backend (looked for {})",
            looked_for.display()
        ),
        CudaBackend::Unloadable { path, error } => {
            format!("{} could not be loaded: {error}", path.display())
        }
        CudaBackend::Unknown => {
            "could not locate the loaded libtorch_cpu.so to find libtorch_cuda.so next to it".into()
        }
        CudaBackend::Loaded { path } => format!(
            "{} is loaded but no GPU is usable (no NVIDIA driver or no device)",
            path.display()
        ),
    };
    let choice = |device: Device, reason: String| DeviceChoice {
        name: device_name(device),
        device,
        reason,
        cuda_backend: backend.clone(),
    };
    match request {
        DeviceRequest::Cpu => Ok(choice(Device::Cpu, "requested with --device cpu".into())),
        DeviceRequest::Auto if count > 0 => Ok(choice(
            Device::Cuda(0),
            format!("auto: {count} CUDA device(s) found, using the first"),
        )),
        DeviceRequest::Auto => Ok(choice(Device::Cpu, format!("auto: {}", why_no_cuda()))),
        DeviceRequest::Cuda(index) if count == 0 => Err(DeviceError::NoCuda {
            requested: index.map_or("cuda".into(), |i| format!("cuda:{i}")),
            why: why_no_cuda(),
        }),
        DeviceRequest::Cuda(index) => {
            let index = index.unwrap_or(0);
            if index >= count {
                return Err(DeviceError::NoSuchCuda { index, count });
            }
            Cuda::cudnn_set_benchmark(true);
            Ok(choice(
                Device::Cuda(index),
                format!("requested; {count} CUDA device(s) found"),
            ))
        }
    }
}

/// `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

/// A multi-line report of the libtorch in use, for `valleys info`.
pub fn report() -> String {
    let backend = init_cuda_backend();
    let dir = libtorch_dir().map_or("(not found)".into(), |d| d.display().to_string());
    let cuda = match backend {
        CudaBackend::Loaded { path } => format!("loaded from {}", path.display()),
        CudaBackend::Absent { looked_for } => {
            format!("absent (looked for {})", looked_for.display())
        }
        CudaBackend::Unloadable { path, error } => {
            format!("present but not loadable ({}: {error})", path.display())
        }
        CudaBackend::Unknown => "unknown (libtorch_cpu.so not found in the process maps)".into(),
    };
    format!(
        "valleys {}\nlibtorch: {dir}\nCUDA backend: {cuda}\nCUDA available: {} ({} device(s)), cuDNN: {}\nCPU threads: {}",
        env!("CARGO_PKG_VERSION"),
        Cuda::is_available(),
        Cuda::device_count(),
        Cuda::cudnn_is_available(),
        tch::get_num_threads(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_requests_parse_and_unknown_ones_are_named() {
        assert_eq!(DeviceRequest::parse("auto").unwrap(), DeviceRequest::Auto);
        assert_eq!(DeviceRequest::parse("cpu").unwrap(), DeviceRequest::Cpu);
        assert_eq!(
            DeviceRequest::parse("cuda").unwrap(),
            DeviceRequest::Cuda(None)
        );
        assert_eq!(
            DeviceRequest::parse("cuda:3").unwrap(),
            DeviceRequest::Cuda(Some(3))
        );
        let err = DeviceRequest::parse("tpu9").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown device 'tpu9': expected auto, cpu, cuda or cuda:N"
        );
        assert!(DeviceRequest::parse("cuda:x").is_err());
    }

    #[test]
    fn the_loaded_libtorch_is_found_in_the_process_maps() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, Device::Cpu));
        let dir = libtorch_dir().expect("libtorch_cpu.so is mapped");
        assert!(dir.join("libtorch_cpu.so").exists());
    }
}
