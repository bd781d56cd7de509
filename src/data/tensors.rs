//! The user's own data: a safetensors file with `x_train`, `y_train`, `x_test`, `y_test` and
//! optionally `classes` (`data: {dataset: tensors, path: ...}`).
//!
//! Inputs are uint8 or float32 images `[N, C, H, W]` (uint8 is scaled to [0, 1] like the
//! built-in sets) or float32 rows `[N, D]`; labels are integers in `0..classes`. Images are
//! normalised with their training split's per-channel mean and standard deviation; rows are
//! used as they are.

use super::{DataError, Features, FloatImages, Images, RawDataset, RawSplit};
use crate::config::DatasetName;
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use std::path::Path;

const LAYOUT: &str = "x_train and x_test as uint8 or float32 [N, C, H, W] images or float32 [N, D] rows, y_train and y_test as integer labels [N], optionally classes (one integer)";

/// Reads and checks a `tensors` data set.
pub fn read(path: &Path) -> Result<RawDataset, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let fail = |problem: String| DataError::format(path, problem, LAYOUT);
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(format!("not a safetensors file ({e})")))?;
    let get = |key: &str| {
        file.tensor(key).map_err(|_| {
            let mut present = file.names();
            present.sort();
            fail(format!(
                "key {key} is missing (the file holds {})",
                if present.is_empty() {
                    "no tensors".to_owned()
                } else {
                    present
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
        })
    };
    let x_train = features(&get("x_train")?, "x_train").map_err(fail)?;
    let x_test = features(&get("x_test")?, "x_test").map_err(fail)?;
    let y_train = labels(&get("y_train")?, "y_train").map_err(fail)?;
    let y_test = labels(&get("y_test")?, "y_test").map_err(fail)?;
    for (x, y, xk, yk) in [
        (&x_train, &y_train, "x_train", "y_train"),
        (&x_test, &y_test, "x_test", "y_test"),
    ] {
        if count(x) != y.len() {
            return Err(fail(format!(
                "{xk} holds {} samples and {yk} {} labels; expected as many labels as samples",
                count(x),
                y.len()
            )));
        }
    }
    if sample_shape(&x_train) != sample_shape(&x_test) {
        return Err(fail(format!(
            "x_train's samples are {} and x_test's {}; expected the same shape and type",
            describe(&x_train),
            describe(&x_test)
        )));
    }
    let largest = y_train.iter().chain(&y_test).copied().max().unwrap_or(0);
    let classes = match file.tensor("classes") {
        Ok(view) => {
            let declared = labels(&view, "classes").map_err(fail)?;
            match declared[..] {
                [n] if n >= 1 => n as usize,
                _ => {
                    return Err(fail(format!(
                        "classes holds {declared:?}; expected one positive integer"
                    )));
                }
            }
        }
        Err(_) => (largest + 1).max(1) as usize,
    };
    for (key, y) in [("y_train", &y_train), ("y_test", &y_test)] {
        if let Some((i, bad)) = y
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l >= classes as i64)
        {
            return Err(fail(format!(
                "{key}[{i}] = {bad} is outside 0..{classes}; expected labels 0..={}",
                classes - 1
            )));
        }
    }
    let (mean, std) = channel_moments(&x_train);
    let source = format!(
        "{} ({} train / {} test, {}, {classes} classes)",
        path.display(),
        y_train.len(),
        y_test.len(),
        describe(&x_train)
    );
    Ok(RawDataset {
        name: DatasetName::Tensors,
        train: RawSplit {
            features: x_train,
            labels: y_train,
        },
        test: RawSplit {
            features: x_test,
            labels: y_test,
        },
        classes,
        mean,
        std,
        source,
    })
}

fn count(f: &Features) -> usize {
    match f {
        Features::Images(i) => i.count,
        Features::FloatImages(i) => i.count,
        Features::Vectors { dim, values } => values.len() / (*dim).max(1),
    }
}

/// One sample's shape and type, e.g. `uint8 [1, 28, 28]`.
fn sample_shape(f: &Features) -> (bool, Vec<usize>) {
    match f {
        Features::Images(i) => (true, vec![i.channels, i.height, i.width]),
        Features::FloatImages(i) => (false, vec![i.channels, i.height, i.width]),
        Features::Vectors { dim, .. } => (false, vec![*dim]),
    }
}

fn describe(f: &Features) -> String {
    let (bytes, shape) = sample_shape(f);
    let kind = if bytes { "uint8" } else { "float32" };
    let shape = shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x");
    let what = if matches!(f, Features::Vectors { .. }) {
        "rows"
    } else {
        "images"
    };
    format!("{kind} {what} {shape}")
}

fn features(view: &TensorView, key: &str) -> Result<Features, String> {
    let shape = view.shape();
    let data = view.data();
    let positive = shape.iter().skip(1).all(|&d| d > 0);
    match (view.dtype(), shape) {
        (Dtype::U8, &[n, c, h, w]) if positive => Ok(Features::Images(Images {
            count: n,
            channels: c,
            height: h,
            width: w,
            pixels: data.to_vec(),
        })),
        (Dtype::F32, &[n, c, h, w]) if positive => Ok(Features::FloatImages(FloatImages {
            count: n,
            channels: c,
            height: h,
            width: w,
            values: floats(data, key)?,
        })),
        (Dtype::F32, &[_, d]) if d > 0 => Ok(Features::Vectors {
            dim: d,
            values: floats(data, key)?,
        }),
        (dtype, shape) => Err(format!(
            "{key} is {dtype:?} {shape:?}; expected uint8 or float32 [N, C, H, W] images or float32 [N, D] rows"
        )),
    }
}

fn floats(data: &[u8], key: &str) -> Result<Vec<f32>, String> {
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(format!(
            "{key} holds a non-finite value ({}) at flat index {i}; expected finite numbers",
            values[i]
        )),
        None => Ok(values),
    }
}

fn labels(view: &TensorView, key: &str) -> Result<Vec<i64>, String> {
    let data = view.data();
    let shape = view.shape();
    let numel: usize = shape.iter().product();
    if shape.len() > 1 || (key != "classes" && shape.len() != 1) {
        return Err(format!(
            "{key} has shape {shape:?}; expected one integer per sample, [N]"
        ));
    }
    let values: Vec<i64> = match view.dtype() {
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))))
            .collect(),
        Dtype::I16 => data
            .chunks_exact(2)
            .map(|b| i64::from(i16::from_le_bytes(b.try_into().expect("2 bytes"))))
            .collect(),
        Dtype::U8 => data.iter().map(|&b| i64::from(b)).collect(),
        Dtype::I8 => data.iter().map(|&b| i64::from(b as i8)).collect(),
        other => {
            return Err(format!(
                "{key} is {other:?}; expected integers (int64, as torch.long)"
            ));
        }
    };
    debug_assert_eq!(values.len(), numel);
    Ok(values)
}

/// Per-channel mean and standard deviation of the training images, on the [0, 1] scale for
/// uint8 (as the built-in sets' constants are); zero mean and unit deviation for rows.
fn channel_moments(f: &Features) -> (Vec<f32>, Vec<f32>) {
    let (channels, plane, value): (usize, usize, Box<dyn Fn(usize) -> f64 + '_>) = match f {
        Features::Images(i) => (
            i.channels,
            i.height * i.width,
            Box::new(|k| f64::from(i.pixels[k]) / 255.0),
        ),
        Features::FloatImages(i) => (
            i.channels,
            i.height * i.width,
            Box::new(|k| f64::from(i.values[k])),
        ),
        Features::Vectors { .. } => return (vec![0.0], vec![1.0]),
    };
    let n = count(f);
    let mut mean = Vec::with_capacity(channels);
    let mut std = Vec::with_capacity(channels);
    for c in 0..channels {
        let (mut sum, mut sq) = (0.0, 0.0);
        for s in 0..n {
            let base = (s * channels + c) * plane;
            for k in base..base + plane {
                let v = value(k);
                sum += v;
                sq += v * v;
            }
        }
        let m = (n * plane).max(1) as f64;
        let mu = sum / m;
        let sd = (sq / m - mu * mu).max(0.0).sqrt();
        mean.push(mu as f32);
        // A constant channel is only shifted.
        std.push(if sd > 1e-12 { sd as f32 } else { 1.0 });
    }
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::serialize;
    use std::collections::HashMap;

    fn write(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
        let views: HashMap<String, TensorView> = tensors
            .iter()
            .map(|(k, d, s, b)| (k.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        std::fs::write(path, serialize(&views, &None).unwrap()).unwrap();
    }

    fn longs(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn images_read_with_their_channel_moments_and_classes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.safetensors");
        // Two 2-channel 1x2 images: channel 0 holds 0 and 255, channel 1 is constant 51.
        let pixels = vec![0, 255, 51, 51, 255, 0, 51, 51];
        write(
            &path,
            &[
                ("x_train", Dtype::U8, vec![2, 2, 1, 2], pixels.clone()),
                ("x_test", Dtype::U8, vec![2, 2, 1, 2], pixels),
                ("y_train", Dtype::I64, vec![2], longs(&[0, 2])),
                ("y_test", Dtype::I64, vec![2], longs(&[1, 0])),
            ],
        );
        let d = read(&path).unwrap();
        assert_eq!((d.classes, d.train.len(), d.test.len()), (3, 2, 2));
        assert_eq!(d.mean, [0.5, 0.2]);
        assert_eq!(d.std[0], 0.5);
        assert_eq!(d.std[1], 1.0, "a constant channel is only shifted");
        assert_eq!(d.input_shape(None).unwrap(), [2, 1, 2]);
    }

    #[test]
    fn each_problem_names_its_key_and_shapes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.safetensors");
        let rows = f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let good = |extra: Vec<(&'static str, Dtype, Vec<usize>, Vec<u8>)>| {
            let mut t = vec![
                ("x_train", Dtype::F32, vec![3, 2], rows.clone()),
                ("x_test", Dtype::F32, vec![3, 2], rows.clone()),
                ("y_train", Dtype::I64, vec![3], longs(&[0, 1, 1])),
                ("y_test", Dtype::I64, vec![3], longs(&[1, 0, 1])),
            ];
            for e in extra {
                t.retain(|(k, ..)| *k != e.0);
                t.push(e);
            }
            t
        };
        let err = |tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>| {
            write(&path, &tensors);
            read(&path).unwrap_err().to_string()
        };
        write(&path, &good(vec![]));
        assert_eq!(read(&path).unwrap().classes, 2);

        let mut missing = good(vec![]);
        missing.retain(|(k, ..)| *k != "y_test");
        let e = err(missing);
        assert!(
            e.contains("key y_test is missing (the file holds x_test, x_train, y_train)"),
            "{e}"
        );
        let e = err(good(vec![("y_train", Dtype::I64, vec![2], longs(&[0, 1]))]));
        assert!(
            e.contains("x_train holds 3 samples and y_train 2 labels"),
            "{e}"
        );
        let e = err(good(vec![(
            "y_test",
            Dtype::I64,
            vec![3],
            longs(&[0, -1, 1]),
        )]));
        assert!(e.contains("y_test[1] = -1 is outside 0..2"), "{e}");
        let e = err(good(vec![
            ("classes", Dtype::I64, vec![], longs(&[2])),
            ("y_test", Dtype::I64, vec![3], longs(&[0, 5, 1])),
        ]));
        assert!(e.contains("y_test[1] = 5 is outside 0..2"), "{e}");
        let e = err(good(vec![
            ("x_test", Dtype::F32, vec![2, 3], rows.clone()),
            ("y_test", Dtype::I64, vec![2], longs(&[0, 1])),
        ]));
        assert!(
            e.contains("x_train's samples are float32 rows 2 and x_test's float32 rows 3"),
            "{e}"
        );
        let e = err(good(vec![(
            "x_train",
            Dtype::F64,
            vec![3, 1],
            rows.clone(),
        )]));
        assert!(
            e.contains("x_train is F64 [3, 1]; expected uint8 or float32"),
            "{e}"
        );
        let e = err(good(vec![(
            "x_train",
            Dtype::F32,
            vec![3, 2],
            f32s(&[0.0, f32::NAN, 2.0, 3.0, 4.0, 5.0]),
        )]));
        assert!(
            e.contains("x_train holds a non-finite value (NaN) at flat index 1"),
            "{e}"
        );
        std::fs::write(&path, b"not safetensors").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
