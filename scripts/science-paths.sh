#!/usr/bin/env bash
# The long check of the 2024 follow-up (`make science-paths`; not part of `make test`; about
# 70 minutes on two idle CPU cores). Li et al., "Exploring and Exploiting the Asymmetric Valley
# of Deep Neural Networks" (NeurIPS 2024), report three things; this measures each on the quick
# experiment, over three seeds, and reports what comes out, whichever way:
#   1. BN's initialisation changes how asymmetric valleys are: the bn-init sweep
#      (experiments/sweeps/bn-init.yaml: BN scales 1, U(0,1), N(0, 0.1²) × seeds 1-3, each
#      probed along 10 U(0,1) directions through SGD and SWA), with the fraction of
#      asymmetric directions against scale 1 and Newcombe's 95% interval.
#   2. Two solutions interpolate better the more their weights agree in sign: the same sweep
#      connects the SWA averages of each initialisation's seeds pairwise (straight lines, BN
#      recomputed) and gives Spearman's ρ of barrier against sign consistency.
#   3. A valley looks symmetric along noise whose signs are random and asymmetric along noise
#      that agrees in sign with the solution: sign-match directions at ratios ρ = 0.5, 0.75, 1
#      (ρ and 1 − ρ are mirror images: at 0 the direction is exactly the negation of 1's)
#      through the SGD iterate and the SWA average of each scale-1 seed, 3 auto-ranged
#      directions each, the asymmetric fraction pooled over seeds (Wilson 95%) and the loss's
#      rise on each side.
# And, for `valleys connect --curve-epochs`: the Bézier curve between seeds 1 and 2 trained for
# 1, 2 and 4 epochs, its barrier against the line's (how many epochs the quick setup needs).
# About 70 minutes on two idle cores, most of it the sweep.
#
#   scripts/science-paths.sh [--valleys BIN] [--out DIR] [--directions N] [--small]
#
# Writes OUT (default science-out/paths): bn-init/ (the sweep and its report), science-paths.json,
# table.md (the README's tables), science-paths.log. A second run continues what is missing.
# Exit 0 when the check ran; 1 when it could not run. --small uses a tiny BN network.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
valleys="$repo/target/release/valleys"
out="${OUT:-$repo/science-out/paths}"
directions=3
small=0

while [ $# -gt 0 ]; do
    case "$1" in
        --valleys) valleys=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --directions) directions=$2; shift 2 ;;
        --small) small=1; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "science-paths: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
done

fail() {
    echo "science-paths: could not run: $*" >&2
    exit 1
}

mkdir -p "$out" || fail "cannot create $out"
out=$(cd "$out" && pwd)
log="$out/science-paths.log"
touch "$log"
[ -x "$valleys" ] || fail "no valleys binary at $valleys (make build)"

sweep_file="$repo/experiments/sweeps/bn-init.yaml"
ratios="0.5:1:0.25"
points=(--points 11)
curve_epochs="1 2 4"
subsets=(--train-subset 1000 --test-subset 1000 --bn-subset 1000)
if [ "$small" = 1 ]; then
    cat > "$out/tiny-bn.yaml" <<'YAML'
name: tiny-bn
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 8, norm: batch}
train: {epochs: 3, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2, lr: 0.02}
eval: {train_subset: 128}
YAML
    cat > "$out/bn-init-small.yaml" <<'YAML'
name: bn-init-small
experiment: tiny-bn.yaml
axes:
  model.bn_init: [one, uniform]
  seed: [1, 2, 3]
probe: {directions: 3, direction: uniform, range: 3, points: 7}
connect: {points: 3}
YAML
    sweep_file="$out/bn-init-small.yaml"
    ratios="0:1:0.5"
    curve_epochs="1"
    subsets=()
    points=(--points 7)
    directions=2
fi

sweep="$out/bn-init"
if [ -d "$sweep" ]; then
    echo "science-paths: continuing the sweep in $sweep" | tee -a "$log"
    "$valleys" sweep "$sweep" --jobs 2 >> "$log" 2>&1 || fail "the sweep failed (see $log)"
else
    echo "science-paths: the bn-init sweep into $sweep" | tee -a "$log"
    "$valleys" sweep "$sweep_file" --out "$sweep" --jobs 2 >> "$log" 2>&1 \
        || fail "the sweep failed (see $log)"
fi
"$valleys" report "$sweep" --force >> "$log" 2>&1 || fail "the sweep's report failed (see $log)"

one_runs=("$sweep"/runs/*-model.bn_init=one-seed=*)
[ -d "${one_runs[0]}" ] || fail "no bn_init=one runs in $sweep/runs"
for run in "${one_runs[@]}"; do
    if compgen -G "$run/probes/*-ratios.csv" > /dev/null; then
        continue
    fi
    echo "science-paths: $(basename "$run"): sign-match directions at ratios $ratios" | tee -a "$log"
    "$valleys" probe "$run" --checkpoint final --direction sign-match --ratios "$ratios" \
        --directions "$directions" --range auto "${points[@]}" "${subsets[@]}" >> "$log" 2>&1 \
        || fail "the sign-match ratios of $(basename "$run") failed (see $log)"
done

first=${one_runs[0]}
second=${one_runs[1]}
for epochs in $curve_epochs; do
    if grep -qs "\"epochs\": $epochs," "$first"/connections/*.json 2>/dev/null; then
        continue
    fi
    echo "science-paths: a Bézier curve between $(basename "$first") and $(basename "$second"), $epochs epochs" | tee -a "$log"
    "$valleys" connect "$first:swa@final" "$second:swa@final" --curve-epochs "$epochs" \
        "${subsets[@]}" >> "$log" 2>&1 || fail "the curve of $epochs epochs failed (see $log)"
done

python3 - "$out" "$sweep" <<'PY' | tee -a "$log"
import csv, glob, json, math, os, sys

out, sweep = sys.argv[1], sys.argv[2]
report = open(os.path.join(sweep, "report", "report.md")).read()


def section(title_start):
    """The report's section whose heading starts with `title_start`, heading included."""
    lines = report.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("## " + title_start)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip()


def wilson(k, n, z=1.959964):
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def number(x):
    try:
        v = float(x)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


# 3. Sign-match ratios, pooled over the scale-1 seeds.
pooled = {}
for path in sorted(glob.glob(os.path.join(sweep, "runs", "*-model.bn_init=one-seed=*", "probes", "*-ratios.csv"))):
    for row in csv.DictReader(open(path)):
        key = (float(row["ratio"]), row["centre"])
        p = pooled.setdefault(key, {"asymmetric": 0, "directions": 0, "minus": [], "plus": [], "seeds": 0})
        p["asymmetric"] += int(row["asymmetric"])
        p["directions"] += int(row["directions"])
        p["seeds"] += 1
        for side, column in [("minus", "rise_minus"), ("plus", "rise_plus")]:
            v = number(row[column])
            if v is not None:
                p[side].append(v)
ratio_rows = []
for (ratio, centre), p in sorted(pooled.items()):
    interval = wilson(p["asymmetric"], p["directions"])
    mean = lambda xs: sum(xs) / len(xs) if xs else None
    ratio_rows.append({
        "ratio": ratio, "centre": centre, "seeds": p["seeds"],
        "asymmetric": p["asymmetric"], "directions": p["directions"],
        "fraction": p["asymmetric"] / p["directions"] if p["directions"] else None,
        "interval": interval, "rise_minus": mean(p["minus"]), "rise_plus": mean(p["plus"]),
    })

# The curve against the line.
curves = []
first = sorted(glob.glob(os.path.join(sweep, "runs", "*-model.bn_init=one-seed=*")))[0]
for path in sorted(glob.glob(os.path.join(first, "connections", "*.json"))):
    c = json.load(open(path))
    if not c.get("curve"):
        continue
    value = lambda b: b["value"] if b else None
    curves.append({
        "id": c["id"], "epochs": c["curve"]["settings"]["epochs"],
        "line_train_barrier": value(c.get("train_barrier")),
        "line_test_barrier": value(c.get("test_barrier")),
        "curve_train_barrier": value(c["curve"].get("train_barrier")),
        "curve_test_barrier": value(c["curve"].get("test_barrier")),
        "curve_seconds": c["curve"]["seconds"], "bend": c["curve"]["bend"],
    })
curves.sort(key=lambda c: c["epochs"])

asymmetry = section("Asymmetric fraction against")
pairs = section("Barrier against sign consistency")
if asymmetry is None or pairs is None:
    sys.exit("science-paths: the sweep's report lacks the asymmetry or the pairs section")
json.dump({"sign_match": ratio_rows, "curves": curves, "report": os.path.join(sweep, "report", "report.md")},
          open(os.path.join(out, "science-paths.json"), "w"), indent=2)

fmt = lambda v, d=3: "–" if v is None else f"{v:.{d}f}"
lines = [asymmetry, "", pairs, "",
         "## Sign-match directions against the ratio ρ (scale-1 seeds pooled)", "",
         "| ρ | centre | asymmetric [Wilson 95%] | mean rise at −T | mean rise at +T |",
         "|---|---|---|---|---|"]
for r in ratio_rows:
    i = r["interval"]
    frac = "–" if r["fraction"] is None else f"{r['asymmetric']}/{r['directions']} = {100 * r['fraction']:.0f}% [{100 * i[0]:.0f}, {100 * i[1]:.0f}]"
    lines.append(f"| {r['ratio']:.2f} | {r['centre']} | {frac} | {fmt(r['rise_minus'])} | {fmt(r['rise_plus'])} |")
lines += ["", "## Bézier curve against the straight line (scale-1 seeds 1 and 2, SWA)", "",
          "| curve epochs | line train barrier | curve train barrier | line test barrier | curve test barrier | bend | curve seconds |",
          "|---|---|---|---|---|---|---|"]
for c in curves:
    lines.append(f"| {c['epochs']} | {fmt(c['line_train_barrier'])} | {fmt(c['curve_train_barrier'])} | "
                 f"{fmt(c['line_test_barrier'])} | {fmt(c['curve_test_barrier'])} | {fmt(c['bend'], 2)} | {c['curve_seconds']:.0f} |")
table = "\n".join(lines) + "\n"
open(os.path.join(out, "table.md"), "w").write(table)
print(table)
PY
status=${PIPESTATUS[0]}
[ "$status" = 0 ] || fail "the summary failed (see $log)"
echo "science-paths: wrote $out/science-paths.json and $out/table.md" | tee -a "$log"
