//! `iamfs status [MOUNTPOINT]`.

use std::process::ExitCode;

use crate::cli::StatusArgs;

pub fn run(args: &StatusArgs) -> ExitCode {
    let _ = args;
    ExitCode::SUCCESS
}
