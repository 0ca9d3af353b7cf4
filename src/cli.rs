//! The command line (DESIGN §8): `serve` (the default), `migrate`, `users …`, `sessions end`,
//! `token system`.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::duration::parse_duration;
use crate::services::Actor;
use crate::services::admin_users::{self, NewUser};
use crate::startup::{Application, build_state, drain_background, mailer_from_settings};
use crate::state::AppState;

#[derive(Debug, Parser)]
#[command(
    name = "chipflap",
    version,
    about = "A self-hosted, GoTrue-compatible identity server with an Ably token endpoint.\n\nConfiguration comes from environment variables (and a .env file); see .env.example."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create the database if missing and apply pending migrations, then exit.
    Migrate,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// End login sessions (after a breach: `sessions end --all`).
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Mint tokens for server code.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user.
    Add {
        #[arg(long)]
        email: String,
        /// Read the password from standard input, up to the first newline (like `docker login
        /// --password-stdin`). Without a password the user cannot log in until they set one
        /// through a recovery link.
        #[arg(long, conflicts_with = "password_prompt")]
        password_stdin: bool,
        /// Ask for the password on the terminal, twice, without echo.
        #[arg(long)]
        password_prompt: bool,
        /// Refused: a password in the arguments shows in the process list.
        #[arg(long, hide = true)]
        password: Option<String>,
        /// Make the user an admin of the API and the console (role = GOTRUE_JWT_ADMIN_GROUP_NAME).
        #[arg(long)]
        admin: bool,
        /// Mark the email as confirmed.
        #[arg(long)]
        confirmed: bool,
    },
    /// Ban a user: until unbanned, or for --duration (e.g. 24h). Ends their sessions.
    Ban {
        email: String,
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift every ban of a user.
    Unban { email: String },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// End sessions now: their refresh tokens and access tokens stop working everywhere.
    #[command(group(clap::ArgGroup::new("whose").required(true).args(["all", "email"])))]
    End {
        /// Every session of every user, console sessions included.
        #[arg(long)]
        all: bool,
        /// Every session of one user.
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a system token (sub "0"): an admin bearer for the admin API, like the
    /// `context.clientContext.identity.token` Netlify hands to functions.
    System {
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

impl Cli {
    pub async fn run(self, settings: Settings) -> anyhow::Result<()> {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate => {
                crate::store::Store::open(
                    &settings.database,
                    std::sync::Arc::new(crate::store::WriteEpoch::new()),
                )
                .await?;
                let what = settings.database.describe();
                write_line(&format!("database {what} is up to date"))
            }
            Command::Users { command } => users(settings, command).await,
            Command::Sessions {
                command: SessionsCommand::End { all, email },
            } => end_sessions(settings, all, email).await,
            Command::Token {
                command: TokenCommand::System { ttl },
            } => {
                let keys = crate::startup::jwt_keys(&settings.jwt);
                let exp = Clock::System.now().plus(Duration::from_secs(ttl.max(1)));
                let token = keys.issue_system(exp).context("signing the token")?;
                write_line(&token)
            }
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mailer = mailer_from_settings(&settings)?;
    let transport = mailer.transport_name();
    let host = settings.http.host.clone();
    let site = settings.http.site_url.clone();
    let app = Application::build(settings, mailer, Clock::System).await?;
    let url = format!("http://{}:{}", display_host(&host), app.port());
    tracing::info!(%url, site_url = %site, mail = transport, "chipflap is listening");
    write_line(&format!(
        "chipflap is listening on {url} (identity API at {url}/.netlify/identity)"
    ))?;
    app.run_until_stopped().await.context("running the server")
}

async fn users(settings: Settings, command: UsersCommand) -> anyhow::Result<()> {
    let mailer = mailer_from_settings(&settings)?;
    let state = build_state(settings, mailer, Clock::System).await?;
    let outcome = users_command(&state, command).await;
    // Background work and queued audit entries finish before the process exits.
    drain_background(&state).await;
    outcome
}

async fn users_command(state: &AppState, command: UsersCommand) -> anyhow::Result<()> {
    let actor = Actor::command_line();
    let find = |email: String| {
        let state = state.clone();
        async move {
            admin_users::find_by_email(&state, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{email}: {e}"))
        }
    };
    match command {
        UsersCommand::Add {
            email,
            password_stdin,
            password_prompt,
            password,
            admin,
            confirmed,
        } => {
            if password.is_some() {
                anyhow::bail!(
                    "--password would show the password in the process list; use --password-stdin or --password-prompt"
                );
            }
            let password = if password_stdin {
                Some(password_from_stdin().await?)
            } else if password_prompt {
                Some(password_from_terminal().await?)
            } else {
                None
            };
            let new = NewUser {
                aud: state.settings.jwt.aud.clone(),
                email,
                password,
                confirm: confirmed,
                role: admin.then(|| state.settings.jwt.admin_group.clone()),
                user_metadata: None,
                app_metadata: None,
            };
            let user = admin_users::create_user(state, &actor, new)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            write_line(&user.id.to_string())
        }
        UsersCommand::Ban {
            email,
            duration,
            reason,
        } => {
            let user = find(email).await?;
            admin_users::ban(state, &actor, user.id, duration, reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // Let the Ably revocation finish before the process exits.
            drain_background(state).await;
            write_line(&format!("banned {}", user.email))
        }
        UsersCommand::Unban { email } => {
            let user = find(email).await?;
            admin_users::unban(state, &actor, user.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            write_line(&format!("unbanned {}", user.email))
        }
    }
}

/// The most `--password-stdin` reads, in bytes: well above the 1024-byte password limit, so a
/// long password gets the domain's clear error rather than a silent cut.
const STDIN_PASSWORD_MAX_BYTES: u64 = 4096;

/// The first line of standard input, without its line ending.
async fn password_from_stdin() -> anyhow::Result<String> {
    tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut input = String::new();
        std::io::stdin()
            .take(STDIN_PASSWORD_MAX_BYTES)
            .read_to_string(&mut input)
            .context("reading the password from standard input")?;
        let line = input.split('\n').next().unwrap_or("");
        let password = line.strip_suffix('\r').unwrap_or(line);
        anyhow::ensure!(
            !password.is_empty(),
            "--password-stdin: standard input holds no password"
        );
        Ok(password.to_owned())
    })
    .await
    .context("reading standard input")?
}

/// Asks twice on the terminal, without echo (`rpassword` reads the controlling terminal).
async fn password_from_terminal() -> anyhow::Result<String> {
    tokio::task::spawn_blocking(|| {
        let first =
            rpassword::prompt_password("Password: ").context("reading the password prompt")?;
        let again = rpassword::prompt_password("Password again: ")
            .context("reading the password prompt")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        anyhow::ensure!(!first.is_empty(), "the password is empty");
        Ok(first)
    })
    .await
    .context("reading the terminal")?
}

async fn end_sessions(settings: Settings, all: bool, email: Option<String>) -> anyhow::Result<()> {
    let mailer = mailer_from_settings(&settings)?;
    let state = build_state(settings, mailer, Clock::System).await?;
    let outcome = end_sessions_of(&state, all, email).await;
    drain_background(&state).await;
    outcome
}

async fn end_sessions_of(state: &AppState, all: bool, email: Option<String>) -> anyhow::Result<()> {
    let actor = Actor::command_line();
    match email {
        Some(email) if !all => {
            let user = admin_users::find_by_email(state, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{email}: {e}"))?;
            let ended = admin_users::end_sessions(state, &actor, user.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            write_line(&format!("ended {ended} sessions of {}", user.email))
        }
        _ => {
            let ended = admin_users::end_every_session(state, &actor, None).await?;
            write_line(&format!(
                "ended {} sessions and {} console sessions",
                ended.sessions, ended.console_sessions
            ))
        }
    }
}

fn display_host(host: &str) -> &str {
    match host {
        "0.0.0.0" | "::" => "localhost",
        other => other,
    }
}

/// Command output goes to stdout (scripts read it); logs go to stderr.
fn write_line(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").context("writing to stdout")
}
