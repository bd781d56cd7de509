//! The plane form (`P`): the plane through SWA and SGD, two random directions or two Hessian
//! eigenvectors (the top two), pre-filled
//! with `valleys plane`'s defaults and the experiment's probe settings (BN mode, parameters,
//! subsets, seed). Like the probe form it only fires a valid spec.

use super::form::{Editing, Field, choice, next_field, nudge, number, number_in};
use crate::probe::plane::{PlaneKind, PlaneSettings, PlaneSpec};
use crate::probe::{BnMode, CentreKind, DirectionKind, Normalisation, ParamGroup, ProbeSpec};

/// Random directions a plane can be drawn along (interpolation and Hessian directions are
/// lines of their own, not planes' second axis).
const DIRECTIONS: &[&str] = &["gaussian", "uniform", "sign"];
const CENTRES: &[&str] = &["swa", "sgd"];

/// The form's state.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaneForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    /// Why the current values cannot be fired, if they cannot.
    pub error: Option<String>,
    /// The experiment's probe settings: the subsets the form does not show come from here.
    base: ProbeSpec,
    /// True until the selected number is typed into: the first digit replaces it.
    fresh: bool,
}

impl Editing for PlaneForm {
    fn selection(&mut self) -> (&mut Field, &mut bool) {
        (&mut self.fields[self.selected], &mut self.fresh)
    }

    fn check(&mut self) {
        self.error = self.spec().err().map(|e| e.0);
    }
}

impl PlaneForm {
    /// A form with the defaults of an SWA–SGD plane and the experiment's probe settings.
    pub fn new(probe: &ProbeSpec, seed: u64) -> Self {
        let s = PlaneSpec::for_kind(PlaneKind::SwaSgd);
        let mut form = Self {
            fields: vec![
                choice("plane", PlaneKind::NAMES, s.kind.as_str()),
                choice("centre", CENTRES, probe.centre.as_str()),
                choice("direction", DIRECTIONS, s.direction.as_str()),
                choice("norm", Normalisation::NAMES, s.norm.as_str()),
                choice("params", ParamGroup::NAMES, probe.params.as_str()),
                choice("bn", BnMode::NAMES, probe.bn.as_str()),
                number("columns", s.points.0 as f64, true),
                number("rows", s.points.1 as f64, true),
                number("x from", s.x.0, false),
                number("x to", s.x.1, false),
                number("y from", s.y.0, false),
                number("y to", s.y.1, false),
                number("seed", probe.seed.unwrap_or(seed) as f64, true),
            ],
            selected: 0,
            error: None,
            base: probe.clone(),
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

    /// True for fields that matter with the current choices (the centre only for random and
    /// Hessian planes, the direction only for planes that draw one, the norm only for
    /// Gaussian directions).
    pub fn applies(&self, index: usize) -> bool {
        let plane = self.text("plane");
        match self.fields[index].name {
            "centre" => plane != "swa-sgd",
            "direction" => plane != "hessian" && plane != "pca",
            "norm" => plane != "hessian" && plane != "pca" && self.text("direction") == "gaussian",
            _ => true,
        }
    }

    /// Moves the selection to the previous (`-1`) or next (`+1`) field that applies.
    pub fn step(&mut self, by: isize) {
        self.selected = next_field(self.selected, self.fields.len(), by, |i| self.applies(i));
        self.fresh = true;
    }

    /// Cycles a choice, or nudges a number, by `by`. A new plane kind brings its own x range.
    pub fn cycle(&mut self, by: isize) {
        let was = self.text("plane");
        nudge(&mut self.fields[self.selected], by);
        let kind = self.text("plane");
        if kind != was
            && let Some(kind) = PlaneKind::from_name(&kind)
        {
            let defaults = PlaneSpec::for_kind(kind);
            self.set_number("x from", defaults.x.0);
            self.set_number("x to", defaults.x.1);
            self.set_number("y from", defaults.y.0);
            self.set_number("y to", defaults.y.1);
        }
        self.fresh = false;
        self.check();
    }

    fn set_number(&mut self, name: &str, value: f64) {
        if let Some(field) = self.fields.iter_mut().find(|f| f.name == name) {
            *field = number(field.name, value, false);
        }
    }

    /// The plane the form describes, or why it cannot be fired: its fields as the settings
    /// `valleys plane` takes, with the same checks.
    pub fn spec(&self) -> Result<PlaneSpec, crate::error::Invalid> {
        let num = |name: &str| number_in(&self.fields, name);
        let pick = |name: &str| self.text(name);
        let kind = PlaneKind::from_name(&pick("plane")).ok_or("plane: not a choice")?;
        let settings = PlaneSettings {
            plane: Some(kind),
            // A swa-sgd plane is centred on SWA; a Hessian one draws no random direction.
            centre: match kind {
                PlaneKind::Random | PlaneKind::Hessian | PlaneKind::Pca => {
                    Some(CentreKind::from_name(&pick("centre")).ok_or("centre: not a choice")?)
                }
                PlaneKind::SwaSgd => None,
            },
            direction: match kind {
                PlaneKind::Hessian | PlaneKind::Pca => None,
                _ => Some(
                    DirectionKind::from_name(&pick("direction"))
                        .ok_or("direction: not a choice")?,
                ),
            },
            norm: match kind {
                PlaneKind::Hessian | PlaneKind::Pca => None,
                _ => Some(Normalisation::from_name(&pick("norm")).ok_or("norm: not a choice")?),
            },
            params: Some(ParamGroup::from_name(&pick("params")).ok_or("params: not a choice")?),
            bn: Some(BnMode::from_name(&pick("bn")).ok_or("bn: not a choice")?),
            points: Some((num("columns")? as usize, num("rows")? as usize)),
            x: Some((num("x from")?, num("x to")?)),
            y: Some((num("y from")?, num("y to")?)),
            seed: Some(num("seed")? as u64),
            train_subset: self.base.train_subset,
            test_subset: self.base.test_subset,
            bn_subset: self.base.bn_subset,
            ..PlaneSettings::default()
        };
        settings.spec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(form: &mut PlaneForm, name: &str) {
        form.selected = form.fields.iter().position(|f| f.name == name).unwrap();
    }

    #[test]
    fn the_form_fires_the_default_swa_sgd_plane_with_the_experiments_settings() {
        let probe = ProbeSpec {
            bn: BnMode::Frozen,
            params: ParamGroup::NonBn,
            bn_subset: Some(500),
            ..ProbeSpec::default()
        };
        let form = PlaneForm::new(&probe, 9);
        let spec = form.spec().unwrap();
        let defaults = PlaneSpec::for_kind(PlaneKind::SwaSgd);
        assert_eq!(spec.kind, PlaneKind::SwaSgd);
        assert_eq!(
            (spec.points, spec.x, spec.y),
            (defaults.points, defaults.x, defaults.y)
        );
        assert_eq!((spec.bn, spec.params), (BnMode::Frozen, ParamGroup::NonBn));
        assert_eq!((spec.bn_subset, spec.seed), (Some(500), Some(9)));
        assert!(!form.applies(1), "an SWA-SGD plane has no centre to choose");
    }

    #[test]
    fn a_random_plane_takes_its_own_range_and_offers_the_centre() {
        let mut form = PlaneForm::new(&ProbeSpec::default(), 1);
        select(&mut form, "plane");
        form.cycle(1);
        let spec = form.spec().unwrap();
        assert_eq!(spec.kind, PlaneKind::Random);
        assert_eq!(spec.x, PlaneSpec::for_kind(PlaneKind::Random).x);
        assert!(form.applies(1));
        form.step(1);
        assert_eq!(form.fields[form.selected].name, "centre");
    }

    #[test]
    fn a_hessian_plane_offers_the_centre_but_no_random_direction() {
        let mut form = PlaneForm::new(&ProbeSpec::default(), 1);
        select(&mut form, "plane");
        form.cycle(2);
        let spec = form.spec().unwrap();
        assert_eq!(spec.kind, PlaneKind::Hessian);
        let defaults = PlaneSpec::for_kind(PlaneKind::Hessian);
        assert_eq!((spec.x, spec.y), (defaults.x, defaults.y));
        assert_eq!(spec.eigenvector_pair(), (1, 2));
        let applies =
            |name: &str| form.applies(form.fields.iter().position(|f| f.name == name).unwrap());
        assert!(applies("centre"));
        assert!(!applies("direction") && !applies("norm"));
    }

    #[test]
    fn bad_grids_and_ranges_are_shown_and_never_fired() {
        let mut form = PlaneForm::new(&ProbeSpec::default(), 1);
        select(&mut form, "columns");
        form.input('1');
        assert!(form.error.is_some(), "a 1-column grid");
        assert!(form.spec().is_err());
        form.input('1');
        assert!(form.error.is_none(), "{:?}", form.error);
        assert_eq!(form.spec().unwrap().points.0, 11);
        select(&mut form, "y to");
        form.fresh = true;
        form.input('-');
        form.input('2');
        let error = form.error.clone().expect("y from -1 to -2 is refused");
        assert!(!error.contains('\n'), "one line: {error}");
    }
}
