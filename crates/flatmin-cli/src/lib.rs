//! The flatmin laboratory: what the `flatmin` command runs.
//!
//! Test machinery is not part of it: fault injection (`src/fault.rs`, private) is compiled in
//! only with the feature `fault-injection`, and the fuzz targets' entry points (`fuzzing`) only
//! with the feature `fuzzing`. The crate's tests turn both on through its dev-dependency on
//! itself; `fuzz/` asks for `fuzzing`.

pub mod args;
pub mod bench;
pub mod compare;
pub mod config_record;
pub mod cputime;
pub mod data;
pub mod device;
mod fault;
pub mod frontier;
pub mod fsutil;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hyperparams;
pub mod malloc;
pub mod models;
pub mod outdir;
pub mod plot;
pub mod presets;
pub mod replay;
pub mod reproduction;
pub mod sharpness;
pub mod stats;
pub mod sweep;
pub mod toy;
pub mod train;
