//! Route table: every path the server answers, in one place.
//!
//! Every JSON endpoint is also listed in `web::openapi::ApiDoc` (one line each), which
//! `/api/openapi.json` serves and schemathesis tests the server against.

pub mod health;
pub mod ingest;
pub mod meta;
pub mod models;
pub mod readings;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(meta::metrics))
        .route("/api/openapi.json", web::get().to(meta::openapi))
        .route("/api/v1/info", web::get().to(meta::info))
        .route(
            "/api/v1/sensors/{name}/forecast",
            web::get().to(models::forecast),
        )
        .route(
            "/api/v1/sensors/{name}/models",
            web::get().to(models::sensor_models),
        )
        .route(
            "/api/v1/sensors/{name}/promotions",
            web::get().to(models::sensor_promotions),
        )
        .route("/api/v1/runs/{id}", web::get().to(models::run))
        .route("/api/v1/readings", web::post().to(ingest::post_readings))
        .route("/api/v2/write", web::post().to(ingest::influx_v2_write))
        .route("/write", web::post().to(ingest::influx_v1_write))
        .route("/ping", web::get().to(ingest::influx_ping))
        .route("/ping", web::head().to(ingest::influx_ping))
        .route(
            "/api/v1/sensors/{name}/readings",
            web::get().to(readings::get_readings),
        )
        // The HTML pages (and the HTML 404 for every other path) come last.
        .configure(crate::web::pages::configure);
}
