//! MNIST-style IDX files (raw or gzip): images (magic 2051) and labels (magic 2049).

use super::{DataError, Images};
use std::io::Read;
use std::path::Path;

const IMAGE_LAYOUT: &str = "an IDX image file (raw or .gz): big-endian u32 magic 2051, u32 count, u32 rows, u32 cols, then count*rows*cols pixel bytes";
const LABEL_LAYOUT: &str =
    "an IDX label file (raw or .gz): big-endian u32 magic 2049, u32 count, then count label bytes";

/// Reads an IDX image file; the count comes from the header and must match the length.
pub fn read_images(path: &Path, bytes: &[u8]) -> Result<Images, DataError> {
    let raw = maybe_gunzip(path, bytes, IMAGE_LAYOUT)?;
    let bad = |problem: String| DataError::format(path, problem, IMAGE_LAYOUT);
    let header = header_words::<4>(&raw).ok_or_else(|| bad(too_short(raw.len(), 16)))?;
    if header[0] != 2051 {
        return Err(bad(wrong_magic(header[0], 2051)));
    }
    let [_, count, rows, cols] = header.map(|w| w as usize);
    let expected = 16 + count * rows * cols;
    if raw.len() != expected {
        return Err(bad(format!(
            "{} bytes, but the header promises {count} images of {rows}x{cols} ({expected} bytes){}",
            raw.len(),
            if raw.len() < expected {
                ": truncated"
            } else {
                ""
            }
        )));
    }
    Ok(Images {
        count,
        channels: 1,
        height: rows,
        width: cols,
        pixels: raw[16..].to_vec(),
    })
}

/// Reads an IDX label file.
pub fn read_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let raw = maybe_gunzip(path, bytes, LABEL_LAYOUT)?;
    let bad = |problem: String| DataError::format(path, problem, LABEL_LAYOUT);
    let header = header_words::<2>(&raw).ok_or_else(|| bad(too_short(raw.len(), 8)))?;
    if header[0] != 2049 {
        return Err(bad(wrong_magic(header[0], 2049)));
    }
    let count = header[1] as usize;
    if raw.len() != 8 + count {
        return Err(bad(format!(
            "{} bytes, but the header promises {count} labels ({} bytes){}",
            raw.len(),
            8 + count,
            if raw.len() < 8 + count {
                ": truncated"
            } else {
                ""
            }
        )));
    }
    Ok(raw[8..].to_vec())
}

fn maybe_gunzip(path: &Path, bytes: &[u8], layout: &str) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 2);
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, format!("corrupt gzip data ({e})"), layout))?;
    Ok(out)
}

fn header_words<const N: usize>(raw: &[u8]) -> Option<[u32; N]> {
    let mut words = [0u32; N];
    for (i, word) in words.iter_mut().enumerate() {
        let b = raw.get(4 * i..4 * i + 4)?;
        *word = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    Some(words)
}

fn too_short(len: usize, header: usize) -> String {
    format!("only {len} bytes, shorter than the {header}-byte header")
}

fn wrong_magic(found: u32, expected: u32) -> String {
    format!("magic number {found} (0x{found:08x}) instead of {expected} (0x{expected:08x})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [2051, count, rows, cols] {
            v.extend_from_slice(&u32::to_be_bytes(w));
        }
        v.extend_from_slice(pixels);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn raw_and_gzipped_images_read_the_same() {
        let raw = idx_images(2, 2, 3, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let a = read_images(Path::new("a"), &raw).unwrap();
        let b = read_images(Path::new("b.gz"), &gzip(&raw)).unwrap();
        assert_eq!((a.count, a.height, a.width), (2, 2, 3));
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.pixels[11], 11);
    }

    #[test]
    fn a_truncated_image_file_says_so_and_shows_the_layout() {
        let raw = idx_images(3, 2, 2, &[0; 8]);
        let err = read_images(Path::new("t.idx"), &raw)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "t.idx: 24 bytes, but the header promises 3 images of 2x2 (28 bytes): truncated"
            ),
            "{err}"
        );
        assert!(err.contains("expected an IDX image file"), "{err}");
    }

    #[test]
    fn a_wrong_magic_is_reported_in_decimal_and_hex() {
        let mut raw = idx_images(1, 1, 1, &[0]);
        raw[3] = 0x01;
        let err = read_images(Path::new("m"), &raw).unwrap_err().to_string();
        assert!(
            err.contains("magic number 2049 (0x00000801) instead of 2051"),
            "{err}"
        );
        let err = read_labels(Path::new("m"), &idx_images(1, 1, 1, &[0])).unwrap_err();
        assert!(err.to_string().contains("instead of 2049"), "{err}");
    }

    #[test]
    fn corrupt_gzip_and_tiny_files_are_rejected() {
        let mut gz = gzip(&idx_images(1, 1, 1, &[0]));
        let n = gz.len();
        gz.truncate(n - 6);
        let err = read_images(Path::new("c.gz"), &gz).unwrap_err().to_string();
        assert!(err.contains("corrupt gzip data"), "{err}");
        let err = read_labels(Path::new("s"), &[0, 0])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than the 8-byte header"), "{err}");
    }

    #[test]
    fn the_embedded_fashion_mnist_subset_is_class_balanced() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fashion-mnist-10k");
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let images = read_images(Path::new("i"), &read("train-images-idx3-ubyte.gz")).unwrap();
        let labels = read_labels(Path::new("l"), &read("train-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(
            (images.count, images.height, images.width),
            (10_000, 28, 28)
        );
        assert_eq!(labels.len(), 10_000);
        // The first Fashion-MNIST training labels, in file order.
        assert_eq!(&labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        let mut counts = [0; 10];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [1000; 10]);
        let test = read_labels(Path::new("l"), &read("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(&test[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    }
}
