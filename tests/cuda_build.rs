//! The CUDA build of libtorch (what `make` fetches on a GPU box) on a machine without a GPU: the
//! same binary loads its CUDA backend, sees no driver, trains and probes to exactly the CPU
//! cut's numbers, and refuses `--device cuda` in one line.
//!
//! It needs both cached builds of libtorch: `make check-cuda-build` fetches them and runs it.
//! Elsewhere it looks for them in the cache and says it was skipped when one is missing
//! (`VALLEYS_REQUIRE_CUDA_BUILD=1` makes that a failure).

mod common;

use common::{Said, metrics_without_times, write};
use std::path::{Path, PathBuf};

/// One epoch of the quick experiment, averaged from its first epoch so that SWA is measured too.
const QUICK_ONE_EPOCH: [&str; 4] = ["--set", "train.epochs=1", "--set", "swa.start_epoch=1"];

/// The `torch` directory of the cached build `kind` (`libtorch-2.11.0` or `libtorch-2.11.0-cu130`),
/// named by `var` or found in the cache; None when it is not there.
fn libtorch(var: &str, cache_name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os(var) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            cache.join("valleys").join(cache_name).join("torch")
        }
    };
    dir.join("lib/libtorch_cpu.so").is_file().then_some(dir)
}

/// Both libtorch directories, or None after saying why the test is skipped.
fn both_builds() -> Option<(PathBuf, PathBuf)> {
    let cpu = libtorch("VALLEYS_TEST_CPU_LIBTORCH", "libtorch-2.11.0");
    let cuda = libtorch("VALLEYS_TEST_CUDA_LIBTORCH", "libtorch-2.11.0-cu130")
        .filter(|dir| dir.join("lib/libtorch_cuda.so").is_file());
    match (cpu, cuda) {
        (Some(cpu), Some(cuda)) => Some((cpu, cuda)),
        (cpu, cuda) => {
            let why = format!(
                "skipped: the cached CPU cut ({}) and CUDA build ({}) of libtorch are both needed; `make check-cuda-build` fetches them",
                if cpu.is_some() { "found" } else { "missing" },
                if cuda.is_some() { "found" } else { "missing" },
            );
            assert!(
                std::env::var_os("VALLEYS_REQUIRE_CUDA_BUILD").is_none(),
                "{why}"
            );
            eprintln!("{why}");
            None
        }
    }
}

/// The binary in `dir`, loading the libtorch in `torch` (LD_LIBRARY_PATH wins over its run path).
fn valleys_with(torch: &Path, dir: &Path, args: &[&str]) -> Said {
    let out = common::valleys(dir)
        .env("LD_LIBRARY_PATH", torch.join("lib"))
        .args(args)
        .output()
        .unwrap();
    Said {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A probe's stored curve without its clock times and identity.
fn probe_numbers(run: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(run.join("probes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no probe was stored in {}",
        run.display()
    );
    files
        .iter()
        .map(|p| serde_json::Value::String(std::fs::read_to_string(p).unwrap()))
        .collect()
}

#[test]
fn the_cuda_build_loads_without_a_gpu_and_computes_what_the_cpu_cut_computes() {
    let Some((cpu, cuda)) = both_builds() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let quick = write(
        dir,
        "quick.yaml",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/experiments/quick.yaml"
        ))
        .unwrap(),
    );
    let quick = quick.to_str().unwrap();

    // valleys info: the CUDA backend loaded from the CUDA build, no device, no driver.
    let info = valleys_with(&cuda, dir, &["info"]);
    assert_eq!(info.code, Some(0), "{info:?}");
    let expected_backend = format!(
        "CUDA backend: loaded from {}",
        cuda.join("lib/libtorch_cuda.so").display()
    );
    assert!(info.stdout.contains(&expected_backend), "{}", info.stdout);
    assert!(info.stdout.contains("CUDA build: 13.0"), "{}", info.stdout);
    assert!(
        info.stdout.contains("CUDA available: false (0 device(s))"),
        "{}",
        info.stdout
    );
    assert!(
        info.stdout.contains("NVIDIA driver: none found"),
        "{}",
        info.stdout
    );
    let cpu_info = valleys_with(&cpu, dir, &["info"]);
    assert!(
        cpu_info.stdout.contains("CUDA backend: absent"),
        "{}",
        cpu_info.stdout
    );
    assert!(
        cpu_info
            .stdout
            .contains("CUDA build: none: this is the CPU-only cut of libtorch"),
        "{}",
        cpu_info.stdout
    );

    // The quick experiment for one epoch, then a probe, with each build.
    for (name, torch) in [("cpu-cut", &cpu), ("cuda-build", &cuda)] {
        let mut args = vec!["run", quick, "--headless", "--out", name];
        args.extend(QUICK_ONE_EPOCH);
        let said = valleys_with(torch, dir, &args);
        assert_eq!(said.code, Some(0), "{name}: {said:?}");
        assert!(
            said.stdout.contains("device: cpu (auto: "),
            "{name}: {}",
            said.stdout
        );
        let said = valleys_with(
            torch,
            dir,
            &[
                "probe",
                name,
                "--direction",
                "uniform",
                "--seed",
                "7",
                "--points",
                "5",
                "--train-subset",
                "256",
                "--test-subset",
                "256",
                "--bn-subset",
                "256",
            ],
        );
        assert_eq!(said.code, Some(0), "{name} probe: {said:?}");
    }
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cuda-build/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        run_json["device"]["cuda_backend"]["status"], "loaded",
        "{run_json}"
    );
    assert_eq!(
        run_json["libtorch"].as_str(),
        Some(cuda.join("lib").canonicalize().unwrap().to_str().unwrap())
    );
    assert_eq!(
        metrics_without_times(&dir.join("cpu-cut")),
        metrics_without_times(&dir.join("cuda-build")),
        "one epoch of the quick experiment differs between the CPU cut and the CUDA build"
    );
    assert_eq!(
        probe_numbers(&dir.join("cpu-cut")),
        probe_numbers(&dir.join("cuda-build")),
        "the probe differs between the CPU cut and the CUDA build"
    );

    // --device cuda without a driver: one line, exit 2, nothing trained.
    let said = valleys_with(
        &cuda,
        dir,
        &[
            "run",
            quick,
            "--headless",
            "--device",
            "cuda",
            "--out",
            "refused",
        ],
    );
    assert_eq!(said.code, Some(2), "{said:?}");
    let lines: Vec<&str> = said.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", said.stderr);
    assert!(
        lines[0].starts_with("valleys: error: --device cuda: no CUDA device: ")
            && lines[0].contains("no NVIDIA driver"),
        "{}",
        lines[0]
    );
    assert!(!dir.join("refused").exists());
}
