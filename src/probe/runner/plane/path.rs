//! A plane and the run's stored trajectory: the path projected onto the plane, the
//! trajectory's principal directions for a `pca` plane (as Li et al. 2018 plot the path:
//! the iterates' offsets from the final weights, centred on their mean, by SVD), and the path
//! growing on planes measured earlier while the run goes on training: each plane of a run keeps
//! its centre and directions in planes/<id>.directions.f32 (w_c, d₁, d₂ back to back,
//! little-endian float32), from which each new iterate is projected.

use crate::model::Model;
use crate::probe::direction::{self, Direction};
use crate::probe::plane::PlaneResult;
use crate::probe::runner::ProbeError;
use crate::rundir::RunDir;
use crate::trajectory::store::{self, TrajectoryError};
use crate::trajectory::{self, Inner, PathPoint, Projection, TrajectoryIndex, TrajectoryPoint};
use tch::{Kind, Tensor};

/// A run's stored iterates, on the model's device.
pub struct Stored {
    pub index: TrajectoryIndex,
    pub weights: Vec<Tensor>,
}

/// The run's trajectory, or None when it kept none; an error when it cannot be read or is of
/// another model.
pub fn load(run: &RunDir, model: &Model) -> Result<Option<Stored>, ProbeError> {
    let bad = |e: TrajectoryError| ProbeError::Invalid(e.to_string());
    let Some(index) = store::read_index(run).map_err(bad)? else {
        return Ok(None);
    };
    check_fits(&index, model)?;
    let device = model.flat().device();
    let weights = store::read_weights(run, &index)
        .map_err(bad)?
        .iter()
        .map(|w| Tensor::from_slice(w).to_device(device))
        .collect();
    Ok(Some(Stored { index, weights }))
}

/// Refuses a trajectory of another model (a copied or edited run directory).
pub fn check_fits(index: &TrajectoryIndex, model: &Model) -> Result<(), ProbeError> {
    let dimension = model.num_params() as usize;
    if index.dimension != dimension {
        return Err(ProbeError::Invalid(format!(
            "the run's trajectory holds iterates of {} parameters; this model has {dimension}",
            index.dimension
        )));
    }
    Ok(())
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).sum(Kind::Double).double_value(&[])
}

/// Where the plane w_c + x·d₁ + y·d₂ puts the iterate `w` (within the plane's group).
fn project_one(w: &Tensor, centre: &Tensor, d1: &Tensor, d2: &Tensor, mask: &Tensor) -> Projection {
    let r = (w - centre) * mask;
    trajectory::project(Inner {
        d1d1: dot(d1, d1),
        d1d2: dot(d1, d2),
        d2d2: dot(d2, d2),
        d1r: dot(d1, &r),
        d2r: dot(d2, &r),
        rr: dot(&r, &r),
    })
}

/// Each stored iterate where the plane w_c + x·d₁ + y·d₂ puts it (within the plane's group).
pub fn project(
    stored: &Stored,
    centre: &Model,
    d1: &Tensor,
    d2: &Tensor,
    mask: &Tensor,
) -> Vec<PathPoint> {
    stored
        .index
        .points
        .iter()
        .zip(&stored.weights)
        .map(|(at, w)| PathPoint {
            at: *at,
            projection: project_one(w, centre.flat(), d1, d2, mask),
        })
        .collect()
}

/// The trajectory's two leading principal directions about the centre: the rows
/// w_i − w_c centred on their mean, their top two right singular vectors (by the Gram matrix's
/// eigenvectors, as the rows are few and long), each scaled to the farthest offset along it so
/// the path spans ±1; with each one's share of the variance.
pub fn principal_directions(
    stored: &Stored,
    centre: &Model,
    mask: &Tensor,
) -> Result<(Direction, Direction, (f64, f64)), ProbeError> {
    let n = stored.weights.len();
    if n < 3 {
        return Err(ProbeError::Invalid(format!(
            "plane pca: the run's trajectory holds {n} iterate{}; two principal directions need at least 3 (checkpoint.trajectory_every_epochs keeps one every k epochs)",
            if n == 1 { "" } else { "s" }
        )));
    }
    let rows: Vec<Tensor> = stored
        .weights
        .iter()
        .map(|w| (w - centre.flat()) * mask)
        .collect();
    let offsets = Tensor::stack(&rows, 0);
    let centred = &offsets - offsets.mean_dim(0, true, Kind::Float);
    let gram = centred.matmul(&centred.tr()).to_kind(Kind::Double);
    let (values, vectors) = gram.linalg_eigh("L");
    let values = Vec::<f64>::try_from(&values).unwrap_or_default();
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let (top, second) = (values[n - 1].max(0.0), values[n - 2].max(0.0));
    if total <= 0.0 || second <= 1e-12 * total {
        return Err(ProbeError::Invalid(
            "plane pca: the trajectory's iterates lie on one line (or one point); there is no second principal direction".into(),
        ));
    }
    let direction = |k: i64, value: f64| {
        let u = vectors.select(1, k).to_kind(Kind::Float);
        let v = centred.tr().matmul(&u) / value.sqrt();
        let along = offsets.matmul(&v);
        // A singular vector's sign is arbitrary: the first iterate goes to the negative side.
        let sign = if along.get(0).double_value(&[]) > 0.0 {
            -1.0
        } else {
            1.0
        };
        // The farthest offset (from the centre, not the mean) along it sits at ±1.
        let reach = along.abs().max().double_value(&[]).max(1e-30);
        direction::describe(v * (sign * reach), centre.flat(), mask)
    };
    let d1 = direction(n as i64 - 1, top);
    let d2 = direction(n as i64 - 2, second);
    Ok((d1, d2, (top / total, second / total)))
}

/// planes/<id>.directions.f32.
pub fn directions_path(run: &RunDir, id: &str) -> std::path::PathBuf {
    crate::probe::store::plane_dir(run).join(format!("{id}.directions.f32"))
}

/// Keeps a plane's centre and directions (atomically), so that its path can grow.
pub fn write_directions(
    run: &RunDir,
    id: &str,
    centre: &Tensor,
    d1: &Tensor,
    d2: &Tensor,
) -> Result<(), crate::rundir::RunDirError> {
    let mut bytes = Vec::with_capacity(centre.numel() * 12);
    for t in [centre, d1, d2] {
        let values = Vec::<f32>::try_from(&t.to_device(tch::Device::Cpu).to_kind(Kind::Float))
            .unwrap_or_default();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    crate::rundir::write_atomic(&directions_path(run, id), &bytes)
}

/// A plane's kept centre and directions, or why they cannot be read.
pub fn read_directions(
    run: &RunDir,
    id: &str,
    model: &Model,
) -> Result<Option<[Tensor; 3]>, String> {
    let path = directions_path(run, id);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
    };
    let n = model.num_params() as usize;
    if bytes.len() != 12 * n {
        return Err(format!(
            "{}: {} bytes; expected 3 vectors of {n} parameters ({} bytes)",
            path.display(),
            bytes.len(),
            12 * n
        ));
    }
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let device = model.flat().device();
    let part = |k: usize| Tensor::from_slice(&floats[k * n..(k + 1) * n]).to_device(device);
    Ok(Some([part(0), part(1), part(2)]))
}

/// Adds the iterate `weights` (kept as `point`) to the path of every plane of the run that
/// keeps its directions and does not hold it yet, rewriting each plane's files; returns the
/// planes that grew and, one line each, those that could not.
pub fn extend(
    run: &RunDir,
    model: &Model,
    point: TrajectoryPoint,
    weights: &Tensor,
) -> (Vec<PlaneResult>, Vec<String>) {
    let (planes, _) = crate::probe::store::read_planes(run);
    let mut grown = Vec::new();
    let mut problems = Vec::new();
    for mut plane in planes {
        if plane.path.last().is_some_and(|p| p.at.step >= point.step) {
            continue;
        }
        let [centre, d1, d2] = match read_directions(run, &plane.id, model) {
            Ok(Some(kept)) => kept,
            Ok(None) => continue,
            Err(e) => {
                problems.push(format!("plane {}: {e}; its path stops here", plane.id));
                continue;
            }
        };
        let mask = direction::group_mask(model, plane.spec.params);
        let projection = project_one(weights, &centre, &d1, &d2, &mask);
        plane.path.push(PathPoint {
            at: point,
            projection,
        });
        match crate::probe::store::write_plane(run, &plane) {
            Ok(_) => grown.push(plane),
            Err(e) => problems.push(format!("plane {}: {e}", plane.id)),
        }
    }
    (grown, problems)
}
