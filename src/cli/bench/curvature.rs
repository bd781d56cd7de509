//! `valleys bench curvature`: Hessian-vector products of the quick model against one forward
//! and backward pass, the numbers PyHessian is compared on, and memory over Lanczos steps.

use super::*;

/// Hessian-vector products on the quick model's weights after `epochs` epochs.
pub(super) fn bench_curvature(
    device: &DeviceChoice,
    out: &Path,
    samples: usize,
    epochs: u32,
    time_only: bool,
) -> anyhow::Result<serde_json::Value> {
    use valleys::config::curvature::{CurvatureBn, CurvatureSpec};
    use valleys::curvature::lanczos::Lanczos;
    use valleys::curvature::operator::{self, HessianOperator, SampleSet};
    // The whole embedded training set in file order, so that the reference can index it.
    let exp = quick(&[
        format!("train.epochs={epochs}"),
        "swa.enabled=false".into(),
        format!("checkpoint.every_epochs={epochs}"),
        format!("eval.every_epochs={epochs}"),
    ])?;
    let runs = out.join("runs");
    if !time_only {
        std::fs::create_dir_all(&runs)?;
        train_in_worker(exp, device, &runs, None, |_| {})?;
    }
    let root = std::fs::read_dir(&runs)
        .map_err(|e| anyhow::anyhow!("{}: {e} (run it once without --time-only)", runs.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("run-"))
        })
        .ok_or_else(|| anyhow::anyhow!("{}: no bench run here", runs.display()))?;
    let saved = valleys::probe::offline::SavedRun::load(&root, "final", device.device)?;
    std::fs::copy(
        root.join("checkpoints/final.safetensors"),
        out.join("weights.safetensors"),
    )?;
    let seed = saved.experiment.seed;
    let indices = saved.data.train_sample_indices(samples, 1, seed).remove(0);
    std::fs::write(
        out.join("samples.json"),
        serde_json::to_string(&serde_json::json!({ "train_indices": indices }))?,
    )?;
    let split = &saved.data.train_sample_sets(samples, 1, seed)[0];
    let model = &saved.scratch;
    model.copy_from(&saved.sgd);
    let mask = valleys::probe::direction::group_mask(model, valleys::probe::ParamGroup::All);
    let dimension = mask.size()[0];
    let gaussian = |seed: i64| {
        tch::manual_seed(seed);
        tch::Tensor::randn([dimension], (tch::Kind::Float, model.flat().device()))
    };
    let mut modes = serde_json::Map::new();
    for (bn, batch) in [(CurvatureBn::Eval, samples), (CurvatureBn::Batch, 128)] {
        let set = SampleSet::new(&saved.data, split, batch);
        let mode = operator::mode(bn);
        let timed = |f: &dyn Fn(), n: usize| {
            f();
            let times: Vec<f64> = (0..n)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64()
                })
                .collect();
            median(&times)
        };
        let pass = timed(
            &|| {
                let _ = operator::loss_and_gradient(model, &set, mode);
            },
            10,
        );
        let op = HessianOperator::new(model, &set, mode, &mask);
        let v = gaussian(7);
        let product = timed(
            &|| {
                let _ = op.apply(&v);
            },
            20,
        );
        modes.insert(
            bn.as_str().into(),
            serde_json::json!({
                "batch": batch,
                "loss": op.loss,
                "seconds_per_product": product,
                "products_per_s": 1.0 / product,
                "forward_backward_seconds": pass,
                "ratio_to_forward_backward": product / pass,
            }),
        );
    }
    if time_only {
        return Ok(serde_json::json!({ "model": "quick", "samples": samples, "modes": modes }));
    }
    // The top eigenvalue and the trace in eval mode (what PyHessian measures), and resident
    // memory over 100 Lanczos steps (convergence is not allowed to stop it).
    let set = SampleSet::new(&saved.data, split, samples);
    let op = HessianOperator::new(model, &set, operator::mode(CurvatureBn::Eval), &mask);
    let mut lanczos = Lanczos::new(&gaussian(3), 100);
    let mut rss = Vec::new();
    let started = Instant::now();
    while lanczos.can_step() {
        lanczos.step(&op.apply(&lanczos.current()));
        if lanczos.steps() == 1 || lanczos.steps().is_multiple_of(10) {
            rss.push((lanczos.steps(), rss_bytes() as f64 / 1e6));
        }
    }
    let lanczos_seconds = started.elapsed().as_secs_f64();
    let top = lanczos.top_pairs(1);
    drop(lanczos);
    let spec = CurvatureSpec {
        bn: CurvatureBn::Eval,
        samples: Some(samples),
        sets: Some(1),
        top_k: Some(1),
        tolerance: Some(1e-6),
        lanczos_steps: Some(100),
        trace_vectors: Some(100),
        density_runs: Some(0),
        noise_draws: Some(0),
        ascent_steps: Some(0),
        ..Default::default()
    };
    let ctx = saved.context();
    let defaults = valleys::curvature::measure::run_defaults(&saved.experiment, &saved.data);
    let job = valleys::curvature::measure::run(&ctx, &spec, defaults, None, &mut QuietCurvature)?;
    let sgd = &job.centre("sgd").expect("the SGD centre").sets[0];
    let trace = sgd.trace.as_ref().map(|t| t.trace);
    Ok(serde_json::json!({
        "model": "quick",
        "epochs": epochs,
        "samples": samples,
        "dimension": dimension,
        "modes": modes,
        "eval_top_eigenvalue": top.values[0],
        "eval_top_residual": top.residuals[0],
        "eval_loss": sgd.loss,
        "eval_trace": trace.map(|t| t.value),
        "eval_trace_interval": trace.and_then(|t| t.interval).map(|i| [i.lo, i.hi]),
        "eval_trace_vectors": 100,
        "lanczos_100_seconds": lanczos_seconds,
        "rss_mb_at_lanczos_steps": rss,
        "rss_growth_10_to_100_mb": rss.last().map_or(0.0, |l| l.1) - rss.get(1).map_or(0.0, |r| r.1),
        // The Krylov basis is allocated up front but its pages are committed as it fills:
        // 90 vectors of 4-byte floats between step 10 and step 100.
        "krylov_basis_growth_10_to_100_mb": 90.0 * dimension as f64 * 4.0 / 1e6,
    }))
}

struct QuietCurvature;

impl valleys::curvature::measure::CurvatureObserver for QuietCurvature {
    fn planned(&mut self, _plan: &valleys::curvature::measure::Plan) {}
    fn progress(&mut self, _done: usize, _planned: usize, _what: &str) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}
