//! The command line: `run`, `serve`, `work`, `migrate`, `tenant create NAME`.
//! `anyhow` lives here only, at the top; errors print as one precise sentence.

use crate::settings::Settings;
use crate::startup::{self, Roles};
use crate::store::batches;
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
    /// Import a CSV file through a running service: upload, progress, results file.
    Import(crate::client::ImportArgs),
    /// Dead batches: list them, or send them through the pipeline again.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List dead batches, oldest first, one JSON object per line.
    List {
        /// Only the batches of this import.
        #[arg(long = "import")]
        import_id: Option<uuid::Uuid>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Replay dead batches: their failed results are taken back and they are published again.
    Replay {
        /// Only the batches of this import.
        #[arg(
            long = "import",
            conflicts_with = "all",
            required_unless_present = "all"
        )]
        import_id: Option<uuid::Uuid>,
        /// Every dead batch.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        settings: Settings,
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
        Command::Run(s) => serve(s, Roles::ALL).await,
        Command::Serve(s) => serve(s, Roles::API).await,
        Command::Work(s) => serve(s, Roles::WORKERS).await,
        Command::Migrate(s) => {
            open(&s).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Dlq { command } => dlq(command).await,
        Command::Import(args) => crate::client::run(args).await,
        Command::Tenant {
            command: TenantCommand::Create { name, settings },
        } => {
            let pool = open(&settings).await?;
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

async fn open(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    telemetry::init(settings.log_format);
    let pool = startup::connect(settings, 2).await?;
    store::migrate(&pool)
        .await
        .context("cannot apply migrations")?;
    Ok(pool)
}

async fn dlq(command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::List {
            import_id,
            settings,
        } => {
            let pool = open(&settings).await?;
            let dead = batches::list_dead(&pool, import_id).await?;
            for batch in &dead {
                println!("{}", serde_json::to_string(batch)?);
            }
            eprintln!("{} dead batch(es)", dead.len());
            Ok(())
        }
        DlqCommand::Replay {
            import_id,
            all: _,
            settings,
        } => {
            let pool = open(&settings).await?;
            let replayed = batches::replay_dead(&pool, import_id).await?;
            println!(
                "{replayed} dead batch(es) put back in the outbox; a running relay publishes them"
            );
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
