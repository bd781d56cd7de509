# valleys: two commands on a fresh machine (git, a Rust toolchain, python3 with pip, make; no root).
#   make run    sets everything up and trains the default experiment
#   make test   sets everything up and runs every test
# libtorch 2.11.0 is fetched once into the XDG cache (see scripts/setup-libtorch.sh): its CUDA
# build (2.5 GB) on a machine with an NVIDIA GPU, its CPU cut (545 MB) elsewhere; VALLEYS_CUDA=1
# or 0 forces one. A LIBTORCH you set, or python3's torch 2.11.0, wins.

SHELL := bash
CARGO ?= cargo
EXPERIMENT ?= experiments/quick.yaml
ARGS ?=

.DEFAULT_GOAL := run
RUNS ?= $(wildcard runs/*)

.PHONY: setup build run test test-slurm lint fmt assets figures bench gpu-check check-cuda-build science science-curvature science-paths

## Find or fetch libtorch 2.11.0 and point cargo at it (.cargo/config.toml).
setup:
	@scripts/setup-libtorch.sh >/dev/null

## Release build of the binary.
build: setup
	$(CARGO) build --release

## Train EXPERIMENT (default experiments/quick.yaml); extra flags in ARGS.
run: build
	target/release/valleys run $(EXPERIMENT) $(ARGS)

## Every unit and integration test.
test: setup tests/.vtk/.ready
	$(CARGO) test --all-targets
	@scripts/slurm-local.sh status 2>/dev/null || echo "make test: the Slurm sweep tests (tests/slurm.rs) were skipped: no Slurm answers here; make test-slurm starts one and runs them"
	@[ -f "$${XDG_CACHE_HOME:-$$HOME/.cache}/valleys/libtorch-2.11.0-cu130/.complete" ] || echo "make test: the CUDA-build test (tests/cuda_build.rs) was skipped: the CUDA build of libtorch is not in the cache; make check-cuda-build fetches it and runs it"

## VTK's own Python reader (no other dependency: 140 MB once) for the test that ParaView's
## files load (tests/vtk.rs), installed into tests/.vtk (no virtual environment needed).
tests/.vtk/.ready:
	PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --target tests/.vtk vtk==9.7.2
	touch $@

## The sweep tests against a real single-node Slurm (needs root: scripts/slurm-local.sh installs
## and starts slurmctld, slurmd and munge, and stops them afterwards). Without Slurm, `make test`
## runs the same tests, which then say they were skipped.
test-slurm: setup
	scripts/slurm-local.sh start
	$(CARGO) test --test slurm -- --nocapture; status=$$?; scripts/slurm-local.sh stop; exit $$status

## The CUDA build of libtorch on a machine without a GPU (not part of `make test`; fetches both
## cached builds, 2.5 GB once): it loads, sees no driver, gives the CPU cut's numbers exactly,
## and --device cuda is a one-line error.
check-cuda-build: setup
	VALLEYS_TEST_CPU_LIBTORCH=$$(scripts/setup-libtorch.sh --no-config --cache cpu) \
	VALLEYS_TEST_CUDA_LIBTORCH=$$(scripts/setup-libtorch.sh --no-config --cache cuda) \
	$(CARGO) test --release --test cuda_build -- --nocapture

## Formatting and lints, as CI checks them.
lint: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

## Figures and report.md for every run directory in RUNS (default: all of runs/).
figures: build
	@test -n "$(RUNS)" || { echo "no run directories: train one first (make run) or set RUNS=..."; exit 2; }
	@for run in $(RUNS); do target/release/valleys report "$$run" || exit 1; done

## Benchmarks against a PyTorch loop on this machine (sets up bench/.venv: torch 2.11.0, a few GB,
## and PyHessian for the curvature rows).
bench: build bench/.venv/.ready bench/.venv/.pyhessian
	bench/.venv/bin/python bench/run.py --valleys target/release/valleys $(ARGS)

bench/.venv/.ready:
	python3 -m venv bench/.venv
	bench/.venv/bin/pip install --quiet torch==2.11.0
	touch $@

bench/.venv/.pyhessian: bench/.venv/.ready
	bench/.venv/bin/pip install --quiet pyhessian==0.1
	touch $@

## The long check of the BN claim (about 20 minutes on two idle CPU cores; not part of `make test`):
## the quick run, then 20 BN-only and 20 non-BN U(0,1) directions per centre; prints and writes
## OUT (default science-out/) science.json with the difference and its 95% interval.
science: build
	scripts/science.sh --valleys target/release/valleys $(ARGS)

## The long check of "beyond sharp and flat" (about 8 minutes a seed on two idle CPU cores; not
## part of `make test`): the quick run for seeds 1, 2, 3, a probe batch and the Hessian at SGD
## and SWA of each; writes science-out/curvature/table.md, the comparison over the seeds.
science-curvature: build
	scripts/science-curvature.sh --valleys target/release/valleys $(ARGS)

## The long check of the 2024 follow-up (about 70 minutes on two idle CPU cores; not part of
## `make test`): the bn-init sweep (BN scales 1, U(0,1), N(0, 0.1²) × 3 seeds, probes and the
## seeds connected pairwise), sign-match directions at ρ = 0.5, 0.75, 1, and a Bézier curve for 1, 2
## and 4 epochs; writes science-out/paths/table.md. A second run continues what is missing.
science-paths: build
	scripts/science-paths.sh --valleys target/release/valleys $(ARGS)

## The GPU check (about 5 minutes on one GPU): CUDA, a run against the CPU, probes, the twin
## beside a run, training throughput against PyTorch (bench/.venv, as make bench), the dashboard;
## writes OUT (default gpu-check-out/) gpu-check.json and gpu-check.log. It checks the libtorch
## make set up (the CUDA build on a GPU box). ARGS go to scripts/gpu-check.sh.
gpu-check: build bench/.venv/.ready
	scripts/gpu-check.sh --valleys target/release/valleys --python bench/.venv/bin/python $(ARGS)

## Regenerate the embedded data in assets/ from the pinned upstream packages.
assets:
	scripts/make-assets.sh
