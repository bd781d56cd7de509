#!/usr/bin/env bash
# The long check of He et al.'s BN claim (`make science`; not part of `make test`; about 20
# minutes on two idle CPU cores). It trains the quick experiment, then runs
#   valleys ablate RUN --kind summary --directions 20 --range 5 --points 11 --bn-subset 1000
# which probes 20 U(0,1) directions per arm (BN-only, non-BN, all) through the SGD iterate and
# the SWA average, and reads what the ablation concluded for BN-only − non-BN at each centre:
# the difference in the fraction of asymmetric directions with its Newcombe 95% interval.
# "shown" when the interval lies above 0, "not shown" otherwise; both are reported, since the
# check exists to say what the data say.
#
#   scripts/science.sh [--valleys BIN] [--out DIR] [--directions N] [--small]
#
# Writes OUT (default science-out/) science.json (the verdicts and every number behind them),
# science.log (everything printed) and the run directory. Exit 0 when the check ran, whatever
# it found; 1 when it could not run. --small trains a tiny BN network for a quick self-test.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
valleys="$repo/target/release/valleys"
out="${OUT:-$repo/science-out}"
directions=20
small=0

while [ $# -gt 0 ]; do
    case "$1" in
        --valleys) valleys=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --directions) directions=$2; shift 2 ;;
        --small) small=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "science: unknown argument '$1' (see --help)" >&2; exit 1 ;;
    esac
done

fail() {
    echo "science: could not run: $*" >&2
    exit 1
}

mkdir -p "$out" || fail "cannot create $out"
out=$(cd "$out" && pwd)
log="$out/science.log"
: > "$log"
[ -x "$valleys" ] || fail "no valleys binary at $valleys (make build)"

experiment="$repo/experiments/quick.yaml"
probe_flags=(--range 5 --points 11 --bn-subset 1000)
if [ "$small" = 1 ]; then
    experiment="$out/tiny-bn.yaml"
    cat > "$experiment" <<'YAML'
name: tiny-bn
seed: 3
data: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}
model: {arch: mlp, hidden: 32, norm: batch}
train: {epochs: 3, batch_size: 64, lr: 0.05}
swa: {start_epoch: 2, lr: 0.02}
eval: {train_subset: 256}
YAML
    probe_flags=(--range 3 --points 7)
fi

run="$out/run"
rm -rf "$run"
echo "science: training $(basename "$experiment") into $run" | tee -a "$log"
"$valleys" run "$experiment" --headless --out "$run" >> "$log" 2>&1 \
    || fail "training failed (see $log)"
echo "science: $directions directions per arm: valleys ablate --kind summary ${probe_flags[*]}" | tee -a "$log"
"$valleys" ablate "$run" --kind summary --directions "$directions" "${probe_flags[@]}" >> "$log" 2>&1 \
    || fail "the ablation failed (see $log)"

python3 - "$run" "$out/science.json" <<'PY' | tee -a "$log"
import glob, json, sys
run, target = sys.argv[1], sys.argv[2]
[path] = sorted(glob.glob(f"{run}/ablations/*-summary.json"))[-1:]
ablation = json.load(open(path))
arms = {(a["name"], a["centre"]): a for a in ablation["arms"]}
verdicts = []
for c in ablation.get("comparisons", []):
    if (c["a"], c["b"]) != ("bn-only", "non-bn"):
        continue
    a, b = arms[("bn-only", c["centre"])], arms[("non-bn", c["centre"])]
    interval = c.get("fraction_interval")
    shown = interval is not None and interval["lo"] > 0
    verdicts.append({
        "centre": c["centre"],
        "bn_only": [a["asymmetric"], a["directions"]],
        "non_bn": [b["asymmetric"], b["directions"]],
        "difference": c["fraction_difference"],
        "interval": interval,
        "shown": shown,
    })
    lo, hi = (interval["lo"], interval["hi"]) if interval else (float("nan"),) * 2
    print(
        f"science: {c['centre']}: BN-only {a['asymmetric']}/{a['directions']} asymmetric, "
        f"non-BN {b['asymmetric']}/{b['directions']}; difference {100 * c['fraction_difference']:+.0f} points "
        f"[{100 * lo:+.0f}, {100 * hi:+.0f}]: {'shown' if shown else 'not shown'}"
    )
if not verdicts:
    sys.exit("science: the ablation has no BN-only − non-BN comparison")
json.dump({"ablation": path, "verdicts": verdicts}, open(target, "w"), indent=2)
print(f"science: wrote {target}")
PY
[ "${PIPESTATUS[0]}" = 0 ] || fail "could not read the ablation's comparisons (see $log)"
