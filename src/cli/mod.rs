//! The command line (clap): `hygrocast serve`, `hygrocast migrate`, and the admin commands.
//! Every command shares the configuration and the database of `serve`.

mod admin;
mod backup;
mod evaluate;
mod models;
mod prune;
mod sensor;
mod serve;
mod simulate;
mod table;

pub use sensor::SensorCommand;
pub use simulate::{SimulateArgs, WireFormat};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::db::{Database, Role};

#[derive(Debug, Parser)]
#[command(
    name = "hygrocast",
    version = crate::version::LONG_VERSION,
    about = "Humidity forecasting server: ingestion, per-sensor models, monitoring and pages in one binary",
    long_about = "hygrocast ingests humidity readings from sensors over HTTP, retrains a forecasting \
                  model per sensor on a schedule, watches how its forecasts perform and serves \
                  forecast pages. With no database.url it runs its own PostgreSQL under database.data_dir."
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml when present). Settings can also be
    /// overridden with HYGROCAST_<SECTION>__<KEY> environment variables.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: HTTP API and pages, scheduler, and (by default) the private PostgreSQL.
    ///
    /// Applies pending migrations first. Stops gracefully on Ctrl-C or SIGTERM: in-flight
    /// requests finish, then the private PostgreSQL (if hygrocast started it) is stopped.
    Serve,
    /// Apply pending database migrations and exit.
    ///
    /// Safe to run while other hygrocast processes start: migrators take an advisory lock
    /// and each migration is applied exactly once.
    Migrate,
    /// Train models now (the backtest picks the algorithm; the promotion rule decides
    /// whether the new version becomes the champion).
    Train(models::TrainArgs),
    /// Inspect and manage model versions (list, show, promote, rollback) and training
    /// runs (runs).
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Write a training run's exact training series as CSV and verify its digest.
    Export(models::ExportArgs),
    /// Write a consistent copy of the whole database to a file (pg_dump, custom format),
    /// also while `serve` runs. The database is not migrated or changed.
    Backup(backup::BackupArgs),
    /// Restore a `backup` file into an empty database, then migrate it to this version.
    ///
    /// With the private cluster, point database.data_dir at a new directory; with
    /// database.url, at a newly created database. A database with tables is refused.
    Restore(backup::RestoreArgs),
    /// Delete what `[retention]` says is no longer needed (issued forecasts past
    /// `retention.issued_forecast_days`, the fitted models of versions older than each
    /// sensor's newest `retention.models_kept`, readings past `retention.readings_days`
    /// when set), as the daily prune job does, and say how much.
    Prune,
    /// Administer the web pages: `admin set-password` sets the admin login's password.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Backtest forecasting models on a CSV series and print their scores (offline; no database).
    Evaluate(evaluate::EvaluateArgs),
    /// Manage sensors and their tokens.
    #[command(subcommand)]
    Sensor(SensorCommand),
    /// Act as a humidity sensor: post realistic readings to a hygrocast server.
    ///
    /// Backfills history in batches, then posts one reading per interval; retries with
    /// exponential backoff on 503 and network errors. Needs no database of its own.
    Simulate(SimulateArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Setting the password needs neither the database nor a loadable config (it may be
    // run precisely to repair a bad hash), so it runs before the settings are loaded.
    if let Command::Admin(cmd) = cli.command {
        return match admin::run(cmd, cli.config.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hygrocast: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("hygrocast: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hygrocast: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, settings));
    // A fit given up at shutdown may still be running on a blocking thread. Everything the
    // process owed was done inside `run` (requests answered, unfinished runs queued again,
    // the private PostgreSQL stopped), so the process ends without waiting for it.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "command failed");
            eprintln!("hygrocast: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

async fn run(command: Command, settings: Arc<Settings>) -> Result<(), CliError> {
    match command {
        Command::Serve => serve::run(settings).await,
        Command::Train(args) => models::train(settings, args).await,
        Command::Models(cmd) => models::models(settings, cmd).await,
        Command::Export(args) => models::export(settings, args).await,
        Command::Prune => prune::run(settings).await,
        Command::Backup(args) => backup::backup(settings, args).await,
        Command::Restore(args) => backup::restore(settings, args).await,
        Command::Evaluate(args) => evaluate::run(args),
        Command::Admin(cmd) => admin::run(cmd, None),
        Command::Migrate => {
            let db = Database::open(&settings.database, Role::Command).await?;
            let result = db.migrate().await;
            db.close().await;
            let applied = result?;
            if applied.is_empty() {
                println!(
                    "database is up to date (schema version {})",
                    crate::db::migrate::latest_version()
                );
            } else {
                println!("applied migrations {applied:?}");
            }
            Ok(())
        }
        Command::Sensor(cmd) => sensor::run(cmd, settings).await,
        Command::Simulate(args) => simulate::run(args).await,
    }
}

/// Runs an admin command against the shared database (migrated), then closes it: a private
/// cluster the command had to start is stopped again.
pub(crate) async fn with_database<F, Fut>(settings: &Settings, f: F) -> Result<(), CliError>
where
    F: FnOnce(Arc<Database>) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    with_database_as(settings, true, f).await
}

/// [`with_database`], migrating first only if `migrate`: a backup must not change the
/// database it copies, and a restore needs it empty.
pub(crate) async fn with_database_as<F, Fut>(
    settings: &Settings,
    migrate: bool,
    f: F,
) -> Result<(), CliError>
where
    F: FnOnce(Arc<Database>) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let db = Arc::new(Database::open(&settings.database, Role::Command).await?);
    let migrated = if migrate {
        db.migrate().await.map(|_| ())
    } else {
        Ok(())
    };
    let result = match migrated {
        Ok(()) => f(db.clone()).await,
        Err(e) => Err(e.into()),
    };
    match Arc::try_unwrap(db) {
        Ok(db) => db.close().await,
        Err(_) => tracing::warn!("database handle still in use at exit"),
    }
    result
}
