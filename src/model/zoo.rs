//! The zoo: which network a `model:` section builds (PreResNet, WRN, VGG, DenseNet-BC, MLP, the
//! toy), the shapes of its tensors without allocating them ([`Model::layout`]), and whether
//! the data's inputs fit it ([`Model::check_input`]).

use super::*;

impl Model {
    /// The names and shapes of the tensors the configured model holds (parameters, then BN
    /// statistics), found without allocating the parameters: what a checkpoint of it must
    /// contain, and how large it is.
    pub fn layout(
        cfg: &ModelConfig,
        input_shape: &[i64],
        classes: usize,
    ) -> Result<Layout, ModelError> {
        if cfg.arch == Arch::Torchscript {
            let loaded = torchscript::TorchScriptNet::load(cfg.script_path()?, Device::Cpu)?;
            let shapes = |tensors: Vec<(String, Tensor)>| {
                tensors.into_iter().map(|(n, t)| (n, t.size())).collect()
            };
            return Ok(Layout {
                name: loaded.name,
                params: shapes(loaded.params.into_iter().map(|(n, t, _)| (n, t)).collect()),
                buffers: shapes(loaded.buffers),
            });
        }
        let inputs = Self::check_input(cfg, input_shape, classes)?;
        let builder = Builder::counting();
        let (_net, name) = network(cfg, &builder.root(), inputs, classes as i64);
        let (params, buffers) = builder.shapes();
        Ok(Layout {
            name,
            params,
            buffers,
        })
    }

    /// Checks that the configured model can take inputs of `input_shape` (`[C, H, W]` or
    /// `[D]`) with `classes` classes, without building it; returns its input channels (or,
    /// for the MLP, input features).
    pub fn check_input(
        cfg: &ModelConfig,
        input_shape: &[i64],
        classes: usize,
    ) -> Result<i64, ModelError> {
        let incompatible = |problem: String| ModelError::Incompatible {
            arch: cfg.arch.as_str(),
            problem,
        };
        let image = |min: i64| -> Result<i64, ModelError> {
            match input_shape {
                [c, h, w] if *h >= min && *w >= min => Ok(*c),
                [_, h, w] => Err(incompatible(format!(
                    "needs images of at least {min}x{min}, the data are {h}x{w}; set data.pad_to: {min}"
                ))),
                _ => Err(incompatible("needs image data".into())),
            }
        };
        match cfg.arch {
            Arch::Preresnet | Arch::Wrn | Arch::DensenetBc => image(8),
            Arch::Vgg16 => {
                let c = image(32)?;
                if input_shape[1] >= 64 || input_shape[2] >= 64 {
                    return Err(incompatible(
                        "needs images smaller than 64x64 (its classifier takes 512 features)"
                            .into(),
                    ));
                }
                Ok(c)
            }
            Arch::Mlp => Ok(input_shape.iter().product()),
            // Checked by running the module on the data (`torchscript::check_forward`).
            Arch::Torchscript => Ok(input_shape.first().copied().unwrap_or(0)),
            Arch::Toy if input_shape == [1] && classes == 2 => Ok(1),
            Arch::Toy => Err(incompatible("needs the 1-D two-class toy data".into())),
        }
    }
}

/// The tensors of a model, by name and shape, in checkpoint order.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// e.g. "mlp-16".
    pub name: String,
    pub params: Vec<(String, Vec<i64>)>,
    pub buffers: Vec<(String, Vec<i64>)>,
}

impl Layout {
    /// Trainable parameters.
    pub fn parameter_count(&self) -> u64 {
        self.params
            .iter()
            .map(|(_, shape)| shape.iter().product::<i64>().max(0) as u64)
            .sum()
    }

    /// Every tensor a checkpoint holds for one copy of the model.
    pub fn tensors(&self) -> impl Iterator<Item = &(String, Vec<i64>)> {
        self.params.iter().chain(&self.buffers)
    }
}

/// The configured network, its parameters created through `s`, and its short name.
pub(super) fn network(
    cfg: &ModelConfig,
    s: &params::Scope,
    inputs: i64,
    classes_i: i64,
) -> (Box<dyn Network>, String) {
    let bn = cfg.norm == Norm::Batch;
    let depth = cfg.depth.unwrap_or(0) as i64;
    match cfg.arch {
        Arch::Preresnet => (
            Box::new(preresnet::PreResNet::new(s, depth, inputs, classes_i, bn)),
            format!("preresnet-{depth}"),
        ),
        Arch::Wrn => {
            let k = cfg.width.unwrap_or(10) as i64;
            (
                Box::new(wrn::WideResNet::new(s, depth, k, inputs, classes_i, bn)),
                format!("wrn-{depth}-{k}"),
            )
        }
        Arch::Vgg16 => (
            Box::new(vgg::Vgg16::new(s, inputs, classes_i, bn)),
            "vgg16".into(),
        ),
        Arch::DensenetBc => (
            Box::new(densenet::DenseNetBc::new(s, depth, inputs, classes_i, bn)),
            format!("densenet-bc-{depth}"),
        ),
        Arch::Mlp => {
            let hidden = cfg.hidden.unwrap_or(256) as i64;
            (
                Box::new(mlp::Mlp::new(s, inputs, hidden, classes_i, bn)),
                format!("mlp-{hidden}"),
            )
        }
        Arch::Toy => (Box::new(toy::Toy::new(s)), "toy".into()),
        Arch::Torchscript => unreachable!("TorchScript modules are loaded, not built"),
    }
}
