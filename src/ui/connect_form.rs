//! The connect form (`C`): the line between two iterates of the live run (the SGD iterate,
//! the SWA average, or an SGD iterate the run kept at an epoch end), BN statistics recomputed
//! at each point, and optionally a Bézier curve trained between them: `valleys connect` on
//! the live weights. It only fires a request that passes the command line's checks.

use super::form::{Editing, Field, Value, choice, next_field, nudge, number, number_in};
use crate::probe::BnMode;
use crate::protocol::{ConnectRequest, Iterate};

/// The word the B-epoch field shows for the live iterate.
pub const LIVE: &str = "live";

/// The form offers SWA → SGD first: the paper's interpolation.
const ITERATES: &[&str] = &["swa", "sgd"];
const B_ITERATES: &[&str] = &["sgd", "swa"];

/// The form's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    /// Why the current values cannot be fired, if they cannot.
    pub error: Option<String>,
    /// True until the selected number is typed into: the first digit replaces it.
    fresh: bool,
}

impl Editing for ConnectForm {
    fn selection(&mut self) -> (&mut Field, &mut bool) {
        (&mut self.fields[self.selected], &mut self.fresh)
    }

    fn check(&mut self) {
        self.error = self.request().err().map(|e| e.0);
    }
}

impl Default for ConnectForm {
    fn default() -> Self {
        let mut form = Self {
            fields: vec![
                choice("from (A)", ITERATES, "swa"),
                choice("to (B)", B_ITERATES, "sgd"),
                Field {
                    name: "B at epoch",
                    value: Value::Number {
                        text: LIVE.into(),
                        integer: true,
                    },
                },
                number("points", 11.0, true),
                choice("bn", BnMode::NAMES, BnMode::Recompute.as_str()),
                number("curve epochs", 0.0, true),
            ],
            selected: 0,
            error: None,
            fresh: true,
        };
        form.check();
        form
    }
}

impl ConnectForm {
    fn text(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(Field::text)
            .unwrap_or_default()
    }

    /// True for fields that matter with the current values (B's iterate only when B is live:
    /// a kept epoch is an SGD iterate).
    pub fn applies(&self, index: usize) -> bool {
        match self.fields[index].name {
            "to (B)" => self.text("B at epoch") == LIVE,
            _ => true,
        }
    }

    pub fn step(&mut self, by: isize) {
        self.selected = next_field(self.selected, self.fields.len(), by, |i| self.applies(i));
        self.fresh = true;
    }

    pub fn cycle(&mut self, by: isize) {
        nudge(&mut self.fields[self.selected], by);
        self.fresh = false;
        self.check();
    }

    /// The connection the form describes, or why it cannot be fired (what depends on the run,
    /// such as an epoch it did not keep or an empty average, the worker answers).
    pub fn request(&self) -> Result<ConnectRequest, crate::error::Invalid> {
        let whole = |name: &str| -> Result<u64, crate::error::Invalid> {
            let v = number_in(&self.fields, name)?;
            if v < 0.0 || v.fract() != 0.0 {
                return Err(format!("{name}: expected a whole number, not {v}").into());
            }
            Ok(v as u64)
        };
        let iterate = |name: &str| {
            Iterate::from_name(&self.text(name))
                .ok_or_else(|| crate::error::Invalid(format!("{name}: not a choice")))
        };
        let b_epoch = match self.text("B at epoch").as_str() {
            LIVE | "" => None,
            _ => Some(u32::try_from(whole("B at epoch")?).map_err(|_| "B at epoch: too large")?),
        };
        let request = ConnectRequest {
            a: iterate("from (A)")?,
            b: iterate("to (B)")?,
            b_epoch,
            points: whole("points")? as usize,
            bn: BnMode::from_name(&self.text("bn")).ok_or("bn: not a choice")?,
            curve_epochs: u32::try_from(whole("curve epochs")?)
                .map_err(|_| "curve epochs: too large")?,
        };
        if !(2..=1001).contains(&request.points) {
            return Err(format!("points {}: expected 2..=1001", request.points).into());
        }
        if request.curve_epochs > 1000 {
            return Err(format!("curve epochs {}: expected 0..=1000", request.curve_epochs).into());
        }
        if request.b_epoch.is_none() && request.a == request.b {
            return Err(format!(
                "{0} → {0}: the same weights; expected two iterates, or B at an epoch",
                request.a.as_str()
            )
            .into());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(form: &mut ConnectForm, name: &str) {
        form.selected = form.fields.iter().position(|f| f.name == name).unwrap();
        form.fresh = true;
    }

    #[test]
    fn the_form_fires_swa_to_sgd_and_takes_an_epoch_and_a_curve() {
        let mut form = ConnectForm::default();
        let r = form.request().unwrap();
        assert_eq!(
            (r.a, r.b, r.b_epoch, r.points, r.bn, r.curve_epochs),
            (Iterate::Swa, Iterate::Sgd, None, 11, BnMode::Recompute, 0)
        );
        select(&mut form, "B at epoch");
        form.input('3');
        select(&mut form, "curve epochs");
        form.input('2');
        let r = form.request().unwrap();
        assert_eq!((r.b_epoch, r.curve_epochs), (Some(3), 2));
        // With B at an epoch, B's iterate is not asked (a kept epoch is an SGD iterate).
        let b = form.fields.iter().position(|f| f.name == "to (B)").unwrap();
        assert!(!form.applies(b));
        assert_eq!(
            r.describe(),
            "swa → sgd@epoch 3: 11 points, BN recompute, Bézier curve 2 epochs"
        );
    }

    #[test]
    fn the_same_weights_and_bad_numbers_are_refused_in_the_form() {
        let mut form = ConnectForm::default();
        select(&mut form, "to (B)");
        form.cycle(1);
        assert!(
            form.error.as_deref().unwrap().contains("the same weights"),
            "{:?}",
            form.error
        );
        form.cycle(1);
        select(&mut form, "points");
        form.input('1');
        assert!(
            form.error.as_deref().unwrap().starts_with("points 1"),
            "{:?}",
            form.error
        );
        form.backspace();
        assert!(
            form.error.as_deref().unwrap().starts_with("points: ''"),
            "{:?}",
            form.error
        );
    }
}
