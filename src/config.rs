//! Settings: built-in defaults, then `config.toml`, then `HYGROCAST_<SECTION>__<KEY>`
//! environment overrides, validated once at start-up.
//!
//! Every setting is documented with its default in the top-level `config.toml`; the
//! defaults here must stay in step with it (a test parses that file and compares).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides: `HYGROCAST_DATABASE__URL` sets `database.url`.
pub const ENV_PREFIX: &str = "HYGROCAST_";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub scheduler: SchedulerSettings,
    pub forecast: ForecastSettings,
    pub registry: RegistrySettings,
    pub monitor: MonitorSettings,
    pub retention: RetentionSettings,
    pub ingest: IngestSettings,
    pub ui: UiSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// Path prefix under which a reverse proxy publishes hygrocast (e.g. "/hygrocast");
    /// empty when served at the root. Only generated links carry it: the proxy strips it.
    pub base_path: String,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Peers (IP addresses or CIDR networks) whose X-Forwarded-For/Proto/Host headers are
    /// believed: the reverse proxy. Requests from anyone else are taken at face value.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            base_path: String::new(),
            shutdown_timeout_secs: 30,
            workers: 0,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL. Empty: hygrocast runs its own private cluster in `data_dir`.
    pub url: String,
    /// Directory of the embedded cluster (and its Unix socket).
    pub data_dir: PathBuf,
    /// Unprivileged user that owns and runs the embedded cluster when hygrocast runs as
    /// root (PostgreSQL refuses to run as root). Empty: `postgres` if it exists, else `nobody`.
    pub embedded_user: String,
    /// Maximum connections in the pool.
    pub pool_size: usize,
    /// Seconds to wait for a connection before giving up.
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            data_dir: PathBuf::from("./data"),
            embedded_user: String::new(),
            pool_size: 16,
            connect_timeout_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// A tracing filter such as `info` or `hygrocast=debug,actix_web=info`;
    /// `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// Retrain every sensor with new data (6 fields: sec min hour day-of-month month day-of-week).
    pub retrain_cron: String,
    pub retrain_enabled: bool,
    /// Score live forecasts against the readings that arrived, and retrain on drift.
    pub monitor_cron: String,
    pub monitor_enabled: bool,
    /// Delete what `[retention]` says is no longer needed.
    pub prune_cron: String,
    pub prune_enabled: bool,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            retrain_cron: "0 0 3 * * *".into(),
            retrain_enabled: true,
            monitor_cron: "0 5 * * * *".into(),
            monitor_enabled: true,
            prune_cron: "0 30 3 * * *".into(),
            prune_enabled: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastSettings {
    /// Grid step of the resampled series, seconds (readings in a step are averaged).
    pub step_secs: i64,
    /// Longest gap, in steps, filled by interpolation; longer gaps stay gaps.
    pub max_fill: usize,
    /// Steps forecast ahead (120 hourly steps = 5 days).
    pub horizon: usize,
    /// Length of the rolling-origin evaluation window, days.
    pub window_days: u32,
    /// Least history, days, before a learned model is trained; until then the
    /// seasonal-naive baseline serves, labelled as such.
    pub min_history_days: u32,
    /// Most recent history, days, a training run reads.
    pub train_days: u32,
    /// Candidate algorithms the backtest chooses from.
    pub candidates: Vec<String>,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        Self {
            step_secs: 3600,
            max_fill: 3,
            horizon: 120,
            window_days: 60,
            min_history_days: 14,
            train_days: 365,
            candidates: vec![
                "seasonal_naive".into(),
                "ridge".into(),
                "forest".into(),
                "analog".into(),
                "blend".into(),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// A new version replaces the champion only if its backtest MASE 1–24 h is at most
    /// champion × (1 − min_improvement) on the same window (0 = not worse).
    pub min_improvement: f64,
    /// How often each replica looks for queued training runs, seconds.
    pub poll_secs: u64,
    /// A served forecast is re-checked against the database (new readings, a new
    /// champion on any replica) at most this often, milliseconds; 0 checks every request.
    /// Changes made through this process are seen at once.
    pub serve_recheck_ms: u64,
    /// At shutdown, how long a fit in progress may run on before it is given up and its
    /// run queued again, seconds.
    pub shutdown_grace_secs: u64,
    /// Training runs this replica executes at once. A fit keeps one core busy, so on a
    /// machine that also serves, leave at least one core to the requests.
    pub training_workers: usize,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            min_improvement: 0.0,
            poll_secs: 5,
            serve_recheck_ms: 1000,
            shutdown_grace_secs: 10,
            training_workers: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    /// Retrain at once when the live 7-day MASE 1–24 h exceeds the champion's backtest
    /// MASE by more than this fraction (or exceeds 1.0, worse than seasonal naive).
    pub degradation: f64,
    /// Least scored forecast points in the 7-day window before the drift rule applies.
    pub min_points: i64,
    /// After a drift retrain, hours before the rule may fire again for that sensor.
    pub cooldown_hours: i64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            degradation: 0.3,
            min_points: 12,
            cooldown_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days an issued forecast is kept after its target time; 0 keeps every one. The
    /// monitor scores the last 7 days, so older ones are only history, and they are the
    /// largest table: 120 rows per sensor for every origin.
    pub issued_forecast_days: u32,
    /// How many of each sensor's newest versions keep their fitted model; 0 keeps every
    /// one. Older versions keep their record (metrics, the data they saw, promotions) but
    /// not the model (about 200 KB each, one a day with the default retrain). The champion
    /// and the version a rollback would restore always keep theirs.
    pub models_kept: u32,
    /// Days a reading is kept; 0 keeps every one. At least `forecast.train_days`, so
    /// training always sees the history it asks for. A run whose data is partly deleted
    /// keeps its record and digest, but `hygrocast export` can no longer reproduce it.
    pub readings_days: u32,
}

impl RetentionSettings {
    /// The monitor's longest scoring window, in days: pruning inside it would change the
    /// live scores and the drift rule.
    pub const MIN_ISSUED_FORECAST_DAYS: u32 = 7;

    /// The oldest time a reading is kept at `now`; `None` when readings are kept forever.
    pub fn readings_kept_from(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        (self.readings_days != 0)
            .then(|| now - chrono::Duration::days(i64::from(self.readings_days)))
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            issued_forecast_days: 30,
            models_kept: 30,
            readings_days: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Largest request body in bytes, both as received and after gzip decoding.
    pub max_body: usize,
    /// Most readings one request may carry.
    pub max_batch: usize,
    /// How far ahead of the server clock a reading's timestamp may be (clock skew).
    pub max_future_secs: u64,
    /// Requests waiting for a database write; when full, new requests get 503.
    pub queue_capacity: usize,
    /// Writer tasks, each committing one group of queued requests at a time.
    pub writers: usize,
    /// Most readings one group commit writes (a single larger request is written alone).
    pub max_flush_rows: usize,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_body: 8 * 1024 * 1024,
            max_batch: 10_000,
            max_future_secs: 300,
            queue_capacity: 1024,
            writers: 4,
            max_flush_rows: 20_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiSettings {
    /// IANA time zone the pages show times in, e.g. "Europe/Berlin".
    pub timezone: String,
    /// Read-only pages are visible without logging in; `false` requires the admin login.
    pub public: bool,
    /// Argon2 PHC hash of the admin password (`hygrocast admin set-password`);
    /// empty disables the admin login and so the admin actions on the pages.
    pub admin_password_hash: String,
    /// A sensor whose last reading is older than this many seconds is flagged as stale.
    pub stale_after_secs: i64,
    /// Days of history the sensor page shows by default (`?days=N` picks another).
    pub history_days: u32,
    /// Mark the admin session cookie `Secure` (set when Apache serves HTTPS).
    pub secure_cookies: bool,
    /// Seconds a rendered dashboard or sensor page is reused for readers who are not
    /// logged in; 0 renders every request afresh.
    pub page_cache_secs: u64,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            public: true,
            admin_password_hash: String::new(),
            stale_after_secs: 900,
            history_days: 7,
            secure_cookies: false,
            page_cache_secs: 5,
        }
    }
}

impl UiSettings {
    /// Longest history, days, a sensor page may ask for.
    pub const MAX_HISTORY_DAYS: u32 = 366;

    /// The configured time zone (validated at load; UTC if somehow not).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Parses a cron expression exactly as tokio-cron-scheduler will (seconds field required).
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::Cron::new(expr)
        .with_seconds_required()
        .with_dom_and_dow()
        .parse()
        .map_err(|e| {
            format!(
                "`{expr}` is not a 6-field cron expression (sec min hour day month weekday): {e}"
            )
        })
}

/// A configuration problem, naming where it came from and which key is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid setting `{key}` (from {origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

impl Settings {
    /// Loads settings the way the binary does: `path` if given (it must exist), else
    /// `./config.toml` if present, else defaults; then overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let default = PathBuf::from("config.toml");
                default.exists().then_some(default)
            }
        };
        let mut settings = match &file {
            Some(p) => Self::from_file(p)?,
            None => Settings::default(),
        };
        let overridden = settings.apply_env(env)?;
        let origin_of = |key: &str| -> String {
            match overridden.iter().find(|(k, _)| k == key) {
                Some((_, var)) => format!("environment variable {var}"),
                None => match &file {
                    Some(p) => format!("config file {}", p.display()),
                    None => "built-in default".into(),
                },
            }
        };
        settings.validate(&origin_of)?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Applies `HYGROCAST_SECTION__KEY=value` overrides; returns which keys each variable set.
    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let mut overrides: Vec<(String, String, String)> = env
            .into_iter()
            .filter_map(|(var, value)| {
                let rest = var.strip_prefix(ENV_PREFIX)?;
                let (section, key) = rest.split_once("__")?;
                Some((
                    var.clone(),
                    format!("{}.{}", section.to_lowercase(), key.to_lowercase()),
                    value,
                ))
            })
            .collect();
        if overrides.is_empty() {
            return Ok(Vec::new());
        }
        overrides.sort();
        let mut tree = toml::Value::try_from(&*self).map_err(|e| ConfigError::Env {
            var: "(all)".into(),
            message: e.to_string(),
        })?;
        for (var, dotted, raw) in &overrides {
            let (section, key) = dotted.split_once('.').unwrap_or((dotted, ""));
            let env_err = |message: String| ConfigError::Env {
                var: var.clone(),
                message,
            };
            let table = tree
                .get_mut(section)
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| env_err(format!("unknown section `{section}`")))?;
            let current = table
                .get(key)
                .ok_or_else(|| env_err(format!("unknown key `{dotted}`")))?;
            let value =
                env_value_like(current, raw).map_err(|m| env_err(format!("{dotted}: {m}")))?;
            table.insert(key.to_string(), value);
        }
        *self = tree
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Env {
                var: overrides
                    .iter()
                    .map(|(v, _, _)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                message: e.to_string().trim_end().to_string(),
            })?;
        Ok(overrides
            .into_iter()
            .map(|(var, key, _)| (key, var))
            .collect())
    }

    /// Checks what types alone cannot: addresses, URLs, paths, cron expressions.
    fn validate(&self, origin_of: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.into(),
            origin: origin_of(key),
            message,
        };
        SocketAddr::from_str(&self.server.bind).map_err(|e| {
            invalid(
                "server.bind",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080 ({e})",
                    self.server.bind
                ),
            )
        })?;
        let bp = &self.server.base_path;
        if !bp.is_empty() && (!bp.starts_with('/') || bp.ends_with('/') || bp.contains("//")) {
            return Err(invalid(
                "server.base_path",
                format!(
                    "`{bp}` must be empty or start with `/` and not end with one, e.g. /hygrocast"
                ),
            ));
        }
        crate::web::proxy::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|m| invalid("server.trusted_proxies", m))?;
        if !self.database.url.is_empty() {
            validate_database_url(&self.database.url).map_err(|m| invalid("database.url", m))?;
        }
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1".into()));
        }
        if self.database.data_dir.as_os_str().is_empty() {
            return Err(invalid("database.data_dir", "must not be empty".into()));
        }
        if self.forecast.step_secs <= 0 || 86_400 % self.forecast.step_secs != 0 {
            return Err(invalid(
                "forecast.step_secs",
                format!(
                    "{} must be a positive divisor of a day (e.g. 3600)",
                    self.forecast.step_secs
                ),
            ));
        }
        if self.forecast.horizon == 0 {
            return Err(invalid("forecast.horizon", "must be at least 1".into()));
        }
        // A shorter window would make every training run skip every candidate.
        let per_day = crate::forecast::period_for_step(self.forecast.step_secs);
        if let Some(why) = crate::forecast::window_shortfall(
            self.forecast.window_days,
            per_day,
            self.forecast.horizon,
        ) {
            return Err(invalid("forecast.window_days", why));
        }
        for name in &self.forecast.candidates {
            name.parse::<crate::forecast::Algorithm>().map_err(|_| {
                invalid(
                    "forecast.candidates",
                    format!(
                        "unknown algorithm `{name}` (known: {})",
                        crate::forecast::Algorithm::ALL.map(|a| a.name()).join(", ")
                    ),
                )
            })?;
        }
        if !(0.0..1.0).contains(&self.registry.min_improvement) {
            return Err(invalid(
                "registry.min_improvement",
                "must be in [0, 1)".into(),
            ));
        }
        if self.monitor.degradation < 0.0 || !self.monitor.degradation.is_finite() {
            return Err(invalid(
                "monitor.degradation",
                "must be a non-negative number".into(),
            ));
        }
        let keep = self.retention.issued_forecast_days;
        if keep != 0 && keep < RetentionSettings::MIN_ISSUED_FORECAST_DAYS {
            return Err(invalid(
                "retention.issued_forecast_days",
                format!(
                    "must be 0 (keep all) or at least {}: the monitor scores the last {} days",
                    RetentionSettings::MIN_ISSUED_FORECAST_DAYS,
                    RetentionSettings::MIN_ISSUED_FORECAST_DAYS
                ),
            ));
        }
        let readings = self.retention.readings_days;
        if readings != 0 && readings < self.forecast.train_days {
            return Err(invalid(
                "retention.readings_days",
                format!(
                    "must be 0 (keep all) or at least forecast.train_days ({}): training reads \
                     that much history",
                    self.forecast.train_days
                ),
            ));
        }
        let ingest = &self.ingest;
        for (key, value) in [
            ("ingest.max_body", ingest.max_body),
            ("ingest.max_batch", ingest.max_batch),
            ("ingest.queue_capacity", ingest.queue_capacity),
            ("ingest.writers", ingest.writers),
            ("ingest.max_flush_rows", ingest.max_flush_rows),
            ("registry.training_workers", self.registry.training_workers),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".into()));
            }
        }
        // Each writer holds a pooled connection while it flushes: more writers than
        // connections could never all run.
        if ingest.writers > self.database.pool_size {
            return Err(invalid(
                "ingest.writers",
                format!(
                    "{} writers cannot exceed database.pool_size ({})",
                    ingest.writers, self.database.pool_size
                ),
            ));
        }
        self.ui.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            invalid(
                "ui.timezone",
                format!(
                    "`{}` is not an IANA time zone name like UTC or Europe/Berlin",
                    self.ui.timezone
                ),
            )
        })?;
        if !self.ui.admin_password_hash.is_empty() {
            argon2::PasswordHash::new(&self.ui.admin_password_hash).map_err(|e| {
                invalid(
                    "ui.admin_password_hash",
                    format!(
                        "not a PHC password hash ({e}); set it with `hygrocast admin set-password`"
                    ),
                )
            })?;
        }
        if self.ui.stale_after_secs <= 0 {
            return Err(invalid("ui.stale_after_secs", "must be at least 1".into()));
        }
        if !(1..=UiSettings::MAX_HISTORY_DAYS).contains(&self.ui.history_days) {
            return Err(invalid(
                "ui.history_days",
                format!("must be between 1 and {}", UiSettings::MAX_HISTORY_DAYS),
            ));
        }
        for (key, expr) in [
            ("scheduler.retrain_cron", &self.scheduler.retrain_cron),
            ("scheduler.monitor_cron", &self.scheduler.monitor_cron),
            ("scheduler.prune_cron", &self.scheduler.prune_cron),
        ] {
            parse_cron(expr).map_err(|m| invalid(key, m))?;
        }
        Ok(())
    }
}

/// Parses an environment value as the same TOML type as the setting it replaces, so
/// `HYGROCAST_DATABASE__POOL_SIZE=8` is a number and `HYGROCAST_SERVER__BIND=...` a string.
fn env_value_like(current: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    use toml::Value;
    Ok(match current {
        Value::String(_) => Value::String(raw.to_string()),
        Value::Integer(_) => Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("`{raw}` is not an integer"))?,
        ),
        Value::Float(_) => Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("`{raw}` is not a number"))?,
        ),
        Value::Boolean(_) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(format!("`{raw}` is not true or false")),
        }),
        Value::Array(_) => {
            let parsed: toml::Table = toml::from_str(&format!("v = {raw}"))
                .map_err(|_| format!("`{raw}` is not a TOML array like [\"a\", \"b\"]"))?;
            parsed.get("v").cloned().ok_or("missing value")?
        }
        _ => Value::String(raw.to_string()),
    })
}

/// Checks a `postgres://` URL (or key=value conninfo) and says what is wrong with it.
pub fn validate_database_url(url: &str) -> Result<(), String> {
    if url.contains("://") {
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("`{}` is not a valid URL ({e})", redact(url)))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "scheme `{}` is not postgres:// or postgresql://",
                parsed.scheme()
            ));
        }
    }
    tokio_postgres::Config::from_str(url)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "`{}` is not a PostgreSQL connection string ({e})",
                redact(url)
            )
        })
}

/// Hides a password in a connection URL before it reaches a message or a log.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
