//! The named data sets valleys fetches on first use: which upstream files make each one, where
//! they are published, and the SHA-256 each must have. Pure data; [`super::fetch`] acts on it.
//!
//! The IDX sets are checked by the SHA-256 of each file's *gunzipped* contents, so that the
//! upstream archives and a distribution's recompressed copies (Debian's
//! `dataset-fashion-mnist`, say) both verify. The CIFAR archives are checked as downloaded,
//! since a tarball's members cannot be hashed before it is trusted.

use crate::config::DatasetName;

/// How a downloaded file proves that it is the one pinned here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The SHA-256 and length of the file as downloaded.
    Archive { sha256: &'static str, bytes: u64 },
    /// The SHA-256 and length of its gunzipped contents, which become `file` in the cache.
    Gunzipped {
        sha256: &'static str,
        bytes: u64,
        file: &'static str,
    },
}

/// One file to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    /// Its file name upstream and in a mirror.
    pub name: &'static str,
    /// Its length upstream (for messages and the progress line; [`Check`] decides).
    pub bytes: u64,
    pub check: Check,
    /// Where it is published, tried in order.
    pub urls: &'static [&'static str],
    /// For a tarball: the members to unpack, as paths inside it (nothing else is written).
    pub members: &'static [&'static str],
}

/// A data set that can be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set {
    pub dataset: DatasetName,
    /// Its folder in the cache, and in a mirror.
    pub dir: &'static str,
    pub archives: &'static [Archive],
    /// The shape of one image and the number of classes, known before anything is read.
    pub image: [i64; 3],
    pub classes: usize,
    /// Where it comes from and how to cite it, in words.
    pub credit: &'static str,
}

impl Set {
    /// Bytes to download for the whole set.
    pub fn download_bytes(&self) -> u64 {
        self.archives.iter().map(|a| a.bytes).sum()
    }
}

/// The set fetched for `dataset`, if it is one valleys knows how to fetch.
pub fn set(dataset: DatasetName) -> Option<&'static Set> {
    SETS.iter().find(|s| s.dataset == dataset)
}

/// Every set valleys can fetch.
pub fn all() -> &'static [Set] {
    SETS
}

const CIFAR10_MEMBERS: &[&str] = &[
    "cifar-10-batches-bin/data_batch_1.bin",
    "cifar-10-batches-bin/data_batch_2.bin",
    "cifar-10-batches-bin/data_batch_3.bin",
    "cifar-10-batches-bin/data_batch_4.bin",
    "cifar-10-batches-bin/data_batch_5.bin",
    "cifar-10-batches-bin/test_batch.bin",
    "cifar-10-batches-bin/batches.meta.txt",
];

const CIFAR100_MEMBERS: &[&str] = &[
    "cifar-100-binary/train.bin",
    "cifar-100-binary/test.bin",
    "cifar-100-binary/coarse_label_names.txt",
    "cifar-100-binary/fine_label_names.txt",
];

/// The four IDX files of an MNIST-like set: gzipped length, contents' SHA-256, then the same
/// for each file in the order train images, train labels, test images, test labels.
macro_rules! idx_set {
    ($urls:expr, [$(($name:literal, $gz:literal, $sha:literal, $raw:literal)),* $(,)?]) => {
        &[$(Archive {
            name: concat!($name, ".gz"),
            bytes: $gz,
            check: Check::Gunzipped { sha256: $sha, bytes: $raw, file: $name },
            urls: $urls,
            members: &[],
        }),*]
    };
}

const MNIST_URLS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

const FASHION_URLS: &[&str] = &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

const SETS: &[Set] = &[
    Set {
        dataset: DatasetName::Cifar10,
        dir: "cifar10",
        archives: &[Archive {
            name: "cifar-10-binary.tar.gz",
            bytes: 170_052_171,
            check: Check::Archive {
                sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                bytes: 170_052_171,
            },
            urls: &["https://www.cs.toronto.edu/~kriz/"],
            members: CIFAR10_MEMBERS,
        }],
        image: [3, 32, 32],
        classes: 10,
        credit: "CIFAR-10, binary version (Krizhevsky 2009)",
    },
    Set {
        dataset: DatasetName::Cifar100,
        dir: "cifar100",
        archives: &[Archive {
            name: "cifar-100-binary.tar.gz",
            bytes: 168_513_733,
            check: Check::Archive {
                sha256: "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
                bytes: 168_513_733,
            },
            urls: &["https://www.cs.toronto.edu/~kriz/"],
            members: CIFAR100_MEMBERS,
        }],
        image: [3, 32, 32],
        classes: 100,
        credit: "CIFAR-100, binary version (Krizhevsky 2009)",
    },
    Set {
        dataset: DatasetName::Mnist,
        dir: "mnist",
        archives: idx_set!(
            MNIST_URLS,
            [
                (
                    "train-images-idx3-ubyte",
                    9_912_422,
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                    47_040_016
                ),
                (
                    "train-labels-idx1-ubyte",
                    28_881,
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                    60_008
                ),
                (
                    "t10k-images-idx3-ubyte",
                    1_648_877,
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                    7_840_016
                ),
                (
                    "t10k-labels-idx1-ubyte",
                    4_542,
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                    10_008
                ),
            ]
        ),
        image: [1, 28, 28],
        classes: 10,
        credit: "MNIST (LeCun, Cortes and Burges)",
    },
    Set {
        dataset: DatasetName::FashionMnist,
        dir: "fashion-mnist",
        archives: idx_set!(
            FASHION_URLS,
            [
                (
                    "train-images-idx3-ubyte",
                    26_421_880,
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                    47_040_016
                ),
                (
                    "train-labels-idx1-ubyte",
                    29_515,
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    60_008
                ),
                (
                    "t10k-images-idx3-ubyte",
                    4_422_102,
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                    7_840_016
                ),
                (
                    "t10k-labels-idx1-ubyte",
                    5_148,
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                    10_008
                ),
            ]
        ),
        image: [1, 28, 28],
        classes: 10,
        credit: "Fashion-MNIST, the whole set (Xiao, Rasul and Vollgraf 2017; MIT, Zalando SE)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pin_is_a_sha256_and_every_set_names_distinct_files() {
        for set in all() {
            let mut names = std::collections::HashSet::new();
            for a in set.archives {
                let (sha, bytes) = match a.check {
                    Check::Archive { sha256, bytes } => (sha256, bytes),
                    Check::Gunzipped { sha256, bytes, .. } => (sha256, bytes),
                };
                assert_eq!(sha.len(), 64, "{}", a.name);
                assert!(
                    sha.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                );
                assert!(bytes > 0 && a.bytes > 0);
                assert!(names.insert(a.name), "{} twice", a.name);
                assert!(!a.urls.is_empty() && a.urls.iter().all(|u| u.ends_with('/')));
                assert!(
                    a.members
                        .iter()
                        .all(|m| !m.contains("..") && !m.starts_with('/'))
                );
            }
        }
        for name in [
            DatasetName::Cifar10,
            DatasetName::Cifar100,
            DatasetName::Mnist,
            DatasetName::FashionMnist,
        ] {
            assert!(set(name).is_some(), "{}", name.as_str());
        }
        assert!(set(DatasetName::Toy).is_none());
    }

    #[test]
    fn the_cifar_archives_hold_the_files_the_reader_expects() {
        // Sizes from the upstream page: 6 x 30 730 000 and 153 700 000 + 30 740 000 bytes.
        let ten = set(DatasetName::Cifar10).unwrap();
        assert_eq!(ten.archives[0].members.len(), 7);
        assert_eq!(ten.download_bytes(), 170_052_171);
        let hundred = set(DatasetName::Cifar100).unwrap();
        assert!(
            hundred.archives[0]
                .members
                .contains(&"cifar-100-binary/train.bin")
        );
        assert_eq!((hundred.image, hundred.classes), ([3, 32, 32], 100));
    }
}
