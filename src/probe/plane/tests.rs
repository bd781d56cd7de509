use super::*;

#[test]
fn coarse_to_fine_visits_every_point_once_with_the_corners_first() {
    for (nx, ny) in [(2, 2), (21, 21), (20, 7), (5, 1 + 1)] {
        let order = coarse_to_fine(nx, ny);
        let mut sorted = order.clone();
        sorted.sort_by_key(|&(i, j)| (j, i));
        let every: Vec<(usize, usize)> =
            (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j))).collect();
        assert_eq!(sorted, every, "{nx}x{ny}");
        // The first pass: every 4th point and the last row and column, corners included.
        let first = nx.div_ceil(4).max(1) + 1;
        let head: Vec<_> = order.iter().take(first * first.min(ny)).collect();
        for corner in [(0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1)] {
            assert!(head.contains(&&corner), "{nx}x{ny}: {corner:?} comes late");
        }
    }
    // 21x21: a picture of 6x6 points (a twelfth of the cost) before anything finer.
    let order = coarse_to_fine(21, 21);
    assert!(order[..36].iter().all(|&(i, j)| i % 4 == 0 && j % 4 == 0));
    assert_ne!(order[36].0 % 4 + order[36].1 % 4, 0);
}

#[test]
fn grids_and_ranges_parse_and_bad_ones_are_one_line() {
    assert_eq!(parse_points("21x31"), Ok((21, 31)));
    assert_eq!(parse_points("9"), Ok((9, 9)));
    assert_eq!(parse_range("-0.5:1.5"), Ok((-0.5, 1.5)));
    for bad in ["21x", "x3", "a", "-3x4", ""] {
        let e = parse_points(bad).unwrap_err().0;
        assert!(e.contains("expected NxM grid points"), "{bad}: {e}");
    }
    for bad in ["1", "a:b", "1:2:3"] {
        let e = parse_range(bad).unwrap_err().0;
        assert!(e.contains("expected FROM:TO"), "{bad}: {e}");
    }
    let spec = |f: &dyn Fn(&mut PlaneSpec)| {
        let mut s = PlaneSpec::default();
        f(&mut s);
        s.validate()
    };
    assert!(spec(&|_| {}).is_ok());
    type Change<'a> = &'a dyn Fn(&mut PlaneSpec);
    let cases: [(Change, &str); 5] = [
        (
            &|s| s.points = (1, 21),
            "points 1x21: 1 along x; expected 2..=201",
        ),
        (&|s| s.points = (21, 500), "points 21x500: 500 along y"),
        (&|s| s.x = (1.0, -1.0), "x 1:-1: expected a range FROM:TO"),
        (&|s| s.y = (0.0, f64::NAN), "y 0:NaN"),
        (
            &|s| s.direction = DirectionKind::Hessian,
            "direction hessian: expected uniform, gaussian or sign",
        ),
    ];
    for (change, expected) in cases {
        let e = spec(change).unwrap_err().0;
        assert!(e.starts_with(expected), "{e}");
        assert!(!e.contains('\n'));
    }
}

#[test]
fn the_grid_holds_zero_exactly_where_it_crosses_it() {
    let s = PlaneSpec::default();
    assert_eq!(s.xs()[5], 0.0);
    assert_eq!(s.xs()[15], 1.0);
    assert_eq!(s.ys()[10], 0.0);
}

#[test]
fn a_plane_section_in_another_shape_is_told_the_form_it_takes() {
    for (yaml, expected) in [
        (
            "x: [-1, 1]",
            "[-1,1]: expected a range FROM:TO as text, e.g. '-0.5:1.5'",
        ),
        ("x: 2", "2: expected a range FROM:TO as text"),
        (
            "points: {x: 3}",
            "expected NxM grid points as text, e.g. 21x21",
        ),
        (
            "eigenvectors: [1, 2]",
            "[1,2]: expected two eigenvectors as text K1,K2",
        ),
    ] {
        let e = serde_yaml::from_str::<settings::PlaneSettings>(yaml)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{yaml}: {e}");
        assert!(!e.contains("untagged"), "{yaml}: {e}");
    }
}
