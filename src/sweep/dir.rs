//! The sweep directory: what a sweep writes and reads back (its file as resolved, the
//! variants, how it was launched, each variant's run).

use super::*;

/// How a sweep was launched, in `jobs.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// "local" or "slurm".
    pub executor: String,
    /// The Slurm job id of the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The local executor's process (it stops its tasks on SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Who that process is, so that `--cancel` signals it and nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<crate::process::ProcessIdentity>,
    pub submitted: String,
    /// Variant index → id, experiment file and run directory (relative to the sweep).
    pub variants: Vec<JobEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEntry {
    pub index: usize,
    pub id: String,
    pub experiment: String,
    pub run: String,
    /// The Slurm array task id (the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// A sweep directory.
#[derive(Debug, Clone)]
pub struct SweepDir {
    pub root: PathBuf,
}

impl SweepDir {
    /// The default place of a new sweep: sweeps/<name>-<date>-<time>.
    pub fn default_path(name: &str) -> PathBuf {
        let now = jiff::Zoned::now();
        PathBuf::from("sweeps").join(format!("{name}-{}", now.strftime("%Y%m%d-%H%M%S")))
    }

    /// Whether `path` is a sweep directory (it has sweep.yaml and variants.json).
    pub fn is_sweep(path: &Path) -> bool {
        path.join("sweep.yaml").is_file() && path.join("variants.json").is_file()
    }

    pub fn open(root: &Path) -> Result<Self, SweepError> {
        if !Self::is_sweep(root) {
            return Err(SweepError::Dir(format!(
                "{}: not a sweep directory (no sweep.yaml and variants.json); `valleys sweep SWEEP.yaml` creates one",
                root.display()
            )));
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// Creates the directory for `file` with every variant's experiment file, after each
    /// one was checked (by `check`, which may read data and lay out the model). Nothing is
    /// created when a variant fails.
    pub fn create(
        root: &Path,
        file: &SweepFile,
        sweep_text: &str,
        check: &dyn Fn(&Variant, &Experiment) -> Result<(), String>,
    ) -> Result<Self, SweepError> {
        let variants = file.variants();
        let mut experiments = Vec::new();
        for v in &variants {
            let exp = file.experiment_of(v)?;
            check(v, &exp).map_err(|message| SweepError::Variant {
                id: v.id.clone(),
                message,
            })?;
            experiments.push(exp);
        }
        if root.exists() {
            return Err(SweepError::Dir(format!(
                "{}: already exists; a sweep directory is never reused (continue it with `valleys sweep {}`)",
                root.display(),
                root.display()
            )));
        }
        let io = |what: &str, e: &dyn std::fmt::Display| {
            SweepError::Dir(format!("{}: cannot {what} ({e})", root.display()))
        };
        for sub in ["variants", "runs", "logs"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| io("create the directory", &e))?;
        }
        for (v, exp) in variants.iter().zip(&experiments) {
            write_atomic(
                &root.join("variants").join(format!("{}.yaml", v.id)),
                exp.to_yaml().as_bytes(),
            )
            .map_err(|e| io("write a variant's experiment", &e))?;
        }
        let resolved = format!(
            "# as given, with the base experiment resolved to {}\n{sweep_text}",
            file.experiment.display()
        );
        write_atomic(&root.join("sweep.yaml"), resolved.as_bytes())
            .map_err(|e| io("write sweep.yaml", &e))?;
        let json = serde_json::to_string_pretty(&variants).expect("variants serialise");
        write_atomic(&root.join("variants.json"), json.as_bytes())
            .map_err(|e| io("write variants.json", &e))?;
        let settings = serde_json::json!({
            "probe": file.probe,
            "plane": file.plane,
            "plane_tiles": file.plane_tiles,
            "slurm": file.slurm,
            "curvature": file.curvature,
            "connect": file.connect,
            "name": file.name,
        });
        write_atomic(
            &root.join("settings.json"),
            serde_json::to_string_pretty(&settings)
                .expect("settings serialise")
                .as_bytes(),
        )
        .map_err(|e| io("write settings.json", &e))?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    pub fn variants(&self) -> Result<Vec<Variant>, SweepError> {
        let path = self.root.join("variants.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SweepError::Dir(format!("{}: cannot read it ({e})", path.display())))?;
        serde_json::from_str(&text).map_err(|e| SweepError::Dir(format!("{}: {e}", path.display())))
    }

    /// settings.json: what the sweep does after training, and its name.
    fn settings(&self) -> serde_json::Value {
        std::fs::read_to_string(self.root.join("settings.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The probe to run after training, if the sweep asks for one.
    pub fn probe(&self) -> Option<SweepProbe> {
        setting(&self.settings(), "probe")
    }

    /// The plane to measure after training, if the sweep asks for one.
    pub fn plane(&self) -> Option<crate::probe::plane::PlaneSpec> {
        setting(&self.settings(), "plane")
    }

    /// The tiles the plane is measured as, if the sweep splits it.
    pub fn plane_tiles(&self) -> Option<usize> {
        setting(&self.settings(), "plane_tiles")
    }

    /// The sweep's `slurm:` section (the defaults for a sweep from before it was kept).
    pub fn slurm(&self) -> super::SlurmConfig {
        setting(&self.settings(), "slurm").unwrap_or_default()
    }

    /// The curvature job to run after training, if the sweep asks for one.
    pub fn curvature(&self) -> Option<crate::config::curvature::CurvatureSpec> {
        setting(&self.settings(), "curvature")
    }

    /// The pairs of runs to connect once every variant has trained, if the sweep asks.
    pub fn connect(&self) -> Option<super::pairs::SweepConnect> {
        setting(&self.settings(), "connect")
    }

    /// What the sweep measures of each variant after training.
    pub fn after_training(&self) -> state::AfterTraining {
        let settings = self.settings();
        state::AfterTraining {
            probe: setting::<SweepProbe>(&settings, "probe").is_some(),
            plane: setting::<crate::probe::plane::PlaneSpec>(&settings, "plane").is_some(),
            curvature: setting::<crate::config::curvature::CurvatureSpec>(&settings, "curvature")
                .is_some(),
        }
    }

    /// The sweep's name.
    pub fn name(&self) -> String {
        self.settings()["name"]
            .as_str()
            .map_or_else(|| "sweep".into(), str::to_owned)
    }

    pub fn experiment_path(&self, v: &Variant) -> PathBuf {
        self.root.join("variants").join(format!("{}.yaml", v.id))
    }

    pub fn run_path(&self, v: &Variant) -> PathBuf {
        self.root.join("runs").join(&v.id)
    }

    pub fn log_path(&self, v: &Variant) -> PathBuf {
        self.root.join("logs").join(format!("{:03}.out", v.index))
    }

    pub fn jobs(&self) -> Option<Jobs> {
        let text = std::fs::read_to_string(self.root.join("jobs.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write_jobs(&self, jobs: &Jobs) -> Result<(), crate::rundir::RunDirError> {
        let json = serde_json::to_string_pretty(jobs).expect("jobs serialise");
        write_atomic(&self.root.join("jobs.json"), json.as_bytes())
    }

    /// `jobs.json` for `executor`, every variant listed.
    pub fn jobs_for(&self, executor: &str) -> Result<Jobs, SweepError> {
        let rel = |p: PathBuf| {
            p.strip_prefix(&self.root)
                .map_or(p.clone(), Path::to_path_buf)
                .display()
                .to_string()
        };
        Ok(Jobs {
            executor: executor.to_owned(),
            job_id: None,
            pid: None,
            process: None,
            submitted: jiff::Zoned::now().to_string(),
            variants: self
                .variants()?
                .iter()
                .map(|v| JobEntry {
                    index: v.index,
                    id: v.id.clone(),
                    experiment: rel(self.experiment_path(v)),
                    run: rel(self.run_path(v)),
                    task: (executor == "slurm").then(|| v.index.to_string()),
                })
                .collect(),
        })
    }

    /// Where a variant stands, from its run directory alone.
    pub fn state(&self, v: &Variant) -> VariantState {
        run_state(&self.run_path(v), self.after_training())
    }
}

/// Setting `key` of settings.json, if it is there and reads as a `T`.
fn setting<T: serde::de::DeserializeOwned>(settings: &serde_json::Value, key: &str) -> Option<T> {
    serde_json::from_value(settings.get(key)?.clone()).ok()
}
