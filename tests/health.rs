//! Liveness, readiness and migrations against a real PostgreSQL.

mod common;

use common::{spawn_app, TestDatabase};
use hygrocast::db::migrate;

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_answers() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn unknown_path_is_404() {
    let app = spawn_app().await;
    assert_eq!(app.get("/no/such/page").await.status(), 404);
}

#[tokio::test]
async fn migrations_apply_once_when_run_twice() {
    let db = TestDatabase::create_from(false).await;
    let mut client = db.client().await;
    let first = migrate::run(&mut client).await.expect("first run");
    assert_eq!(first.len(), migrate::MIGRATIONS.len());
    let second = migrate::run(&mut client).await.expect("second run");
    assert!(second.is_empty(), "second run applied {second:?}");
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n as usize, migrate::MIGRATIONS.len());
    // The schema really is there.
    client
        .query_one("SELECT count(*) FROM readings", &[])
        .await
        .expect("readings table exists");
}

#[tokio::test]
async fn two_concurrent_migrators_apply_each_migration_exactly_once() {
    let db = TestDatabase::create_from(false).await;
    let mut a = db.client().await;
    let mut b = db.client().await;
    let (ra, rb) = tokio::join!(migrate::run(&mut a), migrate::run(&mut b));
    let (ra, rb) = (ra.expect("migrator a"), rb.expect("migrator b"));
    let mut all: Vec<i32> = ra.iter().chain(rb.iter()).copied().collect();
    all.sort();
    let expected: Vec<i32> = migrate::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(all, expected, "a applied {ra:?}, b applied {rb:?}");
    assert!(
        ra.is_empty() || rb.is_empty(),
        "both migrators applied something"
    );
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let db = TestDatabase::create().await;
    let mut client = db.client().await;
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1",
            &[],
        )
        .await
        .expect("tamper");
    let err = migrate::run(&mut client).await.expect_err("must refuse");
    assert!(
        err.to_string().contains("was changed after it was applied"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reading_is_unique_per_sensor_and_time() {
    let db = TestDatabase::create().await;
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO sensors (name, kind, unit, token_hash) VALUES ('s1', 'humidity', '%RH', sha256('x'))",
            &[],
        )
        .await
        .expect("sensor");
    let insert = "INSERT INTO readings (sensor_id, ts, value) SELECT id, '2026-01-01T00:00:00Z', 50 FROM sensors \
                  ON CONFLICT DO NOTHING";
    assert_eq!(client.execute(insert, &[]).await.expect("first"), 1);
    assert_eq!(client.execute(insert, &[]).await.expect("repeat"), 0);
}
