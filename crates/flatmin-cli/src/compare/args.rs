//! The flags of `flatmin compare` and the limits that need no data.

use std::path::PathBuf;

use super::CompareError;
use crate::args::TrainArgs;

/// Flags of `flatmin compare` (plus every training flag of `flatmin train`).
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// An image folder (one subfolder per class, PNG/JPEG; optionally inside train/ and test/
    /// folders) or a CSV file of numeric features with a label column.
    #[arg(long)]
    pub data: PathBuf,
    /// Optimizer presets, comma-separated; the first is the base the others are compared with.
    #[arg(long, value_delimiter = ',', default_value = "sgd,sam")]
    pub optimizers: Vec<String>,
    /// Seeds per optimizer (--seed, --seed + 1, …); every optimizer runs with the same seeds and
    /// the differences are paired by seed. With the default design (cv2) each seed is one
    /// repetition of 2-fold cross-validation: two trainings per optimizer, each on half the data.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Choose ρ per optimizer among these values (e.g. 0.02,0.05,0.1,0.2) by mean accuracy on a
    /// validation split of the training data.
    #[arg(long, value_delimiter = ',')]
    pub rho_search: Vec<f64>,
    /// The fraction of each class of the training data that the ρ search validates on.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    /// Seeds per ρ in the search (default: --seeds).
    #[arg(long)]
    pub search_seeds: Option<u64>,
    /// The fraction of each class held out for testing when the data has no test part, with a
    /// split per seed or a fixed split (default 0.2). Giving it without --design or --split-seed
    /// selects a split per seed (--design splits).
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Fix one test split with this seed for every seed and optimizer (the interval then counts
    /// the test set's sampling error; --design fixed).
    #[arg(long)]
    pub split_seed: Option<u64>,
    /// How the data is used when it has no train/ and test/ folders: `cv2` (the default unless
    /// --test-fraction or --split-seed is given), each seed a repetition of stratified 2-fold
    /// cross-validation, every optimizer trained on each half and tested on the other; `splits`,
    /// each seed its own stratified split (--test-fraction held out), shared by every optimizer
    /// at that seed; `fixed`, one split for every seed (--split-seed, default 0). Data with its
    /// own train/ and test/ folders is always `fixed`.
    #[arg(long, value_enum)]
    pub design: Option<DesignChoice>,
    /// Resize images to N×N or WIDTHxHEIGHT (default: their own size when all agree, else 28×28
    /// grey or 32×32 colour).
    #[arg(long)]
    pub image_size: Option<String>,
    /// Image channels: 1 (grey) or 3 (RGB); default 3 when any image has colour.
    #[arg(long)]
    pub channels: Option<usize>,
    /// The CSV's label column: a header name or an index from 0 (default: the last column).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Training settings shared by every run; `--out DIR` receives compare.md, compare.json and
    /// the plots.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The values of `--design`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesignChoice {
    /// Repeated stratified 2-fold cross-validation (the default).
    Cv2,
    /// A random stratified split per seed.
    Splits,
    /// One split for every seed.
    Fixed,
}

/// The fraction of each class held out for testing when `--test-fraction` is not given.
pub const DEFAULT_TEST_FRACTION: f64 = 0.2;

/// Most seeds `--seeds` (and `--search-seeds`) accept: far beyond any useful comparison, and small
/// enough that every list the run keeps stays small.
pub const MAX_SEEDS: u64 = 1000;

/// Most values `--rho-search` accepts.
pub const MAX_RHO_VALUES: usize = 64;

impl CompareArgs {
    /// Checks the counts and ranges that need no data, before anything is read or allocated.
    pub(super) fn check_limits(&self) -> Result<(), CompareError> {
        if self.optimizers.is_empty() || self.seeds == 0 {
            return Err(CompareError::Flag(
                "compare needs at least one optimizer and one seed".into(),
            ));
        }
        if self.seeds > MAX_SEEDS {
            return Err(CompareError::Flag(format!(
                "--seeds {}: at most {MAX_SEEDS} (each seed is one training per optimizer)",
                self.seeds
            )));
        }
        if let Some(s) = self.search_seeds
            && !(1..=self.seeds).contains(&s)
        {
            return Err(CompareError::Flag(format!(
                "--search-seeds {s}: expected 1 to --seeds ({})",
                self.seeds
            )));
        }
        if self.rho_search.len() > MAX_RHO_VALUES {
            return Err(CompareError::Flag(format!(
                "--rho-search: {} values, at most {MAX_RHO_VALUES}",
                self.rho_search.len()
            )));
        }
        if self.train.test_limit == Some(0) {
            return Err(CompareError::Flag(
                "--test-limit 0 leaves no test example: there would be nothing to score".into(),
            ));
        }
        if self.train.train_limit == Some(0) {
            return Err(CompareError::Flag("--train-limit 0 leaves nothing to train on".into()));
        }
        Ok(())
    }
}
