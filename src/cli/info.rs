//! `valleys info`: the libtorch in use and the devices it can see.

use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    println!("{}", valleys::runtime::report());
    Ok(ExitCode::SUCCESS)
}
