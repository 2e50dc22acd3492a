//! `hygrocast train`, `hygrocast models …` and `hygrocast export`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::table::{f3, render};
use super::{with_database, CliError};
use crate::config::Settings;
use crate::domain::SensorKind;
use crate::forecast::{self, Algorithm};
use crate::registry::{runs, trainer, versions, RegistryError, Trigger};

impl From<RegistryError> for CliError {
    fn from(e: RegistryError) -> Self {
        CliError::Other(e.to_string())
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["sensor", "all"])))]
pub struct TrainArgs {
    /// Train this sensor.
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,
    /// Train every sensor.
    #[arg(long)]
    pub all: bool,
    /// Fit this algorithm instead of letting the backtest choose
    /// (naive, seasonal_naive, ridge, forest, analog, blend). Promotion rules still apply.
    #[arg(long, value_name = "ALGORITHM")]
    pub algorithm: Option<Algorithm>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List model versions (newest first).
    List {
        /// Only this sensor's versions.
        #[arg(long, value_name = "NAME")]
        sensor: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// List training runs (newest first): queued, running, and what each finished run did
    /// or why it failed.
    Runs {
        /// Only this sensor's runs.
        #[arg(long, value_name = "NAME")]
        sensor: Option<String>,
        /// Only runs with this status.
        #[arg(long, value_enum)]
        status: Option<runs::RunStatus>,
        /// Show at most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// List changes of champion (newest first): automatic promotions, an operator's,
    /// rollbacks, each with its reason.
    Promotions {
        /// Only this sensor's promotions.
        #[arg(long, value_name = "NAME")]
        sensor: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Show one version: its run, data snapshot and metrics.
    Show { version_id: i64 },
    /// Make a version the champion of its sensor.
    Promote { version_id: i64 },
    /// Restore the champion that the last promotion of a sensor replaced.
    Rollback {
        #[arg(long, value_name = "NAME")]
        sensor: String,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The training run whose data to export.
    #[arg(long, value_name = "ID")]
    pub run: i64,
    /// Write the CSV here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn train(settings: Arc<Settings>, args: TrainArgs) -> Result<(), CliError> {
    with_database(&settings.clone(), |db| async move {
        let client = db.pool.get().await.map_err(RegistryError::from)?;
        let sensors: Vec<(i64, String)> = match &args.sensor {
            Some(name) => vec![(versions::sensor_id(&**client, name).await?, name.clone())],
            None => client
                .query("SELECT id, name FROM sensors ORDER BY name", &[])
                .await
                .map_err(RegistryError::from)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        };
        let mut ids = Vec::new();
        for (id, _) in &sensors {
            ids.push(runs::enqueue(&**client, *id, Trigger::Manual, args.algorithm).await?);
        }
        drop(client);
        let bar = indicatif::ProgressBar::new(ids.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} sensors trained {elapsed} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        if ids.len() < 2 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let instance = format!("cli:{}", std::process::id());
        let results =
            trainer::run_claimed(&db.pool, &settings, &instance, &ids, |_| bar.inc(1)).await?;
        bar.finish_and_clear();
        let client = db.pool.get().await.map_err(RegistryError::from)?;
        let mut rows = Vec::new();
        let mut failed = 0;
        for id in &ids {
            let run = runs::get(&**client, *id).await?;
            let outcome = results.iter().flatten().find(|o| o.run_id == *id);
            if run.status == "failed" {
                failed += 1;
            }
            rows.push(vec![
                run.sensor,
                run.id.to_string(),
                run.status,
                run.algorithm.unwrap_or_else(|| "-".into()),
                outcome.map_or("-".into(), |o| format!("v{}", o.version)),
                outcome.map_or("-".into(), |o| {
                    if o.promoted {
                        "champion".into()
                    } else {
                        "challenger".into()
                    }
                }),
                outcome.map_or_else(|| run.error.unwrap_or_default(), |o| o.reason.clone()),
            ]);
        }
        if results.len() < ids.len() {
            eprintln!(
                "{} run(s) were claimed by a running server and train there",
                ids.len() - results.len()
            );
        }
        print!(
            "{}",
            render(
                &[
                    "sensor",
                    "run",
                    "status",
                    "algorithm",
                    "version",
                    "now",
                    "reason"
                ],
                &rows
            )
        );
        if failed > 0 {
            return Err(CliError::Other(format!("{failed} training run(s) failed")));
        }
        Ok(())
    })
    .await
}

/// What a run's table row says beyond its status: the error of a failed run, the lease of
/// a running one, the version a succeeded one stored.
fn run_note(run: &runs::RunRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    match run.status.as_str() {
        "failed" => run.error.clone().unwrap_or_default(),
        "running" => {
            let by = run.claimed_by.as_deref().unwrap_or("?");
            match run.heartbeat_at {
                Some(at) => format!("on {by}, heartbeat {} s ago", (now - at).num_seconds()),
                None => format!("on {by}"),
            }
        }
        "queued" => run
            .requested
            .as_ref()
            .map(|a| format!("asks for {a}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The id of the sensor a `--sensor NAME` filter names, `None` without one.
async fn sensor_filter(
    client: &impl tokio_postgres::GenericClient,
    name: Option<&str>,
) -> Result<Option<i64>, RegistryError> {
    match name {
        Some(name) => Ok(Some(versions::sensor_id(client, name).await?)),
        None => Ok(None),
    }
}

pub async fn models(settings: Arc<Settings>, cmd: ModelsCommand) -> Result<(), CliError> {
    with_database(&settings, |db| async move {
        let mut client = db.pool.get().await.map_err(RegistryError::from)?;
        match cmd {
            ModelsCommand::List { sensor, limit } => {
                let sensor_id = sensor_filter(&**client, sensor.as_deref()).await?;
                let list = versions::list(&**client, sensor_id, limit).await?;
                let rows: Vec<Vec<String>> = list
                    .into_iter()
                    .map(|v| {
                        vec![
                            v.id.to_string(),
                            v.sensor,
                            format!("v{}", v.version),
                            v.algorithm,
                            match v.model_pruned_at {
                                Some(_) => format!("{} (model deleted)", v.status),
                                None => v.status,
                            },
                            f3(v.mase_1_24),
                            v.created_at.format("%Y-%m-%d %H:%M").to_string(),
                            v.status_reason,
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    render(
                        &[
                            "id",
                            "sensor",
                            "version",
                            "algorithm",
                            "status",
                            "MASE 1-24",
                            "created (UTC)",
                            "reason"
                        ],
                        &rows
                    )
                );
            }
            ModelsCommand::Runs {
                sensor,
                status,
                limit,
            } => {
                let sensor_id = sensor_filter(&**client, sensor.as_deref()).await?;
                let list = runs::list_with_status(&**client, sensor_id, status, limit).await?;
                let now = chrono::Utc::now();
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.sensor.clone(),
                            r.trigger.clone(),
                            r.status.clone(),
                            r.queued_at.format("%Y-%m-%d %H:%M").to_string(),
                            r.duration_ms
                                .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
                            r.algorithm.clone().unwrap_or_else(|| "-".into()),
                            run_note(r, now),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    render(
                        &[
                            "run",
                            "sensor",
                            "trigger",
                            "status",
                            "queued (UTC)",
                            "took",
                            "algorithm",
                            "note"
                        ],
                        &rows
                    )
                );
            }
            ModelsCommand::Promotions { sensor, limit } => {
                let sensor_id = sensor_filter(&**client, sensor.as_deref()).await?;
                let list = versions::promotions(&**client, sensor_id, limit).await?;
                let rows: Vec<Vec<String>> = list
                    .into_iter()
                    .map(|p| {
                        vec![
                            p.at.format("%Y-%m-%d %H:%M").to_string(),
                            p.sensor,
                            p.from_version.map_or("-".into(), |v| format!("v{v}")),
                            format!("v{}", p.to_version),
                            p.kind,
                            p.reason,
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    render(
                        &["at (UTC)", "sensor", "from", "to", "kind", "reason"],
                        &rows
                    )
                );
            }
            ModelsCommand::Show { version_id } => {
                let v = versions::get(&**client, version_id).await?;
                let run = runs::get(&**client, v.run_id).await?;
                println!("version id   {}", v.id);
                println!("sensor       {} (v{})", v.sensor, v.version);
                println!(
                    "algorithm    {}{}",
                    v.algorithm,
                    if v.baseline { " (baseline)" } else { "" }
                );
                println!("status       {} — {}", v.status, v.status_reason);
                println!("created      {}", v.created_at.to_rfc3339());
                if let Some(at) = v.model_pruned_at {
                    println!(
                        "model        deleted by retention on {} (retention.models_kept): \
                         the record is kept, the version can no longer be promoted",
                        at.to_rfc3339()
                    );
                }
                println!(
                    "format       model v{}, features v{}, smartcore {}",
                    v.format_version, v.feature_spec_version, v.smartcore_version
                );
                println!(
                    "run          {} ({}, {}, {} ms)",
                    run.id,
                    run.trigger,
                    run.status,
                    run.duration_ms.unwrap_or(0)
                );
                println!(
                    "data         {} … {}, {} rows, sha256 {}",
                    run.data_first.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    run.data_last.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    run.data_rows.unwrap_or(0),
                    run.data_digest.unwrap_or_default()
                );
                println!("metrics      {}", v.metrics);
            }
            ModelsCommand::Promote { version_id } => {
                let v = versions::promote(&mut client, version_id).await?;
                println!(
                    "v{} ({}) is now the champion of {}",
                    v.version, v.algorithm, v.sensor
                );
            }
            ModelsCommand::Rollback { sensor } => {
                let v = versions::rollback(&mut client, &sensor).await?;
                println!(
                    "rolled back: v{} ({}) is again the champion of {}",
                    v.version, v.algorithm, v.sensor
                );
            }
        }
        Ok(())
    })
    .await
}

/// Writes a run's exact training series as CSV and checks it against the run's digest.
pub async fn export(settings: Arc<Settings>, args: ExportArgs) -> Result<(), CliError> {
    with_database(&settings.clone(), |db| async move {
        let client = db.pool.get().await.map_err(RegistryError::from)?;
        let run = runs::get(&**client, args.run).await?;
        let (Some(digest), Some(last)) = (run.data_digest.clone(), run.data_last) else {
            return Err(CliError::Other(format!("run {} has no data snapshot (status {})", run.id, run.status)));
        };
        let row = client
            .query_one("SELECT s.id, s.kind, r.started_at FROM sensors s JOIN training_runs r ON r.sensor_id = s.id WHERE r.id = $1", &[&run.id])
            .await
            .map_err(RegistryError::from)?;
        let kind: SensorKind = row
            .get::<_, String>(1)
            .parse()
            .map_err(|_| CliError::Other("sensor has an unknown kind".into()))?;
        let cutoff: Option<chrono::DateTime<chrono::Utc>> = row.get(2);
        let (series, _) = trainer::training_series(&**client, &settings, row.get(0), kind, cutoff).await?;
        let mut out: Box<dyn Write> = match &args.out {
            Some(path) => Box::new(std::fs::File::create(path)?),
            None => Box::new(std::io::stdout().lock()),
        };
        writeln!(out, "ts,value")?;
        for (ts, v) in forecast::series_to_csv_rows(&series) {
            writeln!(out, "{},{}", ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), v.map(|v| v.to_string()).unwrap_or_default())?;
        }
        out.flush()?;
        let actual = forecast::series_digest(&series);
        if actual == digest {
            eprintln!("digest verified: sha256 {digest} ({} rows up to {})", series.len(), last.to_rfc3339());
            Ok(())
        } else {
            let pruned = settings
                .retention
                .readings_kept_from(chrono::Utc::now())
                .filter(|kept_from| run.data_first.is_some_and(|first| first < *kept_from));
            let why = match pruned {
                Some(kept_from) => format!(
                    "its readings before {} were deleted: retention.readings_days = {}",
                    kept_from.format("%Y-%m-%d"),
                    settings.retention.readings_days
                ),
                None => "readings inside its window changed since, e.g. late readings were inserted".into(),
            };
            Err(CliError::Other(format!(
                "digest MISMATCH for run {}: the run saw sha256 {digest}, the data now gives {actual} ({why})",
                run.id
            )))
        }
    })
    .await
}
