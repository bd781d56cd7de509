//! The sweep report's pairs: each connected pair's barrier beside its sign consistency, and
//! the rank correlation of the two over the pairs (Li et al. 2024's model-fusion finding).

use super::Doc;
use crate::probe::connect::Barrier;
use crate::stats::{format_interval, spearman};
use crate::sweep::SweepDir;
use crate::sweep::pairs::{self, PairRow};
use std::fmt::Write;

fn barrier(b: &Option<Barrier>) -> String {
    match b {
        Some(Barrier {
            value,
            interval: Some(i),
            ..
        }) => format!("{value:.4} {}", format_interval(i, 4)),
        Some(b) => format!("{:.4}", b.value),
        None => "–".into(),
    }
}

/// "ρ = −0.52 [−0.88, 0.17] over 9 pairs", or why there is none.
pub(crate) fn correlation(rows: &[PairRow], pick: fn(&PairRow) -> Option<f64>) -> String {
    let (x, y): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .filter_map(|r| Some((r.sign_consistency, pick(r)?)))
        .unzip();
    match spearman(&x, &y) {
        Some((rho, Some(i))) => format!(
            "ρ = {rho:+.2} {} over {} pairs",
            format_interval(&i, 2),
            x.len()
        ),
        Some((rho, None)) => format!("ρ = {rho:+.2} over {} pairs (no interval under 4)", x.len()),
        None => format!(
            "no rank correlation ({} pairs; it needs 3 or more with distinct values)",
            x.len()
        ),
    }
}

pub(super) fn section(doc: &mut Doc, sweep: &SweepDir) {
    let Some(settings) = sweep.connect() else {
        return;
    };
    let (rows, missing) = pairs::read(sweep, &settings);
    let _ = writeln!(
        doc.md,
        "## Barrier against sign consistency ({} pairs, {} iterates)\n",
        settings.pairs.as_str(),
        settings.iterate
    );
    if !rows.is_empty() {
        let curve = rows.iter().any(|r| r.curve_train_barrier.is_some());
        let _ = writeln!(
            doc.md,
            "| A | B | configuration | sign consistency | train barrier [95% CI] | test barrier [95% CI] |{}\n|---|---|---|---|---|---|{}",
            if curve { " curve train barrier |" } else { "" },
            if curve { "---|" } else { "" }
        );
        for r in &rows {
            let _ = writeln!(
                doc.md,
                "| {} | {} | {} | {:.2}% | {} | {} |{}",
                r.a,
                r.b,
                r.group,
                100.0 * r.sign_consistency,
                barrier(&r.train_barrier),
                barrier(&r.test_barrier),
                if curve {
                    format!(" {} |", barrier(&r.curve_train_barrier))
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(
            doc.md,
            "\nSpearman's rank correlation of the barrier with the sign consistency: train {}; test {}. Its 95% interval is Fisher's z with variance 1.06/(n − 3); pairs that share a run are not independent, so the interval is narrower than it should be. Li et al. (2024) find the correlation negative: solutions whose weights agree in sign more often interpolate with a lower barrier.",
            correlation(&rows, |r| r.train_barrier.map(|b| b.value)),
            correlation(&rows, |r| r.test_barrier.map(|b| b.value)),
        );
    }
    if !missing.is_empty() {
        let _ = writeln!(
            doc.md,
            "\n{} pairs are not measured yet: `valleys sweep {}` measures them once every variant has trained.",
            missing.len(),
            sweep.root.display()
        );
    }
    let _ = writeln!(doc.md);
}
