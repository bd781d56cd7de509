//! What the measurements of `valleys bench` run on: the quick experiment and its trained
//! weights, synthetic CIFAR-shaped data, training in a worker as `valleys run` does, and
//! small statistics.

use super::*;

pub(super) fn quick(overrides: &[String]) -> anyhow::Result<Experiment> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quick.yaml");
    let path = if path.is_file() {
        path
    } else {
        "experiments/quick.yaml".into()
    };
    Ok(Experiment::load(&path, overrides)?)
}

/// A CIFAR-10 directory of random records, for timing CIFAR-shaped work without CIFAR.
pub(super) fn synthetic_cifar(dir: &Path, train: usize, test: usize) -> anyhow::Result<()> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut records = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|_| {
                let mut r = vec![rng.gen_range(0..10u8)];
                r.extend((0..3072).map(|_| rng.r#gen::<u8>()));
                r
            })
            .collect()
    };
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("data_batch_1.bin"), records(train))?;
    std::fs::write(dir.join("test_batch.bin"), records(test))?;
    Ok(())
}

pub(super) fn experiment_for(
    model: &str,
    tmp: &Path,
    steps_per_epoch: u32,
    epochs: u32,
    batch: u32,
) -> anyhow::Result<Experiment> {
    let mut set = vec![
        format!("train.epochs={epochs}"),
        format!("train.batch_size={batch}"),
        format!("data.train_subset={}", steps_per_epoch * batch),
        "swa.enabled=false".into(),
        format!("eval.every_epochs={}", epochs),
        "eval.train_subset=256".into(),
        format!("checkpoint.every_epochs={}", epochs),
        "probe={}".into(),
    ];
    if let Some(depth) = model
        .strip_prefix("preresnet")
        .and_then(|d| d.parse::<u32>().ok())
    {
        let dir = tmp.join("cifar");
        synthetic_cifar(&dir, 10240, 1024)?;
        set.extend([
            format!("name=bench-{model}"),
            "data={dataset: cifar10}".into(),
            format!("data.dir={}", dir.display()),
            format!("data.train_subset={}", steps_per_epoch * batch),
            "data.augment={crop_padding: 0, flip: true}".into(),
            format!("model={{arch: preresnet, depth: {depth}}}"),
        ]);
    } else if model != "quick" {
        anyhow::bail!(
            "--model {model}: expected quick or preresnetN (e.g. preresnet20, preresnet164)"
        );
    }
    quick(&set)
}

/// Runs `exp` in a worker; returns the samples/s of every epoch's last progress report and, if
/// `draw` is set, redraws a dashboard at 10 fps on this thread meanwhile.
pub(super) fn train_in_worker(
    exp: Experiment,
    device: &DeviceChoice,
    tmp: &Path,
    mut frames: Option<(&mut Vec<f64>, u32)>,
    mut on_tick: impl FnMut(&App),
) -> anyhow::Result<Vec<f64>> {
    let data = WorkerData::Raw(valleys::data::read(&exp.data, exp.seed)?);
    let root = tmp.join(format!(
        "run-{}",
        std::process::id() as u64 * 1000 + rand_suffix()
    ));
    let run_dir = RunDir::create(&root, &exp)?;
    let mut worker = Worker::spawn(WorkerSpec {
        experiment: exp,
        device: device.clone(),
        data,
        run_dir,
        start: valleys::worker::Start::New,
        stop: Arc::new(AtomicBool::new(false)),
        argv: vec![],
    })?;
    let mut app = App::new(
        Theme {
            color: true,
            ascii: false,
        },
        true,
    );
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48))?;
    let mut rates: Vec<(u32, f64)> = Vec::new();
    let mut last_draw = Instant::now();
    loop {
        let event = match worker.events.try_recv() {
            Ok(e) => e,
            Err(_) => {
                if let Some((frames, fps)) = frames.as_mut()
                    && last_draw.elapsed().as_secs_f64() * f64::from(*fps) >= 1.0
                {
                    last_draw = Instant::now();
                    terminal.draw(|f| valleys::ui::views::render(&app, f))?;
                    frames.push(last_draw.elapsed().as_secs_f64());
                }
                on_tick(&app);
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        if let Event::Progress(p) = &event {
            match rates.last_mut() {
                Some((epoch, rate)) if *epoch == p.epoch => *rate = p.samples_per_s,
                _ => rates.push((p.epoch, p.samples_per_s)),
            }
        }
        if let Event::Finished(outcome) = &event {
            if *outcome != Outcome::Completed {
                anyhow::bail!("the bench run ended: {outcome:?}");
            }
            break;
        }
        app.handle_event(event);
    }
    worker.finish();
    // The first epoch warms up.
    Ok(rates.into_iter().skip(1).map(|(_, r)| r).collect())
}

/// The quick experiment's data and three randomly initialised copies of its model (SGD, SWA
/// and the scratch copy points are measured in): what probes and planes are timed on.
pub(super) struct QuickWeights {
    exp: Experiment,
    data: Dataset,
    sgd: Model,
    swa: Model,
    scratch: Model,
}

impl QuickWeights {
    /// The data with the quick run's evaluation subset of the training set, which a probe or
    /// plane measures its training loss on unless told another.
    pub(super) fn load(device: &DeviceChoice) -> anyhow::Result<Self> {
        let exp = quick(&[])?;
        let data = Dataset::load(&exp.data, exp.eval.train_subset, exp.seed, device.device)?;
        let build = || Model::build(&exp.model, &data.input_shape, data.classes, device.device);
        let (sgd, swa, scratch) = (build()?, build()?, build()?);
        Ok(Self {
            exp,
            data,
            sgd,
            swa,
            scratch,
        })
    }

    pub(super) fn context(&self, device: &DeviceChoice) -> ProbeContext<'_> {
        ProbeContext {
            data: &self.data,
            sgd: &self.sgd,
            swa: Some(&self.swa),
            scratch: &self.scratch,
            seed: 1,
            eval_batch: self.exp.eval.batch_for(device.device.is_cuda()),
            bn_pass: valleys::train::swa::bn_pass(&self.exp, 0),
            epoch: 0,
            step: 0,
            swa_n: 1,
            source: "bench".into(),
        }
    }
}

pub(super) fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub(super) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

pub(super) struct Quiet;

impl Observer for Quiet {
    fn started(&mut self, _: &str, _: &ProbeSpec, _: &[f64], _: f64) {}
    fn point(&mut self, _: &str, _: usize, _: &ProbePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

impl PlaneObserver for Quiet {
    fn started(&mut self, _: &PlaneHeader) {}
    fn point(&mut self, _: usize, _: usize, _: usize, _: &PlanePoint) {}
    fn cancelled(&mut self) -> bool {
        false
    }
}

pub(super) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
