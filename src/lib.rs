//! valleys: watch where training ends up in its loss landscape.
//!
//! The data path is visible in the modules: `config` → `data` → `model` → `train` (on the
//! `worker` thread) → `protocol` events → the headless printer or the dashboard, with `rundir`
//! keeping everything on disk; `probe` and `ablation` measure the weights along lines.
//!
//! Tensors are touched by `data::dataset`, `model`, `train`, `probe` (directions, Hessian,
//! scans, runner, saved runs), `ablation` (which runs probes) and `worker`. While a run trains
//! or the dashboard is open, all of that happens on the worker thread; the one-shot commands
//! without a UI (`valleys probe`, `ablate`, `bench`) run it on the main thread. `footprint`
//! sizes a model through `model::Model::layout`, which allocates no parameters. Plain results
//! (`probe::{score, shift, summary}`, `ablation::result`, `protocol`) hold no tensors, so the
//! UI and the reports read them without libtorch.

#![warn(clippy::unwrap_used)]

pub mod ablation;
pub mod config;
pub mod data;
pub mod error;
pub mod export;
pub mod follow;
pub mod footprint;
pub mod format;
pub mod headless;
pub mod model;
mod names;
pub mod nonfinite;
pub mod platform;
pub mod plot;
pub mod probe;
pub mod protocol;
pub mod rundir;
pub mod runtime;
pub mod stats;
pub mod stored;
pub mod sweep;
pub mod train;
pub mod ui;
pub mod worker;
