#!/usr/bin/env bash
# The long check of "beyond sharp and flat" (`make science-curvature`; not part of `make test`;
# about 8 minutes a seed on two idle CPU cores). For each seed it trains the quick experiment,
# probes N U(0,1) directions through the SGD iterate and the SWA average, and measures the
# Hessian at both with the quick experiment's curvature defaults:
#   valleys run experiments/quick.yaml --set seed=S
#   valleys probe RUN --directions N --range 5 --points 11 --bn-subset 1000
#   valleys curvature RUN
# Then it puts, per seed and over the seeds, the numbers the sharp/flat debate is argued with
# (test loss, λ_max, trace, average- and worst-case sharpness) beside the probes' asymmetry
# (fraction of asymmetric directions, median c, the flat side), at SGD and at SWA: over the
# seeds, each number's mean with Student's t 95% interval, and SGD − SWA per seed with its
# interval and how many seeds had SWA lower. It reports what comes out, whichever way.
#
#   scripts/science-curvature.sh [--valleys BIN] [--out DIR] [--seeds "1 2 3"] [--directions N] [--small]
#
# Writes OUT (default science-out/curvature) science-curvature.json, table.md (the README's
# table), science-curvature.log and one run directory per seed. Exit 0 when the check ran;
# 1 when it could not run. --small trains a tiny BN network for a quick self-test.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
valleys="$repo/target/release/valleys"
out="${OUT:-$repo/science-out/curvature}"
seeds="1 2 3"
directions=10
small=0

while [ $# -gt 0 ]; do
    case "$1" in
        --valleys) valleys=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --directions) directions=$2; shift 2 ;;
        --small) small=1; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "science-curvature: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
done

fail() {
    echo "science-curvature: could not run: $*" >&2
    exit 1
}

mkdir -p "$out" || fail "cannot create $out"
out=$(cd "$out" && pwd)
log="$out/science-curvature.log"
: > "$log"
[ -x "$valleys" ] || fail "no valleys binary at $valleys (make build)"

experiment="$repo/experiments/quick.yaml"
probe_flags=(--range 5 --points 11 --bn-subset 1000)
curvature_flags=()
if [ "$small" = 1 ]; then
    experiment="$out/tiny-bn.yaml"
    cat > "$experiment" <<'YAML'
name: tiny-bn
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 8, norm: batch}
train: {epochs: 3, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2, lr: 0.02}
eval: {train_subset: 128}
YAML
    probe_flags=(--range 3 --points 7)
    curvature_flags=(--samples 64 --sets 2 --top-k 2 --trace-vectors 4 --density-runs 1
        --density-steps 5 --noise-draws 2 --ascent-steps 2)
fi

runs=()
for seed in $seeds; do
    run="$out/seed-$seed"
    rm -rf "$run"
    echo "science-curvature: seed $seed: training $(basename "$experiment") into $run" | tee -a "$log"
    "$valleys" run "$experiment" --headless --out "$run" --set "seed=$seed" >> "$log" 2>&1 \
        || fail "training seed $seed failed (see $log)"
    echo "science-curvature: seed $seed: $directions directions per centre" | tee -a "$log"
    "$valleys" probe "$run" --checkpoint final --directions "$directions" "${probe_flags[@]}" >> "$log" 2>&1 \
        || fail "the probes of seed $seed failed (see $log)"
    echo "science-curvature: seed $seed: the Hessian at SGD and SWA" | tee -a "$log"
    "$valleys" curvature "$run" --checkpoint final "${curvature_flags[@]}" >> "$log" 2>&1 \
        || fail "the curvature of seed $seed failed (see $log)"
    runs+=("$run")
done

python3 - "$out" "${runs[@]}" <<'PY' | tee -a "$log"
import glob, json, math, os, statistics, sys

out, runs = sys.argv[1], sys.argv[2:]

# Student's t 0.975 quantiles for 1..30 degrees of freedom (then the normal's 1.96).
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_interval(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    m = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": m, "lo": None, "hi": None, "n": len(values)}
    half = (T975[len(values) - 2] if len(values) - 1 <= 30 else 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": m, "lo": m - half, "hi": m + half, "n": len(values)}


def latest(pattern, keep=lambda doc: True):
    docs = [json.load(open(p)) for p in sorted(glob.glob(pattern))]
    docs = [d for d in docs if keep(d)]
    return docs[-1] if docs else None


def number(x):
    # Infinite c is stored as a string.
    return float(x) if isinstance(x, (int, float, str)) else None


QUANTITIES = ["test_loss", "lambda_max", "trace", "average_sharpness", "worst_sharpness",
              "fraction_asymmetric", "median_c"]
per_seed = []
for run in runs:
    curvature = latest(f"{run}/curvature/*.json", lambda d: "centres" in d)
    batch = latest(f"{run}/probes/*.json", lambda d: d.get("batch") is True)
    if curvature is None or batch is None:
        sys.exit(f"science-curvature: {run} has no curvature result or probe batch")
    row = {"run": os.path.basename(run)}
    for c in curvature["centres"]:
        value = lambda key: (c.get(key) or {}).get("value")
        stats = next((s for s in batch["centres"] if s["centre"] == c["centre"]), {})
        row[c["centre"]] = {
            "test_loss": c["test_loss"],
            "lambda_max": c["eigenvalues"][0]["value"] if c["eigenvalues"] else None,
            "trace": value("trace"),
            "average_sharpness": value("average_sharpness"),
            "worst_sharpness": value("worst_sharpness"),
            "fraction_asymmetric": stats.get("fraction_asymmetric"),
            "median_c": number(stats.get("median_c")),
            "flat_plus": stats.get("flat_plus", 0),
            "flat_minus": stats.get("flat_minus", 0),
        }
    per_seed.append(row)

summary = {}
for centre in ["sgd", "swa"]:
    summary[centre] = {q: mean_interval([r[centre][q] for r in per_seed if centre in r]) for q in QUANTITIES}
differences = {}
for q in QUANTITIES:
    d = [r["sgd"][q] - r["swa"][q] for r in per_seed
         if "sgd" in r and "swa" in r and r["sgd"][q] is not None and r["swa"][q] is not None]
    differences[q] = mean_interval(d)
    if differences[q] is not None:
        differences[q]["seeds_swa_lower"] = sum(1 for x in d if x > 0)

json.dump({"seeds": per_seed, "over_seeds": summary, "sgd_minus_swa": differences},
          open(os.path.join(out, "science-curvature.json"), "w"), indent=2)


def fmt(s, digits=3):
    if s is None:
        return "–"
    g = lambda x: f"{x:.{digits}g}"
    if s.get("lo") is None:
        return g(s["mean"])
    return f"{g(s['mean'])} [{g(s['lo'])}, {g(s['hi'])}]"


names = {"test_loss": "test loss", "lambda_max": "λ_max", "trace": "trace",
         "average_sharpness": "avg sharpness", "worst_sharpness": "worst sharpness",
         "fraction_asymmetric": "asymmetric", "median_c": "median c"}
lines = [f"| over {len(per_seed)} seeds | " + " | ".join(names[q] for q in QUANTITIES) + " | flat side +/− |",
         "|---" * (len(QUANTITIES) + 2) + "|"]
for centre in ["sgd", "swa"]:
    side = "{}/{}".format(sum(r[centre]["flat_plus"] for r in per_seed if centre in r),
                          sum(r[centre]["flat_minus"] for r in per_seed if centre in r))
    lines.append(f"| {centre} | " + " | ".join(fmt(summary[centre][q]) for q in QUANTITIES) + f" | {side} |")
lines.append("| SGD − SWA | " + " | ".join(
    fmt(differences[q]) + (f" ({differences[q]['seeds_swa_lower']}/{differences[q]['n']} lower at SWA)" if differences[q] else "")
    for q in QUANTITIES) + " | |")
table = "\n".join(lines) + "\n"
open(os.path.join(out, "table.md"), "w").write(table)
print(table)
for q in ["lambda_max", "trace", "worst_sharpness", "fraction_asymmetric"]:
    d = differences[q]
    if d is None or d.get("lo") is None:
        continue
    verdict = ("SWA lower" if d["lo"] > 0 else "SWA higher" if d["hi"] < 0 else "no difference shown")
    print(f"science-curvature: {names[q]} SGD − SWA {fmt(d)}: {verdict}")
PY
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || fail "the summary failed (see $log)"
echo "science-curvature: wrote $out/science-curvature.json and $out/table.md" | tee -a "$log"
