//! scripts/setup-libtorch.sh chooses the CUDA build on a GPU machine and the CPU cut elsewhere,
//! obeys VALLEYS_CUDA, and steps back from the CUDA build when the driver is too old for it.
//! The cache holds made-up libtorch directories here, so nothing is fetched; an `nvidia-smi`
//! on PATH plays the GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

const CPU: &str = "libtorch-2.11.0";
const CUDA: &str = "libtorch-2.11.0-cu130";

/// A cache root holding both kinds of libtorch, complete, as the script leaves them.
fn cache_with_both_builds(root: &Path) {
    for (name, cuda) in [(CPU, false), (CUDA, true)] {
        let torch = root.join("valleys").join(name).join("torch");
        std::fs::create_dir_all(torch.join("include/torch/headeronly")).unwrap();
        std::fs::create_dir_all(torch.join("lib")).unwrap();
        std::fs::write(
            torch.join("include/torch/headeronly/version.h"),
            "#define TORCH_VERSION \\\n  \"2.11.0\"\n",
        )
        .unwrap();
        std::fs::write(torch.join("lib/libtorch_cpu.so"), "").unwrap();
        if cuda {
            std::fs::write(torch.join("lib/libtorch_cuda.so"), "").unwrap();
        }
        std::fs::write(root.join("valleys").join(name).join(".complete"), "").unwrap();
    }
}

/// A bin directory with an `nvidia-smi` that lists one H200 on `driver`.
fn fake_nvidia_smi(bin: &Path, driver: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).unwrap();
    let script = bin.join("nvidia-smi");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n  -L) echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)';;\n  *driver_version*) echo '{driver}';;\n  *) exit 1;;\nesac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Outcome {
    ok: bool,
    chosen: String,
    said: String,
}

/// Runs the script with `env` on a PATH that may start with `gpu_bin`; never writes the
/// checkout's .cargo/config.toml.
fn setup(cache: &Path, gpu_bin: Option<&Path>, env: &[(&str, &str)]) -> Outcome {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-libtorch.sh");
    let path = std::env::var("PATH").unwrap_or_default();
    // The machine's own nvidia-smi, if any, must not answer.
    let path: Vec<&str> = path
        .split(':')
        .filter(|d| !Path::new(d).join("nvidia-smi").exists())
        .collect();
    let path = match gpu_bin {
        Some(bin) => format!("{}:{}", bin.display(), path.join(":")),
        None => path.join(":"),
    };
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .arg("--no-config")
        .env("XDG_CACHE_HOME", cache)
        .env("PATH", path)
        .env("PYTHON", "false")
        .env_remove("LIBTORCH")
        .env_remove("VALLEYS_CUDA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Outcome {
        ok: out.status.success(),
        chosen: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        said: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn torch_of(cache: &Path, name: &str) -> String {
    let dir: PathBuf = cache.join("valleys").join(name).join("torch");
    dir.display().to_string()
}

/// A temporary cache holding both builds, or None (after saying why) on a machine with an
/// NVIDIA driver: what reads a GPU from /proc cannot be faked, so there the GPU is real.
fn cache_on_a_machine_without_a_gpu() -> Option<tempfile::TempDir> {
    if Path::new("/proc/driver/nvidia/version").exists() {
        eprintln!("skipped: this machine has an NVIDIA driver");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    cache_with_both_builds(tmp.path());
    Some(tmp)
}

#[test]
fn a_machine_without_a_gpu_gets_the_cpu_cut_unless_cuda_is_forced() {
    let Some(tmp) = cache_on_a_machine_without_a_gpu() else {
        return;
    };
    let plain = setup(tmp.path(), None, &[]);
    assert!(plain.ok, "{}", plain.said);
    assert_eq!(plain.chosen, torch_of(tmp.path(), CPU), "{}", plain.said);

    let forced = setup(tmp.path(), None, &[("VALLEYS_CUDA", "1")]);
    assert!(forced.ok, "{}", forced.said);
    assert_eq!(forced.chosen, torch_of(tmp.path(), CUDA));
    assert!(forced.said.contains("VALLEYS_CUDA=1"), "{}", forced.said);
}

#[test]
fn a_gpu_machine_gets_the_cuda_build_unless_told_otherwise() {
    let Some(tmp) = cache_on_a_machine_without_a_gpu() else {
        return;
    };
    let bin = tmp.path().join("bin");
    fake_nvidia_smi(&bin, "580.95.05");

    let gpu = setup(tmp.path(), Some(&bin), &[]);
    assert!(gpu.ok, "{}", gpu.said);
    assert_eq!(gpu.chosen, torch_of(tmp.path(), CUDA), "{}", gpu.said);
    assert!(
        gpu.said
            .contains("NVIDIA GPU found: GPU 0: NVIDIA H200 (UUID: GPU-0), driver 580.95.05"),
        "{}",
        gpu.said
    );

    let cpu = setup(tmp.path(), Some(&bin), &[("VALLEYS_CUDA", "0")]);
    assert!(cpu.ok, "{}", cpu.said);
    assert_eq!(cpu.chosen, torch_of(tmp.path(), CPU));
}

#[test]
fn a_driver_too_old_for_cuda_13_gets_the_cpu_cut_and_the_way_out() {
    let Some(tmp) = cache_on_a_machine_without_a_gpu() else {
        return;
    };
    let bin = tmp.path().join("bin");
    fake_nvidia_smi(&bin, "535.104.05");
    let old = setup(tmp.path(), Some(&bin), &[]);
    assert!(old.ok, "{}", old.said);
    assert_eq!(old.chosen, torch_of(tmp.path(), CPU));
    assert!(
        old.said
            .contains("driver 535.104.05 is older than CUDA 13.0 needs (580 or newer)")
            && old
                .said
                .contains("LIBTORCH to a torch 2.11.0 built for CUDA 12.x"),
        "{}",
        old.said
    );
    // Forcing still fetches (here: finds) the CUDA build.
    let forced = setup(tmp.path(), Some(&bin), &[("VALLEYS_CUDA", "1")]);
    assert_eq!(forced.chosen, torch_of(tmp.path(), CUDA));
}

#[test]
fn a_bad_valleys_cuda_value_is_one_line_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    cache_with_both_builds(tmp.path());
    let bad = setup(tmp.path(), None, &[("VALLEYS_CUDA", "yes")]);
    assert!(!bad.ok);
    assert_eq!(bad.chosen, "");
    assert_eq!(
        bad.said.trim(),
        "setup-libtorch: error: VALLEYS_CUDA=yes: expected 1 (the CUDA build) or 0 (the CPU-only cut), or unset to decide by the GPUs found"
    );
}

#[test]
fn a_cache_without_its_completion_mark_is_not_used() {
    // An interrupted fetch leaves no `.complete`: the script must fetch again rather than use it.
    // With pip unreachable (PYTHON=false) that is a clear failure, not a half-made libtorch.
    let tmp = tempfile::tempdir().unwrap();
    cache_with_both_builds(tmp.path());
    std::fs::remove_file(tmp.path().join("valleys").join(CPU).join(".complete")).unwrap();
    let said = setup(tmp.path(), None, &[("VALLEYS_CUDA", "0")]);
    assert!(!said.ok, "{}", said.said);
    assert_eq!(said.chosen, "");
    assert!(
        said.said
            .contains("fetching the CPU-only cut of libtorch 2.11.0"),
        "{}",
        said.said
    );
}
