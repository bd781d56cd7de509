use super::*;
use crate::protocol::Event;
use crate::ui::app::App;
use crate::ui::app::tests::history;
use crate::ui::keymap::Action;
use crate::ui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn screen(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(app, f)).unwrap();
    terminal
}

fn colour() -> Theme {
    Theme {
        color: true,
        ascii: false,
    }
}

#[test]
fn dashboard_at_80x24() {
    insta::assert_snapshot!(screen(&history(colour()), 80, 24).backend());
}

#[test]
fn dashboard_at_160x48() {
    insta::assert_snapshot!(screen(&history(colour()), 160, 48).backend());
}

#[test]
fn dashboard_with_log_scale_and_smoothing() {
    let mut app = history(colour());
    app.update(Action::ToggleLogScale);
    app.update(Action::ToggleSmoothing);
    insta::assert_snapshot!(screen(&app, 120, 32).backend());
}

#[test]
fn dashboard_in_ascii() {
    let app = history(Theme {
        color: false,
        ascii: true,
    });
    let terminal = screen(&app, 80, 24);
    let text = format!("{}", terminal.backend());
    assert!(text.is_ascii(), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn help_overlay_at_80x24() {
    let mut app = history(colour());
    app.update(Action::Help);
    insta::assert_snapshot!(screen(&app, 80, 24).backend());
}

#[test]
fn quit_confirmation_at_80x24() {
    let mut app = history(colour());
    app.update(Action::Quit);
    let text = format!("{}", screen(&app, 80, 24).backend());
    assert!(text.contains("Stop training and quit?"), "{text}");
    assert!(text.contains("A checkpoint will be saved. (y/n)"), "{text}");
}

#[test]
fn a_small_terminal_gets_a_message_not_garbage() {
    insta::assert_snapshot!(screen(&history(colour()), 50, 12).backend());
}

#[test]
fn tiny_and_odd_sizes_never_panic() {
    let app = history(colour());
    for (w, h) in [(1, 1), (2, 40), (200, 3), (60, 16), (61, 17), (300, 100)] {
        screen(&app, w, h);
    }
    let empty = App::new(colour(), true);
    let text = format!("{}", screen(&empty, 80, 24).backend());
    assert!(text.contains("waiting for the first evaluation"), "{text}");
}

fn with_probes(theme: Theme) -> App {
    let mut app = history(theme);
    let first = crate::ui::app::tests::probe_result("001-uniform-swa");
    let mut second = crate::ui::app::tests::probe_result("002-interp-swa-sgd");
    second.spec.direction = crate::probe::DirectionKind::Interp;
    second.centre.iterate = "swa→sgd".into();
    app.handle_event(Event::ProbeFinished(Box::new(second)));
    app.handle_event(Event::ProbeFinished(Box::new(first)));
    app.update(Action::ShowView(1));
    app
}

#[test]
fn probe_view_at_120x32() {
    insta::assert_snapshot!(screen(&with_probes(colour()), 120, 32).backend());
}

#[test]
fn probe_view_at_80x24() {
    insta::assert_snapshot!(screen(&with_probes(colour()), 80, 24).backend());
}

#[test]
fn probe_view_while_a_probe_runs() {
    let mut app = history(colour());
    app.update(Action::ShowView(1));
    let result = crate::ui::app::tests::probe_result("003-gaussian-sgd");
    app.handle_event(Event::ProbeStarted {
        id: result.id.clone(),
        summary: result.spec.summary(),
        grid: result.points.iter().map(|p| p.t).collect(),
        seconds_per_point: 1.0,
    });
    for index in [0, 4, 8] {
        app.handle_event(Event::ProbePoint {
            id: result.id.clone(),
            index,
            point: result.points[index],
        });
    }
    let text = format!("{}", screen(&app, 100, 30).backend());
    assert!(text.contains("PROBING"), "{text}");
    assert!(text.contains("3/9 points"), "{text}");
}

#[test]
fn probe_form_at_80x24() {
    let mut app = history(colour());
    app.update(Action::OpenProbeForm);
    insta::assert_snapshot!(screen(&app, 80, 24).backend());
}

#[test]
fn the_random_shift_curve_replaces_the_loss_curves_on_r() {
    let mut app = with_probes(colour());
    app.update(Action::ToggleShiftCurve);
    let text = format!("{}", screen(&app, 100, 30).backend());
    assert!(
        text.contains("random shift · probe 001-uniform-swa"),
        "{text}"
    );
    assert!(text.contains("best δ"), "{text}");
}

#[test]
fn ablation_view_with_a_twin_and_groups_at_120x36() {
    let mut app = with_probes(colour());
    let twin = history(colour());
    for row in twin.latest.values() {
        app.handle_event(Event::Twin(Box::new(Event::Metric(row.clone()))));
    }
    let (result, probes) =
        crate::ui::app::tests::ablation_result(crate::ablation::AblationKind::Groups);
    app.handle_event(Event::AblationFinished {
        result: Box::new(result),
        probes,
    });
    app.update(Action::ShowView(2));
    insta::assert_snapshot!(screen(&app, 120, 36).backend());
}

#[test]
fn ablation_summary_and_menu() {
    let mut app = history(colour());
    let (result, _) =
        crate::ui::app::tests::ablation_result(crate::ablation::AblationKind::Summary);
    app.handle_event(Event::AblationFinished {
        result: Box::new(result),
        probes: vec![],
    });
    app.update(Action::ShowView(2));
    let text = format!("{}", screen(&app, 100, 30).backend());
    assert!(text.contains("no twin yet"), "{text}");
    assert!(text.contains("SWA gain in test loss"), "{text}");
    assert!(text.contains("bn-only"), "{text}");
    app.update(Action::OpenAblationMenu);
    insta::assert_snapshot!(screen(&app, 100, 30).backend());
}

#[test]
fn narrow_screens_drop_whole_fields_and_never_cut_a_number() {
    for (w, h) in [(60, 16), (64, 18), (72, 20), (80, 24), (100, 30)] {
        let app = history(colour());
        let text = format!("{}", screen(&app, w, h).backend());
        for (part, whole) in [
            ("samples/", "1540 samples/s"),
            ("ETA", "ETA 0:24"),
            ("epoch 12", "epoch 12/15"),
            ("running 0.", "running 0.2506 (91.2%)"),
            ("checkpoint:", "checkpoint: epoch"),
        ] {
            assert!(
                !text.contains(part) || text.contains(whole),
                "{w}x{h}: '{part}' without '{whole}':\n{text}"
            );
        }
        assert!(
            text.contains("? help"),
            "{w}x{h}: the key bar keeps ? help\n{text}"
        );
    }
}

#[test]
fn the_value_cursor_reads_out_every_series_and_the_gap() {
    let mut app = history(colour());
    app.update(Action::CursorLeft);
    let text = format!("{}", screen(&app, 160, 40).backend());
    let sgd = app.latest[&(crate::protocol::Iterate::Sgd, crate::protocol::Split::Test)].loss;
    let swa = app.latest[&(crate::protocol::Iterate::Swa, crate::protocol::Split::Test)].loss;
    assert!(text.contains(" epoch 12: "), "{text}");
    assert!(text.contains(&format!("SGD test {sgd:.4}")), "{text}");
    assert!(text.contains(&format!("SWA test {swa:.4}")), "{text}");
    assert!(
        text.contains(&format!("SGD−SWA {:+.4}", sgd - swa)),
        "{text}"
    );
}

#[test]
fn a_long_form_error_wraps_instead_of_being_cut() {
    let mut app = history(colour());
    app.update(Action::OpenProbeForm);
    app.form.error = Some(
        "probe.auto_range: interp runs from SWA (t = 0) to SGD (t = 1); set its from/to instead"
            .into(),
    );
    let text = format!("{}", screen(&app, 80, 30).backend());
    assert!(
        text.contains("set its from/to") && text.contains("instead"),
        "{text}"
    );
}

#[test]
fn dashboard_at_120x36() {
    insta::assert_snapshot!(screen(&history(colour()), 120, 36).backend());
}

/// The rows of the chart area lit by braille cells in colour `fg`, per column.
fn lit_rows_by_column(
    terminal: &Terminal<TestBackend>,
    fg: ratatui::style::Color,
) -> Vec<(u16, Vec<u16>)> {
    let buffer = terminal.backend().buffer();
    let mut columns = Vec::new();
    for x in 0..buffer.area.width {
        let rows: Vec<u16> = (0..buffer.area.height)
            .filter(|&y| {
                let cell = &buffer[(x, y)];
                cell.fg == fg
                    && cell
                        .symbol()
                        .chars()
                        .next()
                        .is_some_and(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
            })
            .collect();
        if !rows.is_empty() {
            columns.push((x, rows));
        }
    }
    columns
}

#[test]
fn steep_lines_are_continuous_and_the_legend_keeps_whole_items() {
    // Every value on the scale and only the training series: SGD train falls from 2.5 to
    // 0.3 over the first epochs, a steep line from the top of the chart to the bottom.
    let mut app = history(colour());
    app.update(Action::ToggleOutliers);
    app.update(Action::CycleSplits);
    for (width, height) in [(80, 24), (120, 36)] {
        let terminal = screen(&app, width, height);
        // Until SWA starts (where SWA train runs along SGD train and colours shared cells).
        let swa_from = lit_rows_by_column(&terminal, ratatui::style::Color::Cyan)
            .first()
            .map_or(width, |c| c.0);
        let columns: Vec<(u16, Vec<u16>)> =
            lit_rows_by_column(&terminal, ratatui::style::Color::Yellow)
                .into_iter()
                .filter(|c| c.0 < swa_from)
                .collect();
        assert!(columns.len() > 10, "{width}x{height}: too few columns");
        for pair in columns.windows(2) {
            let ((x0, rows0), (x1, rows1)) = (&pair[0], &pair[1]);
            // A column's lit rows are one run, and the next column's run touches it.
            for rows in [rows0, rows1] {
                assert_eq!(
                    rows.len() as u16,
                    rows[rows.len() - 1] - rows[0] + 1,
                    "{width}x{height}: a gap inside column {x0}: {rows:?}\n{}",
                    terminal.backend()
                );
            }
            assert_eq!(
                x1 - x0,
                1,
                "{width}x{height}: columns {x0} and {x1} are apart"
            );
            let touches =
                rows1[0] <= rows0[rows0.len() - 1] + 1 && rows0[0] <= rows1[rows1.len() - 1] + 1;
            assert!(
                touches,
                "{width}x{height}: columns {x0} and {x1} do not touch\n{}",
                terminal.backend()
            );
        }
        // The legend (the chart's bottom border) holds whole items only.
        let text = format!("{}", terminal.backend());
        let legend = text
            .lines()
            .find(|l| l.contains("SGD train"))
            .expect("a legend line");
        for item in ["SGD train", "SWA train", "SWA start"] {
            let start = item.split(' ').next().unwrap();
            for (i, _) in legend.match_indices(start) {
                assert!(
                    legend[i..].starts_with(item)
                        || !legend[i..].starts_with(&item[..item.len() - 2]),
                    "{width}x{height}: '{item}' is cut in {legend}"
                );
            }
        }
    }
}

#[test]
fn a_narrow_legend_drops_whole_items_instead_of_cutting_one() {
    let app = history(colour());
    let terminal = screen(&app, 60, 24);
    let text = format!("{}", terminal.backend());
    let legend = text
        .lines()
        .find(|l| l.contains("SGD train"))
        .expect("legend");
    for cut in ["SWA star ", "SWA st ", "SGD tes ", "SWA trai "] {
        assert!(!legend.contains(cut), "{legend}");
    }
}

/// The dashboard on the plane view with a finished 21x21 plane of a known asymmetric valley.
fn with_plane(theme: Theme) -> App {
    let mut app = history(theme);
    let plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 21, 21);
    app.handle_event(Event::PlaneFinished(Box::new(plane)));
    app.update(Action::ShowView(3));
    app
}

#[test]
fn plane_view_at_80x24() {
    insta::assert_snapshot!(screen(&with_plane(colour()), 80, 24).backend());
}

/// A Hessian plane names its eigenvectors and says their eigenvalues.
#[test]
fn a_hessian_plane_says_its_eigenvectors_and_eigenvalues() {
    use crate::probe::plane::{PlaneKind, PlaneSpec};
    let mut app = history(colour());
    let mut plane = crate::probe::plane::valley_fixture("002-hessian-swa", 21, 21);
    plane.spec = PlaneSpec {
        eigenvectors: Some((1, 3)),
        ..PlaneSpec::for_kind(PlaneKind::Hessian)
    };
    plane.eigenvalues = Some((12.5, 3.25));
    plane.hessian_steps = Some(24);
    app.handle_event(Event::PlaneFinished(Box::new(plane)));
    app.update(Action::ShowView(3));
    let text = format!("{}", screen(&app, 160, 48).backend());
    for expected in [
        "d₁ Hessian eigenvector 1 · d₂ Hessian",
        "λ1 12.5000 · λ3 3.2500",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
}

/// The run's path on a plane: the start, epoch ends and SWA snapshots where the plane holds
/// them, an `x` where it does not, and nothing outside the grid.
#[test]
fn a_plane_draws_the_runs_path() {
    use crate::trajectory::{PathPoint, Projection, TrajectoryPoint};
    let mut app = history(colour());
    let mut plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 21, 21);
    let at = |epoch: u32, snapshot: bool, x: f64, y: f64, residual: f64| PathPoint {
        at: TrajectoryPoint {
            epoch,
            step: u64::from(epoch) * 79,
            swa_snapshot: snapshot,
        },
        projection: Projection { x, y, residual },
    };
    plane.path = vec![
        at(0, false, -0.4, -0.8, 0.1),
        at(1, false, 0.5, 0.7, 0.2),
        at(2, false, 1.2, -0.5, 0.9),
        at(3, true, 0.7, 0.3, 0.1),
        at(4, true, 3.0, 0.0, 0.1),
    ];
    app.handle_event(Event::PlaneFinished(Box::new(plane)));
    app.update(Action::ShowView(3));
    let terminal = screen(&app, 160, 48);
    let text = format!("{}", terminal.backend());
    assert!(text.contains("path 5 iterates, 4 held"), "{text}");
    let map: String = text
        .lines()
        .filter(|l| l.contains('▀'))
        .map(|l| l.split("││").next().unwrap_or(""))
        .collect();
    for letter in ['0', '+', 'x', 'o'] {
        assert_eq!(
            map.matches(letter).count(),
            1,
            "{letter} once on the map (epoch 4 lies outside the grid):\n{text}"
        );
    }
}

#[test]
fn plane_view_at_160x48() {
    let mut app = with_plane(colour());
    // The cursor two columns right of SWA, on the floor of the valley (x = 0.3 is 8 steps
    // of 0.1 from -0.5).
    for _ in 0..3 {
        app.update(Action::CursorRight);
    }
    insta::assert_snapshot!(screen(&app, 160, 48).backend());
}

#[test]
fn plane_view_in_ascii_is_shaded() {
    let app = with_plane(Theme {
        color: false,
        ascii: true,
    });
    let text = format!("{}", screen(&app, 80, 24).backend());
    assert!(text.is_ascii(), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_plane_heatmap_is_coloured_by_the_loss_with_contours_and_the_iterates_marked() {
    let app = with_plane(colour());
    let terminal = screen(&app, 160, 48);
    let buffer = terminal.backend().buffer();
    let mut colours = std::collections::HashSet::new();
    let (mut contours, mut letters) = (0, String::new());
    for cell in buffer.content() {
        if let ratatui::style::Color::Rgb(r, g, b) = cell.bg {
            colours.insert((r, g, b));
            match cell.symbol() {
                "·" => contours += 1,
                "A" | "S" => letters += cell.symbol(),
                _ => {}
            }
        }
    }
    assert!(
        colours.len() > 20,
        "a colour map, not a few flat colours: {}",
        colours.len()
    );
    assert!(
        contours > 10,
        "contour lines at the legend's levels: {contours}"
    );
    // SWA (A) and SGD (S); the cursor starts on SWA and shows it reversed.
    assert!(letters.contains('A') && letters.contains('S'), "{letters}");
    let reversed = buffer
        .content()
        .iter()
        .filter(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED))
        .map(|c| c.symbol())
        .collect::<String>();
    assert_eq!(reversed, "A");
}

#[test]
fn the_plane_view_fills_in_while_the_plane_runs() {
    let mut app = history(colour());
    app.update(Action::ShowView(3));
    let plane = crate::probe::plane::valley_fixture("002-swa-sgd-swa", 9, 9);
    app.handle_event(Event::PlaneStarted(Box::new(plane.header(2.0))));
    let text = format!("{}", screen(&app, 100, 30).backend());
    assert!(text.contains("0/81 points"), "{text}");
    // The first, coarse pass: every 4th point and the last row and column.
    let coarse = crate::probe::plane::coarse_to_fine(9, 9);
    for &(i, j) in &coarse[..9] {
        app.handle_event(Event::PlanePoint {
            id: plane.id.clone(),
            i,
            j,
            point: *plane.at(i, j),
        });
    }
    let text = format!("{}", screen(&app, 100, 30).backend());
    assert!(text.contains("9/81 points"), "{text}");
    assert!(text.contains("lowest"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_plane_views_export_holds_the_planes_points() {
    let app = with_plane(colour());
    let data = crate::ui::screenshot::screen_data(&app);
    assert_eq!(data.len(), 1);
    let (name, csv) = &data[0];
    assert_eq!(name, "plane-001-swa-sgd-swa");
    assert!(csv.starts_with("x,y,train_loss,train_acc,test_loss,test_acc,"));
    assert_eq!(csv.lines().count(), 1 + 21 * 21);
}

/// From Enter until its first point, a plane's view says it is being measured; its ETA comes
/// from the points' own times ("estimating" until two have come); Esc is answered at once.
#[test]
fn a_plane_being_set_up_is_said_and_its_eta_comes_from_its_points() {
    let mut app = history(colour());
    app.update(Action::OpenPlaneForm);
    let form = format!("{}", screen(&app, 120, 36).backend());
    assert!(
        form.contains("441 points, their cost timed before the first"),
        "{form}"
    );
    app.tick(100.0);
    assert!(matches!(
        app.update(Action::FirePlane),
        Some(crate::protocol::Command::Plane(_))
    ));
    let text = format!("{}", screen(&app, 120, 36).backend());
    assert!(text.contains("measuring the plane"), "{text}");
    assert!(!text.contains("no plane yet"), "{text}");

    // The set-up took 60 s; then a point every 2 s.
    let plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 21, 21);
    app.handle_event(Event::PlaneStarted(Box::new(plane.header(2.0))));
    let order = crate::probe::plane::coarse_to_fine(21, 21);
    let arrive = |app: &mut App, k: usize, at: f64| {
        app.tick(at);
        let (i, j) = order[k];
        app.handle_event(Event::PlanePoint {
            id: plane.id.clone(),
            i,
            j,
            point: *plane.at(i, j),
        });
    };
    arrive(&mut app, 0, 160.0);
    let status = job_status(&app).unwrap();
    assert!(
        status.contains("1/441 pts") && status.contains("ETA estimating"),
        "{status}"
    );
    for k in 1..11 {
        arrive(&mut app, k, 160.0 + 2.0 * k as f64);
    }
    // 430 points left at 2 s each, not at the 7 s the set-up would make them.
    let status = job_status(&app).unwrap();
    assert!(status.contains("11/441 pts"), "{status}");
    assert!(status.contains("ETA 14:20"), "{status}");

    // Esc is heard at once, though the worker stops only after its point.
    assert_eq!(
        app.update(Action::CancelProbe),
        Some(crate::protocol::Command::CancelProbe)
    );
    assert!(
        job_status(&app)
            .unwrap()
            .contains("cancelling after this point"),
        "{:?}",
        job_status(&app)
    );
    assert!(
        app.log
            .back()
            .unwrap()
            .contains("cancelling plane swa-sgd 21x21"),
        "{:?}",
        app.log.back()
    );
    // With the plane stored, the form says what the next one will cost.
    let mut done = plane.clone();
    done.cost.seconds_per_point = 0.5;
    app.handle_event(Event::PlaneFinished(Box::new(done)));
    app.update(Action::OpenPlaneForm);
    let form = format!("{}", screen(&app, 120, 36).backend());
    assert!(
        form.contains("441 points ≈ 3:41 at 0.50 s a point"),
        "{form}"
    );
}

/// A slice through one measured point has one value: its axis gets distinct ticks.
#[test]
fn a_slice_of_one_point_has_sane_ticks() {
    let mut app = history(colour());
    app.update(Action::ShowView(3));
    let plane = crate::probe::plane::valley_fixture("002-swa-sgd-swa", 9, 9);
    app.handle_event(Event::PlaneStarted(Box::new(plane.header(2.0))));
    app.handle_event(Event::PlanePoint {
        id: plane.id.clone(),
        i: 0,
        j: 0,
        point: *plane.at(0, 0),
    });
    let text = format!("{}", screen(&app, 120, 40).backend());
    for line in text.lines() {
        let repeated = line
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(3)
            .any(|w| w[0] == w[1] && w[1] == w[2] && w[0].parse::<f64>().is_ok());
        assert!(!repeated, "a tick label repeated: {line}\n{text}");
    }
}

/// The history run with a finished curvature job and λ_max tracked every 3 epochs.
fn with_curvature(theme: Theme) -> App {
    let mut app = history(theme);
    app.handle_event(Event::CurvatureFinished(Box::new(
        crate::curvature::fixture("001-both"),
    )));
    for epoch in (0..=15).step_by(3) {
        let row = |centre: &str, lambda: f64| crate::curvature::track::TrackRow {
            epoch,
            step: u64::from(epoch) * 79,
            lr: if epoch < 9 { 0.05 } else { 0.02 },
            centre: centre.into(),
            top_eigenvalue: lambda,
            residual: 0.001,
            trace: None,
            loss: 0.3,
            measured_on: "training loss on 256 training samples".into(),
            seconds: 6.0,
        };
        let mut rows = vec![row("sgd", 4.0 + f64::from(epoch))];
        if epoch >= 9 {
            rows.push(row("swa", 2.0 + 0.6 * f64::from(epoch)));
        }
        app.handle_event(Event::CurvatureTracked(rows));
    }
    app.update(Action::ShowView(4));
    app
}

#[test]
fn curvature_view_at_80x24() {
    insta::assert_snapshot!(screen(&with_curvature(colour()), 80, 24).backend());
}

#[test]
fn curvature_view_at_160x48() {
    let text = format!("{}", screen(&with_curvature(colour()), 160, 48).backend());
    for needle in [
        "λ1",
        "trace",
        "worst sharpness",
        "spectral density",
        "SWA λ_max 7.50",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn curvature_view_in_ascii_and_without_a_job() {
    let app = with_curvature(Theme {
        color: false,
        ascii: true,
    });
    let text = format!("{}", screen(&app, 100, 30).backend());
    assert!(text.is_ascii(), "{text}");
    let mut empty = history(colour());
    empty.update(Action::ShowView(4));
    let text = format!("{}", screen(&empty, 80, 24).backend());
    assert!(text.contains("H measures the Hessian"), "{text}");
}

#[test]
fn the_dashboard_charts_tracked_lambda_max_against_two_over_lr() {
    let mut app = with_curvature(colour());
    app.update(Action::ShowView(0));
    for _ in 0..3 {
        app.update(Action::ToggleQuantity);
    }
    app.update(Action::CursorRight);
    let text = format!("{}", screen(&app, 120, 32).backend());
    assert!(text.contains("top Hessian eigenvalue λ_max"), "{text}");
    assert!(
        text.contains("SGD λ_max 19"),
        "the cursor's readout: {text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn probe_view_with_a_connection_at_80x24() {
    let mut app = with_probes(colour());
    app.handle_event(crate::protocol::Event::ConnectFinished(Box::new(
        crate::probe::connect::fixture("001-swa-sgd"),
    )));
    insta::assert_snapshot!(screen(&app, 80, 24).backend());
}

#[test]
fn connect_form_at_80x24() {
    let mut app = with_probes(colour());
    app.overlay = Some(crate::ui::app::Overlay::ConnectForm);
    insta::assert_snapshot!(screen(&app, 80, 24).backend());
}

/// The history on a clock axis: the run's own (`Time`) or the wall clock of a run that started
/// at 14:02:30 UTC.
fn on_clock(x: crate::ui::app::XAxis) -> App {
    let mut app = history(colour());
    app.time_zone = jiff::tz::TimeZone::UTC;
    if let Some(info) = app.info.as_mut() {
        // 2026-12-05 14:02:30 UTC.
        info.started_unix_s = Some(1_796_479_350.0);
    }
    app.chart.x = x;
    app
}

#[test]
fn dashboard_on_the_runs_clock_at_80x24() {
    let text = format!(
        "{}",
        screen(&on_clock(crate::ui::app::XAxis::Time), 80, 24).backend()
    );
    assert!(text.contains(" time "), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn dashboard_on_the_wall_clock_at_80x24_and_160x48() {
    let app = on_clock(crate::ui::app::XAxis::Clock);
    let small = format!("{}", screen(&app, 80, 24).backend());
    assert!(small.contains("14:0"), "ticks at the time of day: {small}");
    insta::assert_snapshot!("wall_clock_80x24", small);
    insta::assert_snapshot!("wall_clock_160x48", screen(&app, 160, 48).backend());
    // A run that did not record its start keeps its own clock and says so.
    let mut unknown = app;
    if let Some(info) = unknown.info.as_mut() {
        info.started_unix_s = None;
    }
    let text = format!("{}", screen(&unknown, 160, 48).backend());
    assert!(text.contains("time (start not recorded)"), "{text}");
}

/// The history with 400 noisy per-step reports over epochs 12 and 13, the per-step curve on
/// and smoothed: the band behind it.
fn with_band() -> App {
    let mut app = history(colour());
    for k in 0..400u32 {
        let step = 900 + u64::from(k);
        let noise = ((f64::from(k) * 12.9898).sin() * 43_758.545).fract() - 0.5;
        app.handle_event(Event::Progress(crate::protocol::Progress {
            epoch: 12 + k / 200,
            batch: k % 79,
            batches_per_epoch: 79,
            step,
            lr: 0.01,
            samples_per_s: 1540.0,
            running_loss: 0.25,
            running_acc: 0.91,
            recent_loss: 0.25 + 0.12 * noise,
            recent_acc: 0.91,
            elapsed_s: 132.0 + f64::from(k) * 0.05,
            training_s: 120.0,
        }));
    }
    app.update(Action::TogglePerStep);
    for _ in 0..3 {
        app.update(Action::ToggleSmoothing);
    }
    app
}

#[test]
fn the_per_step_band_at_80x24_and_160x48() {
    let app = with_band();
    let curves = crate::ui::curves::curves(&app);
    let per_step = &curves[0];
    assert_eq!(per_step.name, "train per step, min–max band");
    let lo = per_step
        .envelope
        .iter()
        .map(|e| e.1)
        .fold(f64::INFINITY, f64::min);
    let hi = per_step
        .envelope
        .iter()
        .map(|e| e.2)
        .fold(f64::NEG_INFINITY, f64::max);
    let raw = &per_step.values;
    assert_eq!(lo, raw.iter().copied().fold(f64::INFINITY, f64::min));
    assert_eq!(hi, raw.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    assert!(curves[1..].iter().all(|c| c.envelope.is_empty()));
    insta::assert_snapshot!("band_80x24", screen(&app, 80, 24).backend());
    insta::assert_snapshot!("band_160x48", screen(&app, 160, 48).backend());
    // In ASCII the band is drawn in colons behind the curves.
    let mut ascii = app;
    ascii.theme = Theme {
        color: false,
        ascii: true,
    };
    let mut terminal = screen(&ascii, 80, 24);
    terminal
        .draw(|f| {
            render(&ascii, f);
            crate::ui::theme::asciify(f.buffer_mut());
        })
        .unwrap();
    let text = format!("{}", terminal.backend());
    assert!(text.is_ascii(), "{text}");
    let buffer = terminal.backend().buffer();
    let in_the_plot = (2..12u16)
        .flat_map(|y| (6..78u16).map(move |x| (x, y)))
        .filter(|&(x, y)| buffer[(x, y)].symbol() == ":")
        .count();
    assert!(in_the_plot > 10, "{text}");
}
