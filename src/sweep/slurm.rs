//! The Slurm side of a sweep: one `sbatch --array` job whose tasks each train one variant
//! (resuming it when its run directory already has a checkpoint, so that a requeued or
//! preempted task continues exactly), and the few commands around it (submit, cancel, queue).

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// The sweep file's `slurm:` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Generic resources per task, e.g. "gpu:1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<u32>,
    /// Memory per task, e.g. "16G".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Time limit per task, e.g. "12:00:00".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Tasks running at once (the array's `%J`; default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// Further `#SBATCH` options, e.g. "--qos=long" or "--account=lab".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

/// Seconds before the time limit at which Slurm sends SIGTERM, so that the run writes a
/// checkpoint of where it is (a run stops within one batch).
pub const SIGNAL_LEAD_S: u32 = 120;

/// What Slurm (or a `slurm:` section Slurm would refuse) said, as one line naming the
/// command or the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SlurmError(pub String);

impl From<String> for SlurmError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl SlurmConfig {
    /// Checks the values that would make a broken script; the error starts with the field.
    pub fn validate(&self) -> Result<(), SlurmError> {
        let one_line = |name: &str, v: &Option<String>| match v {
            Some(s) if s.trim().is_empty() || s.contains(['\n', '\r']) => Err(SlurmError(format!(
                "{name}: expected one non-empty word, got {s:?}"
            ))),
            _ => Ok(()),
        };
        one_line("partition", &self.partition)?;
        one_line("gres", &self.gres)?;
        one_line("mem", &self.mem)?;
        one_line("time", &self.time)?;
        if self.cpus_per_task == Some(0) {
            return Err(SlurmError("cpus_per_task: 0: expected at least 1".into()));
        }
        if self.max_parallel == Some(0) {
            return Err(SlurmError("max_parallel: 0: expected at least 1".into()));
        }
        for e in &self.extra {
            if !e.starts_with('-') || e.contains(['\n', '\r']) {
                return Err(SlurmError(format!(
                    "extra: {e:?}: expected an sbatch option on one line, e.g. --qos=long"
                )));
            }
        }
        Ok(())
    }
}

/// A job array: its name, what it is (comment lines), its tasks, where their logs go and
/// the valleys arguments each task runs (`$SLURM_ARRAY_TASK_ID` appended).
pub struct ArrayJob<'a> {
    pub name: String,
    pub about: Vec<String>,
    pub tasks: usize,
    pub log_dir: &'a Path,
    pub valleys: &'a Path,
    pub args: Vec<String>,
}

/// The job script of `job`: an array whose tasks run `valleys ARGS $SLURM_ARRAY_TASK_ID`,
/// requeued when preempted, warned with SIGTERM before the time limit so that they keep
/// where they are. Readable and submittable by hand.
pub fn array_script(config: &SlurmConfig, job: &ArrayJob) -> String {
    let mut lines = vec!["#!/bin/bash".to_owned()];
    lines.extend(job.about.iter().map(|l| format!("# {l}")));
    lines.push(format!("#SBATCH --job-name={}", job.name));
    let mut array = format!("#SBATCH --array=0-{}", job.tasks.saturating_sub(1));
    if let Some(j) = config.max_parallel {
        array += &format!("%{j}");
    }
    lines.push(array);
    lines.push(format!(
        "#SBATCH --output={}/%3a.out",
        job.log_dir.display()
    ));
    lines.push("#SBATCH --open-mode=append".into());
    // A preempted or requeued task runs again and resumes from where it kept its work.
    lines.push("#SBATCH --requeue".into());
    lines.push(format!("#SBATCH --signal=B:TERM@{SIGNAL_LEAD_S}"));
    for (flag, value) in [
        ("partition", &config.partition),
        ("gres", &config.gres),
        ("mem", &config.mem),
        ("time", &config.time),
    ] {
        if let Some(v) = value {
            lines.push(format!("#SBATCH --{flag}={v}"));
        }
    }
    if let Some(c) = config.cpus_per_task {
        lines.push(format!("#SBATCH --cpus-per-task={c}"));
    }
    for e in &config.extra {
        lines.push(format!("#SBATCH {e}"));
    }
    lines.push(String::new());
    let args: Vec<String> = std::iter::once(job.valleys.display().to_string())
        .chain(job.args.iter().cloned())
        .map(|a| shell_quote(&a))
        .collect();
    // exec: SIGTERM from Slurm (B: the batch shell) reaches valleys itself.
    lines.push(format!("exec {} \"$SLURM_ARRAY_TASK_ID\"", args.join(" ")));
    lines.join("\n") + "\n"
}

/// The job script of a sweep: an array over the variants whose tasks each run
/// `valleys sweep SWEEP_DIR --task $SLURM_ARRAY_TASK_ID`.
pub fn script(
    config: &SlurmConfig,
    name: &str,
    sweep_dir: &Path,
    valleys: &Path,
    variants: usize,
) -> String {
    array_script(
        config,
        &ArrayJob {
            name: format!("valleys-{name}"),
            about: vec![
                format!("valleys sweep {name}: {variants} variants, one array task each."),
                "Resubmit with `sbatch job.sbatch` (finished variants are skipped, stopped ones resume).".into(),
            ],
            tasks: variants,
            log_dir: &sweep_dir.join("logs"),
            valleys,
            args: vec![
                "sweep".into(),
                sweep_dir.display().to_string(),
                "--task".into(),
            ],
        },
    )
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Runs a Slurm command; its failure is one line naming the command and what it said.
fn slurm(program: &str, args: &[&str]) -> Result<String, SlurmError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{program} not found: Slurm's client commands must be on PATH for --executor slurm (or use --executor local)")
        } else {
            format!("{program}: {e}")
        }
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Err(SlurmError(format!("{program} {}: {said}", args.join(" "))))
}

/// Slurm's `sbatch` on PATH, checked before anything is written for a Slurm job.
pub fn check_client() -> Result<(), SlurmError> {
    use std::os::unix::fs::PermissionsExt;
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join("sbatch"))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    if found {
        return Ok(());
    }
    Err(SlurmError(
        "sbatch not found: Slurm's client commands must be on PATH for --executor slurm (or use --executor local)".into(),
    ))
}

/// Submits `script_path`; returns the job id.
pub fn submit(script_path: &Path) -> Result<String, SlurmError> {
    let path = script_path.display().to_string();
    let out = slurm("sbatch", &["--parsable", &path])?;
    // --parsable prints "jobid" or "jobid;cluster".
    let id = out.split(';').next().unwrap_or_default().trim().to_owned();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SlurmError(format!(
            "sbatch {path}: no job id in its answer {out:?}"
        )));
    }
    Ok(id)
}

/// Cancels every task of `job_id`.
pub fn cancel(job_id: &str) -> Result<(), SlurmError> {
    slurm("scancel", &[job_id]).map(|_| ())
}

/// The array tasks of `job_id` still queued or running, as (task index, Slurm state), from
/// squeue; empty when squeue knows none (finished) or is not there.
pub fn queue(job_id: &str) -> Vec<(usize, String)> {
    let Ok(out) = slurm("squeue", &["-h", "-r", "-j", job_id, "-o", "%K %T"]) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let task = parts.next()?.parse().ok()?;
            Some((task, parts.next()?.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_an_array_that_requeues_and_checkpoints_before_the_limit() {
        let config = SlurmConfig {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            cpus_per_task: Some(8),
            mem: Some("32G".into()),
            time: Some("12:00:00".into()),
            max_parallel: Some(4),
            extra: vec!["--qos=long".into()],
        };
        let s = script(
            &config,
            "bn",
            Path::new("/s/bn1"),
            Path::new("/opt/valleys"),
            6,
        );
        for line in [
            "#SBATCH --array=0-5%4",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:TERM@120",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --time=12:00:00",
            "#SBATCH --qos=long",
            "#SBATCH --output=/s/bn1/logs/%3a.out",
            "exec /opt/valleys sweep /s/bn1 --task \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
        assert!(s.starts_with("#!/bin/bash\n"));
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad = SlurmConfig {
            extra: vec!["qos=long".into()],
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().0.starts_with("extra: "));
        let bad = SlurmConfig {
            time: Some("1:00\n#SBATCH --x".into()),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().0.starts_with("time: "));
    }

    #[test]
    fn a_missing_sbatch_is_one_line() {
        let e = slurm("valleys-no-such-sbatch", &[]).unwrap_err().0;
        assert!(e.contains("not found") && !e.contains('\n'), "{e}");
    }
}
