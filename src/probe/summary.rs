//! What many random directions found: how many are asymmetric, flat or symmetric, the median
//! c, each with a 95% interval, and the difference between two sets of directions. Plain data
//! over finished probe results (no tensors), read by the dashboard, the reports and the
//! protocol.

use super::ProbeResult;
use super::score::{self, Class, Score};
use crate::config::probe::ProbeSpec;
use crate::stats::{self, Interval, Z95};
use serde::{Deserialize, Serialize};

/// Asymmetry statistics of a set of directions, with their uncertainty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Asymmetry {
    /// Directions probed (a probe whose curve could not be scored counts, as not asymmetric).
    #[serde(default)]
    pub directions: usize,
    pub asymmetric: usize,
    #[serde(default)]
    pub symmetric: usize,
    /// Neither side rises above the noise floor.
    #[serde(default)]
    pub flat: usize,
    /// One side within noise, the other rising too little to tell c.
    #[serde(default)]
    pub undecided: usize,
    pub fraction_asymmetric: f64,
    /// Wilson's 95% interval of the fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_interval: Option<Interval>,
    /// Median c over the directions that are not flat (c of a flat curve is noise); may be
    /// infinite.
    #[serde(default, with = "optional_float")]
    pub median_c: Option<f64>,
    /// Percentile bootstrap 95% interval of the median, resampling directions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_c_interval: Option<Interval>,
    #[serde(default)]
    pub flat_plus: usize,
    #[serde(default)]
    pub flat_minus: usize,
    /// Directions whose c is infinite (one side flat or falling).
    #[serde(default)]
    pub infinite_c: usize,
}

/// Seed of every bootstrap, so that the same probes always give the same interval.
const BOOTSTRAP_SEED: u64 = 20_190_519;

/// c of the directions that count for the median: not flat.
fn measured_cs(scores: &[&Score]) -> Vec<f64> {
    scores
        .iter()
        .filter(|s| s.class != Class::Flat)
        .map(|s| s.c)
        .collect()
}

fn scores_of(results: &[ProbeResult]) -> Vec<&Score> {
    results
        .iter()
        .filter_map(|r| r.train_score.as_ref())
        .collect()
}

/// The statistics of the training-loss scores of `results`.
pub fn asymmetry(results: &[ProbeResult]) -> Asymmetry {
    let scores = scores_of(results);
    let count = |class: Class| scores.iter().filter(|s| s.class == class).count();
    let asymmetric = scores.iter().filter(|s| s.asymmetric).count();
    let cs = measured_cs(&scores);
    let n = results.len();
    Asymmetry {
        directions: n,
        asymmetric,
        symmetric: count(Class::Symmetric),
        flat: count(Class::Flat),
        undecided: count(Class::Undecided),
        fraction_asymmetric: asymmetric as f64 / n.max(1) as f64,
        fraction_interval: stats::wilson(asymmetric, n, Z95),
        median_c: stats::median(&cs),
        median_c_interval: stats::bootstrap_median(&cs, BOOTSTRAP_SEED),
        flat_plus: scores
            .iter()
            .filter(|s| s.flat_side == score::Side::Plus)
            .count(),
        flat_minus: scores
            .iter()
            .filter(|s| s.flat_side == score::Side::Minus)
            .count(),
        infinite_c: scores.iter().filter(|s| s.c.is_infinite()).count(),
    }
}

impl Asymmetry {
    /// "3/10 asymmetric, 30% [11, 60] · 4 symmetric · 2 flat · 1 undecided · median c 2.4
    /// [1.6, 4.1]": every class, so that the counts add up to the directions (unscored ones
    /// named when there are any).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}/{} asymmetric, {} · {} symmetric · {} flat · {} undecided",
            self.asymmetric,
            self.directions,
            stats::format_percent(self.fraction_asymmetric, self.fraction_interval.as_ref()),
            self.symmetric,
            self.flat,
            self.undecided
        );
        let unscored = self
            .directions
            .saturating_sub(self.asymmetric + self.symmetric + self.flat + self.undecided);
        if unscored > 0 {
            s += &format!(" · {unscored} not scored");
        }
        if let Some(m) = self.median_c {
            s += &format!(" · median c {}", super::format_c(m));
            if let Some(i) = &self.median_c_interval {
                s += &format!(" {}", stats::format_interval(i, 2));
            }
        }
        s
    }
}

/// One set of directions against another: `a` − `b` in the fraction asymmetric (Newcombe's
/// interval) and in the median c (bootstrap).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// The centre both sets go through ("sgd", "swa"), or "" when they differ.
    pub centre: String,
    pub fraction_difference: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_interval: Option<Interval>,
    #[serde(default, with = "optional_float")]
    pub median_c_difference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_c_interval: Option<Interval>,
}

/// Compares the directions `a` with the directions `b`.
pub fn compare(
    (a_name, a): (&str, &[ProbeResult]),
    (b_name, b): (&str, &[ProbeResult]),
    centre: &str,
) -> Comparison {
    let (sa, sb) = (asymmetry(a), asymmetry(b));
    let (ca, cb) = (measured_cs(&scores_of(a)), measured_cs(&scores_of(b)));
    let median_c_difference = match (sa.median_c, sb.median_c) {
        (Some(x), Some(y)) => Some(x - y).filter(|d| !d.is_nan()),
        _ => None,
    };
    Comparison {
        a: a_name.to_owned(),
        b: b_name.to_owned(),
        centre: centre.to_owned(),
        fraction_difference: sa.fraction_asymmetric - sb.fraction_asymmetric,
        fraction_interval: stats::proportion_difference(
            sa.asymmetric,
            sa.directions,
            sb.asymmetric,
            sb.directions,
            Z95,
        ),
        median_c_difference,
        median_c_interval: stats::bootstrap_median_difference(&ca, &cb, BOOTSTRAP_SEED),
    }
}

impl Comparison {
    /// "bn-only − non-bn (swa): asymmetric +40 points [+8, +64], there; median c +2.1 [0.3, 5.0]".
    pub fn describe(&self) -> String {
        let centre = if self.centre.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.centre)
        };
        let mut s = format!(
            "{} − {}{centre}: asymmetric {} points",
            self.a,
            self.b,
            points(self.fraction_difference)
        );
        match &self.fraction_interval {
            Some(i) => {
                s += &format!(" [{}, {}]", points(i.lo), points(i.hi));
                s += if i.above_zero() || i.below_zero() {
                    ", a difference"
                } else {
                    ", no clear difference"
                };
            }
            None => s += " (no interval)",
        }
        if let Some(d) = self.median_c_difference {
            s += &format!(" · median c {}", signed(d));
            if let Some(i) = &self.median_c_interval {
                s += &format!(" {}", stats::format_interval(i, 2));
            }
        }
        s
    }
}

/// A difference of fractions in percentage points with its sign: "+25", "-3", "0".
fn points(v: f64) -> String {
    let p = (100.0 * v).round();
    if p == 0.0 {
        "0".into()
    } else {
        format!("{p:+.0}")
    }
}

fn signed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:+.2}")
    } else if v > 0.0 {
        "+∞".into()
    } else {
        "-∞".into()
    }
}

/// `Option<f64>` whose value may be infinite (as "Infinity"); null is None.
mod optional_float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => crate::nonfinite::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "crate::nonfinite")] f64);
        Ok(Option::<Wrapped>::deserialize(d)?
            .map(|w| w.0)
            .filter(|v| !v.is_nan()))
    }
}

/// Asymmetry statistics of many random directions through one centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentreStats {
    pub centre: String,
    pub probes: Vec<String>,
    /// c of each direction (null: infinite, or not scored).
    pub c: Vec<Option<f64>>,
    #[serde(flatten)]
    pub stats: Asymmetry,
    /// Counts of c in [1, 1.5), [1.5, 2), [2, 3), [3, 5), [5, 10), [10, inf].
    pub histogram: Vec<usize>,
}

impl Asymmetry {
    /// The counts and fractions are what a summary can hold.
    pub fn check(&self, what: &str) -> Result<(), crate::stored::StoredError> {
        crate::stored::fraction(
            &format!("{what} fraction_asymmetric"),
            self.fraction_asymmetric,
        )?;
        let counted = self.asymmetric + self.symmetric + self.flat + self.undecided;
        if self.directions > 0 && counted > self.directions {
            return Err(crate::stored::StoredError(format!(
                "{what} counts {counted} classified directions of {}",
                self.directions
            )));
        }
        Ok(())
    }
}

impl crate::stored::Stored for BatchSummary {
    fn check(&self) -> Result<(), crate::stored::StoredError> {
        crate::stored::finite("threshold", self.threshold)?;
        if self.centres.is_empty() {
            return Err(crate::stored::StoredError(
                "no centre; expected the SGD and/or SWA centre's statistics".into(),
            ));
        }
        for c in &self.centres {
            if c.c.len() != c.probes.len() {
                return Err(crate::stored::StoredError(format!(
                    "centre {}: {} values of c for {} probes",
                    c.centre,
                    c.c.len(),
                    c.probes.len()
                )));
            }
            if c.histogram.len() != C_BIN_EDGES.len() + 1 {
                return Err(crate::stored::StoredError(format!(
                    "centre {}: a histogram of {} bins; expected {}",
                    c.centre,
                    c.histogram.len(),
                    C_BIN_EDGES.len() + 1
                )));
            }
            c.stats.check(&format!("centre {}:", c.centre))?;
        }
        Ok(())
    }
}

/// Upper edges of the c histogram bins (the last bin is open).
pub const C_BIN_EDGES: [f64; 5] = [1.5, 2.0, 3.0, 5.0, 10.0];

/// Summarises the train-loss scores of probes through one centre.
pub fn summarise(centre: &str, results: &[ProbeResult]) -> CentreStats {
    let mut histogram = vec![0; C_BIN_EDGES.len() + 1];
    for s in scores_of(results) {
        let bin = C_BIN_EDGES
            .iter()
            .position(|&edge| s.c < edge)
            .unwrap_or(C_BIN_EDGES.len());
        histogram[bin] += 1;
    }
    CentreStats {
        centre: centre.to_owned(),
        probes: results.iter().map(|r| r.id.clone()).collect(),
        c: results
            .iter()
            .map(|r| {
                r.train_score
                    .as_ref()
                    .map(|s| s.c)
                    .filter(|c| c.is_finite())
            })
            .collect(),
        stats: asymmetry(results),
        histogram,
    }
}

/// The outcome of a batch: N random directions through the SGD iterate and through the SWA
/// average (when there is one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSummary {
    pub id: String,
    /// Always true: tells batch summaries from single probes in probes/.
    pub batch: bool,
    pub spec: ProbeSpec,
    pub directions: usize,
    pub threshold: f64,
    pub centres: Vec<CentreStats>,
    /// SWA against SGD, when both were probed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::score::Scoring;

    /// A probe whose training curve is a V with slopes `left` (for t < 0) and `right`.
    fn v_probe(id: &str, left: f64, right: f64) -> ProbeResult {
        let mut r = crate::ui::app::tests::probe_result(id);
        for p in &mut r.points {
            p.train_loss = 0.3 + if p.t < 0.0 { -left * p.t } else { right * p.t };
        }
        let ts = r.ts();
        let ls: Vec<f64> = r.points.iter().map(|p| p.train_loss).collect();
        r.train_score = score::score(&ts, &ls, &[], Scoring::new(3.0, 0.01));
        r
    }

    #[test]
    fn counts_classes_and_brackets_the_fraction() {
        // 3 asymmetric (c = 5), 1 symmetric, 1 flat out of 5.
        let results = vec![
            v_probe("a", 0.5, 0.1),
            v_probe("b", 0.1, 0.5),
            v_probe("c", 0.5, 0.1),
            v_probe("d", 0.2, 0.2),
            v_probe("e", 0.001, 0.001),
        ];
        let s = asymmetry(&results);
        assert_eq!(
            (s.directions, s.asymmetric, s.symmetric, s.flat, s.undecided),
            (5, 3, 1, 1, 0)
        );
        assert_eq!((s.flat_plus, s.flat_minus), (2, 1));
        let i = s.fraction_interval.unwrap();
        // Wilson for 3/5, computed by hand: [0.2307, 0.8824].
        assert!(
            (i.lo - 0.2307).abs() < 1e-4 && (i.hi - 0.8824).abs() < 1e-4,
            "{i:?}"
        );
        // The median over the 4 measured directions: c = 1, 5, 5, 5 → 5.
        assert!((s.median_c.unwrap() - 5.0).abs() < 1e-9, "{:?}", s.median_c);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Asymmetry>(&json).unwrap(), s);
        // Every class, so that the counts add up to the directions.
        assert!(
            s.describe().starts_with(
                "3/5 asymmetric, 60% [23, 88] · 1 symmetric · 1 flat · 0 undecided · median c"
            ),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn a_comparison_reports_the_difference_with_its_interval() {
        let asym: Vec<_> = (0..10).map(|i| v_probe(&i.to_string(), 0.5, 0.1)).collect();
        let sym: Vec<_> = (0..10).map(|i| v_probe(&i.to_string(), 0.2, 0.2)).collect();
        let c = compare(("bn-only", &asym), ("non-bn", &sym), "swa");
        assert_eq!(c.fraction_difference, 1.0);
        // Newcombe for 10/10 − 0/10: [0.6075, 1] (from the two Wilson intervals).
        let i = c.fraction_interval.unwrap();
        assert!(i.above_zero() && (i.lo - 0.6075).abs() < 1e-3, "{i:?}");
        assert!((c.median_c_difference.unwrap() - 4.0).abs() < 1e-9);
        assert!(c.describe().contains(", a difference"), "{}", c.describe());
        let same = compare(("a", &sym), ("b", &sym), "sgd");
        assert!(same.fraction_interval.unwrap().contains(0.0));
        assert!(same.describe().contains("no clear difference"));
        // Infinite medians survive JSON.
        let json = serde_json::to_string(&Comparison {
            median_c_difference: Some(f64::INFINITY),
            ..same
        })
        .unwrap();
        let back: Comparison = serde_json::from_str(&json).unwrap();
        assert_eq!(back.median_c_difference, Some(f64::INFINITY));
    }

    #[test]
    fn summaries_written_before_intervals_still_read() {
        let old = r#"{"centre":"swa","probes":["001"],"c":[2.0],"asymmetric":0,
            "fraction_asymmetric":0.0,"median_c":2.0,"flat_plus":1,"flat_minus":0,
            "histogram":[0,0,1,0,0,0]}"#;
        let c: CentreStats = serde_json::from_str(old).unwrap();
        assert_eq!(
            (c.stats.median_c, c.stats.fraction_interval),
            (Some(2.0), None)
        );
    }
}
