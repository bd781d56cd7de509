use super::*;

#[test]
fn defaults_depend_on_the_direction() {
    let uniform = ProbeSpec::default().resolved(7, true);
    assert_eq!(
        (uniform.from, uniform.to, uniform.points),
        (Some(-10.0), Some(10.0), Some(41))
    );
    assert_eq!(uniform.seed, Some(7));
    let interp = ProbeSpec {
        direction: DirectionKind::Interp,
        ..Default::default()
    }
    .resolved(1, true);
    let grid = interp.grid();
    assert_eq!(grid.len(), 201);
    assert_eq!(
        (grid[0], grid[80], grid[120], grid[200]),
        (-2.0, 0.0, 1.0, 3.0)
    );
    assert!(uniform.grid().contains(&0.0));
}

#[test]
fn an_empty_range_or_too_few_points_is_refused() {
    let bad = ProbeSpec {
        from: Some(1.0),
        to: Some(1.0),
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().0.contains("expected from < to"));
    let bad = ProbeSpec {
        points: Some(2),
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().0.contains("expected 3..="));
    assert!(ProbeSpec::default().resolved(1, false).validate().is_ok());
}

#[test]
fn the_yaml_section_reads_with_kebab_case_values() {
    let spec: ProbeSpec = serde_yaml::from_str(
        "{centre: sgd, direction: gaussian, norm: filter, params: non-bn, bn: frozen, points: 21}",
    )
    .unwrap();
    assert_eq!(spec.params, ParamGroup::NonBn);
    assert_eq!(
        spec.summary(),
        "gaussian (filter) seed 0 · sgd · non-bn · BN frozen · 21 pts"
    );
    assert!(serde_yaml::from_str::<ProbeSpec>("{direction: diagonal}").is_err());
}
