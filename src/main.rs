//! The `valleys` binary; the command line lives in `cli`.

#![warn(clippy::unwrap_used)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
