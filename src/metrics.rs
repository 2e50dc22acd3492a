//! Prometheus metrics: the process-wide event counters and histograms, and the
//! `/metrics` rendering that adds state read at scrape time.
//!
//! Two kinds of numbers, kept apart on purpose:
//! - *events this process saw* (HTTP requests, readings accepted/rejected, batcher
//!   flushes, training runs it executed): counters and histograms in one process-wide
//!   registry, updated by the small functions below from wherever the event happens;
//! - *state of the shared database* (per-sensor freshness and accuracy, last successful
//!   scheduler jobs, the pool): read when Prometheus scrapes, so every replica reports
//!   the same truth and nothing has to be kept in step in memory;
//! - the standard `process_*` metrics of this process (memory, CPU, files), read from
//!   `/proc/self` at scrape time (`process`), and what its allocator holds (`heap`), so a
//!   creeping resident size can be told apart as a leak or as fragmentation.
//!
//! Encoding is prometheus-client's Prometheus text format (0.0.4), which `promtool check
//! metrics` reads. Names: `hygrocast_` prefix, base units, counters end in `_total` (the
//! crate adds the suffix; registering a name that already has it is a bug it catches).

mod heap;
mod process;

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

use deadpool_postgres::Pool;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` of the `/metrics` answer.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

const PREFIX: &str = "hygrocast";

/// Longest the scrape-time database queries may take before `/metrics` answers without them.
const SCRAPE_DB_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The matched route pattern (`/api/v1/sensors/{name}/forecast`), never the raw path,
    /// so the number of series stays bounded whatever clients request.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabels {
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    format: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SensorLabels {
    sensor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s: an ingest write is a few ms, a cold forecast can take seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn training_histogram() -> Histogram {
    // 0.1 s … ~27 min: a baseline fits instantly, a forest on a year of data takes minutes.
    Histogram::new(exponential_buckets(0.1, 2.0, 15))
}

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    readings_accepted: Family<FormatLabels, Counter>,
    readings_duplicate: Family<FormatLabels, Counter>,
    readings_rejected: Family<RejectLabels, Counter>,
    ingest_queue_depth: Gauge,
    batcher_flush_rows: Histogram,
    batcher_flush_duration: Histogram,
    training_runs: Family<StatusLabels, Counter>,
    training_duration: HistogramFamily<StatusLabels>,
    training_runs_abandoned: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route pattern and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by method and matched route pattern",
            Unit::Seconds,
            http_duration.clone(),
        );
        let readings_accepted = Family::<FormatLabels, Counter>::default();
        registry.register(
            "readings_accepted",
            "Readings committed to the database, by wire format",
            readings_accepted.clone(),
        );
        let readings_duplicate = Family::<FormatLabels, Counter>::default();
        registry.register(
            "readings_duplicate",
            "Readings acknowledged but already stored (same sensor and timestamp), by wire format",
            readings_duplicate.clone(),
        );
        let readings_rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "readings_rejected",
            "Ingestion requests refused, by wire format and reason",
            readings_rejected.clone(),
        );
        let ingest_queue_depth = Gauge::default();
        registry.register(
            "ingest_queue_depth",
            "Write requests waiting for their group commit",
            ingest_queue_depth.clone(),
        );
        let batcher_flush_rows = Histogram::new(exponential_buckets(1.0, 4.0, 9));
        registry.register(
            "batcher_flush_rows",
            "Readings written per group commit",
            batcher_flush_rows.clone(),
        );
        let batcher_flush_duration = latency_histogram();
        registry.register_with_unit(
            "batcher_flush_duration",
            "Time one group commit took",
            Unit::Seconds,
            batcher_flush_duration.clone(),
        );
        let training_runs = Family::<StatusLabels, Counter>::default();
        registry.register(
            "training_runs",
            "Training runs this process executed, by final status",
            training_runs.clone(),
        );
        let training_duration: HistogramFamily<StatusLabels> =
            Family::new_with_constructor(training_histogram);
        registry.register_with_unit(
            "training_run_duration",
            "Wall-clock time of training runs this process executed, by final status",
            Unit::Seconds,
            training_duration.clone(),
        );
        // Known label values start at 0, so a rate() works from the first scrape and an
        // alert on failures can tell "none yet" from "not exported".
        for status in ["succeeded", "failed"] {
            drop(training_runs.get_or_create(&StatusLabels { status }));
            drop(training_duration.get_or_create(&StatusLabels { status }));
        }
        let training_runs_abandoned = Counter::default();
        registry.register(
            "training_runs_abandoned",
            "Training runs this process closed because the process running them stopped \
             renewing their lease (killed, out of memory, power lost)",
            training_runs_abandoned.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: crate::version::VERSION,
                commit: crate::version::COMMIT,
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the labels tell the running version and git commit",
            build_info,
        );
        Self {
            registry,
            http_requests,
            http_duration,
            readings_accepted,
            readings_duplicate,
            readings_rejected,
            ingest_queue_depth,
            batcher_flush_rows,
            batcher_flush_duration,
            training_runs,
            training_duration,
            training_runs_abandoned,
        }
    }
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// One answered HTTP request. `route` is the matched pattern, or `None` when no route
/// matched (recorded as `unmatched`, so scanners cannot create series at will).
pub fn http_request(method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
    let m = metrics();
    let route = route.unwrap_or("unmatched").to_string();
    m.http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.clone(),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabels {
            method: method.to_string(),
            route,
        })
        .observe(elapsed.as_secs_f64());
}

/// `n` readings of a request in `format` (`json`, `senml`, `influx`, …) were committed.
pub fn readings_accepted(format: &'static str, n: u64) {
    metrics()
        .readings_accepted
        .get_or_create(&FormatLabels { format })
        .inc_by(n);
}

/// `n` readings of a request in `format` were already stored (a repeat is a no-op).
pub fn readings_duplicate(format: &'static str, n: u64) {
    metrics()
        .readings_duplicate
        .get_or_create(&FormatLabels { format })
        .inc_by(n);
}

/// A request in `format` was refused; `reason` is a short fixed word such as
/// `unauthorized`, `invalid`, `too_large`, `overloaded` or `unavailable`.
pub fn readings_rejected(format: &'static str, reason: &'static str) {
    metrics()
        .readings_rejected
        .get_or_create(&RejectLabels { format, reason })
        .inc();
}

/// Write requests currently queued for the group commit.
pub fn set_ingest_queue_depth(depth: usize) {
    metrics()
        .ingest_queue_depth
        .set(i64::try_from(depth).unwrap_or(i64::MAX));
}

/// One group commit wrote `rows` readings in `elapsed`.
pub fn batcher_flush(rows: usize, elapsed: Duration) {
    let m = metrics();
    m.batcher_flush_rows.observe(rows as f64);
    m.batcher_flush_duration.observe(elapsed.as_secs_f64());
}

/// A training run finished with `status` (`succeeded` or `failed`) after `elapsed`.
pub fn training_run(status: &'static str, elapsed: Duration) {
    let m = metrics();
    let labels = StatusLabels { status };
    m.training_runs.get_or_create(&labels).inc();
    m.training_duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64());
}

/// Training runs found abandoned and closed by this process.
pub fn training_runs_abandoned(count: u64) {
    metrics().training_runs_abandoned.inc_by(count);
}

/// Everything `/metrics` shows: the process-wide registry, then the state read now from
/// the pool and the database. A database that does not answer still gives an answer
/// (with `hygrocast_database_up 0`): metrics matter most when something is wrong.
pub async fn render(pool: &Pool) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(8 * 1024);
    prometheus_text::encode(&mut out, &metrics().registry)?;

    let mut scrape = Registry::with_prefix(PREFIX);
    let status = pool.status();
    let connections = Family::<StateLabels, Gauge>::default();
    connections
        .get_or_create(&StateLabels { state: "idle" })
        .set(status.available as i64);
    connections
        .get_or_create(&StateLabels { state: "in_use" })
        .set(status.size.saturating_sub(status.available) as i64);
    scrape.register(
        "db_pool_connections",
        "Open database connections of this process, idle or in use",
        connections,
    );
    let max = Gauge::<i64>::default();
    max.set(status.max_size as i64);
    scrape.register(
        "db_pool_max_connections",
        "Largest number of database connections the pool opens",
        max,
    );
    let waiting = Gauge::<i64>::default();
    waiting.set(status.waiting as i64);
    scrape.register(
        "db_pool_waiting",
        "Tasks waiting for a database connection",
        waiting,
    );

    let state = tokio::time::timeout(SCRAPE_DB_TIMEOUT, DbState::read(pool)).await;
    let up = Gauge::<i64>::default();
    match state {
        Ok(Ok(state)) => {
            up.set(1);
            state.register(&mut scrape);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: database state unavailable"),
        Err(_) => tracing::warn!("metrics: database state query timed out"),
    }
    if let Some(heap) = heap::HeapStats::read() {
        heap.register(&mut scrape);
    }
    scrape.register(
        "database_up",
        "1 when the scrape-time database queries answered, else 0",
        up,
    );
    prometheus_text::encode(&mut out, &scrape)?;

    // The standard names, without the hygrocast_ prefix.
    if let Some(stats) = process::ProcessStats::read() {
        let mut standard = Registry::default();
        stats.register(&mut standard);
        prometheus_text::encode(&mut out, &standard)?;
    }
    Ok(out)
}

/// Per-sensor and scheduler state, read at scrape time.
struct DbState {
    sensors: Vec<SensorState>,
    jobs: Vec<(String, f64)>,
    queued_runs: i64,
    running_runs: i64,
}

struct SensorState {
    name: String,
    last_reading_age: Option<f64>,
    champion_mase: Option<f64>,
    live_mase: Option<f64>,
}

impl DbState {
    async fn read(pool: &Pool) -> Result<Self, crate::registry::RegistryError> {
        let client = pool.get().await?;
        // One index probe per sensor for each value: readings by (sensor_id, ts), the
        // champion by the one-champion unique index, live scores by (sensor_id, scored_at).
        let rows = client
            .query(
                "SELECT s.name, \
                        extract(epoch FROM now() - (SELECT max(r.ts) FROM readings r WHERE r.sensor_id = s.id))::float8, \
                        v.mase_1_24, \
                        (SELECT l.mase_1_24 FROM live_scores l \
                          WHERE l.sensor_id = s.id AND l.window_hours = 168 \
                          ORDER BY l.scored_at DESC LIMIT 1) \
                 FROM sensors s \
                 LEFT JOIN model_versions v ON v.sensor_id = s.id AND v.status = 'champion' \
                 ORDER BY s.name",
                &[],
            )
            .await?;
        let sensors = rows
            .iter()
            .map(|r| SensorState {
                name: r.get(0),
                last_reading_age: r.get(1),
                champion_mase: r.get(2),
                live_mase: r.get(3),
            })
            .collect();
        let jobs = client
            .query(
                "SELECT job, extract(epoch FROM max(finished_at))::float8 FROM job_runs \
                 WHERE status = 'succeeded' AND finished_at IS NOT NULL GROUP BY job ORDER BY job",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let runs = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'queued'), \
                        count(*) FILTER (WHERE status = 'running') \
                 FROM training_runs WHERE status IN ('queued', 'running')",
                &[],
            )
            .await?;
        let (queued_runs, running_runs): (i64, i64) = (runs.get(0), runs.get(1));
        Ok(Self {
            sensors,
            jobs,
            queued_runs,
            running_runs,
        })
    }

    fn register(self, registry: &mut Registry) {
        let count = Gauge::<i64>::default();
        count.set(self.sensors.len() as i64);
        registry.register("sensors", "Registered sensors", count);
        let age = Family::<SensorLabels, FloatGauge>::default();
        let champion = Family::<SensorLabels, FloatGauge>::default();
        let live = Family::<SensorLabels, FloatGauge>::default();
        for s in self.sensors {
            let labels = SensorLabels { sensor: s.name };
            // A value the database does not have yet is left out rather than shown as 0,
            // which would read as "perfect" for a MASE.
            let set = |family: &Family<SensorLabels, FloatGauge>, v: Option<f64>| {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    family.get_or_create(&labels).set(v);
                }
            };
            set(&age, s.last_reading_age);
            set(&champion, s.champion_mase);
            set(&live, s.live_mase);
        }
        registry.register_with_unit(
            "sensor_last_reading_age",
            "Time since the newest stored reading of each sensor",
            Unit::Seconds,
            age,
        );
        registry.register(
            "sensor_champion_backtest_mase",
            "Backtest MASE (horizons 1-24) of each sensor's champion model",
            champion,
        );
        registry.register(
            "sensor_live_mase",
            "Live MASE (horizons 1-24, last 7 days) of each sensor's issued forecasts, as last scored by the monitor job",
            live,
        );
        let jobs = Family::<JobLabels, FloatGauge>::default();
        for (job, at) in self.jobs {
            jobs.get_or_create(&JobLabels { job }).set(at);
        }
        registry.register(
            "scheduler_job_last_success_timestamp_seconds",
            "Unix time at which each scheduled job last finished successfully (any replica)",
            jobs,
        );
        let queued = Gauge::<i64>::default();
        queued.set(self.queued_runs);
        registry.register(
            "training_runs_queued",
            "Training runs waiting for a worker (all replicas)",
            queued,
        );
        let running = Gauge::<i64>::default();
        running.set(self.running_runs);
        registry.register(
            "training_runs_running",
            "Training runs being fitted now (all replicas; at most one per sensor)",
            running,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded() -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &metrics().registry).expect("encode");
        out
    }

    #[test]
    fn ingestion_and_batcher_events_are_exported_under_their_names() {
        readings_accepted("json", 3);
        readings_duplicate("influx", 2);
        readings_rejected("senml", "invalid");
        set_ingest_queue_depth(7);
        batcher_flush(40, Duration::from_millis(3));
        let text = encoded();
        for line in [
            "hygrocast_readings_accepted_total{format=\"json\"} ",
            "hygrocast_readings_duplicate_total{format=\"influx\"} ",
            "hygrocast_readings_rejected_total{format=\"senml\",reason=\"invalid\"} ",
            "hygrocast_ingest_queue_depth 7",
            "hygrocast_batcher_flush_rows_count ",
            "hygrocast_batcher_flush_duration_seconds_bucket{le=\"0.004\"} ",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }

    #[test]
    fn raw_paths_never_become_labels() {
        http_request("GET", None, 404, Duration::from_millis(1));
        let text = encoded();
        assert!(text.contains(
            "hygrocast_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ));
    }
}
