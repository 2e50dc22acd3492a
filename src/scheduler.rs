//! In-process scheduling (tokio-cron-scheduler, in-memory store rebuilt from config at
//! every start) and the training worker.
//!
//! Exactly-once across replicas: every firing is first recorded in `job_runs` under the
//! unique key (job, scheduled tick); only the replica whose insert succeeds runs it.
//! The training work itself is a queue of `training_runs` rows that every replica's
//! worker claims with `FOR UPDATE SKIP LOCKED`, so the work is shared.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio::sync::{watch, Notify};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::{parse_cron, Settings};
use crate::registry::{
    monitor, retention, runs, serving::ForecastCache, trainer, RegistryError, Trigger,
};

/// Scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Retrain,
    Monitor,
    Prune,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Retrain => "retrain",
            JobKind::Monitor => "monitor",
            JobKind::Prune => "prune",
        }
    }
}

/// What a process needs to run jobs and train.
#[derive(Clone)]
pub struct Background {
    pub pool: Pool,
    pub settings: Arc<Settings>,
    pub cache: Arc<ForecastCache>,
    /// Identifies this replica in `job_runs` and `training_runs.claimed_by`.
    pub instance: String,
    /// Wakes the local training worker when work is queued here.
    pub wake: Arc<Notify>,
}

impl Background {
    pub fn new(pool: Pool, settings: Arc<Settings>, cache: Arc<ForecastCache>) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Self {
            pool,
            settings,
            cache,
            instance: format!("{}:{}:{}", host.trim(), std::process::id(), uuid_like()),
            wake: Arc::new(Notify::new()),
        }
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    format!("{:08x}", rand::thread_rng().gen::<u32>())
}

/// Records the firing of `job` for `tick`; true when this replica won it.
pub async fn claim_firing(
    bg: &Background,
    job: JobKind,
    tick: DateTime<Utc>,
) -> Result<Option<i64>, RegistryError> {
    let client = bg.pool.get().await?;
    let row = client
        .query_opt(
            "INSERT INTO job_runs (job, scheduled_for, instance) VALUES ($1, $2, $3) \
             ON CONFLICT (job, scheduled_for) DO NOTHING RETURNING id",
            &[&job.as_str(), &tick, &bg.instance],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

async fn finish_firing(bg: &Background, id: i64, result: &Result<String, RegistryError>) {
    let (status, detail) = match result {
        Ok(d) => ("succeeded", d.clone()),
        Err(e) => ("failed", e.to_string()),
    };
    let done = async {
        let client = bg.pool.get().await?;
        client
            .execute(
                "UPDATE job_runs SET finished_at = now(), status = $2, detail = $3 WHERE id = $1",
                &[&id, &status, &detail],
            )
            .await?;
        Ok::<(), RegistryError>(())
    }
    .await;
    if let Err(e) = done {
        tracing::error!(error = %e, "could not record the job run");
    }
}

/// Runs one firing of `job` for `tick` if no other replica has: the entry point of the
/// cron jobs, callable directly (tests, `hygrocast train --all`).
pub async fn fire(
    bg: &Background,
    job: JobKind,
    tick: DateTime<Utc>,
) -> Result<Option<String>, RegistryError> {
    let Some(id) = claim_firing(bg, job, tick).await? else {
        tracing::debug!(job = job.as_str(), %tick, "firing already claimed by another replica");
        return Ok(None);
    };
    tracing::info!(job = job.as_str(), %tick, "job started");
    let result = match job {
        JobKind::Retrain => enqueue_retrain(bg)
            .await
            .map(|ids| format!("queued {} training runs", ids.len())),
        JobKind::Monitor => monitor::run_once(&bg.pool, &bg.settings, &bg.cache)
            .await
            .map(|r| {
                format!(
                    "issued {} forecasts, {} drift retrains",
                    r.forecasts_issued,
                    r.drift_runs.len()
                )
            }),
        JobKind::Prune => retention::prune(&bg.pool, &bg.settings, Utc::now())
            .await
            .map(|r| r.to_string()),
    };
    finish_firing(bg, id, &result).await;
    // Every idle worker may have work now; the stored permit covers one that is between
    // its last claim and its wait.
    bg.wake.notify_waiters();
    bg.wake.notify_one();
    match &result {
        Ok(d) => tracing::info!(job = job.as_str(), detail = %d, "job finished"),
        Err(e) => tracing::error!(job = job.as_str(), error = %e, "job failed"),
    }
    result.map(Some)
}

/// Queues a run for every sensor with readings newer than its last successful run's
/// data (or never trained: trigger `new-sensor`), unless one is already queued or running
/// for it: that run will read the same new readings, and firings more frequent than a fit
/// would otherwise pile up runs behind it.
pub async fn enqueue_retrain(bg: &Background) -> Result<Vec<i64>, RegistryError> {
    let client = bg.pool.get().await?;
    // A run whose process died mid-fit would keep its sensor out of this job until a
    // worker's next claim closed it; close it here so the sensor is queued now.
    runs::fail_abandoned(&**client).await?;
    let rows = client
        .query(
            "SELECT s.id, last.data_last IS NULL AS never FROM sensors s \
             LEFT JOIN LATERAL (SELECT data_last FROM training_runs r WHERE r.sensor_id = s.id \
                                AND r.status = 'succeeded' ORDER BY r.id DESC LIMIT 1) last ON true \
             WHERE EXISTS (SELECT 1 FROM readings x WHERE x.sensor_id = s.id \
                           AND (last.data_last IS NULL OR x.ts > last.data_last + make_interval(secs => $1))) \
               AND NOT EXISTS (SELECT 1 FROM training_runs w WHERE w.sensor_id = s.id \
                               AND w.status IN ('queued', 'running')) \
             ORDER BY s.id",
            &[&(bg.settings.forecast.step_secs as f64)],
        )
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let never: bool = row.get(1);
        let trigger = if never {
            Trigger::NewSensor
        } else {
            Trigger::Schedule
        };
        ids.push(runs::enqueue(&**client, row.get(0), trigger, None).await?);
    }
    Ok(ids)
}

/// The training worker of this replica: claims queued runs one at a time and executes
/// them (the fit itself runs on the blocking pool, off the request threads). Once `stop`
/// turns true it claims nothing more; a run it is executing runs on.
pub async fn training_worker(bg: Background, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_secs(bg.settings.registry.poll_secs.max(1));
    loop {
        while !*stop.borrow() {
            let claimed = match bg.pool.get().await {
                Ok(client) => runs::claim_next(&**client, &bg.instance, None).await,
                Err(e) => Err(e.into()),
            };
            match claimed {
                Ok(Some(run)) => {
                    let outcome = trainer::execute(&bg.pool, &bg.settings, &run).await;
                    if outcome.is_ok_and(|o| o.promoted) {
                        bg.cache.invalidate(run.sensor_id);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "training worker cannot reach the database");
                    break;
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            // A dropped sender is a stop too.
            changed = stop.changed() => if changed.is_err() { return },
            _ = bg.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// The tick a cron firing belongs to: the schedule's latest occurrence at or before now,
/// so replicas whose clocks differ slightly agree on the key.
fn current_tick(expr: &str) -> DateTime<Utc> {
    let now = Utc::now();
    parse_cron(expr)
        .ok()
        .and_then(|c| {
            c.find_next_occurrence(&(now - chrono::Duration::seconds(30)), true)
                .ok()
        })
        .filter(|t| *t <= now + chrono::Duration::seconds(5))
        .unwrap_or_else(|| now.with_nanosecond_zero())
}

trait TruncNanos {
    fn with_nanosecond_zero(self) -> Self;
}

impl TruncNanos for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// The running scheduler and workers; stop them with [`Scheduler::shutdown`].
pub struct Scheduler {
    cron: Option<JobScheduler>,
    stop: watch::Sender<bool>,
    workers: tokio::task::JoinSet<()>,
    pool: Pool,
    instance: String,
    grace: Duration,
}

impl Scheduler {
    /// Builds the jobs enabled in config and starts them with `registry.training_workers`
    /// training workers.
    pub async fn start(bg: Background) -> Result<Self, String> {
        let (stop, stopped) = watch::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..bg.settings.registry.training_workers.max(1) {
            workers.spawn(training_worker(bg.clone(), stopped.clone()));
        }
        let s = &bg.settings.scheduler;
        let jobs: Vec<(JobKind, String)> = [
            (JobKind::Retrain, s.retrain_enabled, s.retrain_cron.clone()),
            (JobKind::Monitor, s.monitor_enabled, s.monitor_cron.clone()),
            (JobKind::Prune, s.prune_enabled, s.prune_cron.clone()),
        ]
        .into_iter()
        .filter(|(_, enabled, _)| *enabled)
        .map(|(k, _, e)| (k, e))
        .collect();
        let cron = if jobs.is_empty() {
            None
        } else {
            let sched = JobScheduler::new()
                .await
                .map_err(|e| format!("scheduler: {e}"))?;
            for (kind, expr) in jobs {
                let bg = bg.clone();
                let expr_for_tick = expr.clone();
                let job = Job::new_async(expr.as_str(), move |_id, _lock| {
                    let bg = bg.clone();
                    let expr = expr_for_tick.clone();
                    Box::pin(async move {
                        let tick = current_tick(&expr);
                        if let Err(e) = fire(&bg, kind, tick).await {
                            tracing::error!(job = kind.as_str(), error = %e, "scheduled job failed");
                        }
                    })
                })
                .map_err(|e| format!("scheduler.{}_cron `{expr}`: {e}", kind.as_str()))?;
                sched
                    .add(job)
                    .await
                    .map_err(|e| format!("scheduler: {e}"))?;
                tracing::info!(job = kind.as_str(), cron = %expr, "scheduled");
            }
            sched.start().await.map_err(|e| format!("scheduler: {e}"))?;
            Some(sched)
        };
        Ok(Self {
            cron,
            stop,
            workers,
            pool: bg.pool.clone(),
            instance: bg.instance.clone(),
            grace: Duration::from_secs(bg.settings.registry.shutdown_grace_secs),
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(mut c) = self.cron.take() {
            let _ = c.shutdown().await;
        }
        let _ = self.stop.send(true);
        // A fit in progress gets a moment to finish; after that it is given up rather than
        // holding up the shutdown, and its run goes back to the queue.
        let workers = &mut self.workers;
        let finished = tokio::time::timeout(self.grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            self.workers.abort_all();
            // Returns once every task is dropped, so none writes anything after the requeue.
            while self.workers.join_next().await.is_some() {}
        }
        let requeued = match self.pool.get().await {
            Ok(client) => runs::requeue_unfinished(&**client, &self.instance).await,
            Err(e) => Err(e.into()),
        };
        match requeued {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                runs = n,
                "training interrupted by the shutdown; the runs are queued again"
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not queue the interrupted training runs again")
            }
        }
    }
}
