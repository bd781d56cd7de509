//! `valleys watch SWEEP_DIR` (or several run directories): every run in one table (variant,
//! state, epoch, SGD and SWA test loss, SWA gain, asymmetric fraction once probed), refreshed
//! as the runs write; `↑↓` picks a run and `Enter` opens its dashboard; `g` shows the test
//! loss of each group of the non-seed axes, mean ± one standard deviation over seeds with each
//! seed faintly beneath, and `c` every run's curve in one chart with a legend per run (`m`: SWA
//! or SGD).

mod charts;

use super::theme::Theme;
use crate::sweep::report::RunSummary;
use crate::sweep::{RunSet, VariantState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

/// The sweep table's state.
pub struct SweepBoard {
    pub name: String,
    pub runs: Vec<RunSummary>,
    pub selected: usize,
    /// Show the groups' curves instead of the table.
    pub groups: bool,
    /// Show every run's curve overlaid instead of the table.
    pub overlay: bool,
    /// Whose test loss the groups' curves show.
    pub iterate: crate::protocol::Iterate,
    pub theme: Theme,
}

/// What a key asks of the sweep table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKey {
    Up,
    Down,
    Open,
    ToggleGroups,
    /// Every run's curve in one chart.
    ToggleOverlay,
    /// The groups' curves: SWA or SGD test loss.
    ToggleIterate,
    Quit,
}

impl SweepBoard {
    pub fn new(name: String, theme: Theme) -> Self {
        Self {
            name,
            runs: Vec::new(),
            selected: 0,
            groups: false,
            overlay: false,
            iterate: crate::protocol::Iterate::Swa,
            theme,
        }
    }

    /// Reads every run again.
    pub fn refresh(&mut self, runs: &RunSet) {
        self.runs = runs.summaries();
        self.selected = self.selected.min(self.runs.len().saturating_sub(1));
    }

    /// Applies a key; returns the run to open on Enter.
    pub fn key(&mut self, key: SweepKey) -> Option<usize> {
        match key {
            SweepKey::Up => self.selected = self.selected.saturating_sub(1),
            SweepKey::Down => {
                self.selected = (self.selected + 1).min(self.runs.len().saturating_sub(1))
            }
            SweepKey::ToggleGroups => {
                self.groups = !self.groups;
                self.overlay = false;
            }
            SweepKey::ToggleOverlay => {
                self.overlay = !self.overlay;
                self.groups = false;
            }
            SweepKey::ToggleIterate => {
                self.iterate = match self.iterate {
                    crate::protocol::Iterate::Swa => crate::protocol::Iterate::Sgd,
                    _ => crate::protocol::Iterate::Swa,
                }
            }
            SweepKey::Open => return self.runs.get(self.selected).map(|r| r.variant.index),
            SweepKey::Quit => {}
        }
        None
    }

    pub fn render(&self, frame: &mut Frame) {
        let [header, body, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let count = |s: VariantState| self.runs.iter().filter(|r| r.state == s).count();
        frame.render_widget(
            Paragraph::new(format!(
                " valleys · {} · {} runs · {} done · {} running · {} stopped · {} pending",
                self.name,
                self.runs.len(),
                count(VariantState::Done) + count(VariantState::Trained),
                count(VariantState::Running),
                count(VariantState::Stopped),
                count(VariantState::Pending)
            )),
            header,
        );
        if self.groups {
            self.render_groups(frame, body);
        } else if self.overlay {
            self.render_runs(frame, body);
        } else {
            self.render_table(frame, body);
        }
        let bar = if self.groups {
            " g table  c every run  m SWA/SGD  q quit"
        } else if self.overlay {
            " c table  g groups over seeds  m SWA/SGD  q quit"
        } else {
            " ↑↓ pick  Enter open its dashboard  g groups over seeds  c every run  q quit"
        };
        frame.render_widget(Paragraph::new(bar).style(self.theme.dim()), keys);
    }

    fn render_table(&self, frame: &mut Frame, area: Rect) {
        let width = self
            .runs
            .iter()
            .map(|r| r.variant.id.chars().count())
            .max()
            .unwrap_or(7)
            .clamp(7, 60);
        let mut lines = vec![Line::styled(
            format!(
                "{:<width$}  {:<8} {:>6}  {:>8} {:>8} {:>8}  asym (swa)",
                "variant", "state", "epoch", "SGD test", "SWA test", "SWA gain"
            ),
            self.theme.dim(),
        )];
        let rows = usize::from(area.height.saturating_sub(3));
        let start = self
            .selected
            .saturating_sub(rows.saturating_sub(1))
            .min(self.runs.len().saturating_sub(rows));
        for (i, r) in self.runs.iter().enumerate().skip(start).take(rows) {
            let loss = |row: &Option<crate::protocol::MetricRow>| {
                row.as_ref()
                    .map_or("–".into(), |r| format!("{:.4}", r.loss))
            };
            let id: String = r.variant.id.chars().take(width).collect();
            let text = format!(
                "{id:<width$}  {:<8} {:>6}  {:>8} {:>8} {:>8}  {}",
                r.state.as_str(),
                r.epochs.map_or("–".into(), |e| format!("{}/{e}", r.epoch)),
                loss(&r.sgd),
                loss(&r.swa),
                r.swa_gain.map_or("–".into(), |g| format!("{g:+.4}")),
                r.asymmetric
                    .iter()
                    .find(|(c, _, _)| c == "swa")
                    .map_or("–".into(), |(_, k, n)| format!("{k}/{n}"))
            );
            let style = match (i == self.selected, r.state) {
                (true, _) => self.theme.key().add_modifier(Modifier::REVERSED),
                (_, VariantState::Failed | VariantState::Diverged) => self.theme.bad(),
                (_, VariantState::Running) => self.theme.good(),
                _ => Style::new(),
            };
            lines.push(Line::styled(text, style));
        }
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Line::styled(" runs ", self.theme.title()));
        frame.render_widget(Paragraph::new(lines).block(block), area);
    }
}

/// Shows the sweep table until `q`; `Enter` leaves the terminal to `open` (a run's dashboard)
/// and comes back to the table after it. The table reads the run directories every second.
pub fn watch(
    runs: &RunSet,
    options: super::UiOptions,
    stop: &std::sync::atomic::AtomicBool,
    open: &dyn Fn(&std::path::Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use crate::ui::keymap::Action;
    use crossterm::event::{self, Event, KeyEventKind};
    let mut board = SweepBoard::new(runs.name(), options.theme);
    loop {
        let mut terminal = super::enter_terminal()?;
        let guard = super::TerminalGuard;
        let mut last = std::time::Instant::now() - std::time::Duration::from_secs(10);
        let opened = loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break None;
            }
            if last.elapsed() >= std::time::Duration::from_secs(1) {
                board.refresh(runs);
                last = std::time::Instant::now();
            }
            terminal.draw(|f| {
                board.render(f);
                if options.theme.ascii {
                    super::theme::asciify(f.buffer_mut());
                }
            })?;
            if !event::poll(std::time::Duration::from_millis(250))? {
                continue;
            }
            let Event::Key(k) = event::read()? else {
                continue;
            };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            let key = match crate::ui::keymap::action_for(k, crate::ui::keymap::SWEEP_TABLE) {
                Some(Action::SelectUp) => SweepKey::Up,
                Some(Action::SelectDown) => SweepKey::Down,
                Some(Action::OpenSelected) => SweepKey::Open,
                Some(Action::ToggleGroups) => SweepKey::ToggleGroups,
                Some(Action::ToggleRunCurves) => SweepKey::ToggleOverlay,
                Some(Action::ToggleGroupIterate) => SweepKey::ToggleIterate,
                Some(Action::Quit | Action::ForceQuit) => break None,
                _ => continue,
            };
            if let Some(index) = board.key(key) {
                break Some(index);
            }
        };
        drop(guard);
        let Some(index) = opened else {
            return Ok(());
        };
        if let Some(path) = runs.path(index).filter(|p| p.join("run.json").is_file()) {
            open(&path)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::Variant;

    fn board() -> SweepBoard {
        let mut b = SweepBoard::new(
            "sweep bn".into(),
            Theme {
                color: false,
                ascii: false,
            },
        );
        for (i, (norm, seed, state)) in [
            ("batch", 1, VariantState::Done),
            ("batch", 2, VariantState::Running),
            ("none", 1, VariantState::Pending),
        ]
        .into_iter()
        .enumerate()
        {
            b.runs.push(RunSummary {
                variant: Variant {
                    index: i,
                    id: crate::sweep::variant_id(
                        i,
                        &[
                            ("model.norm".into(), norm.into()),
                            ("seed".into(), seed.to_string()),
                        ],
                    ),
                    overrides: vec![
                        ("model.norm".into(), norm.into()),
                        ("seed".into(), seed.to_string()),
                    ],
                },
                state,
                epoch: 3,
                epochs: Some(8),
                sgd: None,
                swa: None,
                swa_gain: Some(0.0123),
                asymmetric: vec![("swa".into(), 4, 10)],
                arms: Vec::new(),
                curves: vec![(
                    crate::protocol::Iterate::Swa,
                    vec![(1.0, 0.5), (2.0, 0.4), (3.0, 0.35 + 0.01 * f64::from(seed))],
                )],
                curvature: Vec::new(),
            });
        }
        b
    }

    fn text(b: &SweepBoard) -> String {
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 14)).unwrap();
        t.draw(|f| b.render(f)).unwrap();
        format!("{}", t.backend())
    }

    #[test]
    fn the_table_lists_every_run_and_enter_opens_the_picked_one() {
        let mut b = board();
        let screen = text(&b);
        assert!(
            screen.contains("3 runs · 1 done · 1 running · 0 stopped · 1 pending"),
            "{screen}"
        );
        assert!(
            screen.contains("001-model.norm=batch-seed=2  running     3/8"),
            "{screen}"
        );
        assert!(screen.contains("+0.0123  4/10"), "{screen}");
        b.key(SweepKey::Down);
        b.key(SweepKey::Down);
        b.key(SweepKey::Down);
        assert_eq!(b.key(SweepKey::Open), Some(2), "clamped to the last run");
        b.key(SweepKey::ToggleGroups);
        let screen = text(&b);
        assert!(
            screen.contains("mean (line) ± 1 std (dots), seeds faint"),
            "{screen}"
        );
        assert!(
            screen.contains("model.norm=batch") && screen.contains("model.norm=none"),
            "{screen}"
        );
        assert!(screen.contains(" SWA test loss per group"), "{screen}");
        b.key(SweepKey::ToggleIterate);
        assert!(text(&b).contains(" SGD test loss per group"));
    }

    fn sized(b: &SweepBoard, width: u16, height: u16) -> String {
        let mut t =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
        t.draw(|f| {
            b.render(f);
            if b.theme.ascii {
                crate::ui::theme::asciify(f.buffer_mut());
            }
        })
        .unwrap();
        format!("{}", t.backend())
    }

    #[test]
    fn every_runs_curve_in_one_chart_with_a_legend_per_run() {
        let mut b = board();
        b.key(SweepKey::ToggleOverlay);
        let small = sized(&b, 80, 24);
        assert!(small.contains(" SWA test loss of every run "), "{small}");
        // Every run named whole, or counted.
        assert!(
            small.contains("── 000-model.no ── 001-model.no ── 002-model.no"),
            "{small}"
        );
        insta::assert_snapshot!("runs_overlay_80x24", small);
        let wide = sized(&b, 160, 48);
        for id in [
            "000-model.norm=batch-seed=1",
            "001-model.norm=batch-seed=2",
            "002-model.norm=none-seed=1",
        ] {
            assert!(wide.contains(id), "{id}: {wide}");
        }
        insta::assert_snapshot!("runs_overlay_160x48", wide);
        // In ASCII each run has a mark of its own.
        b.theme = Theme {
            color: false,
            ascii: true,
        };
        let ascii = sized(&b, 100, 24);
        assert!(ascii.is_ascii(), "{ascii}");
        assert!(
            ascii.contains("oo 000") && ascii.contains("## 001"),
            "{ascii}"
        );
        b.key(SweepKey::ToggleOverlay);
        assert!(
            sized(&b, 80, 24).contains("variant"),
            "c goes back to the table"
        );
    }

    #[test]
    fn groups_show_each_seed_faintly_beneath_their_mean() {
        let mut b = board();
        b.key(SweepKey::ToggleGroups);
        let small = sized(&b, 80, 24);
        assert!(small.contains("seeds faint"), "{small}");
        insta::assert_snapshot!("groups_80x24", small);
        insta::assert_snapshot!("groups_160x48", sized(&b, 160, 48));
    }
}
