//! /readyz follows the database: 503 while it is down, 200 once it is back.
//! This test stops and restarts its server, so it runs on a private cluster of its own.

mod common;

use std::time::Duration;

#[tokio::test]
async fn readyz_turns_503_when_the_database_stops_and_200_when_it_returns() {
    common::init_test_logging();
    let (cluster, dir, pg_config, client) = common::private_migrated_database().await;
    drop(client);

    let mut settings = common::test_settings();
    settings.database.connect_timeout_secs = 1;
    let settings = std::sync::Arc::new(settings);
    let pool = hygrocast::db::pool(pg_config, &settings.database).expect("pool");
    let app = hygrocast::web::Application::build(settings, pool).expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let ready = || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .expect("GET /readyz")
    };

    assert_eq!(ready().await.status(), 200);

    let mut cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.stop().expect("stop cluster");
        cluster
    })
    .await
    .expect("stop");
    let res = ready().await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["database"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );

    cluster = tokio::task::spawn_blocking(move || {
        cluster.ensure_running().expect("restart cluster");
        cluster
    })
    .await
    .expect("restart");
    let mut status = 0;
    for _ in 0..50 {
        status = ready().await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "readyz did not recover after the database returned"
    );

    tokio::task::spawn_blocking(move || {
        let _ = cluster.stop();
        let _ = std::fs::remove_dir_all(dir);
    })
    .await
    .expect("cleanup");
}
