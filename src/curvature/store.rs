//! Curvature results in the run directory: curvature/<id>.json (every setting, number, interval
//! and SLQ quadrature) and curvature/<id>.csv (one row per number), written atomically.

use super::CurvatureResult;
use crate::config::curvature::CurvatureCentres;
use crate::rundir::{RunDir, RunDirError};
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
