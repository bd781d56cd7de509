"""`make bench`: valleys against a PyTorch loop doing the same work, on this machine, in one run.

Prints a table and writes bench/results.json: the machine, every measurement, and every ratio
under a key containing "ratio" (training ones also containing "train"). Targets: training at
least as fast as PyTorch; an evaluation pass 1.3x as fast as PyTorch eager, 1.1x TorchScript
frozen and optimised for inference and 1.0x torch.compile; a plane point's BN pass 1.2x PyTorch's
best; a probe point within 1.3x one forward pass; dashboard overhead under 2%; resident memory
flat after warm-up. `--only eval,plane` runs some sections (and writes no results.json unless
`--out` says where).
"""

import argparse
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


# valleys sets these glibc malloc parameters itself (see runtime::tune_allocator); PyTorch runs
# once more with them, so that the table shows what they are worth on their own.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def run_json(cmd, env=None):
    print("  $", " ".join(f"{k}={v}" for k, v in (env or {}).items()), " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep_overhead(valleys, runs=8):
    """What the local executor adds per run: a sweep of `runs` tiny toy runs (one job at a
    time) against the same runs started one after another with `valleys run`."""
    import tempfile
    import time

    base = "name: toy\nmodel: {arch: toy}\ndata: {dataset: toy}\ntrain: {epochs: 2, batch_size: 20, lr: 0.1}\n"
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "base.yaml"), "w") as f:
            f.write(base)
        with open(os.path.join(d, "s.yaml"), "w") as f:
            f.write(f"experiment: base.yaml\naxes:\n  seed: {list(range(runs))}\n")
        print("  $ valleys sweep (toy x", runs, ") and the same runs by hand", file=sys.stderr, flush=True)
        start = time.perf_counter()
        for seed in range(runs):
            subprocess.run([valleys, "run", "base.yaml", "--headless", "--out", f"hand{seed}", "--set", f"seed={seed}"],
                           cwd=d, check=True, capture_output=True)
        by_hand = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([valleys, "sweep", "s.yaml", "--jobs", "1", "--out", "s"], cwd=d, check=True, capture_output=True)
        swept = time.perf_counter() - start
    return {"runs": runs, "by_hand_s": by_hand, "sweep_s": swept, "overhead_s_per_run": (swept - by_hand) / runs}


def curvature_rows(v, ref, rows):
    """Hessian-vector products and the numbers they give, valleys against PyHessian on the same
    weights (the quick model after 3 epochs), the same 256 training samples and threads."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        mine = run_json(v + ["curvature", "--out", d])
        pyhessian = ref + ["pyhessian", "--weights", os.path.join(d, "weights.safetensors"),
                           "--samples", os.path.join(d, "samples.json"), "--trace-vectors", "100"]
        theirs = run_json(pyhessian)
        # The products again, alternated, on the same weights: medians of three each.
        mine_times, theirs_times = [mine["modes"]], [theirs]
        for _ in range(2):
            mine_times.append(run_json(v + ["curvature", "--out", d, "--time-only"])["modes"])
            theirs_times.append(run_json(pyhessian + ["--time-only"]))
    out = {"curvature": {"valleys": mine, "pyhessian": theirs, "valleys_timings": mine_times, "pyhessian_timings": theirs_times}}

    def median_by(runs, key):
        return sorted(runs, key=lambda r: r[key])[len(runs) // 2]

    ev = median_by([m["eval"] for m in mine_times], "products_per_s")
    batch = median_by([m["batch"] for m in mine_times], "products_per_s")
    theirs_median = median_by(theirs_times, "products_per_s")
    theirs = dict(theirs, **{k: theirs_median[k] for k in ("seconds_per_product", "products_per_s", "forward_backward_seconds", "ratio_to_forward_backward")})
    out["curvature_products_ratio_vs_pyhessian"] = ev["products_per_s"] / theirs["products_per_s"]
    out["curvature_product_to_forward_backward_ratio_eval"] = ev["ratio_to_forward_backward"]
    out["curvature_product_to_forward_backward_ratio_batch"] = batch["ratio_to_forward_backward"]
    top_mine, top_theirs = mine["eval_top_eigenvalue"], theirs["top_eigenvalue"]
    out["curvature_top_eigenvalue_relative_difference"] = abs(top_mine - top_theirs) / abs(top_theirs)
    lo, hi = mine["eval_trace_interval"]
    tlo, thi = theirs["trace_interval"]
    out["curvature_traces_within_each_others_intervals"] = lo <= theirs["trace"] <= hi and tlo <= mine["eval_trace"] <= thi
    out["curvature_loss_difference"] = abs(mine["eval_loss"] - theirs["loss"])
    rows.append(("Hessian-vector products/s (quick, 256, BN eval, median of 3)", ev["products_per_s"], theirs["products_per_s"], out["curvature_products_ratio_vs_pyhessian"], ">= 1.5 (PyHessian)"))
    rows.append(("  one product / one forward+backward, BN eval", ev["seconds_per_product"], ev["forward_backward_seconds"], ev["ratio_to_forward_backward"], "<= 2.5"))
    rows.append(("  PyHessian's product / its forward+backward", theirs["seconds_per_product"], theirs["forward_backward_seconds"], theirs["ratio_to_forward_backward"], ""))
    rows.append(("  one product / one forward+backward, BN batch", batch["seconds_per_product"], batch["forward_backward_seconds"], batch["ratio_to_forward_backward"], "<= 2.5"))
    rows.append(("top eigenvalue, eval mode: Lanczos / power it.", top_mine, top_theirs, top_mine / top_theirs, "1.0"))
    rows.append((f"trace, 100 vectors (both in each other's 95% CI: {out['curvature_traces_within_each_others_intervals']})", mine["eval_trace"], theirs["trace"], mine["eval_trace"] / theirs["trace"], "~1.0"))
    rss = mine["rss_mb_at_lanczos_steps"]
    rows.append(("RSS MB at Lanczos step 10 / step 100", rss[1][1], rss[-1][1], rss[-1][1] / rss[1][1], "~1.0"))
    rows.append(("  PyHessian RSS MB before / after power iteration", theirs["rss_mb_before_power_iteration"], theirs["rss_mb_after_power_iteration"], theirs["rss_mb_after_power_iteration"] / theirs["rss_mb_before_power_iteration"], ""))
    return out


def machine(threads):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "os": f"{platform.system()} {platform.machine()}, glibc {platform.libc_ver()[1]}",
        "python": platform.python_version(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--valleys", default="target/release/valleys")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-steps", type=int, default=20000)
    ap.add_argument("--out", help="the results' JSON (default bench/results.json; with --only, none unless given)")
    ap.add_argument("--only", help="comma-separated sections to run (train,eval,swa,probe,plane,ui,sweep,curvature,memory)")
    args = ap.parse_args()
    if os.sep in args.valleys:
        # The sweep rows run it from a temporary directory.
        args.valleys = os.path.abspath(args.valleys)
    v = [args.valleys, "bench", "--threads", str(args.threads), "--device", args.device]
    ref = [args.python, os.path.join(HERE, "reference.py"), "--threads", str(args.threads), "--device", args.device]

    results = {"machine": machine(args.threads)}
    rows = []
    sections = ["train", "eval", "swa", "probe", "plane", "ui", "sweep", "curvature", "memory"]
    only = args.only.split(",") if args.only else sections
    unknown = [s for s in only if s not in sections]
    if unknown:
        ap.error(f"--only {args.only}: no section {unknown[0]}; expected some of {','.join(sections)}")
    wanted = lambda name: name in only

    if wanted("train"):
        for model in ["quick", "preresnet20"]:
            # Alternate the two, three times each, and compare medians: a 2-core machine is noisy.
            mines, theirs_all, tuned_all = [], [], []
            reference_train = ref + ["train", "--model", model, "--steps", str(args.steps), "--warmup", "20"]
            for _ in range(args.repeats):
                mines.append(run_json(v + ["train", "--model", model, "--steps", str(args.steps)]))
                theirs_all.append(run_json(reference_train))
                tuned_all.append(run_json(reference_train, TUNED_MALLOC))
            median = lambda runs: sorted(runs, key=lambda r: r["samples_per_s"])[len(runs) // 2]
            mine, theirs, tuned = median(mines), median(theirs_all), median(tuned_all)
            for best, runs in [(mine, mines), (theirs, theirs_all), (tuned, tuned_all)]:
                best["all_samples_per_s"] = [r["samples_per_s"] for r in runs]
            ratio = mine["samples_per_s"] / theirs["samples_per_s"]
            results[f"train_{model}"] = {"valleys": mine, "pytorch": theirs, "pytorch_tuned_malloc": tuned}
            results[f"train_ratio_{model}"] = ratio
            results[f"train_ratio_{model}_vs_tuned_malloc"] = mine["samples_per_s"] / tuned["samples_per_s"]
            results["machine"]["torch"] = theirs["torch"]
            results["machine"]["device_name"] = theirs["device_name"]
            rows.append((f"training {model}: samples/s (median of {args.repeats})", mine["samples_per_s"], theirs["samples_per_s"], ratio, ">= 1.0"))
            rows.append(("  PyTorch with valleys' malloc settings", mine["samples_per_s"], tuned["samples_per_s"], results[f"train_ratio_{model}_vs_tuned_malloc"], ""))

    if wanted("eval"):
        for model in ["quick", "preresnet20"]:
            # The same pass over the same test set at batch 128, medians of --repeats. Every
            # variant runs once in each round (valleys, PyTorch eager as it is and with valleys'
            # malloc settings, then PyTorch's fastest ways on a CPU, each with those settings:
            # TorchScript frozen and optimised for inference, and torch.compile, its compilation
            # timed apart), so a machine that slows down for a while slows them all alike.
            mines, theirs_all, tuned_all = [], [], []
            best = {"eager": tuned_all, "frozen": [], "compile": []}
            reference_eval = ref + ["eval", "--model", model, "--passes", "3"]
            for _ in range(args.repeats):
                mines.append(run_json(v + ["eval", "--model", model, "--passes", "3"]))
                theirs_all.append(run_json(reference_eval))
                tuned_all.append(run_json(reference_eval, TUNED_MALLOC))
                for variant in ["frozen", "compile"]:
                    best[variant].append(run_json(reference_eval + ["--variant", variant], TUNED_MALLOC))
            median = lambda runs, key: sorted(r[key] for r in runs)[len(runs) // 2]
            mine, plain = median(mines, "samples_per_s"), median(mines, "plain_samples_per_s")
            theirs, tuned = median(theirs_all, "samples_per_s"), median(tuned_all, "samples_per_s")
            results[f"eval_{model}"] = {"valleys": mines, "pytorch": theirs_all, "pytorch_tuned_malloc": tuned_all}
            results["machine"].setdefault("torch", theirs_all[0]["torch"])
            results[f"eval_ratio_{model}"] = mine / theirs
            results[f"eval_ratio_{model}_vs_tuned_malloc"] = mine / tuned
            results[f"eval_ratio_{model}_vs_plain_pass"] = mine / plain
            rows.append((f"evaluation pass {model}: samples/s, valleys / PyTorch eager", mine, theirs, mine / theirs, ">= 1.3"))
            rows.append(("  PyTorch with valleys' malloc settings", mine, tuned, mine / tuned, ">= 1.3"))
            rows.append(("  valleys' layer-by-layer pass (no folding, strided)", mine, plain, mine / plain, ""))
            # The BN pass of a plane point is timed beside the evaluation pass in each run.
            results[f"eval_{model}"]["pytorch_best"] = best
            for variant, label, goal in [("frozen", "TorchScript frozen + optimize_for_inference", ">= 1.1"),
                                         ("compile", "torch.compile (inductor)", ">= 1.0")]:
                theirs_v = median(best[variant], "samples_per_s")
                results[f"eval_ratio_{model}_vs_{variant}"] = mine / theirs_v
                rows.append((f"  {label}", mine, theirs_v, mine / theirs_v, goal))
            compiled = best["compile"][0]["compile_seconds"]
            results[f"eval_{model}_compile_seconds"] = compiled
            rows.append(("  torch.compile's compile time, s (eval pass, BN pass)", compiled["eval"], compiled["bn_pass"], None, ""))
            mine_bn = median(mines, "bn_pass_samples_per_s")
            best_bn = max(median(runs, "bn_pass_samples_per_s") for runs in best.values())
            results[f"bn_pass_ratio_{model}_vs_best"] = mine_bn / best_bn
            for variant, runs in best.items():
                results[f"bn_pass_ratio_{model}_vs_{variant}"] = mine_bn / median(runs, "bn_pass_samples_per_s")
            rows.append((f"BN pass {model} (train mode, no autograd): samples/s, valleys / PyTorch's best", mine_bn, best_bn, mine_bn / best_bn, ">= 1.2"))

    if wanted("swa"):
        swa = run_json(v + ["swa"])
        results["swa"] = swa
        rows.append(("SWA average, fraction of an epoch", swa["average_fraction_of_epoch"], None, None, ""))
        rows.append(("BN recompute (10k), fraction of an epoch", swa["bn_recompute_fraction_of_epoch"], None, None, ""))

    if wanted("probe"):
        probe = run_json(v + ["probe"])
        results["probe"] = probe
        for mode, m in probe["modes"].items():
            results[f"probe_point_ratio_{mode}"] = m["ratio_to_forward"]
            rows.append((f"probe point / forward pass, BN {mode}", m["seconds_per_point"], m["forward_seconds"], m["ratio_to_forward"], "<= 1.3"))
        per_point = probe["point_batch_seconds_per_point"]
        for k in ("4", "16"):
            results[f"probe_point_batch_{k}_speedup_ratio"] = per_point["1"] / per_point[k]
            rows.append((f"probe s/point, {k} points per pass / one by one", per_point[k], per_point["1"], results[f"probe_point_batch_{k}_speedup_ratio"], "speed-up"))
        authors = run_json(ref + ["protocol", "--model", "quick", "--points", "41"])
        results["interp_authors_protocol"] = authors
        authors_tuned = run_json(ref + ["protocol", "--model", "quick", "--points", "41"], TUNED_MALLOC)
        results["interp_authors_protocol_tuned_malloc"] = authors_tuned
        equal = authors["seconds"] / probe["interp_41_full_sets_seconds"]
        results["interp_equal_work_speedup_ratio"] = equal
        rows.append(("41-pt interp, full sets: s (authors' protocol)", probe["interp_41_full_sets_seconds"], authors["seconds"], equal, "speed-up"))
        equal_tuned = authors_tuned["seconds"] / probe["interp_41_full_sets_seconds"]
        results["interp_equal_work_speedup_ratio_vs_tuned_malloc"] = equal_tuned
        rows.append(("  authors' protocol with valleys' malloc settings", probe["interp_41_full_sets_seconds"], authors_tuned["seconds"], equal_tuned, ""))
        speedup = authors["seconds"] / probe["interp_41_seconds"]
        results["interp_default_subsets_speedup_ratio"] = speedup
        rows.append(("41-pt interp, 2000/1000-sample subsets: s (authors')", probe["interp_41_seconds"], authors["seconds"], speedup, "speed-up"))

    if wanted("plane"):
        plane = run_json(v + ["plane"])
        results["plane"] = plane
        results["plane_point_ratio"] = plane["ratio_to_forward"]
        rows.append(("plane point / forward pass (quick, BN on 2000)", plane["seconds_per_point"], plane["forward_seconds"], plane["ratio_to_forward"], ""))
        rows.append(("21x21 plane of the quick model (s)", plane["plane_21x21_seconds"], None, None, "< 600"))

    if wanted("ui"):
        ui = run_json(v + ["ui"])
        results["ui"] = ui
        results["ui_overhead_ratio"] = ui["dashboard_samples_per_s"] / ui["headless_samples_per_s"]
        rows.append(("training with the dashboard / headless", ui["dashboard_samples_per_s"], ui["headless_samples_per_s"], results["ui_overhead_ratio"], ">= 0.98"))
        rows.append(("one dashboard frame, ms (share of the CPU at 10 fps)", ui["frame_ms_median"], None, ui["frame_cpu_fraction"], "< 0.02"))

    if wanted("sweep"):
        sweep = sweep_overhead(args.valleys)
        results["sweep"] = sweep
        rows.append(("sweep, local executor: s per run over plain runs", sweep["overhead_s_per_run"], None, None, "< 1 s"))

    if wanted("curvature"):
        results.update(curvature_rows(v, ref, rows))

    if wanted("memory"):
        mem = run_json(v + ["memory", "--steps", str(args.memory_steps)])
        results["memory"] = mem
        results["memory_growth_ratio"] = mem["rss_mb_90_to_100pct"] / mem["rss_mb_40_to_50pct"]
        rows.append((f"RSS MB, 40-50% / 90-100% of {mem['steps']} steps", mem["rss_mb_40_to_50pct"], mem["rss_mb_90_to_100pct"], results["memory_growth_ratio"], "~1.0"))

    out = args.out or (None if args.only else os.path.join(HERE, "results.json"))
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")

    m = results["machine"]
    print(f"\nvalleys vs PyTorch {m.get('torch', '?')} on {m['cpu']} ({m['cores']} cores, {args.threads} threads, {args.device})\n")
    print(f"{'measurement':<46} {'valleys':>12} {'reference':>12} {'ratio':>8}  target")
    for name, a, b, r, target in rows:
        fmt = lambda x: "" if x is None else (f"{x:.4g}" if abs(x) < 100 else f"{x:.0f}")
        print(f"{name:<46} {fmt(a):>12} {fmt(b):>12} {fmt(r):>8}  {target}")
    if out:
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
