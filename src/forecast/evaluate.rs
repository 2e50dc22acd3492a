//! Offline evaluation of a CSV series: every model's backtest score and the model hygrocast
//! would serve.
//!
//! `chosen` is picked without looking at the scored window: the selection backtest runs on
//! the history before the scored window's first origin `o0` (i.e. on `y[0..o0]`, whose own
//! last `window_days` are the preceding window), exactly as `select_and_fit` would have done
//! on the day of `o0` (lowest mean of MASE 1-24 and MASE 1-120, with the combination
//! preferred when within 2 % of the best, more when that history holds fewer origins than a
//! full window and always on fewer than four weeks of them; the blend untested when it is
//! too short to backtest the learned models).
//! The scored window then only reports how that choice did.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::backtest::{backtest_each, first_origin, history_floor, select_and_fit};
use super::features::{period_for_step, steps_per_day};
use super::metrics::median;
use super::models::Algorithm;
use super::plural;
use super::training::TrainOptions;
use super::{resample, ForecastConfig, ForecastError};
use crate::domain::SensorKind;
use crate::ingest::timeconv::unix_secs;

#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    pub csv: PathBuf,
    pub ts_col: String,
    pub value_col: String,
    pub horizon: usize,
    pub window_days: u32,
    /// Grid step in seconds (a whole fraction of a day, as the server's `forecast.step_secs`).
    pub step_secs: i64,
    /// Models to score; `None` = all of [`Algorithm::ALL`].
    pub models: Option<Vec<Algorithm>>,
    /// The quantity: its range bounds the values read and the forecasts.
    pub kind: SensorKind,
    /// Threads: with 2 or more, the choice (on the history before the window) and the
    /// scores (on the window) run side by side; with 1, one after the other, so that the fit
    /// times are measured on an otherwise idle core.
    pub jobs: usize,
}

/// Two threads, one per half of the work, when the machine has the cores for them.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions {
            csv: PathBuf::new(),
            ts_col: "ts".into(),
            value_col: "value".into(),
            horizon: 120,
            window_days: 60,
            step_secs: 3600,
            models: None,
            kind: SensorKind::Humidity,
            jobs: default_jobs(),
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
    /// Interval scores (see [`super::Metrics`]); in the table, not in the JSON, whose shape
    /// is fixed.
    #[serde(skip)]
    pub msis_80: f64,
    #[serde(skip)]
    pub msis_95: f64,
    pub fit_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateReport {
    pub series: SeriesSummary,
    pub chosen: Algorithm,
    pub models: Vec<ModelScore>,
    /// How long fitting every scored model at one origin took; in the table, not in the
    /// JSON, whose shape is fixed.
    #[serde(skip)]
    pub fit_seconds_all: Option<JointFitSeconds>,
    /// Rows left out and models not scored, for people; not part of the JSON contract.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Seconds fitting all scored models at one origin together took (the work they share done
/// once), over the origins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointFitSeconds {
    pub median: f64,
    /// The slowest origin: usually one of the last, with the most history.
    pub max: f64,
}

/// The readings of a CSV file and what was left out of them.
#[derive(Debug, Default)]
struct CsvSeries {
    readings: Vec<(DateTime<Utc>, f64)>,
    /// Rows whose value cell is empty or a missing-value marker (`NaN`, `NA`, `null`, …).
    missing: usize,
    /// Values outside the quantity's range, with the first one's row and value.
    out_of_range: usize,
    first_out_of_range: Option<(usize, f64)>,
}

/// Cells that mean "no value" in the CSVs of spreadsheets, pandas and met services.
fn is_missing_marker(cell: &str) -> bool {
    cell.is_empty()
        || ["nan", "na", "n/a", "null", "none", "-"]
            .iter()
            .any(|m| cell.eq_ignore_ascii_case(m))
}

/// A timestamp cell: RFC 3339 (`T` or a space between date and time), a date-time without
/// an offset (taken as UTC), or a unix time in seconds, milliseconds, microseconds or
/// nanoseconds (told apart by size, as exports of JavaScript or InfluxDB use the finer ones:
/// a count of seconds past 1e11 would be after the year 5000).
fn parse_timestamp(cell: &str) -> Option<DateTime<Utc>> {
    if let Ok(ts) = DateTime::parse_from_rfc3339(cell) {
        return Some(ts.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(cell, format) {
            return Some(naive.and_utc());
        }
    }
    let count: f64 = cell.parse().ok()?;
    let secs = match count.abs() {
        c if c < 1e11 => count,
        c if c < 1e14 => count / 1e3,
        c if c < 1e17 => count / 1e6,
        _ => count / 1e9,
    };
    unix_secs(secs)
}

/// The field separator, from the header line: a comma unless the header has none and has
/// semicolons (the CSV of spreadsheets in locales that write a decimal comma) or tabs.
fn sniff_delimiter(path: &std::path::Path) -> std::io::Result<u8> {
    use std::io::BufRead as _;
    let mut header = Vec::new();
    std::io::BufReader::new(std::fs::File::open(path)?).read_until(b'\n', &mut header)?;
    let has = |b: u8| header.contains(&b);
    Ok(match (has(b','), has(b';'), has(b'\t')) {
        (false, true, _) => b';',
        (false, false, true) => b'\t',
        _ => b',',
    })
}

/// A value cell: a number, or, when fields are not separated by commas, a number written
/// with a decimal comma (`45,3`), as spreadsheets in those locales export it.
fn parse_value(cell: &str, delimiter: u8) -> Option<f64> {
    cell.parse().ok().or_else(|| {
        let decimal_comma =
            delimiter != b',' && cell.matches(',').count() == 1 && !cell.contains('.');
        decimal_comma
            .then(|| cell.replace(',', ".").parse().ok())
            .flatten()
    })
}

/// Read `(ts, value)` rows. A row without a value is a gap, and so is a value outside the
/// quantity's range (the server's ingest refuses those, so its history has a gap there too);
/// both are counted and reported. A cell that is neither a value nor a missing-value marker,
/// or a timestamp in no accepted form, is an error naming its row: the file is not what it
/// claims to be, and guessing would score something else.
fn read_csv(opts: &EvaluateOptions) -> Result<CsvSeries, ForecastError> {
    let unreadable =
        |e: &dyn std::fmt::Display| ForecastError::Input(format!("{}: {e}", opts.csv.display()));
    let delimiter = sniff_delimiter(&opts.csv).map_err(|e| unreadable(&e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(&opts.csv)
        .map_err(|e| unreadable(&e))?;
    let headers = rdr
        .headers()
        .map_err(|e| ForecastError::Input(e.to_string()))?
        .clone();
    let col = |name: &str, flag: &str| {
        let exact = headers.iter().position(|h| h.trim() == name);
        exact
            .or_else(|| {
                headers
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                let found: Vec<&str> = headers.iter().map(str::trim).collect();
                ForecastError::Input(format!(
                    "no column {name:?} in the CSV (its columns: {}); name the one to read \
                     with {flag}",
                    found.join(", ")
                ))
            })
    };
    let (ts_i, v_i) = (
        col(&opts.ts_col, "--ts-col")?,
        col(&opts.value_col, "--value-col")?,
    );
    let (lower, upper) = opts.kind.valid_range();
    let mut out = CsvSeries::default();
    for (line, rec) in rdr.records().enumerate() {
        let row = line + 2; // 1-based, after the header
        let rec = rec.map_err(|e| ForecastError::Input(format!("row {row}: {e}")))?;
        let field = |i: usize| rec.get(i).unwrap_or("").trim();
        let ts = parse_timestamp(field(ts_i)).ok_or_else(|| {
            ForecastError::Input(format!(
                "row {row}: bad timestamp {:?}: expected RFC 3339 (2025-01-01T01:00:00Z), a \
                 date-time without offset (taken as UTC) or unix time (s, ms, µs or ns)",
                field(ts_i)
            ))
        })?;
        let cell = field(v_i);
        if is_missing_marker(cell) {
            out.missing += 1;
            continue;
        }
        let v: f64 = parse_value(cell, delimiter).ok_or_else(|| {
            ForecastError::Input(format!(
                "row {row}: bad value {cell:?}: expected a number, or an empty cell or NaN \
                 for a missing one"
            ))
        })?;
        if !v.is_finite() {
            // `inf` parses as a float but is no measurement.
            return Err(ForecastError::Input(format!(
                "row {row}: bad value {cell:?}: not a finite number"
            )));
        }
        if !(lower..=upper).contains(&v) {
            out.out_of_range += 1;
            out.first_out_of_range.get_or_insert((row, v));
            continue;
        }
        out.readings.push((ts, v));
    }
    Ok(out)
}

/// The readings of `opts.csv` as `evaluate` reads them, without the rows it leaves out (for
/// other tools on the same files).
pub fn read_readings(opts: &EvaluateOptions) -> Result<Vec<(DateTime<Utc>, f64)>, ForecastError> {
    read_csv(opts).map(|csv| csv.readings)
}

pub fn evaluate_csv(opts: &EvaluateOptions) -> Result<EvaluateReport, ForecastError> {
    let csv = read_csv(opts)?;
    let mut notes = csv.notes(opts.kind);
    for note in &notes {
        tracing::warn!("{note}");
    }
    let readings = csv.readings;
    let (Some(first), Some(last)) = (
        readings.iter().map(|r| r.0).min(),
        readings.iter().map(|r| r.0).max(),
    ) else {
        return Err(ForecastError::TooLittleData(
            "the CSV has no row with a value".into(),
        ));
    };
    let (lower, upper) = opts.kind.valid_range();
    let per_day = steps_per_day(opts.step_secs).ok_or_else(|| {
        ForecastError::InvalidConfig(format!(
            "step {} s must divide a day into at least two steps (300, 600, 900, 1800, 3600, …)",
            opts.step_secs
        ))
    })?;
    let cfg = ForecastConfig {
        step_secs: opts.step_secs,
        horizon: opts.horizon,
        window_days: opts.window_days,
        // Two weeks, as the server's default `forecast.min_history_days`.
        min_history_steps: 14 * per_day,
        lower,
        upper,
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
    // Every model is scored on the same origins: on a short series, the first one with the
    // history the most demanding model that can be scored at all needs.
    let floor = history_floor(&models, series.len(), period, &cfg);
    let o0 = first_origin(series.len(), period, &cfg, floor)?;
    // The choice (on the history before the window) and the scores (on the window) do not
    // depend on each other, and each is about half the work: they run side by side.
    let head = series.head(o0);
    let select = || select_and_fit(&head, &models, &cfg);
    let score = || backtest_each(&series, &models, &cfg, &train, floor);
    let (selection, backtests) = if opts.jobs > 1 {
        std::thread::scope(|scope| {
            let selection = scope.spawn(select);
            let backtests = score();
            (selection.join(), backtests)
        })
    } else {
        (Ok(select()), score())
    };
    let selection =
        selection.map_err(|_| ForecastError::FitFailed("the model selection panicked".into()))?;
    // What the server would serve at the first origin: chosen on the history before it, and
    // fitted too, since a fit that fails there falls back to the seasonal-naive baseline.
    let chosen = match selection {
        Ok(t) => {
            if !t.chosen.is_baseline() && !t.reports.iter().any(|(a, _)| *a == t.chosen) {
                notes.push(format!(
                    "the {o0} steps before the scored window are too few to backtest the learned \
                     models, so {} was chosen untested, as a sensor this young is served",
                    t.chosen
                ));
            }
            t.chosen
        }
        Err(e) => {
            tracing::warn!(error = %e, "no model could be fitted before the scored window");
            Algorithm::SeasonalNaive
        }
    };
    tracing::info!(%chosen, "selected on the history before the scored window");

    let mut scores = Vec::new();
    let mut first_error = None;
    let joint = backtests.joint_fit_seconds;
    let fit_seconds_all = joint
        .iter()
        .copied()
        .reduce(f64::max)
        .zip(median(joint))
        .map(|(max, median)| JointFitSeconds { median, max });
    for (model, backtest) in backtests.scores {
        match backtest {
            Ok(m) => {
                tracing::info!(
                    %model,
                    mase_1_24 = m.mase_1_24,
                    mase_1_120 = m.mase_1_120,
                    msis_80 = m.msis_80,
                    msis_95 = m.msis_95,
                    "scored"
                );
                scores.push(ModelScore {
                    model,
                    mase_1_24: m.mase_1_24,
                    mase_1_120: m.mase_1_120,
                    mae_1_24: m.mae_1_24,
                    mae_1_120: m.mae_1_120,
                    rmse_1_24: m.rmse_1_24,
                    coverage_80: m.coverage_80,
                    coverage_95: m.coverage_95,
                    msis_80: m.msis_80,
                    msis_95: m.msis_95,
                    fit_seconds: m.fit_seconds,
                });
            }
            // One model that cannot be scored (too little history for it) does not hide the
            // others' scores; it is named in the report instead.
            Err(e) => {
                tracing::warn!(%model, error = %e, "model not scored");
                notes.push(format!("{model} not scored: {e}"));
                first_error.get_or_insert(e);
            }
        }
    }
    if scores.is_empty() {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    Ok(EvaluateReport {
        series: SeriesSummary {
            rows: readings.len(),
            first,
            last,
        },
        chosen,
        models: scores,
        fit_seconds_all,
        notes,
    })
}

impl CsvSeries {
    /// What was left out of the file, in words, for the report.
    fn notes(&self, kind: SensorKind) -> Vec<String> {
        let mut notes = Vec::new();
        if self.missing > 0 {
            notes.push(format!(
                "{} row{} without a value left out (gaps)",
                self.missing,
                plural(self.missing)
            ));
        }
        if let Some((row, v)) = self.first_out_of_range {
            let (lower, upper) = kind.valid_range();
            notes.push(format!(
                "{} value{} outside the {kind} range {lower}..={upper} {} left out as gaps \
                 (the first at row {row}: {v})",
                self.out_of_range,
                plural(self.out_of_range),
                kind.default_unit()
            ));
        }
        // Relative humidity sent as a fraction is read as under 1 %RH: it is forecast all
        // the same, but the person running this should know what was assumed.
        let max = self
            .readings
            .iter()
            .map(|r| r.1)
            .fold(f64::NEG_INFINITY, f64::max);
        if kind == SensorKind::Humidity && max > 0.0 && max <= 1.0 {
            notes.push(format!(
                "every value is at most 1 (the largest is {max}): they are read as %RH; if \
                 they are fractions, multiply them by 100"
            ));
        }
        notes
    }
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
            "  {:<16} {:>10} {:>11} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "model",
            "MASE 1-24",
            "MASE 1-120",
            "MAE 1-24",
            "MAE 1-120",
            "RMSE 1-24",
            "cov 80%",
            "cov 95%",
            "MSIS 80",
            "MSIS 95",
            "fit s"
        );
        for m in &self.models {
            let mark = if m.model == self.chosen { '*' } else { ' ' };
            let _ = writeln!(
                s,
                "{mark} {:<16} {:>10.3} {:>11.3} {:>9.2} {:>10.2} {:>10.2} {:>8.3} {:>8.3} {:>8.2} {:>8.2} {:>8.3}",
                m.model.name(),
                m.mase_1_24,
                m.mase_1_120,
                m.mae_1_24,
                m.mae_1_120,
                m.rmse_1_24,
                m.coverage_80,
                m.coverage_95,
                m.msis_80,
                m.msis_95,
                m.fit_seconds
            );
        }
        if let (Some(secs), [_, _, ..]) = (self.fit_seconds_all, self.models.as_slice()) {
            let _ = writeln!(
                s,
                "  fit s, all {} models at one origin together (shared work done once): median {:.3}, max {:.3}",
                self.models.len(),
                secs.median,
                secs.max
            );
        }
        let _ = writeln!(
            s,
            "* chosen: {} (selected on the data before the scored window: best mean of MASE 1-24 and 1-120, blend preferred within 2 %, more on fewer origins, always on fewer than {})",
            self.chosen,
            super::backtest::FEWEST_ORIGINS_TO_PASS_OVER_BLEND,
        );
        for note in &self.notes {
            let _ = writeln!(s, "  note: {note}");
        }
        s
    }
}
