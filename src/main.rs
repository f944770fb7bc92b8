//! The `layerscope` binary: parse arguments, run the terminal app or a headless subcommand, and
//! map errors to exit code 2.

use std::process::ExitCode;

use clap::Parser;
use layerscope::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Info) => layerscope::headless::info(&cli.data),
        Some(_) => {
            eprintln!("layerscope: this subcommand is not built yet");
            Ok(())
        }
        None => layerscope::tui::run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layerscope: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
