#!/usr/bin/env bash
# Finds or fetches libtorch 2.11.0 (the version tch 0.24.0 is built for) and points cargo at it.
#
# Order of preference:
#   1. LIBTORCH already set by the user (e.g. a GPU box's own torch 2.11.0): checked, then used.
#   2. A PyTorch 2.11.0 importable by python3: its torch/ directory.
#   3. The shared cache (XDG cache dir): fetched once from PyPI, hash-pinned, reused by every clone.
# It then writes .cargo/config.toml so that plain `cargo build` / `cargo test` work too.
# Prints the chosen LIBTORCH directory on stdout; messages go to stderr.
set -euo pipefail

want_version="2.11.0"
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/valleys"
cache_dir="$cache_root/libtorch-$want_version"
python="${PYTHON:-python3}"

say() { echo "setup-libtorch: $*" >&2; }
die() { echo "setup-libtorch: error: $*" >&2; exit 1; }

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

fetch_into_cache() {
    command -v "$python" >/dev/null || die "python3 with pip is needed to fetch libtorch from PyPI"
    mkdir -p "$cache_root"
    fetch_work=$(mktemp -d "$cache_root/.fetch-XXXXXX")
    trap 'rm -rf "$fetch_work"' EXIT
    local work="$fetch_work"
    say "fetching libtorch $want_version from PyPI (about 545 MB, once per machine) into $cache_dir"
    "$python" -m pip download --quiet --no-deps --no-cache-dir --require-hashes \
        --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -r "$repo_root/scripts/libtorch-requirements.txt" -d "$work/wheels" >&2 ||
        die "pip could not download the pinned wheels (network or hash mismatch); see the messages above"
    say "extracting the libraries and headers"
    "$python" - "$work/wheels" "$work/out" <<'PY'
import sys, zipfile, pathlib
wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wanted = {
    "torch": lambda n: n.startswith("torch/include/") or n in (
        "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so",
        "torch/lib/libgomp.so.1", "torch/lib/libtorch.so"),
    "nvidia_cuda_runtime": lambda n: n == "nvidia/cu13/lib/libcudart.so.13",
    "nvidia_cuda_cupti": lambda n: n == "nvidia/cu13/lib/libcupti.so.13",
}
for whl in sorted(wheels.glob("*.whl")):
    pick = next(f for k, f in wanted.items() if whl.name.startswith(k + "-"))
    with zipfile.ZipFile(whl) as z:
        members = [m for m in z.namelist() if pick(m)]
        if not members:
            sys.exit(f"{whl.name}: none of the expected members found")
        z.extractall(out, members)
for lib in out.rglob("*.so*"):
    lib.chmod(0o755)
PY
    [ "$(header_version "$work/out/torch")" = "$want_version" ] || die "extracted headers are not $want_version"
    rm -rf "$cache_dir"
    mv "$work/out" "$cache_dir"
    touch "$cache_dir/.complete"
}

if [ -n "${LIBTORCH:-}" ]; then
    check_libtorch "$LIBTORCH" LIBTORCH
    dir="$LIBTORCH"
    say "using LIBTORCH=$dir (set by you)"
elif py_torch=$("$python" -c 'import os, torch; print(torch.__version__.split("+")[0], os.path.dirname(torch.__file__))' 2>/dev/null) &&
    [ "${py_torch%% *}" = "$want_version" ]; then
    dir="${py_torch#* }"
    check_libtorch "$dir" "python3's torch"
    say "using the PyTorch $want_version that python3 imports: $dir"
else
    [ -f "$cache_dir/.complete" ] || fetch_into_cache
    dir="$cache_dir/torch"
    check_libtorch "$dir" "cached libtorch"
fi

config="$repo_root/.cargo/config.toml"
mkdir -p "$repo_root/.cargo"
tmp=$(mktemp "$config.XXXXXX")
cat >"$tmp" <<TOML
# Written by scripts/setup-libtorch.sh (make setup); not tracked. A LIBTORCH in the environment wins.
[env]
LIBTORCH = "$dir"
TOML
mv "$tmp" "$config"
echo "$dir"
