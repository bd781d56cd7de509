//! The NVIDIA driver on this machine and the CUDA runtime libtorch was built with: whether a
//! GPU can run this libtorch at all, told before anything is asked of the GPU.
//!
//! A CUDA 13.0 libtorch on a driver older than 580 sees no device and says only that CUDA is
//! unavailable. These facts turn that into a sentence with the way out.

use serde::Serialize;
use std::fmt;

/// A CUDA toolkit version, e.g. 13.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CudaVersion {
    pub major: u32,
    pub minor: u32,
}

impl CudaVersion {
    /// From CUDA's integer encoding, `1000 * major + 10 * minor` (13000 is 13.0).
    pub fn from_encoded(encoded: i32) -> Option<Self> {
        (encoded > 0).then_some(Self {
            major: (encoded / 1000) as u32,
            minor: ((encoded % 1000) / 10) as u32,
        })
    }

    /// The oldest driver branch that runs this CUDA version (NVIDIA's CUDA release notes, table
    /// 3: minor-version compatibility within a major version). None for a version this table
    /// does not know, whose requirement is then not checked.
    pub fn min_driver_major(self) -> Option<u32> {
        match self.major {
            11 => Some(450),
            12 => Some(525),
            13 => Some(580),
            _ => None,
        }
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The NVIDIA kernel driver's version, e.g. `580.95.05`, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Driver {
    pub version: String,
    pub source: &'static str,
}

impl Driver {
    /// The branch, the number before the first dot (580 in 580.95.05).
    pub fn major(&self) -> Option<u32> {
        self.version.split('.').next()?.parse().ok()
    }
}

/// Whether the driver can run the CUDA runtime libtorch was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DriverFit {
    /// No NVIDIA driver here (no GPU, or the container was started without one).
    NoDriver,
    /// libtorch carries no CUDA runtime, or its version is unknown.
    UnknownRuntime,
    NewEnough {
        needs: u32,
    },
    TooOld {
        needs: u32,
    },
    /// The driver's or the runtime's version could not be compared.
    Unchecked,
}

/// Decides whether `driver` runs `runtime`.
pub fn fit(driver: Option<&Driver>, runtime: Option<CudaVersion>) -> DriverFit {
    let Some(driver) = driver else {
        return DriverFit::NoDriver;
    };
    let Some(runtime) = runtime else {
        return DriverFit::UnknownRuntime;
    };
    match (driver.major(), runtime.min_driver_major()) {
        (Some(have), Some(needs)) if have >= needs => DriverFit::NewEnough { needs },
        (Some(_), Some(needs)) => DriverFit::TooOld { needs },
        _ => DriverFit::Unchecked,
    }
}

/// The driver version in the text of `/proc/driver/nvidia/version`, whose first line reads
/// e.g. `NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Thu Sep 11 ...` (or
/// `NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.95.05  Release Build ...`).
pub fn parse_proc_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let after = &line[line.find("Kernel Module")? + "Kernel Module".len()..];
    after
        .split_whitespace()
        .find(|word| {
            word.split('.').count() >= 2
                && word
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The NVIDIA driver of this machine: `/proc/driver/nvidia/version`, else `nvidia-smi`.
pub fn detect_driver() -> Option<Driver> {
    if let Some(version) = std::fs::read_to_string("/proc/driver/nvidia/version")
        .ok()
        .as_deref()
        .and_then(parse_proc_version)
    {
        return Some(Driver {
            version,
            source: "/proc/driver/nvidia/version",
        });
    }
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=driver_version", "--format=csv,noheader"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().next()?.trim();
    (output.status.success() && version.split('.').count() >= 2).then(|| Driver {
        version: version.to_owned(),
        source: "nvidia-smi",
    })
}

/// The version of the CUDA runtime (libcudart) this process loaded with libtorch, asked of
/// the library itself; it needs neither a driver nor a GPU.
pub fn loaded_cuda_runtime() -> Option<CudaVersion> {
    crate::platform::loaded_cuda_runtime_version().and_then(CudaVersion::from_encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(version: &str) -> Driver {
        Driver {
            version: version.into(),
            source: "test",
        }
    }

    const CUDA_13_0: CudaVersion = CudaVersion {
        major: 13,
        minor: 0,
    };

    #[test]
    fn proc_version_lines_of_both_kernel_modules_parse() {
        let proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Thu Sep 11 18:42:15 UTC 2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
        assert_eq!(
            parse_proc_version(proprietary).as_deref(),
            Some("580.95.05")
        );
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.104.05  Release Build  (dvs-builder@U16-I3-B03-4-3)  Sat Aug 19 01:13:15 UTC 2023\n";
        assert_eq!(parse_proc_version(open).as_deref(), Some("535.104.05"));
        assert_eq!(parse_proc_version("GCC version: 12\n"), None);
        assert_eq!(parse_proc_version(""), None);
    }

    #[test]
    fn cuda_versions_decode_from_the_runtime_integer() {
        assert_eq!(CudaVersion::from_encoded(13000), Some(CUDA_13_0));
        assert_eq!(
            CudaVersion::from_encoded(12080),
            Some(CudaVersion {
                major: 12,
                minor: 8
            })
        );
        assert_eq!(CudaVersion::from_encoded(0), None);
        assert_eq!(CUDA_13_0.to_string(), "13.0");
    }

    #[test]
    fn cuda_13_needs_the_580_branch() {
        assert_eq!(
            fit(Some(&driver("580.65.06")), Some(CUDA_13_0)),
            DriverFit::NewEnough { needs: 580 }
        );
        assert_eq!(
            fit(Some(&driver("590.1")), Some(CUDA_13_0)),
            DriverFit::NewEnough { needs: 580 }
        );
        assert_eq!(
            fit(Some(&driver("575.57.08")), Some(CUDA_13_0)),
            DriverFit::TooOld { needs: 580 }
        );
        let cuda_12_8 = CudaVersion {
            major: 12,
            minor: 8,
        };
        assert_eq!(
            fit(Some(&driver("535.104.05")), Some(cuda_12_8)),
            DriverFit::NewEnough { needs: 525 }
        );
        assert_eq!(fit(None, Some(CUDA_13_0)), DriverFit::NoDriver);
        assert_eq!(fit(Some(&driver("580.1")), None), DriverFit::UnknownRuntime);
        assert_eq!(
            fit(Some(&driver("weird")), Some(CUDA_13_0)),
            DriverFit::Unchecked
        );
    }

    #[test]
    fn the_runtime_version_agrees_with_the_loaded_libcudart_file_name() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        // libcudart.so.13: PyPI's libtorch 2.11.0 needs it even without a GPU; a CPU-only
        // libtorch from elsewhere has none.
        let from_name = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter_map(|path| path.rsplit('/').next()?.strip_prefix("libcudart.so."))
            .find_map(|major| major.split('.').next()?.parse::<u32>().ok());
        assert_eq!(loaded_cuda_runtime().map(|v| v.major), from_name);
    }
}
