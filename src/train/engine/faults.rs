//! Fault injection for tests, set by `VALLEYS_FAULT`: `panic-at-step:N` panics before step
//! N, `stop-at-step:N` raises the stop flag before step N (as a signal would). Probes read
//! `panic-in-probe` themselves.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub(super) struct Faults {
    panic_at: Option<u64>,
    stop_at: Option<u64>,
}

impl Faults {
    pub fn from_env() -> Self {
        Self {
            panic_at: fault("panic-at-step:"),
            stop_at: fault("stop-at-step:"),
        }
    }

    /// Acts out the faults due before optimiser step `step`.
    pub fn before_step(&mut self, step: u64, stop: &AtomicBool) {
        if self.stop_at == Some(step) {
            self.stop_at = None;
            stop.store(true, Ordering::Relaxed);
        }
        if self.panic_at == Some(step) {
            panic!("injected fault: panic at step {step} (VALLEYS_FAULT)");
        }
    }
}

/// The step of a `VALLEYS_FAULT=<kind>N` fault injection, if one of that kind is set.
fn fault(kind: &str) -> Option<u64> {
    std::env::var("VALLEYS_FAULT")
        .ok()
        .and_then(|f| f.strip_prefix(kind)?.parse().ok())
}
