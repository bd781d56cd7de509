//! Defaults that depend on other fields, and the range checks that serde cannot express.

use super::{Arch, ConfigError, DatasetName, Experiment, Norm, Schedule};

impl Experiment {
    /// Fills every field whose default depends on others; the result spells out the whole run.
    pub fn resolve(mut self) -> Self {
        let aug = &mut self.data.augment;
        let (crop, flip) = match self.data.dataset {
            DatasetName::Cifar10 | DatasetName::Cifar100 => (4, true),
            DatasetName::FashionMnist => (0, true),
            DatasetName::Mnist | DatasetName::Toy | DatasetName::Tensors => (0, false),
        };
        aug.crop_padding.get_or_insert(crop);
        aug.flip.get_or_insert(flip);
        if self.data.dataset == DatasetName::Toy {
            self.data.toy_points.get_or_insert(10);
        }

        let m = &mut self.model;
        match m.arch {
            Arch::Preresnet => _ = m.depth.get_or_insert(8),
            Arch::Wrn => {
                m.depth.get_or_insert(28);
                m.width.get_or_insert(10);
            }
            Arch::DensenetBc => _ = m.depth.get_or_insert(100),
            Arch::Vgg16 => _ = m.depth.get_or_insert(16),
            Arch::Mlp => _ = m.hidden.get_or_insert(256),
            Arch::Toy => m.norm = Norm::None,
            // Whether it has batch norm is the module's business (found when it is loaded).
            Arch::Torchscript => {}
        }

        let swa = &mut self.swa;
        let epochs = self.train.epochs;
        swa.start_epoch
            .get_or_insert(((epochs as f64 * 0.75).round() as u32).max(1));
        if swa.every_steps.is_none() {
            swa.every_epochs.get_or_insert(1);
        }
        swa.lr.get_or_insert(self.train.lr / 2.0);
        self
    }

    /// Checks ranges and combinations; `origin` names the file in messages.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |field: &str, value: &dyn std::fmt::Display, expected: &str| {
            Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                field: field.to_owned(),
                value: value.to_string(),
                expected: expected.to_owned(),
            })
        };
        // The name becomes a directory under runs/: no hidden, relative or over-long names.
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid_name(&self.name) {
            return bad(
                "name",
                &format!("{:?}", self.name),
                "a name of 1 to 100 letters, digits, '-', '_' or '.', not starting with '.'",
            );
        }
        if crate::runtime::DeviceRequest::parse(&self.device).is_err() {
            return bad("device", &self.device, "auto, cpu, cuda or cuda:N");
        }
        self.validate_data(&bad)?;
        self.validate_model(&bad)?;
        self.validate_train(&bad)?;
        if self.model.arch == Arch::Mlp
            && self.model.norm == Norm::Batch
            && self.train.batch_size == 1
        {
            return bad(
                "train.batch_size",
                &1,
                "at least 2 with batch norm on an mlp (one sample has no batch variance)",
            );
        }
        self.validate_swa(&bad)?;
        if self.eval.every_epochs == 0 {
            return bad("eval.every_epochs", &0, "at least 1");
        }
        if self.eval.batch_size == Some(0) {
            return bad("eval.batch_size", &0, "at least 1");
        }
        if self.eval.train_subset == Some(0) {
            return bad(
                "eval.train_subset",
                &0,
                "at least 1 sample, or no value for all",
            );
        }
        if self.checkpoint.every_epochs == 0 {
            return bad("checkpoint.every_epochs", &0, "at least 1");
        }
        if let Some(a) = &self.ablation {
            if !(2..=MAX_DIRECTIONS).contains(&a.directions) {
                return bad(
                    "ablation.directions",
                    &a.directions,
                    &format!("2..={MAX_DIRECTIONS} directions per arm"),
                );
            }
            if let Some(path) = &a.twin_model
                && self.model.arch != Arch::Torchscript
            {
                // A zoo model's twin is derived from it (model.norm: none); a file would be
                // written into the twin's config.yaml, which no zoo model reads.
                return bad(
                    "ablation.twin_model",
                    &path.display(),
                    &format!(
                        "no value with model.arch {}: the no-BN twin of a zoo model is derived from it; twin_model names the no-BN variant of a TorchScript model",
                        self.model.arch.as_str()
                    ),
                );
            }
            if let Err(problem) = a.probe.validate() {
                return Err(ConfigError::Field {
                    origin: origin.to_owned(),
                    field: "ablation.probe".into(),
                    message: problem.0,
                });
            }
        }
        if let Err(problem) = self.probe.validate() {
            return Err(ConfigError::Field {
                origin: origin.to_owned(),
                field: "probe".into(),
                message: problem.0,
            });
        }
        if let Err(problem) = self.curvature.validate() {
            return Err(ConfigError::Field {
                origin: origin.to_owned(),
                field: "curvature".into(),
                message: problem.0,
            });
        }
        Ok(())
    }

    fn validate_data(&self, bad: &Bad) -> Result<(), ConfigError> {
        let d = &self.data;
        let tensors = d.dataset == DatasetName::Tensors;
        match (tensors, &d.path, &d.dir) {
            (true, None, _) => {
                return bad(
                    "data.path",
                    &"(missing)",
                    "the safetensors file with x_train, y_train, x_test, y_test",
                );
            }
            (true, Some(_), Some(dir)) => {
                return bad(
                    "data.dir",
                    &dir.display(),
                    "no dir for dataset tensors: data.path names its file",
                );
            }
            (false, Some(path), _) => {
                return bad(
                    "data.path",
                    &path.display(),
                    &format!(
                        "no path for dataset {}: it is only for dataset tensors (data.dir names a directory)",
                        d.dataset.as_str()
                    ),
                );
            }
            _ => {}
        }
        if d.full && d.dataset != DatasetName::FashionMnist {
            return bad(
                "data.full",
                &true,
                &format!(
                    "no full for dataset {}: only fashion-mnist has an embedded subset to choose against",
                    d.dataset.as_str()
                ),
            );
        }
        if let Some(p) = d.augment.crop_padding
            && p > 16
        {
            return bad("data.augment.crop_padding", &p, "0..=16 pixels");
        }
        if let Some(s) = d.pad_to
            && !(1..=512).contains(&s)
        {
            return bad("data.pad_to", &s, "an image size in 1..=512");
        }
        for (field, value) in [
            ("data.train_subset", d.train_subset),
            ("data.test_subset", d.test_subset),
            ("data.toy_points", d.toy_points),
        ] {
            if value == Some(0) {
                return bad(field, &0, "at least 1");
            }
        }
        if let Some(n) = d.toy_points
            && n > MAX_TOY_POINTS
        {
            return bad(
                "data.toy_points",
                &n,
                &format!("at most {MAX_TOY_POINTS} points"),
            );
        }
        Ok(())
    }

    fn validate_model(&self, bad: &Bad) -> Result<(), ConfigError> {
        let m = &self.model;
        let toy_data = self.data.dataset == DatasetName::Toy;
        if (m.arch == Arch::Toy) != toy_data {
            return bad(
                "model.arch",
                &m.arch.as_str(),
                "toy exactly when data.dataset is toy (the 1-D toy problem needs the 1-input model)",
            );
        }
        match (m.arch, &m.path) {
            (Arch::Torchscript, None) => {
                return bad(
                    "model.path",
                    &"(missing)",
                    "the TorchScript file (torch.jit.save; scripts/export_model.py writes one)",
                );
            }
            (Arch::Torchscript, Some(_)) | (_, None) => {}
            (arch, Some(path)) => {
                return bad(
                    "model.path",
                    &path.display(),
                    &format!(
                        "no path for arch {}: it is only for arch torchscript",
                        arch.as_str()
                    ),
                );
            }
        }
        let depth = m.depth.unwrap_or(0);
        let depth_ok = match m.arch {
            Arch::Preresnet if depth < 44 => depth >= 8 && (depth - 2).is_multiple_of(6),
            Arch::Preresnet => depth <= 164 && (depth - 2).is_multiple_of(9),
            Arch::Wrn | Arch::DensenetBc => {
                (10..=MAX_DEPTH).contains(&depth) && (depth - 4).is_multiple_of(6)
            }
            Arch::Vgg16 => depth == 16,
            Arch::Mlp | Arch::Toy | Arch::Torchscript => m.depth.is_none(),
        };
        if !depth_ok {
            let expected = match m.arch {
                Arch::Preresnet => {
                    "8..=164 with depth = 6n+2 below 44 (basic blocks) or 9n+2 from 44 (bottleneck), e.g. 8, 20, 56, 110, 164"
                }
                Arch::Wrn | Arch::DensenetBc => "depth = 6n+4 in 10..=1000, e.g. 28 or 100",
                Arch::Vgg16 => "16",
                Arch::Mlp | Arch::Toy => "no depth (this model has a fixed depth)",
                Arch::Torchscript => "no depth (the module's file defines it)",
            };
            return bad("model.depth", &depth, expected);
        }
        if m.width.is_some() && m.arch != Arch::Wrn {
            return bad(
                "model.width",
                &m.width.unwrap_or(0),
                "no width: it is only for wrn",
            );
        }
        if let Some(k) = m.width
            && !(1..=MAX_WIDTH).contains(&k)
        {
            return bad(
                "model.width",
                &k,
                &format!("a widening factor in 1..={MAX_WIDTH}"),
            );
        }
        if m.hidden.is_some() && m.arch != Arch::Mlp {
            return bad(
                "model.hidden",
                &m.hidden.unwrap_or(0),
                "no hidden: it is only for mlp",
            );
        }
        if let Some(h) = m.hidden
            && !(1..=MAX_HIDDEN).contains(&h)
        {
            return bad(
                "model.hidden",
                &h,
                &format!("1..={MAX_HIDDEN} hidden units"),
            );
        }
        Ok(())
    }

    fn validate_train(&self, bad: &Bad) -> Result<(), ConfigError> {
        let t = &self.train;
        if t.epochs == 0 {
            return bad("train.epochs", &0, "at least 1");
        }
        if t.batch_size == 0 {
            return bad("train.batch_size", &0, "a batch size of at least 1");
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return bad("train.lr", &t.lr, "a positive learning rate");
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return bad("train.momentum", &t.momentum, "a momentum in [0, 1)");
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return bad(
                "train.weight_decay",
                &t.weight_decay,
                "a non-negative number",
            );
        }
        if t.nesterov && t.momentum == 0.0 {
            return bad("train.nesterov", &true, "false unless train.momentum > 0");
        }
        match &t.schedule {
            Schedule::Step { milestones, gamma } => {
                if !(gamma.is_finite() && *gamma > 0.0 && *gamma <= 1.0) {
                    return bad("train.schedule.gamma", gamma, "a factor in (0, 1]");
                }
                let ascending = milestones.windows(2).all(|w| w[0] < w[1]);
                let in_range = milestones.iter().all(|&m| (1..=t.epochs).contains(&m));
                if !ascending || !in_range {
                    return bad(
                        "train.schedule.milestones",
                        &format!("{milestones:?}"),
                        &format!("strictly ascending epochs in 1..={}", t.epochs),
                    );
                }
            }
            Schedule::Cosine { min_lr } => {
                if !(min_lr.is_finite() && *min_lr >= 0.0 && *min_lr <= t.lr) {
                    return bad("train.schedule.min_lr", min_lr, "a rate in [0, train.lr]");
                }
            }
            Schedule::Swa {} | Schedule::Constant {} => {}
        }
        Ok(())
    }

    fn validate_swa(&self, bad: &Bad) -> Result<(), ConfigError> {
        let s = &self.swa;
        if !s.enabled {
            return Ok(());
        }
        let epochs = self.train.epochs;
        let start = s.start_epoch.unwrap_or(1);
        if !(1..=epochs).contains(&start) {
            return bad(
                "swa.start_epoch",
                &start,
                &format!("an epoch in 1..={epochs} (train.epochs)"),
            );
        }
        if s.every_epochs.is_some() && s.every_steps.is_some() {
            return bad(
                "swa.every_steps",
                &s.every_steps.unwrap_or(0),
                "no value when swa.every_epochs is set (choose one)",
            );
        }
        if s.every_epochs == Some(0) {
            return bad("swa.every_epochs", &0, "at least 1");
        }
        if s.every_steps == Some(0) {
            return bad("swa.every_steps", &0, "at least 1");
        }
        let lr = s.lr.unwrap_or(1.0);
        if !(lr.is_finite() && lr > 0.0) {
            return bad("swa.lr", &lr, "a positive learning rate");
        }
        if s.bn_subset == Some(0) {
            return bad(
                "swa.bn_subset",
                &0,
                "at least 1 sample, or no value for all",
            );
        }
        Ok(())
    }
}

/// Bounds that no machine could hold beyond; the memory check refines them for this one.
pub const MAX_DIRECTIONS: usize = 10_000;
const MAX_TOY_POINTS: usize = 10_000_000;
const MAX_DEPTH: u32 = 1000;
const MAX_WIDTH: u32 = 1024;
const MAX_HIDDEN: u32 = 1 << 24;

type Bad<'a> = dyn Fn(&str, &dyn std::fmt::Display, &str) -> Result<(), ConfigError> + 'a;
