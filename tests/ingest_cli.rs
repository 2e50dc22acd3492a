//! The admin commands as an operator runs them: the real binary against the test
//! database (`HYGROCAST_DATABASE__URL`), and `simulate` posting to the real app.

mod common;

use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use common::{conninfo, spawn_app, spawn_app_on, test_settings, TestApp, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_hygrocast");

/// Runs `hygrocast <args>` against the app's database, off the async runtime.
async fn hygrocast(app: &TestApp, args: &[&str]) -> Output {
    hygrocast_on(&app.db.pg_config, args).await
}

/// Runs `hygrocast <args>` against the database `db`.
async fn hygrocast_on(db: &tokio_postgres::Config, args: &[&str]) -> Output {
    let url = conninfo(db);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let dir = std::env::temp_dir();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("HYGROCAST_DATABASE__URL", url)
            .env("HYGROCAST_LOG__LEVEL", "warn")
            .output()
            .expect("run hygrocast")
    })
    .await
    .expect("join")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `hygrocast sensor add --quiet <args>`, which must succeed: the new sensor's token.
async fn add_sensor(app: &TestApp, args: &[&str]) -> String {
    let args: Vec<&str> = ["sensor", "add", "--quiet"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    let out = hygrocast(app, &args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

async fn post_one(app: &TestApp, token: &str, value: f64) -> u16 {
    app.http
        .post(app.url("/api/v1/readings"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"value": {value}}}"#))
        .send()
        .await
        .expect("POST")
        .status()
        .as_u16()
}

#[tokio::test]
async fn sensor_add_list_rotate_and_remove() {
    let app = spawn_app().await;

    let out = hygrocast(
        &app,
        &[
            "sensor",
            "add",
            "--name",
            "greenhouse-1",
            "--location",
            "north wall",
            "--quiet",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert!(
        hygrocast::domain::Token::is_well_formed(&token),
        "--quiet prints only the token: {token:?}"
    );
    // Stored only as a hash.
    let client = app.client().await;
    let hash: Vec<u8> = client
        .query_one(
            "SELECT token_hash FROM sensors WHERE name = 'greenhouse-1'",
            &[],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(hash, hygrocast::domain::Token::hash(&token).to_vec());
    assert_eq!(post_one(&app, &token, 55.0).await, 200);

    let out = hygrocast(
        &app,
        &["sensor", "add", "--name", "attic", "--kind", "temperature"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("created sensor attic (temperature, °C)"),
        "{text}"
    );
    assert!(text.contains("token: hgc_"), "{text}");

    // Refusals name the problem.
    for (args, expect) in [
        (
            vec!["sensor", "add", "--name", "attic"],
            "a sensor named `attic` already exists",
        ),
        (vec!["sensor", "add", "--name", "Attic"], "may only contain"),
        (
            vec!["sensor", "add", "--name", "x", "--kind", "pressure"],
            "unknown sensor kind",
        ),
        (
            vec![
                "sensor",
                "add",
                "--name",
                "x",
                "--unit",
                "°F",
                "--kind",
                "temperature",
            ],
            "the unit must be `°C`",
        ),
        (
            vec!["sensor", "rotate-token", "nobody"],
            "no sensor named `nobody`",
        ),
    ] {
        let out = hygrocast(&app, &args).await;
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }

    let out = hygrocast(&app, &["sensor", "list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    for col in ["KIND", "UNIT", "READINGS", "LAST READING", "CREATED"] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(lines[1].starts_with("attic "), "sorted by name: {table}");
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        &row[..4],
        ["greenhouse-1", "humidity", "%RH", "1"],
        "{table}"
    );
    assert!(lines[2].ends_with("north wall"), "{table}");

    let out = hygrocast(&app, &["sensor", "rotate-token", "greenhouse-1", "--quiet"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let new_token = stdout(&out).trim().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(
        post_one(&app, &token, 56.0).await,
        401,
        "old token after rotation"
    );
    assert_eq!(post_one(&app, &new_token, 57.0).await, 200);

    let out = hygrocast(&app, &["sensor", "remove", "greenhouse-1"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has 2 readings"), "{}", stderr(&out));
    let out = hygrocast(&app, &["sensor", "remove", "greenhouse-1", "--purge"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("and its 2 readings"),
        "{}",
        stdout(&out)
    );
    let out = hygrocast(&app, &["sensor", "remove", "attic"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let n: i64 = client
        .query_one("SELECT count(*) FROM sensors", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);
    assert_eq!(post_one(&app, &new_token, 58.0).await, 401);
}

#[tokio::test]
async fn simulate_backfills_reproducibly_in_every_format() {
    let app = spawn_app().await;
    let mut all = Vec::new();
    for format in ["json", "senml", "line"] {
        let name = format!("sim-{format}");
        let token = add_sensor(&app, &["--name", &name]).await;
        let out = hygrocast(
            &app,
            &[
                "simulate",
                "--url",
                &app.address,
                "--token",
                &token,
                "--backfill",
                "2d",
                "--interval",
                "5m",
                "--batch",
                "100",
                "--format",
                format,
                "--seed",
                "42",
                "--backfill-only",
            ],
        )
        .await;
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        let client = app.client().await;
        let rows = client
            .query(
                "SELECT r.ts, r.value FROM readings r JOIN sensors s ON s.id = r.sensor_id \
                 WHERE s.name = $1 ORDER BY ts",
                &[&name],
            )
            .await
            .expect("rows");
        // Two days at 5 minutes is 576 slots, minus the simulated dropouts.
        assert!(
            (450..=577).contains(&rows.len()),
            "{format}: {} readings",
            rows.len()
        );
        let series: Vec<(DateTime<Utc>, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert!(series.iter().all(|(_, v)| (0.0..=100.0).contains(v)));
        all.push(series);
    }
    // Same seed, same grid: the same series whichever format carried it. (Unless a
    // 5-minute boundary passed between two runs, which moves the grid.)
    for pair in all.windows(2) {
        if pair[0].first().map(|r| r.0) == pair[1].first().map(|r| r.0) {
            assert_eq!(pair[0], pair[1]);
        }
    }
}

#[tokio::test]
async fn simulate_stops_on_a_refused_token() {
    let app = spawn_app().await;
    let fake = hygrocast::domain::Token::generate();
    let out = hygrocast(
        &app,
        &[
            "simulate",
            "--url",
            &app.address,
            "--token",
            fake.expose(),
            "--backfill",
            "1h",
            "--backfill-only",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
}

/// Kills the child process when dropped, so a failing test leaves nothing running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn simulate_retries_until_the_server_is_up_then_posts_live_readings() {
    common::init_test_logging();
    // The sensor exists, but no server listens yet on the port the simulator posts to.
    let db = common::TestDatabase::create().await;
    let client = db.client().await;
    let new = hygrocast::sensors::NewSensor {
        name: hygrocast::domain::SensorName::parse("late-server").expect("name"),
        kind: hygrocast::domain::SensorKind::Humidity,
        unit: None,
        location: None,
    };
    let (sensor, token) = hygrocast::sensors::create(&client, &new)
        .await
        .expect("sensor");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let launched = Utc::now();
    let child = Command::new(BIN)
        .args([
            "simulate",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            token.expose(),
            "--backfill",
            "10m",
            "--interval",
            "1s",
            "--batch",
            "100",
            "--seed",
            "3",
        ])
        .current_dir(std::env::temp_dir())
        .env_remove("RUST_LOG")
        .env("HYGROCAST_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn simulate");
    let _child = KillOnDrop(child);
    // Let it fail to connect a few times first.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut settings = common::test_settings();
    settings.server.bind = format!("127.0.0.1:{port}");
    let _app = common::spawn_app_on(db, settings).await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE ts >= $2) FROM readings WHERE sensor_id = $1",
                &[&sensor.id, &launched],
            )
            .await
            .expect("count");
        let (total, live): (i64, i64) = (row.get(0), row.get(1));
        // Ten minutes at one second is 600 slots, less a few simulated dropouts.
        if total >= 550 && live >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "simulate did not catch up: {total} readings, {live} live"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn table_count(db: &TestDatabase) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .expect("count tables")
        .get(0)
}

#[tokio::test]
async fn a_backup_restores_into_an_empty_database_where_the_sensors_tokens_still_work() {
    let app = spawn_app().await;
    let token = add_sensor(&app, &["--name", "cellar"]).await;
    let base = Utc::now().timestamp() - 3600;
    let batch: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"ts": {}, "value": {}}}"#, base + i * 60, 41 + i))
        .collect();
    let res = app
        .http
        .post(app.url("/api/v1/readings"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(format!("[{}]", batch.join(",")))
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status(), 200);

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("hygrocast.dump");
    let file_arg = file.to_str().expect("utf-8 path");
    let out = hygrocast(&app, &["backup", "--out", file_arg]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 sensors, 3 readings"),
        "{}",
        stdout(&out)
    );
    assert!(!dir.path().join("hygrocast.partial").exists());

    // Restoring over a database in use is refused and changes nothing.
    let out = hygrocast(&app, &["restore", "--from", file_arg]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("restore only into an empty one"),
        "{}",
        stderr(&out)
    );
    let n: i64 = app
        .client()
        .await
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 3);

    // A damaged file leaves the empty database empty (one transaction).
    let damaged_db = TestDatabase::create_from(false).await;
    let damaged = dir.path().join("damaged.dump");
    let mut bytes = std::fs::read(&file).expect("read dump");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&damaged, bytes).expect("write");
    let out = hygrocast_on(
        &damaged_db.pg_config,
        &["restore", "--from", damaged.to_str().expect("utf-8")],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pg_restore failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(table_count(&damaged_db).await, 0);

    let fresh = TestDatabase::create_from(false).await;
    let out = hygrocast_on(&fresh.pg_config, &["restore", "--from", file_arg]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 sensors, 3 readings"),
        "{}",
        stdout(&out)
    );
    // The restored database is a working hygrocast database: the old token posts to it
    // and the readings read back.
    let restored = spawn_app_on(fresh, test_settings()).await;
    assert_eq!(post_one(&restored, &token, 44.0).await, 200);
    let body: serde_json::Value = restored
        .get_json("/api/v1/sensors/cellar/readings?from=0")
        .await;
    let values: Vec<f64> = body["readings"]
        .as_array()
        .expect("readings")
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect();
    assert_eq!(values, vec![41.0, 42.0, 43.0, 44.0]);
}

#[tokio::test]
async fn sensor_edit_renames_and_relocates_and_the_token_still_writes() {
    let app = spawn_app().await;
    let token = add_sensor(&app, &["--name", "shelf-1", "--location", "hall"]).await;
    assert_eq!(post_one(&app, &token, 41.0).await, 200);
    let forecast_name = |path: &'static str| {
        let app = &app;
        async move {
            let res = app.http.get(app.url(path)).send().await.expect("GET");
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            (status, body["sensor"].as_str().map(str::to_owned))
        }
    };
    // Served once under the old name, so a cached forecast exists to go stale.
    assert_eq!(
        forecast_name("/api/v1/sensors/shelf-1/forecast").await,
        (200, Some("shelf-1".into()))
    );

    let out = hygrocast(
        &app,
        &[
            "sensor",
            "edit",
            "shelf-1",
            "--rename",
            "archive-shelf-1",
            "--location",
            "vault B",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("renamed sensor shelf-1 to archive-shelf-1"),
        "{}",
        stdout(&out)
    );
    let out = hygrocast(&app, &["sensor", "list"]).await;
    let table = stdout(&out);
    let row = table
        .lines()
        .find(|l| l.starts_with("archive-shelf-1 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.ends_with("vault B"), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("shelf-1 ")), "{table}");

    // Once the server re-checks, the API answers under the new name only, and the
    // forecast (unchanged: no reading since) names the sensor so.
    tokio::time::sleep(std::time::Duration::from_millis(
        app.settings.registry.serve_recheck_ms + 100,
    ))
    .await;
    assert_eq!(
        forecast_name("/api/v1/sensors/shelf-1/forecast").await.0,
        404
    );
    assert_eq!(
        forecast_name("/api/v1/sensors/archive-shelf-1/forecast").await,
        (200, Some("archive-shelf-1".into()))
    );

    // The device's token writes to the renamed sensor; its history came along.
    assert_eq!(post_one(&app, &token, 42.0).await, 200);
    let client = app.client().await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id WHERE s.name = 'archive-shelf-1'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 2);

    // An empty location clears it; a taken or unknown name is refused, naming it.
    let out = hygrocast(
        &app,
        &["sensor", "edit", "archive-shelf-1", "--location", ""],
    )
    .await;
    assert!(stdout(&out).contains("location (none)"), "{}", stdout(&out));
    add_sensor(&app, &["--name", "shelf-2"]).await;
    let out = hygrocast(
        &app,
        &["sensor", "edit", "shelf-2", "--rename", "archive-shelf-1"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("`archive-shelf-1` already exists"),
        "{}",
        stderr(&out)
    );
    let out = hygrocast(&app, &["sensor", "edit", "nobody", "--location", "x"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no sensor named `nobody`"),
        "{}",
        stderr(&out)
    );
    let out = hygrocast(&app, &["sensor", "edit", "shelf-2"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nothing to change"),
        "{}",
        stderr(&out)
    );
}
