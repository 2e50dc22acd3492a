//! Live monitoring: issue the champions' forecasts, score the issued forecasts against
//! the readings that arrived for their target steps, and retrain on drift.
//!
//! The drift rule: over the last 7 days, live MASE 1–24 h (issued forecasts with horizon
//! 1–24 whose target step has readings, scaled like the champion's backtest) above the
//! champion's backtest MASE × (1 + degradation), or above 1.0, queues a `drift` run —
//! at most once per `cooldown_hours` per sensor.

use deadpool_postgres::Pool;
use serde::Serialize;

use super::{runs, serving, RegistryError, Trigger};
use crate::config::Settings;

/// One live score of one sensor over one window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LiveScore {
    pub sensor_id: i64,
    pub window_hours: i32,
    pub n: i64,
    pub mae_1_24: Option<f64>,
    pub mase_1_24: Option<f64>,
    pub coverage_80: Option<f64>,
    pub coverage_95: Option<f64>,
}

/// What one monitor pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonitorReport {
    pub forecasts_issued: usize,
    pub scores: Vec<LiveScore>,
    /// Sensors queued for a drift retrain, with their queued run ids.
    pub drift_runs: Vec<(i64, i64)>,
}

const WINDOWS_HOURS: [i32; 2] = [24, 168];

/// One pass over every sensor with a champion.
pub async fn run_once(
    pool: &Pool,
    settings: &Settings,
    cache: &serving::ForecastCache,
) -> Result<MonitorReport, RegistryError> {
    let mut report = MonitorReport::default();
    struct Champion {
        sensor_id: i64,
        name: String,
        version_id: i64,
        backtest_mase: Option<f64>,
        scale: Option<f64>,
    }
    let sensors: Vec<Champion> = {
        let client = pool.get().await?;
        client
            .query(
                "SELECT s.id, s.name, v.id, v.mase_1_24, v.mase_scale FROM sensors s \
                 JOIN model_versions v ON v.sensor_id = s.id AND v.status = 'champion' ORDER BY s.id",
                &[],
            )
            .await?
            .iter()
            .map(|r| Champion {
                sensor_id: r.get(0),
                name: r.get(1),
                version_id: r.get(2),
                backtest_mase: r.get(3),
                scale: r.get(4),
            })
            .collect()
    };
    for Champion {
        sensor_id,
        name,
        version_id,
        backtest_mase,
        scale,
    } in sensors
    {
        // Issue (and so record) the current forecast, once per origin.
        match serving::checked_forecast_for(pool, settings, cache, &name, settings.forecast.horizon)
            .await
        {
            Ok(_) => report.forecasts_issued += 1,
            Err(e) => tracing::warn!(sensor = %name, error = %e, "could not issue a forecast"),
        }
        for window in WINDOWS_HOURS {
            let score = score_window(pool, settings, sensor_id, version_id, window, scale).await?;
            if window == 168 {
                if let Some(run) = apply_drift_rule(pool, settings, &score, backtest_mase).await? {
                    report.drift_runs.push((sensor_id, run));
                }
            }
            report.scores.push(score);
        }
    }
    Ok(report)
}

/// Scores the issued forecasts (horizons 1–24) whose target step lies in the window and
/// has readings, and records the score.
async fn score_window(
    pool: &Pool,
    settings: &Settings,
    sensor_id: i64,
    version_id: i64,
    window_hours: i32,
    scale: Option<f64>,
) -> Result<LiveScore, RegistryError> {
    let client = pool.get().await?;
    let step = settings.forecast.step_secs as f64;
    let row = client
        .query_one(
            "WITH actual AS ( \
                 SELECT to_timestamp(floor(extract(epoch FROM ts)::float8 / $3::float8) * $3::float8) AS bucket, avg(value) AS v \
                 FROM readings WHERE sensor_id = $1 \
                   AND ts >= now() - make_interval(hours => $2) - make_interval(secs => $3::float8) \
                 GROUP BY 1) \
             SELECT count(*), avg(abs(f.value - a.v)), \
                    avg(CASE WHEN a.v BETWEEN f.lo80 AND f.hi80 THEN 1.0 ELSE 0.0 END)::float8, \
                    avg(CASE WHEN a.v BETWEEN f.lo95 AND f.hi95 THEN 1.0 ELSE 0.0 END)::float8 \
             FROM issued_forecasts f JOIN actual a ON a.bucket = f.target_ts \
             WHERE f.sensor_id = $1 AND f.horizon BETWEEN 1 AND 24 \
               AND f.target_ts >= now() - make_interval(hours => $2) \
               AND f.target_ts + make_interval(secs => $3::float8) <= now()",
            &[&sensor_id, &window_hours, &step],
        )
        .await?;
    let n: i64 = row.get(0);
    let mae: Option<f64> = row.get(1);
    let score = LiveScore {
        sensor_id,
        window_hours,
        n,
        mae_1_24: mae,
        mase_1_24: mae.zip(scale).map(|(m, s)| m / s),
        coverage_80: row.get(2),
        coverage_95: row.get(3),
    };
    client
        .execute(
            "INSERT INTO live_scores (sensor_id, model_version_id, window_hours, n, mae_1_24, mase_1_24, \
             coverage_80, coverage_95) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &sensor_id,
                &version_id,
                &window_hours,
                &(n as i32),
                &score.mae_1_24,
                &score.mase_1_24,
                &score.coverage_80,
                &score.coverage_95,
            ],
        )
        .await?;
    Ok(score)
}

async fn apply_drift_rule(
    pool: &Pool,
    settings: &Settings,
    score: &LiveScore,
    backtest_mase: Option<f64>,
) -> Result<Option<i64>, RegistryError> {
    let Some(live) = score.mase_1_24 else {
        return Ok(None);
    };
    if score.n < settings.monitor.min_points {
        return Ok(None);
    }
    let limit = backtest_mase.map(|b| b * (1.0 + settings.monitor.degradation));
    let block = crate::forecast::horizon_block(24, settings.forecast.step_secs);
    let reason = if live > 1.0 {
        format!("live MASE {block} {live:.3} is worse than seasonal naive (> 1.0)")
    } else if let Some(limit) = limit.filter(|l| live > *l) {
        format!("live MASE {block} {live:.3} exceeds backtest {:.3} by more than {:.0} % (limit {limit:.3})",
            backtest_mase.unwrap_or_default(), settings.monitor.degradation * 100.0)
    } else {
        return Ok(None);
    };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT 1 FROM sensors WHERE id = $1 FOR UPDATE",
        &[&score.sensor_id],
    )
    .await?;
    let recent = tx
        .query_opt(
            "SELECT 1 FROM drift_events WHERE sensor_id = $1 AND at > now() - make_interval(hours => $2)",
            &[&score.sensor_id, &(settings.monitor.cooldown_hours as i32)],
        )
        .await?
        .is_some();
    if recent {
        return Ok(None);
    }
    let run_id = runs::enqueue(&*tx, score.sensor_id, Trigger::Drift, None).await?;
    tx.execute(
        "INSERT INTO drift_events (sensor_id, live_mase, backtest_mase, reason, run_id) VALUES ($1, $2, $3, $4, $5)",
        &[&score.sensor_id, &live, &backtest_mase, &reason, &run_id],
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(sensor_id = score.sensor_id, %reason, run_id, "drift: retraining early");
    Ok(Some(run_id))
}

/// Latest live scores of a sensor (newest first), for the API and pages.
pub async fn recent_scores(
    client: &impl tokio_postgres::GenericClient,
    sensor_id: i64,
    limit: i64,
) -> Result<Vec<(chrono::DateTime<chrono::Utc>, LiveScore)>, RegistryError> {
    let rows = client
        .query(
            "SELECT scored_at, window_hours, n, mae_1_24, mase_1_24, coverage_80, coverage_95 FROM live_scores \
             WHERE sensor_id = $1 ORDER BY id DESC LIMIT $2",
            &[&sensor_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let n: i32 = r.get(2);
            (
                r.get(0),
                LiveScore {
                    sensor_id,
                    window_hours: r.get(1),
                    n: n as i64,
                    mae_1_24: r.get(3),
                    mase_1_24: r.get(4),
                    coverage_80: r.get(5),
                    coverage_95: r.get(6),
                },
            )
        })
        .collect())
}
