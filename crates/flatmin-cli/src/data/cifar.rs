//! CIFAR-10 and CIFAR-100, binary versions (`cifar-10-batches-bin/`, `cifar-100-binary/`).
//!
//! Each file is a plain run of fixed-size records with no header: the label byte(s), then a
//! 32×32 image as three planes (red, green, blue), row-major. CIFAR-10 records are 3073 bytes
//! (label 0..9); CIFAR-100 records are 3074 bytes (coarse label 0..19, then fine label 0..99, the
//! one used here). No registry ships the real files, so users bring them; the writers here
//! produce the same layout for tests.

use std::path::{Path, PathBuf};

use super::{
    DataError, Dataset, Split, check_labels, create_dir, make_split, numbered_class_names, read_file, write_file,
};

/// Channels of a CIFAR image.
pub const CIFAR_CHANNELS: usize = 3;
/// Rows and columns of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
/// Pixel bytes in one record.
pub const CIFAR_IMAGE_LEN: usize = CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE;
/// Bytes per CIFAR-10 record: the label, then the image.
pub const CIFAR10_RECORD_LEN: usize = 1 + CIFAR_IMAGE_LEN;
/// Bytes per CIFAR-100 record: coarse label, fine label, then the image.
pub const CIFAR100_RECORD_LEN: usize = 2 + CIFAR_IMAGE_LEN;
/// The folder the CIFAR-10 archive unpacks to.
pub const CIFAR10_DIR_NAME: &str = "cifar-10-batches-bin";
/// The folder the CIFAR-100 archive unpacks to.
pub const CIFAR100_DIR_NAME: &str = "cifar-100-binary";

/// Where one of the two datasets keeps what, and how its records are laid out.
struct CifarFormat {
    dir_name: &'static str,
    train_files: &'static [&'static str],
    test_file: &'static str,
    record_len: usize,
    classes: usize,
    class_names_file: &'static str,
}

const CIFAR10: CifarFormat = CifarFormat {
    dir_name: CIFAR10_DIR_NAME,
    train_files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test_file: "test_batch.bin",
    record_len: CIFAR10_RECORD_LEN,
    classes: 10,
    class_names_file: "batches.meta.txt",
};

const CIFAR100: CifarFormat = CifarFormat {
    dir_name: CIFAR100_DIR_NAME,
    train_files: &["train.bin"],
    test_file: "test.bin",
    record_len: CIFAR100_RECORD_LEN,
    classes: 100,
    class_names_file: "fine_label_names.txt",
};

/// Loads CIFAR-10 from `cifar-10-batches-bin/` or from the folder that contains it.
/// Class names come from `batches.meta.txt` when present, else they are numbered.
pub fn load_cifar10(dir: &Path) -> Result<Split, DataError> {
    load(dir, &CIFAR10)
}

/// Loads CIFAR-100 (fine labels, 100 classes) from `cifar-100-binary/` or the folder that
/// contains it. Class names come from `fine_label_names.txt` when present, else they are numbered.
pub fn load_cifar100(dir: &Path) -> Result<Split, DataError> {
    load(dir, &CIFAR100)
}

/// Reads the records of one CIFAR-10 file in memory: (pixels, labels). `path` is for errors.
pub fn decode_cifar10(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    decode(path, bytes, &CIFAR10)
}

/// Reads the records of one CIFAR-100 file in memory: (pixels, fine labels). `path` is for errors.
pub fn decode_cifar100(path: &Path, bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    decode(path, bytes, &CIFAR100)
}

/// Writes `split` as `root/cifar-10-batches-bin/` (training images spread over the five batches
/// in order, plus `batches.meta.txt`); returns that folder.
pub fn write_cifar10_dir(root: &Path, split: &Split) -> Result<PathBuf, DataError> {
    write(root, split, &CIFAR10)
}

/// Writes `split` as `root/cifar-100-binary/` (plus `fine_label_names.txt`); returns that folder.
/// The coarse label byte is written as fine label / 5, since readers ignore it.
pub fn write_cifar100_dir(root: &Path, split: &Split) -> Result<PathBuf, DataError> {
    write(root, split, &CIFAR100)
}

/// The folder holding the files: `dir` itself when it has the test file, else `dir/<dir_name>`
/// when that exists; the second value is the other place a missing file could have been.
fn locate(dir: &Path, format: &CifarFormat) -> (PathBuf, Option<PathBuf>) {
    let inner = dir.join(format.dir_name);
    if dir.join(format.test_file).is_file() || !inner.is_dir() {
        (dir.to_path_buf(), Some(inner))
    } else {
        (inner, None)
    }
}

fn load(dir: &Path, format: &CifarFormat) -> Result<Split, DataError> {
    let (base, elsewhere) = locate(dir, format);
    let read = |name: &str| {
        let path = base.join(name);
        read_file(&path).map_err(|error| match error {
            DataError::Missing { path, .. } => DataError::Missing {
                path,
                also_tried: elsewhere.iter().map(|other| other.join(name)).collect(),
            },
            other => other,
        })
    };
    let class_names = read_class_names(&base.join(format.class_names_file), format.classes)?;
    let dataset = |names: &[&str]| -> Result<Dataset, DataError> {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for name in names {
            let (file_images, file_labels) = decode(&base.join(name), &read(name)?, format)?;
            images.extend_from_slice(&file_images);
            labels.extend_from_slice(&file_labels);
        }
        Ok(Dataset {
            images,
            labels,
            classes: format.classes,
            channels: CIFAR_CHANNELS,
            height: CIFAR_SIDE,
            width: CIFAR_SIDE,
            class_names: class_names.clone(),
            features: None,
        })
    };
    let train = dataset(format.train_files)?;
    let test = dataset(&[format.test_file])?;
    make_split(train, &base, test, &base.join(format.test_file))
}

fn decode(path: &Path, bytes: &[u8], format: &CifarFormat) -> Result<(Vec<u8>, Vec<u8>), DataError> {
    if !bytes.len().is_multiple_of(format.record_len) {
        return Err(DataError::NotWholeRecords {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            record_len: format.record_len,
        });
    }
    let records = bytes.len() / format.record_len;
    let mut images = Vec::with_capacity(records * CIFAR_IMAGE_LEN);
    let mut labels = Vec::with_capacity(records);
    for record in bytes.chunks_exact(format.record_len) {
        // The used label is the last byte before the pixels in both formats (CIFAR-100's fine).
        let (label_bytes, pixels) = record.split_at(format.record_len - CIFAR_IMAGE_LEN);
        labels.extend(label_bytes.last());
        images.extend_from_slice(pixels);
    }
    check_labels(path, &labels, format.classes)?;
    Ok((images, labels))
}

/// One name per non-empty line of `path`, or numbered names when there is no such file.
fn read_class_names(path: &Path, classes: usize) -> Result<Vec<String>, DataError> {
    let bytes = match read_file(path) {
        Ok(bytes) => bytes,
        Err(DataError::Missing { .. }) => return Ok(numbered_class_names(classes)),
        Err(other) => return Err(other),
    };
    let names: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != classes {
        return Err(DataError::ClassNames {
            path: path.to_path_buf(),
            expected: classes,
            found: names.len(),
        });
    }
    Ok(names)
}

/// The records of `set`, `range` of its images, in `format`'s layout.
fn encode(set: &Dataset, range: std::ops::Range<usize>, format: &CifarFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(range.len() * format.record_len);
    let records = set.images.chunks_exact(CIFAR_IMAGE_LEN).zip(&set.labels);
    for (pixels, &label) in records.skip(range.start).take(range.len()) {
        if format.record_len == CIFAR100_RECORD_LEN {
            out.push(label / 5);
        }
        out.push(label);
        out.extend_from_slice(pixels);
    }
    out
}

fn write(root: &Path, split: &Split, format: &CifarFormat) -> Result<PathBuf, DataError> {
    let dir = root.join(format.dir_name);
    for set in [&split.train, &split.test] {
        if [set.channels, set.height, set.width] != [CIFAR_CHANNELS, CIFAR_SIDE, CIFAR_SIDE] {
            return Err(DataError::UnsupportedShape {
                path: dir,
                detail: format!(
                    "CIFAR images are 3×32×32, these are {}×{}×{}",
                    set.channels, set.height, set.width
                ),
            });
        }
    }
    create_dir(&dir)?;
    let files = format.train_files.len();
    let train_len = split.train.len();
    for (index, name) in format.train_files.iter().enumerate() {
        let range = index * train_len / files..(index + 1) * train_len / files;
        write_file(&dir.join(name), &encode(&split.train, range, format))?;
    }
    write_file(
        &dir.join(format.test_file),
        &encode(&split.test, 0..split.test.len(), format),
    )?;
    let mut names = split.train.class_names.join("\n");
    names.push('\n');
    write_file(&dir.join(format.class_names_file), names.as_bytes())?;
    Ok(dir)
}
