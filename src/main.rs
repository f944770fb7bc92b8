//! The `layerscope` binary: parse arguments, run the terminal app or a headless subcommand, and
//! map errors to exit codes: 2 for any error (a message on stderr), 0 when stdout was closed by
//! its reader (`| head`), 128 + n on signal n (headless temporary files removed first).

use std::process::ExitCode;

use clap::Parser;
use layerscope::cli::{Cli, Command};
use layerscope::headless::{self, output};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout, usage errors to stderr; either may be closed.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if cli.command.is_some()
        && let Err(e) = output::remove_temporary_files_on_signals()
    {
        headless::report_error(&anyhow::anyhow!("cannot watch for signals: {e}"));
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        Some(Command::Info(args)) => headless::info(args),
        Some(Command::Train(args)) => headless::train(args),
        Some(Command::Embed(args)) => headless::embed(args),
        Some(Command::Explain(args)) => headless::explain(args),
        Some(Command::Snapshot(args)) => headless::snapshot(args),
        Some(Command::Neighbours(args)) => headless::neighbours(args),
        // Data and model are loaded and checked before the alternate screen: an error is a
        // message and exit 2, never a stuck panel.
        None => layerscope::tui::config(&cli.data, &cli.model, &cli.view)
            .and_then(|config| layerscope::tui::run(&cli, config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<output::BrokenPipe>() => ExitCode::SUCCESS,
        Err(e) => {
            headless::report_error(&e);
            ExitCode::from(2)
        }
    }
}
