//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped.
//!
//! An IDX file is a big-endian header (the magic `00 00 08 ndim`, then one `u32` size per
//! dimension) followed by the `u8` elements. Images have 3 dimensions (count, rows, columns),
//! labels 1 (count). A `--data-dir` holds four such files under either of the two namings seen
//! in the wild (`train-images-idx3-ubyte` and `train-images.idx3-ubyte`), each possibly `.gz`;
//! gzip is recognised by its content, not its name.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{DataError, Dataset, Split, check_labels, create_dir, make_split, read_file, write_file};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions: images.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension: labels.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
const IMAGES_HEADER_LEN: usize = 16;
const LABELS_HEADER_LEN: usize = 8;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// MNIST's classes are the digits themselves.
pub const MNIST_CLASS_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's classes, in label order.
pub const FASHION_MNIST_CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// How the four files of a `--data-dir` are named; both are read, either can be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxNaming {
    /// `train-images-idx3-ubyte`: the original distribution's names.
    Dashed,
    /// `train-images.idx3-ubyte`: a dot before `idx`, as some repackagings have it.
    Dotted,
}

/// One of the four files of an IDX dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxPart {
    /// Training images.
    TrainImages,
    /// Training labels.
    TrainLabels,
    /// Test images.
    TestImages,
    /// Test labels.
    TestLabels,
}

impl IdxPart {
    /// All four, training first.
    pub const ALL: [IdxPart; 4] = [Self::TrainImages, Self::TrainLabels, Self::TestImages, Self::TestLabels];

    /// The file's name under `naming`, without any `.gz`.
    pub fn file_name(self, naming: IdxNaming) -> &'static str {
        match (self, naming) {
            (Self::TrainImages, IdxNaming::Dashed) => "train-images-idx3-ubyte",
            (Self::TrainLabels, IdxNaming::Dashed) => "train-labels-idx1-ubyte",
            (Self::TestImages, IdxNaming::Dashed) => "t10k-images-idx3-ubyte",
            (Self::TestLabels, IdxNaming::Dashed) => "t10k-labels-idx1-ubyte",
            (Self::TrainImages, IdxNaming::Dotted) => "train-images.idx3-ubyte",
            (Self::TrainLabels, IdxNaming::Dotted) => "train-labels.idx1-ubyte",
            (Self::TestImages, IdxNaming::Dotted) => "t10k-images.idx3-ubyte",
            (Self::TestLabels, IdxNaming::Dotted) => "t10k-labels.idx1-ubyte",
        }
    }
}

/// The content of an IDX images file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count × rows × cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// The bytes of one IDX file (raw or gzipped) and the path its errors name.
#[derive(Clone, Copy, Debug)]
pub struct IdxFile<'a> {
    /// Where the bytes came from; for embedded data a descriptive pseudo-path.
    pub path: &'a Path,
    /// The file's content.
    pub bytes: &'a [u8],
}

/// The four files of an IDX dataset, already in memory.
#[derive(Clone, Copy, Debug)]
pub struct IdxSplitFiles<'a> {
    /// Training images.
    pub train_images: IdxFile<'a>,
    /// Training labels.
    pub train_labels: IdxFile<'a>,
    /// Test images.
    pub test_images: IdxFile<'a>,
    /// Test labels.
    pub test_labels: IdxFile<'a>,
}

/// The bytes themselves, or their decompression when they start with the gzip magic.
pub fn decompress_if_gzip<'a>(path: &Path, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, DataError> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Cow::Owned(out))
}

/// Gzips `bytes` at the best compression, deterministically (no name, time 0 in the header).
pub fn gzip_bytes(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The `index`-th big-endian `u32` of `bytes`, if there.
fn be_u32(bytes: &[u8], index: usize) -> Option<u32> {
    let start = index.checked_mul(4)?;
    let word: [u8; 4] = bytes.get(start..start.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}

/// Checks the magic number and the header's length, and returns the `DIMS` dimension sizes.
fn read_header<const DIMS: usize>(path: &Path, bytes: &[u8], magic: u32) -> Result<[u32; DIMS], DataError> {
    let truncated_header = || DataError::Truncated {
        path: path.to_path_buf(),
        part: "IDX header",
        expected: 4 * (DIMS as u64 + 1),
        found: bytes.len() as u64,
    };
    let found = be_u32(bytes, 0).ok_or_else(truncated_header)?;
    if found != magic {
        return Err(DataError::WrongMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
        });
    }
    let mut dims = [0; DIMS];
    for (index, dim) in dims.iter_mut().enumerate() {
        *dim = be_u32(bytes, index + 1).ok_or_else(truncated_header)?;
    }
    Ok(dims)
}

/// The bytes of an IDX file, decompressed when they are gzip, read in two steps: the header,
/// then the records it announces. A gzip stream is decompressed only as far as the header says
/// the file goes (plus one byte, to tell a longer file), so a small file whose content expands
/// enormously never makes a large allocation; the rest is only counted, for the error.
struct IdxSource<'a> {
    path: &'a Path,
    raw: &'a [u8],
    gzip: Option<(MultiGzDecoder<&'a [u8]>, Vec<u8>)>,
}

impl<'a> IdxSource<'a> {
    fn new(path: &'a Path, raw: &'a [u8]) -> Self {
        let gzip = raw
            .starts_with(&GZIP_MAGIC)
            .then(|| (MultiGzDecoder::new(raw), Vec::new()));
        Self { path, raw, gzip }
    }

    /// The first `len` bytes of the content (fewer if it is shorter).
    fn header(&mut self, len: usize) -> Result<&[u8], DataError> {
        let path = self.path;
        match &mut self.gzip {
            None => Ok(&self.raw[..len.min(self.raw.len())]),
            Some((decoder, out)) => {
                decoder
                    .by_ref()
                    .take(len as u64)
                    .read_to_end(out)
                    .map_err(|source| DataError::Gzip {
                        path: path.to_path_buf(),
                        source,
                    })?;
                Ok(out)
            }
        }
    }

    /// The records after a header of `header_len` bytes, checked to be exactly `expected`
    /// bytes (which `part` of the file they are is for the error).
    fn records(self, header_len: usize, expected: u64, part: &'static str) -> Result<Cow<'a, [u8]>, DataError> {
        let path = self.path;
        let (content, total) = match self.gzip {
            None => (Cow::Borrowed(self.raw), self.raw.len() as u64),
            Some((mut decoder, mut out)) => {
                let gzip_error = |source| DataError::Gzip {
                    path: path.to_path_buf(),
                    source,
                };
                // Never more than the header announces, plus one byte to see a longer file.
                let limit = expected.saturating_add(1);
                decoder.by_ref().take(limit).read_to_end(&mut out).map_err(gzip_error)?;
                let mut total = out.len() as u64;
                if total > header_len as u64 + expected {
                    total += std::io::copy(&mut decoder, &mut std::io::sink()).map_err(gzip_error)?;
                }
                (Cow::Owned(out), total)
            }
        };
        let found = total.saturating_sub(header_len as u64);
        if found < expected {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                part,
                expected,
                found,
            });
        }
        if found > expected {
            return Err(DataError::TrailingBytes {
                path: path.to_path_buf(),
                expected: header_len as u64 + expected,
                found: total,
            });
        }
        Ok(match content {
            Cow::Borrowed(b) => Cow::Borrowed(&b[header_len..]),
            Cow::Owned(mut v) => {
                v.drain(..header_len);
                Cow::Owned(v)
            }
        })
    }
}

/// Reads an IDX images file (raw or gzipped) held in memory; `path` is only for errors.
pub fn decode_idx_images(path: &Path, bytes: &[u8]) -> Result<IdxImages, DataError> {
    let mut source = IdxSource::new(path, bytes);
    let header = source.header(IMAGES_HEADER_LEN)?;
    let [count, rows, cols] = read_header::<3>(path, header, IMAGES_MAGIC)?;
    let unsupported = |detail: String| DataError::UnsupportedShape {
        path: path.to_path_buf(),
        detail,
    };
    if rows == 0 || cols == 0 {
        return Err(unsupported(format!("images of {rows}×{cols} pixels")));
    }
    let expected = u64::from(count)
        .checked_mul(u64::from(rows))
        .and_then(|n| n.checked_mul(u64::from(cols)))
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(|| unsupported(format!("{count} images of {rows}×{cols} pixels do not fit in memory")))?;
    let pixels = source.records(IMAGES_HEADER_LEN, expected, "image records")?;
    if count == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(IdxImages {
        count: count as usize,
        rows: rows as usize,
        cols: cols as usize,
        pixels: pixels.into_owned(),
    })
}

/// Reads an IDX labels file (raw or gzipped) held in memory; `path` is only for errors.
pub fn decode_idx_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let mut source = IdxSource::new(path, bytes);
    let header = source.header(LABELS_HEADER_LEN)?;
    let [count] = read_header::<1>(path, header, LABELS_MAGIC)?;
    let labels = source.records(LABELS_HEADER_LEN, u64::from(count), "label records")?;
    if count == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(labels.into_owned())
}

/// One dataset from an images file and a labels file in memory, with one class per name.
pub fn dataset_from_idx_bytes(
    images: IdxFile<'_>,
    labels: IdxFile<'_>,
    class_names: &[&str],
) -> Result<Dataset, DataError> {
    let decoded = decode_idx_images(images.path, images.bytes)?;
    let label_values = decode_idx_labels(labels.path, labels.bytes)?;
    if decoded.count != label_values.len() {
        return Err(DataError::CountMismatch {
            images_path: images.path.to_path_buf(),
            images: decoded.count,
            labels_path: labels.path.to_path_buf(),
            labels: label_values.len(),
        });
    }
    check_labels(labels.path, &label_values, class_names.len())?;
    Ok(Dataset {
        images: decoded.pixels,
        labels: label_values,
        classes: class_names.len(),
        channels: 1,
        height: decoded.rows,
        width: decoded.cols,
        class_names: class_names.iter().map(|name| name.to_string()).collect(),
        features: None,
    })
}

/// The training and test sets from the four IDX files in memory (used for the embedded data).
pub fn split_from_idx_bytes(files: IdxSplitFiles<'_>, class_names: &[&str]) -> Result<Split, DataError> {
    let train = dataset_from_idx_bytes(files.train_images, files.train_labels, class_names)?;
    let test = dataset_from_idx_bytes(files.test_images, files.test_labels, class_names)?;
    make_split(train, files.train_images.path, test, files.test_images.path)
}

/// Where `part` is in `dir`, under either naming, raw or `.gz` (raw dashed first).
pub fn find_idx_file(dir: &Path, part: IdxPart) -> Result<PathBuf, DataError> {
    let candidates: Vec<PathBuf> = [IdxNaming::Dashed, IdxNaming::Dotted]
        .into_iter()
        .flat_map(|naming| {
            let name = part.file_name(naming);
            [dir.join(name), dir.join(format!("{name}.gz"))]
        })
        .collect();
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    let mut candidates = candidates.into_iter();
    Err(DataError::Missing {
        path: candidates.next().unwrap_or_else(|| dir.to_path_buf()),
        also_tried: candidates.collect(),
    })
}

/// Loads the training and test sets from a folder holding the four IDX files (MNIST layout),
/// with one class per name in `class_names`.
pub fn load_idx_dir(dir: &Path, class_names: &[&str]) -> Result<Split, DataError> {
    // All four must be there before any is read, so that a missing one is reported at once.
    let [a, b, c, d] = IdxPart::ALL.map(|part| find_idx_file(dir, part));
    let paths = [a?, b?, c?, d?];
    let [a, b, c, d] = paths.each_ref().map(|path| read_file(path));
    let contents = [a?, b?, c?, d?];
    let [train_images, train_labels, test_images, test_labels] = std::array::from_fn(|part| IdxFile {
        path: &paths[part],
        bytes: &contents[part],
    });
    let files = IdxSplitFiles {
        train_images,
        train_labels,
        test_images,
        test_labels,
    };
    split_from_idx_bytes(files, class_names)
}

/// Loads MNIST (digits 0–9) from a folder of IDX files.
pub fn load_mnist(dir: &Path) -> Result<Split, DataError> {
    load_idx_dir(dir, &MNIST_CLASS_NAMES)
}

/// Loads Fashion-MNIST (10 clothing classes) from a folder of IDX files.
pub fn load_fashion_mnist(dir: &Path) -> Result<Split, DataError> {
    load_idx_dir(dir, &FASHION_MNIST_CLASS_NAMES)
}

/// An IDX images file: the header exactly as given, then `pixels`. The count is the caller's so
/// that tests can write a header that disagrees with the data.
pub fn encode_idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(IMAGES_HEADER_LEN + pixels.len());
    for word in [IMAGES_MAGIC, count, rows, cols] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// An IDX labels file: the header with the given count, then `labels`.
pub fn encode_idx_labels(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LABELS_HEADER_LEN + labels.len());
    for word in [LABELS_MAGIC, count] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

/// Writes `split` into `dir` as the four IDX files under `naming`, gzipped (`.gz` appended)
/// when `gzip` is set; returns the paths written, in [`IdxPart::ALL`] order.
pub fn write_idx_dir(dir: &Path, split: &Split, naming: IdxNaming, gzip: bool) -> Result<Vec<PathBuf>, DataError> {
    create_dir(dir)?;
    let mut written = Vec::with_capacity(4);
    for (part, set) in IdxPart::ALL
        .into_iter()
        .zip([&split.train, &split.train, &split.test, &split.test])
    {
        let name = part.file_name(naming);
        let path = dir.join(if gzip { format!("{name}.gz") } else { name.to_string() });
        let unsupported = |detail: String| DataError::UnsupportedShape {
            path: path.clone(),
            detail,
        };
        if set.channels != 1 {
            return Err(unsupported(format!(
                "IDX holds one channel, these images have {}",
                set.channels
            )));
        }
        let too_large = |_| unsupported("a size does not fit IDX's 32-bit header".into());
        let count = u32::try_from(set.len()).map_err(too_large)?;
        let raw = match part {
            IdxPart::TrainImages | IdxPart::TestImages => encode_idx_images(
                count,
                u32::try_from(set.height).map_err(too_large)?,
                u32::try_from(set.width).map_err(too_large)?,
                &set.images,
            ),
            IdxPart::TrainLabels | IdxPart::TestLabels => encode_idx_labels(count, &set.labels),
        };
        let bytes = if gzip {
            gzip_bytes(&raw).map_err(|source| DataError::Io {
                path: path.clone(),
                source,
            })?
        } else {
            raw
        };
        write_file(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}
