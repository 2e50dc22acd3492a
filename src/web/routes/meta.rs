//! About the running server: `/api/v1/info`, `/api/openapi.json` and `/metrics`.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::web::error::{ApiError, ErrorBody};
use crate::web::AppState;

/// What is running, for support and for upgrade checks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Info {
    /// The hygrocast version.
    #[schema(example = "0.1.0")]
    pub version: String,
    /// The git commit the binary was built from, or `unknown`.
    #[schema(example = "1a2b3c4d5e")]
    pub commit: String,
    /// The highest migration applied to the database.
    #[schema(example = 2)]
    pub schema_version: i32,
    /// The highest migration this binary knows; larger than `schema_version` only
    /// before `hygrocast migrate` (or a restart of `serve`) has run.
    #[schema(example = 2)]
    pub binary_schema_version: i32,
}

#[utoipa::path(
    get,
    path = "/api/v1/info",
    tag = "meta",
    responses(
        (status = 200, description = "Version, commit and schema versions", body = Info),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn info(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    let applied: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await?
        .get(0);
    Ok(HttpResponse::Ok().json(Info {
        version: crate::version::VERSION.into(),
        commit: crate::version::COMMIT.into(),
        schema_version: applied.unwrap_or(0),
        binary_schema_version: crate::db::migrate::latest_version(),
    }))
}

/// The OpenAPI 3 description of the JSON API, generated from the handlers' annotations.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::web::openapi::document())
}

/// Prometheus metrics in the text exposition format.
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = crate::metrics::render(&state.pool)
        .await
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(body))
}
