//! trajectory/ in the run directory: the index and the weights file, appended, read back,
//! and cut back to a checkpoint when a run resumes.

use super::{TrajectoryIndex, TrajectoryPoint};
use crate::rundir::{RunDir, RunDirError, io_err, write_atomic};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// Why a stored trajectory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    #[error(
        "{0}: no trajectory (the run kept none: checkpoint.trajectory_every_epochs is 0, or it was written before valleys kept one)"
    )]
    Missing(PathBuf),
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error(transparent)]
    Io(#[from] RunDirError),
}

/// RUN_DIR/trajectory.
pub fn dir(run: &RunDir) -> PathBuf {
    run.root().join("trajectory")
}

fn index_path(run: &RunDir) -> PathBuf {
    dir(run).join("index.json")
}

fn weights_path(run: &RunDir) -> PathBuf {
    dir(run).join("weights.f32")
}

/// The stored index, or None when the run has no trajectory.
pub fn read_index(run: &RunDir) -> Result<Option<TrajectoryIndex>, TrajectoryError> {
    let path = index_path(run);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RunDirError::Io {
                path,
                action: "cannot read",
                source,
            }
            .into());
        }
    };
    let bad = |message: String| TrajectoryError::Bad {
        path: path.clone(),
        message,
    };
    let index: TrajectoryIndex =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a trajectory index: {e}")))?;
    crate::stored::Stored::check(&index).map_err(|e| bad(e.0))?;
    Ok(Some(index))
}

/// Appends the iterate `weights` as `point`, after those the index holds.
pub fn append(
    run: &RunDir,
    point: TrajectoryPoint,
    weights: &[f32],
) -> Result<(), TrajectoryError> {
    let folder = dir(run);
    std::fs::create_dir_all(&folder).map_err(io_err(&folder, "cannot create the directory"))?;
    let mut index = read_index(run)?.unwrap_or(TrajectoryIndex {
        dimension: weights.len(),
        points: Vec::new(),
    });
    let path = weights_path(run);
    if index.dimension != weights.len() {
        return Err(TrajectoryError::Bad {
            path,
            message: format!(
                "holds iterates of {} parameters; this model has {}",
                index.dimension,
                weights.len()
            ),
        });
    }
    let record = (weights.len() * 4) as u64;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path, "cannot open"))?;
    let at = index.points.len() as u64 * record;
    // Whatever lies beyond the index (a killed append's record) is not ours to keep.
    file.set_len(at).map_err(io_err(&path, "cannot cut"))?;
    file.seek(SeekFrom::Start(at))
        .map_err(io_err(&path, "cannot seek"))?;
    let bytes: Vec<u8> = weights.iter().flat_map(|w| w.to_le_bytes()).collect();
    file.write_all(&bytes)
        .map_err(io_err(&path, "cannot write"))?;
    file.sync_all().map_err(io_err(&path, "cannot sync"))?;
    index.points.push(point);
    write_index(run, &index)
}

fn write_index(run: &RunDir, index: &TrajectoryIndex) -> Result<(), TrajectoryError> {
    let text = serde_json::to_string_pretty(index).expect("an index serialises");
    write_atomic(&index_path(run), text.as_bytes())?;
    Ok(())
}

/// The stored iterates, in the order of the index, each `dimension` floats.
pub fn read_weights(
    run: &RunDir,
    index: &TrajectoryIndex,
) -> Result<Vec<Vec<f32>>, TrajectoryError> {
    let path = weights_path(run);
    let mut file = std::fs::File::open(&path).map_err(io_err(&path, "cannot open"))?;
    let record = index.dimension * 4;
    let needed = (index.points.len() * record) as u64;
    let length = file
        .metadata()
        .map_err(io_err(&path, "cannot read the size of"))?
        .len();
    if length < needed {
        return Err(TrajectoryError::Bad {
            path,
            message: format!(
                "{length} bytes, but the index lists {} iterates of {} parameters ({needed} bytes)",
                index.points.len(),
                index.dimension
            ),
        });
    }
    let mut bytes = vec![0u8; needed as usize];
    file.read_exact(&mut bytes)
        .map_err(io_err(&path, "cannot read"))?;
    Ok(bytes
        .chunks_exact(record)
        .map(|r| {
            r.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect())
}

/// The iterate at `position` in the index alone (a seek, not the whole file).
pub fn read_iterate(
    run: &RunDir,
    index: &TrajectoryIndex,
    position: usize,
) -> Result<Vec<f32>, TrajectoryError> {
    use std::io::{Seek, SeekFrom};
    let path = weights_path(run);
    let mut file = std::fs::File::open(&path).map_err(io_err(&path, "cannot open"))?;
    let record = index.dimension * 4;
    let mut bytes = vec![0u8; record];
    file.seek(SeekFrom::Start((position * record) as u64))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(io_err(&path, "cannot read an iterate of"))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Drops the iterates after optimiser step `step` (a run resumed from that checkpoint stores
/// them again); returns how many went.
pub fn truncate(run: &RunDir, step: u64) -> Result<usize, TrajectoryError> {
    let Some(mut index) = read_index(run)? else {
        return Ok(0);
    };
    let before = index.points.len();
    index.points.retain(|p| p.step <= step);
    let dropped = before - index.points.len();
    if dropped > 0 {
        write_index(run, &index)?;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> (tempfile::TempDir, RunDir) {
        let tmp = tempfile::tempdir().unwrap();
        let run =
            RunDir::create(&tmp.path().join("r"), &crate::rundir::tests::experiment()).unwrap();
        (tmp, run)
    }

    fn point(epoch: u32) -> TrajectoryPoint {
        TrajectoryPoint {
            epoch,
            step: u64::from(epoch) * 10,
            swa_snapshot: epoch >= 2,
        }
    }

    #[test]
    fn iterates_append_read_back_and_resume_cuts_the_later_ones() {
        let (_tmp, run) = run();
        assert!(read_index(&run).unwrap().is_none());
        for epoch in 0..4u32 {
            let w: Vec<f32> = (0..5).map(|i| (epoch * 10 + i) as f32 + 0.5).collect();
            append(&run, point(epoch), &w).unwrap();
        }
        let index = read_index(&run).unwrap().unwrap();
        assert_eq!((index.dimension, index.points.len()), (5, 4));
        let weights = read_weights(&run, &index).unwrap();
        assert_eq!(weights[2], vec![20.5, 21.5, 22.5, 23.5, 24.5]);
        assert_eq!(
            truncate(&run, 15).unwrap(),
            2,
            "epochs 2 and 3 (steps 20, 30) go"
        );
        // Resumed: epoch 2 again, written over the old record.
        append(&run, point(2), &[9.0; 5]).unwrap();
        let index = read_index(&run).unwrap().unwrap();
        assert_eq!(index.points, vec![point(0), point(1), point(2)]);
        assert_eq!(read_weights(&run, &index).unwrap()[2], vec![9.0; 5]);
        assert_eq!(
            std::fs::metadata(weights_path(&run)).unwrap().len(),
            3 * 5 * 4,
            "nothing of the dropped records is left"
        );
        // Another model's iterate is refused, naming both sizes.
        let e = append(&run, point(3), &[1.0; 4]).unwrap_err().to_string();
        assert!(
            e.contains("holds iterates of 5 parameters; this model has 4"),
            "{e}"
        );
    }

    /// A kill between the record and the index leaves the index's iterates; a weights file
    /// cut short is said, not read past.
    #[test]
    fn a_torn_append_or_a_short_file_loses_nothing_the_index_holds() {
        let (_tmp, run) = run();
        append(&run, point(0), &[1.0; 3]).unwrap();
        // A record written, its index never: the next append goes over it.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(weights_path(&run))
            .unwrap();
        f.write_all(&[7u8; 12]).unwrap();
        drop(f);
        append(&run, point(1), &[2.0; 3]).unwrap();
        let index = read_index(&run).unwrap().unwrap();
        assert_eq!(
            read_weights(&run, &index).unwrap(),
            vec![vec![1.0; 3], vec![2.0; 3]]
        );
        std::fs::write(weights_path(&run), [0u8; 16]).unwrap();
        let e = read_weights(&run, &index).unwrap_err().to_string();
        assert!(
            e.contains("16 bytes, but the index lists 2 iterates"),
            "{e}"
        );
        std::fs::write(index_path(&run), "{\"dimension\": 0, \"points\": []}").unwrap();
        let e = read_index(&run).unwrap_err().to_string();
        assert!(e.contains("dimension is 0"), "{e}");
    }
}
