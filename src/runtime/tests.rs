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

fn facts(devices: usize, driver: Option<&str>) -> CudaFacts {
    CudaFacts {
        backend: CudaBackend::Loaded {
            path: "/lt/lib/libtorch_cuda.so".into(),
        },
        devices,
        runtime: Some(CudaVersion {
            major: 13,
            minor: 0,
        }),
        driver: driver.map(|version| Driver {
            version: version.into(),
            source: "test",
        }),
    }
}

#[test]
fn a_new_enough_driver_with_a_gpu_trains_on_it() {
    let f = facts(2, Some("580.95.05"));
    assert_eq!(decide(DeviceRequest::Auto, &f).unwrap().0, Device::Cuda(0));
    assert_eq!(
        decide(DeviceRequest::Cuda(Some(1)), &f).unwrap().0,
        Device::Cuda(1)
    );
    assert_eq!(decide(DeviceRequest::Cpu, &f).unwrap().0, Device::Cpu);
    let err = decide(DeviceRequest::Cuda(Some(2)), &f).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--device cuda:2: there are only 2 CUDA device(s) (cuda:0..cuda:1)"
    );
}

#[test]
fn a_driver_too_old_for_cuda_13_falls_back_on_auto_and_is_an_error_on_cuda() {
    let f = facts(0, Some("535.104.05"));
    let (device, reason) = decide(DeviceRequest::Auto, &f).unwrap();
    assert_eq!(device, Device::Cpu);
    assert_eq!(
        reason,
        "auto: the NVIDIA driver 535.104.05 is too old for this libtorch's CUDA 13.0 (needs 580 or newer), so training runs on the CPU"
    );
    let err = decide(DeviceRequest::Cuda(None), &f)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "--device cuda: the NVIDIA driver 535.104.05 is too old for this libtorch's CUDA 13.0 (it needs 580 or newer): install a driver >= 580, or set LIBTORCH to a torch 2.11.0 built for CUDA 12.x and rebuild (make build)"
    );
    assert!(!err.contains('\n'));
}

#[test]
fn without_a_driver_the_loaded_backend_says_so() {
    let f = facts(0, None);
    let (device, reason) = decide(DeviceRequest::Auto, &f).unwrap();
    assert_eq!(device, Device::Cpu);
    assert_eq!(
        reason,
        "auto: /lt/lib/libtorch_cuda.so is loaded but there is no NVIDIA driver (no GPU, or none passed to this container)"
    );
    let err = decide(DeviceRequest::Cuda(Some(0)), &f).unwrap_err();
    assert!(matches!(err, DeviceError::NoCuda { .. }), "{err}");
}

#[test]
fn a_gpu_machine_with_the_cpu_cut_is_told_how_to_get_the_cuda_build() {
    let mut f = facts(0, Some("580.95.05"));
    f.backend = CudaBackend::Absent {
        looked_for: "/lt/lib/libtorch_cuda.so".into(),
    };
    let (device, reason) = decide(DeviceRequest::Auto, &f).unwrap();
    assert_eq!(device, Device::Cpu);
    assert_eq!(
        reason,
        "auto: an NVIDIA driver (580.95.05) is here, but this libtorch has no CUDA backend (looked for /lt/lib/libtorch_cuda.so); `make setup` fetches the CUDA build on a GPU machine (VALLEYS_CUDA=1 forces it)"
    );
}

#[test]
fn the_loaded_libtorch_is_found_in_the_process_maps() {
    let _ = tch::Tensor::zeros([1], (tch::Kind::Float, Device::Cpu));
    let dir = libtorch_dir().expect("libtorch_cpu.so is mapped");
    assert!(dir.join("libtorch_cpu.so").exists());
}
