//! Liveness and readiness probes.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::web::AppState;

/// 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers a query, 503 with the reason when it does not.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let check = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    let result = match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(r) => r,
        Err(_) => Err("database did not answer within 3 s".to_string()),
    };
    match result {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok"})),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .json(json!({"status": "unavailable", "database": reason}))
        }
    }
}
