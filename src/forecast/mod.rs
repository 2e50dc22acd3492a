//! Forecasting engine: resampling, direct multi-horizon models, calibrated intervals,
//! rolling-origin backtests and honest model selection.
//!
//! Strategy. Every learned model is *direct*: from the history up to the origin t it
//! predicts the change `y[t+h] - y[t]` for each horizon h separately, on the scale
//! `ln(y - lower + 1)` (see `features::Transform`). Recursive forecasting compounds its
//! own errors and was worse for the peers too; a single horizon-as-feature model cannot
//! give each horizon its own weights cheaply. The served default is usually `Blend`, a
//! per-horizon combination of two models that err differently and a recent climatology:
//! - `Ridge`: one smartcore ridge per horizon on lags 1-24, 48, 168 (relative to the
//!   current level), time of day, and time-of-day interactions of the key lags, with the
//!   penalty chosen on held-out origins per block of horizons;
//! - `Analog`: the average change that followed the most similar past days (same time of
//!   day), with the neighbour count chosen on held-out origins;
//! - the mean of the last few days at the target's time of day.
//!
//! The weights are learned on the same held-out (out-of-sample) forecasts: inverse-MSE
//! between Ridge and Analog, then a shrinkage toward the climatology that may only grow with
//! the horizon (see `combine`).
//!
//! Layout (one job per file):
//! - `series`: regular grid, gap rules, digest, export
//! - `features`: feature rows at an origin (no look-ahead)
//! - `ridge`, `forest`, `analog`: the direct models
//! - `combine`: the Blend's climatology member and its learned per-horizon weights
//! - `models`: `Algorithm`, `FittedModel`, `forecast`, persistence
//! - `training`: `fit` (inner validation, interval calibration, final fit)
//! - `intervals`: per-horizon residual quantiles
//! - `metrics`: MASE/MAE/RMSE/coverage accumulation
//! - `backtest`: the rolling-origin evaluation protocol and `select_and_fit`
//! - `evaluate`: CSV in, report out
//! - `synthetic`: generator of realistic test series

mod analog;
mod backtest;
mod combine;
mod evaluate;
mod features;
mod forest;
mod intervals;
mod metrics;
mod models;
mod ridge;
mod series;
pub mod synthetic;
#[cfg(test)]
mod tests;
mod training;

use serde::{Deserialize, Serialize};

pub use analog::AnalogModel;
pub use backtest::{
    backtest, backtest_among, backtest_with, select_and_fit, untested_only, window_shortfall,
    Trained,
};
pub use evaluate::{
    default_jobs, evaluate_csv, read_readings, EvaluateOptions, EvaluateReport, ModelScore,
    SeriesSummary,
};
pub use features::{period_for_step, FeatureSpec, Transform};
pub use forest::ForestParams;
pub use intervals::HorizonQuantiles;
pub use metrics::{horizon_block, mase_scale, Metrics};
pub use models::{
    fit, Algorithm, FittedModel, Forecast, ForecastStep, ModelParams, MODEL_FORMAT_VERSION,
    SMARTCORE_VERSION,
};
pub use series::{resample, series_digest, series_to_csv_rows, Series};
pub use training::{fit_each, fit_with, CandidateFit, TrainOptions};

/// "s" for a count other than one, for messages that name counts.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Longest forecast horizon accepted, in steps.
pub const MAX_HORIZON: usize = 10_000;

/// Engine settings. Defaults suit hourly relative humidity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// Grid step in seconds.
    pub step_secs: i64,
    /// Longest gap (in steps) filled by linear interpolation.
    pub max_fill: usize,
    /// Forecast horizon in steps.
    pub horizon: usize,
    /// Length of the backtest (evaluation) window in days.
    pub window_days: u32,
    /// Least history (steps) the learned models need; baselines need less.
    pub min_history_steps: usize,
    /// Physical bounds every forecast and interval is clamped to.
    pub lower: f64,
    pub upper: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            step_secs: 3600,
            max_fill: 3,
            horizon: 120,
            window_days: 60,
            min_history_steps: 14 * 24,
            lower: 0.0,
            upper: 100.0,
        }
    }
}

impl ForecastConfig {
    pub(crate) fn validate(&self) -> Result<(), ForecastError> {
        if self.step_secs <= 0 {
            return Err(ForecastError::InvalidConfig("step_secs must be > 0".into()));
        }
        // Generous caps that stop a typo from allocating gigabytes.
        if self.horizon == 0 || self.horizon > MAX_HORIZON {
            return Err(ForecastError::InvalidConfig(format!(
                "horizon must be in 1..={MAX_HORIZON}"
            )));
        }
        if self.window_days == 0 || self.window_days > 3660 {
            return Err(ForecastError::InvalidConfig(
                "window_days must be in 1..=3660".into(),
            ));
        }
        if !(self.lower.is_finite() && self.upper.is_finite() && self.lower < self.upper) {
            return Err(ForecastError::InvalidConfig(
                "lower/upper must be finite with lower < upper".into(),
            ));
        }
        Ok(())
    }
}

/// Everything that can go wrong in the engine. No engine path panics on data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForecastError {
    #[error("too little data: {0}")]
    TooLittleData(String),
    #[error("non-finite value at step {index}")]
    NonFiniteInput { index: usize },
    #[error("model fit failed: {0}")]
    FitFailed(String),
    #[error("prediction failed: {0}")]
    PredictFailed(String),
    #[error("bad model bytes: {0}")]
    BadModelBytes(String),
    #[error("model format version {found} is not supported (expected {expected})")]
    FormatVersion { found: u32, expected: u32 },
    #[error("series does not match the model: {0}")]
    Incompatible(String),
    #[error("horizon {requested} exceeds the fitted horizon {max}")]
    HorizonTooLong { requested: usize, max: usize },
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("degenerate series: {0}")]
    Degenerate(String),
    #[error("input error: {0}")]
    Input(String),
}

/// Runs a closure that calls into smartcore, turning a panic into `FitFailed`.
/// smartcore does not validate inputs; everything we pass is finite by construction, and
/// this is the last line of defence.
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, ForecastError>,
) -> Result<T, ForecastError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            tracing::error!(what, msg, "smartcore panicked");
            Err(ForecastError::FitFailed(format!("{what}: panic: {msg}")))
        }
    }
}
