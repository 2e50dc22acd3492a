//! The pages in a real browser: headless Chromium loads the dashboard, a sensor page and a
//! run page from the real app, the test checks the DOM Chromium built, and screenshots
//! are written for a person to look at.
//!
//! Runs only with HYGROCAST_BROWSER_CHECK=1 (.ci/browser_check.sh, which CI runs,
//! installs Debian's chromium and sets it); otherwise it passes at once, so a plain
//! `cargo test` needs no browser. Screenshots go to HYGROCAST_SCREENSHOT_DIR
//! (default: target/browser-check).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use common::{insert_readings, insert_sensor, simulated_hourly, spawn_app_with, TestApp};
use hygrocast::registry::{runs, trainer, Trigger};

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_string)
}

/// Runs headless Chromium with `args` then `url`; returns its standard output.
async fn run_chromium(bin: &str, args: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished within 120 s")
    .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn screenshot(bin: &str, dir: &std::path::Path, name: &str, size: &str, url: &str) {
    let file = dir.join(name);
    let _ = std::fs::remove_file(&file);
    run_chromium(
        bin,
        &[
            format!("--screenshot={}", file.display()),
            format!("--window-size={size}"),
        ],
        url,
    )
    .await;
    let bytes = std::fs::read(&file).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "{name} is a PNG");
    assert!(bytes.len() > 20_000, "{name} is more than a blank page");
    println!("browser check: wrote {}", file.display());
}

async fn seeded_app() -> (TestApp, i64) {
    let app = spawn_app_with(|s| {
        s.forecast.window_days = 5;
        s.forecast.train_days = 40;
        s.scheduler.retrain_enabled = false;
        s.scheduler.monitor_enabled = false;
        s.ui.timezone = "Europe/Berlin".into();
    })
    .await;
    let client = app.client().await;
    let id = insert_sensor(&client, "greenhouse-1").await;
    let mut readings = simulated_hourly(3, Utc::now(), 30);
    // A half-day outage two days ago, to see the gap in the chart.
    let gap_end = Utc::now() - chrono::Duration::days(2);
    let gap_start = gap_end - chrono::Duration::hours(12);
    readings.retain(|(t, _)| *t < gap_start || *t > gap_end);
    insert_readings(&client, id, &readings).await;
    for (i, name) in ["cellar-2", "museum-hall", "warehouse-7"]
        .into_iter()
        .enumerate()
    {
        let other = insert_sensor(&client, name).await;
        insert_readings(
            &client,
            other,
            &simulated_hourly(
                10 + i as u64,
                Utc::now() - chrono::Duration::hours(i as i64 * 3),
                3,
            ),
        )
        .await;
    }
    insert_sensor(&client, "attic-9").await;
    let pool = app.pool.get().await.expect("client");
    let run = runs::enqueue(&**pool, id, Trigger::Manual, None)
        .await
        .expect("enqueue");
    trainer::run_claimed(&app.pool, &app.settings, "browser-check", &[run], |_| {})
        .await
        .expect("train");
    (app, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_pages() {
    if std::env::var("HYGROCAST_BROWSER_CHECK").as_deref() != Ok("1") {
        eprintln!("browser check skipped: set HYGROCAST_BROWSER_CHECK=1 (.ci/browser_check.sh)");
        return;
    }
    let bin = chromium().expect("chromium installed (.ci/browser_check.sh installs it)");
    let dir = std::env::var_os("HYGROCAST_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-check"));
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let (app, run) = seeded_app().await;

    let dom = run_chromium(&bin, &["--dump-dom".into()], &app.url("/")).await;
    for name in [
        "greenhouse-1",
        "cellar-2",
        "museum-hall",
        "warehouse-7",
        "attic-9",
    ] {
        assert!(
            dom.contains(&format!("/sensors/{name}")),
            "dashboard lists {name}"
        );
    }
    assert!(
        dom.contains("<title>Dashboard · hygrocast</title>"),
        "{dom}"
    );
    assert!(dom.contains("class=\"sparkline\""));

    let sensor_url = app.url("/sensors/greenhouse-1?horizon=48h&days=7");
    let dom = run_chromium(&bin, &["--dump-dom".into()], &sensor_url).await;
    assert!(dom.contains("<title>greenhouse-1 · hygrocast</title>"));
    for id in [
        "history",
        "forecast",
        "band80",
        "band95",
        "now-marker",
        "forecast-table",
    ] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "sensor page has #{id}"
        );
    }
    assert_eq!(dom.matches("class=\"forecast-row\"").count(), 48);

    let run_url = app.url(&format!("/runs/{run}"));
    let dom = run_chromium(&bin, &["--dump-dom".into()], &run_url).await;
    assert!(dom.contains("id=\"backtest-chart\"") && dom.contains("id=\"data-snapshot\""));

    screenshot(&bin, &dir, "dashboard.png", "1280,900", &app.url("/")).await;
    screenshot(&bin, &dir, "dashboard-phone.png", "390,900", &app.url("/")).await;
    screenshot(&bin, &dir, "sensor.png", "1280,1600", &sensor_url).await;
    screenshot(&bin, &dir, "sensor-phone.png", "390,1400", &sensor_url).await;
    screenshot(&bin, &dir, "models.png", "1280,1000", &app.url("/models")).await;
    screenshot(&bin, &dir, "run.png", "1280,1400", &run_url).await;
    screenshot(
        &bin,
        &dir,
        "not-found.png",
        "1280,600",
        &app.url("/sensors/nope"),
    )
    .await;
}
