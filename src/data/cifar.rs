//! CIFAR-10 / CIFAR-100 binary batches. The record count comes from the file length, so the
//! official files, subsets and 20-image fixtures all go through this one reader.

use super::{DataError, Images};
use std::path::Path;

/// Which of the two CIFAR record layouts a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// 1 label byte + 3072 pixel bytes.
    Cifar10,
    /// coarse label byte + fine label byte + 3072 pixel bytes; the fine label is used.
    Cifar100,
}

const PIXELS: usize = 3 * 32 * 32;

impl Variant {
    fn label_bytes(self) -> usize {
        match self {
            Self::Cifar10 => 1,
            Self::Cifar100 => 2,
        }
    }

    /// Bytes per record.
    pub fn record_len(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// Number of classes of the label used for training.
    pub fn classes(self) -> usize {
        match self {
            Self::Cifar10 => 10,
            Self::Cifar100 => 100,
        }
    }

    fn layout(self) -> String {
        match self {
            Self::Cifar10 => "CIFAR-10 binary records of 3073 bytes: 1 label byte (0..9), then R, G, B planes of 1024 bytes (32x32, row-major)".into(),
            Self::Cifar100 => "CIFAR-100 binary records of 3074 bytes: coarse label byte (0..19), fine label byte (0..99), then R, G, B planes of 1024 bytes (32x32, row-major)".into(),
        }
    }
}

/// Reads one CIFAR binary file into images and (fine) labels.
pub fn read(path: &Path, bytes: &[u8], variant: Variant) -> Result<(Images, Vec<u8>), DataError> {
    let record = variant.record_len();
    let bad = |problem: String| DataError::format(path, problem, &variant.layout());
    if bytes.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(bad(format!(
            "{} bytes is not a whole number of {record}-byte records ({} records and {} bytes over)",
            bytes.len(),
            bytes.len() / record,
            bytes.len() % record
        )));
    }
    let count = bytes.len() / record;
    let mut pixels = Vec::with_capacity(count * PIXELS);
    let mut labels = Vec::with_capacity(count);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[variant.label_bytes() - 1];
        if label as usize >= variant.classes() {
            return Err(bad(format!(
                "record {i} has label {label}, outside 0..{}",
                variant.classes()
            )));
        }
        if variant == Variant::Cifar100 && rec[0] >= 20 {
            return Err(bad(format!(
                "record {i} has coarse label {}, outside 0..20",
                rec[0]
            )));
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[variant.label_bytes()..]);
    }
    let images = Images {
        count,
        channels: 3,
        height: 32,
        width: 32,
        pixels,
    };
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/cifar")
            .join(name);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_cifar10_fixture_holds_the_first_twenty_test_labels() {
        let (images, labels) = read(
            Path::new("c10"),
            &fixture("cifar10_test20.bin"),
            Variant::Cifar10,
        )
        .unwrap();
        assert_eq!(images.count, 20);
        assert_eq!(images.pixels.len(), 20 * 3072);
        assert_eq!(
            labels,
            [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
        );
    }

    #[test]
    fn the_cifar100_fixture_uses_fine_labels() {
        let (images, labels) = read(
            Path::new("c100"),
            &fixture("cifar100_test20.bin"),
            Variant::Cifar100,
        )
        .unwrap();
        assert_eq!(images.count, 20);
        let fine = [
            49, 33, 72, 51, 71, 92, 15, 14, 23, 0, 71, 75, 81, 69, 40, 43, 92, 97, 70, 53,
        ];
        assert_eq!(labels, fine);
    }

    #[test]
    fn pixels_are_planar_red_then_green_then_blue() {
        let mut rec = vec![7u8];
        rec.extend(std::iter::repeat_n(10, 1024));
        rec.extend(std::iter::repeat_n(20, 1024));
        rec.extend(std::iter::repeat_n(30, 1024));
        let (images, labels) = read(Path::new("one"), &rec, Variant::Cifar10).unwrap();
        assert_eq!(labels, [7]);
        assert_eq!(
            (images.pixels[0], images.pixels[1024], images.pixels[2048]),
            (10, 20, 30)
        );
    }

    #[test]
    fn a_file_of_the_wrong_size_shows_the_record_layout() {
        let mut bytes = fixture("cifar10_test20.bin");
        bytes.truncate(3073 * 2 + 100);
        let err = read(Path::new("short.bin"), &bytes, Variant::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("short.bin: 6246 bytes is not a whole number of 3073-byte records (2 records and 100 bytes over)"), "{err}");
        assert!(
            err.contains("expected CIFAR-10 binary records of 3073 bytes"),
            "{err}"
        );
        // A CIFAR-10 file read as CIFAR-100 is the wrong size too.
        let err = read(
            Path::new("c10"),
            &fixture("cifar10_test20.bin"),
            Variant::Cifar100,
        );
        assert!(err.unwrap_err().to_string().contains("3074-byte records"));
        let err = read(Path::new("e"), &[], Variant::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the file is empty"), "{err}");
    }

    #[test]
    fn out_of_range_labels_are_rejected() {
        let mut rec = vec![12u8];
        rec.extend(std::iter::repeat_n(0, 3072));
        let err = read(Path::new("l"), &rec, Variant::Cifar10)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("record 0 has label 12, outside 0..10"),
            "{err}"
        );
    }
}
