//! What is running: `/api/v1/info`, `hygrocast --version`, and the OpenAPI document.

mod common;

use common::spawn_app;

#[tokio::test]
async fn info_reports_version_commit_and_schema_version() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/info").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let commit = body["commit"].as_str().expect("commit");
    assert!(!commit.is_empty());
    assert_eq!(commit, hygrocast::version::COMMIT);
    let latest = hygrocast::db::migrate::latest_version();
    assert!(latest >= 2);
    assert_eq!(body["schema_version"], latest);
    assert_eq!(body["binary_schema_version"], latest);

    // A database one migration behind reports it.
    let client = app.client().await;
    client
        .execute(
            "DELETE FROM schema_migrations WHERE version = $1",
            &[&latest],
        )
        .await
        .expect("forget a migration");
    let body = app.get_json("/api/v1/info").await;
    assert_eq!(body["schema_version"], latest - 1);
    assert_eq!(body["binary_schema_version"], latest);
}

#[test]
fn version_flag_prints_version_and_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hygrocast"))
        .arg("--version")
        .output()
        .expect("run hygrocast --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!(
            "hygrocast {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            hygrocast::version::COMMIT
        )
    );
    // In a git checkout the commit is the checkout's.
    if let Ok(git) = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        if git.status.success() {
            let head = String::from_utf8_lossy(&git.stdout);
            assert!(
                head.trim().starts_with(hygrocast::version::COMMIT),
                "built from {} but HEAD is {head}",
                hygrocast::version::COMMIT
            );
        }
    }
}

#[tokio::test]
async fn openapi_document_lists_every_json_endpoint() {
    let app = spawn_app().await;
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("openapi").starts_with("3."));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/info",
        "/api/v1/sensors/{name}/forecast",
        "/api/v1/sensors/{name}/models",
        "/api/v1/sensors/{name}/promotions",
        "/api/v1/runs/{id}",
        "/api/v1/readings",
        "/api/v2/write",
        "/write",
        "/api/v1/sensors/{name}/readings",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    assert!(doc["components"]["securitySchemes"]["sensor_token"].is_object());
    // Every documented GET answers JSON on the server (a route exists for it).
    for (path, item) in paths {
        if item.get("get").is_none() {
            continue;
        }
        let concrete = path.replace("{name}", "nosuch").replace("{id}", "1");
        let res = app.get(&concrete).await;
        let ctype = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            ctype.starts_with("application/json"),
            "{concrete}: {} {ctype}",
            res.status()
        );
    }
    // Response types are described, not left opaque.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "ServedForecast",
        "ForecastStep",
        "RunRecord",
        "ErrorBody",
        "Info",
        "WriteResult",
        "ReadingsPage",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
}

#[tokio::test]
async fn malformed_path_and_query_get_json_errors() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/runs/not-a-number").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.expect("json error body");
    assert_eq!(body["status"], 404);
    // Found by schemathesis: a NUL byte in a sensor name reached PostgreSQL (500), a
    // huge horizon overflowed (the worker panicked). Both are client errors.
    for path in [
        "/api/v1/sensors/a%00b/forecast",
        "/api/v1/sensors/a%00b/models",
        "/api/v1/sensors/%FF%FE/models",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    let res = app
        .get("/api/v1/sensors/x/forecast?horizon=106751991167301d")
        .await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.expect("json error body");
    assert!(body["error"]
        .as_str()
        .unwrap_or_default()
        .contains("horizon"));
}

/// The readings query's checks are stated in the document, and they are the handler's: a
/// value at a documented bound passes validation (the unknown sensor then answers 404), one
/// past it is a 400. A client generated from the document sends only what is accepted.
#[tokio::test]
async fn openapi_document_states_the_readings_query_checks() {
    let app = spawn_app().await;
    let doc = app.get_json("/api/openapi.json").await;
    let params = doc["paths"]["/api/v1/sensors/{name}/readings"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let schema = |name: &str| {
        &params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))["schema"]
    };
    let limit = schema("limit");
    assert_eq!(limit["type"], "integer", "limit is documented as {limit}");
    let (min, max) = (
        limit["minimum"].as_i64().expect("minimum"),
        limit["maximum"].as_i64().expect("maximum"),
    );
    let status = |query: String| {
        let app = &app;
        async move {
            app.get(&format!("/api/v1/sensors/nosuch/readings?{query}"))
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(format!("limit={min}")).await, 404);
    assert_eq!(status(format!("limit={max}")).await, 404);
    assert_eq!(status(format!("limit={}", min - 1)).await, 400);
    assert_eq!(status(format!("limit={}", max + 1)).await, 400);
    for bound in ["from", "to"] {
        assert_eq!(schema(bound)["format"], "date-time", "{bound}");
        assert_eq!(
            status(format!("{bound}=2026-11-24T10:00:00Z")).await,
            404,
            "{bound}"
        );
        assert_eq!(status(format!("{bound}=yesterday")).await, 400, "{bound}");
    }
}
