//! `valleys report SWEEP_DIR`: per group of the non-seed axes, mean ± standard deviation
//! (and n) over seeds of SGD and SWA test loss and accuracy and of the SWA gain, the fraction
//! of asymmetric directions pooled over seeds with Wilson's 95% interval (per centre, and per
//! ablation arm), the test-loss curves with ±1 std bands, and a table of every run.

use super::{Doc, HEIGHT, Report, ReportError, WIDTH};
use crate::export::figure::{self, Band, Figure, Line, palette};
use crate::protocol::Iterate;
use crate::rundir::write_atomic;
use crate::sweep::SweepDir;
use crate::sweep::report::{self as agg, Group, RunSummary, describe};
use std::fmt::Write;
use std::path::Path;

/// Writes the sweep's report into `out` (default SWEEP_DIR/report).
pub fn write(
    sweep: &SweepDir,
    out: Option<&Path>,
    log_y: bool,
    force: bool,
) -> Result<Report, ReportError> {
    // The sweep's index is read before anything is written: without it there is no report.
    let variants = sweep.variants()?;
    let mut doc = Doc::create(out, &sweep.root.join("report"), force)?;
    let runs: Vec<RunSummary> = variants.iter().map(|v| agg::summarise(sweep, v)).collect();
    let _ = writeln!(doc.md, "# valleys sweep report: {}\n", sweep.name());
    let finished = runs
        .iter()
        .filter(|r| {
            matches!(
                r.state,
                crate::sweep::VariantState::Done | crate::sweep::VariantState::Trained
            )
        })
        .count();
    let _ = writeln!(
        doc.md,
        "Sweep `{}` · {} variants, {finished} finished (only finished runs enter the means).\n",
        sweep.root.display(),
        runs.len()
    );
    let groups = agg::group(runs.clone());
    group_table(&mut doc, &groups);
    difference_table(&mut doc, &groups);
    curvature_table(&mut doc, &groups);
    arms_table(&mut doc, &groups);
    super::sweep_pairs::section(&mut doc, sweep);
    let name = "sweep-test-loss";
    doc.save(name, curves_figure(&groups, log_y))?;
    doc.caption(
        name,
        name,
        "Test loss per epoch, mean over seeds in each group: SWA solid, SGD dashed, shaded ±1 standard deviation.".into(),
    );
    runs_table(&mut doc, &runs);
    write_atomic(&doc.report.markdown, doc.md.as_bytes())?;
    Ok(doc.report)
}

fn group_table(doc: &mut Doc, groups: &[Group]) {
    let _ = writeln!(
        doc.md,
        "## Per group (mean ± std over seeds)\n\n| group | n | SGD test loss | SWA test loss | SGD test acc % | SWA test acc % | SWA gain (SGD − SWA) | asymmetric, SGD centre | asymmetric, SWA centre |\n|---|---|---|---|---|---|---|---|---|"
    );
    for g in groups {
        let loss = |f: fn(&RunSummary) -> Option<f64>| describe(g.metric(f), 4);
        let acc = |f: fn(&RunSummary) -> Option<f64>| describe(g.metric(f), 2);
        let n = g
            .metric(|r| r.swa_gain.or(r.sgd.as_ref().map(|s| s.loss)))
            .map_or(0, |s| s.n);
        let asym = |c: &str| g.asymmetric(c).map_or("–".into(), |p| p.describe());
        let _ = writeln!(
            doc.md,
            "| {} | {n} | {} | {} | {} | {} | {} | {} | {} |",
            g.label(),
            loss(|r| r.sgd.as_ref().map(|s| s.loss)),
            loss(|r| r.swa.as_ref().map(|s| s.loss)),
            acc(|r| r.sgd.as_ref().map(|s| 100.0 * s.acc)),
            acc(|r| r.swa.as_ref().map(|s| 100.0 * s.acc)),
            loss(|r| r.swa_gain),
            asym("sgd"),
            asym("swa"),
        );
    }
    let _ = writeln!(
        doc.md,
        "\nAsymmetric fractions pool every run's random directions in the group (Wilson 95% interval, asymmetric/directions).\n"
    );
}

/// Each group's asymmetric fraction against the first group's, with Newcombe's interval: what
/// an ablation over a setting (BN on or off, `model.bn_init`) asks.
fn difference_table(doc: &mut Doc, groups: &[Group]) {
    let Some((first, rest)) = groups.split_first() else {
        return;
    };
    let rows: Vec<String> = rest
        .iter()
        .filter_map(|g| {
            let cell = |centre: &str| {
                g.asymmetric_difference(first, centre)
                    .map(|(d, i)| match i {
                        Some(i) => format!(
                            "{:+.0} points [{:+.0}, {:+.0}]",
                            100.0 * d,
                            100.0 * i.lo,
                            100.0 * i.hi
                        ),
                        None => format!("{:+.0} points", 100.0 * d),
                    })
            };
            let (sgd, swa) = (cell("sgd"), cell("swa"));
            (sgd.is_some() || swa.is_some()).then(|| {
                format!(
                    "| {} | {} | {} |",
                    g.label(),
                    sgd.unwrap_or_else(|| "–".into()),
                    swa.unwrap_or_else(|| "–".into())
                )
            })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        doc.md,
        "## Asymmetric fraction against {}

| group | SGD centre | SWA centre |
|---|---|---|",
        first.label()
    );
    for row in rows {
        let _ = writeln!(doc.md, "{row}");
    }
    let _ = writeln!(
        doc.md,
        "
The group's pooled fraction of asymmetric directions minus {}'s, in percentage points, with Newcombe's hybrid score 95% interval.
",
        first.label()
    );
}

/// Per group and centre, the Hessian numbers over seeds beside the probes' asymmetry, and
/// SGD − SWA per run with its interval: the comparison the paper argues about, with bands.
fn curvature_table(doc: &mut Doc, groups: &[Group]) {
    if !groups
        .iter()
        .any(|g| g.runs.iter().any(|r| !r.curvature.is_empty()))
    {
        return;
    }
    let _ = writeln!(
        doc.md,
        "## Curvature per group (mean [Student's t 95% interval] over seeds)\n\n| group | centre | n | λ_max | trace | avg sharpness | worst sharpness | asymmetric |\n|---|---|---|---|---|---|---|---|"
    );
    type Pick = fn(&agg::CentreNumbers) -> Option<f64>;
    let picks: [Pick; 4] = [
        |c| c.lambda_max,
        |c| c.trace,
        |c| c.average_sharpness,
        |c| c.worst_sharpness,
    ];
    let cell = |v: Option<(f64, Option<crate::stats::Interval>, usize)>| match v {
        Some((m, Some(i), _)) => format!(
            "{} [{}, {}]",
            crate::curvature::significant(m, 3),
            crate::curvature::significant(i.lo, 3),
            crate::curvature::significant(i.hi, 3)
        ),
        Some((m, None, _)) => crate::curvature::significant(m, 3),
        None => "–".into(),
    };
    for g in groups {
        for centre in ["sgd", "swa"] {
            let n = g.curvature(centre, |c| c.lambda_max).map_or(0, |v| v.2);
            if n == 0 {
                continue;
            }
            let numbers: Vec<String> = picks.iter().map(|f| cell(g.curvature(centre, f))).collect();
            let asym = g.asymmetric(centre).map_or("–".into(), |p| p.describe());
            let _ = writeln!(
                doc.md,
                "| {} | {centre} | {n} | {} | {asym} |",
                g.label(),
                numbers.join(" | ")
            );
        }
        let differences: Vec<String> = picks
            .iter()
            .map(|f| cell(g.curvature_difference(f)))
            .collect();
        if g.curvature_difference(|c| c.lambda_max).is_some() {
            let _ = writeln!(
                doc.md,
                "| {} | SGD − SWA | | {} | |",
                g.label(),
                differences.join(" | ")
            );
        }
    }
    let _ = writeln!(
        doc.md,
        "\nEach run's newest curvature job (`curvature:` in the sweep, or `valleys curvature`); SGD − SWA is taken per run, then averaged.\n"
    );
}

fn arms_table(doc: &mut Doc, groups: &[Group]) {
    let rows: Vec<(String, String, String, agg::Pooled)> = groups
        .iter()
        .flat_map(|g| {
            g.arms()
                .into_iter()
                .map(move |(arm, centre, p)| (g.label(), arm, centre, p))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        doc.md,
        "## Ablation arms (pooled over seeds)\n\n| group | arm | centre | asymmetric [95% CI] |\n|---|---|---|---|"
    );
    for (group, arm, centre, p) in rows {
        let _ = writeln!(doc.md, "| {group} | {arm} | {centre} | {} |", p.describe());
    }
    let _ = writeln!(doc.md);
}

fn runs_table(doc: &mut Doc, runs: &[RunSummary]) {
    let _ = writeln!(
        doc.md,
        "## Every run\n\n| variant | state | epoch | SGD test loss | SWA test loss | SWA gain |\n|---|---|---|---|---|---|"
    );
    for r in runs {
        let loss = |row: &Option<crate::protocol::MetricRow>| {
            row.as_ref()
                .map_or("–".into(), |r| format!("{:.4}", r.loss))
        };
        let _ = writeln!(
            doc.md,
            "| {} | {} | {}/{} | {} | {} | {} |",
            r.variant.id,
            r.state.as_str(),
            r.epoch,
            r.epochs.map_or("–".into(), |e| e.to_string()),
            loss(&r.sgd),
            loss(&r.swa),
            r.swa_gain.map_or("–".into(), |g| format!("{g:+.4}"))
        );
    }
    let _ = writeln!(doc.md);
}

fn curves_figure(groups: &[Group], log_y: bool) -> Result<String, figure::FigureError> {
    let colors = [
        palette::BLUE,
        palette::VERMILLION,
        palette::GREEN,
        palette::ORANGE,
        palette::PURPLE,
        palette::SKY_BLUE,
    ];
    let mut lines = Vec::new();
    let mut bands = Vec::new();
    for (g, color) in groups.iter().zip(colors.iter().cycle()) {
        for (iterate, name, dashed) in [(Iterate::Swa, "SWA", false), (Iterate::Sgd, "SGD", true)] {
            let curve = g.mean_curve(iterate);
            if curve.is_empty() {
                continue;
            }
            lines.push(Line {
                name: format!("{} · {name}", g.label()),
                points: curve.iter().map(|&(x, m, _)| (x, m)).collect(),
                color: *color,
                dashed,
            });
            bands.push(Band {
                points: curve.iter().map(|&(x, m, s)| (x, m - s, m + s)).collect(),
                color: *color,
            });
        }
    }
    figure::svg_with_bands(
        &Figure {
            title: "test loss over seeds, per group".into(),
            x_label: "epoch".into(),
            y_label: "test loss".into(),
            log_y,
            lines,
            markers: Vec::new(),
            notes: Vec::new(),
        },
        &bands,
        WIDTH,
        HEIGHT,
    )
}
