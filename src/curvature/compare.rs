//! The comparison the paper argues about, one row per centre: test loss, the top eigenvalue,
//! the trace and the sharpness measures (each with its interval), beside the asymmetry the
//! probes found at the same centre (the fraction of asymmetric directions, the median c and
//! the flat side). Plain text cells, for the command line, the dashboard and the report.

use super::{CurvatureResult, Estimate};
use crate::probe::summary::BatchSummary;
use crate::stats;

/// The table's columns.
pub const COLUMNS: [&str; 9] = [
    "centre",
    "test loss",
    "λ_max [95% CI]",
    "trace [95% CI]",
    "avg sharpness",
    "worst sharpness",
    "asymmetric",
    "median c",
    "flat side +/-",
];

fn cell(e: Option<Estimate>) -> String {
    e.map_or_else(|| "–".into(), |e| e.describe(3))
}

/// One row per centre of `result`; the asymmetry columns from `batch` (a stored batch of
/// random directions through the same centres) when there is one.
pub fn rows(result: &CurvatureResult, batch: Option<&BatchSummary>) -> Vec<Vec<String>> {
    result
        .centres
        .iter()
        .map(|c| {
            let asymmetry = batch.and_then(|b| b.centres.iter().find(|s| s.centre == c.centre));
            let (asym, median, flat) = match asymmetry {
                Some(s) => {
                    let a = &s.stats;
                    let median = match (a.median_c, &a.median_c_interval) {
                        (Some(m), Some(i)) => {
                            format!(
                                "{} {}",
                                crate::probe::format_c(m),
                                stats::format_interval(i, 2)
                            )
                        }
                        (Some(m), None) => crate::probe::format_c(m),
                        (None, _) => "–".into(),
                    };
                    (
                        stats::format_percent(a.fraction_asymmetric, a.fraction_interval.as_ref()),
                        median,
                        format!("{}/{}", a.flat_plus, a.flat_minus),
                    )
                }
                None => ("–".into(), "–".into(), "–".into()),
            };
            vec![
                c.centre.clone(),
                format!("{:.4}", c.test_loss),
                cell(c.eigenvalues.first().copied()),
                cell(c.trace),
                cell(c.average_sharpness),
                cell(c.worst_sharpness),
                asym,
                median,
                flat,
            ]
        })
        .collect()
}

/// The table as aligned text with a header line.
pub fn text(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([COLUMNS[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = line(COLUMNS.to_vec());
    for r in rows {
        out.push('\n');
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

/// The table in Markdown.
pub fn markdown(rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        COLUMNS.join(" | "),
        "---|".repeat(COLUMNS.len())
    );
    for r in rows {
        out += &format!("| {} |\n", r.join(" | "));
    }
    out
}
