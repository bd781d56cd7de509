//! The one error kind that decides exit code 2: input the user can fix (a file, a field, a
//! flag, a run directory that does not fit the request). Everything else that fails is a
//! failure of the run (exit 1).
//!
//! Input is checked in one phase before anything is written; that phase's errors are wrapped
//! in [`BadInput`] where they are checked, so the exit code follows from the error's type
//! and not from a list kept in `main`.

use std::fmt;

/// Input the user can fix. Displays as the error it wraps, so the one-line message is
/// unchanged; its sources are the wrapped error's.
pub struct BadInput(anyhow::Error);

impl BadInput {
    /// Marks `error` as bad input.
    pub fn new(error: impl Into<anyhow::Error>) -> Self {
        Self(error.into())
    }

    /// A bad-input error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(anyhow::anyhow!("{message}"))
    }
}

impl fmt::Debug for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BadInput {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// `.bad_input()` on any result: its error becomes [`BadInput`].
pub trait BadInputExt<T> {
    fn bad_input(self) -> Result<T, BadInput>;
}

impl<T, E: Into<anyhow::Error>> BadInputExt<T> for Result<T, E> {
    fn bad_input(self) -> Result<T, BadInput> {
        self.map_err(BadInput::new)
    }
}

/// True when `error`, or anything it wraps, is [`BadInput`].
pub fn is_bad_input(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<BadInput>())
}

/// Returns early with a [`BadInput`] built from a format string.
#[macro_export]
macro_rules! bad_input {
    ($($arg:tt)*) => {
        return Err($crate::error::BadInput::msg(format!($($arg)*)).into())
    };
}

/// The text of a panic payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        // tch's errors carry a C++ backtrace after the first line; the first line says it.
        s.lines().next().unwrap_or_default().to_owned()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_found_under_context_and_keeps_its_message() {
        let inner: Result<(), std::io::Error> = Err(std::io::Error::other("disk says no"));
        let e = anyhow::Error::from(inner.bad_input().unwrap_err()).context("reading x");
        assert!(is_bad_input(&e));
        assert_eq!(format!("{e:#}"), "reading x: disk says no");
        let plain = anyhow::anyhow!("a crash").context("training");
        assert!(!is_bad_input(&plain));
    }
}
