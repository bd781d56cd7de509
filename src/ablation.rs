//! Batch-norm ablations: is BN what makes the valleys asymmetric?
//!
//! - a *twin* run: the same experiment (seed, data order, schedule) with `norm: none`;
//! - *groups*: one random direction restricted to BN parameters, to the others, and to all;
//! - *BN modes*: one direction with BN statistics recomputed, frozen, or per batch;
//! - a *summary* over N random directions per arm: the fraction of asymmetric directions and
//!   the mean c, with BN against without (the twin), BN-only against non-BN directions, SGD
//!   against SWA centres.
//!
//! Each ablation is written to RUN_DIR/ablations/<id>.json (arms and their scores, the probe
//! files they come from) and <id>.csv (the arm table); the probes themselves go to the probes/
//! directory of the run they probe.

pub mod result;
pub mod store;
pub mod twin;

pub use crate::config::ablation::AblationConfig;
use crate::probe::runner::ProbeError;
use crate::probe::runner::{self, ProbeContext};
use crate::probe::summary::{CentreStats, compare};
use crate::probe::{BnMode, ParamGroup, ProbeResult, ProbeSpec};
use crate::rundir::RunDir;
pub use result::{AblationKind, AblationResult, Arm, SwaGain, arm, csv, table};
pub use store::{arm_probes, dir, read_all, swa_gain, write};
pub use twin::{twin_dir, twin_of};

/// Why `experiment`'s model cannot be ablated, if it cannot: BN ablations need batch norm
/// parameters, whether the model is the zoo's (`model.norm`) or a TorchScript module (its BN
/// submodules' scales and shifts). Checked before anything is trained or written.
pub fn without_bn(experiment: &crate::config::Experiment) -> Option<String> {
    use crate::config::{Arch, Norm};
    let m = &experiment.model;
    match (m.arch, &m.path) {
        (Arch::Torchscript, Some(path)) => {
            let loaded = crate::model::torchscript::TorchScriptNet::load(path, tch::Device::Cpu);
            let has_bn = loaded.is_ok_and(|l| l.params.iter().any(|(_, _, role)| role.is_bn()));
            (!has_bn).then(|| {
                format!(
                    "{}: the module has no batch norm (no BN scale or shift); BN ablations need a model with BN",
                    path.display()
                )
            })
        }
        _ if m.norm == Norm::None => Some(
            "the model has no batch norm (model.norm: none); BN ablations need a run with BN"
                .into(),
        ),
        _ => None,
    }
}

/// A run to probe: its weights and where its probes go.
pub struct Subject<'a> {
    pub ctx: ProbeContext<'a>,
    pub run: &'a RunDir,
}

/// Runs one ablation of `kind` and stores it under `main`'s ablations/.
pub fn run(
    kind: AblationKind,
    main: &Subject,
    twin: Option<&Subject>,
    base: &ProbeSpec,
    directions: usize,
    observer: &mut dyn runner::Observer,
) -> Result<AblationResult, ProbeError> {
    runner::check_group(main.ctx.sgd, ParamGroup::Bn).map_err(|_| {
        ProbeError::Invalid(
            "the model has no batch norm (no BN scale or shift); BN ablations need a run with BN"
                .into(),
        )
    })?;
    crate::rundir::check_writable(&dir(main.run))?;
    let base = base.resolved(main.ctx.seed, main.ctx.on_gpu());
    let threshold = base.threshold.unwrap_or(3.0);
    let mut comparisons = Vec::new();
    let one = |spec: ProbeSpec, subject: &Subject, observer: &mut dyn runner::Observer| {
        runner::run_one(&subject.ctx, &spec, Some(subject.run), observer)
    };
    let mut arms = Vec::new();
    match kind {
        AblationKind::Groups => {
            for (group, name) in [
                (ParamGroup::Bn, "bn-only"),
                (ParamGroup::NonBn, "non-bn"),
                (ParamGroup::All, "all"),
            ] {
                let r = one(
                    ProbeSpec {
                        params: group,
                        ..base.clone()
                    },
                    main,
                    observer,
                )?;
                arms.push(arm(name, ".", &[r]));
            }
        }
        AblationKind::BnModes => {
            for mode in [BnMode::Recompute, BnMode::Frozen, BnMode::Batch] {
                let r = one(
                    ProbeSpec {
                        bn: mode,
                        ..base.clone()
                    },
                    main,
                    observer,
                )?;
                arms.push(arm(mode.as_str(), ".", &[r]));
            }
        }
        AblationKind::Summary => {
            (arms, comparisons) = summary(main, twin, &base, directions, observer)?;
        }
    }
    let result = AblationResult {
        id: store::next_id(main.run, kind),
        kind,
        threshold,
        spec: base,
        arms,
        comparisons,
        swa_gain: SwaGain {
            bn: swa_gain(main.run),
            none: twin.and_then(|t| swa_gain(t.run)),
        },
        created: jiff::Zoned::now().to_string(),
    };
    write(main.run, &result)?;
    Ok(result)
}

/// The summary's arms (N random directions per arm and centre: with BN, BN-only, non-BN, and
/// the twin without BN) and their comparisons (BN-only against non-BN, with BN against
/// without), per centre.
fn summary(
    main: &Subject,
    twin: Option<&Subject>,
    base: &ProbeSpec,
    directions: usize,
    observer: &mut dyn runner::Observer,
) -> Result<(Vec<Arm>, Vec<crate::probe::summary::Comparison>), ProbeError> {
    let mut arms = Vec::new();
    let mut comparisons = Vec::new();
    let mut subjects = vec![
        ("bn", main, ParamGroup::All, "."),
        ("bn-only", main, ParamGroup::Bn, "."),
        ("non-bn", main, ParamGroup::NonBn, "."),
    ];
    if let Some(twin) = twin {
        subjects.push(("none", twin, ParamGroup::All, "twin-nobn"));
    }
    // Per arm, per centre: the probes behind it.
    let mut sets: Vec<(&str, String, Vec<ProbeResult>)> = Vec::new();
    for (name, subject, group, rel) in subjects {
        let spec = ProbeSpec {
            params: group,
            ..base.clone()
        };
        let batch = runner::run_batch(
            &subject.ctx,
            &spec,
            directions.max(2),
            Some(subject.run),
            observer,
        )?;
        let (stored, _) = crate::probe::store::read_all(subject.run);
        for centre in &batch.centres {
            let results = results_of(&stored, centre);
            arms.push(arm(name, rel, &results));
            sets.push((name, centre.centre.clone(), results));
        }
    }
    for (a, b) in [("bn-only", "non-bn"), ("bn", "none")] {
        for (name, centre, results) in &sets {
            if *name != a {
                continue;
            }
            if let Some((_, _, other)) = sets.iter().find(|(n, c, _)| *n == b && c == centre) {
                comparisons.push(compare((a, results), (b, other), centre));
            }
        }
    }
    Ok((arms, comparisons))
}

fn results_of(stored: &[ProbeResult], centre: &CentreStats) -> Vec<ProbeResult> {
    centre
        .probes
        .iter()
        .filter_map(|id| stored.iter().find(|r| &r.id == id).cloned())
        .collect()
}
