//! The memory a run will hold, estimated before anything is created, against what this
//! machine (or this process's limits) can give. A model or data set that cannot fit is
//! refused with one line naming the setting, instead of an allocator abort minutes later.
//!
//! The estimate counts what is certain (parameter copies, the data on the device, one
//! batch's input and first feature map) and leaves out what depends on the architecture's
//! internals: it may let a run through that later runs short, but it never refuses one that
//! fits.

use crate::config::Experiment;
use crate::format::{human_bytes, human_count};
use crate::model::Layout;

/// Copies of the parameter vector a run keeps: the SGD iterate, its gradient, the momentum
/// buffer, the SWA average, the probes' scratch model and a probe direction.
const PARAMETER_COPIES: u64 = 6;

/// Why a run cannot fit: what it needs against what there is, and the largest cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// What a run will hold, in bytes, by cause.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    pub parameters: u64,
    /// The output layer's classes and parameters (its last weight and bias), when the layout
    /// ends with one: a huge class count is the data's doing, not the model's.
    pub output: Option<(u64, u64)>,
    pub parameter_bytes: u64,
    pub data_bytes: u64,
    pub activation_bytes: u64,
}

/// The classes and parameters of the layout's output layer: its last two tensors when they
/// are a weight `[classes, inputs]` and a bias `[classes]`.
fn output_layer(layout: &Layout) -> Option<(u64, u64)> {
    let [.., (_, weight), (bias_name, bias)] = layout.params.as_slice() else {
        return None;
    };
    match (weight.as_slice(), bias.as_slice()) {
        ([classes, inputs], [n]) if n == classes && bias_name.ends_with("bias") => {
            let (classes, inputs) = ((*classes).max(0) as u64, (*inputs).max(0) as u64);
            Some((
                classes,
                classes.saturating_mul(inputs).saturating_add(classes),
            ))
        }
        _ => None,
    }
}

impl Footprint {
    /// The estimate for `experiment` with the model `layout`, `train` training and `test` test
    /// samples of `input_numel` values each (after `data.pad_to`).
    pub fn estimate(
        experiment: &Experiment,
        layout: &Layout,
        (train, test): (u64, u64),
        input_numel: u64,
        raw_bytes: u64,
    ) -> Self {
        let samples = train + test;
        let parameters = layout.parameter_count();
        let parameter_bytes = parameters
            .saturating_mul(4)
            .saturating_mul(PARAMETER_COPIES);
        // The data stay in memory as read (bytes) and as f32 on the device.
        let data_bytes = samples
            .saturating_mul(input_numel)
            .saturating_mul(4)
            .saturating_add(raw_bytes);
        // One training batch: its input and, for a network, at least its first feature map
        // (as wide as the first layer's output), kept for the backward pass.
        let first_width = layout.params.first().map_or(1, |(_, shape)| {
            shape.first().copied().unwrap_or(1).max(1) as u64
        });
        let spatial = match layout.params.first().map(|(_, s)| s.as_slice()) {
            // A convolution [out, in, k, k] sees every pixel of its input.
            Some([_, channels, _, _]) => input_numel / (*channels).max(1) as u64,
            _ => 1,
        };
        // A batch never holds more than the training set.
        let batch = u64::from(experiment.train.batch_size).min(train.max(1));
        let activation_bytes = batch
            .saturating_mul(input_numel.saturating_add(spatial.saturating_mul(first_width)))
            .saturating_mul(4);
        Self {
            parameters,
            output: output_layer(layout),
            parameter_bytes,
            data_bytes,
            activation_bytes,
        }
    }

    /// The memory the run will hold in all.
    pub fn total(&self) -> u64 {
        self.parameter_bytes
            .saturating_add(self.data_bytes)
            .saturating_add(self.activation_bytes)
    }

    /// Refuses the run when it cannot fit in `available` bytes (`why` names the limit); the
    /// message names the largest cause and the settings that control it.
    pub fn check(
        &self,
        available: u64,
        why: &str,
        experiment: &Experiment,
    ) -> Result<(), TooLarge> {
        if self.total() <= available {
            return Ok(());
        }
        let m = &experiment.model;
        let model_fields = match m.arch {
            crate::config::Arch::Mlp => "model.hidden",
            crate::config::Arch::Wrn => "model.width and model.depth",
            crate::config::Arch::Toy => "the model",
            crate::config::Arch::Torchscript => "the module in model.path",
            _ => "model.depth",
        };
        let parameters_cause = self.parameter_bytes >= self.data_bytes
            && self.parameter_bytes >= self.activation_bytes;
        let cause = if let (true, Some((classes, output))) = (parameters_cause, self.output)
            && output.saturating_mul(2) > self.parameters
        {
            format!(
                "the model has {} parameters ({} for {PARAMETER_COPIES} copies), {} of them in its output layer for {} classes: the class count comes from the data (its largest label + 1, or its classes entry); check the labels of the data file",
                human_count(self.parameters),
                human_bytes(self.parameter_bytes),
                human_count(output),
                human_count(classes)
            )
        } else if parameters_cause {
            format!(
                "the model has {} parameters ({} for {PARAMETER_COPIES} copies); make it smaller ({model_fields})",
                human_count(self.parameters),
                human_bytes(self.parameter_bytes)
            )
        } else if self.data_bytes >= self.activation_bytes {
            format!(
                "the data take {}; use fewer or smaller samples (data.train_subset, data.test_subset, data.pad_to, data.toy_points)",
                human_bytes(self.data_bytes)
            )
        } else {
            format!(
                "one training batch takes at least {}; lower train.batch_size or data.pad_to",
                human_bytes(self.activation_bytes)
            )
        };
        Err(TooLarge(format!(
            "this run needs at least {} of memory but {} is available ({why}): {cause}",
            human_bytes(self.total()),
            human_bytes(available)
        )))
    }
}

/// Bytes this process may still allocate on the CPU, and which limit says so: the smallest
/// of the memory available on the machine, the cgroup's limit and the address-space limit.
pub fn available_cpu_memory() -> Option<(u64, &'static str)> {
    let mut best: Option<(u64, &'static str)> = None;
    let mut consider = |bytes: Option<u64>, why: &'static str| {
        if let Some(b) = bytes
            && best.is_none_or(|(old, _)| b < old)
        {
            best = Some((b, why));
        }
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    consider(
        meminfo
            .as_deref()
            .and_then(|t| meminfo_kib(t, "MemAvailable"))
            .map(|k| k * 1024),
        "available memory",
    );
    let cgroup = |name: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
    };
    if let (Some(max), current) = (cgroup("memory.max"), cgroup("memory.current")) {
        consider(
            Some(max.saturating_sub(current.unwrap_or(0))),
            "the cgroup's memory limit",
        );
    }
    if let Some(limit) = crate::platform::address_space_limit() {
        let used = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|t| meminfo_kib(&t, "VmSize"))
            .map_or(0, |k| k * 1024);
        consider(
            Some(limit.saturating_sub(used)),
            "the address-space limit (ulimit -v)",
        );
    }
    best
}

/// `key:   123 kB` from /proc/meminfo or /proc/self/status, in KiB.
fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment() -> Experiment {
        Experiment::from_yaml(
            "name: t\ndata: {dataset: fashion-mnist}\nmodel: {arch: mlp, hidden: 10}\ntrain: {epochs: 1, batch_size: 100, lr: 0.1}\n",
            "t",
            &[],
        )
        .unwrap()
    }

    fn mlp_layout(inputs: i64, hidden: i64, classes: i64) -> Layout {
        Layout {
            name: "mlp".into(),
            params: vec![
                ("fc1.weight".into(), vec![hidden, inputs]),
                ("fc1.bias".into(), vec![hidden]),
                ("fc2.weight".into(), vec![classes, hidden]),
                ("fc2.bias".into(), vec![classes]),
            ],
            buffers: vec![],
        }
    }

    #[test]
    fn the_estimate_adds_parameter_copies_data_and_one_batch() {
        // 784*10 + 10 + 10*10 + 10 = 7960 parameters.
        let f = Footprint::estimate(
            &experiment(),
            &mlp_layout(784, 10, 10),
            (800, 200),
            784,
            784_000,
        );
        assert_eq!(f.parameters, 7960);
        assert_eq!(f.parameter_bytes, 7960 * 4 * PARAMETER_COPIES);
        assert_eq!(f.data_bytes, 1000 * 784 * 4 + 784_000);
        // A batch of 100 inputs of 784 values and their first layer's 10 outputs.
        assert_eq!(f.activation_bytes, 100 * (784 + 10) * 4);
        assert!(f.check(f.total(), "test", &experiment()).is_ok());
        // A batch larger than the training set holds only the training set.
        let mut big_batch = experiment();
        big_batch.train.batch_size = u32::MAX;
        let f = Footprint::estimate(&big_batch, &mlp_layout(784, 10, 10), (50, 10), 784, 0);
        assert_eq!(f.activation_bytes, 50 * (784 + 10) * 4);
    }

    #[test]
    fn a_run_that_cannot_fit_names_its_largest_cause() {
        let huge = Footprint::estimate(
            &experiment(),
            &mlp_layout(784, 4_000_000_000, 10),
            (800, 200),
            784,
            0,
        );
        let err = huge
            .check(16 << 30, "available memory", &experiment())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("16.0 GiB is available (available memory)"),
            "{err}"
        );
        assert!(err.contains("model.hidden"), "{err}");
        let data = Footprint::estimate(
            &experiment(),
            &mlp_layout(784, 10, 10),
            (8_000, 2_000),
            512 * 512,
            0,
        );
        let err = data
            .check(1 << 30, "ulimit", &experiment())
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.pad_to"), "{err}");
    }

    #[test]
    fn a_huge_class_count_is_blamed_on_the_data_not_the_hidden_width() {
        let many_classes = Footprint::estimate(
            &experiment(),
            &mlp_layout(784, 10, 4_000_000_000),
            (800, 200),
            784,
            0,
        );
        let err = many_classes
            .check(16 << 30, "available memory", &experiment())
            .unwrap_err()
            .to_string();
        assert!(err.contains("output layer for 4.00e9 classes"), "{err}");
        assert!(err.contains("labels of the data file"), "{err}");
        assert!(!err.contains("model.hidden"), "{err}");
    }

    #[test]
    fn limits_are_read_from_proc_style_text() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_kib(text, "MemAvailable"), Some(20_000_000));
        assert_eq!(meminfo_kib(text, "Missing"), None);
        assert!(available_cpu_memory().is_some_and(|(b, _)| b > 0));
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
