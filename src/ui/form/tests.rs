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
    form.cycle(1); // sign-match, with the ratio to set
    assert_eq!(form.fields[1].text(), "sign-match");
    assert_eq!(form.request().unwrap().spec.ratio, Some(0.5));
    assert!(form.applies(form.fields.iter().position(|f| f.name == "ratio").unwrap()));
    form.cycle(1);
    assert_eq!(form.fields[1].text(), "uniform");
    assert_eq!(form.request().unwrap().spec.ratio, None);
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
