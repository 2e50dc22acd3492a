//! `/metrics`: Prometheus text with our names, counters that move with traffic and
//! training, and per-sensor gauges read from the database at scrape time.

mod common;

use chrono::{Duration, Utc};
use common::{insert_readings, insert_sensor, simulated_hourly, spawn_app_with, TestApp};
use hygrocast::forecast::Algorithm;
use hygrocast::registry::{runs, trainer, Trigger};

async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    res.text().await.expect("metrics body")
}

/// The value of the sample whose name and labels are exactly `series`
/// (`name{a="b",c="d"}`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// This process's CPU time in clock ticks, as `/proc/self/stat` counts it (utime + stime).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which may hold spaces: state is the first,
    // utime and stime the 12th and 13th.
    let rest = stat.rsplit_once(") ").expect("stat format").1;
    let field = |i: usize| -> u64 {
        rest.split(' ')
            .nth(i)
            .and_then(|v| v.parse().ok())
            .expect("stat field")
    };
    field(11) + field(12)
}

/// Keeps a core busy until this process has used at least `ticks` clock ticks of CPU: a
/// fresh test process may not have used one (10 ms) yet when it first scrapes.
fn burn_cpu_until(ticks: u64) {
    let mut x = 0u64;
    while cpu_ticks() < ticks {
        for i in 0..100_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
}

fn quiet(settings: &mut hygrocast::config::Settings) {
    settings.scheduler.retrain_enabled = false;
    settings.scheduler.monitor_enabled = false;
    settings.forecast.window_days = 5;
    settings.forecast.train_days = 40;
}

#[tokio::test]
async fn metrics_lists_our_families_and_counts_requests_by_route_pattern() {
    let app = spawn_app_with(quiet).await;
    app.get("/healthz").await;
    burn_cpu_until(2);
    let before = scrape(&app).await;
    // Families that have samples from the start (a labelled family appears with its
    // first series: the per-sensor ones are checked in the next test).
    for family in [
        "# TYPE hygrocast_http_requests_total counter",
        "# TYPE hygrocast_http_request_duration_seconds histogram",
        "# TYPE hygrocast_ingest_queue_depth gauge",
        "# TYPE hygrocast_batcher_flush_rows histogram",
        "# TYPE hygrocast_batcher_flush_duration_seconds histogram",
        "# TYPE hygrocast_training_runs_total counter",
        "# TYPE hygrocast_training_run_duration_seconds histogram",
        "# TYPE hygrocast_training_runs_queued gauge",
        "# TYPE hygrocast_training_runs_running gauge",
        "# TYPE hygrocast_training_runs_abandoned_total counter",
        "# TYPE hygrocast_db_pool_connections gauge",
        "# TYPE hygrocast_db_pool_waiting gauge",
        "# TYPE hygrocast_build_info gauge",
    ] {
        assert!(before.contains(family), "missing `{family}` in:\n{before}");
    }
    assert_eq!(sample(&before, "hygrocast_database_up"), Some(1.0));
    assert_eq!(sample(&before, "hygrocast_sensors"), Some(0.0));
    // The standard process metrics, under the names dashboards expect.
    let rss = sample(&before, "process_resident_memory_bytes").expect("resident memory");
    assert!(rss > 1e6, "{rss}");
    let started = sample(&before, "process_start_time_seconds").expect("start time");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - 86_400.0..=now).contains(&started),
        "{started} vs {now}"
    );
    let cpu = sample(&before, "process_cpu_seconds_total").expect("cpu seconds");
    // Linux reports CPU time to user space in 1/100 s (USER_HZ) on every architecture
    // hygrocast builds for.
    let now = cpu_ticks() as f64 / 100.0;
    assert!((0.02..=now).contains(&cpu), "{cpu} s of CPU, {now} s now");
    assert!(sample(&before, "process_open_fds").is_some_and(|n| n >= 3.0));
    // What the allocator holds (glibc): some of it in use, never more than was ever mapped.
    let allocated = sample(&before, "hygrocast_heap_allocated_bytes").expect("heap allocated");
    let virt = sample(&before, "process_virtual_memory_bytes").expect("virtual memory");
    assert!(allocated > 0.0 && allocated < virt, "{allocated} of {virt}");
    assert!(sample(&before, "hygrocast_heap_free_bytes").is_some());
    assert_eq!(
        sample(&before, "hygrocast_db_pool_max_connections"),
        Some(app.settings.database.pool_size as f64)
    );
    assert!(before.contains(&format!(
        "hygrocast_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        hygrocast::version::VERSION,
        hygrocast::version::COMMIT
    )));

    // Counters are process-wide and other tests in this binary run alongside: compare
    // before and after, expecting at least our own requests.
    let series =
        r#"hygrocast_http_requests_total{method="GET",route="/api/v1/runs/{id}",status="404"}"#;
    let n0 = sample(&before, series).unwrap_or(0.0);
    for id in [424_242, 424_243, 424_244] {
        assert_eq!(app.get(&format!("/api/v1/runs/{id}")).await.status(), 404);
    }
    let after = scrape(&app).await;
    let n1 = sample(&after, series).expect("the route's counter after requests");
    assert!(n1 >= n0 + 3.0, "{n0} -> {n1}");
    assert!(
        !after.contains("/api/v1/runs/424242"),
        "raw paths must not become label values"
    );
    let hist =
        r#"hygrocast_http_request_duration_seconds_count{method="GET",route="/api/v1/runs/{id}"}"#;
    assert!(sample(&after, hist).unwrap_or(0.0) >= 3.0);
    // A path no route matches is counted under one label, whatever the path.
    app.get("/no/such/page/x9").await;
    let after = scrape(&app).await;
    assert!(sample(
        &after,
        r#"hygrocast_http_requests_total{method="GET",route="unmatched",status="404"}"#
    )
    .is_some());
    assert!(!after.contains("x9"));
}

#[tokio::test]
async fn per_sensor_gauges_and_training_counters_follow_the_database() {
    let app = spawn_app_with(quiet).await;
    let client = app.client().await;
    let id = insert_sensor(&client, "greenhouse-7").await;
    // Hourly readings up to two hours ago (on the hour): the age is 2 to 3 hours.
    let end = Utc::now() - Duration::hours(2);
    insert_readings(&client, id, &simulated_hourly(11, end, 20)).await;
    let text = scrape(&app).await;
    let age = sample(
        &text,
        r#"hygrocast_sensor_last_reading_age_seconds{sensor="greenhouse-7"}"#,
    )
    .expect("age gauge");
    assert!((7100.0..10900.0).contains(&age), "age {age}");
    assert_eq!(sample(&text, "hygrocast_sensors"), Some(1.0));
    // No champion yet: no MASE gauge rather than a misleading 0.
    assert!(!text.contains(r#"hygrocast_sensor_champion_backtest_mase{sensor="greenhouse-7"}"#));

    let succeeded = r#"hygrocast_training_runs_total{status="succeeded"}"#;
    let trained_before = sample(&text, succeeded).unwrap_or(0.0);
    let run = runs::enqueue(&client, id, Trigger::Manual, Some(Algorithm::SeasonalNaive))
        .await
        .expect("enqueue");
    trainer::run_claimed(&app.pool, &app.settings, "test", &[run], |_| {})
        .await
        .expect("training run");
    let champion_mase: f64 = client
        .query_one(
            "SELECT mase_1_24 FROM model_versions WHERE sensor_id = $1 AND status = 'champion'",
            &[&id],
        )
        .await
        .expect("champion")
        .get(0);
    client
        .execute(
            "INSERT INTO live_scores (sensor_id, window_hours, n, mase_1_24) VALUES ($1, 168, 30, 0.5), ($1, 24, 5, 9.0)",
            &[&id],
        )
        .await
        .expect("live score");
    client
        .execute(
            "INSERT INTO job_runs (job, scheduled_for, instance, finished_at, status) \
             VALUES ('monitor', '2026-01-01T00:05:00Z', 't', '2026-01-01T00:05:30Z', 'succeeded'), \
                    ('monitor', '2026-01-01T01:05:00Z', 't', '2026-01-01T01:05:30Z', 'failed')",
            &[],
        )
        .await
        .expect("job runs");

    let text = scrape(&app).await;
    let shown = sample(
        &text,
        r#"hygrocast_sensor_champion_backtest_mase{sensor="greenhouse-7"}"#,
    )
    .expect("champion gauge");
    assert!(
        (shown - champion_mase).abs() < 1e-9,
        "{shown} vs {champion_mase}"
    );
    // The 7-day window is the one reported, not the 24-hour one.
    assert_eq!(
        sample(
            &text,
            r#"hygrocast_sensor_live_mase{sensor="greenhouse-7"}"#
        ),
        Some(0.5)
    );
    // Last *successful* firing: 00:05:30, not the failed 01:05:30.
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:05:30Z")
        .expect("time")
        .timestamp() as f64;
    assert_eq!(
        sample(
            &text,
            r#"hygrocast_scheduler_job_last_success_timestamp_seconds{job="monitor"}"#
        ),
        Some(at)
    );
    let trained_after = sample(&text, succeeded).expect("training counter");
    assert!(trained_after >= trained_before + 1.0);
    assert!(
        sample(
            &text,
            r#"hygrocast_training_run_duration_seconds_count{status="succeeded"}"#
        )
        .unwrap_or(0.0)
            >= 1.0
    );
}

#[tokio::test]
async fn metrics_still_answer_when_the_database_is_gone() {
    let app = spawn_app_with(quiet).await;
    // Close the pool: the scrape-time queries fail, the process metrics still render.
    app.pool.close();
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "hygrocast_database_up"), Some(0.0));
    assert!(text.contains("# TYPE hygrocast_build_info gauge"));
}

#[tokio::test]
async fn ingestion_counts_accepted_duplicate_and_rejected_readings_by_format() {
    let app = spawn_app_with(quiet).await;
    let client = app.client().await;
    let (_, token) = hygrocast::sensors::create(
        &client,
        &hygrocast::sensors::NewSensor {
            name: hygrocast::domain::SensorName::parse("metrics-ingest").expect("name"),
            kind: hygrocast::domain::SensorKind::Humidity,
            unit: None,
            location: None,
        },
    )
    .await
    .expect("sensor");
    let token = token.expose().to_string();
    let before = scrape(&app).await;
    let accepted = r#"hygrocast_readings_accepted_total{format="json"}"#;
    let duplicate = r#"hygrocast_readings_duplicate_total{format="line_protocol"}"#;
    let rejected = r#"hygrocast_readings_rejected_total{format="json",reason="out_of_range"}"#;
    let unauthorized = r#"hygrocast_readings_rejected_total{format="json",reason="unauthorized"}"#;
    let v = |t: &str, s: &str| sample(t, s).unwrap_or(0.0);
    let post = |body: &'static str| {
        app.http
            .post(app.url("/api/v1/readings"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let ok = post(r#"[{"ts": "2026-01-01T00:00:00Z", "value": 50}, {"ts": "2026-01-01T01:00:00Z", "value": 51}]"#)
        .await
        .expect("post");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        post(r#"{"ts": "2026-01-01T02:00:00Z", "value": 150}"#)
            .await
            .expect("post")
            .status(),
        400
    );
    let res = app
        .http
        .post(app.url("/api/v1/readings"))
        .header("Content-Type", "application/json")
        .body(r#"{"value": 50}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 401);
    let lp = app
        .http
        .post(app.url("/api/v2/write?precision=s"))
        .header("Authorization", format!("Token {token}"))
        .body("climate humidity=50 1767225600")
        .send()
        .await
        .expect("post");
    assert_eq!(lp.status(), 204);
    let after = scrape(&app).await;
    assert!(v(&after, accepted) >= v(&before, accepted) + 2.0);
    assert!(v(&after, duplicate) >= v(&before, duplicate) + 1.0);
    assert!(v(&after, rejected) >= v(&before, rejected) + 1.0);
    assert!(v(&after, unauthorized) >= v(&before, unauthorized) + 1.0);
    assert!(sample(&after, "hygrocast_batcher_flush_rows_count").unwrap_or(0.0) >= 2.0);
}

#[tokio::test]
async fn running_and_abandoned_training_runs_are_counted() {
    let app = spawn_app_with(quiet).await;
    let client = app.client().await;
    let id = insert_sensor(&client, "greenhouse-9").await;
    let abandoned = "hygrocast_training_runs_abandoned_total";
    let before = sample(&scrape(&app).await, abandoned).expect("abandoned counter");
    runs::enqueue(&client, id, Trigger::Manual, None)
        .await
        .expect("enqueue");
    let run = runs::claim_next(&client, "a-process", None)
        .await
        .expect("claim")
        .expect("claimed");
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "hygrocast_training_runs_running"), Some(1.0));
    assert_eq!(sample(&text, "hygrocast_training_runs_queued"), Some(0.0));

    // Its process stops renewing the lease; the next claim closes the run.
    client
        .execute(
            "UPDATE training_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1",
            &[&run.id],
        )
        .await
        .expect("age the heartbeat");
    assert!(runs::claim_next(&client, "another", None)
        .await
        .expect("claim")
        .is_none());
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "hygrocast_training_runs_running"), Some(0.0));
    let after = sample(&text, abandoned).expect("abandoned counter");
    assert!(after >= before + 1.0, "{before} → {after}");
}
