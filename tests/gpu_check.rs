//! scripts/gpu-check.sh, the check a GPU machine runs in one go, runs end to end here on the
//! CPU with small sizes, and fails loudly when CUDA is asked for and missing.

mod common;

use std::process::Command;

fn gpu_check(args: &[&str]) -> (Option<i32>, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gpu-check.sh");
    // No data set is fetched from anywhere but the folders given.
    let offline = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script)
        .args(["--valleys", env!("CARGO_BIN_EXE_valleys")])
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env("XDG_CACHE_HOME", offline.path().join("cache"))
        .env("VALLEYS_DATA_MIRROR", offline.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_gpu_check_runs_every_step_on_the_cpu_with_small_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // CIFAR-10's layout, from the 20 real test images of the fixtures.
    let cifar = tmp.path().join("cifar/cifar-10-batches-bin");
    std::fs::create_dir_all(&cifar).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/cifar/cifar10_test20.bin"
    );
    for f in ["data_batch_1.bin", "test_batch.bin"] {
        std::fs::copy(fixture, cifar.join(f)).unwrap();
    }
    let (code, said) = gpu_check(&[
        "--device",
        "cpu",
        "--small",
        "--out",
        out.to_str().unwrap(),
        "--paper-data",
        cifar.parent().unwrap().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("gpu-check: OK (cpu)"), "{said}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap())
            .unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["runs"]["close"], true, "{doc}");
    assert_eq!(doc["runs"]["device_run"]["device"], "cpu");
    for kind in ["interp", "uniform"] {
        let s = doc["probes"][kind]["seconds_per_point_median"]
            .as_f64()
            .unwrap();
        assert!(s > 0.0, "{kind}: {doc}");
    }
    assert_eq!(
        doc["probes"]["uniform"]["probes"], 10,
        "5 directions through 2 centres"
    );
    assert!(
        doc["bench"]["preresnet20"]["valleys_samples_per_s"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // On a CPU the twin waits for the run; it trained, and the dashboard was captured.
    assert_eq!(doc["twin"]["beside_the_run"], false, "{doc}");
    assert!(doc["twin"]["twin_seconds"].as_f64().unwrap() > 0.0);
    let torchscript = &doc["torchscript"];
    assert!(
        torchscript["finished"]
            .as_str()
            .is_some_and(|s| s.starts_with("finished in")),
        "{doc}"
    );
    assert!(
        torchscript["probe_cost"]
            .as_str()
            .is_some_and(|s| s.starts_with("cost:")),
        "{doc}"
    );
    let plane = &doc["plane"];
    assert!(
        plane["plane_cost"]
            .as_str()
            .is_some_and(|s| s.starts_with("cost:") && s.contains("for 9 points")),
        "{doc}"
    );
    assert_eq!(plane["bench_plane"]["points"], 4, "{doc}");
    assert!(plane["bench_plane"]["ratio_to_forward"].as_f64().unwrap() > 0.0);
    assert!(plane["eval_valleys_samples_per_s"].as_f64().unwrap() > 0.0);
    let paper = &doc["paper_preset"];
    assert_eq!(
        (&paper["steps"], &paper["batch"]),
        (&2.into(), &2.into()),
        "{doc}"
    );
    assert!(
        paper["finished"]
            .as_str()
            .is_some_and(|s| s.starts_with("finished in")),
        "{doc}"
    );
    let screen = std::fs::read_to_string(out.join("dashboard.txt")).unwrap();
    assert!(screen.contains("valleys · quick"), "{screen}");
    assert!(out.join("gpu-check.log").is_file());
}

#[test]
fn the_gpu_check_fails_loudly_without_cuda() {
    let tmp = tempfile::tempdir().unwrap();
    let info = common::run(tmp.path(), &["info"]);
    if info.stdout.contains("CUDA available: true") {
        eprintln!("this machine has CUDA: the failure path is not reachable here");
        return;
    }
    // The CPU cut does not claim a CUDA build it cannot use.
    if info.stdout.contains("CUDA backend: absent") {
        assert!(
            info.stdout
                .contains("CUDA build: none: this is the CPU-only cut"),
            "{}",
            info.stdout
        );
    }
    let out = tmp.path().join("out");
    let (code, said) = gpu_check(&["--device", "cuda", "--out", out.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{said}");
    let last = said
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.starts_with(
            "gpu-check: FAILED: CUDA is not available to valleys: CUDA backend: absent"
        ),
        "{said}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap())
            .unwrap();
    assert_eq!(doc["status"], "failed");
    assert!(
        doc["failure"]
            .as_str()
            .unwrap()
            .contains("CUDA is not available")
    );
}
