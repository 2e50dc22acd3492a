//! The database stops in the middle of a load: writes get 503 with Retry-After (never a
//! false acknowledgement), the batcher recovers by itself when the database returns, and
//! every acknowledged reading is stored. Runs on a private cluster it can stop.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hygrocast::db::{create_database_if_missing, migrate};
use hygrocast::domain::{SensorKind, SensorName};
use hygrocast::sensors::{self, NewSensor};

const CLIENTS: usize = 16;

#[derive(Default)]
struct Tally {
    acknowledged: Mutex<Vec<(i64, i64)>>,
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    other: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_mid_load_gives_503s_then_recovers_with_every_ack_stored() {
    common::init_test_logging();
    let (cluster, dir) = tokio::task::spawn_blocking(common::start_private_cluster)
        .await
        .expect("cluster");
    create_database_if_missing(&cluster.pg_config("postgres"), "app")
        .await
        .expect("create db");
    let pg_config = cluster.pg_config("app");
    let (mut client, conn) = pg_config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    migrate::run(&mut client).await.expect("migrate");
    let mut sensors_ = Vec::new();
    for i in 0..CLIENTS {
        let new = NewSensor {
            name: SensorName::parse(&format!("s{i}")).expect("name"),
            kind: SensorKind::Humidity,
            unit: None,
            location: None,
        };
        let (s, token) = sensors::create(&client, &new).await.expect("sensor");
        sensors_.push((s.id, token.expose().to_owned()));
    }
    drop(client);

    let mut settings = common::test_settings();
    settings.database.connect_timeout_secs = 1;
    let settings = Arc::new(settings);
    let pool = hygrocast::db::pool(pg_config.clone(), &settings.database).expect("pool");
    let app = hygrocast::web::Application::build(settings, pool).expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http");
    let start_ts = Utc::now().timestamp() - 86_400;
    let mut clients = Vec::new();
    for (i, (id, token)) in sensors_.iter().cloned().enumerate() {
        let (http, base, tally, stop) = (http.clone(), base.clone(), tally.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                // One reading per request, each at a new second: every 200 is a new row.
                let ts = start_ts + n * CLIENTS as i64 + i as i64;
                n += 1;
                let res = http
                    .post(format!("{base}/api/v1/readings"))
                    .header("Authorization", format!("Bearer {token}"))
                    .header("Content-Type", "application/json")
                    .body(format!(r#"{{"ts": {ts}, "value": 50}}"#))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        assert_eq!(body["accepted"], 1, "{body}");
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut acks) = tally.acknowledged.lock() {
                            acks.push((id, ts * 1_000_000));
                        }
                    }
                    Ok(r) if r.status() == 503 => {
                        let has_retry_after = r.headers().contains_key("retry-after");
                        if !has_retry_after {
                            if let Ok(mut o) = tally.other.lock() {
                                o.push("503 without Retry-After".into());
                            }
                        }
                        tally.unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        if let Ok(mut o) = tally.other.lock() {
                            o.push(format!("{status}: {text}"));
                        }
                    }
                    Err(e) => {
                        if let Ok(mut o) = tally.other.lock() {
                            o.push(format!("request error: {e}"));
                        }
                    }
                }
            }
        }));
    }

    let wait_for = |what: &'static str, cond: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    // Load is flowing.
    let t = tally.clone();
    wait_for(
        "first writes",
        Box::new(move || t.ok.load(Ordering::Relaxed) > 200),
    )
    .await;

    // Stop the database under load.
    let mut cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.stop().expect("stop cluster");
        cluster
    })
    .await
    .expect("stop");
    let ok_when_down = tally.ok.load(Ordering::Relaxed);
    let t = tally.clone();
    wait_for(
        "503s while the database is down",
        Box::new(move || t.unavailable.load(Ordering::Relaxed) > 50),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Nothing is acknowledged while the database is down (a few requests whose commit
    // completed just before the stop may answer just after it).
    assert!(
        tally.ok.load(Ordering::Relaxed) <= ok_when_down + CLIENTS,
        "acknowledged while the database was down"
    );

    cluster = tokio::task::spawn_blocking(move || {
        cluster.ensure_running().expect("restart cluster");
        cluster
    })
    .await
    .expect("restart");
    let ok_after_restart = tally.ok.load(Ordering::Relaxed);
    let t = tally.clone();
    wait_for(
        "writes to succeed again after the restart",
        Box::new(move || t.ok.load(Ordering::Relaxed) > ok_after_restart + 200),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }

    let other = tally.other.lock().map(|o| o.clone()).unwrap_or_default();
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    let acknowledged = tally
        .acknowledged
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    let (client, conn) = pg_config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("reconnect");
    tokio::spawn(conn);
    let stored: HashSet<(i64, i64)> = client
        .query("SELECT sensor_id, ts FROM readings", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get::<_, DateTime<Utc>>(1).timestamp_micros()))
        .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|k| !stored.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged readings are missing, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        missing.first()
    );
    eprintln!(
        "acknowledged {}, 503s {}, stored {}",
        acknowledged.len(),
        tally.unavailable.load(Ordering::Relaxed),
        stored.len()
    );
    drop(client);

    tokio::task::spawn_blocking(move || {
        let _ = cluster.stop();
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("cleanup");
}
