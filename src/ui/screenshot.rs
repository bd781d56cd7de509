//! `e`: the current screen as a screenshot — SVG of the terminal cells, a PNG rendered from it,
//! and the data behind the charts on it as CSV — in RUN_DIR/screenshots/.

use super::app::{App, View};
use crate::export::{raster, screen};
use crate::protocol::{Iterate, Split};
use crate::rundir::{RunDirError, write_atomic};
use ratatui::buffer::Buffer;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The data behind the charts of the current view, as (name, CSV).
pub fn screen_data(app: &App) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let metrics = |app: &App| {
        let mut csv = String::from("iterate,split,epoch,step,loss,acc\n");
        let mut keys: Vec<&(Iterate, Split)> = app.series.keys().collect();
        keys.sort();
        for key in keys {
            for p in app.series[key].points() {
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{}",
                    key.0.as_str(),
                    key.1.as_str(),
                    p.epoch,
                    p.step,
                    p.loss,
                    p.acc
                );
            }
        }
        csv
    };
    let probe_csv = |r: &crate::probe::ProbeResult| crate::probe::store::csv(r);
    match app.view {
        View::Dashboard => {
            out.push(("metrics".into(), metrics(app)));
            if !app.curvature.track.is_empty() {
                out.push(("curvature-track".into(), track_csv(&app.curvature.track)));
            }
        }
        View::Curvature => {
            if let Some(r) = app.curvature.results.get(app.curvature.selected) {
                out.push((
                    format!("curvature-{}", r.id),
                    crate::curvature::store::csv(r),
                ));
                let mut csv = String::from("centre,eigenvalue,density\n");
                let all: Vec<_> = r.centres.iter().flat_map(|c| c.quadratures()).collect();
                if let Some(span) = crate::curvature::density::span(&all) {
                    for c in &r.centres {
                        for (x, y) in crate::curvature::density::curve(&c.quadratures(), span, 400)
                        {
                            let _ = writeln!(csv, "{},{x},{y}", c.centre);
                        }
                    }
                    out.push((format!("density-{}", r.id), csv));
                }
            }
            if !app.curvature.track.is_empty() {
                out.push(("curvature-track".into(), track_csv(&app.curvature.track)));
            }
        }
        View::Probes => {
            if let Some(c) = app.probes.selected_connection() {
                out.push((
                    format!("connection-{}", c.id),
                    crate::probe::connect::csv(c),
                ));
            }
            if let Some(r) = app.probes.results.get(app.probes.selected) {
                out.push((format!("probe-{}", r.id), probe_csv(r)));
                if let Some(s) = &r.shift {
                    let mut csv = String::from("delta,xi,ratio\n");
                    for ((d, x), q) in s.deltas.iter().zip(&s.xi).zip(&s.ratio) {
                        let _ = writeln!(csv, "{d},{x},{q}");
                    }
                    out.push((format!("shift-{}", r.id), csv));
                }
            }
            if let Some(live) = &app.probes.live {
                let mut csv = String::from("t,train_loss,train_acc,test_loss,test_acc\n");
                for p in live.points.iter().flatten() {
                    let _ = writeln!(
                        csv,
                        "{},{},{},{},{}",
                        p.t, p.train_loss, p.train_acc, p.test_loss, p.test_acc
                    );
                }
                out.push((format!("probe-{}-partial", live.id), csv));
            }
        }
        View::Planes => {
            if let Some(live) = &app.planes.live {
                let csv = crate::probe::plane::points_csv(live.points.iter().flatten());
                out.push((format!("plane-{}-partial", live.header.id), csv));
            } else if let Some(r) = app.planes.results.get(app.planes.selected) {
                out.push((format!("plane-{}", r.id), crate::probe::plane::csv(r)));
            }
        }
        View::Ablations => {
            out.push(("metrics".into(), metrics(app)));
            if let Some(twin) = &app.twin {
                out.push(("twin-metrics".into(), metrics(twin)));
            }
            if let Some((result, probes)) = app.ablations.last() {
                out.push((
                    format!("ablation-{}", result.id),
                    crate::ablation::csv(result),
                ));
                for p in probes {
                    out.push((format!("probe-{}", p.id), probe_csv(p)));
                }
            }
        }
    }
    out
}

/// The tracked curvature as CSV: one row per centre and epoch end.
fn track_csv(rows: &[crate::curvature::track::TrackRow]) -> String {
    let mut csv =
        String::from("epoch,step,lr,centre,top_eigenvalue,residual,trace,trace_lo,trace_hi\n");
    for r in rows {
        let (t, lo, hi) = r
            .trace
            .map_or((String::new(), String::new(), String::new()), |t| {
                let (lo, hi) = t.interval.map_or((String::new(), String::new()), |i| {
                    (i.lo.to_string(), i.hi.to_string())
                });
                (t.value.to_string(), lo, hi)
            });
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{t},{lo},{hi}",
            r.epoch, r.step, r.lr, r.centre, r.top_eigenvalue, r.residual
        );
    }
    csv
}

/// Why a screenshot could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Write(#[from] RunDirError),
    #[error(transparent)]
    Raster(#[from] crate::export::raster::RasterError),
}

/// Writes `<stem>.svg`, `<stem>.png` and the CSVs into `dir`; returns every path written.
pub fn export(
    buffer: &Buffer,
    data: &[(String, String)],
    dir: &Path,
    stem: &str,
) -> Result<Vec<PathBuf>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| RunDirError::Io {
        path: dir.to_owned(),
        action: "cannot create the directory",
        source,
    })?;
    let svg = screen::to_svg(buffer);
    let png = raster::png(&svg, 1.0)?;
    let mut written = Vec::new();
    for (path, bytes) in [
        (dir.join(format!("{stem}.svg")), svg.into_bytes()),
        (dir.join(format!("{stem}.png")), png),
    ] {
        write_atomic(&path, &bytes)?;
        written.push(path);
    }
    for (name, csv) in data {
        let path = dir.join(format!("{stem}-{name}.csv"));
        write_atomic(&path, csv.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
