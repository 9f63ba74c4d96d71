//! Why `flatmin compare` stops: one typed error, each message naming the flag, file or value at
//! fault (the messages are those the command has always printed).

use std::io;
use std::path::PathBuf;

use crate::data::input::InputError;
use crate::outdir::OutDirError;
use crate::train::TrainError;

/// Why a comparison could not be planned, run or written.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A flag's value, or flags that contradict each other, the design or the data; the message
    /// names the flag and the value.
    #[error("{0}")]
    Flag(String),
    /// The data of `--data` could not be read (the message names the file or folder).
    #[error(transparent)]
    Data(#[from] InputError),
    /// The training part is too small to hold out a validation set for `--rho-search`.
    #[error("the training data is too small to hold out a validation set for --rho-search")]
    NoValidationSet,
    /// A training run of the ρ search failed.
    #[error("ρ search ({optimizer}, ρ = {rho}, on the training part): {source}")]
    Search {
        /// The optimizer whose ρ was searched.
        optimizer: String,
        /// The ρ of the failed run.
        rho: f64,
        /// Why the run failed.
        source: TrainError,
    },
    /// A training setting or a final training run failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The output folder (`--out`) was refused or could not be claimed.
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    /// The output folder (`--out`) could not be made.
    #[error("--out {}: {source}", path.display())]
    OutFolder {
        /// The folder.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A report file could not be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// compare.json could not be made.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}
