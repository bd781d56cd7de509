//! Keys become intents here, and only here. One table per context feeds the key handling, the
//! key bar and the help overlay, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    TogglePause,
    Quit,
    /// Ctrl-C: stop (with a checkpoint) and quit without asking.
    ForceQuit,
    ConfirmQuit,
    CloseOverlay,
    Help,
    ToggleLogScale,
    ToggleSmoothing,
    ToggleOutliers,
    TogglePerStep,
    CursorLeft,
    CursorRight,
    /// The plane cursor one row up or down.
    CursorUp,
    CursorDown,
    HideCursor,
    CycleSplits,
    ToggleQuantity,
    ToggleXAxis,
    Checkpoint,
    ScrollUp,
    ScrollDown,
    ZoomIn,
    ZoomOut,
    NextView,
    ShowView(usize),
    OpenProbeForm,
    OpenPlaneForm,
    /// Enter in the plane form.
    FirePlane,
    /// The curvature form (Hessian eigenvalues, trace, density, sharpness).
    OpenCurvatureForm,
    /// Enter in the curvature form.
    FireCurvature,
    /// The connect form (the line and a Bézier curve between two iterates).
    OpenConnectForm,
    /// Enter in the connect form.
    FireConnect,
    /// The plane heatmap: test loss / train loss / their gap.
    CyclePlaneShow,
    FormUp,
    FormDown,
    FormPrev,
    FormNext,
    /// A character typed into the form (the table entry stands for every digit).
    FormInput(char),
    FormBackspace,
    FireProbe,
    CancelProbe,
    SelectUp,
    SelectDown,
    ToggleShiftCurve,
    OpenAblationMenu,
    AblateGroups,
    AblateBnModes,
    AblateSummary,
    StartTwin,
    ToggleStaleBn,
    /// Save the screen as SVG, PNG and CSV.
    Export,
    /// The table of a sweep's runs: open the selected run.
    OpenSelected,
    /// The table of a sweep's runs: one row per run, or per group of seeds.
    ToggleGroups,
    /// Every run's curve in one chart, a legend entry each.
    ToggleRunCurves,
    /// The table of a sweep's runs: the groups' curves of SWA or of SGD.
    ToggleGroupIterate,
}

/// A key as written in the key bar and help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub keys: &'static [KeyCode],
    pub label: &'static str,
    pub action: Action,
    pub description: &'static str,
    pub group: &'static str,
    /// The word in the one-line key bar, if the binding is shown there (the help shows all).
    pub bar: Option<&'static str>,
}

impl Binding {
    /// The same binding, listed in the help but not in the one-line key bar.
    const fn off_bar(self) -> Self {
        Self { bar: None, ..self }
    }
}

const fn bind(
    keys: &'static [KeyCode],
    label: &'static str,
    action: Action,
    description: &'static str,
    group: &'static str,
    bar: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        description,
        group,
        bar,
    }
}

// Keys that mean the same in every view, defined once; the views' tables list them where
// they belong in the key bar and help.
#[rustfmt::skip]
mod shared {
    use super::*;
    pub const PAUSE: Binding = bind(&[KeyCode::Char(' ')], "space", Action::TogglePause, "pause / resume training", "run", Some("pause"));
    pub const QUIT: Binding = bind(&[KeyCode::Char('q')], "q", Action::Quit, "quit (asks while training; saves a checkpoint)", "run", Some("quit"));
    pub const NEXT_VIEW: Binding = bind(&[KeyCode::Tab], "Tab", Action::NextView, "next view", "view", None);
    pub const SHOW_DASHBOARD: Binding = bind(&[KeyCode::Char('1')], "1", Action::ShowView(0), "dashboard", "view", None);
    pub const SHOW_PROBES: Binding = bind(&[KeyCode::Char('2')], "2", Action::ShowView(1), "probes", "view", None);
    pub const SHOW_ABLATIONS: Binding = bind(&[KeyCode::Char('3')], "3", Action::ShowView(2), "ablations", "view", None);
    pub const SHOW_PLANES: Binding = bind(&[KeyCode::Char('4')], "4", Action::ShowView(3), "planes", "view", None);
    pub const SHOW_CURVATURE: Binding = bind(&[KeyCode::Char('5')], "5", Action::ShowView(4), "curvature", "view", None);
    pub const CURVATURE: Binding = bind(&[KeyCode::Char('H')], "H", Action::OpenCurvatureForm, "Hessian curvature at SGD and SWA: top eigenvalues, trace, density, sharpness", "probe", Some("curvature"));
    pub const CONNECT: Binding = bind(&[KeyCode::Char('C')], "C", Action::OpenConnectForm, "connect SWA and SGD (or an earlier epoch) by a line and a Bézier curve: the barrier between them", "probe", Some("connect"));
    pub const PLANE: Binding = bind(&[KeyCode::Char('P')], "P", Action::OpenPlaneForm, "a plane through SWA and SGD (or two random directions) as a heatmap", "probe", Some("plane"));
    pub const EXPORT: Binding = bind(&[KeyCode::Char('e')], "e", Action::Export, "export the screen: SVG, PNG and its data as CSV", "view", None);
    pub const HELP_KEY: Binding = bind(&[KeyCode::Char('?')], "?", Action::Help, "this help", "view", Some("help"));
    pub const LOG_Y: Binding = bind(&[KeyCode::Char('l')], "l", Action::ToggleLogScale, "log-scale loss axis", "chart", Some("log-y"));
    pub const LOSS_ACC: Binding = bind(&[KeyCode::Char('a')], "a", Action::ToggleQuantity, "loss / accuracy / learning rate", "chart", Some("loss/acc/lr"));
    pub const ABLATE_MENU: Binding = bind(&[KeyCode::Char('b')], "b", Action::OpenAblationMenu, "batch-norm ablations (menu)", "probe", Some("ablate"));
}
use shared::*;

/// The dashboard's keys.
#[rustfmt::skip]
pub const DASHBOARD: &[Binding] = &[
    PAUSE,
    bind(&[KeyCode::Char('c')], "c", Action::Checkpoint, "write a checkpoint now", "run", None),
    QUIT,
    bind(&[KeyCode::Char('p')], "p", Action::OpenProbeForm, "probe the live weights along a line", "probe", Some("probe")),
    PLANE.off_bar(),
    ABLATE_MENU,
    CURVATURE.off_bar(),
    CONNECT.off_bar(),
    LOG_Y,
    bind(&[KeyCode::Char('s')], "s", Action::ToggleSmoothing, "smoothing strength 0 / 0.6 / 0.8 / 0.9 / 0.95 (raw data kept)", "chart", Some("smooth")),
    bind(&[KeyCode::Char('t')], "t", Action::CycleSplits, "series: train+test / train / test", "chart", Some("train/test")),
    LOSS_ACC,
    bind(&[KeyCode::Char('r')], "r", Action::TogglePerStep, "training loss per step (between progress reports)", "chart", None),
    bind(&[KeyCode::Char('o')], "o", Action::ToggleOutliers, "y axis: ignore outliers / every value", "chart", None),
    bind(&[KeyCode::Char('x')], "x", Action::ToggleXAxis, "x axis: epoch/step/time/clock", "chart", None),
    bind(&[KeyCode::Left, KeyCode::Char('h')], "← h", Action::CursorLeft, "value cursor: every series' value at an earlier point", "chart", Some("cursor")),
    bind(&[KeyCode::Right], "→", Action::CursorRight, "value cursor: a later point", "chart", None),
    bind(&[KeyCode::Esc], "Esc", Action::HideCursor, "hide the value cursor", "chart", None),
    bind(&[KeyCode::Char('+'), KeyCode::Char('=')], "+", Action::ZoomIn, "zoom in on the latest epochs", "chart", None),
    bind(&[KeyCode::Char('-')], "-", Action::ZoomOut, "zoom out", "chart", None),
    bind(&[KeyCode::Up, KeyCode::Char('k')], "↑ k", Action::ScrollUp, "scroll the log back", "log", None),
    bind(&[KeyCode::Down, KeyCode::Char('j')], "↓ j", Action::ScrollDown, "scroll the log forward", "log", None),
    NEXT_VIEW, SHOW_DASHBOARD, SHOW_PROBES, SHOW_ABLATIONS, SHOW_PLANES, SHOW_CURVATURE, EXPORT, HELP_KEY,
];

/// The ablation view's keys.
#[rustfmt::skip]
pub const ABLATIONS: &[Binding] = &[
    ABLATE_MENU,
    bind(&[KeyCode::Esc], "Esc", Action::CancelProbe, "cancel the running ablation", "probe", Some("cancel")),
    LOG_Y,
    LOSS_ACC,
    PAUSE.off_bar(),
    QUIT,
    NEXT_VIEW, SHOW_DASHBOARD, SHOW_PROBES, SHOW_ABLATIONS, SHOW_PLANES, SHOW_CURVATURE, EXPORT, HELP_KEY,
];

/// Keys while the ablation menu is open.
#[rustfmt::skip]
pub const ABLATION_MENU: &[Binding] = &[
    bind(&[KeyCode::Char('g')], "g", Action::AblateGroups, "one direction through BN-only, non-BN and all parameters", "ablate", Some("groups")),
    bind(&[KeyCode::Char('m')], "m", Action::AblateBnModes, "one direction with BN recomputed, frozen and per batch", "ablate", Some("BN modes")),
    bind(&[KeyCode::Char('s')], "s", Action::AblateSummary, "N directions per arm: BN vs none, BN-only vs non-BN, SGD vs SWA", "ablate", Some("summary")),
    bind(&[KeyCode::Char('t')], "t", Action::StartTwin, "train the no-BN twin (after this run on a CPU)", "ablate", Some("twin")),
    bind(&[KeyCode::Char('x')], "x", Action::ToggleStaleBn, "also evaluate SWA with stale BN statistics", "ablate", Some("stale SWA")),
    bind(&[KeyCode::Esc, KeyCode::Char('q')], "Esc", Action::CloseOverlay, "close the menu", "ablate", Some("close")),
];

/// The probe view's keys.
#[rustfmt::skip]
pub const PROBES: &[Binding] = &[
    bind(&[KeyCode::Char('p')], "p", Action::OpenProbeForm, "new probe (a form with defaults)", "probe", Some("new probe")),
    PLANE.off_bar(),
    ABLATE_MENU.off_bar(),
    CONNECT,
    bind(&[KeyCode::Esc], "Esc", Action::CancelProbe, "cancel the running probe", "probe", Some("cancel")),
    bind(&[KeyCode::Up, KeyCode::Char('k')], "↑ k", Action::SelectUp, "previous probe", "probe", None),
    bind(&[KeyCode::Down, KeyCode::Char('j')], "↓ j", Action::SelectDown, "next probe", "probe", None),
    LOSS_ACC,
    LOG_Y,
    bind(&[KeyCode::Char('r')], "r", Action::ToggleShiftCurve, "random-shift check: ξ_δ/ξ_0 against δ", "chart", Some("shift")),
    PAUSE.off_bar(),
    QUIT,
    NEXT_VIEW, SHOW_DASHBOARD, SHOW_PROBES, SHOW_ABLATIONS, SHOW_PLANES, SHOW_CURVATURE, EXPORT, HELP_KEY,
];

/// The plane view's keys.
#[rustfmt::skip]
pub const PLANES: &[Binding] = &[
    PLANE,
    bind(&[KeyCode::Esc], "Esc", Action::CancelProbe, "cancel the running plane", "probe", Some("cancel")),
    bind(&[KeyCode::Left, KeyCode::Char('h')], "←", Action::CursorLeft, "cursor left (smaller x)", "plane", Some("cursor")),
    bind(&[KeyCode::Right, KeyCode::Char('l')], "→", Action::CursorRight, "cursor right (larger x)", "plane", None),
    bind(&[KeyCode::Up, KeyCode::Char('k')], "↑", Action::CursorUp, "cursor up (larger y)", "plane", None),
    bind(&[KeyCode::Down, KeyCode::Char('j')], "↓", Action::CursorDown, "cursor down (smaller y)", "plane", None),
    bind(&[KeyCode::Char('v')], "v", Action::CyclePlaneShow, "colour by test loss / train loss / their gap", "plane", Some("test/train/gap")),
    bind(&[KeyCode::Char('g')], "g", Action::ToggleLogScale, "log colour scale", "plane", Some("log")),
    bind(&[KeyCode::Char('[')], "[", Action::SelectUp, "previous plane", "plane", None),
    bind(&[KeyCode::Char(']')], "]", Action::SelectDown, "next plane", "plane", None),
    PAUSE.off_bar(),
    QUIT,
    NEXT_VIEW, SHOW_DASHBOARD, SHOW_PROBES, SHOW_ABLATIONS, SHOW_PLANES, SHOW_CURVATURE, EXPORT, HELP_KEY,
];

/// The curvature view's keys.
#[rustfmt::skip]
pub const CURVATURES: &[Binding] = &[
    CURVATURE,
    bind(&[KeyCode::Esc], "Esc", Action::CancelProbe, "cancel the running curvature job", "probe", Some("cancel")),
    bind(&[KeyCode::Up, KeyCode::Char('k')], "↑ k", Action::SelectUp, "previous result", "curvature", None),
    bind(&[KeyCode::Down, KeyCode::Char('j')], "↓ j", Action::SelectDown, "next result", "curvature", None),
    bind(&[KeyCode::Char('l')], "l", Action::ToggleLogScale, "density axis: log / linear", "curvature", Some("log")),
    PAUSE.off_bar(),
    QUIT,
    NEXT_VIEW, SHOW_DASHBOARD, SHOW_PROBES, SHOW_ABLATIONS, SHOW_PLANES, SHOW_CURVATURE, EXPORT, HELP_KEY,
];

#[rustfmt::skip]
const DIGITS: &[KeyCode] = &[
    KeyCode::Char('0'), KeyCode::Char('1'), KeyCode::Char('2'), KeyCode::Char('3'), KeyCode::Char('4'),
    KeyCode::Char('5'), KeyCode::Char('6'), KeyCode::Char('7'), KeyCode::Char('8'), KeyCode::Char('9'),
    KeyCode::Char('.'), KeyCode::Char('-'),
];

/// Keys while the probe form is open.
#[rustfmt::skip]
pub const PROBE_FORM: &[Binding] = &[
    bind(&[KeyCode::Up, KeyCode::Char('k')], "↑ k", Action::FormUp, "previous field", "form", None),
    bind(&[KeyCode::Down, KeyCode::Char('j')], "↓ j", Action::FormDown, "next field", "form", Some("field")),
    bind(&[KeyCode::Left, KeyCode::Char('h')], "← h", Action::FormPrev, "previous choice / smaller", "form", None),
    bind(&[KeyCode::Right, KeyCode::Char('l')], "→ l", Action::FormNext, "next choice / larger", "form", Some("change")),
    bind(DIGITS, "0-9", Action::FormInput('0'), "type a number", "form", None),
    bind(&[KeyCode::Backspace], "⌫", Action::FormBackspace, "delete a digit", "form", None),
    bind(&[KeyCode::Enter], "Enter", Action::FireProbe, "run the probe", "form", Some("run")),
    bind(&[KeyCode::Esc], "Esc", Action::CloseOverlay, "close the form", "form", Some("close")),
];

/// Keys while the plane form is open: the probe form's, with Enter running the plane.
#[rustfmt::skip]
pub const PLANE_FORM: &[Binding] = &[
    PROBE_FORM[0], PROBE_FORM[1], PROBE_FORM[2], PROBE_FORM[3], PROBE_FORM[4], PROBE_FORM[5],
    bind(&[KeyCode::Enter], "Enter", Action::FirePlane, "measure the plane", "form", Some("run")),
    PROBE_FORM[7],
];

/// Keys while the curvature form is open: the probe form's, with Enter running the job.
#[rustfmt::skip]
pub const CURVATURE_FORM: &[Binding] = &[
    PROBE_FORM[0], PROBE_FORM[1], PROBE_FORM[2], PROBE_FORM[3], PROBE_FORM[4], PROBE_FORM[5],
    bind(&[KeyCode::Enter], "Enter", Action::FireCurvature, "measure the curvature", "form", Some("run")),
    PROBE_FORM[7],
];

/// Keys while the connect form is open.
#[rustfmt::skip]
pub const CONNECT_FORM: &[Binding] = &[
    PROBE_FORM[0], PROBE_FORM[1], PROBE_FORM[2], PROBE_FORM[3], PROBE_FORM[4], PROBE_FORM[5],
    bind(&[KeyCode::Enter], "Enter", Action::FireConnect, "measure the connection", "form", Some("run")),
    PROBE_FORM[7],
];

/// Keys while the quit confirmation is open.
#[rustfmt::skip]
pub const CONFIRM_QUIT: &[Binding] = &[
    bind(&[KeyCode::Char('y'), KeyCode::Enter], "y", Action::ConfirmQuit, "stop training, save a checkpoint and quit", "quit", Some("stop and quit")),
    bind(&[KeyCode::Char('n'), KeyCode::Esc, KeyCode::Char('q')], "n", Action::CloseOverlay, "keep training", "quit", Some("keep training")),
];

/// Keys while the help is open.
#[rustfmt::skip]
pub const HELP: &[Binding] = &[
    bind(&[KeyCode::Esc, KeyCode::Char('?'), KeyCode::Char('q')], "Esc", Action::CloseOverlay, "close the help", "help", Some("close")),
];

/// Keys of the table of a sweep's runs (`valleys watch SWEEP_DIR`).
#[rustfmt::skip]
pub const SWEEP_TABLE: &[Binding] = &[
    bind(&[KeyCode::Up, KeyCode::Char('k')], "↑↓", Action::SelectUp, "select the run above", "sweep", Some("select")),
    bind(&[KeyCode::Down, KeyCode::Char('j')], "↓", Action::SelectDown, "select the run below", "sweep", None),
    bind(&[KeyCode::Enter], "Enter", Action::OpenSelected, "open the selected run's dashboard", "sweep", Some("open")),
    bind(&[KeyCode::Char('g')], "g", Action::ToggleGroups, "runs or groups of seeds", "sweep", Some("groups")),
    bind(&[KeyCode::Char('c')], "c", Action::ToggleRunCurves, "runs or every run's curve in one chart", "sweep", Some("curves")),
    bind(&[KeyCode::Char('m')], "m", Action::ToggleGroupIterate, "the curves: SWA or SGD", "sweep", Some("swa/sgd")),
    bind(&[KeyCode::Char('q'), KeyCode::Esc], "q", Action::Quit, "quit", "sweep", Some("quit")),
];

/// The action a key press means in the context whose bindings are `table`.
pub fn action_for(key: KeyEvent, table: &[Binding]) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::ForceQuit);
    }
    let action = table
        .iter()
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)?;
    Some(match (action, key.code) {
        (Action::FormInput(_), KeyCode::Char(c)) => Action::FormInput(c),
        (other, _) => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_their_actions_in_each_context() {
        assert_eq!(
            action_for(press(KeyCode::Char(' ')), DASHBOARD),
            Some(Action::TogglePause)
        );
        assert_eq!(
            action_for(press(KeyCode::Char('k')), DASHBOARD),
            Some(Action::ScrollUp)
        );
        assert_eq!(action_for(press(KeyCode::Char('y')), DASHBOARD), None);
        let seven = action_for(press(KeyCode::Char('7')), PROBE_FORM);
        assert_eq!(seven, Some(Action::FormInput('7')));
        let esc = action_for(press(KeyCode::Esc), PROBES);
        assert_eq!(esc, Some(Action::CancelProbe));
        assert_eq!(
            action_for(press(KeyCode::Char('y')), CONFIRM_QUIT),
            Some(Action::ConfirmQuit)
        );
        assert_eq!(
            action_for(press(KeyCode::Esc), HELP),
            Some(Action::CloseOverlay)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(ctrl_c, DASHBOARD), Some(Action::ForceQuit));
        let mut release = press(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(action_for(release, DASHBOARD), None, "only presses count");
    }

    #[test]
    fn no_key_is_bound_twice_in_a_context() {
        for table in [
            DASHBOARD,
            PROBES,
            ABLATIONS,
            ABLATION_MENU,
            PROBE_FORM,
            PLANES,
            PLANE_FORM,
            CURVATURES,
            CURVATURE_FORM,
            CONNECT_FORM,
            CONFIRM_QUIT,
            HELP,
        ] {
            let mut keys: Vec<KeyCode> =
                table.iter().flat_map(|b| b.keys.iter().copied()).collect();
            let n = keys.len();
            keys.sort_by_key(|k| format!("{k:?}"));
            keys.dedup();
            assert_eq!(keys.len(), n);
        }
    }
}
