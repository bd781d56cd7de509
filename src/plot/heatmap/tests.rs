use super::*;

#[test]
fn the_colour_map_runs_from_violet_to_yellow_through_its_stops() {
    assert_eq!(viridis(0.0), (68, 1, 84));
    assert_eq!(viridis(1.0), (253, 231, 37));
    assert_eq!(viridis(0.5), (33, 144, 141));
    assert_eq!(viridis(-3.0), viridis(0.0));
    assert_eq!(viridis(f64::NAN), viridis(0.0));
    // Lightness rises along the map (what makes it perceptual).
    let light = |t: f64| {
        let (r, g, b) = viridis(t);
        0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b)
    };
    for k in 0..20 {
        assert!(light(k as f64 / 20.0) < light((k + 1) as f64 / 20.0), "{k}");
    }
}

#[test]
fn levels_map_linear_and_log_scales() {
    let lin = Levels::of(&[1.0, f64::NAN, 3.0, 2.0], Scale::Linear).unwrap();
    assert_eq!((lin.low, lin.high), (1.0, 3.0));
    assert_eq!(lin.fraction(2.0), 0.5);
    let log = Levels::of(&[1.0, 100.0, -1.0], Scale::Log).unwrap();
    assert_eq!((log.low, log.high), (1.0, 100.0));
    assert!((log.fraction(10.0) - 0.5).abs() < 1e-12);
    assert!((log.value_at(0.5) - 10.0).abs() < 1e-9);
    assert!(Levels::of(&[f64::NAN], Scale::Linear).is_none());
}

#[test]
fn an_ascii_heatmap_puts_high_y_on_top_and_marks_the_iterates() {
    // 3x3: the loss grows with y; the top line is the darkest.
    let values = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0];
    let grid = Grid {
        values: &values,
        nx: 3,
        ny: 3,
    };
    let marks = [Mark {
        letter: 'S',
        column: 0.0,
        row: 0.0,
    }];
    let lines = render(&grid, 3, 3, Scale::Linear, Shading::Ascii, &marks);
    assert_eq!(&lines[..3], ["@@@", "+++", "S  "]);
    assert!(lines[3].starts_with("0.0000 "), "{}", lines[3]);
    assert!(lines[3].contains("2.0000  (middle 1.0000, linear)"));
    // Unmeasured points stay blank.
    let partial = [0.0, f64::NAN, 2.0, f64::NAN];
    let grid = Grid {
        values: &partial,
        nx: 2,
        ny: 2,
    };
    let lines = render(&grid, 2, 2, Scale::Linear, Shading::Ascii, &[]);
    assert_eq!(&lines[..2], ["@ ", "  "]);
}

#[test]
fn a_filling_plane_is_drawn_from_its_nearest_measured_points() {
    let nan = f64::NAN;
    // 3x2: only the corners (0, 0) = 1 and (2, 1) = 5 are measured.
    let values = [1.0, nan, nan, nan, nan, 5.0];
    let filled = fill_nearest(&values, 3, 2);
    assert_eq!(filled, [1.0, 1.0, 5.0, 1.0, 5.0, 5.0]);
    assert!(fill_nearest(&[nan, nan], 2, 1).iter().all(|v| v.is_nan()));
}

#[test]
fn between_grid_points_values_are_interpolated_bilinearly() {
    // 2x2 grid: 0 and 1 at the bottom, 2 and 3 at the top.
    let values = [0.0, 1.0, 2.0, 3.0];
    let grid = Grid {
        values: &values,
        nx: 2,
        ny: 2,
    };
    assert_eq!(grid.bilinear(0.0, 0.0), 0.0);
    assert_eq!(grid.bilinear(1.0, 1.0), 3.0);
    assert_eq!(grid.bilinear(0.5, 0.5), 1.5);
    assert_eq!(grid.bilinear(0.25, 1.0), 2.25);
    // A missing corner: the nearest measured value, never a NaN spread over the cell.
    let partial = [0.0, f64::NAN, 2.0, 3.0];
    let grid = Grid {
        values: &partial,
        nx: 2,
        ny: 2,
    };
    assert_eq!(grid.bilinear(0.1, 0.1), 0.0);
}

#[test]
fn contours_run_where_the_band_changes() {
    // One row rising in even steps across all 8 bands: a contour after each change.
    let values: Vec<f64> = (0..8).map(f64::from).collect();
    let grid = Grid {
        values: &values,
        nx: 8,
        ny: 1,
    };
    let levels = Levels::of(&values, Scale::Linear).unwrap();
    let row = &cells(&grid, &levels, 8, 1, 1, &[])[0];
    let contours: Vec<bool> = row.iter().map(|c| c.contour).collect();
    assert_eq!(contours, [true, true, true, true, true, true, true, false]);
    let flat = [2.0; 8];
    let grid = Grid {
        values: &flat,
        nx: 8,
        ny: 1,
    };
    let levels = Levels::of(&flat, Scale::Linear).unwrap();
    assert!(
        cells(&grid, &levels, 8, 1, 1, &[])[0]
            .iter()
            .all(|c| !c.contour)
    );
}

#[test]
fn a_colour_heatmap_draws_two_rows_per_line_in_half_blocks() {
    let values = [0.0, 1.0, 2.0, 3.0];
    let grid = Grid {
        values: &values,
        nx: 1 + 1,
        ny: 2,
    };
    let lines = render(&grid, 2, 1, Scale::Linear, Shading::Colour, &[]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].matches('▀').count(), 2);
    // The top half of the first cell is row 1 (value 2), its bottom row 0 (value 0).
    let (r, g, b) = viridis(2.0 / 3.0);
    assert!(
        lines[0].starts_with(&format!("\x1b[48;2;68;1;84m\x1b[38;2;{r};{g};{b}m▀")),
        "{:?}",
        lines[0]
    );
}
