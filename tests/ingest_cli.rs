//! The admin commands as an operator runs them: the real binary against the test
//! database (`HYGROCAST_DATABASE__URL`), and `simulate` posting to the real app.

mod common;

use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use common::{spawn_app, TestApp};
use tokio_postgres::config::Host;

const BIN: &str = env!("CARGO_BIN_EXE_hygrocast");

/// A libpq key=value connection string for the test database (Unix-socket hosts as
/// `host=/dir`, which tokio-postgres accepts).
fn conninfo(cfg: &tokio_postgres::Config) -> String {
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

/// Runs `hygrocast <args>` against the app's database, off the async runtime.
async fn hygrocast(app: &TestApp, args: &[&str]) -> Output {
    let url = conninfo(&app.db.pg_config);
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
        let out = hygrocast(&app, &["sensor", "add", "--name", &name, "--quiet"]).await;
        assert!(out.status.success(), "{}", stderr(&out));
        let token = stdout(&out).trim().to_owned();
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
