//! A plane with a known shape, for the tests of what reads planes.

use super::*;

/// A plane with a known shape, for tests of what reads planes: an asymmetric valley along x
/// with its floor at x = 0.3 (gently rising towards SWA and beyond, steeply towards SGD),
/// curving up along y, measured on an `nx` × `ny` grid.
pub(crate) fn valley_fixture(id: &str, nx: usize, ny: usize) -> PlaneResult {
    let spec = PlaneSpec {
        points: (nx, ny),
        ..PlaneSpec::for_kind(PlaneKind::SwaSgd)
    };
    let (xs, ys) = (spec.xs(), spec.ys());
    let loss = |x: f64, y: f64| {
        let d = x - 0.3;
        let side = if d < 0.0 { 0.05 } else { 0.4 };
        0.3 + side * d * d + 0.03 * y * y
    };
    let mut points = Vec::new();
    for &y in &ys {
        for &x in &xs {
            let test = loss(x, y);
            points.push(PlanePoint {
                x,
                y,
                measured: ProbePoint {
                    t: x,
                    train_loss: test - 0.09,
                    train_acc: 0.93 - test / 10.0,
                    test_loss: test,
                    test_acc: 0.9 - test / 10.0,
                    train_loss_se: Some(0.0117),
                    test_loss_se: Some(0.0167),
                },
            });
        }
    }
    PlaneResult {
        id: id.into(),
        seed: 1,
        d2_seed: Some(d2_seed(1)),
        centre: "swa".into(),
        markers: markers(spec.kind, "swa"),
        spec,
        xs,
        ys,
        points,
        d1_norm: 1.4234,
        d2_norm: 1.4234,
        cosine: 1.8e-11,
        centre_norm: 26.31,
        train_samples: 2000,
        test_samples: 2000,
        bn_samples: Some(10_000),
        epoch: 15,
        step: 1185,
        source: "final".into(),
        cost: PlaneCost {
            seconds: 888.0,
            seconds_per_point: 2.01,
            points: nx * ny,
            forward_seconds: 1.38,
        },
        eigenvalues: None,
        hessian_steps: None,
        explained_variance: None,
        path: Vec::new(),
    }
}
