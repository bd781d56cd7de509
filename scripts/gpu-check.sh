#!/usr/bin/env bash
# The GPU check: proves a release binary's CUDA path in one go (about 5 minutes on one GPU) and
# writes OUT/gpu-check.json (every figure) and OUT/gpu-check.log (everything printed).
#
#   scripts/gpu-check.sh [--valleys BIN] [--python PY] [--libtorch DIR] [--device cuda|cuda:N|cpu]
#                        [--small] [--out DIR] [--paper-data DIR]
#
# Steps: `valleys info` (the CUDA backend loaded, the GPU named); the quick experiment for 3
# epochs on the device and on the CPU (close, not bit-equal); probes of the device run (an
# interpolation and 5 random directions) with seconds per point; `valleys bench train` against
# bench/reference.py (PyTorch) for PreResNet-20 and PreResNet-164 on CIFAR-shaped data; the
# dashboard in tmux on a device run with the no-BN twin training beside it (one screen
# captured); a TorchScript model on safetensors data (experiments/torchscript.yaml) trained and
# probed on the device; a 21x21 plane through the device run, `valleys bench plane` and the
# evaluation pass against PyTorch eager; the curvature of the device run (top-5 eigenvalues,
# trace) and Hessian-vector products against PyHessian's on the same weights; the peak GPU
# memory seen by nvidia-smi while all of this ran; and the paper's PreResNet-164 on CIFAR-10
# (experiments/paper/preresnet164-cifar10.yaml) for 300 steps when its data are reachable: in the
# cache, through VALLEYS_DATA_MIRROR or the internet (`valleys data fetch cifar10`), or in the
# folder --paper-data DIR names; else the step says why it skipped.
#
# Any CUDA problem fails the check: a non-zero exit and one line `gpu-check: FAILED: ...`.
# --device cpu --small runs every step on the CPU with small sizes (the test suite does, so the
# script itself is tested where there is no GPU).
#
# The libtorch it checks, named in its first lines: --libtorch DIR (a `torch` directory) if given;
# else the binary's own, the one `make` set up (the cached CUDA build on a GPU box, or python3's
# torch 2.11.0), when the binary starts with it; else, for a binary carried from another machine,
# the libtorch of PY's torch 2.11.0 through LD_LIBRARY_PATH. PY (default python3) also runs the
# PyTorch reference of the bench step (`make gpu-check` passes bench/.venv's).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
valleys="$repo/target/release/valleys"
python=python3
libtorch=""
device=cuda
small=0
paper_data=""
out="${OUT:-$repo/gpu-check-out}"

while [ $# -gt 0 ]; do
    case "$1" in
        --valleys) valleys=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --libtorch) libtorch=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --small) small=1; shift ;;
        --out) out=$2; shift 2 ;;
        --paper-data) paper_data=$2; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "gpu-check: FAILED: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$out" || { echo "gpu-check: FAILED: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
valleys=$(cd "$(dirname "$valleys")" 2>/dev/null && pwd)/$(basename "$valleys")
log="$out/gpu-check.log"
: > "$log"
exec > >(tee -a "$log") 2>&1
work=$(mktemp -d)
results="$work/results.jsonl"
: > "$results"
sampler=""
session="valleys-gpu-check-$$"

cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    tmux kill-session -t "$session" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# record KEY JSON: one result of the check.
record() { printf '{"key": "%s", "value": %s}\n' "$1" "$2" >> "$results"; }

# write STATUS [MESSAGE]: gpu-check.json from every result recorded so far.
write_json() {
    "$python" - "$results" "$out/gpu-check.json" "$1" "${2:-}" <<'PY'
import json, sys
results, path, status, message = sys.argv[1:5]
doc = {"status": status}
if message:
    doc["failure"] = message
for line in open(results):
    item = json.loads(line)
    doc[item["key"]] = item["value"]
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
PY
}

fail() {
    echo "gpu-check: FAILED: $*"
    write_json failed "$*"
    exit 1
}

step() { echo; echo "== $* ($(date +%H:%M:%S))"; }

# A JSON string of a file's text.
json_text() { "$python" -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$1"; }

command -v "$python" >/dev/null || { echo "gpu-check: FAILED: $python not found (--python)"; exit 1; }
[ -x "$valleys" ] || fail "$valleys is not an executable (build it with 'cargo build --release', or pass --valleys)"
cd "$repo" || fail "cannot enter $repo"

# The libtorch under test, said first.
torch_version=$("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null)
have_torch=0
[ -n "$torch_version" ] && have_torch=1
if [ -n "$libtorch" ]; then
    [ -e "$libtorch/lib/libtorch_cpu.so" ] || fail "--libtorch $libtorch: no lib/libtorch_cpu.so there (expected a libtorch 2.11.0 'torch' directory)"
    export LD_LIBRARY_PATH="$libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    libtorch_origin="given with --libtorch"
elif "$valleys" info > /dev/null 2>&1; then
    libtorch_origin="the binary's own: the libtorch it was built against (make setup), or LD_LIBRARY_PATH"
elif [ "${torch_version%%+*}" = 2.11.0 ]; then
    torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
    export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    libtorch_origin="$python's torch $torch_version (the binary does not start with its own)"
else
    fail "$valleys does not start with its own libtorch ($("$valleys" info 2>&1 | head -n1)) and $python has no torch 2.11.0 to lend it one: pass --libtorch DIR or --python PY"
fi
libtorch_dir=$("$valleys" info 2>/dev/null | sed -n 's/^libtorch: //p')
echo "gpu-check: libtorch: $libtorch_dir ($libtorch_origin)"
echo "gpu-check: $("$valleys" info 2>/dev/null | grep '^CUDA backend:')"
record libtorch "{\"dir\": \"$libtorch_dir\", \"origin\": \"$libtorch_origin\"}"
on_gpu=0
case "$device" in cuda*) on_gpu=1 ;; cpu) ;; *) fail "--device $device: expected cuda, cuda:N or cpu" ;; esac
record device "\"$device\""
record small "$([ $small = 1 ] && echo true || echo false)"

if [ $small = 1 ]; then
    epochs=2
    sizes=(--set data.train_subset=1024 --set data.test_subset=256 --set eval.train_subset=256
           --set swa.start_epoch=1)
    probe_sizes=(--points 9 --train-subset 256 --bn-subset 256)
    plane_sizes=(--points 3x3 --train-subset 256 --test-subset 256 --bn-subset 256)
    bench_plane_points=2x2
    bench_models=(preresnet20)
    bench_steps=4
    paper_steps=2
    paper_batch=2
else
    epochs=3
    sizes=(--set swa.start_epoch=2)
    probe_sizes=()
    plane_sizes=()
    bench_plane_points=5x5
    bench_models=(preresnet20 preresnet164)
    bench_steps=100
    paper_steps=300
    paper_batch=128
fi

step "valleys info"
"$valleys" info > "$work/info.txt" 2>&1 || fail "valleys info: $(tail -n1 "$work/info.txt")"
cat "$work/info.txt"
record info "$(json_text "$work/info.txt")"
if [ $on_gpu = 1 ]; then
    grep -q '^CUDA available: true' "$work/info.txt" ||
        fail "CUDA is not available to valleys: $(grep -E '^CUDA' "$work/info.txt" | tr '\n' ' ')"
    command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: no NVIDIA driver on this machine"
    gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i "${device#cuda:}" 2>/dev/null ||
          nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n1)
    echo "GPU: $gpu"
    record gpu "\"$gpu\""
    # Peak GPU memory over the whole check.
    ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$work/memory.txt" 2>/dev/null; sleep 0.5; done ) &
    sampler=$!
fi

step "the quick experiment for $epochs epochs on $device and on the CPU"
# train DEVICE DIR: the quick experiment, headless; its wall time goes to DIR.seconds.
train() {
    local where=$1 dir=$2 start end
    start=$(date +%s.%N)
    "$valleys" run experiments/quick.yaml --headless --device "$where" --out "$dir" \
        --set train.epochs=$epochs "${sizes[@]}" > "$dir.log" 2>&1 ||
        fail "training on $where: $(tail -n1 "$dir.log")"
    end=$(date +%s.%N)
    tail -n2 "$dir.log"
    echo "$start $end" | awk '{printf "%.2f", $2 - $1}' > "$dir.seconds"
}
train "$device" "$work/run-device"
train cpu "$work/run-cpu"
device_seconds=$(cat "$work/run-device.seconds")
cpu_seconds=$(cat "$work/run-cpu.seconds")
comparison=$("$python" - "$work/run-device" "$work/run-cpu" "$device" "$device_seconds" "$cpu_seconds" <<'PY'
import json, math, os, sys
dev, cpu, device, dev_s, cpu_s = sys.argv[1:6]
def last(run):
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    out = {}
    for r in rows:
        if r["split"] == "test" and r["iterate"] in ("sgd", "swa"):
            out[r["iterate"]] = r["loss"]
    return out
a, b = last(dev), last(cpu)
info = json.load(open(os.path.join(dev, "run.json")))
close = all(isinstance(a.get(k), (int, float)) and isinstance(b.get(k), (int, float))
            and math.isfinite(a[k]) and abs(a[k] - b[k]) <= 0.1 * max(abs(b[k]), 0.1) for k in ("sgd", "swa"))
print(json.dumps({
    "device_run": {"test_loss": a, "seconds": float(dev_s), "device": info["device"]["name"],
                   "machine": info.get("machine", {})},
    "cpu_run": {"test_loss": b, "seconds": float(cpu_s)},
    "close": close,
    "bit_equal": a == b,
}))
PY
) || fail "comparing the runs"
echo "$comparison"
record runs "$comparison"
"$python" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["close"] else 1)' "$comparison" ||
    fail "the $device run's test losses are not close to the CPU run's: $comparison"
if [ $on_gpu = 1 ]; then
    "$python" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["device_run"]["device"].startswith("cuda") else 1)' "$comparison" ||
        fail "the run did not train on CUDA: $comparison"
    "$python" -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(1 if d["bit_equal"] else 0)' "$comparison" ||
        echo "note: the $device and CPU runs are bit-equal, which a GPU run should not be"
    # The machine strip's numbers come from NVML: the run kept the GPU's name and its peak.
    "$python" -c 'import json,sys; m=json.loads(sys.argv[1])["device_run"]["machine"]; sys.exit(0 if m.get("gpu_name") and m.get("gpu_memory_peak_bytes", 0) > 0 else 1)' "$comparison" ||
        fail "run.json has no GPU name and peak GPU memory from NVML: $comparison"
fi

step "probes of the $device run: an interpolation and 5 uniform directions"
"$valleys" probe "$work/run-device" --device "$device" --direction interp "${probe_sizes[@]}" \
    > "$work/probe-interp.log" 2>&1 || fail "interp probe: $(tail -n1 "$work/probe-interp.log")"
tail -n3 "$work/probe-interp.log"
"$valleys" probe "$work/run-device" --device "$device" --direction uniform --directions 5 "${probe_sizes[@]}" \
    > "$work/probe-uniform.log" 2>&1 || fail "uniform probes: $(tail -n1 "$work/probe-uniform.log")"
tail -n4 "$work/probe-uniform.log"
probes=$("$python" - "$work/run-device/probes" <<'PY'
import glob, json, statistics, sys
kinds = {}
for path in sorted(glob.glob(sys.argv[1] + "/*.json")):
    doc = json.load(open(path))
    if doc.get("batch"):
        continue
    kinds.setdefault(doc["spec"]["direction"], []).append(doc["cost"])
print(json.dumps({k: {
    "probes": len(v),
    "seconds_per_point_median": statistics.median(c["seconds_per_point"] for c in v),
    "ratio_to_forward_median": statistics.median(c["ratio_to_forward"] for c in v),
} for k, v in kinds.items()}))
PY
) || fail "reading the probe results"
echo "$probes"
record probes "$probes"

step "curvature of the $device run: top-5 eigenvalues and the trace, Hessian-vector products against PyHessian"
if [ $small = 1 ]; then
    curvature_sizes=(--samples 128 --sets 2 --top-k 2 --trace-vectors 4 --density-runs 1 --density-steps 5
                     --noise-draws 2 --ascent-steps 2)
else
    curvature_sizes=(--samples 1024 --top-k 5 --trace-vectors 20)
fi
"$valleys" curvature "$work/run-device" --device "$device" "${curvature_sizes[@]}" \
    > "$work/curvature.log" 2>&1 || fail "valleys curvature: $(tail -n1 "$work/curvature.log")"
grep -E '^curvature|^(sgd|swa):' "$work/curvature.log" | head -n4
curvature=$("$python" - "$work/run-device/curvature" <<'PY'
import glob, json, sys
[path] = sorted(glob.glob(sys.argv[1] + "/*.json"))[-1:]
doc = json.load(open(path))
print(json.dumps({"loss": doc["loss"], "cost": doc["cost"], "centres": {
    c["centre"]: {"eigenvalues": [e["value"] for e in c["eigenvalues"]],
                  "trace": (c.get("trace") or {}).get("value")} for c in doc["centres"]}}))
PY
) || fail "reading the curvature result"
record curvature "$curvature"
if [ $small = 0 ]; then
    # Hessian-vector products of the same weights and samples in valleys and in PyHessian (when
    # PY has it; a machine without a network may not).
    hvp_mine=$("$valleys" bench curvature --device "$device" --out "$work/hvp" 2> "$work/bench-curvature.log" | tail -n1) ||
        fail "valleys bench curvature: $(tail -n1 "$work/bench-curvature.log")"
    echo "$hvp_mine"
    hvp_theirs="null"
    if "$python" -c 'import pyhessian' 2>/dev/null; then
        hvp_theirs=$("$python" bench/reference.py pyhessian --device "$device" --weights "$work/hvp/weights.safetensors" \
            --samples "$work/hvp/samples.json" --trace-vectors 100 2> "$work/reference-pyhessian.log" | tail -n1) ||
            fail "bench/reference.py pyhessian: $(tail -n1 "$work/reference-pyhessian.log")"
        echo "$hvp_theirs"
    else
        echo "note: PyHessian is not installed for $python: valleys' products only"
    fi
    record hessian_vector_products "{\"valleys\": $hvp_mine, \"pyhessian\": $hvp_theirs}"
fi

step "points side by side: one by one against 16 per forward pass (same numbers, less time?)"
stacked="{}"
for k in 1 16; do
    "$valleys" probe "$work/run-device" --device "$device" --direction uniform --point-batch $k \
        --seed 7 "${probe_sizes[@]}" > "$work/probe-k$k.log" 2>&1 ||
        fail "probe with --point-batch $k: $(tail -n1 "$work/probe-k$k.log")"
    grep '^cost' "$work/probe-k$k.log"
done
stacked=$("$python" - "$work/run-device/probes" <<'PY'
import glob, json, sys
docs = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/*.json"))]
docs = [d for d in docs if not d.get("batch") and d["spec"].get("point_batch") in (1, 16) and d["spec"].get("seed") == 7]
one, many = docs[-2], docs[-1]
worst = max(abs(a[f] - b[f]) for a, b in zip(one["points"], many["points"])
            for f in ("train_loss", "test_loss", "train_acc", "test_acc"))
print(json.dumps({
    "seconds_per_point_one_by_one": one["cost"]["seconds_per_point"],
    "seconds_per_point_16_per_pass": many["cost"]["seconds_per_point"],
    "speedup": one["cost"]["seconds_per_point"] / many["cost"]["seconds_per_point"],
    "largest_difference": worst,
}))
PY
) || fail "comparing the stacked probe with the one-by-one probe"
echo "$stacked"
record point_batch "$stacked"
"$python" -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["largest_difference"] <= 1e-4 else 1)' "$stacked" ||
    fail "points measured 16 at a time differ from points measured one by one: $stacked"

step "a TorchScript model and safetensors data on $device (experiments/torchscript.yaml, 5 epochs, a probe)"
"$valleys" run experiments/torchscript.yaml --headless --device "$device" --out "$work/run-torchscript" \
    --set train.epochs=5 --set swa.start_epoch=3 --set ablation=null \
    > "$work/torchscript.log" 2>&1 || fail "TorchScript run: $(tail -n1 "$work/torchscript.log")"
grep -E '^(device|finished)' "$work/torchscript.log"
"$valleys" probe "$work/run-torchscript" --device "$device" --direction uniform --points 11 \
    > "$work/probe-torchscript.log" 2>&1 || fail "TorchScript probe: $(tail -n1 "$work/probe-torchscript.log")"
grep '^cost' "$work/probe-torchscript.log"
grep -q "^device: $device" "$work/torchscript.log" || [ "$device" = cpu ] ||
    fail "the TorchScript run did not train on $device: $(grep '^device' "$work/torchscript.log")"
record torchscript "$("$python" -c 'import json, sys; print(json.dumps({"finished": sys.argv[1], "probe_cost": sys.argv[2]}))' \
    "$(grep '^finished' "$work/torchscript.log")" "$(grep '^cost' "$work/probe-torchscript.log")")"

step "a plane through the $device run, valleys bench plane and the evaluation pass against PyTorch eager"
"$valleys" plane "$work/run-device" --device "$device" --ascii "${plane_sizes[@]}" \
    > "$work/plane.log" 2> "$work/plane.err" || fail "plane: $(tail -n1 "$work/plane.err")"
grep -E '^  (cost|SWA|SGD)' "$work/plane.log"
plane_bench=$("$valleys" bench plane --device "$device" --points "$bench_plane_points" 2> "$work/bench-plane.log" | tail -n1) ||
    fail "valleys bench plane: $(tail -n1 "$work/bench-plane.log")"
echo "$plane_bench"
eval_mine=$("$valleys" bench eval --device "$device" --model quick 2> "$work/bench-eval.log" | tail -n1) ||
    fail "valleys bench eval: $(tail -n1 "$work/bench-eval.log")"
eval_theirs=null
if [ $have_torch = 1 ]; then
    eval_theirs=$("$python" bench/reference.py eval --model quick --device "$device" 2> "$work/reference-eval.log" | tail -n1) ||
        fail "bench/reference.py eval: $(tail -n1 "$work/reference-eval.log")"
fi
plane_json=$("$python" - "$(grep '^  cost' "$work/plane.log")" "$plane_bench" "$eval_mine" "$eval_theirs" <<'PY'
import json, sys
cost, bench, mine, theirs = sys.argv[1].strip(), json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
doc = {"plane_cost": cost, "bench_plane": bench, "eval_valleys_samples_per_s": mine["samples_per_s"],
       "eval_plain_samples_per_s": mine["plain_samples_per_s"]}
if theirs:
    doc["eval_pytorch_samples_per_s"] = theirs["samples_per_s"]
    doc["eval_ratio"] = mine["samples_per_s"] / theirs["samples_per_s"]
print(json.dumps(doc))
PY
) || fail "reading the plane and evaluation results"
echo "$plane_json"
record plane "$plane_json"

if [ $small = 0 ]; then
    step "the probe target: 100 directions x 41 points through a PreResNet-164, 10 000 + 10 000 samples, BN on 2 000"
    "$python" - "$work/cifar" <<'PY' || fail "writing CIFAR-shaped data"
import os, random, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = random.Random(0)
for name, n in (("data_batch_1.bin", 10000), ("test_batch.bin", 10000)):
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + os.urandom(3072))
PY
    "$valleys" run experiments/quick.yaml --headless --device "$device" --out "$work/run-164" \
        --set name=preresnet164 --set 'model={arch: preresnet, depth: 164}' \
        --set "data={dataset: cifar10, dir: $work/cifar}" --set train.epochs=2 --set swa.start_epoch=2 \
        --set eval.train_subset=2000 > "$work/run-164.log" 2>&1 ||
        fail "training the PreResNet-164: $(tail -n1 "$work/run-164.log")"
    "$valleys" probe "$work/run-164" --device "$device" --direction uniform --points 41 \
        --train-subset 10000 --bn-subset 2000 > "$work/probe-164.log" 2>&1 ||
        fail "probing the PreResNet-164: $(tail -n1 "$work/probe-164.log")"
    grep '^cost' "$work/probe-164.log"
    target=$("$python" - "$work/run-164/probes" <<'PY'
import glob, json, sys
doc = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/*.json"))][-1]
s = doc["cost"]["seconds_per_point"]
print(json.dumps({"seconds_per_point": s, "projected_seconds_for_4100_points": s * 4100,
                  "within_5_minutes": s * 4100 <= 300}))
PY
) || fail "reading the PreResNet-164 probe"
    echo "$target"
    record probe_target "$target"
fi

step "a paper preset on $device: PreResNet-164 on CIFAR-10 for $paper_steps steps, when its data are reachable"
paper=experiments/paper/preresnet164-cifar10.yaml
paper_reason=""
if [ -n "$paper_data" ]; then
    paper_source=(--set "data.dir=$paper_data")
else
    paper_source=()
    # The cache, a mirror or the internet: the fetch says in one line why it cannot.
    timeout 600 "$valleys" data fetch cifar10 > "$work/paper-fetch.log" 2>&1 ||
        paper_reason="CIFAR-10 is not reachable here: $(tail -n1 "$work/paper-fetch.log" | sed 's/^valleys: error: //')"
fi
if [ -n "$paper_reason" ]; then
    echo "skipped: $paper_reason"
    record paper_preset "{\"skipped\": $("$python" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$paper_reason")}"
else
    paper_started=$(date +%s.%N)
    "$valleys" run "$paper" --headless --device "$device" --out "$work/run-paper" "${paper_source[@]}" \
        --set train.epochs=1 --set swa.start_epoch=1 --set "train.batch_size=$paper_batch" \
        --set "data.train_subset=$((paper_steps * paper_batch))" --set data.test_subset=1000 \
        --set eval.train_subset=1000 \
        > "$work/paper.log" 2>&1 || fail "the paper preset: $(tail -n1 "$work/paper.log")"
    paper_seconds=$("$python" -c 'import sys, time; print(time.time() - float(sys.argv[1]))' "$paper_started")
    grep -E '^(data|device|plan|finished)' "$work/paper.log"
    grep -q "^device: $device" "$work/paper.log" || [ "$device" = cpu ] ||
        fail "the paper preset did not train on $device: $(grep '^device' "$work/paper.log")"
    grep -q "1 epochs\? × $paper_steps batches" "$work/paper.log" ||
        fail "the paper preset did not plan $paper_steps steps: $(grep '^plan' "$work/paper.log")"
    record paper_preset "$("$python" -c 'import json, sys; print(json.dumps({"steps": int(sys.argv[1]), "batch": int(sys.argv[2]), "seconds": float(sys.argv[3]), "finished": sys.argv[4]}))' \
        "$paper_steps" "$paper_batch" "$paper_seconds" "$(grep '^finished' "$work/paper.log")")"
fi

step "training throughput: valleys bench train against PyTorch on $device"
bench="{}"
for model in "${bench_models[@]}"; do
    mine=$("$valleys" bench train --model "$model" --device "$device" --steps "$bench_steps" 2> "$work/bench-$model.log" | tail -n1) ||
        fail "valleys bench train --model $model: $(tail -n1 "$work/bench-$model.log")"
    if [ $have_torch = 1 ]; then
        theirs=$("$python" bench/reference.py train --model "$model" --device "$device" --steps "$bench_steps" \
            2> "$work/reference-$model.log" | tail -n1) ||
            fail "bench/reference.py train --model $model: $(tail -n1 "$work/reference-$model.log")"
    elif [ $small = 1 ]; then
        theirs='null'
        echo "note: PyTorch is not importable by $python: the reference is skipped (--small only)"
    else
        fail "PyTorch is not importable by $python: the reference loop cannot run (--python)"
    fi
    bench=$("$python" - "$bench" "$model" "$mine" "$theirs" <<'PY'
import json, sys
bench, model, mine, theirs = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
entry = {"valleys_samples_per_s": mine["samples_per_s"]}
if theirs:
    entry["pytorch_samples_per_s"] = theirs["samples_per_s"]
    entry["ratio"] = mine["samples_per_s"] / theirs["samples_per_s"]
    entry["torch"] = theirs.get("torch")
    entry["device_name"] = theirs.get("device_name")
bench[model] = entry
print(json.dumps(bench))
PY
) || fail "reading the bench results of $model"
    echo "$model: $bench"
done
record bench "$bench"

step "the dashboard in tmux on $device, with the no-BN twin beside the run"
command -v tmux >/dev/null || fail "tmux not found: the dashboard cannot be checked"
dash="$work/run-dash"
# Long enough on a GPU that the twin, asked for at the first epoch, starts while the run trains.
dash_epochs=$([ $small = 1 ] && echo $epochs || echo 15)
tmux new-session -d -s "$session" -x 160 -y 48 \
    "'$valleys' run experiments/quick.yaml --device '$device' --out '$dash' --set train.epochs=$dash_epochs ${sizes[*]}; echo \$? > '$work/dash.exit'" ||
    fail "tmux could not start the dashboard"
# wait_for CONDITION SECONDS: true once CONDITION holds, false if it never did in time.
wait_for() {
    local what=$1 seconds=$2 i=0
    while ! eval "$what"; do
        sleep 0.5
        i=$((i + 1))
        if [ $i -gt $((seconds * 2)) ]; then
            return 1
        fi
    done
    return 0
}
wait_for "tmux capture-pane -p -t '$session' 2>/dev/null | grep 'epoch' >/dev/null" 120 ||
    fail "the dashboard did not start: $(tmux capture-pane -p -t "$session" 2>/dev/null | head -n3 | tr -s ' ')"
tmux send-keys -t "$session" b
sleep 0.5
tmux send-keys -t "$session" t
twin_asked=$(date +%s.%N)
wait_for "[ -f '$dash/checkpoints/final.safetensors' ] && [ -f '$dash/twin-nobn/checkpoints/final.safetensors' ]" 300 ||
    fail "the run and its twin did not finish: $(tmux capture-pane -p -t "$session" | tail -n5 | tr '\n' ' ')"
tmux send-keys -t "$session" 1
sleep 1
tmux capture-pane -p -t "$session" > "$out/dashboard.txt"
cat "$out/dashboard.txt"
tmux send-keys -t "$session" q
wait_for "[ -f '$work/dash.exit' ]" 60 || fail "the dashboard did not quit on q"
[ "$(cat "$work/dash.exit")" = 0 ] || fail "the dashboard exited with $(cat "$work/dash.exit")"
twin=$("$python" - "$dash" "$twin_asked" <<'PY'
import datetime, json, os, sys
dash, asked = sys.argv[1], float(sys.argv[2])
def stamp(path, key):
    text = json.load(open(path)).get(key, "")
    # jiff writes RFC 3339 with a zone name in brackets.
    return datetime.datetime.fromisoformat(text.split("[")[0]).timestamp() if text else None
run_finished = stamp(os.path.join(dash, "run.json"), "finished")
twin_started = stamp(os.path.join(dash, "twin-nobn", "run.json"), "started")
twin_finished = stamp(os.path.join(dash, "twin-nobn", "run.json"), "finished")
print(json.dumps({
    "twin_started_s_after_key": None if twin_started is None else twin_started - asked,
    "twin_seconds": None if None in (twin_started, twin_finished) else twin_finished - twin_started,
    "beside_the_run": None if None in (twin_started, run_finished) else twin_started < run_finished,
}))
PY
) || fail "reading the twin's run"
echo "$twin"
record twin "$twin"
record dashboard "$(json_text "$out/dashboard.txt")"
if [ $on_gpu = 1 ]; then
    "$python" -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["beside_the_run"] else 1)' "$twin" ||
        fail "on $device the twin should train beside the run, not after it: $twin"
fi

if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null
    sampler=""
    peak=$(sort -n "$work/memory.txt" | tail -n1)
    echo "peak GPU memory: ${peak:-?} MiB"
    record peak_gpu_memory_mib "${peak:-null}"
fi

write_json ok
echo
echo "gpu-check: OK ($device); wrote $out/gpu-check.json, $out/gpu-check.log and $out/dashboard.txt"
