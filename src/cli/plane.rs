//! `valleys plane RUN_DIR`: the loss over a plane through a saved checkpoint (SWA and SGD and a
//! random direction, or two random directions), filled coarse to fine; prints the heatmap and
//! writes RUN_DIR/planes/<id>.json and .csv.

use super::progress::Progress;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use valleys::config::probe::samples;
use valleys::error::{BadInput, BadInputExt};
use valleys::plot::heatmap::{self, Grid, Mark, Scale, Shading};
use valleys::probe::offline::SavedRun;
use valleys::probe::plane::{
    self, PlaneHeader, PlaneKind, PlaneObserver, PlanePoint, PlaneResult, PlaneSettings, PlaneSpec,
    PlaneValue,
};
use valleys::probe::runner::ProbeError;
use valleys::probe::{BiasBn, BnMode, CentreKind, DirectionKind, Normalisation, ParamGroup};
use valleys::runtime::{self, DeviceRequest};

#[derive(Args)]
pub struct PlaneArgs {
    /// The run directory, e.g. runs/quick-20261127-101500; or a tiled plane's directory
    /// (RUN_DIR/planes/<id>.tiles) to continue, follow (--status) or cancel.
    pub run_dir: PathBuf,
    /// Checkpoint: latest, final, epoch-NNNN, or a path.
    #[arg(long, default_value = "latest")]
    pub checkpoint: String,
    /// swa-sgd: through SWA (0, 0) and SGD (1, 0) and a random direction (needs an average);
    /// random: two random directions through --centre; hessian: two Hessian eigenvectors
    /// (the top two unless --eigenvectors) through --centre; pca: the training trajectory's two
    /// leading principal directions through --centre (needs a run that kept its trajectory).
    #[arg(long, value_enum)]
    pub plane: Option<PlaneKind>,
    /// The centre of a random or hessian plane.
    #[arg(long, value_enum)]
    pub centre: Option<CentreKind>,
    /// How the random direction(s) are drawn (default gaussian); only the kinds a plane draws
    /// (a probe's interp, hessian and sign-match are lines, not planes).
    #[arg(long, value_parser = plane_direction())]
    pub direction: Option<DirectionKind>,
    /// How a Gaussian direction is scaled (default filter, as Li et al.).
    #[arg(long, value_enum)]
    pub norm: Option<Normalisation>,
    /// What layer/filter normalisation does with biases and BN.
    #[arg(long = "bias-bn", value_enum)]
    pub bias_bn: Option<BiasBn>,
    /// Parameters the plane moves.
    #[arg(long, value_enum)]
    pub params: Option<ParamGroup>,
    /// Grid points, NxM (default 21x21).
    #[arg(long, value_parser = plane::parse_points)]
    pub points: Option<(usize, usize)>,
    /// x range FROM:TO (default -0.5:1.5 for swa-sgd, -1:1 for random, -0.5:0.5 for hessian).
    #[arg(long, value_parser = plane::parse_range, allow_hyphen_values = true)]
    pub x: Option<(f64, f64)>,
    /// y range FROM:TO (default -1:1; -0.5:0.5 for hessian).
    #[arg(long, value_parser = plane::parse_range, allow_hyphen_values = true)]
    pub y: Option<(f64, f64)>,
    /// BN statistics at each point.
    #[arg(long, value_enum)]
    pub bn: Option<BnMode>,
    /// Training samples the training loss is measured on, or `all` (default: the run's own
    /// evaluation subset).
    #[arg(long = "train-subset", value_parser = samples::parse)]
    pub train_subset: Option<usize>,
    /// Test samples the test loss is measured on, or `all` (the default).
    #[arg(long = "test-subset", value_parser = samples::parse)]
    pub test_subset: Option<usize>,
    /// Training samples of each BN recomputation (the first of the run's own pass), or `all`
    /// for the whole of it [default: 2000].
    #[arg(long = "bn-subset", value_parser = samples::parse)]
    pub bn_subset: Option<usize>,
    /// Seed of the random direction(s) (default: the experiment's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Points of a row measured at once, side by side in one forward pass (default: 1 on a
    /// CPU, 16 on a GPU).
    #[arg(long = "point-batch")]
    pub point_batch: Option<usize>,
    /// With --plane hessian: the eigenvectors d₁ and d₂ are, K1,K2 (1: the top one; default
    /// 1,2).
    #[arg(long, value_parser = plane::parse_eigenvectors)]
    pub eigenvectors: Option<(usize, usize)>,
    /// With --plane hessian: the first training samples the Hessian is taken on (default 512).
    #[arg(long = "hessian-batch")]
    pub hessian_batch: Option<usize>,
    /// Colour the heatmap by the test loss (default), the training loss, or their gap (test
    /// minus training loss).
    #[arg(long, value_enum, default_value = "test")]
    pub show: PlaneValue,
    /// A log colour scale.
    #[arg(long)]
    pub log: bool,
    /// A shaded ASCII heatmap instead of colour (also when stdout is not a terminal).
    #[arg(long)]
    pub ascii: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[command(flatten)]
    pub tiling: tiles::TileArgs,
}

impl PlaneArgs {
    /// The settings these flags give, checked as a sweep's `plane:` section is.
    pub fn settings(&self) -> PlaneSettings {
        PlaneSettings {
            plane: self.plane,
            centre: self.centre,
            direction: self.direction,
            norm: self.norm,
            bias_bn: self.bias_bn,
            params: self.params,
            points: self.points,
            x: self.x,
            y: self.y,
            bn: self.bn,
            train_subset: self.train_subset,
            test_subset: self.test_subset,
            bn_subset: self.bn_subset,
            seed: self.seed,
            point_batch: self.point_batch,
            eigenvectors: self.eigenvectors,
            hessian_batch: self.hessian_batch,
        }
    }
}

/// `--direction`: the kinds a plane draws, listed as such in `--help`.
fn plane_direction() -> impl clap::builder::TypedValueParser<Value = DirectionKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["uniform", "gaussian", "sign"])
        .map(|s: String| DirectionKind::from_name(&s).unwrap_or_default())
}

/// Says what the plane will cost, and how far it is (as probes do); cancels on a signal.
struct Console<'a> {
    stop: &'a AtomicBool,
    tty: bool,
    progress: Progress,
}

impl PlaneObserver for Console<'_> {
    fn started(&mut self, header: &PlaneHeader) {
        let (id, total, seconds_per_point) = (&header.id, header.total(), header.seconds_per_point);
        self.progress = Progress::start(id, total);
        eprintln!(
            "plane {id}: {total} points, ~{seconds_per_point:.2} s a point ≈ {}, coarse to fine (every 4th point first)",
            valleys::format::clock(seconds_per_point * total as f64)
        );
    }

    fn point(&mut self, _done: usize, _i: usize, _j: usize, _point: &PlanePoint) {
        self.progress.point_done(self.tty);
    }

    fn cancelled(&mut self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Measures `spec` through a saved run and stores it there, saying on stderr what it will cost
/// and how far it is.
pub(crate) fn measure(
    saved: &SavedRun,
    spec: &PlaneSpec,
    stop: &AtomicBool,
) -> Result<PlaneResult, ProbeError> {
    let mut console = Console {
        stop,
        tty: std::io::stderr().is_terminal(),
        progress: Progress::start("", 0),
    };
    valleys::probe::runner::plane::run(&saved.context(), spec, Some(&saved.run), &mut console)
}

/// Runs the command; returns true if the plane completed.
pub fn run(args: &PlaneArgs, stop: &AtomicBool) -> anyhow::Result<bool> {
    if let Some(completed) = tiles::run(args, stop)? {
        return Ok(completed);
    }
    let spec = args.settings().spec().map_err(BadInput::msg)?;
    let device = DeviceRequest::parse(&args.device)
        .and_then(runtime::choose_device)
        .bad_input()?;
    let saved = SavedRun::load(&args.run_dir, &args.checkpoint, device.device).bad_input()?;
    check_saved(&spec, &saved)?;
    eprintln!(
        "run {} at {} (epoch {}, {} SWA snapshots) on {}",
        saved.run.root().display(),
        saved.checkpoint.display(),
        saved.state.epoch,
        saved.state.swa_n,
        device.name
    );
    match measure(&saved, &spec, stop) {
        Ok(result) => {
            let colour = !args.ascii && std::io::stdout().is_terminal();
            print(&mut std::io::stdout().lock(), &result, args, colour)?;
            println!(
                "wrote {}/{}.json and .csv",
                valleys::probe::store::plane_dir(&saved.run).display(),
                result.id
            );
            Ok(true)
        }
        Err(ProbeError::Cancelled) => {
            eprintln!("plane cancelled; nothing written");
            Ok(false)
        }
        Err(ProbeError::Invalid(message)) => Err(BadInput::msg(message).into()),
        Err(e) => Err(e.into()),
    }
}

/// What the saved run cannot give, said before anything else is.
fn check_saved(spec: &PlaneSpec, saved: &SavedRun) -> anyhow::Result<()> {
    valleys::probe::runner::plane::check(spec, &saved.sgd, Some(&saved.run)).map_err(|e| match e {
        ProbeError::Invalid(message) => BadInput::msg(message).into(),
        ProbeError::Store(e) => BadInput::msg(e.to_string()).into(),
        other => anyhow::Error::from(other),
    })
}

fn print(
    out: &mut impl Write,
    r: &PlaneResult,
    args: &PlaneArgs,
    colour: bool,
) -> std::io::Result<()> {
    let value = |p: &PlanePoint| args.show.of(&p.measured);
    let what = args.show.label();
    writeln!(out, "{}", title(r, what))?;
    for line in heatmap_lines(r, args, colour) {
        writeln!(out, "  {line}")?;
    }
    let letters: Vec<String> = r
        .markers
        .iter()
        .map(|m| format!("{} = {} at ({}, {})", m.letter, m.label, m.x, m.y))
        .collect();
    writeln!(out, "  marks: {}", letters.join(", "))?;
    if let Some(line) = plane::path_line(r) {
        writeln!(out, "  {line}")?;
    }
    if let Some((a, b)) = r.explained_variance {
        writeln!(
            out,
            "  the trajectory's variance along d₁ {:.1}%, along d₂ {:.1}% ({:.1}% in the plane)",
            100.0 * a,
            100.0 * b,
            100.0 * (a + b)
        )?;
    }
    for m in &r.markers {
        writeln!(out, "  {}", at_marker(r, m))?;
    }
    if let Some(lowest) = r.points.iter().min_by(|a, b| value(a).total_cmp(&value(b))) {
        writeln!(
            out,
            "  lowest {what}: {:.4} at ({:.3}, {:.3})",
            value(lowest),
            lowest.x,
            lowest.y
        )?;
    }
    writeln!(
        out,
        "  |d₁| {:.4} · |d₂| {:.4} · cos(d₁, d₂) {:.1e} · |w| {:.2} · samples {} train / {} test{}",
        r.d1_norm,
        r.d2_norm,
        r.cosine,
        r.centre_norm,
        r.train_samples,
        r.test_samples,
        r.bn_samples
            .map_or(String::new(), |n| format!(" / BN pass {n}"))
    )?;
    if let (Some((a, b)), Some(steps)) = (r.eigenvalues, r.hessian_steps) {
        let (k1, k2) = r.spec.eigenvector_pair();
        writeln!(
            out,
            "  Hessian eigenvalues λ{k1} {a:.4} (along d₁) · λ{k2} {b:.4} (along d₂) · {steps} Lanczos steps on {} training samples",
            r.spec
                .hessian_batch
                .unwrap_or(plane::DEFAULT_HESSIAN_BATCH)
                .min(r.train_samples)
        )?;
    }
    writeln!(
        out,
        "  cost: {} for {} points, {:.3} s a point",
        valleys::format::clock(r.cost.seconds),
        r.cost.points,
        r.cost.seconds_per_point
    )
}

/// "plane 001-swa-sgd-swa: test loss over x -0.5..1.5 (d₁ = SGD − SWA) × y -1..1 (d₂ = …) …".
fn title(r: &PlaneResult, what: &str) -> String {
    let (nx, ny) = (r.xs.len(), r.ys.len());
    let spec = &r.spec;
    let (d1, d2) = spec.direction_labels();
    let d1 = match spec.kind {
        PlaneKind::Random => String::new(),
        _ => format!(" = {d1}"),
    };
    format!(
        "plane {}: {what} over x {}..{} (d₁{d1}) × y {}..{} (d₂ = {d2}), {}x{} points, params {}, BN {}",
        r.id,
        r.xs[0],
        r.xs[nx - 1],
        r.ys[0],
        r.ys[ny - 1],
        nx,
        ny,
        spec.params.as_str(),
        spec.bn.as_str()
    )
}

/// The heatmap of the value `args.show` asks for, in colour half blocks or shaded ASCII, with
/// the iterates marked and the colour bar's legend.
fn heatmap_lines(r: &PlaneResult, args: &PlaneArgs, colour: bool) -> Vec<String> {
    let values: Vec<f64> = r.points.iter().map(|p| args.show.of(&p.measured)).collect();
    let (nx, ny) = (r.xs.len(), r.ys.len());
    let position = |v: f64, axis: &[f64]| {
        let (a, b) = (axis[0], axis[axis.len() - 1]);
        (v - a) / (b - a) * (axis.len() - 1) as f64
    };
    let path = plane::path_marks(&r.path, &r.xs, &r.ys);
    let marks: Vec<Mark> = path
        .into_iter()
        .chain(r.markers.iter().map(|m| (m.letter, m.x, m.y)))
        .map(|(letter, x, y)| Mark {
            letter,
            column: position(x, &r.xs),
            row: position(y, &r.ys),
        })
        .collect();
    let shading = if colour {
        Shading::Colour
    } else {
        Shading::Ascii
    };
    let width = nx.clamp(21, 61) * if nx < 31 { 2 } else { 1 };
    let height = if colour { ny.div_ceil(2) } else { ny };
    let scale = if args.log && args.show != PlaneValue::Gap {
        Scale::Log
    } else {
        Scale::Linear
    };
    let grid = Grid {
        values: &values,
        nx,
        ny,
    };
    heatmap::render(&grid, width, height, scale, shading, &marks)
}

/// "SWA: train 0.2092 ± 0.0118, test 0.3010 ± 0.0167 (89.1%)", at the grid point nearest the
/// marker (said when it is not on the grid).
fn at_marker(r: &PlaneResult, m: &valleys::probe::plane::Marker) -> String {
    let d = |p: &PlanePoint| (p.x - m.x).powi(2) + (p.y - m.y).powi(2);
    let Some(nearest) = r.points.iter().min_by(|a, b| d(a).total_cmp(&d(b))) else {
        return format!("{}: no point measured", m.label);
    };
    let place = if (nearest.x, nearest.y) == (m.x, m.y) {
        String::new()
    } else {
        format!(
            " (the nearest grid point, ({:.3}, {:.3}))",
            nearest.x, nearest.y
        )
    };
    format!(
        "{}{place}: train {:.4} ± {:.4}, test {:.4} ± {:.4} ({:.1}%)",
        m.label,
        nearest.measured.train_loss,
        nearest.measured.train_loss_se.unwrap_or(f64::NAN),
        nearest.measured.test_loss,
        nearest.measured.test_loss_se.unwrap_or(f64::NAN),
        nearest.measured.test_acc * 100.0
    )
}

pub(crate) mod tiles;

#[cfg(test)]
mod tests;
