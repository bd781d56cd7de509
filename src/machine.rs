//! The machine in view, as nvitop or btop show it beside training: the GPU's utilisation,
//! memory, power and temperature from NVML (loaded at run time, so one binary runs where there
//! is no NVIDIA driver), and the training process's CPU share and resident memory from /proc.
//! A [`Sampler`] reads them on its own thread; the dashboard draws the newest sample and the
//! run keeps the peaks in run.json.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What NVML said of the GPU at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML's index of the device.
    pub index: u32,
    pub name: String,
    /// Percent of the last sample period the GPU was busy.
    pub utilization: Option<u32>,
    pub memory_used: u64,
    pub memory_total: u64,
    /// The process's own memory on the device, when NVML can tell.
    pub process_memory: Option<u64>,
    pub power_w: Option<f64>,
    pub temperature_c: Option<u32>,
}

/// The process's share of the CPUs and its resident memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// 100 is one core busy the whole period.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
    pub cores: usize,
}

/// One sample of the machine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MachineSample {
    /// None without NVML, or when the run is not on a GPU.
    pub gpu: Option<GpuSample>,
    pub process: Option<ProcessSample>,
    /// Why there are no GPU numbers, in a few words ("no NVIDIA driver", "run on the CPU").
    pub no_gpu: Option<String>,
}

/// The most the run used, for run.json and the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_name: Option<String>,
    /// The process's own peak on the GPU when NVML can tell, else the device's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_peak_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rss_peak_bytes: Option<u64>,
}

impl Peaks {
    fn add(&mut self, sample: &MachineSample) {
        if let Some(gpu) = &sample.gpu {
            self.gpu_name = Some(gpu.name.clone());
            self.gpu_memory_total_bytes = Some(gpu.memory_total);
            let used = gpu.process_memory.unwrap_or(gpu.memory_used);
            self.gpu_memory_peak_bytes = Some(self.gpu_memory_peak_bytes.unwrap_or(0).max(used));
        }
        if let Some(p) = &sample.process {
            self.rss_peak_bytes = Some(self.rss_peak_bytes.unwrap_or(0).max(p.rss_bytes));
        }
    }
}

/// The environment variable naming the NVML library to load instead of the driver's.
pub const NVML_LIBRARY_VARIABLE: &str = "VALLEYS_NVML";

/// The libraries NVML may be loaded from: the one [`NVML_LIBRARY_VARIABLE`] names, else the
/// driver's.
fn nvml_libraries() -> Vec<std::ffi::OsString> {
    match std::env::var_os(NVML_LIBRARY_VARIABLE) {
        Some(path) => vec![path],
        // The unversioned name comes only with the driver's development files.
        None => vec!["libnvidia-ml.so.1".into(), "libnvidia-ml.so".into()],
    }
}

/// NVML, loaded from the first of `names` that loads; why not, in a few words, when none does.
fn load_nvml(names: &[std::ffi::OsString]) -> Result<Nvml, String> {
    let mut last = String::new();
    for name in names {
        match Nvml::builder().lib_path(name).init() {
            Ok(nvml) => return Ok(nvml),
            Err(e) => last = e.to_string(),
        }
    }
    Err(
        if last.contains("LibloadingError") || last.to_lowercase().contains("cannot open") {
            "no NVIDIA driver (NVML not found)".into()
        } else {
            format!("NVML: {last}")
        },
    )
}

/// Which device of NVML's is CUDA's device `cuda_index` of this process: CUDA_VISIBLE_DEVICES
/// renumbers them (by index or by UUID).
fn nvml_device<'n>(nvml: &'n Nvml, cuda_index: u32) -> Option<nvml_wrapper::Device<'n>> {
    let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let entry = visible
        .as_deref()
        .and_then(|v| v.split(',').nth(cuda_index as usize))
        .map(str::trim);
    match entry {
        None => nvml.device_by_index(cuda_index).ok(),
        Some(e) => match e.parse::<u32>() {
            Ok(i) => nvml.device_by_index(i).ok(),
            Err(_) => nvml.device_by_uuid(e).ok(),
        },
    }
}

/// Reads the machine for one process on one device.
pub struct Monitor {
    nvml: Result<Nvml, String>,
    /// CUDA's index of the run's device; None for a run on the CPU.
    cuda_index: Option<u32>,
    pid: Option<u32>,
    cpu: Option<(f64, Instant)>,
    peaks: Peaks,
    cores: usize,
}

impl Monitor {
    /// A monitor of process `pid` (None: none to follow) running on CUDA device `cuda_index`
    /// (None: the CPU). NVML is loaded only for a run on a GPU.
    pub fn new(cuda_index: Option<u32>, pid: Option<u32>) -> Self {
        Self::with_nvml(cuda_index, pid, &nvml_libraries())
    }

    /// A monitor of this process on the device valleys names `device` ("cpu", "cuda:1").
    pub fn for_this_process(device: &str) -> Self {
        Self::new(cuda_index(device), Some(std::process::id()))
    }

    /// As [`Monitor::new`], NVML loaded from the first of `libraries` that loads.
    pub fn with_nvml(
        cuda_index: Option<u32>,
        pid: Option<u32>,
        libraries: &[std::ffi::OsString],
    ) -> Self {
        let nvml = match cuda_index {
            Some(_) => load_nvml(libraries),
            None => Err("run on the CPU".into()),
        };
        Self {
            nvml,
            cuda_index,
            pid,
            cpu: None,
            peaks: Peaks::default(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// The machine now; the first CPU share needs a second sample.
    pub fn sample(&mut self) -> MachineSample {
        let (gpu, no_gpu) = match (&self.nvml, self.cuda_index) {
            (Ok(nvml), Some(index)) => match nvml_device(nvml, index) {
                Some(device) => (gpu_sample(&device, self.pid), None),
                None => (None, Some(format!("NVML does not see CUDA device {index}"))),
            },
            // Nothing of the run's to show: say nothing of GPUs either.
            (Err(_), None) if self.pid.is_none() => (None, None),
            (Err(why), _) => (None, Some(why.clone())),
            (Ok(_), None) => (None, Some("run on the CPU".into())),
        };
        let process = self.pid.and_then(|pid| self.process(pid));
        let sample = MachineSample {
            gpu,
            process,
            no_gpu,
        };
        self.peaks.add(&sample);
        sample
    }

    fn process(&mut self, pid: u32) -> Option<ProcessSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
        let (busy, rss_pages) = parse_proc(&stat, &statm)?;
        let seconds = busy / crate::platform::clock_ticks_per_second();
        let now = Instant::now();
        let cpu_percent = match self.cpu.replace((seconds, now)) {
            Some((before, then)) => {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    100.0 * (seconds - before).max(0.0) / wall
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        Some(ProcessSample {
            cpu_percent,
            rss_bytes: rss_pages * crate::platform::page_size(),
            cores: self.cores,
        })
    }

    /// The most the run has used so far.
    pub fn peaks(&self) -> Peaks {
        self.peaks.clone()
    }
}

fn gpu_sample(device: &nvml_wrapper::Device, pid: Option<u32>) -> Option<GpuSample> {
    let memory = device.memory_info().ok()?;
    let process_memory = pid.and_then(|pid| {
        let processes = device.running_compute_processes().ok()?;
        processes
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            })
    });
    Some(GpuSample {
        index: device.index().unwrap_or(0),
        name: device.name().unwrap_or_else(|_| "GPU".into()),
        utilization: device.utilization_rates().ok().map(|u| u.gpu),
        memory_used: memory.used,
        memory_total: memory.total,
        process_memory,
        power_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
    })
}

/// CPU time in clock ticks (user + system) and resident pages, from /proc/<pid>/stat and
/// /proc/<pid>/statm. The process's name may hold spaces and parentheses: the fields are
/// counted after its last ')'.
fn parse_proc(stat: &str, statm: &str) -> Option<(f64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name and state.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let rss: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some((utime + stime, rss))
}

/// Samples a [`Monitor`] on a thread of its own every `period`, handing each sample to
/// `deliver`; stopped (and its peaks returned) by [`Sampler::stop`] or when dropped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Peaks>>,
}

impl Sampler {
    pub fn start(
        mut monitor: Monitor,
        period: Duration,
        deliver: impl Fn(MachineSample) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("valleys-machine".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    deliver(monitor.sample());
                    let until = Instant::now() + period;
                    while Instant::now() < until && !stopping.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                monitor.peaks()
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sampling; the most the run used.
    pub fn stop(mut self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Peaks {
    /// The most of both (a resumed run keeps what its earlier parts used).
    pub fn merged(mut self, earlier: &Peaks) -> Peaks {
        let most = |a: Option<u64>, b: Option<u64>| a.max(b);
        self.gpu_name = self.gpu_name.or_else(|| earlier.gpu_name.clone());
        self.gpu_memory_total_bytes = self
            .gpu_memory_total_bytes
            .or(earlier.gpu_memory_total_bytes);
        self.gpu_memory_peak_bytes =
            most(self.gpu_memory_peak_bytes, earlier.gpu_memory_peak_bytes);
        self.rss_peak_bytes = most(self.rss_peak_bytes, earlier.rss_peak_bytes);
        self
    }

    /// "peak memory: GPU 31.2 of 79.6 GiB (NVIDIA H100 80GB HBM3), resident 5.1 GiB".
    pub fn summary(&self) -> Option<String> {
        let gpu = match (&self.gpu_name, self.gpu_memory_peak_bytes) {
            (Some(name), Some(peak)) => Some(format!(
                "GPU {} of {} ({name})",
                crate::format::human_bytes(peak),
                crate::format::human_bytes(self.gpu_memory_total_bytes.unwrap_or(0))
            )),
            _ => None,
        };
        let rss = self
            .rss_peak_bytes
            .map(|b| format!("resident {}", crate::format::human_bytes(b)));
        let parts: Vec<String> = gpu.into_iter().chain(rss).collect();
        (!parts.is_empty()).then(|| format!("peak memory: {}", parts.join(", ")))
    }
}

/// Adds `peaks` to run.json's `machine` (the most of them and of what it held).
pub fn record_peaks(
    run: &crate::rundir::RunDir,
    peaks: &Peaks,
) -> Result<(), crate::rundir::RunDirError> {
    let mut info = run.run_info();
    if !info.is_object() {
        return Ok(());
    }
    let earlier: Peaks = serde_json::from_value(info["machine"].clone()).unwrap_or_default();
    let merged = peaks.clone().merged(&earlier);
    info["machine"] = serde_json::to_value(&merged).expect("peaks serialise");
    run.write_run_info(&info)
}

/// A monitor of the process that writes `run` (the holder of its lock, when it runs on this
/// machine) on the run's device: what `watch` shows.
pub fn for_watched_run(run: &crate::rundir::RunDir) -> Monitor {
    let info = run.run_info();
    let device = info["device"]["name"]
        .as_str()
        .or_else(|| info["device"].as_str())
        .unwrap_or("cpu");
    let holder = std::fs::read_to_string(run.root().join(".lock"))
        .ok()
        .and_then(|t| {
            t.strip_prefix("pid ")?
                .split(':')
                .next()?
                .trim()
                .parse::<u32>()
                .ok()
        })
        .filter(|&pid| run.is_busy() && is_valleys(pid));
    match holder {
        Some(pid) => Monitor::new(cuda_index(device), Some(pid)),
        // Trained elsewhere (a lock on a shared file system), or not training: this
        // machine's GPU is not the run's.
        None => Monitor::new(None, None),
    }
}

/// True when process `pid` here is a valleys process: a lock's pid from another machine on a
/// shared file system may name an unrelated process here.
fn is_valleys(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.windows(7).any(|w| w == b"valleys"))
}

/// CUDA's device index in a device as run.json and the dashboard name it ("cuda:1 (…)"), or
/// None for the CPU.
pub fn cuda_index(device: &str) -> Option<u32> {
    let rest = device.strip_prefix("cuda")?;
    match rest.strip_prefix(':') {
        Some(n) => n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok(),
        None => Some(0),
    }
}

#[cfg(test)]
mod tests;
