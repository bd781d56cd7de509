//! The probe form: fields pre-filled from the experiment's `probe:` section, choices cycled
//! with ←/→, numbers typed in place. It only becomes a request when every value is valid.

use crate::probe::{BnMode, CentreKind, DirectionKind, Normalisation, ParamGroup, ProbeSpec};
use crate::protocol::ProbeRequest;

/// What a field holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Choice {
        options: &'static [&'static str],
        index: usize,
    },
    Number {
        text: String,
        integer: bool,
    },
}

/// One line of the form.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub value: Value,
}

impl Field {
    /// The value as shown.
    pub fn text(&self) -> String {
        match &self.value {
            Value::Choice { options, index } => options[*index].to_owned(),
            Value::Number { text, .. } => text.clone(),
        }
    }
}

/// The form offers the SWA centre first: it is what the paper probes.
const CENTRES: &[&str] = &["swa", "sgd"];

/// The form's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    /// Why the current values cannot be fired, if they cannot.
    pub error: Option<String>,
    /// The experiment's settings: what the form does not show comes from here, and a new
    /// direction takes its grid from here (or its kind's defaults).
    base: ProbeSpec,
    seed: u64,
    /// The run trains on a GPU: the defaults of a GPU (more points) apply.
    gpu: bool,
    /// True until the selected number is typed into: the first digit replaces it.
    fresh: bool,
}

/// What the train-subset field shows for the run's own evaluation subset.
const RUNS_OWN: &str = "run";

pub(super) fn choice(name: &'static str, options: &'static [&'static str], current: &str) -> Field {
    Field {
        name,
        value: Value::Choice {
            options,
            index: options.iter().position(|o| *o == current).unwrap_or(0),
        },
    }
}

pub(super) fn number(name: &'static str, value: f64, integer: bool) -> Field {
    let text = if integer {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    };
    Field {
        name,
        value: Value::Number { text, integer },
    }
}

/// The field after (`by` = 1) or before (-1) `selected` among `n`, skipping those that do not
/// apply, wrapping round.
pub(super) fn next_field(
    selected: usize,
    n: usize,
    by: isize,
    applies: impl Fn(usize) -> bool,
) -> usize {
    let n = n as isize;
    let mut i = selected as isize;
    for _ in 0..n {
        i = (i + by).rem_euclid(n);
        if applies(i as usize) {
            break;
        }
    }
    i as usize
}

/// Cycles a choice, or nudges a number (by 1 for integers, 0.5 otherwise), by `by`.
pub(super) fn nudge(field: &mut Field, by: isize) {
    match &mut field.value {
        Value::Choice { options, index } => {
            *index = (*index as isize + by).rem_euclid(options.len() as isize) as usize;
        }
        Value::Number { text, integer } => {
            if let Ok(v) = text.parse::<f64>() {
                let step = if *integer { 1.0 } else { 0.5 };
                let next = v + step * by as f64;
                *text = if *integer {
                    format!("{}", next.max(0.0) as i64)
                } else {
                    format!("{next}")
                };
            }
        }
    }
}

/// What both forms edit the same way: the selected field, typed into or shortened.
pub trait Editing {
    /// The selected field, and whether it is fresh (the first digit typed replaces it).
    fn selection(&mut self) -> (&mut Field, &mut bool);
    /// Re-checks the values after a change.
    fn check(&mut self);

    /// Types a character into the selected number; the first one after the field is
    /// selected replaces what it showed.
    fn input(&mut self, c: char) {
        let (field, fresh) = self.selection();
        if type_into(field, c, *fresh) {
            *fresh = false;
        }
        self.check();
    }

    /// Deletes the last character of the selected number.
    fn backspace(&mut self) {
        let (field, fresh) = self.selection();
        if let Value::Number { text, .. } = &mut field.value {
            text.pop();
        }
        *fresh = false;
        self.check();
    }
}

/// The number typed into field `name` of `fields`, or a line saying it is not one.
pub(super) fn number_in(fields: &[Field], name: &str) -> Result<f64, crate::error::Invalid> {
    let text = fields
        .iter()
        .find(|f| f.name == name)
        .map(Field::text)
        .unwrap_or_default();
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{name}: '{text}' is not a number").into())
}

/// Types `c` into a number field (digits; also '.' and '-' where it is not an integer); a
/// `fresh` field, or one showing a word, is cleared first. True if it was typed.
pub(super) fn type_into(field: &mut Field, c: char, fresh: bool) -> bool {
    if let Value::Number { text, integer } = &mut field.value
        && (c.is_ascii_digit() || (!*integer && (c == '.' || c == '-')))
    {
        if fresh || text.chars().any(|c| c.is_ascii_alphabetic()) {
            text.clear();
        }
        text.push(c);
        return true;
    }
    false
}

impl Editing for ProbeForm {
    fn selection(&mut self) -> (&mut Field, &mut bool) {
        (&mut self.fields[self.selected], &mut self.fresh)
    }

    fn check(&mut self) {
        self.error = self.request().err().map(|e| e.0);
    }
}

impl ProbeForm {
    /// A form showing `spec` (resolved with the experiment's seed, for a run on a GPU or
    /// not).
    pub fn new(spec: &ProbeSpec, seed: u64, gpu: bool) -> Self {
        let s = spec.resolved(seed, gpu);
        let mut form = Self {
            fields: vec![
                choice("centre", CENTRES, s.centre.as_str()),
                choice("direction", DirectionKind::NAMES, s.direction.as_str()),
                choice("norm", Normalisation::NAMES, s.norm.as_str()),
                choice("params", ParamGroup::NAMES, s.params.as_str()),
                choice("bn", BnMode::NAMES, s.bn.as_str()),
                number("from", s.from.unwrap_or(-10.0), false),
                number("to", s.to.unwrap_or(10.0), false),
                number("points", s.points.unwrap_or(41) as f64, true),
                Field {
                    name: "train subset",
                    value: Value::Number {
                        text: s
                            .train_subset
                            .map_or(RUNS_OWN.to_owned(), crate::config::probe::samples::describe),
                        integer: true,
                    },
                },
                number("seed", s.seed.unwrap_or(seed) as f64, true),
                number("directions", 1.0, true),
            ],
            selected: 1,
            error: None,
            base: spec.clone(),
            seed,
            gpu,
            fresh: true,
        };
        form.check();
        form
    }

    fn get(&self, name: &str) -> &Field {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .expect("every field name exists")
    }

    fn set_number(&mut self, name: &str, value: f64) {
        if let Some(Field {
            value: Value::Number { text, integer },
            ..
        }) = self.fields.iter_mut().find(|f| f.name == name)
        {
            *text = if *integer {
                format!("{}", value as i64)
            } else {
                format!("{value}")
            };
        }
    }

    /// True for fields that matter with the current choices (norm only for gaussian).
    pub fn applies(&self, index: usize) -> bool {
        let direction = self.get("direction").text();
        match self.fields[index].name {
            "norm" => direction == "gaussian",
            "seed" | "directions" => matches!(direction.as_str(), "uniform" | "gaussian" | "sign"),
            "centre" => direction != "interp",
            _ => true,
        }
    }

    /// Moves the selection to the previous (`-1`) or next (`+1`) field that applies.
    pub fn step(&mut self, by: isize) {
        self.selected = next_field(self.selected, self.fields.len(), by, |i| self.applies(i));
        self.fresh = true;
    }

    /// Cycles a choice, or nudges a number, by `by`.
    pub fn cycle(&mut self, by: isize) {
        let was_direction = self.get("direction").text();
        nudge(&mut self.fields[self.selected], by);
        // Each direction has its own grid: the experiment's for its direction's kind, else
        // the kind's defaults (interpolation: SWA at 0, SGD at 1, [-2, 3]).
        let direction = self.get("direction").text();
        if self.fields[self.selected].name == "direction"
            && direction != was_direction
            && let Some(kind) = DirectionKind::from_name(&direction)
        {
            let s = self.base.with_direction(kind).resolved(self.seed, self.gpu);
            self.set_number("from", s.from.unwrap_or(-10.0));
            self.set_number("to", s.to.unwrap_or(10.0));
            self.set_number("points", s.points.unwrap_or(41) as f64);
        }
        self.fresh = false;
        self.check();
    }

    /// The value chosen in field `name`, parsed by `parse` (choices are the enums' own names,
    /// so every one parses; a miss is reported, never replaced by a default).
    fn chosen<T>(
        &self,
        name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, crate::error::Invalid> {
        let text = self.get(name).text();
        parse(&text).ok_or_else(|| format!("{name}: '{text}' is not a choice").into())
    }

    /// The request the form describes, or why it cannot be fired.
    pub fn request(&self) -> Result<ProbeRequest, crate::error::Invalid> {
        let num = |name: &str| number_in(&self.fields, name);
        let spec = ProbeSpec {
            centre: self.chosen("centre", CentreKind::from_name)?,
            direction: self.chosen("direction", DirectionKind::from_name)?,
            norm: self.chosen("norm", Normalisation::from_name)?,
            params: self.chosen("params", ParamGroup::from_name)?,
            bn: self.chosen("bn", BnMode::from_name)?,
            from: Some(num("from")?),
            to: Some(num("to")?),
            points: Some(num("points")? as usize),
            train_subset: match self.get("train subset").text().as_str() {
                "" | RUNS_OWN => None,
                "all" => Some(usize::MAX),
                _ => Some(num("train subset")? as usize),
            },
            seed: Some(num("seed")? as u64),
            // A range typed in the form is the range: no auto range over it.
            auto_range: None,
            ..self.base.clone()
        };
        spec.validate()?;
        let directions = num("directions")? as usize;
        if directions == 0 {
            return Err(crate::error::Invalid("directions: at least 1".into()));
        }
        if directions > 1 && !spec.direction.is_random() {
            return Err(crate::error::Invalid(format!(
                "directions: {} is not random; use 1",
                spec.direction.as_str()
            )));
        }
        Ok(ProbeRequest {
            spec,
            directions: (directions > 1).then_some(directions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_starts_from_the_spec_and_fires_it() {
        let form = ProbeForm::new(&ProbeSpec::default(), 7, false);
        let request = form.request().unwrap();
        let (got, want) = (request.spec, ProbeSpec::default().resolved(7, false));
        assert_eq!(
            (got.centre, got.direction, got.params, got.bn),
            (want.centre, want.direction, want.params, want.bn)
        );
        assert_eq!(
            (got.from, got.to, got.points),
            (want.from, want.to, want.points)
        );
        assert_eq!((got.seed, got.train_subset), (Some(7), want.train_subset));
        assert_eq!(request.directions, None);
    }

    #[test]
    fn choosing_interp_switches_to_its_range_and_hides_what_it_ignores() {
        let mut form = ProbeForm::new(&ProbeSpec::default(), 1, false);
        form.selected = 1;
        for _ in 0..3 {
            form.cycle(1);
        }
        assert_eq!(form.fields[1].text(), "interp");
        let spec = form.request().unwrap().spec;
        assert_eq!(
            (spec.from, spec.to, spec.points),
            (Some(-2.0), Some(3.0), Some(21))
        );
        assert!(!form.applies(0) && !form.applies(2) && !form.applies(9));
        form.selected = 8;
        form.step(1);
        assert_eq!(
            form.selected, 1,
            "skips the fields interp ignores, wrapping round"
        );
    }

    #[test]
    fn each_direction_gets_its_grid_back_and_typing_replaces_a_number() {
        let base = ProbeSpec {
            from: Some(-5.0),
            to: Some(5.0),
            points: Some(21),
            bn_subset: Some(300),
            min_rise: Some(0.01),
            ..Default::default()
        };
        let mut form = ProbeForm::new(&base, 1, false);
        form.selected = 1;
        let grid = |form: &ProbeForm| {
            let s = form.request().unwrap().spec;
            (s.from, s.to, s.points)
        };
        for _ in 0..3 {
            form.cycle(1);
        }
        assert_eq!(grid(&form), (Some(-2.0), Some(3.0), Some(21)));
        form.cycle(1); // hessian: the experiment's grid again
        assert_eq!(grid(&form), (Some(-5.0), Some(5.0), Some(21)));
        form.cycle(1);
        assert_eq!(form.fields[1].text(), "uniform");
        assert_eq!(grid(&form), (Some(-5.0), Some(5.0), Some(21)));
        // Settings the form does not show come from the experiment.
        let spec = form.request().unwrap().spec;
        assert_eq!((spec.bn_subset, spec.min_rise), (Some(300), Some(0.01)));
        // Select "to" and type: the digits replace 5, then append.
        form.selected = 5;
        form.step(1);
        assert_eq!(form.fields[form.selected].name, "to");
        form.input('1');
        form.input('2');
        assert_eq!(form.fields[6].text(), "12");
        // The train subset shows the run's own until a number is typed.
        assert_eq!(form.fields[8].text(), "run");
        assert_eq!(form.request().unwrap().spec.train_subset, None);
        form.selected = 7;
        form.step(1);
        form.input('5');
        assert_eq!(form.request().unwrap().spec.train_subset, Some(5));
    }

    #[test]
    fn invalid_numbers_are_shown_and_never_fired() {
        let mut form = ProbeForm::new(&ProbeSpec::default(), 1, false);
        form.selected = 7; // points
        form.backspace();
        form.backspace();
        form.input('2');
        assert_eq!(form.fields[7].text(), "2");
        assert!(
            form.error.as_deref().unwrap().contains("expected 3..="),
            "{:?}",
            form.error
        );
        assert!(form.request().is_err());
        form.input('1');
        assert!(form.error.is_none());
        assert_eq!(form.request().unwrap().spec.points, Some(21));
        form.selected = 7;
        form.input('x');
        assert_eq!(form.fields[7].text(), "21", "letters are ignored");
    }

    #[test]
    fn several_directions_make_a_batch_request() {
        let mut form = ProbeForm::new(&ProbeSpec::default(), 1, false);
        form.selected = 10;
        form.backspace();
        form.input('5');
        assert_eq!(form.request().unwrap().directions, Some(5));
    }
}
