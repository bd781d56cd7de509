//! What a sweep found: each run's final numbers, then, per group of the non-seed axes, mean
//! ± standard deviation over seeds and the asymmetric fractions pooled over seeds with 95%
//! intervals. Plain data read from the run directories (no tensors).

use super::{SweepDir, Variant, VariantState};
use crate::protocol::{Iterate, MetricRow, Split};
use crate::rundir::RunDir;
use crate::stats::{self, Interval, Z95};

/// One variant's run, as its files say.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub variant: Variant,
    pub state: VariantState,
    /// Epochs evaluated so far and planned.
    pub epoch: u32,
    pub epochs: Option<u32>,
    pub sgd: Option<MetricRow>,
    pub swa: Option<MetricRow>,
    /// SGD − SWA test loss at the last evaluation.
    pub swa_gain: Option<f64>,
    /// Random directions probed after training, per centre: (centre, asymmetric, directions).
    pub asymmetric: Vec<(String, usize, usize)>,
    /// Ablation summary arms: (arm, centre, asymmetric, directions).
    pub arms: Vec<(String, String, usize, usize)>,
    /// Test loss per epoch of each iterate, for figures.
    pub curves: Vec<(Iterate, Vec<(f64, f64)>)>,
    /// The newest curvature job's numbers per centre.
    pub curvature: Vec<CentreNumbers>,
}

/// One centre's curvature numbers in a run (each over the job's sample sets).
#[derive(Debug, Clone, PartialEq)]
pub struct CentreNumbers {
    pub centre: String,
    pub lambda_max: Option<f64>,
    pub trace: Option<f64>,
    pub average_sharpness: Option<f64>,
    pub worst_sharpness: Option<f64>,
}

/// Reads what `v`'s run has written.
pub fn summarise(dir: &SweepDir, v: &Variant) -> RunSummary {
    summarise_run(&dir.run_path(v), v.clone(), dir.state(v))
}

/// Reads what the run at `path` has written, as `variant` in state `state`.
pub fn summarise_run(path: &std::path::Path, v: Variant, state: VariantState) -> RunSummary {
    let mut summary = RunSummary {
        variant: v,
        state,
        epoch: 0,
        epochs: None,
        sgd: None,
        swa: None,
        swa_gain: None,
        asymmetric: Vec::new(),
        arms: Vec::new(),
        curves: Vec::new(),
        curvature: Vec::new(),
    };
    let Ok(run) = RunDir::open(path) else {
        return summary;
    };
    summary.epochs = crate::follow::read_run_json(&run).map(|(info, _)| info.epochs);
    let rows = run.read_metrics().unwrap_or_default();
    summary.epoch = rows.iter().map(|r| r.epoch).max().unwrap_or(0);
    let last = |it: Iterate| {
        rows.iter()
            .rev()
            .find(|r| r.iterate == it && r.split == Split::Test)
            .cloned()
    };
    summary.sgd = last(Iterate::Sgd);
    summary.swa = last(Iterate::Swa);
    summary.swa_gain = crate::protocol::swa_gain(rows.iter());
    for it in [Iterate::Sgd, Iterate::Swa] {
        let curve: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.iterate == it && r.split == Split::Test)
            .map(|r| (f64::from(r.epoch), r.loss))
            .collect();
        if !curve.is_empty() {
            summary.curves.push((it, curve));
        }
    }
    // The sweep's own batch: the first one, which its `probe:` section wrote after training
    // (batches probed by hand later, e.g. sign-match ratios, are not the sweep's).
    if let Some(batch) = crate::probe::store::read_batches(&run).0.first() {
        summary.asymmetric = batch
            .centres
            .iter()
            .map(|c| (c.centre.clone(), c.stats.asymmetric, c.probes.len()))
            .collect();
    }
    if let Some(job) = crate::curvature::store::read_all(&run).0.last() {
        summary.curvature = job
            .centres
            .iter()
            .map(|c| CentreNumbers {
                centre: c.centre.clone(),
                lambda_max: c.eigenvalues.first().map(|e| e.value),
                trace: c.trace.map(|e| e.value),
                average_sharpness: c.average_sharpness.map(|e| e.value),
                worst_sharpness: c.worst_sharpness.map(|e| e.value),
            })
            .collect();
    }
    let (ablations, _) = crate::ablation::read_all(&run);
    if let Some(a) = ablations
        .iter()
        .rev()
        .find(|a| a.kind == crate::ablation::AblationKind::Summary)
    {
        summary.arms = a
            .arms
            .iter()
            .map(|arm| {
                (
                    arm.name.clone(),
                    arm.centre.clone(),
                    arm.stats.asymmetric,
                    arm.probes.len(),
                )
            })
            .collect();
    }
    summary
}

/// Mean, sample standard deviation and count of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// 0 for a single value.
    pub std: f64,
    pub n: usize,
}

pub fn stat(values: &[f64]) -> Option<Stat> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = finite.len();
    if n == 0 {
        return None;
    }
    let mean = finite.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(Stat { mean, std, n })
}

/// Counts pooled over runs, with Wilson's 95% interval of the fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pooled {
    pub k: usize,
    pub n: usize,
    pub interval: Option<Interval>,
}

impl Pooled {
    pub fn fraction(&self) -> f64 {
        self.k as f64 / self.n.max(1) as f64
    }

    /// "40% [25, 57] (16/40)".
    pub fn describe(&self) -> String {
        format!(
            "{} ({}/{})",
            stats::format_percent(self.fraction(), self.interval.as_ref()),
            self.k,
            self.n
        )
    }
}

fn pool(counts: impl Iterator<Item = (usize, usize)>) -> Option<Pooled> {
    let (k, n) = counts.fold((0, 0), |(k, n), (a, b)| (k + a, n + b));
    (n > 0).then(|| Pooled {
        k,
        n,
        interval: stats::wilson(k, n, Z95),
    })
}

/// The runs that share every setting but the seed.
#[derive(Debug, Clone)]
pub struct Group {
    /// The non-seed overrides, e.g. [("model.norm", "batch")]; empty for a one-group sweep.
    pub key: Vec<(String, String)>,
    pub runs: Vec<RunSummary>,
}

/// Whether an override key is the seed (what a group averages over).
pub fn is_seed(key: &str) -> bool {
    key == "seed"
}

/// Groups `runs` by their non-seed overrides, in the order the groups first appear.
pub fn group(runs: Vec<RunSummary>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for run in runs {
        let key: Vec<(String, String)> = run
            .variant
            .overrides
            .iter()
            .filter(|(k, _)| !is_seed(k))
            .cloned()
            .collect();
        match groups.iter_mut().find(|g| g.key == key) {
            Some(g) => g.runs.push(run),
            None => groups.push(Group {
                key,
                runs: vec![run],
            }),
        }
    }
    groups
}

impl Group {
    /// "model.norm=batch" (or "all runs").
    pub fn label(&self) -> String {
        if self.key.is_empty() {
            return "all runs".into();
        }
        self.key
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn finished(&self) -> impl Iterator<Item = &RunSummary> {
        self.runs
            .iter()
            .filter(|r| matches!(r.state, VariantState::Done | VariantState::Trained))
    }

    /// Over the finished runs: SGD and SWA test loss and accuracy and the SWA gain.
    pub fn metric(&self, f: impl Fn(&RunSummary) -> Option<f64>) -> Option<Stat> {
        let values: Vec<f64> = self.finished().filter_map(f).collect();
        stat(&values)
    }

    /// A curvature number of `centre` over the finished runs that measured it: its mean and
    /// Student's t 95% interval over seeds, and how many runs.
    pub fn curvature(
        &self,
        centre: &str,
        f: impl Fn(&CentreNumbers) -> Option<f64>,
    ) -> Option<(f64, Option<Interval>, usize)> {
        let values: Vec<f64> = self
            .finished()
            .filter_map(|r| r.curvature.iter().find(|c| c.centre == centre))
            .filter_map(&f)
            .filter(|v| v.is_finite())
            .collect();
        let (mean, interval) =
            stats::mean_interval(&values).or_else(|| values.first().map(|&v| (v, None)))?;
        Some((mean, interval, values.len()))
    }

    /// A curvature number's SGD − SWA difference per run, over the finished runs that
    /// measured both: mean, Student's t 95% interval and how many runs.
    pub fn curvature_difference(
        &self,
        f: impl Fn(&CentreNumbers) -> Option<f64>,
    ) -> Option<(f64, Option<Interval>, usize)> {
        let values: Vec<f64> = self
            .finished()
            .filter_map(|r| {
                let at = |name: &str| r.curvature.iter().find(|c| c.centre == name).and_then(&f);
                Some(at("sgd")? - at("swa")?)
            })
            .filter(|v| v.is_finite())
            .collect();
        let (mean, interval) =
            stats::mean_interval(&values).or_else(|| values.first().map(|&v| (v, None)))?;
        Some((mean, interval, values.len()))
    }

    /// The fraction of asymmetric random directions through `centre`, pooled over runs.
    pub fn asymmetric(&self, centre: &str) -> Option<Pooled> {
        pool(self.finished().flat_map(|r| {
            r.asymmetric
                .iter()
                .filter(|(c, _, _)| c == centre)
                .map(|&(_, k, n)| (k, n))
        }))
    }

    /// This group's asymmetric fraction through `centre` minus `other`'s, with Newcombe's
    /// hybrid score 95% interval (both pooled over their runs).
    pub fn asymmetric_difference(
        &self,
        other: &Group,
        centre: &str,
    ) -> Option<(f64, Option<Interval>)> {
        let (a, b) = (self.asymmetric(centre)?, other.asymmetric(centre)?);
        if a.n == 0 || b.n == 0 {
            return None;
        }
        Some((
            a.fraction() - b.fraction(),
            stats::proportion_difference(a.k, a.n, b.k, b.n, 1.96),
        ))
    }

    /// (epoch, mean, standard deviation) over the finished runs of one iterate's test loss,
    /// at the epochs every one of them has.
    pub fn mean_curve(&self, iterate: Iterate) -> Vec<(f64, f64, f64)> {
        let curves: Vec<&Vec<(f64, f64)>> = self
            .finished()
            .filter_map(|r| {
                r.curves
                    .iter()
                    .find(|(it, _)| *it == iterate)
                    .map(|(_, c)| c)
            })
            .collect();
        let Some(first) = curves.first() else {
            return Vec::new();
        };
        first
            .iter()
            .filter_map(|&(x, _)| {
                let values: Vec<f64> = curves
                    .iter()
                    .filter_map(|c| c.iter().find(|p| p.0 == x).map(|p| p.1))
                    .collect();
                (values.len() == curves.len())
                    .then(|| stat(&values))
                    .flatten()
                    .map(|s| (x, s.mean, s.std))
            })
            .collect()
    }

    /// Each ablation arm's fraction through each centre, pooled over runs.
    pub fn arms(&self) -> Vec<(String, String, Pooled)> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for r in self.finished() {
            for (arm, centre, _, _) in &r.arms {
                if !keys.iter().any(|(a, c)| a == arm && c == centre) {
                    keys.push((arm.clone(), centre.clone()));
                }
            }
        }
        keys.into_iter()
            .filter_map(|(arm, centre)| {
                let pooled = pool(self.finished().flat_map(|r| {
                    r.arms
                        .iter()
                        .filter(|(a, c, _, _)| *a == arm && *c == centre)
                        .map(|&(_, _, k, n)| (k, n))
                }))?;
                Some((arm, centre, pooled))
            })
            .collect()
    }
}

/// "0.3621 ± 0.0042" (n is said elsewhere), or "–".
pub fn describe(stat: Option<Stat>, digits: usize) -> String {
    match stat {
        Some(s) if s.n > 1 => format!("{:.digits$} ± {:.digits$}", s.mean, s.std),
        Some(s) => format!("{:.digits$}", s.mean),
        None => "–".into(),
    }
}

#[cfg(test)]
mod tests;
