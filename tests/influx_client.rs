//! A third-party client, unmodified: the `influxdb-client` Python package (PyPI) writes
//! through `/api/v2/write`, plain and gzip. The script is tests/influx_client_check.py.
//!
//! Skipped (with a message) when python3 or the package is missing, unless
//! `HYGROCAST_REQUIRE_PY_CLIENT=1` (set by `.ci/run`), which turns "missing" into a failure.

mod common;

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use common::spawn_app;
use hygrocast::domain::{SensorKind, SensorName};
use hygrocast::sensors::{self, NewSensor};

fn client_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import influxdb_client"])
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python package influxdb-client missing (pip install influxdb-client): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[tokio::test]
async fn python_influxdb_client_writes_through_api_v2_write() {
    if let Err(why) = client_available() {
        let required = std::env::var("HYGROCAST_REQUIRE_PY_CLIENT").is_ok_and(|v| v == "1");
        assert!(!required, "HYGROCAST_REQUIRE_PY_CLIENT=1 but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let app = spawn_app().await;
    let client = app.client().await;
    let new = NewSensor {
        name: SensorName::parse("py-client").expect("name"),
        kind: SensorKind::Humidity,
        unit: None,
        location: None,
    };
    let (sensor, token) = sensors::create(&client, &new).await.expect("sensor");
    let start = Utc::now().timestamp() - 3_600;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/influx_client_check.py");
    let (address, token) = (app.address.clone(), token.expose().to_owned());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([&address, &token, &start.to_string()])
            .output()
            .expect("run python3")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "influx client script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = client
        .query(
            "SELECT extract(epoch FROM ts)::bigint, value FROM readings \
             WHERE sensor_id = $1 ORDER BY ts",
            &[&sensor.id],
        )
        .await
        .expect("rows");
    let got: Vec<(i64, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want: Vec<(i64, f64)> = (0..20)
        .map(|i| {
            let value = if i % 10 == 9 {
                49.5
            } else {
                50.0 + (i % 10) as f64
            };
            (start + i, value)
        })
        .collect();
    assert_eq!(got, want);
}
