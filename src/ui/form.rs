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
pub(super) const RUNS_OWN: &str = "run";

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
                number("ratio", s.ratio.unwrap_or(0.5), false),
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

    /// True for fields that matter with the current choices (norm only for gaussian, the
    /// ratio only for sign-match).
    pub fn applies(&self, index: usize) -> bool {
        let direction = self.get("direction").text();
        match self.fields[index].name {
            "norm" => direction == "gaussian",
            "seed" | "directions" => matches!(
                direction.as_str(),
                "uniform" | "gaussian" | "sign" | "sign-match"
            ),
            "ratio" => direction == "sign-match",
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
            ratio: None,
            ..self.base.clone()
        };
        let spec = ProbeSpec {
            ratio: (spec.direction == DirectionKind::SignMatch)
                .then(|| num("ratio"))
                .transpose()?,
            ..spec
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
mod tests;
