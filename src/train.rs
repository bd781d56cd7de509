//! Training: schedules, the optimiser, the SWA average, checkpoints and the loop
//! that ties them together.

pub mod checkpoint;
pub mod engine;
pub mod probing;
pub mod resume;
pub mod schedule;
pub mod sgd;
pub mod swa;
