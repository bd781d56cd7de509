//! The curvature form (`H`): a Hessian job on the live weights, pre-filled from the
//! experiment's `curvature:` section (or `valleys curvature`'s defaults). Like the other forms
//! it only fires a spec that passes the same checks as the command line.

use super::form::{Editing, Field, RUNS_OWN, Value, choice, next_field, nudge, number, number_in};
use crate::config::curvature::{CurvatureBn, CurvatureCentres, CurvatureSpec, SharpnessScale};
use crate::probe::ParamGroup;

/// The form's state.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvatureForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    /// Why the current values cannot be fired, if they cannot.
    pub error: Option<String>,
    /// The experiment's section: what the form does not show comes from here.
    base: CurvatureSpec,
    /// True until the selected number is typed into: the first digit replaces it.
    fresh: bool,
}

impl Editing for CurvatureForm {
    fn selection(&mut self) -> (&mut Field, &mut bool) {
        (&mut self.fields[self.selected], &mut self.fresh)
    }

    fn check(&mut self) {
        self.error = self.spec().err().map(|e| e.0);
    }
}

/// The defaults `valleys curvature` resolves a section's unset counts to.
fn count(value: Option<usize>, default: usize) -> f64 {
    value.unwrap_or(default) as f64
}

impl CurvatureForm {
    pub fn new(base: &CurvatureSpec) -> Self {
        let samples = Field {
            name: "samples",
            value: Value::Number {
                text: base
                    .samples
                    .map_or(RUNS_OWN.to_owned(), crate::config::probe::samples::describe),
                integer: true,
            },
        };
        let mut form = Self {
            fields: vec![
                choice("centre", CurvatureCentres::NAMES, base.centre.as_str()),
                choice("params", ParamGroup::NAMES, base.params.as_str()),
                choice("bn", CurvatureBn::NAMES, base.bn.as_str()),
                samples,
                number("sets", count(base.sets, 3), true),
                number("top k", count(base.top_k, 3), true),
                number("trace vectors", count(base.trace_vectors, 20), true),
                number("density runs", count(base.density_runs, 2), true),
                number("noise draws", count(base.noise_draws, 10), true),
                number("ascent steps", count(base.ascent_steps, 5), true),
                number("rho", base.rho.unwrap_or(0.01), false),
                choice("scale", SharpnessScale::NAMES, base.scale.as_str()),
            ],
            selected: 0,
            error: None,
            base: base.clone(),
            fresh: true,
        };
        form.check();
        form
    }

    fn text(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(Field::text)
            .unwrap_or_default()
    }

    /// True for fields that matter with the current values (ρ and the scale only with a
    /// sharpness measure).
    pub fn applies(&self, index: usize) -> bool {
        match self.fields[index].name {
            "rho" | "scale" => self.text("noise draws") != "0" || self.text("ascent steps") != "0",
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

    /// The job the form describes, or why it cannot be fired (k, ρ, counts out of range;
    /// what depends on the run, such as more samples than it has, the worker answers).
    pub fn spec(&self) -> Result<CurvatureSpec, crate::error::Invalid> {
        let num = |name: &str| number_in(&self.fields, name);
        let whole = |name: &str| -> Result<usize, crate::error::Invalid> {
            let v = num(name)?;
            if v < 0.0 || v.fract() != 0.0 {
                return Err(format!("{name}: expected a whole number, not {v}").into());
            }
            Ok(v as usize)
        };
        let pick = |name: &str| self.text(name);
        let spec = CurvatureSpec {
            centre: CurvatureCentres::from_name(&pick("centre")).ok_or("centre: not a choice")?,
            params: ParamGroup::from_name(&pick("params")).ok_or("params: not a choice")?,
            bn: CurvatureBn::from_name(&pick("bn")).ok_or("bn: not a choice")?,
            samples: match pick("samples").as_str() {
                "" | RUNS_OWN => None,
                "all" => Some(usize::MAX),
                _ => Some(whole("samples")?),
            },
            sets: Some(whole("sets")?),
            top_k: Some(whole("top k")?),
            trace_vectors: Some(whole("trace vectors")?),
            density_runs: Some(whole("density runs")?),
            noise_draws: Some(whole("noise draws")?),
            ascent_steps: Some(whole("ascent steps")?),
            rho: Some(num("rho")?),
            scale: SharpnessScale::from_name(&pick("scale")).ok_or("scale: not a choice")?,
            every_epochs: None,
            ..self.base.clone()
        };
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(form: &mut CurvatureForm, name: &str) {
        form.selected = form.fields.iter().position(|f| f.name == name).unwrap();
    }

    #[test]
    fn the_form_fires_the_experiments_section() {
        let base = CurvatureSpec {
            samples: Some(256),
            trace_vectors: Some(8),
            density_runs: Some(1),
            density_steps: Some(15),
            bn: CurvatureBn::Eval,
            every_epochs: Some(3),
            ..Default::default()
        };
        let spec = CurvatureForm::new(&base).spec().unwrap();
        assert_eq!(spec.samples, Some(256));
        assert_eq!((spec.trace_vectors, spec.density_runs), (Some(8), Some(1)));
        assert_eq!(spec.density_steps, Some(15), "kept from the section");
        assert_eq!(spec.bn, CurvatureBn::Eval);
        assert_eq!(spec.every_epochs, None, "a job is not tracking");
        let plain = CurvatureForm::new(&CurvatureSpec::default())
            .spec()
            .unwrap();
        assert_eq!(plain.samples, None, "the run's own subset");
        assert_eq!(plain.top_k, Some(3));
    }

    #[test]
    fn bad_values_are_shown_in_one_line_and_never_fired() {
        let mut form = CurvatureForm::new(&CurvatureSpec::default());
        select(&mut form, "top k");
        form.input('1');
        form.input('1');
        let error = form.error.clone().expect("k = 11 is refused");
        assert!(error.contains("curvature.top_k = 11"), "{error}");
        assert!(form.spec().is_err());
        form.backspace();
        assert!(form.error.is_none(), "{:?}", form.error);
        select(&mut form, "rho");
        form.fresh = true;
        form.input('0');
        assert!(form.error.clone().unwrap().contains("curvature.rho = 0"));
        select(&mut form, "samples");
        form.fresh = true;
        form.input('0');
        assert!(
            form.error
                .clone()
                .unwrap()
                .contains("curvature.samples = 0")
        );
    }

    #[test]
    fn rho_is_offered_only_with_a_sharpness_measure() {
        let base = CurvatureSpec {
            noise_draws: Some(0),
            ascent_steps: Some(0),
            ..Default::default()
        };
        let form = CurvatureForm::new(&base);
        let rho = form.fields.iter().position(|f| f.name == "rho").unwrap();
        assert!(!form.applies(rho));
        assert!(CurvatureForm::new(&CurvatureSpec::default()).applies(rho));
    }
}
