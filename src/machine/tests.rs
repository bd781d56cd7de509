use super::*;

#[test]
fn proc_fields_are_read_after_the_name_however_odd() {
    let stat = "4242 (valleys (a) b) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 200 300";
    let (ticks, rss) = parse_proc(stat, "1000 256 10 1 0 50 0").unwrap();
    assert_eq!((ticks, rss), (300.0, 256));
    assert!(parse_proc("garbage", "1 2").is_none());
}

#[test]
fn this_process_is_sampled_and_its_cpu_share_follows_work() {
    let mut monitor = Monitor::new(None, Some(std::process::id()));
    let first = monitor.sample();
    assert!(first.gpu.is_none());
    assert_eq!(first.no_gpu.as_deref(), Some("run on the CPU"));
    let p = first.process.unwrap();
    assert!(p.rss_bytes > 1 << 20, "{p:?}");
    // Half a second of one busy core.
    let started = Instant::now();
    let mut x = 0u64;
    while started.elapsed() < Duration::from_millis(500) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
    let second = monitor.sample().process.unwrap();
    assert!(
        second.cpu_percent > 25.0 && second.cpu_percent < 100.0 * p.cores as f64 + 20.0,
        "{second:?}"
    );
    assert!(monitor.peaks().rss_peak_bytes.unwrap() >= p.rss_bytes.min(second.rss_bytes));
}

#[test]
fn a_missing_nvml_is_a_reason_not_an_error() {
    let mut monitor = Monitor::with_nvml(Some(0), None, &["/nonexistent/libnvidia-ml.so.1".into()]);
    let sample = monitor.sample();
    assert!(sample.gpu.is_none());
    assert_eq!(
        sample.no_gpu.as_deref(),
        Some("no NVIDIA driver (NVML not found)")
    );
    assert_eq!(monitor.peaks(), Peaks::default());
}

#[test]
fn a_run_not_on_this_machine_shows_nothing_of_it() {
    let mut monitor = Monitor::new(None, None);
    assert_eq!(monitor.sample(), MachineSample::default());
    // The test binary is named after the crate; pid 1 is no valleys.
    assert!(is_valleys(std::process::id()));
    assert!(!is_valleys(1));
}

#[test]
fn device_names_give_cuda_indices() {
    assert_eq!(cuda_index("cpu"), None);
    assert_eq!(cuda_index("cuda"), Some(0));
    assert_eq!(cuda_index("cuda:1 (NVIDIA H100)"), Some(1));
    assert_eq!(cuda_index("cuda:12"), Some(12));
}

#[test]
fn peaks_keep_the_most_of_each() {
    let mut peaks = Peaks::default();
    let gpu = |used, mine| GpuSample {
        index: 0,
        name: "H100".into(),
        utilization: Some(90),
        memory_used: used,
        memory_total: 80,
        process_memory: mine,
        power_w: None,
        temperature_c: None,
    };
    for (used, mine) in [(10, Some(5)), (30, Some(20)), (50, None), (40, Some(7))] {
        peaks.add(&MachineSample {
            gpu: Some(gpu(used, mine)),
            ..Default::default()
        });
    }
    assert_eq!(peaks.gpu_memory_peak_bytes, Some(50));
    assert_eq!(peaks.gpu_memory_total_bytes, Some(80));
    assert_eq!(peaks.gpu_name.as_deref(), Some("H100"));
}
