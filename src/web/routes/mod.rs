//! Route table: every path the server answers, in one place.

mod health;
mod models;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route(
            "/api/v1/sensors/{name}/forecast",
            web::get().to(models::forecast),
        )
        .route(
            "/api/v1/sensors/{name}/models",
            web::get().to(models::sensor_models),
        )
        .route("/api/v1/runs/{id}", web::get().to(models::run))
        // The HTML pages (and the HTML 404 for every other path) come last.
        .configure(crate::web::pages::configure);
}
