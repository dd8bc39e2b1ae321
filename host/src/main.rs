//! The `foresight` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = foresight::cli::Cli::parse();
    // The log format is configuration too; a configuration that does not load is reported by
    // the command itself, so fall back to the default format here.
    let json = foresight::config::Config::load(&cli.config, false)
        .is_ok_and(|c| c.log.format == foresight::config::LogFormat::Json);
    foresight::cli::init_tracing(cli.verbose, json);
    match foresight::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
