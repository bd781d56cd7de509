//! The experiment file as the user writes it, and as the run directory stores it once resolved.
//!
//! One set of types serves both: fields whose default depends on other fields (the data set's
//! augmentation, SWA's start epoch) are `Option`s that [`Experiment::resolve`](super::Experiment)
//! fills in, so the stored `config.yaml` spells out every value the run used.

use crate::names::named_enum;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A whole experiment: what to train, on what, and how to average and evaluate it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Short name, used for the run directory.
    pub name: String,
    /// Seed for initialisation, data order and augmentation.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`; `--device` overrides it.
    #[serde(default = "default_device")]
    pub device: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    #[serde(default)]
    pub swa: SwaConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Defaults for probes (the dashboard's form and `valleys probe`).
    #[serde(default)]
    pub probe: super::probe::ProbeSpec,
    /// Defaults for curvature jobs (`valleys curvature`, the dashboard's form), and live
    /// tracking of the top eigenvalue with `every_epochs`.
    #[serde(default, skip_serializing_if = "is_default_curvature")]
    pub curvature: super::curvature::CurvatureSpec,
    /// Batch-norm ablations to run after training (see the ablation module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ablation: Option<super::ablation::AblationConfig>,
}

fn is_default_curvature(spec: &super::curvature::CurvatureSpec) -> bool {
    *spec == super::curvature::CurvatureSpec::default()
}

fn default_seed() -> u64 {
    1
}

fn default_device() -> String {
    "auto".into()
}

named_enum! {
    /// The data sets valleys reads.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DatasetName {
        FashionMnist = "fashion-mnist",
        Mnist = "mnist",
        Cifar10 = "cifar10",
        Cifar100 = "cifar100",
        /// The paper's 1-D two-class toy problem (E1).
        Toy = "toy",
        /// The user's own tensors, from a safetensors file (`data.path`).
        Tensors = "tensors",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DatasetName,
    /// Directory holding the data set's files. Absent: `fashion-mnist` is the embedded 10k/2k
    /// subset (unless `full`), and the other named sets are fetched once into the cache
    /// (`~/.cache/valleys/data`, checked against pinned SHA-256s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// `fashion-mnist` only: the whole 60 000 / 10 000 set, fetched into the cache, instead of
    /// the embedded subset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
    /// The safetensors file of dataset `tensors` (relative to the experiment file): `x_train`,
    /// `y_train`, `x_test`, `y_test` and optionally `classes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Training-time augmentation; defaults depend on the data set.
    #[serde(default)]
    pub augment: AugmentConfig,
    /// Subtract the data set's mean and divide by its standard deviation.
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Zero-pad images to this square size (e.g. 32 so that 28x28 images fit CIFAR models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<u32>,
    /// Use only the first N training samples of a seeded shuffle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Use only the first N test samples of a seeded shuffle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_subset: Option<usize>,
    /// Points per class of the toy data set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toy_points: Option<usize>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random crop after zero padding by this many pixels on each side (0 disables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_padding: Option<u32>,
    /// Random horizontal flips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip: Option<bool>,
}

named_enum! {
    /// Model families of the zoo.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Arch {
        /// Pre-activation ResNet of the SWA code (depth 8..=164).
        Preresnet = "preresnet",
        /// WideResNet-depth-k.
        Wrn = "wrn",
        /// VGG-16 with the SWA code's 512-wide classifier.
        Vgg16 = "vgg16",
        /// DenseNet-BC (growth 12, compression 0.5).
        DensenetBc = "densenet-bc",
        /// Two-layer perceptron.
        Mlp = "mlp",
        /// One Linear(1, 1) neuron with a sigmoid: the paper's 2-parameter toy.
        Toy = "toy",
        /// The user's own network, a TorchScript module (`model.path`).
        Torchscript = "torchscript",
    }
}

named_enum! {
    /// Whether the model uses batch normalisation wherever its architecture has it.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub enum Norm {
        #[default]
        Batch = "batch",
        None = "none",
    }
}

named_enum! {
    /// How the batch-norm scales (γ) start (Li et al. 2024 find that BN's initialisation
    /// matters to how asymmetric the valley is).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BnInit {
        /// γ = 1, as PyTorch starts them.
        One = "one",
        /// γ ~ U(0, 1).
        Uniform = "uniform",
        /// γ ~ N(0, 0.1²).
        Normal = "normal",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Depth for preresnet (default 8), wrn (28) and densenet-bc (100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// Widening factor k of wrn (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Hidden units of mlp (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<u32>,
    #[serde(default)]
    pub norm: Norm,
    /// The TorchScript file of arch `torchscript` (relative to the experiment file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// How the BN scales start (default: as the architecture builds them, γ = 1 for the zoo,
    /// the module's own for TorchScript).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bn_init: Option<BnInit>,
}

impl ModelConfig {
    /// The TorchScript file of a `torchscript` model.
    pub fn script_path(&self) -> Result<&std::path::Path, crate::model::ModelError> {
        self.path
            .as_deref()
            .ok_or_else(|| crate::model::ModelError::Incompatible {
                arch: "torchscript",
                problem: "model.path is missing; expected the module's file".into(),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: u32,
    pub batch_size: u32,
    /// Initial learning rate.
    pub lr: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default)]
    pub schedule: Schedule,
    /// Keep every BN scale and shift at its initial value (1 and 0): an ablation of BN's
    /// affine parameters.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub freeze_bn_affine: bool,
}

fn default_momentum() -> f64 {
    0.9
}

fn default_weight_decay() -> f64 {
    1e-4
}

/// Learning-rate schedules, evaluated once per epoch (see `train::schedule`). Every variant
/// has braces, even without fields: serde checks unknown keys only on struct variants, so
/// `{kind: swa, warmup: 3}` is refused instead of silently ignoring `warmup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Schedule {
    /// The SWA papers' piecewise schedule: constant, linear decay to `swa.lr`, constant.
    Swa {},
    /// Multiply by `gamma` at each milestone epoch.
    Step {
        milestones: Vec<u32>,
        gamma: f64,
    },
    /// Cosine annealing from `train.lr` to `min_lr` over all epochs.
    Cosine {
        #[serde(default)]
        min_lr: f64,
    },
    Constant {},
}

impl Default for Schedule {
    fn default() -> Self {
        Self::Swa {}
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwaConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The first epoch (counted from 1) whose final weights join the average;
    /// default: 75% of the epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_epoch: Option<u32>,
    /// Average once every this many epochs (default 1), or...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_epochs: Option<u32>,
    /// ...every this many optimiser steps once `start_epoch` is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_steps: Option<u32>,
    /// Learning rate the `swa` schedule settles at; default half of `train.lr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Training samples used to recompute the average's BN statistics (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bn_subset: Option<usize>,
    /// Also evaluate the average with stale BN statistics (the SGD iterate's), as the extra
    /// series `swa_stale`: what SWA looks like without BN recomputation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale_bn: bool,
}

impl Default for SwaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            start_epoch: None,
            every_epochs: None,
            every_steps: None,
            lr: None,
            bn_subset: None,
            stale_bn: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate both iterates every this many epochs (and after the last one).
    #[serde(default = "one")]
    pub every_epochs: u32,
    /// Evaluate the training loss on a fixed subset of this many un-augmented samples
    /// (default: the whole training set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Batch size of evaluation passes; default 128 on the CPU (where small batches stay in
    /// cache and run fastest) and 1000 on a GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

impl EvalConfig {
    /// The evaluation batch size on a CPU or a GPU.
    pub fn batch_for(&self, gpu: bool) -> i64 {
        i64::from(self.batch_size.unwrap_or(if gpu { 1000 } else { 128 }))
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every_epochs: 1,
            train_subset: None,
            batch_size: None,
        }
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Rewrite checkpoints/latest.safetensors every this many epochs.
    #[serde(default = "one")]
    pub every_epochs: u32,
    /// Also keep checkpoints/epoch-NNNN.safetensors every this many epochs (0: never);
    /// the final state is always kept as well.
    #[serde(default)]
    pub keep_every_epochs: u32,
    /// Keep the SGD iterate of every this many epoch ends (and the initial weights) in
    /// trajectory/, the path planes draw and `--plane pca` spans (0: never). Four bytes a
    /// parameter an iterate: 0.3 MB for the quick model, 6.8 MB for PreResNet-164.
    #[serde(default = "one")]
    pub trajectory_every_epochs: u32,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every_epochs: 1,
            keep_every_epochs: 0,
            trajectory_every_epochs: 1,
        }
    }
}
