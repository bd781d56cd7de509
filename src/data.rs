//! Data sets: file readers (pure Rust) and the on-device tensors the engine trains on.
//!
//! Readers produce plain bytes ([`RawDataset`]); [`dataset::Dataset`] moves a whole split to the
//! device once, and batches, shuffles and augments there.

pub mod catalog;
pub mod cifar;
pub mod dataset;
mod dirs;
pub mod fetch;
pub mod idx;
pub mod rng;
mod tensors;
mod toy;

use dirs::{read_cifar_dir, read_idx_dir};

use crate::config::{DataConfig, DatasetName};
use std::path::{Path, PathBuf};

/// Why data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}; expected {layout}")]
    Format {
        path: PathBuf,
        problem: String,
        layout: String,
    },
    #[error("{dir}: no {dataset} data: {problem}; expected {layout}")]
    Layout {
        dir: PathBuf,
        dataset: &'static str,
        problem: String,
        layout: String,
    },
    #[error("{0}")]
    Mismatch(String),
    #[error("data: {0}")]
    Tensor(#[from] tch::TchError),
    #[error("{0}")]
    Fetch(#[from] fetch::FetchError),
}

impl DataError {
    fn format(path: &Path, problem: String, layout: &str) -> Self {
        Self::Format {
            path: path.to_owned(),
            problem,
            layout: layout.to_owned(),
        }
    }
}

/// Images as bytes, `count x channels x height x width`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    pub count: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

/// Images as floats (a `tensors` data set's float32 images), laid out as [`Images`].
#[derive(Debug, Clone, PartialEq)]
pub struct FloatImages {
    pub count: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub values: Vec<f32>,
}

/// The inputs of one split.
#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    Images(Images),
    FloatImages(FloatImages),
    /// Real-valued vectors (the toy problem), `count x dim`.
    Vectors {
        dim: usize,
        values: Vec<f32>,
    },
}

/// One split, as read from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSplit {
    pub features: Features,
    /// Class indices in `0..classes`.
    pub labels: Vec<i64>,
}

impl RawSplit {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Its first `n` samples (all if it has fewer).
    pub fn head(&self, n: usize) -> Self {
        let n = n.min(self.len());
        let features = match &self.features {
            Features::Images(i) => Features::Images(Images {
                count: n,
                pixels: i.pixels[..n * i.channels * i.height * i.width].to_vec(),
                ..*i
            }),
            Features::FloatImages(i) => Features::FloatImages(FloatImages {
                count: n,
                values: i.values[..n * i.channels * i.height * i.width].to_vec(),
                ..*i
            }),
            Features::Vectors { dim, values } => Features::Vectors {
                dim: *dim,
                values: values[..n * dim].to_vec(),
            },
        };
        Self {
            features,
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// A whole data set, as read from disk, with what the engine needs to know about it.
#[derive(Debug, Clone)]
pub struct RawDataset {
    pub name: DatasetName,
    pub train: RawSplit,
    pub test: RawSplit,
    pub classes: usize,
    /// Per-channel mean and standard deviation of the pixels in [0, 1].
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Where the data came from, in words (for the run directory and the status line).
    pub source: String,
}

impl RawDataset {
    /// Training and test samples that go to the device, after their subsets.
    pub fn sample_counts(&self, cfg: &DataConfig) -> (usize, usize) {
        let take = |len: usize, subset: Option<usize>| subset.map_or(len, |n| n.min(len));
        (
            take(self.train.len(), cfg.train_subset),
            take(self.test.len(), cfg.test_subset),
        )
    }

    /// Bytes held as read from disk.
    pub fn raw_bytes(&self) -> usize {
        [&self.train, &self.test]
            .iter()
            .map(|split| {
                split.labels.len() * 8
                    + match &split.features {
                        Features::Images(img) => img.pixels.len(),
                        Features::FloatImages(img) => img.values.len() * 4,
                        Features::Vectors { values, .. } => values.len() * 4,
                    }
            })
            .sum()
    }

    /// The shape of one input once on the device: `[C, H, W]` (after `pad_to`) or `[D]`.
    pub fn input_shape(&self, pad_to: Option<u32>) -> Result<Vec<i64>, DataError> {
        Ok(match &self.train.features {
            Features::Images(Images {
                channels,
                height,
                width,
                ..
            })
            | Features::FloatImages(FloatImages {
                channels,
                height,
                width,
                ..
            }) => padded_shape(&[*channels as i64, *height as i64, *width as i64], pad_to)?,
            Features::Vectors { dim, .. } => vec![*dim as i64],
        })
    }
}

/// The shape `[C, H, W]` of an image once zero-padded to `pad_to`.
pub fn padded_shape(image: &[i64], pad_to: Option<u32>) -> Result<Vec<i64>, DataError> {
    let (c, h, w) = (image[0], image[1], image[2]);
    Ok(match pad_to.map(i64::from) {
        Some(size) if size < h || size < w => {
            return Err(DataError::Mismatch(format!(
                "data.pad_to = {size}: the images are already {h}x{w}; expected a size at least that large"
            )));
        }
        Some(size) => vec![c, size, size],
        None => vec![c, h, w],
    })
}

const FASHION_MEAN_STD: (f32, f32) = (0.2860, 0.3530);
const MNIST_MEAN_STD: (f32, f32) = (0.1307, 0.3081);
const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];

mod embedded {
    pub const TRAIN_IMAGES: &[u8] =
        include_bytes!("../assets/fashion-mnist-10k/train-images-idx3-ubyte.gz");
    pub const TRAIN_LABELS: &[u8] =
        include_bytes!("../assets/fashion-mnist-10k/train-labels-idx1-ubyte.gz");
    pub const TEST_IMAGES: &[u8] =
        include_bytes!("../assets/fashion-mnist-10k/t10k-images-idx3-ubyte.gz");
    pub const TEST_LABELS: &[u8] =
        include_bytes!("../assets/fashion-mnist-10k/t10k-labels-idx1-ubyte.gz");
}

/// Reads the data set an experiment names, from its directory or the embedded copy; a
/// split without a single sample is refused.
pub fn read(cfg: &DataConfig, seed: u64) -> Result<RawDataset, DataError> {
    let data = read_any(cfg, seed)?;
    for (name, split) in [("training", &data.train), ("test", &data.test)] {
        if split.is_empty() {
            let place = cfg
                .dir
                .as_ref()
                .map_or_else(|| data.source.clone(), |d| d.display().to_string());
            return Err(DataError::Mismatch(format!(
                "{place}: the {name} split holds no samples; expected at least one"
            )));
        }
    }
    Ok(data)
}

fn read_any(cfg: &DataConfig, seed: u64) -> Result<RawDataset, DataError> {
    match (cfg.dataset, &cfg.dir) {
        (DatasetName::Toy, _) => Ok(toy::generate(cfg.toy_points.unwrap_or(10), seed)),
        (DatasetName::Tensors, _) => match &cfg.path {
            Some(path) => tensors::read(path),
            None => Err(DataError::Mismatch(
                "data.path: missing; dataset tensors reads a safetensors file with x_train, y_train, x_test, y_test".into(),
            )),
        },
        (DatasetName::FashionMnist, None) if !cfg.full => read_embedded_fashion(),
        (DatasetName::FashionMnist | DatasetName::Mnist, Some(dir)) => {
            read_idx_dir(cfg.dataset, dir)
        }
        (DatasetName::Cifar10 | DatasetName::Cifar100, Some(dir)) => {
            read_cifar_dir(cfg.dataset, dir)
        }
        (name, None) => {
            let dir = fetched(name)?;
            match name {
                DatasetName::Cifar10 | DatasetName::Cifar100 => read_cifar_dir(name, &dir),
                _ => read_idx_dir(name, &dir),
            }
        }
    }
}

/// The cached folder of a named set, fetched first if it is not there whole.
fn fetched(name: DatasetName) -> Result<PathBuf, DataError> {
    let set = catalog::set(name).ok_or_else(|| {
        DataError::Mismatch(format!(
            "data.dir: {} is neither embedded nor fetched; set data.dir to its directory",
            name.as_str()
        ))
    })?;
    let cache = fetch::Cache::from_env()?;
    if cache.cached(set).is_some() {
        return Ok(cache.dir(set));
    }
    let source = fetch::Source::from_env()?;
    Ok(fetch::ensure_stoppable(&cache, set, &source)?)
}

/// Fetches the named set a data section reads from the cache, if it is not there yet (nothing
/// for a directory, the embedded subset or a file).
pub fn fetch_if_needed(cfg: &DataConfig) -> Result<(), DataError> {
    if let Some(set) = fetched_set(cfg) {
        fetched(set.dataset)?;
    }
    Ok(())
}

/// The catalog entry of a data section that is read from the cache: a named set without
/// `dir`, other than the embedded Fashion-MNIST subset.
fn fetched_set(cfg: &DataConfig) -> Option<&'static catalog::Set> {
    let embedded = cfg.dataset == DatasetName::FashionMnist && !cfg.full;
    if cfg.dir.is_some() || embedded {
        return None;
    }
    catalog::set(cfg.dataset)
}

/// The named set a data section reads from the cache when it is not there yet: what a run
/// will download before it starts.
pub fn to_fetch(cfg: &DataConfig) -> Option<&'static catalog::Set> {
    let set = fetched_set(cfg)?;
    let cache = fetch::Cache::from_env().ok()?;
    cache.cached(set).is_none().then_some(set)
}

/// What a data section will read, in words, without reading or fetching it: `None` when it
/// is read from a directory, the embedded subset or a file; for a set that is fetched, where it
/// is cached or that it will be downloaded, with the shape of one image and the class count.
pub fn fetch_plan(cfg: &DataConfig) -> Option<(String, Vec<i64>, usize)> {
    let set = fetched_set(cfg)?;
    let cache = fetch::Cache::from_env().ok();
    let words = match cache.as_ref().filter(|c| c.cached(set).is_some()) {
        Some(c) => format!("{} (cached in {})", set.credit, c.dir(set).display()),
        None => format!(
            "{}: not cached; fetched on first use ({} to download)",
            set.credit,
            crate::format::human_bytes(set.download_bytes())
        ),
    };
    Some((words, set.image.to_vec(), set.classes))
}

fn read_embedded_fashion() -> Result<RawDataset, DataError> {
    let at = |name: &str| PathBuf::from(format!("(embedded)/fashion-mnist-10k/{name}"));
    let split = |images: &[u8], labels: &[u8], stem: &str| -> Result<RawSplit, DataError> {
        let images = idx::read_images(&at(&format!("{stem}-images-idx3-ubyte.gz")), images)?;
        let labels = idx::read_labels(&at(&format!("{stem}-labels-idx1-ubyte.gz")), labels)?;
        Ok(RawSplit {
            features: Features::Images(images),
            labels: labels.into_iter().map(i64::from).collect(),
        })
    };
    let (mean, std) = FASHION_MEAN_STD;
    Ok(RawDataset {
        name: DatasetName::FashionMnist,
        train: split(embedded::TRAIN_IMAGES, embedded::TRAIN_LABELS, "train")?,
        test: split(embedded::TEST_IMAGES, embedded::TEST_LABELS, "t10k")?,
        classes: 10,
        mean: vec![mean],
        std: vec![std],
        source: "embedded Fashion-MNIST subset (10 000 train / 2 000 test, class-balanced)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dataset: DatasetName, dir: Option<&Path>) -> DataConfig {
        let yaml = format!("dataset: {}", dataset.as_str());
        let mut c: DataConfig = serde_yaml::from_str(&yaml).unwrap();
        c.dir = dir.map(Path::to_owned);
        c
    }

    #[test]
    fn the_embedded_set_is_the_documented_subset() {
        let d = read(&cfg(DatasetName::FashionMnist, None), 1).unwrap();
        assert_eq!(
            (d.train.len(), d.test.len(), d.classes),
            (10_000, 2_000, 10)
        );
    }

    #[test]
    fn a_cifar_directory_reads_like_the_official_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&sub).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/cifar/cifar10_test20.bin");
        std::fs::copy(&fixture, sub.join("data_batch_1.bin")).unwrap();
        std::fs::copy(&fixture, sub.join("data_batch_2.bin")).unwrap();
        let err = read(&cfg(DatasetName::Cifar10, Some(tmp.path())), 1).unwrap_err();
        assert!(
            err.to_string().contains("test_batch.bin is missing"),
            "{err}"
        );
        std::fs::copy(&fixture, sub.join("test_batch.bin")).unwrap();
        let d = read(&cfg(DatasetName::Cifar10, Some(tmp.path())), 1).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (40, 20));
    }

    #[test]
    fn a_missing_directory_names_the_expected_layout() {
        let err = read(
            &cfg(DatasetName::Mnist, Some(Path::new("/nonexistent/mnist"))),
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("/nonexistent/mnist: no mnist data: the directory does not exist; expected train-images-idx3-ubyte"), "{err}");
    }
}
