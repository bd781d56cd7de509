use super::*;
use crate::ui::keymap::action_for;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::PathBuf;

fn theme() -> Theme {
    Theme {
        color: true,
        ascii: false,
    }
}

/// The quick experiment's run, as the worker announces it.
pub(crate) fn info() -> RunInfo {
    RunInfo {
        experiment: "quick".into(),
        model: "preresnet-8 (BN, 77 562 parameters)".into(),
        data: "embedded".into(),
        device: "cpu".into(),
        device_reason: "requested".into(),
        run_dir: PathBuf::from("runs/quick"),
        epochs: 15,
        batches_per_epoch: 79,
        swa_start_epoch: Some(9),
        program_version: "0.1.0".into(),
        seed: 1,
        probe: Default::default(),
        ablation_probe: Default::default(),
        ablation_directions: 5,
        curvature: Default::default(),
        started_unix_s: None,
    }
}

/// A finished probe as the worker reports it: a V-shaped curve, flat on the + side.
pub fn probe_result(id: &str) -> crate::probe::ProbeResult {
    use crate::probe::*;
    let points: Vec<ProbePoint> = (0..9)
        .map(|i| {
            let t = -4.0 + i as f64;
            let loss = if t >= 0.0 {
                0.3 + 0.05 * t
            } else {
                0.3 - 0.2 * t
            };
            ProbePoint {
                t,
                train_loss: loss,
                train_acc: 0.9,
                test_loss: loss + 0.05,
                test_acc: 0.88,
                train_loss_se: Some(0.01),
                test_loss_se: Some(0.012),
            }
        })
        .collect();
    let ts: Vec<f64> = points.iter().map(|p| p.t).collect();
    let train: Vec<f64> = points.iter().map(|p| p.train_loss).collect();
    let test: Vec<f64> = points.iter().map(|p| p.test_loss).collect();
    ProbeResult {
        id: id.into(),
        spec: ProbeSpec {
            from: Some(-4.0),
            to: Some(4.0),
            points: Some(9),
            ..Default::default()
        }
        .resolved(1, false),
        centre: ProbeCentre {
            iterate: "swa".into(),
            epoch: 12,
            step: 948,
            swa_n: 4,
            source: "live".into(),
        },
        direction: DirectionInfo {
            norm: 1.0,
            centre_norm: 21.5,
            sign_consistency: 0.62,
            eigenvalue: None,
            hessian_iterations: None,
        },
        train_score: score::score(&ts, &train, &[], score::Scoring::new(3.0, 0.01)),
        test_score: score::score(&ts, &test, &[], score::Scoring::new(3.0, 0.01)),
        shift: shift::random_shift(&ts, &train, &test, 1.0, 10),
        points,
        cost: ProbeCost {
            seconds: 3.0,
            seconds_per_point: 0.3,
            forward_seconds: 0.2,
            ratio_to_forward: 1.5,
        },
        created: "2026-11-27T12:00:00Z".into(),
        samples: None,
        auto_range: None,
    }
}

/// A finished ablation of `kind` over three arms, with the arms' probes.
pub fn ablation_result(
    kind: crate::ablation::AblationKind,
) -> (
    crate::ablation::AblationResult,
    Vec<crate::probe::ProbeResult>,
) {
    let names = ["bn-only", "non-bn", "all"];
    let probes: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut p = probe_result(&format!("00{}-uniform-swa", i + 1));
            for point in &mut p.points {
                point.train_loss *= 1.0 + i as f64 * 0.5;
            }
            p.spec.params = match *name {
                "bn-only" => crate::probe::ParamGroup::Bn,
                "non-bn" => crate::probe::ParamGroup::NonBn,
                _ => crate::probe::ParamGroup::All,
            };
            p
        })
        .collect();
    let arms = names
        .iter()
        .zip(&probes)
        .map(|(name, p)| crate::ablation::arm(name, ".", std::slice::from_ref(p)))
        .collect();
    let result = crate::ablation::AblationResult {
        id: format!("001-{}", kind.as_str()),
        kind,
        threshold: 3.0,
        spec: crate::probe::ProbeSpec::default(),
        arms,
        comparisons: Vec::new(),
        swa_gain: crate::ablation::SwaGain {
            bn: Some(0.05),
            none: Some(-0.002),
        },
        created: "2026-11-27T12:00:00Z".into(),
    };
    (result, probes)
}

/// A stand-in for the worker: answers each command the way the engine does.
fn fake_engine(command: Command) -> Vec<Event> {
    match command {
        Command::Plane(spec) => {
            let (nx, ny) = spec.points;
            let result = crate::probe::plane::valley_fixture("001-swa-sgd-swa", nx, ny);
            let mut events = vec![Event::PlaneStarted(Box::new(result.header(2.0)))];
            for (i, j) in crate::probe::plane::coarse_to_fine(nx, ny) {
                events.push(Event::PlanePoint {
                    id: result.id.clone(),
                    i,
                    j,
                    point: *result.at(i, j),
                });
            }
            events.push(Event::PlaneFinished(Box::new(result)));
            events
        }
        Command::Probe(_) => {
            let result = probe_result("001-uniform-swa");
            let grid: Vec<f64> = result.points.iter().map(|p| p.t).collect();
            let mut events = vec![Event::ProbeStarted {
                id: result.id.clone(),
                summary: result.spec.summary(),
                grid,
                seconds_per_point: 1.0,
            }];
            for (index, point) in result.points.iter().enumerate() {
                events.push(Event::ProbePoint {
                    id: result.id.clone(),
                    index,
                    point: *point,
                });
            }
            events.push(Event::ProbeFinished(Box::new(result)));
            events
        }
        Command::Curvature(_) => {
            let result = crate::curvature::fixture("001-both");
            vec![
                Event::CurvatureStarted {
                    label: "curvature at epoch 15 (live)".into(),
                    plan: "training loss on 3 disjoint sets of 256 training samples".into(),
                    products: 242,
                    expected_s: 64.0,
                },
                Event::CurvatureProgress {
                    done: 121,
                    planned: 242,
                    what: "trace".into(),
                },
                Event::CurvatureFinished(Box::new(result)),
            ]
        }
        Command::Connect(request) => vec![
            Event::ConnectStarted {
                label: request.describe(),
            },
            Event::ConnectFinished(Box::new(crate::probe::connect::fixture("001-swa-sgd"))),
        ],
        Command::CancelProbe => vec![Event::ProbeFailed {
            message: "probe cancelled".into(),
        }],
        Command::Ablate { kind, .. } => {
            let (result, probes) = ablation_result(kind);
            vec![Event::AblationFinished {
                result: Box::new(result),
                probes,
            }]
        }
        Command::StartTwin => vec![Event::Twin(Box::new(Event::Ready(Box::new(info()))))],
        Command::TrackStaleBn(_) => vec![Event::Log("stale".into())],
        Command::Pause => vec![Event::Paused],
        Command::Resume => vec![Event::Resumed],
        Command::Checkpoint => vec![Event::CheckpointWritten {
            path: "checkpoints/latest.safetensors".into(),
            epoch: 3,
            step: 237,
        }],
        Command::Stop => vec![
            Event::CheckpointWritten {
                path: "checkpoints/latest.safetensors".into(),
                epoch: 3,
                step: 240,
            },
            Event::Finished(Outcome::Stopped),
        ],
    }
}

/// Presses a key the way the event loop does: keymap, update, and the worker's answer.
fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Option<Command> {
    let action = action_for(KeyEvent::new(code, modifiers), app.bindings())?;
    let command = app.update(action);
    if let Some(c) = command.clone() {
        for event in fake_engine(c) {
            app.handle_event(event);
        }
    }
    command
}

fn key(app: &mut App, c: char) -> Option<Command> {
    press(app, KeyCode::Char(c), KeyModifiers::NONE)
}

fn running() -> App {
    let mut app = App::new(theme(), true);
    app.handle_event(Event::Ready(Box::new(info())));
    app
}

#[test]
fn space_pauses_and_resumes_through_the_worker() {
    let mut app = running();
    assert_eq!(app.state, RunState::Running);
    assert_eq!(key(&mut app, ' '), Some(Command::Pause));
    assert_eq!(app.state, RunState::Paused);
    assert_eq!(key(&mut app, ' '), Some(Command::Resume));
    assert_eq!(app.state, RunState::Running);
}

#[test]
fn quitting_while_training_asks_first_and_saves_a_checkpoint() {
    let mut app = running();
    assert_eq!(key(&mut app, 'q'), None);
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    assert_eq!(key(&mut app, 'n'), None, "n keeps training");
    assert_eq!(app.overlay, None);
    assert!(!app.should_quit);
    key(&mut app, 'q');
    assert_eq!(key(&mut app, 'y'), Some(Command::Stop));
    assert_eq!(app.last_checkpoint, Some((3, 240)));
    assert_eq!(app.state, RunState::Stopped);
    assert!(app.should_quit, "quits once the worker has stopped");
}

#[test]
fn quitting_a_finished_run_does_not_ask() {
    let mut app = running();
    app.handle_event(Event::Finished(Outcome::Completed));
    assert_eq!(key(&mut app, 'q'), None);
    assert!(app.should_quit);
    assert_eq!(app.overlay, None);
}

#[test]
fn ctrl_c_stops_and_quits_without_asking() {
    let mut app = running();
    let command = press(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(command, Some(Command::Stop));
    assert!(app.should_quit);
}

#[test]
fn chart_toggles_flip_their_settings() {
    let mut app = running();
    key(&mut app, 'l');
    key(&mut app, 's');
    key(&mut app, 'a');
    key(&mut app, 'x');
    assert!(app.chart.log_y && app.chart.smooth > 0.0);
    assert_eq!(
        (app.chart.quantity, app.chart.x),
        (Quantity::Accuracy, XAxis::Step)
    );
    key(&mut app, 'x');
    assert_eq!(app.chart.x, XAxis::Time);
    key(&mut app, 'x');
    assert_eq!(app.chart.x, XAxis::Clock);
    key(&mut app, 'x');
    assert_eq!(app.chart.x, XAxis::Epoch);
    key(&mut app, 'x');
    key(&mut app, 't');
    assert_eq!(app.chart.splits, SplitFilter::TrainOnly);
    key(&mut app, 't');
    assert_eq!(app.chart.splits, SplitFilter::TestOnly);
    key(&mut app, 't');
    assert_eq!(app.chart.splits, SplitFilter::Both);
    assert_eq!(key(&mut app, 'c'), Some(Command::Checkpoint));
}

#[test]
fn help_opens_and_escape_closes_it() {
    let mut app = running();
    key(&mut app, '?');
    assert_eq!(app.overlay, Some(Overlay::Help));
    assert_eq!(
        key(&mut app, ' '),
        None,
        "keys of the view are inert under the help"
    );
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(app.overlay, None);
}

#[test]
fn a_watched_run_cannot_be_commanded_and_quits_at_once() {
    let mut app = App::new(theme(), false);
    app.handle_event(Event::Ready(Box::new(info())));
    assert_eq!(app.state, RunState::Watching);
    assert_eq!(key(&mut app, ' '), None);
    assert!(app.log.back().unwrap().contains("not controlled from here"));
    key(&mut app, 'q');
    assert!(app.should_quit);
}

#[test]
fn metrics_update_the_series_and_the_latest_values() {
    let mut app = running();
    for epoch in 0..3u32 {
        app.handle_event(Event::Metric(crate::protocol::sgd_test_row(epoch, 79)));
    }
    assert_eq!(app.series[&(Iterate::Sgd, Split::Test)].pushed(), 3);
    assert_eq!(app.latest[&(Iterate::Sgd, Split::Test)].epoch, 2);
    assert_eq!(app.last_epoch(), 2);
}

#[test]
fn the_log_is_bounded() {
    let mut app = running();
    for i in 0..5000 {
        app.log(format!("line {i}"));
    }
    assert_eq!(app.log.len(), LOG_CAPACITY);
    assert!(app.log.back().unwrap().ends_with("line 4999"));
}

#[test]
fn a_signal_quits_after_the_worker_stops() {
    let mut app = running();
    app.quit_when_finished();
    assert_eq!(app.state, RunState::Stopping);
    assert!(!app.should_quit);
    app.handle_event(Event::Finished(Outcome::Stopped));
    assert!(app.should_quit);
}

#[test]
fn p_opens_the_form_and_enter_fires_the_probe_into_the_probe_view() {
    let mut app = running();
    key(&mut app, 'p');
    assert_eq!(app.overlay, Some(Overlay::ProbeForm));
    // Change the direction with → and type a number of points.
    press(&mut app, KeyCode::Right, KeyModifiers::NONE);
    assert_eq!(app.form.fields[1].text(), "gaussian");
    let command = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    let Some(Command::Probe(request)) = command else {
        panic!("Enter fires a probe: {command:?}")
    };
    assert_eq!(
        request.spec.direction,
        crate::probe::DirectionKind::Gaussian
    );
    assert_eq!(app.view, View::Probes);
    assert_eq!(app.overlay, None);
    assert!(app.probes.live.is_none(), "the fake engine finished it");
    assert_eq!(app.probes.results.len(), 1);
    assert!(app.log.iter().any(|l| l.contains("probe 001-uniform-swa")));
}

#[test]
fn an_invalid_form_is_not_fired() {
    let mut app = running();
    key(&mut app, 'p');
    while app.form.fields[app.form.selected].name != "to" {
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    }
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace, KeyModifiers::NONE);
    }
    key(&mut app, '-');
    key(&mut app, '9');
    key(&mut app, '9');
    assert!(app.form.error.is_some());
    assert_eq!(press(&mut app, KeyCode::Enter, KeyModifiers::NONE), None);
    assert_eq!(
        app.overlay,
        Some(Overlay::ProbeForm),
        "the form stays open with the error"
    );
}

#[test]
fn escape_in_the_probe_view_cancels_a_running_probe() {
    let mut app = running();
    app.update(Action::ShowView(1));
    assert_eq!(
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE),
        None,
        "nothing to cancel"
    );
    app.handle_event(Event::ProbeStarted {
        id: "x".into(),
        summary: "uniform".into(),
        grid: vec![0.0, 1.0, 2.0],
        seconds_per_point: 1.0,
    });
    assert_eq!(
        press(&mut app, KeyCode::Esc, KeyModifiers::NONE),
        Some(Command::CancelProbe)
    );
    assert!(app.probes.live.is_none());
}

#[test]
fn b_opens_the_ablation_menu_whose_keys_send_ablations() {
    let mut app = running();
    key(&mut app, 'b');
    assert_eq!(app.overlay, Some(Overlay::AblationMenu));
    let command = key(&mut app, 'g');
    assert_eq!(
        command,
        Some(Command::Ablate {
            kind: crate::ablation::AblationKind::Groups,
            directions: None
        })
    );
    assert_eq!(app.view, View::Ablations);
    assert_eq!(app.ablations.len(), 1);
    key(&mut app, 'b');
    assert_eq!(key(&mut app, 't'), Some(Command::StartTwin));
    assert!(
        app.twin.as_ref().is_some_and(|t| t.info.is_some()),
        "the twin's events feed its own view"
    );
    key(&mut app, 'b');
    assert_eq!(key(&mut app, 'x'), Some(Command::TrackStaleBn(true)));
}

#[test]
fn a_failed_probe_stays_on_the_probe_board_until_the_next_one_starts() {
    let mut app = running();
    app.handle_event(Event::ProbeFailed {
        message: "probe failed: view size is not compatible".into(),
    });
    assert_eq!(
        app.probes.failure.as_deref(),
        Some("probe failed: view size is not compatible")
    );
    assert!(app.probes.live.is_none());
    app.handle_event(Event::ProbeStarted {
        id: "002-uniform-swa".into(),
        summary: "uniform".into(),
        grid: vec![-1.0, 0.0, 1.0],
        seconds_per_point: 1.0,
    });
    assert_eq!(app.probes.failure, None);
}

#[test]
fn a_resumed_run_opens_with_its_history() {
    let mut app = running();
    app.handle_event(Event::History(Box::new(crate::protocol::History {
        rows: (0..4)
            .map(|e| crate::protocol::sgd_test_row(e, 79))
            .collect(),
        probes: vec![
            probe_result("001-uniform-swa"),
            probe_result("002-uniform-sgd"),
        ],
        batches: Vec::new(),
        ablations: Vec::new(),
        planes: Vec::new(),
        curvature: Vec::new(),
        curvature_track: Vec::new(),
        connections: Vec::new(),
        unreadable: Vec::new(),
    })));
    assert_eq!(app.last_epoch(), 3);
    assert_eq!(app.series[&(Iterate::Sgd, Split::Test)].pushed(), 4);
    assert_eq!(app.probes.results.len(), 2);
    assert_eq!(app.probes.selected, 1, "the newest probe is shown");
    assert!(
        app.log
            .iter()
            .any(|l| l.contains("history: 3 epochs of metrics, 2 probes, 0 ablations")),
        "{:?}",
        app.log
    );
}

/// A fixed history: 12 epochs of the quick experiment, SWA from epoch 9, epoch 13 under way.
pub fn history(theme: crate::ui::theme::Theme) -> App {
    let mut app = App::new(theme, true);
    app.handle_event(Event::Ready(Box::new(RunInfo {
        data: "embedded Fashion-MNIST subset".into(),
        device_reason: "auto: no CUDA".into(),
        ..info()
    })));
    for epoch in 0..=12u32 {
        let e = f64::from(epoch);
        let sgd_train = 2.3 * (-0.35 * e).exp() + 0.22;
        let sgd_test = 2.3 * (-0.33 * e).exp() + 0.31 + 0.02 * (e * 1.7).sin();
        let mut rows = vec![
            (Iterate::Sgd, Split::Train, sgd_train, 1.0 - sgd_train / 2.6),
            (Iterate::Sgd, Split::Test, sgd_test, 1.0 - sgd_test / 2.6),
        ];
        if epoch >= 9 {
            rows.push((
                Iterate::Swa,
                Split::Train,
                sgd_train + 0.015,
                1.0 - (sgd_train + 0.015) / 2.6,
            ));
            rows.push((
                Iterate::Swa,
                Split::Test,
                sgd_test - 0.02,
                1.0 - (sgd_test - 0.02) / 2.6,
            ));
        }
        for (iterate, split, loss, acc) in rows {
            app.handle_event(Event::Metric(MetricRow {
                epoch,
                step: u64::from(epoch) * 79,
                iterate,
                split,
                loss,
                acc,
                lr: 0.01,
                elapsed_s: 11.0 * e,
                samples: 2000,
                swa_n: (iterate == Iterate::Swa).then(|| u64::from(epoch - 8)),
            }));
        }
    }
    app.handle_event(Event::Progress(Progress {
        epoch: 13,
        batch: 40,
        batches_per_epoch: 79,
        step: 988,
        lr: 0.01,
        samples_per_s: 1540.0,
        running_loss: 0.2506,
        running_acc: 0.912,
        recent_loss: 0.2431,
        recent_acc: 0.915,
        elapsed_s: 138.0,
        training_s: 120.0,
    }));
    app
}

#[test]
fn jobs_are_acknowledged_at_the_keypress_and_queued_in_order() {
    let mut app = running();
    app.tick(10.0);
    // Fire a probe from the form, then an ablation while it runs (the worker answers later).
    app.update(Action::OpenProbeForm);
    assert!(app.update(Action::FireProbe).is_some());
    assert!(
        app.log.back().unwrap().ends_with("started: probe uniform"),
        "{:?}",
        app.log
    );
    app.update(Action::OpenAblationMenu);
    assert!(app.update(Action::AblateSummary).is_some());
    assert!(
        app.log
            .back()
            .unwrap()
            .ends_with("queued: ablation summary, after probe uniform"),
        "{:?}",
        app.log
    );
    assert_eq!(app.jobs.queued.len(), 1);
    // The probe runs: its progress and time left are in the header's job status.
    let result = probe_result("001-uniform-swa");
    app.handle_event(Event::ProbeStarted {
        id: result.id.clone(),
        summary: "uniform".into(),
        grid: result.ts(),
        seconds_per_point: 1.0,
    });
    for index in 0..3 {
        app.handle_event(Event::ProbePoint {
            id: result.id.clone(),
            index,
            point: result.points[index],
        });
    }
    app.tick(16.0);
    let status = crate::ui::views::job_status(&app).unwrap();
    // 3 of 9 points in 6 s: 12 s left.
    assert_eq!(status, "probe uniform 3/9 pts 0:06 · ETA 0:12 · 1 queued");
    // It finishes: the ablation starts, with no known total for a summary.
    app.handle_event(Event::ProbeFinished(Box::new(result)));
    let job = app.jobs.running.as_ref().unwrap();
    assert_eq!(
        (job.label.as_str(), job.started_s),
        ("ablation summary", Some(16.0))
    );
    assert!(app.jobs.queued.is_empty());
    // Each probe of the ablation lands in the probe list as it finishes.
    app.handle_event(Event::ProbeFinished(Box::new(probe_result(
        "002-uniform-sgd",
    ))));
    assert_eq!(app.jobs.running.as_ref().unwrap().probes_done, 1);
    assert_eq!(app.probes.results.len(), 2);
    let (result, probes) = ablation_result(crate::ablation::AblationKind::Summary);
    app.handle_event(Event::AblationFinished {
        result: Box::new(result),
        probes,
    });
    assert!(app.jobs.running.is_none() && app.probes.live.is_none());
}

#[test]
fn after_an_ablation_the_probe_view_is_free_again() {
    let mut app = running();
    app.update(Action::ShowView(1));
    // An ablation's probe was under way when the ablation ended.
    app.handle_event(Event::ProbeStarted {
        id: "005-uniform-swa".into(),
        summary: "uniform".into(),
        grid: vec![-1.0, 0.0, 1.0],
        seconds_per_point: 1.0,
    });
    for id in ["001-uniform-swa", "002-uniform-swa", "003-uniform-swa"] {
        app.handle_event(Event::ProbeFinished(Box::new(probe_result(id))));
    }
    let (result, probes) = ablation_result(crate::ablation::AblationKind::Groups);
    app.handle_event(Event::AblationFinished {
        result: Box::new(result),
        probes,
    });
    assert!(app.probes.live.is_none(), "no probe is shown as running");
    assert_eq!(app.probes.selected, 2);
    key(&mut app, 'k');
    assert_eq!(app.probes.selected, 1, "↑/k moves through the probes");
    assert!(
        !app.offers(Action::CancelProbe),
        "Esc offers nothing to cancel"
    );
}

#[test]
fn only_keys_that_do_something_are_offered() {
    let mut app = running();
    assert!(app.offers(Action::TogglePause) && app.offers(Action::Checkpoint));
    assert!(!app.offers(Action::CancelProbe));
    app.handle_event(Event::Finished(Outcome::Completed));
    assert!(
        !app.offers(Action::TogglePause),
        "nothing to pause once finished"
    );
    assert!(!app.offers(Action::Checkpoint));
    assert!(
        app.offers(Action::OpenProbeForm),
        "the final weights still take probes"
    );
    let mut watched = App::new(theme(), false);
    watched.handle_event(Event::Ready(Box::new(info())));
    for action in [
        Action::TogglePause,
        Action::Checkpoint,
        Action::OpenProbeForm,
        Action::OpenAblationMenu,
        Action::CancelProbe,
    ] {
        assert!(!watched.offers(action), "{action:?} in watch");
    }
    assert!(watched.offers(Action::Quit) && watched.offers(Action::Help));
}

#[test]
fn the_value_cursor_walks_the_measurements_and_smoothing_cycles() {
    let mut app = history(theme());
    app.update(Action::CursorLeft);
    assert_eq!(
        app.chart.cursor,
        Some(12.0),
        "the first press: the newest epoch"
    );
    app.update(Action::CursorLeft);
    app.update(Action::CursorLeft);
    assert_eq!(app.chart.cursor, Some(10.0));
    app.update(Action::CursorRight);
    assert_eq!(app.chart.cursor, Some(11.0));
    app.update(Action::HideCursor);
    assert_eq!(app.chart.cursor, None);
    let mut strengths = Vec::new();
    for _ in 0..5 {
        app.update(Action::ToggleSmoothing);
        strengths.push(app.chart.smooth);
    }
    assert_eq!(strengths, [0.6, 0.8, 0.9, 0.95, 0.0]);
    app.update(Action::ToggleQuantity);
    app.update(Action::ToggleQuantity);
    assert_eq!(app.chart.quantity, Quantity::LearningRate);
}

#[test]
fn the_header_says_the_twin_still_trains() {
    let mut app = running();
    app.handle_event(Event::Finished(Outcome::Completed));
    app.handle_event(Event::Twin(Box::new(Event::Ready(Box::new(info())))));
    assert!(app.twin.as_ref().unwrap().state.is_live());
    let backend = ratatui::backend::TestBackend::new(120, 30);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    terminal
        .draw(|f| crate::ui::views::render(&app, f))
        .unwrap();
    let top: String = (0..120)
        .map(|x| terminal.backend().buffer()[(x, 0)].symbol().to_owned())
        .collect();
    assert!(top.contains("FINISHED · twin training"), "{top}");
}

#[test]
fn a_resumed_run_logs_on_its_own_clock_and_shows_long_phases() {
    let mut app = running();
    let mut row = crate::protocol::sgd_test_row(3, 79);
    row.elapsed_s = 125.0;
    app.handle_event(Event::History(Box::new(crate::protocol::History {
        rows: vec![row],
        probes: Vec::new(),
        batches: Vec::new(),
        ablations: Vec::new(),
        planes: Vec::new(),
        curvature: Vec::new(),
        curvature_track: Vec::new(),
        connections: Vec::new(),
        unreadable: Vec::new(),
    })));
    assert!(
        app.log.back().unwrap().starts_with("2:05 "),
        "{:?}",
        app.log
    );
    // A BN recomputation shows in the header while it runs and is logged with its time.
    app.tick(50.0);
    app.handle_event(Event::Phase(Some(
        "recomputing the average's BN statistics".into(),
    )));
    app.tick(53.0);
    let backend = ratatui::backend::TestBackend::new(160, 30);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    terminal
        .draw(|f| crate::ui::views::render(&app, f))
        .unwrap();
    let top: String = (0..160)
        .map(|x| terminal.backend().buffer()[(x, 0)].symbol().to_owned())
        .collect();
    assert!(
        top.contains("recomputing the average's BN statistics 0:03"),
        "{top}"
    );
    app.handle_event(Event::Phase(None));
    assert!(app.phase.is_none());
    assert!(
        app.log.back().unwrap().ends_with("BN statistics: 3 s"),
        "{:?}",
        app.log
    );
}

#[test]
fn shift_p_measures_a_plane_that_fills_in_and_the_cursor_walks_it() {
    let mut app = running();
    assert_eq!(key(&mut app, 'P'), None);
    assert_eq!(app.overlay, Some(Overlay::PlaneForm));
    // Make it 9x9: select columns, type 9; rows likewise.
    for (field, digit) in [("columns", '9'), ("rows", '9')] {
        while app.plane_form.fields[app.plane_form.selected].name != field {
            press(&mut app, KeyCode::Down, KeyModifiers::NONE);
        }
        key(&mut app, digit);
    }
    let command = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    let Some(Command::Plane(spec)) = command else {
        panic!("Enter fires the plane: {command:?}");
    };
    assert_eq!(spec.points, (9, 9));
    assert_eq!(app.view, View::Planes);
    assert!(app.overlay.is_none());
    // The fake engine ran it to the end: stored, shown, the job over.
    assert!(app.planes.live.is_none() && app.jobs.running.is_none());
    assert_eq!(app.planes.results.len(), 1);
    assert!(
        app.log
            .iter()
            .any(|l| l.contains("plane 001-swa-sgd-swa: swa-sgd 9x9"))
    );
    // The cursor starts on the centre (x = 0 is column 2 of -0.5..1.5 in steps of 0.25).
    press(&mut app, KeyCode::Right, KeyModifiers::NONE);
    assert_eq!(app.planes.cursor, Some((3, 4)));
    press(&mut app, KeyCode::Up, KeyModifiers::NONE);
    assert_eq!(app.planes.cursor, Some((3, 5)));
    for _ in 0..20 {
        press(&mut app, KeyCode::Right, KeyModifiers::NONE);
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    }
    assert_eq!(
        app.planes.cursor,
        Some((8, 0)),
        "the cursor stays on the grid"
    );
    key(&mut app, 'v');
    assert_eq!(app.planes.show, PlaneValue::Train);
    key(&mut app, 'v');
    assert_eq!(app.planes.show, PlaneValue::Gap);
    key(&mut app, 'g');
    assert!(
        app.planes.log && !app.chart.log_y,
        "g is the heatmap's log scale"
    );
}

#[test]
fn a_running_plane_is_cancelled_with_esc_and_its_failure_shown() {
    let mut app = running();
    app.update(Action::ShowView(3));
    let plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 5, 5);
    app.handle_event(Event::PlaneStarted(Box::new(plane.header(2.0))));
    app.handle_event(Event::PlanePoint {
        id: plane.id.clone(),
        i: 4,
        j: 4,
        point: *plane.at(4, 4),
    });
    // A point of another plane is not this one's.
    app.handle_event(Event::PlanePoint {
        id: "other".into(),
        i: 0,
        j: 0,
        point: *plane.at(0, 0),
    });
    assert_eq!(app.planes.live.as_ref().unwrap().done(), 1);
    assert_eq!(app.update(Action::CancelProbe), Some(Command::CancelProbe));
    app.handle_event(Event::ProbeFailed {
        message: "probe cancelled".into(),
    });
    assert!(app.planes.live.is_none());
    assert!(
        app.planes.results.is_empty(),
        "a cancelled plane is not stored"
    );
}

fn track_row(epoch: u32, centre: &str, lambda: f64) -> crate::curvature::track::TrackRow {
    crate::curvature::track::TrackRow {
        epoch,
        step: u64::from(epoch) * 79,
        lr: if epoch < 5 { 0.05 } else { 0.02 },
        centre: centre.into(),
        top_eigenvalue: lambda,
        residual: 0.001,
        trace: Some(crate::curvature::Estimate {
            value: 20.0 * lambda,
            interval: None,
        }),
        loss: 0.3,
        measured_on: "training loss on 256 training samples".into(),
        seconds: 6.0,
    }
}

#[test]
fn shift_h_fires_a_curvature_job_that_lands_in_the_curvature_view() {
    let mut app = running();
    assert_eq!(key(&mut app, 'H'), None);
    assert_eq!(app.overlay, Some(Overlay::CurvatureForm));
    // Three sets to two: select the field and type.
    while app.curvature_form.fields[app.curvature_form.selected].name != "sets" {
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    }
    key(&mut app, '2');
    let command = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    let Some(Command::Curvature(spec)) = command else {
        panic!("Enter fires the job: {command:?}");
    };
    assert_eq!(spec.sets, Some(2));
    assert_eq!(app.view, View::Curvature);
    assert!(app.overlay.is_none());
    assert!(app.curvature.live.is_none() && app.jobs.running.is_none());
    assert_eq!(app.curvature.results.len(), 1);
    assert!(
        app.log
            .iter()
            .any(|l| l.contains("curvature 001-both: λ_max sgd 10.0 [")),
        "{:?}",
        app.log
    );
}

#[test]
fn a_curvature_job_shows_its_progress_and_eta_and_is_cancelled_with_esc() {
    let mut app = running();
    app.update(Action::ShowView(4));
    key(&mut app, 'H');
    app.overlay = None;
    app.jobs.running = Some(Job {
        kind: JobKind::Curvature,
        label: "curvature at both".into(),
        started_s: Some(0.0),
        probes_done: 0,
        probes_total: Some(1),
        cancelling: false,
    });
    app.clock_s = 10.0;
    app.handle_event(Event::CurvatureStarted {
        label: "curvature at epoch 4 (live)".into(),
        plan: "plan".into(),
        products: 100,
        expected_s: 40.0,
    });
    app.clock_s = 30.0;
    app.handle_event(Event::CurvatureProgress {
        done: 25,
        planned: 100,
        what: "top eigenvalues".into(),
    });
    let live = app.curvature.live.as_ref().unwrap();
    assert_eq!(live.seconds_left(app.clock_s), 60.0, "20 s for a quarter");
    let status = crate::ui::views::job_status(&app).unwrap();
    assert!(status.contains("25/100 products"), "{status}");
    assert!(status.contains("ETA 1:00"), "{status}");
    assert_eq!(app.update(Action::CancelProbe), Some(Command::CancelProbe));
    app.handle_event(Event::ProbeFailed {
        message: "probe cancelled".into(),
    });
    assert!(app.curvature.live.is_none() && app.jobs.running.is_none());
    assert!(app.curvature.results.is_empty());
}

#[test]
fn tracked_curvature_joins_the_chart_cycle_with_the_edge_of_stability() {
    let mut app = running();
    for _ in 0..3 {
        key(&mut app, 'a');
    }
    assert_eq!(
        app.chart.quantity,
        Quantity::Loss,
        "no λ_max before anything is tracked"
    );
    app.handle_event(Event::CurvatureTracked(vec![track_row(0, "sgd", 2.0)]));
    app.handle_event(Event::CurvatureTracked(vec![
        track_row(5, "sgd", 9.0),
        track_row(5, "swa", 7.0),
    ]));
    // A resumed run measures epoch 5 again: the row is replaced, not doubled.
    app.handle_event(Event::CurvatureTracked(vec![
        track_row(5, "sgd", 9.5),
        track_row(5, "swa", 7.0),
    ]));
    assert_eq!(app.curvature.track.len(), 3);
    for _ in 0..3 {
        key(&mut app, 'a');
    }
    assert_eq!(app.chart.quantity, Quantity::Curvature);
    let curves = crate::ui::curves::curves(&app);
    let names: Vec<&str> = curves.iter().map(|c| c.name).collect();
    assert_eq!(names, ["2/lr (edge)", "SGD λ_max", "SWA λ_max"]);
    assert_eq!(
        curves[0].values,
        [40.0, 100.0],
        "2/lr at each tracked epoch"
    );
    assert_eq!(curves[1].values, [2.0, 9.5]);
    assert_eq!(curves[2].measured, [(5.0, 7.0)]);
    key(&mut app, 'a');
    assert_eq!(app.chart.quantity, Quantity::Loss, "and back round");
}

/// A plane's path grows while the run trains: the event replaces the shown plane's path, and
/// one for a plane the dashboard does not hold changes nothing.
#[test]
fn a_planes_path_grows_in_place() {
    use crate::trajectory::{PathPoint, Projection, TrajectoryPoint};
    let mut app = running();
    let plane = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 5, 5);
    app.handle_event(Event::PlaneFinished(Box::new(plane)));
    let point = |epoch: u32| PathPoint {
        at: TrajectoryPoint {
            epoch,
            step: u64::from(epoch) * 10,
            swa_snapshot: false,
        },
        projection: Projection {
            x: 0.1 * f64::from(epoch),
            y: 0.0,
            residual: 0.2,
        },
    };
    app.handle_event(Event::PlanePath {
        id: "001-swa-sgd-swa".into(),
        path: vec![point(0), point(1)],
    });
    app.handle_event(Event::PlanePath {
        id: "009-random-sgd".into(),
        path: vec![point(5)],
    });
    assert_eq!(app.planes.results.len(), 1);
    assert_eq!(app.planes.results[0].path, vec![point(0), point(1)]);
}

#[test]
fn shift_c_fires_a_connection_that_lands_in_the_probe_view() {
    let mut app = running();
    app.handle_event(Event::ProbeFinished(Box::new(probe_result(
        "001-uniform-swa",
    ))));
    assert_eq!(key(&mut app, 'C'), None);
    assert_eq!(app.overlay, Some(Overlay::ConnectForm));
    while app.connect_form.fields[app.connect_form.selected].name != "curve epochs" {
        press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    }
    key(&mut app, '2');
    let command = press(&mut app, KeyCode::Enter, KeyModifiers::NONE);
    let Some(Command::Connect(request)) = command else {
        panic!("Enter fires the connection: {command:?}");
    };
    assert_eq!(
        (request.a, request.b, request.curve_epochs),
        (Iterate::Swa, Iterate::Sgd, 2)
    );
    assert_eq!(app.view, View::Probes);
    assert!(app.overlay.is_none() && app.jobs.running.is_none());
    assert!(app.probes.connecting.is_none());
    assert_eq!(app.probes.entries(), 2);
    assert_eq!(app.probes.selected, 1, "the new connection is shown");
    assert_eq!(app.probes.selected_connection().unwrap().id, "001-swa-sgd");
    assert!(
        app.log
            .iter()
            .any(|l| l.contains("connection 001-swa-sgd:")),
        "{:?}",
        app.log
    );
    // ↑ goes back to the probe, ↓ to the connection again.
    press(&mut app, KeyCode::Up, KeyModifiers::NONE);
    assert!(app.probes.selected_connection().is_none());
    press(&mut app, KeyCode::Down, KeyModifiers::NONE);
    assert!(app.probes.selected_connection().is_some());
}

#[test]
fn a_running_connection_is_said_and_a_failed_one_clears() {
    let mut app = running();
    app.update(Action::ShowView(1));
    app.clock_s = 5.0;
    app.handle_event(Event::ConnectStarted {
        label: "swa → sgd: 11 points, BN recompute".into(),
    });
    app.clock_s = 65.0;
    let hint = crate::ui::views::connection::connecting_hint(&app).unwrap();
    assert!(hint.contains("1:00 so far"), "{hint}");
    app.handle_event(Event::ProbeFailed {
        message: "probe failed: epoch 9: the run kept its SGD iterate at epochs 0, 1".into(),
    });
    assert!(app.probes.connecting.is_none());
    assert!(app.probes.connections.is_empty());
}

#[test]
fn a_watched_run_cannot_connect() {
    let mut app = running();
    app.controllable = false;
    assert_eq!(key(&mut app, 'C'), None);
    assert!(app.overlay.is_none());
    assert!(
        app.log.back().unwrap().contains("valleys connect"),
        "{:?}",
        app.log
    );
}
