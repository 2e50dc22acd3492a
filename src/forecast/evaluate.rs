//! Offline evaluation of a CSV series: every model's backtest score and the model hygrocast
//! would serve.
//!
//! `chosen` is picked without looking at the scored window: the selection backtest runs on
//! the history before the scored window's first origin `o0` (i.e. on `y[0..o0]`, whose own
//! last `window_days` are the preceding window), exactly as `select_and_fit` would have done
//! on the day of `o0` (lowest mean of MASE 1-24 and MASE 1-120, with the combination
//! preferred when within 2 % of the best). The scored window then only reports how that
//! choice did.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::backtest::{backtest_with, first_origin, select};
use super::features::period_for_step;
use super::models::Algorithm;
use super::training::TrainOptions;
use super::{resample, ForecastConfig, ForecastError};

#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    pub csv: PathBuf,
    pub ts_col: String,
    pub value_col: String,
    pub horizon: usize,
    pub window_days: u32,
    /// Models to score; `None` = all of [`Algorithm::ALL`].
    pub models: Option<Vec<Algorithm>>,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions {
            csv: PathBuf::new(),
            ts_col: "ts".into(),
            value_col: "value".into(),
            horizon: 120,
            window_days: 60,
            models: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    pub rows: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelScore {
    pub model: Algorithm,
    pub mase_1_24: f64,
    pub mase_1_120: f64,
    pub mae_1_24: f64,
    pub mae_1_120: f64,
    pub rmse_1_24: f64,
    pub coverage_80: f64,
    pub coverage_95: f64,
    pub fit_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateReport {
    pub series: SeriesSummary,
    pub chosen: Algorithm,
    pub models: Vec<ModelScore>,
}

/// Read `(ts, value)` rows; timestamps are RFC 3339.
fn read_csv(opts: &EvaluateOptions) -> Result<Vec<(DateTime<Utc>, f64)>, ForecastError> {
    let mut rdr = csv::Reader::from_path(&opts.csv)
        .map_err(|e| ForecastError::Input(format!("{}: {e}", opts.csv.display())))?;
    let headers = rdr
        .headers()
        .map_err(|e| ForecastError::Input(e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| ForecastError::Input(format!("no column {name:?} in the CSV")))
    };
    let (ts_i, v_i) = (col(&opts.ts_col)?, col(&opts.value_col)?);
    let mut out = Vec::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| ForecastError::Input(e.to_string()))?;
        let field = |i: usize| rec.get(i).unwrap_or("").trim();
        let ts = DateTime::parse_from_rfc3339(field(ts_i))
            .map_err(|e| ForecastError::Input(format!("row {}: bad timestamp: {e}", line + 2)))?
            .with_timezone(&Utc);
        let v: f64 = field(v_i)
            .parse()
            .map_err(|e| ForecastError::Input(format!("row {}: bad value: {e}", line + 2)))?;
        if !v.is_finite() {
            return Err(ForecastError::NonFiniteInput { index: line });
        }
        out.push((ts, v));
    }
    Ok(out)
}

pub fn evaluate_csv(opts: &EvaluateOptions) -> Result<EvaluateReport, ForecastError> {
    let readings = read_csv(opts)?;
    let (Some(first), Some(last)) = (
        readings.iter().map(|r| r.0).min(),
        readings.iter().map(|r| r.0).max(),
    ) else {
        return Err(ForecastError::TooLittleData("the CSV has no rows".into()));
    };
    let cfg = ForecastConfig {
        horizon: opts.horizon,
        window_days: opts.window_days,
        ..ForecastConfig::default()
    };
    cfg.validate()?;
    let series = resample(&readings, &cfg);
    let models = opts
        .models
        .clone()
        .unwrap_or_else(|| Algorithm::ALL.to_vec());
    let train = TrainOptions::default();

    let period = period_for_step(series.step_secs);
    let o0 = first_origin(series.len(), period, &cfg)?;
    let (chosen, _) = select(&series.head(o0), &models, &cfg, &train);
    tracing::info!(%chosen, "selected on the history before the scored window");

    let mut scores = Vec::new();
    for &model in &models {
        let m = backtest_with(&series, model, &cfg, &train)?;
        scores.push(ModelScore {
            model,
            mase_1_24: m.mase_1_24,
            mase_1_120: m.mase_1_120,
            mae_1_24: m.mae_1_24,
            mae_1_120: m.mae_1_120,
            rmse_1_24: m.rmse_1_24,
            coverage_80: m.coverage_80,
            coverage_95: m.coverage_95,
            fit_seconds: m.fit_seconds,
        });
    }
    Ok(EvaluateReport {
        series: SeriesSummary {
            rows: readings.len(),
            first,
            last,
        },
        chosen,
        models: scores,
    })
}

impl EvaluateReport {
    /// Aligned text table, one row per model; the chosen one is marked with `*`.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "series: {} rows, {} .. {}",
            self.series.rows,
            self.series.first.to_rfc3339(),
            self.series.last.to_rfc3339()
        );
        let _ = writeln!(
            s,
            "  {:<16} {:>10} {:>11} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8}",
            "model",
            "MASE 1-24",
            "MASE 1-120",
            "MAE 1-24",
            "MAE 1-120",
            "RMSE 1-24",
            "cov 80%",
            "cov 95%",
            "fit s"
        );
        for m in &self.models {
            let mark = if m.model == self.chosen { '*' } else { ' ' };
            let _ = writeln!(
                s,
                "{mark} {:<16} {:>10.3} {:>11.3} {:>9.2} {:>10.2} {:>10.2} {:>8.3} {:>8.3} {:>8.3}",
                m.model.name(),
                m.mase_1_24,
                m.mase_1_120,
                m.mae_1_24,
                m.mae_1_120,
                m.rmse_1_24,
                m.coverage_80,
                m.coverage_95,
                m.fit_seconds
            );
        }
        let _ = writeln!(
            s,
            "* chosen: {} (selected on the data before the scored window: best mean of MASE 1-24 and 1-120, blend preferred within 2 %)",
            self.chosen
        );
        s
    }
}
