//! A sweep's `connect:` section: once every variant has trained, the straight line (and, if
//! asked, a Bézier curve) between pairs of its runs, as `valleys connect` measures it, each
//! stored in the first run's connections/. Li et al. (2024) find that two solutions whose
//! weights agree in sign more often interpolate with a lower barrier; the report puts each
//! pair's barrier against its sign consistency with a rank correlation. Plain: the section,
//! which pairs, and the pairs read back.

use super::{SweepDir, Variant};
use crate::config::probe::{BnMode, samples};
use crate::names::named_enum;
use crate::probe::connect::{Barrier, ConnectResult};
use serde::{Deserialize, Serialize};

named_enum! {
    /// Which runs are connected.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum PairKind {
        /// Every two runs that differ only in their seed (the same configuration).
        #[default]
        Seeds = "seeds",
        /// Every two runs of the sweep (their models must have the same parameters).
        All = "all",
    }
}

/// The `connect:` section, with `valleys connect`'s options under their names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConnect {
    /// The iterate of each run at its final checkpoint: sgd or swa.
    #[serde(default = "swa")]
    pub iterate: String,
    #[serde(default)]
    pub pairs: PairKind,
    #[serde(default = "eleven")]
    pub points: usize,
    #[serde(default)]
    pub bn: BnMode,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub train_subset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub test_subset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "samples")]
    pub bn_subset: Option<usize>,
    /// Epochs of a Bézier curve per pair (0: the line alone).
    #[serde(default)]
    pub curve_epochs: u32,
}

fn swa() -> String {
    "swa".into()
}

fn eleven() -> usize {
    11
}

impl Default for SweepConnect {
    fn default() -> Self {
        Self {
            iterate: swa(),
            pairs: PairKind::default(),
            points: eleven(),
            bn: BnMode::default(),
            train_subset: None,
            test_subset: None,
            bn_subset: None,
            curve_epochs: 0,
        }
    }
}

impl SweepConnect {
    /// One line naming the field that is out of range.
    pub fn validate(&self) -> Result<(), crate::error::Invalid> {
        if !matches!(self.iterate.as_str(), "sgd" | "swa") {
            return Err(format!("iterate: '{}': expected sgd or swa", self.iterate).into());
        }
        if !(2..=1001).contains(&self.points) {
            return Err(format!("points: {}: expected 2..=1001", self.points).into());
        }
        for (name, n) in [
            ("train_subset", self.train_subset),
            ("test_subset", self.test_subset),
            ("bn_subset", self.bn_subset),
        ] {
            if n == Some(0) {
                return Err(format!("{name}: 0: expected at least 1 sample, or all").into());
            }
        }
        if self.curve_epochs > 1000 {
            return Err(format!("curve_epochs: {}: expected 0..=1000", self.curve_epochs).into());
        }
        Ok(())
    }
}

/// The non-seed settings of a variant: what runs that differ only in their seed share.
fn configuration(v: &Variant) -> Vec<&(String, String)> {
    v.overrides
        .iter()
        .filter(|(k, _)| !super::report::is_seed(k))
        .collect()
}

/// The pairs to connect, as positions in `variants` (the first before the second).
pub fn pairs(variants: &[Variant], kind: PairKind) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for i in 0..variants.len() {
        for j in i + 1..variants.len() {
            if kind == PairKind::All || configuration(&variants[i]) == configuration(&variants[j]) {
                out.push((i, j));
            }
        }
    }
    out
}

/// The connection of `a` to `b` that `settings` asks for, among `a`'s stored connections:
/// its B end is `b`'s run directory, both ends the asked iterate.
pub fn find<'a>(
    connections: &'a [ConnectResult],
    b: &Variant,
    settings: &SweepConnect,
) -> Option<&'a ConnectResult> {
    connections.iter().rev().find(|c| {
        c.b.run.file_name().is_some_and(|n| n == b.id.as_str())
            && c.a.iterate == settings.iterate
            && c.b.iterate == settings.iterate
    })
}

/// One measured pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    pub a: String,
    pub b: String,
    /// The two runs' shared configuration, or "across" for runs of two configurations.
    pub group: String,
    pub train_barrier: Option<Barrier>,
    pub test_barrier: Option<Barrier>,
    pub curve_train_barrier: Option<Barrier>,
    pub sign_consistency: f64,
}

/// The pairs `settings` asks for that have been measured, and those that have not (as
/// positions in the sweep's variants, the first before the second).
pub fn read(dir: &SweepDir, settings: &SweepConnect) -> (Vec<PairRow>, Vec<(usize, usize)>) {
    let Ok(variants) = dir.variants() else {
        return (Vec::new(), Vec::new());
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    let mut cache: Vec<Option<Vec<ConnectResult>>> = vec![None; variants.len()];
    for (i, j) in pairs(&variants, settings.pairs) {
        let connections = cache[i].get_or_insert_with(|| {
            crate::rundir::RunDir::open(&dir.run_path(&variants[i]))
                .map(|run| crate::probe::store::read_connections(&run).0)
                .unwrap_or_default()
        });
        let (a, b) = (&variants[i], &variants[j]);
        let Some(c) = find(connections, b, settings) else {
            missing.push((i, j));
            continue;
        };
        let (ca, cb) = (configuration(a), configuration(b));
        let group = if ca == cb {
            if ca.is_empty() {
                "all runs".into()
            } else {
                ca.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        } else {
            "across".into()
        };
        rows.push(PairRow {
            a: a.id.clone(),
            b: b.id.clone(),
            group,
            train_barrier: c.train_barrier,
            test_barrier: c.test_barrier,
            curve_train_barrier: c.curve.as_ref().and_then(|k| k.train_barrier),
            sign_consistency: c.sign_consistency,
        });
    }
    (rows, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(index: usize, overrides: &[(&str, &str)]) -> Variant {
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        Variant {
            index,
            id: super::super::variant_id(index, &overrides),
            overrides,
        }
    }

    #[test]
    fn seeds_pair_runs_of_one_configuration_and_all_pairs_every_two() {
        let v = [
            variant(0, &[("model.bn_init", "one"), ("seed", "1")]),
            variant(1, &[("model.bn_init", "one"), ("seed", "2")]),
            variant(2, &[("model.bn_init", "uniform"), ("seed", "1")]),
            variant(3, &[("model.bn_init", "uniform"), ("seed", "2")]),
            variant(4, &[("model.bn_init", "one"), ("seed", "3")]),
        ];
        assert_eq!(
            pairs(&v, PairKind::Seeds),
            vec![(0, 1), (0, 4), (1, 4), (2, 3)]
        );
        assert_eq!(pairs(&v, PairKind::All).len(), 10);
    }

    #[test]
    fn the_section_reads_with_defaults_and_names_a_bad_field() {
        let s: SweepConnect = serde_yaml::from_str("pairs: all\ntest_subset: all").unwrap();
        assert_eq!(
            (s.iterate.as_str(), s.pairs, s.points, s.test_subset),
            ("swa", PairKind::All, 11, Some(usize::MAX))
        );
        assert!(s.validate().is_ok());
        let bad = SweepConnect {
            iterate: "ema".into(),
            ..SweepConnect::default()
        };
        assert!(bad.validate().unwrap_err().0.starts_with("iterate:"));
        let bad = SweepConnect {
            points: 1,
            ..SweepConnect::default()
        };
        assert!(bad.validate().unwrap_err().0.starts_with("points:"));
        assert!(serde_yaml::from_str::<SweepConnect>("pair: all").is_err());
    }
}
