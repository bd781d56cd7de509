use super::super::params::Builder;
use super::*;
use tch::Device;

#[test]
fn accumulated_moments_equal_the_moments_of_the_whole_pass() {
    let b = Builder::new(Device::Cpu);
    let bn = BatchNorm::new(&b.root().sub("bn"), 3);
    let _built = b.finish();
    tch::manual_seed(0);
    let data = Tensor::randn([50, 3, 4, 4], (Kind::Float, Device::Cpu)) * 2.0 + 0.5;
    // Unequal batch sizes, as the last batch of an epoch usually is.
    for (start, len) in [(0, 16), (16, 16), (32, 16), (48, 2)] {
        let _ = bn.forward(&data.narrow(0, start, len), Mode::Accumulate);
    }
    assert!(bn.store_moments());
    let direct_mean = data.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float);
    let direct_var = data.var_dim([0i64, 2, 3].as_slice(), true, false);
    assert!(bn.running_mean.allclose(&direct_mean, 1e-5, 1e-6, false));
    assert!(bn.running_var.allclose(&direct_var, 1e-5, 1e-6, false));
    assert!(!bn.store_moments(), "moments are consumed");
    // Normalising while accumulating is train-mode batch norm.
    let x = data.narrow(0, 0, 16);
    let accumulated = bn.forward(&x, Mode::Accumulate);
    let train_mode = bn.forward(&x, Mode::BatchStats);
    assert!(accumulated.allclose(&train_mode, 1e-4, 1e-5, false));
}

#[test]
fn batch_norm_starts_as_identity_scale_and_zero_shift() {
    let b = Builder::new(Device::Cpu);
    let bn = BatchNorm::new(&b.root().sub("bn"), 2);
    let _ = b.finish();
    assert_eq!(bn.weight.sum(Kind::Float).double_value(&[]), 2.0);
    assert_eq!(bn.bias.abs().sum(Kind::Float).double_value(&[]), 0.0);
    // In eval mode with fresh statistics it is the identity.
    let x = Tensor::randn([4, 2], (Kind::Float, Device::Cpu));
    let y = bn.forward(&x, Mode::Eval);
    assert!(y.allclose(&x, 1e-4, 1e-4, false));
}
