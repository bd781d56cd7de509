//! What a result read back from disk must satisfy before anything draws or compares it. A
//! leaf of plain checks: the result types (probes, batches, planes, ablations) implement
//! [`Stored`], and `rundir::read_json_files` leaves out, with its reason, any file that fails.

/// Why a result read back cannot be what valleys wrote: one line naming the field and what
/// was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoredError(pub String);

/// A result as read back from its file: it parsed, but a file can be truncated by hand,
/// edited, or written by another version. Whatever reads results (reports, the dashboard,
/// sweeps) indexes them by their counts, so a result whose counts or numbers disagree is left
/// out with its reason instead of reaching them.
pub trait Stored {
    /// Why the value cannot be what valleys wrote, if it cannot.
    fn check(&self) -> Result<(), StoredError>;
}

/// `name` is a finite number.
pub fn finite(name: &str, value: f64) -> Result<(), StoredError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(StoredError(format!(
            "{name} is {value}; expected a finite number"
        )))
    }
}

/// `name` is a fraction in [0, 1].
pub fn fraction(name: &str, value: f64) -> Result<(), StoredError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(StoredError(format!(
            "{name} is {value}; expected a fraction in [0, 1]"
        )))
    }
}

/// `values` (named `name`) are finite and strictly increasing.
pub fn increasing(name: &str, values: &[f64]) -> Result<(), StoredError> {
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(StoredError(format!(
            "{name} holds {v}; expected finite numbers"
        )));
    }
    if values.windows(2).any(|w| w[0] >= w[1]) {
        return Err(StoredError(format!("{name} is not strictly increasing")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_checks_name_what_is_wrong() {
        assert!(finite("x", 1.0).is_ok());
        assert_eq!(
            finite("x", f64::NAN).unwrap_err().to_string(),
            "x is NaN; expected a finite number"
        );
        assert!(fraction("f", 1.5).is_err() && fraction("f", 0.5).is_ok());
        assert!(increasing("xs", &[0.0, 1.0]).is_ok());
        assert!(increasing("xs", &[0.0, 0.0]).is_err());
        assert!(increasing("xs", &[0.0, f64::INFINITY]).is_err());
    }
}
