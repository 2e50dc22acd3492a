//! Training runs: a durable queue in PostgreSQL and the record of what each run did.
//!
//! A claimed run holds a lease: its worker records a heartbeat every [`HEARTBEAT_EVERY`],
//! and a run whose heartbeat is older than [`LEASE_SECS`] belongs to a process that is
//! gone. At most one run per sensor is `running` (a unique index says so), so claims pass
//! over the queued runs of a sensor that is being trained.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

use super::{RegistryError, Trigger};
use crate::forecast::Algorithm;

/// How often the worker executing a run records that it is still at it.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// A run whose last heartbeat is older than this was abandoned: six missed beats, so a
/// slow database or a busy machine does not cost a live run its lease.
pub const LEASE_SECS: i64 = 180;

/// A run claimed by this process, ready to execute.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: i64,
    pub sensor_id: i64,
    pub trigger: Trigger,
    pub requested: Option<Algorithm>,
}

/// The states of a training run, as `training_runs.status` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

/// A run as recorded, for the API, the CLI and the pages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    pub id: i64,
    pub sensor: String,
    pub trigger: String,
    pub status: String,
    pub requested: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub algorithm: Option<String>,
    pub params: Option<serde_json::Value>,
    pub step_secs: Option<i32>,
    pub data_first: Option<DateTime<Utc>>,
    pub data_last: Option<DateTime<Utc>>,
    pub data_rows: Option<i32>,
    pub data_digest: Option<String>,
    pub metrics: Option<serde_json::Value>,
    pub error: Option<String>,
    /// The model version this run produced, if any.
    pub version_id: Option<i64>,
    /// The process that claimed it (`host:pid:nonce`, or `cli:pid`).
    pub claimed_by: Option<String>,
    /// While it runs, renewed every 30 s; older than 3 minutes means its process is gone.
    pub heartbeat_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str =
    "r.id, s.name, r.trigger, r.status, r.requested, r.queued_at, r.started_at, \
     r.finished_at, r.duration_ms, r.algorithm, r.params, r.step_secs, r.data_first, r.data_last, \
     r.data_rows, r.data_digest, r.metrics, r.error, \
     (SELECT v.id FROM model_versions v WHERE v.run_id = r.id), r.claimed_by, r.heartbeat_at";

fn run_from_row(row: &tokio_postgres::Row) -> RunRecord {
    RunRecord {
        id: row.get(0),
        sensor: row.get(1),
        trigger: row.get(2),
        status: row.get(3),
        requested: row.get(4),
        queued_at: row.get(5),
        started_at: row.get(6),
        finished_at: row.get(7),
        duration_ms: row.get(8),
        algorithm: row.get(9),
        params: row.get(10),
        step_secs: row.get(11),
        data_first: row.get(12),
        data_last: row.get(13),
        data_rows: row.get(14),
        data_digest: row.get(15),
        metrics: row.get(16),
        error: row.get(17),
        version_id: row.get(18),
        claimed_by: row.get(19),
        heartbeat_at: row.get(20),
    }
}

/// Queues a run for a sensor unless one is already queued for it; returns its id.
pub async fn enqueue(
    client: &impl GenericClient,
    sensor_id: i64,
    trigger: Trigger,
    requested: Option<Algorithm>,
) -> Result<i64, RegistryError> {
    let requested = requested.map(|a| a.name().to_string());
    // One queued run per sensor is enough: a second request joins the first.
    let existing = client
        .query_opt(
            "SELECT id FROM training_runs WHERE sensor_id = $1 AND status = 'queued' \
             AND requested IS NOT DISTINCT FROM $2 ORDER BY id LIMIT 1",
            &[&sensor_id, &requested],
        )
        .await?;
    if let Some(row) = existing {
        return Ok(row.get(0));
    }
    let row = client
        .query_one(
            "INSERT INTO training_runs (sensor_id, trigger, requested) VALUES ($1, $2, $3) RETURNING id",
            &[&sensor_id, &trigger.as_str(), &requested],
        )
        .await?;
    Ok(row.get(0))
}

/// Claims the oldest queued run (optionally only among `only`) whose sensor is not being
/// trained, marking it running. Runs abandoned by a process that is gone are closed
/// first, so they hold up nothing. Concurrent claimers skip rows others hold, so each run
/// executes once.
pub async fn claim_next(
    client: &impl GenericClient,
    instance: &str,
    only: Option<&[i64]>,
) -> Result<Option<ClaimedRun>, RegistryError> {
    fail_abandoned(client).await?;
    let ids: Option<Vec<i64>> = only.map(<[i64]>::to_vec);
    // Two claimers may pick two queued runs of one sensor at once; the unique index on
    // running runs lets one win, and the other looks again, now seeing the sensor busy.
    let mut attempts = 0;
    let row = loop {
        let claimed = client
            .query_opt(
                "UPDATE training_runs SET status = 'running', started_at = now(), \
                 heartbeat_at = now(), claimed_by = $1 \
                 WHERE id = (SELECT q.id FROM training_runs q WHERE q.status = 'queued' \
                             AND ($2::bigint[] IS NULL OR q.id = ANY($2)) \
                             AND NOT EXISTS (SELECT 1 FROM training_runs w \
                                             WHERE w.sensor_id = q.sensor_id AND w.status = 'running') \
                             ORDER BY q.id FOR UPDATE SKIP LOCKED LIMIT 1) \
                 RETURNING id, sensor_id, trigger, requested",
                &[&instance, &ids],
            )
            .await;
        match claimed {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && attempts < 3 => {
                attempts += 1;
            }
            other => break other?,
        }
    };
    let Some(row) = row else { return Ok(None) };
    let trigger: String = row.get(2);
    let requested: Option<String> = row.get(3);
    Ok(Some(ClaimedRun {
        id: row.get(0),
        sensor_id: row.get(1),
        trigger: trigger.parse()?,
        requested: requested.as_deref().and_then(|r| r.parse().ok()),
    }))
}

/// Those of `ids` still waiting in the queue.
pub async fn queued_among(
    client: &impl GenericClient,
    ids: &[i64],
) -> Result<Vec<i64>, RegistryError> {
    let rows = client
        .query(
            "SELECT id FROM training_runs WHERE id = ANY($1) AND status = 'queued' ORDER BY id",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Keeps a claimed run's lease while it executes: records a heartbeat every `every`
/// until dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    pub fn start(pool: Pool, run_id: i64, every: Duration) -> Self {
        Self(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate, and the claim has just set the heartbeat.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let beat = async {
                    let client = pool.get().await?;
                    client
                        .execute(
                            "UPDATE training_runs SET heartbeat_at = now() \
                             WHERE id = $1 AND status = 'running'",
                            &[&run_id],
                        )
                        .await?;
                    Ok::<(), RegistryError>(())
                }
                .await;
                if let Err(e) = beat {
                    tracing::warn!(run = run_id, error = %e, "could not record the training run's heartbeat");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Records a failure. The champion is never touched by a failed run.
pub async fn mark_failed(
    client: &impl GenericClient,
    run_id: i64,
    error: &str,
) -> Result<(), RegistryError> {
    client
        .execute(
            "UPDATE training_runs SET status = 'failed', error = $2, finished_at = now(), \
             duration_ms = (extract(epoch FROM now() - coalesce(started_at, queued_at)) * 1000)::bigint \
             WHERE id = $1",
            &[&run_id, &error],
        )
        .await?;
    Ok(())
}

pub async fn get(client: &impl GenericClient, run_id: i64) -> Result<RunRecord, RegistryError> {
    let row = client
        .query_opt(
            &format!("SELECT {RUN_COLUMNS} FROM training_runs r JOIN sensors s ON s.id = r.sensor_id WHERE r.id = $1"),
            &[&run_id],
        )
        .await?
        .ok_or(RegistryError::UnknownRun(run_id))?;
    Ok(run_from_row(&row))
}

/// Most recent runs first, optionally of one sensor.
pub async fn list(
    client: &impl GenericClient,
    sensor_id: Option<i64>,
    limit: i64,
) -> Result<Vec<RunRecord>, RegistryError> {
    list_with_status(client, sensor_id, None, limit).await
}

/// [`list`], only runs with `status` if given.
pub async fn list_with_status(
    client: &impl GenericClient,
    sensor_id: Option<i64>,
    status: Option<RunStatus>,
    limit: i64,
) -> Result<Vec<RunRecord>, RegistryError> {
    let status = status.map(RunStatus::as_str);
    let rows = client
        .query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM training_runs r JOIN sensors s ON s.id = r.sensor_id \
                 WHERE ($1::bigint IS NULL OR r.sensor_id = $1) \
                   AND ($2::text IS NULL OR r.status = $2) ORDER BY r.id DESC LIMIT $3"
            ),
            &[&sensor_id, &status, &limit],
        )
        .await?;
    Ok(rows.iter().map(run_from_row).collect())
}

/// Runs that `instance` claimed and had not finished when it stopped go back to the
/// queue, so the next worker (another replica's, or this server's after a restart) trains
/// them: a shutdown in the middle of a fit loses nothing the operator asked for.
pub async fn requeue_unfinished(
    client: &impl GenericClient,
    instance: &str,
) -> Result<u64, RegistryError> {
    Ok(client
        .execute(
            "UPDATE training_runs SET status = 'queued', started_at = NULL, claimed_by = NULL \
             WHERE status = 'running' AND claimed_by = $1",
            &[&instance],
        )
        .await?)
}

/// Runs `running` without a heartbeat for [`LEASE_SECS`] (their process died) are marked
/// failed so the sensor can be trained again; returns how many, also counted in
/// `/metrics` and logged.
pub async fn fail_abandoned(client: &impl GenericClient) -> Result<u64, RegistryError> {
    let closed = client
        .execute(
            "UPDATE training_runs SET status = 'failed', finished_at = now(), \
             error = 'abandoned: the process running it stopped' \
             WHERE status = 'running' \
             AND coalesce(heartbeat_at, started_at) < now() - make_interval(secs => $1::float8)",
            &[&(LEASE_SECS as f64)],
        )
        .await?;
    if closed > 0 {
        tracing::warn!(
            runs = closed,
            "closed training runs whose process stopped renewing their lease"
        );
        crate::metrics::training_runs_abandoned(closed);
    }
    Ok(closed)
}
