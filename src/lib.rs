//! valleys: watch where training ends up in its loss landscape.
//!
//! The data path is visible in the modules: `config` → `data` → `model` → `train` (on the
//! `worker` thread) → `protocol` events → the headless printer or the dashboard, with `rundir`
//! keeping everything on disk. Only `data::dataset`, `model`, `train` and `worker` touch
//! tensors.

pub mod ablation;
pub mod config;
pub mod data;
pub mod error;
pub mod export;
pub mod footprint;
pub mod headless;
pub mod model;
mod names;
pub mod nonfinite;
pub mod probe;
pub mod protocol;
pub mod rundir;
pub mod runtime;
pub mod train;
pub mod ui;
pub mod worker;
