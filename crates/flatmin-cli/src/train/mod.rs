//! `flatmin train`: a training run on real data with any optimizer of the library, with
//! per-epoch evaluation, metrics, atomic checkpoints and exact resumption.
//!
//! One room per concern: [`config`] (the settings and their layers), [`data`] (named datasets or
//! the user's own, and the tensors batches are cut from), [`run`](mod@run) (the training loop),
//! [`progress`] (what a run shows while it trains), [`checkpoint`] (the output folder, checkpoints
//! and resumption), [`report`] (metrics, summary, table) and [`error`].

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod progress;
pub mod report;
pub mod run;

pub use checkpoint::{
    SettingChange, checkpoint_config, checkpoint_files_from_text, checkpoint_weights, load_model_bytes,
};
pub(crate) use checkpoint::{checkpoint_model_path, load_model_file};
pub(crate) use config::setting_entries;
pub use config::{Difference, RESUMABLE, TrainConfig};
pub use data::{DATASETS, DataSource, limit_and_noise, load_data, resolve_data};
pub(crate) use data::{Tensors, channel_stats};
pub use error::TrainError;
pub use report::{DataRecord, EpochMetrics, Summary, table};
pub use run::{Progress, RunOptions, check_data, cosine_lr, per_sample_loss, run, run_on, run_prepared};
