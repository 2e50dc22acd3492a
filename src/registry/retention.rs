//! Retention: deleting what the loop no longer needs, so the database of a server that
//! runs for years grows with its readings and not with its own bookkeeping.
//!
//! Two things grow faster than they are read:
//! - issued forecasts, 120 rows per sensor for every origin, while only their last 7 days
//!   are ever read (the monitor's scoring window);
//! - fitted models, about 200 KB per version and a version a day per sensor, while only
//!   the champion is served and, past the newest few, nobody promotes an old challenger.
//!
//! Readings are kept unless `retention.readings_days` says otherwise (then never fewer
//! days than training reads). Runs, versions (all but their model bytes), promotions and
//! scores are the record of what happened and are kept.

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::{versions, RegistryError};
use crate::config::Settings;

/// What one prune deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Issued forecasts whose target time was older than the cutoff.
    pub issued_forecasts: u64,
    /// The cutoff applied to issued forecasts; `None` when they are kept forever.
    pub issued_before: Option<DateTime<Utc>>,
    /// Versions whose fitted model was deleted.
    pub models: u64,
    /// The bytes those models took in the database (compressed, as stored).
    pub model_bytes: u64,
    /// How many of each sensor's newest versions keep their model; 0 keeps all.
    pub models_kept: u32,
    /// Readings older than the cutoff.
    pub readings: u64,
    /// The cutoff applied to readings; `None` when they are kept forever.
    pub readings_before: Option<DateTime<Utc>>,
}

impl std::fmt::Display for PruneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.issued_before {
            Some(at) => write!(
                f,
                "deleted {} issued forecasts with a target before {}",
                self.issued_forecasts,
                at.format("%Y-%m-%d %H:%M UTC")
            )?,
            None => f.write_str(
                "issued forecasts are kept forever (retention.issued_forecast_days = 0)",
            )?,
        }
        f.write_str("; ")?;
        match self.models_kept {
            0 => f.write_str("every version keeps its fitted model (retention.models_kept = 0)")?,
            kept => write!(
                f,
                "deleted the fitted models of {} older versions ({:.1} MB stored), keeping \
                 each sensor's newest {kept}, its champion and its rollback target",
                self.models,
                self.model_bytes as f64 / 1e6
            )?,
        }
        f.write_str("; ")?;
        match self.readings_before {
            Some(at) => write!(
                f,
                "deleted {} readings older than {}",
                self.readings,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => f.write_str("readings are kept forever (retention.readings_days = 0)"),
        }
    }
}

/// Readings deleted per statement: a first prune of years of readings runs as many short
/// transactions instead of one that holds its locks and its WAL for minutes.
const READINGS_BATCH: i64 = 50_000;

/// Deletes what `[retention]` says is no longer needed, as of `now`.
pub async fn prune(
    pool: &Pool,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<PruneReport, RegistryError> {
    let retention = &settings.retention;
    let mut client = pool.get().await?;
    let sensors: Vec<i64> = client
        .query("SELECT id FROM sensors ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut report = PruneReport {
        models_kept: retention.models_kept,
        ..PruneReport::default()
    };
    if retention.issued_forecast_days != 0 {
        let cutoff = now - Duration::days(i64::from(retention.issued_forecast_days));
        report.issued_before = Some(cutoff);
        // One statement per sensor: each uses the (sensor_id, target_ts) index and holds
        // its transaction only for that sensor's share, even on the first prune of a
        // years-old database.
        for &sensor_id in &sensors {
            report.issued_forecasts += client
                .execute(
                    "DELETE FROM issued_forecasts WHERE sensor_id = $1 AND target_ts < $2",
                    &[&sensor_id, &cutoff],
                )
                .await?;
        }
    }
    if retention.models_kept != 0 {
        let kept = i32::try_from(retention.models_kept).unwrap_or(i32::MAX);
        for &sensor_id in &sensors {
            let (models, bytes) = prune_models(&mut client, sensor_id, kept, now).await?;
            report.models += models;
            report.model_bytes += bytes;
        }
    }
    if let Some(cutoff) = retention.readings_kept_from(now) {
        report.readings_before = Some(cutoff);
        for &sensor_id in &sensors {
            report.readings +=
                delete_readings_before(&**client, sensor_id, cutoff, READINGS_BATCH).await?;
        }
    }
    if report.issued_forecasts > 0 || report.models > 0 || report.readings > 0 {
        tracing::info!(
            issued_forecasts = report.issued_forecasts,
            models = report.models,
            model_bytes = report.model_bytes,
            readings = report.readings,
            "pruned what is past its retention"
        );
    }
    Ok(report)
}

/// Deletes one sensor's readings older than `cutoff`, `batch` at a time (each statement its
/// own transaction); returns how many.
pub async fn delete_readings_before(
    client: &impl GenericClient,
    sensor_id: i64,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, RegistryError> {
    let mut total = 0;
    loop {
        let deleted = client
            .execute(
                "DELETE FROM readings WHERE sensor_id = $1 AND ts IN \
                 (SELECT ts FROM readings WHERE sensor_id = $1 AND ts < $2 ORDER BY ts LIMIT $3)",
                &[&sensor_id, &cutoff, &batch],
            )
            .await?;
        total += deleted;
        if deleted < batch.max(1) as u64 {
            return Ok(total);
        }
    }
}

/// Deletes the fitted models of one sensor's versions older than its newest `kept`, except
/// the champion's and the rollback target's: (versions, bytes).
async fn prune_models(
    client: &mut deadpool_postgres::Client,
    sensor_id: i64,
    kept: i32,
    now: DateTime<Utc>,
) -> Result<(u64, u64), RegistryError> {
    let tx = client.transaction().await?;
    // The lock promotions take, so the champion and the rollback target read here are
    // still those when the models are deleted.
    versions::lock_sensor(&*tx, sensor_id).await?;
    let row = tx
        .query_one(
            "WITH rollback_target AS ( \
                 SELECT p.from_version_id AS id FROM promotions p \
                 JOIN model_versions c ON c.id = p.to_version_id AND c.status = 'champion' \
                 WHERE p.sensor_id = $1 ORDER BY p.id DESC LIMIT 1), \
             doomed AS ( \
                 SELECT v.id, pg_column_size(v.model) AS bytes FROM model_versions v \
                 WHERE v.sensor_id = $1 AND v.model IS NOT NULL AND v.status <> 'champion' \
                   AND v.version <= (SELECT max(version) FROM model_versions WHERE sensor_id = $1) - $2 \
                   AND v.id NOT IN (SELECT id FROM rollback_target WHERE id IS NOT NULL)), \
             pruned AS ( \
                 UPDATE model_versions v SET model = NULL, model_pruned_at = $3 \
                 FROM doomed WHERE v.id = doomed.id RETURNING doomed.bytes) \
             SELECT count(*), coalesce(sum(bytes), 0)::bigint FROM pruned",
            &[&sensor_id, &kept, &now],
        )
        .await?;
    tx.commit().await?;
    let (models, bytes): (i64, i64) = (row.get(0), row.get(1));
    Ok((
        u64::try_from(models).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}
