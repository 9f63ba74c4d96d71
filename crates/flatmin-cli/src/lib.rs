//! The flatmin laboratory: what the `flatmin` command runs.

pub mod data;
pub mod fault;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod models;
pub mod plot;
pub mod replay;
pub mod toy;
pub mod train;
