//! The `layerscope` binary: parse arguments, run the terminal app or a headless subcommand, and
//! map errors to exit code 2.

use std::process::ExitCode;

use clap::Parser;
use layerscope::cli::{Cli, Command};
use layerscope::headless;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Info) => headless::info(&cli),
        Some(Command::Train(args)) => headless::train(&cli, args),
        Some(Command::Embed(args)) => headless::embed(&cli, args),
        Some(Command::Explain(args)) => headless::explain(&cli, args),
        Some(Command::Snapshot(args)) => headless::snapshot(&cli, args),
        // Data and model are loaded and checked before the terminal is taken over.
        None => layerscope::tui::config(&cli).and_then(|config| layerscope::tui::run(&cli, config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layerscope: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
