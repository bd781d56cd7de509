//! The TorchScript fixtures (assets/torchscript/, made by scripts/make_torchscript_fixtures.py
//! with torch 2.11.0) against the numbers PyTorch computed on them.

use super::*;
use crate::config::{DataConfig, ModelConfig};
use crate::data::dataset::Dataset;
use crate::model::Model;
use crate::model::eval::evaluate;
use crate::train::sgd::Sgd;
use std::path::PathBuf;
use tch::Reduction;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/torchscript")
        .join(name)
}

fn golden() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("golden.json")).unwrap()).unwrap()
}

fn golden_tensor(name: &str) -> Tensor {
    Tensor::read_safetensors(fixture("golden.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("golden.safetensors has no {name}"))
        .1
}

fn data(file: &str) -> Dataset {
    let cfg: DataConfig = serde_yaml::from_str(&format!(
        "{{dataset: tensors, path: {}, augment: {{crop_padding: 0, flip: false}}}}",
        fixture(file).display()
    ))
    .unwrap();
    Dataset::load(&cfg, None, 1, Device::Cpu).unwrap()
}

fn model(file: &str, data: &Dataset) -> Model {
    let cfg: ModelConfig = serde_yaml::from_str(&format!(
        "{{arch: torchscript, path: {}}}",
        fixture(file).display()
    ))
    .unwrap();
    Model::build(&cfg, &data.input_shape, data.classes, Device::Cpu).unwrap()
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn parameters_keep_pytorch_order_and_batch_norm_is_found_by_type() {
    let d = data("images.safetensors");
    let m = model("convbn-trained.pt", &d);
    let names: Vec<&str> = m.params().iter().map(|p| p.name.as_str()).collect();
    let expected: Vec<String> =
        serde_json::from_value(golden()["convbn_parameters"].clone()).unwrap();
    assert_eq!(names, expected);
    let bn: Vec<&str> = m
        .params()
        .iter()
        .filter(|p| p.role.is_bn())
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        bn,
        [
            "stage1.1.weight",
            "stage1.1.bias",
            "stage2.1.weight",
            "stage2.1.bias"
        ]
    );
    assert!(m.has_bn());
    assert!(
        m.description()
            .starts_with("convbn-trained.pt (TorchScript, BN, 1 466 parameters)"),
        "{}",
        m.description()
    );
    let buffers: Vec<&str> = m.buffers().iter().map(|(n, _)| n.as_str()).collect();
    assert!(buffers.contains(&"stage2.1.running_var"), "{buffers:?}");
    let twin = model("convnobn.pt", &d);
    assert!(!twin.has_bn());
}

#[test]
fn eval_loss_and_accuracy_match_pytorch() {
    let d = data("images.safetensors");
    let m = model("convbn-trained.pt", &d);
    let e = evaluate(&m, &d, &d.test, 50);
    let g = golden();
    assert!(
        (e.loss - g["eval_test_loss"].as_f64().unwrap()).abs() < 1e-5,
        "{e:?}"
    );
    assert_eq!(e.acc, g["eval_test_acc"].as_f64().unwrap());
}

#[test]
fn the_bn_recompute_matches_update_bn() {
    let d = data("images.safetensors");
    let m = model("convbn-trained.pt", &d);
    tch::no_grad(|| {
        m.begin_bn_recompute();
        for start in (0..d.train.len as i64).step_by(64) {
            let (x, _) = d.eval_batch(&d.train, start, 64.min(d.train.len as i64 - start));
            let _ = m.forward(&x, Mode::Accumulate);
        }
        m.finish_bn_recompute();
    });
    let mut compared = 0;
    for (name, tensor) in m.buffers() {
        if name.contains("running") {
            let expected = golden_tensor(&format!("update_bn.{name}"));
            let gap = max_difference(tensor, &expected);
            assert!(gap < 1e-5, "{name}: {gap}");
            compared += 1;
        }
    }
    assert_eq!(compared, 4);
    let e = evaluate(&m, &d, &d.test, 128);
    let g = golden();
    assert!(
        (e.loss - g["update_bn_test_loss"].as_f64().unwrap()).abs() < 1e-5,
        "{e:?}"
    );
}

#[test]
fn two_sgd_steps_match_torch_optim_sgd() {
    let d = data("images.safetensors");
    let m = model("convbn-trained.pt", &d);
    // PyTorch computed these with one thread. With two, the first convolution's weight
    // gradient (a sum over 25 088 products per entry) is summed in another order, and the
    // parameters come out up to 1.1e-6 apart; with one, they agree to the last few bits.
    tch::set_num_threads(1);
    let mut sgd = Sgd::new(0.9, 5e-4, false);
    for step in 0..2 {
        let (x, y) = d.eval_batch(&d.train, step * 32, 32);
        let logits = m.forward(&x, Mode::Train);
        let (loss, _) = m.objective().loss_and_correct(&logits, &y, Reduction::Mean);
        let grad = m.flat_grad(&loss);
        sgd.step(m.flat(), &grad, 0.1);
    }
    let gap = max_difference(m.flat(), &golden_tensor("sgd_two_steps"));
    assert!(gap < 1e-6, "{gap}");
}

#[test]
fn a_point_along_a_stored_direction_matches_pytorch() {
    let d = data("images.safetensors");
    let m = model("convbn-trained.pt", &d);
    let g = golden();
    let t = g["probe_t"].as_f64().unwrap();
    tch::no_grad(|| {
        let moved = m.flat() + golden_tensor("direction") * t;
        m.flat().shallow_clone().copy_(&moved);
    });
    let e = evaluate(&m, &d, &d.test, 128);
    assert!(
        (e.loss - g["probe_test_loss"].as_f64().unwrap()).abs() < 1e-5,
        "{e:?}"
    );
    assert_eq!(e.acc, g["probe_test_acc"].as_f64().unwrap());
}

#[test]
fn modes_set_training_flags_and_batch_statistics_leave_the_running_ones() {
    let d = data("images.safetensors");
    let m = model("convbn.pt", &d);
    let (x, _) = d.eval_batch(&d.train, 0, 16);
    let stats = || -> Vec<Tensor> { m.buffers().iter().map(|(_, t)| t.copy()).collect() };
    let before = stats();
    let unchanged = |a: &[Tensor], b: &[Tensor]| a.iter().zip(b).all(|(a, b)| a.equal(b));
    let eval = tch::no_grad(|| m.forward(&x, Mode::Eval));
    let batch = tch::no_grad(|| m.forward(&x, Mode::BatchStats));
    assert!(
        unchanged(&before, &stats()),
        "eval and batch statistics keep the running ones"
    );
    assert!(
        max_difference(&eval, &batch) > 1e-3,
        "batch statistics differ from running ones"
    );
    let train = tch::no_grad(|| m.forward(&x, Mode::Train));
    assert!(
        max_difference(&train, &batch) < 1e-5,
        "no dropout: train = batch statistics"
    );
    assert!(
        !unchanged(&before, &stats()),
        "a training pass updates the running statistics"
    );

    // Dropout is on in training mode only.
    let r = data("rows.safetensors");
    let mlp = model("mlp.pt", &r);
    let (x, _) = r.eval_batch(&r.train, 0, 64);
    let twice = |mode| tch::no_grad(|| (mlp.forward(&x, mode), mlp.forward(&x, mode)));
    let (a, b) = twice(Mode::Train);
    assert!(
        max_difference(&a, &b) > 1e-4,
        "dropout draws anew in training"
    );
    for mode in [Mode::Eval, Mode::BatchStats] {
        let (a, b) = twice(mode);
        assert!(a.equal(&b), "{mode:?} has no dropout");
    }
    assert!(!mlp.has_bn());
}

#[test]
fn copies_are_independent_and_stacking_is_refused() {
    let d = data("images.safetensors");
    let a = model("convbn.pt", &d);
    let b = model("convbn.pt", &d);
    tch::no_grad(|| {
        let _ = a.flat().shallow_clone().fill_(0.0);
    });
    assert!(b.flat().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    b.copy_from(&a);
    let (x, _) = d.eval_batch(&d.test, 0, 8);
    let (ya, yb) = tch::no_grad(|| (a.forward(&x, Mode::Eval), b.forward(&x, Mode::Eval)));
    assert!(ya.equal(&yb));
    assert!(!a.can_stack());
    assert!(a.stacked(4).is_err());
}

#[test]
fn bad_modules_are_one_line_each() {
    let d = data("images.safetensors");
    let r = data("rows.safetensors");
    let mut three_classes = r.shallow_clone();
    three_classes.classes = 3;
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.pt");
    std::fs::write(&garbage, b"not a module").unwrap();
    let load = |path: &Path| {
        TorchScriptNet::load(path, Device::Cpu)
            .err()
            .unwrap()
            .to_string()
    };
    let check = |file: &str, data: &Dataset| {
        let loaded = TorchScriptNet::load(&fixture(file), Device::Cpu).unwrap();
        let (x, _) = data.eval_batch(&data.train, 0, 2);
        check_forward(&loaded.net, &fixture(file), &x, data.classes)
            .unwrap_err()
            .to_string()
    };
    let cases = [
        (load(&garbage), "not a TorchScript module"),
        (load(&tmp.path().join("missing.pt")), "no such file"),
        (
            load(&fixture("noparams.pt")),
            "the module has no parameters",
        ),
        (check("nanout.pt", &d), "is not finite"),
        (
            check("convbn.pt", &r),
            "fails on a batch of the data, shape [2, 20]",
        ),
        (
            check("mlp.pt", &three_classes),
            "maps a batch of shape [2, 20] to [2, 5]; expected logits [2, 3]",
        ),
    ];
    for (message, expected) in cases {
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with("model.arch = torchscript: "),
            "{message}"
        );
    }
}

#[test]
fn a_batch_norm_1d_recompute_leaves_out_a_last_batch_of_one() {
    let r = data("rows.safetensors");
    let m = model("mlpbn.pt", &r);
    assert!(m.has_bn());
    let (x, _) = r.eval_batch(&r.train, 0, 65);
    tch::no_grad(|| {
        m.begin_bn_recompute();
        let _ = m.forward(&x.narrow(0, 0, 64), Mode::Accumulate);
        let _ = m.forward(&x.narrow(0, 64, 1), Mode::Accumulate);
        m.finish_bn_recompute();
    });
    // The statistics are the 64-sample batch's: its mean and unbiased variance.
    let (name, mean) = &m.buffers()[0];
    assert_eq!(name, "1.running_mean");
    let hidden = tch::no_grad(|| {
        m.script_module()
            .unwrap()
            .named_parameters()
            .map(|p| x.narrow(0, 0, 64).linear(&p[0].1, Some(&p[1].1)))
            .unwrap()
    });
    let expected = hidden.mean_dim(0, false, Kind::Float);
    assert!(max_difference(mean, &expected) < 1e-5);
    let var = &m.buffers()[1].1;
    let expected = hidden.var_dim(0, true, false);
    assert!(max_difference(var, &expected) < 1e-4);
}
