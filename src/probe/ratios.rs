//! The sign-consistency sweep of Li et al. (2024): a batch of sign-match directions at each
//! ratio ρ of agreeing signs, and per ρ and centre the asymmetry (fraction asymmetric with
//! Wilson's interval, median c with its bootstrap interval) and how far the training loss rises
//! at each end of the line (mean over directions with Student's t interval). Plain data.

use super::ProbeResult;
use super::summary::BatchSummary;
use crate::stats::{self, Interval};

/// `--ratios FROM:TO:STEP`: the ratios from FROM to TO (both in [0, 1], TO included when the
/// steps land on it) by STEP.
pub fn parse_ratios(text: &str) -> Result<Vec<f64>, crate::error::Invalid> {
    let bad = || {
        crate::error::Invalid(format!(
            "'{text}': expected FROM:TO:STEP with 0 <= FROM <= TO <= 1 and STEP > 0, e.g. 0:1:0.1"
        ))
    };
    let parts: Vec<f64> = text
        .split(':')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let [from, to, step] = parts[..] else {
        return Err(bad());
    };
    if !(0.0..=1.0).contains(&from) || !(from..=1.0).contains(&to) || step.is_nan() || step <= 0.0 {
        return Err(bad());
    }
    let count = ((to - from) / step + 1e-9).floor() as usize + 1;
    if count > 101 {
        return Err(crate::error::Invalid(format!(
            "'{text}': {count} ratios; expected at most 101"
        )));
    }
    // Rounded to the step's decimals, so that 0.1 · 3 is 0.3.
    Ok((0..count)
        .map(|i| ((from + step * i as f64) * 1e9).round() / 1e9)
        .collect())
}

/// One ratio at one centre.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioRow {
    pub ratio: f64,
    pub centre: String,
    pub asymmetric: usize,
    pub directions: usize,
    pub fraction: f64,
    pub fraction_interval: Option<Interval>,
    pub median_c: Option<f64>,
    pub median_c_interval: Option<Interval>,
    /// The training loss's mean rise from the centre at the line's negative and positive
    /// ends, with Student's t intervals over the directions.
    pub rise_minus: Option<(f64, Option<Interval>)>,
    pub rise_plus: Option<(f64, Option<Interval>)>,
}

/// The training loss at the ends of a probe's line, less the centre's.
fn rises(r: &ProbeResult) -> Option<(f64, f64)> {
    let centre = r.points.iter().find(|p| p.t == 0.0)?.train_loss;
    let (first, last) = (r.points.first()?, r.points.last()?);
    Some((first.train_loss - centre, last.train_loss - centre))
}

/// The rows of one ratio's batch, `probes` holding (at least) the batch's own probes.
pub fn rows(ratio: f64, batch: &BatchSummary, probes: &[ProbeResult]) -> Vec<RatioRow> {
    batch
        .centres
        .iter()
        .map(|c| {
            let ends: Vec<(f64, f64)> = c
                .probes
                .iter()
                .filter_map(|id| probes.iter().find(|p| &p.id == id))
                .filter_map(rises)
                .collect();
            let minus: Vec<f64> = ends.iter().map(|e| e.0).collect();
            let plus: Vec<f64> = ends.iter().map(|e| e.1).collect();
            RatioRow {
                ratio,
                centre: c.centre.clone(),
                asymmetric: c.stats.asymmetric,
                directions: c.probes.len(),
                fraction: c.stats.fraction_asymmetric,
                fraction_interval: c.stats.fraction_interval,
                median_c: c.stats.median_c,
                median_c_interval: c.stats.median_c_interval,
                rise_minus: stats::mean_interval(&minus),
                rise_plus: stats::mean_interval(&plus),
            }
        })
        .collect()
}

/// The table's lines: a header and one line per row.
pub fn table(rows: &[RatioRow]) -> Vec<String> {
    let mean = |m: &Option<(f64, Option<Interval>)>| match m {
        Some((v, Some(i))) => format!("{v:.4} {}", stats::format_interval(i, 4)),
        Some((v, None)) => format!("{v:.4}"),
        None => "–".into(),
    };
    let mut lines = vec![format!(
        "{:>5} {:<6} {:>9} {:>16} {:>22} {:>30} {:>30}",
        "ρ",
        "centre",
        "asym",
        "% [95% CI]",
        "median c [95% CI]",
        "rise at −T [95% CI]",
        "rise at +T [95% CI]"
    )];
    for r in rows {
        let median = match (r.median_c, &r.median_c_interval) {
            (Some(m), Some(i)) => format!("{m:.2} {}", stats::format_interval(i, 2)),
            (Some(m), None) => format!("{m:.2}"),
            (None, _) => "–".into(),
        };
        lines.push(format!(
            "{:>5} {:<6} {:>5}/{:<3} {:>16} {:>22} {:>30} {:>30}",
            r.ratio,
            r.centre,
            r.asymmetric,
            r.directions,
            stats::format_percent(r.fraction, r.fraction_interval.as_ref()),
            median,
            mean(&r.rise_minus),
            mean(&r.rise_plus)
        ));
    }
    lines
}

/// CSV of the rows (intervals as lo/hi columns, empty where there is none).
pub fn csv(rows: &[RatioRow]) -> String {
    let mut out = String::from(
        "ratio,centre,asymmetric,directions,fraction,fraction_lo,fraction_hi,median_c,median_c_lo,median_c_hi,rise_minus,rise_minus_lo,rise_minus_hi,rise_plus,rise_plus_lo,rise_plus_hi\n",
    );
    let interval = |i: Option<&Interval>| {
        i.map_or((String::new(), String::new()), |i| {
            (i.lo.to_string(), i.hi.to_string())
        })
    };
    let value = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in rows {
        let (flo, fhi) = interval(r.fraction_interval.as_ref());
        let (mlo, mhi) = interval(r.median_c_interval.as_ref());
        let (nlo, nhi) = interval(r.rise_minus.as_ref().and_then(|m| m.1.as_ref()));
        let (plo, phi) = interval(r.rise_plus.as_ref().and_then(|m| m.1.as_ref()));
        out += &format!(
            "{},{},{},{},{},{flo},{fhi},{},{mlo},{mhi},{},{nlo},{nhi},{},{plo},{phi}\n",
            r.ratio,
            r.centre,
            r.asymmetric,
            r.directions,
            r.fraction,
            value(r.median_c),
            value(r.rise_minus.map(|m| m.0)),
            value(r.rise_plus.map(|m| m.0)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_parse_from_to_by_step_and_refuse_the_rest() {
        let r = parse_ratios("0:1:0.1").unwrap();
        assert_eq!(r.len(), 11);
        assert_eq!((r[0], r[3], r[10]), (0.0, 0.3, 1.0));
        assert_eq!(parse_ratios("0.5:0.5:0.1").unwrap(), vec![0.5]);
        for bad in [
            "0:1",
            "0:1.5:0.1",
            "0.6:0.5:0.1",
            "0:1:0",
            "a:b:c",
            "0:1:-0.1",
        ] {
            let e = parse_ratios(bad).unwrap_err().0;
            assert!(e.contains("expected FROM:TO:STEP"), "{bad}: {e}");
        }
        assert!(
            parse_ratios("0:1:0.001")
                .unwrap_err()
                .0
                .contains("at most 101")
        );
    }

    /// Rises computed by hand: two V-shaped probes, centre loss 0.3.
    #[test]
    fn a_row_holds_the_mean_rise_at_each_end_over_the_directions() {
        let mut a = crate::ui::app::tests::probe_result("a");
        let mut b = crate::ui::app::tests::probe_result("b");
        for (r, (left, right)) in [(&mut a, (0.1, 0.5)), (&mut b, (0.3, 0.7))] {
            for p in &mut r.points {
                p.train_loss = 0.3 + if p.t < 0.0 { -left * p.t } else { right * p.t };
            }
        }
        let (t0, t1) = (a.points[0].t, a.points.last().unwrap().t);
        let batch = BatchSummary {
            id: "001-batch".into(),
            batch: true,
            spec: a.spec.clone(),
            directions: 2,
            threshold: 3.0,
            centres: vec![crate::probe::summary::summarise(
                "swa",
                &[a.clone(), b.clone()],
            )],
            comparisons: Vec::new(),
        };
        let rows = rows(0.7, &batch, &[a, b]);
        assert_eq!(rows.len(), 1);
        let minus = rows[0].rise_minus.unwrap();
        let plus = rows[0].rise_plus.unwrap();
        assert!(
            (minus.0 - (-0.1 * t0 + -0.3 * t0) / 2.0).abs() < 1e-12,
            "{minus:?}"
        );
        assert!(
            (plus.0 - (0.5 * t1 + 0.7 * t1) / 2.0).abs() < 1e-12,
            "{plus:?}"
        );
        assert_eq!(rows[0].directions, 2);
        let lines = table(&rows);
        assert!(lines[1].trim_start().starts_with("0.7 swa"), "{lines:?}");
        let csv = csv(&rows);
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.lines().nth(1).unwrap().starts_with("0.7,swa,"), "{csv}");
    }
}
