//! The `foresight` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = foresight::cli::Cli::parse();
    foresight::cli::init_tracing(cli.verbose);
    match foresight::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
