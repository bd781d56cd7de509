//! The machine strip's NVML path end to end, without a GPU: a stand-in NVML
//! (tests/fixtures/fake_nvml.c, one GPU of fixed numbers, compiled here with the C compiler
//! the build already needs) is loaded at run time as the driver's would be, and read through
//! the same calls; the peaks the run keeps follow from it.

use std::path::Path;
use valleys::machine::{Monitor, Sampler};

/// The stand-in NVML, compiled into `dir`.
fn fake_nvml(dir: &Path) -> std::ffi::OsString {
    let lib = dir.join("libnvidia-ml.so.1");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_nvml.c");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = std::process::Command::new(&compiler)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e} (the build needs a C compiler too)"));
    assert!(built.success(), "compiling {}", source.display());
    lib.into_os_string()
}

#[test]
fn nvml_loaded_at_run_time_gives_the_gpu_and_this_runs_share_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = fake_nvml(tmp.path());
    let mut monitor = Monitor::with_nvml(
        Some(0),
        Some(std::process::id()),
        std::slice::from_ref(&lib),
    );
    let sample = monitor.sample();
    let gpu = sample.gpu.expect("the stand-in's GPU");
    assert_eq!(gpu.name, "Fake GPU 80GB");
    assert_eq!(gpu.index, 0);
    assert_eq!(gpu.utilization, Some(87));
    assert_eq!((gpu.memory_used, gpu.memory_total), (30 << 30, 80 << 30));
    assert_eq!(
        gpu.process_memory,
        Some(28 << 30),
        "this process's own memory"
    );
    assert_eq!(gpu.power_w, Some(412.3));
    assert_eq!(gpu.temperature_c, Some(64));
    assert!(sample.no_gpu.is_none());
    assert!(sample.process.is_some());
    let peaks = monitor.peaks();
    assert_eq!(peaks.gpu_name.as_deref(), Some("Fake GPU 80GB"));
    assert_eq!(peaks.gpu_memory_peak_bytes, Some(28 << 30));
    assert_eq!(
        peaks.summary().unwrap().split(", resident").next(),
        Some("peak memory: GPU 28.0 GiB of 80.0 GiB (Fake GPU 80GB)")
    );
    // A device NVML does not have is said, not guessed.
    let mut other = Monitor::with_nvml(Some(3), None, std::slice::from_ref(&lib));
    assert_eq!(
        other.sample().no_gpu.as_deref(),
        Some("NVML does not see CUDA device 3")
    );
    // Sampled on a thread of its own, which hands its peaks back when stopped.
    let (tx, rx) = std::sync::mpsc::channel();
    let monitor = Monitor::with_nvml(Some(0), Some(std::process::id()), &[lib]);
    let sampler = Sampler::start(monitor, std::time::Duration::from_millis(20), move |s| {
        let _ = tx.send(s);
    })
    .unwrap();
    let first = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(first.gpu.unwrap().utilization, Some(87));
    assert_eq!(sampler.stop().gpu_memory_peak_bytes, Some(28 << 30));
}
