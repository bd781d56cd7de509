//! What a plane found: its points, the iterates it marks, its cost, as stored in
//! planes/<id>.json (and checked when read back), and the lines and CSV that say it.

use super::{MAX_SIDE, PlaneKind, PlaneSpec};
use crate::probe::ProbePoint;
use serde::{Deserialize, Serialize};

/// One point of a plane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanePoint {
    pub x: f64,
    pub y: f64,
    #[serde(flatten)]
    pub measured: ProbePoint,
}

/// A point of the plane worth marking (the SWA average, the SGD iterate, the centre).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub label: String,
    /// Drawn on the heatmap: A for the SWA average, S for the SGD iterate.
    pub letter: char,
    pub x: f64,
    pub y: f64,
}

/// What a plane cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaneCost {
    pub seconds: f64,
    pub seconds_per_point: f64,
    pub points: usize,
    /// One plain eval-mode forward pass over every sample a point reads (its BN pass's too),
    /// measured before the first point: what a point costs at the least (0 in planes written
    /// before it was recorded).
    #[serde(default)]
    pub forward_seconds: f64,
}

/// A measured plane, as stored in planes/<id>.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaneResult {
    pub id: String,
    pub spec: PlaneSpec,
    /// The seed d₁ of a random plane was drawn from (a swa-sgd plane's d₁ is SGD − SWA).
    pub seed: u64,
    /// The seed d₂ was drawn from ([`d2_seed`] of `seed`; absent in planes written before it
    /// was recorded, whose d₂ came from the same rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d2_seed: Option<u64>,
    /// "swa" or "sgd".
    pub centre: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// Row by row (y outer, x inner); all `xs.len() * ys.len()` of them.
    pub points: Vec<PlanePoint>,
    pub markers: Vec<Marker>,
    pub d1_norm: f64,
    pub d2_norm: f64,
    /// cos(d₁, d₂) after orthogonalisation (0 up to rounding).
    pub cosine: f64,
    pub centre_norm: f64,
    pub train_samples: usize,
    pub test_samples: usize,
    pub bn_samples: Option<usize>,
    pub epoch: u32,
    pub step: u64,
    pub source: String,
    pub cost: PlaneCost,
    /// A `hessian` plane's eigenvalues along d₁ and d₂ (Lanczos on its samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eigenvalues: Option<(f64, f64)>,
    /// The Lanczos steps (Hessian-vector products) that found them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian_steps: Option<usize>,
    /// A `pca` plane's share of the trajectory's variance along d₁ and d₂.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<(f64, f64)>,
    /// The run's stored trajectory where the plane puts it (empty when the run kept none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<crate::trajectory::PathPoint>,
}

impl PlaneResult {
    /// What was known of it before its first point, with the time a point was expected to
    /// take.
    pub fn header(&self, seconds_per_point: f64) -> PlaneHeader {
        PlaneHeader {
            id: self.id.clone(),
            spec: self.spec.clone(),
            centre: self.centre.clone(),
            xs: self.xs.clone(),
            ys: self.ys.clone(),
            markers: self.markers.clone(),
            seconds_per_point,
            eigenvalues: self.eigenvalues,
            explained_variance: self.explained_variance,
            path: self.path.clone(),
        }
    }

    /// The point at column `i`, row `j`.
    pub fn at(&self, i: usize, j: usize) -> &PlanePoint {
        &self.points[j * self.xs.len() + i]
    }
}

impl crate::stored::Stored for PlaneResult {
    fn check(&self) -> Result<(), crate::stored::StoredError> {
        use crate::stored::{finite, increasing};
        let (nx, ny) = (self.xs.len(), self.ys.len());
        for (n, axis) in [(nx, "xs"), (ny, "ys")] {
            if !(2..=MAX_SIDE).contains(&n) {
                return Err(crate::stored::StoredError(format!(
                    "{axis} holds {n} values; expected 2..={MAX_SIDE} grid points per side"
                )));
            }
        }
        if self.spec.points != (nx, ny) {
            return Err(crate::stored::StoredError(format!(
                "spec.points is {}x{} but the axes hold {nx}x{ny}",
                self.spec.points.0, self.spec.points.1
            )));
        }
        if self.points.len() != nx * ny {
            return Err(crate::stored::StoredError(format!(
                "{} points for a {nx}x{ny} grid; expected {}",
                self.points.len(),
                nx * ny
            )));
        }
        increasing("xs", &self.xs)?;
        increasing("ys", &self.ys)?;
        // Losses far from the centre may be infinite (stored so, drawn beyond the colour
        // bar); where a point sits may not.
        for (k, p) in self.points.iter().enumerate() {
            finite(&format!("points[{k}].x"), p.x)?;
            finite(&format!("points[{k}].y"), p.y)?;
        }
        for m in &self.markers {
            finite(&format!("marker {}", m.label), m.x)?;
            finite(&format!("marker {}", m.label), m.y)?;
        }
        if let Some((a, b)) = self.eigenvalues {
            finite("eigenvalues[0]", a)?;
            finite("eigenvalues[1]", b)?;
        }
        if let Some((a, b)) = self.explained_variance {
            crate::stored::fraction("explained_variance[0]", a)?;
            crate::stored::fraction("explained_variance[1]", b)?;
        }
        for (k, p) in self.path.iter().enumerate() {
            finite(&format!("path[{k}].x"), p.projection.x)?;
            finite(&format!("path[{k}].y"), p.projection.y)?;
            finite(&format!("path[{k}].residual"), p.projection.residual)?;
        }
        Ok(())
    }
}

/// What is known of a plane before its first point: enough to draw its empty grid.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneHeader {
    pub id: String,
    pub spec: PlaneSpec,
    /// "swa" or "sgd".
    pub centre: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub markers: Vec<Marker>,
    /// The expected time of one point, from one forward pass over its samples.
    pub seconds_per_point: f64,
    /// A `hessian` plane's eigenvalues along d₁ and d₂.
    pub eigenvalues: Option<(f64, f64)>,
    pub explained_variance: Option<(f64, f64)>,
    pub path: Vec<crate::trajectory::PathPoint>,
}

impl PlaneHeader {
    /// Points in the grid.
    pub fn total(&self) -> usize {
        self.xs.len() * self.ys.len()
    }
}

/// The iterates a plane through `centre` ("swa" or "sgd") marks: the centre at (0, 0), and
/// SGD at (1, 0) on an SWA–SGD plane.
pub fn markers(kind: PlaneKind, centre: &str) -> Vec<Marker> {
    let mut markers = vec![Marker {
        label: centre.to_uppercase(),
        letter: if centre == "swa" { 'A' } else { 'S' },
        x: 0.0,
        y: 0.0,
    }];
    if kind == PlaneKind::SwaSgd {
        markers.push(Marker {
            label: "SGD".into(),
            letter: 'S',
            x: 1.0,
            y: 0.0,
        });
    }
    markers
}

/// The measured point with the lowest test loss.
pub fn lowest<'a>(points: impl IntoIterator<Item = &'a PlanePoint>) -> Option<&'a PlanePoint> {
    points
        .into_iter()
        .filter(|p| p.measured.test_loss.is_finite())
        .min_by(|a, b| a.measured.test_loss.total_cmp(&b.measured.test_loss))
}

/// The grid index nearest to `v` on `axis`.
pub fn nearest_index(axis: &[f64], v: f64) -> usize {
    (0..axis.len())
        .min_by(|&a, &b| (axis[a] - v).abs().total_cmp(&(axis[b] - v).abs()))
        .unwrap_or(0)
}

/// One line about a measured plane: its settings, the test loss at its iterates, the lowest
/// point and the cost.
pub fn one_line(r: &PlaneResult) -> String {
    let at_markers: Vec<String> = r
        .markers
        .iter()
        .map(|m| {
            let p = r.at(nearest_index(&r.xs, m.x), nearest_index(&r.ys, m.y));
            format!("{} {:.4}", m.label, p.measured.test_loss)
        })
        .collect();
    let lowest = lowest(&r.points).map_or(String::new(), |p| {
        format!(
            " · lowest {:.4} at ({:.2}, {:.2})",
            p.measured.test_loss, p.x, p.y
        )
    });
    format!(
        "plane {}: {} · test loss {}{lowest} · {}",
        r.id,
        r.spec.summary(),
        at_markers.join(", "),
        crate::format::clock(r.cost.seconds)
    )
}

/// Follows a plane as it fills in.
pub trait PlaneObserver {
    /// The grid is about to be measured, coarse to fine.
    fn started(&mut self, header: &PlaneHeader);
    /// Point `done` of the total was measured at column `i`, row `j`.
    fn point(&mut self, done: usize, i: usize, j: usize, point: &PlanePoint);
    /// Asked between points; true stops the plane.
    fn cancelled(&mut self) -> bool;
}

/// The CSV of a plane: one row per point.
pub fn csv(result: &PlaneResult) -> String {
    points_csv(&result.points)
}

/// Points as CSV rows of x, y, losses, accuracies and standard errors.
pub fn points_csv<'a>(points: impl IntoIterator<Item = &'a PlanePoint>) -> String {
    let mut out =
        String::from("x,y,train_loss,train_acc,test_loss,test_acc,train_loss_se,test_loss_se\n");
    for p in points {
        let m = &p.measured;
        let se = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        out += &format!(
            "{},{},{},{},{},{},{},{}\n",
            p.x,
            p.y,
            m.train_loss,
            m.train_acc,
            m.test_loss,
            m.test_acc,
            se(m.train_loss_se),
            se(m.test_loss_se)
        );
    }
    out
}
