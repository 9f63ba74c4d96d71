//! The dataset the trainer uses when given no `--data-dir`: a class-balanced subset of
//! Fashion-MNIST (the first 400 training and the first 100 test images of each class, in their
//! original order), built by `scripts/build-default-dataset` and compiled into the binary, so
//! that every run works offline. It goes through the same IDX reader as users' files.
//! Fashion-MNIST is © 2017 Zalando SE, MIT license: see `assets/fashion-mnist-subset/NOTICE`.

use std::path::Path;

use super::idx::{FASHION_MNIST_CLASS_NAMES, IdxFile, IdxSplitFiles, split_from_idx_bytes};
use super::{DataError, Split};

/// Training images per class in the embedded subset.
pub const TRAIN_PER_CLASS: usize = 400;
/// Test images per class in the embedded subset.
pub const TEST_PER_CLASS: usize = 100;

const TRAIN_IMAGES: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../assets/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");

/// The embedded Fashion-MNIST subset: 4,000 training and 1,000 test images of 1×28×28.
/// Errors only if the embedded files were damaged at build time.
pub fn fashion_mnist_subset() -> Result<Split, DataError> {
    let file = |path: &'static str, bytes: &'static [u8]| IdxFile {
        path: Path::new(path),
        bytes,
    };
    let files = IdxSplitFiles {
        train_images: file(
            "<embedded>/fashion-mnist-subset/train-images-idx3-ubyte.gz",
            TRAIN_IMAGES,
        ),
        train_labels: file(
            "<embedded>/fashion-mnist-subset/train-labels-idx1-ubyte.gz",
            TRAIN_LABELS,
        ),
        test_images: file("<embedded>/fashion-mnist-subset/t10k-images-idx3-ubyte.gz", TEST_IMAGES),
        test_labels: file("<embedded>/fashion-mnist-subset/t10k-labels-idx1-ubyte.gz", TEST_LABELS),
    };
    split_from_idx_bytes(files, &FASHION_MNIST_CLASS_NAMES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_subset_is_balanced_fashion_mnist() {
        let split = fashion_mnist_subset().expect("the embedded files decode");
        for (set, per_class) in [(&split.train, TRAIN_PER_CLASS), (&split.test, TEST_PER_CLASS)] {
            assert_eq!(set.len(), 10 * per_class);
            assert_eq!([set.channels, set.height, set.width], [1, 28, 28]);
            assert_eq!(set.images.len(), set.len() * 784);
            assert_eq!(set.classes, 10);
            assert_eq!(set.class_counts(), vec![per_class; 10]);
            assert_eq!(set.class_names[0], "T-shirt/top");
            assert_eq!(set.class_names[9], "Ankle boot");
            // Real photographs, not blank or random bytes: Fashion-MNIST's mean pixel is about
            // 73 (0.286 × 255) and about half its pixels are pure background (0).
            let mean = set.images.iter().map(|&p| f64::from(p)).sum::<f64>() / set.images.len() as f64;
            assert!((60.0..90.0).contains(&mean), "mean pixel {mean}");
            let background = set.images.iter().filter(|&&p| p == 0).count() as f64 / set.images.len() as f64;
            assert!((0.3..0.7).contains(&background), "background fraction {background}");
        }
        // The subset keeps the original order: Fashion-MNIST's first training labels are
        // 9 0 0 3 0 2 7 2 5 5, and its first test labels 9 2 1 1 6 1 4 6 5 7.
        assert_eq!(split.train.labels[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        assert_eq!(split.test.labels[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    }
}
