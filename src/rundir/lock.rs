//! One writer per run directory: an advisory lock held by training, resuming and ablating,
//! and the clean-up of temporary files that killed writers left behind.

use super::{RunDir, RunDirError, io_err};
use std::fs::{File, OpenOptions};
use std::io::Write;

/// Held while a process writes a run directory; dropping it releases the directory.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunDir {
    /// Takes the run directory for writing: training, resuming and ablating hold this lock
    /// for as long as they run, so that two processes never write one run. It is an
    /// advisory file lock (`flock` on Linux), released by the kernel when the process ends however it ends.
    pub fn lock(&self) -> Result<RunLock, RunDirError> {
        let path = self.root.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path, "cannot open the lock file"))?;
        if file.try_lock().is_err() {
            let holder = std::fs::read_to_string(&path)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "a process that has not said which".into());
            return Err(RunDirError::Busy {
                path: self.root.clone(),
                holder,
            });
        }
        let argv: Vec<String> = std::env::args().collect();
        let note = format!("pid {}: {}", std::process::id(), argv.join(" "));
        let _ = file.set_len(0);
        let _ = file.write_all(note.as_bytes());
        Ok(RunLock { _file: file })
    }

    /// True while another process holds the run's lock (it is training, resuming or
    /// ablating it). Takes nothing: a shared probe of the lock, released at once.
    pub fn is_busy(&self) -> bool {
        let Ok(file) = File::open(self.root.join(".lock")) else {
            return false;
        };
        // Dropping the file releases the shared lock.
        file.try_lock_shared().is_err()
    }

    /// Removes temporary files left by processes killed while writing (whole files are
    /// renamed into place, so the real files are intact). A temporary file names its
    /// writer's pid; those of living processes are left alone.
    pub fn remove_stale_temporaries(&self) -> usize {
        let mut removed = 0;
        let dirs = ["", "checkpoints", "probes", "ablations", "report"].map(|d| self.root.join(d));
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if temporary_owner(&name).is_some_and(|pid| !crate::platform::process_exists(pid))
                    && std::fs::remove_file(entry.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// The pid in a temporary file name written by [`write_atomic`]: `.NAME.PID.tmp`.
fn temporary_owner(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    stem.rsplit_once('.')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::tests::experiment;

    #[test]
    fn temporaries_of_dead_writers_are_removed_and_a_second_writer_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::create(&tmp.path().join("r"), &experiment()).unwrap();
        // pid 0x7ffffff0 does not exist; our own temporary file is being written.
        let dead = dir
            .checkpoints_dir()
            .join(".latest.safetensors.2147483632.tmp");
        let ours = dir
            .root()
            .join(format!(".run.json.{}.tmp", std::process::id()));
        std::fs::write(&dead, "x").unwrap();
        std::fs::write(&ours, "x").unwrap();
        assert_eq!(dir.remove_stale_temporaries(), 1);
        assert!(!dead.exists() && ours.exists());
        let lock = dir.lock().unwrap();
        // flock locks belong to the open file: a second open in this process conflicts too.
        let err = dir.lock().unwrap_err().to_string();
        assert!(err.contains("another valleys process is writing"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        assert!(dir.lock().is_ok(), "released when dropped");
    }
}
