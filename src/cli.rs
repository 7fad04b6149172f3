//! The command line: `run`, `serve`, `work`, `migrate`, `tenant create NAME`.
//! `anyhow` lives here only, at the top; errors print as one precise sentence.

use crate::settings::Settings;
use crate::startup::{self, Roles};
use crate::{store, telemetry};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Asynchronous bulk contact import: JSON and CSV intake, RabbitMQ fan-out, PostgreSQL upserts.
#[derive(Parser)]
#[command(name = "contact-import", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API, outbox relay and workers in one process (the single-node default).
    Run(Settings),
    /// API and outbox relay only.
    Serve(Settings),
    /// A worker only; run as many as you like, on any host.
    Work(Settings),
    /// Apply pending database migrations and exit.
    Migrate(Settings),
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its signing secret, then its API key as the last line.
    Create {
        /// The tenant's (organisation's) name.
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(s) => {
            serve(
                s,
                Roles {
                    api: true,
                    workers: true,
                },
            )
            .await
        }
        Command::Serve(s) => {
            serve(
                s,
                Roles {
                    api: true,
                    workers: false,
                },
            )
            .await
        }
        Command::Work(s) => {
            serve(
                s,
                Roles {
                    api: false,
                    workers: true,
                },
            )
            .await
        }
        Command::Migrate(s) => {
            telemetry::init(s.log_format);
            let pool = store::connect(&s.database_url, 2).await.with_context(|| {
                format!(
                    "cannot connect to PostgreSQL at {}",
                    s.database_url_redacted()
                )
            })?;
            store::migrate(&pool)
                .await
                .context("cannot apply migrations")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Create { name, settings },
        } => {
            telemetry::init(settings.log_format);
            let pool = store::connect(&settings.database_url, 2)
                .await
                .with_context(|| {
                    format!(
                        "cannot connect to PostgreSQL at {}",
                        settings.database_url_redacted()
                    )
                })?;
            store::migrate(&pool)
                .await
                .context("cannot apply migrations")?;
            let created = store::tenants::create(&pool, &name).await?;
            println!(
                "tenant created: {} ({})",
                created.tenant.name, created.tenant.id
            );
            println!("signing secret: {}", created.signing_secret);
            println!("{}", created.api_key);
            Ok(())
        }
    }
}

async fn serve(settings: Settings, roles: Roles) -> anyhow::Result<()> {
    telemetry::init(settings.log_format);
    tracing::info!(
        database = %settings.database_url_redacted(),
        broker = %settings.amqp_url_redacted(),
        queue_prefix = %settings.queue_prefix,
        workers = if roles.workers { settings.workers } else { 0 },
        "starting"
    );
    let running = startup::start(settings, roles).await?;
    running.until_signal().await;
    Ok(())
}
