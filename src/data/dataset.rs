//! A data set held on the device: whole splits as tensors, batched, augmented and normalised
//! there, so no sample crosses the host-device boundary during training.
//!
//! Images stay as bytes on the device (a quarter of the memory of floats) and are converted per
//! batch. Random choices come from [`super::rng`] streams, drawn on the host (a few bytes per
//! batch) and copied over.

use super::rng::{self, Purpose};
use super::{DataError, Features, RawDataset, RawSplit};
use crate::config::{DataConfig, DatasetName};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// One split on the device.
#[derive(Debug)]
pub struct DeviceSplit {
    /// Images as `u8` or `f32 [N, C, H, W]`, or vectors as `f32 [N, D]`.
    pub x: Tensor,
    /// Class indices, `i64 [N]`.
    pub y: Tensor,
    pub len: usize,
}

impl DeviceSplit {
    pub fn shallow_clone(&self) -> Self {
        Self {
            x: self.x.shallow_clone(),
            y: self.y.shallow_clone(),
            len: self.len,
        }
    }

    /// The first `n` samples (all of them if there are fewer), sharing storage.
    pub fn head(&self, n: usize) -> Self {
        let n = n.min(self.len);
        Self {
            x: self.x.narrow(0, 0, n as i64),
            y: self.y.narrow(0, 0, n as i64),
            len: n,
        }
    }

    fn select(&self, indices: &[i64]) -> Self {
        let idx = Tensor::from_slice(indices).to_device(self.x.device());
        Self {
            x: self.x.index_select(0, &idx),
            y: self.y.index_select(0, &idx),
            len: indices.len(),
        }
    }
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    pub crop_padding: i64,
    pub flip: bool,
}

/// A data set on the device.
#[derive(Debug)]
pub struct Dataset {
    pub name: DatasetName,
    pub train: DeviceSplit,
    /// The fixed, un-augmented training samples used to evaluate the training loss.
    pub train_eval: DeviceSplit,
    pub test: DeviceSplit,
    pub classes: usize,
    /// Shape of one input: `[C, H, W]` for images, `[D]` for vectors.
    pub input_shape: Vec<i64>,
    pub source: String,
    pub augment: Augment,
    /// Per-channel `(x - mean) / std` as `[1, C, 1, 1]` tensors, when normalising.
    normalisation: Option<(Tensor, Tensor)>,
}

impl Dataset {
    /// Reads the configured data set and moves it to `device`.
    pub fn load(
        cfg: &DataConfig,
        eval_train_subset: Option<usize>,
        seed: u64,
        device: Device,
    ) -> Result<Self, DataError> {
        Self::from_raw(
            super::read(cfg, seed)?,
            cfg,
            eval_train_subset,
            seed,
            device,
        )
    }

    /// Moves data read elsewhere to `device`, applying subsets and padding.
    pub fn from_raw(
        raw: RawDataset,
        cfg: &DataConfig,
        eval_train_subset: Option<usize>,
        seed: u64,
        device: Device,
    ) -> Result<Self, DataError> {
        let upload = |split: &RawSplit, subset: Option<usize>, key: u64| {
            let full = to_device(split, cfg.pad_to, device)?;
            Ok::<_, DataError>(match subset {
                Some(n) if n < full.len => {
                    let mut rng = rng::stream(seed, Purpose::Subset, &[key]);
                    full.select(&rng::permutation(full.len, &mut rng)[..n])
                }
                _ => full,
            })
        };
        let train = upload(&raw.train, cfg.train_subset, 0)?;
        let test = upload(&raw.test, cfg.test_subset, 1)?;
        let train_eval = match eval_train_subset {
            Some(n) if n < train.len => {
                let mut rng = rng::stream(seed, Purpose::Subset, &[2]);
                train.select(&rng::permutation(train.len, &mut rng)[..n])
            }
            _ => train.shallow_clone(),
        };
        let input_shape = train.x.size()[1..].to_vec();
        let mut source = raw.source;
        if train.len < raw.train.len() || test.len < raw.test.len() {
            source += &format!("; using {} train / {} test", train.len, test.len);
        }
        let images = matches!(
            raw.train.features,
            Features::Images(_) | Features::FloatImages(_)
        );
        let normalisation = (cfg.normalize && images).then(|| {
            let c = raw.mean.len() as i64;
            let as_tensor = |v: &[f32]| Tensor::from_slice(v).view([1, c, 1, 1]).to_device(device);
            (as_tensor(&raw.mean), as_tensor(&raw.std))
        });
        let augment = if images {
            Augment {
                crop_padding: cfg.augment.crop_padding.unwrap_or(0) as i64,
                flip: cfg.augment.flip.unwrap_or(false),
            }
        } else {
            Augment {
                crop_padding: 0,
                flip: false,
            }
        };
        Ok(Self {
            name: raw.name,
            train,
            train_eval,
            test,
            classes: raw.classes,
            input_shape,
            source,
            augment,
            normalisation,
        })
    }

    /// Another handle on the same device tensors (for a second run on the same data).
    pub fn shallow_clone(&self) -> Self {
        Self {
            name: self.name,
            train: self.train.shallow_clone(),
            train_eval: self.train_eval.shallow_clone(),
            test: self.test.shallow_clone(),
            classes: self.classes,
            input_shape: self.input_shape.clone(),
            source: self.source.clone(),
            augment: self.augment,
            normalisation: self
                .normalisation
                .as_ref()
                .map(|(m, s)| (m.shallow_clone(), s.shallow_clone())),
        }
    }

    /// A fixed, seeded subset of `n` un-augmented training samples (probes measure the
    /// training loss on it); the whole training set if `n` is at least its size.
    pub fn train_subset(&self, n: usize, seed: u64) -> DeviceSplit {
        if n >= self.train.len {
            return self.train.shallow_clone();
        }
        let mut rng = rng::stream(seed, Purpose::Subset, &[3]);
        self.train
            .select(&rng::permutation(self.train.len, &mut rng)[..n])
    }

    /// `sets` disjoint, seeded sets of `n` un-augmented training samples each: consecutive
    /// slices of the permutation the run's evaluation subset is the head of, so that with `n`
    /// its size the first set is that subset. The caller keeps `n * sets` within the data.
    pub fn train_sample_sets(&self, n: usize, sets: usize, seed: u64) -> Vec<DeviceSplit> {
        self.train_sample_indices(n, sets, seed)
            .iter()
            .map(|idx| self.train.select(idx))
            .collect()
    }

    /// The positions in the training set of [`Dataset::train_sample_sets`]' samples, set by
    /// set: what another program needs to measure on the same samples.
    pub fn train_sample_indices(&self, n: usize, sets: usize, seed: u64) -> Vec<Vec<i64>> {
        let mut rng = rng::stream(seed, Purpose::Subset, &[2]);
        let order = rng::permutation(self.train.len, &mut rng);
        (0..sets)
            .map(|k| {
                let start = (k * n).min(order.len());
                let end = (start + n).min(order.len());
                order[start..end].to_vec()
            })
            .collect()
    }

    /// A fixed, seeded subset of `n` test samples; the whole test set if `n` is at least its
    /// size.
    pub fn test_subset(&self, n: usize, seed: u64) -> DeviceSplit {
        if n >= self.test.len {
            return self.test.shallow_clone();
        }
        let mut rng = rng::stream(seed, Purpose::Subset, &[4]);
        self.test
            .select(&rng::permutation(self.test.len, &mut rng)[..n])
    }

    /// The training samples at `idx` (a device tensor of indices), augmented with `rng` when
    /// given, ready for the model.
    pub fn train_batch(&self, idx: &Tensor, rng: Option<&mut ChaCha8Rng>) -> (Tensor, Tensor) {
        let x = self.train.x.index_select(0, idx);
        let y = self.train.y.index_select(0, idx);
        (self.prepare(x, rng), y)
    }

    /// `len` consecutive samples of `split` from `start`, un-augmented.
    pub fn eval_batch(&self, split: &DeviceSplit, start: i64, len: i64) -> (Tensor, Tensor) {
        let x = split.x.narrow(0, start, len);
        (self.prepare(x, None), split.y.narrow(0, start, len))
    }

    fn prepare(&self, x: Tensor, rng: Option<&mut ChaCha8Rng>) -> Tensor {
        if x.dim() != 4 {
            // Rows are used as they are.
            return x;
        }
        let mut x = if x.kind() == Kind::Uint8 {
            x.to_kind(Kind::Float) / 255.0
        } else {
            x
        };
        if let Some(rng) = rng {
            x = augment(&x, self.augment, rng);
        }
        match &self.normalisation {
            Some((mean, std)) => (x - mean) / std,
            None => x,
        }
    }
}

fn to_device(
    split: &RawSplit,
    pad_to: Option<u32>,
    device: Device,
) -> Result<DeviceSplit, DataError> {
    let n = split.len() as i64;
    let x = match &split.features {
        Features::Images(_) | Features::FloatImages(_) => {
            let (x, shape) = match &split.features {
                Features::Images(img) => {
                    let shape = [n, img.channels as i64, img.height as i64, img.width as i64];
                    (Tensor::from_slice(&img.pixels).view(shape), shape)
                }
                Features::FloatImages(img) => {
                    let shape = [n, img.channels as i64, img.height as i64, img.width as i64];
                    (Tensor::from_slice(&img.values).view(shape), shape)
                }
                Features::Vectors { .. } => unreachable!("matched above"),
            };
            match pad_to.map(i64::from) {
                Some(size) if size < shape[2] || size < shape[3] => {
                    return Err(DataError::Mismatch(format!(
                        "data.pad_to = {size}: the images are already {}x{}; expected a size at least that large",
                        shape[2], shape[3]
                    )));
                }
                Some(size) => {
                    let (dh, dw) = (size - shape[2], size - shape[3]);
                    x.f_constant_pad_nd([dw / 2, dw - dw / 2, dh / 2, dh - dh / 2])?
                }
                None => x,
            }
        }
        Features::Vectors { dim, values } => Tensor::from_slice(values).view([n, *dim as i64]),
    };
    Ok(DeviceSplit {
        x: x.to_device(device),
        y: Tensor::from_slice(&split.labels).to_device(device),
        len: split.len(),
    })
}

/// Random crop after zero padding, and random horizontal flip, chosen per sample.
fn augment(x: &Tensor, aug: Augment, rng: &mut ChaCha8Rng) -> Tensor {
    let size = x.size();
    let (b, c, h, w) = (size[0], size[1], size[2], size[3]);
    let device = x.device();
    let mut x = x.shallow_clone();
    let p = aug.crop_padding;
    if p > 0 {
        let offsets: Vec<i64> = (0..2 * b).map(|_| rng.gen_range(0..=2 * p)).collect();
        let off = Tensor::from_slice(&offsets).view([2, b]).to_device(device);
        let padded = x.constant_pad_nd([p, p, p, p]);
        let arange = |n: i64| Tensor::arange(n, (Kind::Int64, device));
        let rows = (off.get(0).view([b, 1, 1, 1]) + arange(h).view([1, 1, h, 1]))
            .expand([b, c, h, w + 2 * p], false);
        let cols = (off.get(1).view([b, 1, 1, 1]) + arange(w).view([1, 1, 1, w]))
            .expand([b, c, h, w], false);
        x = padded.gather(2, &rows, false).gather(3, &cols, false);
    }
    if aug.flip {
        let flips: Vec<bool> = (0..b).map(|_| rng.r#gen()).collect();
        let mask = Tensor::from_slice(&flips)
            .view([b, 1, 1, 1])
            .to_device(device);
        x = x.flip([3]).where_self(&mask, &x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Images;

    fn tiny(n: usize, h: usize, w: usize) -> RawDataset {
        let pixels: Vec<u8> = (0..n * h * w).map(|i| (i % 251) as u8).collect();
        let split = RawSplit {
            features: Features::Images(Images {
                count: n,
                channels: 1,
                height: h,
                width: w,
                pixels,
            }),
            labels: (0..n).map(|i| (i % 10) as i64).collect(),
        };
        RawDataset {
            name: DatasetName::Mnist,
            train: split.clone(),
            test: split,
            classes: 10,
            mean: vec![0.0],
            std: vec![1.0],
            source: "tiny".into(),
        }
    }

    fn cfg(yaml: &str) -> DataConfig {
        let mut c: DataConfig = serde_yaml::from_str(yaml).unwrap();
        c.augment.crop_padding.get_or_insert(0);
        c.augment.flip.get_or_insert(false);
        c
    }

    #[test]
    fn subsets_are_seeded_and_padding_centres_the_image() {
        let c = cfg("{dataset: mnist, pad_to: 6, train_subset: 3}");
        let d = Dataset::from_raw(tiny(8, 4, 4), &c, Some(2), 5, Device::Cpu).unwrap();
        assert_eq!(d.train.len, 3);
        assert_eq!(d.train_eval.len, 2);
        assert_eq!(d.test.len, 8);
        assert_eq!(d.input_shape, [1, 6, 6]);
        let first = d.test.x.get(0);
        assert_eq!(first.int64_value(&[0, 0, 0]), 0);
        assert_eq!(
            first.int64_value(&[0, 1, 1]),
            0,
            "pixel (0, 0) of the original image"
        );
        assert_eq!(first.int64_value(&[0, 1, 2]), 1);
        let again = Dataset::from_raw(tiny(8, 4, 4), &c, Some(2), 5, Device::Cpu).unwrap();
        assert!(d.train.y.equal(&again.train.y));
    }

    #[test]
    fn crops_shift_whole_images_and_flips_mirror_them() {
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
        let mut rng = rng::stream(1, Purpose::Augment, &[0]);
        for _ in 0..20 {
            let y = augment(
                &x,
                Augment {
                    crop_padding: 1,
                    flip: false,
                },
                &mut rng,
            );
            assert_eq!(y.size(), [1, 1, 4, 4]);
            // Every non-zero pixel keeps its right-hand neighbour unless it falls off the edge.
            let v: Vec<f32> = y.view([-1]).try_into().unwrap();
            for r in 0..4 {
                for c in 0..3 {
                    let (a, b) = (v[r * 4 + c], v[r * 4 + c + 1]);
                    assert!(a == 0.0 || b == 0.0 || b == a + 1.0, "{v:?}");
                }
            }
        }
        let flipped: Vec<f32> = (0..40)
            .map(|_| {
                augment(
                    &x,
                    Augment {
                        crop_padding: 0,
                        flip: true,
                    },
                    &mut rng,
                )
            })
            .map(|y| y.double_value(&[0, 0, 0, 0]) as f32)
            .collect();
        assert!(
            flipped.contains(&0.0) && flipped.contains(&3.0),
            "{flipped:?}"
        );
    }

    #[test]
    fn normalisation_uses_the_data_set_constants() {
        let c = cfg("{dataset: fashion-mnist}");
        let d = Dataset::load(&c, None, 1, Device::Cpu).unwrap();
        let (x, y) = d.eval_batch(&d.test, 0, 2000);
        assert_eq!(y.size(), [2000]);
        let mean = x.mean(Kind::Float).double_value(&[]);
        let std = x.std(true).double_value(&[]);
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((std - 1.0).abs() < 0.05, "std {std}");
    }
}
