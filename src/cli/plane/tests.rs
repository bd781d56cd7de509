use super::PlaneArgs;
use clap::Args;

/// Flags of `valleys plane` that say how to show or where to run a plane, not which plane:
/// a sweep has no use for them (its tiles run under the sweep's own executor and `slurm:`).
const NOT_SETTINGS: [&str; 18] = [
    "run_dir",
    "checkpoint",
    "show",
    "log",
    "ascii",
    "device",
    "executor",
    "jobs",
    "partition",
    "gres",
    "cpus_per_task",
    "mem",
    "time",
    "max_parallel",
    "extra",
    "status",
    "cancel",
    "tile",
];

/// A value for each setting of a random plane, none of them the default.
const VALUES: [(&str, &str); 15] = [
    ("plane", "random"),
    ("centre", "sgd"),
    ("direction", "uniform"),
    ("norm", "layer"),
    ("bias_bn", "keep"),
    ("params", "non-bn"),
    ("points", "5x7"),
    ("x", "-1:2"),
    ("y", "-2:3"),
    ("bn", "frozen"),
    ("train_subset", "100"),
    ("test_subset", "all"),
    ("bn_subset", "300"),
    ("seed", "9"),
    ("point_batch", "4"),
];

/// The settings only a Hessian plane takes, with the ones it shares.
const HESSIAN_VALUES: [(&str, &str); 6] = [
    ("plane", "hessian"),
    ("centre", "sgd"),
    ("points", "5x7"),
    ("bn", "batch"),
    ("eigenvectors", "2,4"),
    ("hessian_batch", "64"),
];

/// The plane the flags give and the plane the same settings give as a sweep's section.
fn through_flags_and_sweep(
    command: &clap::Command,
    values: &[(&str, &str)],
) -> (
    valleys::probe::plane::PlaneSpec,
    Option<valleys::probe::plane::PlaneSpec>,
) {
    let mut argv = vec!["plane".to_owned(), "r".to_owned()];
    for (key, value) in values {
        argv.push(format!("--{}", key.replace('_', "-")));
        argv.push((*value).to_owned());
    }
    let matches = command.clone().try_get_matches_from(&argv).unwrap();
    let args = <PlaneArgs as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
    let from_flags = args.settings().spec().unwrap();

    // As a person writes it: numbers bare, the rest as text.
    let section: Vec<String> = values
        .iter()
        .map(|(k, v)| match v.parse::<u64>() {
            Ok(_) => format!("{k}: {v}"),
            Err(_) => format!("{k}: '{v}'"),
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.yaml");
    std::fs::write(
        &path,
        format!("experiment: base.yaml\nplane: {{{}}}\n", section.join(", ")),
    )
    .unwrap();
    let sweep = valleys::sweep::SweepFile::load(&path).unwrap();
    (from_flags, sweep.plane)
}

#[test]
fn a_sweeps_plane_section_takes_every_option_valleys_plane_takes_with_the_same_result() {
    let command = PlaneArgs::augment_args(clap::Command::new("plane"));
    let flags: Vec<String> = command
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .filter(|id| !NOT_SETTINGS.contains(&id.as_str()))
        .collect();
    let mut keys: Vec<&str> = VALUES.iter().map(|(k, _)| *k).collect();
    keys.extend(["eigenvectors", "hessian_batch", "tiles"]);
    assert_eq!(flags, keys, "every flag of valleys plane has a sweep key");

    // tiles: how the plane is split, as --tiles, checked against its rows.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.yaml");
    std::fs::write(
        &path,
        "experiment: base.yaml\nplane: {points: 5x7, tiles: 3}\n",
    )
    .unwrap();
    let sweep = valleys::sweep::SweepFile::load(&path).unwrap();
    assert_eq!(sweep.plane_tiles, Some(3));
    assert_eq!(sweep.plane.unwrap().points, (5, 7));
    for (tiles, expected) in [
        ("8", "tiles 8: expected 1..=7 tiles"),
        ("two", "tiles: expected a number"),
    ] {
        std::fs::write(
            &path,
            format!("experiment: base.yaml\nplane: {{points: 5x7, tiles: {tiles}}}\n"),
        )
        .unwrap();
        let e = valleys::sweep::SweepFile::load(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected) && !e.contains('\n'), "{e}");
    }

    let (from_flags, from_sweep) = through_flags_and_sweep(&command, &VALUES);
    assert_eq!(from_sweep.as_ref(), Some(&from_flags));
    assert_eq!(from_flags.points, (5, 7));
    assert_eq!(from_flags.point_batch, Some(4));
    assert_eq!(from_flags.test_subset, Some(usize::MAX));

    let (from_flags, from_sweep) = through_flags_and_sweep(&command, &HESSIAN_VALUES);
    assert_eq!(from_sweep.as_ref(), Some(&from_flags));
    assert_eq!(from_flags.eigenvector_pair(), (2, 4));
    assert_eq!(from_flags.hessian_batch, Some(64));
}
