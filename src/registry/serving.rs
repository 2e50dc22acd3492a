//! Serving forecasts: the champion of a sensor, kept in memory, applied to the latest
//! readings. Every forecast issued for a new origin is stored so the monitor can score it.
//!
//! Caching: fitted models by version id (immutable, so never stale), and the last
//! forecast per sensor keyed by (champion version, time of the last reading). One cheap
//! indexed query checks both keys. A request makes it only when the sensor's forecast
//! was last checked more than `registry.serve_recheck_ms` ago: a round trip to
//! PostgreSQL per request would cost more than everything else the request does. What
//! changes a forecast through this process (a committed reading, a promotion, a
//! rollback, a training run) calls [`ForecastCache::invalidate`], so only changes made
//! by another process (a replica, the CLI, SQL) wait up to the re-check interval. The
//! monitor always checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{forecast_config, runs, trainer, RegistryError, Trigger};
use crate::config::Settings;
use crate::domain::SensorKind;
use crate::forecast::{self, Algorithm, FittedModel, Forecast, ForecastStep};

/// How a forecast was made, for the API and the pages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    /// Version number of the champion; `None` when the on-the-fly baseline serves.
    pub version: Option<i32>,
    #[serde(skip)]
    pub version_id: Option<i64>,
    pub algorithm: String,
    pub baseline: bool,
    /// The champion's headline backtest scores (`mase_1_24`, `coverage_80`, …). The MAE
    /// of every horizon is left to `GET /api/v1/sensors/{name}/models`: it was a fifth of
    /// each forecast's body.
    pub metrics: serde_json::Value,
}

/// A version's stored metrics without the per-horizon MAE list.
fn headline_metrics(mut metrics: serde_json::Value) -> serde_json::Value {
    if let Some(m) = metrics.as_object_mut() {
        m.remove("mae_by_horizon");
    }
    metrics
}

/// A forecast for a sensor, as served.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServedForecast {
    pub sensor: String,
    /// The forecast origin: the last observed step, from which every step is counted.
    pub issued_at: DateTime<Utc>,
    pub model: ModelInfo,
    pub steps: Vec<ForecastStep>,
}

struct CachedForecast {
    version_id: Option<i64>,
    last_reading: DateTime<Utc>,
    model: ModelInfo,
    forecast: Arc<Forecast>,
    /// The API's JSON of this forecast by number of steps, written once: a busy sensor's
    /// forecast is read far more often than it changes. The body names the sensor, which
    /// can be renamed, so the bodies are kept for the name they were written for.
    json: Mutex<CachedJson>,
}

#[derive(Default)]
struct CachedJson {
    sensor: String,
    by_steps: HashMap<usize, Bytes>,
}

impl CachedForecast {
    fn json(&self, sensor: &str, steps: usize) -> Result<Bytes, RegistryError> {
        let cached = self.json.lock().ok().and_then(|c| {
            (c.sensor == sensor)
                .then(|| c.by_steps.get(&steps).cloned())
                .flatten()
        });
        if let Some(body) = cached {
            return Ok(body);
        }
        let body = Bytes::from(
            serde_json::to_vec(&served(sensor, self, steps))
                .map_err(|e| RegistryError::Corrupt(format!("forecast JSON: {e}")))?,
        );
        if let Ok(mut c) = self.json.lock() {
            if c.sensor != sensor {
                *c = CachedJson {
                    sensor: sensor.to_owned(),
                    by_steps: HashMap::new(),
                };
            }
            c.by_steps.insert(steps, body.clone());
        }
        Ok(body)
    }
}

/// Shared by all request handlers of a process.
#[derive(Default)]
pub struct ForecastCache {
    /// sensor id → (champion version id, its model): one model per sensor, so replaced
    /// champions do not pile up in memory.
    models: RwLock<HashMap<i64, (i64, Arc<FittedModel>)>>,
    forecasts: RwLock<HashMap<i64, Arc<CachedForecast>>>,
    /// sensor name → id, for the fast path.
    ids: RwLock<HashMap<String, i64>>,
    /// sensor id → when its cached forecast was last confirmed current by the database.
    checked: RwLock<HashMap<i64, Instant>>,
    /// How long a confirmation is trusted; zero: never.
    recheck: std::time::Duration,
}

impl ForecastCache {
    /// A cache that trusts a confirmed forecast for `recheck_ms` milliseconds.
    pub fn new(recheck_ms: u64) -> Self {
        Self {
            recheck: std::time::Duration::from_millis(recheck_ms),
            ..Self::default()
        }
    }

    /// Something that changes `sensor_id`'s forecast happened in this process: its next
    /// request checks the database.
    pub fn invalidate(&self, sensor_id: i64) {
        let present = self
            .checked
            .read()
            .map(|m| m.contains_key(&sensor_id))
            .unwrap_or(true);
        if present {
            if let Ok(mut m) = self.checked.write() {
                m.remove(&sensor_id);
            }
        }
    }

    /// [`invalidate`](Self::invalidate) by sensor name.
    pub fn invalidate_sensor(&self, sensor: &str) {
        let id = self.ids.read().ok().and_then(|m| m.get(sensor).copied());
        if let Some(id) = id {
            self.invalidate(id);
        }
    }

    fn confirm(&self, sensor: &str, sensor_id: i64) {
        if self.recheck.is_zero() {
            return;
        }
        if let Ok(mut m) = self.checked.write() {
            m.insert(sensor_id, Instant::now());
        }
        let known = self
            .ids
            .read()
            .map(|m| m.get(sensor) == Some(&sensor_id))
            .unwrap_or(false);
        if !known {
            if let Ok(mut m) = self.ids.write() {
                m.insert(sensor.to_owned(), sensor_id);
            }
        }
    }

    /// The cached forecast of `sensor` if it was confirmed within the re-check interval.
    fn recently_confirmed(&self, sensor: &str) -> Option<Arc<CachedForecast>> {
        if self.recheck.is_zero() {
            return None;
        }
        let id = *self.ids.read().ok()?.get(sensor)?;
        let at = *self.checked.read().ok()?.get(&id)?;
        if at.elapsed() >= self.recheck {
            return None;
        }
        self.forecasts.read().ok()?.get(&id).cloned()
    }
}

fn served(sensor: &str, entry: &CachedForecast, steps: usize) -> ServedForecast {
    ServedForecast {
        sensor: sensor.to_string(),
        issued_at: entry.forecast.origin,
        model: entry.model.clone(),
        steps: entry.forecast.steps.iter().take(steps).cloned().collect(),
    }
}

/// Parses a horizon such as `48h`, `5d`, `90m` or a bare number of hours into steps.
pub fn parse_horizon(text: &str, step_secs: i64, max_steps: usize) -> Result<usize, RegistryError> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "h"),
    };
    let n: i64 = num.parse().map_err(|_| {
        RegistryError::Refused(format!("horizon `{text}`: expected e.g. 1h, 48h or 5d"))
    })?;
    let unit_secs: i64 = match unit {
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(RegistryError::Refused(format!(
                "horizon `{text}`: unit must be m, h or d"
            )))
        }
    };
    // Checked: `?horizon=106751991167301d` overflowed i64 (found by schemathesis).
    let secs = n.checked_mul(unit_secs).ok_or_else(|| {
        RegistryError::Refused(format!(
            "horizon `{text}` is far beyond the longest forecast"
        ))
    })?;
    let steps = secs / step_secs.max(1);
    if secs % step_secs.max(1) != 0 || steps < 1 || steps as usize > max_steps {
        return Err(RegistryError::Refused(format!(
            "horizon `{text}` must be a whole number of {step_secs}-second steps between 1 and {max_steps}"
        )));
    }
    Ok(steps as usize)
}

/// The champion's forecast for `sensor`, `steps` steps ahead, as readers get it: from
/// memory when it was confirmed current within `registry.serve_recheck_ms`.
pub async fn forecast_for(
    pool: &Pool,
    settings: &Settings,
    cache: &ForecastCache,
    sensor: &str,
    steps: usize,
) -> Result<ServedForecast, RegistryError> {
    let entry = current_entry(pool, settings, cache, sensor).await?;
    Ok(served(sensor, &entry, steps))
}

/// [`forecast_for`] as the API's JSON body.
pub async fn forecast_json(
    pool: &Pool,
    settings: &Settings,
    cache: &ForecastCache,
    sensor: &str,
    steps: usize,
) -> Result<Bytes, RegistryError> {
    let entry = current_entry(pool, settings, cache, sensor).await?;
    entry.json(sensor, steps)
}

/// The cached forecast if it was confirmed recently, else one checked against the database.
async fn current_entry(
    pool: &Pool,
    settings: &Settings,
    cache: &ForecastCache,
    sensor: &str,
) -> Result<Arc<CachedForecast>, RegistryError> {
    match cache.recently_confirmed(sensor) {
        Some(entry) => Ok(entry),
        None => checked_entry(pool, settings, cache, sensor).await,
    }
}

/// The champion's forecast for `sensor`, checked against the database first.
pub async fn checked_forecast_for(
    pool: &Pool,
    settings: &Settings,
    cache: &ForecastCache,
    sensor: &str,
    steps: usize,
) -> Result<ServedForecast, RegistryError> {
    let entry = checked_entry(pool, settings, cache, sensor).await?;
    Ok(served(sensor, &entry, steps))
}

async fn checked_entry(
    pool: &Pool,
    settings: &Settings,
    cache: &ForecastCache,
    sensor: &str,
) -> Result<Arc<CachedForecast>, RegistryError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT s.id, s.kind, v.id, v.version, v.algorithm, v.baseline, v.metrics, v.format_version, \
                    (SELECT max(ts) FROM readings r WHERE r.sensor_id = s.id) \
             FROM sensors s LEFT JOIN model_versions v ON v.sensor_id = s.id AND v.status = 'champion' \
             WHERE s.name = $1",
            &[&sensor],
        )
        .await?
        .ok_or_else(|| RegistryError::UnknownSensor(sensor.to_string()))?;
    let sensor_id: i64 = row.get(0);
    let kind: SensorKind = row
        .get::<_, String>(1)
        .parse()
        .map_err(|_| RegistryError::Corrupt(format!("sensor `{sensor}` has an unknown kind")))?;
    let version_id: Option<i64> = row.get(2);
    let last_reading: Option<DateTime<Utc>> = row.get(8);
    let Some(last_reading) = last_reading else {
        return Err(RegistryError::Refused(format!(
            "sensor `{sensor}` has no readings yet"
        )));
    };

    let cached = cache
        .forecasts
        .read()
        .ok()
        .and_then(|m| m.get(&sensor_id).cloned())
        .filter(|c| c.version_id == version_id && c.last_reading == last_reading);
    let entry = match cached {
        Some(c) => c,
        None => {
            let champion = match version_id {
                Some(id) => {
                    let info = ModelInfo {
                        version: row.get(3),
                        version_id: Some(id),
                        algorithm: row.get(4),
                        baseline: row.get(5),
                        metrics: headline_metrics(row.get(6)),
                    };
                    load_champion(&client, cache, sensor_id, id, row.get(7))
                        .await?
                        .map(|m| (m, info))
                }
                None => None,
            };
            if version_id.is_some() && champion.is_none() {
                // The stored model can no longer be read by this build: refit it, and
                // serve the baseline meanwhile rather than anything wrong.
                tracing::warn!(
                    sensor,
                    "champion model format is unreadable; queueing a refit"
                );
                runs::enqueue(&**client, sensor_id, Trigger::Manual, None).await?;
            }
            let cfg = forecast_config(settings, kind.valid_range());
            let horizon = cfg.horizon;
            // The same history a training run reads: the analog model searches all of it,
            // so serving with less would forecast from a different (shorter) past.
            let since = last_reading - Duration::days(settings.forecast.train_days as i64);
            let readings = step_means(&client, sensor_id, since, cfg.step_secs).await?;
            drop(client);
            let (forecast, model, served_id) = tokio::task::spawn_blocking(move || {
                let series = forecast::resample(&readings, &cfg);
                match champion {
                    Some((model, info)) => model
                        .forecast(&series, horizon)
                        .map(|f| (f, info, version_id)),
                    None => {
                        let algo = Algorithm::SeasonalNaive;
                        let model = forecast::fit(&series, algo, &cfg)?;
                        let info = ModelInfo {
                            version: None,
                            version_id: None,
                            algorithm: algo.name().to_string(),
                            baseline: true,
                            metrics: serde_json::json!({}),
                        };
                        model.forecast(&series, horizon).map(|f| (f, info, None))
                    }
                }
            })
            .await
            .map_err(|e| RegistryError::Panicked(e.to_string()))??;
            let entry = Arc::new(CachedForecast {
                version_id,
                last_reading,
                model,
                forecast: Arc::new(forecast),
                json: Mutex::default(),
            });
            if let Ok(mut m) = cache.forecasts.write() {
                m.insert(sensor_id, entry.clone());
            }
            if let Some(vid) = served_id {
                record_issued(pool, sensor_id, vid, &entry.forecast).await;
            }
            entry
        }
    };
    // Only a champion's forecast is worth trusting without a check: the baseline served
    // before the first training run is replaced as soon as one finishes.
    if entry.version_id.is_some() {
        cache.confirm(sensor, sensor_id);
    }
    Ok(entry)
}

/// Readings averaged per grid step by PostgreSQL: the resampler then sees one value per
/// step (the same means it would compute), and a year of minute readings stays cheap.
async fn step_means(
    client: &deadpool_postgres::Client,
    sensor_id: i64,
    since: DateTime<Utc>,
    step_secs: i64,
) -> Result<Vec<(DateTime<Utc>, f64)>, RegistryError> {
    let step = step_secs as f64;
    let rows = client
        .query(
            "SELECT to_timestamp(floor(extract(epoch FROM ts)::float8 / $3) * $3) AS bucket, avg(value) \
             FROM readings WHERE sensor_id = $1 AND ts >= $2 GROUP BY 1 ORDER BY 1",
            &[&sensor_id, &since, &step],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn load_champion(
    client: &deadpool_postgres::Client,
    cache: &ForecastCache,
    sensor_id: i64,
    version_id: i64,
    format_version: i32,
) -> Result<Option<Arc<FittedModel>>, RegistryError> {
    let cached = cache
        .models
        .read()
        .ok()
        .and_then(|m| m.get(&sensor_id).cloned())
        .filter(|(v, _)| *v == version_id);
    if let Some((_, m)) = cached {
        return Ok(Some(m));
    }
    let row = client
        .query_one(
            "SELECT model FROM model_versions WHERE id = $1",
            &[&version_id],
        )
        .await?;
    // NULL only if the version stopped being the champion since it was read and retention
    // then deleted its model (the schema keeps a champion's): handled like an unreadable one.
    let bytes: Option<Vec<u8>> = row.get(0);
    let Some(model) = bytes.and_then(|b| trainer::load_model(&b, format_version)) else {
        return Ok(None);
    };
    let model = Arc::new(model);
    if let Ok(mut m) = cache.models.write() {
        m.insert(sensor_id, (version_id, model.clone()));
    }
    Ok(Some(model))
}

/// Stores a champion's forecast once per origin (a repeat is a no-op). A failure is
/// logged, not returned: the reader still gets the forecast.
async fn record_issued(pool: &Pool, sensor_id: i64, version_id: i64, forecast: &Forecast) {
    let n = forecast.steps.len();
    let mut targets = Vec::with_capacity(n);
    let mut horizons = Vec::with_capacity(n);
    let (mut v, mut l8, mut h8, mut l9, mut h9) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, s) in forecast.steps.iter().enumerate() {
        targets.push(s.ts);
        horizons.push(i as i32 + 1);
        v.push(s.value);
        l8.push(s.lo80);
        h8.push(s.hi80);
        l9.push(s.lo95);
        h9.push(s.hi95);
    }
    let result = async {
        let client = pool.get().await?;
        client
            .execute(
                "INSERT INTO issued_forecasts (sensor_id, model_version_id, issued_at, target_ts, horizon, \
                 value, lo80, hi80, lo95, hi95) \
                 SELECT $1, $2, $3, t.* FROM unnest($4::timestamptz[], $5::int[], $6::float8[], $7::float8[], \
                 $8::float8[], $9::float8[], $10::float8[]) AS t ON CONFLICT DO NOTHING",
                &[&sensor_id, &version_id, &forecast.origin, &targets, &horizons, &v, &l8, &h8, &l9, &h9],
            )
            .await?;
        Ok::<(), RegistryError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(sensor_id, error = %e, "could not record the issued forecast");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_horizon;

    #[test]
    fn horizons_parse_and_absurd_ones_are_refused_not_overflowed() {
        assert_eq!(parse_horizon("48h", 3600, 120).ok(), Some(48));
        assert_eq!(parse_horizon("5d", 3600, 120).ok(), Some(120));
        assert_eq!(parse_horizon("24", 3600, 120).ok(), Some(24));
        for bad in [
            "106751991167301d",
            "9223372036854775807h",
            "99999999999999999999h",
            "6d",
            "0h",
            "-1h",
            "1y",
            "",
        ] {
            assert!(parse_horizon(bad, 3600, 120).is_err(), "{bad}");
        }
    }
}
