//! The user's own data for `flatmin compare`: an image folder ([`super::folder`]) or a CSV of
//! numeric features ([`super::csv`]), read into the laboratory's [`Split`], and the errors that
//! name what is wrong and where.

use std::io;
use std::path::{Path, PathBuf};

use super::Split;

/// How to read the user's data; every field has a flag of `flatmin compare`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputOptions {
    /// Resize every image to height × width (`--image-size`); `None`: keep the images' size if
    /// they all have the same, otherwise 28×28 (grey) or 32×32 (colour).
    pub image_size: Option<(usize, usize)>,
    /// 1 (grey) or 3 (RGB) (`--channels`); `None`: 3 if any image has colour, else 1.
    pub channels: Option<usize>,
    /// The CSV's label column, by header name or 0-based index (`--label-column`); `None`: the last.
    pub label_column: Option<String>,
    /// The fraction of each class held out as the test set when the data has no test part.
    pub test_fraction: f64,
    /// Seed of that split.
    pub seed: u64,
}

impl Default for InputOptions {
    fn default() -> Self {
        Self {
            image_size: None,
            channels: None,
            label_column: None,
            test_fraction: 0.2,
            seed: 0,
        }
    }
}

/// What was read, with a one-line account of how.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Training and test sets.
    pub split: Split,
    /// E.g. "image folder shapes/: 3 classes, 48 training and 12 test images (a seeded
    /// stratified split, 20 % test), 32×32 RGB (resized)".
    pub description: String,
    /// True when the data came in `train/` and `test/` parts: the test set is the user's, and
    /// `flatmin compare` keeps it instead of drawing a split per seed.
    pub came_split: bool,
}

/// Reads `path`: a folder is an image folder, a file a CSV.
pub fn load(path: &Path, options: &InputOptions) -> Result<Loaded, InputError> {
    check_options(options)?;
    let meta = std::fs::metadata(path).map_err(|source| InputError::io(path, source))?;
    if meta.is_dir() {
        super::folder::load(path, options)
    } else {
        super::csv::load(path, options)
    }
}

fn check_options(o: &InputOptions) -> Result<(), InputError> {
    if !(o.test_fraction > 0.0 && o.test_fraction < 1.0) {
        return Err(InputError::Option {
            flag: "--test-fraction",
            detail: format!("{}: expected a fraction strictly between 0 and 1", o.test_fraction),
        });
    }
    if let Some(c) = o.channels.filter(|c| *c != 1 && *c != 3) {
        return Err(InputError::Option {
            flag: "--channels",
            detail: format!("{c}: expected 1 (grey) or 3 (RGB)"),
        });
    }
    if let Some((h, w)) = o.image_size
        && (h == 0 || w == 0 || h > 1024 || w > 1024)
    {
        return Err(InputError::Option {
            flag: "--image-size",
            detail: format!("{w}x{h}: expected sides from 1 to 1024 pixels"),
        });
    }
    Ok(())
}

/// Parses `--image-size`: `N` (N×N) or `WxH`.
pub fn parse_image_size(text: &str) -> Result<(usize, usize), InputError> {
    let bad = || InputError::Option {
        flag: "--image-size",
        detail: format!("`{text}`: expected N (a square N×N) or WIDTHxHEIGHT, e.g. 32 or 48x32"),
    };
    let number = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    match text.split_once(['x', 'X', '×']) {
        Some((w, h)) => Ok((number(h)?, number(w)?)),
        None => {
            let n = number(text)?;
            Ok((n, n))
        }
    }
}

/// Why the user's data could not be read. Every variant names the file or folder at fault, and
/// the line for a CSV.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// An image file that does not decode (unreadable, corrupt, truncated, not an image).
    #[error("{path}: unreadable image: {detail}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },
    /// An image folder with no class subfolder.
    #[error(
        "{path}: no class folders: an image folder needs one subfolder per class (or train/ and test/ folders that \
         each have them)"
    )]
    NoClasses {
        /// The folder.
        path: PathBuf,
    },
    /// A class subfolder with no image in it.
    #[error("{path}: empty class: the folder holds no .png, .jpg or .jpeg image")]
    EmptyClass {
        /// The class folder.
        path: PathBuf,
    },
    /// Only one class: there is nothing to classify.
    #[error("{path}: only one class (`{class}`): a classifier needs at least two")]
    OneClass {
        /// The folder or file.
        path: PathBuf,
        /// The class.
        class: String,
    },
    /// More classes than the laboratory's byte labels hold.
    #[error("{path}: {found} classes, at most 256 are supported (is the label column the right one?)")]
    TooManyClasses {
        /// The folder or file.
        path: PathBuf,
        /// Classes found.
        found: usize,
    },
    /// The `train/` and `test/` folders do not go together.
    #[error("{path}: {detail}")]
    SplitFolders {
        /// The folder at fault.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A CSV row with another number of cells than the first row.
    #[error("{path}:{line}: ragged row: {found} cells, but the first row has {expected}")]
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Cells of the first row.
        expected: usize,
        /// Cells of this row.
        found: usize,
    },
    /// A CSV cell that is not what its column needs (a finite number, or a non-empty label).
    #[error("{path}:{line}: column {column}: `{value}` is not {expected}")]
    BadCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The column: its header name, or its 1-based number.
        column: String,
        /// The cell as written.
        value: String,
        /// What the column needs.
        expected: &'static str,
    },
    /// A CSV line whose double quotes do not close.
    #[error("{path}:{line}: a double quote is not closed")]
    Quote {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// `--label-column` names no column of the CSV.
    #[error("{path}: no label column `{requested}`: the columns are {available}")]
    MissingLabelColumn {
        /// The file.
        path: PathBuf,
        /// What was asked for.
        requested: String,
        /// The columns there are (header names, or how many).
        available: String,
    },
    /// A CSV with a label column and nothing else.
    #[error("{path}: no feature column: the file has only the label column")]
    NoFeatures {
        /// The file.
        path: PathBuf,
    },
    /// No image or data row at all, or too few to split.
    #[error("{path}: {detail}")]
    Empty {
        /// The folder or file.
        path: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// A reading option out of range.
    #[error("{flag} {detail}")]
    Option {
        /// The flag.
        flag: &'static str,
        /// The value and what was expected.
        detail: String,
    },
}

impl InputError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// "3 classes, 48 training and 12 test images (…)": `test_fraction` is that of the seeded split
/// that made the test set, `None` when the data came split.
pub(crate) fn split_account(split: &Split, noun: &str, test_fraction: Option<f64>) -> String {
    let how = match test_fraction {
        None => "from the train/ and test/ folders".to_string(),
        Some(f) => format!("a seeded stratified split, {:.0} % test", 100.0 * f),
    };
    format!(
        "{} classes, {} training and {} test {noun} ({how})",
        split.train.classes,
        split.train.len(),
        split.test.len()
    )
}
