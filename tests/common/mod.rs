//! Test harness: the real app on a random port, against a fresh, randomly named database.
//!
//! Where the PostgreSQL server comes from, in order:
//! 1. `TEST_DATABASE_URL` (a maintenance database on a server the tests may create databases on);
//! 2. a server answering on 127.0.0.1:5432 as user `postgres`;
//! 3. a throwaway private cluster started with hygrocast's own embedded-default code, one per
//!    test binary, stopped and deleted when the binary exits.
//!
//! The schema is migrated once into a template database; every test clones it with
//! `CREATE DATABASE … TEMPLATE`, which is much faster than migrating each time.
#![allow(dead_code)]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hygrocast::config::Settings;
use hygrocast::db::embedded::EmbeddedCluster;
use hygrocast::db::{migrate, quote_ident};
use hygrocast::web::Application;
use tokio_postgres::NoTls;

/// The server every test in this binary uses, and how to reach its maintenance database.
struct TestServer {
    maintenance: tokio_postgres::Config,
    template: String,
}

static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();
static CLUSTER: Mutex<Option<(EmbeddedCluster, PathBuf)>> = Mutex::new(None);

extern "C" fn stop_cluster_at_exit() {
    if let Ok(mut guard) = CLUSTER.lock() {
        if let Some((mut cluster, dir)) = guard.take() {
            let _ = cluster.stop();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts a private cluster in a fresh temporary directory (blocking).
pub fn start_private_cluster() -> (EmbeddedCluster, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "hgc-test-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let mut cluster =
        EmbeddedCluster::new(&dir, "").expect("PostgreSQL server binaries for the test cluster");
    cluster.ensure_running().expect("start the test cluster");
    (cluster, dir)
}

/// A private cluster of its own (for tests that stop the database) with a migrated
/// database `app`: the cluster, its directory, the database's config and a client.
pub async fn private_migrated_database() -> (
    EmbeddedCluster,
    PathBuf,
    tokio_postgres::Config,
    tokio_postgres::Client,
) {
    let (cluster, dir) = tokio::task::spawn_blocking(start_private_cluster)
        .await
        .expect("cluster");
    hygrocast::db::create_database_if_missing(&cluster.pg_config("postgres"), "app")
        .await
        .expect("create db");
    let pg_config = cluster.pg_config("app");
    let (mut client, conn) = pg_config.connect(NoTls).await.expect("connect");
    tokio::spawn(conn);
    migrate::run(&mut client).await.expect("migrate");
    (cluster, dir, pg_config, client)
}

fn local_server_answers() -> Option<tokio_postgres::Config> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5432));
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    let cfg =
        tokio_postgres::Config::from_str("postgres://postgres@127.0.0.1:5432/postgres").ok()?;
    // Check we can actually log in, on a throwaway runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let ok = rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(2), cfg.connect(NoTls)).await {
            Ok(Ok((client, conn))) => {
                tokio::spawn(conn);
                client.simple_query("SELECT 1").await.is_ok()
            }
            _ => false,
        }
    });
    ok.then_some(cfg)
}

fn init_server() -> Result<TestServer, String> {
    let maintenance = if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        tokio_postgres::Config::from_str(&url).map_err(|e| format!("TEST_DATABASE_URL: {e}"))?
    } else if let Some(cfg) = std::thread::spawn(local_server_answers)
        .join()
        .ok()
        .flatten()
    {
        cfg
    } else {
        let (cluster, dir) = start_private_cluster();
        let cfg = cluster.pg_config("postgres");
        *CLUSTER.lock().map_err(|e| e.to_string())? = Some((cluster, dir));
        // SAFETY: registering a plain extern "C" function with atexit.
        unsafe { libc::atexit(stop_cluster_at_exit) };
        cfg
    };
    let template = format!("hgc_tpl_{}", uuid::Uuid::new_v4().simple());
    let maint = maintenance.clone();
    let tpl = template.clone();
    // Run on a private runtime in its own thread: callers may sit inside any runtime.
    std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let (client, conn) = maint.connect(NoTls).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE DATABASE {}", quote_ident(&tpl)))
                .await
                .map_err(|e| e.to_string())?;
            let mut cfg = maint.clone();
            cfg.dbname(&tpl);
            let (mut tclient, tconn) = cfg.connect(NoTls).await.map_err(|e| e.to_string())?;
            let handle = tokio::spawn(tconn);
            migrate::run(&mut tclient)
                .await
                .map_err(|e| e.to_string())?;
            drop(tclient);
            let _ = handle.await;
            Ok(())
        })
    })
    .join()
    .map_err(|_| "template set-up panicked".to_string())??;
    Ok(TestServer {
        maintenance,
        template,
    })
}

fn server() -> &'static TestServer {
    match SERVER.get_or_init(init_server) {
        Ok(s) => s,
        Err(e) => panic!("cannot set up the test database server: {e}"),
    }
}

/// A fresh database cloned from the migrated template; dropped when this value drops.
pub struct TestDatabase {
    pub name: String,
    pub pg_config: tokio_postgres::Config,
    maintenance: tokio_postgres::Config,
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_from(true).await
    }

    /// A fresh database; `migrated == false` gives an empty one (for migration tests).
    pub async fn create_from(migrated: bool) -> Self {
        let server = server();
        let name = format!("hgc_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = server
            .maintenance
            .connect(NoTls)
            .await
            .expect("connect maintenance db");
        tokio::spawn(conn);
        let sql = if migrated {
            format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(&name),
                quote_ident(&server.template)
            )
        } else {
            format!("CREATE DATABASE {}", quote_ident(&name))
        };
        client
            .batch_execute(&sql)
            .await
            .expect("create test database");
        let mut pg_config = server.maintenance.clone();
        pg_config.dbname(&name);
        Self {
            name,
            pg_config,
            maintenance: server.maintenance.clone(),
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = self
            .pg_config
            .connect(NoTls)
            .await
            .expect("connect test database");
        tokio::spawn(conn);
        client
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let maintenance = self.maintenance.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) = maintenance.connect(NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(&name)
                        ))
                        .await;
                }
            });
        })
        .join();
    }
}

/// The real application, listening on 127.0.0.1 on a random port.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub settings: Arc<Settings>,
    pub pool: deadpool_postgres::Pool,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    // Dropped last: the database goes after the server stops.
    pub db: TestDatabase,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    /// GET `path` and read its body as JSON, whatever the status (error bodies are JSON).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        self.db.client().await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command without waiting: the server runs on the test's own
        // runtime, which is busy running this drop.
        drop(self.handle.stop(false));
    }
}

/// Default settings for a test app: port 0, quiet logs.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 1;
    settings.database.pool_size = 8;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app on a fresh database, after letting the test adjust the settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_test_logging();
    let db = TestDatabase::create().await;
    let mut settings = test_settings();
    adjust(&mut settings);
    spawn_app_on(db, settings).await
}

pub async fn spawn_app_on(db: TestDatabase, settings: Settings) -> TestApp {
    let settings = Arc::new(settings);
    let pool = hygrocast::db::pool(db.pg_config.clone(), &settings.database).expect("build pool");
    let app = Application::build(settings.clone(), pool.clone()).expect("build app");
    let port = app.port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        settings,
        pool,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        handle,
        db,
    }
}

/// Logs from the app under test, shown with `TEST_LOG=1`.
pub fn init_test_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            hygrocast::telemetry::init(&hygrocast::config::LogSettings::default());
        }
    });
}

/// A conninfo string (`host=… port=… user=… dbname=…`) for a test database, for running
/// the real binary against it through `HYGROCAST_DATABASE__URL`.
pub fn conninfo(cfg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut parts = Vec::new();
    if let Some(host) = cfg.get_hosts().first() {
        match host {
            Host::Tcp(h) => parts.push(format!("host={h}")),
            Host::Unix(p) => parts.push(format!("host={}", p.display())),
        }
    }
    if let Some(port) = cfg.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = cfg.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(pw) = cfg.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(pw)));
    }
    if let Some(db) = cfg.get_dbname() {
        parts.push(format!("dbname={db}"));
    }
    parts.join(" ")
}

/// Inserts a sensor directly (its token hash is random: these tests don't post).
pub async fn insert_sensor(client: &tokio_postgres::Client, name: &str) -> i64 {
    client
        .query_one(
            "INSERT INTO sensors (name, kind, unit, token_hash) VALUES ($1, 'humidity', '%RH', \
             sha256(convert_to($1 || random()::text, 'UTF8'))) RETURNING id",
            &[&name],
        )
        .await
        .expect("insert sensor")
        .get(0)
}

/// Inserts readings (ts, value) for a sensor in one statement.
pub async fn insert_readings(
    client: &tokio_postgres::Client,
    sensor_id: i64,
    readings: &[(chrono::DateTime<chrono::Utc>, f64)],
) {
    let ts: Vec<_> = readings.iter().map(|r| r.0).collect();
    let vs: Vec<_> = readings.iter().map(|r| r.1).collect();
    client
        .execute(
            "INSERT INTO readings (sensor_id, ts, value) SELECT $1, t, v FROM unnest($2::timestamptz[], $3::float8[]) AS x(t, v) \
             ON CONFLICT DO NOTHING",
            &[&sensor_id, &ts, &vs],
        )
        .await
        .expect("insert readings");
}

/// `days` of simulated hourly humidity ending at `end`.
pub fn simulated_hourly(
    seed: u64,
    end: chrono::DateTime<chrono::Utc>,
    days: i64,
) -> Vec<(chrono::DateTime<chrono::Utc>, f64)> {
    let start = end - chrono::Duration::days(days);
    let mut sim = hygrocast::simulate::HumiditySimulator::new(seed, start, 3600);
    sim.readings_between(start, end)
        .into_iter()
        .map(|r| (r.ts(), r.value()))
        .collect()
}
