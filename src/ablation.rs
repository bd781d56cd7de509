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

use crate::config::{Experiment, Norm};
use crate::probe::runner::{self, CentreStats, ProbeContext};
use crate::probe::{BnMode, ParamGroup, ProbeError, ProbeResult, ProbeSpec};
use crate::protocol::{Iterate, Split};
use crate::rundir::{RunDir, RunDirError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The experiment's `ablation:` section: what `valleys run` does after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblationConfig {
    /// Train the no-BN twin (after the run on a CPU).
    #[serde(default = "yes")]
    pub twin: bool,
    /// Random directions per arm and centre in the summary.
    #[serde(default = "default_directions")]
    pub directions: usize,
    /// Settings shared by every ablation probe (range, points, subsets, seed).
    #[serde(default)]
    pub probe: ProbeSpec,
}

fn yes() -> bool {
    true
}

fn default_directions() -> usize {
    5
}

impl Default for AblationConfig {
    fn default() -> Self {
        Self {
            twin: true,
            directions: default_directions(),
            probe: ProbeSpec::default(),
        }
    }
}

/// Which comparison an ablation makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AblationKind {
    /// One direction through BN-only, non-BN and all parameters.
    Groups,
    /// One direction with recomputed, frozen and batch BN statistics.
    BnModes,
    /// N directions per arm: BN vs none, BN-only vs non-BN, SGD vs SWA.
    Summary,
}

impl AblationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Groups => "groups",
            Self::BnModes => "bn-modes",
            Self::Summary => "summary",
        }
    }
}

/// One arm of an ablation: a set of probes through one centre under one treatment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// e.g. "bn", "none", "bn-only", "non-bn", "recompute", "frozen", "batch".
    pub name: String,
    /// The run probed, relative to the ablation's run directory ("." or "twin-nobn").
    pub run: String,
    /// "sgd", "swa" or "swa→sgd".
    pub centre: String,
    /// Probe ids (files under `<run>/probes/`).
    pub probes: Vec<String>,
    pub asymmetric: usize,
    pub fraction_asymmetric: f64,
    /// Mean and median of c over the directions with a finite c.
    pub mean_c: Option<f64>,
    pub median_c: Option<f64>,
    /// Directions whose c is infinite (one side flat or falling).
    pub infinite_c: usize,
}

/// SGD test loss minus SWA test loss at the end of a run: what averaging bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwaGain {
    pub bn: Option<f64>,
    pub none: Option<f64>,
}

/// A finished ablation, as stored in ablations/<id>.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationResult {
    pub id: String,
    pub kind: AblationKind,
    pub threshold: f64,
    pub spec: ProbeSpec,
    pub arms: Vec<Arm>,
    pub swa_gain: SwaGain,
    pub created: String,
}

/// Arm statistics from probe results (the same numbers whether the results are fresh or read
/// back from their files).
pub fn arm(name: &str, run: &str, results: &[ProbeResult], threshold: f64) -> Arm {
    let cs: Vec<f64> = results
        .iter()
        .filter_map(|r| r.train_score.as_ref())
        .map(|s| s.c)
        .collect();
    let mut finite: Vec<f64> = cs.iter().copied().filter(|c| c.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    let asymmetric = cs.iter().filter(|&&c| c >= threshold).count();
    let median_c = (!finite.is_empty()).then(|| {
        let m = finite.len() / 2;
        if finite.len() % 2 == 1 {
            finite[m]
        } else {
            (finite[m - 1] + finite[m]) / 2.0
        }
    });
    Arm {
        name: name.to_owned(),
        run: run.to_owned(),
        centre: results
            .first()
            .map(|r| r.centre.iterate.clone())
            .unwrap_or_default(),
        probes: results.iter().map(|r| r.id.clone()).collect(),
        asymmetric,
        fraction_asymmetric: asymmetric as f64 / results.len().max(1) as f64,
        mean_c: (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64),
        median_c,
        infinite_c: cs.len() - finite.len(),
    }
}

/// The experiment of the no-BN twin: identical but for `norm: none`.
pub fn twin_of(experiment: &Experiment) -> Experiment {
    let mut twin = experiment.clone();
    twin.model.norm = Norm::None;
    twin.name = format!("{}-nobn", experiment.name);
    twin.ablation = None;
    twin
}

/// Where a run's twin lives.
pub fn twin_dir(run: &RunDir) -> PathBuf {
    run.root().join("twin-nobn")
}

/// SGD test loss minus SWA test loss at the last evaluation of a run.
pub fn swa_gain(run: &RunDir) -> Option<f64> {
    let rows = run.read_metrics().ok()?;
    let last = |it: Iterate| {
        rows.iter()
            .rev()
            .find(|r| r.iterate == it && r.split == Split::Test)
    };
    Some(last(Iterate::Sgd)?.loss - last(Iterate::Swa)?.loss)
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
    let base = base.resolved(main.ctx.seed);
    let threshold = base.threshold.unwrap_or(3.0);
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
                arms.push(arm(name, ".", &[r], threshold));
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
                arms.push(arm(mode.as_str(), ".", &[r], threshold));
            }
        }
        AblationKind::Summary => {
            let mut subjects = vec![
                ("bn", main, ParamGroup::All, "."),
                ("bn-only", main, ParamGroup::Bn, "."),
                ("non-bn", main, ParamGroup::NonBn, "."),
            ];
            if let Some(twin) = twin {
                subjects.push(("none", twin, ParamGroup::All, "twin-nobn"));
            }
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
                    arms.push(arm(name, rel, &results_of(&stored, centre), threshold));
                }
            }
        }
    }
    let result = AblationResult {
        id: next_id(main.run, kind),
        kind,
        threshold,
        spec: base,
        arms,
        swa_gain: SwaGain {
            bn: swa_gain(main.run),
            none: twin.and_then(|t| swa_gain(t.run)),
        },
        created: jiff::Zoned::now().to_string(),
    };
    write(main.run, &result)?;
    Ok(result)
}

fn results_of(stored: &[ProbeResult], centre: &CentreStats) -> Vec<ProbeResult> {
    centre
        .probes
        .iter()
        .filter_map(|id| stored.iter().find(|r| &r.id == id).cloned())
        .collect()
}

/// The ablations directory of a run.
pub fn dir(run: &RunDir) -> PathBuf {
    run.root().join("ablations")
}

fn next_id(run: &RunDir, kind: AblationKind) -> String {
    let n = crate::rundir::next_sequence_number(&dir(run));
    format!("{n:03}-{}", kind.as_str())
}

/// The arm table as CSV.
pub fn csv(result: &AblationResult) -> String {
    let mut out = String::from(
        "arm,run,centre,directions,asymmetric,fraction_asymmetric,mean_c,median_c,infinite_c\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for a in &result.arms {
        out += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            a.name,
            a.run,
            a.centre,
            a.probes.len(),
            a.asymmetric,
            a.fraction_asymmetric,
            opt(a.mean_c),
            opt(a.median_c),
            a.infinite_c
        );
    }
    out
}

/// Writes ablations/<id>.json and .csv.
pub fn write(run: &RunDir, result: &AblationResult) -> Result<PathBuf, RunDirError> {
    crate::rundir::write_result(&dir(run), &result.id, result, Some(&csv(result)))
}

/// Every ablation stored in a run, in id order, and the files that could not be read.
pub fn read_all(run: &RunDir) -> (Vec<AblationResult>, Vec<String>) {
    crate::rundir::read_json_files(&dir(run), |_| true)
}

/// The probes an arm refers to, read back from their files (`root` is the ablation's run).
pub fn arm_probes(root: &Path, arm: &Arm) -> Vec<ProbeResult> {
    let Ok(run) = RunDir::open(&root.join(&arm.run)) else {
        return Vec::new();
    };
    let (stored, _) = crate::probe::store::read_all(&run);
    arm.probes
        .iter()
        .filter_map(|id| stored.iter().find(|r| &r.id == id).cloned())
        .collect()
}

/// A table of arms, one line each, for terminals and logs.
pub fn table(result: &AblationResult) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<10} {:<10} {:<8} {:>10} {:>11} {:>7} {:>9}",
        "arm", "run", "centre", "directions", "asymmetric", "mean c", "median c"
    )];
    let c = |v: Option<f64>| v.map_or("∞".to_owned(), crate::probe::format_c);
    for a in &result.arms {
        lines.push(format!(
            "{:<10} {:<10} {:<8} {:>10} {:>5} ({:>3.0}%) {:>7} {:>9}",
            a.name,
            a.run,
            a.centre,
            a.probes.len(),
            a.asymmetric,
            100.0 * a.fraction_asymmetric,
            c(a.mean_c),
            c(a.median_c)
        ));
    }
    let gain = |g: Option<f64>| g.map_or("–".to_owned(), |g| format!("{g:+.4}"));
    lines.push(format!(
        "SWA gain in test loss (SGD − SWA): with BN {}, without BN {}",
        gain(result.swa_gain.bn),
        gain(result.swa_gain.none)
    ));
    lines
}
