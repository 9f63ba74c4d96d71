//! The integration tests of `flatmin-learner`, one module per subject, built as one
//! binary so that a test build links Burn once for them all.

mod common;
mod learner;
mod parallel;
