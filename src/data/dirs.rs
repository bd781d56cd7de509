//! Data sets read from a directory of the upstream files (MNIST and Fashion-MNIST as IDX,
//! CIFAR-10 and -100 as their binary batches), with one-line errors naming the file.

use super::*;

const IDX_DIR_LAYOUT: &str = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each raw or .gz)";

pub(super) fn read_idx_dir(name: DatasetName, dir: &Path) -> Result<RawDataset, DataError> {
    let find = |stem: &str| -> Result<PathBuf, DataError> {
        let candidates = [
            stem.to_owned(),
            format!("{stem}.gz"),
            stem.replacen("-idx", ".idx", 1),
            format!("{}.gz", stem.replacen("-idx", ".idx", 1)),
        ];
        candidates
            .iter()
            .map(|c| dir.join(c))
            .find(|p| p.is_file())
            .ok_or_else(|| DataError::Layout {
                dir: dir.to_owned(),
                dataset: name.as_str(),
                problem: format!("{stem}[.gz] is missing"),
                layout: IDX_DIR_LAYOUT.into(),
            })
    };
    check_dir(name, dir, IDX_DIR_LAYOUT)?;
    let split = |stem: &str| -> Result<RawSplit, DataError> {
        let image_path = find(&format!("{stem}-images-idx3-ubyte"))?;
        let label_path = find(&format!("{stem}-labels-idx1-ubyte"))?;
        let images = idx::read_images(&image_path, &read_file(&image_path)?)?;
        let labels = idx::read_labels(&label_path, &read_file(&label_path)?)?;
        if images.count != labels.len() {
            return Err(DataError::Mismatch(format!(
                "{} has {} images but {} has {} labels",
                image_path.display(),
                images.count,
                label_path.display(),
                labels.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= 10) {
            return Err(DataError::format(
                &label_path,
                format!("label {bad} is outside 0..10"),
                "labels 0..9",
            ));
        }
        Ok(RawSplit {
            features: Features::Images(images),
            labels: labels.into_iter().map(i64::from).collect(),
        })
    };
    let (mean, std) = match name {
        DatasetName::Mnist => MNIST_MEAN_STD,
        _ => FASHION_MEAN_STD,
    };
    let (train, test) = (split("train")?, split("t10k")?);
    Ok(RawDataset {
        name,
        source: format!(
            "{} ({} train / {} test)",
            dir.display(),
            train.len(),
            test.len()
        ),
        train,
        test,
        classes: 10,
        mean: vec![mean],
        std: vec![std],
    })
}

pub(super) fn read_cifar_dir(name: DatasetName, dir: &Path) -> Result<RawDataset, DataError> {
    let (variant, sub, layout) = match name {
        DatasetName::Cifar100 => (
            cifar::Variant::Cifar100,
            "cifar-100-binary",
            "train.bin (50 000 x 3074 bytes) and test.bin (10 000 x 3074 bytes), as in cifar-100-binary.tar.gz",
        ),
        _ => (
            cifar::Variant::Cifar10,
            "cifar-10-batches-bin",
            "data_batch_1.bin .. data_batch_5.bin and test_batch.bin (10 000 x 3073 bytes each), as in cifar-10-binary.tar.gz",
        ),
    };
    check_dir(name, dir, layout)?;
    // Accept the directory itself or the one the official tarball unpacks to.
    let dir = if dir.join(sub).is_dir() {
        dir.join(sub)
    } else {
        dir.to_owned()
    };
    let (train_files, test_file): (Vec<PathBuf>, PathBuf) = match variant {
        cifar::Variant::Cifar100 => (vec![dir.join("train.bin")], dir.join("test.bin")),
        cifar::Variant::Cifar10 => (
            (1..=5)
                .map(|i| dir.join(format!("data_batch_{i}.bin")))
                .filter(|p| p.is_file())
                .collect(),
            dir.join("test_batch.bin"),
        ),
    };
    let missing = |what: String| DataError::Layout {
        dir: dir.clone(),
        dataset: name.as_str(),
        problem: format!("{what} is missing"),
        layout: layout.into(),
    };
    if train_files.is_empty() || !train_files.iter().all(|p| p.is_file()) {
        return Err(missing(match variant {
            cifar::Variant::Cifar100 => "train.bin".into(),
            cifar::Variant::Cifar10 => "data_batch_1.bin".into(),
        }));
    }
    if !test_file.is_file() {
        return Err(missing(
            test_file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into(),
        ));
    }
    let read_split = |paths: &[PathBuf]| -> Result<RawSplit, DataError> {
        let mut all: Option<Images> = None;
        let mut labels = Vec::new();
        for path in paths {
            let (images, l) = cifar::read(path, &read_file(path)?, variant)?;
            labels.extend(l);
            match &mut all {
                None => all = Some(images),
                Some(acc) => {
                    acc.count += images.count;
                    acc.pixels.extend(images.pixels);
                }
            }
        }
        let images = all.expect("at least one file");
        Ok(RawSplit {
            features: Features::Images(images),
            labels: labels.into_iter().map(i64::from).collect(),
        })
    };
    let train = read_split(&train_files)?;
    let test = read_split(std::slice::from_ref(&test_file))?;
    Ok(RawDataset {
        name,
        source: format!(
            "{} ({} train from {} file(s) / {} test)",
            dir.display(),
            train.len(),
            train_files.len(),
            test.len()
        ),
        train,
        test,
        classes: variant.classes(),
        mean: CIFAR_MEAN.to_vec(),
        std: CIFAR_STD.to_vec(),
    })
}

fn check_dir(name: DatasetName, dir: &Path, layout: &str) -> Result<(), DataError> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(DataError::Layout {
        dir: dir.to_owned(),
        dataset: name.as_str(),
        problem: if dir.exists() {
            "not a directory".into()
        } else {
            "the directory does not exist".into()
        },
        layout: layout.into(),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })
}
