//! Curvature results in the run directory: curvature/<id>.json (every setting, number, interval
//! and SLQ quadrature) and curvature/<id>.csv (one row per number), written atomically; and
//! curvature/track.jsonl, the curvature tracked while training, rewritten whole (atomically) at
//! each append so that a kill leaves the rows before it, and cut back to a checkpoint when a
//! run resumes from it, as metrics.jsonl is.

use super::CurvatureResult;
use super::track::{self, TrackRow};
use crate::config::curvature::CurvatureCentres;
use crate::rundir::{RunDir, RunDirError, write_atomic};
use std::path::PathBuf;

/// The curvature directory of a run.
pub fn dir(run: &RunDir) -> PathBuf {
    run.root().join("curvature")
}

/// A fresh id: a sequence number and the centres, e.g. "002-both".
pub fn next_id(run: &RunDir, centres: CurvatureCentres) -> String {
    let n = crate::rundir::next_sequence_number(&dir(run));
    format!("{n:03}-{}", centres.as_str())
}

/// The CSV of a result: centre, sample set (`all` for the value over the sets), quantity,
/// index, value and the 95% interval's bounds where there is one.
pub fn csv(result: &CurvatureResult) -> String {
    let mut out = String::from("centre,set,quantity,index,value,lo,hi\n");
    let mut row = |centre: &str, set: &str, quantity: &str, index: usize, e: super::Estimate| {
        let (lo, hi) = e.interval.map_or((String::new(), String::new()), |i| {
            (i.lo.to_string(), i.hi.to_string())
        });
        out += &format!("{centre},{set},{quantity},{index},{},{lo},{hi}\n", e.value);
    };
    let plain = |value: f64| super::Estimate {
        value,
        interval: None,
    };
    for c in &result.centres {
        row(&c.centre, "all", "test_loss", 0, plain(c.test_loss));
        row(&c.centre, "all", "test_acc", 0, plain(c.test_acc));
        row(&c.centre, "all", "loss", 0, c.loss);
        for (i, e) in c.eigenvalues.iter().enumerate() {
            row(&c.centre, "all", "eigenvalue", i + 1, *e);
        }
        for (name, e) in [
            ("trace", c.trace),
            ("average_sharpness", c.average_sharpness),
            ("worst_sharpness", c.worst_sharpness),
        ] {
            if let Some(e) = e {
                row(&c.centre, "all", name, 0, e);
            }
        }
        for (s, set) in c.sets.iter().enumerate() {
            let set_name = (s + 1).to_string();
            row(&c.centre, &set_name, "loss", 0, plain(set.loss));
            for (i, v) in set.eigenvalues.iter().enumerate() {
                row(&c.centre, &set_name, "eigenvalue", i + 1, plain(*v));
            }
            if let Some(t) = &set.trace {
                row(&c.centre, &set_name, "trace", 0, t.trace);
            }
            if let Some(a) = set.average_sharpness {
                row(&c.centre, &set_name, "average_sharpness", 0, a);
            }
            if let Some(w) = set.worst_sharpness {
                row(&c.centre, &set_name, "worst_sharpness", 0, plain(w));
            }
        }
    }
    out
}

/// Writes curvature/<id>.csv and curvature/<id>.json, atomically.
pub fn write(run: &RunDir, result: &CurvatureResult) -> Result<PathBuf, RunDirError> {
    crate::rundir::write_result(&dir(run), &result.id, result, Some(&csv(result)))
}

/// Every curvature result stored in a run, in id order, and the files that could not be
/// read, each with why.
pub fn read_all(run: &RunDir) -> (Vec<CurvatureResult>, Vec<String>) {
    crate::rundir::read_json_files(&dir(run), |v| v.get("centres").is_some())
}

/// RUN_DIR/curvature/track.jsonl.
pub fn track_path(run: &RunDir) -> PathBuf {
    dir(run).join("track.jsonl")
}

/// Appends tracked `rows` (the file is rewritten whole, atomically).
pub fn append_track(run: &RunDir, rows: &[TrackRow]) -> Result<(), RunDirError> {
    let path = track_path(run);
    let dir = dir(run);
    std::fs::create_dir_all(&dir).map_err(|source| RunDirError::Io {
        path: dir,
        action: "cannot create the directory",
        source,
    })?;
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        // A torn last line (from a copy, not from us) is not built on.
        text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    }
    for row in rows {
        text += &serde_json::to_string(row).expect("a track row serialises");
        text.push('\n');
    }
    write_atomic(&path, text.as_bytes())
}

/// The tracked rows stored, in the order written, and the lines that could not be read (each
/// named by its line number and why).
pub fn read_track(run: &RunDir) -> (Vec<TrackRow>, Vec<String>) {
    let path = track_path(run);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return (Vec::new(), Vec::new());
    };
    track::parse(&text, &path.display().to_string())
}

/// Drops the tracked rows measured after optimiser step `step` (a run resumed from that
/// checkpoint measures them again), keeping the others' lines as they were; returns how many
/// went.
pub fn truncate_track(run: &RunDir, step: u64) -> Result<usize, RunDirError> {
    let path = track_path(run);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(0);
    };
    // Unreadable lines (a torn last one) go too, as metrics.jsonl's do.
    let kept: String = text
        .lines()
        .filter(|line| serde_json::from_str::<TrackRow>(line).is_ok_and(|r| r.step <= step))
        .flat_map(|line| [line, "\n"])
        .collect();
    let dropped = text.lines().count() - kept.lines().count();
    if dropped > 0 {
        write_atomic(&path, kept.as_bytes())?;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curvature::track::tests::row;

    #[test]
    fn tracked_rows_append_read_back_and_resume_drops_the_later_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let run =
            RunDir::create(&tmp.path().join("r"), &crate::rundir::tests::experiment()).unwrap();
        append_track(&run, &[row(0, "sgd", 1.5)]).unwrap();
        append_track(&run, &[row(2, "sgd", 9.0), row(2, "swa", 7.0)]).unwrap();
        append_track(&run, &[row(4, "sgd", 10.0)]).unwrap();
        let (rows, bad) = read_track(&run);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[2], row(2, "swa", 7.0));
        assert_eq!(
            truncate_track(&run, 20).unwrap(),
            1,
            "epoch 4 (step 40) goes"
        );
        let (rows, _) = read_track(&run);
        assert_eq!(rows.iter().map(|r| r.epoch).max(), Some(2));
        assert!(
            std::fs::read_to_string(track_path(&run))
                .unwrap()
                .ends_with("\n")
        );
    }
}
