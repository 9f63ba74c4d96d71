//! Why a run could not start or go on.

/// Why a run could not start or go on: a message that names the flag, file or value at fault
/// and what was expected (the commands print it after their name).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrainError(pub String);

impl From<crate::data::input::InputError> for TrainError {
    fn from(e: crate::data::input::InputError) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::data::DataError> for TrainError {
    fn from(e: crate::data::DataError) -> Self {
        Self(e.to_string())
    }
}

/// `Err(TrainError(msg))`.
pub(crate) fn fail<T>(msg: impl Into<String>) -> Result<T, TrainError> {
    Err(TrainError(msg.into()))
}
