//! libtorch at run time: registering its CUDA backend and choosing the device.
//!
//! The binary links only libtorch_cpu, so that it starts on machines without the CUDA stack.
//! CUDA is registered by loading libtorch_cuda.so from the directory of the libtorch_cpu.so that
//! was actually loaded. This must happen before anything asks libtorch about CUDA: PyTorch
//! caches its CUDA hooks on the first query, and a later load would leave CUDA dead.

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Cuda, Device};

pub mod driver;
pub use driver::{CudaVersion, Driver, DriverFit};

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
    crate::platform::signal_is_ignored(signal)
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
    crate::platform::set_malloc_thresholds(32 << 20, 256 << 20);
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
                Err(error) => CudaBackend::Unloadable {
                    path,
                    error: error.to_string(),
                },
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

fn dlopen_global(path: &Path) -> Result<(), crate::platform::LoadError> {
    crate::platform::load_global(path)
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
    #[error(
        "--device {requested}: the NVIDIA driver {driver} is too old for this libtorch's CUDA {cuda} (it needs {needs} or newer): install a driver >= {needs}, or set LIBTORCH to a torch 2.11.0 built for CUDA 12.x and rebuild (make build)"
    )]
    DriverTooOld {
        requested: String,
        driver: String,
        cuda: CudaVersion,
        needs: u32,
    },
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
    /// The CUDA runtime libtorch was built with (13.0 for PyPI's 2.11.0).
    pub cuda_runtime: Option<CudaVersion>,
    pub driver: Option<Driver>,
}

/// What this process knows about CUDA before choosing a device.
#[derive(Debug, Clone)]
pub struct CudaFacts {
    pub backend: CudaBackend,
    /// CUDA devices libtorch can use.
    pub devices: usize,
    pub runtime: Option<CudaVersion>,
    pub driver: Option<Driver>,
}

impl CudaFacts {
    /// This process's facts, after [`init_cuda_backend`].
    pub fn detect() -> Self {
        let backend = init_cuda_backend().clone();
        let devices = if Cuda::is_available() {
            Cuda::device_count().max(0) as usize
        } else {
            0
        };
        Self {
            backend,
            devices,
            runtime: driver::loaded_cuda_runtime(),
            driver: driver::detect_driver(),
        }
    }

    /// The driver when it is too old for the runtime, with the branch the runtime needs.
    fn too_old_driver(&self) -> Option<(&Driver, CudaVersion, u32)> {
        match driver::fit(self.driver.as_ref(), self.runtime) {
            DriverFit::TooOld { needs } => Some((self.driver.as_ref()?, self.runtime?, needs)),
            _ => None,
        }
    }

    /// Why there is no usable CUDA device, in words.
    fn why_no_cuda(&self) -> String {
        let gpu_here = self
            .driver
            .as_ref()
            .map(|d| format!("an NVIDIA driver ({}) is here, but ", d.version))
            .unwrap_or_default();
        match &self.backend {
            CudaBackend::Absent { looked_for } => format!(
                "{gpu_here}this libtorch has no CUDA backend (looked for {}){}",
                looked_for.display(),
                if gpu_here.is_empty() {
                    ""
                } else {
                    "; `make setup` fetches the CUDA build on a GPU machine (VALLEYS_CUDA=1 forces it)"
                }
            ),
            CudaBackend::Unloadable { path, error } => {
                format!("{gpu_here}{} could not be loaded: {error}", path.display())
            }
            CudaBackend::Unknown => format!(
                "{gpu_here}the loaded libtorch_cpu.so was not found, so neither was libtorch_cuda.so next to it"
            ),
            CudaBackend::Loaded { path } if self.driver.is_none() => format!(
                "{} is loaded but there is no NVIDIA driver (no GPU, or none passed to this container)",
                path.display()
            ),
            CudaBackend::Loaded { path } => format!(
                "{gpu_here}{} sees no usable GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)",
                path.display()
            ),
        }
    }
}

/// Resolves a device request, after [`init_cuda_backend`].
pub fn choose_device(request: DeviceRequest) -> Result<DeviceChoice, DeviceError> {
    let facts = CudaFacts::detect();
    let (device, reason) = decide(request, &facts)?;
    if device.is_cuda() {
        Cuda::cudnn_set_benchmark(true);
    }
    Ok(DeviceChoice {
        name: device_name(device),
        device,
        reason,
        cuda_backend: facts.backend,
        cuda_runtime: facts.runtime,
        driver: facts.driver,
    })
}

/// The device a request gets under `facts`, and why.
pub fn decide(request: DeviceRequest, facts: &CudaFacts) -> Result<(Device, String), DeviceError> {
    let requested = |index: Option<usize>| index.map_or("cuda".into(), |i| format!("cuda:{i}"));
    let count = facts.devices;
    match request {
        DeviceRequest::Cpu => Ok((Device::Cpu, "requested with --device cpu".into())),
        DeviceRequest::Auto if count > 0 => Ok((
            Device::Cuda(0),
            format!("auto: {count} CUDA device(s) found, using the first"),
        )),
        DeviceRequest::Auto => match facts.too_old_driver() {
            Some((driver, cuda, needs)) => Ok((
                Device::Cpu,
                format!(
                    "auto: the NVIDIA driver {} is too old for this libtorch's CUDA {cuda} (needs {needs} or newer), so training runs on the CPU",
                    driver.version
                ),
            )),
            None => Ok((Device::Cpu, format!("auto: {}", facts.why_no_cuda()))),
        },
        DeviceRequest::Cuda(index) if count == 0 => Err(match facts.too_old_driver() {
            Some((driver, cuda, needs)) => DeviceError::DriverTooOld {
                requested: requested(index),
                driver: driver.version.clone(),
                cuda,
                needs,
            },
            None => DeviceError::NoCuda {
                requested: requested(index),
                why: facts.why_no_cuda(),
            },
        }),
        DeviceRequest::Cuda(index) => {
            let index = index.unwrap_or(0);
            if index >= count {
                return Err(DeviceError::NoSuchCuda { index, count });
            }
            Ok((
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
    let facts = CudaFacts::detect();
    let dir = libtorch_dir().map_or("(not found)".into(), |d| d.display().to_string());
    let cuda = match &facts.backend {
        CudaBackend::Loaded { path } => format!("loaded from {}", path.display()),
        CudaBackend::Absent { looked_for } => {
            format!("absent (looked for {})", looked_for.display())
        }
        CudaBackend::Unloadable { path, error } => {
            format!("present but not loadable ({}: {error})", path.display())
        }
        CudaBackend::Unknown => "unknown (libtorch_cpu.so not found in the process maps)".into(),
    };
    let runtime = match (facts.runtime, &facts.backend) {
        (None, _) => "none (this libtorch carries no CUDA runtime)".to_owned(),
        // The CPU cut keeps the CUDA runtime's version in its core library, but without its
        // CUDA backend there is nothing that would run on a GPU.
        (Some(v), CudaBackend::Absent { .. }) => format!(
            "none: this is the CPU-only cut of libtorch (its core library names CUDA {v}, but it has no CUDA backend)"
        ),
        (Some(v), _) => format!("{v} (the CUDA runtime this libtorch was built with)"),
    };
    let driver = match (
        &facts.driver,
        driver::fit(facts.driver.as_ref(), facts.runtime),
    ) {
        (None, _) => "none found (no /proc/driver/nvidia/version, no nvidia-smi)".to_owned(),
        (Some(d), fit) => {
            let verdict = match (fit, facts.runtime) {
                (DriverFit::NewEnough { needs }, Some(cuda)) => {
                    format!("new enough for CUDA {cuda} (needs {needs} or newer)")
                }
                (DriverFit::TooOld { needs }, Some(cuda)) => format!(
                    "TOO OLD for CUDA {cuda} (needs {needs} or newer): install a driver >= {needs}, or set LIBTORCH to a torch 2.11.0 built for CUDA 12.x"
                ),
                _ => "not checked against the CUDA runtime".to_owned(),
            };
            format!("{} (from {}): {verdict}", d.version, d.source)
        }
    };
    format!(
        "valleys {}\nlibtorch: {dir}\nCUDA backend: {cuda}\nCUDA build: {runtime}\nNVIDIA driver: {driver}\nCUDA available: {} ({} device(s)), cuDNN: {}\nCPU threads: {}\ndevice for --device auto: {}",
        env!("CARGO_PKG_VERSION"),
        Cuda::is_available(),
        facts.devices,
        Cuda::cudnn_is_available(),
        tch::get_num_threads(),
        decide(DeviceRequest::Auto, &facts).map_or_else(
            |e| e.to_string(),
            |(d, why)| format!("{} ({why})", device_name(d))
        ),
    )
}

#[cfg(test)]
mod tests;
