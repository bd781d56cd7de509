//! valleys: watch where training ends up in its loss landscape.
//!
//! The data path is visible in the modules: `config` → `data` → `model` → `train` (on the
//! `worker` thread) → `protocol` events → the `headless` printer or the dashboard (`ui`), with
//! `rundir` keeping everything on disk; `probe` measures the weights along lines and planes,
//! `ablation` compares runs with and without batch norm, `sweep` runs many, `export` draws
//! figures and reports.
//!
//! **The tensor boundary.** Tensors are touched by `data::dataset`, `model`, `train`, the
//! measuring parts of `probe` (`direction`, `scan`, `runner` with `runner::plane` and
//! `runner::eigen`, `offline`) and of `curvature` (`operator`, `lanczos`, `measure`),
//! `ablation`'s runner and `worker`. While a run trains or the
//! dashboard is open, all of that happens on the worker thread; the one-shot commands
//! without a UI (`valleys probe`, `plane`, `ablate`, `bench`) run it on the main thread.
//! Everything the UI and the reports read is plain data that holds no tensor: `protocol`,
//! the results in `probe` itself and in `probe::{plane, score, shift, summary}`, in
//! `curvature` itself and `curvature::{compare, density, store}`, `trajectory` (the run's
//! stored path and projections onto planes),
//! `ablation::result`, and the leaves `format` (times and counts as text), `plot` (colour maps
//! and contours), `stats` and `stored` (the checks of results read back). `ui` and `export`
//! reach tensors only through those: `tests/architecture.rs` keeps it so.
//!
//! **No import circles** beyond a module and its own children. `platform` and the C++
//! shims' doors (`model::torchscript::module`, `model::onednn`, `model::second_order`) are
//! the only modules allowed `unsafe` (`[lints]` in Cargo.toml).

#![warn(clippy::unwrap_used)]

pub mod ablation;
pub mod config;
pub mod curvature;
pub mod data;
pub mod error;
pub mod export;
pub mod follow;
pub mod footprint;
pub mod format;
pub mod headless;
pub mod machine;
pub mod model;
mod names;
pub mod nonfinite;
pub mod platform;
pub mod plot;
pub mod probe;
pub mod process;
pub mod protocol;
pub mod rundir;
pub mod runtime;
pub mod stats;
pub mod stored;
pub mod sweep;
pub mod train;
pub mod trajectory;
pub mod ui;
pub mod worker;
