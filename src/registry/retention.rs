//! Retention: deleting what the loop no longer needs, so the database of a server that
//! runs for years grows with its readings and not with its own bookkeeping.
//!
//! Issued forecasts are the one table that grows faster than the readings (120 rows per
//! sensor for every origin) while only their last 7 days are ever read (the monitor's
//! scoring window). Readings, runs, versions, promotions and scores are the record of what
//! happened and are kept.

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::RegistryError;
use crate::config::Settings;

/// What one prune deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Issued forecasts whose target time was older than the cutoff.
    pub issued_forecasts: u64,
    /// The cutoff applied to issued forecasts; `None` when they are kept forever.
    pub issued_before: Option<DateTime<Utc>>,
}

impl std::fmt::Display for PruneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.issued_before {
            Some(at) => write!(
                f,
                "deleted {} issued forecasts with a target before {}",
                self.issued_forecasts,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => f.write_str(
                "issued forecasts are kept forever (retention.issued_forecast_days = 0)",
            ),
        }
    }
}

/// Deletes what `[retention]` says is no longer needed, as of `now`.
pub async fn prune(
    pool: &Pool,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<PruneReport, RegistryError> {
    let days = settings.retention.issued_forecast_days;
    if days == 0 {
        return Ok(PruneReport::default());
    }
    let cutoff = now - Duration::days(i64::from(days));
    let client = pool.get().await?;
    let sensors: Vec<i64> = client
        .query("SELECT id FROM sensors ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut deleted = 0;
    // One statement per sensor: each uses the (sensor_id, target_ts) index and holds its
    // transaction only for that sensor's share, even on the first prune of a years-old
    // database.
    for sensor_id in sensors {
        deleted += client
            .execute(
                "DELETE FROM issued_forecasts WHERE sensor_id = $1 AND target_ts < $2",
                &[&sensor_id, &cutoff],
            )
            .await?;
    }
    if deleted > 0 {
        tracing::info!(
            issued_forecasts = deleted,
            before = %cutoff,
            "pruned issued forecasts past their retention"
        );
    }
    Ok(PruneReport {
        issued_forecasts: deleted,
        issued_before: Some(cutoff),
    })
}
