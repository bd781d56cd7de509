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

/// A setting that cannot mean anything (a grid, a range, a subset, a form's field): one line
/// naming it and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// The text of a panic payload, in one line.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        one_line_of_panic(s)
    } else if let Some(s) = panic.downcast_ref::<String>() {
        one_line_of_panic(s)
    } else {
        "unknown panic".into()
    }
}

/// What a panic's text says, without what follows the first line. tch's panics are
/// `Result::unwrap` of a `Torch("...")` error whose message, Debug-formatted with its newlines
/// escaped, goes on with libtorch's C++ backtrace for kilobytes: only the error's own first
/// line is kept.
pub fn one_line_of_panic(text: &str) -> String {
    let mut line = text.lines().next().unwrap_or_default();
    line = line
        .strip_prefix("called `Result::unwrap()` on an `Err` value: ")
        .unwrap_or(line);
    if let Some(debug) = line.strip_prefix("Torch(\"") {
        // An escaped newline ends the first line of the Debug-formatted message.
        line = match debug.find("\\n") {
            Some(end) => &debug[..end],
            None => debug.strip_suffix("\")").unwrap_or(debug),
        };
    }
    let line = line.trim().replace("\\\"", "\"");
    if line.is_empty() {
        "unknown panic".into()
    } else {
        line
    }
}

thread_local! {
    /// How many [`catch_panic`] calls this thread is inside: their panics are expected and
    /// reported by the caller, so the panic hook stays quiet for them.
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True while this thread's panics are caught by [`catch_panic`] (for the panic hook).
pub fn panic_is_caught() -> bool {
    CATCHING.with(|c| c.get() > 0)
}

/// A panic caught by [`catch_panic`]: its message in one line (for tch, libtorch's error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Panic(pub String);

/// Runs `f`, turning a panic into its one-line message. libtorch's errors surface as panics
/// in tch (every method without `f_`), so this is where a module or tensor operation that
/// fails becomes an error the caller can name and report.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get().saturating_sub(1)));
    result.map_err(|panic| Panic(panic_message(&panic)))
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

    #[test]
    fn a_torch_panic_is_cut_to_the_first_line_of_its_error() {
        // As tch panics: the error Debug-formatted, quotes and newlines escaped.
        let tch = r#"called `Result::unwrap()` on an `Err` value: Torch("\"log_softmax_lastdim_kernel_impl\" not implemented for 'Long'\nException raised from operator() at SoftMaxKernel.cpp:1303 (most recent call first):\nframe #0: c10::Error::Error")"#;
        assert_eq!(
            one_line_of_panic(tch),
            "\"log_softmax_lastdim_kernel_impl\" not implemented for 'Long'"
        );
        assert_eq!(one_line_of_panic("plain words\nsecond"), "plain words");
        assert_eq!(one_line_of_panic(""), "unknown panic");
    }

    #[test]
    fn a_caught_panic_becomes_its_message_and_the_thread_is_quiet_only_inside() {
        assert!(!panic_is_caught());
        let inside = catch_panic(panic_is_caught).unwrap();
        assert!(inside);
        let caught = catch_panic(|| -> u32 { panic!("the module failed: shapes") });
        assert_eq!(caught, Err(Panic("the module failed: shapes".to_owned())));
        assert!(!panic_is_caught(), "the count is restored after a panic");
    }
}
