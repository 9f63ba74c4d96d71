//! The laboratory's datasets: readers of the real formats users point the trainer at (IDX for
//! MNIST and Fashion-MNIST, the CIFAR-10/100 binary batches), the embedded default dataset, and
//! symmetric label noise.
//!
//! Every reader checks what it reads and answers a bad file with a [`DataError`] that names the
//! file and what is wrong with it; none panics on file contents. Images are kept as planar `u8`
//! pixels (N × C × H × W), exactly as the files store them, so loading copies bytes and nothing
//! more; turning them into tensors is the trainer's business.

pub mod cifar;
pub mod csv;
pub mod embedded;
pub mod folder;
pub mod idx;
pub mod input;
pub mod noise;
pub mod shapes;
pub mod split;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

/// Images and their labels, as read from one file set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Pixels of all images, image after image, each planar (channel, row, column), 0..=255.
    pub images: Vec<u8>,
    /// One label per image, each below `classes`.
    pub labels: Vec<u8>,
    /// How many classes the labels range over (not all need to occur).
    pub classes: usize,
    /// Channels per image (1 for MNIST, 3 for CIFAR).
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// A readable name for each class, `classes` of them.
    pub class_names: Vec<String>,
    /// Numeric features at full precision (a CSV's columns) instead of pixels: then `images` is
    /// empty, each sample is a `channels`×1×1 "image" of `channels` features, and the trainer
    /// standardises each feature with the training set's statistics (see [`csv`]).
    pub features: Option<Features>,
}

/// Feature values, sample after sample, in `f64` so that nothing is rounded before the trainer
/// standardises them. Equality is bitwise (the readers never store a NaN).
#[derive(Clone, Debug, Default)]
pub struct Features(pub Vec<f64>);

impl PartialEq for Features {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Eq for Features {}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image: channels × height × width.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `index`, or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let len = self.image_len();
        let start = index.checked_mul(len)?;
        self.images.get(start..start.checked_add(len)?)
    }

    /// How many images each class has, indexed by class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(label)) {
                *count += 1;
            }
        }
        counts
    }
}

/// A training set and the test set that goes with it (same image shape and classes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The images the model is trained on.
    pub train: Dataset,
    /// The held-out images it is evaluated on.
    pub test: Dataset,
}

/// Why a dataset could not be read or written. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the format needs does not exist; `also_tried` lists other names looked for.
    #[error("missing file {path}{}", also_looked_for(.also_tried))]
    Missing {
        /// The file looked for first.
        path: PathBuf,
        /// Other acceptable names for the same file, none of which exists either.
        also_tried: Vec<PathBuf>,
    },
    /// The file exists but could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: starts like gzip but does not decompress: {source}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// What the decompressor said.
        source: io::Error,
    },
    /// The file's first four bytes are not the magic number of what it should hold.
    #[error(
        "{path}: wrong magic number: expected {expected:#010x} ({}), found {found:#010x} ({})",
        describe_magic(*.expected),
        describe_magic(*.found)
    )]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// The magic number this file must start with.
        expected: u32,
        /// The magic number it starts with.
        found: u32,
    },
    /// A part of the file is shorter than its header (or the format) says.
    #[error("{path}: truncated {part}: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Which part: "IDX header", "image records", "label records".
        part: &'static str,
        /// Bytes that part must have.
        expected: u64,
        /// Bytes the file has for it.
        found: u64,
    },
    /// The file goes on after the last record its header announces.
    #[error(
        "{path}: {} unexpected bytes after the last record: the header implies a file of {expected} bytes, \
         found {found}",
        .found.saturating_sub(*.expected)
    )]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// The size the header implies.
        expected: u64,
        /// The actual size.
        found: u64,
    },
    /// A record-based file (CIFAR) whose size is not a whole number of records.
    #[error(
        "{path}: size {size} bytes is not a multiple of the {record_len}-byte record ({} whole records and {} \
         bytes left over)",
        .size / *.record_len as u64,
        .size % *.record_len as u64
    )]
    NotWholeRecords {
        /// The file.
        path: PathBuf,
        /// Its size in bytes (after decompression, if any).
        size: u64,
        /// Bytes per record in this format.
        record_len: usize,
    },
    /// The image shape in the file is not one this reader (or writer) can hold.
    #[error("{path}: unsupported image shape: {detail}")]
    UnsupportedShape {
        /// The file.
        path: PathBuf,
        /// What is wrong with the shape.
        detail: String,
    },
    /// The file, or the whole training or test part, holds no image.
    #[error("{path}: holds no images")]
    Empty {
        /// The file or folder.
        path: PathBuf,
    },
    /// A label is not below the number of classes.
    #[error(
        "{path}: label out of range in record {record}: label {label}, but there are only {classes} classes (0..={})",
        .classes.saturating_sub(1)
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Index of the record (0-based) in that file.
        record: usize,
        /// The label found.
        label: u8,
        /// How many classes the dataset has.
        classes: usize,
    },
    /// The images file and the labels file hold different numbers of records.
    #[error(
        "image and label counts disagree: {images_path} holds {images} images but {labels_path} holds {labels} labels"
    )]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// Images it holds.
        images: usize,
        /// The labels file.
        labels_path: PathBuf,
        /// Labels it holds.
        labels: usize,
    },
    /// The test images differ in shape from the training images.
    #[error(
        "{path}: images are {} (channels×height×width) but those of {reference} are {}",
        shape(.found),
        shape(.expected)
    )]
    ShapeMismatch {
        /// The file with the odd shape.
        path: PathBuf,
        /// Its shape, channels × height × width.
        found: [usize; 3],
        /// The file whose shape it should match.
        reference: PathBuf,
        /// That file's shape.
        expected: [usize; 3],
    },
    /// A class-name file lists the wrong number of names.
    #[error("{path}: lists {found} class names, expected {expected} (one per line)")]
    ClassNames {
        /// The file.
        path: PathBuf,
        /// Names the dataset needs (one per class).
        expected: usize,
        /// Names the file lists.
        found: usize,
    },
}

/// "IDX, unsigned bytes, 3 dimensions", or why the number is not an IDX magic at all.
fn describe_magic(magic: u32) -> String {
    let [zero_a, zero_b, kind, dims] = magic.to_be_bytes();
    if zero_a != 0 || zero_b != 0 {
        return "not an IDX file (IDX starts with two zero bytes)".into();
    }
    let kind = match kind {
        0x08 => "unsigned bytes",
        0x09 => "signed bytes",
        0x0B => "16-bit integers",
        0x0C => "32-bit integers",
        0x0D => "32-bit floats",
        0x0E => "64-bit floats",
        _ => "an unknown element type",
    };
    let plural = if dims == 1 { "" } else { "s" };
    format!("IDX of {kind}, {dims} dimension{plural}")
}

/// " (also looked for A, B)", or nothing when there were no other names.
fn also_looked_for(others: &[PathBuf]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let others: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
    format!(" (also looked for {})", others.join(", "))
}

fn shape(s: &[usize; 3]) -> String {
    format!("{}×{}×{}", s[0], s[1], s[2])
}

/// The whole file, or [`DataError::Missing`] / [`DataError::Io`] naming it.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => DataError::Missing {
            path: path.to_path_buf(),
            also_tried: Vec::new(),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Writes a whole file (atomically, so a failed test writer never leaves half a file behind).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates a folder and its parents, naming it on failure.
pub(crate) fn create_dir(path: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks every label is below `classes`, naming the first record that is not.
pub(crate) fn check_labels(path: &Path, labels: &[u8], classes: usize) -> Result<(), DataError> {
    match labels
        .iter()
        .enumerate()
        .find(|(_, label)| usize::from(**label) >= classes)
    {
        None => Ok(()),
        Some((record, &label)) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            record,
            label,
            classes,
        }),
    }
}

/// "0", "1", …: class names for a dataset that ships none.
pub(crate) fn numbered_class_names(classes: usize) -> Vec<String> {
    (0..classes).map(|c| c.to_string()).collect()
}

/// Pairs a training and a test set, checking both have images and that their shapes agree.
pub(crate) fn make_split(
    train: Dataset,
    train_path: &Path,
    test: Dataset,
    test_path: &Path,
) -> Result<Split, DataError> {
    if train.is_empty() {
        return Err(DataError::Empty {
            path: train_path.to_path_buf(),
        });
    }
    if test.is_empty() {
        return Err(DataError::Empty {
            path: test_path.to_path_buf(),
        });
    }
    let train_shape = [train.channels, train.height, train.width];
    let test_shape = [test.channels, test.height, test.width];
    if train_shape != test_shape {
        return Err(DataError::ShapeMismatch {
            path: test_path.to_path_buf(),
            found: test_shape,
            reference: train_path.to_path_buf(),
            expected: train_shape,
        });
    }
    Ok(Split { train, test })
}
