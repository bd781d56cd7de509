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

fn info() -> RunInfo {
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
    }
}

/// A stand-in for the worker: answers each command the way the engine does.
fn fake_engine(command: Command) -> Vec<Event> {
    match command {
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
    assert!(app.chart.log_y && app.chart.smooth);
    assert_eq!(
        (app.chart.quantity, app.chart.x),
        (Quantity::Accuracy, XAxis::Step)
    );
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
        app.handle_event(Event::Metric(MetricRow {
            epoch,
            step: u64::from(epoch) * 79,
            iterate: Iterate::Sgd,
            split: Split::Test,
            loss: 1.0 / f64::from(epoch + 1),
            acc: 0.5,
            lr: 0.05,
            elapsed_s: f64::from(epoch),
            samples: 2000,
            swa_n: None,
        }));
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
