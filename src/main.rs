//! Entry point: read `.env` (development), parse the command line and settings, run.

use clap::Parser;

use chipflap::cli::Cli;
use chipflap::config::Settings;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A .env file is a development convenience; the real environment wins over it.
    let _ = dotenvy::dotenv();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chipflap: configuration error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    chipflap::telemetry::init(settings.environment);
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    match cli.run(settings).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chipflap: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
