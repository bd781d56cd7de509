//! A plane for ParaView and VTK: an XML structured grid (`.vts`) whose points are (x, y, test
//! loss), so that it opens as the loss surface, with every measured value as a point field
//! (the losses, their log₁₀, the accuracies and the generalisation gap), as the anchor's
//! `h52vtp` gives its users.
//!
//! The arrays are little-endian float64, base64-encoded inline (VTK's `binary` format, each
//! array its byte count in a UInt64 header, header and data encoded apart as VTK writes them),
//! so that every value, an infinite loss far from the centre included, reads back exactly.

use crate::probe::plane::PlaneResult;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt::Write;

/// How a point field is read from a measured point.
type Field = fn(&crate::probe::ProbePoint) -> f64;

/// The point fields of a plane's grid, by name.
const FIELDS: [(&str, Field); 7] = [
    ("test_loss", |p| p.test_loss),
    ("train_loss", |p| p.train_loss),
    ("log10_test_loss", |p| log10(p.test_loss)),
    ("log10_train_loss", |p| log10(p.train_loss)),
    ("test_acc", |p| p.test_acc),
    ("train_acc", |p| p.train_acc),
    ("gap", |p| p.test_loss - p.train_loss),
];

/// log₁₀ of a loss; NaN for a loss that has none (0 or below, which cross-entropy never
/// reaches, and NaN).
fn log10(v: f64) -> f64 {
    if v > 0.0 { v.log10() } else { f64::NAN }
}

/// One array in VTK's inline binary form.
fn encoded(values: impl IntoIterator<Item = f64>) -> String {
    let bytes: Vec<u8> = values.into_iter().flat_map(f64::to_le_bytes).collect();
    let header = (bytes.len() as u64).to_le_bytes();
    STANDARD.encode(header) + &STANDARD.encode(&bytes)
}

/// The plane as a `.vts` file: an nx × ny structured grid, row by row as the plane stores its
/// points (x fastest, as VTK orders a grid's points). A point whose test loss is not finite
/// sits at the highest finite one, so that the surface stays drawable; its field keeps the
/// value measured.
pub fn structured_grid(plane: &PlaneResult) -> String {
    let (nx, ny) = (plane.xs.len(), plane.ys.len());
    let ceiling = plane
        .points
        .iter()
        .map(|p| p.measured.test_loss)
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let height = |v: f64| {
        if v.is_finite() {
            v
        } else if v > 0.0 || v.is_nan() {
            if ceiling.is_finite() { ceiling } else { 0.0 }
        } else {
            0.0
        }
    };
    let extent = format!("0 {} 0 {} 0 0", nx - 1, ny - 1);
    let mut out = String::new();
    let _ = writeln!(out, "<?xml version=\"1.0\"?>");
    let _ = writeln!(
        out,
        "<VTKFile type=\"StructuredGrid\" version=\"1.0\" byte_order=\"LittleEndian\" header_type=\"UInt64\">"
    );
    let _ = writeln!(out, "  <StructuredGrid WholeExtent=\"{extent}\">");
    let _ = writeln!(out, "    <Piece Extent=\"{extent}\">");
    let _ = writeln!(out, "      <PointData Scalars=\"test_loss\">");
    for (name, value) in FIELDS {
        let _ = writeln!(
            out,
            "        <DataArray type=\"Float64\" Name=\"{name}\" format=\"binary\">{}</DataArray>",
            encoded(plane.points.iter().map(|p| value(&p.measured)))
        );
    }
    let _ = writeln!(out, "      </PointData>");
    let _ = writeln!(out, "      <Points>");
    let _ = writeln!(
        out,
        "        <DataArray type=\"Float64\" Name=\"points\" NumberOfComponents=\"3\" format=\"binary\">{}</DataArray>",
        encoded(
            plane
                .points
                .iter()
                .flat_map(|p| [p.x, p.y, height(p.measured.test_loss)])
        )
    );
    let _ = writeln!(out, "      </Points>");
    let _ = writeln!(out, "    </Piece>");
    let _ = writeln!(out, "  </StructuredGrid>");
    let _ = writeln!(out, "</VTKFile>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of array `name` (or the points, for "points") as the file holds them.
    fn decoded(file: &str, name: &str) -> Vec<f64> {
        let start = file.find(&format!("Name=\"{name}\"")).unwrap();
        let body = &file[start..];
        let body = &body[body.find('>').unwrap() + 1..body.find("</DataArray>").unwrap()];
        // The 8-byte header is 12 base64 characters (with its padding).
        let header = STANDARD.decode(&body[..12]).unwrap();
        let count = u64::from_le_bytes(header.try_into().unwrap()) as usize;
        let bytes = STANDARD.decode(&body[12..]).unwrap();
        assert_eq!(bytes.len(), count);
        bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn the_grid_holds_every_point_in_the_planes_order_with_its_fields() {
        let mut plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 5, 3);
        plane.points[7].measured.test_loss = f64::INFINITY;
        let file = structured_grid(&plane);
        assert!(file.contains("WholeExtent=\"0 4 0 2 0 0\""));
        let points = decoded(&file, "points");
        assert_eq!(points.len(), 45);
        let highest = plane
            .points
            .iter()
            .map(|p| p.measured.test_loss)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        for (k, p) in plane.points.iter().enumerate() {
            assert_eq!(points[3 * k], p.x);
            assert_eq!(points[3 * k + 1], p.y);
            let z = if k == 7 {
                highest
            } else {
                p.measured.test_loss
            };
            assert_eq!(points[3 * k + 2], z);
        }
        let test = decoded(&file, "test_loss");
        assert_eq!(test[7], f64::INFINITY, "the field keeps what was measured");
        let log = decoded(&file, "log10_train_loss");
        let gap = decoded(&file, "gap");
        for (k, p) in plane.points.iter().enumerate() {
            assert_eq!(log[k], p.measured.train_loss.log10());
            if k != 7 {
                assert_eq!(gap[k], p.measured.test_loss - p.measured.train_loss);
            }
        }
        assert!(log10(0.0).is_nan() && log10(f64::NAN).is_nan());
    }
}
