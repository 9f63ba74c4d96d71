//! The flatmin laboratory: what the `flatmin` command runs.

pub mod args;
pub mod bench;
pub mod compare;
pub mod data;
pub mod fault;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod malloc;
pub mod models;
pub mod outdir;
pub mod plot;
pub mod presets;
pub mod replay;
pub mod sharpness;
pub mod sweep;
pub mod toy;
pub mod train;
