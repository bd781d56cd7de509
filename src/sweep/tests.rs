use super::*;
use crate::config::tidy_path;

fn file(yaml: &str) -> Result<SweepFile, SweepError> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("base.yaml"),
        "name: b\ndata: {dataset: fashion-mnist, train_subset: 256, test_subset: 128}\nmodel: {arch: mlp, hidden: 16}\ntrain: {epochs: 2, batch_size: 64, lr: 0.1}\n",
    )
    .unwrap();
    let path = tmp.path().join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    let f = SweepFile::load(&path);
    drop(tmp);
    f
}

#[test]
fn axes_make_a_cartesian_product_with_the_last_axis_fastest() {
    let f = file("experiment: base.yaml\naxes:\n  model.norm: [batch, none]\n  seed: [1, 2, 3]\nruns:\n  - {model.hidden: 32}\n").unwrap();
    let v = f.variants();
    assert_eq!(f.count(), 7);
    assert_eq!(v.len(), 7);
    assert_eq!(v[0].id, "000-model.norm=batch-seed=1");
    assert_eq!(v[1].id, "001-model.norm=batch-seed=2");
    assert_eq!(v[3].id, "003-model.norm=none-seed=1");
    assert_eq!(
        v[6].overrides,
        [("model.hidden".to_owned(), "32".to_owned())]
    );
    assert_eq!(f.name, "s");
}

#[test]
fn a_sweep_without_axes_or_runs_is_one_run_and_bad_files_name_what_is_wrong() {
    let f = file("experiment: base.yaml\n").unwrap();
    assert_eq!(f.variants().len(), 1);
    for (yaml, want) in [
        (
            "experiment: base.yaml\naxis: {seed: [1]}\n",
            "unknown key 'axis'",
        ),
        ("axes: {seed: [1]}\n", "experiment: expected the path"),
        (
            "experiment: base.yaml\naxes: {seed: []}\n",
            "axes.seed: expected a non-empty list",
        ),
        (
            "experiment: base.yaml\nprobe: {directions: 1}\n",
            "probe: directions: 1: expected 2..=",
        ),
        (
            "experiment: base.yaml\nprobe: {directions: 5, direction: interp}\n",
            "is not random",
        ),
        (
            "experiment: base.yaml\nslurm: {partiton: x}\n",
            "slurm: unknown field `partiton`",
        ),
        (
            "experiment: base.yaml\nname: ../x\n",
            "name: expected letters",
        ),
    ] {
        let e = file(yaml).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}: {e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn paths_in_messages_lose_their_dot_dot_steps() {
    assert_eq!(
        tidy_path(Path::new("experiments/sweeps/../quick.yaml")),
        PathBuf::from("experiments/quick.yaml")
    );
    assert_eq!(
        tidy_path(Path::new("/a/./b/../../c.yaml")),
        PathBuf::from("/c.yaml")
    );
    assert_eq!(
        tidy_path(Path::new("../x/./y.yaml")),
        PathBuf::from("../x/y.yaml")
    );
    assert_eq!(tidy_path(Path::new("a/..")), PathBuf::from("."));
}

#[test]
fn ids_are_file_names() {
    let id = variant_id(12, &[("data.dir".into(), "/data/cifar 10".into())]);
    assert_eq!(id, "012-data.dir=_data_cifar_10");
}
