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
