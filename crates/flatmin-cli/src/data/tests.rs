//! Tests of the dataset readers on files they write: every supported layout round-trips, and every
//! kind of damage is reported with the file's name and the specific problem.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::data::cifar::{
    CIFAR10_DIR_NAME, CIFAR100_DIR_NAME, load_cifar10, load_cifar100, write_cifar10_dir, write_cifar100_dir,
};
use crate::data::idx::{
    IdxNaming, IdxPart, MNIST_CLASS_NAMES, encode_idx_images, encode_idx_labels, gzip_bytes, load_idx_dir, load_mnist,
    write_idx_dir,
};
use crate::data::{DataError, Dataset, Split};

/// A fresh folder under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "flatmin-data-{}-{label}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A dataset with pixels that differ from image to image, and labels cycling over the classes.
fn synthetic(count: usize, [channels, height, width]: [usize; 3], classes: usize, salt: usize) -> Dataset {
    let image_len = channels * height * width;
    Dataset {
        images: (0..count * image_len)
            .map(|i| ((i * 31 + salt * 7) % 251) as u8)
            .collect(),
        labels: (0..count).map(|i| ((i + salt) % classes) as u8).collect(),
        classes,
        channels,
        height,
        width,
        class_names: (0..classes).map(|c| format!("class {c}")).collect(),
        features: None,
    }
}

fn synthetic_split(train: usize, test: usize, shape: [usize; 3], classes: usize) -> Split {
    Split {
        train: synthetic(train, shape, classes, 0),
        test: synthetic(test, shape, classes, 3),
    }
}

fn names(split: &Split) -> Vec<&str> {
    split.train.class_names.iter().map(String::as_str).collect()
}

/// Asserts the error's message names every one of `parts` (file name and problem).
#[track_caller]
fn assert_mentions(error: &DataError, parts: &[&str]) {
    let message = error.to_string();
    for part in parts {
        assert!(message.contains(part), "message {message:?} should mention {part:?}");
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write test file");
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read test file")
}

// ---------------------------------------------------------------- IDX

/// A valid 10-class IDX folder (dashed, raw) of 5 training and 4 test images of 4×3 pixels.
fn idx_dir(label: &str) -> (TempDir, Split) {
    let dir = TempDir::new(label);
    let split = synthetic_split(5, 4, [1, 4, 3], 10);
    write_idx_dir(dir.path(), &split, IdxNaming::Dashed, false).expect("write IDX");
    (dir, split)
}

#[test]
fn idx_round_trips_under_both_namings_raw_and_gzipped() {
    let split = synthetic_split(7, 3, [1, 5, 4], 3);
    for naming in [IdxNaming::Dashed, IdxNaming::Dotted] {
        for gzip in [false, true] {
            let dir = TempDir::new("idx-round-trip");
            let written = write_idx_dir(dir.path(), &split, naming, gzip).expect("write IDX");
            let expected_names: Vec<String> = IdxPart::ALL
                .iter()
                .map(|part| format!("{}{}", part.file_name(naming), if gzip { ".gz" } else { "" }))
                .collect();
            let written_names: Vec<String> = written
                .iter()
                .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(written_names, expected_names);
            let first = read(&written[0]);
            assert_eq!(first.starts_with(&[0x1f, 0x8b]), gzip, "{naming:?} gzip={gzip}");
            let loaded = load_idx_dir(dir.path(), &names(&split)).expect("load IDX");
            assert_eq!(loaded, split, "{naming:?} gzip={gzip}");
        }
    }
}

#[test]
fn idx_reads_a_folder_mixing_namings_and_compression() {
    let (dir, split) = idx_dir("idx-mixed");
    // Training images: gzipped under the dotted name; test labels: dotted, raw.
    let train_images = dir.path().join("train-images-idx3-ubyte");
    write(
        &dir.path().join("train-images.idx3-ubyte.gz"),
        &gzip_bytes(&read(&train_images)).unwrap(),
    );
    std::fs::remove_file(&train_images).unwrap();
    std::fs::rename(
        dir.path().join("t10k-labels-idx1-ubyte"),
        dir.path().join("t10k-labels.idx1-ubyte"),
    )
    .unwrap();
    let loaded = load_mnist(dir.path()).expect("load mixed folder");
    assert_eq!(loaded.train.images, split.train.images);
    assert_eq!(loaded.test.labels, split.test.labels);
    assert_eq!(loaded.train.class_names, MNIST_CLASS_NAMES.map(String::from).to_vec());
}

#[test]
fn idx_missing_file_names_every_name_looked_for() {
    let (dir, _) = idx_dir("idx-missing");
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let error = load_mnist(dir.path()).expect_err("a file is missing");
    assert!(matches!(error, DataError::Missing { .. }), "{error:?}");
    let dir_text = dir.path().display().to_string();
    assert_mentions(
        &error,
        &[
            "missing file",
            &dir_text,
            "t10k-labels-idx1-ubyte",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-labels.idx1-ubyte",
            "t10k-labels.idx1-ubyte.gz",
        ],
    );
}

#[test]
fn idx_wrong_magic_says_expected_and_found() {
    let (dir, _) = idx_dir("idx-magic");
    // A labels file where the training images should be.
    let images = dir.path().join("train-images-idx3-ubyte");
    write(&images, &encode_idx_labels(5, &[0, 1, 2, 3, 4]));
    let error = load_mnist(dir.path()).expect_err("labels magic in an images file");
    assert!(
        matches!(
            error,
            DataError::WrongMagic {
                expected: 0x803,
                found: 0x801,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error,
        &[
            "train-images-idx3-ubyte",
            "wrong magic number",
            "expected 0x00000803",
            "found 0x00000801",
        ],
    );

    // The same inside a gzipped file.
    std::fs::remove_file(&images).unwrap();
    let gzipped = dir.path().join("train-images-idx3-ubyte.gz");
    write(&gzipped, &gzip_bytes(&encode_idx_labels(5, &[0; 5])).unwrap());
    let error = load_mnist(dir.path()).expect_err("labels magic in a gzipped images file");
    assert_mentions(
        &error,
        &["train-images-idx3-ubyte.gz", "expected 0x00000803", "found 0x00000801"],
    );

    // Not IDX at all: a text file.
    write(&dir.path().join("t10k-labels-idx1-ubyte"), b"this is not an IDX file");
    std::fs::remove_file(&gzipped).unwrap();
    write(&images, &encode_idx_images(5, 4, 3, &[0; 60]));
    let error = load_mnist(dir.path()).expect_err("text instead of IDX");
    assert_mentions(
        &error,
        &["t10k-labels-idx1-ubyte", "wrong magic number", "not an IDX file"],
    );
}

#[test]
fn idx_truncated_header_and_image_records_are_reported_with_sizes() {
    let (dir, split) = idx_dir("idx-truncated-images");
    let images = dir.path().join("t10k-images-idx3-ubyte");
    // Header promises 4 images of 4×3 = 48 bytes, the file has 40.
    write(&images, &encode_idx_images(4, 4, 3, &split.test.images[..40]));
    let error = load_mnist(dir.path()).expect_err("truncated images");
    assert!(
        matches!(
            error,
            DataError::Truncated {
                expected: 48,
                found: 40,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error,
        &[
            "t10k-images-idx3-ubyte",
            "truncated image records",
            "expected 48 bytes, found 40",
        ],
    );

    // The same damage inside a gzip stream.
    std::fs::remove_file(&images).unwrap();
    let gzipped = dir.path().join("t10k-images-idx3-ubyte.gz");
    write(
        &gzipped,
        &gzip_bytes(&encode_idx_images(4, 4, 3, &split.test.images[..40])).unwrap(),
    );
    let error = load_mnist(dir.path()).expect_err("truncated gzipped images");
    assert_mentions(
        &error,
        &[
            "t10k-images-idx3-ubyte.gz",
            "truncated image records",
            "expected 48 bytes, found 40",
        ],
    );

    // A header cut short.
    std::fs::remove_file(&gzipped).unwrap();
    write(&images, &encode_idx_images(4, 4, 3, &[])[..10]);
    let error = load_mnist(dir.path()).expect_err("truncated header");
    assert_mentions(
        &error,
        &[
            "t10k-images-idx3-ubyte",
            "truncated IDX header",
            "expected 16 bytes, found 10",
        ],
    );
}

#[test]
fn idx_truncated_labels_are_reported_with_sizes() {
    let (dir, _) = idx_dir("idx-truncated-labels");
    write(
        &dir.path().join("train-labels-idx1-ubyte"),
        &encode_idx_labels(5, &[1, 2, 3]),
    );
    let error = load_mnist(dir.path()).expect_err("truncated labels");
    assert_mentions(
        &error,
        &[
            "train-labels-idx1-ubyte",
            "truncated label records",
            "expected 5 bytes, found 3",
        ],
    );
}

#[test]
fn idx_extra_bytes_after_the_records_are_refused() {
    let (dir, _) = idx_dir("idx-trailing");
    write(
        &dir.path().join("train-labels-idx1-ubyte"),
        &encode_idx_labels(5, &[1, 2, 3, 4, 5, 6, 7]),
    );
    let error = load_mnist(dir.path()).expect_err("trailing bytes");
    assert!(matches!(error, DataError::TrailingBytes { .. }), "{error:?}");
    assert_mentions(
        &error,
        &[
            "train-labels-idx1-ubyte",
            "2 unexpected bytes",
            "file of 13 bytes, found 15",
        ],
    );
}

#[test]
fn idx_label_out_of_range_names_record_label_and_classes() {
    let (dir, _) = idx_dir("idx-label-range");
    write(
        &dir.path().join("t10k-labels-idx1-ubyte"),
        &encode_idx_labels(4, &[0, 9, 3, 10]),
    );
    let error = load_mnist(dir.path()).expect_err("label 10 of 10 classes");
    assert!(
        matches!(
            error,
            DataError::LabelOutOfRange {
                record: 3,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error,
        &[
            "t10k-labels-idx1-ubyte",
            "label out of range",
            "record 3",
            "label 10",
            "10 classes",
        ],
    );
}

#[test]
fn idx_image_and_label_counts_must_agree() {
    let (dir, split) = idx_dir("idx-count");
    write(
        &dir.path().join("train-labels-idx1-ubyte"),
        &encode_idx_labels(4, &split.train.labels[..4]),
    );
    let error = load_mnist(dir.path()).expect_err("5 images, 4 labels");
    assert!(
        matches!(
            error,
            DataError::CountMismatch {
                images: 5,
                labels: 4,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error,
        &[
            "train-images-idx3-ubyte",
            "5 images",
            "train-labels-idx1-ubyte",
            "4 labels",
        ],
    );
}

#[test]
fn idx_broken_gzip_empty_file_odd_shapes_are_refused() {
    let (dir, _) = idx_dir("idx-odd");
    let images = dir.path().join("train-images-idx3-ubyte");

    write(&images, &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    let error = load_mnist(dir.path()).expect_err("broken gzip");
    assert!(matches!(error, DataError::Gzip { .. }), "{error:?}");
    assert_mentions(&error, &["train-images-idx3-ubyte", "does not decompress"]);

    write(&images, &encode_idx_images(5, 0, 3, &[]));
    let error = load_mnist(dir.path()).expect_err("0 rows");
    assert_mentions(&error, &["train-images-idx3-ubyte", "unsupported image shape", "0×3"]);

    write(&images, &encode_idx_images(u32::MAX, u32::MAX, u32::MAX, &[]));
    let error = load_mnist(dir.path()).expect_err("absurd header");
    assert_mentions(&error, &["train-images-idx3-ubyte", "unsupported image shape"]);

    write(&images, &encode_idx_images(0, 4, 3, &[]));
    write(&dir.path().join("train-labels-idx1-ubyte"), &encode_idx_labels(0, &[]));
    let error = load_mnist(dir.path()).expect_err("no images");
    assert!(matches!(error, DataError::Empty { .. }), "{error:?}");
    assert_mentions(&error, &["train-images-idx3-ubyte", "holds no images"]);
}

#[test]
fn idx_test_images_must_have_the_training_shape() {
    let (dir, _) = idx_dir("idx-shape");
    write(
        &dir.path().join("t10k-images-idx3-ubyte"),
        &encode_idx_images(4, 2, 6, &[0; 48]),
    );
    let error = load_mnist(dir.path()).expect_err("4×3 train, 2×6 test");
    assert!(matches!(error, DataError::ShapeMismatch { .. }), "{error:?}");
    assert_mentions(
        &error,
        &["t10k-images-idx3-ubyte", "1×2×6", "train-images-idx3-ubyte", "1×4×3"],
    );
}

#[test]
fn idx_writer_refuses_colour_images() {
    let dir = TempDir::new("idx-writer");
    let split = synthetic_split(2, 2, [3, 4, 4], 2);
    let error = write_idx_dir(dir.path(), &split, IdxNaming::Dashed, false).expect_err("3 channels");
    assert_mentions(&error, &["train-images-idx3-ubyte", "one channel"]);
}

// ---------------------------------------------------------------- CIFAR

const CIFAR: [usize; 3] = [3, 32, 32];

#[test]
fn cifar10_round_trips_from_its_folder_and_from_the_parent() {
    let root = TempDir::new("cifar10-round-trip");
    let split = synthetic_split(12, 4, CIFAR, 10);
    let dir = write_cifar10_dir(root.path(), &split).expect("write CIFAR-10");
    assert_eq!(dir, root.path().join(CIFAR10_DIR_NAME));
    // 12 training images over 5 batches, in order, batch i holding images i·12/5 .. (i+1)·12/5:
    // 2, 2, 3, 2, 3 records of 3073 bytes.
    let sizes: Vec<u64> = (1..=5)
        .map(|i| {
            std::fs::metadata(dir.join(format!("data_batch_{i}.bin")))
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [2, 2, 3, 2, 3].map(|n| n * 3073));
    assert_eq!(std::fs::metadata(dir.join("test_batch.bin")).unwrap().len(), 4 * 3073);
    assert_eq!(read(&dir.join("test_batch.bin"))[0], split.test.labels[0]);

    assert_eq!(load_cifar10(root.path()).expect("load from parent"), split);
    assert_eq!(load_cifar10(&dir).expect("load from the folder"), split);

    // Without batches.meta.txt the classes are numbered.
    std::fs::remove_file(dir.join("batches.meta.txt")).unwrap();
    let loaded = load_cifar10(&dir).expect("load without names");
    assert_eq!(
        loaded.train.class_names,
        (0..10).map(|c| c.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(loaded.train.images, split.train.images);
}

#[test]
fn cifar100_round_trips_with_fine_labels() {
    let root = TempDir::new("cifar100-round-trip");
    let split = synthetic_split(205, 3, CIFAR, 100);
    let dir = write_cifar100_dir(root.path(), &split).expect("write CIFAR-100");
    assert_eq!(dir, root.path().join(CIFAR100_DIR_NAME));
    let train = read(&dir.join("train.bin"));
    assert_eq!(train.len(), 205 * 3074);
    // Record 99: coarse byte, then fine label 99.
    let record = &train[99 * 3074..100 * 3074];
    assert_eq!((record[0], record[1]), (99 / 5, 99));

    assert_eq!(load_cifar100(root.path()).expect("load from parent"), split);
    let loaded = load_cifar100(&dir).expect("load from the folder");
    assert_eq!(loaded.train.classes, 100);
    assert_eq!(loaded.train.class_counts().iter().sum::<usize>(), 205);

    // The coarse label is not used: any value there is accepted and changes nothing.
    let mut edited = train.clone();
    edited[0] = 250;
    write(&dir.join("train.bin"), &edited);
    assert_eq!(load_cifar100(&dir).expect("coarse label ignored"), split);

    std::fs::remove_file(dir.join("fine_label_names.txt")).unwrap();
    let loaded = load_cifar100(&dir).expect("load without names");
    assert_eq!(loaded.test.class_names.len(), 100);
    assert_eq!(loaded.test.class_names[42], "42");
}

#[test]
fn cifar_file_size_not_a_multiple_of_the_record_is_refused() {
    let root = TempDir::new("cifar-size");
    let dir = write_cifar10_dir(root.path(), &synthetic_split(10, 2, CIFAR, 10)).unwrap();
    let batch = dir.join("data_batch_3.bin");
    let mut bytes = read(&batch);
    bytes.extend_from_slice(&[1, 2]);
    write(&batch, &bytes);
    let error = load_cifar10(root.path()).expect_err("two stray bytes");
    assert!(
        matches!(
            error,
            DataError::NotWholeRecords {
                size: 6148,
                record_len: 3073,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error,
        &[
            "data_batch_3.bin",
            "size 6148 bytes",
            "not a multiple of the 3073-byte record",
            "2 whole records and 2 bytes left over",
        ],
    );

    let root = TempDir::new("cifar100-size");
    let dir = write_cifar100_dir(root.path(), &synthetic_split(3, 2, CIFAR, 100)).unwrap();
    let test = dir.join("test.bin");
    let bytes = read(&test);
    write(&test, &bytes[..bytes.len() - 1]);
    let error = load_cifar100(root.path()).expect_err("one byte short");
    assert_mentions(
        &error,
        &[
            "test.bin",
            "not a multiple of the 3074-byte record",
            "1 whole records and 3073 bytes left over",
        ],
    );
}

#[test]
fn cifar_truncated_file_is_refused() {
    // A file cut inside its first record.
    let root = TempDir::new("cifar-truncated");
    let dir = write_cifar10_dir(root.path(), &synthetic_split(5, 2, CIFAR, 10)).unwrap();
    write(&dir.join("test_batch.bin"), &read(&dir.join("test_batch.bin"))[..100]);
    let error = load_cifar10(&dir).expect_err("100 bytes");
    assert_mentions(&error, &["test_batch.bin", "size 100 bytes", "3073-byte record"]);
}

#[test]
fn cifar_label_out_of_range_names_record_label_and_classes() {
    let root = TempDir::new("cifar-label");
    let dir = write_cifar10_dir(root.path(), &synthetic_split(5, 3, CIFAR, 10)).unwrap();
    let test = dir.join("test_batch.bin");
    let mut bytes = read(&test);
    bytes[2 * 3073] = 10;
    write(&test, &bytes);
    let error = load_cifar10(root.path()).expect_err("label 10");
    assert!(
        matches!(
            error,
            DataError::LabelOutOfRange {
                record: 2,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{error:?}"
    );
    assert_mentions(
        &error,
        &[
            "test_batch.bin",
            "label out of range",
            "record 2",
            "label 10",
            "10 classes",
        ],
    );

    let root = TempDir::new("cifar100-label");
    let dir = write_cifar100_dir(root.path(), &synthetic_split(5, 3, CIFAR, 100)).unwrap();
    let train = dir.join("train.bin");
    let mut bytes = read(&train);
    bytes[3074 + 1] = 100;
    write(&train, &bytes);
    let error = load_cifar100(root.path()).expect_err("fine label 100");
    assert_mentions(&error, &["train.bin", "record 1", "label 100", "100 classes"]);
}

#[test]
fn cifar_missing_files_are_named() {
    let root = TempDir::new("cifar-missing");
    let dir = write_cifar10_dir(root.path(), &synthetic_split(5, 2, CIFAR, 10)).unwrap();
    std::fs::remove_file(dir.join("data_batch_2.bin")).unwrap();
    let error = load_cifar10(root.path()).expect_err("batch 2 missing");
    assert!(matches!(error, DataError::Missing { .. }), "{error:?}");
    let expected = dir.join("data_batch_2.bin").display().to_string();
    assert_mentions(&error, &["missing file", &expected]);

    // A folder with nothing in it: both places the file could be are named.
    let empty = TempDir::new("cifar-nothing");
    let error = load_cifar100(empty.path()).expect_err("nothing there");
    let here = empty.path().join("train.bin").display().to_string();
    let inside = empty
        .path()
        .join(CIFAR100_DIR_NAME)
        .join("train.bin")
        .display()
        .to_string();
    assert_mentions(&error, &["missing file", &here, &inside]);
}

#[test]
fn cifar_class_name_file_with_wrong_count_is_refused() {
    let root = TempDir::new("cifar-names");
    let dir = write_cifar10_dir(root.path(), &synthetic_split(5, 2, CIFAR, 10)).unwrap();
    write(&dir.join("batches.meta.txt"), b"airplane\nautomobile\nbird\n\n");
    let error = load_cifar10(&dir).expect_err("3 names for 10 classes");
    assert_mentions(&error, &["batches.meta.txt", "lists 3 class names, expected 10"]);

    // The real file's layout: names, then blank lines.
    let real = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    write(&dir.join("batches.meta.txt"), real.as_bytes());
    let loaded = load_cifar10(&dir).expect("real names file");
    assert_eq!(loaded.train.class_names[9], "truck");
}

#[test]
fn cifar_writer_refuses_other_shapes() {
    let root = TempDir::new("cifar-writer");
    let error = write_cifar10_dir(root.path(), &synthetic_split(2, 2, [1, 28, 28], 10)).expect_err("1×28×28");
    assert_mentions(
        &error,
        &[CIFAR10_DIR_NAME, "CIFAR images are 3×32×32, these are 1×28×28"],
    );
}

// ---------------------------------------------------------------- Dataset

#[test]
fn dataset_indexes_images_and_counts_classes() {
    let set = synthetic(7, [2, 3, 2], 3, 0);
    assert_eq!(set.len(), 7);
    assert_eq!(set.image_len(), 12);
    assert_eq!(set.image(1), Some(&set.images[12..24]));
    assert_eq!(set.image(6).map(<[u8]>::len), Some(12));
    assert_eq!(set.image(7), None);
    assert_eq!(set.image(usize::MAX), None);
    assert_eq!(set.class_counts(), vec![3, 2, 2]);
}

// ---------------------------------------------------------------- real files

/// The full datasets as `scripts/fetch-data DEST` leaves them, with `FLATMIN_TEST_DATA=DEST`.
#[test]
#[ignore = "needs `scripts/fetch-data DEST` and FLATMIN_TEST_DATA=DEST"]
fn real_mnist_and_fashion_mnist_load_with_canonical_counts() {
    let dest = PathBuf::from(std::env::var_os("FLATMIN_TEST_DATA").expect("set FLATMIN_TEST_DATA"));
    let mnist = load_mnist(&dest.join("mnist")).expect("load MNIST");
    assert_eq!(
        mnist.train.class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        mnist.test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(mnist.train.labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(
        [mnist.train.channels, mnist.train.height, mnist.train.width],
        [1, 28, 28]
    );

    let fashion = crate::data::idx::load_fashion_mnist(&dest.join("fashion-mnist")).expect("load Fashion-MNIST");
    assert_eq!(fashion.train.class_counts(), vec![6000; 10]);
    assert_eq!(fashion.test.class_counts(), vec![1000; 10]);
    assert_eq!(fashion.train.class_names[9], "Ankle boot");
}
