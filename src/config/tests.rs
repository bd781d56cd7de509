use super::*;

const MINIMAL: &str = "\
name: t
data: {dataset: fashion-mnist}
model: {arch: preresnet, depth: 8}
train: {epochs: 10, batch_size: 64, lr: 0.1}
";

fn load(text: &str, overrides: &[&str]) -> Result<Experiment, String> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Experiment::from_yaml(text, "x.yaml", &overrides).map_err(|e| e.to_string())
}

#[test]
fn a_minimal_file_gets_documented_defaults() {
    let e = load(MINIMAL, &[]).unwrap();
    assert_eq!(e.seed, 1);
    assert_eq!(e.train.momentum, 0.9);
    assert_eq!(e.swa.start_epoch, Some(8));
    assert_eq!(e.swa.every_epochs, Some(1));
    assert_eq!(e.swa.lr, Some(0.05));
    assert_eq!(e.data.augment.flip, Some(true));
    assert_eq!(e.data.augment.crop_padding, Some(0));
    assert_eq!(e.train.schedule, Schedule::Swa {});
}

#[test]
fn the_resolved_yaml_reads_back_to_the_same_experiment() {
    let e = load(
        MINIMAL,
        &["train.schedule={kind: step, milestones: [3, 6], gamma: 0.1}"],
    )
    .unwrap();
    let again = load(&e.to_yaml(), &[]).unwrap();
    assert_eq!(e, again);
}

#[test]
fn overrides_set_nested_fields_with_yaml_types() {
    let e = load(
        MINIMAL,
        &["train.epochs=3", "swa.enabled=false", "data.pad_to=32"],
    )
    .unwrap();
    assert_eq!(e.train.epochs, 3);
    assert!(!e.swa.enabled);
    assert_eq!(e.data.pad_to, Some(32));
}

#[test]
fn an_unknown_key_is_named_with_the_closest_valid_one() {
    let err = load(&MINIMAL.replace("lr: 0.1", "lrr: 0.1"), &[]).unwrap_err();
    assert!(err.starts_with("x.yaml:4:"), "{err}");
    assert!(
        err.contains(": train.lrr: unknown field `lrr`, expected one of"),
        "{err}"
    );
    assert!(err.contains("did you mean field `lr`?"), "{err}");
}

#[test]
fn a_wrong_type_names_the_field_and_its_line() {
    let err = load(&MINIMAL.replace("epochs: 10", "epochs: ten"), &[]).unwrap_err();
    assert!(err.starts_with("x.yaml:4:"), "{err}");
    assert!(
        err.contains("train.epochs: invalid type: string \"ten\""),
        "{err}"
    );
}

#[test]
fn an_unknown_model_suggests_a_known_one() {
    let err = load(&MINIMAL.replace("preresnet", "preresnt"), &[]).unwrap_err();
    assert!(
        err.contains("model.arch: unknown variant `preresnt`"),
        "{err}"
    );
    assert!(err.contains("did you mean value `preresnet`?"), "{err}");
}

#[test]
fn out_of_range_values_name_field_value_and_expectation() {
    let cases = [
        ("train.lr=-0.1", "train.lr = -0.1: expected a positive"),
        ("train.batch_size=0", "train.batch_size = 0: expected"),
        (
            "swa.start_epoch=11",
            "swa.start_epoch = 11: expected an epoch in 1..=10",
        ),
        ("model.depth=9", "model.depth = 9: expected"),
        ("train.momentum=1.5", "train.momentum = 1.5: expected"),
    ];
    for (set, want) in cases {
        let err = load(MINIMAL, &[set]).unwrap_err();
        assert!(err.contains(want), "--set {set}: {err}");
    }
}

#[test]
fn syntax_errors_and_empty_files_are_reported_plainly() {
    let err = load("name: [unclosed\n", &[]).unwrap_err();
    assert!(err.starts_with("x.yaml:"), "{err}");
    assert!(err.contains("YAML syntax error"), "{err}");
    let err = load("# only a comment\n", &[]).unwrap_err();
    assert!(err.contains("the file is empty"), "{err}");
}

#[test]
fn an_error_in_an_overridden_field_names_the_override() {
    let err = load(MINIMAL, &["foo=1"]).unwrap_err();
    assert!(err.starts_with("--set foo=1: "), "{err}");
    assert!(err.contains("unknown field `foo`"), "{err}");
    let err = load(MINIMAL, &["train.lr=-1"]).unwrap_err();
    assert!(
        err.starts_with("--set train.lr=-1: train.lr = -1: expected a positive"),
        "{err}"
    );
    let err = load(MINIMAL, &["train.schedule={kind: swa, warmup: 3}"]).unwrap_err();
    assert!(err.contains("unknown field `warmup`"), "{err}");
    let err = load(MINIMAL, &["name=a\nb: [c"]).unwrap_err();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("--set name=a\\nb: [c: "), "{err}");
}

#[test]
fn deeply_nested_or_huge_text_fails_at_once() {
    let start = std::time::Instant::now();
    let err = load(&"[".repeat(100_000), &[]).unwrap_err();
    assert!(err.contains("nested 100000 deep"), "{err}");
    let err = load(&format!("name: t\n#{}\n", "x".repeat(2 << 20)), &[]).unwrap_err();
    assert!(err.contains("at most 1048576 bytes"), "{err}");
    let err = load(MINIMAL, &[&format!("seed={}", "[".repeat(1000))]).unwrap_err();
    assert!(err.contains("nested 1000 deep"), "{err}");
    assert!(start.elapsed().as_secs_f64() < 2.0, "{:?}", start.elapsed());
    // Brackets inside quotes and comments do not count.
    let quoted = format!("{MINIMAL}# {}\nseed: 3\n", "[".repeat(100));
    assert!(load(&quoted, &[]).is_ok());
}

#[test]
fn malformed_overrides_are_rejected() {
    assert!(
        load(MINIMAL, &["train.lr"])
            .unwrap_err()
            .contains("expected KEY=VALUE")
    );
    assert!(
        load(MINIMAL, &["name.x=1"])
            .unwrap_err()
            .contains("is not a section")
    );
    let err = load(MINIMAL, &["trian.lr=1"]).unwrap_err();
    assert!(err.contains("did you mean field `train`?"), "{err}");
}
