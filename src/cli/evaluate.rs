//! `hygrocast evaluate`: the offline backtest of a CSV series (also the forecasting benchmark).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::domain::SensorKind;
use crate::forecast::{self, Algorithm, EvaluateOptions};

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// CSV file with a timestamp column (RFC 3339; also a date-time without offset, taken as
    /// UTC, or unix time in s, ms, µs or ns) and a value column. Empty or NaN values, and values outside the
    /// quantity's range, are gaps, counted in the report. Comma-separated, or, when the header
    /// has no comma, semicolon- or tab-separated (and then decimal commas are read).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    #[arg(long, default_value = "ts", value_name = "NAME")]
    pub ts_col: String,
    #[arg(long, default_value = "value", value_name = "NAME")]
    pub value_col: String,
    /// Steps forecast at each origin.
    #[arg(long, default_value_t = 120)]
    pub horizon: usize,
    /// Grid step in seconds the readings are averaged onto, as the server's
    /// `forecast.step_secs` (a whole fraction of a day); horizons count these steps.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub step_secs: i64,
    /// Evaluation window: the last N days, origins every 24 h.
    #[arg(long, default_value_t = 60)]
    pub window_days: u32,
    /// Models to score, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub models: Option<Vec<Algorithm>>,
    /// What the values measure (humidity or temperature): fixes their valid range, which
    /// forecasts and intervals are clamped to.
    #[arg(long, default_value = "humidity", value_name = "KIND")]
    pub kind: SensorKind,
    /// Threads: with 2, the choice (made on the history before the window) and the scores
    /// (on the window) run side by side, in about half the time; with 1, one after the
    /// other, so the fit times are those of an otherwise idle core. [default: 2, or 1 on a
    /// single-core machine]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A CPU-bound batch job with nothing else to serve: it runs on the calling thread and, with
/// `--jobs 2`, one more.
pub fn run(args: EvaluateArgs) -> Result<(), CliError> {
    let opts = EvaluateOptions {
        csv: args.csv,
        ts_col: args.ts_col,
        value_col: args.value_col,
        horizon: args.horizon,
        window_days: args.window_days,
        step_secs: args.step_secs,
        models: args.models,
        kind: args.kind,
        jobs: args.jobs.map_or_else(forecast::default_jobs, usize::from),
    };
    let report = forecast::evaluate_csv(&opts).map_err(|e| CliError::Other(e.to_string()))?;
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Other(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
