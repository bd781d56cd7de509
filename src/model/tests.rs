use super::*;
use crate::config::ModelConfig;
use tch::Device;
use tch::Reduction;

fn build(yaml: &str, input: &[i64], classes: usize) -> Model {
    let cfg: ModelConfig = serde_yaml::from_str(yaml).unwrap();
    Model::build(&cfg, input, classes, Device::Cpu).unwrap()
}

/// True if `count` rounds to `published` at the precision it was published with
/// (e.g. 0.8M covers 0.75M..0.85M).
fn rounds_to(count: i64, published: f64, precision: f64) -> bool {
    (count as f64 - published).abs() <= precision / 2.0
}

#[test]
fn the_quick_preresnet_has_the_measured_parameter_count() {
    // paper.md §10: 3 blocks of widths 16/32/64 on 1-channel input, 77.6k parameters.
    let m = build("{arch: preresnet, depth: 8}", &[1, 28, 28], 10);
    assert_eq!(m.num_params(), 77_562);
    assert_eq!(m.description(), "preresnet-8 (BN, 77 562 parameters)");
}

#[test]
fn parameter_counts_match_the_published_architectures() {
    let cifar = [3, 32, 32];
    let count = |yaml: &str| build(yaml, &cifar, 10).num_params();
    // He et al. 2016 (identity mappings): pre-activation ResNet-164, 1.7M.
    assert!(rounds_to(
        count("{arch: preresnet, depth: 164}"),
        1.7e6,
        0.1e6
    ));
    // Huang et al. 2017: DenseNet-BC (L = 100, k = 12), 0.8M.
    assert!(rounds_to(
        count("{arch: densenet-bc, depth: 100}"),
        0.8e6,
        0.1e6
    ));
    // The SWA code's VGG-16 with BN and a 512-wide classifier: about 15M.
    assert!(rounds_to(
        count("{arch: vgg16, norm: batch}"),
        15.0e6,
        1.0e6
    ));
}

#[test]
fn wide_resnet_28_10_has_its_published_size() {
    // Zagoruyko & Komodakis 2016: WRN-28-10, 36.5M.
    let m = build("{arch: wrn, depth: 28, width: 10}", &[3, 32, 32], 10);
    assert!(
        rounds_to(m.num_params(), 36.5e6, 0.1e6),
        "{}",
        m.num_params()
    );
}

#[test]
fn names_follow_pytorch_state_dict_keys_and_bn_is_tagged() {
    let m = build("{arch: preresnet, depth: 8}", &[3, 32, 32], 10);
    let names: Vec<&str> = m.params().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names[..4],
        [
            "conv1.weight",
            "layer1.0.bn1.weight",
            "layer1.0.bn1.bias",
            "layer1.0.conv1.weight"
        ]
    );
    assert!(names.contains(&"layer2.0.downsample.0.weight"));
    assert_eq!(
        names[names.len() - 4..],
        ["bn.weight", "bn.bias", "fc.weight", "fc.bias"]
    );
    for p in m.params() {
        let looks_bn = p.name.contains("bn");
        assert_eq!(p.role.is_bn(), looks_bn, "{}", p.name);
    }
    let buffers: Vec<&str> = m.buffers().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        buffers[..2],
        ["layer1.0.bn1.running_mean", "layer1.0.bn1.running_var"]
    );
    // VGG's BN layers live at Sequential indices, where names cannot tell; the tag does.
    let vgg = build("{arch: vgg16}", &[3, 32, 32], 10);
    let bn: Vec<&str> = vgg
        .params()
        .iter()
        .filter(|p| p.role.is_bn())
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(bn[..2], ["features.1.weight", "features.1.bias"]);
}

#[test]
fn bn_weights_start_at_one_and_biases_at_zero() {
    let m = build("{arch: wrn, depth: 10, width: 1}", &[3, 32, 32], 10);
    for p in m.params() {
        let values = m.flat().narrow(0, p.offset, p.numel);
        match p.role {
            params::Role::BnWeight => {
                assert!(values.eq(1.0).all().int64_value(&[]) == 1, "{}", p.name)
            }
            params::Role::BnBias => {
                assert!(values.eq(0.0).all().int64_value(&[]) == 1, "{}", p.name)
            }
            _ => {}
        }
    }
}

#[test]
fn without_norm_the_same_model_has_no_bn_and_the_same_other_parameters() {
    for arch in [
        "preresnet, depth: 20",
        "wrn, depth: 10, width: 2",
        "vgg16",
        "densenet-bc, depth: 22",
        "mlp",
    ] {
        let with = build(&format!("{{arch: {arch}, norm: batch}}"), &[3, 32, 32], 10);
        let without = build(&format!("{{arch: {arch}, norm: none}}"), &[3, 32, 32], 10);
        assert!(with.has_bn() && !without.has_bn(), "{arch}");
        assert!(without.buffers().is_empty() && without.params().iter().all(|p| !p.role.is_bn()));
        let non_bn = |m: &Model| -> Vec<(String, Vec<i64>)> {
            m.params()
                .iter()
                .filter(|p| !p.role.is_bn())
                .map(|p| (p.name.clone(), p.shape.clone()))
                .collect()
        };
        let (a, b) = (non_bn(&with), non_bn(&without));
        let shapes =
            |v: &[(String, Vec<i64>)]| v.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>();
        assert_eq!(shapes(&a), shapes(&b), "{arch}");
        // VGG's Sequential indices shift when BN layers go, as in PyTorch's VGG16 vs VGG16BN.
        if arch != "vgg16" {
            assert_eq!(a, b, "{arch}");
        }
    }
}

#[test]
fn every_architecture_runs_forward_and_backward_on_real_cifar_images() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/cifar/cifar10_test20.bin"
    ))
    .unwrap();
    let (images, labels) = crate::data::cifar::read(
        std::path::Path::new("c"),
        &bytes,
        crate::data::cifar::Variant::Cifar10,
    )
    .unwrap();
    let x = Tensor::from_slice(&images.pixels[..4 * 3072])
        .view([4, 3, 32, 32])
        .to_kind(Kind::Float)
        / 255.0;
    let y = Tensor::from_slice(
        &labels[..4]
            .iter()
            .map(|&l| i64::from(l))
            .collect::<Vec<_>>(),
    );
    for arch in [
        "preresnet, depth: 8",
        "preresnet, depth: 47",
        "wrn, depth: 10, width: 1",
        "vgg16",
        "densenet-bc, depth: 22",
        "mlp, hidden: 32",
    ] {
        let m = build(&format!("{{arch: {arch}}}"), &[3, 32, 32], 10);
        let logits = m.forward(&x, Mode::Train);
        assert_eq!(logits.size(), [4, 10], "{arch}");
        let (loss, _) = m.objective().loss_and_correct(&logits, &y, Reduction::Mean);
        let grad = m.flat_grad(&loss);
        assert_eq!(grad.size(), [m.num_params()]);
        assert!(
            grad.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{arch}"
        );
    }
}

#[test]
fn parameters_are_views_of_the_flat_vector() {
    let a = build("{arch: mlp, hidden: 8}", &[1, 4, 4], 3);
    let b = build("{arch: mlp, hidden: 8}", &[1, 4, 4], 3);
    let x = Tensor::randn([5, 1, 4, 4], (Kind::Float, Device::Cpu));
    assert!(
        !a.forward(&x, Mode::Eval)
            .allclose(&b.forward(&x, Mode::Eval), 1e-6, 1e-6, false)
    );
    b.copy_from(&a);
    assert!(a.forward(&x, Mode::Eval).equal(&b.forward(&x, Mode::Eval)));
    // Zeroing the flat vector zeroes every weight: the output is then exactly zero.
    let _ = tch::no_grad(|| a.flat().shallow_clone().fill_(0.0));
    assert_eq!(
        a.forward(&x, Mode::Eval)
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );
}

#[test]
fn small_inputs_and_wrong_shapes_are_refused_with_advice() {
    let cfg: ModelConfig = serde_yaml::from_str("{arch: vgg16}").unwrap();
    let err = Model::build(&cfg, &[1, 28, 28], 10, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "model.arch = vgg16: needs images of at least 32x32, the data are 28x28; set data.pad_to: 32"
    );
    let toy: ModelConfig = serde_yaml::from_str("{arch: toy}").unwrap();
    assert!(Model::build(&toy, &[1, 28, 28], 10, Device::Cpu).is_err());
    let m = Model::build(&toy, &[1], 2, Device::Cpu).unwrap();
    assert_eq!(m.num_params(), 2);
    assert_eq!(m.objective(), Objective::Logistic);
}

/// A model whose BN layers are far from their initial identity map: random parameters (so BN
/// weights of either sign) and running statistics from a few training-mode passes.
fn with_real_bn_state(yaml: &str, input: &[i64]) -> Model {
    let m = build(yaml, input, 10);
    tch::manual_seed(11);
    tch::no_grad(|| {
        let mut flat = m.flat().shallow_clone();
        let noise = Tensor::randn(flat.size(), (Kind::Float, Device::Cpu)) * 0.05;
        flat.copy_(&(&flat + noise));
    });
    let mut shape = vec![16];
    shape.extend_from_slice(input);
    for _ in 0..3 {
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)) * 2.0 + 0.5;
        let _ = tch::no_grad(|| m.forward(&x, Mode::Train));
    }
    m
}

/// Largest |a - b| over largest |b|, and largest |b|.
fn relative_difference(a: &Tensor, b: &Tensor) -> (f64, f64) {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]);
    (diff / scale.max(1.0), scale)
}

#[test]
fn the_fused_eval_and_bn_passes_equal_the_layer_by_layer_ones() {
    // Each arch with a conv -> BN pair: PreResNet basic and bottleneck blocks, WRN, VGG.
    let cases = [
        ("{arch: preresnet, depth: 8}", vec![1, 28, 28]),
        ("{arch: preresnet, depth: 47}", vec![3, 16, 16]),
        ("{arch: wrn, depth: 10, width: 2}", vec![3, 16, 16]),
        ("{arch: vgg16}", vec![3, 32, 32]),
    ];
    for (yaml, input) in cases {
        let m = with_real_bn_state(yaml, &input);
        assert!(m.runs_fused_passes(), "{yaml}: runs fused on this CPU");
        let batch = |n: i64| {
            let mut shape = vec![n];
            shape.extend_from_slice(&input);
            Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu))
        };
        // Two batches of different sizes in one pass: the weights are packed at the first.
        let (x, short) = (batch(7), batch(5));
        let packs = m.fused_weight_packs();
        let (fast, fast_short) = m.fused_pass(Mode::Eval, || {
            tch::no_grad(|| (m.forward(&x, Mode::Eval), m.forward(&short, Mode::Eval)))
        });
        let convs = m.fused_weight_packs() - packs;
        assert!(convs > 0, "{yaml}: no convolution ran fused");
        for (fast, x) in [(&fast, &x), (&fast_short, &short)] {
            let plain = tch::no_grad(|| m.forward(x, Mode::PlainEval));
            let (diff, scale) = relative_difference(fast, &plain);
            assert!(
                scale > 1e-2,
                "{yaml}: logits too small to compare ({scale})"
            );
            assert!(diff <= 1e-5, "{yaml}: {diff} (logits up to {scale})");
        }
        // The same numbers outside a pass (folded, not fused).
        let folded = tch::no_grad(|| m.forward(&x, Mode::Eval));
        assert!(
            relative_difference(&folded, &fast).0 <= 1e-5,
            "{yaml}: folded"
        );

        // The BN pass: the same statistics fused as layer by layer.
        let plain_model = build(yaml, &input, 10);
        plain_model.copy_from(&m);
        let accumulate = |model: &Model| {
            model.begin_bn_recompute();
            tch::no_grad(|| {
                let _ = model.forward(&x, Mode::Accumulate);
                let _ = model.forward(&short, Mode::Accumulate);
            });
            model.finish_bn_recompute();
        };
        let packs = m.fused_weight_packs();
        m.fused_pass(Mode::Accumulate, || accumulate(&m));
        assert_eq!(
            m.fused_weight_packs() - packs,
            convs,
            "{yaml}: packed once per pass"
        );
        accumulate(&plain_model);
        for ((name, fused), (_, plain)) in m.named_state().iter().zip(plain_model.named_state()) {
            let (diff, _) = relative_difference(fused, &plain);
            assert!(diff <= 1e-5, "{yaml}: {name} differs by {diff}");
        }

        // Three copies side by side (probe points): the same per copy.
        let k = 3;
        let stacked = m.stacked(k).unwrap();
        let rows = Tensor::stack(
            &[m.flat().shallow_clone(), m.flat() * 0.9, m.flat() * 1.1],
            0,
        );
        stacked.load_points(&rows, &m);
        let fast = stacked.fused_pass(Mode::Eval, || {
            tch::no_grad(|| stacked.forward(&x, Mode::Eval))
        });
        let plain = tch::no_grad(|| stacked.forward(&x, Mode::PlainEval));
        let (diff, scale) = relative_difference(&fast, &plain);
        assert!(diff <= 1e-5, "{yaml} x{k}: {diff} (logits up to {scale})");
    }
}

/// `model.bn_init`: the BN scales start at 1, U(0, 1) or N(0, 0.1²), and nothing else moves;
/// a model without BN refuses it in one line.
#[test]
fn bn_init_starts_the_bn_scales_as_asked_and_nothing_else() {
    let scales = |m: &Model| -> Vec<f32> {
        m.params()
            .iter()
            .filter(|p| p.role == params::Role::BnWeight)
            .flat_map(|p| Vec::<f32>::try_from(&m.flat().narrow(0, p.offset, p.numel)).unwrap())
            .collect()
    };
    let others = |m: &Model| -> Vec<f32> {
        m.params()
            .iter()
            .filter(|p| p.role != params::Role::BnWeight)
            .flat_map(|p| Vec::<f32>::try_from(&m.flat().narrow(0, p.offset, p.numel)).unwrap())
            .collect()
    };
    // libtorch's generator is shared by the tests running beside this one, so the models are
    // not compared across two seeded builds: the scales are set on a copy of one model.
    // The draws are unseeded, so each moment is allowed six of its own standard errors for the
    // model's n scales (a false failure about once in 10⁸ runs for the four of them), not a
    // fixed width, which the uniform mean of this model's scales overshot in 7 runs of 300.
    fn moments(g: &[f32]) -> (f64, f64, f64) {
        let n = g.len() as f64;
        let mean = g.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = g
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        (n, mean, var)
    }
    let plain = build("{arch: preresnet, depth: 8}", &[3, 32, 32], 10);
    for (init, check) in [
        (
            "one",
            (|g: &[f32]| g.iter().all(|&v| v == 1.0)) as fn(&[f32]) -> bool,
        ),
        ("uniform", |g: &[f32]| {
            // U(0, 1): mean 1/2, variance 1/12; the squared deviations have variance 1/180.
            let (n, mean, var) = moments(g);
            g.iter().all(|&v| (0.0..=1.0).contains(&v))
                && (mean - 0.5).abs() < 6.0 * (1.0f64 / 12.0).sqrt() / n.sqrt()
                && (var - 1.0 / 12.0).abs() < 6.0 * (1.0f64 / 180.0).sqrt() / n.sqrt()
        }),
        ("normal", |g: &[f32]| {
            // N(0, 0.1²): the mean's standard error is 0.1/√n, the deviation's 0.1/√(2n).
            let (n, mean, var) = moments(g);
            mean.abs() < 6.0 * 0.1 / n.sqrt()
                && (var.sqrt() - 0.1).abs() < 6.0 * 0.1 / (2.0 * n).sqrt()
        }),
    ] {
        let built = build(
            &format!("{{arch: preresnet, depth: 8, bn_init: {init}}}"),
            &[3, 32, 32],
            10,
        );
        assert!(
            check(&scales(&built)),
            "{init}: Model::build sets the scales"
        );
        let m = build("{arch: preresnet, depth: 8}", &[3, 32, 32], 10);
        m.copy_from(&plain);
        m.init_bn_scales(crate::config::BnInit::from_name(init).unwrap())
            .unwrap();
        let g = scales(&m);
        assert!(
            g.len() > 100 && check(&g),
            "{init} ({} scales): {:?}",
            g.len(),
            &g[..8]
        );
        assert_eq!(others(&m), others(&plain), "{init}: only the scales move");
    }
    let cfg: ModelConfig =
        serde_yaml::from_str("{arch: mlp, hidden: 8, norm: none, bn_init: uniform}").unwrap();
    let e = Model::build(&cfg, &[1, 28, 28], 10, Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("model.bn_init = uniform: the model has no batch norm scale"),
        "{e}"
    );
}

/// The Hessian's products through eval mode's folded BN (what curvature differentiates)
/// equal those through the layer-by-layer pass: the fold is part of the graph, so the BN's
/// parameters keep their first and second derivatives.
#[test]
fn the_folded_eval_pass_has_the_layer_by_layer_hessian() {
    for (yaml, input) in [
        ("{arch: preresnet, depth: 8}", vec![1, 12, 12]),
        ("{arch: wrn, depth: 10, width: 1}", vec![3, 8, 8]),
    ] {
        let m = with_real_bn_state(yaml, &input);
        let mut shape = vec![6];
        shape.extend_from_slice(&input);
        let x = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5]);
        let v = Tensor::randn([m.flat().numel() as i64], (Kind::Float, Device::Cpu));
        let product = |mode: Mode| {
            let logits = m.forward(&x, mode);
            let (loss, _) = m
                .objective()
                .loss_and_correct(&logits, &y, tch::Reduction::Mean);
            let g = Tensor::run_backward(&[&loss], m.param_handles(), true, true);
            let g = Tensor::cat(&g.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0);
            let hv = Tensor::run_backward(
                &[(&g * &v).sum(Kind::Float)],
                m.param_handles(),
                false,
                false,
            );
            Tensor::cat(&hv.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0)
        };
        let (folded, plain) = (product(Mode::Eval), product(Mode::PlainEval));
        let (diff, scale) = relative_difference(&folded, &plain);
        assert!(
            scale > 1e-3,
            "{yaml}: products too small to compare ({scale})"
        );
        assert!(diff <= 1e-4, "{yaml}: {diff} (products up to {scale})");
    }
}
