//! Why a run could not start or go on.

use crate::data::DataError;
use crate::data::input::InputError;
use crate::device::DeviceError;
use crate::outdir::OutDirError;

/// Why a run could not start or go on. Every variant's message names the flag, file or value at
/// fault and what was expected (the commands print it after their name); the variants keep the
/// typed errors of the readers, the device and the output folder as their source.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting, flag, checkpoint or file of the run that is not what it expects.
    #[error("{0}")]
    Invalid(String),
    /// The user's data could not be read (`--data PATH`). Boxed, as the readers' errors are
    /// large and every command's result carries this type.
    #[error(transparent)]
    Input(Box<InputError>),
    /// A named dataset could not be read or prepared (boxed likewise).
    #[error(transparent)]
    Data(Box<DataError>),
    /// The device asked for cannot be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The output folder or file was refused or could not be made.
    #[error(transparent)]
    OutDir(#[from] OutDirError),
}

impl From<InputError> for TrainError {
    fn from(e: InputError) -> Self {
        Self::Input(Box::new(e))
    }
}

impl From<DataError> for TrainError {
    fn from(e: DataError) -> Self {
        Self::Data(Box::new(e))
    }
}

/// `Err(TrainError::Invalid(msg))`.
pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, TrainError> {
    Err(TrainError::Invalid(msg.into()))
}
