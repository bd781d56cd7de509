#!/usr/bin/env bash
# Finds or fetches libtorch 2.11.0 (the version tch 0.24.0 is built for) and points cargo at it.
#
# Order of preference:
#   1. LIBTORCH already set by the user (e.g. a GPU box's own torch 2.11.0): checked, then used.
#   2. A PyTorch 2.11.0 importable by python3: its torch/ directory.
#   3. The shared cache (XDG cache dir), fetched once from PyPI, hash-pinned, reused by every clone:
#      - the CUDA build (scripts/libtorch-cuda-requirements.txt, about 2.5 GB) on a machine with an
#        NVIDIA GPU (nvidia-smi -L lists one, or /proc/driver/nvidia/gpus/ is not empty);
#      - the CPU cut (scripts/libtorch-requirements.txt, about 545 MB) everywhere else.
#      VALLEYS_CUDA=1 forces the CUDA build (to build or test a binary for a GPU box on a machine
#      without one), VALLEYS_CUDA=0 the CPU cut. Both can sit in the cache side by side.
# It then writes .cargo/config.toml so that plain `cargo build` / `cargo test` work too.
# Prints the chosen LIBTORCH directory on stdout; messages go to stderr.
#
#   --no-config      print the directory but leave .cargo/config.toml alone
#   --cache cpu|cuda the cache of that kind (fetched if missing), whatever LIBTORCH, python3's torch
#                    and the GPUs say (make check-cuda-build uses both)
set -euo pipefail

want_version="2.11.0"
cuda_tag="cu130"
# The oldest NVIDIA driver branch that runs CUDA 13.0 (NVIDIA's CUDA release notes, table 3).
min_driver_major=580
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/valleys"
python="${PYTHON:-python3}"
write_config=1
forced_cache=""

say() { echo "setup-libtorch: $*" >&2; }
die() { echo "setup-libtorch: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --no-config) write_config=0; shift ;;
        --cache)
            case "${2:-}" in
                cpu|cuda) forced_cache=$2; shift 2 ;;
                *) die "--cache ${2:-}: expected cpu or cuda" ;;
            esac ;;
        *) die "unknown argument '$1' (expected --no-config or --cache cpu|cuda)" ;;
    esac
done

header_version() {
    local h="$1/include/torch/headeronly/version.h"
    [ -f "$h" ] || h="$1/include/torch/csrc/api/include/torch/version.h"
    [ -f "$h" ] || { echo "none"; return; }
    # TORCH_VERSION is defined on the line after its #define in 2.11's header.
    grep -A1 '#define TORCH_VERSION \\\|#define TORCH_VERSION "' "$h" | grep -o '"[0-9.]*"' | head -n1 | tr -d '"'
}

check_libtorch() {
    local dir="$1" origin="$2" v
    [ -d "$dir/include" ] && [ -d "$dir/lib" ] ||
        die "$origin=$dir has no include/ and lib/; expected a libtorch $want_version directory (unset it to let 'make' fetch one)"
    [ -e "$dir/lib/libtorch_cpu.so" ] ||
        die "$origin=$dir has no lib/libtorch_cpu.so; expected a libtorch $want_version directory"
    v=$(header_version "$dir")
    [ "$v" = "$want_version" ] ||
        die "$origin=$dir is libtorch $v, but tch 0.24.0 needs $want_version (unset it to let 'make' fetch $want_version)"
}

# The NVIDIA GPUs this machine shows, one line each (nothing without a driver).
nvidia_gpus() {
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi -L 2>/dev/null | grep '^GPU ' && return
    fi
    if [ -d /proc/driver/nvidia/gpus ]; then
        local gpu
        for gpu in /proc/driver/nvidia/gpus/*; do
            [ -e "$gpu" ] && echo "GPU at PCI ${gpu##*/}"
        done
    fi
    return 0
}

# The NVIDIA driver's version (e.g. 580.95.05), or nothing.
driver_version() {
    if [ -r /proc/driver/nvidia/version ]; then
        grep -o 'Kernel Module[^0-9]*[0-9][0-9.]*' /proc/driver/nvidia/version | grep -o '[0-9][0-9.]*$' | head -n1 && return
    fi
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1
    fi
    return 0
}

# Decides between the CUDA build and the CPU cut; sets `variant` (cuda or cpu) and says why.
choose_variant() {
    case "${VALLEYS_CUDA:-}" in
        1) variant=cuda; say "VALLEYS_CUDA=1: using the CUDA build of libtorch" ;;
        0) variant=cpu; say "VALLEYS_CUDA=0: using the CPU-only cut of libtorch" ;;
        "")
            local gpus driver
            gpus=$(nvidia_gpus)
            if [ -z "$gpus" ]; then
                variant=cpu
                return
            fi
            driver=$(driver_version)
            say "NVIDIA GPU found: $(echo "$gpus" | head -n1)$([ "$(echo "$gpus" | wc -l)" -gt 1 ] && echo " (and $(($(echo "$gpus" | wc -l) - 1)) more)"), driver ${driver:-unknown}"
            if [ -n "$driver" ] && [ "${driver%%.*}" -lt "$min_driver_major" ] 2>/dev/null; then
                variant=cpu
                say "warning: driver $driver is older than CUDA 13.0 needs ($min_driver_major or newer), so the CUDA build would not run here: using the CPU-only cut."
                say "warning: install a driver >= $min_driver_major and run 'make' again, or set LIBTORCH to a torch $want_version built for CUDA 12.x (VALLEYS_CUDA=1 fetches the CUDA 13.0 build anyway)"
            else
                variant=cuda
                say "using the CUDA build of libtorch (VALLEYS_CUDA=0 takes the CPU-only cut instead)"
            fi
            ;;
        *) die "VALLEYS_CUDA=${VALLEYS_CUDA}: expected 1 (the CUDA build) or 0 (the CPU-only cut), or unset to decide by the GPUs found" ;;
    esac
}

pip_download() {
    local requirements="$1" dest="$2"
    shift 2
    "$python" -m pip download --no-deps --no-cache-dir --require-hashes --disable-pip-version-check \
        --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_25_x86_64 --platform manylinux_2_18_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
        --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
        "$@" -r "$requirements" -d "$dest" >&2
}

# fetch_into_cache VARIANT DIR: downloads the variant's wheels and extracts what libtorch needs into
# DIR, keeping the wheels' layout (torch/lib beside nvidia/*/lib) so that the libraries' own
# $ORIGIN run paths resolve. Downloaded wheels are kept in a side directory until the extraction
# has succeeded, so an interrupted fetch resumes where it stopped (pip checks each kept wheel's
# hash and fetches it again if it does not match); DIR itself appears whole or not at all.
fetch_into_cache() {
    local variant="$1" dir="$2" requirements size label wheels
    command -v "$python" >/dev/null || die "python3 with pip is needed to fetch libtorch from PyPI"
    mkdir -p "$cache_root"
    if [ "$variant" = cuda ]; then
        requirements="$repo_root/scripts/libtorch-cuda-requirements.txt"
        size="16 wheels, 2.5 GB to download, 3.6 GB on disk"
        label="the CUDA 13.0 build"
    else
        requirements="$repo_root/scripts/libtorch-requirements.txt"
        size="3 wheels, 545 MB to download, 500 MB on disk"
        label="the CPU-only cut"
    fi
    wheels="$cache_root/.wheels-$(basename "$dir")"
    mkdir -p "$wheels"
    say "fetching $label of libtorch $want_version from PyPI ($size; once per machine) into $dir"
    if [ -n "$(ls -A "$wheels")" ]; then
        say "resuming an interrupted fetch: $(du -sh "$wheels" | cut -f1) already downloaded"
    fi
    local quiet=()
    [ "$variant" = cpu ] && quiet=(--quiet)
    pip_download "$requirements" "$wheels" "${quiet[@]}" ||
        die "pip could not download the pinned wheels (network or hash mismatch); see the messages above. Run 'make' again to resume."
    say "extracting the libraries and headers"
    fetch_work=$(mktemp -d "$cache_root/.extract-XXXXXX")
    trap 'rm -rf "$fetch_work"' EXIT
    "$python" - "$wheels" "$fetch_work/out" "$variant" "$requirements" <<'PY'
import pathlib, re, sys, zipfile
wheels, out, variant, requirements = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
if variant == "cpu":
    wanted = {
        "torch": lambda n: n.startswith("torch/include/") or n in (
            "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so",
            "torch/lib/libgomp.so.1", "torch/lib/libtorch.so"),
        "nvidia_cuda_runtime": lambda n: n == "nvidia/cu13/lib/libcudart.so.13",
        "nvidia_cuda_cupti": lambda n: n == "nvidia/cu13/lib/libcupti.so.13",
    }
    pick = lambda whl: next(f for k, f in wanted.items() if whl.startswith(k + "-"))
else:
    # Every shared library of torch/lib (not the Python extension) and of the nvidia */lib
    # directories (not their static archives).
    def pick(whl):
        if whl.startswith("torch-"):
            return lambda n: n.startswith("torch/include/") or (
                n.startswith("torch/lib/lib") and ".so" in n and n != "torch/lib/libtorch_python.so")
        return lambda n: re.fullmatch(r"nvidia/[^/]+/lib/[^/]+\.so(\.[0-9a-z.]+)?", n) is not None
# Only the pinned wheels: a stray file in the download directory must not end up in libtorch.
pinned = {re.split(r"[=\s]", line, 1)[0].replace("-", "_").lower()
          for line in open(requirements) if line.strip() and not line.startswith("#")}
seen = set()
for whl in sorted(wheels.glob("*.whl")):
    name = whl.name.split("-", 1)[0].lower()
    if name not in pinned:
        continue
    seen.add(name)
    choose = pick(whl.name)
    with zipfile.ZipFile(whl) as z:
        members = [m for m in z.namelist() if choose(m)]
        if not members:
            sys.exit(f"{whl.name}: none of the expected members found")
        z.extractall(out, members)
if seen != pinned:
    sys.exit(f"wheels missing after the download: {sorted(pinned - seen)}")
for lib in out.rglob("*.so*"):
    lib.chmod(0o755)
PY
    [ "$(header_version "$fetch_work/out/torch")" = "$want_version" ] || die "extracted headers are not $want_version"
    touch "$fetch_work/out/.complete"
    rm -rf "$dir"
    mv "$fetch_work/out" "$dir"
    rm -rf "$wheels" "$fetch_work"
    say "$label of libtorch $want_version is ready: $(du -sh "$dir" | cut -f1) in $dir"
}

if [ -n "$forced_cache" ]; then
    variant=$forced_cache
elif [ -n "${LIBTORCH:-}" ]; then
    check_libtorch "$LIBTORCH" LIBTORCH
    dir="$LIBTORCH"
    say "using LIBTORCH=$dir (set by you)"
elif py_torch=$("$python" -c 'import os, torch; print(torch.__version__.split("+")[0], os.path.dirname(torch.__file__))' 2>/dev/null) &&
    [ "${py_torch%% *}" = "$want_version" ]; then
    dir="${py_torch#* }"
    check_libtorch "$dir" "python3's torch"
    say "using the PyTorch $want_version that python3 imports: $dir"
else
    choose_variant
fi
if [ -n "${variant:-}" ]; then
    if [ "$variant" = cuda ]; then
        cache_dir="$cache_root/libtorch-$want_version-$cuda_tag"
    else
        cache_dir="$cache_root/libtorch-$want_version"
    fi
    if [ ! -f "$cache_dir/.complete" ]; then
        mkdir -p "$cache_root"
        # One fetch at a time per cache: a second `make` waits for the first one's result.
        exec 9>"$cache_root/.lock-$(basename "$cache_dir")"
        if command -v flock >/dev/null && ! flock -n 9; then
            say "another setup is fetching into $cache_dir; waiting for it"
            flock 9
        fi
        [ -f "$cache_dir/.complete" ] || fetch_into_cache "$variant" "$cache_dir"
    fi
    dir="$cache_dir/torch"
    check_libtorch "$dir" "cached libtorch"
    if [ "$variant" = cuda ] && [ ! -e "$dir/lib/libtorch_cuda.so" ]; then
        die "$dir has no lib/libtorch_cuda.so; remove $cache_dir and run 'make' again"
    fi
fi

if [ $write_config = 1 ]; then
    config="$repo_root/.cargo/config.toml"
    mkdir -p "$repo_root/.cargo"
    tmp=$(mktemp "$config.XXXXXX")
    cat >"$tmp" <<TOML
# Written by scripts/setup-libtorch.sh (make setup); not tracked. A LIBTORCH in the environment wins.
[env]
LIBTORCH = "$dir"
TOML
    mv "$tmp" "$config"
fi
echo "$dir"
