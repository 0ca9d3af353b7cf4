//! Entry point: read `.env` (development), parse the command line and settings, run.

use clap::Parser;

use chipflap::cli::Cli;
use chipflap::config::Settings;

fn main() -> std::process::ExitCode {
    // The runtime the store work runs on (`AppState::store_work`): its threads ask for short
    // scheduling slices, so they run soon after each statement answers (`scheduling`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(chipflap::scheduling::prefer_short_slices)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chipflap: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

async fn run() -> std::process::ExitCode {
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
