//! Executes one training run: data → fit (off the async threads) → version → promotion.
//!
//! Promotion policy: the new version's algorithm and the champion's algorithm are both
//! scored by the same rolling-origin backtest on the same, current evaluation window (the
//! champion is "re-scored", not compared with its old number). The new version wins when
//! its MASE 1–24 h ≤ champion's × (1 − min_improvement); a tie goes to the new version,
//! which has seen newer data. Otherwise it stays a challenger, with the reason recorded.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use serde_json::json;

use super::runs::{self, ClaimedRun};
use super::{forecast_config, versions, RegistryError};
use crate::config::Settings;
use crate::domain::SensorKind;
use crate::forecast::{
    self, Algorithm, FittedModel, ForecastConfig, Metrics, Series, MODEL_FORMAT_VERSION,
    SMARTCORE_VERSION,
};

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: i64,
    pub version_id: i64,
    pub version: i32,
    pub algorithm: Algorithm,
    pub promoted: bool,
    pub reason: String,
}

/// The result of the CPU-bound part.
struct Fitted {
    model: FittedModel,
    chosen: Algorithm,
    baseline: bool,
    reports: Vec<(Algorithm, Metrics)>,
    /// MASE 1–24 of the champion's algorithm re-scored on the same window.
    champion_rescored: Option<f64>,
    mase_scale: Option<f64>,
}

/// Loads a sensor's readings of the last `days` days (in time order).
pub async fn load_readings(
    client: &impl tokio_postgres::GenericClient,
    sensor_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, f64)>, RegistryError> {
    let rows = client
        .query(
            "SELECT ts, value FROM readings WHERE sensor_id = $1 AND ts >= $2 ORDER BY ts",
            &[&sensor_id, &since],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The exact training series a run sees: the readings in its window, resampled.
pub async fn training_series(
    client: &impl tokio_postgres::GenericClient,
    settings: &Settings,
    sensor_id: i64,
    kind: SensorKind,
    until: Option<DateTime<Utc>>,
) -> Result<(Series, ForecastConfig), RegistryError> {
    let cfg = forecast_config(settings, kind.valid_range());
    let until = until.unwrap_or_else(Utc::now);
    let since = until - Duration::days(settings.forecast.train_days as i64);
    let readings: Vec<_> = load_readings(client, sensor_id, since)
        .await?
        .into_iter()
        .filter(|(ts, _)| *ts <= until)
        .collect();
    Ok((forecast::resample(&readings, &cfg), cfg))
}

/// Runs a claimed run to completion. A failure (error or panic) is recorded on the run
/// and returned; the champion is left alone.
pub async fn execute(
    pool: &Pool,
    settings: &Settings,
    run: &ClaimedRun,
) -> Result<RunOutcome, RegistryError> {
    let started = Instant::now();
    let heartbeat = runs::Heartbeat::start(pool.clone(), run.id, runs::HEARTBEAT_EVERY);
    let result = execute_inner(pool, settings, run, started).await;
    drop(heartbeat);
    crate::metrics::training_run(
        if result.is_ok() {
            "succeeded"
        } else {
            "failed"
        },
        started.elapsed(),
    );
    if let Err(e) = &result {
        tracing::error!(run = run.id, sensor_id = run.sensor_id, error = %e, "training run failed");
        match pool.get().await {
            Ok(client) => {
                if let Err(db) = runs::mark_failed(&**client, run.id, &e.to_string()).await {
                    tracing::error!(run = run.id, error = %db, "could not record the failure");
                }
            }
            Err(db) => tracing::error!(run = run.id, error = %db, "could not record the failure"),
        }
    }
    result
}

async fn execute_inner(
    pool: &Pool,
    settings: &Settings,
    run: &ClaimedRun,
    started: Instant,
) -> Result<RunOutcome, RegistryError> {
    let client = pool.get().await?;
    let kind_row = client
        .query_one("SELECT kind FROM sensors WHERE id = $1", &[&run.sensor_id])
        .await?;
    let kind: SensorKind = kind_row.get::<_, String>(0).parse().map_err(|_| {
        RegistryError::Corrupt(format!("sensor {} has an unknown kind", run.sensor_id))
    })?;
    // The data cut-off is the run's start, so late readings after it never change what
    // this run saw (its digest stays reproducible).
    let cutoff: DateTime<Utc> = client
        .query_one(
            "SELECT started_at FROM training_runs WHERE id = $1",
            &[&run.id],
        )
        .await?
        .get::<_, Option<DateTime<Utc>>>(0)
        .unwrap_or_else(Utc::now);
    let (series, cfg) =
        training_series(&**client, settings, run.sensor_id, kind, Some(cutoff)).await?;
    let champion = versions::champion(&**client, run.sensor_id).await?;
    drop(client);

    let digest = forecast::series_digest(&series);
    let observed = series.observed_len();
    let first = (!series.is_empty()).then(|| series.ts(0));
    let last = (!series.is_empty()).then(|| series.ts(series.len() - 1));
    if observed == 0 {
        return Err(RegistryError::Refused(
            "the sensor has no readings to train on".into(),
        ));
    }

    let champion_algo = champion
        .as_ref()
        .and_then(|c| c.algorithm.parse::<Algorithm>().ok());
    let candidates: Vec<Algorithm> = settings
        .forecast
        .candidates
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let requested = run.requested;
    let fit_series = series.clone();
    let fit_cfg = cfg.clone();
    let fitted = tokio::task::spawn_blocking(move || {
        let fitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fit_blocking(&fit_series, &fit_cfg, requested, &candidates, champion_algo)
        }));
        release_freed_memory();
        fitted
    })
    .await
    .map_err(|e| RegistryError::Panicked(e.to_string()))?
    .map_err(|p| {
        RegistryError::Panicked(
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into()),
        )
    })??;

    let bytes = fitted.model.to_bytes()?;
    let chosen_metrics = fitted
        .reports
        .iter()
        .find(|(a, _)| *a == fitted.chosen)
        .map(|(_, m)| m.clone());
    let new_mase = chosen_metrics
        .as_ref()
        .map(|m| m.mase_1_24)
        .filter(|m| m.is_finite());
    let (promote, reason) = decide(
        champion.as_ref(),
        fitted.baseline,
        new_mase,
        fitted.champion_rescored,
        settings.registry.min_improvement,
        settings.forecast.step_secs,
    );
    let table: Vec<serde_json::Value> = fitted
        .reports
        .iter()
        .map(|(a, m)| json!({"model": a.name(), "metrics": m}))
        .collect();
    let run_metrics = json!({
        "candidates": table,
        "chosen": fitted.chosen.name(),
        "champion_rescored_mase_1_24": fitted.champion_rescored,
    });
    let params = serde_json::to_value(&fitted.model.params).unwrap_or(serde_json::Value::Null);
    let version_metrics = chosen_metrics
        .as_ref()
        .and_then(|m| serde_json::to_value(m).ok())
        .unwrap_or_else(|| json!({}));
    let duration_ms = started.elapsed().as_millis() as i64;
    let step_secs = cfg.step_secs as i32;
    let rows = series.len() as i32;

    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    // Serialises version numbering and promotion per sensor.
    versions::lock_sensor(&*tx, run.sensor_id).await?;
    // The comparison above is against the champion when the run began. An operator's
    // promote or rollback (or a run of this sensor whose process was wrongly thought gone)
    // may have replaced it meanwhile: then this version is kept, unpromoted, and the next
    // run compares against the new champion.
    let champion_now = versions::champion(&*tx, run.sensor_id).await?;
    let (promote, reason) =
        if champion_now.as_ref().map(|c| c.id) == champion.as_ref().map(|c| c.id) {
            (promote, reason)
        } else {
            let now = champion_now.map_or("none".to_string(), |c| format!("v{}", c.version));
            (
                false,
                format!("not compared: the champion changed to {now} while this run was fitting"),
            )
        };
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE sensor_id = $1",
            &[&run.sensor_id],
        )
        .await?
        .get(0);
    tx.execute(
        "UPDATE training_runs SET status = 'succeeded', finished_at = now(), duration_ms = $2, algorithm = $3, \
         params = $4, step_secs = $5, data_first = $6, data_last = $7, data_rows = $8, data_digest = $9, \
         metrics = $10, error = NULL WHERE id = $1",
        &[
            &run.id,
            &duration_ms,
            &fitted.chosen.name(),
            &params,
            &step_secs,
            &first,
            &last,
            &rows,
            &digest,
            &run_metrics,
        ],
    )
    .await?;
    // Inserted as a challenger; `set_champion` below promotes it when it wins.
    let status = "challenger";
    let version_id: i64 = tx
        .query_one(
            "INSERT INTO model_versions (sensor_id, version, run_id, algorithm, baseline, model, format_version, \
             smartcore_version, feature_spec_version, metrics, mase_1_24, mase_scale, status, status_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
            &[
                &run.sensor_id,
                &version,
                &run.id,
                &fitted.chosen.name(),
                &fitted.baseline,
                &bytes,
                &(MODEL_FORMAT_VERSION as i32),
                &SMARTCORE_VERSION,
                &(fitted.model.feature_spec.version as i32),
                &version_metrics,
                &new_mase,
                &fitted.mase_scale,
                &status,
                &reason,
            ],
        )
        .await?
        .get(0);
    if promote {
        let kind = if champion.is_some() {
            "promote"
        } else {
            "initial"
        };
        versions::set_champion(&*tx, run.sensor_id, version_id, kind, &reason).await?;
    }
    tx.commit().await?;
    tracing::info!(
        run = run.id, sensor_id = run.sensor_id, version, algorithm = fitted.chosen.name(),
        promoted = promote, %reason, duration_ms, "training run succeeded"
    );
    Ok(RunOutcome {
        run_id: run.id,
        version_id,
        version,
        algorithm: fitted.chosen,
        promoted: promote,
        reason,
    })
}

/// The CPU-bound part: choose and fit, and re-score the champion's algorithm.
fn fit_blocking(
    series: &Series,
    cfg: &ForecastConfig,
    requested: Option<Algorithm>,
    candidates: &[Algorithm],
    champion_algo: Option<Algorithm>,
) -> Result<Fitted, RegistryError> {
    let period = (86_400 / cfg.step_secs.max(1)) as usize;
    // The same scale the backtest divides by, over the whole training series.
    let mase_scale = forecast::mase_scale(&series.values, series.len(), period).ok();
    let enough_history = series.observed_len() >= cfg.min_history_steps;
    // The models whose scores are compared in this run, champion included: on a series
    // shorter than the window they must share their backtest origins to be comparable.
    let with_champion = |algos: &[Algorithm]| -> Vec<Algorithm> {
        algos.iter().copied().chain(champion_algo).collect()
    };
    let (model, chosen, mut reports, compared) = match requested {
        Some(algo) => {
            if !algo.is_baseline() && !enough_history {
                return Err(RegistryError::Refused(format!(
                    "{} needs {} steps of history; the sensor has {}",
                    algo.name(),
                    cfg.min_history_steps,
                    series.observed_len()
                )));
            }
            let compared = with_champion(&[algo]);
            // Three to four weeks of history fit a learned model but cannot backtest it: the
            // requested model is then fitted untested, as automatic selection would serve it.
            let reports = if forecast::untested_only(series, algo, cfg) {
                tracing::info!(
                    algorithm = algo.name(),
                    "fitting the requested model untested"
                );
                Vec::new()
            } else {
                vec![(
                    algo,
                    forecast::backtest_among(series, algo, cfg, &compared)?,
                )]
            };
            (forecast::fit(series, algo, cfg)?, algo, reports, compared)
        }
        None if !enough_history => {
            // Too little history for a learned model: the baseline serves, labelled as such.
            let algo = Algorithm::SeasonalNaive;
            let compared = with_champion(&[algo]);
            let reports = forecast::backtest_among(series, algo, cfg, &compared)
                .map(|m| vec![(algo, m)])
                .unwrap_or_default();
            (forecast::fit(series, algo, cfg)?, algo, reports, compared)
        }
        None => {
            // `select_and_fit` scores the candidates on their shared origins; a champion
            // outside them is re-scored on the same ones below.
            let trained = forecast::select_and_fit(series, candidates, cfg)?;
            let compared = candidates.to_vec();
            (trained.model, trained.chosen, trained.reports, compared)
        }
    };
    let champion_rescored = match champion_algo {
        None => None,
        Some(a) => match reports.iter().find(|(r, _)| *r == a) {
            Some((_, m)) => Some(m.mase_1_24),
            None => match forecast::backtest_among(series, a, cfg, &compared) {
                Ok(m) => {
                    let score = m.mase_1_24;
                    reports.push((a, m));
                    Some(score)
                }
                Err(e) => {
                    tracing::warn!(error = %e, algorithm = a.name(), "could not re-score the champion");
                    None
                }
            },
        },
    };
    Ok(Fitted {
        baseline: chosen.is_baseline(),
        model,
        chosen,
        reports,
        champion_rescored,
        mase_scale,
    })
}

/// The promotion rule (see the module docs); returns (promote?, reason).
fn decide(
    champion: Option<&versions::VersionRecord>,
    new_is_baseline: bool,
    new_mase: Option<f64>,
    champion_rescored: Option<f64>,
    min_improvement: f64,
    step_secs: i64,
) -> (bool, String) {
    let Some(champion) = champion else {
        return (true, "first model of this sensor".into());
    };
    if champion.baseline && !new_is_baseline {
        return (true, "a learned model replaces the baseline".into());
    }
    match (new_mase, champion_rescored) {
        (Some(new), Some(old)) => {
            let bar = old * (1.0 - min_improvement);
            let block = crate::forecast::horizon_block(24, step_secs);
            if new <= bar {
                (
                    true,
                    format!("MASE {block} {new:.3} vs champion v{} re-scored {old:.3} on the same window", champion.version),
                )
            } else {
                (
                    false,
                    format!(
                        "not better: MASE {block} {new:.3} vs champion v{} re-scored {old:.3} (needs ≤ {bar:.3})",
                        champion.version
                    ),
                )
            }
        }
        (Some(_), None) => (
            true,
            format!(
                "champion v{} could not be re-scored on the current data",
                champion.version
            ),
        ),
        // A sensor too young to backtest a learned model is served one untested; until it
        // can be scored, the newer fit (which has seen newer data) replaces the older one.
        (None, None) if !new_is_baseline && !champion.baseline => (
            true,
            format!(
                "neither this version nor champion v{} can be backtested on this history yet; the newer one has seen newer data",
                champion.version
            ),
        ),
        (None, _) => (false, "no backtest score for the new version".into()),
    }
}

/// Trains the given runs in this process (the CLI's `train`), claiming each so a serving
/// replica does not run it too. Returns one result per run.
pub async fn run_claimed(
    pool: &Pool,
    settings: &Settings,
    instance: &str,
    run_ids: &[i64],
    on_done: impl FnMut(&Result<RunOutcome, RegistryError>),
) -> Result<Vec<Result<RunOutcome, RegistryError>>, RegistryError> {
    // `registry.training_workers` claimers side by side, as in `serve`: each fit runs on
    // the blocking pool, so they run in parallel though they are polled here together.
    let on_done = Mutex::new(on_done);
    let results = Mutex::new(Vec::new());
    let claimer = || async {
        let mut warned = false;
        loop {
            let client = pool.get().await?;
            let claimed = runs::claim_next(&**client, instance, Some(run_ids)).await?;
            let Some(run) = claimed else {
                // A run still queued now waits for its sensor: another process is training
                // it (or died doing so, and the lease will say so within minutes).
                let waiting = runs::queued_among(&**client, run_ids).await?;
                drop(client);
                if waiting.is_empty() {
                    return Ok::<(), RegistryError>(());
                }
                if !warned {
                    tracing::warn!(
                        runs = ?waiting,
                        "waiting: another process is training the sensor of these runs"
                    );
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            };
            drop(client);
            let result = execute(pool, settings, &run).await;
            (on_done.lock().unwrap_or_else(PoisonError::into_inner))(&result);
            results
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(result);
        }
    };
    let workers = settings.registry.training_workers.max(1);
    let outcomes = futures_util::future::join_all((0..workers).map(|_| claimer())).await;
    outcomes.into_iter().collect::<Result<(), _>>()?;
    Ok(results.into_inner().unwrap_or_else(PoisonError::into_inner))
}

/// Loads a stored model; `None` when its format can no longer be read (it must be
/// refitted, never served wrong).
pub fn load_model(bytes: &[u8], format_version: i32) -> Option<FittedModel> {
    if format_version != MODEL_FORMAT_VERSION as i32 {
        return None;
    }
    FittedModel::from_bytes(bytes).ok()
}

/// Gives the memory a fit freed back to the operating system.
///
/// A fit allocates and frees tens of MiB of feature frames and matrices. glibc keeps freed
/// memory in its arenas for reuse, and after a fit most of it sits in free chunks it will
/// not return by itself: in the soak (`benches/soak.sh`) the server settled at 137 MiB
/// resident with 33 MiB in use, and one `malloc_trim` took it to 58 MiB. A server fits once
/// a night per sensor, so holding that memory for the next fit buys nothing. The trim
/// takes milliseconds.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
