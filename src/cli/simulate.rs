//! `hygrocast simulate`: a stand-in humidity sensor that posts to a hygrocast server the
//! way a device would: history first (in batches), then one reading per interval, retrying
//! with exponential backoff when the server is busy (503) or unreachable.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use rand::RngCore;

use crate::cli::CliError;
use crate::domain::Reading;
use crate::simulate::{to_json_batch, to_line_protocol, to_senml, HumiditySimulator};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WireFormat {
    /// Native JSON to /api/v1/readings.
    Json,
    /// SenML JSON to /api/v1/readings.
    Senml,
    /// InfluxDB line protocol to /api/v2/write.
    Line,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080 (or with its base path).
    #[arg(long)]
    pub url: String,
    /// The sensor's token (from `hygrocast sensor add`).
    #[arg(long, env = "HYGROCAST_SENSOR_TOKEN", hide_env_values = true)]
    pub token: String,
    /// How much history to post first, e.g. 60d, 12h, 0 for none.
    #[arg(long, default_value = "60d", value_parser = parse_duration)]
    pub backfill: Duration,
    /// Time between readings, e.g. 60s, 5m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    #[arg(long, value_enum, default_value = "json")]
    pub format: WireFormat,
    /// Readings per backfill request.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
    /// Exit after the backfill instead of posting live readings.
    #[arg(long)]
    pub backfill_only: bool,
    /// Seed of the simulated series: the same seed gives the same readings.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Parses `90`, `90s`, `15m`, `12h`, `60d` into a duration (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 60s, 15m, 12h or 60d"))?;
    let secs_per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in `{s}`: use s, m, h or d")),
    };
    n.checked_mul(secs_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// Where and how one format is posted.
struct Target {
    url: String,
    content_type: &'static str,
    auth: String,
    format: WireFormat,
}

impl Target {
    fn new(base: &str, token: &str, format: WireFormat) -> Self {
        let base = base.trim_end_matches('/');
        match format {
            WireFormat::Json | WireFormat::Senml => Target {
                url: format!("{base}/api/v1/readings"),
                content_type: if format == WireFormat::Json {
                    "application/json"
                } else {
                    "application/senml+json"
                },
                auth: format!("Bearer {token}"),
                format,
            },
            WireFormat::Line => Target {
                url: format!("{base}/api/v2/write?precision=ns"),
                content_type: "text/plain; charset=utf-8",
                auth: format!("Token {token}"),
                format,
            },
        }
    }

    fn encode(&self, readings: &[Reading]) -> String {
        match self.format {
            WireFormat::Json => to_json_batch(readings),
            WireFormat::Senml => to_senml("", readings),
            WireFormat::Line => to_line_protocol("humidity", readings),
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Posts one body until it is accepted. Retries 503/429/5xx and network errors with
/// exponential backoff (honouring Retry-After); any other 4xx is a bug on our side or a
/// bad token and ends the run.
async fn post(http: &reqwest::Client, target: &Target, body: String) -> Result<(), CliError> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let sent = http
            .post(&target.url)
            .header("Authorization", &target.auth)
            .header("Content-Type", target.content_type)
            .body(body.clone())
            .send()
            .await;
        let wait = match sent {
            Ok(res) if res.status().is_success() => return Ok(()),
            Ok(res) => {
                let status = res.status();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = res.text().await.unwrap_or_default();
                if !(status.is_server_error() || status.as_u16() == 429) {
                    return Err(CliError::Other(format!(
                        "server refused the readings ({status}): {text}"
                    )));
                }
                tracing::warn!(%status, body = %text, "server busy; retrying");
                retry_after.unwrap_or(backoff).max(backoff)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reach the server; retrying");
                backoff
            }
        };
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

pub async fn run(args: SimulateArgs) -> Result<(), CliError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| CliError::Other(format!("HTTP client: {e}")))?;
    let target = Target::new(&args.url, &args.token, args.format);
    let seed = args.seed.unwrap_or_else(|| rand::rngs::OsRng.next_u64());
    let interval_secs = u32::try_from(args.interval.as_secs().max(1)).unwrap_or(u32::MAX);
    let now = Utc::now();
    let backfill = chrono::Duration::from_std(args.backfill)
        .map_err(|_| CliError::Other("--backfill is too long".into()))?;
    // Slots on a grid of the interval so reruns with the same seed line up.
    let start_secs = (now - backfill).timestamp();
    let start_secs = start_secs - start_secs.rem_euclid(i64::from(interval_secs));
    let start = DateTime::from_timestamp(start_secs, 0).unwrap_or(now);
    let mut sim = HumiditySimulator::new(seed, start, interval_secs);
    tracing::info!(seed, url = %target.url, "simulated sensor starting");

    let history = sim.readings_between(start, now);
    let batch = args.batch.max(1);
    let total = history.len();
    let mut sent = 0;
    for chunk in history.chunks(batch) {
        post(&http, &target, target.encode(chunk)).await?;
        sent += chunk.len();
        eprintln!("backfill: {sent}/{total} readings posted");
    }
    if args.backfill_only {
        println!("posted {total} readings (seed {seed})");
        return Ok(());
    }
    loop {
        let next = sim.next_ts();
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        // None: the simulated sensor dropped this reading, as real ones do.
        if let Some(reading) = sim.next_reading() {
            post(&http, &target, target.encode(&[reading])).await?;
            tracing::info!(ts = %reading.ts(), value = reading.value(), "posted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60d"), Ok(Duration::from_secs(60 * 86_400)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
