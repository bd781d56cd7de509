//! The terminal dashboard. This module owns the terminal: it enters and restores it (on quit,
//! on error and on panic), reads keys, and redraws at a bounded rate while worker events
//! stream in. It never waits on the worker and never touches a tensor.

pub mod app;
pub mod braille;
pub mod chart;
pub mod connect_form;
pub mod curvature_form;
pub mod curves;
pub mod form;
pub mod keymap;
pub mod plane_form;
pub mod screenshot;
pub mod series;
pub mod starting;
pub mod sweep;
pub mod theme;
pub mod views;

use crate::machine::{MachineSample, Monitor, Sampler};
use crate::protocol::{Command, Event, Outcome};
use app::App;
use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;
use theme::Theme;
use tokio::sync::mpsc::UnboundedReceiver;

/// How the dashboard draws.
#[derive(Debug, Clone, Copy)]
pub struct UiOptions {
    pub theme: Theme,
    /// Redraws per second at most while data stream in (input redraws at once).
    pub fps: f64,
}

/// Restores the terminal however the dashboard ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
    }
}

/// Raw mode and the alternate screen, with a panic hook that restores the terminal before
/// a panic on this (the UI) thread is reported. Panics on the worker threads are caught and
/// reported by the workers as events, so the dashboard keeps the screen (ratatui's own
/// `init` would restore the terminal on any thread's panic, leaving a blank dashboard).
fn enter_terminal() -> std::io::Result<DefaultTerminal> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some(crate::protocol::WORKER_THREAD)
            && !crate::error::panic_is_caught()
        {
            let _ = ratatui::try_restore();
        }
        previous(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
}

/// Runs the dashboard until the user quits. `commands` is None when watching a run directory.
/// `stop` is raised by SIGTERM/SIGHUP handlers; the dashboard then quits once the worker has
/// stopped. Returns the run's outcome if it ended while the dashboard was open.
pub fn run_dashboard(
    events: UnboundedReceiver<Event>,
    commands: Option<Sender<Command>>,
    stop: Arc<AtomicBool>,
    options: UiOptions,
    machine: Option<UnboundedReceiver<MachineSample>>,
) -> std::io::Result<Option<Outcome>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut terminal = enter_terminal()?;
    let _guard = TerminalGuard;
    let mut app = App::new(options.theme, commands.is_some());
    let outcome = runtime.block_on(event_loop(
        &mut terminal,
        &mut app,
        Feeds {
            events,
            commands,
            machine,
        },
        &stop,
        options.fps,
    ));
    Ok(outcome)
}

/// Samples the machine every second for the dashboard's strip: the sampler (whose peaks the
/// caller may keep) and the samples.
pub fn machine_feed(
    monitor: Monitor,
) -> std::io::Result<(Sampler, UnboundedReceiver<MachineSample>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let sampler = Sampler::start(monitor, Duration::from_secs(1), move |sample| {
        let _ = tx.send(sample);
    })?;
    Ok((sampler, rx))
}

/// What the dashboard reads and writes besides the terminal.
struct Feeds {
    events: UnboundedReceiver<Event>,
    commands: Option<Sender<Command>>,
    machine: Option<UnboundedReceiver<MachineSample>>,
}

/// Renders the current screen off-screen and exports it, reporting the paths in the log.
fn screenshot_now(app: &mut App, width: u16, height: u16) {
    match export_screen(app, width, height) {
        Ok(paths) => {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            app.log(format!("exported {}", names.join(", ")));
        }
        Err(e) => app.log(format!("error: export failed: {e:#}")),
    }
}

/// The screen as `width` x `height` cells, written to the run's screenshots/ folder.
fn export_screen(
    app: &App,
    width: u16,
    height: u16,
) -> Result<Vec<std::path::PathBuf>, screenshot::ExportError> {
    // Drawing into memory cannot fail (the test backend's error type is Infallible).
    let Ok(mut off) = ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height));
    let Ok(_) = off.draw(|frame| views::render(app, frame));
    let dir = app.info.as_ref().map_or_else(
        || std::path::PathBuf::from("screenshots"),
        |i| i.run_dir.join("screenshots"),
    );
    let stem = format!(
        "{}-{}",
        app.view.title(),
        jiff::Zoned::now().strftime("%Y%m%d-%H%M%S")
    );
    screenshot::export(
        off.backend().buffer(),
        &screenshot::screen_data(app),
        &dir,
        &stem,
    )
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    feeds: Feeds,
    stop: &AtomicBool,
    fps: f64,
) -> Option<Outcome> {
    let Feeds {
        mut events,
        commands,
        mut machine,
    } = feeds;
    let mut machine_open = machine.is_some();
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / fps.clamp(0.5, 60.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut outcome = None;
    let mut events_open = true;
    let mut input_open = true;
    let mut terminal_ok = true;
    let mut stop_seen = false;
    let mut dirty = true;
    let opened = std::time::Instant::now();
    let send = |command: Option<Command>| {
        if let (Some(c), Some(tx)) = (command, &commands) {
            let _ = tx.send(c);
        }
    };
    loop {
        let mut draw_now = false;
        tokio::select! {
            key = input.next(), if input_open => match key {
                Some(Ok(TermEvent::Key(key))) => {
                    match keymap::action_for(key, app.bindings()) {
                        Some(keymap::Action::Export) => {
                            let size = terminal.size().unwrap_or_default();
                            screenshot_now(app, size.width, size.height);
                        }
                        Some(action) => send(app.update(action)),
                        None => {}
                    }
                    draw_now = true;
                }
                Some(Ok(TermEvent::Resize(..))) => draw_now = true,
                Some(Ok(_)) => {}
                // The terminal went away (e.g. a dropped SSH connection): stop cleanly.
                Some(Err(_)) | None => {
                    input_open = false;
                    terminal_ok = false;
                    app.quit_when_finished();
                    send(Some(Command::Stop));
                }
            },
            event = events.recv(), if events_open => match event {
                Some(event) => {
                    let mut next = Some(event);
                    // Coalesce: apply everything pending, then draw once.
                    while let Some(e) = next {
                        if let Event::Finished(o) = &e {
                            outcome = Some(o.clone());
                        }
                        app.handle_event(e);
                        next = events.try_recv().ok();
                    }
                    dirty = true;
                }
                None => {
                    events_open = false;
                    if app.controllable && app.state.is_live() {
                        app.handle_event(Event::Finished(Outcome::Failed {
                            message: "the training worker ended without a word".into(),
                        }));
                    }
                }
            },
            sample = async {
                match machine.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            }, if machine_open => match sample {
                Some(sample) => {
                    app.machine = Some(sample);
                    dirty = true;
                }
                None => machine_open = false,
            },
            _ = tick.tick() => {
                if app.tick(opened.elapsed().as_secs_f64()) {
                    dirty = true;
                }
                if !stop_seen && stop.load(Ordering::Relaxed) {
                    stop_seen = true;
                    app.log("stop requested by a signal");
                    app.quit_when_finished();
                }
                draw_now = dirty;
            }
        }
        if app.should_quit || (!terminal_ok && !app.state.is_live() && outcome.is_some()) {
            break;
        }
        if draw_now && terminal_ok {
            dirty = false;
            if terminal.draw(|frame| views::render(app, frame)).is_err() {
                terminal_ok = false;
                app.quit_when_finished();
                send(Some(Command::Stop));
            }
        }
        if !terminal_ok && !events_open {
            break;
        }
    }
    outcome
}
