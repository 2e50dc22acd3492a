//! The model registry and the MLOps loop built on it.
//!
//! - `runs`: training runs as a durable work queue (queued → running → done), claimed
//!   with `FOR UPDATE SKIP LOCKED` so replicas share the work;
//! - `trainer`: one run end to end — read the data, fit off the async threads, record
//!   what it saw (digest) and scored, store a version, apply the promotion policy;
//! - `versions`: versions, champion, promotions and rollbacks;
//! - `serving`: the champion's forecast for a sensor (cached), recorded as issued;
//! - `monitor`: scores issued forecasts against the readings that arrived; drift rule;
//! - `retention`: deletes issued forecasts past `[retention]`'s limit.

pub mod monitor;
pub mod retention;
pub mod runs;
pub mod serving;
pub mod trainer;
pub mod versions;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::forecast::{ForecastConfig, ForecastError};

/// Why a training run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Schedule,
    Drift,
    Manual,
    NewSensor,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Drift => "drift",
            Trigger::Manual => "manual",
            Trigger::NewSensor => "new-sensor",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "schedule" => Trigger::Schedule,
            "drift" => Trigger::Drift,
            "manual" => Trigger::Manual,
            "new-sensor" => Trigger::NewSensor,
            other => return Err(RegistryError::Corrupt(format!("unknown trigger `{other}`"))),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("unknown sensor `{0}`")]
    UnknownSensor(String),
    #[error("no training run {0}")]
    UnknownRun(i64),
    #[error("no model version {0}")]
    UnknownVersion(i64),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Forecast(#[from] ForecastError),
    #[error("training panicked: {0}")]
    Panicked(String),
    #[error("registry data is inconsistent: {0}")]
    Corrupt(String),
}

impl From<RegistryError> for crate::web::error::ApiError {
    fn from(e: RegistryError) -> Self {
        use crate::web::error::ApiError;
        match e {
            RegistryError::UnknownSensor(_)
            | RegistryError::UnknownRun(_)
            | RegistryError::UnknownVersion(_) => ApiError::NotFound(e.to_string()),
            RegistryError::Refused(m) => ApiError::BadRequest(m),
            RegistryError::Pool(p) => p.into(),
            RegistryError::Db(d) => d.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The forecasting engine's settings for a quantity with physical bounds `range`.
pub fn forecast_config(settings: &Settings, range: (f64, f64)) -> ForecastConfig {
    let f = &settings.forecast;
    let steps_per_day = (86_400 / f.step_secs.max(1)) as usize;
    ForecastConfig {
        step_secs: f.step_secs,
        max_fill: f.max_fill,
        horizon: f.horizon,
        window_days: f.window_days,
        min_history_steps: f.min_history_days as usize * steps_per_day,
        lower: range.0,
        upper: range.1,
    }
}
